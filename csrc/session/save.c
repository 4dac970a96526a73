/*
 * session/save.c: writing a generation of a session (vv_db_save).
 *
 * The commit protocol (docs/FORMAT.md, "Commit"): take the directory's
 * writer lock; write every new object as a temporary file, fsync, rename to
 * its content hash; fsync the objects directory; write the manifest to
 * manifests/<generation>.json and then over manifest.json, each by
 * temp + fsync + rename + directory fsync. The rename of manifest.json is
 * the commit point. Only then are unreferenced objects deleted. A failure
 * or abort before the commit leaves the previous generation untouched; the
 * in-memory bookkeeping changes only after the commit.
 *
 * The save holds the database's read lock: searches run on, writers wait.
 * Vector chunks are append-only: a save writes new chunks for vectors that
 * changed (and for the live rows of chunks that became mostly dead) and
 * keeps the rest; the index is a base plus deltas of changed nodes, folded
 * back into a new base when the deltas grow.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../codec/codec.h"
#include "../db/db_internal.h"
#include "io.h"
#include "manifest.h"
#include "object.h"
#include "secrets.h"

#define KEEP_MANIFESTS 3
#define NO_LOC UINT64_MAX
#define TO_REWRITE (UINT64_MAX - 1) /* placeholder until the row is written */
#define MAX_DELTAS 16

typedef struct save {
  vv_db *db;
  vv_sctx sc;
  vv_error *err;
  vv_session_progress_fn progress;
  void *pctx;
  uint64_t done, total, bytes;
  vv_save_stats *st;
  vv_buf plain, sealed;
  uint64_t *pending; /* per slot: (chunk seq << 32) | row for rows written now */
  vv_manifest m;     /* the generation being written */
  size_t chunk_cap, base_cap, delta_cap;
  char *mandir;
} save;

static int fail(save *s, int rc, const char *what) {
  if (s->err && !s->err->message[0]) {
    int sys = rc == VV_E_IO || rc == VV_E_NOSPC;
    snprintf(s->err->message, sizeof s->err->message, "%s: %s", what,
             sys && *vv_io_last_error() ? vv_io_last_error() : vv_strerror(rc));
  }
  return rc;
}

static int tick(save *s, int phase) {
  s->done++;
  if (s->progress && s->progress(s->pctx, s->done, s->total, phase, s->bytes)) return VV_E_ABORTED;
  return VV_OK;
}

/* ---- slot states ---------------------------------------------------------- */

enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_WAYPOINT = 2 };

static int slot_state(const vv_db *db, uint32_t slot) {
  if (vv_store_is_live(&db->store, slot)) return SLOT_LIVE;
  if (db->hnsw && vv_hnsw_level(db->hnsw, slot) >= 0) return SLOT_WAYPOINT;
  return SLOT_FREE;
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

static int push_chunk(save *s, const vv_mchunk *c) {
  if (s->m.nchunks == s->chunk_cap) {
    size_t cap = s->chunk_cap ? s->chunk_cap * 2 : 16;
    vv_mchunk *p = realloc(s->m.chunks, cap * sizeof *p);
    if (!p) return VV_E_NOMEM;
    s->m.chunks = p;
    s->chunk_cap = cap;
  }
  s->m.chunks[s->m.nchunks++] = *c;
  return VV_OK;
}

/* Writes the slots in `list` as chunks of at most chunk_size rows. */
static int write_chunks(save *s, const uint32_t *list, size_t n) {
  vv_db *db = s->db;
  uint32_t per = db->cfg.chunk_size;
  chunk_rows r;
  int rc = rows_alloc(&r, per < n ? per : (n ? n : 1));
  if (rc) return rc;
  for (size_t at = 0; at < n && !rc; at += per) {
    uint32_t cnt = (uint32_t)(n - at < per ? n - at : per);
    vv_mchunk c = {0};
    c.seq = s->m.next_chunk_seq++;
    c.count = cnt;
    c.slot_min = UINT32_MAX;
    for (uint32_t i = 0; i < cnt; i++) {
      uint32_t slot = list[at + i];
      const vv_slotrec *rec = vv_store_rec(&db->store, slot);
      r.slots[i] = slot;
      r.vecs[i] = vv_store_vec(&db->store, slot);
      r.ids[i] = rec->id; /* NULL for a waypoint */
      r.id_lens[i] = rec->id_len;
      r.metas[i] = rec->meta;
      r.meta_lens[i] = rec->meta_len;
      if (slot < c.slot_min) c.slot_min = slot;
      if (slot > c.slot_max) c.slot_max = slot;
      s->pending[slot] = (c.seq << 32) | i;
    }
    vv_chunk_in in = {c.seq, db->cfg.dimension, cnt, r.slots, r.vecs, r.ids, r.id_lens, r.metas, r.meta_lens};
    s->plain.len = 0;
    rc = vv_chunk_encode(&in, &s->plain);
    if (!rc) rc = vv_object_write(&s->sc, VV_OBJ_KIND_CHUNK, c.seq, s->plain.data, s->plain.len, &s->sealed, &c.ref, s->err);
    if (!rc) rc = push_chunk(s, &c);
    if (!rc) {
      s->bytes += c.ref.bytes;
      s->st->chunks_written++;
      rc = tick(s, VV_PHASE_CHUNKS);
    }
  }
  rows_free(&r);
  return rc;
}

/* ---- index segments ---------------------------------------------------- */

static int push_seg(save *s, int base, const vv_mseg *g) {
  vv_mseg **arr = base ? &s->m.base : &s->m.deltas;
  size_t *n = base ? &s->m.nbase : &s->m.ndeltas;
  size_t *cap = base ? &s->base_cap : &s->delta_cap;
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 8;
    vv_mseg *p = realloc(*arr, c * sizeof *p);
    if (!p) return VV_E_NOMEM;
    *arr = p;
    *cap = c;
  }
  (*arr)[(*n)++] = *g;
  return VV_OK;
}

