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

return rl
