/*
 * napi/native_db.cc: the NativeDB class that lib/vector-db.js wraps.
 *
 * Thin by design: lib/ validates arguments and shapes results; this file
 * converts JS values to engine calls and back. Sync methods run on the JS
 * thread; *Async methods copy or pin their inputs and run as jobs (job.h).
 *
 * The methods are plain functions on the prototype that find their handle
 * through This(), which checks the type tag before it unwraps, so a
 * foreign `this` is refused with ERR_INVALID_ARGUMENT.
 *
 * Search results cross as a compact array per query:
 *   [ids: string[], dist_score: Float64Array (distance, score pairs),
 *    metas: (string | undefined)[], vectors: Float32Array[] | undefined]
 */
#include <cstring>
#include <vector>

#include "job.h"

namespace vvn {

/* ---- handle ------------------------------------------------------------- */

void Handle::Account(napi_env env) {
  int64_t now = db ? int64_t(vv_db_memory(db)) : 0, result;
  if (now != reported && napi_adjust_external_memory(env, now - reported, &result) == napi_ok) reported = now;
}

void Handle::ReleaseIfIdle(napi_env env, Handle *h) {
  if (h->pending) return;
  if (h->db && (h->closed || h->finalized)) {
    vv_db_free(h->db);
    h->db = nullptr;
    h->Account(env);
    h->stores[0].reset(); /* after the engine: a lazy one read through them */
    h->stores[1].reset();
  }
  if (h->finalized) delete h;
}

namespace {

class NativeDB : public Napi::ObjectWrap<NativeDB> {
 public:
  /* new NativeDB(dimension, metric, index, m, efConstruction, efSearch, threads, chunkSize)
   * or new NativeDB(loaded) with the external a loadAsync resolved with. */
  explicit NativeDB(const Napi::CallbackInfo &info) : Napi::ObjectWrap<NativeDB>(info) {
    /* Tagged first: if construction fails the wrap is removed and This()
     * refuses the object all the same. */
    info.This().As<Napi::Object>().TypeTag(NativeDBTag());
    std::shared_ptr<JsStore> store;
    vv_db *db = info[0].IsExternal() ? AdoptLoaded(info[0], &store) : Create(info);
    h_ = new Handle{db, vv_db_dimension(db), false, false, 0, 0, {}};
    h_->Bind(store);
    h_->Account(info.Env());
  }

  /* Garbage collected (or the environment is torn down). */
  ~NativeDB() override {
    if (!h_) return;
    h_->finalized = true;
    Handle::ReleaseIfIdle(Env(), h_);
  }

  Handle *h_ = nullptr;

 private:
  static vv_db *Create(const Napi::CallbackInfo &info) {
    if (info.Length() < 8) Throw(info.Env(), "ERR_INVALID_ARGUMENT", "NativeDB needs 8 arguments");
    vv_config cfg{};
    cfg.dimension = U32(info[0]);
    cfg.metric = vv_metric(U32(info[1]));
    cfg.index = vv_index_kind(U32(info[2]));
    cfg.hnsw_m = U32(info[3]);
    cfg.ef_construction = U32(info[4]);
    cfg.ef_search = U32(info[5]);
    cfg.threads = U32(info[6]);
    cfg.chunk_size = U32(info[7]);
    vv_db *db = nullptr;
    if (int rc = vv_db_create(&cfg, &db)) ThrowStatus(info.Env(), rc);
    return db;
  }
};

/* `count` vectors of the database's dimension in a Float32Array. */
Napi::Float32Array Vectors(const Handle &h, const Napi::Value &v, size_t count) {
  Napi::Float32Array a = F32(v);
  if (a.ElementLength() != size_t(h.dim) * count) ThrowStatus(v.Env(), VV_E_DIMENSION);
  return a;
}

/* Bytes of a Buffer/Uint8Array (copied), or empty for null/undefined. */
std::string Bytes(const Napi::Value &v) {
  if (Nullish(v)) return std::string();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    Throw(v.Env(), "ERR_INVALID_ARGUMENT", "expected a Uint8Array");
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  return std::string(reinterpret_cast<const char *>(a.Data()), a.ByteLength());
}

/* ---- items -------------------------------------------------------------- */

/* Items read from JS: ids and metadata copied out, vectors borrowed from a
 * Float32Array the caller keeps alive (pinned for async work). */
struct Items {
  std::vector<std::string> ids, metas;
  std::vector<vv_item> items;
  std::string attrs; /* the attribute records back to back */
  uint32_t threads = 0;
  size_t done = 0;

