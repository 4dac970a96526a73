/*
 * quant/codes.c: the one interface over every code kind (codes.h): the
 * dispatch by kind, the query state's layout, and the parameter blob.
 * What each kind computes lives in its own module (pq, opq, rabitq, sq4);
 * the kernels in codes_scalar.c and codes_x86.c.
 */
#include "codes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "codes_kern.h"
#include "opq.h"
#include "pq.h"
#include "rabitq.h"
#include "sq4.h"

#define BLOB_MAGIC "VVCQ"
#define BLOB_VERSION 1
#define BLOB_HEADER 24
/* A query state: 16 floats of per-query constants, then the table (PQ,
 * OPQ) or the quantised query (RaBitQ, SQ4), then 2 * dim floats of scratch
 * for rotations; each part starts on a cache line. */
#define STATE_HEAD 64
/* Dimensions up to this encode and decode with scratch on the stack. */
#define STACK_DIM 1024

struct vv_codes {
  vv_code_kind kind;
  uint32_t dim;
  int l2;
  const vv_code_kernels *kern;
  size_t code_bytes;
  size_t scratch_off; /* where a state's scratch starts */
  size_t state_bytes;
  union {
    vv_pq pq;
    vv_opq opq;
    vv_rabitq rq;
    vv_sq4 sq;
  } u;
};

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Fills in what follows from the kind's parameters. */
static void finish(vv_codes *c) {
  size_t payload = 0;
  switch (c->kind) {
  case VV_CODE_PQ:
    c->code_bytes = c->u.pq.m;
    payload = sizeof(float) * c->u.pq.m * c->u.pq.ksub;
    break;
  case VV_CODE_OPQ:
    c->code_bytes = c->u.opq.pq.m;
    payload = sizeof(float) * c->u.opq.pq.m * c->u.opq.pq.ksub;
    break;
  case VV_CODE_RABITQ:
    c->code_bytes = vv_rabitq_code_bytes(&c->u.rq);
    payload = vv_codes_qpad(c->u.rq.pbytes);
    break;
  case VV_CODE_SQ4:
    c->code_bytes = vv_sq4_code_bytes(&c->u.sq);
    payload = vv_codes_qpad(c->u.sq.pbytes);
    break;
  }
  c->scratch_off = STATE_HEAD + round64(payload);
  c->state_bytes = c->scratch_off + 2 * sizeof(float) * c->dim;
  c->kern = vv_code_kernels_best();
}

void vv_codes_free(vv_codes *c) {
  if (!c) return;
  switch (c->kind) {
  case VV_CODE_PQ:
    vv_pq_destroy(&c->u.pq);
    break;
  case VV_CODE_OPQ:
    vv_opq_destroy(&c->u.opq);
    break;
  case VV_CODE_RABITQ:
    vv_rabitq_destroy(&c->u.rq);
    break;
  case VV_CODE_SQ4:
    vv_sq4_destroy(&c->u.sq);
    break;
  }
  free(c);
}

int vv_codes_train(const vv_codes_params *p, const float *data, size_t n, uint32_t dim, int l2, vv_codes **out) {
  if (!p || !data || !out || n == 0 || dim == 0) return VV_E_INVALID;
  vv_codes *c = calloc(1, sizeof *c);
  if (!c) return VV_E_NOMEM;
  c->kind = p->kind;
  c->dim = dim;
  c->l2 = l2 != 0;
  uint32_t m = p->m ? p->m : vv_pq_choose_m(dim), iters = p->iters ? p->iters : 10;
  int rc;
  switch (p->kind) {
  case VV_CODE_PQ:
    rc = vv_pq_train(&c->u.pq, data, n, dim, m, iters, p->seed, p->threads);
    break;
  case VV_CODE_OPQ:
    rc = vv_opq_train(&c->u.opq, data, n, dim, m, p->rounds ? p->rounds : 4, iters, p->seed, p->threads);
    break;
  case VV_CODE_RABITQ:
    rc = vv_rabitq_train(&c->u.rq, data, n, dim, p->bits ? p->bits : 1, p->seed);
    break;
  case VV_CODE_SQ4:
    rc = vv_sq4_train(&c->u.sq, data, n, dim);
    break;
  default:
    rc = VV_E_INVALID;
  }
  if (rc != VV_OK) {
    free(c); /* a failed train leaves its module empty */
    return rc;
  }
  finish(c);
  *out = c;
  return VV_OK;
}

