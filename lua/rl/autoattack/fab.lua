--- rl.autoattack.fab: FAB, the Fast Adaptive Boundary attack (Croce &
-- Hein 2020, "Minimally distorted adversarial examples with a fast
-- adaptive boundary attack"), l-inf and l2, as AutoAttack runs it: FAB-T,
-- the targeted version of its standard suite (the default), and the
-- untargeted FAB of its 'plus' suite.
--
--   adv, robust = fab.attack(model, x, y, {eps, norm = 'linf' | 'l2',
--       targeted = true, n_target_classes = 9, steps = 100, restarts = 1,
--       alpha_max = 0.1, eta = 1.05, beta = 0.9, generator, mode,
--       early_stop = true})
--
-- Each step linearises a margin logit_j - logit_y at the iterate: the
-- hyperplane where that linear model is zero.  FAB-T (targeted = true)
-- runs once for each of the n_target_classes classes that rank 2nd, 3rd,
-- ... in the clean logits, with j that class; untargeted FAB (targeted =
-- false) runs once, and at every step takes per sample the j ~= y whose
-- hyperplane is nearest, |f_j| / ||grad f_j||_q with q the dual norm (l1
-- for l-inf, l2 for l2): one backward pass per class.  n_target_classes
-- is then an error.  Each run is repeated `restarts` times (the first from
-- x, the others from a random point at half eps) on the points still
-- robust.  A step projects both the iterate and x onto the hyperplane
-- within the [0, 1] box (fab.project), goes to a convex combination of
-- the two projections (weight alpha <= alpha_max on the one from x) and
-- overshoots by eta; once misclassified, it keeps the point if it is the
-- closest yet and steps back towards x by beta.  A point counts as broken
-- only when its closest misclassified point lies within eps.  Semantics of
-- fra31/auto-attack's fab_pt.py (attack_single_run, attack_single_run_
-- targeted and perturb); two differences, neither of which changes which
-- points break:
--   * the projection solves its 1-D root by Newton steps and bisection on
--     the radius, where the reference sorts (rl has no sort); the result is
--     the same point up to rounding;
--   * with early_stop (the default) a point leaves the working batch once
--     broken within eps, where the reference keeps shrinking it to its
--     minimal distortion; early_stop = false runs every point every step.
--
-- Returns the adversarial batch (x where no point within eps was found)
-- and robust, a u8 [B]: 1 where model(adv) still gives y (clean errors
-- are 0).
local rl = require 'rl.base'
local options = require 'rl.options'
local common = require 'rl.autoattack.common'

local fab = {}

---------------------------------------------------------------------------
-- The projection
---------------------------------------------------------------------------

