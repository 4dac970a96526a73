/*
 * test/c/test_session_faults.c: crash safety of saves and loads under
 * injected I/O faults (session/save.c, load.c), SQLite style.
 *
 * Owns: the fault-injection loops (every operation of a save failed in
 * turn with ENOSPC and with EIO, for a first save, an incremental save and
 * an encrypted one, of a database built, loaded or loaded lazily; "crash
 * at N"; one kind of operation at a time; short writes), a save cancelled
 * at every progress tick, loads under failing and short reads, and the
 * writer lock. Lazy loading itself is test_lazy.c's.
 *
 * What a save that fails before its commit point must leave (docs/FORMAT.md
 * section 6): the previous generation byte for byte (manifest.json,
 * manifests/ and every file it had; only new, unreferenced objects may
 * appear), no tmp-* files, a load yielding exactly the previous content,
 * and a database whose next save works and loads back right.
 *
 * The commit point is the rename of a temporary file onto manifest.json.
 * The operations after it are: open, fsync and close of the session
 * directory (a failure there is reported, ERR_IO or ERR_NOSPC, although the
 * new generation is already visible: its durability is unknown); then the
 * garbage collection, which must never fail a save: list manifests/, read
 * each retained manifest (open, fsize, read, close), unlink manifests past
 * the newest 3, list the session root and unlink its tmp-*, list objects/
 * and unlink every object no retained manifest references; last, the close
 * of the lock file. Any of these failing must leave the new generation
 * loadable, and every object of every retained manifest in place.
 *
 * Most saves go through faultio with the real fsync skipped: crashes are
 * simulated logically, and real fsyncs would dominate the run.
 *
 * Each test runs in a forked child (VV_ISOLATED, support.h), so an engine
 * crash or a sanitizer abort fails that test and the others still run.
 * Sessions live under temporary directories ($VV_TEST_TMPDIR, default /tmp)
 * removed at the end; the database model, the session editing helpers and
 * the snapshots are in support.c, the fault-injecting I/O table in faultio.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/codec.h"
#include "common/util.h"
#include "crypto/crypto.h"
#include "session/io.h"
#include "session/manifest.h"
#include "session/object.h"
#include "vecvault.h"
#include "vvtest.h"

#include "faultio.h"
#define VT_SESSION_MODEL
#include "support.h"

VT_MANY_DATABASES()

/* ---- the fault loops ------------------------------------------------------ */

enum { SAVE_FIRST, SAVE_INCREMENTAL, SAVE_ENCRYPTED };

typedef struct loop_cfg {
  const char *name;
  int scenario;       /* SAVE_* */
  int err;            /* injected errno */
  int crash;          /* crash at N instead of failing only N */
  unsigned kinds;     /* 0 = every operation */
  size_t short_write; /* also write in pieces of this size */
  int loaded;         /* incremental: the database was loaded from the previous
                         generation (else it saved that generation itself) */
  int lazy;           /* ... and loaded lazily: the save reads the rows it moves
                         from their old chunks */
  int fresh_dir;      /* first save: the directory does not exist yet (else it
                         exists, empty) */
  long min_runs;      /* the loop must have run at least this often */
  int parity;         /* under sanitizers (and for lazy loops): 1 = only odd
                         N, 2 = only even N (the ENOSPC and EIO loops of a
                         scenario split the operations between them); 0 =
                         every N */
} loop_cfg;

#define LOOP_N 40 /* vectors in generation A */
#define LOOP_CHUNK 20

typedef struct loop_fixture {
  model a, b;
  char root[64], dir[128], base[128];
} loop_fixture;

static void fixture_models(loop_fixture *fx) {
  model_a(&fx->a, LOOP_N);
  model_b(&fx->a, &fx->b, LOOP_N, LOOP_CHUNK);
}

/* The directories, and for SAVE_INCREMENTAL/ENCRYPTED the generation A that
 * each run starts from (in fx->base). */
