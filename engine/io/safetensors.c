/* safetensors.c - safetensors checkpoints: the writer, header validation
 * and the reader (see safetensors.h).
 *
 * The header is parsed by the strict JSON reader of json.h: names and
 * metadata are C strings here, so "\u0000" is refused, and every integer
 * must fit in int64.  Error offsets are byte offsets into the file (the
 * header starts at byte 8).  The writer spells its header itself: it is a
 * fixed layout of names, dtypes and integers (sb_* below). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "ops.h"
#include "safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c writes tensor bytes as they are in memory: a little-endian host is assumed"
#endif

/* ---- dtypes as the file spells them -------------------------------------- */

typedef enum { ST_F32, ST_F64, ST_I64, ST_U8, ST_BOOL, ST_F16, ST_BF16, ST_I32, ST_N } st_dtype;

static const struct {
  const char *name;
  size_t size;
  rl_dtype to; /* what the reader makes of it */
} st_types[ST_N] = {
    {"F32", 4, RL_F32},  {"F64", 8, RL_F64},  {"I64", 8, RL_I64}, {"U8", 1, RL_U8},
    {"BOOL", 1, RL_U8},  {"F16", 2, RL_F16},  {"BF16", 2, RL_BF16}, {"I32", 4, RL_I64},
};

/* The file dtype the writer uses for an engine dtype; ST_N when none. */
static st_dtype st_of(rl_dtype dt) {
  switch (dt) {
  case RL_F32: return ST_F32;
  case RL_F64: return ST_F64;
  case RL_I64: return ST_I64;
  case RL_U8: return ST_U8;
  case RL_BF16: return ST_BF16;
  case RL_F16: return ST_F16;
  default: return ST_N;
  }
}

static int st_parse(const char *s, st_dtype *out) {
  for (int i = 0; i < ST_N; i++)
    if (strcmp(s, st_types[i].name) == 0) {
      *out = (st_dtype)i;
      return 0;
    }
  return -1;
}

/* ---- a growable byte buffer (the writer's header) ------------------------ */

typedef struct {
  char *p;
  size_t len, cap;
  bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_int(sbuf *b, int64_t v) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%" PRId64, v);
  sb_str(b, tmp);
}

/* s as a JSON string: quotes, backslashes and control characters escaped;
 * other bytes (UTF-8, checked by the caller) as they are. */
static void sb_json_str(sbuf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  sb_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char e[6] = {'\\', (char)c, 0, 0, 0, 0};
    if (c == '"' || c == '\\') sb_put(b, e, 2);
    else if (c == '\n') sb_put(b, "\\n", 2);
    else if (c == '\t') sb_put(b, "\\t", 2);
    else if (c == '\r') sb_put(b, "\\r", 2);
    else if (c < 0x20) {
      memcpy(e, "\\u00", 4);
      e[4] = hex[c >> 4];
      e[5] = hex[c & 15];
      sb_put(b, e, 6);
    } else sb_put(b, s, 1);
  }
  sb_put(b, "\"", 1);
}

/* ---- the writer ----------------------------------------------------------- */

static int check_string(const char *path, const char *what, const char *s) {
  if (!s) return rl_err("save: '%s': %s is NULL", path, what);
  if (!rl_utf8_valid(s, strlen(s))) return rl_err("save: '%s': %s \"%.200s\" is not valid UTF-8", path, what, s);
  return 0;
}

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuse a repeated string among n; `what` names them in the message. */
static int check_unique(const char *path, const char *what, int n, const char *const *s) {
  if (n < 2) return 0;
  const char **c = malloc((size_t)n * sizeof *c);
  if (!c) return rl_err("save: '%s': out of memory", path);
  memcpy(c, s, (size_t)n * sizeof *c);
  qsort(c, (size_t)n, sizeof *c, cmp_cstr);
  int rc = 0;
  for (int i = 1; i < n && !rc; i++)
    if (strcmp(c[i - 1], c[i]) == 0)
      rc = rl_err("save: '%s': duplicate %s \"%.200s\"", path, what, c[i]);
  free(c);
  return rc;
}

