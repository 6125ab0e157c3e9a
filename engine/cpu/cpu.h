/* cpu.h - shared pieces of the CPU backend. */
#ifndef RL_CPU_H
#define RL_CPU_H

#include <math.h>
#include <omp.h>

#include "../backend.h"

/* Work below this many elements runs on one thread: forking costs more. */
#define RL_CPU_GRAIN 32768

/* A 1-D inner loop: n elements, per-operand byte strides. */
typedef void (*rl_loop_fn)(char **data, const int64_t *strides, int64_t n,
                           const double *p);

/* Run `fn` over the whole iterator, split across threads for large ones. */
void rl_cpu_iter_run(const rl_iter *it, rl_loop_fn fn, const double *p);

/* A libm function on float or double by the argument's type:
 * RL_MATH(tanh, x) is tanhf(x) for a float x and tanh(x) for a double. */
/* i64 arithmetic wraps, as PyTorch's does: it is done in uint64_t, where
 * overflow is defined (signed overflow is not), and converted back. */
#define U64(x) ((uint64_t)(x))
#define WRAP(e) ((int64_t)(e))

#define RL_MATH(fn, x) _Generic((x), float: fn##f, default: fn)(x)
#define RL_MATH2(fn, x, y) _Generic((x), float: fn##f, default: fn)(x, y)
#define RL_MATH3(fn, x, y, z) _Generic((x), float: fn##f, default: fn)(x, y, z)

/* Run the body (the trailing arguments, commas allowed) for i in [0, n), in
 * parallel when n * work is large. */
#define RL_PARALLEL_FOR(i, n, work, ...)                                  \
  do {                                                                      \
    int64_t n__ = (n);                                                      \
    if ((double)n__ * (double)(work) >= RL_CPU_GRAIN && omp_get_max_threads() > 1) { \
      _Pragma("omp parallel for schedule(static)")                          \
      for (int64_t i = 0; i < n__; i++) { __VA_ARGS__; }                           \
    } else {                                                                \
      for (int64_t i = 0; i < n__; i++) { __VA_ARGS__; }                           \
    }                                                                       \
  } while (0)

/* Threads for `units` independent pieces of `work` elements each: one when
 * the whole is below the grain, never more than the pieces. */
static inline int rl_cpu_team(int64_t units, double work) {
  int t = omp_get_max_threads();
  if ((double)units * work < RL_CPU_GRAIN) t = 1;
  return units < t ? (int)units : t;
}

/* The groups a convolution's weight gradient splits the batch into (at
 * most; fewer for small batches): each group's partial is summed in group
 * order, so that dW's bits never depend on the thread count. */
#define RL_CPU_DW_GROUPS 8

/* n bytes rounded up to a 64-byte line (scratch carved into pieces). */
static inline size_t rl_cpu_round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The body of a kernel entry taking f32 or f64: run the call for dt, or
 * name the op and the dtype it lacks. */
#define RL_CPU_DISPATCH_FLOAT(opname, f32call, f64call)                           \
  do {                                                                            \
    if (dt == RL_F32) f32call;                                                    \
    else if (dt == RL_F64) f64call;                                               \
    else return rl_err(opname ": not defined for %s", rl_dtype_name(dt));         \
    return 0;                                                                     \
  } while (0)

/* Return the cached big host blocks to the system. */
void rl_cpu_empty_cache(void);

/* The kernels of the table; each signature and its comment are in
 * backend.h. */
#define RL_CPU_KERNEL_(k) rl_##k##_kernel rl_cpu_##k;
RL_KERNELS(RL_CPU_KERNEL_)
#undef RL_CPU_KERNEL_

/* Bracket an OpenMP region whose threads call BLAS each on its own. */
int rl_cpu_blas_solo_begin(void);
void rl_cpu_blas_solo_end(int saved);
/* Whether Winograd (cpu_winograd.c, cpu_winograd4.c) can run a convolution: f32,
 * 3x3, stride 1, no dilation; and whether the rule for shapes not measured
 * takes it (>= 8 input channels and >= 10 output columns as well). */
bool rl_cpu_wino_fits(rl_dtype dt, const int64_t *g);
bool rl_cpu_wino_ok(rl_dtype dt, int64_t C, const int64_t *g);
/* The Winograd kernels themselves, F(2x2, 3x3) and F(4x4, 3x3): wino_cpu.h. */

#endif
