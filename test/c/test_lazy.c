/*
 * test/c/test_lazy.c: lazily loaded sessions (vv_load_opts.lazy):
 * session/lazy.c, db/access.c and the lazy paths of load, save and search.
 *
 * Owns: what a lazy load reads (the manifest and the index, no chunk
 * object, counted through faultio.h), that gets and searches then return
 * exactly the stored data, chunk read failures (EIO, a read cut short,
 * ENOENT) in each call that reads chunks (get, search, preload, save) and
 * the call after them, the cache bound under concurrent searches and a
 * shrinking capacity, which sessions load eagerly despite lazy = 1, and
 * adds, deletes and upserts on a lazy database saved and reopened both ways.
 *
 * A lazily loaded database keeps reading its chunks through the vv_io
 * table it was loaded with (and, after a save, the one it saved with):
 * every table handed to a lazy load here outlives the database.
 *
 * Sessions live under mkdtemp directories in /tmp ($VV_TEST_TMPDIR
 * overrides), removed at the end of each test. Sizes are small: the whole
 * file runs in about a second, under ASan in a few.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "distance/distance.h"
#include "session/io.h"
#include "session/manifest.h"
#include "vecvault.h"
#include "vvtest.h"

#include "faultio.h"
#include "support.h"

/* The chunks dir/manifest.json lists (names, seqs, sizes), and its version. */
typedef struct chunk_list {
  int version;
  size_t n;
  vv_mchunk c[256];
} chunk_list;

static int list_chunks(const char *dir, chunk_list *out) {
  vv_manifest m;
  int rc = read_manifest(dir, &m);
  if (rc) return rc;
  out->version = m.version;
  out->n = m.nchunks < 256 ? m.nchunks : 256;
  memcpy(out->c, m.chunks, out->n * sizeof *out->c);
  vv_manifest_free(&m);
  return VV_OK;
}

static int is_chunk_path(const chunk_list *cl, const char *path) {
  for (size_t i = 0; i < cl->n; i++)
    if (fio_ends_with(path, cl->c[i].ref.name)) return 1;
  return 0;
}

/* Pages of every chunk of `cl` (format 3: each read after its page table),
 * summed; and what a lazy reader caches when it holds them all: each
 * chunk's table and pages. */
static uint64_t chunk_pages_total(const char *dir, const chunk_list *cl) {
  uint64_t n = 0;
  for (size_t i = 0; i < cl->n; i++) n += object_npages(dir, cl->c[i].ref.name);
  return n;
}

static uint64_t all_entries(const char *dir, const chunk_list *cl) { return cl->n + chunk_pages_total(dir, cl); }

/* Operations of `kind` in the trace on chunk objects of `cl`. */
static long chunk_ops(const fio *f, const chunk_list *cl, int kind) {
  long n = 0;
  for (size_t i = 0; i < f->ntrace; i++) n += f->trace[i].kind == kind && is_chunk_path(cl, f->trace[i].path);
  return n;
}

/* ---- a vv_io whose reads of one object end early ---------------------------- */

/* Forwards to `inner`; once armed, the next object opened under objects/
 * gets half of what its first read asks for and then end of file, as if it
 * shrank while being read. */
typedef struct eofio {
  vv_io io;
  const vv_io *inner;
  pthread_mutex_t mu;
  int armed;
  int fd;      /* the descriptor cut short, or -1 */
  int reads;   /* reads of it so far */
  long cut;    /* objects cut short */
} eofio;

static int eo_open(void *ctx, const char *path, int flags, int mode) {
  eofio *e = ctx;
  int fd = e->inner->open(e->inner->ctx, path, flags, mode);
  pthread_mutex_lock(&e->mu);
  if (fd >= 0 && e->armed && e->fd < 0 && strstr(path, "/objects/")) {
    e->armed = 0;
    e->fd = fd;
    e->reads = 0;
  }
  pthread_mutex_unlock(&e->mu);
  return fd;
}

/* The first read of the target file gets half of what it asked, later ones
 * the end of the file; positioned reads (off >= 0) the same. */
static ssize_t eo_any_read(void *ctx, int fd, void *buf, size_t n, int64_t off) {
  eofio *e = ctx;
  pthread_mutex_lock(&e->mu);
  int target = fd == e->fd, first = target && e->reads++ == 0;
  pthread_mutex_unlock(&e->mu);
  if (target && !first) return 0;
  if (first) n /= 2;
  return off < 0 ? e->inner->read(e->inner->ctx, fd, buf, n) : e->inner->pread(e->inner->ctx, fd, buf, n, (uint64_t)off);
}

static ssize_t eo_read(void *ctx, int fd, void *buf, size_t n) { return eo_any_read(ctx, fd, buf, n, -1); }

static ssize_t eo_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off) {
  return eo_any_read(ctx, fd, buf, n, (int64_t)off);
}

static int eo_close(void *ctx, int fd) {
  eofio *e = ctx;
  pthread_mutex_lock(&e->mu);
  if (fd == e->fd) {
    e->fd = -1;
    e->cut++;
  }
  pthread_mutex_unlock(&e->mu);
  return e->inner->close(e->inner->ctx, fd);
}

#define EO_FORWARD(name, ret, params, args) \
  static ret eo_##name params {             \
    eofio *e = ctx;                         \
    return e->inner->name args;             \
  }
EO_FORWARD(write, ssize_t, (void *ctx, int fd, const void *buf, size_t n), (e->inner->ctx, fd, buf, n))
EO_FORWARD(fsync, int, (void *ctx, int fd), (e->inner->ctx, fd))
EO_FORWARD(fsize, int, (void *ctx, int fd, uint64_t *size), (e->inner->ctx, fd, size))
EO_FORWARD(rename, int, (void *ctx, const char *from, const char *to), (e->inner->ctx, from, to))
EO_FORWARD(unlink, int, (void *ctx, const char *path), (e->inner->ctx, path))
EO_FORWARD(mkdir, int, (void *ctx, const char *path, int mode), (e->inner->ctx, path, mode))
EO_FORWARD(lock, int, (void *ctx, int fd), (e->inner->ctx, fd))
EO_FORWARD(list, int, (void *ctx, const char *dir, int (*fn)(void *, const char *), void *arg),
           (e->inner->ctx, dir, fn, arg))

static void eofio_init(eofio *e, const vv_io *inner) {
  memset(e, 0, sizeof *e);
  e->inner = inner;
  e->fd = -1;
  pthread_mutex_init(&e->mu, NULL);
  e->io = (vv_io){e,         eo_open,   eo_read,  eo_write, eo_fsync, eo_close,
                  eo_fsize,  eo_rename, eo_unlink, eo_mkdir, eo_lock,  eo_list, eo_pread, 0};
}

static void eofio_destroy(eofio *e) { pthread_mutex_destroy(&e->mu); }

/* ---- contents: what a database must hold ---------------------------------- */

#define MAXN 640
#define MAXDIM 16

typedef struct model {
  uint32_t dim;
  int present[MAXN];
  float vec[MAXN][MAXDIM];
  char meta[MAXN][40];
  int meta_len[MAXN]; /* 0 = none */
} model;

static int id_of(int i, char *buf) { return strf(buf, 16, "id-%04d", i); }

