--- rl.optim.optimizer: what every optimiser shares: parameter groups,
-- step/zero_grad and state_dict/load_state_dict (the methods are listed in
-- init.lua).  An algorithm file (sgd.lua, adam.lua) gives base.define its
-- option rows and state rows (checked by rl.options) and its update.
local rl = require 'rl.base'
local options = require 'rl.options'

local what, shape_of, copy, public = options.what, options.shape_of, options.copy, options.public
local REQUIRED = options.REQUIRED

local base = {}

local function fail(who, msg, ...) error(string.format('%s: ' .. msg, who, ...), 0) end

local function count(n, noun) return string.format('%d %s%s', n, noun, n == 1 and '' or 's') end

-- for i, p, group, gi in each_param(groups): the parameters, numbered from 1
-- over the groups in order (state_dict's ids).
local function each_param(groups)
  return coroutine.wrap(function()
    local i = 0
    for gi, group in ipairs(groups) do
      for _, p in ipairs(group.params) do
        i = i + 1
        coroutine.yield(i, p, group, gi)
      end
    end
  end)
end

local Optimizer = {}
Optimizer.__index = Optimizer
base.Optimizer = Optimizer

-- The options of t (every key but params) over `defaults`, each checked: a
-- new group, whose params are left to the caller.
local function group_options(self, t, who, defaults)
  local o = copy(defaults or {})
  for k, v in pairs(t) do
    if k ~= 'params' then o[k] = v end
  end
  local group = options.check(who, o, self.spec.group_rows)
  group.params = {}
  return group
end

-- A group as the user gave it (params a list of parameters, or one) ->
-- a checked group (a new table).
local function make_group(self, g, who)
  local params = rl.is_tensor(g.params) and { g.params } or g.params
  if type(params) ~= 'table' then fail(who, 'params must be a list of tensors, got %s', what(params)) end
  if #params == 0 then fail(who, 'the parameter list is empty') end
  for k, p in ipairs(params) do
    if not rl.is_tensor(p) then fail(who, 'parameter %d is %s, expected a tensor', k, what(p)) end
    if not p.requires_grad then
      fail(who, 'parameter %d (size %s, %s) does not require grad: call x:requires_grad_() ' ..
        'on it, or leave it out', k, shape_of(p), p.dtype)
    elseif not p.is_leaf then
      fail(who, 'parameter %d (size %s) is not a leaf tensor (it was computed from other ' ..
        'tensors, so it never gets a .grad); optimise the tensors it came from, or use ' ..
        'x:detach():requires_grad_()', k, shape_of(p))
    end
  end
  local group = group_options(self, g, who, self.defaults)
  table.move(params, 1, #params, 1, group.params)
  return group
end

-- A parameter listed twice (the same tensor, or an identical view of its
-- memory) would be updated twice per step.
local function check_duplicates(who, groups)
  local seen = {}
  for i, p, _, gi in each_param(groups) do
    local key = table.concat({ tostring(p:data_ptr()), p.dtype, table.concat(p:size(), ','),
      '/', table.concat(p:stride(), ',') }, ',')
    if seen[key] and p:numel() > 0 then
      fail(who, 'parameter %d (in group %d) is parameter %d again (the same tensor, or a view ' ..
        'of the same memory); list each parameter once', i, gi, seen[key])
    end
    seen[key] = i
  end
end

local function new_optimizer(cls, params, opts)
  local name = cls.spec.name
  local self = setmetatable({ spec = cls.spec, state = {}, param_groups = {} }, cls)
  self.defaults = options.check(name, opts, cls.spec.default_rows)
  if type(params) == 'table' and type(params.parameters) == 'function' and params._modules then
    fail(name, 'params must be a list of tensors, got a model (%s): pass model:parameters()', params.__name)
  end
  if type(params) ~= 'table' or rl.is_tensor(params) then
    fail(name, 'params must be a list of tensors, or a list of parameter groups {params = ' ..
      '{...}, lr = ...}; got %s', rl.is_tensor(params) and 'a single tensor (wrap it in a ' ..
      'list: {x})' or what(params))
  end
  if type(params[1]) ~= 'table' or rl.is_tensor(params[1]) then -- a list of parameters
    self.param_groups[1] = make_group(self, { params = params }, name)
  else
    for gi = 1, #params do -- a list of groups (not ipairs: a hole is an error too)
      local g = params[gi]
      if type(g) ~= 'table' or rl.is_tensor(g) or g.params == nil then
        fail(name, 'element %d of params is %s; when the first element is a parameter group, ' ..
          'every element must be one ({params = {...}, ...})', gi, what(g))
      end
      self.param_groups[gi] = make_group(self, g, string.format('%s: parameter group %d', name, gi))
    end
  end
  check_duplicates(name, self.param_groups)
  return self
end

--- opt:add_param_group({params = {...}, <options>})
Optimizer.add_param_group = public(function(self, g)
  local name, n = self.spec.name, #self.param_groups + 1
  if type(g) ~= 'table' or rl.is_tensor(g) then
    fail(name, 'add_param_group: expected a table {params = {...}, ...}, got %s', what(g))
  end
  local groups = { table.unpack(self.param_groups) }
  groups[n] = make_group(self, g, string.format('%s: parameter group %d', name, n))
  check_duplicates(name, groups)
  self.param_groups[n] = groups[n]
end)

local ZERO_GRAD_ROWS = { { 'set_to_none', 'boolean', true } }

--- opt:zero_grad([set_to_none = true])
Optimizer.zero_grad = public(function(self, set_to_none)
  local who = self.spec.name .. ': zero_grad'
  if type(set_to_none) == 'table' then
    set_to_none = options.check(who, set_to_none, ZERO_GRAD_ROWS).set_to_none
  end
  set_to_none = options.value(who, 'set_to_none', set_to_none == nil or set_to_none, 'boolean')
  rl.no_grad(function()
    for _, p in each_param(self.param_groups) do
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
  end)
end)

--- opt:step([closure])
function Optimizer:step(closure)
  local spec, loss = self.spec, nil
  if closure ~= nil then
    if type(closure) ~= 'function' then
      error(string.format('%s: step: the closure must be a function, got %s', spec.name,
        what(closure)), 2)
    end
    local prev = rl.set_grad_enabled(true)
    local res = table.pack(pcall(closure))
    rl.set_grad_enabled(prev)
    if not res[1] then error(res[2], 0) end
    loss = res[2]
  end
  -- options may have been changed through param_groups since the last step
  local many = #self.param_groups > 1
  for gi, group in ipairs(self.param_groups) do
    group_options(self, group, many and string.format('%s: parameter group %d', spec.name, gi)
      or spec.name)
  end
  rl.no_grad(function()
    for i, p, group in each_param(self.param_groups) do
      local g = p.grad
      if g ~= nil then
        if g.dtype ~= p.dtype then
          fail(spec.name, 'step: parameter %d is %s but its grad is %s', i, p.dtype, g.dtype)
        end
        self.state[p] = self.state[p] or {}
        spec.update(p, g, self.state[p], group)
      end
    end
  end)
  return loss
end

--- opt:state_dict()
function Optimizer:state_dict()
  local sd = { state = {}, param_groups = {} }
  for gi, group in ipairs(self.param_groups) do
    sd.param_groups[gi] = copy(group)
    sd.param_groups[gi].params = {}
  end
  rl.no_grad(function()
    for i, p, _, gi in each_param(self.param_groups) do
      table.insert(sd.param_groups[gi].params, i)
      local st = self.state[p]
      if st ~= nil and next(st) ~= nil then
        local s = {}
        for name, v in pairs(st) do s[name] = rl.is_tensor(v) and v:clone() or copy(v) end
        sd.state[i] = s
      end
    end
  end)
  return sd
end

-- The saved state s of parameter id (p), checked by the class's state rows,
-- its tensors against p's shape -> the state to install.
local function load_param_state(spec, who, p, id, s)
  local rows = { noun = 'state field' }
  for i, row in ipairs(spec.state) do
    local name, kind, v = row[1], row[2], type(s) == 'table' and s[row[1]]
    if kind ~= 'tensor' and rl.is_tensor(v) and v:numel() == 1 then
      s[name] = v:double():item() -- a number saved as a one-element tensor
    end
    rows[i] = { name, kind, row[3], kind == 'tensor' and function(t)
      return shape_of(t) ~= shape_of(p) and 'a tensor of size ' .. shape_of(p) or nil
    end or nil }
  end
  if type(s) == 'table' and next(s) == nil then return {} end -- no step taken yet
  return options.check(string.format('%s: the saved state of parameter %d', who, id), s, rows)
end

local STATE_DICT_ROWS = {
  noun = 'state_dict field', { 'state', 'table', {} }, { 'param_groups', 'table', REQUIRED },
}

--- opt:load_state_dict(sd): a state_dict() of an optimiser of the same class
-- over parameters of the same shapes; everything is checked before anything
-- changes.
Optimizer.load_state_dict = public(function(self, sd)
  local spec, groups = self.spec, self.param_groups
  local who = spec.name .. ': load_state_dict'
  sd = options.check(who, sd, STATE_DICT_ROWS)
  if #sd.param_groups ~= #groups then
    fail(who, 'the saved state has %s but this optimiser has %d',
      count(#sd.param_groups, 'parameter group'), #groups)
  end
  local by_id, new_groups, new_state = {}, {}, {}
  for gi, sg in ipairs(sd.param_groups) do
    local params = groups[gi].params
    local saved = type(sg) == 'table' and type(sg.params) == 'table' and #sg.params
    if saved ~= #params then
      fail(who, 'parameter group %d has %s but the saved group has %s', gi,
        count(#params, 'parameter'), saved or 'no params list')
    end
    new_groups[gi] = group_options(self, sg,
      string.format('%s: saved parameter group %d', who, gi), self.defaults)
    for k, id in ipairs(sg.params) do
      if math.type(id) ~= 'integer' or by_id[id] then
        fail(who, 'saved parameter group %d lists %s as a parameter id (ids are integers, ' ..
          'each listed once)', gi, options.full(id))
      end
      by_id[id], new_groups[gi].params[k] = params[k], params[k]
    end
  end
  for key, s in pairs(sd.state) do
    local id = math.tointeger(tonumber(key)) or key -- a text format may make ids strings
    local p = by_id[id]
    if p == nil then
      fail(who, 'the saved state has an entry for parameter %s, which no saved group lists',
        options.full(id))
    end
    new_state[p] = load_param_state(spec, who, p, id, s)
  end
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
end)

-- As PyTorch's repr: each group's options in sorted order.
function Optimizer:__tostring()
  local lines = { self.spec.name .. ' (' }
  for gi, group in ipairs(self.param_groups) do
    local keys = {}
    for k, v in pairs(group) do
      if k ~= 'params' then
        keys[#keys + 1] = string.format('    %s: %s', k,
          type(v) == 'number' and string.format('%.6g', v) or options.full(v))
      end
    end
    table.sort(keys)
    lines[#lines + 1] = string.format('Parameter Group %d  (%s)\n%s', gi,
      count(#group.params, 'parameter'), table.concat(keys, '\n'))
  end
  return table.concat(lines, '\n') .. '\n)'
end

--- base.define(spec) -> a class, called as Class(params, [options]).  spec:
--   name     'SGD', ...
--   options  rl.options rows {name, kind, default, range}, in display order;
--            a REQUIRED option may come from the constructor or every group
--   check    optional function(group) -> nil, or a message: a rule across options
--   state    rows {name, kind, [REQUIRED]} of a parameter's state, which
--            load_state_dict checks ('tensor' ones against the parameter's shape)
--   update   function(p, g, st, group), run under no_grad
function base.define(spec)
  -- The constructor's options are checked for kind and filled with the
  -- defaults; a group (built over them, loaded, or changed before a step)
  -- must hold every option, in range.
  local default_rows, group_rows = {}, { check = spec.check }
  for i, row in ipairs(spec.options) do
    local default = row[3]
    if default == REQUIRED then default = nil end
    default_rows[i], group_rows[i] = { row[1], row[2], default }, { row[1], row[2], REQUIRED, row[4] }
  end
  group_rows[#group_rows + 1] = { 'initial_lr', 'number' } -- set by a schedule
  group_rows[#group_rows + 1] = { 'name', 'string' }       -- a label
  spec.default_rows, spec.group_rows = default_rows, group_rows
  local cls = { spec = spec, __tostring = Optimizer.__tostring }
  cls.__index = cls
  cls.new = public(function(params, opts) return new_optimizer(cls, params, opts) end)
  return setmetatable(cls, {
    __index = Optimizer,
    __call = function(_, params, opts) return cls.new(params, opts) end,
  })
end

return base