vv_code_kind vv_codes_kind(const vv_codes *c) { return c->kind; }
uint32_t vv_codes_dim(const vv_codes *c) { return c->dim; }
int vv_codes_l2(const vv_codes *c) { return c->l2; }
size_t vv_codes_code_bytes(const vv_codes *c) { return c->code_bytes; }
size_t vv_codes_state_bytes(const vv_codes *c) { return c->state_bytes; }
const char *vv_codes_isa(const vv_codes *c) { return c->kern->name; }

/* Encodes x into code_out, or decodes code into x_out: one switch, as
 * both need the same scratch (2 * dim floats, on the stack up to
 * STACK_DIM dimensions). */
static int transcode(const vv_codes *c, const float *x, uint8_t *code_out, const uint8_t *code, float *x_out) {
  float stack[2 * STACK_DIM], *s = stack;
  if (c->dim > STACK_DIM && (c->kind == VV_CODE_OPQ || c->kind == VV_CODE_RABITQ)) {
    s = malloc(2 * sizeof(float) * c->dim);
    if (!s) return VV_E_NOMEM;
  }
  switch (c->kind) {
  case VV_CODE_PQ:
    if (x) vv_pq_encode(&c->u.pq, x, code_out);
    else vv_pq_decode(&c->u.pq, code, x_out);
    break;
  case VV_CODE_OPQ:
    if (x) vv_opq_encode(&c->u.opq, x, code_out, s);
    else vv_opq_decode(&c->u.opq, code, x_out, s);
    break;
  case VV_CODE_RABITQ:
    if (x) vv_rabitq_encode(&c->u.rq, x, code_out, s);
    else vv_rabitq_decode(&c->u.rq, code, x_out, s);
    break;
  case VV_CODE_SQ4:
    if (x) vv_sq4_encode(&c->u.sq, x, code_out);
    else vv_sq4_decode(&c->u.sq, code, x_out);
    break;
  }
  if (s != stack) free(s);
  return VV_OK;
}

int vv_codes_encode(const vv_codes *c, const float *x, uint8_t *code) {
  return c && x && code ? transcode(c, x, code, NULL, NULL) : VV_E_INVALID;
}

int vv_codes_decode(const vv_codes *c, const uint8_t *code, float *x) {
  return c && x && code ? transcode(c, NULL, NULL, code, x) : VV_E_INVALID;
}

int vv_codes_query(const vv_codes *c, const float *q, void *state) {
  if (!c || !q || !state) return VV_E_INVALID;
  float *head = state;
  void *payload = (char *)state + STATE_HEAD;
  float *scratch = (float *)((char *)state + c->scratch_off);
  switch (c->kind) {
  case VV_CODE_PQ:
    vv_pq_table(&c->u.pq, q, c->l2, payload);
    break;
  case VV_CODE_OPQ:
    vv_opq_table(&c->u.opq, q, c->l2, payload, scratch);
    break;
  case VV_CODE_RABITQ:
    vv_rabitq_query(&c->u.rq, q, c->l2, head, payload, scratch);
    break;
  case VV_CODE_SQ4:
    vv_sq4_query(&c->u.sq, q, c->l2, head, payload);
    break;
  }
  return VV_OK;
}