/* Clustered values (8 centres plus noise), so chunks and codes mean something. */
static void model_set(model *m, int i, uint64_t version, const char *meta) {
  uint64_t st = version * 1000003u + (uint64_t)i * 7919u;
  uint64_t c = (uint64_t)(i * 7 + (int)version) % 8;
  for (uint32_t d = 0; d < m->dim; d++) {
    uint64_t cs = c * 131u + d;
    float centre = (float)(vv_unit_double(vv_splitmix64(&cs)) * 4 - 2);
    m->vec[i][d] = centre + (float)(vv_unit_double(vv_splitmix64(&st)) - 0.5) * 0.5f;
  }
  m->present[i] = 1;
  m->meta_len[i] = meta ? strf(m->meta[i], sizeof m->meta[i], "%s", meta) : 0;
}

static model *model_new(uint32_t dim, int n) {
  model *m = calloc(1, sizeof *m);
  if (!m) abort();
  m->dim = dim;
  for (int i = 0; i < n; i++) {
    char meta[40];
    strf(meta, sizeof meta, "{\"i\":%d}", i);
    model_set(m, i, 1, i % 3 ? meta : NULL);
  }
  return m;
}

static int model_count(const model *m) {
  int c = 0;
  for (int i = 0; i < MAXN; i++) c += m->present[i];
  return c;
}

static int put(vv_db *db, const model *m, int i) {
  char id[16];
  int len = id_of(i, id);
  vv_item it = {id, (size_t)len, m->vec[i], m->meta_len[i] ? m->meta[i] : NULL, (size_t)m->meta_len[i], NULL, 0};
  return vv_db_add(db, &it);
}

static int del(vv_db *db, model *m, int i) {
  char id[16];
  int len = id_of(i, id), removed = 0;
  int rc = vv_db_delete(db, id, (size_t)len, &removed);
  if (!rc && removed != m->present[i]) rc = VV_E_INTERNAL;
  m->present[i] = 0;
  return rc;
}

static vv_db *make_db(uint32_t dim, vv_metric metric, vv_index_kind kind, uint32_t chunk) {
  vv_config c = {0};
  c.dimension = dim;
  c.metric = metric;
  c.index = kind;
  c.hnsw_m = 8;
  c.ef_construction = 40;
  c.threads = 2;
  c.seed = 11;
  c.chunk_size = chunk;
  vv_db *db = NULL;
  return vv_db_create(&c, &db) == VV_OK ? db : NULL;
}

static vv_db *build(const model *m, vv_metric metric, vv_index_kind kind, uint32_t chunk) {
  vv_db *db = make_db(m->dim, metric, kind, chunk);
  for (int i = 0; db && i < MAXN; i++) {
    if (m->present[i] && put(db, m, i) != VV_OK) {
      vv_db_free(db);
      db = NULL;
    }
  }
  return db;
}

/* NULL if `db` holds exactly `m` (vectors bit for bit: L2 and dot store
 * them as given), else what differs (static). */
static const char *differs(vv_db *db, const model *m) {
  static char why[160];
  if (vv_db_size(db) != (uint64_t)model_count(m)) {
    strf(why, sizeof why, "size %llu, expected %d", (unsigned long long)vv_db_size(db), model_count(m));
    return why;
  }
  for (int i = 0; i < MAXN; i++) {
    char id[16];
    int len = id_of(i, id);
    vv_record *r = NULL;
    int rc = vv_db_get(db, id, (size_t)len, &r);
    const char *bad = NULL;
    if (rc) bad = vv_status_code(rc);
    else if (!m->present[i] && r) bad = "an absent id is present";
    else if (m->present[i] && !r) bad = "an id is missing";
    else if (r && memcmp(r->vector, m->vec[i], m->dim * sizeof(float))) bad = "a vector differs";
    else if (r && ((size_t)m->meta_len[i] != r->meta_len ||
                   (r->meta_len && memcmp(r->meta, m->meta[i], r->meta_len))))
      bad = "metadata differs";
    vv_record_free(r);
    if (bad) {
      strf(why, sizeof why, "%s (%s)", bad, id);
      return why;
    }
  }
  return NULL;
}

static const unsigned char kKey[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6,
                                       7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22};

static int load(const char *dir, const unsigned char *key, int lazy, const vv_io *io, uint64_t cache, vv_db **out,
                vv_load_stats *st) {
  vv_load_opts o = {0};
  o.key = key;
  o.io = io;
  o.threads = 2;
  o.lazy = lazy;
  o.cache_bytes = cache;
  vv_error err = {{0}};
  int rc = vv_db_load(dir, &o, NULL, NULL, out, st, &err);
  if (rc) fprintf(stderr, "  load of %s: %s (%s)\n", dir, vv_status_code(rc), err.message);
  return rc;
}

/* Loads `dir` eagerly and lazily and compares both with `m`. */
static const char *reload_differs(const char *dir, const unsigned char *key, const model *m) {
  static char why[200];
  for (int lazy = 0; lazy < 2; lazy++) {
    vv_db *db = NULL;
    vv_load_stats st;
    if (load(dir, key, lazy, NULL, 0, &db, &st)) return "load failed";
    const char *d = differs(db, m);
    if (d) strf(why, sizeof why, "%s load: %s", lazy ? "lazy" : "eager", d);
    else if (lazy && !st.lazy) strf(why, sizeof why, "the lazy load was eager");
    vv_db_free(db);
    if (d || (lazy && !st.lazy)) return why;
  }
  return NULL;
}

/* Saves go through a pass-through faultio table that skips the real fsync
 * (thousands of them would dominate the run). It lives as long as the
 * process: a lazy database reads its chunks through the table of its last
 * save, on its own threads (fio_reset takes the table's lock). */
static fio g_quiet;
__attribute__((constructor)) static void quiet_init(void) { fio_init(&g_quiet, NULL); }
static const vv_io *quiet(void) {
  fio_reset(&g_quiet); /* keeps the trace short */
  return fio_io(&g_quiet);
}

static int save(vv_db *db, const char *dir, vv_save_stats *st) {
  vv_error err = {{0}};
  int rc = vv_db_save(db, dir, quiet(), NULL, NULL, st, &err);
  if (rc) fprintf(stderr, "  save to %s: %s (%s)\n", dir, vv_status_code(rc), err.message);
  return rc;
}

/* ---- searching ------------------------------------------------------------ */

/* Exact k nearest of `q` by brute force over `m`, in the engine's terms
 * (internal distance: squared L2, or negated dot of the stored vectors). */
typedef struct exact_hit {
  int i;
  float d;
} exact_hit;

static int cmp_hit(const void *a, const void *b) {
  float x = ((const exact_hit *)a)->d, y = ((const exact_hit *)b)->d;
  return (x > y) - (x < y);
}

/* The public distance of stored vector v from query q (cosine: the model
 * holds the stored, unit-length vectors; the query is made unit-length). */
static float public_distance(const model *m, vv_metric metric, const float *q, const float *v) {
  float qn[MAXDIM];
  memcpy(qn, q, m->dim * sizeof *qn);
  if (metric == VV_METRIC_COSINE) vv_normalize_f32(qn, m->dim);
  double d = 0;
  for (uint32_t j = 0; j < m->dim; j++)
    d += metric == VV_METRIC_L2 ? ((double)qn[j] - v[j]) * ((double)qn[j] - v[j]) : -(double)qn[j] * v[j];
  return metric == VV_METRIC_L2 ? (float)sqrt(d) : metric == VV_METRIC_COSINE ? (float)(1 + d) : (float)d;
}