  /* (ids: string[], vectors: Float32Array n*dim, metas: (string|null)[] | null, threads,
   *  ..., attrs at info[at]: [records: Uint8Array, offsets: Uint32Array n+1] | null) */
  Items(const Handle &h, const Napi::CallbackInfo &info, size_t at) {
    if (!info[0].IsArray()) Throw(info.Env(), "ERR_INVALID_ARGUMENT", "ids must be an array");
    Napi::Array ids_in = info[0].As<Napi::Array>();
    uint32_t n = ids_in.Length();
    float *vdata = Vectors(h, info[1], n).Data();
    threads = U32(info[3]);
    bool has_metas = info[2].IsArray();
    ids.reserve(n);
    metas.resize(n);
    items.resize(n);
    for (uint32_t i = 0; i < n; i++) {
      ids.push_back(Utf8(ids_in.Get(i)));
      Napi::Value m = has_metas ? info[2].As<Napi::Array>().Get(i) : info.Env().Null();
      if (!Nullish(m)) metas[i] = Utf8(m);
      items[i] = {ids[i].data(), ids[i].size(), vdata + size_t(i) * h.dim, Nullish(m) ? nullptr : metas[i].data(),
                  metas[i].size(), nullptr, 0};
    }
    if (Nullish(info[at])) return;
    if (!info[at].IsArray()) Throw(info.Env(), "ERR_INVALID_ARGUMENT", "attrs must be [records, offsets]");
    Napi::Array a = info[at].As<Napi::Array>();
    attrs = Bytes(a.Get(0u));
    Napi::Value ov = a.Get(1u);
    if (!ov.IsTypedArray() || ov.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        ov.As<Napi::Uint32Array>().ElementLength() != size_t(n) + 1)
      Throw(info.Env(), "ERR_INVALID_ARGUMENT", "attrs offsets must be a Uint32Array of n + 1");
    Napi::Uint32Array off = ov.As<Napi::Uint32Array>();
    for (uint32_t i = 0; i < n; i++) {
      if (off[i] > off[i + 1] || off[i + 1] > attrs.size())
        Throw(info.Env(), "ERR_INVALID_ARGUMENT", "attrs offsets out of order");
      items[i].attrs = reinterpret_cast<const unsigned char *>(attrs.data()) + off[i];
      items[i].attrs_len = off[i + 1] - off[i];
      if (!items[i].attrs_len) items[i].attrs = nullptr;
    }
  }
};

/* add(id, vector, meta|null, attrs: Uint8Array|null) */
Napi::Value Add(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  float *vec = Vectors(h, info[1], 1).Data();
  std::string id = Utf8(info[0]), meta, attrs = Bytes(info[3]);
  bool has_meta = !Nullish(info[2]);
  if (has_meta) meta = Utf8(info[2]);
  vv_item it = {id.data(), id.size(), vec, has_meta ? meta.data() : nullptr, meta.size(),
                attrs.empty() ? nullptr : reinterpret_cast<const unsigned char *>(attrs.data()), attrs.size()};
  int rc = vv_db_add(h.db, &it);
  h.Account(info.Env());
  if (rc) ThrowStatus(info.Env(), rc);
  return info.Env().Undefined();
}

/* addBatch(ids, vectors, metas, threads, attrs) */
Napi::Value AddBatch(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  Items b(h, info, 4);
  int rc = vv_db_add_batch(h.db, b.items.data(), b.items.size(), b.threads, nullptr, nullptr, &b.done);
  h.Account(info.Env());
  if (rc) ThrowStatus(info.Env(), rc);
  return info.Env().Undefined();
}

class AddBatchJob : public Job {
 public:
  AddBatchJob(const Napi::CallbackInfo &info, Handle &h) : Job(info.Env(), "vecvault.addBatch", &h, info.This()), b_(h, info, 6) {}

