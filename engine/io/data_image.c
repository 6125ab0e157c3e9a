/* data_image.c - PNG (libpng) and JPEG (libjpeg-turbo) decoding to RGB planes.
 *
 * Both libraries report fatal errors through a callback that must not
 * return; as their manuals prescribe, the callback longjmps back to the
 * setjmp in the decoding function, which frees what it holds and returns
 * -1.  The jump never leaves that function.  Conversions follow PIL's
 * img.convert('RGB') (what torchvision's image folders use): gray is
 * repeated, alpha dropped, palettes expanded, CMYK multiplied out. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jpeglib.h needs stdio.h first */
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "data.h"

void rl_image_free(rl_image *im) {
  free(im->px);
  im->px = NULL;
}

/* Interleaved rows (h x w x nc, nc = 1, 3 or 4) to 3 planes.  nc = 4 is
 * CMYK, stored inverted (Adobe) when `inverted`. */
static void to_planes(const uint8_t *src, int nc, bool inverted, rl_image *out) {
  int64_t n = out->h * out->w;
  uint8_t *r = out->px, *g = r + n, *b = g + n;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *p = src + i * nc;
    if (nc == 1) {
      r[i] = g[i] = b[i] = p[0];
    } else if (nc == 3) {
      r[i] = p[0], g[i] = p[1], b[i] = p[2];
    } else {
      int k = inverted ? p[3] : 255 - p[3];
      uint8_t ch[3];
      for (int c = 0; c < 3; c++) ch[c] = (uint8_t)(((inverted ? p[c] : 255 - p[c]) * k + 127) / 255);
      r[i] = ch[0], g[i] = ch[1], b[i] = ch[2];
    }
  }
}

/* Allocate out's planes for h x w; false when beyond the limits (the
 * header was checked already: this guards a decoder that disagrees with
 * it) or out of memory. */
static bool alloc_planes(rl_image *out, int64_t h, int64_t w) {
  char why[160];
  out->c = 3;
  out->h = h;
  out->w = w;
  out->px = rl_image_check_size(h, w, "", why, sizeof why) ? NULL : malloc((size_t)(3 * h * w));
  return out->px != NULL;
}

/* ---- PNG ------------------------------------------------------------------ */

typedef struct {
  char *msg;
  size_t len;
} png_ctx;

static void png_on_error(png_structp p, png_const_charp what) {
  png_ctx *e = png_get_error_ptr(p);
  snprintf(e->msg, e->len, "%s", what);
  png_longjmp(p, 1);
}

static void png_on_warning(png_structp p, png_const_charp what) { (void)p, (void)what; }

/* Ask libpng for 8-bit RGB whatever the file holds. */
static void png_want_rgb8(png_structp p) {
  png_set_expand(p);
  png_set_strip_16(p);
  png_set_strip_alpha(p);
  png_set_gray_to_rgb(p);
  png_set_interlace_handling(p);
}

static int decode_png(FILE *f, const char *path, rl_image *out, char *msg, size_t msglen) {
  char why[200] = "out of memory";
  png_ctx ctx = {why, sizeof why};
  png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
  png_infop info = p ? png_create_info_struct(p) : NULL;
  uint8_t *volatile hwc = NULL;
  png_bytep *volatile rows = NULL;
  if (!info || setjmp(png_jmpbuf(p))) {
    snprintf(msg, msglen, "image: '%s': PNG error near byte %ld: %s", path, ftell(f), why);
    png_destroy_read_struct(&p, info ? &info : NULL, NULL);
    free(hwc);
    free(rows);
    rl_image_free(out);
    return -1;
  }
  png_init_io(p, f);
  png_read_info(p, info);
  png_want_rgb8(p);
  png_read_update_info(p, info);
  int64_t w = png_get_image_width(p, info), h = png_get_image_height(p, info);
  if (png_get_rowbytes(p, info) != (size_t)(3 * w)) png_error(p, "unexpected row layout");
  if (!alloc_planes(out, h, w)) png_error(p, "image too large or out of memory");
  hwc = malloc((size_t)(3 * h * w));
  rows = malloc(sizeof *rows * (size_t)h);
  if (!hwc || !rows) png_error(p, "out of memory");
  for (int64_t i = 0; i < h; i++) rows[i] = hwc + i * 3 * w;
  png_read_image(p, rows);
  to_planes(hwc, 3, false, out);
  png_destroy_read_struct(&p, &info, NULL);
  free(hwc);
  free(rows);
  return 0;
}

