/*
 * db/query.c: queries that carry a filter, and the data API built on the
 * same filters (count, delete where, scan, metadata updates).
 *
 * A filter program (filter/filter.h) is compiled once per call, under the
 * read lock, against the database's attribute store, and then answers per
 * slot from columns in memory: no metadata is parsed and, lazily loaded,
 * no chunk is read to decide a match.
 *
 * The planner picks one of two ways per query, from the filter's
 * estimated selectivity s (per-value counts) and the cost of enumerating
 * its matches through posting lists:
 *   - SCAN: every matching vector is measured (exactly, or on its PQ code
 *     and then re-ranked, when lazy). Chosen when the matches are few: the
 *     posting lists hand them over directly, or a pass over the columns
 *     finds them, or s is at most VV_NARROW. Exact, and cheaper than a
 *     graph walk below a few thousand matches.
 *   - GRAPH: the ordinary walk with the check inside the loop. It walks
 *     failing nodes too, so it stays connected at any selectivity; at low
 *     ones it visits more nodes, which is where the scan takes over.
 * A third, ACORN (hnsw.h: the walk steps over failing neighbours to their
 * neighbours), can be forced; the planner does not choose it: on an
 * ordinary HNSW graph its recall fell short of the in-loop walk's at every
 * selectivity measured on 384-d embedding-like vectors (0.73 against 1.0 at
 * 1%, 0.92 against 0.97 at 10%: docs/PERFORMANCE.md).
 * Whatever the plan, a walk that finds fewer than min(k, live) matching
 * vectors is followed by the exact scan, so a filtered search returns
 * exactly min(k, matching live vectors) results and never fewer. The plan
 * is only about speed and recall; which vectors match never depends on it.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/heap.h"
#include "../filter/filter.h"
#include "../quant/pq.h"
#include "db_internal.h"

/* At or below this selectivity the exact scan wins whatever the size: the
 * in-loop walk visits about 1/s times the nodes to fill its beam, and the
 * scan measures at most 2% of the vectors. */
#define VV_NARROW 0.02
/* A scan is chosen when it measures at most this many vectors per graph
 * link budget (efSearch x m): measured in docs/PERFORMANCE.md. */
#define VV_SCAN_PER_EF_M 8u

/* ---- one call's filter ----------------------------------------------------- */

/* Compiles a program for this call. A database without filterable fields
 * compiles against an empty field list: only programs that name no field
 * (the empty filter) pass. *f is NULL for "no filter". */
static int compile(vv_db *db, const unsigned char *prog, size_t len, vv_attrs **empty, vv_filter **f) {
  *f = NULL;
  *empty = NULL;
  if (!prog) return VV_OK;
  vv_attrs *a = db->attrs;
  if (!a) {
    int rc = vv_attrs_create(NULL, NULL, 0, empty);
    if (rc) return rc;
    a = *empty;
  }
  int rc = vv_filter_compile(a, prog, len, f);
  if (!rc && vv_filter_is_true(*f)) {
    vv_filter_free(*f);
    *f = NULL;
  }
  return rc;
}

static void release(vv_attrs *empty, vv_filter *f) {
  vv_filter_free(f);
  vv_attrs_free(empty);
}

static int pass(const void *ctx, uint32_t slot) { return vv_filter_match((const vv_filter *)ctx, slot); }

/* The live slots that match (f NULL: all), ascending, in a malloc'd array:
 * through the posting lists when the plan has a path, else a pass over
 * every slot. */
