/*
 * quant/pq.h: product quantisation (Jégou et al., 2011) of float32 vectors
 * into m one-byte codes, and asymmetric distance computation (ADC) from a
 * per-query lookup table. Groundwork for lazy sessions (issue 4): graph
 * traversal over compact in-memory codes, with full vectors read from
 * chunks only to re-rank.
 *
 * The vector is cut into m subvectors of dim/m floats (m must divide dim);
 * each is replaced by the index of its nearest of `ksub` (<= 256) centroids
 * learnt by k-means on a training sample.
 */
#ifndef VV_PQ_H
#define VV_PQ_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"

typedef struct vv_pq {
  uint32_t dim;
  uint32_t m;      /* subquantisers = bytes per code */
  uint32_t dsub;   /* dim / m */
  uint32_t ksub;   /* centroids per subquantiser, <= 256 */
  float *centroids; /* m * ksub * dsub, owned */
} vv_pq;

/* Learns the codebooks from n vectors (row-major). ksub = min(256, n).
 * VV_E_INVALID if m does not divide dim or n == 0. */
VV_NODISCARD int vv_pq_train(vv_pq *pq, const float *data, size_t n, uint32_t dim, uint32_t m, uint32_t iters,
                             uint64_t seed);
void vv_pq_destroy(vv_pq *pq);

/* code[m] for x[dim]. */
void vv_pq_encode(const vv_pq *pq, const float *x, uint8_t *code);
/* x[dim] from code[m] (the centroids). */
void vv_pq_decode(const vv_pq *pq, const uint8_t *code, float *x);

/* Per-query table of m * ksub partial distances: squared L2 (l2 != 0) or
 * negative inner product (l2 == 0, for dot and unit-length cosine). */
void vv_pq_table(const vv_pq *pq, const float *q, int l2, float *table);
/* The approximate distance of the query behind `table` to a code: the sum
 * of one table entry per subquantiser. */
static inline float vv_pq_adc(const vv_pq *pq, const float *table, const uint8_t *code) {
  float d = 0.0f;
  for (uint32_t j = 0; j < pq->m; j++) d += table[(size_t)j * pq->ksub + code[j]];
  return d;
}

#endif
