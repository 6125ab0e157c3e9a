/* emu.h - what emu/runtime.cpp lends emu/cublas.cpp: reports, and device
 * memory opened for an emulated library call. */
#ifndef RL_EMU_EMU_H
#define RL_EMU_EMU_H

#include <cuda_runtime.h>

namespace rl_emu {

/* Print "rllua CUDA emulator: <message>" and a backtrace, then abort: what
 * the emulator stops for is a defect a GPU would show as a fault or
 * undefined behaviour. */
[[noreturn]] void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether p lies in the emulator's device address range. */
bool is_device(const void *p);

/* Device work (a kernel, a copy, a cuBLAS call) named `what` begins or
 * ends: between the two, the allocations it touches are accessible. */
void begin_device(const char *what);
void end_device(void);

/* [p, p + n) must lie inside one live allocation (n == 0: anything goes);
 * otherwise stop with a report naming `what`.  Opens it for the current
 * device work. */
void need_range(const char *what, const void *p, size_t n);

} // namespace rl_emu

#endif
