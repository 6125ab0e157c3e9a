--- rl.separation: how far apart the classes of a dataset are (Table 1).
--
-- For every point, the distance to the nearest training point of another
-- class, computed exactly on the raw 8-bit pixels by the engine
-- (rl.nearest_other) and reported in [0, 1] pixel units, so an l-inf
-- distance is always k/255.  The train-train minimum is the separation 2r
-- of the paper: a classifier can be both robust and accurate at radius
-- eps when eps < r.
--
--   local dist, idx = rl.separation.nearest(qx, qy, rx, ry, {p = 'inf', skip_self = false})
--   local s = rl.separation.summary(dist, {drop = 0, idx = idx, bins = 20})
--   local row = rl.separation.report('svhn', train, test)  -- train/test: {x = u8, y = labels}
--
-- Quirk (reference implementation): before taking the train-train minimum
-- the reference drops a few degenerate pairs: SVHN the 4 smallest distances
-- (an exact duplicate image and one image stored under two labels), and
-- Restricted ImageNet the 6 smallest.  It keeps the values at or above the
-- (k+1)-th smallest, so when ties straddle the cut fewer than k go; summary
-- does the same and lists what it dropped.  `M.defaults[name].drop` holds
-- these per dataset; report(..., {drop = 0}) gives the textbook minimum.
-- A train-train pair of mutual nearest points appears twice (i->j, j->i).
--
-- Geometry: Restricted ImageNet's distances are between images resized to
-- short side 72 and centre-cropped to 64x64 (the reference's
-- restrictedImgNet_dists.py), the size its drop of 6 was chosen at;
-- `M.defaults.resimgnet.crop` holds that window, and a dataset whose
-- images keep their own sizes (an rl.data.Ragged store) is cut to it.
--
-- Control with random labels (the reference's
-- scripts/random_restrictedImgNet_dists.py): report(..., {labels = {draw =
-- 'reference', seed = 0}}) replaces every label before any distance is
-- taken.  'reference' draws them as that script does: np.random.seed(seed),
-- then np.random.choice(K, N_train) for the training labels and the next
-- N_test draws of the same stream for the test labels, uniform and
-- independent (class sizes change); M.mt19937 reproduces numpy's legacy
-- generator bit for bit, so on the same files in the same order these are
-- the reference's labels.  'permute' instead shuffles each split's labels
-- with a seeded rl.randperm (class sizes kept).
local rl = require 'rl.base'
local data = require 'rl.data'

local M = {}

