/*
 * common/heap.h: binary heaps of (distance, slot) candidates, shared by the
 * graph and exact searches. Min-heaps hold frontiers; max-heaps hold the
 * best-k-so-far with the worst on top, so it can be evicted in O(log k).
 */
#ifndef VV_HEAP_H
#define VV_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* A candidate: an internal distance (smaller is nearer) and a slot. */
typedef struct vv_cand {
  float dist;
  uint32_t slot;
} vv_cand;

static inline void vv_heap_push_min(vv_cand *a, size_t *n, vv_cand c) {
  size_t i = (*n)++;
  while (i) {
    size_t p = (i - 1) >> 1;
    if (a[p].dist <= c.dist) break;
    a[i] = a[p];
    i = p;
  }
  a[i] = c;
}

static inline vv_cand vv_heap_pop_min(vv_cand *a, size_t *n) {
  vv_cand first = a[0];
  size_t cnt = --(*n);
  vv_cand last = a[cnt];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1;
    if (l >= cnt) break;
    size_t c = (l + 1 < cnt && a[l + 1].dist < a[l].dist) ? l + 1 : l;
    if (a[c].dist >= last.dist) break;
    a[i] = a[c];
    i = c;
  }
  if (cnt) a[i] = last;
  return first;
}

static inline void vv_heap_push_max(vv_cand *a, size_t *n, vv_cand c) {
  size_t i = (*n)++;
  while (i) {
    size_t p = (i - 1) >> 1;
    if (a[p].dist >= c.dist) break;
    a[i] = a[p];
    i = p;
  }
  a[i] = c;
}

static inline void vv_heap_pop_max(vv_cand *a, size_t *n) {
  size_t cnt = --(*n);
  vv_cand last = a[cnt];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1;
    if (l >= cnt) break;
    size_t c = (l + 1 < cnt && a[l + 1].dist > a[l].dist) ? l + 1 : l;
    if (a[c].dist <= last.dist) break;
    a[i] = a[c];
    i = c;
  }
  if (cnt) a[i] = last;
}

/* Empties a max-heap of n entries into `out`, nearest first. */
static inline void vv_heap_drain_sorted(vv_cand *heap, size_t n, vv_cand *out) {
  while (n) {
    out[n - 1] = heap[0];
    vv_heap_pop_max(heap, &n);
  }
}

#endif
