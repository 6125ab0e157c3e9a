-- attacks_spec.lua - the attack core (rl.attacks.run) and APGD on it: the
-- DLR losses against their definitions, APGD's checkpoints, APGD against
-- PGD on a naturally trained tiny model, the ball and the box, the
-- model's mode after an error, and the core's option checks.  (PGD, FGSM,
-- TRADES, LLR and the Lipschitz estimate on the core: methods_spec and
-- reference_spec.)
local rl = require 'rl'
local nn, F = rl.nn, rl.F

-- A tiny MLP trained naturally on a fixed linear teacher: 5 classes,
-- 4x4 inputs in [0, 1].  Clean accuracy well above chance, no robustness.
local function trained()
  rl.manual_seed(11)
  local g = rl.Generator(12)
  local teacher = rl.randn({ 16, 5 }, { generator = g })
  local x = rl.rand({ 256, 1, 4, 4 }, { generator = g })
  local y = (x:view(256, 16) - 0.5):matmul(teacher):argmax(2)
  local m = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 5))
  local opt = rl.optim.SGD(m:parameters(), { lr = 0.5, momentum = 0.9 })
  m:train()
  for _ = 1, 300 do
    opt:zero_grad()
    F.cross_entropy(m(x), y):backward()
    opt:step()
  end
  m:eval()
  return m, x:narrow(1, 1, 64):contiguous(), y:narrow(1, 1, 64):contiguous()
end

local function acc(m, x, y)
  return rl.no_grad(function() return m(x):argmax(2):eq(y):double():mean():item() end)
end

local function in_ball(xa, x, eps, norm)
  local B = x.shape[1]
  local d = (xa - x):view(B, -1)
  local r = norm == 'inf' and d:abs():max(2) or d:norm(2, 2)
  return r:max():item() <= eps * (1 + 1e-5) + 1e-6 and xa:min():item() >= 0 and xa:max():item() <= 1
end

describe('the DLR loss', function()
  -- rows: true class on top; true class second; a tie-free shuffle
  local z = rl.tensor({ { 5, 1, 3, 0, 2 }, { 1, 4, 0.5, 3.5, -1 }, { -2, 0, 7, 1, 2.5 } }, 'f64')
  local y = rl.tensor { 0, 3, 1 }
  local rows = z:tolist()

  local function sorted(r)
    local s = { table.unpack(r) }
    table.sort(s, function(a, b) return a > b end)
    return s
  end

  it('untargeted: -(z_y - max_{i ~= y} z_i) / (z_pi1 - z_pi3 + 1e-12)', function()
    local got = rl.attacks.dlr(z, y):tolist()
    for i, r in ipairs(rows) do
      local yi = y:tolist()[i] + 1
      local other = -math.huge
      for k, v in ipairs(r) do if k ~= yi then other = math.max(other, v) end end
      local s = sorted(r)
      local want = -(r[yi] - other) / (s[1] - s[3] + 1e-12)
      assert.is_true(math.abs(got[i] - want) < 1e-12, string.format('row %d: %.17g vs %.17g', i, got[i], want))
    end
  end)

  it('targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)', function()
    local t = rl.tensor { 2, 1, 4 }
    local got = rl.attacks.dlr(z, y, t):tolist()
    for i, r in ipairs(rows) do
      local yi, ti = y:tolist()[i] + 1, t:tolist()[i] + 1
      local s = sorted(r)
      local want = -(r[yi] - r[ti]) / (s[1] - (s[3] + s[4]) / 2 + 1e-12)
      assert.is_true(math.abs(got[i] - want) < 1e-12, string.format('row %d: %.17g vs %.17g', i, got[i], want))
    end
  end)

  it('has the gradient of its definition (the sorted logits are gathered, not detached)', function()
    local zr = z:clone():requires_grad_()
    local g = rl.grad(rl.attacks.dlr(zr, y):sum(), zr):tolist()[2]
    -- row 2: y = 3 (3.5) under the top z_2 = 4, pi3 = z_1 = 1:
    -- f = -(z_4 - z_2) / (z_2 - z_1), so df/dz_4 = -1/3, df/dz_2 = 2.5/9,
    -- df/dz_1 = 0.5/9, and no gradient to z_3 and z_5
    local want = { 0.5 / 9, 2.5 / 9, 0, -1 / 3, 0 }
    for k = 1, 5 do
      assert.is_true(math.abs(g[k] - want[k]) < 1e-9, string.format('dz_%d: %.17g vs %.17g', k, g[k], want[k]))
    end
  end)

  it('needs 3 classes (4 when targeted)', function()
    assert.has_error(function() rl.attacks.dlr(rl.zeros(2, 2), rl.tensor { 0, 1 }) end)
    assert.has_error(function() rl.attacks.dlr(rl.zeros(2, 3), rl.tensor { 0, 1 }, rl.tensor { 1, 0 }) end)
  end)
end)

