/*
 * napi/session.c: the N-API side of sessions: NativeDB.setSecret and
 * NativeDB.saveAsync, and the module functions loadAsync and inspectAsync.
 * Engine work runs as jobs (job.h); secrets are copied into the engine's
 * guarded memory at once and never kept on this side.
 */
#include <stdlib.h>
#include <string.h>

#include "../vecvault.h"
#include "job.h"
#include "napi_util.h"
#include "session.h"

/* Optional Uint8Array argument: data pointer and length, or NULL. */
static int opt_bytes(napi_env env, napi_value v, const unsigned char **data, size_t *len) {
  napi_valuetype t;
  *data = NULL;
  *len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  bool is_ta = false;
  napi_typedarray_type type;
  void *p;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "expected a Uint8Array");
    return -1;
  }
  *data = (const unsigned char *)p;
  return 0;
}

/* Unwraps `this` for a session method; ERR_CLOSED after close(). */
static vvn_dbh *this_db(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *self) {
  if (napi_get_cb_info(env, info, argc, argv, self, NULL) != napi_ok) {
    vvn_throw(env, "ERR_INTERNAL", "N-API call failed");
    return NULL;
  }
  return vvn_dbh_unwrap(env, *self);
}

/* setSecret(encrypt: 0|1, key: Uint8Array|null, passphrase: Uint8Array|null) */
napi_value vvn_set_secret(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  vvn_dbh *d = this_db(env, info, &argc, argv, &self);
  if (!d) return NULL;
  uint32_t encrypt;
  const unsigned char *key, *pass;
  size_t klen, plen;
  if (vvn_u32(env, argv[0], &encrypt) || opt_bytes(env, argv[1], &key, &klen) || opt_bytes(env, argv[2], &pass, &plen))
    return NULL;
  if (key && klen != 32) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "key must be 32 bytes");
    return NULL;
  }
  int rc = vv_db_set_secret(d->db, (int)encrypt, key, (const char *)pass, plen);
  if (rc) vvn_throw_status(env, rc, NULL);
  return NULL;
}

/* ---- save --------------------------------------------------------------- */

typedef struct save_req {
  char *dir;
  vv_save_stats stats;
  vv_error err;
} save_req;

static int save_execute(vvn_job *j) {
  save_req *r = j->payload;
  return vv_db_save(j->owner->db, r->dir, NULL, vvn_job_session_progress, j, &r->stats, &r->err);
}

static int set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  return napi_create_double(env, v, &n) != napi_ok || napi_set_named_property(env, obj, name, n) != napi_ok;
}

static napi_value save_result(napi_env env, vvn_job *j) {
  save_req *r = j->payload;
  napi_value o, b;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  if (set_num(env, o, "generation", (double)r->stats.generation) ||
      set_num(env, o, "chunksWritten", (double)r->stats.chunks_written) ||
      set_num(env, o, "chunksReused", (double)r->stats.chunks_reused) ||
      set_num(env, o, "indexSegmentsWritten", (double)r->stats.index_written) ||
      set_num(env, o, "bytesWritten", (double)r->stats.bytes_written))
    return NULL;
  if (napi_get_boolean(env, r->stats.full != 0, &b) != napi_ok || napi_set_named_property(env, o, "full", b) != napi_ok)
    return NULL;
  return o;
}

static void save_destroy(vvn_job *j) {
  save_req *r = j->payload;
  if (r) free(r->dir);
  free(r);
}

static const vvn_job_ops kSaveOps = {"vecvault.save", save_execute, save_result, save_destroy};

/* saveAsync(dir, onProgress|null, abortFlag|null) */
napi_value vvn_save_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  vvn_dbh *d = this_db(env, info, &argc, argv, &self);
  if (!d) return NULL;
  save_req *r = calloc(1, sizeof *r);
  size_t len;
  if (!r) {
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  if (!(r->dir = vvn_utf8(env, argv[0], &len))) {
    free(r);
    return NULL;
  }
  vvn_job *j = vvn_job_new(env, self, d, &kSaveOps, r);
  if (!j) return NULL;
  j->detail = &r->err;
  if (vvn_job_set_progress(env, j, argv[1]) || vvn_job_set_abort(env, j, argv[2])) {
    vvn_job_discard(env, j);
    return NULL;
  }
  return vvn_job_start(env, j);
}

