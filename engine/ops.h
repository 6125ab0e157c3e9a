/* ops.h - the ops layer: shape checks, output allocation, autograd.
 *
 * Every function returning rl_tensor * returns a new reference, or NULL
 * with a message (rl_errmsg) that names the op and the offending sizes.
 * Functions returning int return 0 or -1 likewise.  Dims are 0-based here;
 * negative dims count from the end.  In-place forms end in an underscore. */
#ifndef RL_OPS_H
#define RL_OPS_H

#include "autograd.h"
#include "backend.h"
#include "random.h"

/* ---- creation ----------------------------------------------------------- */

rl_tensor *rl_full(int ndim, const int64_t *size, double v, rl_dtype dt,
                   const rl_device *dev);
rl_tensor *rl_zeros(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev);
rl_tensor *rl_ones(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev);
rl_tensor *rl_scalar(double v, rl_dtype dt, const rl_device *dev); /* 0-dim */
rl_tensor *rl_arange(double start, double end, double step, rl_dtype dt,
                     const rl_device *dev);
rl_tensor *rl_linspace(double start, double end, int64_t n, rl_dtype dt,
                       const rl_device *dev);
rl_tensor *rl_eye(int64_t n, int64_t m, rl_dtype dt, const rl_device *dev);
/* From host memory holding numel(size) values of dtype dt, contiguous. */
rl_tensor *rl_from_host(int ndim, const int64_t *size, rl_dtype dt, const void *host,
                        const rl_device *dev);
rl_tensor *rl_rand(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev,
                   rl_generator *g);
rl_tensor *rl_randn(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev,
                    rl_generator *g);
rl_tensor *rl_randint(int64_t lo, int64_t hi, int ndim, const int64_t *size,
                      rl_dtype dt, const rl_device *dev, rl_generator *g);
rl_tensor *rl_randperm(int64_t n, const rl_device *dev, rl_generator *g);
int rl_uniform_(rl_tensor *t, double lo, double hi, rl_generator *g);
int rl_normal_(rl_tensor *t, double mean, double std, rl_generator *g);
int rl_bernoulli_(rl_tensor *t, double p, rl_generator *g);
int rl_fill_(rl_tensor *t, double v);
int rl_zero_(rl_tensor *t);

/* ---- copies, dtype and device ------------------------------------------ */

/* dst <- src, broadcasting src and converting its dtype; across devices too. */
int rl_copy_(rl_tensor *dst, const rl_tensor *src);
rl_tensor *rl_contiguous(rl_tensor *t);  /* t itself (retained) if already */
rl_tensor *rl_clone(rl_tensor *t);
rl_tensor *rl_to_dtype(rl_tensor *t, rl_dtype dt);      /* differentiable */
rl_tensor *rl_to_device(rl_tensor *t, const rl_device *dev); /* differentiable */
rl_tensor *rl_detach(const rl_tensor *t);
/* Copy the values to host memory (numel * elsize bytes), synchronising. */
int rl_to_host(const rl_tensor *t, void *host);
/* The single value of a one-element tensor, as double. */
int rl_item(const rl_tensor *t, double *v);

/* ---- views -------------------------------------------------------------- */

/* size may hold one -1 to infer; fails when strides do not allow a view. */
rl_tensor *rl_view(rl_tensor *t, int ndim, const int64_t *size);
rl_tensor *rl_reshape(rl_tensor *t, int ndim, const int64_t *size);
rl_tensor *rl_flatten(rl_tensor *t, int start, int end);
rl_tensor *rl_transpose(rl_tensor *t, int d0, int d1);
rl_tensor *rl_permute(rl_tensor *t, const int *perm);
rl_tensor *rl_narrow(rl_tensor *t, int dim, int64_t start, int64_t len);
rl_tensor *rl_select(rl_tensor *t, int dim, int64_t index);
rl_tensor *rl_unsqueeze(rl_tensor *t, int dim);
rl_tensor *rl_squeeze(rl_tensor *t, int dim); /* dim == INT32_MIN: all size-1 dims */
rl_tensor *rl_expand(rl_tensor *t, int ndim, const int64_t *size);
/* Sum a gradient down to a shape it was broadcast from. */
rl_tensor *rl_sum_to(rl_tensor *t, int ndim, const int64_t *size);

