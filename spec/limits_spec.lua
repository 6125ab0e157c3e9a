-- limits_spec.lua - the integer edge cases a fuzzing campaign found (issue
-- #12, defects 3, 5 and 6): absurd shapes, dims past an int, overflowing
-- sizes, and i64 arithmetic at its extremes.  Each is a regression spec:
-- before the fix, the first allocated 17 GB, the second acted as
-- unsqueeze(1), and the last were undefined behaviour (make test-asan
-- stops on them).
local rl = require 'rl'
local shell = require 'helpers.shell'

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, 'expected an error')
  return tostring(e)
end

local function has(msg, part)
  assert(msg:find(part, 1, true), ('expected %q in: %s'):format(part, msg))
end

local MAXI, MINI = math.maxinteger, math.mininteger

describe('absurd shapes (defect 3)', function()
  it('refuses an empty tensor whose other dims would hold 2^32 + 1 elements', function()
    local msg = err_of(rl.empty, 4294967297, 0)
    has(msg, '4294967297x0')
    has(msg, 'empty tensor')
    has(err_of(rl.zeros, { 0, 65536, 65537 }), '0x65536x65537')
  end)

  it('refuses a dim above 2^40, even beside a zero', function()
    local msg = err_of(rl.zeros, 2 ^ 41 // 1, 0)
    has(msg, '2199023255552x0')
    has(msg, 'above 2^40')
    has(err_of(rl.ones, 2 ^ 41 // 1), 'above 2^40')
  end)

  it('refuses sizes whose product overflows', function()
    has(err_of(rl.empty, 2 ^ 40 // 1, 2 ^ 40 // 1), 'too large')
  end)

  it('still makes ordinary empty tensors and reduces them', function()
    local x = rl.zeros(0, 3, 224, 224)
    assert.are.same({ 0, 3, 224, 224 }, x:size())
    assert.are.same({ 3, 224, 224 }, x:sum(1):size())
    assert.are.equal(0, x:sum(2):numel())
  end)

  it('refuses views that grow an empty tensor past the bound', function()
    local x = rl.zeros(0)
    has(err_of(function() return x:expand(2 ^ 62 // 1, 0) end), 'above 2^40')
    has(err_of(function() return x:view(4294967297, 0) end), '4294967297x0')
  end)

  it('checks a nested table whose __len claims 2^62 entries before sizing a buffer', function()
    local liar = setmetatable({}, { __len = function() return 2 ^ 62 // 1 end })
    has(err_of(rl.tensor, liar), 'above 2^40')
    has(err_of(rl.tensor, { { 1 }, setmetatable({}, { __len = function() return -3 end }) }), 'ragged')
  end)

  it('checks linspace before allocating its steps', function()
    has(err_of(rl.linspace, 0, 1, 2 ^ 62 // 1), 'linspace')
  end)

  it('refuses the 80-byte safetensors file of shape [4294967297, 0]', function()
    local dir = shell.tmpdir()
    local path = dir .. '/absurd.safetensors'
    local header = '{"t":{"dtype":"F32","shape":[4294967297,0],"data_offsets":[0,0]}}'
    local f = assert(io.open(path, 'wb'))
    f:write(string.pack('<I8', #header), header)
    f:close()
    local msg = err_of(rl.load, path)
    os.execute('rm -rf ' .. shell.quote(dir))
    has(msg, 'absurd.safetensors')
    has(msg, '"t"')
    has(msg, '4294967297x0')
  end)
end)

describe('dims and sizes past an int (defect 5)', function()
  it('unsqueeze(2^32 + 1) is an error, not unsqueeze(1)', function()
    local x = rl.zeros(3)
    has(err_of(function() return x:unsqueeze(2 ^ 32 // 1 + 1) end), '4294967297')
    has(err_of(function() return x:unsqueeze(-(2 ^ 32 // 1) - 1) end), 'out of range')
    assert.are.same({ 3, 1 }, x:unsqueeze(2):size())
    assert.are.same({ 3, 1 }, x:unsqueeze(-1):size())
  end)

  it('every dim argument goes through the dim check', function()
    local x = rl.zeros(2, 3)
    local big = 2 ^ 32 // 1 + 1
    for _, f in ipairs({
      function() return x:sum(big) end,
      function() return x:transpose(1, big) end,
      function() return x:select(big, 1) end,
      function() return x:narrow(big, 1, 1) end,
      function() return x:squeeze(big) end,
      function() return rl.F.softmax(x, big) end,
      function() return rl.cat({ x, x }, big) end,
    }) do
      has(err_of(f), 'out of range')
    end
  end)

  it('view and reshape say that sizes overflow instead of miscounting', function()
    local x = rl.zeros(8)
    local msg = err_of(function() return x:view(2 ^ 62 // 1, 4) end)
    has(msg, 'view')
    has(msg, 'past 2^63')
    has(err_of(function() return x:reshape(-1, 2 ^ 62 // 1, 4) end), 'past 2^63')
    assert.are.same({ 2, 4 }, x:view(-1, 4):size())
  end)

  it('window sizes near 2^63 are range errors, not overflowing sums', function()
    local x = rl.zeros(1, 1, 4, 4)
    has(err_of(rl.F.max_pool2d, x, 2, { padding = 2 ^ 62 // 1 }), 'padding')
    has(err_of(rl.F.max_pool2d, x, 2 ^ 62 // 1), 'out of range')
    has(err_of(rl.F.conv2d, x, rl.zeros(1, 1, 3, 3), nil, { dilation = 2 ^ 62 // 1 }), 'out of range')
  end)

  it('narrow and select with positions near 2^63 are range errors', function()
    local x = rl.zeros(5)
    has(err_of(function() return x:narrow(1, 2, MAXI) end), 'out of range')
    has(err_of(function() return x:select(1, 2 ^ 40 // 1) end), '1099511627776')
    has(err_of(function() return x[MINI] end), 'out of range')
  end)
end)

describe('i64 at its extremes (defect 6)', function()
  local function i64(t) return rl.tensor(t, { dtype = 'i64' }) end

  it('add, sub, mul and neg wrap, as in PyTorch', function()
    assert.are.equal(MINI, (i64({ MAXI }) + 1):tolist()[1])
    assert.are.equal(MAXI, (i64({ MINI }) - 1):tolist()[1])
    assert.are.equal(MINI, (-i64({ MINI })):tolist()[1])
    assert.are.equal(MAXI * 3, (i64({ MAXI }) * i64({ 3 })):tolist()[1])
    assert.are.equal(MINI, i64({ MINI }):abs():tolist()[1])
  end)

  it('sum and prod wrap', function()
    assert.are.equal(MAXI + MAXI, i64({ MAXI, MAXI }):sum():item())
    assert.are.equal(MAXI * MAXI, i64({ MAXI, MAXI }):prod():item())
    assert.are.equal(MINI + MINI, i64({ { MINI, MINI } }):sum(2):tolist()[1])
  end)

  it('randint over a range wider than 2^63', function()
    local t = rl.randint(MINI, 2 ^ 53 // 1, { 64 }, { generator = rl.Generator(1) })
    for _, v in ipairs(t:tolist()) do assert(v >= MINI and v < 2 ^ 53, v) end
    has(err_of(rl.randint, 0, MAXI, { 2 }), 'randint')
  end)
end)
