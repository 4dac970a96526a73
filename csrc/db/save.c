/*
 * db/save.c: saving the database as a new generation of a session
 * (vv_db_save): what to write and what the database learns from it. The
 * storage format and the commit protocol are session/writer.h.
 *
 * The save captures what it writes under the database's read lock, briefly
 * (capture()), writes with no lock while searches and writers run, and
 * applies the result under the exclusive lock (apply()). Vector chunks are
 * append-only: a save writes new chunks for vectors that changed (and for
 * the live rows of chunks that became mostly dead) and keeps the rest; the
 * index is a base plus deltas of changed nodes, folded back into a new base
 * when the deltas grow.
 *
 * Format 2 adds what a lazy load needs (docs/FORMAT.md): every graph node
 * carries its PQ code (the codebook is learnt at the first save and rides
 * in the first base segment), and new chunks are filled with neighbours:
 * breadth-first balls over the HNSW graph (k-means clusters for the flat
 * index), so that a lazy search touches few chunks.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/codec.h"
#include "../quant/kmeans.h"
#include "../quant/pq.h"
#include "../session/lazy.h"
#include "../session/secrets.h"
#include "../session/writer.h"
#include "db_internal.h"

#define NO_LOC UINT64_MAX
#define TO_REWRITE (UINT64_MAX - 1) /* placeholder until the row is written */
#define MAX_DELTAS 16
#define PQ_SAMPLE 16384u   /* vectors the codebook is learnt from */
#define PQ_ITERS 10
#define CLUSTER_SAMPLE 64u /* sample vectors per chunk centroid */
#define CLUSTER_ITERS 8

#define NO_NODE UINT32_MAX

/* One index record, and its row if it goes into a new chunk, as the capture saw it. */
typedef struct snode {
  uint32_t slot;
  uint8_t state;       /* SLOT_LIVE, SLOT_WAYPOINT, or SLOT_FREE (a delta's deleted slot) */
  uint8_t resident;    /* the vector is in memory at `vec`; else only at `loc` (lazy) */
  uint32_t id_len, meta_len, attrs_len;
  size_t id_off, meta_off; /* into bytes_buf; metadata only for a resident row rewritten now */
  size_t attrs_off;    /* into bytes_buf: the node's attribute record (filterable fields only) */
  const float *vec;    /* the arena record, unchanged while the store is frozen */
  uint64_t loc;        /* its saved location at the capture */
  uint32_t nlevels;
  size_t link_off;     /* into link_buf: nlevels counts, then each level's links */
  const uint8_t *code; /* the database's copy, or this save's (codes); NULL: none */
} snode;

typedef struct save {
  vv_db *db;
  vv_swriter w;      /* the session directory; w.m is the generation being written */
  vv_error *err;
  vv_session_progress_fn progress;
  void *pctx;
  uint64_t done, total;
  vv_save_stats *st;
  /* Decided before the capture (prepare()). */
  int incremental;
  /* Captured under the database lock (capture()); what follows reads only this. */
  uint64_t nslots;      /* slots at the capture */
  int base;             /* write a new index base, not a delta */
  snode *nodes;         /* the index records to write, in slot order */
  size_t nnodes;
  uint32_t *node_of;    /* per slot: its index in nodes, or NO_NODE */
  vv_buf bytes_buf;     /* captured ids, metadata and attribute records */
  /* The filterable field paths (borrowed from db->attrs, fixed for its life). */
  vv_fields_in fields;
  const char *field_paths[VV_ATTR_MAX_FIELDS];
  uint32_t field_lens[VV_ATTR_MAX_FIELDS];
  vv_buf link_buf;      /* captured links (uint32_t) */
  uint32_t *rewrite;    /* nodes whose rows go into new chunks */
  size_t nrewrite;
  int *keep_chunk;      /* per chunk of the bound manifest: it stays */
  size_t nold;
  uint64_t *pending;    /* per node: the row's new location, TO_REWRITE, or NO_LOC */
  uint64_t *dirty;      /* (slot << 2) | dirty bits the capture took over */
  size_t ndirty, dirty_cap;
  /* The codebook: the database's, or (train) one this save learns from `sample`. */
  int train;
  float *sample;
  size_t nsample;
  vv_pq *pq;
  uint64_t pq_trained_on;
  uint32_t *encode;     /* nodes whose code this save computes, into `codes` */
  size_t nencode;
  uint8_t *codes;
} save;

static int fail(save *s, int rc, const char *what) { return vv_error_note(s->err, rc, what); }

static int tick(save *s, int phase) {
  s->done++;
  if (s->progress && s->progress(s->pctx, s->done, s->total, phase, s->w.bytes)) return VV_E_ABORTED;
  return VV_OK;
}

/* ---- slot states ---------------------------------------------------------- */

enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_WAYPOINT = 2 };

static int slot_state(const vv_db *db, uint32_t slot) {
  if (vv_store_is_live(&db->store, slot)) return SLOT_LIVE;
  if (db->hnsw && vv_hnsw_level(db->hnsw, slot) >= 0) return SLOT_WAYPOINT;
  return SLOT_FREE;
}

/* ---- the capture ----------------------------------------------------------
 * Under the database lock, the save copies what it must write: each index
 * record (id, links, location, code) and, for rows going into new chunks,
 * the id and metadata. Vectors are not copied: the capture freezes the
 * store (vv_store_freeze), so until the save ends no slot is reused and no
 * vector is overwritten in place, and the arena records it points at stay
 * as they were. Everything after the capture reads only the capture, so
 * writers run while chunks and index segments are written. */

static snode *node_at(save *s, uint32_t slot) {
  return slot < s->nslots && s->node_of[slot] != NO_NODE ? &s->nodes[s->node_of[slot]] : NULL;
}

static const uint32_t *node_links(const save *s, const snode *n, uint32_t level, uint32_t *count) {
  const uint32_t *p = (const uint32_t *)s->link_buf.data + n->link_off;
  size_t at = n->nlevels;
  for (uint32_t l = 0; l < level; l++) at += p[l];
  *count = p[level];
  return p + at;
}

