-- bf16 on the CPU (issue #15, its first part): conversion against a
-- rounding written here, every case (ties both ways, subnormals, the
-- overflow boundary, NaN, infinities, signed zero); against PyTorch's
-- bits; elementwise ops and reductions computed in f32 and rounded once;
-- gradients through bf16; and clear errors where bf16 is refused.
local rl = require 'rl'
local shell = require 'helpers.shell'

-- The exponent of a finite non-zero double, exactly (from its %a form).
local function exponent(x)
  local m, e = string.format('%a', math.abs(x)):match('^0x(%d)%.?%x*p([+-]%d+)$')
  assert(m == '1', 'a normal double expected: ' .. string.format('%a', x))
  return tonumber(e)
end

-- x rounded to bf16 (8 significant bits, exponents -126..127, subnormal
-- steps of 2^-133), nearest with ties to even: the reference.
local function bf16_ref(x)
  if x ~= x or x == 0 or math.abs(x) == math.huge then return x end
  local sign = x < 0 and -1.0 or 1.0
  local e = math.max(exponent(x), -126)
  local q = 2.0 ^ (e - 7) -- the step between bf16 values at x's magnitude
  local r = math.abs(x) / q -- exact: a power-of-two scaling
  local f = math.floor(r)
  local d = r - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
  local v = f * q
  if v >= 2.0 ^ 128 then v = math.huge end
  return sign * v -- a value that rounds to zero keeps its sign
end

local function same_value(a, b)
  if a ~= a then return b ~= b end
  return a == b and (a ~= 0 or 1 / a == 1 / b) -- and the sign of a zero
end

-- The cases: around ties at several magnitudes, subnormals, the largest
-- values, and plain ones.
local function cases()
  local xs = { 0.0, -0.0, 1.0, -1.0, 0.1, -0.1, 3.1415926535, 1e-3, 65504, 1e38, -1e38, 3.3895e38,
    math.huge, -math.huge, 0 / 0 }
  for _, e in ipairs { -140, -133, -130, -127, -126, -125, -20, -1, 0, 1, 7, 30, 126, 127 } do
    local q = 2.0 ^ (math.max(e, -126) - 7)
    for _, k in ipairs { 128, 129, 200, 255 } do
      local base = k * q * (e < -126 and 2.0 ^ (e + 126) or 1)
      for _, off in ipairs { 0.5, -0.5, 0.25, 0.75, 0.5 + 2 ^ -20, 0.5 - 2 ^ -20 } do
        local x = (k + off) * q
        if e < -126 then x = (k / 2 ^ (-126 - e) + off) * q end -- below the normal range
        xs[#xs + 1] = x
        xs[#xs + 1] = -x
      end
      xs[#xs + 1] = base
    end
  end
  -- halfway between the largest bf16 and 2^128 (ties to even: inf), and just below
  local top = (2 - 2 ^ -7) * 2.0 ^ 127
  xs[#xs + 1] = top + 2.0 ^ 119
  xs[#xs + 1] = top + 2.0 ^ 119 - 2.0 ^ 100
  xs[#xs + 1] = top
  local g = rl.Generator(5)
  for _, v in ipairs(rl.randn({ 200 }, { generator = g, dtype = 'f64' }):mul(1e3):tolist()) do xs[#xs + 1] = v end
  return xs
end

describe('bf16 (issue #15, CPU)', function()
  it('f64 -> bf16 rounds once, to nearest, ties to even, every case', function()
    local xs = cases()
    local got = rl.tensor(xs, 'f64'):bf16():tolist()
    for i, x in ipairs(xs) do
      local want = bf16_ref(x)
      assert(same_value(want, got[i]),
        string.format('%s: got %s, want %s', string.format('%a', x), string.format('%a', got[i]), string.format('%a', want)))
    end
  end)

  it('f32 -> bf16 likewise, and bf16 -> f32 / f64 exactly', function()
    -- the f32 values of the cases (rounded to f32 first: that is what an f32 tensor holds)
    local f = rl.tensor(cases(), 'f64'):float()
    local xs = f:tolist()
    local b = f:bf16()
    local got = b:tolist()
    for i, x in ipairs(xs) do
      assert(same_value(bf16_ref(x), got[i]), string.format('%a -> %a', x, got[i]))
    end
    -- widening is exact: bf16 -> f32 -> bf16 and bf16 -> f64 -> bf16 keep every bit
    for _, back in ipairs { b:float():bf16():tolist(), b:double():bf16():tolist(), b:double():tolist() } do
      for i, v in ipairs(got) do assert(same_value(v, back[i])) end
    end
    -- NaN stays NaN, from f32 and from f64
    assert.is_true(b:isnan():sum():item() >= 1)
  end)

  it('agrees with PyTorch bit for bit (f32 -> bf16)', function()
    local probe = io.popen('/usr/bin/python3 -c "import torch" 2>&1; echo $?')
    local rc = probe:read('a'):match('(%d+)%s*$')
    probe:close()
    if rc ~= '0' then pending('python3/torch not available') return end
    local f = rl.tensor(cases(), 'f64'):float()
    local dir = shell.tmpdir()
    rl.save(dir .. '/x.safetensors', { x = f, b = f:bf16() })
    local code = [[
import sys
sys.path.insert(0, 'scripts')
import torch, torch_ref
t = torch_ref.load_safetensors(sys.argv[1])
mine = t['b'].view(torch.int16)
theirs = t['x'].to(torch.bfloat16).view(torch.int16)
nan = torch.isnan(t['x'])
bad = ((mine != theirs) & ~nan).nonzero().flatten().tolist()
print('ok' if not bad and torch.isnan(t['b'].float()[nan]).all() else 'differ at %s' % bad[:5])
]]
    local script = dir .. '/cmp.py'
    local fh = assert(io.open(script, 'w'))
    fh:write(code)
    fh:close()
    local out = shell.sh('/usr/bin/python3 ' .. shell.quote(script) .. ' ' .. shell.quote(dir .. '/x.safetensors'))
    os.execute('rm -rf ' .. shell.quote(dir))
    assert.are.equal('ok', (out:gsub('%s+$', '')))
  end)

  it('elementwise ops compute in f32 and round the result once', function()
    local g = rl.Generator(11)
    local a = rl.randn({ 6, 7 }, { generator = g }):bf16()
    local b = rl.randn({ 6, 7 }, { generator = g }):bf16()
    local af, bf = a:float(), b:float()
    local function same(x, y, what)
      assert.are.equal('bf16', x.dtype, what)
      local d = (x:float() - y:bf16():float()):abs():max():item()
      assert(d == 0, what .. ' differs by ' .. d)
    end
    same(a + b, af + bf, 'add')
    same(a * b, af * bf, 'mul')
    same(a / b, af / bf, 'div')
    same(a * 3.3, af * 3.3, 'mul by a number')
    same(a:exp(), af:exp(), 'exp')
    same(a:tanh(), af:tanh(), 'tanh')
    same(a:relu(), af:relu(), 'relu')
    same(a:clamp(-0.5, 0.5), af:clamp(-0.5, 0.5), 'clamp')
    same(rl.where(a:gt(0), a, b), rl.where(af:gt(0), af, bf), 'where')
    same(a:sum(), af:sum(), 'sum')
    same(a:sum(2), af:sum(2), 'sum over a dim')
    same(a:mean(1), af:mean(1), 'mean')
    same(a:std(), af:std(), 'std')
    same(a:max(), af:max(), 'max')
    same(a:logsumexp(2), af:logsumexp(2), 'logsumexp')
    assert.are.same(af:argmax(2):tolist(), a:argmax(2):tolist())
    assert.are.equal('u8', a:gt(b).dtype)
    -- with an f32 operand the result is f32, as PyTorch promotes
    assert.are.equal('f32', (a + bf).dtype)
    -- in place: computed as out of place, stored rounded
    local c = a:clone()
    c:mul_(bf)
    same(c, af * bf, 'mul_ by an f32 tensor')
    -- a number operand is not rounded to bf16 first (1/257 is not 1/256)
    same(a / 257, af / 257, 'div by a number')
    same(257 / a, 257 / af, 'a number divided by it')
    local e = a:clone()
    e:div_(3)
    same(e, af / 3, 'div_ by a number')
    -- a sum of many is accumulated in f32, not in bf16
    local ones = rl.ones(4096, 'bf16')
    assert.are.equal(4096, ones:sum():item())
  end)

  -- relu, its gradient, add and sub of two bf16 tensors run on bf16 in one
  -- pass (engine/ops_pointwise.c, bf16_native_*); the rest through f32
  -- copies.  Both must give the same bits, values and gradients.
  it('relu, add, sub and max pooling run on bf16 directly, with the bits of the path through f32', function()
    local F = rl.F
    local g = rl.Generator(12)
    local specials = { 0 / 0, math.huge, -math.huge, -0.0, 0.0, 2 ^ -133, -2 ^ -130, 3.0e38, -3.0e38, 1, -1 }
    local function operand()
      local t = rl.randn({ 5, 13 }, { generator = g }) * 4
      for i, v in ipairs(specials) do t[1][i] = v end
      return t:bf16()
    end
    local a, b = operand(), operand()
    local function same_bits(x, y, what)
      assert.are.equal('bf16', x.dtype, what)
      -- compared as f64, NaN where NaN, and the sign of zero
      local xs, ys = x:double():tolist(), y:bf16():double():tolist()
      for i = 1, #xs do
        for j = 1, #xs[i] do
          local u, v = xs[i][j], ys[i][j]
          assert(u == v and 1 / u == 1 / v or u ~= u and v ~= v,
            string.format('%s at %d,%d: %s against %s', what, i, j, tostring(u), tostring(v)))
        end
      end
    end
    same_bits(a:relu(), a:float():relu(), 'relu')
    same_bits(a + b, a:float() + b:float(), 'add')
    same_bits(a - b, a:float() - b:float(), 'sub')
    same_bits(a:add(b, 0.3), a:float():add(b:float(), 0.3), 'add with alpha')
    local c = a:clone()
    c:relu_()
    same_bits(c, a:float():relu(), 'relu_')
    -- gradients: the same bits through the native ops and through f32
    local x, y = rl.randn({ 4, 9 }, { generator = g }):bf16(), rl.randn({ 4, 9 }, { generator = g }):bf16()
    local dy = rl.randn({ 4, 9 }, { generator = g }):bf16()
    local xn, yn = x:detach():requires_grad_(), y:detach():requires_grad_()
    local native = (xn + yn):relu() - yn
    native:backward(dy)
    local xf, yf = x:detach():requires_grad_(), y:detach():requires_grad_()
    local through = ((xf:float() + yf:float()):relu() - yf:float()):bf16()
    through:backward(dy)
    same_bits(xn.grad, xf.grad:float(), 'the gradient of x')
    same_bits(yn.grad, yf.grad:float(), 'the gradient of y')
    -- max pooling: 2x2 (the fast path) and overlapping 3x3 windows of
    -- stride 2 (gradients adding up), ties, NaN, and a plane width that is
    -- not a whole number of windows; planes narrow and wide (f32's 2x2 is
    -- vectorised from 8 output columns, bf16's is not)
    for _, case in ipairs { { 2, 2, 11 }, { 3, 2, 11 }, { 2, 1, 11 }, { 2, 2, 40 } } do
      local k, st = case[1], case[2]
      local p = (rl.randn({ 2, 3, 9, case[3] }, { generator = g }) * 2):round():bf16() -- many ties
      p[1][2][3][4] = 0 / 0
      local gp = rl.randn(F.max_pool2d(p, k, { stride = st }).shape, { generator = g }):bf16()
      local pn, pf = p:detach():requires_grad_(), p:detach():requires_grad_()
      local yn, yf = F.max_pool2d(pn, k, { stride = st }), F.max_pool2d(pf:float(), k, { stride = st }):bf16()
      yn:backward(gp)
      yf:backward(gp)
      local what = string.format('max_pool2d %dx%d stride %d', k, k, st)
      same_bits(yn:view(-1, yn.shape[4]), yf:float():view(-1, yn.shape[4]), what)
      same_bits(pn.grad:view(-1, case[3]), pf.grad:float():view(-1, case[3]), what .. ', the gradient')
    end
  end)

  -- linear and matmul on bf16: OpenBLAS's f32 GEMM on the widened
  -- operands, rounded once (engine/cpu/cpu_blas.c): the bits of the same
  -- ops on f32 copies, forward and gradients, transposed and batched
  it('linear and matmul on bf16 give the bits of f32 on the widened operands, gradients too', function()
    local g = rl.Generator(14)
    local function bf(...) return rl.randn({ ... }, { generator = g }):bf16() end
    local function same(a, b, what)
      assert.are.equal('bf16', a.dtype, what)
      assert.are.same(b:bf16():float():tolist(), a:float():tolist(), what)
    end
    local x, w, b, dy = bf(6, 5), bf(3, 5), bf(3), bf(6, 3)
    local xn, wn, bn = x:detach():requires_grad_(), w:detach():requires_grad_(), b:detach():requires_grad_()
    local yn = rl.F.linear(xn, wn, bn)
    yn:backward(dy)
    local xf, wf, bff = x:float():requires_grad_(), w:float():requires_grad_(), b:float():requires_grad_()
    local yf = rl.F.linear(xf, wf, bff)
    yf:backward(dy:float())
    same(yn, yf, 'linear')
    same(xn.grad, xf.grad, 'the gradient of x')
    same(wn.grad, wf.grad, 'the gradient of w')
    same(bn.grad, bff.grad, 'the gradient of b')
    -- matmul: batched, broadcast, a transposed operand, a vector
    local p, q = bf(4, 3, 7), bf(7, 2)
    same(p:matmul(q), p:float():matmul(q:float()), 'batched matmul')
    same(q:t():matmul(p[2]:t()), q:float():t():matmul(p[2]:float():t()), 'transposed')
    local v = bf(7)
    same(p[1]:matmul(v), p[1]:float():matmul(v:float()), 'matrix by vector')
  end)

  it('integers round once (beyond 2^53 too); randperm and Module:to know bf16', function()
    local v = (1 << 60) + (1 << 52) + 1 -- just above a tie: rounds up, not to even
    local got = rl.tensor({ v, -v, (1 << 60) + (1 << 52), 12345 }, 'i64'):bf16():double():tolist()
    assert.are.same({ 2.0 ^ 60 + 2.0 ^ 53, -(2.0 ^ 60 + 2.0 ^ 53), 2.0 ^ 60, 12352 }, got)
    assert.are.equal(257, rl.randperm(257, 'bf16'):numel())
    assert.has_error(function() rl.randperm(258, 'bf16') end,
      'randperm: n = 258 is too large for bf16 (its values must be exact)')
    local bn = rl.nn.BatchNorm2d(3):to('bf16')
    assert.are.equal('bf16', bn.weight.dtype)
    assert.are.equal('i64', bn.num_batches_tracked.dtype)
  end)

  it('gradients flow through bf16 and through the casts', function()
    local w = rl.randn(3, 4):bf16():requires_grad_()
    local x = rl.randn(3, 4, 'f64'):requires_grad_()
    local l = (w * w):sum() + (x:bf16() * 2):sum()
    l:backward()
    assert.are.equal('bf16', w.grad.dtype)
    assert.are.same((w:detach() * 2):tolist(), w.grad:tolist())
    assert.are.equal('f64', x.grad.dtype)
    assert.are.same(rl.full({ 3, 4 }, 2, 'f64'):tolist(), x.grad:tolist())
  end)

  it('ops without a bf16 path refuse it by name; CUDA tensors cannot be bf16', function()
    local x = rl.randn(2, 4):bf16()
    local ok, err = pcall(rl.F.softmax, x, 2)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('bf16', 1, true), err)
    ok, err = pcall(rl.F.batch_norm, x:view(2, 4, 1, 1), nil, nil, nil, nil, true)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('bf16', 1, true), err)
    -- linear and matmul take bf16, but not mixed with f32 in linear
    ok, err = pcall(rl.F.linear, x, rl.randn(3, 4))
    assert.is_false(ok)
    assert.truthy(tostring(err):find('one float dtype, got bf16, f32', 1, true), err)
    assert.has_error(function() rl.rand(2, 'bf16') end, 'rand: needs f32 or f64, got bf16 (convert the result with :bf16())')
    if rl.cuda and rl.cuda.is_available and rl.cuda.is_available() then
      ok, err = pcall(function() return x:cuda() end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find('bf16 tensors are CPU%-only'), err)
    end
    assert.are.equal('bf16', rl.zeros(2, 'bfloat16').dtype)
    assert.are.equal(2, rl.tensor({ 1.5, 2 }, 'bf16'):numel())
  end)
end)
