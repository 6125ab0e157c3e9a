--- rl.cli: the command line of the benchmark scripts, `--name N` pairs of
-- integers over a table of defaults; anything else prints the usage line
-- and exits with status 1.
local cli = {}

function cli.numbers(argv, defaults, usage)
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  local i = 1
  while argv and argv[i] do
    local k = argv[i]:match('^%-%-(%w+)$')
    local v = argv[i + 1] and math.tointeger(tonumber(argv[i + 1]))
    if not k or o[k] == nil or not v then
      io.stderr:write(usage, '\n')
      os.exit(1)
    end
    o[k] = v
    i = i + 2
  end
  return o
end

return cli