static int copy_bytes_into(vv_buf *b, const char *p, uint32_t len, size_t *off) {
  *off = b->len;
  return len ? vv_buf_append(b, p, len) : VV_OK;
}

static int capture_node(save *s, uint32_t slot, int rewrite) {
  vv_db *db = s->db;
  snode *n = &s->nodes[s->nnodes];
  memset(n, 0, sizeof *n);
  n->slot = slot;
  n->state = (uint8_t)slot_state(db, slot);
  n->loc = vv_store_loc(&db->store, slot);
  uint8_t f = vv_store_flags(&db->store, slot);
  n->resident = !db->lazy || (f & VV_SLOT_RESIDENT);
  if (n->resident) n->vec = vv_store_vec(&db->store, slot);
  int rc = VV_OK;
  const vv_slotrec *rec = vv_store_rec(&db->store, slot);
  if (n->state == SLOT_LIVE) {
    n->id_len = rec->id_len;
    rc = copy_bytes_into(&s->bytes_buf, rec->id, rec->id_len, &n->id_off);
  }
  if (!rc && n->state == SLOT_LIVE && db->attrs) {
    size_t before = s->bytes_buf.len;
    n->attrs_off = before;
    rc = vv_attrs_encode(db->attrs, slot, &s->bytes_buf);
    n->attrs_len = (uint32_t)(s->bytes_buf.len - before);
  }
  if (!rc && rewrite && n->resident && n->state == SLOT_LIVE && rec->meta) {
    n->meta_len = rec->meta_len;
    rc = copy_bytes_into(&s->bytes_buf, rec->meta, rec->meta_len, &n->meta_off);
  }
  n->link_off = s->link_buf.len / sizeof(uint32_t);
  if (!rc && n->state != SLOT_FREE && db->hnsw) {
    int level = vv_hnsw_level(db->hnsw, slot);
    n->nlevels = (uint32_t)(level + 1);
    const uint32_t *links;
    for (int l = 0; l <= level && !rc; l++) {
      uint32_t cnt = vv_hnsw_links(db->hnsw, slot, l, &links);
      rc = vv_buf_append(&s->link_buf, &cnt, sizeof cnt);
    }
    for (int l = 0; l <= level && !rc; l++) {
      uint32_t cnt = vv_hnsw_links(db->hnsw, slot, l, &links);
      rc = vv_buf_append(&s->link_buf, links, (size_t)cnt * sizeof *links);
    }
  }
  if (!rc && n->state != SLOT_FREE && s->pq) {
    if (!s->train && db->has_codes && (f & VV_SLOT_CODED)) n->code = (const uint8_t *)vv_arena_at(&db->codes, slot);
    else if (!n->resident) rc = VV_E_INTERNAL; /* lazily loaded nodes come with codes */
    else s->encode[s->nencode++] = (uint32_t)s->nnodes;
  }
  if (!rc) s->node_of[slot] = (uint32_t)s->nnodes++;
  return rc;
}

/* Up to `want` of the in-memory vectors of `pool`, evenly spread, copied
 * back to back. */
static int sample_vectors(vv_db *db, const uint32_t *pool, size_t npool, size_t want, float **out, size_t *n) {
  size_t take = npool < want ? npool : want;
  size_t dim = db->cfg.dimension;
  float *buf = malloc((take ? take : 1) * dim * sizeof *buf);
  if (!buf) return VV_E_NOMEM;
  for (size_t i = 0; i < take; i++) {
    size_t j = (size_t)((double)i * (double)npool / (double)take);
    memcpy(buf + i * dim, vv_store_vec(&db->store, pool[j]), dim * sizeof *buf);
  }
  *out = buf;
  *n = take;
  return VV_OK;
}

/* Every graph node gets a PQ code. The codebook is learnt when there is
 * none, and learnt again (by a database held in memory) once the vectors
 * have outgrown the sample it came from fourfold; then every code is new.
 * The capture decides, and copies the training sample. */
static int capture_codebook(save *s, uint32_t *scratch) {
  vv_db *db = s->db;
  if (!db->hnsw) return VV_OK;
  size_t nres = 0;
  /* Listing the in-memory vectors is a pass over every slot: only when a
   * codebook could be learnt now. */
  int may_train = !db->pq || (!db->lazy && db->pq_trained_on < PQ_SAMPLE);
  for (uint64_t i = 0; may_train && i < s->nslots; i++) {
    uint32_t slot = (uint32_t)i;
    if (vv_store_is_live(&db->store, slot) && (vv_store_flags(&db->store, slot) & VV_SLOT_RESIDENT))
      scratch[nres++] = slot;
  }
  s->train = !db->pq || (!db->lazy && db->pq_trained_on < PQ_SAMPLE && nres >= 4 * db->pq_trained_on);
  if (s->train && nres > 0) {
    s->pq = calloc(1, sizeof *s->pq);
    if (!s->pq) return VV_E_NOMEM;
    return sample_vectors(db, scratch, nres, PQ_SAMPLE, &s->sample, &s->nsample);
  }
  s->train = 0; /* nothing to learn from yet: no codes */
  s->pq = db->pq;
  s->pq_trained_on = db->pq_trained_on;
  return VV_OK;
}

/* Takes over the dirty bits of every slot: from now on they mark changes
 * made after the capture. A failed save gives them back. */
static int capture_dirty(save *s) {
  vv_db *db = s->db;
  for (uint64_t i = 0; i < s->nslots; i++) {
    uint32_t slot = (uint32_t)i;
    uint8_t f = vv_store_flags(&db->store, slot) & (VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY);
    if (!f) continue;
    if (s->ndirty == s->dirty_cap) {
      size_t cap = s->dirty_cap ? s->dirty_cap * 2 : 1024;
      uint64_t *p = realloc(s->dirty, cap * sizeof *p);
      if (!p) return VV_E_NOMEM;
      s->dirty = p;
      s->dirty_cap = cap;
    }
    s->dirty[s->ndirty++] = (uint64_t)slot << 2 | f;
  }
  for (size_t i = 0; i < s->ndirty; i++) vv_store_unmark(&db->store, (uint32_t)(s->dirty[i] >> 2), VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY);
  return VV_OK;
}

