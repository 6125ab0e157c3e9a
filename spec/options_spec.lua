-- options_spec.lua - rl.options: the one checker of options tables, and its words.
local rl = require 'rl'
local options = require 'rl.options'
local check = require 'helpers.check'

local REQUIRED = options.REQUIRED

-- The message of options.check(who, opts, rows).
local function err(opts, rows) return check.err_of(options.check, 'f', opts, rows) end

describe('options.check', function()
  local ROWS = {
    -- name          kind        default           range
    { 'lr',           'number',   REQUIRED,         '>= 0' },
    { 'betas',        'pair',     { 0.9, 0.999 },   '[0, 1)' },
    { 'steps',        'integer',  10,               '(0, 100]' },
    { 'norm',         'string',   'linf',           { 'linf', 'l2' } },
    { 'milestones',   'integers', {} },
    { 'on',           'boolean',  false },
    { 'seed',         'integer' },
    { 'x',            'tensor' },
    check = function(o) return o.on and o.steps > 50 and 'on needs steps <= 50' or nil end,
  }

  it('fills defaults, copies lists, and makes integral numbers integers', function()
    local given = { lr = 0.1, milestones = { 3.0, 1 } }
    local o = options.check('f', given, ROWS)
    assert.are.same({ lr = 0.1, betas = { 0.9, 0.999 }, steps = 10, norm = 'linf',
      milestones = { 3, 1 }, on = false }, o)
    assert.are.equal('integer', math.type(o.milestones[1]))
    assert.are_not.equal(given.milestones, o.milestones)
    assert.are_not.equal(ROWS[2][3], o.betas) -- a default is copied too
    local t = rl.zeros(2)
    assert.are.equal(t, options.check('f', { lr = 0, x = t }, ROWS).x) -- tensors are shared
  end)

  it('names what is wrong', function()
    -- { options, the message }
    local cases = {
      { { lr = 1, lerning = 1 }, "f: unknown option 'lerning'; options: lr, betas, steps" },
      { { lr = 1, stepz = 1 }, "unknown option 'stepz' (did you mean 'steps'?)" },
      { { lr = 1, learning_rate = 1 }, "unknown option 'learning_rate' (did you mean 'lr'?)" },
      { { lr = 1, fused = true }, "f: option 'fused' selects among PyTorch's implementations" },
      { { lr = 1, [1] = 2 }, 'f: options must be named (got a key of type number)' },
      { 3, 'f: options must be a table, got 3' },
      { {}, 'f: the option lr is required' },
      { { lr = '1' }, "f: lr must be a number, got the string '1'" },
      { { lr = -1 }, 'f: lr must be >= 0, got -1' },
      { { lr = 0 / 0 }, 'f: lr must be >= 0, got' },
      { { lr = 1, betas = { 0.9 } }, 'f: betas must be a list of two numbers, e.g. {0.9, 0.999}, got {0.9}' },
      { { lr = 1, betas = { 0.9, 1 } }, 'f: betas[2] must be in [0, 1), got 1' },
      { { lr = 1, steps = 0 }, 'f: steps must be in (0, 100], got 0' },
      { { lr = 1, steps = 2.5 }, 'f: steps must be an integer, got 2.5' },
      { { lr = 1, norm = 'l3' }, "f: norm must be one of 'linf', 'l2', got the string 'l3' (did you mean 'l2'?)" },
      { { lr = 1, milestones = { 1, 'a' } }, "f: milestones[2] must be an integer, got the string 'a'" },
      { { lr = 1, milestones = { 1, x = 2 } }, 'f: milestones must be a list of integers' },
      { { lr = 1, on = 1 }, 'f: on must be true or false, got 1' },
      { { lr = 1, x = { 1 } }, 'f: x must be a tensor, got {1}' },
      { { lr = 1, on = true, steps = 60 }, 'f: on needs steps <= 50' },
    }
    for _, c in ipairs(cases) do check.has(err(c[1], ROWS), c[2]) end
  end)

  it('checks one value, takes a range function, and names keys with rows.noun', function()
    assert.are.equal(3, options.value('g', 'n', 3.0, 'integer', '>= 1'))
    check.has(check.err_of(options.value, 'g', 'n', 0, 'integer', '>= 1'), 'g: n must be >= 1, got 0')
    local even = function(v) return v % 2 ~= 0 and 'even' or nil end
    check.has(check.err_of(options.value, 'g', 'n', 3, 'number', even), 'g: n must be even, got 3')
    local rows = { noun = 'field', { 'a', 'number', REQUIRED } }
    check.has(err({ bbb = 1 }, rows), "f: unknown field 'bbb'; fields: a")
    check.has(err({}, rows), 'f: the field a is required')
    check.has(check.err_of(options.value, 'g', 'n', 1, 'numbr'), "options: unknown kind 'numbr'")
    check.has(err({ lr = 1 }, { { 'lr', 'number', nil, '>> 0' } }), "the range '>> 0'")
  end)
end)

