/*
 * store/store.c: id map, slot allocation and per-slot records (see store.h).
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "../vecvault.h"

/* Aim for blocks of a few MiB: big enough to amortise, small enough not to
 * overshoot memory much on a small database. */
#define VEC_BLOCK_BYTES (4u << 20)
#define SMALL_BLOCK_BYTES (256u << 10)

#define ID_SLAB_BYTES ((size_t)1 << 20)

/* Frees an id unless it lives in a slab. */
static void free_id(vv_store *s, char *id) {
  for (size_t i = 0; id && i < s->nslabs; i++)
    if ((unsigned char *)id >= s->slabs[i] && (unsigned char *)id < s->slabs[i] + ID_SLAB_BYTES) return;
  free(id);
}

/* A copy of id[len] in the current slab (len <= VV_MAX_ID_BYTES). Thread-safe. */
static char *slab_copy(vv_store *s, const char *id, size_t len) {
  char *p = NULL;
  pthread_mutex_lock(&s->slab_mu);
  if (!s->nslabs || s->slab_used + len > ID_SLAB_BYTES) {
    unsigned char *slab = NULL;
    if (s->nslabs == s->slabs_cap) {
      size_t cap = s->slabs_cap ? s->slabs_cap * 2 : 8;
      unsigned char **grown = realloc(s->slabs, cap * sizeof *grown);
      if (grown) {
        s->slabs = grown;
        s->slabs_cap = cap;
      }
    }
    if (s->nslabs < s->slabs_cap) slab = malloc(ID_SLAB_BYTES);
    if (slab) {
      s->slabs[s->nslabs++] = slab;
      s->slab_used = 0;
    }
  }
  if (s->nslabs && s->slab_used + len <= ID_SLAB_BYTES) {
    p = (char *)s->slabs[s->nslabs - 1] + s->slab_used;
    s->slab_used += len;
    memcpy(p, id, len);
  }
  pthread_mutex_unlock(&s->slab_mu);
  return p;
}

int vv_store_init(vv_store *s, uint32_t dim) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->slab_mu, NULL);
  s->dim = dim;
  vv_arena_init(&s->vecs, (size_t)dim * sizeof(float), VEC_BLOCK_BYTES);
  vv_arena_init(&s->recs, sizeof(vv_slotrec), SMALL_BLOCK_BYTES);
  vv_arena_init(&s->live, 1, SMALL_BLOCK_BYTES);
  vv_arena_init(&s->flags, 1, SMALL_BLOCK_BYTES);
  return VV_OK;
}

void vv_store_destroy(vv_store *s) {
  if (!s) return;
  for (uint64_t i = 0; i < s->nslots; i++) {
    vv_slotrec *r = (vv_slotrec *)vv_arena_at(&s->recs, i);
    free_id(s, r->id);
    free(r->meta);
  }
  for (size_t i = 0; i < s->nslabs; i++) free(s->slabs[i]);
  free(s->slabs);
  pthread_mutex_destroy(&s->slab_mu);
  vv_arena_destroy(&s->vecs);
  vv_arena_destroy(&s->recs);
  vv_arena_destroy(&s->live);
  vv_arena_destroy(&s->flags);
  free(s->free_slots);
  free(s->dead);
  free(s->tab_slot);
  free(s->tab_hash);
  memset(s, 0, sizeof *s);
}

static int rec_matches(const vv_store *s, uint32_t slot, const char *id, size_t len) {
  const vv_slotrec *r = vv_store_rec(s, slot);
  return r->id_len == len && memcmp(r->id, id, len) == 0;
}

static int table_grow(vv_store *s, size_t cap) {
  uint32_t *ns = (uint32_t *)calloc(cap, sizeof *ns);
  uint32_t *nh = (uint32_t *)malloc(cap * sizeof *nh);
  if (!ns || !nh) {
    free(ns);
    free(nh);
    return VV_E_NOMEM;
  }
  for (size_t i = 0; i < s->tab_cap; i++) {
    if (!s->tab_slot[i]) continue;
    size_t j = s->tab_hash[i] & (cap - 1);
    while (ns[j]) j = (j + 1) & (cap - 1);
    ns[j] = s->tab_slot[i];
    nh[j] = s->tab_hash[i];
  }
  free(s->tab_slot);
  free(s->tab_hash);
  s->tab_slot = ns;
  s->tab_hash = nh;
  s->tab_cap = cap;
  return VV_OK;
}

/* Keep the id table at most half full: probes stay short. */
static int table_reserve(vv_store *s, uint64_t need_ids) {
  if (need_ids * 2 <= s->tab_cap) return VV_OK;
  size_t cap = s->tab_cap ? s->tab_cap : 64;
  while ((uint64_t)cap < need_ids * 2) cap *= 2;
  return table_grow(s, cap);
}

