--- rl.optim's learning-rate schedules: MultiStepLR (PyTorch's semantics) and
-- the paper's milestones (documented in init.lua).
local options = require 'rl.options'

local copy, public, REQUIRED = options.copy, options.public, options.REQUIRED

local sched = {}

-- The schedule base class: a schedule sets the lrs of its optimiser's
-- groups once per epoch from its get_lr(), and saves the fields named by its
-- class's state_rows.
local LRScheduler = {}
LRScheduler.__index = LRScheduler
sched.LRScheduler = LRScheduler

--- LRScheduler.saved_fields(more) -> the rows (for options.check) of what
-- every schedule saves, then `more`: a class's state_rows.
function LRScheduler.saved_fields(more)
  local rows = { noun = 'saved field', { 'last_epoch', 'integer', REQUIRED },
    { 'step_count', 'integer', REQUIRED }, { 'base_lrs', 'numbers', REQUIRED },
    { 'last_lr', 'numbers', REQUIRED } }
  return table.move(more, 1, #more, #rows + 1, rows)
end

-- What every schedule does first: bind to opt, record each group's
-- initial_lr (or, resuming, require it), and take step 0.
local function start(self, who, opt, last_epoch, verbose)
  if not (type(opt) == 'table' and type(opt.param_groups) == 'table' and
        type(opt.step) == 'function') then
    error(string.format('%s: the first argument must be an optimiser (e.g. optim.SGD(...)), ' ..
      'got %s', who, options.what(opt)), 0)
  end
  self.optimizer, self.name, self.verbose, self.base_lrs = opt, who, verbose, {}
  for gi, g in ipairs(opt.param_groups) do
    if last_epoch == -1 then
      g.initial_lr = g.lr
    elseif g.initial_lr == nil then
      error(string.format('%s: last_epoch = %d resumes a schedule, but parameter group %d has ' ..
        'no initial_lr (load the optimiser state_dict saved with the schedule first)', who,
        last_epoch, gi), 0)
    end
    self.base_lrs[gi] = g.initial_lr
  end
  self.last_epoch, self.step_count = last_epoch, 0
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
  self.last_lr = self:get_lr()
  for gi, g in ipairs(self.optimizer.param_groups) do
    g.lr = self.last_lr[gi]
    if self.verbose then
      print(string.format('Adjusting learning rate of group %d to %.4e.', gi - 1, g.lr))
    end
  end
end

--- sched:get_last_lr() -> {lr of group 1, ...}, as set by the last step().
function LRScheduler:get_last_lr() return copy(self.last_lr) end

function LRScheduler:state_dict()
  local sd = {}
  for _, row in ipairs(self.state_rows) do sd[row[1]] = copy(self[row[1]]) end
  return sd
end

LRScheduler.load_state_dict = public(function(self, sd)
  local who = self.name .. ': load_state_dict'
  local st = options.check(who, sd, self.state_rows)
  local n = #self.optimizer.param_groups
  if #st.base_lrs ~= n or #st.last_lr ~= n then
    error(string.format('%s: the saved state is for %d parameter group(s), the optimiser has %d',
      who, #st.base_lrs, n), 0)
  end
  for k, v in pairs(st) do self[k] = v end
end)

local MultiStepLR = setmetatable({}, {
  __index = LRScheduler,
  __call = function(cls, opt, opts) return cls.new(opt, opts) end,
})
MultiStepLR.__index = MultiStepLR
sched.MultiStepLR = MultiStepLR
MultiStepLR.state_rows = LRScheduler.saved_fields {
  { 'milestones', 'integers', REQUIRED }, { 'gamma', 'number', REQUIRED },
}

local MULTISTEP_OPTIONS = {
  -- name         kind        default    range
  { 'milestones', 'integers', REQUIRED },
  { 'gamma',      'number',   0.1 },
  { 'last_epoch', 'integer',  -1,        '>= -1' },
  { 'verbose',    'boolean',  false },
}

local function new_multistep(opt, opts)
  local o = options.check('MultiStepLR', opts, MULTISTEP_OPTIONS)
  table.sort(o.milestones)
  local self = setmetatable({ milestones = o.milestones, gamma = o.gamma }, MultiStepLR)
  start(self, 'MultiStepLR', opt, o.last_epoch, o.verbose)
  return self
end
MultiStepLR.new = public(new_multistep)

-- PyTorch's chainable form: at a milestone the current lr is multiplied by
-- gamma^(times the milestone is listed); elsewhere it is left as it is.
function MultiStepLR:get_lr()
  local c, r = 0, {}
  for _, m in ipairs(self.milestones) do
    if m == self.last_epoch then c = c + 1 end
  end
  for gi, g in ipairs(self.optimizer.param_groups) do
    r[gi] = c > 0 and g.lr * self.gamma ^ c or g.lr
  end
  return r
end

function MultiStepLR:__tostring()
  return string.format('MultiStepLR(milestones = {%s}, gamma = %.6g, last_epoch = %d)',
    table.concat(self.milestones, ', '), self.gamma, self.last_epoch)
end

-- The paper's milestones (docs/methods.md, "Optimisation settings"), by the
-- number of training epochs: { most epochs, milestones }.
local PAPER_MILESTONES = {
  { 20, { 10, 15 } }, { 30, { 15, 25 } }, { 40, { 20, 30 } }, { 50, { 25, 40 } },
  { 60, { 30, 50 } }, { 70, { 40, 60 } }, { 80, { 30, 50, 70 } }, { 120, { 40, 80, 100 } },
  { 160, { 40, 80, 120, 140 } }, { math.huge, { 60, 100, 140, 180 } },
}

-- A fresh list of the milestones for `epochs`, checked in the name of `who`.
local function paper_milestones(who, epochs)
  epochs = options.value(who, 'epochs', epochs, 'integer', '>= 1')
  for _, row in ipairs(PAPER_MILESTONES) do
    if epochs <= row[1] then return copy(row[2]) end
  end
end

--- paper_milestones(epochs): docs/methods.md's milestones for that many
-- epochs (a fresh list; rl.optim's header lists them all).
sched.paper_milestones = public(function(epochs)
  return paper_milestones('paper_milestones', epochs)
end)

--- paper_scheduler(opt, epochs, [opts]): MultiStepLR with the paper's
-- milestones for that many epochs and gamma 0.1 (opts: gamma, last_epoch,
-- verbose).
sched.paper_scheduler = public(function(opt, epochs, opts)
  local ms = paper_milestones('paper_scheduler', epochs)
  local o = options.value('paper_scheduler', 'opts', opts or {}, 'table')
  if o.milestones ~= nil then
    error('paper_scheduler: milestones come from the epoch count; use MultiStepLR to choose ' ..
      'them', 0)
  end
  o.milestones = ms
  return new_multistep(opt, o)
end)

return sched
