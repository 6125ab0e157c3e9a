/* data_idx.c - IDX files (MNIST, Fashion-MNIST), plain or gzip.
 *
 * An IDX file is a big-endian header - two zero bytes, a type byte (0x08 =
 * unsigned byte), the number of dims, then each dim as a u32 - followed by
 * the values.  zlib's gz* functions read plain and gzip files alike; byte
 * offsets in messages count the decompressed stream. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data.h"

#define IDX_IMAGES 0x00000803u
#define IDX_LABELS 0x00000801u
/* The most bytes an IDX payload may claim (beyond any real data set). */
#define IDX_MAX_BYTES ((uint64_t)1 << 36)
/* Deflate expands at most 1032 times (a 258-byte match per 2 bits); more
 * than that from a gzip file is a lie of its header. */
#define IDX_MAX_INFLATE 1032u

typedef struct {
  gzFile f;
  const char *path;
  uint64_t pos; /* bytes consumed so far */
} idx_in;

static uint32_t be32(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Read exactly n bytes of `what`; a short read is a truncation error. */
static int idx_read(idx_in *in, void *buf, uint64_t n, const char *what) {
  uint8_t *p = buf;
  uint64_t got = 0;
  while (got < n) {
    uint64_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
    int r = gzread(in->f, p + got, (unsigned)want);
    if (r <= 0) break;
    got += (uint64_t)r;
  }
  if (got == n) {
    in->pos += n;
    return 0;
  }
  int zerr;
  const char *why = gzerror(in->f, &zerr);
  if (zerr != Z_OK && zerr != Z_BUF_ERROR)
    return rl_err("idx: '%s': corrupt gzip data near byte %" PRIu64 " of the decompressed stream: %s",
                  in->path, in->pos + got, why);
  return rl_err("idx: '%s': truncated at byte %" PRIu64 ": expected %" PRIu64
                " bytes of %s from byte %" PRIu64 ", found %" PRIu64,
                in->path, in->pos + got, n, what, in->pos, got);
}

/* Check the magic and read the dims (exactly ndim of them). */
static int idx_header(idx_in *in, uint32_t magic, int ndim, uint32_t *dims) {
  uint8_t b[4];
  if (idx_read(in, b, 4, "header")) return -1;
  if (be32(b) != magic)
    return rl_err("idx: '%s': bad magic 0x%08" PRIx32 " at byte 0 (expected 0x%08" PRIx32
                  ", an IDX %s file)",
                  in->path, be32(b), magic, magic == IDX_IMAGES ? "image" : "label");
  for (int i = 0; i < ndim; i++) {
    if (idx_read(in, b, 4, "header")) return -1;
    dims[i] = be32(b);
    if (dims[i] == 0 && i > 0)
      return rl_err("idx: '%s': dim %d is 0 at byte %d", in->path, i + 1, 4 + 4 * i);
  }
  return 0;
}

/* For a plain file, the header's payload must match the file's length; a
 * gzip file must be large enough to inflate to it.  Both before the
 * payload's buffer is allocated: a 60-byte .gz whose header claims 6 GB
 * must not get them. */
static int idx_check_length(idx_in *in, uint64_t payload) {
  if (payload > IDX_MAX_BYTES)
    return rl_err("idx: '%s': header at byte 4 claims %" PRIu64 " bytes of data", in->path,
                  payload);
  int64_t size;
  if (rl_data_file_size("idx", in->path, &size)) return -1;
  if (!gzdirect(in->f)) {
    if (payload > IDX_MAX_INFLATE * (uint64_t)size)
      return rl_err("idx: '%s': header at byte 4 claims %" PRIu64 " bytes of data, more than "
                    "%lld bytes of gzip can inflate to", in->path, payload, (long long)size);
    return 0;
  }
  uint64_t want = in->pos + payload;
  if ((uint64_t)size < want)
    return rl_err("idx: '%s': truncated at byte %lld: the header asks for %" PRIu64
                  " bytes, the file has %lld",
                  in->path, (long long)size, want, (long long)size);
  return 0;
}

/* After the payload there must be nothing left. */
static int idx_check_end(idx_in *in) {
  uint8_t b;
  if (gzread(in->f, &b, 1) == 1)
    return rl_err("idx: '%s': unexpected data after the last value at byte %" PRIu64, in->path,
                  in->pos);
  return 0;
}

static int idx_open(idx_in *in, const char *path) {
  in->path = path;
  in->pos = 0;
  int64_t size;
  if (rl_data_file_size("idx", path, &size)) return -1;
  in->f = gzopen(path, "rb");
  if (!in->f) return rl_err("idx: '%s': cannot open: %s", path, strerror(errno));
  gzbuffer(in->f, 1 << 20);
  return 0;
}

/* Labels into a new i64 tensor [n]. */
static int read_labels(const char *path, rl_tensor **y) {
  idx_in in;
  if (idx_open(&in, path)) return -1;
  uint32_t n;
  int rc = idx_header(&in, IDX_LABELS, 1, &n) || idx_check_length(&in, n) ? -1 : 0;
  int64_t n64 = n;
  uint8_t *raw = NULL;
  if (!rc && !(raw = malloc(n ? n : 1))) rc = rl_err("idx: '%s': out of memory", path);
  if (!rc) rc = idx_read(&in, raw, n, "labels");
  if (!rc) rc = idx_check_end(&in);
  if (!rc && !(*y = rl_empty(1, &n64, RL_I64, rl_cpu()))) rc = -1;
  if (!rc) {
    int64_t *out = rl_data(*y);
    for (uint32_t i = 0; i < n; i++) out[i] = raw[i];
  }
  free(raw);
  gzclose(in.f);
  return rc;
}

/* Images into x [n, 1, rows, cols], n checked against the labels. */
static int read_images(const char *path, int64_t nlabels, rl_tensor **x) {
  idx_in in;
  if (idx_open(&in, path)) return -1;
  uint32_t d[3];
  uint64_t payload = 0;
  int rc = idx_header(&in, IDX_IMAGES, 3, d);
  if (!rc) {
    payload = (uint64_t)d[0] * d[1] * d[2];
    rc = idx_check_length(&in, payload);
  }
  if (!rc && (int64_t)d[0] != nlabels)
    rc = rl_err("idx: '%s': %" PRIu32 " images (byte 4) but the label file has %lld labels",
                path, d[0], (long long)nlabels);
  int64_t size[4] = {d[0], 1, d[1], d[2]};
  if (!rc && !(*x = rl_empty(4, size, RL_U8, rl_cpu()))) rc = -1;
  if (!rc) rc = idx_read(&in, rl_data(*x), payload, "pixels");
  if (!rc) rc = idx_check_end(&in);
  if (rc && *x) {
    rl_release(*x);
    *x = NULL;
  }
  gzclose(in.f);
  return rc;
}

int rl_read_idx(const char *images, const char *labels, rl_tensor **x, rl_tensor **y) {
  *x = *y = NULL;
  if (read_labels(labels, y)) return -1;
  if (read_images(images, (*y)->size[0], x)) return rl_data_drop(x, y);
  return 0;
}
