-- spec/repl_spec.lua -- end-to-end tests of the rllua executable.
--
-- Run from the repository root after building ./rllua:
--   lua5.4 /usr/bin/busted spec/repl_spec.lua
--
-- Three groups: the command line (-e, -l, -v, --help, scripts, arg, errors),
-- the REPL driven through a pipe (`rllua -i < input`), and the REPL in a
-- pseudo-terminal through spec/helpers/pty.py, for what only a terminal
-- shows: readline tab completion, Ctrl-C and the history file.  Every run
-- gets a temporary HOME so the user's ~/.rllua_history is never touched.

local RLLUA = os.getenv('RLLUA_BIN') or './rllua' -- make test-asan's, see helpers/shell.lua
local PTY_HELPER = 'spec/helpers/pty.py'

local function file_exists(path)
  local f = io.open(path, 'r')
  if f then f:close() end
  return f ~= nil
end

local PYTHON = file_exists('/usr/bin/python3') and '/usr/bin/python3' or 'python3'

-- Quotes a string for /bin/sh.
local function q(s)
  return "'" .. (s:gsub("'", [['\'']])) .. "'"
end

local function read_file(path)
  local f = assert(io.open(path, 'rb'))
  local text = f:read('a')
  f:close()
  return text
end

local function write_file(path, text)
  local f = assert(io.open(path, 'wb'))
  f:write(text)
  f:close()
end

local function make_tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute('mkdir -p ' .. q(path)))
  return path
end

local function remove_tree(path)
  os.execute('rm -rf ' .. q(path))
end

-- Runs a shell command with `input` (or nothing) on stdin; returns stdout,
-- stderr and the exit status.
local function run(cmd, input)
  local errfile = os.tmpname()
  local infile = os.tmpname()
  write_file(infile, input or '')
  local p = assert(io.popen(cmd .. ' <' .. q(infile) .. ' 2>' .. q(errfile)))
  local out = p:read('a')
  local _, how, code = p:close()
  local err = read_file(errfile)
  os.remove(errfile)
  os.remove(infile)
  if how == 'signal' then code = 128 + code end
  return out, err, code
end

-- Plain substring test (no Lua patterns).
local function contains(haystack, needle)
  return haystack:find(needle, 1, true) ~= nil
end

-- Asserts that `needle` occurs in `haystack`, showing both on failure.
local function assert_contains(haystack, needle)
  assert(contains(haystack, needle),
         ('expected to find %q in:\n%s'):format(needle, haystack))
end