/* ---- load --------------------------------------------------------------- */

typedef struct load_req {
  char *dir;
  unsigned char *key;  /* guarded copies would be nicer; these are wiped right after use */
  char *pass;
  size_t pass_len;
  uint32_t threads;
  int lazy;
  uint64_t cache_bytes;
  uint64_t min_generation;
  vv_db *db;
  vv_load_stats stats;
  vv_error err;
} load_req;

static void wipe_free(void *p, size_t n) {
  if (!p) return;
  volatile unsigned char *v = p;
  for (size_t i = 0; i < n; i++) v[i] = 0;
  free(p);
}

static int load_execute(vvn_job *j) {
  load_req *r = j->payload;
  vv_load_opts o = {r->key, r->pass, r->pass_len, r->threads, NULL, r->lazy, r->cache_bytes, r->min_generation};
  int rc = vv_db_load(r->dir, &o, vvn_job_session_progress, j, &r->db, &r->stats, &r->err);
  /* The engine keeps its own guarded copy: drop ours as early as possible. */
  wipe_free(r->key, 32);
  wipe_free(r->pass, r->pass_len);
  r->key = NULL;
  r->pass = NULL;
  return rc;
}

/* A loaded engine waiting to be adopted by a NativeDB. */
typedef struct adoptable {
  vv_db *db;
} adoptable;

static void adoptable_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  adoptable *a = data;
  vv_db_free(a->db); /* NULL once adopted */
  free(a);
}

vv_db *vvn_adopt(napi_env env, napi_value external) {
  adoptable *a = NULL;
  if (napi_get_value_external(env, external, (void **)&a) != napi_ok || !a || !a->db) return NULL;
  vv_db *db = a->db;
  a->db = NULL;
  return db;
}

static napi_value load_result(napi_env env, vvn_job *j) {
  load_req *r = j->payload;
  adoptable *a = calloc(1, sizeof *a);
  napi_value ext, stats, out, lazy;
  if (!a) return NULL;
  a->db = r->db;
  if (napi_create_external(env, a, adoptable_finalize, NULL, &ext) != napi_ok) {
    free(a);
    return NULL;
  }
  r->db = NULL; /* the external owns it now */
  if (napi_create_object(env, &stats) != napi_ok ||
      set_num(env, stats, "generation", (double)r->stats.generation) ||
      set_num(env, stats, "totalVectors", (double)r->stats.total_vectors) ||
      set_num(env, stats, "chunkCount", (double)r->stats.chunk_count) ||
      set_num(env, stats, "chunksLoaded", (double)r->stats.chunks_loaded) ||
      set_num(env, stats, "indexSegments", (double)r->stats.index_segments) ||
      set_num(env, stats, "bytesRead", (double)r->stats.bytes_read) ||
      napi_get_boolean(env, r->stats.lazy != 0, &lazy) != napi_ok ||
      napi_set_named_property(env, stats, "lazy", lazy) != napi_ok ||
      napi_create_array_with_length(env, 2, &out) != napi_ok || napi_set_element(env, out, 0, ext) != napi_ok ||
      napi_set_element(env, out, 1, stats) != napi_ok)
    return NULL;
  return out;
}

static void load_destroy(vvn_job *j) {
  load_req *r = j->payload;
  if (!r) return;
  vv_db_free(r->db);
  wipe_free(r->key, 32);
  wipe_free(r->pass, r->pass_len);
  free(r->dir);
  free(r);
}

static const vvn_job_ops kLoadOps = {"vecvault.load", load_execute, load_result, load_destroy};

static int cache_bytes_arg(napi_env env, napi_value v, uint64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 1) || d > 9007199254740991.0) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "cache size must be a positive number of bytes");
    return -1;
  }
  *out = (uint64_t)d;
  return 0;
}

