/* random.h - counter-based generators (see philox.h for the stream layout). */
#ifndef RL_RANDOM_H
#define RL_RANDOM_H

#include "core.h"

typedef struct rl_generator {
  uint64_t seed;
  uint64_t offset; /* next unused Philox counter */
} rl_generator;

/* The generator random ops use when given NULL. Its seed at start-up is
 * fixed, so a script that never seeds is still reproducible. */
rl_generator *rl_default_generator(void);
void rl_manual_seed(uint64_t seed);
/* Reserve `ncounters` counters; returns the first. */
uint64_t rl_generator_take(rl_generator *g, uint64_t ncounters);
/* Counters a fill of n values of dtype dt with distribution dist uses. */
uint64_t rl_rng_counters(int dist, rl_dtype dt, int64_t n);

#endif
