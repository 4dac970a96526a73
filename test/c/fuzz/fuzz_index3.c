/*
 * test/c/fuzz/fuzz_index3.c: libFuzzer target for the format-3 index
 * segment reader (csrc/codec/index3.h), version 4 (attribute columns,
 * field paths) included.
 *
 * Every input must end in VV_END or VV_E_CORRUPT with no out-of-bounds read
 * or undefined behaviour. An accepted segment is decoded a second way, its
 * blocks handed out by vv_index3_next_block and each decoded on its own,
 * which must yield the same nodes; its header alone must read as a header
 * page (vv_index3_decode_header); and it is re-encoded (header, codebook,
 * then each block from its decoded nodes), which must reproduce the input
 * byte for byte: the encoding is canonical, so a reader and a writer agree
 * on exactly one form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/index3.h"
#include "common/status.h"

static void check(int ok) {
  if (!ok) abort();
}

/* A block's nodes, copied out of the reader's scratch so they can be
 * re-encoded together. */
typedef struct copy {
  uint32_t n;
  vv_node_in *in;
  uint32_t (*counts)[VV_CODEC_MAX_LEVELS];
  const uint32_t *(*lp)[VV_CODEC_MAX_LEVELS];
  uint32_t *links; /* n * VV_INDEX3_MAX_NODE_LINKS would be too much: grown as needed */
  size_t nlinks, cap;
  size_t *link_at;
} copy;

static void copy_init(copy *c, uint32_t n) {
  memset(c, 0, sizeof *c);
  c->n = n;
  c->in = calloc(n, sizeof *c->in);
  c->counts = calloc(n, sizeof *c->counts);
  c->lp = calloc(n, sizeof *c->lp);
  c->link_at = calloc(n, sizeof *c->link_at);
  check(c->in && c->counts && c->lp && c->link_at);
}

static void copy_node(copy *c, uint32_t i, const vv_node_view *v, const uint32_t *const *l32) {
  c->in[i] = (vv_node_in){.slot = v->slot, .id = v->id, .id_len = v->id_len, .chunk = v->chunk, .row = v->row,
                          .nlevels = v->nlevels, .code = v->code, .code_len = v->code_len, .attrs = v->attrs,
                          .attrs_len = v->attrs_len};
  c->link_at[i] = c->nlinks;
  for (uint32_t l = 0; l < v->nlevels; l++) {
    if (c->nlinks + v->counts[l] > c->cap) {
      c->cap = (c->nlinks + v->counts[l]) * 2 + 64;
      c->links = realloc(c->links, c->cap * sizeof *c->links);
      check(c->links != NULL);
    }
    if (v->counts[l]) memcpy(c->links + c->nlinks, l32[l], v->counts[l] * sizeof *c->links);
    c->nlinks += v->counts[l];
    c->counts[i][l] = v->counts[l];
  }
}

/* Pointers once the links array no longer moves. */
static void copy_finish(copy *c) {
  for (uint32_t i = 0; i < c->n; i++) {
    size_t at = c->link_at[i];
    for (uint32_t l = 0; l < c->in[i].nlevels; l++) {
      c->lp[i][l] = c->links + at;
      at += c->counts[i][l];
    }
    c->in[i].links = c->lp[i];
    c->in[i].counts = c->counts[i];
  }
}

static void copy_free(copy *c) {
  free(c->in);
  free(c->counts);
  free(c->lp);
  free(c->links);
  free(c->link_at);
}

static int same_node(const vv_node_in *a, const vv_node_view *b, const uint32_t *const *l32) {
  if (a->slot != b->slot || a->chunk != b->chunk || a->row != b->row || a->nlevels != b->nlevels) return 0;
  if (a->id != b->id || a->id_len != b->id_len || a->code != b->code || a->code_len != b->code_len) return 0;
  if (a->attrs != b->attrs || a->attrs_len != b->attrs_len) return 0;
  for (uint32_t l = 0; l < a->nlevels; l++) {
    if (a->counts[l] != b->counts[l]) return 0;
    if (a->counts[l] && memcmp(a->links[l], l32[l], a->counts[l] * 4u)) return 0;
    for (uint32_t j = 0; j < a->counts[l]; j++) check(vv_le32(b->links[l] + 4 * j) == l32[l][j]);
    for (uint32_t j = 1; j < a->counts[l]; j++) check(l32[l][j - 1] <= l32[l][j]);
  }
  return 1;
}

