-- rl.autocast (issue #15, its CPU part): which precision each op takes,
-- that parameters and their gradients stay f32, that attacks and
-- measurements stay f32 unless asked, a CNN002 training step against the
-- f32 one, determinism, and the options' errors.
local rl = require 'rl'
local F = rl.F

local function max_rel(a, b)
  return ((a:double() - b:double()):abs():max() / b:double():abs():max()):item()
end

local function bits_equal(a, b)
  return a.dtype == b.dtype and (a:double() - b:double()):abs():max():item() == 0
end

describe('rl.autocast (issue #15, CPU)', function()
  local g = rl.Generator(3)
  local x = rl.randn({ 4, 3, 10, 10 }, { generator = g })
  local w = rl.randn({ 8, 3, 3, 3 }, { generator = g })
  local b = rl.randn({ 8 }, { generator = g })

  it('conv2d and linear run on bf16 operands with f32 sums and give bf16', function()
    local y = rl.autocast('bf16', F.conv2d, x, w, b, { padding = 1 })
    assert.are.equal('bf16', y.dtype)
    -- the engine's bf16 convolution (oneDNN's bf16 kernels, or the f32 ones
    -- on the widened operands: engine/cpu/cpu_conv.c) on the rounded operands
    assert.is_true(bits_equal(F.conv2d(x:bf16(), w:bf16(), b:bf16(), { padding = 1 }), y))
    -- which is the f32 convolution of the rounded operands, rounded once
    local want = F.conv2d(x:bf16():float(), w:bf16():float(), b:bf16():float(), { padding = 1 })
    assert.is_true(((y:double() - want:double()):abs() - want:double():abs() * 2 ^ -8):max():item() <= 1e-5)
    -- and close to the f32 convolution (bf16 keeps 8 significant bits)
    assert.is_true(max_rel(y, F.conv2d(x, w, b, { padding = 1 })) < 2e-2)
    local l = rl.autocast('bf16', F.linear, rl.randn(5, 7), rl.randn(3, 7))
    assert.are.equal('bf16', l.dtype)
    -- outside a region nothing changes, nor does f64 inside one (as PyTorch)
    assert.are.equal('f32', F.conv2d(x, w, b).dtype)
    assert.are.equal('f64', rl.autocast('bf16', F.conv2d, x:double(), w:double(), b:double()).dtype)
  end)

  it('softmax and the losses run in f32; batch norm (in f32) and pooling keep their input dtype', function()
    rl.autocast('bf16', function()
      local h = F.conv2d(x, w, b, { padding = 1 })
      assert.are.equal('bf16', h.dtype)
      assert.are.equal('bf16', F.max_pool2d(h, 2).dtype)
      assert.are.equal('bf16', h:relu().dtype)
      -- batch norm as PyTorch's autocast leaves it: f32 statistics and
      -- parameters, f32 arithmetic, the input's dtype out (bit for bit the
      -- f32 op on the widened input, rounded: spec/half_spec.lua)
      local rm, rv = rl.zeros(8), rl.ones(8)
      local n = F.batch_norm(h, rm, rv, rl.ones(8), rl.zeros(8), true)
      assert.are.equal('bf16', n.dtype)
      assert.are.equal('f32', rm.dtype)
      assert.are.same(F.batch_norm(h:float(), nil, nil, nil, nil, true):bf16():float():tolist(),
        F.batch_norm(h, nil, nil, nil, nil, true):float():tolist())
      assert.are.equal('f32', F.batch_norm(h:float(), nil, nil, nil, nil, true).dtype)
      local z = F.linear(h:view(4, -1), rl.randn(10, 800))
      assert.are.equal('f32', F.softmax(z, 2).dtype)
      assert.are.equal('f32', F.log_softmax(z, 2).dtype)
      assert.are.equal('f32', F.cross_entropy(z, rl.tensor { 0, 1, 2, 3 }).dtype)
      assert.are.equal('bf16', rl.autocast.state())
      -- a region in f32 inside
      rl.autocast('fp32', function()
        assert.are.equal('fp32', rl.autocast.state())
        assert.are.equal('f32', F.conv2d(x, w, b).dtype)
      end)
      assert.are.equal('bf16', rl.autocast.state())
    end)
    assert.are.equal('fp32', rl.autocast.state())
  end)

  it('the state is restored when the function raises', function()
    local ok = pcall(rl.autocast, 'bf16', function() error('boom') end)
    assert.is_false(ok)
    assert.are.equal('fp32', rl.autocast.state())
  end)

  it('parameters and their gradients stay f32 (master weights)', function()
    rl.manual_seed(1)
    local m = rl.models.CNN002 {}
    local xb, yb = rl.rand(8, 1, 28, 28), rl.tensor { 0, 1, 2, 3, 4, 5, 6, 7 }
    local loss = rl.autocast('bf16', function() return F.cross_entropy(m(xb), yb) end)
    assert.are.equal('f32', loss.dtype)
    loss:backward()
    for _, np in ipairs(m:named_parameters()) do
      local name, p = np[1], np[2]
      assert.are.equal('f32', p.dtype, name)
      assert.are.equal('f32', p.grad.dtype, name)
    end
  end)

  it('attacks and measurements run in f32 inside a region, unless the region allows bf16 attacks', function()
    rl.manual_seed(2)
    local model = rl.models.CNN001 {}
    local seen = {}
    local forward = model.forward
    model.forward = function(self, t) -- this instance's forward notes the precision in force
      seen[#seen + 1] = rl.autocast.state()
      return forward(self, t)
    end
    local xb, yb = rl.rand(4, 1, 28, 28), rl.tensor { 1, 2, 3, 4 }
    local function attack() return rl.attacks.pgd(model, xb, yb, { eps = 0.1, steps = 2, step_size = 0.05 }) end
    rl.autocast('bf16', attack)
    assert.is_true(#seen >= 2)
    for _, s in ipairs(seen) do assert.are.equal('fp32', s) end
    seen = {}
    rl.autocast({ dtype = 'bf16', attack = 'bf16' }, attack)
    for _, s in ipairs(seen) do assert.are.equal('bf16', s) end
    seen = {}
    rl.autocast({ dtype = 'bf16', attack = 'bf16' }, function() return rl.metrics.accuracy(model, xb, yb) end)
    for _, s in ipairs(seen) do assert.are.equal('fp32', s) end
  end)

  it('a CNN002 training step under autocast is close to the f32 step, and the same bits every time', function()
    local function step(precision)
      rl.manual_seed(5)
      local m = rl.models.CNN002 {}
      -- the last layer starts at zero in CNN002: give it weights so every gradient flows
      rl.no_grad(function() m.classifier.fc3.weight:copy_(rl.randn(10, 200) * 0.05) end)
      local gen = rl.Generator(6)
      local xb = rl.rand({ 32, 1, 28, 28 }, { generator = gen })
      local yb = rl.randint(0, 10, { 32 }, { generator = gen })
      local loss = rl.autocast(precision, function() return F.cross_entropy(m(xb), yb, 'sum') end)
      loss:backward()
      local grads = {}
      for _, np in ipairs(m:named_parameters()) do grads[np[1]] = np[2].grad end
      return loss, grads
    end
    local l32, g32 = step('fp32')
    local lb, gb = step('bf16')
    local lb2, gb2 = step('bf16')
    assert.is_true(math.abs(lb:item() - l32:item()) / math.abs(l32:item()) < 1e-2, lb:item() .. ' vs ' .. l32:item())
    -- bf16 keeps 8 significant bits and the gradients pass through a bf16
    -- rounding at every layer: PyTorch's own CPU autocast, on this step,
    -- moves the gradients by 0.2 % (fc3) to 16 % (conv1) of their norm, and
    -- rllua's by 0.2 % to 17 %.  Their direction stays.
    for name, gr in pairs(g32) do
      local rel = ((gb[name] - gr):norm() / gr:norm()):item()
      local cos = ((gb[name] * gr):sum() / (gb[name]:norm() * gr:norm())):item()
      assert(rel < 0.3 and cos > 0.95,
        string.format('%s: gradient differs by %.3g of its norm, cosine %.4f', name, rel, cos))
      assert(bits_equal(gb[name], gb2[name]), name .. ': a second bf16 step gave other bits')
    end
    assert.is_true(((gb['classifier.fc3.weight'] - g32['classifier.fc3.weight']):norm() /
      g32['classifier.fc3.weight']:norm()):item() < 2e-2)
    assert.is_true(bits_equal(lb, lb2))
  end)

  it('misspelt precisions are errors, in rl.autocast and exp.config', function()
    assert.has_error(function() rl.autocast('fp16', function() end) end,
      "rl.autocast: the dtype must be 'bf16', 'fp32' or nil, got fp16")
    assert.has_error(function() rl.autocast({ dtype = 'bf16', atack = 'bf16' }, function() end) end,
      'rl.autocast: unknown option "atack" (dtype, attack)')
    -- bf16 attacks in an f32 region (exp.config's rule): they ran in f32, silently
    for _, d in ipairs { {}, { dtype = 'fp32' }, { dtype = false } } do
      d.attack = 'bf16'
      local ok, msg = pcall(function() local v = rl.autocast(d, function() return 1 end) return v end)
      assert.is_false(ok)
      assert.are.equal(string.format("spec/autocast_spec.lua:%d: rl.autocast: attack 'bf16' needs dtype 'bf16' " ..
        '(the attacks of an f32 region are f32)', debug.getinfo(1, 'l').currentline - 3), msg)
    end
    assert.are.equal(1, rl.autocast({ dtype = 'bf16', attack = 'fp32' }, function() return 1 end))
    local exp = require 'rl.experiment'
    assert.are.equal('bf16', exp.config { precision = 'bf16' }.precision)
    assert.is_nil(exp.config { precision = 'fp32' }.precision) -- f32 runs keep their ids
    assert.has_error(function() exp.config { precision = 'bf61' } end)
    assert.has_error(function() exp.config { attack_precision = 'bf16' } end)
    assert.has_error(function() exp.config { precision = 'tf32', device = 'cpu' } end)
    assert.has_error(function() exp.config { precision = 'fp32', tf32 = true, device = 'cuda' } end,
      "experiment: precision 'fp32' with tf32 = true")
    assert.has_error(function() exp.config { precision = 'fp32', tf32 = true } end,
      'experiment: tf32 = true is a GPU setting (the CPU has no TF32)')
    -- CUDA runs bf16 too (engine/conv_gemm.c, kernels/cuda_blas.cu)
    assert.are.equal('bf16', exp.config { precision = 'bf16', device = 'cuda' }.precision)
    local c = exp.config { precision = 'bf16', attack_precision = 'bf16' }
    assert.are.equal('bf16', c.attack_precision)
    assert.are_not.equal(exp.run_id(exp.config {}), exp.run_id(exp.config { precision = 'bf16' }))
    assert.are.equal(exp.run_id(exp.config {}), exp.run_id(exp.config { precision = 'fp32' }))
  end)

  -- rl.base checks rl.F's options under the policy: a bad option inside a
  -- region is refused at the caller's line, before any operand is cast,
  -- and rl.help still finds the C function's doc through both wrappers
  it("rl.F's option checks run inside a region too, and help shows the C doc", function()
    local line = debug.getinfo(1, 'l').currentline + 3
    local ok, msg = pcall(function()
      local y = rl.autocast('bf16', function()
        local r = F.max_pool2d(rl.rand(1, 1, 4, 4):bf16(), 2, { ceil_mode = true })
        return r
      end)
      return y
    end)
    assert.is_false(ok)
    assert.are.equal(string.format('spec/autocast_spec.lua:%d: max_pool2d: ceil_mode = true is not supported ' ..
      '(the output size rounds down, as with ceil_mode = false)', line), msg)
    local y = rl.autocast('bf16', function() return F.max_pool2d(rl.rand(1, 1, 5, 5):bf16(), 2, 1) end)
    assert.are.same({ 1, 1, 4, 4 }, y.shape)
    assert.are.equal('bf16', y.dtype)
    local wrapped = require('rl.options').wrapped
    for _, name in ipairs { 'conv2d', 'max_pool2d', 'avg_pool2d', 'cross_entropy', 'kl_div' } do
      assert.are.equal('C', debug.getinfo(wrapped[F[name]], 'S').what, name)
    end
    assert.truthy(require('rl.help').text(F.max_pool2d):find('stride and padding may be positional', 1, true))
  end)
end)

describe('the bf16 convolution CUDA runs (engine/conv_gemm.c), composed on the CPU', function()
  -- rl._conv_path forces the GEMM composition CUDA's conv entries run:
  -- bf16 im2col and GEMMs summing in f32, y formed from its bf16 bias and
  -- the f32 sums by the GEMM itself, dcol (gathered by col2im) and dW's
  -- chunks in f32 workspaces, each result rounded to bf16 once.  Each must then be the f32 convolution of the bf16 operands
  -- rounded once, to within one bf16 step where a different summation
  -- order lands the f32 sum on the other side of a rounding boundary.
  -- A small workspace cap cuts the batch into chunks, so dW is added over
  -- several in f32 and y and dx are rounded chunk by chunk.
  -- The implicit path (bf16's implicit GEMM, forced) forms y, dx of a
  -- stride-1 undilated layer and dW without col (here the CPU's loops of
  -- the same arithmetic; CUDA's mma.sync kernels are checked against them
  -- in cuda_spec): the same one rounding, dW's f32 sum cut into chunks of
  -- pixels (a small workspace cap leaves room for fewer of them).
  local cases = {
    { '3x3, stride 1, padding 1', { 3, 4, 9, 9 }, { 5, 4, 3, 3 }, { padding = 1 } },
    { '5x5, stride 2, padding 2, chunks of one image', { 3, 3, 11, 11 }, { 6, 3, 5, 5 }, { stride = 2, padding = 2 }, 2000 },
    { '1x1', { 4, 8, 6, 6 }, { 7, 8, 1, 1 }, {} },
    { '3x3, padding 0, 40 channels in (k past one slice of 32)', { 2, 40, 7, 7 }, { 9, 40, 3, 3 }, {} },
    { '5x5, padding 2, stride 1, rectangular', { 2, 3, 9, 12 }, { 4, 3, 5, 5 }, { padding = 2 } },
    { '3x3, dilation 2, padding 2', { 2, 3, 10, 10 }, { 4, 3, 3, 3 }, { padding = 2, dilation = 2 } },
  }
  for _, path in ipairs { 'im2col', 'implicit' } do
    for _, c in ipairs(cases) do
      it(path .. ', ' .. c[1] .. ': output and gradients are the f32 ones rounded once', function()
        local g = rl.Generator(11)
        local x = rl.randn(c[2], { generator = g }):bf16()
        local w = (rl.randn(c[3], { generator = g }) * 0.3):bf16()
        local b = rl.randn({ c[3][1] }, { generator = g }):bf16()
        local f32 = { x:float():requires_grad_(), w:float():requires_grad_(), b:float():requires_grad_() }
        local want = F.conv2d(f32[1], f32[2], f32[3], c[4])
        local gy = rl.randn(want:size(), { generator = g }):bf16()
        want:backward(gy:float())
        local ins = { x:clone():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_() }
        rl._conv_path(path, c[5])
        local before = rl.counters()
        local ok, err = pcall(function()
          local y = F.conv2d(ins[1], ins[2], ins[3], c[4])
          y:backward(gy)
          return y
        end)
        rl._conv_path('auto')
        assert(ok, err)
        local y = err
        local after = rl.counters()
        if path == 'im2col' then
          -- the composition ran (the CPU's own kernels count 3 GEMMs at most)
          assert.is_true(after.gemm_calls - before.gemm_calls >= 3)
          assert.are.equal(0, after.implicit_convs - before.implicit_convs)
        else
          -- y, dW, and dx where the layer has stride 1 and no dilation
          local o = c[4]
          local flips = (o.stride or 1) == 1 and (o.dilation or 1) == 1
          assert.are.equal(flips and 3 or 2, after.implicit_convs - before.implicit_convs)
        end
        local got = { y, ins[1].grad, ins[2].grad, ins[3].grad }
        local ref = { want, f32[1].grad, f32[2].grad, f32[3].grad }
        for i, name in ipairs { 'y', 'dx', 'dw', 'db' } do
          assert.are.equal('bf16', got[i].dtype, name)
          local r, v = ref[i]:double(), got[i]:double()
          local rounded = ref[i]:bf16():double()
          -- one bf16 step is 2^-7 of the value's binade at most
          local off = ((v - r):abs() - r:abs() * 2 ^ -7):max():item()
          assert(off <= 1e-6 * r:abs():max():item(), string.format('%s: %g beyond one bf16 step', name, off))
          local same = v:eq(rounded):double():mean():item()
          assert(same >= 0.97, string.format('%s: only %.3f of the elements are the f32 result rounded once', name, same))
        end
      end)
    end
  end
end)

describe('the bf16 Winograd CUDA runs when forced (engine/conv_gemm.c), composed on the CPU', function()
  -- x, w and the transformed tiles V, U and dM are bf16 (each transform
  -- computed in f32 and rounded once), M and dU f32.  Rounding the tiles
  -- costs a few bf16 steps against the f32 convolution of the bf16
  -- operands (about 1.5 at the largest magnitude over these cases): within
  -- 2^-6 of the largest value, where the f32 Winograd is within 1e-5.
  local cases = {
    { 'padding 1', { 3, 4, 9, 9 }, { 5, 4 }, 1 },
    { 'padding 0, odd output', { 2, 6, 7, 7 }, { 3, 6 }, 0 },
    { 'padding 2, chunks of the batch', { 5, 16, 8, 8 }, { 12, 16 }, 2, 3000 },
    -- dW's k (17 images of 256 tiles) cut in two chunks, the last shorter
    { 'padding 1, dW split along k', { 17, 2, 32, 32 }, { 3, 2 }, 1 },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ': output and gradients close to the f32 ones, and not im2col\'s', function()
      local g = rl.Generator(13)
      local x = rl.randn(c[2], { generator = g }):bf16()
      local w = (rl.randn({ c[3][1], c[3][2], 3, 3 }, { generator = g }) * 0.3):bf16()
      local b = rl.randn({ c[3][1] }, { generator = g }):bf16()
      local o = { padding = c[4] }
      local f32 = { x:float():requires_grad_(), w:float():requires_grad_(), b:float():requires_grad_() }
      local want = F.conv2d(f32[1], f32[2], f32[3], o)
      local gy = rl.randn(want:size(), { generator = g }):bf16()
      want:backward(gy:float())
      local function run(path)
        local ins = { x:clone():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_() }
        rl._conv_path(path, c[5])
        local ok, y = pcall(function()
          local y = F.conv2d(ins[1], ins[2], ins[3], o)
          y:backward(gy)
          return y
        end)
        rl._conv_path('auto')
        assert(ok, y)
        return { y, ins[1].grad, ins[2].grad, ins[3].grad }
      end
      local got, col = run('winograd'), run('im2col')
      local ref = { want, f32[1].grad, f32[2].grad, f32[3].grad }
      local differs = false
      for i, name in ipairs { 'y', 'dx', 'dw', 'db' } do
        assert.are.equal('bf16', got[i].dtype, name)
        local r = ref[i]:double()
        local err = ((got[i]:double() - r):abs():max() / r:abs():max()):item()
        assert(err <= 2 ^ -6, string.format('%s: %.3g of the largest value from the f32 result', name, err))
        differs = differs or not bits_equal(got[i], col[i])
      end
      -- the Winograd path ran: its rounded tiles give other bits than im2col's
      assert.is_true(differs)
    end)
  end
end)

describe('the bf16 Winograd against its definition, computed in the spec', function()
  -- Tiles V = B^T d B and kernels U = G g G^T of the bf16 values, each
  -- rounded to bf16 (the kernels' f32 arithmetic on bf16 values is exact
  -- here), M = the sum over channels of U .* V kept in full, y = A^T M A
  -- plus the bias rounded once: the forced path must give those bits,
  -- bar a rare flip where its f32 sums land on the other side of a
  -- rounding boundary.  Rounding M too (losing the f32 sums) would not.
  local function round_all(list) -- Lua numbers rounded to bf16
    return rl.tensor(list, 'f64'):bf16():double():tolist()
  end
  local function mat(a, b) -- a [r][k] * b [k][c], Lua tables
    local out = {}
    for i = 1, #a do
      out[i] = {}
      for j = 1, #b[1] do
        local s = 0
        for k = 1, #b do s = s + a[i][k] * b[k][j] end
        out[i][j] = s
      end
    end
    return out
  end
  local function t(a)
    local out = {}
    for i = 1, #a[1] do
      out[i] = {}
      for j = 1, #a do out[i][j] = a[j][i] end
    end
    return out
  end
  local function flat(m) local f = {} for _, r in ipairs(m) do for _, v in ipairs(r) do f[#f + 1] = v end end return f end
  local function unflat(f, r, c) local m = {} for i = 1, r do m[i] = {} for j = 1, c do m[i][j] = f[(i - 1) * c + j] end end return m end
  local BT = { { 1, 0, -1, 0 }, { 0, 1, 1, 0 }, { 0, -1, 1, 0 }, { 0, 1, 0, -1 } }
  local G = { { 1, 0, 0 }, { 0.5, 0.5, 0.5 }, { 0.5, -0.5, 0.5 }, { 0, 0, 1 } }
  local AT = { { 1, 1, 1, 0 }, { 0, 1, -1, -1 } }

  it('padding 1, 3 -> 2 channels at 6x6: y and dw, the same bits', function()
    local g = rl.Generator(17)
    local N, C, H, O, p = 2, 3, 6, 2, 1
    local x = rl.randn({ N, C, H, H }, { generator = g }):bf16()
    local w = (rl.randn({ O, C, 3, 3 }, { generator = g }) * 0.5):bf16()
    local b = rl.randn({ O }, { generator = g }):bf16()
    local gy = rl.randn({ N, O, H + 2 * p - 2, H + 2 * p - 2 }, { generator = g }):bf16()
    local wg = w:clone():requires_grad_()
    rl._conv_path('winograd')
    local ok, got = pcall(function()
      local y = F.conv2d(x, wg, b, { padding = p })
      y:backward(gy)
      return y
    end)
    rl._conv_path('auto')
    assert(ok, got)
    local xs, ws, bs, gys = x:double():tolist(), w:double():tolist(), b:double():tolist(), gy:double():tolist()
    -- dU [o][c], the weight gradient's tiles: dM = A dy A^T (rounded to
    -- bf16, as wino_doutput stores it) times V, summed over the tiles in full
    local dU = {}
    for o = 1, O do
      dU[o] = {}
      for c = 1, C do dU[o][c] = { { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 } } end
    end
    local U = {}
    for o = 1, O do
      U[o] = {}
      for c = 1, C do U[o][c] = unflat(round_all(flat(mat(mat(G, ws[o][c]), t(G)))), 4, 4) end
    end
    local OH = H + 2 * p - 2
    local want = {}
    for n = 1, N do
      for th = 0, OH / 2 - 1 do
        for tw = 0, OH / 2 - 1 do
          local V = {}
          for c = 1, C do
            local d = {}
            for a = 1, 4 do
              d[a] = {}
              for e = 1, 4 do
                local h, v = 2 * th - p + a, 2 * tw - p + e -- 1-based
                d[a][e] = (h >= 1 and h <= H and v >= 1 and v <= H) and xs[n][c][h][v] or 0
              end
            end
            V[c] = unflat(round_all(flat(mat(mat(BT, d), t(BT)))), 4, 4)
          end
          for o = 1, O do
            local dy = {}
            for i = 1, 2 do
              dy[i] = {}
              for j = 1, 2 do
                local h, v = 2 * th + i, 2 * tw + j
                dy[i][j] = (h <= OH and v <= OH) and gys[n][o][h][v] or 0
              end
            end
            local dM = unflat(round_all(flat(mat(mat(t(AT), dy), AT))), 4, 4)
            for c = 1, C do
              for i = 1, 4 do
                for j = 1, 4 do dU[o][c][i][j] = dU[o][c][i][j] + dM[i][j] * V[c][i][j] end
              end
            end
            local M = {}
            for i = 1, 4 do
              M[i] = {}
              for j = 1, 4 do
                local s = 0
                for c = 1, C do s = s + U[o][c][i][j] * V[c][i][j] end
                M[i][j] = s
              end
            end
            local y = mat(mat(AT, M), t(AT))
            for i = 1, 2 do
              for j = 1, 2 do
                want[#want + 1] = { n, o, 2 * th + i, 2 * tw + j, y[i][j] + bs[o] }
              end
            end
          end
        end
      end
    end
    local vals = {}
    for k, e in ipairs(want) do vals[k] = e[5] end
    vals = round_all(vals)
    local gs = got:double():tolist()
    local same, worst = 0, 0
    for k, e in ipairs(want) do
      local v, r = gs[e[1]][e[2]][e[3]][e[4]], vals[k]
      if v == r then same = same + 1 end
      -- one bf16 step: 2^-7 of the value's binade at most
      worst = math.max(worst, math.abs(v - r) / math.max(math.abs(r) * 2 ^ -7, 1e-30))
    end
    assert(worst <= 1, string.format('an element is %.2f bf16 steps from the definition', worst))
    assert(same >= 0.95 * #want, string.format('only %d of %d elements are the definition\'s bits', same, #want))
    -- dw [o][c] = G^T dU G, rounded once
    local dws = wg.grad:double():tolist()
    same, worst = 0, 0
    for o = 1, O do
      for c = 1, C do
        local r = round_all(flat(mat(mat(t(G), dU[o][c]), G)))
        for k = 1, 9 do
          local v = dws[o][c][(k - 1) // 3 + 1][(k - 1) % 3 + 1]
          if v == r[k] then same = same + 1 end
          worst = math.max(worst, math.abs(v - r[k]) / math.max(math.abs(r[k]) * 2 ^ -7, 1e-30))
        end
      end
    end
    assert(worst <= 1, string.format('a dw element is %.2f bf16 steps from the definition', worst))
    assert(same >= 0.9 * O * C * 9, string.format('only %d of %d dw elements are the definition\'s bits', same, O * C * 9))
  end)
end)
