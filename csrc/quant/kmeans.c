/*
 * quant/kmeans.c: Lloyd's k-means, batched nearest-centroid assignment and
 * the blocked codebook the PQ encoder and ADC tables read (see kmeans.h).
 *
 * The hot loops live in kmeans_kern.h, instantiated here twice: 4-lane
 * vectors for every target (the compiler lowers them to scalar code where
 * there is no SIMD) and, on x86-64, 8-lane AVX2+FMA code picked at runtime
 * when vv_kernels_best() chose AVX2, so the addon needs no -march flag.
 *
 * Determinism: a point's nearest centroid does not depend on which thread
 * scores it, and each centroid is the mean of its points summed in index
 * order, so results depend on the seed alone.
 */
#include "kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parallel.h"
#include "../common/util.h"
#include "../distance/distance.h"

#define KK_VW 4
#define KK_FN(name) km_v4_##name
#define KK_ATTR
#define KK_MADD(a, b, c) ((a) + (b) * (c))
#define KK_MAX(a, b) ((km_v4_vf)(((km_v4_vi)(a) & ((a) > (b))) | ((km_v4_vi)(b) & ~((a) > (b)))))
#define KK_SPLAT(s) ((km_v4_vf){(s), (s), (s), (s)})
#define KK_PIN(v) ((void)0)
#include "kmeans_kern.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KM_HAVE_AVX2 1
#define KK_VW 8
#define KK_FN(name) km_avx2_##name
#define KK_ATTR __attribute__((target("avx2,fma")))
#define KK_MADD(a, b, c) ((km_avx2_vf)_mm256_fmadd_ps((__m256)(b), (__m256)(c), (__m256)(a)))
#define KK_MAX(a, b) ((km_avx2_vf)_mm256_max_ps((__m256)(a), (__m256)(b)))
#define KK_SPLAT(s) ((km_avx2_vf)_mm256_set1_ps(s))
#define KK_PIN(v) __asm__("" : "+x"(v))
#include "kmeans_kern.h"
#endif

typedef struct km_ops {
  void (*encode)(const float *blk, uint32_t k, uint32_t d, uint32_t parts, const float *const *rows, size_t n,
                 uint8_t *const *codes);
  void (*nearest_rows)(const float *blk, uint32_t k, uint32_t d, const float *const *rows, size_t n, uint32_t *idx);
  void (*dists)(const float *blk, uint32_t k, uint32_t d, uint32_t parts, const float *x, int l2, float *out);
} km_ops;

static const km_ops km_v4 = {km_v4_encode, km_v4_nearest_rows, km_v4_dists};
#if KM_HAVE_AVX2
static const km_ops km_avx2 = {km_avx2_encode, km_avx2_nearest_rows, km_avx2_dists};
#endif

/* Follows the distance kernels' choice, so VECVAULT_ISA=scalar also selects
 * the portable instance here. */
static const km_ops *km_ops_best(void) {
#if KM_HAVE_AVX2
  if (vv_kernels_best()->isa == VV_ISA_AVX2) return &km_avx2;
#endif
  return &km_v4;
}

/* ---- blocked codebooks ---- */

size_t vv_kmeans_blocked_floats(uint32_t k, uint32_t d) {
  return (size_t)((k + VV_KM_BLOCK - 1) / VV_KM_BLOCK) * ((size_t)d + 1) * VV_KM_BLOCK;
}

void vv_kmeans_blocked_build(const float *cents, uint32_t k, uint32_t d, float *blk) {
  size_t nblk = (k + VV_KM_BLOCK - 1) / VV_KM_BLOCK;
  for (size_t b = 0; b < nblk; b++) {
    float *p = blk + b * ((size_t)d + 1) * VV_KM_BLOCK;
    for (uint32_t l = 0; l < VV_KM_BLOCK; l++) {
      size_t c = b * VV_KM_BLOCK + l;
      double norm = 0;
      for (uint32_t t = 0; t < d; t++) {
        float v = c < k ? cents[c * d + t] : 0.0f;
        p[(size_t)(t + 1) * VV_KM_BLOCK + l] = v;
        norm += (double)v * v;
      }
      p[l] = c < k ? (float)(-0.5 * norm) : -INFINITY;
    }
  }
}

void vv_kmeans_blocked_encode(const float *blk, uint32_t k, uint32_t d, uint32_t parts, const float *const *rows,
                              size_t n, uint8_t *const *codes) {
  km_ops_best()->encode(blk, k, d, parts, rows, n, codes);
}

void vv_kmeans_blocked_dists(const float *blk, uint32_t k, uint32_t d, uint32_t parts, const float *x, int l2,
                             float *out) {
  km_ops_best()->dists(blk, k, d, parts, x, l2, out);
}

