/*
 * test/c/test_pages.c: format-3 pages as the lazy reader sees them
 * (session/paged.c, session/lazy.c, db/access.c and the lazy search in
 * db/db.c).
 *
 * Owns: results that do not depend on the cache (cold, warm, and a cache of
 * a few pages, of half the session, of all of it; every metric, encrypted
 * or not); damage confined to a page (a flipped bit fails the reads that
 * need that page, naming the object and the page, and nothing else; an
 * eager load fails); pages moved within an object or copied from another
 * one, refused by the table's checks and, with a table forged to match, by
 * the page's associated data; page reads under injected I/O faults; many
 * searches on a cache of a few pages from several threads; and a lazy
 * search after 90% of the vectors were deleted, which still returns k hits
 * and reads a bounded number of pages. Chunk-level behaviour (what a lazy load
 * reads, preload, saves of lazy databases) is test_lazy.c; formats 1 and 2
 * are test_session_formats.c.
 *
 * Sessions are saved with the smallest page size (VV_PAGE_MIN_BYTES), so
 * each chunk holds several pages; every row has metadata of the same
 * length, so full pages have the same length. Sessions live under
 * temporary directories removed at exit. No timing: counts come from the
 * cache's counters and faultio's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "common/util.h"
#include "session/manifest.h"
#include "session/paged.h"
#include "vecvault.h"
#include "vvtest.h"

#include "faultio.h"
#include "support.h"

#define DIM 12
#define MAXN 600
#define CHUNK 60

static const unsigned char kKey[32] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3,
                                       2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5};

/* ---- contents ---------------------------------------------------------------- */

typedef struct data {
  int n;
  int live[MAXN];
  float vec[MAXN][DIM];
} data;

static int id_of(int i, char *buf) { return strf(buf, 16, "id-%04d", i); }
static int meta_of(int i, char *buf) { return strf(buf, 24, "{\"i\":%04d}", i); }

/* 12 clusters plus noise, so codes and pages mean something. */
static void data_init(data *d, int n) {
  memset(d, 0, sizeof *d);
  d->n = n;
  for (int i = 0; i < n; i++) {
    uint64_t st = 977u * (uint64_t)i + 13u;
    uint64_t c = (uint64_t)(i * 5) % 12;
    for (int k = 0; k < DIM; k++) {
      uint64_t cs = c * 131u + (uint64_t)k;
      d->vec[i][k] = (float)(vv_unit_double(vv_splitmix64(&cs)) * 4 - 2) +
                     (float)(vv_unit_double(vv_splitmix64(&st)) - 0.5) * 0.6f;
    }
    d->live[i] = 1;
  }
}

static void query_of(const data *d, int qi, float *q) {
  uint64_t st = 4242u + (uint64_t)qi * 31u;
  int base = (int)(vv_splitmix64(&st) % (uint64_t)d->n);
  for (int k = 0; k < DIM; k++) q[k] = d->vec[base][k] + (float)(vv_unit_double(vv_splitmix64(&st)) - 0.5) * 0.4f;
}

/* A session of `d` in `dir` (HNSW, m = 8), sealed with kKey when
 * `encrypted`, pages of VV_PAGE_MIN_BYTES. */
static int make_session(const char *dir, const data *d, vv_metric metric, int encrypted) {
  vv_config c = {.dimension = DIM, .metric = metric, .index = VV_INDEX_HNSW, .hnsw_m = 8, .ef_construction = 40,
                 .threads = 2, .seed = 7, .chunk_size = CHUNK};
  vv_db *db = NULL;
  int rc = vv_db_create(&c, &db);
  if (!rc) rc = vv_db_set_secret(db, encrypted, encrypted ? kKey : NULL, NULL, 0);
  for (int i = 0; i < d->n && !rc; i++) {
    char id[16], meta[24];
    int il = id_of(i, id), ml = meta_of(i, meta);
    vv_item it = {id, (size_t)il, d->vec[i], meta, (size_t)ml, NULL, 0};
    rc = vv_db_add(db, &it);
  }
  vv_save_opts so = {.page_bytes = VV_PAGE_MIN_BYTES};
  vv_error err = {{0}};
  if (!rc) rc = vv_db_save_with(db, dir, NULL, &so, NULL, NULL, NULL, &err);
  if (rc) fprintf(stderr, "  save of %s: %s (%s)\n", dir, vv_status_code(rc), err.message);
  vv_db_free(db);
  return rc;
}

/* A session of n rows (data_init) in a fresh directory. */
typedef struct fixture {
  char root[64], dir[128];
  data *d;
} fixture;

static int fixture_open(fixture *x, int n, vv_metric metric, int encrypted) {
  memset(x, 0, sizeof *x);
  if (make_root(x->root)) return VV_E_IO;
  strf(x->dir, sizeof x->dir, "%s/s", x->root);
  x->d = malloc(sizeof *x->d);
  if (!x->d) return VV_E_NOMEM;
  data_init(x->d, n);
  return make_session(x->dir, x->d, metric, encrypted);
}

