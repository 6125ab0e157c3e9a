/* winograd.h - the tile transforms of Winograd F(2x2, 3x3), as macros over
 * small arrays of any float type.
 *
 * A 2x2 block of outputs of a 3x3 stride-1 correlation comes from the 4x4
 * input tile d that covers it:
 *   y = A^T [ (G g G^T) .* (B^T d B) ] A
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 *
 * The Winograd path of engine/conv_gemm.c runs these through the
 * backend entries wino_weight, wino_input, wino_output and, for the weight
 * gradient, wino_doutput and wino_dweight.  The CUDA kernels
 * (kernels/cuda_winograd.cu) and the CPU's plain entries
 * (engine/cpu/cpu_winograd.c) expand the same macros, so a gradcheck of that
 * path on the CPU, in f64, checks the arithmetic the GPU does.  (The CPU's
 * own fast f32 Winograd lays its tiles out differently and has its own
 * vector loops.)  T is the element type; every index is a constant once the
 * loops unroll, so on a GPU the arrays live in registers. */
#ifndef RL_WINOGRAD_H
#define RL_WINOGRAD_H

/* u[4][4] = G k G^T for a 3x3 kernel k[3][3]. */
#define RL_WINO_WEIGHT(T, k, u)                                               \
  do {                                                                        \
    T t_[4][3];                                                               \
    for (int j_ = 0; j_ < 3; j_++) {                                          \
      t_[0][j_] = (k)[0][j_];                                                 \
      t_[1][j_] = (T)0.5 * ((k)[0][j_] + (k)[1][j_] + (k)[2][j_]);            \
      t_[2][j_] = (T)0.5 * ((k)[0][j_] - (k)[1][j_] + (k)[2][j_]);            \
      t_[3][j_] = (k)[2][j_];                                                 \
    }                                                                         \
    for (int i_ = 0; i_ < 4; i_++) {                                          \
      (u)[i_][0] = t_[i_][0];                                                 \
      (u)[i_][1] = (T)0.5 * (t_[i_][0] + t_[i_][1] + t_[i_][2]);              \
      (u)[i_][2] = (T)0.5 * (t_[i_][0] - t_[i_][1] + t_[i_][2]);              \
      (u)[i_][3] = t_[i_][2];                                                 \
    }                                                                         \
  } while (0)

/* v[4][4] = B^T d B for an input tile d[4][4]. */
#define RL_WINO_INPUT(T, d, v)                                                \
  do {                                                                        \
    T t_[4][4];                                                               \
    for (int j_ = 0; j_ < 4; j_++) {                                          \
      t_[0][j_] = (d)[0][j_] - (d)[2][j_];                                    \
      t_[1][j_] = (d)[1][j_] + (d)[2][j_];                                    \
      t_[2][j_] = (d)[2][j_] - (d)[1][j_];                                    \
      t_[3][j_] = (d)[1][j_] - (d)[3][j_];                                    \
    }                                                                         \
    for (int i_ = 0; i_ < 4; i_++) {                                          \
      (v)[i_][0] = t_[i_][0] - t_[i_][2];                                     \
      (v)[i_][1] = t_[i_][1] + t_[i_][2];                                     \
      (v)[i_][2] = t_[i_][2] - t_[i_][1];                                     \
      (v)[i_][3] = t_[i_][1] - t_[i_][3];                                     \
    }                                                                         \
  } while (0)

/* y[2][2] = A^T m A for a product tile m[4][4]. */
#define RL_WINO_OUTPUT(T, m, y)                                               \
  do {                                                                        \
    T t_[2][4];                                                               \
    for (int j_ = 0; j_ < 4; j_++) {                                          \
      t_[0][j_] = (m)[0][j_] + (m)[1][j_] + (m)[2][j_];                       \
      t_[1][j_] = (m)[1][j_] - (m)[2][j_] - (m)[3][j_];                       \
    }                                                                         \
    for (int i_ = 0; i_ < 2; i_++) {                                          \
      (y)[i_][0] = t_[i_][0] + t_[i_][1] + t_[i_][2];                         \
      (y)[i_][1] = t_[i_][1] - t_[i_][2] - t_[i_][3];                         \
    }                                                                         \
  } while (0)

/* The adjoints, for the weight gradient: with M = U .* V summed over
 * channels and y = A^T M A, dM = A dy A^T and, U being G g G^T,
 * dg = G^T dU G. */

/* dm[4][4] = A dy A^T for a 2x2 block of output gradients dy[2][2]. */
#define RL_WINO_DOUTPUT(T, dy, dm)                                            \
  do {                                                                        \
    T t_[4][2];                                                               \
    for (int j_ = 0; j_ < 2; j_++) {                                          \
      t_[0][j_] = (dy)[0][j_];                                                \
      t_[1][j_] = (dy)[0][j_] + (dy)[1][j_];                                  \
      t_[2][j_] = (dy)[0][j_] - (dy)[1][j_];                                  \
      t_[3][j_] = -(dy)[1][j_];                                               \
    }                                                                         \
    for (int i_ = 0; i_ < 4; i_++) {                                          \
      (dm)[i_][0] = t_[i_][0];                                                \
      (dm)[i_][1] = t_[i_][0] + t_[i_][1];                                    \
      (dm)[i_][2] = t_[i_][0] - t_[i_][1];                                    \
      (dm)[i_][3] = -t_[i_][1];                                               \
    }                                                                         \
  } while (0)

/* dk[3][3] = G^T du G for a transformed kernel gradient du[4][4]. */
#define RL_WINO_DWEIGHT(T, du, dk)                                            \
  do {                                                                        \
    T t_[3][4];                                                               \
    for (int j_ = 0; j_ < 4; j_++) {                                          \
      t_[0][j_] = (du)[0][j_] + (T)0.5 * ((du)[1][j_] + (du)[2][j_]);         \
      t_[1][j_] = (T)0.5 * ((du)[1][j_] - (du)[2][j_]);                       \
      t_[2][j_] = (T)0.5 * ((du)[1][j_] + (du)[2][j_]) + (du)[3][j_];         \
    }                                                                         \
    for (int i_ = 0; i_ < 3; i_++) {                                          \
      (dk)[i_][0] = t_[i_][0] + (T)0.5 * (t_[i_][1] + t_[i_][2]);             \
      (dk)[i_][1] = (T)0.5 * (t_[i_][1] - t_[i_][2]);                         \
      (dk)[i_][2] = (T)0.5 * (t_[i_][1] + t_[i_][2]) + t_[i_][3];             \
    }                                                                         \
  } while (0)

#endif
