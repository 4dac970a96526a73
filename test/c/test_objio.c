/*
 * test/c/test_objio.c: sessions on an object store (session/objio.c).
 *
 * Owns: save, eager and lazy load, and incremental save through vv_objio
 * over an in-memory store that enforces its manifest's compare-and-swap;
 * two writers whose saves overlap (exactly one commits, the other gets
 * VV_E_CONFLICT and leaves only garbage a later save collects, after the
 * grace period); a failure of every single request of a save (the previous
 * generation stays whole); ranged reads of a lazy search; uploads completed
 * from other threads, several in flight (run under ThreadSanitizer too).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VT_SESSION_MODEL
#include "session/io.h"
#include "session/objio.h"
#include "vecvault.h"
#include "vvtest.h"

#include "support.h"

/* ---- an in-memory object store ------------------------------------------- */

#define MAXOBJ 512

typedef struct mobj {
  char key[96];
  unsigned char *data;
  size_t len;
  int64_t mtime;
} mobj;

typedef struct mstore mstore;
struct mstore {
  pthread_mutex_t mu;
  mobj objs[MAXOBJ];
  size_t n;
  unsigned char *man;
  size_t man_len;
  unsigned man_version; /* 0: no manifest */
  /* Counters, per op, and the bytes of ranged reads. */
  unsigned calls, ops[8], ranged, whole_gets;
  uint64_t ranged_bytes;
  /* Faults: fail the call numbered fail_at (1-based over all calls) with fail_rc. */
  unsigned fail_at;
  int fail_rc;
  /* Called (outside the lock) before a manifest compare-and-swap runs. */
  void (*before_cas)(mstore *s);
  /* Async: completions come from a thread of their own. */
  int async;
  pthread_t workers[3];
  vv_store_req *queue[256];
  size_t qhead, qtail;
  pthread_cond_t qcv;
  int stop;
  unsigned max_inflight, inflight;
  /* Holds the first object upload until a second one is submitted (or 10 s
   * pass): a save with uploads in flight gets past it at once. */
  unsigned puts_submitted;
  int held;
};

static int64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static mobj *find_obj(mstore *s, const char *key) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->objs[i].key, key)) return &s->objs[i];
  return NULL;
}