/* A BigInt in 0..2^64-1, or 0 for undefined. */
static int opt_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype t;
  bool lossless = false;
  *out = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined) return 0;
  if (t != napi_bigint || napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok || !lossless) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "expected a BigInt in 0..2^64-1");
    return -1;
  }
  return 0;
}

/* loadAsync(dir, key|null, passphrase|null, threads, lazy (0/1), cacheBytes, onProgress|null, abortFlag|null,
 *           minGeneration (BigInt)|undefined) */
napi_value vvn_load_async(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "loadAsync needs 8 arguments");
    return NULL;
  }
  const unsigned char *key, *pass;
  size_t klen, plen, dlen;
  uint32_t threads, lazy;
  uint64_t cache_bytes, min_generation;
  if (opt_bytes(env, argv[1], &key, &klen) || opt_bytes(env, argv[2], &pass, &plen) ||
      vvn_u32(env, argv[3], &threads) || vvn_u32(env, argv[4], &lazy) || cache_bytes_arg(env, argv[5], &cache_bytes) ||
      opt_u64(env, argv[8], &min_generation))
    return NULL;
  if (key && klen != 32) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "key must be 32 bytes");
    return NULL;
  }
  load_req *r = calloc(1, sizeof *r);
  if (!r) {
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  r->threads = threads;
  r->lazy = lazy != 0;
  r->cache_bytes = cache_bytes;
  r->min_generation = min_generation;
  r->dir = vvn_utf8(env, argv[0], &dlen);
  if (r->dir && key && (r->key = malloc(32))) memcpy(r->key, key, 32);
  if (r->dir && pass && (r->pass = malloc(plen ? plen : 1))) memcpy(r->pass, pass, plen);
  r->pass_len = plen;
  if (!r->dir || (key && !r->key) || (pass && !r->pass)) {
    load_destroy(&(vvn_job){.payload = r});
    if (r) vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  vvn_job *j = vvn_job_new(env, NULL, NULL, &kLoadOps, r);
  if (!j) return NULL;
  j->detail = &r->err;
  if (vvn_job_set_progress(env, j, argv[6]) || vvn_job_set_abort(env, j, argv[7])) {
    vvn_job_discard(env, j);
    return NULL;
  }
  return vvn_job_start(env, j);
}

/* ---- inspect ------------------------------------------------------------ */

typedef struct inspect_req {
  char *dir;
  char *body;
  size_t len;
  vv_error err;
} inspect_req;

static int inspect_execute(vvn_job *j) {
  inspect_req *r = j->payload;
  return vv_session_inspect(r->dir, NULL, &r->body, &r->len, &r->err);
}

static napi_value inspect_result(napi_env env, vvn_job *j) {
  inspect_req *r = j->payload;
  napi_value s;
  return napi_create_string_utf8(env, r->body, r->len, &s) == napi_ok ? s : NULL;
}

static void inspect_destroy(vvn_job *j) {
  inspect_req *r = j->payload;
  if (!r) return;
  free(r->dir);
  free(r->body);
  free(r);
}

static const vvn_job_ops kInspectOps = {"vecvault.inspect", inspect_execute, inspect_result, inspect_destroy};

/* inspectAsync(dir) -> Promise<manifest body JSON> */
napi_value vvn_inspect_async(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "inspectAsync needs a path");
    return NULL;
  }
  inspect_req *r = calloc(1, sizeof *r);
  if (!r || !(r->dir = vvn_utf8(env, argv[0], &len))) {
    free(r);
    if (!r) vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  vvn_job *j = vvn_job_new(env, NULL, NULL, &kInspectOps, r);
  if (!j) return NULL;
  j->detail = &r->err;
  return vvn_job_start(env, j);
}

/* ---- the chunk cache ------------------------------------------------------- */

