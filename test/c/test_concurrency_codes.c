/*
 * test/c/test_concurrency_codes.c: a trained vv_codes is read-only, so
 * threads that share one (each with its own query state) must get exactly
 * what one thread gets: the same codes, decodes and distances. The file
 * name marks it as a concurrency test: the Makefile also builds it with
 * ThreadSanitizer, which reports any write the readers share.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "quant/codes.h"
#include "vvtest.h"

#define DIM 48
#define N 400
#define THREADS 3

typedef struct shared {
  const vv_codes *c;
  const float *v;
  const uint8_t *codes;  /* N codes made by one thread */
  const float *dists;    /* N x N distances from one thread: query i to code j */
  int mismatches[THREADS];
} shared;

typedef struct job {
  shared *s;
  int t;
} job;

/* Thread t takes every THREADS-th query, starting at t, and recomputes it. */
static void *reader(void *arg) {
  job *j = arg;
  shared *s = j->s;
  size_t cb = vv_codes_code_bytes(s->c);
  void *st = malloc(vv_codes_state_bytes(s->c));
  uint8_t *code = malloc(cb);
  float out[N], dec[DIM];
  for (size_t i = (size_t)j->t; i < N; i += THREADS) {
    int bad = vv_codes_query(s->c, s->v + i * DIM, st) != VV_OK;
    vv_codes_distance_scan(s->c, st, s->codes, N, out);
    bad |= memcmp(out, s->dists + i * N, sizeof out) != 0;
    bad |= vv_codes_encode(s->c, s->v + i * DIM, code) != VV_OK || memcmp(code, s->codes + i * cb, cb) != 0;
    bad |= vv_codes_decode(s->c, code, dec) != VV_OK;
    s->mismatches[j->t] += bad;
  }
  free(st);
  free(code);
  return NULL;
}

VV_TEST(threads_sharing_one_codes_get_what_one_thread_gets) {
  static const vv_code_kind kinds[] = {VV_CODE_PQ, VV_CODE_OPQ, VV_CODE_RABITQ, VV_CODE_SQ4};
  float *v = malloc(sizeof(float) * N * DIM);
  uint64_t rng = 3;
  for (size_t i = 0; i < (size_t)N * DIM; i++) v[i] = (float)vv_unit_double(vv_splitmix64(&rng)) - 0.5f;
  for (size_t k = 0; k < 4; k++) {
    vv_codes_params p = {kinds[k], 0, 2, 4, 1, 7, 1};
    vv_codes *c;
    VV_REQUIRE(vv_codes_train(&p, v, N, DIM, 1, &c) == VV_OK);
    size_t cb = vv_codes_code_bytes(c);
    uint8_t *codes = malloc(cb * N);
    float *dists = malloc(sizeof(float) * N * N);
    void *st = malloc(vv_codes_state_bytes(c));
    for (size_t i = 0; i < N; i++) VV_REQUIRE(vv_codes_encode(c, v + i * DIM, codes + i * cb) == VV_OK);
    for (size_t i = 0; i < N; i++) {
      VV_REQUIRE(vv_codes_query(c, v + i * DIM, st) == VV_OK);
      vv_codes_distance_scan(c, st, codes, N, dists + i * N);
    }
    shared s = {c, v, codes, dists, {0}};
    pthread_t th[THREADS];
    job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
      jobs[t] = (job){&s, t};
      VV_REQUIRE(pthread_create(&th[t], NULL, reader, &jobs[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++) {
      VV_NOTE("kind=%d thread=%d", (int)kinds[k], t);
      VV_CHECK(s.mismatches[t] == 0);
    }
    free(st);
    free(codes);
    free(dists);
    vv_codes_free(c);
  }
  free(v);
}

VV_TEST_MAIN()
