/* cuda_reduce.cu - reductions along any set of dims, deterministic.
 *
 * A block of 256 threads is laid out as GX outputs x GY lanes: the GY lanes
 * of one output stride through its reduced range, then combine their
 * partial results in shared memory by a fixed tree.  When there are few
 * outputs and long reductions, the reduced range is cut into S fixed
 * chunks (gridDim.y) whose partials a second kernel combines in chunk
 * order.  Layout and chunks depend on the sizes only, and there are no
 * atomics, so a result is the same bits on every run.  Floats accumulate in
 * double and integers in int64, as on the CPU; max/min keep the first
 * position on ties and let a NaN win, as the CPU's sequential loop does.
 *
 * The half types are reduced in f32 by the ops layer (engine/ops_reduce.c;
 * any/all look at a u8 mask), so an input never is one; like the CPU's,
 * store() still writes a half output, rounded once from the double. */
#include "cuda_common.cuh"

struct Acc {
  double f;
  int64_t i;
  int64_t arg; /* position of the max/min, -1 = none yet */
};

struct Red {
  int op, ondim, rndim;
  int64_t onumel, rnumel, chunk;
  int64_t osize[RL_MAX_DIMS], ostr_in[RL_MAX_DIMS], ostr_out[RL_MAX_DIMS],
      ostr_idx[RL_MAX_DIMS];
  int64_t rsize[RL_MAX_DIMS], rstr[RL_MAX_DIMS];
  const char *in;
  char *out;
  int64_t *idx;
  rl_dtype out_dtype;
  Acc *partial; /* [S][onumel] when split */
};

__device__ __forceinline__ Acc acc_init(int op) {
  Acc a = {0, 0, -1};
  switch (op) {
  case RL_RED_PROD: a.f = 1; a.i = 1; break;
  case RL_RED_MAX: a.f = -INFINITY; a.i = INT64_MIN; break;
  case RL_RED_MIN: a.f = INFINITY; a.i = INT64_MAX; break;
  case RL_RED_ALL: a.i = 1; break;
  default: break;
  }
  return a;
}

/* b takes the place of a as the max (min when lt) of the two partials;
 * partials interleave, so ties go to the smaller position explicitly. */
__device__ __forceinline__ bool wins(bool isfloat, bool lt, const Acc &a, const Acc &b) {
  if (b.arg < 0) return false;
  if (a.arg < 0) return true;
  if (isfloat) {
    bool an = a.f != a.f, bn = b.f != b.f;
    if (an || bn) return bn && (!an || b.arg < a.arg);
    if (b.f == a.f) return b.arg < a.arg;
    return lt ? b.f < a.f : b.f > a.f;
  }
  if (b.i == a.i) return b.arg < a.arg;
  return lt ? b.i < a.i : b.i > a.i;
}

__device__ __forceinline__ void combine(int op, bool isfloat, Acc &a, const Acc &b) {
  switch (op) {
  case RL_RED_SUM: case RL_RED_ABSSUM: case RL_RED_SQSUM:
    a.f += b.f; a.i = WRAP(U64(a.i) + U64(b.i)); break;
  case RL_RED_PROD: a.f *= b.f; a.i = WRAP(U64(a.i) * U64(b.i)); break;
  case RL_RED_MAX: if (wins(isfloat, false, a, b)) a = b; break;
  case RL_RED_MIN: if (wins(isfloat, true, a, b)) a = b; break;
  case RL_RED_ABSMAX:
    if (b.f > a.f || b.f != b.f) a.f = b.f;
    if (b.i > a.i) a.i = b.i;
    break;
  case RL_RED_ANY: a.i = a.i || b.i; break;
  case RL_RED_ALL: a.i = a.i && b.i; break;
  default: break;
  }
}

