/*
 * test/c/test_lazy_errors.c: a failed chunk read of a lazily loaded
 * session says which object failed (vv_db_get_ex, vv_search_opts.err,
 * vv_db_preload_ex; session/lazy.c vv_lazy_explain).
 *
 * Owns: for an injected EIO on one chunk object's read (faultio.h) and for
 * a deleted chunk object, every call that reads chunks (get, search, batch
 * search on two threads, preload) returns the status and fills its
 * vv_error with the object's name, "chunk object" and its seq; a caller
 * that passes no vv_error is unaffected; and the next call, with the fault
 * gone, succeeds. Which calls fail and the cache's behaviour under faults
 * are test_lazy.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session/manifest.h"
#include "vecvault.h"
#include "vvtest.h"

#include "faultio.h"
#include "support.h"

#define DIM 4
#define N 40
#define CHUNK 10

typedef struct fixture {
  char root[64];
  char dir[96];
  vv_mchunk victim; /* the manifest's second chunk */
  fio f;            /* the lazy database reads through it: outlives it */
  vv_db *db;
} fixture;

static void vec_of(int i, float *v) {
  for (int d = 0; d < DIM; d++) v[d] = (float)((i * 7 + d * 3) % 11) - 5.0f + 0.01f * (float)i;
}

static int id_of(int i, char *buf) { return snprintf(buf, 16, "id-%02d", i); }

/* A flat, plaintext session of N vectors in chunks of CHUNK, loaded lazily
 * through a faultio table that counts only reads of the victim chunk. */
static int setup(fixture *x) {
  memset(x, 0, sizeof *x);
  if (make_root(x->root)) return -1;
  snprintf(x->dir, sizeof x->dir, "%s/s", x->root);
  vv_config c = {.dimension = DIM, .metric = VV_METRIC_L2, .index = VV_INDEX_FLAT, .chunk_size = CHUNK};
  vv_db *db = NULL;
  if (vv_db_create(&c, &db)) return -1;
  int rc = vv_db_set_secret(db, 0, NULL, NULL, 0);
  for (int i = 0; i < N && !rc; i++) {
    char id[16];
    float v[DIM];
    vec_of(i, v);
    vv_item it = {id, (size_t)id_of(i, id), v, NULL, 0, NULL, 0};
    rc = vv_db_add(db, &it);
  }
  vv_error err = {{0}};
  if (!rc) rc = vv_db_save(db, x->dir, NULL, NULL, NULL, NULL, &err);
  vv_db_free(db);
  if (rc) return rc;

  vv_manifest m;
  rc = read_manifest(x->dir, &m);
  if (rc) return rc;
  if (m.nchunks < 2) rc = -1;
  else x->victim = m.chunks[1];
  vv_manifest_free(&m);
  if (rc) return rc;

  fio_init(&x->f, NULL);
  x->f.kinds = FIO_BIT(FIO_READ);
  x->f.suffix = x->victim.ref.name;
  x->f.err = EIO;
  vv_load_opts o = {.io = fio_io(&x->f), .lazy = 1, .threads = 2};
  vv_load_stats st;
  rc = vv_db_load(x->dir, &o, NULL, NULL, &x->db, &st, &err);
  if (!rc && !st.lazy) rc = -1;
  return rc;
}

static void teardown(fixture *x) {
  vv_db_free(x->db);
  fio_destroy(&x->f);
  rm_rf(x->root);
}

/* The next counted read of the victim fails with EIO. */
static void arm(fixture *x) {
  fio_reset(&x->f);
  x->f.fail_at = 1;
}

static int names_victim(const fixture *x, const vv_error *err) {
  char seq[48];
  snprintf(seq, sizeof seq, "(seq %llu)", (unsigned long long)x->victim.seq);
  int ok = strstr(err->message, x->victim.ref.name) && strstr(err->message, "chunk object") &&
           strstr(err->message, seq);
  if (!ok) fprintf(stderr, "  message does not name %s %s: \"%s\"\n", x->victim.ref.name, seq, err->message);
  return ok;
}

