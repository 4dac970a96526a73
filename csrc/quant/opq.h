/*
 * quant/opq.h: optimised product quantisation (Ge et al., CVPR 2013, the
 * non-parametric version): a PQ over vectors rotated by an orthogonal R
 * learnt so that the rotated data quantises well. Training alternates,
 * from the identity: train a PQ on the rotated sample, then refit R
 * to map each vector onto its reconstruction (orthogonal Procrustes,
 * rotation.h).
 *
 * Read-only after train/init; any number of threads may share one.
 */
#ifndef VV_OPQ_H
#define VV_OPQ_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"
#include "pq.h"

typedef struct vv_opq {
  uint32_t dim;
  float *rot; /* dim * dim, row-major, x -> rot x; owned */
  vv_pq pq;   /* over rotated vectors */
} vv_opq;

/* `rounds` alternations of (PQ with `iters` k-means rounds, refit R), then
 * the final PQ. VV_E_INVALID (as vv_pq_train), VV_E_NOMEM; on failure
 * *opq is left empty. */
VV_NODISCARD int vv_opq_train(vv_opq *opq, const float *data, size_t n, uint32_t dim, uint32_t m, uint32_t rounds,
                              uint32_t iters, uint64_t seed, unsigned threads);
/* From saved parameters (copied). VV_E_CORRUPT for a non-finite value,
 * VV_E_INVALID (as vv_pq_init), VV_E_NOMEM. */
VV_NODISCARD int vv_opq_init(vv_opq *opq, uint32_t dim, uint32_t m, uint32_t ksub, const float *rot,
                             const float *centroids);
void vv_opq_destroy(vv_opq *opq);

/* scratch: dim floats. */
void vv_opq_encode(const vv_opq *opq, const float *x, uint8_t *code, float *scratch);
void vv_opq_decode(const vv_opq *opq, const uint8_t *code, float *x, float *scratch);
/* The PQ table (m * ksub floats) for query q. */
void vv_opq_table(const vv_opq *opq, const float *q, int l2, float *table, float *scratch);

#endif
