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
