-- table4.lua - Table 4 of "A Closer Look at Accuracy vs. Robustness":
-- dropout.  SVHN and CIFAR-10 (WRN-40-10), each method with and without
-- dropout between the two 3x3 convolutions of every block.
--   rllua scripts/table4.lua --dataset svhn --dropout 0.5
local tables = require 'rl.tables'

local exp = require 'rl.experiment'

local usage = [[
usage: rllua scripts/table4.lua [options]
Reproduces Table 4 (default datasets: svhn, cifar10).
  --dropout P         the dropout rate of the "+ dropout" rows, in (0, 1)
                      (default: the paper's, SVHN 0.5 and CIFAR-10 0.2)
]] .. tables.usage_common

local methods = { { 'Natural', 'natural' }, { 'AT', 'at' }, { 'RST(2)', 'rst2' },
  { 'TRADES(3)', 'trades3' }, { 'TRADES(6)', 'trades6' } }

tables.main({
  name = 'table4',
  title = 'Table 4: dropout',
  datasets = { 'svhn', 'cifar10' },
  rows = {},
}, usage, { dropout = 'number' }, function(spec, o)
  -- 0 would make each "+ dropout" row its plain row again (one run id for two rows)
  if o.dropout and not (o.dropout > 0 and o.dropout < 1) then
    error(string.format('option --dropout: a rate in (0, 1) is needed, got %g%s', o.dropout,
      o.dropout == 0 and ' (the rows without dropout are in the table already)' or ''), 0)
  end
  local function rate(dataset)
    local p = o.dropout or exp.default_dropout(dataset)
    if not p then
      error(string.format('the paper has no dropout rate for %s; give one with --dropout', dataset), 0)
    end
    return { drop = p }
  end
  -- learning rates follow the per-method rule of Tables 2 and 3 (rl.experiment)
  for _, m in ipairs(methods) do
    spec.rows[#spec.rows + 1] = { label = m[1], method = m[2], config = { drop = 0 } }
    spec.rows[#spec.rows + 1] = { label = m[1] .. ' + dropout', method = m[2], config = rate }
  end
end)
