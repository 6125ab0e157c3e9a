/* tune.c - a backend's book of measured choices (tune.h): the algorithm
 * names, the one forced, the choices of this process, and the machine's
 * file of them. */
#define _GNU_SOURCE
#include "tune.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd.h"
#include "backend.h"

int rl_tune_alg(const rl_tune_book *b, const char *name) {
  for (int a = 0; a < b->n; a++)
    if (strcmp(name, b->names[a]) == 0) return a;
  return -1;
}

const char *rl_tune_name(const rl_tune_book *b, int alg) {
  return alg >= 0 && alg < b->n ? b->names[alg] : "?";
}

/* "direct, winograd, ... or auto": the names an error offers. */
static const char *name_list(const rl_tune_book *b, char *list, size_t n) {
  list[0] = 0;
  for (int a = 1; a < b->n; a++)
    snprintf(list + strlen(list), n - strlen(list), "%s, ", b->names[a]);
  size_t len = strlen(list);
  if (len >= 2) list[len - 2] = 0;
  snprintf(list + strlen(list), n - strlen(list), " or %s", b->names[0]);
  return list;
}

/* Every convolution asks: after the variable's first reading, no lock. */
int rl_tune_forced(rl_tune_book *b) {
  if (!__atomic_load_n(&b->env_read, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&b->lock);
    if (!b->env_read) {
      const char *env = getenv(b->env);
      b->env_alg = !env || !*env ? 0 : rl_tune_alg(b, env);
      if (env) snprintf(b->env_value, sizeof b->env_value, "%s", env);
      __atomic_store_n(&b->env_read, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&b->lock);
  }
  int forced = __atomic_load_n(&b->forced, __ATOMIC_RELAXED), env_alg = b->env_alg;
  if (forced) return forced - 1;
  if (env_alg < 0) {
    char list[256];
    return rl_err("%s must be %s, not '%s'", b->env, name_list(b, list, sizeof list), b->env_value);
  }
  return env_alg;
}

int rl_tune_force(rl_tune_book *b, const char *name) {
  int a = name ? rl_tune_alg(b, name) : -1;
  if (name && a < 0) {
    char list[256];
    return rl_err("conv algorithm must be %s, not '%s'", name_list(b, list, sizeof list), name);
  }
  __atomic_store_n(&b->forced, name ? 1 + a : 0, __ATOMIC_RELAXED);
  return 0;
}

const rl_tune_choice *rl_tune_lookup(rl_tune_book *b, const char *key) {
  const rl_tune_choice *r = NULL;
  pthread_mutex_lock(&b->lock);
  for (int i = 0; i < b->nchoices && !r; i++)
    if (strcmp(b->choices[i].key, key) == 0) r = &b->choices[i];
  pthread_mutex_unlock(&b->lock);
  return r;
}

int rl_tune_choices(rl_tune_book *b, const rl_tune_choice **list) {
  *list = b->choices;
  return b->nchoices;
}

/* ---- the machine's file: one line per shape, "key<TAB>algorithm" ---------------- */

static void make_dirs(char *path) { /* mkdir -p of path's directory */
  for (char *s = path + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    mkdir(path, 0755);
    *s = '/';
  }
}

static void find_path(rl_tune_book *b) {
  const char *off = getenv(b->off_env);
  if (off && (!strcmp(off, "off") || !strcmp(off, "0"))) return;
  const char *dir = getenv("RL_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  char base[400];
  if (dir && *dir) snprintf(base, sizeof base, "%s", dir);
  else if (xdg && *xdg) snprintf(base, sizeof base, "%s/rllua", xdg);
  else if (home && *home) snprintf(base, sizeof base, "%s/.cache/rllua", home);
  else return;
  char id[512];
  b->identity(id, sizeof id);
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *s = id; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  snprintf(b->path, sizeof b->path, "%s/%s-%08x.tsv", base, b->prefix, h);
  make_dirs(b->path);
}

const char *rl_tune_path(rl_tune_book *b) {
  pthread_mutex_lock(&b->lock);
  if (!b->path_known) {
    find_path(b);
    b->path_known = 1;
  }
  pthread_mutex_unlock(&b->lock);
  return b->path;
}

int rl_tune_cached(rl_tune_book *b, const char *key, rl_tune_fits_fn fits, void *ctx) {
  const char *path = rl_tune_path(b);
  if (!*path) return 0;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[256];
  int found = 0;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, kl) != 0 || line[kl] != '\t') continue;
    line[strcspn(line, "\n")] = 0;
    int a = rl_tune_alg(b, line + kl + 1);
    if (a > 0 && fits(a, ctx)) {
      found = a;
      break;
    }
  }
  fclose(f);
  return found;
}

