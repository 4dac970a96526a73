/*
 * test/c/test_engine.c: the record store, the HNSW graph and the database
 * API, checked against brute force.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "hnsw/hnsw.h"
#include "store/store.h"
#include "vecvault.h"
#include "vvtest.h"

static void rand_vecs(float *v, size_t n, uint32_t dim, uint64_t seed) {
  uint64_t st = seed;
  /* Clustered: 20 centres plus noise, like real embeddings. */
  float centres[20 * 64];
  for (size_t i = 0; i < 20 * (size_t)dim && i < 20 * 64; i++) centres[i] = (float)(vv_unit_double(vv_splitmix64(&st)) * 2 - 1);
  for (size_t i = 0; i < n; i++) {
    size_t c = vv_splitmix64(&st) % 20;
    for (uint32_t d = 0; d < dim; d++)
      v[i * dim + d] = centres[c * dim + d] + (float)(vv_unit_double(vv_splitmix64(&st)) - 0.5) * 0.6f;
  }
}

static vv_db *make_db(uint32_t dim, vv_metric m, vv_index_kind idx, uint32_t threads) {
  vv_config c = {0};
  c.dimension = dim;
  c.metric = m;
  c.index = idx;
  c.threads = threads;
  vv_db *db = NULL;
  if (vv_db_create(&c, &db) != VV_OK) return NULL;
  return db;
}

static int add_n(vv_db *db, const float *v, size_t n, uint32_t dim, size_t id_base) {
  for (size_t i = 0; i < n; i++) {
    char id[32];
    int len = snprintf(id, sizeof id, "v%zu", id_base + i);
    vv_item it = {id, (size_t)len, v + i * dim, NULL, 0, NULL, 0};
    int rc = vv_db_add(db, &it);
    if (rc) return rc;
  }
  return VV_OK;
}

VV_TEST(store_place_lookup_remove_reuse) {
  vv_store s;
  VV_REQUIRE(vv_store_init(&s, 4) == VV_OK);
  VV_REQUIRE(vv_store_reserve(&s, 1000) == VV_OK);
  for (int i = 0; i < 1000; i++) {
    char id[16];
    int len = snprintf(id, sizeof id, "id-%d", i);
    uint32_t slot;
    int was;
    VV_REQUIRE(vv_store_place(&s, id, (size_t)len, NULL, 0, &slot, &was) == VV_OK);
    VV_CHECK(slot == (uint32_t)i && was == 0);
  }
  VV_CHECK(s.nlive == 1000);
  /* Remove every third id: backward-shift deletion must keep others findable. */
  for (int i = 0; i < 1000; i += 3) {
    char id[16];
    int len = snprintf(id, sizeof id, "id-%d", i);
    uint32_t slot = vv_store_lookup(&s, id, (size_t)len);
    VV_REQUIRE(slot == (uint32_t)i);
    vv_store_remove(&s, slot);
  }
  for (int i = 0; i < 1000; i++) {
    char id[16];
    int len = snprintf(id, sizeof id, "id-%d", i);
    uint32_t slot = vv_store_lookup(&s, id, (size_t)len);
    VV_CHECK((i % 3 == 0) ? slot == VV_NO_SLOT : slot == (uint32_t)i);
  }
  /* New ids reuse freed slots before growing. */
  uint64_t high = s.nslots;
  VV_REQUIRE(vv_store_reserve(&s, 10) == VV_OK);
  uint32_t slot;
  int was;
  VV_REQUIRE(vv_store_place(&s, "fresh", 5, "{}", 2, &slot, &was) == VV_OK);
  VV_CHECK(slot % 3 == 0 && slot < 1000 && s.nslots == high);
  VV_CHECK(vv_store_rec(&s, slot)->meta_len == 2);
  /* Upsert keeps the slot and replaces metadata. */
  uint32_t again;
  VV_REQUIRE(vv_store_place(&s, "fresh", 5, "{\"a\":1}", 7, &again, &was) == VV_OK);
  VV_CHECK(again == slot && was == 1 && vv_store_rec(&s, slot)->meta_len == 7);
  vv_store_destroy(&s);
}