/* ---- JPEG ----------------------------------------------------------------- */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  char why[JMSG_LENGTH_MAX];
  bool truncated;
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr c) {
  jpeg_ctx *e = (jpeg_ctx *)c->err;
  c->err->format_message(c, e->why);
  longjmp(e->jb, 1);
}

/* Warnings are silent, except that running out of data is an error (libjpeg
 * would pad the image with gray). */
static void jpeg_on_message(j_common_ptr c, int level) {
  jpeg_ctx *e = (jpeg_ctx *)c->err;
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->truncated = true;
}

/* Gray and RGB come out as decoded; CMYK and YCCK as CMYK, converted by us. */
static void jpeg_pick_space(struct jpeg_decompress_struct *d) {
  if (d->jpeg_color_space == JCS_GRAYSCALE) d->out_color_space = JCS_GRAYSCALE;
  else if (d->jpeg_color_space == JCS_CMYK || d->jpeg_color_space == JCS_YCCK)
    d->out_color_space = JCS_CMYK;
  else d->out_color_space = JCS_RGB;
}

static int decode_jpeg(FILE *f, const char *path, rl_image *out, char *msg, size_t msglen) {
  struct jpeg_decompress_struct d;
  jpeg_ctx e;
  memset(&e, 0, sizeof e);
  uint8_t *volatile hwc = NULL;
  d.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = jpeg_on_error;
  e.pub.emit_message = jpeg_on_message;
  if (setjmp(e.jb)) {
    snprintf(msg, msglen, "image: '%s': JPEG error near byte %ld: %s", path, ftell(f), e.why);
    jpeg_destroy_decompress(&d);
    free(hwc);
    rl_image_free(out);
    return -1;
  }
  jpeg_create_decompress(&d);
  jpeg_stdio_src(&d, f);
  jpeg_read_header(&d, TRUE);
  jpeg_pick_space(&d);
  jpeg_start_decompress(&d);
  int64_t w = d.output_width, h = d.output_height, nc = d.output_components;
  if (!alloc_planes(out, h, w) || !(hwc = malloc((size_t)(nc * h * w)))) {
    snprintf(e.why, sizeof e.why, "image too large or out of memory");
    longjmp(e.jb, 1);
  }
  while (d.output_scanline < d.output_height) {
    JSAMPROW row = hwc + (int64_t)d.output_scanline * nc * w;
    jpeg_read_scanlines(&d, &row, 1);
  }
  if (e.truncated) {
    snprintf(e.why, sizeof e.why, "truncated: the data ends before the image does");
    longjmp(e.jb, 1);
  }
  to_planes(hwc, (int)nc, d.saw_Adobe_marker, out);
  jpeg_finish_decompress(&d);
  jpeg_destroy_decompress(&d);
  free(hwc);
  return 0;
}

/* ---- headers only ------------------------------------------------------------ */

static int probe_png(FILE *f, const char *path, int64_t *h, int64_t *w, char *msg, size_t msglen) {
  char why[200] = "out of memory";
  png_ctx ctx = {why, sizeof why};
  png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
  png_infop info = p ? png_create_info_struct(p) : NULL;
  if (!info || setjmp(png_jmpbuf(p))) {
    snprintf(msg, msglen, "image: '%s': PNG error near byte %ld: %s", path, ftell(f), why);
    png_destroy_read_struct(&p, info ? &info : NULL, NULL);
    return -1;
  }
  png_init_io(p, f);
  png_read_info(p, info);
  *w = png_get_image_width(p, info);
  *h = png_get_image_height(p, info);
  png_destroy_read_struct(&p, &info, NULL);
  return 0;
}

