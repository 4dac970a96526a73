/*
 * vecvault.h: the public API of the vecvault engine.
 *
 * The engine is plain C11 and knows nothing of Node.js; csrc/napi/ is the
 * only code that includes node_api.h. Every function that can fail returns
 * an int status (VV_OK or a negative VV_E_* value); out-parameters come last.
 *
 * Threading: a vv_db may be used from many threads at once. Searches, gets
 * and other readers run in parallel; writers (add, delete) take the database
 * exclusively for the short time they mutate it. vv_db_free must not race
 * any other call on the same handle: the caller (the N-API layer) waits for
 * in-flight work before freeing.
 *
 * Ownership: pointers passed in are borrowed for the duration of the call
 * and copied if kept. Results handed out (vv_results, vv_record) are owned
 * by the caller and released with their _free function.
 */
#ifndef VECVAULT_H
#define VECVAULT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define VV_NODISCARD __attribute__((warn_unused_result))
#else
#define VV_NODISCARD
#endif

/* Status codes. Stable: the N-API layer maps them to err.code strings
 * through common/status.c. Each comment starts with that string; a code
 * added here needs its row there, in lib/errors.js, index.d.ts and the
 * README's table (test/26.errors.codes.js checks all of them). */
enum {
  VV_OK = 0,
  VV_E_NOMEM = -1,        /* ERR_NO_MEMORY */
  VV_E_INVALID = -2,      /* ERR_INVALID_ARGUMENT */
  VV_E_DIMENSION = -3,    /* ERR_DIMENSION_MISMATCH */
  VV_E_BAD_VECTOR = -4,   /* ERR_INVALID_VECTOR: NaN, Inf, or zero norm under cosine */
  VV_E_BAD_ID = -5,       /* ERR_INVALID_ID */
  VV_E_BAD_METADATA = -6, /* ERR_INVALID_METADATA */
  VV_E_ABORTED = -7,      /* ERR_ABORTED: a progress callback asked to stop */
  VV_E_FULL = -8,         /* ERR_CAPACITY: more slots than the engine addresses */
  VV_E_INTERNAL = -9,     /* ERR_INTERNAL: a broken invariant; a bug */
  VV_E_CORRUPT = -10,     /* ERR_CORRUPT, engine-internal: malformed bytes seen by a decoder; every public call maps it to a specific code, so no caller sees it */
  VV_E_KEY_REQUIRED = -11,     /* ERR_KEY_REQUIRED */
  VV_E_WRONG_KEY = -12,        /* ERR_WRONG_KEY */
  VV_E_MANIFEST_CORRUPT = -13, /* ERR_MANIFEST_CORRUPT */
  VV_E_MANIFEST_AUTH = -14,    /* ERR_MANIFEST_AUTH */
  VV_E_CHUNK_MISSING = -15,    /* ERR_CHUNK_MISSING */
  VV_E_CHUNK_CORRUPT = -16,    /* ERR_CHUNK_CORRUPT */
  VV_E_UNSUPPORTED_VERSION = -17, /* ERR_UNSUPPORTED_VERSION */
  VV_E_LOCKED = -18,           /* ERR_LOCKED */
  VV_E_IO = -19,               /* ERR_IO */
  VV_E_NOSPC = -20,            /* ERR_NOSPC */
  VV_E_NOT_FOUND = -21,        /* ERR_NOT_FOUND: no session at that path */
  VV_E_NOT_A_SESSION = -22,    /* ERR_NOT_A_SESSION: a save into a directory that is neither empty nor a session */
  VV_E_ROLLBACK = -23,         /* ERR_ROLLBACK: the session is older than the generation the caller last saw */
  VV_E_CONFLICT = -24,         /* ERR_CONFLICT: another writer committed first (an object store's compare-and-swap) */
  VV_E_ACCESS = -25,           /* ERR_ACCESS: the storage refused the caller's credentials */
  VV_E_ASYNC_REQUIRED = -26,   /* ERR_ASYNC_REQUIRED: a synchronous call would wait for JavaScript storage */
  VV_E_BAD_FILTER = -27        /* ERR_INVALID_FILTER: a filter the engine cannot run (lib/filter.js names the clause) */
};

