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
--
-- With --train it also runs the reference's proof of concept
-- (scripts/run_proof_of_concept.sh): RST(4) trained with the settings the
-- reference's model names parse to (lolip/models/__init__.py, get_hyper),
-- as one rl.experiment run under results/poc/<run-id>/, and prints the
-- network's measurements beside the separation classifier's on the same
-- data, written also to <run-id>/poc.json.
--   rllua scripts/poc.lua --train --dataset mnist [--quick] [--list]
local rl = require 'rl'
local cli = require 'rl.cli'
local exp = require 'rl.experiment'
local json = require 'rl.json'
local tables = require 'rl.tables'
local sep = rl.separation

local usage = [[
usage: rllua scripts/poc.lua [options]
The separation-based classifier of the paper's appendix; with --train, also
the reference's proof-of-concept RST run (scripts/run_proof_of_concept.sh).
  --dataset NAME      mnist, fashion-mnist, cifar10, svhn, resimgnet, folder:PATH,
                      synthetic (default fashion-mnist)
  --data-dir DIR      where the dataset files are
  --subset N          training points (default 5000; with --train the whole split)
  --test-subset N     test points (default 1000; with --train the whole split)
  --eps X             the l-inf radius (default: the dataset's; with --train the
                      reference's proof-of-concept radius)
  --threads N         CPU threads
  --train             train the reference's proof-of-concept network
  --help
With --train only (an error without it):
  --epochs N, --eval-subset N, --seed N
                      override the reference's settings
  --quick             a small budget (subset of the data, few epochs)
  --device DEV        cpu (default, or $RL_DEVICE), cuda
  --out DIR           results directory (default results/poc)
  --list              print the run id and its config, run nothing]]

-- The reference's proof-of-concept runs: its model name, and what
-- get_hyper and the training loop make of it.  'advbeta4ce' is RST with
-- lambda 4 (beta4) on summed cross-entropy; 'adam' picks Adam, 'lrem2' lr
-- 1e-2, 'bsN' the batch, 'epN' the epochs; the rest are get_hyper's
-- defaults for the architecture and dataset.  None of the names carries a
-- data-augmentation prefix (Table 3's CIFAR-10 runs are 'aug01-...'), so
-- CIFAR-10 trains without crops and flips; Restricted ImageNet's crops
-- belong to its dataset (resImgnet112v3), not to the model name.
local POC = {
  mnist = {
    reference = 'advbeta4ce-tor-CNN002-bs128ep40',
    config = { model = 'CNN002', method = 'rst', lambda = 4, optimizer = 'sgd', lr = 1e-4, momentum = 0.9,
      batch = 128, epochs = 40, eps = 0.031 },
  },
  cifar10 = {
    reference = 'advbeta4ce-tor-WRN_40_10-adamlrem2ep70',
    config = { model = 'WRN_40_10', method = 'rst', lambda = 4, optimizer = 'adam', lr = 1e-2, momentum = 0,
      batch = 64, epochs = 70, eps = 0.031, crop_pad = 0, flip = false },
  },
  svhn = {
    reference = 'advbeta4ce-tor-WRN_64_10-adamlrem2ep60',
    config = { model = 'WRN_52_12', method = 'rst', lambda = 4, optimizer = 'adam', lr = 1e-2, momentum = 0,
      batch = 64, epochs = 60, eps = 0.031 },
  },
  resimgnet = {
    reference = 'advbeta2ce-tor-ResNet50-adambs128ep30',
    config = { model = 'ResNet50', method = 'rst', lambda = 2, optimizer = 'adam', lr = 1e-2, momentum = 0,
      batch = 128, epochs = 30, eps = 0.005 },
  },
}
-- Fashion-MNIST has MNIST's format (the reference ran MNIST only); the
-- synthetic set is the specs' stand-in for it; folders are read as
-- Restricted ImageNet is.
POC['fashion-mnist'] = POC.mnist
POC.synthetic = POC.mnist

local OPTIONS = {
  subset = 'count', ['test-subset'] = 'count', ['eval-subset'] = 'count', epochs = 'count', seed = 'count',
  eps = 'number', threads = 'count',
  dataset = 'string', ['data-dir'] = 'string', device = 'string', out = 'string',
  train = 'flag', quick = 'flag', list = 'flag',
}
local TRAIN_ONLY = { 'epochs', 'eval_subset', 'seed', 'quick', 'device', 'out', 'list' }

local function args(argv)
  local o = cli.parse(argv, { usage = usage, options = OPTIONS })
  if not o.train then
    for _, k in ipairs(TRAIN_ONLY) do
      if o[k] ~= nil then error(string.format('option --%s needs --train', k:gsub('_', '-')), 0) end
    end
  end
  for _, k in ipairs { 'subset', 'test_subset', 'eval_subset', 'epochs', 'threads' } do
    if o[k] == 0 then error(string.format('option --%s must be at least 1', k:gsub('_', '-')), 0) end
  end
  if o.eps and not (o.eps >= 0 and o.eps < math.huge) then
    error(string.format('option --eps: %s is not a radius (a number >= 0)', tostring(o.eps)), 0)
  end
  if o.threads then rl.set_num_threads(o.threads) end
  o.dataset = o.dataset or 'fashion-mnist'
  return o
end

-- ---------------------------------------------------------------------------
-- the separation-based classifier

-- The images the network sees at test time, as u8 [N, C, H, W]: the
-- loader's centre crop when the config has one (Restricted ImageNet: 72 ->
-- 64); a ragged store (images of their own sizes) is cropped to the
-- config's window or else its evaluation window (rl.data's center_crop).
local function as_seen(ds, crop)
  if crop or rl.data.is_ragged(ds.x) then return ds:center_crop(crop) end
  return ds
