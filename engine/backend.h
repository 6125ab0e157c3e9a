/* backend.h - the kernel table a device implements.
 *
 * The ops layer (engine/ops_*.c) checks shapes, allocates outputs, records
 * autograd and then calls tensor->device->be->kernel(...).  A kernel sees
 * raw pointers, sizes and strides only; it validates nothing the ops layer
 * already checked.  engine/cpu/ implements this table with OpenMP and
 * OpenBLAS, kernels/ with CUDA and cuBLAS.  Every kernel returns 0 or a
 * negative status with rl_err() set. */
#ifndef RL_BACKEND_H
#define RL_BACKEND_H

#include "core.h"

/* How many chunks to cut the depth k of a GEMM into when its output is
 * only `blocks` 128x128 blocks (a weight gradient: a small output, a long
 * sum over pixels), so that the chunks' partial products, formed side by
 * side and then added in order, keep a large GPU busy: about 4 waves of
 * blocks, chunks of at least 2048, at most 64 of them; 1 means do not cut.
 * The CUDA GEMM and the engine's Winograd weight gradient both use it. */
static inline int64_t rl_split_k_chunks(int64_t blocks, int64_t k) {
  int64_t S = (528 + blocks - 1) / blocks;
  if (S > k / 2048) S = k / 2048;
  if (S > 64) S = 64;
  return S < 1 ? 1 : S;
}

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

/* Unary ops: out = f(a; p[0], p[1]).  Input and output have one dtype,
 * except the comparisons (*_S), whose output is u8. */
typedef enum {
  RL_UN_NEG, RL_UN_ABS, RL_UN_SIGN, RL_UN_EXP, RL_UN_LOG, RL_UN_SQRT,
  RL_UN_RSQRT, RL_UN_RELU, RL_UN_SIGMOID, RL_UN_TANH, RL_UN_SQUARE,
  RL_UN_RECIP, RL_UN_FLOOR, RL_UN_CEIL, RL_UN_ROUND, RL_UN_LOG1P,
  RL_UN_EXPM1, RL_UN_SIN, RL_UN_COS,
  RL_UN_CLAMP,   /* min(max(a, p0), p1) */
  RL_UN_AFFINE,  /* a * p0 + p1 (scalar add, sub, mul, div) */
  RL_UN_RDIV,    /* p0 / a */
  RL_UN_POW,     /* a ^ p0 */
  RL_UN_RPOW,    /* p0 ^ a */
  RL_UN_FMOD,    /* fmod(a, p0) */
  RL_UN_MAXS,    /* max(a, p0) */
  RL_UN_MINS,    /* min(a, p0) */
  RL_UN_NOT,     /* u8: !a */
  RL_UN_EQ_S, RL_UN_NE_S, RL_UN_LT_S, RL_UN_LE_S, RL_UN_GT_S, RL_UN_GE_S,
  RL_UN_ISNAN,   /* u8 output */
  RL_UN_REMS,    /* remainder(a, p0): the sign of the divisor, as Lua's % */
  RL_UN_COUNT
} rl_unary_op;

/* Binary ops: out = f(a, b; p0).  Comparisons and AND/OR write u8. */
typedef enum {
  RL_BIN_ADD,       /* a + p0*b */
  RL_BIN_SUB,       /* a - p0*b */
  RL_BIN_MUL, RL_BIN_DIV, RL_BIN_POW, RL_BIN_MAX, RL_BIN_MIN, RL_BIN_FMOD,
  RL_BIN_REMAINDER, /* a - floor(a/b)*b: the sign of b, as Lua's and torch's % */
  RL_BIN_EQ, RL_BIN_NE, RL_BIN_LT, RL_BIN_LE, RL_BIN_GT, RL_BIN_GE,
  RL_BIN_AND, RL_BIN_OR,
  RL_BIN_RELU_BWD,    /* a * (b > 0)        : grad, input */
  RL_BIN_SIGMOID_BWD, /* a * b * (1 - b)    : grad, output */
  RL_BIN_TANH_BWD,    /* a * (1 - b*b)      : grad, output */
  RL_BIN_SIGN_MUL,    /* a * sign(b) */
  RL_BIN_COUNT
} rl_binary_op;

