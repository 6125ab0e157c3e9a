-- nn_spec.lua - rl.nn modules and initialisers, rl.models shapes and names,
-- checkpoints of whole models.
local rl = require 'rl'
local nn, F = rl.nn, rl.F

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute('mkdir -p ' .. d))
  return d
end

describe('nn.Module', function()
  it('registers parameters, buffers and children in order, with PyTorch names', function()
    local m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    local names = {}
    for _, p in ipairs(m:named_parameters()) do names[#names + 1] = p[1] end
    assert.are.same({ '0.weight', '0.bias', '1.weight', '1.bias', '4.weight', '4.bias' }, names)
    local _, order = m:state_dict()
    assert.are.same({ '0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var',
      '1.num_batches_tracked', '4.weight', '4.bias' }, order)
    assert.are.equal(2 * 9 + 2 + 2 + 2 + 8 * 3 + 3, m:num_parameters())
    assert.are.equal(5, #m)
    assert.are.equal('Linear', m:get(5).__name)
  end)

  it('named Sequential children and nested names', function()
    local m = nn.Sequential { { 'fc1', nn.Linear(2, 3) }, { 'act', nn.ReLU() } }
    assert.are.equal(m.fc1, m:get(1))
    local outer = nn.Sequential { { 'body', m } }
    assert.are.equal('body.fc1.weight', outer:named_parameters()[1][1])
  end)

  it('train / eval reach every module; BatchNorm counts batches in training', function()
    local m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm2d(4), nn.Dropout(0.5))
    m:eval()
    for _, c in ipairs(m:modules()) do assert.is_false(c.training) end
    local x = rl.randn(6, 3)
    assert.are.same(m(x):tolist(), m(x):tolist()) -- eval is deterministic
    m:train()
    m(x)
    assert.are.equal(1, m:get(2).num_batches_tracked:item())
  end)

  it('batch_norm moves the running statistics by momentum, in strided views too', function()
    local g = rl.Generator(3)
    local x = rl.randn({ 5, 3, 4 }, { generator = g, dtype = 'f64' }) * 2 + 1
    local mean, var = {}, {}
    for c = 1, 3 do
      local v = x:select(2, c)
      mean[c] = v:mean():item()
      var[c] = ((v - mean[c]) ^ 2):sum():item() / (v:numel() - 1) -- unbiased
    end
    for _, strided in ipairs { false, true } do
      local rm, rv = rl.tensor({ 0.5, -1, 2 }, 'f64'), rl.tensor({ 1, 3, 0.25 }, 'f64')
      local before_m, before_v = rm:tolist(), rv:tolist()
      if strided then -- every other element of a longer buffer
        local bm, bv = rl.zeros(6, 'f64'), rl.zeros(6, 'f64')
        rm, rv = bm:view(3, 2):select(2, 1), bv:view(3, 2):select(2, 1)
        rm:copy_(rl.tensor(before_m, 'f64'))
        rv:copy_(rl.tensor(before_v, 'f64'))
      end
      rl.F.batch_norm(x, rm, rv, nil, nil, true, 0.3, 1e-5)
      for c = 1, 3 do
        local wm = before_m[c] + 0.3 * (mean[c] - before_m[c])
        local wv = before_v[c] + 0.3 * (var[c] - before_v[c])
        assert.is_true(math.abs(rm[c]:item() - wm) < 1e-12, 'running_mean ' .. c)
        assert.is_true(math.abs(rv[c]:item() - wv) < 1e-12, 'running_var ' .. c)
      end
    end
  end)

  it('with_mode runs fn in a mode and gives every module back its own flag', function()
    local inner = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    local m = nn.Sequential(nn.Linear(2, 2), inner, nn.ReLU())
    m:train()
    inner:get(2):eval() -- mixed on purpose: the dropout in eval, the rest training
    local seen
    local a, b = m:with_mode('eval', function()
      seen = {}
      for _, x in ipairs(m:modules()) do seen[#seen + 1] = x.training end
      return 1, 2
    end)
    assert.are.same({ 1, 2 }, { a, b })
    assert.are.same({ false, false, false, false, false, false }, seen)
    assert.is_true(m.training and inner.training and inner:get(1).training)
    assert.is_false(inner:get(2).training)
    -- nested calls each restore what they found
    m:with_mode('eval', function()
      inner:with_mode('train', function()
        assert.is_true(inner.training and inner:get(2).training)
        assert.is_false(m.training)
      end)
      assert.is_false(inner.training or inner:get(2).training)
    end)
    assert.is_true(m.training and inner.training)
    assert.is_false(inner:get(2).training)
    -- an error in fn still restores every flag, and passes the error on
    local ok, err = pcall(m.with_mode, m, 'train', function() error('boom', 0) end)
    assert.is_false(ok)
    assert.are.equal('boom', err)
    assert.is_true(m.training)
    assert.is_false(inner:get(2).training)
    -- nil leaves the mode as it is; anything else is an error
    assert.are.equal(3, m:with_mode(nil, function() return 3 end))
    assert.has_error(function() m:with_mode('test', function() end) end)
  end)

  it('zero_grad clears gradients; parameters are leaves that require grad', function()
    local m = nn.Linear(3, 2)
    F.mse_loss(m(rl.randn(4, 3)), rl.zeros(4, 2)):backward()
    assert.is_not_nil(m.weight.grad)
    m:zero_grad()
    assert.is_nil(m.weight.grad)
    assert.is_true(m.weight.requires_grad and m.weight.is_leaf)
  end)

  it('errors inside a container name the module', function()
    local m = nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2))
    local ok, msg = pcall(m, rl.randn(2, 4))
    assert.is_false(ok)
    assert.are.equal('Sequential.1 (Linear): linear: input 2x3 does not match weight 2x5 (need [..., 5])', msg)
    ok, msg = pcall(nn.Sequential(nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2))), rl.randn(2, 4))
    assert.truthy(msg:find('^Sequential%.0%.1 %(Linear%): linear: input 2x3'), msg)
  end)

  -- a refusal inside a model's forward named the models.lua line it came
  -- through ("models.lua:60: conv2d: input has 3 channels ...")
  it("a refusal inside a model names the layer by its state_dict path, at the caller's line", function()
    local line = debug.getinfo(1, 'l').currentline + 2
    local ok, msg = pcall(function()
      local y = rl.models.CNN001()(rl.rand(2, 3, 28, 28))
      return y
    end)
    assert.is_false(ok)
    assert.are.equal(string.format('spec/nn_spec.lua:%d: CNN001.conv1 (Conv2d): conv2d: input has 3 channels, ' ..
      'weight expects 1 (input 2x3x28x28, weight 32x1x3x3)', line), msg)
    ok, msg = pcall(rl.models.CNN002(), rl.rand(2, 1, 32, 32))
    assert.truthy(msg:find('^CNN002%.classifier%.fc1 %(Linear%): linear: input 2x1600 does not match'), msg)
    -- the path is a state_dict key's prefix
    assert.is_not_nil(rl.models.CNN002():state_dict()['classifier.fc1.weight'])
    -- a leaf called alone needs no name
    ok, msg = pcall(nn.Linear(4, 3), rl.randn(2, 5))
    assert.truthy(msg:find('^linear: input 2x5'), msg)
    -- a model's own refusal names the model; a bug keeps its message and position
    local M = nn.class('Mine', nn.Module)
    function M:__init(bug)
      nn.Module.__init(self)
      self.bug = bug
      self:add_module('a', nn.Linear(2, 2))
    end
    function M:forward(x)
      if self.bug then return x.no_such_field.y end
      error('mine: x is wrong', 0)
    end
    ok, msg = pcall(nn.Sequential(M(false)), rl.rand(1, 2))
    assert.are.equal('Sequential.0 (Mine): mine: x is wrong', msg)
    ok, msg = pcall(nn.Sequential(M(true)), rl.rand(1, 2))
    assert.truthy(msg:find("^spec/nn_spec%.lua:%d+: attempt to index a nil value %(field 'no_such_field'%)"), msg)
    -- after a failure, a good call and the next failure are unaffected
    local m = rl.models.CNN001()
    assert.are.same({ 2, 10 }, m(rl.rand(2, 1, 28, 28)).shape)
    ok, msg = pcall(m, rl.rand(2, 1, 20, 20))
    assert.truthy(msg:find('^CNN001%.fc1 %(Linear%): linear:'), msg)
  end)

  it('unknown layer options are errors', function()
    local ok, msg = pcall(nn.Conv2d, 1, 2, 3, { paddin = 1 })
    assert.is_false(ok)
    assert.truthy(msg:find('paddin', 1, true))
  end)

  -- layers took misspelt, unsupported and ill-typed options silently
  -- (MaxPool2d's ceil_mode gave a 2x2 output where PyTorch gives 3x3), and
  -- a positional stride failed only at the first forward
  it("layers refuse bad options when built, at the caller's line", function()
    for _, c in ipairs {
      { 'nn.MaxPool2d(2, { ceil_mode = true })',
        'MaxPool2d: ceil_mode = true is not supported (the output size rounds down, as with ceil_mode = false)' },
      { 'nn.MaxPool2d(2, { strid = 1 })', "MaxPool2d: unknown option 'strid' (did you mean 'stride'?); " ..
        'options: ceil_mode, dilation, padding, return_indices, stride' },
      { 'nn.MaxPool2d(2, { dilation = 2 })', 'MaxPool2d: dilation = 2 is not supported (only 1)' },
      { 'nn.MaxPool2d(2, 1, 0, 1)',
        'MaxPool2d: after the kernel size come [stride], [padding] and [options], got 3 arguments' },
      { "nn.MaxPool2d(2, 'x')", "MaxPool2d: stride must be an integer or a pair {h, w}, got the string 'x'" },
      { 'nn.AvgPool2d(2, { paddin = 1 })', "AvgPool2d: unknown option 'paddin' (did you mean 'padding'?); " ..
        'options: ceil_mode, count_include_pad, divisor_override, padding, stride' },
      { 'nn.AvgPool2d(2, { divisor_override = 3 })', 'AvgPool2d: divisor_override = 3 is not supported (leave it ' ..
        'out: the divisor is the window size, or the count of input elements in the window with count_include_pad = false)' },
      { 'nn.Conv2d(1, 2, 3, { stride = 0 })', 'Conv2d: stride must be >= 1, got 0' },
      { "nn.Conv2d(1, 2, 3, { bias = 'no' })", "Conv2d: bias must be true or false, got the string 'no'" },
      { "nn.Linear(3, 4, { bias = 'no' })", "Linear: bias must be true or false, got the string 'no'" },
      { 'nn.BatchNorm2d(3, { momentum = false })', 'BatchNorm2d: momentum must be a number, got false' },
      { 'nn.BatchNorm2d(3, { momentum = 1.5 })', 'BatchNorm2d: momentum must be in [0, 1], got 1.5' },
      { 'nn.BatchNorm2d(3, { eps = 0 })', 'BatchNorm2d: eps must be > 0, got 0' },
      { "nn.BatchNorm2d('3')", "BatchNorm2d: num_features must be a positive integer, got 3" },
    } do
      local f = assert(load('local nn, rl = ...\nlocal m = ' .. c[1] .. '\nreturn m', '=(case)'))
      local ok, msg = pcall(f, nn, rl)
      assert.is_false(ok, c[1])
      assert.are.equal('(case):2: ' .. c[2], msg)
    end
  end)

  it('MaxPool2d and AvgPool2d take a positional stride and padding, as PyTorch', function()
    local x = rl.arange(25):float():view(1, 1, 5, 5)
    local m = nn.MaxPool2d(2, 1)
    assert.are.same({ 1, 1, 4, 4 }, m(x).shape)
    assert.are.equal('MaxPool2d(2x2, stride 1x1)', m:describe())
    m = nn.MaxPool2d(3, 2, 1)
    assert.are.same(nn.MaxPool2d(3, { stride = 2, padding = 1 })(x):tolist(), m(x):tolist())
    assert.are.same({ { { { 6, 8, 9 }, { 16, 18, 19 }, { 21, 23, 24 } } } }, m(x):tolist())
    local a = nn.AvgPool2d(2, 2, 1, { count_include_pad = false })
    assert.are.same({ { { { 0, 1.5, 3.5 }, { 7.5, 9, 11 }, { 17.5, 19, 21 } } } }, a(x):tolist())
    assert.are.same({ 1, 1, 2, 2 }, nn.MaxPool2d({ 2, 2 }, { 2, 2 })(x).shape)
  end)

  -- a module used twice (tied) gave its parameters twice, and SGD refused
  -- "parameter 3 is parameter 1 again"; PyTorch lists them once
  it('a shared module or tied parameter is listed once; state_dict keeps every key', function()
    local l = nn.Linear(2, 2)
    local s = nn.Sequential(l, nn.ReLU(), l)
    assert.are.equal(2, #s:parameters())
    assert.are.equal(6, s:num_parameters())
    assert.are.same({ '0.weight', '0.bias' }, { s:named_parameters()[1][1], s:named_parameters()[2][1] })
    assert.are.equal(3, #s:modules())
    local _, keys = s:state_dict()
    assert.are.same({ '0.weight', '0.bias', '2.weight', '2.bias' }, keys)
    assert.truthy(s:summary():find('total: 6 parameters', 1, true))
    local opt = rl.optim.SGD(s:parameters(), { lr = 0.1 })
    F.mse_loss(s(rl.ones(1, 2)), rl.zeros(1, 2)):backward()
    opt:step()
    -- a parameter tied across two modules stays one tensor when moved
    local a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b:register_parameter('weight', a.weight)
    local t = nn.Sequential(a, b)
    assert.are.equal(3, #t:parameters())
    t:to('f64')
    assert.are.equal(a.weight, b.weight)
    assert.are.equal('f64', b.weight.dtype)
    assert.are.equal(3, #t:parameters())
  end)

  -- a '.' in a child's name made state_dict keys ambiguous; a bad
  -- argument said "add_module: 1 is not a module"
  it("child names without '.', and Sequential's bad arguments named by position", function()
    for _, c in ipairs {
      { "nn.Sequential({ { 'a.b', nn.ReLU() } })",
        "Sequential: the child name 'a.b' must not contain '.' (state_dict keys join names with '.')" },
      { "nn.Sequential({ { '', nn.ReLU() } })", 'Sequential: a child name must not be empty' },
      { 'nn.Sequential({ { 1, nn.ReLU() } })', 'Sequential: a child name must be a string, got the number 1' },
      { "nn.Sequential({ { 'a', 5 } })", "Sequential: entry 1 ('a') is the number 5, not a module" },
      { 'nn.Sequential({ nn.ReLU() })', 'Sequential: entry 1 must be a pair {name, module}, got a table' },
      { 'nn.Sequential(nn.Linear(2, 3), 5)', 'Sequential: argument 2 is the number 5, not a module' },
      { 'nn.Sequential(nn.ReLU(), nil, nn.ReLU())', 'Sequential: argument 2 is nil, not a module' },
      { "nn.Sequential():add_module('x.y', nn.ReLU())",
        "add_module: the child name 'x.y' must not contain '.' (state_dict keys join names with '.')" },
      { "nn.Sequential():add_module('x', true)", "add_module: the child 'x' is the boolean true, not a module" },
      { "nn.Linear(2, 2):register_parameter('w.1', rl.zeros(2))",
        "register_parameter: the parameter name 'w.1' must not contain '.' (state_dict keys join names with '.')" },
      { "nn.Linear(2, 2):register_buffer('b.1', rl.zeros(2))",
        "register_buffer: the buffer name 'b.1' must not contain '.' (state_dict keys join names with '.')" },
    } do
      local f = assert(load('local nn, rl = ...\nlocal m = ' .. c[1] .. '\nreturn m', '=(case)'))
      local ok, msg = pcall(f, nn, rl)
      assert.is_false(ok, c[1])
      assert.are.equal('(case):2: ' .. c[2], msg)
    end
  end)

  it('prints a summary with parameter counts', function()
    local s = tostring(nn.Sequential(nn.Linear(3, 4), nn.ReLU()))
    assert.truthy(s:find('Linear(3 -> 4)', 1, true))
    assert.truthy(s:find('(16 params)', 1, true))
    assert.truthy(s:find('total: 16 parameters', 1, true))
  end)

  it('to() converts parameters and buffers but keeps integer buffers', function()
    local m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm2d(2))
    m:to('f64')
    assert.are.equal('f64', m:get(1).weight.dtype)
    assert.are.equal('f64', m:get(2).running_var.dtype)
    assert.are.equal('i64', m:get(2).num_batches_tracked.dtype)
    assert.is_true(m:get(1).weight.requires_grad)
    local y = m(rl.randn(3, 2, 'f64'))
    assert.are.equal('f64', y.dtype)
  end)
end)

describe('state_dict and checkpoints', function()
  it('load_state_dict copies values and checks keys and shapes', function()
    local a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b:load_state_dict(a:state_dict())
    assert.are.same(a.weight:tolist(), b.weight:tolist())
    local ok, msg = pcall(b.load_state_dict, b, { weight = rl.zeros(2, 3) })
    assert.is_false(ok)
    assert.truthy(msg:find('missing keys: bias', 1, true))
    ok, msg = pcall(b.load_state_dict, b, { weight = rl.zeros(3, 2), bias = rl.zeros(2) })
    assert.is_false(ok)
    assert.truthy(msg:find('weight has shape 3x2 in the file but 2x3 in the model', 1, true))
    local missing, unexpected = b:load_state_dict({ bias = rl.ones(2), extra = rl.ones(1) }, false)
    assert.are.same({ 'weight' }, missing)
    assert.are.same({ 'extra' }, unexpected)
    assert.are.same({ 1, 1 }, b.bias:tolist())
  end)

  it('model:save / model:load round-trip every tensor exactly', function()
    local d = tmpdir()
    rl.manual_seed(3)
    local m = rl.models.WRN_16_4 { classes = 5 }
    m:train()
    m(rl.randn(2, 3, 32, 32)) -- move the running statistics
    m:save(d .. '/wrn.safetensors')
    local m2 = rl.models.WRN_16_4 { classes = 5 }
    m2:load(d .. '/wrn.safetensors')
    local s1, order = m:state_dict()
    local s2 = m2:state_dict()
    for _, k in ipairs(order) do
      assert.are.same(s1[k]:tolist(), s2[k]:tolist(), k)
    end
    local ok, msg = pcall(rl.models.CNN001().load, rl.models.CNN001(), d .. '/wrn.safetensors')
    assert.is_false(ok)
    assert.truthy(msg:find('missing keys', 1, true))
    os.execute('rm -rf ' .. d)
  end)
end)

describe('initialisation', function()
  it('Linear and Conv2d follow PyTorch: weight and bias in +-1/sqrt(fan_in)', function()
    rl.manual_seed(1)
    local l = nn.Linear(400, 300)
    local bound = 1 / math.sqrt(400)
    assert.is_true(l.weight:abs():max():item() <= bound)
    assert.is_true(l.weight:abs():max():item() > 0.95 * bound)
    -- uniform(-b, b) has std b / sqrt(3)
    assert.is_true(math.abs(l.weight:std():item() - bound / math.sqrt(3)) < 0.02 * bound)
    assert.is_true(l.bias:abs():max():item() <= bound)
    local c = nn.Conv2d(16, 8, 3)
    assert.is_true(c.weight:abs():max():item() <= 1 / math.sqrt(16 * 9))
  end)

  it('kaiming_normal_ (fan_in / fan_out), normal_ and constant_', function()
    rl.manual_seed(2)
    local w = rl.empty(256, 128, 3, 3)
    nn.init.kaiming_normal_(w, { nonlinearity = 'relu' })
    assert.is_true(math.abs(w:std():item() - math.sqrt(2 / (128 * 9))) < 0.01 * math.sqrt(2 / (128 * 9)) * 5)
    nn.init.kaiming_normal_(w, { mode = 'fan_out', nonlinearity = 'relu' })
    assert.is_true(math.abs(w:std():item() - math.sqrt(2 / (256 * 9))) < 0.05 * math.sqrt(2 / (256 * 9)))
    nn.init.normal_(w, 1, 0.5)
    assert.is_true(math.abs(w:mean():item() - 1) < 0.01)
    nn.init.constant_(w, 3)
    assert.are.equal(3, w:min():item())
  end)

  it('the reference initialisations of CNN002 and WideResNet', function()
    local c = rl.models.CNN002()
    assert.are.equal(0, c.classifier.fc3.weight:abs():max():item())
    assert.are.equal(0, c.feature_extractor.conv1.bias:abs():max():item())
    local w = rl.models.WRN_16_4()
    local conv = w.block1.layer:get(1).conv1
    local want = math.sqrt(2 / (9 * conv.out_channels))
    assert.is_true(math.abs(conv.weight:std():item() - want) < 0.05 * want)
    assert.are.equal(0, w.fc.bias:abs():max():item())
  end)
end)

describe('rl.models', function()
  -- parameter counts of the same networks in PyTorch
  local counts = {
    { 'CNN001', nil, { 2, 1, 28, 28 }, 1199882 },
    { 'CNN002', nil, { 2, 1, 28, 28 }, 312202 },
    { 'WRN_16_4', nil, { 2, 3, 32, 32 }, 2748890 },
    { 'ResNet18', { classes = 10 }, { 2, 3, 64, 64 }, 11181642 },
    { 'MLP', nil, { 2, 1, 28, 28 }, 269322 },
  }
  for _, c in ipairs(counts) do
    it(c[1] .. ' has PyTorch\'s parameter count and gives [N, classes]', function()
      local m = rl.models.get(c[1], c[2])
      assert.are.equal(c[4], m:num_parameters())
      m:eval()
      local y = m(rl.randn(c[3]))
      assert.are.same({ 2, 10 }, y.shape)
    end)
  end

  it('ResNet-50 and the WRN-40-10 variants are built with the right sizes', function()
    assert.are.equal(23526473, rl.models.ResNet50 { classes = 9 }:num_parameters())
    local w = rl.models.WRN_40_10_drop20()
    assert.are.equal(0.2, w.drop)
    assert.are.equal(55841754, w:num_parameters()) -- as PyTorch counts WRN-40-10 (no sub_block1)
  end)

  it('names its tensors as the reference does', function()
    local sd = rl.models.WRN_16_4():state_dict()
    for _, k in ipairs { 'conv1.weight', 'block1.layer.0.bn1.running_mean', 'block1.layer.0.convShortcut.weight',
      'block2.layer.1.conv2.weight', 'bn1.num_batches_tracked', 'fc.bias' } do
      assert.is_not_nil(sd[k], k)
    end
    local c = rl.models.CNN002():state_dict()
    assert.is_not_nil(c['feature_extractor.conv4.weight'])
    assert.is_not_nil(c['classifier.fc3.bias'])
    local r = rl.models.ResNet50 { classes = 9 }:state_dict()
    assert.is_not_nil(r['layer1.0.downsample.0.weight'])
    assert.is_not_nil(r['layer4.2.bn3.running_var'])
  end)

  it('unknown model names and options are errors', function()
    local ok, msg = pcall(rl.models.get, 'CNN003')
    assert.is_false(ok)
    assert.truthy(msg:find('CNN001', 1, true))
    ok, msg = pcall(rl.models.CNN001, { clases = 10 })
    assert.is_false(ok)
    assert.truthy(msg:find('clases', 1, true))
  end)
end)
