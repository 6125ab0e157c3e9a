/* backend.h - the kernel table a device implements.
 *
 * The ops layer (engine/ops_*.c) checks shapes, allocates outputs, records
 * autograd and then calls tensor->device->be->kernel(...).  A kernel sees
 * raw pointers, sizes and strides only (the whole convolutions excepted:
 * they get contiguous tensors); it validates nothing the ops layer already
 * checked.  engine/cpu/ implements this table with OpenMP and OpenBLAS,
 * kernels/ with CUDA and cuBLAS.  Every kernel returns 0 or a negative
 * status with rl_err() set.
 *
 * Where convolution lives: engine/ops_conv.c checks shapes and records
 * autograd, then always calls the backend's conv2d / conv2d_bwd.  The CPU's
 * are its own kernels (engine/cpu/cpu_conv.c, cpu_winograd.c).  CUDA's are
 * engine/conv_gemm.c, Winograd or im2col composed from the entries gemm,
 * im2col, col2im and wino_*, run with figures measured on the GPU
 * (kernels/cuda_conv.cu).  rl_conv_set_path (ops.h) makes the CPU run that
 * composition too, so the specs gradcheck the GPU's arithmetic. */
#ifndef RL_BACKEND_H
#define RL_BACKEND_H

#include "core.h"

/* ---- elementwise ------------------------------------------------------- */

/* An elementwise loop over up to four operands (arg 0 is the output) that
 * share one iteration shape; broadcast operands have stride 0.  Dims are
 * coalesced and ordered outermost first. */
#define RL_ITER_MAX_ARGS 4
typedef struct rl_iter {
  int ndim;
  int nargs;
  int64_t numel;
  int64_t size[RL_MAX_DIMS];
  char *data[RL_ITER_MAX_ARGS];
  int64_t stride[RL_ITER_MAX_ARGS][RL_MAX_DIMS]; /* elements */
  rl_dtype dtype[RL_ITER_MAX_ARGS];
} rl_iter;

/* The elementwise ops, one row each: X(ENUM, name, lua).  The enums
 * (RL_UN_<ENUM>, ...) and the names in messages are made from these rows;
 * lua = 1 makes the bindings expose a unary op as x:name() and x:name_().
 * A new op is a row here, its CPU formula (engine/cpu/cpu_pointwise.c), its
 * CUDA formula (kernels/cuda_pointwise.cu), its gradient (unary_bwd etc. in
 * engine/ops_pointwise.c) and a spec; engine/README.md walks the path. */

/* Unary ops: out = f(a; p[0], p[1]).  Input and output have one dtype,
 * except the comparisons (*_S) and ISNAN, whose output is u8. */
#define RL_UNARY_OPS(X)                                                       \
  X(NEG, neg, 1) X(ABS, abs, 1) X(SIGN, sign, 1) X(EXP, exp, 1) X(LOG, log, 1) \
  X(SQRT, sqrt, 1) X(RSQRT, rsqrt, 1) X(RELU, relu, 1) X(SIGMOID, sigmoid, 1) \
  X(TANH, tanh, 1) X(SQUARE, square, 1) X(RECIP, reciprocal, 1)             \
  X(FLOOR, floor, 1) X(CEIL, ceil, 1) X(ROUND, round, 1) X(LOG1P, log1p, 1)   \
  X(EXPM1, expm1, 1) X(SIN, sin, 1) X(COS, cos, 1)                            \
  X(CLAMP, clamp, 0)      /* min(max(a, p0), p1) */                           \
  X(AFFINE, affine, 0)    /* a * p0 + p1 (scalar add, sub, mul, div) */       \
  X(RDIV, rdiv, 0)        /* p0 / a */                                        \
  X(POW, pow, 0)          /* a ^ p0 */                                        \
  X(RPOW, rpow, 0)        /* p0 ^ a */                                        \
  X(FMOD, fmod, 0)        /* fmod(a, p0) */                                   \
  X(MAXS, clamp_min, 0)   /* max(a, p0) */                                    \
  X(MINS, clamp_max, 0)   /* min(a, p0) */                                    \
  X(NOT, logical_not, 1)  /* u8: !a */                                        \
  X(EQ_S, eq, 0) X(NE_S, ne, 0) X(LT_S, lt, 0) X(LE_S, le, 0) X(GT_S, gt, 0)  \
  X(GE_S, ge, 0)                                                              \
  X(ISNAN, isnan, 0)      /* u8 output */                                     \
  X(REMS, remainder, 0)   /* remainder(a, p0): the sign of the divisor, as Lua's % */

