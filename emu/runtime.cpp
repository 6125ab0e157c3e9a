/* runtime.cpp - a host emulator of the CUDA runtime, so that kernels/ runs
 * on a machine without a GPU (`make test-cuda-emu`).
 *
 * The .cu files of kernels/ are the real sources, compiled by g++ after
 * emu/cu2cpp.lua has rewritten their launches (emu/include/cuda_runtime.h).
 * A launch runs the whole grid before it returns: blocks in order, the
 * threads of a block as fibers on one host thread.  A thread runs until it
 * ends or reaches a barrier (__syncthreads, or the exchange of a warp
 * shuffle); a barrier lets its threads go once every thread of the block
 * (of the shuffle's lanes) that has not ended waits there, at the same
 * place in the source.  Kernels without barriers run their threads one
 * after another on one fiber, at the cost of a call.  RL_EMU_ORDER=reverse
 * runs blocks and threads last first.
 *
 * Device memory is a reserved range of host addresses.  Each allocation
 * has its own pages, ends within 256 bytes of an inaccessible guard page,
 * and starts filled with 0xff bytes (NaN in every float type, -1 in every
 * integer one), as cudaMalloc's memory holds no defined value; so do
 * shared arrays at each block's start and, in this build, blocks the
 * caching allocator hands out again (kernels/cuda_backend.cu).  Outside
 * device work (a kernel, a copy, a cuBLAS call) all of it is inaccessible:
 * host code that dereferences a device pointer faults, and the emulator
 * stops with a report and a backtrace.  During device work an allocation
 * opens when first touched; a touch of a guard page or of freed memory
 * stops the run, and so does a write found outside the allocation (in its
 * pages) when the work ends.  A kernel's pointer arguments, and the 8-byte
 * words of its struct arguments, must not be host addresses.
 *
 * What a pass shows: the kernels' index arithmetic, grid and block
 * geometry, dtype dispatch, barrier use, warp shuffles, mma.sync and
 * ldmatrix (whole warps, fragments as this file reads the PTX ISA's
 * layout); launch
 * configurations against the hardware's limits; cuBLAS arguments as cuBLAS
 * defines them (column-major, leading dimensions, strides, type
 * combinations, C apart from A and B) with every matrix inside its
 * allocation; the engine's host/device discipline; no read of memory that
 * nothing wrote.  What it cannot show: races in general (the spec runs in
 * two orders, which shows those that change a result between them), the
 * memory model, timing, the GPU's libm and cuBLAS bits, where nvcc fuses a
 * multiply and an add (g++ here fuses none), and float-to-integer
 * conversions out of range (the GPU saturates, x86 does not), and whether
 * the tensor cores' fragment layout is the one read here (the kernels and
 * the emulator share that reading).  Only a GPU shows those. */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "emu.h"

#if !defined(__x86_64__)
#error "the CUDA emulator's fibers are written for x86-64"
#endif

namespace rl_emu {

uint3 thread_idx, block_idx;
dim3 block_dim, grid_dim;

/* ---- reports ------------------------------------------------------------- */

static char report_buf[2048];

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(report_buf, sizeof report_buf, "\nrllua CUDA emulator: ");
  vsnprintf(report_buf + n, sizeof report_buf - n, fmt, ap);
  va_end(ap);
  size_t len = strlen(report_buf);
  if (len + 1 < sizeof report_buf) report_buf[len++] = '\n';
  if (write(2, report_buf, len) < 0) {
  }
  void *frames[48];
  int nf = backtrace(frames, 48);
  backtrace_symbols_fd(frames, nf, 2);
  signal(SIGABRT, SIG_DFL);
  abort();
}

/* ---- device memory ------------------------------------------------------------ */

struct Alloc {
  uintptr_t map_lo, map_hi; /* its pages (the guard page below not included) */
  uintptr_t lo, hi;         /* what cudaMalloc handed out */
  bool live;
  bool open; /* accessible for the current device work */
};

static const size_t ARENA_BYTES = (size_t)1 << 38;
static char *arena;
static size_t arena_top, page_size, mem_limit, mem_live;
static Alloc *allocs; /* in address order: the arena is never reused */
static size_t n_allocs, cap_allocs;
static size_t *open_list; /* indices into allocs opened by the current work */
static size_t n_open, cap_open;
static volatile sig_atomic_t in_device;
static const char *device_what = "";
static struct sigaction old_segv;
static cudaError_t last_error = cudaSuccess;
/* RL_EMU_ORDER=reverse: blocks, and the threads of a block, run last
 * first, so that a race between them gives another result than in the
 * usual order (make test-cuda-emu runs the spec both ways). */
