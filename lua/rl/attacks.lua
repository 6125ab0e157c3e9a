--- rl.attacks: one iterative attack core and the attacks built on it.
--
--   run(model, x, opts)            the core (below): objective, norm and
--                                  projection, step rule, start, restarts,
--                                  per-sample best tracking, model mode
--   fgsm(model, x, y, opts)        one signed step of eps
--   pgd(model, x, y, opts)         PGD, l-inf or l2, random start, restarts
--   multi_targeted(model, x, y, opts)
--                                  the reference's MultiTarget
--   apgd(model, x, y, opts)        APGD-CE / APGD-DLR / APGD-T (Croce and
--                                  Hein 2020, as fra31/auto-attack runs it)
--   dlr(logits, y, [target])       the DLR loss and its targeted form, [B]
--   apgd_checkpoints(steps)        APGD's step-size checkpoints
--   autoattack(model, x, y, opts)  the AutoAttack ensemble (rl.autoattack)
--
-- The l-inf and l2 steps of PGD are one fused kernel each (F.linf_step_ /
-- F.l2_step_: step, project onto the eps-ball and the [lo, hi] box); the
-- gradient is taken with rl.grad on the input only, so no weight gradient
-- is computed.  TRADES's inner maximisation, the Lipschitz estimate and
-- LLR's ascent (rl.methods, rl.metrics) run on the same core.
local rl = require 'rl.base'
local options = require 'rl.options'
local F = rl.F

local attacks = {}

