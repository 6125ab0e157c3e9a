-- reference_spec.lua - rllua against the paper's reference code, re-typed in
-- PyTorch (spec/helpers/reference_twin.py: estimate_local_lip_v2, the TRADES
-- step and the LLR step of yangarbiter/robust-local-lipschitz).  Both sides
-- get the same weights, batch and starting noise; in f64 the reference-mode
-- Lipschitz value agrees to 1e-4 relative, and the losses, every parameter
-- gradient and the batch-norm statistics of TRADES and LLR to 1e-8, in the
-- reference's (quirk) form and in the textbook form.  Then the settings the
-- reference used per dataset, and the multi-targeted attack's selection.
local rl = require 'rl'
local nn, F = rl.nn, rl.F
local exp = require 'rl.experiment'
local tables = require 'rl.tables'

local shell = require 'helpers.shell'
local have_torch, tmpdir = shell.have_torch, shell.tmpdir

-- Run the twin on `case`; returns its outputs as {name = tensor}.
local function twin(case, model, inputs)
  local dir = tmpdir()
  model:save(dir .. '/w.safetensors')
  local io_ = {}
  for k, v in pairs(inputs) do
    io_[k] = rl.is_tensor(v) and v:detach() or rl.tensor({ v }, math.type(v) == 'integer' and 'i64' or 'f64')
  end
  rl.save(dir .. '/in.safetensors', io_)
  local p = io.popen(string.format('/usr/bin/python3 spec/helpers/reference_twin.py %s %s/w.safetensors %s/in.safetensors %s/out.safetensors 2>&1',
    case, dir, dir, dir))
  local log = p:read('a')
  p:close()
  assert(log:find('OK'), 'the PyTorch twin failed: ' .. log)
  local out = rl.load(dir .. '/out.safetensors')
  os.execute('rm -rf ' .. dir)
  return out
end

-- max |a - b| <= tol * max |b|
local function close(a, b, tol)
  local d = (a:double() - b:double()):abs():max():item()
  local s = b:double():abs():max():item()
  return d <= tol * math.max(s, 1e-12), d, s
end

-- The twin's small_bn_net: conv 3x3 -> batch norm -> ReLU -> linear, f64.
local function bn_net(C, K, S)
  rl.manual_seed(21)
  local m = nn.Sequential({
    { 'conv', nn.Conv2d(C, 4, 3, { bias = false }) }, { 'bn', nn.BatchNorm2d(4) }, { 'relu', nn.ReLU() },
    { 'flat', nn.Flatten() }, { 'fc', nn.Linear(4 * (S - 2) * (S - 2), K) },
  })
  rl.no_grad(function() -- batch norm away from its identity start
    m.bn.weight:uniform_(0.5, 1.5)
    m.bn.bias:uniform_(-0.2, 0.2)
  end)
  return m:to('f64')
end

-- t with the fields of extra added (a new table)
local function with(t, extra)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  for k, v in pairs(extra) do r[k] = v end
  return r
end

