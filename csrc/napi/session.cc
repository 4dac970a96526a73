/*
 * napi/session.cc: the binding's side of sessions: NativeDB.setSecret,
 * saveAsync, cacheStats, setCacheSize and preloadAsync, and the module
 * functions loadAsync and inspectAsync. Engine work runs as jobs (job.h);
 * secrets are copied into the engine's guarded memory at once, and the
 * copies a load needs on its worker thread are wiped as soon as it has
 * used them.
 */
#include <cstdlib>
#include <vector>

#include "job.h"

namespace vvn {
namespace {

void Wipe(std::vector<unsigned char> &b) {
  volatile unsigned char *v = b.data();
  for (size_t i = 0; i < b.size(); i++) v[i] = 0;
  b.clear();
}

Napi::Uint8Array Key(const Napi::Value &v) {
  Napi::Uint8Array key = OptBytes(v);
  if (key.Data() && key.ByteLength() != 32) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "key must be 32 bytes");
  return key;
}

Napi::Object Numbers(Napi::Env env, std::initializer_list<std::pair<const char *, double>> fields) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto &f : fields) o.Set(f.first, f.second);
  return o;
}

}  // namespace

/* setSecret(encrypt: 0|1, key: Uint8Array|null, passphrase: Uint8Array|null) */
Napi::Value SetSecret(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  uint32_t encrypt = U32(info[0]);
  Napi::Uint8Array key = Key(info[1]), pass = OptBytes(info[2]);
  const char *p = reinterpret_cast<const char *>(pass.Data());
  if (int rc = vv_db_set_secret(h.db, int(encrypt), key.Data(), p, p ? pass.ByteLength() : 0))
    ThrowStatus(info.Env(), rc);
  return info.Env().Undefined();
}

/* ---- save --------------------------------------------------------------- */

namespace {

class SaveJob : public Job {
 public:
  SaveJob(const Napi::CallbackInfo &info, Handle &h)
      : Job(info.Env(), "vecvault.save", &h, info.This()), to_(info[0]) {
    opts_.page_bytes = U32(info[3]);
    if (to_.store) UseOwnThread();
  }

 private:
  int Run() override {
    return vv_db_save_with(owner_->db, to_.dir.c_str(), to_.io(), &opts_, OnSessionProgress, this, &st_, &err_);
  }
  Napi::Value Result(Napi::Env env) override {
    /* A lazy database now reads through this storage. */
    owner_->Bind(to_.store);
    Napi::Object o = Numbers(env, {{"generation", double(st_.generation)},
                                   {"chunksWritten", double(st_.chunks_written)},
                                   {"chunksReused", double(st_.chunks_reused)},
                                   {"indexSegmentsWritten", double(st_.index_written)},
                                   {"bytesWritten", double(st_.bytes_written)}});
    o.Set("full", st_.full != 0);
    return o;
  }
  Target to_;
  vv_save_opts opts_{};
  vv_save_stats st_{};
};

}  // namespace

/* saveAsync(dir, onProgress|null, abortFlag|null, pageBytes (0 = default)) */
Napi::Value SaveAsync(const Napi::CallbackInfo &info) {
  return Job::Start(std::make_unique<SaveJob>(info, This(info)), info[1], info[2]);
}

/* ---- load --------------------------------------------------------------- */

namespace {

/* A loaded engine waiting to be adopted by a NativeDB. */
struct Loaded {
  vv_db *db;
  std::shared_ptr<JsStore> store;
};

class LoadJob : public Job {
 public:
  /* With `like`, a refresh of that database (vv_db_refresh). */
  LoadJob(const Napi::CallbackInfo &info, Handle *like = nullptr)
      : Job(info.Env(), like ? "vecvault.refresh" : "vecvault.load", like, like ? info.This() : Napi::Value()),
        from_(info[0]),
        refresh_(like != nullptr) {
    if (from_.store) UseOwnThread();
    Napi::Uint8Array key = Key(info[1]), pass = OptBytes(info[2]);
    o_.threads = U32(info[3]);
    o_.lazy = U32(info[4]) != 0;
    o_.min_generation = MinGeneration(info[8]);
    if (Nullish(info[9])) {
      o_.cache_bytes = CacheBytes(info[5]);
    } else {
      /* Pinned so the cache outlives the job; the loaded session then holds its own reference. */
      o_.cache = CacheOf(info[9]);
      Pin(info[9]);
      o_.cache_bytes = info[5].IsNumber() && info[5].As<Napi::Number>().DoubleValue() == 0 ? 0 : CacheBytes(info[5]);
    }
    if (key.Data()) key_.assign(key.Data(), key.Data() + 32);
    /* reserve: an empty passphrase is still a passphrase (non-NULL) */
    if ((has_pass_ = pass.Data() != nullptr)) pass_.reserve(pass.ByteLength() + 1);
    if (has_pass_) pass_.assign(pass.Data(), pass.Data() + pass.ByteLength());
  }
  ~LoadJob() override {
    vv_db_free(db_);
    Wipe(key_);
    Wipe(pass_);
  }

