-- bench_attacks.lua - AutoAttack (standard, l-inf eps 0.1) on Fashion-MNIST
-- test images with the AT CNN001, rllua beside torchattacks 3.5.1 on the
-- same machine in the same run, both on --threads threads.
--
-- rllua runs rl.attacks.autoattack (checks off); its record gives each
-- attack's seconds.  torchattacks runs as torchattacks' MultiAttack runs the
-- four attacks (fra31's settings, spec/helpers/torchattacks_ref.py): each
-- attack on the points the ones before it left robust, one helper call per
-- attack, so that each has its own time (the helper's, without Python's
-- start-up and the model load, which are reported apart).  Printed: per
-- attack the points it ran on, what it broke and the seconds of each
-- side, and rllua / torchattacks (below 1: rllua is faster); the same
-- figures go to --out as JSON.
--
--   rllua scripts/bench_attacks.lua [--n 500] [--threads 2] [--weights W --data D]
--       [--out results/bench_attacks.json] [--steps 100 --targets 9 --queries 5000] [--no-torch]
--
-- Without --weights, the AT model of spec/helpers/aa_fixture.lua (trained
-- on the first call, about 2 minutes, then cached under build/); without
-- --data, the first --n test images.  --steps, --targets and --queries
-- shrink the budget on both sides for a quick look.
local rl = require 'rl'
local cli = require 'rl.cli'
local fs = require 'rl.fs'
local json = require 'rl.json'
local tables = require 'rl.tables'

local SCRIPTS = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
package.path = (SCRIPTS == 'scripts' and '.' or SCRIPTS .. '/..') .. '/spec/?.lua;' .. package.path
local fixture = require 'helpers.aa_fixture'

local USAGE = 'usage: rllua scripts/bench_attacks.lua [--n N] [--threads N] [--weights FILE] [--data FILE]\n' ..
  '         [--out FILE] [--steps N] [--targets N] [--queries N] [--no-torch]'
local opts = cli.main('bench_attacks', function()
  local o = cli.parse(arg, { usage = USAGE,
    options = { n = 'integer', threads = 'integer', weights = 'string', data = 'string', out = 'string',
      steps = 'integer', targets = 'integer', queries = 'integer', ['no-torch'] = 'flag' },
    defaults = { n = 500, threads = 2, out = 'results/bench_attacks.json', steps = 100, targets = 9,
      queries = 5000 } })
  if o.n < 1 or o.threads < 1 or o.steps < 1 or o.queries < 1 or o.targets < 1 or o.targets > 9 then
    error('--n, --threads, --steps and --queries must be >= 1, --targets in 1..9\n' .. USAGE, 0)
  end
  if o.data and not o.weights then error('--data goes with --weights\n' .. USAGE, 0) end
  for _, k in ipairs { 'weights', 'data' } do
    if o[k] and not fs.exists(o[k]) then error(string.format('--%s %s: no such file', k, o[k]), 0) end
  end
  return o
end)
rl.set_num_threads(opts.threads)
local EPS = 0.1
local NAMES = { 'apgd-ce', 'apgd-t', 'fab-t', 'square' }
local full = opts.steps == 100 and opts.targets == 9 and opts.queries == 5000
local say = function(line) io.stderr:write('bench_attacks: ', line, '\n'); io.stderr:flush() end

-- the model and the images; a file given that is not a CNN001's weights or
-- a fixture's images is refused in one line naming it (without the
-- "file:line: " of the check that refused it), before the fixture is made
local function load_file(what, path, fn)
  local ok, a, b = pcall(fn, path)
  if not ok then error(string.format('%s %s: %s', what, path, cli.plain(a)), 0) end
  return a, b
end
local weights, data = opts.weights, opts.data
local model, x, y = cli.main('bench_attacks', function()
  local m = weights and load_file('--weights', weights, fixture.model)
  if not weights then
    local f = fixture.get { n = opts.n, log = say }
    weights, data = f.at, f.data
    m = load_file('the fixture weights', weights, fixture.model)
  elseif not data then
    data = fixture.get { n = opts.n, log = say }.data
  end
  return m, load_file(opts.data and '--data' or 'the fixture images', data, fixture.data)
end)
if x.shape[1] ~= opts.n then
  x, y = x:narrow(1, 1, math.min(opts.n, x.shape[1])):contiguous(), y:narrow(1, 1, math.min(opts.n, y.shape[1]))
      :contiguous()
end
local N = x.shape[1]

