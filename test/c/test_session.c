/*
 * test/c/test_session.c: crash safety and hostile input for sessions
 * (session/save.c, load.c, manifest.c, object.c), SQLite style.
 *
 * Owns: the fault-injection loops (every operation of a save failed in
 * turn with ENOSPC and with EIO, for a first save, an incremental save and
 * an encrypted one, of a database built, loaded or loaded lazily; "crash
 * at N"; one kind of operation at a time; short writes), loads under
 * failing and short reads, the AEAD binding of objects to their sequence
 * number, kind and session, the manifest parser under 20,000 mutations,
 * loads of sessions whose manifest or objects were edited with names,
 * sizes and checksums fixed up (so the schema and the decoders are
 * reached, not just the hashes), the format-2 codebook and code rules on
 * re-encoded index segments, version-1 sessions (loaded eagerly, upgraded
 * by their first save), and the writer lock. The I/O table used for
 * injection is faultio.h; lazy loading itself is test_lazy.c's.
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
 * Each test runs in a forked child (isolated()), so an engine crash or a
 * sanitizer abort fails that test and the others still run. Sessions live
 * under mkdtemp directories in /tmp ($VV_TEST_TMPDIR overrides), removed at
 * the end. Most saves go through faultio with the real fsync skipped:
 * crashes are simulated logically, and real fsyncs would dominate the run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

#if defined(__SANITIZE_ADDRESS__)
#define VVT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VVT_ASAN 1
#endif
#endif
#ifdef VVT_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* Databases are several times dearer under ASan (every malloc and free
 * records a stack; big blocks are mapped and poisoned): to keep this file
 * near its time budget there, the load-per-iteration fuzzers run this many
 * times fewer iterations, and each scenario's ENOSPC and EIO fault loops
 * share the operations between them (odd N, even N; see loop_cfg.parity).
 * The plain build runs everything. */
#ifdef VVT_ASAN
#define SANITIZER_SLOWDOWN 5
/* Shorter malloc/free stacks and a smaller quarantine: most of the cost of
 * the thousands of databases made here. Reports still carry the full stack
 * of the bad access; ASAN_OPTIONS overrides these. */
__attribute__((used, visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "malloc_context_size=4:quarantine_size_mb=16"; }
#else
#define SANITIZER_SLOWDOWN 1
#endif

/* Every database allocates megabytes of zeroed arena blocks. Once glibc has
 * freed one mmapped block it raises its mmap threshold, and later blocks
 * come from the heap and are memset, then trimmed away again on free: with
 * thousands of databases made here that dominates the run. A fixed
 * threshold keeps big blocks mmapped (zero pages, touched only where used). */
#if defined(__GLIBC__) && !defined(VVT_ASAN)
#include <malloc.h>
__attribute__((constructor)) static void tune_malloc(void) {
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}
#endif

/* ---- files and directories ---------------------------------------------- */

/* snprintf for paths and messages here, all far below their buffers'
 * sizes; a function, so the compiler's truncation guesses stay quiet. */
__attribute__((format(printf, 3, 4))) static int strf(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  return r;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* Where sessions go: one directory per test, made and removed by the parent
 * around each isolated run (so a crashed child leaves nothing behind). */
static char g_test_root[64];

static const char *tmp_base(void) {
  const char *base = getenv("VV_TEST_TMPDIR");
  return base && *base && strlen(base) <= 32 ? base : "/tmp";
}

/* A fresh directory under the test's root (or $VV_TEST_TMPDIR, default /tmp). */
static int make_root(char out[64]) {
  if (g_test_root[0]) strf(out, 64, "%s/r-XXXXXX", g_test_root);
  else strf(out, 64, "%s/vvsess-XXXXXX", tmp_base());
  return mkdtemp(out) ? 0 : -1;
}

/* ---- isolation ------------------------------------------------------------ */

/* Runs fn(arg) in a forked child, so that an engine crash or a sanitizer
 * abort fails the current test instead of ending the whole binary. The
 * child's checks print as usual; its exit status says whether any failed
 * (and, under ASan, whether it leaked). Returns 0 when the child passed. */
static int isolated(void (*fn)(void *), void *arg) {
  fflush(stdout);
  fflush(stderr);
  strf(g_test_root, sizeof g_test_root, "%s/vvsess-XXXXXX", tmp_base());
  if (!mkdtemp(g_test_root)) g_test_root[0] = '\0';
  pid_t pid = fork();
  if (pid < 0) {
    fn(arg);
    if (g_test_root[0]) rm_rf(g_test_root);
    g_test_root[0] = '\0';
    return 0;
  }
  if (pid == 0) {
    int before = vvt_state()->failures;
    fn(arg);
#ifdef VVT_ASAN
    __lsan_do_leak_check(); /* exits non-zero on a leak */
#endif
    fflush(stdout);
    fflush(stderr);
    _exit(vvt_state()->failures > before ? 1 : 0);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (g_test_root[0]) rm_rf(g_test_root);
  g_test_root[0] = '\0';
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFSIGNALED(st))
    fprintf(stderr, "  [%s] the isolated run died of signal %d\n", vvt_state()->current, WTERMSIG(st));
  else if (WIFEXITED(st) && WEXITSTATUS(st) != 1)
    fprintf(stderr, "  [%s] the isolated run exited with %d (a sanitizer report?)\n", vvt_state()->current,
            WEXITSTATUS(st));
  return -1;
}

/* VV_CHECK that an isolated run passed, inside a VV_TEST body. */
#define VV_ISOLATED(fn, arg) VV_CHECK(isolated((fn), (arg)) == 0)

static unsigned char *read_all(const char *path, size_t *len) {
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
  if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) *len = (size_t)n;
  return b;
}

/* Writes a whole file in place (no O_TRUNC: truncating to zero makes ext4
 * flush, which costs milliseconds per call on some disks). Never used on a
 * file that is hard-linked elsewhere. */
static int write_all(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT, 0600);
  if (fd < 0) return -1;
  const unsigned char *p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w <= 0) break;
    p += w;
    left -= (size_t)w;
  }
  int rc = left == 0 && ftruncate(fd, (off_t)len) == 0 ? 0 : -1;
  return close(fd) == 0 ? rc : -1;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Number of tmp-* entries in dir, dir/objects and dir/manifests. */
static int count_tmp(const char *dir) {
  static const char *const subs[] = {"", "/objects", "/manifests"};
  int n = 0;
  for (int i = 0; i < 3; i++) {
    char p[256];
    strf(p, sizeof p, "%s%s", dir, subs[i]);
    DIR *d = opendir(p);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += starts_with(e->d_name, "tmp-");
    closedir(d);
  }
  return n;
}

/* ---- directory snapshots: name + bytes of every file but tmp-* ---------- */

typedef struct snap_ent {
  char rel[300];
  size_t len;
  unsigned char h[VV_HASH_BYTES];
} snap_ent;

typedef struct snap {
  snap_ent *e;
  size_t n, cap;
} snap;

static void snap_add_dir(snap *s, const char *dir, const char *sub) {
  char p[256];
  strf(p, sizeof p, "%s%s%s", dir, *sub ? "/" : "", sub);
  DIR *d = opendir(p);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || starts_with(e->d_name, "tmp-")) continue;
    char fp[600];
    strf(fp, sizeof fp, "%s/%s", p, e->d_name);
    struct stat st;
    if (stat(fp, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (s->n == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 64;
      s->e = realloc(s->e, s->cap * sizeof *s->e);
    }
    snap_ent *x = &s->e[s->n++];
    strf(x->rel, sizeof x->rel, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
    unsigned char *b = read_all(fp, &x->len);
    vv_hash(b, x->len, x->h);
    free(b);
  }
  closedir(d);
}

static void snap_take(snap *s, const char *dir) {
  s->n = 0;
  snap_add_dir(s, dir, "");
  snap_add_dir(s, dir, "objects");
  snap_add_dir(s, dir, "manifests");
}

static void snap_free(snap *s) {
  free(s->e);
  memset(s, 0, sizeof *s);
}

static const snap_ent *snap_find(const snap *s, const char *rel) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->e[i].rel, rel)) return &s->e[i];
  return NULL;
}

/* The previous generation untouched: every file kept its bytes, and the
 * only new files are objects (immutable, content-named; collected later).
 * NULL if so, else what differs (static buffer). */
static const char *snap_untouched(const snap *before, const snap *after) {
  static char why[256];
  for (size_t i = 0; i < before->n; i++) {
    const snap_ent *a = snap_find(after, before->e[i].rel);
    if (!a) {
      strf(why, sizeof why, "%s was removed", before->e[i].rel);
      return why;
    }
    if (a->len != before->e[i].len || memcmp(a->h, before->e[i].h, VV_HASH_BYTES)) {
      strf(why, sizeof why, "%s changed", before->e[i].rel);
      return why;
    }
  }
  for (size_t i = 0; i < after->n; i++) {
    if (snap_find(before, after->e[i].rel) || starts_with(after->e[i].rel, "objects/")) continue;
    if (!strcmp(after->e[i].rel, "lock")) continue; /* created by the first save's open */
    strf(why, sizeof why, "%s appeared", after->e[i].rel);
    return why;
  }
  return NULL;
}

static int snap_equal(const snap *a, const snap *b) {
  if (a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++) {
    const snap_ent *x = snap_find(b, a->e[i].rel);
    if (!x || x->len != a->e[i].len || memcmp(x->h, a->e[i].h, VV_HASH_BYTES)) return 0;
  }
  return 1;
}

/* ---- database contents: a model of what a database must hold ------------ */

#define DIM 8
#define MAXV 80

typedef struct model {
  int present[MAXV];
  float vec[MAXV][DIM];
  char meta[MAXV][40];
  int meta_len[MAXV]; /* 0 = none */
} model;

static int id_of(int i, char *buf) { return strf(buf, 16, "v%03d", i); }

static float gen_val(uint64_t version, int i, int d) {
  uint64_t st = version * 1000003u + (uint64_t)i * 131u + (uint64_t)d;
  return (float)(vv_unit_double(vv_splitmix64(&st)) * 2 - 1);
}

static void model_set(model *m, int i, uint64_t version, const char *meta) {
  m->present[i] = 1;
  for (int d = 0; d < DIM; d++) m->vec[i][d] = gen_val(version, i, d);
  m->meta_len[i] = meta ? strf(m->meta[i], sizeof m->meta[i], "%s", meta) : 0;
}

/* Generation A: ids 0..n-1, a third of them without metadata. */
static void model_a(model *m, int n) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < n; i++) {
    char meta[40];
    strf(meta, sizeof meta, "{\"i\":%d}", i);
    model_set(m, i, 1, i % 3 ? meta : NULL);
  }
}

/* A with: ids 0 .. 3/4 of a chunk changed, a few deletions, a few
 * additions and one metadata-only change. Format-2 chunks hold graph
 * neighbourhoods, not slot ranges, so which chunks fall under half current
 * depends on the layout; with the loops' sessions (40 vectors, chunks of
 * 20, m 32) one of the two is rewritten and the other kept. */
