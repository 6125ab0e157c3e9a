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
