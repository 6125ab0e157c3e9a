--- rl.optim.SGD: stochastic gradient descent with momentum, as torch.optim.SGD
-- in PyTorch 1.13.  For each parameter p with grad g:
--     g <- -g if maximize;  g <- g + weight_decay * p
--     if momentum ~= 0:
--        buf <- g (a copy) on the first step, else buf <- momentum * buf + (1 - dampening) * g
--        g <- g + momentum * buf if nesterov, else g <- buf
--     p <- p - lr * g
-- The momentum buffer starts at the first gradient, not at zero (so
-- dampening does not act on the first step), as PyTorch.
local base = require 'rl.optim.optimizer'
local REQUIRED = require('rl.options').REQUIRED

return base.define {
  name = 'SGD',
  options = {
    -- name          kind       default    range
    { 'lr',           'number',  REQUIRED,  '>= 0' },
    { 'momentum',     'number',  0,         '>= 0' },
    { 'dampening',    'number',  0 },
    { 'weight_decay', 'number',  0,         '>= 0' },
    { 'nesterov',     'boolean', false },
    { 'maximize',     'boolean', false },
  },
  check = function(g)
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      return string.format('nesterov momentum requires momentum > 0 and dampening = 0 (got ' ..
        'momentum = %g, dampening = %g)', g.momentum, g.dampening)
    end
  end,
  state = { { 'momentum_buffer', 'tensor' } },
  update = function(p, g, st, group)
    local d = g
    if group.maximize then d = g:neg() end
    local wd, momentum = group.weight_decay, group.momentum
    if wd ~= 0 then d = d:add(p, wd) end
    if momentum ~= 0 then
      local buf = st.momentum_buffer
      if buf == nil then
        buf = d:clone()
        st.momentum_buffer = buf
      else
        buf:mul_(momentum):add_(d, 1 - group.dampening)
      end
      d = group.nesterov and d:add(buf, momentum) or buf
    end
    p:add_(d, -group.lr)
  end,
}
