/*
 * test/c/support.h: fixtures shared by the C tests (support.c), linked into
 * every test binary by the Makefile, in each variant (plain, asan, tsan).
 *
 * Owns:
 *   - paths and temporary directories: strf, make_root (a fresh directory
 *     under $VV_TEST_TMPDIR or /tmp, removed at exit, or under the isolated
 *     run's own root), rm_rf;
 *   - isolation: VV_ISOLATED runs a test body in a forked child, so an
 *     engine crash or a sanitizer abort fails that test only;
 *   - whole files and session directories: read_all, write_all,
 *     path_exists, count_tmp, clear_dir, make_dirs, link_dir, snapshots of
 *     a session's files (snap_*), missing_objects;
 *   - editing sessions: a growable text, objects named by their hash, the
 *     manifest body with its checksum recomputed (manifest_*), and
 *     read_manifest, the parsed dir/manifest.json.
 *   - With VT_SESSION_MODEL defined before the include: the session tests'
 *     model of what a database must hold (DIM 8, ids v000..v079), how to
 *     build, save, load and compare such databases, and small_session. Other
 *     tests keep their own `model`, so this part is opt-in.
 *
 * Include after vvtest.h (VV_ISOLATED uses its state). The fault-injecting
 * I/O table stays in faultio.h. Paths here are short (tests keep them
 * under 64 bytes of root); every helper that can fail returns non-zero or
 * NULL and never aborts.
 */
#ifndef VV_TEST_SUPPORT_H
#define VV_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "session/manifest.h"
#include "session/object.h"
#include "session/paged.h"
#include "vecvault.h"

#if defined(__SANITIZE_ADDRESS__)
#define VVT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VVT_ASAN 1
#endif
#endif

/* Databases are several times dearer under ASan (every malloc and free
 * records a stack; big blocks are mapped and poisoned): to keep the session
 * tests near their time budget there, the load-per-iteration fuzzers run
 * this many times fewer iterations, and each scenario's ENOSPC and EIO
 * fault loops share the operations between them (odd N, even N). The plain
 * build runs everything. */
#ifdef VVT_ASAN
#define SANITIZER_SLOWDOWN 5
#else
#define SANITIZER_SLOWDOWN 1
#endif

/* ---- paths and temporary directories ------------------------------------ */

/* snprintf for paths and messages, all far below their buffers' sizes; a
 * function, so the compiler's truncation guesses stay quiet. */
__attribute__((format(printf, 3, 4))) int strf(char *buf, size_t n, const char *fmt, ...);

/* Removes a file or a whole tree (not following symbolic links). */
void rm_rf(const char *path);

/* A fresh directory: under the running isolated test's root, which its
 * parent removes, or else under $VV_TEST_TMPDIR (default /tmp), removed at
 * exit. 0 on success. */
int make_root(char out[64]);

/* ---- isolation ------------------------------------------------------------ */

/* Runs fn(arg) in a forked child with its own temporary root, so that an
 * engine crash or a sanitizer abort fails the current test instead of
 * ending the whole binary. The child's checks print as usual; its exit
 * status says whether any failed (*failures grew) and, under ASan, whether
 * it leaked. Returns 0 when the child passed. */
int vt_isolated(void (*fn)(void *), void *arg, const int *failures, const char *test_name);

/* VV_CHECK that an isolated run passed, inside a VV_TEST body. */
#define VV_ISOLATED(fn, arg) VV_CHECK(vt_isolated((fn), (arg), &vvt_state()->failures, vvt_state()->current) == 0)

/* ---- files and session directories ---------------------------------------- */

/* The whole file (caller frees), its length in *len; NULL if unreadable. */
unsigned char *read_all(const char *path, size_t *len);
/* Writes a whole file in place (no O_TRUNC: truncating to zero makes ext4
 * flush, which costs milliseconds per call on some disks). Never use it on
 * a file that is hard-linked elsewhere. */
int write_all(const char *path, const void *data, size_t len);
int path_exists(const char *path);
/* Number of tmp-* entries in dir, dir/objects and dir/manifests. */
int count_tmp(const char *dir);
/* Unlinks the files of dir, dir/objects and dir/manifests and keeps the
 * directories (creating and removing directories is slow on some disks),
 * or with remove_dirs removes the whole tree. */
