-- table3.lua - Table 3 of "A Closer Look at Accuracy vs. Robustness":
-- CIFAR-10 (WRN-40-10) and Restricted ImageNet (ResNet-50), one row per
-- training method, the columns of Table 2.
local tables = require 'rl.tables'

tables.main({
  name = 'table3',
  title = 'Table 3: accuracy, robustness and local Lipschitzness',
  datasets = { 'cifar10', 'resimgnet' },
  rows = tables.method_rows,
}, 'usage: rllua scripts/table3.lua [options]\nReproduces Table 3 (default datasets: cifar10, resimgnet).\n'
  .. tables.usage_common)