/* Binary ops: out = f(a, b; p0).  Comparisons and AND/OR write u8. */
#define RL_BINARY_OPS(X)                                                      \
  X(ADD, add, 0)          /* a + p0*b */                                      \
  X(SUB, sub, 0)          /* a - p0*b */                                      \
  X(MUL, mul, 0) X(DIV, div, 0) X(POW, pow, 0) X(MAX, maximum, 0)             \
  X(MIN, minimum, 0) X(FMOD, fmod, 0)                                         \
  X(REMAINDER, remainder, 0) /* a - floor(a/b)*b: the sign of b, as Lua's and torch's % */ \
  X(EQ, eq, 0) X(NE, ne, 0) X(LT, lt, 0) X(LE, le, 0) X(GT, gt, 0) X(GE, ge, 0) \
  X(AND, logical_and, 0) X(OR, logical_or, 0)                                 \
  X(RELU_BWD, relu_backward, 0)       /* a * (b > 0)     : grad, input */     \
  X(SIGMOID_BWD, sigmoid_backward, 0) /* a * b * (1 - b) : grad, output */    \
  X(TANH_BWD, tanh_backward, 0)       /* a * (1 - b*b)   : grad, output */    \
  X(SIGN_MUL, sign_mul, 0)            /* a * sign(b) */

/* Ternary ops: out = f(a, b, c; p). */
#define RL_TERNARY_OPS(X)                                                     \
  X(WHERE, where, 0)      /* a (u8) ? b : c */                                \
  X(FMA, fma, 0)          /* a * b + c */                                     \
  X(ADDCMUL, addcmul, 0)  /* a + p0 * b * c */                                \
  X(ADDCDIV, addcdiv, 0)  /* a + p0 * b / c */                                \
  X(LERP, lerp, 0)        /* a + p0 * (b - a) */                              \
  X(CLAMP, clamp, 0)      /* min(max(a, b), c) */

#define RL_UN_ENUM_(E, name, lua) RL_UN_##E,
#define RL_BIN_ENUM_(E, name, lua) RL_BIN_##E,
#define RL_TER_ENUM_(E, name, lua) RL_TER_##E,
typedef enum { RL_UNARY_OPS(RL_UN_ENUM_) RL_UN_COUNT } rl_unary_op;
typedef enum { RL_BINARY_OPS(RL_BIN_ENUM_) RL_BIN_COUNT } rl_binary_op;
typedef enum { RL_TERNARY_OPS(RL_TER_ENUM_) RL_TER_COUNT } rl_ternary_op;
#undef RL_UN_ENUM_
#undef RL_BIN_ENUM_
#undef RL_TER_ENUM_

/* ---- reductions -------------------------------------------------------- */

typedef enum {
  RL_RED_SUM, RL_RED_PROD, RL_RED_MAX, RL_RED_MIN,
  RL_RED_ABSSUM,  /* sum |x|    (l1 norm)          */
  RL_RED_SQSUM,   /* sum x^2    (squared l2 norm)  */
  RL_RED_ABSMAX,  /* max |x|    (l-inf norm)       */
  RL_RED_ANY, RL_RED_ALL, /* u8 */
  RL_RED_COUNT
} rl_reduce_op;

/* A reduction: for every output element (the kept dims), combine the input
 * elements along the reduced dims.  `idx`, when not NULL, receives the i64
 * position of the max/min within the flattened reduced dims (first one on
 * ties, as PyTorch on the CPU). */
typedef struct rl_rediter {
  int ondim, rndim;
  int64_t onumel, rnumel;
  int64_t osize[RL_MAX_DIMS], ostride_out[RL_MAX_DIMS], ostride_in[RL_MAX_DIMS],
      ostride_idx[RL_MAX_DIMS];
  int64_t rsize[RL_MAX_DIMS], rstride_in[RL_MAX_DIMS];
  char *out, *in, *idx;
  rl_dtype out_dtype, in_dtype;
} rl_rediter;

/* ---- random numbers ---------------------------------------------------- */

typedef enum {
  RL_RNG_UNIFORM,   /* [p0, p1) */
  RL_RNG_NORMAL,    /* mean p0, std p1 */
  RL_RNG_BERNOULLI, /* 1 with probability p0 */
  RL_RNG_RANDINT,   /* integers in [p0, p1) */
} rl_rng_dist;

