/*
 * napi/binding.h: what the binding's files share. The binding is C++ on
 * node-addon-api and only converts: JS values in, engine calls
 * (../vecvault.h), JS values out. The engine is C11 and never sees C++ or
 * node_api.h.
 *
 * Errors reach JS as instances of the VecvaultError class that lib/ hands to
 * the addon at load time (setErrorClass), kept per environment (instance
 * data), so err.code is set in one place. Helpers that fail throw a
 * Napi::Error (C++ exceptions are on) that node-addon-api rethrows into JS.
 *
 * Native objects are type-tagged: a NativeDB or a loaded-session external
 * that another addon, or another copy of this one, made is refused with
 * ERR_INVALID_ARGUMENT and never dereferenced.
 */
#ifndef VVN_BINDING_H
#define VVN_BINDING_H

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "../vecvault.h"

namespace vvn {

/* Per-environment state (instance data), never a global. */
struct AddonState {
  Napi::FunctionReference error_class; /* VecvaultError, empty before setErrorClass */
};

/* A VecvaultError(message, code) (a plain Error with .code before lib/ registered its class). */
Napi::Error MakeError(Napi::Env env, const char *code, const char *message);
/* The error for an engine status: the detail message when there is one, else vv_strerror. */
Napi::Error StatusError(Napi::Env env, int status, const vv_error *detail = nullptr);
[[noreturn]] void Throw(Napi::Env env, const char *code, const char *message);
[[noreturn]] void ThrowStatus(Napi::Env env, int status, const vv_error *detail = nullptr);

/* Argument readers: each throws ERR_INVALID_ARGUMENT for a value of the wrong type. */
std::string Utf8(const Napi::Value &v);
uint32_t U32(const Napi::Value &v);
Napi::Float32Array F32(const Napi::Value &v);
/* A Uint8Array, or an empty one (Data() == nullptr) for null/undefined. */
Napi::Uint8Array OptBytes(const Napi::Value &v);
/* A cache bound in bytes: a number in 1..2^53-1. */
uint64_t CacheBytes(const Napi::Value &v);
inline bool Nullish(const Napi::Value &v) { return v.IsUndefined() || v.IsNull(); }

/* A copy of a Float32Array's contents in a new one. */
Napi::Float32Array F32Copy(Napi::Env env, const float *src, size_t n);

/* The tags of this addon image's objects. Derived from an address inside the
 * image, so another copy of the addon (perhaps another version, with another
 * layout) has different ones. */
const napi_type_tag *NativeDBTag();
const napi_type_tag *LoadedTag();
const napi_type_tag *CacheTag();
const napi_type_tag *StorageTag();
bool HasTag(const Napi::Value &v, const napi_type_tag *tag);

/* Storage implemented in JavaScript (storage.cc), shared by the jobs and
 * databases that read or write through it. */
class JsStore;
std::shared_ptr<JsStore> StoreOf(const Napi::Value &v); /* throws unless a storage handle */
/* Where a save, load or inspect goes: a directory path, or a storage
 * handle (then `dir` is the storage's label, its root). */
struct Target {
  explicit Target(const Napi::Value &v);
  std::string dir;
  std::shared_ptr<JsStore> store;
  const struct vv_io *io() const; /* NULL: the directory's own POSIX calls */
};
Napi::Value OpenStorage(const Napi::CallbackInfo &info);
Napi::Value StorageStats(const Napi::CallbackInfo &info);

/* The native side of one JS NativeDB, on the JS thread only. It outlives the
 * JS object while jobs hold it: close() and garbage collection only mark it,
 * and whichever of them or the last job comes last frees the engine. */
struct Handle {
  vv_db *db;        /* NULL once freed */
  uint32_t dim;
  bool closed;      /* close() was called */
  bool finalized;   /* the JS object was garbage collected; the handle goes with the engine */
  uint32_t pending; /* jobs in flight */
  int64_t reported; /* native bytes reported to V8 */
  /* The storages the engine may still read through (a lazy database reads
   * through the one it was loaded or last saved with, and the one before):
   * released after the engine is freed. */
  std::shared_ptr<JsStore> stores[2];
  void Bind(const std::shared_ptr<JsStore> &s) {
    if (!s || s == stores[0]) return;
    stores[1] = stores[0];
    stores[0] = s;
  }

  /* Tells V8 how much native memory this database holds now, so garbage
   * collection of unclosed databases keeps pace with what they cost. */
  void Account(napi_env env);
  /* Frees the engine once nothing uses it (and the handle once the JS object
   * is gone too). `h` may be freed on return. */
  static void ReleaseIfIdle(napi_env env, Handle *h);
};

/* The NativeDB class (native_db.cc). */
Napi::Function DefineNativeDB(Napi::Env env);
/* The handle behind `this`: ERR_INVALID_ARGUMENT for anything but one of this
 * addon's NativeDB objects, ERR_CLOSED after close() when `open`. */
Handle &This(const Napi::CallbackInfo &info, bool open = true);

/* The Cache class (cache.cc), a byte budget shared by lazily loaded sessions. */
Napi::Function DefineCache(Napi::Env env);
/* The engine cache behind one of this addon's Cache objects; throws
 * ERR_INVALID_ARGUMENT for anything else. Borrowed: valid while the object is. */
vv_cache *CacheOf(const Napi::Value &v);

/* Session entry points (session.cc). */
Napi::Value SetSecret(const Napi::CallbackInfo &info);
Napi::Value SaveAsync(const Napi::CallbackInfo &info);
Napi::Value CacheStats(const Napi::CallbackInfo &info);
Napi::Value SetCacheSize(const Napi::CallbackInfo &info);
Napi::Value PreloadAsync(const Napi::CallbackInfo &info);
Napi::Value LoadAsync(const Napi::CallbackInfo &info);
Napi::Value InspectAsync(const Napi::CallbackInfo &info);
Napi::Value RefreshAsync(const Napi::CallbackInfo &info);
/* Takes the engine out of a loadAsync result (once), and the storage it
 * reads through (or none). Throws for anything else. */
vv_db *AdoptLoaded(const Napi::Value &v, std::shared_ptr<JsStore> *store);

}  // namespace vvn

#endif
