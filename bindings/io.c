/* io.c - rl.save and rl.load: safetensors checkpoints (engine/io/safetensors.h),
 * and rl._json_decode, the reader behind rl.json.decode (engine/io/json.h).
 *
 *   rl.save(path, {name = tensor, ...}, [{key = 'value', ...}])
 *   tensors, metadata = rl.load(path, [{tensors = false}])
 *   value = rl._json_decode(text)
 *
 * save writes the tensors in byte order of their names, so the same table
 * always gives the same file; metadata values may be strings or numbers
 * (written as tostring gives them).  load returns CPU tensors and the
 * metadata table (empty when the file has none).  Scratch arrays live in
 * userdata on the Lua stack and the loaded results in a userdata with __gc,
 * so a Lua error midway leaks nothing. */
#include <stdlib.h>
#include <string.h>

#include "lrl.h"
#include "io/json.h"
#include "io/safetensors.h"

#define LRL_LOADED "rl.safetensors_loaded"
#define LRL_JSON_DOC "rl.json_doc"

typedef struct {
  const char *name;
  rl_tensor *t;
} named;

typedef struct {
  const char *key, *val;
} pair;

static int by_name(const void *a, const void *b) {
  return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

static int by_key(const void *a, const void *b) {
  return strcmp(((const pair *)a)->key, ((const pair *)b)->key);
}

/* The number of entries of the table at i. */
static int count_entries(lua_State *L, int i) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, i)) {
    n++;
    lua_pop(L, 1);
  }
  return n;
}

/* The string key at -2 (no NUL inside), or a Lua error naming the key. */
static const char *string_key(lua_State *L, const char *what) {
  if (lua_type(L, -2) != LUA_TSTRING) {
    const char *type = luaL_typename(L, -2);
    const char *k = luaL_tolstring(L, -2, NULL);
    luaL_error(L, "save: %s key %s (a %s) is not a string", what, k, type);
  }
  size_t len;
  const char *s = lua_tolstring(L, -2, &len);
  if (strlen(s) != len) luaL_error(L, "save: %s key \"%s\" contains a NUL byte", what, s);
  return s;
}

/* The tensor at -1, whose name is `name`, or a Lua error naming it.  The
 * box is read directly (lrl.h: one rl_tensor reference, NULL once closed)
 * so that a closed tensor's message can name it too. */
static rl_tensor *named_tensor(lua_State *L, const char *name) {
  rl_tensor **box = luaL_testudata(L, -1, LRL_TENSOR);
  if (!box)
    luaL_error(L, "save: value for \"%s\" is not a tensor (got %s)", name, luaL_typename(L, -1));
  if (!*box) luaL_error(L, "save: tensor \"%s\" was closed (by <close>)", name);
  return *box;
}

/* The tensors of the table at i, sorted by name, in a scratch userdata
 * pushed on the stack. */
static named *collect_tensors(lua_State *L, int i, int *n) {
  *n = count_entries(L, i);
  named *v = lua_newuserdatauv(L, sizeof *v * (size_t)(*n ? *n : 1), 0);
  int k = 0;
  lua_pushnil(L);
  while (lua_next(L, i)) {
    v[k].name = string_key(L, "tensor");
    v[k].t = named_tensor(L, v[k].name);
    k++;
    lua_pop(L, 1);
  }
  qsort(v, (size_t)k, sizeof *v, by_name);
  return v;
}

/* The value at -1 as a string kept alive in the anchor table at a. */
static const char *meta_value(lua_State *L, const char *key, int a) {
  int t = lua_type(L, -1);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "save: metadata value for \"%s\" must be a string (got %s)", key,
               luaL_typename(L, -1));
  size_t len;
  const char *s = luaL_tolstring(L, -1, &len); /* a new string: anchor it */
  if (strlen(s) != len) luaL_error(L, "save: metadata value for \"%s\" contains a NUL byte", key);
  lua_rawseti(L, a, (lua_Integer)lua_rawlen(L, a) + 1);
  return s;
}

/* The metadata table at i (nil: none), sorted by key, in a scratch
 * userdata pushed on the stack above an anchor table. */