static int check_save_args(const char *path, int n, const char *const *names,
                           rl_tensor *const *ts, int nmeta, const char *const *mk,
                           const char *const *mv) {
  if (n < 0 || nmeta < 0 || (n && (!names || !ts)) || (nmeta && (!mk || !mv)))
    return rl_err("save: '%s': bad arguments", path);
  for (int i = 0; i < n; i++) {
    if (check_string(path, "tensor name", names[i])) return -1;
    if (strcmp(names[i], "__metadata__") == 0)
      return rl_err("save: '%s': \"__metadata__\" is reserved and cannot name a tensor", path);
    if (!ts[i]) return rl_err("save: '%s': tensor \"%.200s\" is NULL", path, names[i]);
    if (st_of(ts[i]->dtype) == ST_N)
      return rl_err("save: '%s': tensor \"%.200s\": dtype %s has no safetensors name", path,
                    names[i], rl_dtype_name(ts[i]->dtype));
  }
  for (int i = 0; i < nmeta; i++)
    if (check_string(path, "metadata key", mk[i]) ||
        check_string(path, "metadata value", mv[i]))
      return -1;
  if (check_unique(path, "tensor name", n, names)) return -1;
  return check_unique(path, "metadata key", nmeta, mk);
}

/* The header JSON, padded with spaces to a multiple of 8 bytes. */
static int build_header(sbuf *b, const char *path, int n, const char *const *names,
                        rl_tensor *const *ts, int nmeta, const char *const *mk,
                        const char *const *mv) {
  sb_put(b, "{", 1);
  if (nmeta) {
    sb_str(b, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) sb_put(b, ",", 1);
      sb_json_str(b, mk[i]);
      sb_put(b, ":", 1);
      sb_json_str(b, mv[i]);
    }
    sb_put(b, "}", 1);
  }
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    const rl_tensor *t = ts[i];
    if (i || nmeta) sb_put(b, ",", 1);
    sb_json_str(b, names[i]);
    sb_str(b, ":{\"dtype\":\"");
    sb_str(b, st_types[st_of(t->dtype)].name);
    sb_str(b, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      if (d) sb_put(b, ",", 1);
      sb_int(b, t->size[d]);
    }
    sb_str(b, "],\"data_offsets\":[");
    sb_int(b, off);
    sb_put(b, ",", 1);
    off += (int64_t)rl_nbytes(t);
    sb_int(b, off);
    sb_str(b, "]}");
  }
  sb_put(b, "}", 1);
  while (b->len % 8) sb_put(b, " ", 1);
  if (b->oom) return rl_err("save: '%s': out of memory building the header", path);
  return 0;
}

/* fwrite that reports a short write with errno set. */
static int write_all(FILE *f, const void *p, size_t n) {
  if (n == 0) return 0;
  errno = 0;
  if (fwrite(p, 1, n, f) == n) return 0;
  if (!errno) errno = EIO;
  return -1;
}

static int write_u64le(FILE *f, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  return write_all(f, b, 8);
}

/* One tensor's bytes: straight from memory when it is a contiguous CPU
 * tensor, else through a host copy.  *io tells an I/O failure (errno set)
 * from an engine one (message set). */
static int write_tensor(FILE *f, const rl_tensor *t, bool *io) {
  size_t nb = rl_nbytes(t);
  *io = false;
  if (nb == 0) return 0;
  if (rl_dev(t)->type == RL_CPU && rl_is_contiguous(t)) {
    *io = true;
    return write_all(f, rl_data(t), nb);
  }
  void *host = malloc(nb);
  if (!host) return rl_err("out of memory (%zu bytes for a host copy)", nb);
  int rc = rl_to_host(t, host);
  if (!rc) {
    *io = true;
    rc = write_all(f, host, nb);
  }
  free(host);
  return rc;
}