--- fab.project(t, w, b, norm, [iters = 16]) -> d [R, n]: for each row, the
-- smallest d (in the l-inf or l2 norm) with w.(t + d) = b and t + d in
-- [0, 1]^n (fra31's projection_linf / projection_l2).  t [R, n] in the box,
-- w [R, n], b [R].  When no point of the box reaches the hyperplane, d goes
-- to the corner of the box nearest to it.  Coordinates with w_i = 0 (l2:
-- |w_i| < 1e-8) do not move.  Among the l-inf minimisers it returns the
-- reference's: every coordinate moves min(lambda, its room) towards the
-- hyperplane.
--
-- Why it works: flip the row so that c = w.t - b >= 0; then every
-- coordinate moves away from the side of w, by a_i(s) = min(s, p_i) (l-inf)
-- or min(s |w_i|, p_i) (l2, the KKT form of the least-norm point), p_i its
-- room to the box's face.  G(s) = sum |w_i| a_i(s) is concave and
-- nondecreasing in the radius s, so the root of G(s) = c is found by
-- Newton steps from below (they never overshoot) interleaved with
-- bisection; the last Newton step is exact on the final linear piece.
function fab.project(t, w, b, norm, iters)
  iters = iters or 16
  local R = t.shape[1]
  local c = (w * t):sum(2) - b
  local flip = rl.where(c:ge(0), 1, rl.full_like(c, -1))
  w = w * flip:view(R, 1)
  c = (c * flip):view(R, 1)
  local aw = w:abs()
  if norm == 'l2' then aw = rl.where(aw:lt(1e-8), 0, aw) end
  local moves = aw:gt(0)
  local room = rl.where(w:lt(0), 1 - t, t)          -- p_i: how far the box lets i move
  local rate = norm == 'l2' and aw or rl.ones_like(aw) -- da_i / ds before i hits the box
  local slope = aw * rate                            -- dG / ds per coordinate
  local knee = rl.where(moves, room / rl.where(moves, rate, 1), 0) -- s where i hits the box
  local function G(s) return (aw * (rate * s):minimum(room)):sum(2, true) end
  local function newton(s) -- from below the root: lands at or below it
    local sl = rl.where(knee:gt(s), slope, 0):sum(2, true):clamp(1e-30)
    return s + (c - G(s)):clamp(0) / sl
  end
  local lo = rl.zeros_like(c)
  local hi = knee:max(2):view(R, 1)
  for _ = 1, iters do
    lo = newton(lo):minimum(hi)
    local mid = (lo + hi) * 0.5
    local up = G(mid):ge(c)
    hi = rl.where(up, mid, hi)
    lo = rl.where(up, lo, mid)
  end
  local s = newton(lo):minimum(hi)
  local a = (rate * s):minimum(room)
  return rl.where(moves, -a * rl.where(w:lt(0), -1, rl.ones_like(w)), 0)
end

---------------------------------------------------------------------------
-- The attack
---------------------------------------------------------------------------

local ROWS = {
  { 'eps',              'number',  options.REQUIRED, '>= 0' },
  { 'targeted',         'boolean', true },
  { 'n_target_classes', 'integer', nil,              '>= 1' },
  { 'steps',            'integer', 100,              '>= 0' },
  { 'restarts',         'integer', 1,                '>= 1' },
  { 'alpha_max',        'number',  0.1,              '[0, 1]' },
  { 'eta',              'number',  1.05,             '> 0' },
  { 'beta',             'number',  0.9,              '[0, 1]' },
  { 'mode',             'string',  nil,              { 'train', 'eval' } },
  { 'early_stop',       'boolean', true },
  -- and norm ('linf') and generator, read by common.options
}

-- Row norms of a flat [R, n]: [R, 1].
local function row_norm(d, norm)
  if norm == 'linf' then return d:abs():max(2):view(-1, 1) end
  return d:norm(2, 2, true)
end

-- The hyperplanes of a step: w [m, D] and f [m] such that the margin
-- being linearised is f + w.(z - x1) near x1.

-- FAB-T: the gradient at x1 of logit_t - logit_y, and that difference.
local function margin_grad(model, x1, y, t)
  local xr = x1:detach():requires_grad_()
  local z = model(xr)
  local diff = z:gather(2, t:view(-1, 1)) - z:gather(2, y:view(-1, 1))
  return rl.grad(diff:sum(), xr):reshape(x1.shape[1], -1), diff:detach():view(-1)
end

-- Untargeted FAB: of the margins logit_j - logit_y, j ~= y, the one whose
-- linearised boundary is nearest, |f_j| / (1e-12 + ||w_j||_q) (fra31's
-- dist1; ties go to the lower class).  One forward, then one backward per
-- class, keeping only the best plane so far: the memory of one gradient,
-- not of the whole Jacobian.
local function nearest_margin_grad(model, x1, y, norm)
  local m = x1.shape[1]
  local xr = x1:detach():requires_grad_()
  local z = model(xr)
  local K = z.shape[2]
  local zy = z:gather(2, y:view(-1, 1))
  local own = y:view(-1)
  local best_w, best_f, best_s
  for j = 1, K do
    local diff = z:narrow(2, j, 1) - zy
    local g = rl.grad(diff:sum(), xr, nil, { retain_graph = j < K })
    rl.no_grad(function()
      local w, f = g:reshape(m, -1), diff:detach():view(-1)
      local q = norm == 'linf' and w:abs():sum(2) or w:norm(2, 2)
      local s = rl.where(own:eq(j - 1), math.huge, f:abs() / (q + 1e-12))
      if not best_s then
        best_w, best_f, best_s = w, f, s
      else
        local take = s:lt(best_s)
        best_w = rl.where(take:view(m, 1), w, best_w)
        best_f, best_s = rl.where(take, f, best_f), rl.where(take, s, best_s)
      end
    end)
  end
  return best_w, best_f
end

local function predict(model, x)
  return rl.no_grad(function() return model(x):argmax(2) end)
end

-- One run of FAB on clean points x0 (all classified y), towards targets t
-- (i64 [n]; nil: untargeted): adv, dist [n] with adv the closest
-- misclassified point found (x0 where none) and dist its distance (inf
-- where none).
local function single_run(model, x0, y, t, o, random_start)
  local n = x0.shape[1]
  local shape, flat = x0.shape, x0:reshape(n, -1)
  local D = flat.shape[2]
  local x1 = x0
  if random_start then
    x1 = rl.no_grad(function()
      local r
      if o.norm == 'linf' then
        r = rl.rand({ n, D }, { dtype = x0.dtype, device = x0.device, generator = o.generator }) * 2 - 1
      else
        r = rl.randn({ n, D }, { dtype = x0.dtype, device = x0.device, generator = o.generator })
      end
      return (flat + r / row_norm(r, o.norm) * (0.5 * o.eps)):clamp(0, 1):view(shape)
    end)
  end
  -- per sample: closest misclassified point so far and its distance
  local best = x0
  local best_d = rl.full({ n }, math.huge, { dtype = x0.dtype, device = x0.device })
  -- the working batch: its rows' positions in this run, and their state
  local ids = rl.arange(n, { dtype = 'i64', device = x0.device })
  local done_ids, done_rows, done_d = {}, {}, {}
  local wx0, wy, wt, wbest, wd = x0, y, t, best, best_d
  for _ = 1, o.steps do
    if wx0.shape[1] == 0 then break end
    local m = wx0.shape[1]
    local w, diff
    if wt then
      w, diff = margin_grad(model, x1, wy, wt)
    else
      w, diff = nearest_margin_grad(model, x1, wy, o.norm)
    end
    rl.no_grad(function()
      local x1f, x0f = x1:reshape(m, -1), wx0:reshape(m, -1)
      local b = (w * x1f):sum(2) - diff
      local d = fab.project(rl.cat({ x1f, x0f }, 1), rl.cat({ w, w }, 1), rl.cat({ b, b }, 1), o.norm)
      local a = row_norm(d, o.norm):clamp(1e-8)
      local d1, d2 = d:narrow(1, 1, m), d:narrow(1, m + 1, m)
      local a1, a2 = a:narrow(1, 1, m), a:narrow(1, m + 1, m)
      local alpha = (a1 / (a1 + a2)):clamp(0, o.alpha_max)
      x1f = ((x1f + d1 * o.eta) * (1 - alpha) + (x0f + d2 * o.eta) * alpha):clamp(0, 1)
      local adv = predict(model, x1f:view(wx0.shape)):ne(wy)
      local dist = row_norm(x1f - x0f, o.norm):view(-1)
      local closer = adv:logical_and(dist:lt(wd))
      wbest = rl.where(closer:view(m, 1), x1f, wbest:reshape(m, -1)):view(wx0.shape)
      wd = rl.where(closer, dist, wd)
      x1f = rl.where(adv:view(m, 1), x0f + (x1f - x0f) * o.beta, x1f)
      x1 = x1f:view(wx0.shape)
      if o.early_stop then
        local fin = wd:le(o.eps)
        if fin:any():item() ~= 0 then
          local keep = common.where_true(fin:logical_not())
          local gone = common.where_true(fin)
          done_ids[#done_ids + 1] = ids:index_select(1, gone)
          done_rows[#done_rows + 1] = wbest:index_select(1, gone)
          done_d[#done_d + 1] = wd:index_select(1, gone)
          ids, wx0, wy = ids:index_select(1, keep), wx0:index_select(1, keep), wy:index_select(1, keep)
          wt = wt and wt:index_select(1, keep)
          wbest, wd, x1 = wbest:index_select(1, keep), wd:index_select(1, keep), x1:index_select(1, keep)
        end
      end
    end)
  end
  done_ids[#done_ids + 1], done_rows[#done_rows + 1], done_d[#done_d + 1] = ids, wbest, wd
  local all_ids = rl.cat(done_ids, 1)
  best = common.put_rows(best, all_ids, rl.cat(done_rows, 1))
  best_d = common.put_rows(best_d:view(n, 1), all_ids, rl.cat(done_d, 1):view(-1, 1)):view(n)
  return best, best_d
end

local function attack(model, x, y, opts)
  local o = common.options('fab', opts, ROWS)
  if not o.targeted and o.n_target_classes then
    error('fab: n_target_classes applies to the targeted attack only, not with targeted = false', 0)
  end
  common.check_batch('fab', x, y)
  return model:with_mode(o.mode, function()
    local logits = rl.no_grad(function() return model(x) end)
    local K = logits.shape[2]
    -- the runs: each the target classes [B] of FAB-T, or false for one
    -- untargeted run
    local targets = { false }
    if o.targeted then
      local nt = o.n_target_classes or math.min(9, K - 1)
      if nt > K - 1 then
        error(string.format('fab: n_target_classes must be at most %d (the model has %d classes), got %d',
          K - 1, K, nt), 0)
      end
      local ranks = common.class_ranks(logits)
      targets = table.move(ranks, 2, nt + 1, 1, {})
    end
    local robust = logits:argmax(2):eq(y)
    local adv = x
    for _, target in ipairs(targets) do
      for r = 1, o.restarts do
        local idx = common.where_true(robust)
        if idx.shape[1] == 0 then break end
        local xs, ys = x:index_select(1, idx), y:index_select(1, idx)
        local ts = target and target:index_select(1, idx) or nil
        local cand, dist = single_run(model, xs, ys, ts, o, r > 1)
        local broke = rl.no_grad(function()
          return dist:le(o.eps):logical_and(predict(model, cand):ne(ys))
        end)
        adv, robust = common.record_broken(adv, robust, idx, cand, broke)
      end
    end
    return adv, robust
  end)
end

fab.attack = options.public(attack)

return fab