/* ---- the kernels --------------------------------------------------------
 *
 * Each kernel's signature is declared once, here, as a function type with
 * its comment.  The table below holds a pointer of each type, and a backend
 * declares its kernels from the same types (engine/cpu/cpu.h:
 * `rl_gemm_kernel rl_cpu_gemm;`, kernels/cuda_common.cuh likewise). */

/* Elementwise; `copy` converts dtypes (arg 0 <- arg 1). */
typedef int rl_fill_kernel(const rl_iter *it, double value);
typedef int rl_copy_kernel(const rl_iter *it);
typedef int rl_unary_kernel(rl_unary_op op, const rl_iter *it, const double *p);
typedef int rl_binary_kernel(rl_binary_op op, const rl_iter *it, double p0);
typedef int rl_ternary_kernel(rl_ternary_op op, const rl_iter *it, const double *p);

typedef int rl_reduce_kernel(rl_reduce_op op, const rl_rediter *r);

/* Row-major GEMM, batched by stride: for b < batch,
 *   C_b[m x n] = alpha * op(A_b)[m x k] * op(B_b)[k x n] + beta * C_b
 * where op(X) = X^T when tX.  lda etc. are row strides of the stored
 * matrices; stride_* are the batch strides (0 = shared).  A and B are dt,
 * C is ct: dt itself, or f32 for bf16 operands (the products summed in f32
 * and left unrounded, for the convolution's sums that are added to more,
 * col2im's and the weight gradient's chunks, before their one rounding;
 * engine/conv_gemm.c). */
typedef int rl_gemm_kernel(rl_dtype dt, rl_dtype ct, bool ta, bool tb, int64_t m, int64_t n,
                           int64_t k, double alpha, const void *a, int64_t lda, int64_t stride_a,
                           const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
                           int64_t ldc, int64_t stride_c, int64_t batch);

/* Whole convolutions: contiguous x [N, C, H, W], w [O, C, kh, kw], b [O]
 * or NULL, into y [N, O, OH, OW], which the ops layer allocated; geom as
 * for im2col.  Never called with nothing to multiply (N*O*OH*OW or
 * C*kh*kw zero).  conv2d_bwd writes dx [N, C, H, W], dw [O, C, kh, kw] and
 * db [O] from dy [N, O, OH, OW] (each skipped when NULL; overwritten, never
 * accumulated into); x is given when dw or db is asked for, w when dx is.
 * Tensors rather than pointers, because a backend may compose them from
 * its other entries (engine/conv_gemm.c), with workspace on their device. */
typedef int rl_conv2d_kernel(const int64_t *geom, rl_tensor *x, rl_tensor *w, rl_tensor *b,
                             rl_tensor *y);
typedef int rl_conv2d_bwd_kernel(const int64_t *geom, rl_tensor *x, rl_tensor *w,
                                 rl_tensor *dy, rl_tensor *dx, rl_tensor *dw, rl_tensor *db);

/* Convolution helpers for engine/conv_gemm.c.  x is a contiguous
 * [nb, C, H, W] slab of dtype dt; col is [C*kh*kw, nb*OH*OW] (column =
 * image * OH*OW + output pixel).  col2im gathers into x (overwriting it),
 * so it is deterministic.  For bf16, im2col's col is bf16 (the elements
 * moved) but col2im's is f32: a bf16 convolution's input gradient, whose
 * taps are summed in f32 and rounded once into x. */
typedef int rl_im2col_kernel(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H,
                             int64_t W, const int64_t *geom, void *col);
typedef int rl_col2im_kernel(rl_dtype dt, const void *col, int64_t nb, int64_t C, int64_t H,
                             int64_t W, const int64_t *geom, void *x);

/* The implicit GEMMs of engine/conv_gemm.c's implicit path (bf16 only):
 * y [N, O, OH, OW] = the convolution of contiguous x [N, C, H, W] with w
 * [O, C, kh, kw] (geom as for im2col), plus b [O] when b, each output its
 * f32 sum of the bf16 products, plus the bias, rounded once to bf16; col
 * is never formed.  flip (the input gradient of a stride-1, undilated
 * convolution, as a convolution of dy): w is [C, O, kh, kw], read with its
 * channels swapped and each kernel rotated by 180 degrees.  CUDA's is
 * mma.sync on the tensor cores (kernels/cuda_igemm.cu), the CPU's a plain
 * loop for the specs. */
