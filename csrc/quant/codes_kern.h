/*
 * quant/codes_kern.h: the distance kernels behind quant/codes.h, internal to
 * quant/. Two shapes of code cover every kind:
 *
 *   adc    one byte per subquantiser (PQ, OPQ): the sum over j < m of
 *          table[j * ksub + code[j]], a float table built per query.
 *   planes a code of `nplanes` bit planes of `pbytes` bytes each (RaBitQ,
 *          SQ4): plane b holds bit b of every dimension's integer code u[d]
 *          (dimension d at byte d / 8, bit d % 8). The kernel returns
 *              sum over d of u[d] * (qu[d] - 128)
 *          = sum over b of 2^b * sum over d with bit b set of (qu[d] - 128),
 *          the inner product of the integer code with a query quantised to
 *          int8 and stored biased (qu = q + 128, so SAD instructions can sum
 *          it). qu must hold vv_codes_qpad(pbytes) bytes; bytes past the
 *          vector's dimension must be 128 (a zero weight), so stray bits
 *          past the end of a plane cost nothing.
 *
 * Each ISA has one table; vv_code_kernels_for() hands out only what this
 * CPU runs. Kernels read their inputs unaligned and never fail.
 */
#ifndef VV_CODES_KERN_H
#define VV_CODES_KERN_H

#include <stddef.h>
#include <stdint.h>

typedef enum vv_code_isa {
  VV_CODE_ISA_SCALAR = 0,
  VV_CODE_ISA_AVX2 = 1,   /* avx2 */
  VV_CODE_ISA_AVX512 = 2, /* avx512f + avx512bw */
  VV_CODE_ISA_COUNT = 3
} vv_code_isa;

typedef float (*vv_adc_fn)(const float *table, uint32_t ksub, uint32_t m, const uint8_t *code);
typedef int32_t (*vv_planes_fn)(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu);

typedef struct vv_code_kernels {
  vv_code_isa isa;
  const char *name;
  vv_adc_fn adc;
  vv_planes_fn planes;
} vv_code_kernels;

/* Query bytes the planes kernels read for planes of pbytes bytes: whole
 * 64-dimension blocks. */
static inline size_t vv_codes_qpad(size_t pbytes) { return (pbytes + 7) / 8 * 64; }

/* Dimension d's level v (< 2^nplanes) into a zeroed planes code, and back. */
static inline void vv_planes_put(uint8_t *code, size_t pbytes, uint32_t nplanes, uint32_t d, unsigned v) {
  for (uint32_t b = 0; b < nplanes; b++) code[b * pbytes + d / 8] |= (uint8_t)(((v >> b) & 1u) << (d % 8));
}
static inline unsigned vv_planes_get(const uint8_t *code, size_t pbytes, uint32_t nplanes, uint32_t d) {
  unsigned v = 0;
  for (uint32_t b = 0; b < nplanes; b++) v |= ((code[b * pbytes + d / 8] >> (d % 8)) & 1u) << b;
  return v;
}
/* Quantises the weights w[d] * scale[d] (scale NULL: 1) for d < dim to
 * qu[vv_codes_qpad(pbytes)] (q = round(weight / delta) in -127..127, stored
 * as q + 128; padding 128) and returns delta, so that weight d ~ delta *
 * (qu[d] - 128). delta is 1 for all-zero weights. */
float vv_planes_query(const float *w, const float *scale, uint32_t dim, size_t pbytes, uint8_t *qu);

/* The table for one ISA, or NULL if this build or CPU cannot run it. */
const vv_code_kernels *vv_code_kernels_for(vv_code_isa isa);
/* The widest this CPU runs, decided once; VECVAULT_ISA=scalar|avx2|avx512
 * caps it (for tests and benchmarks). */
const vv_code_kernels *vv_code_kernels_best(void);

float vv_adc_u8_scalar(const float *table, uint32_t ksub, uint32_t m, const uint8_t *code);
int32_t vv_planes_dot_scalar(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu);
/* The scalar set's planes kernel on little-endian targets (what arm64 and
 * x86 without AVX2 run); vv_planes_dot_scalar stays the reference. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define VV_PLANES_SWAR 1
int32_t vv_planes_dot_swar(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu);
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
float vv_adc_u8_avx2(const float *table, uint32_t ksub, uint32_t m, const uint8_t *code);
int32_t vv_planes_dot_avx2(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu);
float vv_adc_u8_avx512(const float *table, uint32_t ksub, uint32_t m, const uint8_t *code);
int32_t vv_planes_dot_avx512(const uint8_t *code, uint32_t nplanes, size_t pbytes, const uint8_t *qu);
#define VV_CODES_X86 1
#endif

#endif
