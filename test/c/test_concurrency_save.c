/*
 * test_concurrency_save.c: writers and searches run while a save writes,
 * and the saved generation is exactly the database at the save's capture.
 *
 * A gate wraps the POSIX I/O table: the save's first rename (its first
 * object made durable) blocks until the test opens the gate. While the save
 * is held there, another thread adds, upserts, deletes and searches; the
 * main thread waits for it with a generous time limit that only turns a
 * deadlock (writers waiting for the save, the save waiting for the test)
 * into a failure instead of a hang. Nothing is timed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "session/io.h"
#include "vecvault.h"
#include "vvtest.h"

#include "support.h"

#define DIM 8
/* For helpers that return a value (VV_REQUIRE returns from a void test). */
#define MUST(cond)                                                     \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: fixture failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                         \
    }                                                                  \
  } while (0)
#ifndef DEADLOCK_SECONDS
#define DEADLOCK_SECONDS 120
#endif

/* ---- the gate ------------------------------------------------------------ */

typedef struct gate {
  vv_io io;
  const vv_io *real;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int renames;       /* renames seen */
  int hold_at;       /* the rename that blocks (1 = the first) */
  int held, open;    /* a save is waiting at the gate; the test let it through */
  int fail_after;    /* renames after the held one fail with EIO (0 = never) */
} gate;

static int g_open(void *c, const char *p, int f, int m) { return ((gate *)c)->real->open(((gate *)c)->real->ctx, p, f, m); }
static ssize_t g_read(void *c, int fd, void *b, size_t n) { return ((gate *)c)->real->read(((gate *)c)->real->ctx, fd, b, n); }
static ssize_t g_write(void *c, int fd, const void *b, size_t n) {
  return ((gate *)c)->real->write(((gate *)c)->real->ctx, fd, b, n);
}
static ssize_t g_pread(void *c, int fd, void *b, size_t n, uint64_t off) {
  return ((gate *)c)->real->pread(((gate *)c)->real->ctx, fd, b, n, off);
}
static int g_fsync(void *c, int fd) { return ((gate *)c)->real->fsync(((gate *)c)->real->ctx, fd); }
static int g_close(void *c, int fd) { return ((gate *)c)->real->close(((gate *)c)->real->ctx, fd); }
static int g_fsize(void *c, int fd, uint64_t *s) { return ((gate *)c)->real->fsize(((gate *)c)->real->ctx, fd, s); }
static int g_unlink(void *c, const char *p) { return ((gate *)c)->real->unlink(((gate *)c)->real->ctx, p); }
static int g_mkdir(void *c, const char *p, int m) { return ((gate *)c)->real->mkdir(((gate *)c)->real->ctx, p, m); }
static int g_lock(void *c, int fd) { return ((gate *)c)->real->lock(((gate *)c)->real->ctx, fd); }
static int g_list(void *c, const char *d, int (*fn)(void *, const char *), void *a) {
  return ((gate *)c)->real->list(((gate *)c)->real->ctx, d, fn, a);
}

static int g_rename(void *c, const char *from, const char *to) {
  gate *g = c;
  pthread_mutex_lock(&g->mu);
  int n = ++g->renames;
  if (n == g->hold_at) {
    g->held = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  }
  int fail = g->fail_after && n > g->hold_at;
  pthread_mutex_unlock(&g->mu);
  if (fail) return -EIO;
  return g->real->rename(g->real->ctx, from, to);
}

static void gate_init(gate *g, int hold_at, int fail_after) {
  memset(g, 0, sizeof *g);
  g->real = vv_io_posix();
  g->io = (vv_io){g, g_open, g_read, g_write, g_fsync, g_close, g_fsize, g_rename, g_unlink, g_mkdir, g_lock, g_list, g_pread, 0};
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->hold_at = hold_at;
  g->fail_after = fail_after;
}

static void gate_destroy(gate *g) {
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
}

/* Waits until `*flag` is set under g->mu; 0 on a (deadlock) time-out. */
static int gate_wait(gate *g, int *flag) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += DEADLOCK_SECONDS;
  int ok = 1;
  pthread_mutex_lock(&g->mu);
  while (!*flag && ok) ok = pthread_cond_timedwait(&g->cv, &g->mu, &until) != ETIMEDOUT;
  ok = *flag;
  pthread_mutex_unlock(&g->mu);
  return ok;
}