static void model_b(const model *a, model *b, int n, int chunk) {
  *b = *a;
  for (int i = 0; i < chunk * 3 / 4 && i < n; i++) model_set(b, i, 2, a->meta_len[i] ? a->meta[i] : NULL);
  for (int i = n - 10; i < n - 5; i++) b->present[i] = 0;
  for (int i = n; i < n + 10 && i < MAXV; i++) model_set(b, i, 1, "{\"new\":true}");
  int j = n / 2 + 1; /* a row not otherwise changed */
  b->meta_len[j] = strf(b->meta[j], sizeof b->meta[j], "{\"i\":%d,\"x\":1}", j);
}

static int model_count(const model *m) {
  int c = 0;
  for (int i = 0; i < MAXV; i++) c += m->present[i];
  return c;
}

static int add_one(vv_db *db, const model *m, int i) {
  char id[16];
  int len = id_of(i, id);
  vv_item it = {id, (size_t)len, m->vec[i], m->meta_len[i] ? m->meta[i] : NULL, (size_t)m->meta_len[i]};
  return vv_db_add(db, &it);
}

/* Brings a database holding `from` to `to`. */
static int apply_model(vv_db *db, const model *from, const model *to) {
  for (int i = 0; i < MAXV; i++) {
    int rc = VV_OK;
    if (to->present[i] &&
        (!from->present[i] || memcmp(from->vec[i], to->vec[i], sizeof to->vec[i]) ||
         from->meta_len[i] != to->meta_len[i] || memcmp(from->meta[i], to->meta[i], (size_t)to->meta_len[i]))) {
      rc = add_one(db, to, i);
    } else if (from->present[i] && !to->present[i]) {
      char id[16];
      int removed, len = id_of(i, id);
      rc = vv_db_delete(db, id, (size_t)len, &removed);
    }
    if (rc) return rc;
  }
  return VV_OK;
}

/* Graph degree of the sessions the fault loops save. vv_hnsw_free visits
 * every slot of its first arena block, whose record count shrinks as m
 * grows: with m = 32 a database costs a sixteenth of what it does with
 * m = 6 to free, which matters when thousands are made (under ASan most of
 * all). The fuzzing sessions keep a sparse, multi-level graph (m = 6). */
#define LOOP_M 32
#define FUZZ_M 6

static uint32_t g_m = FUZZ_M; /* m of the databases build_db makes */

static vv_db *make_db(uint32_t chunk, vv_index_kind kind) {
  vv_config c = {0};
  c.dimension = DIM;
  c.metric = VV_METRIC_L2;
  c.index = kind;
  c.hnsw_m = g_m;
  c.ef_construction = 24;
  c.threads = 1;
  c.seed = 7;
  c.chunk_size = chunk;
  vv_db *db = NULL;
  return vv_db_create(&c, &db) == VV_OK ? db : NULL;
}

static vv_db *build_db(const model *m, uint32_t chunk) {
  model empty;
  memset(&empty, 0, sizeof empty);
  vv_db *db = make_db(chunk, VV_INDEX_HNSW);
  if (db && apply_model(db, &empty, m) != VV_OK) {
    vv_db_free(db);
    db = NULL;
  }
  return db;
}

