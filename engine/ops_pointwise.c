/* ops_pointwise.c - elementwise ops: dtype promotion, broadcasting, the
 * in-place forms and the backward rules.
 *
 * Promotion follows PyTorch: mixed operands compute in the wider type
 * (u8 < i64 < f32 < f64); ops that only make sense on reals (exp, log,
 * sqrt, sigmoid, true division, pow by a number ...) turn integer inputs
 * into f32; pow of two integer tensors stays integer and exact (wrapping
 * as the other integer ops), a negative exponent refused as in PyTorch;
 * comparisons compute in the promoted type and write u8.  In-place forms
 * keep the destination's dtype and refuse a float result into an integer
 * tensor, as PyTorch does. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define NAME_(E, name, lua) #name,
static const char *const unary_name[RL_UN_COUNT] = {RL_UNARY_OPS(NAME_)};
static const char *const binary_name[RL_BIN_COUNT] = {RL_BINARY_OPS(NAME_)};
static const char *const ternary_name[RL_TER_COUNT] = {RL_TERNARY_OPS(NAME_)};
#undef NAME_

_Static_assert(sizeof unary_name / sizeof *unary_name == RL_UN_COUNT, "unary names");
_Static_assert(sizeof binary_name / sizeof *binary_name == RL_BIN_COUNT, "binary names");
_Static_assert(sizeof ternary_name / sizeof *ternary_name == RL_TER_COUNT, "ternary names");

/* "add" -> "add_" for the messages of the in-place forms */
static const char *inplace_name(const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s_", name);
  return buf;
}

static bool unary_is_cmp(rl_unary_op op) {
  return (op >= RL_UN_EQ_S && op <= RL_UN_GE_S) || op == RL_UN_ISNAN;
}
/* Ops defined for integers too (the rest need a real input). */
static bool unary_int_ok(rl_unary_op op) {
  switch (op) {
  case RL_UN_NEG: case RL_UN_ABS: case RL_UN_SIGN: case RL_UN_SQUARE: case RL_UN_RELU:
  case RL_UN_CLAMP: case RL_UN_AFFINE: case RL_UN_MAXS: case RL_UN_MINS: case RL_UN_FMOD:
  case RL_UN_REMS: case RL_UN_NOT:
    return true;
  default:
    return unary_is_cmp(op);
  }
}
static bool binary_is_cmp(rl_binary_op op) { return op >= RL_BIN_EQ && op <= RL_BIN_GE; }
static bool binary_is_logical(rl_binary_op op) { return op == RL_BIN_AND || op == RL_BIN_OR; }
static bool binary_needs_real(rl_binary_op op) {
  return op == RL_BIN_DIV || op >= RL_BIN_RELU_BWD;
}

/* ---- small helpers for backward rules ------------------------------------ */

static rl_tensor *un(rl_unary_op op, rl_tensor *a, double p0, double p1) {
  return rl_unary(op, a, p0, p1);
}
/* un() of a temporary, which is released */
static rl_tensor *un_take(rl_unary_op op, rl_tensor *a, double p0, double p1) {
  rl_tensor *r = rl_unary(op, a, p0, p1);
  if (a) rl_release(a);
  return r;
}
static rl_tensor *bin(rl_binary_op op, rl_tensor *a, rl_tensor *b) {
  return rl_binary(op, a, b, 1.0);
}
/* g * f(x) where f is given as a fresh tensor `f` (released here). */
static rl_tensor *mul_take(rl_tensor *g, rl_tensor *f) {
  if (!f) return NULL;
  rl_tensor *r = bin(RL_BIN_MUL, g, f);
  rl_release(f);
  return r;
}
/* Reduce a broadcast gradient to the input's shape and dtype. */
static int fit(rl_tensor **gin, rl_tensor *g, const rl_meta *m) {
  if (!g) return -1;
  rl_tensor *s = rl_sum_to(g, m->ndim, m->size);
  rl_release(g);
  if (!s) return -1;
  if (s->dtype != m->dtype) {
    rl_tensor *c = rl_to_dtype(s, m->dtype);
    rl_release(s);
    s = c;
  }
  *gin = s;
  return s ? 0 : -1;
}

/* ---- unary --------------------------------------------------------------- */

/* What a unary backward rule reads: its input, its output, or neither. */
static void unary_saves(rl_unary_op op, bool *in, bool *out) {
  switch (op) {
  case RL_UN_ABS: case RL_UN_LOG: case RL_UN_SQUARE: case RL_UN_LOG1P: case RL_UN_SIN:
  case RL_UN_COS: case RL_UN_CLAMP: case RL_UN_MAXS: case RL_UN_MINS: case RL_UN_POW:
    *in = true, *out = false;
    break;
  case RL_UN_EXP: case RL_UN_SQRT: case RL_UN_RSQRT: case RL_UN_RELU: case RL_UN_SIGMOID:
  case RL_UN_TANH: case RL_UN_RECIP: case RL_UN_EXPM1: case RL_UN_RPOW:
    *in = false, *out = true;
    break;
  case RL_UN_RDIV:
    *in = *out = true;
    break;
  default:
    *in = *out = false;
  }
}

