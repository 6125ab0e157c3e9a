/* safetensors.h - reading and writing checkpoints in the safetensors format.
 *
 * A file is an 8-byte little-endian length N, N bytes of UTF-8 JSON (the
 * header), then the data region.  The header maps each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * data region) and may hold "__metadata__", an object of string -> string.
 * Data is little-endian, row-major and contiguous.
 *
 * Dtypes written: F32, F64, I64, U8, BF16 and F16 (the engine's bf16 and
 * f16, bits as they are).  Dtypes read: those six, plus BOOL (read as u8,
 * every non-zero byte as 1) and I32 (converted to i64).  The engine
 * assumes a little-endian host.
 *
 * Errors follow core.h: -1 with a message naming "save:" or "load:", the
 * file and what is wrong (with the file's byte offset where one applies). */
#ifndef RL_SAFETENSORS_H
#define RL_SAFETENSORS_H

#include "core.h"

/* Headers longer than this are refused as corrupt. */
#define RL_SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)

/* Write n tensors, in the given order, with names[i] for ts[i], and nmeta
 * metadata pairs (nmeta may be 0 and the arrays NULL).  Each tensor is made
 * contiguous and copied to the host, whatever its device and strides.  The
 * header is padded with spaces so the data region starts at a multiple of 8.
 * Atomic: the bytes go to "<path>.tmp.<pid>" in the same directory, are
 * flushed and fsync'ed, then renamed over path; on any failure the temporary
 * is removed and path is left as it was. */
int rl_safetensors_save(const char *path, int n, const char *const *names,
                        rl_tensor *const *ts, int nmeta, const char *const *meta_keys,
                        const char *const *meta_vals);

/* Read every tensor of the file into new CPU tensors, in header order.  On
 * success the caller owns the arrays and everything in them, and frees them
 * with rl_safetensors_free; on failure the outputs are set to 0 / NULL.
 * The whole header is validated before any data is read: sizes, JSON syntax,
 * dtypes, shapes (at most RL_MAX_DIMS dims), offsets inside the data region,
 * sizes matching the shapes, no overlapping ranges, no duplicate names.
 * Bytes of the data region that no tensor covers are allowed. */
int rl_safetensors_load(const char *path, int *n, char ***names, rl_tensor ***ts,
                        int *nmeta, char ***meta_keys, char ***meta_vals);

/* The metadata pairs only: the whole header is read and validated as by
 * rl_safetensors_load, no tensor data is read.  Free the arrays with
 * rl_safetensors_free(0, NULL, NULL, nmeta, meta_keys, meta_vals). */
int rl_safetensors_metadata(const char *path, int *nmeta, char ***meta_keys, char ***meta_vals);

/* Free what rl_safetensors_load returned (NULL entries are skipped). */
void rl_safetensors_free(int n, char **names, rl_tensor **ts, int nmeta, char **meta_keys,
                         char **meta_vals);

#endif
