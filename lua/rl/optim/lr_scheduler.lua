--- rl.optim's learning-rate schedules: MultiStepLR (PyTorch's semantics) and
-- the paper's milestones.
--
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
local rl = require 'rl.base'
local base = require 'rl.optim.optimizer'

local what, short, fmt_value, copy_value = base.what, base.short, base.fmt_value, base.copy_value

local sched = {}

---------------------------------------------------------------------------
-- the schedule base class
---------------------------------------------------------------------------

local LRScheduler = {}
LRScheduler.__index = LRScheduler
sched.LRScheduler = LRScheduler

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
  return copy_value(self.last_lr)
end

-- What every schedule saves, before its own extra_state.
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

---------------------------------------------------------------------------
-- MultiStepLR
---------------------------------------------------------------------------

local MultiStepLR = {}
MultiStepLR.__index = MultiStepLR
sched.MultiStepLR = MultiStepLR

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

-- counts[epoch] = how many times that epoch is a milestone.
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
  base.reject_unknown(who, '', opts, { 'milestones', 'gamma', 'last_epoch', 'verbose' })
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
MultiStepLR.new = base.public(new_multistep)

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

-- { most epochs, milestones }, by increasing epoch count.
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

--- optim.paper_milestones(epochs) -> a fresh list of the epochs after which
-- the lr is multiplied by 0.1 (the table above).  E.g. SVHN (60 epochs):
-- 30, 50; CIFAR-10 (120): 40, 80, 100; MNIST (160): 40, 80, 120, 140;
-- Restricted ImageNet (70): 40, 60.
function sched.paper_milestones(epochs)
  if math.type(epochs) ~= 'integer' or epochs < 1 then
    error(string.format('paper_milestones: epochs must be a positive integer, got %s',
      type(epochs) == 'number' and short(epochs) or what(epochs)), 2)
  end
  for _, row in ipairs(PAPER_MILESTONES) do
    if epochs <= row[1] then return copy_value(row[2]) end
  end
end

--- optim.paper_scheduler(opt, epochs, [opts]): MultiStepLR with
-- paper_milestones(epochs) and gamma 0.1 (opts: gamma, last_epoch, verbose).
function sched.paper_scheduler(opt, epochs, opts)
  local ok, ms = pcall(sched.paper_milestones, epochs)
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

return sched
