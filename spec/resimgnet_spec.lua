-- resimgnet_spec.lua - Restricted ImageNet's geometry as the reference code
-- has it (lolip/datasets/__init__.py, resImgnet112v3): training images
-- resized to short side 72 and kept whole, then RandomCrop(64, padding=8)
-- of the whole image; test images and Table 1's distances resized to 72
-- and centre-cropped to 64.  Fixtures are PNG and JPEG folders written
-- here; the ragged store, its checks, its cache and its errors.
local rl = require 'rl'
local json = require 'rl.json'
local sep = rl.separation

local shell, check = require 'helpers.shell', require 'helpers.check'
local sh_quote, mkdir, err_of, has = shell.quote, shell.mkdir, check.err_of, check.has

local function equal(a, b) return a:eq(b):all():item() == 1 end

-- An h x w image whose pixels say where they are: red = column + 30, green
-- = row + 100, blue = 255 (the zero padding has blue 0).
local function coded(h, w)
  local cols = (rl.arange(w) + 30):view(1, w):expand(h, w)
  local rows = (rl.arange(h) + 100):view(h, 1):expand(h, w)
  return rl.stack({ cols, rows, rl.full({ h, w }, 255, 'i64') }, 1):byte():contiguous()
end

-- The centred ch x cw window of img [C, H, W] (torchvision's CenterCrop:
-- offsets round((H - ch) / 2) with ties to even).
local function center(img, ch, cw)
  local function off(len, n)
    local d = len - n
    local k = d // 2
    if d % 2 == 1 and k % 2 == 1 then k = k + 1 end
    return k
  end
  return img:narrow(2, off(img:size(2), ch) + 1, ch):narrow(3, off(img:size(3), cw) + 1, cw)
end

local root, src = nil, {}

setup(function()
  root = os.tmpname()
  os.remove(root)
  local d = root .. '/resimgnet'
  for _, p in ipairs { '/train/bird', '/train/dog', '/test/bird', '/test/dog' } do mkdir(d .. p) end
  src.wide = coded(72, 200)                        -- short side already 72: kept as it is
  src.tall = rl.randint(0, 256, 3, 150, 100, 'u8') -- 150x100 -> 108x72
  src.odd = coded(72, 201)                         -- centre column offset 68.5 -> 68
  src.big = rl.randint(0, 256, 3, 100, 150, 'u8')  -- 100x150 -> 72x108
  rl.write_png(d .. '/train/bird/wide.png', src.wide)
  rl.write_png(d .. '/train/dog/tall.png', src.tall)
  rl.data.write_jpeg(d .. '/train/dog/z.jpg', src.big, 90)
  rl.write_png(d .. '/test/bird/odd.png', src.odd)
  rl.write_png(d .. '/test/dog/big.png', src.big)
  rl.data.write_jpeg(d .. '/test/dog/z.jpg', src.big, 90)
end)

teardown(function() os.execute('rm -rf ' .. sh_quote(root)) end)

