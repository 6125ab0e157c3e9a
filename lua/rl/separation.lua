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
local rl = require 'rl'

local M = {}

--- eps (the paper's l-inf radius) and the reference's train-train drop.
M.defaults = {
  mnist = {eps = 0.1, drop = 0},
  ['fashion-mnist'] = {eps = 0.1, drop = 0},
  cifar10 = {eps = 0.031, drop = 0},
  svhn = {eps = 0.031, drop = 4},
  resimgnet = {eps = 0.005, drop = 6},
}

M.aliases = {
  fmnist = 'fashion-mnist', fashion_mnist = 'fashion-mnist', ['cifar-10'] = 'cifar10',
  ['restricted-imagenet'] = 'resimgnet', restricted_imagenet = 'resimgnet',
}

--- The quantile levels summary reports.
M.levels = {0, 0.01, 0.05, 0.25, 0.5, 0.75, 1}

--- A dataset's canonical name.
function M.canonical(name)
  name = tostring(name):lower()
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
-- ref index.
function M.nearest(qx, qy, rx, ry, opts)
  local who = 'separation.nearest'
  opts = opts or {}
  local p = p_of(opts.p, who)
  images_of(qx, 'query images', who)
  images_of(rx, 'reference images', who)
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
  if drop >= #items then
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

--- One row of Table 1 for a dataset.
-- train, test: {x = u8 [N, ...], y = labels} (test may be nil).
-- opts.p ('inf'), opts.drop (the dataset's default: see M.defaults),
-- opts.test_drop (0), opts.bins (20).  Returns {dataset, eps, p, two_r
-- (train-train minimum after the drop), test_train (the test-train
-- minimum), train_train_summary, test_train_summary, seconds = {train_train,
-- test_train}, n_train, n_test, drop}; two_r_raw and test_train_raw give the
-- minima as integers over 255 (l-inf).
function M.report(name, train, test, opts)
  opts = opts or {}
  local canon = M.canonical(name)
  local def = M.defaults[canon] or {drop = 0}
  local drop = opts.drop or def.drop
  local p = p_of(opts.p, 'separation.report')
  local row = {dataset = canon, eps = def.eps, p = p, drop = drop, seconds = {},
               n_train = train.x.shape[1], n_test = test and test.x.shape[1] or 0}
  local t0 = rl.clock()
  local d, idx = M.nearest(train.x, train.y, train.x, train.y, {p = p, skip_self = true})
  row.seconds.train_train = rl.clock() - t0
  row.train_train_summary = M.summary(d, {drop = drop, idx = idx, bins = opts.bins})
  row.two_r = row.train_train_summary.min
  if test then
    t0 = rl.clock()
    d, idx = M.nearest(test.x, test.y, train.x, train.y, {p = p})
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
