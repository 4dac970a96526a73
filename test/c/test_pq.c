/*
 * test/c/test_pq.c: product quantisation: codebook training, encode/decode,
 * exactness of ADC against the decoded vectors, and ranking quality.
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
  VV_CHECK(vv_pq_train(&pq, x, 1, 12, 5, 5, 1) == VV_E_INVALID); /* 5 does not divide 12 */
  VV_CHECK(vv_pq_train(&pq, x, 0, 12, 4, 5, 1) == VV_E_INVALID);
  VV_CHECK(vv_pq_train(&pq, NULL, 1, 12, 4, 5, 1) == VV_E_INVALID);
}

VV_TEST(adc_equals_distance_to_the_decoded_vector) {
  const uint32_t dim = 32, m = 8;
  const size_t n = 2000;
  float *v = clustered(n, dim, 3);
  vv_pq pq;
  VV_REQUIRE(vv_pq_train(&pq, v, n, dim, m, 8, 7) == VV_OK);
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

VV_TEST(quantisation_error_is_small_and_ranking_survives) {
  const uint32_t dim = 64, m = 16;
  const size_t n = 5000, nq = 40;
  float *v = clustered(n, dim, 11);
  float *q = clustered(nq, dim, 11); /* the first nq base points (same seed): each query is in the data */
  vv_pq pq;
  VV_REQUIRE(vv_pq_train(&pq, v, n, dim, m, 10, 5) == VV_OK);
  uint8_t *codes = malloc(n * m);
  float dec[64];
  double err = 0, var = 0, mean[64] = {0};
  for (size_t i = 0; i < n; i++)
    for (uint32_t d = 0; d < dim; d++) mean[d] += v[i * dim + d] / (double)n;
  for (size_t i = 0; i < n; i++) {
    vv_pq_encode(&pq, v + i * dim, codes + i * m);
    vv_pq_decode(&pq, codes + i * m, dec);
    err += l2(v + i * dim, dec, dim);
    for (uint32_t d = 0; d < dim; d++) var += (v[i * dim + d] - mean[d]) * (v[i * dim + d] - mean[d]);
  }
  VV_NOTE("relative error %.4f", err / var);
  VV_CHECK(err / var < 0.1);
  /* Re-ranking the 50 best by ADC with exact distances finds the true top 10. */
  float table[16 * 256];
  int found = 0;
  for (size_t qi = 0; qi < nq; qi++) {
    const float *x = q + qi * dim;
    vv_pq_table(&pq, x, 1, table);
    size_t top_true[10], top_adc[50];
    double dt[10], da[50];
    int nt = 0, na = 0;
    for (size_t i = 0; i < n; i++) {
      double e = l2(x, v + i * dim, dim), a = vv_pq_adc(&pq, table, codes + i * m);
      /* insertion into small sorted lists */
      int p = nt < 10 ? nt++ : 10;
      if (p < 10 || e < dt[9]) {
        if (p == 10) p = 9;
        while (p > 0 && dt[p - 1] > e) { dt[p] = dt[p - 1]; top_true[p] = top_true[p - 1]; p--; }
        dt[p] = e;
        top_true[p] = i;
      }
      p = na < 50 ? na++ : 50;
      if (p < 50 || a < da[49]) {
        if (p == 50) p = 49;
        while (p > 0 && da[p - 1] > a) { da[p] = da[p - 1]; top_adc[p] = top_adc[p - 1]; p--; }
        da[p] = a;
        top_adc[p] = i;
      }
    }
    for (int t = 0; t < 10; t++)
      for (int a = 0; a < 50; a++)
        if (top_true[t] == top_adc[a]) {
          found++;
          break;
        }
  }
  VV_NOTE("recall@10 within ADC top 50: %.3f", found / (double)(nq * 10));
  if (getenv("VV_VERBOSE")) printf("relative error %.4f, recall %.3f\n", err / var, found / (double)(nq * 10));
  VV_CHECK(found >= (int)(0.9 * nq * 10));
  free(codes);
  vv_pq_destroy(&pq);
  free(v);
  free(q);
}

VV_TEST(few_points_and_determinism) {
  const uint32_t dim = 8, m = 2;
  float *v = clustered(100, dim, 2);
  vv_pq a, b;
  VV_REQUIRE(vv_pq_train(&a, v, 100, dim, m, 5, 9) == VV_OK);
  VV_REQUIRE(vv_pq_train(&b, v, 100, dim, m, 5, 9) == VV_OK);
  VV_CHECK(a.ksub == 100);
  VV_CHECK(memcmp(a.centroids, b.centroids, (size_t)m * a.ksub * a.dsub * sizeof(float)) == 0);
  uint8_t code[2];
  for (size_t i = 0; i < 100; i++) {
    vv_pq_encode(&a, v + i * dim, code);
    VV_CHECK(code[0] < 100 && code[1] < 100);
  }
  vv_pq_destroy(&a);
  vv_pq_destroy(&b);
  free(v);
}

VV_TEST_MAIN()