static void restore_dirty(save *s) {
  for (size_t i = 0; i < s->ndirty; i++) vv_store_mark(&s->db->store, (uint32_t)(s->dirty[i] >> 2), (uint8_t)(s->dirty[i] & 3));
}

/* Which rows go into new chunks: with no usable previous generation all of
 * them; otherwise those that changed, and the current rows of old chunks
 * whose current rows fell under half (their file can then go). Fills
 * keep_chunk and the slot list `rewrite`; *nlive counts graph nodes. */
static int plan_rows(save *s, uint32_t *rewrite, size_t *nrewrite, size_t *nlive) {
  vv_db *db = s->db;
  vv_bound *b = &db->session;
  size_t nold = s->incremental ? b->m.nchunks : 0;
  vv_chunk_index idx = {0};
  uint32_t *live_in = calloc(nold ? nold : 1, sizeof *live_in);
  s->keep_chunk = calloc(nold ? nold : 1, sizeof *s->keep_chunk);
  s->nold = nold;
  int rc = live_in && s->keep_chunk ? VV_OK : VV_E_NOMEM;
  if (!rc) rc = vv_chunk_index_build(&idx, b->m.chunks, nold);
  *nrewrite = *nlive = 0;
  for (int pass = 0; pass < 2 && !rc; pass++) {
    for (uint64_t i = 0; i < s->nslots; i++) {
      uint32_t slot = (uint32_t)i;
      if (slot_state(db, slot) == SLOT_FREE) continue;
      uint8_t f = vv_store_flags(&db->store, slot);
      long c = -1;
      if (s->incremental && !(f & VV_SLOT_VEC_DIRTY) && (f & VV_SLOT_SAVED))
        c = vv_chunk_index_find(&idx, VV_LOC_CHUNK(vv_store_loc(&db->store, slot)));
      if (pass == 0) {
        (*nlive)++;
        if (c >= 0) live_in[c]++;
      } else if (c < 0 || !s->keep_chunk[c]) {
        rewrite[(*nrewrite)++] = slot;
      }
    }
    for (size_t i = 0; pass == 0 && i < nold; i++)
      s->keep_chunk[i] = live_in[i] > 0 && (uint64_t)live_in[i] * 2 >= b->m.chunks[i].count &&
                         b->m.version >= 3; /* older chunks are not paged: the upgrade rewrites them */
  }
  vv_chunk_index_free(&idx);
  free(live_in);
  return rc;
}

/* Captures everything the save writes (see above). Database lock held. */
static int capture(save *s) {
  vv_db *db = s->db;
  vv_bound *b = &db->session;
  s->nslots = db->store.nslots;
  s->fields.n = db->attrs ? vv_attrs_nfields(db->attrs) : 0;
  for (uint32_t f = 0; f < s->fields.n; f++) s->field_paths[f] = vv_attrs_path(db->attrs, f, &s->field_lens[f]);
  s->fields.paths = s->field_paths;
  s->fields.lens = s->field_lens;
  size_t cap = s->nslots ? s->nslots : 1;
  uint32_t *rewrite = malloc(cap * sizeof *rewrite);
  uint8_t *is_rewrite = calloc(cap, 1);
  s->node_of = malloc(cap * sizeof *s->node_of);
  int rc = rewrite && is_rewrite && s->node_of ? VV_OK : VV_E_NOMEM;
  if (!rc) rc = capture_codebook(s, rewrite);
  size_t nrewrite = 0, nlive = 0;
  if (!rc) rc = plan_rows(s, rewrite, &nrewrite, &nlive);
  for (size_t i = 0; i < nrewrite; i++) is_rewrite[rewrite[i]] = 1;
  /* Index: a fresh base when there is none, after a full rewrite, or when
   * the deltas would outgrow half the base; otherwise a delta of the nodes
   * whose record changed (or whose row moves). */
  size_t ndirty = 0;
  for (uint64_t i = 0; i < s->nslots && !rc; i++) {
    uint8_t f = vv_store_flags(&db->store, (uint32_t)i);
    if ((f & (VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY)) || is_rewrite[i]) ndirty++;
  }
  uint64_t base_bytes = 0, delta_bytes = 0;
  for (size_t i = 0; s->incremental && i < b->m.nbase; i++) base_bytes += b->m.base[i].ref.bytes;
  for (size_t i = 0; s->incremental && i < b->m.ndeltas; i++) delta_bytes += b->m.deltas[i].ref.bytes;
  /* New codes everywhere, or a base of an older format, also call for a new base. */
  s->base = !s->incremental || b->m.nbase == 0 || b->m.ndeltas >= MAX_DELTAS || delta_bytes * 2 > base_bytes ||
            ndirty * 2 > nlive || s->train || b->m.version < 3;
  size_t nnodes = 0;
  for (uint64_t i = 0; i < s->nslots && !rc; i++) {
    uint32_t slot = (uint32_t)i;
    s->node_of[slot] = NO_NODE;
    if (s->base ? slot_state(db, slot) != SLOT_FREE
                : ((vv_store_flags(&db->store, slot) & (VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY)) || is_rewrite[slot]))
      nnodes++;
  }
  if (!rc) {
    s->nodes = malloc((nnodes ? nnodes : 1) * sizeof *s->nodes);
    s->pending = malloc((nnodes ? nnodes : 1) * sizeof *s->pending);
    s->encode = malloc((nnodes ? nnodes : 1) * sizeof *s->encode);
    if (!s->nodes || !s->pending || !s->encode) rc = VV_E_NOMEM;
  }
  for (uint64_t i = 0; i < s->nslots && !rc; i++) {
    uint32_t slot = (uint32_t)i;
    if (s->base ? slot_state(db, slot) != SLOT_FREE
                : ((vv_store_flags(&db->store, slot) & (VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY)) || is_rewrite[slot]))
      rc = capture_node(s, slot, is_rewrite[slot]);
  }
  /* Every row going into a new chunk is a node of this index write. */
  for (size_t i = 0; i < nrewrite && !rc; i++) {
    rewrite[i] = s->node_of[rewrite[i]];
    if (rewrite[i] == NO_NODE) rc = VV_E_INTERNAL;
  }
  for (size_t i = 0; i < s->nnodes; i++) s->pending[i] = is_rewrite[s->nodes[i].slot] ? TO_REWRITE : NO_LOC;
  vv_manifest *m = &s->w.m;
  m->total_vectors = db->store.nlive;
  m->slot_count = s->nslots;
  m->entry = UINT32_MAX;
  m->max_level = -1;
  if (db->hnsw) m->entry = vv_hnsw_entry(db->hnsw, &m->max_level);
  if (m->max_level < 0) m->entry = UINT32_MAX;
  if (!rc) rc = capture_dirty(s);
  if (!rc) vv_store_freeze(&db->store);
  free(is_rewrite);
  if (rc) {
    free(rewrite);
    return fail(s, rc, "capturing the database");
  }
  s->rewrite = rewrite;
  s->nrewrite = nrewrite;
  return VV_OK;
}

