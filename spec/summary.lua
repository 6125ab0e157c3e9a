-- summary.lua - the busted output handler `make test` uses.
--
-- Prints a mark per test ('+' pass, '-' failure, '*' error, '.' pending),
-- then every failure and error in full, and ends with exactly one line
-- "N passed, N failed" (failed counts failures and errors; pending tests
-- are listed above it and never counted as passed).
return function(options)
  local busted = require 'busted'
  local pretty = require 'pl.pretty'
  local handler = require 'busted.outputHandlers.base'()
  local marks = { success = '+', failure = '-', error = '*', pending = '.' }

  local function message(m)
    if type(m) == 'string' then return m end
    if m == nil then return 'nil error' end
    return pretty.write(m)
  end

  local function describe(f, kind)
    local where = f.element and f.element.trace and f.element.trace.short_src
    local s = kind .. ': ' .. (f.name or '?')
    if where then s = s .. '\n  at ' .. where .. ':' .. f.element.trace.currentline end
    s = s .. '\n' .. message(f.message)
    if f.trace and f.trace.traceback and options.verbose then
      s = s .. '\n' .. f.trace.traceback
    end
    return s
  end

  -- RL_SPEC_STREAM=FILE (scripts/gpu_check.sh) also appends each failure's
  -- name and first line to FILE as it happens, so that a run killed by a
  -- time limit still says what failed
  local stream = os.getenv('RL_SPEC_STREAM')
  stream = stream and stream ~= '' and assert(io.open(stream, 'a')) or nil

  handler.testEnd = function(element, parent, status)
    io.write(marks[status] or '?')
    io.flush()
    if stream and (status == 'failure' or status == 'error') then
      local list = status == 'failure' and handler.failures or handler.errors
      local last = list[#list]
      local first = last and message(last.message):match('[^\n]*') or ''
      stream:write(string.format('%s: %s\n  %s\n', status == 'failure' and 'FAILED' or 'ERROR',
        handler.getFullName(element), first))
      stream:flush()
    end
    return nil, true
  end

  handler.fileError = function()
    io.write('*')
    io.flush()
    return nil, true
  end

  handler.suiteEnd = function()
    io.write('\n')
    for _, p in ipairs(handler.pendings) do
      io.write('\nPENDING (not run): ' .. (p.name or '?') .. '\n')
    end
    for _, f in ipairs(handler.failures) do io.write('\n' .. describe(f, 'FAILED') .. '\n') end
    for _, e in ipairs(handler.errors) do io.write('\n' .. describe(e, 'ERROR') .. '\n') end
    local failed = handler.failuresCount + handler.errorsCount
    io.write(string.format('\n%d pending, %.1f s\n', handler.pendingsCount, handler.getDuration()))
    io.write(string.format('%d passed, %d failed\n', handler.successesCount, failed))
    io.flush()
    return nil, true
  end

  busted.subscribe({ 'test', 'end' }, handler.testEnd, { predicate = handler.cancelOnPending })
  busted.subscribe({ 'suite', 'end' }, handler.suiteEnd)
  busted.subscribe({ 'error', 'file' }, handler.fileError)
  busted.subscribe({ 'failure', 'file' }, handler.fileError)
  busted.subscribe({ 'error', 'describe' }, handler.fileError)
  busted.subscribe({ 'failure', 'describe' }, handler.fileError)
  return handler
end
