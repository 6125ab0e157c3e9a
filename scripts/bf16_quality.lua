-- bf16_quality.lua - does training in bf16 cost the paper's columns
-- anything?  TRADES(6) on Fashion-MNIST trained twice from the same seed,
-- in fp32 and under rl.autocast('bf16') (attacks inside training in f32,
-- the default), then measured the same way (in f32): test accuracy, PGD-10
-- accuracy and the empirical local Lipschitz constant on train and test.
-- Each column should agree within one point (accuracies) or 10 %
-- (Lipschitz).  Writes OUT/bf16_quality.{json,md}; the two runs live in
-- OUT/runs/ and resume like any run.
--   rllua scripts/bf16_quality.lua [--epochs 3] [--subset 10000] [--test-subset 1000]
--                                  [--eval-subset 1000] [--method trades6] [--seed 0]
--                                  [--device cpu] [--out results/bf16_quality]
local cli = require 'rl.cli'
local exp = require 'rl.experiment'
local fs = require 'rl.fs'
local json = require 'rl.json'
local tables = require 'rl.tables'

local o = cli.main('bf16_quality', function()
  return cli.parse(arg, {
    usage = 'usage: rllua scripts/bf16_quality.lua [--epochs N] [--subset N] [--test-subset N] ' ..
        '[--eval-subset N] [--method NAME] [--seed N] [--device DEV] [--out DIR]',
    options = { epochs = 'integer', subset = 'integer', ['test-subset'] = 'integer', ['eval-subset'] = 'integer',
      method = 'string', seed = 'integer', device = 'string', out = 'string' },
    defaults = { epochs = 3, subset = 10000, test_subset = 1000, eval_subset = 1000, method = 'trades6', seed = 0,
      device = 'cpu', out = 'results/bf16_quality' },
  })
end)

local COLUMNS = {
  { 'test_acc', 'test acc', 'acc' }, { 'test_adv_acc', 'PGD acc', 'acc' },
  { 'train_lipschitz', 'train Lipschitz', 'lip' }, { 'test_lipschitz', 'test Lipschitz', 'lip' },
}

local results, ids = {}, {}
for _, precision in ipairs { 'fp32', 'bf16' } do
  local cfg = exp.config { dataset = 'fashion-mnist', method = o.method, seed = o.seed, epochs = o.epochs,
    subset = o.subset, test_subset = o.test_subset, eval_subset = o.eval_subset, device = o.device,
    precision = precision }
  local m, id = exp.run(cfg, { out = o.out .. '/runs', label = precision })
  results[precision], ids[precision] = m, id
end

local rows, verdicts, all_ok = {}, {}, true
for _, c in ipairs(COLUMNS) do
  local key, label, kind = c[1], c[2], c[3]
  local a, b = results.fp32[key], results.bf16[key]
  local ok, diff
  if kind == 'acc' then
    diff = string.format('%+.2f points', 100 * (b - a))
    ok = math.abs(b - a) <= 0.01
  else
    diff = string.format('%+.1f %%', 100 * (b - a) / a)
    ok = math.abs(b - a) <= 0.1 * math.abs(a)
  end
  all_ok = all_ok and ok
  local fmt = kind == 'acc' and function(v) return string.format('%.2f', 100 * v) end
      or function(v) return string.format('%.4f', v) end
  rows[#rows + 1] = { label, fmt(a), fmt(b), diff, ok and 'yes' or 'NO' }
  verdicts[key] = { fp32 = a, bf16 = b, within = ok }
end

local head = { 'column', 'fp32', 'bf16', 'bf16 - fp32', 'within 1 point / 10 %' }
local title = string.format('%s on Fashion-MNIST, %d epochs, %d training images, seed %d, %s: fp32 against bf16 ' ..
  'autocast (measured in f32)', o.method, o.epochs, o.subset, o.seed, o.device)
print(title)
print(tables.text(head, rows))
print(all_ok and 'every column agrees' or 'some column does not agree')
fs.mkdir(o.out, 'bf16_quality')
json.write(o.out .. '/bf16_quality.json', { settings = o, runs = ids, columns = verdicts, agree = all_ok })
fs.write(o.out .. '/bf16_quality.md', '# ' .. title .. '\n\n' .. tables.markdown(head, rows) .. '\n')