/* Limits enforced by the engine (the JS layer checks them first, with nicer messages). */
#define VV_MAX_DIMENSION 65536u
#define VV_MAX_ID_BYTES 4096u
#define VV_MAX_METADATA_BYTES (16u * 1024u * 1024u)
#define VV_MAX_SLOTS 0x7fffffffu
#define VV_HNSW_MAX_M 128u
#define VV_HNSW_MAX_EF 65536u

/* Detail for a failed session call: which object, what check. */
typedef struct vv_error {
  char message[320];
} vv_error;

/* Human-readable message for a status. Never NULL. */
const char *vv_strerror(int status);
/* Stable code string for a status, e.g. "ERR_DIMENSION_MISMATCH". Never NULL. */
const char *vv_status_code(int status);

typedef enum vv_metric { VV_METRIC_COSINE = 0, VV_METRIC_L2 = 1, VV_METRIC_DOT = 2 } vv_metric;
typedef enum vv_index_kind { VV_INDEX_HNSW = 0, VV_INDEX_FLAT = 1 } vv_index_kind;

typedef struct vv_config {
  uint32_t dimension;       /* 1..VV_MAX_DIMENSION */
  vv_metric metric;
  vv_index_kind index;
  uint32_t hnsw_m;          /* 2..VV_HNSW_MAX_M (0 = default 16) */
  uint32_t ef_construction; /* 0 = default 200 */
  uint32_t ef_search;       /* 0 = default 64 */
  uint32_t threads;         /* workers for batch calls; 0 = 1 */
  uint64_t seed;            /* level generator seed; 0 = fixed default */
  uint32_t chunk_size;      /* vectors per session chunk; 0 = default 10000 */
  uint64_t cache_bytes;     /* bound of the chunk cache of a lazily loaded session; 0 = 150 MiB */
} vv_config;

/* Called from the thread that started the work, never concurrently.
 * A non-zero return cancels the work, which then fails with VV_E_ABORTED. */
