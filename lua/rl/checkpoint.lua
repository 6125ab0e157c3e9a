--- rl.checkpoint: everything a training run needs to resume, in one
-- safetensors file: the model's state_dict, the optimiser's and scheduler's
-- state, the epoch, the RNG state and any extra table.
--
-- Tensors anywhere in those tables are stored as tensors (named by their
-- path: "model.conv1.weight", "optimizer.state.3.momentum_buffer"); the rest
-- goes, as JSON, into the file's metadata under "rllua.checkpoint".  The
-- file is written atomically by rl.save, so a run killed while saving keeps
-- its previous checkpoint.
local rl = require 'rl.base'
local json = require 'rl.json'
local options = require 'rl.options'

local checkpoint = {}
local TAG = '\1tensor:' -- marks a tensor reference inside the JSON
local NUM = '\1number:' -- a number JSON cannot hold: inf, -inf, nan
local NONFINITE = { [NUM .. 'inf'] = math.huge, [NUM .. '-inf'] = -math.huge, [NUM .. 'nan'] = 0 / 0 }

-- Replace tensors by references, collecting them into `tensors`, and the
-- numbers JSON has no word for by tags (a best loss of math.huge came
-- back nil).  Keys are strings or integers ("#n"); another key, or a string
-- key that reads as an integer's, would come back as something else.
local function flatten(v, path, tensors)
  if rl.is_tensor(v) then
    tensors[path] = v
    return TAG .. path
  end
  if type(v) == 'number' and v ~= v then return NUM .. 'nan' end
  if v == math.huge or v == -math.huge then return NUM .. (v > 0 and 'inf' or '-inf') end
  if type(v) ~= 'table' then
    if type(v) ~= 'string' and type(v) ~= 'number' and type(v) ~= 'boolean' then
      error(string.format('checkpoint.save: %s is a %s; a checkpoint holds tensors, numbers, strings, booleans ' ..
        'and tables of them', path, type(v)), 0)
    end
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    local key
    if math.type(k) == 'integer' then
      key = '#' .. k
    elseif type(k) == 'string' and not k:match('^#%-?%d+$') then
      key = k
    else
      error(string.format('checkpoint.save: %s has the key %s; keys are strings or integers (and "#n" is how ' ..
        'an integer key is written)', path, type(k) == 'string' and string.format('%q', k) or tostring(k)), 0)
    end
    out[key] = flatten(x, path .. '.' .. key, tensors)
  end
  return out
end

-- The error of a malformed file: which file, and what is wrong with it;
-- who (default 'load') names the function that read it.
local function bad_in(who, path, fmt, ...)
  error(string.format('checkpoint.%s: %s: ' .. fmt, who, path, ...), 0)
end
local function bad(path, fmt, ...) bad_in('load', path, fmt, ...) end

