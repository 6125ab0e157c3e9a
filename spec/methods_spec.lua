-- methods_spec.lua - every training objective against the same quantity
-- computed step by step with plain tensor ops (f64, a tiny fixed model, the
-- same random draws), the attacks' invariants, and the Lipschitz estimate
-- of a linear model against its analytic value.
local rl = require 'rl'
local nn, F = rl.nn, rl.F

local function tiny()
  local m = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, { dtype = 'f64' }))
  rl.no_grad(function()
    m:get(2).weight:copy_(rl.arange(60):view(5, 12):double():sin())
    m:get(2).bias:copy_(rl.tensor({ 0.1, -0.2, 0.3, 0, 0.05 }, 'f64'))
  end)
  return m
end

local function batch()
  local x = (rl.arange(48):view(4, 1, 3, 4):double() * 0.37):sin() * 0.3 + 0.5
  return x, rl.tensor { 1, 0, 4, 2 }
end

local EPS = 0.1

-- Pi: the eps-ball around x and the [0, 1] box, written out
local function project(v, x, eps)
  return v:maximum(x - eps):minimum(x + eps):clamp(0, 1)
end

local function grad_of(f, v)
  local vr = v:detach():requires_grad_()
  return rl.grad(f(vr), vr)
end

local function ce_sum(m, x, y) return F.cross_entropy(m(x), y, 'sum') end

local function kl_sum(logq, p) -- sum p (log p - log q), by hand
  return (p * (p:log() - logq)):sum()
end

local function close(a, b, tol)
  return math.abs(a - b) <= (tol or 1e-10) * math.max(1, math.abs(b))
end

