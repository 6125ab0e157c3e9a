/* data.h - dataset readers, image decoding, resizing and batch assembly.
 *
 * Every reader returns new CPU tensors: images x as u8 [N, C, H, W] and
 * labels y as i64 [N] (0-based).  On failure it returns -1 and leaves a
 * message naming the reader, the file, the problem and the byte offset
 * ("idx: 'train-images-idx3-ubyte': truncated at byte 16: ..."); the output
 * pointers are then left NULL.  Nothing here calls Lua, exit or abort.
 * libpng and libjpeg report errors by longjmp from their own callbacks; that
 * jump is caught inside the one decoding function that set it up and turned
 * into a status, so it never crosses a function of this API. */
#ifndef RL_DATA_H
#define RL_DATA_H

#include <stddef.h>

#include "ops.h"

/* ---- dataset files ----------------------------------------------------- */

/* MNIST / Fashion-MNIST IDX pair, plain or gzip: images (magic 0x00000803,
 * N x rows x cols) and labels (magic 0x00000801, N).  x is [N, 1, rows, cols]. */
int rl_read_idx(const char *images, const char *labels, rl_tensor **x, rl_tensor **y);

/* CIFAR-10 binary batches: records of 1 label byte + 3x32x32 pixels
 * (channel-major); the files are concatenated in the order given. */
int rl_read_cifar(int nfiles, const char *const *paths, rl_tensor **x, rl_tensor **y);

/* SVHN cropped digits, MATLAB v5 .mat (compressed or not): variables X
 * (uint8, H x W x C x N in MATLAB's column-major order) and y (N labels
 * 1..10, any numeric class; 10 is digit 0 and becomes label 0). */
int rl_read_svhn_mat(const char *path, rl_tensor **x, rl_tensor **y);

/* The synthetic set: label i % classes; each class is a fixed random
 * pattern of dark (40) and bright (215) pixels drawn from `seed`, and every
 * sample adds its own noise in [-30, 30], so classes stay >= 115/255 apart
 * in l-inf wherever their patterns differ. */
int rl_synthetic(int64_t n, int classes, int channels, int size, uint64_t seed,
                 rl_tensor **x, rl_tensor **y);

/* ---- directories --------------------------------------------------------- */

/* The entries of `path` (sub-directories when want_dirs, else regular files),
 * hidden ones ('.' first) left out, sorted by byte order.  Free the names
 * with rl_data_free_names. */
int rl_listdir(const char *path, bool want_dirs, int *n, char ***names);
void rl_data_free_names(int n, char **names);

/* ---- images ---------------------------------------------------------------- */

/* A decoded image: 8-bit planes, channel-major [c][h][w]. */
typedef struct rl_image {
  int c;
  int64_t h, w;
  uint8_t *px; /* malloc'd; free with rl_image_free */
} rl_image;

void rl_image_free(rl_image *im);

/* Limits on the size of an image, decoded or resized.  A file's header is
 * checked against them before anything is decoded, and a resize target
 * before it is allocated, so that a small hostile file (a 118-byte 1x40000
 * PNG resized to short side 72 asks for 72 x 2880000 pixels) is refused
 * instead of eating memory.  The defaults exceed every real dataset image:
 * ImageNet's largest are a few thousand pixels a side, a 100-megapixel
 * camera frame is 11648x8736; 2^27 pixels are 384 MiB of RGB planes, and a
 * short side of 72 keeps the long side under 16384 unless the aspect
 * ratio passes 227:1.  The limits are process-wide: set them between
 * reads, not while one runs. */
typedef struct rl_image_limits {
  int64_t max_side;   /* the height and the width, each */
  int64_t max_pixels; /* height x width */
} rl_image_limits;

#define RL_IMAGE_MAX_SIDE 16384
#define RL_IMAGE_MAX_PIXELS ((int64_t)1 << 27)
/* What rl_image_set_limits accepts: sides fit libpng's and libjpeg's u32
 * dims, and 3 planes of max_pixels fit any size_t arithmetic here. */
