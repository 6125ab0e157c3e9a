-- bench_gpu.lua (run by scripts/bench.lua --device cuda [steps] [models]):
-- ms per training step on the GPU: natural, AT (PGD-10) and TRADES (beta 6,
-- 10 steps), by default for CNN002 (batch 64, 1x28x28) and WRN-16-4 (batch
-- 128, 3x32x32), rllua beside PyTorch (same steps, same GPU, the models and
-- objectives of scripts/torch_ref.py), median of N.  models is a
-- comma-separated list of rl.models names (CNN* take MNIST's shape, the
-- others CIFAR's), e.g. WRN_40_10.
local rl = require 'rl'
local N = tonumber(arg[1]) or 10
-- the models scripts/torch_ref.py has too
local known = { CNN001 = true, CNN002 = true, WRN_16_4 = true, WRN_40_10 = true }
local names = {}
for n in (arg[2] or 'CNN002,WRN_16_4'):gmatch('[^,%s]+') do
  if not known[n] then
    io.stderr:write(string.format('bench --device cuda: no model %q (known: CNN001, CNN002, WRN_16_4, WRN_40_10)\n', n))
    os.exit(1)
  end
  names[#names + 1] = n
end
if not rl.cuda.is_available() then
  local _, why = pcall(rl.device, 'cuda')
  io.stderr:write('bench --device cuda: ', tostring(why), '\n')
  os.exit(1)
end
local function time_ms(fn)
  fn(); fn(); rl.cuda.synchronize()
  local ts = {}
  for i = 1, N do
    local t0 = rl.clock(); fn(); rl.cuda.synchronize(); ts[i] = (rl.clock() - t0) * 1000
  end
  table.sort(ts)
  return ts[(N + 1) // 2]
end
local dir = arg[0]:match('^(.*)/[^/]*$') or '.'
local py = io.popen(string.format("python3 '%s/bench_gpu_torch.py' %d %s 2>&1", dir, N,
  table.concat(names, ' ')))
local torch_out = py:read('a'); py:close()
local ref = {}
for name, meth, ms in torch_out:gmatch('(%S+) (%S+) ([%d%.]+)\n') do ref[name .. ' ' .. meth] = tonumber(ms) end
print(('GPU: %s'):format(rl.cuda.device_name()))
print('PyTorch fp32: cuDNN without TF32 (rllua computes in full fp32); tf32: PyTorch\'s default')
print(('%-10s %-8s %10s %10s %7s %10s %7s'):format('model', 'method', 'rllua', 'PyT fp32', 'ratio', 'PyT tf32', 'ratio'))
for _, name in ipairs(names) do
  local c = name:match('^CNN') and { name, 64, { 1, 28, 28 } } or { name, 128, { 3, 32, 32 } }
  rl.manual_seed(0)
  local m = rl.models.get(c[1]):to('cuda')
  local opt = rl.optim.SGD(m:parameters(), { lr = 1e-3, momentum = 0.9 })
  local s = { c[2], table.unpack(c[3]) }
  local x = rl.rand(s, { device = 'cuda' })
  local y = rl.randint(0, 10, c[2], { device = 'cuda' })
  for _, meth in ipairs { 'natural', 'at', 'trades' } do
    local t = time_ms(function()
      local loss = rl.methods[meth](m, x, y, { eps = 0.1, beta = 6 })
      opt:zero_grad(); loss:backward(); opt:step()
    end)
    local r, r2 = ref[c[1] .. ' ' .. meth], ref[c[1] .. ' ' .. meth .. '/tf32']
    print(('%-10s %-8s %10.2f %10s %7s %10s %7s'):format(c[1], meth, t, r and ('%.2f'):format(r) or '-',
      r and ('%.2f'):format(t / r) or '-', r2 and ('%.2f'):format(r2) or '-', r2 and ('%.2f'):format(t / r2) or '-'))
  end
end
local st = rl.cuda.memory_stats()
print(('allocator: %d allocs, %d cache hits, %d cudaMalloc, %d GCs, peak %.1f MiB allocated, %.1f MiB reserved'):format(
  st.allocs, st.cache_hits, st.cuda_mallocs, st.gc_runs, st.peak_allocated / 2 ^ 20, st.peak_reserved / 2 ^ 20))
local complete = true
for _, n in ipairs(names) do complete = complete and ref[n .. ' trades/tf32'] ~= nil end
if not complete then print('PyTorch output:\n' .. torch_out) end
