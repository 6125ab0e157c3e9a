--- rl: tensors, autograd and the pieces of robustness experiments.
--
-- The engine lives in the C module `rl.core`; this file gathers it into one
-- table and adds the functional forms (`rl.add(a, b)` for `a:add(b)`).
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

--- How the REPL shows a value: tensors by tostring, tables by content
-- (sorted keys, nested to `depth` levels, long ones cut), the rest by tostring.
function rl.repr(v, depth, seen)
  depth = depth or 2
  if type(v) == 'string' then -- quoted inside tables, as is at the top (as lua's REPL)
    return seen and string.format('%q', v) or v
  end
  if type(v) ~= 'table' or getmetatable(v) and getmetatable(v).__tostring then
    return tostring(v)
  end
  seen = seen or {}
  if seen[v] then return '<cycle>' end
  if depth < 0 then return '{...}' end
  seen[v] = true
  local keys, n = {}, #v
  for k in pairs(v) do
    if not (math.type(k) == 'integer' and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == 'number' or type(a) == 'string') then return a < b end
    return type(a) < type(b)
  end)
  local parts = {}
  local function add(s)
    if #parts < 50 then parts[#parts + 1] = s elseif #parts == 50 then parts[51] = '...' end
  end
  for i = 1, n do add(rl.repr(v[i], depth - 1, seen)) end
  for _, k in ipairs(keys) do
    local ks = type(k) == 'string' and k:match('^[%a_][%w_]*$') and k or '[' .. rl.repr(k, 0, seen) .. ']'
    add(ks .. ' = ' .. rl.repr(v[k], depth - 1, seen))
  end
  seen[v] = nil
  local one = '{' .. table.concat(parts, ', ') .. '}'
  if #one <= 100 and not one:find('\n') then return one end
  return '{\n  ' .. table.concat(parts, ',\n'):gsub('\n', '\n  ') .. '\n}'
end

--- A short guide to the REPL.
function rl.help()
  print([[
rl: tensors for robustness research (dims are 1-based; index values 0-based)
  x = rl.randn(2, 3)            rl.tensor{{1, 2}, {3, 4}}   rl.arange(5)
  x:size()  x.shape  x.dtype    x:view(3, 2)  x:t()  x:narrow(1, 1, 1)
  x + y  x * 2  x:matmul(y)     x:sum(2)  x:max(2)  x:norm(2, 1)
  x:lt(y) (comparisons are methods; they give u8 tensors)
  rl.manual_seed(0)  g = rl.Generator(1); rl.rand(3, {generator = g})
Type a name and press TAB to list fields and methods.]])
end

-- The library modules require 'rl' themselves: register this table first.
package.loaded.rl = rl
rl.nn = require 'rl.nn'
rl.models = require 'rl.models'
rl.separation = require 'rl.separation'
rl.data = require 'rl.data'
rl.attacks = require 'rl.attacks'
rl.methods = require 'rl.methods'
rl.metrics = require 'rl.metrics'
rl.optim = require 'rl.optim'
rl.json = require 'rl.json'
rl.checkpoint = require 'rl.checkpoint'

return rl