--- eps (the paper's l-inf radius), the reference's train-train drop and,
-- for image folders, the centred window distances are taken at.
M.defaults = {
  mnist = {eps = 0.1, drop = 0},
  ['fashion-mnist'] = {eps = 0.1, drop = 0},
  cifar10 = {eps = 0.031, drop = 0},
  svhn = {eps = 0.031, drop = 4},
  resimgnet = {eps = 0.005, drop = 6, crop = 64},
}

M.aliases = {
  fmnist = 'fashion-mnist', fashion_mnist = 'fashion-mnist', ['cifar-10'] = 'cifar10',
  ['restricted-imagenet'] = 'resimgnet', restricted_imagenet = 'resimgnet',
}

--- The quantile levels summary reports.
M.levels = {0, 0.01, 0.05, 0.25, 0.5, 0.75, 1}

--- A dataset's canonical name (folder:PATH is kept as given).
function M.canonical(name)
  name = tostring(name)
  if name:match('^folder:') then return name end
  name = name:lower()
  return M.aliases[name] or name
end

local function p_of(p, who)
  if p == nil or p == 'inf' or p == 'linf' or p == math.huge then return 'inf' end
  if p == 2 or p == 'l2' or p == '2' then return 2 end
  error(string.format("%s: p must be 'inf' (or math.huge) or 2, got %s", who, tostring(p)), 3)
end

local function labels_of(y, what, who)
  if not rl.is_tensor(y) then
    error(string.format('%s: %s must be a tensor, got %s', who, what, type(y)), 3)
  end
  if y.dtype == 'i64' then return y end
  if y.dtype == 'u8' then return y:long() end
  error(string.format('%s: %s must be integers (i64 or u8), got %s', who, what, y.dtype), 3)
end

-- The last window cut from each Ragged store, so that a script calling
-- nearest once per class does not cut (and hold) the training set K times.
local cut_cache = setmetatable({}, {__mode = 'k'})

-- A Ragged store (images of their own sizes) cut to its centred window:
-- crop (a size or {h, w}), else the store's own evaluation window.
local function dense(x, crop, what, who)
  if not data.is_ragged(x) then return x end
  if crop == nil and x.crop == nil then
    error(string.format('%s: the %s have different sizes (an rl.data.Ragged store): give crop = N ' ..
      'for the centred window to compare', who, what), 3)
  end
  local h, w
  if crop == nil then h, w = x.crop[1], x.crop[2]
  elseif type(crop) == 'table' then h, w = crop[1], crop[2]
  else h, w = crop, crop end
  local hit = cut_cache[x]
  if hit and hit.h == h and hit.w == w then return hit.x end
  local cut = x:center_crop(h, w)
  cut_cache[x] = {h = h, w = w, x = cut}
  return cut
end

local function images_of(x, what, who)
  if not rl.is_tensor(x) then
    error(string.format('%s: %s must be a tensor, got %s', who, what, type(x)), 3)
  end
  if x.dtype ~= 'u8' then
    error(string.format('%s: %s must be u8 (raw 8-bit pixels), got %s: '
      .. 'distances are exact only on 8-bit data', who, what, x.dtype), 3)
  end
  return x
end

--- Nearest reference of another class for every query.
-- qx [Nq, ...], rx [Nr, ...] u8 images; qy, ry labels (i64 or u8).
-- opts.p: 'inf' (default) or 2; opts.skip_self: query i never matches
-- ref i (for a set against itself); opts.missing: 'inf' (default) or
-- 'error', for a query whose class is the only one among the refs.
-- Returns dist (f64 [Nq], in [0, 1] pixel units: k/255 for l-inf,
-- sqrt(sum of squares)/255 for l2; math.huge when there is no ref of
-- another class), idx (i64 [Nq], 0-based ref index, -1 when none) and raw
-- (i64 [Nq], the integer distance in 0..255 units: max |diff|, or the sum
-- of squared differences for l2; -1 when none).  Ties go to the smallest
-- ref index.  An rl.data.Ragged store is cut to its centred opts.crop (a
-- size or {h, w}; default: the store's evaluation window) first.
function M.nearest(qx, qy, rx, ry, opts)
  local who = 'separation.nearest'
  opts = opts or {}
  local p = p_of(opts.p, who)
  qx = images_of(dense(qx, opts.crop, 'query images', who), 'query images', who)
  rx = images_of(dense(rx, opts.crop, 'reference images', who), 'reference images', who)
  qy = labels_of(qy, 'query labels', who)
  ry = labels_of(ry, 'reference labels', who)
  local raw, idx = rl.nearest_other(qx, qy, rx, ry, {p = p, skip_self = opts.skip_self or false})
  local d = raw:double()
  if p == 2 then d = d:sqrt() end
  d = d / 255
  local none = idx:lt(0)
  if none:any():item() ~= 0 then
    if opts.missing == 'error' then
      local first = none:long():argmax():item()
      error(string.format('%s: query %d (0-based) has no reference of another class', who, first), 2)
    end
    d = rl.where(none, math.huge, d)
  end
  return d, idx, raw
end

local function to_list(v, what)
  if rl.is_tensor(v) then return v:double():reshape(-1):tolist() end
  if type(v) == 'table' then return v end
  error(string.format('separation.summary: %s must be a tensor or a table, got %s', what, type(v)), 3)
end

-- numpy's default ('linear') quantile of sorted values
local function quantile(sorted, p)
  local n = #sorted
  local h = (n - 1) * p + 1
  local lo = math.floor(h)
  if lo >= n then return sorted[n] end
  return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo])
end