/* NULL if the database holds exactly `m`, else what differs (static). */
static const char *db_differs(vv_db *db, const model *m) {
  static char why[128];
  if (vv_db_size(db) != (uint64_t)model_count(m)) {
    strf(why, sizeof why, "size %llu, expected %d", (unsigned long long)vv_db_size(db), model_count(m));
    return why;
  }
  for (int i = 0; i < MAXV; i++) {
    char id[16];
    int len = id_of(i, id);
    vv_record *r = NULL;
    if (vv_db_get(db, id, (size_t)len, &r) != VV_OK) return "get failed";
    const char *bad = NULL;
    if (!m->present[i] && r) bad = "an absent id is present";
    else if (m->present[i] && !r) bad = "an id is missing";
    else if (r && memcmp(r->vector, m->vec[i], sizeof m->vec[i])) bad = "a vector differs";
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

static const unsigned char kKey[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                       17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static int load_dir_opts(const char *dir, const unsigned char *key, const vv_io *io, int lazy, vv_db **out,
                         vv_load_stats *st, vv_error *err) {
  vv_load_opts o = {0};
  o.key = key;
  o.io = io;
  o.lazy = lazy;
  return vv_db_load(dir, &o, NULL, NULL, out, st, err);
}

static int load_dir(const char *dir, const unsigned char *key, const vv_io *io, vv_db **out, vv_error *err) {
  return load_dir_opts(dir, key, io, 0, out, NULL, err);
}

/* Loads `dir` (eagerly, or lazily) and compares it with `m`; NULL when
 * equal, else why. */
static const char *dir_differs_as(const char *dir, const unsigned char *key, int lazy, const model *m) {
  static char why[480];
  vv_db *db = NULL;
  vv_error err = {{0}};
  int rc = load_dir_opts(dir, key, NULL, lazy, &db, NULL, &err);
  if (rc) {
    strf(why, sizeof why, "load failed: %s (%s)", vv_status_code(rc), err.message);
    return why;
  }
  const char *d = db_differs(db, m);
  if (d) strf(why, sizeof why, "%s%s", lazy ? "lazily loaded: " : "", d);
  vv_db_free(db);
  return d ? why : NULL;
}

static const char *dir_differs(const char *dir, const unsigned char *key, const model *m) {
  return dir_differs_as(dir, key, 0, m);
}

static int save_to(vv_db *db, const char *dir, fio *f, vv_error *err) {
  return vv_db_save(db, dir, (const struct vv_io *)fio_io(f), NULL, NULL, NULL, err);
}

/* A clean save through faultio (no injection, no real fsync). */
static int save_clean(vv_db *db, const char *dir) {
  fio f;
  fio_init(&f, NULL);
  vv_error err;
  int rc = save_to(db, dir, &f, &err);
  fio_destroy(&f);
  return rc;
}

/* Objects referenced by manifest.json and every retained
 * manifests/<generation>.json that are missing or have the wrong size. */
static int missing_objects(const char *dir) {
  int missing = 0;
  char mdir[256];
  strf(mdir, sizeof mdir, "%s/manifests", dir);
  DIR *d = opendir(mdir);
  char *names[64];
  int nn = 0;
  names[nn++] = strdup("manifest.json");
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL && nn < 64) {
    if (strlen(e->d_name) != 25 || strcmp(e->d_name + 20, ".json")) continue;
    char rel[64];
    strf(rel, sizeof rel, "manifests/%s", e->d_name);
    names[nn++] = strdup(rel);
  }
  if (d) closedir(d);
  for (int i = 0; i < nn; i++) {
    char p[512];
    strf(p, sizeof p, "%s/%s", dir, names[i]);
    size_t len;
    unsigned char *file = read_all(p, &len);
    vv_manifest m;
    const unsigned char *body;
    size_t blen;
    if (file && vv_manifest_parse(file, len, &m, &body, &blen, NULL) == VV_OK) {
      for (size_t k = 0; k < m.nchunks + m.nbase + m.ndeltas; k++) {
        const vv_objref *r = k < m.nchunks ? &m.chunks[k].ref
                             : k < m.nchunks + m.nbase ? &m.base[k - m.nchunks].ref
                                                       : &m.deltas[k - m.nchunks - m.nbase].ref;
        char op[512];
        strf(op, sizeof op, "%s/objects/%s", dir, r->name);
        struct stat st;
        if (stat(op, &st) != 0 || (uint64_t)st.st_size != r->bytes) missing++;
      }
      vv_manifest_free(&m);
    }
    free(file);
    free(names[i]);
  }
  return missing;
}

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

/* Unlinks the files of dir, dir/objects and dir/manifests and keeps the
 * directories (creating and removing directories is slow on some disks),
 * or with remove_dirs removes the whole tree. */
static void clear_dir(const char *dir, int remove_dirs) {
  if (remove_dirs) {
    rm_rf(dir);
    return;
  }
  static const char *const subs[] = {"/objects", "/manifests", ""};
  for (int i = 0; i < 3; i++) {
    char p[256];
    strf(p, sizeof p, "%s%s", dir, subs[i]);
    DIR *d = opendir(p);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char fp[600];
      strf(fp, sizeof fp, "%s/%s", p, e->d_name);
      struct stat st;
      if (e->d_name[0] != '.' && lstat(fp, &st) == 0 && !S_ISDIR(st.st_mode)) unlink(fp);
    }
    closedir(d);
  }
}

static void make_dirs(const char *dir) {
  char p[256];
  mkdir(dir, 0700);
  strf(p, sizeof p, "%s/objects", dir);
  mkdir(p, 0700);
  strf(p, sizeof p, "%s/manifests", dir);
  mkdir(p, 0700);
}

/* Recreates the session in `from` at `to` with hard links: cheap, and
 * safe because sessions never write into an existing file. */
static int link_dir(const char *from, const char *to) {
  static const char *const subs[] = {"", "/objects", "/manifests"};
  make_dirs(to);
  for (int i = 0; i < 3; i++) {
    char p[256];
    strf(p, sizeof p, "%s%s", from, subs[i]);
    DIR *d = opendir(p);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char src[600], dst[600];
      strf(src, sizeof src, "%s/%s", p, e->d_name);
      strf(dst, sizeof dst, "%s%s/%s", to, subs[i], e->d_name);
      struct stat st;
      if (e->d_name[0] == '.' || lstat(src, &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (link(src, dst) != 0) {
        closedir(d);
        return -1;
      }
    }
    closedir(d);
  }
  return 0;
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
    int had_manifest = exists(mpath);
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
        VV_CHECK(!exists(mpath));
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

/* ---- editing sessions: objects, manifests ---------------------------------- */

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes `data` as an object named by its hash into dir/objects; the name
 * goes to `name` (65 bytes). */
static int write_object(const char *dir, const unsigned char *data, size_t len, char name[65]) {
  unsigned char h[VV_HASH_BYTES];
  vv_hash(data, len, h);
  vv_hex_encode(h, VV_HASH_BYTES, name);
  char p[512];
  strf(p, sizeof p, "%s/objects/%s", dir, name);
  return write_all(p, data, len);
}

static unsigned char *read_object(const char *dir, const char *name, size_t *len) {
  char p[512];
  if (strf(p, sizeof p, "%s/objects/%s", dir, name) >= (int)sizeof p) return NULL;
  return read_all(p, len);
}

typedef struct text {
  char *p;
  size_t n;
} text;

static void text_set(text *t, const void *p, size_t n) {
  free(t->p);
  t->p = malloc(n + 1);
  memcpy(t->p, p, n);
  t->p[n] = '\0';
  t->n = n;
}

/* Replaces [at, at+len) with `with`. */
static void text_splice(text *t, size_t at, size_t len, const char *with, size_t wlen) {
  if (at > t->n) at = t->n;
  if (len > t->n - at) len = t->n - at;
  char *q = malloc(t->n - len + wlen + 1);
  memcpy(q, t->p, at);
  memcpy(q + at, with, wlen);
  memcpy(q + at + wlen, t->p + at + len, t->n - at - len);
  t->n = t->n - len + wlen;
  q[t->n] = '\0';
  free(t->p);
  t->p = q;
}

static long text_find(const text *t, const char *needle, size_t from) {
  size_t nl = strlen(needle);
  for (size_t i = from; i + nl <= t->n; i++)
    if (memcmp(t->p + i, needle, nl) == 0) return (long)i;
  return -1;
}

/* The manifest body of dir/manifest.json, and its mac field. */
static int manifest_read(const char *dir, text *body, char mac[65]) {
  char p[256];
  strf(p, sizeof p, "%s/manifest.json", dir);
  size_t len;
  unsigned char *f = read_all(p, &len);
  if (!f || len < VV_MANIFEST_PREFIX_BYTES + 2) {
    free(f);
    return -1;
  }
  memcpy(mac, f + 81, 64);
  mac[64] = '\0';
  text_set(body, f + VV_MANIFEST_PREFIX_BYTES, len - VV_MANIFEST_PREFIX_BYTES - 2);
  free(f);
  return 0;
}

/* The whole file for a body, with its sum recomputed. */
static void manifest_compose(const text *body, const char *mac, text *out) {
  unsigned char h[VV_HASH_BYTES];
  char sum[65];
  vv_hash((const unsigned char *)body->p, body->n, h);
  vv_hex_encode(h, VV_HASH_BYTES, sum);
  size_t n = VV_MANIFEST_PREFIX_BYTES + body->n + 2;
  char *f = malloc(n + 1);
  strf(f, n + 1, "{\"sum\":\"%s\",\"mac\":\"%s\",\"body\":", sum, mac);
  memcpy(f + VV_MANIFEST_PREFIX_BYTES, body->p, body->n);
  memcpy(f + n - 2, "}\n", 2);
  free(out->p);
  out->p = f;
  out->n = n;
}

static int manifest_write(const char *dir, const text *body, const char *mac) {
  text f = {0};
  manifest_compose(body, mac, &f);
  char p[256];
  strf(p, sizeof p, "%s/manifest.json", dir);
  int rc = write_all(p, f.p, f.n);
  free(f.p);
  return rc;
}

/* In the manifest body, the entry naming `old` now names `neu` with
 * `bytes`; if seq_from >= 0 its "seq" changes from seq_from to seq_to. */
static int manifest_retarget(text *body, const char *old, const char *neu, uint64_t bytes, long long seq_from,
                             long long seq_to) {
  char pat[100];
  strf(pat, sizeof pat, "\"name\":\"%s\"", old);
  long at = text_find(body, pat, 0);
  if (at < 0) return -1;
  text_splice(body, (size_t)at + 8, 64, neu, 64);
  if (seq_from >= 0) {
    char from[48], to[48];
    strf(from, sizeof from, ",\"seq\":%lld,", seq_from);
    strf(to, sizeof to, ",\"seq\":%lld,", seq_to);
    if (text_find(body, from, (size_t)at) != at + 73) return -1;
    text_splice(body, (size_t)at + 73, strlen(from), to, strlen(to));
  }
  long b = text_find(body, "\"bytes\":", (size_t)at);
  if (b < 0) return -1;
  size_t e = (size_t)b + 8;
  while (e < body->n && body->p[e] >= '0' && body->p[e] <= '9') e++;
  char num[32];
  int nl = strf(num, sizeof num, "%llu", (unsigned long long)bytes);
  text_splice(body, (size_t)b + 8, e - ((size_t)b + 8), num, (size_t)nl);
  return 0;
}

static int parse_dir_manifest(const char *dir, vv_manifest *m) {
  char p[256];
  strf(p, sizeof p, "%s/manifest.json", dir);
  size_t len;
  unsigned char *f = read_all(p, &len);
  const unsigned char *body;
  size_t blen;
  int rc = f ? vv_manifest_parse(f, len, m, &body, &blen, NULL) : VV_E_IO;
  free(f);
  return rc;
}

/* A save that cannot read the current manifest.json (EIO on its open,
 * fsize or read) must fail: it cannot know the generation it builds on.
 * Taking the directory for empty would commit "generation 1" over
 * generation 4, and its garbage collection then works from the wrong
 * history. */
static void unreadable_current_manifest_fails_the_save_body(void *arg) {
  (void)arg;
  char root[64], base[128], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(base, sizeof base, "%s/base", root);
  strf(dir, sizeof dir, "%s/s", root);
  model gens[5];
  model_a(&gens[0], 40);
  vv_db *db = build_db(&gens[0], 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save_clean(db, base) == VV_OK);
  for (int g = 1; g < 5; g++) {
    gens[g] = gens[g - 1];
    for (int i = g * 5; i < g * 5 + 5; i++) model_set(&gens[g], i, 10 + (uint64_t)g, NULL);
    VV_REQUIRE(apply_model(db, &gens[g - 1], &gens[g]) == VV_OK);
    if (g < 4) VV_REQUIRE(save_clean(db, base) == VV_OK);
  }
  vv_db_free(db);
  VV_REQUIRE(dir_differs(base, NULL, &gens[3]) == NULL);
  static const int kinds[] = {FIO_OPEN, FIO_FSIZE, FIO_READ};
  snap before = {0}, after = {0};
  for (int k = 0; k < 3; k++) {
    VV_NOTE("EIO on the %s of manifest.json", fio_kind_name(kinds[k]));
    clear_dir(dir, 0);
    VV_REQUIRE(link_dir(base, dir) == 0);
    vv_error err = {{0}};
    VV_REQUIRE(load_dir(dir, NULL, NULL, &db, &err) == VV_OK);
    VV_REQUIRE(apply_model(db, &gens[3], &gens[4]) == VV_OK);
    snap_take(&before, dir);
    fio f;
    fio_init(&f, NULL);
    f.kinds = FIO_BIT(kinds[k]);
    f.suffix = "/manifest.json";
    f.fail_at = 1;
    f.err = EIO;
    int rc = save_to(db, dir, &f, &err);
    VV_CHECK(f.injected == 1);
    fio_destroy(&f);
    VV_CHECK(rc == VV_E_IO);
    snap_take(&after, dir);
    const char *why = snap_untouched(&before, &after);
    VV_CHECK(why == NULL);
    if (why) fprintf(stderr, "  generation 4 touched: %s\n", why);
    const char *d = dir_differs(dir, NULL, &gens[3]);
    if (rc == VV_OK && d) {
      const char *d5 = dir_differs(dir, NULL, &gens[4]);
      fprintf(stderr, "  the save returned OK; the session now: %s\n", d5 ? d5 : "loads the new content");
      vv_manifest m;
      if (parse_dir_manifest(dir, &m) == VV_OK) {
        fprintf(stderr, "  manifest.json now says generation %llu, parent %s\n", (unsigned long long)m.generation,
                m.has_parent ? "set" : "null");
        VV_CHECK(m.generation == 5);
        vv_manifest_free(&m);
      }
    } else {
      VV_CHECK(d == NULL);
    }
    VV_CHECK(missing_objects(dir) == 0);
    vv_db_free(db);
  }
  snap_free(&before);
  snap_free(&after);
  rm_rf(root);
}

VV_TEST(unreadable_current_manifest_fails_the_save) {
  VV_ISOLATED(unreadable_current_manifest_fails_the_save_body, NULL);
}

/* ---- object binding: the AEAD associated data ----------------------------- */

static void object_ad_binds_sequence_kind_and_session_body(void *arg) {
  (void)arg;
  char root[64];
  VV_REQUIRE(make_root(root) == 0);
  char objdir[128];
  strf(objdir, sizeof objdir, "%s/objects", root);
  VV_REQUIRE(mkdir(objdir, 0700) == 0);
  VV_REQUIRE(vv_crypto_init() == VV_OK);
  vv_keyring *kr = NULL, *other = NULL;
  unsigned char k2[32];
  memset(k2, 0x42, sizeof k2);
  VV_REQUIRE(vv_keyring_create(kKey, &kr) == VV_OK);
  VV_REQUIRE(vv_keyring_create(k2, &other) == VV_OK);
  vv_sctx sc;
  VV_REQUIRE(vv_sctx_init(&sc, NULL, root) == VV_OK);
  sc.kr = kr;
  memset(sc.session_id, 0xa5, sizeof sc.session_id);
  unsigned char plain[300];
  for (size_t i = 0; i < sizeof plain; i++) plain[i] = (unsigned char)(i * 7 + 1);
  vv_buf scratch = {0};
  vv_objref ref;
  vv_error err = {{0}};
  VV_REQUIRE(vv_object_write(&sc, VV_OBJ_KIND_CHUNK, 3, plain, sizeof plain, &scratch, &ref, &err) == VV_OK);

  unsigned char *out = NULL;
  size_t olen = 0;
  /* Control: it opens as written. */
  VV_CHECK(vv_object_read(&sc, &ref, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err) == VV_OK);
  VV_CHECK(out && olen == sizeof plain && !memcmp(out, plain, olen));
  free(out);

  /* (a) expected as seq 4: the header says 3. */
  err.message[0] = '\0';
  VV_CHECK(vv_object_read(&sc, &ref, VV_OBJ_KIND_CHUNK, 4, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(out == NULL);
  VV_CHECK(strstr(err.message, "header") != NULL);

  /* (b) the header patched to seq 4 and renamed to its new hash: size, hash
   * and header pass, and only the tag can notice. */
  size_t flen;
  unsigned char *file = read_object(root, ref.name, &flen);
  VV_REQUIRE(file != NULL && flen == ref.bytes);
  put_le64(file + 8, 4);
  vv_objref moved;
  VV_REQUIRE(write_object(root, file, flen, moved.name) == 0);
  moved.bytes = flen;
  err.message[0] = '\0';
  VV_CHECK(vv_object_read(&sc, &moved, VV_OBJ_KIND_CHUNK, 4, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(out == NULL);
  VV_CHECK(strstr(err.message, "authentication") != NULL);

  /* Control: sealed as seq 4 in the first place, the same bytes open, so
   * the only thing wrong above is the associated data. */
  vv_objref as4;
  VV_CHECK(vv_object_write(&sc, VV_OBJ_KIND_CHUNK, 4, plain, sizeof plain, &scratch, &as4, &err) == VV_OK);
  VV_CHECK(vv_object_read(&sc, &as4, VV_OBJ_KIND_CHUNK, 4, &out, &olen, &err) == VV_OK);
  VV_CHECK(out && olen == sizeof plain && !memcmp(out, plain, olen));
  free(out);
  out = NULL;

  /* The kind is bound too: a chunk relabelled as an index segment. */
  put_le64(file + 8, 3);
  file[5] = VV_OBJ_KIND_INDEX;
  vv_objref rekind;
  VV_REQUIRE(write_object(root, file, flen, rekind.name) == 0);
  rekind.bytes = flen;
  err.message[0] = '\0';
  VV_CHECK(vv_object_read(&sc, &rekind, VV_OBJ_KIND_INDEX, 3, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "authentication") != NULL);
  free(file);

  /* (c) the same object read for another session, or with another key. */
  vv_sctx sc2 = sc;
  sc2.session_id[0] ^= 1;
  err.message[0] = '\0';
  VV_CHECK(vv_object_read(&sc2, &ref, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "authentication") != NULL);
  sc2 = sc;
  sc2.kr = other;
  VV_CHECK(vv_object_read(&sc2, &ref, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  /* An encrypted object where the manifest says unencrypted. */
  sc2.kr = NULL;
  VV_CHECK(vv_object_read(&sc2, &ref, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  /* Every single-bit flip of the ciphertext or nonce, renamed to its hash. */
  file = read_object(root, ref.name, &flen);
  VV_REQUIRE(file != NULL);
  int opened = 0;
  for (size_t bit = VV_OBJ_HEADER_BYTES * 8; bit < flen * 8; bit += 13) {
    file[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    vv_objref r;
    VV_REQUIRE(write_object(root, file, flen, r.name) == 0);
    r.bytes = flen;
    int rc = vv_object_read(&sc, &r, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err);
    opened += rc == VV_OK;
    free(out);
    out = NULL;
    file[bit / 8] ^= (unsigned char)(1u << (bit % 8));
  }
  VV_CHECK(opened == 0);
  free(file);

  vv_buf_free(&scratch);
  vv_sctx_destroy(&sc);
  vv_keyring_free(kr);
  vv_keyring_free(other);
  rm_rf(root);
}

VV_TEST(object_ad_binds_sequence_kind_and_session) {
  VV_ISOLATED(object_ad_binds_sequence_kind_and_session_body, NULL);
}

/* A small two-generation unencrypted session (a base, a delta, superseded
 * rows, waypoints) for the editing tests. */
#define SMALL_N 60
#define SMALL_CHUNK 20

static int small_session(const char *dir, model *content, const unsigned char *key) {
  model a;
  model_a(&a, SMALL_N);
  model_b(&a, content, SMALL_N, SMALL_CHUNK);
  vv_db *db = build_db(&a, SMALL_CHUNK);
  if (!db) return -1;
  int rc = key ? vv_db_set_secret(db, 1, key, NULL, 0) : VV_OK;
  if (!rc) rc = save_clean(db, dir);
  if (!rc) rc = apply_model(db, &a, content);
  if (!rc) rc = save_clean(db, dir);
  vv_db_free(db);
  return rc;
}

/* (d) Without encryption the tag-less path admits a patched header; the
 * chunk's own CBOR seq must still catch a chunk moved to another seq. */
static void unencrypted_chunk_moved_to_another_seq_is_caught_by_the_decoder_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model a;
  model_a(&a, 80);
  vv_db *db = build_db(&a, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save_clean(db, dir) == VV_OK);
  vv_db_free(db);
  VV_REQUIRE(dir_differs(dir, NULL, &a) == NULL);

  vv_manifest m;
  VV_REQUIRE(parse_dir_manifest(dir, &m) == VV_OK);
  VV_REQUIRE(m.nchunks == 4 && m.chunks[0].count == m.chunks[1].count);
  const vv_mchunk c0 = m.chunks[0], c1 = m.chunks[1];
  vv_manifest_free(&m);
  text body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &body, mac) == 0);
  text pristine = {0};
  text_set(&pristine, body.p, body.n);

  /* Swap the two chunks' sequence numbers, in their headers and their
   * manifest entries, with names, sizes and the sum all made consistent. */
  const vv_mchunk *cs[2] = {&c0, &c1};
  for (int i = 0; i < 2; i++) {
    size_t len;
    unsigned char *f = read_object(dir, cs[i]->ref.name, &len);
    VV_REQUIRE(f != NULL);
    put_le64(f + 8, cs[1 - i]->seq);
    char name[65];
    VV_REQUIRE(write_object(dir, f, len, name) == 0);
    free(f);
    VV_REQUIRE(manifest_retarget(&body, cs[i]->ref.name, name, len, (long long)cs[i]->seq,
                                 (long long)cs[1 - i]->seq) == 0);
  }
  VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
  vv_db *out = NULL;
  vv_error err = {{0}};
  int rc = load_dir(dir, NULL, NULL, &out, &err);
  VV_CHECK(rc == VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "does not decode") != NULL); /* the CBOR seq, not the header */
  vv_db_free(out);

  /* One chunk only, moved to a seq no other entry uses: the index still
   * points at the old seq, and the loader notices that instead. */
  text_set(&body, pristine.p, pristine.n);
  {
    size_t len;
    unsigned char *f = read_object(dir, c0.ref.name, &len);
    VV_REQUIRE(f != NULL);
    put_le64(f + 8, c0.seq + 100);
    char name[65];
    VV_REQUIRE(write_object(dir, f, len, name) == 0);
    free(f);
    VV_REQUIRE(manifest_retarget(&body, c0.ref.name, name, len, (long long)c0.seq, (long long)c0.seq + 100) == 0);
    char from[64], to[64];
    strf(from, sizeof from, "\"nextChunkSeq\":");
    long at = text_find(&body, from, 0);
    VV_REQUIRE(at >= 0);
    size_t e = (size_t)at + strlen(from);
    while (body.p[e] >= '0' && body.p[e] <= '9') e++;
    int tl = strf(to, sizeof to, "\"nextChunkSeq\":%llu", (unsigned long long)c0.seq + 101);
    text_splice(&body, (size_t)at, e - (size_t)at, to, (size_t)tl);
    VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
    rc = load_dir(dir, NULL, NULL, &out, &err);
    VV_CHECK(rc == VV_E_CHUNK_CORRUPT);
    vv_db_free(out);
    out = NULL;
  }
  free(body.p);
  free(pristine.p);
  rm_rf(root);
}

VV_TEST(unencrypted_chunk_moved_to_another_seq_is_caught_by_the_decoder) {
  VV_ISOLATED(unencrypted_chunk_moved_to_another_seq_is_caught_by_the_decoder_body, NULL);
}

/* An encrypted session's manifest rewritten as unencrypted (a downgrade). */
static void encrypted_session_downgraded_to_plain_is_refused_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(small_session(dir, &content, kKey) == 0);
  VV_REQUIRE(dir_differs(dir, kKey, &content) == NULL);
  text body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &body, mac) == 0);
  long at = text_find(&body, "\"encryption\":{", 0);
  VV_REQUIRE(at >= 0);
  long end = text_find(&body, "}", (size_t)at);
  VV_REQUIRE(end > at);
  text_splice(&body, (size_t)at, (size_t)(end - at + 1), "\"encryption\":null", 17);
  char zeros[65];
  memset(zeros, '0', 64);
  zeros[64] = '\0';
  VV_REQUIRE(manifest_write(dir, &body, zeros) == 0);
  vv_db *out = NULL;
  vv_error err;
  VV_CHECK(load_dir(dir, kKey, NULL, &out, &err) == VV_E_MANIFEST_AUTH);
  vv_db_free(out);
  out = NULL;
  VV_CHECK(load_dir(dir, NULL, NULL, &out, &err) == VV_E_CHUNK_CORRUPT);
  vv_db_free(out);
  free(body.p);
  rm_rf(root);
}

VV_TEST(encrypted_session_downgraded_to_plain_is_refused) {
  VV_ISOLATED(encrypted_session_downgraded_to_plain_is_refused_body, NULL);
}

/* ---- the manifest parser under mutation ---------------------------------- */

static size_t rnd(uint64_t *st, size_t n) { return n ? (size_t)(vv_splitmix64(st) % n) : 0; }

static const char *const kTokens[] = {
    "{", "}", "[", "]", ",", ":", "\"", "null", "true", "false", "-", "0", "1", "-0", "01", "1.5", "1e3",
    "\\u0000", "\\ud800", "\\u00e9", "\\\"", "\xff", "\xc0\x80", "\xed\xa0\x80", " ", "\t\n",
    "99999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "4294967296", "2147483648", "\"version\":2,", "\"version\":1,",
    "\"format\":\"vecvault-session\",", "\"chunks\":[],", "\"extra\":0,", "\"generation\":1,",
    "{\"a\":{\"b\":[1,{\"c\":null}]}}", "[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]", "\"\"", "\"x\"", "{}", "[]"};

/* One random edit of a JSON text. */
static void mutate_json(uint64_t *st, text *t) {
  size_t at = rnd(st, t->n + 1);
  switch (rnd(st, 10)) {
    case 0: /* bit flips */
      for (size_t k = 1 + rnd(st, 3); k-- && t->n;) t->p[rnd(st, t->n)] ^= (char)(1u << rnd(st, 8));
      break;
    case 1: /* truncation */
      t->n = at;
      break;
    case 2: { /* a token */
      const char *tok = kTokens[rnd(st, sizeof kTokens / sizeof kTokens[0])];
      text_splice(t, at, 0, tok, strlen(tok));
      break;
    }
    case 3: /* a deletion */
      text_splice(t, at, 1 + rnd(st, 24), "", 0);
      break;
    case 4: { /* a span copied elsewhere: duplicate keys, repeated entries */
      size_t from = rnd(st, t->n + 1), len = 1 + rnd(st, 80);
      if (len > t->n - from) len = t->n - from;
      char *copy = malloc(len + 1);
      memcpy(copy, t->p + from, len);
      text_splice(t, at, 0, copy, len);
      free(copy);
      break;
    }
    case 5: { /* a member duplicated right after its own object's brace */
      long colon = text_find(t, "\":", at);
      if (colon < 0) break;
      long q = colon - 1;
      while (q > 0 && t->p[q] != '"') q--;
      size_t e = (size_t)colon + 2;
      while (e < t->n && t->p[e] != ',' && t->p[e] != '}') e++;
      long brace = q;
      while (brace > 0 && t->p[brace] != '{') brace--;
      size_t len = e - (size_t)q;
      char *m = malloc(len + 2);
      memcpy(m, t->p + q, len);
      m[len] = ',';
      text_splice(t, (size_t)brace + 1, 0, m, len + 1);
      free(m);
      break;
    }
    case 6: { /* a number replaced by an edge value */
      static const char *const nums[] = {"0", "-1", "1", "2", "65536", "65537", "4294967295", "4294967296",
                                         "2147483647", "2147483648", "9223372036854775807", "99999999999999999999",
                                         "-9223372036854775808", "1099511627776", "1099511627777", "16", "17"};
      size_t i = at;
      while (i < t->n && !(t->p[i] >= '0' && t->p[i] <= '9')) i++;
      size_t e = i;
      while (e < t->n && t->p[e] >= '0' && t->p[e] <= '9') e++;
      const char *v = nums[rnd(st, sizeof nums / sizeof nums[0])];
      text_splice(t, i, e - i, v, strlen(v));
      break;
    }
    case 7: { /* deep nesting */
      size_t depth = 1 + rnd(st, 300);
      char *m = malloc(depth * 5 + 1);
      size_t n = 0;
      for (size_t i = 0; i < depth; i++) {
        if (rnd(st, 2)) m[n++] = '[';
        else {
          memcpy(m + n, "{\"a\":", 5);
          n += 5;
        }
      }
      text_splice(t, at, 0, m, n);
      free(m);
      break;
    }
    case 8: /* a random byte */
      if (t->n) t->p[rnd(st, t->n)] = (char)rnd(st, 256);
      break;
    default: { /* a string value replaced */
      long q = text_find(t, ":\"", at);
      if (q < 0) break;
      size_t s0 = (size_t)q + 2, e = s0;
      while (e < t->n && t->p[e] != '"') e++;
      static const char *const strs[] = {"", "x", "cosine", "flat", "hnsw", "raw", "argon2id13",
                                         "0000000000000000000000000000000G",
                                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                         "../../../../etc/passwd", "\\u0000", "2024-01-01T00:00:00Z"};
      const char *v = strs[rnd(st, sizeof strs / sizeof strs[0])];
      text_splice(t, s0, e - s0, v, strlen(v));
      break;
    }
  }
}

static void manifest_parser_survives_mutations_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  text seeds[2] = {{0}, {0}};
  char macs[2][65];
  for (int enc = 0; enc < 2; enc++) {
    model content;
    VV_REQUIRE(small_session(dir, &content, enc ? kKey : NULL) == 0);
    VV_REQUIRE(manifest_read(dir, &seeds[enc], macs[enc]) == 0);
    rm_rf(dir);
  }
  uint64_t st = 0x5eed;
  long ok = 0, json = 0, schema = 0, version = 0, frame = 0, other = 0;
  text body = {0}, file = {0};
  for (int it = 0; it < 20000; it++) {
    int enc = it & 1;
    text_set(&body, seeds[enc].p, seeds[enc].n);
    for (size_t k = 1 + rnd(&st, 3); k--;) mutate_json(&st, &body);
    manifest_compose(&body, macs[enc], &file);
    int raw = rnd(&st, 20) == 0; /* sometimes the frame itself, sum left stale */
    if (raw) {
      text_set(&body, file.p, file.n);
      mutate_json(&st, &body);
      text_set(&file, body.p, body.n);
    }
    VV_NOTE("iteration %d", it);
    vv_manifest m;
    const unsigned char *b;
    size_t blen;
    vv_error err = {{0}};
    int rc = vv_manifest_parse((const unsigned char *)file.p, file.n, &m, &b, &blen, &err);
    VV_CHECK(rc == VV_OK || rc == VV_E_MANIFEST_CORRUPT || rc == VV_E_UNSUPPORTED_VERSION);
    if (rc == VV_OK) {
      ok++;
      VV_CHECK((m.version == 1 || m.version == 2) && m.dimension >= 1 && m.dimension <= VV_MAX_DIMENSION);
      VV_CHECK(m.total_vectors <= m.slot_count);
      VV_CHECK(b == (const unsigned char *)file.p + VV_MANIFEST_PREFIX_BYTES && blen == file.n - 156);
      vv_manifest_free(&m);
    } else if (rc == VV_E_UNSUPPORTED_VERSION) {
      version++;
    } else if (strstr(err.message, "invalid JSON")) {
      json++;
    } else if (strstr(err.message, "frame") || strstr(err.message, "checksum")) {
      frame++;
    } else if (strstr(err.message, "malformed")) {
      schema++;
    } else {
      other++;
    }
  }
  printf("  manifest mutations: %ld parse, %ld bad JSON, %ld rejected by the schema, %ld newer version, %ld bad "
         "frame or sum, %ld other\n",
         ok, json, schema, version, frame, other);
  /* The mutations must reach every layer, not just the checksum. */
  VV_CHECK(json > 2000 && schema > 2000 && ok > 200 && version > 4);
  VV_CHECK(other == 0);
  free(body.p);
  free(file.p);
  free(seeds[0].p);
  free(seeds[1].p);
  rm_rf(root);
}

VV_TEST(manifest_parser_survives_mutations) { VV_ISOLATED(manifest_parser_survives_mutations_body, NULL); }

/* ---- loads of edited unencrypted sessions --------------------------------- */

/* Scalar values of a JSON text: [start, end) of each, after a ':' or in an
 * array, strings included. */
static size_t scalar_spans(const text *t, size_t (*spans)[2], size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < t->n && n < cap; i++) {
    char c = t->p[i];
    if (c == '"') { /* a string: kept when it is a value, not a key */
      size_t e = i + 1;
      while (e < t->n && t->p[e] != '"') e += t->p[e] == '\\' ? 2 : 1;
      if (e >= t->n) break; /* unterminated: no more values */
      if (i > 0 && (t->p[i - 1] == ':' || t->p[i - 1] == '[' || t->p[i - 1] == ',') &&
          !(e + 1 < t->n && t->p[e + 1] == ':')) {
        spans[n][0] = i;
        spans[n][1] = e + 1;
        n++;
      }
      i = e;
      continue;
    }
    if (i > 0 && t->p[i - 1] == ':' && (c == '-' || (c >= '0' && c <= '9') || c == 'n' || c == 't' || c == 'f')) {
      size_t e = i;
      while (e < t->n && t->p[e] != ',' && t->p[e] != '}' && t->p[e] != ']') e++;
      spans[n][0] = i;
      spans[n][1] = e;
      n++;
      i = e - 1;
    }
  }
  return n;
}

/* One edit of a manifest value: a field set to a plausible wrong value,
 * another field's value, or an entry dropped or repeated. */
static void mutate_fields(uint64_t *st, text *t) {
  static size_t spans[4096][2];
  size_t n = scalar_spans(t, spans, 4096);
  if (!n) return;
  size_t pick = rnd(st, n);
  size_t s0 = spans[pick][0], e0 = spans[pick][1];
  static const char *const vals[] = {
      "0", "1", "2", "3", "-1", "5", "7", "8", "16", "17", "19", "20", "21", "59", "60", "61", "64", "65", "69", "70",
      "100", "1000", "65536", "4294967295", "4294967296", "2147483647", "null", "true", "\"\"", "\"x\"",
      "\"cosine\"", "\"l2\"", "\"dot\"", "\"flat\"", "\"hnsw\"", "{}", "[]",
      ("{\"algorithm\":\"xchacha20poly1305-ietf\",\"kdf\":\"raw\",\"keyCheck\":"
       "\"0000000000000000000000000000000000000000000000000000000000000000\"}")};
  char buf[64];
  const char *v;
  switch (rnd(st, 4)) {
    case 0:
      v = vals[rnd(st, sizeof vals / sizeof vals[0])];
      text_splice(t, s0, e0 - s0, v, strlen(v));
      break;
    case 1: { /* another field's value */
      size_t o = rnd(st, n);
      size_t len = spans[o][1] - spans[o][0];
      char *copy = malloc(len + 1);
      memcpy(copy, t->p + spans[o][0], len);
      text_splice(t, s0, e0 - s0, copy, len);
      free(copy);
      break;
    }
    case 2: { /* off by one */
      if (t->p[s0] < '0' || t->p[s0] > '9') break;
      long long x = strtoll(t->p + s0, NULL, 10) + (rnd(st, 2) ? 1 : -1);
      int l = strf(buf, sizeof buf, "%lld", x);
      text_splice(t, s0, e0 - s0, buf, (size_t)l);
      break;
    }
    default: { /* an entry of chunks / base / deltas dropped or repeated */
      long a = text_find(t, "{\"name\":", rnd(st, t->n));
      if (a < 0) a = text_find(t, "{\"name\":", 0);
      if (a < 0) break;
      long e = text_find(t, "}", (size_t)a);
      size_t len = (size_t)(e - a + 1);
      if (rnd(st, 2)) {
        size_t cut = len;
        if ((size_t)e + 1 < t->n && t->p[e + 1] == ',') cut++;
        else if (a > 0 && t->p[a - 1] == ',') {
          a--;
          cut++;
        }
        text_splice(t, (size_t)a, cut, "", 0);
      } else {
        char *copy = malloc(len + 2);
        memcpy(copy, t->p + a, len);
        copy[len] = ',';
        text_splice(t, (size_t)a, 0, copy, len + 1);
        free(copy);
      }
      break;
    }
  }
}

/* What loading a session of this manifest would reserve up front, roughly:
 * edits that only make the loader allocate gigabytes are tried once, in
 * their own test, not thousands of times here. */
static int too_big_to_try(const text *file) {
  vv_manifest m;
  const unsigned char *b;
  size_t blen;
  if (vv_manifest_parse((const unsigned char *)file->p, file->n, &m, &b, &blen, NULL) != VV_OK) return 0;
  uint64_t per_slot = (uint64_t)m.dimension * 4 + (uint64_t)(2 * m.m + 1) * 4 + 64;
  int big = m.slot_count * per_slot > (64u << 20);
  vv_manifest_free(&m);
  return big;
}

static int search_works(vv_db *db) {
  float q[DIM] = {0.1f, -0.2f, 0.3f, 0.f, 0.5f, -0.5f, 0.25f, 0.f};
  vv_results *res = NULL;
  vv_search_opts so = {0};
  int rc = vv_db_search(db, q, 10, &so, &res);
  uint64_t want = vv_db_size(db) < 10 ? vv_db_size(db) : 10;
  int ok = rc == VV_OK && res && res->count == want;
  for (size_t i = 0; ok && i < res->count; i++) {
    vv_record *r = NULL;
    ok = vv_db_get(db, res->hits[i].id, res->hits[i].id_len, &r) == VV_OK && r != NULL;
    vv_record_free(r);
  }
  vv_results_free(res);
  return ok;
}

static void load_of_edited_manifest_fails_cleanly_or_loads_the_same_data_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(small_session(dir, &content, NULL) == 0);
  text pristine = {0}, body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &pristine, mac) == 0);
  uint64_t st = 0xfeed;
  long ok = 0, skipped = 0, counts[32] = {0};
  for (int it = 0; it < 1500 / SANITIZER_SLOWDOWN; it++) {
    text_set(&body, pristine.p, pristine.n);
    for (size_t k = 1 + rnd(&st, 2); k--;) mutate_fields(&st, &body);
    text file = {0};
    manifest_compose(&body, mac, &file);
    int big = too_big_to_try(&file);
    free(file.p);
    if (big) {
      skipped++;
      continue;
    }
    VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
    VV_NOTE("iteration %d: %.*s", it, (int)(body.n < 200 ? body.n : 200), body.p);
    vv_db *db = NULL;
    vv_error err = {{0}};
    int rc = load_dir(dir, NULL, NULL, &db, &err);
    if (rc <= 0 && rc > -32) counts[-rc]++;
    VV_CHECK(rc == VV_OK || rc == VV_E_MANIFEST_CORRUPT || rc == VV_E_UNSUPPORTED_VERSION ||
             rc == VV_E_CHUNK_CORRUPT || rc == VV_E_CHUNK_MISSING || rc == VV_E_KEY_REQUIRED);
    if (rc != VV_OK) VV_CHECK(db == NULL);
    if (rc == VV_OK) {
      ok++;
      const char *d = db_differs(db, &content);
      VV_CHECK(d == NULL);
      if (d) fprintf(stderr, "  loaded different data: %s\n", d);
      VV_CHECK(search_works(db));
    } else if (rc != VV_E_MANIFEST_CORRUPT && rc != VV_E_UNSUPPORTED_VERSION && rc != VV_E_CHUNK_CORRUPT &&
               rc != VV_E_CHUNK_MISSING && rc != VV_E_KEY_REQUIRED) {
      fprintf(stderr, "  load returned %s: %s\n", vv_status_code(rc), err.message);
    }
    vv_db_free(db);
  }
  printf("  edited manifests: %ld loaded the same data, %ld manifest corrupt, %ld chunk corrupt, %ld chunk missing, "
         "%ld key required, %ld version, %ld skipped as huge\n",
         ok, counts[-VV_E_MANIFEST_CORRUPT], counts[-VV_E_CHUNK_CORRUPT], counts[-VV_E_CHUNK_MISSING],
         counts[-VV_E_KEY_REQUIRED], counts[-VV_E_UNSUPPORTED_VERSION], skipped);
  VV_CHECK(ok > 50 / SANITIZER_SLOWDOWN && counts[-VV_E_CHUNK_CORRUPT] > 50 / SANITIZER_SLOWDOWN &&
           counts[-VV_E_MANIFEST_CORRUPT] > 50 / SANITIZER_SLOWDOWN);
  free(body.p);
  free(pristine.p);
  rm_rf(root);
}

