/* cpu.c - what the CPU backend detected and chose, for rl.backends.cpu
 * (lua/rl/backends.lua): the processor, and each convolution shape's
 * algorithm. */
#include "cpu/cpu_dnnl.h"
#include "cpu/cpu_tune.h"
#include "lrl.h"

static void set_int(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* _cpu_info() -> {vendor, model, l1d, l2, l3 (bytes), cpus, cache_source,
 * features = {avx2, fma, avx512f, ...}, built_for, built_lanes,
 * conv_chunk_bytes, wino_chunk_bytes, conv_cache (the choices' file, ''
 * when off), conv_forced ('auto' or the RL_CPU_CONV algorithm)}: the
 * processor as the CPU backend saw it and what it derived from it. */
static int l_cpu_info(lua_State *L) {
  const rl_cpu_info_t *c = rl_cpu_info();
  lua_newtable(L);
  set_str(L, "vendor", c->vendor);
  set_str(L, "model", c->model);
  set_int(L, "l1d", c->l1d);
  set_int(L, "l2", c->l2);
  set_int(L, "l3", c->l3);
  set_int(L, "cpus", c->cpus);
  set_str(L, "cache_source", c->cache_source);
  const struct {
    const char *name;
    bool on;
  } features[] = {{"avx2", c->avx2},         {"fma", c->fma},           {"avx512f", c->avx512f},
                  {"avx512bw", c->avx512bw}, {"avx512vl", c->avx512vl}, {"avx512_bf16", c->avx512_bf16},
                  {"amx_tile", c->amx_tile}, {"amx_bf16", c->amx_bf16}, {"amx_int8", c->amx_int8}};
  lua_newtable(L);
  for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
    lua_pushboolean(L, features[i].on);
    lua_setfield(L, -2, features[i].name);
  }
  lua_setfield(L, -2, "features");
  set_str(L, "built_for", c->built_for);
  set_int(L, "built_lanes", c->built_lanes);
  set_int(L, "conv_chunk_bytes", rl_cpu_conv_chunk_bytes());
  set_int(L, "wino_chunk_bytes", rl_cpu_wino_chunk_bytes());
  set_str(L, "conv_cache", rl_tune_path(rl_cpu_conv_book()));
  const char *dnnl = rl_cpu_dnnl_version();
  if (dnnl) set_str(L, "onednn", dnnl);
  int f = rl_tune_forced(rl_cpu_conv_book());
  if (f < 0) return lrl_error(L);
  set_str(L, "conv_forced", rl_tune_name(rl_cpu_conv_book(), f));
  return 1;
}

void lrl_push_choices(lua_State *L, rl_tune_book *book) {
  const rl_tune_choice *list;
  int n = book ? rl_tune_choices(book, &list) : 0;
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    set_str(L, "key", list[i].key);
    set_str(L, "algorithm", rl_tune_name(book, list[i].alg));
    set_str(L, "how", list[i].how);
    double any = 0;
    for (int a = 1; a < book->n; a++) any += list[i].ms[a];
    if (any > 0) {
      lua_newtable(L);
      for (int a = 1; a < book->n; a++)
        if (list[i].ms[a] > 0) {
          lua_pushnumber(L, list[i].ms[a]);
          lua_setfield(L, -2, rl_tune_name(book, a));
        }
      lua_setfield(L, -2, "ms");
    }
    lua_rawseti(L, -2, i + 1);
  }
}

int lrl_force_choice(lua_State *L, rl_tune_book *book) {
  int before = rl_tune_forced(book);
  const char *name = luaL_optstring(L, 1, NULL);
  if (rl_tune_force(book, name)) return lrl_error(L);
  lua_pushstring(L, before < 0 ? "auto" : rl_tune_name(book, before));
  return 1;
}

/* _cpu_conv_choices() -> a list of {key, algorithm, how, ms}: ms keyed by
 * algorithm name (direct, winograd, im2col, onednn, onednn-wino, winograd4): each convolution pass's shape and the algorithm it
 * took in this process, in the order first seen.  how: 'measured' (ms: the
 * candidates' best times), 'cached' (measured by an earlier process on this
 * machine), 'forced' (RL_CPU_CONV) or 'rule' (f64, or too small to time). */
static int l_cpu_conv_choices(lua_State *L) {
  lrl_push_choices(L, rl_cpu_conv_book());
  return 1;
}

/* _cpu_conv_force(name | nil) -> the previous setting: force 'direct',
 * 'winograd', 'im2col', 'onednn', 'onednn-wino' or 'winograd4' on every convolution
 * that can take it ('auto':
 * choose per shape), or with nil go back to $RL_CPU_CONV. */
static int l_cpu_conv_force(lua_State *L) { return lrl_force_choice(L, rl_cpu_conv_book()); }

static const luaL_Reg cpu_fns[] = {
    {"_cpu_info", l_cpu_info},
    {"_cpu_conv_choices", l_cpu_conv_choices},
    {"_cpu_conv_force", l_cpu_conv_force},
    {NULL, NULL},
};

void lrl_open_cpu(lua_State *L) {
  if (rl_cpu_check_build()) lrl_error(L);
  luaL_setfuncs(L, cpu_fns, 0);
}
