--- rl.attacks: FGSM, PGD (l-inf and l2, random start, restarts, targeted)
-- and multi-targeted PGD.
--
-- Every step is one fused kernel (F.linf_step_ / F.l2_step_: step, project
-- onto the eps-ball and the [lo, hi] box), and the gradient is taken with
-- rl.grad on the input only, so no weight gradient is computed.  An attack
-- runs the model in the mode the caller left it in, unless opts.mode says
-- 'train' or 'eval'; either way the caller's mode is restored
-- (Module:with_mode).
local rl = require 'rl.base'
local F = rl.F

local attacks = {}

local function check(x, y, o, name)
  if not rl.is_tensor(x) or x.ndim < 2 then error(name .. ': x must be a batch tensor [B, ...]', 3) end
  if not rl.is_tensor(y) or y.dtype ~= 'i64' or y.ndim ~= 1 or y.shape[1] ~= x.shape[1] then
    error(string.format('%s: y must be i64 labels [%d]', name, x.shape[1]), 3)
  end
  if type(o.eps) ~= 'number' or o.eps < 0 then
    error(name .. ': opts.eps (the radius) must be a number >= 0', 3)
  end
end

-- The shape [B, 1, 1, ...] that broadcasts a per-sample [B] over a batch.
local function per_sample(x)
  local s = { x.shape[1] }
  for _ = 2, x.ndim do s[#s + 1] = 1 end
  return s
end

-- The loss an attack climbs: per-sample cross-entropy (summed), or its
-- negative towards a target.
local function attack_loss(model, xa, y, targeted)
  local loss = F.cross_entropy(model(xa), y, 'sum')
  return targeted and -loss or loss
end

local function input_grad(model, xa, y, targeted)
  local xr = xa:detach():requires_grad_()
  return rl.grad(attack_loss(model, xr, y, targeted), xr)
end

-- A random start inside the ball and the box.
local function random_start(x, eps, norm, lo, hi, g)
  return rl.no_grad(function()
    local d
    if norm == 'inf' then
      d = rl.rand(x.shape, { dtype = x.dtype, device = x.device, generator = g }) * (2 * eps) - eps
    else -- l2: a uniform direction, a radius uniform in [0, eps]
      local B = x.shape[1]
      d = rl.randn(x.shape, { dtype = x.dtype, device = x.device, generator = g })
      local n = d:view(B, -1):norm(2, 2, true):clamp(1e-12)
      local r = rl.rand(B, 1, { dtype = x.dtype, device = x.device, generator = g }) * eps
      d = (d:view(B, -1) / n * r):view(x.shape)
    end
    return (x + d):clamp(lo, hi)
  end)
end

--- FGSM: x + eps * sign(grad), clipped to [lo, hi].
function attacks.fgsm(model, x, y, o)
  o = o or {}
  check(x, y, o, 'fgsm')
  return model:with_mode(o.mode, function()
    local g = input_grad(model, x, y, o.targeted)
    local xa = x:clone()
    rl.no_grad(function() F.linf_step_(xa, g, x, o.eps, o.eps, o.lo or 0, o.hi or 1) end)
    return xa
  end)
end

--- PGD: opts eps, steps (10), step_size (2.5 * eps / steps), norm ('inf' or
-- 2), random_start (true), restarts (1), targeted (false; y are then the
-- targets), lo/hi (0, 1), mode, generator.  Returns the adversarial batch;
-- with restarts, per sample the restart with the highest loss.
function attacks.pgd(model, x, y, o)
  o = o or {}
  check(x, y, o, 'pgd')
  local steps = o.steps or 10
  local alpha = o.step_size or 2.5 * o.eps / math.max(steps, 1)
  local norm = o.norm == nil and 'inf' or tostring(o.norm)
  if norm ~= 'inf' and norm ~= '2' then error("pgd: norm must be 'inf' or 2", 2) end
  local lo, hi = o.lo or 0, o.hi or 1
  local step = norm == 'inf' and F.linf_step_ or F.l2_step_
  return model:with_mode(o.mode, function()
    local best, best_loss
    for _ = 1, o.restarts or 1 do
      local xa = o.random_start == false and x:clone() or random_start(x, o.eps, norm, lo, hi, o.generator)
      for _ = 1, steps do
        local g = input_grad(model, xa, y, o.targeted)
        rl.no_grad(function() step(xa, g, x, alpha, o.eps, lo, hi) end)
      end
      if (o.restarts or 1) == 1 then return xa end
      local l = rl.no_grad(function()
        local v = F.cross_entropy(model(xa), y, 'none')
        return o.targeted and -v or v
      end)
      if not best then
        best, best_loss = xa, l
      else
        rl.no_grad(function()
          local better = l:gt(best_loss)
          best = rl.where(better:view(per_sample(x)), xa, best)
          best_loss = rl.where(better, l, best_loss)
        end)
      end
    end
    return best
  end)
end

--- Multi-targeted PGD, as the reference's MultiTarget (its *MT grids):
-- for each class j, a targeted PGD towards j (opts as pgd; by default 20
-- steps of 2 eps / 20 from a random start); per sample, among the targets
-- other than its true class, keep the run whose final probability of its
-- own target is highest.  opts.classes defaults to the model's output width.
function attacks.multi_targeted(model, x, y, o)
  o = o or {}
  check(x, y, o, 'multi_targeted')
  local B = x.shape[1]
  local K = o.classes or model:with_mode('eval', function() -- no batch-norm update, no dropout draw
    return rl.no_grad(function() return model(x:narrow(1, 1, math.min(B, 1))).shape[2] end)
  end)
  local steps = o.steps or 20
  local opts = {}
  for k, v in pairs(o) do opts[k] = v end
  opts.targeted, opts.classes = true, nil
  opts.steps, opts.step_size = steps, o.step_size or 2 * o.eps / steps
  if opts.random_start == nil then opts.random_start = true end
  local shape = per_sample(x)
  local best, best_p = x:clone(), rl.full({ B }, -1, { dtype = x.dtype, device = x.device })
  for j = 0, K - 1 do
    local t = rl.full({ B }, j, { dtype = 'i64', device = x.device })
    local xa = attacks.pgd(model, x, t, opts)
    rl.no_grad(function()
      local pj = model:with_mode(o.mode, function() return F.softmax(model(xa), 2) end):select(2, j + 1)
      -- a run towards the true class is no attack
      local better = pj:gt(best_p):logical_and(y:ne(j))
      best = rl.where(better:view(shape), xa, best)
      best_p = rl.where(better, pj, best_p)
    end)
  end
  return best
end

return attacks
