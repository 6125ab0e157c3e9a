-- evaluate_spec.lua - scripts/evaluate.lua end to end on a small MLP
-- trained on the synthetic dataset: the reports of AutoAttack, PGD-10 and
-- MultiTarget, a killed AutoAttack run resuming after its last finished
-- attack, and the one-line errors.
local rl = require 'rl'
local json = rl.json

local shell = require 'helpers.shell'
local sh, tmpdir, quote = shell.sh, shell.tmpdir, shell.quote

local EVALUATE = shell.rllua .. ' scripts/evaluate.lua '

-- An MLP (rl.models.MLP's default layers, as --model MLP builds it) that
-- classifies the synthetic test images; it breaks under l-inf attacks
-- between eps 0.2 and 0.25.
local function train_mlp(path)
  local ds = rl.data.load('synthetic', { split = 'train', n = 64 })
  local x, y = rl.data.batch(ds.x, rl.arange(64), {}), ds.y
  rl.manual_seed(0)
  local m = rl.models.MLP { inputs = 784, classes = 10 }
  local opt = rl.optim.SGD(m:parameters(), { lr = 0.05, momentum = 0.9 })
  for _ = 1, 20 do
    local l = rl.F.cross_entropy(m(x), y)
    opt:zero_grad()
    l:backward()
    opt:step()
  end
  m:save(path)
end

local function file_size(path)
  local f = assert(io.open(path, 'rb'))
  local n = f:seek('end')
  f:close()
  return n
end

local read = shell.read

local function exists(path) return read(path) ~= nil end

-- The files of a directory (no temporaries may be left).
local function listing(dir)
  local p = io.popen('ls -A ' .. quote(dir))
  local names = {}
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return names
end

-- What every report must satisfy, whatever the attack.
local function check_consistent(r)
  assert.are.equal(r.n, r.settings.n)
  assert.are.equal(r.clean_correct / r.n, r.clean_accuracy)
  assert.are.equal(r.robust_count / r.n, r.robust_accuracy)
  assert.are.equal(r.n - r.clean_correct, #r.misclassified)
  local broke = 0
  for _, a in ipairs(r.attacks) do
    assert.are.equal(a.broke, #a.broken, a.name)
    broke = broke + a.broke
  end
  assert.are.equal(r.clean_correct - broke, r.robust_count)
  assert.are.equal(r.robust_accuracy, r.attacks[#r.attacks].robust_accuracy)
end

describe('evaluate.lua', function()
  local dir, model
  setup(function()
    dir = tmpdir()
    model = dir .. '/mlp.safetensors'
    train_mlp(model)
  end)
  teardown(function() os.execute('rm -rf ' .. quote(dir)) end)

  it('autoattack: report.json and report.md hold the settings, the model file and every number', function()
    -- AutoAttack standard with its checks; at eps 0.3 APGD-CE breaks (nearly)
    -- every point, so that the other attacks have little left to run on
    local out = dir .. '/aa'
    local log, code = sh(EVALUATE .. quote(model) .. ' --dataset synthetic --model MLP --eps 0.3 --n 4 --batch 2 ' ..
      '--out ' .. quote(out))
    assert.are.equal(0, code, log)
    assert.truthy(log:find('robust accuracy', 1, true), log)
    assert.truthy(log:find('apgd-ce 4/4', 1, true), log) -- progress per attack
    local r = assert(json.read(out .. '/report.json'))
    assert.are.equal('autoattack', r.attack)
    assert.are.same({ dataset = 'synthetic', model = 'MLP', attack = 'autoattack', eps = 0.3, norm = 'linf',
      n = 4, version = 'standard', checks = true, seed = 0, batch = 2, device = os.getenv('RL_DEVICE') or 'cpu' },
      r.settings) -- the default device is $RL_DEVICE's (cuda under make test-cuda-emu)
    assert.are.same({ 'apgd-ce', 'apgd-t', 'fab-t', 'square' }, r.attack_settings.attacks)
    assert.are.equal('MLP', r.model.architecture)
    assert.are.equal(model, r.model.file.path)
    assert.are.equal(file_size(model), r.model.file.bytes)
    assert.is_number(r.model.file.mtime)
    local sum = sh('sha256sum ' .. quote(model)):match('^(%x+)')
    if sum then assert.are.equal(sum, r.model.file.sha256) end
    assert.are.same({ name = 'synthetic', split = 'test', first = 4, test_images = 200, image = '1x28x28',
      classes = 10 }, r.dataset)
    assert.are.equal(4, r.n)
    local names = {}
    for i, a in ipairs(r.attacks) do names[i] = a.name end
    assert.are.same({ 'apgd-ce', 'apgd-t', 'fab-t', 'square' }, names)
    check_consistent(r)
    for _, k in ipairs { 'square', 'zero_grad', 'steps', 'eps_one' } do assert.is_table(r.checks[k], k) end
    assert.is_table(r.warnings)
    assert.truthy(r.command:find('scripts/evaluate.lua', 1, true))
    local md = assert(read(out .. '/report.md'))
    assert.truthy(md:find('# AutoAttack standard on synthetic: MLP, linf eps 0.3', 1, true), md)
    assert.truthy(md:find(string.format('|      4 | %13.2f%% | %14.2f%% |', 100 * r.clean_accuracy,
      100 * r.robust_accuracy), 1, true), md)
    for _, a in ipairs(r.attacks) do
      assert.truthy(md:find(string.format('| %-7s | %6d | %5d |', a.name, a.ran_on, a.broke), 1, true), a.name)
    end
    assert.truthy(md:find('## Checks\n\n- eps_one: ', 1, true), md)
    assert.truthy(md:find('| version', 1, true))
    -- the state of the attacks is kept; no temporary is left
    assert.are.same({ 'autoattack_state.safetensors', 'report.json', 'report.md' }, listing(out))
  end)

  it('autoattack: a run killed inside an attack resumes after the last finished one', function()
    -- at eps 0.22 APGD-CE leaves points for APGD-T, which is killed after
    -- its first chunk
    local settings = ' --dataset synthetic --model MLP --eps 0.22 --n 8 --batch 4 --attacks apgd-ce,apgd-t ' ..
      '--no-checks --out '
    local out, whole = dir .. '/resume', dir .. '/whole'
    local args = quote(model) .. settings .. quote(out)
    local log, code = sh('RL_TEST_KILL_AT=attack:apgd-t ' .. EVALUATE .. args)
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find('RL_TEST_KILL_AT: ending in apgd-t', 1, true), log)
    assert.is_true(exists(out .. '/autoattack_state.safetensors'))
    assert.is_false(exists(out .. '/report.json'))
    log, code = sh(EVALUATE .. args)
    assert.are.equal(0, code, log)
    assert.truthy(log:find('resuming from ' .. out .. '/autoattack_state.safetensors after apgd-ce', 1, true), log)
    assert.is_nil(log:find('apgd-ce 8/8', 1, true), 'apgd-ce ran again')
    local r = assert(json.read(out .. '/report.json'))
    assert.are.equal(2, #r.attacks)
    assert.are.same({ 'apgd-ce', true }, { r.attacks[1].name, r.attacks[1].resumed })
    assert.are.same({ 'apgd-t' }, { r.attacks[2].name, r.attacks[2].resumed })
    assert.is_false(r.settings.checks)
    check_consistent(r)
    -- the result is the uninterrupted run's
    log, code = sh(EVALUATE .. quote(model) .. settings .. quote(whole))
    assert.are.equal(0, code, log)
    local w = assert(json.read(whole .. '/report.json'))
    for _, k in ipairs { 'clean_correct', 'robust_count', 'misclassified' } do assert.are.same(w[k], r[k], k) end
    for i, a in ipairs(w.attacks) do
      assert.are.same({ a.name, a.ran_on, a.broke, a.broken }, { r.attacks[i].name, r.attacks[i].ran_on,
        r.attacks[i].broke, r.attacks[i].broken })
    end
    -- other settings in the same directory do not pick up this state
    log, code = sh(EVALUATE .. args .. ' --seed 1')
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find('evaluate: autoattack: state file ' .. out .. '/autoattack_state.safetensors was ' ..
      'written for the settings', 1, true), log)
  end)

  it('pgd and multitarget: the paper\'s PGD-10 and MultiTarget, chunk by chunk', function()
    for _, attack in ipairs { 'pgd', 'multitarget' } do
      local out = dir .. '/' .. attack
      local log, code = sh(EVALUATE .. quote(model) .. ' --dataset synthetic --model MLP --eps 0.25 --n 8 ' ..
        '--batch 3 --quiet --attack ' .. attack .. ' --out ' .. quote(out))
      assert.are.equal(0, code, log)
      local r = assert(json.read(out .. '/report.json'))
      assert.are.equal(attack, r.attack)
      assert.are.equal(1, #r.attacks)
      assert.are.equal(attack, r.attacks[1].name)
      assert.are.equal(r.clean_correct, r.attacks[1].ran_on)
      assert.is_nil(r.settings.version)
      assert.are.same({}, r.checks)
      check_consistent(r)
      local md = read(out .. '/report.md')
      assert.truthy(md:find(attack == 'pgd' and '# PGD-10 on synthetic' or '# MultiTarget on synthetic', 1, true), md)
      assert.truthy(md:find('## Checks\n\nnot run', 1, true), md)
    end
  end)

  it('by default writes under results/evaluate/, named by dataset, attack, file and settings', function()
    local cwd = dir .. '/cwd'
    shell.mkdir(cwd)
    local here = assert(sh('pwd'):match('^(.-)\n'))
    local bin = shell.rllua:sub(1, 1) == '/' and shell.rllua or here .. '/' .. shell.rllua
    local run = string.format('cd %s && %s %s/scripts/evaluate.lua %s --dataset synthetic --model MLP ' ..
      '--attack pgd --n 4 --quiet', quote(cwd), bin, here, quote(model))
    local log, code = sh(run)
    assert.are.equal(0, code, log)
    local names = listing(cwd .. '/results/evaluate')
    assert.are.equal(1, #names)
    assert.truthy(names[1]:match('^synthetic%-pgd%-mlp%-%x%x%x%x%x%x%x%x$'), names[1])
    -- the same command writes the same directory; other settings another
    sh(run)
    sh(run .. ' --seed 3')
    assert.are.equal(2, #listing(cwd .. '/results/evaluate'))
  end)

  it('errors are one line naming the problem, with a nonzero status and no traceback', function()
    local small = dir .. '/four_classes.safetensors'
    rl.models.MLP { inputs = 784, classes = 4 }:save(small)
    local m = quote(model)
    local cases = {
      { m .. ' --dataset synthetic --modle MLP', 'unknown option --modle (did you mean --model?)' },
      { quote(dir .. '/none.safetensors') .. ' --dataset synthetic', 'cannot open the model file: ' .. dir ..
        '/none.safetensors: No such file or directory' },
      { m .. ' --dataset synthetc', 'unknown dataset "synthetc"' },
      { m .. ' --model MLP', '--dataset is required' },
      { '--dataset synthetic', 'no model file given' },
      { m .. ' --dataset synthetic', 'the weights in ' .. model .. ' are not those of CNN001 for synthetic ' ..
        '(1x28x28 images, 10 classes): keys 8 missing (conv1.weight, conv1.bias, conv2.weight and 5 more)' },
      { quote(small) .. ' --dataset synthetic --model MLP',
        'net.out.weight is 4x256 in the file, 10x256 in the model' },
      { 'README.md --dataset synthetic --model MLP', "load: 'README.md' is not a safetensors file" },
      { m .. ' --dataset synthetic --attack fgsm', '--attack must be autoattack, pgd or multitarget' },
      { m .. ' --dataset synthetic --attack pgd --version plus', '--version goes with --attack autoattack' },
      { m .. ' --dataset synthetic --attacks apgd-c', 'unknown attack "apgd-c" (did you mean apgd-ce?)' },
      { m .. ' --dataset synthetic --norm l2', '--norm l2 needs --eps' },
      { m .. ' --dataset synthetic --n x', 'option --n needs a non-negative integer, got "x"' },
    }
    for _, c in ipairs(cases) do
      local log, code = sh(EVALUATE .. c[1])
      assert.are_not.equal(0, code, c[1])
      assert.truthy(log:find('^evaluate: ') and log:find(c[2], 1, true), c[1] .. ' said: ' .. log)
      assert.is_nil(log:find('traceback', 1, true), log)
      if not c[2]:find('unknown option', 1, true) then -- a misspelt option also shows the usage
        assert.are.equal(1, select(2, log:gsub('\n', '')), c[1] .. ' said: ' .. log)
      end
    end
  end)
end)
