/* cpu_dnnl.c - oneDNN's f32 and bf16 convolutions as one more candidate of
 * the measured choice (cpu_conv.c's run_chosen).
 *
 * oneDNN (Debian's libdnnl 2.6, the library PyTorch runs these layers on)
 * computes in its own blocked layouts (nChw16c, OIhw16i16o, ...).  Each
 * pass is one primitive created with "any" layouts: the operands are
 * reordered from rllua's NCHW / OIHW into the layouts it picked, and the
 * result back, as PyTorch does.  A primitive is made once per shape, pass
 * and thread count and kept for the process.
 *
 * Determinism: the forward and dx kernels oneDNN picks keep each output's
 * sum (over the input channels; for dx over the output channels) in one
 * thread, in a fixed order, so their bits do not depend on the thread
 * count: observed for every shape tried, not promised by oneDNN, so the
 * spec below checks it on each build.  Its weight gradient splits the batch across
 * the threads and adds the parts in an order that does (PyTorch's dW
 * changes in its last bits between 1, 2 and 3 threads).  rllua promises
 * the same bits on any thread count, so dW and db are formed here the way
 * the engine's own dW is: the batch in groups fixed by N alone, each
 * group's partial by a one-thread oneDNN primitive (the threads take the
 * groups), and the partials summed in group order in f64.
 * spec/cpu_tune_spec.lua checks the bits on 1, 2 and 3 threads.
 *
 * bf16 (rl.autocast's convolutions): the operands and results are bf16 in
 * rllua's layouts, the reorders keep bf16, and oneDNN sums in f32 (its
 * avx512_core_bf16 kernels, vdpbf16ps, where the processor has AVX-512
 * BF16; elsewhere on AVX-512 its emulation).  dW and db come out of each
 * group in f32, are summed as in f32 and rounded to bf16 once.  A bf16
 * primitive that would be one of oneDNN's reference (C loop) kernels, as on
 * a processor without AVX-512, is refused, so that the other candidates
 * (f32 kernels on the widened operands, cpu_conv.c) take the pass.
 *
 * Built when the headers are present (RL_HAVE_DNNL, see the Makefile); without
 * them rl_cpu_dnnl_fits says no and the other candidates remain. */
#include "cpu_dnnl.h"

#include <stdio.h>

#include "cpu.h"

#ifdef RL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* One operand of a pass: its argument slot, rllua's layout, and the
 * reorder into (input) or out of (output) the layout oneDNN chose. */
typedef struct {
  int arg;
  bool out;
  dnnl_memory_desc_t plain, want;
  dnnl_primitive_t reorder; /* NULL when the layouts agree */
  size_t bytes;             /* of the blocked copy */
} dn_operand;

typedef struct dn_prim {
  rl_dnnl_pass pass;
  bool wino; /* oneDNN's Winograd (F(4x4, 3x3)), else its direct convolution */
  bool bf16; /* bf16 operands and results (dW's partials and db f32), else f32 */
  int64_t N, C, H, W, O, g[G_N];
  bool bias;
  int nthr;
  bool ok; /* false: oneDNN has no primitive for this shape */
  dnnl_primitive_t prim;
  dn_operand ops[3];
  int nops;
  size_t scratch;
  char impl[64];
  struct dn_prim *next;
} dn_prim;

/* The engine, primitives and streams are made and looked up on the
 * calling thread only (the engine's ops run on one thread; only the
 * OpenMP workers of a dW run their groups, on primitives made before). */
static dnnl_engine_t engine;
static int engine_state; /* 0: not tried, 1: up, -1: failed */
static dn_prim *prims;
/* One stream per thread of the engine's team (a stream is not shared
 * between threads); made on the main thread before a parallel region. */
#define DN_STREAMS 256
static dnnl_stream_t streams[DN_STREAMS];

static bool engine_up(void) {
  if (engine_state == 0)
    engine_state = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success ? 1 : -1;
  return engine_state == 1;
}

/* Streams 0 .. n-1 exist (n at most DN_STREAMS). */
static bool streams_up(int n) {
  for (int i = 0; i < n; i++)
    if (!streams[i] && dnnl_stream_create(&streams[i], engine, dnnl_stream_default_flags))
      return false;
  return true;
}