/* ---- chunks ------------------------------------------------------------ */

typedef struct chunk_rows {
  uint32_t *slots;
  const float **vecs;
  const char **ids;
  uint32_t *id_lens;
  const char **metas;
  uint32_t *meta_lens;
} chunk_rows;

static void rows_free(chunk_rows *r) {
  free(r->slots);
  free(r->vecs);
  free(r->ids);
  free(r->id_lens);
  free(r->metas);
  free(r->meta_lens);
}

static int rows_alloc(chunk_rows *r, size_t n) {
  memset(r, 0, sizeof *r);
  r->slots = malloc(n * sizeof *r->slots);
  r->vecs = malloc(n * sizeof *r->vecs);
  r->ids = malloc(n * sizeof *r->ids);
  r->id_lens = malloc(n * sizeof *r->id_lens);
  r->metas = malloc(n * sizeof *r->metas);
  r->meta_lens = malloc(n * sizeof *r->meta_lens);
  if (r->slots && r->vecs && r->ids && r->id_lens && r->metas && r->meta_lens) return VV_OK;
  rows_free(r);
  return VV_E_NOMEM;
}

/* Encodes the rows of nodes list[at..end) for the writer. Rows still only
 * in an old chunk (a lazy database compacting) are read through the cache
 * under the database's read lock, pinned until encoded. */
static int encode_rows(save *s, const uint32_t *list, size_t at, size_t end, uint64_t seq, chunk_rows *r) {
  vv_db *db = s->db;
  uint32_t cnt = (uint32_t)(end - at);
  int lazy_rows = 0;
  for (uint32_t i = 0; i < cnt; i++) {
    const snode *n = &s->nodes[list[at + i]];
    r->slots[i] = n->slot;
    r->ids[i] = n->state == SLOT_LIVE ? (const char *)s->bytes_buf.data + n->id_off : NULL;
    r->id_lens[i] = n->id_len;
    r->vecs[i] = n->vec;
    r->metas[i] = n->meta_len ? (const char *)s->bytes_buf.data + n->meta_off : NULL;
    r->meta_lens[i] = n->meta_len;
    lazy_rows |= !n->resident;
  }
  vv_reads rd = {s->err, NULL, NULL}; /* a failed chunk read names its object */
  vv_pins pins = {.rd = &rd};
  int rc = VV_OK;
  if (lazy_rows) pthread_rwlock_rdlock(&db->lock);
  for (uint32_t i = 0; i < cnt && !rc; i++) {
    const snode *n = &s->nodes[list[at + i]];
    if (n->resident) continue;
    rc = vv_db_row(db, n->slot, &pins, &r->vecs[i], &r->metas[i], &r->meta_lens[i]);
    if (n->state != SLOT_LIVE) {
      r->metas[i] = NULL; /* a waypoint's old metadata is not kept */
      r->meta_lens[i] = 0;
    }
  }
  if (rc) {
    fail(s, rc, "reading vectors from the loaded session");
  } else {
    vv_chunk_in in = {seq, db->cfg.dimension, cnt, r->slots, r->vecs, r->ids, r->id_lens, r->metas, r->meta_lens};
    rc = vv_swriter_chunk_begin(&s->w, &in);
  }
  vv_pins_release(db, &pins);
  if (lazy_rows) pthread_rwlock_unlock(&db->lock);
  return rc;
}

/* Writes nodes list[at..end) as one chunk. */
static int write_chunk(save *s, const uint32_t *list, size_t at, size_t end, chunk_rows *r) {
  vv_mchunk c = {0};
  c.seq = s->w.m.next_chunk_seq++;
  c.count = (uint32_t)(end - at);
  c.slot_min = UINT32_MAX;
  if (c.seq > UINT32_MAX) return fail(s, VV_E_FULL, "numbering chunks");
  for (size_t i = at; i < end; i++) {
    uint32_t slot = s->nodes[list[i]].slot;
    if (slot < c.slot_min) c.slot_min = slot;
    if (slot > c.slot_max) c.slot_max = slot;
    s->pending[list[i]] = VV_LOC(c.seq, i - at);
  }
  int rc = encode_rows(s, list, at, end, c.seq, r);
  if (!rc) rc = vv_swriter_chunk_end(&s->w, &c);
  if (!rc) {
    s->st->chunks_written++;
    rc = tick(s, VV_PHASE_CHUNKS);
  }
  return rc;
}

/* Writes the planned pieces: list[ends[i-1]..ends[i]) is chunk i. */
static int write_chunks(save *s, const uint32_t *list, const size_t *ends, size_t npieces) {
  size_t most = 1;
  for (size_t i = 0, at = 0; i < npieces; at = ends[i++])
    if (ends[i] - at > most) most = ends[i] - at;
  chunk_rows r;
  int rc = rows_alloc(&r, most);
  if (rc) return rc;
  for (size_t i = 0, at = 0; i < npieces && !rc; at = ends[i++]) rc = write_chunk(s, list, at, ends[i], &r);
  rows_free(&r);
  return rc;
}