-- One training step of `method` on both sides: loss, every parameter
-- gradient and the batch-norm buffers after it.
local function compare_step(method, case, o)
  local K, B, S = 5, 6, 8
  local g = rl.Generator(31)
  local x = rl.rand({ B, 1, S, S }, { dtype = 'f64', generator = g })
  local y = rl.randint(0, K, B, { generator = g })
  local noise = rl.randn(x.shape, { dtype = 'f64', generator = g }) * 0.001
  local start = method == 'trades' and x + noise or noise -- TRADES starts x', LLR delta
  local twin_model = bn_net(1, K, S)
  local ref = twin(case, twin_model, {
    x = x, y = y, start = start, classes = K, eps = o.eps, step_size = o.step_size, steps = o.steps,
    beta = o.beta or 0, lambda = o.lambda or 0, mu = o.mu or 0,
  })
  local model = bn_net(1, K, S)
  model:train()
  local opts = { eps = o.eps, step_size = o.step_size, steps = o.steps, beta = o.beta, lambda = o.lambda,
    mu = o.mu, quirks = o.quirks, start = start }
  local loss = rl.methods[method](model, x, y, opts)
  model:zero_grad()
  loss:backward()
  local checks = { { 'loss', loss:view(1), ref.loss } }
  for _, np in ipairs(model:named_parameters()) do
    checks[#checks + 1] = { 'gradient of ' .. np[1], np[2].grad, ref['grad.' .. np[1]] }
  end
  for k, t in pairs(model:state_dict()) do
    if k:find('running') then checks[#checks + 1] = { 'buffer ' .. k, t, ref['buffer.' .. k] } end
  end
  for _, c in ipairs(checks) do
    assert(c[2] and c[3], c[1] .. ': missing on one side')
    local ok, d, s = close(c[2], c[3], 1e-8)
    assert(ok, string.format('%s (%s): max |diff| %.3g vs max |ref| %.3g', c[1], case, d, s))
  end
  return model
end

describe('the reference code, re-typed in PyTorch', function()
  if not have_torch() then
    pending('python3-torch not installed: the reference twin was not run')
    return
  end

  describe('local Lipschitz estimate (CNN001, f64, 40 images: chunks of 16, 16, 8)', function()
    rl.manual_seed(5)
    local model = rl.models.CNN001():to('f64')
    local g = rl.Generator(9)
    local x = rl.rand({ 40, 1, 28, 28 }, { dtype = 'f64', generator = g })
    local start = x + rl.randn(x.shape, { dtype = 'f64', generator = g }) * 0.001
    local ref, ascent

    it("mode 'reference' is estimate_local_lip_v2 to 1e-4", function()
      ref = twin('lip', model, { x = x, start = start, eps = 0.1 }).value:item()
      local got = rl.metrics.lipschitz(model, x, { eps = 0.1, mode = 'reference', start = start }):mean():item()
      assert(math.abs(got - ref) <= 1e-4 * math.abs(ref), string.format('rllua %.10g, reference %.10g', got, ref))
    end)

    it("mode 'max' is the same loop with the sign of its step flipped", function()
      ascent = twin('lip_ascent', model, { x = x, start = start, eps = 0.1 }).value:item()
      local got = rl.metrics.lipschitz(model, x, { eps = 0.1, mode = 'max', start = start }):mean():item()
      assert(math.abs(got - ascent) <= 1e-4 * math.abs(ascent), string.format('rllua %.10g, flipped twin %.10g', got, ascent))
    end)

    it('a flipped sign is caught: the two directions differ far beyond the tolerance', function()
      assert(ref and ascent)
      assert(ascent > ref * 1.01, string.format('ascent %.6g vs reference %.6g', ascent, ref))
      local got = rl.metrics.lipschitz(model, x, { eps = 0.1, mode = 'reference', start = start }):mean():item()
      assert.is_false(math.abs(got - ascent) <= 1e-4 * math.abs(ascent))
    end)
  end)

  local T = { eps = 0.1, step_size = 0.02, steps = 10, beta = 6 }
  it('TRADES (quirk: a second clean pass after x\'): loss, gradients, batch-norm statistics to 1e-8', function()
    compare_step('trades', 'trades', T)
  end)

  it('TRADES (quirks = false: one clean pass) to 1e-8, and its statistics differ from the quirk\'s', function()
    local one = compare_step('trades', 'trades_textbook', with(T, { quirks = false }))
    local two = compare_step('trades', 'trades', T)
    assert.is_true((one.bn.running_mean - two.bn.running_mean):abs():max():item() > 1e-6)
  end)

  local L = { eps = 0.1, step_size = 0.05, steps = 2, lambda = 4, mu = 3 }
  it('LLR (quirk: m = 0): loss and gradients to 1e-8', function()
    compare_step('llr', 'llr', L)
  end)

  it('LLR (quirks = false: Qin et al. with the true m) to 1e-8', function()
    compare_step('llr', 'llr_textbook', with(L, { quirks = false }))
  end)
end)

describe("the reference's settings", function()
  local function lr(dataset, method) return exp.config({ dataset = dataset, method = method }).lr end

  it('learning rates: CIFAR-10 1e-3 for RST only; SVHN 1e-3 for AT, RST and LLR', function()
    assert.are.equal(1e-2, lr('cifar10', 'at'))
    assert.are.equal(1e-2, lr('cifar10', 'llr'))
    assert.are.equal(1e-3, lr('cifar10', 'rst2'))
    assert.are.equal(1e-2, lr('cifar10', 'trades6'))
    assert.are.equal(1e-3, lr('svhn', 'at'))
    assert.are.equal(1e-3, lr('svhn', 'rst.5'))
    assert.are.equal(1e-3, lr('svhn', 'llr'))
    assert.are.equal(1e-2, lr('svhn', 'natural'))
    assert.are.equal(1e-2, exp.config({ dataset = 'cifar10', method = 'rst2', lr = 1e-2 }).lr) -- an override wins
  end)

  it('LLR: lambda 3, mu 6 on Restricted ImageNet (sllr36); 4 and 3 elsewhere', function()
    local c = exp.config({ dataset = 'resimgnet', method = 'llr' })
    assert.are.equal(3, c.lambda)
    assert.are.equal(6, c.mu)
    assert.is_nil(exp.config({ dataset = 'cifar10', method = 'llr' }).lambda) -- the method's 4 and 3
    assert.is_nil(exp.config({ dataset = 'resimgnet', method = 'at' }).lambda)
  end)

  it('a changed method definition changes the run id', function()
    local c = exp.config({ dataset = 'fashion-mnist', method = 'trades6' })
    assert.are.equal(rl.methods.versions.trades, c.method_version)
    local old = {}
    for k, v in pairs(c) do old[k] = v end
    old.method_version = nil
    assert.are_not.equal(exp.run_id(old), exp.run_id(c))
    assert.is_nil(exp.config({ dataset = 'fashion-mnist', method = 'natural' }).method_version)
  end)

  local function sh(cmd)
    local out, code = shell.sh(cmd)
    return out, code == 0
  end

  it('table4 --list: dropout SVHN 0.5, CIFAR-10 0.2, --dropout overrides; learning rates per row', function()
    local out, ok = sh(shell.rllua .. ' scripts/table4.lua --list')
    assert.is_true(ok, out)
    local seen = {}
    for line in out:gmatch('[^\n]+') do
      local _, d, label, cfg = line:match('^(%S+)\t(%S+)\t([^\t]+)\t(.+)$')
      assert(cfg, 'not a --list line: ' .. line)
      local c = rl.json.decode(cfg)
      seen[d .. '/' .. label] = c
    end
    assert.are.equal(0.5, seen['svhn/AT + dropout'].drop)
    assert.are.equal(0, seen['svhn/AT'].drop)
    assert.are.equal(0.2, seen['cifar10/TRADES(3) + dropout'].drop)
    assert.are.equal(1e-2, seen['cifar10/AT + dropout'].lr)
    assert.are.equal(1e-3, seen['cifar10/RST(2)'].lr)
    assert.are.equal(1e-3, seen['svhn/AT'].lr)
    out = sh(shell.rllua .. ' scripts/table4.lua --list --dropout 0.3 --dataset cifar10')
    assert.truthy(out:find('"drop":0.3', 1, true), out)
    out, ok = sh(shell.rllua .. ' scripts/table4.lua --list --dataset mnist')
    assert.is_false(ok)
    assert.truthy(out:find('--dropout', 1, true), out)
  end)

  it('tables print both Lipschitz columns and name their attack', function()
    local md = tables.layout('t', { { dataset = 'd', rows = { { label = 'AT', metrics = {
      test_lipschitz = 2.25, test_lipschitz_max = 65.5, test_adv_acc_multitarget = 0.5 } } } } },
      tables.columns('multitarget'))
    assert.truthy(md:find('test lipschitz (max)', 1, true))
    assert.truthy(md:find('adv test acc (MT)', 1, true))
    assert.truthy(md:find('65.50', 1, true))
    assert.truthy(md:find('2.25', 1, true))
    assert.truthy(md:find('50.00', 1, true))
    local pgd = tables.layout('t', { { dataset = 'd', rows = {} } })
    assert.truthy(pgd:find('adv test acc (PGD)', 1, true))
    local _, okp = sh(shell.rllua .. ' scripts/table2.lua --list --attack fgsm')
    assert.is_false(okp)
  end)
end)

describe('multi-targeted attack (the reference\'s MultiTarget)', function()
  -- a linear model on 3 classes, f64: the run towards each class is PGD
  -- towards it; the kept run is, per sample, the one among the other
  -- classes whose final probability of its own target is highest
  local lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, { dtype = 'f64' }))
  rl.no_grad(function()
    lin:get(2).weight:copy_(rl.arange(36):view(3, 12):double():sin())
    lin:get(2).bias:copy_(rl.tensor({ 0.3, -0.1, 0.2 }, 'f64'))
  end)
  local x = (rl.arange(60):view(5, 1, 3, 4):double() * 0.61):sin() * 0.3 + 0.5
  local y = rl.tensor { 0, 1, 2, 0, 1 }

  it('runs 20 steps of 2 eps / 20 per target and keeps the best other target', function()
    local eps = 0.2
    local got = rl.attacks.multi_targeted(lin, x, y, { eps = eps, generator = rl.Generator(4) })
    local g = rl.Generator(4)
    local runs, probs = {}, {}
    for j = 0, 2 do
      runs[j] = rl.attacks.pgd(lin, x, rl.full({ 5 }, j, 'i64'), { eps = eps, steps = 20, step_size = eps / 10,
        targeted = true, random_start = true, generator = g })
      probs[j] = F.softmax(lin(runs[j]), 2):select(2, j + 1):tolist()
    end
    for i, yi in ipairs(y:tolist()) do
      local best, bp = nil, -1
      for j = 0, 2 do
        if j ~= yi and probs[j][i] > bp then best, bp = j, probs[j][i] end
      end
      assert.are.same(runs[best][i]:tolist(), got[i]:tolist())
    end
  end)

  it('is what --attack multitarget measures, in eval mode, the caller\'s mode restored', function()
    -- with dropout in train mode the attack would see random masks
    local drop = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(12, 3, { dtype = 'f64' }))
    rl.no_grad(function() drop:get(3).weight:copy_(lin:get(2).weight); drop:get(3).bias:copy_(lin:get(2).bias) end)
    drop:train()
    local a = rl.metrics.adv_accuracy(drop, x, y, { eps = 0.2, attack = 'multitarget', generator = rl.Generator(4) })
    assert.is_true(drop.training and drop:get(2).training)
    local xa = rl.attacks.multi_targeted(lin, x, y, { eps = 0.2, generator = rl.Generator(4) })
    assert.are.equal(lin(xa):argmax(2):eq(y):double():mean():item(), a)
    assert.has_error(function() rl.metrics.adv_accuracy(lin, x, y, { eps = 0.2, attack = 'cw' }) end)
  end)
end)