static void md4(dnnl_memory_desc_t *md, int64_t a, int64_t b, int64_t c, int64_t d,
                dnnl_data_type_t dt, dnnl_format_tag_t tag) {
  dnnl_dims_t dims = {a, b, c, d};
  dnnl_memory_desc_init_by_tag(md, 4, dims, dt, tag);
}

/* The bias's (forward) or its gradient's (weights) type: the gradient's
 * group partials are f32. */
static dnnl_data_type_t bias_type(const dn_prim *p) {
  return p->bf16 && p->pass == RL_DNNL_FWD ? dnnl_bf16 : dnnl_f32;
}

/* The operand's layouts; a reorder where oneDNN chose another. */
static bool operand(dn_operand *op, int arg, bool out, const dnnl_memory_desc_t *plain,
                    const dnnl_memory_desc_t *want) {
  op->arg = arg;
  op->out = out;
  op->plain = *plain;
  op->want = *want;
  op->reorder = NULL;
  op->bytes = 0;
  if (dnnl_memory_desc_equal(plain, want)) return true;
  op->bytes = rl_cpu_round64(dnnl_memory_desc_get_size(want));
  dnnl_primitive_desc_t rpd;
  const dnnl_memory_desc_t *from = out ? want : plain, *to = out ? plain : want;
  if (dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL) != dnnl_success)
    return false;
  dnnl_status_t st = dnnl_primitive_create(&op->reorder, rpd);
  dnnl_primitive_desc_destroy(rpd);
  if (st != dnnl_success) op->reorder = NULL;
  return st == dnnl_success;
}

/* Destroy what make() made of p. */
static void unmake(dn_prim *p) {
  for (int i = 0; i < p->nops; i++)
    if (p->ops[i].reorder) dnnl_primitive_destroy(p->ops[i].reorder);
  if (p->prim) dnnl_primitive_destroy(p->prim);
  p->prim = NULL;
  p->nops = 0;
}

/* Make the primitive of p's pass (p's shape fields set).  false when
 * oneDNN has none. */
