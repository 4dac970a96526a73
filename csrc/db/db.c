/*
 * db/db.c: the database: validates input, serialises writers against
 * readers, and ties the record store to the chosen index (see vecvault.h).
 *
 * Locking: one reader-writer lock. Searches, gets and has take it shared;
 * add and delete take it exclusively. A batch add takes it exclusively one
 * group at a time and links each group with several threads (the graph's own
 * striped locks make that safe), so searches get in between groups and
 * always see whole items.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "../crypto/secret.h"
#include "../common/parallel.h"
#include "../common/util.h"
#include "../distance/distance.h"
#include "../flat/flat.h"
#include "../hnsw/hnsw.h"
#include "../quant/pq.h"
#include "../session/lazy.h"
#include "../store/store.h"
#include "../vecvault.h"


/* ---- validation --------------------------------------------------------- */

static int check_vector(const vv_db *db, const float *v) {
  uint32_t n = db->cfg.dimension;
  double norm2 = 0.0;
  for (uint32_t i = 0; i < n; i++) {
    if (!isfinite(v[i])) return VV_E_BAD_VECTOR;
    norm2 += (double)v[i] * v[i];
  }
  if (db->cfg.metric == VV_METRIC_COSINE && !(norm2 > 0.0)) return VV_E_BAD_VECTOR;
  return VV_OK;
}

static int check_item(const vv_db *db, const vv_item *it) {
  if (!it->id || it->id_len == 0 || it->id_len > VV_MAX_ID_BYTES) return VV_E_BAD_ID;
  /* Metadata is NULL (none) or 1.. bytes: an empty text is no JSON, and
   * storing it as "none" would silently change it. */
  if (it->meta_len > VV_MAX_METADATA_BYTES || (it->meta_len && !it->meta) || (it->meta && !it->meta_len))
    return VV_E_BAD_METADATA;
  if (!it->vector) return VV_E_INVALID;
  if ((it->attrs_len && !it->attrs) || it->attrs_len > VV_MAX_METADATA_BYTES) return VV_E_BAD_METADATA;
  if (it->attrs_len && !db->attrs) return VV_E_BAD_METADATA; /* values for fields never declared */
  if (it->attrs_len) {
    int rc = vv_attrs_check(db->attrs, it->attrs, it->attrs_len);
    if (rc) return rc;
  }
  return check_vector(db, it->vector);
}

/* ---- lifecycle ---------------------------------------------------------- */

int vv_db_create(const vv_config *cfg, vv_db **out) {
  *out = NULL;
  if (!cfg || cfg->dimension < 1 || cfg->dimension > VV_MAX_DIMENSION) return VV_E_INVALID;
  if (cfg->metric > VV_METRIC_DOT || cfg->index > VV_INDEX_FLAT) return VV_E_INVALID;
  vv_config c = *cfg;
  if (!c.hnsw_m) c.hnsw_m = 16;
  if (!c.ef_construction) c.ef_construction = 200;
  if (!c.ef_search) c.ef_search = 64;
  if (!c.threads) c.threads = 1;
  if (!c.chunk_size) c.chunk_size = 10000;
  if (!c.cache_bytes) c.cache_bytes = (uint64_t)150 << 20;
  if (c.hnsw_m < 2 || c.hnsw_m > VV_HNSW_MAX_M || c.ef_construction > VV_HNSW_MAX_EF ||
      c.ef_search > VV_HNSW_MAX_EF)
    return VV_E_INVALID;

  vv_db *db = (vv_db *)calloc(1, sizeof *db);
  if (!db) return VV_E_NOMEM;
  db->cfg = c;
  db->cache_bytes = (size_t)c.cache_bytes;
  const vv_kernels *k = vv_kernels_best();
  db->kern = c.metric == VV_METRIC_L2 ? k->l2sq : k->dot;
  db->sign = c.metric == VV_METRIC_L2 ? 1.0f : -1.0f;
  int rc = vv_store_init(&db->store, c.dimension);
  if (rc) {
    free(db);
    return rc;
  }
  db->store.defer_reuse = c.index == VV_INDEX_HNSW;
  if (c.index == VV_INDEX_HNSW) {
    vv_hnsw_params hp = {c.hnsw_m, c.ef_construction, c.seed, c.metric};
    rc = vv_hnsw_create(&hp, &db->store, &db->hnsw);
    if (rc) {
      vv_store_destroy(&db->store);
      free(db);
      return rc;
    }
  }
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
#if defined(__GLIBC__)
  /* Readers are many and continuous under load; without this a writer
   * could wait for ever behind overlapping searches. */
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
  pthread_rwlock_init(&db->lock, &attr);
  pthread_mutex_init(&db->save_mu, NULL);
  pthread_rwlockattr_destroy(&attr);
  *out = db;
  return VV_OK;
}

