-- Every script's command line: --help prints its usage and exits 0, an
-- unknown option is an error with a suggestion, and --list lists only
-- (nothing trained, no results directory made).
local shell = require 'helpers.shell'

local SCRIPTS = { 'table1', 'table2', 'table3', 'table4', 'sweep', 'examples', 'poc', 'evaluate',
  'bench', 'bench_attacks', 'bench_conv', 'curves', 'eps_curve', 'report' }

-- An untrained CNN001 (seed 0) saved at path: a model for the scripts
-- that read one.
local function saved_cnn(path)
  local rl = require 'rl'
  rl.manual_seed(0)
  rl.models.CNN001 {}:save(path)
  return rl
end

local function run(script, args)
  return shell.sh(string.format('%s scripts/%s.lua %s', shell.rllua, script, args))
end

describe('the scripts', function()
  for _, s in ipairs(SCRIPTS) do
    it(s .. ': --help prints the usage and exits 0', function()
      local out, code = run(s, '--help')
      assert.are.equal(0, code, out)
      assert.truthy(out:find('usage', 1, true), out)
    end)
  end

  for _, s in ipairs { 'table2', 'sweep', 'examples', 'evaluate' } do
    it(s .. ': a misspelt option is an error naming it', function()
      local out, code = run(s, '--quik')
      assert.are_not.equal(0, code)
      assert.truthy(out:find('unknown option --quik', 1, true), out)
    end)
  end

  it('the benchmarks refuse a precision or a model they do not time, by name', function()
    local cases = {
      { 'bench', '--precision fp16', "--precision must be fp32 or bf16, not 'fp16'" },
      { 'bench_methods', '--precision bf61', "--precision must be fp32 or bf16, not 'bf61'" },
      { 'bench', '--models CNN001,WRN_16_8', "--models: 'WRN_16_8' is not one of CNN001, CNN002, WRN_16_4, WRN_40_10" },
      { 'bench', '--device cuda --models WRN_16_4', '--models goes with the CPU benchmark' },
      { 'bench_conv', '--dtype f16', "--dtype must be f32 or bf16, not 'f16'" },
      { 'bench_conv', '--layers 2,9', "--layers: '9' is not a layer number (1 to 8)" },
    }
    -- bf16 on the GPU is timed (bench_gpu.lua): without a usable device it
    -- says why, as fp32 does; with one it would run the whole benchmark
    if not require('rl').cuda.is_available() then
      cases[#cases + 1] = { 'bench', '--device cuda --precision bf16', 'bench --device cuda: CUDA is not available' }
    end
    for _, c in ipairs(cases) do
      local out, code = run(c[1], c[2])
      assert.are_not.equal(0, code, out)
      assert.truthy(out:find(c[3], 1, true), out)
    end
  end)

  it('bench_conv --layers times only the layers named, in that order', function()
    local out, code = run('bench_conv', '--layers 3,1 --batch 1 --steps 1')
    assert.are.equal(0, code, out)
    local rows = {}
    for layer in out:gmatch('\n(%d+%->%d+ @%d+ s%d)') do rows[#rows + 1] = layer end
    assert.are.same({ '64->128 @32 s2', '16->64 @32 s1' }, rows, out)
  end)

  it('a table script refuses a number a row cannot use before any row starts', function()
    for _, c in ipairs {
      { '--epochs 0', 'option --epochs must be >= 1, got 0' },
      { '--epochs 1.5', 'option --epochs must be an integer, got 1.5' },
      { '--batch 0', 'option --batch must be >= 1, got 0' },
      { '--lr -1', 'option --lr must be >= 0, got -1' },
      { '--threads 0', 'option --threads must be >= 1, got 0' },
      { '--seeds 0,,1', 'option --seeds: "0,,1" has an empty entry' },
    } do
      local out, code = run('table2', '--dataset synthetic --quick --out /nonexistent/never ' .. c[1])
      assert.are_not.equal(0, code, out)
      assert.truthy(out:find(c[2], 1, true), out)
      assert.falsy(out:find('==', 1, true), 'a row started: ' .. out)
    end
  end)

  it('sweep --list lists one run per beta and runs nothing', function()
    local dir = shell.tmpdir()
    local out, code = run('sweep', '--list --quick --betas 0.5,2 --out ' .. shell.quote(dir .. '/r'))
    assert.are.equal(0, code, out)
    local lines = {}
    for l in out:gmatch('[^\n]+') do lines[#lines + 1] = l end
    assert.are.equal(2, #lines, out)
    assert.truthy(lines[1]:find('beta 0.5', 1, true))
    assert.truthy(lines[2]:find('beta 2', 1, true))
    local f = io.open(dir .. '/r', 'r')
    assert.is_nil(f, 'no results directory')
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('curves.lua: learning curves of runs, as PNG and SVG with their gnuplot script', function()
    local dir = shell.tmpdir()
    local args = '--dataset synthetic --subset 64 --test-subset 16 --eval-subset 16 --batch 32 --epochs 3'
    local id = shell.sh(string.format('%s scripts/table2.lua %s --list', shell.rllua, args)):match('^(%S+)')
    local out, code = shell.sh(string.format('%s scripts/table2.lua %s --out %s --only %s', shell.rllua, args,
      shell.quote(dir), id))
    assert.are.equal(0, code, out)
    out, code = run('curves', shell.quote(dir .. '/' .. id) .. ' --out ' .. shell.quote(dir .. '/fig/c'))
    assert.are.equal(0, code, out)
    for _, f in ipairs { 'c.png', 'c.svg', 'c_acc.png', 'c_acc.svg', 'c.gp', 'c.dat' } do
      local h = io.open(dir .. '/fig/' .. f, 'rb')
      assert.truthy(h, f)
      local bytes = h:read('a')
      h:close()
      assert.is_true(#bytes > (f:match('%.dat$') and 10 or 200), f)
      if f == 'c.png' then assert.are.equal('\137PNG', bytes:sub(1, 4)) end
      if f == 'c.svg' then assert.truthy(bytes:find('Training loss per epoch (synthetic, CNN001, eps 0.1', 1, true)) end
    end
    -- three epochs, three points
    local dat = io.open(dir .. '/fig/c.dat'):read('a')
    assert.are.equal(3, select(2, dat:gsub('\n', '')))
    out, code = run('curves', shell.quote(dir))
    assert.are_not.equal(0, code)
    assert.truthy(out:find('has no log.csv', 1, true), out)
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('eps_curve.lua: robust accuracy against eps, with intervals, as JSON, CSV and figures', function()
    local dir = shell.tmpdir()
    local rl = saved_cnn(dir .. '/m.safetensors')
    local out, code = run('eps_curve', shell.quote(dir .. '/m.safetensors') ..
      ' --dataset synthetic --n 16 --eps 0,0.05,0.2 --out ' .. shell.quote(dir .. '/e'))
    assert.are.equal(0, code, out)
    local r = rl.json.read(dir .. '/e.json')
    assert.are.equal(3, #r.rows)
    assert.are.equal(16, r.rows[1].n)
    assert.are.equal('pgd', r.settings.attack)
    for _, row in ipairs(r.rows) do
      assert.is_true(row.lo95 <= row.robust_accuracy and row.robust_accuracy <= row.hi95)
    end
    assert.is_true(r.rows[3].robust_accuracy <= r.rows[1].robust_accuracy)
    assert.truthy(io.open(dir .. '/e.png'))
    assert.truthy(io.open(dir .. '/e.csv'):read('a'):find('^eps,robust_accuracy,lo95,hi95,n\n0,'))
    out, code = run('eps_curve', shell.quote(dir .. '/m.safetensors') .. ' --dataset synthetic --eps 0,-1')
    assert.are_not.equal(0, code)
    assert.truthy(out:find("--eps: \"-1\" is not a radius", 1, true), out)
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('table1.lua: a histogram of the nearest-other-class distances, 2 eps and the minima marked', function()
    local f = io.open('/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz')
    if not f then return pending('dataset-fashion-mnist is not installed') end
    f:close()
    local dir = shell.tmpdir()
    local out, code = run('table1', '--dataset fashion-mnist --subset 500 --out ' .. shell.quote(dir))
    assert.are.equal(0, code, out)
    local svg = io.open(dir .. '/fashion-mnist_distances.svg'):read('a')
    assert.truthy(svg:find('2 eps = 0.2', 1, true))
    assert.truthy(svg:find('train-train min', 1, true) and svg:find('test-train min', 1, true))
    assert.truthy(io.open(dir .. '/fashion-mnist_distances.png'))
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('sweep.lua over seeds: mean and std per beta, and the figure with bars', function()
    local dir = shell.tmpdir()
    local out, code = run('sweep', '--dataset synthetic --subset 64 --test-subset 16 --eval-subset 16 --batch 32 ' ..
      '--epochs 1 --betas 1 --seeds 0,2 --out ' .. shell.quote(dir))
    assert.are.equal(0, code, out)
    local r = require('rl').json.read(dir .. '/sweep.json')
    assert.are.equal(1, #r.rows)
    assert.are.equal(2, r.rows[1].seeds)
    assert.is_number(r.rows[1].test_lipschitz_std)
    assert.are.same({ 0, 2 }, r.settings.seeds)
    local svg = io.open(dir .. '/sweep.svg'):read('a')
    assert.truthy(svg:find('TRADES beta sweep: synthetic, CNN001, eps 0.1, epochs 1, seeds 0,2', 1, true))
    assert.truthy(io.open(dir .. '/sweep.csv'):read('a'):find('^beta,test_acc,test_acc_std,'))
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('examples.lua: a labelled grid of clean, adversarial and perturbation images', function()
    local dir = shell.tmpdir()
    local rl = saved_cnn(dir .. '/model.safetensors')
    rl.json.write(dir .. '/config.json', require('rl.experiment').config { dataset = 'synthetic', method = 'at' })
    local out, code = run('examples', shell.quote(dir) .. ' --n 3')
    assert.are.equal(0, code, out)
    local svg = io.open(dir .. '/examples.svg'):read('a')
    assert.truthy(svg:find('synthetic, CNN001 (at): PGD-10 at eps 0.1 (l-inf)', 1, true))
    assert.truthy(svg:find('max |d| ', 1, true) and svg:find('true ', 1, true))
    assert.truthy(io.open(dir .. '/examples.png'))
    out, code = run('examples', shell.quote(dir .. '/nothing'))
    assert.are_not.equal(0, code)
    assert.truthy(out:find('holds no config.json and model.safetensors', 1, true), out)
    os.execute('rm -rf ' .. shell.quote(dir))
  end)
end)
