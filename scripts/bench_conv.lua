-- bench_conv.lua - the convolutions of WRN-16-4 and WRN-40-10 one layer at a
-- time: ms for the forward, the forward and input gradient (an attack
-- step's work) and the forward and full backward (a training step's),
-- median of --steps, on each convolution path the device has:
--   on a GPU, 'auto' (Winograd F(2x2, 3x3) where it pays, else im2col)
--   beside 'im2col' (what every layer took before Winograd);
--   on the CPU, its own kernels ('auto') beside the engine's im2col.
-- The last column is the largest difference of the first path's forward
-- from im2col's, relative to the largest output.  --dtype bf16 times the
-- bf16 convolutions (rl.autocast's) on 'implicit' (the implicit GEMM on
-- the tensor cores, kernels/cuda_igemm.cu), 'winograd' and 'im2col', each
-- forced, beside 'auto': each bf16 pass by im2col or the implicit GEMM,
-- whichever kernels/cuda_conv.cu measured faster on the shape's first use
-- (listed after the table; the CPU's implicit GEMM is a loop for the
-- specs, and not timed).
-- Winograd is for stride 1 only: its stride-2 column is left empty.
-- --layers 1,3 times only those rows of the list below (in its order).
--   rllua scripts/bench_conv.lua [--device cuda] [--batch N] [--steps 11] [--dtype f32|bf16]
--                                [--layers i,j,...]
local rl = require 'rl'
local F = rl.F

local cli = require 'rl.cli'

-- in, out channels, plane, stride (3x3 kernels, padding 1)
local layers = {
  { 16, 64, 32, 1 }, { 64, 64, 32, 1 }, { 64, 128, 32, 2 }, { 128, 128, 16, 1 },
  { 256, 256, 8, 1 }, { 160, 160, 32, 1 }, { 320, 320, 16, 1 }, { 640, 640, 8, 1 },
}

local opts, dev = cli.main('bench_conv', function()
  local o = cli.parse(arg, { usage = 'usage: rllua scripts/bench_conv.lua [--device cuda] [--batch N] [--steps N] ' ..
      '[--dtype f32|bf16] [--layers i,j,...]',
    options = { device = 'string', batch = 'integer', steps = 'integer', dtype = 'string', layers = 'string' },
    defaults = { device = 'cpu', steps = 11, dtype = 'f32' } })
  if o.dtype ~= 'f32' and o.dtype ~= 'bf16' then error("--dtype must be f32 or bf16, not '" .. o.dtype .. "'", 0) end
  if o.layers then -- numbers into the list above
    local list = {}
    for item in (o.layers .. ','):gmatch('([^,]*),') do
      local i = math.tointeger(tonumber(item))
      if not i or not layers[i] then
        error(string.format("--layers: '%s' is not a layer number (1 to %d)", item, #layers), 0)
      end
      list[#list + 1] = i
    end
    o.layers = list
  end
  return o, rl.device(o.device)
end)
local cuda = dev:match('^cuda') ~= nil
opts.batch = opts.batch or (cuda and 128 or 16)

local function sync() if cuda then rl.cuda.synchronize() end end

local function median_ms(fn)
  fn(); fn(); sync()
  local ts = {}
  for i = 1, opts.steps do
    local t0 = rl.clock(); fn(); sync(); ts[i] = (rl.clock() - t0) * 1000
  end
  table.sort(ts)
  return ts[(opts.steps + 1) // 2]
end

if opts.layers then
  local chosen = {}
  for _, i in ipairs(opts.layers) do chosen[#chosen + 1] = layers[i] end
  layers = chosen
end

local bf16 = opts.dtype == 'bf16'
-- (the CPU's implicit GEMM is a plain loop for the specs, not a path to time)
-- ('auto' on a GPU in bf16: each pass by the algorithm measured for it)
local paths = bf16 and (cuda and { 'auto', 'implicit', 'winograd', 'im2col' } or { 'winograd', 'im2col' })
  or { 'auto', 'im2col' }
print(string.format('%s, batch %d, %s, median of %d (ms)', cuda and rl.cuda.device_name() or 'CPU',
  opts.batch, opts.dtype, opts.steps))
local head = { string.format('%-18s', 'layer') }
for _ in ipairs(paths) do head[#head + 1] = string.format('%-8s %8s %8s %8s', 'path', 'fwd', 'fwd+dx', 'fwd+bwd') end
head[#head + 1] = string.format('%9s', 'rel diff')
print(table.concat(head, '   '))
for _, l in ipairs(layers) do
  local C, O, S, st = table.unpack(l)
  local x = rl.randn({ opts.batch, C, S, S }, { device = dev, dtype = opts.dtype })
  local w = (rl.randn({ O, C, 3, 3 }, { device = dev }) * (2 / (9 * C)) ^ 0.5):to(opts.dtype):requires_grad_()
  local o = { stride = st, padding = 1 }
  local dy = rl.randn(F.conv2d(x, w:detach(), nil, o):size(), { device = dev, dtype = opts.dtype })
  local cols, ys = { string.format('%-18s', string.format('%d->%d @%d s%d', C, O, S, st)) }, {}
  for k, path in ipairs(paths) do
    if path == 'winograd' and st ~= 1 then -- forced, it would time im2col again
      cols[k + 1] = string.format('%-8s %8s %8s %8s', path, '-', '-', '-')
    else
      local was = rl._conv_path(path)
      ys[k] = F.conv2d(x, w:detach(), nil, o)
      local fwd = median_ms(function() F.conv2d(x, w:detach(), nil, o) end)
      local dx = median_ms(function()
        local xa = x:detach():requires_grad_()
        rl.grad(F.conv2d(xa, w:detach(), nil, o), xa, dy)
      end)
      local bwd = median_ms(function()
        local xa = x:detach():requires_grad_()
        rl.grad(F.conv2d(xa, w, nil, o), { xa, w }, { dy })
      end)
      rl._conv_path(was)
      cols[k + 1] = string.format('%-8s %8.3f %8.3f %8.3f', path, fwd, dx, bwd)
    end
  end
  local ref = ys[#paths]:double()
  cols[#cols + 1] = string.format('%9.2g', ((ys[1]:double() - ref):abs():max() / ref:abs():max()):item())
  print(table.concat(cols, '   '))
end
if bf16 and cuda then -- 'auto''s choice of each pass, with both times
  print()
  rl.backends.cuda.info()
end