static bool make(dn_prim *p) {
  const int64_t *g = p->g;
  dnnl_dims_t strides = {g[G_SH], g[G_SW]}, dil = {g[G_DH] - 1, g[G_DW] - 1};
  dnnl_dims_t pl = {g[G_PH], g[G_PW]};
  /* The right/bottom padding that gives OH x OW (negative where the
   * last rows are not reached). */
  dnnl_dims_t pr = {(g[G_OH] - 1) * g[G_SH] + (g[G_KH] - 1) * g[G_DH] + 1 - p->H - g[G_PH],
                    (g[G_OW] - 1) * g[G_SW] + (g[G_KW] - 1) * g[G_DW] + 1 - p->W - g[G_PW]};
  /* the operands' type; the weight gradient's (its group partials) is f32 */
  dnnl_data_type_t t = p->bf16 ? dnnl_bf16 : dnnl_f32;
  dnnl_data_type_t tw = p->pass == RL_DNNL_BWD_WEIGHTS ? dnnl_f32 : t;
  dnnl_memory_desc_t x_any, w_any, dw_any, y_any, b_md, x_pl, w_pl, y_pl;
  md4(&x_any, p->N, p->C, p->H, p->W, t, dnnl_format_tag_any);
  md4(&w_any, p->O, p->C, g[G_KH], g[G_KW], t, dnnl_format_tag_any);
  md4(&dw_any, p->O, p->C, g[G_KH], g[G_KW], dnnl_f32, dnnl_format_tag_any);
  md4(&y_any, p->N, p->O, g[G_OH], g[G_OW], t, dnnl_format_tag_any);
  md4(&x_pl, p->N, p->C, p->H, p->W, t, dnnl_nchw);
  md4(&w_pl, p->O, p->C, g[G_KH], g[G_KW], tw, dnnl_oihw);
  md4(&y_pl, p->N, p->O, g[G_OH], g[G_OW], t, dnnl_nchw);
  dnnl_dims_t bd = {p->O};
  dnnl_memory_desc_init_by_tag(&b_md, 1, bd, bias_type(p), dnnl_x);
  const dnnl_memory_desc_t *b_or_null = p->bias ? &b_md : NULL;

  dnnl_alg_kind_t alg = p->wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
  dnnl_primitive_attr_t attr;
  if (dnnl_primitive_attr_create(&attr) != dnnl_success) return false;
  dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);

  /* The backward passes take the forward's descriptor as a hint. */
  bool ok = false;
  dnnl_primitive_desc_t fpd = NULL, pd = NULL;
  dnnl_convolution_desc_t fd, bd_desc;
  if (dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &x_any, &w_any,
                                                 b_or_null, &y_any, strides, dil, pl,
                                                 pr) != dnnl_success ||
      dnnl_primitive_desc_create(&fpd, &fd, attr, engine, NULL) != dnnl_success)
    goto done;
  if (p->pass == RL_DNNL_FWD) {
    pd = fpd;
    fpd = NULL;
  } else if ((p->pass == RL_DNNL_BWD_DATA
                  ? dnnl_dilated_convolution_backward_data_desc_init(
                        &bd_desc, alg, &x_any, &w_any, &y_any, strides, dil, pl, pr)
                  : dnnl_dilated_convolution_backward_weights_desc_init(
                        &bd_desc, alg, &x_any, &dw_any, b_or_null, &y_any, strides, dil, pl,
                        pr)) != dnnl_success ||
             dnnl_primitive_desc_create(&pd, &bd_desc, attr, engine, fpd) != dnnl_success) {
    goto done;
  }
  /* Each pass's operands: two inputs, then the output. */
  struct {
    int arg;
    const dnnl_memory_desc_t *plain;
    dnnl_query_t q;
  } ops[3][3] = {
      [RL_DNNL_FWD] = {{DNNL_ARG_SRC, &x_pl, dnnl_query_src_md},
                       {DNNL_ARG_WEIGHTS, &w_pl, dnnl_query_weights_md},
                       {DNNL_ARG_DST, &y_pl, dnnl_query_dst_md}},
      [RL_DNNL_BWD_DATA] = {{DNNL_ARG_DIFF_DST, &y_pl, dnnl_query_diff_dst_md},
                            {DNNL_ARG_WEIGHTS, &w_pl, dnnl_query_weights_md},
                            {DNNL_ARG_DIFF_SRC, &x_pl, dnnl_query_diff_src_md}},
      [RL_DNNL_BWD_WEIGHTS] = {{DNNL_ARG_SRC, &x_pl, dnnl_query_src_md},
                               {DNNL_ARG_DIFF_DST, &y_pl, dnnl_query_diff_dst_md},
                               {DNNL_ARG_DIFF_WEIGHTS, &w_pl, dnnl_query_diff_weights_md}},
  };
  ok = true;
  for (int i = 0; i < 3 && ok; i++, p->nops++)
    ok = operand(&p->ops[i], ops[p->pass][i].arg, i == 2, ops[p->pass][i].plain,
                 dnnl_primitive_desc_query_md(pd, ops[p->pass][i].q, 0));
  const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  p->scratch = sp ? rl_cpu_round64(dnnl_memory_desc_get_size(sp)) : 0;
  const char *impl = NULL;
  dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
  snprintf(p->impl, sizeof p->impl, "%s", impl ? impl : "?");
  /* bf16 only by a JIT kernel: a reference one is orders slower than f32 */
  if (p->bf16 && strncmp(p->impl, "jit", 3) != 0) ok = false;
  ok = ok && dnnl_primitive_create(&p->prim, pd) == dnnl_success;
done:
  if (!ok) unmake(p);
  if (fpd) dnnl_primitive_desc_destroy(fpd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  dnnl_primitive_attr_destroy(attr);
  return ok;
}

/* The primitive for this pass and shape on nthr threads (made on first
 * use, with oneDNN seeing nthr threads; NULL when oneDNN has none). */
