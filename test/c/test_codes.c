/*
 * test/c/test_codes.c: the compact codes behind lazy search (quant/codes.h):
 * every SIMD kernel against the scalar reference on random and edge-case
 * inputs, the parameter blob's round trip and its rejection of corrupt
 * bytes, what each estimator promises (PQ's ADC equals the distance to the
 * decoded vector, RaBitQ's error bound holds), and ranking quality after a
 * short re-rank on small clustered data. Seeds are fixed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "quant/codes.h"
#include "quant/codes_kern.h"
#include "vvtest.h"

static const vv_code_kind KINDS[] = {VV_CODE_PQ, VV_CODE_OPQ, VV_CODE_RABITQ, VV_CODE_SQ4};

static uint64_t rnd(uint64_t *st) { return vv_splitmix64(st); }
static float uni(uint64_t *st) { return (float)(vv_unit_double(rnd(st)) * 2 - 1); }

/* 20 centres plus noise; unit rows if `unit`. */
static float *clustered(size_t n, uint32_t dim, uint64_t seed, int unit) {
  float *v = malloc(sizeof(float) * n * dim), *c = malloc(sizeof(float) * 20 * dim);
  uint64_t st = seed;
  for (size_t i = 0; i < 20 * (size_t)dim; i++) c[i] = uni(&st);
  for (size_t i = 0; i < n; i++) {
    size_t k = rnd(&st) % 20;
    double nn = 0;
    for (uint32_t d = 0; d < dim; d++) {
      v[i * dim + d] = c[k * dim + d] + uni(&st) * 0.4f;
      nn += (double)v[i * dim + d] * v[i * dim + d];
    }
    if (unit)
      for (uint32_t d = 0; d < dim; d++) v[i * dim + d] = (float)(v[i * dim + d] / sqrt(nn));
  }
  free(c);
  return v;
}

static double exact(const float *a, const float *b, uint32_t dim, int l2) {
  double s = 0;
  for (uint32_t d = 0; d < dim; d++) s += l2 ? ((double)a[d] - b[d]) * ((double)a[d] - b[d]) : (double)a[d] * b[d];
  return l2 ? s : -s;
}

static vv_codes_params params(vv_code_kind kind) {
  vv_codes_params p = {kind, 0, 0, 6, 2, 42, 2};
  if (kind == VV_CODE_RABITQ) p.bits = 3;
  return p;
}

/* The codes of n rows, vv_codes_code_bytes(c) bytes each; caller frees. */
static uint8_t *encode_all(const vv_codes *c, const float *v, size_t n, uint32_t dim) {
  size_t cb = vv_codes_code_bytes(c);
  uint8_t *codes = malloc(cb * n);
  for (size_t i = 0; i < n; i++)
    if (vv_codes_encode(c, v + i * dim, codes + i * cb) != VV_OK) abort();
  return codes;
}

/* ---- kernels ---- */

static const uint32_t DIMS[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 384, 784, 1000};

VV_TEST(planes_kernels_match_the_scalar_reference) {
  uint64_t st = 11;
  int ran = 0;
  /* every ISA's set, the scalar set's (the portable word-at-a-time kernel) included */
  for (int isa = 0; isa < VV_CODE_ISA_COUNT; isa++) {
    const vv_code_kernels *k = vv_code_kernels_for((vv_code_isa)isa);
    if (!k) continue;
    ran++;
    for (size_t di = 0; di < sizeof DIMS / sizeof DIMS[0]; di++) {
      uint32_t dim = DIMS[di];
      size_t pbytes = (dim + 7) / 8, qpad = vv_codes_qpad(pbytes);
      uint8_t *code = malloc(4 * pbytes), *qu = malloc(qpad);
      /* kinds of input: random; every bit set with extreme queries (all
       * 255, all 0 = weights of +127 and -128); stray bits past dim. */
      for (int mode = 0; mode < 4; mode++)
        for (uint32_t np = 1; np <= 4; np++) {
          memset(qu, 128, qpad);
          for (uint32_t d = 0; d < dim; d++)
            qu[d] = mode == 1 ? 255 : mode == 2 ? 0 : (uint8_t)(rnd(&st) % 256);
          for (size_t i = 0; i < np * pbytes; i++) code[i] = mode == 1 || mode == 2 ? 0xff : (uint8_t)rnd(&st);
          if (mode == 0 && dim % 8) /* the contract: no bits past dim */
            for (uint32_t b = 0; b < np; b++) code[b * pbytes + pbytes - 1] &= (uint8_t)((1u << (dim % 8)) - 1);
          VV_NOTE("isa=%s dim=%u planes=%u mode=%d", k->name, dim, np, mode);
          VV_CHECK(k->planes(code, np, pbytes, qu) == vv_planes_dot_scalar(code, np, pbytes, qu));
        }
      free(code);
      free(qu);
    }
  }
  VV_NOTE("kernel sets run: %d", ran);
  VV_CHECK(vv_code_kernels_for(VV_CODE_ISA_SCALAR) != NULL);
}