 private:
  int Run() override {
    return vv_db_add_batch(owner_->db, b_.items.data(), b_.items.size(), b_.threads, OnProgress, this, &b_.done);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, double(b_.done)); }
  Items b_;
};

/* addBatchAsync(ids, vectors, metas, threads, onProgress|null, abortFlag|null, attrs) -> Promise<done> */
Napi::Value AddBatchAsync(const Napi::CallbackInfo &info) {
  auto j = std::make_unique<AddBatchJob>(info, This(info));
  j->Pin(info[1]);
  return Job::Start(std::move(j), info[4], info[5]);
}

/* ---- point reads and deletes -------------------------------------------- */

template <int (*fn)(vv_db *, const char *, size_t, int *)>
Napi::Value IdPredicate(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  std::string id = Utf8(info[0]);
  int yes = 0;
  if (int rc = fn(h.db, id.data(), id.size(), &yes)) ThrowStatus(info.Env(), rc);
  return Napi::Boolean::New(info.Env(), yes != 0);
}

/* get(id) -> [Float32Array, meta string|undefined] | null */
Napi::Value Get(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  Napi::Env env = info.Env();
  std::string id = Utf8(info[0]);
  vv_record *rec = nullptr;
  vv_error err{};
  if (int rc = vv_db_get_ex(h.db, id.data(), id.size(), &rec, &err)) ThrowStatus(env, rc, &err);
  if (!rec) return env.Null();
  std::unique_ptr<vv_record, void (*)(vv_record *)> hold(rec, vv_record_free);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, F32Copy(env, rec->vector, h.dim));
  if (rec->meta) out.Set(1u, Napi::String::New(env, rec->meta, rec->meta_len));
  return out;
}

namespace {
/* get(id) on a worker thread: a lazy database may read a page for it. */
class GetJob : public Job {
 public:
  GetJob(const Napi::CallbackInfo &info, Handle &h)
      : Job(info.Env(), "vecvault.get", &h, info.This()), id_(Utf8(info[0])) {}
  ~GetJob() override { vv_record_free(rec_); }

 private:
  int Run() override { return vv_db_get_ex(owner_->db, id_.data(), id_.size(), &rec_, &err_); }
  Napi::Value Result(Napi::Env env) override {
    if (!rec_) return env.Null();
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, F32Copy(env, rec_->vector, owner_->dim));
    if (rec_->meta) out.Set(1u, Napi::String::New(env, rec_->meta, rec_->meta_len));
    return out;
  }
  std::string id_;
  vv_record *rec_ = nullptr;
};
}  // namespace

/* getAsync(id) -> Promise<[vector, meta?] | null> */
Napi::Value GetAsync(const Napi::CallbackInfo &info) { return Job::Start(std::make_unique<GetJob>(info, This(info))); }

Napi::Value Size(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), double(vv_db_size(This(info).db)));
}

Napi::Value Close(const Napi::CallbackInfo &info) {
  Handle &h = This(info, false);
  h.closed = true;
  Handle::ReleaseIfIdle(info.Env(), &h); /* or later, when the last job settles */
  return info.Env().Undefined();
}

/* config() -> [dimension, metric, index, m, efConstruction, efSearch, chunkSize, encrypted] */
Napi::Value Config(const Napi::CallbackInfo &info) {
  vv_config cfg;
  int encrypted;
  vv_db_config(This(info).db, &cfg, &encrypted);
  double vals[8] = {double(cfg.dimension), double(cfg.metric), double(cfg.index), double(cfg.hnsw_m),
                    double(cfg.ef_construction), double(cfg.ef_search), double(cfg.chunk_size), double(encrypted)};
  Napi::Array out = Napi::Array::New(info.Env(), 8);
  for (uint32_t i = 0; i < 8; i++) out.Set(i, vals[i]);
  return out;
}

/* ---- search ------------------------------------------------------------- */

Napi::Value ResultsToJs(Napi::Env env, const vv_results *r, uint32_t dim) {
  uint32_t n = uint32_t(r->count);
  bool with_vectors = n && r->hits[0].vector;
  Napi::Array out = Napi::Array::New(env, 4), ids = Napi::Array::New(env, n), metas = Napi::Array::New(env, n);
  Napi::Array vecs = with_vectors ? Napi::Array::New(env, n) : Napi::Array();
  Napi::Float64Array pairs = Napi::Float64Array::New(env, size_t(n) * 2);
  for (uint32_t i = 0; i < n; i++) {
    const vv_hit &hit = r->hits[i];
    pairs[2 * i] = hit.distance;
    pairs[2 * i + 1] = hit.score;
    ids.Set(i, Napi::String::New(env, hit.id, hit.id_len));
    if (hit.meta) metas.Set(i, Napi::String::New(env, hit.meta, hit.meta_len));
    if (with_vectors) vecs.Set(i, F32Copy(env, hit.vector, dim));
  }
  out.Set(0u, ids);
  out.Set(1u, pairs);
  out.Set(2u, metas);
  if (with_vectors) out.Set(3u, vecs);
  return out;
}

