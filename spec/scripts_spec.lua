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

-- A user's mistake: a non-zero exit and one line holding want, without a
-- Lua stack trace or the "file.lua:N: " of the check that refused it.
local function refused(out, code, want)
  assert.are_not.equal(0, code, out)
  assert.truthy(out:find(want, 1, true), out)
  assert.falsy(out:find('stack traceback', 1, true), out)
  assert.falsy(out:find('%.lua:%d+:'), out)
  assert.are.equal(1, select(2, out:gsub('\n', '')), out)
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
      { '--lr 1e999', 'option --lr must be a finite number, got inf' },
      { '--lr -1e999', 'option --lr must be a finite number, got -inf' },
      { '--threads 0', 'option --threads must be >= 1, got 0' },
      { '--seeds 0,,1', 'option --seeds: "0,,1" has an empty entry' },
    } do
      local out, code = run('table2', '--dataset synthetic --quick --out /nonexistent/never ' .. c[1])
      assert.are_not.equal(0, code, out)
      assert.truthy(out:find(c[2], 1, true), out)
      assert.falsy(out:find('==', 1, true), 'a row started: ' .. out)
    end
  end)

  it('--name=value is --name value; -h and --help anywhere print the usage; a misspelt option says where the rest is',
    function()
      local out, code = run('table2', '--dataset=synthetic --epochs=1 --list')
      assert.are.equal(0, code, out)
      assert.truthy(out:find('^synthetic%-CNN001%-natural%-e1%-'), out)
      for _, a in ipairs { '-h', '--epochs x --help', '--no-such --help' } do
        out, code = run('table2', a)
        assert.are.equal(0, code, a .. ': ' .. out)
        assert.truthy(out:find('^usage: rllua scripts/table2%.lua'), a .. ': ' .. out)
      end
      out, code = run('table2', '--epoch 3')
      assert.are_not.equal(0, code, out)
      assert.are.equal('table2: unknown option --epoch (did you mean --epochs?)\nusage: rllua scripts/table2.lua ' ..
        '[options]\n(--help lists every option)\n', out)
      out, code = run('table2', '--quick=1')
      assert.truthy(out:find('option --quick takes no value (got --quick=1)', 1, true), out)
      -- Slurm's tasks get the command line without the sbatch options, = or not
      local slurm = require 'rl.slurm'
      assert.are.same({ '--epochs=3', '--out', 'x' }, slurm.forwarded({ '--partition=gpu', '--epochs=3', '--out', 'x',
        '--slurm' }, { partition = 'string', epochs = 'integer', out = 'string', slurm = 'flag' }))
    end)

  -- a tester's list: each of these printed a traceback, an internal
  -- file:line, a partial list, or ran on as if nothing were wrong
  it('a bad dataset, model, device, beta or radius is refused in one line, before anything runs', function()
    local GPU = 'CUDA is not available'
    local gpu_here = pcall(require('rl').device, 'cuda')
    for _, c in ipairs {
      { 'table2', '--dataset nosuch --list', 'table2: experiment: unknown dataset "nosuch"' },
      { 'table2', '--dataset synthetic --precision fp16 --list', "table2: experiment: precision must be 'fp32'" },
      { 'table2', '--dataset synthetic --device gpu --list', "table2: experiment: unknown device 'gpu'" },
      { 'table2', '--dataset synthetic --model Foo --list', 'table2: experiment: unknown model "Foo" (known: CNN001' },
      { 'table4', '--dataset synthetic --list', 'table4: the paper has no dropout rate for synthetic' },
      -- 0 gave "Natural" and "Natural + dropout" one run id
      { 'table4', '--dataset synthetic --dropout 0 --list', 'table4: option --dropout: a rate in (0, 1) is needed, got 0' },
      { 'table4', '--dataset synthetic --dropout 1 --list', 'table4: option --dropout: a rate in (0, 1) is needed, got 1' },
      { 'table2', '--dataset synthetic --subset 2000 --list',
        "table2: experiment: subset = 2000 is more than the 1000 examples of synthetic's train split" },
      { 'sweep', '--dataset synthetic --betas 1,-2 --list', 'sweep: option --betas: "-2" is not a beta' },
      { 'sweep', '--dataset synthetic --betas 1,,2 --list', 'sweep: option --betas: "1,,2" has an empty entry' },
      { 'sweep', '--dataset synthetic --betas 1,1 --list', 'sweep: option --betas: beta 1 is given twice' },
      { 'poc', '--eps -1', 'poc: option --eps: -1 is not a radius' },
      { 'poc', '--subset 0', 'poc: option --subset must be at least 1' },
      { 'table1', '--bins 0', 'table1: --bins must be at least 1, got 0' },
      { 'table1', '--subset 0', 'table1: --subset must be at least 1' },
      { 'table1', '--dataset synthetic --subset 64 --out /proc/none/x', 'table1: --out: cannot create directory' },
      -- (where a GPU is at hand the run would start: no case)
      not gpu_here and { 'table2', '--dataset synthetic --quick --device cuda --out /nonexistent/never',
        'table2: experiment: device cuda: ' .. GPU } or false,
    } do
      if c then
        local out, code = run(c[1], c[2])
        refused(out, code, c[3])
      end
    end
  end)

  it('table1 on a dataset the paper has no eps for (synthetic) writes its table and figure', function()
    local dir = shell.tmpdir()
    local out, code = run('table1', '--dataset synthetic --subset 64 --out ' .. shell.quote(dir))
    assert.are.equal(0, code, out)
    assert.truthy(shell.read(dir .. '/synthetic_distances.png'), out)
    -- the key below the plot: inside, it hid the minima's labels (top right)
    local gp = shell.read(dir .. '/synthetic_distances.gp')
    assert.truthy(gp:find('set key outside below', 1, true) and not gp:find('set key inside', 1, true), gp)
    local md = shell.read(dir .. '/table.md')
    assert.truthy(md:find('written by: --dataset synthetic --subset 64', 1, true), md)
    local csv = shell.read(dir .. '/table.csv')
    assert.truthy(csv:match('^[^\n]*,subset,bins,version\n'), csv)
    os.execute('rm -rf ' .. shell.quote(dir))
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
    -- the bars are the Wilson intervals [lo95, hi95] in %, not acc +- (hi - lo) / 2
    local i = 0
    for line in io.open(dir .. '/e.dat'):lines() do
      i = i + 1
      local x, y, lo, hi = line:match('^(%S+) (%S+) (%S+) (%S+)$')
      local row = r.rows[i]
      assert.are.equal(row.eps, tonumber(x), line)
      assert.is_true(math.abs(tonumber(y) - 100 * row.robust_accuracy) < 1e-6, line)
      assert.is_true(math.abs(tonumber(lo) - 100 * row.lo95) < 1e-6 and math.abs(tonumber(hi) - 100 * row.hi95) < 1e-6,
        line)
      assert.is_true(tonumber(lo) >= 0 and tonumber(hi) <= 100, line)
    end
    assert.are.equal(3, i)
    assert.truthy(io.open(dir .. '/e.gp'):read('a'):find('using 1:2:3:4 with yerrorlines', 1, true))
    out, code = run('eps_curve', shell.quote(dir .. '/m.safetensors') .. ' --dataset synthetic --eps 0,-1')
    assert.are_not.equal(0, code)
    assert.truthy(out:find("--eps: \"-1\" is not a radius", 1, true), out)
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('eps_curve.lua refuses a bad option in one line, before any file is written', function()
    local dir = shell.tmpdir()
    saved_cnn(dir .. '/m.safetensors')
    local base = shell.quote(dir .. '/m.safetensors') .. ' --dataset synthetic --n 4 --eps 0 --out ' ..
      shell.quote(dir .. '/e')
    for _, c in ipairs {
      { '--batch 0', '--batch must be at least 1' },
      { '--n 0', '--n must be at least 1' },
      { "--eps ''", '--eps: "" has an empty entry' },
      { '--eps ,', '--eps: "," has an empty entry' },
      { '--eps 0.1,,0.2', '--eps: "0.1,,0.2" has an empty entry' },
      { '--eps 0.1,', '--eps: "0.1," has an empty entry' },
      { '--dataset nosuch', 'eps_curve: experiment: unknown dataset "nosuch"' },
      { '--model Foo', 'eps_curve: models.get: unknown model "Foo"' },
    } do
      local out, code = run('eps_curve', base .. ' ' .. c[1])
      refused(out, code, c[2])
      assert.is_nil(io.open(dir .. '/e.json'), c[1] .. ' wrote e.json')
    end
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('bf16_quality.lua refuses an unknown method, model or device before any run', function()
    local dir = shell.tmpdir()
    for _, c in ipairs {
      { '--method foo', '--method: unknown method "foo" (known: ' },
      { '--model Foo', '--model: unknown model "Foo" (known: ' },
      { '--device gpu', "--device gpu: unknown device 'gpu'" },
      { '--epochs 0', 'experiment: epochs must be >= 1, got 0' },
    } do
      local out, code = run('bf16_quality', c[1] .. ' --out ' .. shell.quote(dir .. '/q'))
      refused(out, code, 'bf16_quality: ' .. c[2])
    end
    assert.is_nil(io.open(dir .. '/q'), 'no results directory')
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('bench_attacks.lua names a weights or data file it cannot read, in one line', function()
    local dir = shell.tmpdir()
    local out, code = run('bench_attacks', '--weights /nonexistent/w.safetensors')
    refused(out, code, 'bench_attacks: --weights /nonexistent/w.safetensors: no such file')
    local junk = dir .. '/junk'
    io.open(junk, 'w'):write('not a safetensors file'):close()
    out, code = run('bench_attacks', '--weights ' .. shell.quote(junk))
    refused(out, code, 'bench_attacks: --weights ' .. junk .. ': ')
    os.execute('rm -rf ' .. shell.quote(dir))
  end)

  it('bench_gpu.lua --help names bench_gpu.lua; bench_models.lua says it is a module', function()
    local out, code = run('bench_gpu', '--help')
    assert.are.equal(0, code, out)
    assert.truthy(out:find('^usage: rllua scripts/bench_gpu%.lua '), out)
    out, code = run('bench_models', '--help')
    refused(out, code, 'bench_models: this file is a module of scripts/bench.lua and bench_gpu.lua, not a script')
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
    -- --out in a folder not there yet: made, as curves.lua and report.lua do
    out, code = run('examples', shell.quote(dir) .. ' --n 1 --out ' .. shell.quote(dir .. '/new/fig/ex'))
    assert.are.equal(0, code, out)
    assert.truthy(io.open(dir .. '/new/fig/ex.svg'), out)
    out, code = run('examples', shell.quote(dir .. '/nothing'))
    assert.are_not.equal(0, code)
    assert.truthy(out:find('holds no config.json and model.safetensors', 1, true), out)
    os.execute('rm -rf ' .. shell.quote(dir))
  end)
end)
