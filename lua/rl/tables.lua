--- rl.tables: what the paper's table scripts share: command-line options
-- (on rl.cli), running the rows (each one rl.experiment run), laying the
-- table out as the paper does, and the one table writer of the scripts:
-- Markdown, plain text, CSV, and table.md / table.csv / table.json on disk.
local rl = require 'rl.base'
local cli = require 'rl.cli'
local data = require 'rl.data'
local exp = require 'rl.experiment'
local checks = require 'rl.options' -- (tables.parse has its own 'options')
local fs = require 'rl.fs'
local json = require 'rl.json'
local metrics = require 'rl.metrics'
local slurm = require 'rl.slurm'

local tables = {}

tables.usage_common = [[
  --dataset NAME      mnist, fashion-mnist, cifar10, svhn, resimgnet, folder:PATH,
                      or synthetic (generated, for a quick try; no files)
                      (default: the paper's datasets for this table)
  --data-dir DIR      where the dataset files are (else $RL_DATA, then Debian's
                      /usr/share/datasets/fashion-mnist)
  --quick             a small budget: subset of the data, few epochs
  --epochs N, --subset N, --test-subset N, --eval-subset N, --batch N, --lr X,
  --seed N, --model NAME
                      override the paper's settings
  --seeds LIST        run each row once per seed (e.g. 0,1,2); the table
                      shows mean +- standard deviation over the seeds
  --device DEV        cpu (default, or $RL_DEVICE), cuda
  --precision P       fp32 (default; RL_CUDA_TF32=1 makes tf32 the default on a
                      GPU), tf32 (GPU: f32 with TF32 GEMMs) or bf16
                      (training steps under rl.autocast: convolutions and
                      linears in bf16, the rest in f32; every measurement f32)
  --attack-precision P  fp32 (default) or bf16: the attack steps inside
                      training (AT, TRADES, ...) in bf16 too (needs --precision bf16)
  --threads N         CPU threads
  --out DIR           results directory (default results/<table>)
  --attack NAME       the adversarial column's attack: pgd (default, the paper's
                      PGD-10), multitarget (the reference's *MT evaluation, in
                      place of PGD) or autoattack (AutoAttack standard on the
                      test split, an "AA acc" column beside PGD's); a finished
                      row is measured again from its saved model
  --only RUN-ID       run one row only
  --list              print each row's id, dataset, label and settings; run nothing
]] .. slurm.usage .. [[

  --help]]

-- The options of tables.usage_common, as rl.cli kinds.
local COMMON = {
  epochs = 'number', subset = 'number', ['test-subset'] = 'number', ['eval-subset'] = 'number',
  batch = 'number', lr = 'number', seed = 'number', threads = 'number',
  dataset = 'string', ['data-dir'] = 'string', device = 'string', out = 'string', only = 'string',
  model = 'string', attack = 'string', seeds = 'string', precision = 'string', ['attack-precision'] = 'string',
  quick = 'flag', list = 'flag',
}
for k, v in pairs(slurm.options) do COMMON[k] = v end

-- The numeric common options: the settings' kinds and ranges
-- (exp.numeric_settings), and --threads.
local NUMBERS = { { 'threads', 'integer', '>= 1' } }
for _, r in ipairs(exp.numeric_settings) do
  if COMMON[(r[1]:gsub('_', '-'))] then NUMBERS[#NUMBERS + 1] = { (r[1]:gsub('_', '-')), r[2], r[3] } end
end

-- What tables.submit needs of a parsed command line: its words and kinds.
local parsed = setmetatable({}, { __mode = 'k' })

--- Parse `arg` with the common options and a script's `extra` ones (name
-- -> rl.cli kind); errors name the option.  Returns a table with dashes in
-- names turned into underscores.
function tables.parse(argv, usage, extra)
  local options = {}
  for k, v in pairs(COMMON) do options[k] = v end
  for k, v in pairs(extra or {}) do options[k] = v end
  local o = cli.parse(argv, { usage = usage, options = options })
  parsed[o] = { argv = argv, kinds = options }
  slurm.check(o)
  if o.attack and not metrics.attacks[o.attack] then
    error(string.format('option --attack: unknown attack %q (%s)', o.attack, metrics.attack_names()), 0)
  end
  -- the numbers a row needs, checked here, before any row starts
  for _, c in ipairs(NUMBERS) do
    local key = c[1]:gsub('-', '_')
    if o[key] ~= nil then
      local ok, v = pcall(checks.value, 'option', '--' .. c[1], o[key], c[2], c[3])
      if not ok then error((v:gsub('^option: ', 'option ')), 0) end
      o[key] = v
    end
  end
  if o.threads then rl.set_num_threads(o.threads) end
  if o.seeds then
    if o.seeds:find('^,') or o.seeds:find(',,') or o.seeds:find(',$') then
      error(string.format('option --seeds: %q has an empty entry', o.seeds), 0)
    end
    if o.seed then error('give --seed or --seeds, not both', 0) end
    local list, seen = {}, {}
    for v in o.seeds:gmatch('[^,]+') do
      local n = math.tointeger(tonumber(v))
      if not n or n < 0 then error(string.format('option --seeds: %q is not a seed (an integer >= 0)', v), 0) end
      if seen[n] then error(string.format('option --seeds: seed %d is given twice', n), 0) end
      list[#list + 1], seen[n] = n, true
    end
    if #list == 0 then error('option --seeds: give a comma-separated list, e.g. 0,1,2', 0) end
    o.seeds = list
  end
  return o
end

--- Submit the rows `ids` (run ids) of the script `name`, whose command line
-- tables.parse read into o, as a Slurm job array and the job assembling
-- the table after it (o.slurm), or print those scripts (o.slurm_dry_run).
-- See rl.slurm.
function tables.submit(o, name, ids, out)
  local p = parsed[o] or error('tables.submit: o does not come from tables.parse', 2)
  return slurm.submit { name = name, ids = ids, argv = p.argv, kinds = p.kinds, out = out, o = o }
end

--- With --assemble, the error naming the rows (run ids) that have not
-- finished, if any.
function tables.check_assembled(name, missing, out)
  if #missing == 0 then return end
  error(string.format('--assemble: %d row(s) of %s have not finished in %s: %s (run them, or see %s/slurm/ for ' ..
    'the logs of a Slurm run)', #missing, name, out, table.concat(missing, ', '), out), 0)
end

--- The experiment config of one row: the dataset's defaults, the row's
-- method and settings (row.config: a table, or a function of the dataset
-- returning one), the command line's overrides.
function tables.config(o, dataset, row)
  local c = { dataset = dataset, method = row.method, quick = o.quick, data_dir = o.data_dir,
    device = o.device, precision = o.precision, attack_precision = o.attack_precision }
  local rc = row.config
  if type(rc) == 'function' then rc = rc(dataset) end
  for k, v in pairs(rc or {}) do c[k] = v end
  for _, k in ipairs { 'epochs', 'subset', 'test_subset', 'eval_subset', 'batch', 'lr', 'seed', 'model' } do
    if o[k] ~= nil then c[k] = o[k] end
  end
  return exp.config(c)
end

local function pct(v) return v and string.format('%.2f', 100 * v) or '-' end
local function num(v) return v and string.format('%.2f', v) or '-' end

--- The 95 % Wilson score interval of an accuracy p measured on n
-- examples: lo, hi (fractions).
function tables.wilson(p, n)
  local z = 1.959963984540054
  local z2 = z * z
  local centre = (p + z2 / (2 * n)) / (1 + z2 / n)
  local half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
  return math.max(0, centre - half), math.min(1, centre + half)
end

-- The split whose example count an accuracy key was measured on.
local function split_of(key)
  if key == 'train_acc' or key:match('^train_adv_acc') then return 'train' end
  if key == 'test_acc' or key:match('^test_adv_acc') then return 'test' end
end

-- A cell: the value; with several seeds, +- their standard deviation;
-- with one, for an accuracy, its 95 % Wilson interval.
local function cell(column, r)
  local key, fmt = column[2], column[3]
  local v = r.metrics[key]
  if v == nil then return '-' end
  if r.spread and r.spread[key] then
    return string.format('%s ± %s', fmt(v), fmt(r.spread[key]):gsub('^%s+', ''))
  end
  local split = fmt == pct and split_of(key)
  local n = split and r.metrics[split .. '_n']
  if n and n > 0 then
    local lo, hi = tables.wilson(v, n)
    return string.format('%s [%.1f, %.1f]', fmt(v), 100 * lo, 100 * hi)
  end
  return fmt(v)
end

local ATTACK_LABEL = { pgd = 'PGD', multitarget = 'MT' }

--- The columns of Tables 2-4 for the adversarial column's attack: the
-- paper's, with its Lipschitz column (the reference's estimator) and the
-- maximising estimator beside it (README, docs/quirks.md).  multitarget
-- takes the place of PGD in the adversarial columns; autoattack keeps the
-- paper's PGD columns and adds "AA acc" (test accuracy under AutoAttack
-- standard) after PGD's.
function tables.columns(attack)
  local a = attack or 'pgd'
  local main = a == 'autoattack' and 'pgd' or a
  local sfx = main == 'pgd' and '' or '_' .. main
  local cols = {
    { 'train acc', 'train_acc', pct }, { 'test acc', 'test_acc', pct },
    { 'adv test acc (' .. ATTACK_LABEL[main] .. ')', 'test_adv_acc' .. sfx, pct },
    { 'test lipschitz', 'test_lipschitz', num }, { 'test lipschitz (max)', 'test_lipschitz_max', num },
    { 'gap', 'gen_gap', pct }, { 'adv gap', 'adv_gap' .. sfx, pct },
  }
  if a == 'autoattack' then table.insert(cols, 4, { 'AA acc', 'test_adv_acc_autoattack', pct }) end
  return cols
end

-- The width of every column of head and rows (lists of strings).
-- A cell's width in characters (cells may hold UTF-8, as the ± of a spread).
local function len(s) return utf8.len(s) or #s end

local function widths(head, rows)
  local w = {}
  for i, h in ipairs(head) do
    w[i] = len(h)
    for _, r in ipairs(rows) do w[i] = math.max(w[i], len(r[i])) end
  end
  return w
end

-- A cell padded to width w, on the left for right-aligned columns.
local function pad(cell, w, right)
  local fill = string.rep(' ', w - len(cell))
  return right and fill .. cell or cell .. fill
end

--- A Markdown table of head and rows (lists of strings), every column
-- padded to its width so the file reads as a table too; align[i] = 'r'
-- right-aligns column i (numbers), otherwise it is left-aligned.
function tables.markdown(head, rows, align)
  align = align or {}
  local w = widths(head, rows)
  local function line(cells)
    local out = {}
    for i, c in ipairs(cells) do out[i] = pad(c, w[i], align[i] == 'r') end
    return '| ' .. table.concat(out, ' | ') .. ' |'
  end
  local dash = {}
  for i = 1, #head do
    dash[i] = align[i] == 'r' and string.rep('-', w[i] - 1) .. ':' or ':' .. string.rep('-', w[i] - 1)
  end
  local lines = { line(head), '| ' .. table.concat(dash, ' | ') .. ' |' }
  for _, r in ipairs(rows) do lines[#lines + 1] = line(r) end
  return table.concat(lines, '\n')
end

--- The same table as plain text for a terminal: columns two spaces apart,
-- aligned as in tables.markdown.
function tables.text(head, rows, align)
  align = align or {}
  local w = widths(head, rows)
  local lines = {}
  for _, r in ipairs { head, table.unpack(rows) } do
    local out = {}
    for i, c in ipairs(r) do out[i] = pad(c, w[i], align[i] == 'r') end
    lines[#lines + 1] = table.concat(out, '  ')
  end
  return table.concat(lines, '\n')
end

--- CSV text of head and rows, one line each, ending in a newline.  Cells
-- are written as they are: the tables' cells hold no commas or quotes.
function tables.csv(head, rows)
  local lines = { table.concat(head, ',') }
  for _, r in ipairs(rows) do lines[#lines + 1] = table.concat(r, ',') end
  return table.concat(lines, '\n') .. '\n'
end

--- Write table.md, table.csv and table.json (doc, as rl.json writes it)
-- into dir, made if need be; each file is replaced atomically.  `who`
-- names the caller in an error.
function tables.save(dir, md, csv, doc, who)
  fs.mkdir(dir, who and '--out' or 'tables')
  fs.write(dir .. '/table.md', md)
  fs.write(dir .. '/table.csv', csv)
  json.write(dir .. '/table.json', doc)
end

--- Lay out rows {label, metrics, [spread]} per dataset as the paper's
-- tables: one block per dataset, a row per method.  An accuracy measured
-- on n examples (metrics.<split>_n) shows its 95 % Wilson interval; a row
-- over several seeds shows mean ± standard deviation (spread).
function tables.layout(title, blocks, columns)
  columns = columns or tables.columns()
  local head, align = { 'dataset', 'method' }, { 'l', 'l' }
  for _, c in ipairs(columns) do head[#head + 1], align[#align + 1] = c[1], 'r' end
  -- the CSV: plain numbers, each accuracy followed by its interval's
  -- bounds (one seed) or its standard deviation (several), '' where none
  local spread = false
  for _, b in ipairs(blocks) do
    for _, r in ipairs(b.rows) do spread = spread or r.spread ~= nil end
  end
  local chead = { 'dataset', 'method' }
  for _, c in ipairs(columns) do
    chead[#chead + 1] = c[1]
    if spread then chead[#chead + 1] = c[1] .. ' std'
    elseif c[3] == pct and split_of(c[2]) then
      chead[#chead + 1], chead[#chead + 2] = c[1] .. ' lo95', c[1] .. ' hi95'
    end
  end
  local rows, crows = {}, {}
  for _, b in ipairs(blocks) do
    for _, r in ipairs(b.rows) do
      local cells, cc = { b.dataset, r.label }, { b.dataset, r.label }
      for _, c in ipairs(columns) do
        cells[#cells + 1] = r.metrics and cell(c, r) or 'not run'
        local v = r.metrics and r.metrics[c[2]]
        cc[#cc + 1] = v and c[3](v) or ''
        if spread then
          local sd = r.spread and r.spread[c[2]]
          cc[#cc + 1] = sd and c[3](sd) or ''
        elseif c[3] == pct and split_of(c[2]) then
          local n = r.metrics and r.metrics[split_of(c[2]) .. '_n']
          local lo, hi = '', ''
          if v and n and n > 0 then
            local l, h = tables.wilson(v, n)
            lo, hi = pct(l), pct(h)
          end
          cc[#cc + 1], cc[#cc + 2] = lo, hi
        end
      end
      rows[#rows + 1], crows[#crows + 1] = cells, cc
    end
  end
  local md = '## ' .. title .. '\n\n' .. tables.markdown(head, rows, align) .. '\n'
  return md, tables.csv(chead, crows), head, rows
end

-- rllua's version: `git describe` of the source tree when it is a git
-- checkout, else rl.version.
local version
function tables.version()
  if version then return version end
  local src = debug.getinfo(1, 'S').source:match('^@(.*)/lua/rl/tables%.lua$')
  if src then
    local p = io.popen("git -C '" .. src:gsub("'", "'\\''") .. "' describe --always --dirty --tags 2>/dev/null")
    local v = p and p:read('l')
    if p then p:close() end
    if v and v ~= '' then version = 'rllua ' .. rl.version .. ' (' .. v .. ')' end
  end
  version = version or ('rllua ' .. rl.version)
  return version
end

-- One value, or the distinct values of a list joined by '/' (the rows of a
-- block measured on different n); nil for an empty list.
local function one_or_all(list)
  local seen, out = {}, {}
  for _, v in ipairs(list) do
    if not seen[v] then seen[v], out[#out + 1] = true, v end
  end
  table.sort(out)
  if #out <= 1 then return out[1] end
  return table.concat(out, '/')
end

-- The settings behind a table, from the config of each dataset's first
-- row (the rows of a block share them but for method and learning rate:
-- each row's lr is in lr_per_row where they differ), and the number of
-- examples each split was measured on (the rows' metrics: *_n).
local function settings_of(spec, o, datasets, seeds, blocks)
  local per = {}
  for _, d in ipairs(datasets) do
    local c = tables.config(o, d, spec.rows[1] or { method = 'natural' })
    per[d] = { model = c.model, eps = c.eps, epochs = c.epochs, batch = c.batch, optimizer = c.optimizer,
      lr = c.lr, momentum = c.optimizer == 'sgd' and (c.momentum or 0) or nil,
      subset = c.subset or 'all', test_subset = c.test_subset or 'all', eval_subset = c.eval_subset or 'all',
      device = c.device,
      precision = c.precision == 'bf16' and ('bf16 autocast (attacks in training: ' ..
        (c.attack_precision or 'fp32') .. '; measurements fp32)') or c.tf32 and 'tf32 (f32 with TF32 GEMMs)'
        or 'fp32' }
    local lrs, differ = {}, false
    for _, r in ipairs(spec.rows) do
      local lr = tables.config(o, d, r).lr
      lrs[r.label], differ = lr, differ or lr ~= c.lr
    end
    if differ then per[d].lr_per_row = lrs end
  end
  for _, b in ipairs(blocks or {}) do
    local n = { train = {}, test = {} }
    for _, r in ipairs(b.rows) do
      for split, list in pairs(n) do
        local v = r.metrics and r.metrics[split .. '_n']
        if v then list[#list + 1] = math.tointeger(v) or v end
      end
    end
    local st = per[b.dataset]
    if st then st.train_n, st.test_n = one_or_all(n.train), one_or_all(n.test) end
  end
  local attack = o.attack or 'pgd'
  local how = {
    pgd = 'PGD-10 (l-inf, step 2 eps/10, random start, eval mode)',
    multitarget = 'MultiTarget (targeted PGD-20 towards each class, step 2 eps/20)',
    autoattack = 'PGD-10 as the paper, and AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square) on the test split',
  }
  return { datasets = per, attack = attack, attack_settings = how[attack], seeds = seeds, quick = o.quick or false,
    version = tables.version(), command = table.concat(arg or {}, ' ') }
end

-- The optimiser of a dataset's settings as words: "sgd, lr 0.01 (AT,
-- LLR: 0.001), momentum 0" (the rows of another rate named, in row order).
local function optimizer_words(c, rows)
  local lr = string.format('lr %g', c.lr)
  if c.lr_per_row then
    local by = {}
    local order = {}
    for _, r in ipairs(rows) do
      local v = c.lr_per_row[r.label]
      if v and v ~= c.lr then
        if not by[v] then by[v], order[#order + 1] = {}, v end
        table.insert(by[v], r.label)
      end
    end
    local parts = {}
    for _, v in ipairs(order) do parts[#parts + 1] = string.format('%s: %g', table.concat(by[v], ', '), v) end
    lr = lr .. ' (' .. table.concat(parts, '; ') .. ')'
  end
  return string.format('%s, %s%s', c.optimizer, lr, c.momentum and string.format(', momentum %g', c.momentum) or '')
end

-- What a split was measured on: the n of the rows' metrics, else (no row
-- measured yet) at most the eval subset.
local function measured_words(c)
  if c.train_n or c.test_n then
    return string.format('measured on %s train and %s test examples', tostring(c.train_n or '-'),
      tostring(c.test_n or '-'))
  end
  return string.format('measured on at most %s examples per split', c.eval_subset)
end

-- The settings as Markdown lines above a table; a --quick table says so first.
local function settings_md(st, rows)
  local lines = {}
  if st.quick then
    lines[#lines + 1] = '**QUICK RUN: a small budget for checking the pipeline, not the paper\'s settings; ' ..
      'do not compare these numbers with the paper.**'
    lines[#lines + 1] = ''
  end
  for d, c in pairs(st.datasets) do
    lines[#lines + 1] = string.format('- %s: %s, eps %g, epochs %d, batch %d, %s; training subset %s, test subset %s, ' ..
      '%s; %s on %s', d, c.model, c.eps, c.epochs, c.batch, optimizer_words(c, rows), c.subset,
      c.test_subset, measured_words(c), c.precision, c.device)
  end
  table.sort(lines, function(a, b) return a:sub(1, 2) == '- ' and b:sub(1, 2) == '- ' and a < b end)
  lines[#lines + 1] = string.format('- adversarial accuracy: %s', st.attack_settings)
  lines[#lines + 1] = string.format('- seeds: %s%s', table.concat(st.seeds, ', '),
    #st.seeds > 1 and ' (cells: mean ± standard deviation)' or ' (accuracies: value [95 % Wilson interval])')
  -- the rows may come from other commands (--only, Slurm tasks): each
  -- run's own settings are its config.json
  lines[#lines + 1] = string.format('- %s; table written by: %s', st.version,
    st.command ~= '' and st.command or '(library call)')
  return table.concat(lines, '\n') .. '\n'
end

-- Mean and (sample) standard deviation over seeds of every numeric key.
--- The mean of the numbers xs and their sample standard deviation (nil
-- for a single number): what every table over seeds shows.
function tables.mean_sd(xs)
  local n, sum = #xs, 0
  for _, x in ipairs(xs) do sum = sum + x end
  local mean = sum / n
  if n < 2 then return mean, nil end
  local sq = 0
  for _, x in ipairs(xs) do sq = sq + (x - mean) ^ 2 end
  return mean, math.sqrt(sq / (n - 1))
end

local function over_seeds(ms)
  if #ms == 1 then return ms[1], nil end
  local mean, spread = {}, {}
  for k, v in pairs(ms[1]) do
    if type(v) == 'number' then
      local xs = {}
      for _, m in ipairs(ms) do xs[#xs + 1] = type(m[k]) == 'number' and m[k] or nil end
      if #xs == #ms then mean[k], spread[k] = tables.mean_sd(xs) end
    end
  end
  return mean, spread
end

local function fmt_time(sec)
  sec = math.floor(sec + 0.5)
  if sec >= 3600 then return string.format('%dh%02dm', sec // 3600, sec % 3600 // 60) end
  return string.format('%dm%02ds', sec // 60, sec % 60)
end

--- Run every row of every dataset block (or only --only), print the table
-- and write table.md / table.csv / table.json into the results directory,
-- each with the settings that produced it.  With o.seeds, each row runs
-- once per seed.  A finished row's line is printed as soon as it is done;
-- the progress line names the row and the whole table's ETA.
-- spec = {name = 'table2', title = ..., datasets = {...}, rows = {{label, method, config}}}
function tables.run(spec, o)
  local out = o.out or ('results/' .. spec.name)
  local datasets = o.dataset and { o.dataset } or spec.datasets
  local seeds = o.seeds or { o.seed or 0 }
  local function configs(d, r)
    local list = {}
    for i, sd in ipairs(seeds) do
      local oo = setmetatable({ seed = sd }, { __index = o })
      list[i] = tables.config(oo, d, r)
    end
    return list
  end
  local function selected(cfg) return not o.assemble and (o.only == nil or o.only == exp.run_id(cfg)) end
  if o.list then
    -- every row made before any is printed: a row that cannot be made
    -- leaves no partial list
    local lines = {}
    for _, d in ipairs(datasets) do
      for _, r in ipairs(spec.rows) do
        for _, cfg in ipairs(configs(d, r)) do
          lines[#lines + 1] = table.concat({ exp.run_id(cfg), d, r.label, json.encode(cfg) }, '\t')
        end
      end
    end
    print(table.concat(lines, '\n'))
    return
  end
  -- every row's model against its dataset's images, before any row starts
  local todo = 0
  for _, d in ipairs(datasets) do
    for _, r in ipairs(spec.rows) do
      for _, cfg in ipairs(configs(d, r)) do
        if selected(cfg) then
          todo = todo + 1
          local ok, msg = pcall(exp.check, cfg)
          if not ok then error(string.format('%s / %s: %s', d, r.label, tostring(msg):gsub('^experiment: ', '')), 0) end
        end
      end
    end
  end
  if todo == 0 and o.only then error(string.format('--only %s: no row of %s has that id (see --list)', o.only, spec.name), 0) end
  if o.slurm or o.slurm_dry_run then
    local ids = {}
    for _, d in ipairs(datasets) do
      for _, r in ipairs(spec.rows) do
        for _, cfg in ipairs(configs(d, r)) do ids[#ids + 1] = exp.run_id(cfg) end
      end
    end
    tables.submit(o, spec.name, ids, out)
    return
  end
  -- a GPU asked for is here, before the first row reads or trains anything
  if not o.assemble then
    for _, d in ipairs(datasets) do
      for _, r in ipairs(spec.rows) do
        for _, cfg in ipairs(configs(d, r)) do
          if selected(cfg) then exp.check_device(cfg.device) end
        end
      end
    end
  end
  local missing = {}
  local columns = spec.columns or tables.columns(o.attack)
  local blocks, done, t0 = {}, 0, rl.clock()
  for _, d in ipairs(datasets) do
    local block = { dataset = d, rows = {} }
    local sets
    for _, r in ipairs(spec.rows) do
      local ms, ids = {}, {}
      local cfgs = configs(d, r)
      for _, cfg in ipairs(cfgs) do
        local id = exp.run_id(cfg)
        ids[#ids + 1] = id
        local m
        if selected(cfg) then
          if not sets then
            sets = {
              train = data.load(d, { split = 'train', data_dir = cfg.data_dir, subset = cfg.subset, seed = cfg.seed }),
              test = data.load(d, { split = 'test', data_dir = cfg.data_dir, subset = cfg.test_subset, seed = cfg.seed }),
            }
          end
          -- the table's ETA at each epoch: the rows left at the mean time
          -- of those done, or, in the first row, at this row's pace so far
          local row_t0 = rl.clock()
          local function label(frac)
            local per_row = done > 0 and (row_t0 - t0) / done or frac > 0 and (rl.clock() - row_t0) / frac
            local eta = per_row and fmt_time(per_row * (todo - done - frac)) or '?'
            return string.format('[%d/%d, table eta %s]', done + 1, todo, eta)
          end
          io.stderr:write(string.format('== %s / %s, seed %d (%s)\n', d, r.label, cfg.seed, id))
          m = exp.run(cfg, { out = out, data = sets, quiet = o.quiet, attack = o.attack, label = label })
          done = done + 1
        else
          m = exp.read_metrics(out .. '/' .. id)
          if not m and o.assemble then missing[#missing + 1] = id end
        end
        if m then ms[#ms + 1] = m end
      end
      -- the optimiser's rate differs between rows (rl.experiment's lr_method)
      local row = { label = r.label, run_id = table.concat(ids, ','), seeds = #ms, lr = cfgs[1].lr,
        momentum = cfgs[1].optimizer == 'sgd' and (cfgs[1].momentum or 0) or nil }
      if #ms == #ids then row.metrics, row.spread = over_seeds(ms) end
      block.rows[#block.rows + 1] = row
      if row.metrics then -- the row's line, as soon as it is known
        local _, _, head, cells = tables.layout('', { { dataset = d, rows = { row } } }, columns)
        local parts = {}
        for k = 3, #head do parts[#parts + 1] = head[k] .. ' ' .. cells[1][k] end
        io.stdout:write(string.format('%s / %s: %s\n', d, r.label, table.concat(parts, ', ')))
        io.stdout:flush()
      end
    end
    blocks[#blocks + 1] = block
  end
  if o.assemble then tables.check_assembled(spec.name, missing, out) end
  local st = settings_of(spec, o, datasets, seeds, blocks)
  local md, csv = tables.layout(spec.title, blocks, columns)
  local stmd = settings_md(st, spec.rows)
  md = md:gsub('\n\n', function() return '\n\n' .. stmd .. '\n' end, 1)
  io.write('\n', md)
  local jrows = {}
  for _, b in ipairs(blocks) do
    for _, r in ipairs(b.rows) do
      local ci = {}
      for _, c in ipairs(columns) do
        local split = split_of(c[2])
        local v, n = r.metrics and r.metrics[c[2]], r.metrics and split and r.metrics[split .. '_n']
        if v and n and not r.spread then
          local lo, hi = tables.wilson(v, n)
          ci[c[2]] = { lo = lo, hi = hi, n = n }
        end
      end
      jrows[#jrows + 1] = { dataset = b.dataset, method = r.label, run_id = r.run_id, metrics = r.metrics,
        std = r.spread, seeds = r.seeds, interval95 = next(ci) and ci or nil, lr = r.lr, momentum = r.momentum }
    end
  end
  -- the CSV carries the settings in columns of its own, on every row
  local lines = {}
  for line in csv:gmatch('[^\n]+') do lines[#lines + 1] = line end
  -- (train_n, test_n: the examples each split was measured on, per row)
  lines[1] = lines[1] .. ',model,eps,epochs,batch,optimizer,lr,momentum,subset,test_subset,eval_subset,train_n,test_n,' ..
    'seeds,attack,precision,device,quick,version'
  local i = 1
  for _, b in ipairs(blocks) do
    local c = st.datasets[b.dataset]
    for _, r in ipairs(b.rows) do
      i = i + 1
      local m = r.metrics or {}
      lines[i] = lines[i] .. string.format(',%s,%g,%d,%d,%s,%g,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s', c.model, c.eps,
        c.epochs, c.batch, c.optimizer, r.lr, r.momentum and string.format('%g', r.momentum) or '', c.subset,
        c.test_subset, c.eval_subset, m.train_n and string.format('%g', m.train_n) or '',
        m.test_n and string.format('%g', m.test_n) or '', table.concat(seeds, ' '), st.attack,
        (c.precision:match('^%S+')), c.device, tostring(st.quick), (st.version:gsub(',', ' ')))
    end
  end
  csv = table.concat(lines, '\n') .. '\n'
  tables.save(out, md, csv, { table = spec.name, title = spec.title, attack = st.attack, settings = st, rows = jrows },
    spec.name)
  if not spec.no_figures then tables.figures(out, spec, blocks, st) end
  io.stderr:write(string.format('%s: %.0f s; results in %s\n', spec.name, rl.clock() - t0, out))
  return blocks
end

--- The table's figures, per dataset: test accuracy against adversarial
-- accuracy, and both against the Lipschitz column, one labelled point per
-- method (error bars: the standard deviation over seeds).  Into
-- out/figures/<dataset>_{acc_adv,lipschitz}.png and .svg.
function tables.figures(out, spec, blocks, st)
  local plot = require 'rl.plot'
  for _, b in ipairs(blocks) do
    local c = st.datasets[b.dataset]
    local setting = string.format('%s, %s, eps %g, epochs %d, seeds %s%s', b.dataset, c.model, c.eps, c.epochs,
      table.concat(st.seeds, ','), st.quick and ', QUICK' or '')
    local pts = { x = {}, y = {}, l = {}, ex = {}, lip = {}, adv = {}, ea = {} }
    for _, r in ipairs(b.rows) do
      local m = r.metrics
      if m and m.test_acc and m.test_adv_acc and m.test_lipschitz then
        local sd = r.spread or {}
        pts.x[#pts.x + 1], pts.y[#pts.y + 1] = 100 * m.test_acc, 100 * m.test_adv_acc
        pts.l[#pts.l + 1], pts.ea[#pts.ea + 1] = r.label, 100 * (sd.test_adv_acc or 0)
        pts.lip[#pts.lip + 1], pts.ex[#pts.ex + 1] = m.test_lipschitz, 100 * (sd.test_acc or 0)
      end
    end
    if #pts.x > 0 then
      local dir = out .. '/figures'
      fs.mkdir(dir, '--out')
      local stem = dir .. '/' .. b.dataset:gsub('[^%w_-]', '_')
      local several = #st.seeds > 1
      plot.figure(stem .. '_acc_adv', {
        title = 'Test accuracy against adversarial accuracy (' .. setting .. ')',
        xlabel = 'test accuracy (%)', ylabel = 'adversarial test accuracy (%, ' .. st.attack .. ')',
        key = 'below', -- the points lie anywhere: a key inside would cover some
        series = { { title = several and 'methods (bars: std over seeds)' or 'methods', x = pts.x, y = pts.y,
          err = several and pts.ea or nil, labels = pts.l, style = several and 'errorbars' or 'points' } },
      })
      plot.figure(stem .. '_lipschitz', {
        title = 'Accuracy against the local Lipschitz estimate (' .. setting .. ')',
        xlabel = "test local Lipschitz (the paper's estimator)", ylabel = 'accuracy (%)', key = 'below',
        series = {
          { title = 'test accuracy', x = pts.lip, y = pts.x, err = several and pts.ex or nil, labels = pts.l,
            style = several and 'errorbars' or 'points' },
          { title = 'adversarial test accuracy', x = pts.lip, y = pts.y, err = several and pts.ea or nil,
            style = several and 'errorbars' or 'points' },
        },
      })
    end
  end
end

--- The rows of Tables 2 and 3: every training method of the paper.
tables.method_rows = {
  { label = 'Natural', method = 'natural' },
  { label = 'GR', method = 'gr' },
  { label = 'LLR', method = 'llr' },
  { label = 'AT', method = 'at' },
  { label = 'RST(.5)', method = 'rst.5' },
  { label = 'RST(1)', method = 'rst1' },
  { label = 'RST(2)', method = 'rst2' },
  { label = 'TRADES(1)', method = 'trades1' },
  { label = 'TRADES(3)', method = 'trades3' },
  { label = 'TRADES(6)', method = 'trades6' },
}

--- A table script's whole main: parse the command line, run, and turn any
-- error into a message and exit status 1.  `extra` lists script options.
function tables.main(spec, usage, extra, prepare)
  cli.main(spec.name, function()
    local o = tables.parse(arg or {}, usage, extra)
    if prepare then prepare(spec, o) end
    tables.run(spec, o)
  end)
end

return tables
