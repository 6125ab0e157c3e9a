--- rl.autocast: mixed precision, PyTorch's policy (issue #15).
--
--   local loss = rl.autocast('bf16', function() return F.cross_entropy(model(x), y) end)
--   loss:backward()                       -- outside, as in PyTorch
--
-- Inside rl.autocast('bf16', fn, ...) the functional forms (rl.F, which
-- every rl.nn layer calls) choose the precision of each op:
--
--   bf16   conv2d, linear: inputs, weights and bias rounded to bf16, the
--          products summed in f32, the result bf16.  The parameters stay
--          f32 (master weights) and so do their gradients: the casts are
--          differentiable, so a weight's gradient is rounded to bf16 on its
--          way back through the cast, as PyTorch's is.
--   f32    softmax, log_softmax and the losses (cross_entropy, nll_loss,
--          kl_div, mse_loss): bf16 inputs are widened first.  The attack
--          steps (linf_step_, l2_step_) write their f32 input in place and
--          refuse bf16.
--   batch_norm computes in f32 on the input's dtype, as PyTorch's autocast
--          leaves it (batch_norm is on neither of its lists): a bf16 input
--          is normalised with f32 statistics, running statistics, weight
--          and bias, each element widened, computed in f32 and rounded once
--          to a bf16 output (the f32 op's result on the widened input,
--          rounded), and its gradient comes back bf16.  The activations
--          between convolutions stay bf16, as in PyTorch, which halves what
--          batch norm and ReLU read and write.
--   as in  max_pool2d, avg_pool2d, adaptive_avg_pool2d, dropout,
--          dropout2d: computed in f32, the result in the input's dtype (so
--          these take bf16 tensors outside autocast too; max_pool2d runs on
--          bf16 directly, its gradient summed in f32, to the same bits).
--   Elementwise ops on bf16 tensors (relu, adds) stay bf16, computed in f32
--   and rounded once; mixed with f32 they give f32.
--
-- Attacks stay honest: rl.attacks.run (the core every attack, the
-- Lipschitz estimate and AutoAttack run on) calls autocast.attack, which
-- runs the attack in f32 even inside an autocast region, unless the
-- region was opened with {attack = 'bf16'} (--attack-precision bf16,
-- recorded in a run's config).
--
-- On the CPU the convolution is the engine's bf16 conv2d (bf16 operands
-- and result, f32 sums): oneDNN's bf16 kernels (vdpbf16ps on AVX-512 BF16)
-- or rllua's f32 kernels on the widened operands, whichever the per-shape
-- measurement finds faster (engine/cpu/cpu_conv.c).  linear is an f32
-- GEMM on bf16-rounded operands: bf16 x bf16 products are exact in f32, so
-- this is a bf16 GEMM with f32 accumulation, with the bits the engine's
-- bf16 linear would give (see `native` below for why not that).  On CUDA
-- conv2d is engine/conv_gemm.c's bf16 composition and linear the engine's
-- bf16 linear, both cuBLAS bf16 GEMMs summing in f32, and max pooling runs
-- on bf16 directly.  Each bf16 convolution pass (forward, dx, dW) takes
-- im2col or the implicit GEMM on the tensor cores (kernels/cuda_igemm.cu),
-- whichever was measured faster on its shape's first use and kept for the
-- GPU (kernels/cuda_conv.cu; rl.backends.cuda.conv_choices).
-- f64 operands are left alone, as PyTorch leaves them.
--
-- The state is the process's (the engine runs one Lua thread): a coroutine
-- that yields inside a region leaves the region in force for its resumer
-- until it ends.
local autocast = {}

local state = { dtype = nil, attack = nil } -- nil: f32

local PRECISIONS = { bf16 = true, fp32 = true, f32 = true }

local function check(dtype, what)
  if dtype ~= nil and dtype ~= false and not PRECISIONS[dtype] then
    error(string.format("rl.autocast: %s must be 'bf16', 'fp32' or nil, got %s", what, tostring(dtype)), 3)
  end
  return dtype == 'bf16' and 'bf16' or nil
end

-- Run fn(...) with the state set to (dtype, attack); the state before is
-- back afterwards, on error too.  A call that changes nothing is a plain
-- call (errors keep the level they were raised at).
local function with_state(dtype, attack, fn, ...)
  if dtype == state.dtype and attack == state.attack then return fn(...) end
  local before_d, before_a = state.dtype, state.attack
  state.dtype, state.attack = dtype, attack
  local res = table.pack(pcall(fn, ...))
  state.dtype, state.attack = before_d, before_a
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- rl.autocast(dtype, fn, ...) -> fn(...)'s results, with the ops inside
-- in mixed precision: dtype 'bf16', or 'fp32' / nil / false for none (a
-- region in f32 inside another).  dtype may be a table {dtype = 'bf16',
-- attack = 'bf16'} to let attacks inside run in bf16 too (attack 'bf16'
-- needs dtype 'bf16').
function autocast.run(dtype, fn, ...)
  local attack
  if type(dtype) == 'table' then
    for k in pairs(dtype) do
      if k ~= 'dtype' and k ~= 'attack' then
        error(string.format('rl.autocast: unknown option %q (dtype, attack)', tostring(k)), 2)
      end
    end
    attack = check(dtype.attack, 'attack')
    dtype = dtype.dtype
  end
  dtype = check(dtype, 'the dtype')
  -- as exp.config's rule: an f32 region's attacks are f32 (it ran them so,
  -- silently, when asked for bf16)
  if attack and not dtype then
    error("rl.autocast: attack 'bf16' needs dtype 'bf16' (the attacks of an f32 region are f32)", 2)
  end
  if type(fn) ~= 'function' then error('rl.autocast: a function to run is expected, got ' .. type(fn), 2) end
  return with_state(dtype, attack, fn, ...)
