--- rl.experiment: one run = dataset x architecture x method x settings x
-- seed x device, with the paper's defaults (docs/methods.md), progress on
-- stderr, files under results/<table>/<run-id>/, and resumption.
--
--   local exp = require 'rl.experiment'
--   local cfg = exp.config{dataset = 'fashion-mnist', method = 'trades6', quick = true}
--   local metrics = exp.run(cfg, {out = 'results/table2'})
--
-- A run directory holds config.json, data.json (what identifies the data it
-- is made from: exp.data_identity), log.csv (one line per epoch),
-- checkpoint.safetensors (the last finished epoch: model, optimiser,
-- scheduler, RNG, and the log up to it), model.safetensors and
-- metrics.json (when finished).  A finished run is not redone; an
-- interrupted one resumes from its last finished epoch, bit for bit, with
-- its log cut back to that epoch and the temporaries of the killed process
-- removed.
local rl = require 'rl.base'
local checkpoint = require 'rl.checkpoint'
local data = require 'rl.data'
local fs = require 'rl.fs'
local json = require 'rl.json'
local methods = require 'rl.methods'
local metrics = require 'rl.metrics'
local models = require 'rl.models'
local optim = require 'rl.optim'
local options = require 'rl.options'

local exp = {}

-- The paper's settings per dataset (docs/methods.md).  lr_method: learning
-- rates of single methods (the reference's final configurations);
-- method_opts: a method's settings on this dataset.
exp.datasets = {
  mnist = { eps = 0.1, model = 'CNN001', batch = 64, epochs = 160, optimizer = 'sgd', momentum = 0.9,
    lr = 1e-4 },
  ['fashion-mnist'] = { eps = 0.1, model = 'CNN001', batch = 64, epochs = 160, optimizer = 'sgd',
    momentum = 0.9, lr = 1e-4 },
  svhn = { eps = 0.031, model = 'WRN_40_10', batch = 64, epochs = 60, optimizer = 'sgd', momentum = 0,
    lr = 1e-2, lr_method = { at = 1e-3, rst = 1e-3, llr = 1e-3 }, dropout = 0.5 },
  cifar10 = { eps = 0.031, model = 'WRN_40_10', batch = 64, epochs = 120, optimizer = 'sgd', momentum = 0,
    lr = 1e-2, lr_method = { rst = 1e-3 }, crop_pad = 4, flip = true, dropout = 0.2 },
  -- data_version 2: training crops from the whole resized image (issue #10);
  -- in the config, so runs on the old 72x72 crops keep other ids
  resimgnet = { eps = 0.005, model = 'ResNet50', batch = 128, epochs = 70, optimizer = 'adam', lr = 1e-2,
    crop = 64, crop_pad = 8, data_version = 2, method_opts = { llr = { lambda = 3, mu = 6 } } },
  -- sizes: its splits (rl.data's synthetic n), which a subset cannot
  -- exceed; quick: its --quick budget, the whole of both splits
  synthetic = { eps = 0.1, model = 'CNN001', batch = 32, epochs = 2, optimizer = 'sgd', momentum = 0.9,
    lr = 1e-4, sizes = { train = data.synthetic_n.train, test = data.synthetic_n.test },
    quick = { subset = 1000, test_subset = 200, epochs = 3, eval_subset = 200 } },
}

-- The --quick budget: table2 on fashion-mnist within 20 minutes on 2 cores
-- (a dataset's own `quick` where its splits are smaller).
exp.quick = { subset = 2000, test_subset = 500, epochs = 3, eval_subset = 500 }

-- settings of a config passed on to the method (overriding the named config)
local METHOD_OPTS = { 'beta', 'lambda', 'mu', 'h', 'quirks', 'steps', 'step_size' }
-- dataset settings that only pick other settings, not kept in a config
local SELECTORS = { lr_method = true, method_opts = true, dropout = true, sizes = true, quick = true }

--- The settings a config may hold (exp.config refuses others).
exp.config_keys = {
  'dataset', 'method', 'seed', 'device', 'model', 'eps', 'batch', 'epochs', 'optimizer', 'momentum', 'lr',
  'weight_decay', 'milestones', 'crop', 'crop_pad', 'flip', 'data_version', 'data_dir', 'subset',
  'test_subset', 'eval_subset', 'eval_batch', 'drop', 'quick', 'method_version', 'tf32',
  'precision', 'attack_precision',
  'beta', 'lambda', 'mu', 'h', 'quirks', 'steps', 'step_size',
}

local finite = options.finite -- inf and NaN refused (config.json, --list are JSON)

-- The numeric settings, their kinds and ranges (checked by exp.config with
-- rl.options; the table scripts check their options by it too).
local NUMERIC = {
  { 'epochs', 'integer', '>= 1' }, { 'batch', 'integer', '>= 1' }, { 'eval_batch', 'integer', '>= 1' },
  { 'subset', 'integer', '>= 1' }, { 'test_subset', 'integer', '>= 1' }, { 'eval_subset', 'integer', '>= 1' },
  { 'seed', 'integer', '>= 0' }, { 'lr', 'number', finite('>= 0') }, { 'momentum', 'number', finite('>= 0') },
  { 'weight_decay', 'number', finite('>= 0') }, { 'eps', 'number', finite('>= 0') },
}
exp.numeric_settings = NUMERIC

-- Every other setting's kind and range (dataset, method, device and model
-- are checked by name below; precision, attack_precision and tf32 together).
local OTHER = {
  { 'dataset', 'string' }, { 'method', 'string' }, { 'device', 'string' }, { 'model', 'string' },
  { 'optimizer', 'string', { 'sgd', 'adam' } }, { 'milestones', 'integers', '>= 1' },
  { 'crop', 'integer', '>= 1' }, { 'crop_pad', 'integer', '>= 0' }, { 'flip', 'boolean' },
  { 'data_version', 'integer', '>= 1' }, { 'data_dir', 'string' }, { 'drop', 'number', finite('[0, 1)') },
  { 'quick', 'boolean' }, { 'method_version', 'integer', '>= 1' }, { 'tf32', 'boolean' },
  { 'precision', 'string' }, { 'attack_precision', 'string' },
  -- the method's own settings (which method uses which: METHOD_USES)
  { 'beta', 'number', finite('>= 0') }, { 'lambda', 'number', finite('>= 0') }, { 'mu', 'number', finite('>= 0') },
  { 'h', 'number', finite('> 0') }, { 'quirks', 'boolean' }, { 'steps', 'integer', '>= 1' },
  { 'step_size', 'number', finite('> 0') },
}

-- The settings of METHOD_OPTS each built-in objective takes (rl.methods;
-- quirks: all of them).  A registered method is handed all of them.
local METHOD_USES = {
  natural = {}, at = { 'steps', 'step_size' }, rst = { 'steps', 'step_size', 'lambda' },
  trades = { 'steps', 'step_size', 'beta' }, gr = { 'lambda', 'h' }, llr = { 'steps', 'step_size', 'lambda', 'mu' },
}

-- Raise at the caller of exp.config's caller: "experiment: <name> must be ...".
local function check_value(cfg, r)
  if cfg[r[1]] == nil then return end
  local ok, v = pcall(options.value, 'experiment', r[1], cfg[r[1]], r[2], r[3])
  if not ok then error(v, 0) end
  cfg[r[1]] = v -- 3.0 is 3
end

--- A full config from a partial one: the dataset's defaults (with the
-- method's own learning rate and settings on that dataset), then the quick
-- budget when asked, then the caller's settings.  A key that is not a
-- setting (exp.config_keys), a value of the wrong kind or out of range
-- (inf and NaN included), or a method setting the method does not use is
-- an error naming the setting.
local check_config
function exp.config(c)
  local ok, cfg = pcall(check_config, c)
  if not ok then options.reraise(cfg, 2) end
  return cfg
end

-- exp.config's work; its refusals are raised at level 0.
function check_config(c)
  c = c or {}
  if type(c) ~= 'table' then error(string.format('experiment: a config must be a table, got %s', type(c)), 0) end
  options.reject_unknown('exp.config', c, exp.config_keys, {}, 'setting')
  for _, r in ipairs(OTHER) do
    if r[1] == 'dataset' or r[1] == 'method' then check_value(c, r) end
  end
  local name = c.dataset or 'fashion-mnist'
  local d = exp.datasets[name] or (name:match('^folder:') and exp.datasets.resimgnet)
  if not d then
    local known = {}
    for k in pairs(exp.datasets) do known[#known + 1] = k end
    table.sort(known)
    error(string.format('experiment: unknown dataset %q (known: %s, folder:PATH)', name,
      table.concat(known, ', ')), 0)
  end
  local cfg = { dataset = name, method = 'natural', seed = 0, device = os.getenv('RL_DEVICE') or 'cpu' }
  for k, v in pairs(d) do if not SELECTORS[k] then cfg[k] = v end end
  local mok, _, base = pcall(methods.get, c.method or cfg.method) -- validates the method name
  if not mok then error('experiment: ' .. tostring(_):gsub('^[^\n:]+%.lua:%d+: ', ''), 0) end
  if d.lr_method and d.lr_method[base] then cfg.lr = d.lr_method[base] end
  for k, v in pairs(d.method_opts and d.method_opts[base] or {}) do cfg[k] = v end
  if c.quick ~= nil then check_value(c, { 'quick', 'boolean' }) end
  if c.quick then for k, v in pairs(d.quick or exp.quick) do cfg[k] = v end end
  for k, v in pairs(c) do cfg[k] = v end
  cfg.quick = nil
  -- the settings a run needs: a wrong one fails here, not epochs later
  for _, r in ipairs(NUMERIC) do check_value(cfg, r) end
  for _, r in ipairs(OTHER) do check_value(cfg, r) end
  -- a method setting the method does not use would change the run id and
  -- nothing else (or fail inside the first training step)
  local uses = METHOD_USES[base]
  if uses and not methods.registered[base] then
    local used = { quirks = true }
    for _, k in ipairs(uses) do used[k] = true end
    for _, k in ipairs(METHOD_OPTS) do
      if cfg[k] ~= nil and not used[k] then
        error(string.format('experiment: method %s takes no %s (got %s = %s); its settings: %s', cfg.method, k, k,
          options.what(cfg[k]), #uses > 0 and table.concat(uses, ', ') .. ', quirks' or 'quirks'), 0)
      end
    end
  end
  -- a subset larger than its split would be recorded as what it is not
  local sizes = d.sizes
  if sizes then
    for _, s in ipairs { { 'subset', 'train' }, { 'test_subset', 'test' } } do
      local v = cfg[s[1]]
      if v and v > sizes[s[2]] then
        error(string.format("experiment: %s = %d is more than the %d examples of %s's %s split", s[1], v,
          sizes[s[2]], name, s[2]), 0)
      end
    end
  end
  -- precision: 'fp32' (the default, left out of the config so that the ids
  -- of f32 runs stay as they were), 'tf32' (f32 with TF32 GEMMs: tf32 =
  -- true) or 'bf16' (training steps under rl.autocast).  attack_precision
  -- 'bf16' lets the attack steps inside training run in bf16 too.
  local p = cfg.precision
  if p ~= nil and p ~= 'fp32' and p ~= 'tf32' and p ~= 'bf16' then
    error(string.format("experiment: precision must be 'fp32', 'tf32' or 'bf16', got %s", tostring(p)), 0)
  end
  local ap = cfg.attack_precision
  if ap ~= nil and ap ~= 'fp32' and ap ~= 'bf16' then
    error(string.format("experiment: attack_precision must be 'fp32' or 'bf16', got %s", tostring(ap)), 0)
  end
  if ap == 'bf16' and p ~= 'bf16' then
    error("experiment: attack_precision 'bf16' needs precision 'bf16' (the attacks of an f32 run are f32)", 0)
  end
  if cfg.device == 'cpu' and cfg.tf32 ~= nil then
    -- the CPU has no TF32: true is refused as precision 'tf32' is; false
    -- is what every CPU run does (and must not make an id of its own)
    if cfg.tf32 then error("experiment: tf32 = true is a GPU setting (the CPU has no TF32)", 0) end
    cfg.tf32 = nil
  end
  if p == 'tf32' then
    if cfg.device == 'cpu' then error("experiment: precision 'tf32' is a GPU setting (the CPU has no TF32)", 0) end
    if cfg.tf32 == false then error("experiment: precision 'tf32' with tf32 = false", 0) end
    cfg.tf32 = true
  elseif p == 'fp32' and cfg.tf32 then
    error("experiment: precision 'fp32' with tf32 = true", 0)
  end
  cfg.precision = p == 'bf16' and 'bf16' or nil
  cfg.attack_precision = ap == 'bf16' and 'bf16' or nil
  -- TF32 GEMMs change a GPU run's bits: such runs get ids of their own.
  -- RL_CUDA_TF32 makes TF32 the default, unless precision 'fp32' says
  -- otherwise (the run then gets the id of any f32 run).
  if cfg.tf32 == nil and p ~= 'fp32' and cfg.device ~= 'cpu' and rl.cuda.allow_tf32() then cfg.tf32 = true end
  -- the device's spelling ('gpu' is no device) and the model's name; whether
  -- a GPU is there is asked when the run starts (a table can be listed, or
  -- sent to Slurm, from a machine without one)
  local dok, derr = pcall(rl.device, cfg.device)
  if not dok and tostring(derr):find('unknown device', 1, true) then error('experiment: ' .. derr, 0) end
  if not models.is_model(cfg.model) then
    error(string.format('experiment: unknown model %q (known: %s)', tostring(cfg.model),
      table.concat(models.names(), ', ')), 0)
  end
  -- a changed definition changes the run id (version 1 is left out, so the
  -- ids of unchanged methods stay as they were)
  local v = methods.versions[base]
  cfg.method_version = v and (v > 1 or methods.registered[base]) and v or nil
  return cfg
end

--- The dropout rate of a dataset's "+ dropout" rows (Table 4): SVHN 0.5,
-- CIFAR-10 0.2 (docs/methods.md); nil where the paper has none.
function exp.default_dropout(dataset)
  local d = exp.datasets[dataset]
  return d and d.dropout
end

--- Eight hex digits of a string's djb2 hash: the part of a results
-- directory's name that stands for its settings.
function exp.short_hash(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 4294967296 end
  return string.format('%08x', h)
end

-- The method part of a run id: the method's name, then each of its
-- settings that the config sets to another value than the named method and
-- the dataset give it (a beta sweep: trades-beta0.3, trades6-beta2).
local function method_label(cfg)
  local conf = methods.configs[cfg.method]
  local named = conf and conf[2] or {}
  local d = exp.datasets[cfg.dataset] or {}
  local by_dataset = d.method_opts and conf and d.method_opts[conf[1]] or {}
  local parts = { cfg.method }
  for _, k in ipairs(METHOD_OPTS) do
    local v = cfg[k]
    if v ~= nil and v ~= named[k] and v ~= by_dataset[k] then
      parts[#parts + 1] = k .. (type(v) == 'number' and string.format('%g', v) or tostring(v))
    end
  end
  return table.concat(parts, '-')
end

--- A readable, deterministic id: dataset-model-method-e<epochs>-s<seed>,
-- plus a short hash of every other setting.  The method part names the
-- method settings that differ from the named method's (method_label).
function exp.run_id(cfg)
  local main = { dataset = 1, model = 1, method = 1, epochs = 1, seed = 1, device = 1, data_dir = 1 }
  local rest = {}
  for k, v in pairs(cfg) do if not main[k] then rest[k] = v end end
  return string.format('%s-%s-%s-e%d-s%d-%s', cfg.dataset:gsub('[^%w]', '_'), cfg.model, method_label(cfg),
    cfg.epochs, cfg.seed, exp.short_hash(json.encode(rest)))
end

-- ---------------------------------------------------------------------------
-- progress

-- Asked once per process: os.execute runs system(), which ignores SIGINT
-- while it waits, so a Ctrl-C landing in it is lost; asked at every epoch
-- (each epoch makes a progress line), a loaded machine lost the test's one
-- interrupt right after a checkpoint.
local stderr_is_tty
local function is_tty()
  if stderr_is_tty == nil then
    local ok = os.execute('test -t 2')
    stderr_is_tty = ok == true or ok == 0
  end
  return stderr_is_tty
end

local function fmt_time(s)
  if s ~= s or s == math.huge then return '?' end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format('%dh%02dm', s // 3600, s % 3600 // 60) end
  return string.format('%dm%02ds', s // 60, s % 60)
end

local Progress = {}
Progress.__index = Progress

function exp.progress(label, total, o)
  o = o or {}
  local p = setmetatable({ label = label, total = total, t0 = rl.clock(), tty = o.tty,
    last = 0, quiet = o.quiet }, Progress)
  if p.tty == nil then p.tty = is_tty() end
  return p
end

--- Say that the work has begun (done 0, eta unknown): for work whose first
-- report comes late (an evaluation's first batch under a long attack).
function Progress:start()
  if self.quiet then return end
  io.stderr:write(string.format('%s 0/%d eta ?', self.label, self.total), self.tty and '' or '\n')
  io.stderr:flush()
end

--- Report `done` of total items with extra text (a string, or a function
-- returning one, called only when a line is written); on a terminal one
-- line redrawn at most 5 times a second, otherwise a plain line every ~10 %
-- and at the end.
function Progress:update(done, text, examples)
  if self.quiet then return end
  local now = rl.clock()
  local final = done >= self.total
  if self.tty then
    if not final and now - (self.shown or -1) < 0.2 then return end
    self.shown = now
  elseif not final and done - self.last < math.max(1, self.total // 10) then
    return
  end
  if type(text) == 'function' then text = text() end
  local el = now - self.t0
  local rate = examples and examples / math.max(el, 1e-9)
  local eta = done > 0 and el / done * (self.total - done) or math.huge
  local line = string.format('%s %d/%d %s%s eta %s', self.label, done, self.total, text or '',
    rate and string.format(' %.0f ex/s', rate) or '', fmt_time(eta))
  if self.tty then
    io.stderr:write('\r', line, '\027[K')
    if final then io.stderr:write('\n') end
  else
    io.stderr:write(line, '\n')
    self.last = done
  end
  io.stderr:flush()
end

-- ---------------------------------------------------------------------------
-- the run

local function make_optimizer(cfg, params)
  if cfg.optimizer == 'sgd' then
    return optim.SGD(params, { lr = cfg.lr, momentum = cfg.momentum or 0, weight_decay = cfg.weight_decay or 0 })
  elseif cfg.optimizer == 'adam' then
    return optim.Adam(params, { lr = cfg.lr, weight_decay = cfg.weight_decay or 0 })
  end
  error(string.format("experiment: unknown optimizer %q (sgd, adam)", tostring(cfg.optimizer)), 0)
end

-- Batches of a dataset's first n examples, through the data loader (u8 ->
-- f32 in C, the test-time centre crop, the device), in order.
local function eval_batches(ds, n, batch, cfg)
  if n and n < ds:size() then ds = ds:select(rl.arange(n)) end
  return data.loader(ds, { batch = batch, shuffle = false, crop = cfg.crop,
    device = cfg.device ~= 'cpu' and cfg.device or nil }):iter(1)
end

-- The attack of the adversarial columns: AutoAttack comes beside the
-- paper's PGD (its own key, the test split only), multitarget in its place.
local function main_attack(attack) return attack == 'autoattack' and 'pgd' or attack or 'pgd' end
local function adv_suffix(attack) return main_attack(attack) == 'pgd' and '' or '_' .. attack end

--- The keys of metrics.json that a measurement under `attack` writes:
-- 'pgd' the paper's; 'multitarget' the paper's with the adversarial ones
-- suffixed _multitarget; 'autoattack' the paper's plus
-- test_adv_acc_autoattack (AutoAttack is a test-set evaluation: the train
-- split and the adversarial gap stay PGD's).
function exp.metric_keys(attack)
  local s = adv_suffix(attack)
  local keys = { 'train_acc', 'test_acc', 'train_adv_acc' .. s, 'test_adv_acc' .. s, 'train_lipschitz',
    'test_lipschitz', 'train_lipschitz_max', 'test_lipschitz_max', 'gen_gap', 'adv_gap' .. s }
  if attack == 'autoattack' then keys[#keys + 1] = 'test_adv_acc_autoattack' end
  return keys
end

--- The measurements of docs/methods.md on both splits: accuracy, adversarial
-- accuracy under o.attack ('pgd', the paper's column, or 'multitarget';
-- keys get a suffix _multitarget; or 'autoattack': PGD's and, on the test
-- split, AutoAttack standard's as test_adv_acc_autoattack, seeded by
-- cfg.seed, run per batch, without its gradient-masking checks), and both
-- Lipschitz estimates (the reference's, the paper's column, as
-- *_lipschitz; the maximising one as *_lipschitz_max).  o.only = {key =
-- true} measures only what those keys need (to complete the metrics of a
-- finished run).
function exp.measure(model, train, test, cfg, o)
  o = o or {}
  local n = cfg.eval_subset
  local attack = main_attack(o.attack)
  local sfx = adv_suffix(o.attack)
  local want = function(k) return o.only == nil or o.only[k] end
  local res = {}
  for _, split in ipairs { { 'train', train }, { 'test', test } } do
    local name, ds = split[1], split[2]
    local total = math.min(n or ds.x.shape[1], ds.x.shape[1])
    local p = exp.progress('eval ' .. name, total, { quiet = o.quiet })
    p:start()
    local m = metrics.evaluate(model, eval_batches(ds, n, cfg.eval_batch or 256, cfg), {
      eps = cfg.eps, attack = attack, classes = #train.classes, generator = rl.Generator(cfg.seed + 7),
      adv = want(name .. '_adv_acc' .. sfx), lipschitz = want(name .. '_lipschitz'),
      lipschitz_max = want(name .. '_lipschitz_max'),
      progress = function(k) p:update(k) end,
    })
    res[name .. '_acc'] = m.acc
    res[name .. '_n'] = m.n -- the examples measured: the tables' confidence intervals
    res[name .. '_adv_acc' .. sfx] = m.adv_acc
    res[name .. '_lipschitz'] = m.lipschitz
    res[name .. '_lipschitz_max'] = m.lipschitz_max
    local aa = name .. '_adv_acc_autoattack'
    if o.attack == 'autoattack' and name == 'test' and want(aa) then
      local pa = exp.progress('eval test (AutoAttack)', total, { quiet = o.quiet })
      pa:start()
      res[aa] = metrics.evaluate(model, eval_batches(ds, n, cfg.eval_batch or 256, cfg), {
        eps = cfg.eps, attack = 'autoattack', classes = #train.classes, seed = cfg.seed, adv = true,
        progress = function(k) pa:update(k) end,
      }).adv_acc
    end
  end
  res.gen_gap = res.train_acc - res.test_acc
  if res['train_adv_acc' .. sfx] then
    res['adv_gap' .. sfx] = res['train_adv_acc' .. sfx] - res['test_adv_acc' .. sfx]
  end
  res.lipschitz_estimators = {
    lipschitz = 'reference: estimate_local_lip_v2, 10 steps of 0.003 that lower r, batch 16',
    lipschitz_max = 'max: 10 steps of 0.003 that raise r',
  }
  return res
end

-- log.csv: one row per finished epoch.
local LOG_COLUMNS = { 'epoch', 'loss', 'train_acc', 'lr', 'seconds' }

local function csv_line(row)
  local cells = {}
  for i, k in ipairs(LOG_COLUMNS) do
    local v = row[k]
    cells[i] = type(v) == 'number' and string.format('%.6g', v) or tostring(v)
  end
  return table.concat(cells, ',') .. '\n'
end

local function csv_header() return table.concat(LOG_COLUMNS, ',') .. '\n' end

-- The text of log.csv as of the checkpoint of `epoch`.  A checkpoint
-- carries the log it belongs with (extra.log), which also brings back the
-- row of a run killed between saving the checkpoint and writing its row.
-- A checkpoint without one (older versions) keeps the file's rows up to
-- its epoch: a row beyond it is of an epoch that will run again.
local function log_at(path, epoch, carried)
  if type(carried) == 'string' then return carried end
  local keep = { csv_header() }
  local f = io.open(path, 'rb')
  if not f then return keep[1] end
  for line in f:lines() do
    local e = math.tointeger(tonumber(line:match('^[^,]*')))
    if e and e <= epoch then keep[#keep + 1] = line .. '\n' end
  end
  f:close()
  return table.concat(keep)
end

-- Test hook of spec/crash_resume_spec.lua: RL_TEST_KILL_AT=<point>:<epoch>
-- ends this process abruptly when the run reaches <point> of <epoch>:
--   train       after the epoch's first batch (SIGKILL)
--   checkpoint  inside the write of the epoch's checkpoint
--   interrupt   the checkpoint just saved, before the run notes it: raises
--               'interrupted!' as Ctrl-C's hook would there (not a kill)
--   log         the checkpoint saved, its row not yet in log.csv (SIGKILL)
--   model       (last epoch) inside the write of model.safetensors
--   measure     (last epoch) model.safetensors saved, metrics.json not (SIGKILL)
--   eval        (last epoch) model.safetensors saved, as the measurement
--               starts: raises 'interrupted!' as Ctrl-C's hook would
-- "Inside a write" cannot be reached from Lua, so the hook lowers this
-- process's file-size limit to 4 KiB (prlimit) and the kernel ends it with
-- SIGXFSZ at byte 4096 of the temporary file: a torn temporary, as SIGKILL
-- mid-write would leave, at the same byte every time.
local KILL_POINTS = { train = true, checkpoint = true, interrupt = true, log = true, model = true, measure = true,
  eval = true }

local function kill_hook()
  local spec = os.getenv('RL_TEST_KILL_AT')
  if not spec or spec == '' then return function() end end
  local point, at = spec:match('^(%a+):(%d+)$')
  if not KILL_POINTS[point] then
    error('experiment: RL_TEST_KILL_AT must be <point>:<epoch> with a point of train, checkpoint, interrupt, '
      .. 'log, model, measure, eval; not ' .. spec, 0)
  end
  at = math.tointeger(tonumber(at))
  local armed = false -- the file-size limit is set: the next write must die
  return function(here, epoch)
    if armed then -- the write after the limit finished: it was under 4 KiB
      error(string.format('RL_TEST_KILL_AT: the write at %s finished under 4096 bytes, so the '
        .. 'hook could not tear it', spec), 0)
    end
    if here ~= point or epoch ~= at then return end
    local pid = fs.pid()
    io.stderr:write(string.format('RL_TEST_KILL_AT: ending at %s:%d\n', here, epoch))
    io.stderr:flush()
    if here == 'interrupt' or here == 'eval' then
      error('interrupted! (RL_TEST_KILL_AT)', 0)
    elseif here == 'checkpoint' or here == 'model' then
      assert(os.execute(string.format('prlimit --pid %d --fsize=4096: --core=0:', pid)))
      armed = true
    else
      os.execute('kill -9 ' .. pid)
      error('RL_TEST_KILL_AT: kill -9 did not end the process', 0)
    end
  end
end

-- The files a run writes in its directory (each through a NAME.tmp.<pid>).
local RUN_FILES = { 'config.json', 'checkpoint.safetensors', 'log.csv', 'model.safetensors',
  'metrics.json' }

-- Two processes training one run would overwrite each other's
-- checkpoints.  While a process trains a run, its directory holds
-- `running/` (made by mkdir, which only one process can do) with `owner`:
-- host and pid.  A second process on the same host refuses while that pid
-- is alive; a lock left by a dead process, or by another host (a requeued
-- Slurm task whose node is gone), is taken over.  Returns the release.
local function lock_run(dir, id)
  local lock = dir .. '/running'
  local host = (fs.read('/proc/sys/kernel/hostname') or os.getenv('HOSTNAME') or '?'):gsub('%s+$', '')
  local pid = fs.pid()
  local made = os.execute('mkdir ' .. fs.quote(lock) .. ' 2>/dev/null')
  if not (made == true or made == 0) then
    local ohost, opid = (fs.read(lock .. '/owner') or ''):match('^(%S+) (%d+)')
    if ohost == host and tonumber(opid) ~= pid and fs.alive(opid) then
      error(string.format('experiment: %s is being trained by process %s on this host (%s); ' ..
        'wait for it, or stop it and rerun to resume', id, opid, lock), 0)
    end
  end
  fs.write(lock .. '/owner', host .. ' ' .. pid .. '\n')
  return function()
    os.remove(lock .. '/owner')
    os.remove(lock)
  end
end

-- Where a run starts: after the epoch of its checkpoint, restored into
-- st's model, optimiser and scheduler, with log.csv cut back to (or
-- completed up to) that epoch; else at epoch 1 with an empty log.  First
-- the temporaries that a killed process left half-written are removed.
-- Returns the first epoch to train and the log's text.
local function pick_up(dir, id, st, log)
  local removed = fs.remove_stale_temps(dir, RUN_FILES)
  if #removed > 0 then log(string.format('%s: removed %s (left by a killed run)', id, table.concat(removed, ', '))) end
  local ckpt, log_path = dir .. '/checkpoint.safetensors', dir .. '/log.csv'
  if not fs.exists(ckpt) then
    -- No checkpoint: no epoch of this run was finished (or the run finished
    -- and its checkpoint was removed, and metrics.json is being measured
    -- again: the log is then written anew).  A row there is not one to keep.
    os.remove(log_path)
    return 1, csv_header()
  end
  st.restore_rng = true
  local info = checkpoint.load(ckpt, st)
  if not info.epoch then error(string.format('experiment: %s holds no epoch', ckpt), 0) end
  local text = log_at(log_path, info.epoch, info.extra and info.extra.log)
  fs.write(log_path, text)
  log(string.format('%s: resuming after epoch %d', id, info.epoch))
  return info.epoch + 1, text
end

local function load_data(cfg, o)
  return o.data or {
    train = data.load(cfg.dataset, { split = 'train', data_dir = cfg.data_dir, subset = cfg.subset, seed = cfg.seed }),
    test = data.load(cfg.dataset, { split = 'test', data_dir = cfg.data_dir, subset = cfg.test_subset, seed = cfg.seed }),
  }
end

-- The images each dataset's readers give (channels, height, width) and its
-- classes, for checking a row's model before any data is read.
local SHAPES = {
  mnist = { 1, 28, 28, 10 }, ['fashion-mnist'] = { 1, 28, 28, 10 }, svhn = { 3, 32, 32, 10 },
  cifar10 = { 3, 32, 32, 10 }, resimgnet = { 3, 72, 72, 9 }, synthetic = { 1, 28, 28, 10 },
}

-- The model of cfg for `classes` classes of images [channels, h, w],
-- checked by one forward pass of a zero image (eval mode, no gradient: no
-- random draw, no running statistic moves).  An architecture that cannot
-- take the images is an error naming the row, not a failure deep inside
-- its first training step.
local function model_for(cfg, classes, channels, h, w)
  local mopts = { classes = classes, channels = channels }
  if cfg.drop then mopts.drop = cfg.drop end -- dropout variants (Table 4)
  local ok, model = pcall(models.get, cfg.model, mopts)
  if not ok then error(string.format('experiment: %s: %s', cfg.model, tostring(model):gsub('^.-:%d+: ', '')), 0) end
  local fine, msg = pcall(function()
    model:with_mode('eval', function()
      rl.no_grad(function() model(rl.zeros(1, channels, h, w)) end)
    end)
  end)
  if not fine then
    error(string.format("experiment: model %s cannot take %s's %dx%dx%d images (%s); pick another --model",
      cfg.model, cfg.dataset, channels, h, w, tostring(msg):gsub('^.-:%d+: ', '')), 0)
  end
  return model
end

--- exp.check_device(device): raise when the device cannot be used here
-- ("experiment: device cuda: CUDA is not available: ..."), before a run
-- reads or trains anything.
function exp.check_device(device)
  if device == 'cpu' then return end
  local ok, err = pcall(rl.device, device)
  if not ok then error(string.format('experiment: device %s: %s', device, tostring(err)), 0) end
end

--- exp.check(cfg): raise, before anything is read or trained, when cfg's
-- model cannot take its dataset's images (where rllua knows their size:
-- every named dataset; folder:PATH is checked once loaded).
-- What passed exp.check: a table's rows of one dataset share a model, and
-- building WRN-40-10 ten times cost a minute before anything ran.
local checked = {}
function exp.check(cfg)
  local s = SHAPES[cfg.dataset]
  if not s then return end
  local side = cfg.crop or s[2]
  local key = table.concat({ cfg.model, cfg.dataset, tostring(cfg.crop), tostring(cfg.drop) }, '|')
  if checked[key] then return end
  model_for(cfg, s[4], s[1], side, cfg.crop or s[3])
  checked[key] = true
end

local function build_model(cfg, train)
  local side = cfg.crop
  local h, w = side or train.x.shape[3], side or train.x.shape[4]
  local model = model_for(cfg, #train.classes, train.x.shape[2], h, w)
  if cfg.device ~= 'cpu' then model:to(cfg.device) end
  return model
end

-- A finished run's metrics, completed with what this call asks for and
-- they lack (another attack; the maximising Lipschitz column of a run
-- measured before it existed) from its model.safetensors.
--- A finished run's metrics.json, or nil.  A run measured before the two
-- Lipschitz estimators held the maximising one under *_lipschitz: those
-- values are dropped rather than shown in the paper's column.
function exp.read_metrics(dir)
  local m = fs.exists(dir .. '/metrics.json') and json.read(dir .. '/metrics.json')
  if m and not m.lipschitz_estimators then m.train_lipschitz, m.test_lipschitz = nil, nil end
  return m or nil
end

local function complete(m, cfg, dir, id, sets, o, log)
  local only, missing = {}, {}
  for _, k in ipairs(exp.metric_keys(o.attack)) do
    if m[k] == nil then only[k], missing[#missing + 1] = true, k end
  end
  if #missing == 0 then return m end
  if not fs.exists(dir .. '/model.safetensors') then
    log(string.format('%s: finished before, but %s/model.safetensors is gone: %s not measured', id, dir,
      table.concat(missing, ', ')))
    return m
  end
  log(string.format('%s: finished before; measuring %s from its model', id, table.concat(missing, ', ')))
  local model = build_model(cfg, sets.train)
  model:load(dir .. '/model.safetensors')
  local add = exp.measure(model, sets.train, sets.test, cfg, { attack = o.attack, only = only, quiet = o.quiet })
  for _, k in ipairs(missing) do m[k] = add[k] end
  m.lipschitz_estimators = add.lipschitz_estimators
  json.write(dir .. '/metrics.json', m)
  return m
end

local train_run, same_data

--- exp.data_identity({train, test}) -> what identifies the data a run is
-- made from: per split the number of examples, the image size, the classes
-- and digests of the labels and of a sample of the images (every image's
-- first row, at most 4096 images).  The same files give the same identity
-- wherever they are; another copy, subset or version of a dataset does not.
function exp.data_identity(sets)
  local out = {}
  for _, split in ipairs { 'train', 'test' } do
    local ds = sets[split]
    if ds then
      local n = ds:size()
      local y = ds.y:to('f64')
      local w = rl.arange(n, { dtype = 'f64' }) % 97 + 1
      local rows = {}
      local step = math.max(1, n // 4096)
      local x = ds.x
      local sample = 0
      if rl.is_tensor(x) then
        local idx = rl.arange(0, n, step)
        local first = x:index_select(1, idx):select(2, 1):select(2, 1):to('f64')
        sample = (first * (rl.arange(first.shape[2], { dtype = 'f64' }) + 1)):sum():item()
      end
      out[split] = { n = n, shape = rl.is_tensor(x) and table.concat(x.shape, 'x', 2) or 'ragged',
        classes = #ds.classes, labels = string.format('%.17g', (y * w):sum():item()),
        images = string.format('%.17g', sample) }
    end
  end
  return out
end

-- Raise when the run directory records other data than `identity`.
function same_data(dir, id, identity)
  local path = dir .. '/data.json'
  if not fs.exists(path) then return end
  local was = json.read(path)
  for _, split in ipairs { 'train', 'test' } do
    local a, b = was[split] or {}, identity[split] or {}
    for _, k in ipairs { 'n', 'shape', 'classes', 'labels', 'images' } do
      if a[k] ~= nil and b[k] ~= nil and tostring(a[k]) ~= tostring(b[k]) then
        error(string.format('experiment: %s was made from other data than this run has: %s %s %s then, %s now ' ..
          '(%s); point --data-dir at the data it used, or give another --out', id, split,
          k == 'n' and 'examples' or k, tostring(a[k]), tostring(b[k]), path), 0)
      end
    end
  end
end

-- The model of a finished run, from its model.safetensors (nil if gone).
local function finished_model(cfg, dir, sets)
  if not fs.exists(dir .. '/model.safetensors') then return nil end
  local model = build_model(cfg, sets.train)
  model:load(dir .. '/model.safetensors')
  return model
end

-- The epoch a checkpoint file holds, from its header alone; nil when
-- there is no file or it cannot be read.
local function saved_epoch(path)
  local ok, epoch = pcall(checkpoint.epoch, path)
  return ok and epoch or nil
end

--- Run (or resume, or skip) one configuration; returns its metrics table,
-- its run id and the trained model (of a run finished before: loaded from
-- its model.safetensors; its data.json must match the data of this call,
-- o.data or the data cfg names, else an error says what differs).
-- opts: out (the table's results directory), quiet, data (preloaded
-- {train, test} datasets), log (a function for one-line messages), label
-- (put before the progress line's text: a table's row and ETA), attack
-- (of the adversarial accuracy: 'pgd', default, 'multitarget' or
-- 'autoattack', see exp.measure; a finished run measured under another
-- attack is measured again from its saved model, not retrained).
local RUN_OPTS = { out = true, quiet = true, data = true, log = true, label = true, attack = true }

function exp.run(cfg, o)
  o = o or {}
  options.known('exp.run', o, RUN_OPTS, 3)
  local id = exp.run_id(cfg)
  local dir = (o.out or 'results/default') .. '/' .. id
  local log = o.log or function(s) io.stderr:write(s, '\n') end
  local done = exp.read_metrics(dir)
  if done then
    -- a finished run must have been made from this call's data (o.data,
    -- else the data cfg names, which its model is built on anyway: data_dir
    -- is no part of the id, so other files may stand where it points)
    local sets = load_data(cfg, o)
    same_data(dir, id, exp.data_identity(sets))
    log(string.format('%s: finished before, not redone (%s)', id, dir))
    return complete(done, cfg, dir, id, sets, o, log), id, finished_model(cfg, dir, sets)
  end
  -- what can fail before training does so before the run's directory exists
  exp.check(cfg)
  exp.check_device(cfg.device)
  local sets = load_data(cfg, o)
  local train, test = sets.train, sets.test
  local identity = exp.data_identity(sets)
  same_data(dir, id, identity) -- a run resumed on other data would be two runs in one
  rl.manual_seed(cfg.seed)
  local model = build_model(cfg, train)
  local fresh = not fs.exists(dir .. '/config.json')
  fs.mkdir(dir, 'experiment')
  local unlock = lock_run(dir, id)
  fs.write(dir .. '/data.json', json.encode(identity) .. '\n')
  json.write(dir .. '/config.json', cfg)
  -- the GEMMs run as the config says (its id depends on it)
  local tf32 = cfg.device ~= 'cpu' and rl.cuda.allow_tf32(cfg.tf32 == true)
  local state = {}
  local ok, m = pcall(train_run, cfg, o, id, dir, log, sets, model, state)
  unlock()
  if cfg.device ~= 'cpu' then rl.cuda.allow_tf32(tf32) end
  if not ok and tostring(m):find('interrupted!', 1, true) then
    -- the checkpoint on disk is what a rerun resumes from: a Ctrl-C that
    -- lands as a save ends (the file renamed into place, state.saved not
    -- yet set) must not say one epoch too few
    local saved = saved_epoch(dir .. '/checkpoint.safetensors') or state.saved or 0
    if saved >= cfg.epochs then
      -- every epoch trained and saved: what a rerun does is the measurement
      error(string.format('interrupted in the final measurement (all %d epochs trained and saved); rerun the same ' ..
        'command to measure the run (%s)', cfg.epochs, dir), 0)
    end
    error(string.format('interrupted; rerun the same command to resume from epoch %d (%s)', saved + 1, dir), 0)
  end
  if not ok then
    -- a run that stopped before its first epoch was saved leaves nothing
    if fresh and not fs.exists(dir .. '/checkpoint.safetensors') and not fs.exists(dir .. '/log.csv') then
      os.remove(dir .. '/config.json')
      os.remove(dir .. '/data.json')
      os.remove(dir) -- only if now empty
    end
    error(m, 0)
  end
  return m, id, model
end

-- config.json again, with the algorithm each convolution shape took so
-- far: on the CPU (rl.backends.cpu.conv_choices), or on a GPU for bf16
-- (rl.backends.cuda.conv_choices): the one thing besides the config that
-- decides a run's last bits, and the same for every run on one machine.
-- Written after the first epoch and after the measurement.
local function record_algorithms(dir, cfg)
  local b = require('rl.backends')
  local field, choices = 'cpu_conv', nil
  if cfg.device == 'cpu' then
    choices = b.cpu.conv_choices()
  else
    field, choices = 'cuda_conv', b.cuda.conv_choices()
  end
  local list = {}
  for _, c in ipairs(choices) do
    list[#list + 1] = string.format('%s: %s (%s)', c.key, c.algorithm, c.how)
  end
  if #list == 0 then return end
  local rec = { [field] = list }
  for k, v in pairs(cfg) do rec[k] = v end
  json.write(dir .. '/config.json', rec)
end

-- The training loop and the final measurement of exp.run.
function train_run(cfg, o, id, dir, log, sets, model, state)
  local train, test = sets.train, sets.test
  local opt = make_optimizer(cfg, model:parameters())
  local sched = optim.MultiStepLR(opt, { milestones = cfg.milestones or optim.paper_milestones(cfg.epochs), gamma = 0.1 })
  local method = methods.get(cfg.method)
  local loader = data.loader(train, { batch = cfg.batch, shuffle = true, seed = cfg.seed,
    crop_pad = cfg.crop_pad, flip = cfg.flip, crop = cfg.crop,
    device = cfg.device ~= 'cpu' and cfg.device or nil })

  local ckpt, log_path = dir .. '/checkpoint.safetensors', dir .. '/log.csv'
  local start, log_text = pick_up(dir, id, { model = model, optimizer = opt, scheduler = sched }, log)
  state.saved = start - 1
  local reach = kill_hook()
  local gen = rl.Generator(cfg.seed + 1)
  for epoch = start, cfg.epochs do
    local nb = #loader
    -- o.label: a string, or a function of the share of this call's epochs
    -- done (a table's live ETA)
    local label = type(o.label) == 'function' and o.label((epoch - start) / (cfg.epochs - start + 1)) or o.label
    local p = exp.progress(string.format('%s%s epoch %d/%d', label and label .. ' ' or '', cfg.method, epoch,
      cfg.epochs), nb, { quiet = o.quiet })
    -- running sums stay on the device; they are read when a line is printed
    local t0, seen, loss_sum, correct = rl.clock(), 0, nil, nil
    local function mean(t) return t and t:item() / math.max(seen, 1) or 0 end
    gen:set_state({ seed = cfg.seed * 1000003 + epoch, offset = 0 })
    for x, y, i in loader:iter(epoch) do
      opt:zero_grad()
      local mo = { eps = cfg.eps, generator = gen }
      for _, k in ipairs(METHOD_OPTS) do mo[k] = cfg[k] end
      -- the step's forward passes (and, with attack_precision, its
      -- attacks) in the run's precision; backward outside, as PyTorch's
      local loss, logits = rl.autocast({ dtype = cfg.precision, attack = cfg.attack_precision }, method, model, x,
        y, mo)
      loss:backward()
      opt:step()
      local B = x.shape[1]
      seen = seen + B
      rl.no_grad(function()
        local l, c = loss:detach():double(), logits:argmax(2):eq(y):sum()
        loss_sum = loss_sum and loss_sum + l or l
        correct = correct and correct + c or c
      end)
      p:update(i, function()
        return string.format('loss %.4f acc %.3f', mean(loss_sum), mean(correct))
      end, seen)
      if i == 1 then reach('train', epoch) end
    end
    sched:step()
    log_text = log_text .. csv_line {
      epoch = epoch, loss = mean(loss_sum), train_acc = mean(correct),
      lr = opt.param_groups[1].lr, seconds = rl.clock() - t0,
    }
    -- the checkpoint first, then the row: log.csv never has an epoch that
    -- a resumed run would train again, and a failed save (a full disk)
    -- stops the run with the previous checkpoint and log as they were
    reach('checkpoint', epoch)
    checkpoint.save(ckpt, { model = model, optimizer = opt, scheduler = sched, epoch = epoch,
      extra = { log = log_text } })
    reach('interrupt', epoch)
    state.saved = epoch
    reach('log', epoch)
    fs.write(log_path, log_text)
    if epoch == start then record_algorithms(dir, cfg) end
  end
  reach('model', cfg.epochs)
  model:save(dir .. '/model.safetensors')
  reach('measure', cfg.epochs)
  reach('eval', cfg.epochs)
  local m = exp.measure(model, train, test, cfg, { attack = o.attack, quiet = o.quiet })
  m.run_id = id
  record_algorithms(dir, cfg)
  json.write(dir .. '/metrics.json', m)
  os.remove(ckpt) -- finished: model.safetensors and metrics.json are the record
  return m
end

return exp