static int unary_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_unary_op op = (rl_unary_op)n->ip[0];
  double p0 = n->p[0], p1 = n->p[1];
  bool sin_, sout;
  unary_saves(op, &sin_, &sout);
  rl_tensor *a = sin_ ? rl_node_saved(n, 0) : NULL, *y = sout ? rl_node_saved(n, 1) : NULL;
  if ((sin_ && !a) || (sout && !y)) {
    rl_release(a);
    rl_release(y);
    return -1;
  }
  rl_tensor *r = NULL;
  switch (op) {
  case RL_UN_NEG: r = un(RL_UN_NEG, g, 0, 0); break;
  case RL_UN_ABS: r = bin(RL_BIN_SIGN_MUL, g, a); break;
  case RL_UN_SIGN: case RL_UN_FLOOR: case RL_UN_CEIL: case RL_UN_ROUND:
    r = rl_zeros_meta(&n->meta[0]);
    break;
  case RL_UN_EXP: r = bin(RL_BIN_MUL, g, y); break;
  case RL_UN_LOG: r = bin(RL_BIN_DIV, g, a); break;
  case RL_UN_SQRT: r = mul_take(g, un(RL_UN_RDIV, y, 0.5, 0)); break;
  case RL_UN_RSQRT: r = mul_take(g, un_take(RL_UN_AFFINE, un(RL_UN_POW, y, 3, 0), -0.5, 0)); break;
  case RL_UN_RELU: r = bin(RL_BIN_RELU_BWD, g, y); break;
  case RL_UN_SIGMOID: r = bin(RL_BIN_SIGMOID_BWD, g, y); break;
  case RL_UN_TANH: r = bin(RL_BIN_TANH_BWD, g, y); break;
  case RL_UN_SQUARE: r = mul_take(g, un(RL_UN_AFFINE, a, 2, 0)); break;
  case RL_UN_RECIP: r = mul_take(g, un_take(RL_UN_AFFINE, un(RL_UN_SQUARE, y, 0, 0), -1, 0)); break;
  case RL_UN_LOG1P: r = mul_take(g, un_take(RL_UN_RDIV, un(RL_UN_AFFINE, a, 1, 1), 1, 0)); break;
  case RL_UN_EXPM1: r = mul_take(g, un(RL_UN_AFFINE, y, 1, 1)); break;
  case RL_UN_SIN: r = mul_take(g, un(RL_UN_COS, a, 0, 0)); break;
  case RL_UN_COS: r = mul_take(g, un_take(RL_UN_AFFINE, un(RL_UN_SIN, a, 0, 0), -1, 0)); break;
  case RL_UN_CLAMP: {
    /* the gradient passes where lo <= a <= hi */
    rl_tensor *m1 = un(RL_UN_GE_S, a, p0, 0), *m2 = un(RL_UN_LE_S, a, p1, 0);
    rl_tensor *m = m1 && m2 ? bin(RL_BIN_AND, m1, m2) : NULL;
    rl_release(m1);
    rl_release(m2);
    rl_tensor *out = un(RL_UN_NOT, m, 0, 0);
    r = out ? rl_masked_fill(g, out, 0) : NULL;
    rl_release(m);
    rl_release(out);
    break;
  }
  case RL_UN_MAXS: case RL_UN_MINS: {
    rl_tensor *keep = un(op == RL_UN_MAXS ? RL_UN_LT_S : RL_UN_GT_S, a, p0, 0);
    r = keep ? rl_masked_fill(g, keep, 0) : NULL;
    rl_release(keep);
    break;
  }
  case RL_UN_AFFINE: r = un(RL_UN_AFFINE, g, p0, 0); break;
  case RL_UN_RDIV: r = mul_take(g, un_take(RL_UN_AFFINE, bin(RL_BIN_DIV, y, a), -1, 0)); break;
  case RL_UN_POW: /* p0 a^(p0-1); 0 for p0 = 0, where 0^-1 would make 0 * inf */
    if (p0 == 0) r = rl_zeros_meta(&n->meta[0]);
    else r = mul_take(g, un_take(RL_UN_AFFINE, un(RL_UN_POW, a, p0 - 1, 0), p0, 0));
    break;
  case RL_UN_RPOW: /* y log p0; for p0 = 0, 0 where a >= 0 (there y is 0 or 1, not inf) */
    r = mul_take(g, un(RL_UN_AFFINE, y, log(p0), 0));
    if (r && p0 == 0) {
      rl_tensor *z = un(RL_UN_LE_S, y, 1, 0);
      if (!z || rl_masked_fill_(r, z, 0)) rl_release_all(1, &r);
      rl_release(z);
    }
    break;
  case RL_UN_FMOD: case RL_UN_REMS: rl_retain(g); r = g; break;
  default:
    rl_release(a);
    rl_release(y);
    return rl_err("%s: no gradient", unary_name[op]);
  }
  rl_release(a);
  rl_release(y);
  return fit(&gin[0], r, &n->meta[0]);
}

/* ---- the half types: computed in f32, the result rounded once ----------
 *
 * The casts are ops of their own, so autograd sees bf16 -> f32 -> op ->
 * bf16 (f16 likewise) and the gradient takes the same path back.
 *
 * Some ops run on the half type directly instead (native): one pass, each
 * element widened, computed by the f32 formula and rounded once, with no
 * f32 copies, so their values are the cast path's to the bit.
 *
 * On the CPU, the ops of a bf16 network's hot path: relu, its gradient,
 * add and sub of two bf16 tensors; and relu and its gradient on f16, so
 * that relu saves its output on both devices for either half type (an
 * in-place edit of that output is then refused alike).  Their gradients
 * are the cast path's too: relu's and relu_bwd's results are exact in the
 * half type, add's and sub's gradients are the incoming one (times alpha,
 * which the cast path also rounds once).
 *
 * On a GPU (kernels/cuda_pointwise.cu), every unary, binary and ternary op
 * on operands of one half type when it records no node: the comparisons
 * and isnan (u8 out) always, the rest under grad mode off or with no
 * operand requiring grad (inference, the backward rules themselves,
 * in-place updates).  An op that records a node runs natively only where
 * its gradient, computed natively, is the CPU's to the bit: bf16's add,
 * sub and relu_bwd, as on the CPU, and on either half type the unary ops
 * whose rule reads neither the input nor a rounded output (relu's output
 * is exact; neg and affine scale the incoming gradient, rounded once as
 * in f32; fmod and remainder pass it; sign, floor, ceil and round give
 * zeros).  The others take the cast path, as on the CPU: exp's rule, say,
 * would read its rounded output where the cast path reads the f32 one,
 * and mul's (or f16 add's, by an alpha) would round each element of a
 * broadcast operand's gradient before summing it.  logical_not still
 * wants u8, and logical_and/or compare half operands with zero as before. */