static dn_prim *prim_for(rl_dnnl_pass pass, bool wino, bool bf16, int64_t N, int64_t C, int64_t H,
                         int64_t W, int64_t O, const int64_t *g, bool bias, int nthr) {
  if (!engine_up()) return NULL;
  for (dn_prim *p = prims; p; p = p->next)
    if (p->pass == pass && p->wino == wino && p->bf16 == bf16 && p->N == N && p->C == C && p->H == H && p->W == W && p->O == O &&
        p->bias == bias && p->nthr == nthr && memcmp(p->g, g, sizeof p->g) == 0)
      return p->ok ? p : NULL;
  dn_prim *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  *p = (dn_prim){.pass = pass, .wino = wino, .bf16 = bf16, .N = N, .C = C, .H = H, .W = W, .O = O, .bias = bias,
                 .nthr = nthr, .next = prims};
  memcpy(p->g, g, sizeof p->g);
  int team = omp_get_max_threads();
  if (nthr != team) omp_set_num_threads(nthr);
  p->ok = make(p);
  if (nthr != team) omp_set_num_threads(team);
  prims = p;
  return p->ok ? p : NULL;
}


/* The groups of a weight pass: the batch split by N alone (the engine's
 * own dW takes the same number), so that the sum's order never depends on
 * the thread count. */
static int64_t dw_groups(int64_t N) { return N < RL_CPU_DW_GROUPS ? N : RL_CPU_DW_GROUPS; }

/* The group primitives of a weight pass: the batch is split into
 * dw_groups(N) groups of at most two sizes, hi and lo images. */
static bool dw_prims(bool wino, bool bf16, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                     const int64_t *g, bool bias, dn_prim **hi, dn_prim **lo) {
  int64_t G = dw_groups(N), big = (N + G - 1) / G, small = N / G;
  *hi = prim_for(RL_DNNL_BWD_WEIGHTS, wino, bf16, big, C, H, W, O, g, bias, 1);
  *lo = small == big || small == 0
            ? *hi
            : prim_for(RL_DNNL_BWD_WEIGHTS, wino, bf16, small, C, H, W, O, g, bias, 1);
  return *hi && *lo;
}

bool rl_cpu_dnnl_fits(rl_dnnl_pass pass, bool wino, rl_dtype dt, int64_t N, int64_t C, int64_t H,
                      int64_t W, int64_t O, const int64_t *g, bool bias) {
  if (dt != RL_F32 && (dt != RL_BF16 || wino)) return false; /* no Winograd in bf16 */
  bool bf16 = dt == RL_BF16;
  if (pass != RL_DNNL_BWD_WEIGHTS)
    return prim_for(pass, wino, bf16, N, C, H, W, O, g, bias, omp_get_max_threads()) != NULL;
  dn_prim *hi, *lo;
  return dw_prims(wino, bf16, N, C, H, W, O, g, bias, &hi, &lo);
}

static dnnl_memory_t mem(const dnnl_memory_desc_t *md, void *ptr) {
  dnnl_memory_t m = NULL;
  return dnnl_memory_create(&m, md, engine, ptr) == dnnl_success ? m : NULL;
}

/* The scratch run() needs for p: oneDNN's scratchpad and the operands'
 * blocked copies. */
static size_t run_bytes(const dn_prim *p) {
  size_t total = p->scratch;
  for (int i = 0; i < p->nops; i++) total += p->ops[i].bytes;
  return total;
}

static int execute(dnnl_primitive_t prim, dnnl_stream_t st, int nargs, const dnnl_exec_arg_t *a) {
  return dnnl_primitive_execute(prim, st, nargs, a) == dnnl_success ? 0 : -1;
}

/* Run p on stream st: user[i] is operand i's data in rllua's layout, bias
 * the bias (forward) or its gradient (weights), buf run_bytes(p) of
 * scratch.  0, or -1 (no error set: the caller may be a worker thread). */