VV_TEST(db_validation) {
  vv_db *db = make_db(3, VV_METRIC_COSINE, VV_INDEX_HNSW, 1);
  VV_REQUIRE(db);
  float ok[3] = {1, 2, 3}, zero[3] = {0, 0, 0}, nan[3] = {1, NAN, 0}, inf[3] = {INFINITY, 0, 0};
  vv_item it = {"a", 1, ok, NULL, 0, NULL, 0};
  VV_CHECK(vv_db_add(db, &it) == VV_OK);
  it.vector = zero;
  VV_CHECK(vv_db_add(db, &it) == VV_E_BAD_VECTOR);
  it.vector = nan;
  VV_CHECK(vv_db_add(db, &it) == VV_E_BAD_VECTOR);
  it.vector = inf;
  VV_CHECK(vv_db_add(db, &it) == VV_E_BAD_VECTOR);
  it.vector = ok;
  it.id_len = 0;
  VV_CHECK(vv_db_add(db, &it) == VV_E_BAD_ID);
  it.id_len = VV_MAX_ID_BYTES + 1;
  VV_CHECK(vv_db_add(db, &it) == VV_E_BAD_ID);
  vv_results *r = NULL;
  VV_CHECK(vv_db_search(db, ok, 0, NULL, &r) == VV_E_INVALID && r == NULL);
  VV_CHECK(vv_db_search(db, zero, 1, NULL, &r) == VV_E_BAD_VECTOR && r == NULL);
  VV_CHECK(vv_db_size(db) == 1);
  vv_config bad = {0};
  vv_db *nd = NULL;
  VV_CHECK(vv_db_create(&bad, &nd) == VV_E_INVALID && nd == NULL);
  bad.dimension = VV_MAX_DIMENSION + 1;
  VV_CHECK(vv_db_create(&bad, &nd) == VV_E_INVALID);
  bad.dimension = 4;
  bad.hnsw_m = 1000;
  VV_CHECK(vv_db_create(&bad, &nd) == VV_E_INVALID);
  vv_db_free(db);
  vv_db_free(NULL);
}

/* Exact search must equal brute force, for each metric. */
VV_TEST(flat_matches_brute_force) {
  const uint32_t dim = 16, n = 500;
  float *v = malloc(sizeof(float) * n * dim);
  rand_vecs(v, n, dim, 7);
  vv_metric metrics[3] = {VV_METRIC_L2, VV_METRIC_DOT, VV_METRIC_COSINE};
  for (int mi = 0; mi < 3; mi++) {
    VV_NOTE("metric=%d", mi);
    vv_db *db = make_db(dim, metrics[mi], VV_INDEX_FLAT, 1);
    VV_REQUIRE(db && add_n(db, v, n, dim, 0) == VV_OK);
    const float *q = v + 123 * dim;
    vv_results *r = NULL;
    VV_REQUIRE(vv_db_search(db, q, 10, NULL, &r) == VV_OK);
    VV_CHECK(r->count == 10);
    /* Reference distances in double precision. */
    double best[10];
    int nb = 0;
    double qn = 0;
    for (uint32_t d = 0; d < dim; d++) qn += (double)q[d] * q[d];
    qn = sqrt(qn);
    for (uint32_t i = 0; i < n; i++) {
      double acc = 0, vn = 0;
      for (uint32_t d = 0; d < dim; d++) {
        double a = q[d], b = v[i * dim + d];
        acc += metrics[mi] == VV_METRIC_L2 ? (a - b) * (a - b) : a * b;
        vn += b * b;
      }
      double dist = metrics[mi] == VV_METRIC_L2 ? sqrt(acc)
                    : metrics[mi] == VV_METRIC_DOT ? -acc
                                                   : 1.0 - acc / (qn * sqrt(vn));
      int pos = nb < 10 ? nb++ : 10;
      if (pos == 10 && dist >= best[9]) continue;
      if (pos == 10) pos = 9;
      while (pos > 0 && best[pos - 1] > dist) {
        best[pos] = best[pos - 1];
        pos--;
      }
      best[pos] = dist;
    }
    for (size_t i = 0; i < r->count; i++) {
      VV_CHECK_NEAR(r->hits[i].distance, best[i], 1e-3 * (1 + fabs(best[i])));
      if (i) VV_CHECK(r->hits[i - 1].distance <= r->hits[i].distance);
    }
    VV_CHECK(r->hits[0].id_len == 4 && memcmp(r->hits[0].id, "v123", 4) == 0);
    vv_results_free(r);
    vv_db_free(db);
  }
  free(v);
}

static double recall_at_10(vv_db *hnsw, vv_db *flat, const float *qs, size_t nq, uint32_t dim, uint32_t ef) {
  size_t hit = 0;
  vv_search_opts o = {.ef_search = ef, .threads = 1};
  for (size_t i = 0; i < nq; i++) {
    vv_results *a = NULL, *b = NULL;
    if (vv_db_search(hnsw, qs + i * dim, 10, &o, &a) || vv_db_search(flat, qs + i * dim, 10, NULL, &b)) return -1;
    for (size_t x = 0; x < a->count; x++)
      for (size_t y = 0; y < b->count; y++)
        if (a->hits[x].id_len == b->hits[y].id_len && !memcmp(a->hits[x].id, b->hits[y].id, a->hits[x].id_len)) {
          hit++;
          break;
        }
    vv_results_free(a);
    vv_results_free(b);
  }
  return (double)hit / (double)(nq * 10);
}

