/* data.c - the C half of rl.data (engine/io/data.h), as rl.core._data.
 *
 *   x, y = read_idx(images_path, labels_path)
 *   x, y = read_cifar({paths...})
 *   x, y = read_svhn(path)
 *   x, y = synthetic(n, classes, channels, size, seed)
 *   names = listdir(path, dirs_only)
 *   x = read_images({paths...}, resize, crop_h, crop_w)
 *   pixels, extent = read_images_ragged({paths...}, resize)
 *   ragged_check(pixels, extent, c)
 *   pixels, extent = ragged_select(pixels, extent, c, idx)
 *   x = ragged_crop(pixels, extent, c, crop_h, crop_w)
 *   h, w = probe_image(path)
 *   previous = image_limits([{max_side =, max_pixels =}])
 *   img = load_image(path); img = resize(img, h, w)
 *   write_jpeg(path, img, quality)
 *   xb = batch(x, idx, {crop = n | {h, w}, pad =, random_crop =, flip =, generator =})
 *   xb = batch_ragged(pixels, extent, c, idx, {same options})
 *
 * A ragged store (engine/io/data.h) travels as three arguments: pixels (u8
 * [total]), extent (i64 [N, 3]) and the channel count.
 *
 * lua/rl/data.lua builds the user-facing API on these. */
#include "io/data.h"
#include "lrl.h"

/* Push x and y, which the engine returned (or raise its error).  Call the
 * reader first: argument evaluation order is unspecified in C. */
/* A reader that makes two tensors gets their boxes first (pair_boxes, after
 * every argument is read), so that no tensor exists while a box can still
 * fail to be made; fill_pair hands them over. */
static int pair_boxes(lua_State *L) {
  int b = lrl_newbox(L);
  lrl_newbox(L);
  return b;
}

static int fill_pair(lua_State *L, int b, int rc, rl_tensor *x, rl_tensor *y) {
  if (rc) return lrl_error(L);
  lrl_fill(L, b, x);
  lrl_fill(L, b + 1, y);
  return 2;
}

/* The strings of the list at i, in a scratch userdata pushed on the stack
 * (the strings stay owned by the table). */
static const char **string_list(lua_State *L, int i, int64_t *n) {
  luaL_checktype(L, i, LUA_TTABLE);
  *n = (int64_t)luaL_len(L, i);
  const char **v = lua_newuserdatauv(L, sizeof *v * (size_t)(*n ? *n : 1), 0);
  for (int64_t k = 0; k < *n; k++) {
    if (lua_geti(L, i, k + 1) != LUA_TSTRING)
      luaL_error(L, "expected a list of file names, item %d is a %s", (int)(k + 1),
                 luaL_typename(L, -1));
    v[k] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  return v;
}

static int l_read_idx(lua_State *L) {
  const char *images = luaL_checkstring(L, 1), *labels = luaL_checkstring(L, 2);
  int b = pair_boxes(L);
  rl_tensor *x, *y;
  int rc = rl_read_idx(images, labels, &x, &y);
  return fill_pair(L, b, rc, x, y);
}

static int l_read_cifar(lua_State *L) {
  int64_t n;
  const char **paths = string_list(L, 1, &n);
  int b = pair_boxes(L);
  rl_tensor *x, *y;
  int rc = rl_read_cifar((int)n, paths, &x, &y);
  return fill_pair(L, b, rc, x, y);
}

static int l_read_svhn(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int b = pair_boxes(L);
  rl_tensor *x, *y;
  int rc = rl_read_svhn_mat(path, &x, &y);
  return fill_pair(L, b, rc, x, y);
}

static int l_synthetic(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), k = luaL_checkinteger(L, 2);
  lua_Integer c = luaL_checkinteger(L, 3), s = luaL_checkinteger(L, 4);
  uint64_t seed = (uint64_t)luaL_optinteger(L, 5, 0);
  if (k > 1 << 20 || c > 1 << 20 || s > 1 << 20 || k < 0 || c < 0 || s < 0)
    return luaL_error(L, "synthetic: classes, channels and size must be in 1..2^20");
  int b = pair_boxes(L);
  rl_tensor *x, *y;
  int rc = rl_synthetic(n, (int)k, (int)c, (int)s, seed, &x, &y);
  return fill_pair(L, b, rc, x, y);
}

