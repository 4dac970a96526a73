/*
 * napi/vectordb.c: the NativeDB class that lib/vector-db.js wraps.
 *
 * Thin by design: lib/ validates arguments and shapes results; this file
 * converts JS values to engine calls and back. Sync methods run on the JS
 * thread; *Async methods copy or pin their inputs and run as jobs (job.h).
 *
 * Search results cross as a compact array per query:
 *   [ids: string[], dist_score: Float64Array (distance, score pairs),
 *    metas: (string | undefined)[], vectors: Float32Array[] | undefined]
 */
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "napi_util.h"
#include "session.h"

#define MAX_ARGS 9

/* ---- handle ------------------------------------------------------------- */

static void dbh_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  vvn_dbh *d = (vvn_dbh *)data;
  d->finalized = 1;
  vvn_dbh_release_if_idle(env, d);
}

typedef struct call {
  size_t argc;
  napi_value argv[MAX_ARGS];
  napi_value self;
  vvn_dbh *d;
} call;

static int begin(napi_env env, napi_callback_info info, call *c) {
  c->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &c->argc, c->argv, &c->self, NULL) != napi_ok) {
    vvn_throw(env, "ERR_INTERNAL", "N-API call failed");
    return -1;
  }
  for (size_t i = c->argc; i < MAX_ARGS; i++) napi_get_undefined(env, &c->argv[i]);
  c->d = vvn_dbh_unwrap(env, c->self);
  return c->d ? 0 : -1;
}

static int check_dim(napi_env env, const vvn_dbh *d, size_t len, size_t count) {
  if (len != (size_t)d->dim * count) {
    vvn_throw_status(env, VV_E_DIMENSION, NULL);
    return -1;
  }
  return 0;
}

static napi_value wrap_engine(napi_env env, napi_value self, vv_db *db) {
  vvn_dbh *d = (vvn_dbh *)calloc(1, sizeof *d);
  if (!d) {
    vv_db_free(db);
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  d->db = db;
  d->dim = vv_db_dimension(db);
  if (napi_wrap(env, self, d, dbh_finalize, NULL, NULL) != napi_ok) {
    vv_db_free(d->db);
    free(d);
    vvn_throw(env, "ERR_INTERNAL", "could not wrap the database");
    return NULL;
  }
  vvn_dbh_account(env, d);
  return self;
}

/* new NativeDB(dimension, metric, index, m, efConstruction, efSearch, threads, chunkSize)
 * or new NativeDB(loaded) with the external a loadAsync resolved with. */
static napi_value js_constructor(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], self;
  VVN_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  napi_valuetype t0 = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t0);
  if (t0 == napi_external) {
    vv_db *db = vvn_adopt(env, argv[0]);
    if (!db) {
      vvn_throw(env, "ERR_INVALID_ARGUMENT", "that loaded database was already used");
      return NULL;
    }
    return wrap_engine(env, self, db);
  }
  if (argc < 8) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "NativeDB needs 8 arguments");
    return NULL;
  }
  uint32_t v[8];
  for (int i = 0; i < 8; i++)
    if (vvn_u32(env, argv[i], &v[i])) return NULL;
  vv_config cfg = {0};
  cfg.dimension = v[0];
  cfg.metric = (vv_metric)v[1];
  cfg.index = (vv_index_kind)v[2];
  cfg.hnsw_m = v[3];
  cfg.ef_construction = v[4];
  cfg.ef_search = v[5];
  cfg.threads = v[6];
  cfg.chunk_size = v[7];
  vv_db *db = NULL;
  int rc = vv_db_create(&cfg, &db);
  if (rc) {
    vvn_throw_status(env, rc, NULL);
    return NULL;
  }
  return wrap_engine(env, self, db);
}

/* config() -> [dimension, metric, index, m, efConstruction, efSearch, chunkSize, encrypted] */
static napi_value js_config(napi_env env, napi_callback_info info);

/* ---- items -------------------------------------------------------------- */

/* Items read from JS: ids and metadata copied out, vectors borrowed from a
 * Float32Array the caller keeps alive (pinned for async work). */
typedef struct item_batch {
  vv_item *items;
  size_t n;
  uint32_t threads;
  size_t done;
} item_batch;

static void item_batch_free(item_batch *b) {
  if (!b) return;
  for (size_t i = 0; b->items && i < b->n; i++) {
    free((char *)b->items[i].id);
    free((char *)b->items[i].meta);
  }
  free(b->items);
  free(b);
}

