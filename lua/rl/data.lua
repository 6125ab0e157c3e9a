--- rl.data: datasets and batch loaders.
--
--   ds = rl.data.load('cifar10', {split = 'train', data_dir = 'data', subset = 1000, seed = 0})
--   ds.x (u8 [N, C, H, W]), ds.y (i64 [N], 0-based), ds.classes, ds.name, ds:size()
--   loader = rl.data.loader(ds, {batch = 64, shuffle = true, seed = 1,
--                                crop_pad = 4, flip = true})
--   for x, y, i in loader:iter(epoch) do ... end    -- x f32 [B, C, H, W] in [0, 1]
--   #loader                                         -- batches per epoch
--   rl.data.augment_defaults('cifar10')             -- the paper's train-time augmentation
--
-- Restricted ImageNet's training split (and a folder:PATH training split
-- read with `resize`) keeps every image whole at its resized size, as the
-- reference's RandomCrop(64, padding=8) after Resize(72) needs: its ds.x is
-- an rl.data.Ragged store (x.shape = {N, C}; x:image(i), x:center_crop(h,
-- w), x:index_select(1, idx)), which the loader crops image by image.
--
-- Names: mnist, fashion-mnist, cifar10, svhn, resimgnet, folder:PATH, synthetic.
-- Files are looked for in opts.data_dir and opts.data_dir/<name> when
-- data_dir is given (only there), else in $RL_DATA/<name> and, for
-- fashion-mnist, /usr/share/datasets/fashion-mnist (Debian's
-- dataset-fashion-mnist).  Decoding, resizing, cropping and the u8 -> f32
-- conversion run in C (engine/io/data_*.c).
--
-- Reproducibility: the loader's epoch e draws from the Philox stream of its
-- seed at counters [e * 2^40, (e + 1) * 2^40): the shuffle first, then the
-- augmentation of the k-th example of the epoch at e * 2^40 + 2^39 + k - 1.
-- Any batch of any epoch can therefore be rebuilt exactly, in any order,
-- e.g. after resuming from a checkpoint (loader:iter(epoch, first_batch)).
local rl = require 'rl.base'
local fs = require 'rl.fs'
local options = require 'rl.options'
local C = require('rl.core')._data

local data = {}

local EPOCH_SPAN = 1 << 40
local AUG_OFFSET = 1 << 39

local digits = { '0', '1', '2', '3', '4', '5', '6', '7', '8', '9' }

-- ---------------------------------------------------------------------------
-- Ragged image stores: images that keep their own sizes

local Ragged = {}
data.Ragged = Ragged

local ragged_methods = {}

-- Unknown keys are an error that says what a ragged store is, so that code
-- written for u8 [N, C, H, W] tensors fails with a message, not a nil.
local ragged_optional = { crop = true }
Ragged.__index = function(self, k)
  local m = ragged_methods[k]
  if m ~= nil or ragged_optional[k] then return m end
  error(string.format("rl.data.Ragged has no field '%s': its %d images have different sizes " ..
    '(each keeps its whole resized extent); x:center_crop(h, w) gives a u8 [N, C, h, w] tensor',
    tostring(k), rawget(self, 'shape')[1]), 2)
end

--- is_ragged(x): whether x is a Ragged store (images each of its own size)
local function is_ragged(x) return getmetatable(x) == Ragged end
data.is_ragged = is_ragged

-- crop (a size or {h, w}) as {h, w}; nil stays nil.  An error names who,
-- raised at `level` (default 3: the caller of who).
local function crop_pair(crop, who, level)
  if crop == nil then return nil end
  local h, w = crop, crop
  if type(crop) == 'table' and not rl.is_tensor(crop) then
    h, w = crop[1], crop[2]
    if #crop ~= 2 then h = nil end
  end
  h = type(h) == 'number' and math.tointeger(h)
  w = type(w) == 'number' and math.tointeger(w)
  if not h or not w or h < 1 or w < 1 then
    local got = type(crop) == 'table' and not rl.is_tensor(crop) and options.full(crop) or options.what(crop)
    error(string.format('%s: crop must be a positive integer or {h, w}, got %s', who, got), level or 3)
  end
  return { h, w }
end

--- A ragged store from its parts: pixels (u8 [total]), extent (i64 [N, 3]:
-- offset, height, width of each image), channels; opts.crop ({h, w}): the
-- window its split is evaluated at (the loader's and separation's default).
function data.ragged(pixels, extent, channels, opts)
  opts = opts or {}
  if not (rl.is_tensor(pixels) and pixels.dtype == 'u8' and pixels:dim() == 1) then
    error('rl.data.ragged: pixels must be a u8 tensor [total]', 2)
  end
  if not (rl.is_tensor(extent) and extent.dtype == 'i64' and extent:dim() == 2 and extent:size(2) == 3) then
    error('rl.data.ragged: extent must be an i64 tensor [N, 3] (offset, height, width)', 2)
  end
  pixels, extent = pixels:contiguous(), extent:contiguous()
  channels = channels or 3
  C.ragged_check(pixels, extent, channels)
  return setmetatable({ pixels = pixels, extent = extent, channels = channels, dtype = 'u8',
    ragged = true, shape = { extent:size(1), channels }, crop = crop_pair(opts.crop, 'rl.data.ragged') }, Ragged)
end