/* ---- pointwise ---------------------------------------------------------- */

rl_tensor *rl_unary(rl_unary_op op, rl_tensor *a, double p0, double p1);
int rl_unary_(rl_unary_op op, rl_tensor *a, double p0, double p1);
rl_tensor *rl_binary(rl_binary_op op, rl_tensor *a, rl_tensor *b, double alpha);
int rl_binary_(rl_binary_op op, rl_tensor *a, rl_tensor *b, double alpha);
rl_tensor *rl_ternary(rl_ternary_op op, rl_tensor *a, rl_tensor *b, rl_tensor *c,
                      const double *p);
int rl_ternary_(rl_ternary_op op, rl_tensor *a, rl_tensor *b, rl_tensor *c,
                const double *p);

rl_tensor *rl_add(rl_tensor *a, rl_tensor *b);
rl_tensor *rl_sub(rl_tensor *a, rl_tensor *b);
rl_tensor *rl_mul(rl_tensor *a, rl_tensor *b);
rl_tensor *rl_div(rl_tensor *a, rl_tensor *b);
rl_tensor *rl_mul_scalar(rl_tensor *a, double s);
rl_tensor *rl_neg(rl_tensor *a);
rl_tensor *rl_relu(rl_tensor *a);
rl_tensor *rl_where(rl_tensor *cond, rl_tensor *a, rl_tensor *b);
rl_tensor *rl_masked_fill(rl_tensor *x, rl_tensor *mask, double v);
int rl_masked_fill_(rl_tensor *x, rl_tensor *mask, double v);

/* ---- reductions --------------------------------------------------------- */

/* dims: ndims entries (NULL / 0 = all dims). */
rl_tensor *rl_reduce(rl_reduce_op op, rl_tensor *t, int ndims, const int *dims,
                     bool keepdim);
rl_tensor *rl_sum(rl_tensor *t, int ndims, const int *dims, bool keepdim);
rl_tensor *rl_mean(rl_tensor *t, int ndims, const int *dims, bool keepdim);
/* p = 1, 2 or INFINITY (any other p > 0 by the general formula). */
rl_tensor *rl_norm(rl_tensor *t, double p, int ndims, const int *dims, bool keepdim);
rl_tensor *rl_var(rl_tensor *t, int ndims, const int *dims, int correction,
                  bool keepdim);
rl_tensor *rl_std(rl_tensor *t, int ndims, const int *dims, int correction,
                  bool keepdim);
/* Max/min along one dim with indices (i64, 0-based). */
int rl_max_dim(rl_tensor *t, int dim, bool keepdim, bool is_min, rl_tensor **values,
               rl_tensor **indices);
/* Argmax/argmin over all elements (flat index) when dim is INT32_MIN. */
rl_tensor *rl_argmax(rl_tensor *t, int dim, bool keepdim, bool is_min);
rl_tensor *rl_logsumexp(rl_tensor *t, int dim, bool keepdim);

/* ---- linear algebra ----------------------------------------------------- */

/* 1-D and 2-D as torch.matmul; >2-D batches broadcast. */
rl_tensor *rl_matmul(rl_tensor *a, rl_tensor *b);
/* y = x w^T + b  (x [.., in], w [out, in], b [out] or NULL) */
rl_tensor *rl_linear(rl_tensor *x, rl_tensor *w, rl_tensor *b);
rl_tensor *rl_dot(rl_tensor *a, rl_tensor *b);

/* ---- joining and indexing ----------------------------------------------- */

rl_tensor *rl_cat(int n, rl_tensor *const *ts, int dim);
rl_tensor *rl_stack(int n, rl_tensor *const *ts, int dim);
rl_tensor *rl_index_select(rl_tensor *t, int dim, rl_tensor *idx);
/* Copy of t with src added at the positions idx (1-D) gives along dim,
 * in index order (the adjoint of index_select). */