static int fixture_init(loop_fixture *fx, int scenario) {
  fixture_models(fx);
  if (make_root(fx->root)) return -1;
  strf(fx->dir, sizeof fx->dir, "%s/s", fx->root);
  strf(fx->base, sizeof fx->base, "%s/base", fx->root);
  if (scenario == SAVE_FIRST) return 0;
  vv_db *db = build_db(&fx->a, LOOP_CHUNK);
  int rc = db ? VV_OK : VV_E_NOMEM;
  if (!rc && scenario == SAVE_ENCRYPTED) rc = vv_db_set_secret(db, 1, kKey, NULL, 0);
  if (!rc) rc = save_clean(db, fx->base);
  vv_db_free(db);
  return rc ? -1 : 0;
}

/* Prepares the directory and the database for one run: returns the
 * database, ready to save; *old is the generation on disk (NULL: none),
 * *neu the content the save writes. */
static vv_db *prepare(const loop_fixture *fx, const loop_cfg *cfg, const model **old, const model **neu) {
  const unsigned char *key = cfg->scenario == SAVE_ENCRYPTED ? kKey : NULL;
  vv_db *db = NULL;
  if (cfg->scenario == SAVE_FIRST) {
    clear_dir(fx->dir, cfg->fresh_dir);
    if (!cfg->fresh_dir) make_dirs(fx->dir);
    *old = NULL;
    *neu = &fx->a;
    return build_db(&fx->a, LOOP_CHUNK);
  }
  clear_dir(fx->dir, 0);
  *old = &fx->a;
  *neu = &fx->b;
  if (cfg->loaded) {
    vv_error err;
    vv_load_stats st;
    if (link_dir(fx->base, fx->dir) || load_dir_opts(fx->dir, key, NULL, cfg->lazy, &db, &st, &err) != VV_OK)
      return NULL;
    if (st.lazy != cfg->lazy) goto fail;
  } else {
    make_dirs(fx->dir);
    db = build_db(&fx->a, LOOP_CHUNK);
    if (db && key && vv_db_set_secret(db, 1, key, NULL, 0) != VV_OK) goto fail;
    if (db && save_clean(db, fx->dir) != VV_OK) goto fail;
  }
  if (db && apply_model(db, &fx->a, &fx->b) != VV_OK) goto fail;
  return db;
fail:
  vv_db_free(db);
  return NULL;
}

/* An injected failure that a save may rightly shrug off: the open of a
 * manifest.json that does not exist yet (it fails anyway), or the close of
 * a descriptor opened read-only (a directory after its fsync, a file after
 * reading it), which cannot lose data. */
static int harmless_injection(const fio *f, int had_manifest) {
  if (f->failed_kind == FIO_CLOSE) return (f->failed_flags & O_ACCMODE) == O_RDONLY;
  return f->failed_kind == FIO_OPEN && fio_ends_with(f->failed_path, "/manifest.json") &&
         (f->failed_flags & O_ACCMODE) == O_RDONLY && !had_manifest;
}

typedef struct loop_result {
  long runs, pre_commit, shrugged, post_ok, post_err;
  char post_err_ops[256];
} loop_result;

/* Runs the save with operation N failing (or crashing) for N = 1, 2, ...
 * until a save completes without reaching N. */