void clear_dir(const char *dir, int remove_dirs);
/* dir, dir/objects and dir/manifests; existing ones are fine. */
void make_dirs(const char *dir);
/* Recreates the session in `from` at `to` with hard links: cheap, and safe
 * because sessions never write into an existing file. */
int link_dir(const char *from, const char *to);
/* Objects referenced by manifest.json and every retained
 * manifests/<generation>.json that are missing or have the wrong size. */
int missing_objects(const char *dir);

/* Name and hash of every file of a session but tmp-*. */
typedef struct snap_ent {
  char rel[300];
  size_t len;
  unsigned char h[VV_HASH_BYTES];
} snap_ent;

typedef struct snap {
  snap_ent *e;
  size_t n, cap;
} snap;

void snap_take(snap *s, const char *dir);
void snap_free(snap *s);
/* The previous generation untouched: every file kept its bytes, and the
 * only new files are objects (immutable, content-named; collected later).
 * NULL if so, else what differs (static buffer). */
const char *snap_untouched(const snap *before, const snap *after);
int snap_equal(const snap *a, const snap *b);

/* ---- editing sessions: objects, manifests ---------------------------------- */

void put_le64(unsigned char *p, uint64_t v);
/* How many leading bytes of an object its name hashes: the header and page
 * table of a paged object (format 3, session/paged.h), else all of it. */
size_t object_named_bytes(const unsigned char *data, size_t len);
/* Writes `data` as an object named by its hash (object_named_bytes) into
 * dir/objects; the name goes to `name`. */
int write_object(const char *dir, const unsigned char *data, size_t len, char name[65]);
unsigned char *read_object(const char *dir, const char *name, size_t *len);

/* A NUL-terminated byte string; free(t.p) when done. */
typedef struct text {
  char *p;
  size_t n;
} text;

void text_set(text *t, const void *p, size_t n);
/* Replaces [at, at+len) with `with`. */
void text_splice(text *t, size_t at, size_t len, const char *with, size_t wlen);
long text_find(const text *t, const char *needle, size_t from);

/* The manifest body of dir/manifest.json, and its mac field. */
int manifest_read(const char *dir, text *body, char mac[65]);
/* The whole file for a body, with its sum recomputed. */
void manifest_compose(const text *body, const char *mac, text *out);
int manifest_write(const char *dir, const text *body, const char *mac);
/* In the manifest body, the entry naming `old` now names `neu` with
 * `bytes`; if seq_from >= 0 its "seq" changes from seq_from to seq_to. */
int manifest_retarget(text *body, const char *old, const char *neu, uint64_t bytes, long long seq_from,
                      long long seq_to);
/* dir/manifest.json parsed (vv_manifest_free it); a status. */
int read_manifest(const char *dir, vv_manifest *m);

/* ---- the cache bound, sampled --------------------------------------------------- */

/* Run cache_watch_thread(&w) beside threads that use w.db: until w.stop is
 * set it samples vv_db_cache_info, counting samples and those over the
 * capacity. */
typedef struct cache_watch {
  vv_db *db;
  _Atomic int stop;
  long samples, over;
} cache_watch;
void *cache_watch_thread(void *arg);

/* ---- paged objects (format 3) and older formats ------------------------------ */

/* Pages of the format-3 object `name` of dir (its header's count), or 0
 * for an object of another format or an unreadable one. */
uint32_t object_npages(const char *dir, const char *name);

/* What the engine's own object readers need for the session in `dir`: its
 * manifest, a key ring (key: the raw 32-byte key, or NULL) and a context. */
typedef struct session_ctx {
  vv_manifest m;
  vv_keyring *kr;
  vv_sctx sc;
  int have_m, have_sc;
} session_ctx;
int session_ctx_open(session_ctx *c, const char *dir, const unsigned char *key);
void session_ctx_close(session_ctx *c);
/* The verified page table of chunk `mc` (vv_ptable_free it); a status. */
int chunk_table(const session_ctx *c, const vv_mchunk *mc, vv_ptable *t);

