-- bench_core.lua - the engine's two core speeds, as ratios measured in one run:
--
--   f32 matmul 1024^3 through rl   vs  cblas_sgemm called directly from C
--   a + b on 16M f32 through rl    vs  this machine's memcpy bandwidth
--
-- and the same two operations in PyTorch (Debian's python3-torch, same
-- thread count) when it is installed.  Usage:
--   rllua scripts/bench_core.lua [--threads N] [--reps N]
local rl = require 'rl'

local cli = require 'rl.cli'
local opts = cli.main('bench_core', function()
  return cli.parse(arg, { usage = 'usage: rllua scripts/bench_core.lua [--threads N] [--reps N]',
    options = { threads = 'integer', reps = 'integer' }, defaults = { threads = rl.get_num_threads(), reps = 10 } })
end)
rl.set_num_threads(opts.threads)

-- Best wall time of fn() over reps runs, after one warm-up run.
local function best(reps, fn)
  fn()
  local t = math.huge
  for _ = 1, reps do
    local t0 = rl.clock()
    fn()
    t = math.min(t, rl.clock() - t0)
  end
  return t
end

local N, E = 1024, 16 * 1024 * 1024
local MB = 1024 * 1024

-- matmul
rl.manual_seed(0)
local a, b = rl.randn(N, N), rl.randn(N, N)
-- rl and C alternate, so that both see the same machine noise
local t_rl_mm, t_c_mm = math.huge, math.huge
for _ = 1, 2 * opts.reps do
  t_rl_mm = math.min(t_rl_mm, best(1, function()
    local c <close> = a:matmul(b)
  end))
  t_c_mm = math.min(t_c_mm, rl.bench_sgemm(N, 1))
end
local gflop = 2 * N * N * N / 1e9

-- elementwise add: 2 reads + 1 write of 64 MB, against memcpy's 1 + 1
local x, y = rl.rand(E), rl.rand(E)
local t_rl_add = best(opts.reps, function()
  local z <close> = x + y
end)
local t_memcpy = rl.bench_memcpy(E * 4, opts.reps)
local bw_add = 3 * E * 4 / t_rl_add / 1e9
local bw_memcpy = 2 * E * 4 / t_memcpy / 1e9

-- PyTorch, same sizes and threads, in a child process
local torch = {}
do
  local py = string.format([[
import time, torch
torch.set_num_threads(%d)
def best(f, reps):
    f(); t = 1e30
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t
a = torch.randn(%d, %d); b = torch.randn(%d, %d)
x = torch.rand(%d); y = torch.rand(%d)
print(best(lambda: torch.mm(a, b), %d), best(lambda: x + y, %d))
]], opts.threads, N, N, N, N, E, E, opts.reps, opts.reps)
  local f = io.open('/usr/bin/python3') and io.popen("/usr/bin/python3 -c '" .. py .. "' 2>/dev/null")
  local out = f and f:read('a') or ''
  if f then f:close() end
  torch.mm, torch.add = out:match('^(%S+)%s+(%S+)')
  torch.mm, torch.add = tonumber(torch.mm), tonumber(torch.add)
end

local function row(...) print(string.format('%-34s %12s %12s %10s', ...)) end
print(string.format('rl bench_core: %d thread(s), best of %d', opts.threads, opts.reps))
row('', 'rl', 'reference', 'ratio')
row('f32 matmul 1024^3 (GFLOP/s)', string.format('%.1f', gflop / t_rl_mm),
    string.format('%.1f', gflop / t_c_mm), string.format('%.3f', t_c_mm / t_rl_mm))
row('  reference: cblas_sgemm from C', '', '', '')
row('a + b, 16M f32 (GB/s moved)', string.format('%.2f', bw_add),
    string.format('%.2f', bw_memcpy), string.format('%.3f', bw_add / bw_memcpy))
row('  reference: memcpy of 64 MB', '', '', '')
if torch.mm then
  row('PyTorch matmul (GFLOP/s)', string.format('%.1f', gflop / t_rl_mm),
      string.format('%.1f', gflop / torch.mm), string.format('%.3f', torch.mm / t_rl_mm))
  row('PyTorch a + b (GB/s moved)', string.format('%.2f', bw_add),
      string.format('%.2f', 3 * E * 4 / torch.add / 1e9), string.format('%.3f', torch.add / t_rl_add))
  row('  (ratio > 1: rl is faster)', '', '', '')
else
  print('PyTorch: not available (install python3-torch for the side-by-side figures)')
end
print(string.format('matmul %s the 90%% target; add %s the 70%% target',
  t_c_mm / t_rl_mm >= 0.9 and 'meets' or 'MISSES', bw_add / bw_memcpy >= 0.7 and 'meets' or 'MISSES'))