static int encode_node(save *s, uint32_t slot) {
  vv_db *db = s->db;
  int state = slot_state(db, slot);
  const vv_slotrec *rec = vv_store_rec(&db->store, slot);
  vv_node_in n = {0};
  const uint32_t *links[VV_CODEC_MAX_LEVELS];
  uint32_t counts[VV_CODEC_MAX_LEVELS];
  n.slot = slot;
  if (state != SLOT_FREE) {
    uint64_t loc = s->pending[slot];
    n.chunk = loc != NO_LOC ? loc >> 32 : rec->chunk;
    n.row = loc != NO_LOC ? (uint32_t)loc : rec->row;
  }
  if (state == SLOT_LIVE) {
    n.id = rec->id;
    n.id_len = rec->id_len;
  }
  if (state != SLOT_FREE && db->hnsw) {
    int level = vv_hnsw_level(db->hnsw, slot);
    for (int l = 0; l <= level; l++) counts[l] = vv_hnsw_links(db->hnsw, slot, l, &links[l]);
    n.nlevels = (uint32_t)(level + 1);
    n.links = links;
    n.counts = counts;
  }
  return vv_index_encode_node(&s->plain, &n);
}

/* Writes the nodes in `list` as segments of at most chunk_size nodes. */
static int write_index(save *s, const uint32_t *list, size_t n, int base) {
  uint32_t per = s->db->cfg.chunk_size;
  int rc = VV_OK;
  for (size_t at = 0; (at < n || at == 0) && !rc; at += per) {
    uint32_t cnt = (uint32_t)(n - at < per ? n - at : per);
    vv_mseg g = {0};
    g.seq = s->m.next_index_seq++;
    g.count = cnt;
    s->plain.len = 0;
    rc = vv_index_encode_begin(&s->plain, g.seq, base, cnt);
    for (uint32_t i = 0; i < cnt && !rc; i++) rc = encode_node(s, list[at + i]);
    if (!rc) rc = vv_object_write(&s->sc, VV_OBJ_KIND_INDEX, g.seq, s->plain.data, s->plain.len, &s->sealed, &g.ref, s->err);
    if (!rc) rc = push_seg(s, base, &g);
    if (!rc) {
      s->bytes += g.ref.bytes;
      s->st->index_written++;
      rc = tick(s, VV_PHASE_INDEX);
    }
  }
  return rc;
}

/* ---- manifest, commit, garbage collection ------------------------------ */

static int ensure_dir(const vv_io *io, const char *path) {
  int rc = io->mkdir(io->ctx, path, 0700);
  if (rc < 0 && rc != -EEXIST) return vv_io_status(rc);
  return VV_OK;
}

