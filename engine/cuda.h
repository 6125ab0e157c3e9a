/* cuda.h - the engine-level CUDA API beyond the kernel table: memory
 * statistics of the caching allocator, emptying its cache, synchronising,
 * and the hook through which the binding runs a full Lua GC.
 *
 * Implemented in kernels/cuda_backend.cu; engine/cuda_none.c stubs it when
 * the CUDA backend is not built.  No CUDA header is included here. */
#ifndef RL_CUDA_H
#define RL_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tune.h"

/* The caching allocator's counters for one device, in bytes and events.
 * Sizes are the allocator's rounded block sizes. */
typedef struct rl_cuda_memstats {
  uint64_t allocated;        /* in blocks handed to tensors (and scratch) */
  uint64_t requested;        /* what those blocks were asked for */
  uint64_t cached;           /* in free blocks kept for reuse */
  uint64_t reserved;         /* allocated + cached: what cudaMalloc holds */
  uint64_t peak_allocated, peak_reserved;
  uint64_t n_alloc;          /* allocations served */
  uint64_t n_cache_hit;      /* of which from the cache */
  uint64_t n_cuda_malloc, n_cuda_free;
  uint64_t n_oom_retry;      /* times an allocation failed and was retried */
  uint64_t n_gc;             /* Lua collections the allocator asked for */
  uint64_t device_free, device_total; /* cudaMemGetInfo */
} rl_cuda_memstats;

int rl_cuda_memory_stats(int device, rl_cuda_memstats *s);
/* Return every cached block to the driver (cudaFree). */
int rl_cuda_empty_cache(void);
/* Wait for every queued kernel; a fault in one shows up here. */
int rl_cuda_synchronize(void);
/* f32 GEMMs (and so convolutions) on TF32 tensor cores, as cuBLAS's
 * CUBLAS_TF32_TENSOR_OP_MATH: inputs rounded to a 10-bit mantissa, sums
 * in fp32, several times the fp32 rate on compute capability 8.0 and later
 * (earlier GPUs ignore it).  PyTorch's cuDNN convolutions default to it;
 * rllua defaults to full fp32.  RL_CUDA_TF32=1 in the environment turns it
 * on from the start.  Returns the previous setting; on < 0 only reads it. */
bool rl_cuda_set_tf32(int on);
/* "NVIDIA H100 80GB HBM3" and its compute capability. */
int rl_cuda_device_name(int device, char *buf, size_t n, int *major, int *minor);

/* CUDA's book of choices (engine/tune.h): each bf16 convolution pass's
 * algorithm, "im2col" or "implicit", measured on its first use
 * (kernels/cuda_conv.cu); RL_CUDA_CONV forces one, RL_CUDA_CONV_CACHE=off
 * keeps the choices in the process.  NULL in a build without CUDA. */
rl_tune_book *rl_cuda_conv_book(void);
/* Its file, named after the GPU in use: "" before a device is in use, when
 * RL_CUDA_CONV_CACHE=off keeps the choices in the process, or without CUDA. */
const char *rl_cuda_conv_cache_path(void);

/* The binding's full Lua GC.  Lua cannot see the device memory behind a
 * tensor box, so unreachable tensors would pile up between its own
 * collections; the allocator calls this hook (1) when its cache misses and
 * more than 1/32 of the device's memory was handed out since the last call,
 * and (2) when cudaMalloc fails even after the cache was freed, before its
 * last retry.  Collected tensors return their blocks to the cache. */
typedef void (*rl_cuda_gc_fn)(void *ud);
void rl_cuda_set_gc_hook(rl_cuda_gc_fn fn, void *ud);

#endif
