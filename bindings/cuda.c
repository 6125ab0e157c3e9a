/* cuda.c - rl.cuda_* : whether a device can be used, the caching
 * allocator's statistics, emptying its cache, synchronising, the device's
 * name; and the hook by which the
 * allocator runs a full Lua GC (tensors that are unreachable but not yet
 * collected hold device memory Lua's GC does not see; engine/cuda.h). */
#include "cuda.h"
#include "lrl.h"

/* The device or the reason there is none, as a Lua error. */
static const rl_device *need_cuda(lua_State *L, int i) {
  const rl_device *d = rl_cuda_device((int)luaL_optinteger(L, i, 0));
  if (!d) lrl_error(L);
  return d;
}

static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/* rl.cuda.is_available(): true when this build has CUDA and a device can
 * be used; false, never an error, otherwise. */
static int l_is_available(lua_State *L) {
  lua_pushboolean(L, rl_cuda_device_count() > 0);
  return 1;
}

/* rl.cuda.device_count(): the number of CUDA devices that can be used (0
 * without CUDA). */
static int l_device_count(lua_State *L) {
  lua_pushinteger(L, rl_cuda_device_count());
  return 1;
}

/* rl.cuda.memory_stats([device]) -> {allocated = bytes, ...} */
static int l_memory_stats(lua_State *L) {
  const rl_device *d = need_cuda(L, 1);
  rl_cuda_memstats s;
  if (rl_cuda_memory_stats(d->index, &s)) return lrl_error(L);
  lua_createtable(L, 0, 14);
  set_int(L, "allocated", s.allocated);
  set_int(L, "requested", s.requested);
  set_int(L, "cached", s.cached);
  set_int(L, "reserved", s.reserved);
  set_int(L, "peak_allocated", s.peak_allocated);
  set_int(L, "peak_reserved", s.peak_reserved);
  set_int(L, "allocs", s.n_alloc);
  set_int(L, "cache_hits", s.n_cache_hit);
  set_int(L, "cuda_mallocs", s.n_cuda_malloc);
  set_int(L, "cuda_frees", s.n_cuda_free);
  set_int(L, "oom_retries", s.n_oom_retry);
  set_int(L, "gc_runs", s.n_gc);
  set_int(L, "device_free", s.device_free);
  set_int(L, "device_total", s.device_total);
  return 1;
}

/* rl.cuda.empty_cache(): hands the device memory the caching allocator
 * holds for reuse (blocks no tensor uses) back to the driver, so other
 * processes can have it.  Does nothing when no device is in use. */
static int l_empty_cache(lua_State *L) {
  lrl_check_rc(L, rl_cuda_empty_cache());
  return 0;
}

/* rl.cuda.synchronize([device = 0]): waits until every queued kernel has
 * finished, so that a failing kernel raises here and timings are true.
 * Raises when the numbered device cannot be used. */
static int l_synchronize(lua_State *L) {
  need_cuda(L, 1);
  lrl_check_rc(L, rl_cuda_synchronize());
  return 0;
}

/* rl.cuda.device_name([device]) -> "NVIDIA H100 80GB HBM3", "9.0" */
static int l_device_name(lua_State *L) {
  const rl_device *d = need_cuda(L, 1);
  char name[256];
  int major, minor;
  if (rl_cuda_device_name(d->index, name, sizeof name, &major, &minor)) return lrl_error(L);
  lua_pushstring(L, name);
  lua_pushfstring(L, "%d.%d", major, minor);
  return 2;
}

/* rl.cuda.allow_tf32([on]) -> the previous setting (engine/cuda.h); with
 * no argument, only reads it. */
static int l_allow_tf32(lua_State *L) {
  lua_pushboolean(L, rl_cuda_set_tf32(lua_isnoneornil(L, 1) ? -1 : lua_toboolean(L, 1)));
  return 1;
}

/* parse_device('cuda') -> 'cuda:0', or the reason it cannot be used */
static int l_parse_device(lua_State *L) {
  lua_pushstring(L, lrl_device_arg(L, 1)->name);
  return 1;
}

/* ---- bf16 convolutions' choices (engine/cuda.h) ------------------------------ */

/* _cuda_conv_choices() -> a list of {key, algorithm, how, ms}: each bf16
 * convolution pass this process ran on a GPU and its algorithm ('im2col'
 * or 'implicit'); how: 'measured' (ms: both candidates' best times),
 * 'cached' (measured by an earlier process on this GPU model), 'forced'
 * (RL_CUDA_CONV or _cuda_conv_force) or 'rule' (the implicit GEMM cannot
 * run the pass).  Empty without CUDA. */
static int l_cuda_conv_choices(lua_State *L) {
  lrl_push_choices(L, rl_cuda_conv_book());
  return 1;
}

/* _cuda_conv_force(name | nil) -> the previous setting: 'im2col' or
 * 'implicit' for every bf16 pass that can take it, 'auto' to measure per
 * shape, nil to follow $RL_CUDA_CONV again. */
static int l_cuda_conv_force(lua_State *L) {
  rl_tune_book *b = rl_cuda_conv_book();
  if (!b) return luaL_error(L, "CUDA backend not built (rebuild with nvcc on the PATH and CUDA=1)");
  return lrl_force_choice(L, b);
}

/* _cuda_conv_info() -> {cache = the file of the GPU's choices ('' when
 * kept in the process, RL_CUDA_CONV_CACHE=off, or before a device is in
 * use: the file is named after the GPU), forced = 'auto', 'im2col' or 'implicit'};
 * a misspelt RL_CUDA_CONV is an error naming it. */
static int l_cuda_conv_info(lua_State *L) {
  rl_tune_book *b = rl_cuda_conv_book();
  int forced = b ? rl_tune_forced(b) : 0;
  if (forced < 0) return lrl_error(L);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, rl_cuda_conv_cache_path());
  lua_setfield(L, -2, "cache");
  lua_pushstring(L, b ? rl_tune_name(b, forced) : "auto");
  lua_setfield(L, -2, "forced");
  return 1;
}

/* ---- the GC hook ------------------------------------------------------------ */

static void full_gc(void *ud) { lua_gc((lua_State *)ud, LUA_GCCOLLECT); }

/* Unregisters the hook when the Lua state closes. */
static int hook_gc(lua_State *L) {
  (void)L;
  rl_cuda_set_gc_hook(NULL, NULL);
  return 0;
}

static const luaL_Reg fns[] = {
    {"cuda_is_available", l_is_available},
    {"cuda_device_count", l_device_count},
    {"cuda_memory_stats", l_memory_stats},
    {"cuda_empty_cache", l_empty_cache},
    {"cuda_synchronize", l_synchronize},
    {"cuda_device_name", l_device_name},
    {"cuda_allow_tf32", l_allow_tf32},
    {"parse_device", l_parse_device},
    {"_cuda_conv_choices", l_cuda_conv_choices},
    {"_cuda_conv_force", l_cuda_conv_force},
    {"_cuda_conv_info", l_cuda_conv_info},
    {NULL, NULL},
};

void lrl_open_cuda(lua_State *L) {
  luaL_setfuncs(L, fns, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State *main = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, hook_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "rl.cuda.gc_hook");
  rl_cuda_set_gc_hook(full_gc, main);
}
