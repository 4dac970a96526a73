/*
 * test/c/test_gc.c: where a save may write, what its garbage collection may
 * delete (session/gc.c), and files that are not regular files where a
 * session file should be (session/io.c).
 *
 * Owns: the format's name patterns; vv_db_save refusing a foreign directory
 * and "/" with VV_E_NOT_A_SESSION with every file and directory left as it
 * was (no lock, no subdirectory); accepting a missing path, an empty
 * directory, a session and the leftovers of an interrupted first save; the
 * GC keeping foreign names in a real session; the directory check through
 * faultio (an injected failure fails the save, touching nothing); and a
 * FIFO or a symbolic link in place of manifest.json, an object or the lock:
 * load, lazy load, inspect and the first lazy read fail with VV_E_IO (the
 * message naming the file) instead of blocking forever.
 *
 * A FIFO test that regressed would block in open(2): every test here runs
 * under alarm(), so a hang kills the binary (a failure) rather than the
 * suite. Sessions live in a mkdtemp directory ($VV_TEST_TMPDIR overrides),
 * removed at exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session/io.h"
#include "vecvault.h"
#include "vvtest.h"

#include "faultio.h"
#include "support.h"

#if defined(__has_include)
#if __has_include("session/gc.h")
#include "session/gc.h"
#define HAVE_GC_H 1
#endif
#endif

#define DIM 4
#define HEX64 "abababababababababababababababababababababababababababababababab"
#define TMP16 "0123456789abcdef"
#define HANG_SECONDS 60 /* far above any run; only a blocked open reaches it */

/* ---- files ---------------------------------------------------------------- */

static char g_root[64];

/* A new empty directory under the test root (removed at exit). */
static void new_dir(char *out, size_t n, const char *tag) {
  static int seq;
  if (!g_root[0] && make_root(g_root) != 0) g_root[0] = '\0';
  strf(out, n, "%s/%s-%d", g_root, tag, seq++);
  mkdir(out, 0700);
}

static void put(const char *dir, const char *rel, const char *body) {
  char p[512];
  strf(p, sizeof p, "%s/%s", dir, rel);
  char *slash = strrchr(p, '/');
  if (slash && slash > p + strlen(dir)) {
    *slash = '\0';
    mkdir(p, 0700);
    *slash = '/';
  }
  FILE *f = fopen(p, "wb");
  if (f) {
    fputs(body, f);
    fclose(f);
  }
}

static int file_is(const char *dir, const char *rel, const char *body) {
  char p[512], got[256] = {0};
  strf(p, sizeof p, "%s/%s", dir, rel);
  FILE *f = fopen(p, "rb");
  if (!f) return 0;
  size_t n = fread(got, 1, sizeof got - 1, f);
  fclose(f);
  return n == strlen(body) && !memcmp(got, body, n);
}

