/*
 * test/c/test_kmeans.c: k-means training and nearest-centroid search:
 * argument checks, determinism across thread counts, agreement with a
 * double-precision brute force (rows fetched through an accessor, codebook
 * sizes around the kernels' block of 32), ties, empty clusters, and the
 * blocked-codebook kernels PQ uses. On Linux the whole binary runs again
 * with VECVAULT_ISA=scalar, so the portable kernels are checked too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "quant/kmeans.h"
#include "vvtest.h"

static float *random_points(size_t n, uint32_t d, uint64_t seed) {
  float *v = malloc(sizeof(float) * n * d);
  uint64_t st = seed;
  for (size_t i = 0; i < n * d; i++) v[i] = (float)(vv_unit_double(vv_splitmix64(&st)) * 2 - 1);
  return v;
}

static double l2d(const float *a, const float *b, uint32_t d) {
  double s = 0;
  for (uint32_t t = 0; t < d; t++) s += ((double)a[t] - b[t]) * ((double)a[t] - b[t]);
  return s;
}

/* Distance from x to its nearest centroid, in double. */
static double nearest_d(const float *cents, uint32_t k, uint32_t d, const float *x) {
  double best = INFINITY;
  for (uint32_t c = 0; c < k; c++) best = fmin(best, l2d(cents + (size_t)c * d, x, d));
  return best;
}

/* Rows in separate allocations of `seg` rows each, like the store's arena. */
typedef struct segs {
  float **seg;
  size_t nseg, per, n;
  uint32_t d;
} segs;

static segs segs_of(const float *v, size_t n, uint32_t d, size_t per) {
  segs s = {NULL, (n + per - 1) / per, per, n, d};
  s.seg = malloc(s.nseg * sizeof *s.seg);
  for (size_t g = 0; g < s.nseg; g++) {
    size_t rows = VV_MIN(per, n - g * per);
    s.seg[g] = malloc(rows * d * sizeof(float));
    memcpy(s.seg[g], v + g * per * d, rows * d * sizeof(float));
  }
  return s;
}

static void segs_free(segs *s) {
  for (size_t g = 0; g < s->nseg; g++) free(s->seg[g]);
  free(s->seg);
}

static const float *seg_row(void *ctx, size_t i) {
  const segs *s = ctx;
  return s->seg[i / s->per] + (i % s->per) * s->d;
}

static const float *flat_row(void *ctx, size_t i) {
  const segs *s = ctx; /* only d and seg[0] used: one segment holding everything */
  return s->seg[0] + i * s->d;
}

static const float *null_after_10(void *ctx, size_t i) { return i < 10 ? seg_row(ctx, i) : NULL; }

VV_TEST(rejects_bad_arguments) {
  float x[64] = {0}, c[64];
  uint32_t out[8];
  VV_CHECK(vv_kmeans_train(NULL, 8, 8, 0, 8, 2, 5, 1, 1, c) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_train(x, 8, 8, 0, 8, 2, 5, 1, 1, NULL) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_train(x, 0, 8, 0, 8, 1, 5, 1, 1, c) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_train(x, 8, 8, 0, 0, 2, 5, 1, 1, c) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_train(x, 8, 8, 0, 8, 0, 5, 1, 1, c) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_train(x, 8, 8, 0, 8, 9, 5, 1, 1, c) == VV_E_INVALID); /* k > n */
  VV_CHECK(vv_kmeans_train(x, 8, 8, 4, 8, 2, 5, 1, 1, c) == VV_E_INVALID); /* off + d > stride */
  VV_CHECK(vv_kmeans_train(x, 8, 8, 9, 1, 2, 5, 1, 1, c) == VV_E_INVALID);
  x[13] = NAN;
  VV_CHECK(vv_kmeans_train(x, 8, 8, 0, 8, 2, 5, 1, 1, c) == VV_E_INVALID);
  x[13] = INFINITY;
  VV_CHECK(vv_kmeans_train(x, 8, 8, 0, 8, 2, 5, 1, 1, c) == VV_E_INVALID);
  x[13] = 0;
  VV_CHECK(vv_kmeans_train(x, 8, 8, 0, 8, 8, 5, 1, 1, c) == VV_OK); /* k == n */

  float *v = random_points(20, 4, 1);
  segs s = segs_of(v, 20, 4, 7);
  VV_CHECK(vv_kmeans_assign(NULL, 2, 4, seg_row, &s, 20, 1, out) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_assign(v, 2, 4, NULL, &s, 20, 1, out) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_assign(v, 2, 4, seg_row, &s, 20, 1, NULL) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_assign(v, 0, 4, seg_row, &s, 20, 1, out) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_assign(v, 2, 0, seg_row, &s, 20, 1, out) == VV_E_INVALID);
  VV_CHECK(vv_kmeans_assign(v, 2, 4, seg_row, &s, 0, 1, out) == VV_OK);
  uint32_t *many = malloc(20 * sizeof *many);
  VV_CHECK(vv_kmeans_assign(v, 2, 4, null_after_10, &s, 20, 2, many) == VV_E_INVALID);
  free(many);
  segs_free(&s);
  free(v);
}

