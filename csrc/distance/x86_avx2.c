/*
 * distance/x86_avx2.c: AVX2+FMA kernels for x86-64.
 *
 * Owns: vv_l2sq_f32_avx2, vv_dot_f32_avx2. Each function carries its own
 * target attribute instead of the file being built with -mavx2, so a generic
 * x86-64 build can contain this code; dispatch.c only hands these out after
 * checking the CPU has AVX2 and FMA.
 */
#include "distance.h"

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#if defined(__GNUC__) || defined(__clang__)
#define VV_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
/* MSVC lets intrinsics through without a per-function target. */
#define VV_TARGET_AVX2
#endif

/* 8 lanes -> 1 without the slow hadd instruction: fold 256->128->64->32. */
VV_TARGET_AVX2 static inline float vv_hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 odd = _mm_movehdup_ps(s);       /* lanes 1,1,3,3 */
  s = _mm_add_ps(s, odd);                /* lane0 = 0+1, lane2 = 2+3 */
  s = _mm_add_ss(s, _mm_movehl_ps(odd, s));
  return _mm_cvtss_f32(s);
}

/*
 * 32 floats per iteration over four accumulators: an FMA has ~4 cycles of
 * latency and two can issue per cycle, so one accumulator would leave the
 * FMA units mostly idle waiting on the previous sum.
 */
VV_TARGET_AVX2 float vv_l2sq_f32_avx2(const float *a, const float *b, size_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
    acc2 = _mm256_fmadd_ps(d2, d2, acc2);
    acc3 = _mm256_fmadd_ps(d3, d3, acc3);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    acc0 = _mm256_fmadd_ps(d, d, acc0);
  }
  float sum = vv_hsum256(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  /* Scalar tail rather than a masked load: at most 7 elements, and it never reads past n. */
  for (; i < n; i++) {
    float d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

VV_TARGET_AVX2 float vv_dot_f32_avx2(const float *a, const float *b, size_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float sum = vv_hsum256(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; i++)
    sum += a[i] * b[i];
  return sum;
}

#else
/* ISO C forbids an empty translation unit. */
typedef int vv_avx2_unused;
#endif
