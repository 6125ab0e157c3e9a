--- rl.help: help where the user is.  In the REPL, `?name` is rl.help(name).
--
--   rl.help()                  a short guide to the REPL
--   rl.help(fn)                fn's name, its doc comment (signature, options
--                              and their defaults) and an example
--   rl.help('rl.attacks.pgd')  the same, by name
--   rl.help(tensor)            shape, dtype, device, strides, autograd, view
--   rl.help(module)            the model's summary, with its mode
--   rl.help(rl.Size)           a table: the comment that makes it, else its fields
--   rl.help(print)             Lua's own: named as such, with the manual's section
--
-- The text is the code's own: a Lua function's doc comment (the comment
-- block right above its definition, or, for a function a module documents
-- in its header, that header), a C-bound function's comment in bindings/
-- (collected at build time into rl.cdoc by bindings/gen_cdoc.lua).
local rl = require 'rl.base'
local options = require 'rl.options'

local help = {}

local GUIDE = [[
rl: tensors for robustness research (dims are 1-based; index values 0-based)
  x = rl.randn(2, 3)            rl.tensor{{1, 2}, {3, 4}}   rl.arange(5)
  x:size()  x.shape  x.dtype    x:view(3, 2)  x:t()  x:narrow(1, 1, 1)
  x + y  x * 2  x // 2  x:matmul(y)   x:sum(2)  x:max(2)  x:norm(2, 1)
  x:lt(y) (comparisons are methods; they give u8 tensors)
  rl.manual_seed(0)  g = rl.Generator(1); rl.rand(3, {generator = g})
  ?rl.attacks.pgd    help on a function: its doc, options and an example
  ?x                 what a tensor is (shape, dtype, strides, autograd, view)
Type a name and press TAB to list fields and methods.]]

-- One example for the functions a researcher reaches first.
local EXAMPLES = {
  ['rl.attacks.pgd'] = "xa = rl.attacks.pgd(model, x, y, {eps = 0.1, steps = 10, step_size = 0.02, seed = 0})",
  ['rl.attacks.fgsm'] = "xa = rl.attacks.fgsm(model, x, y, {eps = 0.1})",
  ['rl.attacks.apgd'] = "xa, info = rl.attacks.apgd(model, x, y, {eps = 0.1, loss = 'dlr', targeted = true})",
  ['rl.attacks.autoattack'] = "adv, info = rl.attacks.autoattack(model, x, y, {eps = 0.1, log = true}); " ..
      "print(info.robust_accuracy)",
  ['rl.attacks.run'] = "xa = rl.attacks.run(model, x, {objective = 'ce', y = y, eps = 0.1, steps = 20, " ..
      "start = 'uniform'})",
  ['rl.attacks.multi_targeted'] = "xa = rl.attacks.multi_targeted(model, x, y, {eps = 0.1})",
  ['rl.attacks.dlr'] = "loss = rl.attacks.dlr(model(x), y)   -- [B]",
  ['rl.metrics.lipschitz'] = "r = rl.metrics.lipschitz(model, x, {eps = 0.1, mode = 'reference'}):mean()",
  ['rl.metrics.adv_accuracy'] = "acc = rl.metrics.adv_accuracy(model, x, y, {eps = 0.1})",
  ['rl.metrics.accuracy'] = "acc = rl.metrics.accuracy(model, x, y)",
  ['rl.methods.get'] = "loss, logits = rl.methods.get('trades6')(model, x, y, {eps = 0.1}); loss:backward()",
  ['rl.methods.register'] = "rl.methods.register('mine', function(model, x, y, o) local z = model(x) " ..
      "return rl.F.cross_entropy(z, y, 'sum'), z end, {version = 1})",
  ['rl.data.load'] = "ds = rl.data.load('fashion-mnist', {split = 'test', subset = 1000})",
  ['rl.data.loader'] = "for x, y in rl.data.loader(ds, {batch = 64}):iter(1) do ... end",
  ['rl.save'] = "rl.save('t.safetensors', {w = rl.randn(3, 3)}, {note = 'hi'})",
  ['rl.load'] = "tensors, meta = rl.load('t.safetensors')   -- {tensors = false}: the metadata alone",
  ['rl.grad'] = "g = rl.grad(F.cross_entropy(model(x), y, 'sum'), x)",
  ['rl.Generator'] = "g = rl.Generator(0); rl.rand(3, {generator = g})",
  ['rl.checkpoint.save'] = "rl.checkpoint.save('run.ckpt', {model = m, optimizer = opt, epoch = 3})",
  ['rl.checkpoint.epoch'] = "n = rl.checkpoint.epoch('run.ckpt')   -- from the header; reads no tensor",
  ['rl.optim.SGD'] = "opt = rl.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})",
  ['rl.optim.Adam'] = "opt = rl.optim.Adam(model:parameters(), {lr = 1e-3})",
  ['Tensor.narrow'] = "x:narrow(1, 2, 3)   -- rows 2..4 (a view)",
  ['Tensor.norm'] = "x:norm(2, 2)        -- the l2 norm of each row",
  ['Tensor.to'] = "x:to('f64'), x:to{device = 'cuda'}",
}

