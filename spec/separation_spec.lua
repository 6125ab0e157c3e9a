-- separation_spec.lua - rl.nearest_other and rl.separation against a brute
-- force in plain Lua: l-inf and l2, with and without skip_self, ties to the
-- smallest index, queries without a ref of another class, exact k/255
-- distances, summary and the reference's drop, and the error messages; the
-- random-label control (numpy's legacy generator reproduced, the report
-- and scripts/table1.lua --random-labels).
local rl = require 'rl'
local sep = rl.separation
local json = require 'rl.json'

-- Random u8 rows as Lua tables (values in [0, vmax]) and their tensor
-- [n, 1, h, w] (rows of h*w bytes, as images).
local function rows(n, h, w, vmax, classes)
  local x, y = {}, {}
  for i = 1, n do
    local r = {}
    for k = 1, h * w do r[k] = math.random(0, vmax) end
    x[i], y[i] = r, math.random(0, classes - 1)
  end
  return x, y
end

local function tensor_of(x, h, w)
  if #x == 0 then return rl.zeros(0, 1, h, w, { dtype = 'u8' }) end
  return rl.tensor(x):byte():view(#x, 1, h, w)
end

local function labels_of(y)
  if #y == 0 then return rl.zeros(0, { dtype = 'i64' }) end
  return rl.tensor(y):long()
end

-- The brute force: raw distances (max |d| or sum d^2), 0-based index of the
-- first nearest ref of another label; -1 and -1 when there is none.
local function brute(qx, qy, rx, ry, p, skip_self)
  local dist, arg = {}, {}
  for i = 1, #qx do
    local best, barg = -1, -1
    local q = qx[i]
    for j = 1, #rx do
      if ry[j] ~= qy[i] and not (skip_self and i == j) then
        local r, d = rx[j], 0
        for k = 1, #q do
          local e = q[k] - r[k]
          if p == 2 then
            d = d + e * e
          else
            if e < 0 then e = -e end
            if e > d then d = e end
          end
        end
        if best < 0 or d < best then best, barg = d, j - 1 end
      end
    end
    dist[i], arg[i] = best, barg
  end
  return dist, arg
end

local function check(qx, qy, rx, ry, h, w, p, skip_self)
  local want_d, want_a = brute(qx, qy, rx, ry, p, skip_self)
  local raw, idx = rl.nearest_other(tensor_of(qx, h, w), labels_of(qy), tensor_of(rx, h, w),
    labels_of(ry), { p = p, skip_self = skip_self })
  assert.are.same(want_d, raw:tolist())
  assert.are.same(want_a, idx:tolist())
  return raw, idx
end

describe('rl.nearest_other against a brute force', function()
  before_each(function() math.randomseed(1234) end)

  for _, p in ipairs({ 'inf', 2 }) do
    local pname = p == 2 and 'l2' or 'l-inf'
    it(pname .. ': test against train, rows of odd length, refs across tiles', function()
      -- 300 refs: more than one 256-ref tile, a partial last block
      local rx, ry = rows(300, 5, 7, 255, 10)
      local qx, qy = rows(37, 5, 7, 255, 10)
      check(qx, qy, rx, ry, 5, 7, p, false)
    end)

    it(pname .. ': train against itself with skip_self, many ties (pixels in 0..3)', function()
      local x, y = rows(200, 3, 3, 3, 4)
      check(x, y, x, y, 3, 3, p, true)
      -- without skip_self, every point of another label still counts
      check(x, y, x, y, 3, 3, p, false)
    end)

    it(pname .. ': clustered data (near points are rare, early exits common)', function()
      -- 6 classes, each a prototype plus small noise; a few points far off
      local protos = {}
      for c = 1, 6 do protos[c] = rows(1, 8, 8, 255, 1)[1] end
      local function sample(n)
        local x, y = {}, {}
        for i = 1, n do
          local c = math.random(1, 6)
          local r = {}
          for k = 1, 64 do
            local v = protos[c][k] + math.random(-20, 20)
            if i % 17 == 0 then v = math.random(0, 255) end
            r[k] = math.max(0, math.min(255, v))
          end
          x[i], y[i] = r, c - 1
        end
        return x, y
      end
      local rx, ry = sample(700)
      local qx, qy = sample(150)
      check(qx, qy, rx, ry, 8, 8, p, false)
      check(rx, ry, rx, ry, 8, 8, p, true)
    end)
  end

  it('many refs (several envelope groups) and massive ties (binary pixels)', function()
    -- 5000 refs: more than 64 blocks of 64, so more than one envelope group
    local rx, ry = rows(5000, 2, 8, 255, 3)
    local qx, qy = rows(60, 2, 8, 255, 3)
    check(qx, qy, rx, ry, 2, 8, 'inf', false)
    -- pixels 0 or 1 on 4 dims: nearly every distance ties; the search order
    -- is not the index order, yet the smallest index must win
    local bx, by = rows(700, 1, 4, 1, 3)
    check(bx, by, bx, by, 1, 4, 'inf', true)
    check(bx, by, bx, by, 1, 4, 2, true)
  end)

  it('ties go to the smallest ref index', function()
    -- query 0 (label 0) is at l-inf distance 5 from refs 1, 2 and 4 (labels 1, 2, 1)
    -- and at 0 from ref 0 (its own label) and ref 3 is farther
    local qx, qy = { { 10, 10, 10 } }, { 0 }
    local rx = { { 10, 10, 10 }, { 15, 10, 10 }, { 10, 5, 10 }, { 30, 10, 10 }, { 10, 10, 15 } }
    local ry = { 0, 1, 2, 1, 1 }
    local raw, idx = check(qx, qy, rx, ry, 1, 3, 'inf', false)
    assert.are.same({ 5 }, raw:tolist())
    assert.are.same({ 1 }, idx:tolist())
    raw, idx = check(qx, qy, rx, ry, 1, 3, 2, false)
    assert.are.same({ 25 }, raw:tolist())
    assert.are.same({ 1 }, idx:tolist())
    -- exact duplicates under another label: distance 0, first one wins
    rx = { { 1, 2, 3 }, { 1, 2, 3 }, { 1, 2, 3 } }
    ry = { 0, 1, 1 }
    raw, idx = check({ { 1, 2, 3 } }, { 0 }, rx, ry, 1, 3, 'inf', false)
    assert.are.same({ 0 }, raw:tolist())
    assert.are.same({ 1 }, idx:tolist())
  end)

  it('labels: more than 254 classes, and query labels no ref has', function()
    local rx, ry = rows(300, 2, 3, 255, 300)
    local qx, qy = rows(40, 2, 3, 255, 320)
    check(qx, qy, rx, ry, 2, 3, 'inf', false)
    check(qx, qy, rx, ry, 2, 3, 2, false)
    local sx, sy = rows(100, 2, 3, 255, 3)
    local tx, ty = rows(20, 2, 3, 255, 5) -- labels 3 and 4 are not among the refs
    check(tx, ty, sx, sy, 2, 3, 'inf', false)
  end)

  it('gives -1 where no ref has another label (and on empty refs)', function()
    local rx = { { 1, 2 }, { 3, 4 } }
    local raw, idx = check({ { 0, 0 }, { 5, 5 } }, { 7, 8 }, rx, { 7, 7 }, 1, 2, 'inf', false)
    assert.are.same({ -1, 2 }, raw:tolist())
    assert.are.same({ -1, 1 }, idx:tolist())
    raw, idx = check({ { 0, 0 } }, { 1 }, {}, {}, 1, 2, 'inf', false)
    assert.are.same({ -1 }, raw:tolist())
    raw, idx = check({}, {}, rx, { 1, 2 }, 1, 2, 2, false)
    assert.are.equal(0, raw:numel())
  end)

  it('reads strided views as their values', function()
    local x, y = rows(120, 4, 4, 255, 5)
    local t = tensor_of(x, 4, 4)
    local yt = labels_of(y)
    local view = t:transpose(3, 4) -- not contiguous
    local d1, a1 = rl.nearest_other(view, yt, view, yt, { skip_self = true })
    local d2, a2 = rl.nearest_other(view:contiguous(), yt, view:contiguous(), yt, { skip_self = true })
    assert.are.same(d2:tolist(), d1:tolist())
    assert.are.same(a2:tolist(), a1:tolist())
    local sub = t:narrow(1, 11, 50)
    local d3 = rl.nearest_other(sub, yt:narrow(1, 11, 50), t, yt)
    local d4 = rl.nearest_other(sub:clone(), yt:narrow(1, 11, 50):clone(), t, yt)
    assert.are.same(d4:tolist(), d3:tolist())
  end)

  it('counts its work', function()
    local x, y = rows(50, 2, 2, 255, 3)
    rl.nearest_other(tensor_of(x, 2, 2), labels_of(y), tensor_of(x, 2, 2), labels_of(y))
    assert.is_true(rl.nearest_other_work() > 0)
  end)
end)

describe('rl.separation.nearest', function()
  before_each(function() math.randomseed(99) end)

  it('returns k/255 distances (exactly raw / 255), indices and raw values', function()
    local rx, ry = rows(150, 4, 4, 255, 4)
    local qx, qy = rows(60, 4, 4, 255, 4)
    local d, idx, raw = sep.nearest(tensor_of(qx, 4, 4), labels_of(qy), tensor_of(rx, 4, 4), labels_of(ry))
    local want_d, want_a = brute(qx, qy, rx, ry, 'inf', false)
    assert.are.equal('f64', d.dtype)
    assert.are.same(want_a, idx:tolist())
    for i, v in ipairs(d:tolist()) do
      assert.are.equal(want_d[i] / 255, v)
      local k = v * 255
      assert.is_true(math.abs(k - math.floor(k + 0.5)) < 1e-9, 'not a multiple of 1/255: ' .. v)
      assert.is_true(v >= 0 and v <= 1)
    end
    assert.are.same(want_d, raw:tolist())
  end)

  it('l2 reports sqrt(sum of squares) / 255', function()
    local rx, ry = rows(80, 3, 3, 255, 3)
    local qx, qy = rows(20, 3, 3, 255, 3)
    local d = sep.nearest(tensor_of(qx, 3, 3), labels_of(qy), tensor_of(rx, 3, 3), labels_of(ry), { p = 2 })
    local want = brute(qx, qy, rx, ry, 2, false)
    for i, v in ipairs(d:tolist()) do assert.are.equal(math.sqrt(want[i]) / 255, v) end
  end)

  it('skip_self and u8 labels', function()
    local x, y = rows(90, 3, 3, 7, 3)
    local d, idx = sep.nearest(tensor_of(x, 3, 3), labels_of(y):byte(), tensor_of(x, 3, 3), labels_of(y),
      { skip_self = true })
    local want_d, want_a = brute(x, y, x, y, 'inf', true)
    assert.are.same(want_a, idx:tolist())
    for i, v in ipairs(d:tolist()) do assert.are.equal(want_d[i] / 255, v) end
  end)

  it('a query with no reference of another class: inf and -1, or an error', function()
    local rx = tensor_of({ { 1, 2 }, { 3, 4 } }, 1, 2)
    local ry = labels_of({ 0, 0 })
    local qx, qy = tensor_of({ { 0, 0 }, { 9, 9 } }, 1, 2), labels_of({ 1, 0 })
    local d, idx, raw = sep.nearest(qx, qy, rx, ry)
    assert.are.same({ 2 / 255, math.huge }, d:tolist())
    assert.are.same({ 0, -1 }, idx:tolist())
    assert.are.same({ 2, -1 }, raw:tolist())
    local ok, err = pcall(sep.nearest, qx, qy, rx, ry, { missing = 'error' })
    assert.is_false(ok)
    assert.matches('query 1 %(0%-based%) has no reference of another class', err)
  end)
end)

describe('rl.separation.summary', function()
  it('min, numpy-style quantiles, mean and a histogram', function()
    local s = sep.summary({ 0.5, 0.1, 0.3, 0.2, 0.4 }, { bins = 5 })
    assert.are.equal(5, s.n)
    assert.are.equal(0.1, s.min)
    assert.are.equal(0.5, s.max)
    assert.is_true(math.abs(s.mean - 0.3) < 1e-12)
    assert.are.equal(1, s.argmin)
    local q = {}
    for _, e in ipairs(s.quantiles) do q[e.p] = e.value end
    assert.are.equal(0.1, q[0])
    assert.are.equal(0.5, q[1])
    assert.is_true(math.abs(q[0.5] - 0.3) < 1e-12)
    assert.is_true(math.abs(q[0.25] - 0.2) < 1e-12)
    assert.is_true(math.abs(q[0.01] - (0.1 + 0.04 * 0.1)) < 1e-12)
    assert.are.equal(6, #s.histogram.edges)
    assert.are.same({}, s.dropped)
  end)

  it('histogram bins are [a, b), the last one closed', function()
    local s = sep.summary({ 0.05, 0.15, 0.16, 0.5, 0.95, 1.0 }, { bins = 5 })
    assert.are.same({ 3, 0, 1, 0, 2 }, s.histogram.counts)
    assert.are.same({ 0.5, 0, 1 / 6, 0, 2 / 6 }, s.histogram.fractions)
    assert.are.equal(0, s.histogram.lo)
    assert.are.equal(1, s.histogram.hi)
    s = sep.summary({ 0.5, 3.0 }, { bins = 3 }) -- l2 distances can pass 1: the range grows
    assert.are.equal(3.0, s.histogram.hi)
    assert.are.same({ 1, 0, 1 }, s.histogram.counts)
  end)

  it('takes tensors, and leaves inf out as missing', function()
    local s = sep.summary(rl.tensor({ 0.25, math.huge, 0.75 }):double())
    assert.are.equal(2, s.n)
    assert.are.equal(1, s.missing)
    assert.are.equal(0.25, s.min)
    assert.are.equal(20, #s.histogram.counts)
  end)

  it('drop = k removes the k smallest and says which, as the reference', function()
    local d = { 0.30, 0.10, 0.20, 0.40, 0.05 }
    local idx = { 11, 12, 13, 14, 15 }
    local s = sep.summary(d, { drop = 2, idx = idx })
    assert.are.equal(0.20, s.min)
    assert.are.equal(0.05, s.min_all)
    assert.are.equal(3, s.n)
    assert.are.same({ { query = 4, ref = 15, dist = 0.05 }, { query = 1, ref = 12, dist = 0.10 } },
      s.dropped)
    -- ties across the cut: the reference keeps every value >= the (k+1)-th
    -- smallest, so here nothing goes
    s = sep.summary({ 0.1, 0.1, 0.1, 0.2 }, { drop = 2 })
    assert.are.same({}, s.dropped)
    assert.are.equal(0.1, s.min)
    assert.are.equal(4, s.n)
    -- without idx, dropped pairs have no ref
    s = sep.summary({ 0.3, 0.1 }, { drop = 1 })
    assert.are.same({ { query = 1, dist = 0.1 } }, s.dropped)
  end)

  it('refuses a drop that leaves nothing, and a bad drop', function()
    local ok, err = pcall(sep.summary, { 0.1, 0.2 }, { drop = 2 })
    assert.is_false(ok)
    assert.matches('drop = 2 leaves nothing of 2 distances', err)
    ok, err = pcall(sep.summary, { 0.1 }, { drop = -1 })
    assert.is_false(ok)
    assert.matches('drop must be a non%-negative integer', err)
    ok, err = pcall(sep.summary, 'x')
    assert.is_false(ok)
    assert.matches('dist must be a tensor or a table', err)
  end)
end)

describe('rl.separation.report', function()
  it('a Table 1 row: train-train 2r with the dataset drop, test-train, timings', function()
    math.randomseed(7)
    local x, y = rows(120, 3, 3, 255, 4)
    local tx, ty = rows(30, 3, 3, 255, 4)
    local train = { x = tensor_of(x, 3, 3), y = labels_of(y) }
    local test = { x = tensor_of(tx, 3, 3), y = labels_of(ty) }
    local tt = brute(x, y, x, y, 'inf', true)
    local te = brute(tx, ty, x, y, 'inf', false)
    table.sort(tt)
    table.sort(te)
    local row = sep.report('SVHN', train, test)
    assert.are.equal('svhn', row.dataset)
    assert.are.equal(0.031, row.eps)
    assert.are.equal(4, row.drop)
    assert.are.equal(tt[1] / 255, row.train_train_summary.min_all)
    -- the SVHN quirk: values below the 5th smallest go
    local fifth = tt[5]
    assert.are.equal(fifth / 255, row.two_r)
    assert.are.equal(fifth, row.two_r_raw)
    assert.are.equal(te[1] / 255, row.test_train)
    assert.are.equal(te[1], row.test_train_raw)
    assert.are.equal(120, row.n_train)
    assert.are.equal(30, row.n_test)
    assert.is_true(row.seconds.train_train >= 0 and row.seconds.test_train >= 0)
    -- drop = 0: the textbook minimum
    row = sep.report('svhn', train, nil, { drop = 0 })
    assert.are.equal(tt[1] / 255, row.two_r)
    assert.is_nil(row.test_train)
    assert.are.equal(6, sep.defaults[sep.canonical('restricted-imagenet')].drop)
  end)
end)

describe('separation errors', function()
  local x = rl.zeros(5, 1, 2, 2, { dtype = 'u8' })
  local y = rl.zeros(5, { dtype = 'i64' })

  local function fails(pattern, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert.matches(pattern, tostring(err))
  end

  it('names the op, the sizes and the dtypes', function()
    fails('nearest_other: queries must be u8, got f32', rl.nearest_other, x:float(), y, x, y)
    fails('nearest_other: refs must be u8, got i64', rl.nearest_other, x, y, x:long(), y)
    fails('nearest_other: query labels must be i64, got u8', rl.nearest_other, x, y:byte(), x, y)
    fails('nearest_other: query labels must have size 5 %(one per row of the queries%), got 4',
      rl.nearest_other, x, y:narrow(1, 1, 4), x, y)
    fails('nearest_other: ref labels must have size 3 %(one per row of the refs%), got 5x1',
      rl.nearest_other, x, y, x:narrow(1, 1, 3), y:view(5, 1))
    fails('nearest_other: query rows have 4 values %(size 5x1x2x2%) but ref rows have 6 %(size 5x6%)',
      rl.nearest_other, x, y, rl.zeros(5, 6, { dtype = 'u8' }), y)
    fails('nearest_other: queries must have a first dim of rows, got a scalar',
      rl.nearest_other, rl.tensor(3):byte(), y, x, y)
    fails("nearest_other: option p must be 'inf' %(or math.huge%) or 2, got 1",
      rl.nearest_other, x, y, x, y, { p = 1 })
    fails('nearest_other: option skip_self must be a boolean, got number',
      rl.nearest_other, x, y, x, y, { skip_self = 1 })
  end)

  it('separation.nearest explains what it needs', function()
    fails('separation.nearest: query images must be u8 %(raw 8%-bit pixels%), got f32',
      sep.nearest, x:float(), y, x, y)
    fails('separation.nearest: reference labels must be integers %(i64 or u8%), got f32',
      sep.nearest, x, y, x, y:float())
    fails('separation.nearest: query labels must be a tensor, got table', sep.nearest, x, { 1 }, x, y)
    fails("separation.nearest: p must be 'inf' %(or math.huge%) or 2, got 1", sep.nearest, x, y, x, y, { p = 1 })
  end)
end)

-- ---------------------------------------------------------------------------
-- The control with random labels (the reference's
-- scripts/random_restrictedImgNet_dists.py)

describe('random labels', function()
  -- numpy 1.24: np.random.seed(s); np.random.choice(np.arange(k), size=n)
  local NUMPY = {
    { seed = 0, k = 9, values = { 5, 0, 3, 3, 7, 3, 5, 2, 4, 7, 6, 8, 8, 1, 6, 7, 7, 8, 1, 5, 8, 4, 3, 0, 3 } },
    { seed = 12345, k = 9, values = { 2, 5, 1, 4, 5, 2, 1, 6, 1, 7, 6, 0 } },
    { seed = 7, k = 10, values = { 4, 9, 6, 3, 3, 7, 7, 9, 7, 8, 9, 8 } },
    { seed = 1, k = 2, values = { 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1 } },
    { seed = 3, k = 1000, values = { 874, 664, 249, 643, 952, 968, 256, 789, 659, 714, 875, 681 } },
  }

  it("draws numpy's legacy np.random.choice(k, n) bit for bit", function()
    for _, c in ipairs(NUMPY) do
      assert.are.same(c.values, sep.mt19937(c.seed):randint(c.k, #c.values))
    end
    -- the stream goes on across calls (the reference's test labels follow its training labels)
    local g = sep.mt19937(0)
    local a = g:randint(9, 20)
    for _, v in ipairs(g:randint(9, 5)) do a[#a + 1] = v end
    assert.are.same(NUMPY[1].values, a)
    assert.are.same({ 0, 0, 0 }, sep.mt19937(0):randint(1, 3))
  end)

  it('agrees with numpy over several twists of the state (where numpy is installed)', function()
    local ok = os.execute("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1")
    if not ok then
      pending('skipped: /usr/bin/python3 has no numpy')
      return
    end
    local p = io.popen([[/usr/bin/python3 -c "
import numpy as np
np.random.seed(0)
a = np.random.choice(np.arange(9), size=1500)
b = np.random.choice(np.arange(9), size=700)
np.random.seed(4294967295)
c = np.random.randint(0, 300, size=400)
print(' '.join(map(str, list(a) + list(b) + list(c))))"]])
    local want = {}
    for v in p:read('a'):gmatch('%d+') do want[#want + 1] = tonumber(v) end
    p:close()
    local g = sep.mt19937(0)
    local got = g:randint(9, 1500)
    for _, v in ipairs(g:randint(9, 700)) do got[#got + 1] = v end
    for _, v in ipairs(sep.mt19937(4294967295):randint(300, 400)) do got[#got + 1] = v end
    assert.are.same(want, got)
  end)

  it('replaces the labels as the reference script does, or permutes them', function()
    local ty = rl.tensor({ 0, 0, 0, 1, 1, 2, 2, 2, 2, 1 }, 'i64')
    local ey = rl.tensor({ 2, 1, 0, 0 }, 'i64')
    local tr, te = sep.random_labels(ty, ey, 9, { seed = 0 })
    assert.are.same({ table.unpack(NUMPY[1].values, 1, 10) }, tr:tolist())
    assert.are.same({ table.unpack(NUMPY[1].values, 11, 14) }, te:tolist())
    -- permute: each split's labels shuffled, class sizes kept, fixed by the seed
    local pt, pe = sep.random_labels(ty, ey, 3, { draw = 'permute', seed = 4 })
    local a, b = pt:tolist(), ty:tolist()
    table.sort(a)
    table.sort(b)
    assert.are.same(b, a)
    assert.are.equal(4, pe:size(1))
    local pt2 = sep.random_labels(ty, nil, 3, { draw = 'permute', seed = 4 })
    assert.are.same(pt:tolist(), pt2:tolist())
    assert.has_error(function() sep.random_labels(ty, ey, 3, { draw = 'shuffle' }) end)
  end)

  it('report: the same distances under the new labels, and says so', function()
    math.randomseed(3)
    local x, y = rows(60, 2, 3, 255, 3)
    local qx, qy = rows(15, 2, 3, 255, 3)
    local train = { x = tensor_of(x, 2, 3), y = labels_of(y), classes = { 'a', 'b', 'c' } }
    local test = { x = tensor_of(qx, 2, 3), y = labels_of(qy) }
    local row = sep.report('fashion-mnist', train, test, { labels = { seed = 0 } })
    assert.are.equal('random', row.labels)
    assert.are.equal('reference', row.label_draw)
    assert.are.equal(0, row.label_seed)
    assert.are.equal(3, row.label_classes)
    -- the labels the reference's script would give 60 + 15 points of 3 classes
    local draws = sep.mt19937(0):randint(3, 75)
    local ry, rq = { table.unpack(draws, 1, 60) }, { table.unpack(draws, 61, 75) }
    local kept = 0
    for i = 1, 60 do if ry[i] == y[i] then kept = kept + 1 end end
    assert.are.equal(kept / 60, row.labels_kept)
    local tt = brute(x, ry, x, ry, 'inf', true)
    local te = brute(qx, rq, x, ry, 'inf', false)
    table.sort(tt)
    table.sort(te)
    assert.are.equal(tt[1], row.two_r_raw)
    assert.are.equal(te[1], row.test_train_raw)
    assert.are.equal('true', sep.report('fashion-mnist', train, test).labels)
  end)

  it('scripts/table1.lua --random-labels marks its output and records the seed', function()
    local d = os.tmpname()
    os.remove(d)
    for c = 0, 2 do
      assert(os.execute(string.format("mkdir -p '%s/resimgnet/train/c%d' '%s/resimgnet/test/c%d'", d, c, d, c)))
      for i = 1, 4 do
        rl.write_png(string.format('%s/resimgnet/train/c%d/%d.png', d, c, i), rl.randint(0, 256, 3, 72, 72 + 5 * i, 'u8'))
      end
      rl.write_png(string.format('%s/resimgnet/test/c%d/t.png', d, c), rl.randint(0, 256, 3, 80, 72, 'u8'))
    end
    local function run(extra)
      local p = io.popen(string.format(require('helpers.shell').rllua .. ' scripts/table1.lua --dataset resimgnet --data-dir %s --drop 0 %s 2>&1', d, extra))
      local text = p:read('a')
      assert.is_true(p:close(), text)
      return text
    end
    local text = run('--random-labels --label-seed 5 --out ' .. d .. '/rand')
    assert.truthy(text:find('RANDOM LABELS', 1, true))
    assert.truthy(text:find('np.random.seed(5)', 1, true))
    local t = json.read(d .. '/rand/table.json')
    assert.are.equal('table1-random-labels', t.table)
    assert.are.same({ draw = 'reference', seed = 5 }, t.random_labels)
    assert.truthy(t.title:find('RANDOM LABELS', 1, true))
    local r = t.rows[1]
    assert.are.equal('random', r.labels)
    assert.are.equal(5, r.label_seed)
    assert.are.same({ 3, 64, 64 }, r.image)
    local f = io.open(d .. '/rand/table.md')
    local md = f:read('a')
    f:close()
    assert.truthy(md:find('random (reference, seed 5)', 1, true))
    f = io.open(d .. '/rand/table.csv')
    local csv = f:read('a')
    f:close()
    assert.truthy(csv:find('resimgnet,3x64x64,random,reference,5,', 1, true))
    -- the same row by hand: the 64x64 crops under the reference's labels for seed 5
    local train = rl.data.load('resimgnet', { data_dir = d, crop = 64 })
    local test = rl.data.load('resimgnet', { data_dir = d, split = 'test' })
    local ty, ey = sep.random_labels(train.y, test.y, 3, { seed = 5 })
    local tt = sep.summary((sep.nearest(train.x, ty, train.x, ty, { skip_self = true })))
    local te = sep.summary((sep.nearest(test.x, ey, train.x, ty)))
    assert.are.equal(tt.min, r.two_r)
    assert.are.equal(te.min, r.test_train)
    -- permute, and the default results directory names the control
    text = run('--random-labels permute --out ' .. d .. '/perm')
    assert.truthy(text:find('shuffled by a permutation from rl.Generator(0)', 1, true))
    assert.has_error(function() run('--label-seed 3 --out ' .. d .. '/x') end)
    os.execute("rm -rf '" .. d .. "'")
  end)
end)