describe('training objectives, step by step', function()
  local m, x, y = tiny(), batch()

  it('natural is CE summed over the batch', function()
    local loss = rl.methods.natural(m, x, y)
    local logits = m(x)
    local manual = 0
    local lp = (logits - logits:logsumexp(2, true)):tolist()
    for i, yi in ipairs(y:tolist()) do manual = manual - lp[i][yi + 1] end
    assert.is_true(close(loss:item(), manual))
  end)

  it('AT: PGD-10, step eps/5, uniform random start, then CE_sum on x\'', function()
    local loss = rl.methods.at(m, x, y, { eps = EPS, generator = rl.Generator(5) })
    local g = rl.Generator(5)
    local xa = (x + rl.rand(x.shape, { dtype = 'f64', generator = g }) * (2 * EPS) - EPS):clamp(0, 1)
    for _ = 1, 10 do
      local gr = grad_of(function(v) return ce_sum(m, v, y) end, xa)
      xa = project(xa + gr:sign() * (EPS / 5), x, EPS)
    end
    assert.is_true(close(loss:item(), ce_sum(m, xa, y):item()))
  end)

  it('RST(lambda): CE_sum(f(x)) + lambda CE_sum(f(x\'))', function()
    local loss = rl.methods.rst(m, x, y, { eps = EPS, lambda = 2, generator = rl.Generator(6) })
    local g = rl.Generator(6)
    local xa = (x + rl.rand(x.shape, { dtype = 'f64', generator = g }) * (2 * EPS) - EPS):clamp(0, 1)
    for _ = 1, 10 do
      local gr = grad_of(function(v) return ce_sum(m, v, y) end, xa)
      xa = project(xa + gr:sign() * (EPS / 5), x, EPS)
    end
    assert.is_true(close(loss:item(), ce_sum(m, x, y):item() + 2 * ce_sum(m, xa, y):item()))
  end)

  it('RST forwards x\' before x, as the reference (batch-norm running statistics)', function()
    local function net()
      rl.manual_seed(3)
      return nn.Sequential(nn.Conv2d(1, 2, 2, { dtype = 'f64' }), nn.BatchNorm2d(2, { dtype = 'f64' }),
        nn.ReLU(), nn.Flatten(), nn.Linear(12, 5, { dtype = 'f64' }))
    end
    local a = net()
    a:train()
    rl.methods.rst(a, x, y, { eps = EPS, lambda = 2, generator = rl.Generator(6) })
    local function by_hand(adv_first)
      local b = net()
      b:train()
      local xa = rl.attacks.pgd(b, x, y, { eps = EPS, steps = 10, step_size = EPS / 5, random_start = true,
        mode = 'train', generator = rl.Generator(6) })
      if adv_first then b(xa); b(x) else b(x); b(xa) end
      return b:get(2).running_mean
    end
    local ra = a:get(2).running_mean
    assert.is_true((ra - by_hand(true)):abs():max():item() < 1e-15)
    assert.is_true((ra - by_hand(false)):abs():max():item() > 1e-6)
  end)

  it('TRADES(beta): KL attack from x + 0.001 N(0,1), then CE + beta KL', function()
    local loss = rl.methods.trades(m, x, y, { eps = EPS, beta = 3, generator = rl.Generator(7) })
    local g = rl.Generator(7)
    local p = F.softmax(m(x), 2):detach()
    local xa = x + rl.randn(x.shape, { dtype = 'f64', generator = g }) * 0.001
    for _ = 1, 10 do
      local gr = grad_of(function(v) return kl_sum(F.log_softmax(m(v), 2), p) end, xa)
      xa = project(xa + gr:sign() * (2 * EPS / 10), x, EPS)
    end
    local want = ce_sum(m, x, y):item() + 3 * kl_sum(F.log_softmax(m(xa), 2), p):item()
    assert.is_true(close(loss:item(), want))
    -- gradients flow through p(x) too: the loss's parameter gradient differs
    -- from the one with p(x) detached
    local w = m:get(2).weight
    local g1 = rl.grad(loss, w)
    local detached = ce_sum(m, x, y) + kl_sum(F.log_softmax(m(xa), 2), p) * 3
    local g2 = rl.grad(detached, w)
    assert.is_true((g1 - g2):abs():max():item() > 1e-8)
  end)

  it('GR: finite differences along the normalised input gradient (with the quirk)', function()
    local loss, _, info = rl.methods.gr(m, x, y, {})
    local l = F.cross_entropy(m(x), y, 'none')
    local gx = grad_of(function(v) return F.cross_entropy(m(v), y, 'none'):sum() end, x)
    local v = gx / gx:view(4, -1):norm(2, 2):view(4, 1, 1, 1)
    local d = F.cross_entropy(m(x + v), y, 'none') - l
    local value = l:sum():item() + (d * d):sum():item() / 2
    assert.is_true(close(info.value, value))
    assert.is_true(close(loss:item(), value + l:sum():item())) -- 2 sum(l) + lambda sum(d^2)/2
    local textbook = rl.methods.gr(m, x, y, { quirks = false })
    assert.is_true(close(textbook:item(), value))
  end)

  -- one LLR inner step written out: the gradient over its per-sample l-inf
  -- norm, a step of eps/2, the box, then torch's renorm (eps / (n + 1e-7))
  local function llr_step(delta, gd, B)
    local n = gd:view(B, -1):abs():max(2):view(B, 1, 1, 1)
    delta = delta + gd / n * (EPS / 2)
    delta = (x + delta):clamp(0, 1) - x
    local dn = delta:view(B, -1):abs():max(2):view(B, 1, 1, 1)
    return delta * rl.where(dn:gt(EPS), rl.full_like(dn, EPS) / (dn + 1e-7), rl.ones_like(dn))
  end

  it('LLR (quirk): m = 0, so two ascent steps on |CE_sum(f(x + delta))| and no mu term', function()
    local loss = rl.methods.llr(m, x, y, { eps = EPS, generator = rl.Generator(8) })
    local g = rl.Generator(8)
    local delta = rl.randn(x.shape, { dtype = 'f64', generator = g }) * 0.001
    for _ = 1, 2 do
      delta = llr_step(delta, grad_of(function(dd) return ce_sum(m, x + dd, y):abs() end, delta), 4)
    end
    local want = ce_sum(m, x, y):item() + 4 * math.abs(ce_sum(m, x + delta, y):item())
    assert.is_true(close(loss:item(), want, 1e-9))
    assert.is_true((delta:view(4, -1):abs():max(2) - EPS):max():item() <= 1e-12)
  end)

  it('LLR (quirks = false): Qin et al.\'s per-sample gamma with the true m', function()
    local loss = rl.methods.llr(m, x, y, { eps = EPS, quirks = false, generator = rl.Generator(8) })
    local g = rl.Generator(8)
    local B = 4
    local l0 = F.cross_entropy(m(x), y, 'none'):detach()
    local mg = grad_of(function(v) return ce_sum(m, v, y) end, x)
    local function dots(d) return (mg * d):view(B, -1):sum(2) end
    local function gamma(d) return (F.cross_entropy(m(x + d), y, 'none') - l0 - dots(d)):abs():sum() end
    local delta = rl.randn(x.shape, { dtype = 'f64', generator = g }) * 0.001
    for _ = 1, 2 do delta = llr_step(delta, grad_of(gamma, delta), B) end
    local want = ce_sum(m, x, y):item() + 4 * gamma(delta):item() + 3 * dots(delta):abs():sum():item()
    assert.is_true(close(loss:item(), want, 1e-9))
  end)

  it('LLR: a sample whose gradient is zero steps by minus an unnormalised N(0,1) draw', function()
    -- a ReLU net that is dead at one sample: its loss has no input gradient there
    local net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, { dtype = 'f64' }), nn.ReLU(),
      nn.Linear(5, 3, { dtype = 'f64' }))
    rl.no_grad(function()
      net:get(2).weight:copy_(rl.arange(60):view(5, 12):double():sin():abs())
      net:get(2).bias:fill_(0)
      net:get(4).weight:copy_(rl.arange(15):view(3, 5):double():cos())
    end)
    local xs = x:clone()
    rl.no_grad(function() xs[2]:fill_(0) end) -- sample 2: every unit at 0, the ReLU cuts it
    local ys = rl.tensor { 1, 0, 2, 2 }
    local delta0 = rl.zeros(xs.shape, 'f64')
    rl.no_grad(function() delta0[2]:fill_(-0.01) end) -- keeps sample 2 inside the dead region
    local eps = 0.05
    -- what the step must have drawn: a [B, D] N(0,1) fill from the generator
    local fresh = rl.randn({ 4, 12 }, { dtype = 'f64', generator = rl.Generator(3) })[2]
    local want = ((xs[2]:view(-1) + (-0.01) - fresh * (eps / 2)):clamp(0, 1) - xs[2]:view(-1))
    local n = want:abs():max():item()
    if n > eps then want = want * (eps / (n + 1e-7)) end
    -- read delta back through a tiny wrapper: the same call with a model
    -- that records the input of its last forward in train mode
    local seen
    local spy = setmetatable({
      modules = function() return net:modules() end,
      train = function(_, on) net:train(on) end,
    }, { __index = net, __call = function(_, v)
      if net.training then seen = v end
      return net(v)
    end })
    rl.methods.llr(spy, xs, ys, { eps = eps, steps = 1, start = delta0, generator = rl.Generator(3) })
    local got = (seen[2] - xs[2]):view(-1)
    assert.is_true((got - want):abs():max():item() < 1e-12)
  end)

  it('named configurations resolve, unknown names are errors', function()
    local fn, name = rl.methods.get('rst.5')
    assert.are.equal('rst', name)
    assert.is_function(fn)
    local ok, msg = pcall(rl.methods.get, 'trades7')
    assert.is_false(ok)
    assert.truthy(msg:find('trades6', 1, true))
  end)