static int probe_jpeg(FILE *f, const char *path, int64_t *h, int64_t *w, char *msg, size_t msglen) {
  struct jpeg_decompress_struct d;
  jpeg_ctx e;
  memset(&e, 0, sizeof e);
  d.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = jpeg_on_error;
  e.pub.emit_message = jpeg_on_message;
  if (setjmp(e.jb)) {
    snprintf(msg, msglen, "image: '%s': JPEG error near byte %ld: %s", path, ftell(f), e.why);
    jpeg_destroy_decompress(&d);
    return -1;
  }
  jpeg_create_decompress(&d);
  jpeg_stdio_src(&d, f);
  jpeg_read_header(&d, TRUE);
  /* decoding at scale 1 gives exactly the declared size */
  *w = d.image_width;
  *h = d.image_height;
  jpeg_destroy_decompress(&d);
  return 0;
}

/* ---- either ----------------------------------------------------------------- */

typedef enum { KIND_PNG, KIND_JPEG } image_kind;

/* Open path and tell its format from the first bytes (rewound after). */
static FILE *open_image(const char *path, image_kind *kind, char *msg, size_t msglen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(msg, msglen, "image: '%s': cannot open: %s", path, strerror(errno));
    return NULL;
  }
  uint8_t sig[8] = {0};
  size_t got = fread(sig, 1, sizeof sig, f);
  rewind(f);
  if (got == 8 && !png_sig_cmp(sig, 0, 8)) {
    *kind = KIND_PNG;
  } else if (got >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF) {
    *kind = KIND_JPEG;
  } else {
    snprintf(msg, msglen, "image: '%s': not a PNG or JPEG file (%zu bytes, starting %02x %02x %02x %02x at byte 0)",
             path, got, sig[0], sig[1], sig[2], sig[3]);
    fclose(f);
    return NULL;
  }
  return f;
}

/* The size f's header declares, refused when beyond the image limits. */
static int probe_file(FILE *f, image_kind kind, const char *path, int64_t *h, int64_t *w,
                      char *msg, size_t msglen) {
  int rc = kind == KIND_PNG ? probe_png(f, path, h, w, msg, msglen)
                            : probe_jpeg(f, path, h, w, msg, msglen);
  if (rc) return -1;
  char what[400];
  snprintf(what, sizeof what, "image: '%s': the header declares", path);
  return rl_image_check_size(*h, *w, what, msg, msglen);
}

int rl_image_decode(const char *path, rl_image *out, char *msg, size_t msglen) {
  memset(out, 0, sizeof *out);
  image_kind kind;
  FILE *f = open_image(path, &kind, msg, msglen);
  if (!f) return -1;
  /* the header on its own first: an image beyond the limits is refused
   * before the decoder allocates anything for its pixels */
  int64_t h, w;
  int rc = probe_file(f, kind, path, &h, &w, msg, msglen);
  if (!rc) {
    rewind(f);
    rc = kind == KIND_PNG ? decode_png(f, path, out, msg, msglen)
                          : decode_jpeg(f, path, out, msg, msglen);
  }
  fclose(f);
  return rc;
}

int rl_image_probe(const char *path, int64_t *h, int64_t *w, char *msg, size_t msglen) {
  image_kind kind;
  FILE *f = open_image(path, &kind, msg, msglen);
  if (!f) return -1;
  int rc = probe_file(f, kind, path, h, w, msg, msglen);
  fclose(f);
  return rc;
}

rl_tensor *rl_image_load(const char *path) {
  char msg[512];
  rl_image im;
  if (rl_image_decode(path, &im, msg, sizeof msg)) {
    rl_err("%s", msg);
    return NULL;
  }
  int64_t size[3] = {im.c, im.h, im.w};
  rl_tensor *t = rl_from_host(3, size, RL_U8, im.px, rl_cpu());
  rl_image_free(&im);
  return t;
}