VV_TEST(load_of_edited_manifest_fails_cleanly_or_loads_the_same_data) {
  VV_ISOLATED(load_of_edited_manifest_fails_cleanly_or_loads_the_same_data_body, NULL);
}

/* ---- loads of sessions with edited objects -------------------------------- */

typedef struct obj_pick {
  char name[65];
  uint64_t bytes;
} obj_pick;

static size_t list_objects(const char *dir, obj_pick *out, size_t cap) {
  vv_manifest m;
  if (parse_dir_manifest(dir, &m) != VV_OK) return 0;
  size_t n = 0;
  for (size_t k = 0; k < m.nchunks + m.nbase + m.ndeltas && n < cap; k++) {
    const vv_objref *r = k < m.nchunks ? &m.chunks[k].ref
                         : k < m.nchunks + m.nbase ? &m.base[k - m.nchunks].ref
                                                   : &m.deltas[k - m.nchunks - m.nbase].ref;
    memcpy(out[n].name, r->name, 65);
    out[n].bytes = r->bytes;
    n++;
  }
  vv_manifest_free(&m);
  return n;
}

/* Same ids as `m` and every vector finite: what an edit of an unencrypted
 * object's payload (vector values, metadata text, links) may still leave. */
static const char *db_shape_differs(vv_db *db, const model *m) {
  if (vv_db_size(db) != (uint64_t)model_count(m)) return "size differs";
  for (int i = 0; i < MAXV; i++) {
    char id[16];
    int len = id_of(i, id);
    vv_record *r = NULL;
    if (vv_db_get(db, id, (size_t)len, &r) != VV_OK) return "get failed";
    const char *bad = NULL;
    if (!!r != !!m->present[i]) bad = "the set of ids differs";
    for (int d = 0; r && !bad && d < DIM; d++)
      if (!isfinite(r->vector[d])) bad = "a vector is not finite";
    vv_record_free(r);
    if (bad) return bad;
  }
  return NULL;
}