/* Whether an op on these operands records a node (rl_record's rule). */
static bool records(const rl_tensor *a, const rl_tensor *b, const rl_tensor *c) {
  const rl_tensor *in[3] = {a, b, c};
  return rl_would_record(3, in);
}

static bool half_native_unary(rl_unary_op op, const rl_tensor *a) {
  if (!rl_dtype_is_half(a->dtype) || op == RL_UN_NOT) return false;
  if (rl_dev(a)->type == RL_CPU) return op == RL_UN_RELU;
  switch (op) {
  case RL_UN_RELU: case RL_UN_NEG: case RL_UN_AFFINE: case RL_UN_FMOD: case RL_UN_REMS:
  case RL_UN_SIGN: case RL_UN_FLOOR: case RL_UN_CEIL: case RL_UN_ROUND:
    return true;
  default:
    return unary_is_cmp(op) || !records(a, NULL, NULL);
  }
}

static bool half_native_binary(rl_binary_op op, const rl_tensor *a, const rl_tensor *b) {
  if (!rl_dtype_is_half(a->dtype) || b->dtype != a->dtype || binary_is_logical(op)) return false;
  bool hot = op == RL_BIN_RELU_BWD ||
             (a->dtype == RL_BF16 && (op == RL_BIN_ADD || op == RL_BIN_SUB));
  if (rl_dev(a)->type == RL_CPU) return hot;
  return hot || binary_is_cmp(op) || !records(a, b, NULL);
}

/* Ternary ops: on a GPU only, and only when they record no node.  For
 * where, a is the u8 condition. */
static bool half_native_ternary(rl_ternary_op op, const rl_tensor *a, const rl_tensor *b,
                                const rl_tensor *c) {
  rl_dtype dt = b->dtype;
  return rl_dev(b)->type != RL_CPU && rl_dtype_is_half(dt) && c->dtype == dt &&
         (op == RL_TER_WHERE || a->dtype == dt) && !records(a, b, c);
}

rl_tensor *rl_in_f32(rl_tensor *t) {
  if (rl_dtype_is_half(t->dtype)) return rl_to_dtype(t, RL_F32);
  rl_retain(t);
  return t;
}

rl_tensor *rl_out_half(rl_tensor *r, rl_dtype half) {
  if (!r || r->dtype != RL_F32) return r;
  rl_tensor *o = rl_to_dtype(r, half);
  rl_release(r);
  return o;
}

/* An operand of an op whose result is the half type `half`, in f32: a float
 * one as it is (rl_in_f32), an integer one rounded to `half` first, as
 * PyTorch converts it (bf16 1 + i64 257 adds 1 + 256 and gives 256, not
 * the 258 that the exact 257 would round to). */
static rl_tensor *half_operand(rl_tensor *t, rl_dtype half) {
  if (rl_dtype_is_floating(t->dtype)) return rl_in_f32(t);
  rl_tensor *h = rl_to_dtype(t, half), *f = h ? rl_in_f32(h) : NULL;
  if (h) rl_release(h);
  return f;
}

/* The in-place forms on a half type: the out-of-place result r copied into
 * a (rounded there); r is released. */
static int store_into(rl_tensor *a, rl_tensor *r) {
  if (!r) return -1;
  int rc = rl_copy_(a, r);
  rl_release(r);
  return rc;
}

static int unary_into(rl_unary_op op, rl_tensor *out, rl_tensor *a, double p0, double p1) {
  double p[2] = {p0, p1};
  rl_tensor *args[2] = {out, a};
  rl_iter it;
  rl_iter_build(&it, 2, args);
  if (RL_BE(a)->unary(op, &it, p)) return rl_err_prefix(unary_name[op]);
  return 0;
}