static unsigned char *dup_bytes(const unsigned char *p, size_t n) {
  unsigned char *d = malloc(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

/* Performs r under the store's lock. */
static void perform(mstore *s, vv_store_req *r) {
  pthread_mutex_lock(&s->mu);
  s->calls++;
  s->ops[r->op]++;
  if (s->fail_at && s->calls == s->fail_at) {
    r->rc = s->fail_rc;
    snprintf(r->msg, sizeof r->msg, "injected failure of call %u", s->calls);
    pthread_mutex_unlock(&s->mu);
    return;
  }
  r->rc = 0;
  mobj *o;
  switch (r->op) {
    case VV_SOP_GET:
      o = find_obj(s, r->key);
      if (!o) {
        r->rc = -ENOENT;
        break;
      }
      if (r->len == VV_SOP_WHOLE) {
        s->whole_gets++;
        r->out = dup_bytes(o->data, o->len);
        r->out_len = o->len;
      } else {
        size_t off = r->off < o->len ? (size_t)r->off : o->len;
        size_t n = o->len - off < r->len ? o->len - off : (size_t)r->len;
        s->ranged++;
        s->ranged_bytes += n;
        r->out = dup_bytes(o->data + off, n);
        r->out_len = n;
      }
      break;
    case VV_SOP_PUT:
      o = find_obj(s, r->key);
      if (!o) {
        if (s->n == MAXOBJ) {
          r->rc = -ENOSPC;
          break;
        }
        o = &s->objs[s->n++];
        snprintf(o->key, sizeof o->key, "%s", r->key);
      } else {
        free(o->data);
      }
      o->data = dup_bytes(r->data, r->n);
      o->len = r->n;
      o->mtime = ms_now();
      break;
    case VV_SOP_DELETE:
      o = find_obj(s, r->key);
      if (o) {
        free(o->data);
        *o = s->objs[--s->n];
      }
      break;
    case VV_SOP_LIST: {
      size_t cap = 64, len = 0;
      unsigned char *out = malloc(cap);
      for (size_t i = 0; out && i < s->n; i++) {
        if (strncmp(s->objs[i].key, r->key, strlen(r->key))) continue;
        char rec[160];
        int k = snprintf(rec, sizeof rec, "%s%c%lld", s->objs[i].key, 0, (long long)s->objs[i].mtime);
        while (len + (size_t)k + 1 > cap) out = realloc(out, cap *= 2);
        memcpy(out + len, rec, (size_t)k + 1);
        len += (size_t)k + 1;
      }
      r->out = out;
      r->out_len = len;
      break;
    }
    case VV_SOP_GET_MANIFEST:
      if (!s->man_version) {
        r->rc = -ENOENT;
        break;
      }
      r->out = dup_bytes(s->man, s->man_len);
      r->out_len = s->man_len;
      snprintf(r->version, sizeof r->version, "v%u", s->man_version);
      break;
    case VV_SOP_PUT_MANIFEST: {
      char cur[32] = "";
      if (s->man_version) snprintf(cur, sizeof cur, "v%u", s->man_version);
      if (strcmp(cur, r->expected)) {
        r->rc = -VV_EIO_CONFLICT;
        snprintf(r->msg, sizeof r->msg, "precondition failed: expected '%s', found '%s'", r->expected, cur);
        break;
      }
      free(s->man);
      s->man = dup_bytes(r->data, r->n);
      s->man_len = r->n;
      s->man_version++;
      snprintf(r->version, sizeof r->version, "v%u", s->man_version);
      break;
    }
    default:
      r->rc = -EINVAL;
  }
  pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg) {
  mstore *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->stop && s->qhead == s->qtail) pthread_cond_wait(&s->qcv, &s->mu);
    if (s->qhead == s->qtail) break;
    vv_store_req *r = s->queue[s->qhead++ % 256];
    if (r->op == VV_SOP_PUT && !s->held) {
      s->held = 1;
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += 10;
      while (s->puts_submitted < 2 && pthread_cond_timedwait(&s->qcv, &s->mu, &until) == 0) {
      }
    }
    pthread_mutex_unlock(&s->mu);
    perform(s, r);
    pthread_mutex_lock(&s->mu);
    s->inflight--;
    pthread_mutex_unlock(&s->mu);
    r->complete(r);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void submit(void *ctx, vv_store_req *r) {
  mstore *s = ctx;
  if (r->op == VV_SOP_PUT_MANIFEST && s->before_cas) {
    void (*hook)(mstore *) = s->before_cas;
    s->before_cas = NULL; /* once */
    hook(s);
  }
  if (!s->async) {
    perform(s, r);
    r->complete(r);
    return;
  }
  pthread_mutex_lock(&s->mu);
  s->queue[s->qtail++ % 256] = r;
  if (++s->inflight > s->max_inflight) s->max_inflight = s->inflight;
  s->puts_submitted += r->op == VV_SOP_PUT;
  pthread_cond_broadcast(&s->qcv);
  pthread_mutex_unlock(&s->mu);
}

static void mstore_init(mstore *s, int async) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->qcv, NULL);
  s->async = async;
  for (int i = 0; async && i < 3; i++) pthread_create(&s->workers[i], NULL, worker, s);
}

static void mstore_free(mstore *s) {
  if (s->async) {
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < 3; i++) pthread_join(s->workers[i], NULL);
  }
  for (size_t i = 0; i < s->n; i++) free(s->objs[i].data);
  free(s->man);
  pthread_cond_destroy(&s->qcv);
  pthread_mutex_destroy(&s->mu);
}

static size_t count_prefix(mstore *s, const char *prefix) {
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->n; i++) n += !strncmp(s->objs[i].key, prefix, strlen(prefix));
  pthread_mutex_unlock(&s->mu);
  return n;
}

/* ---- fixtures -------------------------------------------------------------- */

#define ROOT "mem://bucket/tenant"

typedef struct conn {
  vv_store_ops ops;
  vv_objio *io;
} conn;

static int conn_open(conn *c, mstore *s, int64_t grace_ms) {
  c->ops.ctx = s;
  c->ops.submit = submit;
  return vv_objio_create(&c->ops, ROOT, 4, grace_ms, &c->io);
}

static int save_store(vv_db *db, mstore *s, int64_t grace_ms, vv_error *err) {
  conn c;
  if (conn_open(&c, s, grace_ms)) return VV_E_NOMEM;
  int rc = vv_db_save(db, ROOT, vv_objio_io(c.io), NULL, NULL, NULL, err);
  vv_objio_free(c.io); /* the database is eager here: nothing reads through it later */
  return rc;
}

