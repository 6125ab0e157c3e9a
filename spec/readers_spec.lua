-- readers_spec.lua - regressions for the defects the fuzzing campaign of
-- issue #12 found in the file readers: an SVHN .mat whose X has a zero side
-- and huge other dims (it hung in the transpose loop), a gzip IDX file whose
-- header claims gigabytes (make fuzz found it), and images whose
-- decoded or resized size is absurd for their file size (a 118-byte 1x40000
-- PNG resized to short side 72 asked for 850 MB); and rl.data.image_limits,
-- the configurable cap.  Every refusal must come at once, before anything
-- is allocated, and name the file and the sizes.
local rl = require 'rl'
local gen = require 'helpers.datagen'
local shell = require 'helpers.shell'
local check = require 'helpers.check'
local C = require('rl.core')._data
local err_of, has = check.err_of, check.has

local dir

setup(function() dir = shell.tmpdir() end)
teardown(function() os.execute('rm -rf ' .. shell.quote(dir)) end)

--- Runs fn(...) and asserts that it fails within `limit` seconds of CPU
-- time; returns the message.
local function fails_fast(limit, fn, ...)
  local t0 = os.clock()
  local e = err_of(fn, ...)
  assert.is_true(os.clock() - t0 < limit, string.format('took %.2f s: %s', os.clock() - t0, e))
  return e
end

-- ---------------------------------------------------------------------------
describe('SVHN .mat with a zero side', function()
  local big = 2147483647
  local y = gen.mat_var('y', 'double', { 1, 1 }, 'double', { 1 })

  it('refuses X of height 0 and huge other dims at once (it hung)', function()
    local X = gen.mat_var('X', 'uint8', { 0, big, big, big }, 'uint8', {})
    local bytes = gen.mat({ X, y })
    assert.is_true(#bytes <= 256)
    local p = gen.write(dir .. '/h0.mat', bytes)
    has(fails_fast(0.5, C.read_svhn, p), "svhn: '" .. p .. "'", '0x2147483647x2147483647x2147483647',
      'must be at least 1')
  end)

  it('refuses width 0 and channels 0, compressed too', function()
    for _, dims in ipairs({ { big, 0, 3, big }, { 32, 32, 0, big } }) do
      local X = gen.mat_var('X', 'uint8', dims, 'uint8', {})
      local p = gen.write(dir .. '/z.mat', gen.mat({ X, y }, true))
      has(fails_fast(0.5, C.read_svhn, p), p, 'must be at least 1', 'decompressed from byte 128')
    end
  end)

  it('still reads X with no images (N = 0) and no labels', function()
    local X = gen.mat_var('X', 'uint8', { 2, 2, 3, 0 }, 'uint8', {})
    local y0 = gen.mat_var('y', 'double', { 0, 1 }, 'double', {})
    local x, labels = C.read_svhn(gen.write(dir .. '/n0.mat', gen.mat({ X, y0 })))
    assert.are.same({ 0, 3, 2, 2 }, x:size())
    assert.are.equal(0, labels:size(1))
  end)
end)

-- ---------------------------------------------------------------------------
describe('IDX gzip header claims', function()
  it('refuses a gzip file whose header claims more than it can inflate to (it allocated 6.7 GB)', function()
    local labels = gen.write(dir .. '/l.gz', gen.gzip(gen.idx(0x801, { 2 }, { 3, 6 })))
    local images = gen.write(dir .. '/i.gz', gen.gzip(gen.idx(0x803, { 2, 4, 0x32000004 }, {})))
    has(fails_fast(0.5, C.read_idx, images, labels), "idx: '" .. images .. "'", '6710886432 bytes',
      'bytes of gzip can inflate to')
  end)
end)

-- ---------------------------------------------------------------------------
describe('image size limits', function()
  -- A 1 x w gray PNG of zeros: tiny on disk whatever w is.
  local function strip(name, w)
    local p = dir .. '/' .. name
    rl.write_png(p, rl.zeros(1, w):to('u8'))
    return p
  end

  local defaults = { max_side = 16384, max_pixels = 2 ^ 27 // 1 }

  after_each(function() rl.data.image_limits(defaults) end)

  it('has defaults above any real dataset image', function()
    assert.are.same(defaults, rl.data.image_limits())
  end)

  it('refuses a 1x40000 PNG on its header, naming the file and its size', function()
    local p = strip('wide.png', 40000)
    assert.is_true(#gen.read(p) < 200)
    local msg = fails_fast(0.5, rl.data.load_image, p)
    has(msg, "image: '" .. p .. "'", '1x40000', 'image limits', 'max_side 16384')
    has(fails_fast(0.5, C.read_images, { p }, 72), p, '1x40000')
    has(fails_fast(0.5, C.read_images_ragged, { p }, 72), p, '1x40000')
    has(fails_fast(0.5, C.probe_image, p), p, '1x40000')
  end)

  it('refuses a resize target beyond the limits before allocating it', function()
    local p = strip('w10k.png', 10000)
    assert.are.same({ 3, 1, 10000 }, rl.data.load_image(p):size())
    local msg = fails_fast(0.5, C.read_images, { p }, 72)
    has(msg, "image: '" .. p .. "'", '1x10000 resized to short side 72 gives 72x720000', 'max_side')
    has(fails_fast(0.5, C.read_images_ragged, { p }, 72), p, '72x720000')
    has(fails_fast(0.5, C.read_images, { p }, 2 ^ 40 // 1), 'resize 1099511627776', 'max_side')
    has(fails_fast(0.5, C.read_images_ragged, { p }, 2 ^ 40 // 1), p, 'short side 1099511627776')
    has(fails_fast(0.5, rl.data.resize, rl.data.load_image(p), 72, 720000), 'resize: the target',
      '72x720000')
  end)

  it('refuses through folder: with resize, as resimgnet would', function()
    local root = dir .. '/folder'
    shell.mkdir(root .. '/train/a')
    rl.write_png(root .. '/train/a/ok.png', rl.zeros(3, 8, 8):to('u8'))
    rl.write_png(root .. '/train/a/wide.png', rl.zeros(1, 10000):to('u8'))
    for _, ragged in ipairs({ true, false }) do
      local msg = fails_fast(1, rl.data.load, 'folder:' .. root, { resize = 72, ragged = ragged })
      has(msg, 'wide.png', '1x10000', '72x720000')
    end
  end)

  it('can be lowered and raised, returning the previous limits', function()
    local p = strip('w100.png', 100)
    local old = rl.data.image_limits { max_side = 64 }
    assert.are.same(defaults, old)
    has(err_of(rl.data.load_image, p), p, '1x100', 'max_side 64')
    assert.are.same({ max_side = 64, max_pixels = defaults.max_pixels },
      rl.data.image_limits { max_side = 128, max_pixels = 50 })
    has(err_of(rl.data.load_image, p), '1x100', 'max_pixels 50')
    rl.data.image_limits { max_pixels = 100 }
    assert.are.same({ 3, 1, 100 }, rl.data.load_image(p):size())
  end)

  it('refuses limits out of range or not integers', function()
    has(err_of(rl.data.image_limits, { max_side = 0 }), 'max_side must be in 1..')
    has(err_of(rl.data.image_limits, { max_pixels = 2 ^ 41 // 1 }), 'max_pixels must be in 1..')
    has(err_of(rl.data.image_limits, { max_side = 1.5 }), "'max_side' must be an integer")
    assert.are.same(defaults, rl.data.image_limits())
  end)
end)
