/* tune.h - choices a backend makes by measuring, as cuDNN's benchmark mode
 * does: which algorithm each convolution shape takes (engine/tune.c).
 *
 * A backend keeps one book of them: the CPU's (engine/cpu/cpu_tune.c)
 * and CUDA's (kernels/cuda_conv.cu).  Algorithms round differently, so a
 * choice that changed from one process to the next would make two runs of
 * one seed differ in their last bits.  A book therefore keeps its measured
 * choices per machine, in a file under the user's cache directory named
 * after what makes the timings this machine's own (the processor, or the
 * GPU, and the build's candidates): the first choice written for a shape
 * is the one every later process takes.  Two processes that measure one
 * shape at once both append their choice and both then take the file's
 * first.  $RL_CACHE_DIR moves the files; the book's off_env set to "off"
 * (or "0") keeps its choices in the process. */
#ifndef RL_TUNE_H
#define RL_TUNE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

#define RL_TUNE_MAX_ALGS 8
#define RL_TUNE_MAX_CHOICES 1024

/* One shape's choice: key (what the shape is), the algorithm, and how it
 * was made: "measured" here (ms: the candidates' best times, 0 where not a
 * candidate), "cached" (read from the machine's file), "forced", or "rule"
 * (no measuring: work too small to time, one candidate, or a dtype that is
 * not measured). */
typedef struct rl_tune_choice {
  char key[128];
  int alg;
  const char *how;
  double ms[RL_TUNE_MAX_ALGS];
} rl_tune_choice;

/* Whether algorithm alg can run the shape the caller has at hand. */
typedef bool (*rl_tune_fits_fn)(int alg, void *ctx);

typedef struct rl_tune_book {
  /* set by the backend, in this order */
  const char *prefix;        /* the file: <prefix>-<hash of identity>.tsv */
  const char *env;           /* the variable that forces an algorithm (RL_CPU_CONV) */
  const char *off_env;       /* the variable that turns the file off (RL_CPU_CONV_CACHE) */
  const char *const *names;  /* names[0] is "auto"; then the algorithms */
  int n;                     /* entries of names, at most RL_TUNE_MAX_ALGS */
  void (*identity)(char *buf, size_t n); /* what makes a timing this machine's own */
  pthread_mutex_t lock;      /* PTHREAD_MUTEX_INITIALIZER */
  /* the book's own state: zero at first */
  int forced;                /* 0: env decides; else 1 + the forced algorithm (atomic) */
  int env_read, env_alg;     /* env_read (atomic) set once env_alg holds the variable's */
  char env_value[64];
  int path_known;
  char path[512];
  int nchoices;
  rl_tune_choice choices[RL_TUNE_MAX_CHOICES];
} rl_tune_book;

/* The algorithm called name, or -1. */
int rl_tune_alg(const rl_tune_book *b, const char *name);
/* The name of algorithm alg ("?" when out of range). */
const char *rl_tune_name(const rl_tune_book *b, int alg);

/* The algorithm forced by the book's variable or by rl_tune_force, 0 (auto)
 * when none; -1 with the error set when the variable names no algorithm. */
int rl_tune_forced(rl_tune_book *b);
/* Force the algorithm called name ("auto" measures again), or go back to
 * the variable when name is NULL.  -1 with the error set on a bad name. */
int rl_tune_force(rl_tune_book *b, const char *name);

/* The choice made for key in this process, or NULL. */
const rl_tune_choice *rl_tune_lookup(rl_tune_book *b, const char *key);
/* The first algorithm the machine's file holds for key (another process
 * measured it) that can run here (fits), or 0. */
int rl_tune_cached(rl_tune_book *b, const char *key, rl_tune_fits_fn fits, void *ctx);
/* Record this process's choice for key.  A measured choice is published
 * to the machine's file, and the file's first entry for key that can run
 * here is the one every process uses: the returned algorithm, the one to
 * run. */
int rl_tune_settle(rl_tune_book *b, const char *key, int alg, const char *how, const double *ms,
                   rl_tune_fits_fn fits, void *ctx);
/* The choices made so far, in order; their number. */
int rl_tune_choices(rl_tune_book *b, const rl_tune_choice **list);
/* The machine's file ("" when the book keeps its choices in the process). */
const char *rl_tune_path(rl_tune_book *b);

/* How a backend times its candidates for rl_tune_choose: ms[a] for each
 * algorithm a that fits, 0 for one that could not run (out of memory,
 * say); 0 when done, -1 with the error set when the timing failed (or no
 * candidate could run). */
typedef int (*rl_tune_time_fn)(double *ms, rl_tune_fits_fn fits, void *ctx);

/* The algorithm a pass of shape key takes: the forced one where it fits
 * (else rule); this process's earlier choice; rule when timed is false;
 * the machine's (the file's first entry that fits); rule when fewer than
 * two fit; else the fastest that time measured, published to the file
 * (when a candidate could not run, the fastest of the others, kept in this
 * process as "rule").  Ties go to rule.  The timed runs leave rl.counters
 * as they found them: the pass itself is counted once, by its caller, on
 * the first use of a shape as on later ones.  -1 with the error set when
 * the book's variable names no algorithm or time fails. */
int rl_tune_choose(rl_tune_book *b, const char *key, int rule, bool timed, rl_tune_fits_fn fits,
                   rl_tune_time_fn time, void *ctx);

/* A convolution pass's key: "f32 fwd n4 c16 20x20 o16 k3x3 s1x1 p1x1 d1x1"
 * (pass: fwd, bwd-dx, bwd-dw-db, ...; x [N, C, H, W], O output channels,
 * g the geometry of ops.h). */
void rl_tune_conv_key(char *key, size_t n, rl_dtype dt, const char *pass, int64_t N, int64_t C,
                      int64_t H, int64_t W, int64_t O, const int64_t *g);

#endif