static const char *store_differs(mstore *s, int lazy, const model *m) {
  static char why[400];
  conn c;
  if (conn_open(&c, s, 0)) return "no memory";
  vv_db *db = NULL;
  vv_error err = {{0}};
  int rc = load_dir_opts(ROOT, kKey, vv_objio_io(c.io), lazy, &db, NULL, &err);
  const char *d = NULL;
  if (rc) {
    strf(why, sizeof why, "load: %s (%s)", vv_status_code(rc), err.message);
    d = why;
  } else {
    d = db_differs(db, m);
  }
  vv_db_free(db); /* before its I/O table */
  vv_objio_free(c.io);
  return d;
}

static int references(const unsigned char *man, size_t len, const char *name) {
  vv_manifest m;
  const unsigned char *body;
  size_t blen;
  if (vv_manifest_parse(man, len, &m, &body, &blen, NULL) != VV_OK) return 0;
  int ref = 0;
  for (size_t j = 0; j < m.nchunks && !ref; j++) ref = !strcmp(m.chunks[j].ref.name, name);
  for (size_t j = 0; j < m.nbase && !ref; j++) ref = !strcmp(m.base[j].ref.name, name);
  for (size_t j = 0; j < m.ndeltas && !ref; j++) ref = !strcmp(m.deltas[j].ref.name, name);
  vv_manifest_free(&m);
  return ref;
}

/* Objects neither the current manifest nor a kept history one references. */
static size_t orphans(mstore *s) {
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->n; i++) {
    if (strncmp(s->objs[i].key, "objects/", 8)) continue;
    const char *name = s->objs[i].key + 8;
    int ref = s->man_version && references(s->man, s->man_len, name);
    for (size_t j = 0; j < s->n && !ref; j++)
      if (!strncmp(s->objs[j].key, "manifests/", 10)) ref = references(s->objs[j].data, s->objs[j].len, name);
    n += !ref;
  }
  pthread_mutex_unlock(&s->mu);
  return n;
}

static vv_db *encrypted_db(const model *m, uint32_t chunk) {
  vv_db *db = build_db(m, chunk);
  if (db && vv_db_set_secret(db, 1, kKey, NULL, 0) != VV_OK) {
    vv_db_free(db);
    return NULL;
  }
  return db;
}

/* ---- tests ----------------------------------------------------------------- */

VV_TEST(save_load_incremental_on_a_store) {
  for (int async = 0; async <= 1; async++) {
    mstore s;
    mstore_init(&s, async);
    model a, b;
    model_a(&a, 60);
    model_b(&a, &b, 60, 16);
    vv_db *db = encrypted_db(&a, 16);
    VV_REQUIRE(db);
    vv_error err = {{0}};
    VV_CHECK(save_store(db, &s, 0, &err) == VV_OK);
    VV_CHECK(s.ops[VV_SOP_PUT_MANIFEST] == 1);
    VV_CHECK(count_prefix(&s, "manifests/") == 1);
    VV_CHECK(count_prefix(&s, "lock") == 0); /* no lock object: the compare-and-swap excludes writers */
    const char *d = store_differs(&s, 0, &a);
    VV_CHECK(d == NULL);
    if (d) VV_NOTE("eager: %s", d);
    d = store_differs(&s, 1, &a);
    VV_CHECK(d == NULL);
    if (d) VV_NOTE("lazy: %s", d);
    /* Incremental: only the changed chunks are uploaded. */
    VV_REQUIRE(apply_model(db, &a, &b) == VV_OK);
    unsigned puts_before = s.ops[VV_SOP_PUT] + s.ops[VV_SOP_PUT_MANIFEST];
    vv_save_stats st;
    conn c;
    VV_REQUIRE(conn_open(&c, &s, 0) == VV_OK);
    VV_CHECK(vv_db_save(db, ROOT, vv_objio_io(c.io), NULL, NULL, &st, &err) == VV_OK);
    vv_objio_free(c.io);
    VV_CHECK(st.chunks_reused > 0 && !st.full);
    /* What it wrote, the manifest and its history copy: nothing else. */
    VV_CHECK(s.ops[VV_SOP_PUT] + s.ops[VV_SOP_PUT_MANIFEST] - puts_before == st.chunks_written + st.index_written + 2);
    VV_CHECK(store_differs(&s, 0, &b) == NULL);
    VV_CHECK(store_differs(&s, 1, &b) == NULL);
    VV_CHECK(orphans(&s) == 0); /* collected: no grace period */
    if (async) VV_CHECK(s.max_inflight > 1); /* uploads overlapped */
    vv_db_free(db);
    mstore_free(&s);
  }
}

