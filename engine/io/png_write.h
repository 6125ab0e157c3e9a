/* png_write.h - u8 image tensors to PNG files (see png_write.c). */
#ifndef RL_PNG_WRITE_H
#define RL_PNG_WRITE_H

#include "core.h"

/* [H, W], [1, H, W] or [3, H, W] u8; written atomically. */
int rl_png_write(const char *path, rl_tensor *img);

#endif
