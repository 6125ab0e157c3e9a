-- helpers/tiny_mlp.lua - a small MLP trained in a second on four noisy
-- patterns of 8 x 8 pixels, and 100 test images it classifies: a model for
-- the attack specs that is worth attacking.  Returns model, x, y.
local rl = require 'rl'
local nn = rl.nn

return function()
  local proto = rl.rand({ 4, 64 }, { generator = rl.Generator(99) })
  local function draw(N, g)
    local y = rl.randint(0, 4, { N }, { generator = g })
    local x = (proto:index_select(1, y) + rl.randn({ N, 64 }, { generator = g }) * 0.15):clamp(0, 1)
    return x:view(N, 1, 8, 8), y
  end
  rl.manual_seed(0)
  local m = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
  local opt = rl.optim.SGD(m:parameters(), { lr = 0.1, momentum = 0.9 })
  local g = rl.Generator(1)
  for _ = 1, 150 do
    local x, y = draw(64, g)
    local l = rl.F.cross_entropy(m(x), y)
    opt:zero_grad()
    l:backward()
    opt:step()
  end
  m:eval()
  local x, y = draw(100, rl.Generator(5))
  return m, x, y
end
