--- rl.base: the engine's tensors and autograd as one table, the table that
-- `require 'rl'` returns and every library module builds on.
--
-- The C module `rl.core` is gathered here, with the functional forms
-- (`rl.add(a, b)` for `a:add(b)`) and the few helpers written in Lua.  The
-- library modules (rl.nn, rl.attacks, ...) require this file rather than
-- 'rl', so none of them needs rl/init.lua to have loaded its siblings first:
-- each requires what it uses, and init.lua only gathers them.
--
-- Conventions (as Lua and Torch7 count, values as PyTorch):
--   * dims and positions are 1-based; negative ones count from the end;
--   * index *values* stored in tensors (labels, argmax, gather/index_select
--     indices, rl.arange) are 0-based, exactly as in PyTorch.
local core = require 'rl.core'
local options = require 'rl.options'

local rl = {}
for k, v in pairs(core) do rl[k] = v end

rl.version = '0.1.0'
rl.Tensor = core.Tensor -- the methods table, for extensions and completion

-- rl.add(x, y, ...) == x:add(y, ...) for every method whose first argument
-- is a tensor.
for name, fn in pairs(core.Tensor) do
  if rl[name] == nil then rl[name] = fn end
end

--- torch.where(cond, x, y): x or y may be numbers.
-- A number promotes as a binary op's does (1.5 against i64 gives f32).
rl.where = options.public(function(cond, x, y) return core.Tensor.where(x, cond, y) end)

--- rl.cat({tensors}, dim) and rl.stack({tensors}, dim); dim defaults to 1.
rl.cat = core.Tensor.cat
rl.stack = core.Tensor.stack

--- Run fn(...) with gradient recording off; returns fn's results.
function rl.no_grad(fn, ...)
  local prev = core.set_grad_enabled(false)
  local res = table.pack(pcall(fn, ...))
  core.set_grad_enabled(prev)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- rl.Size{2, 3}: what x:size() returns, a list of the dims that prints as
-- the expression that makes it.
local Size = { __name = 'rl.Size' }
Size.__index = Size
function Size.__tostring(s)
  local d = {}
  for i = 1, #s do d[i] = tostring(s[i]) end
  return 'rl.Size{' .. table.concat(d, ', ') .. '}'
end
function Size.__eq(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end
function Size:numel()
  local n = 1
  for i = 1, #self do n = n * self[i] end
  return n
end
debug.getregistry()['rl.Size'] = Size -- x:size() (bindings/ops.c) sets it
rl.Size = setmetatable({}, {
  __call = function(_, t) return setmetatable({ table.unpack(t) }, Size) end,
  __tostring = function() return 'rl.Size' end,
})

--- a // b on tensors: floor division, as torch's; integer tensors stay
-- integers (computed in f64: exact below 2^53).
local Tensor_mt = debug.getregistry()['rl.Tensor']
Tensor_mt.__idiv = function(a, b)
  local t = rl.is_tensor(a) and a or b
  if t.dtype == 'i64' or t.dtype == 'u8' then
    local r = rl.is_tensor(a) and a:remainder(b) or rl.full_like(b, a):remainder(b)
    local q = (a - r):double() / (rl.is_tensor(b) and b:double() or b)
    return q:round():to(t.dtype)
  end
  return (a / b):floor()
end

rl.cuda = {
  is_available = core.cuda_is_available,
  device_count = core.cuda_device_count,
  memory_stats = core.cuda_memory_stats, -- the caching allocator's counters (bytes)
  empty_cache = core.cuda_empty_cache,   -- cached blocks back to the driver
  synchronize = core.cuda_synchronize,   -- wait for queued kernels
  device_name = core.cuda_device_name,   -- name, compute capability
  allow_tf32 = core.cuda_allow_tf32,     -- ([on]) f32 GEMMs on TF32 tensor cores; off by default
}

--- rl.device('cuda') -> 'cuda:0': the canonical name of a usable device, or
-- an error saying why it cannot be used ("CUDA is not available: ...").
rl.device = core.parse_device

--- The device experiments run on: $RL_DEVICE when set, else 'cpu'.
function rl.default_device()
  return rl.device(os.getenv('RL_DEVICE') or 'cpu')
end

-- ---------------------------------------------------------------------------
-- rl.F's options, checked before the C functions read them: those skip
-- what they do not know, and a misspelt or unsupported option could
-- change an output's shape (PyTorch's ceil_mode).

