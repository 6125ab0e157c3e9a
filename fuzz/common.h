/* common.h - what the libFuzzer harnesses of fuzz/ share.
 *
 * The readers take paths, so a harness writes its input to a file in a
 * directory of its own process (made at start-up under $TMPDIR, removed at
 * exit) and calls the reader on that.  Every harness links the engine's C
 * readers directly: no Lua.  A reader may refuse an input (that is its job:
 * -1 and a message); it must never crash, leak, hang or allocate without
 * bound, which ASan, UBSan and libFuzzer's -timeout and -rss_limit_mb
 * catch. */
#ifndef RL_FUZZ_COMMON_H
#define RL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The path of `name` in this process's scratch directory (a static buffer
 * per slot: slots 0..7 stay valid together). */
const char *fuzz_path(int slot, const char *name);

/* Write the n bytes at p to fuzz_path(slot, name) and return that path;
 * gzip-compressed when gz.  Aborts if the file cannot be written: that is
 * the harness's failure, not the reader's. */
const char *fuzz_file(int slot, const char *name, const void *p, size_t n, int gz);

/* Small image limits, so that a fuzzed header cannot make one input take
 * seconds; called by the image harnesses at start-up. */
void fuzz_small_images(void);

/* The next piece of data[*at..size) up to the 4-byte separator sep (or the
 * end): its start and length; *at moves past the separator.  0 when no
 * bytes are left. */
int fuzz_split(const uint8_t *data, size_t size, size_t *at, const char sep[4],
               const uint8_t **piece, size_t *len);

#endif
