-- tensor_spec.lua - creation, dtypes, views sharing storage, copies,
-- printing, tolist/item, <close>, and the random number streams.
local rl = require 'rl'

local function same(a, b, tol)
  tol = tol or 0
  if type(a) == 'table' then
    if type(b) ~= 'table' or #a ~= #b then return false end
    for i = 1, #a do
      if not same(a[i], b[i], tol) then return false end
    end
    return true
  end
  return math.abs(a - b) <= tol * math.max(1, math.abs(b))
end

describe('creation', function()
  it('zeros, ones, full, empty give the asked shape and dtype', function()
    local z = rl.zeros(2, 3)
    assert.are.same({ 2, 3 }, z.shape)
    assert.are.equal('f32', z.dtype)
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, z:tolist())
    assert.are.same({ 1, 1 }, rl.ones({ 2 }, { dtype = 'f64' }):tolist())
    assert.are.equal('f64', rl.ones(2, 'f64').dtype)
    assert.are.same({ { 7, 7 } }, rl.full({ 1, 2 }, 7):tolist())
    assert.are.equal('i64', rl.full({ 1, 2 }, 7).dtype)
    assert.are.equal('f32', rl.full(2, 2, 0.5).dtype)
    assert.are.same({ 2, 2 }, rl.empty(2, 2).shape)
    assert.are.same({}, rl.zeros().shape) -- 0-dim
  end)

  it('arange counts from 0 as PyTorch, with i64 for integers', function()
    local a = rl.arange(5)
    assert.are.equal('i64', a.dtype)
    assert.are.same({ 0, 1, 2, 3, 4 }, a:tolist())
    assert.are.same({ 2, 4, 6 }, rl.arange(2, 8, 2):tolist())
    assert.are.equal('f32', rl.arange(0, 1, 0.25).dtype)
    assert.is_true(same({ 0, 0.25, 0.5, 0.75 }, rl.arange(0, 1, 0.25):tolist(), 1e-7))
    assert.are.same({ 5, 4, 3 }, rl.arange(5, 2, -1):tolist())
  end)

  it('linspace and eye', function()
    assert.is_true(same({ 0, 0.25, 0.5, 0.75, 1 }, rl.linspace(0, 1, 5):tolist(), 1e-7))
    assert.are.same({ 3 }, rl.linspace(3, 5, 1):tolist()) -- one step is the start, as in PyTorch
    assert.are.same({}, rl.linspace(3, 5, 0):tolist())
    assert.are.same({ { 1, 0, 0 }, { 0, 1, 0 } }, rl.eye(2, 3):tolist())
    assert.are.same({ { 1, 0 }, { 0, 1 } }, rl.eye(2):tolist())
  end)

  it('tensor() from nested tables infers shape and dtype', function()
    local t = rl.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.are.same({ 2, 3 }, t.shape)
    assert.are.equal('i64', t.dtype)
    assert.are.equal('f32', rl.tensor { 1, 2.5 }.dtype)
    assert.are.equal('u8', rl.tensor { true, false }.dtype)
    assert.are.equal('f64', rl.tensor({ 1, 2 }, 'f64').dtype)
    assert.are.same({ { { 1 }, { 2 } } }, rl.tensor({ { { 1 }, { 2 } } }):tolist())
    assert.are.equal(3.5, rl.tensor(3.5):item())
    assert.are.same({ 0 }, rl.tensor {}.shape)
  end)

  it('*_like copies shape, dtype and device', function()
    local x = rl.zeros(3, 2, { dtype = 'f64' })
    for _, f in ipairs { rl.zeros_like, rl.ones_like, rl.rand_like, rl.randn_like, rl.empty_like } do
      local y = f(x)
      assert.are.same({ 3, 2 }, y.shape)
      assert.are.equal('f64', y.dtype)
      assert.are.equal('cpu', y.device)
    end
    assert.are.same({ { 4, 4 }, { 4, 4 }, { 4, 4 } }, rl.full_like(x, 4):tolist())
    assert.are.equal('f32', rl.zeros_like(x, { dtype = 'f32' }).dtype)
  end)

  it('requires_grad in the options must be a boolean', function()
    assert.is_true(rl.zeros(2, { requires_grad = true }).requires_grad)
    assert.is_false(rl.zeros(2, { requires_grad = false }).requires_grad)
    for _, bad in ipairs { 'yes', 1 } do
      local ok, msg = pcall(rl.zeros, 2, { requires_grad = bad })
      assert.is_false(ok)
      assert.truthy(msg:find('requires_grad must be a boolean, got ' .. type(bad), 1, true), msg)
    end
    local ok, msg = pcall(rl.ones_like, rl.zeros(2), { requires_grad = 'yes' })
    assert.is_false(ok)
    assert.truthy(msg:find('requires_grad must be a boolean', 1, true), msg)
  end)

  it('keeps exact integers through i64 and float through f64', function()
    local big = 2 ^ 53 + 1 -- a float
    local i = math.tointeger(2 ^ 62) + 1
    assert.are.equal(i, rl.tensor({ i }):tolist()[1])
    assert.are.equal(0.1, rl.tensor({ 0.1 }, 'f64'):item())
    assert.are_not.equal(0.1, rl.tensor({ 0.1 }, 'f32'):item())
    assert.is_number(big)
  end)
