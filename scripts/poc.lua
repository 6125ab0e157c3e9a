-- poc.lua - the appendix's proof of concept: on r-separated data there is
-- a classifier that is both accurate and robust, with local Lipschitz
-- constant 1/r.  It is built from distances to the training set:
--
--   f_j(x) = dist_inf(x, training points whose class is not j) / r
--
-- and predicts argmax_j f_j(x).  Each dist is 1-Lipschitz in l-inf, so f is
-- (1/r)-Lipschitz, and a prediction cannot change under a perturbation of
-- size eps while its margin f_y - max_{j != y} f_j exceeds 2 eps / r.  The
-- script reports r (half the train-train separation), the classifier's
-- test accuracy, its certified robust accuracy at the dataset's eps, and the
-- Lipschitz constant 1/r.
--   rllua scripts/poc.lua [--dataset fashion-mnist] [--subset 5000] [--test-subset 1000]
local rl = require 'rl'
local sep = rl.separation

local usage = 'usage: rllua scripts/poc.lua [--dataset NAME] [--data-dir DIR] [--subset N] [--test-subset N] [--eps X]'

local function args()
  local o = { dataset = 'fashion-mnist', subset = 5000, test_subset = 1000 }
  local i = 1
  while arg[i] do
    local k = arg[i]:match('^%-%-([%w%-]+)$')
    local v = arg[i + 1]
    if not k or v == nil then error(usage, 0) end
    k = k:gsub('%-', '_')
    if o[k] == nil and k ~= 'data_dir' and k ~= 'eps' then error('unknown option --' .. k .. '\n' .. usage, 0) end
    o[k] = tonumber(v) and (math.tointeger(tonumber(v)) or tonumber(v)) or v
    i = i + 2
  end
  return o
end

local function main()
  local o = args()
  local train = rl.data.load(o.dataset, { split = 'train', data_dir = o.data_dir, subset = o.subset, seed = 0 })
  local test = rl.data.load(o.dataset, { split = 'test', data_dir = o.data_dir, subset = o.test_subset, seed = 0 })
  local eps = o.eps or (sep.defaults[sep.canonical(o.dataset)] or {}).eps or 0.1
  local t0 = rl.clock()
  local d = sep.nearest(train.x, train.y, train.x, train.y, { p = 'inf', skip_self = true })
  local r = d:min():item() / 2
  if r <= 0 then error('poc: the training set is not separated (two points of different classes coincide)', 0) end
  -- f_j for every test point and class
  local K, N = #train.classes, test.x.shape[1]
  local cols = {}
  for j = 0, K - 1 do
    local dj = sep.nearest(test.x, rl.full({ N }, j, { dtype = 'i64' }), train.x, train.y, { p = 'inf' })
    cols[#cols + 1] = (dj / r):view(N, 1)
  end
  local f = rl.cat(cols, 2)                          -- [N, K]
  local pred = f:argmax(2)
  local correct = pred:eq(test.y)
  local fy = f:gather(2, test.y:view(N, 1)):view(N)
  local other = f:masked_fill(rl.arange(K):view(1, K):eq(test.y:view(N, 1)), -math.huge):max(2)
  local robust = correct:logical_and((fy - other):gt(2 * eps / r))
  print(string.format('%s: %d training and %d test images (l-inf, pixels in [0, 1])', o.dataset,
    train.x.shape[1], N))
  print(string.format('  train-train separation 2r     %.4f  (r = %.4f)', 2 * r, r))
  print(string.format('  test accuracy                 %.2f %%', 100 * correct:double():mean():item()))
  print(string.format('  certified robust accuracy     %.2f %%  at eps = %g%s', 100 * robust:double():mean():item(), eps,
    eps <= r and '' or '  (eps > r: no guarantee is possible for every point)'))
  print(string.format('  local Lipschitz constant      %.2f  (1/r)', 1 / r))
  print(string.format('  %.1f s', rl.clock() - t0))
end

local ok, err = pcall(main)
if not ok then
  io.stderr:write('poc: ', tostring(err), '\n')
  os.exit(1)
end
