/* internal.h - helpers shared by the ops layer (not part of the API). */
#ifndef RL_INTERNAL_H
#define RL_INTERNAL_H

#include "ops.h"

/* The broadcast shape of n shapes, NumPy rules; the message names op and
 * every shape when they do not broadcast. */
int rl_broadcast_shape(const char *op, int n, rl_tensor *const *ts, int *ndim,
                       int64_t *size);
/* An iterator over args[0] (the output's shape) and the other args
 * broadcast to it. */
void rl_iter_build(rl_iter *it, int nargs, rl_tensor *const *args);
/* All tensors on one device, or an error naming the op and both devices. */
int rl_check_same_device(const char *op, int n, rl_tensor *const *ts);
/* Fails unless t has dtype dt (names the op and argument). */
int rl_check_dtype(const char *op, const char *what, const rl_tensor *t, rl_dtype dt);
int rl_check_float(const char *op, const rl_tensor *t);

/* The half types are computed in f32 and rounded once (core.h): t in f32
 * when it is bf16 or f16, else t (a new reference either way); and r
 * (consumed) rounded to `half` when it is f32, as is otherwise (a
 * comparison's u8, an index's i64).  Both are differentiable casts. */
rl_tensor *rl_in_f32(rl_tensor *t);
rl_tensor *rl_out_half(rl_tensor *r, rl_dtype half);

/* t converted to dtype dt (t itself, retained, when it already is). */
rl_tensor *rl_as_dtype(rl_tensor *t, rl_dtype dt);
/* t as a contiguous tensor (retained, no autograd). */
rl_tensor *rl_as_contig(rl_tensor *t);

/* Record the metadata of a tensor for a backward function, and make zeros
 * of that shape (autograd.c). */
void rl_meta_of(rl_meta *m, const rl_tensor *t);
rl_tensor *rl_zeros_meta(const rl_meta *m);

/* gemm through the device's backend, counting calls for the op counter;
 * C is ct (see rl_gemm_kernel in backend.h). */
int rl_gemm(const rl_device *dev, rl_dtype dt, rl_dtype ct, bool ta, bool tb, int64_t m, int64_t n,
            int64_t k, double alpha, const void *a, int64_t lda, int64_t sa,
            const void *b, int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc,
            int64_t sc, int64_t batch);

/* The smallest and largest value of an integer index tensor (numel > 0),
 * read back to the host: what the ops layer checks an index against
 * (ops_index.c). */
int rl_index_bounds(rl_tensor *idx, int64_t *lo, int64_t *hi);

/* Release a list of tensors (NULLs allowed), setting each slot to NULL.
 * This and rl_grad_one end most backward rules (autograd.c). */
void rl_release_all(int n, rl_tensor **ts);
/* The end of a backward forming one input's gradient: releases the n
 * temporaries, then gives dx to gin[0] when rc is 0, else releases it and
 * returns -1. */
int rl_grad_one(rl_tensor **gin, rl_tensor *dx, int rc, int n, rl_tensor **tmp);

#define RL_BE(t) (rl_dev(t)->be)

/* Window geometry of conv/pool (the G_* array of backend.h); errors name op.
 * This and rl_check_nchw are in window.c. */
int rl_conv_geom(const char *op, const rl_tensor *x, int64_t kh, int64_t kw,
                 const int64_t *stride, const int64_t *pad, const int64_t *dil, int64_t *g);
/* x must be a 4-D float tensor [N, C, H, W]. */
int rl_check_nchw(const char *op, const rl_tensor *x);

#endif