typedef int (*vv_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct vv_db vv_db;

VV_NODISCARD int vv_db_create(const vv_config *cfg, vv_db **out);
void vv_db_free(vv_db *db); /* NULL is a no-op */

uint32_t vv_db_dimension(const vv_db *db);
/* The effective configuration (defaults filled in), and whether saves encrypt. */
void vv_db_config(const vv_db *db, vv_config *out, int *encrypted);
vv_metric vv_db_metric(const vv_db *db);
uint64_t vv_db_size(vv_db *db);     /* live vectors */
/* Approximate native bytes the database holds (for a garbage collector's
 * accounting); lock-free, refreshed whenever storage grows. */
uint64_t vv_db_memory(vv_db *db);

/* One item to insert. `vector` holds `dimension` floats; `meta` is opaque
 * bytes (the JS layer stores JSON text), 1..VV_MAX_METADATA_BYTES of them,
 * or NULL with meta_len 0 for none; non-NULL with meta_len 0 is
 * VV_E_BAD_METADATA. */
typedef struct vv_item {
  const char *id;
  size_t id_len;
  const float *vector;
  const char *meta;
  size_t meta_len;
  /* The values of the database's filterable fields (vv_db_set_filterable)
   * as one attribute record (filter/attr.h), or NULL with attrs_len 0 for
   * none: every field missing. A malformed record is VV_E_BAD_METADATA. */
  const unsigned char *attrs;
  size_t attrs_len;
} vv_item;

/* Declares the metadata fields filters may use, as dotted paths (filter/attr.h:
 * up to 64, each 1..256 bytes), on a database that holds no vector and has
 * none declared yet (VV_E_INVALID otherwise). They are saved with the
 * session and fixed for the database's life; each costs memory per vector
 * (docs/FILTER.md). */
VV_NODISCARD int vv_db_set_filterable(vv_db *db, const char *const *paths, const uint32_t *lens, uint32_t n);
/* The number of declared paths, and path i (borrowed until vv_db_free). */
uint32_t vv_db_filterable_count(const vv_db *db);
const char *vv_db_filterable_path(const vv_db *db, uint32_t i, uint32_t *len);

/* Insert or replace (same id) one item. */
VV_NODISCARD int vv_db_add(vv_db *db, const vv_item *item);

/* Insert or replace many items using up to `threads` threads (0 = the
 * configured default). Items are validated before anything is inserted: a
 * bad item fails the call with nothing changed and *done == index of the bad
 * item. Insertion then proceeds in groups; if `progress` cancels, the groups
 * already inserted stay, and *done says how many items that is. Later
 * duplicates of an id in the same batch win. */
VV_NODISCARD int vv_db_add_batch(vv_db *db, const vv_item *items, size_t n, uint32_t threads,
                                 vv_progress_fn progress, void *progress_ctx, size_t *done);

/* Remove an id. *removed is 1 if it existed, 0 if not. */
VV_NODISCARD int vv_db_delete(vv_db *db, const char *id, size_t id_len, int *removed);

/* *found = 1 if the id is present. */
VV_NODISCARD int vv_db_has(vv_db *db, const char *id, size_t id_len, int *found);

/* A copy of one stored record, or *out = NULL if the id is absent. */
typedef struct vv_record {
  float *vector;   /* dimension floats (unit length under cosine) */
  char *meta;      /* NULL if none */
  size_t meta_len;
} vv_record;
VV_NODISCARD int vv_db_get(vv_db *db, const char *id, size_t id_len, vv_record **out);
/* The same; when a chunk read of a lazily loaded database fails, `err`
 * (may be NULL) says which object and why. */
VV_NODISCARD int vv_db_get_ex(vv_db *db, const char *id, size_t id_len, vv_record **out, vv_error *err);
void vv_record_free(vv_record *rec);

typedef struct vv_search_opts {
  uint32_t ef_search;     /* 0 = the configured default */
  int include_vector;     /* copy stored vectors into results */
  uint32_t threads;       /* for batch searches; 0 = the configured default */
  uint32_t rerank;        /* lazily loaded HNSW: candidates re-ranked by full vectors (all of them,
                             each read if not cached: a query reads at most this many pages);
                             0 = max(VV_RERANK_FACTOR * k, the walk's beam: 2 x efSearch) */
  vv_error *err;   /* or NULL; when a chunk read of a lazily loaded database fails, which
                             object and why (the first failure, for batches) */
  /* Or NULL. Lazily loaded: polled before each chunk the search pins (read
   * or cached); non-zero stops the search with VV_E_ABORTED. May be called
   * from several threads at once in a batch search. */
  int (*cancel)(void *ctx);
  void *cancel_ctx;
  /* A filter program (filter/filter.h), or NULL: results are only live
   * vectors it matches, exactly min(k, how many match) of them. */
  const unsigned char *filter;
  size_t filter_len;
  /* How a filtered search finds them: VV_PLAN_AUTO (estimates decide), or
   * one forced (tests and experts; docs/FILTER.md). */
  int plan;
  /* Range search: drop hits farther than max_distance / scoring below
   * min_score (each only when its has_ flag is set). */
  int has_max_distance, has_min_score;
  double max_distance, min_score;
  /* Or NULL: receives the plan the (last) query used, VV_PLAN_*. */
  int *plan_used;
} vv_search_opts;

enum {
  VV_PLAN_AUTO = 0,
  VV_PLAN_SCAN = 1,   /* exact: every matching vector measured (found through posting lists when they can) */
  VV_PLAN_GRAPH = 2,  /* HNSW walk, the filter checked inside the loop */
  VV_PLAN_ACORN = 3,  /* HNSW walk stepping over failing neighbours (ACORN-1) */
  VV_PLAN_NONE = 4    /* no filter */
};

#define VV_RERANK_FACTOR 4u

/* One hit. Strings point into the owning vv_results and are not
 * NUL-terminated; use the lengths. */
typedef struct vv_hit {
  const char *id;
  size_t id_len;
  float distance;         /* metric distance: smaller is nearer (see docs) */
  float score;            /* similarity: larger is nearer */
  const char *meta;       /* NULL if none */
  size_t meta_len;
  const float *vector;    /* NULL unless include_vector */
} vv_hit;

typedef struct vv_results {
  size_t count;
  vv_hit *hits;           /* sorted by ascending distance */
} vv_results;
void vv_results_free(vv_results *res);

/* k nearest live vectors to `query` (dimension floats). Returns min(k, size)
 * hits: deleted vectors never appear, and HNSW falls back to an exact scan
 * in the rare case its graph walk finds fewer live vectors than that. */
VV_NODISCARD int vv_db_search(vv_db *db, const float *query, uint32_t k, const vv_search_opts *opts,
                              vv_results **out);

/* `nq` queries laid out back to back; out[i] receives query i's results.
 * On failure every out[i] is NULL. */
VV_NODISCARD int vv_db_search_batch(vv_db *db, const float *queries, size_t nq, uint32_t k,
                                    const vv_search_opts *opts, vv_results **out);

/* ---- the data API: counting, bulk deletes, metadata updates, scans ------ */

/* Live vectors the filter program matches (NULL: all of them). */
VV_NODISCARD int vv_db_count(vv_db *db, const unsigned char *filter, size_t filter_len, uint64_t *out);

/* Deletes the listed ids (absent ones are skipped) under one hold of the
 * lock; *deleted says how many existed. */
VV_NODISCARD int vv_db_delete_many(vv_db *db, const char *const *ids, const size_t *id_lens, size_t n,
                                   uint64_t *deleted);
/* Deletes every live vector the filter program matches. */
VV_NODISCARD int vv_db_delete_where(vv_db *db, const unsigned char *filter, size_t filter_len, uint64_t *deleted);

/* Replaces an id's metadata and attribute record (as vv_item's; meta NULL
 * with meta_len 0: none) and keeps its vector, slot and graph links. *found
 * is 0 (nothing changed) when the id is absent. In a lazily loaded session
 * the row's vector is read once and kept in memory until the next save
 * writes the row anew. */
VV_NODISCARD int vv_db_update_meta(vv_db *db, const char *id, size_t id_len, const char *meta, size_t meta_len,
                                   const unsigned char *attrs, size_t attrs_len, int *found, vv_error *err);

/* Up to `limit` live vectors the filter matches (NULL: all), in slot
 * order from *cursor (0 to start), as hits with distance and score 0;
 * *cursor moves past them, and is UINT64_MAX once the scan is done. A
 * vector live and untouched for the whole scan is seen exactly once; one
 * added or deleted meanwhile may or may not be (see vv_db_walk for ids
 * re-added during a walk). Lazily loaded rows are read page by page, so
 * memory stays bounded by `limit`. */
VV_NODISCARD int vv_db_scan(vv_db *db, const unsigned char *filter, size_t filter_len, uint64_t *cursor,
                            uint32_t limit, int include_vector, vv_results **out, vv_error *err);
/* A walk of vv_db_scan calls begins (delta +1) and ends (-1). While any
 * walk is in progress no slot is reused, so a vector added meanwhile,
 * re-added ones included (an upsert moves its id to a new slot), lands
 * after every cursor: an id live for the whole walk is then seen at least
 * once, and an id re-added during it at most twice, the newer last. Takes
 * no lock (callable from any thread at any time). */
void vv_db_walk(vv_db *db, int delta);

/* ---- sessions: chunked, encrypted, crash-safe snapshots on disk ---------
 * Layout and guarantees: docs/FORMAT.md. */

struct vv_io; /* session/io.h: file operations, replaceable for fault injection */

/* Encryption for future saves. With encrypt != 0 exactly one of `key`
 * (32 bytes) or `pass` must be given, or saves fail with VV_E_KEY_REQUIRED.
 * Secrets are copied into guarded memory and wiped by vv_db_free. */
VV_NODISCARD int vv_db_set_secret(vv_db *db, int encrypt, const unsigned char *key, const char *pass,
                                  size_t pass_len);

enum { VV_PHASE_INSERT = 0, VV_PHASE_CHUNKS = 1, VV_PHASE_INDEX = 2, VV_PHASE_COMMIT = 3, VV_PHASE_MANIFEST = 4 };
/* Session progress: `done` of `total` objects, the current phase, and the
 * bytes written or read so far. Non-zero return aborts (VV_E_ABORTED). */
typedef int (*vv_session_progress_fn)(void *ctx, uint64_t done, uint64_t total, int phase, uint64_t bytes);

typedef struct vv_save_stats {
  uint64_t generation;
  uint64_t chunks_written, chunks_reused;
  uint64_t index_written;   /* index segments written */
  uint64_t bytes_written;   /* object and manifest bytes */
  int full;                 /* 1 if everything was rewritten */
} vv_save_stats;

/* Saves the database into `dir` (created if missing) as a new generation.
 * The generation is the database as a brief capture under the lock saw
 * it; searches and writers run while it is written. Incremental when `dir`
 * still holds the generation this database last saved or loaded there.
 * On any failure the previous generation is left intact. */
VV_NODISCARD int vv_db_save(vv_db *db, const char *dir, const struct vv_io *io, vv_session_progress_fn progress,
                            void *ctx, vv_save_stats *stats, vv_error *err);

/* How a save lays out what it writes. All zero = the defaults. */
typedef struct vv_save_opts {
  uint32_t page_bytes; /* row bytes per chunk page, VV_PAGE_MIN_BYTES..VV_PAGE_MAX_BYTES; 0 = 4 KiB.
                          Smaller pages read less per lazy search from local disks; larger ones
                          suit storage with a high cost per request (docs/PERFORMANCE.md) */
} vv_save_opts;
#define VV_PAGE_MIN_BYTES 1024u
#define VV_PAGE_MAX_BYTES (1u << 20)
/* vv_db_save with options (NULL = defaults); VV_E_INVALID for a page size out of range. */
VV_NODISCARD int vv_db_save_with(vv_db *db, const char *dir, const struct vv_io *io, const vv_save_opts *opts,
                                 vv_session_progress_fn progress, void *ctx, vv_save_stats *stats, vv_error *err);

typedef struct vv_load_opts {
  const unsigned char *key; /* 32 bytes, or NULL */
  const char *pass;         /* or a passphrase, or NULL */
  size_t pass_len;
  uint32_t threads;         /* 0 = 1 */
  const struct vv_io *io;   /* NULL = POSIX */
  int lazy;                 /* read vectors on demand (format 2 and 3 HNSW sessions; others load eagerly) */
  uint64_t cache_bytes;     /* the page cache bound; 0 = 150 MiB. With `cache`: this session's cap in it
                               (0 = none, only the shared bound) */
  struct vv_cache *cache;   /* or NULL: a cache shared with other sessions (borrowed; the load keeps a
                               reference while the database lives) */
  uint64_t min_generation;  /* refuse a session older than this with VV_E_ROLLBACK, checked as soon as
                               the manifest is authenticated, before any object is read; 0 = any */
} vv_load_opts;

typedef struct vv_load_stats {
  uint64_t generation;
  uint64_t total_vectors;
  uint64_t chunk_count, chunks_loaded;
  uint64_t index_segments;
  uint64_t bytes_read;
  int lazy;                 /* 1 if vectors stay in their chunks until needed */
  int in_place;             /* vv_db_refresh: the database itself moved forward (no new one) */
} vv_load_stats;

/* Opens the session in `dir` and loads it completely into a new database
 * (secrets are kept so later saves stay encrypted the same way). */
VV_NODISCARD int vv_db_load(const char *dir, const vv_load_opts *opts, vv_session_progress_fn progress, void *ctx,
                            vv_db **out, vv_load_stats *stats, vv_error *err);

/* A newer generation of the session `old` was loaded from or saved to:
 * loads the current one from `dir` (opts' key and passphrase are ignored:
 * old's secrets open it, and it must be the same session, else
 * VV_E_WRONG_KEY), then, both being lazy, hands old's cached pages and
 * page tables of the chunks the two generations share to the new
 * database. `old` stays usable (its cache starts empty); free it when its
 * users are done. When `old` is lazy and the new generation only adds
 * delta index segments to old's, old itself moves forward instead, reading
 * only the manifest and those segments (stats->in_place = 1, *out NULL);
 * if that fails after it began to change `old`, every later call on `old`
 * fails (VV_E_CHUNK_CORRUPT or VV_E_NOMEM) rather than answer from a mix of
 * generations. VV_E_INVALID (nothing read) if `old` holds changes no save
 * has written: they would be lost. */
VV_NODISCARD int vv_db_refresh(vv_db *old, const char *dir, const vv_load_opts *opts, vv_session_progress_fn progress,
                               void *ctx, vv_db **out, vv_load_stats *stats, vv_error *err);

/* The chunk cache of a lazily loaded database (all zero but `capacity`
 * for one held wholly in memory). */
typedef struct vv_cache_info {
  int lazy;
  uint64_t hits, misses;  /* misses = page (and page-table) reads from storage */
  uint64_t evictions;
  uint64_t bytes;         /* decoded bytes cached now; never above capacity */
  uint64_t capacity;
  uint64_t entries;       /* pages and page tables cached now */
  uint64_t bytes_read;    /* object bytes read from storage by the cache */
} vv_cache_info;
void vv_db_cache_info(vv_db *db, vv_cache_info *out);
/* Changes the cache bound (bytes > 0), evicting as needed. */
VV_NODISCARD int vv_db_set_cache_size(vv_db *db, uint64_t bytes);

/* A cache shared by lazily loaded sessions (vv_load_opts.cache): one byte
 * bound over the cached values of all of them. One LRU order spans every
 * session; a session with its own cap (its cache_bytes) that would pass it
 * recycles its own least recently used values first. Thread-safe. */
typedef struct vv_cache vv_cache;
typedef struct vv_shared_cache_info {
  uint64_t hits, misses, evictions, bypasses; /* summed over its sessions, past ones included */
  uint64_t bytes;    /* cached now; never above capacity */
  uint64_t capacity;
  uint64_t entries;  /* values cached now */
  uint64_t sessions; /* sessions using it now */
} vv_shared_cache_info;
/* A cache of `bytes` (> 0); the caller holds one reference. */
VV_NODISCARD int vv_cache_open(uint64_t bytes, vv_cache **out);
/* Drops the caller's reference. Each session loaded with the cache holds
 * its own until it is freed; the last reference frees the cache. NULL is a no-op. */
void vv_cache_close(vv_cache *c);
/* Changes the shared bound (bytes > 0), evicting as needed. */
VV_NODISCARD int vv_cache_resize(vv_cache *c, uint64_t bytes);
void vv_cache_shared_info(vv_cache *c, vv_shared_cache_info *out);
/* Loads chunks into the cache: the `n` chunk seqs given (VV_E_INVALID if
 * one is not a chunk of the session), or with seqs NULL as many as fit, in
 * manifest order. *loaded counts chunks read from storage. A no-op for a
 * database held in memory. */
VV_NODISCARD int vv_db_preload(vv_db *db, const uint64_t *seqs, size_t n, vv_progress_fn progress, void *ctx,
                               size_t *loaded);
/* The same, with `err` (may be NULL) naming the chunk object that failed. */
VV_NODISCARD int vv_db_preload_ex(vv_db *db, const uint64_t *seqs, size_t n, vv_progress_fn progress, void *ctx,
                                  size_t *loaded, vv_error *err);

/* The manifest body (JSON, checksum verified, no key needed) as a malloc'd
 * NUL-terminated string. */
VV_NODISCARD int vv_session_inspect(const char *dir, const struct vv_io *io, char **body, size_t *len,
                                    vv_error *err);

/* Which SIMD kernels this process uses ("avx2", "neon" or "scalar"). */
const char *vv_simd_name(void);

#ifdef __cplusplus
}
#endif
#endif
