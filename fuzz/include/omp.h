/* omp.h - the OpenMP calls the engine makes, for the fuzzing build only.
 *
 * make fuzz compiles the engine with clang and without -fopenmp (the
 * readers then run serially, as fuzzing wants, and clang's own OpenMP
 * runtime need not be installed); gcc's omp.h uses gcc-only attributes, so
 * this declares the functions the engine calls, and libgomp defines them.
 * Outside a parallel region they answer 1 thread, thread 0. */
#ifndef RL_FUZZ_OMP_H
#define RL_FUZZ_OMP_H

int omp_get_max_threads(void);
int omp_get_num_threads(void);
int omp_get_thread_num(void);
void omp_set_num_threads(int n);
double omp_get_wtime(void);

#endif