/* The second writer commits while the first is between its uploads and its
 * compare-and-swap. */
static model g_other;
static void commit_other(mstore *s) {
  vv_db *db = encrypted_db(&g_other, 16);
  vv_error err = {{0}};
  if (!db || save_store(db, s, 3600 * 1000, &err) != VV_OK) VV_NOTE("the second writer failed: %s", err.message);
  vv_db_free(db);
}

VV_TEST(overlapping_writers_exactly_one_commits) {
  for (int first = 0; first <= 1; first++) {
    mstore s;
    mstore_init(&s, 0);
    model a, b;
    model_a(&a, 60);
    model_b(&a, &b, 60, 16);
    vv_error err = {{0}};
    if (first) { /* over an existing generation (If-Match), else into an empty store (If-None-Match) */
      vv_db *db0 = encrypted_db(&a, 16);
      VV_REQUIRE(db0 && save_store(db0, &s, 0, &err) == VV_OK);
      vv_db_free(db0);
    }
    model_a(&g_other, 40);
    vv_db *db = encrypted_db(&b, 16);
    VV_REQUIRE(db);
    s.before_cas = commit_other;
    err.message[0] = 0;
    int rc = save_store(db, &s, 3600 * 1000, &err);
    VV_CHECK(rc == VV_E_CONFLICT);
    VV_CHECK(strstr(err.message, "manifest") != NULL);
    /* The winner's generation is the session, whole. */
    VV_CHECK(store_differs(&s, 0, &g_other) == NULL);
    VV_CHECK(store_differs(&s, 1, &g_other) == NULL);
    /* The loser left objects behind; within the grace period a save keeps
     * them (they might be a live writer's), after it one collects them. */
    size_t left = orphans(&s);
    VV_CHECK(left > 0);
    VV_CHECK(save_store(db, &s, 3600 * 1000, &err) == VV_OK);
    VV_CHECK(store_differs(&s, 0, &b) == NULL);
    VV_CHECK(orphans(&s) >= left);
    VV_CHECK(save_store(db, &s, 0, &err) == VV_OK);
    VV_CHECK(orphans(&s) == 0);
    VV_CHECK(store_differs(&s, 1, &b) == NULL);
    vv_db_free(db);
    mstore_free(&s);
  }
}

VV_TEST(every_failed_request_leaves_the_previous_generation) {
  model a, b;
  model_a(&a, 60);
  model_b(&a, &b, 60, 16);
  int rcs[] = {-EIO, -VV_EIO_ACCESS, -ECANCELED};
  int want[] = {VV_E_IO, VV_E_ACCESS, VV_E_ABORTED};
  /* How many calls a clean second save makes. */
  mstore s;
  mstore_init(&s, 0);
  vv_error err = {{0}};
  vv_db *db = encrypted_db(&a, 16);
  VV_REQUIRE(db && save_store(db, &s, 0, &err) == VV_OK);
  VV_REQUIRE(apply_model(db, &a, &b) == VV_OK);
  unsigned before = s.calls;
  VV_REQUIRE(save_store(db, &s, 0, &err) == VV_OK);
  unsigned total = s.calls - before;
  vv_db_free(db);
  mstore_free(&s);
  VV_REQUIRE(total > 5);
  for (unsigned k = 1; k <= total; k++) {
    int f = (int)(k % 3);
    mstore_init(&s, (int)(k & 1));
    db = encrypted_db(&a, 16);
    VV_REQUIRE(db && save_store(db, &s, 0, &err) == VV_OK);
    VV_REQUIRE(apply_model(db, &a, &b) == VV_OK);
    pthread_mutex_lock(&s.mu);
    s.fail_at = s.calls + k;
    s.fail_rc = rcs[f];
    pthread_mutex_unlock(&s.mu);
    err.message[0] = 0;
    int rc = save_store(db, &s, 0, &err);
    if (rc == VV_OK) {
      /* A failure after the commit (history copy, garbage collection) is
       * not the save's: the new generation is whole. */
      VV_CHECK(store_differs(&s, 0, &b) == NULL);
    } else {
      VV_CHECK(rc == want[f]);
      if (rc != want[f]) VV_NOTE("call %u: %s (%s)", k, vv_status_code(rc), err.message);
      VV_CHECK(strstr(err.message, "injected") != NULL || rc == VV_E_ABORTED);
      const char *d = store_differs(&s, 0, &a);
      VV_CHECK(d == NULL);
      if (d) VV_NOTE("call %u: %s", k, d);
      /* And the next save succeeds and collects what the failed one left. */
      VV_CHECK(save_store(db, &s, 0, &err) == VV_OK);
      VV_CHECK(store_differs(&s, 1, &b) == NULL);
      VV_CHECK(orphans(&s) == 0);
    }
    vv_db_free(db);
    mstore_free(&s);
  }
}