/* The first id whose get fails (its row is in the victim), or -1. */
static int first_failing_get(fixture *x, int *status, vv_error *err) {
  for (int i = 0; i < N; i++) {
    char id[16];
    int len = id_of(i, id);
    vv_record *r = NULL;
    int rc = vv_db_get_ex(x->db, id, (size_t)len, &r, err);
    vv_record_free(r);
    if (rc) {
      *status = rc;
      return i;
    }
  }
  return -1;
}

VV_TEST(eio_on_get_names_the_object_then_the_retry_succeeds) {
  fixture x;
  VV_REQUIRE(setup(&x) == VV_OK);
  arm(&x);
  vv_error err = {{0}};
  int status = 0;
  int i = first_failing_get(&x, &status, &err);
  VV_REQUIRE(i >= 0);
  VV_CHECK(status == VV_E_IO);
  VV_CHECK(names_victim(&x, &err));
  /* The fault is spent: the same get now reads the chunk. */
  char id[16];
  int len = id_of(i, id);
  vv_record *r = NULL;
  VV_CHECK(vv_db_get(x.db, id, (size_t)len, &r) == VV_OK && r != NULL);
  vv_record_free(r);
  teardown(&x);
}

VV_TEST(eio_on_search_batch_and_preload_names_the_object) {
  fixture x;
  VV_REQUIRE(setup(&x) == VV_OK);
  float q[DIM] = {0, 0, 0, 0};
  vv_error err = {{0}};
  vv_search_opts o = {.err = &err};
  vv_results *res = NULL;

  arm(&x);
  VV_CHECK(vv_db_search(x.db, q, 3, &o, &res) == VV_E_IO && res == NULL);
  VV_CHECK(names_victim(&x, &err));

  /* Without a vv_error the status alone (and nothing breaks). */
  arm(&x);
  VV_CHECK(vv_db_search(x.db, q, 3, NULL, &res) == VV_E_IO);

  /* Eight queries on two threads: the first failure fills err, once. */
  float qs[8 * DIM] = {0};
  vv_results *out[8];
  memset(&err, 0, sizeof err);
  o.threads = 2;
  arm(&x);
  VV_CHECK(vv_db_search_batch(x.db, qs, 8, 3, &o, out) == VV_E_IO);
  VV_CHECK(names_victim(&x, &err));

  /* The batch's other thread may have read the victim once the fault was
   * spent, and cached it: empty the cache so the preload must read it. */
  VV_REQUIRE(vv_db_set_cache_size(x.db, 1) == VV_OK);
  VV_REQUIRE(vv_db_set_cache_size(x.db, 64u << 20) == VV_OK);
  size_t loaded = 0;
  memset(&err, 0, sizeof err);
  arm(&x);
  VV_CHECK(vv_db_preload_ex(x.db, &x.victim.seq, 1, NULL, NULL, &loaded, &err) == VV_E_IO);
  VV_CHECK(names_victim(&x, &err));

  /* Fault spent: everything reads. */
  VV_CHECK(vv_db_search(x.db, q, 3, &o, &res) == VV_OK && res && res->count == 3);
  vv_results_free(res);
  teardown(&x);
}

VV_TEST(a_deleted_chunk_object_is_named_as_missing) {
  fixture x;
  VV_REQUIRE(setup(&x) == VV_OK);
  char path[256];
  snprintf(path, sizeof path, "%s/objects/%s", x.dir, x.victim.ref.name);
  VV_REQUIRE(unlink(path) == 0);
  vv_error err = {{0}};
  int status = 0;
  VV_REQUIRE(first_failing_get(&x, &status, &err) >= 0);
  VV_CHECK(status == VV_E_CHUNK_MISSING);
  VV_CHECK(names_victim(&x, &err) && strstr(err.message, "is missing"));

  float q[DIM] = {1, 1, 1, 1};
  vv_results *res = NULL;
  memset(&err, 0, sizeof err);
  vv_search_opts o = {.err = &err};
  VV_CHECK(vv_db_search(x.db, q, 3, &o, &res) == VV_E_CHUNK_MISSING);
  VV_CHECK(names_victim(&x, &err));
  teardown(&x);
}

VV_TEST_MAIN()
