-- bench.lua - training and attack steps of the paper's MNIST networks,
-- rllua beside PyTorch on the same machine in the same run.
--
-- For CNN001 and CNN002, batch 64 of 1x28x28: ms per natural training step
-- (forward, cross-entropy, backward, SGD with momentum 0.9) and per PGD step
-- (input gradient only, then the l-inf step), best of --steps, in rllua and
-- in PyTorch (run as a child process when python3-torch is installed), and
-- the ratio rllua / PyTorch (below 1: rllua is faster).  Each figure is the
-- median of --runs such measurements, rllua's and PyTorch's alternating,
-- for each thread count of --threads.  The output starts with the
-- processor and ends with the algorithm each convolution took
-- (rl.backends.cpu).  --precision bf16 times both under bf16 autocast
-- (rl.autocast and torch.autocast('cpu', dtype=torch.bfloat16); the PGD
-- step's forward too, as --attack-precision bf16 would run it).  --models
-- times other models of scripts/torch_ref.py as well: WRN_16_4 (batch
-- norm, CIFAR's 3x32x32 images; the CNNs take MNIST's 1x28x28).
--   rllua scripts/bench.lua [--threads 2,1] [--runs 5] [--steps 20] [--batch 64] [--precision fp32|bf16]
--                           [--models CNN001,CNN002]
--   rllua scripts/bench.lua --device cuda [steps] [models] [--precision fp32|bf16] [--batch N]  (the GPU benchmark)
local rl = require 'rl'
local F = rl.F

local cli = require 'rl.cli'
local SCRIPTS = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local MODELS = dofile(SCRIPTS .. '/bench_models.lua')

-- --device cuda: the GPU benchmark (natural, AT, TRADES on CNN002 and
-- WRN-16-4 beside PyTorch on the same GPU) lives in bench_gpu.lua, which
-- takes the plain arguments [steps] [models], --precision, and --batch
-- when one is given (its default is per model: 64 for CNN*, 128 for WRN)
local opts, rest = cli.main('bench', function()
  local o, rest = cli.parse(arg, {
    usage = 'usage: rllua scripts/bench.lua [--threads 2,1] [--runs 5] [--steps N] [--batch N] [--precision fp32|bf16] ' ..
      '[--models CNN001,CNN002]\n' ..
      '       rllua scripts/bench.lua --device cuda [steps] [models] [--precision fp32|bf16] [--batch N]',
    options = { threads = 'string', runs = 'integer', steps = 'integer', batch = 'integer', device = 'string',
      precision = 'string', models = 'string' },
    defaults = { threads = '2,1', runs = 5, steps = 20, batch = 64, device = 'cpu', precision = 'fp32',
      models = 'CNN001,CNN002' }, args = 2 })
  -- bench_gpu.lua and its PyTorch side time the first GPU only
  if o.device ~= 'cpu' and o.device ~= 'cuda' then
    error("--device must be cpu or cuda, not '" .. o.device .. "'", 0)
  end
  if #rest > 0 and not o.device:match('^cuda') then error('[steps] [models] go with --device cuda', 0) end
  if o.precision ~= 'fp32' and o.precision ~= 'bf16' then
    error("--precision must be fp32 or bf16, not '" .. o.precision .. "'", 0)
  end
  local list = {}
  for t in o.threads:gmatch('[^,]+') do
    list[#list + 1] = math.tointeger(tonumber(t)) or error('--threads: not a thread count: ' .. t, 0)
    if list[#list] < 1 then error('--threads: counts must be >= 1', 0) end
  end
  o.threads = list
  o.models = MODELS.parse(o.models, "--models: '%s' is not one of %s")
  if #o.models == 0 then error('--models: no model named', 0) end
  for _, a in ipairs(arg) do
    if o.device ~= 'cpu' and a:match('^%-%-models') then
      error('--models goes with the CPU benchmark; --device cuda takes [steps] [models]', 0)
    end
  end
  if o.runs < 1 or o.steps < 1 or o.batch < 1 then error('--runs, --steps and --batch must be >= 1', 0) end
  return o, rest
end)
if opts.device:match('^cuda') then
  local gpu = { [0] = arg[0], table.unpack(rest) }
  table.move({ '--precision', opts.precision }, 1, 2, #gpu + 1, gpu)
  for _, a in ipairs(arg) do
    if a == '--batch' then table.move({ '--batch', tostring(opts.batch) }, 1, 2, #gpu + 1, gpu) end
  end
  arg = gpu
  return dofile(SCRIPTS .. '/bench_gpu.lua')
end

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
  local x = rl.rand(opts.batch, table.unpack(MODELS.shape(name)))
  local y = rl.randint(0, 10, opts.batch)
  local lr, mom = 1e-4, 0.9
  local prec = opts.precision
  model:train()
  local train = time_ms(opts.steps, function()
    model:zero_grad()
    local loss = rl.autocast(prec, function() return F.cross_entropy(model(x), y) end)
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
    local loss = rl.autocast({ dtype = prec, attack = prec }, function() return F.cross_entropy(model(xa), y, 'sum') end)
    local g = rl.grad(loss, xa)
    rl.no_grad(function() F.linf_step_(xadv, g, x, step, eps, 0, 1) end)
  end)
  return train, pgd
end

-- PyTorch's side (scripts/bench_torch.py), when Debian's python3-torch is there
local function bench_torch(threads)
  local f = io.open('/usr/bin/python3')
  if not f then return nil end
  f:close()
  local p = io.popen(string.format("/usr/bin/python3 '%s/bench_torch.py' %d %d %d %s %s 2>/dev/null",
    SCRIPTS, threads, opts.batch, opts.steps, opts.precision, table.concat(opts.models, ',')))
  local out = p:read('a')
  p:close()
  local res = {}
  for name, t, a in out:gmatch('(%S+) (%S+) (%S+)') do res[name] = { tonumber(t), tonumber(a) } end
  return next(res) and res or nil
end

local function median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n == 0 then return nil end
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local info = rl.backends.cpu.info { print = false }
print(string.format('processor: %s (%s), %d CPUs; L2 %d KiB per core; %s; kernels built for %s',
  info.model ~= '' and info.model or '?', info.vendor, info.cpus, info.l2 // 1024,
  info.features.avx512f and 'AVX-512' .. (info.features.avx512_bf16 and ' (BF16)' or '') ..
    (info.features.amx_tile and ', AMX' or '') or info.features.avx2 and 'AVX2' or 'no AVX2', info.built_for))
local have_torch = true
for _, threads in ipairs(opts.threads) do
  rl.set_num_threads(threads)
  -- samples[model][step] = {rllua = {...}, torch = {...}, ratio = {...}}
  local samples = {}
  for _, name in ipairs(opts.models) do
    samples[name] = { train = { rllua = {}, torch = {}, ratio = {} }, pgd = { rllua = {}, torch = {}, ratio = {} } }
  end
  for _ = 1, opts.runs do
    local torch = have_torch and bench_torch(threads)
    have_torch = torch ~= nil
    for _, name in ipairs(opts.models) do
      local train, pgd = bench_rl(name)
      for k, v in ipairs { { 'train', train }, { 'pgd', pgd } } do
        local sm = samples[name][v[1]]
        sm.rllua[#sm.rllua + 1] = v[2]
        local ref = torch and torch[name] and torch[name][k]
        if ref then
          sm.torch[#sm.torch + 1] = ref
          sm.ratio[#sm.ratio + 1] = v[2] / ref
        end
      end
    end
  end
  print(string.format('\nbatch %d (CNNs 1x28x28, WRNs 3x32x32), %s, %d thread(s): median of %d runs, each the best ' ..
    'of %d steps (ms)', opts.batch, opts.precision, threads, opts.runs, opts.steps))
  print(string.format('%-9s %-8s %10s %10s %8s   %s', 'model', 'step', 'rllua', 'PyTorch', 'ratio', 'ratios of the runs'))
  for _, name in ipairs(opts.models) do
    for _, step in ipairs { 'train', 'pgd' } do
      local sm = samples[name][step]
      local rs = {}
      for i, r in ipairs(sm.ratio) do rs[i] = string.format('%.2f', r) end
      local t = median(sm.torch)
      print(string.format('%-9s %-8s %10.2f %10s %8s   %s', name, step, median(sm.rllua),
        t and string.format('%.2f', t) or '-', #sm.ratio > 0 and string.format('%.3f', median(sm.ratio)) or '-',
        table.concat(rs, ' ')))
    end
  end
end
if not have_torch then print('PyTorch: not available (install python3-torch for the side-by-side figures)') end
-- which algorithm each convolution pass took (measured on its first use,
-- or kept from an earlier process on this machine)
print('\nconvolutions (rl.backends.cpu.conv_choices):')
for _, c in ipairs(rl.backends.cpu.conv_choices()) do
  if c.key:find(' n' .. opts.batch .. ' ', 1, true) then
    print(string.format('  %-58s %-8s (%s)', c.key, c.algorithm, c.how))
  end
end