local function is_plain(v) return type(v) == 'table' and not rl.is_tensor(v) end

-- A window option (a kernel size, stride, padding, dilation): an integer
-- or a pair {h, w}, each in range.
local function window(who, name, v, range)
  if is_plain(v) then
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    if n == 2 and #v == 2 then
      return { options.value(who, name .. '[1]', v[1], 'integer', range),
        options.value(who, name .. '[2]', v[2], 'integer', range) }
    end
  elseif type(v) == 'number' then
    return options.value(who, name, v, 'integer', range)
  end
  error(string.format('%s: %s must be an integer or a pair {h, w}, got %s', who, name, options.what(v)), 0)
end

-- One option by its row: { kind ('window' or an options kind), [range],
-- [why, only] }.  A row with `why` is one of PyTorch's options that rllua
-- implements for the one value `only` (nil: none) and refuses otherwise.
local function option(who, name, v, row)
  if row.kind == 'window' then v = window(who, name, v, row.range)
  else v = options.value(who, name, v, row.kind, row.range) end
  if row.why and not (v == row.only or is_plain(v) and v[1] == row.only and v[2] == row.only) then
    error(string.format('%s: %s = %s is not supported%s', who, name, options.full(v), row.why), 0)
  end
  return v
end

-- check(who, o, rows) -> the options of o checked (name -> row), unknown
-- names refused; nil gives {}.
-- rows -> its names, sorted (made once: check runs at every conv and pool)
local names_of = setmetatable({}, { __mode = 'k' })
local function check(who, o, rows)
  if o == nil then return {} end
  local names = names_of[rows]
  if not names then
    names = {}
    for k in pairs(rows) do names[#names + 1] = k end
    table.sort(names)
    names_of[rows] = names
  end
  -- the message (and a non-table's) is reject_unknown's; the usual call,
  -- every key known, allocates nothing here
  if type(o) ~= 'table' or rl.is_tensor(o) then options.reject_unknown(who, o, names) end
  for k in pairs(o) do
    if rows[k] == nil then options.reject_unknown(who, o, names) end
  end
  local out = {}
  for _, name in ipairs(names) do
    if o[name] ~= nil then out[name] = option(who, name, o[name], rows[name]) end
  end
  return out
end

local ONLY_1 = ' (only 1)'
local CEIL_MODE = { kind = 'boolean', only = false,
  why = ' (the output size rounds down, as with ceil_mode = false)' }
local CONV2D = {
  stride = { kind = 'window', range = '>= 1' },
  padding = { kind = 'window', range = '>= 0' },
  dilation = { kind = 'window', range = '>= 1' },
  groups = { kind = 'integer', range = '>= 1', only = 1, why = ONLY_1 },
}
local MAX_POOL2D = {
  stride = CONV2D.stride, padding = CONV2D.padding,
  dilation = { kind = 'window', range = '>= 1', only = 1, why = ONLY_1 },
  ceil_mode = CEIL_MODE,
  return_indices = { kind = 'boolean', only = false, why = ' (only false)' },
}
local AVG_POOL2D = {
  stride = CONV2D.stride, padding = CONV2D.padding,
  count_include_pad = { kind = 'boolean' },
  ceil_mode = CEIL_MODE,
  divisor_override = { kind = 'integer', why = ' (leave it out: the divisor is the window size, or the ' ..
    'count of input elements in the window with count_include_pad = false)' },
}

-- pool(who, rows, kernel, [stride], [padding], [options]) -> the kernel
-- size and the options checked; stride and padding may come as PyTorch's
-- positional arguments (MaxPool2d(3, 2, 1)), or as options.
local POSITIONAL = { 'stride', 'padding' }
local function pool(who, rows, k, ...)
  local n, args = select('#', ...), { ... }
  local o = args[n]
  if is_plain(o) and o[1] == nil then n = n - 1 else o = nil end -- a pair {1, 1} is a stride
  if n > #POSITIONAL then
    error(string.format('%s: after the kernel size come [stride], [padding] and [options], got %d arguments',
      who, select('#', ...)), 0)
  end
  local c = check(who, o, rows)
  for i = 1, n do
    local name = POSITIONAL[i]
    if args[i] ~= nil then
      if c[name] ~= nil then error(string.format('%s: %s is given twice, as argument and as option', who, name), 0) end
      c[name] = option(who, name, args[i], rows[name])
    end
  end
  return window(who, 'kernel_size', k, '>= 1'), c
end

-- What rl.nn builds its layers with.
rl._F_options = { check = check, pool = pool, conv2d = CONV2D, max_pool2d = MAX_POOL2D, avg_pool2d = AVG_POOL2D }

-- F[name] = fn, which checks the arguments and calls the C function
-- (rl.help shows that one's doc).
local function checked(name, make)
  local raw = rl.F[name]
  local fn = make(raw)
  rl.F[name] = fn
  options.wrapped[fn] = raw
end

checked('conv2d', function(raw)
  return function(x, w, b, o, ...)
    if select('#', ...) > 0 then
      error('conv2d: expected (input, weight, [bias], [options]), got more arguments', 0)
    end
    return raw(x, w, b, check('conv2d', o, CONV2D))
  end
end)
for name, rows in pairs { max_pool2d = MAX_POOL2D, avg_pool2d = AVG_POOL2D } do
  checked(name, function(raw)
    return function(x, ...)
      local k, o = pool(name, rows, ...)
      return raw(x, k, o)
    end
  end)
end

-- The losses' reduction and kl_div's log_target (PyTorch allows
-- 'batchmean' for kl_div alone).
for _, name in ipairs { 'cross_entropy', 'nll_loss', 'mse_loss', 'kl_div' } do
  local kl = name == 'kl_div'
  local reductions = kl and { 'none', 'mean', 'sum', 'batchmean' } or { 'none', 'mean', 'sum' }
  checked(name, function(raw)
    return function(...)
      local n, x, y, reduction, log_target = select('#', ...), ...
      if n > (kl and 4 or 3) then
        error(string.format('%s: expected (input, target, [reduction]%s), got %d arguments', name,
          kl and ', [log_target]' or '', n), 0)
      end
      if reduction == 'batchmean' and not kl then
        error(string.format("%s: reduction 'batchmean' is kl_div's alone; 'mean' averages over the batch here", name), 0)
      end
      if reduction ~= nil then options.value(name, 'reduction', reduction, 'string', reductions) end
      if log_target ~= nil then options.value(name, 'log_target', log_target, 'boolean') end
      return raw(x, y, reduction, log_target)
    end
  end)
end

-- rl.grad's options.
local GRAD_ROWS = {
  { 'retain_graph', 'boolean', false },
  { 'allow_unused', 'boolean', false },
  { 'create_graph', 'boolean', false },
  check = function(o)
    if o.create_graph then
      return 'create_graph = true is not supported: the gradients are computed outside the graph, ' ..
          'so higher-order gradients are not available'
    end
  end,
}
rl.grad = options.public(function(outputs, inputs, grad_outputs, o, ...)
  if select('#', ...) > 0 then
    error('grad: expected (outputs, inputs, [grad_outputs], [options]), got more arguments', 0)
  end
  if o == nil then return core.grad(outputs, inputs, grad_outputs) end -- an attack's every step
  return core.grad(outputs, inputs, grad_outputs, options.check('grad', o, GRAD_ROWS))
end)
options.wrapped[rl.grad] = core.grad

--- rl.autocast(dtype, fn, ...): fn in mixed precision (rl/autocast.lua).
rl.autocast = require 'rl.autocast'
rl.autocast.install(rl)

return rl
