-- poc_spec.lua - scripts/poc.lua --train: the proof-of-concept configs it
-- builds against the reference's scripts/run_proof_of_concept.sh (as
-- lolip/models/__init__.py's get_hyper parses its model names), the
-- reference's WRN_64_10 class (WideResNet-52-12), and a tiny run end to end.
local rl = require 'rl'
local json = rl.json

local shell = require 'helpers.shell'
local sh, tmpdir = shell.sh, shell.tmpdir

-- `--train --list`: the run id, dataset and reference model name on the
-- first line, then the config as JSON
local function listed(args)
  local out, code = sh(shell.rllua .. ' scripts/poc.lua --train --list ' .. args)
  assert.are.equal(0, code, out)
  local first, rest = out:match('^([^\n]*)\n(.*)$')
  local id, dataset, ref = first:match('^(%S+)\t(%S+)\t(%S+)$')
  assert.truthy(id, out)
  return json.decode(rest), id, dataset, ref
end

describe('poc.lua --train configs', function()
  -- run_proof_of_concept.sh's four runs, as get_hyper reads their names
  local want = {
    mnist = { ref = 'advbeta4ce-tor-CNN002-bs128ep40', model = 'CNN002', lambda = 4, optimizer = 'sgd',
      lr = 1e-4, momentum = 0.9, batch = 128, epochs = 40, eps = 0.031 },
    cifar10 = { ref = 'advbeta4ce-tor-WRN_40_10-adamlrem2ep70', model = 'WRN_40_10', lambda = 4,
      optimizer = 'adam', lr = 1e-2, batch = 64, epochs = 70, eps = 0.031 },
    svhn = { ref = 'advbeta4ce-tor-WRN_64_10-adamlrem2ep60', model = 'WRN_52_12', lambda = 4,
      optimizer = 'adam', lr = 1e-2, batch = 64, epochs = 60, eps = 0.031 },
    resimgnet = { ref = 'advbeta2ce-tor-ResNet50-adambs128ep30', model = 'ResNet50', lambda = 2,
      optimizer = 'adam', lr = 1e-2, batch = 128, epochs = 30, eps = 0.005 },
  }
  want['fashion-mnist'] = want.mnist

  for _, d in ipairs { 'mnist', 'fashion-mnist', 'cifar10', 'svhn', 'resimgnet' } do
    it(d .. ' as the reference runs it', function()
      local w = want[d]
      local cfg, id, dataset, ref = listed('--dataset ' .. d)
      assert.are.equal(d, dataset)
      assert.are.equal(w.ref, ref)
      assert.are.equal('rst', cfg.method)
      for _, k in ipairs { 'model', 'lambda', 'optimizer', 'lr', 'batch', 'epochs', 'eps' } do
        assert.are.equal(w[k], cfg[k], k)
      end
      if w.momentum then assert.are.equal(w.momentum, cfg.momentum) end
      assert.are.equal(0, cfg.seed)
      assert.is_nil(cfg.weight_decay)
      assert.is_nil(cfg.milestones) -- the paper's, which are get_scheduler's
      assert.is_nil(cfg.subset)     -- the whole training set
      -- the id names lambda: the bare method 'rst' has none of its own
      assert.truthy(id:find('^' .. d:gsub('%-', '_') .. '%-' .. w.model .. '%-rst%-lambda' .. w.lambda .. '%-e' ..
        w.epochs .. '%-s0%-'), id)
    end)
  end

  it('augmentation: none for CIFAR-10 (no aug01- prefix), crops for Restricted ImageNet', function()
    local c = listed('--dataset cifar10')
    assert.is_true((c.crop_pad or 0) == 0 and not c.flip)
    local r = listed('--dataset resimgnet')
    assert.are.equal(64, r.crop)
    assert.are.equal(8, r.crop_pad)
    assert.is_falsy(r.flip)
    for _, d in ipairs { 'mnist', 'svhn' } do
      local m = listed('--dataset ' .. d)
      assert.is_true((m.crop_pad or 0) == 0 and not m.flip and m.crop == nil, d)
    end
  end)

  it('--quick and the command line override the reference settings', function()
    local q = listed('--dataset svhn --quick')
    assert.are.equal(3, q.epochs)
    assert.are.equal(2000, q.subset)
    assert.are.equal('WRN_52_12', q.model)
    assert.are.equal(1e-2, q.lr)
    local o = listed('--dataset mnist --quick --epochs 2 --subset 100 --test-subset 50 --eval-subset 20'
      .. ' --seed 3 --eps 0.1')
    assert.are.same({ 2, 100, 50, 20, 3, 0.1 }, { o.epochs, o.subset, o.test_subset, o.eval_subset, o.seed, o.eps })
    assert.are.equal(128, o.batch)
    local f = listed('--dataset folder:/nowhere')
    assert.are.equal('ResNet50', f.model)
    assert.are.equal(2, f.lambda)
  end)

  it('refuses what it does not know', function()
    for _, a in ipairs { '--train --bogus 1', '--epochs 3', '--train --dataset nope --list', '--train --epochs x',
      'stray' } do
      local out, code = sh(shell.rllua .. ' scripts/poc.lua ' .. a)
      assert.are.equal(1, code, a)
      assert.truthy(out:find('^poc: '), out)
    end
    local out, code = sh(shell.rllua .. ' scripts/poc.lua --help')
    assert.are.equal(0, code)
    assert.truthy(out:find('--train', 1, true))
  end)
end)

