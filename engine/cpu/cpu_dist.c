/* cpu_dist.c - nearest point of another class on u8 rows (separation).
 *
 * Exact integer distances on raw pixels: l-inf as the largest |q_k - r_k|,
 * l2 as the sum of (q_k - r_k)^2.  A ref replaces the best one only when
 * strictly nearer, and refs are visited in index order, so ties go to the
 * smallest index.
 *
 * Both searches start each query's bound from the nearest of a few refs
 * spread over the set (the seed pass) and stop a pair as soon as it can no
 * longer beat the bound.  The seed's bound is raised by one unit and its
 * index dropped, so the full pass still finds the first minimum.
 *
 * l-inf (what the tables use) goes further, because on images a far pair is
 * usually told apart by a few pixels, not by all of them:
 *  - refs are stored transposed, in tiles of RT refs ([tile][dim][RT]), so
 *    that one dim of a block of LANES refs is one vector: |q - r| and the
 *    running max are four vector ops per dim (max, min, sub, max);
 *  - every query visits the dims in its own order: first those where the
 *    most refs differ from it by at least its bound (counted from per-dim
 *    histograms of the refs), so that a block usually has every lane at or
 *    over the bound after a few dims and is left;
 *  - a lane still under the bound after all dims holds its exact distance;
 *  - up to QTILE queries walk one tile before the next, so the rows they
 *    read come from cache, not memory.
 * The transposed copy costs as much memory as the refs themselves.
 *
 * l2 reads rows in one order for all queries, dims of largest variance
 * first, so that the partial sums pass the bound early. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "dist.h"

#define LANES 64   /* refs per block: one 512-bit (or two 256-bit) vectors of bytes */
#define CHUNK 16   /* dims between two "is any lane still under?" checks */
#define RT 256     /* refs per tile of the transposed layout */
#define QTILE 256  /* at most this many queries walk a tile together */
#define NSEED 128  /* refs in the seed pass */
#define ROWSTEP 64 /* bytes between early-exit checks in a row */

/* Pixel pairs compared by the last call, for speed reports
 * (rl_cpu_nearest_other_work in dist.h). */
static _Thread_local int64_t work_last;
int64_t rl_cpu_nearest_other_work(void) { return work_last; }

static void *xalloc(size_t n) { return aligned_alloc(64, ((n + 63) & ~(size_t)63) + 64); }

/* ---- shared pieces -------------------------------------------------------- */

/* Dense ids for the labels when there are at most 254 distinct ref labels:
 * rcls/qcls get ids, 255 for a query label no ref has.  With more classes
 * every ref gets 254 and every query 255: the vector mask then excludes
 * nothing and the exact label test on candidates does all the work. */
static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int64_t label_id(const int64_t *u, int64_t nu, int64_t v) {
  int64_t lo = 0, hi = nu;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (u[mid] < v) lo = mid + 1; else hi = mid;
  }
  return lo < nu && u[lo] == v ? lo : 255;
}

static int class_ids(const int64_t *qlab, int64_t nq, const int64_t *rlab, int64_t nr,
                     uint8_t *qcls, uint8_t *rcls) {
  int64_t *u = malloc(sizeof(int64_t) * (size_t)(nr ? nr : 1));
  if (!u) return -1;
  memcpy(u, rlab, sizeof(int64_t) * (size_t)nr);
  qsort(u, (size_t)nr, sizeof(int64_t), cmp_i64);
  int64_t nu = 0;
  for (int64_t j = 0; j < nr; j++)
    if (nu == 0 || u[nu - 1] != u[j]) u[nu++] = u[j];
  bool dense = nu <= 254;
  for (int64_t j = 0; j < nr; j++) rcls[j] = dense ? (uint8_t)label_id(u, nu, rlab[j]) : 254;
  for (int64_t i = 0; i < nq; i++) qcls[i] = dense ? (uint8_t)label_id(u, nu, qlab[i]) : 255;
  free(u);
  return 0;
}

/* The refs a seed pass looks at: NSEED of them, evenly spaced. */
static int64_t seed_ref(int64_t s, int64_t nr) { return nr <= NSEED ? s : s * nr / NSEED; }

/* l-inf distance of two rows, stopping once it reaches `bound`. */
static int linf_row(const uint8_t *a, const uint8_t *b, int64_t D, int bound,
                    int64_t *work) {
  int m = 0;
  for (int64_t k0 = 0; k0 < D; k0 += ROWSTEP) {
    int64_t k1 = k0 + ROWSTEP < D ? k0 + ROWSTEP : D;
    uint8_t t = 0;
#pragma omp simd reduction(max : t)
    for (int64_t k = k0; k < k1; k++) {
      uint8_t hi = a[k] > b[k] ? a[k] : b[k], lo = a[k] > b[k] ? b[k] : a[k];
      uint8_t d = (uint8_t)(hi - lo);
      t = d > t ? d : t;
    }
    *work += k1 - k0;
    if (t > m) m = t;
    if (m >= bound) break;
  }
  return m;
}

