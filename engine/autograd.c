/* autograd.c - nodes, recording and the backward engine.
 *
 * A backward pass: collect the nodes reachable from the roots (iterative
 * DFS), order them topologically (Kahn), mark which nodes lead to a wanted
 * gradient, then run the wanted nodes in order, each told which of its
 * inputs need a gradient.  Gradients arriving at a node from several
 * consumers are summed before its backward runs. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

rl_counters rl_counter;

static _Thread_local bool grad_mode = true;

bool rl_grad_enabled(void) { return grad_mode; }

bool rl_set_grad_enabled(bool on) {
  bool old = grad_mode;
  grad_mode = on;
  return old;
}

/* ---- nodes ------------------------------------------------------------- */

void rl_node_retain(rl_node *n) { n->refcount++; }

static void free_saved(rl_node *n) {
  for (int i = 0; i < n->nsaved; i++) {
    rl_release(n->saved[i]);
    n->saved[i] = NULL;
  }
  n->nsaved = 0;
}

/* Iterative, so that releasing a graph thousands of nodes deep (a long
 * loop building one expression) cannot overflow the C stack: a node's
 * `acc` field is free once the node is dead and links the work list. */
void rl_node_release(rl_node *n) {
  if (!n || --n->refcount > 0) return;
  rl_node *todo = n;
  if (n->acc) rl_release(n->acc);
  n->acc = NULL;
  while (todo) {
    rl_node *m = todo;
    todo = (rl_node *)m->acc;
    for (int i = 0; i < m->ninputs; i++) {
      rl_node *c = m->next[i].fn;
      if (c && --c->refcount == 0) {
        if (c->acc) rl_release(c->acc);
        c->acc = (rl_tensor *)todo;
        todo = c;
      }
      if (m->next[i].leaf) rl_release(m->next[i].leaf);
    }
    free_saved(m);
    free(m->next);
    free(m->meta);
    free(m->need);
    free(m);
  }
}

bool rl_would_record(int n, const rl_tensor *const *inputs) {
  if (!grad_mode) return false;
  for (int i = 0; i < n; i++)
    if (inputs[i] && inputs[i]->requires_grad) return true;
  return false;
}

rl_node *rl_record(const char *name, rl_backward_fn fn, rl_tensor *out, int n,
                   rl_tensor *const *inputs) {
  if (!rl_would_record(n, (const rl_tensor *const *)inputs)) return NULL;
  rl_node *node = calloc(1, sizeof *node);
  if (node) {
    node->next = calloc((size_t)n, sizeof *node->next);
    node->meta = calloc((size_t)n, sizeof *node->meta);
    node->need = calloc((size_t)n, sizeof *node->need);
  }
  if (!node || !node->next || !node->meta || !node->need) {
    /* Without memory for a node the output cannot carry history; the
     * output is left without requires_grad, and backward through it says
     * that it does not require grad. */
    if (node) {
      free(node->next);
      free(node->meta);
      free(node->need);
      free(node);
    }
    return NULL;
  }
  node->name = name;
  node->backward = fn;
  node->refcount = 1;
  node->ninputs = n;
  for (int i = 0; i < n; i++) {
    rl_tensor *t = inputs[i];
    if (!t) continue;
    rl_meta_of(&node->meta[i], t);
    if (!t->requires_grad) continue;
    if (t->grad_fn) {
      node->next[i].fn = t->grad_fn;
      rl_node_retain(t->grad_fn);
    } else {
      node->next[i].leaf = t;
      rl_retain(t);
    }
  }
  if (out->grad_fn) rl_node_release(out->grad_fn);
  out->grad_fn = node;
  out->requires_grad = true;
  return node;
}

int rl_node_save(rl_node *n, const rl_tensor *t) {
  if (n->nsaved >= RL_NODE_MAX_SAVED) return rl_err("%s: too many saved tensors", n->name);
  rl_tensor *a = rl_alias(t);
  if (!a) return -1;
  n->saved[n->nsaved] = a;
  n->saved_version[n->nsaved] = t->st->version;
  n->nsaved++;
  return 0;
}

int rl_node_skip(rl_node *n) {
  if (n->nsaved >= RL_NODE_MAX_SAVED) return rl_err("%s: too many saved tensors", n->name);
  n->saved[n->nsaved] = NULL;
  n->saved_version[n->nsaved++] = 0;
  return 0;
}