/* Fold one element into a lane's accumulator (positions ascend per lane). */
template <typename T>
__device__ __forceinline__ void fold(int op, Acc &a, T v, int64_t j) {
  if (is_real<T>::value) {
    double x = (double)v;
    switch (op) {
    case RL_RED_SUM: a.f += x; break;
    case RL_RED_ABSSUM: a.f += fabs(x); break;
    case RL_RED_SQSUM: a.f += x * x; break;
    case RL_RED_PROD: a.f *= x; break;
    case RL_RED_ABSMAX: { double y = fabs(x); if (y > a.f || y != y) a.f = y; } break;
    case RL_RED_MAX:
      if (a.arg < 0 || (a.f == a.f && (x > a.f || x != x))) { a.f = x; a.arg = j; }
      break;
    case RL_RED_MIN:
      if (a.arg < 0 || (a.f == a.f && (x < a.f || x != x))) { a.f = x; a.arg = j; }
      break;
    case RL_RED_ANY: a.i |= v != 0; break;
    case RL_RED_ALL: a.i &= v != 0; break;
    default: break;
    }
  } else {
    int64_t x = (int64_t)v;
    switch (op) {
    case RL_RED_SUM: a.i = WRAP(U64(a.i) + U64(x)); break;
    case RL_RED_ABSSUM: a.i = WRAP(U64(a.i) + (x < 0 ? 0 - U64(x) : U64(x))); break;
    case RL_RED_SQSUM: a.i = WRAP(U64(a.i) + U64(x) * U64(x)); break;
    case RL_RED_PROD: a.i = WRAP(U64(a.i) * U64(x)); break;
    case RL_RED_ABSMAX: { int64_t y = x < 0 ? WRAP(0 - U64(x)) : x; if (y > a.i) a.i = y; } break;
    case RL_RED_MAX: if (a.arg < 0 || x > a.i) { a.i = x; a.arg = j; } break;
    case RL_RED_MIN: if (a.arg < 0 || x < a.i) { a.i = x; a.arg = j; } break;
    case RL_RED_ANY: a.i |= x != 0; break;
    case RL_RED_ALL: a.i &= x != 0; break;
    default: break;
    }
  }
}

/* As the CPU's store(): the accumulator converted to the output dtype. */
__device__ __forceinline__ void store(const Red &r, bool isfloat, int64_t o, const Acc &a) {
  int64_t oo = 0, xo = 0, q = o;
  for (int d = r.ondim - 1; d >= 0; d--) {
    int64_t c = q % r.osize[d];
    q /= r.osize[d];
    oo += c * r.ostr_out[d];
    xo += c * r.ostr_idx[d];
  }
  bool argop = r.op == RL_RED_MAX || r.op == RL_RED_MIN;
  double v = isfloat ? a.f : (double)a.i;
  if (!isfloat && argop && a.arg < 0) v = 0;
  switch (r.out_dtype) {
  case RL_F32: ((float *)r.out)[oo] = (float)v; break;
  case RL_F64: ((double *)r.out)[oo] = v; break;
  case RL_I64: ((int64_t *)r.out)[oo] = isfloat ? rl_i64_of_f64(v) : a.i; break;
  case RL_U8: ((uint8_t *)r.out)[oo] = (uint8_t)(isfloat ? rl_i64_of_f64(v) : a.i); break;
  case RL_BF16: ((uint16_t *)r.out)[oo] = rl_bf16_of_f64(v); break;
  case RL_F16: ((uint16_t *)r.out)[oo] = rl_f16_of_f64(v); break;
  default: break;
  }
  if (r.idx) r.idx[xo] = a.arg < 0 ? 0 : a.arg;
}