VV_TEST(planes_scalar_reference_is_the_integer_inner_product) {
  /* Checked by hand-built levels, so the reference itself is pinned. */
  uint32_t dim = 13;
  size_t pbytes = 2;
  uint8_t code[4 * 2] = {0}, qu[64];
  memset(qu, 128, sizeof qu);
  int64_t want = 0;
  for (uint32_t d = 0; d < dim; d++) {
    unsigned u = (d * 7) % 16;
    int q = (int)d * 19 % 255 - 127;
    qu[d] = (uint8_t)(q + 128);
    vv_planes_put(code, pbytes, 4, d, u);
    VV_CHECK(vv_planes_get(code, pbytes, 4, d) == u);
    want += (int64_t)u * q;
  }
  VV_CHECK(vv_planes_dot_scalar(code, 4, pbytes, qu) == want);
}

/* The AVX-512 set hands out AVX2's lookups; its own is checked too. */
static vv_adc_fn adc_of(const vv_code_kernels *k) {
#ifdef VV_CODES_X86
  if (k->isa == VV_CODE_ISA_AVX512) return vv_adc_u8_avx512;
#endif
  return k->adc;
}

VV_TEST(adc_kernels_match_the_scalar_reference) {
  static const uint32_t ms[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 96, 98, 100, 196};
  static const uint32_t ksubs[] = {1, 16, 200, 256};
  uint64_t st = 5;
  for (int isa = 1; isa < VV_CODE_ISA_COUNT; isa++) {
    const vv_code_kernels *k = vv_code_kernels_for((vv_code_isa)isa);
    if (!k) continue;
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
      for (size_t ki = 0; ki < sizeof ksubs / sizeof ksubs[0]; ki++) {
        uint32_t m = ms[mi], ksub = ksubs[ki];
        float *table = malloc(sizeof(float) * m * ksub);
        uint8_t *code = malloc(m);
        for (int mode = 0; mode < 3; mode++) {
          double mag = 0;
          for (size_t i = 0; i < (size_t)m * ksub; i++) {
            /* mode 2: extreme magnitudes that still sum without overflow */
            table[i] = mode == 2 ? (i % 2 ? 1e30f : -1e30f) : uni(&st) * (mode ? 1e6f : 1.0f);
            mag += fabs(table[i]);
          }
          for (uint32_t j = 0; j < m; j++) code[j] = (uint8_t)(mode == 1 ? ksub - 1 : rnd(&st) % ksub);
          float a = adc_of(k)(table, ksub, m, code);
          float b = vv_adc_u8_scalar(table, ksub, m, code);
          VV_NOTE("isa=%s m=%u ksub=%u mode=%d", k->name, m, ksub, mode);
          VV_CHECK(fabs((double)a - b) <= 1e-6 * mag / (mode == 2 ? 1e-3 : 1));
        }
        free(table);
        free(code);
      }
  }
}

/* ---- training and the interface ---- */