 private:
  /* A BigInt in 0..2^64-1, or 0 for undefined. */
  static uint64_t MinGeneration(const Napi::Value &v) {
    bool lossless = false;
    uint64_t out = v.IsBigInt() ? v.As<Napi::BigInt>().Uint64Value(&lossless) : 0;
    if (!v.IsUndefined() && !lossless) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "expected a BigInt in 0..2^64-1");
    return out;
  }

  int Run() override {
    o_.key = key_.empty() ? nullptr : key_.data();
    o_.pass = has_pass_ ? reinterpret_cast<const char *>(pass_.data()) : nullptr;
    o_.pass_len = pass_.size();
    o_.io = from_.io();
    int rc = refresh_ ? vv_db_refresh(owner_->db, from_.dir.c_str(), &o_, OnSessionProgress, this, &db_, &st_, &err_)
                      : vv_db_load(from_.dir.c_str(), &o_, OnSessionProgress, this, &db_, &st_, &err_);
    /* The engine keeps its own guarded copy: drop ours as early as possible. */
    Wipe(key_);
    Wipe(pass_);
    return rc;
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Value ext = env.Null();
    if (st_.in_place) {
      owner_->Bind(from_.store); /* the database itself moved on, and reads through this storage now */
    } else {
      auto e = Napi::External<Loaded>::New(env, new Loaded{db_, from_.store}, [](Napi::Env, Loaded *a) {
        vv_db_free(a->db); /* NULL once adopted */
        delete a;
      });
      db_ = nullptr; /* the external owns it now */
      Napi::Object(env, e).TypeTag(LoadedTag());
      ext = e;
    }
    Napi::Object stats = Numbers(env, {{"generation", double(st_.generation)},
                                       {"totalVectors", double(st_.total_vectors)},
                                       {"chunkCount", double(st_.chunk_count)},
                                       {"chunksLoaded", double(st_.chunks_loaded)},
                                       {"indexSegments", double(st_.index_segments)},
                                       {"bytesRead", double(st_.bytes_read)}});
    stats.Set("lazy", st_.lazy != 0);
    stats.Set("inPlace", st_.in_place != 0);
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, ext);
    out.Set(1u, stats);
    return out;
  }

  Target from_;
  bool refresh_;
  std::vector<unsigned char> key_, pass_;
  bool has_pass_;
  vv_load_opts o_{};
  vv_db *db_ = nullptr;
  vv_load_stats st_{};
};

}  // namespace

vv_db *AdoptLoaded(const Napi::Value &v, std::shared_ptr<JsStore> *store) {
  if (!HasTag(v, LoadedTag())) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "not a loaded database");
  Loaded *a = v.As<Napi::External<Loaded>>().Data();
  if (!a->db) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "that loaded database was already used");
  vv_db *db = a->db;
  a->db = nullptr;
  *store = std::move(a->store);
  return db;
}

/* loadAsync(dir, key|null, passphrase|null, threads, lazy (0/1), cacheBytes, onProgress|null, abortFlag|null,
 *           minGeneration (BigInt)|undefined, cache (Cache)|undefined) -> Promise<[loaded, stats]>
 * With a cache, cacheBytes is the session's cap in it, 0 for none. */