/* args: ids (string[]), vectors (Float32Array n*dim), metas ((string|null)[] | null) */
static item_batch *read_items(napi_env env, const vvn_dbh *d, napi_value ids, napi_value vecs, napi_value metas) {
  uint32_t n = 0;
  bool is_arr = false;
  if (napi_is_array(env, ids, &is_arr) != napi_ok || !is_arr || napi_get_array_length(env, ids, &n) != napi_ok) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "ids must be an array");
    return NULL;
  }
  float *vdata;
  size_t vlen;
  if (vvn_f32(env, vecs, &vdata, &vlen) || check_dim(env, d, vlen, n)) return NULL;
  bool has_metas = false;
  napi_is_array(env, metas, &has_metas);
  item_batch *b = (item_batch *)calloc(1, sizeof *b);
  if (b) b->items = (vv_item *)calloc(n ? n : 1, sizeof(vv_item));
  if (!b || !b->items) {
    item_batch_free(b);
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  b->n = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    vv_item *it = &b->items[i];
    it->vector = vdata + (size_t)i * d->dim;
    if (napi_get_element(env, ids, i, &v) != napi_ok || !(it->id = vvn_utf8(env, v, &it->id_len))) goto fail;
    if (has_metas) {
      int present;
      if (napi_get_element(env, metas, i, &v) != napi_ok) goto fail;
      it->meta = vvn_utf8_or_null(env, v, &it->meta_len, &present);
      if (present && !it->meta) goto fail;
    }
  }
  return b;
fail:
  item_batch_free(b);
  vvn_throw(env, "ERR_INVALID_ARGUMENT", "invalid item");
  return NULL;
}

/* add(id, vector, meta|null) */
static napi_value js_add(napi_env env, napi_callback_info info) {
  call c;
  if (begin(env, info, &c)) return NULL;
  vv_item it = {0};
  float *vec;
  size_t vlen;
  int present;
  if (vvn_f32(env, c.argv[1], &vec, &vlen) || check_dim(env, c.d, vlen, 1)) return NULL;
  char *id = vvn_utf8(env, c.argv[0], &it.id_len);
  if (!id) return NULL;
  char *meta = vvn_utf8_or_null(env, c.argv[2], &it.meta_len, &present);
  if (present && !meta) {
    free(id);
    return NULL;
  }
  it.id = id;
  it.meta = meta;
  it.vector = vec;
  int rc = vv_db_add(c.d->db, &it);
  free(id);
  free(meta);
  if (rc) vvn_throw_status(env, rc, NULL);
  vvn_dbh_account(env, c.d);
  return NULL;
}

/* The shared head of addBatch and addBatchAsync:
 * (ids, vectors, metas, threads, ...) -> an item batch with its threads. */
static item_batch *begin_batch(napi_env env, napi_callback_info info, call *c) {
  uint32_t threads;
  if (begin(env, info, c) || vvn_u32(env, c->argv[3], &threads)) return NULL;
  item_batch *b = read_items(env, c->d, c->argv[0], c->argv[1], c->argv[2]);
  if (b) b->threads = threads;
  return b;
}

/* addBatch(ids, vectors, metas, threads) */
static napi_value js_add_batch(napi_env env, napi_callback_info info) {
  call c;
  item_batch *b = begin_batch(env, info, &c);
  if (!b) return NULL;
  size_t done = 0;
  int rc = vv_db_add_batch(c.d->db, b->items, b->n, b->threads, NULL, NULL, &done);
  item_batch_free(b);
  if (rc) vvn_throw_status(env, rc, NULL);
  vvn_dbh_account(env, c.d);
  return NULL;
}

static int add_batch_execute(vvn_job *j) {
  item_batch *b = (item_batch *)j->payload;
  return vv_db_add_batch(j->owner->db, b->items, b->n, b->threads, vvn_job_progress, j, &b->done);
}

static napi_value add_batch_result(napi_env env, vvn_job *j) {
  napi_value v;
  if (napi_create_double(env, (double)((item_batch *)j->payload)->done, &v) != napi_ok) return NULL;
  return v;
}

static void add_batch_destroy(vvn_job *j) { item_batch_free((item_batch *)j->payload); }

static const vvn_job_ops kAddBatchOps = {"vecvault.addBatch", add_batch_execute, add_batch_result,
                                         add_batch_destroy};