/* ---- codes ---------------------------------------------------------------- */

static const float *encode_row(void *ctx, size_t i) {
  save *s = ctx;
  return s->nodes[s->encode[i]].vec;
}

static uint8_t *encode_dst(void *ctx, size_t i) {
  save *s = ctx;
  return s->codes + i * s->pq->m;
}

/* Bytes per code: subvectors of about 4 floats (96 bytes at 384-D). With
 * 8 floats (half the bytes) recall after re-ranking fell by 10 to 15
 * points on clustered 384-D data at the same efSearch (docs/PERFORMANCE.md). */
static uint32_t code_bytes(uint32_t dim) {
  uint32_t m = vv_pq_choose_m(dim);
  return dim % (2 * m) == 0 ? 2 * m : m;
}

/* Learns the codebook the capture asked for and computes the codes the
 * capture found missing, from the captured vectors. No lock: the results
 * reach the database only after the commit (apply()). */
static int make_codes(save *s) {
  uint32_t dim = s->db->cfg.dimension;
  int rc = VV_OK;
  if (s->train) {
    rc = vv_pq_train(s->pq, s->sample, s->nsample, dim, code_bytes(dim), PQ_ITERS, 0x5eedc0de, s->db->cfg.threads);
    if (rc) {
      free(s->pq); /* vv_pq_train leaves nothing to destroy on failure */
      s->pq = NULL;
      return fail(s, rc, "learning the PQ codebook");
    }
    s->pq_trained_on = s->nsample;
  }
  if (!s->pq || !s->nencode) return VV_OK;
  s->codes = malloc(s->nencode * s->pq->m);
  if (!s->codes) return fail(s, VV_E_NOMEM, "encoding vectors");
  rc = vv_pq_encode_batch(s->pq, encode_row, encode_dst, s, s->nencode, s->db->cfg.threads);
  for (size_t i = 0; i < s->nencode && !rc; i++) s->nodes[s->encode[i]].code = s->codes + i * s->pq->m;
  return rc ? fail(s, rc, "encoding vectors") : VV_OK;
}

/* ---- chunk layout --------------------------------------------------------- */

typedef struct row_ctx {
  const save *s;
  const uint32_t *list;
} row_ctx;

static const float *row_at(void *ctx, size_t i) {
  row_ctx *r = ctx;
  return r->s->nodes[r->list[i]].vec;
}

/* Appends the ends of `n` rows from `at` cut into equal pieces of at most `per`. */
static void cut_pieces(size_t at, size_t n, size_t per, size_t *ends, size_t *npieces) {
  size_t pieces = (n + per - 1) / per;
  for (size_t p = 1; p <= pieces; p++) ends[(*npieces)++] = at + n * p / pieces;
}

static int cmp_pair(const void *a, const void *b) {
  uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
  return (x > y) - (x < y);
}

/* Up to `want` captured vectors of nodes `list`, evenly spread, copied back to back. */
static int sample_rows(const save *s, const uint32_t *list, size_t n, size_t want, float **out, size_t *nout) {
  size_t take = n < want ? n : want;
  size_t dim = s->db->cfg.dimension;
  float *buf = malloc((take ? take : 1) * dim * sizeof *buf);
  if (!buf) return VV_E_NOMEM;
  for (size_t i = 0; i < take; i++) {
    size_t j = (size_t)((double)i * (double)n / (double)take);
    memcpy(buf + i * dim, s->nodes[list[j]].vec, dim * sizeof *buf);
  }
  *out = buf;
  *nout = take;
  return VV_OK;
}

/* Groups nodes list[0..n) (all in memory) by k-means over their vectors,
 * k = the number of chunks they fill, and cuts each cluster into equal pieces. */
static int cluster_rows(save *s, uint32_t *list, size_t n, size_t *ends, size_t *npieces) {
  size_t per = s->db->cfg.chunk_size;
  uint32_t k = (uint32_t)((n + per - 1) / per);
  if (k <= 1) {
    if (n) cut_pieces(0, n, per, ends, npieces);
    return VV_OK;
  }
  uint32_t dim = s->db->cfg.dimension, threads = s->db->cfg.threads;
  float *sample = NULL;
  size_t ns = 0;
  float *cents = malloc((size_t)k * dim * sizeof *cents);
  uint32_t *assign = malloc(n * sizeof *assign);
  size_t *start = calloc((size_t)k + 1, sizeof *start);
  uint32_t *sorted = malloc(n * sizeof *sorted);
  int rc = cents && assign && start && sorted ? VV_OK : VV_E_NOMEM;
  if (!rc) rc = sample_rows(s, list, n, (size_t)k * CLUSTER_SAMPLE, &sample, &ns);
  if (!rc) rc = vv_kmeans_train(sample, ns, dim, 0, dim, k, CLUSTER_ITERS, 0xc105e, threads, cents);
  row_ctx rctx = {s, list};
  if (!rc) rc = vv_kmeans_assign(cents, k, dim, row_at, &rctx, n, threads, assign);
  if (!rc) {
    for (size_t i = 0; i < n; i++) start[assign[i] + 1]++;
    for (uint32_t c = 0; c < k; c++) start[c + 1] += start[c];
    size_t *fill = malloc(((size_t)k + 1) * sizeof *fill);
    if (!fill) {
      rc = VV_E_NOMEM;
    } else {
      memcpy(fill, start, ((size_t)k + 1) * sizeof *fill);
      for (size_t i = 0; i < n; i++) sorted[fill[assign[i]]++] = list[i];
      free(fill);
      memcpy(list, sorted, n * sizeof *list);
      for (uint32_t c = 0; c < k; c++)
        if (start[c + 1] > start[c]) cut_pieces(start[c], start[c + 1] - start[c], per, ends, npieces);
    }
  }
  free(sample);
  free(cents);
  free(assign);
  free(start);
  free(sorted);
  return rc;
}

/* HNSW: grows each chunk as a breadth-first ball over the level-0 graph
 * (as captured) from a seed on the previous ball's frontier, so a chunk is
 * a connected neighbourhood and the rows a search re-ranks (which the
 * graph walk found near each other) share chunks. When a ball runs dry
 * (the rest of its region is placed), it goes on from the next unplaced
 * row. `list` holds node indexes. */
