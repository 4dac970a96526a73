/*
 * db/load.c: a database from a session (vv_db_load): the index applied to
 * the store and the graph, the chunks read (or, lazily, left where they
 * are), the whole checked. Opening the session is session/reader.c.
 *
 * Order of checks, each before anything later may trust the bytes: the
 * manifest's frame and checksum; its schema and version; the key (derived
 * or unwrapped, then compared with keyCheck); the manifest MAC. Then every
 * object is checked for size, hash and tag before it is decoded, and the
 * decoded graph is validated as a whole (every link points at a node that
 * exists on that level, ids are unique, the entry point is real) before the
 * database is handed out.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/codec.h"
#include "../codec/index3.h"
#include "../common/parallel.h"
#include "../crypto/secret.h"
#include "../session/lazy.h"
#include "../session/paged.h"
#include "../session/reader.h"
#include "db_internal.h"

/* One opened page of an index segment (format 3), or a whole segment. */
struct seg_page {
  const unsigned char *plain;
  size_t len;
  uint32_t nodes;
};

typedef struct load {
  vv_db *db;
  vv_sctx sc;
  const vv_manifest *m;
  vv_error *err;
  vv_session_progress_fn progress;
  void *pctx;
  uint64_t done, total;
  _Atomic uint64_t bytes;
  pthread_mutex_t err_mu;
  int err_set;
  pthread_mutex_t attrs_mu; /* base segments are applied in parallel; the attribute store is one */
  vv_buf *bufs;        /* one reusable read buffer per worker */
  unsigned nbufs;
  vv_buf *seg_bufs;    /* index segments, read in parallel, applied in order */
  struct seg_page **seg_pages; /* per segment: its pages' plaintexts (one for formats 1 and 2) */
  uint32_t *seg_np;
  int lazy;            /* chunks stay unread: locations are checked against the index */
  vv_chunk_index chunks; /* the manifest's chunks by seq (lazy location checks) */
  uint32_t *rows_by_seq; /* or a direct table of it: rows + 1 of chunk seq, 0 = none */
  uint64_t nrows_by_seq;
  _Atomic uint8_t *claimed; /* while base segments are applied in parallel: slots seen */
  uint8_t *levels;     /* per slot: graph levels (0 = not a node); a dense copy for validation */
  uint64_t nlevels;
  int dry;             /* apply_segment only checks (a refresh in place, before it changes anything) */
} load;

/* Records the first error message (workers may fail at once). */
static int say(load *l, int rc, const char *fmt, const char *detail) {
  pthread_mutex_lock(&l->err_mu);
  if (l->err && !l->err_set) {
    snprintf(l->err->message, sizeof l->err->message, fmt, detail);
    l->err_set = 1;
  }
  pthread_mutex_unlock(&l->err_mu);
  return rc;
}

static int keep_error(load *l, int rc, const vv_error *local) {
  pthread_mutex_lock(&l->err_mu);
  if (l->err && !l->err_set && local->message[0]) {
    *l->err = *local;
    l->err_set = 1;
  }
  pthread_mutex_unlock(&l->err_mu);
  return rc;
}

/* ---- index ------------------------------------------------------------- */

/* Storage grows with the slots records actually name, not with the
 * manifest's slotCount, which an unauthenticated (unencrypted) manifest
 * could inflate at will. */
static int ensure_slot(load *l, uint32_t slot) {
  vv_db *db = l->db;
  if (slot < db->store.nslots) return VV_OK;
  int rc = vv_store_reserve_slots(&db->store, (uint64_t)slot + 1);
  if (!rc && db->hnsw) rc = vv_hnsw_reserve(db->hnsw, vv_arena_capacity(&db->store.vecs));
  if (!rc && db->has_codes) rc = vv_arena_reserve(&db->codes, vv_arena_capacity(&db->store.vecs));
  if (!rc && db->attrs) rc = vv_attrs_reserve(db->attrs, vv_arena_capacity(&db->store.vecs));
  if (!rc) db->store.nslots = (uint64_t)slot + 1;
  return rc;
}

/* `links32`: the node's links as native arrays (format 3), or NULL to
 * read them from n->links (LE bytes). */
/* What a record must be to be applied, checked without changing anything
 * (a refresh in place checks every new record before it applies one). */
static int check_node(load *l, const vv_node_view *n, const uint32_t *const *links32, const char *obj) {
  vv_db *db = l->db;
  if (n->slot >= l->m->slot_count) return say(l, VV_E_CHUNK_CORRUPT, "index object %s: slot out of range", obj);
  if (db->hnsw == NULL && n->nlevels > 0) return say(l, VV_E_CHUNK_CORRUPT, "index object %s: links in a flat index", obj);
  if (n->chunk > UINT32_MAX) return say(l, VV_E_CHUNK_CORRUPT, "index object %s: chunk number out of range", obj);
  if (n->code && n->nlevels == 0)
    return say(l, VV_E_CHUNK_CORRUPT, "index object %s: a slot outside the graph carries a PQ code", obj);
  if (n->code) {
    if (!db->has_codes || n->code_len != db->pq->m)
      return say(l, VV_E_CHUNK_CORRUPT, "index object %s: a PQ code does not match the codebook", obj);
    for (uint32_t j = 0; j < n->code_len; j++)
      if (n->code[j] >= db->pq->ksub)
        return say(l, VV_E_CHUNK_CORRUPT, "index object %s: a PQ code names a centroid the codebook lacks", obj);
  }
  /* A database with filterable fields has every node's values (format 4), one without has none. */
  if (n->attrs && !db->attrs)
    return say(l, VV_E_CHUNK_CORRUPT, "index object %s: filterable values in a session that declares no field", obj);
  if (!n->attrs && db->attrs) return say(l, VV_E_CHUNK_CORRUPT, "index object %s: filterable values missing", obj);
  if (n->attrs && n->attrs_len && vv_attrs_check(db->attrs, n->attrs, n->attrs_len))
    return say(l, VV_E_CHUNK_CORRUPT, "index object %s: a node's filterable values do not decode", obj);
  if (db->hnsw && !vv_hnsw_fits(db->hnsw, n->nlevels, n->counts))
    return say(l, VV_E_CHUNK_CORRUPT, "index object %s: a node has too many links", obj);
  for (uint32_t lv = 0; links32 && lv < n->nlevels; lv++)
    for (uint32_t j = 0; j < n->counts[lv]; j++)
      if (links32[lv][j] >= l->m->slot_count)
        return say(l, VV_E_CHUNK_CORRUPT, "index object %s: a link to a slot out of range", obj);
  return VV_OK;
}