/* Ternary ops: out = f(a, b, c; p). */
typedef enum {
  RL_TER_WHERE,   /* a (u8) ? b : c */
  RL_TER_FMA,     /* a * b + c */
  RL_TER_ADDCMUL, /* a + p0 * b * c */
  RL_TER_ADDCDIV, /* a + p0 * b / c */
  RL_TER_LERP,    /* a + p0 * (b - a) */
  RL_TER_CLAMP,   /* min(max(a, b), c) */
  /* One PGD step in l-inf: a = current point, b = gradient, c = clean point.
   * out = clamp(min(max(a + p0*sign(b), c - p1), c + p1), p2, p3) */
  RL_TER_LINF_STEP,
  RL_TER_COUNT
} rl_ternary_op;

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

/* ---- the table ---------------------------------------------------------- */

struct rl_backend {
  const char *name;

  /* memory */
  void *(*alloc)(const rl_device *dev, size_t nbytes);
  void (*free)(const rl_device *dev, void *p, size_t nbytes);
  /* Host <-> device copies of contiguous bytes; the CPU backend has none. */
  int (*to_host)(const rl_device *dev, void *host, const void *src, size_t nbytes);
  int (*from_host)(const rl_device *dev, void *dst, const void *host, size_t nbytes);
  int (*synchronize)(const rl_device *dev);

  /* elementwise; `copy` converts dtypes (arg 0 <- arg 1) */
  int (*fill)(const rl_iter *it, double value);
  int (*copy)(const rl_iter *it);
  int (*unary)(rl_unary_op op, const rl_iter *it, const double *p);
  int (*binary)(rl_binary_op op, const rl_iter *it, double p0);
  int (*ternary)(rl_ternary_op op, const rl_iter *it, const double *p);

  int (*reduce)(rl_reduce_op op, const rl_rediter *r);

  /* Row-major GEMM, batched by stride: for b < batch,
   *   C_b[m x n] = alpha * op(A_b)[m x k] * op(B_b)[k x n] + beta * C_b
   * where op(X) = X^T when tX.  lda etc. are row strides of the stored
   * matrices; stride_* are the batch strides (0 = shared). */
  int (*gemm)(rl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
              double alpha, const void *a, int64_t lda, int64_t stride_a,
              const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
              int64_t ldc, int64_t stride_c, int64_t batch);

  /* Convolution helpers.  x is a contiguous [nb, C, H, W] slab; col is
   * [C*kh*kw, nb*OH*OW] (column = image * OH*OW + output pixel).
   * col2im gathers into x (overwriting it), so it is deterministic. */
  int (*im2col)(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H,
                int64_t W, const int64_t *geom, void *col);
  int (*col2im)(rl_dtype dt, const void *col, int64_t nb, int64_t C, int64_t H,
                int64_t W, const int64_t *geom, void *x);

  /* Winograd F(2x2, 3x3) tile transforms (engine/winograd.h) for the
   * engine's path of 3x3 stride-1 convolutions (all five, or all NULL: not
   * offered).  Tiles
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
   *   3] (the adjoint of wino_weight). */
  int (*wino_weight)(rl_dtype dt, const void *w, int64_t O, int64_t C, bool flip, void *U);
  int (*wino_input)(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H, int64_t W,
                    int64_t ph, int64_t pw, int64_t TH, int64_t TW, int64_t nbc, void *V);
  int (*wino_output)(rl_dtype dt, const void *M, int64_t nb, int64_t O, int64_t OH,
                     int64_t OW, int64_t TH, int64_t TW, const void *b, void *y);
  int (*wino_doutput)(rl_dtype dt, const void *dy, int64_t nb, int64_t O, int64_t OH,
                      int64_t OW, int64_t TH, int64_t TW, int64_t nbc, void *dM);
  int (*wino_dweight)(rl_dtype dt, const void *dU, int64_t S, int64_t O, int64_t C,
                      void *dw);

  /* Whole convolutions, for a backend that does them better than the
   * engine's im2col + gemm (NULL: the engine does that).  Contiguous
   * x [N, C, H, W], w [O, C, kh, kw], b [O] or NULL, y [N, O, OH, OW].
   * conv2d_bwd writes dx [N, C, H, W], dw [O, C, kh, kw] and db [O] (each
   * skipped when NULL; overwritten, never accumulated into). */
  int (*conv2d)(rl_dtype dt, const void *x, const void *w, const void *b, int64_t N,
                int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *geom, void *y);
  int (*conv2d_bwd)(rl_dtype dt, const void *x, const void *w, const void *dy, int64_t N,
                    int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *geom,
                    void *dx, void *dw, void *db);

