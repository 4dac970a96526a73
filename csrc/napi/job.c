/*
 * napi/job.c: async work, progress and abort plumbing (see job.h).
 */
#include "job.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "napi_util.h"

/* Progress state shared by the worker (writer) and the JS thread (reader).
 * Owned by the thread-safe function and freed in its finaliser, so a call
 * still queued after the job ended never reads freed memory. */
typedef struct vvn_progress {
  _Atomic uint64_t done;
  _Atomic uint64_t total;
  _Atomic int phase;
  _Atomic uint64_t bytes;
  atomic_int queued;
  uint64_t last_ns; /* worker thread only */
} vvn_progress;

#define PROGRESS_INTERVAL_NS (25ull * 1000 * 1000)

void vvn_dbh_account(napi_env env, vvn_dbh *d) {
  int64_t now = d->db ? (int64_t)vv_db_memory(d->db) : 0;
  int64_t result;
  if (now != d->reported && napi_adjust_external_memory(env, now - d->reported, &result) == napi_ok)
    d->reported = now;
}

void vvn_dbh_release_if_idle(napi_env env, vvn_dbh *d) {
  if (d->pending) return;
  if (d->db && (d->closed || d->finalized)) {
    vv_db_free(d->db);
    d->db = NULL;
    vvn_dbh_account(env, d);
  }
  if (d->finalized) free(d);
}

vvn_dbh *vvn_dbh_unwrap(napi_env env, napi_value self) {
  vvn_dbh *d = NULL;
  if (napi_unwrap(env, self, (void **)&d) != napi_ok || !d) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "not a NativeDB");
    return NULL;
  }
  if (d->closed || !d->db) {
    vvn_throw(env, "ERR_CLOSED", "the database is closed");
    return NULL;
  }
  return d;
}

vvn_job *vvn_job_new(napi_env env, napi_value self, vvn_dbh *owner, const vvn_job_ops *ops, void *payload) {
  vvn_job *j = (vvn_job *)calloc(1, sizeof *j);
  if (!j) {
    ops->destroy((vvn_job *)&(vvn_job){.payload = payload});
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  j->ops = ops;
  j->owner = owner;
  j->payload = payload;
  if (self && napi_create_reference(env, self, 1, &j->self_ref) != napi_ok) {
    vvn_job_discard(env, j);
    vvn_throw(env, "ERR_INTERNAL", "could not reference the database");
    return NULL;
  }
  return j;
}

int vvn_job_pin(napi_env env, vvn_job *j, napi_value v) {
  if (napi_create_reference(env, v, 1, &j->pin_ref) != napi_ok) {
    vvn_throw(env, "ERR_INTERNAL", "could not pin the input");
    return -1;
  }
  return 0;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) != napi_ok || t == napi_undefined || t == napi_null;
}

int vvn_job_set_abort(napi_env env, vvn_job *j, napi_value flag) {
  if (is_nullish(env, flag)) return 0;
  bool is_ta = false;
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  if (napi_is_typedarray(env, flag, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, flag, &type, &len, &data, NULL, NULL) != napi_ok || type != napi_int32_array ||
      len < 1) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "abort flag must be an Int32Array");
    return -1;
  }
  if (napi_create_reference(env, flag, 1, &j->abort_ref) != napi_ok) {
    vvn_throw(env, "ERR_INTERNAL", "could not reference the abort flag");
    return -1;
  }
  j->abort_flag = (int32_t *)data;
  return 0;
}

