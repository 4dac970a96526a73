/*
 * quant/pq.c: product quantiser training (k-means per subspace), encoding
 * and ADC tables (see pq.h).
 */
#include "pq.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

static float l2sq(const float *a, const float *b, uint32_t n) {
  float s = 0.0f;
  for (uint32_t i = 0; i < n; i++) {
    float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

static uint32_t nearest(const float *cents, uint32_t k, const float *x, uint32_t d) {
  uint32_t best = 0;
  float bd = FLT_MAX;
  for (uint32_t c = 0; c < k; c++) {
    float dist = l2sq(cents + (size_t)c * d, x, d);
    if (dist < bd) {
      bd = dist;
      best = c;
    }
  }
  return best;
}

/* k-means on n points of d floats, taken at stride `stride` from `data`
 * starting at `off`. Seeds with k distinct random points; an empty cluster
 * is re-seeded with a random point so every centroid stays in use. */
static int kmeans(const float *data, size_t n, size_t stride, size_t off, uint32_t d, uint32_t k, uint32_t iters,
                  uint64_t *rng, float *cents) {
  uint32_t *assign = malloc(n * sizeof *assign);
  uint32_t *count = malloc(k * sizeof *count);
  double *sum = malloc((size_t)k * d * sizeof *sum);
  if (!assign || !count || !sum) {
    free(assign);
    free(count);
    free(sum);
    return VV_E_NOMEM;
  }
  /* Partial Fisher-Yates over the first k positions picks k distinct points. */
  size_t *idx = malloc(n * sizeof *idx);
  if (!idx) {
    free(assign);
    free(count);
    free(sum);
    return VV_E_NOMEM;
  }
  for (size_t i = 0; i < n; i++) idx[i] = i;
  for (uint32_t c = 0; c < k; c++) {
    size_t j = c + (size_t)(vv_splitmix64(rng) % (n - c));
    size_t t = idx[c];
    idx[c] = idx[j];
    idx[j] = t;
    memcpy(cents + (size_t)c * d, data + idx[c] * stride + off, d * sizeof(float));
  }
  free(idx);
  for (uint32_t it = 0; it < iters; it++) {
    memset(count, 0, k * sizeof *count);
    memset(sum, 0, (size_t)k * d * sizeof *sum);
    for (size_t i = 0; i < n; i++) {
      const float *x = data + i * stride + off;
      uint32_t c = nearest(cents, k, x, d);
      assign[i] = c;
      count[c]++;
      for (uint32_t t = 0; t < d; t++) sum[(size_t)c * d + t] += x[t];
    }
    for (uint32_t c = 0; c < k; c++) {
      float *cv = cents + (size_t)c * d;
      if (count[c] == 0) {
        size_t r = (size_t)(vv_splitmix64(rng) % n);
        memcpy(cv, data + r * stride + off, d * sizeof(float));
        continue;
      }
      for (uint32_t t = 0; t < d; t++) cv[t] = (float)(sum[(size_t)c * d + t] / count[c]);
    }
  }
  free(assign);
  free(count);
  free(sum);
  return VV_OK;
}

int vv_pq_train(vv_pq *pq, const float *data, size_t n, uint32_t dim, uint32_t m, uint32_t iters, uint64_t seed) {
  memset(pq, 0, sizeof *pq);
  if (!data || n == 0 || dim == 0 || m == 0 || dim % m != 0) return VV_E_INVALID;
  pq->dim = dim;
  pq->m = m;
  pq->dsub = dim / m;
  pq->ksub = n < 256 ? (uint32_t)n : 256;
  pq->centroids = malloc((size_t)m * pq->ksub * pq->dsub * sizeof(float));
  if (!pq->centroids) return VV_E_NOMEM;
  uint64_t rng = seed ? seed : 0x9e3779b97f4a7c15ull;
  for (uint32_t j = 0; j < m; j++) {
    float *cents = pq->centroids + (size_t)j * pq->ksub * pq->dsub;
    int rc = kmeans(data, n, dim, (size_t)j * pq->dsub, pq->dsub, pq->ksub, iters, &rng, cents);
    if (rc) {
      vv_pq_destroy(pq);
      return rc;
    }
  }
  return VV_OK;
}

void vv_pq_destroy(vv_pq *pq) {
  if (!pq) return;
  free(pq->centroids);
  pq->centroids = NULL;
}

void vv_pq_encode(const vv_pq *pq, const float *x, uint8_t *code) {
  for (uint32_t j = 0; j < pq->m; j++)
    code[j] = (uint8_t)nearest(pq->centroids + (size_t)j * pq->ksub * pq->dsub, pq->ksub, x + (size_t)j * pq->dsub,
                               pq->dsub);
}

void vv_pq_decode(const vv_pq *pq, const uint8_t *code, float *x) {
  for (uint32_t j = 0; j < pq->m; j++)
    memcpy(x + (size_t)j * pq->dsub, pq->centroids + ((size_t)j * pq->ksub + code[j]) * pq->dsub,
           pq->dsub * sizeof(float));
}

void vv_pq_table(const vv_pq *pq, const float *q, int l2, float *table) {
  for (uint32_t j = 0; j < pq->m; j++) {
    const float *qs = q + (size_t)j * pq->dsub;
    for (uint32_t c = 0; c < pq->ksub; c++) {
      const float *cv = pq->centroids + ((size_t)j * pq->ksub + c) * pq->dsub;
      float v = 0.0f;
      if (l2) {
        v = l2sq(qs, cv, pq->dsub);
      } else {
        for (uint32_t t = 0; t < pq->dsub; t++) v -= qs[t] * cv[t];
      }
      table[(size_t)j * pq->ksub + c] = v;
    }
  }
}