/* squared l2 distance, stopping once it reaches `bound` */
static int64_t l2_row(const uint8_t *a, const uint8_t *b, int64_t D, int64_t bound,
                      int64_t *work) {
  int64_t s = 0;
  for (int64_t k0 = 0; k0 < D; k0 += ROWSTEP) {
    int64_t k1 = k0 + ROWSTEP < D ? k0 + ROWSTEP : D;
    int32_t t = 0;
#pragma omp simd reduction(+ : t)
    for (int64_t k = k0; k < k1; k++) {
      int32_t d = (int32_t)a[k] - (int32_t)b[k];
      t += d * d;
    }
    *work += k1 - k0;
    s += t;
    if (s >= bound) break;
  }
  return s;
}

/* ---- l-inf ---------------------------------------------------------------- */

typedef struct {
  const uint8_t *q, *r;
  const int64_t *qlab, *rlab;
  int64_t nq, nr, D;
  int64_t nt;     /* tiles of RT refs */
  bool skip_self;
  uint8_t *blk;   /* [nt][D][RT]: dim k of refs t*RT .. t*RT+RT-1 is one row */
  uint8_t *bcls;  /* [nt*RT] class ids, 255 on padding lanes */
  uint8_t *qcls;  /* [nq] */
  uint32_t *cdf;  /* [D][257]: refs with r_k < v */
  int *seed;      /* [nq] first bound of each query (256: none yet) */
} linf_ctx;

/* Tile t of the transposed refs (padding lanes zero). */
static void transpose_tile(const linf_ctx *c, int64_t t) {
  int64_t D = c->D, j0 = t * RT, n = c->nr - j0 < RT ? c->nr - j0 : RT;
  uint8_t *out = c->blk + t * D * RT;
  if (n < RT) memset(out, 0, (size_t)(D * RT));
  /* 64 refs at a time, so their rows stay in cache while the dims turn */
  for (int64_t u0 = 0; u0 < n; u0 += 64) {
    int64_t u1 = u0 + 64 < n ? u0 + 64 : n;
    for (int64_t k = 0; k < D; k++)
      for (int64_t u = u0; u < u1; u++) out[k * RT + u] = c->r[(j0 + u) * D + k];
  }
}

/* Per-dim cumulative histograms of the refs, dims split over threads. */
static void ref_cdf(const linf_ctx *c) {
  int64_t D = c->D;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < D; k++) {
    uint32_t h[256] = {0};
    for (int64_t t = 0; t < c->nt; t++) {
      const uint8_t *row = c->blk + (t * D + k) * RT;
      int64_t n = c->nr - t * RT < RT ? c->nr - t * RT : RT;
      for (int64_t u = 0; u < n; u++) h[row[u]]++;
    }
    uint32_t *cdf = c->cdf + k * 257, s = 0;
    for (int v = 0; v < 256; v++) {
      cdf[v] = s;
      s += h[v];
    }
    cdf[256] = s;
  }
}

/* The query's dims, those where most refs are at least `bound` away first
 * (a counting sort on a 256-level score): off[k] is the byte offset of the
 * k-th dim's row inside a tile, qv[k] the query's pixel there. */
static void order_dims(const linf_ctx *c, const uint8_t *q, int bound, uint32_t *off,
                       uint8_t *qv, uint8_t *score, uint32_t *count) {
  int64_t D = c->D;
  double scale = 255.0 / (double)(c->nr ? c->nr : 1);
  memset(count, 0, 257 * sizeof(uint32_t));
  for (int64_t k = 0; k < D; k++) {
    const uint32_t *cdf = c->cdf + k * 257;
    int v = q[k];
    uint32_t far = 0;
    if (v - bound >= 0) far += cdf[v - bound + 1];     /* r <= v - bound */
    if (v + bound <= 255) far += cdf[256] - cdf[v + bound]; /* r >= v + bound */
    score[k] = (uint8_t)(255 - (int)((double)far * scale));
    count[score[k] + 1]++;
  }
  for (int s = 0; s < 256; s++) count[s + 1] += count[s];
  for (int64_t k = 0; k < D; k++) {
    uint32_t at = count[score[k]]++;
    off[at] = (uint32_t)(k * RT);
    qv[at] = q[k];
  }
}