#define RL_IMAGE_LIMIT_SIDE_CAP (((int64_t)1 << 31) - 1)
#define RL_IMAGE_LIMIT_PIXELS_CAP ((int64_t)1 << 40)

rl_image_limits rl_image_get_limits(void);
/* -1 (message in the per-thread buffer) unless 1 <= max_side <= 2^31 - 1
 * and 1 <= max_pixels <= 2^40. */
int rl_image_set_limits(rl_image_limits l);

/* 0 when an h x w image is within the limits; else -1 and msg gets
 * "<what> HxW (height x width), beyond the image limits (max_side ...,
 * max_pixels ...)", what naming the file and the step. */
int rl_image_check_size(int64_t h, int64_t w, const char *what, char *msg, size_t msglen);

/* The size of an h x w image of `path` with its short side resized to
 * `resize` (0: kept), checked against the limits before anything is
 * allocated; messages as rl_image_check_size. */
int rl_image_fit_size(const char *path, int64_t h, int64_t w, int64_t resize, int64_t *oh,
                      int64_t *ow, char *msg, size_t msglen);

/* Decode a PNG or JPEG file (the format is sniffed from its first bytes,
 * whatever the extension says) to 3 channels: gray is repeated, alpha is
 * dropped, palettes are expanded, 16-bit samples keep their high byte and
 * CMYK JPEGs are converted.  A header beyond the image limits is refused
 * before decoding.  Thread-safe: on failure the message goes to msg (never
 * to the per-thread error buffer). */
int rl_image_decode(const char *path, rl_image *out, char *msg, size_t msglen);

/* Resample each plane to oh x ow with the bilinear (triangle) filter, widened
 * by the scale factor when shrinking, as PIL resizes.  Returns -1 only when
 * out of memory; the caller checks the size against the limits. */
int rl_image_resize(const rl_image *src, int64_t oh, int64_t ow, rl_image *dst);

/* The size whose short side is s, the long side scaled and truncated as
 * torchvision's Resize(s) does.  h, w and s must be in 1..2^31 - 1 (the
 * product s * long side then fits int64): rl_image_fit_size checks that. */
void rl_image_short_side(int64_t h, int64_t w, int64_t s, int64_t *oh, int64_t *ow);

/* The offset of a centred window of length n in length len: round((len-n)/2)
 * with ties to even, as torchvision's CenterCrop (Python's round). */
int64_t rl_center_offset(int64_t len, int64_t n);

/* Tensor forms, for Lua: decode to u8 [3, H, W]; resize u8 [C, H, W]. */
rl_tensor *rl_image_load(const char *path);
rl_tensor *rl_image_resize_t(rl_tensor *img, int64_t oh, int64_t ow);

/* Write u8 [C, H, W] (C = 1 or 3) or [H, W] as a baseline JPEG at quality
 * 1..100 (4:4:4 chroma at quality >= 90).  PNG: rl_png_write (png_write.h). */
int rl_image_write_jpeg(const char *path, rl_tensor *img, int quality);

/* The height and width a PNG or JPEG file declares, from its header only
 * (for sizing a store before decoding), checked against the image limits.
 * Thread-safe; messages as decode. */
int rl_image_probe(const char *path, int64_t *h, int64_t *w, char *msg, size_t msglen);

/* Decode one file and resize its short side to `resize` (0: keep the size),
 * as torchvision's Resize(resize) on a PIL image; the resized size is
 * checked against the image limits first.  Thread-safe; messages as
 * decode. */
int rl_image_fit(const char *path, int64_t resize, rl_image *out, char *msg, size_t msglen);

/* Decode files[0..n) in parallel, resize the short side to `resize` (0: keep
 * the size) and cut the centre crop_h x crop_w (0: resize x resize, or the
 * first image's size without resizing) into x [n, 3, crop_h, crop_w].  An
 * image smaller than the crop is an error, and so are resize and crop sizes
 * beyond the image limits' max_side; the first failing file (in list order)
 * names the error. */
