-- bf16_quality.lua - does training in bf16 cost the paper's columns
-- anything?  TRADES(6) on Fashion-MNIST trained twice from the same seed,
-- in fp32 and under rl.autocast('bf16') (attacks inside training in f32,
-- the default), then measured the same way (in f32): test accuracy, PGD-10
-- accuracy and the empirical local Lipschitz constant on train and test.
-- Each column should agree within one point (accuracies) or 10 %
-- (Lipschitz).  A third run, fp32 from the next seed, shows how far two
-- fp32 trainings differ by their seed alone: the noise a bf16 difference
-- is measured against.  Writes OUT/bf16_quality.{json,md}; the runs live in
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
for _, run in ipairs { { 'fp32', 'fp32', o.seed }, { 'bf16', 'bf16', o.seed }, { 'seed', 'fp32', o.seed + 1 } } do
  local cfg = exp.config { dataset = 'fashion-mnist', method = o.method, seed = run[3], epochs = o.epochs,
    subset = o.subset, test_subset = o.test_subset, eval_subset = o.eval_subset, device = o.device,
    precision = run[2] }
  local m, id = exp.run(cfg, { out = o.out .. '/runs', label = run[2] .. ' seed ' .. run[3] })
  results[run[1]], ids[run[1]] = m, id
end

local rows, verdicts, all_ok = {}, {}, true
for _, c in ipairs(COLUMNS) do
  local key, label, kind = c[1], c[2], c[3]
  local a, b, s = results.fp32[key], results.bf16[key], results.seed[key]
  local function diff(v)
    if kind == 'acc' then return string.format('%+.2f points', 100 * (v - a)) end
    return string.format('%+.1f %%', 100 * (v - a) / a)
  end
  local ok = kind == 'acc' and math.abs(b - a) <= 0.01 or kind == 'lip' and math.abs(b - a) <= 0.1 * math.abs(a)
  all_ok = all_ok and ok
  local fmt = kind == 'acc' and function(v) return string.format('%.2f', 100 * v) end
      or function(v) return string.format('%.4f', v) end
  rows[#rows + 1] = { label, fmt(a), fmt(b), diff(b), ok and 'yes' or 'NO', fmt(s), diff(s),
    math.abs(b - a) <= math.abs(s - a) and 'yes' or 'no' }
  verdicts[key] = { fp32 = a, bf16 = b, fp32_next_seed = s, within = ok }
end

local head = { 'column', 'fp32', 'bf16', 'bf16 - fp32', 'within 1 point / 10 %',
  string.format('fp32 seed %d', o.seed + 1), 'its - fp32', 'bf16 within the seed gap' }
local title = string.format('%s on Fashion-MNIST, %d epochs, %d training images, seed %d, %s: fp32 against bf16 ' ..
  'autocast (measured in f32)', o.method, o.epochs, o.subset, o.seed, o.device)
print(title)
print(tables.text(head, rows))
print(all_ok and 'every column agrees' or 'some column does not agree')
fs.mkdir(o.out, 'bf16_quality')
json.write(o.out .. '/bf16_quality.json', { settings = o, runs = ids, columns = verdicts, agree = all_ok })
fs.write(o.out .. '/bf16_quality.md', '# ' .. title .. '\n\n' .. tables.markdown(head, rows) .. '\n')
