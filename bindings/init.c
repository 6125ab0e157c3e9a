/* init.c - opens the rl.core module: one table holding what every binding
 * file registers (lrl_open_*), and the engine-wide switches (threads, op
 * counters, the convolution path, the live-bytes count for specs).  Like
 * Torch7's init.c, it is the only file that knows all the others; they
 * know only lrl.h. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>

#include "lrl.h"

/* ---- engine-wide switches ----------------------------------------------- */

/* rl.set_num_threads(n): the number of CPU threads the engine's parallel
 * loops (OpenMP) use, and OpenBLAS's too where the build can set them;
 * n < 1 counts as 1. */
static int l_set_num_threads(lua_State *L) {
  rl_set_num_threads((int)luaL_checkinteger(L, 1));
  return 0;
}

/* rl.get_num_threads(): the number of CPU threads the engine's parallel
 * loops use (rl.set_num_threads changes it). */
static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, rl_get_num_threads());
  return 1;
}

/* rl.counters() -> {gemm_calls, gemm_flops, nodes_run, implicit_convs}:
 * totals since the process started, for benchmarks and specs: the matrix
 * products run (convolutions included), their floating-point operations
 * (2 m n k for each), the autograd nodes run by backward passes, and the
 * convolution passes (forward or input gradient) that took the implicit
 * GEMM.  They are never reset: compare two readings. */
static int l_counters(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)rl_counter.gemm_calls);
  lua_setfield(L, -2, "gemm_calls");
  lua_pushnumber(L, (lua_Number)rl_counter.gemm_flops);
  lua_setfield(L, -2, "gemm_flops");
  lua_pushinteger(L, (lua_Integer)rl_counter.nodes_run);
  lua_setfield(L, -2, "nodes_run");
  lua_pushinteger(L, (lua_Integer)rl_counter.implicit_convs);
  lua_setfield(L, -2, "implicit_convs");
  return 1;
}

/* _conv_path(path [, chunk_bytes]): 'auto', 'im2col', 'winograd' or
 * 'implicit' (bf16's implicit GEMM where it fits); the last three force
 * the engine's convolution paths (the ones CUDA runs)
 * instead of the CPU's own kernels, and chunk_bytes caps their workspaces.
 * For specs.  Returns the previous path. */
static int l_conv_path(lua_State *L) {
  static const char *const names[] = {"auto", "im2col", "winograd", "implicit", NULL};
  int p = luaL_checkoption(L, 1, NULL, names);
  lua_Integer cap = luaL_optinteger(L, 2, 0);
  lua_pushstring(L, names[rl_conv_set_path((rl_conv_path)p, (int64_t)cap)]);
  return 1;
}

/* _live_bytes(): bytes held by live storages, host and devices.  For specs
 * that check a failed call leaves no temporary behind (STYLE rule 1). */
static int l_live_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)rl_storage_live_bytes());
  return 1;
}

static const luaL_Reg engine_fns[] = {
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads},
    {"counters", l_counters},
    {"_conv_path", l_conv_path},
    {"_live_bytes", l_live_bytes},
    {NULL, NULL},
};

/* ---- the module ---------------------------------------------------------- */

/* Loaded as a C module, the engine must outlive lua_close: OpenMP's worker
 * threads and OpenBLAS's may still run when Lua unloads its C libraries, and
 * unmapping their code under them crashes at exit.  Pin this object. */
static void pin_module(void) {
  Dl_info info;
  if (dladdr((void *)pin_module, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

int luaopen_rl_core(lua_State *L) {
  pin_module();
  lua_newtable(L); /* the module */
  lrl_open_tensor(L);
  luaL_setfuncs(L, engine_fns, 0);
  lrl_open_generator(L);
  lrl_open_bench(L);
  lrl_open_cpu(L);
  lrl_open_image(L);
  lrl_open_io(L);
  lrl_open_nn(L);
  lrl_open_dist(L);
  lrl_open_cuda(L);
  lrl_open_data(L);
  /* the methods table: ops, printing */
  lrl_open_methods(L);
  lrl_open_ops(L);
  lrl_open_print(L);
  lua_setfield(L, -2, "Tensor"); /* rl.core.Tensor = the methods table */
  luaL_getmetatable(L, LRL_TENSOR);
  lua_setfield(L, -2, "Tensor_mt");
  return 1;
}