VV_TEST(same_result_for_any_thread_count) {
  static const struct { size_t n; uint32_t d, k; } cases[] = {{20000, 16, 64}, {3000, 100, 40}, {5000, 8, 256}};
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    size_t n = cases[ci].n;
    uint32_t d = cases[ci].d, k = cases[ci].k;
    VV_NOTE("n=%zu d=%u k=%u", n, d, k);
    float *v = random_points(n, d, 10 + ci);
    float *c1 = malloc(sizeof(float) * k * d), *cn = malloc(sizeof(float) * k * d);
    VV_REQUIRE(vv_kmeans_train(v, n, d, 0, d, k, 8, 42, 1, c1) == VV_OK);
    for (unsigned th = 2; th <= 4; th++) {
      VV_CHECK(vv_kmeans_train(v, n, d, 0, d, k, 8, 42, th, cn) == VV_OK);
      VV_CHECK(memcmp(c1, cn, sizeof(float) * k * d) == 0);
    }
    VV_CHECK(vv_kmeans_train(v, n, d, 0, d, k, 8, 43, 2, cn) == VV_OK);
    VV_CHECK(memcmp(c1, cn, sizeof(float) * k * d) != 0); /* the seed matters */
    free(v);
    free(c1);
    free(cn);
  }
}

VV_TEST(trains_a_subspace_in_place) {
  const size_t n = 2000;
  const uint32_t dim = 24, off = 8, d = 8, k = 50;
  float *v = random_points(n, dim, 3), *sub = malloc(sizeof(float) * n * d);
  for (size_t i = 0; i < n; i++) memcpy(sub + i * d, v + i * dim + off, d * sizeof(float));
  float a[50 * 8], b[50 * 8];
  VV_REQUIRE(vv_kmeans_train(v, n, dim, off, d, k, 6, 5, 2, a) == VV_OK);
  VV_REQUIRE(vv_kmeans_train(sub, n, d, 0, d, k, 6, 5, 1, b) == VV_OK);
  VV_CHECK(memcmp(a, b, sizeof a) == 0);
  free(v);
  free(sub);
}

/* Sum of squared distances to the nearest centroid. */
static double inertia(const float *v, size_t n, const float *cents, uint32_t k, uint32_t d) {
  double e = 0;
  for (size_t i = 0; i < n; i++) e += nearest_d(cents, k, d, v + i * d);
  return e;
}

VV_TEST(lloyd_rounds_do_not_increase_inertia) {
  const size_t n = 3000;
  const uint32_t d = 6, k = 20;
  float *v = random_points(n, d, 8), c[20 * 6];
  double prev = INFINITY;
  for (uint32_t iters = 0; iters <= 12; iters += 3) {
    VV_REQUIRE(vv_kmeans_train(v, n, d, 0, d, k, iters, 77, 1, c) == VV_OK);
    double e = inertia(v, n, c, k, d);
    VV_NOTE("iters=%u inertia %.3f (before %.3f)", iters, e, prev);
    VV_CHECK(e <= prev * (1 + 1e-6));
    prev = e;
  }
  free(v);
}

