--- rl.metrics: what a row of the paper's tables reports (docs/methods.md,
-- "Measurements"), all in eval mode, the caller's mode restored after.
--
--   accuracy(model, x, y)                 fraction correct on a batch
--   adv_examples(model, x, y, {eps, attack})
--                                         the tables' attack: 'pgd' (PGD-10,
--                                         step 2 eps / 10, random start, true
--                                         labels), 'multitarget' or
--                                         'autoattack' (standard, no checks)
--   adv_accuracy(model, x, y, {eps, attack})
--   lipschitz(model, x, {eps, mode})      per-sample local Lipschitz estimate:
--                                         mode 'max' (default) or 'reference'
--   evaluate(model, batches, {eps, adv, lipschitz, lipschitz_max})
--                                         means over an iterator of (x, y)
local rl = require 'rl.base'
local attacks = require 'rl.attacks'
local options = require 'rl.options'
local F = rl.F

local metrics = {}

-- The number of rows of x whose label y the model gives; y must be i64
-- [B] (labels [B, 1] broadcast against the predictions and counted B
-- times over: an accuracy of 2)
-- counted B times over: an accuracy of 2), each in [0, K) for the model's
-- K outputs (a label out of range was counted wrong: an accuracy of 0).
local function correct(model, x, y, who)
  who = who or 'accuracy'
  if not (rl.is_tensor(y) and y.dtype == 'i64' and y.ndim == 1 and rl.is_tensor(x) and y.shape[1] == x.shape[1]) then
    error(string.format('%s: y must be i64 labels [%s], got %s', who,
      rl.is_tensor(x) and tostring(x.shape[1]) or 'B', options.what(y)), 0)
  end
  if y:numel() == 0 then return 0 end
  -- the count and the labels' range in one read from the device
  local z = rl.no_grad(function() return model(x) end)
  local K = z.shape[2]
  local v = rl.no_grad(function() return rl.stack({ z:argmax(2):eq(y):sum(), y:min(), y:max() }):tolist() end)
  if v[2] < 0 or v[3] >= K then
    error(string.format('%s: the labels must be in [0, %d) for the model\'s %d outputs; they span [%d, %d]', who,
      K, K, v[2], v[3]), 0)
  end
  return v[1]
end

--- accuracy(model, x, y) -> the fraction of the batch x whose i64 label y
-- the model gives (in eval mode).
function metrics.accuracy(model, x, y)
  options.model('accuracy', model)
  return model:with_mode('eval', function() return correct(model, x, y) / x.shape[1] end)
end

--- The attacks a table can be measured under.  'pgd' is the paper's
-- column; 'multitarget' is the reference's stronger *MT evaluation;
-- 'autoattack' is AutoAttack's standard ensemble (Croce and Hein 2020).
metrics.attacks = { pgd = true, multitarget = true, autoattack = true }

--- The names of metrics.attacks, sorted, for messages.
function metrics.attack_names()
  local names = {}
  for k in pairs(metrics.attacks) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ', ')
end

local function check_attack(name, level)
  local a = name or 'pgd'
  if not metrics.attacks[a] then
    error(string.format('metrics: unknown attack %q (%s)', tostring(name), metrics.attack_names()), (level or 2) + 1)
  end
  return a
end

-- The options of adv_examples and adv_accuracy (see adv_examples); which
-- attack takes which (the others are refused: they would go unused).
local ADV_ROWS = {
  { 'eps', 'number', options.REQUIRED, options.finite('>= 0') },
  { 'attack', 'string', 'pgd' },
  { 'classes', 'integer', nil, '>= 2' },
  { 'norm', 'norm', 'linf' },
  { 'generator', 'generator' },
  { 'seed', 'integer', nil, '>= 0' },
  { 'batch', 'integer', nil, '>= 1' },
  { 'checks', 'boolean' },
  { 'steps', 'integer', nil, '>= 1' },
  { 'step_size', 'number', nil, options.finite('>= 0') },
}
local ADV_OPTS = {}
for _, r in ipairs(ADV_ROWS) do ADV_OPTS[r[1]] = true end
local ONLY = { batch = 'autoattack', checks = 'autoattack', generator = 'pgd or multitarget',
  steps = 'pgd or multitarget', step_size = 'pgd or multitarget' }

-- opts checked (a numeric eps said plainly first), else an error naming who
local function need_eps(who, o, level)
  options.known(who, o == nil and {} or o, ADV_OPTS, level + 1)
  o = o or {}
  if type(o.eps) ~= 'number' then
    error(string.format('%s: opts.eps (the radius) is required, a number; got %s', who, options.what(o.eps)), level + 1)
  end
  local c = options.check(who, o, ADV_ROWS)
  c.attack = check_attack(c.attack, level + 1)
  for k, takes in pairs(ONLY) do
    if c[k] ~= nil and not takes:find(c.attack, 1, true) then
      error(string.format("%s: %s is for attack %s, not '%s'", who, k, takes, c.attack), 0)
    end
  end
  if c.seed ~= nil and c.generator ~= nil then error(who .. ': give seed or generator, not both', 0) end
  return c