/* Best effort: make the rename itself durable. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

/* Everything into the open temporary f; on failure *what names the step. */
static int write_body(FILE *f, const sbuf *h, int n, rl_tensor *const *ts, const char **what,
                      int *bad) {
  *what = "cannot write the header";
  if (write_u64le(f, h->len) || write_all(f, h->p, h->len)) return -1;
  for (int i = 0; i < n; i++) {
    bool io;
    *bad = i;
    if (write_tensor(f, ts[i], &io)) {
      *what = io ? "cannot write tensor" : NULL;
      return -1;
    }
  }
  *bad = -1;
  *what = "cannot flush";
  if (fflush(f)) return -1;
  *what = "cannot fsync";
  return fsync(fileno(f));
}

static int save_fail(const char *path, const char *tmp, FILE *f, const char *what,
                     const char *tname, int err) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s", rl_errmsg());
  if (f) fclose(f);
  unlink(tmp);
  if (!what)
    return rl_err("save: '%s': tensor \"%.200s\": %s", path, tname ? tname : "?", msg);
  if (tname)
    return rl_err("save: '%s': %s \"%.200s\": %s", path, what, tname, strerror(err));
  return rl_err("save: '%s': %s: %s", path, what, strerror(err));
}

/* Create the temporary afresh: O_EXCL never follows a planted symlink; a
 * stale file of that name (a crashed process with our pid) is replaced. */
static int open_tmp(const char *tmp) {
  int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  int fd = open(tmp, flags, 0666);
  if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) fd = open(tmp, flags, 0666);
  return fd;
}

static int write_atomic(const char *path, const sbuf *h, int n, const char *const *names,
                        rl_tensor *const *ts) {
  size_t len = strlen(path) + 32;
  char *tmp = malloc(len);
  if (!tmp) return rl_err("save: '%s': out of memory", path);
  snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
  int fd = open_tmp(tmp), bad = -1, rc = 0;
  FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
  const char *what = "cannot create the temporary file";
  if (!f) {
    int e = errno;
    if (fd >= 0) close(fd);
    rc = fd < 0 ? rl_err("save: '%s': cannot create the temporary file '%s': %s", path, tmp,
                         strerror(e))
                : save_fail(path, tmp, NULL, what, NULL, e);
  } else if (write_body(f, h, n, ts, &what, &bad)) {
    rc = save_fail(path, tmp, f, what, bad >= 0 ? names[bad] : NULL, errno);
  } else if (fclose(f)) {
    rc = save_fail(path, tmp, NULL, "cannot close", NULL, errno);
  } else if (rename(tmp, path)) {
    rc = save_fail(path, tmp, NULL, "cannot rename the temporary file over it", NULL, errno);
  } else {
    sync_dir(path);
  }
  free(tmp);
  return rc;
}

int rl_safetensors_save(const char *path, int n, const char *const *names,
                        rl_tensor *const *ts, int nmeta, const char *const *meta_keys,
                        const char *const *meta_vals) {
  if (!path) return rl_err("save: path is NULL");
  if (check_save_args(path, n, names, ts, nmeta, meta_keys, meta_vals)) return -1;
  sbuf h = {0};
  int rc = build_header(&h, path, n, names, ts, nmeta, meta_keys, meta_vals);
  if (!rc) rc = write_atomic(path, &h, n, names, ts);
  free(h.p);
  return rc;
}

/* ---- header validation ---------------------------------------------------- */

typedef struct {
  const char *name;
  st_dtype src;
  int ndim;
  int64_t size[RL_MAX_DIMS];
  uint64_t begin, end;
  uint32_t at;
} st_entry;

typedef struct {
  const char *file;
  uint64_t data_start, data_len; /* file offset and length of the data region */
  char *text; /* the header, decoded in place by the parser */
  rl_json_doc doc;
  st_entry *e;
  int n;
  const rl_json_node *meta;
} st_header;

#define ENTRY_ERR(h, e, fmt, ...)                                                          \
  rl_err("load: '%s': tensor \"%.200s\" (at byte %" PRIu32 "): " fmt, (h)->file, (e)->name, \
         (e)->at, __VA_ARGS__)