int vv_store_reserve(vv_store *s, size_t extra) {
  uint64_t need_ids = (uint64_t)s->tab_count + extra;
  /* Worst case every extra id needs a brand-new slot. */
  uint64_t need_slots = s->nslots + (extra > s->nfree ? extra - s->nfree : 0);
  if (need_slots > VV_MAX_SLOTS) return VV_E_FULL;
  int rc = table_reserve(s, need_ids);
  if (rc) return rc;
  return vv_store_reserve_slots(s, need_slots);
}

int vv_store_reserve_slots(vv_store *s, uint64_t n) {
  if (n > VV_MAX_SLOTS) return VV_E_FULL;
  int rc = vv_arena_reserve(&s->vecs, n);
  if (!rc) rc = vv_arena_reserve(&s->recs, n);
  if (!rc) rc = vv_arena_reserve(&s->live, n);
  if (!rc) rc = vv_arena_reserve(&s->flags, n);
  return rc;
}

uint32_t vv_store_lookup(const vv_store *s, const char *id, size_t len) {
  if (!s->tab_cap) return VV_NO_SLOT;
  uint32_t h = (uint32_t)vv_hash_bytes(id, len);
  size_t mask = s->tab_cap - 1;
  for (size_t j = h & mask;; j = (j + 1) & mask) {
    uint32_t v = s->tab_slot[j];
    if (!v) return VV_NO_SLOT;
    if (s->tab_hash[j] == h && rec_matches(s, v - 1, id, len)) return v - 1;
  }
}

static void table_insert(vv_store *s, uint32_t slot, uint32_t h) {
  size_t mask = s->tab_cap - 1;
  size_t j = h & mask;
  while (s->tab_slot[j]) j = (j + 1) & mask;
  s->tab_slot[j] = slot + 1;
  s->tab_hash[j] = h;
  s->tab_count++;
}

/* Inserts `slot` (whose id is id[len], hash h) unless a slot with the same
 * id is there: one probe of the chain for both. 1 if it was there. */
static int table_insert_unique(vv_store *s, uint32_t slot, uint32_t h, const char *id, size_t len) {
  size_t mask = s->tab_cap - 1;
  size_t j = h & mask;
  for (; s->tab_slot[j]; j = (j + 1) & mask)
    if (s->tab_hash[j] == h && rec_matches(s, s->tab_slot[j] - 1, id, len)) return 1;
  s->tab_slot[j] = slot + 1;
  s->tab_hash[j] = h;
  s->tab_count++;
  return 0;
}

static void table_erase(vv_store *s, uint32_t slot, uint32_t h) {
  size_t mask = s->tab_cap - 1;
  size_t j = h & mask;
  while (s->tab_slot[j] != slot + 1) j = (j + 1) & mask;
  /* Backward-shift deletion keeps probe chains intact without tombstones. */
  size_t hole = j;
  for (size_t k = (j + 1) & mask; s->tab_slot[k]; k = (k + 1) & mask) {
    size_t home = s->tab_hash[k] & mask;
    /* Move k into the hole unless its home lies cyclically in (hole, k]. */
    int in_range = hole <= k ? (home > hole && home <= k) : (home > hole || home <= k);
    if (!in_range) {
      s->tab_slot[hole] = s->tab_slot[k];
      s->tab_hash[hole] = s->tab_hash[k];
      hole = k;
    }
  }
  s->tab_slot[hole] = 0;
  s->tab_count--;
}

static int copy_bytes(const char *src, size_t len, char **out) {
  *out = NULL;
  if (!src || !len) return VV_OK;
  char *p = (char *)malloc(len);
  if (!p) return VV_E_NOMEM;
  memcpy(p, src, len);
  *out = p;
  return VV_OK;
}

int vv_store_place(vv_store *s, const char *id, size_t id_len, const char *meta, size_t meta_len,
                   uint32_t *slot, int *was_live) {
  char *meta_copy;
  int rc = copy_bytes(meta, meta_len, &meta_copy);
  if (rc) return rc;
  uint32_t existing = vv_store_lookup(s, id, id_len);
  if (existing != VV_NO_SLOT) {
    vv_slotrec *r = (vv_slotrec *)vv_arena_at(&s->recs, existing);
    free(r->meta);
    r->meta = meta_copy;
    r->meta_len = meta_copy ? (uint32_t)meta_len : 0;
    /* The caller writes the new vector: it is in memory now, and any code
     * describes the old one. */
    vv_store_unmark(s, existing, VV_SLOT_CODED);
    vv_store_mark(s, existing, VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY | VV_SLOT_RESIDENT);
    *slot = existing;
    *was_live = 1;
    return VV_OK;
  }
  char *id_copy;
  rc = copy_bytes(id, id_len, &id_copy);
  if (rc) {
    free(meta_copy);
    return rc;
  }
  uint32_t sl;
  if (s->nfree && !s->frozen && atomic_load(&s->walks) == 0) {
    sl = s->free_slots[--s->nfree];
  } else {
    sl = (uint32_t)s->nslots++;
  }
  vv_slotrec *r = (vv_slotrec *)vv_arena_at(&s->recs, sl);
  r->id = id_copy;
  r->id_len = (uint32_t)id_len;
  r->meta = meta_copy;
  r->meta_len = meta_copy ? (uint32_t)meta_len : 0;
  *(uint8_t *)vv_arena_at(&s->live, sl) = 1;
  vv_store_set_flags(s, sl, VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY | VV_SLOT_RESIDENT);
  table_insert(s, sl, (uint32_t)vv_hash_bytes(id, id_len));
  s->nlive++;
  *slot = sl;
  *was_live = 0;
  return VV_OK;
}

