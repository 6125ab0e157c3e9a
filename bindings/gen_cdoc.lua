-- bindings/gen_cdoc.lua - the doc comments of the C-bound functions, for
-- rl.help: run by make as `lua5.4 bindings/gen_cdoc.lua OUT bindings/*.c`.
--
-- For every luaL_Reg table of the bindings it maps each Lua name to the C
-- function registered under it, and takes the comment just above that
-- function's definition (or above the macro that generates it); also the
-- unary ops, which ops.c generates and registers from engine/backend.h's
-- RL_UNARY_OPS list, and a function set on the module by
-- lua_pushcfunction + lua_setfield (rl.write_png).  The output is a Lua
-- module returning
--   { ['Tensor.narrow'] = 'narrow(dim, start, len), start 1-based ...', ... }
-- keyed by where the function lives: Tensor (methods), F (rl.F),
-- Generator (a generator's methods) or core (rl.core, and so rl).
local out = assert(arg[1], 'usage: gen_cdoc.lua OUT FILE.c...')

-- luaL_Reg table name -> namespace
local NAMESPACE = { methods = 'Tensor', F_fns = 'F', gen_methods = 'Generator' }

-- The text of a C comment: its delimiters and leading stars gone.
local function clean(c)
  c = c:gsub('^/%*+', ''):gsub('%*+/$', '')
  local lines = {}
  for l in (c .. '\n'):gmatch('(.-)\n') do
    l = l:gsub('^%s*%*%s?', ''):gsub('%s+$', '')
    lines[#lines + 1] = l
  end
  while lines[1] == '' do table.remove(lines, 1) end
  while lines[#lines] == '' do table.remove(lines) end
  return table.concat(lines, '\n')
end

-- The comment that ends right before position `at` of src (blank lines
-- between allowed, nothing else), or nil.
local function comment_before(src, at)
  local before = src:sub(1, at - 1):gsub('%s+$', '')
  if before:sub(-2) ~= '*/' then return nil end
  local open = nil
  local i = 1
  while true do
    local s = before:find('/*', i, true)
    if not s then break end
    open, i = s, s + 2
  end
  if not open then return nil end
  local text = clean(before:sub(open))
  if text:match('^%s*%-%-%-%-') then return nil end -- a section rule, not a doc
  return (text:gsub('^%s+', ''):gsub('\n ', '\n'))
end

-- The unary ops exposed to Lua: the names of the rows X(ENUM, name, 1) of
-- RL_UNARY_OPS in engine/backend.h.  ops.c defines x:name() and x:name_()
-- for them with the macro UNARY_1 and registers them with UNARY_REG_1, both
-- expanded over that list, so neither the names nor the table entries
-- appear in the .c file.
local unary = {}
do
  local f = io.open((arg[0]:match('^(.*/)') or './') .. '../engine/backend.h', 'rb')
  local h = f and f:read('a') or ''
  if f then f:close() end
  local list = h:match('#define RL_UNARY_OPS%(X%)(.-[^\\])\n') or ''
  for name in list:gmatch('X%(%s*[%w_]+%s*,%s*([%w_]+)%s*,%s*1%s*%)') do unary[#unary + 1] = name end
end

local docs = {}
local function add(ns, lua_name, d)
  if lua_name:match('^__') then return end -- metamethods are not looked up by name
  if d and d ~= '' then docs[ns .. '.' .. lua_name] = d end
end
for i = 2, #arg do
  local f = assert(io.open(arg[i], 'rb'))
  local src = f:read('a')
  f:close()
  -- C function name -> its doc comment
  local cdoc = {}
  for at, name in src:gmatch('()static int ([%w_]+)%s*%(lua_State') do
    cdoc[name] = comment_before(src, at)
  end
  -- functions a documented macro defines (`#define M(name ...) static int
  -- t_##name...`): each use M(x, ...) gets the macro's comment
  for at, macro, body in src:gmatch('()#define ([%w_]+)%(name[^)]*%)(.-[^\\])\n') do
    local prefix, suffix = body:match('static int ([%w_]-)##name(#?#?[%w_]*)%(lua_State')
    local doc = prefix and comment_before(src, at)
    if doc then
      suffix = suffix:gsub('^##', '')
      for name in src:gmatch('\n' .. macro .. '%(([%w_]+)') do
        cdoc[prefix .. name .. suffix] = cdoc[prefix .. name .. suffix] or doc
      end
    end
  end
  -- the unary ops: t_name and t_name_ have the comment above `#define UNARY_1(`
  local uat = src:find('#define UNARY_1(', 1, true)
  local udoc = uat and src:find('RL_UNARY_OPS(UNARY)', 1, true) and comment_before(src, uat)
  if udoc then
    for _, n in ipairs(unary) do
      cdoc['t_' .. n] = cdoc['t_' .. n] or udoc
      cdoc['t_' .. n .. '_'] = cdoc['t_' .. n .. '_'] or udoc
    end
  end
  -- a one-line wrapper (`{ return helper(L, ...); }`) has its helper's doc
  for name, helper in src:gmatch('static int ([%w_]+)%(lua_State %*L%) { return ([%w_]+)%(L') do
    cdoc[name] = cdoc[name] or cdoc[helper]
  end
  -- each luaL_Reg table
  for tname, body in src:gmatch('luaL_Reg ([%w_]+)%[%]%s*=%s*(%b{})') do
    local ns = NAMESPACE[tname] or 'core'
    for lua_name, cname in body:gmatch('{%s*"([%w_]+)"%s*,%s*([%w_]+)%s*}') do add(ns, lua_name, cdoc[cname]) end
    -- the unary ops, registered by `RL_UNARY_OPS(UNARY)` as {name, t_name}, {name_, t_name_}
    if body:find('RL_UNARY_OPS(UNARY)', 1, true) then
      for _, n in ipairs(unary) do
        add(ns, n, cdoc['t_' .. n])
        add(ns, n .. '_', cdoc['t_' .. n .. '_'])
      end
    end
    -- R(name) entries under `#define R(n) {#n, t_##n}[, {#n "_", t_##n##_}]`
    for def, list in body:gmatch('#define R%(n%) ([^\n]+)\n(.-)#undef R') do
      local with_ = def:find('"_"', 1, true) ~= nil
      for n in list:gmatch('R%(([%w_]+)%)') do
        add(ns, n, cdoc['t_' .. n])
        if with_ then add(ns, n .. '_', cdoc['t_' .. n .. '_'] or cdoc['t_' .. n]) end
      end
    end
  end
  -- a function set on the module one at a time, outside any luaL_Reg table
  -- (image.c: `lua_pushcfunction(L, f); lua_setfield(L, -2, "name");`) is
  -- rl.core's; metamethods set this way are skipped by add
  for cname, lua_name in src:gmatch('lua_pushcfunction%(L, ([%w_]+)%);%s*lua_setfield%(L, %-2, "([%w_]+)"%)') do
    add('core', lua_name, cdoc[cname])
  end
end

local names = {}
for k in pairs(docs) do names[#names + 1] = k end
table.sort(names)
local lines = { '-- Generated by bindings/gen_cdoc.lua from the bindings\' comments; do not edit.', 'return {' }
for _, k in ipairs(names) do lines[#lines + 1] = string.format('  [%q] = %q,', k, docs[k]) end
lines[#lines + 1] = '}'
local tmp = out .. '.tmp'
local o = assert(io.open(tmp, 'wb'))
o:write(table.concat(lines, '\n'), '\n')
o:close()
assert(os.rename(tmp, out))
