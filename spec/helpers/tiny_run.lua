--- A training run small enough to kill and resume many times in a spec:
-- CNN001 on 48 synthetic images, 3 epochs, CPU, under a second.
--   rllua spec/helpers/tiny_run.lua OUT_DIR
-- The run directory is the one directory under OUT_DIR.  RL_TEST_KILL_AT
-- (see rl.experiment) ends the run at a named point.
local exp = require 'rl.experiment'

local out = assert(arg[1], 'usage: tiny_run.lua OUT_DIR')
local cfg = exp.config { dataset = 'synthetic', model = 'CNN001', method = 'natural', epochs = 3, batch = 16,
  subset = 48, test_subset = 16, eval_subset = 8, device = 'cpu' }
exp.run(cfg, { out = out, quiet = true })