--- Min, quantiles, mean and histogram of nearest distances.
-- dist: tensor or table (math.huge entries count as `missing` and are left
-- out).  opts.drop = k drops the k smallest distances as the reference does
-- (see the quirk above) and lists them in `dropped` as {query, ref, dist}
-- (0-based indices; ref from opts.idx when given).  opts.bins (20) and
-- opts.range ({0, 1}, widened to the largest value) shape the histogram.
function M.summary(dist, opts)
  opts = opts or {}
  local d = to_list(dist, 'dist')
  local idx = opts.idx and to_list(opts.idx, 'idx')
  local drop = opts.drop or 0
  if math.type(drop) ~= 'integer' or drop < 0 then
    error('separation.summary: drop must be a non-negative integer, got ' .. tostring(drop), 2)
  end
  local items, missing = {}, 0
  for i, v in ipairs(d) do
    if v < math.huge and v == v then items[#items + 1] = {v, i} else missing = missing + 1 end
  end
  if drop > 0 and drop >= #items then
    error(string.format('separation.summary: drop = %d leaves nothing of %d distances', drop, #items), 2)
  end
  table.sort(items, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  local s = {drop = drop, missing = missing, dropped = {}}
  if #items == 0 then
    s.n = 0
    return s
  end
  s.min_all = items[1][1]
  -- the reference keeps values >= the (k+1)-th smallest
  local first = 1
  if drop > 0 then
    local cut = items[drop + 1][1]
    while items[first][1] < cut do
      local v, i = items[first][1], items[first][2]
      s.dropped[#s.dropped + 1] = {query = i - 1, ref = idx and math.tointeger(idx[i]), dist = v}
      first = first + 1
    end
  end
  local sorted, sum = {}, 0
  for k = first, #items do
    sorted[#sorted + 1] = items[k][1]
    sum = sum + items[k][1]
  end
  local n = #sorted
  s.n, s.min, s.max, s.mean = n, sorted[1], sorted[n], sum / n
  s.argmin = items[first][2] - 1
  s.argmin_ref = idx and math.tointeger(idx[items[first][2]])
  s.quantiles = {}
  for _, p in ipairs(M.levels) do s.quantiles[#s.quantiles + 1] = {p = p, value = quantile(sorted, p)} end
  local bins = opts.bins or 20
  local lo, hi = (opts.range or {})[1] or 0, (opts.range or {})[2] or math.max(1, s.max)
  local h = {lo = lo, hi = hi, counts = {}, fractions = {}, edges = {}}
  for b = 1, bins do h.counts[b] = 0 end
  for b = 0, bins do h.edges[b + 1] = lo + (hi - lo) * b / bins end
  for _, v in ipairs(sorted) do
    if v >= lo and v <= hi then
      local b = math.min(bins, math.floor((v - lo) / (hi - lo) * bins) + 1)
      h.counts[b] = h.counts[b] + 1
    end
  end
  for b = 1, bins do h.fractions[b] = h.counts[b] / n end
  s.histogram = h
  return s
end

-- ---------------------------------------------------------------------------
-- Random labels (the control)

local MT = {}
MT.__index = MT

--- numpy's legacy generator (MT19937, what np.random.seed(seed) and the
-- np.random.* functions use): g = M.mt19937(seed); g:uint32();
-- g:randint(k, n) = np.random.randint(0, k, n) = np.random.choice(k, n).
function M.mt19937(seed)
  seed = seed or 0
  if math.type(seed) ~= 'integer' or seed < 0 or seed > 0xffffffff then
    error('separation.mt19937: seed must be an integer in 0..2^32-1, got ' .. tostring(seed), 2)
  end
  -- init_genrand, which numpy's legacy seeding uses for an integer seed
  local mt = {seed}
  for i = 2, 624 do
    local prev = mt[i - 1]
    mt[i] = (1812433253 * (prev ~ (prev >> 30)) + i - 1) & 0xffffffff
  end
  return setmetatable({mt = mt, pos = 625}, MT)
end

-- Regenerate the 624 words in place.
local function twist(mt)
  for k = 1, 624 do
    local y = (mt[k] & 0x80000000) | (mt[k % 624 + 1] & 0x7fffffff)
    local v = mt[(k + 396) % 624 + 1] ~ (y >> 1)
    if y & 1 == 1 then v = v ~ 0x9908b0df end
    mt[k] = v
  end
end

--- The next 32-bit output.
function MT:uint32()
  if self.pos > 624 then
    twist(self.mt)
    self.pos = 1
  end
  local y = self.mt[self.pos]
  self.pos = self.pos + 1
  y = y ~ (y >> 11)
  y = y ~ ((y << 7) & 0x9d2c5680)
  y = y ~ ((y << 15) & 0xefc60000)
  return y ~ (y >> 18)
end

--- n integers uniform in 0..k-1 as numpy's legacy randint draws them: a
-- 32-bit output masked to the smallest power of two above k - 1, redrawn
-- while it exceeds k - 1 (k = 1 takes no draws).  A Lua list.
function MT:randint(k, n)
  if math.type(k) ~= 'integer' or k < 1 or k > 0x7fffffff then
    error('separation.mt19937: randint needs k in 1..2^31-1, got ' .. tostring(k), 2)
  end
  local out, top = {}, k - 1
  local mask = top
  for _, sh in ipairs({1, 2, 4, 8, 16}) do mask = mask | (mask >> sh) end
  for i = 1, n do
    local v = 0
    if top > 0 then
      repeat v = self:uint32() & mask until v <= top
    end
    out[i] = v
  end
  return out
end

M.label_draws = {reference = true, permute = true}

local function i64_of(list)
  if #list == 0 then return rl.zeros(0, {dtype = 'i64'}) end
  return rl.tensor(list, 'i64')
end

--- Replace the labels, as the control does: train_y, test_y (i64; test_y
-- may be nil) and k classes; opts.draw ('reference' or 'permute') and
-- opts.seed (0).  Returns the new train and test labels.
function M.random_labels(train_y, test_y, k, opts)
  opts = opts or {}
  local draw, seed = opts.draw or 'reference', opts.seed or 0
  if not M.label_draws[draw] then
    error(string.format("separation.random_labels: draw must be 'reference' or 'permute', got %q", tostring(draw)), 2)
  end
  if math.type(seed) ~= 'integer' or seed < 0 or seed > 0xffffffff then
    error('separation.random_labels: seed must be an integer in 0..2^32-1, got ' .. tostring(seed), 2)
  end
  local n_train, n_test = train_y:size(1), test_y and test_y:size(1) or 0
  if draw == 'reference' then
    local g = M.mt19937(seed)
    local tr = i64_of(g:randint(k, n_train))
    return tr, test_y and i64_of(g:randint(k, n_test))
  end
  local g = rl.Generator(seed)
  local tr = train_y:index_select(1, rl.randperm(n_train, {generator = g}))
  return tr, test_y and test_y:index_select(1, rl.randperm(n_test, {generator = g}))
end

-- ---------------------------------------------------------------------------
-- Table 1

--- One row of Table 1 for a dataset.
-- train, test: {x = u8 [N, ...], y = labels} (test may be nil).
-- opts.p ('inf'), opts.drop (the dataset's default: see M.defaults),
-- opts.test_drop (0), opts.bins (20).  Returns {dataset, eps, p, two_r
-- (train-train minimum after the drop), test_train (the test-train
-- minimum), train_train_summary, test_train_summary, seconds = {train_train,
-- test_train}, n_train, n_test, drop, image (the {C, H, W} compared),
-- labels ('true' or 'random')}; two_r_raw and test_train_raw give the
-- minima as integers over 255 (l-inf).  opts.crop: the window images of
-- their own sizes are cut to (default: the dataset's, M.defaults).
-- opts.labels = {draw =, seed =} runs the random-label control (see
-- M.random_labels); the row then also holds label_draw, label_seed and
-- labels_kept (the fraction of training labels the draw left unchanged).
function M.report(name, train, test, opts)
  opts = opts or {}
  local canon = M.canonical(name)
  local def = M.defaults[canon] or {drop = 0}
  local drop = opts.drop or def.drop
  local p = p_of(opts.p, 'separation.report')
  local crop = opts.crop or def.crop
  local tx = dense(train.x, crop, 'training images', 'separation.report')
  local ex = test and dense(test.x, crop, 'test images', 'separation.report')
  local ty, ey = train.y, test and test.y
  local row = {dataset = canon, eps = def.eps, p = p, drop = drop, seconds = {},
               n_train = tx.shape[1], n_test = test and ex.shape[1] or 0,
               image = {table.unpack(tx.shape, 2)}, labels = 'true'}
  if opts.labels then
    local k = opts.labels.classes or (train.classes and #train.classes)
      or labels_of(ty, 'training labels', 'separation.report'):max():item() + 1
    local new_ty, new_ey = M.random_labels(labels_of(ty, 'training labels', 'separation.report'),
      ey and labels_of(ey, 'test labels', 'separation.report'), k, opts.labels)
    row.labels, row.label_draw, row.label_seed = 'random', opts.labels.draw or 'reference', opts.labels.seed or 0
    row.label_classes = k
    row.labels_kept = row.n_train > 0 and new_ty:eq(labels_of(ty, 'training labels', 'separation.report'))
      :long():sum():item() / row.n_train or 0
    ty, ey = new_ty, new_ey
  end
  local t0 = rl.clock()
  local d, idx = M.nearest(tx, ty, tx, ty, {p = p, skip_self = true})
  row.seconds.train_train = rl.clock() - t0
  row.train_train_summary = M.summary(d, {drop = drop, idx = idx, bins = opts.bins})
  row.two_r = row.train_train_summary.min
  if test then
    t0 = rl.clock()
    d, idx = M.nearest(ex, ey, tx, ty, {p = p})
    row.seconds.test_train = rl.clock() - t0
    row.test_train_summary = M.summary(d, {drop = opts.test_drop or 0, idx = idx, bins = opts.bins})
    row.test_train = row.test_train_summary.min
  end
  if p == 'inf' then
    row.two_r_raw = row.two_r and math.floor(row.two_r * 255 + 0.5)
    row.test_train_raw = row.test_train and math.floor(row.test_train * 255 + 0.5)
  end
  return row
end

return M