VV_TEST(assign_and_nearest_match_brute_force) {
  static const uint32_t ks[] = {1, 2, 31, 32, 33, 100, 257};
  static const uint32_t ds[] = {1, 3, 8, 17, 384};
  const size_t n = 700;
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
      uint32_t k = ks[ki], d = ds[di];
      VV_NOTE("k=%u d=%u", k, d);
      float *cents = random_points(k, d, 100 + ki), *v = random_points(n, d, 200 + di);
      segs s = segs_of(v, n, d, 97);
      uint32_t *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
      VV_REQUIRE(vv_kmeans_assign(cents, k, d, seg_row, &s, n, 1, o1) == VV_OK);
      VV_REQUIRE(vv_kmeans_assign(cents, k, d, seg_row, &s, n, 3, o2) == VV_OK);
      VV_CHECK(memcmp(o1, o2, n * sizeof *o1) == 0);
      for (size_t i = 0; i < n; i++) {
        const float *x = v + i * d;
        double best = nearest_d(cents, k, d, x);
        VV_CHECK(o1[i] < k);
        /* Scores are expanded as x.c - |c|^2/2, so allow their rounding. */
        VV_CHECK(l2d(cents + (size_t)o1[i] * d, x, d) <= best + 1e-5 * (1 + d));
        uint32_t nn = vv_kmeans_nearest(cents, k, d, x);
        VV_CHECK(nn < k && l2d(cents + (size_t)nn * d, x, d) <= best + 1e-5 * (1 + d));
      }
      segs_free(&s);
      free(o1);
      free(o2);
      free(cents);
      free(v);
    }
}

VV_TEST(ties_go_to_the_lowest_index) {
  const uint32_t k = 70, d = 5, distinct = 10;
  const size_t n = 500;
  float *cents = random_points(k, d, 4), *v = random_points(n, d, 5);
  for (uint32_t c = distinct; c < k; c++) memcpy(cents + c * d, cents + (c % distinct) * d, d * sizeof(float));
  segs s = segs_of(v, n, d, n);
  uint32_t *out = malloc(n * sizeof *out);
  VV_REQUIRE(vv_kmeans_assign(cents, k, d, flat_row, &s, n, 2, out) == VV_OK);
  for (size_t i = 0; i < n; i++) {
    VV_CHECK(out[i] < distinct);
    VV_CHECK(vv_kmeans_nearest(cents, k, d, v + i * d) < distinct);
  }
  free(out);
  segs_free(&s);
  free(cents);
  free(v);
}

VV_TEST(non_finite_rows_get_a_valid_centroid) {
  const uint32_t k = 40, d = 9;
  const size_t n = 6;
  float *cents = random_points(k, d, 12), *v = random_points(n, d, 13);
  v[0 * d + 3] = NAN;
  v[1 * d + 0] = INFINITY;
  v[2 * d + 8] = -INFINITY;
  for (uint32_t t = 0; t < d; t++) v[3 * d + t] = NAN;
  segs s = segs_of(v, n, d, 4);
  uint32_t out[6];
  VV_REQUIRE(vv_kmeans_assign(cents, k, d, seg_row, &s, n, 1, out) == VV_OK);
  VV_CHECK(out[0] == 0 && out[3] == 0);
  for (size_t i = 0; i < n; i++) VV_CHECK(out[i] < k);
  segs_free(&s);
  free(cents);
  free(v);
}

/* Every point has a centroid at distance exactly 0. */
static int all_points_are_centroids(const float *v, size_t n, const float *c, uint32_t k, uint32_t d) {
  for (size_t i = 0; i < n; i++)
    if (nearest_d(c, k, d, v + i * d) != 0) return 0;
  return 1;
}

static int all_finite(const float *c, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(c[i])) return 0;
  return 1;
}

VV_TEST(k_equal_to_n_keeps_every_point) {
  const size_t n = 60;
  const uint32_t d = 7;
  float *v = random_points(n, d, 6), c[60 * 7];
  VV_REQUIRE(vv_kmeans_train(v, n, d, 0, d, (uint32_t)n, 10, 1, 1, c) == VV_OK);
  VV_CHECK(all_points_are_centroids(v, n, c, (uint32_t)n, d));
  /* With duplicates, k == n: clusters must stay empty, and nothing breaks. */
  for (size_t i = 0; i < n; i++) memcpy(v + i * d, v + (i % 12) * d, d * sizeof(float));
  VV_REQUIRE(vv_kmeans_train(v, n, d, 0, d, (uint32_t)n, 10, 1, 2, c) == VV_OK);
  VV_CHECK(all_finite(c, n * d));
  VV_CHECK(all_points_are_centroids(v, n, c, (uint32_t)n, d));
  free(v);
}