/* Replaces object `o` of `dir` by `data` in the manifest: the bytes go to
 * <dir>/scratch, which is renamed to objects/<hash> (creating files is slow
 * on some disks; renames are not); put_back_object renames it back. */
static int install_object(const char *dir, const text *pristine, const char *mac, const obj_pick *o,
                          const unsigned char *data, size_t len, char newname[65], int *moved) {
  unsigned char h[VV_HASH_BYTES];
  vv_hash(data, len, h);
  vv_hex_encode(h, VV_HASH_BYTES, newname);
  *moved = strcmp(newname, o->name) != 0;
  char scratch[256], dst[512];
  strf(scratch, sizeof scratch, "%s/scratch", dir);
  strf(dst, sizeof dst, "%s/objects/%s", dir, newname);
  if (*moved && (write_all(scratch, data, len) || rename(scratch, dst))) return -1;
  text body = {0};
  text_set(&body, pristine->p, pristine->n);
  int rc = manifest_retarget(&body, o->name, newname, len, -1, -1);
  if (!rc) rc = manifest_write(dir, &body, mac);
  free(body.p);
  return rc;
}

static void put_back_object(const char *dir, const char *name) {
  char scratch[256], src[512];
  strf(scratch, sizeof scratch, "%s/scratch", dir);
  strf(src, sizeof src, "%s/objects/%s", dir, name);
  rename(src, scratch);
}

