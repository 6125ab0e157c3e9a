-- examples.lua - a PNG grid of clean test images (top row), their PGD
-- adversarial versions (middle) and the perturbation magnified to the full
-- range (bottom), for a trained run:
--   rllua scripts/examples.lua results/table2/<run-id> [--n 8] [--out grid.png]
local rl = require 'rl'
local cli = require 'rl.cli'
local json = require 'rl.json'

local usage = 'usage: rllua scripts/examples.lua RUN-DIR [--n N] [--out FILE] [--data-dir DIR]'

-- Images [N, C, H, W] in [0, 1] as one u8 row with a 2-pixel white border.
local function strip(x)
  local N, C, H, W = table.unpack(x.shape)
  local row = rl.full({ C, H + 4, N * (W + 2) + 2 }, 255, { dtype = 'u8' })
  for i = 1, N do
    local img = (x[i] * 255):round():clamp(0, 255):byte()
    row:narrow(2, 3, H):narrow(3, (i - 1) * (W + 2) + 3, W):copy_(img)
  end
  return row
end

cli.main('examples', function()
  local o, args = cli.parse(arg, { usage = usage, args = 1, defaults = { n = 8 },
    options = { n = 'count', out = 'string', ['data-dir'] = 'string' } })
  local dir = args[1]
  if not dir then error('RUN-DIR is missing\n' .. usage, 0) end
  local cfg = assert(json.read(dir .. '/config.json'))
  local test = rl.data.load(cfg.dataset, { split = 'test', data_dir = o.data_dir or cfg.data_dir })
  local model = rl.models.get(cfg.model, { classes = #test.classes, channels = test.x.shape[2] })
  model:load(dir .. '/model.safetensors')
  model:eval()
  local n = math.min(o.n, test.x.shape[1])
  local x = test.x:narrow(1, 1, n):float() / 255
  local y = test.y:narrow(1, 1, n)
  local xa = rl.metrics.adv_examples(model, x, y, { eps = cfg.eps })
  local d = xa - x
  local mag = (d / (2 * cfg.eps) + 0.5):clamp(0, 1) -- 0.5 grey = no change
  local grid = rl.cat({ strip(x), strip(xa), strip(mag) }, 2)
  local out = o.out or (dir .. '/examples.png')
  rl.write_png(out, grid)
  local pc = rl.no_grad(function() return model(x):argmax(2) end)
  local pa = rl.no_grad(function() return model(xa):argmax(2) end)
  print('labels      ', table.concat(y:tolist(), ' '))
  print('clean pred  ', table.concat(pc:tolist(), ' '))
  print('adv pred    ', table.concat(pa:tolist(), ' '))
  print('wrote ' .. out)
end)