-- The shape [B, 1, 1, ...] that broadcasts a per-sample [B] over a batch.
local function per_sample(x)
  local s = { x.shape[1] }
  for _ = 2, x.ndim do s[#s + 1] = 1 end
  return s
end
attacks.per_sample = per_sample

local function check_batch(who, x, y)
  if not rl.is_tensor(x) or x.ndim < 2 then error(who .. ': x must be a batch tensor [B, ...]', 0) end
  if y ~= nil and not (rl.is_tensor(y) and y.dtype == 'i64' and y.ndim == 1 and y.shape[1] == x.shape[1]) then
    error(string.format('%s: y must be i64 labels [%d], got %s', who, x.shape[1], options.what(y)), 0)
  end
end

-- The options rows describe, checked by rl.options (a norm is 'linf' or
-- 'l2' once checked), and those whose kind varies (a name or a function, a
-- name or a tensor...), `loose`, which the caller checks.  A seed becomes a
-- generator.  Returns the checked table.
local function check_opts(who, o, rows, loose)
  if o == nil then o = {} end
  if type(o) ~= 'table' or rl.is_tensor(o) then
    error(string.format('%s: options must be a table, got %s', who, options.what(o)), 0)
  end
  local names, plain, is_loose = {}, {}, {}
  for _, r in ipairs(rows) do names[#names + 1] = r[1] end
  for _, k in ipairs(loose) do
    names[#names + 1] = k
    is_loose[k] = true
  end
  options.reject_unknown(who, o, names)
  for k, v in pairs(o) do if not is_loose[k] then plain[k] = v end end
  local c = options.check(who, plain, rows)
  for _, k in ipairs(loose) do c[k] = o[k] end
  if c.seed ~= nil then
    if c.generator ~= nil then error(who .. ': give seed or generator, not both', 0) end
    c.generator, c.seed = rl.Generator(c.seed), nil
  end
  return c
end

---------------------------------------------------------------------------
-- objectives: {grad = fn(logits, v) -> scalar or [B], each = fn -> [B]}
---------------------------------------------------------------------------

-- The positions of the k largest logits of each row, in order (no
-- gradient: the values are gathered from z afterwards, as a sort's are).
local function top_indices(z, k)
  return rl.no_grad(function()
    local K = z.shape[2]
    local cols = rl.arange(K, { device = z.device }):view(1, K)
    local zz, out = z:detach(), {}
    for i = 1, k do
      out[i] = zz:argmax(2)
      if i < k then zz = zz:masked_fill(cols:eq(out[i]:view(-1, 1)), -math.huge) end
    end
    return out
  end)
end

local function pick(z, idx) return z:gather(2, idx:view(-1, 1)):view(-1) end

--- attacks.dlr(logits, y, [target]) -> [B]: the Difference of Logits
-- Ratio loss (Croce and Hein 2020), with z sorted so z_pi1 >= z_pi2 >= ...:
--   untargeted  -(z_y - max_{i ~= y} z_i) / (z_pi1 - z_pi3 + 1e-12)
--   targeted    -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
function attacks.dlr(z, y, target)
  local K = z.ndim == 2 and z.shape[2] or 0
  if K < (target and 4 or 3) then
    error(string.format('dlr: logits must be [B, K] with K >= %d, got %s', target and 4 or 3,
      options.what(z)), 2)
  end
  local top = top_indices(z, target and 4 or 3)
  local z1, z3 = pick(z, top[1]), pick(z, top[3])
  local zy = pick(z, y)
  if target then
    return -(zy - pick(z, target)) / (z1 - (z3 + pick(z, top[4])) * 0.5 + 1e-12)
  end
  local other = rl.where(top[1]:eq(y), pick(z, top[2]), z1)
  return -(zy - other) / (z1 - z3 + 1e-12)
end

-- The built-in objectives, from a context c (y, target, probs, targeted).
-- 'ce' keeps the summed cross-entropy for the gradient (PGD's exact bits).
local OBJECTIVES = {
  ce = function(c)
    local t = c.target or c.y
    local sign = c.targeted and -1 or 1
    return {
      grad = function(z)
        local l = F.cross_entropy(z, t, 'sum')
        return c.targeted and -l or l
      end,
      each = function(z)
        local l = F.cross_entropy(z, t, 'none')
        return sign < 0 and -l or l
      end,
    }
  end,
  dlr = function(c)
    local f = function(z) return attacks.dlr(z, c.y, c.targeted and c.target or nil) end
    return { grad = f, each = f }
  end,
  kl = function(c) -- KL_sum(probs || softmax(z)), probs fixed
    return {
      grad = function(z) return F.kl_div(F.log_softmax(z, 2), c.probs, 'sum') end,
      each = function(z) return F.kl_div(F.log_softmax(z, 2), c.probs, 'none'):sum(2) end,
    }
  end,
}

local NEEDS = { ce = 'y', dlr = 'y', kl = 'probs' }

-- per_step: the run reads per-sample values at every step, so the
-- gradient is that of their sum.
local function objective_of(c, per_step)
  local obj = c.objective
  if type(obj) == 'function' then return { grad = obj, each = obj } end
  obj = OBJECTIVES[obj](c)
  if per_step then obj.grad = obj.each end
  return obj
end

---------------------------------------------------------------------------
-- starts, projections, steps
---------------------------------------------------------------------------

local function like(x, g) return { dtype = x.dtype, device = x.device, generator = g } end

-- The starting iterate.  In 'input' space the iterate is x' itself; in
-- 'delta' space it is x' - x.
local function drawn_start(x, c)
  local s, g, eps = c.start, c.generator, c.eps
  if rl.is_tensor(s) then return s:clone() end
  local delta = c.space == 'delta'
  return rl.no_grad(function()
    if s == 'none' then return delta and rl.zeros_like(x) or x:clone() end
    if s == 'normal' then
      local d = rl.randn(x.shape, like(x, g))
      return delta and d * c.sigma or x + d * c.sigma
    end
    local B = x.shape[1]
    local d
    if s == 'uniform' then
      if c.norm == 'linf' then
        d = rl.rand(x.shape, like(x, g)) * (2 * eps) - eps
      else -- a uniform direction, a radius uniform in [0, eps]
        d = rl.randn(x.shape, like(x, g))
        local n = d:view(B, -1):norm(2, 2, true):clamp(1e-12)
        local r = rl.rand(B, 1, like(x, g)) * eps
        d = (d:view(B, -1) / n * r):view(x.shape)
      end
    else -- 'sphere': fra31's start, a random direction scaled onto the ball's surface
      if c.norm == 'linf' then
        local t = rl.rand(x.shape, like(x, g)) * 2 - 1
        d = t / t:view(B, -1):abs():max(2, true):view(per_sample(x)) * eps
      else
        local t = rl.randn(x.shape, like(x, g))
        d = t / (t:view(B, -1):norm(2, 2, true):view(per_sample(x)) + 1e-12) * eps
      end
    end
    return (x + d):clamp(c.lo, c.hi)
  end)
end

local projector
-- A given or normal start is where the first step begins, unprojected (the
-- reference's TRADES and Lipschitz estimator); with no steps it is the
-- result, which must lie in the ball and the box.
local function start_of(x, c)
  local v = drawn_start(x, c)
  if c.steps == 0 and c.space ~= 'delta' and (rl.is_tensor(c.start) or c.start == 'normal') then
    v = rl.no_grad(function() return projector(x, c)(v) end)
  end
  return v
end

-- Pi: onto the eps-ball around x (l-inf or l2) and the [lo, hi] box.
function projector(x, c)
  local eps, lo, hi = c.eps, c.lo, c.hi
  if c.norm == 'linf' then
    local below, above = x - eps, x + eps
    return function(u) return u:maximum(below):minimum(above):clamp(lo, hi) end
  end
  local B, shape = x.shape[1], per_sample(x)
  return function(u)
    local d = u - x
    local n = d:view(B, -1):norm(2, 2, true):view(shape)
    return (x + d / (n + 1e-12) * n:clamp(0, eps)):clamp(lo, hi)
  end
end

-- The iterate's gradient (summed over eot draws, then averaged) and, when
-- the objective is per sample, its values; also the logits of the last draw.
local function evaluate(model, c, obj, v)
  local g, each, logits
  for k = 1, c.eot do
    local vr = v:detach():requires_grad_()
    local z = model(c.space == 'delta' and c.x + vr or vr)
    local l = obj.grad(z, vr)
    if l.ndim == 1 then
      local e = l:detach()
      each = each and each + e or e
      l = l:sum()
    end
    local gk = rl.grad(l, vr)
    g = g and g + gk or gk
    logits = z
  end
  if c.eot > 1 then
    g = g / c.eot
    if each then each = each / c.eot end
  end
  return g, each, logits:detach()
end

-- Per sample, did the logits break the sample: misclassified (untargeted,
-- or targeted with separate targets), or on the target (targeted, y the
-- targets).
local function success(c, z)
  local pred = z:argmax(2)
  if c.targeted and c.target == nil then return pred:eq(c.y) end
  return pred:ne(c.y)
end

local function labelled(c) return c.y ~= nil end

--- APGD's checkpoints for `steps` iterations, as the iterations after which
-- the step size may halve: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j +
-- max(p_j - p_{j-1} - 0.03, 0.06), on the integer grid fra31 uses
-- (windows of floor(0.22 N), shrinking by floor(0.03 N) to floor(0.06 N),
-- each at least 1).  100 steps: 22, 41, 57, 70, 80, 87, 93, 99.
function attacks.apgd_checkpoints(steps)
  local w = math.max(math.floor(0.22 * steps), 1)
  local shrink, least = math.max(math.floor(0.03 * steps), 1), math.max(math.floor(0.06 * steps), 1)
  local out, at = {}, w
  while at <= steps do
    out[#out + 1] = at
    w = math.max(w - shrink, least)
    at = at + w
  end
  return out
end

-- One run of the plain rules (sign, normalised, or a function): returns
-- the kept iterate, and, when tracking, its per-sample objective, the
-- broken mask and the broken points.
local function plain_run(model, c, obj, v)
  local x, step = c.x, c.rule
  local track = c.keep ~= 'last'
  local best, best_loss, broken, advb
  local shape = per_sample(x)
  -- Note the iterate v, its objective and (when labelled) its verdict s:
  -- per sample the highest objective so far, and the points that broke.
  -- `moving`: v is stepped in place afterwards, so a kept v is a copy.
  local function note(v, each, s, moving)
    local kept = moving and (not best or (s and not advb)) and v:clone() or v
    if not best then
      best, best_loss = kept, each
    else
      local up = each:gt(best_loss)
      best, best_loss = rl.where(up:view(shape), v, best), rl.where(up, each, best_loss)
    end
    if s then
      broken = broken and broken:logical_or(s) or s
      advb = advb and rl.where(s:view(shape), v, advb) or kept
    end
  end
  for _ = 1, c.steps do
    local g, each, z = evaluate(model, c, obj, v)
    if track then
      if not each then
        error(c.who .. ': keep needs an objective with per-sample values [B]', 0)
      end
      rl.no_grad(function() note(v, each, labelled(c) and success(c, z) or nil, true) end)
    end
    if step == 'sign' then
      rl.no_grad(function() F.linf_step_(v, g, x, c.step_size, c.eps, c.lo, c.hi) end)
    elseif step == 'normalised' then
      rl.no_grad(function() F.l2_step_(v, g, x, c.step_size, c.eps, c.lo, c.hi) end)
    else
      v = step(v, g, c) or v
    end
  end
  local need = track or c.restarts > 1 or c.stop_broken
  if not need then return v end
  -- the final iterate's objective (and verdict), without a gradient
  return rl.no_grad(function()
    local z = model(c.space == 'delta' and x + v or v)
    local each = obj.each(z, v)
    if each.ndim ~= 1 then
      error(c.who .. ': restarts, stop_broken and keep need an objective with per-sample values [B]', 0)
    end
    local s = labelled(c) and success(c, z) or nil
    if not track then return v, each, s, s and v end
    note(v, each, s, false)
    return best, best_loss, broken, advb
  end)
end

-- One run of APGD (Croce and Hein 2020, Algorithm 1, as fra31 runs it):
-- step size 2 eps, momentum alpha, per-sample halving at the checkpoints
-- when (a) at most rho of the window's steps raised the objective or (b)
-- neither the step size nor the best objective changed since the last
-- checkpoint; a halving sample restarts from its best point.  Returns the
-- best-objective points, their objective, the broken mask and the points
-- that broke them.  (fra31 compares the window's first step with 0, not
-- with the start's objective; this follows the paper.)
local function apgd_run(model, c, obj, v)
  local x, n = c.x, c.x.shape[1]
  local shape = per_sample(x)
  local project = projector(x, c)
  local g, each, z = evaluate(model, c, obj, v)
  if not each then error(c.who .. ': APGD needs an objective with per-sample values [B]', 0) end
  local broken, advb, best, best_g, best_loss, eta, v_old, count, prev, last_best, reduced
  rl.no_grad(function()
    broken = labelled(c) and success(c, z) or rl.zeros({ n }, { dtype = 'u8', device = x.device })
    advb, best, best_g, best_loss = v:clone(), v:clone(), g, each
    eta = rl.full(shape, c.step_size or 2 * c.eps, { dtype = x.dtype, device = x.device })
    v_old, count, prev = v, rl.zeros_like(each), each
    last_best, reduced = best_loss, rl.ones({ n }, { dtype = 'u8', device = x.device })
  end)
  local checks, next_check, since = attacks.apgd_checkpoints(c.steps), 1, 0
  for i = 1, c.steps do
    local a = i == 1 and 1 or c.momentum
    rl.no_grad(function()
      local z1
      if c.norm == 'linf' then
        z1 = project(v + g:sign() * eta)
      else
        local gn = g:view(n, -1):norm(2, 2, true):view(shape)
        z1 = project(v + g / (gn + 1e-12) * eta)
      end
      local vn = a == 1 and z1 or project(v + (z1 - v) * a + (v - v_old) * (1 - a))
      v_old, v = v, vn
    end)
    g, each, z = evaluate(model, c, obj, v)
    rl.no_grad(function()
      if labelled(c) then
        local s = success(c, z)
        broken = broken:logical_or(s)
        advb = rl.where(s:view(shape), v, advb)
      end
      local up = each:gt(best_loss)
      best, best_g = rl.where(up:view(shape), v, best), rl.where(up:view(shape), g, best_g)
      best_loss = rl.where(up, each, best_loss)
      count, prev = count + each:gt(prev):to(each.dtype), each
      if i == checks[next_check] then
        local window = i - since
        local halve = count:le(window * c.rho)
            :logical_or(reduced:logical_not():logical_and(last_best:ge(best_loss)))
        local h = halve:view(shape)
        eta = rl.where(h, eta * 0.5, eta)
        v, g = rl.where(h, best, v), rl.where(h, best_g, g)
        reduced, last_best = halve, best_loss
        count = rl.zeros_like(each)
        since, next_check = i, next_check + 1
      end
    end)
  end
  return best, best_loss, broken, advb
end

-- A full batch from a run on some of its rows: row i is sub's row inv[i]
-- when inv[i] < #sub, else full's row i (inv[i] = #sub + i - 1).  One
-- gather: cat, then index_select.
local function spread(sub, full, inv)
  return rl.cat({ sub, full }, 1):index_select(1, inv)
end

-- The context of a run on the rows idx (an i64 tensor) of the batch.
local function narrowed(c, idx)
  local s = setmetatable({}, { __index = c })
  s.x = c.x:index_select(1, idx)
  for _, k in ipairs { 'y', 'target', 'probs' } do
    if c[k] then s[k] = c[k]:index_select(1, idx) end
  end
  if rl.is_tensor(c.start) then s.start = c.start:index_select(1, idx) end
  return s
end

local RULES = { sign = 'linf', normalised = 'l2', apgd = true }
local STARTS = { none = true, uniform = true, normal = true, sphere = true }

local RUN_ROWS = {
  { 'eps', 'number', options.REQUIRED, options.finite('>= 0') },
  { 'steps', 'integer', 10, '>= 0' },
  { 'step_size', 'number', nil, '>= 0' },
  { 'lo', 'number', 0 },
  { 'hi', 'number', 1 },
  { 'y', 'tensor' },
  { 'target', 'tensor' },
  { 'probs', 'tensor' },
  { 'targeted', 'boolean', false },
  { 'sigma', 'number', 0.001, '>= 0' },
  { 'space', 'string', 'input', { 'input', 'delta' } },
  { 'keep', 'string', nil, { 'last', 'loss', 'broken' } },
  { 'restarts', 'integer', 1, '>= 1' },
  { 'stop_broken', 'boolean', false },
  { 'mode', 'string', nil, { 'train', 'eval' } },
  { 'rho', 'number', 0.75, '[0, 1]' },
  { 'momentum', 'number', 0.75, '[0, 1]' },
  { 'eot', 'integer', 1, '>= 1' },
  { 'seed', 'integer' },
  { 'norm', 'norm', 'linf' },
  { 'generator', 'generator' },
}
local RUN_LOOSE = { 'objective', 'rule', 'start' }

local function check_run(who, x, o)
  local c = check_opts(who, o, RUN_ROWS, RUN_LOOSE)
  check_batch(who, x, c.y)
  options.in_box(who, x, c.lo, c.hi)
  local B = x.shape[1]
  c.who, c.x = who, x
  local obj = c.objective
  if type(obj) ~= 'function' and not OBJECTIVES[obj] then
    error(string.format("%s: objective must be 'ce', 'dlr', 'kl' or a function(logits, v), got %s", who,
      options.what(obj)), 0)
  end
  local need = NEEDS[obj]
  if need and c[need] == nil then error(string.format("%s: objective '%s' needs opts.%s", who, obj, need), 0) end
  if c.target ~= nil then
    check_batch(who .. ' (target)', x, c.target)
    -- an untargeted objective climbs on y: a target would go unused
    if not c.targeted then error(who .. ': target is for targeted = true (untargeted attacks climb on y)', 0) end
  end
  if c.probs ~= nil and not (c.probs.ndim == 2 and c.probs.shape[1] == B) then
    error(string.format('%s: probs must be probabilities [%d, K], got %s', who, B, options.what(c.probs)), 0)
  end
  if obj == 'dlr' and c.targeted and c.target == nil then
    error(who .. ': targeted DLR needs opts.target (y stays the true labels)', 0)
  end
  c.norm = c.norm or 'linf'
  local rule = c.rule
  if rule == nil then rule = c.norm == 'linf' and 'sign' or 'normalised' end
  if type(rule) ~= 'function' then
    if not RULES[rule] then
      error(string.format("%s: rule must be 'sign', 'normalised', 'apgd' or a function(v, g, opts), got %s",
        who, options.what(rule)), 0)
    end
    if RULES[rule] ~= true and RULES[rule] ~= c.norm then
      error(string.format("%s: rule '%s' is the %s step; norm is %s", who, rule,
        RULES[rule] == 'linf' and 'l-inf' or 'l2', c.norm), 0)
    end
    if c.space == 'delta' then error(who .. ": space 'delta' takes a function rule", 0) end
  end
  c.rule = rule
  local s = c.start
  if s == nil then s = 'none' end
  if rl.is_tensor(s) then
    if table.concat(s.shape, 'x') ~= table.concat(x.shape, 'x') then
      error(string.format("%s: start must be a tensor of the batch's shape %s, got %s", who,
        table.concat(x.shape, 'x'), options.what(s)), 0)
    end
  elseif not STARTS[s] then
    error(string.format("%s: start must be 'none', 'uniform', 'normal', 'sphere' or a tensor, got %s", who,
      options.what(s)), 0)
  elseif c.space == 'delta' and (s == 'uniform' or s == 'sphere') then
    error(string.format("%s: start '%s' is for space 'input'", who, s), 0)
  end
  c.start = s
  if c.step_size == nil and rule ~= 'apgd' then c.step_size = 2.5 * c.eps / math.max(c.steps, 1) end
  c.keep = c.keep or (rule == 'apgd' and 'broken' or 'last')
  if (c.keep == 'broken' or c.stop_broken) and not labelled(c) then
    error(string.format('%s: %s needs labels (opts.y)', who, c.stop_broken and 'stop_broken' or "keep 'broken'"), 0)
  end
  if c.stop_broken and type(obj) == 'function' then
    error(who .. ': stop_broken runs on a subset of the batch, so it needs a built-in objective', 0)
  end
  return c
end

--- attacks.run(model, x, opts) -> x_adv, info: the one iterative attack.
--
-- opts (unknown keys are errors):
--   objective  what to climb: 'ce' (cross-entropy on opts.y; targeted:
--              minus CE towards opts.target, or towards y when no target
--              is given), 'dlr' (targeted: needs opts.target), 'kl'
--              (KL_sum(opts.probs || softmax(f(x')))), or function(logits, v)
--              -> a scalar, or a [B] of per-sample values (summed for the
--              gradient; needed by apgd, keep, restarts and stop_broken).
--              v is the iterate: x' in space 'input', x' - x in 'delta'.
--   eps (required), norm ('linf' or 'l2'), lo/hi (the box, 0 and 1)
--   rule       'sign' (l-inf: x' <- Pi(x' + step_size sign(g)), fused),
--              'normalised' (l2: g / ||g||_2, fused), 'apgd' (APGD's
--              momentum and checkpoint halving: rho, momentum 0.75,
--              step_size 2 eps), or function(v, g, opts) -> the new v (or
--              nil after an in-place step).  Default: by norm.
--   steps (10), step_size (2.5 eps / steps)
--   start      'none' (default), 'uniform' (in the ball), 'normal'
--              (sigma * N(0,1), 0.001, not clipped), 'sphere' (fra31's:
--              a random direction on the ball's surface), or a tensor.
--   space      'input' (default) or 'delta' (the iterate is x' - x; the
--              model sees x + v; takes a function rule).
--   restarts (1): per sample, the restart with the highest objective, or
--              a broken point where one was found (keep 'broken').
--   keep       'last' (the final iterate; the default of plain rules),
--              'loss' (the best-objective iterate), 'broken' (a point that
--              breaks the sample, else the best-objective one; APGD's).
--   stop_broken  skip samples the clean input or an earlier restart
--              already broke (labels needed; built-in objectives).
--   mode       'train' or 'eval' during the attack (unchanged if nil); the
--              caller's mode is restored, even when the attack raises.
--   generator or seed; eot (1: gradients averaged over eot draws, for
--              randomised models).
-- info: broken ([B] u8: the sample was broken, when labelled and tracked)
-- and loss ([B]: the objective at the kept point, when tracked).
function attacks.run(model, x, o)
  local c = check_run('attacks.run', x, o)
  return attacks._run(model, c)
end

-- The restarts around the runs, on a checked context c (check_run), in
-- f32 even inside rl.autocast unless the region allows bf16 attacks.
-- c.skip ([B] u8, internal): samples to leave alone, as already broken.
local run_restarts
function attacks._run(model, c)
  options.model(c.who, model)
  return rl.autocast.attack(run_restarts, model, c)
end

function run_restarts(model, c)
  local x = c.x
  return model:with_mode(c.mode, function()
    local B, shape = x.shape[1], per_sample(x)
    local out, loss, broken
    if c.stop_broken then
      rl.no_grad(function()
        out = x:clone()
        loss = rl.full({ B }, -math.huge, { dtype = x.dtype, device = x.device })
        broken = success(c, model(x))
        if c.skip then broken = broken:logical_or(c.skip) end
      end)
    end
    for _ = 1, c.restarts do
      local rc, inv, valid = c, nil, nil
      if c.stop_broken then
        -- only the samples still standing: gather them, run, spread back
        local flags, idx, list = broken:tolist(), {}, {}
        for i, b in ipairs(flags) do
          if b == 0 then idx[#idx + 1] = i - 1; list[i] = #idx - 1 end
        end
        if #idx == 0 then break end
        if #idx < B then
          for i = 1, B do list[i] = list[i] or (#idx + i - 1) end
          inv = rl.tensor(list, { dtype = 'i64', device = x.device })
          rc = narrowed(c, rl.tensor(idx, { dtype = 'i64', device = x.device }))
          valid = broken:logical_not()
        end
      end
      local apgd = rc.rule == 'apgd'
      local obj = objective_of(rc, apgd or rc.keep ~= 'last')
      local v0 = start_of(rc.x, rc)
      local run = apgd and apgd_run or plain_run
      local v, each, brk, advb = run(model, rc, obj, v0)
      if each == nil then return v, {} end -- one plain run, nothing tracked
      rl.no_grad(function()
        if inv then
          v, each = spread(v, out, inv), spread(each, loss, inv)
          if brk then brk, advb = spread(brk, broken, inv):logical_and(valid), spread(advb, out, inv) end
        end
        if not loss then
          out, loss = v, each
        else -- per sample, the higher objective (a broken point stays)
          local up = each:gt(loss)
          if valid then up = up:logical_and(valid) end
          if broken and c.keep == 'broken' then up = up:logical_and(broken:logical_not()) end
          out, loss = rl.where(up:view(shape), v, out), rl.where(up, each, loss)
        end
        if brk then
          if c.keep == 'broken' then
            local new = broken and brk:logical_and(broken:logical_not()) or brk
            out = rl.where(new:view(shape), advb, out)
          end
          broken = broken and broken:logical_or(brk) or brk
        end
      end)
    end
    return out, { broken = broken, loss = loss }
  end)
end

---------------------------------------------------------------------------
-- the attacks
---------------------------------------------------------------------------

local PGD_ROWS = {
  { 'eps', 'number', options.REQUIRED, options.finite('>= 0') },
  { 'steps', 'integer', 10, '>= 0' },
  { 'step_size', 'number', nil, '>= 0' },
  { 'random_start', 'boolean', true },
  { 'restarts', 'integer', 1, '>= 1' },
  { 'targeted', 'boolean', false },
  { 'stop_broken', 'boolean', false },
  { 'lo', 'number', 0 },
  { 'hi', 'number', 1 },
  { 'mode', 'string', nil, { 'train', 'eval' } },
  { 'seed', 'integer' },
  { 'norm', 'norm', 'linf' },
  { 'generator', 'generator' },
}

-- After the options' names are checked (a misspelt 'epsilon' is named as
-- such), a missing radius is said plainly.
local function need_eps(who, o, names)
  if type(o) == 'table' and not rl.is_tensor(o) then
    options.reject_unknown(who, o, names)
    if type(o.eps) ~= 'number' then error(who .. ': opts.eps (the radius) must be a number >= 0', 0) end
  end
end

-- The option names of a rows table, plus `extra`.
local function row_names(rows, extra)
  local names = {}
  for _, r in ipairs(rows) do names[#names + 1] = r[1] end
  for _, k in ipairs(extra or {}) do names[#names + 1] = k end
  return names
end

local FGSM_ROWS = {
  { 'eps', 'number', options.REQUIRED, options.finite('>= 0') }, { 'targeted', 'boolean', false },
  { 'lo', 'number', 0 }, { 'hi', 'number', 1 }, { 'mode', 'string', nil, { 'train', 'eval' } },
}

--- FGSM: x + eps * sign(grad), clipped to [lo, hi].  opts eps, targeted
-- (y are then the targets), lo/hi, mode.
function attacks.fgsm(model, x, y, o)
  need_eps('fgsm', o or {}, row_names(FGSM_ROWS))
  local c = check_opts('fgsm', o, FGSM_ROWS, {})
  check_batch('fgsm', x, y)
  local r = check_run('fgsm', x, { objective = 'ce', y = y, targeted = c.targeted, eps = c.eps, steps = 1,
    step_size = c.eps, lo = c.lo, hi = c.hi, mode = c.mode })
  return (attacks._run(model, r))
end

--- PGD: opts eps, steps (10), step_size (2.5 * eps / steps), norm ('linf' or
-- 'l2'), random_start (true), restarts (1), targeted (false; y are then the
-- targets), stop_broken (false), lo/hi (0, 1), mode, generator or seed.
-- Returns the adversarial batch; with restarts, per sample the restart
-- with the highest loss.
function attacks.pgd(model, x, y, o)
  need_eps('pgd', o or {}, row_names(PGD_ROWS))
  local c = check_opts('pgd', o, PGD_ROWS, {})
  check_batch('pgd', x, y)
  local norm = c.norm or 'linf'
  local r = check_run('pgd', x, {
    objective = 'ce', y = y, targeted = c.targeted, eps = c.eps, norm = norm, steps = c.steps,
    step_size = c.step_size, start = c.random_start and 'uniform' or 'none', restarts = c.restarts,
    stop_broken = c.stop_broken, lo = c.lo, hi = c.hi, mode = c.mode, generator = c.generator,
  })
  return (attacks._run(model, r))
end

--- Multi-targeted PGD, as the reference's MultiTarget (its *MT grids):
-- for each class j, a targeted PGD towards j (opts as pgd; by default 20
-- steps of 2 eps / 20 from a random start); per sample, among the targets
-- other than its true class, keep the run whose final probability of its
-- own target is highest.  opts.classes defaults to the model's output width.
-- pgd's options but targeted (always true here), steps 20 by default, and
-- the number of classes
local MT_ROWS = {}
for _, r in ipairs(PGD_ROWS) do
  if r[1] == 'steps' then MT_ROWS[#MT_ROWS + 1] = { 'steps', 'integer', 20, '>= 0' }
  elseif r[1] ~= 'targeted' then MT_ROWS[#MT_ROWS + 1] = r end
end
MT_ROWS[#MT_ROWS + 1] = { 'classes', 'integer', nil, '>= 2' }

function attacks.multi_targeted(model, x, y, o)
  need_eps('multi_targeted', o or {}, row_names(MT_ROWS))
  local c = check_opts('multi_targeted', o, MT_ROWS, {})
  options.model('multi_targeted', model)
  check_batch('multi_targeted', x, y)
  local B = x.shape[1]
  local width = model:with_mode('eval', function() -- no batch-norm update, no dropout draw
    return rl.no_grad(function() return model(x:narrow(1, 1, math.min(B, 1))).shape[2] end)
  end)
  local K = c.classes or width
  if K > width then
    error(string.format('multi_targeted: classes (%d) must be at most the model\'s %d outputs', K, width), 0)
  end
  local opts = {}
  for k, v in pairs(c) do opts[k] = v end
  opts.targeted, opts.classes = true, nil
  opts.step_size = c.step_size or 2 * c.eps / math.max(c.steps, 1)
  if opts.seed ~= nil then opts.generator, opts.seed = rl.Generator(opts.seed), nil end
  local shape = per_sample(x)
  local best, best_p = x:clone(), rl.full({ B }, -1, { dtype = x.dtype, device = x.device })
  for j = 0, K - 1 do
    local t = rl.full({ B }, j, { dtype = 'i64', device = x.device })
    local xa = attacks.pgd(model, x, t, opts)
    rl.no_grad(function()
      local pj = model:with_mode(c.mode, function() return F.softmax(model(xa), 2) end):select(2, j + 1)
      -- a run towards the true class is no attack
      local better = pj:gt(best_p):logical_and(y:ne(j))
      best = rl.where(better:view(shape), xa, best)
      best_p = rl.where(better, pj, best_p)
    end)
  end
  return best
end

local APGD_ROWS = {
  { 'eps', 'number', options.REQUIRED, options.finite('>= 0') },
  { 'loss', 'string', 'ce', { 'ce', 'dlr' } },
  { 'targeted', 'boolean', false },
  { 'n_target_classes', 'integer', nil, '>= 1' },
  { 'steps', 'integer', 100, '>= 1' },
  { 'restarts', 'integer', 1, '>= 1' },
  { 'rho', 'number', 0.75, '[0, 1]' },
  { 'momentum', 'number', 0.75, '[0, 1]' },
  { 'eot', 'integer', 1, '>= 1' },
  { 'lo', 'number', 0 },
  { 'hi', 'number', 1 },
  { 'mode', 'string', 'eval', { 'train', 'eval' } },
  { 'seed', 'integer' },
  { 'norm', 'norm', 'linf' },
  { 'generator', 'generator' },
}

--- attacks.apgd(model, x, y, opts) -> x_adv, info: APGD (Croce and Hein
-- 2020) as fra31/auto-attack runs it.  opts: eps (required), norm ('linf'
-- or 'l2'), loss ('ce' or 'dlr'), targeted (false; true: APGD-T, the loss
-- towards each of the n_target_classes (9, at most K - 1) highest non-true
-- classes of the clean logits in turn), steps (100), restarts (1), rho
-- (0.75), momentum (0.75), eot (1), lo/hi, mode ('eval'), seed (0, as
-- fra31) or generator.  Each restart (and target) runs only on the samples still
-- robust.  x_adv holds, per sample, a point that breaks it where one was
-- found, else the highest-loss point; info.broken ([B] u8) says which
-- (clean misclassified samples count as broken and keep x), info.loss.
function attacks.apgd(model, x, y, o)
  need_eps('apgd', o or {}, row_names(APGD_ROWS))
  local c = check_opts('apgd', o, APGD_ROWS, {})
  check_batch('apgd', x, y)
  local base = {
    objective = c.loss, y = y, eps = c.eps, norm = c.norm or 'linf', rule = 'apgd', start = 'sphere',
    steps = c.steps, restarts = c.restarts, rho = c.rho, momentum = c.momentum, eot = c.eot,
    lo = c.lo, hi = c.hi, mode = c.mode, generator = c.generator or rl.Generator(0),
    keep = 'broken', stop_broken = true,
  }
  if not c.targeted then
    if c.n_target_classes then error('apgd: n_target_classes is for targeted = true (APGD-T)', 0) end
    return attacks._run(model, check_run('apgd', x, base))
  end
  -- APGD-T: the targets by the clean logits, one target rank after another
  local z = model:with_mode(c.mode, function() return rl.no_grad(function() return model(x) end) end)
  local K = z.shape[2]
  local n = c.n_target_classes or math.min(9, K - 1)
  if n > K - 1 then
    error(string.format('apgd: n_target_classes must be at most K - 1 = %d, got %d', K - 1, n), 0)
  end
  local ranks = top_indices(z, n + 1)
  local out, info
  base.targeted = true
  for r = 2, n + 1 do
    base.target = ranks[r]
    local rc = check_run('apgd', x, base)
    rc.skip = info and info.broken
    local xr, ir = attacks._run(model, rc)
    if not out then
      out, info = xr, ir
    else
      rl.no_grad(function()
        -- samples broken before were skipped (xr holds x there): keep them;
        -- robust ones keep the point of the higher loss
        local keep_old = info.broken:logical_or(ir.broken:logical_not():logical_and(ir.loss:le(info.loss)))
        out = rl.where(keep_old:view(per_sample(x)), out, xr)
        info = { broken = info.broken:logical_or(ir.broken), loss = rl.where(keep_old, info.loss, ir.loss) }
      end)
    end
  end
  return out, info
end

--- attacks.autoattack(model, x, y, opts) -> adv, info: the AutoAttack
-- ensemble, with gradient-masking checks and a resumable state; see
-- rl.autoattack (loaded on first use: it is built on this module).
attacks.autoattack = options.public(function(...) return require('rl.autoattack')._run(...) end)

-- A refusal ("pgd: unknown option 'step'") is raised at the caller's line.
for _, name in ipairs { 'run', 'fgsm', 'pgd', 'multi_targeted', 'apgd' } do
  attacks[name] = options.public(attacks[name])
end

return attacks
