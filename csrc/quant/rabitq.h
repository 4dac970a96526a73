/*
 * quant/rabitq.h: RaBitQ codes (Gao & Long, SIGMOD 2024) and their
 * extended multi-bit form (Gao et al., 2024), with the unbiased inner
 * product estimator and its error bound.
 *
 * A vector o is centred on the data's mean c, r = o - c, and rotated by a
 * random orthogonal P: o' = P r / |r|, a unit vector. Each dimension gets a
 * level u[d] in 0..2^bits-1 standing for y[d] = u[d] - (2^bits - 1) / 2;
 * one bit is the sign of o'[d], more bits pick the scale of the grid that
 * makes y closest in angle to o'. With a = <y, o'> / |y|, the estimator
 *     <r, q> ~ |r| <y, P q> / <y, o'>
 * is unbiased, and its error on <o', q'> exceeds eps0 * sqrt((1 - a^2) /
 * (a^2 (dim - 1))) with small probability (eps0 = 1.9). Each code ends
 * with three float32 factors that turn the kernel's <u, P q> into a
 * distance:
 *     f_add = |r|^2,   f_ip = |r| / <y, o'>,
 *     f_err = |r| sqrt((1 - a^2) / (a^2 (dim - 1)))
 * (all zero for o = c).
 *
 * Read-only after train/init; any number of threads may share one.
 */
#ifndef VV_RABITQ_H
#define VV_RABITQ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../vecvault.h"

#define VV_RABITQ_EPS0 1.9f
#define VV_RABITQ_MAX_BITS 4u

typedef struct vv_rabitq {
  uint32_t dim;
  uint32_t bits;  /* 1..VV_RABITQ_MAX_BITS */
  size_t pbytes;  /* bytes per plane, ceil(dim / 8) */
  float *center;  /* dim; owned */
  float *rot;     /* dim * dim, row-major, x -> rot x; owned */
} vv_rabitq;

/* Center = mean of n rows, rotation from the seed. VV_E_INVALID,
 * VV_E_NOMEM; on failure *rq is left empty. */
VV_NODISCARD int vv_rabitq_train(vv_rabitq *rq, const float *data, size_t n, uint32_t dim, uint32_t bits,
                                 uint64_t seed);
/* From saved parameters (copied). VV_E_CORRUPT for a non-finite value,
 * VV_E_INVALID, VV_E_NOMEM. */
VV_NODISCARD int vv_rabitq_init(vv_rabitq *rq, uint32_t dim, uint32_t bits, const float *center, const float *rot);
void vv_rabitq_destroy(vv_rabitq *rq);

size_t vv_rabitq_code_bytes(const vv_rabitq *rq);
/* scratch: 2 * dim floats. */
void vv_rabitq_encode(const vv_rabitq *rq, const float *x, uint8_t *code, float *scratch);
void vv_rabitq_decode(const vv_rabitq *rq, const uint8_t *code, float *x, float *scratch);

/* The query part: head[0..5] and qu[vv_codes_qpad(pbytes)]; scratch: 2 *
 * dim floats. */
void vv_rabitq_query(const vv_rabitq *rq, const float *q, int l2, float *head, uint8_t *qu, float *scratch);

/* The estimate from the planes kernel's result `ip` on this code, and (if
 * err) the half-width of its error bound. */
static inline float vv_rabitq_distance(const vv_rabitq *rq, const float *head, const uint8_t *code, int32_t ip,
                                       float *err) {
  float f[3];
  memcpy(f, code + rq->bits * rq->pbytes, sizeof f);
  if (err) *err = head[5] * f[2];
  return head[0] + head[1] * f[0] - head[2] * f[1] * (head[3] * (float)ip - head[4]);
}

#endif