static int run(const dn_prim *p, dnnl_stream_t st, void *const *user, void *bias, char *buf) {
  dnnl_memory_t um[3] = {0}, bm[3] = {0}, spm = NULL, biasm = NULL;
  dnnl_exec_arg_t args[5];
  int nargs = 0, rc = -1;
  char *at = buf + p->scratch;
  for (int i = 0; i < p->nops; i++) {
    const dn_operand *op = &p->ops[i];
    if (!(um[i] = mem(&op->plain, user[i]))) goto out;
    dnnl_memory_t m = um[i];
    if (op->reorder) {
      if (!(bm[i] = mem(&op->want, at))) goto out;
      at += op->bytes;
      m = bm[i];
      dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, um[i]}, {DNNL_ARG_TO, bm[i]}};
      if (!op->out && execute(op->reorder, st, 2, ra)) goto out;
    }
    args[nargs++] = (dnnl_exec_arg_t){op->arg, m};
  }
  if (p->bias) {
    dnnl_memory_desc_t bmd;
    dnnl_dims_t bd = {p->O};
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, bias_type(p), dnnl_x);
    if (!(biasm = mem(&bmd, bias))) goto out;
    args[nargs++] =
        (dnnl_exec_arg_t){p->pass == RL_DNNL_FWD ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS, biasm};
  }
  if (p->scratch) {
    const_dnnl_primitive_desc_t pd;
    dnnl_primitive_get_primitive_desc(p->prim, &pd);
    if (!(spm = mem(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0), buf)))
      goto out;
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, spm};
  }
  if (execute(p->prim, st, nargs, args)) goto out;
  for (int i = 0; i < p->nops; i++) {
    const dn_operand *op = &p->ops[i];
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, bm[i]}, {DNNL_ARG_TO, um[i]}};
    if (op->out && op->reorder && execute(op->reorder, st, 2, ra)) goto out;
  }
  rc = dnnl_stream_wait(st) == dnnl_success ? 0 : -1;
out:
  for (int i = 0; i < 3; i++) {
    if (um[i]) dnnl_memory_destroy(um[i]);
    if (bm[i]) dnnl_memory_destroy(bm[i]);
  }
  if (spm) dnnl_memory_destroy(spm);
  if (biasm) dnnl_memory_destroy(biasm);
  return rc;
}

static const char *pass_name(rl_dnnl_pass pass) {
  return pass == RL_DNNL_FWD ? "forward" : pass == RL_DNNL_BWD_DATA ? "dx" : "dW";
}

/* Run p once on the calling thread's team. */
static int run_whole(dn_prim *p, void *const *user, void *bias) {
  if (!p) return rl_err("conv2d: oneDNN has no primitive for this shape");
  size_t total = run_bytes(p);
  char *buf = total ? rl_cpu_backend.alloc(NULL, total) : NULL;
  if (total && !buf) return -1;
  int rc = streams_up(1) ? run(p, streams[0], user, bias, buf) : -1;
  if (buf) rl_cpu_backend.free(NULL, buf, total);
  return rc ? rl_err("conv2d: oneDNN failed to run its %s (%s)", pass_name(p->pass), p->impl) : 0;
}

int rl_cpu_dnnl_fwd(bool wino, rl_dtype dt, const void *x, const void *w, const void *b, int64_t N,
                    int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g, void *y) {
  void *user[3] = {(void *)x, (void *)w, y};
  return run_whole(prim_for(RL_DNNL_FWD, wino, dt == RL_BF16, N, C, H, W, O, g, b != NULL,
                            omp_get_max_threads()),
                   user, (void *)b);
}

int rl_cpu_dnnl_bwd_data(bool wino, rl_dtype dt, const void *w, const void *dy, int64_t N, int64_t C,
                         int64_t H, int64_t W, int64_t O, const int64_t *g, void *dx) {
  void *user[3] = {(void *)dy, (void *)w, dx};
  return run_whole(prim_for(RL_DNNL_BWD_DATA, wino, dt == RL_BF16, N, C, H, W, O, g, false,
                            omp_get_max_threads()),
                   user, NULL);
}