VV_TEST(hnsw_recall_parallel_build_and_deletes) {
  const uint32_t dim = 24;
  const size_t n = 4000, nq = 100;
  float *v = malloc(sizeof(float) * n * dim);
  float *q = malloc(sizeof(float) * nq * dim);
  rand_vecs(v, n, dim, 11);
  rand_vecs(q, nq, dim, 12);
  vv_db *h = make_db(dim, VV_METRIC_L2, VV_INDEX_HNSW, 2);
  vv_db *f = make_db(dim, VV_METRIC_L2, VV_INDEX_FLAT, 1);
  VV_REQUIRE(h && f);
  vv_item *items = malloc(sizeof(vv_item) * n);
  char (*ids)[16] = malloc(16 * n);
  for (size_t i = 0; i < n; i++) {
    int len = snprintf(ids[i], 16, "v%zu", i);
    items[i] = (vv_item){ids[i], (size_t)len, v + i * dim, NULL, 0, NULL, 0};
  }
  size_t done = 0;
  VV_REQUIRE(vv_db_add_batch(h, items, n, 2, NULL, NULL, &done) == VV_OK && done == n);
  VV_REQUIRE(vv_db_add_batch(f, items, n, 1, NULL, NULL, &done) == VV_OK);
  double r = recall_at_10(h, f, q, nq, dim, 64);
  VV_NOTE("recall=%.3f", r);
  VV_CHECK(r >= 0.95);

  /* Delete 60%, then every search must still return 10 live results. */
  for (size_t i = 0; i < n; i++) {
    if (i % 5 < 3) {
      int removed;
      VV_CHECK(vv_db_delete(h, ids[i], strlen(ids[i]), &removed) == VV_OK && removed);
      VV_CHECK(vv_db_delete(f, ids[i], strlen(ids[i]), &removed) == VV_OK && removed);
    }
  }
  VV_CHECK(vv_db_size(h) == n - n / 5 * 3);
  r = recall_at_10(h, f, q, nq, dim, 64);
  VV_NOTE("recall after deletes=%.3f", r);
  VV_CHECK(r >= 0.9);
  /* Re-add the deleted ids with new vectors: slots are reused and relinked. */
  rand_vecs(v, n, dim, 99);
  VV_REQUIRE(vv_db_add_batch(h, items, n, 2, NULL, NULL, &done) == VV_OK);
  VV_REQUIRE(vv_db_add_batch(f, items, n, 1, NULL, NULL, &done) == VV_OK);
  VV_CHECK(vv_db_size(h) == n);
  r = recall_at_10(h, f, q, nq, dim, 64);
  VV_NOTE("recall after reuse=%.3f", r);
  VV_CHECK(r >= 0.92);
  vv_db_free(h);
  vv_db_free(f);
  free(items);
  free(ids);
  free(v);
  free(q);
}

VV_TEST(delete_all_then_search_and_get) {
  const uint32_t dim = 8;
  float v[50 * 8];
  rand_vecs(v, 50, dim, 3);
  vv_db *db = make_db(dim, VV_METRIC_COSINE, VV_INDEX_HNSW, 1);
  VV_REQUIRE(db && add_n(db, v, 50, dim, 0) == VV_OK);
  for (int i = 0; i < 49; i++) {
    char id[16];
    int len = snprintf(id, sizeof id, "v%d", i);
    int removed;
    VV_CHECK(vv_db_delete(db, id, (size_t)len, &removed) == VV_OK && removed);
  }
  vv_results *r = NULL;
  VV_REQUIRE(vv_db_search(db, v, 10, NULL, &r) == VV_OK);
  VV_CHECK(r->count == 1 && r->hits[0].id_len == 3 && !memcmp(r->hits[0].id, "v49", 3));
  vv_results_free(r);
  vv_record *rec = NULL;
  VV_CHECK(vv_db_get(db, "v3", 2, &rec) == VV_OK && rec == NULL);
  VV_CHECK(vv_db_get(db, "v49", 3, &rec) == VV_OK && rec != NULL);
  if (rec) {
    double n2 = 0;
    for (uint32_t d = 0; d < dim; d++) n2 += rec->vector[d] * rec->vector[d];
    VV_CHECK_NEAR(n2, 1.0, 1e-5);
  }
  vv_record_free(rec);
  vv_db_free(db);
}

