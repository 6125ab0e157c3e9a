-- FAB (rl.autoattack.fab): the projection onto the box-constrained
-- hyperplane against brute-force solutions in f64 (small problems by
-- enumeration and bisection, large ones by an exact sorted walk, all in
-- plain Lua); FAB-T and the untargeted FAB on models whose answer is
-- known, and the untargeted FAB against torchattacks 3.5.1 on CNN001.
local rl = require 'rl'
local fab = require 'rl.autoattack.fab'
local check = require 'helpers.check'
local tiny_trained = require 'helpers.tiny_mlp'
local shell = require 'helpers.shell'
local json = require 'rl.json'
local nn = rl.nn

-- ---- plain-Lua references ---------------------------------------------------

local function dot(a, b)
  local s = 0
  for i = 1, #a do s = s + a[i] * b[i] end
  return s
end

-- l-inf: the least radius lambda such that some d with |d_i| <= lambda and
-- t + d in [0, 1]^n has w.d = b - w.t; nil when even the box cannot.  The
-- reachable values of w.d form an interval, summed coordinate by
-- coordinate; bisection on lambda.
local function linf_radius(t, w, b)
  local need = b - dot(w, t)
  local function reach(lam)
    local lo, hi = 0, 0
    for i = 1, #t do
      local a, z = math.max(-lam, -t[i]), math.min(lam, 1 - t[i])
      lo, hi = lo + math.min(w[i] * a, w[i] * z), hi + math.max(w[i] * a, w[i] * z)
    end
    return lo <= need and need <= hi
  end
  if not reach(1) then return nil end
  local lo, hi = 0, 1
  if reach(0) then return 0 end
  for _ = 1, 200 do
    local mid = (lo + hi) / 2
    if reach(mid) then hi = mid else lo = mid end
  end
  return hi
end

-- l2: the least-norm d by enumeration of the box's faces: each coordinate
-- at its lower bound, its upper bound or free; on a face the least-norm
-- point of the hyperplane is explicit; keep the best that stays in the box.
local function l2_brute(t, w, b)
  local n, best, bestn = #t, nil, math.huge
  local state = {}
  local function visit(i)
    if i > n then
      local d, fixed, ww = {}, 0, 0
      for k = 1, n do
        if state[k] == 1 then d[k] = -t[k] elseif state[k] == 2 then d[k] = 1 - t[k] end
        if d[k] then fixed = fixed + w[k] * d[k] else ww = ww + w[k] ^ 2 end
      end
      local r = b - dot(w, t) - fixed
      if ww == 0 then
        if math.abs(r) > 1e-12 then return end
        for k = 1, n do d[k] = d[k] or 0 end
      else
        for k = 1, n do
          if not d[k] then
            d[k] = r * w[k] / ww
            if t[k] + d[k] < -1e-12 or t[k] + d[k] > 1 + 1e-12 then return end
          end
        end
      end
      local s = dot(d, d)
      if s < bestn then best, bestn = d, s end
      return
    end
    for v = 0, 2 do
      state[i] = v
      visit(i + 1)
    end
  end
  visit(1)
  return best
end

-- Where the box cannot reach the hyperplane: the corner nearest to it.
local function corner(t, w, b)
  local side = dot(w, t) - b >= 0 and 1 or -1
  local d = {}
  for i = 1, #t do
    local ws = w[i] * side
    d[i] = ws > 0 and -t[i] or (ws < 0 and 1 - t[i] or 0)
  end
  return d
end

