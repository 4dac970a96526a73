/*
 * napi/job.h: asynchronous engine work on libuv's thread pool.
 *
 * A job copies or pins its inputs on the JS thread, runs `execute` on a
 * worker thread (which must not touch napi_env or any JS value), then
 * settles its promise on the JS thread. While it is in flight the job holds
 * a strong reference to its NativeDB, so the database cannot be garbage
 * collected or freed under it; close() only marks it and the last job frees.
 *
 * Progress reaches JS only through a thread-safe function, coalesced: at
 * most one call is queued at a time and it reads the latest counts. An
 * abort flag (an Int32Array set with Atomics.store by lib/) is polled by the
 * engine's progress hook.
 */
#ifndef VVN_JOB_H
#define VVN_JOB_H

#include <node_api.h>
#include <stdint.h>

#include "../vecvault.h"

/* The native side of one JS VectorDB. */
typedef struct vvn_dbh {
  vv_db *db;        /* NULL once freed */
  uint32_t dim;
  int closed;       /* close() was called */
  int finalized;    /* the JS object was garbage collected */
  uint32_t pending; /* jobs in flight */
  int64_t reported; /* native bytes reported to V8 (napi_adjust_external_memory) */
} vvn_dbh;

/* Tells V8 how much native memory this database holds now, so garbage
 * collection of unclosed databases keeps pace with what they cost. */
void vvn_dbh_account(napi_env env, vvn_dbh *d);

/* Frees the engine once nothing uses it any more (and the handle itself
 * once the JS object is gone). `d` may be freed on return. */
void vvn_dbh_release_if_idle(napi_env env, vvn_dbh *d);

/* The handle behind `self`; throws (and returns NULL) for a foreign object
 * or, with ERR_CLOSED, after close(). */
vvn_dbh *vvn_dbh_unwrap(napi_env env, napi_value self);

typedef struct vvn_job vvn_job;

typedef struct vvn_job_ops {
  const char *name;
  int (*execute)(vvn_job *j);                      /* worker thread; returns a status */
  napi_value (*result)(napi_env env, vvn_job *j);  /* JS thread, after VV_OK; NULL = threw */
  void (*destroy)(vvn_job *j);                     /* frees the payload; any thread state */
} vvn_job_ops;

struct vvn_job {
  const vvn_job_ops *ops;
  vvn_dbh *owner;
  void *payload;
  int status;
  napi_async_work work;
  napi_deferred deferred;
  napi_ref self_ref;
  napi_ref pin_ref;
  napi_ref abort_ref;
  int32_t *abort_flag;
  struct vvn_progress *progress;
  napi_threadsafe_function tsfn;
  const vv_error *detail; /* if set and non-empty: the rejection message */
};

/* A job for `self` (the NativeDB object; NULL with owner NULL for work that
 * belongs to no database, like loading). NULL after throwing. */
vvn_job *vvn_job_new(napi_env env, napi_value self, vvn_dbh *owner, const vvn_job_ops *ops, void *payload);
/* Keep `v` alive until the job settles. */
int vvn_job_pin(napi_env env, vvn_job *j, napi_value v);
/* Poll this Int32Array's first element; non-zero means abort. Undefined/null: none. */
int vvn_job_set_abort(napi_env env, vvn_job *j, napi_value flag);
/* Call fn(done, total) with progress. Undefined/null: none. */
int vvn_job_set_progress(napi_env env, vvn_job *j, napi_value fn);
/* Queue the job; returns its promise. On failure the job is destroyed and
 * an error thrown (NULL returned). */
napi_value vvn_job_start(napi_env env, vvn_job *j);
/* Destroy a job that was never started (after a setup error). */
void vvn_job_discard(napi_env env, vvn_job *j);

/* The engine progress callbacks for a job (ctx = the job). JS receives
 * (done, total, phase, bytes). */
int vvn_job_progress(void *ctx, uint64_t done, uint64_t total);
int vvn_job_session_progress(void *ctx, uint64_t done, uint64_t total, int phase, uint64_t bytes);
/* Non-zero once the job's abort flag is set (any thread; ctx is the job). */
int vvn_job_aborted(void *ctx);

#endif
