-- bench_conv_cpu.lua - the convolutions of CNN001, CNN002 and WRN-16-4 one
-- layer at a time on the CPU: the median ms of the forward and of the
-- forward + full backward (dx, dW, db) by each of rllua's algorithms
-- (direct, winograd, winograd4, im2col, and oneDNN's direct and Winograd; '-' where
-- one cannot run the shape), the ones
-- the per-shape measurement chose for the forward, dx and dW, and PyTorch on the same layer (Debian's
-- PyTorch runs these on oneDNN, the library PyTorch uses for CPU
-- convolutions), with the ratio of rllua's chosen algorithm to PyTorch
-- (below 1: rllua is faster).  This is the evidence for which algorithms
-- rllua carries, oneDNN among them.  --dtype bf16 times the bf16
-- convolutions rl.autocast runs (bf16 operands and results, f32 sums) on
-- both sides: oneDNN's bf16 kernels, and rllua's f32 ones on widened operands.
--   rllua scripts/bench_conv_cpu.lua [--threads 2] [--steps 11] [--batch 64] [--wrn-batch 32] [--dtype f32|bf16]
local rl = require 'rl'
local F = rl.F
local cli = require 'rl.cli'
local json = require 'rl.json'

local SCRIPTS = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local opts = cli.main('bench_conv_cpu', function()
  local o = cli.parse(arg, {
    usage = 'usage: rllua scripts/bench_conv_cpu.lua [--threads N] [--steps N] [--batch N] [--wrn-batch N] [--dtype f32|bf16]',
    options = { threads = 'integer', steps = 'integer', batch = 'integer', ['wrn-batch'] = 'integer', dtype = 'string' },
    defaults = { threads = 2, steps = 11, batch = 64, wrn_batch = 32, dtype = 'f32' } })
  if o.threads < 1 or o.steps < 1 or o.batch < 1 or o.wrn_batch < 1 then
    error('--threads, --steps, --batch and --wrn-batch must be >= 1', 0)
  end
  if o.dtype ~= 'f32' and o.dtype ~= 'bf16' then error("--dtype must be f32 or bf16, not '" .. o.dtype .. "'", 0) end
  return o
end)
rl.set_num_threads(opts.threads)

-- {name, n, c, o, size (input plane), k, stride, pad}
local B, WB = opts.batch, opts.wrn_batch
local LAYERS = {
  { 'CNN001 conv1', B, 1, 32, 28, 3, 1, 0 }, { 'CNN001 conv2', B, 32, 64, 26, 3, 1, 0 },
  { 'CNN002 conv1', B, 1, 32, 28, 3, 1, 0 }, { 'CNN002 conv2', B, 32, 32, 26, 3, 1, 0 },
  { 'CNN002 conv3', B, 32, 64, 12, 3, 1, 0 }, { 'CNN002 conv4', B, 64, 64, 10, 3, 1, 0 },
  { 'WRN-16-4 conv1', WB, 3, 16, 32, 3, 1, 1 }, { 'WRN-16-4 b1 3x3', WB, 16, 64, 32, 3, 1, 1 },
  { 'WRN-16-4 b1 3x3b', WB, 64, 64, 32, 3, 1, 1 }, { 'WRN-16-4 b1 1x1', WB, 16, 64, 32, 1, 1, 0 },
  { 'WRN-16-4 b2 3x3 s2', WB, 64, 128, 32, 3, 2, 1 }, { 'WRN-16-4 b2 3x3', WB, 128, 128, 16, 3, 1, 1 },
  { 'WRN-16-4 b2 1x1 s2', WB, 64, 128, 32, 1, 2, 0 }, { 'WRN-16-4 b3 3x3 s2', WB, 128, 256, 16, 3, 2, 1 },
  { 'WRN-16-4 b3 3x3', WB, 256, 256, 8, 3, 1, 1 }, { 'WRN-16-4 b3 1x1 s2', WB, 128, 256, 16, 1, 2, 0 },
}