rl_tensor *rl_unary(rl_unary_op op, rl_tensor *a, double p0, double p1) {
  if (!a) return NULL; /* lets backward rules chain calls */
  if ((int)op < 0 || op >= RL_UN_COUNT) {
    rl_err("unary: unknown op %d", (int)op);
    return NULL;
  }
  const char *name = unary_name[op];
  bool native = half_native_unary(op, a);
  if (rl_dtype_is_half(a->dtype) && op != RL_UN_NOT && !native) {
    rl_tensor *af = rl_in_f32(a), *r = af ? rl_unary(op, af, p0, p1) : NULL;
    rl_release(af);
    return rl_out_half(r, a->dtype);
  }
  rl_tensor *x = a;
  if (native) {
    rl_retain(x);
  } else if (op == RL_UN_NOT) {
    if (rl_check_dtype(name, "input", a, RL_U8)) return NULL;
    rl_retain(x);
  } else if (!rl_dtype_is_float(a->dtype) && !unary_int_ok(op)) {
    x = rl_to_dtype(a, RL_F32);
  } else if (a->dtype == RL_U8 && !unary_is_cmp(op) &&
             (op == RL_UN_NEG || op == RL_UN_ABS || op == RL_UN_SIGN ||
              op == RL_UN_SQUARE || op == RL_UN_RELU || op == RL_UN_FMOD ||
              op == RL_UN_REMS)) {
    x = rl_to_dtype(a, RL_I64);
  } else {
    rl_retain(x);
  }
  if (!x) return NULL;
  if ((op == RL_UN_FMOD || op == RL_UN_REMS) && !rl_dtype_is_floating(x->dtype) && p0 == 0) {
    rl_release(x);
    rl_err("%s: integer division by zero", name);
    return NULL;
  }
  rl_dtype odt = unary_is_cmp(op) ? RL_U8 : x->dtype;
  rl_tensor *out = rl_empty(x->ndim, x->size, odt, rl_dev(x));
  if (!out || unary_into(op, out, x, p0, p1)) {
    rl_release(out);
    rl_release(x);
    return NULL;
  }
  if (rl_dtype_is_floating(odt)) {
    rl_node *n = rl_record(name, unary_bwd, out, 1, &x);
    if (n) {
      n->ip[0] = op;
      n->p[0] = p0;
      n->p[1] = p1;
      bool sin_, sout;
      unary_saves(op, &sin_, &sout);
      if ((sin_ ? rl_node_save(n, x) : rl_node_skip(n)) ||
          (sout ? rl_node_save(n, out) : rl_node_skip(n))) {
        rl_release(out);
        rl_release(x);
        return NULL;
      }
    }
  }
  rl_release(x);
  return out;
}

int rl_unary_(rl_unary_op op, rl_tensor *a, double p0, double p1) {
  if ((int)op < 0 || op >= RL_UN_COUNT) return rl_err("unary: unknown op %d", (int)op);
  char buf[32];
  const char *name = inplace_name(unary_name[op], buf, sizeof buf);
  if (rl_check_inplace(name, a, NULL)) return -1;
  if (unary_is_cmp(op))
    return rl_err("%s: comparisons write u8; use the out-of-place form", name);
  bool native = half_native_unary(op, a);
  if (rl_dtype_is_half(a->dtype) && op != RL_UN_NOT && !native)
    return store_into(a, rl_unary(op, a, p0, p1));
  if (!native && !rl_dtype_is_float(a->dtype) && !unary_int_ok(op))
    return rl_err("%s: needs a float tensor, got %s (the result would not fit)", name,
                  rl_dtype_name(a->dtype));
  if (op == RL_UN_NOT && a->dtype != RL_U8)
    return rl_err("%s: needs a u8 tensor, got %s", name, rl_dtype_name(a->dtype));
  if (unary_into(op, a, a, p0, p1)) return -1;
  rl_bump_version(a);
  return 0;
}

/* ---- binary -------------------------------------------------------------- */

/* What a binary backward rule reads: a, b and the output y. */
static void binary_saves(rl_binary_op op, bool *sa, bool *sb, bool *sy) {
  *sa = op != RL_BIN_ADD && op != RL_BIN_SUB && op != RL_BIN_DIV;
  *sb = op != RL_BIN_ADD && op != RL_BIN_SUB;
  *sy = op == RL_BIN_DIV || op == RL_BIN_POW || op == RL_BIN_FMOD || op == RL_BIN_REMAINDER;
}