VV_TEST(train_rejects_bad_arguments) {
  float x[64] = {0};
  vv_codes *c = NULL;
  vv_codes_params p = params(VV_CODE_PQ);
  VV_CHECK(vv_codes_train(NULL, x, 4, 16, 1, &c) == VV_E_INVALID);
  VV_CHECK(vv_codes_train(&p, NULL, 4, 16, 1, &c) == VV_E_INVALID);
  VV_CHECK(vv_codes_train(&p, x, 0, 16, 1, &c) == VV_E_INVALID);
  VV_CHECK(vv_codes_train(&p, x, 4, 0, 1, &c) == VV_E_INVALID);
  p.m = 5; /* does not divide 16 */
  VV_CHECK(vv_codes_train(&p, x, 4, 16, 1, &c) == VV_E_INVALID);
  p = params(VV_CODE_OPQ);
  p.m = 3;
  VV_CHECK(vv_codes_train(&p, x, 4, 16, 1, &c) == VV_E_INVALID);
  p = params(VV_CODE_RABITQ);
  p.bits = 5;
  VV_CHECK(vv_codes_train(&p, x, 4, 16, 1, &c) == VV_E_INVALID);
  p.kind = (vv_code_kind)9;
  VV_CHECK(vv_codes_train(&p, x, 4, 16, 1, &c) == VV_E_INVALID);
  x[17] = NAN;
  for (size_t i = 0; i < 4; i++) {
    p = params(KINDS[i]);
    VV_NOTE("kind %d", (int)KINDS[i]);
    VV_CHECK(vv_codes_train(&p, x, 4, 16, 1, &c) == VV_E_INVALID);
  }
  VV_CHECK(c == NULL);
  vv_codes_free(NULL);
}

VV_TEST(pq_distance_is_the_distance_to_the_decoded_vector) {
  const uint32_t dim = 24;
  const size_t n = 600;
  float *v = clustered(n, dim, 3, 0), dec[24];
  for (int k = 0; k < 2; k++)
    for (int l2 = 0; l2 <= 1; l2++) {
      vv_codes *c;
      vv_codes_params p = params(k ? VV_CODE_OPQ : VV_CODE_PQ);
      VV_REQUIRE(vv_codes_train(&p, v, n, dim, l2, &c) == VV_OK);
      VV_CHECK(vv_codes_code_bytes(c) == 3); /* vv_pq_choose_m: a byte per 8 floats */
      void *st = malloc(vv_codes_state_bytes(c));
      uint8_t code[3];
      VV_REQUIRE(vv_codes_query(c, v + 5 * dim, st) == VV_OK);
      for (size_t i = 0; i < 50; i++) {
        VV_REQUIRE(vv_codes_encode(c, v + i * dim, code) == VV_OK);
        VV_REQUIRE(vv_codes_decode(c, code, dec) == VV_OK);
        double want = exact(v + 5 * dim, dec, dim, l2);
        VV_NOTE("kind=%d l2=%d i=%zu", k, l2, i);
        VV_CHECK_NEAR(vv_codes_distance(c, st, code), want, 1e-3 * (1 + fabs(want)));
      }
      free(st);
      vv_codes_free(c);
    }
  free(v);
}

VV_TEST(sq4_distance_is_near_the_distance_to_the_decoded_vector) {
  const uint32_t dim = 33;
  const size_t n = 500;
  float *v = clustered(n, dim, 8, 0), dec[33];
  for (int l2 = 0; l2 <= 1; l2++) {
    vv_codes *c;
    vv_codes_params p = params(VV_CODE_SQ4);
    VV_REQUIRE(vv_codes_train(&p, v, n, dim, l2, &c) == VV_OK);
    VV_CHECK(vv_codes_code_bytes(c) == 4 * 5 + 4);
    void *st = malloc(vv_codes_state_bytes(c));
    uint8_t code[24];
    VV_REQUIRE(vv_codes_query(c, v, st) == VV_OK);
    double qn = sqrt(exact(v, v, dim, 0) * -1);
    float lo[33], hi[33];
    for (uint32_t d = 0; d < dim; d++) {
      lo[d] = INFINITY, hi[d] = -INFINITY;
      for (size_t i = 0; i < n; i++) lo[d] = fminf(lo[d], v[i * dim + d]), hi[d] = fmaxf(hi[d], v[i * dim + d]);
    }
    for (size_t i = 0; i < 100; i++) {
      VV_REQUIRE(vv_codes_encode(c, v + i * dim, code) == VV_OK);
      VV_REQUIRE(vv_codes_decode(c, code, dec) == VV_OK);
      /* The decoded value is within half a step of the input. */
      for (uint32_t d = 0; d < dim; d++) VV_CHECK(fabs(dec[d] - v[i * dim + d]) <= (hi[d] - lo[d]) / 30 * 1.001);
      /* Only the query's int8 rounding separates the two. */
      double want = exact(v, dec, dim, l2), dn = sqrt(exact(dec, dec, dim, 0) * -1);
      VV_NOTE("l2=%d i=%zu", l2, i);
      VV_CHECK_NEAR(vv_codes_distance(c, st, code), want, 0.02 * qn * dn + 1e-4);
    }
    free(st);
    vv_codes_free(c);
  }
  free(v);
}