/* Cache-line aligned, so a block row never straddles two lines. */
static float *km_alloc_blocked(uint32_t k, uint32_t d) {
  size_t bytes = vv_kmeans_blocked_floats(k, d) * sizeof(float);
  return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

/* ---- assignment ---- */

/* Rows per batch handed to the kernels; a task is a whole number of them. */
#define KM_BATCH 64

typedef struct km_assign_job {
  const km_ops *ops;
  const float *blk;
  uint32_t k, d;
  vv_kmeans_row_fn row; /* rows through an accessor, or (row == NULL) ... */
  void *ctx;
  const float *data; /* ... in place: data[i * stride + off] */
  size_t stride, off;
  size_t n, task_rows;
  uint32_t *out;
  size_t *moved; /* per task: rows whose out[] changed; NULL: out[] starts undefined */
} km_assign_job;

static int km_assign_task(void *ctx, size_t task, unsigned worker) {
  (void)worker;
  const km_assign_job *j = ctx;
  size_t i0 = task * j->task_rows, i1 = VV_MIN(j->n, i0 + j->task_rows), moved = 0;
  const float *rows[KM_BATCH];
  uint32_t idx[KM_BATCH];
  for (size_t i = i0; i < i1; i += KM_BATCH) {
    size_t nb = VV_MIN((size_t)KM_BATCH, i1 - i);
    for (size_t r = 0; r < nb; r++) {
      rows[r] = j->row ? j->row(j->ctx, i + r) : j->data + (i + r) * j->stride + j->off;
      if (!rows[r]) return VV_E_INVALID;
    }
    j->ops->nearest_rows(j->blk, j->k, j->d, rows, nb, idx);
    for (size_t r = 0; r < nb; r++) {
      if (j->moved) moved += j->out[i + r] != idx[r];
      j->out[i + r] = idx[r];
    }
  }
  if (j->moved) j->moved[task] = moved;
  return VV_OK;
}

/* Sizes the tasks to ~1M multiply-adds each, and keeps small jobs on the
 * calling thread, where starting threads would cost more than it saves. */
static void km_plan(km_assign_job *j, unsigned threads, size_t *ntasks, unsigned *use_threads) {
  uint64_t per_row = (uint64_t)j->k * j->d + 1;
  size_t rows = (size_t)VV_MIN((uint64_t)8192, VV_MAX((uint64_t)KM_BATCH, (1u << 20) / per_row));
  j->task_rows = rows / KM_BATCH * KM_BATCH;
  *ntasks = (j->n + j->task_rows - 1) / j->task_rows;
  *use_threads = (uint64_t)j->n * per_row < (1u << 22) ? 1 : VV_MAX(threads, 1u);
}

int vv_kmeans_assign(const float *cents, uint32_t k, uint32_t d, vv_kmeans_row_fn row, void *ctx, size_t n,
                     unsigned threads, uint32_t *out) {
  if (!cents || !row || !out || k == 0 || k > VV_KM_MAX_K || d == 0) return VV_E_INVALID;
  if (n == 0) return VV_OK;
  float *blk = km_alloc_blocked(k, d);
  if (!blk) return VV_E_NOMEM;
  vv_kmeans_blocked_build(cents, k, d, blk);
  km_assign_job j = {km_ops_best(), blk, k, d, row, ctx, NULL, 0, 0, n, 0, out, NULL};
  size_t ntasks;
  unsigned use;
  km_plan(&j, threads, &ntasks, &use);
  int rc = vv_parallel_for(ntasks, use, km_assign_task, &j, NULL, NULL, 0, 0);
  free(blk);
  return rc;
}

uint32_t vv_kmeans_nearest(const float *cents, uint32_t k, uint32_t d, const float *x) {
  vv_dist_fn l2sq = vv_kernels_best()->l2sq;
  uint32_t best = 0;
  float bd = INFINITY;
  for (uint32_t c = 0; c < k; c++) {
    float dist = l2sq(cents + (size_t)c * d, x, d);
    if (dist < bd) {
      bd = dist;
      best = c;
    }
  }
  return best;
}

/* ---- training ---- */

typedef struct km_train {
  const float *data;
  size_t n, stride, off;
  uint32_t d, k;
  uint32_t *assign;
  size_t *count;   /* [k] points per cluster */
  size_t *start;   /* [k + 1] offsets into order[] */
  size_t *order;   /* [n] point indices grouped by cluster, ascending within one */
  double *scratch; /* [threads * d] */
  double *inert;   /* [k] sum of squared distances to the centroid, when want_inert */
  int want_inert;
  float *cents;
} km_train;

/* Centroid c = the mean of its points, summed in index order. */
static int km_update_one(void *ctx, size_t c, unsigned worker) {
  const km_train *t = ctx;
  if (t->count[c] == 0) return VV_OK;
  double *s = t->scratch + (size_t)worker * t->d;
  memset(s, 0, t->d * sizeof *s);
  for (size_t p = t->start[c]; p < t->start[c + 1]; p++) {
    const float *x = t->data + t->order[p] * t->stride + t->off;
    for (uint32_t q = 0; q < t->d; q++) s[q] += x[q];
  }
  float *cv = t->cents + c * t->d;
  for (uint32_t q = 0; q < t->d; q++) cv[q] = (float)(s[q] / (double)t->count[c]);
  if (t->want_inert) {
    double e = 0;
    for (size_t p = t->start[c]; p < t->start[c + 1]; p++) {
      const float *x = t->data + t->order[p] * t->stride + t->off;
      for (uint32_t q = 0; q < t->d; q++) e += ((double)x[q] - cv[q]) * ((double)x[q] - cv[q]);
    }
    t->inert[c] = e;
  }
  return VV_OK;
}

/* Recomputes counts and centroids from assign[]; the spread of every
 * cluster too when one is empty, for km_split_empty. */
static int km_update(km_train *t, unsigned threads) {
  memset(t->count, 0, t->k * sizeof *t->count);
  for (size_t i = 0; i < t->n; i++) t->count[t->assign[i]]++;
  t->start[0] = 0;
  t->want_inert = 0;
  for (uint32_t c = 0; c < t->k; c++) {
    t->start[c + 1] = t->start[c] + t->count[c];
    t->want_inert |= t->count[c] == 0;
  }
  /* A counting sort; start[c] is walked forward and then restored. */
  for (size_t i = 0; i < t->n; i++) t->order[t->start[t->assign[i]]++] = i;
  for (uint32_t c = t->k; c > 0; c--) t->start[c] = t->start[c - 1];
  t->start[0] = 0;
  return vv_parallel_for(t->k, threads, km_update_one, t, NULL, NULL, 0, 0);
}

/* A max-heap of cluster ids by spread, the lowest id first on a tie. */
static int km_above(const km_train *t, uint32_t a, uint32_t b) {
  return t->inert[a] > t->inert[b] || (t->inert[a] == t->inert[b] && a < b);
}

static void km_heap_down(const km_train *t, uint32_t *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, top = i;
    if (l < n && km_above(t, h[l], h[top])) top = l;
    if (l + 1 < n && km_above(t, h[l + 1], h[top])) top = l + 1;
    if (top == i) return;
    uint32_t tmp = h[i];
    h[i] = h[top];
    h[top] = tmp;
    i = top;
  }
}