static void fault_loop(const loop_cfg *cfg, loop_result *res) {
  loop_fixture fx;
  memset(res, 0, sizeof *res);
  if (fixture_init(&fx, cfg->scenario)) {
    VV_CHECK(!"setting up the fixture failed");
    return;
  }
  const unsigned char *key = cfg->scenario == SAVE_ENCRYPTED ? kKey : NULL;
  const int want = vv_io_status(-(cfg->crash ? EIO : cfg->err));
  snap before = {0}, after = {0};
  int dumped = 0;
  long first = 1, stride = 1;
  /* The lazy-database loops always split the operations between them:
   * they repeat what the loaded-database loops check, plus the chunk reads
   * and the rebind. */
  if ((SANITIZER_SLOWDOWN > 1 || cfg->lazy) && cfg->parity) {
    first = cfg->parity;
    stride = 2;
  }
  for (long n = first; n < 100000; n += stride) {
    const model *old = NULL, *neu = NULL;
    vv_db *db = prepare(&fx, cfg, &old, &neu);
    VV_NOTE("%s: N=%ld", cfg->name, n);
    if (!db) {
      VV_CHECK(!"preparing the scenario failed");
      break;
    }
    char mpath[256];
    strf(mpath, sizeof mpath, "%s/manifest.json", fx.dir);
    int had_manifest = path_exists(mpath);
    snap_take(&before, fx.dir);

    fio f;
    fio_init(&f, NULL);
    f.fail_at = n;
    f.err = cfg->err;
    f.crash = cfg->crash;
    f.kinds = cfg->kinds;
    f.short_write = cfg->short_write;
    vv_error err = {{0}};
    int rc = save_to(db, fx.dir, &f, &err);
    res->runs++;

    if (!f.injected) {
      /* Every operation has had its turn. */
      VV_CHECK(rc == VV_OK);
      const char *d = dir_differs(fx.dir, key, neu);
      VV_CHECK(d == NULL);
      if (d) fprintf(stderr, "  after the complete save: %s\n", d);
      d = dir_differs_as(fx.dir, key, 1, neu);
      VV_CHECK(d == NULL);
      if (d) fprintf(stderr, "  after the complete save: %s\n", d);
      VV_CHECK(count_tmp(fx.dir) == 0);
      vv_db_free(db);
      fio_destroy(&f);
      break;
    }
    char opdesc[200];
    strf(opdesc, sizeof opdesc, "%s %s", fio_kind_name(f.failed_kind), f.failed_path);
    VV_NOTE("%s: N=%ld fails %s", cfg->name, n, opdesc);
    int dump = 0;

    if (cfg->crash) {
      /* Power loss at N: whatever is on disk must open as exactly the old
       * or exactly the new generation, decided by the commit rename. */
      const model *expect = f.committed ? neu : old;
      if (!expect) {
        vv_db *x = NULL;
        vv_error e2;
        int lr = load_dir(fx.dir, key, NULL, &x, &e2);
        VV_CHECK(lr == VV_E_NOT_FOUND);
        vv_db_free(x);
      } else {
        const char *d = dir_differs(fx.dir, key, expect);
        VV_CHECK(d == NULL);
        if (d) fprintf(stderr, "  after a crash (%s): %s\n", f.committed ? "committed" : "not committed", d);
        dump |= d != NULL;
      }
      if (f.committed) res->post_ok++;
      else res->pre_commit++;
    } else if (!f.after_commit && rc == VV_OK && harmless_injection(&f, had_manifest)) {
      /* Ignored, rightly: a complete save. */
      res->shrugged++;
      const char *d = dir_differs(fx.dir, key, neu);
      VV_CHECK(d == NULL);
      if (d) fprintf(stderr, "  after a save that ignored a harmless failure: %s\n", d);
      VV_CHECK(count_tmp(fx.dir) == 0);
      VV_CHECK(missing_objects(fx.dir) == 0);
    } else if (!f.after_commit) {
      res->pre_commit++;
      VV_CHECK(rc == want);
      if (rc != want) fprintf(stderr, "  save returned %s: %s\n", vv_status_code(rc), err.message);
      dump |= rc != want;
      snap_take(&after, fx.dir);
      const char *why = snap_untouched(&before, &after);
      VV_CHECK(why == NULL);
      if (why) fprintf(stderr, "  previous generation touched: %s\n", why);
      if (old) {
        const char *d = dir_differs(fx.dir, key, old);
        VV_CHECK(d == NULL);
        if (d) fprintf(stderr, "  previous generation after a failed save: %s\n", d);
      } else {
        VV_CHECK(!path_exists(mpath));
      }
      int tmp = count_tmp(fx.dir);
      VV_CHECK(tmp == 0);
      dump |= why != NULL || tmp != 0;
    } else {
      /* After the commit: the new generation is what is on disk. GC
       * failures must not fail the save; a failed fsync of the session
       * directory may (the rename's durability is unknown). */
      if (rc == VV_OK) {
        res->post_ok++;
      } else {
        res->post_err++;
        if (!strstr(res->post_err_ops, fio_kind_name(f.failed_kind)) && strlen(res->post_err_ops) < 200) {
          strcat(res->post_err_ops, fio_kind_name(f.failed_kind));
          strcat(res->post_err_ops, " ");
        }
        VV_CHECK(rc == want);
        VV_CHECK(f.failed_kind == FIO_OPEN || f.failed_kind == FIO_FSYNC || f.failed_kind == FIO_CLOSE);
      }
      const char *d = dir_differs(fx.dir, key, neu);
      VV_CHECK(d == NULL);
      if (d) fprintf(stderr, "  after a failure past the commit point: %s\n", d);
      int miss = missing_objects(fx.dir);
      VV_CHECK(miss == 0);
      if (miss) fprintf(stderr, "  %d objects of retained manifests were deleted\n", miss);
      VV_CHECK(count_tmp(fx.dir) == 0);
      dump |= d != NULL || miss != 0;
    }
    if (dump && !dumped++) {
      fprintf(stderr, "  the operations of that save (the first failing run of this loop):\n");
      fio_dump(&f, stderr);
    }
    /* A lazy database that committed through `f` reads its chunks through
     * it from now on: it stays alive, and stops failing (a "crash" is over
     * once the process would have restarted). */
    f.fail_at = 0;
    f.crash = 0;
    fio_reset(&f);

    /* The same database saves again, cleanly: its bookkeeping must have
     * survived the failure. */
    vv_error e3 = {{0}};
    fio g;
    fio_init(&g, NULL);
    rc = save_to(db, fx.dir, &g, &e3);
    VV_CHECK(rc == VV_OK);
    if (rc) fprintf(stderr, "  the save after the failure: %s (%s)\n", vv_status_code(rc), e3.message);
    const char *d = dir_differs(fx.dir, key, neu);
    VV_CHECK(d == NULL);
    if (d) fprintf(stderr, "  after the save that followed the failure: %s\n", d);
    VV_CHECK(missing_objects(fx.dir) == 0);
    int tmp = count_tmp(fx.dir);
    VV_CHECK(tmp == 0);
    if (tmp && cfg->crash) fprintf(stderr, "  %d stray tmp-* files survive the next save\n", tmp);
    if (cfg->lazy) {
      d = db_differs(db, neu); /* through its chunks, wherever they are now */
      VV_CHECK(d == NULL);
      if (d) fprintf(stderr, "  the lazy database after both saves: %s\n", d);
    }
    vv_db_free(db);
    fio_destroy(&g);
    fio_destroy(&f);
  }
  snap_free(&before);
  snap_free(&after);
  rm_rf(fx.root);
  VV_CHECK(res->runs >= cfg->min_runs / stride);
  printf("  %-36s %3ld runs: %ld failed before the commit (%ld harmless, ignored), "
         "after it %ld ok / %ld failed%s%s\n",
         cfg->name, res->runs, res->pre_commit + res->shrugged, res->shrugged, res->post_ok, res->post_err,
         res->post_err ? " at " : "", res->post_err_ops);
}