int vv_store_set_meta(vv_store *s, uint32_t slot, const char *meta, size_t meta_len) {
  char *copy;
  int rc = copy_bytes(meta, meta_len, &copy);
  if (rc) return rc;
  vv_slotrec *r = vv_store_rec_mut(s, slot);
  free(r->meta);
  r->meta = copy;
  r->meta_len = copy ? (uint32_t)meta_len : 0;
  return VV_OK;
}

/* Appends to a growable slot list. Without room the slot simply stays dead:
 * losing one slot is better than failing a delete that already happened. */
static int push_slot(uint32_t **list, size_t *n, size_t *cap, uint32_t slot) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    uint32_t *f = (uint32_t *)realloc(*list, c * sizeof *f);
    if (!f) return 0;
    *list = f;
    *cap = c;
  }
  (*list)[(*n)++] = slot;
  return 1;
}

void vv_store_remove(vv_store *s, uint32_t slot) {
  vv_slotrec *r = (vv_slotrec *)vv_arena_at(&s->recs, slot);
  table_erase(s, slot, (uint32_t)vv_hash_bytes(r->id, r->id_len));
  free_id(s, r->id);
  free(r->meta);
  /* The saved location stays: a dead slot kept as a graph waypoint still
   * needs its vector, and that copy is still valid. */
  r->id = NULL;
  r->meta = NULL;
  r->id_len = 0;
  r->meta_len = 0;
  vv_store_mark(s, slot, VV_SLOT_REC_DIRTY);
  *(uint8_t *)vv_arena_at(&s->live, slot) = 0;
  s->nlive--;
  if (s->defer_reuse) {
    push_slot(&s->dead, &s->ndead, &s->dead_cap, slot);
  } else {
    push_slot(&s->free_slots, &s->nfree, &s->free_cap, slot);
  }
}

void vv_store_recycle(vv_store *s) {
  while (s->ndead) {
    if (!push_slot(&s->free_slots, &s->nfree, &s->free_cap, s->dead[s->ndead - 1])) return;
    s->ndead--;
  }
}

int vv_store_set_id_raw(vv_store *s, uint32_t slot, const char *id, size_t id_len) {
  if (slot >= vv_arena_capacity(&s->recs)) return VV_E_INTERNAL;
  char *copy = id && id_len && id_len <= VV_MAX_ID_BYTES ? slab_copy(s, id, id_len) : NULL;
  if (!copy && id && id_len) {
    int rc = copy_bytes(id, id_len, &copy);
    if (rc) return rc;
  }
  vv_slotrec *r = vv_store_rec_mut(s, slot);
  free_id(s, r->id);
  free(r->meta);
  r->id = copy;
  r->id_len = copy ? (uint32_t)id_len : 0;
  r->meta = NULL;
  r->meta_len = 0;
  *(uint8_t *)vv_arena_at(&s->live, slot) = copy != NULL;
  if (slot >= s->nslots) s->nslots = (uint64_t)slot + 1;
  return VV_OK;
}

int vv_store_rebuild_ids(vv_store *s) {
  uint64_t live = 0;
  for (uint64_t i = 0; i < s->nslots; i++) live += vv_store_is_live(s, (uint32_t)i);
  s->tab_count = 0;
  if (s->tab_cap) memset(s->tab_slot, 0, s->tab_cap * sizeof *s->tab_slot);
  int rc = table_reserve(s, live);
  if (rc) return rc;
  s->nlive = 0;
  for (uint64_t i = 0; i < s->nslots; i++) {
    uint32_t slot = (uint32_t)i;
    if (!vv_store_is_live(s, slot)) continue;
    const vv_slotrec *r = vv_store_rec(s, slot);
    if (table_insert_unique(s, slot, (uint32_t)vv_hash_bytes(r->id, r->id_len), r->id, r->id_len))
      return VV_E_CORRUPT;
    s->nlive++;
  }
  return VV_OK;
}

int vv_store_rebuild_lists(vv_store *s, int (*is_waypoint)(void *ctx, uint32_t slot), void *ctx) {
  s->nfree = 0;
  s->ndead = 0;
  /* Highest slots last in the LIFO free list, so reuse fills low slots first. */
  for (uint64_t i = s->nslots; i-- > 0;) {
    uint32_t slot = (uint32_t)i;
    if (vv_store_is_live(s, slot)) continue;
    int ok = is_waypoint(ctx, slot) ? push_slot(&s->dead, &s->ndead, &s->dead_cap, slot)
                                    : push_slot(&s->free_slots, &s->nfree, &s->free_cap, slot);
    if (!ok) return VV_E_NOMEM;
  }
  return VV_OK;
}
