/*
 * store/arena.c: segmented record arena (see arena.h).
 */
#include "arena.h"

#include <stdlib.h>

#include "../vecvault.h"

void vv_arena_init(vv_arena *a, size_t rec_size, size_t block_bytes) {
  a->rec_size = rec_size ? rec_size : 1;
  size_t per = block_bytes / a->rec_size;
  unsigned shift = 0;
  while (((size_t)2 << shift) <= per && shift < 20) shift++;
  a->shift = shift;
  a->mask = ((size_t)1 << shift) - 1;
  a->blocks = NULL;
  a->nblocks = 0;
  a->table_cap = 0;
}

void vv_arena_destroy(vv_arena *a) {
  if (!a) return;
  for (size_t b = 0; b < a->nblocks; b++) free(a->blocks[b]);
  free(a->blocks);
  a->blocks = NULL;
  a->nblocks = 0;
  a->table_cap = 0;
}

int vv_arena_reserve(vv_arena *a, uint64_t n) {
  size_t per = (size_t)1 << a->shift;
  uint64_t want64 = (n + per - 1) >> a->shift;
  if (want64 > SIZE_MAX / sizeof(unsigned char *)) return VV_E_NOMEM;
  size_t want = (size_t)want64;
  if (want <= a->nblocks) return VV_OK;
  if (want > a->table_cap) {
    size_t cap = a->table_cap ? a->table_cap : 16;
    while (cap < want) cap *= 2;
    unsigned char **t = (unsigned char **)realloc(a->blocks, cap * sizeof *t);
    if (!t) return VV_E_NOMEM;
    a->blocks = t;
    a->table_cap = cap;
  }
  size_t first_new = a->nblocks;
  for (size_t b = first_new; b < want; b++) {
    unsigned char *blk = (unsigned char *)calloc(per, a->rec_size);
    if (!blk) {
      for (size_t u = first_new; u < b; u++) free(a->blocks[u]);
      a->nblocks = first_new;
      return VV_E_NOMEM;
    }
    a->blocks[b] = blk;
  }
  a->nblocks = want;
  return VV_OK;
}