static void fault_loop_run(void *cfg) {
  loop_result r;
  g_m = LOOP_M; /* in the forked child only */
  fault_loop((const loop_cfg *)cfg, &r);
}

VV_TEST(fail_nth_op_first_save) {
  loop_cfg c1 = {.name = "first save, ENOSPC",
                 .scenario = SAVE_FIRST,
                 .err = ENOSPC,
                 .fresh_dir = 1,
                 .min_runs = 20,
                 .parity = 1};
  VV_ISOLATED(fault_loop_run, &c1);
  loop_cfg c2 = {
      .name = "first save into an empty dir, EIO", .scenario = SAVE_FIRST, .err = EIO, .min_runs = 20, .parity = 2};
  VV_ISOLATED(fault_loop_run, &c2);
}

VV_TEST(fail_nth_op_incremental_save) {
  loop_cfg c1 = {
      .name = "incremental save, ENOSPC", .scenario = SAVE_INCREMENTAL, .err = ENOSPC, .min_runs = 20, .parity = 1};
  VV_ISOLATED(fault_loop_run, &c1);
  loop_cfg c2 = {.name = "incremental save (loaded db), EIO",
                 .scenario = SAVE_INCREMENTAL,
                 .err = EIO,
                 .loaded = 1,
                 .min_runs = 20,
                 .parity = 2};
  VV_ISOLATED(fault_loop_run, &c2);
  loop_cfg c3 = {.name = "incremental save (lazy db), ENOSPC",
                 .scenario = SAVE_INCREMENTAL,
                 .err = ENOSPC,
                 .loaded = 1,
                 .lazy = 1,
                 .min_runs = 20,
                 .parity = 1};
  VV_ISOLATED(fault_loop_run, &c3);
}