static pair *collect_meta(lua_State *L, int i, int *n) {
  int have = !lua_isnoneornil(L, i);
  if (have) luaL_checktype(L, i, LUA_TTABLE);
  *n = have ? count_entries(L, i) : 0;
  lua_newtable(L);
  int anchor = lua_gettop(L);
  pair *v = lua_newuserdatauv(L, sizeof *v * (size_t)(*n ? *n : 1), 0);
  int k = 0;
  lua_pushnil(L);
  while (have && lua_next(L, i)) {
    v[k].key = string_key(L, "metadata");
    v[k].val = meta_value(L, v[k].key, anchor);
    k++;
    lua_pop(L, 1);
  }
  qsort(v, (size_t)k, sizeof *v, by_key);
  return v;
}

/* rl.save(path, {name = tensor, ...}, [metadata]) */
static int l_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3); /* scratch space starts at 4 */
  int n, nmeta;
  named *tv = collect_tensors(L, 2, &n);
  pair *mv = collect_meta(L, 3, &nmeta);
  const char **names = lua_newuserdatauv(L, sizeof *names * (size_t)(n + 2 * nmeta + 1), 0);
  rl_tensor **ts = lua_newuserdatauv(L, sizeof *ts * (size_t)(n ? n : 1), 0);
  const char **mk = names + n, **mvals = names + n + nmeta;
  for (int i = 0; i < n; i++) names[i] = tv[i].name, ts[i] = tv[i].t;
  for (int i = 0; i < nmeta; i++) mk[i] = mv[i].key, mvals[i] = mv[i].val;
  if (rl_safetensors_save(path, n, names, ts, nmeta, mk, mvals)) return lrl_error(L);
  return 0;
}

/* What rl_safetensors_load returned; __gc frees whatever is left. */
typedef struct {
  int n, nmeta;
  char **names, **mk, **mv;
  rl_tensor **ts;
} loaded;

static int loaded_gc(lua_State *L) {
  loaded *r = luaL_checkudata(L, 1, LRL_LOADED);
  rl_safetensors_free(r->n, r->names, r->ts, r->nmeta, r->mk, r->mv);
  memset(r, 0, sizeof *r);
  return 0;
}

/* {tensors = false} of rl.load: whether to read the tensors (default true) */
static bool load_tensors_opt(lua_State *L, int i) {
  if (lua_isnoneornil(L, i)) return true;
  luaL_checktype(L, i, LUA_TTABLE);
  bool tensors = true;
  lua_pushnil(L);
  while (lua_next(L, i)) {
    if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "tensors") != 0)
      luaL_argerror(L, i, lua_pushfstring(L, "unknown option '%s'; rl.load takes only tensors",
                                          luaL_tolstring(L, -2, NULL)));
    if (!lua_isboolean(L, -1))
      luaL_argerror(L, i, lua_pushfstring(L, "option tensors must be a boolean, not %s",
                                          luaL_typename(L, -1)));
    tensors = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return tensors;
}

/* tensors, metadata = rl.load(path, [{tensors = false}]): the tensors as
 * CPU tensors by name, and the metadata; with tensors = false the whole
 * header is still checked, no tensor is read and tensors is {}. */
static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  bool tensors = load_tensors_opt(L, 2);
  lua_settop(L, 2);
  loaded *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, LRL_LOADED);
  int box = lua_gettop(L);
  if (tensors ? rl_safetensors_load(path, &r->n, &r->names, &r->ts, &r->nmeta, &r->mk, &r->mv)
              : rl_safetensors_metadata(path, &r->nmeta, &r->mk, &r->mv))
    return lrl_error(L);
  lua_createtable(L, 0, r->n);
  for (int i = 0; i < r->n; i++) {
    /* the box is made while `r` still owns the tensor, then takes it */
    int b = lrl_newbox(L);
    lrl_fill(L, b, r->ts[i]);
    r->ts[i] = NULL;
    lua_setfield(L, -2, r->names[i]);
  }
  lua_createtable(L, 0, r->nmeta);
  for (int i = 0; i < r->nmeta; i++) {
    lua_pushstring(L, r->mv[i]);
    lua_setfield(L, -2, r->mk[i]);
  }
  lua_pushcfunction(L, loaded_gc); /* free the names now, not at the next GC */
  lua_pushvalue(L, box);
  lua_call(L, 1, 0);
  return 2;
}