static int apply_node(load *l, const vv_node_view *n, const uint32_t *const *links32, const char *obj) {
  vv_db *db = l->db;
  int rc = check_node(l, n, links32, obj);
  if (rc || l->dry) return rc;
  rc = ensure_slot(l, n->slot);
  if (rc) return rc;
  /* The base names each slot once; base segments are applied in parallel,
   * so a second claim is both damage and a race to refuse. */
  if (l->claimed && atomic_exchange(&l->claimed[n->slot], 1))
    return say(l, VV_E_CHUNK_CORRUPT, "index object %s: a slot appears twice in the base", obj);
  /* Only the final state must be consistent (a later record may replace
   * this one), so chunk rows are checked when chunks are read: a node whose
   * row no chunk supplies fails validate(). */
  /* Later records replace earlier ones whole; ids are indexed once all
   * segments are applied, since a delta may move an id between slots in
   * either order. */
  rc = vv_store_set_id_raw(&db->store, n->slot, n->id, n->id_len);
  if (rc) return rc;
  vv_store_set_loc(&db->store, n->slot, VV_LOC(n->chunk, n->row));
  uint8_t flags = 0;
  if (n->code) {
    memcpy(vv_arena_at(&db->codes, n->slot), n->code, n->code_len); /* ADC indexes the query's table with these */
    flags = VV_SLOT_CODED;
  }
  vv_store_set_flags(&db->store, n->slot, flags);
  if (db->attrs) {
    /* Only a live node's values count (docs/FORMAT.md: a reader ignores the
     * record of a waypoint or a free slot), so statistics see live ones only. */
    pthread_mutex_lock(&l->attrs_mu);
    if (n->id) rc = vv_attrs_set(db->attrs, n->slot, n->attrs_len ? n->attrs : NULL, n->attrs_len);
    else vv_attrs_clear(db->attrs, n->slot);
    pthread_mutex_unlock(&l->attrs_mu);
    if (rc) return rc == VV_E_BAD_METADATA ? say(l, VV_E_CHUNK_CORRUPT, "index object %s: bad filterable values", obj) : rc;
  }
  if (db->hnsw) {
    uint32_t buf[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS];
    const uint32_t *links[VV_CODEC_MAX_LEVELS];
    for (uint32_t lv = 0; lv < n->nlevels; lv++) {
      if (links32) {
        links[lv] = links32[lv];
        continue;
      }
      for (uint32_t j = 0; j < n->counts[lv]; j++) buf[lv][j] = vv_le32(n->links[lv] + 4 * j);
      links[lv] = buf[lv];
    }
    rc = vv_hnsw_set_node(db->hnsw, n->slot, n->nlevels, links, n->counts);
    if (!rc && n->slot < l->nlevels) l->levels[n->slot] = (uint8_t)n->nlevels;
    if (rc == VV_E_CORRUPT) return say(l, VV_E_CHUNK_CORRUPT, "index object %s: a node has too many links", obj);
    if (rc) return rc;
  }
  return VV_OK;
}

static int install_codebook(load *l, const vv_codebook_view *cb) {
  vv_db *db = l->db;
  if (!db->hnsw || (uint64_t)cb->m * cb->dsub != db->cfg.dimension) return VV_E_CORRUPT;
  size_t n = (size_t)cb->m * cb->ksub * cb->dsub;
  float *cents = malloc(n * sizeof *cents);
  vv_pq *pq = calloc(1, sizeof *pq);
  int rc = cents && pq ? VV_OK : VV_E_NOMEM;
  if (!rc) {
    vv_read_f32le(cb->centroids, n, cents);
    rc = vv_pq_init(pq, db->cfg.dimension, cb->m, cb->ksub, cents);
  }
  free(cents);
  if (rc) {
    free(pq);
    return rc;
  }
  db->pq = pq;
  db->pq_trained_on = cb->trained;
  return vv_db_codes_init(db);
}

static const vv_mseg *segment(const load *l, size_t i) {
  return i < l->m->nbase ? &l->m->base[i] : &l->m->deltas[i - l->m->nbase];
}

/* Reads segment i into `buf` and opens its pages in place (format 3), or
 * reads and opens the whole object (formats 1 and 2, one "page"). */
static int read_segment_into(load *l, size_t i, vv_buf *buf) {
  const vv_mseg *g = segment(l, i);
  vv_error local = {{0}};
  int rc;
  if (l->m->version < 3) {
    l->seg_pages[i] = calloc(1, sizeof **l->seg_pages);
    if (!l->seg_pages[i]) return VV_E_NOMEM;
    l->seg_np[i] = 1;
    l->seg_pages[i][0].nodes = g->count;
    rc = vv_object_read_into(&l->sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq, buf, &l->seg_pages[i][0].plain,
                             &l->seg_pages[i][0].len, &local);
  } else {
    vv_ptable t;
    rc = vv_paged_read_file(&l->sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq, g->count, 0, buf, &t, &local);
    if (!rc) {
      l->seg_pages[i] = calloc(t.npages, sizeof **l->seg_pages);
      rc = l->seg_pages[i] ? VV_OK : VV_E_NOMEM;
      if (!rc) l->seg_np[i] = t.npages;
    }
    for (uint32_t p = 0; !rc && p < t.npages; p++) {
      struct seg_page *sp = &l->seg_pages[i][p];
      sp->nodes = t.first[p + 1] - t.first[p];
      rc = vv_paged_open_page(&l->sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq, &t, p, buf->data, &sp->plain,
                              &sp->len, &local);
    }
    vv_ptable_free(&t);
  }
  if (rc) return keep_error(l, rc, &local);
  l->bytes += g->ref.bytes;
  return VV_OK;
}