static int abort_after(void *ctx, uint64_t done, uint64_t total) {
  (void)total;
  return done >= *(uint64_t *)ctx;
}

VV_TEST(batch_abort_keeps_whole_groups) {
  const uint32_t dim = 8;
  const size_t n = 2000;
  float *v = malloc(sizeof(float) * n * dim);
  rand_vecs(v, n, dim, 5);
  vv_item *items = malloc(sizeof(vv_item) * n);
  char (*ids)[16] = malloc(16 * n);
  for (size_t i = 0; i < n; i++) {
    int len = snprintf(ids[i], 16, "v%zu", i);
    items[i] = (vv_item){ids[i], (size_t)len, v + i * dim, NULL, 0, NULL, 0};
  }
  vv_db *db = make_db(dim, VV_METRIC_L2, VV_INDEX_HNSW, 2);
  uint64_t stop_at = 300;
  size_t done = 0;
  VV_CHECK(vv_db_add_batch(db, items, n, 2, abort_after, &stop_at, &done) == VV_E_ABORTED);
  VV_CHECK(done >= 300 && done < n);
  VV_CHECK(vv_db_size(db) == done);
  /* A bad item fails the whole batch up front. */
  float bad[8] = {NAN};
  items[7].vector = bad;
  VV_CHECK(vv_db_add_batch(db, items, n, 2, NULL, NULL, &done) == VV_E_BAD_VECTOR && done == 7);
  vv_db_free(db);
  free(items);
  free(ids);
  free(v);
}

/* Structural invariants of the graph after parallel inserts, deletes,
 * consolidation and slot reuse: every link targets a linked node that has
 * the link's level, no self links, no duplicate links, degree bounds kept,
 * and the entry point sits on the top level. */
static void check_graph(vv_hnsw *h, const vv_store *st, uint32_t m, int *bad) {
  int max_level;
  uint32_t ep = vv_hnsw_entry(h, &max_level);
  if (st->nlive > 0 && (ep == UINT32_MAX || vv_hnsw_level(h, ep) != max_level)) (*bad)++;
  for (uint64_t i = 0; i < st->nslots; i++) {
    uint32_t s = (uint32_t)i;
    int level = vv_hnsw_level(h, s);
    if (vv_store_is_live(st, s) && level < 0) (*bad)++; /* every live slot is linked */
    if (level > max_level) (*bad)++;
    for (int l = 0; l <= level; l++) {
      const uint32_t *links;
      uint32_t n = vv_hnsw_links(h, s, l, &links);
      if (n > (l == 0 ? 2 * m : m)) (*bad)++;
      for (uint32_t j = 0; j < n; j++) {
        if (links[j] == s || links[j] >= st->nslots || vv_hnsw_level(h, links[j]) < l) (*bad)++;
        for (uint32_t q = 0; q < j; q++)
          if (links[q] == links[j]) (*bad)++;
      }
    }
  }
}

#include "db/db_internal.h"

VV_TEST(hnsw_graph_invariants_hold_through_churn) {
  const uint32_t dim = 12;
  const size_t n = 3000;
  float *v = malloc(sizeof(float) * n * dim);
  vv_item *items = malloc(sizeof(vv_item) * n);
  char (*ids)[16] = malloc(16 * n);
  vv_db *db = make_db(dim, VV_METRIC_L2, VV_INDEX_HNSW, 2);
  VV_REQUIRE(v && items && ids && db);
  int bad = 0;
  for (int round = 0; round < 4; round++) {
    rand_vecs(v, n, dim, 100 + (uint64_t)round);
    for (size_t i = 0; i < n; i++) {
      int len = snprintf(ids[i], 16, "v%zu", (i * 7 + (size_t)round * 1001) % (n + n / 2));
      items[i] = (vv_item){ids[i], (size_t)len, v + i * dim, NULL, 0, NULL, 0};
    }
    size_t done;
    VV_REQUIRE(vv_db_add_batch(db, items, n, 2, NULL, NULL, &done) == VV_OK);
    /* delete a third, so consolidation and reuse happen in the next round */
    for (size_t i = 0; i < n; i += 3) {
      int removed;
      VV_CHECK(vv_db_delete(db, ids[i], strlen(ids[i]), &removed) == VV_OK);
    }
    check_graph(db->hnsw, &db->store, 16, &bad);
    VV_NOTE("round %d", round);
    VV_CHECK(bad == 0);
  }
  vv_db_free(db);
  free(v);
  free(items);
  free(ids);
}

VV_TEST_MAIN()
