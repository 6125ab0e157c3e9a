--- rl.trained: a trained model's weights in their architecture, and the
-- test images it is measured on; what the evaluation scripts share
-- (evaluate.lua, eps_curve.lua).
--
--   x, y, ds, total = trained.test_images(dataset, {n, data_dir, crop})
--   model = trained.model(path, {model, dataset, shape = x.shape, classes})
local rl = require 'rl.base'
local data = require 'rl.data'
local models = require 'rl.models'

local trained = {}

--- The first n test images of a dataset (f32 in [0, 1], the test-time
-- crop) and their labels; also the dataset and its size.
function trained.test_images(dataset, o)
  o = o or {}
  local ds = data.load(dataset, { split = 'test', data_dir = o.data_dir })
  local total = ds:size()
  local n = math.min(o.n or total, total)
  local x = data.batch(ds.x, rl.arange(n), { pad = 0, crop = o.crop, random_crop = false, flip = false })
  local y = ds.y:narrow(1, 1, n):contiguous()
  return x, y, ds, total
end

--- The options each architecture is built with for an image shape
-- [B, C, H, W] and a number of classes.
function trained.model_opts(name, shape, classes)
  local c, h, w = shape[2], shape[3], shape[4]
  if name == 'MLP' then return { inputs = c * h * w, classes = classes } end
  if name == 'CNN002' then return { classes = classes, channels = c, size = h } end
  return { classes = classes, channels = c }
end

-- Up to three names of a list, and how many there are.
local function some(list)
  local shown = table.concat(list, ', ', 1, math.min(3, #list))
  return #list > 3 and string.format('%s and %d more', shown, #list - 3) or shown
end

--- The model o.model (for o.dataset's images of o.shape and o.classes)
-- with the weights in the safetensors file at path; an error saying how
-- they differ when they are not this model's.
function trained.model(path, o)
  local model = models.get(o.model, trained.model_opts(o.model, o.shape, o.classes))
  local sd = rl.load(path)
  local own, order = model:state_dict()
  local what = string.format('%s for %s (%s images, %d classes)', o.model, o.dataset,
    table.concat(o.shape, 'x', 2), o.classes)
  local missing, unexpected = {}, {}
  for _, k in ipairs(order) do if sd[k] == nil then missing[#missing + 1] = k end end
  for k in pairs(sd) do if own[k] == nil then unexpected[#unexpected + 1] = k end end
  table.sort(unexpected)
  if #missing > 0 or #unexpected > 0 then
    local parts = {}
    if #missing > 0 then parts[#parts + 1] = string.format('%d missing (%s)', #missing, some(missing)) end
    if #unexpected > 0 then
      parts[#parts + 1] = string.format('%d not in the model (%s)', #unexpected, some(unexpected))
    end
    error(string.format('the weights in %s are not those of %s: keys %s; is --model or --dataset wrong?',
      path, what, table.concat(parts, '; ')), 0)
  end
  for _, k in ipairs(order) do
    local a, b = table.concat(sd[k].shape, 'x'), table.concat(own[k].shape, 'x')
    if a ~= b then
      error(string.format('the weights in %s are not those of %s: %s is %s in the file, %s in the model',
        path, what, k, a, b), 0)
    end
  end
  model:load_state_dict(sd)
  return model
end

return trained