static inline float distance(const vv_codes *c, const void *state, const uint8_t *code, float *err) {
  const float *head = state;
  const void *payload = (const char *)state + STATE_HEAD;
  switch (c->kind) {
  case VV_CODE_PQ:
    return c->kern->adc(payload, c->u.pq.ksub, c->u.pq.m, code);
  case VV_CODE_OPQ:
    return c->kern->adc(payload, c->u.opq.pq.ksub, c->u.opq.pq.m, code);
  case VV_CODE_RABITQ:
    return vv_rabitq_distance(&c->u.rq, head, code,
                              c->kern->planes(code, c->u.rq.bits, c->u.rq.pbytes, payload), err);
  case VV_CODE_SQ4:
    return vv_sq4_distance(&c->u.sq, head, code, c->kern->planes(code, 4, c->u.sq.pbytes, payload));
  }
  return INFINITY;
}

float vv_codes_distance(const vv_codes *c, const void *state, const uint8_t *code) {
  return distance(c, state, code, NULL);
}

float vv_codes_distance_bound(const vv_codes *c, const void *state, const uint8_t *code, float *err) {
  *err = INFINITY;
  return distance(c, state, code, err);
}

void vv_codes_distance_batch(const vv_codes *c, const void *state, const uint8_t *const *codes, size_t n,
                             float *out) {
  for (size_t i = 0; i < n; i++) {
    if (i + 2 < n) VV_PREFETCH(codes[i + 2]);
    out[i] = distance(c, state, codes[i], NULL);
  }
}

void vv_codes_distance_scan(const vv_codes *c, const void *state, const uint8_t *codes, size_t n, float *out) {
  for (size_t i = 0; i < n; i++) out[i] = distance(c, state, codes + i * c->code_bytes, NULL);
}

/* ---- the parameter blob ---- */

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *put_floats(uint8_t *p, const float *f, size_t n) {
  for (size_t i = 0; i < n; i++, p += 4) {
    uint32_t u;
    memcpy(&u, &f[i], 4);
    put_u32(p, u);
  }
  return p;
}

/* The kind's float arrays in blob order: up to two (pointer, count). */
static void arrays(const vv_codes *c, const float *a[2], size_t na[2], uint32_t *pa, uint32_t *pb) {
  size_t dd = (size_t)c->dim * c->dim;
  a[0] = a[1] = NULL, na[0] = na[1] = 0, *pa = *pb = 0;
  switch (c->kind) {
  case VV_CODE_PQ:
    *pa = c->u.pq.m, *pb = c->u.pq.ksub;
    a[0] = c->u.pq.centroids, na[0] = (size_t)c->u.pq.ksub * c->dim;
    return;
  case VV_CODE_OPQ:
    *pa = c->u.opq.pq.m, *pb = c->u.opq.pq.ksub;
    a[0] = c->u.opq.rot, na[0] = dd;
    a[1] = c->u.opq.pq.centroids, na[1] = (size_t)c->u.opq.pq.ksub * c->dim;
    return;
  case VV_CODE_RABITQ:
    *pa = c->u.rq.bits, *pb = 0;
    a[0] = c->u.rq.center, na[0] = c->dim;
    a[1] = c->u.rq.rot, na[1] = dd;
    return;
  case VV_CODE_SQ4:
    *pa = 4, *pb = 0;
    a[0] = c->u.sq.lo, na[0] = c->dim;
    a[1] = c->u.sq.step, na[1] = c->dim;
    return;
  }
}

int vv_codes_save(const vv_codes *c, uint8_t *buf, size_t cap, size_t *len) {
  if (!c || !len) return VV_E_INVALID;
  const float *a[2];
  size_t na[2];
  uint32_t pa, pb;
  arrays(c, a, na, &pa, &pb);
  *len = BLOB_HEADER + 4 * (na[0] + na[1]);
  if (!buf) return VV_OK;
  if (cap < *len) return VV_E_INVALID;
  memcpy(buf, BLOB_MAGIC, 4);
  buf[4] = BLOB_VERSION & 0xff;
  buf[5] = BLOB_VERSION >> 8;
  buf[6] = (uint8_t)c->kind;
  buf[7] = (uint8_t)c->l2;
  put_u32(buf + 8, c->dim);
  put_u32(buf + 12, pa);
  put_u32(buf + 16, pb);
  put_u32(buf + 20, 0);
  uint8_t *p = put_floats(buf + BLOB_HEADER, a[0], na[0]);
  put_floats(p, a[1], na[1]);
  return VV_OK;
}

