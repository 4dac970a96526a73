/*
 * napi/job.h: asynchronous engine work on libuv's thread pool.
 *
 * A Job (a Napi::AsyncWorker) copies or pins its inputs on the JS thread,
 * runs Run() on a worker thread (which must not touch napi_env or any JS
 * value), then settles its promise on the JS thread: Result() after VV_OK, a
 * VecvaultError otherwise. While it is in flight the job holds a strong
 * reference to its NativeDB and counts itself in the handle's `pending`, so
 * the database is neither collected nor freed under it; the job that
 * settles last frees an engine that was closed or collected meanwhile.
 *
 * A job that may wait for storage implemented in JavaScript runs instead
 * on a small pool of the binding's own threads (UseOwnThread(), or any job
 * of a database that reads through such storage): that storage may itself
 * need libuv's pool (fs, dns), which jobs blocked on it would otherwise
 * fill, and then nothing would ever finish. It settles through a
 * thread-safe function, on the JS thread, like any other job.
 *
 * Progress reaches JS only through a thread-safe function, coalesced: at
 * most one call is queued at a time, at most one per 25 ms (and always the
 * final one), and it reads the latest counts. An abort flag (an Int32Array
 * set with Atomics.store by lib/) is polled by the engine's progress hook
 * and by its cancel hook.
 */
#ifndef VVN_JOB_H
#define VVN_JOB_H

#include <memory>

#include "binding.h"

namespace vvn {

struct Progress;

class Job : public Napi::AsyncWorker {
 public:
  /* `owner` and `self` (the NativeDB object): null for work that belongs to
   * no database, like loading. */
  Job(Napi::Env env, const char *name, Handle *owner = nullptr, Napi::Value self = Napi::Value());
  ~Job() override;

  /* Run on the binding's storage threads, not libuv's pool (see above). */
  void UseOwnThread() { own_thread_ = true; }
  /* Keep `v` alive until the job settles. */
  void Pin(const Napi::Value &v);
  /* Poll this Int32Array's first element; non-zero means abort. Nullish: none. */
  void SetAbort(const Napi::Value &flag);
  /* Call fn(done, total, phase, bytes) with progress. Nullish: none. */
  void SetProgress(const Napi::Value &fn);
  /* Queue the job and return its promise; a job that fails to queue is freed. */
  static Napi::Value Start(std::unique_ptr<Job> job);
  /* The same, with SetProgress(progress) and SetAbort(abort) first. */
  static Napi::Value Start(std::unique_ptr<Job> job, const Napi::Value &progress, const Napi::Value &abort);

  /* Engine hooks; ctx is the job. Any thread. */
  static int OnProgress(void *ctx, uint64_t done, uint64_t total);
  static int OnSessionProgress(void *ctx, uint64_t done, uint64_t total, int phase, uint64_t bytes);
  static int Aborted(void *ctx);

 protected:
  virtual int Run() = 0;                          /* worker thread; returns a status */
  virtual Napi::Value Result(Napi::Env env) = 0;  /* JS thread, after VV_OK */

  Handle *owner_;
  vv_error err_{}; /* the rejection message when the engine filled it */

 private:
  void Execute() override;
  void OnOK() override;
  /* On a storage thread: run, then settle on the JS thread. */
  void RunOwn();
  static void Settle(Napi::Env env, Napi::Function, void *, Job *job);

  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Value> self_, pin_, abort_ref_;
  const int32_t *abort_flag_ = nullptr;
  Progress *progress_ = nullptr; /* owned by the thread-safe function */
  napi_threadsafe_function tsfn_ = nullptr;
  int status_ = VV_OK;
  bool queued_ = false;
  bool own_thread_ = false;
  napi_threadsafe_function done_ = nullptr; /* an own-thread job's way back */
};

}  // namespace vvn

#endif
