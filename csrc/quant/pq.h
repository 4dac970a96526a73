/*
 * quant/pq.h: product quantisation (Jégou et al., 2011) of float32 vectors
 * into m one-byte codes, and asymmetric distance computation (ADC) from a
 * per-query lookup table. What lazily loaded sessions rest on: graph
 * traversal over compact in-memory codes, with full vectors read from
 * chunks only to re-rank.
 *
 * The vector is cut into m subvectors of dsub = dim/m floats (m must divide
 * dim); each is replaced by the index of its nearest of `ksub` (<= 256)
 * centroids learnt by k-means (quant/kmeans.h) on a training sample.
 *
 * A vv_pq is filled by vv_pq_train or vv_pq_init (encode and table need
 * what those build) and released by vv_pq_destroy; its fields are
 * read-only to callers. Encode, decode, table and ADC only read it, so any
 * number of threads may share one.
 */
#ifndef VV_PQ_H
#define VV_PQ_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"
#include "kmeans.h"

typedef struct vv_pq {
  uint32_t dim;
  uint32_t m;       /* subquantisers = bytes per code */
  uint32_t dsub;    /* dim / m */
  uint32_t ksub;    /* centroids per subquantiser, <= 256 */
  float *centroids; /* m * ksub * dsub: subquantiser j's centroid c at (j * ksub + c) * dsub; owned */
  float *blocked;   /* the same codebooks laid out for the search kernels; owned, built by vv_pq_prepare */
} vv_pq;

/*
 * The m for vectors of `dim` floats: the divisor of dim closest to dim / 8
 * (so subvectors of about 8 floats, one byte per 8 floats), the larger on a
 * tie. 384 -> 48, 768 -> 96, 784 -> 98, 100 -> 10 (dsub 10; the divisors 20
 * and 25 are further from 12.5). A prime dim gives 1 (prime > 2: 1 is
 * nearer dim / 8 than dim is). 0 for dim 0.
 */
uint32_t vv_pq_choose_m(uint32_t dim);

/*
 * Learns the codebooks from n vectors (row-major, dim floats each):
 * ksub = min(256, n) centroids per subspace, `iters` k-means rounds, on up
 * to `threads` threads (0 = 1; subspaces train in parallel). The result
 * depends on the data and seed only. On failure *pq is left empty (safe to
 * destroy). VV_E_INVALID if data is NULL, n or dim is 0, m does not divide
 * dim, or the data holds a NaN or infinity; VV_E_NOMEM.
 */
VV_NODISCARD int vv_pq_train(vv_pq *pq, const float *data, size_t n, uint32_t dim, uint32_t m, uint32_t iters,
                             uint64_t seed, unsigned threads);

/*
 * Builds *pq from a saved codebook: centroids[m * ksub * (dim / m)] in the
 * layout of vv_pq.centroids, copied. VV_E_INVALID for a NULL pointer, dim or
 * m zero, m not dividing dim, or ksub outside 1..256; VV_E_CORRUPT if a
 * centroid holds a NaN or infinity; VV_E_NOMEM. On failure *pq is left
 * empty.
 */
VV_NODISCARD int vv_pq_init(vv_pq *pq, uint32_t dim, uint32_t m, uint32_t ksub, const float *centroids);

/* (Re)builds the tables derived from pq->centroids (pq->blocked); train and
 * init call it, so only a caller that edited the centroids needs to.
 * VV_E_INVALID (no centroids), VV_E_NOMEM (the old tables stay). */
VV_NODISCARD int vv_pq_prepare(vv_pq *pq);

/* Frees what *pq owns and zeroes it; NULL and repeated calls are no-ops. */
void vv_pq_destroy(vv_pq *pq);

/* code[m] for x[dim]. */
void vv_pq_encode(const vv_pq *pq, const float *x, uint8_t *code);

/* Where the code of row i goes (m bytes, valid until the call returns).
 * Called from up to `threads` threads at once; NULL fails the call. */
typedef uint8_t *(*vv_pq_code_fn)(void *ctx, size_t i);

/*
 * Encodes row(ctx, i) into code(ctx, i) for i < n, on up to `threads`
 * threads (0 = 1). Faster per vector than vv_pq_encode, which streams the
 * whole codebook through the cache for every vector, where this keeps one
 * subspace's codebook in L1 for a run of rows. VV_E_INVALID (NULL pq, row
 * or code, a pq not from train/init, or an accessor returning NULL; codes
 * written before that stay written).
 */
VV_NODISCARD int vv_pq_encode_batch(const vv_pq *pq, vv_kmeans_row_fn row, vv_pq_code_fn code, void *ctx, size_t n,
                                    unsigned threads);

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
