/* autograd.h - define-by-run reverse mode.
 *
 * An op whose inputs require grad records a node: its backward function,
 * edges to the nodes (or leaves) its inputs came from, the tensors it saved
 * and a few scalars.  A tensor owns a reference to the node that made it;
 * a node owns references to the nodes below it, never to its own output, so
 * the graph has no cycles and dies with the last tensor that reaches it.
 * First order only: backward functions run with grad mode off. */
#ifndef RL_AUTOGRAD_H
#define RL_AUTOGRAD_H

#include "core.h"

typedef struct rl_node rl_node;

/* gout is the gradient of the node's output; for every input i with
 * n->need[i] the function stores a new tensor (or NULL for "zero") in
 * gin[i].  Inputs not needed must be skipped: that is how a PGD step avoids
 * the weight-gradient GEMMs. */
typedef int (*rl_backward_fn)(rl_node *n, rl_tensor *gout, rl_tensor **gin);

/* Where an input's gradient goes: the node that made it, or the leaf itself
 * (retained), or nowhere when the input does not require grad. */
typedef struct rl_edge {
  rl_node *fn;
  rl_tensor *leaf;
} rl_edge;

/* What backward needs to know of an input without keeping it alive. */
typedef struct rl_meta {
  int ndim;
  int64_t size[RL_MAX_DIMS];
  rl_dtype dtype;
  const rl_device *dev;
} rl_meta;

#define RL_NODE_MAX_SAVED 6

struct rl_node {
  const char *name;
  rl_backward_fn backward;
  int refcount;
  int ninputs;
  rl_edge *next;    /* [ninputs] */
  rl_meta *meta;    /* [ninputs] */
  bool *need;       /* [ninputs], set by the engine before backward */
  int nsaved;
  rl_tensor *saved[RL_NODE_MAX_SAVED];
  uint64_t saved_version[RL_NODE_MAX_SAVED];
  double p[6];      /* scalar parameters of the op */
  int64_t ip[12];   /* integer parameters (dims, strides, ...) */
  bool released;    /* saved tensors freed by a backward pass */
  /* engine scratch */
  int deps;
  int state;
  rl_tensor *acc;
};

/* Grad mode (thread-local): ops record only when it is on. */
bool rl_grad_enabled(void);
bool rl_set_grad_enabled(bool on); /* returns the previous mode */

/* Whether rl_record would record a node for these inputs (NULLs skipped):
 * grad mode on and one of them requiring grad.  For an op that picks its
 * kernel by whether it records one (engine/ops_pointwise.c). */
bool rl_would_record(int n, const rl_tensor *const *inputs);
/* Called by an op after computing `out`: when grad mode is on and one of
 * the inputs requires grad, makes a node, marks out as requiring grad and
 * returns the node (to save tensors and parameters in).  Returns NULL when
 * nothing is recorded, and also when there is no memory for a node: out is
 * then left without history, and backward through it says so. */
rl_node *rl_record(const char *name, rl_backward_fn fn, rl_tensor *out, int n,
                   rl_tensor *const *inputs);
/* Save a tensor for backward (an alias: shares storage, not history). */
int rl_node_save(rl_node *n, const rl_tensor *t);
/* Leave slot k empty: what the backward rule does not read is not kept. */
int rl_node_skip(rl_node *n);
/* The saved tensor k (a new reference, to release), after checking that
 * nothing wrote to it in place. */
rl_tensor *rl_node_saved(rl_node *n, int k);

void rl_node_retain(rl_node *n);
void rl_node_release(rl_node *n);

/* Accumulate d(roots) into the .grad of every leaf that requires grad.
 * grads[i] may be NULL for a root with one element (gradient 1). */
int rl_backward_all(int nroots, rl_tensor *const *roots, rl_tensor *const *grads,
                bool retain_graph);
/* Gradients of the roots with respect to `inputs` only; out[i] is a new
 * tensor, or NULL when input i is unreachable and allow_unused.  Work that
 * does not lead to an input is skipped. */
int rl_grad(int nroots, rl_tensor *const *roots, rl_tensor *const *grads, int nin,
            rl_tensor *const *inputs, bool retain_graph, bool allow_unused,
            rl_tensor **out);

/* An in-place op on t (and reading `other`) is refused when it would
 * corrupt a graph; returns -1 with a message naming `op`. */
int rl_check_inplace(const char *op, const rl_tensor *t, const rl_tensor *other);

/* Counters for tests and benchmarks. */
typedef struct rl_counters {
  uint64_t gemm_calls;
  uint64_t gemm_flops;
  uint64_t nodes_run;
  uint64_t implicit_convs; /* convolution passes (forward, dx or dW) by the implicit GEMM */
} rl_counters;
extern rl_counters rl_counter;

#endif
