-- bench_models.lua - the models the benchmarks time beside PyTorch (those
-- scripts/torch_ref.py has too) and the images each takes; loaded with
-- dofile by bench.lua (the CPU side) and bench_gpu.lua.

-- run as a script (arg[0] is then this file, not bench.lua's or
-- bench_gpu.lua's): say what it is instead of doing nothing
if arg and arg[0] and arg[0]:match('bench_models%.lua$') then
  require('rl.cli').main('bench_models', function()
    error('this file is a module of scripts/bench.lua and bench_gpu.lua, not a script; run rllua scripts/bench.lua ' ..
      '--help (the CPU benchmark) or rllua scripts/bench_gpu.lua --help (the GPU one)', 0)
  end)
end

local M = { KNOWN = { 'CNN001', 'CNN002', 'WRN_16_4', 'WRN_40_10' } }

--- M.parse(list, fmt): the names of a comma-separated list, each checked;
-- one not known is an error of fmt (a format of the name and the known
-- ones).
function M.parse(list, fmt)
  local known, out = {}, {}
  for _, k in ipairs(M.KNOWN) do known[k] = true end
  for m in list:gmatch('[^,%s]+') do
    if not known[m] then error(string.format(fmt, m, table.concat(M.KNOWN, ', ')), 0) end
    out[#out + 1] = m
  end
  return out
end

--- M.shape(name): the images a model takes, CNNs MNIST's 1x28x28, the
-- others CIFAR's 3x32x32.
function M.shape(name) return name:match('^CNN') and { 1, 28, 28 } or { 3, 32, 32 } end

return M
