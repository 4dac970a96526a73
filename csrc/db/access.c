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

#include "../common/parallel.h"

#define PAGE_KEY(seq, page) ((uint64_t)(seq) << 32 | (page))

struct vv_pin {
  uint64_t key;
  const vv_lpage *page;
  vv_cache_ref *ref;
};

static int pins_room(vv_pins *ps, size_t more) {
  if (ps->n + more <= ps->cap) return VV_OK;
  size_t cap = ps->cap ? ps->cap : 8;
  while (cap < ps->n + more) cap *= 2;
  struct vv_pin *p = realloc(ps->p, cap * sizeof *p);
  if (!p) return VV_E_NOMEM;
  ps->p = p;
  ps->cap = cap;
  return VV_OK;
}

static const vv_lpage *pinned(const vv_pins *ps, uint64_t key) {
  for (size_t i = ps->n; i-- > 0;) /* the newest pin is the likeliest */
    if (ps->p[i].key == key) return ps->p[i].page;
  return NULL;
}

static int pin_page(vv_db *db, vv_pins *ps, uint64_t seq, uint32_t page, const vv_lpage **out) {
  if ((*out = pinned(ps, PAGE_KEY(seq, page)))) return VV_OK;
  int rc = pins_room(ps, 1);
  if (rc) return rc;
  if (vv_reads_cancelled(ps->rd)) return VV_E_ABORTED;
  struct vv_pin *pin = &ps->p[ps->n];
  rc = vv_lazy_page(db->lazy, seq, page, &pin->page, &pin->ref);
  if (rc) {
    vv_lazy_explain(db->lazy, seq, page, rc, vv_reads_err(ps->rd));
    return rc;
  }
  pin->key = PAGE_KEY(seq, page);
  ps->n++;
  *out = pin->page;
  return VV_OK;
}