-- fn(...) (rl.save or rl.load), its refusal named as checkpoint.<who>'s:
-- "checkpoint.save: '/x/a.ckpt': cannot create the temporary file ..."
-- (it read "checkpoint.lua:149: save: ...").
local function file_op(who, fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  local msg = options.refusal(res[2])
  if not msg then error(res[2], 0) end
  error(string.format('checkpoint.%s: %s', who, (msg:gsub('^%a+: ', ''))), 0)
end

-- A value as a message names it: "a JSON array", "the integer 3".
local function describe(v)
  if rl.is_tensor(v) then return 'a tensor' end
  if type(v) == 'table' then
    local k = next(v)
    return k == nil and 'an empty table' or type(k) == 'string' and 'a JSON object' or 'a JSON array'
  end
  if type(v) == 'string' then return string.format('the string %q', #v > 40 and v:sub(1, 40) .. '...' or v) end
  local kind = math.type(v) == 'integer' and 'integer' or type(v)
  return string.format('the %s %s', kind, tostring(v))
end

-- Undo flatten on the decoded metadata of `file`.  flatten writes only JSON
-- objects (numeric keys become "#n"), so an array anywhere means the file
-- was not written by rl.checkpoint.save.
local function unflatten(v, tensors, where, file)
  if type(v) == 'string' and v:sub(1, #TAG) == TAG then
    local name = v:sub(#TAG + 1)
    local t = tensors[name]
    if not t then bad(file, '%s refers to a tensor "%s" that the file does not hold', where, name) end
    return t
  end
  if type(v) == 'string' and NONFINITE[v] then return NONFINITE[v] end
  if type(v) ~= 'table' then return v end
  local out = {}
  for k, x in pairs(v) do
    if type(k) ~= 'string' then
      bad(file, '%s is a JSON array in the metadata; a checkpoint has an object there', where)
    end
    local key = k:match('^#(-?%d+)$')
    out[key and math.tointeger(tonumber(key)) or k] = unflatten(x, tensors, where .. '.' .. k, file)
  end
  return out
end

-- The fields of a checkpoint's metadata and what each must be; a wrong
-- one is refused here, by name, rather than failing somewhere inside a
-- load_state_dict.
local function check_fields(meta, file, who)
  who = who or 'load'
  local function is_int(v) return math.type(v) == 'integer' end
  if meta.epoch ~= nil and not (is_int(meta.epoch) and meta.epoch >= 0) then
    bad_in(who, file, 'the epoch is %s; expected an integer >= 0', describe(meta.epoch))
  end
  local rng = meta.rng
  if rng ~= nil and not (type(rng) == 'table' and is_int(rng.seed) and is_int(rng.offset)) then
    bad_in(who, file, 'the RNG state is %s; expected {seed = integer, offset = integer}', describe(rng))
  end
  for _, field in ipairs { 'model', 'optimizer', 'scheduler' } do
    local v = meta[field]
    if v ~= nil and (type(v) ~= 'table' or rl.is_tensor(v)) then
      bad_in(who, file, 'the %s state is %s; expected an object', field, describe(v))
    end
  end
  for name, t in pairs(meta.model or {}) do
    if not rl.is_tensor(t) then bad_in(who, file, 'the model entry "%s" is %s; expected a tensor', name, describe(t)) end
  end
end

-- Runs a load_state_dict; its error comes back naming the file and the part.
local function restore(file, part, obj, sd)
  local ok, err = pcall(obj.load_state_dict, obj, sd)
  if not ok then
    bad(file, 'cannot restore the %s: %s', part, (tostring(err):gsub('^[^:\n]+:%d+: ', '')))
  end
end

-- What save and load take; another key is refused by name.
local SAVE_KEYS = { model = true, optimizer = true, scheduler = true, epoch = true, extra = true, rng = true }
local LOAD_KEYS = { model = true, optimizer = true, scheduler = true, restore_rng = true }

--- save(path, {model = m, optimizer = opt, scheduler = s, epoch = n, extra = t})
checkpoint.save = options.public(function(path, st)
  if type(st) ~= 'table' then
    error(string.format('checkpoint.save: the second argument must be a table {model = ..., epoch = ...}, got %s',
      options.what(st)), 2)
  end
  options.known('checkpoint.save', st, SAVE_KEYS, 3)
  -- what load would refuse is refused here, before the file is written
  if st.epoch ~= nil and not (math.type(st.epoch) == 'integer' and st.epoch >= 0) then
    error(string.format('checkpoint.save: epoch must be an integer >= 0, got %s', options.what(st.epoch)), 2)
  end
  local tensors, meta = {}, {}
  if st.model then meta.model = flatten((st.model:state_dict()), 'model', tensors) end
  if st.optimizer then meta.optimizer = flatten(st.optimizer:state_dict(), 'optimizer', tensors) end
  if st.scheduler then meta.scheduler = flatten(st.scheduler:state_dict(), 'scheduler', tensors) end
  meta.epoch = st.epoch
  meta.rng = st.rng or rl.get_rng_state()
  meta.extra = st.extra and flatten(st.extra, 'extra', tensors) or nil
  file_op('save', rl.save, path, tensors, { ['rllua.checkpoint'] = json.encode(meta) })
end)

-- The decoded "rllua.checkpoint" metadata of the file at path (md: its
-- metadata table), before unflatten; who names the caller in the errors.
local function decode(path, md, who)
  local raw = md['rllua.checkpoint']
  if not raw then error(string.format('checkpoint.%s: %s is not an rllua checkpoint', who, path), 3) end
  local ok, decoded = pcall(json.decode, raw)
  if not ok then bad_in(who, path, 'the metadata "rllua.checkpoint" is not JSON (%s)', decoded) end
  if type(decoded) ~= 'table' or (next(decoded) ~= nil and type(next(decoded)) ~= 'string') then
    bad_in(who, path, 'the metadata "rllua.checkpoint" is %s; expected a JSON object', describe(decoded))
  end
  return decoded
end

--- load(path, {model = m, optimizer = opt, scheduler = s}) restores what it is
-- given and returns {epoch, rng, extra}.  The default RNG is restored only
-- when opts.restore_rng is true.  A file whose metadata is malformed, or
-- does not fit what it is loaded into, is refused with an error that names
-- the file and what is wrong.
checkpoint.load = options.public(function(path, st)
  st = st or {}
  options.known('checkpoint.load', st, LOAD_KEYS, 3)
  local tensors, md = file_op('load', rl.load, path)
  local meta = unflatten(decode(path, md, 'load'), tensors, 'checkpoint', path)
  check_fields(meta, path)
  if st.model then
    if not meta.model then bad(path, 'the file holds no model') end
    restore(path, 'model', st.model, meta.model)
  end
  -- an optimiser or schedule asked for and not in the file would go on
  -- fresh, silently
  for _, part in ipairs { 'optimizer', 'scheduler' } do
    if st[part] then
      if not meta[part] then bad(path, 'the file holds no %s state', part) end
      restore(path, part, st[part], meta[part])
    end
  end
  if st.restore_rng and meta.rng then rl.set_rng_state(meta.rng) end
  return { epoch = meta.epoch, rng = meta.rng, extra = meta.extra }
end)

--- epoch(path) -> the epoch the checkpoint at path holds (nil when it
-- holds none), from the file's header alone: no tensor is read.  A file
-- that is not a checkpoint, or holds a malformed epoch, is refused as load
-- refuses it.
checkpoint.epoch = options.public(function(path)
  local _, md = file_op('epoch', rl.load, path, { tensors = false })
  local meta = { epoch = decode(path, md, 'epoch').epoch }
  check_fields(meta, path, 'epoch')
  return meta.epoch
end)

return checkpoint