end

--- adv_examples(model, x, y, opts) -> the adversarial examples of the
-- tables' adversarial accuracy: x_adv, and for 'autoattack' its info as
-- well.  opts: eps (required), attack ('pgd': PGD-10, step 2 eps / 10,
-- random start; 'multitarget'; 'autoattack': standard), classes, norm
-- ('linf' default, or 'l2'), seed (default 0 for autoattack; pgd and
-- multitarget draw from rl.Generator(seed)) or generator (pgd,
-- multitarget), steps and step_size (pgd, multitarget), batch
-- (autoattack's chunk size), checks (autoattack's gradient-masking checks;
-- default false).  An option the attack does not take is an error.
function metrics.adv_examples(model, x, y, o)
  o = need_eps('metrics.adv_examples', o, 2)
  options.model('metrics.adv_examples', model)
  local a = o.attack
  local gen = o.generator or (o.seed ~= nil and rl.Generator(o.seed) or nil)
  if a == 'autoattack' then
    -- found at call time: rl.attacks.autoattack is a module of its own
    local aa = attacks.autoattack or error('metrics: rl.attacks.autoattack is not available', 2)
    return aa(model, x, y, {
      eps = o.eps, norm = o.norm, version = 'standard', seed = o.seed or 0, n_classes = o.classes,
      checks = o.checks or false, batch = o.batch, mode = 'eval',
    })
  end
  if a == 'multitarget' then
    return attacks.multi_targeted(model, x, y, {
      eps = o.eps, classes = o.classes, steps = o.steps, step_size = o.step_size, norm = o.norm,
      mode = 'eval', generator = gen,
    })
  end
  return attacks.pgd(model, x, y, {
    eps = o.eps, steps = o.steps or 10, step_size = o.step_size or 2 * o.eps / 10, norm = o.norm,
    random_start = true, mode = 'eval', generator = gen,
  })
end

--- adv_accuracy(model, x, y, opts) -> the fraction of x the model still
-- classifies right under metrics.adv_examples (same opts).
function metrics.adv_accuracy(model, x, y, o)
  need_eps('metrics.adv_accuracy', o, 2)
  local xa = metrics.adv_examples(model, x, y, o)
  return model:with_mode('eval', function() return correct(model, xa, y, 'adv_accuracy') / x.shape[1] end)
end

-- r(x') = ||f(x) - f(x')||_1 / ||x - x' + 1e-6||_inf, per sample
local function ratio(model, x, fx, xa)
  local B = x.shape[1]
  local num = (fx - model(xa)):abs():sum(2)
  local den = (x - xa + 1e-6):view(B, -1):abs():max(2)
  return num / den
end

-- One chunk: from the start x' (x + 0.001 N(0,1) unless given), `steps`
-- sign steps of `step_size` on r ('max') or on -r ('reference'), each
-- projected onto the eps-ball and [0, 1] (the attack core); the
-- per-sample r at the end.
local function lipschitz_chunk(model, x, start, o, descend)
  local fx = rl.no_grad(function() return model(x) end)
  local B = x.shape[1]
  local function objective(logits, xr)
    local num = (fx - logits):abs():sum(2)
    local den = (x - xr + 1e-6):view(B, -1):abs():max(2)
    local r = (num / den):sum()
    return descend and -r or r
  end
  local xa = attacks.run(model, x, {
    objective = objective, eps = o.eps, steps = o.steps or 10, step_size = o.step_size or 0.003,
    rule = 'sign', start = start or 'normal', sigma = 0.001, generator = o.generator,
  })
  return rl.no_grad(function() return ratio(model, x, fx, xa) end)
end

-- The options of lipschitz (below).
local LIP_ROWS = {
  { 'eps', 'number', options.REQUIRED, options.finite('>= 0') },
  { 'mode', 'string', 'max', { 'max', 'reference' } },
  { 'steps', 'integer', 10, '>= 0' },
  { 'step_size', 'number', 0.003, options.finite('>= 0') },
  { 'batch', 'integer', nil, '>= 1' },
  { 'start', 'tensor' },
  { 'generator', 'generator' },
}
local LIP_OPTS = {}
for _, r in ipairs(LIP_ROWS) do LIP_OPTS[r[1]] = true end