end)

describe('refusals name the method and the caller\'s line', function()
  -- the tester's model: Linear layers in f32 on x in [0, 1]
  local model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10), nn.ReLU(), nn.Linear(10, 5))
  local x, y = rl.rand(8, 1, 4, 4), rl.tensor { 0, 1, 2, 3, 4, 0, 1, 2 }
  local M = rl.methods

  -- each case is one line: f's own line is where the refusal must point
  -- (local v = ... return v, as a tail call would lose that frame).  The
  -- mismatches are gathered, so a failure lists every case that failed.
  local wrong
  local function refused(f, want)
    local ok, msg = pcall(f)
    want = string.format('spec/methods_spec.lua:%d: %s', debug.getinfo(f, 'S').linedefined, want)
    if ok or msg ~= want then
      wrong[#wrong + 1] = string.format('want: %s\n got: %s', want, ok and '(no error)' or tostring(msg))
    end
  end
  before_each(function() wrong = {} end)
  after_each(function() assert(#wrong == 0, #wrong .. ' refusals differ:\n' .. table.concat(wrong, '\n')) end)

  it('every option is checked for kind and range (finite numbers)', function()
    refused(function() local v = M.get('trades6')(model, x, y, { eps = 0.1, beta = true }) return v end,
      'trades: beta must be a number, got true')
    refused(function() local v = M.trades(model, x, y, { eps = 0.1, quirks = 'false' }) return v end,
      "trades: quirks must be true or false, got the string 'false'")
    refused(function() local v = M.rst(model, x, y, { eps = 0.1, lambda = -5 }) return v end,
      'rst: lambda must be >= 0, got -5')
    refused(function() local v = M.trades(model, x, y, { eps = 0.1, beta = 0 / 0 }) return v end,
      'trades: beta must be a finite number, got ' .. tostring(0 / 0))
    refused(function() local v = M.gr(model, x, y, { h = 0 }) return v end, 'gr: h must be > 0, got 0')
    refused(function() local v = M.gr(model, x, y, { h = math.huge }) return v end,
      'gr: h must be a finite number, got inf')
    refused(function() local v = M.trades(model, x, y, { eps = 0.1, beta = '6' }) return v end,
      "trades: beta must be a number, got the string '6'")
    refused(function() local v = M.gr(model, x, y, { lambda = 'x' }) return v end,
      "gr: lambda must be a number, got the string 'x'")
    refused(function() local v = M.llr(model, x, y, { eps = 0.1, mu = -1 }) return v end,
      'llr: mu must be >= 0, got -1')
    refused(function() local v = M.llr(model, x, y, { eps = 0.1, steps = 1.5 }) return v end,
      'llr: steps must be an integer, got 1.5')
    refused(function() local v = M.at(model, x, y, { eps = 0.1, step_size = -0.02 }) return v end,
      'at: step_size must be >= 0, got -0.02')
    refused(function() local v = M.at(model, x, y, { eps = math.huge }) return v end,
      'at: eps must be a finite number, got inf')
    refused(function() local v = M.trades(model, x, y, { eps = -0.1 }) return v end,
      'trades: eps must be >= 0, got -0.1')
    refused(function() local v = M.natural(model, x, y, { eps = '0.1' }) return v end,
      "natural: eps must be a number, got the string '0.1'")
    refused(function() local v = M.rst(model, x, y, { eps = 0.1, generator = 5 }) return v end,
      'rst: generator must be an rl.Generator, got 5')
    refused(function() local v = M.at(model, x, y, { eps = 0.1, quirks = 0 }) return v end,
      'at: quirks must be true or false, got 0')
    refused(function() local v = M.trades(model, x, y, { eps = 0.1, start = rl.rand(2, 2) }) return v end,
      "trades: start must be a tensor of the batch's shape 8x1x4x4, got an f32 tensor of size 2x2")
    refused(function() local v = M.get('rst2')(model, x, y, 5) return v end, 'rst: options must be a table, got 5')
    refused(function() local v = M.at(model, x, y, {}) return v end, 'at: opts.eps (the radius) is required')
    -- the edges of the ranges are allowed: no attack steps, lambda 0
    local l = M.rst(model, x, y, { eps = 0, steps = 0, step_size = 0, lambda = 0 })
    assert.is_true(close(l:item(), F.cross_entropy(model(x), y, 'sum'):item(), 1e-6))
  end)

  it('the attack\'s, the model\'s and the labels\' refusals are raised at the caller, led by the method', function()
    refused(function() local v = M.trades(model, x, y, { eps = 0.1, steps = -1 }) return v end,
      'trades: steps must be >= 0, got -1')
    refused(function() local v = M.at(model, x, y:float(), { eps = 0.1 }) return v end,
      'at: y must be i64 labels [8], got an f32 tensor of size 8')
    refused(function() local v = M.gr(model, x, y:narrow(1, 1, 4)) return v end,
      'gr: y must be i64 labels [8], got an i64 tensor of size 4')
    refused(function() local v = M.natural(model, rl.rand(8, 5), y) return v end,
      'natural: Sequential.1 (Linear): linear: input 8x5 does not match weight 10x16 (need [..., 16])')
    refused(function() local v = M.get('trades6')(model, rl.rand(8, 5), y, { eps = 0.1 }) return v end,
      'trades: Sequential.1 (Linear): linear: input 8x5 does not match weight 10x16 (need [..., 16])')
    refused(function() local v = M.llr(model, rl.full({ 8, 1, 4, 4 }, 2), y, { eps = 0.1 }) return v end,
      'llr: x must lie in the box [lo, hi] = [0, 1] the attack clips to; its values span [2, 2] (scale the images)')
    refused(function() local v = M.natural(function() end, x, y) return v end,
      'natural: model must be an rl.nn module, got a function (to attack a function, make it a module: ' ..
      'a class of rl.nn.Module whose forward calls it)')
    -- a bug (no refusal) keeps its own message and position
    local Broken = nn.class('Broken', nn.Module)
    function Broken:forward() local t = nil; return t.x end
    local ok, msg = pcall(M.natural, Broken(), x, y)
    assert.is_false(ok)
    assert.are.equal(string.format("spec/methods_spec.lua:%d: attempt to index a nil value (local 't')",
      debug.getinfo(Broken.forward, 'S').linedefined), msg)
  end)
end)

describe('attacks', function()
  local m, x, y = tiny(), batch()

  for _, norm in ipairs { 'inf', 2 } do
    it('PGD-' .. norm .. ' stays in the ball and the box and raises the loss', function()
      local xa = rl.attacks.pgd(m, x, y, { eps = 0.3, norm = norm, generator = rl.Generator(1) })
      local d = (xa - x):view(4, -1)
      local r = norm == 'inf' and d:abs():max(2) or d:norm(2, 2)
      assert.is_true(r:max():item() <= 0.3 + 1e-9)
      assert.is_true(xa:min():item() >= 0 and xa:max():item() <= 1)
      assert.is_true(ce_sum(m, xa, y):item() > ce_sum(m, x, y):item())
    end)
  end

  it('targeted PGD lowers the loss towards the target; FGSM is one signed step', function()
    local t = rl.tensor { 3, 3, 3, 3 }
    local xa = rl.attacks.pgd(m, x, t, { eps = 0.3, targeted = true })
    assert.is_true(ce_sum(m, xa, t):item() < ce_sum(m, x, t):item())
    local xf = rl.attacks.fgsm(m, x, y, { eps = 0.05 })
    local gx = grad_of(function(v) return ce_sum(m, v, y) end, x)
    assert.are.same(project(x + gx:sign() * 0.05, x, 0.05):tolist(), xf:tolist())
  end)

  it('attacks restore each module\'s mode', function()
    local net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, { dtype = 'f64' }), nn.Dropout(0.5))
    net:train()
    net:get(3).training = false -- a caller's mixed setting survives
    rl.attacks.pgd(net, x, y, { eps = 0.1, mode = 'eval' })
    assert.is_true(net.training and net:get(2).training)
    assert.is_false(net:get(3).training)
  end)

  it('multi-targeted PGD beats or matches untargeted on the best other class', function()
    local xa = rl.attacks.multi_targeted(m, x, y, { eps = 0.3, classes = 5, steps = 5 })
    assert.is_true((xa - x):abs():max():item() <= 0.3 + 1e-9)
  end)
end)