/* cacheStats() -> {lazy, hits, misses, evictions, bytes, capacityBytes, chunksCached, bytesRead} */
napi_value vvn_cache_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self, o, lazy;
  vvn_dbh *d = this_db(env, info, &argc, NULL, &self);
  if (!d) return NULL;
  vv_cache_info ci;
  vv_db_cache_info(d->db, &ci);
  if (napi_create_object(env, &o) != napi_ok || napi_get_boolean(env, ci.lazy != 0, &lazy) != napi_ok ||
      napi_set_named_property(env, o, "lazy", lazy) != napi_ok || set_num(env, o, "hits", (double)ci.hits) ||
      set_num(env, o, "misses", (double)ci.misses) || set_num(env, o, "evictions", (double)ci.evictions) ||
      set_num(env, o, "bytes", (double)ci.bytes) || set_num(env, o, "capacityBytes", (double)ci.capacity) ||
      set_num(env, o, "chunksCached", (double)ci.chunks) || set_num(env, o, "bytesRead", (double)ci.bytes_read)) {
    vvn_throw(env, "ERR_INTERNAL", "N-API call failed");
    return NULL;
  }
  return o;
}

/* setCacheSize(bytes) */
napi_value vvn_set_cache_size(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  vvn_dbh *d = this_db(env, info, &argc, argv, &self);
  uint64_t bytes;
  if (!d || cache_bytes_arg(env, argv[0], &bytes)) return NULL;
  int rc = vv_db_set_cache_size(d->db, bytes);
  if (rc) {
    vvn_throw_status(env, rc, NULL);
    return NULL;
  }
  vvn_dbh_account(env, d);
  return NULL;
}

typedef struct preload_req {
  uint64_t *seqs; /* NULL: as many as fit */
  size_t n;
  size_t loaded;
  vv_error err;
} preload_req;

static int preload_execute(vvn_job *j) {
  preload_req *r = j->payload;
  return vv_db_preload_ex(j->owner->db, r->seqs, r->n, vvn_job_progress, j, &r->loaded, &r->err);
}

static napi_value preload_result(napi_env env, vvn_job *j) {
  preload_req *r = j->payload;
  napi_value v;
  if (napi_create_double(env, (double)r->loaded, &v) != napi_ok) return NULL;
  return v;
}

static void preload_destroy(vvn_job *j) {
  preload_req *r = j->payload;
  if (!r) return;
  free(r->seqs);
  free(r);
}

static const vvn_job_ops kPreloadOps = {"vecvault.preload", preload_execute, preload_result, preload_destroy};

/* preloadAsync(seqs: Float64Array|null, onProgress|null, abortFlag|null) -> chunks read */
napi_value vvn_preload_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  vvn_dbh *d = this_db(env, info, &argc, argv, &self);
  if (!d) return NULL;
  preload_req *r = calloc(1, sizeof *r);
  if (!r) {
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) == napi_ok && t != napi_null && t != napi_undefined) {
    bool is_ta = false;
    napi_typedarray_type type;
    size_t len = 0;
    void *p = NULL;
    if (napi_is_typedarray(env, argv[0], &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, argv[0], &type, &len, &p, NULL, NULL) != napi_ok || type != napi_float64_array) {
      free(r);
      vvn_throw(env, "ERR_INVALID_ARGUMENT", "chunk ids must be a Float64Array");
      return NULL;
    }
    r->seqs = malloc((len ? len : 1) * sizeof *r->seqs);
    if (!r->seqs) {
      free(r);
      vvn_throw_status(env, VV_E_NOMEM, NULL);
      return NULL;
    }
    for (size_t i = 0; i < len; i++) r->seqs[i] = (uint64_t)((const double *)p)[i];
    r->n = len;
  }
  vvn_job *j = vvn_job_new(env, self, d, &kPreloadOps, r);
  if (!j) return NULL;
  j->detail = &r->err;
  if (vvn_job_set_progress(env, j, argv[1]) || vvn_job_set_abort(env, j, argv[2])) {
    vvn_job_discard(env, j);
    return NULL;
  }
  return vvn_job_start(env, j);
}