static void fixture_close(fixture *x) {
  free(x->d);
  rm_rf(x->root);
}

static int load(const char *dir, int encrypted, int lazy, const vv_io *io, vv_db **out, vv_error *err) {
  vv_load_opts o = {.key = encrypted ? kKey : NULL, .io = io, .threads = 2, .lazy = lazy};
  vv_load_stats st;
  int rc = vv_db_load(dir, &o, NULL, NULL, out, &st, err);
  if (!rc && lazy && !st.lazy) {
    vv_db_free(*out);
    *out = NULL;
    rc = VV_E_INTERNAL;
  }
  return rc;
}

/* The get of row i returns exactly what was stored. */
static int get_exact(vv_db *db, const data *d, int i, vv_error *err) {
  char id[16], meta[24];
  int il = id_of(i, id), ml = meta_of(i, meta);
  vv_record *r = NULL;
  int rc = vv_db_get_ex(db, id, (size_t)il, &r, err);
  if (!rc && (!r || memcmp(r->vector, d->vec[i], sizeof d->vec[i]) || r->meta_len != (size_t)ml ||
              memcmp(r->meta, meta, (size_t)ml)))
    rc = VV_E_INTERNAL;
  vv_record_free(r);
  return rc;
}

/* NULL if a and b are the same results, bit for bit; else what differs. */
static const char *results_differ(const vv_results *a, const vv_results *b) {
  if (a->count != b->count) return "a different number of hits";
  for (size_t i = 0; i < a->count; i++) {
    const vv_hit *x = &a->hits[i], *y = &b->hits[i];
    if (x->id_len != y->id_len || memcmp(x->id, y->id, x->id_len)) return "a different id";
    if (memcmp(&x->distance, &y->distance, sizeof x->distance)) return "a different distance";
    if (x->meta_len != y->meta_len || (x->meta_len && memcmp(x->meta, y->meta, x->meta_len))) return "different metadata";
    if (!x->vector != !y->vector || (x->vector && memcmp(x->vector, y->vector, DIM * sizeof(float))))
      return "a different vector";
  }
  return NULL;
}

static vv_cache_info cache_info(vv_db *db) {
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  return ci;
}

/* Empties the cache and gives it `cap` bytes. */
static int cold_cache(vv_db *db, uint64_t cap) {
  int rc = vv_db_set_cache_size(db, 1);
  return rc ? rc : vv_db_set_cache_size(db, cap);
}

/* ---- the manifest's chunks and their pages --------------------------------------- */

typedef struct chunk_pages {
  vv_mchunk c;
  vv_ptable t;
} chunk_pages;

/* Chunk `which` of the session in dir, with its verified page table. */
static int chunk_at(const char *dir, int encrypted, size_t which, chunk_pages *out) {
  session_ctx sc;
  int rc = session_ctx_open(&sc, dir, encrypted ? kKey : NULL);
  if (rc) return rc;
  if (which >= sc.m.nchunks) rc = VV_E_INVALID;
  if (!rc) {
    out->c = sc.m.chunks[which];
    rc = chunk_table(&sc, &out->c, &out->t);
  }
  session_ctx_close(&sc);
  return rc;
}

/* The row indexes (into data) of the live rows of a page, read from the
 * page itself before any damage: -1 terminated, at most `cap`. */
static int page_rows(const char *dir, int encrypted, const chunk_pages *cp, uint32_t page, int *rows, int cap) {
  session_ctx sc;
  int rc = session_ctx_open(&sc, dir, encrypted ? kKey : NULL);
  if (rc) return rc;
  vv_buf buf = {0};
  const unsigned char *plain;
  size_t len;
  vv_error err = {{0}};
  vv_chunk_view v;
  rc = vv_paged_read_page(&sc.sc, &cp->c.ref, VV_OBJ_KIND_CHUNK, cp->c.seq, &cp->t, page, &buf, &plain, &len, &err);
  if (!rc) rc = vv_chunk_decode(plain, len, DIM, &v);
  int n = 0;
  for (uint32_t i = 0; !rc && i < v.count && n + 1 < cap; i++)
    if (v.ids[i] && v.id_lens[i] == 7) rows[n++] = atoi(v.ids[i] + 3);
  rows[n] = -1;
  if (!rc) vv_chunk_view_free(&v);
  vv_buf_free(&buf);
  session_ctx_close(&sc);
  return rc;
}

static int in_rows(const int *rows, int i) {
  for (; *rows >= 0; rows++)
    if (*rows == i) return 1;
  return 0;
}

static int names_page(const vv_error *err, const chunk_pages *cp, uint32_t page) {
  char want[64];
  strf(want, sizeof want, "(seq %llu) page %u ", (unsigned long long)cp->c.seq, page);
  int ok = strstr(err->message, cp->c.ref.name) && strstr(err->message, "chunk object") && strstr(err->message, want);
  if (!ok) fprintf(stderr, "  message does not name %s %s: \"%s\"\n", cp->c.ref.name, want, err->message);
  return ok;
}

