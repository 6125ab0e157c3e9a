-- The AutoAttack ensemble (rl.attacks.autoattack, rl.autoattack): the
-- per-sample worst case over its attacks, each run on the points still
-- robust; its versions; the gradient-masking checks on a model that masks
-- its gradients; a resumed evaluation equal to an uninterrupted one; its
-- errors.  The agreement with torchattacks is helpers/aa_crosscheck.lua's.
local rl = require 'rl'
local nn = rl.nn
local autoattack = require 'rl.autoattack'
local common = require 'rl.autoattack.common'
local tiny_trained = require 'helpers.tiny_mlp'

local function count(mask) return math.tointeger(mask:to('i64'):sum():item()) end

-- A model whose input goes through a staircase (x rounded to quarters):
-- its gradient is zero everywhere, its decisions are the tiny model's.
local Staircase = nn.class('Staircase', nn.Module)
function Staircase:__init(inner)
  nn.Module.__init(self)
  self:add_module('inner', inner)
end
function Staircase:forward(x) return self.inner((x * 4):round() / 4) end

-- The model, counting its forward passes.
local Counter = nn.class('Counter', nn.Module)
function Counter:__init(inner)
  nn.Module.__init(self)
  self:add_module('inner', inner)
  self.calls = 0
end
function Counter:forward(x)
  self.calls = self.calls + 1
  return self.inner(x)
end

local STD = { 'apgd-ce', 'apgd-t', 'fab-t', 'square' }