static int l_listdir(lua_State *L) {
  int n;
  char **names;
  if (rl_listdir(luaL_checkstring(L, 1), lua_toboolean(L, 2), &n, &names)) return lrl_error(L);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]); /* cannot fail short of memory; the leak is then bounded */
    lua_rawseti(L, -2, i + 1);
  }
  rl_data_free_names(n, names);
  return 1;
}

/* (The sizes are read before string_list pushes its scratch: with fewer
 * arguments given, that would sit where they are looked for.) */
static int l_read_images(lua_State *L) {
  int64_t n;
  lua_Integer resize = luaL_optinteger(L, 2, 0);
  lua_Integer ch = luaL_optinteger(L, 3, 0), cw = luaL_optinteger(L, 4, ch);
  lua_settop(L, 4);
  const char **paths = string_list(L, 1, &n);
  int b = lrl_newbox(L);
  rl_tensor *x;
  if (rl_read_images(n, paths, resize, ch, cw, &x)) return lrl_error(L);
  return lrl_fill(L, b, x);
}

/* The ragged store given as arguments i, i + 1, i + 2. */
static rl_ragged check_ragged(lua_State *L, int i) {
  rl_ragged r = {lrl_check(L, i), lrl_check(L, i + 1), (int64_t)luaL_checkinteger(L, i + 2)};
  if (r.c < 1 || r.c > 1 << 20) luaL_error(L, "ragged: channels must be in 1..2^20, got %d", (int)r.c);
  return r;
}

static int l_read_images_ragged(lua_State *L) {
  int64_t n;
  lua_Integer resize = luaL_optinteger(L, 2, 0);
  lua_settop(L, 2);
  const char **paths = string_list(L, 1, &n);
  int b = pair_boxes(L);
  rl_ragged r;
  int rc = rl_read_images_ragged(n, paths, resize, &r);
  return fill_pair(L, b, rc, r.pixels, r.extent);
}

static int l_ragged_check(lua_State *L) {
  rl_ragged r = check_ragged(L, 1);
  lrl_check_rc(L, rl_ragged_check(&r, "ragged"));
  return 0;
}

static int l_ragged_select(lua_State *L) {
  rl_ragged r = check_ragged(L, 1), out;
  rl_tensor *idx = lrl_check(L, 4);
  int b = pair_boxes(L);
  int rc = rl_ragged_select(&r, idx, &out);
  return fill_pair(L, b, rc, out.pixels, out.extent);
}

static int l_ragged_crop(lua_State *L) {
  rl_ragged r = check_ragged(L, 1);
  lua_Integer ch = luaL_checkinteger(L, 4), cw = luaL_optinteger(L, 5, ch);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_ragged_center_crop(&r, ch, cw));
}

static int l_probe_image(lua_State *L) {
  char msg[512];
  int64_t h, w;
  if (rl_image_probe(luaL_checkstring(L, 1), &h, &w, msg, sizeof msg))
    return luaL_error(L, "%s", msg);
  lua_pushinteger(L, (lua_Integer)h);
  lua_pushinteger(L, (lua_Integer)w);
  return 2;
}

/* limits[key] when the table at i has it, else d; a non-integer is an error. */
static int64_t limit_field(lua_State *L, int i, const char *key, int64_t d) {
  int t = lua_getfield(L, i, key);
  int isnum;
  int64_t v = (int64_t)lua_tointegerx(L, -1, &isnum);
  if (t != LUA_TNIL && !isnum)
    luaL_error(L, "image_limits: '%s' must be an integer, got %s", key, luaL_tolstring(L, -1, NULL));
  lua_pop(L, 1);
  return t == LUA_TNIL ? d : v;
}

/* Set the fields given (none: only read) and return the previous limits. */
static int l_image_limits(lua_State *L) {
  rl_image_limits old = rl_image_get_limits(), l = old;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    l.max_side = limit_field(L, 1, "max_side", old.max_side);
    l.max_pixels = limit_field(L, 1, "max_pixels", old.max_pixels);
    lrl_check_rc(L, rl_image_set_limits(l));
  }
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)old.max_side);
  lua_setfield(L, -2, "max_side");
  lua_pushinteger(L, (lua_Integer)old.max_pixels);
  lua_setfield(L, -2, "max_pixels");
  return 1;
}