static int matching(vv_db *db, vv_filter *f, const vv_filter_plan *plan, uint32_t **out, size_t *n) {
  const vv_store *st = &db->store;
  *out = NULL;
  *n = 0;
  uint32_t *s = NULL;
  size_t ns = 0;
  if (f && plan->has_path && plan->path_cost < st->nslots) {
    int rc = vv_filter_candidates(f, st->nslots, &s, &ns);
    if (rc) return rc;
    size_t m = 0;
    for (size_t i = 0; i < ns; i++)
      if (vv_store_is_live(st, s[i]) && vv_filter_match(f, s[i])) s[m++] = s[i];
    *out = s;
    *n = m;
    return VV_OK;
  }
  size_t cap = 0;
  for (uint64_t i = 0; i < st->nslots; i++) {
    uint32_t slot = (uint32_t)i;
    if (!vv_store_is_live(st, slot) || (f && !vv_filter_match(f, slot))) continue;
    if (ns == cap) {
      size_t c = cap ? cap * 2 : 1024;
      uint32_t *p = (uint32_t *)realloc(s, c * sizeof *p);
      if (!p) {
        free(s);
        return VV_E_NOMEM;
      }
      s = p;
      cap = c;
    }
    s[ns++] = slot;
  }
  *out = s;
  *n = ns;
  return VV_OK;
}

/* ---- the exact plan ------------------------------------------------------------ */

/* Keeps the `keep` nearest of the offered candidates (a max-heap). */
static inline void offer(vv_cand *heap, size_t *nh, size_t keep, vv_cand c) {
  if (*nh < keep) {
    vv_heap_push_max(heap, nh, c);
  } else if (c.dist < heap[0].dist) {
    vv_heap_pop_max(heap, nh);
    vv_heap_push_max(heap, nh, c);
  }
}

/* Measures every slot of slots[0..n) (live, matching) and leaves the best
 * `want`, nearest first, in c (room for pool + 1). In memory: exactly.
 * Lazily: rows in memory exactly, the others on their PQ codes, then the
 * best `pool` are re-ranked by full vectors, as after a graph walk, so
 * only the pages of those are read. */
/* Rows a lazily loaded flat index (no codes) measures per round of reads:
 * their pages are pinned together, read in parallel, then let go. */
#define VV_SCAN_BATCH 256u

/* Lazy without codes (the flat index): every matching row is read, a batch
 * of pages at a time, and measured exactly. */
static int scan_rows(vv_db *db, const float *q, const uint32_t *slots, size_t n, vv_cand *c, size_t keep,
                     size_t *nh, const vv_reads *rd) {
  uint32_t pin_of[VV_SCAN_BATCH];
  int rc = VV_OK;
  for (size_t at = 0; at < n && !rc; at += VV_SCAN_BATCH) {
    size_t b = n - at < VV_SCAN_BATCH ? n - at : VV_SCAN_BATCH;
    vv_pins batch = {.rd = rd};
    rc = vv_db_pin_rows(db, slots + at, b, &batch, pin_of);
    for (size_t i = 0; i < b && !rc; i++) {
      const float *vec;
      rc = vv_db_pinned_row(db, &batch, slots[at + i], pin_of[i], &vec);
      if (!rc) offer(c, nh, keep, (vv_cand){db->sign * db->kern(q, vec, db->cfg.dimension), slots[at + i]});
    }
    vv_pins_release(db, &batch);
  }
  return rc;
}

static int scan_slots(vv_db *db, const float *q, const uint32_t *slots, size_t n, uint32_t want, uint32_t pool,
                      vv_cand *c, uint32_t *nout, vv_pins *pins) {
  const vv_store *st = &db->store;
  uint32_t dim = db->cfg.dimension;
  int coded = db->lazy && db->has_codes;
  size_t keep = coded ? pool : want;
  size_t nh = 0;
  if (db->lazy && !coded) {
    int rc = scan_rows(db, q, slots, n, c, keep, &nh, pins->rd);
    if (rc) return rc;
    n = 0; /* measured */
  }
  float *table = NULL;
  if (coded) {
    table = (float *)malloc((size_t)db->pq->m * db->pq->ksub * sizeof *table);
    if (!table) return VV_E_NOMEM;
    vv_pq_table(db->pq, q, db->cfg.metric == VV_METRIC_L2, table);
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t slot = slots[i];
    float d;
    if (!coded || (vv_store_flags(st, slot) & VV_SLOT_RESIDENT)) {
      d = db->sign * db->kern(q, vv_store_vec(st, slot), dim);
    } else {
      d = db->adc(table, db->pq->ksub, db->pq->m, (const uint8_t *)vv_arena_at(&db->codes, slot));
    }
    offer(c, &nh, keep, (vv_cand){d, slot});
  }
  free(table);
  /* Nearest first: drain the max-heap from the back. */
  uint32_t got = (uint32_t)nh;
  while (nh) {
    vv_cand top = c[0];
    vv_heap_pop_max(c, &nh);
    c[nh] = top; /* the slot the pop just freed */
  }
  *nout = got;
  if (coded) return vv_db_rerank(db, q, c, *nout, want, nout, pins);
  return VV_OK;
}

