--- rl.json: JSON for configs, metrics and checkpoint metadata.
--
-- encode(v, {indent = true}) writes tables with consecutive integer keys
-- 1..n as arrays and others as objects with sorted keys (deterministic
-- files); integers stay integers, floats keep 17 significant digits, nan and
-- inf (not JSON) are written as null.  decode(s) is strict and names the
-- byte offset of an error.
local json = {}

local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format('\\u%04x', c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = #t
  for k in pairs(t) do
    if math.type(k) ~= 'integer' or k < 1 or k > n then return false end
  end
  return true
end

local function number(v)
  if math.type(v) == 'integer' then return tostring(v) end
  if v ~= v or v == math.huge or v == -math.huge then return 'null' end
  local s = string.format('%.17g', v)
  if tonumber(string.format('%.15g', v)) == v then s = string.format('%.15g', v) end
  if not s:find('[%.eEn]') then s = s .. '.0' end
  return s
end

local function enc(v, indent, depth, seen, out)
  local t = type(v)
  if t == 'nil' then
    out[#out + 1] = 'null'
  elseif t == 'boolean' then
    out[#out + 1] = tostring(v)
  elseif t == 'number' then
    out[#out + 1] = number(v)
  elseif t == 'string' then
    out[#out + 1] = quote(v)
  elseif t == 'table' then
    if seen[v] then error('json.encode: a table contains itself', 0) end
    seen[v] = true
    local nl = indent and '\n' .. string.rep('  ', depth + 1) or ''
    local close = indent and '\n' .. string.rep('  ', depth) or ''
    if is_array(v) and (#v > 0 or next(v) == nil) then
      out[#out + 1] = '['
      for i = 1, #v do
        out[#out + 1] = (i > 1 and ',' or '') .. nl
        enc(v[i], indent, depth + 1, seen, out)
      end
      out[#out + 1] = (#v > 0 and close or '') .. ']'
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= 'string' and type(k) ~= 'number' then
          error('json.encode: object keys must be strings or numbers, got ' .. type(k), 0)
        end
        keys[#keys + 1] = k
      end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      out[#out + 1] = '{'
      for i, k in ipairs(keys) do
        out[#out + 1] = (i > 1 and ',' or '') .. nl .. quote(tostring(k)) .. (indent and ': ' or ':')
        enc(v[k], indent, depth + 1, seen, out)
      end
      out[#out + 1] = (#keys > 0 and close or '') .. '}'
    end
    seen[v] = nil
  else
    error('json.encode: cannot encode a ' .. t, 0)
  end
end

function json.encode(v, o)
  local out = {}
  enc(v, o and o.indent, 0, {}, out)
  return table.concat(out)
end

-- decoding ------------------------------------------------------------------

local function fail(s, i, what)
  error(string.format('json.decode: %s at byte %d', what, i), 0)
end

local function skip(s, i)
  return s:find('[^ \t\r\n]', i) or #s + 1
end

local decode_value

local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == '' then fail(s, j, 'unterminated string') end
    if c == '"' then return table.concat(out), j + 1 end
    if c == '\\' then
      local e = s:sub(j + 1, j + 1)
      local simple = { b = '\b', f = '\f', n = '\n', r = '\r', t = '\t', ['"'] = '"', ['\\'] = '\\', ['/'] = '/' }
      if simple[e] then
        out[#out + 1] = simple[e]
        j = j + 2
      elseif e == 'u' then
        local hex = s:sub(j + 2, j + 5)
        if not hex:match('^%x%x%x%x$') then fail(s, j, 'bad \\u escape') end
        local cp = tonumber(hex, 16)
        j = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = s:match('^\\u(%x%x%x%x)', j)
          if not lo then fail(s, j, 'unpaired surrogate') end
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(lo, 16) - 0xDC00)
          j = j + 6
        end
        out[#out + 1] = utf8.char(cp)
      else
        fail(s, j, 'bad escape')
      end
    elseif c:byte() < 32 then
      fail(s, j, 'control character in a string')
    else
      local k = s:find('["\\%c]', j) or #s + 1
      out[#out + 1] = s:sub(j, k - 1)
      j = k
    end
  end
end

function decode_value(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == '{' then
    local obj = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == '}' then return obj, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then fail(s, i, 'expected a key') end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ':' then fail(s, i, "expected ':'") end
      obj[k], i = decode_value(s, i + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == '}' then return obj, i + 1 end
      if d ~= ',' then fail(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  elseif c == '[' then
    local arr = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == ']' then return arr, i + 1 end
    while true do
      arr[#arr + 1], i = decode_value(s, i)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == ']' then return arr, i + 1 end
      if d ~= ',' then fail(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif s:find('^true', i) then
    return true, i + 4
  elseif s:find('^false', i) then
    return false, i + 5
  elseif s:find('^null', i) then
    return nil, i + 4
  else
    local num = s:match('^-?%d+%.?%d*[eE]?[-+]?%d*', i)
    if not num or num == '' or num == '-' then fail(s, i, 'unexpected character') end
    local v = math.tointeger(tonumber(num)) or tonumber(num)
    if num:find('[%.eE]') then v = tonumber(num) + 0.0 end
    if v == nil then fail(s, i, 'bad number') end
    return v, i + #num
  end
end

function json.decode(s)
  if type(s) ~= 'string' then error('json.decode: expected a string', 2) end
  local v, i = decode_value(s, 1)
  i = skip(s, i)
  if i <= #s then fail(s, i, 'trailing characters') end
  return v
end

--- Read and decode a file; nil, message when it cannot be read.
function json.read(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local s = f:read('a')
  f:close()
  local ok, v = pcall(json.decode, s)
  if not ok then return nil, path .. ': ' .. v end
  return v
end

--- Write atomically (temporary file, then rename).
function json.write(path, v)
  local tmp = path .. '.tmp'
  local f = assert(io.open(tmp, 'wb'))
  f:write(json.encode(v, { indent = true }), '\n')
  assert(f:close())
  assert(os.rename(tmp, path))
end

return json
