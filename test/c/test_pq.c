/*
 * test/c/test_pq.c: product quantisation: the choice of m, codebook
 * training (determinism across threads), loading a saved codebook,
 * encode/decode against a brute force, exactness of ADC against the decoded
 * vectors, and ranking quality.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "quant/pq.h"
#include "vvtest.h"

/* Clustered data: 30 centres plus noise. */
static float *clustered(size_t n, uint32_t dim, uint64_t seed) {
  float *v = malloc(sizeof(float) * n * dim);
  float *c = malloc(sizeof(float) * 30 * dim);
  uint64_t st = seed;
  for (size_t i = 0; i < 30 * (size_t)dim; i++) c[i] = (float)(vv_unit_double(vv_splitmix64(&st)) * 2 - 1);
  for (size_t i = 0; i < n; i++) {
    size_t k = vv_splitmix64(&st) % 30;
    for (uint32_t d = 0; d < dim; d++)
      v[i * dim + d] = c[k * dim + d] + (float)(vv_unit_double(vv_splitmix64(&st)) - 0.5) * 0.5f;
  }
  free(c);
  return v;
}

static double l2(const float *a, const float *b, uint32_t n) {
  double s = 0;
  for (uint32_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return s;
}

VV_TEST(rejects_bad_shapes) {
  float x[12] = {0};
  vv_pq pq;
  VV_CHECK(vv_pq_train(&pq, x, 1, 12, 5, 5, 1, 1) == VV_E_INVALID); /* 5 does not divide 12 */
  VV_CHECK(vv_pq_train(&pq, x, 0, 12, 4, 5, 1, 1) == VV_E_INVALID);
  VV_CHECK(vv_pq_train(&pq, NULL, 1, 12, 4, 5, 1, 1) == VV_E_INVALID);
  VV_CHECK(vv_pq_train(&pq, x, 1, 0, 1, 5, 1, 1) == VV_E_INVALID);
  x[7] = NAN;
  VV_CHECK(vv_pq_train(&pq, x, 1, 12, 4, 5, 1, 1) == VV_E_INVALID);
  VV_CHECK(pq.centroids == NULL && pq.blocked == NULL);
  vv_pq_destroy(&pq); /* a failed train leaves nothing to free; destroying twice is fine */
  vv_pq_destroy(NULL);
}

VV_TEST(choose_m_aims_for_8_floats_per_byte) {
  static const uint32_t cases[][2] = {
      {384, 48}, {768, 96}, {1536, 192}, {784, 98}, {128, 16}, {8, 1}, {16, 2}, {12, 2}, /* 12: 1 and 2 tie at 1.5 */
      {100, 10}, {20, 2},   {1, 1},      {0, 0},    {97, 1},   {2, 1}, {10, 1}, {1000, 125}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    VV_NOTE("dim %u", cases[i][0]);
    VV_CHECK(vv_pq_choose_m(cases[i][0]) == cases[i][1]);
    if (cases[i][0]) VV_CHECK(cases[i][0] % vv_pq_choose_m(cases[i][0]) == 0);
  }
}

VV_TEST(adc_equals_distance_to_the_decoded_vector) {
  const uint32_t dim = 32, m = 8;
  const size_t n = 2000;
  float *v = clustered(n, dim, 3);
  vv_pq pq;
  VV_REQUIRE(vv_pq_train(&pq, v, n, dim, m, 8, 7, 2) == VV_OK);
  VV_CHECK(pq.ksub == 256 && pq.dsub == 4);
  float table[8 * 256], dec[32];
  uint8_t code[8];
  for (int l2mode = 0; l2mode <= 1; l2mode++) {
    const float *q = v + 17 * dim;
    vv_pq_table(&pq, q, l2mode, table);
    for (size_t i = 0; i < 200; i++) {
      vv_pq_encode(&pq, v + i * dim, code);
      vv_pq_decode(&pq, code, dec);
      double want = 0;
      if (l2mode)
        want = l2(q, dec, dim);
      else
        for (uint32_t d = 0; d < dim; d++) want -= (double)q[d] * dec[d];
      VV_CHECK_NEAR(vv_pq_adc(&pq, table, code), want, 1e-3 * (1 + fabs(want)));
    }
  }
  vv_pq_destroy(&pq);
  free(v);
}

/* idx[k] of the k smallest of dist[n], in order (k <= 50). */
static void smallest(const double *dist, size_t n, size_t k, size_t *idx) {
  double top[50];
  size_t have = 0;
  for (size_t i = 0; i < n; i++) {
    if (have == k && dist[i] >= top[k - 1]) continue;
    size_t p = have < k ? have++ : k - 1;
    while (p > 0 && top[p - 1] > dist[i]) {
      top[p] = top[p - 1];
      idx[p] = idx[p - 1];
      p--;
    }
    top[p] = dist[i];
    idx[p] = i;
  }
}

/* Trains on clustered data with `seed`; returns the fraction of the true
 * top 10 found by re-ranking the 50 best by ADC, and the quantisation
 * error relative to the data's variance in *rel_err. */
static double recall_and_error(uint64_t seed, double *rel_err) {
  enum { dim = 64, m = 16, n = 5000, nq = 40 };
  static size_t top_true[nq][10]; /* exact neighbours, the same for every seed */
  static int have_true;
  float *v = clustered(n, dim, 11);
  float *q = clustered(nq, dim, 11); /* the first nq base points (same seed): each query is in the data */
  double *dist = malloc(n * sizeof *dist);
  if (!have_true) {
    for (size_t qi = 0; qi < nq; qi++) {
      for (size_t i = 0; i < n; i++) dist[i] = l2(q + qi * dim, v + i * dim, dim);
      smallest(dist, n, 10, top_true[qi]);
    }
    have_true = 1;
  }
  vv_pq pq;
  double recall = -1;
  uint8_t *codes = malloc(n * m);
  if (vv_pq_train(&pq, v, n, dim, m, 10, seed, 2) != VV_OK) goto out;
  float dec[dim], table[m * 256];
  double err = 0, var = 0, mean[dim] = {0};
  for (size_t i = 0; i < n; i++)
    for (uint32_t d = 0; d < dim; d++) mean[d] += v[i * dim + d] / (double)n;
  for (size_t i = 0; i < n; i++) {
    vv_pq_encode(&pq, v + i * dim, codes + i * m);
    vv_pq_decode(&pq, codes + i * m, dec);
    err += l2(v + i * dim, dec, dim);
    for (uint32_t d = 0; d < dim; d++) var += (v[i * dim + d] - mean[d]) * (v[i * dim + d] - mean[d]);
  }
  *rel_err = err / var;
  int found = 0;
  for (size_t qi = 0; qi < nq; qi++) {
    size_t top_adc[50];
    vv_pq_table(&pq, q + qi * dim, 1, table);
    for (size_t i = 0; i < n; i++) dist[i] = vv_pq_adc(&pq, table, codes + i * m);
    smallest(dist, n, 50, top_adc);
    for (int t = 0; t < 10; t++)
      for (int a = 0; a < 50; a++)
        if (top_true[qi][t] == top_adc[a]) {
          found++;
          break;
        }
  }
  recall = found / (double)(nq * 10);
  vv_pq_destroy(&pq);
out:
  free(codes);
  free(dist);
  free(v);
  free(q);
  return recall;
}

/* With 30 tight clusters many vectors share codes, so which tied ones make
 * the ADC top 50 is luck and one training's recall varies by +-0.02: the
 * check is on the mean over a few seeds. */
VV_TEST(quantisation_error_is_small_and_ranking_survives) {
  double sum = 0;
  for (uint64_t seed = 1; seed <= 4; seed++) {
    double err, recall = recall_and_error(seed, &err);
    VV_NOTE("seed %u: relative error %.4f, recall@10 within ADC top 50 %.3f", (unsigned)seed, err, recall);
    if (getenv("VV_VERBOSE")) printf("seed %u: relative error %.4f, recall %.3f\n", (unsigned)seed, err, recall);
    VV_REQUIRE(recall >= 0);
    VV_CHECK(err < 0.1);
    sum += recall;
  }
  VV_NOTE("mean recall %.3f", sum / 4);
  VV_CHECK(sum / 4 >= 0.9);
}

/* Trains on clustered(n, dim, 2) with each thread count in turn; 1 if
 * every codebook equals the first. */
static int training_ignores_threads(size_t n, uint32_t dim, uint32_t m, const unsigned *threads, int nthreads) {
  float *v = clustered(n, dim, 2);
  vv_pq a, b;
  int same = vv_pq_train(&a, v, n, dim, m, 6, 9, threads[0]) == VV_OK;
  for (int i = 1; i < nthreads && same; i++) {
    same = vv_pq_train(&b, v, n, dim, m, 6, 9, threads[i]) == VV_OK &&
           memcmp(a.centroids, b.centroids, (size_t)a.ksub * dim * sizeof(float)) == 0;
    vv_pq_destroy(&b);
  }
  vv_pq_destroy(&a);
  free(v);
  return same;
}

VV_TEST(training_ignores_the_thread_count) {
  static const unsigned threads[] = {1, 2, 3, 8};
  VV_CHECK(training_ignores_threads(100, 8, 2, threads, 4)); /* few points: ksub 100, threads unused */
  VV_CHECK(training_ignores_threads(3000, 48, 6, threads, 4)); /* 8 > m: threads within each subspace */
}

VV_TEST(few_points_give_fewer_centroids) {
  const uint32_t dim = 8, m = 2;
  float *v = clustered(100, dim, 2);
  vv_pq a;
  VV_REQUIRE(vv_pq_train(&a, v, 100, dim, m, 5, 9, 1) == VV_OK);
  VV_CHECK(a.ksub == 100);
  uint8_t code[2];
  for (size_t i = 0; i < 100; i++) {
    vv_pq_encode(&a, v + i * dim, code);
    VV_CHECK(code[0] < 100 && code[1] < 100);
  }
  vv_pq_destroy(&a);
  free(v);
}

/* Distance from subvector j of x to its nearest centroid, by brute force. */
static double nearest_sub(const vv_pq *pq, uint32_t j, const float *x) {
  double best = INFINITY;
  for (uint32_t c = 0; c < pq->ksub; c++)
    best = fmin(best, l2(pq->centroids + ((size_t)j * pq->ksub + c) * pq->dsub, x + (size_t)j * pq->dsub, pq->dsub));
  return best;
}

/* Rows of `dim` floats in, codes of m bytes out, both contiguous here. */
typedef struct rows_codes {
  const float *v;
  uint8_t *codes;
  uint32_t dim, m;
} rows_codes;

static const float *rc_row(void *ctx, size_t i) {
  const rows_codes *r = ctx;
  return r->v + i * r->dim;
}

static uint8_t *rc_code(void *ctx, size_t i) {
  const rows_codes *r = ctx;
  return r->codes + i * r->m;
}

static const float *rc_null_row(void *ctx, size_t i) { return i == 300 ? NULL : rc_row(ctx, i); }
static uint8_t *rc_null_code(void *ctx, size_t i) { return i == 1000 ? NULL : rc_code(ctx, i); }

VV_TEST(encode_is_the_nearest_centroid_per_subspace) {
  const uint32_t dim = 40, m = 5; /* dsub 8 */
  const size_t n = 1500;
  float *v = clustered(n, dim, 21);
  uint64_t st = 5;
  for (size_t i = 0; i < n * dim; i++) v[i] += (float)(vv_unit_double(vv_splitmix64(&st)) - 0.5); /* spread out */
  vv_pq pq;
  VV_REQUIRE(vv_pq_train(&pq, v, n, dim, m, 6, 3, 2) == VV_OK);
  uint8_t *one = malloc(n * m), *batch = malloc(n * m), *batch1 = malloc(n * m);
  rows_codes rc = {v, batch, dim, m}, rc1 = {v, batch1, dim, m};
  VV_REQUIRE(vv_pq_encode_batch(&pq, rc_row, rc_code, &rc, n, 2) == VV_OK);
  VV_REQUIRE(vv_pq_encode_batch(&pq, rc_row, rc_code, &rc1, n, 1) == VV_OK);
  VV_CHECK(memcmp(batch, batch1, n * m) == 0);
  int exact = 0;
  for (size_t i = 0; i < n; i++) {
    const float *x = v + i * dim;
    vv_pq_encode(&pq, x, one + i * m);
    for (uint32_t j = 0; j < m; j++) {
      const float *cs = pq.centroids + (size_t)j * pq.ksub * pq.dsub;
      double got = l2(cs + one[i * m + j] * pq.dsub, x + j * pq.dsub, pq.dsub), want = nearest_sub(&pq, j, x);
      VV_CHECK(got <= want + 1e-5 * (1 + want)); /* the nearest, or a near-tie decided by rounding */
      exact += got == want;
    }
  }
  VV_CHECK(exact >= (int)(n * m) - 5);
  VV_CHECK(memcmp(one, batch, n * m) == 0);
  VV_CHECK(vv_pq_encode_batch(&pq, rc_null_row, rc_code, &rc, n, 2) == VV_E_INVALID);
  VV_CHECK(vv_pq_encode_batch(&pq, rc_row, rc_null_code, &rc, n, 2) == VV_E_INVALID);
  VV_CHECK(vv_pq_encode_batch(&pq, rc_row, NULL, &rc, n, 2) == VV_E_INVALID);
  VV_CHECK(vv_pq_encode_batch(&pq, rc_row, rc_code, &rc, 0, 2) == VV_OK);
  free(one);
  free(batch);
  free(batch1);
  vv_pq_destroy(&pq);
  free(v);
}

VV_TEST(a_saved_codebook_loads_and_encodes_the_same) {
  const uint32_t dim = 32, m = 4;
  const size_t n = 800;
  float *v = clustered(n, dim, 41);
  vv_pq a, b;
  VV_REQUIRE(vv_pq_train(&a, v, n, dim, m, 5, 2, 2) == VV_OK);
  VV_REQUIRE(vv_pq_init(&b, a.dim, a.m, a.ksub, a.centroids) == VV_OK);
  VV_CHECK(b.dsub == a.dsub && b.ksub == a.ksub && b.centroids != a.centroids);
  uint8_t ca[4], cb[4];
  float ta[4 * 256], tb[4 * 256];
  for (size_t i = 0; i < n; i++) {
    vv_pq_encode(&a, v + i * dim, ca);
    vv_pq_encode(&b, v + i * dim, cb);
    VV_CHECK(memcmp(ca, cb, sizeof ca) == 0);
  }
  vv_pq_table(&a, v, 1, ta);
  vv_pq_table(&b, v, 1, tb);
  VV_CHECK(memcmp(ta, tb, sizeof ta) == 0);
  /* Re-preparing is harmless. */
  VV_CHECK(vv_pq_prepare(&b) == VV_OK);
  vv_pq_encode(&b, v + 5 * dim, cb);
  vv_pq_encode(&a, v + 5 * dim, ca);
  VV_CHECK(memcmp(ca, cb, sizeof ca) == 0);
  vv_pq_destroy(&b);

  float *bad = malloc(sizeof(float) * a.ksub * dim);
  memcpy(bad, a.centroids, sizeof(float) * a.ksub * dim);
  bad[a.ksub * dim - 1] = NAN;
  VV_CHECK(vv_pq_init(&b, dim, m, a.ksub, bad) == VV_E_CORRUPT);
  VV_CHECK(b.centroids == NULL);
  bad[a.ksub * dim - 1] = 0;
  bad[17] = -INFINITY;
  VV_CHECK(vv_pq_init(&b, dim, m, a.ksub, bad) == VV_E_CORRUPT);
  VV_CHECK(vv_pq_init(&b, dim, 5, a.ksub, a.centroids) == VV_E_INVALID);
  VV_CHECK(vv_pq_init(&b, dim, 0, a.ksub, a.centroids) == VV_E_INVALID);
  VV_CHECK(vv_pq_init(&b, dim, m, 0, a.centroids) == VV_E_INVALID);
  VV_CHECK(vv_pq_init(&b, dim, m, 257, a.centroids) == VV_E_INVALID);
  VV_CHECK(vv_pq_init(&b, dim, m, a.ksub, NULL) == VV_E_INVALID);
  VV_CHECK(vv_pq_init(&b, dim, m, 7, a.centroids) == VV_OK); /* any finite floats of the right count */
  VV_CHECK(b.ksub == 7);
  vv_pq_destroy(&b);
  free(bad);
  vv_pq_destroy(&a);
  free(v);
}

VV_TEST_MAIN()
