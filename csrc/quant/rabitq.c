/*
 * quant/rabitq.c: RaBitQ training, encoding (the level search of extended
 * RaBitQ), decoding and query preparation (rabitq.h).
 */
#include "rabitq.h"

#include <math.h>
#include <stdlib.h>

#include "codes_kern.h"
#include "rotation.h"

/* Scales tried by the level search, geometrically spaced. */
#define SCALE_STEPS 48

static int rq_alloc(vv_rabitq *rq, uint32_t dim, uint32_t bits) {
  memset(rq, 0, sizeof *rq);
  if (dim == 0 || bits == 0 || bits > VV_RABITQ_MAX_BITS) return VV_E_INVALID;
  rq->dim = dim;
  rq->bits = bits;
  rq->pbytes = ((size_t)dim + 7) / 8;
  rq->center = malloc(sizeof(float) * dim);
  rq->rot = (size_t)dim * dim <= SIZE_MAX / sizeof(float) ? malloc(sizeof(float) * dim * dim) : NULL;
  return rq->center && rq->rot ? VV_OK : VV_E_NOMEM;
}

void vv_rabitq_destroy(vv_rabitq *rq) {
  if (!rq) return;
  free(rq->center);
  free(rq->rot);
  memset(rq, 0, sizeof *rq);
}

int vv_rabitq_train(vv_rabitq *rq, const float *data, size_t n, uint32_t dim, uint32_t bits, uint64_t seed) {
  int rc = rq_alloc(rq, dim, bits);
  if (rc == VV_OK && (!data || n == 0)) rc = VV_E_INVALID;
  if (rc == VV_OK) {
    double *sum = calloc(dim, sizeof(double));
    if (!sum) rc = VV_E_NOMEM;
    for (size_t i = 0; rc == VV_OK && i < n * dim; i++) {
      if (!isfinite(data[i])) rc = VV_E_INVALID;
      else sum[i % dim] += data[i];
    }
    for (uint32_t d = 0; rc == VV_OK && d < dim; d++) rq->center[d] = (float)(sum[d] / (double)n);
    free(sum);
  }
  if (rc == VV_OK) rc = vv_rot_random(dim, seed, rq->rot);
  if (rc != VV_OK) vv_rabitq_destroy(rq);
  return rc;
}

int vv_rabitq_init(vv_rabitq *rq, uint32_t dim, uint32_t bits, const float *center, const float *rot) {
  int rc = rq_alloc(rq, dim, bits);
  if (rc == VV_OK && (!center || !rot)) rc = VV_E_INVALID;
  for (size_t i = 0; rc == VV_OK && i < (size_t)dim * dim; i++)
    if (!isfinite(rot[i]) || (i < dim && !isfinite(center[i]))) rc = VV_E_CORRUPT;
  if (rc == VV_OK) {
    memcpy(rq->center, center, sizeof(float) * dim);
    memcpy(rq->rot, rot, sizeof(float) * dim * dim);
  } else {
    vv_rabitq_destroy(rq);
  }
  return rc;
}

size_t vv_rabitq_code_bytes(const vv_rabitq *rq) { return rq->bits * rq->pbytes + 3 * sizeof(float); }

/* The level of o'[d] on the grid of scale t: floor(t o' + 2^(bits-1)), clamped. */
static inline unsigned grid_level(float v, float t, uint32_t bits) {
  float l = floorf(v * t + (float)(1u << (bits - 1)));
  float top = (float)((1u << bits) - 1);
  if (!(l >= 0)) return 0; /* also NaN, from parameters that overflow: converting it is undefined */
  return (unsigned)(l > top ? top : l);
}

/* The scale whose grid point is nearest in angle to o (unit). For one bit
 * every scale gives the signs. */
static float best_scale(const float *o, uint32_t dim, uint32_t bits) {
  if (bits == 1) return 1.0f;
  float mx = 0;
  for (uint32_t d = 0; d < dim; d++) mx = fmaxf(mx, fabsf(o[d]));
  if (!(mx > 0)) return 1.0f;
  /* t0 puts the largest coordinate at the top level; the best scale clips
   * a few outliers, so the search runs from t0 / 4 to 4 t0. */
  float t0 = (float)(1u << (bits - 1)) / mx, best_t = t0;
  double best_cos = -2, c0 = ((1u << bits) - 1) / 2.0;
  for (int s = 0; s <= SCALE_STEPS; s++) {
    float t = t0 * powf(16.0f, (float)s / SCALE_STEPS) / 4.0f;
    double yo = 0, yy = 0;
    for (uint32_t d = 0; d < dim; d++) {
      double y = grid_level(o[d], t, bits) - c0;
      yo += y * o[d];
      yy += y * y;
    }
    double cs = yo / sqrt(yy);
    if (cs > best_cos) best_cos = cs, best_t = t;
  }
  return best_t;
}

