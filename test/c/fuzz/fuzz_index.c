/*
 * test/c/fuzz/fuzz_index.c: libFuzzer target for the index segment reader
 * (vv_index_decode_begin / vv_index_decode_next).
 *
 * Every input must end in VV_END (clean end) or VV_E_CORRUPT with
 * no out-of-bounds read or undefined behaviour. An accepted segment is
 * re-encoded node by node, in the format it was read in (format 2 with its
 * codebook and codes); the copy must decode to the same header, codebook
 * and nodes, and re-encoding the copy must reproduce it byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

static void check(int ok) {
  if (!ok) abort();
}

static int encode_node(const vv_node_view *v, int v2, vv_buf *out) {
  static uint32_t store[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS];
  const uint32_t *links[VV_CODEC_MAX_LEVELS];
  for (uint32_t l = 0; l < v->nlevels; l++) {
    for (uint32_t k = 0; k < v->counts[l]; k++) store[l][k] = vv_le32(v->links[l] + 4 * (size_t)k);
    links[l] = store[l];
  }
  vv_node_in in = {.slot = v->slot, .id = v->id, .id_len = v->id_len, .chunk = v->chunk, .row = v->row,
                   .nlevels = v->nlevels, .links = links, .counts = v->counts, .v2 = v2, .code = v->code,
                   .code_len = v->code_len};
  return vv_index_encode_node(out, &in);
}

static int nodes_equal(const vv_node_view *a, const vv_node_view *b) {
  if (a->slot != b->slot || a->chunk != b->chunk || a->row != b->row || a->nlevels != b->nlevels) return 0;
  if (!a->id != !b->id || a->id_len != b->id_len || (a->id && memcmp(a->id, b->id, a->id_len))) return 0;
  for (uint32_t l = 0; l < a->nlevels; l++)
    if (a->counts[l] != b->counts[l] || (a->counts[l] && memcmp(a->links[l], b->links[l], a->counts[l] * 4u)))
      return 0;
  if (!a->code != !b->code || a->code_len != b->code_len || (a->code && memcmp(a->code, b->code, a->code_len)))
    return 0;
  return 1;
}

static int headers_equal(const vv_index_reader *a, const vv_index_reader *b) {
  if (a->v2 != b->v2 || a->has_codebook != b->has_codebook) return 0;
  if (!a->has_codebook) return 1;
  const vv_codebook_view *x = &a->cb, *y = &b->cb;
  return x->m == y->m && x->ksub == y->ksub && x->dsub == y->dsub && x->trained == y->trained &&
         memcmp(x->centroids, y->centroids, (size_t)x->m * x->ksub * x->dsub * 4) == 0;
}

/* The header again, in the format it was read in. */
static int encode_begin(const vv_index_reader *r, uint64_t seq, int base, uint32_t count, vv_buf *out) {
  if (!r->v2) return vv_index_encode_begin(out, seq, base, count);
  if (!r->has_codebook) return vv_index_encode_begin_v2(out, seq, base, count, NULL);
  size_t nf = (size_t)r->cb.m * r->cb.ksub * r->cb.dsub; /* bounded by the input's length */
  float *cents = malloc(nf * sizeof *cents);
  check(cents != NULL);
  vv_read_f32le(r->cb.centroids, nf, cents);
  vv_codebook_in cb = {r->cb.m, r->cb.ksub, r->cb.dsub, r->cb.trained, cents};
  int rc = vv_index_encode_begin_v2(out, seq, base, count, &cb);
  free(cents);
  return rc;
}

/* Decodes p fully; if `out` is set, re-encodes it there. VV_OK or VV_E_CORRUPT. */
static int walk(const uint8_t *p, size_t n, vv_buf *out, const uint8_t *twin, size_t twin_len) {
  vv_index_reader r, t;
  uint64_t seq, tseq;
  int base, tbase;
  uint32_t count, tcount, seen = 0;
  int rc = vv_index_decode_begin(&r, p, n, &seq, &base, &count);
  if (rc) return rc;
  check(r.v2 == 0 || r.v2 == 1);
  check(!r.has_codebook || r.v2);
  if (out) check(encode_begin(&r, seq, base, count, out) == VV_OK);
  if (twin) {
    check(vv_index_decode_begin(&t, twin, twin_len, &tseq, &tbase, &tcount) == VV_OK);
    check(tseq == seq && tbase == base && tcount == count);
    check(headers_equal(&r, &t));
  }
  vv_node_view nd, tn;
  while ((rc = vv_index_decode_next(&r, &nd)) == VV_OK) {
    seen++;
    check(nd.nlevels <= VV_CODEC_MAX_LEVELS);
    check(r.v2 || nd.code == NULL);
    check(!nd.code || (nd.code_len >= 1 && nd.code_len <= VV_CODEC_MAX_CODE));
    if (out) check(encode_node(&nd, r.v2, out) == VV_OK);
    if (twin) {
      check(vv_index_decode_next(&t, &tn) == VV_OK);
      check(nodes_equal(&nd, &tn));
    }
  }
  check(rc == VV_END || rc == VV_E_CORRUPT);
  if (rc == VV_END) {
    check(seen == count);
    if (twin) check(vv_index_decode_next(&t, &tn) == VV_END);
    rc = VV_OK;
  }
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vv_buf y = {0}, z = {0};
  int rc = walk(data, size, &y, NULL, 0);
  check(rc == VV_OK || rc == VV_E_CORRUPT);
  if (rc == VV_OK) {
    check(walk(y.data, y.len, &z, data, size) == VV_OK);
    check(z.len == y.len && memcmp(z.data, y.data, y.len) == 0);
  }
  vv_buf_free(&y);
  vv_buf_free(&z);
  return 0;
}
