-- AutoAttack against torchattacks 3.5.1, on the paper's Fashion-MNIST
-- setting (CNN001, l-inf eps 0.1): two models of helpers/aa_fixture.lua
-- (natural and AT), their weights loaded into both libraries, the same
-- first N test images.  For each model:
--   * APGD-CE, APGD-T, FAB-T and Square alone, and the standard ensemble
--     (rl.attacks.autoattack vs torchattacks' MultiAttack of the four with
--     fra31's settings), give robust accuracies within 1 point;
--   * the ensemble is no weaker than PGD-10 (rl.attacks.pgd, step
--     2.5 eps / 10, random start);
--   * the natural model falls to near 0 % (<= 2 %) under the ensemble.
-- torchattacks runs in spec/helpers/torchattacks_ref.py; where torch or
-- torchattacks is missing (it exits 3) the comparisons are pending.
--
-- Sizes (times: the 2-core machine, fixture trained before):
--   default        N = 100; APGD and FAB 20 steps, 3 target classes,
--                  Square 500 queries (the ensemble's attacks get the same
--                  budget); the natural model with APGD-CE and the
--                  ensemble only.  About 7 minutes with both libraries.
--   RL_AA_FULL=1   N = 500; fra31's settings: 100 steps, 9 targets, 5000
--                  queries (the ensemble as the library runs it)
-- RL_AA_WEAKEN=momentum|steps weakens rllua's APGD from here (no momentum;
-- a tenth of the steps), in the single attacks and in the ensemble, to
-- show that the spec notices.
local rl = require 'rl'
local json = require 'rl.json'
local fab = require 'rl.autoattack.fab'
local square = require 'rl.autoattack.square'
local fixture = require 'helpers.aa_fixture'
local shell = require 'helpers.shell'

local FULL = os.getenv('RL_AA_FULL') == '1'
local SIZE = FULL and { n = 500, steps = 100, targets = 9, queries = 5000, name = 'full' }
  or { n = 100, steps = 20, targets = 3, queries = 500, name = 'default' }
local EPS, TOL = 0.1, 0.01
local ATTACKS = { 'apgd-ce', 'apgd-t', 'fab-t', 'square' }
local HELPER = fixture.root .. '/spec/helpers/torchattacks_ref.py'
local PYTHON = '/usr/bin/python3'