static int binary_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_binary_op op = (rl_binary_op)n->ip[0];
  double alpha = n->p[0];
  bool sa, sb, sy;
  binary_saves(op, &sa, &sb, &sy);
  rl_tensor *a = sa ? rl_node_saved(n, 0) : NULL, *b = sb ? rl_node_saved(n, 1) : NULL;
  rl_tensor *y = sy ? rl_node_saved(n, 2) : NULL;
  int rc = -1;
  if ((sa && !a) || (sb && !b) || (sy && !y)) goto out;
  rl_tensor *ga = NULL, *gb = NULL;
  switch (op) {
  case RL_BIN_ADD: case RL_BIN_SUB:
    if (n->need[0]) { rl_retain(g); ga = g; }
    if (n->need[1]) gb = un(RL_UN_AFFINE, g, op == RL_BIN_ADD ? alpha : -alpha, 0);
    break;
  case RL_BIN_MUL:
    if (n->need[0]) ga = bin(RL_BIN_MUL, g, b);
    if (n->need[1]) gb = bin(RL_BIN_MUL, g, a);
    break;
  case RL_BIN_DIV:
    if (n->need[0]) ga = bin(RL_BIN_DIV, g, b);
    if (n->need[1]) {
      rl_tensor *q = bin(RL_BIN_DIV, y, b);
      gb = q ? bin(RL_BIN_MUL, g, q) : NULL;
      rl_release(q);
      if (gb && rl_unary_(RL_UN_NEG, gb, 0, 0)) { rl_release(gb); gb = NULL; }
    }
    break;
  case RL_BIN_POW:
    if (n->need[0]) { /* b * a^(b-1), zero where b == 0 (not 0 * 0^-1 = NaN) */
      rl_tensor *bm1 = un(RL_UN_AFFINE, b, 1, -1);
      rl_tensor *p = bm1 ? bin(RL_BIN_POW, a, bm1) : NULL;
      rl_tensor *f = p ? bin(RL_BIN_MUL, p, b) : NULL;
      rl_tensor *z = un(RL_UN_EQ_S, b, 0, 0);
      if (f && (!z || rl_masked_fill_(f, z, 0))) rl_release_all(1, &f);
      rl_release(bm1);
      rl_release(p);
      rl_release(z);
      ga = mul_take(g, f);
    }
    if (n->need[1]) { /* y * log(a), zero where a == 0 and b >= 0 (y is 0 or 1) */
      rl_tensor *la = un(RL_UN_LOG, a, 0, 0);
      rl_tensor *f = la ? bin(RL_BIN_MUL, y, la) : NULL;
      rl_tensor *z = un(RL_UN_EQ_S, a, 0, 0), *nn = un(RL_UN_GE_S, b, 0, 0);
      rl_tensor *m = z && nn ? bin(RL_BIN_AND, z, nn) : NULL;
      if (f && (!m || rl_masked_fill_(f, m, 0))) rl_release_all(1, &f);
      rl_release(la);
      rl_release(z);
      rl_release(nn);
      rl_release(m);
      gb = mul_take(g, f);
    }
    break;
  case RL_BIN_MAX: case RL_BIN_MIN: {
    /* the larger (smaller) operand takes the gradient; ties split it */
    rl_tensor *half = un(RL_UN_AFFINE, g, 0.5, 0);
    rl_tensor *eq = bin(RL_BIN_EQ, a, b);
    rl_tensor *wa = bin(op == RL_BIN_MAX ? RL_BIN_GT : RL_BIN_LT, a, b);
    rl_tensor *wb = bin(op == RL_BIN_MAX ? RL_BIN_LT : RL_BIN_GT, a, b);
    rl_tensor *z = rl_zeros(0, NULL, g->dtype, rl_dev(g));
    if (half && eq && wa && wb && z) {
      rl_tensor *tie = rl_where(eq, half, z);
      if (tie && n->need[0]) ga = rl_where(wa, g, tie);
      if (tie && n->need[1]) gb = rl_where(wb, g, tie);
      rl_release(tie);
    }
    rl_release(half);
    rl_release(eq);
    rl_release(wa);
    rl_release(wb);
    rl_release(z);
    break;
  }
  case RL_BIN_FMOD: case RL_BIN_REMAINDER:
    if (n->need[0]) { rl_retain(g); ga = g; }
    if (n->need[1]) { /* -g * q with q = (a - y) / b: trunc(a/b), or floor for remainder */
      rl_tensor *d = bin(RL_BIN_SUB, a, y);
      rl_tensor *q = d ? bin(RL_BIN_DIV, d, b) : NULL;
      rl_release(d);
      gb = mul_take(g, un(RL_UN_NEG, q, 0, 0));
      rl_release(q);
    }
    break;
  default:
    rl_err("%s: no gradient", binary_name[op]);
    goto out;
  }
  rc = 0;
  if (n->need[0] && fit(&gin[0], ga, &n->meta[0])) rc = -1;
  if (n->need[1] && fit(&gin[1], gb, &n->meta[1])) rc = -1;
out:
  rl_release(a);
  rl_release(b);
  rl_release(y);
  return rc;
}

/* Run a binary kernel: out <- op(a, b), a and b of one dtype. */
static int binary_into(rl_binary_op op, rl_tensor *out, rl_tensor *a, rl_tensor *b,
                       double alpha) {
  rl_tensor *args[3] = {out, a, b};
  rl_iter it;
  rl_iter_build(&it, 3, args);
  if (RL_BE(a)->binary(op, &it, alpha)) return rl_err_prefix(binary_name[op]);
  return 0;
}

/* An operand in the compute dtype; logical ops test for nonzero instead of
 * converting (0.5 is true). */
static rl_tensor *as_operand(rl_binary_op op, rl_tensor *t, rl_dtype dt) {
  if (binary_is_logical(op) && t->dtype != RL_U8) return rl_unary(RL_UN_NE_S, t, 0, 0);
  return rl_as_dtype(t, dt);
}

/* Integer fmod/remainder by a zero divisor is an error (floats give nan). */
static int integer_divisor_zero(const char *name, rl_binary_op op, rl_dtype dt, rl_tensor *b) {
  if ((op != RL_BIN_FMOD && op != RL_BIN_REMAINDER) || rl_dtype_is_floating(dt)) return 0;
  bool prev = rl_set_grad_enabled(false);
  rl_tensor *z = rl_unary(RL_UN_EQ_S, b, 0, 0);
  rl_tensor *any = z ? rl_reduce(RL_RED_ANY, z, 0, NULL, false) : NULL;
  double v = 0;
  int rc = any && !rl_item(any, &v) ? 0 : -1;
  rl_set_grad_enabled(prev);
  if (z) rl_release(z);
  if (any) rl_release(any);
  if (rc) return -1;
  return v != 0 ? rl_err("%s: integer division by zero", name) : 0;
}

/* Integer pow by a negative exponent is an error, as PyTorch's ("Integers
 * to negative integer powers are not allowed"): 2^-1 has no integer value. */
static int integer_negative_power(const char *name, rl_binary_op op, rl_dtype dt,
                                  rl_tensor *b) {
  if (op != RL_BIN_POW || rl_dtype_is_floating(dt) || b->dtype == RL_U8 || rl_numel(b) == 0)
    return 0;
  bool prev = rl_set_grad_enabled(false);
  rl_tensor *lo = rl_reduce(RL_RED_MIN, b, 0, NULL, false);
  double v = 0;
  int rc = lo && !rl_item(lo, &v) ? 0 : -1;
  rl_set_grad_enabled(prev);
  if (lo) rl_release(lo);
  if (rc) return -1;
  return v < 0 ? rl_err("%s: integers to negative integer powers are not allowed, got "
                        "exponent %.0f", name, v)
               : 0;
}