typedef int rl_conv_implicit_kernel(rl_dtype dt, const void *x, int64_t N, int64_t C,
                                    int64_t H, int64_t W, const int64_t *geom, const void *w,
                                    bool flip, int64_t O, const void *b, void *y);
/* Its weight gradient: dw [O, C, kh, kw] (bf16) from x [N, C, H, W] and
 * dy [N, O, OH, OW], the sum over the N*OH*OW pixels cut into S chunks of
 * rl_implicit_dw_chunk (engine/conv_gemm.h) pixels, each chunk's f32 sum
 * in ws [S, O, C*kh*kw] (f32 workspace), then dw = those summed in chunk
 * order, rounded once. */
typedef int rl_conv_implicit_dw_kernel(rl_dtype dt, const void *x, const void *dy, int64_t N,
                                       int64_t C, int64_t H, int64_t W, const int64_t *geom,
                                       int64_t O, int64_t S, float *ws, void *dw);

/* Winograd F(2x2, 3x3) tile transforms (engine/winograd.h) for the
 * Winograd path of engine/conv_gemm.c (3x3 stride-1 convolutions).  Tiles
 * are 4x4 at stride 2 over the padded input (2x2 blocks of the output),
 * TH x TW per image.  Tile columns come in chunks of nbc images: tile
 * (n, th, tw) is column q = ((n % nbc)*TH + th)*TW + tw of chunk
 * s = n / nbc, each chunk [16, rows, Pc] with Pc = nbc*TH*TW (nbc = nb:
 * one chunk of all the columns).
 * wino_weight: w [O, C, 3, 3] -> U [16, O, C]; flipped (for an input
 *   gradient): U [16, C, O], from each kernel rotated by 180 degrees.
 * wino_input: x [nb, C, H, W], padded by (ph, pw) -> V, rows C.
 * wino_output: M [16, O, nb*TH*TW] (one chunk) -> y [nb, O, OH, OW],
 *   plus b[o] when b.
 * wino_doutput: dy [nb, O, OH, OW] -> dM, rows O (the adjoint of
 *   wino_output).
 * wino_dweight: dU [S, 16, O, C], summed over s in order -> dw [O, C, 3,
 *   3] (the adjoint of wino_weight).
 * With dt bf16, M and dU (the GEMMs' sums) are f32 and everything else
 * bf16; each transform computes in f32 and rounds its result once. */
typedef int rl_wino_weight_kernel(rl_dtype dt, const void *w, int64_t O, int64_t C, bool flip,
                                  void *U);
typedef int rl_wino_input_kernel(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H,
                                 int64_t W, int64_t ph, int64_t pw, int64_t TH, int64_t TW,
                                 int64_t nbc, void *V);
typedef int rl_wino_output_kernel(rl_dtype dt, const void *M, int64_t nb, int64_t O,
                                  int64_t OH, int64_t OW, int64_t TH, int64_t TW,
                                  const void *b, void *y);
typedef int rl_wino_doutput_kernel(rl_dtype dt, const void *dy, int64_t nb, int64_t O,
                                   int64_t OH, int64_t OW, int64_t TH, int64_t TW, int64_t nbc,
                                   void *dM);
typedef int rl_wino_dweight_kernel(rl_dtype dt, const void *dU, int64_t S, int64_t O,
                                   int64_t C, void *dw);

/* Pooling over contiguous [NC, H, W] planes; geom as for im2col.
 * max: idx receives the flat h*W+w of each maximum.  The backward passes
 * gather (each input looks at the windows that cover it). */
typedef int rl_maxpool2d_kernel(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                                const int64_t *geom, void *y, int64_t *idx);
typedef int rl_maxpool2d_bwd_kernel(rl_dtype dt, const void *dy, const int64_t *idx,
                                    int64_t nc, int64_t H, int64_t W, const int64_t *geom,
                                    void *dx);
typedef int rl_avgpool2d_kernel(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                                const int64_t *geom, bool count_pad, void *y);
typedef int rl_avgpool2d_bwd_kernel(rl_dtype dt, const void *dy, int64_t nc, int64_t H,
                                    int64_t W, const int64_t *geom, bool count_pad, void *dx);

