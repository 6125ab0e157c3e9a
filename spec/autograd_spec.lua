-- autograd_spec.lua - the graph: backward, rl.grad, no_grad, detach,
-- retain_graph, freed graphs, version counters, and the work rl.grad skips.
local rl = require 'rl'
local F = rl.F

local function msg_of(fn)
  local ok, msg = pcall(fn)
  assert.is_false(ok)
  return tostring(msg)
end

describe('backward', function()
  it('accumulates into leaves and only into leaves', function()
    local x = rl.tensor({ 1, 2, 3 }, 'f64'):requires_grad_()
    local y = (x * x):sum()
    y:backward()
    assert.are.same({ 2, 4, 6 }, x.grad:tolist())
    ;(x * 3):sum():backward()
    assert.are.same({ 5, 7, 9 }, x.grad:tolist()) -- accumulated
    local mid = x * 2
    mid:sum():backward()
    assert.is_nil(mid.grad)
    assert.is_true(x.is_leaf)
    assert.is_false(mid.is_leaf)
    assert.are.equal('affine', mid.grad_fn)
  end)

  it('takes an explicit gradient for a non-scalar output', function()
    local x = rl.tensor({ 1, 2 }, 'f64'):requires_grad_()
    local y = x * x
    y:backward(rl.tensor({ 10, 100 }, 'f64'))
    assert.are.same({ 20, 400 }, x.grad:tolist())
  end)

  it('refuses a non-scalar output without a gradient', function()
    local x = rl.randn(3):requires_grad_()
    local m = msg_of(function() (x * 2):backward() end)
    assert.truthy(m:find('one element', 1, true))
    assert.truthy(m:find('size 3', 1, true))
  end)

  it('refuses to run twice through a freed graph; retain_graph keeps it', function()
    local x = rl.randn(3):requires_grad_()
    local y = x:exp():sum()
    y:backward()
    local m = msg_of(function() y:backward() end)
    assert.truthy(m:find('second time', 1, true))
    assert.truthy(m:find('retain_graph', 1, true))
    x.grad = nil
    local z = x:exp():sum()
    z:backward(nil, true)
    local g1 = x.grad:clone()
    z:backward()
    assert.are.same((g1 * 2):tolist(), x.grad:tolist()) -- g1 + g1 is exact
    local ok = pcall(function() z:backward() end)
    assert.is_false(ok)
  end)

  it('reports an in-place change of a tensor backward still needs', function()
    local x = rl.randn(4):requires_grad_()
    local s = x:sigmoid() -- sigmoid saves its output
    local loss = (s * 2):sum()
    rl.no_grad(function() s:add_(1) end)
    local m = msg_of(function() loss:backward() end)
    assert.truthy(m:find('modified by an in-place operation', 1, true))
    assert.truthy(m:find('sigmoid', 1, true))
  end)

  it('refuses in-place ops on tensors that require grad (outside no_grad)', function()
    local x = rl.randn(4):requires_grad_()
    local m = msg_of(function() x:add_(1) end)
    assert.truthy(m:find('requires grad', 1, true))
    rl.no_grad(function() x:add_(1) end) -- allowed there, as an optimiser step
  end)
end)