typedef struct name_list {
  char **names;
  size_t n, cap;
} name_list;

static int collect_name(void *arg, const char *name) {
  name_list *l = arg;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **p = realloc(l->names, cap * sizeof *p);
    if (!p) return -ENOMEM;
    l->names = p;
    l->cap = cap;
  }
  l->names[l->n] = strdup(name);
  if (!l->names[l->n]) return -ENOMEM;
  l->n++;
  return 0;
}

static void names_free(name_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->names[i]);
  free(l->names);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void sort_names(name_list *l) {
  if (l->n) qsort(l->names, l->n, sizeof *l->names, cmp_str);
}

static int is_manifest_name(const char *n) {
  size_t len = strlen(n);
  if (len != 25 || strcmp(n + 20, ".json") != 0) return 0;
  for (int i = 0; i < 20; i++)
    if (n[i] < '0' || n[i] > '9') return 0;
  return 1;
}

static int add_refs(name_list *keep, const vv_manifest *m) {
  int rc = 0;
  for (size_t i = 0; i < m->nchunks && !rc; i++) rc = collect_name(keep, m->chunks[i].ref.name);
  for (size_t i = 0; i < m->nbase && !rc; i++) rc = collect_name(keep, m->base[i].ref.name);
  for (size_t i = 0; i < m->ndeltas && !rc; i++) rc = collect_name(keep, m->deltas[i].ref.name);
  return rc;
}

static void unlink_in(const vv_io *io, const char *dir, const char *name) {
  char *path = vv_path_join(dir, name);
  if (path) io->unlink(io->ctx, path);
  free(path);
}

/* After the commit: keep the newest KEEP_MANIFESTS generations, and delete
 * every object none of them references, plus stray temporary files. Best
 * effort, and conservative: if anything needed to decide what is still
 * referenced cannot be read (I/O error, a damaged history manifest, no
 * memory), nothing is deleted this time. A failure here never fails the
 * save: the commit has happened. */
static void collect_garbage(save *s) {
  const vv_io *io = s->sc.io;
  name_list mans = {0}, keep = {0}, objs = {0}, root = {0};
  int ok = io->list(io->ctx, s->mandir, collect_name, &mans) == 0 && add_refs(&keep, &s->m) == 0;
  sort_names(&mans);
  size_t kept = 0;
  char **stale = NULL;
  size_t nstale = 0;
  if (ok) stale = calloc(mans.n ? mans.n : 1, sizeof *stale);
  ok = ok && stale;
  for (size_t i = mans.n; ok && i-- > 0;) {
    if (!is_manifest_name(mans.names[i]) || kept >= KEEP_MANIFESTS) {
      stale[nstale++] = mans.names[i];
      continue;
    }
    char *path = vv_path_join(s->mandir, mans.names[i]);
    unsigned char *file = NULL;
    size_t len = 0;
    vv_manifest old;
    const unsigned char *body;
    size_t blen;
    ok = path && vv_io_read_file(io, path, VV_MANIFEST_MAX_BYTES, &file, &len) == VV_OK &&
         vv_manifest_parse(file, len, &old, &body, &blen, NULL) == VV_OK;
    if (ok) {
      ok = add_refs(&keep, &old) == 0;
      vv_manifest_free(&old);
    }
    free(file);
    free(path);
    kept++;
  }
  ok = ok && io->list(io->ctx, s->sc.objdir, collect_name, &objs) == 0;
  if (ok) {
    for (size_t i = 0; i < nstale; i++) unlink_in(io, s->mandir, stale[i]);
    sort_names(&keep);
    for (size_t i = 0; i < objs.n; i++)
      if (!keep.n || !bsearch(&objs.names[i], keep.names, keep.n, sizeof *keep.names, cmp_str))
        unlink_in(io, s->sc.objdir, objs.names[i]);
    /* Temporary files of an interrupted manifest write, in the session root. */
    if (io->list(io->ctx, s->sc.dir, collect_name, &root) == 0)
      for (size_t i = 0; i < root.n; i++)
        if (!strncmp(root.names[i], "tmp-", 4)) unlink_in(io, s->sc.dir, root.names[i]);
  }
  free(stale);
  names_free(&mans);
  names_free(&keep);
  names_free(&objs);
  names_free(&root);
}

