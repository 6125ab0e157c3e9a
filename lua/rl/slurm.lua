--- rl.slurm: a table script's rows as a Slurm job array.
--
-- `--slurm` on a table script (table1-4, sweep) writes two sbatch scripts
-- under OUT/slurm/ and submits them:
--   array.sbatch     one array task per row; task i runs the same command
--                    line with `--only ROW-ID` (a row is one training run;
--                    a rerun resumes it from its last checkpoint, so a
--                    requeued or resubmitted task loses at most an epoch);
--   assemble.sbatch  after every task succeeded (afterok), the same
--                    command line with `--assemble`: the table, its files
--                    and figures from the finished rows, training nothing.
-- `--slurm-dry-run` prints both scripts and submits nothing.  The tasks'
-- logs go to OUT/slurm/row-<task>.log, the assembly's to
-- OUT/slurm/assemble.log.  sbatch exports the submitting shell's
-- environment (RL_DATA, RL_DEVICE...) to the jobs, as it does by default.
--
--   rllua scripts/table2.lua --dataset svhn --device cuda \
--       --slurm --partition gpu --gres gpu:1 --time 1-00:00:00
local fs = require 'rl.fs'

local slurm = {}

--- The command-line options (rl.cli kinds) every table script takes for it.
slurm.options = {
  slurm = 'flag', ['slurm-dry-run'] = 'flag', partition = 'string', gres = 'string', time = 'string',
  assemble = 'flag',
}

slurm.usage = [[
  --slurm             submit the rows as a Slurm job array, one task per row,
                      and a job that assembles the table after them
  --slurm-dry-run     print those two sbatch scripts; submit nothing
  --partition P, --gres G, --time T
                      sbatch's settings for the row tasks (the assembly job
                      gets the partition and no gres), e.g. --gres gpu:1
                      --time 1-00:00:00
  --assemble          write the table from finished rows only (what the
                      assembly job runs); an unfinished row is an error]]

-- The options a row task or the assembly job must not inherit.
local NOT_FORWARDED = { 'slurm', 'slurm-dry-run', 'partition', 'gres', 'time', 'assemble', 'only', 'list' }

--- Check the combination of options o (as rl.cli returns them): the sbatch
-- settings only with --slurm or --slurm-dry-run, and none of the options
-- that select or list rows beside them.  Returns whether o asks for Slurm.
function slurm.check(o)
  local asked = o.slurm or o.slurm_dry_run
  if not asked then
    for _, k in ipairs { 'partition', 'gres', 'time' } do
      if o[k] then error(string.format('option --%s goes with --slurm or --slurm-dry-run', k), 0) end
    end
    if o.assemble and o.only then error('give --assemble or --only, not both', 0) end
    if o.assemble and o.list then error('give --assemble or --list, not both', 0) end
    return false
  end
  if o.slurm and o.slurm_dry_run then error('give --slurm or --slurm-dry-run, not both', 0) end
  for _, k in ipairs { 'only', 'list', 'assemble' } do
    if o[k] then error(string.format('option --%s cannot go with --slurm: the array chooses the rows', k), 0) end
  end
  for _, k in ipairs { 'partition', 'gres', 'time' } do
    local v = o[k]
    if v and (v == '' or v:find('[%s\'"\\]')) then
      error(string.format('option --%s: %q is not a Slurm value (no blanks or quotes)', k, v), 0)
    end
  end
  return true
end

