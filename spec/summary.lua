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

  -- the newest entry of the failures (or errors) as one streamed line pair
  local function stream_last(failed)
    if not stream then return end
    local list = failed and handler.failures or handler.errors
    local last = list[#list]
    if not last then return end
    stream:write(string.format('%s: %s\n  %s\n', failed and 'FAILED' or 'ERROR', last.name or '?',
      (message(last.message):match('[^\n]*'))))
    stream:flush()
  end

  handler.testEnd = function(element, parent, status)
    io.write(marks[status] or '?')
    io.flush()
    if status == 'failure' or status == 'error' then stream_last(status == 'failure') end
    return nil, true
  end

  -- a file that does not load, or a failure in a describe block or a hook
  -- (before_each, ...): no test ends for these, and the base handler lists
  -- them all as errors
  handler.fileError = function(element)
    if element.descriptor == 'it' then return nil, true end
    io.write('*')
    io.flush()
    stream_last(false)
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
  busted.subscribe({ 'error' }, handler.fileError)
  busted.subscribe({ 'failure' }, handler.fileError)
  return handler
end
