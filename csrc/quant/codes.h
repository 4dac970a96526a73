/*
 * quant/codes.h: compact in-memory codes of float vectors, one interface
 * over every kind, for a graph that walks on approximate distances and
 * re-ranks its best candidates with exact vectors.
 *
 * Kinds (bytes per code at dim 384 in brackets):
 *   VV_CODE_PQ      product quantisation, one byte per subquantiser
 *                   (quant/pq.h) [m]
 *   VV_CODE_OPQ     PQ after a learnt rotation (Ge et al. 2013, the
 *                   non-parametric alternation; quant/opq.h) [m]
 *   VV_CODE_RABITQ  RaBitQ (Gao & Long 2024) and its extended multi-bit
 *                   form: a random rotation about the data's mean, `bits`
 *                   per dimension, and three floats per vector for the
 *                   unbiased estimator and its error bound
 *                   (quant/rabitq.h) [bits * 48 + 12]
 *   VV_CODE_SQ4     4-bit scalar quantisation over per-dimension ranges
 *                   (quant/sq4.h) [196]
 *
 * Distances are on the graph's scale, smaller = nearer: squared L2 when
 * trained with l2 != 0, else the negated inner product (dot, and cosine
 * over unit vectors). A distance is an estimate of that of the exact
 * stored vector.
 *
 * Use:
 *   vv_codes *c;  rc = vv_codes_train(&params, sample, n, dim, l2, &c);
 *   uint8_t code[vv_codes_code_bytes(c)];  rc = vv_codes_encode(c, x, code);
 *   void *st = malloc(vv_codes_state_bytes(c));  rc = vv_codes_query(c, q, st);
 *   float d = vv_codes_distance(c, st, code);
 *   vv_codes_free(c);
 *
 * A vv_codes is immutable after train or load: every function taking a
 * const vv_codes * may run on any number of threads at once. A query state
 * belongs to one thread at a time (it is written only by vv_codes_query).
 * Pointers are borrowed for the call; outputs are caller-allocated.
 *
 * Saved parameters (vv_codes_save / vv_codes_load), all little-endian:
 *   0   4  magic "VVCQ"
 *   4   2  u16 layout version, 1
 *   6   1  u8 kind (vv_code_kind)
 *   7   1  u8 metric: 1 = l2, 0 = inner product
 *   8   4  u32 dim
 *   12  4  u32 a: PQ/OPQ m; RaBitQ bits; SQ4 4
 *   16  4  u32 b: PQ/OPQ ksub (1..256); else 0
 *   20  4  u32 reserved, 0
 *   24  -  float32 arrays, by kind:
 *          PQ      centroids[m * ksub * (dim / m)] (vv_pq.centroids layout)
 *          OPQ     rotation[dim * dim] (row-major, x -> R x), then the
 *                  centroids of the PQ over rotated vectors as for PQ
 *          RABITQ  center[dim], rotation[dim * dim]
 *          SQ4     lo[dim], step[dim] (dimension d decodes to lo + step * c)
 * and nothing after them. vv_codes_load checks every field, the exact
 * length and that every float is finite (steps also non-negative), and
 * returns VV_E_CORRUPT for any violation; it never trusts a length.
 *
 * Codes themselves (what vv_codes_encode writes), for the session format:
 *   PQ, OPQ  m bytes, one centroid index per subquantiser
 *   RABITQ   `bits` planes of ceil(dim / 8) bytes (plane b holds bit b of
 *            each dimension's level, dimension d at byte d / 8, bit d % 8),
 *            then float32 f_add, f_ip, f_err (rabitq.h)
 *   SQ4      4 planes as above, then float32 ||decoded||^2
 * Codes are only meaningful with the parameters that made them.
 */
#ifndef VV_CODES_H
#define VV_CODES_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"

typedef enum vv_code_kind {
  VV_CODE_PQ = 1,
  VV_CODE_OPQ = 2,
  VV_CODE_RABITQ = 3,
  VV_CODE_SQ4 = 4
} vv_code_kind;

