/*
 * common/parallel.c: a fork-join parallel loop on pthreads (see parallel.h).
 */
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "../vecvault.h"

typedef struct loop {
  size_t n;
  vv_body_fn body;
  void *ctx;
  atomic_size_t next;
  atomic_size_t finished;
  atomic_int status; /* first non-zero body status, or VV_E_ABORTED */
} loop;

typedef struct worker_arg {
  loop *l;
  unsigned id;
} worker_arg;

/* Runs items until the range is exhausted or someone failed. Returns after
 * every claimed item is finished, so no item is ever half done. */
static void run_items(loop *l, unsigned id, int (*progress)(void *, uint64_t, uint64_t), void *pctx,
                      uint64_t done_base, uint64_t total) {
  for (;;) {
    if (atomic_load_explicit(&l->status, memory_order_relaxed) != VV_OK) return;
    size_t i = atomic_fetch_add_explicit(&l->next, 1, memory_order_relaxed);
    if (i >= l->n) return;
    int rc = l->body(l->ctx, i, id);
    size_t fin = atomic_fetch_add_explicit(&l->finished, 1, memory_order_acq_rel) + 1;
    if (rc != VV_OK) {
      int expected = VV_OK;
      atomic_compare_exchange_strong(&l->status, &expected, rc);
      return;
    }
    if (progress && progress(pctx, done_base + fin, total) != 0) {
      int expected = VV_OK;
      atomic_compare_exchange_strong(&l->status, &expected, VV_E_ABORTED);
      return;
    }
  }
}

static void *worker_main(void *p) {
  worker_arg *a = (worker_arg *)p;
  run_items(a->l, a->id, NULL, NULL, 0, 0);
  return NULL;
}

int vv_parallel_for(size_t n, unsigned threads, vv_body_fn body, void *ctx,
                    int (*progress)(void *, uint64_t, uint64_t), void *progress_ctx,
                    uint64_t done_base, uint64_t total) {
  loop l;
  l.n = n;
  l.body = body;
  l.ctx = ctx;
  atomic_init(&l.next, 0);
  atomic_init(&l.finished, 0);
  atomic_init(&l.status, VV_OK);
  if (n == 0) return VV_OK;
  if (threads < 1) threads = 1;
  if (threads > n) threads = (unsigned)n;
  if (threads > 256) threads = 256;

  pthread_t tids[256];
  worker_arg args[256];
  unsigned started = 0;
  for (unsigned t = 1; t < threads; t++) {
    args[t].l = &l;
    args[t].id = t;
    /* Fewer threads than asked is fine: the caller and the others absorb the work. */
    if (pthread_create(&tids[started + 1], NULL, worker_main, &args[t]) != 0) break;
    started++;
  }
  run_items(&l, 0, progress, progress_ctx, done_base, total);
  for (unsigned t = 1; t <= started; t++) pthread_join(tids[t], NULL);
  return atomic_load(&l.status);
}

/* ---- a loop that never waits for a helper to start --------------------- */

typedef struct eager {
  size_t n;
  vv_body_fn body;
  void *ctx;
  atomic_size_t next;
  atomic_int refs; /* the caller and each helper; the last frees */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t done;   /* items finished, under mu */
  int status;    /* first non-zero body status, under mu */
} eager;

static void eager_unref(eager *e) {
  if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
  free(e);
}

/* Claims items until none is left; after a failure the rest are claimed
 * and skipped. Touches ctx only for the items it claims. */
static void eager_run(eager *e, unsigned id) {
  for (;;) {
    size_t i = atomic_fetch_add_explicit(&e->next, 1, memory_order_relaxed);
    if (i >= e->n) return;
    pthread_mutex_lock(&e->mu);
    int failed = e->status != VV_OK;
    pthread_mutex_unlock(&e->mu);
    int rc = failed ? VV_OK : e->body(e->ctx, i, id);
    pthread_mutex_lock(&e->mu);
    if (rc != VV_OK && e->status == VV_OK) e->status = rc;
    if (++e->done == e->n) pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
  }
}

typedef struct eager_arg {
  eager *e;
  unsigned id;
} eager_arg;

static void *eager_main(void *p) {
  eager_arg *a = p;
  eager_run(a->e, a->id);
  eager_unref(a->e);
  free(a);
  return NULL;
}

int vv_parallel_eager(size_t n, unsigned threads, vv_body_fn body, void *ctx) {
  if (n == 0) return VV_OK;
  eager *e = calloc(1, sizeof *e);
  if (!e) return VV_E_NOMEM;
  e->n = n;
  e->body = body;
  e->ctx = ctx;
  atomic_init(&e->next, 0);
  atomic_init(&e->refs, 1);
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cv, NULL);
  pthread_attr_t attr;
  int have_attr = pthread_attr_init(&attr) == 0 && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
  for (unsigned t = 1; have_attr && t < threads && t < n; t++) {
    eager_arg *a = malloc(sizeof *a);
    if (!a) break;
    *a = (eager_arg){e, t};
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    pthread_t tid;
    if (pthread_create(&tid, &attr, eager_main, a) != 0) {
      atomic_fetch_sub_explicit(&e->refs, 1, memory_order_relaxed);
      free(a);
      break;
    }
  }
  if (have_attr) pthread_attr_destroy(&attr);
  eager_run(e, 0);
  /* Every item is claimed; wait only for those helpers are still running. */
  pthread_mutex_lock(&e->mu);
  while (e->done < e->n) pthread_cond_wait(&e->cv, &e->mu);
  int rc = e->status;
  pthread_mutex_unlock(&e->mu);
  eager_unref(e);
  return rc;
}
