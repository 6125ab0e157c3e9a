/* cuda_dist.cu - nearest point of another class, on u8 rows (separation).
 *
 * A block takes 32 queries and walks the references in tiles of 32; rows
 * are staged in shared memory 64 bytes at a time, packed four to a word, so
 * a word pair costs one byte-wise |a - b| (__vabsdiffu4) and one dp4a (l2)
 * or byte-wise max (l-inf).  Thread (x, y) of the 32 x 8 block pairs
 * reference x of the tile with queries y, y+8, y+16, y+24; each warp then
 * takes the minimum over its 32 references, ties to the smaller index.
 * Integer arithmetic throughout: the result equals the CPU's exactly. */
#include "cuda_common.cuh"

#define TQ 32
#define TR 32
#define TW 16 /* words (64 bytes) of a row per stage */

/* Pack bytes [k0, k0 + 4*TW) of row `row` (zeros past D) into w[TW]. */
__device__ __forceinline__ uint32_t pack4(const uint8_t *row, int64_t k, int64_t D) {
  uint32_t v = 0;
  for (int b = 0; b < 4; b++)
    if (k + b < D) v |= (uint32_t)row[k + b] << (8 * b);
  return v;
}

__global__ void nearest_kernel(const uint8_t *q, const int64_t *qlab, int64_t nq,
                               const uint8_t *r, const int64_t *rlab, int64_t nr, int64_t D,
                               int p, bool skip_self, int64_t *dist, int64_t *arg) {
  __shared__ uint32_t qs[TQ][TW + 1], rs[TR][TW + 1];
  int tx = threadIdx.x % 32, ty = threadIdx.x / 32, tid = threadIdx.x;
  int64_t q0 = (int64_t)blockIdx.x * TQ;
  const int64_t none = p == 0 ? 256 : INT64_MAX;
  int64_t best[4], barg[4], lab[4];
  for (int u = 0; u < 4; u++) {
    best[u] = none;
    barg[u] = -1;
    int64_t i = q0 + ty + 8 * u;
    lab[u] = i < nq ? qlab[i] : 0;
  }
  for (int64_t r0 = 0; r0 < nr; r0 += TR) {
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int64_t k0 = 0; k0 < D; k0 += 4 * TW) {
      /* 256 threads stage 2 x (32 rows x 16 words) */
      for (int s = tid; s < TQ * TW; s += blockDim.x) {
        int row = s / TW, w = s % TW;
        int64_t i = q0 + row, j = r0 + row, k = k0 + 4 * w;
        qs[row][w] = i < nq ? pack4(q + i * D, k, D) : 0;
        rs[row][w] = j < nr ? pack4(r + j * D, k, D) : 0;
      }
      __syncthreads();
      for (int u = 0; u < 4; u++) {
        uint32_t part = 0;
        for (int w = 0; w < TW; w++) {
          uint32_t d = __vabsdiffu4(qs[ty + 8 * u][w], rs[tx][w]);
          part = p == 0 ? __vmaxu4(part, d) : __dp4a(d, d, part);
        }
        if (p == 0) {
          uint32_t m = part & 0xff;
          for (int b = 1; b < 4; b++) m = max(m, (part >> (8 * b)) & 0xff);
          acc[u] = acc[u] > m ? acc[u] : m;
        } else {
          acc[u] += part;
        }
      }
      __syncthreads();
    }
    int64_t j = r0 + tx;
    if (j < nr) {
      int64_t jl = rlab[j];
      for (int u = 0; u < 4; u++) {
        int64_t i = q0 + ty + 8 * u;
        if (i >= nq || jl == lab[u] || (skip_self && j == i)) continue;
        int64_t d = (int64_t)acc[u];
        if (d < best[u]) { /* j ascends per thread: first minimum kept */
          best[u] = d;
          barg[u] = j;
        }
      }
    }
  }
  /* the minimum over the warp's 32 references, ties to the smaller index */
  for (int u = 0; u < 4; u++) {
    int64_t d = best[u], a = barg[u];
    for (int o = 16; o > 0; o >>= 1) {
      int64_t d2 = __shfl_xor_sync(0xffffffffu, d, o), a2 = __shfl_xor_sync(0xffffffffu, a, o);
      bool take = a2 >= 0 && (a < 0 || d2 < d || (d2 == d && a2 < a));
      if (take) {
        d = d2;
        a = a2;
      }
    }
    int64_t i = q0 + ty + 8 * u;
    if (tx == 0 && i < nq) {
      dist[i] = d;
      arg[i] = a;
    }
  }
}

int rl_cuda_nearest_other(const uint8_t *q, const int64_t *qlab, int64_t nq, const uint8_t *r,
                          const int64_t *rlab, int64_t nr, int64_t D, int p, bool skip_self,
                          int64_t *dist, int64_t *arg) {
  if (nq == 0) return 0;
  unsigned nb = (unsigned)((nq + TQ - 1) / TQ);
  nearest_kernel<<<nb, TR * 8>>>(q, qlab, nq, r, rlab, nr, D, p, skip_self, dist, arg);
  LAUNCH_CHECK("nearest_kernel");
  return 0;
}