/* The header again, as read. */
static void encode_header(const vv_index3_reader *r, uint64_t seq, int base, uint32_t count, uint32_t nb,
                          vv_buf *out) {
  vv_codebook_in cb = {0};
  float *cents = NULL;
  if (r->has_codebook) {
    size_t nf = (size_t)r->cb.m * r->cb.ksub * r->cb.dsub; /* bounded by the input's length */
    cents = malloc(nf * sizeof *cents);
    check(cents != NULL);
    vv_read_f32le(r->cb.centroids, nf, cents);
    cb = (vv_codebook_in){r->cb.m, r->cb.ksub, r->cb.dsub, r->cb.trained, cents};
  }
  vv_fields_in f = {r->nfields, r->field_ptr, r->field_len}, *fields = r->nfields ? &f : NULL;
  check(vv_index3_encode_begin(out, seq, base, count, nb, r->has_codebook ? &cb : NULL, fields) == VV_OK);
  free(cents);
}

/* Walks the segment node by node; 0 if it is not accepted. */
static int accepted(const uint8_t *data, size_t size, vv_index3_reader *r) {
  uint64_t seq;
  int base;
  uint32_t count, nb, seen = 0;
  if (vv_index3_decode_begin(r, data, size, &seq, &base, &count, &nb)) return 0;
  vv_node_view v;
  const uint32_t *l32[VV_CODEC_MAX_LEVELS];
  int rc;
  while ((rc = vv_index3_decode_next(r, &v, l32)) == VV_OK) {
    seen++;
    check(v.nlevels <= VV_CODEC_MAX_LEVELS && v.slot <= VV_INDEX3_MAX_SLOT);
    check(!v.code || (v.code >= data && v.code + v.code_len <= data + size));
    check(!v.id || ((const uint8_t *)v.id >= data && (const uint8_t *)v.id + v.id_len <= data + size));
    check(!v.attrs || (v.attrs >= data && v.attrs + v.attrs_len <= data + size));
  }
  check(rc == VV_END || rc == VV_E_CORRUPT);
  if (rc == VV_END) check(seen == count);
  return rc == VV_END;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vv_index3_reader *r = malloc(sizeof *r);
  vv_index3_block *b = malloc(sizeof *b);
  check(r && b);
  if (accepted(data, size, r)) {
    uint64_t seq;
    int base;
    uint32_t count, nb, bn, bcount;
    check(vv_index3_decode_begin(r, data, size, &seq, &base, &count, &nb) == VV_OK);
    /* The header alone (as a page of its own) reads the same. */
    vv_index3_reader *h = malloc(sizeof *h);
    uint64_t hseq;
    int hbase;
    uint32_t hcount, hnb;
    check(h != NULL);
    check(vv_index3_decode_header(h, data, r->pos, &hseq, &hbase, &hcount, &hnb) == VV_OK);
    check(hseq == seq && hbase == base && hcount == count && hnb == nb && h->has_codebook == r->has_codebook);
    check(h->nfields == r->nfields);
    free(h);
    vv_buf out = {0};
    encode_header(r, seq, base, count, nb, &out);
    const unsigned char *bp;
    size_t blen;
    int rc;
    while ((rc = vv_index3_next_block(r, &bp, &blen, &bn)) == VV_OK) {
      check(vv_index3_block_begin(b, bp, blen, &bcount) == VV_OK && bcount == bn);
      copy c;
      copy_init(&c, bn);
      vv_node_view v;
      const uint32_t *l32[VV_CODEC_MAX_LEVELS];
      for (uint32_t i = 0; i < bn; i++) {
        check(vv_index3_block_next(b, &v, l32) == VV_OK);
        copy_node(&c, i, &v, l32);
      }
      check(vv_index3_block_next(b, &v, l32) == VV_END);
      copy_finish(&c);
      /* The block again from its start: the same nodes. */
      check(vv_index3_block_begin(b, bp, blen, &bcount) == VV_OK);
      for (uint32_t i = 0; i < bn; i++) {
        check(vv_index3_block_next(b, &v, l32) == VV_OK);
        check(same_node(&c.in[i], &v, l32));
      }
      check(vv_index3_encode_block(c.in, bn, &out) == VV_OK);
      copy_free(&c);
    }
    check(rc == VV_END);
    check(out.len == size && memcmp(out.data, data, size) == 0);
    vv_buf_free(&out);
  }
  free(b);
  free(r);
  return 0;
}
