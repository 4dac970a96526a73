/*
 * store/arena.h: a segmented array of fixed-size records that never moves
 * a record once allocated.
 *
 * Records live in blocks of a power-of-two count; growing adds blocks and
 * never copies existing ones, so a million-vector database grows without a
 * transient second copy, and pointers to records stay valid. Growing may
 * move the block table, so it must not race readers: callers grow only
 * while holding the database exclusively. New records are zeroed.
 */
#ifndef VV_ARENA_H
#define VV_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"

typedef struct vv_arena {
  size_t rec_size;       /* bytes per record */
  unsigned shift;        /* records per block = 1 << shift */
  size_t mask;
  unsigned char **blocks;
  size_t nblocks;
  size_t table_cap;
  int huge;              /* blocks after the first use transparent huge pages */
} vv_arena;

/* Blocks are sized so that one holds about `block_bytes` (at least one record). */
void vv_arena_init(vv_arena *a, size_t rec_size, size_t block_bytes);
void vv_arena_destroy(vv_arena *a);
/* Ensure records [0, n) exist. VV_OK or VV_E_NOMEM (the arena is unchanged). */
VV_NODISCARD int vv_arena_reserve(vv_arena *a, uint64_t n);

static inline uint64_t vv_arena_capacity(const vv_arena *a) {
  return (uint64_t)a->nblocks << a->shift;
}

static inline void *vv_arena_at(const vv_arena *a, uint64_t i) {
  return a->blocks[i >> a->shift] + (size_t)(i & a->mask) * a->rec_size;
}

#endif