static int entry_dtype(st_header *h, st_entry *e, const rl_json_node *o) {
  const rl_json_node *d = rl_json_member(&h->doc, o, "dtype");
  if (!d) return ENTRY_ERR(h, e, "%s", "missing \"dtype\"");
  if (d->type != RL_JSON_STR) return ENTRY_ERR(h, e, "%s", "\"dtype\" is not a string");
  if (st_parse(d->v.s, &e->src))
    return ENTRY_ERR(h, e, "unknown dtype \"%.40s\" (supported: F32 F64 I64 U8 BOOL F16 BF16 I32)",
                     d->v.s);
  return 0;
}

static int entry_shape(st_header *h, st_entry *e, const rl_json_node *o) {
  const rl_json_node *s = rl_json_member(&h->doc, o, "shape");
  if (!s) return ENTRY_ERR(h, e, "%s", "missing \"shape\"");
  if (s->type != RL_JSON_ARR) return ENTRY_ERR(h, e, "%s", "\"shape\" is not an array");
  if (s->n > RL_MAX_DIMS)
    return ENTRY_ERR(h, e, "shape has %" PRIu32 " dims (at most %d)", s->n, RL_MAX_DIMS);
  e->ndim = (int)s->n;
  uint32_t c = s->child;
  for (int d = 0; d < e->ndim; d++, c = h->doc.nodes[c].next) {
    const rl_json_node *v = &h->doc.nodes[c];
    if (v->type != RL_JSON_INT) return ENTRY_ERR(h, e, "shape[%d] is not an integer", d);
    if (v->v.i < 0) return ENTRY_ERR(h, e, "shape[%d] is negative (%" PRId64 ")", d, v->v.i);
    e->size[d] = v->v.i;
  }
  return 0;
}

static int entry_offsets(st_header *h, st_entry *e, const rl_json_node *o) {
  const rl_json_node *a = rl_json_member(&h->doc, o, "data_offsets");
  if (!a) return ENTRY_ERR(h, e, "%s", "missing \"data_offsets\"");
  const rl_json_node *b = a->type == RL_JSON_ARR && a->n == 2 ? &h->doc.nodes[a->child] : NULL;
  const rl_json_node *z = b ? &h->doc.nodes[b->next] : NULL;
  if (!b || b->type != RL_JSON_INT || z->type != RL_JSON_INT || b->v.i < 0 || z->v.i < 0)
    return ENTRY_ERR(h, e, "%s", "\"data_offsets\" must be two non-negative integers");
  e->begin = (uint64_t)b->v.i;
  e->end = (uint64_t)z->v.i;
  if (e->begin > e->end)
    return ENTRY_ERR(h, e, "data_offsets begin %" PRIu64 " > end %" PRIu64, e->begin, e->end);
  if (e->end > h->data_len)
    return ENTRY_ERR(h, e, "data_offsets end %" PRIu64 " is beyond the data region (%" PRIu64
                     " bytes)", e->end, h->data_len);
  return 0;
}

/* The byte count the shape needs, or -1 when it overflows. */
static int64_t shape_bytes(const st_entry *e) {
  int64_t numel = 1;
  for (int d = 0; d < e->ndim; d++) {
    if (e->size[d] && numel > INT64_MAX / e->size[d]) return -1;
    numel *= e->size[d];
  }
  int64_t el = (int64_t)st_types[e->src].size;
  return numel > INT64_MAX / el ? -1 : numel * el;
}

static int check_entry(st_header *h, st_entry *e, const rl_json_node *o) {
  if (o->type != RL_JSON_OBJ) return ENTRY_ERR(h, e, "%s", "the entry is not a JSON object");
  if (entry_dtype(h, e, o) || entry_shape(h, e, o) || entry_offsets(h, e, o)) return -1;
  int64_t need = shape_bytes(e);
  if (need < 0) return ENTRY_ERR(h, e, "%s", "shape is too large");
  if (rl_check_sizes("shape", e->ndim, e->size)) { /* absurd dims, even of 0 bytes */
    char why[256];
    snprintf(why, sizeof why, "%s", rl_errmsg()); /* ENTRY_ERR rewrites the buffer */
    return ENTRY_ERR(h, e, "%s", why);
  }
  if ((uint64_t)need != e->end - e->begin)
    return ENTRY_ERR(h, e, "data_offsets span %" PRIu64 " bytes but shape %s of %s needs %" PRId64,
                     e->end - e->begin, rl_sizes_str(e->ndim, e->size), st_types[e->src].name,
                     need);
  return 0;
}

