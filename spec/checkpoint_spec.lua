-- checkpoint_spec.lua - rl.json and rl.checkpoint: a run resumed from a
-- checkpoint continues bit for bit as if it had never stopped.
local rl = require 'rl'
local json = rl.json
local check = require 'helpers.check'

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

  it('keeps inf, -inf and NaN in extra, and refuses what it could not give back', function()
    local path = os.tmpname()
    local m = rl.nn.Linear(2, 2)
    rl.checkpoint.save(path, { model = m, epoch = 1, extra = { best = math.huge, low = -math.huge, loss = 0 / 0,
      hist = { 1, 0 / 0, 3 }, n = 5 } })
    local e = rl.checkpoint.load(path, { model = m }).extra
    assert.are.equal(math.huge, e.best)
    assert.are.equal(-math.huge, e.low)
    assert.is_true(e.loss ~= e.loss)
    assert.are.equal(3, #e.hist)
    assert.is_true(e.hist[2] ~= e.hist[2])
    assert.are.equal('integer', math.type(e.n))
    for _, c in ipairs {
      { { model = m, epoch = 3.0 }, 'epoch must be an integer >= 0, got 3.0' },
      { { model = m, epoch = '3' }, "epoch must be an integer >= 0, got the string '3'" },
      { { model = m, extra = { [1.5] = 1 } }, 'extra has the key 1.5; keys are strings or integers' },
      { { model = m, extra = { ['#1'] = 1 } }, 'extra has the key "#1"' },
      { { model = m, extra = { f = print } }, 'extra.f is a function' },
    } do
      check.has(check.err_of(rl.checkpoint.save, path, c[1]), 'checkpoint.save: ' .. c[2])
    end
    -- an optimiser asked for that the file does not hold would go on fresh
    check.has(check.err_of(rl.checkpoint.load, path, { model = m, optimizer = rl.optim.SGD(m:parameters(), { lr = 1 }) }),
      'the file holds no optimizer state')
    os.remove(path)
  end)

  it('epoch() reads the saved epoch from the header alone', function()
    local path = os.tmpname()
    local m = rl.nn.Linear(2, 2)
    rl.checkpoint.save(path, { model = m, epoch = 7 })
    assert.are.equal(7, rl.checkpoint.epoch(path))
    rl.checkpoint.save(path, { model = m })
    assert.is_nil(rl.checkpoint.epoch(path))
    rl.save(path, { w = rl.zeros(2) }, { ['rllua.checkpoint'] = '{"epoch":-1}' })
    check.has(check.err_of(rl.checkpoint.epoch, path), 'the epoch is the integer -1; expected an integer >= 0')
    rl.save(path, { w = rl.zeros(2) })
    check.has(check.err_of(rl.checkpoint.epoch, path), 'checkpoint.epoch: ' .. path .. ' is not an rllua checkpoint')
    os.remove(path)
    check.has(check.err_of(rl.checkpoint.epoch, path), 'cannot open')
  end)

  -- they read "checkpoint.lua:197: load: '/x': cannot open ..."
  it("names itself and the caller's line when the file cannot be read or written", function()
    local m = rl.nn.Linear(2, 2)
    local dir = os.tmpname()
    os.remove(dir) -- a path that does not exist
    for _, c in ipairs {
      { function() local v = rl.checkpoint.epoch(dir) return v end, "checkpoint.epoch: '" .. dir .. "': cannot open" },
      { function() local v = rl.checkpoint.load(dir, { model = m }) return v end, "checkpoint.load: '" .. dir .. "': cannot open" },
      { function() local v = rl.checkpoint.save(dir .. '/x.ckpt', { model = m, epoch = 1 }) return v end,
        "checkpoint.save: '" .. dir .. "/x.ckpt': cannot create the temporary file" },
    } do
      local line = debug.getinfo(c[1], 'S').linedefined -- not a tail call: the line stays on the stack
      local ok, e = pcall(c[1])
      assert.is_false(ok)
      assert.truthy(tostring(e):find('checkpoint_spec.lua:' .. line .. ': ' .. c[2], 1, true), tostring(e))
    end
  end)

  it('refuses a file that is not a checkpoint', function()
    local path = os.tmpname()
    rl.save(path, { w = rl.zeros(2) })
    local ok, msg = pcall(rl.checkpoint.load, path, {})
    assert.is_false(ok)
    assert.truthy(msg:find('not an rllua checkpoint', 1, true))
    os.remove(path)
  end)

  -- issue #12: metadata that is a JSON array failed with "attempt to index
  -- a number value (local 'k')"; every malformed shape now says what is wrong
  it('says what is wrong with malformed metadata, naming the file', function()
    local path = os.tmpname()
    local cases = {
      { '[1,2,3]', 'the metadata "rllua.checkpoint" is a JSON array; expected a JSON object' },
      { '7', 'the metadata "rllua.checkpoint" is the integer 7; expected a JSON object' },
      { '{"epoch":', 'the metadata "rllua.checkpoint" is not JSON (json.decode:' },
      { '{"epoch":"two"}', 'the epoch is the string "two"; expected an integer >= 0' },
      { '{"epoch":-1}', 'the epoch is the integer -1; expected an integer >= 0' },
      { '{"epoch":1.5}', 'the epoch is the number 1.5; expected an integer >= 0' },
      { '{"rng":{"seed":1}}', 'the RNG state is a JSON object; expected {seed = integer, offset = integer}' },
      { '{"rng":[1,2]}', 'checkpoint.rng is a JSON array in the metadata; a checkpoint has an object there' },
      { '{"model":5}', 'the model state is the integer 5; expected an object' },
      { '{"optimizer":"x"}', 'the optimizer state is the string "x"; expected an object' },
      { '{"model":{"w":[1]}}', 'checkpoint.model.w is a JSON array in the metadata' },
      { '{"model":{"w":true}}', 'the model entry "w" is the boolean true; expected a tensor' },
      { '{"model":{"w":"\\u0001tensor:model.w"}}', 'checkpoint.model.w refers to a tensor "model.w" that the file does not hold' },
      { '{"model":{}}', 'cannot restore the model: load_state_dict: missing keys: weight, bias' },
      { '{}', 'the file holds no model' },
    }
    for _, c in ipairs(cases) do
      rl.save(path, { w = rl.zeros(2) }, { ['rllua.checkpoint'] = c[1] })
      local msg = check.err_of(rl.checkpoint.load, path, { model = rl.nn.Linear(2, 2) })
      check.has(msg, 'checkpoint.load: ' .. path .. ': ', c[2])
    end
    os.remove(path)
  end)
end)
