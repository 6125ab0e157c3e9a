/* data.c - the C half of rl.data (engine/data.h), as rl.core._data.
 *
 *   x, y = read_idx(images_path, labels_path)
 *   x, y = read_cifar({paths...})
 *   x, y = read_svhn(path)
 *   x, y = synthetic(n, classes, channels, size, seed)
 *   names = listdir(path, dirs_only)
 *   x = read_images({paths...}, resize, crop_h, crop_w)
 *   img = load_image(path); img = resize(img, h, w)
 *   write_jpeg(path, img, quality)
 *   xb = batch(x, idx, {crop = n | {h, w}, pad =, random_crop =, flip =, generator =})
 *
 * lua/rl/data.lua builds the user-facing API on these. */
#include "data.h"
#include "lrl.h"

/* Push x and y, which the engine returned (or raise its error).  Call the
 * reader first: argument evaluation order is unspecified in C. */
static int push_pair(lua_State *L, int rc, rl_tensor *x, rl_tensor *y) {
  if (rc) return lrl_error(L);
  lrl_push(L, x);
  lrl_push(L, y);
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
  rl_tensor *x, *y;
  int rc = rl_read_idx(luaL_checkstring(L, 1), luaL_checkstring(L, 2), &x, &y);
  return push_pair(L, rc, x, y);
}

static int l_read_cifar(lua_State *L) {
  int64_t n;
  const char **paths = string_list(L, 1, &n);
  rl_tensor *x, *y;
  int rc = rl_read_cifar((int)n, paths, &x, &y);
  return push_pair(L, rc, x, y);
}

static int l_read_svhn(lua_State *L) {
  rl_tensor *x, *y;
  int rc = rl_read_svhn_mat(luaL_checkstring(L, 1), &x, &y);
  return push_pair(L, rc, x, y);
}

static int l_synthetic(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), k = luaL_checkinteger(L, 2);
  lua_Integer c = luaL_checkinteger(L, 3), s = luaL_checkinteger(L, 4);
  uint64_t seed = (uint64_t)luaL_optinteger(L, 5, 0);
  if (k > 1 << 20 || c > 1 << 20 || s > 1 << 20 || k < 0 || c < 0 || s < 0)
    return luaL_error(L, "synthetic: classes, channels and size must be in 1..2^20");
  rl_tensor *x, *y;
  int rc = rl_synthetic(n, (int)k, (int)c, (int)s, seed, &x, &y);
  return push_pair(L, rc, x, y);
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

static int l_read_images(lua_State *L) {
  int64_t n;
  const char **paths = string_list(L, 1, &n);
  lua_Integer resize = luaL_optinteger(L, 2, 0);
  lua_Integer ch = luaL_optinteger(L, 3, 0), cw = luaL_optinteger(L, 4, ch);
  rl_tensor *x;
  if (rl_read_images(n, paths, resize, ch, cw, &x)) return lrl_error(L);
  return lrl_push(L, x);
}

static int l_load_image(lua_State *L) { return lrl_push(L, rl_image_load(luaL_checkstring(L, 1))); }

static int l_resize(lua_State *L) {
  rl_tensor *img = lrl_check(L, 1);
  return lrl_push(L, rl_image_resize_t(img, luaL_checkinteger(L, 2), luaL_checkinteger(L, 3)));
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

static int l_batch(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1), *idx = lrl_check(L, 2);
  rl_augment a = {0, 0, 0, false, false};
  rl_generator *g = NULL;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    opt_crop(L, 3, &a);
    a.pad = opt_size(L, 3, "pad", 0);
    lua_getfield(L, 3, "random_crop");
    a.random_crop = lua_toboolean(L, -1);
    lua_getfield(L, 3, "flip");
    a.flip = lua_toboolean(L, -1);
    lua_getfield(L, 3, "generator");
    g = lrl_generator_opt(L, lua_gettop(L));
    lua_pop(L, 3);
  }
  return lrl_push(L, rl_data_batch(x, idx, &a, g));
}

static const luaL_Reg data_fns[] = {
    {"read_idx", l_read_idx},       {"read_cifar", l_read_cifar},
    {"read_svhn", l_read_svhn},     {"synthetic", l_synthetic},
    {"listdir", l_listdir},         {"read_images", l_read_images},
    {"load_image", l_load_image},   {"resize", l_resize},
    {"write_jpeg", l_write_jpeg},
    {"batch", l_batch},             {NULL, NULL},
};

void lrl_open_data(lua_State *L) {
  lua_newtable(L);
  luaL_setfuncs(L, data_fns, 0);
  lua_setfield(L, -2, "_data");
}
