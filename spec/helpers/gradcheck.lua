-- gradcheck.lua - compare autograd with central differences, in f64.
--
-- gradcheck(f, inputs, opts) builds L = sum(f(inputs...) * R) for a fixed
-- random R, takes dL/dinput by rl.grad, and checks every element against
-- (L(x + h) - L(x - h)) / 2h.  Returns true, or false and a message naming
-- the input, the element and both values.
local rl = require 'rl'

local M = {}

local function scalar_loss(f, inputs, R)
  local out = f(table.unpack(inputs))
  if R == nil then return out, nil end
  return (out * R):sum(), out
end

function M.gradcheck(f, inputs, opts)
  opts = opts or {}
  local h, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-6, opts.rtol or 1e-5
  for i, x in ipairs(inputs) do
    if rl.is_tensor(x) and x.requires_grad then
      assert(x.dtype == 'f64', 'gradcheck: input ' .. i .. ' must be f64')
      assert(x:is_contiguous(), 'gradcheck: input ' .. i .. ' must be contiguous')
    end
  end
  local out = f(table.unpack(inputs))
  local R = rl.randn(out.shape, { dtype = 'f64', generator = rl.Generator(opts.seed or 5) })
  local L = (out * R):sum()
  local want, idx = {}, {}
  for i, x in ipairs(inputs) do
    if rl.is_tensor(x) and x.requires_grad then
      want[#want + 1] = x
      idx[#idx + 1] = i
    end
  end
  local grads = rl.grad(L, want, nil, { allow_unused = true })
  for k, x in ipairs(want) do
    local g = grads[k] and grads[k]:contiguous():view(-1):tolist() or {}
    local flat = x:view(-1)
    for e = 1, x:numel() do
      local num = rl.no_grad(function()
        local v = flat[e]:item()
        flat[e] = v + h
        local lp = scalar_loss(f, inputs, R):item()
        flat[e] = v - h
        local lm = scalar_loss(f, inputs, R):item()
        flat[e] = v
        return (lp - lm) / (2 * h)
      end)
      local ana = g[e] or 0
      -- written so that a NaN on either side fails (a NaN compares false)
      if not (math.abs(num - ana) <= atol + rtol * math.abs(num)) then
        return false, string.format('input %d element %d: autograd %.10g, numeric %.10g',
          idx[k], e, ana, num)
      end
    end
  end
  return true
end

--- A random f64 leaf tensor requiring grad.
function M.leaf(g, ...)
  return rl.randn({ ... }, { dtype = 'f64', generator = g }):requires_grad_()
end

return M