static void progress_call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)data;
  vvn_progress *p = (vvn_progress *)context;
  /* env is NULL while the environment is being torn down: nothing to call. */
  if (!env || !fn) return;
  atomic_store(&p->queued, 0);
  napi_value args[4], undef, ret;
  napi_create_double(env, (double)atomic_load(&p->done), &args[0]);
  napi_create_double(env, (double)atomic_load(&p->total), &args[1]);
  napi_create_int32(env, atomic_load(&p->phase), &args[2]);
  napi_create_double(env, (double)atomic_load(&p->bytes), &args[3]);
  napi_get_undefined(env, &undef);
  if (napi_call_function(env, undef, fn, 4, args, &ret) != napi_ok) {
    /* lib/'s wrapper catches user errors itself; anything left is dropped
     * here rather than becoming an uncaught exception. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
  }
}

static void progress_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

int vvn_job_set_progress(napi_env env, vvn_job *j, napi_value fn) {
  if (is_nullish(env, fn)) return 0;
  napi_valuetype t;
  if (napi_typeof(env, fn, &t) != napi_ok || t != napi_function) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "progress callback must be a function");
    return -1;
  }
  vvn_progress *p = (vvn_progress *)calloc(1, sizeof *p);
  if (!p) {
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return -1;
  }
  napi_value name;
  napi_create_string_utf8(env, "vecvault.progress", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, fn, NULL, name, 0, 1, p, progress_finalize, p, progress_call_js,
                                      &j->tsfn) != napi_ok) {
    free(p);
    vvn_throw(env, "ERR_INTERNAL", "could not create the progress channel");
    return -1;
  }
  /* Progress alone must not keep the process alive. */
  napi_unref_threadsafe_function(env, j->tsfn);
  j->progress = p;
  return 0;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vvn_job_aborted(void *ctx) {
  const vvn_job *j = (const vvn_job *)ctx;
  return j->abort_flag && __atomic_load_n(j->abort_flag, __ATOMIC_RELAXED) != 0;
}

int vvn_job_progress(void *ctx, uint64_t done, uint64_t total) {
  return vvn_job_session_progress(ctx, done, total, VV_PHASE_INSERT, 0);
}

int vvn_job_session_progress(void *ctx, uint64_t done, uint64_t total, int phase, uint64_t bytes) {
  vvn_job *j = (vvn_job *)ctx;
  vvn_progress *p = j->progress;
  if (p) {
    atomic_store(&p->phase, phase);
    atomic_store(&p->bytes, bytes);
    atomic_store(&p->done, done);
    atomic_store(&p->total, total);
    uint64_t now = now_ns();
    if (done >= total || now - p->last_ns >= PROGRESS_INTERVAL_NS) {
      p->last_ns = now;
      if (!atomic_exchange(&p->queued, 1)) napi_call_threadsafe_function(j->tsfn, NULL, napi_tsfn_nonblocking);
    }
  }
  return vvn_job_aborted(j);
}

static void execute(napi_env env, void *data) {
  (void)env; /* must not be used off the JS thread */
  vvn_job *j = (vvn_job *)data;
  if (j->abort_flag && __atomic_load_n(j->abort_flag, __ATOMIC_RELAXED)) {
    j->status = VV_E_ABORTED;
    return;
  }
  j->status = j->ops->execute(j);
}

void vvn_job_discard(napi_env env, vvn_job *j) {
  if (!j) return;
  if (j->tsfn) napi_release_threadsafe_function(j->tsfn, napi_tsfn_release);
  if (j->self_ref) napi_delete_reference(env, j->self_ref);
  if (j->pin_ref) napi_delete_reference(env, j->pin_ref);
  if (j->abort_ref) napi_delete_reference(env, j->abort_ref);
  if (j->work) napi_delete_async_work(env, j->work);
  j->ops->destroy(j);
  free(j);
}

static void complete(napi_env env, napi_status st, void *data) {
  vvn_job *j = (vvn_job *)data;
  napi_value value = NULL;
  if (st == napi_cancelled && j->status == VV_OK) j->status = VV_E_ABORTED;
  if (j->status == VV_OK) {
    value = j->ops->result(env, j);
    if (value) {
      napi_resolve_deferred(env, j->deferred, value);
    } else {
      napi_value exc = NULL;
      if (napi_get_and_clear_last_exception(env, &exc) != napi_ok || !exc)
        exc = vvn_error(env, "ERR_INTERNAL", "could not build the result");
      napi_reject_deferred(env, j->deferred, exc);
    }
  } else {
    const char *msg = j->detail && j->detail->message[0] ? j->detail->message : vv_strerror(j->status);
    napi_reject_deferred(env, j->deferred, vvn_error(env, vv_status_code(j->status), msg));
  }
  vvn_dbh *owner = j->owner;
  vvn_job_discard(env, j);
  if (owner) {
    owner->pending--;
    if (owner->db) vvn_dbh_account(env, owner);
    vvn_dbh_release_if_idle(env, owner);
  }
}

napi_value vvn_job_start(napi_env env, vvn_job *j) {
  napi_value promise, name;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, j->ops->name, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    vvn_job_discard(env, j);
    vvn_throw(env, "ERR_INTERNAL", "could not start background work");
    return NULL;
  }
  if (j->owner) j->owner->pending++;
  return promise;
}