end

--- autocast.attack(fn, ...): fn(...) as an attack runs: in f32 unless the
-- enclosing region allows bf16 attacks.
function autocast.attack(fn, ...)
  if not state.dtype then return fn(...) end
  return with_state(state.attack, state.attack, fn, ...)
end

--- The precision in force: 'bf16' or 'fp32', and the attacks' ('bf16' or 'fp32').
function autocast.state()
  return state.dtype or 'fp32', state.attack or 'fp32'
end

-- ---------------------------------------------------------------------------
-- the policy, installed on rl.F

local LOW = { 'conv2d', 'linear' }
local WIDE = { 'softmax', 'log_softmax', 'cross_entropy', 'nll_loss', 'kl_div', 'mse_loss' }
local SAME = { 'max_pool2d', 'avg_pool2d', 'adaptive_avg_pool2d', 'dropout', 'dropout2d' }

--- Wrap rl.F's functions with the policy (rl.base does this once).
function autocast.install(rl)
  local F = rl.F
  local wrapped = require('rl.options').wrapped -- rl.help reads the wrapped function's doc
  local is_tensor = rl.is_tensor
  -- an operand rounded to bf16, held in f32 for the f32 kernels
  local function low(t)
    if not is_tensor(t) then return t end
    return (t.dtype == 'bf16' and t or t:bf16()):float()
  end
  local function wide(t) return is_tensor(t) and t.dtype == 'bf16' and t:float() or t end
  local function to_bf16(t) return is_tensor(t) and t.dtype ~= 'bf16' and t:bf16() or t end
  -- where the engine's own bf16 kernels run; the others compute in f32 on
  -- bf16-rounded operands.  On the CPU linear stays there: its engine form
  -- (an sgemm on widened operands, as fast) would widen the weight again
  -- for the backward, which the saved f32 copy spares (CNN001's fc1, 9216
  -- x 128: 3 ms of a 21 ms bf16 step).  On CUDA the engine's bf16 linear
  -- is cuBLAS's bf16 GEMM, as PyTorch's.
  local native = { conv2d = 'any', max_pool2d = 'any', linear = 'cuda' }
  local function runs_native(name, x)
    local where = native[name]
    return where ~= nil and is_tensor(x) and (where == 'any' or x.device ~= 'cpu')
  end
  for _, name in ipairs(LOW) do
    local raw = F[name]
    F[name] = function(x, w, b, ...)
      -- f64 is not cast (as PyTorch's autocast leaves it)
      if state.dtype ~= 'bf16' or is_tensor(x) and x.dtype == 'f64' or is_tensor(w) and w.dtype == 'f64' then
        return raw(x, w, b, ...)
      end
      if runs_native(name, x) then return raw(to_bf16(x), to_bf16(w), to_bf16(b), ...) end
      -- the products of bf16 operands are exact in f32, the sums f32; the
      -- result rounded to bf16
      return raw(low(x), low(w), low(b), ...):bf16()
    end
    wrapped[F[name]] = wrapped[raw] or raw -- rl.base's checks wrap the C function
  end
  for _, name in ipairs(WIDE) do
    local raw = F[name]
    F[name] = function(...)
      if state.dtype ~= 'bf16' then return raw(...) end
      local args = table.pack(...)
      for i = 1, args.n do args[i] = wide(args[i]) end
      return raw(table.unpack(args, 1, args.n))
    end
    wrapped[F[name]] = wrapped[raw] or raw -- rl.base's checks wrap the C function
  end
  for _, name in ipairs(SAME) do
    local raw = F[name]
    F[name] = function(x, ...)
      if not (is_tensor(x) and x.dtype == 'bf16') or runs_native(name, x) then return raw(x, ...) end
      local res = table.pack(raw(x:float(), ...))
      res[1] = res[1]:bf16()
      return table.unpack(res, 1, res.n)
    end
    wrapped[F[name]] = wrapped[raw] or raw
  end
  -- An op's error (a C function's, raised at the line that called it: the
  -- policy's above) is raised again at the line that called rl.F's
  -- function, without this file's position.
  for _, list in ipairs { LOW, WIDE, SAME } do
    for _, name in ipairs(list) do
      local policy, raw = F[name], wrapped[F[name]]
      F[name] = function(...)
        local res = table.pack(pcall(policy, ...))
        if res[1] then return table.unpack(res, 2, res.n) end
        local e = res[2]
        -- a C function's argument error names the local it was called as
        if type(e) == 'string' then e = e:gsub("(bad argument #%d+ to )'raw'", "%1'F." .. name .. "'") end
        require('rl.options').reraise(e, 2)
      end
      wrapped[F[name]] = raw
    end
  end
end

return setmetatable(autocast, { __call = function(_, ...) return autocast.run(...) end })