void vv_db_free(vv_db *db) {
  if (!db) return;
  vv_lazy_free(db->lazy);
  if (db->pq) vv_pq_destroy(db->pq);
  free(db->pq);
  if (db->has_codes) vv_arena_destroy(&db->codes);
  vv_secrets_clear(&db->secrets);
  free(db->session.dir);
  vv_manifest_free(&db->session.m);
  vv_hnsw_free(db->hnsw);
  vv_attrs_free(db->attrs);
  vv_store_destroy(&db->store);
  pthread_rwlock_destroy(&db->lock);
  pthread_mutex_destroy(&db->save_mu);
  free(db);
}

int vv_db_set_secret(vv_db *db, int encrypt, const unsigned char *key, const char *pass, size_t pass_len) {
  /* A save in progress reads the secrets without the database lock. */
  pthread_mutex_lock(&db->save_mu);
  pthread_rwlock_wrlock(&db->lock);
  int rc = vv_secrets_set(&db->secrets, encrypt, key, pass, pass_len);
  pthread_rwlock_unlock(&db->lock);
  pthread_mutex_unlock(&db->save_mu);
  return rc;
}

int vv_db_set_filterable(vv_db *db, const char *const *paths, const uint32_t *lens, uint32_t n) {
  if (n == 0) return VV_OK;
  if (!paths || !lens) return VV_E_INVALID;
  pthread_rwlock_wrlock(&db->lock);
  int rc = db->attrs || db->store.nslots || db->has_session_id ? VV_E_INVALID : VV_OK;
  if (!rc) rc = vv_attrs_create(paths, lens, n, &db->attrs);
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

uint32_t vv_db_filterable_count(const vv_db *db) { return db->attrs ? vv_attrs_nfields(db->attrs) : 0; }

const char *vv_db_filterable_path(const vv_db *db, uint32_t i, uint32_t *len) {
  *len = 0;
  if (!db->attrs || i >= vv_attrs_nfields(db->attrs)) return NULL;
  return vv_attrs_path(db->attrs, i, len);
}

uint32_t vv_db_dimension(const vv_db *db) { return db->cfg.dimension; }

void vv_db_config(const vv_db *db, vv_config *out, int *encrypted) {
  *out = db->cfg;
  *encrypted = db->secrets.encrypt;
}
vv_metric vv_db_metric(const vv_db *db) { return db->cfg.metric; }

uint64_t vv_db_size(vv_db *db) {
  pthread_rwlock_rdlock(&db->lock);
  uint64_t n = db->store.nlive;
  pthread_rwlock_unlock(&db->lock);
  return n;
}

/* ---- writes ------------------------------------------------------------- */

/* Copies the vector into its slot, normalised under cosine. */
static void write_vector(vv_db *db, uint32_t slot, const float *v) {
  float *dst = vv_store_vec(&db->store, slot);
  memcpy(dst, v, (size_t)db->cfg.dimension * sizeof(float));
  if (db->cfg.metric == VV_METRIC_COSINE) vv_normalize_f32(dst, db->cfg.dimension);
}

/* Once deleted slots are a noticeable share (1 in 20), route the graph
 * around them and hand their slots back: the pass costs O(slots), so this
 * keeps it amortised against the deletes that made it necessary. */
static int maybe_consolidate(vv_db *db, uint32_t threads) {
  vv_store *s = &db->store;
  /* Not while a save reads the slots it captured (vv_store_freeze). */
  if (!db->hnsw || s->frozen || s->ndead == 0 || s->ndead * 20 < s->nslots) return VV_OK;
  int rc = vv_hnsw_consolidate(db->hnsw, threads ? threads : db->cfg.threads);
  if (!rc) vv_store_recycle(s);
  return rc;
}

/* Native bytes per reserved slot beyond the vector: record, flags, id map,
 * graph links, and a typical id. An estimate for the JS garbage collector. */
static uint64_t per_slot_overhead(const vv_db *db) {
  uint64_t links = db->hnsw ? (1 + 2 * (uint64_t)db->cfg.hnsw_m) * 4 + 8 : 0;
  return sizeof(vv_slotrec) + 2 + 16 + links + 32;
}

void vv_db_refresh_memory(vv_db *db) {
  uint64_t cap = vv_arena_capacity(&db->store.vecs);
  uint64_t per = per_slot_overhead(db) + (db->has_codes ? db->pq->m : 0);
  uint64_t attrs = db->attrs ? vv_attrs_memory(db->attrs) : 0;
  /* Lazily loaded: only vectors added since are in memory (their pages of
   * the arena are touched on write); the cache is bounded separately. */
  if (db->lazy) {
    db->mem_estimate = cap * per + db->cache_bytes + attrs;
    return;
  }
  db->mem_estimate = cap * (per + (uint64_t)db->cfg.dimension * sizeof(float)) + attrs;
}

int vv_db_codes_init(vv_db *db) {
  if (db->has_codes) return VV_OK;
  if (!db->pq) return VV_E_INTERNAL;
  vv_arena_init(&db->codes, db->pq->m, 1u << 20);
  int rc = vv_arena_reserve(&db->codes, vv_arena_capacity(&db->store.vecs));
  if (rc) {
    vv_arena_destroy(&db->codes);
    return rc;
  }
  db->has_codes = 1;
  return VV_OK;
}

/* Lazy databases walk the graph on codes: a new vector needs its code
 * before it is linked. */
static void encode_code(vv_db *db, uint32_t slot) {
  vv_pq_encode(db->pq, vv_store_vec(&db->store, slot), (uint8_t *)vv_arena_at(&db->codes, slot));
  vv_store_mark(&db->store, slot, VV_SLOT_CODED);
}

/* ---- the graph on codes: hnsw's distance provider over db->pq and db->codes */

/* The ADC table of a query. It measures with the metric's own kernel; for
 * cosine that is the inner product: a query's product with a
 * reconstruction errs by q.e, while squared L2 would add the
 * reconstruction's norm error 2x.e + |e|^2, larger unless the query is the
 * stored vector itself (clustered 384-D data: recall 0.96 against 0.82 at
 * the same beam). */
static void codes_set_query(void *ctx, const float *q, void *state) {
  const vv_db *db = (const vv_db *)ctx;
  vv_pq_table(db->pq, q, db->cfg.metric == VV_METRIC_L2, (float *)state);
}

/* The sum of m table entries, by the kernel set dispatched for this CPU
 * (quant/codes_kern.h: gathers, tested against the scalar sum). */
static float codes_distance(void *ctx, const void *state, uint32_t slot) {
  const vv_db *db = (const vv_db *)ctx;
  return db->adc((const float *)state, db->pq->ksub, db->pq->m, (const uint8_t *)vv_arena_at(&db->codes, slot));
}

static void codes_vector(void *ctx, uint32_t slot, float *out) {
  const vv_db *db = (const vv_db *)ctx;
  vv_pq_decode(db->pq, (const uint8_t *)vv_arena_at(&db->codes, slot), out);
}

static void codes_prefetch(void *ctx, uint32_t slot) {
  const vv_db *db = (const vv_db *)ctx;
  VV_PREFETCH(vv_arena_at(&db->codes, slot));
}

void vv_db_use_codes(vv_db *db) {
  db->adc = vv_code_kernels_best()->adc;
  const vv_hnsw_provider p = {
      .ctx = db,
      .query_bytes = (size_t)db->pq->m * db->pq->ksub * sizeof(float),
      .set_query = codes_set_query,
      .distance = codes_distance,
      .vector = codes_vector,
      .prefetch = codes_prefetch,
  };
  vv_hnsw_use_provider(db->hnsw, &p);
}

uint64_t vv_db_memory(vv_db *db) { return db->mem_estimate; }

/* Room for `n` more items in the store and the graph. Exclusive lock held. */
static int reserve(vv_db *db, size_t n, uint32_t threads) {
  int rc = maybe_consolidate(db, threads);
  if (!rc) rc = vv_store_reserve(&db->store, n);
  if (!rc && db->hnsw) rc = vv_hnsw_reserve(db->hnsw, vv_arena_capacity(&db->store.vecs));
  if (!rc && db->has_codes) rc = vv_arena_reserve(&db->codes, vv_arena_capacity(&db->store.vecs));
  if (!rc && db->attrs) rc = vv_attrs_reserve(db->attrs, vv_arena_capacity(&db->store.vecs));
  vv_db_refresh_memory(db);
  return rc;
}

void vv_db_retire(vv_db *db, uint32_t slot) {
  vv_store_remove(&db->store, slot);
  if (db->attrs) vv_attrs_clear(db->attrs, slot);
}

/* Binds the item to a slot and writes its vector. Under HNSW an upsert
 * moves the id to a fresh slot and retires the old one like a delete, so
 * graph edges never point at a vector that changed under them; so does any
 * upsert while a save reads the vectors it captured (store frozen). */
static int place(vv_db *db, const vv_item *it, uint32_t *slot) {
  if (db->hnsw || db->store.frozen) {
    uint32_t old = vv_store_lookup(&db->store, it->id, it->id_len);
    if (old != VV_NO_SLOT) vv_db_retire(db, old);
  }
  int was_live;
  int rc = vv_store_place(&db->store, it->id, it->id_len, it->meta, it->meta_len, slot, &was_live);
  if (!rc) write_vector(db, *slot, it->vector);
  if (!rc && db->attrs) {
    rc = vv_attrs_set(db->attrs, *slot, it->attrs, it->attrs_len);
    if (rc) vv_db_retire(db, *slot); /* no record without its values */
  }
  return rc;
}

int vv_db_add(vv_db *db, const vv_item *it) {
  int rc = check_item(db, it);
  if (rc) return rc;
  pthread_rwlock_wrlock(&db->lock);
  rc = db->broken ? db->broken : reserve(db, 1, 0);
  uint32_t slot;
  if (!rc) rc = place(db, it, &slot);
  if (!rc && db->hnsw) {
    if (db->lazy) encode_code(db, slot);
    rc = vv_hnsw_insert(db->hnsw, slot);
    if (rc) vv_db_retire(db, slot); /* the graph could not take it */
  }
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

typedef struct batch_ctx {
  vv_db *db;
  const uint32_t *slots;
  vv_progress_fn progress;
  void *progress_ctx;
  int abort_requested;
} batch_ctx;

static int link_one(void *ctx, size_t i, unsigned worker) {
  (void)worker;
  batch_ctx *b = (batch_ctx *)ctx;
  if (b->db->lazy) encode_code(b->db, b->slots[i]);
  return vv_hnsw_insert(b->db->hnsw, b->slots[i]);
}

/* Progress inside a group: pass it on, but only note a cancel request so the
 * group finishes whole; the batch stops at the next group boundary. */
static int group_progress(void *ctx, uint64_t done, uint64_t total) {
  batch_ctx *b = (batch_ctx *)ctx;
  if (b->progress && !b->abort_requested && b->progress(b->progress_ctx, done, total)) b->abort_requested = 1;
  return 0;
}

/* Places one group under the exclusive lock and links it in parallel. */
static int add_group(vv_db *db, const vv_item *items, size_t n, uint32_t threads, uint32_t *slots,
                     batch_ctx *bc, uint64_t done_before, uint64_t total) {
  int rc = reserve(db, n, threads);
  if (rc) return rc;
  size_t placed = 0;
  for (; placed < n && !rc; placed++) rc = place(db, &items[placed], &slots[placed]);
  if (rc) placed--;
  if (!db->hnsw || placed == 0) return rc;
  /* An id repeated within the group retired its earlier slots: link only
   * the slots still live. */
  size_t uniq = 0;
  for (size_t i = 0; i < placed; i++)
    if (vv_store_is_live(&db->store, slots[i])) slots[uniq++] = slots[i];
  bc->slots = slots;
  int lrc = vv_parallel_for(uniq, threads, link_one, bc, group_progress, bc, done_before, total);
  return rc ? rc : lrc;
}

int vv_db_add_batch(vv_db *db, const vv_item *items, size_t n, uint32_t threads, vv_progress_fn progress,
                    void *progress_ctx, size_t *done) {
  *done = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = check_item(db, &items[i]);
    if (rc) {
      *done = i;
      return rc;
    }
  }
  if (!threads) threads = db->cfg.threads;
  /* Groups are small enough that a waiting search is delayed by tens of
   * milliseconds, large enough to keep every thread busy. */
  size_t group = (size_t)128 * threads;
  uint32_t *slots = (uint32_t *)malloc(VV_MIN(group, n ? n : 1) * sizeof *slots);
  if (!slots) return VV_E_NOMEM;
  batch_ctx bc = {db, NULL, progress, progress_ctx, 0};
  int rc = VV_OK;
  size_t at = 0;
  while (at < n) {
    size_t g = VV_MIN(group, n - at);
    pthread_rwlock_wrlock(&db->lock);
    rc = db->broken ? db->broken : add_group(db, items + at, g, threads, slots, &bc, at, n);
    pthread_rwlock_unlock(&db->lock);
    if (rc) break;
    at += g;
    *done = at;
    if (!bc.abort_requested && progress && progress(progress_ctx, at, n)) bc.abort_requested = 1;
    if (bc.abort_requested && at < n) {
      rc = VV_E_ABORTED;
      break;
    }
  }
  free(slots);
  return rc;
}

int vv_db_delete(vv_db *db, const char *id, size_t id_len, int *removed) {
  *removed = 0;
  if (!id || id_len == 0 || id_len > VV_MAX_ID_BYTES) return VV_E_BAD_ID;
  pthread_rwlock_wrlock(&db->lock);
  int rc = db->broken;
  uint32_t slot = rc ? VV_NO_SLOT : vv_store_lookup(&db->store, id, id_len);
  if (slot != VV_NO_SLOT) {
    vv_db_retire(db, slot);
    *removed = 1;
  }
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

/* ---- reads -------------------------------------------------------------- */

int vv_db_has(vv_db *db, const char *id, size_t id_len, int *found) {
  *found = 0;
  if (!id || id_len == 0 || id_len > VV_MAX_ID_BYTES) return VV_E_BAD_ID;
  pthread_rwlock_rdlock(&db->lock);
  int rc = db->broken;
  *found = !rc && vv_store_lookup(&db->store, id, id_len) != VV_NO_SLOT;
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

void vv_record_free(vv_record *rec) {
  if (!rec) return;
  free(rec->vector);
  free(rec->meta);
  free(rec);
}

int vv_db_get(vv_db *db, const char *id, size_t id_len, vv_record **out) {
  return vv_db_get_ex(db, id, id_len, out, NULL);
}

int vv_db_get_ex(vv_db *db, const char *id, size_t id_len, vv_record **out, vv_error *err) {
  *out = NULL;
  if (!id || id_len == 0 || id_len > VV_MAX_ID_BYTES) return VV_E_BAD_ID;
  pthread_rwlock_rdlock(&db->lock);
  int rc = db->broken;
  uint32_t slot = rc ? VV_NO_SLOT : vv_store_lookup(&db->store, id, id_len);
  vv_reads rd = {err, NULL, NULL};
  vv_pins pins = {.rd = &rd};
  const float *vec;
  const char *meta;
  uint32_t meta_len;
  if (slot != VV_NO_SLOT) rc = vv_db_row(db, slot, &pins, &vec, &meta, &meta_len);
  if (slot != VV_NO_SLOT && !rc) {
    size_t vbytes = (size_t)db->cfg.dimension * sizeof(float);
    vv_record *rec = (vv_record *)calloc(1, sizeof *rec);
    if (rec) rec->vector = (float *)malloc(vbytes);
    if (rec && meta_len) rec->meta = (char *)malloc(meta_len);
    if (!rec || !rec->vector || (meta_len && !rec->meta)) {
      vv_record_free(rec);
      rc = VV_E_NOMEM;
    } else {
      memcpy(rec->vector, vec, vbytes);
      if (meta_len) memcpy(rec->meta, meta, meta_len);
      rec->meta_len = meta_len;
      *out = rec;
    }
  }
  vv_pins_release(db, &pins);
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

void vv_results_free(vv_results *res) { free(res); }

static void to_public(vv_metric m, float internal, float *distance, float *score) {
  switch (m) {
    case VV_METRIC_COSINE:
      *distance = 1.0f + internal;
      *score = -internal;
      break;
    case VV_METRIC_DOT:
      *distance = internal;
      *score = -internal;
      break;
    default:
      *distance = sqrtf(internal > 0.0f ? internal : 0.0f);
      *score = 0.0f - *distance; /* +0 rather than -0 for an exact match */
      break;
  }
}

/* Copies hits into one allocation: header, hits, vectors, then strings.
 * Runs under the read lock so ids and metadata cannot change meanwhile. */
typedef struct hitrow {
  const float *vec;
  const char *meta;
  uint32_t meta_len;
} hitrow;

int vv_db_build_results(vv_db *db, const vv_cand *c, uint32_t n, int include_vector, vv_pins *pins,
                        vv_results **out) {
  size_t vbytes = include_vector ? (size_t)db->cfg.dimension * sizeof(float) : 0;
  size_t strings = 0;
  hitrow *rows = (hitrow *)malloc((n ? n : 1) * sizeof *rows);
  if (!rows) return VV_E_NOMEM;
  for (uint32_t i = 0; i < n; i++) {
    int rc = vv_db_row(db, c[i].slot, pins, &rows[i].vec, &rows[i].meta, &rows[i].meta_len);
    if (rc) {
      free(rows);
      return rc;
    }
    strings += vv_store_rec(&db->store, c[i].slot)->id_len + rows[i].meta_len;
  }
  size_t head = sizeof(vv_results) + (size_t)n * sizeof(vv_hit);
  head = (head + 15) & ~(size_t)15;
  unsigned char *mem = (unsigned char *)malloc(head + (size_t)n * vbytes + strings);
  if (!mem) {
    free(rows);
    return VV_E_NOMEM;
  }
  vv_results *res = (vv_results *)mem;
  res->count = n;
  res->hits = (vv_hit *)(mem + sizeof(vv_results));
  float *vecs = (float *)(mem + head);
  char *str = (char *)(mem + head + (size_t)n * vbytes);
  for (uint32_t i = 0; i < n; i++) {
    const vv_slotrec *r = vv_store_rec(&db->store, c[i].slot);
    vv_hit *h = &res->hits[i];
    to_public(db->cfg.metric, c[i].dist, &h->distance, &h->score);
    memcpy(str, r->id, r->id_len);
    h->id = str;
    h->id_len = r->id_len;
    str += r->id_len;
    h->meta = NULL;
    h->meta_len = rows[i].meta_len;
    if (rows[i].meta_len) {
      memcpy(str, rows[i].meta, rows[i].meta_len);
      h->meta = str;
      str += rows[i].meta_len;
    }
    h->vector = NULL;
    if (include_vector) {
      float *v = vecs + (size_t)i * db->cfg.dimension;
      memcpy(v, rows[i].vec, vbytes);
      h->vector = v;
    }
  }
  free(rows);
  *out = res;
  return VV_OK;
}

static int cmp_dist(const void *a, const void *b) {
  float x = ((const vv_cand *)a)->dist, y = ((const vv_cand *)b)->dist;
  if (x != y) return (x > y) - (x < y);
  uint32_t s = ((const vv_cand *)a)->slot, t = ((const vv_cand *)b)->slot; /* ties: a fixed order */
  return (s > t) - (s < t);
}

/* Lazy search, second step. The graph walk ranked n candidates (c, nearest
 * first) on their codes; re-rank them all by full vectors and keep the best
 * k. It reads exactly the pages that hold candidates not in memory, in
 * parallel, whatever the cache holds, so the result depends on the session
 * and the query only, and a query reads at most n pages. The pages stay
 * pinned in `pins` for the results' metadata. */
int vv_db_rerank(vv_db *db, const float *q, vv_cand *c, uint32_t n, uint32_t k, uint32_t *nout, vv_pins *pins) {
  uint32_t *slots = (uint32_t *)calloc((n ? n : 1) * 2, sizeof *slots);
  if (!slots) return VV_E_NOMEM;
  uint32_t *pin_of = slots + n;
  for (uint32_t i = 0; i < n; i++) slots[i] = c[i].slot;
  int rc = vv_db_pin_rows(db, slots, n, pins, pin_of);
  for (uint32_t i = 0; i < n && !rc; i++) {
    const float *vec;
    rc = vv_db_pinned_row(db, pins, c[i].slot, pin_of[i], &vec);
    if (!rc) c[i].dist = db->sign * db->kern(q, vec, db->cfg.dimension);
  }
  free(slots);
  if (rc) return rc;
  qsort(c, n, sizeof *c, cmp_dist);
  *nout = n < k ? n : k;
  return VV_OK;
}

/* Range search: the nearest-first prefix of c within the caller's bounds,
 * judged on the distances and scores the caller will see. */
static uint32_t within_bounds(const vv_db *db, const vv_search_opts *o, const vv_cand *c, uint32_t n) {
  if (!o->has_max_distance && !o->has_min_score) return n;
  for (uint32_t i = 0; i < n; i++) {
    float d, sc;
    to_public(db->cfg.metric, c[i].dist, &d, &sc);
    if ((o->has_max_distance && d > o->max_distance) || (o->has_min_score && sc < o->min_score)) return i;
  }
  return n;
}

/* One query under an already-held read lock. `qbuf` has room for a
 * normalised copy of the query. */
static int search_locked(vv_db *db, const float *query, float *qbuf, uint32_t k, const vv_search_opts *o,
                         vv_results **out) {
  int rc = db->broken ? db->broken : check_vector(db, query);
  if (rc) return rc;
  const float *q = query;
  if (db->cfg.metric == VV_METRIC_COSINE) {
    memcpy(qbuf, query, (size_t)db->cfg.dimension * sizeof(float));
    vv_normalize_f32(qbuf, db->cfg.dimension);
    q = qbuf;
  }
  uint64_t live = db->store.nlive;
  uint32_t want = (uint64_t)k < live ? k : (uint32_t)live;
  uint32_t ef = o && o->ef_search ? o->ef_search : db->cfg.ef_search;
  /* Lazily, the walk ranks on codes and hands over `pool` candidates for
   * re-ranking by full vectors (the `rerank` option; by default
   * max(VV_RERANK_FACTOR x k, the walk's beam): see docs/PERFORMANCE.md). */
  uint32_t pool = want;
  if (db->lazy && db->hnsw) {
    /* Codes are approximate: the walk's beam is twice the configured one. */
    if (!(o && o->ef_search)) ef = 2 * db->cfg.ef_search > VV_HNSW_MAX_EF ? VV_HNSW_MAX_EF : 2 * db->cfg.ef_search;
    /* The whole beam by default: on the inner product, codes rank vectors
     * of different norms less well, and half the beam lost recall. */
    uint64_t dflt = (uint64_t)VV_RERANK_FACTOR * want;
    if (dflt < ef) dflt = ef;
    pool = o && o->rerank ? o->rerank : (dflt > VV_HNSW_MAX_EF ? VV_HNSW_MAX_EF : (uint32_t)dflt);
    if (pool < want) pool = want;
    if (pool > ef) ef = pool;
  }
  vv_cand *cands = (vv_cand *)malloc(((size_t)pool + 1) * sizeof *cands);
  if (!cands) return VV_E_NOMEM;
  vv_reads rd = {o ? o->err : NULL, o ? o->cancel : NULL, o ? o->cancel_ctx : NULL};
  vv_pins pins = {.rd = &rd};
  uint32_t n = 0;
  int plan = VV_PLAN_NONE;
  if (want && o && o->filter) rc = vv_db_search_filtered(db, q, want, ef, pool, o, &cands, &n, &pins, &plan);
  if (rc || plan != VV_PLAN_NONE) {
    /* done: the filter chose the candidates */
  } else if (want && db->hnsw) {
    /* The walk keeps going through deleted nodes (graph waypoints) until
     * its beam holds `ef` live ones or it has seen every node reachable
     * from the entry point, which a saved graph guarantees is every live
     * node: under heavy deletes it widens by itself, on codes in memory,
     * and never reads the session to make up the count. */
    rc = vv_hnsw_search(db->hnsw, q, pool, ef, cands, &n);
    if (!rc && db->lazy) rc = vv_db_rerank(db, q, cands, n, want, &n, &pins);
    /* In memory, a graph a save has not yet repaired (vv_hnsw_repair) may
     * hide a node even from the widest walk; the exact scan is cheap there. */
    if (!rc && !db->lazy && n < want) rc = vv_db_exact_search(db, q, want, cands, &n, &rd);
  } else if (want) {
    rc = vv_db_exact_search(db, q, want, cands, &n, &rd); /* the flat index */
  }
  if (n > want) n = want;
  if (!rc && o) n = within_bounds(db, o, cands, n);
  if (!rc && o && o->plan_used) *o->plan_used = plan;
  if (!rc) rc = vv_db_build_results(db, cands, n, o && o->include_vector, &pins, out);
  vv_pins_release(db, &pins);
  free(cands);
  return rc;
}

int vv_db_search(vv_db *db, const float *query, uint32_t k, const vv_search_opts *opts, vv_results **out) {
  *out = NULL;
  if (!query || k == 0) return VV_E_INVALID;
  float *qbuf = (float *)malloc((size_t)db->cfg.dimension * sizeof(float));
  if (!qbuf) return VV_E_NOMEM;
  pthread_rwlock_rdlock(&db->lock);
  int rc = search_locked(db, query, qbuf, k, opts, out);
  pthread_rwlock_unlock(&db->lock);
  free(qbuf);
  return rc;
}

typedef struct sbatch_ctx {
  vv_db *db;
  const float *queries;
  uint32_t k;
  const vv_search_opts *opts;
  vv_results **out;
} sbatch_ctx;

static int search_one(void *ctx, size_t i, unsigned worker) {
  (void)worker;
  sbatch_ctx *s = (sbatch_ctx *)ctx;
  float *qbuf = (float *)malloc((size_t)s->db->cfg.dimension * sizeof(float));
  if (!qbuf) return VV_E_NOMEM;
  int rc = search_locked(s->db, s->queries + i * s->db->cfg.dimension, qbuf, s->k, s->opts, &s->out[i]);
  free(qbuf);
  return rc;
}

int vv_db_search_batch(vv_db *db, const float *queries, size_t nq, uint32_t k, const vv_search_opts *opts,
                       vv_results **out) {
  if (!out) return VV_E_INVALID;
  for (size_t i = 0; i < nq; i++) out[i] = NULL;
  if ((!queries && nq) || k == 0) return VV_E_INVALID;
  uint32_t threads = opts && opts->threads ? opts->threads : db->cfg.threads;
  sbatch_ctx s = {db, queries, k, opts, out};
  pthread_rwlock_rdlock(&db->lock);
  int rc = vv_parallel_for(nq, threads, search_one, &s, NULL, NULL, 0, nq);
  pthread_rwlock_unlock(&db->lock);
  if (rc) {
    for (size_t i = 0; i < nq; i++) {
      vv_results_free(out[i]);
      out[i] = NULL;
    }
  }
  return rc;
}

const char *vv_simd_name(void) { return vv_isa_name(vv_kernels_best()->isa); }
