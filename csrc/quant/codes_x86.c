/*
 * quant/codes_x86.c: AVX2 and AVX-512 (F+BW) variants of the kernels in
 * codes_kern.h. Each function carries its own target attribute, so a
 * generic x86-64 build holds them; codes_scalar.c hands them out only after
 * checking the CPU.
 *
 * adc: the table lookups are gathers, 8 (AVX2) or 16 (AVX-512) subquantisers
 * per instruction, the byte codes widened to int32 offsets.
 *
 * planes: a bit plane selects the query bytes whose dimension has that bit
 * set, and a SAD against zero sums them, 8 bytes to one 64-bit lane. AVX-512
 * BW turns 64 plane bits straight into a byte mask (a k-register); AVX2
 * spreads 32 bits over 32 bytes with a byte shuffle (vpshufb copies byte
 * i / 8 of the word to byte i, an AND keeps bit i % 8, a compare makes it a
 * 0x00/0xff mask). The bias of 128 in qu is taken out once per plane with a
 * popcount of its bits.
 */
#include "codes_kern.h"

#ifdef VV_CODES_X86

#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,popcnt")))
#define AVX512 __attribute__((target("avx512f,avx512bw,popcnt")))

/* `max` (4 or 8) bytes of a plane from byte offset `off`, zero past its
 * end: a fixed-size load except in the last word. */
static inline uint64_t plane_word(const uint8_t *p, size_t off, size_t pbytes, size_t max) {
  uint64_t w = 0;
  if (off + max <= pbytes) {
    if (max == 8) memcpy(&w, p + off, 8);
    else {
      uint32_t h;
      memcpy(&h, p + off, 4);
      w = h;
    }
  } else {
    memcpy(&w, p + off, pbytes - off);
  }
  return w;
}

AVX2 float vv_adc_u8_avx2(const float *table, uint32_t ksub, uint32_t m, const uint8_t *code) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i step = _mm256_set1_epi32((int)(8 * ksub));
  __m256i base = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)ksub));
  uint32_t j = 0;
  for (; j + 8 <= m; j += 8) {
    __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(code + j)));
    acc = _mm256_add_ps(acc, _mm256_i32gather_ps(table, _mm256_add_epi32(c, base), 4));
    base = _mm256_add_epi32(base, step);
  }
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float d = _mm_cvtss_f32(s);
  for (; j < m; j++) d += table[(size_t)j * ksub + code[j]];
  return d;
}

AVX512 float vv_adc_u8_avx512(const float *table, uint32_t ksub, uint32_t m, const uint8_t *code) {
  __m512 acc = _mm512_setzero_ps();
  const __m512i step = _mm512_set1_epi32((int)(16 * ksub));
  __m512i base = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                    _mm512_set1_epi32((int)ksub));
  uint32_t j = 0;
  for (; j + 16 <= m; j += 16) {
    __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(code + j)));
    acc = _mm512_add_ps(acc, _mm512_i32gather_ps(_mm512_add_epi32(c, base), table, 4));
    base = _mm512_add_epi32(base, step);
  }
  if (j < m) { /* the last 1..15 subquantisers: a masked gather, so no scalar tail */
    __mmask16 k = (__mmask16)((1u << (m - j)) - 1);
    uint8_t tail[16] = {0};
    memcpy(tail, code + j, m - j);
    __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)tail));
    __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, _mm512_add_epi32(c, base), table, 4);
    acc = _mm512_add_ps(acc, g);
  }
  return _mm512_reduce_add_ps(acc);
}

AVX2 int32_t vv_planes_dot_avx2(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu) {
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                          3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc = zero;
  int64_t pop = 0;
  for (size_t off = 0; off < pbytes; off += 4) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(qu + off * 8));
    for (uint32_t b = 0; b < nplanes; b++) {
      uint32_t w = (uint32_t)plane_word(code + (size_t)b * pbytes, off, pbytes, 4);
      __m256i m = _mm256_shuffle_epi8(_mm256_set1_epi32((int)w), spread);
      m = _mm256_cmpeq_epi8(_mm256_and_si256(m, bit), bit);
      __m256i s = _mm256_sad_epu8(_mm256_and_si256(m, q), zero);
      acc = _mm256_add_epi64(acc, _mm256_sll_epi64(s, _mm_cvtsi32_si128((int)b)));
      pop += (int64_t)_mm_popcnt_u32(w) << b;
    }
  }
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
  return (int32_t)((int64_t)_mm_cvtsi128_si64(s) - 128 * pop);
}

AVX512 int32_t vv_planes_dot_avx512(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc = zero;
  int64_t pop = 0;
  for (size_t off = 0; off < pbytes; off += 8) {
    __m512i q = _mm512_loadu_si512((const void *)(qu + off * 8));
    for (uint32_t b = 0; b < nplanes; b++) {
      uint64_t w = plane_word(code + (size_t)b * pbytes, off, pbytes, 8);
      __m512i s = _mm512_sad_epu8(_mm512_maskz_mov_epi8((__mmask64)w, q), zero);
      acc = _mm512_add_epi64(acc, _mm512_sll_epi64(s, _mm_cvtsi32_si128((int)b)));
      pop += (int64_t)_mm_popcnt_u64(w) << b;
    }
  }
  return (int32_t)(_mm512_reduce_add_epi64(acc) - 128 * pop);
}

#endif
