/* window.c - the window geometry of convolution and pooling: the G_* array
 * of backend.h from kernel, stride, padding and dilation, and the check of
 * an NCHW input that both make. */
#include "internal.h"

/* Output length along one dim: the window positions that fit. */
static int64_t out_len(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

int rl_conv_geom(const char *op, const rl_tensor *x, int64_t kh, int64_t kw,
                 const int64_t *stride, const int64_t *pad, const int64_t *dil, int64_t *g) {
  int64_t k[2] = {kh, kw}, span[2]; /* span: dil * (k - 1), what the kernel covers */
  for (int i = 0; i < 2; i++) {
    if (stride[i] < 1 || dil[i] < 1 || pad[i] < 0)
      return rl_err("%s: stride and dilation must be >= 1 and padding >= 0 (got stride %lld, "
                    "padding %lld, dilation %lld)",
                    op, (long long)stride[i], (long long)pad[i], (long long)dil[i]);
    /* bounded first, so that the sums and products below cannot overflow */
    if (k[i] < 1 || k[i] > RL_MAX_DIM_SIZE || stride[i] > RL_MAX_DIM_SIZE ||
        pad[i] > RL_MAX_DIM_SIZE || __builtin_mul_overflow(dil[i], k[i] - 1, &span[i]))
      return rl_err("%s: kernel %lld, stride %lld, padding %lld or dilation %lld is out of "
                    "range",
                    op, (long long)k[i], (long long)stride[i], (long long)pad[i],
                    (long long)dil[i]);
  }
  g[G_KH] = kh;
  g[G_KW] = kw;
  g[G_SH] = stride[0];
  g[G_SW] = stride[1];
  g[G_PH] = pad[0];
  g[G_PW] = pad[1];
  g[G_DH] = dil[0];
  g[G_DW] = dil[1];
  int64_t H = x->size[2], W = x->size[3];
  int64_t eh = H + 2 * pad[0] - span[0], ew = W + 2 * pad[1] - span[1];
  if (eh < 1 || ew < 1)
    return rl_err("%s: input %s is too small for a %lldx%lld kernel (padding %lldx%lld, "
                  "dilation %lldx%lld)",
                  op, rl_shape_str(x), (long long)kh, (long long)kw, (long long)pad[0],
                  (long long)pad[1], (long long)dil[0], (long long)dil[1]);
  g[G_OH] = out_len(H, kh, stride[0], pad[0], dil[0]);
  g[G_OW] = out_len(W, kw, stride[1], pad[1], dil[1]);
  return 0;
}

int rl_check_nchw(const char *op, const rl_tensor *x) {
  if (x->ndim != 4)
    return rl_err("%s: expects a 4-D input [N, C, H, W], got %s", op, rl_shape_str(x));
  return rl_check_float(op, x);
}
