-- safetensors_spec.lua - rl.save / rl.load: round trips of every dtype,
-- metadata, awkward names, the exact file layout, refusal of corrupt files
-- (each with a message naming the problem), atomic saves, and interop with
-- PyTorch in both directions (pending when python3 or torch is missing).
local rl = require 'rl'

-- ---- helpers -------------------------------------------------------------

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function mktempdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute('mkdir -m 700 ' .. sh_quote(p)))
  return p
end

local function rmtree(p) os.execute('rm -rf ' .. sh_quote(p)) end

-- Every entry under p (recursively, names relative to p), sorted.
local function listing(p)
  local f = io.popen('cd ' .. sh_quote(p) .. ' && find . -mindepth 1 | sort')
  local t = {}
  for l in f:lines() do t[#t + 1] = l end
  f:close()
  return t
end

local function read_bytes(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('a')
  f:close()
  return s
end

local function write_bytes(path, s)
  local f = assert(io.open(path, 'wb'))
  f:write(s)
  f:close()
end

-- A file from a header text and data bytes; hlen overrides the length word.
local function st_bytes(header, data, hlen)
  return string.pack('<I8', hlen or #header) .. header .. (data or '')
end

-- A fresh temporary directory for every test of the enclosing describe.
local function use_tempdir()
  local box = {}
  before_each(function() box.dir = mktempdir() end)
  after_each(function() rmtree(box.dir) end)
  return box
end

local function is_negzero(v) return v == 0 and 1 / v < 0 end

-- Exact equality of nested lists (NaN equals NaN, -0 differs from 0).  Lua
-- compares an integer with a float exactly, so 2^53 + 1 never equals 2^53.
local function exact(a, b)
  if type(a) == 'table' then
    if type(b) ~= 'table' or #a ~= #b then return false end
    for i = 1, #a do
      if not exact(a[i], b[i]) then return false end
    end
    return true
  end
  if a ~= a then return b ~= b end
  return a == b and is_negzero(a) == is_negzero(b)
end

local function assert_same_tensor(want, got)
  assert.are.equal(want.dtype, got.dtype)
  assert.are.same(want.shape, got.shape)
  assert.is_true(exact(want:contiguous():tolist(), got:tolist()),
    'values differ: ' .. tostring(want) .. ' vs ' .. tostring(got))
end

local function round_trip(dir, tensors, meta)
  local path = dir .. '/rt.safetensors'
  rl.save(path, tensors, meta)
  return rl.load(path)
end

local function load_error(path)
  local ok, err = pcall(rl.load, path)
  assert.is_false(ok, 'load should have failed')
  return tostring(err)
end

local function assert_has(msg, part)
  assert.is_truthy(msg:find(part, 1, true), 'message "' .. msg .. '" lacks "' .. part .. '"')
end

-- An entry of a hand-written header.
local function entry(dtype, shape, b, e)
  return string.format('{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}', dtype,
    table.concat(shape, ','), b, e)
end

-- ---- round trips ---------------------------------------------------------

describe('rl.save / rl.load round trip', function()
  local T = use_tempdir()

  it('keeps exact values of f32, f64 and u8, including inf, nan and -0', function()
    local f32 = rl.tensor({ 0, -0.0, 1.5, -2.25, 0.1, 3.4028234663852886e38,
      -3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45,
      1 / 0, -1 / 0, 0 / 0 }, 'f32')
    local f64 = rl.tensor({ math.pi, -0.0, 0.1, 1.7976931348623157e308, 2 ^ -1074, 1e-310,
      -1 / 0, 0 / 0 }, 'f64')
    local u8 = rl.tensor({ 0, 1, 127, 128, 254, 255 }, 'u8')
    local t, meta = round_trip(T.dir, { f32 = f32, f64 = f64, u8 = u8 })
    assert_same_tensor(f32, t.f32)
    assert_same_tensor(f64, t.f64)
    assert_same_tensor(u8, t.u8)
    assert.are.same({}, meta)
    assert.is_true(is_negzero(t.f32:tolist()[2]))
    assert.are.equal(1.401298464324817e-45, t.f32:tolist()[9])
  end)

  it('keeps every i64 value exactly, including the extremes', function()
    local vals = { math.maxinteger, math.mininteger, 9007199254740993, -1, 0 }
    local data = ''
    for _, v in ipairs(vals) do data = data .. string.pack('<i8', v) end
    local hdr = '{"big":' .. entry('I64', { 5 }, 0, 40) .. '}'
    local src = T.dir .. '/i64.safetensors'
    write_bytes(src, st_bytes(hdr .. string.rep(' ', (8 - #hdr % 8) % 8), data))
    local t = rl.load(src)
    assert.are.equal('i64', t.big.dtype)
    assert.is_true(exact(vals, t.big:tolist()))
    local back = round_trip(T.dir, { big = t.big })
    assert.is_true(exact(vals, back.big:tolist()))
    assert.are.equal(data, read_bytes(T.dir .. '/rt.safetensors'):sub(-40))
  end)

  it('keeps 0-dim and empty tensors of every dtype', function()
    local ts = {
      s32 = rl.tensor(2.5), s64 = rl.tensor(-0.125, 'f64'), si = rl.tensor(7, 'i64'),
      su = rl.tensor(200, 'u8'),
      e32 = rl.zeros(0), e64 = rl.zeros(2, 0, 3, 'f64'), ei = rl.zeros(0, 4, 'i64'),
      eu = rl.zeros(3, 0, 'u8'),
    }
    local t = round_trip(T.dir, ts)
    for name, x in pairs(ts) do assert_same_tensor(x, t[name]) end
    assert.are.same({}, t.s32.shape)
    assert.are.same({ 2, 0, 3 }, t.e64.shape)
    assert.are.equal(2.5, t.s32:item())
  end)

  it('saves non-contiguous views (t, narrow, select, permute, expand) by value', function()
    local x = rl.arange(24):view(2, 3, 4)
    local f = rl.arange(0, 3, 0.25):view(3, 4)
    local views = {
      t = f:t(), narrowed = f:narrow(2, 2, 2), selected = x:select(3, 2),
      permuted = x:permute(3, 1, 2), expanded = rl.tensor({ 1, 2, 3 }, 'u8'):view(1, 3):expand(4, 3),
      double_t = f:double():t():narrow(1, 2, 2),
    }
    for _, v in pairs(views) do assert.is_false(v:is_contiguous()) end
    local t = round_trip(T.dir, views)
    for name, v in pairs(views) do
      assert_same_tensor(v, t[name])
      assert.is_true(t[name]:is_contiguous())
    end
  end)

  it('loads fresh tensors that do not share storage with what was saved', function()
    local x = rl.ones(3)
    local t = round_trip(T.dir, { x = x })
    t.x:fill_(5)
    assert.are.same({ 1, 1, 1 }, x:tolist())
  end)

  it('keeps metadata, converting numbers with tostring, and gives {} when there is none', function()
    local t, meta = round_trip(T.dir, { w = rl.ones(2) },
      { format = 'pt', epoch = 12, lr = 0.5, note = 'say "hi"\\\n\tüñí€😀', empty = '' })
    assert.are.same({ format = 'pt', epoch = '12', lr = '0.5', note = 'say "hi"\\\n\tüñí€😀',
      empty = '' }, meta)
    assert.are.same({ 1, 1 }, t.w:tolist())
    local t2, meta2 = round_trip(T.dir, {}, { only = 'metadata' })
    assert.are.same({}, t2)
    assert.are.same({ only = 'metadata' }, meta2)
    local _, meta3 = round_trip(T.dir, { w = rl.ones(1) })
    assert.are.same({}, meta3)
  end)

  it('with {tensors = false} gives the metadata and no tensor, reading no data byte', function()
    local path = T.dir .. '/meta.safetensors'
    rl.save(path, { w = rl.ones(1000000), b = rl.zeros(2) }, { epoch = 3, note = 'x' })
    -- the bytes this process has read so far (Linux: /proc/self/io's rchar)
    local function rchar()
      local f = io.open('/proc/self/io')
      if not f then return nil end
      local n = tonumber(f:read('a'):match('rchar: (%d+)'))
      f:close()
      return n
    end
    local r0 = rchar()
    local t, meta = rl.load(path, { tensors = false })
    local r1 = rchar()
    assert.are.same({}, t)
    assert.are.same({ epoch = '3', note = 'x' }, meta)
    local t2 = rl.load(path, { tensors = true })
    local r2 = rchar()
    assert.are.same({ 1000000 }, t2.w.shape)
    if r0 then
      -- the header read is a few hundred bytes; the data is 4 MB
      assert.is_true(r1 - r0 < 100000, string.format('metadata alone read %d bytes', r1 - r0))
      assert.is_true(r2 - r1 >= 4000000, string.format('the full load read %d bytes', r2 - r1))
    end
  end)

  it('refuses an options table it does not know, naming the option', function()
    local path = T.dir .. '/opt.safetensors'
    rl.save(path, { w = rl.ones(1) })
    local function err(o)
      local ok, msg = pcall(rl.load, path, o)
      assert.is_false(ok)
      return msg
    end
    assert_has(err({ tensor = false }), "unknown option 'tensor'; rl.load takes only tensors")
    assert_has(err({ tensors = 0 }), 'option tensors must be a boolean, not number')
    assert_has(err({ [1] = true }), "unknown option '1'")
    assert_has(err('meta'), 'table expected, got string')
  end)

  it('keeps names with quotes, backslashes, control characters and unicode', function()
    local names = { 'a"b', 'c\\d', '\\"', 'tab\there', 'new\nline', '\1\31\127', '',
      'é漢字😀', '/slash/', 'layer.0.weight', '__metadata', '{"x":1}' }
    local ts = {}
    for i, n in ipairs(names) do ts[n] = rl.full({ i }, i, 'i64') end
    local t = round_trip(T.dir, ts, { ['k"\\'] = 'v' })
    local count = 0
    for n, v in pairs(t) do
      count = count + 1
      assert_same_tensor(ts[n], v)
    end
    assert.are.equal(#names, count)
  end)

  it('starts the data region at a multiple of 8 whatever the names', function()
    for len = 1, 17 do
      local path = T.dir .. '/pad' .. len .. '.safetensors'
      rl.save(path, { [string.rep('n', len)] = rl.tensor({ 1, 2, 3 }, 'u8') })
      local bytes = read_bytes(path)
      local n = string.unpack('<I8', bytes)
      assert.are.equal(0, n % 8)
      assert.are.equal(8 + n + 3, #bytes)
      local hdr = bytes:sub(9, 8 + n)
      assert.is_truthy(hdr:match('^{.*} *$'))
      assert.is_true(#hdr:match(' *$') < 8)
      assert.are.equal('\1\2\3', bytes:sub(9 + n))
    end
  end)

  it('writes the exact bytes of a tiny file, names in sorted order', function()
    local path = T.dir .. '/tiny.safetensors'
    rl.save(path, { b = rl.tensor({ 1.5, -2 }, 'f32'), a = rl.tensor({ 1, 2, 3 }, 'u8') })
    local hdr = '{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},' ..
        '"b":{"dtype":"F32","shape":[2],"data_offsets":[3,11]}}'
    hdr = hdr .. string.rep(' ', (8 - #hdr % 8) % 8)
    local want = string.pack('<I8', #hdr) .. hdr .. '\1\2\3' .. string.pack('<f<f', 1.5, -2)
    local got = read_bytes(path)
    assert.are.equal(want, got)
    assert.are.equal(#hdr, string.unpack('<I8', got))
    assert.are.equal(0, (8 + #hdr) % 8)
  end)

  it('puts __metadata__ first and writes a scalar with shape []', function()
    local path = T.dir .. '/meta.safetensors'
    rl.save(path, { s = rl.tensor(-1, 'f64') }, { format = 'pt' })
    local got = read_bytes(path)
    local n = string.unpack('<I8', got)
    assert.are.equal('{"__metadata__":{"format":"pt"},' ..
      '"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}', got:sub(9, 8 + n):match('^(.-) *$'))
    assert.are.equal(string.pack('<d', -1), got:sub(9 + n))
  end)

  it('writes the same bytes for the same table every time', function()
    local ts = {}
    for i = 1, 20 do ts['w' .. i] = rl.full({ 2 }, i) end
    rl.save(T.dir .. '/1.st', ts, { a = '1', b = '2', c = '3' })
    rl.save(T.dir .. '/2.st', ts, { c = '3', b = '2', a = '1' })
    assert.are.equal(read_bytes(T.dir .. '/1.st'), read_bytes(T.dir .. '/2.st'))
  end)

  it('replaces an existing file and leaves no temporary file', function()
    local path = T.dir .. '/x.safetensors'
    write_bytes(path, 'old contents')
    rl.save(path, { x = rl.ones(2) })
    assert.are.same({ 1, 1 }, rl.load(path).x:tolist())
    assert.are.same({ './x.safetensors' }, listing(T.dir))
  end)

  it('reads F16, BF16, I32 (as i64) and BOOL (as u8) exactly', function()
    local f16 = string.pack('<I2I2I2I2I2I2I2I2', 0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF,
      0x7C00, 0xFC00, 0x8000)
    local bf16 = string.pack('<I2I2I2I2', 0x3F80, 0xC0A0, 0x7F80, 0x0001)
    local i32 = string.pack('<i4i4i4', 2147483647, -2147483648, -7)
    local bool = '\0\1\2'
    local data = f16 .. bf16 .. i32 .. bool .. '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'
    local hdr = '{"h":' .. entry('F16', { 2, 4 }, 0, 16) .. ',"bf":' .. entry('BF16', { 4 }, 16, 24) ..
        ',"i":' .. entry('I32', { 3 }, 24, 36) .. ',"b":' .. entry('BOOL', { 3 }, 36, 39) ..
        ',"nan16":' .. entry('F16', {}, 40, 42) .. '}'
    data = data:sub(1, 40) .. string.pack('<I2', 0x7E00) .. data:sub(43)
    local path = T.dir .. '/conv.safetensors'
    write_bytes(path, st_bytes(hdr, data))
    local t = rl.load(path)
    local h_want = { { 1, -2, 65504, 2 ^ -24 }, { 1023 * 2 ^ -24, 1 / 0, -1 / 0, -0.0 } }
    assert.are.equal('f16', t.h.dtype)
    assert.is_true(exact(h_want, t.h:tolist()))
    assert.are.equal('bf16', t.bf.dtype)
    assert.is_true(exact({ 1, -5, 1 / 0, 2 ^ -133 }, t.bf:tolist()))
    -- and writes both back bit for bit (the file's bytes, the NaN's included)
    rl.save(T.dir .. '/bf.safetensors', { bf = t.bf, h = t.h, nan16 = t.nan16 })
    local again = rl.load(T.dir .. '/bf.safetensors')
    assert.are.equal('bf16', again.bf.dtype)
    assert.is_true(exact({ 1, -5, 1 / 0, 2 ^ -133 }, again.bf:tolist()))
    assert.are.equal('f16', again.h.dtype)
    assert.is_true(exact(h_want, again.h:tolist()))
    local fh = assert(io.open(T.dir .. '/bf.safetensors', 'rb'))
    local bytes = fh:read('a')
    fh:close()
    assert.truthy(bytes:find(f16, 1, true), 'the F16 bytes written as read')
    assert.truthy(bytes:find(string.pack('<I2', 0x7E00), 1, true), 'the F16 NaN written as read')
    assert.are.equal('i64', t.i.dtype)
    assert.is_true(exact({ 2147483647, -2147483648, -7 }, t.i:tolist()))
    assert.are.equal('u8', t.b.dtype)
    assert.are.same({ 0, 1, 1 }, t.b:tolist())
    local v = t.nan16:item()
    assert.is_true(v ~= v)
  end)

  it('accepts any valid JSON layout: whitespace, escapes, key order, extra keys, holes', function()
    local hdr = ' \n{ "__metadata__" : { "k\\u00e9" : "\\ud83d\\ude00\\/\\b\\f\\r" } ,\r\n' ..
        '\t"\\u0061\\u0062" : { "shape" : [ 2 ] , "data_offsets" : [ 4 , 6 ] , ' ..
        '"extra" : [ true, false, null, -1.5e3, {"x": []} ] , "dtype" : "U8" } } \n'
    local path = T.dir .. '/odd.safetensors'
    write_bytes(path, st_bytes(hdr, 'xxxx\7\9yyyy'))
    local t, meta = rl.load(path)
    assert.are.same({ 7, 9 }, t.ab:tolist())
    assert.are.same({ ['ké'] = '😀/\b\f\r' }, meta)
  end)
end)

-- ---- corrupt files ---------------------------------------------------------

-- Each case: a file's bytes and the parts its message must contain.
local function valid_hdr(entries) return '{' .. entries .. '}' end
local ok_entry = entry('F32', { 2 }, 0, 8)
local corrupt = {
  { 'an empty file', '', { 'file is 0 bytes', 'shorter than the 8-byte header length' } },
  { 'a file shorter than 8 bytes', 'abc', { 'file is 3 bytes', 'shorter than the 8-byte' } },
  { 'a header length beyond the file', st_bytes('{}', '', 100),
    { 'header length 100 is larger than the file allows (2 bytes' } },
  { 'an absurd header length', st_bytes('{}', '', 200000000),
    { 'is not a safetensors file (or is damaged)', 'header length 200000000 is absurd' } },
  { 'a header length of 2^64-1', string.pack('<i8', -1) .. '{}', { 'is absurd' } },
  { 'an empty header', st_bytes('', ''), { 'must be a JSON object', 'at byte 8' } },
  { 'a header that is a JSON array', st_bytes('[]', ''), { 'must be a JSON object' } },
  { 'a truncated header', st_bytes('{"a":', ''), { 'not valid JSON', 'unexpected end of header at byte 13' } },
  { 'a missing colon', st_bytes('{"a" 1}', ''), { "expected ':' after a key at byte 13" } },
  { 'an unquoted key', st_bytes('{a:1}', ''), { 'expected a string key at byte 9' } },
  { 'a trailing comma', st_bytes('{"a":' .. ok_entry .. ',}', string.rep('\0', 8)),
    { 'trailing comma' } },
  { 'a missing comma', st_bytes('{"a":[1 2]}', ''), { "expected ',' or ']' at byte 16" } },
  { 'an invalid escape', st_bytes('{"\\q":1}', ''), { 'invalid escape at byte 11' } },
  { 'a bad \\u escape', st_bytes('{"\\u12G4":1}', ''), { 'bad hex digit' } },
  { 'a lone high surrogate', st_bytes('{"\\ud800x":1}', ''), { 'unpaired high surrogate in a \\u escape at byte 12' } },
  { 'a lone low surrogate', st_bytes('{"\\udc00":1}', ''), { 'unpaired low surrogate' } },
  { 'an escaped NUL', st_bytes('{"a\\u0000":1}', ''), { 'NUL' } },
  { 'a raw control character', st_bytes('{"a\1":1}', ''), { 'unescaped control character in a string at byte 11' } },
  { 'invalid UTF-8', st_bytes('{"\255":1}', ''), { 'invalid UTF-8 in a string at byte 10' } },
  { 'overlong UTF-8', st_bytes('{"\192\175":1}', ''), { 'invalid UTF-8' } },
  { 'an unterminated string', st_bytes('{"abc', ''), { 'unterminated string' } },
  { 'a leading zero', st_bytes('{"a":01}', ''), { 'leading zero' } },
  { 'a bare minus', st_bytes('{"a":-}', ''), { 'invalid number' } },
  { 'an unknown literal', st_bytes('{"a":nul}', ''), { 'unexpected character at byte 13' } },
  { 'an integer out of range', st_bytes('{"a":' .. entry('U8', { '99999999999999999999' }, 0, 0) .. '}', ''),
    { 'integer out of range' } },
  { 'data after the object', st_bytes('{} x', ''), { 'unexpected data after the JSON object at byte 11' } },
  { 'a NUL in the padding', st_bytes('{}\0', ''), { 'unexpected data after' } },
  { 'deep nesting', st_bytes('{"a":' .. string.rep('[', 200), ''), { 'nesting too deep' } },
  { 'an entry that is not an object', st_bytes('{"a":[1]}', ''),
    { 'tensor "a" (at byte 13)', 'not a JSON object' } },
  { 'a missing dtype', st_bytes('{"w":{"shape":[2],"data_offsets":[0,8]}}', string.rep('\0', 8)),
    { 'tensor "w"', 'missing "dtype"' } },
  { 'a missing shape', st_bytes('{"w":{"dtype":"F32","data_offsets":[0,8]}}', string.rep('\0', 8)),
    { 'missing "shape"' } },
  { 'missing data_offsets', st_bytes('{"w":{"dtype":"F32","shape":[2]}}', string.rep('\0', 8)),
    { 'missing "data_offsets"' } },
  { 'an unknown dtype', st_bytes('{"w":' .. entry('Q8', { 2 }, 0, 2) .. '}', '\0\0'),
    { 'unknown dtype "Q8"' } },
  { 'a dtype that is not a string', st_bytes('{"w":{"dtype":4,"shape":[],"data_offsets":[0,4]}}', '\0\0\0\0'),
    { '"dtype" is not a string' } },
  { 'a shape that is not an array', st_bytes('{"w":{"dtype":"U8","shape":2,"data_offsets":[0,2]}}', '\0\0'),
    { '"shape" is not an array' } },
  { 'a negative shape', st_bytes('{"w":' .. entry('U8', { 2, -1 }, 0, 0) .. '}', ''),
    { 'shape[1] is negative (-1)' } },
  { 'a fractional shape', st_bytes('{"w":' .. entry('U8', { '1.5' }, 0, 0) .. '}', ''),
    { 'shape[0] is not an integer' } },
  { 'more than 8 dims', st_bytes('{"w":' .. entry('U8', { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 0, 1) .. '}', '\0'),
    { 'shape has 9 dims (at most 8)' } },
  { 'a shape too large to count', st_bytes('{"w":' .. entry('U8', { 4294967296, 4294967296, 4294967296 }, 0, 0) .. '}', ''),
    { 'shape is too large' } },
  { 'one data offset', st_bytes('{"w":{"dtype":"U8","shape":[],"data_offsets":[0]}}', '\0'),
    { '"data_offsets" must be two non-negative integers' } },
  { 'three data offsets', st_bytes('{"w":{"dtype":"U8","shape":[],"data_offsets":[0,1,2]}}', '\0\0'),
    { '"data_offsets" must be two non-negative integers' } },
  { 'string data offsets', st_bytes('{"w":{"dtype":"U8","shape":[],"data_offsets":["0",1]}}', '\0'),
    { '"data_offsets" must be two non-negative integers' } },
  { 'data offsets in an object', st_bytes('{"w":{"dtype":"U8","shape":[],"data_offsets":{"a":0,"b":1}}}', '\0'),
    { '"data_offsets" must be two non-negative integers' } },
  { 'a negative data offset', st_bytes('{"w":' .. entry('U8', {}, -1, 0) .. '}', '\0'),
    { '"data_offsets" must be two non-negative integers' } },
  { 'begin after end', st_bytes('{"w":' .. entry('F32', { 1 }, 8, 4) .. '}', string.rep('\0', 8)),
    { 'data_offsets begin 8 > end 4' } },
  { 'an end beyond the data region', st_bytes('{"w":' .. entry('F32', { 4 }, 0, 16) .. '}', string.rep('\0', 12)),
    { 'data_offsets end 16 is beyond the data region (12 bytes)' } },
  { 'a size that does not match the shape', st_bytes('{"w":' .. entry('F32', { 3 }, 0, 8) .. '}', string.rep('\0', 8)),
    { 'data_offsets span 8 bytes but shape 3 of F32 needs 12' } },
  { 'overlapping tensors', st_bytes('{"a":' .. entry('F32', { 2 }, 0, 8) .. ',"b":' .. entry('F32', { 2 }, 4, 12) .. '}',
    string.rep('\0', 12)), { 'tensors "a" [0, 8) and "b" [4, 12) overlap' } },
  { 'duplicate names', st_bytes('{"a":' .. entry('U8', { 1 }, 0, 1) .. ',"a":' .. entry('U8', { 1 }, 1, 2) .. '}', '\0\0'),
    { 'duplicate tensor name "a"' } },
  { 'a duplicate key in an entry', st_bytes('{"a":{"dtype":"U8","dtype":"U8","shape":[],"data_offsets":[0,1]}}', '\0'),
    { 'duplicate key "dtype"' } },
  { 'metadata that is not an object', st_bytes('{"__metadata__":["x"]}', ''),
    { '"__metadata__" (at byte 24) is not an object' } },
  { 'a metadata value that is not a string', st_bytes('{"__metadata__":{"epoch":3}}', ''),
    { '"__metadata__" value for "epoch"', 'is not a string' } },
}

describe('rl.load refuses a corrupt file', function()
  local T = use_tempdir()

  for _, c in ipairs(corrupt) do
    it('with ' .. c[1], function()
      local path = T.dir .. '/bad.safetensors'
      write_bytes(path, c[2])
      local msg = load_error(path)
      assert_has(msg, 'load: \'' .. path .. '\'')
      for _, part in ipairs(c[3]) do assert_has(msg, part) end
    end)
  end

  -- {tensors = false} reads the metadata alone, after the same checks of
  -- the whole header
  for _, c in ipairs(corrupt) do
    it('with ' .. c[1] .. ', also when asked for the metadata alone', function()
      local path = T.dir .. '/bad.safetensors'
      write_bytes(path, c[2])
      local ok, msg = pcall(rl.load, path, { tensors = false })
      assert.is_false(ok)
      assert_has(msg, 'load: \'' .. path .. '\'')
      for _, part in ipairs(c[3]) do assert_has(msg, part) end
    end)
  end

  it('that does not exist, or is a directory', function()
    assert_has(load_error(T.dir .. '/none'), 'cannot open: No such file or directory')
    assert_has(load_error(T.dir), 'not a regular file')
  end)

  it('but accepts holes and trailing bytes in the data region', function()
    local path = T.dir .. '/holes.safetensors'
    local hdr = valid_hdr('"a":' .. entry('U8', { 2 }, 3, 5) .. ',"e":' .. entry('U8', { 0 }, 4, 4))
    write_bytes(path, st_bytes(hdr, 'xxx\5\6zzz'))
    local t = rl.load(path)
    assert.are.same({ 5, 6 }, t.a:tolist())
    assert.are.same({ 0 }, t.e.shape)
  end)
end)

-- ---- failed saves ----------------------------------------------------------

describe('rl.save fails cleanly', function()
  local T = use_tempdir()

  it('into a missing directory: raises, leaves no file and no temporary file', function()
    local path = T.dir .. '/missing/x.safetensors'
    local ok, err = pcall(rl.save, path, { x = rl.ones(3) })
    assert.is_false(ok)
    assert_has(err, "save: '" .. path .. "'")
    assert_has(err, 'No such file or directory')
    assert.are.same({}, listing(T.dir))
  end)

  it('when a write fails (file size limit): the old file stays, no temporary file', function()
    local path = T.dir .. '/big.safetensors'
    write_bytes(path, 'previous checkpoint')
    local script = T.dir .. '/save.lua'
    write_bytes(script, string.format([[
      local rl = require 'rl'
      local ok, err = pcall(rl.save, %q, { x = rl.zeros(1000000) })
      io.write(ok and 'saved' or err)]], path))
    local cmd = string.format("ulimit -f 64; trap '' XFSZ; LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' " ..
      "LUA_CPATH=%s %s %s 2>&1", sh_quote(package.cpath), require('helpers.shell').lua, sh_quote(script))
    local p = io.popen('sh -c ' .. sh_quote(cmd))
    local out = p:read('a')
    p:close()
    assert_has(out, "save: '" .. path .. "'")
    assert_has(out, 'File too large')
    assert.are.equal('previous checkpoint', read_bytes(path))
    assert.are.same({ './big.safetensors', './save.lua' }, listing(T.dir))
  end)

  it('naming the key when a key is not a string or a value is not a tensor', function()
    local path = T.dir .. '/x.st'
    local function save_err(...)
      local ok, err = pcall(rl.save, ...)
      assert.is_false(ok)
      return err
    end
    assert_has(save_err(path, { rl.ones(1) }), 'tensor key 1 (a number) is not a string')
    assert_has(save_err(path, { [true] = rl.ones(1) }), 'tensor key true (a boolean) is not a string')
    assert_has(save_err(path, { w = 3 }), 'value for "w" is not a tensor (got number)')
    assert_has(save_err(path, { w = { 1, 2 } }), 'value for "w" is not a tensor (got table)')
    assert_has(save_err(path, { w = rl.ones(1) }, { k = {} }),
      'metadata value for "k" must be a string (got table)')
    assert_has(save_err(path, { w = rl.ones(1) }, { [1] = 'v' }),
      'metadata key 1 (a number) is not a string')
    assert_has(save_err(path, { ['a\0b'] = rl.ones(1) }), 'contains a NUL byte')
    assert_has(save_err(path, { __metadata__ = rl.ones(1) }), '"__metadata__" is reserved')
    assert_has(save_err(path, { ['\255'] = rl.ones(1) }), 'is not valid UTF-8')
    assert.are.same({}, listing(T.dir))
  end)

  it('when a tensor was closed', function()
    local x = rl.ones(2)
    do
      local y <close> = x -- luacheck: ignore
    end
    local ok, err = pcall(rl.save, T.dir .. '/x.st', { w = x })
    assert.is_false(ok)
    assert_has(err, 'tensor "w" was closed')
    assert.are.same({}, listing(T.dir))
  end)
end)

-- ---- interop with PyTorch --------------------------------------------------

local PY = '/usr/bin/python3'
local function have_torch()
  local ok = os.execute(PY .. ' -c "import torch, numpy" >/dev/null 2>&1')
  return ok == true or ok == 0
end

-- Run a python script (text) with arguments; returns its stdout or fails.
local function run_python(dir, text, args)
  local script = dir .. '/check.py'
  write_bytes(script, text)
  local p = io.popen(PY .. ' ' .. sh_quote(script) .. ' ' .. args .. ' 2>&1')
  local out = p:read('a')
  local ok = p:close()
  assert.is_true(ok, 'python failed:\n' .. out)
  return out
end

local function unhex(h) return (h:gsub('..', function(x) return string.char(tonumber(x, 16)) end)) end

-- Python's spelling of a value: decimal integers, float.hex() floats, inf, nan.
local function py_number(s)
  local special = { inf = 1 / 0, ['-inf'] = -1 / 0, nan = 0 / 0 }
  if special[s] then return special[s] end
  return assert(tonumber(s), 'bad number from python: ' .. s)
end

-- A comma-separated list ('-' when empty) mapped through fn.
local function split(s, fn)
  local t = {}
  if s == '-' then return t end
  for v in s:gmatch('[^,]+') do t[#t + 1] = fn(v) end
  return t
end

-- Lines "T <hex name> <dtype> <shape,...> <v,...>" and "M <hex key> <hex val>".
local function parse_report(out)
  local ts, meta = {}, {}
  for line in out:gmatch('[^\n]+') do
    local kind, a, b, c, d = line:match('^(%u) (%x*) (%S+) ?(%S*) ?(%S*)$')
    assert.is_truthy(kind, 'bad line from python: ' .. line)
    if kind == 'M' then
      meta[unhex(a)] = unhex(b)
    else
      ts[unhex(a)] = { dtype = b, shape = split(c, math.tointeger), values = split(d, py_number) }
    end
  end
  return ts, meta
end

local function flat(list, out)
  out = out or {}
  if type(list) ~= 'table' then
    out[#out + 1] = list
    return out
  end
  for _, v in ipairs(list) do flat(v, out) end
  return out
end

local PY_READ = [==[
import json, struct, sys
import numpy as np
import torch
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
assert (8 + n) % 8 == 0
header = json.loads(raw[8:8 + n].decode('utf-8'))
data = raw[8 + n:]
np_types = {'F32': '<f4', 'F64': '<f8', 'I64': '<i8', 'U8': 'u1'}
def fmt(v):
    if isinstance(v, float):
        return v.hex() if v == v and abs(v) != float('inf') else repr(v)
    return str(int(v))
for name, info in header.items():
    if name == '__metadata__':
        for k, v in info.items():
            print('M', k.encode().hex(), v.encode().hex())
        continue
    b, e = info['data_offsets']
    if info['dtype'] in ('BF16', 'F16'):  # numpy has no bfloat16: torch reads the bits (f16's alike)
        half = torch.bfloat16 if info['dtype'] == 'BF16' else torch.float16
        t = torch.frombuffer(bytearray(data[b:e]), dtype=half).reshape(info['shape']).float()
    else:
        arr = np.frombuffer(data[b:e], dtype=np_types[info['dtype']]).reshape(info['shape'])
        t = torch.from_numpy(arr.copy())
        if e > b:
            t2 = torch.frombuffer(bytearray(data[b:e]), dtype=t.dtype).reshape(info['shape'])
            assert torch.equal(t, t2) or torch.isnan(t).any()
    vals = [fmt(v) for v in t.flatten().tolist()]
    print('T', name.encode().hex(), info['dtype'], ','.join(map(str, info['shape'])) or '-',
          ','.join(vals) or '-')
]==]

local PY_WRITE = [==[
import json, struct, sys
import torch
ts = {
    'f32': torch.tensor([[1.5, -2.0, 0.1], [3.4e38, 1e-45, float('inf')]], dtype=torch.float32),
    'f64': torch.tensor([3.141592653589793, -0.0, 1e-310, 2.0 ** 60], dtype=torch.float64),
    'i64': torch.tensor([9223372036854775807, -9223372036854775808, 9007199254740993], dtype=torch.int64),
    'u8': torch.arange(250, 256, dtype=torch.uint8).reshape(2, 3),
    'bool': torch.tensor([True, False, True]),
    'f16': torch.tensor([1.0, -2.5, 65504.0, 6e-8, 0.1], dtype=torch.float16),
    'bf16': torch.tensor([1.0, -3.0, 1e38, 0.1], dtype=torch.bfloat16),
    'i32': torch.tensor([[2147483647, -2147483648], [0, -5]], dtype=torch.int32),
    'scalar': torch.tensor(2.75, dtype=torch.float64),
    'empty': torch.zeros(0, 5),
    'noncontig': torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),
    'caf\u00e9 \U0001F600 "q" \\': torch.tensor([7], dtype=torch.int64),
}
names = {torch.float32: 'F32', torch.float64: 'F64', torch.int64: 'I64', torch.uint8: 'U8',
         torch.bool: 'BOOL', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int32: 'I32'}
header = {'__metadata__': {'format': 'pt', 'note': '\u00fcber \U0001F600'}}
blobs, off = [], 0
for name, t in ts.items():
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        blob = t.view(torch.int16).numpy().tobytes()
    else:
        blob = t.numpy().tobytes()
    header[name] = {'dtype': names[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(blob)]}
    blobs.append(blob)
    off += len(blob)
text = json.dumps(header).encode('utf-8')
text += b' ' * ((8 - len(text) % 8) % 8)
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))
def fmt(v):
    if isinstance(v, float):
        return v.hex() if v == v and abs(v) != float('inf') else repr(v)
    return str(int(v))
for name, t in ts.items():
    want = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    want = want.long() if t.dtype in (torch.int32,) else want
    want = want.to(torch.uint8) if t.dtype == torch.bool else want
    dt = {torch.bfloat16: 'bf16', torch.float16: 'f16'}.get(t.dtype) or \
        {torch.float32: 'f32', torch.float64: 'f64', torch.int64: 'i64', torch.uint8: 'u8'}[want.dtype]
    print('T', name.encode().hex(), dt, ','.join(map(str, t.shape)) or '-',
          ','.join(fmt(v) for v in want.flatten().tolist()) or '-')
for k, v in header['__metadata__'].items():
    print('M', k.encode().hex(), v.encode().hex())
]==]

describe('interop with PyTorch', function()
  local T = use_tempdir()
  local torch_ok = have_torch()
  if not torch_ok then
    print('safetensors_spec: /usr/bin/python3 with torch and numpy not found: interop tests skipped')
  end

  it('python reads what rl.save wrote (json + struct + numpy/torch.frombuffer)', function()
    if not torch_ok then pending('python3/torch not available: interop test skipped') end
    local ts = {
      w = rl.tensor({ { 1.5, -2, 0.1 }, { 1e-45, 3.4e38, -1 / 0 } }, 'f32'):t(),
      d = rl.tensor({ math.pi, -0.0, 1e-310, 2 ^ 60 }, 'f64'),
      i = rl.arange(-3, 3):view(2, 3),
      b = rl.tensor({ 0, 128, 255 }, 'u8'),
      s = rl.tensor(0.25, 'f64'),
      e = rl.zeros(0, 2),
      h = rl.tensor({ { 1, -3, 0.1 }, { 1e38, -1 / 0, 2 ^ -133 } }):bf16(),
      g = rl.tensor({ { 1, -3, 0.1 }, { 65504, -1 / 0, 2 ^ -24 } }):half(),
      ['naïve "x" \\ 😀'] = rl.arange(4):narrow(1, 2, 2),
    }
    local path = T.dir .. '/from_rl.safetensors'
    rl.save(path, ts, { format = 'pt', who = 'rl ✓' })
    local got, meta = parse_report(run_python(T.dir, PY_READ, sh_quote(path)))
    local names = {}
    for name, x in pairs(ts) do
      names[#names + 1] = name
      local g = assert(got[name], 'python did not see ' .. name)
      assert.are.equal(({ f32 = 'F32', f64 = 'F64', i64 = 'I64', u8 = 'U8', bf16 = 'BF16', f16 = 'F16' })[x.dtype], g.dtype)
      assert.are.same(x.shape, g.shape)
      assert.is_true(exact(flat(x:contiguous():tolist()), g.values), 'values of ' .. name)
    end
    local count = 0
    for _ in pairs(got) do count = count + 1 end
    assert.are.equal(#names, count)
    assert.are.same({ format = 'pt', who = 'rl ✓' }, meta)
  end)

  it('rl.load reads what a python script wrote, every dtype, exact values', function()
    if not torch_ok then pending('python3/torch not available: interop test skipped') end
    local path = T.dir .. '/from_py.safetensors'
    local want, want_meta = parse_report(run_python(T.dir, PY_WRITE, sh_quote(path)))
    local t, meta = rl.load(path)
    local count = 0
    for name, w in pairs(want) do
      count = count + 1
      local x = assert(t[name], 'rl did not load ' .. name)
      assert.are.equal(w.dtype, x.dtype, name)
      assert.are.same(w.shape, x.shape, name)
      assert.is_true(exact(w.values, flat(x:tolist())), 'values of ' .. name)
    end
    local have = 0
    for _ in pairs(t) do have = have + 1 end
    assert.are.equal(count, have)
    assert.are.same(want_meta, meta)
    assert.are.equal(math.maxinteger, t.i64:tolist()[1])
    assert.are.equal(9007199254740993, t.i64:tolist()[3])
    assert.are.same({ 1, -2.5, 65504 }, { table.unpack(t.f16:tolist(), 1, 3) })
    assert.are.same({ 1, 0, 1 }, t.bool:tolist())
  end)
end)