static int scan_plan(vv_db *db, const float *q, vv_filter *f, const vv_filter_plan *plan, uint32_t want,
                     uint32_t pool, vv_cand *c, uint32_t *nout, vv_pins *pins) {
  uint32_t *slots;
  size_t n;
  int rc = matching(db, f, plan, &slots, &n);
  if (!rc) rc = scan_slots(db, q, slots, n, want, pool, c, nout, pins);
  free(slots);
  return rc;
}

/* ---- the planner ---------------------------------------------------------------- */

static int choose(const vv_db *db, const vv_filter_plan *p, uint32_t ef) {
  if (!db->hnsw) return VV_PLAN_SCAN;
  uint64_t budget = (uint64_t)VV_SCAN_PER_EF_M * ef * db->cfg.hnsw_m;
  if (p->has_path && p->path_cost <= budget) return VV_PLAN_SCAN;
  /* Without a path a scan first passes over every slot's columns (a few
   * ns each): worth it while the matches are few. */
  double matches = p->selectivity * (double)db->store.nlive;
  if (matches <= (double)budget / 4 || p->selectivity <= VV_NARROW) return VV_PLAN_SCAN;
  return VV_PLAN_GRAPH;
}

int vv_db_search_filtered(vv_db *db, const float *q, uint32_t want, uint32_t ef, uint32_t pool,
                          const vv_search_opts *o, vv_cand **cands, uint32_t *n, vv_pins *pins, int *plan_out) {
  *plan_out = VV_PLAN_NONE;
  *n = 0;
  if (o->plan < VV_PLAN_AUTO || o->plan > VV_PLAN_ACORN) return VV_E_INVALID;
  vv_attrs *empty;
  vv_filter *f;
  int rc = compile(db, o->filter, o->filter_len, &empty, &f);
  if (rc || !f) {
    release(empty, f);
    return rc;
  }
  vv_filter_plan p;
  rc = vv_filter_estimate(f, db->store.nlive, &p);
  int plan = o->plan ? o->plan : choose(db, &p, ef);
  if (!db->hnsw) plan = VV_PLAN_SCAN;
  if (!rc && plan == VV_PLAN_SCAN) {
    rc = scan_plan(db, q, f, &p, want, pool, *cands, n, pins);
  } else if (!rc) {
    vv_hnsw_filter hf = {pass, f, plan == VV_PLAN_ACORN};
    rc = vv_hnsw_search_filtered(db->hnsw, q, pool, ef, &hf, *cands, n);
    /* Fewer than asked: either fewer match, or the walk missed some. The
     * exact scan settles which, and returns them all. Decided before any
     * re-ranking, so a lazy query still reads at most its pool's pages. */
    if (!rc && *n < want) rc = scan_plan(db, q, f, &p, want, pool, *cands, n, pins);
    else if (!rc && db->lazy) rc = vv_db_rerank(db, q, *cands, *n, want, n, pins);
  }
  *plan_out = plan;
  release(empty, f);
  return rc;
}

/* ---- the data API ------------------------------------------------------------------ */

/* The live slots a filter program matches (every live slot for none),
 * ascending, in a malloc'd array. Lock held. */
static int select_slots(vv_db *db, const unsigned char *filter, size_t filter_len, uint32_t **slots, size_t *n) {
  *slots = NULL;
  *n = 0;
  vv_attrs *empty;
  vv_filter *f;
  vv_filter_plan p = {1.0, 0, 0}; /* no filter: the pass over every slot */
  int rc = compile(db, filter, filter_len, &empty, &f);
  if (!rc && f) rc = vv_filter_estimate(f, db->store.nlive, &p);
  if (!rc) rc = matching(db, f, &p, slots, n);
  release(empty, f);
  return rc;
}

