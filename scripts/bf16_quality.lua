-- bf16_quality.lua - does training in bf16 cost the paper's columns
-- anything?  TRADES(6) on Fashion-MNIST trained in fp32 and under
-- rl.autocast('bf16') (attacks inside training in f32, the default) from
-- the same seeds, then measured the same way (in f32): test accuracy,
-- PGD-10 accuracy and the empirical local Lipschitz constant on train and
-- test.  Each column's mean over the seeds should agree within one point
-- (accuracies) or 10 % (Lipschitz).
--
-- Why several seeds: a bf16 training leaves fp32's trajectory within the
-- first steps, much as another seed does, and after a few epochs two fp32
-- trainings that differ only by their seed differ by 10-20 % in the
-- Lipschitz columns.  One pair of runs measures that noise as much as
-- bf16; the paired differences over --seeds seeds (bf16 - fp32, seed by
-- seed) and their standard error say how much of a gap is bf16's.
-- --model trains another architecture (the paper's Fashion-MNIST net,
-- CNN001, has no batch norm; ResNet18 has, and so checks bf16 batch norm).
-- Writes OUT/bf16_quality.{json,md}; the runs live in OUT/runs/ and resume
-- like any run (a larger --seeds reuses the runs already made).
--   rllua scripts/bf16_quality.lua [--seeds 3] [--seed 0] [--epochs 3] [--subset 10000]
--                                  [--test-subset 1000] [--eval-subset 1000] [--method trades6]
--                                  [--model CNN001] [--device cpu] [--out results/bf16_quality]
local rl = require 'rl'
local cli = require 'rl.cli'
local exp = require 'rl.experiment'
local fs = require 'rl.fs'
local json = require 'rl.json'
local tables = require 'rl.tables'

local plain = cli.plain

-- The config of one run; the options are checked on the first seed's, so
-- that a bad one fails before any run starts.
local function config(o, seed, precision)
  return exp.config { dataset = 'fashion-mnist', method = o.method, seed = seed, epochs = o.epochs,
    subset = o.subset, test_subset = o.test_subset, eval_subset = o.eval_subset, device = o.device,
    precision = precision, model = o.model }
end

local function parse(argv)
  local o = cli.parse(argv, {
    usage = 'usage: rllua scripts/bf16_quality.lua [--seeds N] [--seed N] [--epochs N] [--subset N] ' ..
        '[--test-subset N] [--eval-subset N] [--method NAME] [--model NAME] [--device DEV] [--out DIR]',
    options = { seeds = 'integer', epochs = 'integer', subset = 'integer', ['test-subset'] = 'integer',
      ['eval-subset'] = 'integer', method = 'string', seed = 'integer', device = 'string', out = 'string',
      model = 'string' },
    defaults = { seeds = 3, epochs = 3, subset = 10000, test_subset = 1000, eval_subset = 1000, method = 'trades6',
      seed = 0, device = 'cpu', out = 'results/bf16_quality', model = 'CNN001' },
  })
  if o.seeds < 1 then error(string.format('--seeds must be at least 1, got %d', o.seeds), 0) end
  local ok, why = pcall(rl.methods.get, o.method)
  if not ok then error('--method: ' .. plain(why):gsub('^methods%.get: ', ''), 0) end
  if not rl.models.is_model(o.model) then
    error(string.format('--model: unknown model %q (known: %s)', o.model, table.concat(rl.models.names(), ', ')), 0)
  end
  ok, why = pcall(rl.device, o.device)
  if not ok then error('--device ' .. o.device .. ': ' .. plain(why), 0) end
  for _, precision in ipairs { 'fp32', 'bf16' } do
    ok, why = pcall(config, o, o.seed, precision)
    if not ok then error(plain(why), 0) end
  end
  return o
end

local COLUMNS = {
  { 'test_acc', 'test acc', 'acc' }, { 'test_adv_acc', 'PGD acc', 'acc' },
  { 'train_lipschitz', 'train Lipschitz', 'lip' }, { 'test_lipschitz', 'test Lipschitz', 'lip' },
}

