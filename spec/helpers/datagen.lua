--- Writers for the data specs' fixtures, in plain Lua: IDX (plain and
-- gzip), CIFAR-10 batches, MATLAB v5 .mat (plain and compressed) and PNG.
-- Compression uses DEFLATE's fixed Huffman code with literals only (or
-- stored blocks): valid streams that zlib must decode, written without zlib.
local M = {}

-- ---- checksums --------------------------------------------------------------

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1) ~= 0 and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  crc_table[i] = c
end

function M.crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end

function M.adler32(s)
  local a, b = 1, 0
  for i = 1, #s do
    a = (a + s:byte(i)) % 65521
    b = (b + a) % 65521
  end
  return (b << 16) | a
end

-- ---- DEFLATE ------------------------------------------------------------------

-- A bit writer: values go in LSB first; Huffman codes are written MSB first.
local function bitwriter()
  local out, acc, n = {}, 0, 0
  local w = {}
  function w.bits(v, count)
    acc = acc | (v << n)
    n = n + count
    while n >= 8 do
      out[#out + 1] = string.char(acc & 0xFF)
      acc, n = acc >> 8, n - 8
    end
  end
  function w.code(v, count) -- Huffman code, most significant bit first
    for i = count - 1, 0, -1 do w.bits((v >> i) & 1, 1) end
  end
  function w.finish()
    if n > 0 then out[#out + 1] = string.char(acc & 0xFF) end
    return table.concat(out)
  end
  return w
end

--- Raw DEFLATE, one final block of fixed-Huffman literals.
function M.deflate_fixed(s)
  local w = bitwriter()
  w.bits(1, 1) -- BFINAL
  w.bits(1, 2) -- BTYPE = 01, fixed Huffman
  for i = 1, #s do
    local v = s:byte(i)
    if v < 144 then w.code(0x30 + v, 8) else w.code(0x190 + v - 144, 9) end
  end
  w.code(0, 7) -- end of block (256)
  return w.finish()
end

--- Raw DEFLATE in stored (uncompressed) blocks.
function M.deflate_stored(s)
  local parts, i = {}, 1
  repeat
    local chunk = s:sub(i, i + 65534)
    i = i + #chunk
    local final = i > #s and 1 or 0
    parts[#parts + 1] = string.pack('<BI2I2', final, #chunk, (~#chunk) & 0xFFFF) .. chunk
  until i > #s
  return table.concat(parts)
end

function M.zlib(s, stored)
  local body = stored and M.deflate_stored(s) or M.deflate_fixed(s)
  return '\x78\x01' .. body .. string.pack('>I4', M.adler32(s))
end

function M.gzip(s)
  return '\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff' .. M.deflate_fixed(s) ..
      string.pack('<I4I4', M.crc32(s), #s & 0xFFFFFFFF)
end

-- ---- files --------------------------------------------------------------------

function M.write(path, bytes)
  local f = assert(io.open(path, 'wb'))
  f:write(bytes)
  f:close()
  return path
end

function M.read(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('a')
  f:close()
  return s
end

local function bytes(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = string.char(v) end
  return table.concat(t)
end
M.bytes = bytes

--- IDX: magic (e.g. 0x803), dims, then the values (a list of bytes).
function M.idx(magic, dims, values)
  local h = string.pack('>I4', magic)
  for _, d in ipairs(dims) do h = h .. string.pack('>I4', d) end
  return h .. bytes(values)
end

--- CIFAR records: {label, pixels (3072 bytes as a string)} each.
function M.cifar(records)
  local t = {}
  for i, r in ipairs(records) do t[i] = string.char(r[1]) .. r[2] end
  return table.concat(t)
end

-- ---- MATLAB v5 ------------------------------------------------------------------

local MI = { int8 = 1, uint8 = 2, int32 = 5, uint32 = 6, double = 9, matrix = 14, compressed = 15 }
local MX = { char = 4, double = 6, uint8 = 9 }
local PACK = { [MI.uint8] = 'B', [MI.int8] = 'b', [MI.int32] = '<i4', [MI.double] = '<d' }

local function pad8(s) return s .. string.rep('\0', (8 - #s % 8) % 8) end

-- One data element; the small form when it fits in 4 bytes (and small).
local function element(type, data, small)
  if small and #data <= 4 then
    return string.pack('<I2I2', type, #data) .. data .. string.rep('\0', 4 - #data)
  end
  return pad8(string.pack('<I4I4', type, #data) .. data)
end

local function pack_values(type, values)
  local t = {}
  for i, v in ipairs(values) do t[i] = string.pack(PACK[type], v) end
  return table.concat(t)
end

--- A miMATRIX element: class ('double', 'uint8' or 'char'), dims, name,
-- storage type of the values ('uint8', 'double', ...) and the values
-- (column-major).
function M.mat_var(name, class, dims, storage, values)
  local flags = element(MI.uint32, string.pack('<I4I4', MX[class], 0))
  local d = {}
  for i, v in ipairs(dims) do d[i] = string.pack('<i4', v) end
  local body = flags .. element(MI.int32, table.concat(d)) .. element(MI.int8, name, true) ..
      element(MI[storage], pack_values(MI[storage], values))
  return element(MI.matrix, body)
end

--- A MAT-file of the given variables (strings from mat_var), each wrapped in
-- miCOMPRESSED when compressed.
function M.mat(vars, compressed)
  local text = 'MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: rllua spec'
  local head = text .. string.rep(' ', 116 - #text) .. string.rep('\0', 8) .. '\0\1IM'
  local parts = { head }
  for _, v in ipairs(vars) do
    if compressed then
      local z = M.zlib(v)
      parts[#parts + 1] = string.pack('<I4I4', MI.compressed, #z) .. z
    else
      parts[#parts + 1] = v
    end
  end
  return table.concat(parts)
end

-- ---- PNG ------------------------------------------------------------------------

local function chunk(type, data)
  return string.pack('>I4', #data) .. type .. data .. string.pack('>I4', M.crc32(type .. data))
end

--- A PNG: o = {w, h, color (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA),
-- depth (8 or 16; 1 for gray), rows = {row strings without filter byte},
-- plte = string, trns = string}.
function M.png(o)
  local ihdr = string.pack('>I4I4BBBBB', o.w, o.h, o.depth or 8, o.color, 0, 0, 0)
  local raw = {}
  for i, r in ipairs(o.rows) do raw[i] = '\0' .. r end
  local s = '\137PNG\r\n\26\n' .. chunk('IHDR', ihdr)
  if o.plte then s = s .. chunk('PLTE', o.plte) end
  if o.trns then s = s .. chunk('tRNS', o.trns) end
  return s .. chunk('IDAT', M.zlib(table.concat(raw), true)) .. chunk('IEND', '')
end

return M