int vv_db_count(vv_db *db, const unsigned char *filter, size_t filter_len, uint64_t *out) {
  *out = 0;
  pthread_rwlock_rdlock(&db->lock);
  int rc = db->broken;
  uint32_t *slots = NULL;
  size_t n = 0;
  if (!rc && filter) rc = select_slots(db, filter, filter_len, &slots, &n);
  else if (!rc) n = db->store.nlive;
  free(slots);
  if (!rc) *out = n;
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

int vv_db_delete_many(vv_db *db, const char *const *ids, const size_t *id_lens, size_t n, uint64_t *deleted) {
  *deleted = 0;
  if (n && (!ids || !id_lens)) return VV_E_INVALID;
  for (size_t i = 0; i < n; i++)
    if (!ids[i] || id_lens[i] == 0 || id_lens[i] > VV_MAX_ID_BYTES) return VV_E_BAD_ID;
  pthread_rwlock_wrlock(&db->lock);
  int rc = db->broken;
  for (size_t i = 0; i < n && !rc; i++) {
    uint32_t slot = vv_store_lookup(&db->store, ids[i], id_lens[i]);
    if (slot == VV_NO_SLOT) continue;
    vv_db_retire(db, slot);
    (*deleted)++;
  }
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

int vv_db_delete_where(vv_db *db, const unsigned char *filter, size_t filter_len, uint64_t *deleted) {
  *deleted = 0;
  pthread_rwlock_wrlock(&db->lock);
  int rc = db->broken;
  uint32_t *slots = NULL;
  size_t n = 0;
  /* The filter reads the columns the deletes change: match first, then delete. */
  if (!rc) rc = select_slots(db, filter, filter_len, &slots, &n);
  for (size_t i = 0; i < n && !rc; i++) vv_db_retire(db, slots[i]);
  if (!rc) *deleted = n;
  free(slots);
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

/* A lazy row's vector, read under the read lock: *vec is malloc'd, or
 * NULL when the id is absent or its vector is in memory. */
static int fetch_vector(vv_db *db, const char *id, size_t id_len, uint32_t *slot, float **vec, vv_error *err) {
  *vec = NULL;
  pthread_rwlock_rdlock(&db->lock);
  int rc = db->broken;
  *slot = rc ? VV_NO_SLOT : vv_store_lookup(&db->store, id, id_len);
  if (*slot != VV_NO_SLOT && db->lazy && !(vv_store_flags(&db->store, *slot) & VV_SLOT_RESIDENT)) {
    vv_reads rd = {err, NULL, NULL};
    vv_pins pins = {.rd = &rd};
    const float *v;
    const char *m;
    uint32_t ml;
    size_t bytes = (size_t)db->cfg.dimension * sizeof(float);
    rc = vv_db_row(db, *slot, &pins, &v, &m, &ml);
    if (!rc) *vec = (float *)malloc(bytes);
    if (!rc && !*vec) rc = VV_E_NOMEM;
    if (!rc) memcpy(*vec, v, bytes);
    vv_pins_release(db, &pins);
  }
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

/* The most times an update reads a row again because a writer moved its id meanwhile. */
#define VV_UPDATE_TRIES 8

int vv_db_update_meta(vv_db *db, const char *id, size_t id_len, const char *meta, size_t meta_len,
                      const unsigned char *attrs, size_t attrs_len, int *found, vv_error *err) {
  *found = 0;
  if (!id || id_len == 0 || id_len > VV_MAX_ID_BYTES) return VV_E_BAD_ID;
  if (meta_len > VV_MAX_METADATA_BYTES || (meta_len && !meta) || (meta && !meta_len)) return VV_E_BAD_METADATA;
  if ((attrs_len && !attrs) || attrs_len > VV_MAX_METADATA_BYTES || (attrs_len && !db->attrs))
    return VV_E_BAD_METADATA;
  if (attrs_len) {
    int rc = vv_attrs_check(db->attrs, attrs, attrs_len);
    if (rc) return rc;
  }
  /* Lazily loaded, the row's vector lives in its chunk, and the next save
   * writes the row anew, so it must be in memory by then. It is read
   * first, under the read lock: no writer waits while a page is read (from
   * storage that may be JavaScript's). */
  for (int tries = 0; tries < VV_UPDATE_TRIES; tries++) {
    uint32_t slot;
    float *vec;
    int rc = fetch_vector(db, id, id_len, &slot, &vec, err);
    if (rc || slot == VV_NO_SLOT) return rc;
    pthread_rwlock_wrlock(&db->lock);
    vv_store *st = &db->store;
    rc = db->broken;
    uint32_t now = rc ? VV_NO_SLOT : vv_store_lookup(st, id, id_len);
    int resident = now != VV_NO_SLOT && (!db->lazy || (vv_store_flags(st, now) & VV_SLOT_RESIDENT));
    if (!rc && now != VV_NO_SLOT && !resident && (now != slot || !vec)) {
      /* Moved or evicted between the two locks: read it again. */
      pthread_rwlock_unlock(&db->lock);
      free(vec);
      continue;
    }
    vv_buf old = {0};
    if (!rc && now != VV_NO_SLOT) {
      *found = 1;
      /* The values first (they can be put back), then the metadata. */
      if (db->attrs) rc = vv_attrs_encode(db->attrs, now, &old);
      if (!rc && db->attrs) rc = vv_attrs_set(db->attrs, now, attrs, attrs_len);
      if (!rc) {
        rc = vv_store_set_meta(st, now, meta, meta_len);
        if (rc && db->attrs && vv_attrs_set(db->attrs, now, old.data, old.len)) rc = VV_E_INTERNAL;
      }
      if (!rc && !resident) {
        memcpy(vv_store_vec(st, now), vec, (size_t)db->cfg.dimension * sizeof(float));
        vv_store_mark(st, now, VV_SLOT_RESIDENT);
      }
      if (!rc) vv_store_mark(st, now, VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY);
    }
    vv_buf_free(&old);
    pthread_rwlock_unlock(&db->lock);
    free(vec);
    return rc;
  }
  return VV_E_LOCKED; /* other writers kept moving the id */
}

int vv_db_scan(vv_db *db, const unsigned char *filter, size_t filter_len, uint64_t *cursor, uint32_t limit,
               int include_vector, vv_results **out, vv_error *err) {
  *out = NULL;
  if (!cursor || limit == 0) return VV_E_INVALID;
  pthread_rwlock_rdlock(&db->lock);
  int rc = db->broken;
  vv_attrs *empty = NULL;
  vv_filter *f = NULL;
  if (!rc) rc = compile(db, filter, filter_len, &empty, &f);
  const vv_store *st = &db->store;
  vv_cand *c = rc ? NULL : (vv_cand *)malloc((size_t)limit * sizeof *c);
  uint32_t *slots = rc ? NULL : (uint32_t *)malloc((size_t)limit * 2 * sizeof *slots);
  if (!rc && (!c || !slots)) rc = VV_E_NOMEM;
  uint32_t n = 0;
  uint64_t at = *cursor;
  for (; !rc && at < st->nslots && n < limit; at++) {
    uint32_t slot = (uint32_t)at;
    if (!vv_store_is_live(st, slot) || (f && !vv_filter_match(f, slot))) continue;
    c[n] = (vv_cand){0.0f, slot};
    slots[n++] = slot;
  }
  vv_reads rd = {err, NULL, NULL};
  vv_pins pins = {.rd = &rd};
  /* Pin every page at once (read in parallel), then copy the rows out. */
  if (!rc) rc = vv_db_pin_rows(db, slots, n, &pins, slots + limit);
  if (!rc) rc = vv_db_build_results(db, c, n, include_vector, &pins, out);
  if (!rc) {
    for (uint32_t i = 0; i < n; i++) (*out)->hits[i].distance = (*out)->hits[i].score = 0.0f;
    *cursor = at >= st->nslots ? UINT64_MAX : at;
  }
  vv_pins_release(db, &pins);
  free(c);
  free(slots);
  release(empty, f);
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

void vv_db_walk(vv_db *db, int delta) { atomic_fetch_add(&db->store.walks, delta); }
