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
-- operation by operation, so that the same gradients give the same numbers.
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
-- One file per algorithm, each with its formulas at the top:
--   sgd.lua           SGD (lr required; momentum, dampening, weight_decay,
--                     nesterov, maximize)
--   adam.lua          Adam (amsgrad, maximize) and Nadam, also NAdam
--   optimizer.lua     what they share: option checks, parameter groups,
--                     step, zero_grad, state_dict / load_state_dict
--   lr_scheduler.lua  MultiStepLR, paper_milestones, paper_scheduler
local rl = require 'rl.base'
local base = require 'rl.optim.optimizer'
local adam = require 'rl.optim.adam'
local lr_scheduler = require 'rl.optim.lr_scheduler'

local optim = {
  Optimizer = base.Optimizer,
  SGD = require 'rl.optim.sgd',
  Adam = adam.Adam,
  Nadam = adam.Nadam,
  NAdam = adam.Nadam,
  LRScheduler = lr_scheduler.LRScheduler,
  MultiStepLR = lr_scheduler.MultiStepLR,
  paper_milestones = lr_scheduler.paper_milestones,
  paper_scheduler = lr_scheduler.paper_scheduler,
}

-- `require 'rl.optim'` also makes it reachable as rl.optim (DESIGN.md's
-- `rl.optim.SGD(model:parameters(), ...)`).
if rl.optim == nil then rl.optim = optim end

return optim