/* ---- JSON ---------------------------------------------------------------- */

/* A parsed text and its tree; __gc frees whatever is left. */
typedef struct {
  char *text;
  rl_json_doc doc;
} json_doc;

static void json_doc_free(json_doc *d) {
  free(d->text);
  d->text = NULL;
  rl_json_free(&d->doc);
}

static int json_doc_gc(lua_State *L) {
  json_doc_free(luaL_checkudata(L, 1, LRL_JSON_DOC));
  return 0;
}

/* Push node nd as a Lua value.  As rl.json always decoded: integers stay
 * integers, null is nil, so a null member is absent and a null item is
 * skipped (the items after it move down), and {} and [] are empty tables.
 * The parser bounds the depth (RL_JSON_MAX_DEPTH), so recursion is safe. */
static void push_json(lua_State *L, const rl_json_doc *d, const rl_json_node *nd) {
  luaL_checkstack(L, 3, "json.decode: nesting too deep");
  switch (nd->type) {
  case RL_JSON_OBJ: {
    lua_createtable(L, 0, (int)nd->n);
    uint32_t c = nd->child;
    for (uint32_t i = 0; i < nd->n; i++, c = d->nodes[c].next) {
      if (d->nodes[c].type == RL_JSON_NULL) continue;
      lua_pushlstring(L, d->nodes[c].key, d->nodes[c].key_len);
      push_json(L, d, &d->nodes[c]);
      lua_rawset(L, -3);
    }
    break;
  }
  case RL_JSON_ARR: {
    lua_createtable(L, (int)nd->n, 0);
    lua_Integer k = 0;
    uint32_t c = nd->child;
    for (uint32_t i = 0; i < nd->n; i++, c = d->nodes[c].next) {
      if (d->nodes[c].type == RL_JSON_NULL) continue;
      push_json(L, d, &d->nodes[c]);
      lua_rawseti(L, -2, ++k);
    }
    break;
  }
  case RL_JSON_STR: lua_pushlstring(L, nd->v.s, nd->len); break;
  case RL_JSON_INT: lua_pushinteger(L, (lua_Integer)nd->v.i); break;
  case RL_JSON_NUM: lua_pushnumber(L, (lua_Number)nd->v.d); break;
  case RL_JSON_TRUE: lua_pushboolean(L, 1); break;
  case RL_JSON_FALSE: lua_pushboolean(L, 0); break;
  case RL_JSON_NULL: lua_pushnil(L); break;
  }
}

/* value = rl._json_decode(text): errors read "json.decode: what at byte N",
 * N counted from 1 as Lua counts string positions.  A Lua string may hold
 * any byte, so "\u0000" is accepted, and an integer beyond int64 becomes
 * a float, as Lua's tonumber makes it. */
static int l_json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  json_doc *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, LRL_JSON_DOC);
  d->text = malloc(len + 1); /* the parser decodes in place and NULs p[len] */
  if (!d->text) return luaL_error(L, "json.decode: out of memory");
  memcpy(d->text, s, len);
  rl_json_opts o = {.prefix = "json.decode", .text = "input", .base = 1, .allow_nul = true,
                    .big_ints = true};
  if (rl_json_parse(d->text, len, &o, &d->doc)) {
    json_doc_free(d);
    /* No "file:line:" in front: the message names json.decode and the
     * byte, as rl.json's errors always have (error(msg, 0)). */
    lua_pushstring(L, rl_errmsg());
    return lua_error(L);
  }
  push_json(L, &d->doc, &d->doc.nodes[0]);
  json_doc_free(d); /* now, not at the next GC */
  return 1;
}

void lrl_open_io(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"save", l_save}, {"load", l_load}, {"_json_decode", l_json_decode}, {NULL, NULL}};
  if (luaL_newmetatable(L, LRL_LOADED)) {
    lua_pushcfunction(L, loaded_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LRL_JSON_DOC)) {
    lua_pushcfunction(L, json_doc_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}
