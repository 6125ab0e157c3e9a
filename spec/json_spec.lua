-- json_spec.lua - rl.json.decode, the engine's JSON reader (engine/io/json.c)
-- as Lua sees it: the values configs, metrics and checkpoint metadata
-- depend on, and strict errors naming the byte.  (Round trips with the
-- encoder are in checkpoint_spec.lua.)
local rl = require 'rl'
local json = rl.json

local function decode_error(s)
  local ok, msg = pcall(json.decode, s)
  assert.is_false(ok, 'decoded: ' .. s)
  return msg
end

describe('rl.json.decode', function()
  it('keeps integers as integers and numbers with a fraction or exponent as floats', function()
    assert.are.equal('integer', math.type(json.decode('3')))
    assert.are.equal('integer', math.type(json.decode('-0')))
    assert.are.equal(math.mininteger, json.decode('-9223372036854775808'))
    for _, s in ipairs { '3.0', '1e2', '-2.5E-3', '0.1' } do
      assert.are.equal('float', math.type(json.decode(s)), s)
      assert.are.equal(tonumber(s), json.decode(s), s)
    end
    -- beyond int64, a float, as Lua's own tonumber reads it
    assert.are.equal(tonumber('99999999999999999999'), json.decode('99999999999999999999'))
    assert.are.equal('float', math.type(json.decode('99999999999999999999')))
  end)

  it('reads any value at the top, and empty objects and arrays as empty tables', function()
    assert.are.equal('x', json.decode(' "x" '))
    assert.is_true(json.decode('true'))
    assert.is_false(json.decode('false'))
    assert.is_nil(json.decode('null'))
    assert.are.same({}, json.decode('{}'))
    assert.are.same({}, json.decode('[ ]'))
    assert.are.same({ a = { {}, { b = {} } } }, json.decode('{"a":[[],{"b":{}}]}'))
  end)

  it('reads null as nil: a null member is absent, a null item is skipped', function()
    assert.are.same({ b = 1 }, json.decode('{"a":null,"b":1}'))
    assert.are.same({ 1, 2 }, json.decode('[1,null,2]'))
  end)

  it('decodes every escape, surrogate pairs and NUL', function()
    assert.are.equal('é😀', json.decode('"\\u00e9\\ud83d\\ude00"'))
    assert.are.equal('"\\/\b\f\n\r\t', json.decode('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
    assert.are.equal('a\0b', json.decode('"a\\u0000b"'))
    assert.are.same({ ['k\0'] = 'v' }, json.decode(json.encode { ['k\0'] = 'v' }))
  end)

  it('reads back what the encoder writes', function()
    local v = { name = 'run', lr = 0.1, epochs = 10, milestones = { 5, 8 }, nested = { on = false },
      text = 'tab\tquote" é' }
    assert.are.same(v, json.decode(json.encode(v)))
    assert.are.same(v, json.decode(json.encode(v, { indent = true })))
  end)

  it('names what is wrong and the byte, counted from 1', function()
    local cases = {
      { '{"a":}', 'unexpected character at byte 6' },
      { '[1,2', "expected ',' or ']' at byte 5" },
      { '[1,', 'unexpected end of input at byte 4' },
      { '{"a" 1}', "expected ':' after a key at byte 6" },
      { '"\\x"', 'invalid escape at byte 3' },
      { '[1] x', 'unexpected data after the JSON array at byte 5' },
      { '[1,]', 'trailing comma at byte 4' },
      { '01', 'leading zero in a number at byte 2' },
      { '{"a":1,"a":2}', 'duplicate key "a" at byte 12' },
      { '"\\udc00"', 'unpaired low surrogate' },
      { '"\255"', 'invalid UTF-8 in a string at byte 2' },
      { '', 'unexpected end of input at byte 1' },
      { string.rep('[', 100), 'nesting too deep' },
    }
    for _, c in ipairs(cases) do
      local msg = decode_error(c[1])
      assert.truthy(msg:find('json.decode: ' .. c[2], 1, true), msg)
    end
    assert.truthy(decode_error(42):find('expected a string', 1, true))
  end)

  it('read gives nil and a message naming the file when it cannot decode', function()
    local path = os.tmpname()
    local f = assert(io.open(path, 'wb'))
    f:write('{"a":')
    f:close()
    local v, msg = json.read(path)
    os.remove(path)
    assert.is_nil(v)
    assert.truthy(msg:find(path .. ': json.decode: unexpected end of input', 1, true), msg)
  end)
end)
