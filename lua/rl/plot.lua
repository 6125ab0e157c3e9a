--- rl.plot: figures through gnuplot, as PNG and SVG side by side.
--
--   plot.figure(path_stem, {
--     title = 'Robust accuracy against eps (CNN001, Fashion-MNIST, seed 0)',
--     xlabel = 'eps (l-inf, pixels in [0, 1])', ylabel = 'accuracy (%)',
--     series = {
--       {title = 'PGD-10', x = {...}, y = {...}, [err = {...}], [labels = {...}],
--        style = 'linespoints' | 'points' | 'errorbars' | 'boxes'},
--     },
--     [logx = true], [xrange = {lo, hi}], [yrange = {lo, hi}],
--     [key = 'top right' | 'bottom right' | ... | 'below'],  -- where the key goes
--     [vlines = {{x = 0.2, title = '2 eps'}, ...}],  -- marked values
--     [boxwidth = w],                                -- style 'boxes' (a histogram)
--   })  -> {png = path_stem .. '.png', svg = path_stem .. '.svg'}
--
-- The data go to path_stem .. '.dat' (one block per series) and the script
-- to path_stem .. '.gp', so a figure can be restyled by hand.  Every figure
-- has its title, axis labels and a boxed key (top right unless o.key), and
-- ranges 6 % wider than the data, so that no point sits on the frame.
-- gnuplot missing or failing is an error that says which.
local fs = require 'rl.fs'

local plot = {}

local padded

local function q(s) return "'" .. tostring(s):gsub("'", "''") .. "'" end

-- A double-quoted gnuplot string, where \n breaks the line.
local function dq(s)
  return '"' .. tostring(s):gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n') .. '"'
end

local function num(v) return string.format('%.10g', v) end

