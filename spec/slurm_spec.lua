-- Table scripts on Slurm (issue #14, section 5): --slurm writes a job array
-- of one task per row and a job that assembles the table after it;
-- --slurm-dry-run prints them; --assemble writes the table from finished
-- rows only.  The last case starts a real single-node Slurm (Debian's
-- munged, slurmctld and slurmd, helpers/slurm_cluster.lua), runs a small
-- table through it and compares the assembled table.json with a direct
-- run's.  Without the packages that case is pending and says why.
local rl = require 'rl'
local shell = require 'helpers.shell'
local cluster = require 'helpers.slurm_cluster'

local sh, tmpdir, quote = shell.sh, shell.tmpdir, shell.quote
-- a small table: the ten rows of Table 2 on the synthetic dataset
local ARGS = '--dataset synthetic --subset 32 --test-subset 16 --eval-subset 16 --batch 16 --epochs 1'

local function run_ids(args)
  local ids = {}
  for line in sh(shell.rllua .. ' scripts/table2.lua ' .. args .. ' --list'):gmatch('[^\n]+') do
    ids[#ids + 1] = line:match('^(%S+)\t')
  end
  return ids
end

local function read(path) return shell.read(path) or error('missing ' .. path) end

-- Deep equality, with the path of the first difference.
local function same(a, b, path)
  path = path or '$'
  if type(a) ~= type(b) then return false, path .. ': ' .. type(a) .. ' vs ' .. type(b) end
  if type(a) ~= 'table' then
    if a == b then return true end
    return false, string.format('%s: %s vs %s', path, tostring(a), tostring(b))
  end
  for k, v in pairs(a) do
    local ok, where = same(v, b[k], path .. '.' .. tostring(k))
    if not ok then return false, where end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. '.' .. tostring(k) .. ': missing on the left' end
  end
  return true
end

describe('table scripts on Slurm (issue #14)', function()
  it('--slurm-dry-run prints an array of one task per row and the assembly job, and writes nothing', function()
    local out = tmpdir() .. '/res'
    local text, code = sh(string.format('%s scripts/table2.lua %s --out %s --slurm-dry-run --partition gpu ' ..
      '--gres gpu:1 --time 1-00:00:00 --device cpu', shell.rllua, ARGS, quote(out)))
    assert.are.equal(0, code, text)
    local ids = run_ids(ARGS)
    assert.are.equal(10, #ids)
    local array, assemble = text:match('array%.sbatch\n(.-)\n\n# [^\n]*assemble%.sbatch[^\n]*\n(.*)$')
    assert.truthy(array, text)
    assert.truthy(array:find('#SBATCH --array=1-10\n', 1, true), array)
    for _, line in ipairs { '#SBATCH --partition=gpu', '#SBATCH --gres=gpu:1', '#SBATCH --time=1-00:00:00',
      '#SBATCH --output=' .. out .. '/slurm/row-%a.log' } do
      assert.truthy(array:find(line, 1, true), line)
    end
    -- task i runs row i of --list
    local listed = {}
    for id in array:match('rows=%((.-)\n%)'):gmatch("'([^']+)'") do listed[#listed + 1] = id end
    assert.are.same(ids, listed)
    local exec = array:match('\nexec ([^\n]+)')
    assert.truthy(exec:find("'--dataset' 'synthetic'", 1, true), exec)
    assert.truthy(exec:find("'--device' 'cpu'", 1, true), exec)
    assert.truthy(exec:find(' --only "$id"$'), exec)
    for _, gone in ipairs { 'slurm', 'slurm-dry-run', 'partition', 'gres', 'time' } do
      assert.is_nil(exec:find("'--" .. gone .. "'", 1, true), gone)
    end
    -- the assembly job: same command line, --assemble, no GPU asked for
    assert.truthy(assemble:find('\nexec ' .. exec:gsub(' %-%-only "%$id"$', '') .. ' --assemble\n', 1, true),
      assemble)
    assert.is_nil(assemble:find('--gres', 1, true))
    assert.truthy(assemble:find('#SBATCH --partition=gpu', 1, true))
    assert.is_nil(io.open(out), 'a dry run made ' .. out)
  end)

  it('the sbatch options go with --slurm, and --slurm with neither --only nor --list', function()
    for args, msg in pairs {
      ['--gres gpu:1'] = 'option --gres goes with --slurm or --slurm-dry-run',
      ['--slurm --only x'] = 'option --only cannot go with --slurm',
      ['--slurm-dry-run --list'] = 'option --list cannot go with --slurm',
      ['--slurm --slurm-dry-run'] = 'give --slurm or --slurm-dry-run, not both',
      ['--slurm-dry-run --time "1 day"'] = 'option --time: "1 day" is not a Slurm value',
      ['--assemble --only x'] = 'give --assemble or --only, not both',
    } do
      local text, code = sh(shell.rllua .. ' scripts/table2.lua --dataset synthetic ' .. args)
      assert.are_not.equal(0, code, args)
      assert.truthy(text:find(msg, 1, true), args .. ': ' .. text)
    end
    -- and the sweep takes them too
    local text, code = sh(shell.rllua .. ' scripts/sweep.lua --dataset synthetic --epochs 1 --betas 1,6 ' ..
      '--slurm-dry-run')
    assert.are.equal(0, code, text)
    assert.truthy(text:find('#SBATCH --array=1-2\n', 1, true), text)
  end)

  it('--assemble writes nothing and names the rows that have not finished', function()
    local out = tmpdir() .. '/res'
    local text, code = sh(string.format('%s scripts/table2.lua %s --out %s --assemble', shell.rllua, ARGS,
      quote(out)))
    assert.are_not.equal(0, code)
    assert.truthy(text:find('--assemble: 10 row(s) of table2 have not finished', 1, true), text)
    for _, id in ipairs(run_ids(ARGS)) do assert.truthy(text:find(id, 1, true), id) end
    assert.is_nil(io.open(out .. '/table.json'))
  end)

  it('table1: a task per dataset (--only), and --assemble gives the direct run\'s table', function()
    local dir = tmpdir()
    local args = '--dataset fashion-mnist,svhn --subset 200'
    local text, code = sh(string.format('%s scripts/table1.lua %s --out %s/res --slurm-dry-run', shell.rllua, args,
      quote(dir)))
    assert.are.equal(0, code, text)
    assert.truthy(text:find("rows=(\n  'fashion-mnist'\n  'svhn'\n)", 1, true), text)
    -- the tasks: fashion-mnist is measured; svhn, named but absent, fails its task
    text, code = sh(string.format('%s scripts/table1.lua %s --out %s/res --only fashion-mnist', shell.rllua, args,
      quote(dir)))
    assert.are.equal(0, code, text)
    text, code = sh(string.format('%s scripts/table1.lua %s --out %s/res --only svhn', shell.rllua,
      args .. ' --data-dir ' .. quote(dir), quote(dir)))
    assert.are_not.equal(0, code, text)
    text, code = sh(string.format('%s scripts/table1.lua %s --out %s/res --assemble', shell.rllua, args, quote(dir)))
    assert.are_not.equal(0, code, text)
    assert.truthy(text:find('1 row(s) of table1 have not finished', 1, true) and text:find(': svhn ', 1, true), text)
    -- one dataset: the assembled table is the direct run's (but for the timings)
    args = '--dataset fashion-mnist --subset 200'
    text, code = sh(string.format('%s scripts/table1.lua %s --out %s/res --assemble', shell.rllua, args, quote(dir)))
    assert.are.equal(0, code, text)
    text, code = sh(string.format('%s scripts/table1.lua %s --out %s/direct', shell.rllua, args, quote(dir)))
    assert.are.equal(0, code, text)
    local a = rl.json.decode(read(dir .. '/res/table.json'))
    local b = rl.json.decode(read(dir .. '/direct/table.json'))
    a.rows[1].seconds, b.rows[1].seconds = nil, nil
    assert.truthy(a.command:find('--assemble$'), a.command) -- each records the command that wrote it
    a.command, b.command = nil, nil
    local equal, where = same(a, b)
    assert(equal, 'table.json differs at ' .. tostring(where))
    -- a row measured with other settings is refused
    text, code = sh(string.format('%s scripts/table1.lua --dataset fashion-mnist --subset 100 --out %s/res --assemble',
      shell.rllua, quote(dir)))
    assert.are_not.equal(0, code, text)
    assert.truthy(text:find('was measured with other settings', 1, true), text)
    os.execute('rm -rf ' .. quote(dir))
  end)

  it('a real single-node Slurm runs a small table; the assembled table.json equals a direct run\'s #slurm',
    function()
      local dir = tmpdir()
      local c, why = cluster.start(dir .. '/cluster')
      if not c then return pending(why) end
      local ok, err = pcall(function()
        -- the Slurm run first: the direct one overlaps it on the same cores
        local text, code = sh(string.format('%s %s scripts/table2.lua %s --out %s --slurm', c.env, shell.rllua, ARGS,
          quote(dir .. '/slurm-run')))
        assert(code == 0, text)
        local array, after = text:match('submitted job array (%d+) %(10 rows.-and job (%d+), which writes the table')
        assert(array and after, text)
        local direct, dcode = sh(string.format('%s scripts/table2.lua %s --out %s', shell.rllua, ARGS,
          quote(dir .. '/direct')))
        assert(dcode == 0, direct)
        assert(c.wait_idle(900), 'the Slurm jobs did not finish in 900 s:\n' .. c.queue())
        local log = read(dir .. '/slurm-run/slurm/assemble.log')
        assert(log:find('results in ' .. dir .. '/slurm-run', 1, true), 'assemble.log:\n' .. log)
        for task = 1, 10 do
          local rlog = read(string.format('%s/slurm-run/slurm/row-%d.log', dir, task))
          assert(rlog:find('task ' .. task .. ', row ', 1, true), rlog)
        end
        local a = rl.json.decode(read(dir .. '/direct/table.json'))
        local b = rl.json.decode(read(dir .. '/slurm-run/table.json'))
        -- the command lines differ (--out, and --assemble); everything else is equal
        assert(a.settings.command:find('--out ' .. dir .. '/direct', 1, true), a.settings.command)
        assert(b.settings.command:find('--assemble', 1, true), b.settings.command)
        a.settings.command, b.settings.command = nil, nil
        assert(#a.rows == 10 and a.rows[10].metrics, 'the direct run has no 10th row')
        local equal, where = same(a, b)
        assert(equal, 'table.json differs at ' .. tostring(where))
      end)
      c.stop()
      if not ok then error(tostring(err) .. '\n' .. c.logs(), 0) end
      os.execute('rm -rf ' .. quote(dir))
    end)
end)
