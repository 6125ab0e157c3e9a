--- rl.nn: modules, layers and initialisers.
--
-- A Module holds parameters, buffers and child modules, each in the order
-- they were registered, under the names PyTorch would give them, so that
-- state_dict() keys match the reference implementation's
-- ("block1.layer.0.bn1.running_mean").  Calling a module calls forward.
local rl = require 'rl.base'
local options = require 'rl.options'
local F = rl.F

local nn = { init = {} }

-- ---------------------------------------------------------------------------
-- classes

-- Calling a module runs its forward and names, in a refusal raised
-- inside, the module that raised it by its path from the outermost module
-- called: "CNN002.feature_extractor.2 (Conv2d): conv2d: input has 3
-- channels, ..." (PyTorch's state_dict names), at the line that called
-- the outermost module.  A bug (no refusal) keeps its message and position.
local depth = 0 -- module calls in progress
local last -- the refusal the innermost failing call raised: {msg, mod, path, class, core}

local function failed(self, err)
  local path, class, core
  if last and last.msg == err then -- raised through a child: find its name
    for k, m in pairs(self._modules or {}) do
      if m == last.mod then path = k .. (last.path ~= '' and '.' .. last.path or '') break end
    end
    path, class, core = path or last.path, last.class, last.core
  else
    core = options.refusal(err)
    last = nil
    if not core then error(err, 0) end
    path, class = '', self.__name
  end
  local msg = core
  -- a leaf's own refusal ("linear: ...") needs no name; a model's does
  if path ~= '' then
    msg = string.format('%s.%s (%s): %s', self.__name, path, class, core)
  elseif self._modules and next(self._modules) then
    msg = string.format('%s: %s', self.__name, core)
  end
  if depth > 0 then
    last = { msg = msg, mod = self, path = path, class = class, core = core }
    error(msg, 0)
  end
  last = nil
  error(msg, 3)
end

local function returned(self, ok, ...)
  depth = depth - 1
  if ok then return ... end
  failed(self, ...)
end

local function call_module(self, ...)
  depth = depth + 1
  return returned(self, pcall(self.forward, self, ...))
end

--- nn.class(name, parent): a class table; Class(...) makes an instance
-- through Class.__init(self, ...).
function nn.class(name, parent)
  local cls = {}
  cls.__index = cls
  cls.__name = name
  cls.__call = call_module
  cls.__tostring = function(self) return self:summary() end
  setmetatable(cls, {
    __index = parent,
    -- a refusal inside __init ("Linear: ...", "CNN001: unknown option")
    -- is raised at the line that made the module; any other error (a bug)
    -- keeps its own position
    __call = function(c, ...)
      local obj = setmetatable({}, c)
      local ok, err = pcall(c.__init, obj, ...)
      if not ok then options.reraise(err, 2) end
      return obj
    end,
  })
  return cls
end

--- Module: the base of every layer and model: parameters, buffers and
-- children by name, train/eval, to(device), state_dict, save/load, summary.
local Module = nn.class('Module')
nn.Module = Module

function Module:__init()
  self._params, self._buffers, self._modules = {}, {}, {}
  self._order = { params = {}, buffers = {}, modules = {} }
  self.training = true
end

-- What a bad argument is, in a message: "the number 5", "a function".
local function what(v)
  if type(v) == 'number' or type(v) == 'boolean' then return string.format('the %s %s', type(v), tostring(v)) end
  return options.what(v)
end

-- A name for a parameter, buffer or child: a non-empty string without
-- '.', which joins the names in state_dict keys ('a.b' would be ambiguous).
local NOUNS = { params = 'parameter', buffers = 'buffer', modules = 'child' }
local function check_name(who, kind, name)
  local noun = NOUNS[kind]
  if type(name) ~= 'string' then
    error(string.format('%s: a %s name must be a string, got %s', who, noun, what(name)), 0)
  elseif name == '' then
    error(string.format('%s: a %s name must not be empty', who, noun), 0)
  elseif name:find('.', 1, true) then
    error(string.format("%s: the %s name '%s' must not contain '.' (state_dict keys join names with '.')",
      who, noun, name), 0)
  end
end

local function is_module(m) return type(m) == 'table' and getmetatable(m) ~= nil and m._modules ~= nil end