/* The dtype both operands compute in. */
static rl_dtype binary_dtype(rl_binary_op op, rl_dtype a, rl_dtype b) {
  if (binary_is_logical(op)) return RL_U8;
  rl_dtype dt = rl_dtype_promote(a, b);
  if (binary_needs_real(op) && !rl_dtype_is_floating(dt)) return RL_F32;
  if (dt == RL_U8 && (op == RL_BIN_SUB || op == RL_BIN_FMOD || op == RL_BIN_REMAINDER))
    return RL_I64;
  return dt;
}

rl_tensor *rl_binary(rl_binary_op op, rl_tensor *a, rl_tensor *b, double alpha) {
  if (!a || !b) return NULL;
  if ((int)op < 0 || op >= RL_BIN_COUNT) {
    rl_err("binary: unknown op %d", (int)op);
    return NULL;
  }
  const char *name = binary_name[op];
  rl_tensor *ab[2] = {a, b};
  int nd;
  int64_t size[RL_MAX_DIMS];
  if (rl_check_same_device(name, 2, ab) || rl_broadcast_shape(name, 2, ab, &nd, size))
    return NULL;
  rl_dtype dt = binary_dtype(op, a->dtype, b->dtype);
  if (rl_dtype_is_half(dt) && !half_native_binary(op, a, b)) {
    rl_tensor *af = half_operand(a, dt), *bf = af ? half_operand(b, dt) : NULL;
    rl_tensor *r = bf ? rl_binary(op, af, bf, alpha) : NULL;
    rl_release(af);
    rl_release(bf);
    return rl_out_half(r, dt);
  }
  if (integer_divisor_zero(name, op, dt, b) || integer_negative_power(name, op, dt, b))
    return NULL;
  rl_tensor *x = as_operand(op, a, dt), *y = x ? as_operand(op, b, dt) : NULL;
  rl_dtype odt = binary_is_cmp(op) || binary_is_logical(op) ? RL_U8 : dt;
  rl_tensor *out = y ? rl_empty(nd, size, odt, rl_dev(a)) : NULL;
  if (!out || binary_into(op, out, x, y, alpha)) goto fail;
  if (rl_dtype_is_floating(odt) && op < RL_BIN_EQ) {
    rl_tensor *in[2] = {x, y};
    rl_node *n = rl_record(name, binary_bwd, out, 2, in);
    if (n) {
      n->ip[0] = op;
      n->p[0] = alpha;
      bool sa, sb, sy;
      binary_saves(op, &sa, &sb, &sy);
      if ((sa ? rl_node_save(n, x) : rl_node_skip(n)) ||
          (sb ? rl_node_save(n, y) : rl_node_skip(n)) ||
          (sy ? rl_node_save(n, out) : rl_node_skip(n)))
        goto fail;
    }
  }
  rl_release(x);
  rl_release(y);
  return out;
fail:
  rl_release(out);
  rl_release(x);
  rl_release(y);
  return NULL;
}

/* Checks shared by the in-place forms: `a` is written, `b` broadcasts into it
 * and converts to a's dtype without losing the result's kind. */
static rl_tensor *inplace_operand(const char *name, rl_tensor *a, rl_tensor *b,
                                  rl_dtype compute) {
  rl_tensor *ab[2] = {a, b};
  int nd;
  int64_t size[RL_MAX_DIMS];
  if (rl_check_same_device(name, 2, ab) || rl_broadcast_shape(name, 2, ab, &nd, size))
    return NULL;
  if (nd != a->ndim || memcmp(size, a->size, sizeof(int64_t) * (size_t)nd)) {
    rl_err("%s: the result has shape %s but the tensor written in place has shape %s",
           name, rl_sizes_str(nd, size), rl_shape_str(a));
    return NULL;
  }
  if (rl_dtype_is_floating(compute) && !rl_dtype_is_floating(a->dtype)) {
    rl_err("%s: the result type %s cannot be stored in place in a %s tensor", name,
           rl_dtype_name(compute), rl_dtype_name(a->dtype));
    return NULL;
  }
  /* an operand that overlaps the destination differently is read first */
  if (b->st == a->st && (b->offset != a->offset || !rl_same_shape(a, b) ||
                         memcmp(a->stride, b->stride, sizeof(int64_t) * (size_t)a->ndim))) {
    rl_tensor *d = rl_detach(b), *c = d ? rl_clone(d) : NULL;
    rl_release(d);
    if (!c) return NULL;
    rl_tensor *r = rl_as_dtype(c, a->dtype);
    rl_release(c);
    return r;
  }
  return rl_as_dtype(b, a->dtype);
}

int rl_binary_(rl_binary_op op, rl_tensor *a, rl_tensor *b, double alpha) {
  if ((int)op < 0 || op >= RL_BIN_COUNT) return rl_err("binary: unknown op %d", (int)op);
  char buf[32];
  const char *name = inplace_name(binary_name[op], buf, sizeof buf);
  if (binary_is_cmp(op)) return rl_err("%s: comparisons write u8; use the out-of-place form", name);
  if (rl_check_inplace(name, a, b)) return -1;
  rl_dtype compute = binary_dtype(op, a->dtype, b->dtype);
  if (binary_is_logical(op) && a->dtype != RL_U8)
    return rl_err("%s: needs a u8 tensor, got %s", name, rl_dtype_name(a->dtype));
  if (integer_divisor_zero(name, op, compute, b) ||
      integer_negative_power(name, op, compute, b))
    return -1;
  rl_tensor *nz = binary_is_logical(op) && b->dtype != RL_U8 ? as_operand(op, b, RL_U8) : NULL;
  rl_tensor *y = inplace_operand(name, a, nz ? nz : b, compute);
  if (nz) rl_release(nz);
  if (!y) return -1;
  if (rl_dtype_is_half(a->dtype)) { /* computed as a op b would be, then stored */
    rl_release(y);
    return store_into(a, rl_binary(op, a, b, alpha));
  }
  int rc = binary_into(op, a, a, y, alpha);
  rl_release(y);
  if (rc == 0) rl_bump_version(a);
  return rc;
}