static int object_path(const char *dir, const char *name, char out[256]) {
  return strf(out, 256, "%s/objects/%s", dir, name);
}

/* ============================================================================ */

/* The same queries give the same hits (ids, distances, metadata, vectors,
 * bit for bit) on a cold cache, a warm one, and caches of a few pages, of
 * about half the session, and of all of it: every metric, sealed or not. */
static void same_results_body(vv_metric metric, int encrypted) {
  VV_NOTE("metric %d, %s", (int)metric, encrypted ? "encrypted" : "plaintext");
  fixture x;
  VV_REQUIRE(fixture_open(&x, 360, metric, encrypted) == VV_OK);
  const char *dir = x.dir;
  data *d = x.d;
  vv_db *db = NULL;
  vv_error err = {{0}};
  VV_REQUIRE(load(dir, encrypted, 1, NULL, &db, &err) == VV_OK);
  const uint64_t big = (uint64_t)64 << 20;
  enum { NQ = 10, K = 8 };
  vv_results *base[NQ];
  vv_search_opts o = {.include_vector = 1, .err = &err};
  /* Cold: each query on an empty cache. */
  for (int qi = 0; qi < NQ; qi++) {
    float q[DIM];
    query_of(d, qi, q);
    VV_REQUIRE(cold_cache(db, big) == VV_OK);
    VV_REQUIRE(vv_db_search(db, q, K, &o, &base[qi]) == VV_OK);
    VV_CHECK(base[qi]->count == K);
  }
  /* Everything read once: the cache's size then, and its mean entry. */
  size_t loaded;
  VV_REQUIRE(vv_db_preload(db, NULL, 0, NULL, NULL, &loaded) == VV_OK);
  vv_cache_info all = cache_info(db);
  VV_REQUIRE(all.entries > 20 && all.bytes < big);
  uint64_t mean = all.bytes / all.entries;
  const uint64_t caps[4] = {big, 3 * mean, all.bytes / 2, all.bytes};
  static const char *const names[4] = {"warm", "a few pages", "half", "all"};
  for (int c = 0; c < 4; c++) {
    if (c) VV_REQUIRE(cold_cache(db, caps[c]) == VV_OK);
    vv_cache_info before = cache_info(db);
    for (int round = 0; round < 2; round++)
      for (int qi = 0; qi < NQ; qi++) {
        float q[DIM];
        query_of(d, qi, q);
        vv_results *r = NULL;
        VV_REQUIRE(vv_db_search(db, q, K, &o, &r) == VV_OK);
        const char *why = results_differ(r, base[qi]);
        VV_CHECK(why == NULL);
        if (why) fprintf(stderr, "  %s, round %d, query %d: %s\n", names[c], round, qi, why);
        vv_results_free(r);
        vv_cache_info now = cache_info(db);
        VV_CHECK(now.bytes <= now.capacity);
      }
    vv_cache_info after = cache_info(db);
    if (c == 0) VV_CHECK(after.misses == before.misses); /* warm: nothing read */
    if (c == 1) VV_CHECK(after.evictions > before.evictions);
  }
  /* A batch on three threads agrees too, on the tiny cache. */
  float qs[NQ][DIM];
  for (int qi = 0; qi < NQ; qi++) query_of(d, qi, qs[qi]);
  VV_REQUIRE(cold_cache(db, caps[1]) == VV_OK);
  vv_results *batch[NQ];
  vv_search_opts bo = {.include_vector = 1, .threads = 3};
  VV_REQUIRE(vv_db_search_batch(db, &qs[0][0], NQ, K, &bo, batch) == VV_OK);
  for (int qi = 0; qi < NQ; qi++) {
    VV_CHECK(results_differ(batch[qi], base[qi]) == NULL);
    vv_results_free(batch[qi]);
    vv_results_free(base[qi]);
  }
  vv_db_free(db);
  fixture_close(&x);
}

VV_TEST(same_results_cold_warm_and_at_three_cache_sizes) {
  static const vv_metric metrics[] = {VV_METRIC_L2, VV_METRIC_DOT, VV_METRIC_COSINE};
  for (int mi = 0; mi < 3; mi++)
    for (int enc = 0; enc < 2; enc++) same_results_body(metrics[mi], enc);
}

/* ---- damage confined to a page ---------------------------------------------------- */

/* Which rows a get fails for on a lazy load of `dir`: exactly `bad` (the
 * rows of page `page` of cp), each with CHUNK_CORRUPT naming the object and
 * the page; every other row returns its data. An eager load fails, naming
 * the object. */
