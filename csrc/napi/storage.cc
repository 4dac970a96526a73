/*
 * napi/storage.cc: storage implemented in JavaScript, reached by the
 * engine's worker threads.
 *
 * openStorage(dispatch, label, inflight, graceMs) makes a JsStore: an
 * object store (session/objio.h) whose every request is a call of
 * dispatch(op, key, offset, length, data, expected, done) on the JS thread,
 * through a thread-safe function. lib/storage/bridge.js is that dispatch:
 * it calls the user's Storage, retries, and calls done(err, bytes, version)
 * once, which completes the request the engine thread is waiting for.
 *
 * A request made on the JS thread itself cannot be served (the thread would
 * wait for itself), so it fails at once with VV_EIO_ASYNC: the engine
 * reports ERR_ASYNC_REQUIRED and nothing waits.
 */
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "job.h"

extern "C" {
#include "../session/objio.h"
}

namespace vvn {

namespace {

void Complete(vv_store_req *r, int rc, const char *msg) {
  r->rc = rc;
  if (msg) snprintf(r->msg, sizeof r->msg, "%s", msg);
  r->complete(r);
}

/* done(err, bytes, version) for one request, callable once. */
struct Pending {
  vv_store_req *req;
  bool done = false;
};

int ErrnoOf(const std::string &code) {
  if (code == "ERR_CONFLICT") return -VV_EIO_CONFLICT;
  if (code == "ERR_ACCESS") return -VV_EIO_ACCESS;
  if (code == "ERR_ABORTED") return -ECANCELED;
  if (code == "ERR_NOT_FOUND" || code == "ENOENT") return -ENOENT;
  return -EIO;
}

Napi::Value Done(const Napi::CallbackInfo &info) {
  Pending *p = static_cast<Pending *>(info.Data());
  if (p->done) return info.Env().Undefined();
  p->done = true;
  vv_store_req *r = p->req;
  Napi::Value err = info[0], bytes = info[1], version = info[2];
  if (!Nullish(err)) {
    std::string code = "ERR_IO", msg = "storage error";
    if (err.IsObject()) {
      Napi::Value c = err.As<Napi::Object>().Get("code"), m = err.As<Napi::Object>().Get("message");
      if (c.IsString()) code = c.As<Napi::String>().Utf8Value();
      if (m.IsString()) msg = m.As<Napi::String>().Utf8Value();
    }
    Complete(r, ErrnoOf(code), msg.c_str());
    return info.Env().Undefined();
  }
  if (version.IsString()) {
    std::string v = version.As<Napi::String>().Utf8Value();
    snprintf(r->version, sizeof r->version, "%s", v.c_str());
  }
  if (r->op == VV_SOP_GET || r->op == VV_SOP_GET_MANIFEST || r->op == VV_SOP_LIST) {
    if (Nullish(bytes)) {
      Complete(r, -ENOENT, nullptr);
      return info.Env().Undefined();
    }
    if (!bytes.IsTypedArray() || bytes.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Complete(r, -EIO, "the storage returned something other than a Uint8Array");
      return info.Env().Undefined();
    }
    Napi::Uint8Array a = bytes.As<Napi::Uint8Array>();
    r->out = static_cast<unsigned char *>(malloc(a.ByteLength() ? a.ByteLength() : 1));
    if (!r->out) {
      Complete(r, -ENOMEM, nullptr);
      return info.Env().Undefined();
    }
    if (a.ByteLength()) memcpy(r->out, a.Data(), a.ByteLength());
    r->out_len = a.ByteLength();
  }
  Complete(r, 0, nullptr);
  return info.Env().Undefined();
}

}  // namespace

class JsStore {
 public:
  JsStore(Napi::Env env, Napi::Function dispatch, const std::string &label, unsigned inflight, int64_t grace_ms)
      : js_thread_(std::this_thread::get_id()) {
    /* At environment teardown Node finalizes the function itself, maybe
     * before this object: then it must not be released again. */
    auto *flag = new std::shared_ptr<std::atomic<bool>>(finalized_);
    tsfn_ = Napi::ThreadSafeFunction::New(
        env, dispatch, "vecvault.storage", 0, 1,
        [](Napi::Env, std::shared_ptr<std::atomic<bool>> *f) {
          (*f)->store(true);
          delete f;
        },
        flag);
    tsfn_.Unref(env); /* an idle storage does not keep the process alive */
    ops_.ctx = this;
    ops_.submit = Submit;
    if (vv_objio_create(&ops_, label.c_str(), inflight, grace_ms, &io_) != VV_OK) {
      tsfn_.Release(); /* no destructor runs for a constructor that throws */
      Throw(env, "ERR_NO_MEMORY", "out of memory");
    }
  }
  ~JsStore() {
    vv_objio_free(io_);
    if (!finalized_->load()) tsfn_.Release();
  }
  const vv_io *Io() const { return vv_objio_io(io_); }
  vv_objio *Objio() const { return io_; }

