/* cub's DeviceRadixSort::SortPairs as kernels/cuda_index.cu calls it, for
 * the host emulator (emu/cublas.cpp): a stable sort of (key, value) pairs
 * by bits [begin_bit, end_bit) of the keys, the size query included. */
#ifndef RL_EMU_CUB_RADIX_SORT_CUH
#define RL_EMU_CUB_RADIX_SORT_CUH

#include "../../cuda_runtime.h"

namespace rl_emu {
cudaError_t sort_pairs_i64_i32(void *tmp, size_t &tmp_bytes, const int64_t *kin, int64_t *kout,
                               const int32_t *vin, int32_t *vout, int n, int begin_bit,
                               int end_bit);
}

namespace cub {
struct DeviceRadixSort {
  static cudaError_t SortPairs(void *tmp, size_t &tmp_bytes, const int64_t *kin, int64_t *kout,
                               const int32_t *vin, int32_t *vout, int n, int begin_bit = 0,
                               int end_bit = 64, cudaStream_t s = 0) {
    (void)s;
    return rl_emu::sort_pairs_i64_i32(tmp, tmp_bytes, kin, kout, vin, vout, n, begin_bit,
                                      end_bit);
  }
};
} // namespace cub

#endif
