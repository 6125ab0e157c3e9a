--- rl.backends: what each backend detected on this machine and chose.
--
--   rl.backends.cpu.info()          -- print the processor, the derived sizes
--                                   -- and each convolution's algorithm
--   rl.backends.cpu.conv_choices()  -- the algorithm of every shape so far
--   rl.backends.cpu.set_conv('im2col')  -- force one (as RL_CPU_CONV does)
--   rl.backends.cuda.conv_choices() -- each bf16 convolution pass's on a GPU
--   rl.backends.cuda.set_conv('implicit')  -- force one (as RL_CUDA_CONV does)
--   rl.backends.cuda.info()         -- print the GPU, its memory and the choices
local core = require 'rl.core'

local backends = { cpu = {}, cuda = {} }
local cpu, cuda = backends.cpu, backends.cuda

-- set_conv of a backend: force is the core function, names what an error
-- offers (blaming the caller of the backend's set_conv).
local function set_conv(what, names, force, name)
  if name ~= nil and type(name) ~= 'string' then
    error(string.format('rl.backends.%s.set_conv: a name (%s) or nil, got %s', what, names, type(name)), 3)
  end
  return force(name)
end

-- The report's line of each choice: its key, algorithm, how it was made
-- and the candidates' times (algs in order, with digits decimals).
local function choice_lines(lines, choices, algs, digits)
  for _, c in ipairs(choices) do
    local ms = {}
    for _, a in ipairs(algs) do
      if c.ms and c.ms[a] then ms[#ms + 1] = string.format('%s %.' .. digits .. 'f ms', a, c.ms[a]) end
    end
    lines[#lines + 1] = string.format('  %-60s %-8s (%s%s)', c.key, c.algorithm, c.how,
      #ms > 0 and ': ' .. table.concat(ms, ', ') or '')
  end
end

local function kib(n) return n >= 1 << 20 and string.format('%g MiB', n / 2 ^ 20) or string.format('%g KiB', n / 1024) end

--- rl.backends.cpu.conv_choices() -> a list of {key, algorithm, how, ms}:
-- every convolution pass (shape, forward or backward) this process has
-- run on the CPU and the algorithm it took: 'direct' (tap by tap on a
-- staged input), 'winograd' (F(2x2, 3x3)), 'winograd4' (F(4x4, 3x3)),
-- 'im2col', or oneDNN's
-- 'onednn' (direct) or 'onednn-wino' (F(4x4, 3x3)) when the build has
-- it.  how: 'measured'
-- here (ms: each candidate's best time), 'cached' (measured by an earlier
-- process on this machine, so that every run of a seed gets the same
-- bits), 'forced' (RL_CPU_CONV or set_conv) or 'rule' (f64, or too small
-- to time).
function cpu.conv_choices() return core._cpu_conv_choices() end

--- rl.backends.cpu.set_conv(name) -> the previous setting: 'direct',
-- 'winograd', 'im2col', 'onednn', 'onednn-wino' or 'winograd4' for every convolution that can
-- take it (the
-- others keep the rule's choice), 'auto' to choose per shape, or nil to
-- follow $RL_CPU_CONV again.
function cpu.set_conv(name)
  return set_conv('cpu', 'direct, winograd, im2col, onednn, onednn-wino, winograd4, auto', core._cpu_conv_force, name)
end

--- rl.backends.cpu.info([{print = false}]) -> the table of
-- rl.core._cpu_info() with `choices` (cpu.conv_choices()) added; prints it
-- as a report unless print = false: the processor (model, caches, vector
-- extensions), what the kernels were built for, the chunk sizes derived
-- from the caches, where the choices are kept, and each shape's algorithm.
function cpu.info(o)
  o = o or {}
  for k in pairs(o) do
    if k ~= 'print' then error(string.format('rl.backends.cpu.info: unknown option %q (print)', tostring(k)), 2) end
  end
  local t = core._cpu_info()
  t.choices = cpu.conv_choices()
  t.threads = core.get_num_threads()
  if o.print == false then return t end
  local feats = {}
  for _, f in ipairs { 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_bf16', 'amx_tile', 'amx_bf16',
    'amx_int8' } do
    if t.features[f] then feats[#feats + 1] = f end
  end
  local lines = {
    string.format('processor   %s (%s), %d CPUs online, %d threads in use', t.model ~= '' and t.model or '?',
      t.vendor, t.cpus, t.threads),
    string.format('caches      L1d %s, L2 %s per core, L3 %s (from %s)', kib(t.l1d), kib(t.l2), kib(t.l3),
      t.cache_source),
    string.format('extensions  %s', #feats > 0 and table.concat(feats, ' ') or 'none of AVX2/AVX-512/AMX'),
    string.format('kernels     built for %s (%d f32 lanes)', t.built_for, t.built_lanes),
    string.format('chunks      convolution %s, Winograd %s (half and three quarters of L2)', kib(t.conv_chunk_bytes),
      kib(t.wino_chunk_bytes)),
    string.format('conv        %s; choices kept in %s', t.conv_forced == 'auto' and
      'measured per shape on first use (RL_CPU_CONV forces one)' or 'forced: ' .. t.conv_forced,
      t.conv_cache ~= '' and t.conv_cache or 'this process only (RL_CPU_CONV_CACHE=off)'),
    string.format('oneDNN      %s', t.onednn and t.onednn ..
      ' (direct and Winograd): candidates; dW by groups of the batch, one thread each, for bits independent of the thread count'
      or 'not in this build (built without libdnnl-dev, or with DNNL=0)'),
  }
  if #t.choices == 0 then
    lines[#lines + 1] = '            no convolution has run yet'
  end
  choice_lines(lines, t.choices, { 'direct', 'winograd', 'im2col', 'onednn', 'onednn-wino', 'winograd4' }, 2)
  print(table.concat(lines, '\n'))
  return t
end

--- rl.backends.cuda.conv_choices() -> a list of {key, algorithm, how, ms}:
-- every bf16 convolution pass (shape, forward, dx, or dW with db) this
-- process has run on a GPU and the algorithm it took: 'im2col' (im2col
-- and cuBLAS's bf16 GEMM) or 'implicit' (the implicit GEMM on the tensor
-- cores, kernels/cuda_igemm.cu).  how: 'measured' here (ms: both
-- candidates' best times), 'cached' (measured by an earlier process on
-- this GPU model, so that every run of a seed gets the same bits),
-- 'forced' (RL_CUDA_CONV or set_conv) or 'rule' (the implicit GEMM cannot
-- run the pass: dx of a strided or dilated layer, or a layer too large).
-- f32 convolutions follow a rule (Winograd for 3x3 stride-1 layers of 32
-- channels or more, else im2col) and are not listed.  Empty without CUDA.
function cuda.conv_choices() return core._cuda_conv_choices() end

--- rl.backends.cuda.set_conv(name) -> the previous setting: 'im2col' or
-- 'implicit' for every bf16 convolution pass that can take it, 'auto' to
-- measure per shape, or nil to follow $RL_CUDA_CONV again.
function cuda.set_conv(name) return set_conv('cuda', 'im2col, implicit, auto', core._cuda_conv_force, name) end

--- rl.backends.cuda.conv_cache() -> the file that keeps the GPU's
-- measured choices ('' when they stay in the process: RL_CUDA_CONV_CACHE=off,
-- or no GPU).
function cuda.conv_cache() return core._cuda_conv_info().cache end

local function gib(n) return n >= 2 ^ 30 and string.format('%.1f GiB', n / 2 ^ 30) or string.format('%.1f MiB', n / 2 ^ 20) end

--- rl.backends.cuda.info([{print = false}]) -> {available, reason, name,
-- capability, memory (rl.cuda.memory_stats()), tf32, conv_forced,
-- conv_cache, choices (cuda.conv_choices())}; prints it as a report unless
-- print = false: the GPU, its memory and the caching allocator's share,
-- the f32 GEMMs' precision, and how each convolution takes its algorithm.
-- Without a usable GPU, available = false and reason says why.
function cuda.info(o)
  o = o or {}
  for k in pairs(o) do
    if k ~= 'print' then error(string.format('rl.backends.cuda.info: unknown option %q (print)', tostring(k)), 2) end
  end
  local ok, why = pcall(core.parse_device, 'cuda')
  local t = { available = ok }
  if not ok then
    t.reason = tostring(why)
    if o.print ~= false then print('no CUDA device: ' .. t.reason) end
    return t
  end
  t.name, t.capability = core.cuda_device_name()
  t.memory = core.cuda_memory_stats()
  t.tf32 = core.cuda_allow_tf32()
  local conv = core._cuda_conv_info()
  t.conv_forced, t.conv_cache = conv.forced, conv.cache
  t.choices = cuda.conv_choices()
  if o.print == false then return t end
  local m = t.memory
  local lines = {
    string.format('device      %s (compute capability %s), %s', t.name, t.capability, gib(m.device_total)),
    string.format('memory      %s in tensors, %s reserved by the caching allocator (peak %s), %s free',
      gib(m.allocated), gib(m.reserved), gib(m.peak_reserved), gib(m.device_free)),
    string.format('f32 GEMMs   %s', t.tf32 and 'TF32 tensor cores (rl.cuda.allow_tf32(false) for full fp32)'
      or 'full fp32 (rl.cuda.allow_tf32(true) for TF32)'),
    'f32 conv    Winograd F(2x2, 3x3) for 3x3 stride-1 layers of 32 channels or more, else im2col',
    string.format('bf16 conv   %s; choices kept in %s', t.conv_forced == 'auto' and
      'each pass measured on its first use, im2col or the implicit GEMM (RL_CUDA_CONV forces one)'
      or 'forced: ' .. t.conv_forced,
      t.conv_cache ~= '' and t.conv_cache or 'this process only (RL_CUDA_CONV_CACHE=off)'),
  }
  if #t.choices == 0 then lines[#lines + 1] = '            no bf16 convolution has run yet' end
  choice_lines(lines, t.choices, { 'im2col', 'implicit' }, 3)
  print(table.concat(lines, '\n'))
  return t
end

return backends
