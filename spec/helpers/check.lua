--- Assertion helpers for error messages, shared by the specs.
local assert = require 'luassert' -- busted's, which a helper module does not see as a global
local M = {}

--- The error message of fn(...); fails the test when fn succeeds.
function M.err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, 'expected an error')
  return tostring(e)
end

--- Asserts that s contains each of the plain strings.
function M.has(s, ...)
  for _, p in ipairs({ ... }) do
    assert(s:find(p, 1, true), string.format('expected %q in the message:\n%s', p, s))
  end
end

return M