describe('Restricted ImageNet geometry', function()
  it('test split: Resize(72), then CenterCrop(64)', function()
    local te = rl.data.load('resimgnet', { split = 'test', data_dir = root })
    assert.are.same({ 'bird', 'dog' }, te.classes)
    assert.are.same({ 3, 3, 64, 64 }, te.x:size())
    -- 72x201: rows from 4, columns from round(68.5) = 68 (even)
    assert.is_true(equal(te.x[1], center(src.odd, 64, 64)))
    assert.are.equal(68 + 30, te.x[1][1][1][1]:item())
    assert.are.equal(4 + 100, te.x[1][2][1][1]:item())
    -- 100x150 -> 72x108 (PIL's bilinear), then its centre
    local resized = rl.data.resize(src.big, 72, 108)
    assert.is_true(equal(te.x[2], center(resized, 64, 64)))
    -- a JPEG goes the same way from its decoded pixels
    local jpg = rl.data.load_image(root .. '/resimgnet/test/dog/z.jpg')
    assert.is_true(equal(te.x[3], center(rl.data.resize(jpg, 72, 108), 64, 64)))
    -- evaluation batches of the test split are those pixels / 255
    local eval = rl.data.augment_defaults('resimgnet', 'test')
    eval.shuffle = false
    for x in rl.data.loader(te, eval):iter(1) do
      assert.are.equal(0, (x - te.x:float() / 255):abs():max():item())
    end
  end)

  it('training split: every image resized to short side 72 and kept whole', function()
    local tr = rl.data.load('resimgnet', { data_dir = root })
    assert.is_true(rl.data.is_ragged(tr.x))
    assert.are.same({ 3, 3 }, tr.x.shape)
    local h, w = tr.x:sizes()
    assert.are.same({ 72, 108, 72 }, h:tolist())
    assert.are.same({ 200, 72, 108 }, w:tolist())
    assert.is_true(equal(tr.x:image(1), src.wide))
    assert.is_true(equal(tr.x:image(2), rl.data.resize(src.tall, 108, 72)))
    -- evaluating on the training split: the same centre crop as the test split
    local c = tr.x:center_crop()
    assert.are.same({ 3, 3, 64, 64 }, c:size())
    assert.is_true(equal(c[1], center(src.wide, 64, 64)))
    assert.is_true(equal(c[2], center(rl.data.resize(src.tall, 108, 72), 64, 64)))
    local dense = rl.data.load('resimgnet', { data_dir = root, crop = 64 })
    assert.is_true(equal(dense.x, tr.x:center_crop(64, 64)))
    for x in rl.data.loader(tr, { crop = 64, batch = 3, shuffle = false }):iter(1) do
      assert.are.equal(0, (x - dense.x:float() / 255):abs():max():item())
    end
  end)

  it('training crops: RandomCrop(64, padding=8) anywhere in the whole image', function()
    local tr = rl.data.load('resimgnet', { data_dir = root })
    -- the wide image padded by 8 zeros: every draw must be one of its windows
    local padded = rl.zeros(3, 88, 216, 'u8')
    padded:narrow(2, 9, 72):narrow(3, 9, 200):copy_(src.wide)
    local aug = rl.data.augment_defaults('resimgnet')
    assert.are.same({ crop = 64, crop_pad = 8 }, aug)
    local g = rl.Generator(2024)
    local idx = rl.zeros(250, 'i64') -- image 0 (wide.png), 250 times per batch
    local oys, oxs, outside, edges = {}, {}, 0, { left = 0, right = 0, top = 0, bottom = 0 }
    for _ = 1, 8 do
      local b = rl.data.batch(tr.x, idx, { crop = 64, pad = 8, random_crop = true, generator = g })
      assert.are.same({ 250, 3, 64, 64 }, b:size())
      local px = (b * 255):round():byte()
      for r = 1, 250 do
        -- the window's centre pixel is always inside the image: it says where the window is
        local col = px[r][1][33][33]:item() - 30
        local row = px[r][2][33][33]:item() - 100
        local ox, oy = col - 32 + 8, row - 32 + 8 -- in the padded image
        assert.is_true(ox >= 0 and ox <= 200 + 16 - 64 and oy >= 0 and oy <= 72 + 16 - 64)
        assert.is_true(equal(px[r], padded:narrow(2, oy + 1, 64):narrow(3, ox + 1, 64)),
          string.format('draw %d is not the padded window at (%d, %d)', r, oy, ox))
        oys[oy] = (oys[oy] or 0) + 1
        oxs[ox] = (oxs[ox] or 0) + 1
        -- image columns ox - 8 .. ox + 55; the central 72x72 holds columns 64..135
        if ox - 8 < 64 or ox + 55 > 135 then outside = outside + 1 end
        if ox < 8 then edges.left = edges.left + 1 end
        if ox > 200 + 8 - 64 then edges.right = edges.right + 1 end
        if oy < 8 then edges.top = edges.top + 1 end
        if oy > 72 + 8 - 64 then edges.bottom = edges.bottom + 1 end
      end
    end
    -- 2000 draws: every row offset 0..24 and both ends of 0..152 along the width
    for oy = 0, 24 do assert.is_true((oys[oy] or 0) > 0, 'row offset ' .. oy .. ' never drawn') end
    assert.is_true(oxs[0] and oxs[152] and true)
    local n_ox = 0
    for ox, c in pairs(oxs) do
      n_ox = n_ox + 1
      assert.is_true(c <= 40, string.format('column offset %d drawn %d times of 2000 (about 13 expected)', ox, c))
    end
    assert.is_true(n_ox >= 145, 'only ' .. n_ox .. ' of 153 column offsets drawn')
    -- most windows reach outside the central 72x72; the padding shows on every side
    assert.is_true(outside > 1500, outside .. ' of 2000 windows left the central region')
    for side, c in pairs(edges) do assert.is_true(c > 20, side .. ' padding seen ' .. c .. ' times') end
    assert.are.equal(2000, g:get_state().offset) -- one counter per crop
  end)

  it('crops are fixed by the seed, whatever the thread count', function()
    local tr = rl.data.load('resimgnet', { data_dir = root })
    local list = {}
    for i = 1, 320 do list[i] = i % 3 end
    local idx = rl.tensor(list, 'i64')
    local function draw(threads, seed)
      local before = rl.get_num_threads()
      rl.set_num_threads(threads)
      local b = rl.data.batch(tr.x, idx, { crop = 64, pad = 8, random_crop = true, generator = rl.Generator(seed) })
      rl.set_num_threads(before)
      return b
    end
    local one = draw(1, 7)
    assert.is_true(equal(one, draw(4, 7)))
    assert.is_false(equal(one, draw(1, 8)))
    -- the loader: an epoch replays from its seed, and epochs differ
    local function epoch(e, seed)
      local t = {}
      for x in rl.data.loader(tr, { batch = 2, seed = seed, crop = 64, crop_pad = 8 }):iter(e) do t[#t + 1] = x end
      return rl.cat(t, 1)
    end
    assert.is_true(equal(epoch(3, 1), epoch(3, 1)))
    assert.is_false(equal(epoch(3, 1), epoch(4, 1)))
    assert.are.same({ 3, 3, 64, 64 }, epoch(1, 1):size())
  end)

  it('a stratified subset picks the files before decoding, as the subset after', function()
    local all = rl.data.load('resimgnet', { data_dir = root })
    local sub = rl.data.load('resimgnet', { data_dir = root, subset = 2, seed = 5 })
    local after = all:subset(2, 5)
    assert.is_true(equal(sub.y, after.y))
    assert.is_true(equal(sub.x.extent, after.x.extent))
    assert.is_true(equal(sub.x.pixels, after.x.pixels))
  end)

  it('a cache file keeps the geometry and refuses another', function()
    local cache = root .. '/train-cache.safetensors'
    local a = rl.data.load('resimgnet', { data_dir = root, cache = cache })
    local b = rl.data.load('resimgnet', { data_dir = root, cache = cache })
    assert.is_true(rl.data.is_ragged(b.x))
    assert.is_true(equal(a.x.pixels, b.x.pixels) and equal(a.x.extent, b.x.extent) and equal(a.y, b.y))
    has(err_of(rl.data.load, 'resimgnet', { data_dir = root, cache = cache, crop = 64 }),
      cache, "'resize=72 whole'", "'resize=72 crop=64x64'")
    -- a cache of the old 72x72 centre crops (no geometry record) is refused
    local old = root .. '/old-cache.safetensors'
    rl.save(old, { x = rl.zeros(3, 3, 72, 72, 'u8'), y = rl.zeros(3, 'i64') })
    has(err_of(rl.data.load, 'resimgnet', { data_dir = root, cache = old }), old, 'unrecorded geometry')
  end)

  it('names the file that cannot be read', function()
    local d = root .. '/bad/resimgnet/train/cat'
    mkdir(d)
    rl.write_png(d .. '/a.png', coded(72, 80))
    local f = io.open(root .. '/resimgnet/train/dog/tall.png', 'rb')
    local bytes = f:read('a')
    f:close()
    -- a header that is fine and data that end early; then no header at all
    f = io.open(d .. '/b.png', 'wb')
    f:write(bytes:sub(1, 200))
    f:close()
    has(err_of(rl.data.load, 'resimgnet', { data_dir = root .. '/bad' }), d .. '/b.png', 'PNG error')
    f = io.open(d .. '/b.png', 'wb')
    f:write(bytes:sub(1, 20))
    f:close()
    has(err_of(rl.data.load, 'resimgnet', { data_dir = root .. '/bad' }), d .. '/b.png')
    os.remove(d .. '/b.png')
    assert.are.equal(1, rl.data.load('resimgnet', { data_dir = root .. '/bad' }):size())
  end)
end)

describe('ragged stores', function()
  it('hold images of their own sizes, select and crop them', function()
    local imgs = { coded(3, 5), coded(4, 4), coded(6, 3) }
    local r = rl.data.ragged_of(imgs)
    assert.are.same({ 3, 3 }, r.shape)
    assert.are.same({ { 0, 3, 5 }, { 45, 4, 4 }, { 93, 6, 3 } }, r.extent:tolist())
    for i = 1, 3 do assert.is_true(equal(r:image(i), imgs[i])) end
    local s = r:index_select(1, rl.tensor({ 2, 0, 2 }, 'i64'))
    assert.are.same({ { 0, 6, 3 }, { 54, 3, 5 }, { 99, 6, 3 } }, s.extent:tolist())
    assert.is_true(equal(s:image(2), imgs[1]))
    local c = r:center_crop(3, 3)
    for i = 1, 3 do assert.is_true(equal(c[i], center(imgs[i], 3, 3))) end
    -- a batch without randomness takes the centre of each image
    local b = rl.data.batch(r, rl.tensor({ 0, 1, 2 }, 'i64'), { crop = 3 })
    assert.are.equal(0, (b - c:float() / 255):abs():max():item())
    local ds = rl.data.dataset(r, rl.tensor({ 0, 1, 1 }, 'i64'))
    assert.are.equal(3, ds:size())
    assert.is_true(tostring(ds):find('each its own size', 1, true) ~= nil)
  end)

  it('refuse what they cannot do, saying why', function()
    local r = rl.data.ragged_of({ coded(3, 5), coded(4, 4) })
    has(err_of(function() return r:float() end), "no field 'float'", 'center_crop')
    has(err_of(r.center_crop, r, 4, 4), 'image 0 is 3x5, smaller than the 4x4 crop')
    has(err_of(rl.data.batch, r, rl.tensor({ 0 }, 'i64'), {}), 'need a crop size')
    has(err_of(rl.data.batch, r, rl.tensor({ 1 }, 'i64'), { crop = 7 }), 'cannot cut 7x7 from image 1 (4x4) padded by 0')
    has(err_of(rl.data.batch, r, rl.tensor({ 2 }, 'i64'), { crop = 2 }), 'index 2 (position 1) is out of range for 2 images')
    has(err_of(rl.data.loader, rl.data.dataset(r, rl.tensor({ 0, 1 }, 'i64'))), 'different sizes', 'crop')
    -- an extent that points outside the pixels (as a corrupt cache would)
    has(err_of(rl.data.ragged, r.pixels, rl.tensor({ { 0, 3, 5 }, { 45, 4, 5 } }, 'i64'), 3),
      'ragged image 1 (offset 45, 3x4x5) does not lie inside 93 bytes')
    has(err_of(rl.data.ragged, r.pixels, rl.tensor({ { -1, 1, 1 } }, 'i64'), 3), 'does not lie inside')
    has(err_of(rl.data.ragged, r.pixels, rl.tensor({ { 0, 1 << 40, 1 << 40 } }, 'i64'), 3), 'does not lie inside')
    has(err_of(sep.nearest, r, rl.tensor({ 0, 1 }, 'i64'), r, rl.tensor({ 0, 1 }, 'i64')), 'give crop')
  end)
end)

describe('Table 1 on Restricted ImageNet', function()
  -- two classes identical in the centred 64x64 and different only in the
  -- 4-pixel border that a 72x72 crop would keep
  local d
  setup(function()
    d = root .. '/t1'
    for _, p in ipairs { '/resimgnet/train/bird', '/resimgnet/train/dog', '/resimgnet/test/bird' } do mkdir(d .. p) end
    rl.write_png(d .. '/resimgnet/train/bird/a.png', rl.full({ 3, 72, 72 }, 100, 'u8'))
    local ring = rl.full({ 3, 72, 72 }, 200, 'u8')
    ring:narrow(2, 5, 64):narrow(3, 5, 64):fill_(100)
    rl.write_png(d .. '/resimgnet/train/dog/b.png', ring)
    rl.write_png(d .. '/resimgnet/train/dog/c.png', rl.full({ 3, 72, 90 }, 160, 'u8'))
    rl.write_png(d .. '/resimgnet/test/bird/t.png', rl.full({ 3, 72, 72 }, 110, 'u8'))
  end)

  it('separation takes the distances at 64x64', function()
    local train = rl.data.load('resimgnet', { data_dir = d })
    local test = rl.data.load('resimgnet', { data_dir = d, split = 'test' })
    assert.are.equal(64, sep.defaults.resimgnet.crop)
    local row = sep.report('resimgnet', train, test, { drop = 0 })
    assert.are.same({ 3, 64, 64 }, row.image)
    assert.are.equal(0, row.two_r_raw)           -- bird a and dog b agree on the 64x64
    assert.are.equal(10, row.test_train_raw)     -- 110 against 100
    -- at 72x72 the border would count
    local at72 = sep.report('resimgnet', train, nil, { drop = 0, crop = 72 })
    assert.are.same({ 3, 72, 72 }, at72.image)
    assert.are.equal(60, at72.two_r_raw)
  end)

  it('scripts/table1.lua --dataset resimgnet writes 3x64x64 rows', function()
    local out = root .. '/t1-out'
    local cmd = string.format(shell.rllua .. ' scripts/table1.lua --dataset resimgnet --data-dir %s --out %s --drop 0 2>&1',
      sh_quote(d), sh_quote(out))
    local p = io.popen(cmd)
    local text = p:read('a')
    assert.is_true(p:close(), text)
    has(text, 'of 3x64x64', '3x64x64')
    local t = json.read(out .. '/table.json')
    local r = t.rows[1]
    assert.are.same({ 3, 64, 64 }, r.image)
    assert.are.equal(0, r.two_r_raw)
    assert.are.equal(10, r.test_train_raw)
    assert.are.equal('true', r.labels)
    local f = io.open(out .. '/table.csv')
    local csv = f:read('a')
    f:close()
    has(csv, 'resimgnet,3x64x64,true,')
  end)
end)