static int read_segment(void *ctx, size_t i, unsigned worker) {
  (void)worker;
  load *l = ctx;
  return read_segment_into(l, i, &l->seg_bufs[i]);
}

static int apply_segment(load *l, size_t i) {
  const vv_mseg *g = segment(l, i);
  int rc = VV_OK;
  for (uint32_t p = 0; !rc && p < l->seg_np[i] && l->m->version >= 3; p++) {
    const struct seg_page *sp = &l->seg_pages[i][p];
    vv_index3_reader r;
    uint64_t seq;
    int base;
    uint32_t count, nblocks;
    rc = vv_index3_decode_begin(&r, sp->plain, sp->len, &seq, &base, &count, &nblocks);
    if (!rc && (seq != g->seq || count != sp->nodes)) rc = VV_E_CORRUPT;
    /* Only the first base segment may carry the codebook, in its first page. */
    if (!rc && r.has_codebook && (i != 0 || p != 0)) rc = VV_E_CORRUPT;
    if (!rc && r.has_codebook && !l->db->pq) rc = l->dry ? VV_E_CORRUPT : install_codebook(l, &r.cb);
    /* The same for the filterable fields (prepare_base installed them); format 4 only. */
    if (!rc && r.nfields && (i != 0 || p != 0 || l->m->version < 4)) rc = VV_E_CORRUPT;
    vv_node_view n;
    const uint32_t *links32[VV_CODEC_MAX_LEVELS];
    while (!rc && (rc = vv_index3_decode_next(&r, &n, links32)) == VV_OK) rc = apply_node(l, &n, links32, g->ref.name);
    if (rc == VV_END) rc = VV_OK;
  }
  for (uint32_t p = 0; !rc && p < l->seg_np[i] && l->m->version < 3; p++) {
    const struct seg_page *sp = &l->seg_pages[i][p];
    vv_index_reader r;
    uint64_t seq;
    int base;
    uint32_t count;
    rc = vv_index_decode_begin(&r, sp->plain, sp->len, &seq, &base, &count);
    if (!rc && (seq != g->seq || count != sp->nodes || r.v2 != (l->m->version >= 2))) rc = VV_E_CORRUPT;
    /* Only the first base segment may carry the codebook, in its first page. */
    if (!rc && r.has_codebook && (i != 0 || p != 0)) rc = VV_E_CORRUPT;
    if (!rc && r.has_codebook && !l->db->pq) rc = install_codebook(l, &r.cb);
    vv_node_view n;
    while (!rc && (rc = vv_index_decode_next(&r, &n)) == VV_OK) rc = apply_node(l, &n, NULL, g->ref.name);
    if (rc == VV_END) rc = VV_OK; /* the end, exactly where it should be */
  }
  if (rc == VV_E_CORRUPT) rc = say(l, VV_E_CHUNK_CORRUPT, "index object %s does not decode", g->ref.name);
  if (!l->dry) vv_buf_free(&l->seg_bufs[i]);
  return rc;
}

static int apply_base(void *ctx, size_t i, unsigned worker) {
  (void)worker;
  return apply_segment(ctx, i);
}

/* Format 3: a worker reads, opens and applies one segment in its own
 * buffer, reused from segment to segment, so the index is never all in
 * memory at once (fresh mappings of every segment cost more zeroing than
 * decoding). The first base segment was read already, for its codebook. */
static int read_apply(void *ctx, size_t i, unsigned worker) {
  load *l = ctx;
  int rc = i == 0 && l->seg_np[0] ? VV_OK : read_segment_into(l, i, &l->bufs[worker]);
  if (!rc) rc = apply_segment(l, i);
  free(l->seg_pages[i]);
  l->seg_pages[i] = NULL;
  l->seg_np[i] = 0;
  return rc;
}

/* Before base segments are applied in parallel: the codebook (from the
 * first one's header) and storage for every slot the manifest counts, so
 * no worker grows anything. */
/* The codebook in the header of the first base segment's first page, if
 * it decodes and has one (one that does not decode fails properly in
 * apply_segment). */
static int first_codebook(const load *l, vv_codebook_view *cb) {
  if (!l->m->nbase || !l->seg_np[0]) return 0;
  const struct seg_page *sp = &l->seg_pages[0][0];
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  if (l->m->version >= 3) {
    vv_index3_reader r;
    if (vv_index3_decode_begin(&r, sp->plain, sp->len, &seq, &base, &count, &nblocks) || !r.has_codebook) return 0;
    *cb = r.cb;
    return 1;
  }
  vv_index_reader r;
  if (vv_index_decode_begin(&r, sp->plain, sp->len, &seq, &base, &count) || !r.has_codebook ||
      r.v2 != (l->m->version >= 2))
    return 0;
  *cb = r.cb;
  return 1;
}

/* Format 4: the filterable field paths in the header of the first base
 * segment's first page become the database's attribute store. */