--- The local Lipschitz estimate, per sample (a [B] tensor): start
-- x' = x + 0.001 N(0,1), then 10 times x' <- Pi(x' + 0.003 sign(grad)),
-- Pi the eps-ball and [0, 1], and r(x') at the end.
--   mode 'max' (default): the gradient of r, so the steps raise the ratio:
--     a lower bound on the local Lipschitz constant, what the word means.
--   mode 'reference': the paper's column, as the reference's
--     estimate_local_lip_v2 computes it: the gradient of -r, so the steps
--     LOWER the ratio (docs/quirks.md), in chunks of 16 images.
-- opts: eps (required), mode, steps (10), step_size (0.003), batch (the
-- chunk size: 16 in 'reference' mode, the whole batch in 'max' mode),
-- start (the starting x' for the whole batch, instead of the random draw),
-- generator.
function metrics.lipschitz(model, x, o)
  o = o or {}
  options.known('lipschitz', o, LIP_OPTS)
  if type(o.eps) ~= 'number' then error('lipschitz: opts.eps (the radius) is required', 2) end
  o = options.check('lipschitz', o, LIP_ROWS)
  local mode = o.mode
  options.model('lipschitz', model)
  options.in_box('lipschitz', x, 0, 1, true)
  if o.start ~= nil and not (rl.is_tensor(o.start) and o.start.ndim == x.ndim and
      table.concat(o.start.shape, 'x') == table.concat(x.shape, 'x')) then
    error(string.format('lipschitz: opts.start must be a tensor of the batch\'s shape %s',
      table.concat(x.shape, 'x')), 2)
  end
  local descend = mode == 'reference'
  local B = x.shape[1]
  local chunk = o.batch or (descend and 16 or B)
  return model:with_mode('eval', function()
    if chunk >= B then return lipschitz_chunk(model, x, o.start, o, descend) end
    local parts = {}
    for i = 1, B, chunk do
      local n = math.min(chunk, B - i + 1)
      parts[#parts + 1] = lipschitz_chunk(model, x:narrow(1, i, n),
        o.start and o.start:narrow(1, i, n), o, descend)
    end
    return rl.cat(parts, 1)
  end)
end

local EVAL_OPTS = { adv = true, lipschitz = true, lipschitz_max = true, progress = true }
for k in pairs(ADV_OPTS) do EVAL_OPTS[k] = true end

--- Means over batches: `batches` is an iterator yielding x, y.  Returns
-- {n, acc, adv_acc, lipschitz, lipschitz_max}; each of the costly ones only
-- when asked (opts.adv, opts.lipschitz = the reference estimator, the
-- paper's column; opts.lipschitz_max = the maximising one).  opts.attack
-- picks the attack of adv_acc ('pgd', 'multitarget' or 'autoattack', with
-- the options of metrics.adv_examples), run on each batch.  opts.seed (or
-- generator) seeds the whole evaluation: one rl.Generator(seed) draws the
-- attacks' and the estimators' starts, batch after batch (AutoAttack
-- takes the seed itself).

function metrics.evaluate(model, batches, o)
  o = o or {}
  options.known('metrics.evaluate', o, EVAL_OPTS)
  options.model('metrics.evaluate', model)
  check_attack(o.attack)
  if (o.adv or o.lipschitz or o.lipschitz_max) and type(o.eps) ~= 'number' then
    error('metrics.evaluate: opts.eps (the radius) is required with adv, lipschitz or lipschitz_max', 2)
  end
  local n, ok, adv, lip, lipmax = 0, 0, 0, 0, 0
  -- the attack's steps and step size are not the estimator's
  local adv_opts = {}
  for k in pairs(ADV_OPTS) do adv_opts[k] = o[k] end
  if o.seed ~= nil and o.generator ~= nil then error('metrics.evaluate: give seed or generator, not both', 0) end
  local gen = o.generator or (o.seed ~= nil and rl.Generator(o.seed) or nil)
  if (o.attack or 'pgd') ~= 'autoattack' then adv_opts.generator, adv_opts.seed = gen, nil end
  local ref_opts = { eps = o.eps, mode = 'reference', generator = gen }
  local max_opts = { eps = o.eps, mode = 'max', generator = gen }
  for x, y in batches do
    local B = x.shape[1]
    n = n + B
    ok = ok + metrics.accuracy(model, x, y) * B
    if o.adv then adv = adv + metrics.adv_accuracy(model, x, y, adv_opts) * B end
    if o.lipschitz then lip = lip + metrics.lipschitz(model, x, ref_opts):sum():item() end
    if o.lipschitz_max then lipmax = lipmax + metrics.lipschitz(model, x, max_opts):sum():item() end
    if o.progress then o.progress(n) end
  end
  if n == 0 then error('evaluate: no batches', 2) end
  return {
    n = n, acc = ok / n,
    adv_acc = o.adv and adv / n or nil,
    lipschitz = o.lipschitz and lip / n or nil,
    lipschitz_max = o.lipschitz_max and lipmax / n or nil,
  }
end

-- Every measurement in f32, even when called inside rl.autocast (a model
-- trained in bf16 is measured in f32; issue #15).
-- A refusal is raised at the caller's line (options.public).
for _, name in ipairs { 'accuracy', 'adv_examples', 'adv_accuracy', 'lipschitz', 'evaluate' } do
  local fn = metrics[name]
  metrics[name] = options.public(function(...) return rl.autocast(nil, fn, ...) end)
  options.wrapped[metrics[name]] = options.wrapped[fn] or fn -- rl.help reads fn's doc
end

return metrics
