/* cpu_tune.c - the processor under the CPU backend, and the convolution
 * algorithm of each shape.
 *
 * Nothing here is tuned on one machine.  The caches come from the kernel
 * (sysfs), else from sysconf, and size the convolutions' chunks; the
 * vector extensions come from cpuid, and a build whose kernels use
 * instructions the processor lacks is refused when rl.core loads.
 *
 * Which convolution algorithm a shape takes is measured, as cuDNN's
 * benchmark mode does: on the shape's first use every candidate runs and
 * the fastest is kept (cpu_conv.c), in the CPU's book of choices
 * (engine/tune.h: kept per machine, so that every run of a seed takes the
 * same algorithms and gets the same bits, whatever its thread count). */
#define _GNU_SOURCE
#include "cpu_tune.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"
#include "cpu_dnnl.h"
#include "direct.h"

/* Bump when an algorithm's kernels change enough to redo the choices
 * (2: oneDNN's two joined the candidates; 3: Winograd forms dW too, and F(4x4, 3x3) joins). */
#define RL_CPU_CONV_CACHE_VERSION 3

/* ---- the processor ---------------------------------------------------------- */

static rl_cpu_info_t info;
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

/* Bytes of a sysfs cache size ("32K", "1024K", "32M"), 0 if unreadable. */
static int64_t sysfs_size(const char *dir, const char *file) {
  char path[256], buf[64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int64_t v = -1;
  if (fgets(buf, sizeof buf, f)) {
    char *end;
    v = strtoll(buf, &end, 10);
    if (*end == 'K') v <<= 10;
    else if (*end == 'M') v <<= 20;
  }
  fclose(f);
  return v;
}

static void read_caches(rl_cpu_info_t *c) {
  /* the kernel's view of cpu0 */
  for (int i = 0; i < 8; i++) {
    char dir[128], type[32] = "";
    snprintf(dir, sizeof dir, "/sys/devices/system/cpu/cpu0/cache/index%d", i);
    int64_t level = sysfs_size(dir, "level"), size = sysfs_size(dir, "size");
    if (level < 0) break;
    char path[160];
    snprintf(path, sizeof path, "%s/type", dir);
    FILE *f = fopen(path, "r");
    if (f) {
      if (!fgets(type, sizeof type, f)) type[0] = 0;
      fclose(f);
    }
    if (size <= 0) continue;
    if (level == 1 && strncmp(type, "Data", 4) == 0) c->l1d = size;
    if (level == 2) c->l2 = size;
    if (level == 3) c->l3 = size;
  }
  c->cache_source = "sysfs";
  if (c->l2 <= 0) { /* glibc's (cpuid) */
    c->l1d = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    c->l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    c->l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    c->cache_source = "sysconf";
  }
  if (c->l2 <= 0) { /* nothing known: a common server core */
    c->l1d = 32 << 10, c->l2 = 1 << 20, c->l3 = 8 << 20;
    c->cache_source = "assumed (neither sysfs nor sysconf knew)";
  }
  if (c->l1d <= 0) c->l1d = 32 << 10;
}

static void detect(void) {
  rl_cpu_info_t *c = &info;
  unsigned a = 0, b = 0, cx = 0, d = 0, top = __get_cpuid_max(0, NULL);
  if (__get_cpuid(0, &a, &b, &cx, &d)) {
    memcpy(c->vendor, &b, 4);
    memcpy(c->vendor + 4, &d, 4);
    memcpy(c->vendor + 8, &cx, 4);
  }
  unsigned ext = __get_cpuid_max(0x80000000, NULL);
  if (ext >= 0x80000004) {
    unsigned r[12];
    for (unsigned k = 0; k < 3; k++)
      __get_cpuid(0x80000002 + k, &r[4 * k], &r[4 * k + 1], &r[4 * k + 2], &r[4 * k + 3]);
    char raw[49];
    memcpy(raw, r, 48);
    raw[48] = 0;
    const char *s = raw;
    while (*s == ' ') s++;
    snprintf(c->model, sizeof c->model, "%s", s);
    for (size_t n = strlen(c->model); n && c->model[n - 1] == ' '; n--) c->model[n - 1] = 0;
  }
  __builtin_cpu_init();
  c->avx2 = __builtin_cpu_supports("avx2");
  c->fma = __builtin_cpu_supports("fma");
  c->avx512f = __builtin_cpu_supports("avx512f");
  c->avx512bw = __builtin_cpu_supports("avx512bw");
  c->avx512vl = __builtin_cpu_supports("avx512vl");
  /* bf16 and AMX: cpuid leaf 7, and the OS's consent in XCR0 */
  unsigned long long xcr0 = 0;
  if (__get_cpuid(1, &a, &b, &cx, &d) && (cx & (1u << 27))) { /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = ((unsigned long long)hi << 32) | lo;
  }
  if (top >= 7) {
    __cpuid_count(7, 1, a, b, cx, d);
    c->avx512_bf16 = c->avx512f && (a & (1u << 5));
    __cpuid_count(7, 0, a, b, cx, d);
    bool tiles = (xcr0 & (3ull << 17)) == (3ull << 17); /* XTILECFG, XTILEDATA */
    c->amx_tile = tiles && (d & (1u << 24));
    c->amx_bf16 = c->amx_tile && (d & (1u << 22));
    c->amx_int8 = c->amx_tile && (d & (1u << 25));
  }
  read_caches(c);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  c->cpus = n > 0 ? (int)n : 1;
#if defined(__AVX512F__)
  c->built_for = "AVX-512";
#elif defined(__AVX2__)
  c->built_for = "AVX2";
#else
  c->built_for = "SSE2";
#endif
  c->built_lanes = CONV_VL;
}

const rl_cpu_info_t *rl_cpu_info(void) {
  pthread_once(&info_once, detect);
  return &info;
}

int rl_cpu_check_build(void) {
  const rl_cpu_info_t *c = rl_cpu_info();
  const char *lacks = NULL;
#if defined(__AVX512F__)
  if (!c->avx512f) lacks = "AVX-512F";
#endif
#if defined(__AVX2__)
  if (!lacks && !c->avx2) lacks = "AVX2";
#endif
#if defined(__FMA__)
  if (!lacks && !c->fma) lacks = "FMA";
#endif
  if (lacks)
    return rl_err("rllua was compiled (-march=native) on a processor with %s, which this one (%s) "
                  "lacks: rebuild it here (make clean && make), or build with ARCH=-march=x86-64-v3",
                  lacks, c->model[0] ? c->model : c->vendor);
  return 0;
}

/* A share of one core's L2, within sane bounds. */
static int64_t l2_share(int64_t num, int64_t den) {
  int64_t b = rl_cpu_info()->l2 * num / den;
  if (b < (int64_t)128 << 10) b = (int64_t)128 << 10;
  if (b > (int64_t)8 << 20) b = (int64_t)8 << 20;
  return b;
}

int64_t rl_cpu_conv_chunk_bytes(void) { return l2_share(1, 2); }
int64_t rl_cpu_wino_chunk_bytes(void) { return l2_share(3, 4); }

/* ---- the convolution algorithm of each shape --------------------------------- */

static const char *const alg_names[RL_CPU_ALG_N] = {
    "auto", "direct", "winograd", "im2col", "onednn", "onednn-wino", "winograd4"};

/* The processor's identity, and the candidates this build has: what makes
 * its timings its own (a build without oneDNN, or with another oneDNN,
 * chooses among other algorithms). */
static void cpu_identity(char *id, size_t n) {
  const rl_cpu_info_t *c = rl_cpu_info();
  const char *dnnl = rl_cpu_dnnl_version();
  snprintf(id, n, "%s|%s|%lld|%lld|%d%d%d|%d|v%d|onednn %s", c->vendor, c->model,
           (long long)c->l1d, (long long)c->l2, c->avx2, c->fma, c->avx512f, c->built_lanes,
           RL_CPU_CONV_CACHE_VERSION, dnnl ? dnnl : "none");
}

_Static_assert(RL_CPU_ALG_N <= RL_TUNE_MAX_ALGS, "the book holds every algorithm");

static rl_tune_book book = {.prefix = "cpu-conv",
                            .env = "RL_CPU_CONV",
                            .off_env = "RL_CPU_CONV_CACHE",
                            .names = alg_names,
                            .n = RL_CPU_ALG_N,
                            .identity = cpu_identity,
                            .lock = PTHREAD_MUTEX_INITIALIZER};

rl_tune_book *rl_cpu_conv_book(void) { return &book; }