/* The float counts of the blob's arrays for a header, or 0 (corrupt). */
static int blob_shape(uint8_t kind, uint32_t dim, uint32_t pa, uint32_t pb, size_t n[2]) {
  int ovf = 0;
  size_t dd = vv_mul_size(dim, dim, &ovf);
  n[0] = n[1] = 0;
  switch (kind) {
  case VV_CODE_PQ:
  case VV_CODE_OPQ:
    if (pa == 0 || dim % pa || pb == 0 || pb > 256) return 0;
    n[0] = kind == VV_CODE_OPQ ? dd : vv_mul_size(pb, dim, &ovf);
    n[1] = kind == VV_CODE_OPQ ? vv_mul_size(pb, dim, &ovf) : 0;
    break;
  case VV_CODE_RABITQ:
    if (pa == 0 || pa > VV_RABITQ_MAX_BITS || pb) return 0;
    n[0] = dim, n[1] = dd;
    break;
  case VV_CODE_SQ4:
    if (pa != 4 || pb) return 0;
    n[0] = n[1] = dim;
    break;
  default:
    return 0;
  }
  return !ovf && n[0] + n[1] >= n[0] && n[0] + n[1] <= (SIZE_MAX - BLOB_HEADER) / 4;
}

static float *get_floats(const uint8_t *p, size_t n) {
  float *f = malloc(sizeof(float) * (n ? n : 1));
  for (size_t i = 0; f && i < n; i++) {
    uint32_t u = get_u32(p + 4 * i);
    memcpy(&f[i], &u, 4);
  }
  return f;
}

int vv_codes_load(const uint8_t *buf, size_t len, vv_codes **out) {
  if (!buf || !out) return VV_E_INVALID;
  if (len < BLOB_HEADER || memcmp(buf, BLOB_MAGIC, 4) || buf[4] != BLOB_VERSION || buf[5] != 0 || buf[7] > 1)
    return VV_E_CORRUPT;
  uint8_t kind = buf[6];
  uint32_t dim = get_u32(buf + 8), pa = get_u32(buf + 12), pb = get_u32(buf + 16);
  size_t n[2];
  if (dim == 0 || get_u32(buf + 20) != 0 || !blob_shape(kind, dim, pa, pb, n) ||
      len - BLOB_HEADER != 4 * (n[0] + n[1]))
    return VV_E_CORRUPT;
  float *a = get_floats(buf + BLOB_HEADER, n[0]), *b = get_floats(buf + BLOB_HEADER + 4 * n[0], n[1]);
  vv_codes *c = calloc(1, sizeof *c);
  int rc = a && b && c ? VV_OK : VV_E_NOMEM;
  if (rc == VV_OK) {
    c->kind = (vv_code_kind)kind;
    c->dim = dim;
    c->l2 = buf[7];
    switch (c->kind) {
    case VV_CODE_PQ:
      rc = vv_pq_init(&c->u.pq, dim, pa, pb, a);
      break;
    case VV_CODE_OPQ:
      rc = vv_opq_init(&c->u.opq, dim, pa, pb, a, b);
      break;
    case VV_CODE_RABITQ:
      rc = vv_rabitq_init(&c->u.rq, dim, pa, a, b);
      break;
    case VV_CODE_SQ4:
      rc = vv_sq4_init(&c->u.sq, dim, a, b);
      break;
    }
    /* Shapes were checked above, so what the modules still reject is the values. */
    if (rc == VV_E_INVALID) rc = VV_E_CORRUPT;
  }
  free(a);
  free(b);
  if (rc != VV_OK) {
    free(c); /* a failed init leaves its module empty */
    return rc;
  }
  finish(c);
  *out = c;
  return VV_OK;
}