cli.main('bf16_quality', function()
  local o = parse(arg)
  local SEEDS = {}
  for i = 0, o.seeds - 1 do SEEDS[#SEEDS + 1] = o.seed + i end

  -- runs[precision][i]: the metrics of seed SEEDS[i]
  local runs, ids = { fp32 = {}, bf16 = {} }, { fp32 = {}, bf16 = {} }
  for _, seed in ipairs(SEEDS) do
    for _, precision in ipairs { 'fp32', 'bf16' } do
      local m, id = exp.run(config(o, seed, precision),
        { out = o.out .. '/runs', label = precision .. ' seed ' .. seed })
      table.insert(runs[precision], m)
      table.insert(ids[precision], id)
    end
  end

  local stats = tables.mean_sd

  local rows, verdicts, all_ok = {}, {}, true
  for _, c in ipairs(COLUMNS) do
    local key, label, kind = c[1], c[2], c[3]
    local f, b, d = {}, {}, {}
    for i = 1, #SEEDS do
      f[i], b[i] = runs.fp32[i][key], runs.bf16[i][key]
      d[i] = b[i] - f[i]
    end
    local fm, fsd = stats(f)
    local bm, bsd = stats(b)
    local dm, dsd = stats(d)
    local dse = dsd and dsd / math.sqrt(#d)
    -- accuracies in points, Lipschitz constants as a share of fp32's mean
    local scale = kind == 'acc' and 100 or 100 / math.abs(fm)
    local unit = kind == 'acc' and ' points' or ' %'
    local function value(m, sd)
      local v = kind == 'acc' and string.format('%.2f', 100 * m) or string.format('%.4f', m)
      if not sd then return v end
      return v .. (kind == 'acc' and string.format(' ± %.2f', 100 * sd) or string.format(' ± %.4f', sd))
    end
    local per = {}
    for i = 1, #d do per[i] = string.format(kind == 'acc' and '%+.2f' or '%+.1f', scale * d[i]) end
    local ok = math.abs(dm) * scale <= (kind == 'acc' and 1 or 10)
    all_ok = all_ok and ok
    rows[#rows + 1] = { label, value(fm, fsd), value(bm, bsd),
      string.format('%+.2f', scale * dm) .. (dse and string.format(' ± %.2f', scale * dse) or '') .. unit,
      table.concat(per, ', '), ok and 'yes' or 'NO' }
    verdicts[key] = { fp32 = f, bf16 = b, fp32_mean = fm, bf16_mean = bm, fp32_sd = fsd, bf16_sd = bsd,
      diff_mean = dm, diff_se = dse, within = ok }
  end

  local head = { 'column', 'fp32', 'bf16', 'bf16 - fp32', 'per seed', 'within 1 point / 10 %' }
  local seeds_txt = #SEEDS == 1 and ('seed ' .. SEEDS[1]) or string.format('seeds %d-%d', SEEDS[1], SEEDS[#SEEDS])
  local title = string.format('%s of %s on Fashion-MNIST, %d epochs, %d training images, %s, %s: fp32 against ' ..
    'bf16 autocast (measured in f32)', o.method, o.model, o.epochs, o.subset, seeds_txt, o.device)
  local legend = #SEEDS == 1 and 'One seed: the difference holds seed noise too (see --seeds).'
      or string.format('Means ± standard deviations over %d seeds; bf16 - fp32 is the mean of the paired ' ..
        'differences ± its standard error (points, or %% of fp32\'s mean).', #SEEDS)
  print(title)
  print(tables.text(head, rows))
  print(legend)
  print(all_ok and 'every column agrees' or 'some column does not agree')
  fs.mkdir(o.out, '--out')
  json.write(o.out .. '/bf16_quality.json', { settings = o, seeds = SEEDS, runs = ids, columns = verdicts, agree = all_ok })
  fs.write(o.out .. '/bf16_quality.md', '# ' .. title .. '\n\n' .. tables.markdown(head, rows) .. '\n\n' .. legend .. '\n')
end)
