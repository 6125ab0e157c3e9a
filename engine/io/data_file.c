/* data_file.c - what the dataset readers share: file sizes, whole-file
 * reads, output allocation, directory listings. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"

int rl_data_file_size(const char *op, const char *path, int64_t *size) {
  struct stat st;
  if (stat(path, &st) != 0) return rl_err("%s: '%s': cannot open: %s", op, path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return rl_err("%s: '%s': not a regular file", op, path);
  *size = (int64_t)st.st_size;
  return 0;
}

int rl_data_slurp(const char *op, const char *path, uint8_t **buf, size_t *len) {
  int64_t size;
  if (rl_data_file_size(op, path, &size)) return -1;
  FILE *f = fopen(path, "rb");
  if (!f) return rl_err("%s: '%s': cannot open: %s", op, path, strerror(errno));
  uint8_t *b = malloc(size ? (size_t)size : 1);
  if (!b) {
    fclose(f);
    return rl_err("%s: '%s': out of memory (%lld bytes)", op, path, (long long)size);
  }
  size_t got = fread(b, 1, (size_t)size, f);
  fclose(f);
  if (got != (size_t)size) {
    free(b);
    return rl_err("%s: '%s': read error at byte %zu", op, path, got);
  }
  *buf = b;
  *len = (size_t)size;
  return 0;
}

int rl_data_alloc(int64_t n, int c, int64_t h, int64_t w, rl_tensor **x, rl_tensor **y) {
  int64_t xs[4] = {n, c, h, w};
  *x = rl_empty(4, xs, RL_U8, rl_cpu());
  *y = *x ? rl_empty(1, &n, RL_I64, rl_cpu()) : NULL;
  if (*x && *y) return 0;
  return rl_data_drop(x, y);
}

int rl_data_drop(rl_tensor **x, rl_tensor **y) {
  if (*x) rl_release(*x);
  if (y && *y) rl_release(*y);
  *x = NULL;
  if (y) *y = NULL;
  return -1;
}

/* ---- directory listings --------------------------------------------------- */

static int by_bytes(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void rl_data_free_names(int n, char **names) {
  if (!names) return;
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* Whether entry e of dir is a directory (want_dirs) or a regular file;
 * links (and file systems that do not fill d_type) go through stat. */
static bool entry_is(const char *dir, const struct dirent *e, bool want_dirs) {
  if (e->d_type == DT_DIR || e->d_type == DT_REG) return (e->d_type == DT_DIR) == want_dirs;
  const char *name = e->d_name;
  size_t len = strlen(dir) + strlen(name) + 2;
  char *p = malloc(len);
  if (!p) return false;
  snprintf(p, len, "%s/%s", dir, name);
  struct stat st;
  bool ok = stat(p, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
  free(p);
  return ok;
}

/* Append a copy of s to the growing array *v (n entries, cap *cap). */
static int push_name(char ***v, int n, int *cap, const char *s) {
  if (n == *cap) {
    int nc = *cap ? 2 * *cap : 64;
    char **nv = realloc(*v, sizeof *nv * (size_t)nc);
    if (!nv) return -1;
    *v = nv;
    *cap = nc;
  }
  (*v)[n] = strdup(s);
  return (*v)[n] ? 0 : -1;
}

int rl_listdir(const char *path, bool want_dirs, int *n, char ***names) {
  DIR *d = opendir(path);
  if (!d) return rl_err("listdir: '%s': cannot open: %s", path, strerror(errno));
  char **v = NULL;
  int k = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !entry_is(path, e, want_dirs)) continue;
    if (push_name(&v, k, &cap, e->d_name)) {
      closedir(d);
      rl_data_free_names(k, v);
      return rl_err("listdir: '%s': out of memory", path);
    }
    k++;
  }
  closedir(d);
  if (k) qsort(v, (size_t)k, sizeof *v, by_bytes);
  *n = k;
  *names = v;
  return 0;
}