/* Rewrites the unencrypted format-3 session in `dir` as format `version`
 * (1 or 2) would have stored it: every object of the current generation
 * whole (one envelope, named by its hash; segments without codes for 1),
 * the manifest's version and entries changed and its sum recomputed; the
 * format-3 objects and the older generations' manifests are removed. A
 * status. */
int downgrade_session(const char *dir, int version);

/* ---- the session tests' database model (opt-in) ---------------------------- */

#ifdef VT_SESSION_MODEL
#include "faultio.h"

#define DIM 8
#define MAXV 80

/* What a database must hold: ids v000..v079, present or not. */
typedef struct model {
  int present[MAXV];
  float vec[MAXV][DIM];
  char meta[MAXV][40];
  int meta_len[MAXV]; /* 0 = none */
} model;

int id_of(int i, char *buf);
void model_set(model *m, int i, uint64_t version, const char *meta);
/* Generation A: ids 0..n-1, a third of them without metadata. */
void model_a(model *m, int n);
/* A with: ids 0 .. 3/4 of a chunk changed, a few deletions, a few
 * additions and one metadata-only change (see support.c). */
void model_b(const model *a, model *b, int n, int chunk);
int model_count(const model *m);
/* Brings a database holding `from` to `to`. */
int apply_model(vv_db *db, const model *from, const model *to);

/* Graph degree of the sessions the fault loops save (m = 32: cheap to
 * free, which matters when thousands are made) and of the fuzzing sessions
 * (m = 6: a sparse, multi-level graph). build_db uses g_m. */
#define LOOP_M 32
#define FUZZ_M 6
extern uint32_t g_m;

vv_db *make_db(uint32_t chunk, vv_index_kind kind);
vv_db *build_db(const model *m, uint32_t chunk);
/* NULL if the database holds exactly `m`, else what differs (static). */
const char *db_differs(vv_db *db, const model *m);

extern const unsigned char kKey[32];

int load_dir_opts(const char *dir, const unsigned char *key, const vv_io *io, int lazy, vv_db **out,
                  vv_load_stats *st, vv_error *err);
int load_dir(const char *dir, const unsigned char *key, const vv_io *io, vv_db **out, vv_error *err);
/* Loads `dir` (eagerly, or lazily) and compares it with `m`; NULL when
 * equal, else why (static). */
const char *dir_differs_as(const char *dir, const unsigned char *key, int lazy, const model *m);
const char *dir_differs(const char *dir, const unsigned char *key, const model *m);
int save_to(vv_db *db, const char *dir, fio *f, vv_error *err);
/* A clean save through faultio (no injection, no real fsync). */
int save_clean(vv_db *db, const char *dir);

/* A small two-generation unencrypted (or, with a key, encrypted) session:
 * a base, a delta, superseded rows, waypoints; *content is what it holds. */
#define SMALL_N 60
#define SMALL_CHUNK 20
int small_session(const char *dir, model *content, const unsigned char *key);
/* A k = 10 search answers with ids that get() finds. */
int search_works(vv_db *db);

/* For the binaries that make thousands of databases: under ASan, shorter
 * malloc/free stacks and a smaller quarantine (reports still carry the full
 * stack of the bad access; ASAN_OPTIONS overrides these); elsewhere a fixed
 * glibc mmap threshold, so big zeroed arena blocks stay mmapped instead of
 * coming from the heap, memset, and trimmed away again. Use once per binary,
 * at file scope. */
#ifdef VVT_ASAN
#define VT_MANY_DATABASES()                                                               \
  __attribute__((used, visibility("default"))) const char *__asan_default_options(void); \
  const char *__asan_default_options(void) { return "malloc_context_size=4:quarantine_size_mb=16"; }
#elif defined(__GLIBC__)
#include <malloc.h>
#define VT_MANY_DATABASES()                                          \
  __attribute__((constructor)) static void vt_tune_malloc(void) { \
    mallopt(M_MMAP_THRESHOLD, 128 << 10);                            \
    mallopt(M_TRIM_THRESHOLD, 64 << 20);                             \
  }
#else
#define VT_MANY_DATABASES() _Static_assert(1, "")
#endif
#endif /* VT_SESSION_MODEL */

#endif
