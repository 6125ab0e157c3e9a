-- plot_spec.lua - rl.plot: figures drawn through gnuplot; options checked
-- before anything is written (unknown keys and styles, key places,
-- non-finite data, log axes over x <= 0); no text given (titles, labels,
-- the key, the path) can add a gnuplot or shell command; gnuplot's own
-- message when it fails, "not installed" only when it is missing.
local rl = require 'rl'
local plot = require 'rl.plot'
local shell = require 'helpers.shell'
local check = require 'helpers.check'
local err_of, has = check.err_of, check.has

local dir
setup(function() dir = shell.tmpdir() end)
teardown(function() os.execute('rm -rf ' .. shell.quote(dir)) end)

local function fig(extra, series)
  local o = { title = 't', xlabel = 'x', ylabel = 'y',
    series = { series or { title = 'a', x = { 1, 2, 3 }, y = { 3, 4, 2 } } } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function read(path) return assert(shell.read(path), path) end
local function exists(path) return shell.read(path) ~= nil end

describe('plot.figure', function()
  it('is rl.plot', function()
    assert.are.equal(plot, require 'rl.plot')
    assert.are.equal('function', type(plot.figure))
  end)

  it('draws a PNG and an SVG, with its data and script beside them', function()
    local f = plot.figure(dir .. '/ok', fig { key = 'bottom left', vlines = { { x = 2, title = 'two' } } })
    assert.are.equal(dir .. '/ok.png', f.png)
    assert.are.equal('\137PNG', read(f.png):sub(1, 4))
    assert.truthy(read(f.svg):find('<svg', 1, true))
    has(read(dir .. '/ok.gp'), 'set key inside bottom left box opaque', 'set title "t" noenhanced')
    assert.is_false(exists(dir .. '/ok.gp.err'))
  end)

  it('escapes every text, so that none adds a gnuplot or shell command', function()
    local mark = dir .. '/PWNED'
    local cmd = 'system "touch ' .. mark .. '"'
    local bq = '`touch ' .. mark .. '`'
    plot.figure(dir .. '/esc', fig({
      title = 'a\n' .. cmd .. '\n', xlabel = "q'" .. bq, ylabel = 'b"\\' .. '\r\1',
      vlines = { { x = 2, title = '"\n' .. cmd .. bq } },
    }, { title = bq .. '"\n' .. cmd, x = { 1, 2 }, y = { 1, 2 }, labels = { 'l"\n' .. cmd, bq } }))
    assert.is_false(exists(mark), 'a title ran a command')
    local gp = read(dir .. '/esc.gp')
    has(gp, 'set title "a\\n' .. 'system \\"touch', 'set xlabel "q\'\\140touch', 'set ylabel "b\\"\\\\\\015\\001"')
    assert.is_nil(gp:find('`', 1, true))
    -- a label cannot split its data row
    assert.are.equal(2, select(2, read(dir .. '/esc.dat'):gsub('\n', '')))
    -- nor can the path of the figure reach the shell
    local stem = dir .. "/q'$(touch PW1)`touch PW2`"
    plot.figure(stem, fig())
    assert.is_true(exists(stem .. '.png'))
    assert.is_false(exists('PW1') or exists('PW2') or exists(dir .. '/PW1'), 'a path ran a command')
  end)

  it('takes only gnuplot key places, on one line', function()
    local e = err_of(plot.figure, dir .. '/k', fig { key = 'top right\nsystem "touch ' .. dir .. '/PWNED"' })
    has(e, "plot.figure: key must be 'below' or one or two of top, bottom, center, left, right",
      [[got "top right\nsystem]])
    assert.is_nil(e:find('\n'), e)
    assert.is_false(exists(dir .. '/PWNED'))
    assert.is_false(exists(dir .. '/k.gp'), 'checked before anything is written')
    has(err_of(plot.figure, dir .. '/k', fig { key = 'upper left' }), "got \"upper left\"", 'not upper and lower')
    for _, k in ipairs { 'top bottom', 'left left', 'below left', 'top; set', '' } do
      has(err_of(plot.figure, dir .. '/k', fig { key = k }), 'key must be')
    end
    plot.figure(dir .. '/k', fig { key = ' center ' })
    has(read(dir .. '/k.gp'), 'set key inside center box')
    plot.figure(dir .. '/k', fig { key = 'below' })
    has(read(dir .. '/k.gp'), 'set key outside below center horizontal')
  end)

  it('refuses unknown options and styles, naming the valid ones', function()
    has(err_of(plot.figure, dir .. '/u', fig { x_range = { 0, 1 } }),
      "plot.figure: unknown option 'x_range' (did you mean 'xrange'?)", 'logx')
    has(err_of(plot.figure, dir .. '/u', fig { ylog = true }), "unknown option 'ylog'")
    has(err_of(plot.figure, dir .. '/u', fig({}, { title = 'a', x = { 1 }, y = { 1 }, style = 'bars' })),
      "series 1 ('a'): style must be one of 'linespoints', 'points', 'errorbars', 'boxes', got the string 'bars'")
    has(err_of(plot.figure, dir .. '/u', fig({}, { title = 'a', x = { 1 }, y = { 1 }, color = 2 })),
      "series 1 ('a'): unknown option 'color'")
    has(err_of(plot.figure, dir .. '/u', fig { vlines = { { x = 1, label = 'l' } } }),
      "vlines[1]: unknown option 'label'")
    has(err_of(plot.figure, dir .. '/u', { title = 't', xlabel = 'x', series = {} }), 'the option ylabel is required')
    has(err_of(plot.figure, dir .. '/u', fig({}, { title = 'a', x = { 1, 2 }, y = { 1 } })), 'got 2 and 1')
    has(err_of(plot.figure, dir .. '/u', fig({}, { title = 'a', x = { 1 }, y = { 1 }, style = 'errorbars' })),
      "style 'errorbars' needs err")
    has(err_of(plot.figure, dir .. '/u', fig { xrange = { 2, 1 } }), 'xrange must be {lo, hi} with lo < hi')
    has(err_of(plot.figure, nil, fig()), 'plot.figure: the first argument must be a path stem')
  end)

  it('refuses non-finite data and a log axis over x <= 0, naming the series and point', function()
    has(err_of(plot.figure, dir .. '/n', fig({}, { title = 'pgd', x = { 1, 2 }, y = { 1, 0 / 0 } })),
      "plot.figure: series 1 ('pgd'): y[2] must be finite")
    has(err_of(plot.figure, dir .. '/n', fig({}, { title = 'pgd', x = { math.huge, 2 }, y = { 1, 2 } })),
      "series 1 ('pgd'): x[1] must be finite, got inf")
    has(err_of(plot.figure, dir .. '/n', fig({}, { title = 'e', x = { 1 }, y = { 1 }, err = { -1 / 0 } })),
      'err[1] must be finite')
    has(err_of(plot.figure, dir .. '/n', fig({ logx = true }, { title = 'pgd', x = { 0, 1 }, y = { 1, 2 } })),
      "series 1 ('pgd'): logx needs x > 0, got x[1] = 0")
    has(err_of(plot.figure, dir .. '/n', fig { logx = true, xrange = { -1, 3 } }), 'logx needs xrange > 0')
    has(err_of(plot.figure, dir .. '/n', fig { yrange = { 0, 0 / 0 } }), 'yrange[2] must be finite')
    -- a line at the caller's position
    local ok, e = pcall(function() plot.figure(dir .. '/n', fig { ylog = true }) end)
    assert.is_false(ok)
    has(e, 'plot_spec.lua:')
    local f = plot.figure(dir .. '/log', fig({ logx = true }, { title = 'a', x = { 0.001, 0.1, 10 }, y = { 1, 2, 3 } }))
    assert.is_true(exists(f.png))
  end)

  it('puts the key below the plot unless told, where it covers no data', function()
    plot.figure(dir .. '/dk', fig())
    local gp = read(dir .. '/dk.gp')
    has(gp, 'set key outside below center horizontal box')
    assert.is_nil(gp:find('set key inside', 1, true), gp)
    -- a marked value's label goes on the side with room: right of a line in
    -- the left half, left of one in the right half, inside the frame
    plot.figure(dir .. '/vl', fig { vlines = { { x = 1.2, title = 'low' }, { x = 2.9, title = 'high' } } })
    has(read(dir .. '/vl.gp'), 'set label 1 "low" at 1.2, graph 0.95 offset char 0.5,0',
      'set label 2 "high" at 2.9, graph 0.89 right offset char -0.5,0')
  end)

  it('draws bars y +- err, or from lo to hi, into the .dat and the script', function()
    plot.figure(dir .. '/err', fig({}, { title = 'e', x = { 1, 2 }, y = { 50, 0 }, err = { 5, 0 }, labels = { 'p', 'q' } }))
    has(read(dir .. '/err.dat'), '1 50 5 "p"\n2 0 0 "q"\n')
    has(read(dir .. '/err.gp'), 'index 0 using 1:2:3 with yerrorlines', 'using 1:2:4 with labels')
    -- a Wilson interval: not symmetric, and never below 0 at 0 %
    local f = plot.figure(dir .. '/lohi', fig({}, { title = 'w', x = { 0, 0.1, 0.2 }, y = { 90, 40, 0 },
      lo = { 83, 31, 0 }, hi = { 94, 50, 3.7 }, labels = { 'a', 'b', 'c' } }))
    assert.is_true(exists(f.png))
    has(read(dir .. '/lohi.dat'), '0 90 83 94 "a"\n0.1 40 31 50 "b"\n0.2 0 0 3.7 "c"\n')
    local gp = read(dir .. '/lohi.gp')
    has(gp, 'index 0 using 1:2:3:4 with yerrorlines', 'using 1:2:5 with labels')
    -- the y range holds the bars (0 to 94, padded 6 %), not y +- (hi - lo) / 2
    has(gp, 'set yrange [-5.64:99.64]')
    plot.figure(dir .. '/lohi2', fig({}, { title = 'w', x = { 1 }, y = { 2 }, lo = { 1 }, hi = { 4 },
      style = 'errorbars' }))
    has(read(dir .. '/lohi2.gp'), 'using 1:2:3:4 with yerrorbars')
  end)

  it('refuses a negative err, lo without hi, both kinds of bar, and a bar that misses its point', function()
    has(err_of(plot.figure, dir .. '/b', fig({}, { title = 'e', x = { 1, 2 }, y = { 1, 2 }, err = { 1, -0.5 } })),
      "plot.figure: series 1 ('e'): err[2] must be finite and >= 0, got -0.5")
    has(err_of(plot.figure, dir .. '/b', fig({}, { title = 'e', x = { 1 }, y = { 1 }, lo = { 0 } })),
      "series 1 ('e'): lo and hi go together (a bar from lo to hi), got only lo")
    has(err_of(plot.figure, dir .. '/b', fig({}, { title = 'e', x = { 1 }, y = { 1 }, lo = { 0 }, hi = { 2 },
      err = { 1 } })), 'give err (bars y +- err) or lo and hi (bars from lo to hi), not both')
    has(err_of(plot.figure, dir .. '/b', fig({}, { title = 'e', x = { 1, 2 }, y = { 1, 5 }, lo = { 0, 1 },
      hi = { 2, 3 } })), 'a bar must hold its point (lo <= y <= hi), got lo[2] = 1, y[2] = 5, hi[2] = 3')
    has(err_of(plot.figure, dir .. '/b', fig({}, { title = 'e', x = { 1, 2 }, y = { 1, 2 }, lo = { 0 },
      hi = { 2, 3 } })), 'lo must have one entry per point (2), got 1')
    has(err_of(plot.figure, dir .. '/b', fig({}, { title = 'e', x = { 1 }, y = { 1 }, lo = { 0 }, hi = { 0 / 0 } })),
      'hi[1] must be finite')
    assert.is_false(exists(dir .. '/b.gp'), 'checked before anything is written')
  end)

  it("quotes gnuplot's message when it fails, and says when it is missing", function()
    shell.mkdir(dir .. '/busy.png') -- gnuplot cannot write its output there
    local e = err_of(plot.figure, dir .. '/busy', fig())
    has(e, 'plot: gnuplot failed on ' .. dir .. '/busy.gp:', 'cannot open file', '(at: set output')
    assert.is_nil(e:find('installed', 1, true), e)
    assert.is_nil(e:find('\n'), e)
    -- an rllua with no gnuplot on its PATH (shell.rllua: make test-asan's and
    -- the emulator's own, which need no preloaded runtime)
    local code = string.format("local plot = require 'rl.plot'; print(select(2, pcall(plot.figure, %q, " ..
      "{title = 't', xlabel = 'x', ylabel = 'y', series = {{title = 'a', x = {1}, y = {1}}}})))", dir .. '/nogp')
    local out = shell.rllua_code(code, 'PATH=/nonexistent')
    has(out, 'plot: gnuplot is not installed')
  end)
end)

describe('plot.grid', function()
  it('draws a grid of images, with every text escaped', function()
    local mark = dir .. '/GRIDPWNED'
    local bq = '`touch ' .. mark .. '`'
    local f = plot.grid(dir .. '/grid', { title = 'g' .. bq, rows = {
      { title = 'clean\n' .. bq, images = rl.rand(2, 1, 3, 3), captions = { 'a"' .. bq, 'b' } },
      { title = 'second', images = rl.rand(2, 1, 3, 3) } } })
    assert.is_true(exists(f.png) and exists(f.svg))
    assert.is_false(exists(mark), 'a caption ran a command')
    has(err_of(plot.grid, dir .. '/grid', { title = 'g', rows = { { images = rl.rand(1, 1, 2, 2), caption = {} } } }),
      "plot.grid: rows[1]: unknown option 'caption' (did you mean 'captions'?)")
    has(err_of(plot.grid, dir .. '/grid', { title = 'g', rows = { { images = rl.rand(1, 2, 2, 2) } } }),
      'C = 1 or 3')
  end)
end)
