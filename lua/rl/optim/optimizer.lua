--- rl.optim.optimizer: what every optimiser shares: the option checks, the
-- parameter groups, step/zero_grad and state_dict/load_state_dict (the
-- methods are listed in init.lua).  An algorithm file (sgd.lua, adam.lua)
-- gives only its option rows and its update to base.define, below.
--
-- Errors are raised with level 0 inside, and re-raised at the caller's line
-- by `public`.
local rl = require 'rl.base'

local base = {}

---------------------------------------------------------------------------
-- words for error messages
---------------------------------------------------------------------------

local options = require 'rl.options'
local shape_of, fmt_value, what = options.shape_of, options.full, options.what

-- A number as a person would type it (6 digits); anything else in full.
local function short(v)
  return type(v) == 'number' and string.format('%.6g', v) or fmt_value(v)
end

-- fail(msg, ...) raises "<who>: <where><msg formatted>".
local function failer(who, where)
  return function(msg, ...) error(string.format('%s: %s' .. msg, who, where, ...), 0) end
end

-- fn, with its errors (raised with level 0) re-raised at the caller's line.
local function public(fn)
  return function(...)
    local res = table.pack(pcall(fn, ...))
    if not res[1] then error(res[2], 2) end
    return table.unpack(res, 2, res.n)
  end
end

-- A deep copy of plain tables; tensors and other values are shared.
local function copy_value(v)
  if type(v) ~= 'table' or rl.is_tensor(v) then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy_value(x) end
  return c
end

base.fmt_value, base.short, base.what, base.public, base.copy_value =
    fmt_value, short, what, public, copy_value

-- Names from other libraries that no edit distance leads to (beta1 or
-- epsilon need no entry: they are near 'betas' and contain 'eps').
local ALIASES = {
  learning_rate = 'lr', learningrate = 'lr', rate = 'lr', step_size = 'lr',
  wd = 'weight_decay', l2 = 'weight_decay', mu = 'momentum', nesterov_momentum = 'nesterov',
  steps = 'milestones', factor = 'gamma', decay_rate = 'gamma',
}

--- base.reject_unknown(who, where, t, valid): rl.options' check, with the
-- optimisers' aliases.
function base.reject_unknown(who, where, t, valid)
  options.reject_unknown(who, where, t, valid, ALIASES)
end
local reject_unknown = base.reject_unknown

---------------------------------------------------------------------------
-- option values: kinds and ranges
---------------------------------------------------------------------------

-- kind -> {test, what the message asks for}
local KINDS = {
  number = { function(v) return type(v) == 'number' end, 'a number' },
  boolean = { function(v) return type(v) == 'boolean' end, 'true or false' },
  string = { function(v) return type(v) == 'string' end, 'a string' },
  pair = { function(v)
    return type(v) == 'table' and not rl.is_tensor(v) and #v == 2 and type(v[1]) == 'number'
        and type(v[2]) == 'number'
  end, 'a list of two numbers, e.g. {0.9, 0.999}' },
}

-- Keys a parameter group may carry besides its options (set by schedules,
-- or a label).
local GROUP_EXTRAS = { initial_lr = 'number', name = 'string' }

--- base.nonneg(label): a range for option rows: the value must be >= 0 (so
-- not NaN); label names it in the message, as PyTorch's.
function base.nonneg(label)
  return function(fail, k, v)
    if not (v >= 0) then fail('invalid %s %s (%s must be >= 0)', label, short(v), k) end
  end
end

--- base.betas: a range for option rows: both numbers of the pair in [0, 1).
function base.betas(fail, k, b)
  for i = 1, 2 do
    if not (b[i] >= 0 and b[i] < 1) then
      fail('invalid beta parameter at index %d: %s (%s[%d] must be in [0, 1))', i, short(b[i]),
        k, i)
    end
  end
end

local function check_kind(fail, k, kind, v)
  if not KINDS[kind][1](v) then
    fail('%s must be %s, got %s', k, KINDS[kind][2],
      type(v) == 'table' and not rl.is_tensor(v) and fmt_value(v) or what(v))
  end
end

