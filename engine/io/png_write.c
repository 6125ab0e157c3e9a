/* png_write.c - write a u8 image tensor as a PNG file through libpng.
 *
 * The image is [H, W] (gray), [1, H, W], [3, H, W] (RGB, channel-major as
 * the engine stores images) or [H, W, 3]-free: only channel-major input.
 * libpng reports errors by longjmp; that jump lands inside this file's
 * own setjmp and never crosses engine or Lua frames.  The file is written
 * to a temporary name and renamed, so a failed write leaves nothing. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "png_write.h"

/* One interleaved row of the image (channels last). */
static void fill_row(const uint8_t *img, int64_t C, int64_t H, int64_t W, int64_t y,
                     uint8_t *row) {
  for (int64_t x = 0; x < W; x++)
    for (int64_t c = 0; c < C; c++) row[x * C + c] = img[(c * H + y) * W + x];
}

static int write_rows(FILE *f, const uint8_t *img, int64_t C, int64_t H, int64_t W,
                      char *why, size_t nwhy) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  uint8_t *volatile row = malloc((size_t)(W * C));
  if (!png || !info || !row) {
    snprintf(why, nwhy, "out of memory");
    png_destroy_write_struct(&png, &info);
    free(row);
    return -1;
  }
  if (setjmp(png_jmpbuf(png))) {
    snprintf(why, nwhy, "libpng failed while writing");
    png_destroy_write_struct(&png, &info);
    free(row);
    return -1;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8,
               C == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int64_t y = 0; y < H; y++) {
    fill_row(img, C, H, W, y, row);
    png_write_row(png, row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(row);
  return 0;
}

int rl_png_write(const char *path, rl_tensor *img) {
  if (img->dtype != RL_U8)
    return rl_err("write_png: the image must be u8, got %s", rl_dtype_name(img->dtype));
  int64_t C, H, W;
  if (img->ndim == 2) {
    C = 1, H = img->size[0], W = img->size[1];
  } else if (img->ndim == 3 && (img->size[0] == 1 || img->size[0] == 3)) {
    C = img->size[0], H = img->size[1], W = img->size[2];
  } else {
    return rl_err("write_png: the image must be [H, W], [1, H, W] or [3, H, W], got %s",
                  rl_shape_str(img));
  }
  if (H < 1 || W < 1 || H > 1 << 20 || W > 1 << 20)
    return rl_err("write_png: unusable image size %s", rl_shape_str(img));
  uint8_t *host = malloc((size_t)(C * H * W));
  if (!host) return rl_err("write_png: out of memory");
  if (rl_to_host(img, host)) {
    free(host);
    return -1;
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(host);
    return rl_err("write_png: cannot create %s: %s", tmp, strerror(errno));
  }
  char why[128] = "";
  int rc = write_rows(f, host, C, H, W, why, sizeof why);
  free(host);
  if (fclose(f) != 0 && rc == 0) {
    snprintf(why, sizeof why, "%s", strerror(errno));
    rc = -1;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    snprintf(why, sizeof why, "rename failed: %s", strerror(errno));
    rc = -1;
  }
  if (rc) {
    remove(tmp);
    return rl_err("write_png: %s: %s", path, why);
  }
  return 0;
}