static int commit(save *s, const unsigned char *prev_hash, int has_prev, unsigned char new_hash[VV_HASH_BYTES]) {
  const vv_io *io = s->sc.io;
  vv_buf file = {0};
  int rc = vv_io_fsync_dir(io, s->sc.objdir);
  if (rc) return fail(s, rc, "syncing the objects directory");
  s->m.has_parent = has_prev;
  if (has_prev) memcpy(s->m.parent, prev_hash, VV_HASH_BYTES);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(s->m.created_at, sizeof s->m.created_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
  rc = vv_manifest_write(&s->m, s->db->secrets.kr, &file);
  if (rc) return rc;
  char name[32];
  snprintf(name, sizeof name, "%020llu.json", (unsigned long long)s->m.generation);
  char *hist = vv_path_join(s->mandir, name);
  char *main_path = vv_path_join(s->sc.dir, "manifest.json");
  if (!hist || !main_path) rc = VV_E_NOMEM;
  if (!rc) rc = vv_io_write_durable(io, s->mandir, hist, file.data, file.len);
  if (!rc) rc = vv_io_fsync_dir(io, s->mandir);
  if (!rc) rc = vv_io_write_durable(io, s->sc.dir, main_path, file.data, file.len);
  if (rc) {
    /* Not committed: drop the history copy so it cannot be mistaken for a
     * generation that exists. */
    if (hist) io->unlink(io->ctx, hist);
    fail(s, rc, "writing the manifest");
  } else {
    /* The rename is visible; make it durable before reporting success. */
    rc = vv_io_fsync_dir(io, s->sc.dir);
    if (rc) fail(s, rc, "syncing the session directory");
  }
  if (!rc) {
    vv_manifest_file_hash(file.data, file.len, new_hash);
    s->bytes += file.len;
  }
  free(hist);
  free(main_path);
  vv_buf_free(&file);
  return rc;
}

/* ---- planning ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* Index into the previous manifest's chunk list for a chunk seq, or -1. */
static long find_chunk(const uint64_t *sorted, size_t n, uint64_t seq) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    uint64_t v = sorted[mid] >> 32;
    if (v == seq) return (long)(uint32_t)sorted[mid];
    if (v < seq) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/* Reads the directory's current manifest, if any: its hash and, when it
 * parses, its generation and counters. A manifest that exists but cannot
 * be read fails the save (it must not be mistaken for "no session"); one
 * that reads but does not parse is replaced, numbered after the newest
 * generation in manifests/ so the count never goes back. */
static int read_current(save *s, int *exists, unsigned char hash[VV_HASH_BYTES], uint64_t *gen,
                        uint64_t *next_chunk, uint64_t *next_index) {
  char *path = vv_path_join(s->sc.dir, "manifest.json");
  unsigned char *file = NULL;
  size_t len = 0;
  *exists = 0;
  *gen = 0;
  if (!path) return VV_E_NOMEM;
  int rc = vv_io_read_file(s->sc.io, path, VV_MANIFEST_MAX_BYTES, &file, &len);
  free(path);
  if (rc == VV_E_NOT_FOUND) return VV_OK;
  if (rc && rc != VV_E_CORRUPT) return fail(s, rc, "reading the current manifest");
  *exists = 1;
  if (!rc) vv_manifest_file_hash(file, len, hash);
  else memset(hash, 0, VV_HASH_BYTES);
  vv_manifest cur;
  const unsigned char *body;
  size_t blen;
  if (!rc && vv_manifest_parse(file, len, &cur, &body, &blen, NULL) == VV_OK) {
    *gen = cur.generation;
    if (cur.next_chunk_seq > *next_chunk) *next_chunk = cur.next_chunk_seq;
    if (cur.next_index_seq > *next_index) *next_index = cur.next_index_seq;
    vv_manifest_free(&cur);
  } else {
    name_list mans = {0};
    if (s->sc.io->list(s->sc.io->ctx, s->mandir, collect_name, &mans) == 0)
      for (size_t i = 0; i < mans.n; i++)
        if (is_manifest_name(mans.names[i])) {
          uint64_t g = strtoull(mans.names[i], NULL, 10);
          if (g > *gen) *gen = g;
        }
    names_free(&mans);
  }
  free(file);
  return VV_OK;
}

static int run(save *s) {
  vv_db *db = s->db;
  vv_bound *b = &db->session;
  uint64_t nslots = db->store.nslots;
  int rc;

  if (!db->has_session_id) {
    vv_random_bytes(db->session_id, VV_SESSION_ID_BYTES);
    db->has_session_id = 1;
  }
  memcpy(s->m.session_id, db->session_id, VV_SESSION_ID_BYTES);
  memcpy(s->sc.session_id, db->session_id, VV_SESSION_ID_BYTES);
  rc = vv_secrets_for_save(db, s->m.session_id, &s->m, s->err);
  if (rc) return rc;
  s->sc.kr = s->m.kdf != VV_KDF_NONE ? db->secrets.kr : NULL;

  int exists;
  unsigned char cur_hash[VV_HASH_BYTES];
  uint64_t cur_gen;
  s->m.next_chunk_seq = b->bound ? b->m.next_chunk_seq : 0;
  s->m.next_index_seq = b->bound ? b->m.next_index_seq : 0;
  rc = read_current(s, &exists, cur_hash, &cur_gen, &s->m.next_chunk_seq, &s->m.next_index_seq);
  if (rc) return rc;
  /* Incremental only onto the very generation we know, sealed the same way. */
  int incremental = b->bound && exists && !strcmp(b->dir, s->sc.dir) &&
                    !memcmp(cur_hash, b->manifest_hash, VV_HASH_BYTES) &&
                    b->m.kdf == s->m.kdf && !memcmp(b->m.session_id, s->m.session_id, VV_SESSION_ID_BYTES) &&
                    (s->m.kdf == VV_KDF_NONE || !memcmp(b->m.key_check, s->m.key_check, VV_HASH_BYTES));
  s->st->full = !incremental;
  s->m.generation = (exists ? cur_gen : 0) + 1;

  s->pending = malloc((nslots ? nslots : 1) * sizeof *s->pending);
  uint32_t *rewrite = malloc((nslots ? nslots : 1) * sizeof *rewrite);
  uint32_t *nodes = malloc((nslots ? nslots : 1) * sizeof *nodes);
  uint64_t *sorted = NULL;
  uint32_t *live_in = NULL;
  int *keep_chunk = NULL;
  size_t nrewrite = 0, nnodes = 0, nlive_nodes = 0;
  if (!s->pending || !rewrite || !nodes) {
    rc = VV_E_NOMEM;
    goto out;
  }
  for (uint64_t i = 0; i < nslots; i++) s->pending[i] = NO_LOC;

  /* Which old chunks stay: those still holding enough rows that are current. */
  size_t nold = incremental ? b->m.nchunks : 0;
  sorted = malloc((nold ? nold : 1) * sizeof *sorted);
  live_in = calloc(nold ? nold : 1, sizeof *live_in);
  keep_chunk = calloc(nold ? nold : 1, sizeof *keep_chunk);
  if (!sorted || !live_in || !keep_chunk) {
    rc = VV_E_NOMEM;
    goto out;
  }
  for (size_t i = 0; i < nold; i++) sorted[i] = (b->m.chunks[i].seq << 32) | i;
  qsort(sorted, nold, sizeof *sorted, cmp_u64);
  for (uint64_t i = 0; i < nslots; i++) {
    uint32_t slot = (uint32_t)i;
    if (slot_state(db, slot) == SLOT_FREE) continue;
    nlive_nodes++;
    uint8_t f = vv_store_flags(&db->store, slot);
    if (!incremental || (f & VV_SLOT_VEC_DIRTY) || !(f & VV_SLOT_SAVED)) continue;
    long c = find_chunk(sorted, nold, vv_store_rec(&db->store, slot)->chunk);
    if (c >= 0) live_in[c]++;
  }
  for (size_t i = 0; i < nold; i++) {
    /* A chunk whose current rows fell under half is rewritten: its live
     * rows move to new chunks, and the old file can go. */
    keep_chunk[i] = live_in[i] > 0 && (uint64_t)live_in[i] * 2 >= b->m.chunks[i].count;
  }
  for (uint64_t i = 0; i < nslots; i++) {
    uint32_t slot = (uint32_t)i;
    if (slot_state(db, slot) == SLOT_FREE) continue;
    uint8_t f = vv_store_flags(&db->store, slot);
    long c = -1;
    if (incremental && !(f & VV_SLOT_VEC_DIRTY) && (f & VV_SLOT_SAVED))
      c = find_chunk(sorted, nold, vv_store_rec(&db->store, slot)->chunk);
    if (c < 0 || !keep_chunk[c]) rewrite[nrewrite++] = slot;
  }
  for (size_t i = 0; i < nrewrite; i++) s->pending[rewrite[i]] = TO_REWRITE;
  /* Index: a fresh base when there is none, after a full rewrite, or when
   * the deltas would outgrow half the base; otherwise a delta of the nodes
   * whose record changed (or whose row moves). */
  size_t ndirty = 0;
  for (uint64_t i = 0; i < nslots; i++) {
    uint8_t f = vv_store_flags(&db->store, (uint32_t)i);
    if ((f & (VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY)) || s->pending[i] != NO_LOC) ndirty++;
  }
  uint64_t base_bytes = 0, delta_bytes = 0;
  for (size_t i = 0; incremental && i < b->m.nbase; i++) base_bytes += b->m.base[i].ref.bytes;
  for (size_t i = 0; incremental && i < b->m.ndeltas; i++) delta_bytes += b->m.deltas[i].ref.bytes;
  int base = !incremental || b->m.nbase == 0 || b->m.ndeltas >= MAX_DELTAS || delta_bytes * 2 > base_bytes ||
             ndirty * 2 > nlive_nodes;
  for (uint64_t i = 0; i < nslots; i++) {
    uint32_t slot = (uint32_t)i;
    if (base ? slot_state(db, slot) != SLOT_FREE
             : ((vv_store_flags(&db->store, slot) & (VV_SLOT_VEC_DIRTY | VV_SLOT_REC_DIRTY)) ||
                s->pending[slot] != NO_LOC))
      nodes[nnodes++] = slot;
  }
  uint32_t per = db->cfg.chunk_size;
  size_t nsegs = (nnodes + per - 1) / per;
  if (base && nsegs == 0) nsegs = 1; /* an empty database still has a (empty) base */
  s->total = (nrewrite + per - 1) / per + nsegs + 1;

  /* Carry over kept chunks and (for a delta) the index segments. */
  for (size_t i = 0; i < nold && !rc; i++) {
    if (!keep_chunk[i]) continue;
    rc = push_chunk(s, &b->m.chunks[i]);
    s->st->chunks_reused++;
  }
  if (!base) {
    for (size_t i = 0; i < b->m.nbase && !rc; i++) rc = push_seg(s, 1, &b->m.base[i]);
    for (size_t i = 0; i < b->m.ndeltas && !rc; i++) rc = push_seg(s, 0, &b->m.deltas[i]);
  }
  if (rc) goto out;

  rc = write_chunks(s, rewrite, nrewrite);
  if (!rc && nsegs) rc = write_index(s, nodes, nnodes, base);
  if (rc) goto out;

  /* The manifest describes exactly what was saved. */
  s->m.version = VV_FORMAT_VERSION;
  s->m.dimension = db->cfg.dimension;
  s->m.metric = db->cfg.metric;
  s->m.index = db->cfg.index;
  s->m.m = db->cfg.hnsw_m;
  s->m.ef_construction = db->cfg.ef_construction;
  s->m.ef_search = db->cfg.ef_search;
  s->m.chunk_size = db->cfg.chunk_size;
  s->m.total_vectors = db->store.nlive;
  s->m.slot_count = nslots;
  s->m.entry = UINT32_MAX;
  s->m.max_level = -1;
  if (db->hnsw) s->m.entry = vv_hnsw_entry(db->hnsw, &s->m.max_level);
  if (s->m.max_level < 0) s->m.entry = UINT32_MAX;

  unsigned char new_hash[VV_HASH_BYTES];
  rc = commit(s, cur_hash, exists, new_hash);
  if (rc) goto out;
  s->st->generation = s->m.generation;
  s->st->bytes_written = s->bytes;
  rc = tick(s, VV_PHASE_COMMIT);
  if (rc == VV_E_ABORTED) rc = VV_OK; /* too late to abort: it is committed */
  collect_garbage(s); /* uses s->m: before it moves into the bookkeeping */

  /* Committed: bring the in-memory bookkeeping in line, then tidy up. */
  for (uint64_t i = 0; i < nslots; i++) {
    uint32_t slot = (uint32_t)i;
    vv_slotrec *rec = vv_store_rec_mut(&db->store, slot);
    if (s->pending[slot] != NO_LOC) {
      rec->chunk = (uint32_t)(s->pending[slot] >> 32);
      rec->row = (uint32_t)s->pending[slot];
      vv_store_set_flags(&db->store, slot, VV_SLOT_SAVED);
    } else {
      vv_store_set_flags(&db->store, slot, vv_store_flags(&db->store, slot) & VV_SLOT_SAVED);
    }
  }
  char *dir_copy = strdup(s->sc.dir);
  if (dir_copy) {
    free(b->dir);
    b->dir = dir_copy;
    vv_manifest_free(&b->m);
    b->m = s->m;
    memset(&s->m, 0, sizeof s->m);
    memcpy(b->manifest_hash, new_hash, VV_HASH_BYTES);
    b->bound = 1;
  } else {
    b->bound = 0; /* the next save is simply full */
  }
out:
  free(rewrite);
  free(nodes);
  free(sorted);
  free(live_in);
  free(keep_chunk);
  return rc;
}

int vv_db_save(vv_db *db, const char *dir, const struct vv_io *io, vv_session_progress_fn progress, void *ctx,
               vv_save_stats *stats, vv_error *err) {
  vv_save_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  if (err) err->message[0] = '\0';
  if (!dir || !*dir) return VV_E_INVALID;
  int rc = vv_crypto_init();
  if (rc) return rc;
  save s;
  memset(&s, 0, sizeof s);
  s.db = db;
  s.err = err;
  s.progress = progress;
  s.pctx = ctx;
  s.st = stats;
  rc = vv_sctx_init(&s.sc, (const vv_io *)io, dir);
  if (rc) return rc;
  const vv_io *fio = s.sc.io;
  s.mandir = vv_path_join(dir, "manifests");
  char *lock_path = vv_path_join(dir, "lock");
  int lock_fd = -1;
  if (!s.mandir || !lock_path) {
    rc = VV_E_NOMEM;
    goto out;
  }
  /* Refuse before touching the disk: nothing may be written in plaintext
   * by accident, not even an empty directory. */
  if (db->secrets.encrypt && db->secrets.kdf == VV_KDF_NONE) {
    rc = vv_secrets_for_save(db, db->session_id, &s.m, err);
    goto out;
  }
  rc = ensure_dir(fio, dir);
  if (!rc) rc = ensure_dir(fio, s.sc.objdir);
  if (!rc) rc = ensure_dir(fio, s.mandir);
  if (rc) {
    /* ENOENT here means a missing parent directory: an I/O error, not
     * "no session". */
    if (rc == VV_E_NOT_FOUND) rc = VV_E_IO;
    fail(&s, rc, "creating the session directory");
    goto out;
  }
  lock_fd = fio->open(fio->ctx, lock_path, O_RDWR | O_CREAT, 0600);
  if (lock_fd < 0) {
    rc = fail(&s, vv_io_status(lock_fd), "opening the session lock");
    goto out;
  }
  int lr = fio->lock(fio->ctx, lock_fd);
  if (lr < 0) {
    rc = lr == -EWOULDBLOCK ? VV_E_LOCKED : vv_io_status(lr);
    if (rc == VV_E_LOCKED && err)
      snprintf(err->message, sizeof err->message, "another writer is saving into %s right now", dir);
    goto out;
  }
  /* One save of a database at a time (they share its session bookkeeping);
   * the read lock keeps writers out while searches go on. */
  pthread_mutex_lock(&db->save_mu);
  pthread_rwlock_rdlock(&db->lock);
  rc = run(&s);
  pthread_rwlock_unlock(&db->lock);
  pthread_mutex_unlock(&db->save_mu);
out:
  if (lock_fd >= 0) fio->close(fio->ctx, lock_fd); /* releases the lock */
  free(lock_path);
  free(s.mandir);
  free(s.pending);
  vv_manifest_free(&s.m);
  vv_buf_free(&s.plain);
  vv_buf_free(&s.sealed);
  vv_sctx_destroy(&s.sc);
  if (rc && err && !err->message[0]) snprintf(err->message, sizeof err->message, "%s", vv_strerror(rc));
  return rc;
}
