/* cuda_mma.cuh - the tensor cores' bf16 mma.sync and the ldmatrix that
 * feeds it, for kernels/cuda_igemm.cu and emu/selftest.cu's checks of
 * their fragment layouts (which the emulator,
 * emu/runtime.cpp, reads from the PTX ISA as the kernel does). */
#ifndef RL_CUDA_MMA_CUH
#define RL_CUDA_MMA_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* d += a @ b on a whole warp: m16n8k16, bf16 in, f32 sums. */
__device__ __forceinline__ void rl_mma_16816(float d[4], const uint32_t a[4],
                                             const uint32_t b[2]) {
#if defined(RL_CUDA_EMU)
  rl_emu::mma_bf16_16816(d, a, b, __FILE__, __LINE__);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap(); /* bf16 mma needs sm_80; the Makefile builds sm_80 and sm_90 */
#elif defined(__CUDA_ARCH__)
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

/* r = four 8x8 b16 matrices from shared memory, as mma.sync's fragments:
 * lane l gives p, the address of row l % 8 of matrix l / 8 (16 bytes,
 * 16-byte aligned); r[q] is matrix q's pair at row l / 4, columns
 * 2 (l % 4) and 2 (l % 4) + 1. */
__device__ __forceinline__ void rl_ldmatrix_x4(uint32_t r[4], const void *p) {
#if defined(RL_CUDA_EMU)
  rl_emu::ldmatrix_x4(r, p, __FILE__, __LINE__);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 750
  __trap(); /* ldmatrix needs sm_75 */
#elif defined(__CUDA_ARCH__)
  /* "memory": the asm reads shared memory that nvcc cannot see through
   * its operands, so no store to the tile may move past it */
  unsigned a = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a)
               : "memory");
#endif
}

#endif