/* A search request: (queries: Float32Array, nq, k, ef, includeVector (0/1),
 * threads, rerank, abortFlag|null, filter program|null, plan, maxDistance,
 * minScore) (NaN bounds: none). The queries are copied for async work
 * and borrowed for sync calls. */
struct Search {
  std::string filter;
  std::vector<float> copy;
  const float *queries;
  uint32_t nq, k;
  bool batch;
  vv_search_opts opts{};
  std::vector<vv_results *> res;

  Search(const Handle &h, const Napi::CallbackInfo &info, bool batch_, bool owned, vv_error *err) : batch(batch_) {
    nq = U32(info[1]);
    if (!batch && nq != 1) Throw(info.Env(), "ERR_INVALID_ARGUMENT", "a single search takes one query");
    k = U32(info[2]);
    opts.ef_search = U32(info[3]);
    opts.include_vector = U32(info[4]) != 0;
    opts.threads = U32(info[5]);
    opts.rerank = U32(info[6]);
    opts.err = err;
    filter = Bytes(info[8]);
    if (!Nullish(info[8])) {
      opts.filter = reinterpret_cast<const unsigned char *>(filter.data());
      opts.filter_len = filter.size();
    }
    opts.plan = int(U32(info[9]));
    double maxd = info[10].As<Napi::Number>().DoubleValue(), mins = info[11].As<Napi::Number>().DoubleValue();
    opts.has_max_distance = maxd == maxd;
    opts.max_distance = maxd;
    opts.has_min_score = mins == mins;
    opts.min_score = mins;
    Napi::Float32Array q = Vectors(h, info[0], nq);
    queries = q.Data();
    if (owned) queries = (copy = std::vector<float>(q.Data(), q.Data() + q.ElementLength())).data();
    res.assign(nq ? nq : 1, nullptr);
  }
  Search(const Search &) = delete;
  ~Search() {
    for (vv_results *r : res) vv_results_free(r);
  }

  int Run(vv_db *db) {
    if (!batch) return vv_db_search(db, queries, k, &opts, &res[0]);
    return vv_db_search_batch(db, queries, nq, k, &opts, res.data());
  }

  Napi::Value ToJs(Napi::Env env, uint32_t dim) const {
    if (!batch) return ResultsToJs(env, res[0], dim);
    Napi::Array out = Napi::Array::New(env, nq);
    for (uint32_t i = 0; i < nq; i++) out.Set(i, ResultsToJs(env, res[i], dim));
    return out;
  }
};

template <bool batch>
Napi::Value SearchSync(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  vv_error err{};
  Search s(h, info, batch, false, &err);
  if (int rc = s.Run(h.db)) ThrowStatus(info.Env(), rc, &err);
  return s.ToJs(info.Env(), h.dim);
}

class SearchJob : public Job {
 public:
  SearchJob(const Napi::CallbackInfo &info, Handle &h, bool batch)
      : Job(info.Env(), "vecvault.search", &h, info.This()), s_(h, info, batch, true, &err_) {
    /* A lazy search polls the abort flag before each page it reads. */
    s_.opts.cancel = Aborted;
    s_.opts.cancel_ctx = this;
  }

 private:
  int Run() override { return s_.Run(owner_->db); }
  Napi::Value Result(Napi::Env env) override { return s_.ToJs(env, owner_->dim); }
  Search s_;
};

/* searchAsync / searchBatchAsync (search arguments, abortFlag|null) -> Promise */
template <bool batch>
Napi::Value SearchAsync(const Napi::CallbackInfo &info) {
  auto j = std::make_unique<SearchJob>(info, This(info), batch);
  j->SetAbort(info[7]);
  return Job::Start(std::move(j));
}

/* ---- the data API --------------------------------------------------------- */

/* A JS array of strings, copied out, with the pointers and lengths the engine takes. */
struct Strings {
  std::vector<std::string> s;
  std::vector<const char *> ptrs;
  std::vector<size_t> lens;
  Strings(const Napi::Value &v, const char *what) {
    if (!v.IsArray()) Throw(v.Env(), "ERR_INVALID_ARGUMENT", (std::string(what) + " must be an array").c_str());
    Napi::Array a = v.As<Napi::Array>();
    s.resize(a.Length());
    for (uint32_t i = 0; i < s.size(); i++) s[i] = Utf8(a.Get(i));
    for (const std::string &x : s) {
      ptrs.push_back(x.data());
      lens.push_back(x.size());
    }
  }
};