static int graph_rows(save *s, uint32_t *list, size_t n, size_t *ends, size_t *npieces) {
  size_t per = s->db->cfg.chunk_size;
  if (n <= per) {
    if (n) cut_pieces(0, n, per, ends, npieces);
    return VV_OK;
  }
  uint8_t *mark = calloc(s->nnodes ? s->nnodes : 1, 1); /* per node: 1 = to place, 2 = queued or placed */
  uint32_t *q = malloc(n * sizeof *q);
  uint32_t *out = malloc(n * sizeof *out);
  if (!mark || !q || !out) {
    free(mark);
    free(q);
    free(out);
    return VV_E_NOMEM;
  }
  for (size_t i = 0; i < n; i++) mark[list[i]] = 1;
  size_t pos = 0, scan = 0;
  uint32_t seed = UINT32_MAX;
  while (pos < n) {
    if (seed == UINT32_MAX || mark[seed] != 1) {
      while (mark[list[scan]] != 1) scan++;
      seed = list[scan];
    }
    size_t head = 0, tail = 0, start = pos;
    q[tail++] = seed;
    mark[seed] = 2;
    while (pos - start < per && pos < n) {
      if (head == tail) { /* the ball ran dry: go on from the next unplaced row */
        while (mark[list[scan]] != 1) scan++;
        q[tail++] = list[scan];
        mark[list[scan]] = 2;
      }
      uint32_t x = q[head++];
      out[pos++] = x;
      uint32_t cnt = 0;
      const uint32_t *links = s->nodes[x].nlevels ? node_links(s, &s->nodes[x], 0, &cnt) : NULL;
      for (uint32_t j = 0; j < cnt; j++) {
        const snode *y = node_at(s, links[j]);
        uint32_t yi = y ? (uint32_t)(y - s->nodes) : NO_NODE;
        if (y && mark[yi] == 1) {
          mark[yi] = 2;
          q[tail++] = yi;
        }
      }
    }
    /* Queued but not placed: back to the pool; the first seeds the next ball. */
    seed = head < tail ? q[head] : UINT32_MAX;
    for (size_t i = head; i < tail; i++) mark[q[i]] = 1;
    ends[(*npieces)++] = pos;
  }
  memcpy(list, out, n * sizeof *list);
  free(mark);
  free(q);
  free(out);
  return VV_OK;
}

/* Orders the rows to write and cuts them into chunks: rows in memory are
 * laid out by graph_rows or cluster_rows; rows only in an old chunk (a
 * lazy database compacting) follow, in their old order, so each old chunk
 * is read once. */
static int plan_chunks(save *s, uint32_t *list, size_t n, size_t **ends_out, size_t *npieces) {
  size_t per = s->db->cfg.chunk_size;
  *npieces = 0;
  /* At most one piece per `per` rows plus one per cluster in each group. */
  size_t *ends = malloc((2 * (n / per) + 4) * sizeof *ends);
  uint64_t *old = malloc((n ? n : 1) * 2 * sizeof *old);
  int rc = ends && old ? VV_OK : VV_E_NOMEM;
  size_t nres = 0, nold = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    const snode *node = &s->nodes[list[i]];
    if (node->resident) {
      list[nres++] = list[i];
    } else {
      old[2 * nold] = node->loc;
      old[2 * nold + 1] = list[i];
      nold++;
    }
  }
  if (!rc) rc = s->db->hnsw ? graph_rows(s, list, nres, ends, npieces) : cluster_rows(s, list, nres, ends, npieces);
  if (!rc && nold) {
    qsort(old, nold, 2 * sizeof *old, cmp_pair);
    for (size_t i = 0; i < nold; i++) list[nres + i] = (uint32_t)old[2 * i + 1];
    cut_pieces(nres, nold, per, ends, npieces);
  }
  free(old);
  if (rc) {
    free(ends);
    return fail(s, rc, "laying out chunks");
  }
  *ends_out = ends;
  return VV_OK;
}

/* ---- index segments ---------------------------------------------------- */

static int encode_node(save *s, size_t i) {
  const snode *node = &s->nodes[i];
  vv_node_in n = {0};
  const uint32_t *links[VV_CODEC_MAX_LEVELS];
  uint32_t counts[VV_CODEC_MAX_LEVELS];
  n.slot = node->slot;
  if (node->state != SLOT_FREE) {
    uint64_t loc = s->pending[i] != NO_LOC ? s->pending[i] : node->loc;
    n.chunk = VV_LOC_CHUNK(loc);
    n.row = VV_LOC_ROW(loc);
    if (node->code) {
      n.code = node->code;
      n.code_len = s->pq->m;
    }
  }
  n.v2 = 1;
  if (node->state == SLOT_LIVE) {
    n.id = (const char *)s->bytes_buf.data + node->id_off;
    n.id_len = node->id_len;
  }
  /* With filterable fields every node carries a record (empty: all missing). */
  if (s->fields.n) {
    n.attrs = s->bytes_buf.data + node->attrs_off;
    n.attrs_len = node->attrs_len;
    if (!n.attrs_len) n.attrs = (const unsigned char *)"";
  }
  if (node->nlevels > VV_CODEC_MAX_LEVELS) return VV_E_INTERNAL;
  for (uint32_t l = 0; l < node->nlevels; l++) links[l] = node_links(s, node, l, &counts[l]);
  n.nlevels = node->nlevels;
  n.links = links;
  n.counts = counts;
  return vv_swriter_segment_node(&s->w, &n);
}