-- Validate a filled-in group: presence and kind of every option first, then
-- the ranges and the class's own rule.
local function check_values(spec, where, group)
  local fail = failer(spec.name, where)
  for _, o in ipairs(spec.options) do
    local k = o[1]
    if group[k] == nil then
      fail('the option %s is required (e.g. %s(params, {%s = 0.01}))', k, spec.name, k)
    end
    check_kind(fail, k, o[2], group[k])
  end
  for k, kind in pairs(GROUP_EXTRAS) do
    if group[k] ~= nil then check_kind(fail, k, kind, group[k]) end
  end
  for _, o in ipairs(spec.options) do
    if o[4] then o[4](fail, o[1], group[o[1]]) end
  end
  if spec.check then spec.check(group, fail) end
end

---------------------------------------------------------------------------
-- parameters and groups
---------------------------------------------------------------------------

local Optimizer = {}
Optimizer.__index = Optimizer
base.Optimizer = Optimizer

local function check_param(fail, p, k)
  if not rl.is_tensor(p) then fail('parameter %d is %s, expected a tensor', k, what(p)) end
  if not p.requires_grad then
    fail('parameter %d (size %s, %s) does not require grad: call x:requires_grad_() on it, ' ..
      'or leave it out', k, shape_of(p), p.dtype)
  end
  if not p.is_leaf then
    fail('parameter %d (size %s) is not a leaf tensor (it was computed from other tensors, so ' ..
      'it never gets a .grad); optimise the tensors it came from, or use ' ..
      'x:detach():requires_grad_()', k, shape_of(p))
  end
end

-- A group's options: g's own (copied) over the optimiser's defaults, checked;
-- params is left empty for the caller.
local function fill_options(self, g, where)
  local group = { params = {} }
  for k, v in pairs(g) do
    if k ~= 'params' then group[k] = copy_value(v) end
  end
  for _, o in ipairs(self.spec.options) do
    if group[o[1]] == nil then group[o[1]] = copy_value(self.defaults[o[1]]) end
  end
  check_values(self.spec, where, group)
  return group
end

-- Check one group given by the user; a fresh table is returned.
local function make_group(self, g, gi)
  local where = self._explicit_groups and string.format('parameter group %d: ', gi) or ''
  local fail = failer(self.spec.name, where)
  reject_unknown(self.spec.name, where, g, self.spec.group_keys)
  local params = rl.is_tensor(g.params) and { g.params } or g.params
  if type(params) ~= 'table' then fail('params must be a list of tensors, got %s', what(params)) end
  if #params == 0 then fail('the parameter list is empty') end
  for k = 1, #params do check_param(fail, params[k], k) end
  local group = fill_options(self, g, where)
  for k = 1, #params do group.params[k] = params[k] end
  return group
end

