-- ops_spec.lua - values of the tensor ops, checked against plain Lua.
--
-- Every expectation is either worked out by hand (small cases) or computed
-- here in double precision by ordinary Lua loops over the tensor's own data
-- (x:tolist()), so a spec proves the engine's numbers rather than merely
-- running the code.  Dims and positions are 1-based; index VALUES are 0-based.
local rl = require 'rl'

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------

local F64 = { rtol = 1e-12, atol = 1e-13 }
local F32 = { rtol = 1e-6, atol = 1e-6 }
local EXACT = { rtol = 0, atol = 0 }

local function isnan(v) return v ~= v end

local function fmt(v)
  if type(v) == 'number' then return string.format('%.17g', v) end
  return tostring(v)
end

-- Compare nested tables (or numbers) got vs want; raises with the path of
-- the first mismatch.  tol = {rtol=, atol=}: |g - w| <= atol + rtol * |w|.
local function compare(got, want, tol, path)
  path = path or ''
  if type(want) == 'table' then
    if type(got) ~= 'table' then
      return false, ('at %s: expected a table of %d, got %s'):format(path == '' and 'top' or path,
        #want, fmt(got))
    end
    if #got ~= #want then
      return false, ('at %s: expected %d entries, got %d'):format(path == '' and 'top' or path,
        #want, #got)
    end
    for i = 1, #want do
      local ok, msg = compare(got[i], want[i], tol, path .. '[' .. i .. ']')
      if not ok then return false, msg end
    end
    return true
  end
  if type(got) ~= 'number' then
    return false, ('at %s: expected %s, got %s'):format(path == '' and 'top' or path, fmt(want),
      type(got) == 'table' and 'a table' or fmt(got))
  end
  if isnan(want) then
    if isnan(got) then return true end
  elseif got == want then
    return true
  elseif want ~= math.huge and want ~= -math.huge and got == got
      and math.abs(got - want) <= tol.atol + tol.rtol * math.abs(want) then
    return true
  end
  return false, ('at %s: expected %s, got %s'):format(path == '' and 'top' or path, fmt(want),
    fmt(got))
end

local function values(x)
  if rl.is_tensor(x) then return x:tolist() end
  return x
end

-- check(x, want, tol): x a tensor (or table), want nested numbers.
local function check(x, want, tol)
  local ok, msg = compare(values(x), want, tol or F64)
  if not ok then error(msg, 2) end
end

local function check_exact(x, want)
  local ok, msg = compare(values(x), want, EXACT)
  if not ok then error(msg, 2) end
end

local function check_shape(x, shape)
  local ok, msg = compare(x.shape, shape, EXACT)
  if not ok then error('shape: ' .. msg, 2) end
end

-- f() raises an error holding each of the plain strings in ...
local function fails_with(f, ...)
  local ok, e = pcall(f)
  assert(not ok, 'expected an error')
  for _, want in ipairs { ... } do
    assert(tostring(e):find(want, 1, true), ('expected "%s" in: %s'):format(want, tostring(e)))
  end
end

-- an n-d array as {shape = {...}, data = {flat, row-major}}
local function nd(v)
  if rl.is_tensor(v) then v = v:tolist() end
  if type(v) == 'number' then return { shape = {}, data = { v } } end
  local shape, t = {}, v
  while type(t) == 'table' do
    shape[#shape + 1] = #t
    if #t == 0 then break end
    t = t[1]
  end
  local data = {}
  local function walk(x)
    if type(x) == 'table' then
      for i = 1, #x do walk(x[i]) end
    else
      data[#data + 1] = x
    end
  end
  walk(v)
  return { shape = shape, data = data }
end

local function numel(shape)
  local n = 1
  for i = 1, #shape do n = n * shape[i] end
  return n
end

local function nested(a)
  local pos = 0
  local function build(d)
    if d > #a.shape then
      pos = pos + 1
      return a.data[pos]
    end
    local r = {}
    for i = 1, a.shape[d] do r[i] = build(d + 1) end
    return r
  end
  return build(1)
end

-- Visit every multi-index of shape in row-major order: fn(idx) (1-based).
local function each_index(shape, fn)
  local n = numel(shape)
  local idx = {}
  for i = 1, #shape do idx[i] = 1 end
  for _ = 1, n do
    fn(idx)
    for i = #shape, 1, -1 do
      idx[i] = idx[i] + 1
      if idx[i] <= shape[i] then break end
      idx[i] = 1
    end
  end
end

-- flat 1-based offset of idx (aligned to the right of out's dims) in a,
-- with size-1 dims of a broadcast
local function bcast_offset(a, idx, nout)
  local off, lead = 0, nout - #a.shape
  for i = 1, #a.shape do
    local s = a.shape[i]
    off = off * s + (s == 1 and 0 or idx[i + lead] - 1)
  end
  return off + 1
end

local function bcast_shape(sa, sb)
  local n = math.max(#sa, #sb)
  local out = {}
  for i = 1, n do
    local x, y = sa[i - (n - #sa)] or 1, sb[i - (n - #sb)] or 1
    assert(x == y or x == 1 or y == 1, 'reference: shapes do not broadcast')
    out[i] = x == 1 and y or x
  end
  return out
end

-- NumPy-broadcast elementwise reference over any number of operands.
local function ref_map(fn, ...)
  local args = { ... }
  local arrs = {}
  local shape = {}
  for i = 1, #args do
    arrs[i] = nd(args[i])
    shape = bcast_shape(shape, arrs[i].shape)
  end
  local out = { shape = shape, data = {} }
  each_index(shape, function(idx)
    local vs = {}
    for i = 1, #arrs do vs[i] = arrs[i].data[bcast_offset(arrs[i], idx, #shape)] end
    out.data[#out.data + 1] = fn(table.unpack(vs, 1, #arrs))
  end)
  return nested(out)
end

-- Reduction reference: fn(list of values in order along the reduced dims)
-- -> value; dims nil = all.
local function ref_reduce(v, dims, keepdim, fn)
  local a = nd(v)
  local r = #a.shape
  local red = {}
  if dims == nil then
    for d = 1, r do red[d] = true end
  else
    if type(dims) == 'number' then dims = { dims } end
    for _, d in ipairs(dims) do red[d < 0 and r + d + 1 or d] = true end
  end
  local kshape, oshape = {}, {}
  for d = 1, r do
    kshape[d] = red[d] and 1 or a.shape[d]
    if not red[d] then oshape[#oshape + 1] = a.shape[d] end
  end
  local buckets = {}
  for k = 1, numel(kshape) do buckets[k] = {} end
  local pos = 0
  each_index(a.shape, function(idx)
    pos = pos + 1
    local key = 0
    for d = 1, r do key = key * kshape[d] + (red[d] and 0 or idx[d] - 1) end
    local b = buckets[key + 1]
    b[#b + 1] = a.data[pos]
  end)
  local out = { shape = keepdim and kshape or oshape, data = {} }
  for k = 1, #buckets do out.data[k] = fn(buckets[k]) end
  return nested(out)
end

-- torch.matmul reference (1-D operands, broadcast batch dims).
local function ref_matmul(A, B)
  local a, b = nd(A), nd(B)
  local a1, b1 = #a.shape == 1, #b.shape == 1
  if a1 then a = { shape = { 1, a.shape[1] }, data = a.data } end
  if b1 then b = { shape = { b.shape[1], 1 }, data = b.data } end
  local ra, rb = #a.shape, #b.shape
  local n, k, m = a.shape[ra - 1], a.shape[ra], b.shape[rb]
  assert(b.shape[rb - 1] == k, 'reference: inner sizes differ')
  local ba, bb = {}, {}
  for i = 1, ra - 2 do ba[i] = a.shape[i] end
  for i = 1, rb - 2 do bb[i] = b.shape[i] end
  local bs = bcast_shape(ba, bb)
  local out = { shape = {}, data = {} }
  each_index(bs, function(idx)
    local oa = (bcast_offset({ shape = ba }, idx, #bs) - 1) * n * k
    local ob = (bcast_offset({ shape = bb }, idx, #bs) - 1) * k * m
    for i = 1, n do
      for j = 1, m do
        local s = 0
        for p = 1, k do s = s + a.data[oa + (i - 1) * k + p] * b.data[ob + (p - 1) * m + j] end
        out.data[#out.data + 1] = s
      end
    end
  end)
  for i = 1, #bs do out.shape[#out.shape + 1] = bs[i] end
  if not a1 then out.shape[#out.shape + 1] = n end
  if not b1 then out.shape[#out.shape + 1] = m end
  return nested(out)
end

-- Deterministic pseudo-random nested tables.
local seed = 12345
local function rnd()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end
local function rand_table(shape, kind)
  local out = { shape = shape, data = {} }
  for i = 1, numel(shape) do
    local u = rnd()
    if kind == 'int' then
      out.data[i] = math.floor(u * 19) - 9
    elseif kind == 'eighths' then
      out.data[i] = (math.floor(u * 81) - 40) / 8
    else
      out.data[i] = u * 4 - 2
    end
  end
  return nested(out)
end

local function sum(list)
  local s = 0
  for i = 1, #list do s = s + list[i] end
  return s
end
local function mean(list) return sum(list) / #list end
local function prod(list)
  local p = 1
  for i = 1, #list do p = p * list[i] end
  return p
end

local function tanh(x)
  if math.abs(x) > 20 then return x > 0 and 1 or -1 end
  local e, f = math.exp(x), math.exp(-x)
  return (e - f) / (e + f)
end
local function log1p(x)
  if math.abs(x) < 1e-4 then return x - x * x / 2 + x * x * x / 3 - x ^ 4 / 4 end
  return math.log(1 + x)
end
local function expm1(x)
  if math.abs(x) < 1e-3 then return x + x * x / 2 + x ^ 3 / 6 + x ^ 4 / 24 + x ^ 5 / 120 end
  return math.exp(x) - 1
end
local function round_half_even(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 then return f + 1 end
  if d < 0.5 then return f end
  return f % 2 == 0 and f or f + 1
end
local function sign(x)
  if x > 0 then return 1 elseif x < 0 then return -1 end
  return 0
end
local function rawsame(a, b) return rawequal(a, b) end

---------------------------------------------------------------------------
-- construction
---------------------------------------------------------------------------

describe('rl.tensor and tolist', function()
  it('infers dtypes: integers i64, floats f32, booleans u8', function()
    assert.are.equal('i64', rl.tensor{ 1, 2, 3 }.dtype)
    assert.are.equal('f32', rl.tensor{ 1, 2.5 }.dtype)
    assert.are.equal('u8', rl.tensor{ true, false }.dtype)
    assert.are.equal('f64', rl.tensor({ 1, 2 }, 'f64').dtype)
    assert.are.equal('f64', rl.tensor({ 1, 2 }, { dtype = 'f64' }).dtype)
    check_exact(rl.tensor{ true, false, true }, { 1, 0, 1 })
  end)

  it('round-trips nested tables and 0-dim tensors', function()
    local t = { { 1, 2, 3 }, { 4, 5, 6 } }
    check_exact(rl.tensor(t), t)
    check_shape(rl.tensor(t), { 2, 3 })
    local s = rl.tensor(7)
    check_shape(s, {})
    assert.are.equal(7, s:item())
    assert.are.equal(7, s:tolist())
    check_exact(rl.tensor({ 0.5, -1.25 }, 'f64'), { 0.5, -1.25 })
  end)

  it('arange(n) is 0..n-1 as i64', function()
    local a = rl.arange(5)
    assert.are.equal('i64', a.dtype)
    check_exact(a, { 0, 1, 2, 3, 4 })
    check_exact(rl.arange(2, 8, 3), { 2, 5 })
  end)
end)

---------------------------------------------------------------------------
-- unary
---------------------------------------------------------------------------

local GENERAL = { -2.5, -1.5, -0.7, -0.5, 0, 0.3, 0.5, 1.5, 2.5, 3.7 }
local POSITIVE = { 0.1, 0.5, 1, 2.5, 9, 123.25 }
local NONZERO = { -3, -0.25, 0.1, 0.5, 2, 7.5 }

local unary_cases = {
  { 'neg', GENERAL, function(x) return -x end },
  { 'abs', GENERAL, math.abs },
  { 'sign', GENERAL, sign },
  { 'exp', GENERAL, math.exp },
  { 'log', POSITIVE, math.log },
  { 'sqrt', POSITIVE, math.sqrt },
  { 'rsqrt', POSITIVE, function(x) return 1 / math.sqrt(x) end },
  { 'relu', GENERAL, function(x) return x > 0 and x or 0 end },
  { 'sigmoid', GENERAL, function(x) return 1 / (1 + math.exp(-x)) end },
  { 'tanh', GENERAL, tanh },
  { 'square', GENERAL, function(x) return x * x end },
  { 'reciprocal', NONZERO, function(x) return 1 / x end },
  { 'floor', GENERAL, math.floor },
  { 'ceil', GENERAL, math.ceil },
  { 'round', GENERAL, round_half_even },
  { 'log1p', { -0.5, 0, 0.3, 5, 1e-3 }, log1p },
  { 'expm1', { -1, 0, 0.3, 2, 1e-3 }, expm1 },
  { 'sin', GENERAL, math.sin },
  { 'cos', GENERAL, math.cos },
}

describe('unary ops', function()
  for _, c in ipairs(unary_cases) do
    local name, input, ref = c[1], c[2], c[3]
    for _, dt in ipairs{ 'f64', 'f32' } do
      it(name .. ' (' .. dt .. ') matches Lua math, out of place and in place', function()
        local x = rl.tensor(input, dt)
        local data = x:tolist()
        local want = {}
        for i, v in ipairs(data) do want[i] = ref(v) end
        local tol = dt == 'f64' and F64 or F32
        local y = x[name](x)
        assert.are.equal(dt, y.dtype)
        check(y, want, tol)
        check(x, data, EXACT) -- input untouched
        -- a 2-D, non-contiguous input gives the same values
        local x2 = rl.tensor({ input, input }, dt):t()
        local want2 = {}
        for i = 1, #input do want2[i] = { want[i], want[i] } end
        check(x2[name](x2), want2, tol)
        -- in place: the same object, same dtype, same values
        local z = x:clone()
        local r = z[name .. '_'](z)
        assert.is_true(rawsame(r, z))
        assert.are.equal(dt, z.dtype)
        check(z, values(y), EXACT)
      end)
    end
  end

  it('round is half-to-even like torch.round', function()
    check_exact(rl.tensor({ 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 2.51 }, 'f64'):round(),
      { 0, 2, 2, 0, -2, -2, 0, 3 })
  end)

  it('log1p and expm1 keep relative precision for tiny inputs', function()
    local x = rl.tensor({ 1e-10, -3e-12 }, 'f64')
    check(x:log1p(), { log1p(1e-10), log1p(-3e-12) }, { rtol = 1e-14, atol = 0 })
    check(x:expm1(), { expm1(1e-10), expm1(-3e-12) }, { rtol = 1e-14, atol = 0 })
  end)

  it('handles infinities and nan', function()
    local inf = math.huge
    check(rl.tensor({ -inf, 0, inf }, 'f64'):exp(), { 0, 1, inf })
    check(rl.tensor({ 0, -1, inf }, 'f64'):log(), { -inf, 0 / 0, inf })
    check(rl.tensor({ -1, 4 }, 'f64'):sqrt(), { 0 / 0, 2 })
    check(rl.tensor({ -inf, inf }, 'f64'):sigmoid(), { 0, 1 })
    check(rl.tensor({ -inf, inf }, 'f64'):tanh(), { -1, 1 })
    check(rl.tensor({ 0 }, 'f64'):reciprocal(), { inf })
  end)

  it('sigmoid does not overflow for large negative inputs', function()
    local y = rl.tensor({ -800, -100, 100, 800 }, 'f64'):sigmoid()
    check(y, { 0, 1 / (1 + math.exp(100)), 1, 1 }, { rtol = 1e-12, atol = 0 })
  end)

  it('neg, abs, sign, square, relu keep integer dtypes', function()
    local x = rl.tensor{ -3, 0, 2 }
    for _, c in ipairs{
      { 'neg', { 3, 0, -2 } }, { 'abs', { 3, 0, 2 } }, { 'sign', { -1, 0, 1 } },
      { 'square', { 9, 0, 4 } }, { 'relu', { 0, 0, 2 } },
    } do
      local y = x[c[1]](x)
      assert.are.equal('i64', y.dtype, c[1])
      check_exact(y, c[2])
    end
    local z = x:clone():neg_()
    assert.are.equal('i64', z.dtype)
    check_exact(z, { 3, 0, -2 })
    check_exact(-x, { 3, 0, -2 })
  end)

  it('real-only ops turn integers into f32', function()
    local y = rl.tensor{ 1, 4, 9 }:sqrt()
    assert.are.equal('f32', y.dtype)
    check(y, { 1, 2, 3 }, F32)
    local e = rl.tensor{ 0, 1 }:exp()
    assert.are.equal('f32', e.dtype)
    check(e, { 1, math.exp(1) }, F32)
  end)

  it('clamp(lo, hi), clamp(lo), clamp(nil, hi) and clamp_', function()
    local x = rl.tensor({ -3, -1, 0, 0.5, 2, 5 }, 'f64')
    check(x:clamp(-1, 2), { -1, -1, 0, 0.5, 2, 2 })
    check(x:clamp(0), { 0, 0, 0, 0.5, 2, 5 })
    check(x:clamp(nil, 0.5), { -3, -1, 0, 0.5, 0.5, 0.5 })
    local y = x:clone()
    assert.is_true(rawsame(y:clamp_(-1, 1), y))
    check(y, { -1, -1, 0, 0.5, 1, 1 })
    local i = rl.tensor{ -5, 0, 5 }:clamp(-2, 3)
    assert.are.equal('i64', i.dtype)
    check_exact(i, { -2, 0, 3 })
    -- tensor bounds broadcast
    local lo = rl.tensor({ { -1 }, { 1 } }, 'f64')
    local hi = rl.tensor({ { 0 }, { 3 } }, 'f64')
    check(rl.tensor({ -2, 0.5, 4 }, 'f64'):clamp(lo, hi), { { -1, 0, 0 }, { 1, 1, 3 } })
  end)

  it('clamp of an integer tensor by a fractional number computes in f32, as PyTorch', function()
    local i = rl.tensor{ 0, 1, 2 }
    local r = i:clamp(0.5, 1.5)
    assert.are.equal('f32', r.dtype)
    check(r, { 0.5, 1, 1.5 }, F32)
    check(i:clamp(0.5), { 0.5, 1, 2 }, F32)
    check(i:clamp(nil, 1.5), { 0, 1, 1.5 }, F32)
    check(i:clamp(0, 1.5), { 0, 1, 1.5 }, F32)
    check(i:byte():clamp(0.5, 1.5), { 0.5, 1, 1.5 }, F32)
    -- whole bounds keep the dtype
    assert.are.equal('i64', i:clamp(1, 1.0).dtype)
    -- the f32 result does not fit in place; i is left as it was
    fails_with(function() return i:clamp_(0.5, 1.5) end, 'clamp_: ', 'f32', 'i64', 'got a fractional bound')
    check_exact(i, { 0, 1, 2 })
  end)
end)

---------------------------------------------------------------------------
-- binary ops and broadcasting
---------------------------------------------------------------------------

local binary_cases = {
  { 'add', function(a, b) return a + b end },
  { 'sub', function(a, b) return a - b end },
  { 'mul', function(a, b) return a * b end },
  { 'div', function(a, b) return a / b end },
  { 'maximum', math.max },
  { 'minimum', math.min },
  { 'fmod', function(a, b) return math.fmod(a + 0.0, b + 0.0) end },
}

local shape_pairs = {
  { { 2, 3 }, { 2, 3 } },
  { { 3, 1 }, { 1, 4 } },
  { { 2, 3, 4 }, { 4 } },
  { { 2, 3, 4 }, { 3, 1 } },
  { { 4 }, { 2, 1, 4 } },
  { { 1, 1 }, { 2, 1, 3 } },
  { { 2, 1, 3 }, {} },
}

local function shape_str(s)
  if #s == 0 then return 'scalar' end
  return table.concat(s, 'x')
end

local function nonzero_table(shape)
  local t = nd(rand_table(shape, 'eighths'))
  for i, v in ipairs(t.data) do if v == 0 then t.data[i] = 0.625 end end
  return nested(t)
end

describe('elementwise iteration', function()
  -- The iterator merges adjacent dims that every operand walks as one;
  -- views where only some dims merge (a narrowed inner dim, a permuted
  -- middle, a broadcast operand) must still visit every element once.
  it('on 4-D views merges only the dims it can', function()
    local base = rl.arange(4 * 5 * 6 * 7, 'f64'):view(4, 5, 6, 7)
    local views = {
      base:narrow(4, 2, 3),          -- dims 1-3 merge, the inner one cannot
      base:narrow(2, 1, 4),          -- dims 3-4 merge, 1-2 cannot
      base:transpose(2, 3),          -- nothing merges across the swap
      base:select(3, 2):unsqueeze(3), -- a size-1 dim in the middle
    }
    for k, v in ipairs(views) do
      local want = v:contiguous():tolist()
      local got = (v + rl.zeros(v:size(), 'f64')):tolist()
      assert.are.same(want, got, 'view ' .. k)
      local bias = rl.arange(v:size(4), 'f64')
      local sum = (v + bias):tolist()
      local flat = v:contiguous():view(-1):tolist()
      local sflat = rl.tensor(sum):view(-1):tolist()
      for i = 1, #flat do
        assert.are.equal(flat[i] + (i - 1) % v:size(4), sflat[i], 'view ' .. k .. ' + broadcast row')
      end
    end
  end)
end)

describe('binary ops', function()
  for _, c in ipairs(binary_cases) do
    local name, ref = c[1], c[2]
    for _, sp in ipairs(shape_pairs) do
      for _, dt in ipairs{ 'f64', 'f32' } do
        it(('%s %s with %s (%s) broadcasts like NumPy'):format(name, shape_str(sp[1]),
          shape_str(sp[2]), dt), function()
          local a = rl.tensor(nonzero_table(sp[1]), dt)
          local b = rl.tensor(nonzero_table(sp[2]), dt)
          local tol = dt == 'f64' and F64 or F32
          local want = ref_map(ref, a, b)
          local y = a[name](a, b)
          assert.are.equal(dt, y.dtype)
          check_shape(y, nd(want).shape)
          check(y, want, tol)
          -- and the other way round
          check(b[name](b, a), ref_map(ref, b, a), tol)
        end)
      end
    end
  end

  it('pow with tensors, numbers on either side, and ^', function()
    local a = rl.tensor({ { 0.5, 1, 2 }, { 3, 4, 9 } }, 'f64')
    local b = rl.tensor({ 2, 0.5, -1 }, 'f64')
    check(a:pow(b), ref_map(function(x, y) return x ^ y end, a, b))
    check(a ^ 2, ref_map(function(x) return x * x end, a))
    check(a:pow(0.5), ref_map(math.sqrt, a))
    check(2 ^ b, { 4, math.sqrt(2), 0.5 })
    check(a ^ b, values(a:pow(b)), EXACT)
    local f = rl.tensor({ 1.5, 2 }, 'f32')
    check(f ^ 3, { 3.375, 8 }, F32)
  end)

  it('pow of integers stays integer and exact, as PyTorch', function()
    local r = rl.tensor{ 4097 } ^ 2
    assert.are.equal('i64', r.dtype)
    check_exact(r, { 16785409 }) -- f32 would round it to 16785410
    check_exact(rl.tensor{ 3 } ^ 39, { 4052555153018976267 })
    check_exact(rl.tensor{ -3, -2, 0, 5 }:pow(rl.tensor{ 3, 2, 0, 1 }), { -27, 4, 1, 5 })
    local n = 2 ^ rl.tensor{ 0, 3, 10 }
    assert.are.equal('i64', n.dtype)
    check_exact(n, { 1, 8, 1024 })
    local u = rl.tensor{ 2, 3 }:byte() ^ rl.tensor{ 9, 2 }:byte() -- u8 wraps, as PyTorch
    assert.are.equal('u8', u.dtype)
    check_exact(u, { 0, 9 })
    local x = rl.tensor{ 1, 2 }
    assert.is_true(rawsame(x:pow_(3), x))
    check_exact(x, { 1, 8 })
    -- a fractional exponent still computes in f32
    assert.are.equal('f32', (rl.tensor{ 4 } ^ 0.5).dtype)
    check(rl.tensor{ 4 } ^ 0.5, { 2 }, F32)
    fails_with(function() return rl.tensor{ 1, 2 }:pow_(0.5) end, 'pow_', 'f32', 'i64')
    -- negative integer exponents are refused, as PyTorch
    local msg = 'pow: integers to negative integer powers are not allowed, got exponent -'
    fails_with(function() return rl.tensor{ 2 } ^ -1 end, msg .. '1')
    fails_with(function() return rl.tensor{ 2 }:byte() ^ -1 end, msg .. '1')
    fails_with(function() return rl.tensor{ 2, 2 } ^ rl.tensor{ 1, -3 } end, msg .. '3')
    fails_with(function() return 2 ^ rl.tensor{ -1 } end, msg .. '1')
    fails_with(function() return rl.tensor{ 2 }:pow_(rl.tensor{ -2 }) end, 'pow_: integers to negative')
  end)

  it('metamethods + - * / % and unary minus', function()
    local a = rl.tensor({ { 1, 2 }, { 3, 4 } }, 'f64')
    local b = rl.tensor({ 10, 20 }, 'f64')
    check(a + b, { { 11, 22 }, { 13, 24 } })
    check(a - b, { { -9, -18 }, { -7, -16 } })
    check(a * b, { { 10, 40 }, { 30, 80 } })
    check(b / a, { { 10, 10 }, { 10 / 3, 5 } })
    check(-a, { { -1, -2 }, { -3, -4 } })
    check(b % a, { { 0, 0 }, { 1, 0 } })
    check(a + 1, { { 2, 3 }, { 4, 5 } })
    check(1 + a, { { 2, 3 }, { 4, 5 } })
    check(a - 1, { { 0, 1 }, { 2, 3 } })
    check(10 - a, { { 9, 8 }, { 7, 6 } })
    check(a * 3, { { 3, 6 }, { 9, 12 } })
    check(3 * a, { { 3, 6 }, { 9, 12 } })
    check(a / 4, { { 0.25, 0.5 }, { 0.75, 1 } })
    check(12 / a, { { 12, 6 }, { 4, 3 } })
    check(a % 3, { { 1, 2 }, { 0, 1 } })
  end)

  it('% follows Lua (and torch) remainder: the sign of the divisor', function()
    -- Lua's own -7 % 3 == 2 and 7 % -3 == -2; torch's x % y is remainder too
    local x = rl.tensor({ -7, 7, -7.5, 5.5 }, 'f64')
    local y = rl.tensor({ 3, -3, 2, -2 }, 'f64')
    check(x % y, { -7 % 3, 7 % -3, -7.5 % 2, 5.5 % -2 })
    check(x % 3, { -7 % 3, 7 % 3, -7.5 % 3, 5.5 % 3 })
  end)

  it('fmod keeps the sign of the dividend (C fmod)', function()
    local x = rl.tensor({ -7, 7, -7.5, 5.5 }, 'f64')
    check(x:fmod(3), { -1, 1, -1.5, 2.5 })
    check(x:fmod(rl.tensor({ 3, -3, 2, -2 }, 'f64')), { -1, 1, -1.5, 1.5 })
    local i = rl.tensor{ -7, 7, 9 }:fmod(4)
    assert.are.equal('i64', i.dtype)
    check_exact(i, { -3, 3, 1 })
  end)

  it('add/sub with alpha, tensor and number operands', function()
    local a = rl.tensor({ 1, 2, 3 }, 'f64')
    local b = rl.tensor({ 10, 20, 30 }, 'f64')
    check(a:add(b, 2), { 21, 42, 63 })
    check(a:sub(b, 0.5), { -4, -8, -12 })
    check(a:add(3, 2), { 7, 8, 9 })
    check(a:sub(1, 3), { -2, -1, 0 })
    local i = rl.tensor{ 1, 2 }:add(rl.tensor{ 5, 6 }, 3)
    assert.are.equal('i64', i.dtype)
    check_exact(i, { 16, 20 })
    local c = a:clone()
    c:add_(b, -1)
    check(c, { -9, -18, -27 })
  end)

  it('broadcasts 3x1 + 1x4 to 3x4', function()
    local a = rl.tensor{ { 1 }, { 2 }, { 3 } }
    local b = rl.tensor{ { 10, 20, 30, 40 } }
    local y = a + b
    check_shape(y, { 3, 4 })
    check_exact(y, { { 11, 21, 31, 41 }, { 12, 22, 32, 42 }, { 13, 23, 33, 43 } })
  end)

  it('broadcasts 2x3x4 + 4 and 2x3x4 * 3x1', function()
    local x = rl.arange(24):view(2, 3, 4)
    local v = rl.tensor{ 100, 200, 300, 400 }
    local y = x + v
    check_shape(y, { 2, 3, 4 })
    local want = {}
    for i = 1, 2 do
      want[i] = {}
      for j = 1, 3 do
        want[i][j] = {}
        for k = 1, 4 do want[i][j][k] = (i - 1) * 12 + (j - 1) * 4 + (k - 1) + 100 * k end
      end
    end
    check_exact(y, want)
    local z = x * rl.tensor{ { 1 }, { 0 }, { -1 } }
    check_exact(z[2][3], { -20, -21, -22, -23 })
    check_exact(z[1][2], { 0, 0, 0, 0 })
  end)

  it('broadcasts 0-dim tensors and number operands', function()
    local x = rl.tensor({ { 1, 2 }, { 3, 4 } }, 'f64')
    local s = rl.tensor(10.0, 'f64')
    check_shape(s, {})
    check(x + s, { { 11, 12 }, { 13, 14 } })
    check(s - x, { { 9, 8 }, { 7, 6 } })
    local ss = s * rl.tensor(3.0, 'f64')
    check_shape(ss, {})
    check(ss, 30)
    check(rl.tensor{ 1, 2, 3 } * 2, { 2, 4, 6 })
    check(rl.tensor{ 1, 2, 3 } + rl.tensor(5), { 6, 7, 8 })
    -- a 1-element tensor broadcasts too
    check(x * rl.tensor({ 2 }, 'f64'), { { 2, 4 }, { 6, 8 } })
  end)

  it('promotes dtypes like PyTorch', function()
    local i = rl.tensor{ 1, 2, 3 }
    local f = rl.tensor({ 0.5, 0.5, 0.5 }, 'f32')
    local d = rl.tensor({ 0.25, 0.25, 0.25 }, 'f64')
    local u = rl.tensor{ true, false, true }
    local r = i + f
    assert.are.equal('f32', r.dtype)
    check(r, { 1.5, 2.5, 3.5 }, F32)
    assert.are.equal('f32', (f + i).dtype)
    assert.are.equal('f64', (f + d).dtype)
    check(f + d, { 0.75, 0.75, 0.75 })
    assert.are.equal('f64', (i * d).dtype)
    assert.are.equal('i64', (u + i).dtype)
    check_exact(u + i, { 2, 2, 4 })
    assert.are.equal('i64', (i * 2).dtype)
    -- true division of integers
    local q = rl.tensor{ 7, -7, 1 } / rl.tensor{ 2, 2, 3 }
    assert.are.equal('f32', q.dtype)
    check(q, { 3.5, -3.5, 1 / 3 }, F32)
    local q2 = rl.tensor{ 7, 8 } / 2
    assert.are.equal('f32', q2.dtype)
    check(q2, { 3.5, 4 }, F32)
    check(rl.tensor{ 7, 8 }:div(4), { 1.75, 2 }, F32)
    -- a fractional number against an integer tensor computes in floating point
    local h = rl.tensor{ 1, 2 } + 0.5
    assert.is_true(h.dtype == 'f32' or h.dtype == 'f64')
    check(h, { 1.5, 2.5 }, F32)
    local m = rl.tensor{ 1, 5 }:maximum(rl.tensor({ 2.5, 2.5 }, 'f32'))
    assert.are.equal('f32', m.dtype)
    check(m, { 2.5, 5 }, F32)
    -- integer 0-dim tensor with a float tensor
    assert.are.equal('f32', (f * rl.tensor(2)).dtype)
    check(f * rl.tensor(2), { 1, 1, 1 }, F32)
  end)

  it('maximum/minimum and max(other) elementwise, also across dtypes', function()
    local a = rl.tensor{ { 1, 7 }, { -3, 4 } }
    local b = rl.tensor{ 2, 5 }
    check_exact(a:maximum(b), { { 2, 7 }, { 2, 5 } })
    check_exact(a:minimum(b), { { 1, 5 }, { -3, 4 } })
    check_exact(a:max(b), { { 2, 7 }, { 2, 5 } })
    check_exact(a:min(b), { { 1, 5 }, { -3, 4 } })
    assert.are.equal('i64', a:maximum(b).dtype)
    check(a:maximum(3), { { 3, 7 }, { 3, 4 } })
  end)
end)

---------------------------------------------------------------------------
-- in-place forms and views
---------------------------------------------------------------------------

describe('in-place ops', function()
  local inplace = {
    { 'add_', function(a, b) return a + b end },
    { 'sub_', function(a, b) return a - b end },
    { 'mul_', function(a, b) return a * b end },
    { 'div_', function(a, b) return a / b end },
    { 'pow_', function(a, b) return a ^ b end },
    { 'maximum_', math.max },
    { 'minimum_', math.min },
  }
  for _, c in ipairs(inplace) do
    it(c[1] .. ' writes into the tensor, broadcasts the operand, returns self', function()
      local x = rl.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, 'f64')
      local b = rl.tensor({ 2, 0.5, 3 }, 'f64')
      local want = ref_map(c[2], x, b)
      local r = x[c[1]](x, b)
      assert.is_true(rawsame(r, x))
      assert.are.equal('f64', x.dtype)
      check(x, want)
      -- with a number
      local y = rl.tensor({ 1, 2, 4 }, 'f32')
      y[c[1]](y, 2)
      check(y, ref_map(function(v) return c[2](v, 2) end, { 1, 2, 4 }), F32)
      assert.are.equal('f32', y.dtype)
    end)
  end

  it('keeps the destination dtype (f32 += f64, i64 += i64, i64 *= 3)', function()
    local f = rl.tensor({ 1, 2 }, 'f32')
    f:add_(rl.tensor({ 0.25, 0.5 }, 'f64'))
    assert.are.equal('f32', f.dtype)
    check(f, { 1.25, 2.5 }, F32)
    local i = rl.tensor{ 1, 2 }
    i:add_(rl.tensor{ 10, 20 })
    i:mul_(3)
    i:sub_(1)
    assert.are.equal('i64', i.dtype)
    check_exact(i, { 32, 65 })
    local u = rl.tensor{ true, false }
    u:add_(rl.tensor{ true, true })
    assert.are.equal('u8', u.dtype)
    check_exact(u, { 2, 1 })
  end)

  it('on a narrow view changes the base tensor', function()
    local x = rl.tensor{ { 1, 2 }, { 3, 4 } }
    local v = x:narrow(1, 1, 1)
    v:add_(1)
    check_exact(x, { { 2, 3 }, { 3, 4 } })
    local w = x:narrow(2, 2, 1)
    w:mul_(10)
    check_exact(x, { { 2, 30 }, { 3, 40 } })
    check_exact(w, { { 30 }, { 40 } })
  end)

  it('on transposed and selected views changes the base tensor', function()
    local x = rl.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, 'f64')
    x:t():mul_(rl.tensor({ 1, 10 }, 'f64')) -- scales row 2 of x
    check(x, { { 1, 2, 3 }, { 40, 50, 60 } })
    x[1]:fill_(0)
    check(x, { { 0, 0, 0 }, { 40, 50, 60 } })
    x:select(2, 3):sqrt_()
    check(x, { { 0, 0, 0 }, { 40, 50, math.sqrt(60) } })
    x[1] = 7
    check(x, { { 7, 7, 7 }, { 40, 50, math.sqrt(60) } })
    local y = rl.tensor({ { 1, -2 }, { -3, 4 } }, 'f64')
    y:narrow(1, 2, 1):abs_():exp_()
    check(y, { { 1, -2 }, { math.exp(3), math.exp(4) } })
  end)

  it('masked_fill and masked_fill_', function()
    local x = rl.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, 'f64')
    local m = x:gt(2.5)
    local y = x:masked_fill(m, -1)
    check(y, { { 1, 2, -1 }, { -1, -1, -1 } })
    check(x, { { 1, 2, 3 }, { 4, 5, 6 } })
    -- a broadcast mask (one row)
    check(x:masked_fill(rl.tensor{ true, false, true }, 0), { { 0, 2, 0 }, { 0, 5, 0 } })
    assert.is_true(rawsame(x:masked_fill_(x:eq(5), 50), x))
    check(x, { { 1, 2, 3 }, { 4, 50, 6 } })
    local i = rl.tensor{ 1, 2, 3 }
    i:masked_fill_(rl.tensor{ false, true, false }, 9)
    assert.are.equal('i64', i.dtype)
    check_exact(i, { 1, 9, 3 })
  end)
end)

---------------------------------------------------------------------------
-- comparisons, logical ops, where, masks
---------------------------------------------------------------------------

describe('comparisons and logical ops', function()
  local cmp = {
    eq = function(a, b) return a == b end, ne = function(a, b) return a ~= b end,
    lt = function(a, b) return a < b end, le = function(a, b) return a <= b end,
    gt = function(a, b) return a > b end, ge = function(a, b) return a >= b end,
  }
  for _, name in ipairs{ 'eq', 'ne', 'lt', 'le', 'gt', 'ge' } do
    it(name .. ' gives u8 0/1, broadcasts, accepts numbers and mixed dtypes', function()
      local a = rl.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, 'f32')
      local b = rl.tensor{ { 2 }, { 5 } }
      local f = function(x, y) return cmp[name](x, y) and 1 or 0 end
      local y = a[name](a, b)
      assert.are.equal('u8', y.dtype)
      check_exact(y, ref_map(f, a, b))
      check_exact(a[name](a, 3), ref_map(function(x) return f(x, 3) end, a))
      -- i64 against a fractional number compares as reals
      local i = rl.tensor{ 1, 2, 3 }
      local z = i[name](i, 2.5)
      assert.are.equal('u8', z.dtype)
      check_exact(z, ref_map(function(x) return f(x, 2.5) end, { 1, 2, 3 }))
    end)
  end

  it('logical_and / logical_or / logical_not', function()
    local a = rl.tensor{ true, true, false, false }
    local b = rl.tensor{ true, false, true, false }
    check_exact(a:logical_and(b), { 1, 0, 0, 0 })
    check_exact(a:logical_or(b), { 1, 1, 1, 0 })
    check_exact(a:logical_not(), { 0, 0, 1, 1 })
    assert.are.equal('u8', a:logical_and(b).dtype)
    -- broadcast
    check_exact(rl.tensor{ { true }, { false } }:logical_or(b), { { 1, 1, 1, 1 }, { 1, 0, 1, 0 } })
  end)

  it('logical_and / logical_or treat any nonzero value as true', function()
    local x = rl.tensor({ 0.5, 0, -2, 0.25 }, 'f32')
    local y = rl.tensor{ 1, 1, 256, 0 }
    check_exact(x:logical_and(y), { 1, 0, 1, 0 })
    check_exact(x:logical_or(rl.tensor{ 0, 0, 0, 0 }), { 1, 0, 1, 1 })
    check_exact(y:logical_or(rl.tensor{ 0, 0, 0, 0 }), { 1, 1, 1, 0 })
  end)

  it('where picks from x where cond, y elsewhere, with broadcasting', function()
    local x = rl.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, 'f64')
    local y = rl.tensor({ -1, -2, -3 }, 'f64')
    local c = x:gt(2.5)
    check(rl.where(c, x, y), { { -1, -2, 3 }, { 4, 5, 6 } })
    check(x:where(c, y), { { -1, -2, 3 }, { 4, 5, 6 } })
    check(x:where(c, 0), { { 0, 0, 3 }, { 4, 5, 6 } })
    check(rl.where(c, 9, x), { { 1, 2, 9 }, { 9, 9, 9 } })
    -- the condition broadcasts too
    check(rl.where(rl.tensor{ { true }, { false } }, x, y), { { 1, 2, 3 }, { -1, -2, -3 } })
    -- mixed dtypes promote
    local r = rl.where(rl.tensor{ true, false }, rl.tensor{ 1, 2 }, rl.tensor({ 0.5, 0.5 }, 'f32'))
    assert.are.equal('f32', r.dtype)
    check(r, { 1, 0.5 }, F32)
  end)

  it('where with a number: f32 for a fraction against an integer tensor, as PyTorch', function()
    local c, i = rl.tensor{ 1, 0 }:byte(), rl.tensor{ 5, 7 }
    -- a number x is passed to the method as its first argument
    local r = rl.Tensor.where(1.5, c, i)
    assert.are.equal('f32', r.dtype)
    check(r, { 1.5, 7 }, F32)
    r = i:where(c, 2.5)
    assert.are.equal('f32', r.dtype)
    check(r, { 5, 2.5 }, F32)
    r = rl.Tensor.where(1, c, i) -- a whole number keeps the dtype
    assert.are.equal('i64', r.dtype)
    check_exact(r, { 1, 7 })
    r = rl.Tensor.where(0.25, c, rl.tensor({ 5, 7 }, 'bf16'))
    assert.are.equal('bf16', r.dtype)
    check(r, { 0.25, 7 })
    fails_with(function() return rl.Tensor.where(1, c, 2) end, 'where: x or y must be a tensor')
  end)

  it('masked_select returns the selected values in row-major order', function()
    local x = rl.tensor({ { 5, 1, 4 }, { 2, 6, 3 } }, 'f64')
    local s = x:masked_select(x:gt(2.5))
    check_shape(s, { 4 })
    check(s, { 5, 4, 6, 3 })
    -- the transposed view walks in its own row-major order
    local t = x:t()
    check(t:masked_select(t:gt(2.5)), { 5, 6, 4, 3 })
    -- a broadcast mask
    check(x:masked_select(rl.tensor{ true, false, true }), { 5, 4, 2, 3 })
    check_shape(x:masked_select(x:gt(100)), { 0 })
  end)
end)

---------------------------------------------------------------------------
-- reductions
---------------------------------------------------------------------------

describe('reductions', function()
  local X = rand_table({ 2, 3, 4 }, 'eighths')
  local dimsets = { 1, 2, 3, -1, -2, { 1, 3 }, { 2, 3 }, { 1, 2, 3 }, { -1, 1 } }
  local reds = {
    { 'sum', sum },
    { 'mean', mean },
    { 'prod', prod },
  }
  for _, r in ipairs(reds) do
    for _, dims in ipairs(dimsets) do
      for _, keep in ipairs{ false, true } do
        local dstr = type(dims) == 'table' and '{' .. table.concat(dims, ',') .. '}' or tostring(dims)
        it(('%s over %s keepdim=%s'):format(r[1], dstr, tostring(keep)), function()
          local x = rl.tensor(X, 'f64')
          local want = ref_reduce(X, dims, keep, r[2])
          local y = x[r[1]](x, dims, keep)
          check_shape(y, nd(want).shape)
          check(y, want)
          local xf = rl.tensor(X, 'f32')
          check(xf[r[1]](xf, dims, keep), want, F32)
        end)
      end
    end
  end

  it('whole-tensor reductions give 0-dim tensors', function()
    local x = rl.tensor({ { 1, 2 }, { 3, 4 } }, 'f64')
    check_shape(x:sum(), {})
    check(x:sum(), 10)
    check(x:mean(), 2.5)
    check(x:prod(), 24)
    assert.are.equal(10, x:sum():item())
  end)

  it('keepdim as a boolean or {keepdim = ...}: false drops the dim, true keeps it', function()
    local x = rl.zeros(2, 3)
    for _, red in ipairs { 'sum', 'mean', 'prod', 'max', 'min', 'argmax', 'argmin', 'logsumexp' } do
      check_shape(x[red](x, 2, { keepdim = false }), { 2 })
      check_shape(x[red](x, 2, { keepdim = true }), { 2, 1 })
      check_shape(x[red](x, 2, false), { 2 })
      check_shape(x[red](x, 2, true), { 2, 1 })
    end
    check_shape(x:norm(2, 2, { keepdim = false }), { 2 })
    check_shape(x:std(2, true, { keepdim = true }), { 2, 1 })
  end)

  -- argmax's errors read "argmax: max: ..."
  it("argmax and argmin errors name themselves once", function()
    local e0, x = rl.zeros(0, 3), rl.zeros(2, 3)
    for _, c in ipairs {
      { function() return e0:argmax(1) end, 'argmax: cannot reduce over dim 1 of size 0 (input 0x3)' },
      { function() return e0:argmin() end, 'argmin: the input is empty' },
      { function() return x:argmax(5) end, 'argmax: dim 5 out of range' },
      { function() return e0:bf16():argmin(1) end, 'argmin: cannot reduce over dim 1 of size 0' },
      { function() return e0:max(1) end, 'max: cannot reduce over dim 1 of size 0' },
    } do
      local ok, e = pcall(c[1])
      assert.is_false(ok)
      assert.truthy(tostring(e):find(c[2], 1, true), tostring(e))
      assert.is_nil(tostring(e):find('arg%a+: m[ai][xn]:'), tostring(e))
    end
  end)

  it('sums of a non-contiguous view', function()
    local x = rl.tensor(X, 'f64'):permute(3, 1, 2) -- 4x2x3
    local want = ref_reduce(values(x), { 1, 3 }, false, sum)
    check(x:sum({ 1, 3 }), want)
    check(x:sum(2, true), ref_reduce(values(x), 2, true, sum))
  end)

  it('dtype rules: u8 and i64 sums are i64, i64 prod is i64, mean is floating', function()
    local u = rl.tensor{ true, true, false, true }
    local s = u:sum()
    assert.are.equal('i64', s.dtype)
    assert.are.equal(3, s:item())
    local many = rl.ones(300, { dtype = 'u8' })
    assert.are.equal(300, many:sum():item()) -- no u8 wrap-around
    local i = rl.tensor{ { 1, 2, 3 }, { 4, 5, 6 } }
    assert.are.equal('i64', i:sum(1).dtype)
    check_exact(i:sum(1), { 5, 7, 9 })
    assert.are.equal('i64', i:prod(2).dtype)
    check_exact(i:prod(2), { 6, 120 })
    local big = rl.tensor{ 1 << 40, 1 << 40, 3 }
    assert.are.equal('i64', big.dtype)
    assert.are.equal((1 << 41) + 3, big:sum():item()) -- exact in i64
    local m = i:mean(2)
    assert.is_true(m.dtype == 'f32' or m.dtype == 'f64')
    check(m, { 2, 5 }, F32)
    local f = rl.tensor({ 1, 2 }, 'f32')
    assert.are.equal('f32', f:sum().dtype)
    assert.are.equal('f32', f:mean().dtype)
  end)

  it('any and all, over dims and whole, on u8 and numeric inputs', function()
    local b = rl.tensor{ { true, false, false }, { true, true, true } }
    check_exact(b:any(2), { 1, 1 })
    check_exact(b:all(2), { 0, 1 })
    check_exact(b:all(1), { 1, 0, 0 })
    check_exact(b:any(1, true), { { 1, 1, 1 } })
    assert.are.equal('u8', b:any().dtype)
    assert.are.equal(1, b:any():item())
    assert.are.equal(0, b:all():item())
    local f = rl.tensor({ { 0, 0.5 }, { 0, 0 } }, 'f32')
    check_exact(f:any(2), { 1, 0 })
    check_exact(f:all(1), { 0, 0 })
    check_exact(rl.tensor{ 3, -1 }:all(), 1)
  end)

  it('max/min over a dim return values and first indices on ties', function()
    local x = rl.tensor{ { 3, 7, 7, 1 }, { 5, 5, 2, 5 }, { -1, -4, -4, -1 } }
    local v, i = x:max(2)
    check_exact(v, { 7, 5, -1 })
    check_exact(i, { 1, 0, 0 })
    assert.are.equal('i64', i.dtype)
    assert.are.equal('i64', v.dtype)
    v, i = x:min(2)
    check_exact(v, { 1, 2, -4 })
    check_exact(i, { 3, 2, 1 })
    v, i = x:max(1, true)
    check_shape(v, { 1, 4 })
    check_exact(v, { { 5, 7, 7, 5 } })
    check_exact(i, { { 1, 0, 0, 1 } })
    v, i = x:min(-2)
    check_exact(v, { -1, -4, -4, -1 })
    check_exact(i, { 2, 2, 2, 2 })
  end)

  it('max/min against a loop on random f64 data, all dims', function()
    local R = rand_table({ 3, 4, 5 }, 'eighths')
    local x = rl.tensor(R, 'f64')
    local function argbest(list, better)
      local bi = 1
      for k = 2, #list do if better(list[k], list[bi]) then bi = k end end
      return bi
    end
    for _, d in ipairs{ 1, 2, 3, -1 } do
      for _, keep in ipairs{ false, true } do
        local gt = function(a, b) return a > b end
        local lt = function(a, b) return a < b end
        local v, i = x:max(d, keep)
        check(v, ref_reduce(R, d, keep, function(l) return l[argbest(l, gt)] end))
        check_exact(i, ref_reduce(R, d, keep, function(l) return argbest(l, gt) - 1 end))
        v, i = x:min(d, keep)
        check(v, ref_reduce(R, d, keep, function(l) return l[argbest(l, lt)] end))
        check_exact(i, ref_reduce(R, d, keep, function(l) return argbest(l, lt) - 1 end))
        check_exact(x:argmax(d, keep), values(select(2, x:max(d, keep))))
        check_exact(x:argmin(d, keep), values(select(2, x:min(d, keep))))
      end
    end
  end)

  it('max()/min() of the whole tensor, argmax/argmin flat index (first on ties)', function()
    local x = rl.tensor({ { 2, 9, 9 }, { -5, 0, -5 } }, 'f64')
    local m = x:max()
    check_shape(m, {})
    assert.are.equal(9, m:item())
    assert.are.equal(-5, x:min():item())
    local am = x:argmax()
    assert.are.equal('i64', am.dtype)
    assert.are.equal(1, am:item())
    assert.are.equal(3, x:argmin():item())
    check_exact(x:argmax(1), { 0, 0, 0 })
    check_exact(x:argmin(2), { 0, 0 })
    check_exact(x:argmax(2, true), { { 1 }, { 1 } })
    -- a transposed input: the flat index is in the view's own order
    assert.are.equal(2, x:t():argmax():item())
  end)

  it('norm p = 1, 2, inf, 3 against loops, over dims and whole', function()
    local R = rand_table({ 3, 4 }, 'uniform')
    local x = rl.tensor(R, 'f64')
    local refs = {
      [1] = function(l) local s = 0 for _, v in ipairs(l) do s = s + math.abs(v) end return s end,
      [2] = function(l) local s = 0 for _, v in ipairs(l) do s = s + v * v end return math.sqrt(s) end,
      [3] = function(l)
        local s = 0
        for _, v in ipairs(l) do s = s + math.abs(v) ^ 3 end
        return s ^ (1 / 3)
      end,
      [math.huge] = function(l)
        local s = 0
        for _, v in ipairs(l) do s = math.max(s, math.abs(v)) end
        return s
      end,
    }
    for p, ref in pairs(refs) do
      check(x:norm(p), ref_reduce(R, nil, false, ref))
      for _, d in ipairs{ 1, 2, -1 } do
        check(x:norm(p, d), ref_reduce(R, d, false, ref))
        local k = x:norm(p, d, true)
        check_shape(k, nd(ref_reduce(R, d, true, ref)).shape)
        check(k, ref_reduce(R, d, true, ref))
      end
      check(x:norm(p, { 1, 2 }), ref_reduce(R, nil, false, ref))
      local xf = rl.tensor(R, 'f32')
      check(xf:norm(p, 2), ref_reduce(values(xf), 2, false, ref), F32)
    end
    check(x:norm(), ref_reduce(R, nil, false, refs[2]))
    check(x:norm('inf', 2), ref_reduce(R, 2, false, refs[math.huge]))
    check(rl.tensor({ 3, -4 }, 'f64'):norm(), 5)
    check(rl.tensor({ 3, -4 }, 'f64'):norm(1), 7)
    check(rl.tensor({ 3, -4 }, 'f64'):norm(math.huge), 4)
  end)

  it('var and std: unbiased by default, biased on request, dims and keepdim', function()
    local R = rand_table({ 3, 5 }, 'uniform')
    local x = rl.tensor(R, 'f64')
    local function var(l, corr)
      local m = mean(l)
      local s = 0
      for _, v in ipairs(l) do s = s + (v - m) ^ 2 end
      return s / (#l - corr)
    end
    local vu = function(l) return var(l, 1) end
    local vb = function(l) return var(l, 0) end
    check(x:var(), ref_reduce(R, nil, false, vu))
    check(x:var(2), ref_reduce(R, 2, false, vu))
    check(x:var(2, true), ref_reduce(R, 2, false, vu))
    check(x:var(2, false), ref_reduce(R, 2, false, vb))
    check(x:var(1, false, true), ref_reduce(R, 1, true, vb))
    check_shape(x:var(1, false, true), { 1, 5 })
    check(x:var({ 1, 2 }, true), ref_reduce(R, nil, false, vu))
    check(x:var(2, { correction = 0 }), ref_reduce(R, 2, false, vb))
    check(x:std(), ref_reduce(R, nil, false, function(l) return math.sqrt(vu(l)) end))
    check(x:std(1), ref_reduce(R, 1, false, function(l) return math.sqrt(vu(l)) end))
    check(x:std(1, false), ref_reduce(R, 1, false, function(l) return math.sqrt(vb(l)) end))
    check(x:std(-1, true, true), ref_reduce(R, 2, true, function(l) return math.sqrt(vu(l)) end))
    -- the dims may be left out before the options
    check(x:var({ correction = 0 }), ref_reduce(R, nil, false, vb))
    check(x:var({ unbiased = false }), ref_reduce(R, nil, false, vb))
    check(x:std({ correction = 0 }), ref_reduce(R, nil, false, function(l) return math.sqrt(vb(l)) end))
    check_shape(x:std({ keepdim = true }), { 1, 1 })
    check_shape(x:var(2, { keepdim = true }), { 3, 1 })
    -- hand-worked: {1, 2, 3, 4}: mean 2.5, squares sum 5
    local h = rl.tensor({ 1, 2, 3, 4 }, 'f64')
    check(h:var(), 5 / 3)
    check(h:var(1, false), 1.25)
    check(h:std(1, false), math.sqrt(1.25))
    local hf = rl.tensor({ 1, 2, 3, 4 }, 'f32')
    check(hf:var(), 5 / 3, F32)
    -- integers compute in floating point
    check(rl.tensor{ 1, 2, 3, 4 }:var(), 5 / 3, F32)
  end)

  it('var and std options are checked', function()
    local x = rl.tensor({ { 1, 2 }, { 3, 5 } }, 'f64')
    for _, op in ipairs { 'var', 'std' } do
      fails_with(function() return x[op](x, 2, { corection = 0 }) end, "unknown option 'corection'")
      fails_with(function() return x[op](x, { corection = 0 }) end, "unknown option 'corection'")
      fails_with(function() return x[op](x, { keepdim = 1 }) end, 'keepdim must be a boolean, got number')
      fails_with(function() return x[op](x, 1, { unbiased = 'no' }) end, 'unbiased must be a boolean, got string')
      fails_with(function() return x[op](x, { correction = 0.5 }) end, 'correction must be an integer, got 0.5')
      fails_with(function() return x[op](x, { correction = 0, unbiased = true }) end,
        'give correction or unbiased, not both')
      fails_with(function() return x[op](x, { correction = 0 }, true) end, 'nothing may follow the options')
    end
  end)

  it('var is accurate for data with a large offset', function()
    local x = rl.tensor({ 1e8 + 1, 1e8 + 2, 1e8 + 3, 1e8 + 4 }, 'f64')
    check(x:var(), 5 / 3, { rtol = 1e-9, atol = 0 })
  end)

  it('logsumexp against a loop, over dims with keepdim', function()
    local R = rand_table({ 3, 4 }, 'uniform')
    local x = rl.tensor(R, 'f64')
    local function lse(l)
      local m = -math.huge
      for _, v in ipairs(l) do m = math.max(m, v) end
      local s = 0
      for _, v in ipairs(l) do s = s + math.exp(v - m) end
      return m + math.log(s)
    end
    check(x:logsumexp(1), ref_reduce(R, 1, false, lse))
    check(x:logsumexp(2), ref_reduce(R, 2, false, lse))
    check(x:logsumexp(-1, true), ref_reduce(R, 2, true, lse))
    check_shape(x:logsumexp(-1, true), { 3, 1 })
    local xf = rl.tensor(R, 'f32')
    check(xf:logsumexp(2), ref_reduce(values(xf), 2, false, lse), F32)
  end)

  it('logsumexp is stable for large and small values', function()
    local l2 = math.log(2)
    check(rl.tensor({ 1000, 1000 }, 'f64'):logsumexp(1), 1000 + l2)
    check(rl.tensor({ -1000, -1000 }, 'f64'):logsumexp(1), -1000 + l2)
    check(rl.tensor({ 1000, 1000 }, 'f32'):logsumexp(1), 1000 + l2, F32)
    check(rl.tensor({ { 1000, 0 }, { -1e4, -1e4 } }, 'f64'):logsumexp(2), { 1000, -1e4 + l2 })
    check(rl.tensor({ -math.huge, 0 }, 'f64'):logsumexp(1), 0)
  end)
end)

---------------------------------------------------------------------------
-- linear algebra
---------------------------------------------------------------------------

describe('matmul', function()
  local shapes = {
    { { 4 }, { 4 } },
    { { 3 }, { 3, 5 } },
    { { 2, 3 }, { 3 } },
    { { 2, 3 }, { 3, 4 } },
    { { 2, 3, 4 }, { 4, 5 } },
    { { 4, 5 }, { 2, 5, 3 } },
    { { 2, 1, 3, 4 }, { 5, 4, 2 } },
    { { 3 }, { 2, 3, 4 } },
    { { 2, 3, 4 }, { 4 } },
    { { 2, 3, 4 }, { 2, 4, 2 } },
    { { 1, 2, 3 }, { 4, 3, 2 } },
  }
  for _, sp in ipairs(shapes) do
    for _, dt in ipairs{ 'f64', 'f32', 'i64' } do
      it(('%s @ %s (%s) against a loop'):format(shape_str(sp[1]), shape_str(sp[2]), dt), function()
        local A = rand_table(sp[1], dt == 'i64' and 'int' or 'uniform')
        local B = rand_table(sp[2], dt == 'i64' and 'int' or 'uniform')
        local a, b = rl.tensor(A, dt), rl.tensor(B, dt)
        local want = ref_matmul(values(a), values(b))
        local y = a:matmul(b)
        assert.are.equal(dt, y.dtype)
        check_shape(y, nd(want).shape)
        if dt == 'i64' then
          check_exact(y, want)
        else
          check(y, want, dt == 'f64' and F64 or F32)
        end
      end)
    end
  end

  it('2x2 by hand, mm, bmm and dot', function()
    local a = rl.tensor({ { 1, 2 }, { 3, 4 } }, 'f64')
    local b = rl.tensor({ { 5, 6 }, { 7, 8 } }, 'f64')
    check(a:matmul(b), { { 19, 22 }, { 43, 50 } })
    check(a:mm(b), { { 19, 22 }, { 43, 50 } })
    check(b:mm(a), { { 23, 34 }, { 31, 46 } })
    local ab = rl.stack({ a, b })
    check(ab:bmm(rl.stack({ b, a })), { { { 19, 22 }, { 43, 50 } }, { { 23, 34 }, { 31, 46 } } })
    local d = rl.tensor({ 1, 2, 3 }, 'f64'):dot(rl.tensor({ 4, -5, 6 }, 'f64'))
    check_shape(d, {})
    check(d, 12)
    check_exact(rl.tensor{ 1, 2 }:dot(rl.tensor{ 3, 4 }), 11)
    check(rl.tensor({ 1, 2 }, 'f64'):matmul(a), { 7, 10 })
    check(a:matmul(rl.tensor({ 1, 2 }, 'f64')), { 5, 11 })
  end)

  it('transposed and other non-contiguous operands', function()
    local A = rand_table({ 4, 3 }, 'uniform')
    local B = rand_table({ 4, 5 }, 'uniform')
    local a, b = rl.tensor(A, 'f64'), rl.tensor(B, 'f64')
    local at = a:t()
    check(at:matmul(b), ref_matmul(values(at), B))
    check(b:t():matmul(a), ref_matmul(values(b:t()), A))
    check(at:matmul(at:t()), ref_matmul(values(at), A))
    -- a narrowed (offset, strided) operand
    local bn = b:narrow(2, 2, 3)
    check(at:matmul(bn), ref_matmul(values(at), values(bn)))
    -- batched with a permuted operand
    local C = rand_table({ 3, 2, 4 }, 'uniform')
    local c = rl.tensor(C, 'f64'):permute(2, 1, 3) -- 2x3x4
    check(c:matmul(b), ref_matmul(values(c), B))
    local cf = rl.tensor(C, 'f32'):transpose(2, 3) -- 3x4x2
    local af = rl.tensor(A, 'f32'):t() -- 3x4
    check(af:matmul(cf), ref_matmul(values(af), values(cf)), F32)
  end)

  it('mixed dtypes promote and u8 computes in i64', function()
    local y = rl.tensor{ { 1, 2 } }:matmul(rl.tensor({ { 0.5 }, { 0.25 } }, 'f32'))
    assert.are.equal('f32', y.dtype)
    check(y, { { 1 } }, F32)
    local u = rl.ones(200, { dtype = 'u8' })
    local d = u:dot(u)
    assert.are.equal('i64', d.dtype)
    assert.are.equal(200, d:item())
  end)

  it('random f64 37x53 @ 53x29 matches a triple loop to 1e-10', function()
    local a = rl.randn(37, 53, { dtype = 'f64' })
    local b = rl.randn(53, 29, { dtype = 'f64' })
    local A, B = a:tolist(), b:tolist()
    local y = (a:matmul(b)):tolist()
    assert.are.equal(37, #y)
    for i = 1, 37 do
      assert.are.equal(29, #y[i])
      for j = 1, 29 do
        local s = 0
        for k = 1, 53 do s = s + A[i][k] * B[k][j] end
        if math.abs(y[i][j] - s) > 1e-10 then
          error(('[%d][%d]: expected %.17g, got %.17g'):format(i, j, s, y[i][j]))
        end
      end
    end
  end)

  it('random f32 with a transposed operand against an f64 loop', function()
    local a = rl.randn(29, 41)
    local b = rl.randn(23, 41)
    local y = a:matmul(b:t())
    check_shape(y, { 29, 23 })
    check(y, ref_matmul(values(a), values(b:t())), { rtol = 1e-5, atol = 1e-5 })
  end)
end)

---------------------------------------------------------------------------
-- joining and indexing
---------------------------------------------------------------------------

describe('cat and stack', function()
  local a = rl.tensor{ { 1, 2, 3 }, { 4, 5, 6 } }
  local b = rl.tensor{ { 7, 8, 9 } }
  local c = rl.tensor{ { 10 }, { 11 } }

  it('cat along dim 1 (default), 2 and -1', function()
    check_exact(rl.cat({ a, b }), { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } })
    check_exact(rl.cat({ a, b }, 1), { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } })
    check_exact(rl.cat({ a, c }, 2), { { 1, 2, 3, 10 }, { 4, 5, 6, 11 } })
    check_exact(rl.cat({ c, a, c }, -1), { { 10, 1, 2, 3, 10 }, { 11, 4, 5, 6, 11 } })
    check_exact(rl.cat({ b, a }, -2), { { 7, 8, 9 }, { 1, 2, 3 }, { 4, 5, 6 } })
  end)

  it('cat of 3-D tensors along the middle dim, and of views', function()
    local x = rl.arange(12):view(2, 3, 2)
    local y = rl.arange(100, 104):view(2, 1, 2)
    local r = rl.cat({ x, y }, 2)
    check_shape(r, { 2, 4, 2 })
    check_exact(r, { { { 0, 1 }, { 2, 3 }, { 4, 5 }, { 100, 101 } },
      { { 6, 7 }, { 8, 9 }, { 10, 11 }, { 102, 103 } } })
    check_exact(rl.cat({ a:t(), a:t() }, 2), { { 1, 4, 1, 4 }, { 2, 5, 2, 5 }, { 3, 6, 3, 6 } })
  end)

  it('cat promotes mixed dtypes', function()
    local r = rl.cat({ rl.tensor{ 1, 2 }, rl.tensor({ 0.5 }, 'f32') })
    assert.are.equal('f32', r.dtype)
    check(r, { 1, 2, 0.5 }, F32)
  end)

  it('stack along dims 1, 2, 3 and negative', function()
    local p = rl.tensor{ { 1, 2 }, { 3, 4 } }
    local q = rl.tensor{ { 5, 6 }, { 7, 8 } }
    local s1 = rl.stack({ p, q })
    check_shape(s1, { 2, 2, 2 })
    check_exact(s1, { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } })
    check_exact(rl.stack({ p, q }, 2), { { { 1, 2 }, { 5, 6 } }, { { 3, 4 }, { 7, 8 } } })
    check_exact(rl.stack({ p, q }, 3), { { { 1, 5 }, { 2, 6 } }, { { 3, 7 }, { 4, 8 } } })
    check_exact(rl.stack({ p, q }, -1), { { { 1, 5 }, { 2, 6 } }, { { 3, 7 }, { 4, 8 } } })
    check_exact(rl.stack({ p, q }, -3), values(s1))
    check_exact(rl.stack({ rl.tensor(1), rl.tensor(2), rl.tensor(3) }), { 1, 2, 3 })
    check_exact(rl.stack({ rl.tensor{ 1, 2 }, rl.tensor{ 3, 4 }, rl.tensor{ 5, 6 } }, 2),
      { { 1, 3, 5 }, { 2, 4, 6 } })
  end)
end)

describe('index_select, index_add, gather, scatter_add', function()
  local x = rl.tensor{ { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } }

  it('index_select along dims 1, 2 and -1 with repeated indices', function()
    check_exact(x:index_select(1, rl.tensor{ 2, 0, 2 }), { { 7, 8, 9 }, { 1, 2, 3 }, { 7, 8, 9 } })
    check_exact(x:index_select(2, rl.tensor{ 1 }), { { 2 }, { 5 }, { 8 } })
    check_exact(x:index_select(-1, rl.tensor{ 2, 2, 0, 1 }),
      { { 3, 3, 1, 2 }, { 6, 6, 4, 5 }, { 9, 9, 7, 8 } })
    check_exact(rl.tensor{ 10, 20, 30 }:index_select(1, rl.tensor{ 2, 1 }), { 30, 20 })
    -- a non-contiguous input
    check_exact(x:t():index_select(1, rl.tensor{ 0 }), { { 1, 4, 7 } })
    local f = rl.tensor({ { 0.5, 1.5 }, { 2.5, 3.5 } }, 'f64'):index_select(2, rl.tensor{ 1, 0 })
    assert.are.equal('f64', f.dtype)
    check(f, { { 1.5, 0.5 }, { 3.5, 2.5 } })
  end)

  it('index_select of a 3-D tensor against a loop', function()
    local R = rand_table({ 3, 4, 5 }, 'int')
    local t = rl.tensor(R)
    local idx = { 4, 0, 2, 2 }
    local want = {}
    for i = 1, 3 do
      want[i] = {}
      for j = 1, 4 do
        want[i][j] = {}
        for k, v in ipairs(idx) do want[i][j][k] = R[i][j][v + 1] end
      end
    end
    check_exact(t:index_select(3, rl.tensor(idx)), want)
  end)

  it('gather along dims 1 and 2', function()
    local i1 = rl.tensor{ { 0, 2, 1 }, { 2, 2, 0 } }
    -- out[i][j] = x[idx[i][j]][j]
    check_exact(x:gather(1, i1), { { 1, 8, 6 }, { 7, 8, 3 } })
    local i2 = rl.tensor{ { 2, 0 }, { 1, 1 }, { 0, 2 } }
    -- out[i][j] = x[i][idx[i][j]]
    check_exact(x:gather(2, i2), { { 3, 1 }, { 5, 5 }, { 7, 9 } })
    check_exact(x:gather(-1, i2), { { 3, 1 }, { 5, 5 }, { 7, 9 } })
    local g = rl.tensor({ 0.5, 1.5, 2.5 }, 'f64'):gather(1, rl.tensor{ 2, 2, 0 })
    check(g, { 2.5, 2.5, 0.5 })
  end)

  it('gather on a 3-D tensor against a loop', function()
    local R = rand_table({ 2, 3, 4 }, 'int')
    local t = rl.tensor(R)
    local I = {}
    for i = 1, 2 do
      I[i] = {}
      for j = 1, 2 do
        I[i][j] = {}
        for k = 1, 4 do I[i][j][k] = (i * 7 + j * 3 + k) % 3 end
      end
    end
    local want = {}
    for i = 1, 2 do
      want[i] = {}
      for j = 1, 2 do
        want[i][j] = {}
        for k = 1, 4 do want[i][j][k] = R[i][I[i][j][k] + 1][k] end
      end
    end
    check_exact(t:gather(2, rl.tensor(I)), want)
  end)

  it('scatter_add accumulates duplicates and leaves the input alone', function()
    local base = rl.zeros(3, 2, { dtype = 'f64' })
    local idx = rl.tensor{ { 0, 2 }, { 0, 0 }, { 2, 1 } }
    local src = rl.tensor({ { 1, 2 }, { 10, 20 }, { 100, 200 } }, 'f64')
    -- out[idx[i][j]][j] += src[i][j]
    local r = base:scatter_add(1, idx, src)
    check(r, { { 11, 20 }, { 0, 200 }, { 100, 2 } })
    check(base, { { 0, 0 }, { 0, 0 }, { 0, 0 } })
    -- along dim 2: out[i][idx[i][j]] += src[i][j]
    local b2 = rl.tensor({ { 1, 1, 1 }, { 2, 2, 2 } }, 'f64')
    local r2 = b2:scatter_add(2, rl.tensor{ { 2, 2 }, { 0, 1 } }, rl.tensor({ { 5, 6 }, { 7, 8 } }, 'f64'))
    check(r2, { { 1, 1, 12 }, { 9, 10, 2 } })
    local ri = rl.tensor{ 0, 0, 0 }:scatter_add(1, rl.tensor{ 1, 1, 2, 1 }, rl.tensor{ 1, 2, 3, 4 })
    assert.are.equal('i64', ri.dtype)
    check_exact(ri, { 0, 7, 3 })
  end)

  it('index_add adds slices at repeated positions, in index order, and leaves the input alone', function()
    local base = rl.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, 'f64')
    local src = rl.tensor({ { 10, 20 }, { 100, 200 }, { 1000, 2000 }, { 0.5, 0.25 } }, 'f64')
    -- out[idx[j]] += src[j] along dim 1
    check(base:index_add(1, rl.tensor{ 2, 0, 2, 0 }, src), { { 101.5, 202.25 }, { 3, 4 }, { 1015, 2026 } })
    check(base, { { 1, 2 }, { 3, 4 }, { 5, 6 } })
    -- along dim 2 (and -1): out[i][idx[j]] += src[i][j]
    local s2 = rl.tensor({ { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } }, 'f64')
    check(base:index_add(2, rl.tensor{ 1, 1, 0 }, s2), { { 4, 5 }, { 9, 13 }, { 14, 21 } })
    check(base:index_add(-1, rl.tensor{ 1, 1, 0 }, s2), { { 4, 5 }, { 9, 13 }, { 14, 21 } })
    -- a non-contiguous source, i64, and the adjoint of index_select
    check_exact(rl.tensor{ 0, 0, 0 }:index_add(1, rl.tensor{ 2, 2 }, rl.tensor{ { 1, 9 }, { 2, 9 } }:t()[1]),
      { 0, 0, 3 })
    local R = rand_table({ 3, 5, 4 }, 'int')
    local g, idx = rl.tensor(R), { 4, 0, 4, 2 }
    local want = {}
    for i = 1, 3 do
      want[i] = {}
      for j = 1, 5 do
        want[i][j] = { 0, 0, 0, 0, 0 }
      end
    end
    for i = 1, 3 do
      for j = 1, 5 do
        for k, v in ipairs(idx) do want[i][j][v + 1] = want[i][j][v + 1] + R[i][j][k] end
      end
    end
    check_exact(rl.zeros({ 3, 5, 5 }, { dtype = 'i64' }):index_add(3, rl.tensor(idx), g), want)
  end)

  it('index_add in bf16 and f16: one f32 add per element, rounded, as the CPU adds them', function()
    for _, H in ipairs { 'bf16', 'f16' } do
      local base = rl.tensor({ 1, 2, 3 }, H)
      local src = rl.tensor({ 0.001, 256, 0.5, 0.25 }, H)
      local r = base:index_add(1, rl.tensor{ 0, 1, 0, 2 }, src)
      assert.are.equal(H, r.dtype)
      -- each add rounds: bf16 1 + 0.001 stays 1; f16 keeps more
      local want = {}
      local function rd(v) return rl.tensor({ v }, H):float():tolist()[1] end
      want[1] = rd(rd(1 + rd(0.001)) + 0.5)
      want[2] = rd(2 + 256)
      want[3] = rd(3 + 0.25)
      check(r:float(), want)
    end
  end)
end)

---------------------------------------------------------------------------
-- special values and larger inputs (the threaded and BLAS paths)
---------------------------------------------------------------------------

describe('special values', function()
  local nan, inf = 0 / 0, math.huge

  it('maximum/minimum and max/min reductions propagate nan', function()
    local a = rl.tensor({ nan, 1, 2 }, 'f64')
    local b = rl.tensor({ 0, nan, 1 }, 'f64')
    check(a:maximum(b), { nan, nan, 2 })
    check(a:minimum(b), { nan, nan, 1 })
    check(rl.tensor({ 1, nan, 3 }, 'f64'):max(), nan)
    check(rl.tensor({ 1, nan, 3 }, 'f64'):min(), nan)
    local v, i = rl.tensor({ { 1, nan, 3 }, { 4, 5, 6 } }, 'f64'):max(2)
    check(v, { nan, 6 })
    check_exact(i, { 1, 2 })
    check(rl.tensor({ 1, nan }, 'f64'):sum(), nan)
  end)

  it('float division by zero and pow edge cases', function()
    check(rl.tensor({ 1, 0, -1 }, 'f64') / 0, { inf, nan, -inf })
    check(rl.tensor({ 1, 0, -1 }, 'f64'):div(rl.tensor({ 0, 0, 0 }, 'f64')), { inf, nan, -inf })
    check(rl.tensor({ -2, -2, 0, -8 }, 'f64'):pow(rl.tensor({ 3, 2, 0, 1 / 3 }, 'f64')), { -8, 4, 1, nan })
    check(rl.tensor({ -2 }, 'f64') ^ 3, { -8 })
    check(rl.tensor({ 0, 4 }, 'f64') ^ 0.5, { 0, 2 })
  end)

  it('logsumexp of all -inf is -inf and of +inf is +inf', function()
    check(rl.tensor({ -inf, -inf }, 'f64'):logsumexp(1), -inf)
    check(rl.tensor({ inf, 1 }, 'f64'):logsumexp(1), inf)
  end)

  it('in-place ops read an overlapping operand before writing', function()
    local o = rl.tensor{ 1, 2, 3 }
    o:narrow(1, 2, 2):add_(o:narrow(1, 1, 2))
    check_exact(o, { 1, 3, 5 })
    local q = rl.tensor{ { 1, 2 }, { 3, 4 } }
    q:add_(q:t())
    check_exact(q, { { 2, 5 }, { 5, 8 } })
  end)

  it('expanded (stride 0) operands read correctly', function()
    local x = rl.tensor({ 1, 2, 3 }, 'f64'):expand(2, 3)
    check(x + rl.tensor({ { 10 }, { 20 } }, 'f64'), { { 11, 12, 13 }, { 21, 22, 23 } })
    check(x:sum(1), { 2, 4, 6 })
    check(x:matmul(rl.tensor({ 1, 1, 1 }, 'f64')), { 6, 6 })
  end)
end)

describe('larger inputs', function()
  it('f32 sum of 2e7 ones is exact (no f32 accumulator stall at 2^24)', function()
    local s = rl.ones(20000000):sum()
    assert.are.equal('f32', s.dtype)
    assert.are.equal(20000000, s:item())
    assert.are.equal(1, rl.ones(20000000):mean():item())
  end)

  it('sums, means and max along dims of a 300x500 f64 tensor against loops', function()
    local R = rand_table({ 300, 500 }, 'uniform')
    local x = rl.tensor(R, 'f64')
    check(x:sum(1), ref_reduce(R, 1, false, sum))
    check(x:sum(2), ref_reduce(R, 2, false, sum))
    check(x:mean(), mean(nd(R).data))
    check(x:t():sum(2), ref_reduce(R, 1, false, sum))
    local v, i = x:max(1)
    local wv, wi = {}, {}
    for j = 1, 500 do
      local best = 1
      for r = 2, 300 do if R[r][j] > R[best][j] then best = r end end
      wv[j], wi[j] = R[best][j], best - 1
    end
    check(v, wv)
    check_exact(i, wi)
  end)

  it('argmax of a long tensor returns the first of tied maxima', function()
    local x = rl.zeros(300000, { dtype = 'f64' })
    x[250001] = 1
    x[100001] = 1
    x[200001] = 1
    assert.are.equal(100000, x:argmax():item())
    local _, i = x:max(1)
    assert.are.equal(100000, i:item())
    local y = rl.zeros(3, 100000)
    y[2]:fill_(5)
    y[3]:fill_(5)
    local a = y:argmax(1):tolist()
    assert.are.equal(1, a[1])
    assert.are.equal(1, a[100000])
    check_exact(y:argmax(2), { 0, 0, 0 })
    check_exact(y:argmin(2), { 0, 0, 0 })
  end)

  it('broadcast add of 400x300 with a transposed operand against a loop', function()
    local A = rand_table({ 400, 300 }, 'uniform')
    local B = rand_table({ 300, 1 }, 'uniform')
    local a = rl.tensor(A, 'f64')
    local b = rl.tensor(B, 'f64'):t() -- 1x300
    check(a + b, ref_map(function(p, q) return p + q end, A, values(b)))
    check(a:t() * 2, ref_map(function(p) return 2 * p end, values(a:t())))
  end)

  it('f32 120x200 @ 200x90 against an f64 loop', function()
    local a = rl.randn(120, 200)
    local b = rl.randn(200, 90)
    check(a:matmul(b), ref_matmul(values(a), values(b)), { rtol = 1e-5, atol = 2e-5 })
  end)
end)
