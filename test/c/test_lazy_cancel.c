/*
 * test/c/test_lazy_cancel.c: a search of a lazily loaded session stops
 * before its next chunk read once vv_search_opts.cancel says so (the hook
 * behind searchAsync's AbortSignal).
 *
 * Owns: the cancel hook is polled before each page a search reads, on the
 * exact scan (flat) and on the re-ranking of a graph walk (HNSW, whose
 * pages are read by a few threads at once); a cancelled search fails with
 * VV_E_ABORTED having read no page after the hook said stop; without the
 * hook, or with one that never stops, results are as before. Counting is by
 * the cache's miss counter (page tables and pages), not by time: a chunk's
 * page table is read when the search first needs one of its rows, before
 * the poll for that row's page.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vecvault.h"
#include "vvtest.h"

#include "support.h"

#define DIM 8
#define N 400
#define CHUNK 40

static void vec_of(int i, float *v) {
  for (int d = 0; d < DIM; d++) v[d] = (float)((i * 7 + d * 3) % 11) - 5.0f + 0.01f * (float)i;
}

/* A plaintext session of N vectors in chunks of CHUNK in `root`/s, opened
 * lazily; NULL on a fixture failure. */
static vv_db *lazy_session(char root[64], vv_index_kind kind) {
  if (make_root(root)) return NULL;
  char dir[96];
  snprintf(dir, sizeof dir, "%s/s", root);
  vv_config c = {.dimension = DIM, .metric = VV_METRIC_L2, .index = kind, .chunk_size = CHUNK};
  vv_db *db = NULL;
  if (vv_db_create(&c, &db)) return NULL;
  int rc = vv_db_set_secret(db, 0, NULL, NULL, 0);
  for (int i = 0; i < N && !rc; i++) {
    char id[16];
    float v[DIM];
    vec_of(i, v);
    vv_item it = {id, (size_t)snprintf(id, sizeof id, "id-%03d", i), v, NULL, 0, NULL, 0};
    rc = vv_db_add(db, &it);
  }
  vv_error err;
  if (!rc) rc = vv_db_save(db, dir, NULL, NULL, NULL, NULL, &err);
  vv_db_free(db);
  db = NULL;
  vv_load_opts o = {.lazy = 1, .threads = 1};
  vv_load_stats st;
  if (!rc) rc = vv_db_load(dir, &o, NULL, NULL, &db, &st, &err);
  if (!rc && !st.lazy) rc = -1;
  if (rc) {
    vv_db_free(db);
    return NULL;
  }
  return db;
}

typedef struct counter {
  atomic_int polls; /* times the hook was asked (from the read threads too) */
  int stop_at;      /* answer "stop" from this poll on (0 = never) */
} counter;

static int cancel_after(void *ctx) {
  counter *c = ctx;
  int n = atomic_fetch_add(&c->polls, 1) + 1;
  return c->stop_at && n >= c->stop_at;
}

static uint64_t misses(vv_db *db) {
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  return ci.misses;
}

static void stops_before_the_next_read(vv_index_kind kind) {
  char root[64];
  vv_db *db = lazy_session(root, kind);
  VV_REQUIRE(db != NULL);
  float q[DIM];
  vec_of(N / 2, q);

  /* A hook that never stops: the search runs to its end, polling once per
   * page it reads (from a cold cache, every page it needs). */
  counter never = {0, 0};
  vv_search_opts o = {.rerank = 64, .cancel = cancel_after, .cancel_ctx = &never};
  vv_results *res = NULL;
  uint64_t m0 = misses(db);
  VV_REQUIRE(vv_db_search(db, q, 5, &o, &res) == VV_OK);
  VV_CHECK(res->count == 5);
  vv_results_free(res);
  uint64_t read_all = misses(db) - m0;
  uint64_t pages = (uint64_t)atomic_load(&never.polls);
  VV_CHECK(pages >= 2 && read_all > pages);
  /* The rest were page tables: the flat scan reads one chunk's table
   * before each chunk's pages; the re-rank locates every candidate first. */
  uint64_t tables = read_all - pages;

  /* From a cold cache, stop at the second poll: exactly one page was read,
   * after the table(s) it needed. */
  VV_REQUIRE(vv_db_set_cache_size(db, 1) == VV_OK); /* empties the cache */
  VV_REQUIRE(vv_db_set_cache_size(db, 64u << 20) == VV_OK);
  counter stop = {0, 2};
  o.cancel_ctx = &stop;
  res = NULL;
  m0 = misses(db);
  VV_CHECK(vv_db_search(db, q, 5, &o, &res) == VV_E_ABORTED);
  VV_CHECK(res == NULL);
  VV_CHECK(atomic_load(&stop.polls) >= 2);
  /* The flat scan reads the first chunk's pages, then the next table. */
  char dir[96];
  snprintf(dir, sizeof dir, "%s/s", root);
  vv_manifest mf;
  VV_REQUIRE(read_manifest(dir, &mf) == VV_OK);
  uint32_t first_pages = object_npages(dir, mf.chunks[0].ref.name);
  vv_manifest_free(&mf);
  VV_REQUIRE(first_pages >= 1);
  uint64_t tables_before = kind == VV_INDEX_FLAT ? (first_pages >= 2 ? 1 : 2) : tables;
  VV_CHECK(misses(db) - m0 == tables_before + 1);

  /* Stopped at the first poll: no page read at all. */
  counter first = {0, 1};
  o.cancel_ctx = &first;
  VV_REQUIRE(vv_db_set_cache_size(db, 1) == VV_OK);
  VV_REQUIRE(vv_db_set_cache_size(db, 64u << 20) == VV_OK);
  m0 = misses(db);
  VV_CHECK(vv_db_search(db, q, 5, &o, &res) == VV_E_ABORTED);
  VV_CHECK(misses(db) - m0 == (kind == VV_INDEX_FLAT ? 1 : tables));

  /* The database is unharmed: the same search without a hook answers. */
  o.cancel = NULL;
  VV_REQUIRE(vv_db_search(db, q, 5, &o, &res) == VV_OK);
  VV_CHECK(res->count == 5);
  vv_results_free(res);
  vv_db_free(db);
  rm_rf(root);
}

VV_TEST(flat_exact_scan_stops_before_its_next_page) { stops_before_the_next_read(VV_INDEX_FLAT); }
VV_TEST(hnsw_rerank_stops_before_its_next_page) { stops_before_the_next_read(VV_INDEX_HNSW); }

VV_TEST_MAIN()