int rl_cpu_dnnl_bwd_weights(bool wino, rl_dtype dt, const void *x, const void *dy, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t O, const int64_t *g, void *dw, void *db) {
  dn_prim *hi, *lo;
  bool bf16 = dt == RL_BF16;
  if (!dw_prims(wino, bf16, N, C, H, W, O, g, db != NULL, &hi, &lo))
    return rl_err("conv2d: oneDNN has no dW for this shape");
  int64_t G = dw_groups(N), wsize = O * C * g[G_KH] * g[G_KW];
  int T = rl_cpu_team(G, (double)(N / G) * (double)wsize * (double)(g[G_OH] * g[G_OW]));
  if (T > DN_STREAMS) T = DN_STREAMS;
  if (!streams_up(T)) return rl_err("conv2d: oneDNN could not make a stream");
  /* per group: the weight and bias partials; per thread: run()'s scratch */
  size_t part = rl_cpu_round64(sizeof(float) * (size_t)(wsize + O));
  size_t per = rl_cpu_round64(run_bytes(hi) > run_bytes(lo) ? run_bytes(hi) : run_bytes(lo));
  size_t total = part * (size_t)G + per * (size_t)T;
  char *buf = rl_cpu_backend.alloc(NULL, total);
  if (!buf) return -1;
  size_t es = bf16 ? 2 : 4; /* of x and dy */
  size_t xs = (size_t)(C * H * W) * es, ys = (size_t)(O * g[G_OH] * g[G_OW]) * es;
  int failed = 0;
#pragma omp parallel num_threads(T) reduction(| : failed)
  {
    int t = omp_get_thread_num();
    for (int64_t gi = t; gi < G; gi += T) {
      int64_t n0 = N * gi / G, n1 = N * (gi + 1) / G;
      dn_prim *p = n1 - n0 == hi->N ? hi : lo;
      float *pw = (float *)(buf + part * (size_t)gi);
      void *user[3] = {(void *)((const char *)x + n0 * xs), (void *)((const char *)dy + n0 * ys),
                       pw};
      failed |= run(p, streams[t], user, db ? pw + wsize : NULL, buf + part * (size_t)G + per * t);
    }
  }
  if (!failed) {
    /* the groups' partials summed in group order, in double, a block of
     * elements at a time (each group's run streamed, the sums vectorised) */
    enum { BLK = 512 };
    int64_t total_e = wsize + (db ? O : 0), nblk = (total_e + BLK - 1) / BLK;
    RL_PARALLEL_FOR(k, nblk, BLK * G, {
      int64_t e0 = k * BLK, n = total_e - e0 < BLK ? total_e - e0 : BLK;
      double acc[BLK];
      for (int64_t e = 0; e < n; e++) acc[e] = 0;
      for (int64_t gi = 0; gi < G; gi++) {
        const float *pg = (const float *)(buf + part * (size_t)gi) + e0;
        _Pragma("omp simd") for (int64_t e = 0; e < n; e++) acc[e] += pg[e];
      }
      for (int64_t e = 0; e < n; e++) {
        int64_t at = e0 + e;
        void *to = at < wsize ? dw : db;
        int64_t i = at < wsize ? at : at - wsize;
        if (bf16) ((uint16_t *)to)[i] = rl_bf16_of_f32((float)acc[e]);
        else ((float *)to)[i] = (float)acc[e];
      }
    });
  }
  rl_cpu_backend.free(NULL, buf, total);
  return failed ? rl_err("conv2d: oneDNN failed to run its dW (%s)", hi->impl) : 0;
}

const char *rl_cpu_dnnl_version(void) {
  static char v[32];
  const dnnl_version_t *ver = dnnl_version();
  snprintf(v, sizeof v, "%d.%d.%d", ver->major, ver->minor, ver->patch);
  return v;
}

#else /* no oneDNN headers at build time */

bool rl_cpu_dnnl_fits(rl_dnnl_pass pass, bool wino, rl_dtype dt, int64_t N, int64_t C, int64_t H,
                      int64_t W, int64_t O, const int64_t *g, bool bias) {
  return false;
}

int rl_cpu_dnnl_fwd(bool wino, rl_dtype dt, const void *x, const void *w, const void *b, int64_t N,
                    int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g, void *y) {
  return rl_err("conv2d: this build has no oneDNN (install libdnnl-dev and rebuild)");
}

int rl_cpu_dnnl_bwd_data(bool wino, rl_dtype dt, const void *w, const void *dy, int64_t N, int64_t C,
                         int64_t H, int64_t W, int64_t O, const int64_t *g, void *dx) {
  return rl_err("conv2d: this build has no oneDNN (install libdnnl-dev and rebuild)");
}

int rl_cpu_dnnl_bwd_weights(bool wino, rl_dtype dt, const void *x, const void *dy, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t O, const int64_t *g, void *dw, void *db) {
  return rl_err("conv2d: this build has no oneDNN (install libdnnl-dev and rebuild)");
}

const char *rl_cpu_dnnl_version(void) { return NULL; }

#endif
