/* lrl.h - what the binding files share.
 *
 * A tensor is a full userdata holding one rl_tensor reference (NULL once
 * closed by __close).  Every engine failure becomes a Lua error carrying the
 * engine's message, which names the op and the sizes involved; engine code
 * never longjmps, only these wrappers raise.
 *
 * Lua sees 1-based dims and positions (negative ones count from the end,
 * -1 being the last); index *values* inside tensors (labels, argmax
 * results, gather/index_select indices, arange) are 0-based as in PyTorch. */
#ifndef LRL_H
#define LRL_H

#include <lauxlib.h>
#include <lua.h>

#include "ops.h"
#include "tune.h"

#define LRL_TENSOR "rl.Tensor"
#define LRL_GENERATOR "rl.Generator"

/* ---- tensors -------------------------------------------------------- */

/* A new tensor goes to Lua in two steps, box first, as liolib makes a
 * file's box before opening the file: lrl_newbox pushes an empty (closed)
 * box and returns its stack index; then lrl_fill(L, box, t) hands it the
 * tensor (steals `t`) and returns 1.  A memory error making the box then
 * happens while no tensor exists, and once filled the box's __gc frees the
 * tensor whatever is raised next.  A NULL `t` raises the engine's error
 * and leaves the box empty for the collector.  So:
 *
 *   rl_tensor *x = lrl_check(L, 1);      -- read every argument first
 *   int b = lrl_newbox(L);
 *   return lrl_fill(L, b, rl_exp(x));    -- the box is the result on top */
int lrl_newbox(lua_State *L);
int lrl_fill(lua_State *L, int box, rl_tensor *t);
/* The tensor at index i, or a Lua error naming the argument. */
rl_tensor *lrl_check(lua_State *L, int i);
rl_tensor *lrl_test(lua_State *L, int i); /* NULL if not a (live) tensor */
/* For __gc, __close and __tostring: the box's tensor or NULL once closed
 * (no error), and closing it (dropping its reference; idempotent). */
rl_tensor *lrl_peek(lua_State *L, int i);
void lrl_close(lua_State *L, int i);
/* A tensor from a tensor or a number (a 0-dim tensor of like's dtype and
 * device when like is given, else f32 on the CPU).  *tmp receives a
 * reference to release when a temporary was made.  Read every argument
 * that can raise before this: once it returns, the caller holds *tmp. */
rl_tensor *lrl_operand(lua_State *L, int i, const rl_tensor *like, rl_tensor **tmp);
/* Two operands (at i and j) like lrl_operand's, both checked before either
 * is made, so that nothing is held when it raises; tmp[0], tmp[1] receive
 * the temporaries to release. */
void lrl_operands(lua_State *L, int i, int j, const rl_tensor *like, rl_tensor **a,
                  rl_tensor **b, rl_tensor *tmp[2]);
/* Raise the engine's last error. */
int lrl_error(lua_State *L);
/* Raise unless rc == 0. */
void lrl_check_rc(lua_State *L, int rc);

/* ---- arguments ------------------------------------------------------- */

/* Sizes given as numbers from index `first` on (stopping at a non-number)
 * or as one table; returns the count and sets *next to the index after. */
int lrl_sizes(lua_State *L, int first, int64_t *size, int *next);
/* A 1-based (or negative) Lua dim to the engine's 0-based (or negative)
 * dim; 0 is an error. */
int lrl_dim(lua_State *L, int i);
int lrl_dim_value(lua_State *L, lua_Integer d, int argi);
/* One dim or a table of dims at i (nil = all dims); returns the count. */
int lrl_dims(lua_State *L, int i, int *dims);

/* Options from a table at i: dtype, device, generator, requires_grad.
 * Defaults are filled in when the keys are absent. */
typedef struct lrl_opts {
  rl_dtype dtype;
  bool has_dtype;
  const rl_device *dev;
  bool has_dev;
  rl_generator *gen;
  bool requires_grad;
} lrl_opts;
void lrl_opts_read(lua_State *L, int i, lrl_opts *o, rl_dtype default_dtype);
/* Every key of the option table at i is one of keys[0..n-1], else an
 * argument error "unknown option 'k'" followed by tail (which says what
 * the options are): a misspelt option is an error, not ignored. */
void lrl_known_keys(lua_State *L, int i, const char *const *keys, size_t n, const char *tail);
/* As lrl_opts_read, with a generator allowed: the random creators'.  The
 * others refuse one (it would be ignored). */
void lrl_opts_read_random(lua_State *L, int i, lrl_opts *o, rl_dtype default_dtype);
/* As lrl_opts_read (random: lrl_opts_read_random) for a tensor made like
 * t: t's dtype and device unless the options give them (PyTorch's *_like
 * and torch.tensor(t)). */
void lrl_opts_read_like(lua_State *L, int i, lrl_opts *o, const rl_tensor *t, bool random);
rl_dtype lrl_dtype_arg(lua_State *L, int i);
const rl_device *lrl_device_arg(lua_State *L, int i);
rl_generator *lrl_generator_opt(lua_State *L, int i); /* NULL = default */

/* ---- the parts of the module ---------------------------------------- */

void lrl_open_tensor(lua_State *L);    /* metatable; fields into the table on top */
void lrl_open_methods(lua_State *L);   /* push the methods table __index falls back to */
void lrl_open_ops(lua_State *L);       /* methods into the methods table on top */
void lrl_open_print(lua_State *L);     /* __tostring, tolist into methods on top */
void lrl_open_generator(lua_State *L); /* rl.Generator, seeds, rl.philox */
void lrl_open_nn(lua_State *L);        /* rl.F, rl.grad and the grad mode */
void lrl_open_cuda(lua_State *L);      /* rl.cuda_*: availability, allocator stats */
void lrl_open_image(lua_State *L);     /* rl.write_png */
void lrl_open_bench(lua_State *L);     /* rl.clock and the C reference benchmarks */
void lrl_open_cpu(lua_State *L);       /* the processor and conv choices (refuses a foreign build) */
/* A backend's book of measured choices (engine/tune.h) as Lua sees it
 * (bindings/cpu.c): the list of {key, algorithm, how, ms} (empty for a
 * NULL book); and force(name | nil) -> the previous setting. */
void lrl_push_choices(lua_State *L, rl_tune_book *book);
int lrl_force_choice(lua_State *L, rl_tune_book *book);
void lrl_open_io(lua_State *L);
void lrl_open_dist(lua_State *L);
void lrl_open_data(lua_State *L);

/* Format a tensor as text (PyTorch-like values, then "[dtype size on dev]"). */
int lrl_tostring(lua_State *L, rl_tensor *t);

#endif
