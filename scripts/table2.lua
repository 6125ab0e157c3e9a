-- table2.lua - Table 2 of "A Closer Look at Accuracy vs. Robustness": MNIST
-- and SVHN, one row per training method; train and test accuracy,
-- adversarial test accuracy, test local Lipschitz estimate, and the gaps.
-- The 2-core CPU job:  rllua scripts/table2.lua --dataset fashion-mnist --quick
local tables = require 'rl.tables'

tables.main({
  name = 'table2',
  title = 'Table 2: accuracy, robustness and local Lipschitzness',
  datasets = { 'mnist', 'svhn' },
  rows = tables.method_rows,
}, 'usage: rllua scripts/table2.lua [options]\nReproduces Table 2 (default datasets: mnist, svhn).\n'
  .. tables.usage_common)