static int install_fields(load *l) {
  if (l->m->version < 4 || !l->m->nbase || !l->seg_np[0] || l->db->attrs) return VV_OK;
  const struct seg_page *sp = &l->seg_pages[0][0];
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  vv_index3_reader r;
  int rc = vv_index3_decode_begin(&r, sp->plain, sp->len, &seq, &base, &count, &nblocks);
  if (!rc && r.nfields == 0) rc = VV_E_CORRUPT; /* version 4 is written only with fields */
  if (!rc) rc = vv_attrs_create(r.field_ptr, r.field_len, r.nfields, &l->db->attrs);
  if (rc == VV_E_CORRUPT || rc == VV_E_INVALID)
    return say(l, VV_E_CHUNK_CORRUPT, "index object %s: the filterable fields are invalid", l->m->base[0].ref.name);
  return rc;
}

static int prepare_base(load *l) {
  int frc = install_fields(l);
  if (frc) return frc;
  vv_codebook_view cb;
  if (first_codebook(l, &cb)) {
    int rc = install_codebook(l, &cb);
    if (rc == VV_E_CORRUPT) return say(l, VV_E_CHUNK_CORRUPT, "index object %s: the PQ codebook is invalid", l->m->base[0].ref.name);
    if (rc) return rc;
  }
  uint64_t n = l->m->slot_count;
  if (n == 0) return VV_OK;
  int rc = ensure_slot(l, (uint32_t)(n - 1));
  if (rc) return rc;
  l->claimed = calloc(n, 1);
  l->levels = calloc(n, 1);
  l->nlevels = l->levels ? n : 0;
  return l->claimed ? VV_OK : VV_E_NOMEM;
}

static int segment_progress(void *ctx, uint64_t done, uint64_t total) {
  load *l = ctx;
  (void)total;
  return l->progress ? l->progress(l->pctx, done, l->total, VV_PHASE_INDEX, l->bytes) : 0;
}

/* ---- chunks ------------------------------------------------------------ */

static int node_exists(const vv_db *db, uint32_t slot) {
  return vv_store_is_live(&db->store, slot) || (db->hnsw && vv_hnsw_level(db->hnsw, slot) >= 0);
}

/* Takes the current rows of one decoded chunk (or page, whose first row is
 * row `first` of chunk c) into memory. */
static int take_rows(load *l, const vv_mchunk *c, const vv_chunk_view *v, uint32_t first, vv_error *local) {
  vv_db *db = l->db;
  size_t vbytes = (size_t)db->cfg.dimension * sizeof(float);
  int rc = VV_OK;
  for (uint32_t i = 0; !rc && i < v->count; i++) {
    uint32_t slot = vv_le32(v->slots + 4 * (size_t)i), row = first + i;
    /* Rows that a later chunk superseded are skipped: only the row the
     * index points at is the slot's current vector. */
    if (slot >= db->store.nslots || !node_exists(db, slot)) continue;
    if (vv_store_loc(&db->store, slot) != VV_LOC(c->seq, row)) continue;
    float *dst = vv_store_vec(&db->store, slot);
    vv_read_f32le(v->vectors + (size_t)i * vbytes, db->cfg.dimension, dst);
    const char *why = vv_db_check_row(db, slot, v->ids[i], v->id_lens[i], dst);
    if (why) {
      snprintf(local->message, sizeof local->message, "chunk object %s: row %u %s", c->ref.name, row, why);
      return VV_E_CHUNK_CORRUPT;
    }
    if (vv_store_is_live(&db->store, slot) && v->metas[i])
      rc = vv_store_set_meta(&db->store, slot, v->metas[i], v->meta_lens[i]);
    vv_store_mark(&db->store, slot, VV_SLOT_SAVED | VV_SLOT_RESIDENT);
  }
  return rc;
}

/* Decodes one chunk (or page) plaintext of `count` rows and takes its rows. */
static int take_plain(load *l, const vv_mchunk *c, const unsigned char *plain, size_t len, uint32_t first,
                      uint32_t count, long page, vv_error *local) {
  vv_chunk_view v;
  int rc = vv_chunk_decode(plain, len, l->db->cfg.dimension, &v);
  if (rc == VV_E_CORRUPT || (!rc && (v.seq != c->seq || v.count != count))) {
    if (page >= 0)
      snprintf(local->message, sizeof local->message, "chunk object %s page %ld does not decode", c->ref.name, page);
    else
      snprintf(local->message, sizeof local->message, "chunk object %s does not decode", c->ref.name);
    rc = VV_E_CHUNK_CORRUPT;
  }
  if (!rc) rc = take_rows(l, c, &v, first, local);
  vv_chunk_view_free(&v);
  return rc;
}

static int load_chunk(void *ctx, size_t i, unsigned worker) {
  load *l = ctx;
  const vv_mchunk *c = &l->m->chunks[i];
  vv_buf *buf = &l->bufs[worker];
  vv_error local = {{0}};
  int rc;
  if (l->m->version < 3) {
    const unsigned char *plain = NULL;
    size_t len = 0;
    rc = vv_object_read_into(&l->sc, &c->ref, VV_OBJ_KIND_CHUNK, c->seq, buf, &plain, &len, &local);
    if (!rc) rc = take_plain(l, c, plain, len, 0, c->count, -1, &local);
  } else {
    vv_ptable t;
    rc = vv_paged_read_file(&l->sc, &c->ref, VV_OBJ_KIND_CHUNK, c->seq, c->count, l->db->cfg.dimension, buf, &t,
                            &local);
    for (uint32_t p = 0; !rc && p < t.npages; p++) {
      const unsigned char *plain;
      size_t len;
      rc = vv_paged_open_page(&l->sc, &c->ref, VV_OBJ_KIND_CHUNK, c->seq, &t, p, buf->data, &plain, &len, &local);
      if (!rc) rc = take_plain(l, c, plain, len, t.first[p], t.first[p + 1] - t.first[p], p, &local);
    }
    vv_ptable_free(&t);
  }
  if (!rc) l->bytes += c->ref.bytes;
  return rc ? keep_error(l, rc, &local) : VV_OK;
}