/* One random edit of an object's bytes, keeping the header's length field
 * in step so the decoder, not the header check, sees the result. */
static void mutate_object(uint64_t *st, text *t) {
  size_t hdr = VV_OBJ_HEADER_BYTES;
  if (t->n <= hdr) return;
  size_t span = t->n - hdr;
  size_t at = hdr + rnd(st, span);
  static const unsigned char special[] = {0xff, 0x9f, 0xbf, 0x7f, 0x5f, 0xc0, 0xd8, 0xf9, 0xfa, 0xfb,
                                          0x1b, 0x1a, 0x19, 0x18, 0x5b, 0x7b, 0x9b, 0xbb, 0x00, 0x20,
                                          0xf6, 0xf5, 0xf4, 0x80, 0xa0, 0x40, 0x60, 0x17, 0x38, 0x3b};
  switch (rnd(st, 8)) {
    case 0:
    case 1:
      for (size_t k = 1 + rnd(st, 3); k--;) t->p[hdr + rnd(st, span)] ^= (char)(1u << rnd(st, 8));
      break;
    case 2:
      t->p[at] = (char)special[rnd(st, sizeof special)];
      break;
    case 3:
      t->p[at] = (char)rnd(st, 256);
      break;
    case 4:
      t->n = at;
      break;
    case 5: {
      char b[8];
      size_t n = 1 + rnd(st, 8);
      for (size_t i = 0; i < n; i++) b[i] = (char)(rnd(st, 2) ? special[rnd(st, sizeof special)] : rnd(st, 256));
      text_splice(t, at, 0, b, n);
      break;
    }
    case 6:
      text_splice(t, at, 1 + rnd(st, 16), "", 0);
      break;
    default: { /* a CBOR length or count bumped by one: the bytes after a major-type byte */
      unsigned char c = (unsigned char)t->p[at];
      if ((c & 0x1f) < 24) t->p[at] = (char)((c & 0xe0) | (((c & 0x1f) + (rnd(st, 2) ? 1 : 23)) & 0x1f));
      else t->p[at] = (char)(c + 1);
      break;
    }
  }
  put_le64((unsigned char *)t->p + 16, t->n - hdr);
}

static void load_of_edited_objects_fails_cleanly_or_loads_consistent_data_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(small_session(dir, &content, NULL) == 0);
  text pristine = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &pristine, mac) == 0);
  obj_pick objs[64];
  size_t nobj = list_objects(dir, objs, 64);
  VV_REQUIRE(nobj >= 4);
  text obj[64];
  for (size_t i = 0; i < nobj; i++) {
    size_t len;
    unsigned char *b = read_object(dir, objs[i].name, &len);
    VV_REQUIRE(b != NULL);
    obj[i].p = NULL;
    text_set(&obj[i], b, len);
    free(b);
  }
  uint64_t st = 0xdec0de;
  long same = 0, payload = 0, corrupt = 0;
  text t = {0};
  for (int it = 0; it < 2000 / SANITIZER_SLOWDOWN; it++) {
    size_t k = rnd(&st, nobj);
    text_set(&t, obj[k].p, obj[k].n);
    for (size_t m = 1 + rnd(&st, 2); m--;) mutate_object(&st, &t);
    char name[65];
    int created;
    VV_REQUIRE(install_object(dir, &pristine, mac, &objs[k], (const unsigned char *)t.p, t.n, name, &created) == 0);
    VV_NOTE("iteration %d, object %zu", it, k);
    vv_db *db = NULL;
    vv_error err = {{0}};
    int rc = load_dir(dir, NULL, NULL, &db, &err);
    VV_CHECK(rc == VV_OK || rc == VV_E_CHUNK_CORRUPT);
    if (rc != VV_OK && rc != VV_E_CHUNK_CORRUPT)
      fprintf(stderr, "  load returned %s: %s\n", vv_status_code(rc), err.message);
    if (rc == VV_OK) {
      const char *d = db_differs(db, &content);
      if (!d) {
        same++;
      } else {
        payload++;
        const char *s = db_shape_differs(db, &content);
        VV_CHECK(s == NULL);
        if (s) fprintf(stderr, "  loaded an edited object: %s\n", s);
      }
      VV_CHECK(search_works(db));
    } else {
      corrupt += rc == VV_E_CHUNK_CORRUPT;
    }
    vv_db_free(db);
    if (created) put_back_object(dir, name);
  }
  VV_REQUIRE(manifest_write(dir, &pristine, mac) == 0);
  VV_CHECK(dir_differs(dir, NULL, &content) == NULL);
  printf("  edited objects: %ld corrupt, %ld loaded the same data, %ld loaded edited vectors/metadata/links\n",
         corrupt, same, payload);
  VV_CHECK(corrupt > 1000 / SANITIZER_SLOWDOWN);
  for (size_t i = 0; i < nobj; i++) free(obj[i].p);
  free(t.p);
  free(pristine.p);
  rm_rf(root);
}

VV_TEST(load_of_edited_objects_fails_cleanly_or_loads_consistent_data) {
  VV_ISOLATED(load_of_edited_objects_fails_cleanly_or_loads_consistent_data_body, NULL);
}

/* Offset of the payload of the "vectors" byte string in a chunk object. */
static long vectors_at(const text *obj, size_t *len) {
  long k = text_find(obj, "gvectors", VV_OBJ_HEADER_BYTES);
  if (k < 0) return -1;
  const unsigned char *p = (const unsigned char *)obj->p + k + 8;
  unsigned char ib = p[0];
  if (ib >= 0x40 && ib < 0x58) {
    *len = ib - 0x40u;
    return k + 9;
  }
  if (ib == 0x58) {
    *len = p[1];
    return k + 10;
  }
  if (ib == 0x59) {
    *len = (size_t)p[1] << 8 | p[2];
    return k + 11;
  }
  if (ib == 0x5a) {
    *len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    return k + 13;
  }
  return -1;
}

