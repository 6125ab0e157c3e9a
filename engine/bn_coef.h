/* bn_coef.h - batch norm's per-channel arithmetic, as macros over a float
 * type T, expanded by both backends (engine/cpu/cpu_nn.c at the end of its
 * per-channel sums, kernels/cuda_nn.cu in the kernels that finish them), so
 * that the CPU and a GPU compute the same bits from the same sums.  Every
 * product that meets a sum is an explicit FMA(a, b, c) = a*b + c rounded
 * once, so that no compiler's choice of contraction enters.  FMA and SQRT
 * name T's fused multiply-add and square root (fmaf and sqrtf for float).
 *
 * Forward, from channel c's batch mean m and biased variance v:
 *   invstd = 1 / sqrt(v + eps)
 *   scale  = w[c] * invstd              (invstd without a weight)
 *   shift  = b[c] - m * scale           (-(m * scale) without a bias)
 * the map y = scale * x + shift; and the running statistics, when given,
 * moved toward the batch's by momentum, in place (the unbiased variance,
 * v * cnt / (cnt - 1), as PyTorch):
 *   rm[c] += momentum * (m - rm[c]),  rv[c] += momentum * (v * unb - rv[c])
 *
 * Backward, from channel c's sums sdy = sum(dy) and sdx = sum(dy (x - m))
 * over cnt elements (rcnt = 1 / cnt), the mean and invstd:
 *   k  = w[c] * invstd                  (invstd without a weight)
 *   c1 = -(k * invstd^2 * sdx) / cnt
 *   c0 = -(k * sdy / cnt + c1 * m)
 * so that dx = k * dy + (c1 * x + c0); and dw = sdx * invstd, db = sdy. */
#ifndef RL_BN_COEF_H
#define RL_BN_COEF_H

#define RL_BN_FWD_COEF(T, FMA, SQRT, m, v, w, b, rm, rv, mom, unb, eps, c, invstd, scale,  \
                       shift)                                                              \
  do {                                                                                     \
    T is_ = (T)1 / SQRT((v) + (T)(eps));                                                   \
    T sc_ = (w) ? (w)[c] * is_ : is_;                                                      \
    (invstd)[c] = is_;                                                                     \
    (scale)[c] = sc_;                                                                      \
    (shift)[c] = (b) ? FMA(-(m), sc_, (b)[c]) : -((m) * sc_);                              \
    if (rm) (rm)[c] = FMA((T)(mom), (m) - (rm)[c], (rm)[c]);                               \
    if (rv) (rv)[c] = FMA((T)(mom), FMA((v), (T)(unb), -(rv)[c]), (rv)[c]);                \
  } while (0)

#define RL_BN_BWD_COEF(T, FMA, sdy, sdx, m, is, w, rcnt, c, k, c1, c0, dw, db)            \
  do {                                                                                     \
    T k_ = (w) ? (w)[c] * (is) : (is);                                                     \
    T c1_ = -(k_ * ((is) * (is)) * (sdx)) * (T)(rcnt);                                     \
    (k)[c] = k_;                                                                           \
    (c1)[c] = c1_;                                                                         \
    (c0)[c] = -FMA(k_ * (sdy), (T)(rcnt), c1_ * (m));                                      \
    if (dw) (dw)[c] = (sdx) * (is);                                                        \
    if (db) (db)[c] = (sdy);                                                               \
  } while (0)

#endif