/* Scan one block for one query: acc[t] becomes the largest |q - r_t| over
 * the dims visited.  Returns false as soon as every lane is at or over
 * `bound` (bound <= 255), true when some lane is under it after all dims;
 * then acc holds exact distances. */
static bool scan_block(const uint8_t *blk, const uint32_t *off, const uint8_t *qv,
                      int64_t D, int bound, uint8_t *restrict acc, int64_t *dims) {
  for (int64_t k0 = 0; k0 < D; k0 += CHUNK) {
    int64_t k1 = k0 + CHUNK < D ? k0 + CHUNK : D;
    for (int64_t k = k0; k < k1; k++) {
      const uint8_t *row = blk + off[k];
      uint8_t x = qv[k];
#pragma omp simd
      for (int t = 0; t < LANES; t++) {
        uint8_t hi = row[t] > x ? row[t] : x, lo = row[t] > x ? x : row[t];
        uint8_t d = (uint8_t)(hi - lo);
        acc[t] = d > acc[t] ? d : acc[t];
      }
    }
    if (bound > 255) continue;
    /* any lane still under the bound?  (the or of its flags, 8 at a time) */
    uint8_t under[LANES];
    uint8_t bb = (uint8_t)bound;
#pragma omp simd
    for (int t = 0; t < LANES; t++) under[t] = acc[t] < bb ? 0xff : 0;
    uint64_t w[LANES / 8], any = 0;
    memcpy(w, under, LANES);
    for (int i = 0; i < LANES / 8; i++) any |= w[i];
    if (!any) {
      *dims += k1;
      return false;
    }
  }
  *dims += D;
  return true;
}

/* One query's state while it walks the blocks. */
typedef struct {
  int64_t i, arg;
  int bound, ordered_for;
} qstate;

/* Block b (refs b*LANES ..) for one query. */
static void linf_query_block(const linf_ctx *c, qstate *s, int64_t b, const uint32_t *off,
                             const uint8_t *qv, int64_t *dims) {
  int64_t D = c->D, j0 = b * LANES;
  const uint8_t *blk = c->blk + (j0 / RT) * D * RT + j0 % RT;
  const uint8_t *cls = c->bcls + j0;
  uint8_t qc = c->qcls[s->i];
  uint8_t acc[LANES];
  /* lanes of the query's class and padding lanes start at the largest
   * distance: they never fall under a bound below 256 */
#pragma omp simd
  for (int t = 0; t < LANES; t++) acc[t] = cls[t] == qc || cls[t] == 255 ? 255 : 0;
  if (c->skip_self && s->i >= j0 && s->i < j0 + LANES) acc[s->i - j0] = 255;
  if (!scan_block(blk, off, qv, D, s->bound, acc, dims)) return;
  /* lanes in index order, each against the bound the earlier ones left */
  for (int t = 0; t < LANES; t++) {
    int64_t j = j0 + t;
    if (acc[t] >= s->bound || j >= c->nr) continue;
    if (c->rlab[j] == c->qlab[s->i] || (c->skip_self && j == s->i)) continue;
    s->bound = acc[t];
    s->arg = j;
  }
}

static int linf_search(const linf_ctx *c, int64_t *dist, int64_t *arg) {
  int64_t D = c->D, nq = c->nq, nbt = RT / LANES;
  int nth = omp_get_max_threads();
  /* per thread: QTILE orders (offsets and pixels), scores, counts */
  size_t per = (size_t)QTILE * (size_t)D * 5 + (size_t)D + 257 * 4 + 64;
  per = (per + 63) & ~(size_t)63; /* each thread's part starts aligned for its uint32s */
  char *scratch = xalloc(per * (size_t)nth);
  if (!scratch) return rl_err("nearest_other: out of memory for scratch space");
  /* tiles as large as QTILE while every thread still gets a few */
  int64_t qtile = (nq + 4 * nth - 1) / (4 * nth);
  if (qtile > QTILE) qtile = QTILE;
  int64_t nqt = (nq + qtile - 1) / qtile, work = 0;
#pragma omp parallel reduction(+ : work)
  {
    char *mine = scratch + per * (size_t)omp_get_thread_num();
    uint32_t *offs = (uint32_t *)mine;
    uint8_t *qvs = (uint8_t *)(offs + QTILE * D);
    uint8_t *score = qvs + QTILE * D;
    uint32_t *count = (uint32_t *)(((uintptr_t)(score + D) + 3) & ~(uintptr_t)3);
    qstate st[QTILE];
    int64_t dims = 0;
#pragma omp for schedule(dynamic, 1)
    for (int64_t qt = 0; qt < nqt; qt++) {
      int64_t i0 = qt * qtile, n = nq - i0 < qtile ? nq - i0 : qtile;
      for (int64_t u = 0; u < n; u++)
        st[u] = (qstate){.i = i0 + u, .arg = -1, .bound = c->seed[i0 + u], .ordered_for = -1};
      /* a tile of refs at a time for all the queries: the rows they read
       * stay in cache between them */
      for (int64_t t = 0; t < c->nt; t++) {
        int64_t b0 = t * nbt, b1 = (c->nr - t * RT + LANES - 1) / LANES;
        b1 = b0 + (b1 < nbt ? b1 : nbt);
        for (int64_t u = 0; u < n; u++) {
          qstate *s = &st[u];
          uint32_t *off = offs + u * D;
          uint8_t *qv = qvs + u * D;
          /* order again once the bound has shrunk by a tenth */
          if (s->ordered_for < 0 || s->bound * 10 < s->ordered_for * 9) {
            order_dims(c, c->q + s->i * D, s->bound, off, qv, score, count);
            s->ordered_for = s->bound;
          }
          for (int64_t b = b0; b < b1 && s->bound > 0; b++)
            linf_query_block(c, s, b, off, qv, &dims);
        }
      }
      for (int64_t u = 0; u < n; u++) {
        dist[st[u].i] = st[u].arg < 0 ? 256 : st[u].bound;
        arg[st[u].i] = st[u].arg;
      }
    }
    work += dims * LANES;
  }
  free(scratch);
  work_last += work;
  return 0;
}