typedef struct vv_codes_params {
  vv_code_kind kind;
  uint32_t m;      /* PQ, OPQ: subquantisers = bytes per code; must divide dim; 0 = vv_pq_choose_m(dim) */
  uint32_t bits;   /* RABITQ: bits per dimension, 1..4; 0 = 1 */
  uint32_t iters;  /* PQ, OPQ: k-means rounds; 0 = 10 */
  uint32_t rounds; /* OPQ: alternations of (train PQ, fit rotation); 0 = 4 */
  uint64_t seed;   /* the result depends on the data and the seed only */
  unsigned threads; /* for training; 0 = 1 */
} vv_codes_params;

typedef struct vv_codes vv_codes;

/*
 * Learns the parameters of p->kind from n vectors (row-major, dim floats
 * each; for cosine, unit vectors). *out is set on success only.
 * VV_E_INVALID (NULL pointer, n or dim 0, unknown kind, m not dividing dim,
 * bits outside 0..4, a NaN or infinity in the data), VV_E_NOMEM.
 */
VV_NODISCARD int vv_codes_train(const vv_codes_params *p, const float *data, size_t n, uint32_t dim, int l2,
                                vv_codes **out);
/* NULL is a no-op. */
void vv_codes_free(vv_codes *c);

vv_code_kind vv_codes_kind(const vv_codes *c);
uint32_t vv_codes_dim(const vv_codes *c);
int vv_codes_l2(const vv_codes *c);
/* Bytes of one code. */
size_t vv_codes_code_bytes(const vv_codes *c);
/* Bytes of one query state (for vv_codes_query); any malloc'd block of
 * that size does (16-byte alignment is enough). */
size_t vv_codes_state_bytes(const vv_codes *c);
/* The kernel set distances use ("scalar", "avx2", "avx512"). */
const char *vv_codes_isa(const vv_codes *c);

/* code[vv_codes_code_bytes] for x[dim]. VV_E_INVALID (NULL), VV_E_NOMEM
 * (only for dim > 1024 under OPQ/RaBitQ, which need a scratch vector). */
VV_NODISCARD int vv_codes_encode(const vv_codes *c, const float *x, uint8_t *code);

/* An approximate x[dim] from a code: what link selection uses while
 * inserting in code mode. VV_E_INVALID, VV_E_NOMEM as for encode. */
VV_NODISCARD int vv_codes_decode(const vv_codes *c, const uint8_t *code, float *x);

/* Prepares `state` (vv_codes_state_bytes) for distances to query q[dim].
 * VV_E_INVALID for a NULL pointer. */
VV_NODISCARD int vv_codes_query(const vv_codes *c, const float *q, void *state);

/* The estimated distance from the query behind `state` to one code. */
float vv_codes_distance(const vv_codes *c, const void *state, const uint8_t *code);
/* out[i] = distance to codes[i], for i < n (scattered codes, as a graph
 * node's neighbours are). */
void vv_codes_distance_batch(const vv_codes *c, const void *state, const uint8_t *const *codes, size_t n, float *out);
/* out[i] = distance to the code at codes + i * vv_codes_code_bytes(c). */
void vv_codes_distance_scan(const vv_codes *c, const void *state, const uint8_t *codes, size_t n, float *out);

/*
 * The estimate, and in *err a half-width such that the exact distance lies
 * in [estimate - err, estimate + err] with high probability (RaBitQ's
 * bound, epsilon0 = 1.9). Kinds without a bound set *err to INFINITY.
 */
float vv_codes_distance_bound(const vv_codes *c, const void *state, const uint8_t *code, float *err);

/*
 * The learnt parameters as a blob (layout above). With buf NULL, only
 * *len is set (the size needed). VV_E_INVALID if cap is too small.
 */
VV_NODISCARD int vv_codes_save(const vv_codes *c, uint8_t *buf, size_t cap, size_t *len);
/* Rebuilds a vv_codes from a blob, which may be untrusted: VV_E_CORRUPT
 * for anything but a well-formed blob, VV_E_INVALID for NULL pointers,
 * VV_E_NOMEM. *out is set on success only. */
VV_NODISCARD int vv_codes_load(const uint8_t *buf, size_t len, vv_codes **out);

#endif