VV_TEST(lazy_search_reads_pages_by_range) {
  mstore s;
  mstore_init(&s, 1);
  model a;
  model_a(&a, 80);
  vv_db *db = encrypted_db(&a, 40);
  vv_error err = {{0}};
  VV_REQUIRE(db && save_store(db, &s, 0, &err) == VV_OK);
  vv_db_free(db);
  conn c;
  VV_REQUIRE(conn_open(&c, &s, 0) == VV_OK);
  vv_load_stats st;
  VV_REQUIRE(load_dir_opts(ROOT, kKey, vv_objio_io(c.io), 1, &db, &st, &err) == VV_OK);
  VV_CHECK(st.lazy == 1);
  unsigned whole = s.whole_gets, ranged = s.ranged;
  vv_results *res = NULL;
  VV_REQUIRE(vv_db_search(db, a.vec[3], 5, NULL, &res) == VV_OK);
  VV_CHECK(res->count == 5 && res->hits[0].id_len == 4 && !memcmp(res->hits[0].id, "v003", 4));
  vv_results_free(res);
  VV_CHECK(s.whole_gets == whole); /* no whole chunk was fetched */
  VV_CHECK(s.ranged > ranged);
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.bytes_read == s.ranged_bytes);
  /* A missing object: the search fails with the object's status and name. */
  pthread_mutex_lock(&s.mu);
  for (size_t i = 0; i < s.n; i++)
    if (!strncmp(s.objs[i].key, "objects/", 8)) s.objs[i].len = 0;
  pthread_mutex_unlock(&s.mu);
  VV_CHECK(vv_db_set_cache_size(db, 1) == VV_OK);
  vv_search_opts so = {0};
  so.err = &err;
  err.message[0] = 0;
  int rc = vv_db_search(db, a.vec[50], 5, &so, &res);
  VV_CHECK(rc == VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "objects/") != NULL || strstr(err.message, "chunk") != NULL);
  vv_db_free(db);
  vv_objio_free(c.io);
  mstore_free(&s);
}

VV_TEST(store_errors_map_to_statuses) {
  mstore s;
  mstore_init(&s, 0);
  conn c;
  VV_REQUIRE(conn_open(&c, &s, 0) == VV_OK);
  vv_db *db = NULL;
  vv_error err = {{0}};
  VV_CHECK(load_dir_opts(ROOT, kKey, vv_objio_io(c.io), 0, &db, NULL, &err) == VV_E_NOT_FOUND);
  s.fail_at = s.calls + 1;
  s.fail_rc = -VV_EIO_ACCESS;
  err.message[0] = 0;
  VV_CHECK(load_dir_opts(ROOT, kKey, vv_objio_io(c.io), 0, &db, NULL, &err) == VV_E_ACCESS);
  VV_CHECK(strstr(err.message, ROOT "/manifest.json") != NULL);
  if (!strstr(err.message, ROOT "/manifest.json")) fprintf(stderr, "message: %s\n", err.message);
  s.fail_at = s.calls + 1;
  s.fail_rc = -VV_EIO_ASYNC;
  VV_CHECK(load_dir_opts(ROOT, kKey, vv_objio_io(c.io), 0, &db, NULL, &err) == VV_E_ASYNC_REQUIRED);
  vv_objio_free(c.io);
  /* A foreign object under the prefix: never a session to save into. */
  pthread_mutex_lock(&s.mu);
  snprintf(s.objs[0].key, sizeof s.objs[0].key, "photos/cat.jpg");
  s.objs[0].data = dup_bytes((const unsigned char *)"x", 1);
  s.objs[0].len = 1;
  s.n = 1;
  pthread_mutex_unlock(&s.mu);
  model a;
  model_a(&a, 10);
  db = encrypted_db(&a, 16);
  VV_REQUIRE(db);
  VV_CHECK(save_store(db, &s, 0, &err) == VV_E_NOT_A_SESSION);
  VV_CHECK(s.ops[VV_SOP_PUT] == 0 && s.ops[VV_SOP_DELETE] == 0);
  vv_db_free(db);
  mstore_free(&s);
}

VV_TEST_MAIN()
