-- A real single-node Slurm cluster for the specs: Debian's munged,
-- slurmctld and slurmd, configured in a temporary directory on localhost
-- (free ports, the current user as SlurmUser, no cgroups, no accounting),
-- so that `sbatch` run with SLURM_CONF = cluster.conf submits to it.
--
--   local cluster = require('helpers.slurm_cluster')
--   local c, why = cluster.start(dir)   -- nil and why when Slurm is missing
--   os.execute('SLURM_CONF=' .. c.conf .. ' sbatch ...')
--   c.wait_idle(600)                    -- every job finished
--   c.stop()
local shell = require 'helpers.shell'

local cluster = {}

local SBIN = { munged = '/usr/sbin/munged', slurmctld = '/usr/sbin/slurmctld', slurmd = '/usr/sbin/slurmd' }

local function read(path) return shell.read(path) or '' end

-- A command's output (stderr joined) and whether it succeeded.
local function sh(cmd)
  local out, code = shell.sh(cmd)
  return out, code == 0
end

local function sleep(s) os.execute('sleep ' .. s) end

--- Whether the packages are there: nil, or a sentence naming what is missing.
function cluster.missing()
  local gone = {}
  for _, name in ipairs { 'munged', 'slurmctld', 'slurmd' } do
    if not io.open(SBIN[name]) then gone[#gone + 1] = SBIN[name] end
  end
  for _, name in ipairs { 'sbatch', 'squeue', 'sinfo', 'munge' } do
    local _, ok = sh('command -v ' .. name)
    if not ok then gone[#gone + 1] = name end
  end
  if #gone == 0 then return nil end
  return 'Slurm is not installed (missing: ' .. table.concat(gone, ', ') ..
    '); `make deps` installs slurmctld, slurmd, slurm-client and munge'
end

-- Two TCP ports nobody listens on (the kernel's choice, then released).
local function free_ports()
  local out = sh([[/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])']])
  local a, b = out:match('(%d+) (%d+)')
  assert(a, 'slurm_cluster: no free ports: ' .. out)
  return a, b
end

--- Start the cluster in `dir` (created).  Returns the cluster, or nil and
-- the reason when the packages are missing; raises, with the daemons'
-- logs, when they are there but the cluster does not come up.
function cluster.start(dir)
  local why = cluster.missing()
  if why then return nil, why end
  shell.mkdir(dir)
  for _, d in ipairs { 'munge', 'state', 'spool', 'log' } do shell.mkdir(dir .. '/' .. d) end
  -- munged wants its key and directory private to the user running it
  assert(os.execute(string.format('chmod 700 %s %s/munge && head -c 128 /dev/urandom > %s/munge/munge.key && ' ..
    'chmod 600 %s/munge/munge.key', shell.quote(dir), shell.quote(dir), shell.quote(dir), shell.quote(dir))))
  local user = sh('id -un'):gsub('%s+$', '')
  local host = sh('hostname -s'):gsub('%s+$', '')
  local cpus = sh('nproc'):gsub('%s+$', '')
  local ctld_port, d_port = free_ports()
  local c = { dir = dir, conf = dir .. '/slurm.conf', pids = {} }
  local conf = {
    'ClusterName=rlluaspec',
    string.format('SlurmctldHost=%s(127.0.0.1)', host),
    'SlurmctldPort=' .. ctld_port, 'SlurmdPort=' .. d_port,
    'SlurmUser=' .. user, 'SlurmdUser=' .. user,
    'AuthType=auth/munge', 'CredType=cred/munge', 'AuthInfo=socket=' .. dir .. '/munge/socket',
    'StateSaveLocation=' .. dir .. '/state', 'SlurmdSpoolDir=' .. dir .. '/spool',
    'SlurmctldPidFile=' .. dir .. '/slurmctld.pid', 'SlurmdPidFile=' .. dir .. '/slurmd.pid',
    'SlurmctldLogFile=' .. dir .. '/log/slurmctld.log', 'SlurmdLogFile=' .. dir .. '/log/slurmd.log',
    'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SwitchType=switch/none', 'MpiDefault=none',
    'SchedulerType=sched/builtin', 'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core',
    'JobAcctGatherType=jobacct_gather/none', 'AccountingStorageType=accounting_storage/none',
    'ReturnToService=2', 'MinJobAge=600',
    string.format('NodeName=%s NodeAddr=127.0.0.1 CPUs=%s State=UNKNOWN', host, cpus),
    'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
  }
  local f = assert(io.open(c.conf, 'w'))
  f:write(table.concat(conf, '\n'), '\n')
  f:close()
  c.env = 'SLURM_CONF=' .. shell.quote(c.conf)

  -- each daemon in the foreground, in the background of a shell: its pid
  local function spawn(name, args)
    local p = io.popen(string.format('%s %s > %s/log/%s.out 2>&1 & echo $!', SBIN[name], args, shell.quote(dir), name))
    c.pids[name] = math.tointeger(tonumber(p:read('l')))
    p:close()
  end
  local function logs()
    local parts = {}
    for _, name in ipairs { 'munged.out', 'slurmctld.out', 'slurmctld.log', 'slurmd.out', 'slurmd.log' } do
      parts[#parts + 1] = '--- ' .. name .. '\n' .. read(dir .. '/log/' .. name):sub(-2000)
    end
    return table.concat(parts, '\n')
  end
  c.logs = logs
  local m = dir .. '/munge/'
  spawn('munged', string.format('-F --force --socket=%s --key-file=%s --pid-file=%s --seed-file=%s --log-file=%s',
    shell.quote(m .. 'socket'), shell.quote(m .. 'munge.key'), shell.quote(m .. 'pid'), shell.quote(m .. 'seed'),
    shell.quote(dir .. '/log/munged.log')))
  for _ = 1, 50 do
    if io.open(m .. 'socket') then break end
    sleep(0.1)
  end
  spawn('slurmctld', '-D -f ' .. shell.quote(c.conf))
  sleep(1)
  spawn('slurmd', '-D -f ' .. shell.quote(c.conf))

  function c.stop()
    for _, name in ipairs { 'slurmd', 'slurmctld', 'munged' } do
      if c.pids[name] then os.execute('kill ' .. c.pids[name] .. ' 2>/dev/null') end
    end
    -- wait for them to go, so that the directory can be removed
    for _ = 1, 50 do
      local alive = false
      for _, p in pairs(c.pids) do alive = alive or io.open('/proc/' .. p .. '/stat') ~= nil end
      if not alive then break end
      sleep(0.1)
    end
    c.pids = {}
  end

  --- squeue's lines for this cluster's jobs (empty when none is left).
  function c.queue()
    return (sh(c.env .. ' squeue -h -o "%i %T %r"'))
  end

  --- Wait until no job is queued or running, up to `seconds`; false on timeout.
  function c.wait_idle(seconds)
    local t0 = os.time()
    while os.time() - t0 < seconds do
      local q, ok = sh(c.env .. ' squeue -h -o "%i"')
      if ok and q:match('^%s*$') then return true end
      sleep(1)
    end
    return false
  end

  -- up when the node is idle
  local t0 = os.time()
  while true do
    local state = sh(c.env .. ' sinfo -h -o %T')
    if state:match('^idle') then break end
    if os.time() - t0 > 30 then
      c.stop()
      error('slurm_cluster: the node did not come up in 30 s (sinfo: ' .. state:gsub('%s+$', '') .. ')\n' .. logs(), 0)
    end
    sleep(0.5)
  end
  return c
end

return cluster
