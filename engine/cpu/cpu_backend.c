/* cpu_backend.c - host memory and the CPU kernel table. */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include "cpu.h"

/* Host memory.  Blocks up to 32 MB come from the heap (glibc's largest
 * mmap threshold), so a training loop reuses freed pages instead of
 * faulting in fresh ones on every op.  Larger blocks would be mmapped and
 * unmapped each time (a 16M-float a + b ran at a fifth of memcpy's speed,
 * all page faults), so freed big blocks are kept in a small cache and
 * handed out again for the same rounded size: at most BIG_SLOTS blocks and
 * BIG_LIMIT bytes are held. */
#define BIG_BYTES ((size_t)32 << 20)
#define BIG_ROUND ((size_t)2 << 20)
#define BIG_SLOTS 8
#define BIG_LIMIT ((size_t)1 << 30)

static struct {
  void *p;
  size_t n;
} big_cache[BIG_SLOTS];
static size_t big_held;
static pthread_mutex_t big_mu = PTHREAD_MUTEX_INITIALIZER;

static void tune_malloc(void) {
  static bool done;
  if (done) return;
  done = true;
  mallopt(M_MMAP_THRESHOLD, (int)BIG_BYTES);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
}

static size_t rounded(size_t nbytes) {
  size_t n = (nbytes + 63) & ~(size_t)63;
  if (n >= BIG_BYTES) n = (n + BIG_ROUND - 1) & ~(BIG_ROUND - 1);
  return n ? n : 64;
}

static void *big_take(size_t n) {
  void *p = NULL;
  pthread_mutex_lock(&big_mu);
  for (int i = 0; i < BIG_SLOTS && !p; i++)
    if (big_cache[i].p && big_cache[i].n == n) {
      p = big_cache[i].p;
      big_cache[i].p = NULL;
      big_held -= n;
    }
  pthread_mutex_unlock(&big_mu);
  return p;
}

/* Keep a freed big block if there is room; returns whether it was kept. */
static bool big_keep(void *p, size_t n) {
  bool kept = false;
  pthread_mutex_lock(&big_mu);
  if (big_held + n <= BIG_LIMIT)
    for (int i = 0; i < BIG_SLOTS && !kept; i++)
      if (!big_cache[i].p) {
        big_cache[i].p = p;
        big_cache[i].n = n;
        big_held += n;
        kept = true;
      }
  pthread_mutex_unlock(&big_mu);
  return kept;
}

/* Give every cached block back to the system (and, on a failed
 * allocation, try again with the memory that frees). */
void rl_cpu_empty_cache(void) {
  pthread_mutex_lock(&big_mu);
  for (int i = 0; i < BIG_SLOTS; i++) {
    free(big_cache[i].p);
    big_cache[i].p = NULL;
  }
  big_held = 0;
  pthread_mutex_unlock(&big_mu);
}

static void *cpu_alloc(const rl_device *dev, size_t nbytes) {
  (void)dev;
  tune_malloc();
  size_t n = rounded(nbytes);
  void *p = n >= BIG_BYTES ? big_take(n) : NULL;
  if (!p) p = aligned_alloc(64, n);
  if (!p) {
    rl_cpu_empty_cache();
    p = aligned_alloc(64, n);
  }
  if (!p) rl_err("out of memory: cannot allocate %zu bytes on the CPU", nbytes);
  return p;
}

static void cpu_free(const rl_device *dev, void *p, size_t nbytes) {
  (void)dev;
  size_t n = rounded(nbytes);
  if (p && n >= BIG_BYTES && big_keep(p, n)) return;
  free(p);
}

const rl_backend rl_cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
#define RL_ENTRY_(k) .k = rl_cpu_##k,
    RL_KERNELS(RL_ENTRY_)
#undef RL_ENTRY_
};
