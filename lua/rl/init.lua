--- rl: tensors, autograd and the pieces of robustness experiments.
--
-- rl.base holds the engine (tensors, autograd, the functional forms); this
-- file adds what the REPL shows and gathers the library modules into it.
-- Each module requires what it uses itself, so the order below is free.
local rl = require 'rl.base'

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

--- rl.help([v]): the REPL guide, or help on a function, tensor or model
-- (rl.help; `?name` in the REPL).
rl.help = function(v) return require('rl.help').help(v) end
--- rl.help_line(text): what the REPL runs for `?text`: rl.help on the value
-- of the Lua expression text, or on the name text when it has none.
rl.help_line = function(text) return require('rl.help').line(text) end

rl.nn = require 'rl.nn'
rl.models = require 'rl.models'
rl.separation = require 'rl.separation'
rl.data = require 'rl.data'
rl.attacks = require 'rl.attacks'
rl.methods = require 'rl.methods'
rl.metrics = require 'rl.metrics'
rl.optim = require 'rl.optim'
rl.json = require 'rl.json'
rl.plot = require 'rl.plot'
rl.checkpoint = require 'rl.checkpoint'
rl.experiment = require 'rl.experiment'
rl.backends = require 'rl.backends'

return rl