static bool reverse_order;

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* The allocation whose pages (or whose guard page below) hold address a:
 * the last one starting at or below a + page_size; NULL if none. */
static Alloc *find_alloc(uintptr_t a) {
  size_t lo = 0, hi = n_allocs;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (allocs[mid].map_lo - page_size <= a) lo = mid + 1;
    else hi = mid;
  }
  return lo ? &allocs[lo - 1] : NULL;
}

bool is_device(const void *p) {
  uintptr_t a = (uintptr_t)p;
  return arena && a >= (uintptr_t)arena && a < (uintptr_t)arena + ARENA_BYTES;
}

static void open_alloc(Alloc *al) {
  if (__atomic_exchange_n(&al->open, true, __ATOMIC_SEQ_CST)) return;
  if (mprotect((void *)al->map_lo, al->map_hi - al->map_lo, PROT_READ | PROT_WRITE))
    die("mprotect failed: %s", strerror(errno));
  size_t i = __atomic_fetch_add(&n_open, 1, __ATOMIC_SEQ_CST);
  if (i >= cap_open) die("more than %zu allocations touched by one device call", cap_open);
  open_list[i] = (size_t)(al - allocs);
}

/* Where address a is: relative to the allocation nearest below it, or
 * outside device memory. */
static void describe(char *buf, size_t n, uintptr_t a) {
  if (!is_device((const void *)a)) {
    snprintf(buf, n, "%p, which is not device memory", (void *)a);
    return;
  }
  Alloc *al = find_alloc(a);
  /* a guard page is also the one past the allocation below: overflows,
   * which end there, are the likelier reading */
  if (al && a < al->map_lo && al > allocs) al--;
  if (!al) {
    snprintf(buf, n, "%p, below every allocation", (void *)a);
    return;
  }
  size_t size = al->hi - al->lo;
  const char *freed = al->live ? "" : ", since freed";
  if (a < al->map_lo)
    snprintf(buf, n, "%p, in the guard page below an allocation of %zu bytes at %p%s", (void *)a,
             size, (void *)al->lo, freed);
  else if (a >= al->hi)
    snprintf(buf, n, "%p, %zu bytes past the end of an allocation of %zu bytes at %p%s",
             (void *)a, (size_t)(a - al->hi), size, (void *)al->lo, freed);
  else if (a < al->lo)
    snprintf(buf, n, "%p, %zu bytes before an allocation of %zu bytes at %p%s", (void *)a,
             (size_t)(al->lo - a), size, (void *)al->lo, freed);
  else
    snprintf(buf, n, "%p, %zu bytes into an allocation of %zu bytes at %p%s", (void *)a,
             (size_t)(a - al->lo), size, (void *)al->lo, freed);
}

static bool in_fiber_guard(uintptr_t a);
static const size_t FIBER_STACK = 256 << 10;
/* below each stack: a frame larger than a page can skip one guard page */
static const size_t FIBER_GUARD = 64 << 10;

static void on_segv(int sig, siginfo_t *si, void *uc) {
  uintptr_t a = (uintptr_t)si->si_addr;
  if (in_fiber_guard(a))
    die("a thread of %s overflowed its %zu KiB stack", device_what, FIBER_STACK >> 10);
  if (!is_device(si->si_addr)) {
    /* not ours: say which device work ran, then let the previous handler
     * (or the default) take it */
    if (in_device) {
      char msg[256];
      int n = snprintf(msg, sizeof msg,
                       "\nrllua CUDA emulator: segmentation fault at %p while %s ran\n",
                       si->si_addr, device_what);
      if (n > 0 && write(2, msg, (size_t)n) < 0) {
      }
    }
    sigaction(SIGSEGV, &old_segv, NULL);
    return;
  }
  Alloc *al = find_alloc(a);
  bool inside = al && al->live && a >= al->map_lo && a < al->map_hi;
  if (in_device && inside) {
    if (!al->open) open_alloc(al);
    return; /* the access is retried */
  }
  char where[256];
  describe(where, sizeof where, a);
  if (in_device)
    die("%s touched device memory outside every live allocation: %s", device_what, where);
  die("host code dereferenced device memory at %s (a CUDA tensor's data read or written on "
      "the host; copy it with the backend's to_host/from_host)",
      where);
  (void)sig;
  (void)uc;
}