VV_TEST(rabitq_error_bound_holds_for_nearly_every_pair) {
  const uint32_t dim = 128;
  const size_t n = 1000;
  float *v = clustered(n, dim, 21, 0);
  double prev[2] = {INFINITY, INFINITY};
  for (uint32_t bits = 1; bits <= 4; bits++)
    for (int l2 = 0; l2 <= 1; l2++) {
      vv_codes *c;
      vv_codes_params p = params(VV_CODE_RABITQ);
      p.bits = bits;
      VV_REQUIRE(vv_codes_train(&p, v, n, dim, l2, &c) == VV_OK);
      VV_CHECK(vv_codes_code_bytes(c) == bits * 16 + 12);
      size_t cb = vv_codes_code_bytes(c), inside = 0, total = 0;
      uint8_t *codes = encode_all(c, v, n, dim);
      void *st = malloc(vv_codes_state_bytes(c));
      double abserr = 0;
      for (size_t qi = 0; qi < 20; qi++) {
        const float *q = v + (n - 1 - qi) * dim;
        VV_REQUIRE(vv_codes_query(c, q, st) == VV_OK);
        for (size_t i = 0; i < n; i++, total++) {
          float err, est = vv_codes_distance_bound(c, st, codes + i * cb, &err);
          double want = exact(q, v + i * dim, dim, l2);
          inside += fabs(est - want) <= err;
          abserr += fabs(est - want);
        }
      }
      VV_NOTE("bits=%u l2=%d inside=%zu/%zu", bits, l2, inside, total);
      /* eps0 = 1.9 is about two standard deviations of the estimator. */
      VV_CHECK(inside >= total * 93 / 100);
      /* More bits, smaller error. */
      VV_CHECK(abserr < prev[l2]);
      prev[l2] = abserr;
      free(st);
      free(codes);
      vv_codes_free(c);
    }
  free(v);
}

/* recall@10 after re-ranking the `rerank` best by code distance, averaged
 * over nq queries taken from the data's tail (excluded from the base). */
static double rerank_recall(const vv_codes *c, const float *v, size_t n, size_t nq, uint32_t dim, int l2,
                            size_t rerank) {
  size_t nb = n - nq;
  uint8_t *codes = encode_all(c, v, nb, dim);
  float *est = malloc(sizeof(float) * nb);
  double *ex = malloc(sizeof(double) * nb);
  void *st = malloc(vv_codes_state_bytes(c));
  double hits = 0;
  for (size_t qi = 0; qi < nq; qi++) {
    const float *q = v + (nb + qi) * dim;
    if (vv_codes_query(c, q, st) != VV_OK) abort();
    vv_codes_distance_scan(c, st, codes, nb, est);
    for (size_t i = 0; i < nb; i++) ex[i] = exact(q, v + i * dim, dim, l2);
    /* The 10th exact distance, and the `rerank`-th estimate (selection by counting). */
    double tenth = 0, cut = 0;
    for (size_t i = 0; i < nb; i++) {
      size_t below = 0;
      for (size_t j = 0; j < nb; j++) below += ex[j] < ex[i];
      if (below == 9) tenth = ex[i];
      size_t ebelow = 0;
      for (size_t j = 0; j < nb; j++) ebelow += est[j] < est[i];
      if (ebelow == rerank - 1) cut = est[i];
    }
    for (size_t i = 0; i < nb; i++) hits += ex[i] <= tenth && est[i] <= cut;
  }
  free(codes);
  free(est);
  free(ex);
  free(st);
  return hits / (10.0 * nq);
}