-- The .dat text: one block per series, two blank lines between.
local function data_text(series)
  local blocks = {}
  for _, s in ipairs(series) do
    local lines = {}
    for i = 1, #s.x do
      local row = { num(s.x[i]), num(s.y[i]) }
      if s.err then row[#row + 1] = num(s.err[i] or 0) end
      if s.labels then row[#row + 1] = '"' .. tostring(s.labels[i]):gsub('"', "'") .. '"' end
      lines[#lines + 1] = table.concat(row, ' ')
    end
    blocks[#blocks + 1] = table.concat(lines, '\n')
  end
  return table.concat(blocks, '\n\n\n') .. '\n'
end

local function check(o)
  if type(o.title) ~= 'string' or type(o.xlabel) ~= 'string' or type(o.ylabel) ~= 'string' then
    error('plot.figure: title, xlabel and ylabel are required strings', 3)
  end
  if type(o.series) ~= 'table' or #o.series == 0 then error('plot.figure: series must be a non-empty list', 3) end
  for i, s in ipairs(o.series) do
    if type(s.x) ~= 'table' or type(s.y) ~= 'table' or #s.x ~= #s.y or #s.x == 0 then
      error(string.format('plot.figure: series %d needs x and y lists of one non-zero length', i), 3)
    end
  end
end

-- The data's extent along x or y (with error bars, and a bar's half width)
-- widened by 6 % each side, so that no point sits on the frame.
function padded(series, axis, log, boxwidth)
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(series) do
    for i, v in ipairs(s[axis]) do
      local e = axis == 'y' and s.err and s.err[i] or 0
      local w = axis == 'x' and boxwidth and boxwidth / 2 or 0
      lo, hi = math.min(lo, v - e - w), math.max(hi, v + e + w)
    end
  end
  if log and lo > 0 then
    local f = (hi / lo) ^ 0.06
    return { lo / f, hi * f }
  end
  local pad = hi > lo and (hi - lo) * 0.06 or math.max(math.abs(lo) * 0.1, 1)
  return { lo - pad, hi + pad }
end

-- Write stem.gp (the lines of `script`) and run gnuplot on it; a failure is
-- an error quoting gnuplot.  Returns the figure's files.
local function render(stem, script)
  fs.write(stem .. '.gp', table.concat(script, '\n') .. '\n')
  local ok = os.execute('gnuplot ' .. q(stem .. '.gp') .. ' 2>' .. q(stem .. '.gp.err'))
  if not (ok == true or ok == 0) then
    local f = io.open(stem .. '.gp.err')
    local why = f and f:read('a') or ''
    if f then f:close() end
    error(string.format('plot: gnuplot failed on %s.gp (is gnuplot-nox installed?): %s', stem,
      why:gsub('%s+$', '')), 0)
  end
  os.remove(stem .. '.gp.err')
  return { png = stem .. '.png', svg = stem .. '.svg' }
end

--- plot.figure(stem, opts): write stem.png and stem.svg (see above).
function plot.figure(stem, o)
  check(o)
  fs.write(stem .. '.dat', data_text(o.series))
  local plots = {}
  for i, s in ipairs(o.series) do
    local idx = string.format('%s index %d', q(stem .. '.dat'), i - 1)
    local style = s.style or 'linespoints'
    local using = s.err and '1:2:3' or '1:2'
    local w = style == 'errorbars' and 'yerrorbars pt 7 ps 1.2'
        or style == 'points' and 'points pt 7 ps 1.3'
        or style == 'boxes' and 'boxes fs transparent solid 0.35'
        or 'linespoints pt 7 ps 1.1 lw 2'
    if s.err and style ~= 'errorbars' then w = 'yerrorlines pt 7 ps 1.1 lw 2' end
    plots[#plots + 1] = string.format('%s using %s with %s lc %d title %s', idx, using, w, i, q(s.title))
    if s.labels then
      plots[#plots + 1] = string.format('%s using 1:2:%d with labels offset char 0,1 font ",9" notitle', idx,
        s.err and 4 or 3)
    end
  end
  local head = {
    'set datafile separator whitespace',
    -- 'below': a one-line key under the x label (a taller bottom margin),
    -- for data that may lie anywhere in the plot
    o.key == 'below' and 'set key outside below center horizontal box; set bmargin 5'
      or 'set key inside ' .. (o.key or 'top right') .. ' box opaque',
    'set grid',
    'set title ' .. q(o.title) .. ' noenhanced',
    'set xlabel ' .. q(o.xlabel) .. ' noenhanced',
    'set ylabel ' .. q(o.ylabel) .. ' noenhanced',
  }
  if o.logx then head[#head + 1] = 'set logscale x' end
  local MARKS = { '#b03a2e', '#1f618d', '#6c3483', '#1e8449' } -- dark: readable as text
  for i, v in ipairs(o.vlines or {}) do -- marked values: a dashed vertical line and its label
    local colour = MARKS[(i - 1) % #MARKS + 1]
    head[#head + 1] = string.format("set arrow %d from %s, graph 0 to %s, graph 1 nohead dt 2 lw 2 lc rgb '%s'", i,
      num(v.x), num(v.x), colour)
    head[#head + 1] = string.format("set label %d %s at %s, graph %.2f offset char 0.5,0 font ',10' tc rgb '%s'", i,
      q(v.title), num(v.x), 0.95 - 0.06 * (i - 1), colour)
  end
  if o.boxwidth then head[#head + 1] = 'set boxwidth ' .. num(o.boxwidth) .. ' absolute' end
  local xr = o.xrange or padded(o.series, 'x', o.logx, o.boxwidth)
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
    script[#script + 1] = 'set output ' .. q(t[2])
    for _, h in ipairs(head) do script[#script + 1] = h end
    script[#script + 1] = body
    script[#script + 1] = 'unset output'
  end
  return render(stem, script)
end

--- plot.grid(stem, {title = ..., rows = {{title = 'clean', images = x,
-- captions = {...}}, ...}}) -> {png, svg}: a grid of images (x [N, C, H, W]
-- in [0, 1], C = 1 grey or 3 RGB), one row per entry, each image under its
-- caption and each row named on its left, drawn as pixels (no smoothing)
-- at a readable size.
function plot.grid(stem, o)
  if type(o.title) ~= 'string' or type(o.rows) ~= 'table' or #o.rows == 0 then
    error('plot.grid: title and a non-empty list of rows are required', 2)
  end
  local N, C, H, W = table.unpack(o.rows[1].images.shape)
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
    'set multiplot title ' .. q(o.title) .. ' noenhanced font ",13"',
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
      dq(r.title), (label_w - 10) / width, y0 + cell / 2 / height)
    for i = 1, N do
      local x0 = (label_w + (i - 1) * cell) / width
      body[#body + 1] = string.format('set origin %.4f, %.4f; set size %.4f, %.4f', x0, y0, cell / width,
        (cell + 20) / height)
      local cap = r.captions and r.captions[i] or ''
      body[#body + 1] = 'set title ' .. dq(cap) .. ' noenhanced font ",9" offset 0,-0.6'
      body[#body + 1] = string.format('plot %s index %d using 1:2:%s with %s', q(stem .. '.dat'), k,
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
    script[#script + 1] = 'set output ' .. q(t[2])
    for _, b in ipairs(body) do script[#script + 1] = b end
    script[#script + 1] = 'unset output'
  end
  return render(stem, script)
end

return plot
