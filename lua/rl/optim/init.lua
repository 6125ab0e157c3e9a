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
-- The updates are torch.optim's in PyTorch 1.13 (Debian's python3-torch,
-- which spec/optim_spec.lua checks against), operation by operation.  Each
-- algorithm's file gives its formulas and options: sgd.lua (SGD), adam.lua
-- (Adam, Nadam = NAdam); optimizer.lua holds what they share.
--
-- Parameters are a list of leaf tensors that require grad, or a list of
-- groups {params = {...}, lr = ..., <any other option>} whose missing options
-- come from the constructor's.  step() skips parameters whose .grad is nil
-- and runs with gradient recording off.  Methods:
--   opt:step([closure])   one update; closure (if given) runs first, with
--                         grad mode on, and its result is returned
--   opt:zero_grad([set_to_none = true])  grads to nil, or zeroed in place
--                         with false (also opt:zero_grad{set_to_none = false})
--   opt:state_dict()      {state = {[i] = {...}}, param_groups = {{lr = ...,
--                         params = {i, ...}}}}, i counting the parameters over
--                         the groups from 1; a snapshot (tensors are copies)
--   opt:load_state_dict(sd)  checks everything before changing anything;
--                         tensors are copied to each parameter's dtype, and
--                         hyperparameters come from sd, as in PyTorch
--   opt:add_param_group(group); opt.param_groups (set g.lr between steps);
--   opt.state[p] (the state of parameter p); opt.defaults
--
-- Schedules (lr_scheduler.lua):
--   optim.MultiStepLR(opt, {milestones = {...}, gamma = 0.1, last_epoch = -1,
--     verbose = false}): step() once per epoch, after its optimiser steps;
--     after the k-th call the lr is base_lr * gamma^(milestones <= k), so with
--     milestone m epochs 1..m train at the base lr (a milestone listed twice
--     counts twice); get_last_lr(), state_dict(), load_state_dict(sd).
--   optim.paper_milestones(epochs): docs/methods.md's milestones for that many
--     epochs: <= 20: 10,15; <= 30: 15,25; <= 40: 20,30; <= 50: 25,40;
--     <= 60: 30,50; <= 70: 40,60; <= 80: 30,50,70; <= 120: 40,80,100;
--     <= 160: 40,80,120,140; more: 60,100,140,180.
--   optim.paper_scheduler(opt, epochs, [opts]): MultiStepLR with those
--     milestones and gamma 0.1 (opts may set gamma, last_epoch, verbose).
local rl = require 'rl.base'
local adam = require 'rl.optim.adam'
local lr_scheduler = require 'rl.optim.lr_scheduler'

local optim = {
  Optimizer = require('rl.optim.optimizer').Optimizer,
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