/* ---- ternary ------------------------------------------------------------- */

static int ternary_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_ternary_op op = (rl_ternary_op)n->ip[0];
  double p0 = n->p[0];
  rl_tensor *a = rl_node_saved(n, 0), *b = rl_node_saved(n, 1), *c = rl_node_saved(n, 2);
  rl_tensor *gr[3] = {NULL, NULL, NULL};
  int rc = -1;
  if (!a || !b || !c) goto out;
  switch (op) {
  case RL_TER_WHERE: {
    rl_tensor *z = rl_zeros(0, NULL, g->dtype, rl_dev(g));
    if (!z) goto out;
    if (n->need[1]) gr[1] = rl_where(a, g, z);
    if (n->need[2]) gr[2] = rl_where(a, z, g);
    rl_release(z);
    break;
  }
  case RL_TER_FMA:
    if (n->need[0]) gr[0] = bin(RL_BIN_MUL, g, b);
    if (n->need[1]) gr[1] = bin(RL_BIN_MUL, g, a);
    if (n->need[2]) { rl_retain(g); gr[2] = g; }
    break;
  case RL_TER_ADDCMUL:
    if (n->need[0]) { rl_retain(g); gr[0] = g; }
    if (n->need[1]) gr[1] = mul_take(g, un(RL_UN_AFFINE, c, p0, 0));
    if (n->need[2]) gr[2] = mul_take(g, un(RL_UN_AFFINE, b, p0, 0));
    break;
  case RL_TER_ADDCDIV:
    if (n->need[0]) { rl_retain(g); gr[0] = g; }
    if (n->need[1]) gr[1] = mul_take(g, un(RL_UN_RDIV, c, p0, 0));
    if (n->need[2]) { /* -p0 * b / c^2 */
      rl_tensor *c2 = un(RL_UN_SQUARE, c, 0, 0);
      rl_tensor *q = c2 ? bin(RL_BIN_DIV, b, c2) : NULL;
      rl_release(c2);
      gr[2] = mul_take(g, un(RL_UN_AFFINE, q, -p0, 0));
      rl_release(q);
    }
    break;
  case RL_TER_LERP:
    if (n->need[0]) gr[0] = un(RL_UN_AFFINE, g, 1 - p0, 0);
    if (n->need[1]) gr[1] = un(RL_UN_AFFINE, g, p0, 0);
    if (n->need[2]) gr[2] = rl_zeros_meta(&n->meta[2]); /* c is unused */
    break;
  case RL_TER_CLAMP: {
    rl_tensor *below = bin(RL_BIN_LT, a, b), *above = bin(RL_BIN_GT, a, c);
    rl_tensor *out = below && above ? bin(RL_BIN_OR, below, above) : NULL;
    rl_tensor *z = rl_zeros(0, NULL, g->dtype, rl_dev(g));
    if (out && z) {
      if (n->need[0]) gr[0] = rl_where(out, z, g);
      if (n->need[1]) gr[1] = rl_where(below, g, z);
      if (n->need[2]) gr[2] = rl_where(above, g, z);
    }
    rl_release(below);
    rl_release(above);
    rl_release(out);
    rl_release(z);
    break;
  }
  default:
    rl_err("ternary op %d: no gradient", (int)op); /* every op has a case above */
    goto out;
  }
  rc = 0;
  for (int i = 0; i < 3; i++)
    if (n->need[i] && fit(&gin[i], gr[i], &n->meta[i])) rc = -1;
out:
  rl_release(a);
  rl_release(b);
  rl_release(c);
  return rc;
}

static int ternary_into(rl_ternary_op op, rl_tensor *out, rl_tensor *a, rl_tensor *b,
                        rl_tensor *c, const double *p) {
  rl_tensor *args[4] = {out, a, b, c};
  rl_iter it;
  rl_iter_build(&it, 4, args);
  if (RL_BE(b)->ternary(op, &it, p)) return rl_err_prefix(ternary_name[op]);
  return 0;
}

rl_tensor *rl_ternary(rl_ternary_op op, rl_tensor *a, rl_tensor *b, rl_tensor *c,
                      const double *p) {
  if (!a || !b || !c) return NULL;
  if ((int)op < 0 || op >= RL_TER_COUNT) {
    rl_err("ternary: unknown op %d", (int)op);
    return NULL;
  }
  const char *name = ternary_name[op];
  static const double zero[4] = {0, 0, 0, 0};
  if (!p) p = zero;
  rl_tensor *abc[3] = {a, b, c};
  int nd;
  int64_t size[RL_MAX_DIMS];
  if (rl_check_same_device(name, 3, abc) || rl_broadcast_shape(name, 3, abc, &nd, size))
    return NULL;
  rl_dtype dt = rl_dtype_promote(b->dtype, c->dtype);
  if (op == RL_TER_WHERE) {
    if (a->dtype != RL_U8) {
      rl_err("where: the condition must be u8 (a comparison's result), got %s",
             rl_dtype_name(a->dtype));
      return NULL;
    }
  } else {
    dt = rl_dtype_promote(a->dtype, dt);
    if (op != RL_TER_CLAMP && !rl_dtype_is_floating(dt)) dt = RL_F32;
  }
  if (rl_dtype_is_half(dt) && !half_native_ternary(op, a, b, c)) {
    rl_tensor *af = op == RL_TER_WHERE ? (rl_retain(a), a) : half_operand(a, dt);
    rl_tensor *bf = af ? half_operand(b, dt) : NULL, *cf = bf ? half_operand(c, dt) : NULL;
    rl_tensor *r = cf ? rl_ternary(op, af, bf, cf, p) : NULL;
    rl_release(af);
    rl_release(bf);
    rl_release(cf);
    return rl_out_half(r, dt);
  }
  rl_tensor *x = op == RL_TER_WHERE ? (rl_retain(a), a) : rl_as_dtype(a, dt);
  rl_tensor *y = x ? rl_as_dtype(b, dt) : NULL, *z = y ? rl_as_dtype(c, dt) : NULL;
  rl_tensor *out = z ? rl_empty(nd, size, dt, rl_dev(b)) : NULL;
  if (!out || ternary_into(op, out, x, y, z, p)) goto fail;
  if (rl_dtype_is_floating(dt)) {
    rl_tensor *in[3] = {x, y, z};
    rl_node *n = rl_record(name, ternary_bwd, out, 3, in);
    if (n) {
      n->ip[0] = op;
      memcpy(n->p, p, sizeof(double) * 4);
      if (rl_node_save(n, x) || rl_node_save(n, y) || rl_node_save(n, z)) goto fail;
    }
  }
  rl_release(x);
  rl_release(y);
  rl_release(z);
  return out;
fail:
  rl_release(out);
  rl_release(x);
  rl_release(y);
  rl_release(z);
  return NULL;
}

