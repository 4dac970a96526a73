/*
 * flat/flat.c: exact scan (see flat.h).
 */
#include "flat.h"

#include <stdlib.h>

int vv_flat_search(const vv_store *s, vv_dist_fn kern, float sign, const float *q, uint32_t k, vv_cand *out,
                   uint32_t *nout) {
  *nout = 0;
  if (k == 0 || s->nlive == 0) return VV_OK;
  vv_cand *heap = (vv_cand *)malloc(((size_t)k + 1) * sizeof *heap);
  if (!heap) return VV_E_NOMEM;
  size_t n = 0;
  for (uint64_t i = 0; i < s->nslots; i++) {
    uint32_t slot = (uint32_t)i;
    if (!vv_store_is_live(s, slot)) continue;
    float d = sign * kern(q, vv_store_vec(s, slot), s->dim);
    if (n < k) {
      vv_heap_push_max(heap, &n, (vv_cand){d, slot});
    } else if (d < heap[0].dist) {
      vv_heap_pop_max(heap, &n);
      vv_heap_push_max(heap, &n, (vv_cand){d, slot});
    }
  }
  *nout = (uint32_t)n;
  vv_heap_drain_sorted(heap, n, out);
  free(heap);
  return VV_OK;
}