static int check_metadata(st_header *h, const rl_json_node *m) {
  if (m->type != RL_JSON_OBJ)
    return rl_err("load: '%s': \"__metadata__\" (at byte %" PRIu32 ") is not an object", h->file,
                  m->at);
  uint32_t c = m->child;
  for (uint32_t i = 0; i < m->n; i++, c = h->doc.nodes[c].next)
    if (h->doc.nodes[c].type != RL_JSON_STR)
      return rl_err("load: '%s': \"__metadata__\" value for \"%.200s\" (at byte %" PRIu32
                    ") is not a string",
                    h->file, h->doc.nodes[c].key, h->doc.nodes[c].at);
  h->meta = m;
  return 0;
}

static int by_begin(const void *a, const void *b) {
  const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

/* No two non-empty byte ranges may share a byte. */
static int check_overlaps(st_header *h) {
  const st_entry **s = malloc(((size_t)h->n + 1) * sizeof *s);
  if (!s) return rl_err("load: '%s': out of memory", h->file);
  int k = 0, rc = 0;
  for (int i = 0; i < h->n; i++)
    if (h->e[i].end > h->e[i].begin) s[k++] = &h->e[i];
  qsort(s, (size_t)k, sizeof *s, by_begin);
  for (int i = 1; i < k && !rc; i++)
    if (s[i]->begin < s[i - 1]->end)
      rc = rl_err("load: '%s': tensors \"%.200s\" [%" PRIu64 ", %" PRIu64 ") and \"%.200s\" [%" PRIu64
                  ", %" PRIu64 ") overlap in the data region",
                  h->file, s[i - 1]->name, s[i - 1]->begin, s[i - 1]->end, s[i]->name,
                  s[i]->begin, s[i]->end);
  free(s);
  return rc;
}

/* Validate the parsed header and fill h->e (header order) and h->meta. */
static int check_header(st_header *h) {
  const rl_json_node *root = &h->doc.nodes[0];
  h->e = calloc((size_t)root->n + 1, sizeof *h->e);
  if (!h->e) return rl_err("load: '%s': out of memory", h->file);
  uint32_t c = root->child;
  for (uint32_t i = 0; i < root->n; i++, c = h->doc.nodes[c].next) {
    const rl_json_node *v = &h->doc.nodes[c];
    if (strcmp(v->key, "__metadata__") == 0) {
      if (check_metadata(h, v)) return -1;
      continue;
    }
    st_entry *e = &h->e[h->n];
    e->name = v->key;
    e->at = v->at;
    if (check_entry(h, e, v)) return -1;
    h->n++;
  }
  return check_overlaps(h);
}

/* ---- the reader ----------------------------------------------------------- */

/* src (count values of file dtype st) into dst of the engine dtype. */
static void convert(st_dtype st, const unsigned char *src, void *dst, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    if (st == ST_BOOL) ((uint8_t *)dst)[i] = src[i] != 0;
    else { /* I32 (the others are read as they are) */
      int32_t v;
      memcpy(&v, src + 4 * i, 4);
      ((int64_t *)dst)[i] = v;
    }
  }
}

static int read_at(FILE *f, uint64_t off, void *p, size_t n) {
  errno = 0;
  if (fseeko(f, (off_t)off, SEEK_SET)) return -1;
  if (fread(p, 1, n, f) == n) return 0;
  if (!ferror(f)) errno = 0; /* end of file */
  return -1;
}