static void only_the_page_fails(const char *dir, int encrypted, const data *d, const chunk_pages *cp, uint32_t page,
                                const int *bad) {
  /* The rows of the chunk's other undamaged pages (page 0 and the last). */
  int others[2 * CHUNK + 2], n0 = 0;
  VV_REQUIRE(page_rows(dir, encrypted, cp, 0, others, CHUNK + 1) == VV_OK);
  while (others[n0] >= 0) n0++;
  VV_REQUIRE(page_rows(dir, encrypted, cp, cp->t.npages - 1, others + n0, CHUNK + 1) == VV_OK);
  vv_db *db = NULL;
  vv_error err = {{0}};
  VV_REQUIRE(load(dir, encrypted, 1, NULL, &db, &err) == VV_OK);
  int failed = 0, wrong = 0, same_chunk_ok = 0;
  for (int i = 0; i < d->n; i++) {
    memset(&err, 0, sizeof err);
    int rc = get_exact(db, d, i, &err);
    if (in_rows(bad, i)) {
      failed += rc == VV_E_CHUNK_CORRUPT;
      if (rc != VV_E_CHUNK_CORRUPT || !names_page(&err, cp, page)) wrong++;
    } else {
      if (rc) {
        wrong++;
        fprintf(stderr, "  row %d outside the page: %s (%s)\n", i, vv_status_code(rc), err.message);
      }
      same_chunk_ok += !rc && in_rows(others, i);
    }
  }
  VV_CHECK(failed > 0 && wrong == 0);
  VV_CHECK(same_chunk_ok > 0 && others[0] >= 0);
  /* Gets of it fail again (nothing bad was cached), others still work. */
  memset(&err, 0, sizeof err);
  VV_CHECK(get_exact(db, d, bad[0], &err) == VV_E_CHUNK_CORRUPT && names_page(&err, cp, page));
  /* A search that needs the page says so; one that does not, works. */
  memset(&err, 0, sizeof err);
  vv_search_opts o = {.err = &err, .rerank = 1, .ef_search = 16};
  vv_results *r = NULL;
  VV_CHECK(vv_db_search(db, d->vec[bad[0]], 1, &o, &r) == VV_E_CHUNK_CORRUPT && r == NULL);
  VV_CHECK(names_page(&err, cp, page));
  int good = bad[0] >= CHUNK ? bad[0] - CHUNK : bad[0] + CHUNK;
  while (in_rows(bad, good)) good++;
  VV_CHECK(vv_db_search(db, d->vec[good], 1, &o, &r) == VV_OK && r && r->count == 1);
  vv_results_free(r);
  vv_db_free(db);
  db = NULL;
  memset(&err, 0, sizeof err);
  VV_CHECK(load(dir, encrypted, 0, NULL, &db, &err) == VV_E_CHUNK_CORRUPT && db == NULL);
  VV_CHECK(strstr(err.message, cp->c.ref.name) != NULL);
}

VV_TEST(a_flipped_bit_fails_only_the_reads_of_its_page) {
  for (int enc = 0; enc < 2; enc++) {
    VV_NOTE("%s", enc ? "encrypted" : "plaintext");
    fixture x;
    VV_REQUIRE(fixture_open(&x, 240, VV_METRIC_L2, enc) == VV_OK);
    const char *dir = x.dir;
    data *d = x.d;
    chunk_pages cp;
    VV_REQUIRE(chunk_at(dir, enc, 1, &cp) == VV_OK);
    VV_REQUIRE(cp.t.npages >= 4);
    const uint32_t page = 2;
    int bad[CHUNK + 1];
    VV_REQUIRE(page_rows(dir, enc, &cp, page, bad, CHUNK + 1) == VV_OK && bad[0] >= 0);
    char path[256];
    object_path(dir, cp.c.ref.name, path);
    size_t len;
    unsigned char *f = read_all(path, &len);
    VV_REQUIRE(f && len == cp.c.ref.bytes);
    f[cp.t.off[page] + (cp.t.off[page + 1] - cp.t.off[page]) / 2] ^= 0x10;
    VV_REQUIRE(write_all(path, f, len) == 0);
    free(f);
    only_the_page_fails(dir, enc, d, &cp, page, bad);
    vv_ptable_free(&cp.t);
    fixture_close(&x);
  }
}

/* Pages 1 and 2 of a chunk swapped in the file (the name, which hashes the
 * header and table, still matches), or page 1 replaced by page 1 of another
 * chunk of the same length: the table's check of each page refuses them. */
