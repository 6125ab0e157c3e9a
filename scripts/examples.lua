-- examples.lua - a grid of clean test images (top row), their adversarial
-- versions (middle) and the perturbation amplified to the full grey range
-- (bottom), for a trained run, with class names and the true and predicted
-- labels under each image; EXAMPLES.png and .svg (rl.plot.grid):
--   rllua scripts/examples.lua results/table2/<run-id> [--n 8] [--out STEM]
local rl = require 'rl'
local cli = require 'rl.cli'
local fs = require 'rl.fs'
local json = require 'rl.json'
local metrics = require 'rl.metrics'
local plot = require 'rl.plot'
local trained = require 'rl.trained'

local usage = [[
usage: rllua scripts/examples.lua RUN-DIR [options]
A grid of the first N test images, their adversarial versions under the
run's attack (PGD-10 at the run's eps) and the perturbation, labelled.
  --n N           images (default 8)
  --attack NAME   pgd (default), multitarget or autoattack
  --out STEM      STEM.png and STEM.svg (default RUN-DIR/examples)
  --data-dir DIR  where the dataset files are
  --help]]

cli.main('examples', function()
  local o, args = cli.parse(arg, { usage = usage, args = 1, defaults = { n = 8, attack = 'pgd' },
    options = { n = 'count', out = 'string', ['data-dir'] = 'string', attack = 'string' } })
  local dir = args[1]
  if not dir then error('RUN-DIR is missing\n' .. usage, 0) end
  if not fs.exists(dir .. '/config.json') or not fs.exists(dir .. '/model.safetensors') then
    error(string.format('%s holds no config.json and model.safetensors (a finished run of rl.experiment)', dir), 0)
  end
  if not metrics.attacks[o.attack] then
    error(string.format('--attack: unknown attack %q (%s)', o.attack, metrics.attack_names()), 0)
  end
  if o.n < 1 then error('--n must be at least 1', 0) end
  local cfg = json.read(dir .. '/config.json')
  local x, y, ds = trained.test_images(cfg.dataset, { n = o.n, data_dir = o.data_dir or cfg.data_dir, crop = cfg.crop })
  local model = trained.model(dir .. '/model.safetensors', { model = cfg.model, dataset = cfg.dataset,
    shape = x.shape, classes = #ds.classes })
  model:eval()
  local xa = metrics.adv_examples(model, x, y, { eps = cfg.eps, attack = o.attack, classes = #ds.classes,
    generator = rl.Generator(0) })
  local mag = ((xa - x) / (2 * cfg.eps) + 0.5):clamp(0, 1) -- grey 0.5 = no change
  local pc = rl.no_grad(function() return model(x):argmax(2) end):tolist()
  local pa = rl.no_grad(function() return model(xa):argmax(2) end):tolist()
  local names = ds.classes
  local function name(k) return names[k + 1] or tostring(k) end
  local clean, adv, pert = {}, {}, {}
  for i, t in ipairs(y:tolist()) do
    clean[i] = string.format('true %s\npred %s%s', name(t), name(pc[i]), pc[i] == t and '' or ' (wrong)')
    adv[i] = string.format('pred %s%s', name(pa[i]), pa[i] == t and '' or ' (fooled)')
    pert[i] = string.format('max |d| %.3f', (xa[i] - x[i]):abs():max():item())
  end
  local attack = ({ pgd = 'PGD-10', multitarget = 'MultiTarget', autoattack = 'AutoAttack' })[o.attack]
  local stem = o.out or (dir .. '/examples')
  local parent = stem:match('^(.*)/[^/]*$')
  if parent then fs.mkdir(parent, '--out') end
  local f = plot.grid(stem, {
    title = string.format('%s, %s (%s): %s at eps %g (l-inf)', cfg.dataset, cfg.model, cfg.method, attack, cfg.eps),
    rows = {
      { title = 'clean', images = x, captions = clean },
      { title = attack, images = xa, captions = adv },
      { title = string.format('perturbation\nx 1/(2 eps) = %g\ngrey = 0', 1 / (2 * cfg.eps)), images = mag,
        captions = pert },
    },
  })
  print(string.format('wrote %s and %s', f.png, f.svg))
end)