static int chunk_progress(void *ctx, uint64_t done, uint64_t total) {
  load *l = ctx;
  (void)total;
  if (!l->progress) return 0;
  return l->progress(l->pctx, l->done + done, l->total, VV_PHASE_CHUNKS, l->bytes);
}

/* ---- validation -------------------------------------------------------- */

static int is_waypoint(void *ctx, uint32_t slot) {
  const vv_db *db = ctx;
  return db->hnsw && vv_hnsw_level(db->hnsw, slot) >= 0;
}

/* Whether this session can be opened lazily: asked for, format 2, and (for
 * HNSW) a codebook to walk the graph with. Otherwise it loads eagerly. */
static int can_be_lazy(const load *l, const vv_load_opts *o) {
  const vv_db *db = l->db;
  if (!o->lazy || l->m->version < 2) return 0;
  return !db->hnsw || db->has_codes; /* (an empty graph has no codes: it loads eagerly, at no cost) */
}

/* One node's part of the whole-graph check. */
static int validate_slot(void *ctx, size_t i, unsigned worker) {
  (void)worker;
  load *l = ctx;
  vv_db *db = l->db;
  uint32_t slot = (uint32_t)i;
  if (!node_exists(db, slot)) return VV_OK;
  if (l->lazy) {
    /* Lazy: the chunk is read later, but the row must exist in it now. */
    uint64_t loc = vv_store_loc(&db->store, slot), seq = VV_LOC_CHUNK(loc);
    uint64_t rows = 0;
    if (l->rows_by_seq) {
      rows = seq < l->nrows_by_seq && l->rows_by_seq[seq] ? l->rows_by_seq[seq] - 1 : 0;
    } else {
      long c = vv_chunk_index_find(&l->chunks, seq);
      rows = c < 0 ? 0 : l->m->chunks[c].count;
    }
    if (VV_LOC_ROW(loc) >= rows)
      return say(l, VV_E_CHUNK_CORRUPT, "%s", "a vector the index refers to is in no chunk");
    vv_store_mark(&db->store, slot, VV_SLOT_SAVED);
  } else if (!(vv_store_flags(&db->store, slot) & VV_SLOT_SAVED)) {
    return say(l, VV_E_CHUNK_CORRUPT, "%s", "a vector the index refers to is in no chunk");
  }
  /* With a codebook, every node of the graph has its code (lazy or not). */
  if (db->has_codes && !(vv_store_flags(&db->store, slot) & VV_SLOT_CODED))
    return say(l, VV_E_CHUNK_CORRUPT, "%s", "a graph node has no PQ code");
  if (!db->hnsw) return VV_OK;
  uint64_t n = db->store.nslots;
  int level = vv_hnsw_level(db->hnsw, slot);
  for (int lv = 0; lv <= level; lv++) {
    const uint32_t *links;
    uint32_t cnt = vv_hnsw_links(db->hnsw, slot, lv, &links);
    for (uint32_t j = 0; j < cnt; j++)
      /* The dense level copy keeps this random access in cache. */
      if (links[j] >= n || (links[j] < l->nlevels ? (int)l->levels[links[j]] - 1 : vv_hnsw_level(db->hnsw, links[j])) < lv)
        return say(l, VV_E_CHUNK_CORRUPT, "%s", "the graph links to a node that does not exist on that level");
  }
  return VV_OK;
}

static int validate(load *l, unsigned threads) {
  vv_db *db = l->db;
  if (db->store.nlive != l->m->total_vectors)
    return say(l, VV_E_CHUNK_CORRUPT, "%s", "the index holds a different number of vectors than the manifest");
  int rc = vv_parallel_for((size_t)db->store.nslots, threads, validate_slot, l, NULL, NULL, 0, 0);
  if (rc) return rc;
  if (db->hnsw && vv_hnsw_set_entry(db->hnsw, l->m->entry, l->m->max_level))
    return say(l, VV_E_CHUNK_CORRUPT, "%s", "the graph entry point is not a node of the top level");
  return vv_store_rebuild_lists(&db->store, is_waypoint, db);
}

/* ---- entry points ------------------------------------------------------ */

/* Keeps what a later save needs: the secrets (so it stays encrypted the
 * same way) and the session it came from (so it can be incremental). */
static int bind_session(vv_db *db, const char *dir, const vv_manifest *m, vv_keyring *kr, const vv_load_opts *o,
                        const unsigned char *file, size_t len) {
  vv_secrets *s = &db->secrets;
  s->encrypt = m->kdf != VV_KDF_NONE;
  s->kdf = m->kdf;
  s->kr = kr;
  if (m->kdf == VV_KDF_ARGON2ID) {
    s->pass = vv_secret_dup(o->pass, o->pass_len);
    if (!s->pass) return VV_E_NOMEM;
    s->pass_len = o->pass_len;
    s->has_wrap = 1;
    memcpy(s->wrap_session, m->session_id, VV_SESSION_ID_BYTES);
    memcpy(s->salt, m->salt, VV_SALT_BYTES);
    s->opslimit = m->opslimit;
    s->memlimit = m->memlimit;
    memcpy(s->wrapped_key, m->wrapped_key, VV_WRAPPED_KEY_BYTES);
  }
  db->session.dir = strdup(dir);
  if (!db->session.dir) return VV_E_NOMEM;
  db->session.m = *m;
  vv_manifest_file_hash(file, len, db->session.manifest_hash);
  db->session.bound = 1;
  memcpy(db->session_id, m->session_id, VV_SESSION_ID_BYTES);
  db->has_session_id = 1;
  return VV_OK;
}

