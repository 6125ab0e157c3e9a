--- rl.options: the one way rllua checks an options table, and the words of
-- option errors.
--
-- Describe the table with rows, one per option, and check it:
--
--   local ROWS = {
--     -- name          kind        default             range
--     { 'lr',           'number',   options.REQUIRED,   '>= 0' },
--     { 'betas',        'pair',     { 0.9, 0.999 },     '[0, 1)' },
--     { 'norm',         'string',   'linf',             { 'linf', 'l2' } },
--     { 'milestones',   'integers', {} },
--     { 'seed',         'integer' },          -- optional, no default: may stay nil
--     check = function(o) ... end,            -- optional rule across options
--   }
--   local o = options.check('Adam', opts, ROWS)   -- [aliases], else options.ALIASES
--
-- check returns a new table: each given value over its row's default, both
-- copied (lists too, so the caller may keep or change its own); an integral
-- float of an integer kind becomes an integer.  It raises "<who>: <message>"
-- for the first of:
--   a key no row names   unknown option 'lerning_rate' (did you mean 'lr'?); options: lr, ...
--   a REQUIRED option    the option lr is required
--   a wrong kind         lr must be a number, got the string '0.1'
--   a value out of range betas[2] must be in [0, 1), got 1.5
--   ROWS.check(o)        whatever message it returns (nil when all is well)
--
-- Kinds: number, integer, boolean, string, function, tensor, table (a plain
-- table), norm (an attack's norm: 'linf' or 'l2', read also from 'inf',
-- math.huge, 'Linf', 2, '2', 'L2'; the checked table holds 'linf' or 'l2'),
-- generator (an rl.Generator), and the lists pair (two numbers), numbers
-- and integers.  Ranges:
-- for numbers (and each element of a number list) '>= a', '> a', '<= b',
-- '< b' or an interval '[a, b]', '[a, b)', '(a, b]', '(a, b)'; a list of the
-- allowed values (e.g. strings); or function(v) returning nil when v is
-- fine, else what v must be ('a power of two').  ROWS.noun names the keys in
-- messages ('option' unless set, e.g. 'field' for a saved state).
--
-- options.value(who, name, v, kind, [range]) checks one value (a positional
-- argument) the same way.  Errors are raised at level 0 (no position):
-- wrap a public function in options.public to have them raised at the
-- user's line.
local options = {}

--- options.REQUIRED, as a row's default: the option must be given.
options.REQUIRED = setmetatable({}, { __tostring = function() return 'REQUIRED' end })

local function is_tensor(v)
  local core = package.loaded['rl.core']
  return core ~= nil and core.is_tensor(v)
end

local function is_plain_table(v) return type(v) == 'table' and not is_tensor(v) end

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

-- Tensors known to lie in a box: x -> {lo, hi, x:version() when marked}.
local boxed = setmetatable({}, { __mode = 'k' })

