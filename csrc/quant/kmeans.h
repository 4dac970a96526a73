/*
 * quant/kmeans.h: Lloyd's k-means and nearest-centroid search over float32
 * points, for the PQ codebooks (many small subspaces, k = 256) and for
 * clustering vectors into session chunks (full dimension, k ~ n / 10000).
 *
 * Distances are squared L2. Results are deterministic for a given seed,
 * whatever the thread count; the ISA (vv_kernels_best(), VECVAULT_ISA) may
 * change the last bits of a score and so, rarely, a near-tie.
 *
 * Pointers are borrowed for the length of the call; outputs are
 * caller-allocated.
 */
#ifndef VV_KMEANS_H
#define VV_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"

/* Centroid indices travel in int32 vector lanes. */
#define VV_KM_MAX_K (1u << 30)

/*
 * Learns k centroids of d floats into cents[k * d] from n points, point i
 * being data[i * stride + off .. + d) (so a subspace of row-major vectors
 * trains in place). Seeds with k distinct random points, then runs up to
 * `iters` rounds of assign + update, stopping early once no point moves.
 * A cluster left empty takes half of the widest one, the one with the
 * largest sum of squared distances (its centroid copied and the two nudged
 * apart); with no cluster to split (all of them single points repeated) it
 * stays empty and keeps its last centroid. Up to `threads` threads (0 = 1).
 * VV_E_INVALID: a NULL pointer, n, d or k zero, k > n or VV_KM_MAX_K,
 * off + d > stride, or a non-finite coordinate. VV_E_NOMEM.
 */
VV_NODISCARD int vv_kmeans_train(const float *data, size_t n, size_t stride, size_t off, uint32_t d, uint32_t k,
                                 uint32_t iters, uint64_t seed, unsigned threads, float *cents);

/* Index of the centroid of cents[k * d] nearest to x[d] (the lowest on a
 * tie); k >= 1. A scan, for one-off lookups; batches want vv_kmeans_assign. */
uint32_t vv_kmeans_nearest(const float *cents, uint32_t k, uint32_t d, const float *x);

/* Returns row i (d floats, valid until the call returns). Called from up to
 * `threads` threads at once; NULL fails the call with VV_E_INVALID. */
typedef const float *(*vv_kmeans_row_fn)(void *ctx, size_t i);

/*
 * out[i] = the centroid of cents[k * d] nearest to row(ctx, i), for i < n,
 * on up to `threads` threads (0 = 1); a row holding a NaN gets 0. Ties go
 * to the lowest index. VV_E_INVALID (NULL pointer, k or d zero, k over
 * VV_KM_MAX_K, a NULL row), VV_E_NOMEM.
 */
VV_NODISCARD int vv_kmeans_assign(const float *cents, uint32_t k, uint32_t d, vv_kmeans_row_fn row, void *ctx,
                                  size_t n, unsigned threads, uint32_t *out);

/*
 * Internal to quant/: a codebook copied into the layout the search kernels
 * read ("blocked": VV_KM_BLOCK centroids per block, coordinates transposed
 * so the kernels run over centroids in vector lanes). Several codebooks of
 * the same k and d may be laid one after another, each
 * vv_kmeans_blocked_floats(k, d) floats; `parts` counts them.
 */
#define VV_KM_BLOCK 32

size_t vv_kmeans_blocked_floats(uint32_t k, uint32_t d);
void vv_kmeans_blocked_build(const float *cents, uint32_t k, uint32_t d, float *blk);
/* codes[i][j] = the centroid of codebook j nearest to rows[i][j * d .. + d),
 * for i < n, j < parts; k <= 256. */
void vv_kmeans_blocked_encode(const float *blk, uint32_t k, uint32_t d, uint32_t parts, const float *const *rows,
                              size_t n, uint8_t *const *codes);
/* out[j * k + c] = squared L2 (l2 != 0) or negative inner product between
 * x[j * d .. + d) and centroid c of codebook j. */
void vv_kmeans_blocked_dists(const float *blk, uint32_t k, uint32_t d, uint32_t parts, const float *x, int l2,
                             float *out);

#endif
