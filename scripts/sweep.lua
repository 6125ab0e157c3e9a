-- sweep.lua - the TRADES beta sweep: for each beta, train with TRADES(beta)
-- and measure test accuracy, adversarial test accuracy and the test local
-- Lipschitz estimate; write sweep.csv, sweep.json and sweep.png / .svg
-- (rl.plot): both accuracies against the Lipschitz estimate, one point per
-- beta, with bars of the standard deviation over --seeds.
--   rllua scripts/sweep.lua --dataset fashion-mnist --quick --betas 0.1,1,3,6
local rl = require 'rl'
local cli = require 'rl.cli'
local exp = require 'rl.experiment'
local fs = require 'rl.fs'
local json = require 'rl.json'
local tables = require 'rl.tables'
local plot = require 'rl.plot'

local usage = [[
usage: rllua scripts/sweep.lua [options]
TRADES beta sweep (default dataset fashion-mnist).
  --betas LIST        comma-separated betas (default 0.1,0.3,1,3,6,10)
]] .. tables.usage_common

cli.main('sweep', function()
  local o = tables.parse(arg or {}, usage, { betas = 'string' })
  -- betas as --seeds are read: no empty entry, none twice, each >= 0
  local list = o.betas or '0.1,0.3,1,3,6,10'
  if list == '' or list:find('^,') or list:find(',,') or list:find(',$') then
    error(string.format('option --betas: %q has an empty entry', list), 0)
  end
  local betas, seen = {}, {}
  for b in list:gmatch('[^,]+') do
    local v = tonumber(b)
    if not v or not (v >= 0) or v == math.huge then
      error(string.format('option --betas: %q is not a beta (a number >= 0)', b), 0)
    end
    if seen[v] then error(string.format('option --betas: beta %g is given twice', v), 0) end
    betas[#betas + 1], seen[v] = v, true
  end
  local seeds = o.seeds or { o.seed or 0 }
  local dataset = o.dataset or 'fashion-mnist'
  local out = o.out or 'results/sweep'
  local function config_of(beta, seed)
    local oo = setmetatable({ seed = seed }, { __index = o })
    local cfg = tables.config(oo, dataset, { method = 'trades', config = { beta = beta } })
    cfg.beta = beta
    return cfg
  end
  if o.list then -- list only: nothing is trained, no directory made
    for _, beta in ipairs(betas) do
      for _, seed in ipairs(seeds) do
        local cfg = config_of(beta, seed)
        print(table.concat({ exp.run_id(cfg), dataset, string.format('beta %g', beta), json.encode(cfg) }, '\t'))
      end
    end
    return
  end
  if o.slurm or o.slurm_dry_run then -- one array task per beta and seed
    local ids = {}
    for _, beta in ipairs(betas) do
      for _, seed in ipairs(seeds) do ids[#ids + 1] = exp.run_id(config_of(beta, seed)) end
    end
    tables.submit(o, 'sweep', ids, out)
    return
  end
  fs.mkdir(out, '--out')
  local data, rows, missing = nil, {}, {}
  local KEYS = { 'test_acc', 'test_adv_acc', 'test_lipschitz', 'test_lipschitz_max' }
  for _, beta in ipairs(betas) do
    local runs, ids = {}, {}
    for _, seed in ipairs(seeds) do
      local cfg = config_of(beta, seed)
      local id = exp.run_id(cfg)
      if o.assemble then -- finished runs only (the Slurm assembly job)
        local m = exp.read_metrics(out .. '/' .. id)
        if m then runs[#runs + 1], ids[#ids + 1] = m, id else missing[#missing + 1] = id end
      elseif o.only == nil or o.only == id then
        data = data or {
          train = rl.data.load(dataset, { split = 'train', data_dir = cfg.data_dir, subset = cfg.subset, seed = cfg.seed }),
          test = rl.data.load(dataset, { split = 'test', data_dir = cfg.data_dir, subset = cfg.test_subset, seed = cfg.seed }),
        }
        io.stderr:write(string.format('== beta %g, seed %d (%s)\n', beta, seed, id))
        runs[#runs + 1] = exp.run(cfg, { out = out, data = data })
        ids[#ids + 1] = id
      end
    end
    if #runs > 0 then
      -- mean and (sample) standard deviation over the seeds
      local r = { beta = beta, run_ids = ids, seeds = #runs }
      for _, k in ipairs(KEYS) do
        local xs = {}
        for i, m in ipairs(runs) do xs[i] = m[k] end
        local mu, sd = tables.mean_sd(xs)
        r[k], r[k .. '_std'] = mu, sd or 0
      end
      rows[#rows + 1] = r
    end
  end
  if o.assemble then tables.check_assembled('sweep', missing, out) end
  -- test_lipschitz: the reference's estimator (the paper's figure); _max: the
  -- maximising one (README, "The two Lipschitz columns")
  local csv, shown = {}, {}
  local function pm(v, sd, scale, fmt)
    return string.format(fmt, scale * v) .. (#seeds > 1 and string.format(' ± ' .. fmt, scale * sd) or '')
  end
  for _, r in ipairs(rows) do
    local line = { string.format('%g', r.beta) }
    for _, k in ipairs(KEYS) do
      line[#line + 1] = string.format('%.6f', r[k])
      line[#line + 1] = string.format('%.6f', r[k .. '_std'])
    end
    csv[#csv + 1] = line
    shown[#shown + 1] = { string.format('%g', r.beta), pm(r.test_acc, r.test_acc_std, 100, '%.2f'),
      pm(r.test_adv_acc, r.test_adv_acc_std, 100, '%.2f'), pm(r.test_lipschitz, r.test_lipschitz_std, 1, '%.3f'),
      pm(r.test_lipschitz_max, r.test_lipschitz_max_std, 1, '%.3f') }
  end
  print(tables.text({ 'beta', 'test acc', 'adv test acc', 'test lipschitz', 'test lipschitz (max)' }, shown,
    { 'r', 'r', 'r', 'r', 'r' }))
  fs.write(out .. '/sweep.csv', tables.csv({ 'beta', 'test_acc', 'test_acc_std', 'adv_test_acc', 'adv_test_acc_std',
    'test_lipschitz', 'test_lipschitz_std', 'test_lipschitz_max', 'test_lipschitz_max_std' }, csv))
  local cfg0 = config_of(betas[1], seeds[1])
  local settings = { dataset = dataset, model = cfg0.model, eps = cfg0.eps, epochs = cfg0.epochs, subset = cfg0.subset,
    seeds = seeds, quick = o.quick or false, version = tables.version() }
  json.write(out .. '/sweep.json', { dataset = dataset, settings = settings, rows = rows })
  if #rows == 0 then return end
  -- the figure: accuracy (%) against the Lipschitz estimate, a point per beta
  local lip, acc, adv, eacc, eadv, labels = {}, {}, {}, {}, {}, {}
  for i, r in ipairs(rows) do
    lip[i], acc[i], adv[i] = r.test_lipschitz, 100 * r.test_acc, 100 * r.test_adv_acc
    eacc[i], eadv[i], labels[i] = 100 * r.test_acc_std, 100 * r.test_adv_acc_std, string.format('beta %g', r.beta)
  end
  local several = #seeds > 1
  local f = plot.figure(out .. '/sweep', {
    title = string.format('TRADES beta sweep: %s, %s, eps %g, epochs %d, seeds %s%s', dataset, cfg0.model, cfg0.eps,
      cfg0.epochs, table.concat(seeds, ','), o.quick and ', QUICK' or ''),
    xlabel = "test local Lipschitz (the paper's estimator: 10 descending steps, as the reference)",
    ylabel = 'accuracy (%)' .. (several and ', bars: std over seeds' or ''),
    key = 'below', -- the points lie anywhere: a key inside would cover some
    series = {
      { title = 'test accuracy', x = lip, y = acc, err = several and eacc or nil, labels = labels },
      { title = 'adversarial test accuracy (PGD-10)', x = lip, y = adv, err = several and eadv or nil },
    },
  })
  io.stderr:write('plot: ' .. f.png .. ', ' .. f.svg .. '\n')
end)
