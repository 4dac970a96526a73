/*
 * napi/job.cc: async work, coalesced progress and the abort flag (see job.h).
 */
#include "job.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace vvn {

/* Progress shared by the worker (writer) and the JS thread (reader). Owned
 * by the thread-safe function and freed in its finaliser, so a call still
 * queued after the job ended never reads freed memory. */
struct Progress {
  std::atomic<uint64_t> done{0}, total{0}, bytes{0};
  std::atomic<int> phase{0};
  std::atomic<bool> queued{false};
  std::chrono::steady_clock::time_point last{}; /* worker thread only */
};

static constexpr std::chrono::milliseconds kProgressInterval{25};

static void CallProgress(Napi::Env env, Napi::Function fn, Progress *p, void *) {
  /* env is null while the environment is being torn down: nothing to call. */
  if (static_cast<napi_env>(env) == nullptr || fn.IsEmpty()) return;
  p->queued = false;
  try {
    fn.Call({Napi::Number::New(env, double(p->done)), Napi::Number::New(env, double(p->total)),
             Napi::Number::New(env, p->phase), Napi::Number::New(env, double(p->bytes))});
  } catch (const Napi::Error &) {
    /* lib/'s wrapper catches user errors itself; anything left is dropped
     * here rather than becoming an uncaught exception. */
  }
}

using ProgressFn = Napi::TypedThreadSafeFunction<Progress, void, CallProgress>;

/* The storage threads: up to kStorageThreads, made as jobs arrive, kept
 * for the process's life; jobs beyond them queue in order. */
namespace {
constexpr unsigned kStorageThreads = 16;

class StoragePool {
 public:
  void Post(std::function<void()> fn) {
    std::unique_lock<std::mutex> l(mu_);
    q_.push_back(std::move(fn));
    if (idle_ == 0 && threads_ < kStorageThreads) {
      threads_++;
      std::thread([this] { Loop(); }).detach();
    } else {
      cv_.notify_one();
    }
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      idle_++;
      cv_.wait(l, [this] { return !q_.empty(); });
      idle_--;
      std::function<void()> fn = std::move(q_.front());
      q_.pop_front();
      l.unlock();
      fn();
      l.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  unsigned threads_ = 0, idle_ = 0;
};

StoragePool &Pool() {
  static StoragePool *pool = new StoragePool; /* never destroyed: its threads outlive static destructors */
  return *pool;
}
}  // namespace

Job::Job(Napi::Env env, const char *name, Handle *owner, Napi::Value self)
    : Napi::AsyncWorker(env, name), owner_(owner), deferred_(Napi::Promise::Deferred::New(env)) {
  if (!self.IsEmpty()) self_ = Napi::Persistent(self);
}

Job::~Job() {
  if (tsfn_) napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
  if (done_) napi_release_threadsafe_function(done_, napi_tsfn_release);
  if (owner_ && queued_) {
    owner_->pending--;
    if (owner_->db) owner_->Account(Env());
    Handle::ReleaseIfIdle(Env(), owner_);
  }
}

void Job::Pin(const Napi::Value &v) { pin_ = Napi::Persistent(v); }

void Job::SetAbort(const Napi::Value &flag) {
  if (Nullish(flag)) return;
  if (!flag.IsTypedArray() || flag.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      flag.As<Napi::TypedArray>().ElementLength() < 1)
    Throw(Env(), "ERR_INVALID_ARGUMENT", "abort flag must be an Int32Array");
  abort_ref_ = Napi::Persistent(flag);
  abort_flag_ = flag.As<Napi::Int32Array>().Data();
}

void Job::SetProgress(const Napi::Value &fn) {
  if (Nullish(fn)) return;
  if (!fn.IsFunction()) Throw(Env(), "ERR_INVALID_ARGUMENT", "progress callback must be a function");
  auto p = std::make_unique<Progress>();
  ProgressFn tsfn = ProgressFn::New(Env(), fn.As<Napi::Function>(), "vecvault.progress", 0, 1, p.get(),
                                    [](Napi::Env, void *, Progress *ctx) { delete ctx; });
  progress_ = p.release();
  tsfn_ = tsfn;
  /* Progress alone must not keep the process alive. */
  tsfn.Unref(Env());
}

Napi::Value Job::Start(std::unique_ptr<Job> job) {
  Napi::Promise promise = job->deferred_.Promise();
  if (job->owner_ && job->owner_->stores[0]) job->own_thread_ = true;
  if (job->own_thread_) {
    using DoneFn = Napi::TypedThreadSafeFunction<void, Job, Settle>;
    DoneFn done = DoneFn::New(job->Env(), "vecvault.settle", 0, 1);
    job->done_ = done;
    Job *j = job.get();
    Pool().Post([j] { j->RunOwn(); });
  } else {
    job->Queue();
  }
  job->queued_ = true;
  if (job->owner_) job->owner_->pending++;
  job.release(); /* AsyncWorker deletes itself after OnOK */
  return promise;
}

Napi::Value Job::Start(std::unique_ptr<Job> job, const Napi::Value &progress, const Napi::Value &abort) {
  job->SetProgress(progress);
  job->SetAbort(abort);
  return Start(std::move(job));
}

int Job::Aborted(void *ctx) {
  const int32_t *flag = static_cast<const Job *>(ctx)->abort_flag_;
  return flag && __atomic_load_n(flag, __ATOMIC_RELAXED) != 0;
}

int Job::OnProgress(void *ctx, uint64_t done, uint64_t total) {
  return OnSessionProgress(ctx, done, total, VV_PHASE_INSERT, 0);
}

int Job::OnSessionProgress(void *ctx, uint64_t done, uint64_t total, int phase, uint64_t bytes) {
  Job *j = static_cast<Job *>(ctx);
  if (Progress *p = j->progress_) {
    p->phase = phase;
    p->bytes = bytes;
    p->done = done;
    p->total = total;
    auto now = std::chrono::steady_clock::now();
    if (done >= total || now - p->last >= kProgressInterval) {
      p->last = now;
      if (!p->queued.exchange(true)) ProgressFn(j->tsfn_).NonBlockingCall();
    }
  }
  return Aborted(j);
}

void Job::Execute() { status_ = Aborted(this) ? VV_E_ABORTED : Run(); }

void Job::RunOwn() {
  Execute();
  /* (If the environment is gone the call fails and the job is leaked: its
   * references cannot be released without it, and the process is ending.) */
  napi_call_threadsafe_function(done_, this, napi_tsfn_blocking);
}

void Job::Settle(Napi::Env env, Napi::Function, void *, Job *job) {
  if (static_cast<napi_env>(env) == nullptr) return; /* teardown: nobody is left to tell */
  job->OnOK();
  delete job;
}

void Job::OnOK() {
  Napi::Env env = Env();
  try {
    if (status_ != VV_OK) throw StatusError(env, status_, &err_);
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error &e) {
    try {
      deferred_.Reject(e.Value());
    } catch (const Napi::Error &) {
      /* The environment is shutting down and runs no JS: nobody is left to tell. */
    }
  }
}

}  // namespace vvn
