-- experiment_spec.lua - the runner and the table scripts end to end on a
-- tiny synthetic dataset: the files a run writes, the printed table, a
-- finished run not redone, and a killed run resuming to the same result.
local rl = require 'rl'
local json = rl.json

local shell = require 'helpers.shell'
local sh, tmpdir = shell.sh, shell.tmpdir

local ARGS = '--dataset synthetic --subset 96 --test-subset 32 --eval-subset 32 --batch 32'

describe('table2.lua end to end', function()
  it('runs the rows, prints the table, writes its files; reruns skip', function()
    local out = tmpdir()
    local ids = sh(shell.rllua .. ' scripts/table2.lua ' .. ARGS .. ' --epochs 1 --list')
    local first = ids:match('^(%S+)')
    local gr = ids:match('\n(%S+)%s+synthetic%s+GR')
    assert.truthy(first and gr)
    local log, code = sh(string.format(shell.rllua .. ' scripts/table2.lua %s --epochs 1 --out %s --only %s', ARGS, out, first))
    assert.are.equal(0, code, log)
    for _, f in ipairs { 'config.json', 'log.csv', 'metrics.json', 'model.safetensors' } do
      assert.is_not_nil(io.open(out .. '/' .. first .. '/' .. f), f)
    end
    local m = json.read(out .. '/' .. first .. '/metrics.json')
    for _, k in ipairs { 'train_acc', 'test_acc', 'train_adv_acc', 'test_adv_acc', 'test_lipschitz', 'gen_gap', 'adv_gap' } do
      assert.is_number(m[k], k)
    end
    assert.is_true(math.abs(m.gen_gap - (m.train_acc - m.test_acc)) < 1e-12)
    -- the table has every row; rows not run say so
    local md = io.open(out .. '/table.md'):read('a')
    assert.truthy(md:find('| synthetic | Natural', 1, true))
    assert.truthy(md:find('TRADES(6)', 1, true))
    assert.truthy(md:find('not run', 1, true))
    local t = json.read(out .. '/table.json')
    assert.are.equal(10, #t.rows)
    assert.truthy(io.open(out .. '/table.csv'):read('a'):find('^dataset,method,train acc'))
    -- a finished run is not redone
    local again = sh(string.format(shell.rllua .. ' scripts/table2.lua %s --epochs 1 --out %s --only %s', ARGS, out, first))
    assert.truthy(again:find('not redone', 1, true))
    os.execute('rm -rf ' .. out)
  end)

  it('a killed run resumes from its last epoch and ends where an uninterrupted run ends', function()
    local a, b = tmpdir(), tmpdir()
    local args = ARGS .. ' --epochs 4'
    local id = sh(shell.rllua .. ' scripts/table2.lua ' .. args .. ' --list'):match('^(%S+)')
    -- uninterrupted
    local _, code = sh(string.format(shell.rllua .. ' scripts/table2.lua %s --out %s --only %s', args, a, id))
    assert.are.equal(0, code)
    -- killed in its third epoch (the test hook of rl.experiment), then resumed
    local dir = b .. '/' .. id
    local _, killed = sh(string.format('RL_TEST_KILL_AT=train:3 %s scripts/table2.lua %s --out %s --only %s',
      shell.rllua, args, b, id))
    assert.are_not.equal(0, killed)
    assert.is_nil(io.open(dir .. '/metrics.json'), 'the run finished before it could be killed')
    local log = sh(string.format(shell.rllua .. ' scripts/table2.lua %s --out %s --only %s', args, b, id))
    assert.truthy(log:find('resuming after epoch 2', 1, true), log)
    local ma = json.read(a .. '/' .. id .. '/metrics.json')
    local mb = json.read(b .. '/' .. id .. '/metrics.json')
    assert.are.same(ma, mb)
    local ea = rl.load(a .. '/' .. id .. '/model.safetensors')
    local eb = rl.load(b .. '/' .. id .. '/model.safetensors')
    for k, t in pairs(ea) do assert.are.same(t:tolist(), eb[k]:tolist(), k) end
    os.execute('rm -rf ' .. a .. ' ' .. b)
  end)

  it('bad options are errors with the usage', function()
    local log, code = sh(shell.rllua .. ' scripts/table2.lua --epochs x')
    assert.are_not.equal(0, code)
    assert.truthy(log:find('--epochs needs a number', 1, true))
    log, code = sh(shell.rllua .. ' scripts/table2.lua --dataset nope --list')
    assert.are_not.equal(0, code)
    assert.truthy(log:find('unknown dataset', 1, true))
  end)
end)

describe('nothing wrong is silent (issue #14)', function()
  local exp = require 'rl.experiment'

  it('exp.config refuses a key that is no setting, naming the nearest', function()
    local ok, msg = pcall(exp.config, { epoch = 2, dataset = 'synthetic' })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("unknown setting 'epoch' (did you mean 'epochs'?)", 1, true), msg)
    ok, msg = pcall(exp.config, { eval_subst = 300 })
    assert.truthy(tostring(msg):find("did you mean 'eval_subset'", 1, true), msg)
  end)

  it('exp.config refuses a device that is none and a model rl.models does not make', function()
    local ok, msg = pcall(exp.config, { dataset = 'synthetic', device = 'gpu' })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("experiment: unknown device 'gpu' (expected 'cpu', 'cuda' or 'cuda:N')", 1, true), msg)
    ok, msg = pcall(exp.config, { dataset = 'synthetic', model = 'get' })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('experiment: unknown model "get" (known: CNN001, CNN002', 1, true), msg)
    -- a GPU that is not here is not the config's business (--list, Slurm):
    -- exp.run refuses it before the run's directory is made
    assert.are.equal('cuda', exp.config({ dataset = 'synthetic', device = 'cuda' }).device)
    if not pcall(rl.device, 'cuda') then
      local out = os.tmpname()
      os.remove(out)
      ok, msg = pcall(exp.run, exp.config { dataset = 'synthetic', device = 'cuda' }, { out = out, quiet = true })
      assert.is_false(ok)
      assert.truthy(tostring(msg):find('experiment: device cuda: CUDA is not available', 1, true), msg)
      assert.is_nil(io.open(out), 'the results directory was made')
    end
  end)

  it('every options table refuses a misspelt key, naming the nearest', function()
    local m = rl.nn.Sequential(rl.nn.Flatten(), rl.nn.Linear(4, 3))
    local x, y = rl.rand(2, 1, 2, 2), rl.tensor({ 0, 1 }, 'i64')
    local cases = {
      { function() return rl.attacks.pgd(m, x, y, { eps = 0.1, step = 50 }) end, "'step' (did you mean 'steps'?)" },
      { function() return rl.metrics.lipschitz(m, x, { eps = 0.1, stps = 3 }) end, "'stps' (did you mean 'steps'?)" },
      { function() return rl.metrics.adv_accuracy(m, x, y, { eps = 0.1, atack = 'pgd' }) end, "(did you mean 'attack'?)" },
      { function() return rl.metrics.evaluate(m, function() end, { eps = 0.1, lipschitz_mx = true }) end,
        "metrics.evaluate: unknown option 'lipschitz_mx'" },
      { function() return rl.methods.at(m, x, y, { eps = 0.1, stps = 3 }) end, "at: unknown option 'stps'" },
      { function() return rl.methods.get('trades6')(m, x, y, { eps = 0.1, bta = 3 }) end, "(did you mean 'beta'?)" },
      { function() return rl.methods.natural(m, x, y, { eps = 0.1, beta = 3 }) end, "natural: unknown option 'beta'" },
      { function() return rl.methods.gr(m, x, y, { lamda = 3 }) end, "(did you mean 'lambda'?)" },
      { function() return rl.methods.llr(m, x, y, { eps = 0.1, muu = 3 }) end, "(did you mean 'mu'?)" },
      { function() return rl.data.load('synthetic', { splt = 'test' }) end, "(did you mean 'split'?)" },
      { function() return rl.data.loader(rl.data.load('synthetic', { n = 10 }), { btch = 3 }) end,
        "(did you mean 'batch'?)" },
      { function() return rl.models.CNN001 { clases = 3 } end, "(did you mean 'classes'?)" },
      { function() return rl.nn.Conv2d(1, 2, 3, { strde = 2 }) end, "(did you mean 'stride'?)" },
      { function() return exp.config { lamda = 2 } end, "(did you mean 'lambda'?)" },
      { function() return rl.nn.Conv2d(3, 2, 3, 1, 1) end, 'Conv2d: options must be a table {name = value, ...}, got 1' },
      { function() return rl.metrics.adv_accuracy(m, x, y) end, 'metrics.adv_accuracy: opts.eps (the radius) is required' },
      { function() return rl.metrics.evaluate(m, function() end, { adv = true }) end,
        'metrics.evaluate: opts.eps (the radius) is required with adv' },
      { function() return exp.run(exp.config { dataset = 'synthetic' }, { outdir = '/tmp/x' }) end,
        "exp.run: unknown option 'outdir' (did you mean 'out'?)" },
      { function() return rl.checkpoint.save(os.tmpname(), { modle = m }) end,
        "checkpoint.save: unknown option 'modle' (did you mean 'model'?)" },
      { function() return rl.checkpoint.load('/nonexistent', { modle = m }) end,
        "checkpoint.load: unknown option 'modle' (did you mean 'model'?)" },
    }
    for i, c in ipairs(cases) do
      local ok, msg = pcall(c[1])
      assert.is_false(ok, 'case ' .. i)
      assert.truthy(tostring(msg):find(c[2], 1, true), 'case ' .. i .. ': ' .. tostring(msg))
    end
  end)

  it('a run id names the method settings that differ from the named method', function()
    local function id(c) return exp.run_id(exp.config(c)) end
    assert.truthy(id { method = 'trades', beta = 0.3 }:find('-trades-beta0.3-', 1, true))
    assert.truthy(id { method = 'trades6', beta = 2 }:find('-trades6-beta2-', 1, true))
    -- the named method's own value, or the dataset's, is not repeated
    assert.truthy(id { method = 'trades6', beta = 6 }:find('-trades6-e', 1, true))
    assert.truthy(id { method = 'llr', dataset = 'resimgnet' }:find('-llr-e', 1, true))
    assert.truthy(id { method = 'llr', dataset = 'resimgnet', mu = 5 }:find('-llr-mu5-e', 1, true))
  end)

  it('a GPU run under TF32 gets an id of its own', function()
    local before = rl.cuda.allow_tf32()
    local plain = exp.config { device = 'cuda' }
    rl.cuda.allow_tf32(true)
    local tf = exp.config { device = 'cuda' }
    local cpu = exp.config { device = 'cpu' }
    rl.cuda.allow_tf32(before)
    assert.is_nil(plain.tf32)
    assert.is_true(tf.tf32)
    assert.is_nil(cpu.tf32)
    assert.are_not.equal(exp.run_id(plain), exp.run_id(tf))
  end)

  it('a registered method carries its version in every run id', function()
    local calls = 0
    local function mine(model, x, y, o)
      calls = calls + 1
      local z = model(x)
      return rl.F.cross_entropy(z, y, 'sum') * (o.h or 1), z
    end
    rl.methods.register('mine', mine, { version = 1 })
    local c1 = exp.config { method = 'mine', dataset = 'synthetic' }
    assert.are.equal(1, c1.method_version)
    rl.methods.register('mine', mine, { version = 2 })
    local c2 = exp.config { method = 'mine', dataset = 'synthetic' }
    assert.are_not.equal(exp.run_id(c1), exp.run_id(c2))
    for _, bad in ipairs {
      { 'mine', mine, nil, 'options {version = N} are required' },
      { 'mine', mine, { version = 0 }, 'version must be an integer >= 1' },
      { 'mine', mine, { version = 1, verison = 2 }, "unknown option 'verison'" },
      { 'trades6', mine, { version = 1 }, "one of rllua's own names" },
      { 'get', mine, { version = 1 }, "one of rllua's own names" },
    } do
      local ok, msg = pcall(rl.methods.register, bad[1], bad[2], bad[3])
      assert.is_false(ok)
      assert.truthy(tostring(msg):find(bad[4], 1, true), msg)
    end
    -- it trains through exp.run, which returns the model too
    local out = tmpdir()
    local data = { train = rl.data.load('synthetic', { split = 'train', n = 32 }),
      test = rl.data.load('synthetic', { split = 'test', n = 16 }) }
    local cfg = exp.config { method = 'mine', dataset = 'synthetic', epochs = 1, batch = 16, eval_subset = 16 }
    local m, id, model = exp.run(cfg, { out = out, data = data, quiet = true, log = function() end })
    assert.is_true(calls >= 2)
    assert.is_number(m.test_acc)
    assert.are.equal(exp.run_id(cfg), id)
    assert.are.equal(8, #model:parameters()) -- CNN001: two convolutions, two linears
    -- the model is on the run's device (RL_DEVICE=cuda under make test-cuda-emu)
    local z = rl.no_grad(function() return model(data.test.x:narrow(1, 1, 2):float():to(cfg.device) / 255) end)
    assert.are.same({ 2, 10 }, z.shape)
    -- a finished run gives back its saved model
    local m2, _, again = exp.run(cfg, { out = out, data = data, quiet = true, log = function() end })
    assert.are.same(m, m2)
    assert.are.same(model:parameters()[1]:tolist(), again:parameters()[1]:tolist())
    os.execute('rm -rf ' .. shell.quote(out))
  end)

  it('a run made from other data is not taken for this one: not skipped, not resumed', function()
    local out = tmpdir()
    local function sets(seed)
      return { train = rl.data.load('synthetic', { split = 'train', n = 32, pattern_seed = seed }),
        test = rl.data.load('synthetic', { split = 'test', n = 16, pattern_seed = seed }) }
    end
    local cfg = exp.config { method = 'natural', dataset = 'synthetic', epochs = 1, batch = 16, eval_subset = 16 }
    local quiet = { out = out, quiet = true, log = function() end }
    exp.run(cfg, setmetatable({ data = sets(0) }, { __index = quiet }))
    local id = exp.run_id(cfg)
    assert.truthy(io.open(out .. '/' .. id .. '/data.json'))
    -- the same data: finished before
    local _, again = exp.run(cfg, setmetatable({ data = sets(0) }, { __index = quiet }))
    assert.are.equal(id, again)
    -- other data under the same config: an error naming what differs
    local ok, msg = pcall(exp.run, cfg, setmetatable({ data = sets(5) }, { __index = quiet }))
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('was made from other data than this run has: train', 1, true), msg)
    os.execute('rm -rf ' .. shell.quote(out))
  end)

  -- a tester's find: data_dir is no part of the run id, and a finished run
  -- was handed back for other files there without a look at them
  it('a finished run is not handed back for other data under data_dir (exp.run without o.data)', function()
    local gen = require 'helpers.datagen'
    local base = tmpdir()
    -- Fashion-MNIST-shaped IDX files; B's training labels are A's shifted
    local function write(dir, shift)
      shell.mkdir(dir)
      for _, s in ipairs { { 'train', 40 }, { 't10k', 20 } } do
        local px, lb = {}, {}
        for i = 1, s[2] do
          lb[i] = (i - 1) % 10
          for j = 1, 784 do px[#px + 1] = (i * 7 + j * lb[i]) % 256 end
          if s[1] == 'train' then lb[i] = (lb[i] + shift) % 10 end
        end
        gen.write(dir .. '/' .. s[1] .. '-images-idx3-ubyte', gen.idx(0x803, { s[2], 28, 28 }, px))
        gen.write(dir .. '/' .. s[1] .. '-labels-idx1-ubyte', gen.idx(0x801, { s[2] }, lb))
      end
    end
    write(base .. '/A', 0)
    write(base .. '/B', 1)
    local function cfg(dir)
      return exp.config { dataset = 'fashion-mnist', data_dir = dir, epochs = 1, subset = 32, test_subset = 16,
        eval_subset = 8, batch = 16 }
    end
    local o = { out = base .. '/out', quiet = true, log = function() end }
    local m, id = exp.run(cfg(base .. '/A'), o)
    assert.are.equal(id, exp.run_id(cfg(base .. '/B'))) -- the files are what tells them apart
    local ok, msg = pcall(exp.run, cfg(base .. '/B'), o)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find(id .. ' was made from other data than this run has: train labels', 1, true), msg)
    -- A's files again: finished before, its metrics
    local again = exp.run(cfg(base .. '/A'), o)
    assert.are.same(m, again)
    os.execute('rm -rf ' .. shell.quote(base))
  end)

  it('exp.config refuses inf and NaN in every numeric setting', function()
    local method_of = { beta = 'trades', lambda = 'rst', mu = 'llr', h = 'gr', step_size = 'at' }
    for _, k in ipairs { 'lr', 'momentum', 'weight_decay', 'eps', 'drop', 'beta', 'lambda', 'mu', 'h', 'step_size',
      'epochs', 'batch', 'eval_batch', 'subset', 'test_subset', 'eval_subset', 'seed', 'steps', 'crop', 'crop_pad',
      'data_version' } do
      for _, v in ipairs { math.huge, -math.huge, 0 / 0 } do
        local c = { dataset = 'synthetic', method = method_of[k] or (k == 'steps' and 'at') or nil, [k] = v }
        local ok, msg = pcall(exp.config, c)
        assert.is_false(ok, k .. ' = ' .. tostring(v))
        assert.truthy(tostring(msg):find('experiment: ' .. k .. ' must be ', 1, true), msg)
      end
    end
    local ok, msg = pcall(exp.config, { lr = math.huge })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('experiment: lr must be a finite number, got inf', 1, true), msg)
    ok, msg = pcall(exp.config, { milestones = { 2, math.huge } })
    assert.truthy(tostring(msg):find('experiment: milestones[2] must be an integer, got inf', 1, true), msg)
  end)

  it('exp.config checks the kind and range of every setting, naming it and the value', function()
    for _, c in ipairs {
      { { method = 'trades', beta = 'x' }, "experiment: beta must be a number, got the string 'x'" },
      { { method = 'rst', lambda = 'a' }, "experiment: lambda must be a number, got the string 'a'" },
      { { method = 'at', steps = -3 }, 'experiment: steps must be >= 1, got -3' },
      { { method = 'at', step_size = -3 }, 'experiment: step_size must be > 0, got -3' },
      { { method = 'gr', h = -1 }, 'experiment: h must be > 0, got -1' },
      { { quirks = 'no' }, "experiment: quirks must be true or false, got the string 'no'" },
      { { milestones = 'x' }, "experiment: milestones must be a list of integers" },
      { { flip = 'yes' }, "experiment: flip must be true or false, got the string 'yes'" },
      { { optimizer = 'adamw' }, "experiment: optimizer must be one of 'sgd', 'adam', got the string 'adamw'" },
      { { crop = -5 }, 'experiment: crop must be >= 1, got -5' },
      { { crop_pad = 1.5 }, 'experiment: crop_pad must be an integer, got 1.5' },
      { { drop = 1 }, 'experiment: drop must be in [0, 1), got 1' },
      { { data_dir = 3 }, 'experiment: data_dir must be a string, got 3' },
      { { dataset = 3 }, 'experiment: dataset must be a string, got 3' },
      { { method = 'at', beta = 6 }, 'experiment: method at takes no beta (got beta = 6); its settings: steps, step_size, quirks' },
      { { method = 'natural', steps = 3 }, 'experiment: method natural takes no steps' },
      { { method = 'trades6', lambda = 1 }, 'experiment: method trades6 takes no lambda' },
      { { tf32 = true, device = 'cpu' }, 'experiment: tf32 = true is a GPU setting (the CPU has no TF32)' },
      { { tf32 = 'yes', device = 'cuda' }, "experiment: tf32 must be true or false, got the string 'yes'" },
    } do
      local ok, msg = pcall(exp.config, c[1])
      assert.is_false(ok, c[2])
      assert.truthy(tostring(msg):find(c[2], 1, true), msg)
      assert.falsy(tostring(msg):find('experiment%.lua:%d+'), msg) -- no internal position
    end
    -- what a setting is for stays accepted, and tf32 = false on the CPU is every CPU run
    assert.are.equal(6, exp.config({ method = 'trades', beta = 6 }).beta)
    assert.are.equal(exp.run_id(exp.config { device = 'cpu' }), exp.run_id(exp.config { device = 'cpu', tf32 = false }))
    -- a refusal is raised at the caller's line
    local ok, msg = pcall(function() local c = exp.config { flip = 'yes' }; return c end)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('experiment_spec%.lua:%d+: experiment: flip'), msg)
  end)

  it('a subset larger than its split is an error naming both numbers, not a silent cap', function()
    local ok, msg = pcall(exp.config, { dataset = 'synthetic', subset = 2000 })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("experiment: subset = 2000 is more than the 1000 examples of synthetic's train split",
      1, true), msg)
    ok, msg = pcall(exp.config, { dataset = 'synthetic', test_subset = 500 })
    assert.truthy(tostring(msg):find("test_subset = 500 is more than the 200 examples of synthetic's test split", 1,
      true), msg)
    -- --quick on synthetic takes its whole splits, and says so
    local q = exp.config { dataset = 'synthetic', quick = true }
    assert.are.same({ 1000, 200, 200 }, { q.subset, q.test_subset, q.eval_subset })
    assert.are.equal(2000, exp.config({ dataset = 'fashion-mnist', quick = true }).subset)
  end)

  it('a row whose model cannot take the images fails before anything is written', function()
    local out = tmpdir()
    local log, code = sh(string.format('%s scripts/table4.lua %s --epochs 1 --model WRN_16_4 --dropout 0.2 --out %s',
      shell.rllua, ARGS, shell.quote(out .. '/t4')))
    assert.are_not.equal(0, code)
    assert.truthy(log:find("synthetic / Natural: model WRN_16_4 cannot take synthetic's 1x28x28 images", 1, true), log)
    assert.is_nil(io.open(out .. '/t4', 'r'), 'no results directory')
    -- and a run that fails in its first epoch leaves no directory behind
    local cfg = exp.config { method = 'natural', dataset = 'synthetic', epochs = 1, batch = 16 }
    local data = { train = rl.data.load('synthetic', { split = 'train', n = 32 }),
      test = rl.data.load('synthetic', { split = 'test', n = 16 }) }
    rl.methods.register('broken', function() error('loss went wrong', 0) end, { version = 1 })
    cfg = exp.config { method = 'broken', dataset = 'synthetic', epochs = 1, batch = 16 }
    local ok, msg = pcall(exp.run, cfg, { out = out, data = data, quiet = true, log = function() end })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('loss went wrong', 1, true))
    assert.is_nil(io.open(out .. '/' .. exp.run_id(cfg) .. '/config.json', 'r'))
    assert.is_nil(io.open(out .. '/' .. exp.run_id(cfg), 'r'))
    os.execute('rm -rf ' .. shell.quote(out))
  end)

  it('table4 runs on Fashion-MNIST-sized images with CNN001 at a given dropout', function()
    local log, code = sh(string.format('%s scripts/table4.lua %s --epochs 1 --list', shell.rllua, ARGS))
    assert.are_not.equal(0, code)
    assert.truthy(log:find('the paper has no dropout rate for synthetic; give one with --dropout', 1, true), log)
    log, code = sh(string.format('%s scripts/table4.lua %s --epochs 1 --dropout 0.3 --list', shell.rllua, ARGS))
    assert.are.equal(0, code, log)
    assert.truthy(log:find('Natural + dropout', 1, true))
    assert.truthy(log:find('"drop":0.3', 1, true), log)
    local m = rl.models.CNN001 { drop = 0.3 }
    assert.are.equal(0.3, m.dropout1.p)
    assert.are.equal(0.3, m.dropout2.p)
    assert.are.equal(0.25, rl.models.CNN001().dropout1.p)
  end)
end)
