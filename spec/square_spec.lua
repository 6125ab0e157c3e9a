-- The Square attack (rl.autoattack.square): its p-schedule against the
-- reference's table, its windows and l2 pattern, that every query stays in
-- the eps-ball and the box, that a sample stops being queried once it is
-- misclassified, and that it breaks a naturally trained model.
local rl = require 'rl'
local square = require 'rl.autoattack.square'
local check = require 'helpers.check'
local tiny_trained = require 'helpers.tiny_mlp'
local nn = rl.nn


-- The model, with every batch it is asked about kept.
local Recorder = nn.class('Recorder', nn.Module)
function Recorder:__init(inner)
  nn.Module.__init(self)
  self:add_module('inner', inner)
  self.seen = {}
end
function Recorder:forward(x)
  self.seen[#self.seen + 1] = x:clone()
  return self.inner(x)
end

describe('square.p_selection', function()
  it("follows the reference's table over 10000 iterations", function()
    -- the last iteration of each stage and the first of the next
    local p = 0.8
    local stages = { { 10, 1 }, { 50, 2 }, { 200, 4 }, { 500, 8 }, { 1000, 16 }, { 2000, 32 }, { 4000, 64 },
      { 6000, 128 }, { 8000, 256 } }
    assert.are.equal(p, square.p_selection(0, 10000, p))
    for _, s in ipairs(stages) do
      assert.are.equal(p / s[2], square.p_selection(s[1], 10000, p), 'at ' .. s[1])
      assert.are.equal(p / s[2] / 2, square.p_selection(s[1] + 1, 10000, p), 'at ' .. s[1] + 1)
    end
    assert.are.equal(p / 512, square.p_selection(9999, 10000, p))
  end)

  it('is scaled to the query budget', function()
    -- 5000 queries: iteration i stands for 2 i of 10000 (floored)
    assert.are.equal(0.8, square.p_selection(5, 5000, 0.8))
    assert.are.equal(0.4, square.p_selection(6, 5000, 0.8))
    assert.are.equal(0.4, square.p_selection(25, 5000, 0.8))
    assert.are.equal(0.2, square.p_selection(26, 5000, 0.8))
    assert.are.equal(0.8 / 512, square.p_selection(4001, 5000, 0.8))
    -- 1000 queries: iteration 1 is 10 of 10000, iteration 2 is 20
    assert.are.equal(0.5, square.p_selection(1, 1000, 0.5))
    assert.are.equal(0.25, square.p_selection(2, 1000, 0.5))
  end)

  it("sizes windows as the reference does (Python's round, l2 odd and >= 3)", function()
    assert.are.equal(2, square.round_even(2.5))
    assert.are.equal(4, square.round_even(3.5))
    assert.are.equal(3, square.round_even(3.49))
    assert.are.equal(25, square.window_side(0.8, 28, 28, 'linf')) -- sqrt(627.2) = 25.04
    assert.are.equal(1, square.window_side(0.8 / 512, 28, 28, 'linf'))
    assert.are.equal(3, square.window_side(0.8 / 512, 28, 28, 'l2'))
    assert.are.equal(7, square.window_side(0.05, 28, 28, 'l2')) -- round(6.26) = 6, made odd
  end)

  it('the l2 pattern has unit norm, a positive top half and a negative bottom half', function()
    for _, s in ipairs { 3, 5, 6, 11 } do
      local d = square.pattern(s)
      local n = 0
      for i = 1, s do
        for j = 1, s do
          n = n + d[i][j] ^ 2
          if i <= s // 2 then assert.is_true(d[i][j] > 0) else assert.is_true(d[i][j] < 0) end
        end
      end
      assert.is_true(math.abs(n - 1) < 1e-12)
    end
    -- its rings: the centre of a block weighs most (1 + 1/4 + 1/9 ...)
    local d = square.pattern(5)
    assert.is_true(d[4][3] < d[4][1] and d[4][3] < d[5][3])
  end)
end)

describe('square.attack', function()
  for _, norm in ipairs { 'linf', 'l2' } do
    it(norm .. ': every query lies in the eps-ball of its image and in the box', function()
      local m, x, y = tiny_trained()
      local eps = norm == 'linf' and 0.15 or 1.2
      local rec = Recorder(m)
      square.attack(rec, x, y, { eps = eps, norm = norm, queries = 150, generator = rl.Generator(1) })
      local X = x:reshape(100, -1)
      local queried = 0
      for _, q in ipairs(rec.seen) do
        local Q = q:reshape(q.shape[1], -1)
        assert.is_true(Q:min():item() >= 0 and Q:max():item() <= 1, 'a query left the box')
        -- each queried row is near exactly one image (the images are far apart)
        for i = 1, Q.shape[1] do
          local d = X - Q:narrow(1, i, 1)
          local r = norm == 'linf' and d:abs():max(2) or d:norm(2, 2)
          assert(r:min():item() <= eps * (1 + 1e-6), 'a query outside the eps-ball: ' .. r:min():item())
        end
        queried = queried + Q.shape[1]
      end
      assert.is_true(#rec.seen > 100 and queried > 1000)
    end)
  end

  it('breaks a naturally trained model (l-inf and l2)', function()
    local m, x, y = tiny_trained()
    assert.is_true(m(x):argmax(2):eq(y):double():mean():item() > 0.95)
    for _, norm in ipairs { 'linf', 'l2' } do
      local eps = norm == 'linf' and 0.3 or 3
      local adv, robust = square.attack(m, x, y, { eps = eps, norm = norm, queries = 500,
        generator = rl.Generator(2) })
      local r = robust:double():mean():item()
      assert(r < 0.4, norm .. ': robust accuracy ' .. r)
      assert.are.same(m(adv):argmax(2):eq(y):tolist(), robust:tolist())
      local d = (adv - x):reshape(100, -1)
      local dist = norm == 'linf' and d:abs():max(2) or d:norm(2, 2)
      assert.is_true(dist:max():item() <= eps * (1 + 1e-6))
    end
  end)

  it('stops querying a sample once it is misclassified', function()
    local m, x, y = tiny_trained()
    local rec = Recorder(m)
    local _, robust = square.attack(rec, x, y, { eps = 0.3, queries = 200, generator = rl.Generator(3) })
    -- calls: 1 clean, 2 start, 3..k the search, the last one the final check
    local X = x:reshape(100, -1)
    local first_wrong, after = {}, {}
    for c = 2, #rec.seen - 1 do
      local q = rec.seen[c]
      local wrong = m(q):argmax(2)
      local Q = q:reshape(q.shape[1], -1)
      for i = 1, Q.shape[1] do
        local d = (X - Q:narrow(1, i, 1)):abs():max(2)
        local k = d:argmin():item() + 1
        if first_wrong[k] then after[k] = (after[k] or 0) + 1 end
        if not first_wrong[k] and wrong[i]:item() ~= y[k]:item() then first_wrong[k] = c end
      end
    end
    local broken = 0
    for k = 1, 100 do
      if first_wrong[k] then
        broken = broken + 1
        assert(not after[k], string.format('sample %d was queried %d times after it broke', k, after[k] or 0))
        assert.are.equal(0, robust[k]:item())
      end
    end
    assert.is_true(broken > 30)
  end)

  it('with the cross-entropy loss too; a generator repeats a run', function()
    local m, x, y = tiny_trained()
    local a1, r1 = square.attack(m, x, y, { eps = 0.3, loss = 'ce', queries = 300, generator = rl.Generator(7) })
    local a2, r2 = square.attack(m, x, y, { eps = 0.3, loss = 'ce', queries = 300, generator = rl.Generator(7) })
    assert.are.same(a1:tolist(), a2:tolist())
    assert.are.same(r1:tolist(), r2:tolist())
    assert.is_true(r1:double():mean():item() < 0.4)
  end)

  it("restores the model's mode, also when the model raises", function()
    local m, x, y = tiny_trained()
    m:train()
    local calls = 0
    local inner = m.forward
    m.forward = function(self, v)
      calls = calls + 1
      if calls == 5 then error('boom') end
      return inner(self, v)
    end
    local ok, e = pcall(square.attack, m, x, y, { eps = 0.1, mode = 'eval', queries = 10 })
    assert.is_false(ok)
    check.has(tostring(e), 'boom')
    assert.is_true(m.training and m:get(2).training)
  end)

  it('bad input gets an error naming it', function()
    local m, x, y = tiny_trained()
    check.has(check.err_of(square.attack, m, x, y, { norm = 'linf' }), 'square: the option eps is required')
    check.has(check.err_of(square.attack, m, x, y, { eps = 0.1, querys = 10 }), "unknown option 'querys'",
      "did you mean 'queries'")
    check.has(check.err_of(square.attack, m, x, y, { eps = 0.1, loss = 'dlr' }), "loss must be one of")
    check.has(check.err_of(square.attack, m, x, y, { eps = 0.1, p_init = 0 }), 'p_init must be in (0, 1]')
    check.has(check.err_of(square.attack, m, x:view(100, 64), y, { eps = 0.1 }), 'square: x must be')
    check.has(check.err_of(square.attack, m, x, y:double(), { eps = 0.1 }), 'y must be i64 labels')
  end)
end)