/* Batch norm over contiguous x [N, C, S] of dtype dt.  The per-channel
 * values (statistics, parameters, coefficients; contiguous [C]) are in
 * dt's accumulation type: dt itself for f32 and f64, f32 for bf16 and f16
 * (whose elements are widened exactly, as PyTorch's batch norm on half
 * input does).  The arithmetic on them is engine/bn_coef.h's, which both
 * backends expand.
 *
 * bn_stats: per channel, the mean and biased variance of x (accumulated in
 * double), then RL_BN_FWD_COEF: mean, invstd, and the scale and shift of
 * the map y = scale*x + shift (w and b may be NULL), and the running
 * statistics rmean and rvar, when not NULL, moved by momentum in place
 * (the variance's by the unbiased one, var * unb). */
typedef int rl_bn_stats_kernel(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t S,
                               const void *w, const void *b, void *rmean, void *rvar,
                               double momentum, double unb, double eps, void *mean,
                               void *invstd, void *scale, void *shift);
/* bn_bwd_reduce: per channel, sum(dy) and sum(dy * (x - mean)) (dy and x
 * dt, accumulated in double), then RL_BN_BWD_COEF with the forward's mean
 * and invstd: k, c1 and c0 of dx = k*dy + (c1*x + c0), and dw and db when
 * not NULL (w may be NULL: a weight of ones). */
typedef int rl_bn_bwd_reduce_kernel(rl_dtype dt, const void *dy, const void *x,
                                    const void *mean, const void *invstd, const void *w,
                                    int64_t N, int64_t C, int64_t S, void *k, void *c1,
                                    void *c0, void *dw, void *db);
/* bn_coef: RL_BN_FWD_COEF from given statistics (eval mode's running
 * ones), mean and var [C], without running statistics to move. */
typedef int rl_bn_coef_kernel(rl_dtype dt, int64_t C, const void *mean, const void *var,
                              const void *w, const void *b, double eps, void *invstd,
                              void *scale, void *shift);
/* y = a[c]*u + (b[c]*v + d[c]) per element of channel c, u, v and y dt
 * (v NULL: y = a[c]*u + d[c], b unread; d NULL too: y = a[c]*u), computed
 * in the accumulation type and rounded once: the forward's affine map
 * (u = x), the backward's dx = k*dy + (c1*x + c0) (u = dy, v = x) and eval
 * mode's dx = scale*dy, each one pass. */
typedef int rl_bn_apply_kernel(rl_dtype dt, const void *u, const void *v, const void *a,
                               const void *b, const void *d, int64_t N, int64_t C, int64_t S,
                               void *y);

/* Softmax family along the last, contiguous dim of [rows, cols]. */
typedef int rl_softmax_kernel(rl_dtype dt, const void *x, int64_t rows, int64_t cols, bool log,
                              void *y);
typedef int rl_softmax_bwd_kernel(rl_dtype dt, const void *dy, const void *y, int64_t rows,
                                  int64_t cols, bool log, void *dx);
/* out[i] = -logp[i, t[i]] (0 where t[i] == ignore). */
typedef int rl_nll_kernel(rl_dtype dt, const void *logp, const int64_t *t, int64_t rows,
                          int64_t cols, void *out);
/* dlogp[i, j] = -g[i] * (j == t[i]); the rest of dlogp is zero. */
typedef int rl_nll_bwd_kernel(rl_dtype dt, const void *g, int64_t gstride, const int64_t *t,
                              int64_t rows, int64_t cols, void *dlogp);

/* Index ops along dim 1 of a [outer, n, inner] view (contiguous). */
typedef int rl_index_select_kernel(rl_dtype dt, const void *x, int64_t outer, int64_t n,
                                   int64_t inner, const int64_t *idx, int64_t k, void *y);
/* y[:, idx[j], :] += x[:, j, :], in index order (deterministic). */
typedef int rl_index_add_kernel(rl_dtype dt, const void *x, int64_t outer, int64_t k,
                                int64_t inner, const int64_t *idx, int64_t n, void *y);
/* gather along dim 1: y[o, j, i] = x[o, idx[o, j, i], i] ; idx [outer,k,inner] */
typedef int rl_gather_kernel(rl_dtype dt, const void *x, int64_t outer, int64_t n,
                             int64_t inner, const int64_t *idx, int64_t k, void *y);