-- Raises at the line that called the public method `who`, which must not
-- tail-call register.
local function register(self, kind, name, value, who)
  local ok, err = pcall(check_name, who, kind, name)
  if not ok then error(err, 3) end
  local store = self['_' .. kind]
  if store[name] == nil then table.insert(self._order[kind], name) end
  store[name] = value
  rawset(self, name, value)
end

--- Register a parameter (a tensor that requires grad) under `name`.
function Module:register_parameter(name, t)
  if t ~= nil and not rl.is_tensor(t) then
    error(string.format('register_parameter: %s is a %s, expected a tensor', name, type(t)), 2)
  end
  if t and not t.requires_grad then t:requires_grad_() end
  register(self, 'params', name, t, 'register_parameter')
  return t
end

--- Register a buffer (state saved in the state_dict, no gradient).
function Module:register_buffer(name, t)
  register(self, 'buffers', name, t, 'register_buffer')
  return t
end

--- Add a child module under `name` (a string without '.').
function Module:add_module(name, m)
  if not is_module(m) then
    error(string.format("add_module: the child '%s' is %s, not a module", tostring(name), what(m)), 2)
  end
  register(self, 'modules', name, m, 'add_module')
  return m
end

function Module:forward()
  error(string.format('%s: forward is not implemented', self.__name), 2)
end

