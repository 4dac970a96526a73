/*
 * quant/codes_scalar.c: the scalar reference kernels of codes_kern.h, the
 * helpers that lay out bit-plane codes and quantised queries for them, and
 * the dispatcher that picks a kernel table for this CPU once.
 */
#include "codes_kern.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

float vv_adc_u8_scalar(const float *table, uint32_t ksub, uint32_t m, const uint8_t *code) {
  float d = 0.0f;
  for (uint32_t j = 0; j < m; j++) d += table[(size_t)j * ksub + code[j]];
  return d;
}

int32_t vv_planes_dot_scalar(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu) {
  int64_t total = 0;
  for (uint32_t b = 0; b < nplanes; b++) {
    int64_t s = 0;
    const uint8_t *p = code + (size_t)b * pbytes;
    for (size_t i = 0; i < pbytes; i++)
      for (unsigned k = 0; k < 8; k++)
        if ((p[i] >> k) & 1u) s += (int32_t)qu[i * 8 + k] - 128;
    total += s * ((int64_t)1 << b);
  }
  return (int32_t)total;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Eight dimensions per step in a 64-bit word: the plane byte spread to a
 * 0x00/0xff byte mask (copy it to every byte, keep bit k in byte k, carry
 * a non-zero byte into its top bit), the masked query bytes summed in two
 * halving steps. Portable C, about ten times the reference's speed. */
int32_t vv_planes_dot_swar(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu) {
  const uint64_t ones = 0x0101010101010101ull, tops = 0x8080808080808080ull;
  const uint64_t low7 = 0x7f7f7f7f7f7f7f7full, even = 0x00ff00ff00ff00ffull;
  int64_t total = 0;
  for (uint32_t b = 0; b < nplanes; b++) {
    const uint8_t *p = code + (size_t)b * pbytes;
    int64_t s = 0, pop = 0;
    for (size_t i = 0; i < pbytes; i++) {
      if (!p[i]) continue;
      uint64_t q, hi = (((p[i] * ones) & 0x8040201008040201ull) + low7) & tops;
      memcpy(&q, qu + i * 8, 8);
      q &= (hi >> 7) * 0xff;
      q = (q & even) + ((q >> 8) & even);
      s += (int64_t)((q * 0x0001000100010001ull) >> 48);
      pop += (int64_t)(((hi >> 7) * ones) >> 56);
    }
    total += (s - 128 * pop) * ((int64_t)1 << b);
  }
  return (int32_t)total;
}
#endif

float vv_planes_query(const float *w, const float *scale, uint32_t dim, size_t pbytes, uint8_t *qu) {
  float mx = 0.0f;
  for (uint32_t d = 0; d < dim; d++) mx = fmaxf(mx, fabsf(w[d] * (scale ? scale[d] : 1.0f)));
  float delta = mx > 0.0f ? mx / 127.0f : 1.0f;
  memset(qu, 128, vv_codes_qpad(pbytes));
  for (uint32_t d = 0; d < dim; d++) {
    long q = lrintf(w[d] * (scale ? scale[d] : 1.0f) / delta);
    qu[d] = (uint8_t)(128 + (q > 127 ? 127 : q < -127 ? -127 : q));
  }
  return delta;
}

#ifdef VV_PLANES_SWAR
static const vv_code_kernels kern_scalar = {VV_CODE_ISA_SCALAR, "scalar", vv_adc_u8_scalar, vv_planes_dot_swar};
#else
static const vv_code_kernels kern_scalar = {VV_CODE_ISA_SCALAR, "scalar", vv_adc_u8_scalar, vv_planes_dot_scalar};
#endif
#ifdef VV_CODES_X86
static const vv_code_kernels kern_avx2 = {VV_CODE_ISA_AVX2, "avx2", vv_adc_u8_avx2, vv_planes_dot_avx2};
/* The AVX-512 set keeps AVX2's lookups: a 16-lane gather measured slower
 * than two 8-lane ones on AMD EPYC (65 against 47 ns per 98-byte code, hot
 * in L1), so vv_adc_u8_avx512 is kept, and tested, but not handed out. */
static const vv_code_kernels kern_avx512 = {VV_CODE_ISA_AVX512, "avx512", vv_adc_u8_avx2, vv_planes_dot_avx512};
#endif

const vv_code_kernels *vv_code_kernels_for(vv_code_isa isa) {
  switch (isa) {
  case VV_CODE_ISA_SCALAR:
    return &kern_scalar;
#ifdef VV_CODES_X86
  case VV_CODE_ISA_AVX2:
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? &kern_avx2 : NULL;
  case VV_CODE_ISA_AVX512:
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? &kern_avx512 : NULL;
#endif
  default:
    return NULL;
  }
}

/* Written only inside pthread_once, which also publishes it. */
static const vv_code_kernels *kern_best;
static pthread_once_t kern_best_once = PTHREAD_ONCE_INIT;

static void kern_best_init(void) {
  int cap = VV_CODE_ISA_COUNT - 1;
  const char *want = getenv("VECVAULT_ISA");
  if (want && strcmp(want, "scalar") == 0) cap = VV_CODE_ISA_SCALAR;
  if (want && strcmp(want, "avx2") == 0) cap = VV_CODE_ISA_AVX2;
  kern_best = &kern_scalar;
  for (int isa = cap; isa > VV_CODE_ISA_SCALAR; isa--) {
    const vv_code_kernels *k = vv_code_kernels_for((vv_code_isa)isa);
    if (k) {
      kern_best = k;
      break;
    }
  }
}

const vv_code_kernels *vv_code_kernels_best(void) {
  pthread_once(&kern_best_once, kern_best_init);
  return kern_best;
}
