-- bench_methods.lua - the time of a training epoch of AT and TRADES(6) with
-- CNN001 on Fashion-MNIST (batch 64, 2 threads), rllua beside PyTorch
-- doing the same objective (docs/methods.md) on the same machine in the same
-- run.  A full epoch is 938 batches; the script times --batches of them
-- (default 40) on each side and reports the per-epoch extrapolation.
--   rllua scripts/bench_methods.lua [--batches 40] [--threads 2]
local rl = require 'rl'

local cli = require 'rl.cli'
local opts = cli.main('bench_methods', function()
  return cli.parse(arg, { usage = 'usage: rllua scripts/bench_methods.lua [--batches N] [--threads N]',
    options = { batches = 'integer', threads = 'integer' }, defaults = { batches = 40, threads = 2 } })
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
    local loss = fn(model, x, y, { eps = 0.1 })
    loss:backward()
    opt:step()
  end
  return rl.clock() - t0
end

-- PyTorch's side: scripts/bench_methods_torch.py
local function bench_torch()
  local p = io.popen(string.format("/usr/bin/python3 '%s/bench_methods_torch.py' %d %d 2>&1",
    arg[0]:match('^(.*)/[^/]*$') or '.', opts.threads, opts.batches))
  local out = p:read('a')
  p:close()
  local r = {}
  for k, v in out:gmatch('(%S+) ([%d%.]+)\n') do r[k] = tonumber(v) end
  return r, out
end

local torch, raw = bench_torch()
print(string.format('CNN001 on Fashion-MNIST, batch 64, %d thread(s): %d batches timed, per-epoch (%d batches) extrapolated',
  opts.threads, opts.batches, EPOCH))
print(string.format('%-10s %14s %14s %8s', 'method', 'rllua s/epoch', 'torch s/epoch', 'ratio'))
for _, m in ipairs { 'at', 'trades6' } do
  local t = bench_rl(m) / opts.batches * EPOCH
  local r = torch[m] and torch[m] / opts.batches * EPOCH
  print(string.format('%-10s %14.1f %14s %8s', m, t, r and string.format('%.1f', r) or '-',
    r and string.format('%.3f', t / r) or '-'))
end
if not next(torch) then print('PyTorch side failed or is not installed:\n' .. raw) end