-- Weakened APGD for the negative check: each rewrites APGD's options.
local WEAKENINGS = {
  momentum = function(o) o.momentum = 1 end, -- plain projected steps after the first
  steps = function(o) o.steps = math.max(1, (o.steps or 100) // 10) end,
}
local WEAKEN = os.getenv('RL_AA_WEAKEN')
if WEAKEN == '' then WEAKEN = nil end
if WEAKEN and not WEAKENINGS[WEAKEN] then
  error(string.format('RL_AA_WEAKEN must be momentum or steps, got %q', WEAKEN))
end

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- Run fn with rllua's APGD weakened (when asked), and, for the ensemble
-- of the default size, this size's budget on its four attacks
-- (fixture.with_budget).  The library's functions are put back afterwards,
-- also on an error: the other specs run in the same process.
local function with_rllua(ensemble, fn)
  local inner = fn
  if ensemble and not FULL then
    inner = function()
      return fixture.with_budget({ steps = SIZE.steps, targets = SIZE.targets, queries = SIZE.queries }, fn)
    end
  end
  if not WEAKEN then return inner() end
  local orig = rl.attacks.apgd
  rl.attacks.apgd = function(model, x, y, o)
    local c = copy(o)
    WEAKENINGS[WEAKEN](c)
    return orig(model, x, y, c)
  end
  local res = table.pack(pcall(inner))
  rl.attacks.apgd = orig
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- rllua's side: the robust accuracy of one attack (or 'autoattack'), the
-- seconds, and for the ensemble its info.
local function rllua_run(model, x, y, name)
  local g = rl.Generator(0)
  local runs = {
    ['apgd-ce'] = function() return rl.attacks.apgd(model, x, y, { eps = EPS, steps = SIZE.steps, seed = 0 }) end,
    ['apgd-t'] = function()
      return rl.attacks.apgd(model, x, y, { eps = EPS, loss = 'dlr', targeted = true,
        n_target_classes = SIZE.targets, steps = SIZE.steps, seed = 0 })
    end,
    ['fab-t'] = function()
      return fab.attack(model, x, y, { eps = EPS, n_target_classes = SIZE.targets, steps = SIZE.steps,
        generator = g })
    end,
    square = function() return square.attack(model, x, y, { eps = EPS, queries = SIZE.queries, p_init = 0.8,
      generator = g }) end,
    autoattack = function()
      return rl.attacks.autoattack(model, x, y, { eps = EPS, norm = 'linf', version = 'standard', seed = 0,
        checks = false, log = false })
    end,
  }
  local t0 = rl.clock()
  local adv, info = with_rllua(name == 'autoattack', runs[name])
  local seconds = rl.clock() - t0
  -- the verdict as the helper's: the model's prediction at the returned
  -- point, which must lie in the eps-ball and the box
  local d = (adv - x):reshape(x.shape[1], -1):abs():max(2):max():item()
  assert(d <= EPS + 1e-5, string.format('rllua %s: a point at l-inf distance %.6g > eps', name, d))
  assert(adv:min():item() >= 0 and adv:max():item() <= 1, 'rllua ' .. name .. ': a point outside [0, 1]')
  local acc = rl.no_grad(function() return model(adv):argmax(2):eq(y):double():mean():item() end)
  if name == 'autoattack' then
    assert(math.abs(acc - info.robust_accuracy) < 1e-9,
      string.format('autoattack: info.robust_accuracy %.4f, but the model is right on %.4f of adv',
        info.robust_accuracy, acc))
  end
  return acc, seconds, info
end

-- torchattacks' side: the helper's JSON, or false when torch or
-- torchattacks is missing (exit status 3).
local function torch_run(which, f, name)
  local err = os.tmpname()
  local cmd = table.concat({ PYTHON, shell.quote(HELPER), 'CNN001', shell.quote(f[which]), shell.quote(f.data),
    '--attack', name == 'autoattack' and 'autoattack-standard' or name, '--eps', tostring(EPS),
    '--steps', SIZE.steps, '--queries', SIZE.queries, '--n-classes', SIZE.targets + 1, '--seed', 0,
    '--threads', 2 }, ' ')
  local p = io.popen(cmd .. ' 2>' .. shell.quote(err))
  local out = p:read('a')
  local _, _, code = p:close()
  local ef = io.open(err)
  local stderr = ef and ef:read('a') or ''
  if ef then ef:close() end
  os.remove(err)
  if code == 3 then return false, stderr end
  assert(code == 0, string.format('torchattacks_ref.py failed (exit %s):\n%s\n%s', tostring(code), cmd, stderr))
  local ok, r = pcall(json.decode, out)
  assert(ok, 'torchattacks_ref.py printed no JSON: ' .. out .. stderr)
  assert(r.n == SIZE.n, string.format('the helper attacked %s images, not %d', tostring(r.n), SIZE.n))
  return r
end

describe(string.format('AutoAttack vs torchattacks 3.5.1, CNN001 on Fashion-MNIST, eps %g, %s size ' ..
  '(N = %d, %d steps, %d targets, %d queries)%s', EPS, SIZE.name, SIZE.n, SIZE.steps, SIZE.targets,
  SIZE.queries, WEAKEN and ', rllua weakened: ' .. WEAKEN or '') .. ' #crosscheck', function()
  local f, models, x, y
  local results = { natural = {}, at = {} } -- [model][attack] = {rl, rl_s, ta, ta_s}
  local torch_missing
  local t_start = rl.clock()

  local function setup_once()
    if f then return end
    f = fixture.get { n = SIZE.n }
    models = { natural = fixture.model(f.natural), at = fixture.model(f.at) }
    x, y = fixture.data(f.data)
  end

  local function result(which, name)
    setup_once()
    local r = results[which][name]
    if not r then
      r = {}
      r.rl, r.rl_s, r.info = rllua_run(models[which], x, y, name)
      if torch_missing == nil then
        local t, stderr = torch_run(which, f, name)
        if t then
          r.ta, r.ta_s = t.robust_accuracy, t.seconds
        else
          torch_missing = stderr
        end
      elseif not torch_missing then
        local t = torch_run(which, f, name)
        r.ta, r.ta_s = t.robust_accuracy, t.seconds
      end
      results[which][name] = r
    end
    return r
  end

  for _, which in ipairs { 'natural', 'at' } do
    -- at the default size the natural model, which every white-box attack
    -- takes to 0 %, is checked with APGD-CE and the ensemble only (time)
    local names = (FULL or which == 'at') and { 'apgd-ce', 'apgd-t', 'fab-t', 'square', 'autoattack' }
      or { 'apgd-ce', 'autoattack' }
    for _, name in ipairs(names) do
      it(string.format('%s model: %s robust accuracy agrees within %g point', which, name, TOL * 100), function()
        local r = result(which, name)
        if torch_missing then
          return pending('torch or torchattacks is not installed: ' .. torch_missing:gsub('%s+$', ''))
        end
        assert(math.abs(r.rl - r.ta) <= TOL + 1e-9, string.format(
          '%s model, %s: rllua %.2f %%, torchattacks %.2f %% (|diff| %.2f points > %g)', which, name,
          100 * r.rl, 100 * r.ta, 100 * math.abs(r.rl - r.ta), 100 * TOL))
      end)
    end

    it(which .. ' model: the ensemble is no weaker than PGD-10', function()
      setup_once()
      local m = models[which]
      local adv = with_rllua(false, function()
        return rl.attacks.pgd(m, x, y, { eps = EPS, steps = 10, step_size = 2.5 * EPS / 10, random_start = true,
          seed = 0 })
      end)
      local pgd = rl.no_grad(function() return m(adv):argmax(2):eq(y):double():mean():item() end)
      local r = result(which, 'autoattack')
      results[which].pgd10 = { rl = pgd }
      assert(r.rl <= pgd, string.format('%s model: AutoAttack %.2f %% > PGD-10 %.2f %%', which, 100 * r.rl,
        100 * pgd))
    end)
  end

  it('the natural model falls to <= 2 % under the ensemble', function()
    local r = result('natural', 'autoattack')
    assert(r.rl <= 0.02, string.format('natural model: AutoAttack leaves %.2f %% robust', 100 * r.rl))
  end)

  -- The figures, for the log (stderr): one line per model and attack.
  teardown(function()
    if not f then return end
    local lines = { string.format('\nautoattack_crosscheck (%s size, N = %d%s): robust accuracy %%, seconds',
      SIZE.name, SIZE.n, WEAKEN and ', rllua APGD weakened: ' .. WEAKEN or '') }
    lines[#lines + 1] = string.format('  %-8s %-11s %8s %8s %7s %8s %8s', 'model', 'attack', 'rllua', 'torchatk',
      'diff', 'rllua s', 'torch s')
    for _, which in ipairs { 'natural', 'at' } do
      for _, name in ipairs { 'apgd-ce', 'apgd-t', 'fab-t', 'square', 'autoattack', 'pgd10' } do
        local r = results[which][name]
        if r then
          local function pc(v) return v and string.format('%.2f', 100 * v) or '-' end
          local function s(v) return v and string.format('%.1f', v) or '-' end
          lines[#lines + 1] = string.format('  %-8s %-11s %8s %8s %7s %8s %8s', which, name, pc(r.rl), pc(r.ta),
            r.ta and string.format('%+.2f', 100 * (r.rl - r.ta)) or '-', s(r.rl_s), s(r.ta_s))
        end
      end
    end
    local train = f.cached and 'cached' or string.format('%.0f s', f.seconds.natural + f.seconds.at)
    lines[#lines + 1] = string.format('  fixture %s (training: %s); whole spec %.0f s', f.dir, train,
      rl.clock() - t_start)
    io.stderr:write(table.concat(lines, '\n'), '\n')
  end)
end)