static void km_heap_up(const km_train *t, uint32_t *h, size_t i) {
  for (; i > 0 && km_above(t, h[i], h[(i - 1) / 2]); i = (i - 1) / 2) {
    uint32_t tmp = h[i];
    h[i] = h[(i - 1) / 2];
    h[(i - 1) / 2] = tmp;
  }
}

/* Centroid e becomes a copy of centroid b, and the two are pushed apart
 * along a random direction by a fraction of b's spread `sigma` (and of
 * each coordinate, so the offset survives rounding). */
static void km_split_one(km_train *t, uint32_t b, uint32_t e, double sigma, uint64_t *rng) {
  float *cb = t->cents + (size_t)b * t->d, *ce = t->cents + (size_t)e * t->d;
  uint64_t bits = 0;
  for (uint32_t q = 0; q < t->d; q++) {
    if (q % 64 == 0) bits = vv_splitmix64(rng);
    float delta = (float)(sigma / 16) + fabsf(cb[q]) * (1.0f / (1 << 20));
    if ((bits >> (q % 64)) & 1) delta = -delta;
    ce[q] = cb[q] + delta;
    cb[q] -= delta;
  }
}

/*
 * Every empty cluster takes half of the cluster with the largest spread
 * (sum of squared distances): the two then sit either side of its old
 * centroid, so the next assignment divides its points between them (they
 * average to the old centroid, so both sides of a plane through it get
 * some). Spread, not size, picks the victim: a big cluster of identical
 * points cannot be split. Spreads and counts are halved on paper so the
 * next empty cluster picks the next candidate. Returns the number split.
 */
