-- tables_spec.lua - the adversarial columns of the table scripts under
-- --attack: the paper's PGD, MultiTarget in its place, and AutoAttack's
-- "AA acc" beside it; what exp.measure writes for each, and a finished run
-- completed with AutoAttack from its saved model.
local rl = require 'rl'
local exp = require 'rl.experiment'
local tables = require 'rl.tables'

local shell = require 'helpers.shell'

local function heads(cols)
  local h, k = {}, {}
  for i, c in ipairs(cols) do h[i], k[i] = c[1], c[2] end
  return h, k
end

describe('tables.columns', function()
  it('pgd: the paper\'s columns', function()
    local h, k = heads(tables.columns())
    assert.are.same({ 'train acc', 'test acc', 'adv test acc (PGD)', 'test lipschitz', 'test lipschitz (max)',
      'gap', 'adv gap' }, h)
    assert.are.same(h, (heads(tables.columns('pgd'))))
    assert.are.equal('test_adv_acc', k[3])
  end)

  it('multitarget: MT in the place of PGD', function()
    local h, k = heads(tables.columns('multitarget'))
    assert.are.equal('adv test acc (MT)', h[3])
    assert.are.equal('test_adv_acc_multitarget', k[3])
    assert.are.equal('adv_gap_multitarget', k[7])
    assert.are.equal(7, #h)
  end)

  it('autoattack: the paper\'s PGD columns and "AA acc" after PGD\'s', function()
    local h, k = heads(tables.columns('autoattack'))
    assert.are.same({ 'train acc', 'test acc', 'adv test acc (PGD)', 'AA acc', 'test lipschitz',
      'test lipschitz (max)', 'gap', 'adv gap' }, h)
    assert.are.same({ 'train_acc', 'test_acc', 'test_adv_acc', 'test_adv_acc_autoattack', 'test_lipschitz',
      'test_lipschitz_max', 'gen_gap', 'adv_gap' }, k)
    local md = tables.layout('T', { { dataset = 'mnist', rows = {
      { label = 'AT', metrics = { train_acc = 0.99, test_acc = 0.98, test_adv_acc = 0.9,
        test_adv_acc_autoattack = 0.871, test_lipschitz = 2.5, gen_gap = 0.01, adv_gap = 0.02 } },
      { label = 'TRADES(6)' },
    } } }, tables.columns('autoattack'))
    assert.truthy(md:find('| adv test acc (PGD) |  AA acc |', 1, true), md)
    assert.truthy(md:find('|              90.00 |   87.10 |', 1, true), md)
    assert.truthy(md:find('| TRADES(6) |   not run |  not run |', 1, true), md)
  end)

  it('--attack takes autoattack; another name is an error listing them', function()
    assert.are.equal('autoattack', tables.parse({ '--attack', 'autoattack' }, 'usage').attack)
    local ok, err = pcall(tables.parse, { '--attack', 'aa' }, 'usage')
    assert.is_false(ok)
    assert.are.equal('option --attack: unknown attack "aa" (autoattack, multitarget, pgd)', err)
    assert.truthy(tables.usage_common:find('autoattack', 1, true))
  end)
end)

describe('exp.measure under autoattack', function()
  it('writes the paper\'s keys and test_adv_acc_autoattack, nothing under AutoAttack on the train split', function()
    local keys = exp.metric_keys('autoattack')
    assert.are.same(exp.metric_keys('pgd'), { table.unpack(keys, 1, #keys - 1) })
    assert.are.equal('test_adv_acc_autoattack', keys[#keys])

    local train = rl.data.load('synthetic', { split = 'train', n = 8 })
    local test = rl.data.load('synthetic', { split = 'test', n = 8 })
    local cfg = exp.config { dataset = 'synthetic', eval_subset = 4 }
    rl.manual_seed(0)
    local model = rl.models.CNN001 { classes = 10, channels = 1 }
    local m = exp.measure(model, train, test, cfg, { attack = 'autoattack', quiet = true })
    for _, k in ipairs(keys) do assert.is_number(m[k], k) end
    assert.is_nil(m.train_adv_acc_autoattack)
    assert.is_nil(m.adv_gap_autoattack)
    assert.is_true(m.test_adv_acc_autoattack <= m.test_acc)
    -- only the AutoAttack key: no PGD, no Lipschitz estimate
    local only = exp.measure(model, train, test, cfg, { attack = 'autoattack', quiet = true,
      only = { test_adv_acc_autoattack = true } })
    assert.are.equal(m.test_adv_acc_autoattack, only.test_adv_acc_autoattack)
    assert.is_nil(only.test_adv_acc)
    assert.is_nil(only.test_lipschitz)
  end)

  it('a finished run asked for autoattack is measured from its saved model, not retrained', function()
    local out = shell.tmpdir()
    local cfg = exp.config { dataset = 'synthetic', model = 'CNN001', epochs = 1, batch = 16, subset = 16,
      test_subset = 8, eval_subset = 4, device = 'cpu' }
    local lines = {}
    local log = function(s) lines[#lines + 1] = s end
    local first = exp.run(cfg, { out = out, quiet = true, log = log })
    assert.is_nil(first.test_adv_acc_autoattack)
    local m = exp.run(cfg, { out = out, quiet = true, log = log, attack = 'autoattack' })
    assert.truthy(table.concat(lines, '\n'):find('finished before; measuring test_adv_acc_autoattack from its model',
      1, true), table.concat(lines, '\n'))
    assert.is_number(m.test_adv_acc_autoattack)
    assert.are.equal(first.test_adv_acc, m.test_adv_acc)
    local saved = exp.read_metrics(out .. '/' .. exp.run_id(cfg))
    assert.are.equal(m.test_adv_acc_autoattack, saved.test_adv_acc_autoattack)
    os.execute('rm -rf ' .. shell.quote(out))
  end)
end)

describe('results describe themselves (issue #14)', function()
  local json = rl.json
  local sh, tmpdir = shell.sh, shell.tmpdir
  local ARGS = '--dataset synthetic --subset 96 --test-subset 32 --eval-subset 32 --batch 32 --epochs 1'

  it('tables.wilson: the 95 % score interval', function()
    -- textbook values: 8 of 10 -> [0.4902, 0.9433]; 0 of 32 -> [0, 0.1072]
    local lo, hi = tables.wilson(0.8, 10)
    assert.is_true(math.abs(lo - 0.4902) < 1e-4 and math.abs(hi - 0.9433) < 1e-4, lo .. ' ' .. hi)
    lo, hi = tables.wilson(0, 32)
    assert.are.equal(0, lo)
    assert.is_true(math.abs(hi - 0.1072) < 1e-4, tostring(hi))
    lo, hi = tables.wilson(1, 500)
    assert.is_true(hi == 1 and math.abs(lo - 0.99238) < 1e-4, tostring(lo))
  end)

  it('table.md, table.csv and table.json carry the settings, intervals, and a loud --quick', function()
    local out = tmpdir()
    local id = sh(shell.rllua .. ' scripts/table2.lua ' .. ARGS .. ' --quick --list'):match('^(%S+)')
    local log, code = sh(string.format('%s scripts/table2.lua %s --quick --out %s --only %s', shell.rllua, ARGS,
      shell.quote(out), id))
    assert.are.equal(0, code, log)
    -- the row's line came as soon as it finished, before the table
    local line = log:find('synthetic / Natural: train acc ', 1, true)
    assert.truthy(line, log)
    assert.is_true(line < log:find('## Table 2', 1, true))
    assert.truthy(log:find('[1/1, table eta ?] natural epoch 1/1', 1, true), log)
    local md = io.open(out .. '/table.md'):read('a')
    assert.truthy(md:find('**QUICK RUN', 1, true), md)
    assert.truthy(md:find('- synthetic: CNN001, eps 0.1, epochs 1, batch 32, sgd, lr 0.0001, momentum 0.9; training ' ..
      'subset 96, test subset 32, measured on 32 train and 32 test examples; fp32 on cpu', 1, true), md)
    assert.truthy(md:find('- adversarial accuracy: PGD-10', 1, true))
    assert.truthy(md:find('- rllua ' .. rl.version, 1, true))
    local m = json.read(out .. '/' .. id .. '/metrics.json')
    assert.are.equal(32, m.test_n)
    local lo, hi = tables.wilson(m.test_acc, 32)
    assert.truthy(md:find(string.format('%.2f [%.1f, %.1f]', 100 * m.test_acc, 100 * lo, 100 * hi), 1, true), md)
    local csv = io.open(out .. '/table.csv'):read('a')
    local head, first = csv:match('^([^\n]+)\n([^\n]+)')
    assert.truthy(head:find('test acc,test acc lo95,test acc hi95', 1, true), head)
    assert.truthy(head:find(',model,eps,epochs,batch,optimizer,lr,momentum,subset,test_subset,eval_subset,train_n,' ..
      'test_n,seeds,attack,precision,device,quick,version$'), head)
    assert.truthy(first:find(',CNN001,0.1,1,32,sgd,0.0001,0.9,96,32,32,32,32,0,pgd,fp32,cpu,true,rllua ', 1, true), first)
    local t = json.read(out .. '/table.json')
    assert.is_true(t.settings.quick)
    assert.are.same({ 0 }, t.settings.seeds)
    assert.are.equal(96, t.settings.datasets.synthetic.subset)
    assert.are.equal(32, t.rows[1].interval95.test_acc.n)
    -- and its figures, titled with the settings
    for _, f in ipairs { 'synthetic_acc_adv.png', 'synthetic_acc_adv.svg', 'synthetic_lipschitz.png' } do
      assert.truthy(io.open(out .. '/figures/' .. f), f)
    end
    -- keys below the plots: a key inside covered the highest points (Natural's)
    for _, f in ipairs { 'synthetic_acc_adv.gp', 'synthetic_lipschitz.gp' } do
      local gp = io.open(out .. '/figures/' .. f):read('a')
      assert.truthy(gp:find('set key outside below', 1, true) and not gp:find('set key inside', 1, true), f)
    end
    local svg = io.open(out .. '/figures/synthetic_lipschitz.svg'):read('a')
    assert.truthy(svg:find('Accuracy against the local Lipschitz estimate (synthetic, CNN001, eps 0.1, epochs 1, ' ..
      'seeds 0, QUICK)', 1, true))
    os.execute('rm -rf ' .. shell.quote(out))
  end)

  -- a tester's finds: the files named no learning rate or momentum, though
  -- rows may differ in lr (lr_method); and "measured on 500 examples per
  -- split" was written for a test split of 200
  it('the table files carry lr and momentum (per row where rows differ) and the n each split was measured on',
    function()
      local out = tmpdir()
      local script = out .. '/t.lua'
      local h = io.open(script, 'w')
      h:write([[
local tables = require 'rl.tables'
tables.run({ name = 'tlr', title = 'T', datasets = { 'synthetic' }, no_figures = true,
  rows = { { label = 'A', method = 'natural' }, { label = 'B', method = 'natural', config = { lr = 0.01 } } } },
  { dataset = 'synthetic', subset = 32, test_subset = 16, eval_subset = 24, batch = 16, epochs = 1, quiet = true,
    out = arg[1] })
]])
      h:close()
      local log, code = sh(string.format('%s %s %s', shell.rllua, shell.quote(script), shell.quote(out .. '/r')))
      assert.are.equal(0, code, log)
      local md = io.open(out .. '/r/table.md'):read('a')
      assert.truthy(md:find('- synthetic: CNN001, eps 0.1, epochs 1, batch 16, sgd, lr 0.0001 (B: 0.01), momentum 0.9; ' ..
        'training subset 32, test subset 16, measured on 24 train and 16 test examples; fp32 on cpu', 1, true), md)
      local csv = io.open(out .. '/r/table.csv'):read('a')
      local rows = {}
      for line in csv:gmatch('[^\n]+') do rows[#rows + 1] = line end
      assert.truthy(rows[2]:find(',CNN001,0.1,1,16,sgd,0.0001,0.9,32,16,24,24,16,', 1, true), rows[2])
      assert.truthy(rows[3]:find(',CNN001,0.1,1,16,sgd,0.01,0.9,32,16,24,24,16,', 1, true), rows[3])
      local t = json.read(out .. '/r/table.json')
      local st = t.settings.datasets.synthetic
      assert.are.same({ 0.0001, 0.9, 24, 16 }, { st.lr, st.momentum, st.train_n, st.test_n })
      assert.are.same({ A = 0.0001, B = 0.01 }, st.lr_per_row)
      assert.are.same({ 0.0001, 0.01 }, { t.rows[1].lr, t.rows[2].lr })
      assert.are.equal(0.9, t.rows[2].momentum)
      os.execute('rm -rf ' .. shell.quote(out))
    end)

  it('--quick on synthetic trains and measures its whole splits, and the files say so', function()
    local list = sh(shell.rllua .. ' scripts/table2.lua --dataset synthetic --quick --list')
    local cfg = json.decode(list:match('^%S+\t%S+\t%S+\t([^\n]+)'))
    assert.are.same({ 1000, 200, 200 }, { cfg.subset, cfg.test_subset, cfg.eval_subset })
  end)

  it('--seeds runs a row per seed and shows mean ± standard deviation', function()
    local out = tmpdir()
    local list = sh(shell.rllua .. ' scripts/table2.lua ' .. ARGS .. ' --seeds 0,3 --list')
    local a, b = list:match('(%S+)%s+synthetic%s+Natural.-\n(%S+)%s+synthetic%s+Natural')
    assert.truthy(a and a:find('-s0-', 1, true) and b:find('-s3-', 1, true), list)
    for _, id in ipairs { a, b } do
      local log, code = sh(string.format('%s scripts/table2.lua %s --seeds 0,3 --out %s --only %s', shell.rllua, ARGS,
        shell.quote(out), id))
      assert.are.equal(0, code, log)
    end
    local log = sh(string.format('%s scripts/table2.lua %s --seeds 0,3 --out %s --only %s', shell.rllua, ARGS,
      shell.quote(out), a))
    local m0 = json.read(out .. '/' .. a .. '/metrics.json')
    local m3 = json.read(out .. '/' .. b .. '/metrics.json')
    local mean = (m0.test_lipschitz_max + m3.test_lipschitz_max) / 2
    local sd = math.abs(m0.test_lipschitz_max - m3.test_lipschitz_max) / math.sqrt(2)
    local t = json.read(out .. '/table.json')
    assert.are.equal(2, t.rows[1].seeds)
    assert.is_true(math.abs(t.rows[1].metrics.test_lipschitz_max - mean) < 1e-9)
    assert.is_true(math.abs(t.rows[1].std.test_lipschitz_max - sd) < 1e-9)
    assert.truthy(log:find(string.format('%.2f ± %.2f', mean, sd), 1, true), log)
    assert.truthy(io.open(out .. '/table.md'):read('a'):find('cells: mean ± standard deviation', 1, true))
    local _, code = sh(shell.rllua .. ' scripts/table2.lua ' .. ARGS .. ' --seeds 0,x --list')
    assert.are_not.equal(0, code)
    os.execute('rm -rf ' .. shell.quote(out))
  end)

  it('Ctrl-C says how to resume', function()
    local out = tmpdir()
    local args = '--dataset synthetic --subset 96 --test-subset 32 --eval-subset 32 --batch 32 --epochs 5000'
    local id = sh(shell.rllua .. ' scripts/table2.lua ' .. args .. ' --list'):match('^(%S+)')
    -- Python starts the run with SIGINT unblocked (a harness may block or
    -- ignore it, and children inherit that), sends the interrupt once the
    -- first checkpoint exists (inside the training loop), and kills the
    -- run after 60 s whatever happens, so that this test cannot hang.
    local ck = out .. '/' .. id .. '/checkpoint.safetensors'
    local py = table.concat({
      'import os, signal, subprocess, sys, time',
      'def child():',
      '    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])',
      '    signal.signal(signal.SIGINT, signal.SIG_DFL)',
      'p = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=child)',
      't0 = time.time()',
      'while not os.path.exists(sys.argv[1]) and time.time() - t0 < 50 and p.poll() is None: time.sleep(0.05)',
      'p.send_signal(signal.SIGINT)',
      'try: out = p.communicate(timeout=60)[0]',
      'except subprocess.TimeoutExpired: p.kill(); out = p.communicate()[0] + b"(killed after 60 s)"',
      'sys.stdout.write(out.decode(errors="replace"))',
    }, '\n')
    local script = os.tmpname()
    local h = io.open(script, 'w')
    h:write(py, '\n')
    h:close()
    local log = sh(string.format('/usr/bin/python3 %s %s %s scripts/table2.lua %s --out %s --only %s',
      shell.quote(script), shell.quote(ck), shell.rllua, args, shell.quote(out), id))
    os.remove(script)
    local n = log:match('interrupted; rerun the same command to resume from epoch (%d+)')
    assert.truthy(n, log)
    assert.is_true(tonumber(n) > 1, log)
    assert.truthy(io.open(ck), 'a checkpoint to resume from')
    os.execute('rm -rf ' .. shell.quote(out))
  end)
end)