int rl_read_images(int64_t n, const char *const *files, int64_t resize, int64_t crop_h,
                   int64_t crop_w, rl_tensor **x);

/* ---- ragged image sets ------------------------------------------------------ */

/* Images that keep their own sizes, packed in one buffer: image i is c
 * planes of h_i x w_i bytes starting at pixels[off_i], and row i of extent
 * (i64 [N, 3]) is (off_i, h_i, w_i).  pixels is u8 [total].  Every function
 * below first checks that each row lies inside pixels (a store may come
 * from a cache file), so a bad extent is an error, never a wild read. */
typedef struct rl_ragged {
  rl_tensor *pixels, *extent;
  int64_t c;
} rl_ragged;

/* Check the store's dtypes, shapes and every extent row; op names the caller. */
int rl_ragged_check(const rl_ragged *r, const char *op);

/* Decode files[0..n) in parallel and resize each short side to `resize`
 * (0: keep the size), keeping every image whole: a new store with c = 3,
 * images in list order.  The headers are read first so that the buffer is
 * allocated once, at its final size.  The first failing file (in list
 * order) names the error. */
int rl_read_images_ragged(int64_t n, const char *const *files, int64_t resize, rl_ragged *out);

/* Images idx (i64 [B], 0-based) of r, packed into a new store. */
int rl_ragged_select(const rl_ragged *r, rl_tensor *idx, rl_ragged *out);

/* The centred ch x cw window of every image (offsets as rl_center_offset):
 * u8 [N, c, ch, cw]. */
rl_tensor *rl_ragged_center_crop(const rl_ragged *r, int64_t ch, int64_t cw);

/* ---- batches ----------------------------------------------------------------- */

/* How a batch is cut from each image: zero padding `pad` on every side,
 * then a crop_h x crop_w window (0 = the image's size) at a random position
 * (random_crop) or the centre, then a horizontal flip with probability 1/2
 * (flip). */
typedef struct rl_augment {
  int64_t crop_h, crop_w, pad;
  bool random_crop, flip;
} rl_augment;

/* Gather rows idx (i64 [B], 0-based) of x (u8 [N, C, H, W]) into a new f32
 * [B, C, crop_h, crop_w] tensor holding pixel / 255.  When the augmentation
 * is random it takes B counters from g (NULL: the default generator); row b
 * uses counter off + b: lane 0 picks the crop row, lane 1 the crop column
 * (each as mulhi32(lane, positions)), lane 2's top bit the flip.  A batch
 * is therefore fixed by the generator state it starts from. */
rl_tensor *rl_data_batch(rl_tensor *x, rl_tensor *idx, const rl_augment *a,
                         rl_generator *g);

/* The same from a ragged store: every image is padded and cut at its own
 * size (torchvision's RandomCrop(size, padding) of the whole image), with
 * the same counters and lanes; a crop size is required. */
rl_tensor *rl_data_batch_ragged(const rl_ragged *r, rl_tensor *idx, const rl_augment *a,
                                rl_generator *g);

/* ---- shared by the data_*.c files ------------------------------------------ */

/* The size of a regular file, or -1 with "op: 'path': cannot open: why". */
int rl_data_file_size(const char *op, const char *path, int64_t *size);
/* The whole file in a malloc'd buffer. */
int rl_data_slurp(const char *op, const char *path, uint8_t **buf, size_t *len);
/* New x u8 [n, c, h, w] and y i64 [n]; both or neither. */
int rl_data_alloc(int64_t n, int c, int64_t h, int64_t w, rl_tensor **x, rl_tensor **y);
/* Release *x and *y and set them to NULL; returns -1 (for error paths). */
int rl_data_drop(rl_tensor **x, rl_tensor **y);

#endif