--- A ragged store from a list of u8 [C, h, w] tensors (one C for all).
function data.ragged_of(images, opts)
  local parts, rows, off, c = {}, {}, 0, nil
  for i, im in ipairs(images) do
    if not (rl.is_tensor(im) and im.dtype == 'u8' and im:dim() == 3) then
      error(string.format('rl.data.ragged_of: image %d must be a u8 tensor [C, H, W]', i), 2)
    end
    c = c or im:size(1)
    if im:size(1) ~= c then error(string.format('rl.data.ragged_of: image %d has %d channels, not %d', i, im:size(1), c), 2) end
    parts[i] = im:contiguous():view(-1)
    rows[i] = { off, im:size(2), im:size(3) }
    off = off + im:numel()
  end
  local pixels = #parts > 0 and rl.cat(parts, 1) or rl.zeros(0, 'u8')
  local extent = #rows > 0 and rl.tensor(rows, 'i64') or rl.zeros(0, 3, 'i64')
  return data.ragged(pixels, extent, c or 3, opts)
end

function Ragged:__len() return self.shape[1] end
function Ragged:__tostring()
  return string.format('rl.data.Ragged: %d images of %d channels, each its own size (%d bytes)',
    self.shape[1], self.channels, self.pixels:size(1))
end

--- size(), or size(d) for d = 1 (images) or 2 (channels).
function ragged_methods.size(self, d)
  if d == nil then return { self.shape[1], self.shape[2] } end
  if d ~= 1 and d ~= 2 then
    error(string.format('rl.data.Ragged: size(%s): only dims 1 (images) and 2 (channels) exist', tostring(d)), 2)
  end
  return self.shape[d]
end

--- Heights and widths: two i64 tensors [N].
function ragged_methods.sizes(self)
  return self.extent:select(2, 2):clone(), self.extent:select(2, 3):clone()
end

--- Image i (1-based) as a u8 [C, h, w] view of the store.
function ragged_methods.image(self, i)
  local n = self.shape[1]
  if math.type(i) ~= 'integer' or i < 1 or i > n then
    error(string.format('rl.data.Ragged: image %s out of 1..%d', tostring(i), n), 2)
  end
  local off, h, w = table.unpack(self.extent[i]:tolist())
  return self.pixels:narrow(1, off + 1, self.channels * h * w):view(self.channels, h, w)
end

--- The images at the 0-based indices idx (i64 [B]), packed in a new store.
function ragged_methods.index_select(self, dim, idx)
  if dim ~= 1 then error('rl.data.Ragged: index_select works along dim 1 (images) only', 2) end
  local p, e = C.ragged_select(self.pixels, self.extent, self.channels, idx)
  return setmetatable({ pixels = p, extent = e, channels = self.channels, dtype = 'u8', ragged = true,
    shape = { e:size(1), self.channels }, crop = self.crop }, Ragged)
end

--- The centred h x w window of every image (torchvision's CenterCrop):
-- u8 [N, C, h, w].  Without sizes: the store's evaluation window.
function ragged_methods.center_crop(self, h, w)
  local c = h and crop_pair(w and { h, w } or h, 'rl.data.Ragged:center_crop') or self.crop
  if not c then error('rl.data.Ragged:center_crop: give the window size (h, w)', 2) end
  if self.shape[1] == 0 then return rl.zeros(0, self.channels, c[1], c[2], 'u8') end
  return C.ragged_crop(self.pixels, self.extent, self.channels, c[1], c[2])
end

-- ties to even, as torchvision's CenterCrop (Python's round)
local function center_offset(len, n)
  local d = len - n
  local k = d // 2
  if d % 2 == 1 and k % 2 == 1 then k = k + 1 end
  return k
end

-- ---------------------------------------------------------------------------
-- The dataset object

local Dataset = {}
Dataset.__index = Dataset
data.Dataset = Dataset

local function new_dataset(name, split, x, y, classes)
  return setmetatable({ name = name, split = split, x = x, y = y, classes = classes }, Dataset)
end

--- A dataset from tensors: x u8 [N, C, H, W], y i64 [N];
-- opts.classes (default '0'..'K-1' for K = max label + 1), opts.name.
function data.dataset(x, y, opts)
  opts = opts or {}
  if not is_ragged(x) and (not rl.is_tensor(x) or x.dtype ~= 'u8' or x:dim() ~= 4) then
    error('rl.data.dataset: x must be a u8 tensor [N, C, H, W] or an rl.data.Ragged store', 2)
  end
  local n = x.shape[1]
  if not rl.is_tensor(y) or y.dtype ~= 'i64' or y:dim() ~= 1 or y:size(1) ~= n then
    error(string.format('rl.data.dataset: y must be an i64 tensor [%d]', n), 2)
  end
  local classes = opts.classes
  if not classes then
    classes = {}
    local k = n > 0 and y:max():item() + 1 or 0
    for c = 1, k do classes[c] = tostring(c - 1) end
  end
  return new_dataset(opts.name or 'tensors', opts.split, x, y, classes)
end

--- The number of examples.
function Dataset:size() return self.x.shape[1] end
Dataset.__len = Dataset.size