void vv_rabitq_encode(const vv_rabitq *rq, const float *x, uint8_t *code, float *scratch) {
  uint32_t dim = rq->dim;
  float *r = scratch, *o = scratch + dim;
  double nr2 = 0;
  for (uint32_t d = 0; d < dim; d++) {
    r[d] = x[d] - rq->center[d];
    nr2 += (double)r[d] * r[d];
  }
  memset(code, 0, vv_rabitq_code_bytes(rq));
  if (!(nr2 > 0)) return; /* o = c: levels and factors all zero, the estimate is exact */
  double nr = sqrt(nr2);
  vv_rot_apply(rq->rot, dim, r, o);
  for (uint32_t d = 0; d < dim; d++) o[d] = (float)(o[d] / nr);
  float t = best_scale(o, dim, rq->bits);
  double c0 = ((1u << rq->bits) - 1) / 2.0, yo = 0, yy = 0;
  for (uint32_t d = 0; d < dim; d++) {
    unsigned u = grid_level(o[d], t, rq->bits);
    vv_planes_put(code, rq->pbytes, rq->bits, d, u);
    yo += (u - c0) * o[d];
    yy += (u - c0) * (u - c0);
  }
  double a = yo / sqrt(yy); /* > 0: the sign bit alone already agrees with o */
  float f[3] = {(float)nr2, (float)(nr / yo), dim > 1 ? (float)(nr * sqrt(fmax(0, 1 - a * a) / (a * a * (dim - 1)))) : 0};
  memcpy(code + rq->bits * rq->pbytes, f, sizeof f);
}

void vv_rabitq_decode(const vv_rabitq *rq, const uint8_t *code, float *x, float *scratch) {
  uint32_t dim = rq->dim;
  float f[3];
  memcpy(f, code + rq->bits * rq->pbytes, sizeof f);
  double c0 = ((1u << rq->bits) - 1) / 2.0, yy = 0;
  float *y = scratch;
  for (uint32_t d = 0; d < dim; d++) {
    y[d] = (float)(vv_planes_get(code, rq->pbytes, rq->bits, d) - c0);
    yy += (double)y[d] * y[d];
  }
  /* The projection of P r on y: |r| <y, o'> / |y|^2 * y, and |r| <y, o'> = |r|^2 / f_ip. */
  double s = f[1] != 0 && yy > 0 ? f[0] / f[1] / yy : 0;
  for (uint32_t d = 0; d < dim; d++) y[d] = (float)(y[d] * s);
  vv_rot_apply_t(rq->rot, dim, y, x);
  for (uint32_t d = 0; d < dim; d++) x[d] += rq->center[d];
}

/* head: [0] the constant, [1] weight of f_add, [2] weight of f_ip * <y, P q>,
 * [3] the query's quantisation step, [4] c0 * sum(P q), [5] the bound's
 * factor for f_err. l2: |q - c|^2 + |r|^2 - 2 <r, q - c>, P q taken of
 * q - c; inner product: -<c, q> - <r, q>. */
void vv_rabitq_query(const vv_rabitq *rq, const float *q, int l2, float *head, uint8_t *qu, float *scratch) {
  uint32_t dim = rq->dim;
  float *v = scratch, *pq = scratch + dim;
  double cq = 0, nq2 = 0, sum = 0;
  for (uint32_t d = 0; d < dim; d++) {
    cq += (double)rq->center[d] * q[d];
    v[d] = l2 ? q[d] - rq->center[d] : q[d];
    nq2 += (double)v[d] * v[d];
  }
  vv_rot_apply(rq->rot, dim, v, pq);
  for (uint32_t d = 0; d < dim; d++) sum += pq[d];
  head[0] = l2 ? (float)nq2 : (float)-cq;
  head[1] = l2 ? 1.0f : 0.0f;
  head[2] = l2 ? 2.0f : 1.0f;
  head[3] = vv_planes_query(pq, NULL, dim, rq->pbytes, qu);
  head[4] = (float)(((1u << rq->bits) - 1) / 2.0 * sum);
  head[5] = head[2] * VV_RABITQ_EPS0 * (float)sqrt(nq2);
}