VV_TEST(every_kind_ranks_well_enough_after_a_short_rerank) {
  const uint32_t dim = 32;
  const size_t n = 1030, nq = 30;
  for (int l2 = 0; l2 <= 1; l2++) {
    float *v = clustered(n, dim, 77 + l2, !l2);
    for (size_t k = 0; k < 4; k++) {
      vv_codes *c;
      vv_codes_params p = params(KINDS[k]);
      VV_REQUIRE(vv_codes_train(&p, v, n - nq, dim, l2, &c) == VV_OK);
      double r = rerank_recall(c, v, n, nq, dim, l2, 40);
      VV_NOTE("kind=%d l2=%d recall=%.3f", (int)KINDS[k], l2, r);
      VV_CHECK(r >= 0.95);
      vv_codes_free(c);
    }
    free(v);
  }
}

VV_TEST(decode_approximates_the_vector) {
  const uint32_t dim = 40;
  const size_t n = 400;
  float *v = clustered(n, dim, 4, 0), dec[40];
  for (size_t k = 0; k < 4; k++) {
    vv_codes *c;
    vv_codes_params p = params(KINDS[k]);
    VV_REQUIRE(vv_codes_train(&p, v, n, dim, 1, &c) == VV_OK);
    uint8_t code[256];
    double rel = 0;
    for (size_t i = 0; i < 100; i++) {
      VV_REQUIRE(vv_codes_encode(c, v + i * dim, code) == VV_OK);
      VV_REQUIRE(vv_codes_decode(c, code, dec) == VV_OK);
      rel += sqrt(exact(dec, v + i * dim, dim, 1) / -exact(v + i * dim, v + i * dim, dim, 0));
    }
    VV_NOTE("kind=%d mean relative error %.3f", (int)KINDS[k], rel / 100);
    VV_CHECK(rel / 100 < 0.25);
    vv_codes_free(c);
  }
  free(v);
}

/* Mean squared reconstruction error of rows [0, n). */
static double distortion(const vv_codes *c, const float *v, size_t n, uint32_t dim) {
  float dec[64];
  uint8_t code[64];
  double e = 0;
  for (size_t i = 0; i < n; i++) {
    if (vv_codes_encode(c, v + i * dim, code) != VV_OK || vv_codes_decode(c, code, dec) != VV_OK) abort();
    e += exact(dec, v + i * dim, dim, 1);
  }
  return e / n;
}

/* OPQ's and PQ's distortion (m = 4) on rows v. */
static void opq_vs_pq(const float *v, size_t n, uint32_t dim, double *pq_err, double *opq_err) {
  vv_codes *pq, *opq;
  vv_codes_params p = params(VV_CODE_PQ);
  p.m = 4;
  if (vv_codes_train(&p, v, n, dim, 1, &pq) != VV_OK) abort();
  p.kind = VV_CODE_OPQ;
  p.rounds = 4;
  if (vv_codes_train(&p, v, n, dim, 1, &opq) != VV_OK) abort();
  *pq_err = distortion(pq, v, n, dim);
  *opq_err = distortion(opq, v, n, dim);
  vv_codes_free(pq);
  vv_codes_free(opq);
}

