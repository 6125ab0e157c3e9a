-- optim_spec.lua - rl.optim: SGD, Adam, Nadam, MultiStepLR, the paper's milestones.
--
-- Three kinds of evidence:
--   * single steps worked out by hand, and short runs against a reference
--     written here in plain Lua numbers (one element at a time, from the
--     published formulas), on tiny f64 tensors;
--   * a cross-check against PyTorch 1.13 (Debian's python3-torch), run in a
--     python3 subprocess on the same f64 least-squares problem, to 1e-10
--     relative; where torch is missing these tests are marked pending, never
--     passed;
--   * state_dict round trips and the error messages of bad calls.
--
-- Gradients are set directly (p.grad = tensor) from formulas evaluated in
-- plain Lua, so the optimiser specs do not depend on autograd; one test
-- trains through backward() when a subprocess shows that backward works.
local rl = require 'rl'
local optim = require 'rl.optim'

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------

local PYTHON = '/usr/bin/python3'

local function f64(t) return rl.tensor(t, { dtype = 'f64' }) end
local function param(t) return f64(t):requires_grad_() end

local function flat(x)
  local v = x
  if rl.is_tensor(x) then v = x:tolist() end
  if type(v) ~= 'table' then return { v } end
  local out = {}
  local function walk(t)
    for _, e in ipairs(t) do
      if type(e) == 'table' then walk(e) else out[#out + 1] = e end
    end
  end
  walk(v)
  return out
end

-- A shallow copy (of a list, or of a group's options).
local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- got (tensor or list) ~ want (list): |g - w| <= atol + rtol * max(|g|, |w|).
local function assert_close(got, want, rtol, atol, what)
  rtol, atol = rtol or 1e-13, atol or 0
  local g, w = flat(got), flat(want)
  assert(#g == #w, string.format('%s: %d values, expected %d', what or 'values', #g, #w))
  for i = 1, #w do
    local a, b = g[i], w[i]
    local ok = a == b or math.abs(a - b) <= atol + rtol * math.max(math.abs(a), math.abs(b))
    if not ok then
      assert(false, string.format('%s: element %d is %.17g, expected %.17g (rel. diff %.3g)',
        what or 'values', i, a, b, math.abs(a - b) / math.max(math.abs(a), math.abs(b))))
    end
  end
end

local function assert_error(fn, pattern)
  local ok, err = pcall(fn)
  assert(not ok, 'expected an error matching: ' .. pattern)
  err = tostring(err)
  assert(err:find(pattern, 1, true), string.format('error\n  %s\ndoes not contain\n  %s', err,
    pattern))
  return err
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local torch_checked, torch_ok
local function have_torch()
  if not torch_checked then
    torch_checked = true
    local r = os.execute(PYTHON .. " -c 'import torch' >/dev/null 2>&1")
    torch_ok = r == true or r == 0
  end
  return torch_ok
end

---------------------------------------------------------------------------
-- plain-Lua references (element by element, from the published formulas)
---------------------------------------------------------------------------

local function ref_sgd(x, grads, o)
  x = copy(x)
  local lr, m, damp, wd = o.lr, o.momentum or 0, o.dampening or 0, o.weight_decay or 0
  local buf
  for _, g in ipairs(grads) do
    local d = {}
    for i = 1, #x do
      d[i] = o.maximize and -g[i] or g[i]
      if wd ~= 0 then d[i] = d[i] + wd * x[i] end
    end
    if m ~= 0 then
      if not buf then
        buf = copy(d)
      else
        for i = 1, #x do buf[i] = buf[i] * m + (1 - damp) * d[i] end
      end
      for i = 1, #x do d[i] = o.nesterov and d[i] + m * buf[i] or buf[i] end
    end
    for i = 1, #x do x[i] = x[i] - lr * d[i] end
  end
  return x
end

local function ref_adam(x, grads, o)
  x = copy(x)
  local lr, eps, wd = o.lr or 1e-3, o.eps or 1e-8, o.weight_decay or 0
  local b1, b2 = (o.betas or {})[1] or 0.9, (o.betas or {})[2] or 0.999
  local m, v, vmax = {}, {}, {}
  for i = 1, #x do m[i], v[i], vmax[i] = 0, 0, 0 end
  for t, g in ipairs(grads) do
    for i = 1, #x do
      local gi = o.maximize and -g[i] or g[i]
      if wd ~= 0 then gi = gi + wd * x[i] end
      m[i] = b1 * m[i] + (1 - b1) * gi
      v[i] = b2 * v[i] + (1 - b2) * gi * gi
      vmax[i] = math.max(vmax[i], v[i])
      local vhat = (o.amsgrad and vmax[i] or v[i]) / (1 - b2 ^ t)
      local mhat = m[i] / (1 - b1 ^ t)
      x[i] = x[i] - lr * mhat / (math.sqrt(vhat) + eps)
    end
  end
  return x
end

-- Nadam as PyTorch 1.13 (textbook = false) or as documented (textbook = true).
local function ref_nadam(x, grads, o)
  x = copy(x)
  local lr, eps, wd, psi = o.lr or 2e-3, o.eps or 1e-8, o.weight_decay or 0,
      o.momentum_decay or 4e-3
  local b1, b2 = (o.betas or {})[1] or 0.9, (o.betas or {})[2] or 0.999
  local m, v = {}, {}
  for i = 1, #x do m[i], v[i] = 0, 0 end
  local prod = 1 -- mu_1 * ... * mu_t
  for t, g in ipairs(grads) do
    local mu_t = b1 * (1 - 0.5 * 0.96 ^ (t * psi))
    local mu_t1 = b1 * (1 - 0.5 * 0.96 ^ ((t + 1) * psi))
    prod = prod * mu_t
    local prod_next = o.textbook and prod * mu_t1 or prod * mu_t * mu_t1
    for i = 1, #x do
      local gi = g[i]
      if wd ~= 0 then gi = gi + wd * x[i] end
      m[i] = b1 * m[i] + (1 - b1) * gi
      v[i] = b2 * v[i] + (1 - b2) * gi * gi
      local denom = math.sqrt(v[i] / (1 - b2 ^ t)) + eps
      x[i] = x[i] - lr * (1 - mu_t) / (1 - prod) * gi / denom
          - lr * mu_t1 / (1 - prod_next) * m[i] / denom
    end
  end
  return x
end

-- Run an optimiser over one parameter with the given gradient sequence.
local function run(cls, x0, grads, opts)
  local p = param(x0)
  local opt = cls({ p }, opts)
  for _, g in ipairs(grads) do
    p.grad = f64(g)
    opt:step()
  end
  return p, opt
end

-- SGD over one scalar parameter per group, with the given lrs (for schedules).
local function sgd_groups(lrs)
  local groups = {}
  for i, lr in ipairs(lrs) do groups[i] = { params = { param({ 0 }) }, lr = lr } end
  return optim.SGD(groups)
end

local X0 = { 1.0, -2.0, 0.5 }
local GRADS = { { 0.5, -3.0, 0.25 }, { 0.4, -1.0, -0.5 }, { 0.05, 2.0, 0.1 } }

---------------------------------------------------------------------------
-- single steps worked out by hand
---------------------------------------------------------------------------

describe('optim.SGD', function()
  it('takes a plain step p - lr*g (worked by hand)', function()
    local p = run(optim.SGD, { 1, -2 }, { { 0.5, 3 } }, { lr = 0.1 })
    assert_close(p, { 0.95, -2.3 }, 1e-15)
  end)

  it('starts the momentum buffer at the first gradient (worked by hand)', function()
    -- buf1 = g1 = (0.5, 3): p1 = (0.95, -2.3); buf2 = 0.9*buf1 + g2 = (0.95, 5.7) with g2 = g1:
    -- p2 = p1 - 0.1*buf2 = (0.855, -2.87)
    local p, opt = run(optim.SGD, { 1, -2 }, { { 0.5, 3 }, { 0.5, 3 } },
      { lr = 0.1, momentum = 0.9 })
    assert_close(p, { 0.855, -2.87 }, 1e-15)
    assert_close(opt.state[p].momentum_buffer, { 0.95, 5.7 }, 1e-15)
  end)

  it('applies dampening from the second step on only', function()
    local p = run(optim.SGD, { 0 }, { { 1 } }, { lr = 1, momentum = 0.5, dampening = 0.5 })
    assert_close(p, { -1 }, 0) -- buf1 = g1, not (1 - dampening)*g1
    p = run(optim.SGD, { 0 }, { { 1 }, { 1 } }, { lr = 1, momentum = 0.5, dampening = 0.5 })
    assert_close(p, { -2 }, 0) -- buf2 = 0.5*1 + 0.5*1 = 1
  end)

  it('uses g + momentum*buf for nesterov (worked by hand)', function()
    -- buf1 = 2, d1 = 2 + 0.5*2 = 3: p1 = 10 - 0.1*3 = 9.7
    local p = run(optim.SGD, { 10 }, { { 2 } }, { lr = 0.1, momentum = 0.5, nesterov = true })
    assert_close(p, { 9.7 }, 1e-15)
  end)

  it('adds weight_decay*p to the gradient (worked by hand)', function()
    -- g = 1 + 0.1*4 = 1.4: p = 4 - 0.5*1.4 = 3.3
    local p = run(optim.SGD, { 4 }, { { 1 } }, { lr = 0.5, weight_decay = 0.1 })
    assert_close(p, { 3.3 }, 1e-15)
  end)

  it('climbs with maximize', function()
    local p = run(optim.SGD, { 1, -2 }, { { 0.5, 3 } }, { lr = 0.1, maximize = true })
    assert_close(p, { 1.05, -1.7 }, 1e-15)
  end)
end)

describe('optim.Adam', function()
  it('moves each coordinate by lr*g/(|g| + eps) on its first step (worked by hand)', function()
    -- m1/(1-b1) = g and v1/(1-b2) = g^2, so the step is lr*g/(|g| + eps)
    local g = { 0.5, -3, 1e-9 }
    local p = run(optim.Adam, { 1, -2, 0.5 }, { g }, { lr = 0.1 })
    local want = {}
    for i, x in ipairs({ 1, -2, 0.5 }) do
      want[i] = x - 0.1 * g[i] / (math.abs(g[i]) + 1e-8)
    end
    assert_close(p, want, 1e-13)
    -- the third coordinate shows where eps sits: 1e-9 / (1e-9 + 1e-8) = 1/11
    assert_close({ p:tolist()[3] }, { 0.5 - 0.1 / 11 }, 1e-13)
  end)

  it('amsgrad uses the running maximum of v (and the test data exercise it)', function()
    local o = { lr = 0.1, betas = { 0.8, 0.5 } }
    local plain = run(optim.Adam, X0, GRADS, o)
    o.amsgrad = true
    local ams, opt = run(optim.Adam, X0, GRADS, o)
    local a, b = flat(plain), flat(ams)
    assert.are_not.equal(a[2], b[2]) -- coordinate 2: v drops from 4.5 to 2.75 at step 2
    local st = opt.state[ams]
    assert.are.equal(3, st.step)
    local v, vmax = flat(st.exp_avg_sq), flat(st.max_exp_avg_sq)
    for i = 1, #v do assert.is_true(vmax[i] >= v[i]) end
    assert.is_true(vmax[2] > v[2])
  end)

  it('keeps its state in the dtype of an f32 parameter', function()
    local p = rl.tensor({ 1.0, 2.0 }, { dtype = 'f32' }):requires_grad_()
    local opt = optim.Adam({ p }, { lr = 0.1 })
    p.grad = rl.tensor({ 1.0, -1.0 }, { dtype = 'f32' })
    opt:step()
    assert.are.equal('f32', opt.state[p].exp_avg.dtype)
    assert_close(p, { 0.9, 2.1 }, 1e-6)
  end)
end)

describe('optim.Nadam', function()
  it('takes the PyTorch 1.13 first step (worked by hand)', function()
    -- t = 1: mu1 = 0.9*(1 - 0.5*0.96^0.004), mu2 = 0.9*(1 - 0.5*0.96^0.008),
    -- m1 = 0.1 g, denom = sqrt(0.001 g^2 / 0.001) + eps = |g| + eps,
    -- p1 = p0 - lr (1-mu1)/(1-mu1) g/denom - lr mu2/(1 - mu1*mu1*mu2) m1/denom
    local mu1 = 0.9 * (1 - 0.5 * 0.96 ^ 0.004)
    local mu2 = 0.9 * (1 - 0.5 * 0.96 ^ 0.008)
    local g, lr = 2.0, 0.1
    local denom = math.abs(g) + 1e-8
    local want = 3 - lr * g / denom - lr * mu2 / (1 - mu1 * mu1 * mu2) * (0.1 * g) / denom
    local p = run(optim.Nadam, { 3 }, { { g } }, { lr = lr })
    assert_close(p, { want }, 1e-14)
    -- textbook: the second term's correction is 1 - mu1*mu2
    local want_tb = 3 - lr * g / denom - lr * mu2 / (1 - mu1 * mu2) * (0.1 * g) / denom
    local q, opt = run(optim.Nadam, { 3 }, { { g } }, { lr = lr, textbook = true })
    assert_close(q, { want_tb }, 1e-14)
    assert.are_not.equal(flat(p)[1], flat(q)[1])
    assert.are.equal(mu1, opt.state[q].mu_product)
  end)

  it('is also optim.NAdam', function()
    assert.are.equal(optim.Nadam, optim.NAdam)
  end)
end)

---------------------------------------------------------------------------
-- defaults, and 3 steps against the plain-Lua references
---------------------------------------------------------------------------

describe('the optimisers', function()
  -- { class, the options it is given, the defaults it must report }
  local DEFAULTS = {
    { 'SGD', { lr = 0.1 }, { lr = 0.1, momentum = 0, dampening = 0, weight_decay = 0,
      nesterov = false, maximize = false } },
    { 'Adam', {}, { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0,
      amsgrad = false, maximize = false } },
    { 'Nadam', {}, { lr = 2e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0,
      momentum_decay = 4e-3, textbook = false } },
  }
  for _, c in ipairs(DEFAULTS) do
    it(c[1] .. ' uses the defaults of PyTorch 1.13', function()
      assert.are.same(c[3], optim[c[1]]({ param({ 1 }) }, c[2]).defaults)
    end)
  end

  -- { class, reference, option sets }
  local REFERENCES = {
    { 'SGD', ref_sgd, {
      { lr = 0.1 },
      { lr = 0.1, momentum = 0.9 },
      { lr = 0.05, momentum = 0.9, dampening = 0.3 },
      { lr = 0.05, momentum = 0.8, nesterov = true },
      { lr = 0.05, momentum = 0.9, weight_decay = 0.01 },
      { lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 0.1, maximize = true },
    } },
    { 'Adam', ref_adam, {
      { lr = 0.1 },
      { lr = 0.1, betas = { 0.8, 0.5 } },
      { lr = 0.1, betas = { 0.8, 0.5 }, amsgrad = true },
      { lr = 0.05, weight_decay = 0.1 },
      { lr = 0.05, betas = { 0.5, 0.9 }, eps = 1e-3, amsgrad = true, weight_decay = 0.01 },
      { lr = 0.05, maximize = true },
    } },
    { 'Nadam', ref_nadam, {
      { lr = 0.1 },
      { lr = 0.1, textbook = true },
      { lr = 0.05, betas = { 0.8, 0.5 }, momentum_decay = 0.1, weight_decay = 0.1 },
      { lr = 0.05, eps = 1e-3, momentum_decay = 0.02, textbook = true, weight_decay = 0.01 },
    } },
  }
  for _, r in ipairs(REFERENCES) do
    for ci, o in ipairs(r[3]) do
      it(r[1] .. ' matches the plain-Lua reference over 3 steps (case ' .. ci .. ')', function()
        local p = run(optim[r[1]], X0, GRADS, o)
        assert_close(p, r[2](X0, GRADS, o), 1e-13)
      end)
    end
  end
end)

---------------------------------------------------------------------------
-- behaviour common to the optimisers
---------------------------------------------------------------------------

describe('optimisers', function()
  it('skip parameters whose grad is nil, and make no state for them', function()
    local a, b = param({ 1, 2 }), param({ 3 })
    local opt = optim.SGD({ a, b }, { lr = 0.5, momentum = 0.9 })
    a.grad = f64({ 1, 1 })
    opt:step()
    assert_close(a, { 0.5, 1.5 }, 0)
    assert_close(b, { 3 }, 0)
    assert.is_nil(opt.state[b])
    assert.is_nil(opt:state_dict().state[2])
  end)

  it('step with grad mode on, and leave grad mode as it was (also after an error)', function()
    assert.is_true(rl.is_grad_enabled())
    local p = param({ 1 })
    local opt = optim.Adam({ p }, { lr = 0.1 })
    p.grad = f64({ 1 })
    opt:step()
    assert.is_true(rl.is_grad_enabled())
    assert.is_true(p.requires_grad)
    opt.param_groups[1].lr = -1 -- caught at the next step
    assert_error(function() opt:step() end, 'Adam: invalid learning rate -1')
    assert.is_true(rl.is_grad_enabled())
    rl.set_grad_enabled(false)
    opt.param_groups[1].lr = 0.1
    opt:step()
    assert.is_false(rl.is_grad_enabled())
    rl.set_grad_enabled(true)
  end)

  it('zero_grad() drops grads; zero_grad(false) zeroes them in place', function()
    local a, b = param({ 1, 2 }), param({ 3 })
    local opt = optim.SGD({ a, b }, { lr = 0.1 })
    a.grad, b.grad = f64({ 5, 6 }), f64({ 7 })
    opt:zero_grad()
    assert.is_nil(a.grad)
    assert.is_nil(b.grad)
    local g = f64({ 5, 6 })
    a.grad = g
    opt:zero_grad(false)
    assert_close(a.grad, { 0, 0 }, 0)
    assert_close(g, { 0, 0 }, 0) -- the same tensor, zeroed
    assert.is_nil(b.grad)        -- a nil grad stays nil
    a.grad = f64({ 1, 1 })
    opt:zero_grad { set_to_none = false }
    assert_close(a.grad, { 0, 0 }, 0)
    assert_error(function() opt:zero_grad { set_to_nil = true } end, "unknown option 'set_to_nil'")
  end)

  it('step(closure) calls the closure with grad mode on and returns its value', function()
    local p = param({ 2 })
    local opt = optim.SGD({ p }, { lr = 0.25 })
    local calls, mode = 0, nil
    local loss = rl.no_grad(function()
      return opt:step(function()
        calls = calls + 1
        mode = rl.is_grad_enabled()
        opt:zero_grad()
        p.grad = f64({ 4 })
        return 42
      end)
    end)
    assert.are.equal(42, loss)
    assert.are.equal(1, calls)
    assert.is_true(mode)
    assert_close(p, { 1 }, 0)
  end)

  it('take per-group options, inheriting the rest from the constructor', function()
    local a, b = param({ 1 }), param({ 1 })
    local opt = optim.SGD({ { params = { a } }, { params = { b }, lr = 0.5, momentum = 0 } },
      { lr = 0.1, momentum = 0.9 })
    assert.are.equal(0.1, opt.param_groups[1].lr)
    assert.are.equal(0.9, opt.param_groups[1].momentum)
    assert.are.equal(0.5, opt.param_groups[2].lr)
    a.grad, b.grad = f64({ 1 }), f64({ 1 })
    opt:step()
    opt:step()
    assert_close(a, { 1 - 0.1 - 0.1 * 1.9 }, 1e-15)
    assert_close(b, { 0 }, 0)
  end)

  it('accept a required lr given by every group instead of the options', function()
    local a, b = param({ 1 }), param({ 1 })
    local opt = optim.SGD({ { params = { a }, lr = 0.1 }, { params = { b }, lr = 0.2 } })
    assert.are.equal(0.2, opt.param_groups[2].lr)
    assert_error(function() optim.SGD({ { params = { a }, lr = 0.1 }, { params = { b } } }) end,
      'SGD: parameter group 2: the option lr is required')
  end)

  it('add_param_group appends a group, checked like the others', function()
    local a, b = param({ 1 }), param({ 1 })
    local opt = optim.Adam({ a }, { lr = 0.1 })
    opt:add_param_group { params = { b }, lr = 0.01 }
    assert.are.equal(2, #opt.param_groups)
    assert.are.equal(0.01, opt.param_groups[2].lr)
    assert.are.same({ 0.9, 0.999 }, opt.param_groups[2].betas)
    assert_error(function() opt:add_param_group { params = { a } } end,
      'Adam: parameter 3 (in group 3) is parameter 1 again')
    assert_error(function() opt:add_param_group { params = { param({ 1 }) }, lr_rate = 1 } end,
      "Adam: parameter group 3: unknown option 'lr_rate' (did you mean 'lr'?)")
  end)

  it('follow lr changes made through param_groups', function()
    local p = param({ 1 })
    local opt = optim.SGD({ p }, { lr = 0.1 })
    opt.param_groups[1].lr = 0.5
    p.grad = f64({ 1 })
    opt:step()
    assert_close(p, { 0.5 }, 0)
  end)

  it('print their groups', function()
    local s = tostring(optim.SGD({ param({ 1 }) }, { lr = 0.1, momentum = 0.9 }))
    assert.truthy(s:find('SGD (', 1, true))
    assert.truthy(s:find('momentum: 0.9', 1, true))
  end)
end)

---------------------------------------------------------------------------
-- state_dict
---------------------------------------------------------------------------

describe('state_dict', function()
  -- Two parameters in two groups; grads from a fixed sequence.
  local function set_grads(a, b, k)
    a.grad = f64({ 0.5 * k, -1.0 + 0.3 * k })
    b.grad = f64({ { 1.0 / k, -0.2 }, { 0.7, k * 0.1 } })
  end

  local configs = {
    { 'SGD momentum', optim.SGD, { lr = 0.1, momentum = 0.9, dampening = 0.1 } },
    { 'SGD nesterov', optim.SGD, { lr = 0.1, momentum = 0.9, nesterov = true } },
    { 'Adam amsgrad', optim.Adam, { lr = 0.1, betas = { 0.8, 0.5 }, amsgrad = true } },
    { 'Adam', optim.Adam, { lr = 0.1, weight_decay = 0.01 } },
    { 'Nadam', optim.Nadam, { lr = 0.1, momentum_decay = 0.05 } },
  }
  for _, c in ipairs(configs) do
    local name, cls, opts = c[1], c[2], c[3]
    it('round trip (' .. name .. '): 2 steps, save, load into a new optimiser, 1 step ' ..
      '== 3 steps', function()
        local a, b = param({ 1, 2 }), param({ { 0.5, -0.5 }, { 1.5, 0 } })
        local opt = cls({ { params = { a } }, { params = { b }, lr = 0.05 } }, opts)
        for k = 1, 2 do
          set_grads(a, b, k)
          opt:step()
        end
        local sd = opt:state_dict()
        local a2, b2 = param(a:tolist()), param(b:tolist())
        -- built with other hyperparameters: load_state_dict restores the saved ones
        local opt2 = cls({ { params = { a2 } }, { params = { b2 } } }, { lr = 123 })
        opt2:load_state_dict(sd)
        assert.are.equal(0.05, opt2.param_groups[2].lr)
        assert.are.equal(0.1, opt2.param_groups[1].lr)
        set_grads(a, b, 3)
        opt:step()
        set_grads(a2, b2, 3)
        opt2:step()
        assert_close(a2, a, 0, 0, 'parameter 1')
        assert_close(b2, b, 0, 0, 'parameter 2')
      end)
  end

  it('is a snapshot with PyTorch-style ids, and holds the documented names', function()
    local a, b = param({ 1, 2 }), param({ 3 })
    local opt = optim.Adam({ a, b }, { lr = 0.1, amsgrad = true })
    a.grad, b.grad = f64({ 1, 1 }), f64({ 1 })
    opt:step()
    opt:step()
    local sd = opt:state_dict()
    assert.are.same({ 1, 2 }, sd.param_groups[1].params)
    assert.are.equal(0.1, sd.param_groups[1].lr)
    assert.are.same({ 0.9, 0.999 }, sd.param_groups[1].betas)
    assert.are.equal(2, sd.state[1].step)
    for _, k in ipairs({ 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq' }) do
      assert.is_true(rl.is_tensor(sd.state[2][k]), k)
    end
    local before = flat(sd.state[1].exp_avg)
    opt:step()
    assert.are.same(before, flat(sd.state[1].exp_avg)) -- not changed by later steps
    assert.are.equal(2, sd.state[1].step)
    sd.param_groups[1].betas[1] = 0.5                    -- nor shared with the optimiser
    assert.are.equal(0.9, opt.param_groups[1].betas[1])

    local n = optim.Nadam({ a }, { lr = 0.1 })
    a.grad = f64({ 1, 1 })
    n:step()
    local st = n:state_dict().state[1]
    assert.are.equal(1, st.step)
    assert.are.equal(0.9 * (1 - 0.5 * 0.96 ^ 0.004), st.mu_product)

    local s = optim.SGD({ a }, { lr = 0.1, momentum = 0.5 })
    s:step()
    assert.is_true(rl.is_tensor(s:state_dict().state[1].momentum_buffer))
  end)

  it('converts loaded tensors to the parameter dtype, and copies them', function()
    local a = param({ 1, 2 })
    local opt = optim.SGD({ a }, { lr = 0.1, momentum = 0.9 })
    a.grad = f64({ 1, 2 })
    opt:step()
    local sd = opt:state_dict()
    local p32 = rl.tensor({ 1, 2 }, { dtype = 'f32' }):requires_grad_()
    local opt32 = optim.SGD({ p32 }, { lr = 0.1, momentum = 0.9 })
    opt32:load_state_dict(sd)
    assert.are.equal('f32', opt32.state[p32].momentum_buffer.dtype)
    local opt2 = optim.SGD({ param({ 1, 2 }) }, { lr = 0.1 })
    opt2:load_state_dict(sd)
    sd.state[1].momentum_buffer:fill_(7)
    local _, st = next(opt2.state)
    assert_close(st.momentum_buffer, { 1, 2 }, 0)
  end)

  it('rejects a state of the wrong shape, naming parameter and state', function()
    local big = rl.zeros(64, 32, { dtype = 'f64' }):requires_grad_()
    local ps = { param({ 1 }), param({ 1, 2 }), big }
    local opt = optim.SGD(ps, { lr = 0.1, momentum = 0.9 })
    for _, p in ipairs(ps) do p.grad = rl.ones_like(p) end
    opt:step()
    local sd = opt:state_dict()
    sd.state[3].momentum_buffer = rl.zeros(32, 64, { dtype = 'f64' })
    local err = assert_error(function() opt:load_state_dict(sd) end,
      'load_state_dict: parameter 3 has shape 64x32 but the saved momentum_buffer has 32x64')
    assert.truthy(err:find('optim_spec.lua', 1, true)) -- names the caller's line
    -- nothing was changed by the failed load
    assert_close(opt.state[ps[3]].momentum_buffer:sum(), { 64 * 32 }, 0)
  end)

  it('rejects mismatched groups, parameters and foreign state', function()
    local a, b = param({ 1 }), param({ 2 })
    local sgd = optim.SGD({ a, b }, { lr = 0.1, momentum = 0.9 })
    a.grad, b.grad = f64({ 1 }), f64({ 1 })
    sgd:step()
    local adam = optim.Adam({ a, b })
    adam:step()
    -- { the optimiser that loads, the one whose state_dict it loads, a change to that, error }
    local cases = {
      { optim.SGD({ a }, { lr = 1 }), sgd, nil,
        'load_state_dict: parameter group 1 has 1 parameter but the saved group has 2' },
      { optim.SGD({ { params = { a } }, { params = { b } } }, { lr = 1 }), sgd, nil,
        'load_state_dict: the saved state has 1 parameter group but this optimiser has 2' },
      { sgd, adam, nil, "saved parameter group 1 has the option 'amsgrad', which SGD does not have" },
      { adam, adam, function(sd) sd.param_groups[1] = sgd:state_dict().param_groups[1] end,
        "saved parameter group 1 has the option 'dampening', which Adam does not have" },
      { sgd, sgd, function(sd) sd.state[1].exp_avg = sd.state[1].momentum_buffer end,
        "the saved state of parameter 1 has 'exp_avg', which SGD does not use" },
      { adam, adam, function(sd) sd.state[2].exp_avg_sq = nil end,
        'the saved state of parameter 2 lacks exp_avg_sq' },
      { sgd, sgd, function(sd) sd.state[5] = sd.state[1] end,
        'the saved state has an entry for parameter 5, which no saved group lists' },
      { sgd, sgd, function(sd) sd.param_groups[1].lr = -2 end,
        'load_state_dict: saved SGD: parameter group 1: invalid learning rate -2' },
    }
    for _, c in ipairs(cases) do
      local sd = c[2]:state_dict()
      if c[3] then c[3](sd) end
      assert_error(function() c[1]:load_state_dict(sd) end, c[4])
    end
    assert_error(function() sgd:load_state_dict(42) end, 'load_state_dict: expected a table')
  end)
end)

---------------------------------------------------------------------------
-- bad arguments
---------------------------------------------------------------------------

describe('option errors', function()
  local x = param({ 1, 2 })
  -- { class, options, the error, params (default {x}) }
  local cases = {
    { optim.SGD, { lr_rate = 0.1 }, "SGD: unknown option 'lr_rate' (did you mean 'lr'?)" },
    { optim.SGD, { learning_rate = 0.1 }, "unknown option 'learning_rate' (did you mean 'lr'?)" },
    { optim.SGD, { lr = 0.1, momentun = 0.9 },
      "unknown option 'momentun' (did you mean 'momentum'?)" },
    { optim.SGD, { lr = 0.1, foreach = true }, "SGD: option 'foreach' selects among PyTorch's" },
    { optim.SGD, {}, 'SGD: the option lr is required' },
    { optim.SGD, { lr = -0.1 }, 'SGD: invalid learning rate -0.1 (lr must be >= 0)' },
    { optim.SGD, { lr = 0 / 0 }, 'SGD: invalid learning rate' },
    { optim.SGD, { lr = '0.1' }, "SGD: lr must be a number, got the string '0.1'" },
    { optim.SGD, { lr = 0.1, momentum = -0.5 }, 'SGD: invalid momentum value -0.5' },
    { optim.SGD, { lr = 0.1, weight_decay = -1 }, 'SGD: invalid weight_decay value -1' },
    { optim.SGD, { lr = 0.1, nesterov = true },
      'SGD: nesterov momentum requires momentum > 0 and dampening = 0 ' ..
      '(got momentum = 0, dampening = 0)' },
    { optim.SGD, { lr = 0.1, momentum = 0.9, dampening = 0.1, nesterov = true },
      'nesterov momentum requires momentum > 0 and dampening = 0 ' ..
      '(got momentum = 0.9, dampening = 0.1)' },
    { optim.SGD, { lr = 0.1, nesterov = 1 }, 'SGD: nesterov must be true or false, got 1' },
    { optim.Adam, { lr = -1 }, 'Adam: invalid learning rate -1' },
    { optim.Adam, { eps = -1e-8 }, 'Adam: invalid epsilon value -1e-08' },
    { optim.Adam, { betas = { 1.0, 0.999 } }, 'Adam: invalid beta parameter at index 1: 1' },
    { optim.Adam, { betas = { 0.9, -0.1 } }, 'Adam: invalid beta parameter at index 2: -0.1' },
    { optim.Adam, { betas = 0.9 }, 'Adam: betas must be a list of two numbers' },
    { optim.Adam, { beta1 = 0.9 }, "Adam: unknown option 'beta1' (did you mean 'betas'?)" },
    { optim.Adam, { momentum = 0.9 }, "Adam: unknown option 'momentum'" },
    { optim.Adam, { amsgrad = 'yes' }, 'Adam: amsgrad must be true or false' },
    { optim.Adam, { weight_decay = -0.1 }, 'Adam: invalid weight_decay value -0.1' },
    { optim.Nadam, { momentum_decay = -1 }, 'Nadam: invalid momentum_decay value -1' },
    { optim.Nadam, { amsgrad = true }, "Nadam: unknown option 'amsgrad'" },
    { optim.Nadam, { betas = { 0.9 } }, 'Nadam: betas must be a list of two numbers' },
    -- parameters that are not tensors, do not require grad or are not leaves
    { optim.SGD, { lr = 1 }, 'SGD: params must be a list of tensors, or a list of parameter groups',
      x },
    { optim.SGD, { lr = 1 }, 'a single tensor (wrap it in a list: {x})', x },
    { optim.SGD, { lr = 1 }, 'SGD: got an empty parameter list', {} },
    { optim.SGD, { lr = 1 }, 'SGD: parameter 2 is 3, expected a tensor', { x, 3 } },
    { optim.SGD, { lr = 1 }, "SGD: parameter 1 is the string 'w', expected a tensor", { 'w' } },
    { optim.Adam, nil, 'Adam: parameter 1 (size 1, f64) does not require grad', { f64({ 1 }) } },
    { optim.Adam, nil, 'Adam: parameter 1 (size 2) is not a leaf', { x * 2 } },
    { optim.SGD, { lr = 1 }, 'SGD: parameter 2 (in group 1) is parameter 1 again', { x, x } },
    { optim.SGD, { lr = 1 }, 'SGD: element 2 of params is a tensor of size 2; when the first ' ..
      'element is a parameter group', { { params = { x } }, x } },
    { optim.SGD, { lr = 1 }, 'SGD: parameter group 1: the parameter list is empty',
      { { params = {} } } },
    { optim.SGD, { lr = 1 }, "SGD: parameter group 1: unknown option 'momentun' (did you mean " ..
      "'momentum'?)", { { params = { x }, momentun = 1 } } },
    { optim.SGD, 0.1, 'SGD: options must be a table' },
  }
  for _, c in ipairs(cases) do
    it(c[3], function()
      local err = assert_error(function() c[1](c[4] or { x }, c[2]) end, c[3])
      assert.truthy(err:find('optim_spec.lua', 1, true), 'names the caller: ' .. err)
    end)
  end

  it('reject a grad of another dtype at step', function()
    local p = param({ 1, 2 })
    local opt = optim.SGD({ p }, { lr = 1 })
    p.grad = rl.tensor({ 1, 1 }, { dtype = 'f32' })
    assert_error(function() opt:step() end, 'SGD: step: parameter 1 is f64 but its grad is f32')
  end)
end)

---------------------------------------------------------------------------
-- learning-rate schedules
---------------------------------------------------------------------------

describe('optim.MultiStepLR', function()
  local sgd = sgd_groups

  it('multiplies by gamma at each milestone, twice for a repeated one (by hand)', function()
    local opt = sgd({ 1.0, 4.0 })
    local s = optim.MultiStepLR(opt, { milestones = { 4, 2, 4 }, gamma = 0.5 })
    assert.are.same({ 1.0, 4.0 }, s:get_last_lr())
    local want = { { 1, 4 }, { 0.5, 2 }, { 0.5, 2 }, { 0.125, 0.5 }, { 0.125, 0.5 } }
    for k = 1, 5 do
      s:step()
      assert.are.same(want[k], s:get_last_lr())
      assert.are.equal(want[k][2], opt.param_groups[2].lr)
    end
    assert.are.equal(1.0, opt.param_groups[1].initial_lr)
    assert.are.equal(5, s.last_epoch)
  end)

  it('defaults gamma to 0.1', function()
    local opt = sgd({ 1.0 })
    local s = optim.MultiStepLR(opt, { milestones = { 1 } })
    s:step()
    assert.are.same({ 0.1 }, s:get_last_lr())
  end)

  it('state_dict round trip continues the schedule', function()
    local opt = sgd({ 0.1, 0.2 })
    local s = optim.MultiStepLR(opt, { milestones = { 2, 3, 6 }, gamma = 0.1 })
    for _ = 1, 2 do s:step() end
    local osd, ssd = opt:state_dict(), s:state_dict()
    local opt2 = sgd({ 9, 9 })
    opt2:load_state_dict(osd)
    local s2 = optim.MultiStepLR(opt2, { milestones = { 1 }, gamma = 0.5, last_epoch = 2 })
    s2:load_state_dict(ssd)
    assert.are.same(s:get_last_lr(), s2:get_last_lr())
    for _ = 1, 6 do
      s:step()
      s2:step()
      assert.are.same(s:get_last_lr(), s2:get_last_lr())
    end
    assert.are.same({ 2, 3, 6 }, s2.milestones)
    assert_error(function() s2:load_state_dict({ last_epoch = 1 }) end,
      'MultiStepLR: load_state_dict: the saved state lacks')
  end)

  it('reports bad arguments', function()
    local opt = sgd({ 0.1 })
    -- { options, the error, optimiser (default opt) }
    local cases = {
      { { gamma = 0.1 }, 'MultiStepLR: the option milestones is required' },
      { { milestone = { 1 } }, "MultiStepLR: unknown option 'milestone' (did you mean " ..
        "'milestones'?)" },
      { { milestones = { 10, 2.5 } }, 'MultiStepLR: milestone 2 is 2.5, expected an integer epoch' },
      { { milestones = 30 }, 'MultiStepLR: milestones must be a list of epoch numbers' },
      { { milestones = { 1 }, gamma = '0.1' }, 'MultiStepLR: gamma must be a number' },
      { { milestones = { 1 } }, 'MultiStepLR: the first argument must be an optimiser', {} },
      { { milestones = { 1 }, last_epoch = 3 }, 'MultiStepLR: last_epoch = 3 resumes a ' ..
        'schedule, but parameter group 1 has no initial_lr', sgd({ 1 }) },
    }
    for _, c in ipairs(cases) do
      assert_error(function() optim.MultiStepLR(c[3] or opt, c[1]) end, c[2])
    end
    local s = optim.MultiStepLR(opt, { milestones = { 1 } })
    assert_error(function() s:step(3) end, 'MultiStepLR: step() takes no epoch')
  end)
end)

describe('the paper schedule (METHODS.md)', function()
  it('paper_milestones follows the table of epoch counts, at every boundary', function()
    local want = {
      { 1, { 10, 15 } }, { 20, { 10, 15 } }, { 21, { 15, 25 } }, { 30, { 15, 25 } },
      { 31, { 20, 30 } }, { 40, { 20, 30 } }, { 41, { 25, 40 } }, { 50, { 25, 40 } },
      { 51, { 30, 50 } }, { 60, { 30, 50 } }, { 61, { 40, 60 } }, { 70, { 40, 60 } },
      { 71, { 30, 50, 70 } }, { 80, { 30, 50, 70 } }, { 81, { 40, 80, 100 } },
      { 120, { 40, 80, 100 } }, { 121, { 40, 80, 120, 140 } }, { 160, { 40, 80, 120, 140 } },
      { 161, { 60, 100, 140, 180 } }, { 1000, { 60, 100, 140, 180 } },
    }
    for _, w in ipairs(want) do
      assert.are.same(w[2], optim.paper_milestones(w[1]), 'epochs = ' .. w[1])
    end
    -- a fresh list each time
    local m = optim.paper_milestones(60)
    m[1] = 0
    assert.are.same({ 30, 50 }, optim.paper_milestones(60))
  end)

  it('paper_scheduler decays by 0.1: SVHN, 60 epochs at lr 1e-2', function()
    local p = param({ 0 })
    local opt = optim.SGD({ p }, { lr = 1e-2 })
    local s = optim.paper_scheduler(opt, 60)
    assert.are.same({ 30, 50 }, s.milestones)
    local used = {} -- the lr each epoch (1-based) trains with
    for epoch = 1, 60 do
      used[epoch] = opt.param_groups[1].lr
      s:step()
    end
    assert.are.equal(1e-2, used[1])
    assert.are.equal(1e-2, used[30])
    assert.are.equal(1e-2 * 0.1, used[31])
    assert.are.equal(1e-2 * 0.1, used[50])
    assert.are.equal(1e-2 * 0.1 * 0.1, used[51])
    assert.are.equal(1e-2 * 0.1 * 0.1, used[60])
  end)

  it('reports bad epoch counts', function()
    for _, c in ipairs({ { 0, '0' }, { 2.5, '2.5' }, { '60', "the string '60'" } }) do
      assert_error(function() optim.paper_milestones(c[1]) end,
        'paper_milestones: epochs must be a positive integer, got ' .. c[2])
    end
    assert_error(function() optim.paper_scheduler(optim.SGD({ param({ 1 }) }, { lr = 1 }), -1) end,
      'paper_scheduler: epochs must be a positive integer, got -1')
  end)
end)

---------------------------------------------------------------------------
-- cross-check against PyTorch 1.13
---------------------------------------------------------------------------

-- loss = sum((W U + c - T)^2), W 2x3, c 2, U 3x4, T 2x4 (c broadcast over columns)
local U = { { 1.0, 0.5, -1.5, 2.0 }, { -0.5, 1.0, 0.25, -1.0 }, { 0.75, -2.0, 1.0, 0.5 } }
local T = { { 1.0, -1.0, 0.5, 2.0 }, { 0.0, 1.5, -0.5, 1.0 } }
local W0 = { { 0.3, -0.2, 0.5 }, { -0.4, 0.1, 0.25 } }
local C0 = { 0.05, -0.1 }
local NSTEPS = 5

-- dW = 2 R U^T, dc = 2 R 1 with R = W U + c - T, in plain Lua.
local function lsq_grads(W, c)
  local R = {}
  for i = 1, 2 do
    R[i] = {}
    for j = 1, 4 do
      local s = c[i] - T[i][j]
      for k = 1, 3 do s = s + W[i][k] * U[k][j] end
      R[i][j] = s
    end
  end
  local dW, dc = {}, {}
  for i = 1, 2 do
    dW[i] = {}
    for k = 1, 3 do
      local s = 0
      for j = 1, 4 do s = s + R[i][j] * U[k][j] end
      dW[i][k] = 2 * s
    end
    local s = 0
    for j = 1, 4 do s = s + R[i][j] end
    dc[i] = 2 * s
  end
  return dW, dc
end

-- { torch.optim's class name (rl.optim has it too), options, per-group options for (W, c) or nil }
local CASES = {
  { 'SGD', { lr = 0.02 } },
  { 'SGD', { lr = 0.02, momentum = 0.9 } },
  { 'SGD', { lr = 0.02, momentum = 0.9, nesterov = true } },
  { 'SGD', { lr = 0.02, weight_decay = 0.1 } },
  { 'SGD', { lr = 0.02, momentum = 0.8, dampening = 0.3, weight_decay = 0.05 } },
  { 'SGD', { lr = 0.01, momentum = 0.5, maximize = true } },
  { 'SGD', { lr = 0.02, momentum = 0.9 }, { { lr = 0.01 }, { momentum = 0.5, nesterov = true } } },
  { 'Adam', { lr = 0.1 } },
  { 'Adam', { lr = 0.1, amsgrad = true } },
  { 'Adam', { lr = 0.1, betas = { 0.8, 0.5 }, amsgrad = true } },
  { 'Adam', { lr = 0.05, weight_decay = 0.1 } },
  { 'Adam', { lr = 0.05, betas = { 0.85, 0.9 }, eps = 1e-4, weight_decay = 0.01, amsgrad = true } },
  { 'Adam', { lr = 0.05 }, { { lr = 0.2, amsgrad = true }, { betas = { 0.5, 0.6 } } } },
  { 'NAdam', { lr = 0.1 } },
  { 'NAdam', { lr = 0.05, betas = { 0.85, 0.995 }, weight_decay = 0.1, momentum_decay = 0.01 } },
  { 'NAdam', { lr = 0.2, betas = { 0.5, 0.6 }, eps = 1e-3, momentum_decay = 0.3 } },
}
-- { group lrs, milestones, gamma, epochs }
local SCHEDULES = {
  { { 0.1, 0.3 }, { 2, 5, 5, 9 }, 0.5, 12 },
  { { 1e-2 }, optim.paper_milestones(160), 0.1, 165 },
  { { 1e-4 }, optim.paper_milestones(200), 0.1, 200 },
  { { 1e-3, 2e-2 }, optim.paper_milestones(60), 0.1, 60 },
}

-- Lua values as Python literals.
local function py(v)
  if type(v) == 'boolean' then return v and 'True' or 'False' end
  if math.type(v) == 'integer' then return tostring(v) end
  if type(v) == 'number' then return string.format('%.17g', v) end
  if v == nil then return 'None' end
  assert(type(v) == 'table')
  if #v > 0 then
    local parts = {}
    for i, e in ipairs(v) do parts[i] = py(e) end
    return '(' .. table.concat(parts, ', ') .. ',)'
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = string.format("'%s': %s", k, py(v[k])) end
  return '{' .. table.concat(parts, ', ') .. '}'
end

local PY_SCRIPT = [[
import torch
# f64 throughout; NAdam's mu_product is a tensor of the default dtype in 1.13,
# so it is f64 here too (rl keeps it as a double).
torch.set_default_dtype(torch.float64)
U = torch.tensor(%s)
T = torch.tensor(%s)
W0 = torch.tensor(%s)
C0 = torch.tensor(%s)
NSTEPS = %d
CASES = %s
SCHEDULES = %s

def fmt(vals):
    return ' '.join('%%.17g' %% v for v in vals)

for ci, (name, opts, groups) in enumerate(CASES, 1):
    W = W0.clone().requires_grad_(True)
    c = C0.clone().requires_grad_(True)
    if groups is None:
        params = [W, c]
    else:
        params = [dict(groups[0], params=[W]), dict(groups[1], params=[c])]
    opt = getattr(torch.optim, name)(params, **opts)
    for s in range(1, NSTEPS + 1):
        opt.zero_grad()
        loss = ((W @ U + c[:, None] - T) ** 2).sum()
        loss.backward()
        opt.step()
        print('opt', ci, s, fmt(W.detach().flatten().tolist() + c.detach().tolist()))

for si, (lrs, milestones, gamma, epochs) in enumerate(SCHEDULES, 1):
    ps = [torch.zeros(1, requires_grad=True) for _ in lrs]
    opt = torch.optim.SGD([{'params': [p], 'lr': lr} for p, lr in zip(ps, lrs)], lr=lrs[0])
    sch = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma)
    print('lr', si, 0, fmt(sch.get_last_lr()))
    for e in range(1, epochs + 1):
        opt.step()
        sch.step()
        print('lr', si, e, fmt(sch.get_last_lr()))
print('done')
]]

local torch_results -- { opt = {[case] = {[step] = values}}, lr = {[sched] = {[epoch] = lrs}} }
local function torch_run()
  if torch_results then return torch_results end
  local cases = {}
  for i, c in ipairs(CASES) do
    local groups = c[3] and ('[' .. py(c[3][1]) .. ', ' .. py(c[3][2]) .. ']') or 'None'
    cases[i] = string.format("('%s', %s, %s)", c[1], next(c[2]) and py(c[2]) or '{}', groups)
  end
  local scheds = {}
  for i, s in ipairs(SCHEDULES) do
    scheds[i] = string.format('(%s, %s, %s, %d)', py(s[1]), py(s[2]), py(s[3]), s[4])
  end
  local script = string.format(PY_SCRIPT, py(U), py(T), py(W0), py(C0), NSTEPS,
    '[' .. table.concat(cases, ',\n         ') .. ']', '[' .. table.concat(scheds, ', ') .. ']')
  local path = os.tmpname()
  local f = assert(io.open(path, 'w'))
  f:write(script)
  f:close()
  local pipe = assert(io.popen(PYTHON .. ' ' .. shell_quote(path) .. ' 2>&1'))
  local out = pipe:read('a')
  local ok = pipe:close()
  os.remove(path)
  assert(ok and out:find('\ndone\n?$'), 'the PyTorch script failed:\n' .. out .. '\n' .. script)
  local res = { opt = {}, lr = {} }
  for line in out:gmatch('[^\n]+') do
    local kind, a, b, rest = line:match('^(%a+) (%d+) (%d+) (.*)$')
    if kind == 'opt' or kind == 'lr' then
      local vals = {}
      for w in rest:gmatch('%S+') do vals[#vals + 1] = assert(tonumber(w), line) end
      local t = res[kind]
      t[tonumber(a)] = t[tonumber(a)] or {}
      t[tonumber(a)][tonumber(b)] = vals
    end
  end
  torch_results = res
  return res
end

local function rl_lsq_run(case)
  local W, c = param(W0), param(C0)
  local params = { W, c }
  if case[3] then
    params = { copy(case[3][1]), copy(case[3][2]) }
    params[1].params, params[2].params = { W }, { c }
  end
  local opt = optim[case[1]](params, case[2])
  local trace = {}
  for s = 1, NSTEPS do
    opt:zero_grad()
    local dW, dc = lsq_grads(W:tolist(), c:tolist())
    W.grad, c.grad = f64(dW), f64(dc)
    opt:step()
    local vals = flat(W)
    for _, v in ipairs(flat(c)) do vals[#vals + 1] = v end
    trace[s] = vals
  end
  return trace
end

local function describe_case(case)
  local keys = {}
  for k in pairs(case[2]) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do
    local v = case[2][k]
    keys[i] = k .. '=' .. (type(v) == 'table' and '{' .. table.concat(v, ',') .. '}' or tostring(v))
  end
  return case[1] .. '{' .. table.concat(keys, ', ') .. '}' .. (case[3] and ' with 2 groups' or '')
end

-- PyTorch's numbers for case i of `kind` ('opt' or 'lr'); nil, with the test
-- marked pending, where torch is missing.
local function torch_wants(kind, i)
  if not have_torch() then
    pending('torch not installed')
    return nil
  end
  local want = torch_run()[kind][i]
  assert(want, 'no PyTorch output for ' .. kind .. ' case ' .. i)
  return want
end

describe('cross-check against PyTorch 1.13 (/usr/bin/python3, f64)', function()
  for ci, case in ipairs(CASES) do
    it(describe_case(case) .. ': ' .. NSTEPS .. ' steps agree to 1e-10', function()
      local want = torch_wants('opt', ci)
      if not want then return end
      local got = rl_lsq_run(case)
      for s = 1, NSTEPS do
        assert_close(got[s], want[s], 1e-10, 1e-14, describe_case(case) .. ', step ' .. s)
      end
    end)
  end

  for si, sc in ipairs(SCHEDULES) do
    it(string.format('MultiStepLR milestones {%s} gamma %g: %d epochs of lrs agree exactly',
      table.concat(sc[2], ','), sc[3], sc[4]), function()
      local want = torch_wants('lr', si)
      if not want then return end
      local s = optim.MultiStepLR(sgd_groups(sc[1]), { milestones = sc[2], gamma = sc[3] })
      assert_close(s:get_last_lr(), want[0], 0, 0, 'epoch 0')
      for e = 1, sc[4] do
        s:step()
        assert_close(s:get_last_lr(), want[e], 0, 0, 'epoch ' .. e)
      end
    end)
  end
end)

---------------------------------------------------------------------------
-- with autograd
---------------------------------------------------------------------------

-- Whether x:backward() works in this build; checked in a subprocess, since a
-- crash there would take the whole spec run with it.
local function backward_works()
  local code = "local rl = require 'rl'; local x = rl.tensor({1, 2}, {dtype = 'f64'}):" ..
      "requires_grad_(); (x * x):sum():backward(); io.write(x.grad and " ..
      "table.concat(x.grad:tolist(), ',') or 'nil')"
  local cmd = string.format('LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s 2>/dev/null',
    shell_quote(package.path), shell_quote(package.cpath), shell_quote(code))
  local pipe = io.popen(cmd)
  local out = pipe:read('a')
  pipe:close()
  return out == '2.0,4.0' or out == '2,4'
end

describe('optimisers with autograd', function()
  it('Adam driven by backward() equals Adam driven by the hand-computed gradient', function()
    if not backward_works() then
      pending('backward() does not run in this build (see the engine report)')
      return
    end
    local Ut, Tt = f64(U), f64(T)
    local W, c = param(W0), param(C0)
    local opt = optim.Adam({ W, c }, { lr = 0.1, amsgrad = true })
    for _ = 1, NSTEPS do
      opt:zero_grad()
      local r = W:matmul(Ut) + c:view(2, 1) - Tt
      local loss = (r * r):sum()
      loss:backward()
      opt:step()
    end
    local want = rl_lsq_run({ 'Adam', { lr = 0.1, amsgrad = true } })[NSTEPS]
    local got = flat(W)
    for _, v in ipairs(flat(c)) do got[#got + 1] = v end
    assert_close(got, want, 1e-10, 1e-14, 'after ' .. NSTEPS .. ' steps')
  end)
end)
