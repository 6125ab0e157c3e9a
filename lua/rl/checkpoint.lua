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

local checkpoint = {}
local TAG = '\1tensor:' -- marks a tensor reference inside the JSON

-- Replace tensors by references, collecting them into `tensors`.
local function flatten(v, path, tensors)
  if rl.is_tensor(v) then
    tensors[path] = v
    return TAG .. path
  end
  if type(v) ~= 'table' then return v end
  local out = {}
  for k, x in pairs(v) do
    local key = type(k) == 'number' and ('#' .. tostring(k)) or tostring(k)
    out[key] = flatten(x, path .. '.' .. key, tensors)
  end
  return out
end

local function unflatten(v, tensors, path)
  if type(v) == 'string' and v:sub(1, #TAG) == TAG then
    local name = v:sub(#TAG + 1)
    local t = tensors[name]
    if not t then error(string.format('checkpoint: %s refers to a missing tensor %s', path, name), 0) end
    return t
  end
  if type(v) ~= 'table' then return v end
  local out = {}
  for k, x in pairs(v) do
    local key = k:match('^#(-?%d+)$')
    out[key and math.tointeger(tonumber(key)) or k] = unflatten(x, tensors, path .. '.' .. k)
  end
  return out
end

--- save(path, {model = m, optimizer = opt, scheduler = s, epoch = n, extra = t})
function checkpoint.save(path, st)
  local tensors, meta = {}, {}
  if st.model then meta.model = flatten((st.model:state_dict()), 'model', tensors) end
  if st.optimizer then meta.optimizer = flatten(st.optimizer:state_dict(), 'optimizer', tensors) end
  if st.scheduler then meta.scheduler = flatten(st.scheduler:state_dict(), 'scheduler', tensors) end
  meta.epoch = st.epoch
  meta.rng = st.rng or rl.get_rng_state()
  meta.extra = st.extra and flatten(st.extra, 'extra', tensors) or nil
  rl.save(path, tensors, { ['rllua.checkpoint'] = json.encode(meta) })
end

--- load(path, {model = m, optimizer = opt, scheduler = s}) restores what it is
-- given and returns {epoch, rng, extra}.  The default RNG is restored only
-- when opts.restore_rng is true.
function checkpoint.load(path, st)
  st = st or {}
  local tensors, md = rl.load(path)
  local raw = md['rllua.checkpoint']
  if not raw then error(string.format('checkpoint.load: %s is not an rllua checkpoint', path), 2) end
  local meta = unflatten(json.decode(raw), tensors, 'checkpoint')
  if st.model then
    if not meta.model then error('checkpoint.load: the file holds no model', 2) end
    st.model:load_state_dict(meta.model)
  end
  if st.optimizer and meta.optimizer then st.optimizer:load_state_dict(meta.optimizer) end
  if st.scheduler and meta.scheduler then st.scheduler:load_state_dict(meta.scheduler) end
  if st.restore_rng and meta.rng then rl.set_rng_state(meta.rng) end
  return { epoch = meta.epoch, rng = meta.rng, extra = meta.extra }
end

return checkpoint
