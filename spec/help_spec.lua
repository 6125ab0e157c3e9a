-- Help where the user is (issue #14): rl.help on Lua and C functions (their
-- doc comments, an example), on tensors and models; `?name` in the REPL;
-- x:size() as rl.Size; tensor floor division.
local rl = require 'rl'
local help = require 'rl.help'
local shell = require 'helpers.shell'

describe('rl.help', function()
  it("a Lua function: its name, its doc comment with the options' defaults, an example, its file", function()
    local t = help.text(rl.attacks.pgd)
    assert.truthy(t:find('^rl%.attacks%.pgd\n'), t)
    assert.truthy(t:find('steps (10), step_size (2.5 * eps / steps)', 1, true), t)
    assert.truthy(t:find('example:\n  xa = rl.attacks.pgd(', 1, true), t)
    assert.truthy(t:find('(lua/rl/attacks.lua)', 1, true), t)
    -- by name, the same text
    assert.are.equal(t, help.text('rl.attacks.pgd'))
  end)

  it('a function wrapped by options.public, documented in its module header', function()
    local t = help.text(require('rl.autoattack.fab').attack)
    assert.truthy(t:find('^rl%.autoattack%.fab%.attack\n'), t)
    assert.truthy(t:find('n_target_classes = 9, steps = 100', 1, true), t)
  end)

  it('a C-bound function: the comment above it in bindings/', function()
    local t = help.text(rl.F.conv2d)
    assert.truthy(t:find('^rl%.F%.conv2d\n  F%.conv2d%(x, w, %[b%]'), t)
    t = help.text(rl.Tensor.narrow)
    assert.truthy(t:find('^x:narrow\n  narrow%(dim, start, len%), start 1%-based'), t)
    t = help.text(rl.cuda.allow_tf32)
    assert.truthy(t:find('^rl%.cuda%.allow_tf32\n'), t)
    -- the unary ops (made by a macro over engine/backend.h's list) and
    -- rl.write_png (set outside any luaL_Reg table) have theirs too
    t = help.text(rl.Tensor.sqrt_)
    assert.truthy(t:find('^x:sqrt_\n  x:op%(%) %-> a new tensor, and x:op_%(%)'), t)
    t = help.text(rl.write_png)
    assert.truthy(t:find('^rl%.write_png\n  rl%.write_png%(path, image%)'), t)
    -- one without a comment says so
    local cdoc = require 'rl.cdoc'
    local saved = cdoc['Tensor.storage_offset']
    cdoc['Tensor.storage_offset'] = nil
    local ok, u = pcall(help.text, rl.Tensor.storage_offset)
    cdoc['Tensor.storage_offset'] = saved
    assert(ok, u)
    assert.truthy(u:find('no doc comment', 1, true), u)
  end)

  it('every public C-bound function of rl.Tensor, rl.F and rl.core has a doc comment', function()
    local cdoc = require 'rl.cdoc'
    local missing = {}
    local function scan(ns, tbl)
      for k, v in pairs(tbl) do
        if type(k) == 'string' and not k:match('^_') and type(v) == 'function' and
            debug.getinfo(v, 'S').what == 'C' and not cdoc[ns .. '.' .. k] then
          missing[#missing + 1] = ns .. '.' .. k
        end
      end
    end
    scan('Tensor', rl.Tensor)
    scan('F', rl.F)
    scan('core', require 'rl.core')
    table.sort(missing)
    assert.is_true(#missing == 0, #missing .. ' C-bound functions have no doc comment in bindings/ ' ..
      '(the comment above the C function or its macro; make collects them into lua/rl/cdoc.lua): ' ..
      table.concat(missing, ' '))
  end)

  it('a tensor: size, dtype, device, strides, autograd, whether it is a view', function()
    local x = rl.randn(4, 3)
    local t = help.text(x)
    assert.truthy(t:find('f32 tensor of size rl.Size{4, 3} on cpu', 1, true), t)
    assert.truthy(t:find('strides 3, 1, storage offset 0, contiguous', 1, true), t)
    assert.truthy(t:find('owns its storage (48 bytes)', 1, true), t)
    local v = x:t()
    t = help.text(v)
    assert.truthy(t:find('strides 1, 3', 1, true) and t:find('not contiguous', 1, true), t)
    assert.truthy(t:find('shares its storage (48 bytes) with 1 other tensor', 1, true), t)
    local w = rl.randn(3):requires_grad_()
    assert.truthy(help.text(w):find('requires_grad: true, a leaf', 1, true))
    assert.truthy(help.text(w * 2):find('requires_grad: true, made by ', 1, true))
  end)

  -- rl.help(rl.models.CNN001) called the class's summary as if it were a
  -- model, and failed inside nn.lua
  it('a class: its doc and how to make one; a layer class the same', function()
    local t = help.text(rl.models.CNN001)
    assert.truthy(t:find('^rl%.models%.CNN001\n'), t)
    assert.truthy(t:find('CNN001{classes = 10, channels = 1, drop}', 1, true), t)
    assert.truthy(t:find('m = rl.models.CNN001(...) makes a module', 1, true), t)
    local l = help.text(rl.nn.Linear)
    assert.truthy(l:find("Linear(in, out, {bias = true, dtype = 'f32'})", 1, true), l)
    assert.truthy(l:find('(lua/rl/nn.lua)', 1, true), l)
  end)

  it('an optimiser: its formulas and every option with its default', function()
    local t = help.text(rl.optim.SGD)
    assert.truthy(t:find('stochastic gradient descent with momentum', 1, true), t)
    assert.truthy(t:find('opt = rl.optim.SGD(params, {lr = required (>= 0), momentum = 0 (>= 0)', 1, true), t)
    assert.truthy(help.text(rl.optim.Adam):find('betas = {0.9, 0.999}', 1, true))
  end)

  it('every public function and class of the rl modules has a doc', function()
    local missing = {}
    for _, m in ipairs { 'attacks', 'checkpoint', 'data', 'experiment', 'F', 'fs', 'json', 'methods', 'metrics',
        'models', 'nn', 'optim', 'plot' } do
      local mod = rl[m] or require('rl.' .. m)
      for k, v in pairs(mod) do
        if type(k) == 'string' and not k:match('^_') and (type(v) == 'function' or type(v) == 'table'
            and (rawget(v, '__name') or rawget(v, 'spec'))) then
          local ok, text = pcall(help.text, v)
          if not ok or text:find('no doc comment', 1, true) then
            missing[#missing + 1] = m .. '.' .. k .. (ok and '' or ' (' .. text .. ')')
          end
        end
      end
    end
    table.sort(missing)
    assert.is_true(#missing == 0, #missing .. ' without a doc: ' .. table.concat(missing, ', '))
  end)

  it('a model: its summary, with the mode of the model and of any module in another', function()
    local m = rl.models.CNN001 {}
    m:eval()
    m.dropout1.training = true
    local t = help.text(m)
    assert.truthy(t:find('^CNN001  %[eval mode%]'), t)
    assert.truthy(t:find('dropout1: Dropout2d(0.25)  [train mode]', 1, true), t)
    assert.truthy(t:find('dropout2: Dropout2d(0.5)\n', 1, true), t)
  end)

  it('an unknown name says so, with the names it may have meant', function()
    assert.truthy(help.text('rl.no_such_thing'):find('no value is called rl.no_such_thing', 1, true))
    assert.truthy(help.text('pgd'):find('did you mean rl.attacks.pgd', 1, true), help.text('pgd'))
    assert.truthy(help.text('rl.F.conv'):find('did you mean rl.F.conv2d?', 1, true), help.text('rl.F.conv'))
    assert.truthy(help.text('rl.models.CNN01'):find('did you mean rl.models.CNN001?', 1, true))
  end)

  -- the metrics' docs sat above their option tables, so help showed the
  -- module header's one line
  it("a function's own doc comment, with its options, not the module's header", function()
    for name, want in pairs {
      lipschitz = 'opts: eps (required), mode, steps (10), step_size (0.003), batch',
      adv_examples = 'seed (default 0 for autoattack; pgd and',
      adv_accuracy = 'classifies right under metrics.adv_examples',
      accuracy = 'accuracy(model, x, y) -> the fraction of the batch x',
    } do
      local t = help.text(rl.metrics[name])
      assert.truthy(t:find('^rl%.metrics%.' .. name .. '\n'), t)
      assert.truthy(t:find(want, 1, true), t)
      assert.falsy(t:find('evaluate(model, batches', 1, true), t)
    end
  end)
end)

describe('rl.help: provenance, closed tensors, tables, creation options', function()
  -- ?print said "(C, in bindings/)" and that the README lists it
  it("Lua's own functions and libraries are named as Lua's, never as rllua's", function()
    for _, v in ipairs { print, string.format, 'string.format', io.stdout.write, string } do
      local t = help.text(v)
      assert.truthy(t:find('a Lua standard', 1, true), t)
      assert.truthy(t:find('https://www.lua.org/manual/5.4/manual.html#', 1, true), t)
      assert.falsy(t:find('bindings/', 1, true), t)
      assert.falsy(t:find('README', 1, true), t)
    end
    assert.truthy(help.text(print):find('^print: a Lua standard function'), help.text(print))
    assert.truthy(help.text(string.format):find('#pdf%-string%.format'), help.text(string.format))
    -- a function of no module: where it was defined, no claim about rllua
    local f = load('return function() end', '=stdin')()
    local t = help.text(f)
    assert.truthy(t:find('(stdin:1)', 1, true), t)
    assert.falsy(t:find('README', 1, true) or t:find('bindings/', 1, true), t)
  end)

  -- ?rl.device and ?rl.help_line claimed the README's tour listed them
  it('says README.md names a thing only where it does; rl.device and rl.help_line have their docs', function()
    local t = help.text(rl.device)
    assert.truthy(t:find("^rl%.device\n  rl%.device%('cuda'%) %-> 'cuda:0'"), t)
    assert.truthy(t:find('(lua/rl/base.lua)', 1, true), t)
    t = help.text(rl.help_line)
    assert.truthy(t:find('^rl%.help_line\n  rl%.help_line%(text%)'), t)
    for _, v in ipairs { rl.device, rl.help_line, rl.zeros, rl.Size, rl.data.Ragged } do
      assert.falsy(help.text(v):find('A short tour', 1, true), help.text(v))
    end
    -- one without a comment: the README line is named only when the README has it there
    local cdoc = require 'rl.cdoc'
    local saved = cdoc['core.manual_seed']
    cdoc['core.manual_seed'] = nil
    local ok, u = pcall(help.text, rl.manual_seed)
    cdoc['core.manual_seed'] = saved
    assert(ok, u)
    local n = u:match('README%.md names it at line (%d+)')
    if n then
      local i = 0
      for l in io.lines('README.md') do
        i = i + 1
        if i == tonumber(n) then assert.truthy(l:find('rl.manual_seed', 1, true), l) end
      end
    else
      assert.truthy(u:find('(no doc comment)', 1, true), u)
    end
  end)

  -- ?x on a tensor closed by <close> raised "help.lua:314: bad argument #1 to 'index'"
  it('a closed tensor: says it was freed by <close>, and what that means', function()
    local z
    do
      local y <close> = rl.zeros(2)
      z = y
    end
    local ok, t = pcall(help.text, z)
    assert(ok, t)
    assert.truthy(t:find('^a closed tensor'), t)
    assert.truthy(t:find('<close>', 1, true) and t:find('freed its storage', 1, true), t)
  end)

  -- ?rl.Size and ?rl.data.Ragged printed "rl.Size: " and an empty list
  it('a documented table: rl.Size and rl.data.Ragged give their descriptions', function()
    local t = help.text(rl.Size)
    assert.truthy(t:find("^rl%.Size\n  rl%.Size{2, 3}: what x:size%(%) returns"), t)
    assert.truthy(t:find('methods: numel()', 1, true), t)
    assert.truthy(t:find('__eq', 1, true) and t:find('__tostring', 1, true), t)
    assert.truthy(t:find('(lua/rl/base.lua)', 1, true), t)
    assert.falsy(t:find('?name for any of them', 1, true), t)
    t = help.text(rl.data.Ragged)
    assert.truthy(t:find('^rl%.data%.Ragged\n'), t)
    assert.truthy(t:find('an rl.data.Ragged store (x.shape = {N, C}', 1, true), t)
    assert.truthy(t:find('(lua/rl/data.lua)', 1, true), t)
    -- a module's table still lists its fields
    assert.truthy(help.text(rl.attacks):find('^rl%.attacks: apgd%(%)'), help.text(rl.attacks))
  end)

  -- ?rl.zeros listed {dtype, device, requires_grad}; rl.zeros accepts a generator too
  it("rl.zeros's doc names every option rl.zeros accepts", function()
    local ok, err = pcall(rl.zeros, 2, { dtyp = 'f64' })
    assert.falsy(ok)
    local list = assert(err:match('the options are ([^)]+)'), err)
    local t = help.text(rl.zeros)
    local n = 0
    for opt in list:gmatch('[%a_]+') do
      if opt ~= 'and' then
        n = n + 1
        assert.truthy(t:find('%f[%a_]' .. opt .. '%f[^%a_]'), opt .. ' is accepted but not in:\n' .. t)
      end
    end
    assert.are.equal(3, n)
    assert.truthy(t:find('is refused here', 1, true), t)
  end)
end)

describe('the REPL', function()
  it('?name and ?x print help; x:size() prints as rl.Size', function()
    local input = '?rl.attacks.fgsm\nx = rl.ones(2, 3)\n? x\nx:size()\n?\n'
    local f = os.tmpname()
    local h = io.open(f, 'w')
    h:write(input)
    h:close()
    local out = shell.sh(shell.rllua .. ' -i < ' .. shell.quote(f))
    os.remove(f)
    assert.truthy(out:find('FGSM: x + eps * sign(grad)', 1, true), out)
    assert.truthy(out:find('f32 tensor of size rl.Size{2, 3} on cpu', 1, true), out)
    assert.truthy(out:find('> rl.Size{2, 3}\n', 1, true), out)
    assert.truthy(out:find('?rl.attacks.pgd    help on a function', 1, true), out)
  end)
end)

describe('rl.Size and //', function()
  it('x:size() is an rl.Size: prints as the expression that makes it, compares by value', function()
    local s = rl.zeros(2, 3):size()
    assert.are.equal('rl.Size{2, 3}', tostring(s))
    assert.is_true(s == rl.Size { 2, 3 })
    assert.is_false(s == rl.Size { 3, 2 })
    assert.are.equal(6, s:numel())
    assert.are.same({ 2, 3 }, { s[1], s[2] })
  end)

  it('a // b is floor division; integer tensors stay integers', function()
    assert.are.same({ 3, -4, 2 }, (rl.tensor({ 7, -7, 5 }, 'i64') // 2):tolist())
    assert.are.equal('i64', (rl.tensor({ 7 }, 'i64') // 2).dtype)
    assert.are.same({ 3, -4 }, (rl.tensor({ 7.5, -7 }) // 2):tolist())
    assert.are.same({ 3, -4 }, (7 // rl.tensor({ 2, -2 }, 'i64')):tolist())
    assert.are.same({ -4, 3 }, (rl.tensor({ 7, -7 }, 'i64') // rl.tensor({ -2, -2 }, 'i64')):tolist())
  end)
end)