VV_TEST(pages_swapped_or_copied_from_another_object_are_refused) {
  for (int enc = 0; enc < 2; enc++)
    for (int copy = 0; copy < 2; copy++) {
      VV_NOTE("%s, %s", enc ? "encrypted" : "plaintext", copy ? "copied from another chunk" : "swapped");
      fixture x;
      VV_REQUIRE(fixture_open(&x, 240, VV_METRIC_L2, enc) == VV_OK);
      const char *dir = x.dir;
      data *d = x.d;
      chunk_pages a, b;
      VV_REQUIRE(chunk_at(dir, enc, 1, &a) == VV_OK && chunk_at(dir, enc, 2, &b) == VV_OK);
      VV_REQUIRE(a.t.npages >= 4);
      uint64_t l1 = a.t.off[2] - a.t.off[1], l2 = a.t.off[3] - a.t.off[2], lb = b.t.off[2] - b.t.off[1];
      VV_REQUIRE(l1 == l2 && l1 == lb); /* full pages of same-sized rows */
      int bad1[CHUNK + 1], bad2[CHUNK + 1];
      VV_REQUIRE(page_rows(dir, enc, &a, 1, bad1, CHUNK + 1) == VV_OK);
      VV_REQUIRE(page_rows(dir, enc, &a, 2, bad2, CHUNK + 1) == VV_OK);
      char pa[256], pb[256];
      object_path(dir, a.c.ref.name, pa);
      object_path(dir, b.c.ref.name, pb);
      size_t la, lbf;
      unsigned char *fa = read_all(pa, &la), *fb = read_all(pb, &lbf);
      VV_REQUIRE(fa && fb);
      unsigned char *tmp = malloc(l1);
      memcpy(tmp, fa + a.t.off[1], l1);
      if (copy) {
        memcpy(fa + a.t.off[1], fb + b.t.off[1], l1);
      } else {
        memcpy(fa + a.t.off[1], fa + a.t.off[2], l1);
        memcpy(fa + a.t.off[2], tmp, l1);
      }
      VV_REQUIRE(write_all(pa, fa, la) == 0);
      /* Page 1 fails (and page 2, swapped); the rest of the chunk reads. */
      int bad[2 * CHUNK + 2], n = 0;
      for (int i = 0; bad1[i] >= 0; i++) bad[n++] = bad1[i];
      for (int i = 0; !copy && bad2[i] >= 0; i++) bad[n++] = bad2[i];
      bad[n] = -1;
      /* only_the_page_fails names page 1: a swap's page 2 failures name page 2. */
      if (copy) {
        only_the_page_fails(dir, enc, d, &a, 1, bad);
      } else {
        vv_db *db = NULL;
        vv_error err = {{0}};
        VV_REQUIRE(load(dir, enc, 1, NULL, &db, &err) == VV_OK);
        for (int p = 1; p <= 2; p++) {
          const int *rows = p == 1 ? bad1 : bad2;
          for (int i = 0; rows[i] >= 0; i++) {
            memset(&err, 0, sizeof err);
            VV_CHECK(get_exact(db, d, rows[i], &err) == VV_E_CHUNK_CORRUPT && names_page(&err, &a, (uint32_t)p));
          }
        }
        for (int i = 0; i < d->n; i++)
          if (!in_rows(bad, i)) VV_CHECK(get_exact(db, d, i, NULL) == VV_OK);
        vv_db_free(db);
      }
      free(tmp);
      free(fa);
      free(fb);
      vv_ptable_free(&a.t);
      vv_ptable_free(&b.t);
      fixture_close(&x);
    }
}

/* Below the table: an encrypted page whose table entry was forged to match
 * (its tag copied along with it) still fails to open, because its
 * associated data binds the object's header (seq, rows, pages), the
 * session, the page number, its first row and its rows. */