static int l_load_image(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_image_load(path));
}

static int l_resize(lua_State *L) {
  rl_tensor *img = lrl_check(L, 1);
  lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3);
  int box = lrl_newbox(L);
  return lrl_fill(L, box, rl_image_resize_t(img, h, w));
}

static int l_write_jpeg(lua_State *L) {
  lua_Integer q = luaL_optinteger(L, 3, 95);
  if (q < 1 || q > 100) return luaL_error(L, "write_jpeg: quality must be in 1..100, got %d", (int)q);
  lrl_check_rc(L, rl_image_write_jpeg(luaL_checkstring(L, 1), lrl_check(L, 2), (int)q));
  return 0;
}

/* The integer opts[key] (default d), checked non-negative. */
static int64_t opt_size(lua_State *L, int i, const char *key, int64_t d) {
  lua_getfield(L, i, key);
  int64_t v = lua_isnil(L, -1) ? d : (int64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  if (v < 0) luaL_error(L, "batch: option '%s' must be >= 0, got %d", key, (int)v);
  return v;
}

/* opts.crop: a size, {h, w}, or nil (the image's size). */
static void opt_crop(lua_State *L, int i, rl_augment *a) {
  int t = lua_getfield(L, i, "crop");
  if (t == LUA_TTABLE) {
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    a->crop_h = (int64_t)luaL_checkinteger(L, -2);
    a->crop_w = (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 2);
  } else if (t != LUA_TNIL) {
    a->crop_h = a->crop_w = (int64_t)luaL_checkinteger(L, -1);
  }
  lua_pop(L, 1);
  if (a->crop_h < 0 || a->crop_w < 0) luaL_error(L, "batch: crop sizes must be >= 0");
}

/* The batch options at i (nil: none); the generator stays referenced by
 * the options table. */
static rl_generator *batch_opts(lua_State *L, int i, rl_augment *a) {
  *a = (rl_augment){0, 0, 0, false, false};
  if (lua_isnoneornil(L, i)) return NULL;
  luaL_checktype(L, i, LUA_TTABLE);
  opt_crop(L, i, a);
  a->pad = opt_size(L, i, "pad", 0);
  lua_getfield(L, i, "random_crop");
  a->random_crop = lua_toboolean(L, -1);
  lua_getfield(L, i, "flip");
  a->flip = lua_toboolean(L, -1);
  lua_getfield(L, i, "generator");
  rl_generator *g = lrl_generator_opt(L, lua_gettop(L));
  lua_pop(L, 3);
  return g;
}

static int l_batch(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1), *idx = lrl_check(L, 2);
  rl_augment a;
  rl_generator *g = batch_opts(L, 3, &a);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_data_batch(x, idx, &a, g));
}

static int l_batch_ragged(lua_State *L) {
  rl_ragged r = check_ragged(L, 1);
  rl_tensor *idx = lrl_check(L, 4);
  rl_augment a;
  rl_generator *g = batch_opts(L, 5, &a);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_data_batch_ragged(&r, idx, &a, g));
}

static const luaL_Reg data_fns[] = {
    {"read_idx", l_read_idx},       {"read_cifar", l_read_cifar},
    {"read_svhn", l_read_svhn},     {"synthetic", l_synthetic},
    {"listdir", l_listdir},         {"read_images", l_read_images},
    {"load_image", l_load_image},   {"resize", l_resize},
    {"write_jpeg", l_write_jpeg},   {"read_images_ragged", l_read_images_ragged},
    {"ragged_select", l_ragged_select}, {"ragged_crop", l_ragged_crop},
    {"probe_image", l_probe_image}, {"batch_ragged", l_batch_ragged},
    {"ragged_check", l_ragged_check}, {"image_limits", l_image_limits},
    {"batch", l_batch},             {NULL, NULL},
};

void lrl_open_data(lua_State *L) {
  lua_newtable(L);
  luaL_setfuncs(L, data_fns, 0);
  lua_setfield(L, -2, "_data");
}