static size_t brute_force(const model *m, vv_metric metric, const float *q, size_t k, exact_hit *out) {
  exact_hit *all = malloc(MAXN * sizeof *all);
  size_t n = 0;
  for (int i = 0; i < MAXN; i++) {
    if (!m->present[i]) continue;
    all[n++] = (exact_hit){i, public_distance(m, metric, q, m->vec[i])};
  }
  qsort(all, n, sizeof *all, cmp_hit);
  if (k > n) k = n;
  memcpy(out, all, k * sizeof *out);
  free(all);
  return k;
}

static void make_query(const model *m, uint64_t seed, float *q) {
  uint64_t st = seed;
  int base = (int)(vv_splitmix64(&st) % MAXN);
  while (!m->present[base]) base = (base + 1) % MAXN;
  for (uint32_t d = 0; d < m->dim; d++) q[d] = m->vec[base][d] + (float)(vv_unit_double(vv_splitmix64(&st)) - 0.5f) * 0.3f;
}

static int hit_is(const vv_hit *h, int i) {
  char id[16];
  int len = id_of(i, id);
  return h->id_len == (size_t)len && memcmp(h->id, id, (size_t)len) == 0;
}

/* The model index an id names ("id-0042" -> 42), or -1. Ids in results are
 * not NUL-terminated. */
static int hit_index(const vv_hit *h) {
  if (h->id_len != 7 || memcmp(h->id, "id-", 3)) return -1;
  int i = 0;
  for (int k = 3; k < 7; k++) {
    if (h->id[k] < '0' || h->id[k] > '9') return -1;
    i = i * 10 + (h->id[k] - '0');
  }
  return i < MAXN ? i : -1;
}

/* The hits are the exact top k of `m`, in order, with their distances,
 * metadata and (if asked for) vectors. NULL if so, else why. */
static const char *hits_exact(const vv_results *r, const model *m, vv_metric metric, const float *q, size_t k,
                              int with_vectors) {
  exact_hit want[64];
  size_t n = brute_force(m, metric, q, k, want);
  if (r->count != n) return "wrong number of hits";
  for (size_t i = 0; i < n; i++) {
    const vv_hit *h = &r->hits[i];
    if (!hit_is(h, want[i].i)) return "a different hit";
    float d = want[i].d;
    if (fabsf(h->distance - d) > 1e-4f * (1 + fabsf(d))) return "a different distance";
    int j = want[i].i;
    if (h->meta_len != (size_t)m->meta_len[j] || (h->meta_len && memcmp(h->meta, m->meta[j], h->meta_len)))
      return "different metadata";
    if (with_vectors && (!h->vector || memcmp(h->vector, m->vec[j], m->dim * sizeof(float))))
      return "a different vector";
    if (!with_vectors && h->vector) return "a vector nobody asked for";
  }
  return NULL;
}

/* ============================================================================ */

/* An encrypted HNSW session opened lazily: the manifest and the index
 * segments are read, no chunk object is even opened; then every id's get
 * returns its exact vector and metadata, reading each chunk exactly once. */
VV_TEST(lazy_load_reads_no_chunks_then_gets_are_exact) {
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model *m = model_new(8, 240);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_HNSW, 24);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(vv_db_set_secret(db, 1, kKey, NULL, 0) == VV_OK);
  /* The smallest pages: each chunk holds several. */
  vv_save_opts so = {.page_bytes = VV_PAGE_MIN_BYTES};
  vv_error serr = {{0}};
  VV_REQUIRE(vv_db_save_with(db, dir, quiet(), &so, NULL, NULL, NULL, &serr) == VV_OK);
  vv_db_free(db);
  chunk_list cl;
  VV_REQUIRE(list_chunks(dir, &cl) == VV_OK);
  VV_CHECK(cl.version == 3);
  VV_REQUIRE(cl.n >= 8);
  uint64_t pages = chunk_pages_total(dir, &cl);
  VV_CHECK(pages >= 2 * cl.n);

  fio f;
  fio_init(&f, NULL);
  vv_load_stats st;
  VV_REQUIRE(load(dir, kKey, 1, fio_io(&f), 0, &db, &st) == VV_OK);
  VV_CHECK(st.lazy == 1 && st.chunks_loaded == 0 && st.chunk_count == cl.n && st.total_vectors == 240);
  VV_CHECK(st.index_segments >= 1);
  long opened = chunk_ops(&f, &cl, FIO_OPEN), read = chunk_ops(&f, &cl, FIO_READ);
  VV_CHECK(opened == 0 && read == 0);
  if (opened || read) fio_dump(&f, stderr);
  long objects_read = 0;
  for (size_t i = 0; i < f.ntrace; i++) objects_read += f.trace[i].kind == FIO_READ && strstr(f.trace[i].path, "/objects/");
  VV_CHECK(objects_read >= 1); /* the index segments */
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.lazy == 1 && ci.misses == 0 && ci.bytes == 0 && ci.entries == 0 && ci.bytes_read == 0);
  VV_CHECK(ci.capacity == (uint64_t)150 << 20);

  fio_reset(&f);
  const char *d = differs(db, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  %s\n", d);
  /* Each chunk's page table read once, then each page once (the default
   * cache holds them all): together every byte of every chunk, once. */
  vv_db_cache_info(db, &ci);
  uint64_t chunk_bytes = 0;
  for (size_t i = 0; i < cl.n; i++) chunk_bytes += cl.c[i].ref.bytes;
  VV_CHECK(ci.misses == cl.n + pages && ci.entries == cl.n + pages && ci.bytes_read == chunk_bytes);
  VV_CHECK(ci.hits + ci.misses >= 240);
  VV_CHECK(ci.bytes > 0 && ci.bytes <= ci.capacity && ci.evictions == 0);
  /* One open for the table, one per page: each a positioned read. */
  VV_CHECK(chunk_ops(&f, &cl, FIO_OPEN) == (long)(cl.n + pages));
  for (size_t i = 0; i < cl.n; i++) {
    long k = 0;
    for (size_t j = 0; j < f.ntrace; j++) k += f.trace[j].kind == FIO_OPEN && fio_ends_with(f.trace[j].path, cl.c[i].ref.name);
    VV_CHECK(k == 1 + (long)object_npages(dir, cl.c[i].ref.name));
  }
  /* Reads served from the cache from now on. */
  fio_reset(&f);
  VV_CHECK(differs(db, m) == NULL);
  VV_CHECK(f.all_ops == 0);
  int found = 1;
  VV_CHECK(vv_db_has(db, "id-9999", 7, &found) == VV_OK && found == 0);
  vv_record *r = (vv_record *)1;
  VV_CHECK(vv_db_get(db, "id-9999", 7, &r) == VV_OK && r == NULL);
  vv_db_free(db);
  fio_destroy(&f);

  /* The eager load of the same session reads every chunk and agrees. */
  VV_REQUIRE(load(dir, kKey, 0, NULL, 0, &db, &st) == VV_OK);
  VV_CHECK(st.lazy == 0 && st.chunks_loaded == cl.n);
  VV_CHECK(differs(db, m) == NULL);
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.lazy == 0 && ci.misses == 0 && ci.bytes == 0);
  size_t loaded = 7;
  VV_CHECK(vv_db_preload(db, NULL, 0, NULL, NULL, &loaded) == VV_OK && loaded == 0); /* a no-op */
  vv_db_free(db);
  free(m);
  rm_rf(root);
}

