-- The README's code runs as written: its "Training, attacks and checkpoints"
-- block is cut out of README.md and run by rllua in a fresh directory (it
-- writes a checkpoint there), and what it saved loads back.
local shell = require 'helpers.shell'

-- The first ```lua block after the heading `title`.
local function block_after(text, title)
  local at = assert(text:find('\n### ' .. title .. '\n', 1, true), 'README has no heading ' .. title)
  local code = text:match('\n```lua\n(.-)\n```', at)
  return assert(code, 'no lua block after ' .. title)
end

describe('README', function()
  it('the training, attacks and checkpoints example runs as written', function()
    local readme = assert(shell.read('README.md'))
    local code = block_after(readme, 'Training, attacks and checkpoints')
    local dir = shell.tmpdir()
    local f = assert(io.open(dir .. '/example.lua', 'w'))
    -- the example's results, checked below
    f:write(code, '\nprint("g", g.shape[1], g.shape[2], "lip", lip:item() >= 0, "loss", loss:item() == loss:item())\n')
    f:close()
    local bin = shell.rllua:sub(1, 1) == '/' and shell.rllua or os.getenv('PWD') .. '/' .. shell.rllua:gsub('^%./', '')
    local out, rc = shell.sh('cd ' .. shell.quote(dir) .. ' && ' .. shell.quote(bin) .. ' example.lua')
    assert.are.equal(0, rc, out)
    assert.truthy(out:find('g\t64\t1\tlip\ttrue\tloss\ttrue', 1, true), out)
    -- the checkpoints it wrote load back
    local rl = require 'rl'
    local m = rl.models.CNN001 { classes = 10 }
    m:load(dir .. '/cnn001.safetensors')
    assert.truthy(shell.read(dir .. '/run.ckpt'), 'run.ckpt was not written')
    os.execute('rm -rf ' .. shell.quote(dir))
  end)
end)
