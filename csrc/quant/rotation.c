/*
 * quant/rotation.c: random and learnt orthogonal rotations (rotation.h).
 * Dense O(dim^3) linear algebra; dim is at most a few thousand and these
 * run once per training, never per query.
 */
#include "rotation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "../distance/distance.h"

/* A standard normal deviate (Box-Muller, one of the pair). */
static double gaussian(uint64_t *st) {
  double u = vv_unit_double(vv_splitmix64(st)), v = vv_unit_double(vv_splitmix64(st));
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static double *dmatrix(uint32_t dim) {
  int ovf = 0;
  size_t n = vv_mul_size(vv_mul_size(dim, dim, &ovf), sizeof(double), &ovf);
  return ovf ? NULL : malloc(n);
}

int vv_rot_random(uint32_t dim, uint64_t seed, float *R) {
  if (dim == 0 || !R) return VV_E_INVALID;
  double *A = dmatrix(dim);
  if (!A) return VV_E_NOMEM;
  uint64_t st = seed;
  for (size_t i = 0; i < (size_t)dim * dim; i++) A[i] = gaussian(&st);
  /* Modified Gram-Schmidt over the rows, twice per row for orthogonality to
   * rounding. A Gaussian matrix is full rank with probability one. */
  for (uint32_t i = 0; i < dim; i++) {
    double *ri = A + (size_t)i * dim;
    for (int pass = 0; pass < 2; pass++)
      for (uint32_t j = 0; j < i; j++) {
        const double *rj = A + (size_t)j * dim;
        double d = 0;
        for (uint32_t t = 0; t < dim; t++) d += ri[t] * rj[t];
        for (uint32_t t = 0; t < dim; t++) ri[t] -= d * rj[t];
      }
    double nn = 0;
    for (uint32_t t = 0; t < dim; t++) nn += ri[t] * ri[t];
    nn = 1.0 / sqrt(nn);
    for (uint32_t t = 0; t < dim; t++) ri[t] *= nn;
  }
  for (size_t i = 0; i < (size_t)dim * dim; i++) R[i] = (float)A[i];
  free(A);
  return VV_OK;
}

void vv_rot_apply(const float *R, uint32_t dim, const float *x, float *out) {
  vv_dist_fn dot = vv_kernels_best()->dot;
  for (uint32_t i = 0; i < dim; i++) out[i] = dot(R + (size_t)i * dim, x, dim);
}

void vv_rot_apply_t(const float *R, uint32_t dim, const float *y, float *out) {
  memset(out, 0, sizeof(float) * dim);
  for (uint32_t i = 0; i < dim; i++) {
    const float *r = R + (size_t)i * dim;
    float yi = y[i];
    for (uint32_t t = 0; t < dim; t++) out[t] += yi * r[t];
  }
}

/* A := A^-1 by Gauss-Jordan with partial pivoting; W is dim*dim scratch.
 * Returns 0 when A is (numerically) singular. */
static int invert(double *A, double *W, uint32_t n) {
  size_t N = n;
  for (size_t i = 0; i < N * N; i++) W[i] = 0;
  for (size_t i = 0; i < N; i++) W[i * N + i] = 1;
  double scale = 0;
  for (size_t i = 0; i < N * N; i++) scale = fmax(scale, fabs(A[i]));
  for (size_t c = 0; c < N; c++) {
    size_t p = c;
    for (size_t r = c + 1; r < N; r++)
      if (fabs(A[r * N + c]) > fabs(A[p * N + c])) p = r;
    if (!(fabs(A[p * N + c]) > 1e-13 * scale)) return 0;
    if (p != c)
      for (size_t t = 0; t < N; t++) {
        double a = A[c * N + t], w = W[c * N + t];
        A[c * N + t] = A[p * N + t], W[c * N + t] = W[p * N + t];
        A[p * N + t] = a, W[p * N + t] = w;
      }
    double inv = 1.0 / A[c * N + c];
    for (size_t t = 0; t < N; t++) A[c * N + t] *= inv, W[c * N + t] *= inv;
    for (size_t r = 0; r < N; r++) {
      double f = A[r * N + c];
      if (r == c || f == 0) continue;
      double *ar = A + r * N, *wr = W + r * N;
      const double *ac = A + c * N, *wc = W + c * N;
      for (size_t t = 0; t < N; t++) ar[t] -= f * ac[t], wr[t] -= f * wc[t];
    }
  }
  memcpy(A, W, sizeof(double) * N * N);
  return 1;
}

static double frob(const double *A, size_t nn) {
  double s = 0;
  for (size_t i = 0; i < nn; i++) s += A[i] * A[i];
  return sqrt(s);
}

/* M = sum over rows of y_i x_i^T, through the float dot kernel on
 * transposed copies (one dot product of length n per entry). */
static int cross(const float *x, const float *y, size_t n, uint32_t dim, double *M) {
  int ovf = 0;
  size_t bytes = vv_mul_size(vv_mul_size(n, dim, &ovf), sizeof(float), &ovf);
  float *xt = ovf ? NULL : malloc(bytes), *yt = ovf ? NULL : malloc(bytes);
  if (!xt || !yt) {
    free(xt);
    free(yt);
    return VV_E_NOMEM;
  }
  for (size_t i = 0; i < n; i++)
    for (uint32_t t = 0; t < dim; t++) {
      xt[(size_t)t * n + i] = x[i * dim + t];
      yt[(size_t)t * n + i] = y[i * dim + t];
    }
  vv_dist_fn dot = vv_kernels_best()->dot;
  for (uint32_t a = 0; a < dim; a++)
    for (uint32_t b = 0; b < dim; b++) M[(size_t)a * dim + b] = dot(yt + (size_t)a * n, xt + (size_t)b * n, n);
  free(xt);
  free(yt);
  return VV_OK;
}

int vv_rot_procrustes(const float *x, const float *y, size_t n, uint32_t dim, float *R) {
  if (!x || !y || !R || n == 0 || dim == 0) return VV_E_INVALID;
  size_t nn = (size_t)dim * dim;
  double *X = dmatrix(dim), *Xi = dmatrix(dim), *W = dmatrix(dim);
  int rc = X && Xi && W ? cross(x, y, n, dim, X) : VV_E_NOMEM;
  if (rc == VV_OK) {
    double ridge = 1e-9 * frob(X, nn) / sqrt((double)dim);
    for (int it = 0; it < 60; it++) {
      memcpy(Xi, X, sizeof(double) * nn);
      if (!invert(Xi, W, dim)) { /* singular: nudge it, and try again */
        ridge = ridge > 0 ? ridge * 100 : 1e-12;
        for (uint32_t i = 0; i < dim; i++) X[(size_t)i * dim + i] += ridge;
        continue;
      }
      /* Scaling for fast convergence while far off; plain Newton near the end. */
      double g = sqrt(frob(Xi, nn) / frob(X, nn));
      double delta = 0, size = 0;
      for (uint32_t i = 0; i < dim; i++)
        for (uint32_t j = 0; j < dim; j++) {
          double v = 0.5 * (g * X[(size_t)i * dim + j] + Xi[(size_t)j * dim + i] / g);
          double d = v - X[(size_t)i * dim + j];
          delta += d * d;
          size += v * v;
          W[(size_t)i * dim + j] = v;
        }
      memcpy(X, W, sizeof(double) * nn);
      if (delta < 1e-22 * size) break;
    }
    for (size_t i = 0; i < nn; i++) R[i] = (float)X[i];
  }
  free(X);
  free(Xi);
  free(W);
  return rc;
}