/* Search on codes then re-rank: with every node re-ranked the result is the
 * exact top k, with exact distances, metadata and vectors; with the default
 * re-rank pool every hit still carries its exact distance. Batches agree. */
VV_TEST(lazy_search_reranks_with_exact_vectors) {
  static const vv_metric metrics[] = {VV_METRIC_L2, VV_METRIC_DOT, VV_METRIC_COSINE};
  for (int mi = 0; mi < 3; mi++) {
    vv_metric metric = metrics[mi];
    VV_NOTE("metric %d", (int)metric);
    char root[64], dir[128];
    VV_REQUIRE(make_root(root) == 0);
    strf(dir, sizeof dir, "%s/s", root);
    model *m = model_new(16, 300);
    vv_db *db = build(m, metric, VV_INDEX_HNSW, 32);
    VV_REQUIRE(db != NULL);
    /* Cosine stores unit-length vectors: so does the model from now on. */
    for (int i = 0; metric == VV_METRIC_COSINE && i < 300; i++) vv_normalize_f32(m->vec[i], m->dim);
    VV_REQUIRE(differs(db, m) == NULL);
    VV_REQUIRE(save(db, dir, NULL) == VV_OK);
    vv_db_free(db);
    vv_load_stats st;
    VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, &st) == VV_OK);
    VV_CHECK(st.lazy == 1);
    size_t found = 0, total = 0;
    enum { NQ = 12, K = 10 };
    float qs[NQ][16];
    vv_results *one[NQ];
    for (int qi = 0; qi < NQ; qi++) {
      make_query(m, 100 + (uint64_t)qi, qs[qi]);
      vv_search_opts all = {.ef_search = 300, .include_vector = 1, .rerank = 300};
      vv_results *r = NULL;
      VV_REQUIRE(vv_db_search(db, qs[qi], K, &all, &r) == VV_OK);
      const char *why = hits_exact(r, m, metric, qs[qi], K, 1);
      VV_CHECK(why == NULL);
      if (why) fprintf(stderr, "  query %d, every node re-ranked: %s\n", qi, why);
      vv_results_free(r);
      /* Default options: approximate, but each hit is re-ranked exactly. */
      vv_search_opts def = {0};
      VV_REQUIRE(vv_db_search(db, qs[qi], K, &def, &one[qi]) == VV_OK);
      exact_hit want[K];
      size_t n = brute_force(m, metric, qs[qi], K, want);
      VV_CHECK(one[qi]->count == n);
      for (size_t i = 0; i < one[qi]->count; i++) {
        const vv_hit *h = &one[qi]->hits[i];
        int j = hit_index(h);
        VV_REQUIRE(j >= 0 && m->present[j]);
        float want_d = public_distance(m, metric, qs[qi], m->vec[j]);
        VV_CHECK_NEAR(h->distance, want_d, 1e-4 * (1 + fabs(want_d)));
        if (i) VV_CHECK(one[qi]->hits[i - 1].distance <= h->distance);
        VV_CHECK(h->vector == NULL);
        VV_CHECK(h->meta_len == (size_t)m->meta_len[j]);
        for (size_t w = 0; w < n; w++) found += hit_is(h, want[w].i);
      }
      total += n;
    }
    double recall = (double)found / (double)total;
    VV_CHECK(recall >= 0.9);
    if (recall < 0.9) fprintf(stderr, "  recall@10 with the default re-rank pool: %.3f\n", recall);
    /* A batch gives what single searches give. */
    vv_results *batch[NQ];
    vv_search_opts bo = {.threads = 3};
    VV_REQUIRE(vv_db_search_batch(db, &qs[0][0], NQ, K, &bo, batch) == VV_OK);
    for (int qi = 0; qi < NQ; qi++) {
      VV_CHECK(batch[qi]->count == one[qi]->count);
      for (size_t i = 0; i < one[qi]->count && i < batch[qi]->count; i++)
        VV_CHECK(batch[qi]->hits[i].id_len == one[qi]->hits[i].id_len &&
                 !memcmp(batch[qi]->hits[i].id, one[qi]->hits[i].id, one[qi]->hits[i].id_len));
      vv_results_free(batch[qi]);
      vv_results_free(one[qi]);
    }
    /* k above the size returns everything. */
    vv_results *r = NULL;
    vv_search_opts all = {.rerank = 400};
    int src_ = vv_db_search(db, qs[0], 400, &all, &r);
    VV_CHECK(src_ == VV_OK && r && r->count == 300);
    vv_results_free(r);
    vv_db_free(db);
    free(m);
    rm_rf(root);
  }
}

/* A flat session opened lazily is scanned chunk by chunk: exact, the same
 * as the eager database, and every chunk read once. */
VV_TEST(lazy_flat_session_scans_chunks_exactly) {
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model *m = model_new(8, 150);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_FLAT, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  chunk_list cl;
  VV_REQUIRE(list_chunks(dir, &cl) == VV_OK);
  vv_load_stats st;
  VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, &st) == VV_OK);
  VV_CHECK(st.lazy == 1 && st.chunks_loaded == 0);
  for (int qi = 0; qi < 8; qi++) {
    float q[8];
    make_query(m, 7 + (uint64_t)qi, q);
    vv_results *r = NULL;
    vv_search_opts o = {.include_vector = qi & 1};
    VV_REQUIRE(vv_db_search(db, q, 7, &o, &r) == VV_OK);
    const char *why = hits_exact(r, m, VV_METRIC_L2, q, 7, qi & 1);
    VV_CHECK(why == NULL);
    if (why) fprintf(stderr, "  query %d: %s\n", qi, why);
    vv_results_free(r);
  }
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.misses == all_entries(dir, &cl) && ci.entries == all_entries(dir, &cl)); /* each page once */
  VV_CHECK(differs(db, m) == NULL);
  vv_db_free(db);
  free(m);
  rm_rf(root);
}

/* lazy = 1 falls back to an eager load for an HNSW session without a
 * codebook (every vector was deleted before its first save); once vectors
 * are added and saved, the session has codes and opens lazily. */
VV_TEST(session_without_codes_loads_eagerly) {
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model *m = model_new(8, 40);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_HNSW, 16);
  VV_REQUIRE(db != NULL);
  for (int i = 0; i < 40; i++) VV_REQUIRE(del(db, m, i) == VV_OK);
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  vv_load_stats st;
  VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, &st) == VV_OK);
  VV_CHECK(st.lazy == 0 && st.total_vectors == 0);
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.lazy == 0);
  for (int i = 40; i < 100; i++) {
    model_set(m, i, 3, NULL);
    VV_REQUIRE(put(db, m, i) == VV_OK);
  }
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  const char *d = reload_differs(dir, NULL, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  %s\n", d);
  free(m);
  rm_rf(root);
}

/* ---- chunk read failures ---------------------------------------------------- */

enum { OP_GET, OP_SEARCH, OP_PRELOAD, OP_SAVE, NOPS };
enum { F_EIO_READ, F_EIO_OPEN, F_SHORT_READ, F_ENOENT, NFAULTS };