/* Seed bounds: the nearest of NSEED spread refs, plus one. */
static void seed_bounds(const uint8_t *q, const int64_t *qlab, int64_t nq, const uint8_t *r,
                        const int64_t *rlab, int64_t nr, int64_t D, int p, bool skip_self,
                        int64_t *bound) {
  int64_t ns = nr < NSEED ? nr : NSEED, work = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : work)
  for (int64_t i = 0; i < nq; i++) {
    int64_t best = p == 0 ? 256 : INT64_MAX;
    for (int64_t s = 0; s < ns; s++) {
      int64_t j = seed_ref(s, nr);
      if (rlab[j] == qlab[i] || (skip_self && j == i)) continue;
      int64_t d = p == 0 ? linf_row(q + i * D, r + j * D, D, (int)best, &work)
                         : l2_row(q + i * D, r + j * D, D, best, &work);
      if (d < best) best = d;
    }
    bound[i] = p == 0 ? (best < 256 ? best + 1 : 256) : (best < INT64_MAX ? best + 1 : best);
  }
  work_last += work;
}

static int nearest_linf(const uint8_t *q, const int64_t *qlab, int64_t nq, const uint8_t *r,
                        const int64_t *rlab, int64_t nr, int64_t D, bool skip_self,
                        int64_t *dist, int64_t *arg) {
  linf_ctx c = {.q = q, .r = r, .qlab = qlab, .rlab = rlab, .nq = nq, .nr = nr, .D = D,
                .nt = (nr + RT - 1) / RT, .skip_self = skip_self};
  size_t nblk = (size_t)c.nt * RT;
  c.blk = xalloc(nblk * (size_t)D);
  c.bcls = xalloc(nblk);
  c.qcls = xalloc((size_t)nq);
  c.cdf = xalloc(sizeof(uint32_t) * 257 * (size_t)D);
  c.seed = xalloc(sizeof(int) * (size_t)nq);
  int64_t *seed = xalloc(sizeof(int64_t) * (size_t)nq);
  int rc = 0;
  if (!c.blk || !c.bcls || !c.qcls || !c.cdf || !c.seed || !seed ||
      class_ids(qlab, nq, rlab, nr, c.qcls, c.bcls)) {
    rc = rl_err("nearest_other: out of memory (%lld refs of %lld bytes)", (long long)nr,
                (long long)D);
    goto done;
  }
  memset(c.bcls + nr, 255, nblk - (size_t)nr);
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t t = 0; t < c.nt; t++) transpose_tile(&c, t);
  ref_cdf(&c);
  seed_bounds(q, qlab, nq, r, rlab, nr, D, 0, skip_self, seed);
  for (int64_t i = 0; i < nq; i++) c.seed[i] = (int)seed[i];
  rc = linf_search(&c, dist, arg);
done:
  free(c.blk);
  free(c.bcls);
  free(c.qcls);
  free(c.cdf);
  free(c.seed);
  free(seed);
  return rc;
}

/* ---- l2 ------------------------------------------------------------------- */

typedef struct {
  int64_t k;
  double var;
} dimvar;