describe('APGD', function()
  it('checkpoints for 100 steps: 22, 41, 57, 70, 80, 87, 93, 99 (p_j of the paper)', function()
    local want = { 22, 41, 57, 70, 80, 87, 93, 99 }
    assert.are.same(want, rl.attacks.apgd_checkpoints(100))
    local p, prev, from_p = 0.22, 0, {}
    while p <= 1 do
      from_p[#from_p + 1] = math.floor(p * 100 + 0.5)
      p, prev = p + math.max(p - prev - 0.03, 0.06), p
    end
    assert.are.same(want, from_p)
    assert.are.same({ 2, 3, 4, 5, 6, 7, 8, 9, 10 }, rl.attacks.apgd_checkpoints(10))
  end)

  local m, x, y = trained()
  local eps = 0.3

  it('APGD-CE breaks a naturally trained model, at most as robust as under PGD-10', function()
    local clean = acc(m, x, y)
    assert.is_true(clean > 0.8, 'clean accuracy ' .. clean)
    local xp = rl.attacks.pgd(m, x, y, { eps = eps, steps = 10, step_size = 2 * eps / 10, generator = rl.Generator(3) })
    local xa, info = rl.attacks.apgd(m, x, y, { eps = eps, steps = 50, seed = 3 })
    local pgd, apgd = acc(m, xp, y), acc(m, xa, y)
    assert.is_true(apgd <= pgd, string.format('APGD %.3f > PGD-10 %.3f', apgd, pgd))
    assert.is_true(apgd < 0.2 * clean, string.format('APGD leaves %.3f of %.3f', apgd, clean))
    assert.is_true(in_ball(xa, x, eps, 'inf'))
    -- info.broken is exactly the samples x_adv gets wrong
    local wrong = rl.no_grad(function() return m(xa):argmax(2):ne(y) end)
    assert.are.same(wrong:tolist(), info.broken:tolist())
  end)

  it('APGD-DLR, l2 and APGD-T stay in the ball and the box and break points', function()
    local clean = acc(m, x, y)
    local xd = rl.attacks.apgd(m, x, y, { eps = eps, loss = 'dlr', steps = 30, seed = 1 })
    assert.is_true(in_ball(xd, x, eps, 'inf') and acc(m, xd, y) < clean)
    local x2 = rl.attacks.apgd(m, x, y, { eps = 1.5, norm = 2, steps = 30, seed = 1 })
    assert.is_true(in_ball(x2, x, 1.5, 2) and acc(m, x2, y) < clean)
    local xt, it = rl.attacks.apgd(m, x, y, { eps = eps, loss = 'dlr', targeted = true, steps = 20, seed = 1 })
    assert.is_true(in_ball(xt, x, eps, 'inf') and acc(m, xt, y) < clean)
    assert.are.equal(1 - acc(m, xt, y), it.broken:double():mean():item())
    assert.has_error(function()
      rl.attacks.apgd(m, x, y, { eps = eps, targeted = true, n_target_classes = 5 })
    end, 'apgd: n_target_classes must be at most K - 1 = 4, got 5')
  end)

  it('is reproducible from its seed, and more steps never do worse here', function()
    local a = rl.attacks.apgd(m, x, y, { eps = 0.1, steps = 20, seed = 5 })
    local b = rl.attacks.apgd(m, x, y, { eps = 0.1, steps = 20, seed = 5 })
    assert.are.same(a:tolist(), b:tolist())
    local c = rl.attacks.apgd(m, x, y, { eps = 0.1, steps = 60, restarts = 2, seed = 5 })
    assert.is_true(acc(m, c, y) <= acc(m, a, y))
  end)

  it('a clean misclassified sample counts as broken and keeps x', function()
    local pred = rl.no_grad(function() return m(x):argmax(2) end)
    local yw = rl.where(pred:eq(y), y, (pred + 1) % 5) -- make every wrong sample stay wrong
    yw[1] = (pred[1]:item() + 1) % 5 -- and sample 1 wrong
    local xa, info = rl.attacks.apgd(m, x, yw, { eps = eps, steps = 10, seed = 1 })
    assert.are.equal(1, info.broken[1]:item())
    assert.are.same(x[1]:tolist(), xa[1]:tolist())
  end)
end)

describe('the attack core', function()
  local m, x, y = trained()

  it('restores each module\'s mode after an error raised inside the objective', function()
    local net = nn.Sequential(nn.Flatten(), nn.Linear(16, 5), nn.Dropout(0.5))
    net:train()
    net:get(3).training = false
    local ok, msg = pcall(rl.attacks.run, net, x, {
      eps = 0.1, mode = 'eval', objective = function() error('objective broke') end,
    })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('objective broke', 1, true))
    assert.is_true(net.training and net:get(2).training)
    assert.is_false(net:get(3).training)
    -- and inside APGD's loss (a model that raises on its third forward)
    local calls = 0
    local bad = setmetatable({
      modules = function() return net:modules() end,
      train = function(_, on) net:train(on) end,
    }, { __index = net, __call = function(_, v)
      calls = calls + 1
      if calls == 3 then error('model broke') end
      return net(v)
    end })
    net:train()
    assert.has_error(function() rl.attacks.apgd(bad, x, y, { eps = 0.1, steps = 5 }) end, 'model broke')
    assert.is_true(net.training and net:get(2).training and net:get(3).training)
  end)

  it('runs PGD: the core with ce, sign steps and a uniform start is attacks.pgd bit for bit', function()
    local a = rl.attacks.pgd(m, x, y, { eps = 0.1, generator = rl.Generator(9), restarts = 2, steps = 4 })
    local b = rl.attacks.run(m, x, { objective = 'ce', y = y, eps = 0.1, start = 'uniform', steps = 4,
      restarts = 2, generator = rl.Generator(9) })
    assert.are.same(a:tolist(), b:tolist())
  end)

  it('takes any per-sample objective of (logits, x\'), and keeps the best iterate', function()
    -- climb the logit of class 2: the kept point's value is the best seen
    local obj = function(z) return z:select(2, 3) end
    local xa, info = rl.attacks.run(m, x, { objective = obj, eps = 0.2, steps = 5, step_size = 0.05,
      keep = 'loss' })
    local final = rl.no_grad(function() return m(xa):select(2, 3) end)
    assert.is_true((final - info.loss):abs():max():item() < 1e-5)
    assert.is_true((info.loss - rl.no_grad(function() return m(x):select(2, 3) end)):min():item() > 0)
  end)

  it('stop_broken spends no work on samples already broken', function()
    local seen = 0
    local spy = setmetatable({
      modules = function() return m:modules() end,
      train = function(_, on) m:train(on) end,
    }, { __index = m, __call = function(_, v)
      seen = seen + v.shape[1]
      return m(v)
    end })
    local _, info = rl.attacks.run(spy, x, { objective = 'ce', y = y, eps = 0.3, step_size = 0.1, steps = 3,
      start = 'uniform', restarts = 3, stop_broken = true, generator = rl.Generator(1) })
    local B = x.shape[1]
    -- a full batch would be 1 clean pass + 3 restarts x (3 steps + 1 check) = 13 B
    assert.is_true(seen < 13 * B, string.format('%d forwarded samples', seen))
    assert.are.same(rl.no_grad(function() return m(x):argmax(2):ne(y) end):logical_or(info.broken):tolist(),
      info.broken:tolist())
  end)

  it('checks its options: unknown keys, names, shapes', function()
    local function msg(o)
      local ok, e = pcall(rl.attacks.run, m, x, o)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.truthy(msg({ objective = 'ce', y = y, eps = 0.1, stpes = 3 }):find("did you mean 'steps'", 1, true))
    assert.truthy(msg({ objective = 'hinge', y = y, eps = 0.1 }):find("objective must be 'ce'", 1, true))
    assert.truthy(msg({ objective = 'ce', eps = 0.1 }):find("needs opts.y", 1, true))
    assert.truthy(msg({ objective = 'ce', y = y, eps = 0.1, norm = 1 }):find("norm must be 'linf' ('inf', math.huge) or 'l2' (2), got 1", 1, true))
    assert.truthy(msg({ objective = 'ce', y = y, eps = 0.1, rule = 'sign', norm = 2 }):find('l-inf step', 1, true))
    assert.truthy(msg({ objective = 'ce', y = y, eps = 0.1, start = rl.zeros(2, 2) }):find("batch's shape", 1, true))
    assert.truthy(msg({ objective = 'dlr', y = y, eps = 0.1, targeted = true }):find('needs opts.target', 1, true))
    assert.truthy(msg({ objective = 'ce', y = y }):find('eps is required', 1, true))
    local ok, e = pcall(rl.attacks.pgd, m, x, y, { eps = 0.1, setps = 3 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("pgd: unknown option 'setps'", 1, true))
    ok, e = pcall(rl.attacks.apgd, m, x, y, { eps = 0.1, loss = 'hinge' })
    assert.truthy(tostring(e):find("loss must be one of", 1, true))
  end)

  -- images in 0..255 against the default box [0, 1] were clipped into it
  -- first: the "adversarial" batch lay 250 away from x at eps 0.1
  it('refuses x outside the box it clips to, and a box with lo >= hi', function()
    local X = x * 255
    for _, c in ipairs {
      { 'pgd', function() return rl.attacks.pgd(m, X, y, { eps = 0.1, steps = 1 }) end },
      { 'fgsm', function() return rl.attacks.fgsm(m, X, y, { eps = 0.1 }) end },
      { 'apgd', function() return rl.attacks.apgd(m, X, y, { eps = 0.1, steps = 2 }) end },
      { 'autoattack', function() return rl.attacks.autoattack(m, X, y, { eps = 0.1 }) end },
      { 'lipschitz', function() return rl.metrics.lipschitz(m, X, { eps = 0.1 }) end },
    } do
      local ok, e = pcall(c[2])
      assert.is_false(ok, c[1])
      assert.truthy(tostring(e):find(c[1] .. ': x must lie in the box [lo, hi] = [0, 1] the attack clips to; ' ..
        'its values span [', 1, true), tostring(e))
    end
    local ok, e = pcall(rl.attacks.pgd, m, x, y, { eps = 0.1, steps = 1, lo = 1, hi = 0 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find('pgd: lo (1) must be below hi (0)', 1, true), tostring(e))
    -- a box of the images' own range is fine
    local xa = rl.attacks.pgd(m, X, y, { eps = 25, steps = 1, lo = 0, hi = 255 })
    assert.is_true((xa - X):abs():max():item() <= 25 + 1e-3)
  end)

  -- the check reads x's span from the device, a host wait at every attack
  -- (AT's and TRADES' inner ones too); a loader's batch is in [0, 1] by
  -- construction and skips it until its storage is written in place
  it("skips the box check for a loader's batch until it is written in place", function()
    local ds = { name = 'box', x = rl.rand({ 8, 1, 4, 4 }):mul(255):byte(), y = rl.zeros({ 8 }, { dtype = 'i64' }) }
    function ds:size() return 8 end
    local xb = rl.data.loader(ds, { batch = 8 }):get(rl.arange(8), 1, 1)
    local yb = m(xb):argmax(2)
    assert.is_true(xb:min():item() >= 0 and xb:max():item() <= 1)
    rl.attacks.pgd(m, xb, yb, { eps = 0.1, steps = 1 })
    local v = xb:version()
    -- a mark the span contradicts shows the check really is skipped
    local options = require 'rl.options'
    local X = options.mark_box(x * 255, 0, 1)
    rl.attacks.pgd(m, X, y, { eps = 0.1, steps = 1 })
    -- a box the mark does not fit inside is still checked
    assert.has_error(function() rl.attacks.pgd(m, X, y, { eps = 0.1, steps = 1, lo = 0, hi = 0.5 }) end)
    -- written in place, directly or through a view, the batch is checked again
    for _, write in ipairs {
      function(t) t:mul_(255) end,
      function(t) t:narrow(1, 2, 1):add_(3) end,
      function(t) t:copy_(t * 255) end,
      function(t) t:fill_(2) end,
    } do
      local t = options.mark_box(xb:clone(), 0, 1)
      rl.attacks.pgd(m, t, yb, { eps = 0.1, steps = 1 })
      write(t)
      local ok, e = pcall(rl.attacks.pgd, m, t, yb, { eps = 0.1, steps = 1 })
      assert.is_false(ok)
      assert.truthy(tostring(e):find('pgd: x must lie in the box', 1, true), tostring(e))
    end
    assert.are.equal(v, xb:version()) -- the attacks never wrote x
  end)

  -- attack refusals carried no position; the methods' gave the user's line
  it("raises a refusal at the caller's line", function()
    for _, c in ipairs {
      { function() local v = rl.attacks.pgd(m, x, y, { eps = 0.1, step = 3 }) return v end, "pgd: unknown option 'step'" },
      { function() local v = rl.attacks.apgd(m, x, y, { eps = 0.1, loss = 'cw' }) return v end, 'apgd: loss must be' },
      { function() local v = rl.attacks.fgsm(m, x, y, { eps = -1 }) return v end, 'fgsm: eps must be >= 0' },
      { function() local v = rl.attacks.run(m, x, { eps = 0.1, objective = 'l1' }) return v end, 'attacks.run: objective' },
      { function() local v = rl.metrics.lipschitz(m, x, { eps = 0.1, stpes = 3 }) return v end, "lipschitz: unknown option 'stpes'" },
      { function() local v = rl.metrics.accuracy(m, x, y:double()) return v end, 'accuracy: y must be i64 labels' },
    } do
      local line = debug.getinfo(c[1], 'S').linedefined
      local ok, e = pcall(c[1])
      assert.is_false(ok)
      assert.truthy(tostring(e):find('attacks_spec.lua:' .. line .. ': ' .. c[2], 1, true), tostring(e))
    end
  end)

  -- a tester's findings: a seed taken and ignored, an infinite radius
  -- giving NaN points, a target climbed by an untargeted attack, labels
  -- out of range counted wrong, a misspelt norm run as l-inf, options the
  -- attack does not take accepted
  it('metrics honour seed; attacks refuse what they would get wrong', function()
    local a = rl.metrics.adv_examples(m, x, y, { eps = 0.3, seed = 3, steps = 1 })
    local b = rl.metrics.adv_examples(m, x, y, { eps = 0.3, seed = 3, steps = 1 })
    assert.are.equal(0, (a - b):abs():max():item())
    local function once() local done return function() if not done then done = true return x, y end end end
    local e1 = rl.metrics.evaluate(m, once(), { eps = 0.3, adv = true, lipschitz_max = true, seed = 1 })
    local e2 = rl.metrics.evaluate(m, once(), { eps = 0.3, adv = true, lipschitz_max = true, seed = 1 })
    assert.are.same(e1, e2)
    for _, c in ipairs {
      { function() return rl.attacks.pgd(m, x, y, { eps = math.huge }) end, 'pgd: eps must be a finite number, got inf' },
      { function() return rl.attacks.apgd(m, x, y, { eps = 0 / 0 }) end, 'apgd: eps must be a finite number' },
      { function() return rl.attacks.run(m, x, { objective = 'ce', y = y, target = (y + 1) % 5, eps = 0.3 }) end,
        'attacks.run: target is for targeted = true' },
      { function() return rl.attacks.apgd(m, x, y, { eps = 0.1, n_target_classes = 3 }) end,
        'apgd: n_target_classes is for targeted = true' },
      { function() return rl.metrics.accuracy(m, x, y + 10) end,
        "accuracy: the labels must be in [0, 5) for the model's 5 outputs; they span [10, " },
      { function() return rl.metrics.adv_examples(m, x, y, { eps = 0.3, attack = 'autoattack', norm = 'l1' }) end,
        "metrics.adv_examples: norm must be 'linf'" },
      { function() return rl.metrics.adv_examples(m, x, y, { eps = 0.3, attack = 'autoattack', steps = 3 }) end,
        "metrics.adv_examples: steps is for attack pgd or multitarget, not 'autoattack'" },
      { function() return rl.metrics.adv_accuracy(m, x, y, { eps = 0.3, checks = true }) end,
        "metrics.adv_accuracy: checks is for attack autoattack, not 'pgd'" },
      { function() return rl.metrics.adv_examples(m, x, y, { eps = 0.3, seed = 1, generator = rl.Generator(1) }) end,
        'metrics.adv_examples: give seed or generator, not both' },
      { function() return rl.attacks.multi_targeted(m, x, y, { eps = 0.1, classes = 0 }) end,
        'multi_targeted: classes must be >= 2, got 0' },
      { function() return rl.attacks.multi_targeted(m, x, y, { eps = 0.1, classes = 9 }) end,
        "multi_targeted: classes (9) must be at most the model's 5 outputs" },
      { function() return rl.attacks.multi_targeted(m, x, y, { eps = 0.1, targeted = false }) end,
        "multi_targeted: unknown option 'targeted'" },
      { function() return rl.metrics.lipschitz(m, x, { eps = 0.1, batch = 0 }) end, 'lipschitz: batch must be >= 1, got 0' },
      { function() return rl.metrics.lipschitz(m, x, { eps = 0.1, steps = -1 }) end, 'lipschitz: steps must be >= 0' },
    } do
      local ok, e = pcall(c[1])
      assert.is_false(ok, c[2])
      assert.truthy(tostring(e):find(c[2], 1, true), tostring(e))
    end
    -- with no steps, a given (or normal) start is the result: projected
    -- onto the ball and the box
    local far = x:clone():fill_(0.5)
    for _, norm in ipairs { 'linf', 'l2' } do
      local s = rl.attacks.run(m, x, { objective = 'ce', y = y, eps = 0.1, start = far, steps = 0, norm = norm })
      assert.is_true(in_ball(s, x, 0.1, norm == 'linf' and 'inf' or 2), norm)
    end
  end)

  -- a function failed with "attempt to index a function value" in attacks.lua
  it('refuses a model that is not a module, naming the caller', function()
    local f = function(t) return m(t) end
    for _, c in ipairs {
      { 'pgd', function() return rl.attacks.pgd(f, x, y, { eps = 0.1 }) end },
      { 'fgsm', function() return rl.attacks.fgsm(f, x, y, { eps = 0.1 }) end },
      { 'apgd', function() return rl.attacks.apgd(f, x, y, { eps = 0.1 }) end },
      { 'attacks.run', function() return rl.attacks.run(f, x, { eps = 0.1, y = y, objective = 'ce' }) end },
      { 'multi_targeted', function() return rl.attacks.multi_targeted(f, x, y, { eps = 0.1 }) end },
      { 'autoattack', function() return rl.attacks.autoattack(f, x, y, { eps = 0.1 }) end },
      { 'accuracy', function() return rl.metrics.accuracy(f, x, y) end },
      { 'metrics.adv_examples', function() return rl.metrics.adv_accuracy(f, x, y, { eps = 0.1 }) end },
      { 'lipschitz', function() return rl.metrics.lipschitz(f, x, { eps = 0.1 }) end },
      { 'metrics.evaluate', function() return rl.metrics.evaluate(f, function() end) end },
    } do
      local ok, e = pcall(c[2])
      assert.is_false(ok, c[1])
      assert.truthy(tostring(e):find(c[1] .. ': model must be an rl.nn module, got a function (to attack a ' ..
        'function, make it a module', 1, true), tostring(e))
    end
    local ok, e = pcall(rl.attacks.pgd, 'CNN001', x, y, { eps = 0.1 })
    assert.truthy(tostring(e):find("pgd: model must be an rl.nn module, got the string 'CNN001'", 1, true), tostring(e))
  end)

  it("metrics.accuracy refuses labels that are not [B] (a [B, 1] broadcast to an accuracy of 2)", function()
    local pred = m(x):argmax(2)
    assert.are.equal(1, rl.metrics.accuracy(m, x, pred))
    local ok, e = pcall(rl.metrics.accuracy, m, x, pred:view(-1, 1))
    assert.is_false(ok)
    assert.truthy(tostring(e):find('accuracy: y must be i64 labels [' .. x.shape[1] .. '], got an i64 tensor', 1, true),
      tostring(e))
  end)
end)