-- Exact solution for any n by a sorted walk over the radii where each
-- coordinate reaches the box (the reference's method, in plain Lua).
local function walk(t, w, b, norm)
  local c = dot(w, t) - b
  local sg = c >= 0 and 1 or -1
  c = c * sg
  local items, d, slope = {}, {}, 0
  for i = 1, #t do
    d[i] = 0
    local wi = w[i] * sg
    local aw = math.abs(wi)
    if norm == 'l2' and aw < 1e-8 then aw = 0 end
    if aw > 0 then
      local room = wi < 0 and 1 - t[i] or t[i]
      local rate = norm == 'l2' and aw or 1
      items[#items + 1] = { i = i, knee = room / rate, slope = aw * rate, cap = aw * room, rate = rate,
        room = room, dir = wi < 0 and 1 or -1 }
      slope = slope + aw * rate
    end
  end
  table.sort(items, function(p, q) return p.knee < q.knee end)
  local capped, s = 0, math.huge
  for _, it in ipairs(items) do
    if capped + it.knee * slope >= c then
      s = (c - capped) / slope
      break
    end
    capped, slope = capped + it.cap, slope - it.slope
  end
  for _, it in ipairs(items) do d[it.i] = it.dir * math.min(s * it.rate, it.room) end
  return d
end

-- ---- random problems --------------------------------------------------------

-- R problems of n coordinates, drawn so that some rows are infeasible, some
-- have zero weights, points on the box's faces and on the hyperplane.
local function problems(R, n, seed)
  local g = rl.Generator(seed)
  local t = rl.rand({ R, n }, { dtype = 'f64', generator = g })
  local faces = rl.rand({ R, n }, { dtype = 'f64', generator = g })
  t = rl.where(faces:lt(0.1), 0, rl.where(faces:gt(0.9), 1, t))
  local w = rl.randn({ R, n }, { dtype = 'f64', generator = g })
  w = rl.where(rl.rand({ R, n }, { dtype = 'f64', generator = g }):lt(0.15), 0, w)
  -- b: w.t shifted by a fraction of the reach of the box, either side
  local reach = w:abs():sum(2)
  local f = rl.rand({ R }, { dtype = 'f64', generator = g }) * 2.4 - 1.2
  local b = (w * t):sum(2) + f * reach * 0.5
  b = rl.where(rl.arange(R):remainder(17):eq(0), (w * t):sum(2), b) -- on the hyperplane
  return t:tolist(), w:tolist(), b:tolist(), t, w, b
end

local function close(a, b, tol, what)
  for i = 1, #a do
    assert(math.abs(a[i] - b[i]) <= tol,
      string.format('%s: coordinate %d is %.17g, expected %.17g', what, i, a[i], b[i]))
  end
end

describe('fab.project (onto {z : w.z = b} within [0, 1]^n)', function()
  it('l-inf: the least radius, on the hyperplane and in the box (brute force, f64)', function()
    local feasible, infeasible = 0, 0
    for n = 1, 6 do
      local T, W, Bv, t, w, b = problems(60, n, 10 + n)
      local D = fab.project(t, w, b, 'linf'):tolist()
      for r = 1, #T do
        local lam, d = linf_radius(T[r], W[r], Bv[r]), D[r]
        local what = string.format('n = %d, row %d', n, r)
        if lam then
          feasible = feasible + 1
          local z, m = {}, 0
          for i = 1, n do
            z[i] = T[r][i] + d[i]
            m = math.max(m, math.abs(d[i]))
            assert(z[i] >= -1e-12 and z[i] <= 1 + 1e-12, what .. ': left the box')
          end
          assert(math.abs(dot(W[r], z) - Bv[r]) <= 1e-9, what .. ': not on the hyperplane')
          assert(math.abs(m - lam) <= 1e-9, string.format('%s: radius %.17g, least %.17g', what, m, lam))
          -- the reference's choice among the minimisers: every coordinate
          -- moves min(lambda, its room) away from w's side
          local side = dot(W[r], T[r]) - Bv[r] >= 0 and 1 or -1
          for i = 1, n do
            local ws = W[r][i] * side
            local want = ws > 0 and -math.min(lam, T[r][i]) or (ws < 0 and math.min(lam, 1 - T[r][i]) or 0)
            assert(math.abs(d[i] - want) <= 1e-9, what .. ': not the reference minimiser')
          end
        else
          infeasible = infeasible + 1
          close(d, corner(T[r], W[r], Bv[r]), 1e-12, what .. ' (out of reach)')
        end
      end
    end
    assert.is_true(feasible > 100 and infeasible > 20, 'both kinds of rows were drawn')
  end)

  it('l2: the least-norm point, by enumeration of the faces (f64)', function()
    local feasible, infeasible = 0, 0
    for n = 1, 6 do
      local T, W, Bv, t, w, b = problems(60, n, 30 + n)
      local D = fab.project(t, w, b, 'l2'):tolist()
      for r = 1, #T do
        local want = l2_brute(T[r], W[r], Bv[r])
        local what = string.format('n = %d, row %d', n, r)
        if want then
          feasible = feasible + 1
          close(D[r], want, 1e-9, what)
        else
          infeasible = infeasible + 1
          close(D[r], corner(T[r], W[r], Bv[r]), 1e-12, what .. ' (out of reach)')
        end
      end
    end
    assert.is_true(feasible > 100 and infeasible > 20, 'both kinds of rows were drawn')
  end)

  for _, norm in ipairs { 'linf', 'l2' } do
    it(norm .. ': images of 784 and 3072 pixels, spread weights, f64 and f32 (exact sorted walk)', function()
      for _, case in ipairs { { 784, 'f64', 1e-10 }, { 3072, 'f64', 1e-10 }, { 784, 'f32', 2e-6 } } do
        local n, dt, tol = table.unpack(case)
        local g = rl.Generator(n)
        local R = 24
        local t = rl.rand({ R, n }, { dtype = dt, generator = g })
        -- weights over eight orders of magnitude: many radii close together
        local w = (rl.randn({ R, n }, { dtype = dt, generator = g }) * 3):exp()
            * rl.randn({ R, n }, { dtype = dt, generator = g }):sign()
        local b = (w * t):sum(2) - rl.rand({ R }, { dtype = dt, generator = g }) * w:abs():sum(2) * 0.6
        local D = fab.project(t, w, b, norm):double():tolist()
        local T, W, Bv = t:double():tolist(), w:double():tolist(), b:double():tolist()
        for r = 1, R do
          local want = walk(T[r], W[r], Bv[r], norm)
          local scale = 0
          for i = 1, n do scale = math.max(scale, math.abs(want[i])) end
          for i = 1, n do
            assert(math.abs(D[r][i] - want[i]) <= tol * math.max(scale, 1),
              string.format('%s %s n = %d row %d coordinate %d: %.9g vs %.9g', norm, dt, n, r, i, D[r][i], want[i]))
          end
        end
      end
    end)
  end
end)

-- ---- the attack ---------------------------------------------------------------

-- f(x) = W x + c on 1 x 4 x 4 images, f64: the distance to each boundary is
-- known in closed form.
local function linear_model(classes, seed)
  local m = nn.Sequential(nn.Flatten(), nn.Linear(16, classes, { dtype = 'f64' }))
  local g = rl.Generator(seed)
  rl.no_grad(function()
    m:get(2).weight:copy_(rl.randn({ classes, 16 }, { dtype = 'f64', generator = g }))
    m:get(2).bias:copy_(rl.randn({ classes }, { dtype = 'f64', generator = g }) * 0.5)
  end)
  return m
end


local function dists(adv, x, norm)
  local d = (adv - x):reshape(x.shape[1], -1)
  return norm == 'linf' and d:abs():max(2) or d:norm(2, 2)
end

describe('fab.attack', function()
  for _, norm in ipairs { 'linf', 'l2' } do
    it(norm .. ': on a linear model it finds the closest boundary point (within 1%)', function()
      local m = linear_model(3, 7)
      local x = rl.full({ 6, 1, 4, 4 }, 0.5, { dtype = 'f64' })
        + rl.rand({ 6, 1, 4, 4 }, { dtype = 'f64', generator = rl.Generator(8) }) * 0.02
      local z = m(x)
      local y = z:argmax(2)
      -- the least distance to any other class's region, unconstrained by the
      -- box (x is in its middle and the distances are small): margin over the
      -- dual norm of the difference of weight rows
      local W, Z, Y = m:get(2).weight:tolist(), z:tolist(), y:tolist()
      local want = {}
      for i = 1, 6 do
        local best = math.huge
        for j = 1, 3 do
          if j ~= Y[i] + 1 then
            local dn = 0
            for k = 1, 16 do
              local v = W[j][k] - W[Y[i] + 1][k]
              dn = norm == 'linf' and dn + math.abs(v) or dn + v * v
            end
            if norm == 'l2' then dn = math.sqrt(dn) end
            best = math.min(best, (Z[i][Y[i] + 1] - Z[i][j]) / dn)
          end
        end
        want[i] = best
      end
      local adv, robust = fab.attack(m, x, y, { eps = 10, norm = norm, early_stop = false })
      assert.are.same({ 0, 0, 0, 0, 0, 0 }, robust:tolist())
      local got = dists(adv, x, norm):tolist()
      for i = 1, 6 do
        assert(got[i] >= want[i] * (1 - 1e-9) and got[i] <= want[i] * 1.01,
          string.format('sample %d: distance %.6g, least %.6g', i, got[i], want[i]))
      end
      -- eps just below the least distance: nothing breaks
      local small = math.huge
      for i = 1, 6 do small = math.min(small, want[i]) end
      local adv2, robust2 = fab.attack(m, x, y, { eps = small * 0.99, norm = norm })
      assert.are.same({ 1, 1, 1, 1, 1, 1 }, robust2:tolist())
      assert.are.same(x:tolist(), adv2:tolist())
    end)
  end

  it('breaks a trained model within eps, as well as PGD does; flags agree with the model', function()
    local m, x, y = tiny_trained()
    for _, norm in ipairs { 'linf', 'l2' } do
      local eps = norm == 'linf' and 0.2 or 1.6
      local adv, robust = fab.attack(m, x, y, { eps = eps, norm = norm })
      assert.is_true(dists(adv, x, norm):max():item() <= eps * (1 + 1e-6))
      assert.is_true(adv:min():item() >= 0 and adv:max():item() <= 1)
      assert.are.same(m(adv):argmax(2):eq(y):tolist(), robust:tolist())
      local pgd = rl.attacks.pgd(m, x, y, { eps = eps, norm = norm == 'linf' and 'inf' or 2, steps = 20,
        step_size = eps / 8, generator = rl.Generator(2) })
      local r_fab = robust:double():mean():item()
      local r_pgd = m(pgd):argmax(2):eq(y):double():mean():item()
      assert(r_fab < 0.9, norm .. ': FAB-T broke too little: ' .. r_fab)
      assert(r_fab <= r_pgd + 0.02, string.format('%s: FAB-T %.2f vs PGD-20 %.2f', norm, r_fab, r_pgd))
      -- stopping a sample once broken changes no verdict
      local _, full = fab.attack(m, x, y, { eps = eps, norm = norm, early_stop = false })
      assert.are.same(robust:tolist(), full:tolist())
    end
  end)

  it('restarts start at random points of the generator; a seed repeats a run', function()
    local m, x, y = tiny_trained()
    local o = { eps = 0.15, restarts = 2, steps = 10, n_target_classes = 2 }
    o.generator = rl.Generator(4)
    local a1, r1 = fab.attack(m, x, y, o)
    o.generator = rl.Generator(4)
    local a2, r2 = fab.attack(m, x, y, o)
    assert.are.same(a1:tolist(), a2:tolist())
    assert.are.same(r1:tolist(), r2:tolist())
  end)

  it('points misclassified to begin with are not robust and stay as they are', function()
    local m, x, y = tiny_trained()
    local wrong = (y + 1):remainder(4)
    local adv, robust = fab.attack(m, x, wrong, { eps = 0.05 })
    local clean_ok = m(x):argmax(2):eq(wrong)
    assert.are.same(clean_ok:logical_and(robust):tolist(), robust:tolist())
  end)

  it("restores the model's mode, also when the model raises", function()
    local net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3, { dtype = 'f64' }))
    net:train()
    local calls = 0
    local inner = net.forward
    net.forward = function(self, v)
      calls = calls + 1
      if calls == 3 then error('boom') end
      return inner(self, v)
    end
    local x = rl.rand({ 2, 1, 4, 4 }, { dtype = 'f64' })
    local ok, e = pcall(fab.attack, net, x, rl.tensor({ 0, 1 }), { eps = 1, mode = 'eval' })
    assert.is_false(ok)
    check.has(tostring(e), 'boom')
    assert.is_true(net.training and net:get(2).training)
  end)

  it('bad input gets an error naming it', function()
    local m = linear_model(3, 1)
    local x = rl.rand({ 2, 1, 4, 4 }, { dtype = 'f64' })
    local y = rl.tensor({ 0, 1 })
    check.has(check.err_of(fab.attack, m, x, y, {}), 'fab: the option eps is required')
    check.has(check.err_of(fab.attack, m, x, y, { eps = 0.1, step = 3 }), "unknown option 'step'",
      "did you mean 'steps'")
    check.has(check.err_of(fab.attack, m, x, y, { eps = 0.1, norm = 1 }), 'fab: norm must be')
    check.has(check.err_of(fab.attack, m, x, y, { eps = 0.1, generator = 3 }), 'generator must be an rl.Generator')
    check.has(check.err_of(fab.attack, m, x, y, { eps = 0.1, n_target_classes = 3 }),
      'n_target_classes must be at most 2')
    check.has(check.err_of(fab.attack, m, x, rl.tensor({ 0 }), { eps = 0.1 }), 'fab: y must be i64 labels [2]')
    check.has(check.err_of(fab.attack, m, x, y, { eps = -1 }), 'eps must be >= 0')
  end)