static const char *const kOpName[NOPS] = {"get", "search", "preload", "save"};
static const char *const kFaultName[NFAULTS] = {"EIO on read", "EIO on open", "a read cut short", "ENOENT on open"};
static const int kFaultStatus[NFAULTS] = {VV_E_IO, VV_E_IO, VV_E_CHUNK_CORRUPT, VV_E_CHUNK_MISSING};

/* What the save of the fault test writes: many deletions, so chunks fall
 * under half current and their rows (still only in the old chunks) must be
 * read to move; a few additions and one upsert. */
static int mutate_for_save(vv_db *db, model *m) {
  int rc = VV_OK;
  for (int i = 0; i < 160 && !rc; i++)
    if (i % 5 < 3) rc = del(db, m, i);
  for (int i = 160; i < 170 && !rc; i++) {
    model_set(m, i, 5, "{\"new\":1}");
    rc = put(db, m, i);
  }
  if (!rc) {
    model_set(m, 163, 6, NULL);
    rc = put(db, m, 163);
  }
  return rc;
}

/* One call of `op` on the lazy database; VV_OK only if it also returned
 * exactly the stored data. */
static int run_op(int op, vv_db *db, const char *dir, const model *m) {
  switch (op) {
    case OP_GET: {
      vv_record *r = NULL;
      int rc = vv_db_get(db, "id-0101", 7, &r);
      if (!rc && (!r || memcmp(r->vector, m->vec[101], m->dim * sizeof(float)))) rc = VV_E_INTERNAL;
      vv_record_free(r);
      return rc;
    }
    case OP_SEARCH: {
      float q[8];
      make_query(m, 5, q);
      vv_results *r = NULL;
      vv_search_opts o = {.rerank = 200, .include_vector = 1};
      int rc = vv_db_search(db, q, 5, &o, &r);
      if (!rc && hits_exact(r, m, VV_METRIC_L2, q, 5, 1)) rc = VV_E_INTERNAL;
      vv_results_free(r);
      return rc;
    }
    case OP_PRELOAD: {
      size_t loaded = 0;
      return vv_db_preload(db, NULL, 0, NULL, NULL, &loaded);
    }
    default: {
      vv_error err = {{0}};
      return vv_db_save(db, dir, quiet(), NULL, NULL, NULL, &err);
    }
  }
}

static void chunk_fault_case(const char *base, const char *dir, int op, int fault, const model *m0) {
  VV_NOTE("%s during %s", kFaultName[fault], kOpName[op]);
  model *m = malloc(sizeof *m);
  *m = *m0;
  rm_rf(dir);
  VV_REQUIRE(link_dir(base, dir) == 0);
  char mpath[256];
  strf(mpath, sizeof mpath, "%s/manifest.json", dir);
  size_t mlen0;
  unsigned char *manifest0 = read_all(mpath, &mlen0);
  VV_REQUIRE(manifest0 != NULL);

  fio f;
  fio_init(&f, NULL);
  eofio e;
  eofio_init(&e, fio_io(&f));
  vv_db *db = NULL;
  vv_load_stats st;
  VV_REQUIRE(load(dir, kKey, 1, &e.io, 0, &db, &st) == VV_OK);
  VV_CHECK(st.lazy == 1);
  if (op == OP_SAVE) VV_REQUIRE(mutate_for_save(db, m) == VV_OK);

  /* Arm: the first chunk operation of that kind fails (after the load, the
   * lazy reader is the only one using these tables). */
  fio_reset(&f);
  f.kinds = FIO_BIT(fault == F_EIO_READ ? FIO_READ : FIO_OPEN);
  f.fail_at = fault == F_SHORT_READ ? 0 : 1;
  f.err = fault == F_ENOENT ? ENOENT : EIO;
  e.armed = fault == F_SHORT_READ;
  vv_cache_info before, after;
  vv_db_cache_info(db, &before);
  int rc = run_op(op, db, dir, m);
  VV_CHECK(f.injected + e.cut == 1); /* the fault hit a chunk read */
  VV_CHECK(rc == kFaultStatus[fault]);
  if (rc != kFaultStatus[fault]) fprintf(stderr, "  returned %s\n", vv_status_code(rc));
  vv_db_cache_info(db, &after);
  VV_CHECK(after.bytes <= after.capacity);
  if (op == OP_SAVE) {
    /* The previous generation stays, byte for byte, and loads. */
    size_t mlen;
    unsigned char *now = read_all(mpath, &mlen);
    VV_CHECK(now && mlen == mlen0 && !memcmp(now, manifest0, mlen));
    free(now);
    VV_CHECK(count_tmp(dir) == 0);
    const char *d = reload_differs(dir, kKey, m0);
    VV_CHECK(d == NULL);
    if (d) fprintf(stderr, "  the previous generation after a failed save: %s\n", d);
  }

  /* Disarmed, the same call succeeds with the right data: nothing bad was
   * cached, and the database is fine. */
  f.fail_at = 0;
  e.armed = 0;
  rc = run_op(op, db, dir, m);
  VV_CHECK(rc == VV_OK);
  if (rc) fprintf(stderr, "  the call after the failure: %s\n", vv_status_code(rc));
  if (op == OP_PRELOAD) {
    chunk_list cl;
    VV_REQUIRE(list_chunks(dir, &cl) == VV_OK);
    vv_db_cache_info(db, &after);
    VV_CHECK(after.entries == all_entries(dir, &cl));
  }
  const char *d = differs(db, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  the database after the failure: %s\n", d);
  if (op == OP_SAVE) {
    d = reload_differs(dir, kKey, m);
    VV_CHECK(d == NULL);
    if (d) fprintf(stderr, "  the saved generation after the retry: %s\n", d);
  }
  vv_db_free(db);
  eofio_destroy(&e);
  fio_destroy(&f);
  free(manifest0);
  free(m);
}

VV_TEST(chunk_read_failures_fail_the_call_and_the_next_call_works) {
  char root[64], base[128], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(base, sizeof base, "%s/base", root);
  strf(dir, sizeof dir, "%s/s", root);
  model *m = model_new(8, 160);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_HNSW, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(vv_db_set_secret(db, 1, kKey, NULL, 0) == VV_OK);
  VV_REQUIRE(save(db, base, NULL) == VV_OK);
  vv_db_free(db);
  for (int op = 0; op < NOPS; op++)
    for (int fault = 0; fault < NFAULTS; fault++) chunk_fault_case(base, dir, op, fault, m);
  free(m);
  rm_rf(root);
}

/* A chunk file really gone, then back: CHUNK_MISSING, then the data. */
VV_TEST(missing_chunk_file_then_restored) {
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model *m = model_new(8, 60);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_HNSW, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  chunk_list cl;
  VV_REQUIRE(list_chunks(dir, &cl) == VV_OK);
  VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, NULL) == VV_OK);
  char from[256], to[256];
  strf(from, sizeof from, "%s/objects/%s", dir, cl.c[0].ref.name);
  strf(to, sizeof to, "%s/aside", dir);
  VV_REQUIRE(rename(from, to) == 0);
  uint64_t seq = cl.c[0].seq;
  size_t loaded = 9;
  VV_CHECK(vv_db_preload(db, &seq, 1, NULL, NULL, &loaded) == VV_E_CHUNK_MISSING && loaded == 0);
  /* A whole scan (k = everything: the graph walk alone cannot supply it) needs every chunk. */
  float q[8] = {0};
  vv_results *r = NULL;
  VV_CHECK(vv_db_search(db, q, 60, NULL, &r) == VV_E_CHUNK_MISSING && r == NULL);
  VV_REQUIRE(rename(to, from) == 0);
  VV_CHECK(vv_db_preload(db, &seq, 1, NULL, NULL, &loaded) == VV_OK && loaded == 1);
  VV_CHECK(vv_db_preload(db, &seq, 1, NULL, NULL, &loaded) == VV_OK && loaded == 0); /* cached now */
  uint64_t bogus = 1u << 30;
  VV_CHECK(vv_db_preload(db, &bogus, 1, NULL, NULL, &loaded) == VV_E_INVALID);
  VV_CHECK(vv_db_preload(db, NULL, 3, NULL, NULL, &loaded) == VV_E_INVALID);
  VV_CHECK(differs(db, m) == NULL);
  VV_CHECK(vv_db_search(db, q, 60, NULL, &r) == VV_OK && r && r->count == 60);
  vv_results_free(r);
  vv_db_free(db);
  free(m);
  rm_rf(root);
}

