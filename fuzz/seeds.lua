-- seeds.lua - the seed corpora of the fuzz targets, generated (never
-- committed as blobs): ./rllua fuzz/seeds.lua OUTDIR [TARGET...]
--
-- Each target gets OUTDIR/<target>/ with small valid inputs in the form its
-- harness takes (fuzz/<harness>.c says how an input is cut), plus a few
-- near misses (a wrong dtype, a bad label) that reach the error paths.
-- The files are written with the project's own writers (rl.save,
-- rl.write_png, rl.data.write_jpeg) and the spec helpers' generators
-- (spec/helpers/datagen.lua: IDX, CIFAR, MAT, PNG by hand).
package.path = './spec/?.lua;' .. package.path
local gen = require 'helpers.datagen'

local out = arg[1] or error('usage: rllua fuzz/seeds.lua OUTDIR [TARGET...]')
local wanted = {}
for i = 2, #arg do wanted[arg[i]] = true end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local scratch = os.tmpname()

-- A target's seeds: a table name -> bytes, written under OUTDIR/<target>/.
local function emit(target, seeds)
  if next(wanted) and not wanted[target] then return end
  local dir = out .. '/' .. target
  assert(os.execute('mkdir -p ' .. sh_quote(dir)))
  local n = 0
  for name, bytes in pairs(seeds) do
    gen.write(dir .. '/' .. name, bytes)
    n = n + 1
  end
  print(string.format('seeds: %-12s %d files', target, n))
end

-- The bytes a writer leaves in a file.
local function via_file(write)
  write(scratch)
  local bytes = gen.read(scratch)
  os.remove(scratch)
  return bytes
end

-- u8 [c, h, w] test pattern.
local function pattern(c, h, w)
  return (rl.arange(c * h * w) * 37 % 256):to('u8'):view(c, h, w)
end

-- ---- safetensors -----------------------------------------------------------

