/*
 * store/store.h: the record store: string id <-> dense slot, the float32
 * vector of each slot, its metadata bytes, liveness and the free-slot list.
 *
 * Indexes (hnsw/, flat/) read vectors and liveness through this module and
 * never own them, so a later storage layer can serve vectors from a chunk
 * cache without touching the indexes. Not thread-safe by itself: the
 * database (db/) serialises writers and lets readers share it.
 */
#ifndef VV_STORE_H
#define VV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define VV_NO_SLOT UINT32_MAX

typedef struct vv_slotrec {
  char *id;        /* owned; not NUL-terminated */
  char *meta;      /* owned; NULL if none */
  uint32_t id_len;
  uint32_t meta_len;
} vv_slotrec;

typedef struct vv_store {
  uint32_t dim;
  vv_arena vecs;   /* float[dim] per slot */
  vv_arena recs;   /* vv_slotrec per slot */
  vv_arena live;   /* uint8_t per slot: 1 = live */
  uint64_t nslots; /* slots ever handed out (high-water mark) */
  uint64_t nlive;
  uint32_t *free_slots; /* LIFO of dead slots ready for reuse */
  size_t nfree, free_cap;
  int defer_reuse;      /* removed slots wait in `dead` until vv_store_recycle */
  uint32_t *dead;
  size_t ndead, dead_cap;
  /* id map: open addressing, linear probing, backward-shift deletion */
  uint32_t *tab_slot;   /* slot + 1; 0 = empty */
  uint32_t *tab_hash;
  size_t tab_cap;       /* power of two */
  size_t tab_count;
} vv_store;

int vv_store_init(vv_store *s, uint32_t dim);
void vv_store_destroy(vv_store *s);

/* Make room so that `extra` more ids can be placed without allocation. */
int vv_store_reserve(vv_store *s, size_t extra);

uint32_t vv_store_lookup(const vv_store *s, const char *id, size_t len);

/* Bind `id` to a slot (its existing one, a free one, or a new one), copy
 * id and metadata, and mark it live. The caller then writes the vector via
 * vv_store_vec. *slot receives the slot; *was_live says whether the id
 * already existed (an upsert). Needs a prior vv_store_reserve. */
int vv_store_place(vv_store *s, const char *id, size_t id_len, const char *meta, size_t meta_len,
                   uint32_t *slot, int *was_live);

/* Unbind a live slot: drop its id and metadata and queue it for reuse (or,
 * with defer_reuse, park it until the index has let go of it). */
void vv_store_remove(vv_store *s, uint32_t slot);

/* Make every parked slot reusable. */
void vv_store_recycle(vv_store *s);

static inline float *vv_store_vec(const vv_store *s, uint32_t slot) {
  return (float *)vv_arena_at(&s->vecs, slot);
}
static inline const vv_slotrec *vv_store_rec(const vv_store *s, uint32_t slot) {
  return (const vv_slotrec *)vv_arena_at(&s->recs, slot);
}
static inline int vv_store_is_live(const vv_store *s, uint32_t slot) {
  return *(const uint8_t *)vv_arena_at(&s->live, slot);
}

#endif
