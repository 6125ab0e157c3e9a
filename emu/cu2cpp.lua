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