static int abort_at_2(void *ctx, uint64_t done, uint64_t total) {
  (void)total;
  *(uint64_t *)ctx = done;
  return done >= 2;
}

/* vv_db_preload without a list loads chunks in manifest order while they
 * fit beside those it loaded (none evicts another); with a list, exactly
 * those; a progress callback can stop it. */
VV_TEST(preload_fills_the_cache_without_evicting) {
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model *m = model_new(16, 200);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_HNSW, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  chunk_list cl;
  VV_REQUIRE(list_chunks(dir, &cl) == VV_OK);
  VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, NULL) == VV_OK);
  size_t loaded = 0;
  uint64_t seqs[3] = {cl.c[2].seq, cl.c[0].seq, cl.c[2].seq};
  VV_CHECK(vv_db_preload(db, seqs, 3, NULL, NULL, &loaded) == VV_OK && loaded == 2);
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  uint64_t two = 2 + object_npages(dir, cl.c[0].ref.name) + object_npages(dir, cl.c[2].ref.name);
  VV_CHECK(ci.entries == two && ci.misses == two); /* tables and pages of those two */
  uint64_t one = ci.bytes / 2;
  /* Room for three and a half chunks. */
  VV_REQUIRE(vv_db_set_cache_size(db, one * 7 / 2) == VV_OK);
  VV_CHECK(vv_db_preload(db, NULL, 0, NULL, NULL, &loaded) == VV_OK);
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.bytes <= ci.capacity);
  VV_CHECK(ci.evictions == 0);
  if (ci.evictions) fprintf(stderr, "  preload evicted %llu chunk(s) it had loaded itself (%zu loaded, %llu cached)\n",
                            (unsigned long long)ci.evictions, loaded, (unsigned long long)ci.entries);
  VV_CHECK(ci.entries >= 3 * (1 + (uint64_t)object_npages(dir, cl.c[0].ref.name))); /* three chunks or more */
  uint64_t done = 0;
  VV_REQUIRE(vv_db_set_cache_size(db, (uint64_t)1 << 30) == VV_OK);
  VV_CHECK(vv_db_preload(db, NULL, 0, abort_at_2, &done, &loaded) == VV_E_ABORTED && done == 2);
  VV_CHECK(vv_db_preload(db, NULL, 0, NULL, NULL, &loaded) == VV_OK);
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.entries == all_entries(dir, &cl));
  VV_CHECK(differs(db, m) == NULL);
  vv_db_free(db);
  free(m);
  rm_rf(root);
}

/* Encryption turned on for a lazily loaded unencrypted session: the save
 * cannot be incremental, reads every row from the old chunks, and both
 * the same directory and another one end up encrypted and complete. */
VV_TEST(lazy_database_saved_with_new_encryption) {
  char root[64], dir[128], other[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  strf(other, sizeof other, "%s/o", root);
  model *m = model_new(8, 90);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_HNSW, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, NULL) == VV_OK);
  VV_REQUIRE(vv_db_set_secret(db, 1, kKey, NULL, 0) == VV_OK);
  vv_save_stats ss;
  VV_REQUIRE(save(db, other, &ss) == VV_OK);
  VV_CHECK(ss.full == 1 && ss.chunks_reused == 0);
  VV_REQUIRE(save(db, dir, &ss) == VV_OK);
  VV_CHECK(ss.full == 1 && ss.chunks_reused == 0);
  VV_CHECK(differs(db, m) == NULL);
  const char *d = reload_differs(dir, kKey, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  %s\n", d);
  d = reload_differs(other, kKey, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  elsewhere: %s\n", d);
  vv_db *x = NULL;
  vv_error err;
  vv_load_opts o = {.lazy = 1};
  VV_CHECK(vv_db_load(dir, &o, NULL, NULL, &x, NULL, &err) == VV_E_KEY_REQUIRED && x == NULL);
  vv_db_free(db);
  free(m);
  rm_rf(root);
}

/* Empty sessions: a flat one opens lazily with no chunks; an HNSW one
 * never had vectors, so no codebook, and opens eagerly. Both take adds
 * and save. */
VV_TEST(lazy_loads_of_empty_sessions) {
  for (int flat = 0; flat < 2; flat++) {
    VV_NOTE("%s", flat ? "flat" : "hnsw");
    char root[64], dir[128];
    VV_REQUIRE(make_root(root) == 0);
    strf(dir, sizeof dir, "%s/s", root);
    model *m = model_new(8, 0);
    vv_db *db = make_db(8, VV_METRIC_L2, flat ? VV_INDEX_FLAT : VV_INDEX_HNSW, 10);
    VV_REQUIRE(db != NULL);
    VV_REQUIRE(save(db, dir, NULL) == VV_OK);
    vv_db_free(db);
    vv_load_stats st;
    VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, &st) == VV_OK);
    VV_CHECK(st.lazy == flat && st.chunk_count == 0);
    float q[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    vv_results *r = NULL;
    VV_CHECK(vv_db_search(db, q, 3, NULL, &r) == VV_OK && r && r->count == 0);
    vv_results_free(r);
    size_t loaded = 5;
    VV_CHECK(vv_db_preload(db, NULL, 0, NULL, NULL, &loaded) == VV_OK && loaded == 0);
    for (int i = 0; i < 25; i++) {
      model_set(m, i, 2, NULL);
      VV_REQUIRE(put(db, m, i) == VV_OK);
    }
    VV_REQUIRE(save(db, dir, NULL) == VV_OK);
    VV_CHECK(differs(db, m) == NULL);
    vv_db_free(db);
    const char *d = reload_differs(dir, NULL, m);
    VV_CHECK(d == NULL);
    if (d) fprintf(stderr, "  %s\n", d);
    free(m);
    rm_rf(root);
  }
}

/* ---- reads while a lazy database saves ------------------------------------------ */

typedef struct reader_arg {
  vv_db *db;
  const model *m;  /* only ids with i % 4 == 3 are read: nobody changes those */
  atomic_int *stop;
  int id;
  long reads, bad;
  int first_bad_rc;
} reader_arg;