/* A load; with `like`, a refresh of that database (vv_db_refresh). */
static int load_impl(const char *dir, const vv_load_opts *o, vv_db *like, vv_session_progress_fn progress, void *ctx,
                     vv_db **out, vv_load_stats *stats, vv_error *err) {
  *out = NULL;
  vv_load_stats local_stats;
  if (!stats) stats = &local_stats;
  memset(stats, 0, sizeof *stats);
  if (err) err->message[0] = '\0';
  vv_load_opts none = {0};
  if (!o) o = &none;
  if (!dir || !*dir) return VV_E_INVALID;
  int rc = vv_crypto_init();
  if (rc) return rc;
  const vv_io *io = o->io ? o->io : vv_io_posix();
  vv_db *db = NULL;
  size_t nseg_alloc = 0;
  load l;
  memset(&l, 0, sizeof l);
  pthread_mutex_init(&l.err_mu, NULL);
  pthread_mutex_init(&l.attrs_mu, NULL);
  vv_sreader r;
  vv_load_opts lo;
  if (like) {
    /* Opened with the ring `like` holds; a passphrase session keeps its
     * passphrase for later saves, as a load does. */
    lo = *o;
    lo.key = NULL;
    lo.pass = like->secrets.pass;
    lo.pass_len = like->secrets.pass_len;
    o = &lo;
    rc = vv_sreader_open_known(&r, io, dir, o, 1, like->secrets.kr, err);
    if (!rc && like->has_session_id && memcmp(r.m.session_id, like->session_id, VV_SESSION_ID_BYTES) != 0) {
      rc = VV_E_WRONG_KEY;
      if (err) snprintf(err->message, sizeof err->message, "%s now holds another session", dir);
    }
  } else {
    rc = vv_sreader_open(&r, io, dir, o, err);
  }
  vv_manifest m = r.m;
  if (rc) goto fail;

  vv_config cfg = {0};
  cfg.dimension = m.dimension;
  cfg.metric = m.metric;
  cfg.index = m.index;
  cfg.hnsw_m = m.m;
  cfg.ef_construction = m.ef_construction;
  cfg.ef_search = m.ef_search;
  cfg.threads = o->threads ? o->threads : 1;
  cfg.chunk_size = m.chunk_size;
  cfg.cache_bytes = o->cache_bytes;
  rc = vv_db_create(&cfg, &db);
  if (rc) goto fail;
  l.db = db;
  l.m = &m;
  l.err = err;
  l.progress = progress;
  l.pctx = ctx;
  /* A lazy load reads no chunks (a format-1 session loads eagerly). */
  l.total = m.nbase + m.ndeltas + (o->lazy && m.version >= 2 ? 0 : m.nchunks);
  l.sc = r.sc;
  size_t nseg = m.nbase + m.ndeltas;
  nseg_alloc = nseg;
  l.nbufs = cfg.threads;
  l.bufs = calloc(l.nbufs, sizeof *l.bufs);
  l.seg_bufs = calloc(nseg ? nseg : 1, sizeof *l.seg_bufs);
  l.seg_pages = calloc(nseg ? nseg : 1, sizeof *l.seg_pages);
  l.seg_np = calloc(nseg ? nseg : 1, sizeof *l.seg_np);
  /* Objects are megabytes each: their buffers are the engine's own blocks. */
  for (unsigned i = 0; l.bufs && i < l.nbufs; i++) l.bufs[i].big = 1;
  for (size_t i = 0; l.seg_bufs && i < (nseg ? nseg : 1); i++) l.seg_bufs[i].big = 1;
  if (!l.bufs || !l.seg_bufs || !l.seg_pages || !l.seg_np) {
    rc = VV_E_NOMEM;
    goto fail;
  }
  if (m.version >= 3) {
    /* The base segments in parallel, each read and applied by one worker;
     * the first one's codebook before them; then the deltas in order. */
    if (m.nbase) rc = read_segment_into(&l, 0, &l.seg_bufs[0]);
    if (!rc) rc = prepare_base(&l);
    if (!rc) rc = vv_parallel_for(m.nbase, cfg.threads, read_apply, &l, segment_progress, &l, 0, nseg);
    free(l.claimed);
    l.claimed = NULL;
    for (size_t i = m.nbase; i < nseg && !rc; i++) rc = read_apply(&l, i, 0);
  } else {
    /* Index segments are read and opened in parallel, applied in order. */
    rc = vv_parallel_for(nseg, cfg.threads, read_segment, &l, segment_progress, &l, 0, nseg);
    if (!rc) rc = prepare_base(&l);
    if (!rc) rc = vv_parallel_for(m.nbase, cfg.threads, apply_base, &l, NULL, NULL, 0, 0);
    free(l.claimed);
    l.claimed = NULL;
    for (size_t i = m.nbase; i < nseg && !rc; i++) rc = apply_segment(&l, i);
  }
  l.done = nseg;
  if (!rc && vv_store_rebuild_ids(&db->store) == VV_E_CORRUPT) {
    rc = VV_E_CHUNK_CORRUPT;
    if (err) snprintf(err->message, sizeof err->message, "the index gives the same id to two vectors");
  }
  if (rc) goto fail;
  int lazy = can_be_lazy(&l, o);
  if (lazy) {
    l.lazy = 1;
    rc = vv_chunk_index_build(&l.chunks, m.chunks, m.nchunks);
    if (rc) goto fail;
    /* Seqs are dense in practice (one counter): a direct table when small. */
    uint64_t top = 0;
    for (size_t i = 0; i < m.nchunks; i++) top = m.chunks[i].seq + 1 > top ? m.chunks[i].seq + 1 : top;
    if (top <= ((uint64_t)1 << 22) && top <= 64 * (uint64_t)(m.nchunks + 1) && (l.rows_by_seq = calloc(top ? top : 1, 4))) {
      l.nrows_by_seq = top;
      for (size_t i = 0; i < m.nchunks; i++) l.rows_by_seq[m.chunks[i].seq] = m.chunks[i].count + 1;
    }
  } else {
    rc = vv_parallel_for(m.nchunks, cfg.threads, load_chunk, &l, chunk_progress, &l, 0, m.nchunks);
    if (rc) goto fail;
    l.done += m.nchunks;
  }
  rc = validate(&l, cfg.threads);
  if (!rc && lazy)
    rc = vv_lazy_create(db->cfg.dimension, vv_db_check_chunk, db, io, dir, &m, r.kr, o->cache,
                        o->cache ? o->cache_bytes : db->cache_bytes, o->cache_bytes != 0, &db->lazy);
  if (!rc && lazy && db->hnsw && db->has_codes) vv_db_use_codes(db);
  /* Writers before format 3 did not restore the graph's reachability
   * before saving (inserts under the inner product could orphan nodes);
   * a walk relies on it, so an older graph is checked, and repaired in
   * memory if needed (the next save writes the repair). */
  if (!rc && db->hnsw && m.version < 3) {
    uint64_t orphans = 0;
    rc = vv_hnsw_check_reachable(db->hnsw, &orphans);
    if (!rc && orphans) rc = vv_hnsw_repair(db->hnsw);
  }
  vv_db_refresh_memory(db);
  if (rc) goto fail;
  rc = bind_session(db, dir, &m, vv_sreader_take_keyring(&r), o, r.file, r.len); /* db owns the ring now */
  if (rc) goto fail;
  stats->generation = m.generation;
  stats->total_vectors = db->store.nlive;
  stats->chunk_count = m.nchunks;
  stats->chunks_loaded = lazy ? 0 : m.nchunks;
  stats->lazy = lazy;
  stats->index_segments = m.nbase + m.ndeltas;
  stats->bytes_read = l.bytes + r.len;
  memset(&r.m, 0, sizeof r.m); /* moved into db->session */
  *out = db;
  db = NULL;
fail:
  if (rc && err && !err->message[0]) snprintf(err->message, sizeof err->message, "%s", vv_strerror(rc));
  for (size_t i = 0; l.seg_bufs && i < nseg_alloc; i++) vv_buf_free(&l.seg_bufs[i]);
  for (size_t i = 0; l.seg_pages && i < nseg_alloc; i++) free(l.seg_pages[i]);
  vv_db_free(db);
  vv_sreader_close(&r); /* also frees l.sc, a copy of r.sc */
  for (unsigned i = 0; l.bufs && i < l.nbufs; i++) vv_buf_free(&l.bufs[i]);
  free(l.bufs);
  free(l.seg_bufs);
  free(l.seg_pages);
  free(l.seg_np);
  vv_chunk_index_free(&l.chunks);
  free(l.rows_by_seq);
  free(l.levels);
  pthread_mutex_destroy(&l.err_mu);
  pthread_mutex_destroy(&l.attrs_mu);
  return rc;
}

