--- rl.tables: what the paper's table scripts share: command-line options
-- (on rl.cli), running the rows (each one rl.experiment run), laying the
-- table out as the paper does, and the one table writer of the scripts:
-- Markdown, plain text, CSV, and table.md / table.csv / table.json on disk.
local rl = require 'rl.base'
local cli = require 'rl.cli'
local data = require 'rl.data'
local exp = require 'rl.experiment'
local fs = require 'rl.fs'
local json = require 'rl.json'
local metrics = require 'rl.metrics'

local tables = {}

tables.usage_common = [[
  --dataset NAME      mnist, fashion-mnist, cifar10, svhn, resimgnet, folder:PATH
                      (default: the paper's datasets for this table)
  --data-dir DIR      where the dataset files are (else $RL_DATA, then Debian's
                      /usr/share/datasets/fashion-mnist)
  --quick             a small budget: subset of the data, few epochs
  --epochs N, --subset N, --test-subset N, --eval-subset N, --batch N, --lr X,
  --seed N, --model NAME
                      override the paper's settings
  --device DEV        cpu (default, or $RL_DEVICE), cuda
  --threads N         CPU threads
  --out DIR           results directory (default results/<table>)
  --attack NAME       the adversarial column's attack: pgd (default, the paper's
                      PGD-10), multitarget (the reference's *MT evaluation, in
                      place of PGD) or autoattack (AutoAttack standard on the
                      test split, an "AA acc" column beside PGD's); a finished
                      row is measured again from its saved model
  --only RUN-ID       run one row only (for a Slurm job array)
  --list              print each row's id, dataset, label and settings; run nothing
  --help]]

-- The options of tables.usage_common, as rl.cli kinds.
local COMMON = {
  epochs = 'number', subset = 'number', ['test-subset'] = 'number', ['eval-subset'] = 'number',
  batch = 'number', lr = 'number', seed = 'number', threads = 'number',
  dataset = 'string', ['data-dir'] = 'string', device = 'string', out = 'string', only = 'string',
  model = 'string', attack = 'string',
  quick = 'flag', list = 'flag',
}

--- Parse `arg` with the common options and a script's `extra` ones (name
-- -> rl.cli kind); errors name the option.  Returns a table with dashes in
-- names turned into underscores.
function tables.parse(argv, usage, extra)
  local options = {}
  for k, v in pairs(COMMON) do options[k] = v end
  for k, v in pairs(extra or {}) do options[k] = v end
  local o = cli.parse(argv, { usage = usage, options = options })
  if o.attack and not metrics.attacks[o.attack] then
    error(string.format('option --attack: unknown attack %q (%s)', o.attack, metrics.attack_names()), 0)
  end
  if o.threads then rl.set_num_threads(o.threads) end
  return o
end

--- The experiment config of one row: the dataset's defaults, the row's
-- method and settings (row.config: a table, or a function of the dataset
-- returning one), the command line's overrides.
function tables.config(o, dataset, row)
  local c = { dataset = dataset, method = row.method, quick = o.quick, data_dir = o.data_dir,
    device = o.device }
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
local function widths(head, rows)
  local w = {}
  for i, h in ipairs(head) do
    w[i] = #h
    for _, r in ipairs(rows) do w[i] = math.max(w[i], #r[i]) end
  end
  return w
end

-- A cell padded to width w, on the left for right-aligned columns.
local function pad(cell, w, right)
  local fill = string.rep(' ', w - #cell)
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
  fs.mkdir(dir, who or 'tables')
  fs.write(dir .. '/table.md', md)
  fs.write(dir .. '/table.csv', csv)
  json.write(dir .. '/table.json', doc)
end

--- Lay out rows {label, metrics} per dataset as the paper's tables: one
-- block per dataset, a row per method.
function tables.layout(title, blocks, columns)
  columns = columns or tables.columns()
  local head, align = { 'dataset', 'method' }, { 'l', 'l' }
  for _, c in ipairs(columns) do head[#head + 1], align[#align + 1] = c[1], 'r' end
  local rows = {}
  for _, b in ipairs(blocks) do
    for _, r in ipairs(b.rows) do
      local cells = { b.dataset, r.label }
      for _, c in ipairs(columns) do cells[#cells + 1] = r.metrics and c[3](r.metrics[c[2]]) or 'not run' end
      rows[#rows + 1] = cells
    end
  end
  local md = '## ' .. title .. '\n\n' .. tables.markdown(head, rows, align) .. '\n'
  return md, tables.csv(head, rows), head, rows
end

--- Run every row of every dataset block (or only --only), print the table
-- and write table.md / table.csv / table.json into the results directory.
-- spec = {name = 'table2', title = ..., datasets = {...}, rows = {{label, method, config}}}
function tables.run(spec, o)
  local out = o.out or ('results/' .. spec.name)
  local datasets = o.dataset and { o.dataset } or spec.datasets
  if o.list then
    for _, d in ipairs(datasets) do
      for _, r in ipairs(spec.rows) do
        local cfg = tables.config(o, d, r)
        print(table.concat({ exp.run_id(cfg), d, r.label, json.encode(cfg) }, '\t'))
      end
    end
    return
  end
  -- every row's model against its dataset's images, before any row starts
  for _, d in ipairs(datasets) do
    for _, r in ipairs(spec.rows) do
      local cfg = tables.config(o, d, r)
      if o.only == nil or o.only == exp.run_id(cfg) then
        local ok, msg = pcall(exp.check, cfg)
        if not ok then error(string.format('%s / %s: %s', d, r.label, tostring(msg):gsub('^experiment: ', '')), 0) end
      end
    end
  end
  local blocks, found = {}, o.only == nil
  local t0 = rl.clock()
  for _, d in ipairs(datasets) do
    local block = { dataset = d, rows = {} }
    local sets
    for _, r in ipairs(spec.rows) do
      local cfg = tables.config(o, d, r)
      local id = exp.run_id(cfg)
      local m
      if o.only == nil or o.only == id then
        found = true
        if not sets then
          sets = {
            train = data.load(d, { split = 'train', data_dir = cfg.data_dir, subset = cfg.subset, seed = cfg.seed }),
            test = data.load(d, { split = 'test', data_dir = cfg.data_dir, subset = cfg.test_subset, seed = cfg.seed }),
          }
        end
        io.stderr:write(string.format('== %s / %s (%s)\n', d, r.label, id))
        m = exp.run(cfg, { out = out, data = sets, quiet = o.quiet, attack = o.attack })
      else
        m = exp.read_metrics(out .. '/' .. id)
      end
      block.rows[#block.rows + 1] = { label = r.label, metrics = m, run_id = id }
    end
    blocks[#blocks + 1] = block
  end
  if not found then error(string.format('--only %s: no row of %s has that id (see --list)', o.only, spec.name), 0) end
  local md, csv = tables.layout(spec.title, blocks, spec.columns or tables.columns(o.attack))
  io.write('\n', md)
  local jrows = {}
  for _, b in ipairs(blocks) do
    for _, r in ipairs(b.rows) do
      jrows[#jrows + 1] = { dataset = b.dataset, method = r.label, run_id = r.run_id, metrics = r.metrics }
    end
  end
  tables.save(out, md, csv, { table = spec.name, title = spec.title, attack = o.attack or 'pgd', rows = jrows },
    spec.name)
  io.stderr:write(string.format('%s: %.0f s; results in %s\n', spec.name, rl.clock() - t0, out))
  return blocks
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
