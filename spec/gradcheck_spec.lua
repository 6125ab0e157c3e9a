-- gradcheck_spec.lua - every differentiable op against central differences
-- in f64, on odd shapes, with strides, padding and non-contiguous inputs.
local rl = require 'rl'
local gc = require 'helpers.gradcheck'
local F = rl.F

local g = rl.Generator(2024)
local function leaf(...) return gc.leaf(g, ...) end
-- strictly positive leaves (log, sqrt, pow, division)
local function pos(...)
  local size = { ... }
  return rl.no_grad(function()
    return (rl.rand(size, { dtype = 'f64', generator = g }) + 0.5)
  end):requires_grad_()
end

local function check(name, f, inputs, opts)
  it(name, function()
    local ok, msg = gc.gradcheck(f, inputs, opts)
    assert(ok, msg)
  end)
end

describe('gradcheck: pointwise', function()
  for _, op in ipairs { 'neg', 'abs', 'exp', 'sigmoid', 'tanh', 'square', 'sin', 'cos', 'expm1' } do
    check(op, function(x) return x[op](x) end, { leaf(3, 4) })
  end
  for _, op in ipairs { 'log', 'sqrt', 'rsqrt', 'reciprocal', 'log1p' } do
    check(op, function(x) return x[op](x) end, { pos(3, 4) })
  end
  check('relu (away from 0)', function(x) return x:relu() end, { leaf(5, 3) })
  check('clamp', function(x) return x:clamp(-0.5, 0.5) end, { leaf(4, 4) })
  check('clamp_min / clamp_max', function(x) return x:clamp(-0.3) + x:clamp(nil, 0.2) end, { leaf(6) })
  check('pow by a number', function(x) return x ^ 3 end, { leaf(4) })
  check('number ^ x', function(x) return 2 ^ x end, { leaf(4) })
  check('number / x', function(x) return 3 / x end, { pos(4) })
  check('affine x * 2 - 1', function(x) return x * 2 - 1 end, { leaf(2, 3) })
  check('add / sub with broadcasting and alpha', function(a, b) return a:add(b, 0.5) - b end,
    { leaf(3, 1, 4), leaf(2, 4) })
  check('mul with broadcasting', function(a, b) return a * b end, { leaf(3, 1), leaf(1, 5) })
  check('div', function(a, b) return a / b end, { leaf(3, 4), pos(4) })
  check('pow of tensors', function(a, b) return a:pow(b) end, { pos(3), leaf(3) })
  check('maximum / minimum', function(a, b) return a:maximum(b) + a:minimum(b) end, { leaf(7), leaf(7) })
  check('where', function(a, b) return rl.where(a:gt(0), a, b) end, { leaf(3, 3), leaf(3) })
  check('masked_fill', function(a) return a:masked_fill(a:lt(0), 2) end, { leaf(10) })
  check('addcmul / addcdiv / lerp', function(a, b, c)
    return a:addcmul(b, c, 0.5) + a:addcdiv(b, c, 2) + a:lerp(b, 0.3)
  end, { leaf(4), leaf(4), pos(4) })
  check('non-contiguous input (transposed)', function(x) return x:t():exp() * 2 end, { leaf(3, 5) })
end)

describe('gradcheck: reductions', function()
  check('sum over dims, keepdim', function(x) return x:sum({ 1, 3 }, true) end, { leaf(2, 3, 4) })
  check('mean', function(x) return x:mean(2) end, { leaf(3, 5) })
  check('prod', function(x) return x:prod(1) end, { pos(3, 2) })
  check('max / min of all', function(x) return x:max() + x:min() end, { leaf(4, 3) })
  check('max along a dim', function(x) local v = x:max(2); return v end, { leaf(4, 5) })
  check('min along a dim, keepdim', function(x) local v = x:min(1, true); return v end, { leaf(3, 4) })
  check('norm p=2', function(x) return x:norm(2, 2) end, { leaf(3, 4) })
  check('norm p=1', function(x) return x:norm(1) end, { leaf(3, 4) })
  check('norm p=inf', function(x) return x:norm(math.huge, 1) end, { leaf(3, 4) })
  check('norm p=3', function(x) return x:norm(3, { 1, 2 }) end, { leaf(3, 4) })
  check('var / std', function(x) return x:var(2):sum() + x:std(1, false):sum() + x:std() end, { leaf(4, 5) })
  check('logsumexp', function(x) return x:logsumexp(2) end, { leaf(3, 6) })
end)