int vv_db_load(const char *dir, const vv_load_opts *o, vv_session_progress_fn progress, void *ctx, vv_db **out,
               vv_load_stats *stats, vv_error *err) {
  return load_impl(dir, o, NULL, progress, ctx, out, stats, err);
}

static const char kUnsaved[] =
    "refresh() would drop changes this database has not saved: save() them first, or load() the session anew "
    "to discard them";

/* Does `db` hold changes no save has written? Its lock held. */
static int dirty_locked(vv_db *db) {
  for (uint64_t s = 0; s < db->store.nslots; s++)
    if (vv_store_flags(&db->store, (uint32_t)s) & (VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY)) return 1;
  return 0;
}

static int has_unsaved(vv_db *db) {
  pthread_rwlock_rdlock(&db->lock);
  int dirty = dirty_locked(db);
  pthread_rwlock_unlock(&db->lock);
  return dirty;
}

/* Does `m` continue `old`: format 3, the same configuration and base
 * segments, and old's delta segments first? Then applying m's new deltas
 * to a database holding exactly `old` gives exactly `m`. */
static int continues(const vv_manifest *old, const vv_manifest *m) {
  if (old->version < 3 || m->version < 3 || old->nbase != m->nbase || m->ndeltas < old->ndeltas) return 0;
  if (old->dimension != m->dimension || old->metric != m->metric || old->index != m->index || old->m != m->m)
    return 0;
  for (size_t i = 0; i < m->nbase; i++)
    if (strcmp(old->base[i].ref.name, m->base[i].ref.name)) return 0;
  for (size_t i = 0; i < old->ndeltas; i++)
    if (strcmp(old->deltas[i].ref.name, m->deltas[i].ref.name)) return 0;
  return 1;
}

/* A lazy database with nothing unsaved moves to the newest generation in
 * place when that generation only adds delta segments to its own: it reads
 * the manifest and the new deltas, checks every record (nothing changes
 * yet), then applies them and checks the whole under the exclusive lock.
 * Its cache, pages and page tables, stays as it is. VV_MISS when the new
 * generation does not continue this one (a new base: a full refresh). */
