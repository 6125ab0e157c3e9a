-- bench.lua - training and attack steps of the paper's MNIST networks,
-- rllua beside PyTorch on the same machine in the same run.
--
-- For CNN001 and CNN002, batch 64 of 1x28x28: ms per natural training step
-- (forward, cross-entropy, backward, SGD with momentum 0.9) and per PGD step
-- (input gradient only, then the l-inf step), best of N, in rllua and in PyTorch (run
-- as a child process when python3-torch is installed), and the ratio
-- rllua / PyTorch (below 1: rllua is faster).
--   rllua scripts/bench.lua [--threads 2] [--steps 20] [--batch 64]
--   rllua scripts/bench.lua --device cuda [steps] [models]  (the GPU benchmark)
local rl = require 'rl'
local F = rl.F

local cli = require 'rl.cli'
local SCRIPTS = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'

-- --device cuda: the GPU benchmark (natural, AT, TRADES on CNN002 and
-- WRN-16-4 beside PyTorch on the same GPU) lives in bench_gpu.lua, which
-- takes the plain arguments [steps] [models]
local opts, rest = cli.main('bench', function()
  local o, rest = cli.parse(arg, { usage = 'usage: rllua scripts/bench.lua [--threads N] [--steps N] [--batch N]',
    options = { threads = 'integer', steps = 'integer', batch = 'integer', device = 'string' },
    defaults = { threads = 2, steps = 20, batch = 64, device = 'cpu' }, args = 2 })
  if #rest > 0 and not o.device:match('^cuda') then error('[steps] [models] go with --device cuda', 0) end
  return o, rest
end)
if opts.device:match('^cuda') then
  arg = { [0] = arg[0], table.unpack(rest) }
  return dofile(SCRIPTS .. '/bench_gpu.lua')
end
rl.set_num_threads(opts.threads)

-- the best of n timings of fn (after two warm-up calls), in ms: on a
-- shared machine the minimum is the figure least disturbed by neighbours
local function time_ms(n, fn)
  fn(); fn()
  local best = math.huge
  for _ = 1, n do
    local t0 = rl.clock()
    fn()
    best = math.min(best, (rl.clock() - t0) * 1000)
  end
  return best
end

local function bench_rl(name)
  rl.manual_seed(0)
  local model = rl.models.get(name)
  local params = model:parameters()
  local bufs = {}
  for i, p in ipairs(params) do bufs[i] = rl.zeros_like(p) end
  local x = rl.rand(opts.batch, 1, 28, 28)
  local y = rl.randint(0, 10, opts.batch)
  local lr, mom = 1e-4, 0.9
  model:train()
  local train = time_ms(opts.steps, function()
    model:zero_grad()
    local loss = F.cross_entropy(model(x), y)
    loss:backward()
    rl.no_grad(function()
      for i, p in ipairs(params) do
        bufs[i]:mul_(mom):add_(p.grad)
        p:add_(bufs[i], -lr)
      end
    end)
  end)
  model:eval()
  local eps, step = 0.1, 0.02
  local xadv = x:clone()
  local pgd = time_ms(opts.steps, function()
    local xa = xadv:detach():requires_grad_()
    local g = rl.grad(F.cross_entropy(model(xa), y, 'sum'), xa)
    rl.no_grad(function() F.linf_step_(xadv, g, x, step, eps, 0, 1) end)
  end)
  return train, pgd
end

-- PyTorch's side (scripts/bench_torch.py), when Debian's python3-torch is there
local function bench_torch()
  local f = io.open('/usr/bin/python3')
  if not f then return nil end
  f:close()
  local p = io.popen(string.format("/usr/bin/python3 '%s/bench_torch.py' %d %d %d 2>/dev/null",
    SCRIPTS, opts.threads, opts.batch, opts.steps))
  local out = p:read('a')
  p:close()
  local res = {}
  for name, t, a in out:gmatch('(%S+) (%S+) (%S+)') do res[name] = { tonumber(t), tonumber(a) } end
  return next(res) and res or nil
end

local torch = bench_torch()
print(string.format('bench: batch %d of 1x28x28, %d thread(s), best of %d steps (ms)',
  opts.batch, opts.threads, opts.steps))
print(string.format('%-8s %-10s %10s %10s %8s', 'model', 'step', 'rllua', 'PyTorch', 'ratio'))
for _, name in ipairs { 'CNN001', 'CNN002' } do
  local train, pgd = bench_rl(name)
  local tt = torch and torch[name]
  for k, v in ipairs { { 'train', train }, { 'pgd', pgd } } do
    local ref = tt and tt[k]
    print(string.format('%-8s %-10s %10.2f %10s %8s', name, v[1], v[2],
      ref and string.format('%.2f', ref) or '-', ref and string.format('%.3f', v[2] / ref) or '-'))
  end
end
if not torch then print('PyTorch: not available (install python3-torch for the side-by-side figures)') end
