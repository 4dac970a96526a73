/*
 * db/access.c: reading a slot's vector and metadata wherever it lives (in
 * memory, or in a chunk of a lazily loaded session), and the exact search
 * that works either way. See db_internal.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "../flat/flat.h"
#include "../session/lazy.h"

struct vv_pin {
  uint64_t seq;
  const vv_lchunk *chunk;
  vv_cache_ref *ref;
};

static int pin_chunk(vv_db *db, vv_pins *ps, uint64_t seq, const vv_lchunk **out) {
  for (size_t i = ps->n; i-- > 0;) { /* the newest pin is the likeliest */
    if (ps->p[i].seq == seq) {
      *out = ps->p[i].chunk;
      return VV_OK;
    }
  }
  if (ps->n == ps->cap) {
    size_t cap = ps->cap ? ps->cap * 2 : 8;
    struct vv_pin *p = realloc(ps->p, cap * sizeof *p);
    if (!p) return VV_E_NOMEM;
    ps->p = p;
    ps->cap = cap;
  }
  struct vv_pin *pin = &ps->p[ps->n];
  if (vv_reads_cancelled(ps->rd)) return VV_E_ABORTED;
  int rc = vv_lazy_chunk(db->lazy, seq, &pin->chunk, &pin->ref);
  if (rc) {
    vv_lazy_explain(db->lazy, seq, rc, vv_reads_err(ps->rd));
    return rc;
  }
  pin->seq = seq;
  ps->n++;
  *out = pin->chunk;
  return VV_OK;
}

/* The lazy reader's check of a chunk it just decoded (vv_lazy_check_fn),
 * against the rows the store says live there, as an eager load checks
 * them: a live node's row carries its id, and no vector holds a non-finite
 * value. Runs under the database lock its caller holds. */
const char *vv_db_check_row(const vv_db *db, uint32_t slot, const char *id, uint32_t id_len, const float *vec) {
  const vv_store *st = &db->store;
  const vv_slotrec *rec = vv_store_rec(st, slot);
  /* A waypoint's row may still carry the id it had when written (it died later). */
  if (vv_store_is_live(st, slot) && (!id || rec->id_len != id_len || memcmp(rec->id, id, id_len) != 0))
    return "does not match the index";
  /* The engine never stores a non-finite component; one here is damage. */
  for (uint32_t d = 0; d < db->cfg.dimension; d++)
    if (!isfinite(vec[d])) return "holds a non-finite value";
  return NULL;
}

const char *vv_db_check_chunk(void *ctx, const vv_lchunk *c, const char *const *ids, const uint32_t *id_lens,
                              uint32_t *bad_row) {
  const vv_db *db = ctx;
  const vv_store *st = &db->store;
  for (uint32_t row = 0; row < c->count; row++) {
    uint32_t slot = c->slots[row];
    if (slot >= st->nslots || vv_store_loc(st, slot) != VV_LOC(c->seq, row)) continue;
    uint8_t f = vv_store_flags(st, slot);
    if ((f & VV_SLOT_RESIDENT) || !(f & VV_SLOT_SAVED)) continue;
    const char *why = vv_db_check_row(db, slot, ids[row], id_lens[row], vv_lchunk_vec(c, row));
    if (why) {
      *bad_row = row;
      return why;
    }
  }
  *bad_row = UINT32_MAX;
  return NULL;
}

void vv_pins_release(vv_db *db, vv_pins *ps) {
  for (size_t i = 0; i < ps->n; i++) vv_lazy_unpin(db->lazy, ps->p[i].ref);
  free(ps->p);
  memset(ps, 0, sizeof *ps);
}

int vv_db_row(vv_db *db, uint32_t slot, vv_pins *ps, const float **vec, const char **meta, uint32_t *meta_len) {
  const vv_store *st = &db->store;
  if (!db->lazy || (vv_store_flags(st, slot) & VV_SLOT_RESIDENT)) {
    const vv_slotrec *r = vv_store_rec(st, slot);
    *vec = vv_store_vec(st, slot);
    *meta = r->meta;
    *meta_len = r->meta_len;
    return VV_OK;
  }
  uint64_t loc = vv_store_loc(st, slot);
  const vv_lchunk *c;
  int rc = pin_chunk(db, ps, VV_LOC_CHUNK(loc), &c);
  if (rc) return rc;
  uint32_t row = VV_LOC_ROW(loc);
  /* Load checked every location against its chunk's row count, and the
   * loader checked the row's slot; a mismatch now is damage. */
  if (row >= c->count || c->slots[row] != slot) {
    vv_lazy_explain(db->lazy, VV_LOC_CHUNK(loc), VV_E_CHUNK_CORRUPT, vv_reads_err(ps->rd));
    return VV_E_CHUNK_CORRUPT;
  }
  *vec = vv_lchunk_vec(c, row);
  *meta = vv_lchunk_meta(c, row, meta_len);
  return VV_OK;
}

/* ---- exact search ---------------------------------------------------------- */

static void offer(vv_cand *heap, size_t *n, uint32_t k, vv_cand c) {
  if (*n < k) {
    vv_heap_push_max(heap, n, c);
  } else if (c.dist < heap[0].dist) {
    vv_heap_pop_max(heap, n);
    vv_heap_push_max(heap, n, c);
  }
}

