--- rl.optim.Adam and rl.optim.Nadam (also NAdam), as torch.optim in PyTorch
-- 1.13.  Both keep the same moment estimates m and v of the gradient, so
-- they share their options, state and moment update here.
--
-- Adam (lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
--       amsgrad = false, maximize = false), with t the step count of p:
--     g <- -g if maximize;  g <- g + weight_decay * p   (L2, not AdamW)
--     m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g * g
--     if amsgrad: vmax <- max(vmax, v), and vmax replaces v below
--     denom <- sqrt(v) / sqrt(1 - beta2^t) + eps       (eps outside the correction)
--     p <- p - (lr / (1 - beta1^t)) * m / denom
--
-- Nadam (lr = 2e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
--        momentum_decay = 4e-3, textbook = false):
--     g <- g + weight_decay * p
--     mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)), likewise mu_{t+1}
--     P_t = mu_1 * ... * mu_t (state mu_product, starts at 1)
--     m, v as Adam;  denom <- sqrt(v / (1 - beta2^t)) + eps
--     p <- p - lr * (1 - mu_t) / (1 - P_t) * g / denom
--     p <- p - lr * mu_{t+1} / (1 - Q) * m / denom
--   **quirk**: PyTorch 1.13 has Q = P_t * mu_t * mu_{t+1} (mu_t twice), the
--   default here; its documentation, Dozat's paper and PyTorch >= 2.0
--   (pytorch/pytorch#92699) have Q = P_t * mu_{t+1}: `textbook = true`.
--   mu_product is a double (1.13 rounds it to the default dtype each step:
--   equal with torch.set_default_dtype(float64)).
local rl = require 'rl.base'
local base = require 'rl.optim.optimizer'
local REQUIRED = require('rl.options').REQUIRED

-- The option rows both share (lr with the given default), in PyTorch's
-- order of checks, then `more`.
local function options(lr, more)
  local rows = {
    -- name          kind       default           range
    { 'lr',           'number',  lr,               '>= 0' },
    { 'eps',          'number',  1e-8,             '>= 0' },
    { 'betas',        'pair',    { 0.9, 0.999 },   '[0, 1)' },
    { 'weight_decay', 'number',  0,                '>= 0' },
  }
  return table.move(more, 1, #more, #rows + 1, rows)
end

-- The state rows both share (every one present after a step), then `more`.
local function state(more)
  local rows = { { 'step', 'integer', REQUIRED }, { 'exp_avg', 'tensor', REQUIRED },
    { 'exp_avg_sq', 'tensor', REQUIRED } }
  return table.move(more, 1, #more, #rows + 1, rows)
end

-- Zero moments at a parameter's first step.
local function init_moments(st, p)
  st.step = 0
  st.exp_avg = rl.zeros_like(p)
  st.exp_avg_sq = rl.zeros_like(p)
end

-- m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2, in place.
local function update_moments(st, grad, beta1, beta2)
  st.exp_avg:mul_(beta1):add_(grad, 1 - beta1)
  st.exp_avg_sq:mul_(beta2):addcmul_(grad, grad, 1 - beta2)
end

local Adam = base.define {
  name = 'Adam',
  options = options(1e-3, {
    { 'amsgrad',  'boolean', false },
    { 'maximize', 'boolean', false },
  }),
  state = state { { 'max_exp_avg_sq', 'tensor' } },
  update = function(p, g, st, group)
    if st.step == nil then init_moments(st, p) end
    local beta1, beta2 = group.betas[1], group.betas[2]
    local grad = g
    if group.maximize then grad = g:neg() end
    st.step = st.step + 1
    if group.weight_decay ~= 0 then grad = grad:add(p, group.weight_decay) end
    update_moments(st, grad, beta1, beta2)
    local step_size = group.lr / (1 - beta1 ^ st.step)
    local bc2_sqrt = math.sqrt(1 - beta2 ^ st.step)
    local v = st.exp_avg_sq
    if group.amsgrad then
      -- also when amsgrad was switched on after the first step
      st.max_exp_avg_sq = st.max_exp_avg_sq or rl.zeros_like(p)
      st.max_exp_avg_sq:maximum_(st.exp_avg_sq)
      v = st.max_exp_avg_sq
    end
    local denom = v:sqrt():div_(bc2_sqrt):add_(group.eps)
    p:addcdiv_(st.exp_avg, denom, -step_size)
  end,
}

local Nadam = base.define {
  name = 'Nadam',
  options = options(2e-3, {
    { 'momentum_decay', 'number',  4e-3, '>= 0' },
    { 'textbook',       'boolean', false },
  }),
  state = state { { 'mu_product', 'number', REQUIRED } },
  update = function(p, g, st, group)
    if st.step == nil then
      init_moments(st, p)
      st.mu_product = 1.0
    end
    local beta1, beta2 = group.betas[1], group.betas[2]
    local lr, psi = group.lr, group.momentum_decay
    st.step = st.step + 1
    local step = st.step
    local grad = g
    if group.weight_decay ~= 0 then grad = grad:add(p, group.weight_decay) end
    local mu = beta1 * (1.0 - 0.5 * (0.96 ^ (step * psi)))
    local mu_next = beta1 * (1.0 - 0.5 * (0.96 ^ ((step + 1) * psi)))
    st.mu_product = st.mu_product * mu
    local mu_product_next = group.textbook and st.mu_product * mu_next
        or st.mu_product * mu * mu_next -- PyTorch 1.13's quirk, see above
    update_moments(st, grad, beta1, beta2)
    local denom = st.exp_avg_sq:clone():div_(1 - beta2 ^ step):sqrt_():add_(group.eps)
    p:addcdiv_(grad, denom, -lr * (1.0 - mu) / (1.0 - st.mu_product))
    p:addcdiv_(st.exp_avg, denom, -lr * mu_next / (1.0 - mu_product_next))
  end,
}

return { Adam = Adam, Nadam = Nadam }