/* err: errno of the failed read_at, 0 for the end of the file. */
static int read_fail(const char *file, const char *what, uint64_t off, int err) {
  return rl_err("load: '%s': short read of %s at byte %" PRIu64 " (%s)", file, what, off,
                err ? strerror(err) : "unexpected end of file");
}

static rl_tensor *read_tensor(FILE *f, const st_header *h, const st_entry *e) {
  rl_tensor *t = rl_empty(e->ndim, e->size, st_types[e->src].to, rl_cpu());
  if (!t) return NULL;
  size_t nb = (size_t)(e->end - e->begin);
  if (nb == 0) return t;
  bool same = st_types[e->src].size == rl_dtype_size(t->dtype) && e->src != ST_BOOL;
  void *buf = same ? rl_data(t) : malloc(nb);
  int rc = buf ? read_at(f, h->data_start + e->begin, buf, nb) : -2;
  if (rc == -1) {
    int err = errno;
    char what[256];
    snprintf(what, sizeof what, "tensor \"%.200s\"", e->name);
    read_fail(h->file, what, h->data_start + e->begin, err);
  } else if (rc == -2) {
    rl_err("load: '%s': out of memory reading tensor \"%.200s\"", h->file, e->name);
  } else if (!same) {
    convert(e->src, buf, rl_data(t), rl_numel(t));
  }
  if (!same) free(buf);
  if (rc) rl_release(t), t = NULL;
  return t;
}

/* Open the file and read the length word and the header text. */
static int read_header(FILE *f, st_header *h, char **text, uint64_t *hlen) {
  struct stat sb;
  unsigned char w[8];
  if (fstat(fileno(f), &sb)) return rl_err("load: '%s': cannot stat: %s", h->file, strerror(errno));
  if (!S_ISREG(sb.st_mode)) return rl_err("load: '%s': not a regular file", h->file);
  uint64_t size = (uint64_t)sb.st_size;
  if (size < 8)
    return rl_err("load: '%s': file is %" PRIu64 " bytes, shorter than the 8-byte header length",
                  h->file, size);
  if (read_at(f, 0, w, 8)) return read_fail(h->file, "the header length", 0, errno);
  *hlen = 0;
  for (int i = 7; i >= 0; i--) *hlen = *hlen << 8 | w[i];
  if (*hlen > RL_SAFETENSORS_MAX_HEADER)
    return rl_err("load: '%s' is not a safetensors file (or is damaged): header length %" PRIu64
                  " is absurd (more than %u bytes)", h->file, *hlen, RL_SAFETENSORS_MAX_HEADER);
  if (*hlen > size - 8)
    return rl_err("load: '%s' is not a safetensors file (or is damaged): header length %" PRIu64
                  " is larger than the file allows (%" PRIu64 " bytes after the length)",
                  h->file, *hlen, size - 8);
  h->data_start = 8 + *hlen;
  h->data_len = size - h->data_start;
  *text = malloc(*hlen + 1);
  if (!*text) return rl_err("load: '%s': out of memory for the header", h->file);
  if (read_at(f, 8, *text, *hlen)) return read_fail(h->file, "the header", 8, errno);
  return 0;
}

static void free_strings(int n, char **s) {
  if (!s) return;
  for (int i = 0; i < n; i++) free(s[i]);
  free(s);
}

void rl_safetensors_free(int n, char **names, rl_tensor **ts, int nmeta, char **meta_keys,
                         char **meta_vals) {
  free_strings(n, names);
  if (ts)
    for (int i = 0; i < n; i++)
      if (ts[i]) rl_release(ts[i]);
  free(ts);
  free_strings(nmeta, meta_keys);
  free_strings(nmeta, meta_vals);
}