describe('measurements', function()
  it('the Lipschitz estimate of a linear map reaches its analytic value', function()
    -- f(x) = [w.x, -w.x]: sup ||f(x) - f(x')||_1 / ||x - x'||_inf = 2 ||w||_1
    local lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 2, { dtype = 'f64', bias = false }))
    local w = rl.arange(12):double():cos()
    rl.no_grad(function() lin:get(2).weight:copy_(rl.stack({ w, -w }, 1)) end)
    local x = rl.full({ 3, 1, 3, 4 }, 0.5, { dtype = 'f64' })
    local r = rl.metrics.lipschitz(lin, x, { eps = 0.1, generator = rl.Generator(2) })
    local want = 2 * w:abs():sum():item()
    for _, v in ipairs(r:tolist()) do
      assert.is_true(v <= want * (1 + 1e-4), string.format('%g > %g', v, want))
      -- 10 sign steps from a 0.001 N(0,1) start: a lower bound close to the sup
      assert.is_true(v >= 0.8 * want, string.format('%g < 0.8 * %g', v, want))
    end
  end)

  it('accuracy and adversarial accuracy', function()
    local m, x, y = tiny(), batch()
    local pred = m(x):argmax(2)
    assert.are.equal(pred:eq(y):double():mean():item(), rl.metrics.accuracy(m, x, y))
    local adv = rl.metrics.adv_accuracy(m, x, y, { eps = 0.3 })
    assert.is_true(adv <= rl.metrics.accuracy(m, x, y))
  end)
end)