describe('rl.attacks.autoattack', function()
  local m, x, y = tiny_trained()
  local eps = 0.2
  local adv, info = rl.attacks.autoattack(m, x, y, { eps = eps, checks = false })

  it('runs the standard version: APGD-CE, APGD-T, FAB-T, Square, each on the points still robust', function()
    assert.are.equal(4, #info.attacks)
    local left = count(info.clean)
    for i, r in ipairs(info.attacks) do
      assert.are.equal(STD[i], r.name)
      assert.are.equal(left, r.ran_on, r.name .. ' ran on the points the attacks before it left')
      assert.are.equal(r.broke, #r.broken)
      left = left - r.broke
      assert.are.equal(left / info.n, r.robust_accuracy)
    end
    assert.are.equal(count(info.robust), left)
    assert.are.equal(left / info.n, info.robust_accuracy)
    assert.is_true(info.robust_accuracy < info.clean_accuracy, 'eps 0.2 breaks some points of this model')
  end)

  it('is the per-sample worst case: adv breaks exactly the points not robust, within eps and the box', function()
    local pred = rl.no_grad(function() return m(adv):argmax(2) end)
    local broken = info.robust:logical_not()
    assert.are.same(broken:tolist(), pred:ne(y):tolist())
    assert.is_true(common.norms(adv - x, 'linf'):max():item() <= eps + 1e-6)
    assert.is_true(adv:min():item() >= 0 and adv:max():item() <= 1)
    assert.are.equal(info.max_perturbation, common.norms(adv - x, 'linf'):max():item())
    -- robust points keep x; the attacks' broken sets are disjoint and make up the rest
    local robust = info.robust:tolist()
    local seen = {}
    for _, r in ipairs(info.attacks) do
      for _, i in ipairs(r.broken) do
        assert.is_nil(seen[i], 'point ' .. i .. ' counted twice')
        seen[i] = r.name
        assert.are.equal(0, robust[i])
      end
    end
    for i, c in ipairs(info.clean:tolist()) do
      if robust[i] == 1 then
        assert.are.same(x[i]:tolist(), adv[i]:tolist())
      else
        assert.is_true(seen[i] ~= nil or c == 0, 'point ' .. i .. ' broken by no attack')
      end
    end
  end)

  it('is at most as robust as APGD-CE alone, and repeats bit for bit from its seed', function()
    local _, ce = rl.attacks.apgd(m, x, y, { eps = eps })
    assert.is_true(info.robust_accuracy <= 1 - count(ce.broken) / info.n)
    local adv2, info2 = rl.attacks.autoattack(m, x, y, { eps = eps, checks = false })
    assert.are.same(adv:tolist(), adv2:tolist())
    assert.are.same(info.robust:tolist(), info2.robust:tolist())
    -- in chunks, each chunk is its own batch (Square shares its windows over
    -- a batch); the verdicts stay a worst case
    local _, info3 = rl.attacks.autoattack(m, x, y, { eps = eps, checks = false, batch = 32 })
    assert.is_true(math.abs(info3.robust_accuracy - info.robust_accuracy) <= 0.03)
  end)

  it('takes a smaller budget (steps, target classes, queries), and records it', function()
    local c = Counter(m)
    local _, small = rl.attacks.autoattack(c, x, y, { eps = eps, checks = false, attacks = { 'apgd-ce' }, steps = 5 })
    assert.are.equal(5, small.settings.steps)
    assert.is_true(c.calls <= 2 * 6 + 4, 'forward passes: ' .. c.calls) -- 5 steps, a start, verdicts
    local _, full = rl.attacks.autoattack(m, x, y, { eps = eps, checks = false, attacks = { 'apgd-t' },
      n_target_classes = 2, queries = 10 })
    assert.are.equal(2, full.settings.n_target)
    assert.are.equal(10, full.settings.queries)
    assert.are.equal(100, full.settings.steps)
  end)

  it('l2, and a chosen list of attacks', function()
    local a, i2 = rl.attacks.autoattack(m, x, y, { eps = 1.0, norm = 'l2', checks = false,
      attacks = { 'apgd-ce', 'square' } })
    assert.are.same({ 'apgd-ce', 'square' }, { i2.attacks[1].name, i2.attacks[2].name })
    assert.is_true(common.norms(a - x, 'l2'):max():item() <= 1.0 + 1e-5)
    assert.is_true(i2.robust_accuracy < i2.clean_accuracy)
  end)

  it('plus: restarts, APGD-DLR and untargeted FAB before the targeted attacks', function()
    local _, ip = rl.attacks.autoattack(m, x, y, { eps = eps, version = 'plus', checks = false })
    local names = {}
    for i, r in ipairs(ip.attacks) do names[i] = r.name end
    assert.are.same({ 'apgd-ce', 'apgd-dlr', 'fab', 'square', 'apgd-t', 'fab-t' }, names)
    assert.is_true(ip.robust_accuracy <= info.robust_accuracy + 0.02)
  end)

  it('rand: APGD-CE and APGD-DLR with gradients averaged over 20 draws', function()
    local c = Counter(m)
    local _, ir = rl.attacks.autoattack(c, x:narrow(1, 1, 8), y:narrow(1, 1, 8),
      { eps = 0.05, version = 'rand', checks = false })
    assert.are.same({ 'apgd-ce', 'apgd-dlr' }, { ir.attacks[1].name, ir.attacks[2].name })
    -- 100 steps of 20 draws each, for APGD-CE on every clean-correct point
    assert.is_true(c.calls >= 20 * 100, 'forward passes: ' .. c.calls)
  end)

  it('checks for gradient masking: none trips on an honest model', function()
    local _, ic = rl.attacks.autoattack(m, x, y, { eps = eps, check_n = 40 })
    assert.are.same({}, ic.warnings)
    local ladder = ic.checks.steps.ladder
    assert.are.same({ 'fgsm', 'apgd-ce', 'apgd-ce' }, { ladder[1].name, ladder[2].name, ladder[3].name })
    assert.are.equal(40, ic.checks.steps.n)
    assert.is_true(ladder[3].robust_accuracy <= ladder[2].robust_accuracy)
    assert.is_true(ladder[2].robust_accuracy <= ladder[1].robust_accuracy)
    assert.are.equal(0, ic.checks.eps_one.unbroken)
    assert.are.equal(0, ic.checks.zero_grad.count)
    assert.are.equal(0, ic.checks.square.broke)
  end)

  it('checks for gradient masking: a staircase model trips them, with the numbers', function()
    local s = Staircase(m)
    local lines = {}
    local _, im = rl.attacks.autoattack(s, x, y, { eps = 0.3, check_n = 30,
      log = function(l) lines[#lines + 1] = l end })
    local text = table.concat(im.warnings, '\n')
    assert.are.equal(im.n, im.checks.zero_grad.count)
    assert.truthy(text:find('gradient is exactly zero at 100 of 100 clean points (100.00%)', 1, true), text)
    assert.is_true(im.checks.square.broke > 0)
    assert.truthy(text:find('Square (black-box) broke ' .. im.checks.square.broke .. ' of the', 1, true), text)
    -- the warnings are logged too
    local logged = table.concat(lines, '\n')
    for _, w in ipairs(im.warnings) do assert.truthy(logged:find(w, 1, true)) end
  end)

  it("restores the model's mode, also when an attack raises", function()
    local net = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.Dropout(0.5))
    net:train()
    local calls = 0
    local bad = setmetatable({
      modules = function() return net:modules() end,
      train = function(_, on) net:train(on) end,
      parameters = function() return net:parameters() end,
    }, { __index = net, __call = function(_, v)
      calls = calls + 1
      if calls == 5 then error('model broke', 0) end
      return net(v)
    end })
    assert.has_error(function() rl.attacks.autoattack(bad, x, y, { eps = 0.1 }) end, 'model broke')
    assert.is_true(net.training and net:get(3).training)
  end)

  it('bad options get an error naming them', function()
    local function fails(o, want)
      local ok, msg = pcall(rl.attacks.autoattack, m, x, y, o)
      assert.is_false(ok)
      assert.truthy(tostring(msg):find(want, 1, true), tostring(msg))
    end
    fails({}, 'eps is required')
    fails({ eps = 0.1, verison = 'plus' }, "unknown option 'verison' (did you mean 'version'?)")
    fails({ eps = 0.1, version = 'strong' }, 'version')
    fails({ eps = 0.1, attacks = { 'apgd-ce', 'pgd' } }, 'apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square')
    fails({ eps = 0.1, n_classes = 10 }, 'n_classes is 10 but the model has 4 outputs')
    fails({ eps = 0.1, norm = 'l1' }, 'norm')
    fails({ eps = 0.1, log = 'yes' }, 'log must be true, false or a function')
    fails({ eps = 0.1, generator = rl.Generator(1) }, 'pass seed')
    local ok, msg = pcall(rl.attacks.autoattack, m, x, y:narrow(1, 1, 5), { eps = 0.1 })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('y must be i64 labels [100]', 1, true), tostring(msg))
  end)
end)

describe('rl.attacks.autoattack with a state file', function()
  local m, x, y = tiny_trained()
  local dir = os.tmpname()
  os.remove(dir)
  local path = dir .. '/aa.safetensors'
  local eps = 0.2

  it('resumes after the last finished attack, to the same result as an uninterrupted run', function()
    local full_adv, full = rl.attacks.autoattack(m, x, y, { eps = eps, checks = false, batch = 50 })
    -- killed in FAB-T's second chunk: APGD-CE and APGD-T are saved
    local ok, msg = pcall(rl.attacks.autoattack, m, x, y, { eps = eps, checks = false, batch = 50, state = path,
      progress = function(name, done)
        if name == 'fab-t' and done > 50 then error('killed') end
      end })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('killed', 1, true))
    local ran = {}
    local adv, info = rl.attacks.autoattack(m, x, y, { eps = eps, checks = false, batch = 50, state = path,
      progress = function(name) ran[name] = true end })
    assert.is_nil(ran['apgd-ce'])
    assert.is_nil(ran['apgd-t'])
    assert.is_true(info.attacks[1].resumed and info.attacks[2].resumed)
    assert.is_nil(info.attacks[3].resumed)
    assert.are.same(full_adv:tolist(), adv:tolist())
    assert.are.same(full.robust:tolist(), info.robust:tolist())
    for i, r in ipairs(full.attacks) do assert.are.same(r.broken, info.attacks[i].broken) end
    -- a finished state: nothing runs again
    ran = {}
    local _, again = rl.attacks.autoattack(m, x, y, { eps = eps, checks = false, batch = 50, state = path,
      progress = function(name) ran[name] = true end })
    assert.are.same({}, ran)
    assert.are.equal(full.robust_accuracy, again.robust_accuracy)
  end)

  it('refuses a state written for other settings, inputs or model', function()
    local function refused(mm, xx, o, want)
      local ok, msg = pcall(rl.attacks.autoattack, mm, xx, y, o)
      assert.is_false(ok)
      assert.truthy(tostring(msg):find(want, 1, true), tostring(msg))
    end
    refused(m, x, { eps = 0.3, checks = false, batch = 50, state = path }, 'was written for the settings')
    local x2 = x:clone()
    x2[3][1][2][2] = 0.5
    refused(m, x2, { eps = eps, checks = false, batch = 50, state = path }, 'another batch of inputs')
    local m2 = tiny_trained()
    rl.no_grad(function() m2:parameters()[1]:mul_(1.01) end)
    refused(m2, x, { eps = eps, checks = false, batch = 50, state = path }, 'another model')
    local f = io.open(dir .. '/junk.safetensors', 'wb')
    f:write('not a file')
    f:close()
    refused(m, x, { eps = eps, state = dir .. '/junk.safetensors' }, 'is not readable')
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
