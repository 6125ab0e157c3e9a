-- bench_gpu.lua (run by scripts/bench.lua --device cuda [steps] [models]
-- [--precision fp32|bf16] [--batch N]): ms per training step on the GPU:
-- natural, AT (PGD-10) and TRADES (beta 6, 10 steps), by default for CNN002
-- (batch 64, 1x28x28) and WRN-16-4 (batch 128, 3x32x32), rllua beside
-- PyTorch (same steps, same GPU, the models and objectives of
-- scripts/torch_ref.py, run by scripts/bench_gpu_torch.py), median of
-- steps (default 10), and the ratio rllua / PyTorch (below 1: rllua is
-- faster).  models is a comma-separated list of rl.models names (CNN* take
-- MNIST's shape, the others CIFAR's), e.g. WRN_40_10; --batch gives every
-- model that batch size.
--
-- fp32 (the default) is timed against PyTorch in fp32 (cuDNN without TF32,
-- as rllua computes) and with TF32 (PyTorch's default).  bf16 times the
-- steps under rl.autocast against torch.autocast('cuda',
-- dtype=torch.bfloat16), each around the whole objective: the attack
-- steps run in bf16 on both sides (PyTorch's autocast cannot leave them in
-- f32), as bench.lua's PGD row and bench_methods.lua do, and as a run with
-- --precision bf16 --attack-precision bf16 trains.
local rl = require 'rl'
local cli = require 'rl.cli'

local MODELS = dofile(((arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.') .. '/bench_models.lua')
-- run by bench.lua (arg[0] is then bench.lua's) or by itself: the usage
-- and the errors name the command that was typed
local ARGS = '[steps] [models] [--precision fp32|bf16] [--batch N]'
local direct = (arg and arg[0] or ''):match('bench_gpu%.lua$') ~= nil
local NAME = direct and 'bench_gpu' or 'bench --device cuda'
local USAGE = direct and ('usage: rllua scripts/bench_gpu.lua ' .. ARGS ..
  '\n       (the same as rllua scripts/bench.lua --device cuda ' .. ARGS .. ')')
  or ('usage: rllua scripts/bench.lua --device cuda ' .. ARGS)
local opts, N, names = cli.main(NAME, function()
  local o, args = cli.parse(arg, {
    usage = USAGE,
    options = { precision = 'string', batch = 'integer' },
    defaults = { precision = 'fp32' }, args = 2 })
  if o.precision ~= 'fp32' and o.precision ~= 'bf16' then
    error("--precision must be fp32 or bf16, not '" .. o.precision .. "'", 0)
  end
  if o.batch and o.batch < 1 then error('--batch must be >= 1', 0) end
  local n = math.tointeger(tonumber(args[1] or 10))
  if not n or n < 1 then error('steps must be a whole number >= 1, not ' .. tostring(args[1]), 0) end
  return o, n, MODELS.parse(args[2] or 'CNN002,WRN_16_4', 'no model %q (known: %s)')
end)
if not rl.cuda.is_available() then
  local _, why = pcall(rl.device, 'cuda')
  io.stderr:write(NAME, ': ', tostring(why), '\n')
  os.exit(1)
end
local bf16 = opts.precision == 'bf16'

-- the median of N timed steps after two warm-up ones; the clock stops
-- after a synchronisation, as PyTorch's side does
local function time_ms(fn)
  fn(); fn(); rl.cuda.synchronize()
  local ts = {}
  for i = 1, N do
    local t0 = rl.clock(); fn(); rl.cuda.synchronize(); ts[i] = (rl.clock() - t0) * 1000
  end
  table.sort(ts)
  return ts[(N + 1) // 2]
end

local function shape_of(name)
  return opts.batch or (name:match('^CNN') and 64 or 128), MODELS.shape(name)
end

-- PyTorch's figures for one model, from its own process, run before
-- rllua's so that the two never compute at once (rllua's cache is emptied
-- between models); model by model, so that a run cut short
-- (scripts/gpu_check.sh has a budget) keeps whole rows
local dir = arg[0]:match('^(.*)/[^/]*$') or '.'
local function torch_figures(name)
  local py = io.popen(string.format("python3 '%s/bench_gpu_torch.py' %d --precision %s%s %s 2>&1", dir, N,
    opts.precision, opts.batch and (' --batch ' .. opts.batch) or '', name))
  local out = py:read('a'); py:close()
  local ref = {}
  for n, meth, ms in out:gmatch('(%S+) (%S+) ([%d%.]+)\n') do ref[n .. ' ' .. meth] = tonumber(ms) end
  return ref, out
end

print(('GPU: %s'):format(rl.cuda.device_name()))
-- the PyTorch columns: their key suffix in bench_gpu_torch.py's output, and heading
local cols
if bf16 then
  print('bf16: rl.autocast against torch.autocast(\'cuda\', dtype=torch.bfloat16), attack steps in bf16 on both sides')
  cols = { { '/bf16', 'PyT bf16' } }
else
  print('PyTorch fp32: cuDNN without TF32 (rllua computes in full fp32); tf32: PyTorch\'s default')
  cols = { { '', 'PyT fp32' }, { '/tf32', 'PyT tf32' } }
end
local head = ('%-10s %-8s %5s %10s'):format('model', 'method', 'batch', 'rllua ' .. opts.precision)
for _, c in ipairs(cols) do head = head .. (' %10s %7s'):format(c[2], 'ratio') end
print(head)
for _, name in ipairs(names) do
  local ref, torch_out = torch_figures(name)
  local B, shape = shape_of(name)
  rl.manual_seed(0)
  local m = rl.models.get(name):to('cuda')
  local opt = rl.optim.SGD(m:parameters(), { lr = 1e-3, momentum = 0.9 })
  local x = rl.rand({ B, table.unpack(shape) }, { device = 'cuda' })
  local y = rl.randint(0, 10, B, { device = 'cuda' })
  for _, meth in ipairs { 'natural', 'at', 'trades' } do
    -- beta is TRADES's alone (rl.methods refuses an option it does not take)
    local mo = meth == 'trades' and { eps = 0.1, beta = 6 } or { eps = 0.1 }
    local fn = rl.methods[meth]
    local t = time_ms(function()
      -- the objective under autocast, backward and the step outside it, as PyTorch's
      local loss = bf16 and rl.autocast({ dtype = 'bf16', attack = 'bf16' }, fn, m, x, y, mo) or fn(m, x, y, mo)
      opt:zero_grad(); loss:backward(); opt:step()
    end)
    local line = ('%-10s %-8s %5d %10.2f'):format(name, meth, B, t)
    for _, c in ipairs(cols) do
      local r = ref[name .. ' ' .. meth .. c[1]]
      line = line .. (' %10s %7s'):format(r and ('%.2f'):format(r) or '-', r and ('%.2f'):format(t / r) or '-')
    end
    print(line)
  end
  -- PyTorch's own output when a figure is missing (an error, or no torch)
  if not ref[name .. ' trades' .. cols[#cols][1]] then print('PyTorch output for ' .. name .. ':\n' .. torch_out) end
  m, opt, x, y = nil, nil, nil, nil
  collectgarbage(); collectgarbage() -- the next model's memory: WRN-40-10 at batch 128 is large
  rl.cuda.empty_cache() -- and PyTorch's, which runs next in its own process
end
local st = rl.cuda.memory_stats()
print(('allocator: %d allocs, %d cache hits, %d cudaMalloc, %d GCs, peak %.1f MiB allocated, %.1f MiB reserved'):format(
  st.allocs, st.cache_hits, st.cuda_mallocs, st.gc_runs, st.peak_allocated / 2 ^ 20, st.peak_reserved / 2 ^ 20))
