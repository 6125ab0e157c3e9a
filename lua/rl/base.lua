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
function rl.where(cond, x, y)
  if not rl.is_tensor(x) then
    if not rl.is_tensor(y) then
      error('where: x or y must be a tensor', 2)
    end
    x = rl.full_like(y, x)
  end
  return x:where(cond, y)
end

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

--- rl.autocast(dtype, fn, ...): fn in mixed precision (rl/autocast.lua).
rl.autocast = require 'rl.autocast'
rl.autocast.install(rl)

return rl
