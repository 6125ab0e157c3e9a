/* data_jpeg_write.c - u8 images to JPEG files (fixtures, image grids; PNG
 * is rl.write_png, engine/io/png_write.c).  libjpeg's fatal errors longjmp
 * back to the setjmp in write_jpeg_rows, which returns a status. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jpeglib.h needs stdio.h first */
#include <jpeglib.h>

#include "data.h"

/* img as interleaved rows (h x w x c) in a malloc'd buffer; c is 1 or 3. */
static uint8_t *interleave(const char *op, rl_tensor *img, int *c, int64_t *h, int64_t *w) {
  bool chw = img->ndim == 3;
  if (img->dtype != RL_U8 || (img->ndim != 2 && !chw) ||
      (chw && img->size[0] != 1 && img->size[0] != 3)) {
    rl_err("%s: expects a u8 image [C, H, W] with C = 1 or 3, or [H, W]; got %s %s", op,
           rl_dtype_name(img->dtype), rl_shape_str(img));
    return NULL;
  }
  *c = chw ? (int)img->size[0] : 1;
  *h = img->size[chw];
  *w = img->size[chw + 1];
  rl_tensor *t = rl_contiguous(img);
  int64_t n = *h * *w;
  uint8_t *buf = t ? malloc((size_t)(n * *c) + 1) : NULL;
  if (t && !buf) rl_err("%s: out of memory", op);
  if (buf) {
    uint8_t *host = malloc((size_t)(n * *c) + 1);
    if (!host || rl_to_host(t, host)) {
      free(buf);
      buf = NULL;
      if (!host) rl_err("%s: out of memory", op);
    } else {
      for (int k = 0; k < *c; k++)
        for (int64_t i = 0; i < n; i++) buf[i * *c + k] = host[k * n + i];
    }
    free(host);
  }
  if (t) rl_release(t);
  return buf;
}

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
} jpeg_wctx;

static void jpeg_on_write_error(j_common_ptr c) { longjmp(((jpeg_wctx *)c->err)->jb, 1); }

/* Compress rows to f; -1 with a message on a libjpeg error. */
static int write_jpeg_rows(FILE *f, const char *path, const uint8_t *buf, int c, int64_t h,
                           int64_t w, int quality) {
  struct jpeg_compress_struct j;
  jpeg_wctx e;
  j.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = jpeg_on_write_error;
  if (setjmp(e.jb)) {
    char why[JMSG_LENGTH_MAX];
    e.pub.format_message((j_common_ptr)&j, why);
    jpeg_destroy_compress(&j);
    return rl_err("write_jpeg: '%s': %s", path, why);
  }
  jpeg_create_compress(&j);
  jpeg_stdio_dest(&j, f);
  j.image_width = (JDIMENSION)w;
  j.image_height = (JDIMENSION)h;
  j.input_components = c;
  j.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&j);
  jpeg_set_quality(&j, quality, TRUE);
  for (int k = 0; quality >= 90 && k < j.num_components; k++)
    j.comp_info[k].h_samp_factor = j.comp_info[k].v_samp_factor = 1;
  jpeg_start_compress(&j, TRUE);
  while (j.next_scanline < j.image_height) {
    JSAMPROW row = (JSAMPROW)(buf + (int64_t)j.next_scanline * w * c);
    jpeg_write_scanlines(&j, &row, 1);
  }
  jpeg_finish_compress(&j);
  jpeg_destroy_compress(&j);
  return 0;
}

int rl_image_write_jpeg(const char *path, rl_tensor *img, int quality) {
  if (quality < 1 || quality > 100)
    return rl_err("write_jpeg: quality must be in 1..100, got %d", quality);
  int c;
  int64_t h, w;
  uint8_t *buf = interleave("write_jpeg", img, &c, &h, &w);
  if (!buf) return -1;
  FILE *f = fopen(path, "wb");
  int rc = f ? write_jpeg_rows(f, path, buf, c, h, w, quality)
             : rl_err("write_jpeg: '%s': cannot create: %s", path, strerror(errno));
  if (f && fclose(f) && !rc) rc = rl_err("write_jpeg: '%s': %s", path, strerror(errno));
  free(buf);
  return rc;
}
