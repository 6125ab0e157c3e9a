-- cuda_spec.lua - every op of the CUDA backend against the CPU backend.
--
-- Each case builds random inputs on the CPU, copies them to the GPU, runs
-- the op on both and compares; float inputs also get gradients of
-- sum(out * w) for a random w, compared likewise.  Errors are measured
-- relative to the largest magnitude of the CPU result.  The default bound
-- is 1e-5 (f32); cases where the two backends sum in a different order
-- (cuBLAS vs OpenBLAS GEMMs, tree vs sequential sums) state a looser one.
-- Philox fills must agree bit for bit, as must every kernel that gathers
-- in the CPU's order (col2im, pooling backward, index_add, scatter_add).
-- The half types (bf16, f16; issue #15) are compared in units in the last
-- place of their format where the two devices sum or approximate
-- differently, and bit for bit where both round the same f32 value once
-- (the section "bf16 and f16" says which is which).
--
-- Without a usable GPU the cases run with 'cpu' in place of 'cuda' (the
-- self-test, which RL_CUDA_SPEC_SELFTEST=1 forces): CPU against CPU, so
-- that every make test keeps the spec itself working for the rare session
-- that has a GPU; a pending line says the GPU was not tested.  With
-- RL_REQUIRE_CUDA=1 (make test-cuda) a missing GPU fails instead.
local rl = require 'rl'

-- creation options without the generator: rl.empty draws nothing and
-- refuses one (the fill that follows takes it)
local function drawless(o) return { dtype = o.dtype, device = o.device } end
local F = rl.F

local selftest = os.getenv('RL_CUDA_SPEC_SELFTEST') == '1'
local have, why = pcall(rl.device, 'cuda')

if not have and not selftest then
  if os.getenv('RL_REQUIRE_CUDA') == '1' then
    describe('CUDA backend', function()
      it('needs a usable CUDA device (RL_REQUIRE_CUDA=1)', function()
        error('make test-cuda needs a CUDA device: ' .. tostring(why), 0)
      end)
    end)
    return
  end
  describe('CUDA backend', function()
    pending('skipped: no CUDA device (' .. tostring(why) .. '); the cases below ran CPU against CPU')
  end)
  selftest = true
end
local DEV = selftest and 'cpu' or 'cuda'
if selftest then -- no case passes under a name that says it ran on a GPU
  local describe_ = describe
  describe = function(name, fn) return describe_('[self-test, CPU for CUDA] ' .. name, fn) end
end

-- ---- comparison ----------------------------------------------------------------

-- max |a - b| over max |a| (NaNs and infinities must coincide exactly)
local function relerr(a, b)
  a, b = a:detach():cpu(), b:detach():cpu()
  assert.are.same(a.shape, b.shape)
  assert.are.equal(a.dtype, b.dtype)
  if a:numel() == 0 then return 0 end
  local x, y = a:double(), b:double()
  local xn, yn = x:isnan(), y:isnan()
  if xn:ne(yn):any():item() ~= 0 then return math.huge end
  x, y = x:masked_fill(xn, 0), y:masked_fill(yn, 0)
  local d = (x - y):abs():masked_fill(x:eq(y), 0)
  local dm = d:max():item()
  if dm ~= dm then return math.huge end -- an infinity on one side only
  local ax = x:abs()
  local scale = ax:masked_fill(ax:eq(math.huge), 0):max():item()
  if dm == 0 then return 0 end
  return dm / math.max(scale, 1e-300)
end

local function close(a, b, tol, what)
  local e = relerr(a, b)
  assert(e <= tol, string.format('%s: relative error %.3g exceeds %.3g', what or 'result', e, tol))
end

local function same_bits(a, b, what)
  local e = relerr(a, b)
  assert(e == 0, string.format('%s: differs from the CPU (relative error %.3g), bits expected equal',
    what or 'result', e))
end

-- The half formats: p significant bits, the smallest and largest normal
-- exponents; f32's for comparisons in f32 ulps.
local FORMATS = {
  bf16 = { p = 8, emin = -126, emax = 127 },
  f16 = { p = 11, emin = -14, emax = 15 },
  f32 = { p = 24, emin = -126, emax = 127 },
}

-- got within n units in the last place of want (want: the same dtype, or
-- the wider value got should be the rounding of): |got - want| <= n *
-- 2^(1-p) * max(|got|, |want|) (one ulp of the larger at the bottom of its
-- binade, just under two at the top) + atol * max |want| (sums that
-- cancel: f32 rounding in another order, measured against the largest
-- result) + n subnormal steps.  NaNs and infinities must coincide.
-- Returns the fraction of elements that differ at all.
local function within_ulps(got, want, n, atol, what)
  local fmt = FORMATS[got.dtype] or error('within_ulps: no format for ' .. got.dtype)
  local g, w = got:detach():cpu():double(), want:detach():cpu():double()
  assert.are.same(w.shape, g.shape)
  if g:numel() == 0 then return 0 end
  local gn, wn = g:isnan(), w:isnan()
  assert(gn:ne(wn):any():item() == 0, what .. ': NaN in different places')
  g, w = g:masked_fill(gn, 0), w:masked_fill(wn, 0)
  local wa = w:abs()
  local scale = wa:masked_fill(wa:eq(math.huge), 0):max():item()
  local eq = g:eq(w) -- equal infinities included
  local inf = g:abs():eq(math.huge):logical_or(wa:eq(math.huge))
  assert(inf:logical_and(eq:logical_not()):any():item() == 0, what .. ': an infinity on one side only')
  g, w = g:masked_fill(eq, 0), w:masked_fill(eq, 0)
  local d = (g - w):abs()
  local bound = g:abs():maximum(w:abs()) * (n * 2 ^ (1 - fmt.p)) + (atol * scale + n * 2 ^ (fmt.emin - fmt.p + 1))
  local excess = d - bound
  if excess:max():item() > 0 then
    local i = excess:view(-1):argmax():item() + 1
    local gv, wv = g:view(-1):tolist()[i], w:view(-1):tolist()[i]
    error(string.format('%s: %s against %s (element %d) is more than %g %s ulp(s) + %g x %.3g apart',
      what, string.format('%a', gv), string.format('%a', wv), i, n, got.dtype, atol, scale), 2)
  end
  return d:gt(0):sum():item() / d:numel()
end

local function is_half(t) return t.dtype == 'bf16' or t.dtype == 'f16' end
local function is_float(t) return t.dtype == 'f32' or t.dtype == 'f64' or is_half(t) end

-- inputs (a list from mk()) on the CPU and copies on DEV; float ones are leaves
-- that require grad
local function both(list)
  local c, d = {}, {}
  for i, x in ipairs(list) do
    if rl.is_tensor(x) then
      if is_float(x) then
        c[i] = x:detach():requires_grad_()
        d[i] = x:to(DEV):detach():requires_grad_()
      else
        c[i], d[i] = x, x:to(DEV)
      end
    else
      c[i], d[i] = x, x
    end
  end
  return c, d
end

local seed = 100
local function gen() seed = seed + 1; return rl.Generator(seed) end
local function randn(...) local s = { ... }; return rl.randn(s, { generator = gen() }) end
local function randn64(...) local s = { ... }; return rl.randn(s, { dtype = 'f64', generator = gen() }) end
local function rand(...) local s = { ... }; return rl.rand(s, { generator = gen() }) end
local function randint(lo, hi, ...) local s = { ... }; return rl.randint(lo, hi, s, { generator = gen() }) end

-- one output or gradient of check(): bit for bit, within ulps of a half
-- type (integer outputs then bit for bit), or within a relative tolerance
local function compare(a, b, bits, ulps, atol, tol, what)
  if bits or ulps and not is_float(a) then same_bits(a, b, what)
  elseif ulps and FORMATS[a.dtype] then within_ulps(b, a, ulps, atol or 0, what)
  else close(a, b, tol, what) end
end

-- check(name, mk, fn, {tol =, gtol =, bits =, gbits =, ulps =, atol =,
-- gulps =, gatol =, nograd =}): fn(inputs...) -> one tensor or several;
-- compared forward, then backward (of the first output) for the float
-- inputs.  ulps = n: half-type outputs within n ulps (within_ulps, with
-- atol); gulps and gatol likewise for the gradients.
local function check(name, mk, fn, o)
  o = o or {}
  it(name, function()
    local c, d = both(mk())
    local n = #c
    local co = table.pack(fn(table.unpack(c, 1, n)))
    local dout = table.pack(fn(table.unpack(d, 1, n)))
    assert.are.equal(co.n, dout.n)
    for k = 1, co.n do
      assert.are.equal(DEV == 'cpu' and 'cpu' or 'cuda:0', dout[k].device)
      compare(co[k], dout[k], o.bits, o.ulps, o.atol, o.tol or 1e-5, name .. ' output ' .. k)
    end
    local out = co[1]
    if o.nograd or not is_float(out) or not out.requires_grad then return end
    local w = rl.randn(out.shape, { dtype = out.dtype, generator = gen() })
    local ci, di, which = {}, {}, {}
    for i = 1, n do
      if rl.is_tensor(c[i]) and c[i].requires_grad then
        ci[#ci + 1], di[#di + 1], which[#which + 1] = c[i], d[i], i
      end
    end
    local gc = rl.grad((out * w):sum(), ci, nil, { allow_unused = true })
    local gd = rl.grad((dout[1] * w:to(DEV)):sum(), di, nil, { allow_unused = true })
    for k, i in ipairs(which) do
      if gc[k] then
        assert(gd[k], name .. ': no gradient on the device for input ' .. i)
        compare(gc[k], gd[k], o.gbits, o.gulps, o.gatol, o.gtol or o.tol or 1e-5, name .. ' grad ' .. i)
      end
    end
  end)
end

-- ---- the cases -------------------------------------------------------------------

describe('CUDA vs CPU: creation, copies and conversion', function()
  it('moves values both ways, with every dtype', function()
    for _, dt in ipairs { 'f32', 'f64', 'i64', 'u8' } do
      local x = (randn(3, 5) * 50):to(dt)
      local y = x:to(DEV)
      same_bits(x, y, dt)
      same_bits(x, y:cpu(), dt .. ' round trip')
    end
  end)
  it('float -> integer conversions agree at NaN, infinities and past i64 (saturating)', function()
    local v = rl.tensor({ 0 / 0, math.huge, -math.huge, 1e30, -1e30, 2 ^ 63, -2 ^ 63, -0.9, 255.9, 300, -1 }, 'f64')
    for _, from in ipairs { 'f64', 'f32', 'bf16', 'f16' } do
      local x = v:to(from)
      for _, to in ipairs { 'i64', 'u8' } do
        assert.are.same(x:to(to):tolist(), x:to(DEV):to(to):cpu():tolist(), from .. ' -> ' .. to)
      end
    end
  end)
  it('fill, zeros, ones, full, arange, linspace, eye', function()
    local o = { device = DEV }
    same_bits(rl.zeros(4, 3), rl.zeros(4, 3, o))
    same_bits(rl.ones(4, 3, 'i64'), rl.ones(4, 3, { device = DEV, dtype = 'i64' }))
    same_bits(rl.full({ 2, 3 }, 7.5), rl.full({ 2, 3 }, 7.5, o))
    same_bits(rl.arange(0, 10, 0.5), rl.arange(0, 10, 0.5, o))
    same_bits(rl.linspace(-1, 1, 11), rl.linspace(-1, 1, 11, o))
    same_bits(rl.eye(4, 5), rl.eye(4, 5, o))
    -- made like a CUDA tensor: on its device unless the options name one
    local c = rl.ones(2, 3, o)
    assert.are.equal(c.device, rl.full_like(c, 2, { dtype = 'f64' }).device)
    assert.are.equal(c.device, rl.zeros_like(c, { dtype = 'f64' }).device)
    assert.are.equal(c.device, rl.tensor(c, { dtype = 'f64' }).device)
    assert.are.equal('cpu', rl.tensor(c, { device = 'cpu' }).device)
    local a, b = rl.zeros(5, 6), rl.zeros(5, 6, o)
    a:narrow(2, 2, 3):fill_(3); b:narrow(2, 2, 3):fill_(3)
    same_bits(a, b, 'fill_ of a strided view')
  end)
  check('strided copy with conversion f32 -> i64', function() return { randn(6, 7) * 10 } end,
    function(x) return x:t():long() end, { bits = true })
  check('broadcast copy_ into a view', function() return { randn(4, 1), rl.zeros(4, 6) } end,
    function(x, z) local v = z:detach():clone(); v:narrow(2, 2, 4):copy_(x:detach()); return v end,
    { bits = true })
  it('converts between all dtypes like the CPU', function()
    local src = (randn(50) * 300):to('f64')
    for _, a in ipairs { 'f32', 'f64', 'i64', 'u8' } do
      for _, b in ipairs { 'f32', 'f64', 'i64', 'u8' } do
        local x = src:abs():to(a)
        same_bits(x:to(b), x:to(DEV):to(b), a .. ' -> ' .. b)
      end
    end
  end)
  it('contiguous, clone and cat/stack of views', function()
    local x = randn(3, 4, 5)
    local y = x:to(DEV)
    same_bits(x:permute(3, 1, 2):contiguous(), y:permute(3, 1, 2):contiguous())
    same_bits(rl.cat({ x, x:narrow(2, 1, 2) }, 2), rl.cat({ y, y:narrow(2, 1, 2) }, 2))
    same_bits(rl.stack({ x, x * 2 }, 3), rl.stack({ y, y * 2 }, 3))
  end)
  it('prints a device tensor with its values and device', function()
    local s = tostring(rl.tensor { 1.5, -2 }:to(DEV))
    assert.truthy(s:find('1.5', 1, true) and s:find('-2', 1, true))
    if DEV == 'cuda' then assert.truthy(s:find('cuda:0', 1, true)) end
  end)
end)

describe('CUDA vs CPU: elementwise', function()
  local unary = { 'neg', 'abs', 'sign', 'exp', 'sqrt', 'rsqrt', 'relu', 'sigmoid', 'tanh', 'square',
    'reciprocal', 'floor', 'ceil', 'round', 'log1p', 'expm1', 'sin', 'cos', 'log' }
  for _, op in ipairs(unary) do
    local positive = op == 'sqrt' or op == 'rsqrt' or op == 'log' or op == 'log1p'
    check('unary ' .. op .. ' (f32, strided)', function()
      local x = randn(17, 33) * 3
      if positive then x = x:abs() + 0.1 end
      return { x }
    end, function(x) return x:t()[op](x:t()) end)
  end
  check('unary in f64', function() return { randn64(40) } end,
    function(x) return x:exp() + x:sin() * x:tanh() - x:sigmoid() end)
  check('scalar forms: affine, rdiv, pow, rpow, fmod, remainder, clamp', function()
    return { randn(300) * 4 }
  end, function(x)
    return x * 3 + 2, 1 / (x:abs() + 1), x:abs() ^ 1.7, 2 ^ x, x:fmod(1.5), x % 1.5,
        x:clamp(-1, 1), x:clamp(-0.5), x:clamp(nil, 0.5)
  end)
  check('comparisons with scalars and isnan', function() return { randn(100) } end,
    function(x)
      return x:gt(0), x:le(0.5), x:eq(0), x:ne(0), x:lt(-0.1), x:ge(0.1), (x:log()):isnan()
    end, { bits = true })
  check('binary with broadcasting', function() return { randn(8, 1, 5), randn(6, 1) } end,
    function(a, b) return a + b, a - b, a * b, a / (b:abs() + 0.5), a:maximum(b), a:minimum(b) end)
  check('binary pow, fmod, remainder', function() return { rand(50) + 0.5, randn(50) } end,
    function(a, b) return a:pow(b), b:fmod(a), b:remainder(a) end, { nograd = true })
  check('binary on a transposed and an expanded operand', function() return { randn(9, 7), randn(7) } end,
    function(a, b) return a:t() * b:view(7, 1):expand(7, 9) + a:t() end)
  check('comparisons and logical ops', function() return { randn(40), randn(40) } end,
    function(a, b)
      return a:lt(b), a:ge(b), a:eq(a), a:gt(0):logical_and(b:gt(0)), a:gt(0):logical_or(b:gt(0)),
          a:gt(0):logical_not()
    end, { bits = true })
  it('i64 and u8 arithmetic like the CPU', function()
    local a, b = randint(-50, 50, 200), randint(1, 20, 200)
    local ad, bd = a:to(DEV), b:to(DEV)
    same_bits(a + b * 3, ad + bd * 3)
    same_bits(a:fmod(b), ad:fmod(bd), 'fmod')
    same_bits(a:remainder(-b), ad:remainder(-bd), 'remainder')
    same_bits(a:maximum(b), ad:maximum(bd))
    same_bits(a:abs():neg():sign(), ad:abs():neg():sign())
    same_bits(a:clamp(-3, 7), ad:clamp(-3, 7))
    local u, v = randint(0, 256, 100):byte(), randint(0, 256, 100):byte()
    local ud, vd = u:to(DEV), v:to(DEV)
    same_bits(u + v, ud + vd, 'u8 wraps')
    same_bits(u - v, ud - vd, 'u8 - u8 is i64')
    same_bits(u:maximum(v), ud:maximum(vd))
    same_bits(u:lt(v), ud:lt(vd))
    same_bits(u + 1.5, ud + 1.5, 'promotion to f32')
    local f = rand(200)
    same_bits(a + f, ad + f:to(DEV), 'i64 + f32')
  end)
  check('where, masked_fill, lerp, addcmul, addcdiv, clamp by tensors', function()
    return { randn(30), randn(30), rand(30) + 0.5 }
  end, function(a, b, c)
    return a:where(b:gt(0), c), a:masked_fill(b:lt(0), 2), a:lerp(b, 0.3), a:addcmul(b, c, 0.5),
        a:addcdiv(b, c, -2), a:clamp(b:minimum(c), b:maximum(c))
  end)
  check('in-place ops on a view', function() return { randn(5, 6), randn(6) } end,
    function(a, b)
      local x = a:detach():clone()
      x:narrow(1, 2, 3):add_(b:detach(), 2):mul_(0.5):clamp_(-1, 1):exp_()
      return x
    end)
end)

describe('CUDA vs CPU: reductions', function()
  check('sum, mean, prod over dims', function() return { randn(6, 7, 8) } end,
    function(x) return x:sum(), x:sum(2), x:mean({ 1, 3 }, true), (x * 0.5 + 1):prod(3), x:sum(1) end)
  check('max/min with indices, ties keep the first', function()
    return { (randn(5, 40) * 2):round() }
  end, function(x)
    local v, i = x:max(2)
    local u, j = x:min(1, true)
    return v, i, u, j, x:argmax(), x:argmin(2), x:max(), x:min()
  end, { bits = true })
  check('max/min along a strided dim and with NaN', function()
    local x = randn(30, 9)
    x[3][4] = 0 / 0
    return { x }
  end, function(x)
    local v, i = x:t():max(2)
    local u, j = x:min(1)
    return v, i, u, j
  end, { bits = true, nograd = true })
  check('norms, var, std, logsumexp', function() return { randn(12, 50) } end,
    function(x)
      return x:norm(1, 2), x:norm(2), x:norm(math.huge, 1), x:var(2), x:std(1, { correction = 0 }),
          x:logsumexp(2)
    end)
  check('a long sum (split into chunks)', function() return { randn(3000000) } end,
    function(x) return x:sum(), x:abs():max(), x:norm() end)
  check('few outputs, long strided reductions', function() return { randn(20000, 3) } end,
    function(x) return x:sum(1), x:mean(1), x:max(1) end, { nograd = true })
  check('many short reductions', function() return { randn(100000, 3) } end,
    function(x) return x:sum(2), x:sum(1, true) end)
  it('integer and u8 reductions', function()
    local a = randint(-1000, 1000, 70, 90)
    local ad = a:to(DEV)
    same_bits(a:sum(), ad:sum())
    same_bits(a:sum(2), ad:sum(2))
    same_bits(a:max(1), ad:max(1))
    same_bits(a:argmin(), ad:argmin())
    local m = a:gt(0)
    same_bits(m:any(2), m:to(DEV):any(2))
    same_bits(m:all(1), m:to(DEV):all(1))
    same_bits(m:sum(), m:to(DEV):sum())
  end)
end)

describe('CUDA vs CPU: matrix products (cuBLAS; summation order differs: 1e-5)', function()
  check('mm, and with transposed operands', function() return { randn(33, 65), randn(65, 17) } end,
    function(a, b) return a:matmul(b), b:t():matmul(a:t()), a:t():t():mm(b) end)
  check('batched and broadcast matmul', function() return { randn(4, 6, 9), randn(9, 5), randn(4, 9, 3) } end,
    function(a, b, c) return a:matmul(b), a:matmul(c), a:bmm(c) end)
  check('matrix-vector, vector-matrix, dot', function() return { randn(7, 11), randn(11), randn(7) } end,
    function(a, v, u) return a:matmul(v), u:matmul(a), v:dot(v) end)
  check('a long inner dim (split into chunks on the GPU; 1e-5)', function()
    return { randn(20, 30000), randn(30000, 24) }
  end, function(a, b) return a:matmul(b), a:matmul(b):t():contiguous() end, { gtol = 5e-5 })
  check('f64 matmul', function() return { randn64(20, 30), randn64(30, 10) } end,
    function(a, b) return a:matmul(b) end, { tol = 1e-12 })
  it('i64 matmul', function()
    local a, b = randint(-9, 9, 5, 7), randint(-9, 9, 7, 4)
    same_bits(a:matmul(b), a:to(DEV):matmul(b:to(DEV)))
  end)
  check('linear', function() return { randn(16, 30), randn(20, 30), randn(20) } end,
    function(x, w, b) return F.linear(x, w, b) end)
end)

describe('CUDA vs CPU: convolution and pooling', function()
  -- dW sums over N*OH*OW products in a GEMM: 5e-5
  local convs = {
    { 'conv2d 3x3', { 4, 3, 12, 12 }, { 8, 3, 3, 3 }, {} },
    { 'conv2d stride 2, padding 1', { 3, 2, 11, 9 }, { 5, 2, 3, 3 }, { stride = 2, padding = 1 } },
    { 'conv2d dilation 2, 3x2 kernel', { 2, 3, 10, 10 }, { 4, 3, 3, 2 }, { dilation = 2, padding = { 2, 1 } } },
    { 'conv2d 1x1 stride 2', { 3, 8, 8, 8 }, { 6, 8, 1, 1 }, { stride = 2 } },
    -- the CPU's tap-by-tap path (stride 1, >= 8 channels, large planes) in
    -- chunks of images over threads, against the GPU's im2col
    { 'conv2d 3x3 padding 1, CPU tap path', { 6, 16, 20, 20 }, { 24, 16, 3, 3 }, { padding = 1 } },
    { 'conv2d 3x3, CPU tap path in chunks', { 9, 32, 26, 26 }, { 32, 32, 3, 3 }, {} },
    { 'conv2d 1x1, CPU tap path', { 5, 16, 9, 9 }, { 12, 16, 1, 1 }, {} },
    -- 32+ channels in and out: Winograd on the GPU (forward and dx), and on
    -- the CPU too where there are 10+ output columns
    { 'conv2d 3x3 padding 1, odd plane, GPU Winograd', { 3, 32, 13, 11 }, { 40, 32, 3, 3 }, { padding = 1 } },
    { 'conv2d 3x3 padding 2, GPU Winograd', { 2, 32, 9, 9 }, { 32, 32, 3, 3 }, { padding = 2 } },
    { 'conv2d 64 -> 64 at 16x16 (a WRN layer), GPU Winograd', { 8, 64, 16, 16 }, { 64, 64, 3, 3 }, { padding = 1 } },
  }
  for _, c in ipairs(convs) do
    check(c[1], function()
      return { randn(table.unpack(c[2])), randn(table.unpack(c[3])) * 0.3, randn(c[3][1]) }
    end, function(x, w, b) return F.conv2d(x, w, b, c[4]) end, { gtol = 5e-5 })
  end
  -- The engine's Winograd path forced on both devices in f64: the same
  -- transforms (engine/winograd.h), in the CPU's plain loops and the GPU's
  -- kernels, forward and both gradients; in one chunk of images and in one
  -- chunk per image.
  for _, cap in ipairs { 0, 1 } do
    describe('with the Winograd path forced' .. (cap > 0 and ', a chunk per image' or ''), function()
      before_each(function() rl._conv_path('winograd', cap) end)
      after_each(function() rl._conv_path('auto') end)
      for _, c in ipairs { { { 3, 5, 9, 7 }, { 6, 5, 3, 3 }, 1 }, { { 2, 4, 6, 8 }, { 3, 4, 3, 3 }, 2 },
                           { { 2, 3, 7, 7 }, { 5, 3, 3, 3 }, 0 },
                           -- dW's k in two chunks, the second shorter
                           { { 65, 2, 16, 16 }, { 3, 2, 3, 3 }, 1 } } do
        check(string.format('conv2d 3x3 padding %d, f64', c[3]), function()
          return { randn64(table.unpack(c[1])), randn64(table.unpack(c[2])), randn64(c[2][1]) }
        end, function(x, w, b) return F.conv2d(x, w, b, { padding = c[3] }) end, { tol = 1e-12 })
      end
    end)
  end
  check('conv2d without bias, f64', function() return { randn64(2, 3, 7, 7), randn64(4, 3, 3, 3) } end,
    function(x, w) return F.conv2d(x, w, nil, { padding = 1 }) end, { tol = 1e-12 })
  check('max_pool2d 2x2 with ties, bit-equal gradient', function()
    return { (randn(3, 4, 10, 10) * 2):round() }
  end, function(x) return F.max_pool2d(x, 2) end, { bits = true, gbits = true })
  check('max_pool2d 3x3 stride 2 padding 1 (overlapping)', function()
    return { randn(2, 3, 11, 11) }
  end, function(x) return F.max_pool2d(x, 3, { stride = 2, padding = 1 }) end,
    { bits = true, gbits = true })
  check('avg_pool2d, with and without padding counted', function() return { randn(2, 3, 9, 9) } end,
    function(x)
      return F.avg_pool2d(x, 3, { stride = 2, padding = 1 }) +
          F.avg_pool2d(x, 3, { stride = 2, padding = 1, count_include_pad = false })
    end)
  check('adaptive_avg_pool2d', function() return { randn(4, 6, 7, 5) } end,
    function(x) return F.adaptive_avg_pool2d(x, 1) end)
end)

describe('CUDA vs CPU: normalisation, softmax and losses', function()
  it('batch_norm in training: output, gradients and running statistics', function()
    local x, w, b = randn(8, 5, 6, 6) * 2 + 1, randn(5), randn(5)
    local c, d = both { x, w, b }
    local rmc, rvc = rl.zeros(5), rl.ones(5)
    local rmd, rvd = rmc:to(DEV), rvc:to(DEV)
    local yc = F.batch_norm(c[1], rmc, rvc, c[2], c[3], true, 0.1, 1e-5)
    local yd = F.batch_norm(d[1], rmd, rvd, d[2], d[3], true, 0.1, 1e-5)
    close(yc, yd, 1e-5, 'output')
    close(rmc, rmd, 1e-5, 'running_mean')
    close(rvc, rvd, 1e-5, 'running_var')
    local wt = randn(8, 5, 6, 6)
    local gc = rl.grad((yc * wt):sum(), c)
    local gd = rl.grad((yd * wt:to(DEV)):sum(), d)
    for i = 1, 3 do close(gc[i], gd[i], 1e-5, 'grad ' .. i) end
    local ec = F.batch_norm(c[1], rmc, rvc, c[2], c[3], false)
    local ed = F.batch_norm(d[1], rmd, rvd, d[2], d[3], false)
    close(ec, ed, 1e-5, 'eval output')
  end)
  check('batch_norm over [N, C] (1-d)', function() return { randn(16, 7) } end,
    function(x) return F.batch_norm(x, nil, nil, nil, nil, true) end)
  check('batch_norm in eval mode: output and gradients (x, weight, bias)', function()
    return { randn(6, 4, 5, 5) * 2 + 1, randn(4), randn(4) }
  end, function(x, w, b)
    local rm = rl.tensor({ 0.5, -1, 0.25, 2 }):to(x.device)
    local rv = rl.tensor({ 1.5, 0.5, 3, 0.75 }):to(x.device)
    return F.batch_norm(x, rm, rv, w, b, false)
  end)
  it('batch_norm in eval mode on an empty batch: zero weight and bias gradients on both devices', function()
    for _, dev in ipairs { 'cpu', DEV } do
      local x = rl.randn(0, 3, 4, 4):to(dev):requires_grad_()
      local w, b = rl.ones(3):to(dev):requires_grad_(), rl.zeros(3):to(dev):requires_grad_()
      local y = F.batch_norm(x, rl.zeros(3):to(dev), rl.ones(3):to(dev), w, b, false)
      assert.are.same({ 0, 3, 4, 4 }, y.shape)
      y:sum():backward()
      assert.are.same({ 0, 0, 0 }, w.grad:cpu():tolist(), dev)
      assert.are.same({ 0, 0, 0 }, b.grad:cpu():tolist(), dev)
    end
  end)
  -- more elements than the threads of the grid that applies the map
  -- (an H100's 132 SMs x 2048), so each thread steps along its channel
  check('batch_norm over more elements than a grid holds threads', function()
    return { randn(20, 3, 77, 71), randn(3), randn(3) }
  end, function(x, w, b) return F.batch_norm(x, nil, nil, w, b, true) end)
  check('softmax and log_softmax along each dim', function() return { randn(6, 10) * 3 } end,
    function(x) return F.softmax(x, 2), F.log_softmax(x, 2), F.softmax(x, 1), F.log_softmax(x, 1) end)
  check('log_softmax over long rows', function() return { randn(3, 5000) } end,
    function(x) return F.log_softmax(x, 2) end)
  check('cross_entropy, nll_loss (mean, sum, none)', function()
    return { randn(32, 10) * 2, randint(0, 10, 32) }
  end, function(x, y)
    return F.cross_entropy(x, y), F.cross_entropy(x, y, 'sum'), F.cross_entropy(x, y, 'none'),
        F.nll_loss(F.log_softmax(x, 2), y, 'sum')
  end)
  check('kl_div (batchmean, log_target) and mse_loss', function()
    return { randn(16, 10), randn(16, 10), randn(16, 10) }
  end, function(a, b, c)
    local p = F.softmax(b, 2)
    return F.kl_div(F.log_softmax(a, 2), p, 'batchmean') + F.kl_div(F.log_softmax(a, 2),
      F.log_softmax(c, 2), 'sum', true) + F.mse_loss(a, c)
  end)
  it('rejects an out-of-range target on the device', function()
    local x, y = randn(4, 3):to(DEV), rl.tensor({ 0, 1, 3, 2 }):to(DEV)
    local ok, err = pcall(F.cross_entropy, x, y)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('out of range', 1, true), err)
  end)
end)

describe('CUDA vs CPU: indexing', function()
  check('index_select with repeats, its gradient index_add (bit-equal)', function()
    return { randn(6, 8, 3), rl.tensor { 5, 0, 2, 2, 7, 0, 2 } }
  end, function(x, i) return x:index_select(2, i) end, { bits = true, gbits = true })
  check('index_select along dim 1 of a long tensor', function()
    return { randn(2000, 4), randint(0, 2000, 5000) }
  end, function(x, i) return x:index_select(1, i) end, { bits = true, gbits = true })
  check('gather and its gradient scatter_add (bit-equal)', function()
    return { randn(7, 9), randint(0, 9, 7, 12) }
  end, function(x, i) return x:gather(2, i) end, { bits = true, gbits = true })
  check('scatter_add with duplicates', function()
    return { randn(5, 6), randint(0, 5, 8, 6), randn(8, 6) }
  end, function(x, i, s) return x:scatter_add(1, i, s) end, { bits = true, gbits = true })
  check('index_add with duplicates, and its gradient index_select', function()
    return { randn(6, 5, 3), randint(0, 5, 40), randn(6, 40, 3) }
  end, function(x, i, s) return x:index_add(2, i, s) end, { bits = true, gbits = true })
  check('masked_select', function() return { randn(9, 11), randn(9, 11):gt(0.3) } end,
    function(x, m) return x:masked_select(m) end, { bits = true, gbits = true })
  it('rejects an out-of-range index on the device', function()
    local ok, err = pcall(function() return randn(4, 3):to(DEV):index_select(1, rl.tensor({ 0, 4 }):to(DEV)) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('out of range', 1, true), err)
  end)
end)

if rl.nearest_other then
  describe('CUDA vs CPU: nearest point of another class', function()
    for _, c in ipairs { { 'inf', false }, { 2, false }, { 'inf', true }, { 2, true } } do
      it(string.format('p = %s, skip_self = %s: equal distances and indices', c[1], c[2]), function()
        local q = randint(0, 256, 70, 1, 9, 7):byte()
        local ql = randint(0, 3, 70)
        local r = c[2] and q or randint(0, 256, 130, 1, 9, 7):byte()
        local rlab = c[2] and ql or randint(0, 3, 130)
        local o = { p = c[1], skip_self = c[2] }
        local d1, a1 = rl.nearest_other(q, ql, r, rlab, o)
        local d2, a2 = rl.nearest_other(q:to(DEV), ql:to(DEV), r:to(DEV), rlab:to(DEV), o)
        same_bits(d1, d2, 'dist')
        same_bits(a1, a2, 'arg')
      end)
    end
  end)
end

describe('CUDA vs CPU: attack steps and dropout', function()
  it('linf_step_ and l2_step_', function()
    local x, g, a = rand(6, 1, 5, 5), randn(6, 1, 5, 5), rand(6, 1, 5, 5)
    local ac, ad = a:clone(), a:to(DEV)
    F.linf_step_(ac, g, x, 0.05, 0.1, 0, 1)
    F.linf_step_(ad, g:to(DEV), x:to(DEV), 0.05, 0.1, 0, 1)
    same_bits(ac, ad, 'linf_step_')
    ac, ad = a:clone(), a:to(DEV)
    F.l2_step_(ac, g, x, 0.3, 0.5, 0, 1)
    F.l2_step_(ad, g:to(DEV), x:to(DEV), 0.3, 0.5, 0, 1)
    close(ac, ad, 1e-6, 'l2_step_')
  end)
  it('dropout and dropout2d draw the same masks from one generator', function()
    local x = randn(8, 4, 5, 5)
    same_bits(F.dropout(x, 0.3, true, rl.Generator(9)), F.dropout(x:to(DEV), 0.3, true, rl.Generator(9)))
    same_bits(F.dropout2d(x, 0.5, true, rl.Generator(9)), F.dropout2d(x:to(DEV), 0.5, true, rl.Generator(9)))
  end)
end)

describe('CUDA vs CPU: Philox streams', function()
  local function on(dev, fn)
    local g = rl.Generator(1234)
    return fn(g, { device = dev, generator = g }), g:get_state()
  end
  local cases = {
    { 'rand f32', function(_, o) return rl.rand(1001, o) end },
    { 'rand f64', function(_, o) o.dtype = 'f64'; return rl.rand(1001, o) end },
    { 'randn f32', function(_, o) return rl.randn(100003, o) end },
    { 'randint i64', function(_, o) return rl.randint(-5, 1000000007, 999, o) end },
    { 'randint f32', function(_, o) o.dtype = 'f32'; return rl.randint(0, 10, 999, o) end },
    { 'randperm', function(g, o) return rl.randperm(1000, o) end },
    { 'uniform_ with a range', function(g, o) return rl.empty(777, drawless(o)):uniform_(-3, 5, g) end },
    { 'normal_ with mean and std', function(g, o) return rl.empty(777, drawless(o)):normal_(2, 0.05, g) end },
    { 'bernoulli_', function(g, o) return rl.empty(1000, drawless(o)):bernoulli_(0.3, g) end },
    { 'bernoulli_ f64', function(g, o) o.dtype = 'f64'; return rl.empty(1000, drawless(o)):bernoulli_(0.7, g) end },
    { 'a fill after another (offsets advance alike)', function(_, o)
      rl.rand(13, o); return rl.randn(7, o) end },
  }
  for _, c in ipairs(cases) do
    if c[2] then
      it(c[1] .. ' is the same bits on both devices', function()
        local a, sa = on('cpu', c[2])
        local b, sb = on(DEV, c[2])
        same_bits(a, b, c[1])
        assert.are.same(sa, sb)
      end)
    end
  end
  it('randn f64 agrees to a few ulps (CUDA log/sin/cos vs glibc)', function()
    local a = on('cpu', function(_, o) o.dtype = 'f64'; return rl.randn(10001, o) end)
    local b = on(DEV, function(_, o) o.dtype = 'f64'; return rl.randn(10001, o) end)
    close(a, b, 1e-14, 'randn f64')
  end)
  it('the default generator advances alike', function()
    rl.manual_seed(77)
    local a = rl.randn(50)
    rl.manual_seed(77)
    local b = rl.randn(50, { device = DEV })
    same_bits(a, b)
  end)
end)

-- ---- whole training steps --------------------------------------------------------------

-- CNN002 as built (Kaiming convs), with small random weights in its last
-- layer, which starts at zero (the attack's gradient would be zero)
local function cnn002(dev, dtype)
  rl.manual_seed(3)
  local m = rl.models.CNN002 { classes = 10 }
  rl.no_grad(function()
    local w = m.classifier.fc3.weight
    w:copy_(rl.randn(w.shape, { generator = rl.Generator(4) }) * 0.05)
  end)
  if dtype then m:to(dtype) end
  return m:to(dev)
end

local function batch(dev, dtype)
  local g = rl.Generator(5)
  local x = rl.rand({ 16, 1, 28, 28 }, { generator = g, dtype = dtype })
  local y = rl.randint(0, 10, 16, { generator = g })
  return x:to(dev), y:to(dev)
end

local function trades_step(dev, dtype)
  local m = cnn002(dev, dtype)
  local x, y = batch(dev, dtype)
  local loss = rl.methods.trades(m, x, y, { eps = 0.1, beta = 6, generator = rl.Generator(6) })
  m:zero_grad()
  loss:backward()
  local grads = {}
  for i, p in ipairs(m:parameters()) do grads[i] = p.grad:cpu() end
  return loss:item(), grads
end

describe('CUDA vs CPU: a TRADES step of CNN002 (10 PGD steps, beta 6, batch 16)', function()
  -- The attack moves each pixel by the sign of its gradient: in f32 a
  -- component within rounding of zero may step the other way on the other
  -- device, and the attack's path then drifts apart a little.  The loss, a
  -- sum over the batch, agrees to 1e-3: over 10 seeds on an H200 it differed
  -- from the CPU's by 1e-7 to 1.3e-4 (0 to 1.9e-4 with the GPU's im2col), and
  -- two convolution paths on one CPU differ by up to 8e-5.  The gradients
  -- of the first layer (which see the adversarial pixels directly) agree to
  -- a few percent only.  In f64 that cannot happen, and everything agrees
  -- closely.
  for _, c in ipairs { { 'f32', 1e-3 }, { 'f64', 1e-10, 1e-8 } } do
    it(string.format('%s: the same loss (%g)%s on both devices', c[1], c[2],
      c[3] and string.format(' and gradients (%g)', c[3]) or ''), function()
      local a, ga = trades_step('cpu', c[1])
      local b, gb = trades_step(DEV, c[1])
      assert(math.abs(a - b) <= c[2] * math.abs(a),
        string.format('loss %.12g on the CPU, %.12g on %s (relative %.3g)', a, b, DEV,
          math.abs(a - b) / math.abs(a)))
      if c[3] then
        for i = 1, #ga do close(ga[i], gb[i], c[3], 'gradient ' .. i) end
      end
    end)
  end
end)

describe('CUDA vs CPU: the AutoAttack ensemble (tiny MLP, f64, one seed)', function()
  -- The random starts, Square's windows and FAB's restarts are Philox
  -- draws, the same bits on both devices; in f64 the arithmetic agrees to
  -- rounding, so every attack breaks the same points.  (In f32 a sign step
  -- on a component within rounding of zero may go the other way; see the
  -- TRADES case above.)
  it('the same points broken by the same attacks, and the same adversarial points', function()
    local m, x, y = require('helpers.tiny_mlp')()
    m:to('f64')
    x = x:double()
    local o = { eps = 0.2, checks = false }
    local a, ia = rl.attacks.autoattack(m, x, y, o)
    m:to(DEV)
    local b, ib = rl.attacks.autoattack(m, x:to(DEV), y:to(DEV), o)
    assert.are.same(ia.robust:tolist(), ib.robust:cpu():tolist())
    for i, r in ipairs(ia.attacks) do
      assert.are.same(r.broken, ib.attacks[i].broken, r.name)
    end
    close(a, b, 1e-9, 'adversarial batch')
  end)
end)

-- Two seeded 3-step TRADES trainings of CNN002, each step's loss from
-- objective(model, x, y, opts): the same losses and parameters, bit for bit.
local function trades_runs_agree(objective)
  local function run()
    local m = cnn002(DEV)
    local x, y = batch(DEV)
    local opt = rl.optim.SGD(m:parameters(), { lr = 1e-3, momentum = 0.9 })
    local losses = {}
    for s = 1, 3 do
      local loss = objective(m, x, y, { eps = 0.1, beta = 6, generator = rl.Generator(s) })
      opt:zero_grad()
      loss:backward()
      opt:step()
      losses[s] = loss
    end
    return losses, m:parameters()
  end
  local l1, p1 = run()
  local l2, p2 = run()
  for s = 1, #l1 do same_bits(l1[s], l2[s], 'loss ' .. s) end
  for i = 1, #p1 do same_bits(p1[i], p2[i], 'parameter ' .. i) end
end

describe('CUDA: determinism', function()
  it('two identical TRADES training runs give identical bits', function()
    trades_runs_agree(rl.methods.trades)
  end)
end)

-- ---- the half types: bf16 and f16 (issue #15) -----------------------------------
--
-- A half tensor holds the bits on the GPU that it holds on the CPU: moves
-- copy them, and conversions round alike (to nearest, ties to even, once,
-- from f64 and i64 too).  An elementwise op on half operands widens them
-- to f32, computes and rounds once, on both devices; so every op made of
-- correctly rounded f32 arithmetic (+ - * /, sqrt, max, min, abs, relu,
-- floor, comparisons, where) gives the same bits, gradients included.
-- CUDA's expf, logf, tanhf, powf ... differ from glibc's by an f32 ulp or
-- two, which can move the rounded result by one ulp of the half type: those
-- are compared within 1 ulp.  Sums (reductions, GEMMs, convolutions) are
-- f32 in another order, rounded once: within 1 ulp of the f32 sum of the
-- same rounded operands, plus a small absolute term for sums that cancel.

local HALVES = { 'bf16', 'f16' }

-- a and b the same bits, zeros of the same sign included (1/x tells them apart)
local function same_value_bits(a, b, what)
  same_bits(a, b, what)
  if is_float(a) then
    same_bits(a:detach():cpu():double():reciprocal(), b:detach():cpu():double():reciprocal(),
      what .. ' (the sign of a zero)')
  end
end

-- Numbers that test a rounding to the format fmt: at several magnitudes,
-- from below the subnormals to the largest value, a value k * q of the
-- format (q its spacing there; k even and odd) and the points a quarter,
-- half and three quarters of the way to the next, and just either side of
-- the half; the overflow boundary (its tie rounds to infinity); zeros,
-- infinities and NaN.  Every one but 1/3 and 1e-3 is exact in f32.
local function rounding_cases(fmt)
  local p = fmt.p
  local v = { 0.0, -0.0, math.huge, -math.huge, 0 / 0, 1, -1, 1 / 3, 1e-3 }
  local function around(k, q)
    for _, off in ipairs { 0, 0.25, 0.5, 0.75, 0.5 - 2 ^ -10, 0.5 + 2 ^ -10 } do
      v[#v + 1] = (k + off) * q
      v[#v + 1] = -(k + off) * q
    end
  end
  local sub = 2.0 ^ (fmt.emin - p + 1) -- the subnormal spacing
  for _, k in ipairs { 0, 1, 2, 3, 2 ^ (p - 2) + 1, 2 ^ (p - 1) - 1 } do around(k, sub) end
  for _, e in ipairs { fmt.emin, fmt.emin + 1, -3, 0, 1, p, fmt.emax - 1, fmt.emax } do
    for _, k in ipairs { 2 ^ (p - 1), 2 ^ (p - 1) + 1, 2 ^ p - 1 } do around(k, 2.0 ^ (e - p + 1)) end
  end
  local top = (2 - 2 ^ (1 - p)) * 2.0 ^ fmt.emax -- the largest finite value
  local half = 2.0 ^ (fmt.emax - p) -- half its spacing
  for _, x in ipairs { top, top + half, top + half * (1 - 2 ^ -10) } do
    v[#v + 1] = x
    v[#v + 1] = -x
  end
  return v
end

-- f64 numbers that f32 cannot hold: near-ties that an f32 step first would
-- turn into ties (rounding f64 through f32 gets them wrong), and values
-- beyond f32's range both ways
local function f64_cases(fmt)
  local p = fmt.p
  local v = { 1e39, -1e39, 1e300, 1e-50, -1e-50, 2.0 ^ -150 }
  for _, e in ipairs { 0, 5, fmt.emin + 2 } do
    local q, k = 2.0 ^ (e - p + 1), 2 ^ (p - 1)
    v[#v + 1] = (k + 0.5 + 2 ^ -35) * q -- k even: just above the tie goes up
    v[#v + 1] = -(k + 1.5 - 2 ^ -35) * q -- k + 1 odd: just below the tie goes down
  end
  return v
end

-- integers around the half types' exact range, their overflow (f16) and
-- beyond 2^53, where i64 -> f64 -> half would round twice
local function integer_cases()
  local v = { 0, 1, -1, 2, 255, 256, 257, 258, 259, 2049, 2051, 65504, 65519, 65520, 65535, 65536, -65520,
    (1 << 24) + 1, -(1 << 24) - 3, 1 << 53, (1 << 53) + 1, math.maxinteger, math.mininteger }
  for _, p in ipairs { 8, 11 } do
    local big = 1 << 60
    v[#v + 1] = big + (big >> p) + 1 -- just above a tie
    v[#v + 1] = -(big + (big >> p) + 1)
    v[#v + 1] = big + (big >> p) -- a tie
  end
  return v
end

local ALL_DTYPES = { 'f32', 'f64', 'i64', 'u8', 'bf16', 'f16' }

describe('CUDA vs CPU: bf16 and f16 (issue #15)', function()
  describe('moves, creation and conversion (bit for bit)', function()
    it('moves half tensors both ways, strided ones too, and copy_ converts across devices', function()
      for _, H in ipairs(HALVES) do
        local x = (randn(3, 5) * 50):to(H)
        x[1][1], x[1][2], x[1][3] = -0.0, 0 / 0, -math.huge
        local y = x:to(DEV)
        assert.are.equal(H, y.dtype)
        same_value_bits(x, y, H)
        same_value_bits(x, y:cpu(), H .. ' round trip')
        same_value_bits(x:t(), x:t():to(DEV), H .. ', a transposed source')
        if DEV == 'cuda' then same_value_bits(x, x:cuda(), H .. ' by :cuda()') end
        -- half on the CPU into f32 on the device, the device's f32 into a
        -- half tensor on the CPU, and half into half across (a strided
        -- destination)
        local d = rl.zeros(3, 5, { device = DEV })
        d:copy_(x)
        same_value_bits(x:float(), d, H .. ' copied into f32 on ' .. DEV)
        local c = rl.zeros(3, 5, H)
        c:copy_(y:float())
        same_value_bits(x, c, 'f32 on ' .. DEV .. ' copied into ' .. H)
        local e = rl.zeros(5, 3, { dtype = H, device = DEV })
        e:t():copy_(x)
        same_value_bits(x:t(), e, H .. ' copied into a transposed view on ' .. DEV)
      end
    end)

    it('zeros, ones, full, fill_, arange, linspace and eye in half types', function()
      for _, H in ipairs(HALVES) do
        local o, h = { device = DEV, dtype = H }, { dtype = H }
        same_value_bits(rl.zeros(4, 3, h), rl.zeros(4, 3, o), H .. ' zeros')
        same_value_bits(rl.ones(4, 3, h), rl.ones(4, 3, o), H .. ' ones')
        -- the value rounded once: 0.1, one past f16's range, a bf16 tie,
        -- below the subnormals (a signed zero)
        for _, v in ipairs { 0.1, 65520, 1 + 2 ^ -8, -2.0 ^ -150, 1e39 } do
          same_value_bits(rl.full({ 2, 3 }, v, h), rl.full({ 2, 3 }, v, o), H .. ' full ' .. v)
        end
        same_value_bits(rl.arange(0, 10, 0.3, h), rl.arange(0, 10, 0.3, o), H .. ' arange')
        same_value_bits(rl.linspace(-1, 1, 11, h), rl.linspace(-1, 1, 11, o), H .. ' linspace')
        same_value_bits(rl.eye(4, 5, h), rl.eye(4, 5, o), H .. ' eye')
        local a, b = rl.zeros(5, 6, h), rl.zeros(5, 6, o)
        a:narrow(2, 2, 3):fill_(1 / 3); b:narrow(2, 2, 3):fill_(1 / 3)
        same_value_bits(a, b, H .. ' fill_ of a strided view')
        local z = rl.zeros_like(b)
        assert.are.equal(H, z.dtype)
        assert.are.equal(b.device, z.device)
        assert.are.equal(b.device, rl.full_like(b, 2).device)
      end
    end)

    it('converts between all six dtypes like the CPU, every rounding case', function()
      -- the f64 numbers: both formats' rounding cases, f64's own, random ones
      local floats = {}
      for _, H in ipairs(HALVES) do
        for _, list in ipairs { rounding_cases(FORMATS[H]), f64_cases(FORMATS[H]) } do
          for _, x in ipairs(list) do floats[#floats + 1] = x end
        end
      end
      for _, x in ipairs((randn64(200) * 1000):tolist()) do floats[#floats + 1] = x end
      local ints, bytes = integer_cases(), {}
      for i = 0, 255 do bytes[#bytes + 1] = i end
      -- a float converted to an integer type outside its range (or NaN) is
      -- undefined in C: only values the target holds go to i64 and u8
      local function fits(x, dt)
        if dt == 'i64' then return x == x and math.abs(x) < 2.0 ^ 62 end
        if dt == 'u8' then return x == x and x > -1 and x < 256 end
        return true
      end
      -- a CPU tensor of dtype src holding the values that fit dst, each as
      -- src holds it (floats rounded to src first, on the CPU)
      local function source(src, dst)
        local l = {}
        if src == 'i64' or src == 'u8' then
          for _, x in ipairs(src == 'u8' and bytes or ints) do
            if fits(x, dst) then l[#l + 1] = x end
          end
          return rl.tensor(l, 'i64'):to(src)
        end
        for _, x in ipairs(rl.tensor(floats, 'f64'):to(src):double():tolist()) do
          if fits(x, dst) then l[#l + 1] = x end
        end
        return rl.tensor(l, 'f64'):to(src) -- exact: src's own values
      end
      for _, src in ipairs(ALL_DTYPES) do
        for _, dst in ipairs(ALL_DTYPES) do
          local x = source(src, dst)
          local y = x:to(DEV)
          same_value_bits(x, y, src .. ' moved')
          local want, got = x:to(dst), y:to(dst)
          assert.are.equal(dst, got.dtype)
          same_value_bits(want, got, src .. ' -> ' .. dst)
          -- a strided source converts alike
          same_value_bits(x:view(-1, 1):expand(x:numel(), 2):t():to(dst), y:view(-1, 1):expand(y:numel(), 2):t():to(dst),
            src .. ' -> ' .. dst .. ', strided')
        end
      end
    end)

    it('rand, randn, uniform_, normal_ and bernoulli_ in half types draw the CPU\'s bits', function()
      local fills = {
        { 'rand', function(o) return rl.rand(1001, o) end },
        { 'randn', function(o) return rl.randn(100003, o) end },
        { 'uniform_', function(o) return rl.empty(777, drawless(o)):uniform_(-3, 5, o.generator) end },
        { 'normal_', function(o) return rl.empty(777, drawless(o)):normal_(2, 0.05, o.generator) end },
        { 'bernoulli_', function(o) return rl.empty(1000, drawless(o)):bernoulli_(0.3, o.generator) end },
      }
      for _, H in ipairs(HALVES) do
        for _, f in ipairs(fills) do
          local g1, g2 = rl.Generator(1234), rl.Generator(1234)
          local a = f[2] { dtype = H, generator = g1 }
          local b = f[2] { dtype = H, device = DEV, generator = g2 }
          same_value_bits(a, b, H .. ' ' .. f[1])
          assert.are.same(g1:get_state(), g2:get_state())
        end
      end
    end)
  end)

  for _, H in ipairs(HALVES) do
    local function h(t) return t:to(H) end
    describe(H .. ': elementwise', function()
      check(H .. ': neg, abs, relu, sign, square, sqrt, floor, ceil, round, clamp (the same bits)', function()
        return { h(randn(17, 33) * 3) }
      end, function(x)
        local t = x:t()
        return t:relu() * t:abs() - t:neg():square() + t:clamp(-1, 0.5) + t:abs():sqrt(), t:sign(), t:floor(),
            t:ceil(), t:round(), t:clamp(-1), t:clamp(nil, 1)
      end, { bits = true, gbits = true })
      check(H .. ': + - * / maximum minimum (the same bits, gradients too)', function()
        return { h(randn(9, 13)), h(randn(9, 13)) }
      end, function(a, b)
        return (a * b - a / (b:abs() + 0.5)):maximum(a - b):minimum(a + b), a + b, a - b, a * b, a / b,
            a:maximum(b), a:minimum(b)
      end, { bits = true, gbits = true })
      -- a broadcast operand's gradient is a sum over the broadcast dims (f32, another order)
      check(H .. ': broadcasting (the same bits; gradients summed, within 1 ulp)', function()
        return { h(randn(8, 1, 5)), h(randn(6, 1)) }
      end, function(a, b) return a * b + a, a - b, a:maximum(b) end,
        { bits = true, gulps = 1, gatol = 1e-3 })
      check(H .. ': comparisons, isnan, where and masked_fill (the same bits)', function()
        local a = randn(40)
        a[3] = 0 / 0
        return { h(a), h(randn(40)) }
      end, function(a, b)
        return a:where(b:gt(0), b), rl.where(a:gt(b), 0.1, b), a:masked_fill(b:lt(0), 1 / 3), a:lt(b), a:ge(0.5),
            a:eq(b), a:isnan(), a:gt(0):logical_and(b:gt(0))
      end, { bits = true, gbits = true })
      -- one op each, so that one f32 ulp of difference cannot compound
      local approx = {
        { 'exp', function(x) return x:exp() end },
        { 'log', function(x) return x:abs():log() end },
        { 'tanh', function(x) return x:tanh() end },
        { 'sigmoid', function(x) return x:sigmoid() end },
        { 'sin', function(x) return x:sin() end },
        { 'cos', function(x) return x:cos() end },
        { 'log1p', function(x) return x:abs():log1p() end },
        { 'expm1', function(x) return x:expm1() end },
        { 'rsqrt', function(x) return x:abs():rsqrt() end },
        { 'reciprocal', function(x) return x:reciprocal() end },
        { 'pow by a number', function(x) return x:abs() ^ 1.7 end },
        { 'a number to a power', function(x) return 2 ^ x end },
        { 'affine by numbers', function(x) return x * 3 + 2 end },
        { 'a number over it', function(x) return 1 / (x:abs() + 1) end },
      }
      for _, a in ipairs(approx) do
        check(H .. ': ' .. a[1] .. ' (within 1 ulp)', function() return { h(randn(300) * 3) } end, a[2],
          { ulps = 1, gulps = 1, gatol = 1e-3 })
      end
      check(H .. ': pow of two tensors (within 1 ulp)', function() return { h(rand(200) + 0.5), h(randn(200)) } end,
        function(a, b) return a:pow(b) end, { ulps = 1, gulps = 1, gatol = 1e-3 })
      -- fmod and remainder by f32 formulas that may differ in the last f32 place
      check(H .. ': fmod, remainder', function() return { h(randn(300) * 4) } end,
        function(x) return x:fmod(1.5), x % 1.5 end, { ulps = 1, atol = 1e-4, nograd = true })
      -- a * b + c may be one fused multiply-add on one device and two roundings on the other
      check(H .. ': addcmul, addcdiv, lerp (within 1 ulp), clamp by tensors (the same bits)', function()
        return { h(randn(30)), h(randn(30)), h(rand(30) + 0.5) }
      end, function(a, b, c)
        return a:addcmul(b, c, 0.5), a:addcdiv(b, c, -2), a:lerp(b, 0.3), a:clamp(b:minimum(c), b:maximum(c))
      end, { ulps = 1, atol = 1e-3, gulps = 1, gatol = 1e-3 })
      check(H .. ': in-place ops on a view store the rounded result', function()
        return { h(randn(5, 6)), h(randn(6)) }
      end, function(a, b)
        local x = a:detach():clone()
        x:narrow(1, 2, 3):mul_(b:detach()):add_(b:detach()):relu_():neg_()
        return x
      end, { bits = true })
    end)

    describe(H .. ': reductions (f32 sums in another order, rounded once)', function()
      check(H .. ': sum, mean, prod, logsumexp over dims (within 1 ulp)', function()
        return { h(randn(6, 7, 8)) }
      end, function(x)
        return x:sum(2), x:sum(), x:mean({ 1, 3 }, true), (x * 0.25 + 1):prod(3), x:logsumexp(2), x:norm(2, 3),
            x:std(1)
      end, { ulps = 1, atol = 1e-4, gulps = 1, gatol = 1e-3 })
      check(H .. ': max/min with indices, ties keep the first (the same bits)', function()
        return { h((randn(5, 40) * 2):round()) }
      end, function(x)
        local v, i = x:max(2)
        local u, j = x:min(1, true)
        return v, i, u, j, x:argmax(), x:argmin(2), x:max(), x:min()
      end, { bits = true, gbits = true })
      check(H .. ': a long sum and mean (f32 accumulation, not ' .. H .. ')', function()
        return { h(rand(300000)) }
      end, function(x) return x:sum(), x:mean(), x:max() end, { ulps = 1, atol = 1e-5 })
      it(H .. ': a sum past the format\'s exact integers is still exact', function()
        same_bits(rl.ones(4096, H):sum(), rl.ones(4096, { dtype = H, device = DEV }):sum())
        assert.are.equal(4096, rl.ones(4096, { dtype = H, device = DEV }):sum():item())
      end)
    end)

    describe(H .. ': batch norm (f32 statistics, weight and bias; the sums in another order)', function()
      check(H .. ': batch_norm in training over [N, C, H, W], [N, C] and a transposed input (within 1 ulp)',
        function() return { h(randn(8, 5, 6, 6) * 2 + 1), randn(5), randn(5), h(randn(16, 7) * 3) } end,
        function(x, w, b, z)
          return F.batch_norm(x, nil, nil, w, b, true), F.batch_norm(z, nil, nil, nil, nil, true),
              F.batch_norm(x:transpose(3, 4), nil, nil, w, nil, true)
        end, { ulps = 1, atol = 1e-6, gulps = 1, gatol = 1e-6 })
      check(H .. ': batch_norm over more elements than a grid holds threads (within 1 ulp)',
        function() return { h(randn(20, 3, 77, 71) + 2), randn(3), randn(3) } end,
        function(x, w, b) return F.batch_norm(x, nil, nil, w, b, true) end,
        { ulps = 1, atol = 1e-6, gulps = 1, gatol = 1e-6 })
      check(H .. ': batch_norm in eval mode, gradients too (within 1 ulp)', function()
        return { h(randn(6, 4, 5, 5) * 2 + 1), randn(4), randn(4) }
      end, function(x, w, b)
        local rm = rl.tensor({ 0.5, -1, 0.25, 2 }):to(x.device)
        local rv = rl.tensor({ 1.5, 0.5, 3, 0.75 }):to(x.device)
        return F.batch_norm(x, rm, rv, w, b, false)
      end, { ulps = 1, atol = 1e-6, gulps = 1, gatol = 1e-6 })
      it(H .. ': running statistics stay f32; eval mode gives ' .. H .. ' (within 1 ulp)', function()
        local c, d = both { h(randn(8, 5, 6, 6) * 2 + 1), randn(5), randn(5) }
        local rmc, rvc = rl.zeros(5), rl.ones(5)
        local rmd, rvd = rmc:to(DEV), rvc:to(DEV)
        local yc = F.batch_norm(c[1], rmc, rvc, c[2], c[3], true, 0.1, 1e-5)
        local yd = F.batch_norm(d[1], rmd, rvd, d[2], d[3], true, 0.1, 1e-5)
        assert.are.equal(H, yd.dtype)
        assert.are.equal('f32', rmd.dtype)
        close(rmc, rmd, 1e-5, 'running_mean')
        close(rvc, rvd, 1e-5, 'running_var')
        compare(yc, yd, false, 1, 1e-6, nil, 'output')
        local ec = F.batch_norm(c[1], rmc, rvc, c[2], c[3], false)
        local ed = F.batch_norm(d[1], rmd, rvd, d[2], d[3], false)
        assert.are.equal(H, ed.dtype)
        compare(ec, ed, false, 1, 1e-6, nil, 'eval output')
      end)
    end)

    describe(H .. ': indexing (the same bits; index_add rounds each sum, in the CPU\'s order)', function()
      check(H .. ': index_select with repeats, its gradient index_add', function()
        return { h(randn(6, 8, 3)), rl.tensor { 5, 0, 2, 2, 7, 0, 2 } }
      end, function(x, i) return x:index_select(2, i) end, { bits = true, gbits = true })
      check(H .. ': index_select along dim 1, many repeats', function()
        return { h(randn(300, 4)), randint(0, 300, 5000) }
      end, function(x, i) return x:index_select(1, i) end, { bits = true, gbits = true })
      check(H .. ': gather and its gradient scatter_add', function()
        return { h(randn(7, 9)), randint(0, 9, 7, 12) }
      end, function(x, i) return x:gather(2, i) end, { bits = true, gbits = true })
      check(H .. ': scatter_add with duplicates', function()
        return { h(randn(5, 6)), randint(0, 5, 8, 6), h(randn(8, 6)) }
      end, function(x, i, s) return x:scatter_add(1, i, s) end, { bits = true, gbits = true })
      check(H .. ': index_add with duplicates', function()
        return { h(randn(6, 5, 3)), randint(0, 5, 40), h(randn(6, 40, 3)) }
      end, function(x, i, s) return x:index_add(2, i, s) end, { bits = true, gbits = true })
      check(H .. ': masked_select, cat, stack, contiguous', function()
        return { h(randn(9, 11)), randn(9, 11):gt(0.3) }
      end, function(x, m)
        return x:masked_select(m), rl.cat({ x, x:narrow(2, 1, 4) }, 2), rl.stack({ x, x:t():t() }, 3),
            x:t():contiguous()
      end, { bits = true, gbits = true })
    end)
  end

  -- ---- bf16 GEMMs and convolutions: bf16 operands, f32 sums, one rounding

  -- The result y (bf16, on the device) against the f32 result on the same
  -- rounded operands (on the CPU): within 1 bf16 ulp, plus atol of the
  -- largest for f32 sums that cancel; and against the CPU's bf16 result:
  -- within 1 ulp (two roundings of nearly the same f32 sum), with at most
  -- 5 % of the elements differing at all.  Then the gradients, the same
  -- way, with gatol in place of atol where given.
  local function bf16_vs_cpu(name, mk, fn, atol, gatol)
    it(name, function()
      local c, d = both(mk())
      local f = {}
      for i, t in ipairs(c) do f[i] = rl.is_tensor(t) and t:detach():float():requires_grad_() or t end
      local n = #c
      local yc, yd, yf = fn(table.unpack(c, 1, n)), fn(table.unpack(d, 1, n)), fn(table.unpack(f, 1, n))
      assert.are.equal('bf16', yd.dtype)
      assert.are.equal(DEV == 'cpu' and 'cpu' or 'cuda:0', yd.device)
      within_ulps(yd, yf, 1, atol, name .. ' against f32')
      close(yd:float(), yf, 1e-2, name .. ' against f32')
      local frac = within_ulps(yd, yc, 1, atol, name .. ' against the CPU\'s bf16')
      assert(frac <= 0.05, string.format('%s: %.1f %% of the elements differ from the CPU\'s', name, 100 * frac))
      -- gradients of sum(y * w), w in bf16: the same dy on all three
      local w = randn(table.unpack(yc.shape)):bf16()
      local gc = rl.grad((yc * w):sum(), c, nil, { allow_unused = true })
      local gd = rl.grad((yd * w:to(DEV)):sum(), d, nil, { allow_unused = true })
      local gf = rl.grad((yf * w:float()):sum(), f, nil, { allow_unused = true })
      for i = 1, n do
        if gc[i] then
          assert.are.equal('bf16', gd[i].dtype)
          within_ulps(gd[i], gf[i], 1, gatol or atol, name .. ' grad ' .. i .. ' against f32')
          within_ulps(gd[i], gc[i], 1, gatol or atol, name .. ' grad ' .. i .. ' against the CPU\'s bf16')
        end
      end
    end)
  end
  local function bf(...) return randn(...):bf16() end

  describe('bf16 matrix products (cuBLAS GemmEx: bf16 in, f32 sums)', function()
    bf16_vs_cpu('mm', function() return { bf(33, 65), bf(65, 17) } end,
      function(a, b) return a:matmul(b) end, 1e-5)
    bf16_vs_cpu('mm with transposed operands', function() return { bf(33, 65), bf(65, 17) } end,
      function(a, b) return b:t():matmul(a:t()) end, 1e-5)
    -- the broadcast operand's gradient: a bf16 product per batch entry,
    -- then their sum (as the CPU forms it), so each piece's rounding stays
    -- in the total: up to a bf16 ulp of the largest
    bf16_vs_cpu('batched, broadcast matmul', function() return { bf(4, 6, 9), bf(9, 5) } end,
      function(a, b) return a:matmul(b) end, 1e-5, 2 ^ -7)
    bf16_vs_cpu('bmm', function() return { bf(4, 6, 9), bf(4, 9, 3) } end,
      function(a, b) return a:bmm(b) end, 1e-5)
    bf16_vs_cpu('matrix by vector', function() return { bf(7, 11), bf(11) } end,
      function(a, v) return a:matmul(v) end, 1e-5)
    bf16_vs_cpu('linear with a bias', function() return { bf(16, 30), bf(20, 30), bf(20) } end,
      function(x, w, b) return F.linear(x, w, b) end, 1e-5)
    bf16_vs_cpu('a long inner dim (30000)', function() return { bf(20, 30000), bf(30000, 24) } end,
      function(a, b) return a:matmul(b) end, 1e-4)
  end)

  -- bf16_vs_cpu for conv2d cases {name, x's size, w's size, with a bias,
  -- options}: the weights scaled as Kaiming's are, so that outputs stay
  -- near 1
  local function bf16_convs_vs_cpu(convs)
    for _, c in ipairs(convs) do
      bf16_vs_cpu(c[1], function()
        local fan = c[3][2] * c[3][3] * c[3][4]
        local t = { bf(table.unpack(c[2])), (randn(table.unpack(c[3])) * math.sqrt(2 / fan)):bf16() }
        if c[4] then t[3] = bf(c[3][1]) end
        return t
      end, function(x, w, b) return F.conv2d(x, w, b, c[5]) end, 1e-4)
    end
  end

  describe('bf16 conv2d (im2col and a bf16 GEMM, f32 sums; dx and dW in f32, rounded once)', function()
    if DEV == 'cuda' then -- im2col forced, as RL_CUDA_CONV=im2col does
      before_each(function() rl.backends.cuda.set_conv('im2col') end)
      after_each(function() rl.backends.cuda.set_conv(nil) end)
    end
    local convs = {
      { '3x3 stride 1 padding 1, with a bias', { 4, 16, 12, 12 }, { 24, 16, 3, 3 }, true, { padding = 1 } },
      { '5x5 stride 2 padding 2, with a bias', { 3, 8, 17, 15 }, { 12, 8, 5, 5 }, true, { stride = 2, padding = 2 } },
      { '1x1, with a bias', { 4, 32, 9, 9 }, { 16, 32, 1, 1 }, true, {} },
      { '1x1 stride 2, without a bias (WRN\'s shortcut)', { 3, 16, 8, 8 }, { 32, 16, 1, 1 }, false, { stride = 2 } },
      { '3x3, 64 -> 64 at 16x16 (a WRN layer), without a bias', { 8, 64, 16, 16 }, { 64, 64, 3, 3 }, false,
        { padding = 1 } },
    }
    bf16_convs_vs_cpu(convs)
  end)

  describe('bf16 conv2d with the implicit GEMM forced (mma.sync: y, dW, and dx of stride-1 layers)', function()
    -- kernels/cuda_igemm.cu against the CPU's loops of the same arithmetic
    -- (each output an f32 sum of bf16 products, rounded once), both forced
    -- onto the implicit path.  The cases cross the kernels' edges: k past
    -- one slice of 32 and not a multiple of it, output channels (and dW's
    -- k) past one block of 128, pixels past one block of 128, blocks that
    -- span two images, and dW's pixels in several chunks, the last short.
    before_each(function() rl._conv_path('implicit') end)
    after_each(function() rl._conv_path('auto') end)
    local convs = {
      { '3x3 padding 1, 16 -> 24, with a bias', { 4, 16, 12, 12 }, { 24, 16, 3, 3 }, true, { padding = 1 } },
      { '3x3 padding 0, 8 -> 136 (a second, short block of channels)', { 2, 8, 11, 11 }, { 136, 8, 3, 3 }, false, {} },
      { '5x5 stride 2 padding 2, with a bias (dx by im2col)', { 3, 8, 17, 15 }, { 12, 8, 5, 5 }, true,
        { stride = 2, padding = 2 } },
      { '5x5 padding 2, rectangular', { 2, 3, 9, 12 }, { 4, 3, 5, 5 }, true, { padding = 2 } },
      { '1x1, 32 -> 16', { 4, 32, 9, 9 }, { 16, 32, 1, 1 }, true, {} },
      { '3x3 dilation 2 padding 2 (dx by im2col)', { 2, 6, 9, 9 }, { 7, 6, 3, 3 }, true, { padding = 2, dilation = 2 } },
      { '3x3, 64 -> 64 at 16x16 (a WRN layer)', { 4, 64, 16, 16 }, { 64, 64, 3, 3 }, false, { padding = 1 } },
      -- 33 images of 144 pixels: dW's sum in two chunks, the second shorter
      { '3x3 padding 1, 2 -> 3 at 12x12, 33 images', { 33, 2, 12, 12 }, { 3, 2, 3, 3 }, true, { padding = 1 } },
    }
    bf16_convs_vs_cpu(convs)
    it('takes the implicit path on ' .. DEV .. ' for y, dW and a stride-1 dx, and not for f32', function()
      local x = bf(2, 4, 6, 6):to(DEV):requires_grad_()
      local w = bf(3, 4, 3, 3):to(DEV):requires_grad_()
      local n0 = rl.counters().implicit_convs
      F.conv2d(x, w, nil, { padding = 1 }):sum():backward()
      assert.are.equal(3, rl.counters().implicit_convs - n0)
      F.conv2d(x:detach():float(), w:detach():float(), nil, { padding = 1 })
      assert.are.equal(3, rl.counters().implicit_convs - n0)
    end)
  end)

  -- Which of the two a bf16 pass takes, unless forced: measured on the
  -- shape's first use and kept for the GPU (kernels/cuda_conv.cu,
  -- engine/tune.h).  Only a CUDA build on a device has this choice.
  if DEV == 'cuda' then
    describe('bf16 conv2d: each pass\'s algorithm measured on first use and kept for the GPU', function()
      local shell = require 'helpers.shell'
      local cuda = rl.backends.cuda
      -- a choice as one line that choices() below reads back
      local SHOW = [[
        local function show(c)
          local timed = c.ms and c.ms.im2col and c.ms.implicit and 'both timed' or '-'
          print(c.key .. '|' .. c.algorithm .. '|' .. c.how .. '|' .. timed)
        end
      ]]
      -- a 3x3 stride-1 layer (every pass can take either) and a stride-2
      -- one (dx only by im2col); prints pass|algorithm|how|timed
      local code = SHOW .. [[
        local g = rl.Generator(5)
        local x = rl.randn({2, 8, 10, 10}, {generator = g}):bf16():to('cuda'):requires_grad_()
        local w = rl.randn({12, 8, 3, 3}, {generator = g}):bf16():to('cuda'):requires_grad_()
        rl.F.conv2d(x, w, nil, {padding = 1}):float():sum():backward()
        rl.F.conv2d(x, w, nil, {padding = 1, stride = 2}):float():sum():backward()
        for _, c in ipairs(rl.backends.cuda.conv_choices()) do show(c) end
        print('file|' .. rl.backends.cuda.conv_cache())
        print('implicit passes|' .. rl.counters().implicit_convs)]]
      local function choices(out)
        local t, file = {}, out:match('file|([^\n]*)')
        for key, alg, how, timed in out:gmatch('(bf16 [^|\n]+)|(%w+)|(%a+)|([^\n]+)') do
          t[#t + 1] = { key = key, alg = alg, how = how, timed = timed }
        end
        return t, file
      end

      it('the first process measures each pass; later ones take the file\'s first entry; off keeps it in the process', function()
        local dir = shell.tmpdir()
        finally(function() os.execute('rm -rf ' .. shell.quote(dir)) end)
        local env = 'RL_CUDA_CONV= RL_CUDA_CONV_CACHE= RL_CACHE_DIR=' .. shell.quote(dir)
        local out, status = shell.rllua_code(code, env)
        assert.are.equal(0, status, out)
        local first, file = choices(out)
        assert.are.equal(6, #first, out)
        local lines = {}
        for i, c in ipairs(first) do
          local strided_dx = c.key:find('bwd-dx', 1, true) and c.key:find('s2x2', 1, true)
          if strided_dx then -- the implicit GEMM forms dx of stride-1 layers only
            assert.are.same({ 'im2col', 'rule', '-' }, { c.alg, c.how, c.timed }, c.key)
          else
            assert.are.same({ 'measured', 'both timed' }, { c.how, c.timed }, c.key)
            lines[#lines + 1] = c.key .. '\t' .. c.alg .. '\n'
          end
          assert.truthy(c.key:find(({ 'fwd', 'bwd-dx', 'bwd-dw-db' })[(i - 1) % 3 + 1], 1, true), c.key)
        end
        assert.are.equal(dir, file:sub(1, #dir))
        assert.are.equal(table.concat(lines), shell.read(file))
        -- the counters count each pass once, not its timed runs
        local implicit = 0
        for _, c in ipairs(first) do implicit = implicit + (c.alg == 'implicit' and 1 or 0) end
        assert.are.equal(tostring(implicit), out:match('implicit passes|(%d+)'), out)
        -- another process: the same choices, from the file
        local again = choices(shell.rllua_code(code, env))
        for i, c in ipairs(again) do
          assert.are.equal(first[i].alg, c.alg, c.key)
          assert.are.equal(first[i].how == 'rule' and 'rule' or 'cached', c.how, c.key)
        end
        -- the file's first entry for a shape is the one taken
        local other = { im2col = 'implicit', implicit = 'im2col' }
        local f = assert(io.open(file, 'w'))
        for _, c in ipairs(first) do
          if c.how == 'measured' then f:write(c.key, '\t', other[c.alg], '\n', c.key, '\t', c.alg, '\n') end
        end
        f:close()
        for i, c in ipairs(choices(shell.rllua_code(code, env))) do
          if first[i].how == 'measured' then assert.are.same({ other[first[i].alg], 'cached' }, { c.alg, c.how }, c.key) end
        end
        -- RL_CUDA_CONV_CACHE=off: measured again, the file untouched
        local before = shell.read(file)
        out = shell.rllua_code(code, env .. ' RL_CUDA_CONV_CACHE=off')
        local off, nofile = choices(out)
        assert.are.equal('measured', off[1].how, out)
        assert.are.equal('', nofile)
        assert.are.equal(before, shell.read(file))
      end)

      it('a candidate that cannot run while timed drops out: the other is taken, not written to the file', function()
        -- the emulator's device memory is what RL_EMU_MEMORY says: 3 MB
        -- hold x, w and y of a 64-channel 64x64 layer but not im2col's
        -- col (4.5 MiB); the implicit GEMM needs no workspace
        if not rl.cuda.device_name():find('emulator', 1, true) then
          return pending('only the emulator (RL_EMU_MEMORY) can starve one candidate of memory and not the other')
        end
        local dir = shell.tmpdir()
        finally(function() os.execute('rm -rf ' .. shell.quote(dir)) end)
        local env = 'RL_EMU_MEMORY=3000000 RL_CUDA_CONV= RL_CUDA_CONV_CACHE= RL_CACHE_DIR=' .. shell.quote(dir)
        local out, status = shell.rllua_code(SHOW .. [[
          local g = rl.Generator(3)
          local x = rl.randn({1, 64, 64, 64}, {generator = g}):bf16():to('cuda')
          local w = (rl.randn({64, 64, 3, 3}, {generator = g}) * 0.05):bf16():to('cuda')
          local y = rl.F.conv2d(x, w, nil, {padding = 1})
          show(rl.backends.cuda.conv_choices()[1])
          rl.backends.cuda.set_conv('implicit')
          local yi = rl.F.conv2d(x, w, nil, {padding = 1})
          rl.backends.cuda.set_conv(nil)
          local differ = (y:to('cpu'):float() - yi:to('cpu'):float()):abs():max():item()
          print('same bits as implicit|' .. tostring(differ == 0))
          -- a small layer afterwards: both fit, both are timed
          local s = rl.randn({2, 8, 10, 10}, {generator = g}):bf16():to('cuda')
          rl.F.conv2d(s, rl.randn({12, 8, 3, 3}, {generator = g}):bf16():to('cuda'), nil, {padding = 1})
          for _, c in ipairs(rl.backends.cuda.conv_choices()) do show(c) end
          print('file|' .. rl.backends.cuda.conv_cache())]], env)
        assert.are.equal(0, status, out)
        assert.truthy(out:find('same bits as implicit|true', 1, true), out)
        local got, file = choices(out)
        assert.are.equal(3, #got, out) -- the big layer's choice, then its forced run and the small layer's
        assert.truthy(got[1].key:find('n1 c64 64x64 o64', 1, true), got[1].key)
        assert.are.same({ 'implicit', 'rule' }, { got[1].alg, got[1].how }, out)
        assert.truthy(got[3].key:find('n2 c8 10x10 o12', 1, true), got[3].key)
        assert.are.same({ 'measured', 'both timed' }, { got[3].how, got[3].timed }, out)
        -- only the small layer's measured choice is the machine's
        assert.are.equal(got[3].key .. '\t' .. got[3].alg .. '\n', shell.read(file))
      end)

      it('RL_CUDA_CONV forces one where it can run; a misspelt one is an error naming it', function()
        local env = 'RL_CUDA_CONV_CACHE=off RL_CUDA_CONV='
        local out, status = shell.rllua_code(code, env .. 'implicit')
        assert.are.equal(0, status, out)
        for _, c in ipairs(choices(out)) do
          local strided_dx = c.key:find('bwd-dx', 1, true) and c.key:find('s2x2', 1, true)
          assert.are.same({ strided_dx and 'im2col' or 'implicit', 'forced' }, { c.alg, c.how }, c.key)
        end
        out, status = shell.rllua_code(code, env .. 'implict')
        assert.are_not.equal(0, status)
        assert.truthy(out:find("RL_CUDA_CONV must be im2col, implicit or auto, not 'implict'", 1, true), out)
      end)

      it('a measured pass has the bits of its algorithm forced; set_conv forces, nil goes back to auto', function()
        local x = bf(3, 16, 9, 9):to(DEV)
        local w = (randn(24, 16, 3, 3) * 0.1):bf16():to(DEV)
        local function passes()
          local xr, wr = x:detach():requires_grad_(), w:detach():requires_grad_()
          local y = F.conv2d(xr, wr, nil, { padding = 1 })
          local g = rl.grad((y:float() * y:float():detach():sin()):sum(), { xr, wr })
          return { fwd = y:detach(), ['bwd-dx'] = g[1], ['bwd-dw-db'] = g[2] }
        end
        cuda.set_conv('auto') -- whatever RL_CUDA_CONV says
        finally(function() cuda.set_conv(nil) end)
        local chosen = passes()
        local alg = {}
        for _, c in ipairs(cuda.conv_choices()) do
          if c.key:find('n3 c16 9x9 o24', 1, true) then alg[c.key:match('^bf16 (%S+)')] = c.algorithm end
        end
        for pass, got in pairs(chosen) do
          assert.truthy(alg[pass], pass)
          assert.are.equal('auto', cuda.set_conv(alg[pass]))
          same_bits(got, passes()[pass], pass .. ' (' .. alg[pass] .. ')')
          cuda.set_conv('auto')
        end
        local ok, e = pcall(cuda.set_conv, 'winograd')
        assert.is_false(ok)
        assert.truthy(tostring(e):find("conv algorithm must be im2col, implicit or auto, not 'winograd'", 1, true), e)
        assert.has_error(function() cuda.set_conv(3) end)
      end)
    end)
  end

  describe('bf16 conv2d with the Winograd path forced (bf16 tiles, f32 transforms and sums)', function()
    -- Both devices round the same transforms of the same bf16 values to
    -- the same tiles (the kernels' only FMAs multiply by 0.5, exactly) and
    -- sum the GEMMs in other orders: within 2 bf16 steps plus 1e-3 of the
    -- largest value of each other, and within 2^-6 of the largest of the
    -- f32 convolution of the bf16 operands (autocast_spec checks the CPU's
    -- side against the f32 one likewise).
    before_each(function() rl._conv_path('winograd') end)
    after_each(function() rl._conv_path('auto') end)
    for _, c in ipairs {
      { '3x3 padding 1, 32 -> 40 at 13x11', { 3, 32, 13, 11 }, { 40, 32, 3, 3 }, 1 },
      -- 17 images of 256 tiles: dW's k in two chunks, the last shorter
      { '3x3 padding 1, 4 -> 8 at 32x32, dW split along k', { 17, 4, 32, 32 }, { 8, 4, 3, 3 }, 1 },
      { '3x3 padding 0, 16 -> 16 at 9x9', { 6, 16, 9, 9 }, { 16, 16, 3, 3 }, 0 },
    } do
      it(c[1], function()
        local fan = c[3][2] * 9
        local cx, cw = bf(table.unpack(c[2])), (randn(table.unpack(c[3])) * math.sqrt(2 / fan)):bf16()
        local cb = bf(c[3][1])
        local function run(dev, x, w, b)
          x, w, b = x:detach():to(dev):requires_grad_(), w:detach():to(dev):requires_grad_(),
            b:detach():to(dev):requires_grad_()
          local y = F.conv2d(x, w, b, { padding = c[4] })
          local g = rl.grad((y:float() * y:float():detach():cos()):sum(), { x, w, b })
          return { y, g[1], g[2], g[3] }
        end
        local want = run('cpu', cx:float(), cw:float(), cb:float())
        local gc, gd = run('cpu', cx, cw, cb), run(DEV, cx, cw, cb)
        for i, name in ipairs { 'y', 'dx', 'dw', 'db' } do
          assert.are.equal('bf16', gd[i].dtype, name)
          within_ulps(gd[i], gc[i], 2, 1e-3, name .. ' against the CPU\'s bf16 Winograd')
          local r = want[i]:double()
          local err = ((gd[i]:cpu():double() - r):abs():max() / r:abs():max()):item()
          assert(err <= 2 ^ -6, string.format('%s: %.3g of the largest value from f32', name, err))
        end
      end)
    end
  end)

  describe('bf16 max_pool2d (values and gradients, the same bits)', function()
    check('max_pool2d 2x2 with ties', function()
      return { ((randn(3, 4, 10, 10) * 2):round()):bf16() }
    end, function(x) return F.max_pool2d(x, 2) end, { bits = true, gbits = true })
    check('max_pool2d 3x3 stride 2 padding 1 (overlapping: gradients add up)', function()
      return { ((randn(2, 3, 11, 11) * 2):round()):bf16() }
    end, function(x) return F.max_pool2d(x, 3, { stride = 2, padding = 1 }) end, { bits = true, gbits = true })
  end)

  it('f16 has no convolution, linear or pooling on the device either: refused by name', function()
    local x = randn(1, 2, 4, 4):half():to(DEV)
    for what, f in pairs {
      conv2d = function() return F.conv2d(x, randn(3, 2, 1, 1):half():to(DEV)) end,
      linear = function() return F.linear(x:view(2, 16), randn(3, 16):half():to(DEV)) end,
      max_pool2d = function() return F.max_pool2d(x, 2) end,
    } do
      local ok, err = pcall(f)
      assert.is_false(ok, what)
      assert.truthy(tostring(err):find(what .. ': not defined for f16', 1, true), err)
    end
  end)

  -- ---- whole networks under rl.autocast('bf16')

  describe('rl.autocast(\'bf16\') on whole networks', function()
    -- The two devices round the same operands, but sum them in other
    -- orders: an activation may round to the neighbouring bf16 value on
    -- one device only, and that difference travels through the network.
    -- The loss (a sum over the batch) agrees to 2e-2; every gradient is f32
    -- on both devices and keeps its direction (cosine > 0.95; bf16 itself
    -- moves CNN002's gradients by up to 17 % of their norm from f32's:
    -- spec/autocast_spec.lua).
    local function step(dev, mk, x, y)
      local m = mk():to(dev)
      x, y = x:to(dev), y:to(dev)
      rl.manual_seed(8) -- the same dropout masks on both devices
      local loss = rl.autocast('bf16', function() return F.cross_entropy(m(x), y, 'sum') end)
      assert.are.equal('f32', loss.dtype)
      loss:backward()
      return loss:item(), m:named_parameters()
    end
    local function compare_steps(mk, x, y, last)
      local a, pa = step('cpu', mk, x, y)
      local b, pb = step(DEV, mk, x, y)
      assert(math.abs(a - b) <= 2e-2 * math.abs(a),
        string.format('loss %.9g on the CPU, %.9g on %s under bf16 autocast', a, b, DEV))
      assert.are.equal(#pa, #pb)
      local seen = false
      for i, np in ipairs(pa) do
        local name, gc, gd = np[1], np[2].grad, pb[i][2].grad
        assert.are.equal(name, pb[i][1])
        assert.are.equal('f32', pb[i][2].dtype, name)
        assert.are.equal('f32', gc.dtype, name)
        assert.are.equal('f32', gd.dtype, name)
        local u, v = gc:double(), gd:cpu():double()
        local cos = ((u * v):sum() / (u:norm() * v:norm())):item()
        local rel = ((u - v):norm() / u:norm()):item()
        assert(cos > 0.95, string.format('%s: gradient cosine %.4f between the devices (relative %.3g)', name, cos, rel))
        -- the last layer sees a single bf16 rounding of its input
        if name == last then
          seen = true
          assert(rel < 3e-2, string.format('%s: gradients differ by %.3g', name, rel))
        end
      end
      assert(seen, 'no parameter named ' .. last)
    end
    it('CNN002 forward and backward: the loss within 2e-2, f32 gradients alike', function()
      local x, y = batch('cpu')
      compare_steps(function() return cnn002('cpu') end, x, y, 'classifier.fc3.weight')
    end)
    it('a small WideResNet (batch norm computing in f32 on bf16 activations)', function()
      local g = rl.Generator(9)
      local x = rl.rand({ 4, 3, 32, 32 }, { generator = g })
      local y = rl.randint(0, 10, 4, { generator = g })
      compare_steps(function()
        rl.manual_seed(4)
        return rl.models.WideResNet { depth = 10, widen = 2 }
      end, x, y, 'fc.weight')
    end)
  end)

  describe('determinism in bf16', function()
    it('two identical TRADES training runs under bf16 autocast give identical bits', function()
      trades_runs_agree(function(...) return rl.autocast('bf16', rl.methods.trades, ...) end)
    end)
  end)

  it('safetensors: half tensors on the device are saved and loaded with their bits', function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local t = {}
    for _, H in ipairs(HALVES) do
      local x = (randn(7, 5) * 100):to(H)
      x[2][2], x[2][3], x[2][4] = -0.0, 0 / 0, math.huge
      t[H] = x:to(DEV)
      t[H .. '_t'] = t[H]:t() -- a strided one is written contiguous
    end
    rl.save(path, t)
    local back = rl.load(path)
    for k, v in pairs(t) do
      assert.are.equal(v.dtype, back[k].dtype, k)
      same_value_bits(v:cpu():contiguous(), back[k], k)
      same_value_bits(v, back[k]:to(DEV), k .. ' moved back')
    end
  end)
end)

if DEV == 'cuda' then
  describe('CUDA: TF32', function()
    it('is off by default; allowed, it moves f32 GEMMs by TF32 rounding only', function()
      local env = os.getenv('RL_CUDA_TF32') == '1'
      assert.are.equal(env, rl.cuda.allow_tf32())
      finally(function() rl.cuda.allow_tf32(env) end)
      local a, b = randn(256, 512), randn(512, 256)
      local want = a:matmul(b)
      local da, db = a:to(DEV), b:to(DEV)
      rl.cuda.allow_tf32(true)
      local ok, t = pcall(function() return da:matmul(db) end)
      assert.is_true(rl.cuda.allow_tf32(false))
      assert(ok, t)
      local e = relerr(want, t)
      -- products of 10-bit mantissas: about 1e-3 of the largest entry
      assert(e < 1e-2, string.format('TF32 matmul off by %.3g', e))
      local _, cap = rl.cuda.device_name()
      if tonumber(cap:match('^(%d+)')) >= 8 then
        assert(e > 1e-5, string.format('TF32 allowed, yet the matmul is fp32 (error %.3g)', e))
      end
      close(want, da:matmul(db), 1e-5, 'fp32 again')
    end)
  end)

  describe('CUDA: the caching allocator and errors', function()
    it('serves a training loop from its cache, without cudaMalloc', function()
      local x = rl.randn(64, 1, 28, 28, { device = DEV })
      local w = rl.randn(32, 1, 3, 3, { device = DEV }):requires_grad_()
      local function step()
        local y = F.conv2d(x, w, nil, { padding = 1 }):relu():sum()
        return rl.grad(y, w)
      end
      step(); step()
      collectgarbage(); collectgarbage()
      local s0 = rl.cuda.memory_stats()
      for _ = 1, 10 do step(); collectgarbage() end
      local s1 = rl.cuda.memory_stats()
      assert.are.equal(s0.cuda_mallocs, s1.cuda_mallocs)
      assert.is_true(s1.cache_hits > s0.cache_hits)
      assert.is_true(s1.reserved >= s1.allocated and s1.allocated > 0)
      rl.cuda.empty_cache()
      assert.are.equal(0, rl.cuda.memory_stats().cached)
      rl.cuda.synchronize()
    end)
    it('reports an allocation it cannot serve with the bytes asked and held', function()
      local ok, err = pcall(rl.empty, 1 << 40, { device = DEV }) -- 4 TiB of f32
      assert.is_false(ok)
      assert.truthy(tostring(err):find('out of memory', 1, true), err)
      assert.truthy(tostring(err):find('4398046511104', 1, true), err)
      -- and the device still works
      same_bits(rl.ones(3) * 2, rl.ones(3, { device = DEV }) * 2)
    end)
    it('names both devices when an op mixes them', function()
      local ok, err = pcall(function() return rl.ones(2) + rl.ones(2, { device = DEV }) end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find('cpu', 1, true) and tostring(err):find('cuda:0', 1, true), err)
    end)
    it('names the device', function()
      local name, cc = rl.cuda.device_name()
      assert.is_string(name)
      assert.truthy(cc:match('^%d+%.%d+$'))
      assert.are.equal('cuda:0', rl.device('cuda'))
    end)
  end)
end