describe('rllua', function()
  local home

  setup(function()
    assert(file_exists(RLLUA),
           'build ./rllua first (make), then run busted from the repository root')
  end)

  before_each(function()
    home = make_tmpdir()
  end)

  after_each(function()
    remove_tree(home)
  end)

  local function rllua(args, input)
    return run('env HOME=' .. q(home) .. ' ' .. RLLUA .. ' ' .. args, input)
  end

  describe('command line', function()
    it('executes -e chunks', function()
      local out, err, code = rllua("-e 'print(1+1)'")
      assert.are.equal('2\n', out)
      assert.are.equal('', err)
      assert.are.equal(0, code)
    end)

    it('runs several -e chunks in order', function()
      local out, _, code = rllua("-e 'x = 20' -e 'print(x + 1)'")
      assert.are.equal('21\n', out)
      assert.are.equal(0, code)
    end)

    it('prints its version with -v', function()
      local out, _, code = rllua('-v')
      assert.are.equal('rllua 0.1.0 (Lua 5.4)\n', out)
      assert.are.equal(0, code)
    end)

    it('describes every option with --help and -h', function()
      for _, flag in ipairs({ '--help', '-h' }) do
        local out, _, code = rllua(flag)
        assert.are.equal(0, code)
        assert_contains(out, 'usage')
        for _, opt in ipairs({ '-e', '-l', '-i', '-v', '--', '-h' }) do
          assert_contains(out, '  ' .. opt)
        end
      end
    end)

    it('rejects an unknown option with usage on stderr', function()
      local out, err, code = rllua('-Z')
      assert.are.equal(1, code)
      assert.are.equal('', out)
      assert_contains(err, "'-Z'")
      assert_contains(err, 'usage')
    end)

    it('rejects -e without an argument', function()
      local _, err, code = rllua('-e')
      assert.are.equal(1, code)
      assert_contains(err, "'-e' needs argument")
    end)

    it('loads rl as a global', function()
      local out, _, code = rllua("-e 'print(type(rl))'")
      assert.are.equal('table\n', out)
      assert.are.equal(0, code)
    end)

    it('passes arguments to a script through arg and ...', function()
      local script = home .. '/args.lua'
      write_file(script, [[
print(arg[0], arg[1], arg[2], #arg)
print(select('#', ...), ...)
print(arg[-1])
]])
      local out, err, code = rllua(q(script) .. " one 'two words'")
      assert.are.equal('', err)
      assert.are.equal(0, code)
      assert.are.equal(script .. '\tone\ttwo words\t2\n'
                       .. '2\tone\ttwo words\n'
                       .. RLLUA .. '\n', out)
    end)

    it('puts the options at negative arg indices', function()
      local script = home .. '/neg.lua'
      write_file(script, 'print(arg[-3], arg[-2], arg[-1], arg[0], arg[1])\n')
      local out, _, code = rllua("-e 'x=1' " .. q(script) .. ' a')
      assert.are.equal(0, code)
      assert.are.equal(RLLUA .. '\t-e\tx=1\t' .. script .. '\ta\n', out)
    end)

    it('treats the argument after -- as the script', function()
      local script = home .. '/dd.lua'
      write_file(script, 'print(arg[0], ...)\n')
      local out, _, code = rllua('-- ' .. q(script) .. ' -e')
      assert.are.equal(0, code)
      assert.are.equal(script .. '\t-e\n', out)
    end)

    it('reports a failing script with a traceback and status 1', function()
      local script = home .. '/fail.lua'
      write_file(script, [[
local function inner() error('kaboom') end
inner()
]])
      local out, err, code = rllua(q(script))
      assert.are.equal(1, code)
      assert.are.equal('', out)
      assert_contains(err, 'rllua: ')
      assert_contains(err, 'kaboom')
      assert_contains(err, 'stack traceback')
      assert_contains(err, 'inner')
    end)

    it('reports a failing -e chunk with status 1', function()
      local _, err, code = rllua([[-e 'error("from -e")']])
      assert.are.equal(1, code)
      assert_contains(err, 'from -e')
      assert_contains(err, 'stack traceback')
    end)

    it('prints error objects through __tostring', function()
      local _, err, code = rllua(
        [[-e 'error(setmetatable({}, {__tostring = function() return "custom error" end}))']])
      assert.are.equal(1, code)
      assert_contains(err, 'rllua: custom error')
    end)

    it('names the type of other non-string errors', function()
      local _, err, code = rllua([[-e 'error({})']])
      assert.are.equal(1, code)
      assert_contains(err, 'table value')
    end)

    it('reports syntax errors in a script', function()
      local script = home .. '/syntax.lua'
      write_file(script, 'x = = 1\n')
      local _, err, code = rllua(q(script))
      assert.are.equal(1, code)
      assert_contains(err, 'syntax.lua:1:')
    end)

    it('requires modules with -l', function()
      local out, _, code = rllua("-l rl -e 'print(type(rl))'")
      assert.are.equal('table\n', out)
      assert.are.equal(0, code)
    end)

    it('requires a module into another global with -l g=mod', function()
      local out, _, code = rllua([[-l s=string -e 'print(s.upper("x"))']])
      assert.are.equal('X\n', out)
      assert.are.equal(0, code)
    end)

    it('finds -l modules on LUA_PATH', function()
      write_file(home .. '/mymod.lua', 'return { answer = 42 }\n')
      local out, err, code = run('env HOME=' .. q(home)
                                 .. ' LUA_PATH=' .. q(home .. '/?.lua;;')
                                 .. ' ' .. RLLUA .. " -l mymod -e 'print(mymod.answer)'")
      assert.are.equal('', err)
      assert.are.equal('42\n', out)
      assert.are.equal(0, code)
    end)

    it('stops at a failing -l and exits 1', function()
      local out, err, code = rllua("-l no_such_module_xyz -e 'print(1)'")
      assert.are.equal(1, code)
      assert.are.equal('', out)
      assert_contains(err, 'no_such_module_xyz')
    end)

    it('runs stdin as a script when it is not a terminal', function()
      local out, _, code = rllua('', "print('from ' .. 'stdin')\n")
      assert.are.equal('from stdin\n', out)
      assert.are.equal(0, code)
    end)

    it('runs stdin as the script named -', function()
      local out, _, code = rllua('- a b', 'print(arg[0], ...)\n')
      assert.are.equal('-\ta\tb\n', out)
      assert.are.equal(0, code)
    end)
  end)

  describe('REPL through a pipe', function()
    -- Runs `rllua -i` on `input`, returning stdout then stderr, and the
    -- exit status.
    local function repl(input, extra)
      local out, err, code = run('env HOME=' .. q(home) .. ' ' .. RLLUA
                                 .. ' -i ' .. (extra or ''), input)
      return out .. err, code
    end

    it('prints the banner and evaluates expressions', function()
      local out, code = repl('1+1\n')
      assert.are.equal(0, code)
      assert_contains(out, 'rllua 0.1.0 (Lua 5.4) -- tensors for robustness research.'
                           .. ' rl is loaded; help: ?name or rl.help()')
      assert_contains(out, '> 2\n')
    end)

    it('prints values with the global tostring', function()
      local expected = rllua("-e 'print(rl.zeros(2))'")
      expected = expected:gsub('\n$', '')
      assert.is_true(#expected > 0)
      local out, code = repl('x = rl.zeros(2)\nx\n')
      assert.are.equal(0, code)
      assert_contains(out, expected)
    end)

    it('applies __tostring and separates results with tabs', function()
      local out = repl([[
setmetatable({}, {__tostring = function() return 'custom-repr' end})
1, 'a', nil
]])
      assert_contains(out, 'custom-repr\n')
      assert_contains(out, '1\ta\tnil\n')
    end)

    it('reads more lines for an incomplete chunk', function()
      local out, code = repl('for i=1,2 do\nprint(i * 10)\nend\n')
      assert.are.equal(0, code)
      assert_contains(out, '>> ')
      assert_contains(out, '10\n20\n')
    end)

    it('keeps going after errors', function()
      local out, code = repl("error('boom')\nprint('alive')\n1 +* 2\nprint('still here')\n")
      assert.are.equal(0, code)
      assert_contains(out, 'boom')
      assert_contains(out, 'alive')
      assert_contains(out, 'still here')
    end)

    it('keeps globals between lines', function()
      local out = repl('y = 6\ny * 7\n')
      assert_contains(out, '> 42\n')
    end)

    it('enters the REPL after a script with -i', function()
      local script = home .. '/pre.lua'
      write_file(script, "greeting = 'set by ' .. 'script'\n")
      local out, code = repl('greeting\n', q(script))
      assert.are.equal(0, code)
      assert_contains(out, 'set by script')
    end)

    -- ?print claimed bindings/ and the README; ?z on a closed tensor raised
    -- an error from inside help.lua; ?rl.Size printed an empty list
    it('?name: Lua built-ins as Lua\'s, a closed tensor, rl.Size', function()
      local out, code = repl('?print\n?string.format\n' ..
                             'do local y <close> = rl.zeros(2); z = y end\n?z\n?rl.Size\n')
      assert.are.equal(0, code)
      assert_contains(out, 'print: a Lua standard function')
      assert_contains(out, 'string.format: a Lua standard function')
      assert.is_false(contains(out, 'bindings/'), out)
      assert.is_false(contains(out, 'README'), out)
      assert_contains(out, 'a closed tensor: the `local x <close>`')
      assert.is_false(contains(out, 'help.lua:'), out)
      assert_contains(out, 'rl.Size{2, 3}: what x:size() returns')
    end)

    it('exits cleanly at end of input', function()
      local out, code = repl('')
      assert.are.equal(0, code)
      assert_contains(out, '> ')
    end)
  end)

  describe('REPL in a terminal', function()
    -- Drives ./rllua in a pseudo-terminal.  `steps` is a list of
    -- {'-s', text} (send) and {'-x', text} (expect) pairs; texts use
    -- backslash escapes (\t, \n, \x03).  Returns the transcript and the
    -- helper's status (0 when every expectation was met).
    local function terminal(steps)
      local args = { PYTHON, PTY_HELPER, '-t', '10', '-E', 'HOME=' .. home }
      for _, step in ipairs(steps) do
        args[#args + 1] = step[1]
        args[#args + 1] = step[2]
      end
      args[#args + 1] = '--'
      args[#args + 1] = RLLUA
      local quoted = {}
      for i, a in ipairs(args) do quoted[i] = q(a) end
      local out, err, code = run(table.concat(quoted, ' '))
      return out .. err, code
    end

    local PROMPT = { '-x', '> ' }

    -- Steps for typing a line: send it, wait for `expect` (if given), then
    -- for the next prompt, so that nothing is typed while code runs.
    local function typed(line, expect)
      local group = { { '-s', line } }
      if expect then group[#group + 1] = { '-x', expect } end
      group[#group + 1] = PROMPT
      return group
    end

    -- Flattens steps and (nested) groups of steps into `into`.
    local function flatten(item, into)
      if type(item[1]) == 'string' then
        into[#into + 1] = item
      else
        for _, sub in ipairs(item) do flatten(sub, into) end
      end
      return into
    end

    -- Runs a terminal session: waits for the first prompt, then the steps.
    local function session(...)
      return terminal(flatten({ PROMPT, ... }, {}))
    end

    it('completes global table fields', function()
      local out, code = session({ typed([[print(string.up\t("abc"))\n]], 'ABC') })
      assert.are.equal(0, code, out)
      assert_contains(out, 'string.upper')
      assert_contains(out, 'EXIT: 0')
    end)

    it('completes rl functions', function()
      -- rl.ze is ambiguous (zeros, zeros_like, ...): Tab completes the
      -- common prefix, another Tab rings the bell, a third lists them all.
      local out, code = session({
        { '-s', [[rl.ze\t\t\t]] }, { '-x', 'rl.zeros_like' },
        { '-s', [[\x15print(type(rl.zeros_l\t))\n]] }, { '-x', 'function' },
        PROMPT,
      })
      assert.are.equal(0, code, out)
      assert.is_truthy(out:find('rl%.zeros%s'), out)
      assert_contains(out, 'type(rl.zeros_like)')
    end)

    it('completes tensor methods', function()
      local expected = rllua("-e 'print(rl.zeros(2))'"):gsub('\n$', '')
      local out, code = session({
        typed([[x = rl.zeros(2)\n]]),
        { '-s', [[x:resh\t(2)\n]] }, { '-x', expected }, PROMPT,
      })
      assert.are.equal(0, code, out)
      assert_contains(out, 'x:reshape(2)')
    end)

    it('completes methods after a colon', function()
      local out, code = session({
        typed([[s = 'abc'\n]]),
        typed([[print(s:up\t())\n]], 'ABC'),
      })
      assert.are.equal(0, code, out)
      assert_contains(out, 's:upper')
    end)

    it('follows a chain of __index tables for methods', function()
      local out, code = session({
        typed([[base = {greet = function() return 'hel' .. 'lo' end}\n]]),
        typed([[mid = setmetatable({}, {__index = base})\n]]),
        typed([[obj = setmetatable({}, {__index = mid})\n]]),
        typed([[print(obj:gr\t())\n]], 'hello'),
      })
      assert.are.equal(0, code, out)
      assert_contains(out, 'obj:greet')
    end)

    it('completes methods of userdata', function()
      local out, code = session({ typed([[io.stdout:wr\t('writ' .. 'ten\\n')\n]], 'written') })
      assert.are.equal(0, code, out)
      assert_contains(out, 'io.stdout:write')
    end)

    it('completes globals, keywords, and tables with a dot', function()
      local out, code = session({
        typed([[pri\t('glo' .. 'bal')\n]], 'global'),
        typed([[loc\tz = 'key' .. 'word'; print(z)\n]], 'keyword'),
        typed([[print(type(str\tup\t))\n]], 'function'),
      })
      assert.are.equal(0, code, out)
      assert_contains(out, 'local z')
      assert_contains(out, 'type(string.upper)')
    end)

    it('survives completion of odd input', function()
      local out, code = session({
        typed([[a..b\t[]\t:.:\t1.\t"x.\t.\t\t\t\x15print('still' .. ' ok')\n]], 'still ok'),
      })
      assert.are.equal(0, code, out)
      assert_contains(out, 'EXIT: 0')
    end)

    it('clears the line on Ctrl-C while reading', function()
      local out, code = session(
        { { '-s', [[abc\x03]] }, { '-x', '^C' }, PROMPT,
          typed([[print('o' .. 'k')\n]], 'ok') },
        { { '-s', [[for i = 1, 2 do\n]] }, { '-x', '>> ' },
          { '-s', [[\x03]] }, { '-x', '^C' }, PROMPT,
          typed([[print('fr' .. 'esh')\n]], 'fresh') })
      assert.are.equal(0, code, out)
      assert.is_false(contains(out, 'abcprint'))
    end)

    it('interrupts running code on Ctrl-C', function()
      local out, code = session({
        { '-s', [[while true do end\n]] }, { '-w', '0.5' },
        { '-s', [[\x03]] }, { '-x', 'interrupted!' }, PROMPT,
        typed([[print('af' .. 'ter')\n]], 'after'),
      })
      assert.are.equal(0, code, out)
      assert_contains(out, 'EXIT: 0')
    end)

    it('keeps history in ~/.rllua_history across sessions', function()
      local out, code = session({ typed([[print('hist' .. 'ory')\n]], 'history') })
      assert.are.equal(0, code, out)
      local hist = read_file(home .. '/.rllua_history')
      assert_contains(hist, "print('hist' .. 'ory')\n")

      -- Ctrl-P recalls the previous session's line.
      out, code = session({ typed([[\x10\n]], 'history') })
      assert.are.equal(0, code, out)
    end)
  end)
end)
