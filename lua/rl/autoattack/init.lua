--- rl.autoattack: the AutoAttack ensemble (Croce & Hein 2020, "Reliable
-- evaluation of adversarial robustness with an ensemble of diverse
-- parameter-free attacks"), as fra31/auto-attack runs it, with checks for
-- gradient masking and a resumable state.  Reached as rl.attacks.autoattack.
--
--   adv, info = autoattack.run(model, x, y, {eps, norm = 'linf' | 'l2',
--       version = 'standard' | 'plus' | 'rand', seed = 0, n_classes,
--       attacks, checks = true, check_n = 100, state, batch, mode = 'eval',
--       log, progress, steps = 100, n_target_classes = 9, queries = 5000})
--
-- The versions (fra31's settings):
--   standard  APGD-CE (100 steps), APGD-T (DLR, the 9 highest non-true
--             classes), FAB-T (9 classes), Square (5000 queries); one
--             restart each
--   plus      APGD-CE, APGD-DLR and untargeted FAB with 5 restarts,
--             Square, APGD-T (1 restart), FAB-T (5 restarts)
--   rand      APGD-CE and APGD-DLR with gradients averaged over 20 draws
--             (EOT), for randomised models
-- opts.attacks (a list of those names) replaces the version's list.
-- steps (APGD's and FAB's iterations), n_target_classes (APGD-T's and
-- FAB-T's, at most K - 1) and queries (Square's) are fra31's unless given:
-- a smaller budget is for quick looks, not for figures to report (the
-- settings are in info.settings).
--
-- The clean points the model gets right start robust.  Each attack runs
-- only on the points still robust (in chunks of opts.batch), from a fresh
-- rl.Generator(seed); a point it returns counts as broken when the model
-- misclassifies it and it lies in the eps-ball (to 1e-5) -- the attack's
-- own verdict is not trusted.  The result is the per-sample worst case:
-- adv holds the breaking point where one was found and x elsewhere.
--
-- info: n, clean_accuracy, robust_accuracy (fractions), clean and robust
-- (u8 [B]), max_perturbation, attacks (one record per attack run: name,
-- ran_on, broke, broken = {1-based indices}, robust_accuracy after it,
-- seconds, resumed), checks, warnings ({text}), settings.
--
-- opts.state = PATH keeps the evaluation's state in PATH after each
-- attack (written atomically); a rerun with the same settings, model and
-- inputs resumes after the last finished attack, and one with others is
-- refused.  opts.log: true writes progress lines to stderr, a function
-- receives them.  opts.progress(name, done, total) is called per chunk.
--
-- The gradient-masking checks (opts.checks, on by default; info.checks,
-- and a warning with the numbers when one trips):
--   square     the black-box Square broke points the white-box attacks
--              before it could not
--   steps      on the first check_n clean-correct points, robust accuracy
--              under FGSM, APGD-CE with 10 steps and APGD-CE with 100
--              steps; it must not rise with the steps.  (Restarts keep each
--              sample's best, so they cannot raise it by construction.)
--   eps_one    APGD-CE at eps = 1 (l-inf; l2: the box's diameter) must
--              break every one of those points
--   zero_grad  the share of clean points whose cross-entropy gradient is
--              exactly zero must stay under 5 %
local rl = require 'rl.base'
local options = require 'rl.options'
local attacks = require 'rl.attacks'
local checkpoint = require 'rl.checkpoint'
local fs = require 'rl.fs'
local json = require 'rl.json'
local common = require 'rl.autoattack.common'
local fab = require 'rl.autoattack.fab'
local square = require 'rl.autoattack.square'
local F = rl.F

local autoattack = {}

local VERSIONS = {
  standard = { 'apgd-ce', 'apgd-t', 'fab-t', 'square' },
  plus = { 'apgd-ce', 'apgd-dlr', 'fab', 'square', 'apgd-t', 'fab-t' },
  rand = { 'apgd-ce', 'apgd-dlr' },
}
autoattack.versions = VERSIONS

-- Each attack of the ensemble: run(model, x, y, s) -> candidate points,
-- for settings s (eps, norm, seed, n_target, version, mode).
local function apgd(loss, targeted)
  return function(model, x, y, s)
    local o = { eps = s.eps, norm = s.norm, loss = loss, steps = s.steps, seed = s.seed, mode = s.mode }
    if targeted then
      o.targeted, o.n_target_classes = true, s.n_target
    else
      o.restarts = s.version == 'plus' and 5 or 1
      o.eot = s.version == 'rand' and 20 or 1
    end
    return (attacks.apgd(model, x, y, o))
  end
end

local RUNNERS = {
  ['apgd-ce'] = apgd('ce'),
  ['apgd-dlr'] = apgd('dlr'),
  ['apgd-t'] = apgd('dlr', true),
  ['fab-t'] = function(model, x, y, s)
    -- plus: 5 restarts, as fra31's FAB-T shares its FAB's settings
    return (fab.attack(model, x, y, { eps = s.eps, norm = s.norm, n_target_classes = s.n_target,
      steps = s.steps, restarts = s.version == 'plus' and 5 or 1, generator = rl.Generator(s.seed), mode = s.mode }))
  end,
  fab = function(model, x, y, s)
    return (fab.attack(model, x, y, { eps = s.eps, norm = s.norm, targeted = false, steps = s.steps,
      restarts = s.version == 'plus' and 5 or 1, generator = rl.Generator(s.seed), mode = s.mode }))
  end,
  square = function(model, x, y, s)
    return (square.attack(model, x, y, { eps = s.eps, norm = s.norm, queries = s.queries, p_init = 0.8,
      generator = rl.Generator(s.seed), mode = s.mode }))
  end,
}
autoattack.names = { 'apgd-ce', 'apgd-dlr', 'apgd-t', 'fab', 'fab-t', 'square' }

local ROWS = {
  { 'eps', 'number', options.REQUIRED, options.finite('>= 0') },
  { 'version', 'string', 'standard', { 'standard', 'plus', 'rand' } },
  { 'seed', 'integer', 0 },
  { 'n_classes', 'integer', nil, '>= 2' },
  { 'attacks', 'table', nil, function(v)
    if #v == 0 then return 'a non-empty list of attack names' end
    for _, a in ipairs(v) do
      if not RUNNERS[a] then return 'a list of ' .. table.concat(autoattack.names, ', ') end
    end
  end },
  { 'steps', 'integer', 100, '>= 1' },
  { 'n_target_classes', 'integer', 9, '>= 1' },
  { 'queries', 'integer', 5000, '>= 1' },
  { 'checks', 'boolean', true },
  { 'check_n', 'integer', 100, '>= 1' },
  { 'state', 'string' },
  { 'batch', 'integer', nil, '>= 1' },
  { 'mode', 'string', 'eval', { 'train', 'eval' } },
  { 'progress', 'function' },
  -- and norm, read by common.options; log (true or a function), by hand
}

---------------------------------------------------------------------------
-- the state file
---------------------------------------------------------------------------

-- A digest of a tensor's values: its sum and sum of squares in f64, and
-- those of its values weighted by their position, so that a reordering
-- or a change in one value shows.
local function digest(t)
  return rl.no_grad(function()
    local v = t:reshape(-1):to('f64')
    local w = rl.arange(v.shape[1], { dtype = 'f64', device = v.device }) / math.max(v.shape[1], 1) + 1
    return { v:sum():item(), (v * v):sum():item(), (v * w):sum():item() }
  end)
end

-- What a saved state must match to be resumed: the settings, the inputs,
-- the model's parameters.
local function fingerprint(model, x, y, s)
  local params = {}
  for _, p in ipairs(model:parameters()) do
    local d = digest(p)
    params[#params + 1] = string.format('%.17g/%.17g/%.17g', d[1], d[2], d[3])
  end
  local dx, dy = digest(x), digest(y)
  return {
    settings = json.encode(s),
    inputs = string.format('%s|%.17g/%.17g/%.17g|%.17g/%.17g/%.17g', table.concat(x.shape, 'x'),
      dx[1], dx[2], dx[3], dy[1], dy[2], dy[3]),
    model = table.concat(params, ' '),
  }
end

local STATE_KIND = 'rllua.autoattack/1'

local function load_state(path, fp)
  if not fs.exists(path) then return nil end
  local ok, st = pcall(checkpoint.load, path)
  if not ok then
    error(string.format('autoattack: state file %s is not readable (%s); remove it to start over', path,
      tostring(st)), 0)
  end
  local e = st.extra
  if type(e) ~= 'table' or e.kind ~= STATE_KIND then
    error(string.format('autoattack: %s is not an AutoAttack state file; remove it or pass another state path',
      path), 0)
  end
  for _, part in ipairs { 'settings', 'inputs', 'model' } do
    if e.fingerprint[part] ~= fp[part] then
      local what = part == 'settings' and ('the settings ' .. e.fingerprint.settings) or ('another ' ..
        (part == 'inputs' and 'batch of inputs' or 'model'))
      error(string.format('autoattack: state file %s was written for %s; remove it to start over, or pass ' ..
        'another state path', path, what), 0)
    end
  end
  return e
end

local function save_state(path, fp, adv, robust, clean, records)
  checkpoint.save(path, { extra = { kind = STATE_KIND, fingerprint = fp, adv = adv, robust = robust,
    clean = clean, records = records } })
end

---------------------------------------------------------------------------
-- the ensemble
---------------------------------------------------------------------------

local function count(mask) return math.tointeger(mask:to('i64'):sum():item()) end

-- 1-based positions of the true entries of a u8 mask.
local function positions(mask)
  local out = {}
  for i, v in ipairs(mask:tolist()) do if v ~= 0 then out[#out + 1] = i end end
  return out
end

-- Per sample, whether adv breaks it: misclassified and within eps (to
-- 1e-5) of x.  Also the largest distance.
local function verdict(model, x, adv, y, s)
  return rl.no_grad(function()
    local wrong = model(adv):argmax(2):ne(y)
    local d = common.norms(adv - x, s.norm)
    return wrong:logical_and(d:le(s.eps + 1e-5)), d
  end)
end

-- Run one attack over the rows idx, in chunks: the candidates [n, ...].
local function run_chunked(model, runner, x, y, idx, s, progress, name)
  local n = idx.shape[1]
  local step = s.batch or n
  local parts = {}
  for at = 0, n - 1, step do
    local m = math.min(step, n - at)
    local sub = idx:narrow(1, at + 1, m)
    parts[#parts + 1] = runner(model, x:index_select(1, sub), y:index_select(1, sub), s)
    if progress then progress(name, at + m, n) end
  end
  return #parts == 1 and parts[1] or rl.cat(parts, 1)
end

local function percent(v) return string.format('%.2f%%', 100 * v) end

local function logger(log)
  if log == true then
    return function(line) io.stderr:write('autoattack: ', line, '\n'); io.stderr:flush() end
  end
  return log or function() end
end

---------------------------------------------------------------------------
-- the gradient-masking checks
---------------------------------------------------------------------------

-- The share of points whose clean cross-entropy gradient is exactly 0.
local function zero_grad_share(model, x, y, s)
  local g = model:with_mode(s.mode, function()
    local xr = x:detach():requires_grad_()
    return rl.grad(F.cross_entropy(model(xr), y, 'sum'), xr)
  end)
  local zero = rl.no_grad(function() return g:reshape(x.shape[1], -1):abs():max(2):eq(0) end)
  return count(zero), x.shape[1]
end

local function run_checks(model, x, y, s, clean, records, say)
  local res, warnings = {}, {}
  local function warn(fmt, ...)
    local w = string.format(fmt, ...)
    warnings[#warnings + 1] = w
    say('warning: ' .. w)
  end
  -- square: what it broke, running after the white-box attacks
  for i, r in ipairs(records) do
    if r.name == 'square' then
      local before = {}
      for j = 1, i - 1 do before[#before + 1] = records[j].name end
      res.square = { broke = r.broke, ran_on = r.ran_on, after = before }
      if #before > 0 and r.broke > 0 then
        warn('Square (black-box) broke %d of the %d points that %s left robust (%s of all points): ' ..
          'a sign of gradient masking', r.broke, r.ran_on, table.concat(before, ', '), percent(r.broke / s.n))
      end
    end
  end
  -- zero clean gradients, on every point
  local zeros, total = zero_grad_share(model, x, y, s)
  res.zero_grad = { count = zeros, n = total, share = zeros / total, threshold = 0.05 }
  if zeros / total >= 0.05 then
    warn('the cross-entropy gradient is exactly zero at %d of %d clean points (%s): gradient-based ' ..
      'attacks cannot move them; a sign of gradient masking', zeros, total, percent(zeros / total))
  end
  -- steps and eps = 1, on the first check_n clean-correct points
  local idx = common.where_true(clean)
  if idx.shape[1] == 0 then return res, warnings end
  idx = idx:narrow(1, 1, math.min(s.check_n, idx.shape[1]))
  local xs, ys, m = x:index_select(1, idx), y:index_select(1, idx), idx.shape[1]
  local function acc_of(adv, eps)
    local broke = verdict(model, xs, adv, ys, { norm = s.norm, eps = eps })
    return (m - count(broke)) / m
  end
  local ladder = {}
  ladder[1] = { name = 'fgsm', steps = 1, robust_accuracy = s.norm == 'linf' and
    acc_of(attacks.fgsm(model, xs, ys, { eps = s.eps, mode = s.mode }), s.eps) or nil }
  for _, steps in ipairs { 10, 100 } do
    local adv = attacks.apgd(model, xs, ys, { eps = s.eps, norm = s.norm, steps = steps, seed = s.seed,
      mode = s.mode })
    ladder[#ladder + 1] = { name = 'apgd-ce', steps = steps, robust_accuracy = acc_of(adv, s.eps) }
  end
  res.steps = { n = m, ladder = ladder }
  for i = 2, #ladder do
    for j = 1, i - 1 do
      local a, b = ladder[j], ladder[i]
      if a.robust_accuracy and b.robust_accuracy > a.robust_accuracy then
        warn('robust accuracy rises with more steps: %s with %d step%s %s, %s with %d steps %s (on %d ' ..
          'points): a sign of gradient masking', a.name, a.steps, a.steps == 1 and '' or 's',
          percent(a.robust_accuracy), b.name, b.steps, percent(b.robust_accuracy), m)
      end
    end
  end
  local big = s.norm == 'linf' and 1 or math.sqrt(xs:numel() / m)
  local adv = attacks.apgd(model, xs, ys, { eps = big, norm = s.norm, steps = 100, seed = s.seed,
    mode = s.mode })
  local left = math.tointeger(math.floor(acc_of(adv, big) * m + 0.5))
  res.eps_one = { eps = big, n = m, unbroken = left }
  if left > 0 then
    warn('APGD-CE at eps = %.4g (the whole box) left %d of %d points unbroken: the gradients do not ' ..
      'lead out of the class; a sign of gradient masking', big, left, m)
  end
  return res, warnings
end

---------------------------------------------------------------------------
-- run
---------------------------------------------------------------------------

local function run(model, x, y, opts)
  options.model('autoattack', model)
  if opts ~= nil and (type(opts) ~= 'table' or rl.is_tensor(opts)) then
    error(string.format('autoattack: options must be a table, got %s', options.what(opts)), 0)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  local log = o.log
  o.log = nil
  if log ~= nil and log ~= false and log ~= true and type(log) ~= 'function' then
    error(string.format('autoattack: log must be true, false or a function(line), got %s', options.what(log)), 0)
  end
  if o.generator ~= nil then error('autoattack: pass seed; every attack starts from rl.Generator(seed)', 0) end
  local c = common.options('autoattack', o, ROWS)
  common.check_batch('autoattack', x, y)
  local say = logger(log)
  local names = c.attacks or VERSIONS[c.version]
  local B = x.shape[1]
  return model:with_mode(c.mode, function()
    local logits = rl.no_grad(function() return model(x) end)
    local K = logits.shape[2]
    if c.n_classes and c.n_classes ~= K then
      error(string.format('autoattack: n_classes is %d but the model has %d outputs', c.n_classes, K), 0)
    end
    local s = { eps = c.eps, norm = c.norm, version = c.version, seed = c.seed, n_classes = K,
      n_target = math.min(c.n_target_classes, K - 1), mode = c.mode, attacks = names, batch = c.batch, n = B,
      check_n = c.check_n, steps = c.steps, queries = c.queries }
    local clean = logits:argmax(2):eq(y)
    local adv, robust, records = x, clean, {}
    local fp, done = c.state and fingerprint(model, x, y, s), {}
    local saved = c.state and load_state(c.state, fp)
    if saved then
      adv, robust, records = saved.adv:to(x.device), saved.robust:to(x.device), saved.records
      for _, r in ipairs(records) do r.resumed = true; done[r.name] = true end
      say(string.format('resuming from %s after %s', c.state, #records > 0 and records[#records].name or 'none'))
    end
    if c.state then
      fs.mkdir(c.state:match('^(.*)/[^/]*$') or '.', 'autoattack')
      fs.remove_stale_temps(c.state:match('^(.*)/[^/]*$') or '.', { c.state:match('[^/]*$') })
    end
    local n_clean = count(clean)
    say(string.format('clean accuracy %s (%d of %d); %s, eps %.6g, %s', percent(n_clean / B), n_clean, B,
      c.norm, c.eps, table.concat(names, ', ')))
    for _, name in ipairs(names) do
      if not done[name] then
        local idx = common.where_true(robust)
        local n = idx.shape[1]
        local t0 = rl.clock()
        local rec = { name = name, ran_on = n, broke = 0, broken = {} }
        if n > 0 then
          local cand = run_chunked(model, RUNNERS[name], x, y, idx, s, c.progress, name)
          local xs, ys = x:index_select(1, idx), y:index_select(1, idx)
          local broke, dist = verdict(model, xs, cand, ys, s)
          local wrong_far = rl.no_grad(function() return dist:gt(s.eps + 1e-5) end)
          if count(wrong_far) > 0 then
            say(string.format('warning: %s returned %d points outside the eps-ball (largest distance %.6g); ' ..
              'they are not counted', name, count(wrong_far), dist:max():item()))
          end
          local before = robust
          adv, robust = common.record_broken(adv, robust, idx, cand, broke)
          local now = before:logical_and(robust:logical_not())
          rec.broke, rec.broken = count(now), positions(now)
        end
        rec.seconds = rl.clock() - t0
        rec.robust_accuracy = count(robust) / B
        records[#records + 1] = rec
        say(string.format('%-8s robust accuracy %s (broke %d of %d, %.1f s)', name, percent(rec.robust_accuracy),
          rec.broke, rec.ran_on, rec.seconds))
        if c.state then save_state(c.state, fp, adv, robust, clean, records) end
      end
    end
    local info = {
      n = B, clean = clean, robust = robust, clean_accuracy = n_clean / B,
      robust_accuracy = count(robust) / B, attacks = records, warnings = {}, settings = s,
    }
    info.max_perturbation = B > 0 and rl.no_grad(function() return common.norms(adv - x, s.norm):max():item() end) or 0
    if c.checks then info.checks, info.warnings = run_checks(model, x, y, s, clean, records, say) end
    say(string.format('robust accuracy %s (clean %s, n = %d)', percent(info.robust_accuracy),
      percent(info.clean_accuracy), B))
    return adv, info
  end)
end

autoattack._run = run
-- in f32 even inside rl.autocast: a measurement (issue #15)
autoattack.run = options.public(function(...) return rl.autocast(nil, run, ...) end)
options.wrapped[autoattack.run] = run

return autoattack