int vv_db_exact_search(vv_db *db, const float *q, uint32_t k, vv_cand *out, uint32_t *nout, const vv_reads *rd) {
  if (!db->lazy) return vv_flat_search(&db->store, db->kern, db->sign, q, k, out, nout);
  *nout = 0;
  if (k == 0) return VV_OK;
  const vv_store *st = &db->store;
  uint32_t dim = db->cfg.dimension;
  vv_cand *heap = malloc(((size_t)k + 1) * sizeof *heap);
  uint64_t *seqs = NULL;
  size_t nseq = 0, nh = 0;
  int rc = heap ? vv_lazy_chunk_list(db->lazy, &seqs, &nseq) : VV_E_NOMEM;
  /* Chunk by chunk, one pinned at a time: rows that still hold their
   * slot's current vector. */
  for (size_t i = 0; i < nseq && !rc; i++) {
    const vv_lchunk *c;
    vv_cache_ref *ref;
    if (vv_reads_cancelled(rd)) {
      rc = VV_E_ABORTED;
      break;
    }
    rc = vv_lazy_chunk(db->lazy, seqs[i], &c, &ref);
    if (rc) {
      vv_lazy_explain(db->lazy, seqs[i], rc, vv_reads_err(rd));
      break;
    }
    for (uint32_t row = 0; row < c->count; row++) {
      uint32_t slot = c->slots[row];
      if (slot >= st->nslots || !vv_store_is_live(st, slot)) continue;
      if ((vv_store_flags(st, slot) & VV_SLOT_RESIDENT) || vv_store_loc(st, slot) != VV_LOC(seqs[i], row)) continue;
      offer(heap, &nh, k, (vv_cand){db->sign * db->kern(q, vv_lchunk_vec(c, row), dim), slot});
    }
    vv_lazy_unpin(db->lazy, ref);
  }
  /* Then the vectors held in memory (added or changed since the load). */
  for (uint64_t s = 0; s < st->nslots && !rc; s++) {
    uint32_t slot = (uint32_t)s;
    if (!vv_store_is_live(st, slot) || !(vv_store_flags(st, slot) & VV_SLOT_RESIDENT)) continue;
    offer(heap, &nh, k, (vv_cand){db->sign * db->kern(q, vv_store_vec(st, slot), dim), slot});
  }
  if (!rc) {
    vv_heap_drain_sorted(heap, nh, out);
    *nout = (uint32_t)nh;
  }
  free(heap);
  free(seqs);
  return rc;
}

/* ---- the cache, seen from the public API ---------------------------------- */

void vv_db_cache_info(vv_db *db, vv_cache_info *out) {
  memset(out, 0, sizeof *out);
  out->capacity = db->cache_bytes;
  if (db->lazy) vv_lazy_get_stats(db->lazy, out);
}

int vv_db_set_cache_size(vv_db *db, uint64_t bytes) {
  if (bytes == 0 || bytes > (uint64_t)SIZE_MAX) return VV_E_INVALID;
  pthread_rwlock_rdlock(&db->lock);
  db->cache_bytes = (size_t)bytes;
  if (db->lazy) vv_lazy_set_capacity(db->lazy, (size_t)bytes);
  vv_db_refresh_memory(db);
  pthread_rwlock_unlock(&db->lock);
  return VV_OK;
}

int vv_db_preload(vv_db *db, const uint64_t *seqs, size_t n, vv_progress_fn progress, void *ctx, size_t *loaded) {
  return vv_db_preload_ex(db, seqs, n, progress, ctx, loaded, NULL);
}

int vv_db_preload_ex(vv_db *db, const uint64_t *seqs, size_t n, vv_progress_fn progress, void *ctx, size_t *loaded,
                     vv_error *err) {
  *loaded = 0;
  if (!seqs && n) return VV_E_INVALID;
  pthread_rwlock_rdlock(&db->lock);
  if (!db->lazy) {
    pthread_rwlock_unlock(&db->lock);
    return VV_OK;
  }
  uint64_t *all = NULL;
  size_t nall = 0;
  int rc = vv_lazy_chunk_list(db->lazy, &all, &nall);
  const uint64_t *want = seqs ? seqs : all;
  size_t nwant = seqs ? n : nall;
  for (size_t i = 0; seqs && i < n && !rc; i++) {
    int found = 0;
    for (size_t j = 0; j < nall && !found; j++) found = all[j] == seqs[i];
    if (!found) rc = VV_E_INVALID;
  }
  /* Without a list: stop at the first chunk that no longer fits beside the
   * ones loaded (it would only evict them). */
  uint64_t room = db->cache_bytes, est_row = (uint64_t)db->cfg.dimension * sizeof(float) + 8;
  for (size_t i = 0; i < nwant && !rc; i++) {
    vv_cache_info before, after;
    vv_lazy_get_stats(db->lazy, &before);
    if (!seqs) {
      uint64_t free_bytes = room > before.bytes ? room - before.bytes : 0;
      uint64_t guess = (uint64_t)db->cfg.chunk_size * est_row;
      if (before.chunks && guess > free_bytes) break;
    }
    const vv_lchunk *c;
    vv_cache_ref *ref;
    rc = vv_lazy_chunk(db->lazy, want[i], &c, &ref);
    if (rc) {
      vv_lazy_explain(db->lazy, want[i], rc, err);
      break;
    }
    vv_lazy_unpin(db->lazy, ref);
    vv_lazy_get_stats(db->lazy, &after);
    if (after.misses > before.misses) (*loaded)++;
    if (progress && progress(ctx, i + 1, nwant)) rc = VV_E_ABORTED;
  }
  free(all);
  pthread_rwlock_unlock(&db->lock);
  return rc;
}
