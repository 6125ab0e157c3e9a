--- rl.cli: the one command-line parser of rllua's scripts.
--
-- Every script reads its options here and lays out its tables with
-- rl.tables (markdown, text, csv, save): a new script finds exactly one way
-- to parse options and one way to write a table.  rl.tables builds the
-- options the paper's table scripts share on this parser.
--
--   local cli = require 'rl.cli'
--   cli.main('myscript', function()
--     local o, args = cli.parse(arg, {
--       usage = 'usage: rllua scripts/myscript.lua [--subset N] [--quick] FILE',
--       options = { subset = 'count', quick = 'flag', ['data-dir'] = 'string' },
--       defaults = { subset = 100 },
--       args = 1,                      -- plain arguments allowed (default 0)
--     })
--     ... o.subset, o.quick, o.data_dir, args[1] ...
--     local model = cli.try('--model: ', rl.models.get, o.model)  -- a library
--   end)                                  -- error as one line for the user
local options_mod = require 'rl.options'

local cli = {}

-- What each kind of option makes of its value: the value, or nil when it
-- is not one; and how an error names what was wanted.
local KINDS = {
  string = { read = function(v) return v end },
  number = {
    read = function(v)
      local n = tonumber(v)
      return n and (math.tointeger(n) or n)
    end,
    wants = 'a number',
  },
  integer = { read = function(v) return math.tointeger(tonumber(v)) end, wants = 'an integer' },
  count = {
    read = function(v)
      local n = math.tointeger(tonumber(v))
      return n and n >= 0 and n or nil
    end,
    wants = 'a non-negative integer',
  },
}

--- cli.parse(argv, spec) -> opts, args.  spec.options maps each option's
-- name, as typed after `--`, to its kind:
--   'flag'      --name           true
--   'string'    --name VALUE
--   'number'    --name X         an integer when X is one, else a float
--   'integer'   --name N
--   'count'     --name N         an integer >= 0
--   'optional'  --name [VALUE]   VALUE unless the next argument is an
--                                option (or there is none); then true
-- opts holds spec.defaults overridden by the command line, under the names
-- with dashes turned into underscores (--data-dir -> opts.data_dir).  Up to
-- spec.args plain arguments (default 0) come back in the list args.
-- --name=VALUE is --name VALUE; only that form takes a VALUE that starts
-- with "--" (--out --p is --out missing its value).  --help (or -h), anywhere, prints
-- spec.usage and exits with status 0; anything else the parser cannot take
-- is an error naming it, with the usage's first line (see cli.main).
function cli.parse(argv, spec)
  local usage, options = spec.usage or '', spec.options or {}
  local o, args = {}, {}
  for k, v in pairs(spec.defaults or {}) do o[k] = v end
  local names = {}
  for n in pairs(options) do names[#names + 1] = n end
  table.sort(names)
  -- --help (or -h) anywhere prints the usage, whatever else is wrong
  for _, a in ipairs(argv or {}) do
    if a == '--help' or a == '-h' then
      print(usage)
      os.exit(0)
    end
  end
  -- an error about the command line's shape: the message, the usage's
  -- first line and where the rest is
  local function wrong(fmt, ...)
    error(string.format(fmt, ...) .. '\n' .. (usage:match('^[^\n]*') or '') ..
      '\n(--help lists every option)', 0)
  end
  local i = 1
  while argv and argv[i] do
    local a = argv[i]
    -- --name VALUE, or --name=VALUE (given: the value is in the argument)
    local name, given = a:match('^%-%-([%w%-]+)=(.*)$')
    name = name or a:match('^%-%-([%w%-]+)$')
    local kind = name and options[name]
    local key = name and name:gsub('%-', '_')
    local step = given and 1 or 2
    if not name then
      if #args >= (spec.args or 0) then wrong('unexpected argument %q', a) end
      args[#args + 1], i = a, i + 1
    elseif kind == nil then
      local s = options_mod.suggest(name, names)
      wrong('unknown option --%s%s', name, s and string.format(' (did you mean --%s?)', s) or '')
    elseif kind == 'flag' then
      if given then wrong('option --%s takes no value (got --%s=%s)', name, name, given) end
      o[key], i = true, i + 1
    elseif kind == 'optional' then
      local v = given or argv[i + 1]
      if given or (v and not v:match('^%-%-')) then
        o[key], i = v, i + step
      else
        o[key], i = true, i + 1
      end
    else
      local v = given or argv[i + 1]
      if v == nil then wrong('option --%s needs a value', name) end
      -- "--only --out X" took --out as the value of --only
      if not given and v:match('^%-%-[%w%-]') then
        wrong('option --%s needs a value, got the option %s (--%s=VALUE gives a value that starts with --)',
          name, v, name)
      end
      local k = KINDS[kind] or error(string.format('cli.parse: option --%s has unknown kind %q', name, kind), 2)
      o[key] = k.read(v)
      if o[key] == nil then error(string.format('option --%s needs %s, got %q', name, k.wants, v), 0) end
      i = i + step
    end
  end
  return o, args
end

--- cli.message(err) -> the text of an error for the user: a message that
-- names who raised it ("experiment: unknown dataset ...") loses the
-- file:line of the code that raised it; any other (a bug) keeps it.
function cli.message(err)
  return options_mod.refusal(err) or tostring(err)
end

--- cli.plain(err) -> the message without the "file:line: " of the check
-- that raised it: a library error passed on to the user.
function cli.plain(err) return (tostring(err):gsub('^[^\n:]+:%d+: ', '')) end

--- cli.try(who, f, ...) -> f(...), or an error `who .. message` on one line
-- (cli.plain's message; who may be '' or nil).
function cli.try(who, f, ...)
  local res = table.pack(pcall(f, ...))
  if not res[1] then error((who or '') .. cli.plain(res[2]), 0) end
  return table.unpack(res, 2, res.n)
end

--- Run a script's main function; an error in it (a bad option included)
-- is printed as `name: message` and the script exits with status 1, with no
-- traceback: the message is meant for the user.  Returns fn's results.
function cli.main(name, fn)
  local res = table.pack(pcall(fn))
  if not res[1] then
    io.stderr:write(name, ': ', cli.message(res[2]), '\n')
    os.exit(1)
  end
  return table.unpack(res, 2, res.n)
end

return cli