--- Child modules in registration order: list of {name, module}.
function Module:children()
  local out = {}
  for _, k in ipairs(self._order.modules) do out[#out + 1] = { k, self._modules[k] } end
  return out
end

-- Walk the tree: fn(prefix, module) for every module, depth first.
local function walk(m, prefix, fn)
  fn(prefix, m)
  for _, k in ipairs(m._order.modules) do
    walk(m._modules[k], prefix .. k .. '.', fn)
  end
end

--- Every module of the tree (self first), depth first; a module shared
-- by two parents comes once, as in PyTorch.
function Module:modules()
  local out, seen = {}, {}
  walk(self, '', function(_, m)
    if not seen[m] then out[#out + 1], seen[m] = m, true end
  end)
  return out
end

--- All parameters, as an ordered list of {name, tensor}.  A parameter
-- shared (tied) by two modules comes once, under its first name, as in
-- PyTorch: an optimiser must step it once (state_dict keeps both keys).
function Module:named_parameters()
  local out, seen = {}, {}
  walk(self, '', function(prefix, m)
    for _, k in ipairs(m._order.params) do
      local p = m._params[k]
      if p and not seen[p] then out[#out + 1], seen[p] = { prefix .. k, p }, true end
    end
  end)
  return out
end

--- All parameters as a list of tensors (what an optimiser takes).
function Module:parameters()
  local out = {}
  for _, p in ipairs(self:named_parameters()) do out[#out + 1] = p[2] end
  return out
end

--- Number of scalar parameters.
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

--- name -> tensor for every parameter and buffer (PyTorch's keys).
function Module:state_dict()
  local sd, order = {}, {}
  walk(self, '', function(prefix, m)
    for _, kind in ipairs { 'params', 'buffers' } do
      for _, k in ipairs(m._order[kind]) do
        local t = m['_' .. kind][k]
        if t then
          sd[prefix .. k] = t
          order[#order + 1] = prefix .. k
        end
      end
    end
  end)
  return sd, order
end

--- Copy values from a table name -> tensor into this module's tensors.
-- strict (default true, or {strict = boolean}): missing and unexpected
-- keys are errors.  Errors are raised at the line that called it.
local function load_state_dict(self, sd, strict)
  if type(strict) == 'table' and not rl.is_tensor(strict) then
    -- m:load_state_dict(other:state_dict()) passes state_dict's second
    -- result, the list of keys, along: that is no option
    local entries = 0
    for _ in pairs(strict) do entries = entries + 1 end
    if entries > 0 and entries == #strict then
      strict = nil
    else
      options.known('load_state_dict', strict, { strict = true })
      strict = strict.strict
    end
  end
  if strict == nil then strict = true end
  if type(strict) ~= 'boolean' then
    error('load_state_dict: strict must be a boolean (or {strict = boolean}), got ' .. options.what(strict), 0)
  end
  if type(sd) ~= 'table' or rl.is_tensor(sd) then
    error('load_state_dict: the state dict must be a table name -> tensor, got ' .. options.what(sd), 0)
  end
  local own, order = self:state_dict()
  local missing, unexpected = {}, {}
  for _, k in ipairs(order) do
    if sd[k] == nil then missing[#missing + 1] = k end
  end
  for k in pairs(sd) do
    if own[k] == nil then unexpected[#unexpected + 1] = k end
  end
  table.sort(unexpected)
  if strict and (#missing > 0 or #unexpected > 0) then
    error(string.format('load_state_dict: missing keys: %s; unexpected keys: %s',
      #missing > 0 and table.concat(missing, ', ') or 'none',
      #unexpected > 0 and table.concat(unexpected, ', ') or 'none'), 0)
  end
  rl.no_grad(function()
    for _, k in ipairs(order) do
      local src, dst = sd[k], own[k]
      if src ~= nil then
        if not rl.is_tensor(src) then
          error(string.format('load_state_dict: %s is a %s, expected a tensor', k, type(src)), 0)
        end
        if src:numel() ~= dst:numel() or #src.shape ~= #dst.shape then
          error(string.format('load_state_dict: %s has shape %s in the file but %s in the model',
            k, table.concat(src.shape, 'x'), table.concat(dst.shape, 'x')), 0)
        end
        for i = 1, #src.shape do
          if src.shape[i] ~= dst.shape[i] then
            error(string.format('load_state_dict: %s has shape %s in the file but %s in the model',
              k, table.concat(src.shape, 'x'), table.concat(dst.shape, 'x')), 0)
          end
        end
        dst:copy_(src)
      end
    end
  end)
  return missing, unexpected
end
Module.load_state_dict = options.public(load_state_dict)

--- Write the state_dict to a safetensors file (atomically).
function Module:save(path, metadata)
  rl.save(path, (self:state_dict()), metadata)
end

--- Read a safetensors file written by save() (or by PyTorch) into this module.
Module.load = options.public(function(self, path, strict)
  local sd = rl.load(path)
  return load_state_dict(self, sd, strict)
end)

function Module:train(mode)
  if mode == nil then mode = true end
  walk(self, '', function(_, m) m.training = mode end)
  return self
end

function Module:eval() return self:train(false) end

--- Run fn() with the whole tree in `mode` ('train' or 'eval'; nil leaves it
-- as it is) and give each module back its own previous flag afterwards, even
-- when fn raises (a model may be half in train mode on purpose).  Returns
-- fn's results.
function Module:with_mode(mode, fn)
  if mode == nil then return fn() end
  if mode ~= 'train' and mode ~= 'eval' then
    error(string.format("with_mode: mode must be 'train' or 'eval', got %q", tostring(mode)), 2)
  end
  local saved = {}
  for _, m in ipairs(self:modules()) do saved[m] = m.training end
  self:train(mode == 'train')
  local res = table.pack(pcall(fn))
  for m, training in pairs(saved) do m.training = training end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- Clear the gradients of every parameter (set to nil, as set_to_none).
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
end

--- Move or convert every parameter and buffer: to('cuda'), to('f64'),
-- to{device = ..., dtype = ...}.  Returns self.
Module.to = options.public(function(self, what)
  local function convert(t)
    local floating = { f32 = true, f64 = true, bf16 = true, f16 = true, float32 = true, float64 = true,
      bfloat16 = true, float16 = true, half = true, float = true, double = true }
    if t.dtype == 'i64' and (floating[what] or type(what) == 'table' and what.dtype) then
      -- integer buffers (num_batches_tracked) keep their dtype
      if type(what) == 'table' and what.device then return t:to(what.device) end
      return t
    end
    return t:to(what)
  end
  local done = {} -- a tensor shared by two modules becomes one new tensor
  walk(self, '', function(_, m)
    for _, kind in ipairs { 'params', 'buffers' } do
      local store = m['_' .. kind]
      for _, k in ipairs(m._order[kind]) do
        local t = store[k]
        if t then
          local nt = done[t]
          if not nt then
            nt = rl.no_grad(convert, t)
            if nt ~= t and kind == 'params' then nt = nt:detach():requires_grad_() end
            done[t] = nt
          end
          if nt ~= t then
            store[k] = nt
            rawset(m, k, nt)
          end
        end
      end
    end
  end)
  return self
end)

--- One line per module with its parameter count, and the total.
function Module:summary()
  local lines = {}
  local mode_of = {}
  walk(self, '', function(prefix, m)
    local depth = select(2, prefix:gsub('%.', ''))
    local own = 0
    for _, k in ipairs(m._order.params) do
      if m._params[k] then own = own + m._params[k]:numel() end
    end
    local name = prefix == '' and '' or prefix:sub(1, -2) .. ': '
    -- the root says its mode; a module in another mode than its parent's says so
    local mode = m.training and 'train' or 'eval'
    local parent = prefix:match('^(.*)%.[^.]+%.$')
    parent = parent and parent .. '.' or (prefix ~= '' and '' or nil)
    mode_of[prefix] = mode
    local tag = ''
    if prefix == '' then tag = string.format('  [%s mode]', mode)
    elseif mode_of[parent] ~= mode then tag = string.format('  [%s mode]', mode) end
    lines[#lines + 1] = string.rep('  ', depth) .. name .. m:describe() ..
        (own > 0 and string.format('  (%d params)', own) or '') .. tag
  end)
  lines[#lines + 1] = string.format('total: %d parameters', self:num_parameters())
  return table.concat(lines, '\n')
end

function Module:describe() return self.__name end

-- ---------------------------------------------------------------------------
-- initialisers (in place, outside the graph)

local function fans(t)
  local s = t.shape
  if #s < 2 then error('init: fan in/out need a tensor with at least 2 dims', 3) end
  local field = 1
  for i = 3, #s do field = field * s[i] end
  return s[2] * field, s[1] * field
end

local function gain(nonlinearity, a)
  if nonlinearity == 'relu' then return math.sqrt(2) end
  if nonlinearity == 'leaky_relu' then return math.sqrt(2 / (1 + (a or 0.01) ^ 2)) end
  if nonlinearity == 'tanh' then return 5 / 3 end
  return 1 -- linear, conv, sigmoid
end

--- kaiming_uniform_(t, {a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu'})
function nn.init.kaiming_uniform_(t, o)
  o = o or {}
  local fin, fout = fans(t)
  local fan = (o.mode or 'fan_in') == 'fan_in' and fin or fout
  local bound = gain(o.nonlinearity or 'leaky_relu', o.a or 0) * math.sqrt(3 / fan)
  return rl.no_grad(function() return t:uniform_(-bound, bound, o.generator) end)
end

--- kaiming_normal_(t, {a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu'})
function nn.init.kaiming_normal_(t, o)
  o = o or {}
  local fin, fout = fans(t)
  local fan = (o.mode or 'fan_in') == 'fan_in' and fin or fout
  local std = gain(o.nonlinearity or 'leaky_relu', o.a or 0) / math.sqrt(fan)
  return rl.no_grad(function() return t:normal_(0, std, o.generator) end)
end

function nn.init.normal_(t, mean, std, g)
  return rl.no_grad(function() return t:normal_(mean or 0, std or 1, g) end)
end

function nn.init.uniform_(t, a, b, g)
  return rl.no_grad(function() return t:uniform_(a or 0, b or 1, g) end)
end

function nn.init.constant_(t, v) return rl.no_grad(function() return t:fill_(v) end) end
function nn.init.zeros_(t) return nn.init.constant_(t, 0) end
function nn.init.ones_(t) return nn.init.constant_(t, 1) end

-- PyTorch's default for Linear and Conv: kaiming_uniform(a = sqrt(5)) for the
-- weight, uniform(+-1/sqrt(fan_in)) for the bias.
local function default_init(w, b)
  nn.init.kaiming_uniform_(w, { a = math.sqrt(5) })
  if b then
    local fin = fans(w)
    local bound = fin > 0 and 1 / math.sqrt(fin) or 0
    nn.init.uniform_(b, -bound, bound)
  end
end

-- ---------------------------------------------------------------------------
-- layers

local function pair(v) return type(v) == 'table' and v or { v, v } end

local F_options = rl._F_options -- rl.F's option checks (rl.base)

--- Linear(in, out, {bias = true, dtype = 'f32'})
local Linear = nn.class('Linear', Module)
nn.Linear = Linear
-- Each of the sizes (name, value pairs) a positive integer, else an error
-- naming it: Linear(3) said "init: fan in/out need a tensor with at least 2 dims".
local function check_sizes(who, ...)
  local args = table.pack(...)
  for i = 1, args.n, 2 do
    local v = args[i + 1]
    if math.type(v) ~= 'integer' and not (type(v) == 'number' and v == math.floor(v)) or v < 1 then
      error(string.format('%s: %s must be a positive integer, got %s', who, args[i], tostring(v)), 0)
    end
  end
end

function Linear:__init(nin, nout, o)
  Module.__init(self)
  check_sizes('Linear', 'in_features', nin, 'out_features', nout)
  o = options.check('Linear', o, { { 'bias', 'boolean', true }, { 'dtype', 'string', 'f32' } })
  self.in_features, self.out_features = nin, nout
  self:register_parameter('weight', rl.empty(nout, nin, o.dtype))
  self:register_parameter('bias', o.bias and rl.empty(nout, o.dtype) or nil)
  default_init(self.weight, self.bias)
end
function Linear:forward(x) return F.linear(x, self.weight, self.bias) end
function Linear:describe()
  return string.format('Linear(%d -> %d%s)', self.in_features, self.out_features,
    self.bias and '' or ', no bias')
end

--- Conv2d(in, out, kernel, {stride = 1, padding = 0, dilation = 1, bias = true})
local Conv2d = nn.class('Conv2d', Module)
nn.Conv2d = Conv2d
local CONV2D = { bias = { kind = 'boolean' }, dtype = { kind = 'string' } }
for k, row in pairs(F_options.conv2d) do CONV2D[k] = row end
function Conv2d:__init(cin, cout, k, o)
  Module.__init(self)
  o = F_options.check('Conv2d', o, CONV2D)
  local kk = pair(k)
  check_sizes('Conv2d', 'in_channels', cin, 'out_channels', cout, 'kernel_size', kk[1], 'kernel_size', kk[2])
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, kk
  self.opts = { stride = o.stride or 1, padding = o.padding or 0, dilation = o.dilation or 1 }
  local dt = o.dtype or 'f32'
  self:register_parameter('weight', rl.empty(cout, cin, kk[1], kk[2], dt))
  self:register_parameter('bias', o.bias ~= false and rl.empty(cout, dt) or nil)
  default_init(self.weight, self.bias)
end
function Conv2d:forward(x) return F.conv2d(x, self.weight, self.bias, self.opts) end
function Conv2d:describe()
  local s, p = pair(self.opts.stride), pair(self.opts.padding)
  return string.format('Conv2d(%d -> %d, %dx%d, stride %d, padding %d%s)', self.in_channels,
    self.out_channels, self.kernel_size[1], self.kernel_size[2], s[1], p[1],
    self.bias and '' or ', no bias')
end

--- BatchNorm2d(C, {eps = 1e-5, momentum = 0.1, affine = true}); also for
-- [N, C] inputs (as BatchNorm1d).
local BatchNorm2d = nn.class('BatchNorm2d', Module)
nn.BatchNorm2d = BatchNorm2d
nn.BatchNorm1d = BatchNorm2d
local BATCH_NORM_ROWS = {
  { 'eps', 'number', 1e-5, '> 0' },
  { 'momentum', 'number', 0.1, '[0, 1]' },
  { 'affine', 'boolean', true },
  { 'dtype', 'string', 'f32' },
}
function BatchNorm2d:__init(c, o)
  Module.__init(self)
  check_sizes('BatchNorm2d', 'num_features', c)
  o = options.check('BatchNorm2d', o, BATCH_NORM_ROWS)
  self.num_features, self.eps, self.momentum = c, o.eps, o.momentum
  local dt = o.dtype
  if o.affine then
    self:register_parameter('weight', rl.ones(c, dt))
    self:register_parameter('bias', rl.zeros(c, dt))
  end
  self:register_buffer('running_mean', rl.zeros(c, dt))
  self:register_buffer('running_var', rl.ones(c, dt))
  self:register_buffer('num_batches_tracked', rl.zeros({}, 'i64'))
end
function BatchNorm2d:forward(x)
  if self.training then
    rl.no_grad(function() self.num_batches_tracked:add_(1) end)
  end
  return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
    self.training, self.momentum, self.eps)
end
function BatchNorm2d:describe() return string.format('BatchNorm2d(%d)', self.num_features) end

local function simple(name, fn, describe)
  local cls = nn.class(name, Module)
  nn[name] = cls
  cls.forward = fn
  if describe then cls.describe = describe end
  return cls
end

--- ReLU(): max(x, 0)
local ReLU = simple('ReLU', function(_, x) return x:relu() end)
function ReLU:__init() Module.__init(self) end

--- Identity(): x as it is
local Identity = simple('Identity', function(_, x) return x end)
function Identity:__init() Module.__init(self) end

--- Flatten(start_dim = 2, end_dim = -1)
local Flatten = simple('Flatten', function(self, x) return x:flatten(self.start_dim, self.end_dim) end)
function Flatten:__init(s, e)
  Module.__init(self)
  self.start_dim, self.end_dim = s or 2, e or -1
end

-- "MaxPool2d(3x3, stride 2, padding 1)"
local function describe_pool(self)
  local s = table.concat(pair(self.kernel_size), 'x')
  for _, k in ipairs { 'stride', 'padding' } do
    if self.opts[k] then s = s .. string.format(', %s %s', k, table.concat(pair(self.opts[k]), 'x')) end
  end
  return string.format('%s(%s)', self.__name, s)
end

--- MaxPool2d(kernel, [stride = kernel], [padding = 0]), or the stride and
-- padding as options {stride = ..., padding = ...}, as PyTorch's;
-- AvgPool2d likewise.
local MaxPool2d = simple('MaxPool2d', function(self, x) return F.max_pool2d(x, self.kernel_size, self.opts) end,
  describe_pool)
function MaxPool2d:__init(k, ...)
  Module.__init(self)
  self.kernel_size, self.opts = F_options.pool('MaxPool2d', F_options.max_pool2d, k, ...)
end

--- AvgPool2d(kernel, [stride = kernel], [padding = 0], [{count_include_pad = true}])
local AvgPool2d = simple('AvgPool2d', function(self, x) return F.avg_pool2d(x, self.kernel_size, self.opts) end,
  describe_pool)
function AvgPool2d:__init(k, ...)
  Module.__init(self)
  self.kernel_size, self.opts = F_options.pool('AvgPool2d', F_options.avg_pool2d, k, ...)
end

--- AdaptiveAvgPool2d(size = 1): average pooling to size x size outputs
local AdaptiveAvgPool2d = simple('AdaptiveAvgPool2d', function(self, x)
  return F.adaptive_avg_pool2d(x, self.output_size)
end)
function AdaptiveAvgPool2d:__init(size)
  Module.__init(self)
  self.output_size = size or 1
end

--- Dropout(p = 0.5) and Dropout2d(p = 0.5): active in training mode only.
local Dropout = simple('Dropout', function(self, x) return F.dropout(x, self.p, self.training) end,
  function(self) return string.format('Dropout(%g)', self.p) end)
function Dropout:__init(p)
  Module.__init(self)
  self.p = p or 0.5
end

--- Dropout2d(p = 0.5): zeroes whole channels, in training mode only
local Dropout2d = simple('Dropout2d', function(self, x) return F.dropout2d(x, self.p, self.training) end,
  function(self) return string.format('Dropout2d(%g)', self.p) end)
function Dropout2d:__init(p)
  Module.__init(self)
  self.p = p or 0.5
end

--- Sequential(m1, m2, ...) names its children '0', '1', ... as PyTorch;
-- Sequential{{'conv1', m1}, {'relu1', m2}} names them.  seq:get(i) is 1-based.
local Sequential = nn.class('Sequential', Module)
nn.Sequential = Sequential
function Sequential:__init(...)
  Module.__init(self)
  local n, args = select('#', ...), { ... }
  if n == 1 and type(args[1]) == 'table' and getmetatable(args[1]) == nil then
    for i, e in ipairs(args[1]) do
      if type(e) ~= 'table' or getmetatable(e) ~= nil then
        error(string.format('Sequential: entry %d must be a pair {name, module}, got %s', i, what(e)), 0)
      end
      check_name('Sequential', 'modules', e[1])
      if not is_module(e[2]) then
        error(string.format("Sequential: entry %d ('%s') is %s, not a module", i, e[1], what(e[2])), 0)
      end
      self:add(e[2], e[1])
    end
  else
    for i = 1, n do
      if not is_module(args[i]) then
        error(string.format('Sequential: argument %d is %s, not a module', i, what(args[i])), 0)
      end
      self:add(args[i])
    end
  end
end
--- Append a module (named by its position from 0 unless a name is given).
function Sequential:add(m, name)
  self:add_module(name or tostring(#self._order.modules), m)
  return self
end
function Sequential:get(i) return self._modules[self._order.modules[i]] end
function Sequential:__len() return #self._order.modules end
function Sequential:forward(x)
  for i, k in ipairs(self._order.modules) do
    x = self._modules[k](x)
  end
  return x
end

return nn
