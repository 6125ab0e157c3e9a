-- The half types on the CPU (issue #15): bf16 and f16.  Conversion
-- against a rounding written here, every case (ties both ways, subnormals,
-- the overflow boundary, NaN, infinities, signed zero); against PyTorch's
-- bits; elementwise ops and reductions computed in f32 and rounded once;
-- gradients through them; and clear errors where they are refused.  Then
-- bf16's own kernels (rl.autocast's compute type): relu, add, sub, max
-- pooling, linear and matmul on bf16 directly.
local rl = require 'rl'
local shell = require 'helpers.shell'

-- The two formats: p bits of precision, normal exponents emin..emax, the
-- method that converts to it, PyTorch's name, and a whole number just past
-- the exactly held ones (2^p + 1).
local FORMATS = {
  { name = 'bf16', p = 8, emin = -126, emax = 127, method = 'bf16', torch = 'bfloat16', alias = 'bfloat16' },
  { name = 'f16', p = 11, emin = -14, emax = 15, method = 'half', torch = 'float16', alias = 'float16' },
}

-- The exponent of a finite non-zero double, exactly (from its %a form).
local function exponent(x)
  local m, e = string.format('%a', math.abs(x)):match('^0x(%d)%.?%x*p([+-]%d+)$')
  assert(m == '1', 'a normal double expected: ' .. string.format('%a', x))
  return tonumber(e)
end

-- x rounded to the format (p significant bits, exponents emin..emax,
-- subnormal steps of 2^(emin - p + 1)), nearest with ties to even: the
-- reference.
local function round_ref(fmt, x)
  if x ~= x or x == 0 or math.abs(x) == math.huge then return x end
  local sign = x < 0 and -1.0 or 1.0
  local e = math.max(exponent(x), fmt.emin)
  local q = 2.0 ^ (e - fmt.p + 1) -- the step between values at x's magnitude
  local r = math.abs(x) / q -- exact: a power-of-two scaling
  local f = math.floor(r)
  local d = r - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
  local v = f * q
  if v >= 2.0 ^ (fmt.emax + 1) then v = math.huge end
  return sign * v -- a value that rounds to zero keeps its sign
end

local function same_value(a, b)
  if a ~= a then return b ~= b end
  return a == b and (a ~= 0 or 1 / a == 1 / b) -- and the sign of a zero
end