VV_TEST(a_sealed_page_opens_only_in_its_place) {
  fixture x;
  VV_REQUIRE(fixture_open(&x, 240, VV_METRIC_L2, 1) == VV_OK);
  const char *dir = x.dir;
  session_ctx sc;
  VV_REQUIRE(session_ctx_open(&sc, dir, kKey) == VV_OK);
  chunk_pages a, b;
  VV_REQUIRE(chunk_at(dir, 1, 1, &a) == VV_OK && chunk_at(dir, 1, 2, &b) == VV_OK);
  VV_REQUIRE(a.t.npages >= 3 && b.t.npages >= 2);
  vv_buf buf = {0};
  const unsigned char *plain;
  size_t plen;
  vv_error err = {{0}};
  /* Control: in place, every page opens. */
  for (uint32_t p = 0; p < a.t.npages; p++)
    VV_CHECK(vv_paged_read_page(&sc.sc, &a.c.ref, VV_OBJ_KIND_CHUNK, a.c.seq, &a.t, p, &buf, &plain, &plen, &err) ==
             VV_OK);
  char pa[256], pb[256];
  object_path(dir, a.c.ref.name, pa);
  object_path(dir, b.c.ref.name, pb);
  size_t la, lb;
  unsigned char *fa = read_all(pa, &la), *fb = read_all(pb, &lb);
  unsigned char *orig = malloc(la);
  memcpy(orig, fa, la);
  uint64_t l1 = a.t.off[2] - a.t.off[1];
  VV_REQUIRE(l1 == a.t.off[3] - a.t.off[2] && l1 == b.t.off[2] - b.t.off[1]);
  const unsigned cb = VV_PAGE_CHECK_BYTES;

  /* Pages 1 and 2 swapped, and their checks with them. */
  memcpy(fa + a.t.off[1], orig + a.t.off[2], l1);
  memcpy(fa + a.t.off[2], orig + a.t.off[1], l1);
  VV_REQUIRE(write_all(pa, fa, la) == 0);
  vv_ptable forged = a.t;
  unsigned char *checks = malloc((size_t)a.t.npages * cb);
  memcpy(checks, a.t.checks, (size_t)a.t.npages * cb);
  memcpy(checks + cb, a.t.checks + 2 * cb, cb);
  memcpy(checks + 2 * cb, a.t.checks + cb, cb);
  forged.checks = checks;
  for (uint32_t p = 1; p <= 2; p++) {
    err.message[0] = '\0';
    VV_CHECK(vv_paged_read_page(&sc.sc, &a.c.ref, VV_OBJ_KIND_CHUNK, a.c.seq, &forged, p, &buf, &plain, &plen, &err) ==
             VV_E_CHUNK_CORRUPT);
    VV_CHECK(strstr(err.message, "authentication failed") != NULL);
  }
  /* With the true checks, the table refuses them first. */
  err.message[0] = '\0';
  VV_CHECK(vv_paged_read_page(&sc.sc, &a.c.ref, VV_OBJ_KIND_CHUNK, a.c.seq, &a.t, 1, &buf, &plain, &plen, &err) ==
           VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "does not match the page table") != NULL);

  /* Page 1 of chunk b, with its check, at page 1 of chunk a. */
  memcpy(fa, orig, la);
  memcpy(fa + a.t.off[1], fb + b.t.off[1], l1);
  VV_REQUIRE(write_all(pa, fa, la) == 0);
  memcpy(checks, a.t.checks, (size_t)a.t.npages * cb);
  memcpy(checks + cb, b.t.checks + cb, cb);
  err.message[0] = '\0';
  VV_CHECK(vv_paged_read_page(&sc.sc, &a.c.ref, VV_OBJ_KIND_CHUNK, a.c.seq, &forged, 1, &buf, &plain, &plen, &err) ==
           VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "authentication failed") != NULL && strstr(err.message, "page 1") != NULL);

  /* The same page read for another session: refused. */
  memcpy(fa, orig, la);
  VV_REQUIRE(write_all(pa, fa, la) == 0);
  sc.sc.session_id[3] ^= 1;
  err.message[0] = '\0';
  VV_CHECK(vv_paged_read_page(&sc.sc, &a.c.ref, VV_OBJ_KIND_CHUNK, a.c.seq, &a.t, 1, &buf, &plain, &plen, &err) ==
           VV_E_CHUNK_CORRUPT);
  sc.sc.session_id[3] ^= 1;
  VV_CHECK(vv_paged_read_page(&sc.sc, &a.c.ref, VV_OBJ_KIND_CHUNK, a.c.seq, &a.t, 1, &buf, &plain, &plen, &err) ==
           VV_OK);
  free(checks);
  free(orig);
  free(fa);
  free(fb);
  vv_buf_free(&buf);
  vv_ptable_free(&a.t);
  vv_ptable_free(&b.t);
  session_ctx_close(&sc);
  fixture_close(&x);
}

/* ---- I/O faults on page reads -------------------------------------------------- */

enum { PF_EIO_TABLE, PF_EIO_PAGE, PF_ENOENT, PF_SHORT, PF_TRUNCATED, NPF };
static const char *const kPfName[NPF] = {"EIO reading the page table", "EIO reading the page", "ENOENT on open",
                                         "reads of 7 bytes at most", "the file truncated"};
static const int kPfStatus[NPF] = {VV_E_IO, VV_E_IO, VV_E_CHUNK_MISSING, VV_OK, VV_E_CHUNK_CORRUPT};

/* A get of a row of chunk 1 under one fault: the right status, nothing new
 * cached (or, for the page's own read, only the table read before it),
 * and the same get then works and caches the page. */
