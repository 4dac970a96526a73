/*
 * flat/flat.h: exact k-nearest-neighbour search by scanning every live slot.
 *
 * The ground truth for tests and benchmarks, the index for small
 * collections, and the fallback that guarantees HNSW never returns fewer
 * than k live results. Read-only over the store; safe to run concurrently.
 */
#ifndef VV_FLAT_H
#define VV_FLAT_H

#include <stdint.h>

#include "../common/heap.h"
#include "../distance/distance.h"
#include "../store/store.h"
#include "../vecvault.h"

/* Internal distance = sign * kern(query, vector). Writes up to k candidates
 * to `out`, nearest first. */
VV_NODISCARD int vv_flat_search(const vv_store *s, vv_dist_fn kern, float sign, const float *query, uint32_t k,
                                vv_cand *out, uint32_t *nout);

#endif