/* Append "key\talg\n" in one write (O_APPEND: lines never interleave). */
static void append(rl_tune_book *b, const char *key, int alg) {
  const char *path = rl_tune_path(b);
  if (!*path) return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return; /* read-only home: the choice stays in this process */
  char line[256];
  int n = snprintf(line, sizeof line, "%s\t%s\n", key, rl_tune_name(b, alg));
  if (n > 0 && n < (int)sizeof line && write(fd, line, (size_t)n) != n) {
    /* a full disk: nothing to do */
  }
  close(fd);
}

int rl_tune_settle(rl_tune_book *b, const char *key, int alg, const char *how, const double *ms,
                   rl_tune_fits_fn fits, void *ctx) {
  if (strcmp(how, "measured") == 0) {
    append(b, key, alg);
    int first = rl_tune_cached(b, key, fits, ctx);
    if (first > 0 && first != alg) alg = first, how = "cached";
  }
  pthread_mutex_lock(&b->lock);
  int i;
  for (i = 0; i < b->nchoices; i++)
    if (strcmp(b->choices[i].key, key) == 0) break;
  if (i == b->nchoices && b->nchoices < RL_TUNE_MAX_CHOICES) b->nchoices++;
  if (i < RL_TUNE_MAX_CHOICES) {
    rl_tune_choice *c = &b->choices[i];
    snprintf(c->key, sizeof c->key, "%s", key);
    c->alg = alg;
    c->how = how;
    for (int a = 0; a < RL_TUNE_MAX_ALGS; a++) c->ms[a] = ms && a < b->n ? ms[a] : 0;
  }
  pthread_mutex_unlock(&b->lock);
  return alg;
}

int rl_tune_choose(rl_tune_book *b, const char *key, int rule, bool timed, rl_tune_fits_fn fits,
                   rl_tune_time_fn time, void *ctx) {
  int forced = rl_tune_forced(b);
  if (forced < 0) return -1;
  const rl_tune_choice *c = rl_tune_lookup(b, key);
  if (forced) {
    int alg = fits(forced, ctx) ? forced : rule;
    if (!c || c->alg != alg || strcmp(c->how, "forced") != 0)
      rl_tune_settle(b, key, alg, "forced", NULL, fits, ctx);
    return alg;
  }
  if (c && strcmp(c->how, "forced") != 0 && fits(c->alg, ctx)) return c->alg;
  if (!timed) return rl_tune_settle(b, key, rule, "rule", NULL, fits, ctx);
  int cached = rl_tune_cached(b, key, fits, ctx);
  if (cached) return rl_tune_settle(b, key, cached, "cached", NULL, fits, ctx);
  int nfit = 0;
  for (int a = 1; a < b->n; a++) nfit += fits(a, ctx);
  if (nfit < 2) return rl_tune_settle(b, key, rule, "rule", NULL, fits, ctx);
  double ms[RL_TUNE_MAX_ALGS] = {0};
  rl_counters before = rl_counter;
  int rc = time(ms, fits, ctx);
  rl_counter = before;
  if (rc) return -1;
  int best = rule, ran = 0;
  for (int a = 1; a < b->n; a++) {
    if (!fits(a, ctx) || ms[a] <= 0) continue;
    ran++;
    if (ms[best] <= 0 || ms[a] < ms[best]) best = a;
  }
  if (!ran) return rl_err("%s: no algorithm could run", key);
  return rl_tune_settle(b, key, best, ran == nfit ? "measured" : "rule", ms, fits, ctx);
}

void rl_tune_conv_key(char *key, size_t n, rl_dtype dt, const char *pass, int64_t N, int64_t C,
                      int64_t H, int64_t W, int64_t O, const int64_t *g) {
  snprintf(key, n, "%s %s n%lld c%lld %lldx%lld o%lld k%lldx%lld s%lldx%lld p%lldx%lld d%lldx%lld",
           rl_dtype_name(dt), pass, (long long)N, (long long)C, (long long)H, (long long)W,
           (long long)O, (long long)g[G_KH], (long long)g[G_KW], (long long)g[G_SH],
           (long long)g[G_SW], (long long)g[G_PH], (long long)g[G_PW], (long long)g[G_DH],
           (long long)g[G_DW]);
}