/* The API refuses NaN and infinite components (VV_E_BAD_VECTOR); a load
 * must not let them in either, since every distance would then be NaN. */
static void load_refuses_non_finite_vectors_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model a;
  model_a(&a, 40);
  vv_db *db = build_db(&a, 40);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save_clean(db, dir) == VV_OK);
  vv_db_free(db);
  text pristine = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &pristine, mac) == 0);
  obj_pick objs[8];
  VV_REQUIRE(list_objects(dir, objs, 8) >= 2);
  size_t len;
  unsigned char *b = read_object(dir, objs[0].name, &len); /* the one chunk comes first */
  VV_REQUIRE(b != NULL);
  text o = {0};
  text_set(&o, b, len);
  free(b);
  size_t vlen = 0;
  long v = vectors_at(&o, &vlen);
  VV_REQUIRE(v > 0 && vlen == 40u * DIM * 4);
  static const uint32_t bad[] = {0x7fc00000u, 0x7f800000u, 0xff800000u};
  for (size_t i = 0; i < 3; i++) {
    text t = {0};
    text_set(&t, o.p, o.n);
    memcpy(t.p + v + 4 * (5 * DIM + 3), &bad[i], 4); /* row 5, component 3 */
    char name[65];
    int created;
    VV_REQUIRE(install_object(dir, &pristine, mac, &objs[0], (const unsigned char *)t.p, t.n, name, &created) == 0);
    VV_NOTE("component 0x%08x", bad[i]);
    vv_db *back = NULL;
    vv_error err;
    int rc = load_dir(dir, NULL, NULL, &back, &err);
    VV_CHECK(rc == VV_E_CHUNK_CORRUPT);
    if (rc == VV_OK) {
      VV_CHECK(db_shape_differs(back, &a) == NULL);
      VV_CHECK(search_works(back));
    }
    vv_db_free(back);
    if (created) put_back_object(dir, name);
    free(t.p);
  }
  free(o.p);
  free(pristine.p);
  rm_rf(root);
}

VV_TEST(load_refuses_non_finite_vectors) { VV_ISOLATED(load_refuses_non_finite_vectors_body, NULL); }

/* ---- format 2: codebook and codes; format 1 still read -------------------- */

/* How rewrite_segment changes an index segment of an unencrypted session. */
enum { CB_KEEP, CB_NONE, CB_SET, CB_NAN, CB_DSUB, CB_KSUB1 };
enum { N_KEEP, N_CODE_LONG, N_CODE_BIG, N_CODE_NULL, N_FREE_WITH_CODE };

typedef struct seg_edit {
  int v2;                   /* the format written (1 or 2) */
  int cb;                   /* CB_*: the codebook written */
  const vv_codebook_in *set; /* for CB_SET */
  int node;                 /* N_*: applied to the first node it fits */
  int applied;              /* out: the node edit found a node */
} seg_edit;

/* The codebook of a segment object, as floats (cents: caller frees). */
static int read_codebook(const char *dir, const vv_objref *ref, vv_codebook_in *cb, float **cents) {
  size_t len;
  unsigned char *f = read_object(dir, ref->name, &len);
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  int rc = f && len >= VV_OBJ_HEADER_BYTES
               ? vv_index_decode_begin(&r, f + VV_OBJ_HEADER_BYTES, len - VV_OBJ_HEADER_BYTES, &seq, &base, &count)
               : VV_E_IO;
  if (!rc && !r.has_codebook) rc = VV_E_NOT_FOUND;
  if (!rc) {
    size_t nf = (size_t)r.cb.m * r.cb.ksub * r.cb.dsub;
    *cents = malloc(nf * sizeof **cents);
    vv_read_f32le(r.cb.centroids, nf, *cents);
    *cb = (vv_codebook_in){r.cb.m, r.cb.ksub, r.cb.dsub, r.cb.trained, *cents};
  }
  free(f);
  return rc;
}

/* In the manifest body, the entry naming `old` now names `neu` with
 * `bytes`, and its count grows by `more`. */
static int manifest_reentry(text *body, const char *old, const char *neu, uint64_t bytes, int more) {
  if (manifest_retarget(body, old, neu, bytes, -1, -1)) return -1;
  if (!more) return 0;
  char pat[100];
  strf(pat, sizeof pat, "\"name\":\"%s\"", neu);
  long at = text_find(body, pat, 0);
  long c = at < 0 ? -1 : text_find(body, "\"count\":", (size_t)at);
  if (c < 0) return -1;
  size_t e = (size_t)c + 8;
  unsigned long long n = strtoull(body->p + e, NULL, 10);
  while (e < body->n && body->p[e] >= '0' && body->p[e] <= '9') e++;
  char num[32];
  int nl = strf(num, sizeof num, "%llu", n + (unsigned long long)more);
  text_splice(body, (size_t)c + 8, e - ((size_t)c + 8), num, (size_t)nl);
  return 0;
}

/* Decodes index segment `g` of the unencrypted session in `dir`, encodes
 * it again as `ed` says, writes it as a new object and points the
 * manifest body's entry at it. With nothing to change the bytes come out
 * the same (the control case). */
static int rewrite_segment(const char *dir, text *body, const vv_mseg *g, seg_edit *ed) {
  static uint32_t store[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS];
  size_t len;
  unsigned char *f = read_object(dir, g->ref.name, &len);
  if (!f || len < VV_OBJ_HEADER_BYTES || f[6] != 0) { /* flag bit 0: encrypted */
    free(f);
    return -1;
  }
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  int rc = vv_index_decode_begin(&r, f + VV_OBJ_HEADER_BYTES, len - VV_OBJ_HEADER_BYTES, &seq, &base, &count);
  float *cents = NULL;
  vv_codebook_in cb = {0};
  const vv_codebook_in *use = NULL;
  if (!rc && r.has_codebook && ed->cb != CB_NONE && ed->cb != CB_SET) {
    size_t nf = (size_t)r.cb.m * r.cb.ksub * r.cb.dsub;
    cents = malloc(2 * nf * sizeof *cents);
    vv_read_f32le(r.cb.centroids, nf, cents);
    memcpy(cents + nf, cents, nf * sizeof *cents);
    cb = (vv_codebook_in){r.cb.m, r.cb.ksub, r.cb.dsub, r.cb.trained, cents};
    if (ed->cb == CB_NAN) cents[nf / 2] = NAN;
    if (ed->cb == CB_DSUB) cb.dsub *= 2; /* m * dsub is no longer the dimension */
    if (ed->cb == CB_KSUB1) cb.ksub = 1; /* codes name centroids it lacks */
    use = &cb;
  }
  if (ed->cb == CB_SET) use = ed->set;
  int more = ed->node == N_FREE_WITH_CODE ? 1 : 0;
  vv_buf out = {0};
  if (!rc) rc = ed->v2 == 2 ? vv_index_encode_begin_v2(&out, seq, base, count + (uint32_t)more, use)
                            : vv_index_encode_begin(&out, seq, base, count + (uint32_t)more);
  vv_node_view nd;
  uint8_t code[VV_CODEC_MAX_CODE + 1];
  while (!rc && (rc = vv_index_decode_next(&r, &nd)) == VV_OK) {
    const uint32_t *links[VV_CODEC_MAX_LEVELS];
    for (uint32_t l = 0; l < nd.nlevels; l++) {
      for (uint32_t k = 0; k < nd.counts[l]; k++) store[l][k] = vv_le32(nd.links[l] + 4 * (size_t)k);
      links[l] = store[l];
    }
    vv_node_in n = {.slot = nd.slot, .id = nd.id, .id_len = nd.id_len, .chunk = nd.chunk, .row = nd.row,
                    .nlevels = nd.nlevels, .links = links, .counts = nd.counts, .v2 = ed->v2 == 2,
                    .code = ed->v2 == 2 ? nd.code : NULL, .code_len = ed->v2 == 2 ? nd.code_len : 0};
    if (!ed->applied && n.code && (ed->node != N_CODE_NULL || n.id)) {
      memcpy(code, n.code, n.code_len);
      switch (ed->node) {
        case N_CODE_LONG: /* m + 1 bytes */
          code[n.code_len] = 0;
          n.code = code;
          n.code_len++;
          ed->applied = 1;
          break;
        case N_CODE_BIG: /* a byte >= ksub (255: these codebooks have ksub < 256) */
          code[0] = 255;
          n.code = code;
          ed->applied = 1;
          break;
        case N_CODE_NULL: /* a live node without its code */
          n.code = NULL;
          n.code_len = 0;
          ed->applied = 1;
          break;
        case N_FREE_WITH_CODE: { /* first a free record for this slot, with a code; then the real one */
          vv_node_in fr = {.slot = n.slot, .v2 = 1, .code = code, .code_len = n.code_len};
          rc = vv_index_encode_node(&out, &fr);
          ed->applied = 1;
          break;
        }
        default:
          break;
      }
    }
    if (!rc) rc = vv_index_encode_node(&out, &n);
  }
  if (rc == VV_E_NOT_FOUND) rc = VV_OK;
  free(cents);
  free(f);
  if (ed->node != N_KEEP && !ed->applied) rc = VV_E_NOT_FOUND;
  vv_objref ref;
  if (!rc) {
    fio q;
    fio_init(&q, NULL); /* no real fsync */
    vv_sctx sc;
    vv_buf scratch = {0};
    vv_error err;
    rc = vv_sctx_init(&sc, fio_io(&q), dir);
    if (!rc) rc = vv_object_write(&sc, VV_OBJ_KIND_INDEX, g->seq, out.data, out.len, &scratch, &ref, &err);
    vv_sctx_destroy(&sc);
    vv_buf_free(&scratch);
    fio_destroy(&q);
  }
  vv_buf_free(&out);
  if (!rc) rc = manifest_reentry(body, g->ref.name, ref.name, ref.bytes, more);
  return rc ? -1 : 0;
}

/* A small unencrypted HNSW session with two base segments (the first
 * carries the codebook) and a delta: 60 vectors, chunks of 20, and one
 * upsert saved after the first save. */
static int coded_session(const char *dir, model *content, vv_index_kind kind) {
  model_a(content, SMALL_N);
  vv_db *db = make_db(SMALL_CHUNK, kind);
  model empty;
  memset(&empty, 0, sizeof empty);
  int rc = db ? apply_model(db, &empty, content) : VV_E_NOMEM;
  if (!rc) rc = save_clean(db, dir);
  model next = *content;
  model_set(&next, 7, 9, "{\"moved\":1}");
  if (!rc) rc = apply_model(db, content, &next);
  if (!rc) rc = save_clean(db, dir);
  *content = next;
  vv_db_free(db);
  return rc;
}

