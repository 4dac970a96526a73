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

/* Status codes. Stable: the N-API layer maps them to err.code strings. */
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
  VV_E_INTERNAL = -9      /* ERR_INTERNAL: a broken invariant; a bug */
};

/* Limits enforced by the engine (the JS layer checks them first, with nicer messages). */
#define VV_MAX_DIMENSION 65536u
#define VV_MAX_ID_BYTES 4096u
#define VV_MAX_METADATA_BYTES (16u * 1024u * 1024u)
#define VV_MAX_SLOTS 0x7fffffffu
#define VV_HNSW_MAX_M 128u
#define VV_HNSW_MAX_EF 65536u

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
} vv_config;

/* Called from the thread that started the work, never concurrently.
 * A non-zero return cancels the work, which then fails with VV_E_ABORTED. */
typedef int (*vv_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct vv_db vv_db;

VV_NODISCARD int vv_db_create(const vv_config *cfg, vv_db **out);
void vv_db_free(vv_db *db); /* NULL is a no-op */

uint32_t vv_db_dimension(const vv_db *db);
vv_metric vv_db_metric(const vv_db *db);
uint64_t vv_db_size(vv_db *db);     /* live vectors */

/* One item to insert. `vector` holds `dimension` floats; `meta` is opaque
 * bytes (the JS layer stores JSON text) or NULL with meta_len 0. */
typedef struct vv_item {
  const char *id;
  size_t id_len;
  const float *vector;
  const char *meta;
  size_t meta_len;
} vv_item;

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
void vv_record_free(vv_record *rec);

typedef struct vv_search_opts {
  uint32_t ef_search;     /* 0 = the configured default */
  int include_vector;     /* copy stored vectors into results */
  uint32_t threads;       /* for batch searches; 0 = the configured default */
} vv_search_opts;

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

/* Which SIMD kernels this process uses ("avx2", "neon" or "scalar"). */
const char *vv_simd_name(void);

#ifdef __cplusplus
}
#endif
#endif
