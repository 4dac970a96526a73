/*
 * quant/pq.c: product quantiser training (k-means per subspace), encoding
 * and ADC tables (see pq.h). The arithmetic lives in kmeans.c; this file
 * owns the codebook's shape, its validation and the per-subspace loops.
 */
#include "pq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parallel.h"
#include "../common/util.h"

uint32_t vv_pq_choose_m(uint32_t dim) {
  uint32_t best = 0;
  uint64_t best_gap = UINT64_MAX;
  for (uint32_t m = 1; m <= dim; m++) {
    if (dim % m) continue;
    /* |m - dim/8|, scaled by 8 to stay in integers; `<=` lets the larger m win a tie. */
    uint64_t gap = 8ull * m > dim ? 8ull * m - dim : dim - 8ull * m;
    if (gap <= best_gap) {
      best_gap = gap;
      best = m;
    }
  }
  return best;
}

void vv_pq_destroy(vv_pq *pq) {
  if (!pq) return;
  free(pq->centroids);
  free(pq->blocked);
  memset(pq, 0, sizeof *pq);
}

int vv_pq_prepare(vv_pq *pq) {
  if (!pq->centroids) return VV_E_INVALID;
  size_t book = vv_kmeans_blocked_floats(pq->ksub, pq->dsub);
  size_t bytes = (size_t)pq->m * book * sizeof(float);
  /* Cache-line aligned, as the kernels read whole block rows. */
  float *blocked = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  if (!blocked) return VV_E_NOMEM;
  for (uint32_t j = 0; j < pq->m; j++)
    vv_kmeans_blocked_build(pq->centroids + (size_t)j * pq->ksub * pq->dsub, pq->ksub, pq->dsub, blocked + j * book);
  free(pq->blocked);
  pq->blocked = blocked;
  return VV_OK;
}

/* Sets the shape and allocates the centroids. */
static int pq_shape(vv_pq *pq, uint32_t dim, uint32_t m, uint32_t ksub) {
  memset(pq, 0, sizeof *pq);
  if (dim == 0 || m == 0 || dim % m != 0 || ksub == 0 || ksub > 256) return VV_E_INVALID;
  pq->dim = dim;
  pq->m = m;
  pq->dsub = dim / m;
  pq->ksub = ksub;
  int ovf = 0;
  size_t floats = vv_mul_size(ksub, dim, &ovf);
  vv_mul_size(floats, sizeof(float), &ovf);
  pq->centroids = ovf ? NULL : malloc(floats * sizeof(float));
  return pq->centroids ? VV_OK : VV_E_NOMEM;
}

int vv_pq_init(vv_pq *pq, uint32_t dim, uint32_t m, uint32_t ksub, const float *centroids) {
  int rc = pq_shape(pq, dim, m, ksub);
  if (rc == VV_OK && !centroids) rc = VV_E_INVALID;
  if (rc == VV_OK) {
    size_t n = (size_t)ksub * dim;
    for (size_t i = 0; i < n; i++)
      if (!isfinite(centroids[i])) {
        rc = VV_E_CORRUPT;
        break;
      }
  }
  if (rc == VV_OK) {
    memcpy(pq->centroids, centroids, (size_t)ksub * dim * sizeof(float));
    rc = vv_pq_prepare(pq);
  }
  if (rc != VV_OK) vv_pq_destroy(pq);
  return rc;
}

typedef struct pq_train_job {
  vv_pq *pq;
  const float *data;
  size_t n;
  uint32_t iters;
  uint64_t seed;
  unsigned threads; /* for each subspace's k-means */
} pq_train_job;

static int pq_train_sub(void *ctx, size_t j, unsigned worker) {
  (void)worker;
  const pq_train_job *t = ctx;
  const vv_pq *pq = t->pq;
  /* A seed per subspace, so the result does not depend on which thread trains which. */
  uint64_t s = t->seed ^ (0x9e3779b97f4a7c15ull * (j + 1));
  return vv_kmeans_train(t->data, t->n, pq->dim, j * pq->dsub, pq->dsub, pq->ksub, t->iters, vv_splitmix64(&s),
                         t->threads, pq->centroids + j * pq->ksub * pq->dsub);
}

int vv_pq_train(vv_pq *pq, const float *data, size_t n, uint32_t dim, uint32_t m, uint32_t iters, uint64_t seed,
                unsigned threads) {
  int rc = pq_shape(pq, dim, m, n < 256 ? (uint32_t)n : 256);
  if (rc == VV_OK && !data) rc = VV_E_INVALID;
  if (rc == VV_OK) {
    if (threads == 0) threads = 1;
    /* Subspaces in parallel while there are enough of them, else threads within each. */
    pq_train_job job = {pq, data, n, iters, seed, m >= threads ? 1 : threads};
    rc = vv_parallel_for(m, m >= threads ? threads : 1, pq_train_sub, &job, NULL, NULL, 0, 0);
  }
  if (rc == VV_OK) rc = vv_pq_prepare(pq);
  if (rc != VV_OK) vv_pq_destroy(pq);
  return rc;
}

void vv_pq_encode(const vv_pq *pq, const float *x, uint8_t *code) {
  vv_kmeans_blocked_encode(pq->blocked, pq->ksub, pq->dsub, pq->m, &x, 1, &code);
}

/* Rows per task of vv_pq_encode_batch: enough that every codebook, loaded
 * once into L1 per task, serves many rows. */
#define PQ_TASK_ROWS 256

typedef struct pq_encode_job {
  const vv_pq *pq;
  vv_kmeans_row_fn row;
  vv_pq_code_fn code;
  void *ctx;
  size_t n;
} pq_encode_job;

static int pq_encode_task(void *ctx, size_t task, unsigned worker) {
  (void)worker;
  const pq_encode_job *e = ctx;
  const float *rows[PQ_TASK_ROWS];
  uint8_t *codes[PQ_TASK_ROWS];
  size_t i0 = task * PQ_TASK_ROWS, nr = VV_MIN((size_t)PQ_TASK_ROWS, e->n - i0);
  for (size_t r = 0; r < nr; r++) {
    rows[r] = e->row(e->ctx, i0 + r);
    codes[r] = e->code(e->ctx, i0 + r);
    if (!rows[r] || !codes[r]) return VV_E_INVALID;
  }
  vv_kmeans_blocked_encode(e->pq->blocked, e->pq->ksub, e->pq->dsub, e->pq->m, rows, nr, codes);
  return VV_OK;
}

int vv_pq_encode_batch(const vv_pq *pq, vv_kmeans_row_fn row, vv_pq_code_fn code, void *ctx, size_t n,
                       unsigned threads) {
  if (!pq || !pq->blocked || !row || !code) return VV_E_INVALID;
  pq_encode_job e = {pq, row, code, ctx, n};
  return vv_parallel_for((n + PQ_TASK_ROWS - 1) / PQ_TASK_ROWS, threads, pq_encode_task, &e, NULL, NULL, 0, 0);
}

void vv_pq_decode(const vv_pq *pq, const uint8_t *code, float *x) {
  for (uint32_t j = 0; j < pq->m; j++)
    memcpy(x + (size_t)j * pq->dsub, pq->centroids + ((size_t)j * pq->ksub + code[j]) * pq->dsub,
           pq->dsub * sizeof(float));
}

void vv_pq_table(const vv_pq *pq, const float *q, int l2, float *table) {
  vv_kmeans_blocked_dists(pq->blocked, pq->ksub, pq->dsub, pq->m, q, l2, table);
}