int rl_ternary_(rl_ternary_op op, rl_tensor *a, rl_tensor *b, rl_tensor *c,
                const double *p) {
  if ((int)op < 0 || op >= RL_TER_COUNT || op == RL_TER_WHERE)
    return rl_err("ternary_: op %d has no in-place form", (int)op);
  char buf[32];
  const char *name = inplace_name(ternary_name[op], buf, sizeof buf);
  static const double zero[4] = {0, 0, 0, 0};
  if (!p) p = zero;
  if (rl_check_inplace(name, a, b) || rl_check_inplace(name, a, c)) return -1;
  if (rl_dtype_is_half(a->dtype)) return store_into(a, rl_ternary(op, a, b, c, p));
  rl_tensor *y = inplace_operand(name, a, b, b->dtype);
  rl_tensor *z = y ? inplace_operand(name, a, c, c->dtype) : NULL;
  int rc = z ? ternary_into(op, a, a, y, z, p) : -1;
  rl_release(y);
  rl_release(z);
  if (rc == 0) rl_bump_version(a);
  return rc;
}

/* ---- named forms --------------------------------------------------------- */

rl_tensor *rl_add(rl_tensor *a, rl_tensor *b) { return rl_binary(RL_BIN_ADD, a, b, 1.0); }
rl_tensor *rl_sub(rl_tensor *a, rl_tensor *b) { return rl_binary(RL_BIN_SUB, a, b, 1.0); }
rl_tensor *rl_mul(rl_tensor *a, rl_tensor *b) { return rl_binary(RL_BIN_MUL, a, b, 1.0); }
rl_tensor *rl_div(rl_tensor *a, rl_tensor *b) { return rl_binary(RL_BIN_DIV, a, b, 1.0); }
rl_tensor *rl_mul_scalar(rl_tensor *a, double s) { return rl_unary(RL_UN_AFFINE, a, s, 0); }
rl_tensor *rl_neg(rl_tensor *a) { return rl_unary(RL_UN_NEG, a, 0, 0); }
rl_tensor *rl_relu(rl_tensor *a) { return rl_unary(RL_UN_RELU, a, 0, 0); }

rl_tensor *rl_where(rl_tensor *cond, rl_tensor *a, rl_tensor *b) {
  return rl_ternary(RL_TER_WHERE, cond, a, b, NULL);
}

/* mask must broadcast to x's own shape. */
static int check_mask(const char *op, rl_tensor *x, rl_tensor *mask) {
  if (rl_check_dtype(op, "mask", mask, RL_U8)) return -1;
  rl_tensor *xm[2] = {x, mask};
  int nd;
  int64_t size[RL_MAX_DIMS];
  if (rl_check_same_device(op, 2, xm) || rl_broadcast_shape(op, 2, xm, &nd, size)) return -1;
  if (nd != x->ndim || memcmp(size, x->size, sizeof(int64_t) * (size_t)nd))
    return rl_err("%s: mask of shape %s does not broadcast to the input's shape %s", op,
                  rl_shape_str(mask), rl_shape_str(x));
  return 0;
}

rl_tensor *rl_masked_fill(rl_tensor *x, rl_tensor *mask, double v) {
  if (!x || !mask || check_mask("masked_fill", x, mask)) return NULL;
  rl_tensor *s = rl_scalar(v, x->dtype, rl_dev(x));
  rl_tensor *r = s ? rl_where(mask, s, x) : NULL;
  rl_release(s);
  return r;
}

int rl_masked_fill_(rl_tensor *x, rl_tensor *mask, double v) {
  if (check_mask("masked_fill_", x, mask) || rl_check_inplace("masked_fill_", x, NULL))
    return -1;
  if (rl_dtype_is_half(x->dtype)) return store_into(x, rl_masked_fill(x, mask, v));
  rl_tensor *s = rl_scalar(v, x->dtype, rl_dev(x));
  if (!s) return -1;
  rl_tensor *args[4] = {x, mask, s, x};
  rl_iter it;
  rl_iter_build(&it, 4, args);
  int rc = RL_BE(x)->ternary(RL_TER_WHERE, &it, NULL);
  rl_release(s);
  if (rc) return rl_err_prefix("masked_fill_");
  rl_bump_version(x);
  return 0;
}