VV_TEST(page_reads_under_injected_faults) {
  fixture x;
  VV_REQUIRE(fixture_open(&x, 240, VV_METRIC_L2, 1) == VV_OK);
  const char *dir = x.dir;
  data *d = x.d;
  chunk_pages cp;
  VV_REQUIRE(chunk_at(dir, 1, 1, &cp) == VV_OK);
  int rows[CHUNK + 1];
  VV_REQUIRE(page_rows(dir, 1, &cp, 1, rows, CHUNK + 1) == VV_OK && rows[0] >= 0);
  const int row = rows[0];
  VV_REQUIRE(page_rows(dir, 1, &cp, 0, rows, CHUNK + 1) == VV_OK && rows[0] >= 0);
  const int first0 = rows[0]; /* a row of page 0 of the same chunk */
  char path[256], aside[256];
  object_path(dir, cp.c.ref.name, path);
  strf(aside, sizeof aside, "%s/aside", x.root);
  for (int fault = 0; fault < NPF; fault++) {
    VV_NOTE("%s", kPfName[fault]);
    fio f;
    fio_init(&f, NULL);
    vv_db *db = NULL;
    vv_error err = {{0}};
    VV_REQUIRE(load(dir, 1, 1, fio_io(&f), &db, &err) == VV_OK);
    if (fault == PF_EIO_PAGE) VV_REQUIRE(get_exact(db, d, first0, NULL) == VV_OK); /* the table, cleanly */
    fio_reset(&f);
    f.suffix = cp.c.ref.name;
    f.err = fault == PF_ENOENT ? ENOENT : EIO;
    f.kinds = FIO_BIT(fault == PF_ENOENT ? FIO_OPEN : FIO_READ);
    f.fail_at = fault == PF_SHORT || fault == PF_TRUNCATED ? 0 : 1;
    f.short_read = fault == PF_SHORT ? 7 : 0;
    if (fault == PF_TRUNCATED) {
      size_t len;
      unsigned char *all = read_all(path, &len);
      VV_REQUIRE(all && write_all(aside, all, len) == 0 && truncate(path, (off_t)len - 1) == 0);
      free(all);
    }
    vv_cache_info before = cache_info(db);
    memset(&err, 0, sizeof err);
    int rc = get_exact(db, d, row, &err);
    VV_CHECK(rc == kPfStatus[fault]);
    if (rc != kPfStatus[fault]) fprintf(stderr, "  returned %s (%s)\n", vv_status_code(rc), err.message);
    vv_cache_info after = cache_info(db);
    if (rc) {
      VV_CHECK(after.entries == before.entries && after.bytes == before.bytes);
      VV_CHECK(strstr(err.message, cp.c.ref.name) != NULL);
      if (fault == PF_EIO_PAGE) VV_CHECK(names_page(&err, &cp, 1));
    } else {
      VV_CHECK(after.entries == before.entries + 2); /* the table and the page */
    }
    VV_CHECK(fault == PF_SHORT || fault == PF_TRUNCATED || f.injected == 1);
    /* The fault gone: the same get works, and its page is cached. */
    if (fault == PF_TRUNCATED) VV_REQUIRE(rename(aside, path) == 0);
    f.fail_at = 0;
    f.short_read = 0;
    before = cache_info(db);
    VV_CHECK(get_exact(db, d, row, NULL) == VV_OK);
    after = cache_info(db);
    if (rc) VV_CHECK(after.entries > before.entries);
    fio_reset(&f);
    VV_CHECK(get_exact(db, d, row, NULL) == VV_OK && f.all_ops == 0); /* from the cache */
    vv_db_free(db);
    fio_destroy(&f);
  }
  vv_ptable_free(&cp.t);
  fixture_close(&x);
}

/* ---- many searches on a cache of a few pages ------------------------------------- */

typedef struct searcher {
  vv_db *db;
  const data *d;
  int id, iters;
  vv_results **expect; /* NQ single-threaded answers */
  int failures, wrong;
} searcher;

enum { CQ = 12, CK = 6 };

static void *search_thread(void *arg) {
  searcher *s = arg;
  for (int it = 0; it < s->iters; it++) {
    int qi = (it * 7 + s->id * 3) % CQ;
    float q[DIM];
    query_of(s->d, qi, q);
    vv_results *r = NULL;
    vv_search_opts o = {.include_vector = it & 1};
    if (vv_db_search(s->db, q, CK, &o, &r)) {
      s->failures++;
    } else {
      /* Vectors are asked for on odd rounds only: compare the rest. */
      const vv_results *e = s->expect[qi];
      int same = r->count == e->count;
      for (size_t i = 0; same && i < r->count; i++)
        same = r->hits[i].id_len == e->hits[i].id_len && !memcmp(r->hits[i].id, e->hits[i].id, e->hits[i].id_len) &&
               r->hits[i].distance == e->hits[i].distance && r->hits[i].meta_len == e->hits[i].meta_len &&
               !memcmp(r->hits[i].meta, e->hits[i].meta, e->hits[i].meta_len) &&
               (!r->hits[i].vector || !memcmp(r->hits[i].vector, e->hits[i].vector, DIM * sizeof(float)));
      s->wrong += !same;
    }
    vv_results_free(r);
  }
  return NULL;
}

/* Four threads search an encrypted session through a cache with room for
 * about three pages: constant eviction, the bound never passed (sampled
 * all along), and every answer the one a single thread got with a cache
 * holding everything. */