static void init(void) {
  if (arena) return;
  page_size = (size_t)sysconf(_SC_PAGESIZE);
  /* at 32 TiB when that is free: far from the heap (0x55..) and from
   * libraries and stacks (0x7f..), so that stray bytes in a kernel's struct
   * argument seldom look like device addresses (check_words) */
  void *p = mmap((void *)((uintptr_t)1 << 45), ARENA_BYTES, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) die("cannot reserve %zu bytes of address space", ARENA_BYTES);
  arena = (char *)p;
  const char *lim = getenv("RL_EMU_MEMORY");
  mem_limit = lim && *lim ? (size_t)strtoull(lim, NULL, 10) : (size_t)8 << 30;
  const char *order = getenv("RL_EMU_ORDER");
  if (order && *order && strcmp(order, "reverse") && strcmp(order, "forward"))
    die("RL_EMU_ORDER=%s: expected forward or reverse", order);
  reverse_order = order && !strcmp(order, "reverse");
  cap_open = 1 << 16;
  open_list = (size_t *)malloc(cap_open * sizeof(size_t));
  void *frames[2];
  backtrace(frames, 2); /* loads the unwinder now, not inside a fault */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  /* its own stack: a fiber's overflow is reported, not a second fault */
  stack_t alt;
  alt.ss_size = 1 << 16;
  alt.ss_sp = malloc(alt.ss_size);
  alt.ss_flags = 0;
  if (alt.ss_sp) sigaltstack(&alt, NULL);
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
}

void begin_device(const char *what) {
  if (in_device) die("%s started while %s runs", what, device_what);
  device_what = what;
  in_device = 1;
}

/* The first byte in [p, p + n) that is not 0xff, or NULL. */
static const unsigned char *not_ff(uintptr_t p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0xff) return b + i;
  return NULL;
}

void end_device(void) {
  for (size_t i = 0; i < n_open; i++) {
    Alloc *al = &allocs[open_list[i]];
    /* the bytes around what cudaMalloc handed out keep their 0xff fill
     * unless something wrote outside it */
    const unsigned char *bad = not_ff(al->hi, al->map_hi - al->hi);
    if (bad)
      die("%s wrote %zu bytes past the end of an allocation of %zu bytes at %p", device_what,
          (size_t)((uintptr_t)bad - al->hi), (size_t)(al->hi - al->lo), (void *)al->lo);
    bad = not_ff(al->map_lo, al->lo - al->map_lo);
    if (bad)
      die("%s wrote %zu bytes before an allocation of %zu bytes at %p", device_what,
          (size_t)(al->lo - (uintptr_t)bad), (size_t)(al->hi - al->lo), (void *)al->lo);
    if (mprotect((void *)al->map_lo, al->map_hi - al->map_lo, PROT_NONE))
      die("mprotect failed: %s", strerror(errno));
    al->open = false;
  }
  n_open = 0;
  in_device = 0;
  device_what = "";
}

void need_range(const char *what, const void *p, size_t n) {
  if (n == 0) return;
  uintptr_t a = (uintptr_t)p;
  Alloc *al = is_device(p) ? find_alloc(a) : NULL;
  if (!al || !al->live || a < al->lo || a + n > al->hi) {
    char where[256];
    describe(where, sizeof where, a);
    die("%s: %zu bytes from %s%s", what, n, where,
        al && al->live && a >= al->lo && a < al->hi ? " (they run past its end)" : "");
  }
  open_alloc(al);
}

static cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

} // namespace rl_emu

using namespace rl_emu;

/* ---- the runtime API ------------------------------------------------------------ */

cudaError_t cudaGetDeviceCount(int *n) {
  init();
  *n = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev) {
  init();
  return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int *dev) {
  init();
  *dev = 0;
  return cudaSuccess;
}

