--- rl.autoattack.square: the Square attack (Andriushchenko, Croce,
-- Flammarion & Hein 2020, "Square Attack: a query-efficient black-box
-- adversarial attack via random search"), l-inf and l2, as AutoAttack
-- runs it (fra31/auto-attack's square.py).
--
--   adv, robust = square.attack(model, x, y, {eps, norm = 'linf' | 'l2',
--       queries = 5000, p_init = 0.8, restarts = 1, loss = 'margin' | 'ce',
--       generator, mode})
--
-- x is an image batch [B, C, H, W] in [0, 1].  Only model outputs are used
-- (no gradient).  Start: l-inf, vertical stripes of +-eps (one sign per
-- column and channel); l2, a grid of 5 x 5 tiles of the "meta" pattern of
-- nested squares with random signs, scaled to norm eps.  Each query then
-- redraws one random s x s window (its side from the p-schedule,
-- square.p_selection) -- l-inf: +-2 eps per channel, projected back to the
-- ball and box; l2: a new pattern in the window that keeps the norm at eps
-- while moving mass from a second window -- and keeps it per sample when the
-- loss drops or the sample becomes misclassified.  A sample leaves the
-- working batch as soon as it is misclassified.  As the reference does, one
-- window (and, for l-inf, one sign per channel) is shared by the whole
-- batch at each query.  Returns the adversarial batch and robust, a u8 [B]:
-- 1 where model(adv) still gives y.
local rl = require 'rl.base'
local options = require 'rl.options'
local common = require 'rl.autoattack.common'
local F = rl.F

local square = {}

--- square.p_selection(it, queries, p_init) -> the fraction of the image a
-- window covers at iteration it (0-based): p_init, halved after 10, 50,
-- 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10000 iterations, that
-- schedule scaled to the query budget.
local CUTS = { 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 }
function square.p_selection(it, queries, p_init)
  local i = math.floor(it / queries * 10000)
  local p = p_init
  for _, cut in ipairs(CUTS) do
    if i > cut then p = p / 2 end
  end
  return p
end

-- Python's round (half to even), which sizes the reference's windows.
local function round_even(v)
  local f = math.floor(v)
  local r = v - f
  if r > 0.5 or (r == 0.5 and f % 2 == 1) then f = f + 1 end
  return math.tointeger(f)
end
square.round_even = round_even

--- square.window_side(p, h, w, norm) -> the side s of the window for a
-- fraction p of an h x w image (at least 1; l2: at least 3 and odd).
function square.window_side(p, h, w, norm)
  local s = round_even(math.sqrt(p * h * w))
  if norm == 'l2' then
    s = math.max(s, 3)
    if s % 2 == 0 then s = s + 1 end
  end
  return math.min(math.max(s, 1), h, w)
end

---------------------------------------------------------------------------
-- l2 patterns
---------------------------------------------------------------------------

-- The nested-squares block of fra31's eta_rectangles: rows x cols, each
-- ring k (from the centre) adding 1 / (k + 1)^2, scaled to unit l2 norm.
local function rectangles(rows, cols)
  local d = {}
  for i = 1, rows do
    d[i] = {}
    for j = 1, cols do d[i][j] = 0 end
  end
  local r0, c0 = rows // 2, cols // 2
  for k = 0, math.max(rows // 2 + 1, cols // 2 + 1) - 1 do
    for i = math.max(r0, 0), math.min(r0 + 2 * k + 1, rows) - 1 do
      for j = math.max(c0, 0), math.min(c0 + 2 * k + 1, cols) - 1 do
        d[i + 1][j + 1] = d[i + 1][j + 1] + 1 / (k + 1) ^ 2
      end
    end
    r0, c0 = r0 - 1, c0 - 1
  end
  local n = 0
  for i = 1, rows do for j = 1, cols do n = n + d[i][j] ^ 2 end end
  n = math.sqrt(n)
  for i = 1, rows do for j = 1, cols do d[i][j] = d[i][j] / n end end
  return d
end

--- square.pattern(s) -> s x s list of lists: the meta pattern (fra31's eta
-- before its random transpose): the top half one block of nested squares,
-- the bottom half another with the opposite sign, unit l2 norm.
function square.pattern(s)
  local top, bottom = rectangles(s // 2, s), rectangles(s - s // 2, s)
  local d, n = {}, 0
  for i = 1, s // 2 do d[#d + 1] = top[i] end
  for i = 1, s - s // 2 do
    local row = {}
    for j = 1, s do row[j] = -bottom[i][j] end
    d[#d + 1] = row
  end
  for i = 1, s do for j = 1, s do n = n + d[i][j] ^ 2 end end
  n = math.sqrt(n)
  for i = 1, s do for j = 1, s do d[i][j] = d[i][j] / n end end
  return d
end

-- The pattern as a tensor, transposed when coin > 0.5 (the reference draws
-- that coin at each use).
local function eta(cache, s, coin, x)
  local key = s .. ':' .. x.dtype .. ':' .. x.device
  local t = cache[key]
  if not t then
    t = rl.tensor(square.pattern(s), { dtype = x.dtype, device = x.device })
    cache[key] = t
  end
  if coin > 0.5 then return t:t():contiguous() end
  return t
end

---------------------------------------------------------------------------
-- The attack
---------------------------------------------------------------------------

local ROWS = {
  { 'eps',      'number',  options.REQUIRED, '>= 0' },
  { 'queries',  'integer', 5000,             '>= 0' },
  { 'p_init',   'number',  0.8,              '(0, 1]' },
  { 'restarts', 'integer', 1,                '>= 1' },
  { 'loss',     'string',  'margin',         { 'margin', 'ce' } },
  { 'mode',     'string',  nil,              { 'train', 'eval' } },
  -- and norm ('linf') and generator, read by common.options
}

-- margin (> 0 while y wins) and the loss the search lowers, per sample.
local function margin_and_loss(model, x, y, loss)
  local z = model(x)
  local m = common.margin(z, y)
  if loss == 'margin' then return m, m end
  return m, -F.cross_entropy(z, y, 'none')
end

local function signs(shape, x, g)
  return rl.rand(shape, { dtype = x.dtype, device = x.device, generator = g }):ge(0.5)
      :to(x.dtype) * 2 - 1
end

-- A u8 [1, 1, h, w] mask of the window at 0-based (r, c), side s.
local function window_mask(x, r, c, s)
  local h, w = x.shape[3], x.shape[4]
  local rows = rl.arange(h, { dtype = 'i64', device = x.device })
  local cols = rl.arange(w, { dtype = 'i64', device = x.device })
  local in_r = rows:ge(r):logical_and(rows:lt(r + s)):view(h, 1)
  local in_c = cols:ge(c):logical_and(cols:lt(c + s)):view(1, w)
  return in_r:logical_and(in_c):view(1, 1, h, w)
end

local function window(t, r, c, s) return t:narrow(3, r + 1, s):narrow(4, c + 1, s) end

-- Per-sample l2 norm, shaped [n, 1, 1, 1].
local function l2(d) return d:reshape(d.shape[1], -1):norm(2, 2):view(d.shape[1], 1, 1, 1) end

-- The starting points.
local function start(x, o, cache)
  local B, C, h, w = table.unpack(x.shape)
  if o.norm == 'linf' then
    return (x + signs({ B, C, 1, w }, x, o.generator) * o.eps):clamp(0, 1)
  end
  local delta = rl.zeros_like(x)
  local s = h // 5
  if s == 0 then return x:clone() end
  local sp = (h - s * 5) // 2
  local r = sp
  for _ = 1, h // s do
    local c = sp
    for _ = 1, w // s do
      if r + s <= h and c + s <= w then
        local coin = rl.rand({ 1 }, { generator = o.generator }):item()
        local tile = eta(cache, s, coin, x):view(1, 1, s, s) * signs({ B, C, 1, 1 }, x, o.generator)
        local win = window(delta, r, c, s)
        win:copy_(win + tile)
      end
      c = c + s
    end
    r = r + s
  end
  return (x + delta / (l2(delta) + 1e-12) * o.eps):clamp(0, 1)
end

-- One proposal per working sample at iteration it.
local function propose(xw, best, o, it, u, cache)
  local n, C, h, w = table.unpack(xw.shape)
  local p = square.p_selection(it, o.queries, o.p_init)
  local s = square.window_side(p, h, w, o.norm)
  local r, c = math.floor(u[1] * (h - s)), math.floor(u[2] * (w - s))
  if o.norm == 'linf' then
    local step = signs({ C, 1, 1 }, xw, o.generator) * (2 * o.eps)
    local new = best + window_mask(xw, r, c, s):to(xw.dtype) * step
    return new:minimum(xw + o.eps):maximum(xw - o.eps):clamp(0, 1)
  end
  local delta = best - xw
  local r2, c2 = math.floor(u[3] * (h - s)), math.floor(u[4] * (w - s))
  local old = window(delta, r, c, s)
  local old_n = old:square():sum({ 3, 4 }, true):sqrt()
  local image_n = l2(delta)
  local both = window_mask(xw, r, c, s):logical_or(window_mask(xw, r2, c2, s))
  local windows_n = l2(rl.where(both, delta, 0))
  local new = eta(cache, s, u[5], xw):view(1, 1, s, s) * signs({ n, C, 1, 1 }, xw, o.generator)
  new = new + old / (old_n + 1e-12)
  local room = ((image_n:square() * -1 + o.eps ^ 2):clamp(0) / C + windows_n:square()):sqrt()
  new = new / (new:square():sum({ 3, 4 }, true):sqrt() + 1e-12) * room
  window(delta, r2, c2, s):zero_()
  window(delta, r, c, s):copy_(new)
  return (xw + delta / (l2(delta) + 1e-12) * o.eps):clamp(0, 1)
end

-- One run on clean points x (all classified y): the best point per sample.
local function single_run(model, x, y, o, cache)
  local n = x.shape[1]
  local best = start(x, o, cache)
  local margin, loss = margin_and_loss(model, best, y, o.loss)
  local ids = rl.arange(n, { dtype = 'i64', device = x.device })
  local done_ids, done_rows = {}, {}
  -- the working batch: samples whose margin is still positive
  local xw, yw, bw, mw, lw, iw = x, y, best, margin, loss, ids
  local U = o.queries > 0 and rl.rand({ o.queries, 5 }, { dtype = 'f64', generator = o.generator }):tolist()
  for it = 0, o.queries - 1 do
    local fin = mw:le(0)
    if fin:any():item() ~= 0 then
      local keep, gone = common.where_true(fin:logical_not()), common.where_true(fin)
      done_ids[#done_ids + 1], done_rows[#done_rows + 1] = iw:index_select(1, gone), bw:index_select(1, gone)
      xw, yw, bw = xw:index_select(1, keep), yw:index_select(1, keep), bw:index_select(1, keep)
      mw, lw, iw = mw:index_select(1, keep), lw:index_select(1, keep), iw:index_select(1, keep)
    end
    if xw.shape[1] == 0 then break end
    local new = propose(xw, bw, o, it, U[it + 1], cache)
    local m, l = margin_and_loss(model, new, yw, o.loss)
    local lower = l:lt(lw)
    lw = rl.where(lower, l, lw)
    local take = lower:logical_or(m:le(0))
    mw = rl.where(take, m, mw)
    bw = rl.where(take:view(-1, 1, 1, 1), new, bw)
  end
  done_ids[#done_ids + 1], done_rows[#done_rows + 1] = iw, bw
  return common.put_rows(best, rl.cat(done_ids, 1), rl.cat(done_rows, 1))
end

local function attack(model, x, y, opts)
  local o = common.options('square', opts, ROWS)
  common.check_batch('square', x, y, 4)
  if x.ndim ~= 4 then
    error(string.format('square: x must be an image batch [B, C, H, W], got %s', options.shape_of(x)), 0)
  end
  local cache = {}
  return model:with_mode(o.mode, function()
    return rl.no_grad(function()
      local robust = model(x):argmax(2):eq(y)
      local adv = x
      for _ = 1, o.restarts do
        local idx = common.where_true(robust)
        if idx.shape[1] == 0 then break end
        local ys = y:index_select(1, idx)
        local cand = single_run(model, x:index_select(1, idx), ys, o, cache)
        adv, robust = common.record_broken(adv, robust, idx, cand, model(cand):argmax(2):ne(ys))
      end
      return adv, robust
    end)
  end)
end

square.attack = options.public(attack)

return square
