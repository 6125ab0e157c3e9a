-- sweep.lua - the TRADES beta sweep: for each beta, train with TRADES(beta)
-- and measure test accuracy, adversarial test accuracy and the test local
-- Lipschitz estimate; write sweep.csv, sweep.json and sweep.png (gnuplot):
-- both accuracies against the Lipschitz estimate, one point per beta.
--   rllua scripts/sweep.lua --dataset fashion-mnist --quick --betas 0.1,1,3,6
local rl = require 'rl'
local cli = require 'rl.cli'
local exp = require 'rl.experiment'
local fs = require 'rl.fs'
local json = require 'rl.json'
local tables = require 'rl.tables'

local usage = [[
usage: rllua scripts/sweep.lua [options]
TRADES beta sweep (default dataset fashion-mnist).
  --betas LIST        comma-separated betas (default 0.1,0.3,1,3,6,10)
]] .. tables.usage_common

cli.main('sweep', function()
  local o = tables.parse(arg or {}, usage, { betas = 'string' })
  local betas = {}
  for b in (o.betas or '0.1,0.3,1,3,6,10'):gmatch('[^,]+') do
    betas[#betas + 1] = tonumber(b) or error('--betas: not a number: ' .. b, 0)
  end
  local dataset = o.dataset or 'fashion-mnist'
  local out = o.out or 'results/sweep'
  local function config_of(beta)
    local cfg = tables.config(o, dataset, { method = 'trades', config = { beta = beta } })
    cfg.beta = beta
    return cfg
  end
  if o.list then -- list only: nothing is trained, no directory made
    for _, beta in ipairs(betas) do
      local cfg = config_of(beta)
      print(table.concat({ exp.run_id(cfg), dataset, string.format('beta %g', beta), json.encode(cfg) }, '\t'))
    end
    return
  end
  fs.mkdir(out, 'sweep')
  local data, rows = nil, {}
  for _, beta in ipairs(betas) do
    local cfg = config_of(beta)
    local id = exp.run_id(cfg)
    if o.only == nil or o.only == id then
      data = data or {
        train = rl.data.load(dataset, { split = 'train', data_dir = cfg.data_dir, subset = cfg.subset, seed = cfg.seed }),
        test = rl.data.load(dataset, { split = 'test', data_dir = cfg.data_dir, subset = cfg.test_subset, seed = cfg.seed }),
      }
      io.stderr:write(string.format('== beta %g (%s)\n', beta, id))
      local m = exp.run(cfg, { out = out, data = data })
      rows[#rows + 1] = { beta = beta, test_acc = m.test_acc, adv_acc = m.test_adv_acc,
        lipschitz = m.test_lipschitz, lipschitz_max = m.test_lipschitz_max, run_id = id }
    end
  end
  -- test_lipschitz: the reference's estimator (the paper's figure); _max: the
  -- maximising one (README, "The two Lipschitz columns")
  local csv, shown = {}, {}
  for _, r in ipairs(rows) do
    csv[#csv + 1] = { string.format('%g', r.beta), string.format('%.6f', r.test_acc), string.format('%.6f', r.adv_acc),
      string.format('%.6f', r.lipschitz), string.format('%.6f', r.lipschitz_max) }
    shown[#shown + 1] = { string.format('%g', r.beta), string.format('%.2f', 100 * r.test_acc),
      string.format('%.2f', 100 * r.adv_acc), string.format('%.3f', r.lipschitz), string.format('%.3f', r.lipschitz_max) }
  end
  print(tables.text({ 'beta', 'test acc', 'adv test acc', 'test lipschitz', 'test lipschitz (max)' }, shown,
    { 'r', 'r', 'r', 'r', 'r' }))
  fs.write(out .. '/sweep.csv',
    tables.csv({ 'beta', 'test_acc', 'adv_test_acc', 'test_lipschitz', 'test_lipschitz_max' }, csv))
  json.write(out .. '/sweep.json', { dataset = dataset, rows = rows })
  -- the plot: accuracy (%) against the Lipschitz estimate, labelled by beta
  local gp = out .. '/sweep.gp'
  local f = assert(io.open(gp, 'w'))
  f:write(string.format([[
set terminal pngcairo size 800,560 noenhanced
set output '%s/sweep.png'
set datafile separator ','
set key below
set offsets graph 0.05, graph 0.05, graph 0.08, graph 0.05
set title 'TRADES beta sweep on %s'
set xlabel 'test local Lipschitz (the paper''s estimator: the reference code, 10 descending steps)'
set ylabel 'accuracy (%%)'
set grid
plot '%s/sweep.csv' using 4:($2*100) skip 1 with linespoints pt 7 title 'test accuracy', \
     '' using 4:($3*100) skip 1 with linespoints pt 5 title 'adversarial test accuracy', \
     '' using 4:($2*100):(sprintf('%%g', $1)) skip 1 with labels offset 0,1 notitle
]], out, dataset, out))
  f:close()
  local ok = os.execute("gnuplot '" .. gp .. "' 2>/dev/null")
  if not (ok == true or ok == 0) then
    -- pngcairo may be missing from gnuplot-nox: fall back to the png terminal
    local s = io.open(gp):read('a'):gsub('pngcairo size 800,560 noenhanced', 'png size 800,560')
    f = assert(io.open(gp, 'w'))
    f:write(s)
    f:close()
    ok = os.execute("gnuplot '" .. gp .. "'")
  end
  io.stderr:write((ok == true or ok == 0) and ('plot: ' .. out .. '/sweep.png\n')
    or 'plot: gnuplot failed (is gnuplot-nox installed?)\n')
end)