describe('rl.options words', function()
  it('suggest, what, full and public', function()
    assert.are.equal('momentum', options.suggest('momentun', { 'lr', 'momentum' }))
    assert.is_nil(options.suggest('zzz', { 'lr', 'momentum' }))
    -- a name inside another is a near miss, a short one only as a whole word
    assert.are.equal('eps', options.suggest('epsilon', { 'lr', 'eps' }))
    assert.are.equal('lr', options.suggest('lr_rate', { 'lr', 'momentum' }))
    assert.are.equal('steps', options.suggest('stpes', { 'p', 'steps', 'eps' }))
    assert.is_nil(options.suggest('stop', { 'p' }))
    assert.are.equal("the string 'a'", options.what('a'))
    assert.are.equal('{0.10000000000000001, "x"}', options.full({ 0.1, 'x' }))
    local f = options.public(function() error('f: bad', 0) end)
    check.has(check.err_of(function() f() end), 'options_spec.lua', 'f: bad') -- at the caller's line
  end)

  it('reraise: a refusal at the caller, a bug where it was, a quoted position kept', function()
    local function at(err)
      local ok, msg = pcall(function() options.reraise(err, 1) end)
      assert.is_false(ok)
      return msg
    end
    -- a refusal raised inside rllua (a position in a .lua file) or at level 0
    assert.truthy(at('/x/lua/rl/nn.lua:28: CNN001: unknown option'):find('options_spec.lua:%d+: CNN001: unknown option$'))
    assert.truthy(at('f: bad'):find('options_spec.lua:%d+: f: bad$'))
    assert.truthy(at("/x/a.lua:3: bad argument #1 to 'to'"):find("options_spec.lua:%d+: bad argument #1 to 'to'$"))
    -- a bug keeps its own position
    assert.are.equal('/x/a.lua:3: attempt to index a nil value', at('/x/a.lua:3: attempt to index a nil value'))
    -- a message that quotes a position further on keeps its own start
    local quoted = 'autoattack: state file s is not readable (/x/checkpoint.lua:9: load: bad); remove it'
    assert.truthy(at(quoted):find('options_spec.lua:%d+: ' .. quoted:gsub('%p', '%%%0') .. '$'))
  end)
end)

describe('cli.parse', function()
  local cli = require 'rl.cli'
  local spec = { usage = 'usage: x [options]', options = { out = 'string', only = 'string', n = 'integer',
    p = 'flag', list = 'optional' } }

  -- "--only --out X" took --out as the value of --only, and the error
  -- came later, about X
  it('refuses an option as the value of another; --name=VALUE takes it', function()
    for _, c in ipairs {
      { { '--only', '--out', '/tmp/x' }, 'option --only needs a value, got the option --out' },
      { { '--out', '--p' }, 'option --out needs a value, got the option --p' },
      { { '--n', '--p' }, 'option --n needs a value, got the option --p' },
      { { '--out' }, 'option --out needs a value\nusage: x [options]' },
    } do
      local ok, e = pcall(cli.parse, c[1], spec)
      assert.is_false(ok)
      assert.truthy(tostring(e):find(c[2], 1, true), tostring(e))
    end
    local o = cli.parse({ '--out=--odd', '--n', '-3', '--list', '--p' }, spec)
    assert.are.same({ out = '--odd', n = -3, list = true, p = true }, o)
  end)
end)
