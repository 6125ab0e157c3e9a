-- cu2cpp.lua IN OUT - a kernels/*.cu file as C++ for the host emulator
-- (emu/runtime.cpp): each launch `k<<<grid, block>>>(args)` becomes
-- `rl_emu::launch<k>(grid, block)(args)`.  Nothing else changes and no
-- line moves, so compiler messages name the .cu file's own lines.
local src_path, out_path = arg[1], arg[2]
assert(src_path and out_path, 'usage: lua5.4 emu/cu2cpp.lua IN.cu OUT.cpp')
local f = assert(io.open(src_path, 'rb'))
local s = f:read('a')
f:close()

-- The start of the kernel expression ending at position e: an identifier
-- (with :: qualifiers), then template arguments in balanced <...>.
local function kernel_start(e)
  local i = e
  while i > 0 and s:sub(i, i):match('%s') do i = i - 1 end
  if s:sub(i, i) == '>' then
    local depth = 0
    repeat
      local c = s:sub(i, i)
      if c == '>' then depth = depth + 1 elseif c == '<' then depth = depth - 1 end
      i = i - 1
    until depth == 0 or i == 0
    assert(depth == 0, src_path .. ': unbalanced template arguments before <<<')
  end
  while i > 0 and s:sub(i, i):match('[%w_:]') do i = i - 1 end
  return i + 1
end

-- Shared memory holds no defined value when a block starts: after each
-- `__shared__ T a[N], b[M];` the first thread of a block to pass it fills
-- a and b with 0xff bytes (rl_emu::shared_fresh), on the same line.
s = s:gsub('(__shared__%s[^;]*;)', function(decl)
  local calls = {}
  local body = decl:match('^__shared__%s+(.-);$')
  local depth, start = 0, 1
  local function add(d)
    local name = d:gsub('%b[]', ''):match('([%a_][%w_]*)%s*$')
    assert(name, src_path .. ': cannot read the name in __shared__ ' .. d)
    calls[#calls + 1] = ' rl_emu::shared_fresh(&' .. name .. ', sizeof ' .. name .. ');'
  end
  for i = 1, #body do
    local c = body:sub(i, i)
    if c == '[' then depth = depth + 1 elseif c == ']' then depth = depth - 1
    elseif c == ',' and depth == 0 then add(body:sub(start, i - 1)); start = i + 1 end
  end
  add(body:sub(start))
  return decl .. table.concat(calls)
end)

local out, pos, n = {}, 1, 0
while true do
  local a = s:find('<<<', pos, true)
  if not a then break end
  local b = assert(s:find('>>>', a + 3, true), src_path .. ': <<< without >>>')
  local k = kernel_start(a - 1)
  assert(k >= pos, src_path .. ': cannot find the kernel before <<<')
  out[#out + 1] = s:sub(pos, k - 1)
  out[#out + 1] = 'rl_emu::launch<' .. s:sub(k, a - 1) .. '>(' .. s:sub(a + 3, b - 1) .. ')'
  pos, n = b + 3, n + 1
end
out[#out + 1] = s:sub(pos)
local o = assert(io.open(out_path, 'wb'))
o:write('#line 1 "', src_path, '"\n', table.concat(out))
o:close()