end

--- Its numbers on training points train (x u8, y) and test points test:
-- r, test accuracy and certified robust accuracy at eps, and the same on
-- the training points, where they follow from the train-train distances
-- d: x's own class scores d(x) / r >= 2 and every other class 0 (x itself
-- is a point not of that class), so every training point is classified
-- correctly, with margin d(x) / r, and is certified when d(x) > 2 eps.
local function separation_classifier(train, test, eps)
  local d = sep.nearest(train.x, train.y, train.x, train.y, { p = 'inf', skip_self = true })
  local r = d:min():item() / 2
  if r <= 0 then error('the training set is not separated (two points of different classes coincide)', 0) end
  -- f_j for every test point and class
  local K, N = #train.classes, test.x.shape[1]
  local cols = {}
  for j = 0, K - 1 do
    local dj = sep.nearest(test.x, rl.full({ N }, j, { dtype = 'i64' }), train.x, train.y, { p = 'inf' })
    cols[#cols + 1] = (dj / r):view(N, 1)
  end
  local f = rl.cat(cols, 2)                          -- [N, K]
  local correct = f:argmax(2):eq(test.y)
  local fy = f:gather(2, test.y:view(N, 1)):view(N)
  local other = f:masked_fill(rl.arange(K):view(1, K):eq(test.y:view(N, 1)), -math.huge):max(2)
  local robust = correct:logical_and((fy - other):gt(2 * eps / r))
  return {
    n_train = train.x.shape[1], n_test = N, eps = eps, r = r, separation = 2 * r, lipschitz = 1 / r,
    train_acc = 1, train_certified_acc = d:gt(2 * eps):double():mean():item(),
    test_acc = correct:double():mean():item(), test_certified_acc = robust:double():mean():item(),
  }
end

local function print_separation(name, s)
  print(string.format('%s: %d training and %d test images (l-inf, pixels in [0, 1])', name, s.n_train, s.n_test))
  print(string.format('  train-train separation 2r     %.4f  (r = %.4f)', s.separation, s.r))
  print(string.format('  test accuracy                 %.2f %%', 100 * s.test_acc))
  print(string.format('  certified robust accuracy     %.2f %%  at eps = %g%s', 100 * s.test_certified_acc, s.eps,
    s.eps <= s.r and '' or '  (eps > r: no guarantee is possible for every point)'))
  print(string.format('  local Lipschitz constant      %.2f  (1/r)', s.lipschitz))
end

local function classifier_only(o)
  local subset, test_subset = o.subset or 5000, o.test_subset or 1000
  local train = rl.data.load(o.dataset, { split = 'train', data_dir = o.data_dir, subset = subset, seed = 0 })
  local test = rl.data.load(o.dataset, { split = 'test', data_dir = o.data_dir, subset = test_subset, seed = 0 })
  local eps = o.eps or (sep.defaults[sep.canonical(o.dataset)] or {}).eps or 0.1
  local t0 = rl.clock()
  print_separation(o.dataset, separation_classifier(as_seen(train), as_seen(test), eps))
  print(string.format('  %.1f s', rl.clock() - t0))
end

-- ---------------------------------------------------------------------------
-- --train: the reference's proof-of-concept run

local function poc_of(dataset)
  local p = POC[dataset] or (dataset:match('^folder:') and POC.resimgnet)
  if not p then
    local known = {}
    for k in pairs(POC) do known[#known + 1] = k end
    table.sort(known)
    error(string.format('--train: no proof-of-concept run for dataset %q (known: %s, folder:PATH)', dataset,
      table.concat(known, ', ')), 0)
  end
  return p
end

--- The run's config: the dataset's defaults, the reference's
-- proof-of-concept settings, the --quick budget (its epochs win over the
-- reference's), then the command line.
local function train_config(o)
  local p = poc_of(o.dataset)
  local c = { dataset = o.dataset, quick = o.quick, data_dir = o.data_dir, device = o.device }
  for k, v in pairs(p.config) do c[k] = v end
  if o.quick then
    for k in pairs(exp.quick) do c[k] = nil end
  end
  for _, k in ipairs { 'epochs', 'subset', 'test_subset', 'eval_subset', 'seed', 'eps' } do
    if o[k] ~= nil then c[k] = o[k] end
  end
  return exp.config(c), p
end

-- Metrics in a stable order: the usual columns first, then any others.
local ORDER = { 'train_acc', 'test_acc', 'train_adv_acc', 'test_adv_acc', 'train_lipschitz', 'test_lipschitz',
  'train_lipschitz_max', 'test_lipschitz_max', 'gen_gap', 'adv_gap' }

local function metric_keys(m)
  local keys, seen = {}, {}
  for _, k in ipairs(ORDER) do
    if type(m[k]) == 'number' then keys[#keys + 1], seen[k] = k, true end
  end
  local rest = {}
  for k, v in pairs(m) do
    if type(v) == 'number' and not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end

-- The separation classifier's counterpart of a network metric: its
-- accuracy, its certified accuracy for an adversarial one (a lower bound
-- on what any attack leaves), and 1/r for a Lipschitz estimate.
local function counterpart(k, s)
  if k:find('lipschitz') then return s.lipschitz end
  if k == 'gen_gap' then return s.train_acc - s.test_acc end
  if k == 'adv_gap' then return s.train_certified_acc - s.test_certified_acc end
  local split = k:match('^(%a+)_adv_acc$')
  if split then return s[split .. '_certified_acc'] end
  if k:match('^%a+_acc$') then return s[k] end
end

local function show(k, v)
  if v == nil then return '-' end
  if k:find('_acc$') or k:find('_gap$') then return string.format('%.2f %%', 100 * v) end
  return string.format('%.4g', v)
end

local function train_main(o)
  local cfg, p = train_config(o)
  local id = exp.run_id(cfg)
  if o.list then
    print(string.format('%s\t%s\t%s', id, cfg.dataset, p.reference))
    print(json.encode(cfg, { indent = true }))
    return
  end
  local out = o.out or 'results/poc'
  local function load(split, subset)
    return rl.data.load(cfg.dataset, { split = split, data_dir = cfg.data_dir, subset = subset, seed = cfg.seed })
  end
  local data = { train = load('train', cfg.subset), test = load('test', cfg.test_subset) }
  io.stderr:write(string.format('== proof of concept: %s, %s RST(%g) (reference %s), %s\n', cfg.dataset, cfg.model,
    cfg.lambda, p.reference, id))
  local m = exp.run(cfg, { out = out, data = data })

  -- the separation classifier on the run's training set and on the test
  -- points the network was measured on (the first eval_subset)
  local test = data.test
  if cfg.eval_subset and cfg.eval_subset < test:size() then test = test:select(rl.arange(cfg.eval_subset)) end
  local s = separation_classifier(as_seen(data.train, cfg.crop), as_seen(test, cfg.crop), cfg.eps)

  print(string.format('proof of concept on %s: %s trained with RST(%g) at eps = %g (reference model %s)',
    cfg.dataset, cfg.model, cfg.lambda, cfg.eps, p.reference))
  print(string.format('  %d training and %d test points; run %s/%s', s.n_train, s.n_test, out, id))
  local rows = {}
  for _, k in ipairs(metric_keys(m)) do rows[#rows + 1] = { k, show(k, m[k]), show(k, counterpart(k, s)) } end
  print('  ' .. tables.text({ 'metric', 'network', 'separation clf' }, rows, { 'l', 'r', 'r' }):gsub('\n', '\n  '))
  print(string.format('  separation clf: 2r = %.4f (r = %.4f); its adversarial rows are certified accuracies%s',
    s.separation, s.r, s.eps <= s.r and '' or ' (eps > r: no guarantee is possible for every point)'))

  local file = out .. '/' .. id .. '/poc.json'
  json.write(file, {
    dataset = cfg.dataset, run_id = id, config = cfg, metrics = m, separation_classifier = s,
    reference = { script = 'scripts/run_proof_of_concept.sh', model = p.reference },
  })
  io.stderr:write('poc: results in ', file, '\n')
end

cli.main('poc', function()
  local o = args(arg or {})
  if o.train then train_main(o) else classifier_only(o) end
end)