-- The cases: around ties at several magnitudes (below the subnormals, the
-- subnormals, the normal range's ends), the largest values, and plain ones.
local function cases(fmt)
  local xs = { 0.0, -0.0, 1.0, -1.0, 0.1, -0.1, 3.1415926535, 1e-3, 65504, 65519.99, 65520, 1e38, -1e38,
    3.3895e38, math.huge, -math.huge, 0 / 0 }
  local p, emin, emax = fmt.p, fmt.emin, fmt.emax
  local half = 2 ^ (p - 1)
  for _, e in ipairs { emin - p - 6, emin - p + 1, emin - 4, emin - 1, emin, emin + 1, -20, -1, 0, 1, p - 1, 30,
    emax - 1, emax } do
    local q = 2.0 ^ (math.max(e, emin) - p + 1)
    for _, k in ipairs { half, half + 1, math.floor(half * 1.56), 2 * half - 1 } do
      local base = k * q * (e < emin and 2.0 ^ (e - emin) or 1)
      for _, off in ipairs { 0.5, -0.5, 0.25, 0.75, 0.5 + 2 ^ -20, 0.5 - 2 ^ -20 } do
        local x = (k + off) * q
        if e < emin then x = (k / 2 ^ (emin - e) + off) * q end -- below the normal range
        xs[#xs + 1] = x
        xs[#xs + 1] = -x
      end
      xs[#xs + 1] = base
    end
  end
  -- halfway between the largest value and 2^(emax + 1) (ties to even:
  -- inf), and just below
  local top = (2 - 2 ^ -(p - 1)) * 2.0 ^ emax
  xs[#xs + 1] = top + 2.0 ^ (emax - p)
  xs[#xs + 1] = top + 2.0 ^ (emax - p) - 2.0 ^ (emax - p - 8)
  xs[#xs + 1] = top
  local g = rl.Generator(5)
  for _, v in ipairs(rl.randn({ 200 }, { generator = g, dtype = 'f64' }):mul(1e3):tolist()) do xs[#xs + 1] = v end
  return xs
end

local function have_torch()
  local probe = io.popen('/usr/bin/python3 -c "import torch" 2>&1; echo $?')
  local rc = probe:read('a'):match('(%d+)%s*$')
  probe:close()
  return rc == '0'
end

for _, fmt in ipairs(FORMATS) do
  local H = fmt.name
  local function to(t) return t[fmt.method](t) end

  describe(H .. ' (issue #15, CPU)', function()
    it('f64 -> ' .. H .. ' rounds once, to nearest, ties to even, every case', function()
      local xs = cases(fmt)
      local got = to(rl.tensor(xs, 'f64')):tolist()
      for i, x in ipairs(xs) do
        local want = round_ref(fmt, x)
        assert(same_value(want, got[i]),
          string.format('%s: got %s, want %s', string.format('%a', x), string.format('%a', got[i]), string.format('%a', want)))
      end
    end)

    it('f32 -> ' .. H .. ' likewise, and ' .. H .. ' -> f32 / f64 exactly', function()
      -- the f32 values of the cases (rounded to f32 first: that is what an f32 tensor holds)
      local f = rl.tensor(cases(fmt), 'f64'):float()
      local xs = f:tolist()
      local b = to(f)
      local got = b:tolist()
      for i, x in ipairs(xs) do
        assert(same_value(round_ref(fmt, x), got[i]), string.format('%a -> %a', x, got[i]))
      end
      -- widening is exact: half -> f32 -> half and half -> f64 -> half keep every bit
      for _, back in ipairs { to(b:float()):tolist(), to(b:double()):tolist(), b:double():tolist() } do
        for i, v in ipairs(got) do assert(same_value(v, back[i])) end
      end
      -- NaN stays NaN, from f32 and from f64
      assert.is_true(b:isnan():sum():item() >= 1)
    end)

    it('every ' .. H .. ' value widens exactly and rounds back to itself', function()
      -- all 65536 bit patterns, read from a safetensors file written here
      local dir = shell.tmpdir()
      local path = dir .. '/all.safetensors'
      local bytes = {}
      for v = 0, 65535 do bytes[#bytes + 1] = string.pack('<I2', v) end
      local hdr = string.format('{"x":{"dtype":"%s","shape":[65536],"data_offsets":[0,131072]}}',
        H == 'bf16' and 'BF16' or 'F16')
      hdr = hdr .. string.rep(' ', (8 - #hdr % 8) % 8)
      local fh = assert(io.open(path, 'wb'))
      fh:write(string.pack('<I8', #hdr), hdr, table.concat(bytes))
      fh:close()
      local x = rl.load(path).x
      os.execute('rm -rf ' .. shell.quote(dir))
      local w = x:double():tolist()
      local back = to(x:float()):double():tolist()
      local nans = 0
      for v = 0, 65535 do
        local want -- the value of bit pattern v, decoded here
        local s, e, m
        if H == 'bf16' then
          s, e, m = v >> 15, (v >> 7) & 0xff, v & 0x7f
        else
          s, e, m = v >> 15, (v >> 10) & 0x1f, v & 0x3ff
        end
        local emax_field = fmt.emax - fmt.emin + 2 -- the exponent field all ones
        if e == emax_field then
          want = m == 0 and math.huge or 0 / 0
        elseif e == 0 then
          want = m * 2.0 ^ (fmt.emin - fmt.p + 1)
        else
          want = (2 ^ (fmt.p - 1) + m) * 2.0 ^ (e - 1 + fmt.emin - fmt.p + 1)
        end
        if s == 1 then want = -want end
        if want ~= want then nans = nans + 1 end
        assert(same_value(want, w[v + 1]), string.format('0x%04x: got %a, want %a', v, w[v + 1], want))
        assert(same_value(want, back[v + 1]), string.format('0x%04x did not round back to itself', v))
      end
      assert.are.equal(H == 'bf16' and 254 or 2046, nans)
    end)

    it('agrees with PyTorch bit for bit (f32 -> ' .. H .. ')', function()
      if not have_torch() then pending('python3/torch not available') return end
      local f = rl.tensor(cases(fmt), 'f64'):float()
      local dir = shell.tmpdir()
      rl.save(dir .. '/x.safetensors', { x = f, b = to(f) })
      local code = string.format([[
import sys
sys.path.insert(0, 'scripts')
import torch, torch_ref
t = torch_ref.load_safetensors(sys.argv[1])
assert t['b'].dtype == torch.%s, t['b'].dtype
mine = t['b'].view(torch.int16)
theirs = t['x'].to(torch.%s).view(torch.int16)
nan = torch.isnan(t['x'])
bad = ((mine != theirs) & ~nan).nonzero().flatten().tolist()
print('ok' if not bad and torch.isnan(t['b'].float()[nan]).all() else 'differ at %%s' %% bad[:5])
]], fmt.torch, fmt.torch)
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
      local a = to(rl.randn({ 6, 7 }, { generator = g }))
      local b = to(rl.randn({ 6, 7 }, { generator = g }))
      local af, bf = a:float(), b:float()
      local function same(x, y, what)
        assert.are.equal(H, x.dtype, what)
        local xs, ys = x:double():view(-1):tolist(), to(y):double():view(-1):tolist()
        for i = 1, #xs do
          assert(same_value(ys[i], xs[i]), string.format('%s at %d: %a against %a', what, i, xs[i], ys[i]))
        end
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
      -- with an f32 operand the result is f32, as PyTorch promotes; bf16
      -- with f16 gives f32 too
      assert.are.equal('f32', (a + bf).dtype)
      assert.are.equal('f32', (a:bf16() + a:half()).dtype)
      -- in place: computed as out of place, stored rounded
      local c = a:clone()
      c:mul_(bf)
      same(c, af * bf, 'mul_ by an f32 tensor')
      -- a number operand is not rounded to the half type first (2^p + 1
      -- is not held exactly)
      local n = 2 ^ fmt.p + 1
      same(a / n, af / n, 'div by a number')
      same(n / a, n / af, 'a number divided by it')
      local e = a:clone()
      e:div_(3)
      same(e, af / 3, 'div_ by a number')
      -- a sum of many is accumulated in f32, not in the half type (which
      -- would stop at 2^p)
      local ones = rl.ones(4096, H)
      assert.are.equal(4096, ones:sum():item())
    end)

    it('integers round once; randperm and Module:to know ' .. H, function()
      -- just above a tie (rounds up, not to even), a tie, an exact value;
      -- for bf16 beyond 2^53, where i64 -> f64 alone would round first
      local p, top = fmt.p, fmt.emax
      local big = 1 << math.min(top, 60)
      local v = big + (big >> p) + 1
      local got = to(rl.tensor({ v, -v, big + (big >> p), 12345 }, 'i64')):double():tolist()
      local step = 2.0 ^ (math.min(top, 60) - p + 1)
      assert.are.same({ big + step, -(big + step), big, round_ref(fmt, 12345) }, got)
      if H == 'f16' then
        local over = to(rl.tensor({ 65519, 65520, 1 << 60, -(1 << 40) }, 'i64')):double():tolist()
        assert.are.same({ 65504, math.huge, math.huge, -math.huge }, over)
      end
      local most = (1 << p) + 1
      assert.are.equal(most, rl.randperm(most, H):numel())
      assert.has_error(function() rl.randperm(most + 1, H) end,
        string.format('randperm: n = %d is too large for %s (its values must be exact)', most + 1, H))
      local bn = rl.nn.BatchNorm2d(3):to(H)
      assert.are.equal(H, bn.weight.dtype)
      assert.are.equal('i64', bn.num_batches_tracked.dtype)
    end)

    it('masked_fill_, where with a number, integer operands and randint keep to ' .. H, function()
      local x = to(rl.tensor({ 1, -2, 3 }))
      local y = x:clone()
      y:masked_fill_(x:gt(0), 0.1)
      assert.are.same(to(rl.tensor({ 0.1, -2, 0.1 })):tolist(), y:tolist())
      -- a number against the half type: the half type, the number rounded (as PyTorch)
      for _, r in ipairs { x:where(x:gt(0), 0.1), rl.where(x:gt(0), x, 0.1), rl.where(x:gt(0), 0.1, x) } do
        assert.are.equal(H, r.dtype)
      end
      assert.are.same(to(rl.tensor({ 1, 0.1, 3 })):tolist(), x:where(x:gt(0), 0.1):tolist())
      -- an integer tensor operand is rounded to the half type first
      local n = (1 << fmt.p) + 1 -- not held exactly: rounds to 2^p
      local one = to(rl.tensor({ 1 }))
      assert.are.same({ round_ref(fmt, 1 + 2 ^ fmt.p) }, (one + rl.tensor({ n }, 'i64')):tolist())
      assert.are.same({ 1 }, to(rl.tensor({ 2 ^ fmt.p })):eq(rl.tensor({ n }, 'i64')):tolist())
      -- randint draws only integers the type holds exactly
      local most = 1 << (fmt.p)
      local r = rl.randint(-most, most + 1, 1000, { dtype = H, generator = rl.Generator(3) })
      assert.is_true(r:abs():max():item() <= most)
      assert.has_error(function() rl.randint(0, most + 2, 4, H) end,
        string.format('randint: [0, %d) does not fit %s (its integers are exact in [%d, %d])', most + 2, H, -most, most))
      -- rl.help sees a contiguous half tensor as owning its storage
      assert.truthy(require('rl.help').describe(rl.zeros(4, H)):find('owns its storage', 1, true))
    end)

    it('rand, randn, uniform_ and normal_ give the f32 draws rounded, [lo, hi) kept', function()
      local a = rl.rand(50000, { dtype = H, generator = rl.Generator(4) })
      local b = rl.rand(50000, { generator = rl.Generator(4) })
      assert.are.equal(H, a.dtype)
      assert.is_true(a:max():item() < 1, 'a draw rounded up to 1')
      -- where rounding does not reach 1, the values are the f32 draws rounded
      local top = to(b):float():lt(1)
      assert.are.equal(0, (a:float() - to(b):float()):abs():masked_select(top):max():item())
      assert.is_true(top:logical_not():sum():item() > 0, 'no draw near 1: the clamp was not tried')
      local n = rl.randn(1000, { dtype = H, generator = rl.Generator(5) })
      assert.are.same(to(rl.randn(1000, { generator = rl.Generator(5) })):tolist(), n:tolist())
      local u = to(rl.empty(20000)):uniform_(-1, 0.5, rl.Generator(6))
      assert.is_true(u:min():item() >= -1 and u:max():item() < 0.5)
      local w = to(rl.empty(3, 4)):normal_(2, 0.5, rl.Generator(7))
      assert.are.same(to(rl.empty(3, 4):normal_(2, 0.5, rl.Generator(7))):tolist(), w:tolist())
      -- so modules can be made in the type
      assert.are.equal(H, rl.nn.Linear(3, 2, { dtype = H }).weight.dtype)
      assert.has_error(function() rl.rand(2, 'i64') end, 'rand: needs a float dtype (f32, f64, bf16, f16), got i64')
    end)

    it('a checkpoint saved in ' .. H .. ' loads into an f32 model, rounded values and all', function()
      local m = rl.nn.Linear(5, 3)
      local sd = {}
      for k, v in pairs(m:state_dict()) do sd[k] = to(v) end
      local dir = shell.tmpdir()
      rl.save(dir .. '/half.safetensors', sd)
      local m2 = rl.nn.Linear(5, 3)
      m2:load(dir .. '/half.safetensors')
      os.execute('rm -rf ' .. shell.quote(dir))
      assert.are.equal('f32', m2.weight.dtype)
      assert.are.same(to(m.weight):float():tolist(), m2.weight:tolist())
      assert.are.same(to(m.bias):float():tolist(), m2.bias:tolist())
    end)

    it('gradients flow through ' .. H .. ' and through the casts', function()
      local w = to(rl.randn(3, 4)):requires_grad_()
      local x = rl.randn(3, 4, 'f64'):requires_grad_()
      local l = (w * w):sum() + to(x * 2):sum()
      l:backward()
      assert.are.equal(H, w.grad.dtype)
      assert.are.same((w:detach() * 2):tolist(), w.grad:tolist())
      assert.are.equal('f64', x.grad.dtype)
      assert.are.same(rl.full({ 3, 4 }, 2, 'f64'):tolist(), x.grad:tolist())
    end)

    it('batch_norm takes ' .. H .. ' with f32 statistics and parameters: the f32 op on the widened input, rounded once',
      function()
        local F = rl.F
        local g = rl.Generator(31)
        local function same(a, b, what)
          assert.are.equal(b.dtype, a.dtype, what)
          assert.are.same(b.shape, a.shape, what)
          assert.are.equal(0, (a:double() - b:double()):abs():max():item(), what)
        end
        -- [N, C, S] planes, [N, C] rows (a loop of its own), and a
        -- transposed (non-contiguous) input
        for _, case in ipairs { { 6, 5, 4, 3 }, { 16, 7 }, { 6, 5, 4, 3, t = true } } do
          local C = case[2]
          local x = to(rl.randn({ table.unpack(case) }, { generator = g }) * 3 + 1)
          if case.t then x = x:transpose(3, 4) end
          local w, b = rl.randn({ C }, { generator = g }), rl.randn({ C }, { generator = g })
          local dy = to(rl.randn(x.shape, { generator = g }))
          local rm, rv, rmf, rvf = rl.zeros(C), rl.ones(C), rl.zeros(C), rl.ones(C)
          local xh, wh, bh = x:detach():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_()
          local xf, wf, bf = x:float():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_()
          local yh = F.batch_norm(xh, rm, rv, wh, bh, true, 0.1, 1e-5)
          local yf = F.batch_norm(xf, rmf, rvf, wf, bf, true, 0.1, 1e-5)
          local what = table.concat(x.shape, 'x') .. (case.t and ' transposed' or '')
          same(yh, to(yf), what .. ': output')
          same(rm, rmf, what .. ': running_mean')
          same(rv, rvf, what .. ': running_var')
          yh:backward(dy)
          yf:backward(dy:float())
          same(xh.grad, to(xf.grad), what .. ': the gradient of x')
          same(wh.grad, wf.grad, what .. ': the gradient of the weight')
          same(bh.grad, bf.grad, what .. ': the gradient of the bias')
          -- eval mode: the running statistics, differentiable in x
          local xe, xef = x:detach():requires_grad_(), x:float():requires_grad_()
          local eh, ef = F.batch_norm(xe, rm, rv, w, b, false), F.batch_norm(xef, rm, rv, w, b, false)
          same(eh, to(ef), what .. ': eval output')
          eh:backward(dy)
          ef:backward(dy:float())
          same(xe.grad, to(xef.grad), what .. ': eval, the gradient of x')
        end
        -- without weight and bias
        local x = to(rl.randn({ 4, 3, 5 }, { generator = g }))
        same(F.batch_norm(x, nil, nil, nil, nil, true), to(F.batch_norm(x:float(), nil, nil, nil, nil, true)),
          'no affine')
        -- the per-channel tensors must be f32, each named
        for i, what in ipairs { 'running_mean', 'running_var', 'weight', 'bias' } do
          local per = { rl.zeros(3), rl.ones(3), rl.ones(3), rl.zeros(3) }
          per[i] = to(per[i])
          local ok, err = pcall(F.batch_norm, x, per[1], per[2], per[3], per[4], true)
          assert.is_false(ok, what)
          assert.truthy(tostring(err):find('batch_norm: ' .. what .. ' is ' .. H .. ' but the input is ' .. H ..
            ' (a bf16 or f16 input takes f32 statistics, weight and bias, as in PyTorch)', 1, true), err)
        end
        -- and an f32 input still takes f32 ones only
        local ok, err = pcall(F.batch_norm, rl.randn(4, 3), nil, nil, to(rl.ones(3)), nil, true)
        assert.is_false(ok)
        assert.truthy(tostring(err):find('batch_norm: weight is ' .. H .. ' but the input is f32', 1, true), err)
      end)

    it('relu on ' .. H .. ' runs natively and saves its output, as f32 and the GPU do', function()
      local x = to(rl.tensor { -2, -0.5, 0.5, 3 }):requires_grad_()
      local y = x:relu()
      assert.are.same({ 0, 0, 0.5, 3 }, y:float():tolist())
      y:backward(to(rl.tensor { 1, 2, 3, 4 }))
      assert.are.same({ 0, 0, 3, 4 }, x.grad:float():tolist())
      -- an edit of the saved output is caught at backward (f32's message)
      local z = x:relu()
      rl.no_grad(function() z:mul_(2) end)
      local ok, err = pcall(function() z:sum():backward() end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find('relu: a tensor it saved for backward was modified by an in-place operation',
        1, true), err)
    end)

    it('ops without a ' .. H .. ' path refuse it by name', function()
      local x = to(rl.randn(2, 4))
      for what, f in pairs {
        softmax = function() return rl.F.softmax(x, 2) end,
        log_softmax = function() return rl.F.log_softmax(x, 2) end,
        cross_entropy = function() return rl.F.cross_entropy(x, rl.tensor({ 0, 3 }, 'i64')) end,
      } do
        local ok, err = pcall(f)
        assert.is_false(ok, what)
        assert.truthy(tostring(err):find(what .. ': not defined for ' .. H, 1, true), err)
      end
      if H == 'bf16' then
        -- linear and matmul take bf16, but not mixed with f32 in linear
        local ok, err = pcall(rl.F.linear, x, rl.randn(3, 4))
        assert.is_false(ok)
        assert.truthy(tostring(err):find('one float dtype, got bf16, f32', 1, true), err)
      else
        -- f16 has no convolution, linear or pooling: refused by name
        for what, f in pairs {
          linear = function() return rl.F.linear(x, to(rl.randn(3, 4))) end,
          conv2d = function() return rl.F.conv2d(x:view(1, 2, 2, 2), to(rl.randn(1, 2, 1, 1))) end,
          max_pool2d = function() return rl.F.max_pool2d(x:view(1, 2, 2, 2), 2) end,
        } do
          local ok, err = pcall(f)
          assert.is_false(ok, what)
          assert.truthy(tostring(err):find(what .. ': not defined for f16', 1, true), err)
        end
      end
      if rl.cuda and rl.cuda.is_available and rl.cuda.is_available() then
        -- on the GPU too (spec/cuda_spec.lua checks its kernels); a half
        -- checkpoint loads into an f32 model there, converted on the GPU
        local xc = x:cuda()
        assert.are.equal(H, xc.dtype)
        local dst = rl.zeros(2, 4):cuda()
        dst:copy_(x)
        assert.are.same(x:float():tolist(), dst:cpu():tolist())
      end
      assert.are.equal(H, rl.zeros(2, fmt.alias).dtype)
      assert.are.equal(2, rl.tensor({ 1.5, 2 }, H):numel())
    end)
  end)
end

describe('bf16 kernels (rl.autocast\'s compute type, CPU)', function()
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

end)
