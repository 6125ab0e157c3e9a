--- rl.methods: the training objectives of the paper, exactly as
-- docs/methods.md states them (the reference implementation's
-- settings, including its quirks).
--
-- Each objective is fn(model, x, y, opts) -> loss, logits, info: `loss` is
-- what to call backward on, `logits` the clean (or, for AT, adversarial)
-- predictions used for the training accuracy, and `info.value` the
-- objective's value as the method defines it (read on demand).  opts.eps is the radius;
-- opts.quirks = false switches to the textbook form where the reference
-- differs (see QUIRKS below).  Objectives leave the model in train mode.
-- Every option is checked for kind and range (ROWS below: finite numbers,
-- beta, lambda, mu, eps, step_size >= 0, h > 0, steps an integer >= 0,
-- quirks a boolean), and so are model, x and y; a refusal, the method's or
-- one met inside (the attack's, the model's), is raised at the caller's
-- line and led by the method's name.
--
-- QUIRKS (default on, as the reference; docs/quirks.md has the whole list):
--   at     the PGD attack runs with the model in train mode (dropout active,
--          batch norm on batch statistics and updating its running stats);
--          textbook: eval mode.
--   rst    the adversarial batch goes through the model before the clean
--          one (batch norm's running statistics depend on the order), and
--          the returned logits are the adversarial ones, as the reference's
--          training accuracy.
--   trades the clean batch goes through the model twice in train mode: once
--          for the CE term, once more for p(x) in the KL term (after x'),
--          so with dropout the two terms see different masks and batch norm
--          updates its running statistics three times; textbook: one pass.
--   gr     the reference's gradient of sum(l_i) is taken with a backward that
--          also accumulates parameter gradients and never clears them, so
--          its parameter gradient is that of 2*sum(l_i) + lambda*sum(d_i^2)/2;
--          `loss` reproduces that gradient (info.value is the textbook value).
--   llr    the reference's m = grad_x CE_sum(f(x)) is always zero (its helper
--          returns x.grad and then zeroes that tensor in place), so gamma is
--          |CE_sum(f(x + delta))|, the mu term vanishes, and the inner ascent
--          climbs |CE_sum(f(x + delta))| alone.  Textbook (Qin et al.): the
--          true m, per sample |l_i(x+delta) - l_i(x) - m_i . delta_i| and
--          mu |m_i . delta_i|, summed over the batch.
--   all    losses are sums over the batch (CE_sum), not means: with SGD this
--          scales the effective learning rate by the batch size.
--
-- opts.start gives the starting point of an inner search instead of its
-- random draw (TRADES: x'; LLR: delta), so that another implementation can
-- be fed the same noise.
local rl = require 'rl.base'
local attacks = require 'rl.attacks'
local options = require 'rl.options'
local F = rl.F

local methods = {}

local function ce_sum(logits, y) return F.cross_entropy(logits, y, 'sum') end

-- KL_sum(p || q) from p (probabilities) and log q
local function kl_sum(logq, p) return F.kl_div(logq, p, 'sum') end

-- info.value is read back from the device only when someone asks for it:
-- a training loop that does not look costs no synchronisation per step.
local function info_of(t)
  return setmetatable({}, { __index = function(_, k) if k == 'value' then return t:item() end end })
end

-- Each method's options, checked by kind and range (rl.options; a
-- misspelt one is an error, not a default).  The ranges are those
-- docs/methods.md implies, finite: a NaN or infinite beta gave a NaN loss.
local finite = options.finite
local ROW = {
  eps = { 'number', nil, finite('>= 0') },
  generator = { 'generator' },
  quirks = { 'boolean', true },
  steps = { 'integer', nil, '>= 0' },
  step_size = { 'number', nil, finite('>= 0') },
  beta = { 'number', nil, finite('>= 0') },
  lambda = { 'number', nil, finite('>= 0') },
  mu = { 'number', nil, finite('>= 0') },
  h = { 'number', nil, finite('> 0') },
  start = { 'tensor' }, -- the batch's shape, checked with x
}
-- method -> its rows: {name, default}; eps, generator and quirks come first
local function rows(...)
  local t = {}
  for _, r in ipairs { { 'eps' }, { 'generator' }, { 'quirks' }, ... } do
    local k = ROW[r[1]]
    t[#t + 1] = { r[1], k[1], r[2] == nil and k[2] or r[2], k[3] }
  end
  return t
end
local ROWS = {
  natural = rows(),
  at = rows({ 'steps', 10 }, { 'step_size' }),
  rst = rows({ 'steps', 10 }, { 'step_size' }, { 'lambda', 1 }),
  trades = rows({ 'steps', 10 }, { 'step_size' }, { 'beta', 6 }, { 'start' }),
  gr = rows({ 'lambda', 1 }, { 'h', 1 }),
  llr = rows({ 'steps', 2 }, { 'step_size' }, { 'lambda', 4 }, { 'mu', 3 }, { 'start' }),
}
-- names other libraries give these options
local ALIASES = { epsilon = 'eps', alpha = 'step_size', num_steps = 'steps', nb_iter = 'steps' }
-- the methods that attack x, inside the [0, 1] box, and need eps
local ATTACKS = { at = true, rst = true, trades = true, llr = true }

local function shape(t) return table.concat(t.shape, 'x') end

-- The checked options of method `name` (defaults filled in), after the
-- model, x and y: a refusal names the method, not the attack or layer
-- that would have met the bad value.
local function checked(name, model, x, y, o)
  options.model(name, model)
  if not rl.is_tensor(x) or x.ndim < 2 then
    error(string.format('%s: x must be a batch tensor [B, ...], got %s', name, options.what(x)), 0)
  end
  if not (rl.is_tensor(y) and y.dtype == 'i64' and y.ndim == 1 and y.shape[1] == x.shape[1]) then
    error(string.format('%s: y must be i64 labels [%d], got %s', name, x.shape[1], options.what(y)), 0)
  end
  o = options.check(name, o, ROWS[name], ALIASES)
  if ATTACKS[name] then
    if o.eps == nil then error(name .. ': opts.eps (the radius) is required', 0) end
    if o.start and shape(o.start) ~= shape(x) then
      error(string.format("%s: start must be a tensor of the batch's shape %s, got %s", name, shape(x),
        options.what(o.start)), 0)
    end
    options.in_box(name, x, 0, 1, true) -- the attack's own check then reads nothing
  end
  return o
end

--- natural: CE_sum(f(x), y)
function methods.natural(model, x, y, o)
  checked('natural', model, x, y, o)
  model:train()
  local logits = model(x)
  local loss = ce_sum(logits, y)
  return loss, logits, info_of(loss)
end

-- the AT/RST attack: PGD-10, step eps/5, random start, true labels
local function at_attack(model, x, y, o)
  return attacks.pgd(model, x, y, {
    eps = o.eps, steps = o.steps, step_size = o.step_size or o.eps / 5,
    random_start = true, mode = o.quirks and 'train' or 'eval', generator = o.generator,
  })
end

--- AT: CE_sum(f(x'), y), x' = PGD(x, y)
function methods.at(model, x, y, o)
  o = checked('at', model, x, y, o)
  local xa = at_attack(model, x, y, o)
  model:train()
  local logits = model(xa)
  local loss = ce_sum(logits, y)
  return loss, logits, info_of(loss)
end

--- RST(lambda): CE_sum(f(x), y) + lambda * CE_sum(f(x'), y)
function methods.rst(model, x, y, o)
  o = checked('rst', model, x, y, o)
  local lambda = o.lambda
  local xa = at_attack(model, x, y, o)
  model:train()
  local logits = model(xa) -- first, as the reference (batch-norm statistics)
  local loss = ce_sum(model(x), y) + ce_sum(logits, y) * lambda
  return loss, logits, info_of(loss)
end

--- TRADES(beta): the attack in eval mode from x + 0.001 N(0, 1), 10 steps
-- of 2 eps / 10 on KL_sum(p(x) || p(x')) with p(x) constant; then in train
-- mode CE_sum(f(x), y) + beta * KL_sum(p(x) || p(x')), gradients through both.
-- Quirk (default): p(x) of the KL term comes from a second clean pass, made
-- after the pass on x', as the reference; quirks = false: one clean pass.
function methods.trades(model, x, y, o)
  o = checked('trades', model, x, y, o)
  local beta, steps = o.beta, o.steps
  local alpha = o.step_size or 2 * o.eps / 10
  local xa = model:with_mode('eval', function()
    local p_nat = rl.no_grad(function() return F.softmax(model(x), 2) end)
    return attacks.run(model, x, {
      objective = 'kl', probs = p_nat, eps = o.eps, steps = steps, step_size = alpha, rule = 'sign',
      start = o.start or 'normal', sigma = 0.001, generator = o.generator,
    })
  end)
  model:train()
  local logits = model(x)
  local logq = F.log_softmax(model(xa), 2)
  local p = F.softmax(o.quirks and model(x) or logits, 2)
  local loss = ce_sum(logits, y) + kl_sum(logq, p) * beta
  return loss, logits, info_of(loss)
end

--- GR (TULIP's finite-difference gradient regulariser), lambda = 1, h = 1.
function methods.gr(model, x, y, o)
  o = checked('gr', model, x, y, o)
  local lambda, h = o.lambda, o.h
  model:train()
  local xr = x:detach():requires_grad_()
  local logits = model(xr)
  local l = F.cross_entropy(logits, y, 'none')
  local lsum = l:sum()
  local g = rl.grad(lsum, xr, nil, { retain_graph = true })
  local B = x.shape[1]
  local v = rl.no_grad(function()
    local gf = g:view(B, -1)
    local n = gf:norm(2, 2, true)
    return (gf / n:clamp(1e-30)):masked_fill(n:eq(0):expand_as(gf), 0):view(x.shape)
  end)
  local d = (F.cross_entropy(model(x + v * h), y, 'none') - l) / h
  local reg = (d * d):sum() * (lambda / 2)
  local value = lsum + reg
  local loss = o.quirks and (lsum * 2 + reg) or value
  return loss, logits, info_of(value)
end

-- Per sample, d's l-inf norm brought down to at most eps, as torch's
-- renorm(p = inf, dim = 0, maxnorm = eps): scale eps / (norm + 1e-7).
local function renorm_inf(d, eps)
  local B = d.shape[1]
  local df = d:view(B, -1)
  local n = df:norm(math.huge, 2, true)
  local scale = rl.where(n:gt(eps), (n + 1e-7):reciprocal() * eps, rl.ones_like(n))
  return (df * scale):view(d.shape)
end

-- LLR's inner step, as the reference takes it: the gradient over its
-- per-sample l-inf norm (where that norm is 0, minus an unnormalised
-- N(0,1) draw), a step of `step`, the [0, 1] box, then each sample's l-inf
-- norm brought to at most eps.
local function llr_step(x, delta, gd, step, eps, generator)
  return rl.no_grad(function()
    local B = x.shape[1]
    local gf = gd:view(B, -1)
    local n = gf:norm(math.huge, 2, true)
    local u = gf / n
    local zero = n:eq(0)
    if zero:any():item() ~= 0 then
      -- the reference puts an unnormalised N(0,1) draw where a sample's
      -- gradient is zero, then takes its descent step on -gamma
      local fresh = rl.randn(gf.shape, { dtype = x.dtype, device = x.device, generator = generator })
      u = rl.where(zero:expand_as(gf), -fresh, u)
    end
    local d = delta + u:view(x.shape) * step
    d = (x + d):clamp(0, 1) - x
    return renorm_inf(d, eps)
  end)
end

--- LLR (local linearity regulariser, Qin et al.) as the reference runs it:
-- two ascent steps of eps / 2 on gamma in eval mode (each: the gradient
-- divided per sample by its l-inf norm, the [0, 1] box, then each sample's
-- l-inf norm brought to at most eps), then in train mode
-- CE_sum(f(x), y) + lambda * gamma(delta) + mu * (linear term).
-- lambda = 4, mu = 3 (Restricted ImageNet: 3 and 6, set by rl.experiment).
-- Quirk (default): m = 0, so gamma = |CE_sum(f(x + delta))| and no mu term
-- (see QUIRKS).  quirks = false: Qin et al.'s per-sample form with the true
-- m_i = grad_x l_i(x): gamma = sum_i |l_i(x + delta) - l_i(x) - m_i . delta_i|
-- and the linear term sum_i |m_i . delta_i|.
function methods.llr(model, x, y, o)
  o = checked('llr', model, x, y, o)
  local lambda, mu, eps = o.lambda, o.mu, o.eps
  local step = o.step_size or eps / 2
  local textbook = not o.quirks
  local B = x.shape[1]
  local m, l0 -- textbook: per-sample gradients and losses at x (constants)
  local function dots(d) return (m * d):view(B, -1):sum(2) end
  local function gamma_of(logits, d) -- gamma from the logits of f(x + d)
    if not textbook then return ce_sum(logits, y):abs() end
    return (F.cross_entropy(logits, y, 'none') - l0 - dots(d)):abs():sum()
  end
  local function gamma(d) return gamma_of(model(x + d), d) end
  local delta = model:with_mode('eval', function()
    if textbook then
      local xr = x:detach():requires_grad_()
      local l = F.cross_entropy(model(xr), y, 'none')
      m = rl.grad(l:sum(), xr)
      l0 = l:detach()
    end
    -- the inner ascent on the core, with the iterate delta = x' - x and
    -- the reference's own step (see llr_step)
    return attacks.run(model, x, {
      objective = function(logits, d) return gamma_of(logits, d) end, space = 'delta',
      rule = function(d, gd) return llr_step(x, d, gd, step, eps, o.generator) end,
      eps = eps, steps = o.steps, start = o.start or 'normal', sigma = 0.001, generator = o.generator,
    })
  end)
  model:train()
  local logits = model(x)
  local loss = ce_sum(logits, y) + gamma(delta) * lambda
  if textbook then loss = loss + dots(delta):abs():sum() * mu end
  return loss, logits, info_of(loss)
end

-- Each objective made public: a refusal (its own, a model's, an attack's
-- or an op's) is raised at the caller's line, led by the method's name
-- ("at: pgd: ..." rather than a line of methods.lua); a bug keeps its
-- message and position.
for _, name in ipairs { 'natural', 'at', 'rst', 'trades', 'gr', 'llr' } do
  local fn = methods[name]
  local wrapper = function(...)
    local res = table.pack(pcall(fn, ...))
    if res[1] then return table.unpack(res, 2, res.n) end
    local rest = options.refusal(res[2])
    if not rest then error(res[2], 0) end
    if rest:sub(1, #name + 2) ~= name .. ': ' then rest = name .. ': ' .. rest end
    error(rest, 2)
  end
  options.wrapped[wrapper] = fn -- rl.help reads fn's doc comment
  methods[name] = wrapper
end

--- The version of each objective's definition: raised when what it
-- computes changes, so a run id (rl.experiment) never names results of an
-- older definition.  2: RST's forward order, TRADES's second clean pass
-- and LLR's m = 0, as the reference (issue #10).
methods.versions = { natural = 1, at = 1, gr = 1, rst = 2, trades = 2, llr = 2 }

--- The named configurations of the paper's tables.
local configs = {
  natural = { 'natural', {} },
  at = { 'at', {} },
  ['rst.5'] = { 'rst', { lambda = 0.5 } },
  rst1 = { 'rst', { lambda = 1 } },
  rst2 = { 'rst', { lambda = 2 } },
  trades1 = { 'trades', { beta = 1 } },
  trades3 = { 'trades', { beta = 3 } },
  trades6 = { 'trades', { beta = 6 } },
  gr = { 'gr', {} },
  llr = { 'llr', {} },
  -- the bare names take their parameters from the options (lambda, beta)
  rst = { 'rst', {} },
  trades = { 'trades', {} },
}
methods.configs = configs

--- methods.register(name, fn, {version = N, base = {settings}}): a method
-- of your own, usable wherever the paper's are (exp.config{method = name},
-- the tables' rows).  fn(model, x, y, opts) -> loss, logits, as the
-- built-in objectives; opts holds eps, generator and the config's method
-- settings (beta, lambda, mu, h, quirks, steps, step_size) over `base`.
-- version (an integer >= 1, required) goes into every run id of the method:
-- raise it when you change what fn computes, so that runs of the old
-- definition are not taken for finished runs of the new one.
-- Registering a name again replaces it (with its new version).
function methods.register(name, fn, o)
  local function bad(fmt, ...) error(string.format('methods.register: ' .. fmt, ...), 2) end
  if type(name) ~= 'string' or not name:match('^[%w_.%-]+$') then
    bad('name must be a string of letters, digits, _ . -, got %s', tostring(name))
  end
  if type(fn) ~= 'function' then bad('%s: fn must be a function(model, x, y, opts), got a %s', name, type(fn)) end
  if type(o) ~= 'table' then bad("%s: options {version = N} are required (the version goes into run ids)", name) end
  for k in pairs(o) do
    if k ~= 'version' and k ~= 'base' then bad("%s: unknown option '%s'; options: version, base", name, tostring(k)) end
  end
  if math.type(o.version) ~= 'integer' or o.version < 1 then
    bad('%s: version must be an integer >= 1, got %s', name, tostring(o.version))
  end
  local builtin = configs[name] and not methods.registered[name]
  if builtin or (name ~= 'register' and methods[name] ~= nil and not methods.registered[name]) then
    bad("%s is one of rllua's own names; choose another", name)
  end
  methods.registered[name] = { fn = fn, version = o.version }
  methods[name] = fn
  configs[name] = { name, o.base or {} }
  methods.versions[name] = o.version
end
methods.registered = {}

--- methods.get('trades6') -> fn(model, x, y, opts) with the config's
-- settings merged under opts (opts win), and the config's method name.
function methods.get(name)
  local c = configs[name]
  if not c then
    local known = {}
    for k in pairs(configs) do known[#known + 1] = k end
    table.sort(known)
    error(string.format('methods.get: unknown method %q (known: %s)', tostring(name),
      table.concat(known, ', ')), 2)
  end
  local fn, base = methods[c[1]], c[2]
  return function(model, x, y, o)
    -- not a table: the method refuses it (a tail call: its refusal is
    -- raised at this function's caller)
    if type(o) ~= 'table' then
      if o == nil then o = {} else return fn(model, x, y, o) end
    end
    local merged = {}
    for k, v in pairs(base) do merged[k] = v end
    for k, v in pairs(o) do merged[k] = v end
    return fn(model, x, y, merged)
  end, c[1]
end

return methods