rl_tensor *rl_node_saved(rl_node *n, int k) {
  rl_tensor *t = n->saved[k];
  if (!t) {
    rl_err("%s: saved tensor %d is missing", n->name, k);
    return NULL;
  }
  if (t->st->version != n->saved_version[k]) {
    rl_err("%s: a tensor it saved for backward was modified by an in-place operation "
           "(size %s, version %llu, expected %llu); use the out-of-place form or clone it",
           n->name, rl_shape_str(t), (unsigned long long)t->st->version,
           (unsigned long long)n->saved_version[k]);
    return NULL;
  }
  rl_retain(t);
  return t;
}

int rl_check_inplace(const char *op, const rl_tensor *t, const rl_tensor *other) {
  /* an expanded view has elements that share memory: writing one writes all */
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] == 0 && t->size[d] > 1)
      return rl_err("%s: the tensor written in place (size %s) has elements sharing one "
                    "memory location (an expanded view); clone it first",
                    op, rl_shape_str(t));
  if (!grad_mode) return 0;
  if (t->requires_grad)
    return rl_err("%s: in-place operation on a tensor that requires grad (size %s); use "
                  "the out-of-place form, or run it inside rl.no_grad",
                  op, rl_shape_str(t));
  if (other && other->requires_grad)
    return rl_err("%s: in-place operation reading a tensor that requires grad would "
                  "drop its gradient; use the out-of-place form",
                  op);
  return 0;
}

/* ---- helpers for backward rules ---------------------------------------- */

void rl_meta_of(rl_meta *m, const rl_tensor *t) {
  m->ndim = t->ndim;
  memcpy(m->size, t->size, sizeof(int64_t) * (size_t)t->ndim);
  m->dtype = t->dtype;
  m->dev = rl_dev(t);
}

rl_tensor *rl_zeros_meta(const rl_meta *m) { return rl_zeros(m->ndim, m->size, m->dtype, m->dev); }

void rl_release_all(int n, rl_tensor **ts) {
  for (int i = 0; i < n; i++)
    if (ts[i]) {
      rl_release(ts[i]);
      ts[i] = NULL;
    }
}

int rl_grad_one(rl_tensor **gin, rl_tensor *dx, int rc, int n, rl_tensor **tmp) {
  rl_release_all(n, tmp);
  if (rc) {
    if (dx) rl_release(dx);
    return -1;
  }
  gin[0] = dx;
  return 0;
}

/* ---- the engine -------------------------------------------------------- */

typedef struct vec {
  rl_node **v;
  size_t n, cap;
} vec;

static int vec_push(vec *a, rl_node *n) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 64;
    rl_node **v = realloc(a->v, cap * sizeof *v);
    if (!v) return rl_err("backward: out of memory");
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = n;
  return 0;
}

enum { ST_SEEN = 1, ST_NEEDED = 2, ST_TARGET = 4 };

/* Add g into *slot (taking ownership of g). */
static int accumulate(rl_tensor **slot, rl_tensor *g) {
  if (!*slot) {
    *slot = g;
    return 0;
  }
  rl_tensor *s = rl_add(*slot, g);
  rl_release(g);
  if (!s) return -1;
  rl_release(*slot);
  *slot = s;
  return 0;
}

/* Leaf .grad accumulation: the first gradient is stored as a tensor of its
 * own (never one shared with another leaf or the graph); later ones add in
 * place, as PyTorch does. */
static int accumulate_leaf(rl_tensor *leaf, rl_tensor *g) {
  if (!rl_same_shape(leaf, g)) {
    rl_err("backward: gradient of size %s for a leaf of size %s", rl_shape_str(g),
           rl_shape_str(leaf));
    rl_release(g);
    return -1;
  }
  if (!leaf->grad) {
    if (g->refcount == 1 && g->st->refcount == 1 && rl_is_contiguous(g) &&
        g->dtype == leaf->dtype) {
      leaf->grad = g;
      return 0;
    }
    leaf->grad = g->dtype == leaf->dtype ? rl_clone(g) : rl_to_dtype(g, leaf->dtype);
    rl_release(g);
    return leaf->grad ? 0 : -1;
  }
  int rc = rl_binary_(RL_BIN_ADD, leaf->grad, g, 1.0);
  rl_release(g);
  return rc;
}