-- rllua: the ensemble, each attack's seconds from its record
local function bench_rllua()
  local t0 = rl.clock()
  local _, info = rl.attacks.autoattack(model, x, y, { eps = EPS, norm = 'linf', version = 'standard', seed = 0,
    steps = opts.steps, n_target_classes = opts.targets, queries = opts.queries, checks = false,
    log = function(line) say('rllua ' .. line) end })
  local out = { seconds = rl.clock() - t0, clean_accuracy = info.clean_accuracy,
    robust_accuracy = info.robust_accuracy, attacks = {} }
  for _, r in ipairs(info.attacks) do
    out.attacks[r.name] = { ran_on = r.ran_on, broke = r.broke, seconds = r.seconds,
      robust_accuracy = r.robust_accuracy }
  end
  return out
end

-- torchattacks: MultiAttack's run, one helper call per attack
-- (aa_fixture.torch_chain), for a time per attack
local function bench_torch(dir)
  local chain, why = fixture.torch_chain(weights, x, y, { eps = EPS, steps = opts.steps, targets = opts.targets,
    queries = opts.queries, seed = 0, threads = opts.threads, dir = dir })
  if not chain then return nil, 'torch or torchattacks is not installed: ' .. why:gsub('%s+$', '') end
  local out = { seconds = chain.seconds, overhead = chain.overhead, clean_accuracy = chain.clean_accuracy,
    robust_accuracy = chain.robust_accuracy, attacks = {} }
  for _, st in ipairs(chain.stages) do
    out.attacks[st.name] = { ran_on = st.ran_on, broke = st.broke, seconds = st.seconds,
      robust_accuracy = st.robust_accuracy }
    say(string.format('torchattacks %-8s robust accuracy %.2f%% (broke %d of %d, %.1f s)', st.name,
      100 * st.robust_accuracy, st.broke, st.ran_on, st.seconds))
  end
  return out
end

say(string.format('%d images, eps %g, %d thread(s), %d steps, %d targets, %d queries; weights %s', N, EPS,
  opts.threads, opts.steps, opts.targets, opts.queries, weights))
local mine = bench_rllua()
local theirs, why
if not opts.no_torch then
  local dir = os.tmpname()
  os.remove(dir)
  fs.mkdir(dir, 'bench_attacks')
  theirs, why = bench_torch(dir)
  os.execute("rm -rf '" .. dir .. "'")
else
  why = '--no-torch'
end

-- the table
local head = { 'attack', 'rllua on', 'broke', 'rllua s', 'torch on', 'broke', 'torch s', 'ratio' }
local rows, ratio = {}, {}
local function f1(v) return v and string.format('%.1f', v) or '-' end
for _, name in ipairs(NAMES) do
  local a, b = mine.attacks[name] or {}, theirs and theirs.attacks[name] or {}
  ratio[name] = a.seconds and b.seconds and b.seconds > 0 and a.seconds / b.seconds or nil
  rows[#rows + 1] = { name, tostring(a.ran_on or '-'), tostring(a.broke or '-'), f1(a.seconds),
    tostring(b.ran_on or '-'), tostring(b.broke or '-'), f1(b.seconds),
    ratio[name] and string.format('%.3f', ratio[name]) or '-' }
end
ratio.total = theirs and mine.seconds / theirs.seconds or nil
rows[#rows + 1] = { 'total', tostring(N), '', f1(mine.seconds), tostring(N), '', f1(theirs and theirs.seconds),
  ratio.total and string.format('%.3f', ratio.total) or '-' }
print(string.format('AutoAttack standard, CNN001 (AT) on %d Fashion-MNIST test images, l-inf eps %g, ' ..
  '%d thread(s)%s', N, EPS, opts.threads, full and '' or
  string.format(' (reduced: %d steps, %d targets, %d queries)', opts.steps, opts.targets, opts.queries)))
print(tables.text(head, rows, { nil, 'r', 'r', 'r', 'r', 'r', 'r', 'r' }))
print(string.format('robust accuracy: rllua %.2f%%, torchattacks %s (clean %.2f%%)', 100 * mine.robust_accuracy,
  theirs and string.format('%.2f%%', 100 * theirs.robust_accuracy) or '-', 100 * mine.clean_accuracy))
if theirs then
  print(string.format('torchattacks: %.1f s more in Python start-up and model loading (not counted)',
    theirs.overhead))
else
  print('torchattacks: not run (' .. why .. ')')
end

local dir = opts.out:match('^(.*)/[^/]*$')
if dir then fs.mkdir(dir, 'bench_attacks') end
json.write(opts.out, {
  benchmark = 'autoattack-standard', model = 'CNN001', weights = weights, data = data, n = N, eps = EPS,
  norm = 'linf', threads = opts.threads, steps = opts.steps, target_classes = opts.targets,
  queries = opts.queries, full_settings = full,
  rllua = mine, torchattacks = theirs or { skipped = why }, ratio = ratio,
})
say('figures written to ' .. opts.out)