-- Where to look for a value's name: rl, its modules, the Tensor and
-- Generator methods.  Returns the name ('rl.attacks.pgd', 'Tensor.narrow').
local function name_of(v)
  for k, x in pairs(rl.Tensor) do if x == v then return 'Tensor.' .. k end end
  local gm = debug.getregistry()['rl.Generator']
  if gm and type(gm.__index) == 'table' then
    for k, x in pairs(gm.__index) do if x == v then return 'Generator.' .. k end end
  end
  -- rl and every loaded rl.* module; a name that only repeats rl.core's
  -- (rl.cuda_allow_tf32 beside rl.cuda.allow_tf32) loses to another
  local core = package.loaded['rl.core'] or {}
  local found = {}
  local seen = {}
  local function walk(t, prefix, depth)
    if seen[t] or depth > 2 then return end
    seen[t] = true
    local keys = {}
    for k in pairs(t) do if type(k) == 'string' then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local x = rawget(t, k)
      if x == v and not k:match('^_') then
        found[#found + 1] = { prefix .. '.' .. k, prefix == 'rl' and core[k] == v }
      end
      if type(x) == 'table' and not rl.is_tensor(x) and not k:match('^_') then walk(x, prefix .. '.' .. k, depth + 1) end
    end
  end
  walk(rl, 'rl', 0)
  local mods = {}
  for k in pairs(package.loaded) do
    if type(k) == 'string' and k:match('^rl%.') and k ~= 'rl.core' and type(package.loaded[k]) == 'table' then
      mods[#mods + 1] = k
    end
  end
  table.sort(mods)
  for _, k in ipairs(mods) do walk(package.loaded[k], k, 0) end
  table.sort(found, function(a, b)
    if a[2] ~= b[2] then return not a[2] end
    return #a[1] < #b[1] or (#a[1] == #b[1] and a[1] < b[1])
  end)
  return found[1] and found[1][1]
end

-- The value a dotted name ('rl.attacks.pgd', 'x:narrow') stands for.
local function resolve(name)
  local v = name:match('^Tensor[.:](.+)$')
  if v then return rl.Tensor[v] end
  local t = setmetatable({ rl = package.loaded['rl'] or rl }, { __index = _G })
  for part in name:gmatch('[^.:]+') do
    if type(t) ~= 'table' and not rl.is_tensor(t) then return nil end
    t = t[part]
    if t == nil then return nil end
  end
  return t
end

-- The public names (rl.attacks.pgd, ...) whose last part is name's last
-- part, or else the nearest spelling of it: rl.help('pgd') finds
-- rl.attacks.pgd.
local function nearest_names(name)
  local last = name:match('([%w_]+)$')
  if not last then return {} end
  -- a misspelt field of a table that is there: the nearest of its fields
  local parent = name:match('^(.+)[.:][%w_]+$')
  local pt = parent and resolve(parent)
  if type(pt) == 'table' then
    local keys = {}
    for k in pairs(pt) do if type(k) == 'string' and not k:match('^_') then keys[#keys + 1] = k end end
    table.sort(keys)
    local s = options.suggest(last, keys)
    if s then return { parent .. '.' .. s } end
  end
  local all, lasts, seen = {}, {}, {}
  local function walk(t, prefix, depth)
    if seen[t] or depth > 2 then return end
    seen[t] = true
    for k, x in pairs(t) do
      if type(k) == 'string' and not k:match('^_') then
        local full = prefix .. '.' .. k
        all[#all + 1] = full
        lasts[k] = true
        if type(x) == 'table' and not rl.is_tensor(x) then walk(x, full, depth + 1) end
      end
    end
  end
  walk(package.loaded['rl'] or rl, 'rl', 0)
  local want = last
  if not lasts[want] then
    local keys = {}
    for k in pairs(lasts) do keys[#keys + 1] = k end
    want = options.suggest(last, keys)
  end
  local out = {}
  for _, full in ipairs(all) do
    if want and full:match('%.([%w_]+)$') == want and full ~= name then out[#out + 1] = full end
  end
  table.sort(out, function(a, b) return #a < #b or (#a == #b and a < b) end)
  return { table.unpack(out, 1, math.min(3, #out)) }
end

local cache = {}
local function lines_of(path)
  if cache[path] == nil then
    local f = io.open(path, 'r')
    local l = {}
    if f then
      for line in f:lines() do l[#l + 1] = line end
      f:close()
    end
    cache[path] = l
  end
  return cache[path]
end

-- The comment block ending right above line n (its `-- ` stripped).
local function comment_above(lines, n)
  local out = {}
  local i = n - 1
  while i >= 1 and lines[i]:match('^%s*%-%-') do
    local text = lines[i]:gsub('^%s*%-%-%-?%s?', '')
    if not text:match('^%-+$') then table.insert(out, 1, text) end -- a rule is no doc
    i = i - 1
  end
  return #out > 0 and table.concat(out, '\n') or nil
end

-- The entry of a module header that documents short: its line "short(...)"
-- and the lines under it indented deeper; nil when there is no such line.
local function header_entry(head, short)
  local lines, out, indent = {}, nil, nil
  for l in (head .. '\n'):gmatch('([^\n]*)\n') do lines[#lines + 1] = l end
  for _, l in ipairs(lines) do
    local lead = #l:match('^%s*')
    if out then
      if l:match('^%s*$') or lead <= indent then break end
      out[#out + 1] = l:sub(indent + 1)
    elseif l:find('^%s*' .. short:gsub('%p', '%%%0') .. '%(') then
      out, indent = { l:sub(lead + 1) }, lead
    end
  end
  return out and table.concat(out, '\n') or nil
end

-- Lua 5.4's own functions and libraries (the manual's §6): help names them
-- as Lua's, never as rllua's.
local STD_FUNCTIONS = { 'assert', 'collectgarbage', 'dofile', 'error', 'getmetatable', 'ipairs', 'load',
  'loadfile', 'next', 'pairs', 'pcall', 'print', 'rawequal', 'rawget', 'rawlen', 'rawset', 'require', 'select',
  'setmetatable', 'tonumber', 'tostring', 'type', 'warn', 'xpcall' }
local STD_LIBS = { 'coroutine', 'debug', 'io', 'math', 'os', 'package', 'string', 'table', 'utf8' }

-- v's name in Lua's standard library ('print', 'string.format', 'string'),
-- or nil.
local function std_name(v)
  for _, k in ipairs(STD_FUNCTIONS) do if _G[k] == v then return k end end
  for _, lib in ipairs(STD_LIBS) do
    local t = _G[lib]
    if t == v then return lib end
    if type(t) == 'table' and type(v) == 'function' then
      for k, x in pairs(t) do if x == v and type(k) == 'string' then return lib .. '.' .. k end end
    end
  end
  -- the methods of io's files (io.stdout.write is file:write)
  local file = debug.getregistry()['FILE*']
  local methods = type(file) == 'table' and file.__index
  if type(methods) == 'table' then
    for k, x in pairs(methods) do if x == v and type(k) == 'string' then return 'file:' .. k end end
  end
end

local function std_text(name, v)
  return string.format('%s: a Lua standard %s, not rllua\'s (see the Lua 5.4 manual: ' ..
    'https://www.lua.org/manual/5.4/manual.html#%s)', name, type(v) == 'table' and 'library' or 'function',
    type(v) == 'table' and '6' or 'pdf-' .. name)
end

-- The line of README.md that names name (`rl.device`), or nil: help says a
-- README lists something only where it does.
local function readme_line(name)
  local here = package.searchpath('rl.help', package.path)
  local root = here and here:match('^(.-)lua/rl/help%.lua$')
  if not root then return nil end
  local word = '%f[%w_.]' .. name:gsub('%p', '%%%0') .. '%f[^%w_]'
  for i, l in ipairs(lines_of(root .. 'README.md')) do
    if l:find(word) then return i end
  end
end

-- What help says of a name with no doc comment.
local function no_doc(name)
  local n = name and readme_line(name)
  return n and string.format('  (no doc comment; README.md names it at line %d)', n) or '  (no doc comment)'
end

-- The files that may make name public: its module's ('rl.data.Ragged':
-- lua/rl/data.lua), and for rl's own fields lua/rl/init.lua and the
-- rl.base it builds on.
local function files_of(name)
  local mod = name:match('^(rl[%w_.]*)%.[%w_]+$')
  if not mod then return {} end
  local paths = {}
  for _, m in ipairs(mod == 'rl' and { 'rl', 'rl.base' } or { mod }) do
    paths[#paths + 1] = package.searchpath(m, package.path)
  end
  return paths
end

-- The doc of a value its module makes public by assignment (rl.device =
-- core.parse_device; rl.data.Ragged, made as `local Ragged = {}`): the
-- comment above that line; and the file.
local function public_doc(name)
  local short = name:match('%.([%w_]+)$')
  if not short then return nil end
  for _, path in ipairs(files_of(name)) do
    local lines = lines_of(path)
    for i, l in ipairs(lines) do
      if l:match('^[%w_.]+%.' .. short .. '%s*=') or l:match('^local ' .. short .. '%s*=') then
        local doc = comment_above(lines, i)
        if doc then return doc, path end
      end
    end
  end
end

-- The paragraph of a module's header (the comment that opens its file)
-- that names name, or nil.
local function header_paragraph(name, path)
  local para, found = {}, nil
  for _, l in ipairs(lines_of(path)) do
    if not l:match('^%-%-') then break end
    local text = l:gsub('^%-%-%-?%s?', '')
    if text:match('^%s*$') then
      if found then break end
      para = {}
    else
      para[#para + 1] = text
      found = found or text:find(name, 1, true)
    end
  end
  return found and table.concat(para, '\n') or nil
end

-- What an instance's metamethods make of the operators.
local META = { __eq = 'a == b by value', __tostring = 'how it prints', __len = '#x', __call = 'x(...)',
  __lt = 'a < b', __le = 'a <= b', __concat = 'a .. b' }

-- The help of a table that documents itself nowhere else (rl.Size,
-- rl.data.Ragged): the comment that makes it, the header paragraph that
-- names it, the methods of its instances, its fields.
local function table_text(v, name)
  local out = { name }
  local doc, where = public_doc(name)
  local para
  -- rl's own headers speak of the whole library, not of the rl.nn they name
  -- in passing: only a module's header documents its fields
  if not name:match('^rl%.[%w_]+$') then
    for _, path in ipairs(files_of(name)) do
      para = header_paragraph(name, path)
      if para then
        where = where or path
        break
      end
    end
  end
  if not doc and not para then return nil end
  if doc then out[#out + 1] = '  ' .. doc:gsub('\n', '\n  ') end
  if para then out[#out + 1] = '  ' .. para:gsub('\n', '\n  ') end
  -- an instance's metatable the registry holds under the name (rl.Size's)
  local inst = debug.getregistry()[name]
  if type(inst) == 'table' and inst ~= v then
    local methods, meta = {}, {}
    for k, x in pairs(inst) do
      if type(k) == 'string' and type(x) == 'function' then
        if k:match('^__') then meta[#meta + 1] = k else methods[#methods + 1] = k .. '()' end
      end
    end
    table.sort(methods)
    table.sort(meta)
    if #methods > 0 then out[#out + 1] = 'methods: ' .. table.concat(methods, '  ') end
    if #meta > 0 then
      for i, m in ipairs(meta) do meta[i] = m .. (META[m] and ' (' .. META[m] .. ')' or '') end
      out[#out + 1] = 'metamethods: ' .. table.concat(meta, '  ')
    end
  end
  out[#out + 1] = '(' .. where:gsub('^.*/lua/', 'lua/') .. ')'
  return table.concat(out, '\n')
end

-- A closed tensor's box is empty: any use but tostring raises.
local function is_closed(x)
  return not pcall(function() return x.dtype end)
end

-- A Lua function's doc: the comment above its definition, else the comment
-- above the line that makes it public, else its module's header when that
-- names it.
local function lua_doc(fn, short)
  fn = options.wrapped[fn] or fn
  local info = debug.getinfo(fn, 'S')
  local path = info.source:match('^@(.*)$')
  if not path then return nil end
  local lines = lines_of(path)
  local doc = comment_above(lines, info.linedefined)
  if doc then return doc, path end
  if short then
    for i, l in ipairs(lines) do
      if l:match('^[%w_.]+%.' .. short .. '%s*=') then
        doc = comment_above(lines, i)
        if doc then return doc, path end
      end
    end
    local head = comment_above(lines, (function()
      for i, l in ipairs(lines) do if not l:match('^%s*%-%-') then return i end end
      return #lines + 1
    end)())
    if head and head:find(short, 1, true) then return header_entry(head, short) or head, path end
  end
  return nil, path
end

-- A class made by nn.class (rl.nn.Linear, rl.models.CNN001): a table that
-- is its own __index and names itself.
local function is_class(v)
  return type(v) == 'table' and type(rawget(v, '__name')) == 'string' and rawget(v, '__index') == v
end

-- A class's doc: the comment above the line that makes it (nn.class('Name',
-- ...) or a helper called with 'Name'), else above its __init; and where.
local function class_doc(cls)
  local fn = rawget(cls, '__init') or rawget(cls, 'forward')
  if type(fn) ~= 'function' then return nil end
  local path = debug.getinfo(fn, 'S').source:match('^@(.*)$')
  if not path then return nil end
  local lines = lines_of(path)
  local made = "%(%s*'" .. cls.__name:gsub('%p', '%%%0') .. "'"
  for i, l in ipairs(lines) do
    if l:find(made) then
      local doc = comment_above(lines, i)
      if doc then return doc, path end
      break
    end
  end
  local doc = comment_above(lines, debug.getinfo(fn, 'S').linedefined)
  if doc then return doc, path end
  -- the module header's lines that name it ("CNN001{classes = 10, ...}")
  local found, word = {}, '%f[%w_]' .. cls.__name:gsub('%p', '%%%0') .. '%f[^%w_]'
  for i = 1, #lines do
    if not lines[i]:match('^%-%-') then break end
    if i > 1 and lines[i]:find(word) then found[#found + 1] = (lines[i]:gsub('^%-%-%s*', '')) end
  end
  return #found > 0 and table.concat(found, '\n') or nil, path
end

-- The help of a class: its doc, and how an instance is made and shown.
local function class_text(cls)
  local name = name_of(cls) or cls.__name
  local doc, where = class_doc(cls)
  local out = { name }
  out[#out + 1] = doc and ('  ' .. doc:gsub('\n', '\n  ')) or no_doc(name)
  out[#out + 1] = string.format('a class: m = %s(...) makes a module; rl.help(m) shows its layers and mode', name)
  local ex = EXAMPLES[name]
  if ex then out[#out + 1] = 'example:\n  ' .. ex end
  if where then out[#out + 1] = '(' .. where:gsub('^.*/lua/', 'lua/') .. ')' end
  return table.concat(out, '\n')
end

-- An optimiser class (rl.optim.define): its file's header and its options.
local function optimizer_text(cls)
  local name = name_of(cls) or cls.spec.name
  local out, where = { name }, nil
  -- the file of the module that is the class, or that holds it (rl.optim.adam: Adam, Nadam)
  for mod, value in pairs(package.loaded) do
    if type(mod) == 'string' and mod:match('^rl%.') and (value == cls or type(value) == 'table'
        and not where and mod ~= 'rl.optim' and mod ~= 'rl' and rawget(value, cls.spec.name) == cls) then
      where = package.searchpath(mod, package.path) or where
    end
  end
  local lines = where and lines_of(where) or {}
  local head = {}
  for _, l in ipairs(lines) do
    if not l:match('^%-%-') then break end
    head[#head + 1] = '  ' .. l:gsub('^%-%-%-?%s?', '')
  end
  if #head > 0 then out[#out + 1] = table.concat(head, '\n') end
  local opts = {}
  for _, row in ipairs(cls.spec.options) do
    local default = row[3] == options.REQUIRED and 'required' or type(row[3]) == 'table'
        and '{' .. table.concat(row[3], ', ') .. '}' or tostring(row[3])
    opts[#opts + 1] = string.format('%s = %s%s', row[1], default, row[4] and ' (' .. row[4] .. ')' or '')
  end
  out[#out + 1] = string.format('a class: opt = %s(params, {%s})', name, table.concat(opts, ', '))
  local ex = EXAMPLES[name]
  if ex then out[#out + 1] = 'example:\n  ' .. ex end
  if where then out[#out + 1] = '(' .. where:gsub('^.*/lua/', 'lua/') .. ')' end
  return table.concat(out, '\n')
end

--- help.describe(x) -> the text rl.help prints for a tensor.
function help.describe(x)
  local lines = {}
  local function add(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
  add('%s tensor of size %s on %s', x.dtype, tostring(x:size()), x.device)
  add('  strides %s, storage offset %d, %s', table.concat(x:stride(), ', '), x:storage_offset(),
    x:is_contiguous() and 'contiguous' or 'not contiguous')
  local elt = assert(({ f32 = 4, f64 = 8, i64 = 8, u8 = 1, bf16 = 2, f16 = 2 })[x.dtype], x.dtype)
  local whole = x:storage_offset() == 0 and x:is_contiguous() and x:numel() * elt == x.storage_nbytes
  if x.storage_refs > 1 then
    add('  shares its storage (%d bytes) with %d other tensor%s: a view, or viewed', x.storage_nbytes,
      x.storage_refs - 1, x.storage_refs > 2 and 's' or '')
  elseif not whole then
    add('  a view of part of its storage (%d bytes)', x.storage_nbytes)
  else
    add('  owns its storage (%d bytes)', x.storage_nbytes)
  end
  if x.requires_grad then
    add('  requires_grad: true, %s%s', x.is_leaf and 'a leaf' or ('made by ' .. tostring(x.grad_fn)),
      x.grad and ', has .grad' or '')
  else
    add('  requires_grad: false')
  end
  return table.concat(lines, '\n')
end

--- help.text(v) -> what rl.help(v) prints.
function help.text(v)
  if v == nil then return GUIDE end
  if rl.is_tensor(v) and is_closed(v) then
    return 'a closed tensor: the `local x <close>` that held it went out of scope (its __close ran),\n' ..
        '  which freed its storage at once, before the garbage collector; this name still holds the\n' ..
        '  empty box, and any use of it is an error ("attempt to use a freed tensor").  To keep a\n' ..
        '  tensor past the block, hold it in a variable without <close> (or return x:clone()).'
  end
  if rl.is_tensor(v) then return help.describe(v) end
  local std = std_name(v)
  if std then return std_text(std, v) end
  if type(v) == 'string' then
    local r = resolve(v)
    if r == nil then
      local near = nearest_names(v)
      return string.format('rl.help: no value is called %s%s (try TAB completion, or ?rl for the modules)', v,
        #near > 0 and ('; did you mean ' .. table.concat(near, ' or ') .. '?') or '')
    end
    local t = help.text(r)
    if type(r) == 'function' and not t:find('^' .. v:gsub('%p', '%%%0')) then t = v .. '\n' .. t end
    return t
  end
  if is_class(v) then return class_text(v) end
  if type(v) == 'table' and type(v.spec) == 'table' and type(v.spec.options) == 'table' then
    return optimizer_text(v)
  end
  if type(v) == 'table' and v.summary and type(v.summary) == 'function' then return v:summary() end
  if type(v) == 'table' then
    local keys = {}
    for k, x in pairs(v) do
      if type(k) == 'string' and not k:match('^_') then
        keys[#keys + 1] = k .. (type(x) == 'function' and '()' or type(x) == 'table' and '.' or '')
      end
    end
    table.sort(keys)
    local n = name_of(v)
    local own = n and table_text(v, n)
    if own and #keys == 0 then return own end
    return (own and own .. '\nfields: ' or n and n .. ': ' or '') .. table.concat(keys, '  ') ..
        '\n(?name for any of them)'
  end
  if type(v) ~= 'function' then return string.format('%s: %s', type(v), tostring(v)) end
  local named = name_of(v)
  local name = named or '(a function)'
  local short = name:match('[.:]([%w_]+)$')
  local doc, where
  -- a wrapper (options.public, rl.autocast's policy on rl.F) shows what it wraps
  local info = debug.getinfo(options.wrapped[v] or v, 'S')
  if info.what == 'C' and not named then
    -- neither rl's nor Lua's: a C function of some other module
    return name .. '\n  a C function that is neither in rl (nor its modules) nor in Lua\'s standard library'
  elseif info.what == 'C' then
    local ok, cdoc = pcall(require, 'rl.cdoc')
    local key = name:gsub('^rl%.F%.', 'F.'):gsub('^rl%.cuda%.', 'core.cuda_'):gsub('^rl%.', 'core.')
    doc = ok and cdoc[key] or nil
    where = 'C, in bindings/'
    -- a C function a Lua module makes public (data.load_image = C.load_image,
    -- rl.device = core.parse_device) is documented above that line
    if not doc then
      local d, path = public_doc(name)
      if d then doc, where = d, path end
    end
  else
    doc, where = lua_doc(v, short)
    -- a function defined outside any file of rl (in the REPL, a script)
    if not named then where = info.short_src .. ':' .. info.linedefined end
  end
  local out = { (name:gsub('^Tensor%.', 'x:')) }
  out[#out + 1] = doc and ('  ' .. doc:gsub('\n', '\n  ')) or no_doc(named)
  local ex = EXAMPLES[name]
  if ex then out[#out + 1] = 'example:\n  ' .. ex end
  if where then out[#out + 1] = '(' .. where:gsub('^.*/lua/', 'lua/') .. ')' end
  return table.concat(out, '\n')
end

--- rl.help([v]): print help on v (see the top of this file).
function help.help(v) print(help.text(v)) end

--- help.line(text): the REPL's `?text`: help on the value of the Lua
-- expression text, or on the name text when it has no value.
function help.line(text)
  if text == '' then return help.help() end
  local f = load('return ' .. text, '=?', 't')
  local ok, v = false, nil
  if f then ok, v = pcall(f) end
  if ok and v ~= nil then return help.help(v) end
  return help.help(text)
end

return help