-- A parameter listed twice (the same tensor, or an identical view of its
-- memory) would be updated twice per step.
local function check_duplicates(self, extra)
  local fail, seen, i = failer(self.spec.name, ''), {}, 0
  local function visit(group, gi)
    for _, p in ipairs(group.params) do
      i = i + 1
      if p:numel() > 0 then
        local key = table.concat({ tostring(p:data_ptr()), p.dtype,
          table.concat(p:size(), ','), '/', table.concat(p:stride(), ',') }, ',')
        if seen[key] then
          fail('parameter %d (in group %d) is parameter %d again (the same tensor, or a view ' ..
            'of the same memory); list each parameter once', i, gi, seen[key])
        end
        seen[key] = i
      end
    end
  end
  for gi, group in ipairs(self.param_groups) do visit(group, gi) end
  if extra then visit(extra, #self.param_groups + 1) end
end

-- params as the user gave them -> the list of groups (not yet checked).
local function split_groups(self, params)
  local fail = failer(self.spec.name, '')
  if type(params) ~= 'table' or rl.is_tensor(params) then
    fail('params must be a list of tensors, or a list of parameter groups {params = {...}, ' ..
      'lr = ...}; got %s', rl.is_tensor(params) and 'a single tensor (wrap it in a list: {x})'
      or what(params))
  end
  if #params == 0 then fail('got an empty parameter list') end
  if rl.is_tensor(params[1]) then
    for k = 1, #params do check_param(fail, params[k], k) end
    return { { params = params } }
  end
  if type(params[1]) ~= 'table' then check_param(fail, params[1], 1) end -- raises
  self._explicit_groups = true
  for gi = 1, #params do -- not ipairs: a hole is an error too
    local g = params[gi]
    if type(g) ~= 'table' or rl.is_tensor(g) or g.params == nil then
      fail('element %d of params is %s; when the first element is a parameter group, every ' ..
        'element must be one ({params = {...}, ...})', gi, what(g))
    end
  end
  return params
end

local function new_optimizer(cls, params, opts)
  local spec = cls.spec
  local fail = failer(spec.name, '')
  if opts == nil then opts = {} end
  if type(opts) ~= 'table' or rl.is_tensor(opts) then
    fail('options must be a table, e.g. %s(params, {lr = 0.01}), got %s', spec.name, what(opts))
  end
  local self = setmetatable({ spec = spec, state = {}, param_groups = {}, defaults = {} }, cls)
  reject_unknown(spec.name, '', opts, spec.names)
  for _, o in ipairs(spec.options) do
    local k, v = o[1], opts[o[1]]
    if v == nil then v = o[3] end
    if v ~= nil then
      check_kind(fail, k, o[2], v)
      self.defaults[k] = copy_value(v)
    end
  end
  for gi, g in ipairs(split_groups(self, params)) do
    self.param_groups[gi] = make_group(self, g, gi)
  end
  check_duplicates(self)
  return self
end

--- opt:add_param_group({params = {...}, <options>})
function Optimizer:add_param_group(g)
  if type(g) ~= 'table' or rl.is_tensor(g) then
    error(string.format('%s: add_param_group: expected a table {params = {...}, ...}, got %s',
      self.spec.name, what(g)), 2)
  end
  local ok, err = pcall(function()
    self._explicit_groups = true
    local group = make_group(self, g, #self.param_groups + 1)
    check_duplicates(self, group)
    self.param_groups[#self.param_groups + 1] = group
  end)
  if not ok then error(err, 2) end
end

---------------------------------------------------------------------------
-- zero_grad and step
---------------------------------------------------------------------------

--- opt:zero_grad([set_to_none = true]): drop every parameter's grad (nil),
-- or with false fill the existing grads with zeros.
function Optimizer:zero_grad(set_to_none)
  if type(set_to_none) == 'table' then
    reject_unknown(self.spec.name .. ':zero_grad', '', set_to_none, { 'set_to_none' })
    set_to_none = set_to_none.set_to_none
  end
  if set_to_none == nil then set_to_none = true end
  if type(set_to_none) ~= 'boolean' then
    error(string.format('%s: zero_grad: set_to_none must be true or false, got %s',
      self.spec.name, what(set_to_none)), 2)
  end
  rl.no_grad(function()
    for _, group in ipairs(self.param_groups) do
      for _, p in ipairs(group.params) do
        local g = p.grad
        if set_to_none then
          p.grad = nil
        elseif g ~= nil then
          if g.requires_grad then -- zeroing must not be recorded into a graph
            g = g:detach()
            p.grad = g
          end
          g:zero_()
        end
      end
    end
  end)
end

--- opt:step([closure]): one update of every parameter that has a grad.
function Optimizer:step(closure)
  local loss
  if closure ~= nil then
    if type(closure) ~= 'function' then
      error(string.format('%s: step: the closure must be a function, got %s', self.spec.name,
        what(closure)), 2)
    end
    local prev = rl.set_grad_enabled(true)
    local res = table.pack(pcall(closure))
    rl.set_grad_enabled(prev)
    if not res[1] then error(res[2], 0) end
    loss = res[2]
  end
  local spec, i = self.spec, 0
  rl.no_grad(function()
    for gi, group in ipairs(self.param_groups) do
      -- options may have been changed through param_groups since the last step
      check_values(spec, #self.param_groups > 1 and string.format('parameter group %d: ', gi)
        or '', group)
      for _, p in ipairs(group.params) do
        i = i + 1
        local g = p.grad
        if g ~= nil then
          if g.dtype ~= p.dtype then
            failer(spec.name, '')('step: parameter %d is %s but its grad is %s', i, p.dtype,
              g.dtype)
          end
          self.state[p] = self.state[p] or {}
          spec.update(p, g, self.state[p], group)
        end
      end
    end
  end)
  return loss
end

---------------------------------------------------------------------------
-- state_dict and load_state_dict
---------------------------------------------------------------------------

--- opt:state_dict() -> {state = {[i] = {...}}, param_groups = {{..., params = {i...}}}}
function Optimizer:state_dict()
  local sd, i = { state = {}, param_groups = {} }, 0
  rl.no_grad(function()
    for gi, group in ipairs(self.param_groups) do
      local g = copy_value(group)
      for k, p in ipairs(group.params) do
        i = i + 1
        g.params[k] = i
        local st = self.state[p]
        if st ~= nil and next(st) ~= nil then
          local s = {}
          for name, v in pairs(st) do s[name] = rl.is_tensor(v) and v:clone() or copy_value(v) end
          sd.state[i] = s
        end
      end
      sd.param_groups[gi] = g
    end
  end)
  return sd
end

local load_fail = failer('load_state_dict', '')

-- The saved groups -> the new groups (over this optimiser's parameters), and
-- for each saved parameter id its parameter and its position.
local function load_groups(self, saved_groups)
  local spec, n = self.spec, #self.param_groups
  if #saved_groups ~= n then
    load_fail('the saved state has %d parameter group%s but this optimiser has %d',
      #saved_groups, #saved_groups == 1 and '' or 's', n)
  end
  local known = {}
  for _, k in ipairs(spec.group_keys) do known[k] = true end
  local id_param, id_pos, new_groups, pos = {}, {}, {}, 0
  for gi, sg in ipairs(saved_groups) do
    local params = self.param_groups[gi].params
    if type(sg) ~= 'table' or type(sg.params) ~= 'table' then
      load_fail('saved parameter group %d has no params list', gi)
    end
    if #sg.params ~= #params then
      load_fail('parameter group %d has %d parameter%s but the saved group has %d', gi,
        #params, #params == 1 and '' or 's', #sg.params)
    end
    local keys = {}
    for k in pairs(sg) do keys[#keys + 1] = tostring(k) end
    table.sort(keys) -- the same key named whatever the table order
    for _, k in ipairs(keys) do
      if not known[k] then
        load_fail("saved parameter group %d has the option '%s', which %s does not have " ..
          '(was it saved from another optimiser?)', gi, k, spec.name)
      end
    end
    local ok, ng = pcall(fill_options, self, sg, string.format('parameter group %d: ', gi))
    if not ok then load_fail('saved %s', ng) end
    for k, id in ipairs(sg.params) do
      pos = pos + 1
      if math.type(id) ~= 'integer' then
        load_fail('saved parameter group %d lists %s as a parameter id (expected an integer)',
          gi, fmt_value(id))
      end
      if id_param[id] then load_fail('parameter id %d is listed twice in the saved groups', id) end
      id_param[id], id_pos[id], ng.params[k] = params[k], pos, params[k]
    end
    new_groups[gi] = ng
  end
  return new_groups, id_param, id_pos
end

-- One saved state value of parameter i (p), checked against its declared kind.
local function load_state_value(spec, p, i, name, v)
  local kind = spec.state[name]
  if kind == nil then
    local names = {}
    for n in pairs(spec.state) do names[#names + 1] = n end
    table.sort(names)
    load_fail("the saved state of parameter %d has '%s', which %s does not use (its state: " ..
      '%s; was it saved from another optimiser?)', i, tostring(name), spec.name,
      table.concat(names, ', '))
  end
  if kind == 'tensor' then
    if not rl.is_tensor(v) then
      load_fail('the saved %s of parameter %d is %s, expected a tensor', name, i, what(v))
    end
    if shape_of(v) ~= shape_of(p) then
      load_fail('parameter %d has shape %s but the saved %s has %s', i, shape_of(p), name,
        shape_of(v))
    end
    return v
  end
  if rl.is_tensor(v) then -- a number saved as a one-element tensor
    if v:numel() ~= 1 then
      load_fail('the saved %s of parameter %d is a tensor of size %s, expected a number', name,
        i, shape_of(v))
    end
    v = v:double():item()
  end
  if type(v) ~= 'number' then
    load_fail('the saved %s of parameter %d is %s, expected a number', name, i, what(v))
  end
  return name == 'step' and math.tointeger(v) or v
end

-- The saved state -> {[parameter] = state}, every entry checked.
local function load_states(spec, saved, id_param, id_pos)
  local new_state = {}
  for key, s in pairs(saved) do
    -- ids may have become strings on a trip through a text format
    local id = math.tointeger(tonumber(key)) or key
    local p, i = id_param[id], id_pos[id]
    if p == nil then
      load_fail('the saved state has an entry for parameter %s, which no saved group lists',
        fmt_value(id))
    end
    if type(s) ~= 'table' or rl.is_tensor(s) then
      load_fail('the saved state of parameter %d is %s, expected a table', i, what(s))
    end
    local st = {}
    for name, v in pairs(s) do st[name] = load_state_value(spec, p, i, name, v) end
    if next(st) ~= nil then -- an empty state (no step taken yet) is complete
      for _, name in ipairs(spec.required_state) do
        if st[name] == nil then load_fail('the saved state of parameter %d lacks %s', i, name) end
      end
    end
    new_state[p] = st
  end
  return new_state
end

--- opt:load_state_dict(sd): restore a state_dict() (of an optimiser of the
-- same class over parameters of the same shapes).  Everything is checked
-- before anything changes.
local function load_state_dict(self, sd)
  if type(sd) ~= 'table' or rl.is_tensor(sd) then
    load_fail('expected a table {state = ..., param_groups = ...}, got %s', what(sd))
  end
  for k in pairs(sd) do
    if k ~= 'state' and k ~= 'param_groups' then
      load_fail("unexpected field '%s' (a state_dict has only state and param_groups)",
        tostring(k))
    end
  end
  if type(sd.param_groups) ~= 'table' then load_fail('param_groups is missing') end
  if sd.state ~= nil and type(sd.state) ~= 'table' then
    load_fail('state must be a table, got %s', what(sd.state))
  end
  local new_groups, id_param, id_pos = load_groups(self, sd.param_groups)
  local new_state = load_states(self.spec, sd.state or {}, id_param, id_pos)
  -- commit: own copies of the tensors, in each parameter's dtype and device
  rl.no_grad(function()
    for p, st in pairs(new_state) do
      for name, v in pairs(st) do
        if rl.is_tensor(v) then
          local c = v:to { dtype = p.dtype, device = p.device }
          st[name] = c:is_view_of(v) and c:clone() or c
        end
      end
    end
  end)
  self.state, self.param_groups = new_state, new_groups
end
Optimizer.load_state_dict = public(load_state_dict)

function Optimizer:__tostring()
  local lines = { self.spec.name .. ' (' }
  for gi, group in ipairs(self.param_groups) do
    lines[#lines + 1] = string.format('Parameter Group %d  (%d parameter%s)', gi, #group.params,
      #group.params == 1 and '' or 's')
    local keys = {}
    for k in pairs(group) do
      if k ~= 'params' then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      lines[#lines + 1] = string.format('    %s: %s', k, short(group[k]))
    end
  end
  lines[#lines + 1] = ')'
  return table.concat(lines, '\n')
end

---------------------------------------------------------------------------
-- defining an optimiser class
---------------------------------------------------------------------------

--- base.define(spec) -> a class, called as Class(params, [options]).  spec:
--   name            'SGD', ...
--   options         one row per option, in display order:
--                   { name, kind, default, range }; kind is 'number',
--                   'boolean' or 'pair' (two numbers); a nil default makes
--                   the option required; range (optional) is base.nonneg(label)
--                   or base.betas
--   check           optional function(group, fail): rules across options
--   state           state name -> 'tensor' | 'number' (for load_state_dict)
--   required_state  names a saved, non-empty state must have
--   update          function(p, g, st, group), run under no_grad
function base.define(spec)
  spec.names, spec.group_keys = {}, { 'params' }
  for i, o in ipairs(spec.options) do
    spec.names[i], spec.group_keys[i + 1] = o[1], o[1]
  end
  table.insert(spec.group_keys, 'initial_lr')
  table.insert(spec.group_keys, 'name')
  local cls = { spec = spec, __tostring = Optimizer.__tostring }
  cls.__index = cls
  cls.new = public(function(params, opts) return new_optimizer(cls, params, opts) end)
  return setmetatable(cls, {
    __index = Optimizer,
    __call = function(_, params, opts) return cls.new(params, opts) end,
  })
end

return base
