-- table4.lua - Table 4 of "A Closer Look at Accuracy vs. Robustness":
-- dropout.  SVHN and CIFAR-10 (WRN-40-10), each method with and without
-- dropout between the two 3x3 convolutions of every block.
--   rllua scripts/table4.lua --dataset svhn --dropout 0.5
local tables = require 'rl.tables'

local usage = [[
usage: rllua scripts/table4.lua [options]
Reproduces Table 4 (default datasets: svhn, cifar10).
  --dropout P         the dropout rate of the "+ dropout" rows (default 0.2;
                      the paper's variants are 0.2 and 0.5)
]] .. tables.usage_common

local methods = { { 'Natural', 'natural' }, { 'AT', 'at' }, { 'RST(2)', 'rst2' },
  { 'TRADES(3)', 'trades3' }, { 'TRADES(6)', 'trades6' } }

tables.main({
  name = 'table4',
  title = 'Table 4: dropout',
  datasets = { 'svhn', 'cifar10' },
  rows = {},
}, usage, { dropout = 'number' }, function(spec, o)
  local p = o.dropout or 0.2
  for _, m in ipairs(methods) do
    spec.rows[#spec.rows + 1] = { label = m[1], method = m[2], config = { drop = 0 } }
    spec.rows[#spec.rows + 1] = { label = m[1] .. ' + dropout', method = m[2], config = { drop = p } }
  end
end)
