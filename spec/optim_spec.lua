-- optim_spec.lua - rl.optim: SGD, Adam, Nadam, MultiStepLR, the paper's milestones.
--
-- The evidence: steps worked out by hand; 3 steps against references written
-- here in plain Lua numbers (one coordinate at a time, from the published
-- formulas); 5 steps of an f64 least-squares problem against PyTorch 1.13
-- (Debian's python3-torch, in a subprocess; pending, never passed, where
-- torch is missing); state_dict round trips; the errors of bad calls (the
-- option checker itself is spec/options_spec.lua's).  Gradients are set
-- directly (p.grad = tensor) from plain-Lua formulas, so only one test
-- depends on autograd.
local rl = require 'rl'
local optim = require 'rl.optim'
local check = require 'helpers.check'

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------

local function f64(t) return rl.tensor(t, { dtype = 'f64' }) end
local function param(t) return f64(t):requires_grad_() end

-- The numbers of a tensor or a nested list (of numbers or tensors), in order.
local function flat(x)
  local out = {}
  local function walk(v)
    if rl.is_tensor(v) then return walk(v:tolist()) end
    if type(v) ~= 'table' then out[#out + 1] = v end
    for _, e in ipairs(type(v) == 'table' and v or {}) do walk(e) end
  end
  walk(x)
  return out
end

-- A shallow copy (of a group's options).
local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- got ~ want (tensors or lists): |g - w| <= atol + rtol * max(|g|, |w|).
local function assert_close(got, want, rtol, atol, what)
  local g, w = flat(got), flat(want)
  assert(#g == #w, string.format('%s: %d values, expected %d', what or 'values', #g, #w))
  for i = 1, #w do
    local a, b = g[i], w[i]
    local scale = math.max(math.abs(a), math.abs(b))
    assert(a == b or math.abs(a - b) <= (atol or 0) + rtol * scale, string.format(
      '%s: element %d is %.17g, expected %.17g (rel. diff %.3g)', what or 'values', i, a, b,
      math.abs(a - b) / scale))
  end
end

-- The error of fn, which must contain `pattern` (plain text).
local function assert_error(fn, pattern)
  local err = check.err_of(fn)
  check.has(err, pattern)
  return err
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
-- plain-Lua references: coordinate x with gradient g at step t (from 1), st its state
---------------------------------------------------------------------------

local REF = {}

function REF.SGD(x, g, st, o)
  local m, d = o.momentum or 0, (o.maximize and -g or g) + (o.weight_decay or 0) * x
  if m ~= 0 then
    st.buf = st.buf and st.buf * m + (1 - (o.dampening or 0)) * d or d
    d = o.nesterov and d + m * st.buf or st.buf
  end
  return x - o.lr * d
end

function REF.Adam(x, g, st, o, t)
  local b1, b2 = table.unpack(o.betas or { 0.9, 0.999 })
  g = (o.maximize and -g or g) + (o.weight_decay or 0) * x
  st.m = b1 * (st.m or 0) + (1 - b1) * g
  st.v = b2 * (st.v or 0) + (1 - b2) * g * g
  st.vmax = math.max(st.vmax or 0, st.v)
  local vhat = (o.amsgrad and st.vmax or st.v) / (1 - b2 ^ t)
  return x - (o.lr or 1e-3) * st.m / (1 - b1 ^ t) / (math.sqrt(vhat) + (o.eps or 1e-8))
end

-- As PyTorch 1.13 (textbook = false) or as documented (textbook = true).
function REF.NAdam(x, g, st, o, t)
  local b1, b2 = table.unpack(o.betas or { 0.9, 0.999 })
  local lr, psi = o.lr or 2e-3, o.momentum_decay or 4e-3
  local mu, mu_next = b1 * (1 - 0.5 * 0.96 ^ (t * psi)), b1 * (1 - 0.5 * 0.96 ^ ((t + 1) * psi))
  st.prod = (st.prod or 1) * mu -- mu_1 * ... * mu_t
  local prod_next = o.textbook and st.prod * mu_next or st.prod * mu * mu_next
  g = g + (o.weight_decay or 0) * x
  st.m = b1 * (st.m or 0) + (1 - b1) * g
  st.v = b2 * (st.v or 0) + (1 - b2) * g * g
  local denom = math.sqrt(st.v / (1 - b2 ^ t)) + (o.eps or 1e-8)
  return x - lr * (1 - mu) / (1 - st.prod) * g / denom
      - lr * mu_next / (1 - prod_next) * st.m / denom
end

-- The reference of `name` run over every coordinate of x0.
local function ref_run(name, x0, grads, o)
  local x = {}
  for i, xi in ipairs(x0) do
    local st = {}
    for t, g in ipairs(grads) do xi = REF[name](xi, g[i], st, o, t) end
    x[i] = xi
  end
  return x
end

---------------------------------------------------------------------------
-- steps worked out by hand, defaults, state
---------------------------------------------------------------------------

describe('optimisers, worked by hand,', function()
  local mu1, mu2 = 0.9 * (1 - 0.5 * 0.96 ^ 0.004), 0.9 * (1 - 0.5 * 0.96 ^ 0.008)
  -- { what, class, options, start, gradients, result }
  local HAND = {
    { 'SGD takes a plain step p - lr*g', 'SGD', { lr = 0.1 }, { 1, -2 }, { { 0.5, 3 } },
      { 0.95, -2.3 } },
    -- buf1 = g1: p1 = (0.95, -2.3); buf2 = 0.9 buf1 + g2 = (0.95, 5.7): p2 = p1 - 0.1 buf2
    { 'SGD starts the momentum buffer at the first gradient', 'SGD', { lr = 0.1, momentum = 0.9 },
      { 1, -2 }, { { 0.5, 3 }, { 0.5, 3 } }, { 0.855, -2.87 } },
    -- buf1 = g1, not (1 - dampening) g1; buf2 = 0.5*1 + 0.5*1 = 1
    { 'SGD applies dampening from the second step on only', 'SGD', { lr = 1, momentum = 0.5,
      dampening = 0.5 }, { 0 }, { { 1 }, { 1 } }, { -2 } },
    -- buf1 = 2, d1 = 2 + 0.5*2 = 3: p1 = 10 - 0.1*3
    { 'SGD uses g + momentum*buf for nesterov', 'SGD', { lr = 0.1, momentum = 0.5,
      nesterov = true }, { 10 }, { { 2 } }, { 9.7 } },
    -- g = 1 + 0.1*4 = 1.4: p = 4 - 0.5*1.4
    { 'SGD adds weight_decay*p to the gradient', 'SGD', { lr = 0.5, weight_decay = 0.1 }, { 4 },
      { { 1 } }, { 3.3 } },
    { 'SGD climbs with maximize', 'SGD', { lr = 0.1, maximize = true }, { 1, -2 }, { { 0.5, 3 } },
      { 1.05, -1.7 } },
    -- m1/(1-b1) = g and v1/(1-b2) = g^2: the step is lr*g/(|g| + eps); eps sits outside the
    -- root: 1e-9 / (1e-9 + 1e-8) = 1/11
    { 'Adam moves by lr*g/(|g| + eps) on its first step', 'Adam', { lr = 0.1 }, { 1, -2, 0.5 },
      { { 0.5, -3, 1e-9 } }, { 1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 3 / (3 + 1e-8),
      0.5 - 0.1 / 11 } },
    -- t = 1: m1 = 0.1 g, denom = |g| + eps = 2 + 1e-8,
    -- p1 = p0 - lr g/denom - lr mu2/(1 - mu1*mu1*mu2) m1/denom (textbook: 1 - mu1*mu2)
    { 'Nadam takes the PyTorch 1.13 first step', 'Nadam', { lr = 0.1 }, { 3 }, { { 2 } },
      { 3 - 0.2 / (2 + 1e-8) - 0.1 * mu2 / (1 - mu1 * mu1 * mu2) * 0.2 / (2 + 1e-8) } },
    { 'Nadam takes the textbook first step', 'Nadam', { lr = 0.1, textbook = true }, { 3 },
      { { 2 } }, { 3 - 0.2 / (2 + 1e-8) - 0.1 * mu2 / (1 - mu1 * mu2) * 0.2 / (2 + 1e-8) } },
  }
  for _, c in ipairs(HAND) do
    it(c[1], function() assert_close(run(optim[c[2]], c[4], c[5], c[3]), c[6], 1e-14) end)
  end

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

  it('keep their state: the momentum buffer, Adam in f32, amsgrad', function()
    local p, opt = run(optim.SGD, { 1, -2 }, { { 0.5, 3 }, { 0.5, 3 } },
      { lr = 0.1, momentum = 0.9 })
    assert_close(opt.state[p].momentum_buffer, { 0.95, 5.7 }, 1e-15)
    p = rl.tensor({ 1.0, 2.0 }, { dtype = 'f32' }):requires_grad_()
    opt = optim.Adam({ p }, { lr = 0.1 })
    p.grad = rl.tensor({ 1.0, -1.0 }, { dtype = 'f32' })
    opt:step()
    assert.are.equal('f32', opt.state[p].exp_avg.dtype)
    assert_close(p, { 0.9, 2.1 }, 1e-6)
    -- on these gradients v drops at step 2 (coordinate 2): the reference case exercises amsgrad
    p, opt = run(optim.Adam, X0, GRADS, { lr = 0.1, betas = { 0.8, 0.5 }, amsgrad = true })
    local v, vmax = flat(opt.state[p].exp_avg_sq), flat(opt.state[p].max_exp_avg_sq)
    for i = 1, #v do assert.is_true(vmax[i] >= v[i]) end
    assert.is_true(vmax[2] > v[2])
    assert.are.equal(optim.Nadam, optim.NAdam)
  end)
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
    assert_close({ a, b }, { 0.5, 1.5, 3 }, 0)
    assert.is_nil(opt.state[b])
    assert.is_nil(opt:state_dict().state[2])
  end)

  it('step under no_grad, check changed options, and leave grad mode as it was', function()
    local p = param({ 1 })
    local opt = optim.SGD({ p }, { lr = 0.1 })
    p.grad = f64({ 1 })
    opt:step()
    assert.is_true(rl.is_grad_enabled() and p.requires_grad)
    for _, c in ipairs({ { -1, 'SGD: lr must be >= 0, got -1' }, { nil, 'the option lr is required' } }) do
      opt.param_groups[1].lr = c[1] -- caught at the next step
      assert_error(function() opt:step() end, c[2])
      assert.is_true(rl.is_grad_enabled())
    end
    opt.param_groups[1].lr = 0.5
    rl.no_grad(function() opt:step() end)
    assert.is_true(rl.is_grad_enabled())
    assert_close(p, { 0.9 - 0.5 }, 1e-15)
  end)

  it('zero_grad() drops grads; zero_grad(false) zeroes them in place', function()
    local a, b = param({ 1, 2 }), param({ 3 })
    local opt = optim.SGD({ a, b }, { lr = 0.1 })
    a.grad, b.grad = f64({ 5, 6 }), f64({ 7 })
    opt:zero_grad()
    assert.is_nil(a.grad or b.grad)
    local g = f64({ 5, 6 })
    a.grad = g
    opt:zero_grad(false)
    assert_close(g, { 0, 0 }, 0) -- the same tensor, zeroed
    assert.is_nil(b.grad)        -- a nil grad stays nil
    a.grad = f64({ 1, 1 })
    opt:zero_grad { set_to_none = false }
    assert_close(a.grad, { 0, 0 }, 0)
    assert_error(function() opt:zero_grad { set_to_nil = true } end,
      "SGD: zero_grad: unknown option 'set_to_nil'")
    assert_error(function() opt:zero_grad(1) end, 'SGD: zero_grad: set_to_none must be true or false')
  end)

  it('step(closure) calls the closure with grad mode on and returns its value', function()
    local p = param({ 2 })
    local opt = optim.SGD({ p }, { lr = 0.25 })
    local calls, mode = 0, nil
    local loss = rl.no_grad(function()
      return opt:step(function()
        calls, mode = calls + 1, rl.is_grad_enabled()
        opt:zero_grad()
        p.grad = f64({ 4 })
        return 42
      end)
    end)
    assert.are.same({ 42, 1, true }, { loss, calls, mode })
    assert_close(p, { 1 }, 0)
    assert_error(function() opt:step(42) end, 'SGD: step: the closure must be a function, got 42')
  end)

  it('take per-group options, inheriting the rest from the constructor', function()
    local a, b = param({ 1 }), param({ 1 })
    local opt = optim.SGD({ { params = { a } }, { params = { b }, lr = 0.5, momentum = 0 } },
      { lr = 0.1, momentum = 0.9 })
    local g1, g2 = opt.param_groups[1], opt.param_groups[2]
    assert.are.same({ 0.1, 0.9, 0.5 }, { g1.lr, g1.momentum, g2.lr })
    a.grad, b.grad = f64({ 1 }), f64({ 1 })
    opt:step()
    opt:step()
    assert_close({ a, b }, { 1 - 0.1 - 0.1 * 1.9, 0 }, 1e-15)
    -- a required lr may come from every group instead of the options
    opt = optim.SGD({ { params = { a }, lr = 0.1 }, { params = { b }, lr = 0.2 } })
    assert.are.equal(0.2, opt.param_groups[2].lr)
    assert_error(function() optim.SGD({ { params = { a }, lr = 0.1 }, { params = { b } } }) end,
      'SGD: parameter group 2: the option lr is required')
  end)

  it('add_param_group appends a group, checked like the others', function()
    local a, b = param({ 1 }), param({ 1 })
    local opt = optim.Adam({ a }, { lr = 0.1 })
    opt:add_param_group { params = { b }, lr = 0.01 }
    assert.are.same({ 0.01, { 0.9, 0.999 } }, { opt.param_groups[2].lr, opt.param_groups[2].betas })
    assert_error(function() opt:add_param_group { params = { a } } end,
      'Adam: parameter 3 (in group 3) is parameter 1 again')
    assert_error(function() opt:add_param_group { params = { param({ 1 }) }, lr_rate = 1 } end,
      "Adam: parameter group 3: unknown option 'lr_rate' (did you mean 'lr'?)")
    assert_error(function() opt:add_param_group(a) end, 'Adam: add_param_group: expected a table')
    assert.are.equal(2, #opt.param_groups)
    check.has(tostring(opt), 'Adam (', 'Parameter Group 2  (1 parameter)', 'lr: 0.01')
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
    local cls, opts = c[2], c[3]
    it('round trip (' .. c[1] .. '): 2 steps, save, load into a new optimiser, 1 step == 3 steps',
      function()
        local a, b = param({ 1, 2 }), param({ { 0.5, -0.5 }, { 1.5, 0 } })
        local opt = cls({ { params = { a } }, { params = { b }, lr = 0.05 } }, opts)
        for k = 1, 2 do
          set_grads(a, b, k)
          opt:step()
        end
        local a2, b2 = param(a:tolist()), param(b:tolist())
        -- built with other hyperparameters: load_state_dict restores the saved ones
        local opt2 = cls({ { params = { a2 } }, { params = { b2 } } }, { lr = 123 })
        opt2:load_state_dict(opt:state_dict())
        assert.are.same({ 0.1, 0.05 }, { opt2.param_groups[1].lr, opt2.param_groups[2].lr })
        set_grads(a, b, 3)
        opt:step()
        set_grads(a2, b2, 3)
        opt2:step()
        assert_close({ a2, b2 }, { a, b }, 0, 0, 'parameters')
      end)
  end

  it('is a snapshot with PyTorch-style ids, and holds the documented names', function()
    local a, b = param({ 1, 2 }), param({ 3 })
    local opt = optim.Adam({ a, b }, { lr = 0.1, amsgrad = true })
    a.grad, b.grad = f64({ 1, 1 }), f64({ 1 })
    opt:step()
    opt:step()
    local sd = opt:state_dict()
    local g = sd.param_groups[1]
    assert.are.same({ { 1, 2 }, 0.1, { 0.9, 0.999 }, 2 }, { g.params, g.lr, g.betas, sd.state[1].step })
    for _, k in ipairs({ 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq' }) do
      assert.is_true(rl.is_tensor(sd.state[2][k]), k)
    end
    local before = flat(sd.state[1].exp_avg)
    opt:step()
    assert.are.same({ before, 2 }, { flat(sd.state[1].exp_avg), sd.state[1].step }) -- not changed
    g.betas[1] = 0.5                                    -- nor shared with the optimiser
    assert.are.equal(0.9, opt.param_groups[1].betas[1])
    local n = optim.Nadam({ a }, { lr = 0.1 })
    n:step()
    local st = n:state_dict().state[1]
    assert.are.same({ 1, 0.9 * (1 - 0.5 * 0.96 ^ 0.004) }, { st.step, st.mu_product })
  end)

  it('loads ids and numbers as a text format leaves them; converts and copies tensors', function()
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
    sd.state = { ['1'] = sd.state[1] } -- an id turned into a string
    opt2:load_state_dict(sd)
    sd.state['1'].momentum_buffer:fill_(7)
    assert_close(select(2, next(opt2.state)).momentum_buffer, { 1, 2 }, 0)
    local adam = optim.Adam({ a })
    adam:step()
    sd = adam:state_dict()
    sd.state[1].step = f64({ 1 }) -- PyTorch keeps step as a one-element tensor
    adam:load_state_dict(sd)
    assert.are.equal(1, math.tointeger(adam.state[a].step))
  end)

  it('rejects mismatched groups, parameters and foreign state', function()
    local a, b = param({ 1 }), param({ 2 })
    local sgd = optim.SGD({ a, b }, { lr = 0.1, momentum = 0.9 })
    a.grad, b.grad = f64({ 1 }), f64({ 1 })
    sgd:step()
    local adam = optim.Adam({ a, b })
    adam:step()
    local big = rl.zeros(64, 32, { dtype = 'f64' }):requires_grad_()
    local sgd3 = optim.SGD({ a, b, big }, { lr = 0.1, momentum = 0.9 })
    big.grad = rl.ones_like(big)
    sgd3:step()
    -- { the optimiser that loads, the one whose state_dict it loads, a change to that, error }
    local cases = {
      { sgd3, sgd3, function(sd) sd.state[3].momentum_buffer = rl.zeros(32, 64) end,
        'SGD: load_state_dict: the saved state of parameter 3: momentum_buffer must be a ' ..
        'tensor of size 64x32, got an f32 tensor of size 32x64' },
      { optim.SGD({ a }, { lr = 1 }), sgd, nil,
        'SGD: load_state_dict: parameter group 1 has 1 parameter but the saved group has 2' },
      { optim.SGD({ { params = { a } }, { params = { b } } }, { lr = 1 }), sgd, nil,
        'load_state_dict: the saved state has 1 parameter group but this optimiser has 2' },
      { sgd, adam, nil, "SGD: load_state_dict: saved parameter group 1: unknown option 'amsgrad'" },
      { adam, adam, function(sd) sd.param_groups[1] = sgd:state_dict().param_groups[1] end,
        "Adam: load_state_dict: saved parameter group 1: unknown option 'dampening'" },
      { sgd, sgd, function(sd) sd.state[1].exp_avg = sd.state[1].momentum_buffer end,
        "the saved state of parameter 1: unknown state field 'exp_avg'; state fields: " ..
        'momentum_buffer' },
      { adam, adam, function(sd) sd.state[2].exp_avg_sq = nil end,
        'the saved state of parameter 2: the state field exp_avg_sq is required' },
      { adam, adam, function(sd) sd.state[2].step = 'one' end,
        "the saved state of parameter 2: step must be an integer, got the string 'one'" },
      { sgd, sgd, function(sd) sd.state[1] = 3 end,
        'the saved state of parameter 1: state fields must be a table, got 3' },
      { sgd, sgd, function(sd) sd.state[5] = sd.state[1] end,
        'the saved state has an entry for parameter 5, which no saved group lists' },
      { sgd, sgd, function(sd) sd.param_groups[1].params[2] = 1 end,
        'saved parameter group 1 lists 1 as a parameter id (ids are integers, each listed once)' },
      { sgd, sgd, function(sd) sd.param_groups[1].params = nil end,
        'parameter group 1 has 2 parameters but the saved group has no params list' },
      { sgd, sgd, function(sd) sd.param_groups[1].lr = -2 end,
        'SGD: load_state_dict: saved parameter group 1: lr must be >= 0, got -2' },
      { sgd, sgd, function(sd) sd.extra = 1 end, "unknown state_dict field 'extra'" },
    }
    for _, c in ipairs(cases) do
      local sd, state, groups = c[2]:state_dict(), c[1].state, c[1].param_groups
      if c[3] then c[3](sd) end
      check.has(assert_error(function() c[1]:load_state_dict(sd) end, c[4]), 'optim_spec.lua')
      assert.is_true(c[1].state == state and c[1].param_groups == groups) -- nothing changed
    end
    assert_error(function() sgd:load_state_dict(42) end, 'SGD: load_state_dict: state_dict ' ..
      'fields must be a table, got 42')
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
    { optim.SGD, {}, 'SGD: the option lr is required' },
    { optim.SGD, { lr = -0.1 }, 'SGD: lr must be >= 0, got -0.1' },
    { optim.SGD, { lr = '0.1' }, "SGD: lr must be a number, got the string '0.1'" },
    { optim.SGD, { lr = 0.1, momentum = -0.5 }, 'SGD: momentum must be >= 0, got -0.5' },
    { optim.SGD, { lr = 0.1, weight_decay = -1 }, 'SGD: weight_decay must be >= 0, got -1' },
    { optim.SGD, { lr = 0.1, nesterov = true }, 'SGD: nesterov momentum requires momentum > 0 ' ..
      'and dampening = 0 (got momentum = 0, dampening = 0)' },
    { optim.SGD, { lr = 0.1, momentum = 0.9, dampening = 0.1, nesterov = true },
      '(got momentum = 0.9, dampening = 0.1)' },
    { optim.SGD, { lr = 0.1, nesterov = 1 }, 'SGD: nesterov must be true or false, got 1' },
    -- PyTorch's order of checks: lr, eps, betas, weight_decay
    { optim.Adam, { lr = -1, eps = -1 }, 'Adam: lr must be >= 0, got -1' },
    { optim.Adam, { eps = -1e-8, betas = { 1, 1 } }, 'Adam: eps must be >= 0, got -1e-08' },
    { optim.Adam, { betas = { 1.0, 0.999 }, weight_decay = -1 },
      'Adam: betas[1] must be in [0, 1), got 1.0' },
    { optim.Adam, { betas = { 0.9, -0.1 } }, 'Adam: betas[2] must be in [0, 1), got -0.1' },
    { optim.Adam, { weight_decay = -0.1 }, 'Adam: weight_decay must be >= 0, got -0.1' },
    { optim.Adam, { betas = 0.9 }, 'Adam: betas must be a list of two numbers' },
    { optim.Adam, { beta1 = 0.9 }, "Adam: unknown option 'beta1' (did you mean 'betas'?)" },
    { optim.Nadam, { momentum_decay = -1 }, 'Nadam: momentum_decay must be >= 0, got -1' },
    { optim.Nadam, { amsgrad = true }, "Nadam: unknown option 'amsgrad'" },
    { optim.SGD, 0.1, 'SGD: options must be a table' },
    -- parameters that are not tensors, do not require grad or are not leaves
    { optim.SGD, { lr = 1 }, 'SGD: params must be a list of tensors, or a list of parameter ' ..
      'groups {params = {...}, lr = ...}; got a single tensor (wrap it in a list: {x})', x },
    { optim.SGD, { lr = 1 }, 'SGD: the parameter list is empty', {} },
    -- a model was read as an empty list
    { optim.SGD, { lr = 1 }, 'SGD: params must be a list of tensors, got a model (Linear): pass ' ..
      'model:parameters()', rl.nn.Linear(2, 2) },
    { optim.SGD, { lr = 1 }, 'SGD: parameter 2 is 3, expected a tensor', { x, 3 } },
    { optim.SGD, { lr = 1 }, "SGD: parameter 1 is the string 'w', expected a tensor", { 'w' } },
    { optim.Adam, nil, 'Adam: parameter 1 (size 1, f64) does not require grad', { f64({ 1 }) } },
    { optim.Adam, nil, 'Adam: parameter 1 (size 2) is not a leaf', { x * 2 } },
    { optim.SGD, { lr = 1 }, 'SGD: parameter 2 (in group 1) is parameter 1 again', { x, x } },
    { optim.SGD, { lr = 1 }, 'SGD: element 2 of params is an f64 tensor of size 2; when the first ' ..
      'element is a parameter group', { { params = { x } }, x } },
    { optim.SGD, { lr = 1 }, 'SGD: parameter group 1: the parameter list is empty',
      { { params = {} } } },
    { optim.SGD, { lr = 1 }, 'SGD: parameter group 1: params must be a list of tensors, got 3',
      { { params = 3 } } },
    { optim.SGD, { lr = 1 }, "SGD: parameter group 1: unknown option 'momentun' (did you mean " ..
      "'momentum'?)", { { params = { x }, momentun = 1 } } },
    { optim.SGD, { lr = 1 }, 'SGD: parameter group 1: name must be a string, got 3',
      { { params = { x }, name = 3 } } },
  }
  for _, c in ipairs(cases) do
    it(c[3], function()
      local err = assert_error(function() c[1](c[4] or { x }, c[2]) end, c[3])
      check.has(err, 'optim_spec.lua') -- raised at the caller's line
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
  it('multiplies by gamma at each milestone, twice for a repeated one (by hand)', function()
    local opt = sgd_groups({ 1.0, 4.0 })
    local s = optim.MultiStepLR(opt, { milestones = { 4, 2, 4 }, gamma = 0.5 })
    local want = { { 1, 4 }, { 1, 4 }, { 0.5, 2 }, { 0.5, 2 }, { 0.125, 0.5 }, { 0.125, 0.5 } }
    for k = 0, 5 do
      if k > 0 then s:step() end
      assert.are.same({ want[k + 1], want[k + 1][2] }, { s:get_last_lr(), opt.param_groups[2].lr })
    end
    assert.are.same({ 1.0, 5 }, { opt.param_groups[1].initial_lr, s.last_epoch })
    s = optim.MultiStepLR(sgd_groups({ 1.0 }), { milestones = { 1 } }) -- gamma defaults to 0.1
    s:step()
    assert.are.same({ 0.1 }, s:get_last_lr())
  end)

  it('state_dict round trip continues the schedule; a bad state is refused', function()
    local opt = sgd_groups({ 0.1, 0.2 })
    local s = optim.MultiStepLR(opt, { milestones = { 2, 3, 6 }, gamma = 0.1 })
    for _ = 1, 2 do s:step() end
    local opt2 = sgd_groups({ 9, 9 })
    opt2:load_state_dict(opt:state_dict())
    local s2 = optim.MultiStepLR(opt2, { milestones = { 1 }, gamma = 0.5, last_epoch = 2 })
    s2:load_state_dict(s:state_dict())
    for _ = 1, 7 do
      assert.are.same(s:get_last_lr(), s2:get_last_lr())
      s:step()
      s2:step()
    end
    assert.are.same({ 2, 3, 6 }, s2.milestones)
    -- { a change to the saved state, the error }
    local bad = {
      { function(sd) sd.gamma = nil end, 'MultiStepLR: load_state_dict: the saved field gamma ' ..
        'is required' },
      { function(sd) sd.milestones[1] = 2.5 end, 'milestones[1] must be an integer, got 2.5' },
      { function(sd) sd.counts = {} end, "load_state_dict: unknown saved field 'counts'" },
      { function(sd) sd.base_lrs = { 1 } end, 'the saved state is for 1 parameter group(s)' },
    }
    for _, c in ipairs(bad) do
      local sd = s:state_dict()
      c[1](sd)
      assert_error(function() s2:load_state_dict(sd) end, c[2])
    end
  end)

  it('reports bad arguments', function()
    local opt = sgd_groups({ 0.1 })
    -- { options, the error, optimiser (default opt) }
    local cases = {
      { { gamma = 0.1 }, 'MultiStepLR: the option milestones is required' },
      { { milestone = { 1 } }, "MultiStepLR: unknown option 'milestone' (did you mean " ..
        "'milestones'?)" },
      { { milestones = { 10, 2.5 } }, 'MultiStepLR: milestones[2] must be an integer, got 2.5' },
      { { milestones = 30 }, 'MultiStepLR: milestones must be a list of integers' },
      { { milestones = { 1 }, gamma = '0.1' }, 'MultiStepLR: gamma must be a number' },
      { { milestones = { 1 }, last_epoch = -2 }, 'MultiStepLR: last_epoch must be >= -1, got -2' },
      { { milestones = { 1 } }, 'MultiStepLR: the first argument must be an optimiser', {} },
      { { milestones = { 1 }, last_epoch = 3 }, 'MultiStepLR: last_epoch = 3 resumes a ' ..
        'schedule, but parameter group 1 has no initial_lr', sgd_groups({ 1 }) },
    }
    for _, c in ipairs(cases) do
      check.has(assert_error(function() optim.MultiStepLR(c[3] or opt, c[1]) end, c[2]),
        'optim_spec.lua')
    end
    local s = optim.MultiStepLR(opt, { milestones = { 1 } })
    assert_error(function() s:step(3) end, 'MultiStepLR: step() takes no epoch')
  end)
end)

describe('the paper schedule (docs/methods.md)', function()
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
    local m = optim.paper_milestones(60) -- a fresh list each time
    m[1] = 0
    assert.are.same({ 30, 50 }, optim.paper_milestones(60))
  end)

  it('paper_scheduler decays by 0.1: SVHN, 60 epochs at lr 1e-2', function()
    local opt = optim.SGD({ param({ 0 }) }, { lr = 1e-2 })
    local s = optim.paper_scheduler(opt, 60)
    assert.are.same({ 30, 50 }, s.milestones)
    local used = {} -- the lr each epoch (1-based) trains with
    for epoch = 1, 60 do
      used[epoch] = opt.param_groups[1].lr
      s:step()
    end
    assert.are.same({ 1e-2, 1e-2, 1e-2 * 0.1, 1e-2 * 0.1, 1e-2 * 0.1 * 0.1, 1e-2 * 0.1 * 0.1 },
      { used[1], used[30], used[31], used[50], used[51], used[60] })
  end)

  it('reports bad epoch counts and options', function()
    local opt = optim.SGD({ param({ 1 }) }, { lr = 1 })
    -- { call, the error }
    local cases = {
      { function() optim.paper_milestones(0) end, 'paper_milestones: epochs must be >= 1, got 0' },
      { function() optim.paper_milestones(2.5) end, 'epochs must be an integer, got 2.5' },
      { function() optim.paper_milestones('60') end, "must be an integer, got the string '60'" },
      { function() optim.paper_scheduler(opt, -1) end, 'paper_scheduler: epochs must be >= 1' },
      { function() optim.paper_scheduler(opt, 60, { milestones = { 1 } }) end,
        'paper_scheduler: milestones come from the epoch count' },
      { function() optim.paper_scheduler(opt, 60, 3) end, 'paper_scheduler: opts must be a table' },
    }
    for _, c in ipairs(cases) do check.has(assert_error(c[1], c[2]), 'optim_spec.lua') end
  end)
end)

---------------------------------------------------------------------------
-- runs against the plain-Lua references and PyTorch 1.13
---------------------------------------------------------------------------

-- { class (torch.optim's name; rl.optim has it too), options, per-group options for (W, c) }.
-- Each case without groups runs 3 steps against the plain-Lua reference; each but textbook
-- Nadam (not in PyTorch 1.13) runs 5 steps of least squares against PyTorch.
local CASES = {
  { 'SGD', { lr = 0.02 } },
  { 'SGD', { lr = 0.02, momentum = 0.9 } },
  { 'SGD', { lr = 0.02, momentum = 0.9, nesterov = true } },
  { 'SGD', { lr = 0.02, weight_decay = 0.1 } },
  { 'SGD', { lr = 0.02, momentum = 0.8, dampening = 0.3, weight_decay = 0.05 } },
  { 'SGD', { lr = 0.01, momentum = 0.5, maximize = true } },
  { 'SGD', { lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 0.1, maximize = true } },
  { 'SGD', { lr = 0.02, momentum = 0.9 }, { { lr = 0.01 }, { momentum = 0.5, nesterov = true } } },
  { 'Adam', { lr = 0.1 } },
  { 'Adam', { lr = 0.1, amsgrad = true } },
  { 'Adam', { lr = 0.1, betas = { 0.8, 0.5 }, amsgrad = true } }, -- v drops on X0, GRADS
  { 'Adam', { lr = 0.05, weight_decay = 0.1 } },
  { 'Adam', { lr = 0.05, betas = { 0.85, 0.9 }, eps = 1e-4, weight_decay = 0.01, amsgrad = true } },
  { 'Adam', { lr = 0.05, maximize = true } },
  { 'Adam', { lr = 0.05 }, { { lr = 0.2, amsgrad = true }, { betas = { 0.5, 0.6 } } } },
  { 'NAdam', { lr = 0.1 } },
  { 'NAdam', { lr = 0.05, betas = { 0.85, 0.995 }, weight_decay = 0.1, momentum_decay = 0.01 } },
  { 'NAdam', { lr = 0.2, betas = { 0.5, 0.6 }, eps = 1e-3, momentum_decay = 0.3 } },
  { 'NAdam', { lr = 0.1, textbook = true } },
  { 'NAdam', { lr = 0.05, eps = 1e-3, momentum_decay = 0.02, textbook = true, weight_decay = 0.01 } },
}
-- { group lrs, milestones, gamma, epochs }
local SCHEDULES = {
  { { 0.1, 0.3 }, { 2, 5, 5, 9 }, 0.5, 12 },
  { { 1e-2 }, optim.paper_milestones(160), 0.1, 165 },
  { { 1e-4 }, optim.paper_milestones(200), 0.1, 200 },
  { { 1e-3, 2e-2 }, optim.paper_milestones(60), 0.1, 60 },
}

-- loss = sum((W U + c - T)^2), W 2x3, c 2, U 3x4, T 2x4 (c broadcast over columns)
local U = { { 1.0, 0.5, -1.5, 2.0 }, { -0.5, 1.0, 0.25, -1.0 }, { 0.75, -2.0, 1.0, 0.5 } }
local T = { { 1.0, -1.0, 0.5, 2.0 }, { 0.0, 1.5, -0.5, 1.0 } }
local W0 = { { 0.3, -0.2, 0.5 }, { -0.4, 0.1, 0.25 } }
local C0 = { 0.05, -0.1 }
local NSTEPS = 5

-- dW = 2 R U^T, dc = 2 R 1 with R = W U + c - T, in plain Lua.
local function lsq_grads(W, c)
  local dW, dc = { { 0, 0, 0 }, { 0, 0, 0 } }, { 0, 0 }
  for i = 1, 2 do
    for j = 1, 4 do
      local r = c[i] - T[i][j]
      for k = 1, 3 do r = r + W[i][k] * U[k][j] end
      for k = 1, 3 do dW[i][k] = dW[i][k] + r * U[k][j] end
      dc[i] = dc[i] + r
    end
    for k = 1, 3 do dW[i][k] = 2 * dW[i][k] end
    dc[i] = 2 * dc[i]
  end
  return dW, dc
end

-- rl's W and c (flattened) after each of NSTEPS steps of `case`.
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
    trace[s] = flat({ W, c })
  end
  return trace
end

-- The cases and schedules in PyTorch; prints {"opt": {case: [W and c after each step]},
-- "lr": {schedule: [lrs after each epoch, from 0]}} as JSON.
local PY_SCRIPT = [=[
import json, sys, torch
# f64 throughout; NAdam's mu_product is a tensor of the default dtype in 1.13,
# so it is f64 here too (rl keeps it as a double).
torch.set_default_dtype(torch.float64)
P = json.loads(sys.argv[1])
U, T, W0, C0 = (torch.tensor(P[k]) for k in ('U', 'T', 'W0', 'C0'))
out = {'opt': {}, 'lr': {}}
for case in P['cases']:
    W, c = W0.clone().requires_grad_(True), C0.clone().requires_grad_(True)
    params = [W, c]
    if case.get('groups'):
        params = [dict(case['groups'][0], params=[W]), dict(case['groups'][1], params=[c])]
    opt = getattr(torch.optim, case['name'])(params, **case['opts'])
    trace = out['opt'][case['i']] = []
    for s in range(P['nsteps']):
        opt.zero_grad()
        ((W @ U + c[:, None] - T) ** 2).sum().backward()
        opt.step()
        trace.append(W.detach().flatten().tolist() + c.detach().tolist())
for i, (lrs, milestones, gamma, epochs) in enumerate(P['schedules'], 1):
    ps = [torch.zeros(1, requires_grad=True) for _ in lrs]
    opt = torch.optim.SGD([{'params': [p], 'lr': lr} for p, lr in zip(ps, lrs)], lr=lrs[0])
    sch = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=gamma)
    trace = out['lr'][i] = [sch.get_last_lr()]
    for e in range(epochs):
        opt.step()
        sch.step()
        trace.append(sch.get_last_lr())
print(json.dumps(out))
]=]

local function torch_run()
  local cases = {}
  for ci, c in ipairs(CASES) do
    if not c[2].textbook then
      cases[#cases + 1] = { i = tostring(ci), name = c[1], opts = c[2], groups = c[3] }
    end
  end
  local data = rl.json.encode({ U = U, T = T, W0 = W0, C0 = C0, nsteps = NSTEPS, cases = cases,
    schedules = SCHEDULES })
  local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local pipe = assert(io.popen('/usr/bin/python3 -c ' .. quote(PY_SCRIPT) .. ' ' .. quote(data) ..
    ' 2>&1'))
  local out = pipe:read('a')
  assert(pipe:close(), 'the PyTorch script failed:\n' .. out)
  return rl.json.decode(out)
end

-- PyTorch's numbers for case i of `kind` ('opt' or 'lr'), or nil (the test
-- then pending) where torch is missing.
local torch_results
local function torch_wants(kind, i)
  if torch_results == nil then
    local r = os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")
    torch_results = (r == true or r == 0) and torch_run() or false
  end
  if not torch_results then return pending('torch not installed') end
  return assert(torch_results[kind][tostring(i)], 'no PyTorch output for ' .. kind .. ' ' .. i)
end

describe('runs against the plain-Lua references and PyTorch 1.13 (/usr/bin/python3, f64)',
  function()
    for ci, case in ipairs(CASES) do
      local name = case[1] .. rl.json.encode(case[2]) .. (case[3] and ' with 2 groups' or '')
      if not case[3] then
        it(name .. ' matches the plain-Lua reference over 3 steps', function()
          local want = ref_run(case[1], X0, GRADS, case[2])
          assert_close(run(optim[case[1]], X0, GRADS, case[2]), want, 1e-13)
        end)
      end
      if not case[2].textbook then
        it(name .. ': ' .. NSTEPS .. ' steps agree with PyTorch to 1e-10', function()
          local want = torch_wants('opt', ci)
          if not want then return end
          local got = rl_lsq_run(case)
          for s = 1, NSTEPS do assert_close(got[s], want[s], 1e-10, 1e-14, name .. ', step ' .. s) end
        end)
      end
    end

    for si, sc in ipairs(SCHEDULES) do
      it(string.format('MultiStepLR milestones {%s} gamma %g: %d epochs of lrs agree exactly',
        table.concat(sc[2], ','), sc[3], sc[4]), function()
        local want = torch_wants('lr', si)
        if not want then return end
        local s = optim.MultiStepLR(sgd_groups(sc[1]), { milestones = sc[2], gamma = sc[3] })
        for e = 0, sc[4] do
          if e > 0 then s:step() end
          assert_close(s:get_last_lr(), want[e + 1], 0, 0, 'epoch ' .. e)
        end
      end)
    end
  end)

describe('optimisers with autograd', function()
  it('Adam driven by backward() equals Adam driven by the hand-computed gradient', function()
    local Ut, Tt = f64(U), f64(T)
    local W, c = param(W0), param(C0)
    local opt = optim.Adam({ W, c }, { lr = 0.1, amsgrad = true })
    for _ = 1, NSTEPS do
      opt:zero_grad()
      local r = W:matmul(Ut) + c:view(2, 1) - Tt
      ;(r * r):sum():backward()
      opt:step()
    end
    local want = rl_lsq_run({ 'Adam', { lr = 0.1, amsgrad = true } })[NSTEPS]
    assert_close({ W, c }, want, 1e-10, 1e-14, 'after ' .. NSTEPS .. ' steps')
  end)
end)
