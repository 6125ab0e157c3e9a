--- rl.options: how rllua tells a user that an option is wrong.
--
-- One home for the words of option errors, so that every options table and
-- command line answers a typo the same way:
--
--   options.reject_unknown('SGD', '', opts, {'lr', 'momentum'}, aliases)
--     -> SGD: unknown option 'lerning_rate' (did you mean 'lr'?); options: lr, momentum
--   options.suggest('momentun', {'lr', 'momentum'})  -> 'momentum'
--   options.what(v), options.full(v)                 -> v described for a message
--
-- Errors are raised at level 0 (no position): the caller re-raises them at
-- the user's line where it matters (rl.optim's `public`).
local options = {}

local function is_tensor(v)
  local core = package.loaded['rl.core']
  return core ~= nil and core.is_tensor(v)
end

local function shape_of(t)
  local s = t:size()
  return #s == 0 and 'scalar' or table.concat(s, 'x')
end
options.shape_of = shape_of

--- options.full(v): v written out in full: numbers to 17 digits, lists
-- element by element.
function options.full(v)
  if type(v) == 'number' then return string.format('%.17g', v) end
  if type(v) == 'string' then return string.format('%q', v) end
  if is_tensor(v) then return 'a tensor of size ' .. shape_of(v) end
  if type(v) ~= 'table' then return tostring(v) end
  local parts = {}
  for i = 1, #v do parts[i] = options.full(v[i]) end
  return '{' .. table.concat(parts, ', ') .. '}'
end

--- options.what(v): what a wrong argument is: its value when small, else
-- its type.
function options.what(v)
  if is_tensor(v) then return 'a tensor of size ' .. shape_of(v) end
  if type(v) == 'string' then return string.format("the string '%s'", v) end
  if v == nil or type(v) == 'number' or type(v) == 'boolean' then return tostring(v) end
  return 'a ' .. type(v)
end

-- Levenshtein distance.
local function distance(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

--- options.suggest(key, valid, [aliases]) -> the valid name closest to key
-- when it is close enough to be a typo (or aliases[key], a name from another
-- library that no edit distance leads to), else nil.
function options.suggest(key, valid, aliases)
  local alias = aliases and aliases[key]
  local best, bestd
  for _, v in ipairs(valid) do
    if v == alias then return v end
    local d = distance(key, v)
    if (key:find(v, 1, true) or v:find(key, 1, true)) and #key >= 2 then d = math.min(d, 1) end
    if not bestd or d < bestd then best, bestd = v, d end
  end
  if bestd and (bestd <= 1 or (bestd <= 2 and #key >= 5)) then return best end
  return nil
end

-- Options of torch.optim and friends that choose among PyTorch's
-- implementations.
local PYTORCH_ONLY = { foreach = true, capturable = true, differentiable = true, fused = true }

--- options.reject_unknown(who, where, t, valid, [aliases]): raise, for the
-- first key of t not in the list valid, "<who>: <where>unknown option 'k'
-- (did you mean 'x'?); options: ...".  Keys are visited in sorted order, so
-- the message does not depend on table order.
function options.reject_unknown(who, where, t, valid, aliases)
  local known = {}
  for _, k in ipairs(valid) do known[k] = true end
  local bad = {}
  for k in pairs(t) do
    if not known[k] then bad[#bad + 1] = k end
  end
  if #bad == 0 then return end
  table.sort(bad, function(a, b) return tostring(a) < tostring(b) end)
  local k, names = bad[1], table.concat(valid, ', ')
  local function fail(msg, ...) error(string.format('%s: %s' .. msg, who, where, ...), 0) end
  if type(k) ~= 'string' then
    fail('options must be named (got a key of type %s); options: %s', type(k), names)
  elseif PYTORCH_ONLY[k] then
    fail("option '%s' selects among PyTorch's implementations and has no meaning here; " ..
      'leave it out', k)
  end
  local s = options.suggest(k, valid, aliases)
  fail("unknown option '%s'%s; options: %s", k,
    s and string.format(" (did you mean '%s'?)", s) or '', names)
end

return options