function Dataset:__tostring()
  local s = self.x.shape
  local what = is_ragged(self.x) and string.format('%d channels, each its own size', s[2])
    or string.format('%dx%dx%d', s[2], s[3], s[4])
  return string.format("rl.data.Dataset '%s' (%s): %d images of %s, %d classes",
    self.name, self.split or '-', s[1], what, #self.classes)
end

--- The same examples cut to their centred h x w window (torchvision's
-- CenterCrop; ties to even), with u8 [N, C, h, w] images.  Without sizes:
-- a ragged store's evaluation window.
function Dataset:center_crop(h, w)
  local x = self.x
  if is_ragged(x) then
    x = x:center_crop(h, w)
  else
    local c = crop_pair(w and { h, w } or h, 'Dataset:center_crop')
    if not c then error('Dataset:center_crop: give the window size (h, w)', 2) end
    local H, W = x:size(3), x:size(4)
    if c[1] > H or c[2] > W then
      error(string.format('Dataset:center_crop: %dx%d images are smaller than the %dx%d window', H, W, c[1], c[2]), 2)
    end
    x = x:narrow(3, center_offset(H, c[1]) + 1, c[1]):narrow(4, center_offset(W, c[2]) + 1, c[2]):contiguous()
  end
  return new_dataset(self.name, self.split, x, self.y, self.classes)
end

--- The examples at the 0-based indices idx (an i64 tensor), as a new dataset.
function Dataset:select(idx)
  return new_dataset(self.name, self.split, self.x:index_select(1, idx),
    self.y:index_select(1, idx), self.classes)
end

--- Examples per class: a table indexed by label + 1.
function Dataset:class_counts()
  local counts = {}
  for c = 1, #self.classes do counts[c] = 0 end
  for _, l in ipairs(self.y:tolist()) do counts[l + 1] = (counts[l + 1] or 0) + 1 end
  return counts
end

-- How many of each class a stratified subset of n takes: n // K each, the
-- first n % K classes (by label) one more; a class with too few examples
-- gives all it has and the shortfall is shared out the same way among the
-- classes that have more.
local function quotas(by_class, k, n)
  local take, short = {}, 0
  for c = 1, k do
    local want = n // k + ((c - 1) < n % k and 1 or 0)
    take[c] = math.min(want, #by_class[c])
    short = short + want - take[c]
  end
  while short > 0 do
    local open = {}
    for c = 1, k do if take[c] < #by_class[c] then open[#open + 1] = c end end
    if #open == 0 then break end
    local each, rem = short // #open, short % #open
    for i, c in ipairs(open) do
      local give = math.min(each + (i <= rem and 1 or 0), #by_class[c] - take[c])
      take[c], short = take[c] + give, short - give
    end
  end
  return take
end

-- The 0-based positions a stratified subset of n keeps (in order), drawn
-- from rl.Generator(seed): class by class in label order, a randperm of the
-- class's positions, its first share.  nil when n is every label; more than
-- there are is an error (a silent cap was recorded as the subset asked
-- for): `where` names the split for rl.data.load, else Dataset:subset.
local function subset_positions(labels, k, n, seed, where)
  if math.type(n) ~= 'integer' or n < 1 then
    error(string.format('subset: n must be a positive integer, got %s', tostring(n)), 3)
  end
  if n > #labels then
    error(string.format('%s: subset = %d is more than the %d examples of %s', where and 'rl.data.load' or
      'Dataset:subset', n, #labels, where or 'the dataset'), 0)
  end
  if n == #labels then return nil end
  local by_class = {}
  for c = 1, k do by_class[c] = {} end
  for i, l in ipairs(labels) do
    local list = by_class[l + 1] or error(string.format('subset: label %d outside the %d classes', l, k), 3)
    list[#list + 1] = i - 1
  end
  local take = quotas(by_class, k, n)
  local g = rl.Generator(seed or 0)
  local chosen = {}
  for c = 1, k do
    local list = by_class[c]
    if #list > 0 then
      local perm = rl.randperm(#list, { generator = g }):tolist()
      for j = 1, take[c] do chosen[#chosen + 1] = list[perm[j] + 1] end
    end
  end
  table.sort(chosen)
  return chosen
end

--- A stratified random subset of n examples (equal share per class, as
-- the reference subsamples), drawn from rl.Generator(seed): class by class
-- in label order, a randperm of the class's examples, its first share.
-- The chosen examples keep their original order; n above the dataset's
-- size is an error (`where` names it in the message).
function Dataset:subset(n, seed, where)
  local chosen = subset_positions(self.y:tolist(), #self.classes, n, seed, where)
  if not chosen then return self end
  return self:select(rl.tensor(chosen, 'i64'))
end

-- ---------------------------------------------------------------------------
-- Finding files

-- The directories to search for dataset `name`: data_dir and data_dir/name
-- when data_dir is given (then nothing else: a run asked for those files
-- must not read others, and its config records data_dir), else
-- $RL_DATA/name and the system directory; each followed by its
-- sub-directories `subdirs` (where archives unpack); and whether RL_DATA
-- is set.
local function search_dirs(name, opts, system, subdirs)
  local base = {}
  local env = os.getenv('RL_DATA')
  if opts.data_dir then
    base[#base + 1] = opts.data_dir
    base[#base + 1] = opts.data_dir .. '/' .. name
  else
    if env and env ~= '' then base[#base + 1] = env .. '/' .. name end
    if system then base[#base + 1] = system end
  end
  local dirs = {}
  for _, d in ipairs(base) do
    dirs[#dirs + 1] = d
    for _, s in ipairs(subdirs or {}) do dirs[#dirs + 1] = d .. '/' .. s end
  end
  return dirs, env and env ~= ''
end

-- The path of `file` in dir, plain or with one of the suffixes; nil if absent.
local function find_in(dir, file, suffixes)
  for _, s in ipairs(suffixes) do
    local p = dir .. '/' .. file .. s
    if fs.exists(p) then return p end
  end
end

-- The first directory holding every file: their paths, or a Lua error
-- listing the files expected and the directories searched.
local function locate(name, split, files, suffixes, opts, system, subdirs)
  local dirs, have_env = search_dirs(name, opts, system, subdirs)
  for _, d in ipairs(dirs) do
    local paths = {}
    for i, f in ipairs(files) do paths[i] = find_in(d, f, suffixes) end
    if #paths == #files then return paths end
  end
  local want = {}
  for i, f in ipairs(files) do
    want[i] = #suffixes > 1 and f .. '[' .. table.concat(suffixes, '|', 2) .. ']' or f
  end
  if opts.data_dir then
    error(string.format("rl.data.load: dataset '%s' (%s split) not found: expected %s in one of: %s " ..
      '(data_dir is given, so only it is searched).', name, split, table.concat(want, ', '),
      table.concat(dirs, ', ')), 0)
  end
  error(string.format("rl.data.load: dataset '%s' (%s split) not found: expected %s in one of: %s%s." ..
    ' Pass data_dir = DIR or set RL_DATA (files in $RL_DATA/%s/).',
    name, split, table.concat(want, ', '), #dirs > 0 and table.concat(dirs, ', ') or '(no directory)',
    have_env and '' or ' (RL_DATA is not set)', name), 0)
end

-- ---------------------------------------------------------------------------
-- Readers per dataset

local readers = {}

local function idx_reader(name, classes, system)
  return function(split, opts)
    local prefix = split == 'train' and 'train' or 't10k'
    local files = { prefix .. '-images-idx3-ubyte', prefix .. '-labels-idx1-ubyte' }
    local p = locate(name, split, files, { '', '.gz' }, opts, system)
    local x, y = C.read_idx(p[1], p[2])
    return x, y, classes
  end
end

readers.mnist = idx_reader('mnist', digits)
readers['fashion-mnist'] = idx_reader('fashion-mnist', {
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
  'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
}, '/usr/share/datasets/fashion-mnist')

function readers.cifar10(split, opts)
  local files = { 'test_batch.bin' }
  if split == 'train' then
    files = {}
    for i = 1, 5 do files[i] = 'data_batch_' .. i .. '.bin' end
  end
  -- the official archive unpacks into cifar-10-batches-bin/
  local p = locate('cifar10', split, files, { '' }, opts, nil, { 'cifar-10-batches-bin' })
  local x, y = C.read_cifar(p)
  return x, y, { 'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck' }
end

function readers.svhn(split, opts)
  local p = locate('svhn', split, { split .. '_32x32.mat' }, { '' }, opts)
  local x, y = C.read_svhn(p[1])
  return x, y, digits
end

local function has_ext(f)
  local e = f:match('%.([^./]+)$')
  e = e and e:lower()
  return e == 'png' or e == 'jpg' or e == 'jpeg'
end

-- Files and labels of root/<dir>/<file> for each class's list of dirs.  A
-- class of several dirs has its files sorted by name as one folder, the
-- order of the reference's Restricted ImageNet (ImageNet's class folders
-- copied into one folder per super-class, read by torchvision's
-- ImageFolder: classes and files sorted).
local function gather_files(root, class_dirs)
  local files, labels = {}, {}
  for label, dirs in ipairs(class_dirs) do
    local entries = {}
    for _, d in ipairs(dirs) do
      for _, f in ipairs(C.listdir(root .. '/' .. d, false)) do
        if has_ext(f) then entries[#entries + 1] = { f, root .. '/' .. d .. '/' .. f } end
      end
    end
    if #dirs > 1 then
      table.sort(entries, function(a, b)
        if a[1] ~= b[1] then return a[1] < b[1] end
        return a[2] < b[2]
      end)
    end
    for _, e in ipairs(entries) do
      files[#files + 1] = e[2]
      labels[#labels + 1] = label - 1
    end
  end
  if #files == 0 then error(string.format("rl.data.load: no .png/.jpg/.jpeg files under '%s'", root), 0) end
  return files, labels
end

-- How a folder split is cut (docs/methods.md): each short side resized to
-- `resize` (0: kept), then either the whole resized image kept (ragged:
-- the default for a training split with a resize and no crop, what a
-- random crop of the whole image needs) or the centred crop {h, w} (nil:
-- resize x resize, or the first image's size).  defaults: resize, crop
-- (of a dense split), eval_crop (the window a ragged split is evaluated at).
local function geometry(split, opts, defaults)
  local resize = opts.resize or defaults.resize or 0
  if math.type(resize) ~= 'integer' or resize < 0 then
    error(string.format('rl.data.load: resize must be a non-negative integer, got %s', tostring(resize)), 0)
  end
  local crop = crop_pair(opts.crop, 'rl.data.load')
  local ragged = opts.ragged
  if ragged and crop then error('rl.data.load: ragged = true keeps every image whole: it takes no crop', 0) end
  if ragged == nil then ragged = not crop and split == 'train' and resize > 0 end
  if not ragged and not crop then crop = defaults.crop end
  return { resize = resize, crop = crop, ragged = ragged, eval_crop = defaults.eval_crop }
end

-- The geometry as the cache file records it.
local function geometry_tag(g)
  if g.ragged then return string.format('resize=%d whole', g.resize) end
  return string.format('resize=%d crop=%s', g.resize, g.crop and (g.crop[1] .. 'x' .. g.crop[2]) or 'auto')
end

local CACHE_KEY = 'rl.data.geometry'
-- What else a cache records, so that it never serves another folder, split
-- or file set: the split directory's real path, the split, and the files'
-- count and digest (see files_tag).
local CACHE_FOLDER, CACHE_SPLIT, CACHE_FILES = 'rl.data.folder', 'rl.data.split', 'rl.data.files'

-- The files of a folder split as a cache records them: their count and a
-- 64-bit FNV-1a digest of each one's label, path under root and size in
-- bytes, so that a file added, removed, renamed, moved to another class or
-- rewritten to another size is seen.  (Lua has no stat: a size is a seek,
-- and a rewrite that keeps the size goes unseen; delete the cache then.)
local function files_tag(root, files, labels)
  local h = 0xcbf29ce484222325 -- FNV's offset basis (a hex literal wraps to a signed integer)
  for i, f in ipairs(files) do
    local fh = io.open(f, 'rb')
    local size = fh and fh:seek('end') or -1
    if fh then fh:close() end
    local line = string.format('%d %s %d\n', labels[i], f:sub(#root + 2), size)
    for j = 1, #line do h = (h ~ line:byte(j)) * 0x100000001b3 end -- FNV's prime; wraps mod 2^64
  end
  return string.format('%d files, digest %016x', #files, h)
end

-- The cache's metadata against this load's (want): an error naming what
-- differs, or nothing.
local function check_cache(cache, meta, want)
  local function quoted(v, what) return v and "'" .. v .. "'" or 'an unrecorded ' .. what end
  local function refuse(what)
    error(string.format("rl.data.load: cache '%s' %s; delete it (or name another cache file) to decode the folder " ..
      'again', cache, what), 0)
  end
  if meta[CACHE_KEY] ~= want[CACHE_KEY] then
    refuse(string.format('holds images cut as %s, but this load cuts them as %s',
      meta[CACHE_KEY] and "'" .. meta[CACHE_KEY] .. "'" or 'an unrecorded geometry (written by an older rllua)',
      "'" .. want[CACHE_KEY] .. "'"))
  end
  if meta[CACHE_FOLDER] ~= want[CACHE_FOLDER] or meta[CACHE_SPLIT] ~= want[CACHE_SPLIT] then
    refuse(string.format("holds split %s of folder %s, but this load reads split '%s' of folder '%s'",
      quoted(meta[CACHE_SPLIT], 'split'), quoted(meta[CACHE_FOLDER], 'folder (written by an older rllua)'),
      want[CACHE_SPLIT], want[CACHE_FOLDER]))
  end
  if meta[CACHE_FILES] ~= want[CACHE_FILES] then
    refuse(string.format("holds %s of '%s', but the folder now has %s (files added, removed, renamed or resized)",
      quoted(meta[CACHE_FILES], 'file set'), want[CACHE_FOLDER], "'" .. want[CACHE_FILES] .. "'"))
  end
end

local function pick(list, positions)
  local out = {}
  for i, p in ipairs(positions) do out[i] = list[p + 1] end
  return out
end

-- Decode an image folder (root/<class>/<file>); class_dirs[i] lists the
-- directories of class i; g is its geometry.  opts.cache names a
-- safetensors file to reuse: it records the folder's real path, the split,
-- the geometry and the files (files_tag), and one that differs in any is
-- refused.  Without a cache, opts.subset picks the files before any is
-- decoded.  Returns x, y and whether the subset was taken.
local function read_folder(root, class_dirs, g, opts)
  local cache = opts.cache
  local files, labels = gather_files(root, class_dirs)
  local meta = cache and {
    [CACHE_KEY] = geometry_tag(g), [CACHE_FOLDER] = fs.realpath(root) or root, [CACHE_SPLIT] = opts.split,
    [CACHE_FILES] = files_tag(root, files, labels),
  }
  if cache and fs.exists(cache) then
    local t, had = rl.load(cache)
    check_cache(cache, had, meta)
    local x = g.ragged and data.ragged(t.pixels, t.extent, 3, { crop = g.eval_crop }) or t.x
    return x, t.y, false
  end
  local taken = false
  if opts.subset and not cache then
    local keep = subset_positions(labels, #class_dirs, opts.subset, opts.seed, opts.where)
    if keep then files, labels = pick(files, keep), pick(labels, keep) end
    taken = true
  end
  local x
  if g.ragged then
    local p, e = C.read_images_ragged(files, g.resize)
    x = data.ragged(p, e, 3, { crop = g.eval_crop })
  else
    x = C.read_images(files, g.resize, g.crop and g.crop[1] or 0, g.crop and g.crop[2] or 0)
  end
  local y = rl.tensor(labels, 'i64')
  if cache then
    local t = g.ragged and { pixels = x.pixels, extent = x.extent, y = y } or { x = x, y = y }
    rl.save(cache, t, meta)
  end
  return x, y, taken
end

-- The split directory of a folder dataset: root/<split> (test also tries
-- val), else root itself.
local function split_root(root, split)
  local tries = split == 'test' and { 'test', 'val' } or { split }
  for _, s in ipairs(tries) do
    if fs.is_dir(root .. '/' .. s) then return root .. '/' .. s end
  end
  return root
end

local function folder_reader(root)
  return function(split, opts)
    if not fs.is_dir(root) then error(string.format("rl.data.load: folder '%s' not found", root), 0) end
    local dir = split_root(root, split)
    local names = C.listdir(dir, true)
    if #names == 0 then error(string.format("rl.data.load: no class directories in '%s'", dir), 0) end
    local class_dirs = {}
    for i, n in ipairs(names) do class_dirs[i] = { n } end
    local x, y, taken = read_folder(dir, class_dirs, geometry(split, opts, {}), opts)
    return x, y, names, taken
  end
end

-- Restricted ImageNet: 9 super-classes, each a range of ImageNet's classes
-- in sorted-wnid order (inclusive), as the robustness library defines them;
-- numbered by name, as the reference's ImageFolder numbers its folders.
local RESIMGNET_CLASSES = { 'bird', 'cat', 'crab', 'dog', 'fish', 'frog', 'insect', 'primate', 'turtle' }
local RESIMGNET_RANGES = { { 80, 100 }, { 281, 285 }, { 118, 121 }, { 151, 268 }, { 389, 397 },
  { 30, 32 }, { 300, 319 }, { 365, 382 }, { 33, 37 } }

-- Class directories: the 9 super-class folders themselves, or ImageNet's
-- 1000 wnid folders grouped by the ranges.
local function resimgnet_dirs(names)
  local class_dirs = {}
  if #names == 1000 and names[1]:match('^n%d+$') then
    for c, r in ipairs(RESIMGNET_RANGES) do
      class_dirs[c] = {}
      for i = r[1], r[2] do class_dirs[c][#class_dirs[c] + 1] = names[i + 1] end
    end
    return class_dirs, { table.unpack(RESIMGNET_CLASSES) }
  end
  for i, n in ipairs(names) do class_dirs[i] = { n } end
  return class_dirs, names
end

-- The reference's geometry (lolip/datasets/__init__.py, resImgnet112v3):
-- Resize(72) then RandomCrop(64, padding=8) of the whole image to train;
-- Resize(72) then CenterCrop(64) to test, to evaluate on the training set
-- and for Table 1's distances.
local RESIMGNET_GEOMETRY = { resize = 72, crop = { 64, 64 }, eval_crop = { 64, 64 } }

--- resimgnet: <dir>/train and <dir>/test (or val) with one folder per
-- super-class, or ImageNet's layout (1000 wnid folders).  Every image's
-- short side is resized to 72 (torchvision's Resize(72)); the training
-- split keeps each image whole (a Ragged store, for the loader's random
-- 64x64 crops with zero padding 8 anywhere in it), the test split is cut
-- to its centred 64x64.  crop = 64 gives the training split as centred
-- 64x64 crops too (Table 1, evaluation).
function readers.resimgnet(split, opts)
  local dirs, have_env = search_dirs('resimgnet', opts)
  local tries = split == 'test' and { 'test', 'val' } or { 'train' }
  for _, d in ipairs(dirs) do
    for _, s in ipairs(tries) do
      if fs.is_dir(d .. '/' .. s) then
        local class_dirs, classes = resimgnet_dirs(C.listdir(d .. '/' .. s, true))
        local x, y, taken = read_folder(d .. '/' .. s, class_dirs, geometry(split, opts, RESIMGNET_GEOMETRY), opts)
        return x, y, classes, taken
      end
    end
  end
  error(string.format("rl.data.load: dataset 'resimgnet' (%s split) not found: expected a folder %s/<class>/*.JPEG in one of: %s%s.",
    split, table.concat(tries, ' or '), #dirs > 0 and table.concat(dirs, ', ') or '(no directory)',
    have_env and '' or ' (RL_DATA is not set)'), 0)
end

--- The number of examples of each synthetic split unless n is given.
data.synthetic_n = { train = 1000, test = 200 }

function readers.synthetic(split, opts)
  local n = opts.n or data.synthetic_n[split]
  local k = opts.classes or 10
  -- the test split: samples n..2n-1 (other noise, the same class patterns)
  local seed = opts.pattern_seed or 0
  local x, y = C.synthetic(split == 'test' and 2 * n or n, k, opts.channels or 1, opts.size or 28, seed)
  if split == 'test' then
    x, y = x:narrow(1, n + 1, n):contiguous(), y:narrow(1, n + 1, n):contiguous()
  end
  local classes = {}
  for c = 1, k do classes[c] = tostring(c - 1) end
  return x, y, classes
end

-- ---------------------------------------------------------------------------
-- load

-- The options of rl.data.load, by the datasets they apply to (crop, a
-- size or {h, w}, is checked apart: options has no kind for it).
local LOAD_ROWS = {
  { 'split', 'string', 'train' },
  { 'data_dir', 'string' }, -- every dataset takes it (synthetic and folder:PATH read no files by it)
  { 'subset', 'integer', nil, '>= 1' },
  { 'seed', 'integer' },
  { 'resize', 'integer', nil, '>= 0' },
  { 'ragged', 'boolean' },
  { 'cache', 'string' },
  { 'n', 'integer', nil, '>= 1' },
  { 'classes', 'integer', nil, '[1, 1048576]' },
  { 'channels', 'integer', nil, '[1, 1048576]' },
  { 'size', 'integer', nil, '[1, 1048576]' },
  { 'pattern_seed', 'integer' },
}
local load_opts = { crop = true }
for _, row in ipairs(LOAD_ROWS) do load_opts[row[1]] = true end
local FOLDER_ONLY = { 'resize', 'crop', 'ragged', 'cache' }
local SYNTHETIC_ONLY = { 'n', 'classes', 'channels', 'size', 'pattern_seed' }

-- opts of rl.data.load checked for dataset `name` (whose reader is known):
-- kinds, ranges, and that each option given applies to that dataset.
-- Raises at level 0.
local function load_options(name, opts)
  local who = 'rl.data.load'
  options.known(who, opts, load_opts)
  local rest = {}
  for k, v in pairs(opts) do if k ~= 'crop' then rest[k] = v end end
  local o = options.check(who, rest, LOAD_ROWS)
  if o.split ~= 'train' and o.split ~= 'test' then
    error(string.format("%s: split must be 'train' or 'test', got %s", who, options.what(o.split)), 0)
  end
  o.crop = crop_pair(opts.crop, who, 0)
  local folder = name == 'resimgnet' or name:match('^folder:') ~= nil
  if not folder then
    for _, k in ipairs(FOLDER_ONLY) do
      if o[k] ~= nil then
        local hint = name == 'synthetic' and (k == 'crop' or k == 'resize')
            and '; synthetic images are size x size: use size' or ''
        error(string.format('%s: %s applies only to image folders (resimgnet, folder:PATH), not to %s%s', who, k,
          name, hint), 0)
      end
    end
  end
  if name ~= 'synthetic' then
    for _, k in ipairs(SYNTHETIC_ONLY) do
      if o[k] ~= nil then
        error(string.format('%s: %s applies only to synthetic, not to %s%s', who, k, name,
          k == 'n' and '; use subset (a stratified subset of n examples)' or ''), 0)
      end
    end
  elseif o.n and o.subset and o.subset > o.n then
    error(string.format('%s: subset = %d is more than the n = %d synthetic examples; give one of them', who, o.subset,
      o.n), 0)
  end
  if o.ragged and o.crop then error(who .. ': ragged = true keeps every image whole: it takes no crop', 0) end
  return o
end

--- rl.data.load(name, opts) -> Dataset.  opts: split ('train' | 'test'),
-- data_dir, subset (a stratified subset of that many, see Dataset:subset),
-- seed (of the subset); folders (resimgnet, folder:PATH): resize (short
-- side; resimgnet 72), crop (a centred size or {h, w}; resimgnet's test
-- split 64), ragged (keep every resized image whole; default for a
-- training split with a resize and no crop), cache (a .safetensors file
-- that keeps the decoded images with the folder, split, files and geometry
-- they came from, and refuses a load that differs in any;
-- an image beyond rl.data.image_limits, as read or resized, is refused);
-- synthetic: n, classes, channels, size, pattern_seed.  An option that
-- does not apply to the dataset is an error.
function data.load(name, opts)
  local read = readers[name]
  local root = type(name) == 'string' and name:match('^folder:(.+)$')
  if root then read = folder_reader(root) end
  if not read then
    local names = {}
    for k in pairs(readers) do names[#names + 1] = k end
    table.sort(names)
    error(string.format("rl.data.load: unknown dataset %q (known: %s, folder:PATH)", tostring(name),
      table.concat(names, ', ')), 2)
  end
  if opts ~= nil and (type(opts) ~= 'table' or rl.is_tensor(opts)) then
    error('rl.data.load: options must be a table, got ' .. options.what(opts), 2)
  end
  local ok, o = pcall(load_options, name, opts or {})
  if not ok then error(o, 2) end
  o.where = string.format("%s's %s split", name, o.split) -- (for a subset's error)
  local x, y, classes, taken = read(o.split, o)
  local ds = new_dataset(name, o.split, x, y, classes)
  if o.subset and not taken then ds = ds:subset(o.subset, o.seed, o.where) end
  return ds
end

local SYNTHETIC_ROWS = {
  { 'n', 'integer', 1000, '>= 1' },
  { 'classes', 'integer', 10, '[1, 1048576]' },
  { 'channels', 'integer', 1, '[1, 1048576]' },
  { 'size', 'integer', 28, '[1, 1048576]' },
  { 'seed', 'integer', 0 },
  { 'split', 'string', 'train', { 'train', 'test' } },
}

--- A synthetic dataset: rl.data.synthetic{n =, classes =, channels =, size =, seed =}.
-- seed picks the class patterns (see engine/io/data_synth.c).
function data.synthetic(opts)
  local ok, o = pcall(options.check, 'rl.data.synthetic', opts, SYNTHETIC_ROWS)
  if not ok then error(o, 2) end
  local x, y = C.synthetic(o.n, o.classes, o.channels, o.size, o.seed)
  local classes = {}
  for c = 1, o.classes do classes[c] = tostring(c - 1) end
  return new_dataset('synthetic', o.split, x, y, classes)
end

--- The paper's augmentation (docs/methods.md) as loader options, for 'train'
-- (default) or 'test'.
function data.augment_defaults(name, split)
  split = split or 'train'
  if name == 'cifar10' then
    return split == 'train' and { crop_pad = 4, flip = true } or {}
  elseif name == 'resimgnet' then
    return split == 'train' and { crop = 64, crop_pad = 8 } or { crop = 64 }
  end
  return {}
end

-- ---------------------------------------------------------------------------
-- The loader

local Loader = {}
Loader.__index = Loader
data.Loader = Loader

-- The loader's options (crop, a size or {h, w}, is checked apart).
local LOADER_ROWS = {
  { 'batch', 'integer', 64, '>= 1' },
  { 'shuffle', 'boolean', true },
  { 'seed', 'integer' },
  { 'crop_pad', 'integer', 0, '>= 0' },
  { 'random_crop', 'boolean' },
  { 'flip', 'boolean', false },
  { 'drop_last', 'boolean', false },
  { 'device', 'string' },
}
local loader_opts = { crop = true }
for _, row in ipairs(LOADER_ROWS) do loader_opts[row[1]] = true end

-- Whether ds is a dataset: an rl.data.Dataset, or a table with its fields.
local function is_dataset(ds)
  if getmetatable(ds) == Dataset then return true end
  if type(ds) ~= 'table' or rl.is_tensor(ds) or is_ragged(ds) then return false end
  return (rl.is_tensor(ds.x) or is_ragged(ds.x)) and rl.is_tensor(ds.y) and type(ds.size) == 'function'
end

-- The loader's options checked against ds (raised at level 0): kinds,
-- ranges, the device's spelling, and a crop that fits the images.
local function loader_options(ds, opts)
  local who = 'rl.data.loader'
  if not is_dataset(ds) then
    error(string.format("%s: the first argument must be a dataset (rl.data.load's result, or " ..
      'rl.data.dataset(x, y)), got %s', who, options.what(ds)), 0)
  end
  if opts == nil then opts = {} end
  if type(opts) ~= 'table' or rl.is_tensor(opts) then
    error(string.format('%s: options must be a table, got %s', who, options.what(opts)), 0)
  end
  options.known(who, opts, loader_opts)
  local rest = {}
  for k, v in pairs(opts) do if k ~= 'crop' then rest[k] = v end end
  local o = options.check(who, rest, LOADER_ROWS)
  o.crop = crop_pair(opts.crop, who, 0)
  if o.device then
    -- the spelling only: whether the device can be used shows at the first batch
    local ok, e = pcall(rl.device, o.device)
    if not ok and tostring(e):find('unknown device', 1, true) then error(who .. ': ' .. tostring(e), 0) end
  end
  local x = ds.x
  if o.crop == nil and is_ragged(x) then
    o.crop = x.crop or error(string.format("%s: the images of '%s' have different sizes " ..
      '(each keeps its whole resized extent): give crop = N', who, tostring(ds.name)), 0)
  end
  if o.crop and x.shape[1] > 0 then
    local h, w, what
    if is_ragged(x) then
      local hs, ws = x:sizes()
      h, w, what = hs:min():item(), ws:min():item(), 'the smallest images'
    else
      h, w, what = x:size(3), x:size(4), 'the images'
    end
    local p = o.crop_pad
    if o.crop[1] > h + 2 * p or o.crop[2] > w + 2 * p then
      error(string.format('%s: crop %dx%d is larger than %s (%dx%d%s)', who, o.crop[1], o.crop[2], what, h, w,
        p > 0 and string.format(', %dx%d with crop_pad %d', h + 2 * p, w + 2 * p, p) or ''), 0)
    end
  end
  return o
end

--- rl.data.loader(ds, opts): batch (64), shuffle (true), seed (the default
-- generator's seed), crop_pad (zero padding before a random crop, 0), crop
-- (a size or {h, w}; default the image's), random_crop (default: crop_pad
-- > 0), flip (random horizontal flips, false), drop_last (false), device
-- (where batches go; default 'cpu').  Every option is checked here.
function data.loader(ds, opts)
  local ok, o = pcall(loader_options, ds, opts)
  if not ok then error(o, 2) end
  local self = setmetatable({
    ds = ds, batch = o.batch, shuffle = o.shuffle, seed = o.seed or rl.initial_seed(),
    drop_last = o.drop_last, device = o.device,
  }, Loader)
  local random_crop = o.random_crop
  if random_crop == nil then random_crop = o.crop_pad > 0 end
  self.aug = { pad = o.crop_pad, crop = o.crop, random_crop = random_crop, flip = o.flip }
  return self
end

--- The number of batches per epoch.
function Loader:__len()
  local n = self.ds:size()
  return self.drop_last and n // self.batch or (n + self.batch - 1) // self.batch
end

function Loader:__tostring()
  return string.format('rl.data.Loader(%s, batch=%d, %d batches, shuffle=%s)', self.ds.name,
    self.batch, #self, tostring(self.shuffle))
end

local function check_epoch(epoch, level)
  if math.type(epoch) ~= 'integer' or epoch < 0 or epoch >= 1 << 23 then
    error(string.format('rl.data.loader: epoch must be an integer in 0..2^23-1, got %s', options.what(epoch)),
      level + 1)
  end
end

local function epoch_gen(seed, epoch, extra)
  check_epoch(epoch, 3)
  local g = rl.Generator(seed)
  g:set_state { seed = seed, offset = epoch * EPOCH_SPAN + (extra or 0) }
  return g
end

--- The order of the examples in epoch `epoch` (i64 [N], 0-based).
function Loader:order(epoch)
  local n = self.ds:size()
  if not self.shuffle then return rl.arange(n) end
  return rl.randperm(n, { generator = epoch_gen(self.seed, epoch) })
end

--- Batch i (1-based) of an epoch, given that epoch's order: x, y.
function Loader:get(order, epoch, i)
  local first = (i - 1) * self.batch
  local b = math.min(self.batch, order:size(1) - first)
  local idx = order:narrow(1, first + 1, b)
  local a = self.aug
  local x = data.batch(self.ds.x, idx, {
    pad = a.pad, crop = a.crop, random_crop = a.random_crop, flip = a.flip,
    generator = epoch_gen(self.seed, epoch, AUG_OFFSET + first),
  })
  local y = self.ds.y:index_select(1, idx)
  if self.device and self.device ~= 'cpu' then x, y = x:to(self.device), y:to(self.device) end
  -- u8 / 255: in [0, 1] by construction, so attacks on it skip their box check
  return options.mark_box(x, 0, 1), y
end

--- for x, y, i in loader:iter(epoch [, first_batch]) do ... end
-- epoch defaults to 1; first_batch (default 1) resumes inside an epoch.
function Loader:iter(epoch, first)
  epoch = epoch or 1
  check_epoch(epoch, 2)
  local last = #self
  if first ~= nil and (math.type(first) ~= 'integer' or first < 1 or first > math.max(last, 1)) then
    error(string.format('rl.data.loader: iter: first_batch must be an integer in 1..%d (the batches of an ' ..
      'epoch: %d examples, batch %d%s), got %s', math.max(last, 1), self.ds:size(), self.batch,
      self.drop_last and ', drop_last' or '', options.what(first)), 2)
  end
  local order = self:order(epoch)
  local i = (first or 1) - 1
  return function()
    i = i + 1
    if i > last then return nil end
    local x, y = self:get(order, epoch, i)
    return x, y, i
  end
end

-- ---------------------------------------------------------------------------
-- Images

--- u8 [3, H, W] from a PNG or JPEG file.
data.load_image = C.load_image
--- Resize u8 [C, H, W] to h x w (bilinear, as PIL).
data.resize = C.resize
--- rl.data.image_limits{max_side = N, max_pixels = N}: the largest image
-- the readers decode or resize to (height and width each at most max_side,
-- height x width at most max_pixels); returns the previous limits as a
-- table, and with no argument only returns them.  A file whose header, or
-- whose size after `resize`, is beyond them is refused before anything is
-- allocated, with a message naming the file and the sizes: a tiny hostile
-- file cannot ask for gigabytes.  The defaults, 16384 and 2^27 (384 MiB of
-- RGB planes), exceed every real dataset image (ImageNet's largest are a
-- few thousand pixels a side; a 100-megapixel photo is 11648x8736) and any
-- image resized to short side 72 with an aspect ratio under 227:1.
data.image_limits = C.image_limits
--- Write u8 [C, H, W] (C = 1 or 3) or [H, W] as a JPEG (quality 95);
-- PNG is rl.write_png.
data.write_jpeg = C.write_jpeg
--- The C batch assembler: data.batch(x, idx, {crop, pad, random_crop, flip,
-- generator}), x a u8 [N, C, H, W] tensor or a Ragged store (each image
-- padded and cut at its own size; crop required).
function data.batch(x, idx, opts)
  if is_ragged(x) then return C.batch_ragged(x.pixels, x.extent, x.channels, idx, opts) end
  return C.batch(x, idx, opts)
end

return data