static int refresh_delta(vv_db *db, const char *dir, const vv_load_opts *o, vv_session_progress_fn progress, void *ctx,
                         vv_load_stats *stats, vv_error *err) {
  const vv_io *io = o->io ? o->io : vv_io_posix();
  vv_sreader r;
  int rc = vv_sreader_open_known(&r, io, dir, o, 1, db->secrets.kr, err);
  if (!rc && db->has_session_id && memcmp(r.m.session_id, db->session_id, VV_SESSION_ID_BYTES) != 0) {
    rc = VV_E_WRONG_KEY;
    if (err) snprintf(err->message, sizeof err->message, "%s now holds another session", dir);
  }
  if (!rc && !continues(&db->session.m, &r.m)) rc = VV_MISS;
  if (rc) {
    vv_sreader_close(&r);
    return rc;
  }
  vv_manifest *m = &r.m;
  size_t first = m->nbase + db->session.m.ndeltas, nseg = m->nbase + m->ndeltas;
  load l;
  memset(&l, 0, sizeof l);
  pthread_mutex_init(&l.err_mu, NULL);
  pthread_mutex_init(&l.attrs_mu, NULL);
  l.db = db;
  l.m = m;
  l.err = err;
  l.progress = progress;
  l.pctx = ctx;
  l.total = nseg - first;
  l.sc = r.sc;
  l.seg_bufs = calloc(nseg ? nseg : 1, sizeof *l.seg_bufs);
  l.seg_pages = calloc(nseg ? nseg : 1, sizeof *l.seg_pages);
  l.seg_np = calloc(nseg ? nseg : 1, sizeof *l.seg_np);
  rc = l.seg_bufs && l.seg_pages && l.seg_np ? VV_OK : VV_E_NOMEM;
  for (size_t i = first; i < nseg && !rc; i++) {
    l.seg_bufs[i].big = 1;
    rc = read_segment_into(&l, i, &l.seg_bufs[i]);
    if (!rc && progress && progress(ctx, i - first + 1, l.total, VV_PHASE_INDEX, l.bytes)) rc = VV_E_ABORTED;
  }
  /* Every record checked before the first one is applied. */
  l.dry = 1;
  for (size_t i = first; i < nseg && !rc; i++) rc = apply_segment(&l, i);
  l.dry = 0;
  if (!rc) rc = vv_chunk_index_build(&l.chunks, m->chunks, m->nchunks);
  if (!rc) {
    l.lazy = 1;
    pthread_rwlock_wrlock(&db->lock);
    /* A write may have come in while the segments were read: then nothing
     * changes (the caller saves it, or drops it, first). */
    if (dirty_locked(db)) {
      rc = VV_E_INVALID;
      if (err) snprintf(err->message, sizeof err->message, "%s", kUnsaved);
      pthread_rwlock_unlock(&db->lock);
      goto done;
    }
    /* From the first record applied on, a failure leaves a state that is
     * neither generation: the database refuses every later call. */
    for (size_t i = first; i < nseg && !rc; i++) rc = apply_segment(&l, i);
    if (!rc && vv_store_rebuild_ids(&db->store) == VV_E_CORRUPT) {
      rc = VV_E_CHUNK_CORRUPT;
      if (err) snprintf(err->message, sizeof err->message, "the index gives the same id to two vectors");
    }
    if (!rc) rc = validate(&l, db->cfg.threads);
    if (!rc) rc = vv_lazy_rebind(db->lazy, io, dir, m, db->secrets.kr);
    char *dir_copy = rc ? NULL : strdup(dir);
    if (!rc && !dir_copy) rc = VV_E_NOMEM;
    if (!rc) {
      vv_bound *b = &db->session;
      free(b->dir);
      b->dir = dir_copy;
      vv_manifest_free(&b->m);
      b->m = *m;
      memset(m, 0, sizeof *m); /* moved */
      vv_manifest_file_hash(r.file, r.len, b->manifest_hash);
      b->bound = 1;
    } else {
      db->broken = rc == VV_E_NOMEM ? VV_E_NOMEM : VV_E_CHUNK_CORRUPT;
    }
    vv_db_refresh_memory(db);
    pthread_rwlock_unlock(&db->lock);
  }
  if (!rc) {
    stats->generation = db->session.m.generation;
    stats->total_vectors = db->store.nlive;
    stats->chunk_count = db->session.m.nchunks;
    stats->chunks_loaded = 0;
    stats->lazy = 1;
    stats->index_segments = nseg - first;
    stats->bytes_read = l.bytes + r.len;
    stats->in_place = 1;
  }
done:
  for (size_t i = 0; l.seg_bufs && i < nseg; i++) vv_buf_free(&l.seg_bufs[i]);
  for (size_t i = 0; l.seg_pages && i < nseg; i++) free(l.seg_pages[i]);
  free(l.seg_bufs);
  free(l.seg_pages);
  free(l.seg_np);
  vv_chunk_index_free(&l.chunks);
  pthread_mutex_destroy(&l.err_mu);
  pthread_mutex_destroy(&l.attrs_mu);
  vv_sreader_close(&r);
  return rc;
}

int vv_db_refresh(vv_db *old, const char *dir, const vv_load_opts *o, vv_session_progress_fn progress, void *ctx,
                  vv_db **out, vv_load_stats *stats, vv_error *err) {
  *out = NULL;
  vv_load_opts none = {0};
  if (!old) return VV_E_INVALID;
  if (err) err->message[0] = '\0';
  /* The new generation replaces this database's contents: never silently
   * drop what the caller added, changed or deleted. */
  if (has_unsaved(old)) {
    if (err) snprintf(err->message, sizeof err->message, "%s", kUnsaved);
    return VV_E_INVALID;
  }
  vv_load_stats local_stats;
  if (!stats) stats = &local_stats;
  memset(stats, 0, sizeof *stats);
  if (!o) o = &none;
  /* The secrets and the bound session are read under the save mutex, as a
   * save reads them; no save runs meanwhile. */
  pthread_mutex_lock(&old->save_mu);
  int rc = old->lazy && old->session.bound ? refresh_delta(old, dir, o, progress, ctx, stats, err) : VV_MISS;
  if (rc == VV_MISS) rc = load_impl(dir, o, old, progress, ctx, out, stats, err);
  pthread_mutex_unlock(&old->save_mu);
  if (rc || stats->in_place) return rc;
  /* Nothing reads through old's cache while it moves, and a write that came
   * in meanwhile would be lost with `old`: then the new one is dropped. */
  pthread_rwlock_wrlock(&old->lock);
  if (dirty_locked(old)) {
    rc = VV_E_INVALID;
    if (err) snprintf(err->message, sizeof err->message, "%s", kUnsaved);
  } else if (old->lazy && (*out)->lazy) {
    vv_lazy_adopt((*out)->lazy, old->lazy);
  }
  pthread_rwlock_unlock(&old->lock);
  if (rc) {
    vv_db_free(*out);
    *out = NULL;
  }
  return rc;
}
