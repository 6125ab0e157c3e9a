-- crash_resume_spec.lua - a training run killed at any point, including
-- inside the write of a checkpoint, and then resumed, ends with the files
-- of a run never killed: metrics.json, model.safetensors and log.csv byte
-- for byte (issue #12).  The kills come from rl.experiment's test hook
-- RL_TEST_KILL_AT=<point>:<epoch>, so they land at the same place every
-- time; the run is spec/helpers/tiny_run.lua (3 epochs, under a second).
local fs = require 'rl.fs'
local listdir = require('rl.core')._data.listdir
local shell = require 'helpers.shell'
local sh, tmpdir, quote = shell.sh, shell.tmpdir, shell.quote

-- one thread: the tensors are tiny, and the spec runs 20 of these in a row
local RUN = 'OMP_NUM_THREADS=1 ' .. shell.rllua .. ' spec/helpers/tiny_run.lua '
-- A command prefix that caps the files the command writes at 64 KiB, in
-- bytes (ulimit -f counts blocks, whose size differs between shells).
local LIMIT_64K = 'prlimit --fsize=65536 env '

-- The run directory under `out` (the one directory there), or nil.
local function run_dir(out)
  local dirs = listdir(out, true)
  return dirs[1] and out .. '/' .. dirs[1]
end

local read = fs.read

-- The temporaries in a run directory: NAME.tmp or NAME.tmp.<pid>.
local function temps(dir)
  local found = {}
  for _, name in ipairs(listdir(dir, false)) do
    if name:match('%.tmp$') or name:match('%.tmp%.%d+$') then found[#found + 1] = name end
  end
  return found
end

-- log.csv with its last column, the wall-clock seconds of each epoch,
-- blanked: the only bytes that two runs of one config cannot share.
local function without_seconds(log)
  return (log:gsub('[^,\n]*\n', '-\n'))
end

-- Runs tiny_run into `out`, killed at `point` (nil: not killed); returns
-- its output and exit status.
local function run(out, point)
  local env = point and ('RL_TEST_KILL_AT=' .. point .. ' ') or ''
  return sh(env .. RUN .. quote(out))
end

-- The killed run stopped where the hook says, and not by some other error.
local function assert_killed_at(out, point)
  local log, code = run(out, point)
  assert.are_not.equal(0, code, log)
  assert.truthy(log:find('RL_TEST_KILL_AT: ending at ' .. point, 1, true), log)
  local dir = assert(run_dir(out), 'no run directory')
  assert.is_nil(read(dir .. '/metrics.json'), 'the run finished before it was killed')
  return dir
end

describe('a run killed and resumed', function()
  local ref -- the files of an uninterrupted run

  setup(function()
    local out = tmpdir()
    local log, code = run(out)
    assert.are.equal(0, code, log)
    local dir = run_dir(out)
    ref = { metrics = read(dir .. '/metrics.json'), model = read(dir .. '/model.safetensors'),
      log = read(dir .. '/log.csv') }
    os.execute('rm -rf ' .. quote(out))
  end)

  -- Resumes the run in `out` and compares its files with the reference.
  -- `before` is the log.csv the killed run left: its rows stay as they
  -- were (a byte prefix of the final log), none repeated.
  local function resume_and_compare(out, before)
    local log, code = run(out)
    assert.are.equal(0, code, log)
    local dir = run_dir(out)
    assert.are.equal(ref.metrics, read(dir .. '/metrics.json'), 'metrics.json')
    assert.is_true(ref.model == read(dir .. '/model.safetensors'), 'model.safetensors differs')
    local got = read(dir .. '/log.csv')
    assert.are.equal(without_seconds(ref.log), without_seconds(got), 'log.csv')
    assert.are.equal(before, got:sub(1, #before), 'the rows written before the kill')
    assert.are.same({}, temps(dir), 'temporaries left')
    assert.is_nil(read(dir .. '/checkpoint.safetensors'), 'a finished run keeps no checkpoint')
    return log
  end

  -- point -> whether the kill leaves a torn temporary file
  local POINTS = {
    { 'train:2', false },      -- mid-epoch, a checkpoint behind
    { 'checkpoint:1', true },  -- inside the first checkpoint's write: nothing to resume from
    { 'checkpoint:2', true },  -- inside a checkpoint's write, the previous one on disk
    { 'log:2', false },        -- checkpoint saved, its log row not written
    { 'model:3', true },       -- inside the write of model.safetensors
    { 'measure:3', false },    -- model saved, metrics.json not
  }
  for _, p in ipairs(POINTS) do
    local point, torn = p[1], p[2]
    it('at ' .. point .. ', ends with the same files', function()
      local out = tmpdir()
      local dir = assert_killed_at(out, point)
      local left = temps(dir)
      if torn then
        assert.are.equal(1, #left, 'one torn temporary: ' .. table.concat(left, ' '))
        assert.truthy(left[1]:match('%.safetensors%.tmp%.%d+$'), left[1])
      else
        assert.are.same({}, left)
      end
      local log = resume_and_compare(out, read(dir .. '/log.csv') or '')
      if torn then assert.truthy(log:find('removed ' .. left[1], 1, true), log) end
      os.execute('rm -rf ' .. quote(out))
    end)
  end

  -- Ctrl-C as checkpoint.save returns, before the run notes the epoch
  -- saved: the message counts from the file on disk (a CI run once said
  -- "resume from epoch 2" here when the rerun resumed from 3)
  it('interrupted just as a checkpoint is saved, says the epoch a rerun resumes from', function()
    local out = tmpdir()
    local log, code = run(out, 'interrupt:2')
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find('RL_TEST_KILL_AT: ending at interrupt:2', 1, true), log)
    assert.truthy(log:find('interrupted; rerun the same command to resume from epoch 3', 1, true), log)
    local dir = run_dir(out)
    assert.are.equal(2, require('rl').checkpoint.epoch(dir .. '/checkpoint.safetensors'))
    local again = resume_and_compare(out, read(dir .. '/log.csv') or '')
    assert.truthy(again:find('resuming after epoch 2', 1, true), again)
    os.execute('rm -rf ' .. quote(out))
  end)

  -- Ctrl-C in the final measurement: every epoch is trained and saved, so
  -- "resume from epoch 4" of a 3-epoch run was wrong (a tester's find)
  it('interrupted in the final measurement, says the rerun measures the run, and the rerun does', function()
    local out = tmpdir()
    local log, code = run(out, 'eval:3')
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find('RL_TEST_KILL_AT: ending at eval:3', 1, true), log)
    assert.truthy(log:find('interrupted in the final measurement (all 3 epochs trained and saved); rerun the same ' ..
      'command to measure the run', 1, true), log)
    assert.falsy(log:find('resume from epoch', 1, true), log)
    local dir = run_dir(out)
    local again = resume_and_compare(out, read(dir .. '/log.csv') or '')
    assert.truthy(again:find('resuming after epoch 3', 1, true), again)
    os.execute('rm -rf ' .. quote(out))
  end)

  it('killed again while resuming, ends with the same files', function()
    local out = tmpdir()
    local dir = assert_killed_at(out, 'checkpoint:2')
    local log, code = run(out, 'log:3')
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find('resuming after epoch 1', 1, true), log)
    resume_and_compare(out, read(dir .. '/log.csv'))
    os.execute('rm -rf ' .. quote(out))
  end)

  it('a checkpoint that cannot be written stops the run and leaves the last one and the log intact', function()
    local out = tmpdir()
    local dir = assert_killed_at(out, 'train:2')
    local ckpt, log_before = read(dir .. '/checkpoint.safetensors'), read(dir .. '/log.csv')
    -- a file-size limit fails the checkpoint's write as a full disk would
    -- (EFBIG for ENOSPC), without root; SIGXFSZ ignored turns the signal
    -- into that error
    local log, code = sh(string.format("sh -c %s", quote("trap '' XFSZ; " .. LIMIT_64K .. RUN .. quote(out))))
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find('checkpoint.safetensors', 1, true), log)
    assert.truthy(log:find('File too large', 1, true), log)
    assert.is_true(ckpt == read(dir .. '/checkpoint.safetensors'), 'the previous checkpoint changed')
    assert.are.equal(log_before, read(dir .. '/log.csv'))
    assert.are.same({}, temps(dir))
    resume_and_compare(out, log_before) -- and it resumes from there once there is room
    os.execute('rm -rf ' .. quote(out))
  end)
end)

describe('a run being trained', function()
  it('is refused to a second process on this host; a dead process\'s lock is taken over', function()
    local out = tmpdir()
    local log, code = run(out) -- makes the run directory (and finishes it)
    assert.are.equal(0, code, log)
    local dir = run_dir(out)
    assert.is_false(fs.exists(dir .. '/running'), 'a finished run leaves no lock')
    for _, f in ipairs { 'metrics.json', 'model.safetensors', 'checkpoint.safetensors', 'log.csv' } do os.remove(dir .. '/' .. f) end
    -- a live process of this host holds the run
    local p = io.popen('sleep 60 >/dev/null 2>&1 & echo $!')
    local pid = p:read('l')
    p:close()
    local host = read('/proc/sys/kernel/hostname'):gsub('%s+$', '')
    fs.mkdir(dir .. '/running', 'spec')
    fs.write(dir .. '/running/owner', host .. ' ' .. pid .. '\n')
    log, code = run(out)
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find('is being trained by process ' .. pid .. ' on this host', 1, true), log)
    assert.is_false(fs.exists(dir .. '/metrics.json'), 'the second process trained anyway')
    -- once it is gone, its lock is stale: taken over, the run done, the lock removed
    os.execute('kill ' .. pid)
    os.execute('sleep 0.3')
    log, code = run(out)
    assert.are.equal(0, code, log)
    assert.truthy(fs.exists(dir .. '/metrics.json'), log)
    assert.is_false(fs.exists(dir .. '/running'))
    os.execute('rm -rf ' .. quote(out))
  end)
end)

describe('rl.fs', function()
  it('write: a failed write names the file and the cause, and keeps the old file', function()
    local dir = tmpdir()
    local path = dir .. '/table.md'
    fs.write(path, 'old\n')
    -- a write that outgrows the file-size limit fails as on a full disk
    local code = string.format("require('rl.fs').write(%q, string.rep('x', 1 << 20))", path)
    local log, rc = sh(string.format('sh -c %s', quote("trap '' XFSZ; " .. LIMIT_64K .. shell.rllua .. ' -e '
      .. quote(code))))
    assert.are_not.equal(0, rc, log)
    assert.truthy(log:find('cannot write ' .. path .. ': ', 1, true), log)
    assert.truthy(log:find('File too large', 1, true), log)
    assert.are.equal('old\n', read(path))
    assert.are.same({}, temps(dir))
    local ok, msg = pcall(fs.write, dir .. '/no/such/dir/x', 'y')
    assert.is_false(ok)
    assert.truthy(msg:find('cannot write ' .. dir .. '/no/such/dir/x: ', 1, true), msg)
    assert.truthy(msg:find('No such file or directory', 1, true), msg)
    os.execute('rm -rf ' .. quote(dir))
  end)

  it("remove_stale_temps: removes dead writers' temporaries in one directory, nothing else", function()
    local dir = tmpdir()
    local dead = math.tointeger(tonumber((sh('sh -c "echo \\$\\$"'))))
    assert.is_false(fs.alive(dead))
    local names = {
      ['checkpoint.safetensors.tmp.' .. dead] = false, -- its process is gone
      ['config.json.tmp'] = false,                    -- older versions' name, no pid
      ['model.safetensors.tmp.1'] = true,             -- pid 1 is alive: a write in progress
      ['notes.tmp.txt'] = true,                       -- not a temporary's name
      ['notes.md.tmp.' .. dead] = true,               -- not a file of the run's
      ['log.csv'] = true,
    }
    for name in pairs(names) do assert(io.open(dir .. '/' .. name, 'w')):close() end
    shell.mkdir(dir .. '/sub')
    assert(io.open(dir .. '/sub/x.tmp.' .. dead, 'w')):close()
    local removed = fs.remove_stale_temps(dir, { 'checkpoint.safetensors', 'config.json',
      'model.safetensors', 'log.csv' })
    table.sort(removed)
    assert.are.same({ 'checkpoint.safetensors.tmp.' .. dead, 'config.json.tmp' }, removed)
    for name, kept in pairs(names) do assert.are.equal(kept, fs.exists(dir .. '/' .. name), name) end
    assert.is_true(fs.exists(dir .. '/sub/x.tmp.' .. dead), 'a subdirectory is not its business')
    os.execute('rm -rf ' .. quote(dir))
  end)
end)