/* The page that holds `loc`. */
static int locate(vv_db *db, const vv_pins *ps, uint64_t loc, uint32_t *page) {
  uint32_t npages;
  int rc = vv_lazy_locate(db->lazy, VV_LOC_CHUNK(loc), VV_LOC_ROW(loc), page, &npages);
  if (rc) vv_lazy_explain(db->lazy, VV_LOC_CHUNK(loc), UINT32_MAX, rc, vv_reads_err(ps->rd));
  return rc;
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

const char *vv_db_check_chunk(void *ctx, const vv_lpage *p, const char *const *ids, const uint32_t *id_lens,
                              uint32_t *bad_row) {
  const vv_db *db = ctx;
  const vv_store *st = &db->store;
  for (uint32_t i = 0; i < p->count; i++) {
    uint32_t slot = p->slots[i], row = p->first + i;
    if (slot >= st->nslots || vv_store_loc(st, slot) != VV_LOC(p->seq, row)) continue;
    uint8_t f = vv_store_flags(st, slot);
    if ((f & VV_SLOT_RESIDENT) || !(f & VV_SLOT_SAVED)) continue;
    const char *why = vv_db_check_row(db, slot, ids[i], id_lens[i], vv_lpage_vec(p, row));
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
  uint32_t page, row = VV_LOC_ROW(loc);
  const vv_lpage *p;
  int rc = locate(db, ps, loc, &page);
  if (!rc) rc = pin_page(db, ps, VV_LOC_CHUNK(loc), page, &p);
  if (rc) return rc;
  /* Load checked every location against its chunk's row count, and the
   * loader checked the row's slot; a mismatch now is damage. */
  if (row < p->first || row - p->first >= p->count || p->slots[row - p->first] != slot) {
    vv_lazy_explain(db->lazy, VV_LOC_CHUNK(loc), page, VV_E_CHUNK_CORRUPT, vv_reads_err(ps->rd));
    return VV_E_CHUNK_CORRUPT;
  }
  *vec = vv_lpage_vec(p, row);
  *meta = vv_lpage_meta(p, row, meta_len);
  return VV_OK;
}

int vv_db_pinned_row(vv_db *db, const vv_pins *ps, uint32_t slot, uint32_t pin, const float **vec) {
  const vv_store *st = &db->store;
  if (pin == UINT32_MAX) {
    *vec = vv_store_vec(st, slot);
    return VV_OK;
  }
  const vv_lpage *p = ps->p[pin].page;
  uint32_t row = VV_LOC_ROW(vv_store_loc(st, slot));
  if (row < p->first || row - p->first >= p->count || p->slots[row - p->first] != slot) {
    vv_lazy_explain(db->lazy, p->seq, p->page, VV_E_CHUNK_CORRUPT, vv_reads_err(ps->rd));
    return VV_E_CHUNK_CORRUPT;
  }
  *vec = vv_lpage_vec(p, row);
  return VV_OK;
}

/* ---- reading many rows at once -------------------------------------------- */

typedef struct fetch {
  vv_db *db;
  struct vv_pin *pins; /* one per page to read */
  const vv_reads *rd;
} fetch;

static int fetch_one(void *ctx, size_t i, unsigned worker) {
  (void)worker;
  fetch *f = ctx;
  struct vv_pin *pin = &f->pins[i];
  if (vv_reads_cancelled(f->rd)) return VV_E_ABORTED;
  int rc = vv_lazy_page(f->db->lazy, pin->key >> 32, (uint32_t)pin->key, &pin->page, &pin->ref);
  if (rc) {
    pin->ref = NULL;
    vv_lazy_explain(f->db->lazy, pin->key >> 32, (uint32_t)pin->key, rc, vv_reads_err(f->rd));
  }
  return rc;
}

/* Orders pairs and pins by their first u64 (the page key). */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

int vv_db_pin_rows(vv_db *db, const uint32_t *slots, size_t n, vv_pins *ps, uint32_t *pin_of) {
  for (size_t i = 0; pin_of && i < n; i++) pin_of[i] = UINT32_MAX;
  if (!db->lazy) return VV_OK;
  const vv_store *st = &db->store;
  /* (page key, candidate) pairs, sorted: each page once. */
  uint64_t (*kv)[2] = malloc((n ? n : 1) * sizeof *kv);
  uint64_t *want = malloc((n ? n : 1) * sizeof *want);
  int rc = kv && want ? VV_OK : VV_E_NOMEM;
  size_t nk = 0, nwant = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    if (vv_store_flags(st, slots[i]) & VV_SLOT_RESIDENT) continue;
    uint64_t loc = vv_store_loc(st, slots[i]);
    uint32_t page;
    rc = locate(db, ps, loc, &page);
    if (rc) break;
    kv[nk][0] = PAGE_KEY(VV_LOC_CHUNK(loc), page);
    kv[nk++][1] = i;
  }
  if (!rc) qsort(kv, nk, sizeof *kv, cmp_u64);
  if (!rc) rc = pins_room(ps, nk);
  /* Cached pages are pinned now, the others listed; pin_of refers to
   * positions in ps, filled in as pins land. */
  size_t first_new = ps->n;
  for (size_t a = 0; a < nk && !rc; a++) {
    uint64_t key = kv[a][0];
    if (a && kv[a - 1][0] == key) continue;
    if (pinned(ps, key)) continue;
    struct vv_pin *pin = &ps->p[ps->n];
    if (vv_lazy_peek(db->lazy, key >> 32, (uint32_t)key, &pin->page, &pin->ref) == VV_OK) {
      pin->key = key;
      ps->n++;
    } else {
      want[nwant++] = key;
    }
  }
  /* The rest are read in parallel: a few threads, each a positioned read. */
  if (!rc && nwant) rc = pins_room(ps, nwant);
  if (!rc && nwant) {
    struct vv_pin *fresh = ps->p + ps->n;
    for (size_t i = 0; i < nwant; i++) fresh[i] = (struct vv_pin){want[i], NULL, NULL};
    /* Local pages: a thread per 4, up to VV_READ_THREADS. Remote ones: as
     * many reads in flight as may be, since each waits on the store. */
    unsigned threads;
    if (vv_lazy_remote(db->lazy))
      threads = nwant < VV_READ_THREADS_REMOTE ? (unsigned)nwant : VV_READ_THREADS_REMOTE;
    else
      threads = nwant >= 4 * VV_READ_THREADS ? VV_READ_THREADS : (unsigned)(nwant + 3) / 4;
    fetch f = {db, fresh, ps->rd};
    rc = vv_parallel_eager(nwant, threads, fetch_one, &f);
    /* Keep what was read (released with the rest), whatever failed. */
    size_t kept = 0;
    for (size_t i = 0; i < nwant; i++)
      if (fresh[i].ref) fresh[kept++] = fresh[i];
    ps->n += kept;
  }
  /* Which pin holds each candidate: the new pins, sorted by key, walked
   * along the sorted candidates. */
  if (!rc && pin_of) qsort(ps->p + first_new, ps->n - first_new, sizeof *ps->p, cmp_u64);
  for (size_t a = 0, b = 0; !rc && pin_of && a < nk; a++) {
    uint64_t key = kv[a][0];
    while (b < ps->n - first_new && ps->p[first_new + b].key < key) b++;
    size_t at = first_new + b;
    if (at >= ps->n || ps->p[at].key != key) { /* pinned before this call */
      for (at = 0; at < first_new && ps->p[at].key != key; at++) {}
    }
    pin_of[kv[a][1]] = (uint32_t)at;
  }
  free(kv);
  free(want);
  return rc;
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

/* Pins each page of chunk `seq` in turn, one at a time, for fn (NULL:
 * just read it). */
static int chunk_pages(vv_db *db, uint64_t seq, const vv_reads *rd, void (*fn)(void *ctx, const vv_lpage *p),
                       void *ctx) {
  uint32_t page, npages = 1;
  int rc = vv_lazy_locate(db->lazy, seq, 0, &page, &npages);
  if (rc) vv_lazy_explain(db->lazy, seq, UINT32_MAX, rc, vv_reads_err(rd));
  for (uint32_t pg = 0; pg < npages && !rc; pg++) {
    const vv_lpage *p;
    vv_cache_ref *ref;
    if (vv_reads_cancelled(rd)) return VV_E_ABORTED;
    rc = vv_lazy_page(db->lazy, seq, pg, &p, &ref);
    if (rc) {
      vv_lazy_explain(db->lazy, seq, pg, rc, vv_reads_err(rd));
      break;
    }
    if (fn) fn(ctx, p);
    vv_lazy_unpin(db->lazy, ref);
  }
  return rc;
}

typedef struct exact {
  vv_db *db;
  const float *q;
  vv_cand *heap;
  size_t nh;
  uint32_t k;
} exact;

/* Offers the rows of a page that still hold their slot's current vector. */
static void offer_page(void *ctx, const vv_lpage *p) {
  exact *e = ctx;
  const vv_store *st = &e->db->store;
  for (uint32_t i = 0; i < p->count; i++) {
    uint32_t slot = p->slots[i], row = p->first + i;
    if (slot >= st->nslots || !vv_store_is_live(st, slot)) continue;
    if ((vv_store_flags(st, slot) & VV_SLOT_RESIDENT) || vv_store_loc(st, slot) != VV_LOC(p->seq, row)) continue;
    float d = e->db->sign * e->db->kern(e->q, vv_lpage_vec(p, row), e->db->cfg.dimension);
    offer(e->heap, &e->nh, e->k, (vv_cand){d, slot});
  }
}

int vv_db_exact_search(vv_db *db, const float *q, uint32_t k, vv_cand *out, uint32_t *nout, const vv_reads *rd) {
  if (!db->lazy) return vv_flat_search(&db->store, db->kern, db->sign, q, k, out, nout);
  *nout = 0;
  if (k == 0) return VV_OK;
  const vv_store *st = &db->store;
  uint32_t dim = db->cfg.dimension;
  exact e = {db, q, malloc(((size_t)k + 1) * sizeof *e.heap), 0, k};
  uint64_t *seqs = NULL;
  size_t nseq = 0;
  int rc = e.heap ? vv_lazy_chunk_list(db->lazy, &seqs, &nseq) : VV_E_NOMEM;
  /* Page by page, one pinned at a time. */
  for (size_t i = 0; i < nseq && !rc; i++) rc = chunk_pages(db, seqs[i], rd, offer_page, &e);
  /* Then the vectors held in memory (added or changed since the load). */
  for (uint64_t s = 0; s < st->nslots && !rc; s++) {
    uint32_t slot = (uint32_t)s;
    if (!vv_store_is_live(st, slot) || !(vv_store_flags(st, slot) & VV_SLOT_RESIDENT)) continue;
    offer(e.heap, &e.nh, k, (vv_cand){db->sign * db->kern(q, vv_store_vec(st, slot), dim), slot});
  }
  if (!rc) {
    vv_heap_drain_sorted(e.heap, e.nh, out);
    *nout = (uint32_t)e.nh;
  }
  free(e.heap);
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
  if (!db->lazy || db->broken) {
    int rc = db->broken;
    pthread_rwlock_unlock(&db->lock);
    return rc;
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
  /* What a chunk costs in the cache: estimated until one was loaded, then
   * the most one took (pages are pooled in 4 KiB steps, plus tables). */
  uint64_t est_row = (uint64_t)db->cfg.dimension * sizeof(float) + 8, per_chunk = 0;
  for (size_t i = 0; i < nwant && !rc; i++) {
    vv_cache_info before, after;
    vv_lazy_get_stats(db->lazy, &before);
    if (!seqs) {
      uint64_t free_bytes = before.capacity > before.bytes ? before.capacity - before.bytes : 0;
      uint64_t guess = per_chunk ? per_chunk : (uint64_t)db->cfg.chunk_size * est_row;
      if (before.entries && guess > free_bytes) break;
    }
    vv_reads rd = {err, NULL, NULL};
    rc = chunk_pages(db, want[i], &rd, NULL, NULL);
    if (rc) break;
    vv_lazy_get_stats(db->lazy, &after);
    if (after.bytes > before.bytes && after.bytes - before.bytes > per_chunk) per_chunk = after.bytes - before.bytes;
    if (after.misses > before.misses) (*loaded)++;
    if (progress && progress(ctx, i + 1, nwant)) rc = VV_E_ABORTED;
  }
  free(all);
  pthread_rwlock_unlock(&db->lock);
  return rc;
}
