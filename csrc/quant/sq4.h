/*
 * quant/sq4.h: 4-bit scalar quantisation. Each dimension d has a range
 * learnt from a sample, [lo[d], lo[d] + 15 * step[d]], and a vector is
 * stored as the nearest of its 16 levels per dimension: four bit planes
 * (codes_kern.h) and the squared norm of the decoded vector, so that a
 * squared L2 distance needs only an inner product with the integer levels.
 *
 * Read-only after train/init; any number of threads may share one.
 */
#ifndef VV_SQ4_H
#define VV_SQ4_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../vecvault.h"

typedef struct vv_sq4 {
  uint32_t dim;
  size_t pbytes; /* bytes per plane, ceil(dim / 8) */
  float *lo;     /* dim; owned */
  float *step;   /* dim; owned; >= 0 */
} vv_sq4;

/* Ranges are each dimension's min and max over n rows. VV_E_INVALID,
 * VV_E_NOMEM; on failure *sq is left empty. */
VV_NODISCARD int vv_sq4_train(vv_sq4 *sq, const float *data, size_t n, uint32_t dim);
/* From saved ranges (copied). VV_E_CORRUPT for a non-finite value or a
 * negative step, VV_E_INVALID, VV_E_NOMEM. */
VV_NODISCARD int vv_sq4_init(vv_sq4 *sq, uint32_t dim, const float *lo, const float *step);
void vv_sq4_destroy(vv_sq4 *sq);

size_t vv_sq4_code_bytes(const vv_sq4 *sq);
void vv_sq4_encode(const vv_sq4 *sq, const float *x, uint8_t *code);
void vv_sq4_decode(const vv_sq4 *sq, const uint8_t *code, float *x);

/* The query part: head[0..3] and qu[vv_codes_qpad(pbytes)]. */
void vv_sq4_query(const vv_sq4 *sq, const float *q, int l2, float *head, uint8_t *qu);
/* The estimate from the planes kernel's result `ip` on this code. */
static inline float vv_sq4_distance(const vv_sq4 *sq, const float *head, const uint8_t *code, int32_t ip) {
  float norm2;
  memcpy(&norm2, code + 4 * sq->pbytes, sizeof norm2);
  return head[0] + head[1] * norm2 - head[2] * head[3] * (float)ip;
}

#endif