-- A file from a header table written by hand, for the dtypes rl.save does
-- not write (BOOL, F16, BF16, I32).
local function st_raw(header, data)
  return string.pack('<I8', #header) .. header .. data
end

local st = {
  f32 = via_file(function(p) rl.save(p, { w = rl.arange(6):float():view(2, 3) }) end),
  mixed = via_file(function(p)
    rl.save(p, { a = rl.arange(4):double(), b = rl.arange(3), c = pattern(1, 2, 2), s = rl.tensor(1.5) },
      { epoch = '3', note = 'seed' })
  end),
  empty = via_file(function(p) rl.save(p, {}) end),
  zero = via_file(function(p) rl.save(p, { z = rl.zeros(0, 3) }) end),
  halves = st_raw('{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},' ..
    '"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},' ..
    '"i":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},' ..
    '"t":{"dtype":"BOOL","shape":[2,2],"data_offsets":[12,16]}}',
    string.pack('<I2I2I2I2i4', 0x3c00, 0xfbff, 0x3f80, 0x7f80, -7) .. '\0\1\2\0'),
  meta_array = st_raw('{"__metadata__":["x"],"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', '\7'),
  overlap = st_raw('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},' ..
    '"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', '\1\2\3'),
}
emit('safetensors', st)

-- ---- IDX: [u16 length of the label file][label file][image file] ----------

local function idx_pair(n, rows, cols, labels_gz, images_gz)
  local px = {}
  for i = 1, n * rows * cols do px[i] = (i * 29) % 256 end
  local lab = {}
  for i = 1, n do lab[i] = (i * 3) % 10 end
  local l = gen.idx(0x801, { n }, lab)
  local im = gen.idx(0x803, { n, rows, cols }, px)
  if labels_gz then l = gen.gzip(l) end
  if images_gz then im = gen.gzip(im) end
  return string.pack('<I2', #l) .. l .. im
end

emit('idx', {
  small = idx_pair(3, 2, 3),
  square = idx_pair(2, 4, 4),
  gz = idx_pair(2, 3, 3, true, true),
  mixed = idx_pair(1, 2, 2, false, true),
  count_mismatch = string.pack('<I2', 9) .. gen.idx(0x801, { 1 }, { 4 }) .. gen.idx(0x803, { 2, 1, 1 }, { 1, 2 }),
})
emit('idx_gz', { small = idx_pair(3, 2, 3), square = idx_pair(2, 4, 4), one = idx_pair(1, 1, 1) })

-- ---- CIFAR-10 --------------------------------------------------------------

local function cifar_records(labels)
  local recs = {}
  for i, l in ipairs(labels) do
    recs[i] = { l, string.rep(string.char(i * 40 % 256), 3072) }
  end
  return gen.cifar(recs)
end
emit('cifar', { one = cifar_records { 3 }, two = cifar_records { 0, 9 }, bad_label = cifar_records { 1, 10 } })

-- ---- SVHN .mat -------------------------------------------------------------

local function xvalues(n)
  local v = {}
  for i = 1, 4 * 3 * 3 * n do v[i] = (i * 7) % 256 end
  return v
end
local X2 = gen.mat_var('X', 'uint8', { 4, 3, 3, 2 }, 'uint8', xvalues(2))
local X1 = gen.mat_var('X', 'uint8', { 4, 3, 3 }, 'uint8', xvalues(1))
local ydouble = gen.mat_var('y', 'double', { 2, 1 }, 'double', { 3, 10 })
local yuint8 = gen.mat_var('y', 'double', { 2, 1 }, 'uint8', { 10, 1 })
local yint32 = gen.mat_var('y', 'double', { 1, 1 }, 'int32', { 5 })
local other = gen.mat_var('z', 'double', { 1, 2 }, 'double', { 1.5, 2.5 })
local name = gen.mat_var('name', 'char', { 1, 2 }, 'uint8', { 65, 66 })

emit('svhn', {
  v5 = gen.mat({ other, X2, ydouble }),
  v5_uint8 = gen.mat({ X2, yuint8 }),
  v5_one = gen.mat({ X1, yint32 }),
  v7 = gen.mat({ X2, other, ydouble }, true),
  v7_uint8 = gen.mat({ name, X2, yuint8 }, true),
})
-- svhn_z: the decompressed variables, separated by ZSEP (fuzz/svhn.c).
emit('svhn_z', {
  pair = X2 .. 'ZSEP' .. ydouble,
  three = other .. 'ZSEP' .. X2 .. 'ZSEP' .. yuint8,
  one = X1 .. 'ZSEP' .. yint32,
})

-- ---- PNG and JPEG ----------------------------------------------------------

local function png(img) return via_file(function(p) rl.write_png(p, img) end) end
local function jpeg(img, q) return via_file(function(p) rl.data.write_jpeg(p, img, q) end) end

local pngs = {
  rgb = png(pattern(3, 5, 7)),
  gray = png(pattern(1, 6, 4)),
  wide = png(pattern(3, 1, 40)),
  gray2 = gen.png { w = 3, h = 1, color = 0, rows = { '\0\128\255' } },
  palette = gen.png { w = 2, h = 1, color = 3, plte = '\40\50\60\10\20\30', rows = { '\1\0' } },
  rgba = gen.png { w = 1, h = 1, color = 6, rows = { '\9\8\7\6' } },
  gray_alpha = gen.png { w = 1, h = 1, color = 4, rows = { '\77\0' } },
  deep = gen.png { w = 1, h = 1, color = 2, depth = 16, rows = { '\18\0\52\0\171\0' } },
  bits = gen.png { w = 3, h = 1, color = 0, depth = 1, rows = { '\160' } },
}
emit('png', pngs)

local jpegs = {
  rgb95 = jpeg(pattern(3, 8, 8), 95),
  rgb50 = jpeg(pattern(3, 9, 13), 50),
  gray = jpeg(pattern(1, 8, 16), 80),
  tall = jpeg(pattern(3, 24, 5), 90),
}
emit('jpeg', jpegs)

-- folder: [resize byte][crop byte] then image files separated by FSEP.
emit('folder', {
  two_png = '\4\3' .. pngs.rgb .. 'FSEP' .. pngs.gray,
  mixed = '\6\0' .. jpegs.rgb95 .. 'FSEP' .. pngs.wide .. 'FSEP' .. pngs.palette,
  keep = '\0\2' .. jpegs.rgb50 .. 'FSEP' .. jpegs.tall,
  one = '\10\8' .. jpegs.gray,
})

-- ---- JSON: [option bits] then the text (fuzz/json.c) -----------------------

local header = st.mixed:sub(9, 8 + string.unpack('<I8', st.mixed))
emit('json', {
  st_header = '\1' .. header,
  values = '\0[1, -0, 2.5e-3, 9223372036854775807, "a\\u00e9\\ud83d\\ude00", true, false, null, {}]',
  big = '\4{"n": 123456789012345678901234567890, "x": [[[[]]]]}',
  nul = '\2{"k\\u0000": "v\\n\\t\\"\\\\\\/"}',
  nested = '\0' .. string.rep('[', 60) .. string.rep(']', 60),
  utf8 = '\0"\xce\xb1\xe2\x82\xac\xf0\x9f\x98\x80"',
})