/* Copy the metadata pairs out of the header. */
static int copy_meta(const st_header *h, int *nmeta, char ***mk, char ***mv) {
  int n = h->meta ? (int)h->meta->n : 0;
  *mk = calloc((size_t)n + 1, sizeof **mk);
  *mv = calloc((size_t)n + 1, sizeof **mv);
  *nmeta = n;
  if (!*mk || !*mv) return rl_err("load: '%s': out of memory", h->file);
  uint32_t c = n ? h->meta->child : 0;
  for (int i = 0; i < n; i++, c = h->doc.nodes[c].next) {
    (*mk)[i] = strdup(h->doc.nodes[c].key);
    (*mv)[i] = strdup(h->doc.nodes[c].v.s);
    if (!(*mk)[i] || !(*mv)[i]) return rl_err("load: '%s': out of memory", h->file);
  }
  return 0;
}

static int read_tensors(FILE *f, const st_header *h, char ***names, rl_tensor ***ts) {
  *names = calloc((size_t)h->n + 1, sizeof **names);
  *ts = calloc((size_t)h->n + 1, sizeof **ts);
  if (!*names || !*ts) return rl_err("load: '%s': out of memory", h->file);
  for (int i = 0; i < h->n; i++) {
    (*names)[i] = strdup(h->e[i].name);
    if (!(*names)[i]) return rl_err("load: '%s': out of memory", h->file);
    if (!((*ts)[i] = read_tensor(f, h, &h->e[i]))) return -1;
  }
  return 0;
}

/* Parse the header text: messages name the file and count bytes from the
 * start of the file; duplicate keys of the root are tensor names. */
static int parse_json(st_header *h, size_t len) {
  size_t n = strlen(h->file) + 16;
  char *prefix = malloc(n);
  if (!prefix) return rl_err("load: '%s': out of memory", h->file);
  snprintf(prefix, n, "load: '%s'", h->file);
  rl_json_opts o = {.prefix = prefix,
                    .syntax = "header is not valid JSON",
                    .text = "header",
                    .root_keys = "tensor name",
                    .base = 8,
                    .want_object = true};
  int rc = rl_json_parse(h->text, len, &o, &h->doc);
  free(prefix);
  return rc;
}

/* tensors false: the whole header is checked, no tensor is read */
static int load_file(FILE *f, st_header *h, bool tensors, int *n, char ***names, rl_tensor ***ts,
                     int *nmeta, char ***mk, char ***mv) {
  uint64_t hlen = 0;
  if (read_header(f, h, &h->text, &hlen)) return -1;
  if (parse_json(h, (size_t)hlen) || check_header(h)) return -1;
  if (!tensors) return copy_meta(h, nmeta, mk, mv);
  *n = h->n;
  return read_tensors(f, h, names, ts) || copy_meta(h, nmeta, mk, mv) ? -1 : 0;
}

/* rl_safetensors_load, or with tensors false rl_safetensors_metadata (whose
 * n, names and ts stay 0 and NULL) */
static int st_load(const char *path, bool tensors, int *n, char ***names, rl_tensor ***ts,
                   int *nmeta, char ***meta_keys, char ***meta_vals) {
  *n = *nmeta = 0;
  *names = *meta_keys = *meta_vals = NULL;
  *ts = NULL;
  if (!path) return rl_err("load: path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return rl_err("load: '%s': cannot open: %s", path, strerror(errno));
  st_header h = {.file = path};
  int rc = load_file(f, &h, tensors, n, names, ts, nmeta, meta_keys, meta_vals);
  fclose(f);
  free(h.text);
  rl_json_free(&h.doc);
  free(h.e);
  if (rc) {
    rl_safetensors_free(*n, *names, *ts, *nmeta, *meta_keys, *meta_vals);
    *n = *nmeta = 0;
    *names = *meta_keys = *meta_vals = NULL;
    *ts = NULL;
  }
  return rc;
}

int rl_safetensors_load(const char *path, int *n, char ***names, rl_tensor ***ts, int *nmeta,
                        char ***meta_keys, char ***meta_vals) {
  return st_load(path, true, n, names, ts, nmeta, meta_keys, meta_vals);
}

int rl_safetensors_metadata(const char *path, int *nmeta, char ***meta_keys, char ***meta_vals) {
  int n;
  char **names;
  rl_tensor **ts;
  return st_load(path, false, &n, &names, &ts, nmeta, meta_keys, meta_vals);
}
