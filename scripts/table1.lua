-- table1.lua - Table 1 of "A Closer Look at Accuracy vs. Robustness": how far
-- apart the classes of each dataset are.  For every training point, the
-- l-inf distance to the nearest training point of another class (the
-- minimum is the separation 2r); likewise every test point to the training
-- set.  Distances are exact, on the raw 8-bit pixels (k/255); Restricted
-- ImageNet's at 64x64 (short side resized to 72, centre crop 64, as the
-- reference computed them).
--
--   rllua scripts/table1.lua [--dataset NAME|all] [--data-dir DIR] [--subset N]
--                            [--out DIR] [--p inf|2] [--drop K] [--bins N] [--threads N]
--                            [--random-labels [reference|permute]] [--label-seed S]
--
-- The 2-core CPU job:  rllua scripts/table1.lua --dataset fashion-mnist
-- The control with random labels (the reference's
-- scripts/random_restrictedImgNet_dists.py):
--   rllua scripts/table1.lua --dataset resimgnet --random-labels
local rl = require 'rl'
local cli = require 'rl.cli'
local fs = require 'rl.fs'
local json = require 'rl.json'
local slurm = require 'rl.slurm'
local tables = require 'rl.tables'
local sep = rl.separation

local usage = [[
usage: rllua scripts/table1.lua [options]
Reproduces Table 1 (dataset separation) and writes table.md, table.csv and
table.json into the results directory.
  --dataset NAME   fashion-mnist, mnist, cifar10, svhn, resimgnet, or all
                   (default; datasets whose files are missing are skipped);
                   also synthetic or folder:PATH, which have no paper eps
  --data-dir DIR   where the dataset files are (else $RL_DATA, then Debian's
                   /usr/share/datasets/fashion-mnist)
  --subset N       a stratified subset of N train and N test points (seed 0);
                   fewer points make every distance larger
  --out DIR        results directory (default results/table1)
  --p inf|2        the norm (default inf, as the paper)
  --drop K         drop the K smallest train-train distances before the
                   minimum (default: the reference's, 4 for svhn and 6 for
                   resimgnet, 0 otherwise; see rl.separation)
  --bins N         histogram bins over [0, 1] (default 20)
  --threads N      CPU threads
  --random-labels [reference|permute]
                   the control of the reference's
                   random_restrictedImgNet_dists.py: replace every label
                   before the distances.  reference (default): as that
                   script, np.random.seed(S) then np.random.choice(K, N_train)
                   for the training labels and the next N_test draws for the
                   test labels (numpy's generator, reproduced bit for bit);
                   permute: a seeded shuffle of each split's labels.  The
                   results go to results/table1-random-labels by default
  --label-seed S   the seed of --random-labels (default 0, the reference's)
  --only NAME      measure one dataset: its row goes to OUT/rows/NAME.json
                   (every run writes those), and --assemble makes the table
]] .. slurm.usage:gsub('per row', 'per dataset') .. [[

  --help]]

local ALL = { 'mnist', 'fashion-mnist', 'cifar10', 'svhn', 'resimgnet' }

local OPTIONS = {
  dataset = 'string', ['data-dir'] = 'string', out = 'string', p = 'string',
  subset = 'count', drop = 'count', bins = 'count', threads = 'count', ['label-seed'] = 'count',
  ['random-labels'] = 'optional', only = 'string',
}
for k, v in pairs(slurm.options) do OPTIONS[k] = v end

-- The command line, checked: p becomes 'inf' or 2, --random-labels alone
-- means 'reference', and the results directory names the control.
local function parse(argv)
  local o = cli.parse(argv, { usage = usage, options = OPTIONS, defaults = { dataset = 'all', p = 'inf', bins = 20 } })
  if o.random_labels == true then o.random_labels = 'reference' end
  if o.random_labels and not sep.label_draws[o.random_labels] then
    error(string.format("--random-labels takes 'reference' or 'permute', got %q", o.random_labels), 0)
  end
  if o.p ~= 'inf' and o.p ~= '2' then error("--p must be 'inf' or 2, got " .. o.p, 0) end
  o.p = o.p == '2' and 2 or 'inf'
  if o.subset == 0 then error('--subset must be at least 1 (leave it out for the whole sets)', 0) end
  if o.bins < 1 then error('--bins must be at least 1, got ' .. o.bins, 0) end
  if o.label_seed and not o.random_labels then error('--label-seed goes with --random-labels', 0) end
  if o.label_seed and o.label_seed > 0xffffffff then error('--label-seed must be below 2^32', 0) end
  if o.random_labels then o.label_seed = o.label_seed or 0 end
  slurm.check(o)
  o.out = o.out or (o.random_labels and 'results/table1-random-labels' or 'results/table1')
  return o
end

-- ---------------------------------------------------------------------------
-- The rows

-- Image folders are cut to the dataset's Table 1 window (resimgnet: the
-- centred 64x64 of the image resized to short side 72) on both splits.
local function load(o, name, split)
  local crop = (sep.defaults[name] or {}).crop
  return rl.data.load(name, { split = split, data_dir = o.data_dir, crop = crop,
    subset = o.subset and o.subset > 0 and o.subset or nil, seed = 0 })
end

-- The datasets of --dataset, in order.
local function names_of(o)
  if o.dataset == 'all' then return ALL end
  local names = {}
  for n in o.dataset:gmatch('[^,]+') do names[#names + 1] = sep.canonical(n) end
  return names
end

-- What a row file must agree on with the table it joins.
local function row_settings(o)
  return { p = tostring(o.p), subset = o.subset or false, drop = o.drop or false, bins = o.bins,
    random_labels = o.random_labels and { draw = o.random_labels, seed = o.label_seed } or false }
end

local function row_file(o, name) return o.out .. '/rows/' .. name .. '.json' end

-- Keep one dataset's outcome (its row, or why it was skipped) for --assemble.
local function save_row(o, name, row, skipped)
  fs.mkdir(o.out .. '/rows', '--out')
  json.write(row_file(o, name), { dataset = name, settings = row_settings(o), row = row, skipped = skipped })
end

--- --assemble: the rows the datasets' row files hold, and the names of the
-- skipped ones.  A missing file, or one measured with other settings, is
-- an error naming it.
local function assembled(o)
  local rows, skipped, missing = {}, {}, {}
  local want = json.encode(row_settings(o))
  for _, name in ipairs(names_of(o)) do
    local path = row_file(o, name)
    if not fs.exists(path) then
      missing[#missing + 1] = name
    else
      local r = json.read(path)
      if json.encode(r.settings) ~= want then
        error(string.format('--assemble: %s was measured with other settings (%s, not %s); measure it again',
          path, json.encode(r.settings), want), 0)
      end
      if r.skipped then skipped[#skipped + 1] = name else rows[#rows + 1] = r.row end
    end
  end
  tables.check_assembled('table1', missing, o.out)
  if #rows == 0 then error('no dataset could be loaded', 0) end
  return rows, skipped
end

--- One sep.report row per dataset that loads, and the names of those that
-- do not (with --dataset all only; a dataset asked for by name must load).
-- Each dataset's outcome goes to its row file as well.
local function measure(o)
  local names = names_of(o)
  if o.only then
    local known = false
    for _, n in ipairs(names) do known = known or n == sep.canonical(o.only) end
    if not known then
      error(string.format('--only %s: not one of the datasets (%s)', o.only, table.concat(names, ', ')), 0)
    end
    names = { sep.canonical(o.only) }
  end
  local label_opts = o.random_labels and { draw = o.random_labels, seed = o.label_seed } or nil
  local rows, skipped = {}, {}
  for _, name in ipairs(names) do
    local t0 = rl.clock()
    local ok, train = pcall(load, o, name, 'train')
    local test
    if ok then ok, test = pcall(load, o, name, 'test') end
    if not ok then
      local err = test or train -- the message of whichever load failed
      if o.dataset ~= 'all' then error(tostring(err), 0) end
      skipped[#skipped + 1] = name
      io.stderr:write(string.format('table1: skipping %s: %s\n', name, tostring(err)))
      save_row(o, name, nil, tostring(err))
    else
      local t_load = rl.clock() - t0
      io.write(string.format('%s: %d train, %d test images of %s ... ', name, train.x.shape[1],
        test.x.shape[1], table.concat(train.x.shape, 'x', 2)))
      io.flush()
      local row = sep.report(name, train, test, { p = o.p, drop = o.drop, bins = o.bins, labels = label_opts })
      row.seconds.load = t_load
      row.seconds.total = rl.clock() - t0
      rows[#rows + 1] = row
      save_row(o, name, row)
      print(string.format('%.1f s (load %.1f, train-train %.1f, test-train %.1f)', row.seconds.total,
        t_load, row.seconds.train_train, row.seconds.test_train))
    end
  end
  if #rows == 0 and not o.only then error('no dataset could be loaded', 0) end
  return rows, skipped
end

-- ---------------------------------------------------------------------------
-- Layout

local function frac(v, raw)
  if v == nil then return '-' end
  if raw then return string.format('%.4f (%d/255)', v, raw) end
  return string.format('%.4f', v)
end

local function qv(s, p)
  for _, e in ipairs(s and s.quantiles or {}) do
    if e.p == p then return e.value end
  end
end

--- The title, and with random labels the line that says so first.
local function title_of(o)
  local norm = o.p == 2 and 'l2' or 'l-inf'
  if not o.random_labels then
    return string.format('Table 1: dataset separation (%s, pixels in [0, 1])', norm)
  end
  local title = string.format('Table 1 control: dataset separation with RANDOM LABELS (%s, pixels in [0, 1]; %s, seed %d)',
    norm, o.random_labels == 'reference' and "labels drawn as the reference's script draws them" or 'labels permuted',
    o.label_seed)
  local label_line = o.random_labels == 'reference'
    and string.format('RANDOM LABELS: every training and test label was replaced before any distance was taken: ' ..
      'np.random.seed(%d), then np.random.choice(K, N_train) for the training labels and the next N_test draws ' ..
      "for the test labels, as the reference's scripts/random_restrictedImgNet_dists.py (numpy's MT19937 " ..
      'reproduced bit for bit; uniform independent labels, so class sizes change).  A control, not the ' ..
      "paper's Table 1.", o.label_seed)
    or string.format('RANDOM LABELS: the training labels and the test labels were each shuffled by a ' ..
      'permutation from rl.Generator(%d) (randperm, training split first) before any distance was taken; ' ..
      "class sizes are kept.  A control, not the paper's Table 1.", o.label_seed)
  return title, label_line
end

--- The separation table: a row per dataset.
local function separation_table(rows)
  local head = { 'dataset', 'image', 'labels', 'eps', 'train-train 2r', 'test-train', '2r / 2eps', 'dropped',
    'n train', 'n test', 'seconds' }
  local body = {}
  for _, r in ipairs(rows) do
    body[#body + 1] = {
      r.dataset, table.concat(r.image, 'x'),
      r.labels == 'random' and string.format('random (%s, seed %d)', r.label_draw, r.label_seed) or 'true',
      r.eps and string.format('%.3f', r.eps) or '-',
      frac(r.two_r, r.two_r_raw), frac(r.test_train, r.test_train_raw),
      (r.eps and r.two_r) and string.format('%.1f', r.two_r / (2 * r.eps)) or '-',
      tostring(#r.train_train_summary.dropped), tostring(r.n_train), tostring(r.n_test),
      string.format('%.1f', r.seconds.total),
    }
  end
  return head, body
end

--- The distributions of the nearest distances: two rows per dataset.
local function distribution_table(rows)
  local head = { 'dataset', 'pairs', 'min', 'q.01', 'q.05', 'q.25', 'median', 'q.75', 'max', 'mean' }
  local body = {}
  for _, r in ipairs(rows) do
    for _, which in ipairs({ { 'train-train', r.train_train_summary }, { 'test-train', r.test_train_summary } }) do
      local s = which[2]
      body[#body + 1] = { r.dataset, which[1], frac(s.min), frac(qv(s, 0.01)), frac(qv(s, 0.05)),
        frac(qv(s, 0.25)), frac(qv(s, 0.5)), frac(qv(s, 0.75)), frac(s.max), frac(s.mean) }
    end
  end
  return head, body
end

local function notes_of(o, rows, label_line)
  local notes = {
    'Exact distances on the raw 8-bit pixels: every l-inf value is k/255.',
    "Restricted ImageNet: every image resized to short side 72 and centre-cropped to 64x64 (the reference's " ..
      'Resize(72), CenterCrop(64)), on both splits; the image column gives the size compared.',
    '2r is the train-train minimum; the classes are separated at eps when 2r / 2eps > 1.',
    'Quirk of the reference: SVHN drops its 4 smallest train-train distances and Restricted ' ..
      'ImageNet its 6 (duplicates, one image under two labels) before the minimum; ' ..
      'table.json lists the dropped pairs.  --drop 0 gives the textbook minimum.',
  }
  if o.subset then notes[#notes + 1] = string.format('Stratified subsets of %d points: distances are larger than on the full sets.', o.subset) end
  if label_line then
    table.insert(notes, 1, label_line)
    for _, r in ipairs(rows) do
      notes[#notes + 1] = string.format('%s: %d classes; the draw left %.1f%% of the training labels unchanged.',
        r.dataset, r.label_classes, 100 * r.labels_kept)
    end
  end
  for _, r in ipairs(rows) do
    for _, d in ipairs(r.train_train_summary.dropped) do
      notes[#notes + 1] = string.format('%s: dropped train %d -> train %s at %.4f', r.dataset, d.query,
        tostring(d.ref), d.dist)
    end
  end
  return notes
end

--- The CSV: every number of a row, for other programs.
local function csv_of(rows, o)
  local head = { 'dataset', 'image', 'labels', 'label_draw', 'label_seed', 'p', 'eps', 'n_train', 'n_test',
    'drop', 'dropped', 'two_r', 'two_r_raw', 'test_train', 'test_train_raw' }
  for _, w in ipairs({ 'tt', 'te' }) do
    for _, k in ipairs({ 'mean', 'q01', 'q05', 'q25', 'q50', 'q75', 'max' }) do head[#head + 1] = w .. '_' .. k end
  end
  for _, k in ipairs({ 'seconds_load', 'seconds_train_train', 'seconds_test_train', 'subset', 'bins', 'version' }) do
    head[#head + 1] = k
  end
  local function c(v) return v == nil and '' or tostring(v) end
  local body = {}
  for _, r in ipairs(rows) do
    local f = { r.dataset, table.concat(r.image, 'x'), r.labels, c(r.label_draw), c(r.label_seed), tostring(r.p),
      c(r.eps), r.n_train, r.n_test, r.drop, #r.train_train_summary.dropped,
      c(r.two_r), c(r.two_r_raw), c(r.test_train), c(r.test_train_raw) }
    for _, s in ipairs({ r.train_train_summary, r.test_train_summary }) do
      f[#f + 1] = c(s.mean)
      for _, p in ipairs({ 0.01, 0.05, 0.25, 0.5, 0.75 }) do f[#f + 1] = c(qv(s, p)) end
      f[#f + 1] = c(s.max)
    end
    f[#f + 1], f[#f + 2], f[#f + 3] = c(r.seconds.load), c(r.seconds.train_train), c(r.seconds.test_train)
    f[#f + 1], f[#f + 2], f[#f + 3] = o.subset or 'all', o.bins, (tables.version():gsub(',', ' '))
    for j = 1, #f do f[j] = tostring(f[j]) end
    body[#body + 1] = f
  end
  return tables.csv(head, body)
end

-- ---------------------------------------------------------------------------
-- Main: measure, print, write table.md, table.csv and table.json

cli.main('table1', function()
  local o = parse(arg or {})
  if o.threads then rl.set_num_threads(o.threads) end
  local t_all = rl.clock()
  if o.slurm or o.slurm_dry_run then -- one array task per dataset
    slurm.submit { name = 'table1', ids = names_of(o), argv = arg, kinds = OPTIONS, out = o.out, o = o }
    return
  end
  fs.mkdir(o.out .. '/rows', '--out') -- before any distance is computed
  local rows, skipped
  if o.assemble then
    rows, skipped = assembled(o)
  else
    rows, skipped = measure(o)
  end
  if o.only then
    print(string.format('%s: %s; --assemble writes the table', row_file(o, sep.canonical(o.only)),
      #rows > 0 and 'measured' or 'skipped (its files are missing)'))
    return
  end
  local title, label_line = title_of(o)
  local head, body = separation_table(rows)
  local dist_head, dist_body = distribution_table(rows)
  local notes = notes_of(o, rows, label_line)

  print()
  print(title)
  if label_line then print(label_line) end
  print(tables.text(head, body))
  print()
  print('Distributions (nearest point of another class)')
  print(tables.text(dist_head, dist_body))
  if #skipped > 0 then print('\nskipped (files not found): ' .. table.concat(skipped, ', ')) end

  local md = { '# ' .. title, '', tables.markdown(head, body), '', '## Distributions', '',
    tables.markdown(dist_head, dist_body), '', '## Notes', '' }
  for _, n in ipairs(notes) do md[#md + 1] = '- ' .. n end
  local command = table.concat(arg or {}, ' ')
  md[#md + 1] = string.format('- %s; written by: %s', tables.version(), command ~= '' and command or '(library call)')
  tables.save(o.out, table.concat(md, '\n') .. '\n', csv_of(rows, o), {
    table = o.random_labels and 'table1-random-labels' or 'table1',
    title = title, p = tostring(o.p), subset = o.subset, bins = o.bins, drop = o.drop,
    version = tables.version(), command = command,
    random_labels = o.random_labels and { draw = o.random_labels, seed = o.label_seed } or false,
    notes = notes, rows = rows, skipped = skipped }, 'table1')
  -- the distributions as the authors plotted them: histograms of the
  -- nearest-other-class distances, 2 eps and the minimum marked
  local plot = require 'rl.plot'
  for _, r in ipairs(rows) do
    local series = {}
    for _, part in ipairs { { 'train_train_summary', 'train-train' }, { 'test_train_summary', 'test-train' } } do
      local summary = r[part[1]]
      local h = summary and summary.histogram
      if h then
        local x, y = {}, {}
        for b = 1, #h.counts do
          x[b], y[b] = (h.edges[b] + h.edges[b + 1]) / 2, 100 * h.fractions[b]
        end
        series[#series + 1] = { title = part[2] .. ' (n = ' .. summary.n .. ')', x = x, y = y, style = 'boxes' }
        series.width = h.edges[2] - h.edges[1]
      end
    end
    if #series > 0 then
      -- (a dataset the paper has no eps for, synthetic or a folder, has no 2 eps mark)
      local marks = r.eps and { { x = 2 * r.eps, title = string.format('2 eps = %g', 2 * r.eps) } } or {}
      if r.two_r then marks[#marks + 1] = { x = r.two_r, title = string.format('train-train min %.4g', r.two_r) } end
      if r.test_train then
        marks[#marks + 1] = { x = r.test_train, title = string.format('test-train min %.4g', r.test_train) }
      end
      local f = plot.figure(o.out .. '/' .. r.dataset:gsub('[^%w_-]', '_') .. '_distances', {
        title = string.format('%s: distance to the nearest training point of another class (%s, %s%s)', r.dataset,
          o.p == 2 and 'l2' or 'l-inf', r.labels == 'random' and 'random labels' or 'true labels',
          o.subset and string.format(', subsets of %d', o.subset) or ''),
        xlabel = string.format('%s distance (pixels in [0, 1])', o.p == 2 and 'l2' or 'l-inf'),
        ylabel = 'share of points (%)', series = series, vlines = marks, boxwidth = series.width * 0.9,
        key = 'below', -- the marks' labels run down from the top: a key inside would hide them
      })
      print('figure: ' .. f.png)
    end
  end
  print(string.format('\nwrote %s/table.md, table.csv, table.json (%.1f s in all)', o.out, rl.clock() - t_all))
end)
