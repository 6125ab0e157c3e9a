--- rl.models: the paper's architectures, with the reference implementation's
-- layer order, shapes, module names and initialisation, so that state_dict
-- keys match it (yangarbiter/robust-local-lipschitz, lolip/models/torch_utils).
--
--   CNN001{classes = 10, channels = 1, drop}      (MNIST, Table 2)
--   CNN002{classes = 10, channels = 1, size = 28, drop}
--   WideResNet{depth = 40, widen = 10, drop = 0, classes = 10, channels = 3}
--   WRN_40_10, WRN_40_10_drop20, WRN_40_10_drop50, WRN_16_4 (small, for CPU),
--   WRN_52_12 (the reference's WRN_64_10 class; that name is an alias)
--   ResNet18{...}, ResNet50{classes, channels, drop = 0}
--   MLP{inputs = 784, hidden = {256, 256}, classes = 10}
local rl = require 'rl.base'
local nn = require 'rl.nn'
local options = require 'rl.options'
local F = rl.F

local models = {}

local function opts(o, defaults, name)
  o = o or {}
  local names = {}
  for k in pairs(defaults) do names[#names + 1] = k end
  table.sort(names)
  local ok, msg = pcall(options.reject_unknown, name, o, names)
  if not ok then error(msg, 3) end
  local r = {}
  for k, v in pairs(defaults) do
    if o[k] == nil then r[k] = v else r[k] = o[k] end
  end
  return r
end

-- ---------------------------------------------------------------------------
-- CNN001: conv1 -> relu -> conv2 -> max_pool 2 -> dropout2d .25 -> flatten
--         -> fc1 -> relu -> dropout2d .5 -> fc2   (no relu after conv2)
-- drop = p sets both dropout rates to p (0: none; Table 4's rows on MNIST
-- and Fashion-MNIST); false keeps the paper's .25 and .5.
local function drop_rate(o, name)
  local p = o.drop
  if p ~= false and (type(p) ~= 'number' or p < 0 or p >= 1) then
    error(string.format('%s: drop must be a rate in [0, 1) or false, got %s', name, tostring(p)), 3)
  end
  return p
end

local CNN001 = nn.class('CNN001', nn.Module)
models.CNN001 = CNN001
function CNN001:__init(o)
  o = opts(o, { classes = 10, channels = 1, drop = false }, 'CNN001')
  local p = drop_rate(o, 'CNN001')
  nn.Module.__init(self)
  self:add_module('conv1', nn.Conv2d(o.channels, 32, 3))
  self:add_module('conv2', nn.Conv2d(32, 64, 3))
  self:add_module('dropout1', nn.Dropout2d(p or 0.25))
  self:add_module('dropout2', nn.Dropout2d(p or 0.5))
  self:add_module('fc1', nn.Linear(9216, 128))
  self:add_module('fc2', nn.Linear(128, o.classes))
end
function CNN001:forward(x)
  x = self.conv1(x):relu()
  x = self.conv2(x)
  x = F.max_pool2d(x, 2)
  x = self.dropout1(x):flatten(2)
  x = self.fc1(x):relu()
  x = self.dropout2(x)
  return self.fc2(x)
end

-- ---------------------------------------------------------------------------
-- CNN002: feature_extractor (4 convs, 2 pools) and classifier (3 linears);
-- convs Kaiming-normal with zero bias, the last linear all zero.
local CNN002 = nn.class('CNN002', nn.Module)
models.CNN002 = CNN002
function CNN002:__init(o)
  o = opts(o, { classes = 10, channels = 1, size = 28, drop = false }, 'CNN002')
  local p = drop_rate(o, 'CNN002')
  nn.Module.__init(self)
  local s = ((o.size - 4) // 2 - 4) // 2
  self:add_module('feature_extractor', nn.Sequential {
    { 'conv1', nn.Conv2d(o.channels, 32, 3) }, { 'relu1', nn.ReLU() },
    { 'conv2', nn.Conv2d(32, 32, 3) }, { 'relu2', nn.ReLU() },
    { 'maxpool1', nn.MaxPool2d(2) },
    { 'conv3', nn.Conv2d(32, 64, 3) }, { 'relu3', nn.ReLU() },
    { 'conv4', nn.Conv2d(64, 64, 3) }, { 'relu4', nn.ReLU() },
    { 'maxpool2', nn.MaxPool2d(2) },
  })
  self:add_module('classifier', nn.Sequential {
    { 'fc1', nn.Linear(64 * s * s, 200) }, { 'relu1', nn.ReLU() },
    { 'drop', nn.Dropout(p or 0.5) },
    { 'fc2', nn.Linear(200, 200) }, { 'relu2', nn.ReLU() },
    { 'fc3', nn.Linear(200, o.classes) },
  })
  for _, k in ipairs { 'conv1', 'conv2', 'conv3', 'conv4' } do
    local c = self.feature_extractor[k]
    nn.init.kaiming_normal_(c.weight)
    nn.init.zeros_(c.bias)
  end
  nn.init.zeros_(self.classifier.fc3.weight)
  nn.init.zeros_(self.classifier.fc3.bias)
end
function CNN002:forward(x)
  local f = self.feature_extractor(x)
  return self.classifier(f:flatten(2))
end

-- ---------------------------------------------------------------------------
-- WideResNet (Zagoruyko & Komodakis), pre-activation basic blocks with the
-- reference's names: block1.layer.0.{bn1, conv1, bn2, conv2, convShortcut}.
local BasicBlock = nn.class('WRNBlock', nn.Module)
function BasicBlock:__init(cin, cout, stride, drop)
  nn.Module.__init(self)
  self:add_module('bn1', nn.BatchNorm2d(cin))
  self:add_module('relu1', nn.ReLU())
  self:add_module('conv1', nn.Conv2d(cin, cout, 3, { stride = stride, padding = 1, bias = false }))
  self:add_module('bn2', nn.BatchNorm2d(cout))
  self:add_module('relu2', nn.ReLU())
  self:add_module('conv2', nn.Conv2d(cout, cout, 3, { stride = 1, padding = 1, bias = false }))
  self.drop = drop
  self.equal_in_out = cin == cout
  if not self.equal_in_out then
    self:add_module('convShortcut', nn.Conv2d(cin, cout, 1, { stride = stride, bias = false }))
  end
end
function BasicBlock:forward(x)
  local out
  if self.equal_in_out then
    out = self.relu1(self.bn1(x))
  else
    x = self.relu1(self.bn1(x))
    out = x
  end
  out = self.relu2(self.bn2(self.conv1(out)))
  if self.drop > 0 then out = F.dropout(out, self.drop, self.training) end
  out = self.conv2(out)
  local short = self.equal_in_out and x or self.convShortcut(x)
  return short + out
end
function BasicBlock:describe() return 'BasicBlock' end

local NetworkBlock = nn.class('NetworkBlock', nn.Module)
function NetworkBlock:__init(n, cin, cout, stride, drop)
  nn.Module.__init(self)
  local layer = nn.Sequential()
  for i = 1, n do
    layer:add(BasicBlock(i == 1 and cin or cout, cout, i == 1 and stride or 1, drop))
  end
  self:add_module('layer', layer)
end
function NetworkBlock:forward(x) return self.layer(x) end

local WideResNet = nn.class('WideResNet', nn.Module)
models.WideResNet = WideResNet
function WideResNet:__init(o)
  o = opts(o, { depth = 40, widen = 10, drop = 0, classes = 10, channels = 3 }, 'WideResNet')
  nn.Module.__init(self)
  if (o.depth - 4) % 6 ~= 0 then
    error(string.format('WideResNet: depth must be 6n+4 (e.g. 16, 28, 40), got %d', o.depth), 2)
  end
  local n = (o.depth - 4) // 6
  local w = { 16, 16 * o.widen, 32 * o.widen, 64 * o.widen }
  self.depth, self.widen, self.drop = o.depth, o.widen, o.drop
  self:add_module('conv1', nn.Conv2d(o.channels, w[1], 3, { padding = 1, bias = false }))
  self:add_module('block1', NetworkBlock(n, w[1], w[2], 1, o.drop))
  self:add_module('block2', NetworkBlock(n, w[2], w[3], 2, o.drop))
  self:add_module('block3', NetworkBlock(n, w[3], w[4], 2, o.drop))
  self:add_module('bn1', nn.BatchNorm2d(w[4]))
  self:add_module('relu', nn.ReLU())
  self:add_module('fc', nn.Linear(w[4], o.classes))
  self.nchannels = w[4]
  -- the reference's initialisation
  for _, m in ipairs(self:modules()) do
    if getmetatable(m) == nn.Conv2d then
      local k = m.kernel_size
      nn.init.normal_(m.weight, 0, math.sqrt(2 / (k[1] * k[2] * m.out_channels)))
    elseif getmetatable(m) == nn.BatchNorm2d then
      nn.init.ones_(m.weight)
      nn.init.zeros_(m.bias)
    elseif getmetatable(m) == nn.Linear then
      nn.init.zeros_(m.bias)
    end
  end
end
function WideResNet:forward(x)
  local out = self.conv1(x)
  out = self.block3(self.block2(self.block1(out)))
  out = self.relu(self.bn1(out))
  out = F.avg_pool2d(out, 8)
  return self.fc(out:view(-1, self.nchannels))
end
function WideResNet:describe()
  return string.format('WideResNet-%d-%d%s', self.depth, self.widen,
    self.drop > 0 and string.format(' (dropout %g)', self.drop) or '')
end

local function wrn(depth, widen, drop)
  return function(o)
    o = o or {}
    local full = { depth = depth, widen = widen, drop = drop }
    for k, v in pairs(o) do full[k] = v end
    return WideResNet(full)
  end
end
models.WRN_40_10 = wrn(40, 10, 0)
models.WRN_40_10_drop20 = wrn(40, 10, 0.2)
models.WRN_40_10_drop50 = wrn(40, 10, 0.5)
models.WRN_16_4 = wrn(16, 4, 0)
-- The reference's WRN_64_10 class (wideresnet.py), which its proof of
-- concept trains on SVHN, is built with depth 52 and widen factor 12; the
-- alias lets the reference's model names be used as they are written.
models.WRN_52_12 = wrn(52, 12, 0)
models.WRN_64_10 = models.WRN_52_12

-- ---------------------------------------------------------------------------
-- ResNet (torchvision layout, with an input-channel option).  The reference
-- applies the bottleneck's dropout only in the non-first blocks of a layer.
local RBasic = nn.class('ResNetBasicBlock', nn.Module)
RBasic.expansion = 1
function RBasic:__init(cin, planes, stride, downsample)
  nn.Module.__init(self)
  self:add_module('conv1', nn.Conv2d(cin, planes, 3, { stride = stride, padding = 1, bias = false }))
  self:add_module('bn1', nn.BatchNorm2d(planes))
  self:add_module('relu', nn.ReLU())
  self:add_module('conv2', nn.Conv2d(planes, planes, 3, { padding = 1, bias = false }))
  self:add_module('bn2', nn.BatchNorm2d(planes))
  if downsample then self:add_module('downsample', downsample) end
end
function RBasic:forward(x)
  local out = self.relu(self.bn1(self.conv1(x)))
  out = self.bn2(self.conv2(out))
  local idn = self.downsample and self.downsample(x) or x
  return (out + idn):relu()
end

local Bottleneck = nn.class('Bottleneck', nn.Module)
Bottleneck.expansion = 4
function Bottleneck:__init(cin, planes, stride, downsample, drop)
  nn.Module.__init(self)
  self:add_module('conv1', nn.Conv2d(cin, planes, 1, { bias = false }))
  self:add_module('bn1', nn.BatchNorm2d(planes))
  self:add_module('conv2', nn.Conv2d(planes, planes, 3, { stride = stride, padding = 1, bias = false }))
  self:add_module('bn2', nn.BatchNorm2d(planes))
  self:add_module('conv3', nn.Conv2d(planes, planes * 4, 1, { bias = false }))
  self:add_module('bn3', nn.BatchNorm2d(planes * 4))
  self:add_module('relu', nn.ReLU())
  if downsample then self:add_module('downsample', downsample) end
  self.drop = drop or 0
end
function Bottleneck:forward(x)
  local out = self.relu(self.bn1(self.conv1(x)))
  out = self.relu(self.bn2(self.conv2(out)))
  if self.drop > 0 then out = F.dropout(out, self.drop, self.training) end
  out = self.bn3(self.conv3(out))
  local idn = self.downsample and self.downsample(x) or x
  return (out + idn):relu()
end

--- ResNet(block, layers, {classes = 1000, channels = 3, drop = 0}): the
-- torchvision layout; models.ResNet18 and models.ResNet50 make the two used.
local ResNet = nn.class('ResNet', nn.Module)
models.ResNet = ResNet
function ResNet:__init(block, layers, o)
  o = opts(o, { classes = 1000, channels = 3, drop = 0 }, 'ResNet')
  nn.Module.__init(self)
  self.inplanes = 64
  self:add_module('conv1', nn.Conv2d(o.channels, 64, 7, { stride = 2, padding = 3, bias = false }))
  self:add_module('bn1', nn.BatchNorm2d(64))
  self:add_module('relu', nn.ReLU())
  self:add_module('maxpool', nn.MaxPool2d(3, { stride = 2, padding = 1 }))
  local planes = { 64, 128, 256, 512 }
  for i = 1, 4 do
    self:add_module('layer' .. i, self:make_layer(block, planes[i], layers[i], i == 1 and 1 or 2, o.drop))
  end
  self:add_module('avgpool', nn.AdaptiveAvgPool2d(1))
  self:add_module('fc', nn.Linear(512 * block.expansion, o.classes))
  for _, m in ipairs(self:modules()) do
    if getmetatable(m) == nn.Conv2d then
      nn.init.kaiming_normal_(m.weight, { mode = 'fan_out', nonlinearity = 'relu' })
    elseif getmetatable(m) == nn.BatchNorm2d then
      nn.init.ones_(m.weight)
      nn.init.zeros_(m.bias)
    end
  end
end
function ResNet:make_layer(block, planes, n, stride, drop)
  local down
  if stride ~= 1 or self.inplanes ~= planes * block.expansion then
    down = nn.Sequential(
      nn.Conv2d(self.inplanes, planes * block.expansion, 1, { stride = stride, bias = false }),
      nn.BatchNorm2d(planes * block.expansion))
  end
  local layer = nn.Sequential(block(self.inplanes, planes, stride, down, 0))
  self.inplanes = planes * block.expansion
  for _ = 2, n do layer:add(block(self.inplanes, planes, 1, nil, drop)) end
  return layer
end
function ResNet:forward(x)
  x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
  x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
  return self.fc(self.avgpool(x):flatten(2))
end

function models.ResNet18(o) return ResNet(RBasic, { 2, 2, 2, 2 }, o) end
function models.ResNet50(o) return ResNet(Bottleneck, { 3, 4, 6, 3 }, o) end
--- ResNet50_drop20{classes, channels}: ResNet50 with dropout 0.2 (Table 4)
function models.ResNet50_drop20(o)
  o = o or {}
  o.drop = 0.2
  return ResNet(Bottleneck, { 3, 4, 6, 3 }, o)
end
--- ResNet50_drop50{classes, channels}: ResNet50 with dropout 0.5 (Table 4)
function models.ResNet50_drop50(o)
  o = o or {}
  o.drop = 0.5
  return ResNet(Bottleneck, { 3, 4, 6, 3 }, o)
end

-- ---------------------------------------------------------------------------
-- MLP: flatten, then Linear + ReLU per hidden layer, then the output layer.
local MLP = nn.class('MLP', nn.Module)
models.MLP = MLP
function MLP:__init(o)
  o = opts(o, { inputs = 784, hidden = { 256, 256 }, classes = 10 }, 'MLP')
  nn.Module.__init(self)
  local layers, n = {}, o.inputs
  for i, h in ipairs(o.hidden) do
    layers[#layers + 1] = { 'fc' .. i, nn.Linear(n, h) }
    layers[#layers + 1] = { 'relu' .. i, nn.ReLU() }
    n = h
  end
  layers[#layers + 1] = { 'out', nn.Linear(n, o.classes) }
  self:add_module('net', nn.Sequential(layers))
end
function MLP:forward(x) return self.net(x:flatten(2)) end

--- models.get(name, opts): by name, as table scripts name them.
--- models.names() -> the sorted names of the models (those models.get knows).
function models.names()
  local known = {}
  for k, v in pairs(models) do
    if k:match('^%u') and (type(v) == 'function' or type(v) == 'table') then known[#known + 1] = k end
  end
  table.sort(known)
  return known
end

--- models.is_model(name): whether models.get knows the name.
function models.is_model(name)
  local m = type(name) == 'string' and name:match('^%u') and models[name]
  return type(m) == 'function' or type(m) == 'table'
end

--- models.get(name, o) -> models[name](o), or an error listing the names.
function models.get(name, o)
  if not models.is_model(name) then
    error(string.format('models.get: unknown model %q (known: %s)', tostring(name),
      table.concat(models.names(), ', ')), 2)
  end
  return models[name](o)
end

return models
