/*
 * distance/scalar.c: portable reference kernels and vector normalisation.
 *
 * Owns: vv_l2sq_f32_scalar, vv_dot_f32_scalar, vv_normalize_f32. These are the
 * ground truth the SIMD variants are tested against and the fallback on CPUs
 * without a SIMD path, so they favour clarity over speed.
 */
#include "distance.h"

#include <math.h>

/*
 * Four independent accumulators break the loop-carried dependency on a single
 * sum (so the compiler can pipeline or vectorise without -ffast-math) and
 * roughly match the summation order of the SIMD kernels, which keeps their
 * results close to ours.
 */
float vv_l2sq_f32_scalar(const float *a, const float *b, size_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float d0 = a[i] - b[i];
    float d1 = a[i + 1] - b[i + 1];
    float d2 = a[i + 2] - b[i + 2];
    float d3 = a[i + 3] - b[i + 3];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < n; i++) {
    float d = a[i] - b[i];
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

float vv_dot_f32_scalar(const float *a, const float *b, size_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++)
    s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

/*
 * Accumulate in double: squares of large floats (|x| > ~1.8e19) overflow a
 * float sum, and squares of tiny ones underflow to zero; both are in range
 * for double. Normalisation runs once per inserted vector, so the cost is
 * irrelevant next to getting cosine distances right.
 */
double vv_normalize_f32(float *v, size_t n) {
  double ss = 0.0;
  for (size_t i = 0; i < n; i++)
    ss += (double)v[i] * (double)v[i];
  double norm = sqrt(ss);
  /* Also rejects NaN: a vector with NaN/Inf is left as is for the caller to reject. */
  if (!(norm > 0.0) || isinf(norm))
    return norm;
  double inv = 1.0 / norm;
  for (size_t i = 0; i < n; i++)
    v[i] = (float)((double)v[i] * inv);
  return norm;
}
