-- eps_curve.lua - robust accuracy against the radius: the model's accuracy
-- under an attack at each eps of a list, on the first N test images, with
-- 95 % Wilson intervals; writes STEM.json, STEM.csv and STEM.png / .svg.
--   rllua scripts/eps_curve.lua results/table2/<run-id>/model.safetensors --dataset fashion-mnist
local rl = require 'rl'
local cli = require 'rl.cli'
local exp = require 'rl.experiment'
local fs = require 'rl.fs'
local json = require 'rl.json'
local metrics = require 'rl.metrics'
local plot = require 'rl.plot'
local tables = require 'rl.tables'
local trained = require 'rl.trained'


local usage = [[
usage: rllua scripts/eps_curve.lua MODEL.safetensors --dataset NAME [options]
Robust accuracy of the weights in MODEL.safetensors against eps (l-inf).
  --dataset NAME   the dataset (required)
  --model NAME     the architecture (default: the dataset's in the paper)
  --eps LIST       comma-separated radii (default: 0 to 3x the paper's eps,
                   in 8 steps)
  --attack NAME    pgd (PGD-10, default), autoattack (standard, no checks)
                   or multitarget
  --n N            the first N test images (default 1000)
  --batch B        images per batch (default 256)
  --seed S         the attacks' seed (default 0)
  --data-dir DIR   where the dataset files are
  --out STEM       output files' stem (default eps_curve)
  --help]]

cli.main('eps_curve', function()
  local o, args = cli.parse(arg or {}, { usage = usage, args = 1, defaults = { n = 1000, batch = 256, seed = 0,
    attack = 'pgd', out = 'eps_curve' }, options = { dataset = 'string', model = 'string', eps = 'string',
    attack = 'string', n = 'count', batch = 'count', seed = 'count', ['data-dir'] = 'string', out = 'string' } })
  if not args[1] then error('give the model file\n' .. usage, 0) end
  if not o.dataset then error('--dataset is required\n' .. usage, 0) end
  if not metrics.attacks[o.attack] then
    error(string.format('--attack: unknown attack %q (%s)', o.attack, metrics.attack_names()), 0)
  end
  if o.n < 1 then error('--n must be at least 1', 0) end
  if o.batch < 1 then error('--batch must be at least 1', 0) end
  if not fs.exists(args[1]) then error(string.format('%s: no such file', args[1]), 0) end
  local cfg = cli.try('', exp.config, { dataset = o.dataset })
  o.model = o.model or cfg.model
  local radii = {}
  if o.eps then
    -- as sweep.lua reads --betas: an empty entry is a slip, not a list's end
    if o.eps == '' or o.eps:find('^,') or o.eps:find(',,') or o.eps:find(',$') then
      error(string.format('--eps: %q has an empty entry (give a list such as 0,0.05,0.1)', o.eps), 0)
    end
    for v in o.eps:gmatch('[^,]+') do
      local e = tonumber(v)
      if not e or not (e >= 0) or e == math.huge then
        error(string.format('--eps: %q is not a radius >= 0', v), 0)
      end
      radii[#radii + 1] = e
    end
  else
    for i = 0, 8 do radii[#radii + 1] = cfg.eps * 3 * i / 8 end
  end
  local x, y, ds = cli.try('', trained.test_images, o.dataset, { n = o.n, data_dir = o.data_dir, crop = cfg.crop })
  local model = cli.try('', trained.model, args[1], { model = o.model, dataset = o.dataset, shape = x.shape,
    classes = #ds.classes })
  model:eval()
  local n = x.shape[1]
  local rows, acc, lo95, hi95 = {}, {}, {}, {}
  for i, eps in ipairs(radii) do
    local correct = 0
    for at = 1, n, o.batch do
      local m = math.min(o.batch, n - at + 1)
      local xb, yb = x:narrow(1, at, m), y:narrow(1, at, m)
      local a = eps == 0 and metrics.accuracy(model, xb, yb) or metrics.adv_accuracy(model, xb, yb, {
        eps = eps, attack = o.attack, classes = #ds.classes, seed = o.seed }) -- pgd: rl.Generator(seed) per batch
      correct = correct + a * m
    end
    local p = correct / n
    local lo, hi = tables.wilson(p, n)
    rows[i] = { eps = eps, robust_accuracy = p, lo95 = lo, hi95 = hi, n = n }
    -- the bar is the interval itself, lo to hi (not symmetric about p); min
    -- and max keep a rounding at p = 0 or 1 from leaving p outside it
    acc[i], lo95[i], hi95[i] = 100 * p, 100 * math.min(lo, p), 100 * math.max(hi, p)
    io.stderr:write(string.format('eps %-8g robust accuracy %6.2f%% [%.1f, %.1f]\n', eps, 100 * p, 100 * lo, 100 * hi))
  end
  local dir = o.out:match('^(.*)/[^/]*$')
  if dir then fs.mkdir(dir, '--out') end
  local settings = { model_file = args[1], model = o.model, dataset = o.dataset, attack = o.attack, n = n,
    seed = o.seed, norm = 'linf', version = tables.version() }
  json.write(o.out .. '.json', { settings = settings, rows = rows })
  local csv = { 'eps,robust_accuracy,lo95,hi95,n' }
  for _, r in ipairs(rows) do
    csv[#csv + 1] = string.format('%g,%.6f,%.6f,%.6f,%d', r.eps, r.robust_accuracy, r.lo95, r.hi95, r.n)
  end
  fs.write(o.out .. '.csv', table.concat(csv, '\n') .. '\n')
  local attack = ({ pgd = 'PGD-10', autoattack = 'AutoAttack', multitarget = 'MultiTarget' })[o.attack]
  local f = plot.figure(o.out, {
    title = string.format('Robust accuracy against eps: %s on %s, %s, %d test images, seed %d', o.model,
      o.dataset, attack, n, o.seed),
    xlabel = 'eps (l-inf radius; pixels in [0, 1])',
    ylabel = 'robust accuracy (%), 95% Wilson interval', yrange = { -2, 104 },
    series = { { title = attack .. ' (eps = 0: clean accuracy)', x = radii, y = acc, lo = lo95, hi = hi95 } },
  })
  print(string.format('wrote %s.json, %s.csv, %s, %s', o.out, o.out, f.png, f.svg))
end)