static void *reader_thread(void *p) {
  reader_arg *a = p;
  for (int it = 0; !atomic_load(a->stop); it++) {
    int i = ((it * 7 + a->id * 13) % 100) * 4 + 3;
    char id[16];
    int len = id_of(i, id);
    vv_record *r = NULL;
    int rc = vv_db_get(a->db, id, (size_t)len, &r);
    if (rc || !r || memcmp(r->vector, a->m->vec[i], a->m->dim * sizeof(float)) ||
        r->meta_len != (size_t)a->m->meta_len[i]) {
      if (!a->bad++) a->first_bad_rc = rc;
    }
    vv_record_free(r);
    /* A search near that vector: the stable id itself must come first. */
    vv_results *res = NULL;
    vv_search_opts o = {.include_vector = 1};
    rc = vv_db_search(a->db, a->m->vec[i], 3, &o, &res);
    if (rc || !res || !res->count || !hit_is(&res->hits[0], i) ||
        memcmp(res->hits[0].vector, a->m->vec[i], a->m->dim * sizeof(float))) {
      if (!a->bad++) a->first_bad_rc = rc;
    }
    vv_results_free(res);
    a->reads++;
  }
  return NULL;
}

/* Saves hold the database's read lock: gets and searches go on while a
 * save compacts chunks and moves rows' locations, and must always find
 * each row (in the chunk the location named when they looked, old or
 * new). Writers run between the saves. */
VV_TEST(reads_run_while_a_lazy_database_saves) {
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model *m = model_new(8, 400);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_HNSW, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, NULL) == VV_OK);
  /* A small cache, so the readers keep going to the chunks. */
  VV_REQUIRE(vv_db_set_cache_size(db, 20000) == VV_OK);
  model *snap = malloc(sizeof *snap);
  *snap = *m; /* the readers' copy: the stable ids never change */
  atomic_int stop;
  atomic_init(&stop, 0);
  reader_arg ra[3];
  pthread_t th[3];
  for (int t = 0; t < 3; t++) {
    ra[t] = (reader_arg){.db = db, .m = snap, .stop = &stop, .id = t};
    VV_REQUIRE(pthread_create(&th[t], NULL, reader_thread, &ra[t]) == 0);
  }
  for (int round = 0; round < 4; round++) {
    for (int i = round; i < 400; i += 4) /* ids 0..2 mod 4: deleted, upserted, re-added */
      if (i % 4 != 3) {
        if (m->present[i] && (i / 4) % 3 != 0) {
          VV_REQUIRE(del(db, m, i) == VV_OK);
        } else {
          model_set(m, i, 10 + (uint64_t)round, "{\"r\":1}");
          VV_REQUIRE(put(db, m, i) == VV_OK);
        }
      }
    VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  }
  atomic_store(&stop, 1);
  for (int t = 0; t < 3; t++) {
    pthread_join(th[t], NULL);
    VV_CHECK(ra[t].reads > 0 && ra[t].bad == 0);
    if (ra[t].bad) fprintf(stderr, "  reader %d: %ld of %ld reads wrong (first: %s)\n", t, ra[t].bad, ra[t].reads,
                           vv_status_code(ra[t].first_bad_rc));
  }
  VV_CHECK(differs(db, m) == NULL);
  vv_db_free(db);
  const char *d = reload_differs(dir, NULL, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  %s\n", d);
  free(snap);
  free(m);
  rm_rf(root);
}

/* ---- the cache under threads ---------------------------------------------------- */

typedef struct search_worker {
  vv_db *db;
  const model *m;
  int id;
  atomic_int *stop;   /* run until set (0: run `iters`) */
  int iters;
  int failures, wrong;
  vv_results *expect[16]; /* single-threaded answers for queries 0..15 */
} search_worker;

static void *search_thread(void *arg) {
  search_worker *w = arg;
  for (int it = 0; w->stop ? !atomic_load(w->stop) : it < w->iters; it++) {
    int qi = (it * 5 + w->id) % 16;
    float q[16];
    make_query(w->m, 1000 + (uint64_t)qi, q);
    vv_results *r = NULL;
    vv_search_opts o = {0};
    int rc = vv_db_search(w->db, q, 8, &o, &r);
    if (rc) {
      w->failures++;
    } else {
      const vv_results *e = w->expect[qi];
      int same = r->count == e->count;
      for (size_t i = 0; same && i < r->count; i++)
        same = r->hits[i].id_len == e->hits[i].id_len && !memcmp(r->hits[i].id, e->hits[i].id, e->hits[i].id_len) &&
               r->hits[i].distance == e->hits[i].distance && r->hits[i].meta_len == e->hits[i].meta_len;
      w->wrong += !same;
    }
    vv_results_free(r);
    if (it % 7 == 0) { /* gets too */
      char id[16];
      int i = (it * 13 + w->id * 31) % 400, len = id_of(i, id);
      vv_record *rec = NULL;
      if (vv_db_get(w->db, id, (size_t)len, &rec) != VV_OK || !rec ||
          memcmp(rec->vector, w->m->vec[i], w->m->dim * sizeof(float)))
        w->wrong++;
      vv_record_free(rec);
    }
  }
  return NULL;
}

/* Searches (and gets) from 4 threads with room for about 2 chunks: the
 * cache never holds more than its capacity, results do not depend on what
 * is cached, and vv_db_set_cache_size(db, 1) in the middle of it all
 * leaves everything working (values are handed out uncached). */
VV_TEST(cache_stays_bounded_under_concurrent_searches) {
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model *m = model_new(16, 400);
  vv_db *db = build(m, VV_METRIC_L2, VV_INDEX_HNSW, 25);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  chunk_list cl;
  VV_REQUIRE(list_chunks(dir, &cl) == VV_OK);
  VV_REQUIRE(cl.n >= 12);
  VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, NULL) == VV_OK);

  /* A chunk's size in the cache: everything loaded once, averaged. */
  size_t loaded = 0;
  VV_REQUIRE(vv_db_preload(db, NULL, 0, NULL, NULL, &loaded) == VV_OK);
  VV_CHECK(loaded == cl.n);
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  uint64_t total = all_entries(dir, &cl);
  VV_REQUIRE(ci.entries == total);
  uint64_t cap = 2 * ci.bytes / cl.n; /* about two chunks' tables and pages */
  search_worker w[4];
  memset(w, 0, sizeof w);
  for (int qi = 0; qi < 16; qi++) {
    float q[16];
    make_query(m, 1000 + (uint64_t)qi, q);
    vv_search_opts o = {0};
    VV_REQUIRE(vv_db_search(db, q, 8, &o, &w[0].expect[qi]) == VV_OK);
    for (int t = 1; t < 4; t++) w[t].expect[qi] = w[0].expect[qi];
  }
  VV_REQUIRE(vv_db_set_cache_size(db, cap) == VV_OK);
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.capacity == cap && ci.bytes <= cap && ci.entries < total && ci.evictions == total - ci.entries);
  VV_CHECK(vv_db_set_cache_size(db, 0) == VV_E_INVALID);

  cache_watch wt = {.db = db};
  atomic_init(&wt.stop, 0);
  pthread_t th[4], wth;
  VV_REQUIRE(pthread_create(&wth, NULL, cache_watch_thread, &wt) == 0);
  for (int t = 0; t < 4; t++) {
    w[t].db = db;
    w[t].m = m;
    w[t].id = t;
    w[t].iters = 60;
    VV_REQUIRE(pthread_create(&th[t], NULL, search_thread, &w[t]) == 0);
  }
  for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
  atomic_store(&wt.stop, 1);
  pthread_join(wth, NULL);
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.bytes <= ci.capacity && ci.capacity == cap);
  VV_CHECK(ci.evictions > cl.n);
  VV_CHECK(wt.over == 0 && wt.samples > 0);
  for (int t = 0; t < 4; t++) VV_CHECK(w[t].failures == 0 && w[t].wrong == 0);

  /* The capacity shrinks to 1 byte (and grows back) while they search. */
  atomic_int stop;
  atomic_init(&stop, 0);
  atomic_store(&wt.stop, 0);
  wt.over = 0;
  VV_REQUIRE(pthread_create(&wth, NULL, cache_watch_thread, &wt) == 0);
  for (int t = 0; t < 4; t++) {
    w[t].stop = &stop;
    VV_REQUIRE(pthread_create(&th[t], NULL, search_thread, &w[t]) == 0);
  }
  for (int round = 0; round < 20; round++) {
    VV_CHECK(vv_db_set_cache_size(db, round % 2 ? cap : 1) == VV_OK);
    usleep(2000);
  }
  VV_CHECK(vv_db_set_cache_size(db, 1) == VV_OK);
  usleep(5000);
  atomic_store(&stop, 1);
  for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
  atomic_store(&wt.stop, 1);
  pthread_join(wth, NULL);
  for (int t = 0; t < 4; t++) VV_CHECK(w[t].failures == 0 && w[t].wrong == 0);
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.capacity == 1 && ci.bytes == 0 && ci.entries == 0);
  /* Still works, with nothing cached. */
  VV_CHECK(differs(db, m) == NULL);
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.bytes == 0 && ci.entries == 0);
  for (int qi = 0; qi < 16; qi++) vv_results_free(w[0].expect[qi]);
  vv_db_free(db);
  free(m);
  rm_rf(root);
}