end)

-- ---- the untargeted attack ------------------------------------------------------

-- The least distance from each row of x to another class's region of the
-- linear model m, unconstrained by the box, and the class of that region:
-- margin over the dual norm of the difference of weight rows, least over
-- all classes.
local function nearest_boundary(m, x, y, norm)
  local W, Z, Y = m:get(2).weight:tolist(), m(x):tolist(), y:tolist()
  local want, class = {}, {}
  for i = 1, #Z do
    local best, arg = math.huge, nil
    for j = 1, #W do
      if j ~= Y[i] + 1 then
        local dn = 0
        for k = 1, #W[j] do
          local v = W[j][k] - W[Y[i] + 1][k]
          dn = norm == 'linf' and dn + math.abs(v) or dn + v * v
        end
        if norm == 'l2' then dn = math.sqrt(dn) end
        local d = (Z[i][Y[i] + 1] - Z[i][j]) / dn
        if d < best then best, arg = d, j - 1 end
      end
    end
    want[i], class[i] = best, arg
  end
  return want, class
end

describe('fab.attack, untargeted (targeted = false)', function()
  for _, norm in ipairs { 'linf', 'l2' } do
    it(norm .. ': on a linear model of 6 classes it finds the closest boundary point of any class (within 1%)',
      function()
        local m = linear_model(6, 17)
        local n = 12
        local x = rl.full({ n, 1, 4, 4 }, 0.5, { dtype = 'f64' })
          + rl.rand({ n, 1, 4, 4 }, { dtype = 'f64', generator = rl.Generator(18) }) * 0.02
        local y = m(x):argmax(2)
        local want, class = nearest_boundary(m, x, y, norm)
        -- the box stays out of the way: every coordinate of x has more room
        -- than the least distance (l-inf), or than all of it (l2)
        for i = 1, n do assert(want[i] < 0.45, 'sample ' .. i .. ' is too far from its boundary') end
        local adv, robust = fab.attack(m, x, y, { eps = 10, norm = norm, targeted = false, early_stop = false })
        assert.are.same(rl.zeros({ n }, { dtype = 'u8' }):tolist(), robust:tolist())
        local got = dists(adv, x, norm):tolist()
        for i = 1, n do
          assert(got[i] >= want[i] * (1 - 1e-9) and got[i] <= want[i] * 1.01,
            string.format('sample %d: distance %.6g, least %.6g', i, got[i], want[i]))
        end
        -- one step picks the nearest hyperplane and lands eta beyond it,
        -- in the nearest class's region
        local adv1 = fab.attack(m, x, y, { eps = 10, norm = norm, targeted = false, steps = 1 })
        local got1, cls = dists(adv1, x, norm):tolist(), m(adv1):argmax(2):tolist()
        for i = 1, n do
          assert(math.abs(got1[i] - 1.05 * want[i]) <= 1e-9 * want[i],
            string.format('sample %d: first step at %.9g, want %.9g', i, got1[i], 1.05 * want[i]))
          assert(cls[i] == class[i], string.format('sample %d: class %d, nearest %d', i, cls[i], class[i]))
        end
        -- the targeted attack towards the runner-up class alone misses some
        -- of these: the nearest boundary is not always the runner-up's
        local _, r_t = fab.attack(m, x, y, { eps = 10, norm = norm, n_target_classes = 1, steps = 20 })
        local tgt = dists(fab.attack(m, x, y, { eps = 10, norm = norm, n_target_classes = 1 }), x, norm):tolist()
        local farther = 0
        for i = 1, n do if tgt[i] > want[i] * 1.01 then farther = farther + 1 end end
        assert.are.same(rl.zeros({ n }, { dtype = 'u8' }):tolist(), r_t:tolist())
        assert.is_true(farther > 0, 'some sample has its nearest boundary away from the runner-up class')
        -- eps just below the least distance: nothing breaks
        local small = math.huge
        for i = 1, n do small = math.min(small, want[i]) end
        local adv2, robust2 = fab.attack(m, x, y, { eps = small * 0.99, norm = norm, targeted = false, restarts = 2 })
        assert.are.same(rl.ones({ n }, { dtype = 'u8' }):tolist(), robust2:tolist())
        assert.are.same(x:tolist(), adv2:tolist())
      end)
  end

  -- Untargeted FAB is the weaker of the two (why AutoAttack's standard
  -- suite runs FAB-T, and its 'plus' suite runs FAB with 5 restarts): on
  -- this model, one run of it leaves 61% (l-inf) and 21% (l2) robust where
  -- FAB-T leaves 58% and 10%, and torchattacks 3.5.1's FAB leaves the very
  -- same points robust (100 of 100 verdicts agree, both norms).
  it('breaks a trained model within eps; with 5 restarts as well as PGD, near FAB-T; flags agree', function()
    local m, x, y = tiny_trained()
    for _, norm in ipairs { 'linf', 'l2' } do
      local eps = norm == 'linf' and 0.2 or 1.6
      local adv, robust = fab.attack(m, x, y, { eps = eps, norm = norm, targeted = false })
      assert.is_true(dists(adv, x, norm):max():item() <= eps * (1 + 1e-6))
      assert.is_true(adv:min():item() >= 0 and adv:max():item() <= 1)
      assert.are.same(m(adv):argmax(2):eq(y):tolist(), robust:tolist())
      local adv5, r5 = fab.attack(m, x, y, { eps = eps, norm = norm, targeted = false, restarts = 5,
        generator = rl.Generator(2) })
      assert.is_true(dists(adv5, x, norm):max():item() <= eps * (1 + 1e-6))
      assert.are.same(m(adv5):argmax(2):eq(y):tolist(), r5:tolist())
      local _, r_t = fab.attack(m, x, y, { eps = eps, norm = norm })
      local pgd = rl.attacks.pgd(m, x, y, { eps = eps, norm = norm == 'linf' and 'inf' or 2, steps = 20,
        step_size = eps / 8, generator = rl.Generator(2) })
      local r_fab, r_fab5 = robust:double():mean():item(), r5:double():mean():item()
      local r_fabt = r_t:double():mean():item()
      local r_pgd = m(pgd):argmax(2):eq(y):double():mean():item()
      assert(r_fab < 0.9, norm .. ': FAB broke too little: ' .. r_fab)
      assert(r_fab5 <= r_fab, 'restarts only add broken points')
      assert(r_fab5 <= r_pgd + 0.02 and r_fab5 <= r_fabt + 0.05,
        string.format('%s: FAB (5 restarts) %.2f vs FAB-T %.2f and PGD-20 %.2f', norm, r_fab5, r_fabt, r_pgd))
      -- stopping a sample once broken changes no verdict
      local _, full = fab.attack(m, x, y, { eps = eps, norm = norm, targeted = false, early_stop = false })
      assert.are.same(robust:tolist(), full:tolist())
    end
  end)

  it('restarts start at random points of the generator; a seed repeats a run; more restarts break more', function()
    local m, x, y = tiny_trained()
    local o = { eps = 0.15, restarts = 3, steps = 5, targeted = false }
    o.generator = rl.Generator(4)
    local a1, r1 = fab.attack(m, x, y, o)
    o.generator = rl.Generator(4)
    local a2, r2 = fab.attack(m, x, y, o)
    assert.are.same(a1:tolist(), a2:tolist())
    assert.are.same(r1:tolist(), r2:tolist())
    local _, r0 = fab.attack(m, x, y, { eps = 0.15, steps = 5, targeted = false })
    -- the first restart is the deterministic run: the others only add
    assert.are.same(r1:tolist(), r1:logical_and(r0):tolist())
  end)

  it('points misclassified to begin with are not robust and stay as they are', function()
    local m, x, y = tiny_trained()
    local wrong = (y + 1):remainder(4)
    local adv, robust = fab.attack(m, x, wrong, { eps = 0.05, targeted = false })
    local clean_ok = m(x):argmax(2):eq(wrong)
    assert.are.same(clean_ok:logical_and(robust):tolist(), robust:tolist())
    local stay = clean_ok:logical_not():view(-1, 1, 1, 1):expand_as(x)
    assert.are.same(x:masked_select(stay):tolist(), adv:masked_select(stay):tolist())
  end)

  it('bad input gets an error naming it', function()
    local m = linear_model(3, 1)
    local x = rl.rand({ 2, 1, 4, 4 }, { dtype = 'f64' })
    local y = rl.tensor({ 0, 1 })
    check.has(check.err_of(fab.attack, m, x, y, { eps = 0.1, targeted = 'no' }),
      'fab: targeted must be true or false')
    check.has(check.err_of(fab.attack, m, x, y, { eps = 0.1, targeted = false, n_target_classes = 2 }),
      'fab: n_target_classes applies to the targeted attack only')
    check.has(check.err_of(fab.attack, m, x, y, { targeted = false }), 'fab: the option eps is required')
    check.has(check.err_of(fab.attack, m, x, rl.tensor({ 0 }), { eps = 0.1, targeted = false }),
      'fab: y must be i64 labels [2]')
    check.has(check.err_of(fab.attack, m, x, y, { eps = 0.1, targeted = false, restarts = 0 }),
      'restarts must be >= 1')
  end)
end)

