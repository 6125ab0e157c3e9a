/* dist.h - nearest point of another class (dataset separation, Table 1).
 *
 * For every query row i, the nearest reference row j whose label differs,
 * with exact integer distances on raw u8 pixels.  Ties go to the smallest
 * j.  No autograd: the outputs are integers. */
#ifndef RL_DIST_H
#define RL_DIST_H

#include "core.h"

/* q [Nq, ...] u8 and r [Nr, ...] u8 are read as rows of D bytes (D = the
 * product of the sizes after the first; it must agree); qlab [Nq] and
 * rlab [Nr] are i64 labels.  p = 0 is l-inf (dist = max_k |q_k - r_k|, 0..255)
 * and p = 2 squared l2 (dist = sum_k (q_k - r_k)^2), both in raw pixel units.
 * skip_self: ref j is never the answer for query j (for q and r being one set).
 * On success *dist and *arg are new i64 [Nq] tensors on the inputs' device:
 * arg is the 0-based index of the nearest ref, or -1 with dist -1 where no
 * ref has another label.  Returns 0, or -1 with a message naming
 * "nearest_other" and the offending sizes or dtypes. */
int rl_nearest_other(rl_tensor *q, rl_tensor *qlab, rl_tensor *r, rl_tensor *rlab, int p,
                     bool skip_self, rl_tensor **dist, rl_tensor **arg);

/* Pixel pairs compared by the last CPU nearest_other call on this thread
 * (seed pass and search together), for speed reports. */
int64_t rl_cpu_nearest_other_work(void);

#endif