VV_TEST(opq_distorts_less_than_pq_where_a_rotation_helps_and_no_more_elsewhere) {
  const uint32_t dim = 32, latent = 6;
  const size_t n = 2000;
  uint64_t st = 31;
  float map[32 * 6], *v = malloc(sizeof(float) * n * dim);
  double a, b;
  /* Rows from a 6-D latent space lifted to 32-D by a random map: every
   * dimension correlates with every other, across PQ's subspaces. */
  for (size_t i = 0; i < dim * latent; i++) map[i] = uni(&st);
  for (size_t i = 0; i < n; i++) {
    float z[6];
    for (uint32_t k = 0; k < latent; k++) z[k] = uni(&st);
    for (uint32_t d = 0; d < dim; d++) {
      float x = 0.01f * uni(&st);
      for (uint32_t k = 0; k < latent; k++) x += map[d * latent + k] * z[k];
      v[i * dim + d] = x;
    }
  }
  opq_vs_pq(v, n, dim, &a, &b);
  VV_NOTE("correlated: pq %.5f opq %.5f", a, b);
  VV_CHECK(b < 0.9 * a);
  /* Independent dimensions whose spread shrinks within each subspace:
   * already the best axes for PQ, which a rotation can only mix up. */
  for (size_t i = 0; i < n; i++)
    for (uint32_t d = 0; d < dim; d++) v[i * dim + d] = uni(&st) * (float)(1u << (d % 8)) / 128.0f;
  opq_vs_pq(v, n, dim, &a, &b);
  VV_NOTE("axis-aligned: pq %.5f opq %.5f", a, b);
  VV_CHECK(b <= 1.01 * a);
  free(v);
}

/* ---- the parameter blob ---- */

static uint8_t *saved(const vv_codes *c, size_t *len) {
  if (vv_codes_save(c, NULL, 0, len) != VV_OK) return NULL;
  uint8_t *b = malloc(*len);
  if (vv_codes_save(c, b, *len, len) != VV_OK) abort();
  return b;
}

VV_TEST(save_load_round_trip_gives_the_same_codes_and_distances) {
  const uint32_t dim = 20;
  const size_t n = 300;
  float *v = clustered(n, dim, 9, 0);
  for (size_t k = 0; k < 4; k++) {
    vv_codes *c, *d;
    vv_codes_params p = params(KINDS[k]);
    VV_REQUIRE(vv_codes_train(&p, v, n, dim, k % 2, &c) == VV_OK);
    size_t len, len2;
    uint8_t *b = saved(c, &len);
    VV_CHECK(vv_codes_save(c, b, len - 1, &len2) == VV_E_INVALID);
    VV_REQUIRE(vv_codes_load(b, len, &d) == VV_OK);
    VV_CHECK(vv_codes_kind(d) == KINDS[k] && vv_codes_dim(d) == dim && vv_codes_l2(d) == (int)(k % 2));
    uint8_t *b2 = saved(d, &len2);
    VV_CHECK(len2 == len && memcmp(b, b2, len) == 0);
    size_t cb = vv_codes_code_bytes(c);
    VV_CHECK(vv_codes_code_bytes(d) == cb);
    uint8_t c1[128], c2[128];
    void *s1 = malloc(vv_codes_state_bytes(c)), *s2 = malloc(vv_codes_state_bytes(d));
    VV_REQUIRE(vv_codes_query(c, v + 3 * dim, s1) == VV_OK && vv_codes_query(d, v + 3 * dim, s2) == VV_OK);
    for (size_t i = 0; i < 30; i++) {
      VV_REQUIRE(vv_codes_encode(c, v + i * dim, c1) == VV_OK && vv_codes_encode(d, v + i * dim, c2) == VV_OK);
      VV_NOTE("kind=%d i=%zu", (int)KINDS[k], i);
      VV_CHECK(memcmp(c1, c2, cb) == 0);
      VV_CHECK(vv_codes_distance(c, s1, c1) == vv_codes_distance(d, s2, c1));
    }
    free(s1);
    free(s2);
    free(b);
    free(b2);
    vv_codes_free(c);
    vv_codes_free(d);
  }
  free(v);
}

static void put32(uint8_t *p, uint32_t x) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(x >> (8 * i));
}