--- argv without the options of NOT_FORWARDED (and their values), given
-- the script's option kinds (name -> rl.cli kind).
function slurm.forwarded(argv, kinds)
  local drop = {}
  for _, n in ipairs(NOT_FORWARDED) do drop[n] = true end
  local out, i = {}, 1
  while argv[i] do
    local a = argv[i]
    local name = a:match('^%-%-([%w%-]+)$')
    local joined = not name and a:match('^%-%-([%w%-]+)=') -- --name=VALUE: one word
    local kind = name and kinds[name]
    local width = 1
    name = name or joined
    if kind and kind ~= 'flag' then
      local v = argv[i + 1]
      width = (kind == 'optional' and (v == nil or v:match('^%-%-'))) and 1 or 2
    end
    if not (name and drop[name]) then
      for k = i, math.min(i + width - 1, #argv) do out[#out + 1] = argv[k] end
    end
    i = i + width
  end
  return out
end

-- The rllua executable running this script, as an absolute path.
local function executable()
  local exe = fs.exists('/proc/self') and fs.realpath('/proc/' .. fs.pid() .. '/exe')
  if not exe or not exe:match('/rllua[^/]*$') then
    -- not run by rllua (stock lua with the rl modules): the interpreter's name
    local a = arg and arg[-1]
    exe = a and (a:find('/') and fs.realpath(a) or a)
  end
  return exe or error('slurm: cannot tell which rllua runs this script', 0)
end

local function command(words)
  local q = {}
  for i, w in ipairs(words) do q[i] = fs.quote(w) end
  return table.concat(q, ' ')
end

--- The two sbatch scripts as text: slurm.scripts{name, ids, argv, kinds,
-- out, o} -> array, assemble, dir.  ids: the rows' run ids, in order (task
-- i runs ids[i]); argv: the script's command line (arg); kinds: its
-- options; out: its results directory; o: the parsed options (partition,
-- gres, time).
function slurm.scripts(s)
  assert(#s.ids > 0, 'slurm.scripts: no rows')
  local cwd = fs.realpath('.') or error('slurm: cannot tell the current directory', 0)
  local out = s.out:sub(1, 1) == '/' and s.out or cwd .. '/' .. s.out
  local dir = out .. '/slurm'
  local script = fs.realpath(arg[0]) or error('slurm: cannot find the script ' .. tostring(arg[0]), 0)
  local base = command { executable(), script }
  local rest = command(slurm.forwarded(s.argv, s.kinds))
  if rest ~= '' then base = base .. ' ' .. rest end
  local o = s.o
  local function header(job, log, gres)
    local h = { '#!/bin/bash', '#SBATCH --job-name=' .. job, '#SBATCH --chdir=' .. cwd, '#SBATCH --output=' .. log }
    if o.partition then h[#h + 1] = '#SBATCH --partition=' .. o.partition end
    if gres and o.gres then h[#h + 1] = '#SBATCH --gres=' .. o.gres end
    if o.time then h[#h + 1] = '#SBATCH --time=' .. o.time end
    return h
  end
  local a = header('rllua-' .. s.name, dir .. '/row-%a.log', true)
  table.insert(a, 3, '#SBATCH --array=1-' .. #s.ids)
  local ids = {}
  for i, id in ipairs(s.ids) do ids[i] = '  ' .. fs.quote(id) end
  for _, line in ipairs {
    string.format('# rllua %s: one row per task (%d rows); written by --slurm', s.name, #s.ids),
    'set -eu',
    'rows=(',
    table.concat(ids, '\n'),
    ')',
    'id=${rows[$((SLURM_ARRAY_TASK_ID - 1))]}',
    'echo "rllua ' .. s.name .. ': task $SLURM_ARRAY_TASK_ID, row $id, on $(hostname)"',
    'exec ' .. base .. ' --only "$id"',
  } do a[#a + 1] = line end
  local b = header('rllua-' .. s.name .. '-table', dir .. '/assemble.log', false)
  for _, line in ipairs {
    string.format('# rllua %s: the table from the rows of the array job; written by --slurm', s.name),
    'set -eu',
    'exec ' .. base .. ' --assemble',
  } do b[#b + 1] = line end
  return table.concat(a, '\n') .. '\n', table.concat(b, '\n') .. '\n', dir
end

-- Run sbatch with `args` on the script file `path`; its job id.
local function sbatch(args, path)
  local err = os.tmpname()
  local p = io.popen(string.format('sbatch --parsable %s %s 2>%s', args, fs.quote(path), fs.quote(err)))
  local text = p:read('a')
  local ok, _, code = p:close()
  local f = io.open(err)
  local msg = f and f:read('a') or ''
  if f then f:close() end
  os.remove(err)
  local id = text:match('^%s*(%d+)')
  if not ok or not id then
    if code == 127 then error('slurm: sbatch is not installed (or not on PATH)', 0) end
    error(string.format('slurm: sbatch failed on %s (exit %s): %s', path, tostring(code),
      (msg .. text):gsub('%s+$', '')), 0)
  end
  return id
end

--- Submit the rows (or, with o.slurm_dry_run, print the scripts): the
-- arguments as slurm.scripts.  Returns the array's and the assembly's job
-- ids (nil on a dry run).
function slurm.submit(s)
  local array, assemble, dir = slurm.scripts(s)
  if s.o.slurm_dry_run then
    io.stdout:write('# ', dir, '/array.sbatch\n', array, '\n# ', dir, '/assemble.sbatch (after the array: ',
      '--dependency=afterok:ARRAY-JOB)\n', assemble)
    return
  end
  fs.mkdir(dir, 'slurm')
  fs.write(dir .. '/array.sbatch', array)
  fs.write(dir .. '/assemble.sbatch', assemble)
  local job = sbatch('', dir .. '/array.sbatch')
  local after = sbatch('--dependency=afterok:' .. job, dir .. '/assemble.sbatch')
  print(string.format('submitted job array %s (%d rows; logs %s/row-N.log) and job %s, which writes the table ' ..
    'once every row succeeded (log %s/assemble.log)\n  watch: squeue -j %s,%s', job, #s.ids, dir, after, dir, job,
    after))
  return job, after
end

return slurm