template <typename T> __global__ void reduce_kernel(Red r, int GX, int GY) {
  __shared__ Acc sm[RL_THREADS];
  const bool isfloat = is_real<T>::value;
  int tx = threadIdx.x % GX, ty = threadIdx.x / GX;
  int64_t o = (int64_t)blockIdx.x * GX + tx;
  Acc a = acc_init(r.op);
  if (o < r.onumel) {
    int64_t base = 0, q = o;
    for (int d = r.ondim - 1; d >= 0; d--) {
      base += (q % r.osize[d]) * r.ostr_in[d];
      q /= r.osize[d];
    }
    const T *in = (const T *)r.in + base;
    int64_t b = (int64_t)blockIdx.y * r.chunk, e = b + r.chunk;
    if (e > r.rnumel) e = r.rnumel;
    if (r.rndim == 1) {
      int64_t s = r.rstr[0];
      for (int64_t j = b + ty; j < e; j += GY) fold<T>(r.op, a, in[j * s], j);
    } else if (r.rnumel < INT32_MAX) { /* 32-bit division is several times cheaper */
      for (int64_t j = b + ty; j < e; j += GY) {
        int64_t off = 0;
        uint32_t q2 = (uint32_t)j;
        for (int d = r.rndim - 1; d > 0; d--) {
          uint32_t sz = (uint32_t)r.rsize[d], qq = q2 / sz;
          off += (int64_t)(q2 - qq * sz) * r.rstr[d];
          q2 = qq;
        }
        off += (int64_t)q2 * r.rstr[0];
        fold<T>(r.op, a, in[off], j);
      }
    } else {
      for (int64_t j = b + ty; j < e; j += GY) {
        int64_t off = 0, q2 = j;
        for (int d = r.rndim - 1; d >= 0; d--) {
          off += (q2 % r.rsize[d]) * r.rstr[d];
          q2 /= r.rsize[d];
        }
        fold<T>(r.op, a, in[off], j);
      }
    }
  }
  sm[threadIdx.x] = a;
  __syncthreads();
  for (int s = GY / 2; s > 0; s >>= 1) {
    if (ty < s) combine(r.op, isfloat, sm[threadIdx.x], sm[threadIdx.x + s * GX]);
    __syncthreads();
  }
  if (ty == 0 && o < r.onumel) {
    if (gridDim.y == 1) store(r, isfloat, o, sm[tx]);
    else r.partial[(int64_t)blockIdx.y * r.onumel + o] = sm[tx];
  }
}

/* The S chunk partials of every output, combined in chunk order. */
__global__ void reduce_combine(Red r, int S, bool isfloat) {
  GRID_STRIDE(o, r.onumel) {
    Acc a = r.partial[o];
    for (int s = 1; s < S; s++) combine(r.op, isfloat, a, r.partial[(int64_t)s * r.onumel + o]);
    store(r, isfloat, o, a);
  }
}

static int pow2_at_least(int64_t n, int cap) {
  int p = 1;
  while (p < n && p < cap) p <<= 1;
  return p;
}