end)

describe('views', function()
  it('view, reshape, narrow, select, transpose share storage', function()
    local x = rl.arange(12):view(3, 4)
    local n = x:narrow(2, 2, 2)
    assert.are.same({ { 1, 2 }, { 5, 6 }, { 9, 10 } }, n:tolist())
    n:fill_(-1)
    assert.are.same({ 0, -1, -1, 3 }, x:tolist()[1])
    local s = x:select(1, 3)
    assert.are.same({ 8, -1, -1, 11 }, s:tolist())
    s:zero_()
    assert.are.same({ 0, 0, 0, 0 }, x:tolist()[3])
    local t = x:t()
    assert.is_false(t:is_contiguous())
    assert.is_true(t:is_view_of(x))
    assert.are.same({ 4, 3 }, t.shape)
    assert.are.same({ 1, 4 }, t:stride())
    t[1]:fill_(9) -- column 1 of x
    assert.are.same({ 9, 9, 9 }, { x:tolist()[1][1], x:tolist()[2][1], x:tolist()[3][1] })
    assert.are.same({ 2, 6 }, x:view(2, -1).shape)
  end)

  it('negative dims and positions count from the end', function()
    local x = rl.arange(24):view(2, 3, 4)
    assert.are.same({ 2, 3, 1 }, x:narrow(-1, -1, 1).shape)
    assert.are.same({ 3, 7, 11 }, x:select(1, 1):select(-1, -1):tolist())
    assert.are.same({ 4, 3, 2 }, x:transpose(1, -1).shape)
  end)

  it('permute, unsqueeze, squeeze, expand, flatten', function()
    local x = rl.arange(6):view(1, 2, 3)
    assert.are.same({ 3, 1, 2 }, x:permute(3, 1, 2).shape)
    assert.are.same({ 1, 2, 1, 3 }, x:unsqueeze(3).shape)
    assert.are.same({ 1, 2, 3, 1 }, x:unsqueeze(-1).shape)
    assert.are.same({ 2, 3 }, x:squeeze().shape)
    assert.are.same({ 2, 3 }, x:squeeze(1).shape)
    assert.are.same({ 6 }, x:flatten().shape)
    local e = rl.tensor({ 1, 2, 3 }):expand(2, 3)
    assert.are.same({ { 1, 2, 3 }, { 1, 2, 3 } }, e:tolist())
    assert.are.same({ 0, 1 }, e:stride())
  end)

  it('view refuses a non-contiguous layout; reshape copies', function()
    local t = rl.arange(6):view(2, 3):t()
    assert.has_error(function() t:view(6) end)
    local ok, msg = pcall(t.view, t, 6)
    assert.is_false(ok)
    assert.truthy(msg:find('view', 1, true))
    local r = t:reshape(6)
    assert.are.same({ 0, 3, 1, 4, 2, 5 }, r:tolist())
    assert.is_false(r:is_view_of(t))
  end)

  it('contiguous and clone copy; x[i] selects along dim 1', function()
    local x = rl.arange(6):view(2, 3)
    local c = x:t():contiguous()
    assert.is_true(c:is_contiguous())
    assert.are.same({ { 0, 3 }, { 1, 4 }, { 2, 5 } }, c:tolist())
    local k = x:clone()
    k:fill_(0)
    assert.are.equal(15, x:sum():item())
    assert.are.same({ 3, 4, 5 }, x[2]:tolist())
    assert.are.same({ 3, 4, 5 }, x[-1]:tolist())
    assert.are.equal(4, x[2][2]:item())
    x[1] = 7
    assert.are.same({ 7, 7, 7 }, x[1]:tolist())
    assert.are.equal(2, #x)
  end)

  -- ipairs reads x[#x + 1] to find the end: it errored there
  it('ipairs walks dim 1; other indices out of range are errors', function()
    local x = rl.arange(6):view(3, 2)
    local rows = {}
    for i, r in ipairs(x) do rows[i] = r:tolist() end
    assert.are.same({ { 0, 1 }, { 2, 3 }, { 4, 5 } }, rows)
    assert.is_nil(x[4])
    for _, i in ipairs { 0, 5, -4 } do
      local ok, e = pcall(function() return x[i] end)
      assert.is_false(ok)
      assert.truthy(tostring(e):find('index: ' .. i .. ' is out of range for dim 1 of size 3 (1-based)', 1, true))
    end
    assert.has_error(function() x[4] = 1 end) -- writing past the end is still refused
    local ok, e = pcall(function() return rl.tensor(2)[1] end)
    assert.truthy(tostring(e):find('a 0-dim tensor cannot be indexed', 1, true), tostring(e))
  end)
end)

describe('dtypes', function()
  it('convert between f32, f64, i64, u8', function()
    local x = rl.tensor { -1.5, 0.5, 2.7 }
    assert.are.equal('f64', x:double().dtype)
    assert.are.same({ -1, 0, 2 }, x:long():tolist()) -- truncation, as a C cast
    assert.are.equal('u8', x:byte().dtype)
    assert.are.equal('f32', rl.arange(3):float().dtype)
    assert.are.equal('f64', x:to('f64').dtype)
    assert.are.equal('f64', x:type('f64').dtype)
    assert.are.equal('rl.f32', x:type())
    assert.are.equal(x, x:float()) -- no copy when the dtype matches
  end)

  it('float -> integer: toward zero, saturating, NaN to 0, from every float dtype', function()
    local big = 2 ^ 63
    local v = { 0 / 0, math.huge, -math.huge, 1e30, -1e30, big, -big, 2 ^ 62, -0.9, 255.9, 256, 300, -1 }
    local want = { 0, math.maxinteger, math.mininteger, math.maxinteger, math.mininteger, math.maxinteger,
      math.mininteger, 1 << 62, 0, 255, 256, 300, -1 }
    for _, dt in ipairs { 'f64', 'f32', 'bf16', 'f16' } do
      local x = rl.tensor(v, 'f64'):to(dt)
      local w = {} -- what dt holds of each value, converted
      for i, e in ipairs(want) do w[i] = e end
      if dt == 'f16' then -- 1e30 and 2^62 are infinite in f16 (255.9 is 255.875)
        w[4], w[5], w[8] = math.maxinteger, math.mininteger, math.maxinteger
      elseif dt == 'bf16' then -- 255.9 rounds to 256 in bf16, 300 to 300
        w[10] = 256
      end
      assert.are.same(w, x:long():tolist(), dt)
      local bytes = {}
      for i, e in ipairs(w) do bytes[i] = e & 0xff end -- u8 keeps the low 8 bits
      assert.are.same(bytes, x:byte():tolist(), dt .. ' to u8')
    end
    -- fill_ converts its value the same way
    for i, e in ipairs(want) do
      assert.are.equal(e, rl.zeros(2, 'i64'):fill_(v[i]):tolist()[2], 'fill_ i64 with ' .. tostring(v[i]))
      assert.are.equal(e & 0xff, rl.zeros(2, 'u8'):fill_(v[i]):tolist()[2], 'fill_ u8 with ' .. tostring(v[i]))
    end
  end)

  it('copy_ converts and broadcasts into the destination', function()
    local d = rl.zeros(2, 3, 'f64')
    d:copy_(rl.tensor { 1, 2, 3 })
    assert.are.same({ { 1, 2, 3 }, { 1, 2, 3 } }, d:tolist())
    assert.are.equal('f64', d.dtype)
  end)
end)

describe('printing', function()
  it('prints values as PyTorch, then dtype, size and device', function()
    local s = tostring(rl.tensor { { 1, 2 }, { 3, 4 } })
    assert.are.equal('tensor([[1, 2],\n        [3, 4]])\n[i64 tensor of size 2x2 on cpu]', s)
    local f = tostring(rl.tensor({ { 0.12345, -1.2 }, { 2, 3 } }))
    assert.truthy(f:find('tensor([[ 0.1235, -1.2000],', 1, true))
    assert.truthy(f:find('[f32 tensor of size 2x2 on cpu]', 1, true))
    assert.truthy(tostring(rl.tensor({ 1, 2 }, 'f64')):find('tensor([1., 2.])', 1, true))
    assert.truthy(tostring(rl.tensor { 1e-5, 1, 1000 }):find('1.0000e-05', 1, true))
  end)

  it('summarises large tensors with ...', function()
    local s = tostring(rl.arange(10000))
    assert.truthy(s:find('tensor([   0,    1,    2,  ..., 9997, 9998, 9999])', 1, true))
    local m = tostring(rl.zeros(100, 100))
    assert.truthy(m:find('...', 1, true))
    assert.is_true(#m < 2000)
    assert.truthy(m:find('size 100x100', 1, true))
  end)

  it('tolist and item', function()
    assert.are.same({ { 1.5, 2 } }, rl.tensor({ { 1.5, 2 } }):tolist())
    assert.are.equal(7, rl.tensor(7):tolist())
    assert.is_true(math.type(rl.tensor({ 3 }):item()) == 'integer')
    assert.has_error(function() rl.zeros(2):item() end)
  end)
end)

describe('__close', function()
  it('frees a tensor at the end of its scope; later use is an error', function()
    local keep
    do
      local x <close> = rl.ones(3)
      keep = x
      assert.are.equal(3, x:sum():item())
    end
    local ok, msg = pcall(function() return keep:sum() end)
    assert.is_false(ok)
    assert.truthy(msg:find("freed tensor", 1, true))
    assert.are.equal('[closed tensor]', tostring(keep))
  end)
end)

describe('random numbers', function()
  it('Philox-4x32-10 matches the published known answer', function()
    -- Random123 kat_vectors: counter 0, key 0
    local a, b, c, d = rl.philox(0, 0)
    assert.are.same({ 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }, { a, b, c, d })
  end)

  it('rand maps counter lanes to [0, 1) as documented in philox.h', function()
    local g = rl.Generator(1234)
    local x = rl.rand(6, { generator = g }):double():tolist()
    local expect = {}
    for i = 0, 5 do
      local lanes = { rl.philox(1234, i // 4) }
      expect[i + 1] = (lanes[i % 4 + 1] >> 8) * 2 ^ -24
    end
    assert.are.same(expect, x)
    -- the generator advanced by ceil(6 / 4) = 2 counters
    assert.are.equal(2, g:get_state().offset)
  end)

  it('manual_seed reproduces a stream; generators are independent', function()
    rl.manual_seed(7)
    local a = rl.randn(5):tolist()
    local b = rl.rand(3):tolist()
    rl.manual_seed(7)
    assert.are.same(a, rl.randn(5):tolist())
    assert.are.same(b, rl.rand(3):tolist())
    local g1, g2 = rl.Generator(99), rl.Generator(99)
    local u = rl.rand(4, { generator = g1 }):tolist()
    rl.rand(100) -- the default stream does not disturb g2
    assert.are.same(u, rl.rand(4, { generator = g2 }):tolist())
    local st = g1:get_state()
    local v = rl.randn(3, { generator = g1 }):tolist()
    g1:set_state(st)
    assert.are.same(v, rl.randn(3, { generator = g1 }):tolist())
  end)

  it('distributions have the right ranges and moments', function()
    rl.manual_seed(1)
    local u = rl.rand(100000, { dtype = 'f64' })
    assert.is_true(u:min():item() >= 0 and u:max():item() < 1)
    assert.is_true(math.abs(u:mean():item() - 0.5) < 0.01)
    local n = rl.randn(200000)
    assert.is_true(math.abs(n:mean():item()) < 0.01)
    assert.is_true(math.abs(n:std():item() - 1) < 0.01)
    local nd = rl.randn(200000, { dtype = 'f64' })
    assert.is_true(math.abs(nd:std():item() - 1) < 0.01)
    local b = rl.zeros(100000):bernoulli_(0.3)
    assert.is_true(math.abs(b:mean():item() - 0.3) < 0.01)
    local r = rl.randint(3, 7, 10000)
    assert.are.equal('i64', r.dtype)
    assert.are.equal(3, r:min():item())
    assert.are.equal(6, r:max():item())
    local x = rl.zeros(1000):uniform_(-2, -1)
    assert.is_true(x:min():item() >= -2 and x:max():item() < -1)
    local y = rl.zeros(50000, 'f64'):normal_(3, 2)
    assert.is_true(math.abs(y:mean():item() - 3) < 0.05)
  end)

  it('randperm takes a dtype, the same permutation in it', function()
    local p = rl.randperm(50, { generator = rl.Generator(4) })
    local q = rl.randperm(50, { generator = rl.Generator(4), dtype = 'f64' })
    assert.are.same({ 'i64', 'f64' }, { p.dtype, q.dtype })
    assert.are.same(p:tolist(), q:tolist())
    assert.are.equal(256, rl.randperm(256, 'u8'):numel())
    assert.has_error(function() rl.randperm(257, 'u8') end, 'randperm: n = 257 is too large for u8 (its values must be exact)')
  end)

  it('randperm is a permutation of 0..n-1', function()
    local p = rl.randperm(1000):tolist()
    local seen = {}
    for _, v in ipairs(p) do seen[v] = (seen[v] or 0) + 1 end
    for i = 0, 999 do assert.are.equal(1, seen[i]) end
    local q = rl.randperm(1000):tolist()
    assert.are_not.same(p, q)
  end)

  it('uniform_ refuses lo > hi, as PyTorch; lo = hi fills lo', function()
    local x = rl.zeros(3)
    local ok, msg = pcall(x.uniform_, x, 3, -2)
    assert.is_false(ok)
    assert.truthy(msg:find('uniform_: the range [lo, hi) needs lo <= hi, got lo = 3, hi = -2', 1, true), msg)
    assert.are.same({ 0, 0, 0 }, x:tolist()) -- untouched
    assert.is_false(pcall(x.uniform_, x, 0 / 0, 1))
    assert.are.same({ 2, 2, 2 }, x:uniform_(2, 2):tolist())
  end)

  it('rand of an integer dtype is an error', function()
    local ok, msg = pcall(rl.rand, 3, { dtype = 'i64' })
    assert.is_false(ok)
    assert.truthy(msg:find('needs a float dtype (f32, f64, bf16, f16), got i64', 1, true), msg)
  end)
end)

describe('threads', function()
  it('results do not depend on the thread count', function()
    rl.manual_seed(3)
    local x = rl.randn(300000, 'f64')
    local prev = rl.get_num_threads()
    rl.set_num_threads(1)
    local s1 = x:sum():item()
    rl.set_num_threads(2)
    local s2 = x:sum():item()
    rl.set_num_threads(prev)
    assert.are.equal(s1, s2)
  end)
end)

describe('creation options', function()
  -- rl.zeros(2, {generator = g}) accepted the generator and ignored it
  it('a generator is for the random creators only', function()
    local g = rl.Generator(1)
    for _, f in ipairs {
      function() return rl.zeros(2, { generator = g }) end,
      function() return rl.ones(2, { generator = g }) end,
      function() return rl.full(2, 3, { generator = g }) end,
      function() return rl.zeros_like(rl.zeros(2), { generator = g }) end,
      function() return rl.linspace(0, 1, 3, { generator = g }) end,
      function() return rl.tensor({ 1 }, { generator = g }) end,
    } do
      local ok, e = pcall(f)
      assert.is_false(ok)
      assert.truthy(tostring(e):find('generator is for the random creators', 1, true), tostring(e))
    end
    local a = rl.rand(3, { generator = rl.Generator(5) })
    assert.are.same(a:tolist(), rl.rand(3, { generator = rl.Generator(5) }):tolist())
    assert.are.equal(3, rl.randint(0, 5, 3, { generator = g }):numel())
    assert.are.equal(4, rl.randperm(4, { generator = g }):numel())
    assert.are.same({ 2 }, rl.rand_like(rl.zeros(2), { generator = g }).shape)
    local ok, e = pcall(rl.zeros, 2, { dtyp = 'f64' })
    assert.truthy(tostring(e):find("unknown option 'dtyp' (the options are dtype, device, requires_grad)", 1, true),
      tostring(e))
  end)
end)