VV_TEST(fail_nth_op_encrypted_save) {
  loop_cfg c1 = {
      .name = "encrypted save, ENOSPC", .scenario = SAVE_ENCRYPTED, .err = ENOSPC, .min_runs = 20, .parity = 1};
  VV_ISOLATED(fault_loop_run, &c1);
  loop_cfg c2 = {.name = "encrypted save (loaded db), EIO",
                 .scenario = SAVE_ENCRYPTED,
                 .err = EIO,
                 .loaded = 1,
                 .min_runs = 20,
                 .parity = 2};
  VV_ISOLATED(fault_loop_run, &c2);
}

VV_TEST(fail_nth_op_of_one_kind) {
  static const struct {
    unsigned kinds;
    int err;
    const char *name;
  } k[] = {{FIO_BIT(FIO_FSYNC), EIO, "only fsync, EIO"},
           {FIO_BIT(FIO_RENAME), EIO, "only rename, EIO"},
           {FIO_BIT(FIO_WRITE), ENOSPC, "only write, ENOSPC"},
           {FIO_BIT(FIO_OPEN), EIO, "only open, EIO"}};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    loop_cfg c = {.name = k[i].name,
                  .scenario = SAVE_INCREMENTAL,
                  .err = k[i].err,
                  .kinds = k[i].kinds,
                  .loaded = 1,
                  .min_runs = 4,
                  .parity = 1 + (int)(i & 1)};
    VV_ISOLATED(fault_loop_run, &c);
  }
  /* ENOSPC in the middle of a file, after some short writes went through. */
  loop_cfg c = {.name = "short writes then ENOSPC",
                .scenario = SAVE_ENCRYPTED,
                .err = ENOSPC,
                .kinds = FIO_BIT(FIO_WRITE),
                .short_write = 997,
                .loaded = 1,
                .min_runs = 10,
                .parity = 2};
  VV_ISOLATED(fault_loop_run, &c);
}

VV_TEST(crash_at_nth_op) {
  loop_cfg c1 = {
      .name = "crash, first save", .scenario = SAVE_FIRST, .err = EIO, .crash = 1, .fresh_dir = 1, .min_runs = 20,
      .parity = 1};
  VV_ISOLATED(fault_loop_run, &c1);
  loop_cfg c2 = {.name = "crash, incremental save",
                 .scenario = SAVE_INCREMENTAL,
                 .err = EIO,
                 .crash = 1,
                 .loaded = 1,
                 .min_runs = 20,
                 .parity = 2};
  VV_ISOLATED(fault_loop_run, &c2);
  loop_cfg c3 = {.name = "crash, encrypted save",
                 .scenario = SAVE_ENCRYPTED,
                 .err = EIO,
                 .crash = 1,
                 .loaded = 1,
                 .min_runs = 20,
                 .parity = 1};
  VV_ISOLATED(fault_loop_run, &c3);
  loop_cfg c4 = {.name = "crash, encrypted save (lazy db)",
                 .scenario = SAVE_ENCRYPTED,
                 .err = EIO,
                 .crash = 1,
                 .loaded = 1,
                 .lazy = 1,
                 .min_runs = 20,
                 .parity = 2};
  VV_ISOLATED(fault_loop_run, &c4);
}

/* A fixture without a base generation, for tests whose databases save
 * their previous generation themselves. */
static int plain_fixture(loop_fixture *fx) { return fixture_init(fx, SAVE_FIRST); }

static const loop_cfg kSavedIncremental = {.name = "incremental", .scenario = SAVE_INCREMENTAL};
static const loop_cfg kSavedEncrypted = {.name = "encrypted", .scenario = SAVE_ENCRYPTED};

