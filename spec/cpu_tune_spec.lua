-- The CPU backend's view of the processor and its per-shape convolution
-- algorithms (issue #16): what rl.backends.cpu.info() reports against
-- /proc/cpuinfo and sysfs; every algorithm (direct, winograd, im2col, winograd4 and
-- oneDNN's direct and Winograd where the build has oneDNN) computing the
-- same convolution, forward and backward, on shapes the rule never sent
-- to it; RL_CPU_CONV; the machine's cache of choices (the first entry
-- wins, so that every process makes the same choice); and results that do
-- not depend on the thread count, for every algorithm.
local rl = require 'rl'
local shell = require 'helpers.shell'
local F = rl.F
local cpu = rl.backends.cpu

local read = shell.read

-- The algorithms this build has: oneDNN's two when it was built with it.
local ALGS = { 'direct', 'winograd', 'im2col', 'winograd4' }
local INFO = cpu.info({ print = false })
if INFO.onednn then
  ALGS[#ALGS + 1] = 'onednn'
  ALGS[#ALGS + 1] = 'onednn-wino'
end
-- oneDNN 2.6 has its Winograd on AVX-512 only: on an AVX2-only processor
-- (or one that ONEDNN_MAX_CPU_ISA holds back) it fits no shape, and a
-- forced onednn-wino gives way to the rule's choice
local ISA = (os.getenv('ONEDNN_MAX_CPU_ISA') or 'ALL'):upper()
local DNNL_WINO = INFO.onednn and INFO.features.avx512f and (ISA == 'ALL' or ISA:match('^AVX512') ~= nil or
  ISA:match('^AMX') ~= nil)

-- The algorithm each pass of the last convolution of this shape and dtype
-- (f32 unless named) took.
local function took(s, stride, dtype)
  local got = {}
  local key = string.format('%s %%S+ n%d c%d %dx%d o%d k%dx%d s%dx%d p%dx%d ', dtype or 'f32', s.n, s.c, s.h, s.w,
    s.o, s.k, s.k, stride, stride, s.pad, s.pad)
  for _, c in ipairs(cpu.conv_choices()) do
    if c.key:find('^' .. key) then got[c.key:match('^%S+ (%S+)')] = c.algorithm end
  end
  return got
end

-- Runs Lua code in a fresh rllua with env settings; output and status.
local rllua = shell.rllua_code

describe('rl.backends.cpu (issue #16)', function()
  it('info() reports the processor as /proc/cpuinfo and sysfs describe it', function()
    local t = cpu.info { print = false }
    local flags = (read('/proc/cpuinfo') or ''):match('\nflags%s*:%s*([^\n]*)')
    if flags then
      local has = {}
      for f in flags:gmatch('%S+') do has[f] = true end
      for mine, theirs in pairs { avx2 = 'avx2', fma = 'fma', avx512f = 'avx512f', avx512bw = 'avx512bw',
        avx512_bf16 = 'avx512_bf16', amx_tile = 'amx_tile', amx_bf16 = 'amx_bf16' } do
        assert.are.equal(has[theirs] == true, t.features[mine], mine)
      end
      local model = (read('/proc/cpuinfo') or ''):match('\nmodel name%s*:%s*([^\n]*)')
      if model then assert.are.equal(model:gsub('%s+$', ''), t.model) end
    end
    -- make test says whether the build was meant to have oneDNN (make deps installs it)
    if os.getenv('RL_EXPECT_ONEDNN') == '1' then assert.truthy(t.onednn, 'built without oneDNN') end
    if os.getenv('RL_EXPECT_ONEDNN') == '0' then assert.falsy(t.onednn, 'built with oneDNN') end
    local l2 = read('/sys/devices/system/cpu/cpu0/cache/index2/size')
    if l2 then
      local n, unit = l2:match('(%d+)(%a?)')
      assert.are.equal(tonumber(n) * (unit == 'K' and 1024 or unit == 'M' and 1 << 20 or 1), t.l2)
      assert.are.equal('sysfs', t.cache_source)
    end
    assert.is_true(t.cpus >= 1 and t.l1d > 0 and t.l2 > 0)
    -- the chunks are derived from L2 (bounded to [128 KiB, 8 MiB])
    local function share(num, den) return math.min(math.max(t.l2 * num // den, 128 << 10), 8 << 20) end
    assert.are.equal(share(1, 2), t.conv_chunk_bytes)
    assert.are.equal(share(3, 4), t.wino_chunk_bytes)
    assert.truthy(({ [8] = true, [16] = true })[t.built_lanes], t.built_lanes)
    -- the printed report names the model and the extensions
    local out = rllua('rl.backends.cpu.info()')
    assert.truthy(out:find('processor   ' .. (t.model ~= '' and t.model or '?'), 1, true), out)
    assert.truthy(out:find('kernels     built for ' .. t.built_for, 1, true), out)
  end)

  -- 3x3 shapes of every kind: small planes and few channels that the rule
  -- keeps from Winograd, padding 0, 1 and 2, a 1x1 and a strided one
  local SHAPES = {
    { n = 3, c = 2, h = 7, w = 6, o = 5, k = 3, pad = 1 },
    { n = 2, c = 9, h = 10, w = 10, o = 12, k = 3, pad = 0 },
    { n = 4, c = 16, h = 8, w = 9, o = 8, k = 3, pad = 2 },
    { n = 2, c = 8, h = 12, w = 5, o = 3, k = 3, pad = 1 },
    { n = 2, c = 6, h = 9, w = 9, o = 7, k = 1, pad = 0 },
    { n = 2, c = 4, h = 11, w = 11, o = 6, k = 3, pad = 1, stride = 2 },
    { n = 3, c = 16, h = 12, w = 12, o = 32, k = 3, pad = 1 }, -- oneDNN's Winograd takes it
    { n = 20, c = 3, h = 6, w = 5, o = 4, k = 3, pad = 1 }, -- dW groups of 2 and 3 images
    { n = 2, c = 3, h = 5, w = 1, o = 4, k = 3, pad = 1 }, -- a column, a row short of a tile
    { n = 2, c = 3, h = 2, w = 3, o = 4, k = 3, pad = 2 },
  }

  -- The convolution of shape s on x, w and b (one dtype) through every
  -- algorithm, dy sent back: ran[alg] and ran['alg pass'] mark what each
  -- pass took, and check(alg, name, got) sees y, dx, dw and db.
  local function each_algorithm(s, x, w, b, dy, ran, check)
    local opts = { padding = s.pad, stride = s.stride or 1 }
    for _, alg in ipairs(ALGS) do
      cpu.set_conv(alg)
      local xa, wa, ba = x:detach():requires_grad_(), w:detach():requires_grad_(), b:detach():requires_grad_()
      local y = F.conv2d(xa, wa, ba, opts)
      y:backward(dy)
      for pass, a in pairs(took(s, s.stride or 1, x.dtype)) do
        ran[a] = true
        ran[a .. ' ' .. pass] = true
      end
      for name, got in pairs { y = y:detach(), dx = xa.grad, dw = wa.grad, db = ba.grad } do check(alg, name, got) end
    end
  end

  it('every algorithm computes the same convolution, forward and backward', function()
    local g = rl.Generator(7)
    local ran = {} -- algorithm -> passes it ran
    local ok, err = pcall(function()
      for _, s in ipairs(SHAPES) do
        local x64 = rl.randn({ s.n, s.c, s.h, s.w }, { generator = g, dtype = 'f64' })
        local w64 = rl.randn({ s.o, s.c, s.k, s.k }, { generator = g, dtype = 'f64' }) * 0.3
        local b64 = rl.randn({ s.o }, { generator = g, dtype = 'f64' })
        local opts = { padding = s.pad, stride = s.stride or 1 }
        -- the f64 reference (im2col or the tap path; both exact to 1e-12)
        local x, w, b = x64:detach():requires_grad_(), w64:detach():requires_grad_(), b64:detach():requires_grad_()
        local y = F.conv2d(x, w, b, opts)
        local dy = rl.randn(y.shape, { generator = g, dtype = 'f64' })
        y:backward(dy)
        local ref = { y = y:detach(), dx = x.grad, dw = w.grad, db = b.grad }
        each_algorithm(s, x64:float(), w64:float(), b64:float(), dy:float(), ran, function(alg, name, got)
          local want = ref[name]
          local diff = (got:double() - want):abs():max():item()
          local scale = want:abs():max():item() + 1
          assert(diff <= 2e-5 * scale, string.format('%s, shape %s: %s differs by %.3g (scale %.3g)', alg,
            rl.json.encode(s), name, diff, scale))
        end)
      end
    end)
    cpu.set_conv(nil)
    if not ok then error(err, 0) end
    -- each algorithm really ran (a forced one that cannot take a shape gives way to the rule's)
    for _, alg in ipairs(ALGS) do
      if alg ~= 'onednn-wino' or DNNL_WINO then assert.truthy(ran[alg], alg .. ' never ran') end
    end
    -- both Winograd sizes form the weight gradient as well as y and dx
    for _, pass in ipairs { 'winograd fwd', 'winograd bwd-dx', 'winograd bwd-dw-db', 'winograd4 fwd',
      'winograd4 bwd-dx', 'winograd4 bwd-dw-db' } do
      assert.truthy(ran[pass], 'never ran: ' .. pass)
    end
  end)

  -- bf16 (rl.autocast's convolutions): oneDNN's own bf16 kernels where it
  -- has them (AVX-512; vdpbf16ps with AVX-512 BF16), every other algorithm
  -- its f32 kernels on the widened operands; either way bf16 operands,
  -- f32 sums and each result rounded to bf16 once
  it('every algorithm computes a bf16 convolution: f32 sums, each result rounded once', function()
    local g = rl.Generator(8)
    local ran = {}
    local ok, err = pcall(function()
      for _, s in ipairs(SHAPES) do
        -- the operands in bf16, and the f64 reference on exactly those values
        local x = rl.randn({ s.n, s.c, s.h, s.w }, { generator = g }):bf16()
        local w = (rl.randn({ s.o, s.c, s.k, s.k }, { generator = g }) * 0.3):bf16()
        local b = rl.randn({ s.o }, { generator = g }):bf16()
        local opts = { padding = s.pad, stride = s.stride or 1 }
        local x64, w64, b64 = x:double():requires_grad_(), w:double():requires_grad_(), b:double():requires_grad_()
        local y64 = F.conv2d(x64, w64, b64, opts)
        local dy = rl.randn(y64.shape, { generator = g }):bf16()
        y64:backward(dy:double())
        local ref = { y = y64:detach(), dx = x64.grad, dw = w64.grad, db = b64.grad }
        each_algorithm(s, x, w, b, dy, ran, function(alg, name, got)
          assert.are.equal('bf16', got.dtype, alg .. ' ' .. name)
          local want = ref[name]
          -- one rounding to bf16 (half a unit in its last place: at most
          -- 2^-8 of the value), after f32 sums (their error far below the
          -- scale's 2e-5)
          local excess = ((got:double() - want):abs() - want:abs() * 2 ^ -8):max():item()
          local scale = want:abs():max():item() + 1
          assert(excess <= 2e-5 * scale, string.format('%s, shape %s: %s off by %.3g beyond a bf16 rounding (scale %.3g)',
            alg, rl.json.encode(s), name, excess, scale))
        end)
      end
    end)
    cpu.set_conv(nil)
    if not ok then error(err, 0) end
    -- the widened f32 kernels ran, and oneDNN's bf16 kernels where the
    -- processor has AVX-512 BF16 (and nothing holds oneDNN back from it)
    for _, pass in ipairs { 'im2col fwd', 'im2col bwd-dx', 'im2col bwd-dw-db', 'winograd fwd', 'winograd bwd-dx' } do
      assert.truthy(ran[pass], 'bf16 never ran: ' .. pass)
    end
    if DNNL_WINO and INFO.features.avx512_bf16 then
      for _, pass in ipairs { 'onednn fwd', 'onednn bwd-dx', 'onednn bwd-dw-db' } do
        assert.truthy(ran[pass], 'bf16 never ran: ' .. pass)
      end
    end
    -- oneDNN has no bf16 Winograd: a forced onednn-wino gives way to the rule's choice
    assert.falsy(ran['onednn-wino fwd'])
  end)

  it('an input plane of no rows, padded into an output, is no error for any algorithm', function()
    local ok, err = pcall(function()
      for _, alg in ipairs(ALGS) do
        cpu.set_conv(alg)
        local x = rl.randn({ 2, 8, 0, 12 }):requires_grad_()
        local w = rl.randn({ 8, 8, 3, 3 }):requires_grad_()
        local y = F.conv2d(x, w, rl.ones(8), { padding = 2 })
        assert.are.same({ 2, 8, 2, 14 }, y.shape)
        assert.are.equal(2 * 8 * 2 * 14, y:sum():item(), alg) -- the bias alone
        y:sum():backward()
        assert.are.same({ 2, 8, 0, 12 }, x.grad.shape)
        assert.are.equal(0, w.grad:abs():sum():item(), alg)
      end
    end)
    cpu.set_conv(nil)
    if not ok then error(err, 0) end
  end)

  it('records which algorithm each shape took, and how', function()
    cpu.set_conv('winograd')
    local x = rl.randn(2, 8, 12, 12)
    F.conv2d(x, rl.randn(4, 8, 3, 3), nil, { padding = 1 }) -- winograd fits
    F.conv2d(x, rl.randn(4, 8, 2, 2)) -- it does not: the rule's choice
    cpu.set_conv(nil)
    local got = {}
    for _, c in ipairs(cpu.conv_choices()) do got[c.key] = c end
    local a = got['f32 fwd n2 c8 12x12 o4 k3x3 s1x1 p1x1 d1x1']
    local b = got['f32 fwd n2 c8 12x12 o4 k2x2 s1x1 p0x0 d1x1']
    assert.are.same({ 'winograd', 'forced' }, { a.algorithm, a.how })
    assert.are.equal('forced', b.how)
    assert.are_not.equal('winograd', b.algorithm)
    assert.has_error(function() cpu.set_conv('fft') end,
      "conv algorithm must be direct, winograd, im2col, onednn, onednn-wino, winograd4 or auto, not 'fft'")
  end)

  it('RL_CPU_CONV forces an algorithm, and a misspelt one is an error naming it', function()
    local code = [[
      local y = rl.F.conv2d(rl.randn(4, 16, 20, 20), rl.randn(16, 16, 3, 3), nil, {padding = 1})
      local c = rl.backends.cpu.conv_choices()[1]
      print(c.algorithm, c.how, rl.backends.cpu.info{print = false}.conv_forced)]]
    local out, status = rllua(code, 'RL_CPU_CONV=im2col')
    assert.are.equal(0, status, out)
    assert.truthy(out:find('im2col\tforced\tim2col', 1, true), out)
    out, status = rllua(code, 'RL_CPU_CONV=winogard')
    assert.are_not.equal(0, status)
    assert.truthy(out:find("RL_CPU_CONV must be direct, winograd, im2col, onednn, onednn-wino, winograd4 or auto, not 'winogard'",
      1, true), out)
  end)

  it('a measured choice is kept for the machine: the first entry for a shape wins in every process', function()
    local dir = shell.tmpdir()
    local env = 'RL_CPU_CONV= RL_CACHE_DIR=' .. shell.quote(dir)
    -- big enough to be timed (not the rule's)
    local code = [[
      rl.set_num_threads(%d)
      local x, w = rl.randn(16, 32, 16, 16), rl.randn(32, 32, 3, 3)
      local function gemms()
        local n = rl.counters().gemm_calls
        rl.F.conv2d(x, w, nil, {padding = 1})
        return rl.counters().gemm_calls - n
      end
      print('gemms', gemms(), gemms())
      local c = rl.backends.cpu.conv_choices()[1]
      print(c.key .. '|' .. c.algorithm .. '|' .. c.how .. '|' .. rl.backends.cpu.info{print = false}.conv_cache)]]
    local out, status = rllua(code:format(2), env)
    assert.are.equal(0, status, out)
    local key, alg, how, file = out:match('([^\n|]+)|([%w-]+)|(%a+)|([^\n]+)')
    assert.are.equal('measured', how, out)
    -- the timed runs are not counted: the measured first use counts as a later one does
    local first, later = out:match('gemms\t(%d+)\t(%d+)\n')
    assert.are.equal(later, first, out)
    assert.are.equal(dir, file:sub(1, #dir))
    assert.are.equal(key .. '\t' .. alg .. '\n', read(file))
    -- another process, on one thread: the same choice, from the file
    out = rllua(code:format(1), env)
    assert.truthy(out:find(key .. '|' .. alg .. '|cached|', 1, true), out)
    -- the file's first entry is the one taken, whatever later lines say
    local other = alg == 'im2col' and 'direct' or 'im2col'
    local f = assert(io.open(file, 'w'))
    f:write(key, '\t', other, '\n', key, '\t', alg, '\n')
    f:close()
    out = rllua(code:format(2), env)
    assert.truthy(out:find(key .. '|' .. other .. '|cached|', 1, true), out)
    -- RL_CPU_CONV_CACHE=off: measured again, nothing written
    out = rllua(code:format(2), env .. ' RL_CPU_CONV_CACHE=off')
    assert.truthy(out:find('|measured|$') or out:find('|measured|\n'), out)
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('every algorithm gives the same bits on 1, 2 and 3 threads, forward, dx and dW, in f32 and bf16', function()
    local g = rl.Generator(3)
    local x32 = rl.randn({ 32, 16, 14, 14 }, { generator = g })
    local w32 = rl.randn({ 32, 16, 3, 3 }, { generator = g })
    local b32 = rl.randn({ 32 }, { generator = g })
    local x, w, b
    local before = rl.get_num_threads()
    local function run(threads)
      rl.set_num_threads(threads)
      x.grad, w.grad, b.grad = nil, nil, nil
      local y = F.conv2d(x, w, b, { padding = 1 })
      local loss = (y * y):sum()
      loss:backward()
      return { y = y:detach(), dx = x.grad, dw = w.grad, db = b.grad }
    end
    local ok, err = pcall(function()
      for _, dtype in ipairs { 'f32', 'bf16' } do
        x, w, b = x32:to(dtype):detach():requires_grad_(), w32:to(dtype):detach():requires_grad_(),
          b32:to(dtype):detach():requires_grad_()
        for _, alg in ipairs { 'auto', table.unpack(ALGS) } do
          cpu.set_conv(alg)
          local one = run(1)
          for _, threads in ipairs { 2, 3 } do
            local many = run(threads)
            for name, t in pairs(one) do
              assert((t:double() - many[name]:double()):abs():max():item() == 0,
                string.format('%s %s: %s differs on %d threads', dtype, alg, name, threads))
            end
          end
        end
      end
    end)
    rl.set_num_threads(before)
    cpu.set_conv(nil)
    if not ok then error(err, 0) end
  end)

  it('the vectorised 2x2 max pool picks what the scalar f64 loop picks: values, ties, NaN', function()
    local g = rl.Generator(11)
    -- widths below, at and past a vector (8 or 16 lanes), odd sizes cut
    for _, s in ipairs { { 2, 3, 6, 6 }, { 3, 5, 24, 24 }, { 2, 2, 8, 34 }, { 1, 4, 66, 66 }, { 2, 3, 7, 9 },
      { 2, 2, 4, 32 }, { 2, 2, 2, 2 }, { 1, 2, 3, 65 } } do
      local x = (rl.randn(s, { generator = g }) * 2):round() -- many ties
      local a, b = x:clone():requires_grad_(), x:double():requires_grad_()
      local ya, yb = F.max_pool2d(a, 2), F.max_pool2d(b, 2)
      local dy = rl.randn(ya.shape, { generator = g })
      ya:backward(dy)
      yb:backward(dy:double())
      assert.are.equal(0, (ya:double() - yb):abs():max():item(), table.concat(s, 'x'))
      -- the gradient lands where the maximum was: the same (first) one on ties
      assert.are.equal(0, (a.grad:double() - b.grad):abs():max():item(), table.concat(s, 'x'))
    end
    local x = rl.randn(1, 1, 4, 40)
    x[1][1][2][3] = 0 / 0
    local y = F.max_pool2d(x, 2)
    assert.is_true(y[1][1][1][2]:item() ~= y[1][1][1][2]:item(), 'a NaN in a window is its maximum')
  end)
end)

describe('rl.backends.cuda.info', function()
  it('reports the GPU and its bf16 convolution choices, or why there is none', function()
    local cuda = rl.backends.cuda
    local t = cuda.info { print = false }
    if not rl.cuda.is_available() then
      assert.is_false(t.available)
      assert.truthy(t.reason:find('CUDA', 1, true), t.reason)
      local out = rllua('rl.backends.cuda.info()')
      assert.truthy(out:find('no CUDA device: ', 1, true), out)
      assert.are.same({}, cuda.conv_choices())
      assert.are.equal('', cuda.conv_cache())
    else
      assert.is_true(t.available)
      assert.are.equal(rl.cuda.device_name(), t.name)
      assert.truthy(t.memory.device_total > 0)
      assert.truthy(t.conv_forced == 'auto' or t.conv_forced == 'im2col' or t.conv_forced == 'implicit')
      local out = rllua([[
        local x = rl.randn(2, 4, 6, 6):bf16():to('cuda')
        rl.F.conv2d(x, rl.randn(5, 4, 3, 3):bf16():to('cuda'), nil, {padding = 1})
        rl.backends.cuda.info()]], 'RL_CUDA_CONV_CACHE=off')
      assert.truthy(out:find('device      ' .. t.name, 1, true), out)
      assert.truthy(out:find('bf16 fwd n2 c4 6x6 o5 k3x3 s1x1 p1x1 d1x1', 1, true), out)
      assert.truthy(out:find('this process only (RL_CUDA_CONV_CACHE=off)', 1, true), out)
    end
    assert.has_error(function() cuda.info { prnt = false } end,
      'rl.backends.cuda.info: unknown option "prnt" (print)')
  end)
end)
