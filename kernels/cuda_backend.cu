/* cuda_backend.cu - the CUDA device: probing, the caching allocator,
 * host <-> device copies and the kernel table.
 *
 * The allocator keeps freed blocks in free lists keyed by their rounded
 * size; a training loop that allocates the same shapes every step is then
 * served from the lists and never calls cudaMalloc or cudaFree once warm.
 * Lua does not see the device memory behind a tensor, so when the cache
 * misses after much was allocated, the binding's hook runs a full Lua GC
 * and the cache is searched again.  When cudaMalloc fails: free the cache
 * and retry, then run the hook, free the cache again and retry once more,
 * then fail with the bytes requested and held. */
#include <stdio.h>
#include <string.h>

#include <unordered_map>
#include <vector>

#include "cuda_common.cuh"

extern "C" {
#include "cuda.h"
}

int rl_cuda_fail(const char *call, cudaError_t e) {
  return rl_err("CUDA error in %s: %s (%s)", call, cudaGetErrorString(e),
                cudaGetErrorName(e));
}

/* ---- probing ------------------------------------------------------------ */

/* Only one device per process: every kernel runs on the current device, and
 * the kernel table does not say which one a pointer belongs to. */
static int active_device = -1;

extern "C" int rl_cuda_probe(int *count) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *count = 0;
    cudaGetLastError();
    if (e == cudaErrorInsufficientDriver)
      return rl_err("%s (is an NVIDIA driver installed? cudaGetDeviceCount: %s)",
                    cudaGetErrorString(e), cudaGetErrorName(e));
    return rl_err("%s (cudaGetDeviceCount: %s)", cudaGetErrorString(e), cudaGetErrorName(e));
  }
  *count = n;
  return 0;
}

/* The multiprocessors of the device in use (0 before one is). */
static int64_t sm_count;

/* Make `dev` current, once; refuse a second device. */
static int use_device(int index) {
  if (active_device == index) return 0;
  if (active_device >= 0)
    return rl_err("cuda:%d: this build runs on one CUDA device per process and cuda:%d is in "
                  "use (select a GPU with CUDA_VISIBLE_DEVICES instead)",
                  index, active_device);
  CUDA_TRY(cudaSetDevice(index));
  int sms = 0;
  CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, index));
  sm_count = sms;
  active_device = index;
  return 0;
}

int64_t rl_cuda_sms(void) { return sm_count; }

/* ---- the caching allocator -------------------------------------------- */

/* Small blocks round to 512 bytes; larger ones to 1/16 of their power of
 * two, so a block is never more than 1/16 larger than asked (plus 512). */
static size_t round_size(size_t n) {
  if (n <= ((size_t)1 << 20)) return n < 512 ? 512 : (n + 511) & ~(size_t)511;
  size_t p = (size_t)1 << 20;
  while (p < n) p <<= 1;
  size_t step = p / 16;
  return (n + step - 1) / step * step;
}

static std::unordered_map<size_t, std::vector<void *>> free_lists;
static rl_cuda_memstats st;
static rl_cuda_gc_fn gc_fn;
static void *gc_ud;
static uint64_t since_gc;  /* bytes handed out since the last hook call */
static uint64_t gc_every;  /* 1/32 of the device's memory, at least 256 MiB */

extern "C" void rl_cuda_set_gc_hook(rl_cuda_gc_fn fn, void *ud) {
  gc_fn = fn;
  gc_ud = ud;
}

static void run_gc_hook(void) {
  since_gc = 0;
  if (!gc_fn) return;
  st.n_gc++;
  gc_fn(gc_ud);
}

/* A cached block of exactly sz bytes, or NULL. */
static void *from_cache(size_t sz) {
  auto it = free_lists.find(sz);
  if (it == free_lists.end() || it->second.empty()) return NULL;
  void *p = it->second.back();
  it->second.pop_back();
  st.cached -= sz;
  st.n_cache_hit++;
#ifdef RL_CUDA_EMU
  /* the host emulator (emu/): a reused block holds no defined value, as a
   * fresh one does not, so it gets the emulator's 0xff fill again */
  cudaMemsetAsync(p, 0xff, sz);
#endif
  return p;
}

static void free_cache(void) {
  if (st.cached == 0) return;
  /* cudaFree waits for the device: no queued kernel still uses a block */
  for (auto &kv : free_lists) {
    for (void *p : kv.second) {
      cudaFree(p);
      st.n_cuda_free++;
    }
    st.reserved -= kv.first * kv.second.size();
    kv.second.clear();
  }
  st.cached = 0;
}

