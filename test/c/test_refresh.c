/*
 * test/c/test_refresh.c: vv_db_refresh (db/load.c).
 *
 * Owns: a lazy database moving forward in place when the new generation
 * only adds delta segments (it then holds exactly what a fresh load of that
 * generation holds, and its cache is kept), the full refresh when the new
 * generation has a new base, the refusal to drop unsaved changes, and a
 * refresh in place that fails after it began to change the database: every
 * later call fails instead of answering from a mix of generations.
 * Plaintext sessions in directories, so a test can edit a manifest.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VT_SESSION_MODEL
#include "vecvault.h"
#include "vvtest.h"

#include "support.h"

static int save_dir(vv_db *db, const char *dir) {
  vv_error err = {{0}};
  int rc = vv_db_save(db, dir, NULL, NULL, NULL, NULL, &err);
  if (rc) VV_NOTE("save: %s (%s)", vv_status_code(rc), err.message);
  return rc;
}

/* A lazy refresh; `err` (may be NULL) receives the detail. */
static int refresh(vv_db *db, const char *dir, vv_db **out, vv_load_stats *st, vv_error *err) {
  vv_load_opts o = {0};
  o.lazy = 1;
  vv_error local = {{0}};
  if (!err) err = &local;
  return vv_db_refresh(db, dir, &o, NULL, NULL, out, st, err);
}

/* Generation 1 of model `a` in `dir`, a writer holding it, and a lazy reader. */
static int setup(char dir[64], model *a, vv_db **writer, vv_db **reader) {
  if (make_root(dir)) return -1;
  model_a(a, 60);
  *writer = build_db(a, 16);
  if (!*writer || save_dir(*writer, dir)) return -1;
  return load_dir_opts(dir, NULL, NULL, 1, reader, NULL, NULL);
}

/* One more vector: a delta segment over the same base. */
static int add_one(vv_db *w, model *m, int i) {
  model next = *m;
  model_set(&next, i, 7, "late");
  int rc = apply_model(w, m, &next);
  *m = next;
  return rc;
}

VV_TEST(in_place_when_only_deltas_are_new) {
  char dir[64];
  model a;
  vv_db *w = NULL, *r = NULL;
  VV_REQUIRE(setup(dir, &a, &w, &r) == 0);
  VV_CHECK(search_works(r));
  vv_cache_info before;
  vv_db_cache_info(r, &before);
  VV_REQUIRE(before.entries > 0);
  for (int g = 0; g < 3; g++) {
    VV_REQUIRE(add_one(w, &a, 70 + g) == VV_OK);
    VV_REQUIRE(save_dir(w, dir) == VV_OK);
    vv_db *out = NULL;
    vv_load_stats st;
    VV_REQUIRE(refresh(r, dir, &out, &st, NULL) == VV_OK);
    VV_CHECK(st.in_place == 1 && out == NULL);
    VV_CHECK(st.generation == (uint64_t)g + 2);
    VV_CHECK(st.index_segments == 1);
    const char *d = db_differs(r, &a);
    VV_CHECK(d == NULL);
    if (d) VV_NOTE("generation %d: %s", g + 2, d);
    vv_cache_info after;
    vv_db_cache_info(r, &after);
    VV_CHECK(after.entries >= before.entries); /* nothing dropped */
    vv_db_free(out);
  }
  /* And a save from the refreshed reader is incremental over the session. */
  vv_save_stats ss;
  vv_error err = {{0}};
  VV_CHECK(vv_db_save(r, dir, NULL, NULL, NULL, &ss, &err) == VV_OK);
  VV_CHECK(!ss.full);
  VV_CHECK(dir_differs_as(dir, NULL, 1, &a) == NULL);
  vv_db_free(r);
  vv_db_free(w);
}