-- ---- against torchattacks ------------------------------------------------------

-- CNN001 (scripts/torch_ref.py's twin), freshly initialised, its last bias
-- shifted by the mean logits of the batch so that its answers spread over
-- the classes; 20 uniform images.  Both sides run untargeted FAB, 5 steps,
-- one restart (from x: no random draw), and must agree on which points
-- break within eps on 19 of 20 at least.  eps sits in a gap between the
-- distances rllua finds, so that a rounding difference cannot move a point
-- across it.
describe('untargeted FAB against torchattacks 3.5.1 (FAB, multi_targeted = False)', function()
  local cases = { { 'linf', 0.0036 }, { 'l2', 0.077 } }
  for _, case in ipairs(cases) do
    local norm, eps = case[1], case[2]
    it(string.format('%s, eps %g: CNN001, 20 points, the same verdict on 95%% or more', norm, eps), function()
      local dir = shell.tmpdir()
      finally(function() os.execute('rm -rf ' .. shell.quote(dir)) end)
      rl.manual_seed(3)
      local m = rl.models.get('CNN001')
      m:eval()
      local x = rl.rand({ 20, 1, 28, 28 }, { generator = rl.Generator(7) })
      rl.no_grad(function() m.fc2.bias:sub_(m(x):mean(1)) end)
      local y = rl.no_grad(function() return m(x):argmax(2) end)
      m:save(dir .. '/w.safetensors')
      rl.save(dir .. '/data.safetensors', { x = x, y = y })
      local cmd = string.format('/usr/bin/python3 spec/helpers/torchattacks_ref.py CNN001 %s %s --eps %.17g'
        .. ' --attack fab --norm %s --steps 5 --n-classes 10 2>%s',
        shell.quote(dir .. '/w.safetensors'), shell.quote(dir .. '/data.safetensors'), eps, norm,
        shell.quote(dir .. '/err'))
      local p = io.popen(cmd)
      local out = p:read('a')
      local _, _, code = p:close()
      local ef = io.open(dir .. '/err')
      local err = ef and ef:read('a') or ''
      if ef then ef:close() end
      if code == 3 or code == 127 then -- torch or torchattacks missing; no /usr/bin/python3
        return pending(err:match('[^\n]+') or 'torchattacks_ref.py could not run: the cross-check was skipped')
      end
      assert(code == 0, 'torchattacks_ref.py failed (' .. tostring(code) .. '): ' .. err .. out)
      local ref = json.decode(out)
      assert.are.equal(1, ref.clean_accuracy)
      local _, robust = fab.attack(m, x, y, { eps = eps, norm = norm, targeted = false, steps = 5 })
      local mine, agree, broke = robust:tolist(), 0, 0
      for i = 1, 20 do
        if mine[i] == ref.robust[i] then agree = agree + 1 end
        broke = broke + (1 - mine[i])
      end
      assert(broke >= 5 and broke <= 15, 'eps leaves both verdicts in play: ' .. broke .. ' of 20 broke')
      assert(agree >= 19, string.format('%s: the same verdict on %d of 20 (rllua %s, torchattacks %s)', norm,
        agree, table.concat(mine, ''), table.concat(ref.robust, '')))
    end)
  end
end)