Napi::Value LoadAsync(const Napi::CallbackInfo &info) {
  if (info.Length() < 8) Throw(info.Env(), "ERR_INVALID_ARGUMENT", "loadAsync needs 8 arguments");
  return Job::Start(std::make_unique<LoadJob>(info), info[6], info[7]);
}

/* NativeDB.refreshAsync(the loadAsync arguments; key and passphrase are
 * ignored) -> Promise<[loaded, stats]>: the current generation, opened with
 * this database's secrets, taking over its cached pages. */
Napi::Value RefreshAsync(const Napi::CallbackInfo &info) {
  if (info.Length() < 8) Throw(info.Env(), "ERR_INVALID_ARGUMENT", "refreshAsync needs 8 arguments");
  return Job::Start(std::make_unique<LoadJob>(info, &This(info)), info[6], info[7]);
}

/* ---- inspect ------------------------------------------------------------ */

namespace {

class InspectJob : public Job {
 public:
  InspectJob(const Napi::CallbackInfo &info) : Job(info.Env(), "vecvault.inspect"), from_(info[0]) {
    if (from_.store) UseOwnThread();
  }
  ~InspectJob() override { free(body_); }

 private:
  int Run() override { return vv_session_inspect(from_.dir.c_str(), from_.io(), &body_, &len_, &err_); }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, body_, len_); }
  Target from_;
  char *body_ = nullptr;
  size_t len_ = 0;
};

}  // namespace

/* inspectAsync(dir) -> Promise<manifest body JSON> */
Napi::Value InspectAsync(const Napi::CallbackInfo &info) {
  if (info.Length() < 1) Throw(info.Env(), "ERR_INVALID_ARGUMENT", "inspectAsync needs a path");
  return Job::Start(std::make_unique<InspectJob>(info));
}

/* ---- the chunk cache ------------------------------------------------------- */

/* cacheStats() -> {lazy, hits, misses, evictions, bytes, capacityBytes, entries, bytesRead} */
Napi::Value CacheStats(const Napi::CallbackInfo &info) {
  vv_cache_info ci;
  vv_db_cache_info(This(info).db, &ci);
  Napi::Object o = Numbers(info.Env(), {{"hits", double(ci.hits)},
                                        {"misses", double(ci.misses)},
                                        {"evictions", double(ci.evictions)},
                                        {"bytes", double(ci.bytes)},
                                        {"capacityBytes", double(ci.capacity)},
                                        {"entries", double(ci.entries)},
                                        {"bytesRead", double(ci.bytes_read)}});
  o.Set("lazy", ci.lazy != 0);
  return o;
}

/* setCacheSize(bytes) */
Napi::Value SetCacheSize(const Napi::CallbackInfo &info) {
  Handle &h = This(info);
  if (int rc = vv_db_set_cache_size(h.db, CacheBytes(info[0]))) ThrowStatus(info.Env(), rc);
  h.Account(info.Env());
  return info.Env().Undefined();
}

namespace {

class PreloadJob : public Job {
 public:
  PreloadJob(const Napi::CallbackInfo &info, Handle &h) : Job(info.Env(), "vecvault.preload", &h, info.This()) {
    if (Nullish(info[0])) return; /* as many as fit */
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      Throw(info.Env(), "ERR_INVALID_ARGUMENT", "chunk ids must be a Float64Array");
    Napi::Float64Array ids = info[0].As<Napi::Float64Array>();
    all_ = false;
    seqs_.reserve(ids.ElementLength() + 1); /* non-NULL even when empty: NULL means all */
    for (size_t i = 0; i < ids.ElementLength(); i++) seqs_.push_back(uint64_t(ids[i]));
  }

 private:
  int Run() override {
    return vv_db_preload_ex(owner_->db, all_ ? nullptr : seqs_.data(), seqs_.size(), OnProgress, this, &loaded_, &err_);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, double(loaded_)); }
  std::vector<uint64_t> seqs_;
  bool all_ = true;
  size_t loaded_ = 0;
};

}  // namespace

/* preloadAsync(seqs: Float64Array|null, onProgress|null, abortFlag|null) -> chunks read */
Napi::Value PreloadAsync(const Napi::CallbackInfo &info) {
  return Job::Start(std::make_unique<PreloadJob>(info, This(info)), info[1], info[2]);
}

}  // namespace vvn
