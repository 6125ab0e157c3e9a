-- data_spec.lua - rl.data: every reader on files written here (IDX plain and
-- gzip, CIFAR-10 batches, SVHN .mat plain and compressed, PNG in each colour
-- type, JPEG, image folders) with exact pixel values; truncated and corrupt
-- files refused with messages naming the file and the byte offset; a short
-- fuzz of each parser; the real Fashion-MNIST of Debian's package (pending
-- where it is not installed); resizing as PIL does; the loader's shuffles,
-- crops, flips, f32 conversion, replay and stratified subsets.
local rl = require 'rl'
local gen = require 'helpers.datagen'
local C = require('rl.core')._data
local fs = require 'rl.fs'

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function mktempdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute('mkdir -m 700 ' .. sh_quote(p)))
  return p
end

local function mkdir(p) assert(os.execute('mkdir -p ' .. sh_quote(p))) end

local check = require 'helpers.check'
local err_of, has = check.err_of, check.has

local function same(t, expected)
  assert.are.same(expected, type(t) == 'table' and t or t:tolist())
end

local dir

setup(function() dir = mktempdir() end)
teardown(function() os.execute('rm -rf ' .. sh_quote(dir)) end)

-- ---------------------------------------------------------------------------
describe('IDX', function()
  -- 3 images of 2x3: pixel (n, i, j) = 10n + 3i + j; labels 7, 0, 9
  local pixels = {}
  for n = 0, 2 do for i = 0, 1 do for j = 0, 2 do pixels[#pixels + 1] = 10 * n + 3 * i + j end end end
  local images = gen.idx(0x803, { 3, 2, 3 }, pixels)
  local labels = gen.idx(0x801, { 3 }, { 7, 0, 9 })

  local function check(x, y)
    same(x:size(), { 3, 1, 2, 3 })
    assert.are.equal('u8', x.dtype)
    assert.are.equal('i64', y.dtype)
    same(x[2][1], { { 10, 11, 12 }, { 13, 14, 15 } })
    same(x[3][1], { { 20, 21, 22 }, { 23, 24, 25 } })
    same(y, { 7, 0, 9 })
  end

  it('reads plain files', function()
    local i = gen.write(dir .. '/i-idx3', images)
    local l = gen.write(dir .. '/l-idx1', labels)
    check(C.read_idx(i, l))
  end)

  it('reads gzip files', function()
    local i = gen.write(dir .. '/i-idx3.gz', gen.gzip(images))
    local l = gen.write(dir .. '/l-idx1.gz', gen.gzip(labels))
    check(C.read_idx(i, l))
  end)

  it('loads mnist from data_dir, plain or .gz', function()
    local d = dir .. '/mnist'
    mkdir(d)
    gen.write(d .. '/t10k-images-idx3-ubyte.gz', gen.gzip(images))
    gen.write(d .. '/t10k-labels-idx1-ubyte', labels)
    local ds = rl.data.load('mnist', { split = 'test', data_dir = dir })
    check(ds.x, ds.y)
    assert.are.equal(3, ds:size())
    assert.are.equal('mnist', ds.name)
    assert.are.equal('9', ds.classes[10])
  end)

  it('refuses a truncated plain file, naming it and the offset', function()
    local i = gen.write(dir .. '/short-idx3', images:sub(1, #images - 4))
    local l = gen.write(dir .. '/l-idx1', labels)
    has(err_of(C.read_idx, i, l), "idx: '" .. i .. "'", 'truncated at byte ' .. (#images - 4))
  end)

  it('refuses a truncated gzip file, naming it and the offset', function()
    local z = gen.gzip(images)
    local i = gen.write(dir .. '/short-idx3.gz', z:sub(1, #z - 14))
    local l = gen.write(dir .. '/l-idx1', labels)
    local e = err_of(C.read_idx, i, l)
    has(e, "idx: '" .. i .. "'", 'truncated at byte')
  end)

  it('refuses a bad magic', function()
    local i = gen.write(dir .. '/bad-idx3', gen.idx(0x802, { 3, 2, 3 }, pixels))
    local l = gen.write(dir .. '/l-idx1', labels)
    has(err_of(C.read_idx, i, l), i, 'bad magic 0x00000802 at byte 0', 'expected 0x00000803')
    has(err_of(C.read_idx, l, i), i, 'bad magic 0x00000802 at byte 0', 'expected 0x00000801')
  end)

  it('refuses mismatched counts and trailing bytes', function()
    local i = gen.write(dir .. '/i-idx3', images)
    local l2 = gen.write(dir .. '/l2-idx1', gen.idx(0x801, { 2 }, { 1, 2 }))
    has(err_of(C.read_idx, i, l2), '3 images', '2 labels')
    local long = gen.write(dir .. '/long-idx1', labels .. '\0')
    has(err_of(C.read_idx, i, long), long, 'unexpected data', 'at byte 11')
  end)

  it('refuses a missing file', function()
    has(err_of(C.read_idx, dir .. '/none', dir .. '/none'), dir .. '/none', 'cannot open')
  end)
end)

-- ---------------------------------------------------------------------------
describe('CIFAR-10', function()
  -- record r: label r, pixel p = (p + r) % 256
  local function record(r)
    local t = {}
    for p = 0, 3071 do t[#t + 1] = string.char((p + r) % 256) end
    return { r, table.concat(t) }
  end

  it('reads and concatenates batches', function()
    local a = gen.write(dir .. '/a.bin', gen.cifar({ record(1), record(2) }))
    local b = gen.write(dir .. '/b.bin', gen.cifar({ record(9) }))
    local x, y = C.read_cifar({ a, b })
    same(x:size(), { 3, 3, 32, 32 })
    same(y, { 1, 2, 9 })
    -- channel-major: x[n][c][i][j] = pixel c*1024 + 32 i + j
    assert.are.equal((1024 + 32 * 5 + 7 + 9) % 256, x[3][2][6][8]:item())
    assert.are.equal((2 * 1024 + 31 * 32 + 31 + 2) % 256, x[2][3][32][32]:item())
  end)

  it('loads cifar10 from data_dir/cifar-10-batches-bin', function()
    local d = dir .. '/cifar/cifar-10-batches-bin'
    mkdir(d)
    gen.write(d .. '/test_batch.bin', gen.cifar({ record(3), record(4) }))
    local ds = rl.data.load('cifar10', { split = 'test', data_dir = dir .. '/cifar' })
    same(ds.y, { 3, 4 })
    assert.are.equal('airplane', ds.classes[1])
  end)

  it('refuses a size that is not a multiple of 3073', function()
    local a = gen.write(dir .. '/cut.bin', gen.cifar({ record(1), record(2) }):sub(1, 5000))
    has(err_of(C.read_cifar, { a }), "cifar10: '" .. a .. "'", 'truncated at byte 3073')
  end)

  it('refuses a label outside 0..9, naming its offset', function()
    local a = gen.write(dir .. '/lab.bin', gen.cifar({ record(1), record(10) }))
    has(err_of(C.read_cifar, { a }), a, 'label 10 at byte 3073')
  end)
end)

-- ---------------------------------------------------------------------------
describe('SVHN .mat', function()
  -- X: H=4, W=3, C=3, N=2, X(h, w, c, n) = 40n + 12c + 3h + w (column-major)
  local function xvalues()
    local v = {}
    for n = 0, 1 do for c = 0, 2 do for w = 0, 2 do for h = 0, 3 do
      v[#v + 1] = 40 * n + 12 * c + 3 * h + w
    end end end end
    return v
  end
  local X = gen.mat_var('X', 'uint8', { 4, 3, 3, 2 }, 'uint8', xvalues())
  local ydouble = gen.mat_var('y', 'double', { 2, 1 }, 'double', { 3, 10 })
  local yuint8 = gen.mat_var('y', 'double', { 2, 1 }, 'uint8', { 10, 1 })
  local other = gen.mat_var('z', 'double', { 1, 2 }, 'double', { 1.5, 2.5 })

  local function check(x, y, labels)
    same(x:size(), { 2, 3, 4, 3 })
    for n = 0, 1 do for c = 0, 2 do for h = 0, 3 do for w = 0, 2 do
      assert.are.equal(40 * n + 12 * c + 3 * h + w, x[n + 1][c + 1][h + 1][w + 1]:item())
    end end end end
    same(y, labels)
  end

  it('reads an uncompressed file (y as double; 10 -> 0)', function()
    local p = gen.write(dir .. '/u.mat', gen.mat({ other, X, ydouble }))
    local x, y = C.read_svhn(p)
    check(x, y, { 3, 0 })
  end)

  it('reads a compressed file (y stored as uint8)', function()
    local p = gen.write(dir .. '/c.mat', gen.mat({ X, other, yuint8 }, true))
    local x, y = C.read_svhn(p)
    check(x, y, { 0, 1 })
  end)

  it('loads svhn by name', function()
    local d = dir .. '/svhn'
    mkdir(d)
    gen.write(d .. '/test_32x32.mat', gen.mat({ X, ydouble }, true))
    local ds = rl.data.load('svhn', { split = 'test', data_dir = d })
    same(ds.y, { 3, 0 })
  end)

  it('refuses truncated files, naming the offset', function()
    local full = gen.mat({ X, ydouble })
    local p = gen.write(dir .. '/t.mat', full:sub(1, #full - 20))
    has(err_of(C.read_svhn, p), "svhn: '" .. p .. "'", 'truncated', 'at byte ' .. (128 + #X))
    p = gen.write(dir .. '/h.mat', full:sub(1, 100))
    has(err_of(C.read_svhn, p), p, 'header', 'at byte 100')
    local z = gen.mat({ X, ydouble }, true)
    p = gen.write(dir .. '/tz.mat', z:sub(1, 128 + 8 + 40) .. z:sub(-8))
    has(err_of(C.read_svhn, p), p, 'at byte 128')
  end)

  it('refuses corrupt compressed data, a big-endian or v7.3 file, a missing y', function()
    local z = gen.mat({ X, ydouble }, true)
    local bad = z:sub(1, 136) .. '\255\255\255\255' .. z:sub(141)
    local p = gen.write(dir .. '/z.mat', bad)
    has(err_of(C.read_svhn, p), p, 'corrupt compressed element', 'at byte 136')
    p = gen.write(dir .. '/be.mat', z:sub(1, 126) .. 'MI' .. z:sub(129))
    has(err_of(C.read_svhn, p), 'big-endian', 'at byte 126')
    p = gen.write(dir .. '/v73.mat', z:sub(1, 124) .. '\0\2IM' .. z:sub(129))
    has(err_of(C.read_svhn, p), 'v7.3', 'at byte 124')
    p = gen.write(dir .. '/noy.mat', gen.mat({ X }))
    has(err_of(C.read_svhn, p), p, "no variable 'y'")
    local y3 = gen.mat_var('y', 'double', { 3, 1 }, 'double', { 1, 2, 3 })
    p = gen.write(dir .. '/n.mat', gen.mat({ X, y3 }))
    has(err_of(C.read_svhn, p), '2 images', '3 labels')
    local y11 = gen.mat_var('y', 'double', { 2, 1 }, 'double', { 1, 11 })
    p = gen.write(dir .. '/l.mat', gen.mat({ X, y11 }))
    has(err_of(C.read_svhn, p), 'label 11', 'y[2]')
  end)
end)

-- ---------------------------------------------------------------------------
describe('images', function()
  local function rows(list) -- list of rows, each a list of bytes
    local t = {}
    for i, r in ipairs(list) do t[i] = gen.bytes(r) end
    return t
  end

  it('decodes RGB, gray, palette, RGBA, gray+alpha, 16-bit and 1-bit PNGs exactly', function()
    local rgb = gen.write(dir .. '/rgb.png', gen.png { w = 2, h = 2, color = 2,
      rows = rows { { 1, 2, 3, 4, 5, 6 }, { 7, 8, 9, 250, 251, 252 } } })
    same(C.load_image(rgb), { { { 1, 4 }, { 7, 250 } }, { { 2, 5 }, { 8, 251 } }, { { 3, 6 }, { 9, 252 } } })
    local gray = gen.write(dir .. '/gray.png', gen.png { w = 3, h = 1, color = 0, rows = rows { { 0, 128, 255 } } })
    same(C.load_image(gray), { { { 0, 128, 255 } }, { { 0, 128, 255 } }, { { 0, 128, 255 } } })
    local pal = gen.write(dir .. '/pal.png', gen.png { w = 2, h = 1, color = 3, rows = rows { { 1, 0 } },
      plte = gen.bytes { 10, 20, 30, 40, 50, 60 }, trns = gen.bytes { 0 } })
    same(C.load_image(pal), { { { 40, 10 } }, { { 50, 20 } }, { { 60, 30 } } })
    local rgba = gen.write(dir .. '/rgba.png', gen.png { w = 1, h = 1, color = 6, rows = rows { { 9, 8, 7, 0 } } })
    same(C.load_image(rgba), { { { 9 } }, { { 8 } }, { { 7 } } })
    local ga = gen.write(dir .. '/ga.png', gen.png { w = 1, h = 1, color = 4, rows = rows { { 77, 3 } } })
    same(C.load_image(ga), { { { 77 } }, { { 77 } }, { { 77 } } })
    local deep = gen.write(dir .. '/16.png', gen.png { w = 1, h = 1, color = 2, depth = 16,
      rows = rows { { 0x12, 0xFF, 0x34, 0x00, 0xAB, 0xCD } } })
    same(C.load_image(deep), { { { 0x12 } }, { { 0x34 } }, { { 0xAB } } })
    local bit = gen.write(dir .. '/1.png', gen.png { w = 3, h = 1, color = 0, depth = 1, rows = rows { { 0xA0 } } })
    same(C.load_image(bit)[1], { { 255, 0, 255 } })
  end)

  it('writes PNGs that read back exactly', function()
    local img = rl.randint(0, 256, 3, 5, 7, 'u8')
    local p = dir .. '/rt.png'
    rl.write_png(p, img)
    assert.is_true(rl.data.load_image(p):eq(img):all():item() == 1)
    local g = rl.randint(0, 256, 1, 4, 4, 'u8')
    rl.write_png(p, g)
    assert.is_true(rl.data.load_image(p)[3]:eq(g[1]):all():item() == 1)
  end)

  it('decodes JPEGs (RGB and gray) within JPEG rounding, and sniffs the format', function()
    local img = rl.zeros(3, 16, 16, 'u8')
    img[1]:fill_(200); img[2]:fill_(100); img[3]:fill_(30)
    local p = dir .. '/a.jpg'
    rl.data.write_jpeg(p, img, 100)
    local back = rl.data.load_image(p)
    same(back:size(), { 3, 16, 16 })
    assert.is_true((back:float() - img:float()):abs():max():item() <= 2)
    rl.data.write_jpeg(p, img[2]:unsqueeze(1), 100)
    back = rl.data.load_image(p)
    assert.is_true((back:float() - 100):abs():max():item() <= 1)
    assert.is_true(back[1]:eq(back[3]):all():item() == 1)
    -- a JPEG named .png is still decoded as a JPEG
    local q = dir .. '/really-a-jpeg.png'
    gen.write(q, gen.read(p))
    assert.are.equal(16, rl.data.load_image(q):size(3))
  end)

  it('refuses truncated and unknown files, naming them', function()
    local p = dir .. '/ok.png'
    rl.write_png(p, rl.randint(0, 256, 3, 32, 32, 'u8'))
    local s = gen.read(p)
    local t = gen.write(dir .. '/trunc.png', s:sub(1, #s // 2))
    has(err_of(C.load_image, t), "image: '" .. t .. "'", 'PNG error', 'byte')
    local j = dir .. '/ok.jpg'
    rl.data.write_jpeg(j, rl.randint(0, 256, 3, 32, 32, 'u8'), 90)
    s = gen.read(j)
    t = gen.write(dir .. '/trunc.jpg', s:sub(1, #s // 2))
    has(err_of(C.load_image, t), "image: '" .. t .. "'", 'truncated')
    t = gen.write(dir .. '/text.jpg', 'hello')
    has(err_of(C.load_image, t), t, 'not a PNG or JPEG', 'at byte 0')
    has(err_of(C.load_image, dir .. '/missing.png'), 'missing.png', 'cannot open')
  end)

  it('resizes as PIL (bilinear, antialiased when shrinking)', function()
    local a = rl.tensor({ { { 0, 200 } } }, 'u8')
    same(rl.data.resize(a, 1, 4), { { { 0, 50, 150, 200 } } })
    local b = rl.tensor({ { { 0, 70, 140, 210 } } }, 'u8')
    same(rl.data.resize(b, 1, 2), { { { 50, 160 } } })
    same(rl.data.resize(b:transpose(2, 3), 2, 1), { { { 50 }, { 160 } } })
    local c = rl.full({ 3, 5, 7 }, 123, 'u8')
    assert.is_true(rl.data.resize(c, 11, 3):eq(123):all():item() == 1)
    local d = rl.randint(0, 256, 2, 6, 5, 'u8')
    assert.is_true(rl.data.resize(d, 6, 5):eq(d):all():item() == 1)
  end)
end)

-- ---------------------------------------------------------------------------
describe('image folders', function()
  -- pixel (c, i, j) = 100c + 10i + j (+ the class's offset)
  local function pattern(h, w, add)
    local rowsets = {}
    for i = 0, h - 1 do
      local r = {}
      for j = 0, w - 1 do for c = 0, 2 do r[#r + 1] = 100 * c + 10 * i + j + add end end
      rowsets[#rowsets + 1] = gen.bytes(r)
    end
    return gen.png { w = w, h = h, color = 2, rows = rowsets }
  end

  local root
  setup(function()
    root = dir .. '/folder'
    for _, d in ipairs { '/train/cat', '/train/ant', '/train/.hidden', '/test/ant', '/test/cat' } do mkdir(root .. d) end
    gen.write(root .. '/train/cat/b.png', pattern(4, 7, 1))
    gen.write(root .. '/train/cat/a.PNG', pattern(4, 6, 2))
    gen.write(root .. '/train/cat/notes.txt', 'not an image')
    gen.write(root .. '/train/ant/z.png', pattern(5, 4, 3))
    gen.write(root .. '/train/.hidden/x.png', pattern(4, 4, 0))
    gen.write(root .. '/test/ant/q.png', pattern(4, 4, 0))
    gen.write(root .. '/test/cat/r.png', pattern(4, 4, 5))
  end)

  it('sorts classes and files, centre-crops as torchvision (ties to even)', function()
    local ds = rl.data.load('folder:' .. root, { resize = 4, ragged = false })
    assert.are.same({ 'ant', 'cat' }, ds.classes)
    same(ds.y, { 0, 1, 1 })
    same(ds.x:size(), { 3, 3, 4, 4 })
    -- ant/z.png 5x4 -> short side 4 already: 5x4, rows offset round(0.5) = 0
    same(ds.x[1][1][1], { 3, 4, 5, 6 })
    same(ds.x[1][1][4], { 33, 34, 35, 36 })
    -- cat/a.PNG 4x6: columns offset round(1) = 1
    same(ds.x[2][2][1], { 103, 104, 105, 106 })
    -- cat/b.png 4x7: columns offset round(1.5) = 2
    same(ds.x[3][3][2], { 213, 214, 215, 216 })
  end)

  it('keeps each resized training image whole (ragged) when no crop is given', function()
    local ds = rl.data.load('folder:' .. root, { resize = 4 })
    assert.is_true(rl.data.is_ragged(ds.x))
    assert.are.same({ 3, 3 }, ds.x.shape)
    -- short side 4: 5x4, 4x6 and 4x7 stay as they are
    same(ds.x.extent, { { 0, 5, 4 }, { 60, 4, 6 }, { 132, 4, 7 } })
    same(ds.x:image(3)[3][2], { 211, 212, 213, 214, 215, 216, 217 })
    -- its centre crop is the dense load's
    local dense = rl.data.load('folder:' .. root, { resize = 4, ragged = false })
    assert.is_true(ds.x:center_crop(4, 4):eq(dense.x):all():item() == 1)
    assert.is_true(ds:center_crop(4).x:eq(dense.x):all():item() == 1)
    -- the test split stays dense (resize x resize)
    same(rl.data.load('folder:' .. root, { resize = 4, split = 'test' }).x:size(), { 2, 3, 4, 4 })
    has(err_of(rl.data.load, 'folder:' .. root, { resize = 4, ragged = true, crop = 4 }), 'takes no crop')
  end)

  it('uses the test split directory and decodes with no resize', function()
    local ds = rl.data.load('folder:' .. root, { split = 'test' })
    same(ds.y, { 0, 1 })
    same(ds.x[2][1][2], { 15, 16, 17, 18 })
  end)

  it('a cache serves only the folder, split and files it was written from', function()
    local cache = dir .. '/folder-cache.safetensors'
    os.remove(cache)
    local train = rl.data.load('folder:' .. root, { resize = 4, ragged = false, cache = cache })
    local again = rl.data.load('folder:' .. root, { resize = 4, ragged = false, cache = cache })
    same(again.y, train.y:tolist())
    assert.is_true(again.x:eq(train.x):all():item() == 1)
    -- the test split (2 images) is not served the training split's 3
    local real = fs.realpath(root)
    has(err_of(rl.data.load, 'folder:' .. root, { resize = 4, split = 'test', cache = cache }), cache,
      "holds split 'train' of folder '" .. real .. "/train'", "this load reads split 'test' of folder '" .. real ..
      "/test'", 'delete it')
    -- nor is another folder, even with the same split and geometry
    local other = dir .. '/folder-other'
    mkdir(other .. '/train/cat')
    gen.write(other .. '/train/cat/a.png', pattern(4, 4, 9))
    has(err_of(rl.data.load, 'folder:' .. other, { resize = 4, ragged = false, cache = cache }), "of folder '" .. real .. "/train'",
      "of folder '" .. fs.realpath(other) .. "/train'")
    -- a file added, resized or removed since is seen
    gen.write(root .. '/train/ant/y.png', pattern(4, 4, 1))
    has(err_of(rl.data.load, 'folder:' .. root, { resize = 4, ragged = false, cache = cache }), "holds '3 files, digest ",
      "but the folder now has '4 files, digest ", 'added, removed, renamed or resized')
    os.remove(root .. '/train/ant/y.png')
    local z = fs.read(root .. '/train/ant/z.png')
    gen.write(root .. "/train/ant/z.png", pattern(5, 5, 3))
    has(err_of(rl.data.load, 'folder:' .. root, { resize = 4, ragged = false, cache = cache }), "but the folder now has '3 files, digest ")
    gen.write(root .. '/train/ant/z.png', z)
    assert.are.equal(3, rl.data.load('folder:' .. root, { resize = 4, ragged = false, cache = cache }):size())
    -- the test split's own cache is written and reused
    local tcache = dir .. '/folder-test-cache.safetensors'
    os.remove(tcache)
    same(rl.data.load('folder:' .. root, { resize = 4, split = 'test', cache = tcache }).y, { 0, 1 })
    same(rl.data.load('folder:' .. root, { resize = 4, split = 'test', cache = tcache }).y, { 0, 1 })
  end)

  it('resizes the short side and crops a given size', function()
    local ds = rl.data.load('folder:' .. root, { resize = 8, crop = 6 })
    same(ds.x:size(), { 3, 3, 6, 6 })
  end)

  it("maps ImageNet's 1000 wnid folders to the 9 Restricted ImageNet classes", function()
    local d = dir .. '/imagenet/val'
    local names = {}
    for i = 0, 999 do names[#names + 1] = sh_quote(string.format('%s/n%08d', d, i)) end
    mkdir(d)
    assert(os.execute('mkdir ' .. table.concat(names, ' ')))
    local img = rl.full({ 3, 72, 72 }, 1, 'u8')
    local names = { [0] = 'x', [30] = 'x', [151] = 'b', [268] = 'a', [269] = 'x', [319] = 'x' }
    for _, i in ipairs { 0, 30, 151, 268, 269, 319 } do
      img:fill_(i % 256)
      rl.write_png(string.format('%s/n%08d/%s.png', d, i, names[i]), img)
    end
    local ds = rl.data.load('resimgnet', { split = 'test', data_dir = dir .. '/imagenet' })
    -- numbered by name, as the reference's ImageFolder numbers its super-class folders
    assert.are.same({ 'bird', 'cat', 'crab', 'dog', 'fish', 'frog', 'insect', 'primate', 'turtle' }, ds.classes)
    -- dog (151, 268), frog (30), insect (319); 0 and 269 are in no class.  A
    -- super-class's files are sorted by name as one folder: a.png (268) first
    same(ds.y, { 3, 3, 5, 6 })
    same(ds.x:size(), { 4, 3, 64, 64 })
    same(ds.x:select(2, 1):select(2, 1):select(2, 1), { 268 % 256, 151, 30, 319 % 256 })
  end)

  it('names an unreadable image', function()
    local bad = dir .. '/badfolder/k'
    mkdir(bad)
    gen.write(bad .. '/1.png', pattern(4, 4, 0))
    gen.write(bad .. '/2.png', pattern(4, 4, 0):sub(1, 60))
    has(err_of(rl.data.load, 'folder:' .. dir .. '/badfolder'), bad .. '/2.png')
  end)

  it('reads Restricted ImageNet from super-class folders (short side 72, kept whole)', function()
    local d = dir .. '/resimgnet/train'
    for _, c in ipairs { 'bird', 'dog' } do mkdir(d .. '/' .. c) end
    rl.data.write_jpeg(d .. '/bird/1.JPEG', rl.full({ 3, 80, 100 }, 90, 'u8'), 95)
    rl.write_png(d .. '/dog/2.png', rl.full({ 3, 72, 72 }, 10, 'u8'))
    local ds = rl.data.load('resimgnet', { data_dir = dir })
    assert.is_true(rl.data.is_ragged(ds.x))
    -- 80x100 -> 72x90 (torchvision's Resize(72): the long side truncated)
    same(ds.x.extent, { { 0, 72, 90 }, { 3 * 72 * 90, 72, 72 } })
    assert.are.same({ 'bird', 'dog' }, ds.classes)
    assert.is_true((ds.x:image(1):float() - 90):abs():max():item() <= 2)
    same(rl.data.load('resimgnet', { data_dir = dir, crop = 64 }).x:size(), { 2, 3, 64, 64 })
  end)
end)

-- ---------------------------------------------------------------------------
describe('fuzzed files', function()
  -- Random byte changes and cuts of valid files: each read either succeeds
  -- or raises a message naming the file; none may crash.
  local function fuzz(name, bytes, read, seed)
    local g = rl.Generator(seed)
    local p = dir .. '/' .. name
    for _ = 1, 60 do
      local r = rl.randint(0, 1 << 30, 4, { generator = g }):tolist()
      local s = bytes
      if r[1] % 3 == 0 then
        s = s:sub(1, r[2] % #s)
      else
        for k = 0, r[1] % 4 do
          local at = (r[2] + k * r[3]) % #s + 1
          s = s:sub(1, at - 1) .. string.char((r[4] >> (k * 7)) % 256) .. s:sub(at + 1)
        end
      end
      gen.write(p, s)
      local ok, e = pcall(read, p)
      if not ok then has(tostring(e), p) end
    end
  end

  it('IDX, CIFAR, MAT and PNG readers fail cleanly', function()
    local l = gen.write(dir .. '/fz-labels', gen.idx(0x801, { 4 }, { 1, 2, 3, 4 }))
    fuzz('fz.idx.gz', gen.gzip(gen.idx(0x803, { 4, 3, 3 }, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9,
      1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9 })), function(p) return C.read_idx(p, l) end, 1)
    fuzz('fz.bin', gen.cifar({ { 1, string.rep('a', 3072) } }), function(p) return C.read_cifar({ p }) end, 2)
    local X = gen.mat_var('X', 'uint8', { 2, 2, 3, 1 }, 'uint8', { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 })
    local y = gen.mat_var('y', 'double', { 1, 1 }, 'double', { 4 })
    fuzz('fz.mat', gen.mat({ X, y }, true), C.read_svhn, 3)
    fuzz('fz2.mat', gen.mat({ X, y }), C.read_svhn, 4)
    fuzz('fz.png', gen.png { w = 2, h = 1, color = 2, rows = { gen.bytes { 1, 2, 3, 4, 5, 6 } } }, C.load_image, 5)
  end)
end)

-- ---------------------------------------------------------------------------
describe('dataset registry', function()
  it('lists the expected files and directories when a dataset is missing', function()
    local e = err_of(rl.data.load, 'mnist', { split = 'test', data_dir = dir .. '/nothing' })
    has(e, "dataset 'mnist' (test split) not found",
      't10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]',
      'in one of: ' .. dir .. '/nothing, ' .. dir .. '/nothing/mnist')
    e = err_of(rl.data.load, 'cifar10', { data_dir = dir .. '/nothing' })
    has(e, 'data_batch_1.bin', 'data_batch_5.bin', dir .. '/nothing/cifar10/cifar-10-batches-bin')
    e = err_of(rl.data.load, 'svhn', { data_dir = dir .. '/nothing' })
    has(e, 'train_32x32.mat', dir .. '/nothing/svhn')
  end)

  it('searches $RL_DATA/<name>', function()
    local env = dir .. '/envdata'
    mkdir(env .. '/mnist')
    gen.write(env .. '/mnist/train-images-idx3-ubyte', gen.idx(0x803, { 1, 1, 2 }, { 5, 6 }))
    gen.write(env .. '/mnist/train-labels-idx1-ubyte.gz', gen.gzip(gen.idx(0x801, { 1 }, { 4 })))
    local code = string.format([[
      local rl = require 'rl'
      print(rl.data.load('mnist').y[1]:item())
      print(select(2, pcall(rl.data.load, 'svhn')))
      -- a data_dir given is the only place looked in: no fall back to RL_DATA
      print(select(2, pcall(rl.data.load, 'mnist', { data_dir = %q })))]], dir .. '/nothing')
    local p = io.popen(string.format('RL_DATA=%s LUA_PATH=%s LUA_CPATH=%s %s -e %s 2>&1',
      sh_quote(env), sh_quote(package.path), sh_quote(package.cpath), require('helpers.shell').lua, sh_quote(code)))
    local out = p:read('a')
    p:close()
    has(out, '4\n', 'expected train_32x32.mat in one of: ' .. env .. '/svhn.',
      "dataset 'mnist' (train split) not found", '(data_dir is given, so only it is searched)')
  end)

  it('refuses unknown names, splits and options', function()
    has(err_of(rl.data.load, 'imagenet'), 'unknown dataset', 'cifar10')
    has(err_of(rl.data.load, 'mnist', { split = 'val' }), "split must be 'train' or 'test'")
    has(err_of(rl.data.load, 'mnist', { batch = 3 }), "unknown option 'batch'")
  end)

  it('refuses options that do not apply to the dataset, and bad values, at the caller', function()
    has(err_of(rl.data.load, 'synthetic', { n = 10, resize = 5, crop = 5 }),
      'rl.data.load: resize applies only to image folders (resimgnet, folder:PATH), not to synthetic', 'use size')
    has(err_of(rl.data.load, 'synthetic', { n = 10, crop = 5 }), 'crop applies only to image folders')
    has(err_of(rl.data.load, 'mnist', { split = 'test', n = 10 }),
      'rl.data.load: n applies only to synthetic, not to mnist; use subset')
    has(err_of(rl.data.load, 'cifar10', { pattern_seed = 1 }), 'pattern_seed applies only to synthetic')
    has(err_of(rl.data.load, 'mnist', { cache = dir .. '/c.safetensors' }), 'cache applies only to image folders')
    has(err_of(rl.data.load, 'synthetic', { n = 20, subset = 100 }),
      'subset = 100 is more than the n = 20 synthetic examples')
    has(err_of(rl.data.load, 'synthetic', { n = 10, size = 0 }), 'size must be in [1, 1048576], got 0')
    has(err_of(rl.data.load, 'resimgnet', { crop = { 64 } }), 'crop must be a positive integer or {h, w}, got {64}')
    has(err_of(rl.data.load, 'resimgnet', { ragged = 'yes' }), 'ragged must be true or false')
    has(err_of(rl.data.synthetic, { N = 5 }), "rl.data.synthetic: unknown option 'N' (did you mean 'n'?)")
    has(err_of(rl.data.synthetic, { n = 5, split = 'val' }), "split must be one of 'train', 'test'")
    -- the caller's line, not data.lua's
    local ok, e = pcall(function() local _ = rl.data.load('synthetic', { subset = 0 }) end) -- no tail call
    assert.is_false(ok)
    has(e, 'data_spec.lua:', 'rl.data.load: subset must be >= 1, got 0')
    -- data_dir is anyone's (a run gives it whatever its dataset); seed without subset too
    assert.are.equal(5, rl.data.load('synthetic', { n = 10, subset = 5, seed = 1, data_dir = dir }):size())
    assert.are.equal(10, rl.data.load('synthetic', { n = 10, seed = 1 }):size())
  end)

  it('gives the paper augmentation per dataset', function()
    assert.are.same({ crop_pad = 4, flip = true }, rl.data.augment_defaults('cifar10'))
    assert.are.same({ crop = 64, crop_pad = 8 }, rl.data.augment_defaults('resimgnet'))
    assert.are.same({ crop = 64 }, rl.data.augment_defaults('resimgnet', 'test'))
    assert.are.same({}, rl.data.augment_defaults('svhn'))
    assert.are.same({}, rl.data.augment_defaults('mnist'))
  end)

  it('makes well-separated synthetic data, the same for one seed', function()
    local a = rl.data.synthetic { n = 40, classes = 4, channels = 3, size = 8, seed = 7 }
    local b = rl.data.synthetic { n = 40, classes = 4, channels = 3, size = 8, seed = 7 }
    assert.is_true(a.x:eq(b.x):all():item() == 1)
    same(a.x:size(), { 40, 3, 8, 8 })
    -- nearest other-class example is at least 115/255 away in l-inf
    local x = a.x:float():view(40, -1)
    local y = a.y:tolist()
    for i = 1, 40, 7 do
      for j = 1, 40 do
        if y[i] ~= y[j] then
          assert.is_true((x[i] - x[j]):abs():max():item() >= 115)
        end
      end
    end
    local t = rl.data.load('synthetic', { split = 'test', n = 40, classes = 4, channels = 3, size = 8, pattern_seed = 7 })
    assert.is_false(t.x:eq(a.x):all():item() == 1)
    same(t.y, a.y:tolist())
  end)
end)

-- ---------------------------------------------------------------------------
describe('Fashion-MNIST from /usr/share/datasets/fashion-mnist', function()
  local sys = '/usr/share/datasets/fashion-mnist'
  local present = io.open(sys .. '/train-labels-idx1-ubyte.gz', 'rb')
  if present then present:close() end

  it('loads 60000 + 10000 images with 6000 / 1000 of each class', function()
    if not present then
      print('\ndata_spec: ' .. sys .. ' not found (Debian package dataset-fashion-mnist): skipped')
      return pending('dataset-fashion-mnist not installed')
    end
    local tr = rl.data.load('fashion-mnist')
    same(tr.x:size(), { 60000, 1, 28, 28 })
    assert.are.same({ 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000 }, tr:class_counts())
    local te = rl.data.load('fashion-mnist', { split = 'test' })
    same(te.x:size(), { 10000, 1, 28, 28 })
    assert.are.same({ 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000 }, te:class_counts())
    assert.are.equal('Ankle boot', tr.classes[tr.y[1]:item() + 1])
    -- an independent reader (Python's gzip) agrees on labels and pixels
    local py = io.popen([[/usr/bin/python3 -c "
import gzip
l = gzip.open(']] .. sys .. [[/train-labels-idx1-ubyte.gz').read()[8:]
i = gzip.open(']] .. sys .. [[/train-images-idx3-ubyte.gz').read()[16:]
print(' '.join(str(v) for v in l[:10]), sum(i[:784 * 100]), sum(i[-784:]))
" 2>/dev/null]])
    local out = py and py:read('a') or ''
    if py then py:close() end
    if out == '' then return end
    local want = {}
    for v in out:gmatch('%d+') do want[#want + 1] = tonumber(v) end
    same(tr.y:narrow(1, 1, 10), { table.unpack(want, 1, 10) })
    assert.are.equal(want[11], tr.x:narrow(1, 1, 100):long():sum():item())
    assert.are.equal(want[12], tr.x[60000]:long():sum():item())
  end)
end)

-- ---------------------------------------------------------------------------
describe('loader', function()
  -- example i has every pixel equal to i and label i % 5
  local function indexed(n, c, h, w)
    local x = rl.arange(n):view(n, 1, 1, 1):expand(n, c, h, w):byte():contiguous()
    local y = rl.arange(n) % 5
    return rl.data.dataset(x, y:long())
  end

  local function ids(x) -- the example index each batch row came from
    local t = {}
    for b = 1, x:size(1) do t[b] = math.floor(x[b]:max():item() * 255 + 0.5) end
    return t
  end

  it('covers every index exactly once per epoch; #loader counts batches', function()
    local ds = indexed(103, 1, 2, 2)
    local L = rl.data.loader(ds, { batch = 10, seed = 3 })
    assert.are.equal(11, #L)
    local seen, last = {}, 0
    for x, y, i in L:iter(1) do
      same({ x:size(1), x:size(2), x:size(3), x:size(4) }, { i < 11 and 10 or 3, 1, 2, 2 })
      assert.are.equal('f32', x.dtype)
      assert.are.equal('i64', y.dtype)
      local id = ids(x)
      for b, v in ipairs(id) do
        assert.is_nil(seen[v])
        seen[v] = true
        assert.are.equal(v % 5, y[b]:item())
      end
      last = i
    end
    assert.are.equal(11, last)
    for v = 0, 102 do assert.is_true(seen[v]) end
    local D = rl.data.loader(ds, { batch = 10, drop_last = true })
    assert.are.equal(10, #D)
    local n = 0
    for _ in D:iter(0) do n = n + 1 end
    assert.are.equal(10, n)
  end)

  it('replays an epoch from its seed; other epochs and seeds differ', function()
    local ds = indexed(64, 1, 1, 1)
    local function order(seed, epoch, first)
      local t = {}
      for x in rl.data.loader(ds, { batch = 8, seed = seed }):iter(epoch, first) do
        for _, v in ipairs(ids(x)) do t[#t + 1] = v end
      end
      return t
    end
    assert.are.same(order(5, 2), order(5, 2))
    assert.are.not_same(order(5, 2), order(5, 3))
    assert.are.not_same(order(5, 2), order(6, 2))
    -- resuming at batch 3 gives the tail of the same epoch
    assert.are.same({ table.unpack(order(5, 2), 17) }, order(5, 2, 3))
    local unshuffled = {}
    for x in rl.data.loader(ds, { batch = 8, shuffle = false }):iter() do
      for _, v in ipairs(ids(x)) do unshuffled[#unshuffled + 1] = v end
    end
    for i = 1, 64 do assert.are.equal(i - 1, unshuffled[i]) end
  end)

  it('gives f32 values equal to u8 / 255', function()
    local ds = rl.data.synthetic { n = 30, classes = 3, channels = 3, size = 5, seed = 1 }
    local L = rl.data.loader(ds, { batch = 30, shuffle = false })
    for x in L:iter() do
      assert.are.equal(0, (x - ds.x:float() / 255):abs():max():item())
    end
  end)

  it('crops with zero padding and flips exactly, covering every window', function()
    -- one 1x3x3 image 1..9; padded by 1 there are 3x3 windows, each maybe flipped
    local x = rl.tensor({ { { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } } } }, 'u8')
    local padded = { { 0, 0, 0, 0, 0 }, { 0, 1, 2, 3, 0 }, { 0, 4, 5, 6, 0 }, { 0, 7, 8, 9, 0 }, { 0, 0, 0, 0, 0 } }
    local function window(oy, ox, flip)
      local w = {}
      for i = 1, 3 do
        w[i] = {}
        for j = 1, 3 do w[i][j] = padded[oy + i][ox + (flip and 4 - j or j)] end
      end
      return w
    end
    local g = rl.Generator(11)
    local idx = rl.zeros(400, 'i64')
    local b = C.batch(x, idx, { pad = 1, random_crop = true, flip = true, generator = g })
    same(b:size(), { 400, 1, 3, 3 })
    local counts = {}
    for r = 1, 400 do
      local v = (b[r][1] * 255):round():long():tolist()
      local hit
      for oy = 0, 2 do for ox = 0, 2 do for _, f in ipairs { false, true } do
        if not hit and rl.repr(v) == rl.repr(window(oy, ox, f)) then hit = oy .. ox .. tostring(f) end
      end end end
      assert.is_not_nil(hit, 'row ' .. r .. ' is no window of the padded image')
      counts[hit] = (counts[hit] or 0) + 1
    end
    local kinds = 0
    for _, c in pairs(counts) do
      kinds = kinds + 1
      assert.is_true(c >= 8 and c <= 40, 'a window came ' .. c .. ' times in 400 (expected about 22)')
    end
    assert.are.equal(18, kinds)
    assert.are.same(rl.Generator(11):get_state().seed, g:get_state().seed)
    assert.are.equal(400, g:get_state().offset) -- one counter per row
    -- the same generator state gives the same batch
    local b2 = C.batch(x, idx, { pad = 1, random_crop = true, flip = true, generator = rl.Generator(11) })
    assert.are.equal(0, (b - b2):abs():max():item())
    -- without randomness: the centre (ties to even) and no counters taken
    local g2 = rl.Generator(1)
    local c = C.batch(x, rl.zeros(1, 'i64'), { crop = 2, generator = g2 })
    same((c[1][1] * 255):round(), { { 1, 2 }, { 4, 5 } })
    assert.are.equal(0, g2:get_state().offset)
    c = C.batch(x, rl.zeros(1, 'i64'), { crop = { 1, 3 }, pad = 2 })
    same((c[1][1] * 255):round(), { { 4, 5, 6 } })
  end)

  it('applies the loader crop options (resimgnet-style centre crop for testing)', function()
    local ds = indexed(4, 3, 72, 72)
    local L = rl.data.loader(ds, { batch = 4, crop = 64, shuffle = false })
    for x in L:iter() do same(x:size(), { 4, 3, 64, 64 }) end
    local T = rl.data.loader(ds, rl.data.augment_defaults('resimgnet'))
    for x in T:iter(0) do
      same(x:size(), { 4, 3, 64, 64 })
    end
  end)

  it('checks every option, the dataset and iter\'s range when it is made', function()
    local ds = indexed(20, 1, 4, 4)
    local function refuses(opts, ...)
      local ok, e = pcall(function() local _ = rl.data.loader(ds, opts) end) -- no tail call
      assert.is_false(ok, 'expected an error')
      has(e, 'data_spec.lua:', ...)
    end
    refuses({ flip = 'no' }, "rl.data.loader: flip must be true or false, got the string 'no'")
    refuses({ drop_last = 'no' }, 'drop_last must be true or false')
    refuses({ shuffle = 0 }, 'shuffle must be true or false')
    refuses({ random_crop = 1 }, 'random_crop must be true or false')
    refuses({ batch = 0 }, 'batch must be >= 1, got 0')
    refuses({ batch = 2.5 }, 'batch must be an integer, got 2.5')
    refuses({ seed = 'x' }, 'seed must be an integer')
    refuses({ crop_pad = -1 }, 'crop_pad must be >= 0, got -1')
    refuses({ crop = 0 }, 'crop must be a positive integer or {h, w}, got 0')
    refuses({ crop = 5 }, 'crop 5x5 is larger than the images (4x4)')
    refuses({ crop = { 4, 9 }, crop_pad = 2 }, 'crop 4x9 is larger than the images (4x4, 8x8 with crop_pad 2)')
    refuses({ device = 'gpu' }, "rl.data.loader: unknown device 'gpu'")
    refuses({ device = 1 }, 'device must be a string')
    refuses({ btch = 3 }, "unknown option 'btch' (did you mean 'batch'?)")
    assert.are.equal(2, #rl.data.loader(ds, { crop = 8, crop_pad = 2, batch = 10 }))
    assert.are.equal(1, #rl.data.loader(ds, { batch = 20, device = 'cuda', flip = false })) -- spelling only
    for _, bad in ipairs { { nil, 'got nil' }, { ds.x, 'got a u8 tensor of size 20x1x4x4' }, { {}, 'got a table' } } do
      has(err_of(rl.data.loader, bad[1], {}),
        "rl.data.loader: the first argument must be a dataset (rl.data.load's result", bad[2])
    end
    local L = rl.data.loader(ds, { batch = 8 }) -- 3 batches
    for _, first in ipairs { 0, 4, 99, 1.5 } do
      local ok, e = pcall(function() local _ = L:iter(1, first) end)
      assert.is_false(ok)
      has(e, 'data_spec.lua:', 'first_batch must be an integer in 1..3', 'got ' .. tostring(first))
    end
    has(err_of(L.iter, L, -1), 'epoch must be an integer in 0..2^23-1, got -1')
    local n = 0
    for _ in L:iter(1, 3) do n = n + 1 end
    assert.are.equal(1, n)
  end)

  it('refuses bad indices and impossible crops', function()
    local x = rl.zeros(2, 1, 4, 4, 'u8')
    has(err_of(C.batch, x, rl.tensor({ 0, 2 }, 'i64')), 'index 2 (position 2) is out of range for 2 images')
    has(err_of(C.batch, x, rl.tensor({ 0 }, 'i64'), { crop = 9, pad = 2 }), 'cannot cut 9x9 from 4x4')
    has(err_of(C.batch, x:float(), rl.tensor({ 0 }, 'i64')), 'u8')
  end)
end)

-- ---------------------------------------------------------------------------
describe('stratified subsets', function()
  it('takes an equal share per class, seeded, keeping order', function()
    local ds = rl.data.synthetic { n = 1000, classes = 10, size = 4 }
    local s = ds:subset(95, 1)
    assert.are.same({ 10, 10, 10, 10, 10, 9, 9, 9, 9, 9 }, s:class_counts())
    assert.is_true(s.x:eq(ds:subset(95, 1).x):all():item() == 1)
    assert.is_false(s.x:eq(ds:subset(95, 2).x):all():item() == 1)
    local l = rl.data.load('synthetic', { n = 1000, classes = 10, size = 4, subset = 95, seed = 1 })
    assert.is_true(l.x:eq(s.x):all():item() == 1)
    assert.are.equal(ds, ds:subset(1000, 1)) -- all of it
  end)

  -- a subset larger than the data was the data, recorded as the subset
  -- asked for (a tester's find: "training subset 2000" of 1000 examples)
  it('more than there are is an error naming both numbers', function()
    local ds = rl.data.synthetic { n = 100, classes = 10, size = 4 }
    local ok, msg = pcall(ds.subset, ds, 101, 1)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('Dataset:subset: subset = 101 is more than the 100 examples of the dataset', 1,
      true), msg)
    for _, c in ipairs {
      { 'train', 2000, "rl.data.load: subset = 2000 is more than the 1000 examples of synthetic's train split" },
      { 'test', 500, "rl.data.load: subset = 500 is more than the 200 examples of synthetic's test split" },
    } do
      ok, msg = pcall(rl.data.load, 'synthetic', { split = c[1], subset = c[2] })
      assert.is_false(ok)
      assert.truthy(tostring(msg):find(c[3], 1, true), msg)
    end
    assert.are.equal(200, rl.data.load('synthetic', { split = 'test', subset = 200 }):size())
  end)

  it('gives a short class all it has and fills from the others', function()
    -- labels: 2 of class 0, 20 of class 1, 20 of class 2
    local y = {}
    for i = 1, 42 do y[i] = i <= 2 and 0 or (i <= 22 and 1 or 2) end
    local ds = rl.data.dataset(rl.zeros(42, 1, 1, 1, 'u8'), rl.tensor(y, 'i64'))
    assert.are.same({ 2, 11, 11 }, ds:subset(24, 0):class_counts())
  end)
end)