rl_tensor *rl_index_add(rl_tensor *t, int dim, rl_tensor *idx, rl_tensor *src);
rl_tensor *rl_gather(rl_tensor *t, int dim, rl_tensor *idx);
/* Copy of t with src added at idx along dim (the adjoint of gather). */
rl_tensor *rl_scatter_add(rl_tensor *t, int dim, rl_tensor *idx, rl_tensor *src);
/* The elements where mask (u8, broadcast to t) is set, as a 1-D tensor. */
rl_tensor *rl_masked_select(rl_tensor *t, rl_tensor *mask);

/* ---- neural-network ops (NCHW) ----------------------------------------- */

typedef struct rl_conv_opts {
  int64_t stride[2], padding[2], dilation[2];
} rl_conv_opts;

rl_tensor *rl_conv2d(rl_tensor *x, rl_tensor *w, rl_tensor *b, const rl_conv_opts *o);
/* Which way convolutions go.  AUTO: each backend's own conv entries: the
 * CPU's kernels, CUDA's composition of GEMMs (engine/conv_gemm.c: Winograd
 * where it pays, f32 3x3 layers with stride 1, dilation 1, padding <= 2
 * and 32+ channels in and out; im2col elsewhere).  IM2COL and WINOGRAD
 * force that composition's paths on every backend (WINOGRAD for every 3x3
 * layer of stride 1, dilation 1 and padding <= 2, in any float dtype;
 * im2col for the rest), so that specs can check them on the CPU.  chunk_bytes > 0 caps each workspace of those
 * paths (so that small inputs run in several chunks); 0 restores the
 * default.  Returns the previous path.  One setting for the process, for
 * specs and benchmarks: not meant to change while convolutions run. */
typedef enum { RL_CONV_AUTO, RL_CONV_IM2COL, RL_CONV_WINOGRAD, RL_CONV_IMPLICIT } rl_conv_path;
rl_conv_path rl_conv_set_path(rl_conv_path p, int64_t chunk_bytes);
/* ceil_mode is not supported (the paper's models do not use it). */
rl_tensor *rl_max_pool2d(rl_tensor *x, const int64_t *kernel, const int64_t *stride,
                         const int64_t *padding);
rl_tensor *rl_avg_pool2d(rl_tensor *x, const int64_t *kernel, const int64_t *stride,
                         const int64_t *padding, bool count_include_pad);
rl_tensor *rl_adaptive_avg_pool2d_1(rl_tensor *x); /* to 1x1 */
/* Training: normalise with batch statistics and update running stats in
 * place (running_var with the unbiased variance, as PyTorch).  Eval: use
 * the running stats.  weight, bias, running stats may be NULL. */
rl_tensor *rl_batch_norm(rl_tensor *x, rl_tensor *running_mean, rl_tensor *running_var,
                         rl_tensor *weight, rl_tensor *bias, bool training,
                         double momentum, double eps);
rl_tensor *rl_dropout(rl_tensor *x, double p, bool training, bool channelwise,
                      rl_generator *g);
rl_tensor *rl_softmax(rl_tensor *x, int dim, bool log);

typedef enum { RL_RED_NONE, RL_RED_MEAN_, RL_RED_SUM_, RL_RED_BATCHMEAN_ } rl_reduction;
int rl_reduction_parse(const char *s, rl_reduction *r);

rl_tensor *rl_nll_loss(rl_tensor *logp, rl_tensor *target, rl_reduction r);
rl_tensor *rl_cross_entropy(rl_tensor *logits, rl_tensor *target, rl_reduction r);
/* PyTorch's kl_div(input = log q, target = p): sum p * (log p - input);
 * log_target: target holds log p. */
rl_tensor *rl_kl_div(rl_tensor *logq, rl_tensor *target, rl_reduction r, bool log_target);
rl_tensor *rl_mse_loss(rl_tensor *a, rl_tensor *b, rl_reduction r);

/* ---- attack steps (fused, no autograd; ops_attack.c) --------------------- */

/* x' = clamp(clamp(x' + alpha*sign(g), x - eps, x + eps), lo, hi), in place. */
int rl_linf_step_(rl_tensor *xadv, rl_tensor *g, rl_tensor *x, double alpha,
                  double eps, double lo, double hi);
/* The per-sample l2 step of backend.h, in place on xadv. */
int rl_l2_step_(rl_tensor *xadv, rl_tensor *g, rl_tensor *x, double alpha, double eps,
                double lo, double hi);

#endif
