/*
 * distance/distance.h: distance kernels over float32 vectors.
 *
 * Owns: the scalar reference kernels, the SIMD variants (AVX2+FMA on x86-64,
 * NEON on arm64) and the dispatcher that picks one set once, at first use,
 * from the CPU's features. Kernels are named <op>_f32_<isa>.
 *
 * Every kernel is pure: it reads `n` floats from each pointer (no alignment
 * required), writes nothing, and never fails. There are two kernels, and
 * they return raw sums, not distances:
 *   l2sq : sum (a[i]-b[i])^2, the squared Euclidean distance (smaller is nearer)
 *   dot  : sum a[i]*b[i], the plain inner product (LARGER is nearer)
 * Callers turn a kernel's result into an internal distance, where smaller
 * is always nearer, by multiplying it with a sign: +1 for l2, -1 for dot
 * and cosine (cosine vectors are unit length, so -dot is cosine distance
 * minus one). HNSW and the exact scan measure so (hnsw.c, flat.c), and the
 * database turns that into what callers see (db.c: cosine distance =
 * 1 + internal, dot distance = internal = -dot, l2 distance = sqrt).
 */
#ifndef VV_DISTANCE_H
#define VV_DISTANCE_H

#include <stddef.h>

typedef float (*vv_dist_fn)(const float *a, const float *b, size_t n);

typedef enum vv_isa {
  VV_ISA_SCALAR = 0,
  VV_ISA_AVX2 = 1,
  VV_ISA_NEON = 2
} vv_isa;

typedef struct vv_kernels {
  vv_isa isa;
  vv_dist_fn l2sq;   /* squared L2 */
  vv_dist_fn dot;    /* inner product sum a*b, not negated: larger is nearer */
} vv_kernels;

/* The kernels chosen for this CPU; decided once (thread-safe), then cached. */
const vv_kernels *vv_kernels_best(void);
/* The kernels for one ISA, or NULL if this build or CPU cannot run it. */
const vv_kernels *vv_kernels_for(vv_isa isa);
const char *vv_isa_name(vv_isa isa);

/* Scalar reference kernels, always available. */
float vv_l2sq_f32_scalar(const float *a, const float *b, size_t n);
float vv_dot_f32_scalar(const float *a, const float *b, size_t n);

/* Scale v to unit length in place; returns the original norm (0 if v is all zeros, left untouched). */
double vv_normalize_f32(float *v, size_t n);

/*
 * SIMD variants. They exist only in builds for the matching architecture and
 * may fault with an illegal instruction on a CPU without the feature, so call
 * them only through the tables from vv_kernels_best()/vv_kernels_for().
 * Declared here so each definition is checked against its prototype.
 */
#if defined(__x86_64__) || defined(_M_X64)
float vv_l2sq_f32_avx2(const float *a, const float *b, size_t n);
float vv_dot_f32_avx2(const float *a, const float *b, size_t n);
#endif
#if defined(__aarch64__)
float vv_l2sq_f32_neon(const float *a, const float *b, size_t n);
float vv_dot_f32_neon(const float *a, const float *b, size_t n);
#endif

#endif