VV_TEST(concurrent_searches_on_a_cache_of_a_few_pages) {
  fixture x;
  VV_REQUIRE(fixture_open(&x, 360, VV_METRIC_COSINE, 1) == VV_OK);
  const char *dir = x.dir;
  data *d = x.d;
  vv_db *db = NULL;
  vv_error err = {{0}};
  VV_REQUIRE(load(dir, 1, 1, NULL, &db, &err) == VV_OK);
  vv_results *expect[CQ];
  for (int qi = 0; qi < CQ; qi++) {
    float q[DIM];
    query_of(d, qi, q);
    vv_search_opts o = {.include_vector = 1};
    VV_REQUIRE(vv_db_search(db, q, CK, &o, &expect[qi]) == VV_OK);
  }
  vv_cache_info ci = cache_info(db);
  VV_REQUIRE(ci.entries > 10);
  uint64_t cap = 3 * ci.bytes / ci.entries;
  VV_REQUIRE(vv_db_set_cache_size(db, cap) == VV_OK);
  vv_cache_info start = cache_info(db);
  cache_watch w = {.db = db};
  atomic_init(&w.stop, 0);
  pthread_t wt, th[4];
  VV_REQUIRE(pthread_create(&wt, NULL, cache_watch_thread, &w) == 0);
  searcher s[4];
  for (int t = 0; t < 4; t++) {
    s[t] = (searcher){.db = db, .d = d, .id = t, .iters = 24, .expect = expect};
    VV_REQUIRE(pthread_create(&th[t], NULL, search_thread, &s[t]) == 0);
  }
  for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
  atomic_store(&w.stop, 1);
  pthread_join(wt, NULL);
  for (int t = 0; t < 4; t++) {
    VV_CHECK(s[t].failures == 0 && s[t].wrong == 0);
    if (s[t].failures || s[t].wrong) fprintf(stderr, "  thread %d: %d failed, %d wrong\n", t, s[t].failures, s[t].wrong);
  }
  ci = cache_info(db);
  VV_CHECK(w.samples > 0 && w.over == 0);
  VV_CHECK(ci.capacity == cap && ci.bytes <= cap && ci.evictions > start.evictions + 4 * 24);
  for (int qi = 0; qi < CQ; qi++) vv_results_free(expect[qi]);
  vv_db_free(db);
  fixture_close(&x);
}

/* ---- heavy deletes ------------------------------------------------------------ */

/* 90% of a lazily loaded session deleted: a search with a small beam still
 * returns k live hits, each with its exact distance, and, as it never scans
 * the session (the walk passes through deleted nodes, and widens if it
 * still comes up short), reads at most a page and a page table per
 * re-ranked candidate, far fewer than the session holds. */
VV_TEST(heavy_deletes_still_return_k_and_read_few_pages) {
  fixture x;
  VV_REQUIRE(fixture_open(&x, MAXN, VV_METRIC_L2, 0) == VV_OK);
  const char *dir = x.dir;
  data *d = x.d;
  vv_manifest m;
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  uint64_t pages = 0;
  for (size_t i = 0; i < m.nchunks; i++) pages += object_npages(dir, m.chunks[i].ref.name);
  vv_manifest_free(&m);
  VV_REQUIRE(pages >= 40);
  vv_db *db = NULL;
  vv_error err = {{0}};
  VV_REQUIRE(load(dir, 0, 1, NULL, &db, &err) == VV_OK);
  for (int i = 0; i < d->n; i++) {
    if (i % 10 == 3) continue;
    char id[16];
    int len = id_of(i, id), removed = 0;
    VV_REQUIRE(vv_db_delete(db, id, (size_t)len, &removed) == VV_OK && removed == 1);
    d->live[i] = 0;
  }
  VV_REQUIRE(vv_db_size(db) == (uint64_t)d->n / 10);
  enum { K = 10, RERANK = 20 };
  for (int qi = 0; qi < 8; qi++) {
    float q[DIM];
    query_of(d, qi, q);
    VV_REQUIRE(cold_cache(db, (uint64_t)64 << 20) == VV_OK);
    vv_cache_info before = cache_info(db);
    vv_results *r = NULL;
    vv_search_opts o = {.ef_search = K, .rerank = RERANK};
    VV_REQUIRE(vv_db_search(db, q, K, &o, &r) == VV_OK);
    vv_cache_info after = cache_info(db);
    VV_CHECK(r->count == K);
    for (size_t h = 0; h < r->count; h++) {
      char id[16];
      memcpy(id, r->hits[h].id, r->hits[h].id_len);
      id[r->hits[h].id_len] = '\0';
      int i = atoi(id + 3);
      VV_CHECK(i >= 0 && i < d->n && d->live[i]);
      double dd = 0;
      for (int k = 0; k < DIM; k++) dd += ((double)q[k] - d->vec[i][k]) * ((double)q[k] - d->vec[i][k]);
      VV_CHECK_NEAR(r->hits[h].distance, sqrt(dd), 1e-4 * (1 + sqrt(dd)));
      if (h) VV_CHECK(r->hits[h - 1].distance <= r->hits[h].distance);
    }
    /* Page tables and pages: at most one of each per re-ranked candidate. */
    uint64_t read = after.misses - before.misses;
    VV_CHECK(read <= 2 * RERANK && read < pages / 2);
    if (read > 2 * RERANK) fprintf(stderr, "  query %d read %llu pages and tables\n", qi, (unsigned long long)read);
    vv_results_free(r);
  }
  vv_db_free(db);
  fixture_close(&x);
}

VV_TEST_MAIN()
