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

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "../vecvault.h"

#define VV_NO_SLOT UINT32_MAX

typedef struct vv_slotrec {
  char *id;        /* owned; not NUL-terminated */
  char *meta;      /* owned; NULL if none */
  uint32_t id_len;
  uint32_t meta_len;
  uint64_t loc;    /* where the last saved copy of the vector lives: VV_LOC(chunk seq, row);
                      valid while VV_SLOT_SAVED is set and VEC_DIRTY is not. Read and
                      written whole (atomically): lazy readers look it up while a save
                      moves rows. */
} vv_slotrec;

#define VV_LOC(chunk, row) (((uint64_t)(chunk) << 32) | (uint32_t)(row))
#define VV_LOC_CHUNK(loc) ((uint32_t)((loc) >> 32))
#define VV_LOC_ROW(loc) ((uint32_t)(loc))

/* Per-slot state (bits of the flags arena). */
enum {
  VV_SLOT_VEC_DIRTY = 1, /* vector or metadata changed since the last save */
  VV_SLOT_REC_DIRTY = 2, /* id, liveness, location or graph links changed */
  VV_SLOT_SAVED = 4,     /* loc points at a saved copy of the vector */
  VV_SLOT_RESIDENT = 8,  /* vector and metadata are in memory (else only in chunk `loc`: lazy) */
  VV_SLOT_CODED = 16     /* the codes arena holds this slot's PQ code */
};

typedef struct vv_store {
  uint32_t dim;
  vv_arena vecs;   /* float[dim] per slot */
  vv_arena recs;   /* vv_slotrec per slot */
  vv_arena live;   /* uint8_t per slot: 1 = live */
  vv_arena flags;  /* uint8_t per slot: VV_SLOT_* bits */
  uint64_t nslots; /* slots ever handed out (high-water mark) */
  uint64_t nlive;
  uint32_t *free_slots; /* LIFO of dead slots ready for reuse */
  size_t nfree, free_cap;
  int defer_reuse;      /* removed slots wait in `dead` until vv_store_recycle */
  int frozen;           /* a save is reading slots: none is reused (vv_store_freeze) */
  /* Walks in slot order in progress (vv_db_walk): while any is, no slot is
   * reused, so a vector placed meanwhile lands past every walk's cursor.
   * Changed without the lock; read under the exclusive one. */
  _Atomic int walks;
  uint32_t *dead;
  size_t ndead, dead_cap;
  /* Ids a load sets (vv_store_set_id_raw) are packed into slabs, not one
   * malloc each (a load sets a million at once, and malloc's header and
   * rounding cost more than a short id). Freeing one leaves it in its
   * slab; the slabs go with the store. */
  pthread_mutex_t slab_mu; /* set_id_raw runs on several threads at once */
  unsigned char **slabs;
  size_t nslabs, slabs_cap, slab_used; /* slab_used: bytes of slabs[nslabs - 1] */
  /* id map: open addressing, linear probing, backward-shift deletion */
  uint32_t *tab_slot;   /* slot + 1; 0 = empty */
  uint32_t *tab_hash;
  size_t tab_cap;       /* power of two */
  size_t tab_count;
} vv_store;

/* VV_OK today (the arenas allocate on reserve); checked all the same, so
 * an init that allocates later cannot fail unnoticed. */
VV_NODISCARD int vv_store_init(vv_store *s, uint32_t dim);
void vv_store_destroy(vv_store *s);

/* Make room so that `extra` more ids can be placed without allocation. */
VV_NODISCARD int vv_store_reserve(vv_store *s, size_t extra);

uint32_t vv_store_lookup(const vv_store *s, const char *id, size_t len);

/* Bind `id` to a slot (its existing one, a free one, or a new one), copy
 * id and metadata, and mark it live. The caller then writes the vector via
 * vv_store_vec. *slot receives the slot; *was_live says whether the id
 * already existed (an upsert). Needs a prior vv_store_reserve. */
VV_NODISCARD int vv_store_place(vv_store *s, const char *id, size_t id_len, const char *meta, size_t meta_len,
                                uint32_t *slot, int *was_live);

/* Unbind a live slot: drop its id and metadata and queue it for reuse (or,
 * with defer_reuse, park it until the index has let go of it). */
void vv_store_remove(vv_store *s, uint32_t slot);

/* Make every parked slot reusable. */
void vv_store_recycle(vv_store *s);

/* While frozen, vv_store_place takes only never-used slots, so a save that
 * captured slots can read their vectors without the database lock: a
 * removed slot keeps its vector until the store thaws. The database also
 * routes upserts to a fresh slot and postpones consolidation meanwhile.
 * Called under the database lock. */
static inline void vv_store_freeze(vv_store *s) { s->frozen = 1; }
static inline void vv_store_thaw(vv_store *s) { s->frozen = 0; }

/* Loading: sets or clears (id NULL) a slot's id and liveness without
 * touching the id map, so records can override each other in any order;
 * vv_store_rebuild_ids then indexes the final state. */
VV_NODISCARD int vv_store_set_id_raw(vv_store *s, uint32_t slot, const char *id, size_t id_len);
/* Loading: rebuilds the id map and live count from the slots' ids.
 * VV_E_CORRUPT if two live slots carry the same id. */
VV_NODISCARD int vv_store_rebuild_ids(vv_store *s);
/* Loading: rebuilds the dead and free lists from final slot states:
 * is_waypoint(ctx, slot) says a dead slot is still in use by the index. */
VV_NODISCARD int vv_store_rebuild_lists(vv_store *s, int (*is_waypoint)(void *ctx, uint32_t slot), void *ctx);
/* Replaces a slot's metadata (copied). */
VV_NODISCARD int vv_store_set_meta(vv_store *s, uint32_t slot, const char *meta, size_t meta_len);
/* Makes slots [0, n) addressable without binding them. */
VV_NODISCARD int vv_store_reserve_slots(vv_store *s, uint64_t n);

static inline uint8_t vv_store_flags(const vv_store *s, uint32_t slot) {
  return __atomic_load_n((uint8_t *)vv_arena_at(&s->flags, slot), __ATOMIC_RELAXED);
}
/* Sets flag bits; safe from several threads at once. */
static inline void vv_store_mark(const vv_store *s, uint32_t slot, uint8_t bits) {
  __atomic_fetch_or((uint8_t *)vv_arena_at(&s->flags, slot), bits, __ATOMIC_RELAXED);
}
static inline void vv_store_set_flags(const vv_store *s, uint32_t slot, uint8_t bits) {
  __atomic_store_n((uint8_t *)vv_arena_at(&s->flags, slot), bits, __ATOMIC_RELAXED);
}
static inline vv_slotrec *vv_store_rec_mut(const vv_store *s, uint32_t slot) {
  return (vv_slotrec *)vv_arena_at(&s->recs, slot);
}

static inline uint64_t vv_store_loc(const vv_store *s, uint32_t slot) {
  return __atomic_load_n(&((const vv_slotrec *)vv_arena_at(&s->recs, slot))->loc, __ATOMIC_RELAXED);
}
static inline void vv_store_set_loc(const vv_store *s, uint32_t slot, uint64_t loc) {
  __atomic_store_n(&((vv_slotrec *)vv_arena_at(&s->recs, slot))->loc, loc, __ATOMIC_RELAXED);
}
/* Clears flag bits; safe from several threads at once. */
static inline void vv_store_unmark(const vv_store *s, uint32_t slot, uint8_t bits) {
  __atomic_fetch_and((uint8_t *)vv_arena_at(&s->flags, slot), (uint8_t)~bits, __ATOMIC_RELAXED);
}

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