/* Writes every captured node as segments of at most chunk_size nodes. */
static int write_index(save *s) {
  uint32_t per = s->db->cfg.chunk_size;
  size_t n = s->nnodes;
  int rc = VV_OK;
  for (size_t at = 0; (at < n || at == 0) && !rc; at += per) {
    uint32_t cnt = (uint32_t)(n - at < per ? n - at : per);
    vv_mseg g = {0};
    g.seq = s->w.m.next_index_seq++;
    g.count = cnt;
    /* The first base segment carries the codebook. */
    const vv_pq *pq = s->pq;
    vv_codebook_in cb = {0};
    if (pq) cb = (vv_codebook_in){pq->m, pq->ksub, pq->dsub, s->pq_trained_on, pq->centroids};
    int first = s->base && at == 0;
    rc = vv_swriter_segment_begin(&s->w, &g, s->base, first && pq ? &cb : NULL, first && s->fields.n ? &s->fields : NULL);
    for (uint32_t i = 0; i < cnt && !rc; i++) rc = encode_node(s, at + i);
    if (!rc) rc = vv_swriter_segment_end(&s->w, s->base, &g);
    if (!rc) {
      s->st->index_written++;
      rc = tick(s, VV_PHASE_INDEX);
    }
  }
  return rc;
}

/* ---- the save, step by step -------------------------------------------- */

/* Before the capture, under the save mutex only: the session id, the key
 * (a passphrase's key derivation is slow: no writer waits for it), the
 * directory's current manifest, and whether this can be a delta onto it. */
static int prepare(save *s) {
  vv_db *db = s->db;
  vv_bound *b = &db->session;
  if (!db->has_session_id) {
    vv_random_bytes(db->session_id, VV_SESSION_ID_BYTES);
    db->has_session_id = 1;
  }
  vv_manifest *m = &s->w.m;
  memcpy(m->session_id, db->session_id, VV_SESSION_ID_BYTES);
  int rc = vv_secrets_for_save(&db->secrets, m->session_id, m, s->err);
  if (rc) return rc;
  vv_swriter_seal_with(&s->w, m->kdf != VV_KDF_NONE ? db->secrets.kr : NULL, db->session_id);
  m->next_chunk_seq = b->bound ? b->m.next_chunk_seq : 0;
  m->next_index_seq = b->bound ? b->m.next_index_seq : 0;
  rc = vv_swriter_read_current(&s->w, &m->next_chunk_seq, &m->next_index_seq);
  if (rc) return rc;
  /* Incremental only onto the very generation we know, sealed the same way. */
  s->incremental = b->bound && s->w.exists && !strcmp(b->dir, s->w.sc.dir) &&
                   !memcmp(s->w.cur_hash, b->manifest_hash, VV_HASH_BYTES) && b->m.kdf == m->kdf &&
                   !memcmp(b->m.session_id, m->session_id, VV_SESSION_ID_BYTES) &&
                   (m->kdf == VV_KDF_NONE || !memcmp(b->m.key_check, m->key_check, VV_HASH_BYTES));
  s->st->full = !s->incremental;
  m->generation = (s->w.exists ? s->w.cur_generation : 0) + 1;
  return VV_OK;
}

/* After the capture, with no database lock: codes, chunks, index segments,
 * the manifest, then garbage collection. */
static int write_capture(save *s, unsigned char new_hash[VV_HASH_BYTES]) {
  vv_db *db = s->db;
  vv_bound *b = &db->session;
  size_t *ends = NULL, npieces = 0;
  int rc = make_codes(s);
  if (!rc) rc = plan_chunks(s, s->rewrite, s->nrewrite, &ends, &npieces);
  if (rc) return rc;
  uint32_t per = db->cfg.chunk_size;
  size_t nsegs = (s->nnodes + per - 1) / per;
  if (s->base && nsegs == 0) nsegs = 1; /* an empty database still has a (empty) base */
  s->total = npieces + nsegs + 1;

  /* Carry over kept chunks and (for a delta) the index segments. */
  for (size_t i = 0; i < s->nold && !rc; i++) {
    if (!s->keep_chunk[i]) continue;
    rc = vv_swriter_keep_chunk(&s->w, &b->m.chunks[i]);
    s->st->chunks_reused++;
  }
  if (!s->base) {
    for (size_t i = 0; i < b->m.nbase && !rc; i++) rc = vv_swriter_keep_segment(&s->w, 1, &b->m.base[i]);
    for (size_t i = 0; i < b->m.ndeltas && !rc; i++) rc = vv_swriter_keep_segment(&s->w, 0, &b->m.deltas[i]);
  }
  if (!rc) rc = write_chunks(s, s->rewrite, ends, npieces);
  free(ends);
  if (!rc && nsegs) rc = write_index(s);
  if (rc) return rc;

  /* The manifest describes exactly what was captured. */
  vv_manifest *m = &s->w.m;
  m->version = s->fields.n ? VV_FORMAT_VERSION : VV_FORMAT_VERSION_PLAIN;
  m->dimension = db->cfg.dimension;
  m->metric = db->cfg.metric;
  m->index = db->cfg.index;
  m->m = db->cfg.hnsw_m;
  m->ef_construction = db->cfg.ef_construction;
  m->ef_search = db->cfg.ef_search;
  m->chunk_size = db->cfg.chunk_size;
  rc = vv_swriter_commit(&s->w, s->w.sc.kr, m->generation, new_hash);
  if (rc) return rc;
  s->st->generation = m->generation;
  s->st->bytes_written = s->w.bytes;
  rc = tick(s, VV_PHASE_COMMIT);
  if (rc == VV_E_ABORTED) rc = VV_OK; /* too late to abort: it is committed */
  return rc;
}

/* The codebook and codes this save made become the database's. */
static void install_codes(save *s) {
  vv_db *db = s->db;
  if (s->train) {
    if (db->pq) vv_pq_destroy(db->pq);
    free(db->pq);
    db->pq = s->pq;
    db->pq_trained_on = s->pq_trained_on;
    s->train = 0; /* the database owns it now */
    if (db->has_codes) vv_arena_destroy(&db->codes);
    db->has_codes = 0;
    for (uint64_t i = 0; i < db->store.nslots; i++) vv_store_unmark(&db->store, (uint32_t)i, VV_SLOT_CODED);
  }
  /* Without room for codes they simply stay missing: the next save computes them again. */
  if (!s->nencode || vv_db_codes_init(db) != VV_OK) return;
  for (size_t i = 0; i < s->nencode; i++) {
    uint32_t slot = s->nodes[s->encode[i]].slot;
    memcpy(vv_arena_at(&db->codes, slot), s->codes + i * s->pq->m, s->pq->m);
    vv_store_mark(&db->store, slot, VV_SLOT_CODED);
  }
  vv_db_refresh_memory(db);
}