/* Eager and lazy loads of `dir` both fail with `want`. */
static void expect_load_fails(const char *dir, int want, const char *what) {
  for (int lazy = 0; lazy < 2; lazy++) {
    vv_db *db = NULL;
    vv_error err = {{0}};
    int rc = load_dir_opts(dir, NULL, NULL, lazy, &db, NULL, &err);
    VV_CHECK(rc == want);
    if (rc != want)
      fprintf(stderr, "  %s, %s load: %s (%s)\n", what, lazy ? "lazy" : "eager", vv_status_code(rc), err.message);
    VV_CHECK(db == NULL);
    vv_db_free(db);
  }
}

typedef struct code_case {
  const char *what;
  int seg;       /* 0 = base[0], 1 = base[1], 2 = the first delta */
  seg_edit ed;
  int v1_manifest; /* also edit the manifest's version to 1 */
  int flat;      /* in a flat session */
} code_case;

static void run_code_case(const code_case *c, const char *root) {
  char dir[128];
  strf(dir, sizeof dir, "%s/%s", root, c->flat ? "flat" : "hnsw");
  VV_NOTE("%s", c->what);
  vv_manifest m;
  VV_REQUIRE(parse_dir_manifest(dir, &m) == VV_OK);
  text pristine = {0}, body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &pristine, mac) == 0);
  text_set(&body, pristine.p, pristine.n);
  const vv_mseg *g = c->seg == 0 ? &m.base[0] : c->seg == 1 ? &m.base[1] : &m.deltas[0];
  seg_edit ed = c->ed;
  vv_codebook_in cb;
  float *cents = NULL;
  if (ed.cb == CB_SET) {
    /* The HNSW session's codebook, its m * dsub matching both sessions' dimension. */
    char hdir[128];
    strf(hdir, sizeof hdir, "%s/hnsw", root);
    vv_manifest hm;
    VV_REQUIRE(parse_dir_manifest(hdir, &hm) == VV_OK);
    int rc = read_codebook(hdir, &hm.base[0].ref, &cb, &cents);
    vv_manifest_free(&hm);
    VV_REQUIRE(rc == VV_OK);
    ed.set = &cb;
  }
  VV_REQUIRE(rewrite_segment(dir, &body, g, &ed) == 0);
  if (c->v1_manifest) {
    long at = text_find(&body, "\"version\":2,", 0);
    VV_REQUIRE(at >= 0);
    text_splice(&body, (size_t)at + 10, 1, "1", 1);
  }
  VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
  expect_load_fails(dir, VV_E_CHUNK_CORRUPT, c->what);
  VV_REQUIRE(manifest_write(dir, &pristine, mac) == 0);
  free(cents);
  free(body.p);
  free(pristine.p);
  vv_manifest_free(&m);
}

/* docs/FORMAT.md 5.2: the codebook and code rules, each broken alone in a
 * segment re-encoded with everything else intact (names, sizes, counts and
 * the sum fixed up), and refused by eager and lazy loads alike. First the
 * control: the same rewrite changing nothing loads the same data. */
static void format2_code_rules_are_enforced_at_load_body(void *arg) {
  (void)arg;
  char root[64], hdir[128], fdir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(hdir, sizeof hdir, "%s/hnsw", root);
  strf(fdir, sizeof fdir, "%s/flat", root);
  model content, flat_content;
  VV_REQUIRE(coded_session(hdir, &content, VV_INDEX_HNSW) == 0);
  VV_REQUIRE(coded_session(fdir, &flat_content, VV_INDEX_FLAT) == 0);
  vv_manifest m;
  VV_REQUIRE(parse_dir_manifest(hdir, &m) == VV_OK);
  VV_REQUIRE(m.version == 2 && m.nbase >= 2 && m.ndeltas >= 1);
  vv_manifest_free(&m);

  /* Controls: rewriting changes nothing that matters. */
  for (int seg = 0; seg < 3; seg++) {
    VV_NOTE("control, segment %d", seg);
    text body = {0};
    char mac[65];
    VV_REQUIRE(manifest_read(hdir, &body, mac) == 0);
    VV_REQUIRE(parse_dir_manifest(hdir, &m) == VV_OK);
    seg_edit ed = {.v2 = 2, .cb = CB_KEEP};
    const vv_mseg *g = seg == 0 ? &m.base[0] : seg == 1 ? &m.base[1] : &m.deltas[0];
    VV_REQUIRE(rewrite_segment(hdir, &body, g, &ed) == 0);
    VV_REQUIRE(manifest_write(hdir, &body, mac) == 0);
    const char *d = dir_differs_as(hdir, NULL, 0, &content);
    VV_CHECK(d == NULL);
    d = dir_differs_as(hdir, NULL, 1, &content);
    VV_CHECK(d == NULL);
    if (d) fprintf(stderr, "  control: %s\n", d);
    vv_manifest_free(&m);
    free(body.p);
  }
  VV_CHECK(dir_differs_as(fdir, NULL, 1, &flat_content) == NULL);

  static const code_case cases[] = {
      {"a format-1 segment in a format-2 session", 1, {.v2 = 1, .cb = CB_NONE}, 0, 0},
      {"a format-2 session relabelled format 1", 2, {.v2 = 2, .cb = CB_KEEP}, 1, 0},
      {"a codebook in the second base segment", 1, {.v2 = 2, .cb = CB_SET}, 0, 0},
      {"a codebook in a delta", 2, {.v2 = 2, .cb = CB_SET}, 0, 0},
      {"a codebook in a flat session", 0, {.v2 = 2, .cb = CB_SET}, 0, 1},
      {"a codebook whose m * dsub is not the dimension", 0, {.v2 = 2, .cb = CB_DSUB}, 0, 0},
      {"a codebook with a NaN centroid", 0, {.v2 = 2, .cb = CB_NAN}, 0, 0},
      {"codes naming centroids the codebook lacks", 0, {.v2 = 2, .cb = CB_KSUB1}, 0, 0},
      {"no codebook, but codes", 0, {.v2 = 2, .cb = CB_NONE}, 0, 0},
      {"a code of m + 1 bytes", 1, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_LONG}, 0, 0},
      {"a code of m + 1 bytes in a delta", 2, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_LONG}, 0, 0},
      {"a code byte >= ksub", 0, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_BIG}, 0, 0},
      {"a code byte >= ksub in a delta", 2, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_BIG}, 0, 0},
      {"a live node without a code", 1, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_NULL}, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_code_case(&cases[i], root);
  rm_rf(root);
}

VV_TEST(format2_code_rules_are_enforced_at_load) {
  VV_ISOLATED(format2_code_rules_are_enforced_at_load_body, NULL);
}

/* FORMAT.md 5.2: "A free slot's record (id null, L = 0) has code null",
 * checked per segment. Here a delta gains a free record with a valid code
 * for a slot that a later record in the same delta then describes in full,
 * so only that rule is broken. (Fails while session/load.c's apply_node
 * accepts a code on any record.) */
static void format2_free_slot_with_code_is_refused_body(void *arg) {
  (void)arg;
  char root[64], hdir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(hdir, sizeof hdir, "%s/hnsw", root);
  model content;
  VV_REQUIRE(coded_session(hdir, &content, VV_INDEX_HNSW) == 0);
  code_case c = {"a free slot's record with a code", 2, {.v2 = 2, .cb = CB_KEEP, .node = N_FREE_WITH_CODE}, 0, 0};
  run_code_case(&c, root);
  rm_rf(root);
}

VV_TEST(format2_free_slot_with_code_is_refused) {
  VV_ISOLATED(format2_free_slot_with_code_is_refused_body, NULL);
}

/* A version-1 session (every segment re-encoded as format 1, the manifest
 * says 1): it loads, eagerly even when asked for a lazy load; its first
 * save, incremental onto it, reuses every chunk and writes a format-2
 * base with a codebook, after which it opens lazily. */
static void version1_session_loads_eagerly_and_upgrades_on_save_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(coded_session(dir, &content, VV_INDEX_HNSW) == 0);
  vv_manifest m;
  VV_REQUIRE(parse_dir_manifest(dir, &m) == VV_OK);
  size_t nchunks = m.nchunks;
  text body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &body, mac) == 0);
  for (size_t i = 0; i < m.nbase + m.ndeltas; i++) {
    seg_edit ed = {.v2 = 1, .cb = CB_NONE};
    VV_REQUIRE(rewrite_segment(dir, &body, i < m.nbase ? &m.base[i] : &m.deltas[i - m.nbase], &ed) == 0);
  }
  vv_manifest_free(&m);
  long at = text_find(&body, "\"version\":2,", 0);
  VV_REQUIRE(at >= 0);
  text_splice(&body, (size_t)at + 10, 1, "1", 1);
  VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
  free(body.p);
  VV_REQUIRE(parse_dir_manifest(dir, &m) == VV_OK);
  VV_CHECK(m.version == 1);
  vv_manifest_free(&m);

  VV_CHECK(dir_differs_as(dir, NULL, 0, &content) == NULL);
  vv_db *db = NULL;
  vv_load_stats st;
  vv_error err = {{0}};
  VV_REQUIRE(load_dir_opts(dir, NULL, NULL, 1, &db, &st, &err) == VV_OK);
  VV_CHECK(st.lazy == 0 && st.chunks_loaded == nchunks);
  VV_CHECK(db_differs(db, &content) == NULL);
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.lazy == 0);
  char *inspect = NULL;
  size_t ilen = 0;
  VV_REQUIRE(vv_session_inspect(dir, NULL, &inspect, &ilen, &err) == VV_OK);
  VV_CHECK(strstr(inspect, "\"version\":1,") != NULL);
  free(inspect);

  fio f;
  fio_init(&f, NULL);
  vv_save_stats ss;
  VV_REQUIRE(vv_db_save(db, dir, fio_io(&f), NULL, NULL, &ss, &err) == VV_OK);
  vv_db_free(db);
  fio_destroy(&f);
  VV_CHECK(ss.full == 0 && ss.chunks_reused == nchunks && ss.chunks_written == 0 && ss.index_written >= 1);
  VV_REQUIRE(parse_dir_manifest(dir, &m) == VV_OK);
  VV_CHECK(m.version == 2 && m.ndeltas == 0 && m.nbase >= 1);
  vv_codebook_in cb;
  float *cents = NULL;
  VV_CHECK(m.nbase && read_codebook(dir, &m.base[0].ref, &cb, &cents) == VV_OK);
  VV_CHECK(cb.m * cb.dsub == DIM);
  free(cents);
  vv_manifest_free(&m);
  VV_CHECK(dir_differs_as(dir, NULL, 0, &content) == NULL);
  VV_REQUIRE(load_dir_opts(dir, NULL, NULL, 1, &db, &st, &err) == VV_OK);
  VV_CHECK(st.lazy == 1 && st.chunks_loaded == 0);
  VV_CHECK(db_differs(db, &content) == NULL);
  VV_CHECK(search_works(db));
  vv_db_free(db);
  rm_rf(root);
}

VV_TEST(version1_session_loads_eagerly_and_upgrades_on_save) {
  VV_ISOLATED(version1_session_loads_eagerly_and_upgrades_on_save_body, NULL);
}
VV_TEST_MAIN()