--- options.mark_box(x, lo, hi): x's values lie in [lo, hi] by construction
-- (a loader's batch is u8 / 255), so options.in_box need not read them
-- from the device (a host wait at every attack, AT's and TRADES' inner
-- ones included) until x's storage is next written in place.  Returns x.
function options.mark_box(x, lo, hi)
  boxed[x] = { lo, hi, x:version() }
  return x
end

--- options.in_box(who, x, lo, hi, [fixed]): x inside the box [lo, hi] an
-- attack clips to, else an error naming the span of its values (images
-- scaled to 0..255 against the default [0, 1] were clipped first, and the
-- result lay nowhere near the eps-ball around x).  fixed: the caller has no
-- lo and hi options.  The span read is remembered with x's version, so a
-- second check of x unwritten (metrics.lipschitz's, then its attack's)
-- waits for nothing.
function options.in_box(who, x, lo, hi, fixed)
  if not (lo < hi) then error(string.format('%s: lo (%g) must be below hi (%g)', who, lo, hi), 0) end
  if x:numel() == 0 then return end
  local m = boxed[x]
  if m and m[1] >= lo and m[2] <= hi and m[3] == x:version() then return end
  local rl = require 'rl.base'
  -- one read from the device for both (each item() waits for it)
  local mm = rl.no_grad(function() return rl.stack({ x:min(), x:max() }):double():tolist() end)
  local min, max = mm[1], mm[2]
  if not (min >= lo and max <= hi) then
    error(string.format('%s: x must lie in the box [lo, hi] = [%g, %g] the attack clips to; its values span ' ..
      '[%g, %g] (%s)', who, lo, hi, min, max, fixed and 'scale the images' or 'scale the images, or give lo and hi'), 0)
  end
  boxed[x] = { min, max, x:version() } -- the next check of x, unwritten, reads nothing
end

--- options.model(who, model): model is an rl.nn module (attacks and
-- metrics call it and switch its train/eval mode), else an error naming
-- what it is.
function options.model(who, model)
  if type(model) == 'table' and type(model.forward) == 'function' and type(model.with_mode) == 'function' then
    return
  end
  local hint = ''
  if type(model) == 'function' then
    hint = ' (to attack a function, make it a module: a class of rl.nn.Module whose forward calls it)'
  end
  error(string.format('%s: model must be an rl.nn module, got %s%s', who, options.what(model), hint), 0)
end

--- options.what(v): what a wrong argument is: its value when small, else
-- its type.
function options.what(v)
  if is_tensor(v) then
    local an = v.dtype:match('^[fi]') and 'an ' or 'a '
    return an .. v.dtype .. ' tensor of size ' .. shape_of(v)
  end
  if type(v) == 'string' then return string.format("the string '%s'", v) end
  if v == nil or type(v) == 'number' or type(v) == 'boolean' then return tostring(v) end
  return 'a ' .. type(v)
end

-- What a wrong value is, with plain lists written out (they are short).
local function got(v)
  if not is_plain_table(v) then return options.what(v) end
  local parts = {}
  for i = 1, #v do parts[i] = type(v[i]) == 'string' and string.format('%q', v[i]) or got(v[i]) end
  return '{' .. table.concat(parts, ', ') .. '}'
end

--- options.copy(v): a deep copy of plain tables; tensors and other values
-- are shared.
function options.copy(v)
  if not is_plain_table(v) then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = options.copy(x) end
  return c
end

--- options.reraise(err, level): raise err again at `level` (as error's,
-- counted from the caller of reraise).  A refusal ("who: ...", or a C
-- function's "bad argument ...") loses the file:line of the rllua code that
-- raised it and gets the line at `level`; any other error (a bug) keeps
-- its own position.
function options.reraise(err, level)
  local rest = options.refusal(err)
  if rest then error(rest, level + 1) end
  error(err, 0)
end

--- options.refusal(err) -> a refusal's text without the position of the
-- .lua line that raised it; nil when err is no refusal (a bug).
function options.refusal(err)
  if type(err) ~= 'string' then return nil end
  local rest = err:match('^[^\n:]+%.lua:%d+: (.*)$')
  if rest == nil and not err:match('^[^\n:]+:%d+: ') then rest = err end -- raised at level 0
  -- "pgd: ...", "bad argument ...", or a model's naming its layer
  -- (nn.lua): "CNN001.conv1 (Conv2d): conv2d: ..."
  if rest and (rest:match('^[%w_.:%-]+: ') or rest:match('^bad argument') or rest:match('^[%w_.]+ %([%w_.]+%): ')) then
    return rest
  end
  return nil
end

--- options.public(fn): fn, with its errors re-raised at the line that
-- called it (options.reraise).
function options.public(fn)
  local wrapper = function(...)
    local res = table.pack(pcall(fn, ...))
    if not res[1] then options.reraise(res[2], 2) end
    return table.unpack(res, 2, res.n)
  end
  options.wrapped[wrapper] = fn -- rl.help reads fn's doc comment
  return wrapper
end

--- options.wrapped[public] -> the function options.public wrapped.
options.wrapped = setmetatable({}, { __mode = 'k' })

---------------------------------------------------------------------------
-- "did you mean"
---------------------------------------------------------------------------

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

-- Whether the name `short` stands inside `long` as a near miss (epsilon ~
-- eps, lr_rate ~ lr): anywhere when it has 3+ letters; a shorter one only
-- as a whole word ('p' is inside too many words to mean one).
local function inside(long, short)
  if #short >= #long or #short < 1 then return false end
  if #short >= 3 then return long:find(short, 1, true) ~= nil end
  return ('_' .. long .. '_'):find('_' .. short .. '_', 1, true) ~= nil
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
    if inside(key, v) or inside(v, key) then d = math.min(d, 1) end
    if not bestd or d < bestd then best, bestd = v, d end
  end
  if bestd and (bestd <= 1 or (bestd <= 2 and #key >= 5)) then return best end
  return nil
end

--- options.ALIASES: names other libraries give rllua's options, which no
-- edit distance leads to (beta1 or epsilon need none: they are near 'betas'
-- and contain 'eps'); check and reject_unknown use them unless given others.
options.ALIASES = {
  learning_rate = 'lr', learningrate = 'lr', rate = 'lr', step_size = 'lr',
  wd = 'weight_decay', l2 = 'weight_decay', mu = 'momentum', nesterov_momentum = 'nesterov',
  steps = 'milestones', factor = 'gamma', decay_rate = 'gamma',
}

-- Options of torch.optim and friends that choose among PyTorch's
-- implementations.
local PYTORCH_ONLY = { foreach = true, capturable = true, differentiable = true, fused = true }

--- options.reject_unknown(who, t, valid, [aliases], [noun]): raise, for the
-- first key of t not in the list valid, "<who>: unknown option 'k' (did you
-- mean 'x'?); options: ...".  Keys are visited in sorted order, so the
-- message does not depend on table order.
function options.reject_unknown(who, t, valid, aliases, noun)
  noun = noun or 'option'
  -- a number or a tensor where the options go (Conv2d(3, 2, 3, 1, 1), as
  -- PyTorch's positional stride and padding) failed inside pairs
  if type(t) ~= 'table' or is_tensor(t) then
    error(string.format('%s: %ss must be a table {name = value, ...}, got %s', who, noun, options.what(t)), 0)
  end
  local known, bad = {}, {}
  for _, k in ipairs(valid) do known[k] = true end
  for k in pairs(t) do
    if not known[k] then bad[#bad + 1] = k end
  end
  if #bad == 0 then return end
  table.sort(bad, function(a, b) return tostring(a) < tostring(b) end)
  local k, names = bad[1], table.concat(valid, ', ')
  local function fail(msg, ...) error(string.format('%s: ' .. msg, who, ...), 0) end
  if type(k) ~= 'string' then
    fail('%ss must be named (got a key of type %s); %ss: %s', noun, type(k), noun, names)
  elseif PYTORCH_ONLY[k] then
    fail("option '%s' selects among PyTorch's implementations and has no meaning here; " ..
      'leave it out', k)
  end
  local s = options.suggest(k, valid, aliases or options.ALIASES)
  fail("unknown %s '%s'%s; %ss: %s", noun, k, s and string.format(" (did you mean '%s'?)", s) or '',
    noun, names)
end

--- options.known(who, t, allowed, [level]): reject_unknown for a set of
-- names ({name = true, ...}), raised at `level` (default 0: no position).
function options.known(who, t, allowed, level)
  local names = {}
  for k in pairs(allowed) do names[#names + 1] = k end
  table.sort(names)
  local ok, msg = pcall(options.reject_unknown, who, t, names)
  if not ok then error(msg, level and level + 1 or 0) end
end

---------------------------------------------------------------------------
-- kinds and ranges
---------------------------------------------------------------------------

-- The names of the two norms of the attacks, and what they are read from.
local NORM_NAMES = { linf = 'linf', Linf = 'linf', inf = 'linf', l2 = 'l2', L2 = 'l2', ['2'] = 'l2' }
local function norm_name(v)
  if v == math.huge then return 'linf' end
  if v == 2 then return 'l2' end
  return type(v) == 'string' and NORM_NAMES[v] or nil
end

local function is_generator(v)
  local mt = type(v) == 'userdata' and getmetatable(v)
  return mt and mt.__name == 'rl.Generator' or false
end

-- kind -> { what the message asks for, test, [convert] } or, for a list
-- kind, { what the message asks for, element kind, length or nil }.
-- convert gives the value the checked table holds (a norm's one name).
local KINDS = {
  norm = { "'linf' ('inf', math.huge) or 'l2' (2)", function(v) return norm_name(v) ~= nil end, norm_name },
  generator = { 'an rl.Generator', is_generator },
  number = { 'a number', function(v) return type(v) == 'number' end },
  integer = { 'an integer', function(v) return type(v) == 'number' and math.tointeger(v) ~= nil end },
  boolean = { 'true or false', function(v) return type(v) == 'boolean' end },
  string = { 'a string', function(v) return type(v) == 'string' end },
  ['function'] = { 'a function', function(v) return type(v) == 'function' end },
  tensor = { 'a tensor', is_tensor },
  table = { 'a table', is_plain_table },
  pair = { 'a list of two numbers, e.g. {0.9, 0.999}', 'number', 2 },
  numbers = { 'a list of numbers', 'number' },
  integers = { 'a list of integers, e.g. {30, 80}', 'integer' },
}

-- Interval notation -> test; each string is read once.
local COMPARE = {
  ['>='] = function(v, a) return v >= a end, ['>'] = function(v, a) return v > a end,
  ['<='] = function(v, b) return v <= b end, ['<'] = function(v, b) return v < b end,
}
local intervals = {}
local function interval(s)
  if intervals[s] then return intervals[s] end
  local op, x = s:match('^([<>]=?) *(%S+)$')
  local lo, a, b, hi = s:match('^([%[%(]) *([^, ]+) *, *([^%]%) ]+) *([%]%)])$')
  local test
  if op and tonumber(x) then
    x = tonumber(x)
    test = function(v) return COMPARE[op](v, x) end
  elseif lo and tonumber(a) and tonumber(b) then
    a, b = tonumber(a), tonumber(b)
    local left, right = lo == '[' and '>=' or '>', hi == ']' and '<=' or '<'
    test = function(v) return COMPARE[left](v, a) and COMPARE[right](v, b) end
  else
    error(string.format("options: the range '%s' is not of the form '>= a' or '[a, b)'", s), 2)
  end
  intervals[s] = test
  return test
end

-- nil when v (of the right kind) is in range, else what it must be.
local function out_of_range(v, range)
  if type(range) == 'function' then return range(v) end
  if type(range) == 'string' then
    if interval(range)(v) then return nil end -- NaN fails every test
    return range:find('^[%[%(]') and 'in ' .. range or range
  end
  for _, ok in ipairs(range) do
    if v == ok then return nil end
  end
  local names = {}
  for i, ok in ipairs(range) do names[i] = got(ok):gsub('^the string ', '') end
  return 'one of ' .. table.concat(names, ', ')
end

-- A scalar value of one kind, checked; an integer kind gives an integer.
local function scalar(who, name, v, kind, range)
  local k = KINDS[kind]
  if not k[2](v) then error(string.format('%s: %s must be %s, got %s', who, name, k[1], got(v)), 0) end
  local need = range and out_of_range(v, range)
  if need then
    local hint = type(v) == 'string' and type(range) == 'table' and type(range[1]) == 'string'
        and options.suggest(v, range)
    error(string.format('%s: %s must be %s, got %s%s', who, name, need, got(v),
      hint and string.format(" (did you mean '%s'?)", hint) or ''), 0)
  end
  if k[3] then return k[3](v) end
  return kind == 'integer' and math.tointeger(v) or options.copy(v)
end

--- options.finite(range) -> a range for options.check and options.value:
-- a finite number in the interval range ('>= 0', '(0, 1)').  inf and NaN
-- are refused: an infinite radius or rate gives NaN results, and JSON
-- (config.json) has no such numbers.
function options.finite(range)
  return function(v)
    if v ~= v or v == math.huge or v == -math.huge then return 'a finite number' end
    return out_of_range(v, range)
  end
end

--- options.value(who, name, v, kind, [range]) -> v checked (a copy of a
-- list; an integer kind gives integers), or raises "<who>: <name> must be ...".
-- A range applies to each element of a list kind.
function options.value(who, name, v, kind, range)
  local k = KINDS[kind] or error(string.format("options: unknown kind '%s'", tostring(kind)), 2)
  if type(k[2]) == 'function' then return scalar(who, name, v, kind, range) end
  local ok = is_plain_table(v) and (k[3] == nil or #v == k[3])
  for key in pairs(ok and v or {}) do -- a plain list: keys 1..#v only
    ok = ok and math.type(key) == 'integer' and key >= 1 and key <= #v
  end
  if not ok then error(string.format('%s: %s must be %s, got %s', who, name, k[1], got(v)), 0) end
  local out = {}
  for i = 1, #v do out[i] = scalar(who, string.format('%s[%d]', name, i), v[i], k[2], range) end
  return out
end

--- options.check(who, opts, rows, [aliases]) -> the checked, filled table
-- (see the top of this file).  opts may be nil (no options given).
-- rows -> the list of its names, made once (rows are constants; checks run
-- at every training step and attack call)
local row_names = setmetatable({}, { __mode = 'k' })

function options.check(who, opts, rows, aliases)
  local noun = rows.noun or 'option'
  if opts == nil then opts = {} end
  if not is_plain_table(opts) then
    error(string.format('%s: %ss must be a table, got %s', who, noun, options.what(opts)), 0)
  end
  local names = row_names[rows]
  if not names then
    names = {}
    for i, row in ipairs(rows) do names[i] = row[1] end
    row_names[rows] = names
  end
  options.reject_unknown(who, opts, names, aliases, noun)
  local out = {}
  for _, row in ipairs(rows) do
    local name, v = row[1], opts[row[1]]
    if v == nil then v = row[3] end
    if v == options.REQUIRED then
      error(string.format('%s: the %s %s is required', who, noun, name), 0)
    end
    if v ~= nil then out[name] = options.value(who, name, v, row[2], row[4]) end
  end
  local msg = rows.check and rows.check(out)
  if msg then error(string.format('%s: %s', who, msg), 0) end
  return out
end

return options