/* Committed: the database learns what it now has on disk. Exclusive lock held. */
static void apply(save *s, const unsigned char new_hash[VV_HASH_BYTES]) {
  vv_db *db = s->db;
  vv_bound *b = &db->session;
  install_codes(s);
  /* A lazy database reads from the new generation from now on (the
   * previous one stays readable for locations not yet updated); if it
   * cannot, its rows stay where they were, and the next save is a full one. */
  char *dir_copy = strdup(s->w.sc.dir);
  if (dir_copy && db->lazy && vv_lazy_rebind(db->lazy, s->w.sc.io, dir_copy, &s->w.m, s->w.sc.kr) != VV_OK) {
    free(dir_copy);
    b->bound = 0;
    return;
  }
  for (size_t i = 0; i < s->nnodes; i++) {
    if (s->pending[i] == NO_LOC) continue;
    vv_store_set_loc(&db->store, s->nodes[i].slot, s->pending[i]);
    vv_store_mark(&db->store, s->nodes[i].slot, VV_SLOT_SAVED);
  }
  if (!dir_copy) {
    b->bound = 0; /* the next save is simply full */
    return;
  }
  free(b->dir);
  b->dir = dir_copy;
  vv_manifest_free(&b->m);
  b->m = s->w.m;
  memset(&s->w.m, 0, sizeof s->w.m);
  memcpy(b->manifest_hash, new_hash, VV_HASH_BYTES);
  b->bound = 1;
}

/* Every session a save writes keeps the graph's invariant: each live node
 * is reachable from the entry point on level 0 (a lazy reader's walk
 * relies on that instead of scanning the session). The check only
 * reads the graph; the repair, rarely needed, takes the database lock
 * exclusively. */
static int repair_graph(vv_db *db) {
  uint64_t orphans = 0;
  pthread_rwlock_rdlock(&db->lock);
  int rc = vv_hnsw_check_reachable(db->hnsw, &orphans);
  pthread_rwlock_unlock(&db->lock);
  if (rc || !orphans) return rc;
  pthread_rwlock_wrlock(&db->lock);
  rc = vv_hnsw_repair(db->hnsw);
  pthread_rwlock_unlock(&db->lock);
  return rc;
}

/* One save of a database at a time (they share its session bookkeeping).
 * The database lock is held twice, briefly: shared for the capture, then
 * exclusively to apply the result (or hand back the dirty bits). Writers
 * and searches run while the save writes. */
static int run(save *s) {
  vv_db *db = s->db;
  unsigned char new_hash[VV_HASH_BYTES];
  pthread_mutex_lock(&db->save_mu);
  pthread_rwlock_rdlock(&db->lock);
  int rc = db->broken; /* (a refresh changes it only under save_mu too) */
  pthread_rwlock_unlock(&db->lock);
  if (!rc) rc = prepare(s);
  int captured = 0;
  if (!rc && db->hnsw) rc = repair_graph(db);
  if (!rc) {
    pthread_rwlock_rdlock(&db->lock);
    rc = capture(s);
    pthread_rwlock_unlock(&db->lock);
    captured = !rc;
  }
  if (!rc) rc = write_capture(s, new_hash);
  if (captured) {
    pthread_rwlock_wrlock(&db->lock);
    if (!rc) apply(s, new_hash);
    else restore_dirty(s);
    vv_store_thaw(&db->store);
    pthread_rwlock_unlock(&db->lock);
  }
  pthread_mutex_unlock(&db->save_mu);
  return rc;
}

static void save_free(save *s) {
  free(s->nodes);
  free(s->node_of);
  vv_buf_free(&s->bytes_buf);
  vv_buf_free(&s->link_buf);
  free(s->rewrite);
  free(s->keep_chunk);
  free(s->pending);
  free(s->dirty);
  free(s->encode);
  free(s->codes);
  free(s->sample);
  if (s->train && s->pq) { /* learnt, never installed */
    vv_pq_destroy(s->pq);
    free(s->pq);
  }
}

int vv_db_save(vv_db *db, const char *dir, const struct vv_io *io, vv_session_progress_fn progress, void *ctx,
               vv_save_stats *stats, vv_error *err) {
  return vv_db_save_with(db, dir, io, NULL, progress, ctx, stats, err);
}

int vv_db_save_with(vv_db *db, const char *dir, const struct vv_io *io, const vv_save_opts *opts,
                    vv_session_progress_fn progress, void *ctx, vv_save_stats *stats, vv_error *err) {
  vv_save_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  if (err) err->message[0] = '\0';
  if (!dir || !*dir) return VV_E_INVALID;
  uint32_t page_bytes = opts ? opts->page_bytes : 0;
  if (page_bytes && (page_bytes < VV_PAGE_MIN_BYTES || page_bytes > VV_PAGE_MAX_BYTES)) return VV_E_INVALID;
  int rc = vv_crypto_init();
  if (rc) return rc;
  save s;
  memset(&s, 0, sizeof s);
  s.db = db;
  s.err = err;
  s.progress = progress;
  s.pctx = ctx;
  s.st = stats;
  /* Refuse before touching the disk: nothing may be written in plaintext
   * by accident, not even an empty directory. */
  if (db->secrets.encrypt && db->secrets.kdf == VV_KDF_NONE) {
    vv_manifest m;
    memset(&m, 0, sizeof m);
    rc = vv_secrets_for_save(&db->secrets, db->session_id, &m, err);
  } else {
    rc = vv_swriter_open(&s.w, io, dir, err);
    s.w.page_bytes = page_bytes;
    if (!rc) rc = run(&s);
  }
  save_free(&s);
  vv_swriter_close(&s.w);
  if (rc && err && !err->message[0]) snprintf(err->message, sizeof err->message, "%s", vv_strerror(rc));
  return rc;
}
