--- rl.fs: the few file-system questions the library asks, in one place:
-- does a path exist, is it a directory, make a directory (with parents),
-- write a file so that a reader never sees half of it, and clear away the
-- temporary files of writers that died.
local listdir = require('rl.core')._data.listdir

local fs = {}

--- Whether `path` can be opened for reading (a file or a directory).
function fs.exists(path)
  local f = io.open(path, 'rb')
  if f then f:close() end
  return f ~= nil
end

--- Whether `path` is a directory that can be listed.
function fs.is_dir(path)
  return (pcall(listdir, path, true))
end

--- `s` as one shell word (single-quoted).
function fs.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local shell_quote = fs.quote

local function ran(ok) return ok == true or ok == 0 end

--- mkdir -p `path`; an error naming `who` (the caller, for the message)
-- when it cannot be made.
function fs.mkdir(path, who)
  -- mkdir's own complaint ("Permission denied", "Not a directory") is kept
  -- for the message rather than left on the terminal
  local p = io.popen('mkdir -p ' .. shell_quote(path) .. ' 2>&1')
  local said = p:read('a')
  if not ran(p:close()) then
    local why = said:match('[^\n]*: ([^:\n]+)\n?$')
    error(string.format('%s: cannot create directory %s%s', who or 'mkdir', path, why and ' (' .. why .. ')' or ''), 0)
  end
end

local pid
--- This process's id.  Lua has no getpid: a shell started by popen is our
-- child, so its $PPID is us.  Asked once.
function fs.pid()
  if not pid then
    local p = io.popen('echo $PPID')
    pid = math.tointeger(tonumber(p:read('l')))
    p:close()
    assert(pid, 'rl.fs: cannot tell this process id')
  end
  return pid
end

--- The absolute path of `path` with every link resolved (readlink -f),
-- or nil when it cannot be resolved.
function fs.realpath(path)
  local p = io.popen('readlink -f -- ' .. shell_quote(path) .. ' 2>/dev/null')
  local r = p:read('l')
  p:close()
  return r ~= '' and r or nil
end

--- Whether process `p` exists.  /proc answers for processes of every user
-- (kill -0 fails on another user's with EPERM, which would read as dead);
-- kill -0 is the fallback where there is no /proc.
function fs.alive(p)
  if fs.exists('/proc/self') then
    -- a zombie (ended, not yet reaped by its parent) is not alive
    local stat = fs.read('/proc/' .. p .. '/stat')
    return stat ~= nil and stat:match('%) (%a)') ~= 'Z'
  end
  return ran(os.execute('kill -0 ' .. p .. ' 2>/dev/null'))
end

--- The bytes of the file at path, or nil when it cannot be read.
function fs.read(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('a')
  f:close()
  return s
end

--- Write `text` to `path` through a temporary file renamed into place, so
-- an interrupted run leaves the old file or the new one, never a torn one.
-- The temporary is `path.tmp.<pid>`, the name rl.save uses, so that
-- fs.remove_stale_temps knows both.  A failure (a full disk, a read-only
-- directory) removes the temporary and raises an error naming the file and
-- the cause.
function fs.write(path, text)
  local tmp = path .. '.tmp.' .. fs.pid()
  local f, err = io.open(tmp, 'wb')
  local ok = f ~= nil
  if ok then ok, err = f:write(text) end
  if f then
    local closed, cerr = f:close() -- flushes: a full disk shows here
    if ok and not closed then ok, err = false, cerr end
  end
  if ok then ok, err = os.rename(tmp, path) end
  if not ok then
    os.remove(tmp)
    error(string.format('cannot write %s: %s', path, tostring(err)), 0)
  end
end

--- Remove the temporary files that writers killed mid-write left in `dir`
-- (not below it), for the files named in `names` only (NAME of each):
-- `NAME.tmp.<pid>` (rl.save, fs.write) whose process is gone or is this one
-- (which is not writing while it cleans), and `NAME.tmp` (written by older
-- versions).  A live process's temporary, and any other file, is kept.
-- Returns the names removed.
function fs.remove_stale_temps(dir, names)
  local ours = {}
  for _, n in ipairs(names) do ours[n] = true end
  local removed = {}
  for _, name in ipairs(listdir(dir, false)) do
    local base, owner = name:match('^(.-)%.tmp%.(%d+)$')
    local stale
    if base then
      stale = ours[base] and (tonumber(owner) == fs.pid() or not fs.alive(owner))
    else
      base = name:match('^(.-)%.tmp$')
      stale = base and ours[base]
    end
    if stale and os.remove(dir .. '/' .. name) then removed[#removed + 1] = name end
  end
  return removed
end

return fs
