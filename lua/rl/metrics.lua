--- rl.metrics: what a row of the paper's tables reports (METHODS.md,
-- "Measurements"), all in eval mode, the caller's mode restored after.
--
--   accuracy(model, x, y)                 fraction correct on a batch
--   adv_accuracy(model, x, y, {eps})      under PGD-10, step 2 eps / 10,
--                                         random start, true labels
--   lipschitz(model, x, {eps})            per-sample local Lipschitz estimate
--   evaluate(model, batches, {eps, adv, lipschitz})
--                                         the three over an iterator of
--                                         (x, y) batches, as means
local rl = require 'rl'
local F = rl.F
local attacks = rl.attacks

local metrics = {}

local function correct(model, x, y)
  return rl.no_grad(function() return model(x):argmax(2):eq(y):sum():item() end)
end

function metrics.accuracy(model, x, y)
  return attacks.in_mode(model, 'eval', function() return correct(model, x, y) / x.shape[1] end)
end

--- The adversarial examples of the tables' adversarial accuracy.
function metrics.adv_examples(model, x, y, o)
  return attacks.pgd(model, x, y, {
    eps = o.eps, steps = o.steps or 10, step_size = o.step_size or 2 * o.eps / 10,
    random_start = true, mode = 'eval', generator = o.generator,
  })
end

function metrics.adv_accuracy(model, x, y, o)
  local xa = metrics.adv_examples(model, x, y, o)
  return attacks.in_mode(model, 'eval', function() return correct(model, xa, y) / x.shape[1] end)
end

-- r(x') = ||f(x) - f(x')||_1 / ||x - x' + 1e-6||_inf, per sample
local function ratio(model, x, fx, xa)
  local B = x.shape[1]
  local num = (fx - model(xa)):abs():sum(2)
  local den = (x - xa + 1e-6):view(B, -1):abs():max(2)
  return num / den
end

--- The local Lipschitz estimate: per sample, start x' = x + 0.001 N(0,1),
-- then 10 times x' <- Pi(x' + 0.003 sign(grad r)) (Pi: the eps-ball and
-- [0, 1]); returns the per-sample r at the end (a [B] tensor).
function metrics.lipschitz(model, x, o)
  o = o or {}
  if type(o.eps) ~= 'number' then error('lipschitz: opts.eps (the radius) is required', 2) end
  return attacks.in_mode(model, 'eval', function()
    local fx = rl.no_grad(function() return model(x) end)
    local xa = rl.no_grad(function()
      return x + rl.randn(x.shape, { dtype = x.dtype, device = x.device, generator = o.generator }) * 0.001
    end)
    for _ = 1, o.steps or 10 do
      local xr = xa:detach():requires_grad_()
      local g = rl.grad(ratio(model, x, fx, xr):sum(), xr)
      rl.no_grad(function() F.linf_step_(xa, g, x, o.step_size or 0.003, o.eps, 0, 1) end)
    end
    return rl.no_grad(function() return ratio(model, x, fx, xa) end)
  end)
end

--- Means over batches: `batches` is an iterator yielding x, y.  Returns
-- {acc, adv_acc, lipschitz, n}; adv/lipschitz only when asked (opts.adv,
-- opts.lipschitz) since they cost 10 gradient steps each.
function metrics.evaluate(model, batches, o)
  o = o or {}
  local n, ok, adv, lip = 0, 0, 0, 0
  for x, y in batches do
    local B = x.shape[1]
    n = n + B
    ok = ok + metrics.accuracy(model, x, y) * B
    if o.adv then adv = adv + metrics.adv_accuracy(model, x, y, o) * B end
    if o.lipschitz then lip = lip + metrics.lipschitz(model, x, o):sum():item() end
    if o.progress then o.progress(n) end
  end
  if n == 0 then error('evaluate: no batches', 2) end
  return {
    n = n, acc = ok / n,
    adv_acc = o.adv and adv / n or nil,
    lipschitz = o.lipschitz and lip / n or nil,
  }
end

return metrics