/* the adjoint of gather: y[o, idx[o,j,i], i] += x[o, j, i] */
typedef int rl_scatter_add_kernel(rl_dtype dt, const void *x, int64_t outer, int64_t k,
                                  int64_t inner, const int64_t *idx, int64_t n, void *y);

/* Philox fill of a contiguous tensor; see engine/philox.h for the map
 * from element index to counter. */
typedef int rl_rng_fill_kernel(rl_dtype dt, void *dst, int64_t n, rl_rng_dist dist,
                               uint64_t seed, uint64_t offset, double p0, double p1);

/* The attack steps: one PGD step, projected and clamped, on contiguous
 * buffers; a = current point, g = gradient, c = clean point, p = {step,
 * eps, lo, hi}; out may be a (in place).
 * linf_step, elementwise over n:
 *   out = clamp(min(max(a + p0*sign(g), c - p1), c + p1), p2, p3),
 *   with p rounded to the dtype first.
 * l2_step, per sample of [B, D]:
 *   x' = a + p0 * g / ||g||;  d = x' - c;  d *= min(1, p1 / ||d||);
 *   out = clamp(c + d, p2, p3). */
typedef int rl_linf_step_kernel(rl_dtype dt, const void *a, const void *g, const void *c,
                                int64_t n, const double *p, void *out);
typedef int rl_l2_step_kernel(rl_dtype dt, const void *a, const void *g, const void *c,
                              int64_t B, int64_t D, const double *p, void *out);

/* Nearest point of another class (dataset separation), u8 rows of D.
 * For every query i: dist[i] = min over refs j with label differing of
 * ||q_i - r_j|| (p = 0 means l-inf, 2 means l2 squared, in raw u8 units),
 * arg[i] = that j.  skip_self: a ref equal to the query index is skipped. */
typedef int rl_nearest_other_kernel(const uint8_t *q, const int64_t *qlab, int64_t nq,
                                    const uint8_t *r, const int64_t *rlab, int64_t nr,
                                    int64_t D, int p, bool skip_self, int64_t *dist,
                                    int64_t *arg);

/* ---- the table ---------------------------------------------------------- */

/* Every kernel, in table order.  Kernel k has the function type
 * rl_k_kernel above (its signature and comment, written once), the member
 * rl_backend.k, and an implementation per backend: rl_cpu_k (engine/cpu/)
 * and rl_cuda_k (kernels/).  The members, both backends' declarations and
 * both tables are made from this list. */
#define RL_KERNELS(X)                                                        \
  X(fill) X(copy) X(unary) X(binary) X(ternary) X(reduce) X(gemm)            \
  X(conv2d) X(conv2d_bwd) X(im2col) X(col2im) X(wino_weight)                 \
  X(wino_input) X(wino_output) X(wino_doutput) X(wino_dweight)               \
  X(conv_implicit) X(conv_implicit_dw)                                       \
  X(maxpool2d) X(maxpool2d_bwd) X(avgpool2d) X(avgpool2d_bwd) X(bn_stats)    \
  X(bn_bwd_reduce) X(bn_coef) X(bn_apply) X(softmax) X(softmax_bwd)          \
  X(nll) X(nll_bwd) X(index_select) X(index_add) X(gather) X(scatter_add)    \
  X(rng_fill) X(linf_step) X(l2_step) X(nearest_other)

struct rl_backend {
  const char *name;

  /* memory */
  void *(*alloc)(const rl_device *dev, size_t nbytes);
  void (*free)(const rl_device *dev, void *p, size_t nbytes);
  /* Host <-> device copies of contiguous bytes; the CPU backend has none. */
  int (*to_host)(const rl_device *dev, void *host, const void *src, size_t nbytes);
  int (*from_host)(const rl_device *dev, void *dst, const void *host, size_t nbytes);
  int (*synchronize)(const rl_device *dev);

#define RL_MEMBER_(k) rl_##k##_kernel *k;
  RL_KERNELS(RL_MEMBER_)
#undef RL_MEMBER_
};

/* The geometry array for conv/pool kernels. */
enum { G_KH, G_KW, G_SH, G_SW, G_PH, G_PW, G_DH, G_DW, G_OH, G_OW, G_N };

extern const rl_backend rl_cpu_backend;

/* Provided by kernels/ when built with CUDA, else by engine/cuda_none.c. */
int rl_cuda_probe(int *count);                        /* 0 ok, -1 + message */
const rl_backend *rl_cuda_backend(void);

#endif