  /* Pooling over contiguous [NC, H, W] planes; geom as for im2col.
   * max: idx receives the flat h*W+w of each maximum.  The backward passes
   * gather (each input looks at the windows that cover it). */
  int (*maxpool2d)(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                   const int64_t *geom, void *y, int64_t *idx);
  int (*maxpool2d_bwd)(rl_dtype dt, const void *dy, const int64_t *idx, int64_t nc,
                       int64_t H, int64_t W, const int64_t *geom, void *dx);
  int (*avgpool2d)(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                   const int64_t *geom, bool count_pad, void *y);
  int (*avgpool2d_bwd)(rl_dtype dt, const void *dy, int64_t nc, int64_t H, int64_t W,
                       const int64_t *geom, bool count_pad, void *dx);

  /* Batch norm over contiguous x [N, C, S]: per-channel mean and biased
   * variance (accumulated in double on the CPU). */
  int (*bn_stats)(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t S,
                  void *mean, void *var);
  /* Per channel: sum(dy) and sum(dy * (x - mean)). */
  int (*bn_bwd_reduce)(rl_dtype dt, const void *dy, const void *x, const void *mean,
                       int64_t N, int64_t C, int64_t S, void *sum_dy, void *sum_dyxmu);

  /* Softmax family along the last, contiguous dim of [rows, cols]. */
  int (*softmax)(rl_dtype dt, const void *x, int64_t rows, int64_t cols, bool log,
                 void *y);
  int (*softmax_bwd)(rl_dtype dt, const void *dy, const void *y, int64_t rows,
                     int64_t cols, bool log, void *dx);
  /* out[i] = -logp[i, t[i]] (0 where t[i] == ignore). */
  int (*nll)(rl_dtype dt, const void *logp, const int64_t *t, int64_t rows,
             int64_t cols, void *out);
  /* dlogp[i, j] = -g[i] * (j == t[i]); the rest of dlogp is zero. */
  int (*nll_bwd)(rl_dtype dt, const void *g, int64_t gstride, const int64_t *t,
                 int64_t rows, int64_t cols, void *dlogp);

  /* Index ops along dim 1 of a [outer, n, inner] view (contiguous). */
  int (*index_select)(rl_dtype dt, const void *x, int64_t outer, int64_t n,
                      int64_t inner, const int64_t *idx, int64_t k, void *y);
  /* y[:, idx[j], :] += x[:, j, :], in index order (deterministic). */
  int (*index_add)(rl_dtype dt, const void *x, int64_t outer, int64_t k,
                   int64_t inner, const int64_t *idx, int64_t n, void *y);
  /* gather along dim 1: y[o, j, i] = x[o, idx[o, j, i], i] ; idx [outer,k,inner] */
  int (*gather)(rl_dtype dt, const void *x, int64_t outer, int64_t n, int64_t inner,
                const int64_t *idx, int64_t k, void *y);
  /* the adjoint of gather: y[o, idx[o,j,i], i] += x[o, j, i] */
  int (*scatter_add)(rl_dtype dt, const void *x, int64_t outer, int64_t k,
                     int64_t inner, const int64_t *idx, int64_t n, void *y);

  /* Philox fill of a contiguous tensor; see engine/philox.h for the map
   * from element index to counter. */
  int (*rng_fill)(rl_dtype dt, void *dst, int64_t n, rl_rng_dist dist, uint64_t seed,
                  uint64_t offset, double p0, double p1);

  /* Per-sample l2 PGD step on contiguous [B, D]:
   *   x' = a + p0 * g / ||g||;  d = x' - c;  d *= min(1, p1 / ||d||);
   *   out = clamp(c + d, p2, p3). */
  int (*l2_step)(rl_dtype dt, const void *a, const void *g, const void *c, int64_t B,
                 int64_t D, const double *p, void *out);

  /* Nearest point of another class (dataset separation), u8 rows of D.
   * For every query i: dist[i] = min over refs j with label differing of
   * ||q_i - r_j|| (p = 0 means l-inf, 2 means l2 squared, in raw u8 units),
   * arg[i] = that j.  skip_self: a ref equal to the query index is skipped. */
  int (*nearest_other)(const uint8_t *q, const int64_t *qlab, int64_t nq,
                       const uint8_t *r, const int64_t *rlab, int64_t nr, int64_t D,
                       int p, bool skip_self, int64_t *dist, int64_t *arg);
};

/* The geometry array for conv/pool kernels. */
enum { G_KH, G_KW, G_SH, G_SW, G_PH, G_PW, G_DH, G_DW, G_OH, G_OW, G_N };

extern const rl_backend rl_cpu_backend;

/* Provided by kernels/ when built with CUDA, else by engine/cuda_none.c. */
int rl_cuda_probe(int *count);                        /* 0 ok, -1 + message */
const rl_backend *rl_cuda_backend(void);

#endif