/* addBatchAsync(ids, vectors, metas, threads, onProgress|null, abortFlag|null) -> Promise<done> */
static napi_value js_add_batch_async(napi_env env, napi_callback_info info) {
  call c;
  item_batch *b = begin_batch(env, info, &c);
  if (!b) return NULL;
  vvn_job *j = vvn_job_new(env, c.self, c.d, &kAddBatchOps, b);
  if (!j) return NULL;
  if (vvn_job_pin(env, j, c.argv[1]) || vvn_job_set_progress(env, j, c.argv[4]) ||
      vvn_job_set_abort(env, j, c.argv[5])) {
    vvn_job_discard(env, j);
    return NULL;
  }
  return vvn_job_start(env, j);
}

/* ---- point reads and deletes -------------------------------------------- */

typedef int (*id_fn)(vv_db *, const char *, size_t, int *);

static napi_value id_predicate(napi_env env, napi_callback_info info, id_fn fn) {
  call c;
  if (begin(env, info, &c)) return NULL;
  size_t len;
  char *id = vvn_utf8(env, c.argv[0], &len);
  if (!id) return NULL;
  int yes = 0;
  int rc = fn(c.d->db, id, len, &yes);
  free(id);
  if (rc) {
    vvn_throw_status(env, rc, NULL);
    return NULL;
  }
  napi_value out;
  VVN_CALL(env, napi_get_boolean(env, yes != 0, &out));
  return out;
}

static napi_value js_delete(napi_env env, napi_callback_info info) { return id_predicate(env, info, vv_db_delete); }
static napi_value js_has(napi_env env, napi_callback_info info) { return id_predicate(env, info, vv_db_has); }

static napi_value f32_copy(napi_env env, const float *src, size_t n) {
  void *data;
  napi_value ab, ta;
  if (napi_create_arraybuffer(env, n * sizeof(float), &data, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_float32_array, n, ab, 0, &ta) != napi_ok)
    return NULL;
  memcpy(data, src, n * sizeof(float));
  return ta;
}

/* get(id) -> [Float32Array, meta string|undefined] | null */
static napi_value js_get(napi_env env, napi_callback_info info) {
  call c;
  if (begin(env, info, &c)) return NULL;
  size_t len;
  char *id = vvn_utf8(env, c.argv[0], &len);
  if (!id) return NULL;
  vv_record *rec = NULL;
  vv_error err = {{0}};
  int rc = vv_db_get_ex(c.d->db, id, len, &rec, &err);
  free(id);
  if (rc) {
    vvn_throw_status(env, rc, err.message[0] ? err.message : NULL);
    return NULL;
  }
  napi_value out, v;
  if (!rec) {
    napi_get_null(env, &out);
    return out;
  }
  napi_value vec = f32_copy(env, rec->vector, c.d->dim);
  napi_status s = napi_create_array_with_length(env, 2, &out);
  if (vec && s == napi_ok) {
    napi_set_element(env, out, 0, vec);
    if (rec->meta && napi_create_string_utf8(env, rec->meta, rec->meta_len, &v) == napi_ok)
      napi_set_element(env, out, 1, v);
  }
  vv_record_free(rec);
  if (!vec || s != napi_ok) {
    vvn_throw(env, "ERR_INTERNAL", "could not build the record");
    return NULL;
  }
  return out;
}

static napi_value js_size(napi_env env, napi_callback_info info) {
  call c;
  if (begin(env, info, &c)) return NULL;
  napi_value out;
  VVN_CALL(env, napi_create_double(env, (double)vv_db_size(c.d->db), &out));
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  vvn_dbh *d = NULL;
  VVN_CALL(env, napi_get_cb_info(env, info, &argc, NULL, &self, NULL));
  if (napi_unwrap(env, self, (void **)&d) != napi_ok || !d) return NULL;
  d->closed = 1;
  vvn_dbh_release_if_idle(env, d); /* or later, when the last job settles */
  return NULL;
}

/* ---- search ------------------------------------------------------------- */

