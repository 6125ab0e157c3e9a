-- curves.lua - learning curves of finished or running runs, from their
-- log.csv: training loss and training accuracy against the epoch, one line
-- per run, as curves.png / curves.svg (loss) and curves_acc.png / .svg.
--   rllua scripts/curves.lua results/table2/*CNN001-at-* results/table2/*trades6* --out results/curves
local cli = require 'rl.cli'
local fs = require 'rl.fs'
local json = require 'rl.json'
local plot = require 'rl.plot'

local usage = [[
usage: rllua scripts/curves.lua RUN-DIR... [--out STEM]
Plots each run's log.csv (written by rl.experiment, one line per epoch):
STEM.png/.svg the training loss, STEM_acc.png/.svg the training accuracy,
against the epoch.  STEM defaults to ./curves.
  --out STEM   where the figures go (STEM.png, STEM.svg, STEM_acc.*)
  --help]]

-- The columns of a run's log.csv, by name: {epoch = {...}, loss = {...}, ...}.
local function read_log(dir)
  local f = io.open(dir .. '/log.csv')
  if not f then error(string.format('%s has no log.csv (is it a run directory of rl.experiment?)', dir), 0) end
  local head, cols = nil, {}
  for line in f:lines() do
    local cells = {}
    for c in line:gmatch('[^,]+') do cells[#cells + 1] = c end
    if not head then
      head = cells
      for _, h in ipairs(head) do cols[h] = {} end
    else
      for i, h in ipairs(head) do cols[h][#cols[h] + 1] = tonumber(cells[i]) end
    end
  end
  f:close()
  if not cols.epoch or not cols.loss or not cols.train_acc then
    error(string.format('%s/log.csv lacks the columns epoch, loss, train_acc', dir), 0)
  end
  if #cols.epoch == 0 then error(string.format('%s/log.csv has no finished epoch yet', dir), 0) end
  return cols
end

cli.main('curves', function()
  local o, dirs = cli.parse(arg or {}, { usage = usage, options = { out = 'string' }, args = math.huge })
  if #dirs == 0 then error('give one or more run directories\n' .. usage, 0) end
  local stem = o.out or 'curves'
  local loss, acc, what = {}, {}, {}
  for _, d in ipairs(dirs) do
    d = d:gsub('/+$', '')
    local cols = read_log(d)
    local cfg = fs.exists(d .. '/config.json') and json.read(d .. '/config.json') or {}
    local name = cfg.method and string.format('%s (seed %s)', cfg.method, tostring(cfg.seed)) or d:match('[^/]+$')
    what[#what + 1] = cfg.dataset and string.format('%s, %s, eps %g, batch %s', cfg.dataset, cfg.model or '?',
      cfg.eps or 0, tostring(cfg.batch)) or nil
    loss[#loss + 1] = { title = name, x = cols.epoch, y = cols.loss }
    local pc = {}
    for i, a in ipairs(cols.train_acc) do pc[i] = 100 * a end
    acc[#acc + 1] = { title = name, x = cols.epoch, y = pc }
  end
  table.sort(what)
  local setting = what[1] and (' (' .. what[1] .. (what[#what] ~= what[1] and ', ...' or '') .. ')') or ''
  local dir = stem:match('^(.*)/[^/]*$')
  if dir then fs.mkdir(dir, '--out') end
  local a = plot.figure(stem, { title = 'Training loss per epoch' .. setting, xlabel = 'epoch',
    ylabel = 'training loss per example (the method\'s objective)', series = loss })
  local b = plot.figure(stem .. '_acc', { title = 'Training accuracy per epoch' .. setting, xlabel = 'epoch',
    ylabel = 'training accuracy (%, on the batches the method trained on)', yrange = { -2, 104 },
    key = 'bottom right', series = acc })
  print(string.format('wrote %s, %s, %s, %s', a.png, a.svg, b.png, b.svg))
end)