static void short_writes_and_reads_still_save_and_load_body(void *arg) {
  (void)arg;
  loop_fixture fx;
  VV_REQUIRE(plain_fixture(&fx) == 0);
  static const size_t pieces[] = {1, 7, 4095};
  for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
    for (int enc = 0; enc < 2; enc++) {
      VV_NOTE("piece=%zu encrypted=%d", pieces[i], enc);
      const model *old, *neu;
      vv_db *db = prepare(&fx, enc ? &kSavedEncrypted : &kSavedIncremental, &old, &neu);
      VV_REQUIRE(db != NULL);
      fio f;
      fio_init(&f, NULL);
      f.short_write = pieces[i];
      f.short_read = pieces[i];
      vv_error err = {{0}};
      int rc = save_to(db, fx.dir, &f, &err);
      VV_CHECK(rc == VV_OK);
      /* Load through the same short reads. */
      vv_db *back = NULL;
      fio_reset(&f);
      rc = load_dir(fx.dir, enc ? kKey : NULL, fio_io(&f), &back, &err);
      VV_CHECK(rc == VV_OK);
      if (back) VV_CHECK(db_differs(back, neu) == NULL);
      vv_db_free(back);
      fio_destroy(&f);
      vv_db_free(db);
    }
  }
  /* And once through the real table, real fsyncs included. */
  const model *old, *neu;
  vv_db *db = prepare(&fx, &kSavedIncremental, &old, &neu);
  VV_REQUIRE(db != NULL);
  vv_error err;
  VV_CHECK(vv_db_save(db, fx.dir, NULL, NULL, NULL, NULL, &err) == VV_OK);
  VV_CHECK(dir_differs(fx.dir, NULL, neu) == NULL);
  vv_db_free(db);
  rm_rf(fx.root);
}

VV_TEST(short_writes_and_reads_still_save_and_load) {
  VV_ISOLATED(short_writes_and_reads_still_save_and_load_body, NULL);
}

/* A progress callback that cancels at its k-th call. */
typedef struct cancel_at {
  long k, calls;
} cancel_at;

static int cancel_progress(void *ctx, uint64_t done, uint64_t total, int phase, uint64_t bytes) {
  (void)done;
  (void)total;
  (void)phase;
  (void)bytes;
  cancel_at *c = ctx;
  return ++c->calls == c->k;
}

/* Cancelling through progress at every tick: before the commit it is
 * VV_E_ABORTED with the previous generation untouched, after it too late
 * (VV_OK); the database saves fine afterwards either way. */
static void save_cancelled_at_every_tick_body(void *arg) {
  (void)arg;
  loop_fixture fx;
  VV_REQUIRE(fixture_init(&fx, SAVE_INCREMENTAL) == 0);
  loop_cfg cfg = {.name = "cancel", .scenario = SAVE_INCREMENTAL, .loaded = 1};
  snap before = {0}, after = {0};
  long aborted = 0;
  for (long k = 1; k < 1000; k++) {
    const model *old, *neu;
    vv_db *db = prepare(&fx, &cfg, &old, &neu);
    VV_REQUIRE(db != NULL);
    VV_NOTE("cancel at progress call %ld", k);
    snap_take(&before, fx.dir);
    fio f;
    fio_init(&f, NULL);
    cancel_at c = {k, 0};
    vv_error err = {{0}};
    int rc = vv_db_save(db, fx.dir, fio_io(&f), cancel_progress, &c, NULL, &err);
    int committed = f.committed;
    fio_destroy(&f);
    if (rc == VV_E_ABORTED) {
      aborted++;
      VV_CHECK(!committed);
      snap_take(&after, fx.dir);
      VV_CHECK(snap_untouched(&before, &after) == NULL);
      VV_CHECK(count_tmp(fx.dir) == 0);
      VV_CHECK(dir_differs(fx.dir, NULL, old) == NULL);
    } else {
      VV_CHECK(rc == VV_OK);
      VV_CHECK(dir_differs(fx.dir, NULL, neu) == NULL);
    }
    int last = c.calls < k; /* the save finished before the k-th call */
    VV_CHECK(save_clean(db, fx.dir) == VV_OK);
    VV_CHECK(dir_differs(fx.dir, NULL, neu) == NULL);
    VV_CHECK(missing_objects(fx.dir) == 0);
    vv_db_free(db);
    if (last) break;
  }
  VV_CHECK(aborted >= 2);
  snap_free(&before);
  snap_free(&after);
  rm_rf(fx.root);
}

