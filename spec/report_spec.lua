-- report.lua: one page of a table's settings, table and figures, as
-- Markdown and self-contained HTML, looked at in a real headless browser
-- (Debian's chromium, installed by make deps): the screenshot is written
-- and is the size of a page with content, not an error page.
local shell = require 'helpers.shell'

local function chromium()
  for _, c in ipairs { '/usr/bin/chromium', '/usr/bin/chromium-browser' } do
    local f = io.open(c)
    if f then f:close(); return c end
  end
end

describe('scripts/report.lua', function()
  it('writes report.md and report.html with the settings, the table and the figures', function()
    local dir = shell.tmpdir()
    local args = '--dataset synthetic --subset 64 --test-subset 16 --eval-subset 16 --batch 32 --epochs 1 --quick'
    local ids = shell.sh(string.format('%s scripts/table2.lua %s --list', shell.rllua, args))
    local n = 0
    for id in ids:gmatch('(%S+)%s+synthetic%s+[^\n]+\n') do
      if n < 2 then
        local out, code = shell.sh(string.format('%s scripts/table2.lua %s --out %s --only %s', shell.rllua, args,
          shell.quote(dir), id))
        assert.are.equal(0, code, out)
      end
      n = n + 1
    end
    local out, code = shell.sh(string.format('%s scripts/report.lua %s', shell.rllua, shell.quote(dir)))
    assert.are.equal(0, code, out)
    assert.truthy(out:find('(2 figures)', 1, true), out)
    local html = io.open(dir .. '/report.html'):read('a')
    assert.truthy(html:find('<h2>Table 2: accuracy, robustness and local Lipschitzness</h2>', 1, true))
    assert.truthy(html:find('<strong>QUICK RUN', 1, true))
    assert.truthy(html:find('<th class="r">test acc</th>', 1, true))
    assert.truthy(html:find('<td class="l">Natural</td>', 1, true))
    assert.are.equal(2, select(2, html:gsub('<svg', '')))
    local md = io.open(dir .. '/report.md'):read('a')
    assert.truthy(md:find('![figures/synthetic_acc_adv.svg](figures/synthetic_acc_adv.png)', 1, true), md)
    -- a report written elsewhere links to the figures where they are;
    -- its directory is made (it failed "cannot write .../rep.md.tmp.N")
    local other = shell.tmpdir()
    out, code = shell.sh(string.format('%s scripts/report.lua %s --out %s', shell.rllua, shell.quote(dir),
      shell.quote(other .. '/new/rep')))
    assert.are.equal(0, code, out)
    local md2 = io.open(other .. '/new/rep.md'):read('a')
    local links = 0
    for target in md2:gmatch('!%[[^%]]*%]%(([^)]+)%)') do
      links = links + 1
      local p = target:sub(1, 1) == '/' and target or other .. '/new/' .. target
      assert.truthy(io.open(p, 'rb'), 'the link ' .. target .. ' of ' .. other .. '/new/rep.md leads nowhere')
    end
    assert.are.equal(2, links, md2)
    os.execute('rm -rf ' .. shell.quote(other))

    local browser = chromium()
    if not browser then
      os.execute('rm -rf ' .. shell.quote(dir))
      return pending('chromium is not installed (make deps installs it): the page was not looked at')
    end
    local shot = dir .. '/report.png'
    local log = shell.sh(string.format('cd %s && timeout 120 %s --headless --no-sandbox --disable-gpu ' ..
      '--screenshot=%s --window-size=1280,1600 file://%s/report.html', shell.quote(dir), browser, shell.quote(shot), dir))
    local f = io.open(shot, 'rb')
    assert.truthy(f, 'no screenshot: ' .. log)
    local png = f:read('a')
    f:close()
    assert.are.equal('\137PNG', png:sub(1, 4))
    -- IHDR: the width and height chromium drew
    local w = string.unpack('>I4', png, 17)
    local h = string.unpack('>I4', png, 21)
    assert.are.same({ 1280, 1600 }, { w, h })
    assert.is_true(#png > 30000, 'a page with a table and two figures, not a blank one: ' .. #png .. ' bytes')
    os.execute('rm -rf ' .. shell.quote(dir))
  end)
end)