static napi_value results_to_js(napi_env env, const vv_results *r, uint32_t dim) {
  napi_value out, ids, ds, metas, vecs = NULL, ab, v;
  double *pairs;
  uint32_t n = (uint32_t)r->count;
  if (napi_create_array_with_length(env, 4, &out) != napi_ok || napi_create_array_with_length(env, n, &ids) != napi_ok ||
      napi_create_array_with_length(env, n, &metas) != napi_ok ||
      napi_create_arraybuffer(env, (size_t)n * 2 * sizeof(double), (void **)&pairs, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, (size_t)n * 2, ab, 0, &ds) != napi_ok)
    return NULL;
  int with_vectors = n && r->hits[0].vector;
  if (with_vectors && napi_create_array_with_length(env, n, &vecs) != napi_ok) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    const vv_hit *h = &r->hits[i];
    pairs[2 * i] = h->distance;
    pairs[2 * i + 1] = h->score;
    if (napi_create_string_utf8(env, h->id, h->id_len, &v) != napi_ok || napi_set_element(env, ids, i, v) != napi_ok)
      return NULL;
    if (h->meta && (napi_create_string_utf8(env, h->meta, h->meta_len, &v) != napi_ok ||
                    napi_set_element(env, metas, i, v) != napi_ok))
      return NULL;
    if (with_vectors && (!(v = f32_copy(env, h->vector, dim)) || napi_set_element(env, vecs, i, v) != napi_ok))
      return NULL;
  }
  napi_set_element(env, out, 0, ids);
  napi_set_element(env, out, 1, ds);
  napi_set_element(env, out, 2, metas);
  if (vecs) napi_set_element(env, out, 3, vecs);
  return out;
}

static napi_value batch_results_to_js(napi_env env, vv_results **res, size_t nq, uint32_t dim) {
  napi_value out, v;
  if (napi_create_array_with_length(env, nq, &out) != napi_ok) return NULL;
  for (size_t i = 0; i < nq; i++) {
    if (!(v = results_to_js(env, res[i], dim)) || napi_set_element(env, out, (uint32_t)i, v) != napi_ok) return NULL;
  }
  return out;
}

/* A search request. `queries` is owned (copied) for async work and borrowed
 * for sync calls. */
typedef struct search_req {
  float *queries;
  int owns_queries;
  size_t nq;
  uint32_t k;
  int batch;
  vv_search_opts opts;
  vv_error err;     /* opts.err points here */
  vv_results **res; /* nq entries */
} search_req;

static void search_req_free(search_req *s) {
  if (!s) return;
  if (s->res)
    for (size_t i = 0; i < s->nq; i++) vv_results_free(s->res[i]);
  free(s->res);
  if (s->owns_queries) free(s->queries);
  free(s);
}

/* args: queries (Float32Array), nq, k, ef, includeVector(0/1), threads, rerank, maxChunkReads
 * (the async variants take an abort flag after these) */
