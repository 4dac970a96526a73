/*
 * test/c/fuzz/fuzz_chunk.c: libFuzzer target for vv_chunk_decode.
 *
 * Every input must decode to VV_OK or VV_E_CORRUPT without reading outside
 * it (ASan) or undefined behaviour (UBSan). An accepted input must survive
 * decode -> encode -> decode with identical rows, and the re-encoding must
 * be a fixed point (encode(decode(y)) == y).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

/* The dim check comes early, so trying several costs little. */
static const uint32_t k_dims[] = {1, 2, 3, 4, 5, 6, 7, 8, 16, 384, 768, 784, 1536, 65536};

static void check(int ok) {
  if (!ok) abort();
}

static int views_equal(const vv_chunk_view *a, const vv_chunk_view *b) {
  if (a->seq != b->seq || a->dim != b->dim || a->count != b->count) return 0;
  size_t n = a->count;
  if (n && (memcmp(a->slots, b->slots, n * 4) || memcmp(a->vectors, b->vectors, n * a->dim * 4))) return 0;
  for (size_t i = 0; i < n; i++) {
    if (!a->ids[i] != !b->ids[i] || !a->metas[i] != !b->metas[i]) return 0;
    if (a->id_lens[i] != b->id_lens[i] || a->meta_lens[i] != b->meta_lens[i]) return 0;
    if (a->ids[i] && memcmp(a->ids[i], b->ids[i], a->id_lens[i])) return 0;
    if (a->metas[i] && a->meta_lens[i] && memcmp(a->metas[i], b->metas[i], a->meta_lens[i])) return 0;
  }
  return 1;
}

/* Encodes a view (vectors and slots converted back to host order). */
static int encode_view(const vv_chunk_view *v, vv_buf *out) {
  size_t n = v->count ? v->count : 1;
  uint32_t *slots = calloc(n, 4);
  float *flat = calloc(n * v->dim, sizeof(float));
  const float **rows = calloc(n, sizeof *rows);
  int rc = VV_E_NOMEM;
  if (slots && flat && rows) {
    for (size_t i = 0; i < v->count; i++) {
      slots[i] = vv_le32(v->slots + 4 * i);
      rows[i] = flat + i * v->dim;
    }
    vv_read_f32le(v->vectors, (size_t)v->count * v->dim, flat);
    vv_chunk_in in = {v->seq, v->dim, v->count, slots, rows, v->ids, v->id_lens, v->metas, v->meta_lens};
    rc = vv_chunk_encode(&in, out);
  }
  free(slots);
  free(flat);
  free((void *)rows);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (size_t d = 0; d < sizeof k_dims / sizeof *k_dims; d++) {
    vv_chunk_view v, w;
    int rc = vv_chunk_decode(data, size, k_dims[d], &v);
    check(rc == VV_OK || rc == VV_E_CORRUPT);
    if (rc) continue;
    vv_buf y = {0}, z = {0};
    check(encode_view(&v, &y) == VV_OK);
    check(vv_chunk_decode(y.data, y.len, k_dims[d], &w) == VV_OK);
    check(views_equal(&v, &w));
    check(encode_view(&w, &z) == VV_OK);
    check(z.len == y.len && memcmp(z.data, y.data, y.len) == 0);
    vv_chunk_view_free(&w);
    vv_chunk_view_free(&v);
    vv_buf_free(&y);
    vv_buf_free(&z);
  }
  return 0;
}
