--- rl.optim: optimisers (SGD, Adam, Nadam) and learning-rate schedules.
--
--     local optim = require 'rl.optim'                -- also rl.optim from then on
--     local opt = optim.SGD({w, b}, {lr = 1e-2, momentum = 0.9})
--     local sched = optim.paper_scheduler(opt, 120)  -- milestones 40, 80, 100
--     for epoch = 1, 120 do
--       for batch in batches() do
--         opt:zero_grad()
--         loss(batch):backward()
--         opt:step()
--       end
--       sched:step()                                  -- once per epoch, at its end
--     end
--
-- The update formulas are those of torch.optim in PyTorch 1.13 (the version
-- Debian ships as python3-torch and that spec/optim_spec.lua checks against),
-- operation by operation, so that the same gradients give the same numbers:
--
-- SGD (lr required; momentum = 0, dampening = 0, weight_decay = 0,
--      nesterov = false, maximize = false), for each parameter p with grad g:
--     g <- -g if maximize;  g <- g + weight_decay * p
--     if momentum ~= 0:
--        buf <- g (a copy) on the first step, else buf <- momentum * buf + (1 - dampening) * g
--        g <- g + momentum * buf if nesterov, else g <- buf
--     p <- p - lr * g
--   The momentum buffer starts at the first gradient, not at zero (so
--   dampening does not act on the first step), as PyTorch.
--
-- Adam (lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
--       amsgrad = false, maximize = false), with t the step count of p:
--     g <- -g if maximize;  g <- g + weight_decay * p   (L2, not AdamW)
--     m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g * g
--     if amsgrad: vmax <- max(vmax, v), and vmax replaces v below
--     denom <- sqrt(v) / sqrt(1 - beta2^t) + eps       (eps outside the correction)
--     p <- p - (lr / (1 - beta1^t)) * m / denom
--
-- Nadam, also optim.NAdam (lr = 2e-3, betas = {0.9, 0.999}, eps = 1e-8,
--       weight_decay = 0, momentum_decay = 4e-3, textbook = false):
--     g <- g + weight_decay * p
--     mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)), likewise mu_{t+1}
--     P_t = mu_1 * ... * mu_t (state mu_product, starts at 1)
--     m, v as Adam;  denom <- sqrt(v / (1 - beta2^t)) + eps
--     p <- p - lr * (1 - mu_t) / (1 - P_t) * g / denom
--     p <- p - lr * mu_{t+1} / (1 - Q) * m / denom
--   **quirk** (PyTorch 1.13): Q = P_t * mu_t * mu_{t+1}, with mu_t counted
--   twice; PyTorch's own documentation, Dozat's paper and PyTorch >= 2.0
--   (pytorch/pytorch#92699) use Q = P_{t+1} = P_t * mu_{t+1}.  The default
--   follows 1.13; `textbook = true` gives the documented form.  PyTorch 1.13
--   also keeps mu_product as a tensor of the default dtype (f32 unless
--   changed) and so rounds it to f32 each step; here it is a Lua number
--   (double), which equals PyTorch run with torch.set_default_dtype(float64).
--
-- Parameters are a list of tensors, or a list of parameter groups
-- `{params = {...}, lr = ..., <any other option>}`; a group's missing options
-- come from the constructor's options.  Parameters must be leaf tensors that
-- require grad; parameters whose .grad is nil are skipped by step().  Every
-- update runs with gradient recording off, so step() may be called anywhere.
--
-- Methods of every optimiser:
--   opt:step([closure])    one update; closure (if given) is called first with
--                          grad mode on and its result is returned
--   opt:zero_grad([set_to_none = true])  grads to nil, or zeroed in place with
--                          false (also opt:zero_grad{set_to_none = false})
--   opt:state_dict()       {state = {[i] = {...}}, param_groups = {{lr = ...,
--                          params = {i, ...}}}}; i counts the parameters over
--                          the groups in order, from 1.  A snapshot: tensors
--                          are copies (PyTorch returns references).
--   opt:load_state_dict(sd) validates everything (group and parameter counts,
--                          state names, shapes) before changing anything; saved
--                          tensors are copied and converted to each parameter's
--                          dtype.  Hyperparameters come from sd, as PyTorch.
--   opt:add_param_group(group)
--   opt.param_groups       the groups: set g.lr between steps to change it
--   opt.state[p]           the state of parameter p (a table), keyed by tensor
--   opt.defaults           the constructor's options with defaults filled in
--
-- Learning-rate schedules (PyTorch's MultiStepLR semantics):
--   optim.MultiStepLR(opt, {milestones = {...}, gamma = 0.1, last_epoch = -1,
--                           verbose = false})
--     :step() once per epoch (after that epoch's optimiser steps); after the
--     k-th call the lr is base_lr * gamma^(number of milestones <= k), i.e.
--     with milestone m, epochs 1..m (1-based) use the base lr.  A milestone
--     listed twice multiplies by gamma twice.  :get_last_lr() gives the list
--     of the groups' lrs; :state_dict() / :load_state_dict(sd).
--   optim.paper_milestones(epochs) -> the milestones of METHODS.md, chosen by
--     the number of training epochs (not fractions of it):
--       <= 20: 10,15   <= 30: 15,25   <= 40: 20,30   <= 50: 25,40
--       <= 60: 30,50   <= 70: 40,60   <= 80: 30,50,70   <= 120: 40,80,100
--       <= 160: 40,80,120,140          more: 60,100,140,180
--     (milestones beyond `epochs` are kept: they simply never fire).
--   optim.paper_scheduler(opt, epochs, [opts]) = MultiStepLR with those
--     milestones and gamma = 0.1 (opts may set gamma, last_epoch, verbose).
local rl = require 'rl'

local optim = {}

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------

local function shape_of(t)
  local s = t:size()
  if #s == 0 then return 'scalar' end
  local parts = {}
  for i = 1, #s do parts[i] = tostring(s[i]) end
  return table.concat(parts, 'x')
end

local function same_shape(a, b)
  local sa, sb = a:size(), b:size()
  if #sa ~= #sb then return false end
  for i = 1, #sa do
    if sa[i] ~= sb[i] then return false end
  end
  return true
end

local function fmt_value(v)
  if type(v) == 'number' then return string.format('%.17g', v) end
  if type(v) == 'string' then return string.format('%q', v) end
  if type(v) == 'table' and not rl.is_tensor(v) then
    local parts = {}
    for i = 1, #v do parts[i] = fmt_value(v[i]) end
    return '{' .. table.concat(parts, ', ') .. '}'
  end
  if rl.is_tensor(v) then return 'a tensor of size ' .. shape_of(v) end
  return tostring(v)
end

local function short(v)
  if type(v) == 'number' then return string.format('%.6g', v) end
  return fmt_value(v)
end

local function what(v)
  if rl.is_tensor(v) then return 'a tensor of size ' .. shape_of(v) end
  if v == nil then return 'nil' end
  if type(v) == 'string' then return string.format("the string '%s'", v) end
  if type(v) == 'number' or type(v) == 'boolean' then return tostring(v) end
  return 'a ' .. type(v)
end

-- Wrap a function so that its errors (raised with level 0 inside) name the
-- caller's line.
local function public(fn)
  return function(...)
    local res = table.pack(pcall(fn, ...))
    if not res[1] then error(res[2], 2) end
    return table.unpack(res, 2, res.n)
  end
end

-- Levenshtein distance, for "did you mean" hints.
local function distance(a, b)
  local la, lb = #a, #b
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    for j = 1, lb do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end

local ALIASES = {
  learning_rate = 'lr', learningrate = 'lr', rate = 'lr', step_size = 'lr',
  beta1 = 'betas', beta2 = 'betas', beta = 'betas',
  wd = 'weight_decay', decay = 'weight_decay', l2 = 'weight_decay',
  epsilon = 'eps', nesterov_momentum = 'nesterov', mu = 'momentum',
  steps = 'milestones', factor = 'gamma', decay_rate = 'gamma',
}

local function suggestion(key, valid)
  if ALIASES[key] then
    for _, v in ipairs(valid) do
      if v == ALIASES[key] then return v end
    end
  end
  local best, bestd
  for _, v in ipairs(valid) do
    local d = distance(key, v)
    if (key:find(v, 1, true) or v:find(key, 1, true)) and #key >= 2 then d = math.min(d, 1) end
    if not bestd or d < bestd then best, bestd = v, d end
  end
  if bestd and (bestd <= 1 or (bestd <= 2 and #key >= 5)) then return best end
  return nil
end

local PYTORCH_ONLY = {
  foreach = true, capturable = true, differentiable = true, fused = true,
}

-- Raise "<who>: unknown option 'k' (did you mean 'x'?); options: ...".
local function unknown_option(who, where, key, valid)
  if type(key) ~= 'string' then
    error(string.format('%s: %soptions must be named (got a key of type %s); options: %s',
      who, where, type(key), table.concat(valid, ', ')), 0)
  end
  if PYTORCH_ONLY[key] then
    error(string.format("%s: %soption '%s' selects among PyTorch's implementations and " ..
      'has no meaning here; leave it out', who, where, key), 0)
  end
  local s = suggestion(key, valid)
  error(string.format("%s: %sunknown option '%s'%s; options: %s", who, where, key,
    s and string.format(" (did you mean '%s'?)", s) or '', table.concat(valid, ', ')), 0)
end

local function copy_value(v)
  if type(v) == 'table' and not rl.is_tensor(v) then
    local c = {}
    for k, x in pairs(v) do c[k] = copy_value(x) end
    return c
  end
  return v
end

-- Run fn with grad mode off, restoring the mode afterwards (also on error).
local no_grad = rl.no_grad

---------------------------------------------------------------------------
-- the optimiser base class
---------------------------------------------------------------------------

-- Every optimiser class is described by a spec:
--   name       'SGD', ...
--   options    list of option names, in display order
--   kinds      option -> 'number' | 'boolean' | 'pair' (a list of 2 numbers)
--   defaults   option -> default; a missing default marks a required option
--   check      function(group, fail) that validates values (fail(msg) raises)
--   state      state name -> 'tensor' | 'number'
--   required_state  list of state names a saved non-empty state must have
--   update     function(p, g, st, group) under no_grad
local Optimizer = {}
Optimizer.__index = Optimizer
optim.Optimizer = Optimizer

-- Extra keys a parameter group may carry (set by schedulers, or a label).
local GROUP_EXTRAS = { initial_lr = 'number', name = 'string' }

local function valid_group_keys(spec, with_params)
  local v = {}
  if with_params then v[#v + 1] = 'params' end
  for _, k in ipairs(spec.options) do v[#v + 1] = k end
  v[#v + 1] = 'initial_lr'
  v[#v + 1] = 'name'
  return v
end

-- Type-check the value of option k.
local function check_kind(spec, where, k, v)
  local kind = spec.kinds[k] or GROUP_EXTRAS[k]
  local ok
  if kind == 'number' then
    ok = type(v) == 'number'
  elseif kind == 'boolean' then
    ok = type(v) == 'boolean'
  elseif kind == 'string' then
    ok = type(v) == 'string'
  elseif kind == 'pair' then
    ok = type(v) == 'table' and not rl.is_tensor(v) and #v == 2 and type(v[1]) == 'number'
      and type(v[2]) == 'number'
  end
  if not ok then
    local want = ({ number = 'a number', boolean = 'true or false', string = 'a string',
      pair = 'a list of two numbers, e.g. {0.9, 0.999}' })[kind]
    error(string.format('%s: %s%s must be %s, got %s', spec.name, where, k, want,
      type(v) == 'table' and not rl.is_tensor(v) and fmt_value(v) or what(v)), 0)
  end
end

-- Validate the options of a group whose keys are all known and filled in.
local function check_values(spec, where, group)
  for _, k in ipairs(spec.options) do
    if group[k] == nil then
      error(string.format('%s: %sthe option %s is required (e.g. %s(params, {%s = 0.01}))',
        spec.name, where, k, spec.name, k), 0)
    end
    check_kind(spec, where, k, group[k])
  end
  for k in pairs(GROUP_EXTRAS) do
    if group[k] ~= nil then check_kind(spec, where, k, group[k]) end
  end
  spec.check(group, function(msg, ...)
    error(string.format('%s: %s' .. msg, spec.name, where, ...), 0)
  end)
end

local function check_param(spec, where, p, k)
  if not rl.is_tensor(p) then
    error(string.format('%s: %sparameter %d is %s, expected a tensor', spec.name, where, k,
      what(p)), 0)
  end
  if not p.requires_grad then
    error(string.format('%s: %sparameter %d (size %s, %s) does not require grad: call ' ..
      'x:requires_grad_() on it, or leave it out', spec.name, where, k, shape_of(p), p.dtype), 0)
  end
  if not p.is_leaf then
    error(string.format("%s: %sparameter %d (size %s) is not a leaf tensor (it was computed " ..
      'from other tensors, so it never gets a .grad); optimise the tensors it came from, or ' ..
      'use x:detach():requires_grad_()', spec.name, where, k, shape_of(p)), 0)
  end
end

-- Check and fill one group (a fresh table is returned).
local function make_group(self, g, gi)
  local spec = self.spec
  local where = self._explicit_groups and string.format('parameter group %d: ', gi) or ''
  local valid = valid_group_keys(spec, true)
  local known = {}
  for _, k in ipairs(valid) do known[k] = true end
  for k in pairs(g) do
    if not known[k] then unknown_option(spec.name, where, k, valid) end
  end
  local params = g.params
  if rl.is_tensor(params) then params = { params } end
  if type(params) ~= 'table' then
    error(string.format('%s: %sparams must be a list of tensors, got %s', spec.name, where,
      what(params)), 0)
  end
  if #params == 0 then
    error(string.format('%s: %sthe parameter list is empty', spec.name, where), 0)
  end
  local group = { params = {} }
  for k = 1, #params do
    check_param(spec, where, params[k], k)
    group.params[k] = params[k]
  end
  for k, v in pairs(g) do
    if k ~= 'params' then group[k] = copy_value(v) end
  end
  for _, k in ipairs(spec.options) do
    if group[k] == nil then group[k] = copy_value(self.defaults[k]) end
  end
  check_values(spec, where, group)
  return group
end

-- A key identifying a parameter's memory (two boxes of one tensor, or two
-- identical views, give the same key).
local function param_key(p)
  local parts = { tostring(p:data_ptr()), p.dtype }
  for _, s in ipairs(p:size()) do parts[#parts + 1] = tostring(s) end
  parts[#parts + 1] = '/'
  for _, s in ipairs(p:stride()) do parts[#parts + 1] = tostring(s) end
  return table.concat(parts, ',')
end

local function check_duplicates(self, extra)
  local seen = {}
  local i = 0
  local function visit(group, gi)
    for _, p in ipairs(group.params) do
      i = i + 1
      if p:numel() > 0 then
        local key = param_key(p)
        if seen[key] then
          error(string.format('%s: parameter %d (in group %d) is parameter %d again (the same ' ..
            'tensor, or a view of the same memory); list each parameter once', self.spec.name,
            i, gi, seen[key]), 0)
        end
        seen[key] = i
      end
    end
  end
  for gi, group in ipairs(self.param_groups) do visit(group, gi) end
  if extra then visit(extra, #self.param_groups + 1) end
end

local function new_optimizer(cls, params, opts)
  local spec = cls.spec
  if opts == nil then opts = {} end
  if type(opts) ~= 'table' or rl.is_tensor(opts) then
    error(string.format('%s: options must be a table, e.g. %s(params, {lr = 0.01}), got %s',
      spec.name, spec.name, what(opts)), 0)
  end
  local self = setmetatable({ spec = spec, state = {}, param_groups = {} }, cls)
  -- options
  for k in pairs(opts) do
    if spec.kinds[k] == nil then unknown_option(spec.name, '', k, spec.options) end
  end
  self.defaults = {}
  for _, k in ipairs(spec.options) do
    local v = opts[k]
    if v == nil then v = spec.defaults[k] end
    if v ~= nil then
      check_kind(spec, '', k, v)
      self.defaults[k] = copy_value(v)
    end
  end
  -- params
  local function bad_params()
    error(string.format('%s: params must be a list of tensors, or a list of parameter groups ' ..
      '{params = {...}, lr = ...}; got %s', spec.name,
      rl.is_tensor(params) and 'a single tensor (wrap it in a list: {x})' or what(params)), 0)
  end
  if type(params) ~= 'table' or rl.is_tensor(params) then bad_params() end
  if #params == 0 then
    error(string.format('%s: got an empty parameter list', spec.name), 0)
  end
  local groups
  if rl.is_tensor(params[1]) then
    groups = { { params = params } }
    for k = 1, #params do check_param(spec, '', params[k], k) end
  elseif type(params[1]) == 'table' then
    groups = params
    self._explicit_groups = true
    for gi = 1, #groups do
      local g = groups[gi]
      if type(g) ~= 'table' or rl.is_tensor(g) or g.params == nil then
        error(string.format('%s: element %d of params is %s; when the first element is a ' ..
          'parameter group, every element must be one ({params = {...}, ...})', spec.name, gi,
          what(g)), 0)
      end
    end
  else
    check_param(spec, '', params[1], 1)
  end
  for gi = 1, #groups do
    self.param_groups[gi] = make_group(self, groups[gi], gi)
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

--- opt:zero_grad([set_to_none = true]): drop every parameter's grad (nil),
-- or with false fill the existing grads with zeros.
function Optimizer:zero_grad(set_to_none)
  if type(set_to_none) == 'table' then
    for k in pairs(set_to_none) do
      if k ~= 'set_to_none' then unknown_option(self.spec.name .. ':zero_grad', '', k,
          { 'set_to_none' }) end
    end
    set_to_none = set_to_none.set_to_none
  end
  if set_to_none == nil then set_to_none = true end
  if type(set_to_none) ~= 'boolean' then
    error(string.format('%s: zero_grad: set_to_none must be true or false, got %s',
      self.spec.name, what(set_to_none)), 2)
  end
  no_grad(function()
    for _, group in ipairs(self.param_groups) do
      for _, p in ipairs(group.params) do
        if set_to_none then
          p.grad = nil
        else
          local g = p.grad
          if g ~= nil then
            if g.requires_grad then
              g = g:detach()
              p.grad = g
            end
            g:zero_()
          end
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
  local spec = self.spec
  no_grad(function()
    local i = 0
    for gi, group in ipairs(self.param_groups) do
      check_values(spec, #self.param_groups > 1 and string.format('parameter group %d: ', gi)
        or '', group)
      for _, p in ipairs(group.params) do
        i = i + 1
        local g = p.grad
        if g ~= nil then
          if g.dtype ~= p.dtype then
            error(string.format('%s: step: parameter %d is %s but its grad is %s', spec.name, i,
              p.dtype, g.dtype), 0)
          end
          local st = self.state[p]
          if st == nil then
            st = {}
            self.state[p] = st
          end
          spec.update(p, g, st, group)
        end
      end
    end
  end)
  return loss
end

--- opt:state_dict() -> {state = {[i] = {...}}, param_groups = {{..., params = {i...}}}}
function Optimizer:state_dict()
  local sd = { state = {}, param_groups = {} }
  local i = 0
  no_grad(function()
    for gi, group in ipairs(self.param_groups) do
      local g = {}
      for k, v in pairs(group) do
        if k ~= 'params' then g[k] = copy_value(v) end
      end
      g.params = {}
      for k, p in ipairs(group.params) do
        i = i + 1
        g.params[k] = i
        local st = self.state[p]
        if st ~= nil and next(st) ~= nil then
          local s = {}
          for name, v in pairs(st) do
            s[name] = rl.is_tensor(v) and v:clone() or copy_value(v)
          end
          sd.state[i] = s
        end
      end
      sd.param_groups[gi] = g
    end
  end)
  return sd
end

--- opt:load_state_dict(sd): restore a state_dict() (of an optimiser of the
-- same class over parameters of the same shapes).
local function load_state_dict(self, sd)
  local spec = self.spec
  local function fail(msg, ...)
    error('load_state_dict: ' .. string.format(msg, ...), 0)
  end
  if type(sd) ~= 'table' or rl.is_tensor(sd) then
    fail('expected a table {state = ..., param_groups = ...}, got %s', what(sd))
  end
  for k in pairs(sd) do
    if k ~= 'state' and k ~= 'param_groups' then
      fail("unexpected field '%s' (a state_dict has only state and param_groups)", tostring(k))
    end
  end
  if type(sd.param_groups) ~= 'table' then fail('param_groups is missing') end
  if sd.state ~= nil and type(sd.state) ~= 'table' then
    fail('state must be a table, got %s', what(sd.state))
  end
  local saved_groups = sd.param_groups
  if #saved_groups ~= #self.param_groups then
    fail('the saved state has %d parameter group%s but this optimiser has %d', #saved_groups,
      #saved_groups == 1 and '' or 's', #self.param_groups)
  end
  -- map saved ids to parameters; build the new groups
  local id_param, id_pos, new_groups = {}, {}, {}
  local pos = 0
  local valid = valid_group_keys(spec, true)
  local known = {}
  for _, k in ipairs(valid) do known[k] = true end
  for gi, sg in ipairs(saved_groups) do
    local group = self.param_groups[gi]
    if type(sg) ~= 'table' or type(sg.params) ~= 'table' then
      fail('saved parameter group %d has no params list', gi)
    end
    if #sg.params ~= #group.params then
      fail('parameter group %d has %d parameter%s but the saved group has %d', gi,
        #group.params, #group.params == 1 and '' or 's', #sg.params)
    end
    local ng = { params = {} }
    local keys = {}
    for k in pairs(sg) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      if not known[k] then
        fail("saved parameter group %d has the option '%s', which %s does not have " ..
          '(was it saved from another optimiser?)', gi, k, spec.name)
      end
    end
    for k, v in pairs(sg) do
      if k ~= 'params' then ng[k] = copy_value(v) end
    end
    for _, k in ipairs(spec.options) do
      if ng[k] == nil then ng[k] = copy_value(self.defaults[k]) end
    end
    local ok, err = pcall(check_values, spec, string.format('parameter group %d: ', gi), ng)
    if not ok then fail('saved %s', err) end
    for k, id in ipairs(sg.params) do
      pos = pos + 1
      if math.type(id) ~= 'integer' then
        fail('saved parameter group %d lists %s as a parameter id (expected an integer)', gi,
          fmt_value(id))
      end
      if id_param[id] then fail('parameter id %d is listed twice in the saved groups', id) end
      id_param[id] = group.params[k]
      id_pos[id] = pos
      ng.params[k] = group.params[k]
    end
    new_groups[gi] = ng
  end
  -- validate and copy the state
  local new_state = {}
  for key, s in pairs(sd.state or {}) do
    -- ids may have become strings on a trip through a text format
    local id = math.tointeger(tonumber(key)) or key
    local p = id_param[id]
    if p == nil then
      fail('the saved state has an entry for parameter %s, which no saved group lists',
        fmt_value(id))
    end
    local i = id_pos[id]
    if type(s) ~= 'table' or rl.is_tensor(s) then
      fail('the saved state of parameter %d is %s, expected a table', i, what(s))
    end
    local st = {}
    for name, v in pairs(s) do
      local kind = spec.state[name]
      if kind == nil then
        local names = {}
        for n in pairs(spec.state) do names[#names + 1] = n end
        table.sort(names)
        fail("the saved state of parameter %d has '%s', which %s does not use (its state: " ..
          '%s; was it saved from another optimiser?)', i, tostring(name), spec.name,
          table.concat(names, ', '))
      end
      if kind == 'tensor' then
        if not rl.is_tensor(v) then
          fail('the saved %s of parameter %d is %s, expected a tensor', name, i, what(v))
        end
        if not same_shape(v, p) then
          fail('parameter %d has shape %s but the saved %s has %s', i, shape_of(p), name,
            shape_of(v))
        end
        st[name] = v
      else
        if rl.is_tensor(v) then
          if v:numel() ~= 1 then
            fail('the saved %s of parameter %d is a tensor of size %s, expected a number', name,
              i, shape_of(v))
          end
          v = v:double():item()
        end
        if type(v) ~= 'number' then
          fail('the saved %s of parameter %d is %s, expected a number', name, i, what(v))
        end
        if name == 'step' then v = math.tointeger(v) or v end
        st[name] = v
      end
    end
    if next(st) ~= nil then
      for _, name in ipairs(spec.required_state) do
        if st[name] == nil then
          fail('the saved state of parameter %d lacks %s', i, name)
        end
      end
    end
    new_state[p] = st
  end
  -- commit: copy tensors (converted to the parameter's dtype)
  no_grad(function()
    for p, st in pairs(new_state) do
      for name, v in pairs(st) do
        if rl.is_tensor(v) then
          local c = v:to { dtype = p.dtype, device = p.device }
          if c:is_view_of(v) then c = c:clone() end
          st[name] = c
        end
      end
    end
  end)
  self.state = new_state
  self.param_groups = new_groups
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

local function define(spec)
  local cls = setmetatable({}, { __index = Optimizer })
  cls.__index = cls
  cls.__tostring = Optimizer.__tostring
  cls.spec = spec
  local new = public(function(params, opts) return new_optimizer(cls, params, opts) end)
  cls.new = new
  setmetatable(cls, {
    __index = Optimizer,
    __call = function(_, params, opts) return new(params, opts) end,
  })
  return cls
end

local function check_nonneg(fail, group, k, label)
  local v = group[k]
  if not (v >= 0) then fail('invalid %s %s (%s must be >= 0)', label, short(v), k) end
end

local function check_betas(fail, group)
  local b = group.betas
  for i = 1, 2 do
    if not (b[i] >= 0 and b[i] < 1) then
      fail('invalid beta parameter at index %d: %s (betas[%d] must be in [0, 1))', i,
        short(b[i]), i)
    end
  end
end

---------------------------------------------------------------------------
-- SGD
---------------------------------------------------------------------------

optim.SGD = define {
  name = 'SGD',
  options = { 'lr', 'momentum', 'dampening', 'weight_decay', 'nesterov', 'maximize' },
  kinds = { lr = 'number', momentum = 'number', dampening = 'number', weight_decay = 'number',
    nesterov = 'boolean', maximize = 'boolean' },
  defaults = { momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
    maximize = false },
  state = { momentum_buffer = 'tensor' },
  required_state = {},
  check = function(g, fail)
    check_nonneg(fail, g, 'lr', 'learning rate')
    check_nonneg(fail, g, 'momentum', 'momentum value')
    check_nonneg(fail, g, 'weight_decay', 'weight_decay value')
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      fail('nesterov momentum requires momentum > 0 and dampening = 0 (got momentum = %s, ' ..
        'dampening = %s)', short(g.momentum), short(g.dampening))
    end
  end,
  update = function(p, g, st, group)
    local d = g
    if group.maximize then d = g:neg() end
    local wd, momentum = group.weight_decay, group.momentum
    if wd ~= 0 then d = d:add(p, wd) end
    if momentum ~= 0 then
      local buf = st.momentum_buffer
      if buf == nil then
        buf = d:clone()
        st.momentum_buffer = buf
      else
        buf:mul_(momentum):add_(d, 1 - group.dampening)
      end
      if group.nesterov then
        d = d:add(buf, momentum)
      else
        d = buf
      end
    end
    p:add_(d, -group.lr)
  end,
}

---------------------------------------------------------------------------
-- Adam
---------------------------------------------------------------------------

local function adam_check(g, fail)
  check_nonneg(fail, g, 'lr', 'learning rate')
  check_nonneg(fail, g, 'eps', 'epsilon value')
  check_betas(fail, g)
  check_nonneg(fail, g, 'weight_decay', 'weight_decay value')
end

optim.Adam = define {
  name = 'Adam',
  options = { 'lr', 'betas', 'eps', 'weight_decay', 'amsgrad', 'maximize' },
  kinds = { lr = 'number', betas = 'pair', eps = 'number', weight_decay = 'number',
    amsgrad = 'boolean', maximize = 'boolean' },
  defaults = { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0,
    amsgrad = false, maximize = false },
  state = { step = 'number', exp_avg = 'tensor', exp_avg_sq = 'tensor',
    max_exp_avg_sq = 'tensor' },
  required_state = { 'step', 'exp_avg', 'exp_avg_sq' },
  check = adam_check,
  update = function(p, g, st, group)
    if st.step == nil then
      st.step = 0
      st.exp_avg = rl.zeros_like(p)
      st.exp_avg_sq = rl.zeros_like(p)
      if group.amsgrad then st.max_exp_avg_sq = rl.zeros_like(p) end
    end
    local beta1, beta2 = group.betas[1], group.betas[2]
    local grad = g
    if group.maximize then grad = g:neg() end
    st.step = st.step + 1
    local step = st.step
    if group.weight_decay ~= 0 then grad = grad:add(p, group.weight_decay) end
    st.exp_avg:mul_(beta1):add_(grad, 1 - beta1)
    st.exp_avg_sq:mul_(beta2):addcmul_(grad, grad, 1 - beta2)
    local bias_correction1 = 1 - beta1 ^ step
    local bias_correction2 = 1 - beta2 ^ step
    local step_size = group.lr / bias_correction1
    local bc2_sqrt = math.sqrt(bias_correction2)
    local denom
    if group.amsgrad then
      if st.max_exp_avg_sq == nil then st.max_exp_avg_sq = rl.zeros_like(p) end
      st.max_exp_avg_sq:maximum_(st.exp_avg_sq)
      denom = st.max_exp_avg_sq:sqrt():div_(bc2_sqrt):add_(group.eps)
    else
      denom = st.exp_avg_sq:sqrt():div_(bc2_sqrt):add_(group.eps)
    end
    p:addcdiv_(st.exp_avg, denom, -step_size)
  end,
}

---------------------------------------------------------------------------
-- Nadam
---------------------------------------------------------------------------

optim.Nadam = define {
  name = 'Nadam',
  options = { 'lr', 'betas', 'eps', 'weight_decay', 'momentum_decay', 'textbook' },
  kinds = { lr = 'number', betas = 'pair', eps = 'number', weight_decay = 'number',
    momentum_decay = 'number', textbook = 'boolean' },
  defaults = { lr = 2e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0,
    momentum_decay = 4e-3, textbook = false },
  state = { step = 'number', mu_product = 'number', exp_avg = 'tensor', exp_avg_sq = 'tensor' },
  required_state = { 'step', 'mu_product', 'exp_avg', 'exp_avg_sq' },
  check = function(g, fail)
    adam_check(g, fail)
    check_nonneg(fail, g, 'momentum_decay', 'momentum_decay value')
  end,
  update = function(p, g, st, group)
    if st.step == nil then
      st.step = 0
      st.mu_product = 1.0
      st.exp_avg = rl.zeros_like(p)
      st.exp_avg_sq = rl.zeros_like(p)
    end
    local beta1, beta2 = group.betas[1], group.betas[2]
    local lr, psi = group.lr, group.momentum_decay
    st.step = st.step + 1
    local step = st.step
    local bias_correction2 = 1 - beta2 ^ step
    local grad = g
    if group.weight_decay ~= 0 then grad = grad:add(p, group.weight_decay) end
    local mu = beta1 * (1.0 - 0.5 * (0.96 ^ (step * psi)))
    local mu_next = beta1 * (1.0 - 0.5 * (0.96 ^ ((step + 1) * psi)))
    st.mu_product = st.mu_product * mu
    local mu_product_next
    if group.textbook then
      mu_product_next = st.mu_product * mu_next
    else
      mu_product_next = st.mu_product * mu * mu_next -- quirk of PyTorch 1.13
    end
    st.exp_avg:mul_(beta1):add_(grad, 1 - beta1)
    st.exp_avg_sq:mul_(beta2):addcmul_(grad, grad, 1 - beta2)
    local denom = st.exp_avg_sq:clone():div_(bias_correction2):sqrt_():add_(group.eps)
    p:addcdiv_(grad, denom, -lr * (1.0 - mu) / (1.0 - st.mu_product))
    p:addcdiv_(st.exp_avg, denom, -lr * mu_next / (1.0 - mu_product_next))
  end,
}
optim.NAdam = optim.Nadam

---------------------------------------------------------------------------
-- learning-rate schedules
---------------------------------------------------------------------------

local LRScheduler = {}
LRScheduler.__index = LRScheduler
optim.LRScheduler = LRScheduler

local function is_optimizer(o)
  return type(o) == 'table' and type(o.param_groups) == 'table' and
      type(o.step) == 'function'
end

local function scheduler_init(self, who, opt, last_epoch, verbose)
  if not is_optimizer(opt) then
    error(string.format('%s: the first argument must be an optimiser (e.g. optim.SGD(...)), ' ..
      'got %s', who, what(opt)), 0)
  end
  self.optimizer = opt
  self.name = who
  if last_epoch == -1 then
    for _, g in ipairs(opt.param_groups) do g.initial_lr = g.lr end
  else
    for gi, g in ipairs(opt.param_groups) do
      if g.initial_lr == nil then
        error(string.format('%s: last_epoch = %d resumes a schedule, but parameter group %d ' ..
          'has no initial_lr (load the optimiser state_dict saved with the schedule first)',
          who, last_epoch, gi), 0)
      end
    end
  end
  self.base_lrs = {}
  for gi, g in ipairs(opt.param_groups) do self.base_lrs[gi] = g.initial_lr end
  self.last_epoch = last_epoch
  self.verbose = verbose
  self.step_count = 0
  self:step()
end

--- sched:step(): advance one epoch and set the optimiser's lrs.
function LRScheduler:step(epoch)
  if epoch ~= nil then
    error(string.format('%s: step() takes no epoch; call it once per epoch, after that ' ..
      "epoch's optimiser steps", self.name), 2)
  end
  self.step_count = self.step_count + 1
  self.last_epoch = self.last_epoch + 1
  local lrs = self:get_lr()
  self.last_lr = {}
  for gi, g in ipairs(self.optimizer.param_groups) do
    g.lr = lrs[gi]
    self.last_lr[gi] = lrs[gi]
    if self.verbose then
      print(string.format('Adjusting learning rate of group %d to %.4e.', gi - 1, lrs[gi]))
    end
  end
end

--- sched:get_last_lr() -> {lr of group 1, ...}, as set by the last step().
function LRScheduler:get_last_lr()
  local r = {}
  for i, v in ipairs(self.last_lr) do r[i] = v end
  return r
end

local SCHED_STATE = { 'last_epoch', 'step_count', 'base_lrs', 'last_lr' }

function LRScheduler:state_dict()
  local sd = {}
  for _, k in ipairs(SCHED_STATE) do sd[k] = copy_value(self[k]) end
  for _, k in ipairs(self.extra_state) do sd[k] = copy_value(self[k]) end
  return sd
end

function LRScheduler:load_state_dict(sd)
  local who = self.name .. ': load_state_dict'
  if type(sd) ~= 'table' then
    error(string.format('%s: expected a table, got %s', who, what(sd)), 2)
  end
  local known = {}
  for _, k in ipairs(SCHED_STATE) do known[k] = true end
  for _, k in ipairs(self.extra_state) do known[k] = true end
  for k in pairs(sd) do
    if not known[k] then
      error(string.format("%s: unexpected field '%s' (was it saved from another schedule?)",
        who, tostring(k)), 2)
    end
  end
  for k in pairs(known) do
    if sd[k] == nil then error(string.format('%s: the saved state lacks %s', who, k), 2) end
  end
  local n = #self.optimizer.param_groups
  if #sd.base_lrs ~= n or #sd.last_lr ~= n then
    error(string.format('%s: the saved state is for %d parameter group(s), the optimiser has %d',
      who, #sd.base_lrs, n), 2)
  end
  local ok, err = pcall(self.check_state, self, sd)
  if not ok then error(who .. ': ' .. err, 2) end
  for k in pairs(known) do self[k] = copy_value(sd[k]) end
  self:_prepare()
end

local MultiStepLR = setmetatable({}, { __index = LRScheduler })
MultiStepLR.__index = MultiStepLR
optim.MultiStepLR = MultiStepLR

local function check_milestones(who, ms)
  if type(ms) ~= 'table' or rl.is_tensor(ms) then
    error(string.format('%s: milestones must be a list of epoch numbers, e.g. {30, 80}, got %s',
      who, what(ms)), 0)
  end
  for i = 1, #ms do
    if not (type(ms[i]) == 'number' and math.tointeger(ms[i])) then
      error(string.format('%s: milestone %d is %s, expected an integer epoch', who, i,
        type(ms[i]) == 'number' and short(ms[i]) or what(ms[i])), 0)
    end
  end
  for k in pairs(ms) do
    if math.type(k) ~= 'integer' or k < 1 or k > #ms then
      error(string.format('%s: milestones must be a plain list (found key %s)', who,
        fmt_value(k)), 0)
    end
  end
end

function MultiStepLR:_prepare()
  self.counts = {}
  for _, m in ipairs(self.milestones) do
    local k = math.tointeger(m)
    self.counts[k] = (self.counts[k] or 0) + 1
  end
end

function MultiStepLR:check_state(sd)
  check_milestones('milestones', sd.milestones)
  if type(sd.gamma) ~= 'number' then error('gamma must be a number', 0) end
end

--- optim.MultiStepLR(opt, {milestones = {...}, gamma = 0.1, last_epoch = -1, verbose = false})
local function new_multistep(opt, opts)
  local who = 'MultiStepLR'
  if type(opts) ~= 'table' or rl.is_tensor(opts) then
    error(string.format('%s: options must be a table {milestones = {...}, gamma = 0.1}, got %s',
      who, what(opts)), 0)
  end
  local valid = { 'milestones', 'gamma', 'last_epoch', 'verbose' }
  for k in pairs(opts) do
    local ok = false
    for _, v in ipairs(valid) do ok = ok or v == k end
    if not ok then unknown_option(who, '', k, valid) end
  end
  if opts.milestones == nil then
    error(string.format('%s: the option milestones is required, e.g. {milestones = {30, 80}}',
      who), 0)
  end
  check_milestones(who, opts.milestones)
  local gamma = opts.gamma == nil and 0.1 or opts.gamma
  if type(gamma) ~= 'number' then
    error(string.format('%s: gamma must be a number, got %s', who, what(gamma)), 0)
  end
  local last_epoch = opts.last_epoch == nil and -1 or opts.last_epoch
  if math.type(last_epoch) ~= 'integer' or last_epoch < -1 then
    error(string.format('%s: last_epoch must be an integer >= -1, got %s', who,
      fmt_value(last_epoch)), 0)
  end
  local verbose = opts.verbose or false
  if type(verbose) ~= 'boolean' then
    error(string.format('%s: verbose must be true or false, got %s', who, what(verbose)), 0)
  end
  local self = setmetatable({ extra_state = { 'milestones', 'gamma' } }, MultiStepLR)
  local ms = {}
  for i, m in ipairs(opts.milestones) do ms[i] = math.tointeger(m) end
  table.sort(ms)
  self.milestones = ms
  self.gamma = gamma
  self:_prepare()
  scheduler_init(self, who, opt, last_epoch, verbose)
  return self
end
MultiStepLR.new = public(new_multistep)

setmetatable(MultiStepLR, {
  __index = LRScheduler,
  __call = function(_, opt, opts) return MultiStepLR.new(opt, opts) end,
})

-- PyTorch's chainable form: at a milestone the current lr is multiplied by
-- gamma^(times the milestone is listed); elsewhere it is left as it is.
function MultiStepLR:get_lr()
  local c = self.counts[self.last_epoch]
  local r = {}
  for gi, g in ipairs(self.optimizer.param_groups) do
    r[gi] = c and g.lr * self.gamma ^ c or g.lr
  end
  return r
end

function MultiStepLR:__tostring()
  return string.format('MultiStepLR(milestones = {%s}, gamma = %s, last_epoch = %d)',
    table.concat(self.milestones, ', '), short(self.gamma), self.last_epoch)
end

---------------------------------------------------------------------------
-- the paper's schedule (METHODS.md, "Optimisation settings")
---------------------------------------------------------------------------

local PAPER_MILESTONES = {
  { 20, { 10, 15 } },
  { 30, { 15, 25 } },
  { 40, { 20, 30 } },
  { 50, { 25, 40 } },
  { 60, { 30, 50 } },
  { 70, { 40, 60 } },
  { 80, { 30, 50, 70 } },
  { 120, { 40, 80, 100 } },
  { 160, { 40, 80, 120, 140 } },
  { math.huge, { 60, 100, 140, 180 } },
}

--- optim.paper_milestones(epochs) -> list of epochs after which the lr is
-- multiplied by 0.1, chosen by the total number of epochs (METHODS.md):
-- <= 20: 10,15; <= 30: 15,25; <= 40: 20,30; <= 50: 25,40; <= 60: 30,50;
-- <= 70: 40,60; <= 80: 30,50,70; <= 120: 40,80,100; <= 160: 40,80,120,140;
-- more: 60,100,140,180.  E.g. SVHN (60 epochs): 30, 50; CIFAR-10 (120):
-- 40, 80, 100; MNIST (160): 40, 80, 120, 140; Restricted ImageNet (70): 40, 60.
function optim.paper_milestones(epochs)
  if math.type(epochs) ~= 'integer' or epochs < 1 then
    error(string.format('paper_milestones: epochs must be a positive integer, got %s',
      type(epochs) == 'number' and short(epochs) or what(epochs)), 2)
  end
  for _, row in ipairs(PAPER_MILESTONES) do
    if epochs <= row[1] then
      local r = {}
      for i, m in ipairs(row[2]) do r[i] = m end
      return r
    end
  end
end

--- optim.paper_scheduler(opt, epochs, [opts]): MultiStepLR with
-- paper_milestones(epochs) and gamma 0.1 (opts: gamma, last_epoch, verbose).
function optim.paper_scheduler(opt, epochs, opts)
  local ok, ms = pcall(optim.paper_milestones, epochs)
  if not ok then error('paper_scheduler: ' .. ms:gsub('^paper_milestones: ', ''), 2) end
  local o = { milestones = ms, gamma = 0.1 }
  if opts ~= nil then
    if type(opts) ~= 'table' then
      error(string.format('paper_scheduler: opts must be a table, got %s', what(opts)), 2)
    end
    for k, v in pairs(opts) do
      if k == 'milestones' then
        error('paper_scheduler: milestones come from the epoch count; use MultiStepLR to ' ..
          'choose them', 2)
      end
      o[k] = v
    end
  end
  return MultiStepLR.new(opt, o)
end

-- `require 'rl.optim'` also makes it reachable as rl.optim (DESIGN.md's
-- `rl.optim.SGD(model:parameters(), ...)`).
if rl.optim == nil then rl.optim = optim end

return optim
