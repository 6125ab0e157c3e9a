/* bench.c - the reference points benchmark scripts compare rl against:
 * a wall clock, OpenBLAS sgemm called directly from C, and memcpy.
 *
 * These measure the machine, not rl: scripts/bench_core.lua reports rl's
 * figures as ratios of them. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lrl.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* rl.clock(): seconds on a monotonic wall clock */
static int l_clock(lua_State *L) {
  lua_pushnumber(L, now());
  return 1;
}

/* nbytes set to byte, 64-byte aligned; NULL when out of memory. */
static void *alloc_filled(size_t nbytes, int byte) {
  void *p = aligned_alloc(64, (nbytes + 63) & ~(size_t)63);
  if (p) memset(p, byte, nbytes);
  return p;
}

/* Raised once every buffer is freed (free(NULL) is a no-op). */
static int out_of_memory(lua_State *L, size_t nbytes, void *a, void *b, void *c) {
  free(a);
  free(b);
  free(c);
  return luaL_error(L, "bench: out of memory (%d MB)", (int)(nbytes >> 20));
}

/* rl.bench_sgemm(n, reps): best seconds of one n x n x n cblas_sgemm */
static int l_bench_sgemm(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 1), reps = (int)luaL_optinteger(L, 2, 5);
  if (n < 1 || reps < 1) return luaL_error(L, "bench_sgemm: n and reps must be positive");
  size_t nb = sizeof(float) * (size_t)n * (size_t)n;
  float *a = alloc_filled(nb, 0), *b = alloc_filled(nb, 0), *c = alloc_filled(nb, 0);
  if (!a || !b || !c) return out_of_memory(L, nb, a, b, c);
  for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
    a[i] = (float)(i % 7) * 0.1f;
    b[i] = (float)(i % 5) * 0.2f;
  }
  double best = 1e30;
  for (int r = 0; r < reps + 1; r++) { /* the first call warms up */
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                c, n);
    double t = now() - t0;
    if (r > 0 && t < best) best = t;
  }
  free(a);
  free(b);
  free(c);
  lua_pushnumber(L, best);
  return 1;
}

/* rl.bench_memcpy(nbytes, reps): best seconds of one memcpy of nbytes */
static int l_bench_memcpy(lua_State *L) {
  lua_Integer nb = luaL_checkinteger(L, 1);
  int reps = (int)luaL_optinteger(L, 2, 10);
  if (nb < 1 || reps < 1) return luaL_error(L, "bench_memcpy: nbytes and reps must be positive");
  char *src = alloc_filled((size_t)nb, 1), *dst = alloc_filled((size_t)nb, 0);
  if (!src || !dst) return out_of_memory(L, (size_t)nb, src, dst, NULL);
  double best = 1e30;
  for (int r = 0; r < reps + 1; r++) {
    double t0 = now();
    memcpy(dst, src, (size_t)nb);
    double t = now() - t0;
    if (r > 0 && t < best) best = t;
  }
  volatile char sink = dst[nb / 2];
  (void)sink;
  free(src);
  free(dst);
  lua_pushnumber(L, best);
  return 1;
}

static const luaL_Reg fns[] = {
    {"clock", l_clock},
    {"bench_sgemm", l_bench_sgemm},
    {"bench_memcpy", l_bench_memcpy},
    {NULL, NULL},
};

void lrl_open_bench(lua_State *L) { luaL_setfuncs(L, fns, 0); }
