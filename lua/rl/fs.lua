--- rl.fs: the few file-system questions the library asks, in one place:
-- does a path exist, is it a directory, make a directory (with parents),
-- write a file so that a reader never sees half of it.
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

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- mkdir -p `path`; an error naming `who` (the caller, for the message)
-- when it cannot be made.
function fs.mkdir(path, who)
  local ok = os.execute('mkdir -p ' .. shell_quote(path))
  if not (ok == true or ok == 0) then
    error(string.format('%s: cannot create directory %s', who or 'mkdir', path), 0)
  end
end

--- Write `text` to `path` through a temporary file renamed into place, so
-- an interrupted run leaves the old file or the new one, never a torn one.
function fs.write(path, text)
  local tmp = path .. '.tmp'
  local f = assert(io.open(tmp, 'wb'))
  f:write(text)
  assert(f:close())
  assert(os.rename(tmp, path))
end

return fs