describe('rl.grad', function()
  it('returns the gradients of the named inputs only', function()
    local a = rl.tensor({ 1, 2 }, 'f64'):requires_grad_()
    local b = rl.tensor({ 3, 4 }, 'f64'):requires_grad_()
    local y = (a * b):sum()
    local ga = rl.grad(y, a)
    assert.are.same({ 3, 4 }, ga:tolist())
    assert.is_nil(a.grad) -- rl.grad does not accumulate into .grad
    assert.is_nil(b.grad)
    local y2 = (a * b):sum()
    local gs = rl.grad(y2, { a, b })
    assert.are.same({ { 3, 4 }, { 1, 2 } }, { gs[1]:tolist(), gs[2]:tolist() })
  end)

  it('takes grad_outputs and reports unreachable inputs', function()
    local a = rl.tensor({ 1, 2 }, 'f64'):requires_grad_()
    local c = rl.tensor({ 5 }, 'f64'):requires_grad_()
    local y = a * 3
    local g = rl.grad(y, a, rl.tensor({ 1, -1 }, 'f64'), { retain_graph = true })
    assert.are.same({ 3, -3 }, g:tolist())
    local m = msg_of(function() rl.grad(y:sum(), c) end)
    assert.truthy(m:find('not reachable', 1, true))
    local gs = rl.grad(y:sum(), { a, c }, nil, { allow_unused = true })
    assert.are.same({ 3, 3 }, gs[1]:tolist())
    assert.is_nil(gs[2])
  end)

  it('a PGD step asks for the input gradient and runs no weight-gradient GEMM', function()
    rl.manual_seed(0)
    local model = rl.models.CNN001()
    model:eval()
    local x = rl.rand(4, 1, 28, 28):requires_grad_()
    local y = rl.randint(0, 10, 4)
    local function count(fn)
      local c0 = rl.counters().gemm_calls
      fn()
      return rl.counters().gemm_calls - c0
    end
    local fwd = count(function() F.cross_entropy(model(x), y, 'sum') end)
    local input_only = count(function()
      rl.grad(F.cross_entropy(model(x), y, 'sum'), x)
    end) - fwd
    local full = count(function()
      F.cross_entropy(model(x), y, 'sum'):backward()
    end) - fwd
    -- 4 layers (2 conv, 2 linear): input gradient = one GEMM each except the
    -- first conv (its input is x: needed) -> 4; full backward adds a weight
    -- GEMM per layer -> 8.
    assert.are.equal(4, input_only)
    assert.are.equal(8, full)
    -- and the weight gradients were not touched by rl.grad
    model:zero_grad()
    rl.grad(F.cross_entropy(model(x), y, 'sum'), x)
    for _, p in ipairs(model:parameters()) do assert.is_nil(p.grad) end
  end)
end)

describe('mixed dtypes', function()
  it('cat of f32 and f64 tensors carries gradients to both', function()
    local a = rl.tensor({ 1, 2 }, 'f64'):requires_grad_()
    local b = rl.tensor({ 3 }, 'f32'):requires_grad_()
    local c = rl.cat({ a, b })
    assert.are.equal('f64', c.dtype)
    ;(c * rl.tensor({ 1, 2, 3 }, 'f64')):sum():backward()
    assert.are.same({ 1, 2 }, a.grad:tolist())
    assert.are.same({ 3 }, b.grad:tolist())
    assert.are.equal('f32', b.grad.dtype)
  end)
end)

describe('no_grad and detach', function()
  it('no_grad records nothing and restores the mode', function()
    local x = rl.randn(3):requires_grad_()
    local y = rl.no_grad(function() return x * 2 end)
    assert.is_false(y.requires_grad)
    assert.is_true(rl.is_grad_enabled())
    local ok = pcall(rl.no_grad, function() error('inside') end)
    assert.is_false(ok)
    assert.is_true(rl.is_grad_enabled()) -- restored after an error too
  end)

  it('detach shares storage but cuts the graph', function()
    local x = rl.randn(3):requires_grad_()
    local d = (x * 2):detach()
    assert.is_false(d.requires_grad)
    assert.is_true(d.is_leaf)
    local e = x:detach()
    assert.is_true(e:is_view_of(x))
  end)

  it('frees saved tensors once the graph is consumed', function()
    -- a 64 MB activation: its graph must not keep it alive after backward
    local x = rl.randn(4 * 1024 * 1024):requires_grad_()
    for _ = 1, 5 do
      local loss = (x:sigmoid() * x):sum()
      loss:backward()
    end
    collectgarbage()
    assert.is_not_nil(x.grad)
  end)
end)