describe("the reference's WRN_64_10 class", function()
  -- Its parameter count from wideresnet.py, by hand: pre-activation basic
  -- blocks (bn1, conv1 3x3, bn2, conv2 3x3, a 1x1 shortcut where the width
  -- changes), n = (depth - 4) / 6 per group, and the unused sub_block1 that
  -- the reference registers (a copy of block1) and rllua leaves out.
  local function reference_count(depth, widen, classes)
    local n = (depth - 4) // 6
    local c = { 16, 16 * widen, 32 * widen, 64 * widen }
    local function block(i, o) return 2 * i + 9 * i * o + 2 * o + 9 * o * o + (i ~= o and i * o or 0) end
    local function group(i, o) return block(i, o) + (n - 1) * block(o, o) end
    local sub = group(c[1], c[2])
    local total = 27 * c[1] + group(c[1], c[2]) + sub + group(c[2], c[3]) + group(c[3], c[4])
      + 2 * c[4] + c[4] * classes + classes
    return total, sub
  end

  it('the hand count agrees with PyTorch on the reference classes', function()
    -- sum(p.numel()) of the reference's classes, re-typed in PyTorch
    assert.are.same({ 58405306, 2563552 }, { reference_count(40, 10, 10) }) -- WRN_40_10
    assert.are.same({ 113290874, 5013152 }, { reference_count(52, 12, 10) }) -- WRN_64_10
  end)

  it('is WRN_52_12 (depth 52, widen 12) with its parameter count and names', function()
    local m = rl.models.WRN_52_12()
    local total, sub = reference_count(52, 12, 10)
    assert.are.equal(108277722, m:num_parameters())
    assert.are.equal(total - sub, m:num_parameters())
    assert.are.equal('WideResNet-52-12', m:describe())
    local sd, order = m:state_dict()
    assert.are.equal(299, #order) -- the reference's 396 keys less sub_block1's 97
    assert.are.same({ 768, 384, 1, 1 }, sd['block3.layer.0.convShortcut.weight'].shape)
    assert.are.same({ 192, 192, 3, 3 }, sd['block1.layer.7.conv2.weight'].shape)
    assert.is_nil(sd['block1.layer.8.conv1.weight'])
    assert.is_nil(sd['block1.layer.1.convShortcut.weight'])
    assert.are.same({ 10, 768 }, sd['fc.weight'].shape)
    m:eval()
    local y = rl.no_grad(function() return m(rl.rand(1, 3, 32, 32)) end)
    assert.are.same({ 1, 10 }, y.shape)
    assert.are.equal(108277722, rl.models.get('WRN_64_10'):num_parameters())
  end)
end)

describe('poc.lua --train end to end', function()
  it('trains RST(4) on a tiny set, writes metrics.json and poc.json, and prints both classifiers', function()
    local out = tmpdir()
    local args = '--train --quick --dataset synthetic --subset 64 --test-subset 32 --eval-subset 32 --epochs 1'
      .. ' --out ' .. out
    local _, id = listed(args)
    local log, code = sh(shell.rllua .. ' scripts/poc.lua ' .. args)
    assert.are.equal(0, code, log)
    local dir = out .. '/' .. id
    for _, f in ipairs { 'config.json', 'log.csv', 'model.safetensors' } do
      assert.is_not_nil(io.open(dir .. '/' .. f), f)
    end
    local m = json.read(dir .. '/metrics.json')
    for _, k in ipairs { 'train_acc', 'test_acc', 'train_adv_acc', 'test_adv_acc', 'test_lipschitz' } do
      assert.is_number(m[k], k)
      assert.truthy(log:find('\n%s+' .. k .. '%s'), k)
    end
    local p = json.read(dir .. '/poc.json')
    assert.are.equal(id, p.run_id)
    assert.are.equal('advbeta4ce-tor-CNN002-bs128ep40', p.reference.model)
    assert.are.same({ 'CNN002', 'rst', 4, 0.031, 1 }, { p.config.model, p.config.method, p.config.lambda,
      p.config.eps, p.config.epochs })
    assert.are.equal(m.test_acc, p.metrics.test_acc)
    local s = p.separation_classifier
    assert.are.same({ 64, 32, 0.031, 1 }, { s.n_train, s.n_test, s.eps, s.train_acc })
    assert.is_true(s.r > 0 and math.abs(s.lipschitz - 1 / s.r) < 1e-12)
    assert.is_true(s.test_certified_acc <= s.test_acc)
    assert.truthy(log:find('separation clf', 1, true))
    -- a finished run is not redone
    local again = sh(shell.rllua .. ' scripts/poc.lua ' .. args)
    assert.truthy(again:find('not redone', 1, true), again)
    os.execute('rm -rf ' .. out)
  end)
end)