static int by_var_desc(const void *a, const void *b) {
  double x = ((const dimvar *)a)->var, y = ((const dimvar *)b)->var;
  if (x != y) return x < y ? 1 : -1;
  return ((const dimvar *)a)->k < ((const dimvar *)b)->k ? -1 : 1;
}

/* rows of src [n, D] with their dims permuted: dst[i][k] = src[i][perm[k]] */
static void permute_rows(const uint8_t *src, int64_t n, int64_t D, const int64_t *perm,
                         uint8_t *dst) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < D; k++) dst[i * D + k] = src[i * D + perm[k]];
}

static int nearest_l2(const uint8_t *q, const int64_t *qlab, int64_t nq, const uint8_t *r,
                      const int64_t *rlab, int64_t nr, int64_t D, bool skip_self,
                      int64_t *dist, int64_t *arg) {
  dimvar *dv = malloc(sizeof(dimvar) * (size_t)(D ? D : 1));
  int64_t *perm = malloc(sizeof(int64_t) * (size_t)(D ? D : 1));
  uint8_t *qp = xalloc((size_t)(nq * D)), *rp = xalloc((size_t)(nr * D));
  int64_t *bound = xalloc(sizeof(int64_t) * (size_t)nq);
  int rc = 0;
  if (!dv || !perm || !qp || !rp || !bound) {
    rc = rl_err("nearest_other: out of memory (%lld refs of %lld bytes)", (long long)nr,
                (long long)D);
    goto done;
  }
  /* variance of each dim over the refs, largest first */
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < D; k++) {
    double s = 0, s2 = 0;
    for (int64_t j = 0; j < nr; j++) {
      double v = r[j * D + k];
      s += v;
      s2 += v * v;
    }
    double m = nr ? s / (double)nr : 0;
    dv[k] = (dimvar){k, nr ? s2 / (double)nr - m * m : 0};
  }
  qsort(dv, (size_t)D, sizeof(dimvar), by_var_desc);
  for (int64_t k = 0; k < D; k++) perm[k] = dv[k].k;
  permute_rows(q, nq, D, perm, qp);
  permute_rows(r, nr, D, perm, rp);
  seed_bounds(qp, qlab, nq, rp, rlab, nr, D, 2, skip_self, bound);
  int64_t rtile = ((int64_t)256 << 10) / (D ? D : 1), work = 0;
  if (rtile < 1) rtile = 1;
  int64_t nqt = (nq + QTILE - 1) / QTILE;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : work)
  for (int64_t qt = 0; qt < nqt; qt++) {
    int64_t i0 = qt * QTILE, i1 = i0 + QTILE < nq ? i0 + QTILE : nq;
    for (int64_t i = i0; i < i1; i++) arg[i] = -1;
    for (int64_t j0 = 0; j0 < nr; j0 += rtile) {
      int64_t j1 = j0 + rtile < nr ? j0 + rtile : nr;
      for (int64_t i = i0; i < i1; i++) {
        int64_t best = bound[i], barg = arg[i];
        for (int64_t j = j0; j < j1; j++) {
          if (rlab[j] == qlab[i] || (skip_self && j == i)) continue;
          int64_t d = l2_row(qp + i * D, rp + j * D, D, best, &work);
          if (d < best) {
            best = d;
            barg = j;
          }
        }
        bound[i] = best;
        arg[i] = barg;
      }
    }
    for (int64_t i = i0; i < i1; i++) dist[i] = arg[i] < 0 ? INT64_MAX : bound[i];
  }
  work_last += work;
done:
  free(dv);
  free(perm);
  free(qp);
  free(rp);
  free(bound);
  return rc;
}

/* ---- the kernel ----------------------------------------------------------- */

/* q [nq, D], r [nr, D] u8, contiguous; see backend.h.  A query with no ref
 * of another class gets arg -1 and dist 256 (l-inf) or INT64_MAX (l2). */
int rl_cpu_nearest_other(const uint8_t *q, const int64_t *qlab, int64_t nq,
                         const uint8_t *r, const int64_t *rlab, int64_t nr, int64_t D,
                         int p, bool skip_self, int64_t *dist, int64_t *arg) {
  work_last = 0;
  if (nq == 0) return 0;
  if (p != 0 && p != 2) return rl_err("nearest_other: p must be 0 (l-inf) or 2, got %d", p);
  if (p == 2 && D > INT64_MAX / (255 * 255))
    return rl_err("nearest_other: rows of %lld bytes are too long", (long long)D);
  return p == 0 ? nearest_linf(q, qlab, nq, r, rlab, nr, D, skip_self, dist, arg)
                : nearest_l2(q, qlab, nq, r, rlab, nr, D, skip_self, dist, arg);
}