VV_TEST(load_rejects_corrupt_blobs) {
  const uint32_t dim = 16;
  const size_t n = 200;
  float *v = clustered(n, dim, 10, 0);
  for (size_t k = 0; k < 4; k++) {
    vv_codes *c, *d = NULL;
    vv_codes_params p = params(KINDS[k]);
    VV_REQUIRE(vv_codes_train(&p, v, n, dim, 1, &c) == VV_OK);
    size_t len;
    uint8_t *b = saved(c, &len), *x = malloc(len + 4);
    VV_NOTE("kind=%d", (int)KINDS[k]);
    VV_CHECK(vv_codes_load(NULL, len, &d) == VV_E_INVALID);
    VV_CHECK(vv_codes_load(b, len, NULL) == VV_E_INVALID);
    /* every truncation, and a byte too many */
    for (size_t l = 0; l < len; l++) VV_CHECK(vv_codes_load(b, l, &d) == VV_E_CORRUPT);
    memcpy(x, b, len);
    x[len] = 0;
    VV_CHECK(vv_codes_load(x, len + 1, &d) == VV_E_CORRUPT);
    /* every header byte changed */
    for (size_t i = 0; i < 24; i++) {
      memcpy(x, b, len);
      x[i] ^= 0x40;
      VV_NOTE("kind=%d header byte %zu", (int)KINDS[k], i);
      VV_CHECK(vv_codes_load(x, len, &d) == VV_E_CORRUPT);
    }
    /* header fields set to values that pass a byte flip's reach */
    static const uint32_t bad[] = {0, 3, 5, 7, 257, 0xffffffffu};
    for (size_t f = 8; f <= 16; f += 4)
      for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
        if (KINDS[k] == VV_CODE_RABITQ && f == 12 && bad[j] >= 1 && bad[j] <= 4) continue; /* other valid bits */
        memcpy(x, b, len);
        put32(x + f, bad[j]);
        if (memcmp(x, b, len) == 0) continue; /* the value it holds */
        VV_NOTE("kind=%d field %zu = %u", (int)KINDS[k], f, bad[j]);
        VV_CHECK(vv_codes_load(x, len, &d) == VV_E_CORRUPT);
      }
    /* a NaN, an infinity, anywhere in the floats */
    for (size_t off = 24; off < len; off += 4 * 7) {
      static const uint32_t nonfinite[] = {0x7fc00000u, 0x7f800000u, 0xff800000u};
      for (size_t j = 0; j < 3; j++) {
        memcpy(x, b, len);
        put32(x + off, nonfinite[j]);
        VV_NOTE("kind=%d float at %zu", (int)KINDS[k], off);
        VV_CHECK(vv_codes_load(x, len, &d) == VV_E_CORRUPT);
      }
    }
    if (KINDS[k] == VV_CODE_SQ4) { /* a negative step */
      memcpy(x, b, len);
      put32(x + 24 + 4 * dim, 0xbf800000u);
      VV_CHECK(vv_codes_load(x, len, &d) == VV_E_CORRUPT);
    }
    VV_CHECK(d == NULL);
    free(b);
    free(x);
    vv_codes_free(c);
  }
  free(v);
}

VV_TEST(batch_and_scan_equal_one_at_a_time) {
  const uint32_t dim = 48;
  const size_t n = 200;
  float *v = clustered(n, dim, 12, 1);
  for (size_t k = 0; k < 4; k++) {
    vv_codes *c;
    vv_codes_params p = params(KINDS[k]);
    VV_REQUIRE(vv_codes_train(&p, v, n, dim, 0, &c) == VV_OK);
    size_t cb = vv_codes_code_bytes(c);
    uint8_t *codes = encode_all(c, v, n, dim);
    const uint8_t *ptrs[200];
    float a[200], b[200];
    for (size_t i = 0; i < n; i++) ptrs[i] = codes + ((i * 37) % n) * cb;
    void *st = malloc(vv_codes_state_bytes(c));
    VV_REQUIRE(vv_codes_query(c, v, st) == VV_OK);
    vv_codes_distance_scan(c, st, codes, n, a);
    vv_codes_distance_batch(c, st, ptrs, n, b);
    for (size_t i = 0; i < n; i++) {
      VV_NOTE("kind=%d i=%zu", (int)KINDS[k], i);
      VV_CHECK(a[(i * 37) % n] == b[i]);
      VV_CHECK(a[i] == vv_codes_distance(c, st, codes + i * cb));
    }
    free(st);
    free(codes);
    vv_codes_free(c);
  }
  free(v);
}

VV_TEST_MAIN()