static search_req *read_search(napi_env env, call *c, int batch, int copy) {
  float *q;
  size_t len;
  uint32_t nq = 1, k, ef, incl, threads, rerank, reads;
  if (vvn_f32(env, c->argv[0], &q, &len) || vvn_u32(env, c->argv[1], &nq) || vvn_u32(env, c->argv[2], &k) ||
      vvn_u32(env, c->argv[3], &ef) || vvn_u32(env, c->argv[4], &incl) || vvn_u32(env, c->argv[5], &threads) ||
      vvn_u32(env, c->argv[6], &rerank) || vvn_u32(env, c->argv[7], &reads) || check_dim(env, c->d, len, nq))
    return NULL;
  search_req *s = (search_req *)calloc(1, sizeof *s);
  if (s) s->res = (vv_results **)calloc(nq ? nq : 1, sizeof *s->res);
  if (s && s->res && copy) {
    s->queries = (float *)malloc(len ? len * sizeof(float) : 1);
    if (s->queries) {
      memcpy(s->queries, q, len * sizeof(float));
      s->owns_queries = 1;
    }
  } else if (s) {
    s->queries = q;
  }
  if (!s || !s->res || !s->queries) {
    search_req_free(s);
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  s->nq = nq;
  s->k = k;
  s->batch = batch;
  s->opts.ef_search = ef;
  s->opts.include_vector = incl != 0;
  s->opts.threads = threads;
  s->opts.rerank = rerank;
  s->opts.max_chunk_reads = reads;
  s->opts.err = &s->err;
  return s;
}

static int run_search(vv_db *db, search_req *s) {
  if (!s->batch) return vv_db_search(db, s->queries, s->k, &s->opts, &s->res[0]);
  return vv_db_search_batch(db, s->queries, s->nq, s->k, &s->opts, s->res);
}

static napi_value search_result(napi_env env, const search_req *s, uint32_t dim) {
  if (!s->batch) return results_to_js(env, s->res[0], dim);
  return batch_results_to_js(env, s->res, s->nq, dim);
}

static napi_value search_sync(napi_env env, napi_callback_info info, int batch) {
  call c;
  if (begin(env, info, &c)) return NULL;
  search_req *s = read_search(env, &c, batch, 0);
  if (!s) return NULL;
  int rc = run_search(c.d->db, s);
  napi_value out = NULL;
  if (rc)
    vvn_throw_status(env, rc, s->err.message[0] ? s->err.message : NULL);
  else if (!(out = search_result(env, s, c.d->dim)))
    vvn_throw(env, "ERR_INTERNAL", "could not build the results");
  search_req_free(s);
  return out;
}

static int search_execute(vvn_job *j) { return run_search(j->owner->db, (search_req *)j->payload); }
static napi_value search_job_result(napi_env env, vvn_job *j) {
  return search_result(env, (search_req *)j->payload, j->owner->dim);
}
static void search_destroy(vvn_job *j) { search_req_free((search_req *)j->payload); }

static const vvn_job_ops kSearchOps = {"vecvault.search", search_execute, search_job_result, search_destroy};

static napi_value search_async(napi_env env, napi_callback_info info, int batch) {
  call c;
  if (begin(env, info, &c)) return NULL;
  search_req *s = read_search(env, &c, batch, 1);
  if (!s) return NULL;
  vvn_job *j = vvn_job_new(env, c.self, c.d, &kSearchOps, s);
  if (!j) return NULL;
  j->detail = &s->err;
  /* args[8]: an abort flag, polled before each chunk a lazy search pins. */
  if (vvn_job_set_abort(env, j, c.argv[8])) {
    vvn_job_discard(env, j);
    return NULL;
  }
  s->opts.cancel = vvn_job_aborted;
  s->opts.cancel_ctx = j;
  return vvn_job_start(env, j);
}

static napi_value js_search(napi_env env, napi_callback_info info) { return search_sync(env, info, 0); }
static napi_value js_search_batch(napi_env env, napi_callback_info info) { return search_sync(env, info, 1); }
static napi_value js_search_async(napi_env env, napi_callback_info info) { return search_async(env, info, 0); }
static napi_value js_search_batch_async(napi_env env, napi_callback_info info) {
  return search_async(env, info, 1);
}

static napi_value js_config(napi_env env, napi_callback_info info) {
  call c;
  if (begin(env, info, &c)) return NULL;
  vv_config cfg;
  int encrypted;
  vv_db_config(c.d->db, &cfg, &encrypted);
  double vals[8] = {cfg.dimension, cfg.metric, cfg.index, cfg.hnsw_m, cfg.ef_construction, cfg.ef_search,
                    cfg.chunk_size, encrypted};
  napi_value out, v;
  VVN_CALL(env, napi_create_array_with_length(env, 8, &out));
  for (uint32_t i = 0; i < 8; i++) {
    VVN_CALL(env, napi_create_double(env, vals[i], &v));
    VVN_CALL(env, napi_set_element(env, out, i, v));
  }
  return out;
}

/* ---- class -------------------------------------------------------------- */

napi_value vvn_define_vectordb(napi_env env) {
  napi_property_descriptor methods[] = {
    {"add", NULL, js_add, NULL, NULL, NULL, napi_default, NULL},
    {"addBatch", NULL, js_add_batch, NULL, NULL, NULL, napi_default, NULL},
    {"addBatchAsync", NULL, js_add_batch_async, NULL, NULL, NULL, napi_default, NULL},
    {"delete", NULL, js_delete, NULL, NULL, NULL, napi_default, NULL},
    {"has", NULL, js_has, NULL, NULL, NULL, napi_default, NULL},
    {"get", NULL, js_get, NULL, NULL, NULL, napi_default, NULL},
    {"size", NULL, js_size, NULL, NULL, NULL, napi_default, NULL},
    {"search", NULL, js_search, NULL, NULL, NULL, napi_default, NULL},
    {"searchBatch", NULL, js_search_batch, NULL, NULL, NULL, napi_default, NULL},
    {"searchAsync", NULL, js_search_async, NULL, NULL, NULL, napi_default, NULL},
    {"searchBatchAsync", NULL, js_search_batch_async, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
    {"config", NULL, js_config, NULL, NULL, NULL, napi_default, NULL},
    {"setSecret", NULL, vvn_set_secret, NULL, NULL, NULL, napi_default, NULL},
    {"saveAsync", NULL, vvn_save_async, NULL, NULL, NULL, napi_default, NULL},
    {"cacheStats", NULL, vvn_cache_stats, NULL, NULL, NULL, napi_default, NULL},
    {"setCacheSize", NULL, vvn_set_cache_size, NULL, NULL, NULL, napi_default, NULL},
    {"preloadAsync", NULL, vvn_preload_async, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  if (napi_define_class(env, "NativeDB", NAPI_AUTO_LENGTH, js_constructor, NULL, sizeof methods / sizeof methods[0],
                        methods, &cls) != napi_ok)
    return NULL;
  return cls;
}
