--- What specs that run commands share: a fresh temporary directory, a
-- command's output and exit status, shell quoting, and whether Debian's
-- python3-torch is there for the PyTorch cross-checks.
local M = {}

--- The rllua program the specs run: ./rllua, or $RLLUA_BIN (make test-asan
-- points it at build-asan/rllua).
M.rllua = os.getenv('RLLUA_BIN') or './rllua'

--- The stock interpreter for child processes that load rl.core: lua5.4, or
-- $RL_LUA (make test-asan's, which preloads the ASan runtime).
M.lua = os.getenv('RL_LUA') or 'lua5.4'

M.quote = require('rl.fs').quote

--- The text of the file at path, or nil when it cannot be read.
M.read = require('rl.fs').read

function M.mkdir(p) assert(os.execute('mkdir -p ' .. M.quote(p))) end

function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute('mkdir -p ' .. M.quote(d)))
  return d
end

--- Runs cmd with stderr joined to stdout; returns the output and the exit
-- status (0 on success).
function M.sh(cmd)
  local p = io.popen(cmd .. ' 2>&1')
  local out = p:read('a')
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

--- Runs the Lua code in a fresh rllua process, with env (assignments
-- such as 'RL_CPU_CONV=im2col') before the command; returns the output
-- and the exit status.
function M.rllua_code(code, env)
  local path = os.tmpname()
  local f = assert(io.open(path, 'w'))
  f:write(code)
  f:close()
  local out, status = M.sh((env or '') .. ' ' .. M.rllua .. ' ' .. M.quote(path))
  os.remove(path)
  return out, status
end

function M.have_torch()
  local ok = os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")
  return ok == true or ok == 0
end

return M