static void *block_alloc(size_t nbytes) {
  size_t sz = round_size(nbytes);
  st.n_alloc++;
  if (!gc_every) {
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) cudaGetLastError();
    gc_every = tot / 32 > ((uint64_t)256 << 20) ? tot / 32 : (uint64_t)256 << 20;
  }
  void *p = from_cache(sz);
  if (!p && since_gc >= gc_every) {
    /* garbage Lua has not collected yet may hold blocks of this size */
    run_gc_hook();
    p = from_cache(sz);
  }
  if (!p) {
    cudaError_t e = cudaMalloc(&p, sz);
    for (int attempt = 0; e != cudaSuccess && attempt < 2; attempt++) {
      if (e != cudaErrorMemoryAllocation) break;
      cudaGetLastError(); /* clear it: an allocation failure is not sticky */
      st.n_oom_retry++;
      if (attempt == 1) run_gc_hook(); /* Lua's full GC refills the cache */
      free_cache();
      e = cudaMalloc(&p, sz);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t fr = 0, tot = 0;
      cudaMemGetInfo(&fr, &tot);
      cudaGetLastError();
      if (e == cudaErrorMemoryAllocation)
        rl_err("CUDA out of memory: cannot allocate %zu bytes (%.1f MiB) on cuda:%d; tensors "
               "hold %llu bytes (%.1f MiB), %llu are cached, the device has %zu of %zu bytes "
               "free",
               nbytes, nbytes / 1048576.0, active_device, (unsigned long long)st.allocated,
               st.allocated / 1048576.0, (unsigned long long)st.cached, fr, tot);
      else
        rl_cuda_fail("cudaMalloc", e);
      return NULL;
    }
    st.n_cuda_malloc++;
    st.reserved += sz;
    if (st.reserved > st.peak_reserved) st.peak_reserved = st.reserved;
  }
  since_gc += sz;
  st.allocated += sz;
  st.requested += nbytes;
  if (st.allocated > st.peak_allocated) st.peak_allocated = st.allocated;
  return p;
}

static void block_free(void *p, size_t nbytes) {
  if (!p) return;
  size_t sz = round_size(nbytes);
  free_lists[sz].push_back(p);
  st.allocated -= sz;
  st.requested -= nbytes;
  st.cached += sz;
}

void *rl_cuda_scratch(size_t nbytes) { return block_alloc(nbytes); }
void rl_cuda_scratch_free(void *p, size_t nbytes) { block_free(p, nbytes); }

static void *cuda_alloc(const rl_device *dev, size_t nbytes) {
  if (use_device(dev->index)) return NULL;
  return block_alloc(nbytes);
}

static void cuda_free(const rl_device *dev, void *p, size_t nbytes) {
  (void)dev;
  block_free(p, nbytes);
}

extern "C" int rl_cuda_empty_cache(void) {
  if (active_device < 0) return 0;
  free_cache();
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? 0 : rl_cuda_fail("cudaFree", e);
}

extern "C" int rl_cuda_memory_stats(int device, rl_cuda_memstats *s) {
  if (use_device(device)) return -1;
  *s = st;
  size_t fr = 0, tot = 0;
  CUDA_TRY(cudaMemGetInfo(&fr, &tot));
  s->device_free = fr;
  s->device_total = tot;
  return 0;
}

extern "C" int rl_cuda_synchronize(void) {
  if (active_device < 0) return 0;
  CUDA_TRY(cudaDeviceSynchronize());
  return 0;
}

extern "C" int rl_cuda_device_name(int device, char *buf, size_t n, int *major, int *minor) {
  cudaDeviceProp p;
  CUDA_TRY(cudaGetDeviceProperties(&p, device));
  snprintf(buf, n, "%s", p.name);
  *major = p.major;
  *minor = p.minor;
  return 0;
}

/* ---- copies ------------------------------------------------------------- */

/* cudaMemcpy is ordered after the queued kernels on the default stream and
 * returns when the copy is done: reads to the host synchronise here. */
static int cuda_to_host(const rl_device *dev, void *host, const void *src, size_t nbytes) {
  (void)dev;
  CUDA_TRY(cudaMemcpy(host, src, nbytes, cudaMemcpyDeviceToHost));
  return 0;
}

static int cuda_from_host(const rl_device *dev, void *dst, const void *host, size_t nbytes) {
  (void)dev;
  CUDA_TRY(cudaMemcpy(dst, host, nbytes, cudaMemcpyHostToDevice));
  return 0;
}

static int cuda_synchronize(const rl_device *dev) {
  (void)dev;
  return rl_cuda_synchronize();
}

/* ---- the table ------------------------------------------------------------ */

static const rl_backend cuda_backend = {
    "cuda",
    cuda_alloc,
    cuda_free,
    cuda_to_host,
    cuda_from_host,
    cuda_synchronize,
    /* the kernels, in backend.h's order; conv2d and conv2d_bwd compose
     * engine/conv_gemm.c's Winograd or im2col with cuBLAS, or take the
     * implicit GEMM (conv_implicit, kernels/cuda_igemm.cu) */
#define RL_ENTRY_(k) rl_cuda_##k,
    RL_KERNELS(RL_ENTRY_)
#undef RL_ENTRY_
};

/* A forgotten entry (or a new one in backend.h) changes the size. */
static_assert(sizeof(rl_backend) == sizeof(void *) * 44, "rl_backend has 43 entries + name");

extern "C" const rl_backend *rl_cuda_backend(void) { return &cuda_backend; }