 private:
  static void Submit(void *ctx, vv_store_req *r) {
    JsStore *s = static_cast<JsStore *>(ctx);
    if (std::this_thread::get_id() == s->js_thread_) {
      Complete(r, -VV_EIO_ASYNC,
               "a synchronous call needs this session's storage, which is implemented in JavaScript on the "
               "thread that is waiting: use the async variant");
      return;
    }
    napi_status st = s->tsfn_.BlockingCall(r, Call);
    if (st != napi_ok) Complete(r, -EIO, "the storage was closed");
  }

  static void Call(Napi::Env env, Napi::Function dispatch, vv_store_req *r) {
    if (!env || dispatch.IsEmpty()) { /* the environment is going away */
      Complete(r, -ECANCELED, "the JavaScript environment is shutting down");
      return;
    }
    Pending *p = new Pending{r};
    try {
      Napi::Function done = Napi::Function::New(env, Done, "done", p);
      /* Freed with the function, which the bridge drops once it has called
       * it; one dropped uncalled fails its request rather than leave an
       * engine thread waiting for ever. */
      done.AddFinalizer(
          [](Napi::Env, Pending *q) {
            if (!q->done) Complete(q->req, -EIO, "the storage dropped a request without answering it");
            delete q;
          },
          p);
      Napi::Value data = env.Null();
      if (r->op == VV_SOP_PUT || r->op == VV_SOP_PUT_MANIFEST) data = Napi::Buffer<unsigned char>::Copy(env, r->data, r->n);
      Napi::Value len = r->len == VV_SOP_WHOLE ? Napi::Number::New(env, -1) : Napi::Number::New(env, double(r->len));
      Napi::Value expected = r->expected ? Napi::Value(Napi::String::New(env, r->expected)) : env.Null();
      dispatch.Call({Napi::Number::New(env, r->op), Napi::String::New(env, r->key ? r->key : ""),
                     Napi::Number::New(env, double(r->off)), len, data, expected, done});
    } catch (const Napi::Error &e) {
      if (!p->done) {
        p->done = true;
        Complete(r, -EIO, e.Message().c_str());
      }
    }
  }

  std::thread::id js_thread_;
  std::shared_ptr<std::atomic<bool>> finalized_ = std::make_shared<std::atomic<bool>>(false);
  Napi::ThreadSafeFunction tsfn_;
  vv_store_ops ops_{};
  vv_objio *io_ = nullptr;
};

namespace {
struct StoreRef {
  std::shared_ptr<JsStore> store;
};
}  // namespace

/* openStorage(dispatch, label, inflight, graceMs) -> storage handle */
Napi::Value OpenStorage(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) Throw(env, "ERR_INVALID_ARGUMENT", "openStorage needs a dispatch function");
  std::string label = Utf8(info[1]);
  while (label.size() > 1 && label.back() == '/') label.pop_back();
  if (label.empty()) Throw(env, "ERR_INVALID_ARGUMENT", "a storage needs a label");
  int64_t grace = info[3].IsNumber() ? int64_t(info[3].As<Napi::Number>().DoubleValue()) : 0;
  auto ref = new StoreRef{std::make_shared<JsStore>(env, info[0].As<Napi::Function>(), label, U32(info[2]), grace)};
  auto ext = Napi::External<StoreRef>::New(env, ref, [](Napi::Env, StoreRef *r) { delete r; });
  ext.TypeTag(StorageTag());
  return ext;
}

/* storageStats(handle) -> { gets, getBytes, puts, putBytes, deletes, lists } */
Napi::Value StorageStats(const Napi::CallbackInfo &info) {
  std::shared_ptr<JsStore> s = StoreOf(info[0]);
  vv_objio_stats st;
  vv_objio_get_stats(s->Objio(), &st);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("gets", double(st.gets));
  o.Set("getBytes", double(st.get_bytes));
  o.Set("puts", double(st.puts));
  o.Set("putBytes", double(st.put_bytes));
  o.Set("deletes", double(st.deletes));
  o.Set("lists", double(st.lists));
  return o;
}

std::shared_ptr<JsStore> StoreOf(const Napi::Value &v) {
  if (!HasTag(v, StorageTag())) Throw(v.Env(), "ERR_INVALID_ARGUMENT", "not a storage handle");
  return v.As<Napi::External<StoreRef>>().Data()->store;
}

Target::Target(const Napi::Value &v) {
  if (v.IsString()) {
    dir = v.As<Napi::String>().Utf8Value();
    return;
  }
  store = StoreOf(v);
  dir = vv_objio_root(store->Objio());
}

const vv_io *Target::io() const { return store ? store->Io() : nullptr; }

}  // namespace vvn
