--- rl.autoattack.common: what FAB and Square share: the option check, per-sample norms and margins, and row bookkeeping for
-- attacks that drop finished samples from their working batch.
local rl = require 'rl.base'
local options = require 'rl.options'
local attacks = require 'rl.attacks'

local common = {}

--- common.options(who, opts, rows) -> the checked options (options.check),
-- with opts.norm ('linf', the default, or 'l2'; see rl.options' norm kind)
-- and opts.generator (an rl.Generator) besides the rows.
function common.options(who, opts, rows)
  local all = { { 'norm', 'norm', 'linf' }, { 'generator', 'generator' } }
  for _, row in ipairs(rows) do all[#all + 1] = row end
  return options.check(who, opts, all)
end

--- common.check_batch(who, x, y): x a float batch [B, ...] in the box, y
-- its i64 labels [B].
function common.check_batch(who, x, y, min_dims)
  if not rl.is_tensor(x) or x.ndim < (min_dims or 2) or (x.dtype ~= 'f32' and x.dtype ~= 'f64') then
    error(string.format('%s: x must be a float batch tensor of %s dims or more, got %s', who,
      min_dims or 2, options.what(x)), 0)
  end
  if not rl.is_tensor(y) or y.dtype ~= 'i64' or y.ndim ~= 1 or y.shape[1] ~= x.shape[1] then
    error(string.format('%s: y must be i64 labels [%d], got %s', who, x.shape[1],
      rl.is_tensor(y) and (y.dtype .. ' ' .. options.shape_of(y)) or options.what(y)), 0)
  end
  options.in_box(who, x, 0, 1, true) -- AutoAttack's box is [0, 1]
end

--- The shape {B, 1, 1, ...} that broadcasts a per-sample [B] over x
-- (rl.attacks', shared).
common.per_sample = attacks.per_sample

--- The norm of each sample of d [B, ...]: a [B] tensor.
function common.norms(d, norm)
  local r = d:reshape(d.shape[1], -1)
  if norm == 'linf' then return r:abs():max(2) end
  return r:norm(2, 2)
end

--- Indices (i64) of the true entries of a u8 mask [B].
function common.where_true(mask)
  return rl.arange(mask.shape[1], { dtype = 'i64', device = mask.device }):masked_select(mask)
end

--- dst with its rows idx (i64 [n]) replaced by src [n, ...] (dst is not
-- changed).  There is no index_copy, so a scatter into zeros and a select.
function common.put_rows(dst, idx, src)
  local n, B = idx.shape[1], dst.shape[1]
  if n == 0 then return dst end
  local D = dst:reshape(B, -1)
  local s = src:reshape(n, -1)
  local into = rl.zeros_like(D):scatter_add(1, idx:view(n, 1):expand(n, D.shape[2]), s)
  local hit = rl.zeros({ B }, { dtype = 'f32', device = dst.device })
    :scatter_add(1, idx, rl.ones({ n }, { dtype = 'f32', device = dst.device })):gt(0)
  return rl.where(hit:view(B, 1), into, D):view(dst.shape)
end

--- u8 mask [B] with ones at idx (i64 [n]).
function common.mask_of(idx, B, device)
  local m = rl.zeros({ B }, { dtype = 'f32', device = device })
  if idx.shape[1] == 0 then return m:gt(0) end
  return m:scatter_add(1, idx, rl.ones({ idx.shape[1] }, { dtype = 'f32', device = device })):gt(0)
end

--- Record a run over the rows idx of the batch: where the u8 mask `broke`
-- (over the run's rows) is set, adv takes the run's candidate rows and
-- robust is cleared.  Returns adv, robust (new tensors when any broke).
function common.record_broken(adv, robust, idx, cand, broke)
  local hit = common.where_true(broke)
  if hit.shape[1] == 0 then return adv, robust end
  local at = idx:index_select(1, hit)
  adv = common.put_rows(adv, at, cand:index_select(1, hit))
  robust = robust:logical_and(common.mask_of(at, adv.shape[1], adv.device):logical_not())
  return adv, robust
end

--- The k-th highest logit's class of each row of logits [B, K], k = 1..K,
-- for every k at once: a list of i64 [B] tensors (ties go to the lower
-- class, as repeated argmax finds them).
function common.class_ranks(logits)
  local K = logits.shape[2]
  local l = logits:clone()
  local cols = rl.arange(K, { dtype = 'i64', device = logits.device }):view(1, K)
  local ranks = {}
  for k = 1, K do
    local i = l:argmax(2)
    ranks[k] = i
    l = l:masked_fill(cols:eq(i:view(-1, 1)), -math.huge)
  end
  return ranks
end

--- The margin logit_y - max_{j ~= y} logit_j of each row: [B].
function common.margin(logits, y)
  local K = logits.shape[2]
  local own = logits:gather(2, y:view(-1, 1)):view(-1)
  local onehot = rl.arange(K, { dtype = 'i64', device = logits.device }):view(1, K):eq(y:view(-1, 1))
  return own - logits:masked_fill(onehot, -math.huge):max(2)
end

return common
