-- evaluate.lua - how robust a trained model is: its weights (a
-- .safetensors file, as rl.experiment writes model.safetensors) in the
-- dataset's model, the first N test images, and AutoAttack (Croce and Hein
-- 2020), the paper's PGD-10 or the reference's MultiTarget.  Writes
-- report.json (every setting, the model file, clean and robust accuracy,
-- what each attack broke, the checks and warnings) and report.md.
--
--   rllua scripts/evaluate.lua results/table2/<run-id>/model.safetensors --dataset mnist
--   rllua scripts/evaluate.lua model.safetensors --dataset cifar10 --n 1000 --batch 500 --device cuda
--
-- A killed AutoAttack run, started again with the same command, resumes
-- after its last finished attack (OUT/autoattack_state.safetensors).
local rl = require 'rl'
local cli = require 'rl.cli'
local exp = require 'rl.experiment'
local fs = require 'rl.fs'
local json = require 'rl.json'
local metrics = require 'rl.metrics'
local options = require 'rl.options'
local tables = require 'rl.tables'
local trained = require 'rl.trained'

local usage = [[
usage: rllua scripts/evaluate.lua MODEL.safetensors --dataset NAME [options]
The robust accuracy of the weights in MODEL.safetensors on the first N test
images; writes report.json and report.md into the output directory.
  --dataset NAME    mnist, fashion-mnist, cifar10, svhn, resimgnet, synthetic,
                    folder:PATH (required)
  --model NAME      the architecture (default: the dataset's in the paper)
  --attack NAME     autoattack (default), pgd (the paper's PGD-10) or
                    multitarget (the reference's MultiTarget)
  --eps E           the radius (default: the dataset's l-inf radius in the
                    paper; required with --norm l2)
  --norm NORM       linf (default) or l2
  --n N             the first N test images (default: the whole test split)
  --version V       AutoAttack's: standard (default), plus or rand
  --attacks LIST    AutoAttack's attacks instead of the version's, comma
                    separated (apgd-ce,apgd-t,fab-t,square, ...)
  --no-checks       AutoAttack without its gradient-masking checks
  --seed S          the attacks' seed (default 0)
  --batch B         images per chunk the attacks run on (default 256)
  --device DEV      cpu (default, or $RL_DEVICE) or cuda
  --data-dir DIR    where the dataset files are (else $RL_DATA, then Debian's
                    /usr/share/datasets/fashion-mnist)
  --threads N       CPU threads
  --out DIR         output directory (default results/evaluate/<dataset>-
                    <attack>-<model file>-<hash of the file and settings>)
  --quiet           no progress lines
  --help]]

local OPTIONS = {
  dataset = 'string', model = 'string', attack = 'string', eps = 'number', norm = 'string', n = 'count',
  version = 'string', attacks = 'string', ['no-checks'] = 'flag', seed = 'count', batch = 'count',
  device = 'string', ['data-dir'] = 'string', threads = 'count', out = 'string', quiet = 'flag',
}

local ATTACKS = { autoattack = true, pgd = true, multitarget = true }
local VERSIONS = { standard = true, plus = true, rand = true }
local NORMS = { linf = true, l2 = true }
local ATTACK_TITLE = { autoattack = 'AutoAttack', pgd = 'PGD-10', multitarget = 'MultiTarget' }

-- The files this script writes in its output directory.
local FILES = { 'report.json', 'report.md', 'autoattack_state.safetensors' }

local try = cli.try

local function known_datasets()
  local names = {}
  for k in pairs(exp.datasets) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ', ') .. ', folder:PATH'
end

-- ---------------------------------------------------------------------------
-- The command line

-- The options, checked, with the defaults filled in from the dataset's
-- config (rl.experiment); o.file is the model file.
local function parse(argv)
  local o, args = cli.parse(argv, { usage = usage, options = OPTIONS, args = 1,
    defaults = { attack = 'autoattack', norm = 'linf', seed = 0, batch = 256 } })
  o.file = args[1]
  if not o.file then error('no model file given (usage: rllua scripts/evaluate.lua MODEL.safetensors ' ..
    '--dataset NAME; see --help)', 0) end
  if not o.dataset then error('--dataset is required (' .. known_datasets() .. ')', 0) end
  if not exp.datasets[o.dataset] and not o.dataset:match('^folder:.') then
    error(string.format('unknown dataset %q (%s)', o.dataset, known_datasets()), 0)
  end
  if not ATTACKS[o.attack] then
    error(string.format('--attack must be autoattack, pgd or multitarget, got %q', o.attack), 0)
  end
  if not NORMS[o.norm] then error(string.format("--norm must be linf or l2, got %q", o.norm), 0) end
  if o.attack ~= 'autoattack' then
    for _, k in ipairs { 'version', 'attacks', 'no_checks' } do
      if o[k] ~= nil then error(string.format('--%s goes with --attack autoattack', (k:gsub('_', '-'))), 0) end
    end
  end
  o.version = o.version or (o.attack == 'autoattack' and 'standard' or nil)
  if o.version and not VERSIONS[o.version] then
    error(string.format('--version must be standard, plus or rand, got %q', o.version), 0)
  end
  if o.attacks then
    local list = {}
    for a in o.attacks:gmatch('[^,%s]+') do list[#list + 1] = a end
    if #list == 0 then error('--attacks needs a comma-separated list of attack names', 0) end
    local names, known = require('rl.autoattack').names, {}
    for _, k in ipairs(names) do known[k] = true end
    for _, a in ipairs(list) do
      if not known[a] then
        local s = options.suggest(a, names)
        error(string.format('--attacks: unknown attack %q%s (%s)', a, s and string.format(' (did you mean %s?)', s)
          or '', table.concat(names, ', ')), 0)
      end
    end
    o.attacks = list
  end
  if o.eps == nil and o.norm == 'l2' then error("--norm l2 needs --eps (the paper's radii are l-inf)", 0) end
  if o.eps ~= nil and o.eps <= 0 then error(string.format('--eps must be above 0, got %g', o.eps), 0) end
  if o.n == 0 then error('--n must be at least 1', 0) end
  if o.batch == 0 then error('--batch must be at least 1', 0) end
  local cfg = exp.config { dataset = o.dataset, model = o.model }
  o.model, o.eps, o.crop = cfg.model, o.eps or cfg.eps, cfg.crop
  o.device = o.device or cfg.device
  if o.attack == 'autoattack' then o.checks = not o.no_checks end
  o.no_checks = nil
  return o
end

-- ---------------------------------------------------------------------------
-- The model file, the images, the model

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The first line of a command's output, or nil.
local function read_command(cmd)
  local p = io.popen(cmd .. ' 2>/dev/null')
  if not p then return nil end
  local line = p:read('l')
  p:close()
  return line
end

--- What identifies the model file: its path, size, modification time and
-- SHA-256 (when sha256sum is there).
local function describe_file(path)
  local f, err = io.open(path, 'rb')
  if not f then error(string.format('cannot open the model file: %s', err), 0) end
  local bytes = f:seek('end')
  f:close()
  if bytes == 0 then error(string.format('the model file %s is empty', path), 0) end
  local q = shell_quote(path)
  local sha = read_command('sha256sum -- ' .. q)
  local cwd = read_command('pwd')
  return {
    path = path,
    absolute = path:sub(1, 1) == '/' and path or (cwd and cwd .. '/' .. path) or nil,
    bytes = bytes,
    mtime = math.tointeger(tonumber(read_command('stat -c %Y -- ' .. q))),
    sha256 = sha and sha:match('^(%x+)'),
  }
end

local function load_images(o)
  return try('', trained.test_images, o.dataset, { n = o.n, data_dir = o.data_dir, crop = o.crop })
end

local function load_model(o, file, shape, classes)
  return try('', trained.model, file.path, { model = o.model, dataset = o.dataset, shape = shape, classes = classes })
end

-- ---------------------------------------------------------------------------
-- The attacks

-- Progress per attack on stderr, in exp.progress's style.
local function progress_bars(quiet)
  local bars = {}
  return function(name, done, total)
    local p = bars[name]
    if not p or p.total ~= total then
      p = exp.progress(name, total, { quiet = quiet })
      bars[name] = p
    end
    p:update(done)
  end
end

-- 1-based positions of the set entries of a u8 [n] tensor.
local function positions(mask)
  local out = {}
  for i, v in ipairs(mask:to('cpu'):tolist()) do if v ~= 0 then out[#out + 1] = i end end
  return out
end

local function count(mask) return math.tointeger(mask:to('i64'):sum():item()) end

-- Test hook of spec/evaluate_spec.lua: RL_TEST_KILL_AT=attack:NAME ends
-- this process (SIGKILL) when AutoAttack's attack NAME has finished its
-- first chunk: the attacks before it are in the state file, NAME is not.
-- (Other values of the variable are rl.experiment's and are left alone.)
local function kill_hook()
  local target = (os.getenv('RL_TEST_KILL_AT') or ''):match('^attack:(.+)$')
  if not target then return function() end end
  return function(name)
    if name ~= target then return end
    io.stderr:write(string.format('RL_TEST_KILL_AT: ending in %s\n', name))
    io.stderr:flush()
    os.execute('kill -9 ' .. fs.pid())
    error('RL_TEST_KILL_AT: kill -9 did not end the process', 0)
  end
end

--- AutoAttack, resumable through the state file in the output directory.
-- Returns its info (rl.attacks.autoattack).
local function run_autoattack(model, x, y, o, state)
  local update, reach = progress_bars(o.quiet), kill_hook()
  local _, info = try('', rl.attacks.autoattack, model, x, y, {
    eps = o.eps, norm = o.norm, version = o.version, seed = o.seed, attacks = o.attacks, checks = o.checks,
    state = state, batch = o.batch, mode = 'eval', log = not o.quiet,
    progress = function(name, done, total)
      update(name, done, total)
      reach(name)
    end,
  })
  return info
end

--- PGD-10 or MultiTarget (rl.metrics, as the tables measure), chunk by
-- chunk; a sample is robust when it is classified right both clean and at
-- the attack's point.  Returns the result in the shape of autoattack's info.
local function run_metrics_attack(model, x, y, o)
  local n, B = x.shape[1], o.batch
  local g = rl.Generator(o.seed)
  local update = progress_bars(o.quiet)
  local clean, robust = {}, {}
  local t0 = rl.clock()
  model:eval()
  for i = 1, n, B do
    local b = math.min(B, n - i + 1)
    local xb, yb = x:narrow(1, i, b), y:narrow(1, i, b)
    local xa = try(o.attack .. ': ', metrics.adv_examples, model, xb, yb, {
      eps = o.eps, attack = o.attack, norm = o.norm == 'l2' and 2 or 'inf', generator = g,
    })
    rl.no_grad(function()
      local c = model(xb):argmax(2):eq(yb)
      clean[#clean + 1] = c
      robust[#robust + 1] = c:logical_and(model(xa):argmax(2):eq(yb))
    end)
    update(o.attack, i + b - 1, n)
  end
  clean, robust = rl.cat(clean, 1):to('u8'), rl.cat(robust, 1):to('u8')
  local nc, nr = count(clean), count(robust)
  return {
    n = n, clean = clean, robust = robust, clean_accuracy = nc / n, robust_accuracy = nr / n,
    attacks = { { name = o.attack, ran_on = nc, broke = nc - nr,
      broken = positions(clean:logical_and(robust:logical_not())), robust_accuracy = nr / n,
      seconds = rl.clock() - t0 } },
    checks = {}, warnings = {},
    settings = { eps = o.eps, norm = o.norm, seed = o.seed, attack = o.attack,
      steps = o.attack == 'pgd' and 10 or 20, step_size = o.attack == 'pgd' and 2 * o.eps / 10 or 2 * o.eps / 20,
      random_start = true },
  }
end

-- ---------------------------------------------------------------------------
-- The report

-- What produced the result: every setting (the output directory's name
-- hashes them with the model file's content).
local function settings_of(o, n)
  return { dataset = o.dataset, data_dir = o.data_dir, model = o.model, attack = o.attack, eps = o.eps,
    norm = o.norm, n = n, version = o.version, attacks = o.attacks, checks = o.checks, seed = o.seed,
    batch = o.batch, device = o.device }
end

-- results/evaluate/<dataset>-<attack>-<file>-<hash>: the file's stem, or
-- for a run's model.safetensors the run's directory name.
local function default_out(o, file, settings)
  local stem = o.file:match('([^/]+)%.safetensors$') or o.file:match('([^/]+)$')
  if stem == 'model' then stem = o.file:match('([^/]+)/[^/]+$') or stem end
  local key = json.encode { file = file.sha256 or file.bytes, settings = settings }
  local name = string.format('%s-%s-%s-%s', o.dataset, o.attack, stem, exp.short_hash(key)):gsub('[^%w%._%-]', '_')
  return 'results/evaluate/' .. name
end

local function pct(v) return v and string.format('%.2f%%', 100 * v) or '-' end

-- A value of the checks or settings as one cell of text.
local function cell(v)
  if type(v) == 'number' then return math.type(v) == 'integer' and tostring(v) or string.format('%.6g', v) end
  if type(v) == 'table' then return json.encode(v) end
  return tostring(v)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

--- report.md: the result first, then each attack, the checks, warnings and
-- every setting.
local function markdown(r)
  local s = r.settings
  local what = ATTACK_TITLE[r.attack] .. (r.attack == 'autoattack' and ' ' .. s.version or '')
  local lines = {
    string.format('# %s on %s: %s, %s eps %s', what, r.dataset.name, r.model.architecture, s.norm, cell(s.eps)), '',
    string.format('- model file: %s (%d bytes%s)', r.model.file.path, r.model.file.bytes,
      r.model.file.sha256 and ', sha256 ' .. r.model.file.sha256 or ''),
    string.format('- images: the first %d of the %d test images of %s (%s, %d classes)', r.n,
      r.dataset.test_images, r.dataset.name, r.dataset.image, r.dataset.classes),
    string.format('- command: %s', r.command),
    string.format('- finished %s in %.1f s', r.finished, r.seconds), '',
    tables.markdown({ 'images', 'clean accuracy', 'robust accuracy' },
      { { tostring(r.n), pct(r.clean_accuracy), pct(r.robust_accuracy) } }, { 'r', 'r', 'r' }), '',
    '## Attacks', '',
  }
  local rows = {}
  for _, a in ipairs(r.attacks) do
    rows[#rows + 1] = { a.name, tostring(a.ran_on), tostring(a.broke), pct(a.robust_accuracy),
      a.seconds and string.format('%.1f', a.seconds) or '-' }
  end
  lines[#lines + 1] = #rows > 0 and tables.markdown({ 'attack', 'ran on', 'broke', 'robust accuracy after',
    'seconds' }, rows, { 'l', 'r', 'r', 'r', 'r' }) or 'none'
  lines[#lines + 1] = ''
  lines[#lines + 1] = '## Checks'
  lines[#lines + 1] = ''
  local keys = sorted_keys(r.checks)
  if #keys == 0 then lines[#lines + 1] = r.attack == 'autoattack' and s.checks and 'none reported' or 'not run' end
  for _, k in ipairs(keys) do lines[#lines + 1] = string.format('- %s: %s', k, cell(r.checks[k])) end
  lines[#lines + 1] = ''
  lines[#lines + 1] = '## Warnings'
  lines[#lines + 1] = ''
  if #r.warnings == 0 then lines[#lines + 1] = 'none' end
  for _, w in ipairs(r.warnings) do lines[#lines + 1] = '- ' .. w end
  lines[#lines + 1] = ''
  lines[#lines + 1] = '## Settings'
  lines[#lines + 1] = ''
  local srows = {}
  for _, k in ipairs(sorted_keys(s)) do srows[#srows + 1] = { k, cell(s[k]) } end
  for _, k in ipairs(sorted_keys(r.attack_settings)) do
    srows[#srows + 1] = { r.attack .. '.' .. k, cell(r.attack_settings[k]) }
  end
  lines[#lines + 1] = tables.markdown({ 'setting', 'value' }, srows)
  return table.concat(lines, '\n') .. '\n'
end

local function command_line(argv)
  local words = { 'rllua', 'scripts/evaluate.lua' }
  for _, a in ipairs(argv) do
    words[#words + 1] = a:match('^[%w%._/:,=%-]+$') and a or shell_quote(a)
  end
  return table.concat(words, ' ')
end

-- ---------------------------------------------------------------------------
-- Main

cli.main('evaluate', function()
  local argv = arg or {}
  local o = parse(argv)
  if o.threads then rl.set_num_threads(o.threads) end
  local t0 = rl.clock()
  local file = describe_file(o.file)
  local x, y, ds, total = load_images(o)
  local n, classes = x.shape[1], #ds.classes
  local model = load_model(o, file, x.shape, classes)
  if o.device ~= 'cpu' then
    try('--device ' .. o.device .. ': ', function()
      model:to(o.device)
      x, y = x:to(o.device), y:to(o.device)
    end)
  end
  model:eval()
  local settings = settings_of(o, n)
  local out = o.out or default_out(o, file, settings)
  fs.mkdir(out, '--out')
  local removed = fs.remove_stale_temps(out, FILES)
  if #removed > 0 and not o.quiet then
    io.stderr:write(string.format('evaluate: removed %s (left by a killed run)\n', table.concat(removed, ', ')))
  end
  if not o.quiet then
    io.stderr:write(string.format('evaluate: %s, %s on the first %d test images of %s, %s eps %g -> %s\n',
      o.model, ATTACK_TITLE[o.attack], n, o.dataset, o.norm, o.eps, out))
  end

  local info
  if o.attack == 'autoattack' then
    info = run_autoattack(model, x, y, o, out .. '/autoattack_state.safetensors')
  else
    info = run_metrics_attack(model, x, y, o)
  end

  local attacks = {}
  for i, a in ipairs(info.attacks or {}) do
    attacks[i] = { name = a.name, ran_on = a.ran_on, broke = a.broke, broken = a.broken or {},
      robust_accuracy = a.robust_accuracy, seconds = a.seconds, resumed = a.resumed }
  end
  local report = {
    report = 'rllua evaluate', rllua = rl.version, command = command_line(argv),
    finished = os.date('!%Y-%m-%dT%H:%M:%SZ'), seconds = rl.clock() - t0,
    model = { architecture = o.model, file = file },
    dataset = { name = o.dataset, data_dir = o.data_dir, split = 'test', first = n, test_images = total,
      image = table.concat(x.shape, 'x', 2), classes = classes },
    attack = o.attack, settings = settings, attack_settings = info.settings,
    n = n, clean_accuracy = info.clean_accuracy, robust_accuracy = info.robust_accuracy,
    clean_correct = count(info.clean), robust_count = count(info.robust),
    misclassified = positions(info.clean:logical_not()),
    attacks = attacks, checks = info.checks or {}, warnings = info.warnings or {},
  }
  fs.write(out .. '/report.md', markdown(report))
  json.write(out .. '/report.json', report)
  print(string.format('%s: clean accuracy %s, robust accuracy %s (%s, %s eps %g, %d images)', o.model,
    pct(report.clean_accuracy), pct(report.robust_accuracy), ATTACK_TITLE[o.attack], o.norm, o.eps, n))
  for _, a in ipairs(attacks) do
    print(string.format('  %-12s broke %d of %d, robust accuracy after it %s', a.name, a.broke, a.ran_on,
      pct(a.robust_accuracy)))
  end
  for _, w in ipairs(report.warnings) do print('  warning: ' .. w) end
  print(string.format('wrote %s/report.json and report.md (%.1f s)', out, report.seconds))
end)