static int exists(const char *dir, const char *rel) {
  char p[512];
  struct stat st;
  strf(p, sizeof p, "%s/%s", dir, rel);
  return lstat(p, &st) == 0;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* ---- databases ------------------------------------------------------------- */

static vv_db *small_db(int n) {
  vv_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dimension = DIM;
  cfg.metric = VV_METRIC_L2;
  cfg.index = VV_INDEX_HNSW;
  cfg.chunk_size = 8;
  vv_db *db = NULL;
  if (vv_db_create(&cfg, &db) != VV_OK) return NULL;
  for (int i = 0; i < n; i++) {
    char id[16];
    float v[DIM] = {(float)i, (float)(i % 3), 1.0f, (float)(i * i % 7)};
    strf(id, sizeof id, "v%d", i);
    vv_item it = {id, strlen(id), v, NULL, 0, NULL, 0};
    if (vv_db_add(db, &it) != VV_OK) {
      vv_db_free(db);
      return NULL;
    }
  }
  return db;
}

static int save(vv_db *db, const char *dir, vv_error *err) {
  memset(err, 0, sizeof *err);
  return vv_db_save(db, dir, NULL, NULL, NULL, NULL, err);
}

static int load(const char *dir, int lazy, vv_db **out, vv_error *err) {
  vv_load_opts o;
  memset(&o, 0, sizeof o);
  o.lazy = lazy;
  memset(err, 0, sizeof *err);
  *out = NULL;
  return vv_db_load(dir, &o, NULL, NULL, out, NULL, err);
}

/* ---- name patterns --------------------------------------------------------- */

#ifdef HAVE_GC_H
VV_TEST(name_patterns_are_exact) {
  VV_CHECK(vv_is_object_name(HEX64));
  VV_CHECK(!vv_is_object_name("ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"));
  VV_CHECK(!vv_is_object_name(HEX64 "0"));
  VV_CHECK(!vv_is_object_name(HEX64 ".bak"));
  VV_CHECK(!vv_is_object_name(HEX64 + 1));
  VV_CHECK(!vv_is_object_name("notes.txt"));
  VV_CHECK(vv_is_manifest_name("00000000000000000001.json"));
  VV_CHECK(!vv_is_manifest_name("0000000000000000001.json"));
  VV_CHECK(!vv_is_manifest_name("00000000000000000001.json.orig"));
  VV_CHECK(!vv_is_manifest_name("0000000000000000000a.json"));
  VV_CHECK(!vv_is_manifest_name("deployment.yaml"));
  VV_CHECK(vv_is_temp_name("tmp-" TMP16));
  VV_CHECK(!vv_is_temp_name("tmp-" TMP16 "0"));
  VV_CHECK(!vv_is_temp_name("tmp-0123456789ABCDEF"));
  VV_CHECK(!vv_is_temp_name("tmp-draft.txt"));
  VV_CHECK(!vv_is_temp_name("tmp-"));
}
#endif

/* ---- finding 1: where a save may write -------------------------------------- */

VV_TEST(save_refuses_a_foreign_directory_and_touches_nothing) {
  alarm(HANG_SECONDS);
  vv_db *db = small_db(20);
  VV_REQUIRE(db != NULL);
  char dir[256];
  new_dir(dir, sizeof dir, "foreign");
  put(dir, "README.md", "readme");
  put(dir, "manifests/deployment.yaml", "kind: Deployment");
  put(dir, "objects/notes.txt", "notes");
  put(dir, "tmp-draft.txt", "draft");
  vv_error err;
  int rc = save(db, dir, &err);
  VV_CHECK(rc == VV_E_NOT_A_SESSION);
  VV_CHECK(strstr(err.message, dir) != NULL);
  VV_CHECK(file_is(dir, "README.md", "readme"));
  VV_CHECK(file_is(dir, "manifests/deployment.yaml", "kind: Deployment"));
  VV_CHECK(file_is(dir, "objects/notes.txt", "notes"));
  VV_CHECK(file_is(dir, "tmp-draft.txt", "draft"));
  VV_CHECK(!exists(dir, "lock"));
  VV_CHECK(!exists(dir, "manifest.json"));
  VV_CHECK(count_entries(dir) == 4);
  char sub[300];
  strf(sub, sizeof sub, "%s/objects", dir);
  VV_CHECK(count_entries(sub) == 1);
  strf(sub, sizeof sub, "%s/manifests", dir);
  VV_CHECK(count_entries(sub) == 1);

  /* A lone foreign manifest.json, a FIFO named lock: refused, at once. */
  new_dir(dir, sizeof dir, "webapp");
  put(dir, "manifest.json", "{\"name\":\"app\"}");
  VV_CHECK(save(db, dir, &err) == VV_E_NOT_A_SESSION);
  VV_CHECK(file_is(dir, "manifest.json", "{\"name\":\"app\"}"));
  VV_CHECK(count_entries(dir) == 1);
  new_dir(dir, sizeof dir, "fifolock");
  char p[300];
  strf(p, sizeof p, "%s/lock", dir);
  VV_REQUIRE(mkfifo(p, 0600) == 0);
  VV_CHECK(save(db, dir, &err) == VV_E_NOT_A_SESSION);
  VV_CHECK(count_entries(dir) == 1);
  vv_db_free(db);
  alarm(0);
}

VV_TEST(save_refuses_the_root_directory) {
  vv_db *db = small_db(3);
  VV_REQUIRE(db != NULL);
  int had_lock = exists("", "lock"), had_objects = exists("", "objects");
  vv_error err;
  VV_CHECK(save(db, "/", &err) == VV_E_NOT_A_SESSION);
  VV_CHECK(exists("", "lock") == had_lock);
  VV_CHECK(exists("", "objects") == had_objects);
  vv_db_free(db);
}

VV_TEST(save_accepts_nothing_empty_sessions_and_interrupted_first_saves) {
  vv_db *db = small_db(20);
  VV_REQUIRE(db != NULL);
  vv_error err;
  char dir[256], p[300];
  new_dir(dir, sizeof dir, "missing");
  strf(p, sizeof p, "%s/new", dir);
  VV_CHECK(save(db, p, &err) == VV_OK);
  VV_CHECK(save(db, p, &err) == VV_OK); /* a session */
  new_dir(dir, sizeof dir, "empty");
  VV_CHECK(save(db, dir, &err) == VV_OK);

  /* Leftovers of a first save killed at any point. */
  new_dir(dir, sizeof dir, "stale-lock");
  put(dir, "lock", "");
  VV_CHECK(save(db, dir, &err) == VV_OK);
  new_dir(dir, sizeof dir, "interrupted");
  put(dir, "lock", "");
  put(dir, "tmp-" TMP16, "partial");
  put(dir, "objects/tmp-" TMP16, "partial");
  put(dir, "objects/" HEX64, "never committed");
  put(dir, "manifests/00000000000000000001.json", "not committed");
  int rc = save(db, dir, &err);
  VV_CHECK(rc == VV_OK);
  if (rc) fprintf(stderr, "  %s: %s\n", vv_status_code(rc), err.message);
  VV_CHECK(!exists(dir, "tmp-" TMP16));
  VV_CHECK(!exists(dir, "objects/tmp-" TMP16));
  VV_CHECK(!exists(dir, "objects/" HEX64));
  vv_db *back = NULL;
  VV_CHECK(load(dir, 0, &back, &err) == VV_OK);
  VV_CHECK(back && vv_db_size(back) == 20);
  vv_db_free(back);
  vv_db_free(db);
}

VV_TEST(gc_keeps_what_the_format_does_not_name) {
  vv_db *db = small_db(20);
  VV_REQUIRE(db != NULL);
  vv_error err;
  char dir[256];
  new_dir(dir, sizeof dir, "gc");
  VV_REQUIRE(save(db, dir, &err) == VV_OK);
  static const char *const foreign[] = {
      "README.md", "tmp-draft.txt", "tmp-" TMP16 ".txt", "objects/notes.txt", "objects/" HEX64 ".bak",
      "objects/ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB", "manifests/deployment.yaml",
      "manifests/00000000000000000001.json.orig"};
  size_t nf = sizeof foreign / sizeof foreign[0];
  for (size_t i = 0; i < nf; i++) put(dir, foreign[i], "keep me");
  put(dir, "objects/" HEX64, "an unreferenced object name: the session's to delete");
  for (int g = 0; g < 5; g++) {
    float v[DIM] = {100.0f + (float)g, 1, 2, 3};
    char id[16];
    strf(id, sizeof id, "g%d", g);
    vv_item it = {id, strlen(id), v, NULL, 0, NULL, 0};
    VV_REQUIRE(vv_db_add(db, &it) == VV_OK);
    VV_REQUIRE(save(db, dir, &err) == VV_OK);
  }
  for (size_t i = 0; i < nf; i++) {
    VV_CHECK(file_is(dir, foreign[i], "keep me"));
    if (!file_is(dir, foreign[i], "keep me")) fprintf(stderr, "  deleted: %s\n", foreign[i]);
  }
  VV_CHECK(!exists(dir, "objects/" HEX64));
  VV_CHECK(!exists(dir, "manifests/00000000000000000001.json")); /* only the newest 3 stay */
  VV_CHECK(exists(dir, "manifests/00000000000000000006.json"));
  vv_db_free(db);
}

VV_TEST(the_directory_check_goes_through_the_io_table) {
  vv_db *db = small_db(5);
  VV_REQUIRE(db != NULL);
  char dir[256];
  new_dir(dir, sizeof dir, "faulty");
  put(dir, "lock", "");
  fio f;
  fio_init(&f, NULL);
  f.kinds = FIO_BIT(FIO_LIST);
  f.fail_at = 1;
  f.err = EIO;
  vv_error err = {{0}};
  int rc = vv_db_save(db, dir, fio_io(&f), NULL, NULL, NULL, &err);
  VV_CHECK(rc == VV_E_IO);
  VV_CHECK(f.injected == 1 && f.failed_kind == FIO_LIST);
  VV_CHECK(count_entries(dir) == 1); /* nothing created */
  fio_destroy(&f);
  vv_db_free(db);
}

/* ---- finding 3: FIFOs and symbolic links ------------------------------------- */

/* A saved session with a few chunks and its first object of `kind` (1 chunk, 2 index). */
static int session_with_objects(char *dir, size_t n) {
  new_dir(dir, n, "special");
  vv_db *db = small_db(40);
  if (!db) return -1;
  vv_error err;
  int rc = save(db, dir, &err);
  vv_db_free(db);
  return rc;
}

/* Name of the first object of the given kind listed in manifest.json. */
static int first_object(const char *dir, const char *key, char name[65]) {
  char p[300];
  strf(p, sizeof p, "%s/manifest.json", dir);
  FILE *f = fopen(p, "rb");
  if (!f) return -1;
  static char buf[1 << 16];
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = '\0';
  const char *at = strstr(buf, key);
  at = at ? strstr(at, "\"name\":\"") : NULL;
  if (!at) return -1;
  memcpy(name, at + 8, 64);
  name[64] = '\0';
  return 0;
}

/* Replaces <dir>/<rel> by a FIFO (link: by a symlink to a copy). */
static int replace_special(const char *dir, const char *rel, int link) {
  char p[400], copy[420];
  strf(p, sizeof p, "%s/%s", dir, rel);
  strf(copy, sizeof copy, "%s.copy", p);
  if (link) {
    if (rename(p, copy) != 0) return -1;
    return symlink(copy, p);
  }
  unlink(p);
  return mkfifo(p, 0600);
}

VV_TEST(a_fifo_or_symlink_manifest_is_an_error_not_a_hang) {
  alarm(HANG_SECONDS);
  for (int link = 0; link <= 1; link++) {
    char dir[256];
    VV_REQUIRE(session_with_objects(dir, sizeof dir) == VV_OK);
    VV_REQUIRE(replace_special(dir, "manifest.json", link) == 0);
    vv_db *db = NULL;
    vv_error err;
    for (int lazy = 0; lazy <= 1; lazy++) {
      VV_CHECK(load(dir, lazy, &db, &err) == VV_E_IO);
      VV_CHECK(strstr(err.message, "manifest.json") != NULL);
      VV_CHECK(strstr(err.message, "not a regular file") != NULL);
      vv_db_free(db);
    }
    char *body = NULL;
    size_t blen = 0;
    VV_CHECK(vv_session_inspect(dir, NULL, &body, &blen, &err) == VV_E_IO);
    free(body);
  }
  alarm(0);
}

VV_TEST(a_fifo_or_symlink_object_is_an_error_not_a_hang) {
  alarm(HANG_SECONDS);
  for (int link = 0; link <= 1; link++) {
    char dir[256], name[65], rel[80];
    vv_error err;
    vv_db *db = NULL;
    /* An index segment: both kinds of load read it. */
    VV_REQUIRE(session_with_objects(dir, sizeof dir) == VV_OK);
    VV_REQUIRE(first_object(dir, "\"base\"", name) == 0);
    strf(rel, sizeof rel, "objects/%s", name);
    VV_REQUIRE(replace_special(dir, rel, link) == 0);
    for (int lazy = 0; lazy <= 1; lazy++) {
      VV_CHECK(load(dir, lazy, &db, &err) == VV_E_IO);
      VV_CHECK(strstr(err.message, name) != NULL);
      vv_db_free(db);
    }
    /* A chunk: an eager load fails; a lazy one opens, and its first read
     * of that chunk fails. */
    VV_REQUIRE(session_with_objects(dir, sizeof dir) == VV_OK);
    VV_REQUIRE(first_object(dir, "\"chunks\"", name) == 0);
    strf(rel, sizeof rel, "objects/%s", name);
    VV_REQUIRE(replace_special(dir, rel, link) == 0);
    VV_CHECK(load(dir, 0, &db, &err) == VV_E_IO);
    VV_CHECK(strstr(err.message, name) != NULL);
    vv_db_free(db);
    VV_REQUIRE(load(dir, 1, &db, &err) == VV_OK);
    size_t loaded = 0;
    VV_CHECK(vv_db_preload(db, NULL, 0, NULL, NULL, &loaded) == VV_E_IO);
    vv_db_free(db);
  }
  alarm(0);
}

VV_TEST_MAIN()