VV_TEST(empty_clusters_split_the_spread_out_one) {
  /* 97 copies of one point and three lone far points: random seeds are
   * almost surely all copies, so three clusters start empty. Splitting the
   * widest cluster (not the biggest, which is one point repeated) finds the
   * lone points. */
  const uint32_t d = 3, k = 4;
  const size_t n = 100;
  float v[100 * 3], c[5 * 3];
  for (size_t i = 0; i < n; i++) {
    v[i * d] = 0.5f;
    v[i * d + 1] = -0.25f;
    v[i * d + 2] = 1.0f;
  }
  const float lone[3][3] = {{10, 0, 0}, {0, -10, 3}, {-4, 8, -9}};
  memcpy(v + 20 * d, lone[0], sizeof lone[0]);
  memcpy(v + 55 * d, lone[1], sizeof lone[1]);
  memcpy(v + 90 * d, lone[2], sizeof lone[2]);
  for (uint64_t seed = 1; seed <= 5; seed++) {
    VV_NOTE("seed %u", (unsigned)seed);
    VV_REQUIRE(vv_kmeans_train(v, n, d, 0, d, k, 20, seed, 1, c) == VV_OK);
    VV_CHECK(all_points_are_centroids(v, n, c, k, d));
  }
  /* One point repeated: nothing to split, every centroid is that point. */
  for (size_t i = 0; i < n * d; i++) v[i] = 0.125f;
  VV_REQUIRE(vv_kmeans_train(v, n, d, 0, d, 5, 10, 9, 1, c) == VV_OK);
  for (size_t i = 0; i < 5 * d; i++) VV_CHECK(c[i] == 0.125f);
}

VV_TEST(blocked_encode_and_dists_match_brute_force) {
  static const uint32_t ks[] = {1, 5, 32, 100, 256};
  static const uint32_t ds[] = {1, 4, 5, 8, 16, 24};
  const uint32_t parts = 3;
  const size_t n = 150;
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
      uint32_t k = ks[ki], d = ds[di], dim = parts * d;
      VV_NOTE("k=%u d=%u", k, d);
      float *cents = random_points((size_t)k * parts, d, 300 + ki), *v = random_points(n, dim, 400 + di);
      size_t book = vv_kmeans_blocked_floats(k, d);
      float *blk = malloc(sizeof(float) * book * parts), *dist = malloc(sizeof(float) * k * parts);
      for (uint32_t j = 0; j < parts; j++) vv_kmeans_blocked_build(cents + (size_t)j * k * d, k, d, blk + j * book);
      const float **rows = malloc(n * sizeof *rows);
      for (size_t i = 0; i < n; i++) rows[i] = v + i * dim;
      uint8_t *codes = malloc(n * parts), **outs = malloc(n * sizeof *outs), one[3], *pone = one;
      for (size_t i = 0; i < n; i++) outs[i] = codes + i * parts;
      vv_kmeans_blocked_encode(blk, k, d, parts, rows, n, outs);
      for (size_t i = 0; i < n; i++) {
        vv_kmeans_blocked_encode(blk, k, d, parts, rows + i, 1, &pone);
        VV_CHECK(memcmp(one, codes + i * parts, parts) == 0);
        for (uint32_t j = 0; j < parts; j++) {
          const float *x = rows[i] + j * d, *cj = cents + (size_t)j * k * d;
          VV_CHECK(codes[i * parts + j] < k);
          VV_CHECK(l2d(cj + (size_t)codes[i * parts + j] * d, x, d) <= nearest_d(cj, k, d, x) + 1e-5 * (1 + d));
        }
        for (int l2 = 0; l2 <= 1; l2++) {
          vv_kmeans_blocked_dists(blk, k, d, parts, rows[i], l2, dist);
          for (uint32_t j = 0; j < parts; j++)
            for (uint32_t c = 0; c < k; c++) {
              const float *x = rows[i] + j * d, *cv = cents + ((size_t)j * k + c) * d;
              double want = 0;
              for (uint32_t t = 0; t < d; t++) want -= (double)x[t] * cv[t];
              if (l2) want = l2d(x, cv, d);
              VV_CHECK_NEAR(dist[(size_t)j * k + c], want, 1e-5 * (1 + fabs(want)));
            }
        }
      }
      free(rows);
      free(outs);
      free(codes);
      free(blk);
      free(dist);
      free(cents);
      free(v);
    }
}

#if defined(__linux__)
/* The tests above ran on the kernels this CPU gets; run them all again on
 * the portable ones (a no-op where those are the only ones). */
VV_TEST(portable_kernels_pass_the_same_tests) {
  if (getenv("VECVAULT_ISA")) return; /* already the child, or the caller chose */
  VV_CHECK(system("VECVAULT_ISA=scalar /proc/self/exe > /dev/null") == 0);
}
#endif

VV_TEST_MAIN()