static int run(int nroots, rl_tensor *const *roots, rl_tensor *const *grads, int nin,
               rl_tensor *const *inputs, bool retain, bool allow_unused, rl_tensor **out) {
  const char *who = out ? "grad" : "backward";
  vec nodes = {0}, stack = {0}, order = {0};
  rl_tensor **seeds = calloc((size_t)nroots, sizeof *seeds);
  int rc = -1;
  bool old_mode = rl_set_grad_enabled(false);
  if (!seeds) {
    rl_err("%s: out of memory", who);
    goto done;
  }
  if (out)
    for (int k = 0; k < nin; k++) out[k] = NULL;

  /* seeds */
  for (int i = 0; i < nroots; i++) {
    rl_tensor *r = roots[i];
    if (!r->requires_grad) {
      rl_err("%s: output %d does not require grad and has no grad_fn (was it computed "
             "inside rl.no_grad, or from tensors without requires_grad?)",
             who, i + 1);
      goto done;
    }
    if (grads && grads[i]) {
      if (!rl_same_shape(grads[i], r)) {
        rl_err("%s: gradient of size %s given for an output of size %s", who,
               rl_shape_str(grads[i]), rl_shape_str(r));
        goto done;
      }
      seeds[i] = rl_to_device(grads[i], rl_dev(r));
      if (seeds[i] && seeds[i]->dtype != r->dtype) {
        rl_tensor *c = rl_to_dtype(seeds[i], r->dtype);
        rl_release(seeds[i]);
        seeds[i] = c;
      }
    } else {
      if (rl_numel(r) != 1) {
        rl_err("%s: a gradient can be implied only for an output with one element; this "
               "output has size %s, so pass its gradient explicitly",
               who, rl_shape_str(r));
        goto done;
      }
      seeds[i] = rl_ones(r->ndim, r->size, r->dtype, rl_dev(r));
    }
    if (!seeds[i]) goto done;
  }

  /* collect reachable nodes */
  for (int i = 0; i < nroots; i++) {
    rl_node *g = roots[i]->grad_fn;
    if (g && !(g->state & ST_SEEN)) {
      g->state |= ST_SEEN;
      if (vec_push(&nodes, g) || vec_push(&stack, g)) goto done;
    }
  }
  while (stack.n) {
    rl_node *m = stack.v[--stack.n];
    for (int i = 0; i < m->ninputs; i++) {
      rl_node *c = m->next[i].fn;
      if (!c) continue;
      c->deps++;
      if (!(c->state & ST_SEEN)) {
        c->state |= ST_SEEN;
        if (vec_push(&nodes, c) || vec_push(&stack, c)) goto done;
      }
    }
  }
  /* topological order (Kahn) */
  for (size_t k = 0; k < nodes.n; k++)
    if (nodes.v[k]->deps == 0 && vec_push(&stack, nodes.v[k])) goto done;
  while (stack.n) {
    rl_node *m = stack.v[--stack.n];
    if (vec_push(&order, m)) goto done;
    for (int i = 0; i < m->ninputs; i++) {
      rl_node *c = m->next[i].fn;
      if (c && --c->deps == 0 && vec_push(&stack, c)) goto done;
    }
  }

  /* which nodes lead to a wanted gradient (reverse order: children first) */
  if (out) {
    for (int k = 0; k < nin; k++)
      if (inputs[k]->grad_fn) inputs[k]->grad_fn->state |= ST_TARGET;
  }
  for (size_t k = order.n; k-- > 0;) {
    rl_node *m = order.v[k];
    bool needed = false;
    for (int i = 0; i < m->ninputs; i++) {
      bool e = false;
      if (m->next[i].fn) e = (m->next[i].fn->state & (ST_NEEDED | ST_TARGET)) != 0;
      else if (m->next[i].leaf) {
        if (!out) e = true;
        else
          for (int q = 0; q < nin && !e; q++) e = inputs[q] == m->next[i].leaf;
      }
      m->need[i] = e;
      needed |= e;
    }
    if (needed) m->state |= ST_NEEDED;
  }

  /* seed the roots */
  for (int i = 0; i < nroots; i++) {
    rl_tensor *r = roots[i], *s = seeds[i];
    seeds[i] = NULL;
    if (r->grad_fn) {
      if (accumulate(&r->grad_fn->acc, s)) goto done;
    } else if (!out) {
      if (accumulate_leaf(r, s)) goto done;
    } else {
      for (int q = 0; q < nin; q++)
        if (inputs[q] == r) {
          rl_retain(s);
          if (accumulate(&out[q], s)) goto done;
        }
      rl_release(s);
    }
  }

  /* run */
  for (size_t k = 0; k < order.n; k++) {
    rl_node *m = order.v[k];
    rl_tensor *g = m->acc;
    if (!g) continue;
    m->acc = NULL;
    if (out && (m->state & ST_TARGET))
      for (int q = 0; q < nin; q++)
        if (inputs[q]->grad_fn == m) {
          rl_retain(g);
          if (accumulate(&out[q], g)) {
            rl_release(g);
            goto done;
          }
        }
    if (!(m->state & ST_NEEDED)) {
      rl_release(g);
      continue;
    }
    if (m->released) {
      rl_release(g);
      rl_err("%s: trying to backward through the graph a second time (through %s); its "
             "saved tensors were freed by the first pass: pass retain_graph = true to the "
             "first call",
             who, m->name);
      goto done;
    }
    rl_tensor *gin[64] = {0};
    rl_tensor **gi = m->ninputs <= 64 ? gin : calloc((size_t)m->ninputs, sizeof *gi);
    if (!gi) {
      rl_release(g);
      rl_err("%s: out of memory", who);
      goto done;
    }
    rl_counter.nodes_run++;
    int brc = m->backward(m, g, gi);
    rl_release(g);
    if (brc) {
      rl_err_prefix(m->name);
      for (int i = 0; i < m->ninputs; i++)
        if (gi[i]) rl_release(gi[i]);
      if (gi != gin) free(gi);
      goto done;
    }
    int arc = 0;
    for (int i = 0; i < m->ninputs; i++) {
      rl_tensor *d = gi[i];
      if (!d) continue;
      if (arc || !m->need[i]) {
        rl_release(d);
        continue;
      }
      if (m->next[i].fn) {
        arc = accumulate(&m->next[i].fn->acc, d);
      } else if (!out) {
        arc = accumulate_leaf(m->next[i].leaf, d);
      } else {
        for (int q = 0; q < nin && !arc; q++)
          if (inputs[q] == m->next[i].leaf) {
            rl_retain(d);
            arc = accumulate(&out[q], d);
          }
        rl_release(d);
      }
    }
    if (gi != gin) free(gi);
    if (arc) goto done;
    if (!retain) {
      free_saved(m);
      m->released = true;
    }
  }

  if (out && !allow_unused)
    for (int q = 0; q < nin; q++)
      if (!out[q]) {
        rl_err("grad: input %d (size %s) is not reachable from the outputs; pass "
               "allow_unused = true to get nil for it",
               q + 1, rl_shape_str(inputs[q]));
        goto done;
      }
  rc = 0;

done:
  for (size_t k = 0; k < nodes.n; k++) {
    rl_node *m = nodes.v[k];
    m->state = 0;
    m->deps = 0;
    if (m->acc) {
      rl_release(m->acc);
      m->acc = NULL;
    }
  }
  if (rc && out)
    for (int q = 0; q < nin; q++)
      if (out[q]) {
        rl_release(out[q]);
        out[q] = NULL;
      }
  if (seeds) {
    for (int i = 0; i < nroots; i++)
      if (seeds[i]) rl_release(seeds[i]);
    free(seeds);
  }
  free(nodes.v);
  free(stack.v);
  free(order.v);
  rl_set_grad_enabled(old_mode);
  return rc;
}

int rl_backward_all(int nroots, rl_tensor *const *roots, rl_tensor *const *grads,
                bool retain_graph) {
  return run(nroots, roots, grads, 0, NULL, retain_graph, true, NULL);
}

int rl_grad(int nroots, rl_tensor *const *roots, rl_tensor *const *grads, int nin,
            rl_tensor *const *inputs, bool retain_graph, bool allow_unused,
            rl_tensor **out) {
  for (int q = 0; q < nin; q++)
    if (!inputs[q]->requires_grad)
      return rl_err("grad: input %d (size %s) does not require grad", q + 1,
                    rl_shape_str(inputs[q]));
  return run(nroots, roots, grads, nin, inputs, retain_graph, allow_unused, out);
}
