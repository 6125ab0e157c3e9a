-- bench_methods.lua - the time of a training epoch of AT and TRADES(6) with
-- CNN001 on Fashion-MNIST (batch 64, 2 threads), rllua beside PyTorch
-- doing the same objective (docs/methods.md) on the same machine in the same
-- run.  A full epoch is 938 batches; the script times --batches of them
-- (default 40) on each side and reports the per-epoch extrapolation.
-- --precision bf16 trains under bf16 autocast on both sides, the attack
-- steps included (as --precision bf16 --attack-precision bf16 trains;
-- torch.autocast('cpu', dtype=torch.bfloat16) around the whole objective).
-- --runs N repeats both sides N times, alternating, and reports the medians
-- and each run's ratio (a shared machine's timings wander by tens of per
-- cent from one run to the next).
--   rllua scripts/bench_methods.lua [--batches 40] [--threads 2] [--precision fp32|bf16] [--runs 1]
local rl = require 'rl'

local cli = require 'rl.cli'
local opts = cli.main('bench_methods', function()
  local o = cli.parse(arg, {
    usage = 'usage: rllua scripts/bench_methods.lua [--batches N] [--threads N] [--precision fp32|bf16] [--runs N]',
    options = { batches = 'integer', threads = 'integer', precision = 'string', runs = 'integer' },
    defaults = { batches = 40, threads = 2, precision = 'fp32', runs = 1 } })
  if o.precision ~= 'fp32' and o.precision ~= 'bf16' then
    error("--precision must be fp32 or bf16, not '" .. o.precision .. "'", 0)
  end
  if o.runs < 1 or o.batches < 1 or o.threads < 1 then error('--runs, --batches and --threads must be >= 1', 0) end
  return o
end)
rl.set_num_threads(opts.threads)
local EPOCH = 938 -- batches of 64 in Fashion-MNIST's 60000 training images

local train = rl.data.load('fashion-mnist', { split = 'train' })
local n = opts.batches * 64
local sub = train:select(rl.arange(n))

local function bench_rl(method)
  rl.manual_seed(0)
  local model = rl.models.CNN001()
  local opt = rl.optim.SGD(model:parameters(), { lr = 1e-4, momentum = 0.9 })
  local loader = rl.data.loader(sub, { batch = 64, shuffle = false })
  local fn = rl.methods.get(method)
  local t0 = rl.clock()
  for x, y in loader:iter(1) do
    opt:zero_grad()
    local loss = rl.autocast({ dtype = opts.precision, attack = opts.precision }, fn, model, x, y, { eps = 0.1 })
    loss:backward()
    opt:step()
  end
  return rl.clock() - t0
end

-- PyTorch's side: scripts/bench_methods_torch.py
local function bench_torch()
  local p = io.popen(string.format("/usr/bin/python3 '%s/bench_methods_torch.py' %d %d %s 2>&1",
    arg[0]:match('^(.*)/[^/]*$') or '.', opts.threads, opts.batches, opts.precision))
  local out = p:read('a')
  p:close()
  local r = {}
  for k, v in out:gmatch('(%S+) ([%d%.]+)\n') do r[k] = tonumber(v) end
  return r, out
end

local function median(list)
  local t = { table.unpack(list) }
  table.sort(t)
  local n = #t
  if n == 0 then return nil end
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

-- per method: each run's seconds per epoch on both sides, the sides alternating
local METHODS = { 'at', 'trades6' }
local times, raw = {}, nil
for _, m in ipairs(METHODS) do times[m] = { rllua = {}, torch = {}, ratio = {} } end
for _ = 1, opts.runs do
  local torch, out = bench_torch()
  if not next(torch) then raw = out end
  for _, m in ipairs(METHODS) do
    local t = bench_rl(m) / opts.batches * EPOCH
    local tm = times[m]
    tm.rllua[#tm.rllua + 1] = t
    if torch[m] then
      local r = torch[m] / opts.batches * EPOCH
      tm.torch[#tm.torch + 1] = r
      tm.ratio[#tm.ratio + 1] = t / r
    end
  end
end
print(string.format('CNN001 on Fashion-MNIST, batch 64, %s, %d thread(s): %d batches timed, per-epoch (%d batches) extrapolated%s',
  opts.precision, opts.threads, opts.batches, EPOCH, opts.runs > 1 and string.format('; median of %d runs', opts.runs) or ''))
print(string.format('%-10s %14s %14s %8s   %s', 'method', 'rllua s/epoch', 'torch s/epoch', 'ratio',
  opts.runs > 1 and 'ratios of the runs' or ''))
for _, m in ipairs(METHODS) do
  local tm = times[m]
  local rs = {}
  for i, r in ipairs(tm.ratio) do rs[i] = string.format('%.2f', r) end
  local r = median(tm.torch)
  print(string.format('%-10s %14.1f %14s %8s   %s', m, median(tm.rllua), r and string.format('%.1f', r) or '-',
    #tm.ratio > 0 and string.format('%.3f', median(tm.ratio)) or '-', opts.runs > 1 and table.concat(rs, ' ') or ''))
end
if raw then print('PyTorch side failed or is not installed:\n' .. raw) end