/* The filter program argument: its bytes, or null (none). */
struct Filter {
  std::string bytes;
  bool none;
  explicit Filter(const Napi::Value &v) : bytes(Bytes(v)), none(Nullish(v)) {}
  const unsigned char *data() const { return none ? nullptr : reinterpret_cast<const unsigned char *>(bytes.data()); }
};

/* count(filter|null) -> number */
Napi::Value Count(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  Filter f(info[0]);
  uint64_t n = 0;
  if (int rc = vv_db_count(h.db, f.data(), f.bytes.size(), &n)) ThrowStatus(info.Env(), rc);
  return Napi::Number::New(info.Env(), double(n));
}

/* deleteMany(ids: string[]) -> number */
Napi::Value DeleteMany(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  Strings ids(info[0], "ids");
  uint64_t n = 0;
  if (int rc = vv_db_delete_many(h.db, ids.ptrs.data(), ids.lens.data(), ids.ptrs.size(), &n))
    ThrowStatus(info.Env(), rc);
  h.Account(info.Env());
  return Napi::Number::New(info.Env(), double(n));
}

/* deleteWhere(filter|null) -> number */
Napi::Value DeleteWhere(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  Filter f(info[0]);
  uint64_t n = 0;
  if (int rc = vv_db_delete_where(h.db, f.data(), f.bytes.size(), &n)) ThrowStatus(info.Env(), rc);
  h.Account(info.Env());
  return Napi::Number::New(info.Env(), double(n));
}

/* An updateMetadata call: (id, meta|null, attrs|null). */
struct MetaUpdate {
  std::string id, meta, attrs;
  bool has_meta;
  int found = 0;
  explicit MetaUpdate(const Napi::CallbackInfo &info)
      : id(Utf8(info[0])), attrs(Bytes(info[2])), has_meta(!Nullish(info[1])) {
    if (has_meta) meta = Utf8(info[1]);
  }
  int Run(vv_db *db, vv_error *err) {
    return vv_db_update_meta(db, id.data(), id.size(), has_meta ? meta.data() : nullptr, meta.size(),
                             attrs.empty() ? nullptr : reinterpret_cast<const unsigned char *>(attrs.data()),
                             attrs.size(), &found, err);
  }
};

/* updateMetadata(id, meta|null, attrs|null) -> boolean (the id existed) */
Napi::Value UpdateMetadata(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  MetaUpdate u(info);
  vv_error err{};
  if (int rc = u.Run(h.db, &err)) ThrowStatus(info.Env(), rc, &err);
  h.Account(info.Env());
  return Napi::Boolean::New(info.Env(), u.found != 0);
}

class MetaUpdateJob : public Job {
 public:
  MetaUpdateJob(const Napi::CallbackInfo &info, Handle &h)
      : Job(info.Env(), "vecvault.updateMetadata", &h, info.This()), u_(info) {}

 private:
  int Run() override { return u_.Run(owner_->db, &err_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, u_.found != 0); }
  MetaUpdate u_;
};

/* updateMetadataAsync(id, meta|null, attrs|null) -> Promise<boolean> */
Napi::Value UpdateMetadataAsync(const Napi::CallbackInfo &info) {
  return Job::Start(std::make_unique<MetaUpdateJob>(info, This(info)));
}

/* A scan call: (filter|null, cursor (-1 done), limit, includeVector). */
struct Scan {
  Filter f;
  uint64_t cursor;
  uint32_t limit;
  int include_vector;
  vv_results *res = nullptr;
  explicit Scan(const Napi::CallbackInfo &info)
      : f(info[0]), cursor(uint64_t(info[1].As<Napi::Number>().Int64Value())), limit(U32(info[2])),
        include_vector(U32(info[3]) != 0) {}
  ~Scan() { vv_results_free(res); }
  int Run(vv_db *db, vv_error *err) {
    return vv_db_scan(db, f.data(), f.bytes.size(), &cursor, limit, include_vector, &res, err);
  }
  /* [results (as a search's), next cursor or -1] */
  Napi::Value ToJs(Napi::Env env, uint32_t dim) const {
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, ResultsToJs(env, res, dim));
    out.Set(1u, cursor == UINT64_MAX ? -1.0 : double(cursor));
    return out;
  }
};