VV_TEST(a_new_base_is_a_full_refresh) {
  char dir[64];
  model a, b;
  vv_db *w = NULL, *r = NULL;
  VV_REQUIRE(setup(dir, &a, &w, &r) == 0);
  /* Enough change for the writer to write a new base. */
  model_b(&a, &b, 60, 16);
  VV_REQUIRE(apply_model(w, &a, &b) == VV_OK);
  model c = b;
  for (int i = 0; i < 60; i += 2) c.present[i] = 0;
  VV_REQUIRE(apply_model(w, &b, &c) == VV_OK);
  VV_REQUIRE(save_dir(w, dir) == VV_OK);
  vv_manifest m;
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  VV_CHECK(m.ndeltas == 0);
  vv_manifest_free(&m);
  vv_db *out = NULL;
  vv_load_stats st;
  VV_REQUIRE(refresh(r, dir, &out, &st, NULL) == VV_OK);
  VV_CHECK(st.in_place == 0 && out != NULL);
  vv_db *now = out ? out : r;
  const char *d = db_differs(now, &c);
  VV_CHECK(d == NULL);
  if (d) VV_NOTE("%s", d);
  VV_CHECK(search_works(r)); /* the old one still answers (from its generation) */
  vv_db_free(out);
  vv_db_free(r);
  vv_db_free(w);
}

VV_TEST(unsaved_changes_are_never_dropped) {
  char dir[64];
  model a;
  vv_db *w = NULL, *r = NULL;
  VV_REQUIRE(setup(dir, &a, &w, &r) == 0);
  VV_REQUIRE(add_one(w, &a, 71) == VV_OK);
  VV_REQUIRE(save_dir(w, dir) == VV_OK);
  float v[DIM] = {1, 2, 3, 4, 5, 6, 7, 8};
  vv_item it = {"mine", 4, v, NULL, 0, NULL, 0};
  VV_REQUIRE(vv_db_add(r, &it) == VV_OK);
  vv_db *out = NULL;
  vv_load_stats st;
  vv_error err = {{0}};
  VV_CHECK(refresh(r, dir, &out, &st, &err) == VV_E_INVALID);
  VV_CHECK(strstr(err.message, "not saved") != NULL);
  int found = 0;
  VV_CHECK(vv_db_has(r, "mine", 4, &found) == VV_OK && found);
  vv_db_free(r);
  vv_db_free(w);
}

VV_TEST(a_refresh_that_fails_midway_poisons_the_database) {
  char dir[64];
  model a;
  vv_db *w = NULL, *r = NULL;
  VV_REQUIRE(setup(dir, &a, &w, &r) == 0);
  VV_REQUIRE(add_one(w, &a, 72) == VV_OK);
  VV_REQUIRE(save_dir(w, dir) == VV_OK);
  /* A plaintext manifest is only checksummed: claim one vector fewer than
   * the index holds. Every record passes its own checks; the whole does not. */
  text body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &body, mac) == 0);
  char want[48], have[48];
  strf(have, sizeof have, "\"totalVectors\":%d", model_count(&a));
  strf(want, sizeof want, "\"totalVectors\":%d", model_count(&a) - 1);
  long at = text_find(&body, have, 0);
  VV_REQUIRE(at >= 0);
  text_splice(&body, (size_t)at, strlen(have), want, strlen(want));
  VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
  free(body.p);
  vv_db *out = NULL;
  vv_load_stats st;
  vv_error err = {{0}};
  int frc = refresh(r, dir, &out, &st, &err);
  VV_CHECK(frc == VV_E_CHUNK_CORRUPT);
  if (frc != VV_E_CHUNK_CORRUPT) VV_NOTE("refresh: %s (%s) in place %d", vv_status_code(frc), err.message, st.in_place);
  VV_CHECK(out == NULL);
  /* Nothing answers from the half-applied state. */
  vv_results *res = NULL;
  float q[DIM] = {0};
  q[0] = 1;
  VV_CHECK(vv_db_search(r, q, 3, NULL, &res) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(res == NULL);
  vv_record *rec = NULL;
  VV_CHECK(vv_db_get(r, "v000", 4, &rec) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(rec == NULL);
  float v[DIM] = {1, 2, 3, 4, 5, 6, 7, 8};
  vv_item it = {"x", 1, v, NULL, 0, NULL, 0};
  VV_CHECK(vv_db_add(r, &it) == VV_E_CHUNK_CORRUPT);
  int removed = 0;
  VV_CHECK(vv_db_delete(r, "v001", 4, &removed) == VV_E_CHUNK_CORRUPT && !removed);
  VV_CHECK(vv_db_save(r, dir, NULL, NULL, NULL, NULL, &err) == VV_E_CHUNK_CORRUPT);
  vv_db_free(r);
  vv_db_free(w);
}

VV_TEST_MAIN()