int rl_cuda_reduce(rl_reduce_op op, const rl_rediter *ri) {
  Red r;
  memset(&r, 0, sizeof r);
  r.op = (int)op;
  r.onumel = ri->onumel;
  r.rnumel = ri->rnumel;
  r.in = ri->in;
  r.out = ri->out;
  r.idx = (int64_t *)ri->idx;
  r.out_dtype = ri->out_dtype;
  if (r.onumel == 0) return 0;
  switch (ri->in_dtype) { /* refused before any work is queued, as the CPU refuses them */
  case RL_F32: case RL_F64: case RL_I64: case RL_U8: break;
  case RL_BF16: case RL_F16:
    return rl_err("reduction: not defined for %s", rl_dtype_name(ri->in_dtype));
  default: return rl_err("reduction: not defined for dtype %d", (int)ri->in_dtype);
  }
  /* Coalesce: drop size-1 dims, merge a dim into its outer neighbour when
   * the strides allow (flat reduced positions do not change). */
  for (int d = 0; d < ri->rndim; d++) {
    if (ri->rsize[d] == 1) continue;
    if (r.rndim > 0 && r.rstr[r.rndim - 1] == ri->rstride_in[d] * ri->rsize[d]) {
      r.rsize[r.rndim - 1] *= ri->rsize[d];
      r.rstr[r.rndim - 1] = ri->rstride_in[d];
      continue;
    }
    r.rsize[r.rndim] = ri->rsize[d];
    r.rstr[r.rndim++] = ri->rstride_in[d];
  }
  if (r.rndim == 0) {
    r.rsize[0] = 1;
    r.rstr[0] = 0;
    r.rndim = 1;
  }
  for (int d = 0; d < ri->ondim; d++) {
    if (ri->osize[d] == 1) continue;
    int m = r.ondim - 1;
    if (m >= 0 && r.ostr_in[m] == ri->ostride_in[d] * ri->osize[d] &&
        r.ostr_out[m] == ri->ostride_out[d] * ri->osize[d] &&
        r.ostr_idx[m] == ri->ostride_idx[d] * ri->osize[d]) {
      r.osize[m] *= ri->osize[d];
      r.ostr_in[m] = ri->ostride_in[d];
      r.ostr_out[m] = ri->ostride_out[d];
      r.ostr_idx[m] = ri->ostride_idx[d];
      continue;
    }
    r.osize[r.ondim] = ri->osize[d];
    r.ostr_in[r.ondim] = ri->ostride_in[d];
    r.ostr_out[r.ondim] = ri->ostride_out[d];
    r.ostr_idx[r.ondim++] = ri->ostride_idx[d];
  }
  if (r.ondim == 0) {
    r.osize[0] = 1;
    r.ondim = 1;
  }
  /* Lanes per output: along a contiguous reduced dim, enough lanes to cover
   * it; across a strided one, neighbouring outputs side by side so that a
   * warp reads neighbouring addresses. */
  int GY;
  bool inner = r.rstr[r.rndim - 1] == 1 && r.rnumel > 1;
  if (r.rnumel <= 1) GY = 1;
  else if (inner || r.onumel == 1) GY = pow2_at_least(r.rnumel, RL_THREADS);
  else GY = RL_THREADS / pow2_at_least(r.onumel, 32);
  if (GY < 1) GY = 1;
  int GX = RL_THREADS / GY;
  int64_t bx = (r.onumel + GX - 1) / GX;
  /* Split long reductions of few outputs into fixed chunks. */
  int64_t S = 1;
  if (bx < 256 && r.rnumel > (int64_t)GY * 64) {
    S = 512 / bx;
    int64_t most = (r.rnumel + (int64_t)GY * 64 - 1) / ((int64_t)GY * 64);
    if (S > most) S = most;
    if (S > 65535) S = 65535;
    if (S < 1) S = 1;
  }
  r.chunk = (r.rnumel + S - 1) / S;
  if (r.chunk < 1) r.chunk = 1;
  if (S > 1) S = (r.rnumel + r.chunk - 1) / r.chunk;
  size_t pbytes = S > 1 ? sizeof(Acc) * (size_t)(S * r.onumel) : 0;
  if (pbytes && !(r.partial = (Acc *)rl_cuda_scratch(pbytes))) return -1;
  dim3 grid((unsigned)bx, (unsigned)S);
  int rc = 0;
  switch (ri->in_dtype) {
  case RL_F32: reduce_kernel<float><<<grid, RL_THREADS>>>(r, GX, GY); break;
  case RL_F64: reduce_kernel<double><<<grid, RL_THREADS>>>(r, GX, GY); break;
  case RL_I64: reduce_kernel<int64_t><<<grid, RL_THREADS>>>(r, GX, GY); break;
  case RL_U8: reduce_kernel<uint8_t><<<grid, RL_THREADS>>>(r, GX, GY); break;
  default: rc = rl_err("reduction: not defined for dtype %d", (int)ri->in_dtype);
  }
  cudaError_t e = cudaGetLastError();
  if (!rc && e != cudaSuccess) rc = rl_cuda_fail("launch of reduce_kernel", e);
  if (!rc && S > 1) {
    reduce_combine<<<rl_blocks(r.onumel), RL_THREADS>>>(r, (int)S,
                                                       rl_dtype_is_float(ri->in_dtype));
    e = cudaGetLastError();
    if (e != cudaSuccess) rc = rl_cuda_fail("launch of reduce_combine", e);
  }
  if (r.partial) rl_cuda_scratch_free(r.partial, pbytes);
  return rc;
}