/* scan(filter, cursor, limit, includeVector) -> [results, cursor] */
Napi::Value ScanSync(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  Scan s(info);
  vv_error err{};
  if (int rc = s.Run(h.db, &err)) ThrowStatus(info.Env(), rc, &err);
  return s.ToJs(info.Env(), h.dim);
}

class ScanJob : public Job {
 public:
  ScanJob(const Napi::CallbackInfo &info, Handle &h) : Job(info.Env(), "vecvault.scan", &h, info.This()), s_(info) {}

 private:
  int Run() override { return s_.Run(owner_->db, &err_); }
  Napi::Value Result(Napi::Env env) override { return s_.ToJs(env, owner_->dim); }
  Scan s_;
};

/* scanAsync(filter, cursor, limit, includeVector) -> Promise<[results, cursor]> */
Napi::Value ScanAsync(const Napi::CallbackInfo &info) { return Job::Start(std::make_unique<ScanJob>(info, This(info))); }

/* walk(delta): an entries() walk begins (+1) or ends (-1). */
Napi::Value Walk(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  vv_db_walk(h.db, info[0].As<Napi::Number>().Int32Value() > 0 ? 1 : -1);
  return info.Env().Undefined();
}

/* setFilterable(paths: string[]) */
Napi::Value SetFilterable(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  Strings paths(info[0], "paths");
  std::vector<uint32_t> lens(paths.lens.begin(), paths.lens.end()); /* the engine caps a path at 256 bytes */
  if (int rc = vv_db_set_filterable(h.db, paths.ptrs.data(), lens.data(), uint32_t(lens.size())))
    ThrowStatus(info.Env(), rc);
  return info.Env().Undefined();
}

/* filterable() -> string[] */
Napi::Value Filterable(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  uint32_t n = vv_db_filterable_count(h.db);
  Napi::Array out = Napi::Array::New(info.Env(), n);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len;
    const char *p = vv_db_filterable_path(h.db, i, &len);
    out.Set(i, Napi::String::New(info.Env(), p, len));
  }
  return out;
}

}  // namespace

/* ---- class -------------------------------------------------------------- */

Handle &This(const Napi::CallbackInfo &info, bool open) {
  void *p = nullptr;
  if (!HasTag(info.This(), NativeDBTag()) || napi_unwrap(info.Env(), info.This(), &p) != napi_ok || !p)
    Throw(info.Env(), "ERR_INVALID_ARGUMENT", "not a NativeDB");
  Handle *h = static_cast<NativeDB *>(p)->h_;
  if (open && (h->closed || !h->db)) Throw(info.Env(), "ERR_CLOSED", "the database is closed");
  return *h;
}

Napi::Function DefineNativeDB(Napi::Env env) {
  static const struct {
    const char *name;
    Napi::Function::Callback fn;
  } methods[] = {
    {"add", Add},
    {"addBatch", AddBatch},
    {"addBatchAsync", AddBatchAsync},
    {"delete", IdPredicate<vv_db_delete>},
    {"has", IdPredicate<vv_db_has>},
    {"get", Get},
    {"size", Size},
    {"search", SearchSync<false>},
    {"searchBatch", SearchSync<true>},
    {"searchAsync", SearchAsync<false>},
    {"searchBatchAsync", SearchAsync<true>},
    {"close", Close},
    {"getAsync", GetAsync},
    {"refreshAsync", RefreshAsync},
    {"config", Config},
    {"setSecret", SetSecret},
    {"saveAsync", SaveAsync},
    {"cacheStats", CacheStats},
    {"setCacheSize", SetCacheSize},
    {"preloadAsync", PreloadAsync},
    {"count", Count},
    {"deleteMany", DeleteMany},
    {"deleteWhere", DeleteWhere},
    {"updateMetadata", UpdateMetadata},
    {"updateMetadataAsync", UpdateMetadataAsync},
    {"scan", ScanSync},
    {"scanAsync", ScanAsync},
    {"walk", Walk},
    {"setFilterable", SetFilterable},
    {"filterable", Filterable},
  };
  /* Plain functions, not InstanceMethod: those unwrap `this` before any
   * check of ours could run. */
  Napi::Function cls = NativeDB::DefineClass(env, "NativeDB", {});
  std::vector<Napi::PropertyDescriptor> props;
  for (const auto &m : methods) props.push_back(Napi::PropertyDescriptor::Value(m.name, Napi::Function::New(env, m.fn, m.name)));
  cls.Get("prototype").As<Napi::Object>().DefineProperties(props);
  return cls;
}

}  // namespace vvn