/* The emulated device reports an H100's 132 multiprocessors, so the split-k
 * GEMMs, which size themselves by it, take the paths they take there. */
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int dev) {
  if (dev != 0) return fail(cudaErrorInvalidDevice);
  if (a != cudaDevAttrMultiProcessorCount) return fail(cudaErrorInvalidValue);
  *v = 132;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) {
  init();
  if (dev != 0) return fail(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "rllua CUDA emulator (host)");
  p->totalGlobalMem = mem_limit;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **out, size_t n) {
  init();
  *out = NULL;
  if (n == 0) return cudaSuccess;
  if (n > mem_limit - mem_live) return fail(cudaErrorMemoryAllocation);
  size_t user = round_up(n, 256), pages = round_up(user, page_size);
  if (arena_top + page_size + pages > ARENA_BYTES) return fail(cudaErrorMemoryAllocation);
  if (n_allocs == cap_allocs) {
    cap_allocs = cap_allocs ? 2 * cap_allocs : 1024;
    Alloc *na = (Alloc *)realloc(allocs, cap_allocs * sizeof(Alloc));
    if (!na) die("out of host memory for the allocation table");
    allocs = na;
  }
  Alloc al;
  al.map_lo = (uintptr_t)arena + arena_top + page_size; /* a guard page below */
  al.map_hi = al.map_lo + pages;
  al.lo = al.map_hi - user;
  al.hi = al.lo + n;
  al.live = true;
  al.open = false;
  arena_top += page_size + pages;
  if (mprotect((void *)al.map_lo, pages, PROT_READ | PROT_WRITE) ||
      (memset((void *)al.map_lo, 0xff, pages), mprotect((void *)al.map_lo, pages, PROT_NONE)))
    die("mprotect failed: %s", strerror(errno));
  allocs[n_allocs++] = al;
  mem_live += n;
  *out = (void *)al.lo;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  Alloc *al = is_device(p) ? find_alloc((uintptr_t)p) : NULL;
  if (!al || al->lo != (uintptr_t)p || !al->live) {
    char where[256];
    describe(where, sizeof where, (uintptr_t)p);
    die("cudaFree of %s", where);
  }
  al->live = false;
  mem_live -= al->hi - al->lo;
  madvise((void *)al->map_lo, al->map_hi - al->map_lo, MADV_DONTNEED);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_, size_t *total) {
  init();
  *free_ = mem_limit - mem_live;
  *total = mem_limit;
  return cudaSuccess;
}

static const char *kind_name(cudaMemcpyKind k) {
  static const char *names[] = {"cudaMemcpyHostToHost", "cudaMemcpyHostToDevice",
                                "cudaMemcpyDeviceToHost", "cudaMemcpyDeviceToDevice",
                                "cudaMemcpyDefault"};
  return (unsigned)k < 5 ? names[k] : "an unknown cudaMemcpyKind";
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
  if (n == 0) return cudaSuccess;
  bool dd = is_device(dst), sd = is_device(src);
  bool ok = kind == cudaMemcpyDefault || (kind == cudaMemcpyHostToDevice && dd && !sd) ||
            (kind == cudaMemcpyDeviceToHost && !dd && sd) ||
            (kind == cudaMemcpyDeviceToDevice && dd && sd) ||
            (kind == cudaMemcpyHostToHost && !dd && !sd);
  if (!ok)
    die("cudaMemcpy with %s from %s memory to %s memory", kind_name(kind),
        sd ? "device" : "host", dd ? "device" : "host");
  begin_device("cudaMemcpy");
  if (dd) need_range("cudaMemcpy's destination", dst, n);
  if (sd) need_range("cudaMemcpy's source", src, n);
  memmove(dst, src, n);
  end_device();
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s) {
  (void)s;
  return cudaMemcpy(dst, src, n, kind);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s) {
  (void)s;
  if (n == 0) return cudaSuccess;
  begin_device("cudaMemsetAsync");
  need_range("cudaMemsetAsync", p, n);
  memset(p, value, n);
  end_device();
  return cudaSuccess;
}

/* Every launch ran to its end before it returned. */
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

/* Events: work queued before a record has run when the record is made,
 * so an event holds the host's clock at its record (0: never recorded). */
struct CUevent_st {
  double at;
};

cudaError_t cudaEventCreate(cudaEvent_t *e) {
  init();
  *e = new CUevent_st{0};
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!e) return fail(cudaErrorInvalidValue);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  e->at = ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return e ? cudaSuccess : fail(cudaErrorInvalidValue);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start || !end || start->at == 0 || end->at == 0) return fail(cudaErrorInvalidValue);
  *ms = (float)(end->at - start->at);
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "cudaSuccess";
  case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
  case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
  case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
  case cudaErrorNoDevice: return "cudaErrorNoDevice";
  case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient";
  case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  case cudaErrorInvalidDevice: return "invalid device ordinal";
  case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

