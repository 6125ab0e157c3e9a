--- rl.plot: figures through gnuplot, as PNG and SVG side by side.
--
--   plot.figure(path_stem, {
--     title = 'Robust accuracy against eps (CNN001, Fashion-MNIST, seed 0)',
--     xlabel = 'eps (l-inf, pixels in [0, 1])', ylabel = 'accuracy (%)',
--     series = {
--       {title = 'PGD-10', x = {...}, y = {...}, [labels = {...}],
--        [err = {...} | lo = {...}, hi = {...}],  -- bars: y +- err, or lo to hi
--        style = 'linespoints' | 'points' | 'errorbars' | 'boxes'},
--     },
--     [logx = true], [xrange = {lo, hi}], [yrange = {lo, hi}],
--     [key = 'below' | 'top right' | ... | 'bottom left'],  -- where the key goes
--     [vlines = {{x = 0.2, title = '2 eps'}, ...}],  -- marked values
--     [boxwidth = w],                                -- style 'boxes' (a histogram)
--   })  -> {png = path_stem .. '.png', svg = path_stem .. '.svg'}
--
-- The data go to path_stem .. '.dat' (one block per series) and the script
-- to path_stem .. '.gp', so a figure can be restyled by hand.  Every figure
-- has its title, axis labels and a boxed key (below the plot, where it
-- covers no data, unless o.key puts it inside), and ranges 6 % wider than
-- the data, so that no point sits on the frame.  A bar is err long each
-- side of y (err >= 0), or runs from lo to hi (lo <= y <= hi: an
-- interval such as Wilson's, not symmetric about y).
-- Options are checked before anything is written: unknown keys, styles or
-- key places, non-finite data and a log axis over values <= 0 are errors
-- that name the option, series and point.  Every text reaches gnuplot as an
-- escaped string (see str), so no title can add a command.  gnuplot
-- missing or failing is an error that says which, quoting gnuplot.
local fs = require 'rl.fs'
local options = require 'rl.options'

local plot = {}

local padded

-- A gnuplot string: double-quoted, \n a line break.  gnuplot runs `...` as
-- a shell command even inside double quotes, so backquotes go as the octal
-- escape \140, as do control characters (a raw newline would end the
-- command); quotes and backslashes are escaped.
local function str(s)
  return '"' .. tostring(s):gsub('[%c"\\`]', function(c)
    if c == '\n' then return '\\n' end
    if c == '"' or c == '\\' then return '\\' .. c end
    return string.format('\\%03o', c:byte())
  end) .. '"'
end

local function num(v) return string.format('%.10g', v) end

-- The .dat text: one block per series, two blank lines between.  A label
-- is a quoted field of its row: quotes and control characters (a newline
-- would split the row) become ' and spaces.
local function data_text(series)
  local blocks = {}
  for _, s in ipairs(series) do
    local lines = {}
    for i = 1, #s.x do
      local row = { num(s.x[i]), num(s.y[i]) }
      if s.err then row[#row + 1] = num(s.err[i]) end
      if s.lo then row[#row + 1], row[#row + 2] = num(s.lo[i]), num(s.hi[i]) end
      if s.labels then row[#row + 1] = '"' .. tostring(s.labels[i]):gsub('"', "'"):gsub('%c', ' ') .. '"' end
      lines[#lines + 1] = table.concat(row, ' ')
    end
    blocks[#blocks + 1] = table.concat(lines, '\n')
  end
  return table.concat(blocks, '\n\n\n') .. '\n'
end

---------------------------------------------------------------------------
-- Checking a figure's options

local STYLES = { 'linespoints', 'points', 'errorbars', 'boxes' }

-- The key's place: 'below' (under the plot), or one or two of gnuplot's
-- words for a place inside it, at most one of each axis.
local KEY_AXIS = { top = 'v', bottom = 'v', left = 'h', right = 'h', center = 'c', below = 'b' }

local function words(s)
  local t = {}
  for w in s:gmatch('%S+') do t[#t + 1] = w end
  return t
end

local function key_place(v)
  local seen, axes, ws = {}, {}, words(v)
  local ok = #ws >= 1 and #ws <= 2
  for _, w in ipairs(ws) do
    local a = KEY_AXIS[w]
    ok = ok and a ~= nil and not seen[w] and (a == 'c' or not axes[a]) and (a ~= 'b' or #ws == 1)
    seen[w] = true
    if a then axes[a] = true end
  end
  if ok then return nil end
  local hint = (v:find('upper') or v:find('lower')) and " (gnuplot's words: top and bottom, not upper and lower)" or ''
  return "'below' or one or two of top, bottom, center, left, right, e.g. 'top left'" .. hint
end

local function finite(v)
  if v ~= v or v == math.huge or v == -math.huge then return 'finite' end
end

local FIGURE_ROWS = {
  { 'title', 'string', options.REQUIRED },
  { 'xlabel', 'string', options.REQUIRED },
  { 'ylabel', 'string', options.REQUIRED },
  { 'series', 'table', options.REQUIRED },
  { 'logx', 'boolean', false },
  { 'xrange', 'pair', nil, finite },
  { 'yrange', 'pair', nil, finite },
  { 'key', 'string', 'below' }, -- key_place, checked apart to show a bad one on one line
  { 'vlines', 'table', {} },
  { 'boxwidth', 'number', nil, function(v) return not (v > 0 and v < math.huge) and 'finite and > 0' or nil end },
}

local SERIES_ROWS = {
  { 'title', 'string', options.REQUIRED },
  { 'x', 'numbers', options.REQUIRED, finite },
  { 'y', 'numbers', options.REQUIRED, finite },
  { 'err', 'numbers', nil, function(v) return not (v >= 0 and v < math.huge) and 'finite and >= 0' or nil end },
  { 'lo', 'numbers', nil, finite },
  { 'hi', 'numbers', nil, finite },
  { 'labels', 'table' },
  { 'style', 'string', 'linespoints', STYLES },
}

local VLINE_ROWS = {
  { 'x', 'number', options.REQUIRED, finite },
  { 'title', 'string', '' },
}

-- The figure's options checked (see the top of this file); raises at
-- level 0.
local function checked(o)
  local who = 'plot.figure'
  o = options.check(who, o, FIGURE_ROWS)
  local function fail(msg, ...) error(string.format('%s: ' .. msg, who, ...), 0) end
  local need = key_place(o.key)
  if need then fail('key must be %s, got %s', need, (string.format('%q', o.key):gsub('\\\n', '\\n'))) end
  if #o.series == 0 then fail('series must be a non-empty list of series') end
  for i, s in ipairs(o.series) do
    local name = string.format('%s: series %d', who, i)
    if type(s) ~= 'table' then fail('series %d must be a table {title =, x =, y =}, got %s', i, options.what(s)) end
    if type(s.title) == 'string' then name = string.format("%s ('%s')", name, (s.title:gsub('%c', ' '))) end
    s = options.check(name, s, SERIES_ROWS)
    o.series[i] = s
    local n = #s.x
    if n == 0 or #s.y ~= n then
      error(string.format('%s: x and y must be lists of one non-zero length, got %d and %d', name, n, #s.y), 0)
    end
    for _, k in ipairs { 'err', 'lo', 'hi', 'labels' } do
      if s[k] and #s[k] ~= n then
        error(string.format('%s: %s must have one entry per point (%d), got %d', name, k, n, #s[k]), 0)
      end
    end
    if (s.lo == nil) ~= (s.hi == nil) then
      error(string.format("%s: lo and hi go together (a bar from lo to hi), got only %s", name, s.lo and 'lo' or 'hi'),
        0)
    end
    if s.lo and s.err then
      error(string.format('%s: give err (bars y +- err) or lo and hi (bars from lo to hi), not both', name), 0)
    end
    if s.lo then
      for j = 1, n do
        if not (s.lo[j] <= s.y[j] and s.y[j] <= s.hi[j]) then
          error(string.format('%s: a bar must hold its point (lo <= y <= hi), got lo[%d] = %s, y[%d] = %s, hi[%d] = %s',
            name, j, num(s.lo[j]), j, num(s.y[j]), j, num(s.hi[j])), 0)
        end
      end
    end
    if s.style == 'errorbars' and not s.err and not s.lo then
      error(string.format("%s: style 'errorbars' needs err (the bars' half lengths) or lo and hi", name), 0)
    end
    if o.logx then
      for j, v in ipairs(s.x) do
        if v <= 0 then
          error(string.format('%s: logx needs x > 0, got x[%d] = %s (a log axis has no place for it)', name, j,
            num(v)), 0)
        end
      end
    end
  end
  for i, v in ipairs(o.vlines) do
    o.vlines[i] = options.check(string.format('%s: vlines[%d]', who, i), v, VLINE_ROWS)
    if o.logx and o.vlines[i].x <= 0 then
      fail('logx needs x > 0, got vlines[%d].x = %s', i, num(o.vlines[i].x))
    end
  end
  for _, k in ipairs { 'xrange', 'yrange' } do
    local r = o[k]
    if r and not (r[1] < r[2]) then fail('%s must be {lo, hi} with lo < hi, got {%s, %s}', k, num(r[1]), num(r[2])) end
  end
  if o.logx and o.xrange and o.xrange[1] <= 0 then
    fail('logx needs xrange > 0, got {%s, %s}', num(o.xrange[1]), num(o.xrange[2]))
  end
  return o
end

-- The data's extent along x or y (with error bars, and a box's half width)
-- widened by 6 % each side, so that no point sits on the frame; on a log
-- axis by a factor (data all > 0: checked), bars' widths left out.
function padded(series, axis, log, boxwidth)
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(series) do
    for i, v in ipairs(s[axis]) do
      local e = axis == 'y' and s.err and s.err[i] or 0
      local w = axis == 'x' and boxwidth and not log and boxwidth / 2 or 0
      local bar_lo = axis == 'y' and s.lo and s.lo[i] or v - e - w
      local bar_hi = axis == 'y' and s.hi and s.hi[i] or v + e + w
      lo, hi = math.min(lo, bar_lo), math.max(hi, bar_hi)
    end
  end
  if log and lo > 0 then
    local f = hi > lo and (hi / lo) ^ 0.06 or 2
    return { lo / f, hi * f }
  end
  local pad = hi > lo and (hi - lo) * 0.06 or math.max(math.abs(lo) * 0.1, 1)
  return { lo - pad, hi + pad }
end

-- What gnuplot said on stderr, on one line: its error ('"x.gp" line 3:
-- ...') with the command it stopped at, else every line it wrote.
local function gnuplot_said(text)
  local lines = {}
  for l in text:gmatch('[^\n]+') do
    if l:find('%S') then lines[#lines + 1] = l end
  end
  for i = #lines, 1, -1 do
    if lines[i]:find('" line %d+: ') then
      local at = i > 2 and lines[i - 1]:match('^%s*%^%s*$') and lines[i - 2]:gsub('^%s+', '')
      return lines[i] .. (at and ' (at: ' .. at .. ')' or '')
    end
  end
  return #lines > 0 and table.concat(lines, '; ') or 'no message'
end

-- Write stem.gp (the lines of `script`) and run gnuplot on it; a failure is
-- an error quoting gnuplot.  Returns the figure's files.
local function render(stem, script)
  fs.write(stem .. '.gp', table.concat(script, '\n') .. '\n')
  local err = stem .. '.gp.err'
  local ok, _, code = os.execute('gnuplot ' .. fs.quote(stem .. '.gp') .. ' 2>' .. fs.quote(err))
  if not ok then
    local f = io.open(err)
    local why = f and f:read('a') or ''
    if f then f:close() end
    if code == 127 then -- the shell's "command not found"
      error(string.format('plot: gnuplot is not installed (apt install gnuplot-nox): cannot draw %s.png', stem), 0)
    end
    error(string.format('plot: gnuplot failed on %s.gp: %s', stem, gnuplot_said(why)), 0)
  end
  os.remove(err)
  return { png = stem .. '.png', svg = stem .. '.svg' }
end

local function check_stem(who, stem)
  if type(stem) ~= 'string' or stem == '' then
    error(string.format('%s: the first argument must be a path stem (a string), got %s', who, options.what(stem)), 0)
  end
end

--- plot.figure(stem, opts): write stem.png and stem.svg (see above).
plot.figure = options.public(function(stem, o)
  check_stem('plot.figure', stem)
  o = checked(o)
  fs.write(stem .. '.dat', data_text(o.series))
  local plots = {}
  for i, s in ipairs(o.series) do
    local idx = string.format('%s index %d', str(stem .. '.dat'), i - 1)
    local style = s.style
    local bars = s.err or s.lo
    local using = s.lo and '1:2:3:4' or s.err and '1:2:3' or '1:2'
    local w = style == 'errorbars' and 'yerrorbars pt 7 ps 1.2'
        or style == 'points' and 'points pt 7 ps 1.3'
        or style == 'boxes' and 'boxes fs transparent solid 0.35'
        or 'linespoints pt 7 ps 1.1 lw 2'
    if bars and style ~= 'errorbars' then w = 'yerrorlines pt 7 ps 1.1 lw 2' end
    plots[#plots + 1] = string.format('%s using %s with %s lc %d title %s', idx, using, w, i, str(s.title))
    if s.labels then
      plots[#plots + 1] = string.format('%s using 1:2:%d with labels offset char 0,1 font ",9" notitle', idx,
        s.lo and 5 or s.err and 4 or 3)
    end
  end
  local key = table.concat(words(o.key), ' ') -- checked words (key_place), nothing else
  local head = {
    'set datafile separator whitespace',
    -- 'below': a one-line key under the x label (a taller bottom margin),
    -- for data that may lie anywhere in the plot
    key == 'below' and 'set key outside below center horizontal box width 1; set bmargin 5'
      or 'set key inside ' .. key .. ' box opaque',
    'set grid',
    'set title ' .. str(o.title) .. ' noenhanced',
    'set xlabel ' .. str(o.xlabel) .. ' noenhanced',
    'set ylabel ' .. str(o.ylabel) .. ' noenhanced',
  }
  if o.logx then head[#head + 1] = 'set logscale x' end
  local xr = o.xrange or padded(o.series, 'x', o.logx, o.boxwidth)
  local MARKS = { '#b03a2e', '#1f618d', '#6c3483', '#1e8449' } -- dark: readable as text
  for i, v in ipairs(o.vlines) do -- marked values: a dashed vertical line and its label
    local colour = MARKS[(i - 1) % #MARKS + 1]
    head[#head + 1] = string.format("set arrow %d from %s, graph 0 to %s, graph 1 nohead dt 2 lw 2 lc rgb '%s'", i,
      num(v.x), num(v.x), colour)
    -- the label on the line's side with more room, so that it stays inside the frame
    local mid = o.logx and math.sqrt(xr[1] * xr[2]) or (xr[1] + xr[2]) / 2
    head[#head + 1] = string.format("set label %d %s at %s, graph %.2f %s font ',10' tc rgb '%s'", i,
      str(v.title), num(v.x), 0.95 - 0.06 * (i - 1), v.x > mid and 'right offset char -0.5,0' or 'offset char 0.5,0',
      colour)
  end
  if o.boxwidth then head[#head + 1] = 'set boxwidth ' .. num(o.boxwidth) .. ' absolute' end
  local yr = o.yrange or padded(o.series, 'y', false)
  head[#head + 1] = string.format('set xrange [%s:%s]', num(xr[1]), num(xr[2]))
  head[#head + 1] = string.format('set yrange [%s:%s]', num(yr[1]), num(yr[2]))
  local body = 'plot ' .. table.concat(plots, ', \\\n     ') .. '\n'
  local script = {}
  for _, t in ipairs {
    { "pngcairo size 960,640 noenhanced font 'DejaVu Sans,11'", stem .. '.png' },
    { "svg size 960,640 noenhanced font 'DejaVu Sans,11'", stem .. '.svg' },
  } do
    script[#script + 1] = 'set terminal ' .. t[1]
    script[#script + 1] = 'set output ' .. str(t[2])
    for _, h in ipairs(head) do script[#script + 1] = h end
    script[#script + 1] = body
    script[#script + 1] = 'unset output'
  end
  return render(stem, script)
end)

local GRID_ROWS = {
  { 'title', 'string', options.REQUIRED },
  { 'rows', 'table', options.REQUIRED },
}

local GRID_ROW_ROWS = {
  { 'title', 'string', '' },
  { 'images', 'tensor', options.REQUIRED },
  { 'captions', 'table' },
}

--- plot.grid(stem, {title = ..., rows = {{title = 'clean', images = x,
-- captions = {...}}, ...}}) -> {png, svg}: a grid of images (x [N, C, H, W]
-- in [0, 1], C = 1 grey or 3 RGB), one row per entry, each image under its
-- caption and each row named on its left, drawn as pixels (no smoothing)
-- at a readable size.
plot.grid = options.public(function(stem, o)
  check_stem('plot.grid', stem)
  o = options.check('plot.grid', o, GRID_ROWS)
  if #o.rows == 0 then error('plot.grid: rows must be a non-empty list of rows', 0) end
  local N, C, H, W
  for i, r in ipairs(o.rows) do
    local who = string.format('plot.grid: rows[%d]', i)
    o.rows[i] = options.check(who, r, GRID_ROW_ROWS)
    local x = o.rows[i].images
    if x:dim() ~= 4 or (x:size(2) ~= 1 and x:size(2) ~= 3) then
      error(string.format('%s: images must be [N, C, H, W] with C = 1 or 3, got %s', who, options.what(x)), 0)
    end
    N, C, H, W = N or x:size(1), C or x:size(2), H or x:size(3), W or x:size(4)
    if x:size(1) ~= N or x:size(2) ~= C or x:size(3) ~= H or x:size(4) ~= W then
      error(string.format('%s: images must be %dx%dx%dx%d as in rows[1], got %s', who, N, C, H, W,
        options.what(x)), 0)
    end
  end
  local blocks = {}
  for _, r in ipairs(o.rows) do
    local x = r.images:float():clamp(0, 1)
    for i = 1, N do
      local img = x[i]:tolist() -- [C][H][W]
      local rows = {}
      for yy = 1, H do
        for xx = 1, W do
          if C == 1 then
            rows[#rows + 1] = string.format('%d %d %.4f', xx - 1, H - yy, img[1][yy][xx])
          else
            rows[#rows + 1] = string.format('%d %d %d %d %d', xx - 1, H - yy, math.floor(img[1][yy][xx] * 255 + 0.5),
              math.floor(img[2][yy][xx] * 255 + 0.5), math.floor(img[3][yy][xx] * 255 + 0.5))
          end
        end
      end
      blocks[#blocks + 1] = table.concat(rows, '\n')
    end
  end
  fs.write(stem .. '.dat', table.concat(blocks, '\n\n\n') .. '\n')
  local cell, label_w, top = 150, 150, 60
  local width, height = label_w + N * cell, top + #o.rows * (cell + 30)
  local body = {
    'set multiplot title ' .. str(o.title) .. ' noenhanced font ",13"',
    'unset key; unset tics; unset border; unset colorbox',
    'set size ratio -1',
    'set palette grey',
    'set cbrange [0:1]',
    string.format('set xrange [-0.5:%g]; set yrange [-0.5:%g]', W - 0.5, H - 0.5),
  }
  local k = 0
  for ri, r in ipairs(o.rows) do
    local y0 = 1 - (top + (ri - 1) * (cell + 30) + cell + 24) / height
    body[#body + 1] = string.format('set label 1 %s at screen %.4f, screen %.4f right font ",11" noenhanced',
      str(r.title), (label_w - 10) / width, y0 + cell / 2 / height)
    for i = 1, N do
      local x0 = (label_w + (i - 1) * cell) / width
      body[#body + 1] = string.format('set origin %.4f, %.4f; set size %.4f, %.4f', x0, y0, cell / width,
        (cell + 20) / height)
      local cap = r.captions and r.captions[i] or ''
      body[#body + 1] = 'set title ' .. str(cap) .. ' noenhanced font ",9" offset 0,-0.6'
      body[#body + 1] = string.format('plot %s index %d using 1:2:%s with %s', str(stem .. '.dat'), k,
        C == 1 and '3' or '3:4:5', C == 1 and 'image pixels' or 'rgbimage pixels')
      if i == 1 then body[#body + 1] = 'unset label 1' end
      k = k + 1
    end
  end
  body[#body + 1] = 'unset multiplot'
  local script = {}
  for _, t in ipairs { { 'pngcairo', stem .. '.png' }, { 'svg', stem .. '.svg' } } do
    script[#script + 1] = string.format("set terminal %s size %d,%d noenhanced font 'DejaVu Sans,10'", t[1], width,
      height)
    script[#script + 1] = 'set output ' .. str(t[2])
    for _, b in ipairs(body) do script[#script + 1] = b end
    script[#script + 1] = 'unset output'
  end
  return render(stem, script)
end)

return plot