VV_TEST(save_cancelled_at_every_tick) { VV_ISOLATED(save_cancelled_at_every_tick_body, NULL); }

/* Loads fail cleanly when any of their operations fails. */
static void fail_nth_op_of_a_load_body(void *arg) {
  (void)arg;
  loop_fixture fx;
  VV_REQUIRE(plain_fixture(&fx) == 0);
  for (int enc = 0; enc < 2; enc++) {
    const model *old, *neu;
    vv_db *db = prepare(&fx, enc ? &kSavedEncrypted : &kSavedIncremental, &old, &neu);
    VV_REQUIRE(db != NULL);
    VV_REQUIRE(save_clean(db, fx.dir) == VV_OK);
    vv_db_free(db);
    long n;
    for (n = 1; n < 10000; n++) {
      VV_NOTE("encrypted=%d N=%ld", enc, n);
      fio f;
      fio_init(&f, NULL);
      f.fail_at = n;
      f.err = EIO;
      vv_db *back = NULL;
      vv_error err = {{0}};
      vv_load_opts o = {0};
      o.key = enc ? kKey : NULL;
      o.io = fio_io(&f);
      o.threads = 2;
      int rc = vv_db_load(fx.dir, &o, NULL, NULL, &back, NULL, &err);
      int injected = f.injected > 0, kind = f.failed_kind;
      fio_destroy(&f);
      if (!injected) {
        VV_CHECK(rc == VV_OK && back && db_differs(back, neu) == NULL);
        vv_db_free(back);
        break;
      }
      /* A failed close of a file already read changes nothing. */
      if (rc == VV_OK && kind == FIO_CLOSE) {
        VV_CHECK(db_differs(back, neu) == NULL);
      } else {
        VV_CHECK(rc == VV_E_IO);
        VV_CHECK(back == NULL);
        if (rc != VV_E_IO) fprintf(stderr, "  load returned %s: %s\n", vv_status_code(rc), err.message);
      }
      vv_db_free(back);
    }
    VV_CHECK(n > 5);
  }
  rm_rf(fx.root);
}

VV_TEST(fail_nth_op_of_a_load) { VV_ISOLATED(fail_nth_op_of_a_load_body, NULL); }

/* ---- the writer lock ----------------------------------------------------- */

static void locked_directory_refuses_a_second_writer_body(void *arg) {
  (void)arg;
  loop_fixture fx;
  VV_REQUIRE(plain_fixture(&fx) == 0);
  const model *old, *neu;
  vv_db *db = prepare(&fx, &kSavedIncremental, &old, &neu);
  VV_REQUIRE(db != NULL);
  char lock[256];
  strf(lock, sizeof lock, "%s/lock", fx.dir);
  int fd = open(lock, O_RDWR | O_CREAT, 0600);
  VV_REQUIRE(fd >= 0);
  VV_REQUIRE(flock(fd, LOCK_EX | LOCK_NB) == 0);
  snap before = {0}, after = {0};
  snap_take(&before, fx.dir);
  vv_error err = {{0}};
  int rc = vv_db_save(db, fx.dir, NULL, NULL, NULL, NULL, &err);
  VV_CHECK(rc == VV_E_LOCKED);
  VV_CHECK(strstr(err.message, "another writer") != NULL);
  snap_take(&after, fx.dir);
  VV_CHECK(snap_equal(&before, &after));
  VV_CHECK(count_tmp(fx.dir) == 0);
  VV_CHECK(dir_differs(fx.dir, NULL, old) == NULL);
  /* Readers are never blocked. */
  VV_CHECK(dir_differs(fx.dir, NULL, old) == NULL);
  close(fd);
  rc = vv_db_save(db, fx.dir, NULL, NULL, NULL, NULL, &err);
  VV_CHECK(rc == VV_OK);
  VV_CHECK(dir_differs(fx.dir, NULL, neu) == NULL);
  snap_free(&before);
  snap_free(&after);
  vv_db_free(db);
  rm_rf(fx.root);
}

VV_TEST(locked_directory_refuses_a_second_writer) {
  VV_ISOLATED(locked_directory_refuses_a_second_writer_body, NULL);
}

VV_TEST_MAIN()