static size_t km_split_empty(km_train *t, uint32_t *heap, uint64_t *rng) {
  if (!t->want_inert) return 0;
  size_t nheap = 0, split = 0;
  for (uint32_t c = 0; c < t->k; c++)
    if (t->count[c] >= 2 && t->inert[c] > 0) heap[nheap++] = c;
  for (size_t i = nheap / 2; i-- > 0;) km_heap_down(t, heap, nheap, i);
  for (uint32_t c = 0; c < t->k && nheap > 0; c++) {
    if (t->count[c] > 0) continue;
    uint32_t b = heap[0];
    km_split_one(t, b, c, sqrt(t->inert[b] / ((double)t->count[b] * t->d)), rng);
    t->count[c] = t->count[b] / 2;
    t->count[b] -= t->count[c];
    t->inert[c] = t->inert[b] /= 2;
    if (t->count[b] < 2) heap[0] = heap[--nheap];
    km_heap_down(t, heap, nheap, 0);
    if (t->count[c] >= 2) {
      heap[nheap] = c;
      km_heap_up(t, heap, nheap++);
    }
    split++;
  }
  return split;
}

/* k distinct points: a partial Fisher-Yates shuffle of the indices. */
static int km_seed(const km_train *t, uint64_t *rng) {
  size_t *idx = malloc(t->n * sizeof *idx);
  if (!idx) return VV_E_NOMEM;
  for (size_t i = 0; i < t->n; i++) idx[i] = i;
  for (uint32_t c = 0; c < t->k; c++) {
    size_t j = c + (size_t)(vv_splitmix64(rng) % (t->n - c));
    size_t tmp = idx[c];
    idx[c] = idx[j];
    idx[j] = tmp;
    memcpy(t->cents + (size_t)c * t->d, t->data + idx[c] * t->stride + t->off, t->d * sizeof(float));
  }
  free(idx);
  return VV_OK;
}

static int km_all_finite(const float *data, size_t n, size_t stride, size_t off, uint32_t d) {
  for (size_t i = 0; i < n; i++) {
    const float *x = data + i * stride + off;
    for (uint32_t q = 0; q < d; q++)
      if (!isfinite(x[q])) return 0;
  }
  return 1;
}

int vv_kmeans_train(const float *data, size_t n, size_t stride, size_t off, uint32_t d, uint32_t k, uint32_t iters,
                    uint64_t seed, unsigned threads, float *cents) {
  if (!data || !cents || n == 0 || d == 0 || k == 0 || k > n || k > VV_KM_MAX_K || off > stride || d > stride - off)
    return VV_E_INVALID;
  int ovf = 0;
  vv_mul_size(n, stride, &ovf);
  if (ovf || !km_all_finite(data, n, stride, off, d)) return VV_E_INVALID;
  if (threads == 0) threads = 1;

  km_train t = {data, n, stride, off, d, k, NULL, NULL, NULL, NULL, NULL, NULL, 0, cents};
  t.assign = malloc(n * sizeof *t.assign);
  t.count = malloc(k * sizeof *t.count);
  t.start = malloc(((size_t)k + 1) * sizeof *t.start);
  t.order = malloc(n * sizeof *t.order);
  t.scratch = malloc((size_t)threads * d * sizeof *t.scratch);
  t.inert = malloc(k * sizeof *t.inert);
  uint32_t *heap = malloc(k * sizeof *heap);
  km_assign_job j = {km_ops_best(), NULL, k, d, NULL, NULL, data, stride, off, n, 0, t.assign, NULL};
  size_t ntasks;
  unsigned use;
  km_plan(&j, threads, &ntasks, &use);
  j.moved = malloc(ntasks * sizeof *j.moved);
  float *blk = km_alloc_blocked(k, d);
  j.blk = blk;
  int rc = VV_E_NOMEM;
  if (!t.assign || !t.count || !t.start || !t.order || !t.scratch || !t.inert || !heap || !j.moved || !blk)
    goto done;

  uint64_t rng = seed;
  if ((rc = km_seed(&t, &rng)) != VV_OK) goto done;
  /* No centroid has this index, so the first round counts every point as moved. */
  memset(t.assign, 0xff, n * sizeof *t.assign);
  size_t split = 0;
  for (uint32_t it = 0; it < iters; it++) {
    vv_kmeans_blocked_build(cents, k, d, blk);
    if ((rc = vv_parallel_for(ntasks, use, km_assign_task, &j, NULL, NULL, 0, 0)) != VV_OK) goto done;
    size_t moved = 0;
    for (size_t q = 0; q < ntasks; q++) moved += j.moved[q];
    /* Nothing moved and nothing was split: the centroids are already the means. */
    if (moved == 0 && split == 0) break;
    if ((rc = km_update(&t, use)) != VV_OK) goto done;
    split = km_split_empty(&t, heap, &rng);
  }
  rc = VV_OK;
done:
  free(t.assign);
  free(t.count);
  free(t.start);
  free(t.order);
  free(t.scratch);
  free(t.inert);
  free(heap);
  free(j.moved);
  free(blk);
  return rc;
}