-- Where the textbook rule divides by zero (prod over a zero, std of a
-- constant, 0^0), PyTorch's values, exactly: central differences alone
-- would not do, as gc.gradcheck reads a NaN gradient as agreeing.
describe('gradcheck: at zeros, as PyTorch', function()
  local function f64(t) return rl.tensor(t, 'f64'):requires_grad_() end
  local function flat(v, out)
    out = out or {}
    if type(v) ~= 'table' then out[#out + 1] = v; return out end
    for _, e in ipairs(v) do flat(e, out) end
    return out
  end
  -- want[i]: the gradient of the scalar f(inputs...) for input i
  local function grad_is(name, f, inputs, want, tol)
    it(name, function()
      local grads = rl.grad(f(table.unpack(inputs)), inputs)
      for i, w in ipairs(want) do
        local got, exp = flat(grads[i]:tolist()), flat(w)
        assert.are.equal(#exp, #got)
        for k = 1, #exp do
          local ok = got[k] == exp[k] or math.abs(got[k] - exp[k]) <= (tol or 0)
          assert(ok, ('input %d element %d: got %s, want %s'):format(i, k, got[k], exp[k]))
        end
      end
    end)
  end
  grad_is('prod of all with one zero: the product of the others there',
    function(x) return x:prod() end, { f64 { 0, 2, 3 } }, { { 6, 0, 0 } })
  grad_is('prod of all with two zeros: 0 everywhere',
    function(x) return x:prod() end, { f64 { 0, 2, 0 } }, { { 0, 0, 0 } })
  grad_is('prod along dim 2: no zero, one zero, two zeros per row, weighted',
    function(x) return (x:prod(2) * rl.tensor({ 1, 2, 3 }, 'f64')):sum() end,
    { f64 { { 0, 2, 3 }, { 0, 0, 1 }, { 1, 2, 4 } } },
    { { { 6, 0, 0 }, { 0, 0, 0 }, { 24, 12, 6 } } })
  grad_is('prod along dim 1, keepdim',
    function(x) return x:prod(1, true):sum() end,
    { f64 { { 0, 2, 3 }, { 0, 0, 1 }, { 1, 2, 4 } } },
    { { { 0, 0, 4 }, { 0, 4, 12 }, { 0, 0, 3 } } })
  check('prod with zeros, by central differences', function(x) return x:prod(2) end,
    { f64 { { 0, 2, 3 }, { 0, 0, 1 }, { 1, 2, 4 } } })
  grad_is('std of a constant: 0, not NaN', function(x) return x:std() end,
    { f64 { 0, 0, 0 } }, { { 0, 0, 0 } })
  grad_is('std along a dim, one row constant',
    function(x) return x:std(2):sum() end,
    { f64 { { 1, 1, 1 }, { 1, 2, 3 } } }, { { { 0, 0, 0 }, { -0.5, 0, 0.5 } } }, 1e-15)
  grad_is('x ^ 0 at x = 0: 0', function(x) return (x ^ 0):sum() + x:pow(0):sum() end,
    { f64 { 0, 2 } }, { { 0, 0 } })
  grad_is('tensor ^ tensor: 0 where b = 0, and no log(0) where a = 0, b >= 0',
    function(a, b) return a:pow(b):sum() end,
    { f64 { 0, 2, 0, 3, 0 }, f64 { 0, -1, 2, 0, -1 } },
    { { 0, -0.25, 0, 0, -math.huge }, { 0, 0.5 * math.log(2), 0, math.log(3), -math.huge } }, 1e-15)
  grad_is('0 ^ x: 0 where x >= 0', function(x) return (0 ^ x):sum() end,
    { f64 { 1, 2, 0, -1 } }, { { 0, 0, 0, -math.huge } })
end)

describe('gradcheck: shapes and indexing', function()
  check('view / reshape / flatten', function(x) return x:view(6, 2):reshape(3, 4):flatten() * 1 end,
    { leaf(2, 6) })
  check('permute / narrow / select', function(x)
    return x:permute(3, 1, 2):narrow(2, 2, 2):select(3, 1) * 1
  end, { leaf(3, 2, 4) })
  check('expand / unsqueeze / squeeze', function(x) return x:unsqueeze(1):expand(3, 4):squeeze() * 1 end,
    { leaf(4) })
  check('cat / stack', function(a, b)
    return rl.cat({ a, b }, 2):sum(1):sum() + rl.stack({ a, b:narrow(2, 1, 2) }, 1):sum({ 1, 2 })
  end, { leaf(3, 2), leaf(3, 5) })
  check('index_select', function(x) return x:index_select(2, rl.tensor { 2, 0, 2 }) end, { leaf(3, 4) })
  check('gather', function(x) return x:gather(2, rl.tensor { { 0, 1 }, { 3, 3 }, { 2, 0 } }) end,
    { leaf(3, 4) })
  check('index_add', function(x, s)
    return x:index_add(2, rl.tensor { 2, 0, 2 }, s)
  end, { leaf(3, 4), leaf(3, 3) })
  check('scatter_add', function(x, s)
    return x:scatter_add(1, rl.tensor { { 0, 1, 1 }, { 2, 0, 1 } }, s)
  end, { leaf(3, 3), leaf(2, 3) })
  check('masked_select', function(x) return x:masked_select(rl.tensor { true, false, true }) end,
    { leaf(2, 3) })
end)

describe('gradcheck: linear algebra', function()
  check('matmul 2-D', function(a, b) return a:matmul(b) end, { leaf(3, 4), leaf(4, 2) })
  check('matmul transposed operands', function(a, b) return a:t():matmul(b:t()) end,
    { leaf(4, 3), leaf(2, 4) })
  check('matmul 1-D x 2-D and 2-D x 1-D', function(v, m) return v:matmul(m):sum() + m:t():matmul(v) end,
    { leaf(3), leaf(3, 3) })
  check('matmul broadcast batches', function(a, b) return a:matmul(b) end, { leaf(2, 1, 3, 4), leaf(3, 4, 2) })
  check('linear with bias', function(x, w, b) return F.linear(x, w, b) end, { leaf(5, 3), leaf(4, 3), leaf(4) })
  check('linear on a 3-D input without bias', function(x, w) return F.linear(x, w) end,
    { leaf(2, 3, 3), leaf(2, 3) })
end)

describe('gradcheck: convolution and pooling', function()
  check('conv2d plain', function(x, w, b) return F.conv2d(x, w, b) end,
    { leaf(2, 2, 5, 5), leaf(3, 2, 3, 3), leaf(3) })
  check('conv2d stride 2, padding 1, no bias', function(x, w) return F.conv2d(x, w, nil, { stride = 2, padding = 1 }) end,
    { leaf(2, 3, 6, 5), leaf(2, 3, 3, 3) })
  check('conv2d dilation 2, rectangular kernel, asymmetric stride', function(x, w, b)
    return F.conv2d(x, w, b, { dilation = 2, stride = { 1, 2 }, padding = { 2, 1 } })
  end, { leaf(1, 2, 7, 6), leaf(2, 2, 2, 3), leaf(2) })
  check('conv2d on a non-contiguous input', function(x, w)
    return F.conv2d(x:transpose(3, 4), w, nil, { padding = 1 })
  end, { leaf(2, 1, 5, 4), leaf(2, 1, 3, 3) })

  -- A batch big enough to be split over threads (the gradchecks above are
  -- small enough to run on one thread): forward, dx, dw and db against sums written
  -- out in Lua, and bit-identical for one and two threads.
  it('conv2d split over threads matches direct sums, for any thread count', function()
    local N, C, H, W, O, k, s, p = 7, 4, 16, 15, 6, 3, 2, 1
    local x, w, b = leaf(N, C, H, W), leaf(O, C, k, k), leaf(O)
    local OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    local dy = rl.randn({ N, O, OH, OW }, { dtype = 'f64', generator = g })
    local X, Wt, B, DY = x:tolist(), w:tolist(), b:tolist(), dy:tolist()
    local Y, DX, DW = {}, {}, {}
    for n = 1, N do
      DX[n] = {}
      for c = 1, C do
        DX[n][c] = {}
        for h = 1, H do DX[n][c][h] = {}; for q = 1, W do DX[n][c][h][q] = 0 end end
      end
    end
    for o = 1, O do
      DW[o] = {}
      for c = 1, C do
        DW[o][c] = {}
        for i = 1, k do DW[o][c][i] = {}; for j = 1, k do DW[o][c][i][j] = 0 end end
      end
    end
    for n = 1, N do
      Y[n] = {}
      for o = 1, O do
        Y[n][o] = {}
        for oh = 1, OH do
          Y[n][o][oh] = {}
          for ow = 1, OW do
            local acc, gy = B[o], DY[n][o][oh][ow]
            for c = 1, C do
              for i = 1, k do
                for j = 1, k do
                  local h, q = (oh - 1) * s - p + i, (ow - 1) * s - p + j
                  if h >= 1 and h <= H and q >= 1 and q <= W then
                    acc = acc + Wt[o][c][i][j] * X[n][c][h][q]
                    DX[n][c][h][q] = DX[n][c][h][q] + Wt[o][c][i][j] * gy
                    DW[o][c][i][j] = DW[o][c][i][j] + X[n][c][h][q] * gy
                  end
                end
              end
            end
            Y[n][o][oh][ow] = acc
          end
        end
      end
    end
    local prev, runs = rl.get_num_threads(), {}
    for t = 1, 2 do
      rl.set_num_threads(t)
      x.grad, w.grad, b.grad = nil, nil, nil
      local y = F.conv2d(x, w, b, { stride = s, padding = p })
      y:backward(dy)
      runs[t] = { y, x.grad, w.grad, b.grad }
    end
    rl.set_num_threads(prev)
    local want = { rl.tensor(Y, 'f64'), rl.tensor(DX, 'f64'), rl.tensor(DW, 'f64'), dy:sum({ 1, 3, 4 }) }
    for i, name in ipairs { 'y', 'dx', 'dw', 'db' } do
      local err = (runs[1][i] - want[i]):abs():max():item()
      assert(err < 1e-12, name .. ' differs from the direct sum by ' .. err)
      assert(runs[1][i]:eq(runs[2][i]):all():item() == 1, name .. ' differs between 1 and 2 threads')
    end
  end)

  -- The stride-1 path that goes tap by tap, in chunks of images, on shapes
  -- big enough for chunks and threads: against the definition written with
  -- other ops (zero padding by cat, shifted views, one matmul), forward
  -- and backward, and bit-identical for one and two threads.
  it('conv2d tap by tap matches its definition by shifted matmuls, for any thread count', function()
    local function reference(x, w, b, p)
      local N, C, H, W = table.unpack(x:size())
      local O, k = w:size(1), w:size(3)
      if p > 0 then
        local zr = rl.zeros({ N, C, p, W }, 'f64')
        x = rl.cat({ zr, x, zr }, 3)
        local zc = rl.zeros({ N, C, H + 2 * p, p }, 'f64')
        x = rl.cat({ zc, x, zc }, 4)
      end
      local OH, OW = H + 2 * p - k + 1, W + 2 * p - k + 1
      local taps = {}
      for i = 1, k do
        for j = 1, k do taps[#taps + 1] = x:narrow(3, i, OH):narrow(4, j, OW) end
      end
      local col = rl.stack(taps, 3):reshape(N, C * k * k, OH * OW)
      local y = w:reshape(O, C * k * k):matmul(col) + b:view(1, O, 1)
      return y:view(N, O, OH, OW)
    end
    -- f64 goes through BLAS; f32's forward through the CPU's own loops
    -- (Winograd F(2x2, 3x3) for these 3x3 kernels, odd sizes included), held
    -- to f32 rounding (sums of up to 360 products) against f64
    for _, dc in ipairs { { 'f64', 1e-13 }, { 'f32', 1e-5 } } do
      -- (3x3 kernels with 10+ output columns take Winograd in f32; the 1x1
      -- case keeps the tap loop's f32 forward covered)
      for ci, c in ipairs { { 5, 40, 24, 24, 24, 1 }, { 4, 32, 26, 26, 32, 0 }, { 3, 12, 17, 23, 13, 1 },
                            { 4, 16, 9, 11, 12, 0, 1 } } do
        local N, C, H, W, O, p = table.unpack(c)
        local k = c[7] or 3
        local x64, w64, b64 = leaf(N, C, H, W), leaf(O, C, k, k), leaf(O)
        local dy64 = rl.randn({ N, O, H + 2 * p - k + 1, W + 2 * p - k + 1 }, { dtype = 'f64', generator = g })
        local x, w, b, dy = x64, w64, b64, dy64
        if dc[1] == 'f32' then
          x, w, b = x64:detach():float():requires_grad_(), w64:detach():float():requires_grad_(),
            b64:detach():float():requires_grad_()
          dy = dy64:float()
          -- the reference sees exactly the f32 values
          x64, w64, b64 = x:detach():double():requires_grad_(), w:detach():double():requires_grad_(),
            b:detach():double():requires_grad_()
          dy64 = dy:double()
        end
        local function run(f, xx, ww, bb, gy)
          xx.grad, ww.grad, bb.grad = nil, nil, nil
          local y = f(xx, ww, bb)
          y:backward(gy)
          return { y, xx.grad, ww.grad, bb.grad }
        end
        local want = run(function(xx, ww, bb) return reference(xx, ww, bb, p) end, x64, w64, b64, dy64)
        local prev, runs = rl.get_num_threads(), {}
        for t = 1, 2 do
          rl.set_num_threads(t)
          runs[t] = run(function(xx, ww, bb) return F.conv2d(xx, ww, bb, { padding = p }) end, x, w, b, dy)
        end
        rl.set_num_threads(prev)
        for i, name in ipairs { 'y', 'dx', 'dw', 'db' } do
          local err = ((runs[1][i]:double() - want[i]):abs():max() / want[i]:abs():max()):item()
          assert(err < dc[2], string.format('%s %s (shape %d) differs from the definition by %g',
            dc[1], name, ci, err))
          assert(runs[1][i]:eq(runs[2][i]):all():item() == 1,
            string.format('%s %s (shape %d) differs between 1 and 2 threads', dc[1], name, ci))
        end
      end
    end
  end)

  -- The engine's paths, Winograd F(2x2, 3x3) and im2col + batched GEMM, are
  -- what CUDA runs (with these same transforms, engine/winograd.h); the CPU
  -- has its own kernels, so the specs switch to them here: gradchecks, and
  -- the same values as the CPU kernels on every geometry, in one chunk of
  -- images and in one chunk per image.
  for _, path in ipairs { 'im2col', 'winograd' } do
    describe('the ' .. path .. ' path (as on CUDA)', function()
      before_each(function() rl._conv_path(path) end)
      after_each(function() rl._conv_path('auto') end)
      check('conv2d plain', function(x, w, b) return F.conv2d(x, w, b) end,
        { leaf(3, 2, 5, 5), leaf(3, 2, 3, 3), leaf(3) })
      check('conv2d 3x3 padding 1, odd plane', function(x, w, b) return F.conv2d(x, w, b, { padding = 1 }) end,
        { leaf(2, 3, 5, 6), leaf(4, 3, 3, 3), leaf(4) })
      check('conv2d 3x3 padding (2, 0)', function(x, w) return F.conv2d(x, w, nil, { padding = { 2, 0 } }) end,
        { leaf(2, 2, 4, 7), leaf(3, 2, 3, 3) })
      check('conv2d stride 2, padding 1, dilation 2', function(x, w) return F.conv2d(x, w, nil,
        { stride = 2, padding = 1, dilation = 2 }) end, { leaf(2, 3, 7, 6), leaf(2, 3, 2, 3) })
      it('agrees with the CPU kernels, forward and backward, in chunks too', function()
        for _, c in ipairs {
          { { 5, 16, 12, 12 }, { 8, 16, 3, 3 }, { padding = 1 } },
          { { 3, 5, 7, 9 }, { 6, 5, 3, 3 }, { padding = 2 } },
          { { 4, 6, 9, 8 }, { 5, 6, 3, 3 }, {} },
          -- 65 x 64 tiles: Winograd's dW cuts its k into two chunks (33 and
          -- 32 images), the second a GEMM of its own
          { { 65, 2, 16, 16 }, { 3, 2, 3, 3 }, { padding = 1 } },
          { { 4, 3, 11, 9 }, { 6, 3, 3, 3 }, { stride = 2, padding = 1 } },
          { { 3, 8, 10, 10 }, { 4, 8, 3, 2 }, { dilation = 2, padding = { 2, 1 } } },
          { { 3, 8, 8, 8 }, { 6, 8, 1, 1 }, { stride = 2 } },
        } do
          local x, w, b = leaf(table.unpack(c[1])), leaf(table.unpack(c[2])), leaf(c[2][1])
          local runs = {}
          for k, mode in ipairs { { 'auto' }, { path }, { path, 1 } } do
            rl._conv_path(mode[1], mode[2])
            x.grad, w.grad, b.grad = nil, nil, nil
            local y = F.conv2d(x, w, b, c[3])
            y:backward(rl.linspace(-1, 1, y:numel(), 'f64'):view(y:size()))
            runs[k] = { y, x.grad, w.grad, b.grad }
          end
          for k = 2, 3 do
            for i, name in ipairs { 'y', 'dx', 'dw', 'db' } do
              local err = ((runs[k][i] - runs[1][i]):abs():max() / runs[1][i]:abs():max()):item()
              assert(err < 1e-12, string.format('%s (input %s, %s) differs by %g', name,
                table.concat(c[1], 'x'),
                k == 3 and 'a chunk per image' or 'one chunk', err))
            end
          end
        end
      end)
    end)
  end

  it('conv2d with nothing to multiply: empty batch, no channels in or out', function()
    finally(function() rl._conv_path('auto') end)
    for _, path in ipairs { 'auto', 'im2col', 'winograd' } do
      rl._conv_path(path)
      for _, c in ipairs {
        { { 0, 8, 5, 5 }, { 4, 8, 3, 3 }, { 0, 4, 3, 3 } },
        { { 2, 8, 5, 5 }, { 0, 8, 3, 3 }, { 2, 0, 3, 3 } },
        { { 2, 0, 5, 5 }, { 3, 0, 3, 3 }, { 2, 3, 3, 3 } },
      } do
        local x, w, b = leaf(table.unpack(c[1])), leaf(table.unpack(c[2])), leaf(c[2][1])
        local y = F.conv2d(x, w, b)
        assert.are.same(c[3], y:size())
        y:backward(rl.ones(y:size(), 'f64'))
        assert.are.same(c[1], x.grad:size())
        assert.are.same(c[2], w.grad:size())
        assert.are.equal(0, x.grad:abs():sum():item())
        assert.are.equal(0, w.grad:abs():sum():item())
        -- y is the bias where there are outputs; its gradient counts them
        if y:numel() > 0 then
          assert.are.equal(0, (y - b:view(1, -1, 1, 1)):abs():max():item())
        end
        assert.are.equal(y:numel(), b.grad:sum():item())
      end
    end
  end)
  check('max_pool2d 2x2', function(x) return F.max_pool2d(x, 2) end, { leaf(2, 2, 6, 6) })
  check('max_pool2d 3x3 stride 2 padding 1', function(x) return F.max_pool2d(x, 3, { stride = 2, padding = 1 }) end,
    { leaf(1, 2, 7, 7) })
  check('avg_pool2d 2x2', function(x) return F.avg_pool2d(x, 2) end, { leaf(2, 2, 4, 6) })
  check('avg_pool2d padding, count_include_pad = false', function(x)
    return F.avg_pool2d(x, 3, { stride = 2, padding = 1, count_include_pad = false })
  end, { leaf(1, 2, 5, 5) })
  check('avg_pool2d padding, count_include_pad = true', function(x)
    return F.avg_pool2d(x, 3, { stride = 2, padding = 1 })
  end, { leaf(1, 2, 5, 5) })
  check('adaptive_avg_pool2d to 1x1', function(x) return F.adaptive_avg_pool2d(x, 1) end, { leaf(2, 3, 4, 5) })
end)

describe('gradcheck: normalisation and dropout', function()
  check('batch_norm training (4-D)', function(x, w, b)
    return F.batch_norm(x, nil, nil, w, b, true)
  end, { leaf(3, 2, 3, 3), leaf(2), leaf(2) })
  check('batch_norm training (2-D, no affine)', function(x)
    return F.batch_norm(x, nil, nil, nil, nil, true)
  end, { leaf(5, 3) })
  check('batch_norm eval', function(x, w, b)
    local rm, rv = rl.tensor({ 0.1, -0.2 }, 'f64'), rl.tensor({ 1.5, 0.7 }, 'f64')
    return F.batch_norm(x, rm, rv, w, b, false)
  end, { leaf(2, 2, 3, 3), leaf(2), leaf(2) })
  -- weight and bias as strided views (every other element of a [2, 2])
  check('batch_norm training and eval, strided weight and bias', function(x, W, B)
    local w, b = W:select(2, 1), B:select(2, 2)
    local rm, rv = rl.tensor({ 0.1, -0.2 }, 'f64'), rl.tensor({ 1.5, 0.7 }, 'f64')
    return F.batch_norm(x, nil, nil, w, b, true) + F.batch_norm(x, rm, rv, w, b, false)
  end, { leaf(3, 2, 4), leaf(2, 2), leaf(2, 2) })
  check('batch_norm training (bias only)', function(x, b)
    return F.batch_norm(x, nil, nil, nil, b, true)
  end, { leaf(3, 2, 4), leaf(2) })
  check('batch_norm eval (bias only)', function(x, b)
    local rm, rv = rl.tensor({ 0.1, -0.2 }, 'f64'), rl.tensor({ 1.5, 0.7 }, 'f64')
    return F.batch_norm(x, rm, rv, nil, b, false)
  end, { leaf(3, 2, 4), leaf(2) })
  check('batch_norm eval (2-D, weight only)', function(x, w)
    local rm, rv = rl.tensor({ 0.1, -0.2, 0.3 }, 'f64'), rl.tensor({ 1.5, 0.7, 2 }, 'f64')
    return F.batch_norm(x, rm, rv, w, nil, false)
  end, { leaf(4, 3), leaf(3) })
  -- running statistics that require a gradient take the composed path
  check('batch_norm eval, gradients to the running statistics too', function(x, rm, rv, b)
    return F.batch_norm(x, rm, rv, nil, b, false)
  end, { leaf(2, 2, 3, 3), leaf(2), rl.tensor({ 1.5, 0.7 }, 'f64'):requires_grad_(), leaf(2) })
  local dg = rl.Generator(9)
  local st = dg:get_state()
  check('dropout (one fixed mask)', function(x)
    dg:set_state(st)
    return F.dropout(x, 0.4, true, dg)
  end, { leaf(4, 5) })
  check('dropout2d (one fixed mask)', function(x)
    dg:set_state(st)
    return F.dropout2d(x, 0.5, true, dg)
  end, { leaf(3, 4, 2, 2) })
end)

describe('gradcheck: softmax and losses', function()
  check('softmax / log_softmax over dim 2', function(x) return F.softmax(x, 2) + F.log_softmax(x, 2) end,
    { leaf(3, 5) })
  check('softmax over dim 1 (moved to the last)', function(x) return F.softmax(x, 1) end, { leaf(4, 3, 2) })
  local y = rl.tensor { 2, 0, 4, 1 }
  check('cross_entropy mean', function(x) return F.cross_entropy(x, y) end, { leaf(4, 5) })
  check('cross_entropy sum', function(x) return F.cross_entropy(x, y, 'sum') end, { leaf(4, 5) })
  check('cross_entropy none', function(x) return F.cross_entropy(x, y, 'none') end, { leaf(4, 5) })
  check('nll_loss', function(x) return F.nll_loss(F.log_softmax(x, 2), y) end, { leaf(4, 5) })
  check('kl_div sum, gradient to both sides', function(a, b)
    return F.kl_div(F.log_softmax(a, 2), F.softmax(b, 2), 'sum')
  end, { leaf(3, 4), leaf(3, 4) })
  check('kl_div batchmean with log_target', function(a, b)
    return F.kl_div(F.log_softmax(a, 2), F.log_softmax(b, 2), 'batchmean', true)
  end, { leaf(3, 4), leaf(3, 4) })
  check('mse_loss', function(a, b) return F.mse_loss(a, b) end, { leaf(3, 4), leaf(3, 4) })
end)
