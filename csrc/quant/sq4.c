/*
 * quant/sq4.c: 4-bit scalar quantisation (sq4.h): ranges, encode, decode
 * and the per-query weights for the planes kernel.
 */
#include "sq4.h"

#include <math.h>
#include <stdlib.h>

#include "codes_kern.h"

static int sq4_alloc(vv_sq4 *sq, uint32_t dim) {
  memset(sq, 0, sizeof *sq);
  if (dim == 0) return VV_E_INVALID;
  sq->dim = dim;
  sq->pbytes = ((size_t)dim + 7) / 8;
  sq->lo = malloc(sizeof(float) * dim);
  sq->step = malloc(sizeof(float) * dim);
  return sq->lo && sq->step ? VV_OK : VV_E_NOMEM;
}

void vv_sq4_destroy(vv_sq4 *sq) {
  if (!sq) return;
  free(sq->lo);
  free(sq->step);
  memset(sq, 0, sizeof *sq);
}

int vv_sq4_train(vv_sq4 *sq, const float *data, size_t n, uint32_t dim) {
  int rc = sq4_alloc(sq, dim);
  if (rc == VV_OK && (!data || n == 0)) rc = VV_E_INVALID;
  for (uint32_t d = 0; rc == VV_OK && d < dim; d++) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
      float v = data[i * dim + d];
      if (!isfinite(v)) {
        rc = VV_E_INVALID;
        break;
      }
      lo = fminf(lo, v);
      hi = fmaxf(hi, v);
    }
    sq->lo[d] = lo;
    sq->step[d] = (hi - lo) / 15.0f;
  }
  if (rc != VV_OK) vv_sq4_destroy(sq);
  return rc;
}

int vv_sq4_init(vv_sq4 *sq, uint32_t dim, const float *lo, const float *step) {
  int rc = sq4_alloc(sq, dim);
  if (rc == VV_OK && (!lo || !step)) rc = VV_E_INVALID;
  for (uint32_t d = 0; rc == VV_OK && d < dim; d++) {
    if (!isfinite(lo[d]) || !isfinite(step[d]) || step[d] < 0) rc = VV_E_CORRUPT;
    sq->lo[d] = lo[d];
    sq->step[d] = step[d];
  }
  if (rc != VV_OK) vv_sq4_destroy(sq);
  return rc;
}

size_t vv_sq4_code_bytes(const vv_sq4 *sq) { return 4 * sq->pbytes + sizeof(float); }

static float level(const vv_sq4 *sq, uint32_t d, float x) {
  if (!(sq->step[d] > 0)) return 0;
  float c = nearbyintf((x - sq->lo[d]) / sq->step[d]);
  if (!(c >= 0)) return 0; /* also NaN, from ranges that overflow: converting it to an integer is undefined */
  return c > 15 ? 15 : c;
}

void vv_sq4_encode(const vv_sq4 *sq, const float *x, uint8_t *code) {
  float norm2 = 0;
  memset(code, 0, 4 * sq->pbytes);
  for (uint32_t d = 0; d < sq->dim; d++) {
    float c = level(sq, d, x[d]);
    vv_planes_put(code, sq->pbytes, 4, d, (unsigned)c);
    float v = sq->lo[d] + sq->step[d] * c;
    norm2 += v * v;
  }
  memcpy(code + 4 * sq->pbytes, &norm2, sizeof norm2);
}

void vv_sq4_decode(const vv_sq4 *sq, const uint8_t *code, float *x) {
  for (uint32_t d = 0; d < sq->dim; d++)
    x[d] = sq->lo[d] + sq->step[d] * (float)vv_planes_get(code, sq->pbytes, 4, d);
}

/* head: [0] the constant, [1] weight of the code's norm, [2] weight of the
 * level inner product, [3] the query's quantisation step. l2: ||q||^2 +
 * ||x||^2 - 2 (q.lo + q.(step*c)); inner product: -(q.lo + q.(step*c)). */
void vv_sq4_query(const vv_sq4 *sq, const float *q, int l2, float *head, uint8_t *qu) {
  double qlo = 0, qq = 0;
  for (uint32_t d = 0; d < sq->dim; d++) {
    qlo += (double)q[d] * sq->lo[d];
    qq += (double)q[d] * q[d];
  }
  head[0] = l2 ? (float)(qq - 2 * qlo) : (float)-qlo;
  head[1] = l2 ? 1.0f : 0.0f;
  head[2] = l2 ? 2.0f : 1.0f;
  head[3] = vv_planes_query(q, sq->step, sq->dim, sq->pbytes, qu);
}
