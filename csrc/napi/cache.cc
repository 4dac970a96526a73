/*
 * napi/cache.cc: the Cache class that lib/ wraps as VectorDB.Cache, one
 * byte budget shared by the sessions loaded with it (vv_cache_open).
 *
 * The JS object holds one reference to the engine's cache and each session
 * loaded with it holds another, so the cache lives while any of them does:
 * a Cache garbage-collected while its sessions still search only drops its
 * own reference. Methods find the cache through CacheOf(), which checks the
 * type tag before it unwraps, as for NativeDB.
 */
#include "binding.h"

namespace vvn {
namespace {

class Cache : public Napi::ObjectWrap<Cache> {
 public:
  /* new Cache(bytes) */
  explicit Cache(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Cache>(info) {
    info.This().As<Napi::Object>().TypeTag(CacheTag());
    if (int rc = vv_cache_open(CacheBytes(info[0]), &c_)) ThrowStatus(info.Env(), rc);
  }
  ~Cache() override { vv_cache_close(c_); }

  vv_cache *c_ = nullptr;
};

vv_cache *ThisCache(const Napi::CallbackInfo &info) { return CacheOf(info.This()); }

/* stats() -> {hits, misses, evictions, bypasses, bytes, capacityBytes, entries, sessions} */
Napi::Value Stats(const Napi::CallbackInfo &info) {
  vv_shared_cache_info ci;
  vv_cache_shared_info(ThisCache(info), &ci);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("hits", double(ci.hits));
  o.Set("misses", double(ci.misses));
  o.Set("evictions", double(ci.evictions));
  o.Set("bypasses", double(ci.bypasses));
  o.Set("bytes", double(ci.bytes));
  o.Set("capacityBytes", double(ci.capacity));
  o.Set("entries", double(ci.entries));
  o.Set("sessions", double(ci.sessions));
  return o;
}

/* setSize(bytes) */
Napi::Value SetSize(const Napi::CallbackInfo &info) {
  vv_cache *c = ThisCache(info);
  if (int rc = vv_cache_resize(c, CacheBytes(info[0]))) ThrowStatus(info.Env(), rc);
  return info.Env().Undefined();
}

}  // namespace

vv_cache *CacheOf(const Napi::Value &v) {
  void *p = nullptr;
  if (!HasTag(v, CacheTag()) || napi_unwrap(v.Env(), v, &p) != napi_ok || !p || !static_cast<Cache *>(p)->c_)
    Throw(v.Env(), "ERR_INVALID_ARGUMENT", "cache must be a VectorDB.Cache");
  return static_cast<Cache *>(p)->c_;
}

Napi::Function DefineCache(Napi::Env env) {
  /* Plain functions, not InstanceMethod: those unwrap `this` before any
   * check of ours could run. */
  Napi::Function cls = Cache::DefineClass(env, "Cache", {});
  cls.Get("prototype").As<Napi::Object>().DefineProperties({
      Napi::PropertyDescriptor::Value("stats", Napi::Function::New(env, Stats, "stats")),
      Napi::PropertyDescriptor::Value("setSize", Napi::Function::New(env, SetSize, "setSize")),
  });
  return cls;
}

}  // namespace vvn
