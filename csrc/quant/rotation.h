/*
 * quant/rotation.h: orthogonal dim x dim rotations for the codes that
 * quantise in a rotated space (OPQ learns one, RaBitQ draws one at random).
 *
 * A rotation is row-major floats R[dim * dim]; applying it maps x to
 * R x (out[i] = row i . x), and its transpose maps back. All pointers are
 * borrowed for the call; outputs are caller-allocated and must not alias
 * the inputs.
 */
#ifndef VV_ROTATION_H
#define VV_ROTATION_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"

/* A random orthogonal matrix (Gaussian entries, then Gram-Schmidt in
 * double), the same for the same seed and dim. VV_E_INVALID (dim 0 or R
 * NULL), VV_E_NOMEM. */
VV_NODISCARD int vv_rot_random(uint32_t dim, uint64_t seed, float *R);

/* out = R x. */
void vv_rot_apply(const float *R, uint32_t dim, const float *x, float *out);
/* out = R^T y (the inverse rotation). */
void vv_rot_apply_t(const float *R, uint32_t dim, const float *y, float *out);

/*
 * The orthogonal R that minimises sum ||R x_i - y_i||^2 over n pairs of
 * rows (orthogonal Procrustes): the polar factor of M = sum y_i x_i^T,
 * found by scaled Newton iteration (X <- (g X + X^-T / g) / 2), in double.
 * A rank-deficient M (dimensions that never vary) gets a tiny ridge, which
 * picks one of the equally good rotations. VV_E_NOMEM, VV_E_INVALID.
 */
VV_NODISCARD int vv_rot_procrustes(const float *x, const float *y, size_t n, uint32_t dim, float *R);

#endif
