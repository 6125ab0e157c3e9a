--- rl.json: JSON for configs, metrics and checkpoint metadata.
--
-- encode(v, {indent = true}) writes tables with consecutive integer keys
-- 1..n as arrays and others as objects with sorted keys (deterministic
-- files); integers stay integers, floats keep 17 significant digits, nan and
-- inf (not JSON) are written as null.  decode(s) is strict and names the
-- byte offset of an error.
local core = require 'rl.core'

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

-- The one JSON reader is the engine's strict parser (engine/io/json.c), the
-- same that reads safetensors headers.  Integers stay integers and numbers
-- with a fraction or exponent are floats; null is nil (a null member is
-- absent, a null array item is skipped); errors read
-- "json.decode: <what> at byte <n>".
function json.decode(s)
  if type(s) ~= 'string' then error('json.decode: expected a string', 2) end
  return core._json_decode(s)
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

--- Write atomically (temporary file, then rename; see rl.fs.write).
function json.write(path, v)
  require('rl.fs').write(path, json.encode(v, { indent = true }) .. '\n')
end

return json