/* ---- mutations on a lazy database --------------------------------------------- */

/* Adds, deletes, upserts (vector and metadata, or metadata only) and
 * re-adds of deleted ids on a lazily loaded database; it answers for the
 * new state at once, saves incrementally, and both kinds of reload agree;
 * a second round that empties most chunks (compaction reads old rows), a
 * batch add, and a full save into another directory. */
static void lazy_mutations(vv_index_kind kind) {
  char root[64], dir[128], other[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  strf(other, sizeof other, "%s/other", root);
  model *m = model_new(8, 120);
  vv_db *db = build(m, VV_METRIC_L2, kind, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save(db, dir, NULL) == VV_OK);
  vv_db_free(db);
  vv_load_stats st;
  VV_REQUIRE(load(dir, NULL, 1, NULL, 0, &db, &st) == VV_OK);
  VV_REQUIRE(st.lazy == 1);

  for (int i = 0; i < 120; i += 6) VV_REQUIRE(del(db, m, i) == VV_OK);        /* 20 deletes */
  for (int i = 1; i < 120; i += 6) {                                          /* 20 upserts */
    model_set(m, i, 2, "{\"up\":1}");
    VV_REQUIRE(put(db, m, i) == VV_OK);
  }
  for (int i = 2; i < 120; i += 12) {                                         /* metadata only */
    m->meta_len[i] = strf(m->meta[i], sizeof m->meta[i], "{\"meta-only\":%d}", i);
    VV_REQUIRE(put(db, m, i) == VV_OK);
  }
  for (int i = 120; i < 150; i++) {                                           /* 30 adds */
    model_set(m, i, 1, i % 2 ? "{}" : NULL);
    VV_REQUIRE(put(db, m, i) == VV_OK);
  }
  for (int i = 0; i < 30; i += 6) {                                           /* deleted, then back */
    model_set(m, i, 3, NULL);
    VV_REQUIRE(put(db, m, i) == VV_OK);
  }
  const char *d = differs(db, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  before the save: %s\n", d);
  float q[8];
  make_query(m, 77, q);
  vv_results *r = NULL;
  vv_search_opts all = {.rerank = 400, .ef_search = 400};
  VV_REQUIRE(vv_db_search(db, q, 10, &all, &r) == VV_OK);
  d = hits_exact(r, m, VV_METRIC_L2, q, 10, 0);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  search before the save: %s\n", d);
  vv_results_free(r);

  vv_save_stats ss;
  VV_REQUIRE(save(db, dir, &ss) == VV_OK);
  VV_CHECK(ss.full == 0 && ss.chunks_reused > 0);
  VV_CHECK(differs(db, m) == NULL);
  d = reload_differs(dir, NULL, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  after the first save: %s\n", d);

  /* Round two, on the same lazy database: empty most chunks, add a batch. */
  for (int i = 0; i < 150; i++)
    if (m->present[i] && i % 4 != 3) VV_REQUIRE(del(db, m, i) == VV_OK);
  vv_item items[40];
  char ids[40][16];
  for (int k = 0; k < 40; k++) {
    int i = 150 + k;
    model_set(m, i, 4, "{\"batch\":true}");
    int len = id_of(i, ids[k]);
    items[k] = (vv_item){ids[k], (size_t)len, m->vec[i], m->meta[i], (size_t)m->meta_len[i], NULL, 0};
  }
  size_t done = 0;
  VV_REQUIRE(vv_db_add_batch(db, items, 40, 2, NULL, NULL, &done) == VV_OK && done == 40);
  VV_REQUIRE(save(db, dir, &ss) == VV_OK);
  VV_CHECK(ss.full == 0);
  d = reload_differs(dir, NULL, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  after the second save: %s\n", d);
  VV_CHECK(differs(db, m) == NULL);
  VV_REQUIRE(vv_db_search(db, q, 10, &all, &r) == VV_OK);
  VV_CHECK(hits_exact(r, m, VV_METRIC_L2, q, 10, 0) == NULL);
  vv_results_free(r);

  /* Everything into another directory: a full save that reads every row
   * still in a chunk; then the database reads from there. */
  VV_REQUIRE(save(db, other, &ss) == VV_OK);
  VV_CHECK(ss.full == 1);
  d = reload_differs(other, NULL, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  after the save elsewhere: %s\n", d);
  rm_rf(dir);
  VV_CHECK(differs(db, m) == NULL);

  /* A database reloaded lazily from the result goes on the same way. */
  vv_db_free(db);
  VV_REQUIRE(load(other, NULL, 1, NULL, 0, &db, &st) == VV_OK && st.lazy == 1);
  for (int i = 3; i < 60; i += 8)
    if (m->present[i]) {
      model_set(m, i, 9, "{\"again\":1}");
      VV_REQUIRE(put(db, m, i) == VV_OK);
    }
  VV_REQUIRE(save(db, other, &ss) == VV_OK);
  VV_CHECK(differs(db, m) == NULL);
  d = reload_differs(other, NULL, m);
  VV_CHECK(d == NULL);
  if (d) fprintf(stderr, "  after the last save: %s\n", d);
  vv_db_free(db);
  free(m);
  rm_rf(root);
}

VV_TEST(lazy_hnsw_mutations_save_and_reload) { lazy_mutations(VV_INDEX_HNSW); }
VV_TEST(lazy_flat_mutations_save_and_reload) { lazy_mutations(VV_INDEX_FLAT); }

VV_TEST_MAIN()