local function median_ms(fn)
  fn(); fn()
  local ts = {}
  for i = 1, opts.steps do
    local t0 = rl.clock(); fn(); ts[i] = (rl.clock() - t0) * 1000
  end
  table.sort(ts)
  return ts[(opts.steps + 1) // 2]
end

-- PyTorch first, in a child (it holds the cores while it runs)
local spec = {}
for i, l in ipairs(LAYERS) do
  spec[i] = { n = l[2], c = l[3], o = l[4], size = l[5], k = l[6], stride = l[7], pad = l[8] }
end
local torch = {}
do
  local p = io.popen(string.format("/usr/bin/python3 '%s/bench_conv_cpu.py' %d %d '%s' %s 2>/dev/null", SCRIPTS,
    opts.threads, opts.steps, json.encode(spec), opts.dtype))
  for line in p:lines() do
    local f, b = line:match('^(%S+) (%S+)$')
    if f then torch[#torch + 1] = { tonumber(f), tonumber(b) } end
  end
  p:close()
end

local info = rl.backends.cpu.info { print = false }
print(string.format('%s (%s), %s, %d thread(s); batch %d (WRN %d); median of %d (ms): forward / forward + backward',
  info.model, info.built_for, opts.dtype, opts.threads, B, WB, opts.steps))
print(string.format('%-20s %-17s %15s %15s %15s %15s %15s %15s   %-14s %15s %6s', 'layer', 'shape', 'direct',
  'winograd', 'winograd4', 'im2col', 'onednn', 'onednn-wino', 'fwd/dx/dW', 'PyTorch', 'ratio'))
local function cell(v) return v and string.format('%6.2f / %6.2f', v[1], v[2]) or string.format('%15s', '-') end
for i, l in ipairs(LAYERS) do
  local name, n, c, o, size, k, stride, pad = table.unpack(l)
  local g = rl.Generator(i)
  local dt = opts.dtype
  local x = rl.randn({ n, c, size, size }, { generator = g }):to(dt)
  local w = (rl.randn({ o, c, k, k }, { generator = g }) * (2 / (k * k * c)) ^ 0.5):to(dt):requires_grad_()
  local b = rl.zeros(o):to(dt):requires_grad_()
  local co = { stride = stride, padding = pad }
  local dy = rl.randn(F.conv2d(x, w:detach(), nil, co).shape, { generator = g }):to(dt)
  local key = string.format('%s %%S+ n%d c%d %dx%d o%d k%dx%d s%dx%d ', dt, n, c, size, size, o, k, k, stride, stride)
  -- the algorithm this shape's forward took last
  local function took_fwd()
    for _, ch in ipairs(rl.backends.cpu.conv_choices()) do
      if ch.key:find('^' .. key) and ch.key:match('^%S+ (%S+)') == 'fwd' then return ch.algorithm end
    end
  end
  local function run(alg)
    rl.backends.cpu.set_conv(alg)
    local fwd = median_ms(function() rl.no_grad(function() F.conv2d(x, w, b, co) end) end)
    -- a forced algorithm that cannot run here (oneDNN's Winograd without
    -- AVX-512) gives way to the rule's: no column for it
    if alg ~= 'auto' and took_fwd() ~= alg then
      rl.backends.cpu.set_conv(nil)
      return nil
    end
    local bwd = median_ms(function()
      local xa = x:detach():requires_grad_()
      rl.grad(F.conv2d(xa, w, b, co), { xa, w, b }, { dy })
    end)
    rl.backends.cpu.set_conv(nil)
    return { fwd, bwd }
  end
  -- which algorithms can run it (the forced one falls back to the rule's otherwise)
  local fits = { direct = stride == 1, winograd = k == 3 and stride == 1, winograd4 = k == 3 and stride == 1,
    im2col = true, onednn = info.onednn ~= nil, ['onednn-wino'] = info.onednn ~= nil and k == 3 and stride == 1 }
  local t = {}
  for _, alg in ipairs { 'direct', 'winograd', 'winograd4', 'im2col', 'onednn', 'onednn-wino' } do
    t[alg] = fits[alg] and run(alg) or nil
  end
  local chosen = run('auto')
  local picks = {}
  for _, ch in ipairs(rl.backends.cpu.conv_choices()) do
    if ch.key:find('^' .. key) and ch.how ~= 'forced' then
      picks[ch.key:match('^%S+ (%S+)')] = ch.algorithm
    end
  end
  local pt = torch[i]
  local short = { direct = 'dir', winograd = 'wino', winograd4 = 'win4', im2col = 'im2c', onednn = 'dnnl',
    ['onednn-wino'] = 'dnwi' }
  local chose = string.format('%s/%s/%s', short[picks.fwd] or '?', short[picks['bwd-dx']] or '?',
    short[picks['bwd-dw-db']] or '?')
  print(string.format('%-20s %-17s %s %s %s %s %s %s   %-14s %s %6s', name, string.format('%d>%d@%d k%d s%d', c, o,
    size, k, stride), cell(t.direct), cell(t.winograd), cell(t.winograd4), cell(t.im2col), cell(t.onednn),
    cell(t['onednn-wino']), chose,
    cell(pt),
    pt and string.format('%.2f', (chosen[1] + chosen[2]) / (pt[1] + pt[2])) or '-'))
end
if #torch == 0 then print('PyTorch: not available (python3-torch)') end