/* ---- fibers ----------------------------------------------------------------- */

/* Save the callee-saved registers and the stack pointer into *save, load
 * the ones saved at `load`, and return there. */
extern "C" void rl_emu_swap(void **save, void *load);
asm(R"(
  .pushsection .text
  .globl rl_emu_swap
  .hidden rl_emu_swap
  .type rl_emu_swap, @function
rl_emu_swap:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size rl_emu_swap, .-rl_emu_swap
  .popsection
)");

namespace rl_emu {

enum { W_NONE, W_BLOCK, W_WARP };

struct Fiber {
  void *sp;
  uintptr_t guard; /* its stack's guard page */
  int lin;  /* the thread it runs, linear in the block */
  int wait; /* W_*: the barrier it is parked at */
  const char *file; /* and where */
  int line;
  unsigned mask; /* a shuffle's lanes */
  bool busy;
};

static const int MAX_THREADS = 1024;
static Fiber *fibers[MAX_THREADS];
static int n_fibers;

static bool in_fiber_guard(uintptr_t a) {
  for (int i = 0; i < n_fibers; i++)
    if (a >= fibers[i]->guard && a < fibers[i]->guard + FIBER_GUARD) return true;
  return false;
}
static void *sched_sp;
static Fiber *cur;

/* The block being run. */
static struct {
  const char *name;
  void (*body)(void *);
  void *ctx;
  int nthreads, next, n_exited, parked_block;
  int parked_warp[MAX_THREADS / 32];
  unsigned char exited[MAX_THREADS];
  uint64_t slots[MAX_THREADS];
} blk;

/* Shared arrays already filled in the current block: their address and
 * the block's number (block_serial counts every block run). */
static uint64_t block_serial;
static struct {
  void *p;
  uint64_t serial;
} fresh[256];

void shared_fresh(void *p, size_t n) {
  int i = 0;
  while (i < 256 && fresh[i].p && fresh[i].p != p) i++;
  if (i == 256) die("more than 256 shared arrays in the kernels of this process");
  if (fresh[i].p == p && fresh[i].serial == block_serial) return;
  fresh[i].p = p;
  fresh[i].serial = block_serial;
  memset(p, 0xff, n);
}

static void set_thread(int lin) {
  thread_idx.x = lin % block_dim.x;
  thread_idx.y = lin / block_dim.x % block_dim.y;
  thread_idx.z = lin / (block_dim.x * block_dim.y);
}

/* A fiber takes the block's threads in turn until none is left to start,
 * then goes back to the scheduler as free. */
static void fiber_main(void) {
  for (;;) {
    while (blk.next < blk.nthreads) {
      int t = blk.next++;
      if (reverse_order) t = blk.nthreads - 1 - t;
      cur->lin = t;
      set_thread(t);
      blk.body(blk.ctx);
      blk.exited[t] = 1;
      blk.n_exited++;
    }
    cur->busy = false;
    rl_emu_swap(&cur->sp, sched_sp);
  }
}

static Fiber *new_fiber(void) {
  char *mem = (char *)mmap(NULL, FIBER_STACK + FIBER_GUARD, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("cannot map a fiber's stack");
  mprotect(mem, FIBER_GUARD, PROT_NONE); /* overflow faults instead of corrupting */
  Fiber *f = new Fiber();
  f->guard = (uintptr_t)mem;
  uintptr_t top = ((uintptr_t)mem + FIBER_GUARD + FIBER_STACK) & ~(uintptr_t)15;
  void **sp = (void **)top;
  *--sp = NULL;                  /* fiber_main's return address: it never returns */
  *--sp = (void *)&fiber_main;   /* where rl_emu_swap's ret goes */
  for (int i = 0; i < 6; i++) *--sp = NULL; /* rbp rbx r12 r13 r14 r15 */
  f->sp = sp;
  f->busy = false;
  f->wait = W_NONE;
  f->lin = -1;
  return f;
}

static void resume(Fiber *f) {
  cur = f;
  if (f->lin >= 0) set_thread(f->lin);
  rl_emu_swap(&sched_sp, f->sp);
  cur = NULL;
}

static Fiber *free_fiber(void) {
  for (int i = 0; i < n_fibers; i++)
    if (!fibers[i]->busy) return fibers[i];
  if (n_fibers == MAX_THREADS) die("more fibers than threads in a block");
  return fibers[n_fibers++] = new_fiber();
}

static void park(int kind) {
  if (!cur) die("a barrier outside a kernel");
  cur->wait = kind;
  if (kind == W_BLOCK) blk.parked_block++;
  else blk.parked_warp[cur->lin / 32]++;
  rl_emu_swap(&cur->sp, sched_sp);
}

void sync_block(const char *file, int line) {
  if (cur) {
    cur->file = file;
    cur->line = line;
  }
  park(W_BLOCK);
}

uint64_t shfl_xor(unsigned mask, uint64_t v, int lane_mask, int width, const char *file,
                  int line) {
  if (!cur) die("a warp shuffle outside a kernel");
  cur->file = file;
  cur->line = line;
  cur->mask = mask;
  lane_mask &= 31; /* the instruction reads 5 bits of it */
  int lin = cur->lin, lane = lin & 31, base = lin & ~31;
  if (width < 1 || width > 32 || (width & (width - 1)))
    die("%s: warp shuffle of width %d (a power of 2 up to 32)", blk.name, width);
  if (!(mask >> lane & 1))
    die("%s: thread %d shuffles with a mask (0x%08x) that leaves out its own lane", blk.name,
        lin, mask);
  blk.slots[lin] = v;
  park(W_WARP);
  int src = lane ^ lane_mask;
  if (src >= (lane / width + 1) * width) src = lane;
  int sl = base + src;
  if (sl >= blk.nthreads || blk.exited[sl] || !(mask >> src & 1))
    die("%s: thread %d's warp shuffle reads lane %d, which does not take part", blk.name, lin,
        src);
  uint64_t r = blk.slots[sl];
  park(W_WARP);
  return r;
}

/* The fragments of the lanes in an mma, 10 words each: a[4], b[2], d[4]. */
static uint32_t mma_slots[MAX_THREADS][10];

static float bf16_value(uint32_t reg, int half) {
  uint32_t bits = (reg >> (16 * half) & 0xffffu) << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

void mma_bf16_16816(float *d, const uint32_t *a, const uint32_t *b, const char *file, int line) {
  if (!cur) die("an mma outside a kernel");
  cur->file = file;
  cur->line = line;
  cur->mask = 0xffffffffu;
  int lin = cur->lin, base = lin & ~31;
  if (base + 32 > blk.nthreads)
    die("%s: mma.sync in a warp of %d threads (it takes a whole warp)", blk.name,
        blk.nthreads - base);
  memcpy(mma_slots[lin], a, 16);
  memcpy(mma_slots[lin] + 4, b, 8);
  memcpy(mma_slots[lin] + 6, d, 16);
  park(W_WARP);
  for (int l = base; l < base + 32; l++)
    if (blk.exited[l]) die("%s: thread %d's mma.sync runs without lane %d", blk.name, lin, l & 31);
  /* the PTX ISA's layout: group g = lane / 4 and t = lane % 4 hold rows g
   * and g + 8 of A and of D, A's columns (k) 2t, 2t + 1 and those + 8, B's
   * rows (k) likewise and its column (n) g, D's columns 2t and 2t + 1 */
  int lane = lin & 31, g = lane >> 2, t = lane & 3;
  float out[4];
  for (int i = 0; i < 4; i++) {
    int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    double acc = 0;
    for (int k = 0; k < 16; k++) {
      const uint32_t *fa = mma_slots[base + (row & 7) * 4 + (k & 7) / 2];
      const uint32_t *fb = mma_slots[base + col * 4 + (k & 7) / 2];
      acc += (double)bf16_value(fa[(row >= 8) + 2 * (k >= 8)], k & 1) *
             (double)bf16_value(fb[4 + (k >= 8)], k & 1);
    }
    out[i] = (float)(acc + (double)d[i]);
  }
  park(W_WARP);
  memcpy(d, out, sizeof out);
}

void ldmatrix_x4(uint32_t *r, const void *p, const char *file, int line) {
  if (!cur) die("an ldmatrix outside a kernel");
  cur->file = file;
  cur->line = line;
  cur->mask = 0xffffffffu;
  int lin = cur->lin, base = lin & ~31, lane = lin & 31;
  if (base + 32 > blk.nthreads)
    die("%s: ldmatrix in a warp of %d threads (it takes a whole warp)", blk.name,
        blk.nthreads - base);
  if ((uintptr_t)p & 15)
    die("%s: thread %d's ldmatrix row address %p is not 16-byte aligned", blk.name, lin, p);
  blk.slots[lin] = (uint64_t)(uintptr_t)p;
  park(W_WARP);
  for (int l = base; l < base + 32; l++)
    if (blk.exited[l]) die("%s: thread %d's ldmatrix runs without lane %d", blk.name, lin, l & 31);
  uint32_t out[4];
  for (int q = 0; q < 4; q++) {
    const char *row = (const char *)(uintptr_t)blk.slots[base + q * 8 + lane / 4];
    memcpy(&out[q], row + 4 * (lane % 4), 4);
  }
  park(W_WARP);
  memcpy(r, out, sizeof out);
}

/* The threads released together must wait at one place in the source. */
static void same_site(Fiber **go, int n, const char *what) {
  for (int i = 1; i < n; i++)
    if (go[i]->line != go[0]->line || strcmp(go[i]->file, go[0]->file))
      die("%s, block (%u, %u, %u): threads wait at different %s, %s:%d (thread %d) and "
          "%s:%d (thread %d)",
          blk.name, block_idx.x, block_idx.y, block_idx.z, what, go[0]->file, go[0]->line,
          go[0]->lin, go[i]->file, go[i]->line, go[i]->lin);
}

/* Let the parked threads go, in thread order (reversed under
 * RL_EMU_ORDER=reverse). */
static void release(Fiber **go, int n) {
  std::sort(go, go + n, [](const Fiber *a, const Fiber *b) {
    return reverse_order ? a->lin > b->lin : a->lin < b->lin;
  });
  for (int i = 0; i < n; i++) {
    go[i]->wait = W_NONE;
    resume(go[i]);
  }
}

/* Release the parked threads of one barrier whose every live thread has
 * arrived; false when none can go (a deadlock on a GPU too). */
static bool release_one(void) {
  int live = blk.nthreads - blk.n_exited;
  if (blk.parked_block > 0 && blk.parked_block == live) {
    blk.parked_block = 0;
    Fiber *go[MAX_THREADS];
    int n = 0;
    for (int i = 0; i < n_fibers; i++)
      if (fibers[i]->busy && fibers[i]->wait == W_BLOCK) go[n++] = fibers[i];
    same_site(go, n, "__syncthreads");
    release(go, n);
    return true;
  }
  for (int w = 0; w * 32 < blk.nthreads; w++) {
    if (!blk.parked_warp[w]) continue;
    Fiber *parked[32];
    int np = 0;
    for (int i = 0; i < n_fibers; i++)
      if (fibers[i]->busy && fibers[i]->wait == W_WARP && fibers[i]->lin / 32 == w)
        parked[np++] = fibers[i];
    /* a group of lanes with one mask goes once every lane of the mask that
     * has not ended waits with it (disjoint masks are separate groups) */
    for (int k = 0; k < np; k++) {
      unsigned mask = parked[k]->mask;
      Fiber *go[32];
      int n = 0, want = 0;
      for (int i = 0; i < np; i++)
        if (parked[i]->mask == mask) go[n++] = parked[i];
      for (int t = w * 32; t < w * 32 + 32 && t < blk.nthreads; t++)
        want += !blk.exited[t] && (mask >> (t & 31) & 1);
      if (n != want) continue;
      same_site(go, n, "warp shuffles");
      blk.parked_warp[w] -= n;
      release(go, n);
      return true;
    }
  }
  return false;
}

static void run_block(void) {
  block_serial++;
  blk.next = 0;
  blk.n_exited = 0;
  blk.parked_block = 0;
  memset(blk.parked_warp, 0, sizeof blk.parked_warp);
  memset(blk.exited, 0, (size_t)blk.nthreads);
  for (;;) {
    if (blk.next < blk.nthreads) {
      Fiber *f = free_fiber();
      f->busy = true;
      f->wait = W_NONE;
      f->lin = -1;
      resume(f);
      continue;
    }
    if (blk.n_exited == blk.nthreads) return;
    if (!release_one()) {
      int warp = 0;
      for (int w = 0; w < MAX_THREADS / 32; w++) warp += blk.parked_warp[w];
      die("%s, block (%u, %u, %u): deadlock: %d threads wait at __syncthreads and %d at warp "
          "shuffles, while %d of %d have ended",
          blk.name, block_idx.x, block_idx.y, block_idx.z, blk.parked_block, warp,
          blk.n_exited, blk.nthreads);
    }
  }
}

void run_grid(const char *name, dim3 g, dim3 b, size_t smem, void (*body)(void *), void *ctx) {
  init();
  uint64_t nt = (uint64_t)b.x * b.y * b.z;
  if (!g.x || !g.y || !g.z || !b.x || !b.y || !b.z || b.x > 1024 || b.y > 1024 || b.z > 64 ||
      nt > 1024 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
    fprintf(stderr,
            "rllua CUDA emulator: %s launched on grid (%u, %u, %u), block (%u, %u, %u): "
            "outside the hardware's limits\n",
            name, g.x, g.y, g.z, b.x, b.y, b.z);
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  if (smem) die("%s: dynamic shared memory (%zu bytes) is not emulated", name, smem);
  if (cur) die("%s launched from inside %s", name, blk.name);
  begin_device(name);
  grid_dim = g;
  block_dim = b;
  blk.name = name;
  blk.body = body;
  blk.ctx = ctx;
  blk.nthreads = (int)nt;
  for (unsigned z = 0; z < g.z; z++)
    for (unsigned y = 0; y < g.y; y++)
      for (unsigned x = 0; x < g.x; x++) {
        block_idx.x = reverse_order ? g.x - 1 - x : x;
        block_idx.y = reverse_order ? g.y - 1 - y : y;
        block_idx.z = reverse_order ? g.z - 1 - z : z;
        run_block();
      }
  end_device();
}

void check_arg(const char *kernel, int index, const void *p) {
  if (!p) return;
  uintptr_t a = (uintptr_t)p;
  Alloc *al = is_device(p) ? find_alloc(a) : NULL;
  if (al && al->live && a >= al->lo && a <= al->hi) return;
  char where[256];
  describe(where, sizeof where, a);
  die("%s: pointer argument %d is %s", kernel, index, where);
}

/* Mapped host memory, from /proc/self/maps (read again on a miss). */
static std::vector<std::pair<uintptr_t, uintptr_t>> host_maps;

static bool host_mapped(uintptr_t a, bool refresh) {
  if (refresh) {
    host_maps.clear();
    FILE *f = fopen("/proc/self/maps", "r");
    unsigned long lo, hi;
    char line[512];
    while (f && fgets(line, sizeof line, f))
      if (sscanf(line, "%lx-%lx", &lo, &hi) == 2) host_maps.push_back({lo, hi});
    if (f) fclose(f);
  }
  for (auto &m : host_maps)
    if (a >= m.first && a < m.second) return true;
  return false;
}

void check_words(const char *kernel, int index, const void *p, size_t n) {
  for (size_t o = 0; o + 8 <= n; o += 8) {
    uintptr_t w;
    memcpy(&w, (const char *)p + o, 8);
    /* a small int field beside 4 bytes of padding (whatever they hold) is
     * no pointer; a real one has low 32 bits this small once in 65536 */
    if ((w & 0xffffffffu) < 0x10000) continue;
    /* a device pointer lies in some allocation's pages or guard page; other
     * words in the arena's range (two int fields side by side can make
     * one) are not taken for pointers */
    if (is_device((const void *)w)) {
      Alloc *al = find_alloc(w);
      if (!al || w >= al->map_hi || (al->live && w >= al->lo && w <= al->hi)) continue;
      char where[256];
      describe(where, sizeof where, w);
      die("%s: argument %d holds, %zu bytes into it, a device pointer %s", kernel, index, o,
          where);
    }
    /* a host address, if any word is one: too large for a count or an
     * index of this machine's memory, and mapped */
    if (w < ((uintptr_t)1 << 32) || w >= ((uintptr_t)1 << 47)) continue;
    if (host_mapped(w, false) || host_mapped(w, true))
      die("%s: argument %d holds, %zu bytes into it, %p: host memory, which a kernel cannot "
          "read",
          kernel, index, o, (void *)w);
  }
}

const char *kernel_name(const char *pretty) {
  const char *s = strstr(pretty, "auto F = ");
  if (!s) return strdup(pretty);
  s += 9;
  size_t n = 0;
  int depth = 0;
  while (s[n] && !(depth == 0 && (s[n] == ';' || s[n] == ']'))) {
    depth += s[n] == '<' || s[n] == '(';
    depth -= s[n] == '>' || s[n] == ')';
    n++;
  }
  return strndup(s, n);
}

} // namespace rl_emu
