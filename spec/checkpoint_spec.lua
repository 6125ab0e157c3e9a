-- checkpoint_spec.lua - rl.json and rl.checkpoint: a run resumed from a
-- checkpoint continues bit for bit as if it had never stopped.
local rl = require 'rl'
local json = rl.json

describe('rl.json', function()
  it('round-trips values, keeps integers, sorts keys', function()
    local v = { a = { 1, 2, { b = true } }, c = 1.5, d = 'x\n"\\', e = -3, f = {} }
    local s = json.encode(v)
    assert.are.equal('{"a":[1,2,{"b":true}],"c":1.5,"d":"x\\n\\"\\\\","e":-3,"f":[]}', s)
    local back = json.decode(s)
    assert.are.same(v, back)
    assert.are.equal('integer', math.type(back.e))
    assert.are.equal(0.1, json.decode(json.encode(0.1)))
    assert.are.equal('null', json.encode(0 / 0))
    assert.are.equal('é😀', json.decode('"\\u00e9\\ud83d\\ude00"'))
  end)

  it('reports malformed input with the byte offset', function()
    for _, bad in ipairs { '{"a":}', '[1,2', '{"a" 1}', '"\\x"', '[1] x' } do
      local ok, msg = pcall(json.decode, bad)
      assert.is_false(ok)
      assert.truthy(msg:find('at byte %d+'), msg)
    end
  end)
end)

describe('rl.checkpoint', function()
  it('resumes model, optimiser, scheduler and RNG exactly', function()
    local path = os.tmpname()
    local x, y = rl.rand(4, 1, 28, 28), rl.randint(0, 10, 4)
    local function make()
      rl.manual_seed(1)
      local m = rl.models.CNN001()
      local opt = rl.optim.SGD(m:parameters(), { lr = 0.1, momentum = 0.9 })
      return m, opt, rl.optim.MultiStepLR(opt, { milestones = { 1, 2 } })
    end
    local function step(m, opt)
      opt:zero_grad()
      rl.F.cross_entropy(m(x), y, 'sum'):backward() -- dropout draws from the RNG
      opt:step()
    end
    local m, opt, sch = make()
    step(m, opt)
    sch:step()
    rl.checkpoint.save(path, { model = m, optimizer = opt, scheduler = sch, epoch = 1, extra = { best = 0.25 } })
    step(m, opt)
    local want = m:state_dict()
    local m2, opt2, sch2 = make()
    rl.manual_seed(99) -- a different stream until the checkpoint restores it
    local info = rl.checkpoint.load(path, { model = m2, optimizer = opt2, scheduler = sch2, restore_rng = true })
    assert.are.equal(1, info.epoch)
    assert.are.equal(0.25, info.extra.best)
    assert.are.same(sch:get_last_lr(), sch2:get_last_lr())
    step(m2, opt2)
    local got, order = m2:state_dict()
    for _, k in ipairs(order) do assert.are.same(want[k]:tolist(), got[k]:tolist(), k) end
    os.remove(path)
  end)

  it('refuses a file that is not a checkpoint', function()
    local path = os.tmpname()
    rl.save(path, { w = rl.zeros(2) })
    local ok, msg = pcall(rl.checkpoint.load, path, {})
    assert.is_false(ok)
    assert.truthy(msg:find('not an rllua checkpoint', 1, true))
    os.remove(path)
  end)
end)
