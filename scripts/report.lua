-- report.lua - one page for a table's results directory: its settings, the
-- table and its figures, as report.md and a self-contained report.html
-- (figures inlined as SVG), for a lab meeting or a browser.
--   rllua scripts/report.lua results/table2
local cli = require 'rl.cli'
local fs = require 'rl.fs'
local json = require 'rl.json'

local usage = [[
usage: rllua scripts/report.lua RESULTS-DIR [--out STEM]
Reads RESULTS-DIR/table.md, table.json and the figures under
RESULTS-DIR/figures (or beside table.md), writes STEM.md and STEM.html
(default RESULTS-DIR/report).
  --out STEM   where the report goes
  --help]]

local read = fs.read

local function esc(s) return (s:gsub('&', '&amp;'):gsub('<', '&lt;'):gsub('>', '&gt;')) end

-- Inline Markdown: **bold**, `code`.
local function inline(s)
  s = esc(s)
  s = s:gsub('%*%*(.-)%*%*', '<strong>%1</strong>'):gsub('`([^`]+)`', '<code>%1</code>')
  return s
end

local function cells(line)
  local out = {}
  for c in line:gsub('^%s*|', ''):gsub('|%s*$', ''):gmatch('[^|]+') do out[#out + 1] = c:match('^%s*(.-)%s*$') end
  return out
end

-- The Markdown that rllua's tables write (headings, paragraphs, bullets,
-- pipe tables) as HTML.
local function to_html(md)
  local html, lines, i = {}, {}, 1
  for l in (md .. '\n'):gmatch('(.-)\n') do lines[#lines + 1] = l end
  while i <= #lines do
    local l = lines[i]
    local level, head = l:match('^(#+)%s+(.*)$')
    if level then
      html[#html + 1] = string.format('<h%d>%s</h%d>', #level, inline(head), #level)
      i = i + 1
    elseif l:match('^|') then
      local head = cells(l)
      local align = cells(lines[i + 1] or '')
      html[#html + 1] = '<table>\n<tr>'
      for k, c in ipairs(head) do
        html[#html + 1] = string.format('<th class="%s">%s</th>', (align[k] or ''):match(':$') and 'r' or 'l', inline(c))
      end
      html[#html + 1] = '</tr>'
      i = i + 2
      while lines[i] and lines[i]:match('^|') do
        html[#html + 1] = '<tr>'
        for k, c in ipairs(cells(lines[i])) do
          html[#html + 1] = string.format('<td class="%s">%s</td>', (align[k] or ''):match(':$') and 'r' or 'l',
            inline(c))
        end
        html[#html + 1] = '</tr>'
        i = i + 1
      end
      html[#html + 1] = '</table>'
    elseif l:match('^%- ') then
      html[#html + 1] = '<ul>'
      while lines[i] and lines[i]:match('^%- ') do
        html[#html + 1] = '<li>' .. inline(lines[i]:sub(3)) .. '</li>'
        i = i + 1
      end
      html[#html + 1] = '</ul>'
    elseif l:match('^%s*$') then
      i = i + 1
    else
      html[#html + 1] = '<p>' .. inline(l) .. '</p>'
      i = i + 1
    end
  end
  return table.concat(html, '\n')
end

local CSS = [[
body { font-family: 'DejaVu Sans', sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; }
th { background: #eee; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
]]

cli.main('report', function()
  local o, args = cli.parse(arg or {}, { usage = usage, args = 1, options = { out = 'string' } })
  local dir = args[1]
  if not dir then error('give a results directory\n' .. usage, 0) end
  dir = dir:gsub('/+$', '')
  local md = read(dir .. '/table.md')
  if not md then error(string.format('%s/table.md not found (a results directory of a table script?)', dir), 0) end
  local doc = fs.exists(dir .. '/table.json') and json.read(dir .. '/table.json') or {}
  local figs = {}
  for _, sub in ipairs { '/figures', '' } do
    local p = io.popen("ls -1 '" .. (dir .. sub):gsub("'", "'\\''") .. "' 2>/dev/null")
    for name in p:lines() do
      if name:match('%.svg$') then figs[#figs + 1] = { path = dir .. sub .. '/' .. name, rel = sub:sub(2) ..
        (sub ~= '' and '/' or '') .. name } end
    end
    p:close()
  end
  table.sort(figs, function(a, b) return a.rel < b.rel end)
  local stem = o.out or (dir .. '/report')
  -- --out's directory is made, as the other scripts' --out is
  local out_dir = stem:match('^(.*)/[^/]*$')
  if out_dir and out_dir ~= '' then fs.mkdir(out_dir, '--out') end
  -- the Markdown's image links lead from where the report is to the
  -- figures, wherever --out puts it
  local base = fs.realpath(stem:match('^(.*)/[^/]*$') or '.')
  local function link(f)
    local png = f.path:gsub('%.svg$', '.png')
    local to = fs.realpath(png) or fs.realpath(f.path)
    if not (base and to) then return (f.rel:gsub('%.svg$', '.png')) end
    if to:sub(1, #base + 1) == base .. '/' then return to:sub(#base + 2) end
    return to -- not below the report's directory: an absolute path
  end
  local mdl = { md:gsub('%s+$', ''), '', '## Figures', '' }
  for _, f in ipairs(figs) do
    mdl[#mdl + 1] = string.format('![%s](%s)', f.rel, link(f))
    mdl[#mdl + 1] = ''
  end
  if #figs == 0 then mdl[#mdl + 1] = 'No figures in this directory.' end
  fs.write(stem .. '.md', table.concat(mdl, '\n') .. '\n')
  local html = { '<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
    '<title>' .. esc(doc.title or 'rllua report') .. '</title>', '<style>' .. CSS .. '</style></head><body>',
    to_html(md) }
  if #figs > 0 then html[#html + 1] = '<h2>Figures</h2>' end
  for _, f in ipairs(figs) do
    local svg = read(f.path):gsub('^<%?xml.-%?>%s*', ''):gsub('<!DOCTYPE.->%s*', '')
    html[#html + 1] = '<figure>' .. svg .. '<figcaption>' .. esc(f.rel) .. '</figcaption></figure>'
  end
  html[#html + 1] = '</body></html>'
  fs.write(stem .. '.html', table.concat(html, '\n') .. '\n')
  print(string.format('wrote %s.md and %s.html (%d figures)', stem, stem, #figs))
end)
