/*
 * quant/opq.c: OPQ training by alternation, and the rotate-then-PQ
 * encode, decode and query tables (opq.h).
 */
#include "opq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "rotation.h"

void vv_opq_destroy(vv_opq *opq) {
  if (!opq) return;
  free(opq->rot);
  vv_pq_destroy(&opq->pq);
  memset(opq, 0, sizeof *opq);
}

static float *rot_alloc(uint32_t dim) {
  return (size_t)dim * dim <= SIZE_MAX / sizeof(float) ? malloc(sizeof(float) * dim * dim) : NULL;
}

/* out[i] = R data[i] for every row. */
static void rotate_rows(const float *R, uint32_t dim, const float *data, size_t n, float *out) {
  for (size_t i = 0; i < n; i++) vv_rot_apply(R, dim, data + i * dim, out + i * dim);
}

int vv_opq_train(vv_opq *opq, const float *data, size_t n, uint32_t dim, uint32_t m, uint32_t rounds,
                 uint32_t iters, uint64_t seed, unsigned threads) {
  memset(opq, 0, sizeof *opq);
  if (!data || n == 0 || dim == 0 || m == 0 || dim % m) return VV_E_INVALID;
  for (size_t i = 0; i < n * dim; i++)
    if (!isfinite(data[i])) return VV_E_INVALID;
  int ovf = 0;
  size_t bytes = vv_mul_size(vv_mul_size(n, dim, &ovf), sizeof(float), &ovf);
  float *xr = ovf ? NULL : malloc(bytes), *y = ovf ? NULL : malloc(bytes);
  uint8_t *code = malloc(m);
  opq->dim = dim;
  opq->rot = rot_alloc(dim);
  int rc = xr && y && code && opq->rot ? VV_OK : VV_E_NOMEM;
  /* From the identity, not a random rotation: the first round is plain PQ,
   * and each refit can only lower the distortion from there. A random start
   * spreads correlated dimensions over every subspace, and on embedding-like
   * data ten rounds did not bring its distortion back to plain PQ's. */
  if (rc == VV_OK) {
    memset(opq->rot, 0, sizeof(float) * dim * dim);
    for (uint32_t i = 0; i < dim; i++) opq->rot[(size_t)i * dim + i] = 1.0f;
  }
  for (uint32_t r = 0; rc == VV_OK && r < rounds; r++) {
    rotate_rows(opq->rot, dim, data, n, xr);
    vv_pq pq;
    rc = vv_pq_train(&pq, xr, n, dim, m, iters, seed + r + 1, threads);
    if (rc != VV_OK) break;
    for (size_t i = 0; i < n; i++) {
      vv_pq_encode(&pq, xr + i * dim, code);
      vv_pq_decode(&pq, code, y + i * dim);
    }
    vv_pq_destroy(&pq);
    /* The rotation that best maps each vector onto its reconstruction. */
    rc = vv_rot_procrustes(data, y, n, dim, opq->rot);
  }
  if (rc == VV_OK) {
    rotate_rows(opq->rot, dim, data, n, xr);
    rc = vv_pq_train(&opq->pq, xr, n, dim, m, iters, seed, threads);
  }
  free(xr);
  free(y);
  free(code);
  if (rc != VV_OK) vv_opq_destroy(opq);
  return rc;
}

int vv_opq_init(vv_opq *opq, uint32_t dim, uint32_t m, uint32_t ksub, const float *rot, const float *centroids) {
  memset(opq, 0, sizeof *opq);
  if (!rot || dim == 0) return VV_E_INVALID;
  for (size_t i = 0; i < (size_t)dim * dim; i++)
    if (!isfinite(rot[i])) return VV_E_CORRUPT;
  int rc = vv_pq_init(&opq->pq, dim, m, ksub, centroids);
  if (rc != VV_OK) return rc;
  opq->dim = dim;
  opq->rot = rot_alloc(dim);
  if (!opq->rot) {
    vv_opq_destroy(opq);
    return VV_E_NOMEM;
  }
  memcpy(opq->rot, rot, sizeof(float) * dim * dim);
  return VV_OK;
}

void vv_opq_encode(const vv_opq *opq, const float *x, uint8_t *code, float *scratch) {
  vv_rot_apply(opq->rot, opq->dim, x, scratch);
  vv_pq_encode(&opq->pq, scratch, code);
}

void vv_opq_decode(const vv_opq *opq, const uint8_t *code, float *x, float *scratch) {
  vv_pq_decode(&opq->pq, code, scratch);
  vv_rot_apply_t(opq->rot, opq->dim, scratch, x);
}

void vv_opq_table(const vv_opq *opq, const float *q, int l2, float *table, float *scratch) {
  vv_rot_apply(opq->rot, opq->dim, q, scratch);
  vv_pq_table(&opq->pq, scratch, l2, table);
}