static void gate_release(gate *g) {
  pthread_mutex_lock(&g->mu);
  g->open = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

/* ---- fixtures ------------------------------------------------------------- */

static void vec_for(unsigned id, unsigned version, float *v) {
  uint32_t x = id * 2654435761u + version * 40503u + 1u;
  for (int d = 0; d < DIM; d++) {
    x = x * 1664525u + 1013904223u;
    v[d] = (float)((x >> 8) & 0xffff) / 65536.0f - 0.5f + (d == 0 ? 1.0f : 0.0f);
  }
}

static void add_one(vv_db *db, const char *prefix, unsigned id, unsigned version) {
  char name[32];
  int len = snprintf(name, sizeof name, "%s%u", prefix, id);
  char meta[32];
  int mlen = snprintf(meta, sizeof meta, "{\"v\":%u}", version);
  float v[DIM];
  vec_for(id, version, v);
  vv_item it = {name, (size_t)len, v, meta, (size_t)mlen, NULL, 0};
  VV_REQUIRE(vv_db_add(db, &it) == VV_OK);
}

static vv_db *make_db(vv_index_kind kind, unsigned n) {
  vv_config cfg = {0};
  cfg.dimension = DIM;
  cfg.metric = VV_METRIC_L2;
  cfg.index = kind;
  cfg.chunk_size = 64; /* several chunks, so the save renames many objects */
  cfg.threads = 2;
  vv_db *db;
  MUST(vv_db_create(&cfg, &db) == VV_OK);
  MUST(vv_db_set_secret(db, 0, NULL, NULL, 0) == VV_OK);
  for (unsigned i = 0; i < n; i++) add_one(db, "a", i, 0);
  return db;
}

static char *temp_dir(void) {
  char root[64];
  MUST(make_root(root) == 0);
  char *d = strdup(root);
  MUST(d);
  return d;
}

/* 1 if `id` is in `db` with the vector and metadata of `version`. */
static int has_version(vv_db *db, const char *prefix, unsigned id, unsigned version) {
  char name[32];
  int len = snprintf(name, sizeof name, "%s%u", prefix, id);
  vv_record *r = NULL;
  if (vv_db_get(db, name, (size_t)len, &r) != VV_OK || !r) return 0;
  float v[DIM];
  vec_for(id, version, v);
  char meta[32];
  int mlen = snprintf(meta, sizeof meta, "{\"v\":%u}", version);
  int same = !memcmp(r->vector, v, sizeof v) && r->meta_len == (size_t)mlen && !memcmp(r->meta, meta, (size_t)mlen);
  vv_record_free(r);
  return same;
}

/* Deletes a<i>, which must exist. */
static void del_one(vv_db *db, unsigned i) {
  char name[32];
  int len = snprintf(name, sizeof name, "a%u", i), removed = 0;
  VV_CHECK(vv_db_delete(db, name, (size_t)len, &removed) == VV_OK && removed);
}

static int has_id(vv_db *db, const char *prefix, unsigned id) {
  char name[32];
  int len = snprintf(name, sizeof name, "%s%u", prefix, id);
  int found = 0;
  MUST(vv_db_has(db, name, (size_t)len, &found) == VV_OK);
  return found;
}

static vv_db *load_eager(const char *dir) {
  vv_load_opts o = {0};
  o.threads = 1;
  vv_db *db = NULL;
  vv_error err;
  int rc = vv_db_load(dir, &o, NULL, NULL, &db, NULL, &err);
  if (rc) fprintf(stderr, "load: %s (%s)\n", vv_status_code(rc), err.message);
  MUST(rc == VV_OK);
  return db;
}

/* ---- the save thread and the writer thread ------------------------------ */

typedef struct save_job {
  vv_db *db;
  const char *dir;
  gate *g;
  int rc;
} save_job;

static void *save_main(void *arg) {
  save_job *j = arg;
  vv_error err;
  j->rc = vv_db_save(j->db, j->dir, &j->g->io, NULL, NULL, NULL, &err);
  return NULL;
}

#define N0 300     /* vectors before the save */
#define NEW 200    /* added while it writes */
#define DELS 40    /* deleted while it writes: a0..a39 */
#define UPS 40     /* upserted while it writes: a40..a79, version 1 */

typedef struct writer_job {
  vv_db *db;
  gate *g;
  void (*work)(struct writer_job *w);
  int done;
  int search_hits;
} writer_job;

static void *writer_main(void *arg) {
  writer_job *w = arg;
  w->work(w);
  pthread_mutex_lock(&w->g->mu);
  w->done = 1;
  pthread_cond_broadcast(&w->g->cv);
  pthread_mutex_unlock(&w->g->mu);
  return NULL;
}

/* Adds NEW, deletes DELS, upserts UPS, and searches. */
static void mixed_writes(writer_job *w) {
  for (unsigned i = 0; i < NEW; i++) add_one(w->db, "b", i, 0);
  for (unsigned i = 0; i < DELS; i++) del_one(w->db, i);
  for (unsigned i = DELS; i < DELS + UPS; i++) add_one(w->db, "a", i, 1);
  float q[DIM];
  vec_for(DELS + 1, 1, q);
  vv_results *res = NULL;
  if (vv_db_search(w->db, q, 1, NULL, &res) == VV_OK && res && res->count == 1) w->search_hits = 1;
  vv_results_free(res);
}

/* Saves `db` into `dir` through a gate that holds the save at its first
 * rename (`fail_later`: every later rename fails), runs `work` in another
 * thread meanwhile, and opens the gate once the work is done. *wrote says
 * whether the work finished while the save was held; *search_hits what it
 * found. Returns the save's status. */
static int save_while(vv_db *db, const char *dir, int fail_later, void (*work)(writer_job *), int *wrote,
                      int *search_hits) {
  gate g;
  gate_init(&g, 1, fail_later);
  save_job sj = {db, dir, &g, -1};
  writer_job wj = {db, &g, work, 0, 0};
  pthread_t st, wt;
  MUST(pthread_create(&st, NULL, save_main, &sj) == 0);
  MUST(gate_wait(&g, &g.held));
  MUST(pthread_create(&wt, NULL, writer_main, &wj) == 0);
  *wrote = gate_wait(&g, &wj.done);
  gate_release(&g);
  pthread_join(st, NULL);
  pthread_join(wt, NULL);
  if (search_hits) *search_hits = wj.search_hits;
  gate_destroy(&g);
  return sj.rc;
}

/* How many of mixed_writes' changes `saved` does not hold. */
static unsigned mixed_writes_missing(vv_db *saved) {
  unsigned bad = 0;
  for (unsigned i = 0; i < DELS; i++) bad += has_id(saved, "a", i);
  for (unsigned i = DELS; i < DELS + UPS; i++) bad += !has_version(saved, "a", i, 1);
  for (unsigned i = 0; i < NEW; i++) bad += !has_version(saved, "b", i, 0);
  return bad;
}

/* Holds a save at its first rename, writes meanwhile, then checks both
 * generations: the held save has the capture, the next save has the rest. */
static void writes_during_save(vv_index_kind kind) {
  vv_db *db = make_db(kind, N0);
  char *dir = temp_dir();
  int wrote, hits;
  VV_REQUIRE(save_while(db, dir, 0, mixed_writes, &wrote, &hits) == VV_OK);
  VV_CHECK(wrote); /* writers finished while the save was held in its I/O */
  VV_CHECK(hits == 1);

  /* The saved generation is the capture: none of the later writes. */
  vv_db *saved = load_eager(dir);
  VV_CHECK(vv_db_size(saved) == N0);
  unsigned bad = 0;
  for (unsigned i = 0; i < N0; i++) bad += !has_version(saved, "a", i, 0);
  for (unsigned i = 0; i < NEW; i++) bad += has_id(saved, "b", i);
  VV_CHECK(bad == 0);
  vv_db_free(saved);

  /* The next save (incremental) carries what happened during the first. */
  vv_save_stats stats;
  vv_error err;
  VV_REQUIRE(vv_db_save(db, dir, NULL, NULL, NULL, &stats, &err) == VV_OK);
  VV_CHECK(stats.full == 0);
  saved = load_eager(dir);
  VV_CHECK(vv_db_size(saved) == N0 - DELS + NEW);
  bad = mixed_writes_missing(saved);
  for (unsigned i = DELS + UPS; i < N0; i++) bad += !has_version(saved, "a", i, 0);
  VV_CHECK(bad == 0);
  vv_db_free(saved);
  vv_db_free(db);
  rm_rf(dir);
  free(dir);
}

VV_TEST(hnsw_writes_run_during_a_save_which_keeps_its_capture) { writes_during_save(VV_INDEX_HNSW); }
VV_TEST(flat_writes_run_during_a_save_which_keeps_its_capture) { writes_during_save(VV_INDEX_FLAT); }

/* A save that fails after the capture hands its dirty bits back: the next
 * save, incremental onto the generation before, still writes every change
 * made before and during the failed one. */
static void failed_save_keeps_changes(vv_index_kind kind) {
  vv_db *db = make_db(kind, N0);
  char *dir = temp_dir();
  vv_error err;
  VV_REQUIRE(vv_db_save(db, dir, NULL, NULL, NULL, NULL, &err) == VV_OK);
  /* Changed before the failing save: its capture takes these dirty bits. */
  for (unsigned i = 0; i < 50; i++) add_one(db, "c", i, 0);
  for (unsigned i = 100; i < 120; i++) del_one(db, i);
  for (unsigned i = 120; i < 140; i++) add_one(db, "a", i, 2);
  int wrote;
  VV_CHECK(save_while(db, dir, 1, mixed_writes, &wrote, NULL) == VV_E_IO);
  VV_CHECK(wrote);

  VV_REQUIRE(vv_db_save(db, dir, NULL, NULL, NULL, NULL, &err) == VV_OK);
  vv_db *saved = load_eager(dir);
  VV_CHECK(vv_db_size(saved) == N0 + 50 - 20 - DELS + NEW);
  unsigned bad = 0;
  for (unsigned i = 0; i < 50; i++) bad += !has_version(saved, "c", i, 0);
  for (unsigned i = 100; i < 120; i++) bad += has_id(saved, "a", i);
  for (unsigned i = 120; i < 140; i++) bad += !has_version(saved, "a", i, 2);
  bad += mixed_writes_missing(saved);
  VV_CHECK(bad == 0);
  vv_db_free(saved);
  vv_db_free(db);
  rm_rf(dir);
  free(dir);
}

VV_TEST(hnsw_failed_save_hands_back_its_changes) { failed_save_keeps_changes(VV_INDEX_HNSW); }
VV_TEST(flat_failed_save_hands_back_its_changes) { failed_save_keeps_changes(VV_INDEX_FLAT); }

/* Half deleted, then as many new: without the freeze these would take the
 * freed slots and overwrite the captured vectors. */
static void churn(writer_job *w) {
  for (unsigned i = 0; i < N0 / 2; i++) del_one(w->db, i);
  for (unsigned i = 0; i < N0; i++) add_one(w->db, "d", i, 7);
}

/* Deletes past the consolidation threshold during a save must not recycle
 * the slots the save captured: the generation still reads back whole. */
VV_TEST(deletes_during_a_save_do_not_reuse_captured_slots) {
  vv_db *db = make_db(VV_INDEX_HNSW, N0);
  char *dir = temp_dir();
  int wrote;
  VV_REQUIRE(save_while(db, dir, 0, churn, &wrote, NULL) == VV_OK);
  VV_CHECK(wrote);
  vv_db *saved = load_eager(dir);
  unsigned bad = 0;
  for (unsigned i = 0; i < N0; i++) bad += !has_version(saved, "a", i, 0);
  VV_CHECK(bad == 0);
  VV_CHECK(vv_db_size(saved) == N0);
  vv_db_free(saved);
  /* After the save the freed slots are reused again (nothing leaks). */
  for (unsigned i = 0; i < N0; i++) add_one(db, "e", i, 0);
  VV_CHECK(vv_db_size(db) == N0 / 2 + 2 * N0);
  vv_db_free(db);
  rm_rf(dir);
  free(dir);
}

VV_TEST_MAIN()
