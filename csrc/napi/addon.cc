/*
 * napi/addon.cc: module initialisation (per-environment state and exports),
 * VecvaultError construction, argument readers and type tags.
 */
#include <cstring>

#include "binding.h"

namespace vvn {

/* ---- errors ---------------------------------------------------------------- */

Napi::Error MakeError(Napi::Env env, const char *code, const char *message) {
  AddonState *st = env.GetInstanceData<AddonState>();
  if (st && !st->error_class.IsEmpty())
    return Napi::Error(env, st->error_class.New({Napi::String::New(env, message), Napi::String::New(env, code)}));
  /* Before lib/ registered its class: a plain Error that still has .code. */
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

Napi::Error StatusError(Napi::Env env, int status, const vv_error *detail) {
  const char *msg = detail && detail->message[0] ? detail->message : vv_strerror(status);
  return MakeError(env, vv_status_code(status), msg);
}

void Throw(Napi::Env env, const char *code, const char *message) { throw MakeError(env, code, message); }
void ThrowStatus(Napi::Env env, int status, const vv_error *detail) { throw StatusError(env, status, detail); }

/* ---- argument readers ------------------------------------------------------ */

std::string Utf8(const Napi::Value &v) {
  if (!v.IsString()) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "expected a string");
  return v.As<Napi::String>().Utf8Value();
}

uint32_t U32(const Napi::Value &v) {
  if (!v.IsNumber()) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "expected an unsigned integer");
  return v.As<Napi::Number>().Uint32Value();
}

static bool IsTyped(const Napi::Value &v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

Napi::Float32Array F32(const Napi::Value &v) {
  if (!IsTyped(v, napi_float32_array)) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "expected a Float32Array");
  return v.As<Napi::Float32Array>();
}

Napi::Uint8Array OptBytes(const Napi::Value &v) {
  if (Nullish(v)) return Napi::Uint8Array();
  if (!IsTyped(v, napi_uint8_array)) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "expected a Uint8Array");
  return v.As<Napi::Uint8Array>();
}

uint64_t CacheBytes(const Napi::Value &v) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
  if (!(d >= 1) || d > 9007199254740991.0)
    Throw(v.Env(), "ERR_INVALID_ARGUMENT", "cache size must be a positive number of bytes");
  return uint64_t(d);
}

Napi::Float32Array F32Copy(Napi::Env env, const float *src, size_t n) {
  Napi::Float32Array a = Napi::Float32Array::New(env, n);
  if (n) memcpy(a.Data(), src, n * sizeof(float));
  return a;
}

/* ---- type tags ------------------------------------------------------------- */

static const char kImageAnchor = 0;

static napi_type_tag ImageTag(uint64_t kind) { return {reinterpret_cast<uintptr_t>(&kImageAnchor), kind}; }

const napi_type_tag *NativeDBTag() {
  static const napi_type_tag tag = ImageTag(0x7663766e61746462ull); /* "vvnatdb" */
  return &tag;
}

const napi_type_tag *LoadedTag() {
  static const napi_type_tag tag = ImageTag(0x7663766c6f616464ull); /* "vvloadd" */
  return &tag;
}

const napi_type_tag *CacheTag() {
  static const napi_type_tag tag = ImageTag(0x7663766361636865ull); /* "vvcache" */
  return &tag;
}

const napi_type_tag *StorageTag() {
  static const napi_type_tag tag = ImageTag(0x76637673746f7265ull); /* "vvstore" */
  return &tag;
}

bool HasTag(const Napi::Value &v, const napi_type_tag *tag) {
  bool ok = false;
  return (v.IsObject() || v.IsExternal()) && napi_check_object_type_tag(v.Env(), v, tag, &ok) == napi_ok && ok;
}

/* ---- module ---------------------------------------------------------------- */

/* setErrorClass(VecvaultError): errors are built as new VecvaultError(message, code). */
static void SetErrorClass(const Napi::CallbackInfo &info) {
  if (!info[0].IsFunction()) Throw(info.Env(), "ERR_INVALID_ARGUMENT", "expected a class");
  info.Env().GetInstanceData<AddonState>()->error_class = Napi::Persistent(info[0].As<Napi::Function>());
}

}  // namespace vvn

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace vvn;
  env.SetInstanceData(new AddonState());
  exports.Set("NativeDB", DefineNativeDB(env));
  exports.Set("Cache", DefineCache(env));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("simd", Napi::String::New(env, vv_simd_name()));
  exports.Set("loadAsync", Napi::Function::New(env, LoadAsync, "loadAsync"));
  exports.Set("inspectAsync", Napi::Function::New(env, InspectAsync, "inspectAsync"));
  exports.Set("openStorage", Napi::Function::New(env, OpenStorage, "openStorage"));
  exports.Set("storageStats", Napi::Function::New(env, StorageStats, "storageStats"));
  return exports;
}

NODE_API_MODULE(vecvault, Init)
