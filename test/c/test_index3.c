/*
 * test/c/test_index3.c: tests for csrc/codec/index3 (the columnar
 * format-3 index segment).
 *
 * Owns: golden bytes that pin the format (also the worked example of the
 * format notes), round trips of random graphs against what the format-2
 * encoder is given (null ids, waypoints, free slots, empty lists, every
 * level, full lists, extreme gaps, unsorted and repeated links), blocks
 * decoded on their own matching the node-by-node walk, the encoder's
 * rejections, one rejection test per decoding rule on hand-built blocks,
 * every truncation, and a seeded mutation smoke test; the same for the
 * version-4 additions (attribute columns in blocks, "fields" in headers).
 * Inputs are copied
 * into exact-size heap blocks so the ASan build catches any over-read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/index3.h"
#include "common/status.h"
#include "vvtest.h"

/* ---- helpers ---- */

static size_t unhex(const char *s, unsigned char *out, size_t cap) {
  size_t n = 0;
  while (*s) {
    if (*s == ' ' || *s == '\n') {
      s++;
      continue;
    }
    unsigned v;
    if (sscanf(s, "%2x", &v) != 1) abort();
    if (n < cap) out[n++] = (unsigned char)v;
    s += 2;
  }
  return n;
}

static unsigned char *dup_exact(const unsigned char *p, size_t n) {
  unsigned char *q = (unsigned char *)malloc(n ? n : 1);
  if (!q) abort();
  if (n) memcpy(q, p, n);
  return q;
}

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static uint32_t rndn(uint32_t n) { return n ? (uint32_t)(rnd() % n) : 0; }

/* Walks a whole segment from an exact-size copy: VV_OK (nodes counted) or
 * the first failure. */
static int decode_all(const unsigned char *p, size_t n, uint32_t *nodes) {
  unsigned char *q = dup_exact(p, n);
  vv_index3_reader *r = malloc(sizeof *r);
  if (!r) abort();
  uint64_t seq;
  int base;
  uint32_t count, nblocks, seen = 0;
  int rc = vv_index3_decode_begin(r, q, n, &seq, &base, &count, &nblocks);
  vv_node_view nd;
  const uint32_t *l32[VV_CODEC_MAX_LEVELS];
  while (!rc && (rc = vv_index3_decode_next(r, &nd, l32)) == VV_OK) seen++;
  if (rc == VV_END) rc = seen == count ? VV_OK : VV_E_INTERNAL;
  if (nodes) *nodes = seen;
  free(r);
  free(q);
  return rc;
}

/* ---- a random graph, kept as vv_node_in records ---- */

typedef struct graph {
  uint32_t n;
  vv_node_in *in;
  uint32_t (*links)[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS];
  uint32_t (*counts)[VV_CODEC_MAX_LEVELS];
  const uint32_t *(*lp)[VV_CODEC_MAX_LEVELS];
  char (*ids)[24];
  uint8_t (*codes)[48];
  unsigned char (*attrs)[40]; /* graph_add_attrs */
} graph;

static const char *k_ids[] = {"a", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x82\xac-x", "id-0123456789"};

static void graph_init(graph *g, uint32_t n, uint32_t m) {
  g->n = n;
  g->in = calloc(n, sizeof *g->in);
  g->links = calloc(n, sizeof *g->links);
  g->counts = calloc(n, sizeof *g->counts);
  g->lp = calloc(n, sizeof *g->lp);
  g->ids = calloc(n, sizeof *g->ids);
  g->codes = calloc(n, sizeof *g->codes);
  g->attrs = NULL;
  if (!g->in || !g->links || !g->counts || !g->lp || !g->ids || !g->codes) abort();
  uint32_t slot = rndn(1000);
  for (uint32_t i = 0; i < n; i++) {
    vv_node_in *nd = &g->in[i];
    uint32_t kind = rndn(10); /* 0: free slot, 1: waypoint, else live */
    /* Slots mostly ascending, sometimes jumping back or to the extremes. */
    uint32_t r = rndn(20);
    slot = r == 0 ? rndn(slot + 1) : r == 1 ? VV_INDEX3_MAX_SLOT - rndn(3) : r == 2 ? 0 : slot + 1 + rndn(3);
    if (slot > VV_INDEX3_MAX_SLOT) slot = rndn(100);
    nd->slot = slot;
    if (kind >= 2) {
      if (rndn(2)) snprintf(g->ids[i], sizeof g->ids[i], "%s", k_ids[rndn(5)]);
      else snprintf(g->ids[i], sizeof g->ids[i], "id-%u", rndn(1000000));
      nd->id = g->ids[i];
      nd->id_len = (uint32_t)strlen(g->ids[i]);
    }
    if (kind != 0) {
      nd->chunk = rndn(8) == 0 ? UINT64_MAX - rndn(2) : rndn(100);
      nd->row = rndn(8) == 0 ? UINT32_MAX : rndn(10000);
      nd->nlevels = rndn(40) == 0 ? VV_CODEC_MAX_LEVELS : 1u + (rndn(4) == 0) + (rndn(16) == 0);
      for (uint32_t l = 0; l < nd->nlevels; l++) {
        uint32_t c = rndn(50) == 0 ? VV_CODEC_MAX_LINKS : rndn(50) == 0 ? 0 : rndn(33);
        for (uint32_t j = 0; j < c; j++) {
          uint32_t e = rndn(16);
          g->links[i][l][j] = e == 0 ? 0 : e == 1 ? VV_INDEX3_MAX_SLOT : e == 2 && j ? g->links[i][l][j - 1]
                                                                                    : rndn(2000000);
        }
        g->counts[i][l] = c;
        g->lp[i][l] = g->links[i][l];
      }
      nd->links = g->lp[i];
      nd->counts = g->counts[i];
      if (m) {
        for (uint32_t j = 0; j < m; j++) g->codes[i][j] = (uint8_t)rnd();
        nd->code = g->codes[i];
        nd->code_len = m;
      }
    }
    nd->v2 = 1;
  }
}

static void graph_free(graph *g) {
  free(g->in);
  free(g->links);
  free(g->counts);
  free(g->lp);
  free(g->ids);
  free(g->codes);
  free(g->attrs);
}

/* Gives every node an attribute record of 0..39 random bytes (the codec
 * does not parse them). */
static void graph_add_attrs(graph *g) {
  g->attrs = calloc(g->n, sizeof *g->attrs);
  if (!g->attrs) abort();
  for (uint32_t i = 0; i < g->n; i++) {
    uint32_t len = rndn(4) == 0 ? 0 : rndn(40);
    for (uint32_t j = 0; j < len; j++) g->attrs[i][j] = (unsigned char)rnd();
    g->in[i].attrs = g->attrs[i];
    g->in[i].attrs_len = len;
  }
}

static void sort32(uint32_t *v, uint32_t n) {
  for (uint32_t i = 1; i < n; i++)
    for (uint32_t j = i; j && v[j - 1] > v[j]; j--) {
      uint32_t t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
}

/* A decoded node against the record it came from: links as sorted lists. */
static int node_matches(const vv_node_view *v, const uint32_t *const *l32, const vv_node_in *in) {
  if (v->slot != in->slot || v->chunk != in->chunk || v->row != in->row || v->nlevels != in->nlevels) return 0;
  if (!v->id != !in->id || v->id_len != in->id_len || (in->id && memcmp(v->id, in->id, in->id_len))) return 0;
  if (!v->code != !in->code || v->code_len != in->code_len || (in->code && memcmp(v->code, in->code, in->code_len)))
    return 0;
  if (!v->attrs != !in->attrs || v->attrs_len != in->attrs_len ||
      (in->attrs_len && memcmp(v->attrs, in->attrs, in->attrs_len)))
    return 0;
  for (uint32_t l = 0; l < in->nlevels; l++) {
    uint32_t want[VV_CODEC_MAX_LINKS], c = in->counts[l];
    if (v->counts[l] != c) return 0;
    if (c) memcpy(want, in->links[l], c * 4u);
    sort32(want, c);
    for (uint32_t j = 0; j < c; j++)
      if (l32[l][j] != want[j] || vv_le32(v->links[l] + 4 * j) != want[j]) return 0;
  }
  return 1;
}

/* The nodes as one segment cut into blocks of random sizes. */
static uint32_t encode_segment(const graph *g, const vv_codebook_in *cb, const vv_fields_in *fields, vv_buf *out) {
  uint32_t cuts[64], nb = 0, at = 0;
  while (at < g->n && nb < 63) {
    uint32_t take = nb == 62 ? g->n - at : 1 + rndn(g->n - at);
    cuts[nb++] = take;
    at += take;
  }
  if (at < g->n) cuts[nb - 1] += g->n - at;
  if (vv_index3_encode_begin(out, 77, 1, g->n, nb, cb, fields)) abort();
  at = 0;
  for (uint32_t b = 0; b < nb; b++) {
    if (vv_index3_encode_block(g->in + at, cuts[b], out)) abort();
    at += cuts[b];
  }
  return nb;
}

static const float k_cents[4] = {1.0f, 0.0f, -1.0f, 0.5f};

static const char *const k_paths[] = {"lang", "tags", "author.name", "\xc3\xa9t\xc3\xa9"};
static const uint32_t k_path_lens[] = {4, 4, 11, 5};
static const vv_fields_in k_fields = {4, k_paths, k_path_lens};

/* A seeded random graph of n nodes (codes of m bytes, or none) as one
 * segment, with the small codebook when it has codes; with `attrs`, every
 * node carries an attribute record and the header lists k_fields. */
static void random_segment_with(graph *g, uint64_t seed, uint32_t n, uint32_t m, int attrs, vv_buf *out) {
  rng_state = seed;
  graph_init(g, n, m);
  if (attrs) graph_add_attrs(g);
  vv_codebook_in cb = {1, 2, 2, 4, k_cents};
  encode_segment(g, m ? &cb : NULL, attrs ? &k_fields : NULL, out);
}

/* ---- golden bytes ---- */

static const char k_golden_header[] =
    "a6 64 6b696e64 65 696e646578 63 736571 03 64 62617365 f5 65 636f756e74 03"
    " 62 7071 a5 61 6d 01 64 6b737562 02 64 64737562 02 67 747261696e6564 04"
    " 69 63656e74726f696473 50 0000803f 00000000 000080bf 0000003f"
    " 66 626c6f636b73 81";
static const char k_golden_block[] =
    "a9 65 636f756e74 03"
    " 65 736c6f7473 43 000a04"
    " 65 666c616773 43 818200"
    " 66 69646c656e73 43 010000"
    " 63 696473 41 61"
    " 64 6c6f6373 46 010001010000"
    " 65 6c696e6b73 45 0105010000"
    " 61 6d 01"
    " 65 636f646573 42 0100";

/* The reader yields exactly nd[0..n), then its end. */
static void expect_nodes(vv_index3_reader *r, const vv_node_in *nd, uint32_t n) {
  vv_node_view v;
  const uint32_t *l32[VV_CODEC_MAX_LEVELS];
  for (uint32_t i = 0; i < n; i++) {
    VV_REQUIRE(vv_index3_decode_next(r, &v, l32) == VV_OK);
    VV_CHECK(node_matches(&v, l32, &nd[i]));
  }
  VV_CHECK(vv_index3_decode_next(r, &v, l32) == VV_END);
}

/* slot 0 "a" at (1, 0) links [[5]] code 01; slot 5 waypoint at (1, 1)
 * links [[0], []] code 00; slot 7 free. */
static void golden_nodes(vv_node_in nd[3]) {
  static const uint32_t l5[] = {5}, l0[] = {0};
  static const uint32_t *lp0[] = {l5}, *lp1[] = {l0, NULL};
  static const uint32_t c0[] = {1}, c1[] = {1, 0};
  static const uint8_t code1[] = {1}, code0[] = {0};
  memset(nd, 0, 3 * sizeof *nd);
  nd[0] = (vv_node_in){.slot = 0, .id = "a", .id_len = 1, .chunk = 1, .row = 0, .nlevels = 1, .links = lp0,
                       .counts = c0, .code = code1, .code_len = 1};
  nd[1] = (vv_node_in){.slot = 5, .chunk = 1, .row = 1, .nlevels = 2, .links = lp1, .counts = c1, .code = code0,
                       .code_len = 1};
  nd[2] = (vv_node_in){.slot = 7};
}

VV_TEST(golden_bytes) {
  unsigned char want[512];
  size_t hn = unhex(k_golden_header, want, sizeof want);
  size_t n = hn + unhex(k_golden_block, want + hn, sizeof want - hn);
  vv_node_in nd[3];
  golden_nodes(nd);
  vv_codebook_in cb = {1, 2, 2, 4, k_cents};
  vv_buf b = {0};
  VV_REQUIRE(vv_index3_encode_begin(&b, 3, 1, 3, 1, &cb, NULL) == VV_OK);
  VV_REQUIRE(vv_index3_encode_block(nd, 3, &b) == VV_OK);
  VV_CHECK(b.len == n && memcmp(b.data, want, n) == 0);

  vv_index3_reader *r = malloc(sizeof *r);
  VV_REQUIRE(r != NULL);
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  VV_REQUIRE(vv_index3_decode_begin(r, want, n, &seq, &base, &count, &nblocks) == VV_OK);
  VV_CHECK(seq == 3 && base == 1 && count == 3 && nblocks == 1 && r->has_codebook);
  VV_CHECK(r->cb.m == 1 && r->cb.ksub == 2 && r->cb.dsub == 2 && r->cb.trained == 4);
  expect_nodes(r, nd, 3);
  free(r);
  vv_buf_free(&b);
}

/* Version 4: the same nodes with attribute records for the fields
 * ["lang", "tags"] (the worked example of the format notes): node 0 has
 * lang "en" and tags ["a", "b"], the waypoint an empty record (every field
 * missing), node 2 no lang and tags [] (present, no value). */
static const char k_golden_header4[] =
    "a7 64 6b696e64 65 696e646578 63 736571 03 64 62617365 f5 65 636f756e74 03"
    " 62 7071 a5 61 6d 01 64 6b737562 02 64 64737562 02 67 747261696e6564 04"
    " 69 63656e74726f696473 50 0000803f 00000000 000080bf 0000003f"
    " 66 6669656c6473 82 64 6c616e67 64 74616773"
    " 66 626c6f636b73 81";
static const char k_golden_block4_tail[] =
    " 68 617474726c656e73 43 0c0002"
    " 65 6174747273 4e 02 04 02 656e 03 04 01 61 04 01 62 00 01";
static const unsigned char k_rec0[] = {0x02, 0x04, 0x02, 'e', 'n', 0x03, 0x04, 0x01, 'a', 0x04, 0x01, 'b'};
static const unsigned char k_rec2[] = {0x00, 0x01};
static const char *const k_lang_tags[] = {"lang", "tags"};
static const uint32_t k_lang_tags_lens[] = {4, 4};

static void golden_nodes4(vv_node_in nd[3]) {
  golden_nodes(nd);
  nd[0].attrs = k_rec0;
  nd[0].attrs_len = sizeof k_rec0;
  nd[1].attrs = k_rec2; /* any non-NULL pointer: the length says empty */
  nd[1].attrs_len = 0;
  nd[2].attrs = k_rec2;
  nd[2].attrs_len = sizeof k_rec2;
}

VV_TEST(golden_bytes_v4) {
  unsigned char want[512];
  size_t hn = unhex(k_golden_header4, want, sizeof want);
  size_t n = hn + unhex(k_golden_block, want + hn, sizeof want - hn);
  want[hn] = 0xab; /* a map of 11 */
  n += unhex(k_golden_block4_tail, want + n, sizeof want - n);
  vv_node_in nd[3];
  golden_nodes4(nd);
  vv_fields_in f = {2, k_lang_tags, k_lang_tags_lens};
  vv_codebook_in cb = {1, 2, 2, 4, k_cents};
  vv_buf b = {0};
  VV_REQUIRE(vv_index3_encode_begin(&b, 3, 1, 3, 1, &cb, &f) == VV_OK);
  VV_REQUIRE(vv_index3_encode_block(nd, 3, &b) == VV_OK);
  VV_CHECK(b.len == n && memcmp(b.data, want, n) == 0);

  unsigned char *q = dup_exact(want, n);
  vv_index3_reader *r = malloc(sizeof *r);
  VV_REQUIRE(r != NULL);
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  VV_REQUIRE(vv_index3_decode_begin(r, q, n, &seq, &base, &count, &nblocks) == VV_OK);
  VV_CHECK(seq == 3 && base == 1 && count == 3 && nblocks == 1 && r->has_codebook && r->nfields == 2);
  VV_CHECK(r->cb.m == 1 && r->cb.ksub == 2 && r->cb.dsub == 2 && r->cb.trained == 4);
  VV_CHECK(r->field_len[0] == 4 && !memcmp(r->field_ptr[0], "lang", 4));
  VV_CHECK(r->field_len[1] == 4 && !memcmp(r->field_ptr[1], "tags", 4));
  VV_CHECK((const unsigned char *)r->field_ptr[0] > q && (const unsigned char *)r->field_ptr[1] < q + hn);
  expect_nodes(r, nd, 3);
  /* The header alone (a page of its own) gives the same fields. */
  VV_REQUIRE(vv_index3_decode_header(r, q, hn, &seq, &base, &count, &nblocks) == VV_OK);
  VV_CHECK(r->nfields == 2 && r->field_len[1] == 4 && !memcmp(r->field_ptr[1], "tags", 4));
  free(r);
  free(q);
  vv_buf_free(&b);
}

VV_TEST(empty_segment_and_no_codebook) {
  vv_buf b = {0};
  VV_REQUIRE(vv_index3_encode_begin(&b, 9, 0, 0, 0, NULL, NULL) == VV_OK);
  uint32_t seen = 99;
  VV_CHECK(decode_all(b.data, b.len, &seen) == VV_OK && seen == 0);
  vv_index3_reader r;
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  VV_REQUIRE(vv_index3_decode_begin(&r, b.data, b.len, &seq, &base, &count, &nblocks) == VV_OK);
  VV_CHECK(seq == 9 && base == 0 && count == 0 && nblocks == 0 && !r.has_codebook && r.nfields == 0);
  vv_buf_free(&b);
}

/* Field paths at the limits: 64 of them, 256 bytes, multi-byte UTF-8. */
VV_TEST(fields_at_the_limits) {
  static char paths[VV_INDEX3_MAX_FIELDS][VV_INDEX3_MAX_PATH];
  const char *ptr[VV_INDEX3_MAX_FIELDS];
  uint32_t lens[VV_INDEX3_MAX_FIELDS];
  for (uint32_t i = 0; i < VV_INDEX3_MAX_FIELDS; i++) {
    lens[i] = i == 0 ? VV_INDEX3_MAX_PATH : i == 1 ? 1 : (uint32_t)snprintf(paths[i], sizeof paths[i], "f.\xe2\x82\xac%u", i);
    if (i == 0) memset(paths[i], 'a', VV_INDEX3_MAX_PATH);
    if (i == 1) paths[i][0] = 'b';
    ptr[i] = paths[i];
  }
  vv_fields_in f = {VV_INDEX3_MAX_FIELDS, ptr, lens};
  vv_buf b = {0};
  VV_REQUIRE(vv_index3_encode_begin(&b, 5, 0, 0, 0, NULL, &f) == VV_OK);
  unsigned char *q = dup_exact(b.data, b.len);
  vv_index3_reader *r = malloc(sizeof *r);
  VV_REQUIRE(r != NULL);
  uint64_t seq;
  int base;
  uint32_t count, nblocks, bad = 0;
  VV_REQUIRE(vv_index3_decode_header(r, q, b.len, &seq, &base, &count, &nblocks) == VV_OK);
  VV_CHECK(r->nfields == VV_INDEX3_MAX_FIELDS);
  for (uint32_t i = 0; i < r->nfields; i++)
    bad += r->field_len[i] != lens[i] || memcmp(r->field_ptr[i], ptr[i], lens[i]);
  VV_CHECK(bad == 0);
  VV_CHECK(decode_all(q, b.len, NULL) == VV_OK);
  free(r);
  free(q);
  vv_buf_free(&b);
}

/* ---- round trips ---- */

static void roundtrip_with(uint32_t n, uint32_t m, int attrs, uint64_t seed) {
  graph g;
  vv_buf b = {0};
  random_segment_with(&g, seed, n, m, attrs, &b);
  unsigned char *q = dup_exact(b.data, b.len);
  vv_index3_reader *r = malloc(sizeof *r);
  VV_REQUIRE(r != NULL);
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  VV_REQUIRE(vv_index3_decode_begin(r, q, b.len, &seq, &base, &count, &nblocks) == VV_OK);
  VV_CHECK(count == n && r->has_codebook == (m != 0));
  VV_CHECK(r->nfields == (attrs ? k_fields.n : 0));
  for (uint32_t f = 0; f < r->nfields; f++)
    VV_CHECK(r->field_len[f] == k_path_lens[f] && !memcmp(r->field_ptr[f], k_paths[f], k_path_lens[f]));
  vv_node_view v;
  const uint32_t *l32[VV_CODEC_MAX_LEVELS];
  uint32_t i = 0, bad = 0;
  int rc;
  while ((rc = vv_index3_decode_next(r, &v, l32)) == VV_OK) {
    if (i >= n || !node_matches(&v, l32, &g.in[i])) bad++;
    i++;
  }
  VV_NOTE("n=%u m=%u attrs=%d seed=%llu", n, m, attrs, (unsigned long long)seed);
  VV_CHECK(rc == VV_END && i == n && bad == 0);

  /* The same blocks decoded on their own (as workers would). */
  VV_REQUIRE(vv_index3_decode_begin(r, q, b.len, &seq, &base, &count, &nblocks) == VV_OK);
  const unsigned char *bp;
  size_t blen;
  uint32_t bn, at = 0;
  vv_index3_block *blk = malloc(sizeof *blk);
  VV_REQUIRE(blk != NULL);
  while ((rc = vv_index3_next_block(r, &bp, &blen, &bn)) == VV_OK) {
    uint32_t c2;
    unsigned char *own = dup_exact(bp, blen);
    VV_CHECK(vv_index3_block_begin(blk, own, blen, &c2) == VV_OK && c2 == bn && blk->has_attrs == attrs);
    for (uint32_t k = 0; k < bn; k++) {
      VV_CHECK(vv_index3_block_next(blk, &v, l32) == VV_OK);
      if (!node_matches(&v, l32, &g.in[at + k])) bad++;
    }
    VV_CHECK(vv_index3_block_next(blk, &v, NULL) == VV_END);
    at += bn;
    free(own);
  }
  VV_CHECK(rc == VV_END && at == n && bad == 0);
  free(blk);
  free(r);
  free(q);
  vv_buf_free(&b);
  graph_free(&g);
}

static void roundtrip(uint32_t n, uint32_t m, uint64_t seed) { roundtrip_with(n, m, 0, seed); }

VV_TEST(random_graphs_roundtrip) {
  roundtrip(1, 0, 1);
  roundtrip(1, 48, 2);
  roundtrip(7, 16, 3);
  for (uint64_t s = 10; s < 20; s++) roundtrip(1 + (uint32_t)(s * 37 % 400), s % 3 ? 48 : 0, s);
}

/* Attribute records of every length from 0 up, in segments of one and of
 * many blocks. */
VV_TEST(random_graphs_with_attrs_roundtrip) {
  roundtrip_with(1, 0, 1, 101);
  roundtrip_with(1, 48, 1, 102);
  roundtrip_with(9, 16, 1, 103);
  for (uint64_t s = 110; s < 120; s++) roundtrip_with(1 + (uint32_t)(s * 37 % 400), s % 3 ? 48 : 0, 1, s);
}

/* A block where every record is empty still carries the columns (an empty
 * record is "every field missing", not "no attributes"). */
VV_TEST(empty_records_are_not_absent) {
  vv_node_in nd[3];
  golden_nodes(nd);
  static const unsigned char none[1] = {0};
  for (int i = 0; i < 3; i++) nd[i].attrs = none, nd[i].attrs_len = 0;
  vv_buf b = {0};
  VV_REQUIRE(vv_index3_encode_block(nd, 3, &b) == VV_OK);
  unsigned char *q = dup_exact(b.data, b.len);
  vv_index3_block *x = malloc(sizeof *x);
  VV_REQUIRE(x != NULL);
  uint32_t count;
  vv_node_view v;
  const uint32_t *l32[VV_CODEC_MAX_LEVELS];
  VV_REQUIRE(vv_index3_block_begin(x, q, b.len, &count) == VV_OK);
  VV_CHECK(x->has_attrs && q[0] == 0xab);
  for (int i = 0; i < 3; i++) {
    VV_CHECK(vv_index3_block_next(x, &v, l32) == VV_OK);
    VV_CHECK(v.attrs != NULL && v.attrs_len == 0 && v.attrs >= q && v.attrs <= q + b.len);
    VV_CHECK(node_matches(&v, l32, &nd[i]));
  }
  VV_CHECK(vv_index3_block_next(x, &v, l32) == VV_END && v.attrs == NULL);
  free(x);
  free(q);
  vv_buf_free(&b);
}

/* The largest record the format allows goes through; one byte more is
 * refused. */
VV_TEST(largest_record) {
  unsigned char *big = calloc(VV_INDEX3_MAX_ATTRS + 1, 1);
  VV_REQUIRE(big != NULL);
  big[0] = 7;
  big[VV_INDEX3_MAX_ATTRS - 1] = 9;
  vv_node_in nd = {.slot = 4, .id = "x", .id_len = 1, .attrs = big, .attrs_len = VV_INDEX3_MAX_ATTRS};
  vv_buf b = {0};
  VV_REQUIRE(vv_index3_encode_begin(&b, 1, 1, 1, 1, NULL, NULL) == VV_OK);
  VV_REQUIRE(vv_index3_encode_block(&nd, 1, &b) == VV_OK);
  vv_index3_reader *r = malloc(sizeof *r);
  VV_REQUIRE(r != NULL);
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  VV_REQUIRE(vv_index3_decode_begin(r, b.data, b.len, &seq, &base, &count, &nblocks) == VV_OK);
  expect_nodes(r, &nd, 1);
  size_t len0 = b.len;
  nd.attrs_len = VV_INDEX3_MAX_ATTRS + 1;
  VV_CHECK(vv_index3_encode_block(&nd, 1, &b) == VV_E_INVALID && b.len == len0);
  free(r);
  free(big);
  vv_buf_free(&b);
}

/* The format-2 encoder's records, through both formats: the same nodes
 * (format 3 giving the links sorted). */
VV_TEST(same_nodes_as_format2) {
  rng_state = 42;
  graph g;
  graph_init(&g, 300, 8);
  vv_buf v2 = {0}, v3 = {0};
  VV_REQUIRE(vv_index_encode_begin_v2(&v2, 1, 1, g.n, NULL) == VV_OK);
  for (uint32_t i = 0; i < g.n; i++) VV_REQUIRE(vv_index_encode_node(&v2, &g.in[i]) == VV_OK);
  VV_REQUIRE(vv_index3_encode_begin(&v3, 1, 1, g.n, 1, NULL, NULL) == VV_OK);
  VV_REQUIRE(vv_index3_encode_block(g.in, g.n, &v3) == VV_OK);
  vv_index_reader r2;
  vv_index3_reader *r3 = malloc(sizeof *r3);
  VV_REQUIRE(r3 != NULL);
  uint64_t seq;
  int base;
  uint32_t count, nb, bad = 0;
  VV_REQUIRE(vv_index_decode_begin(&r2, v2.data, v2.len, &seq, &base, &count) == VV_OK);
  VV_REQUIRE(vv_index3_decode_begin(r3, v3.data, v3.len, &seq, &base, &count, &nb) == VV_OK);
  vv_node_view a, b;
  const uint32_t *l32[VV_CODEC_MAX_LEVELS];
  for (uint32_t i = 0; i < g.n; i++) {
    VV_REQUIRE(vv_index_decode_next(&r2, &a) == VV_OK && vv_index3_decode_next(r3, &b, l32) == VV_OK);
    int same = a.slot == b.slot && a.chunk == b.chunk && a.row == b.row && a.nlevels == b.nlevels &&
               a.id_len == b.id_len && !a.id == !b.id && (!a.id || !memcmp(a.id, b.id, a.id_len)) &&
               a.code_len == b.code_len && !a.code == !b.code && (!a.code || !memcmp(a.code, b.code, a.code_len));
    for (uint32_t l = 0; same && l < a.nlevels; l++) {
      uint32_t x[VV_CODEC_MAX_LINKS];
      same = a.counts[l] == b.counts[l];
      for (uint32_t j = 0; same && j < a.counts[l]; j++) x[j] = vv_le32(a.links[l] + 4 * j);
      sort32(x, a.counts[l]);
      for (uint32_t j = 0; same && j < a.counts[l]; j++) same = x[j] == l32[l][j];
    }
    bad += !same;
  }
  VV_CHECK(bad == 0);
  VV_CHECK(vv_index_decode_next(&r2, &a) == VV_END && vv_index3_decode_next(r3, &b, l32) == VV_END);
  VV_CHECK(v3.len < v2.len);
  free(r3);
  vv_buf_free(&v2);
  vv_buf_free(&v3);
  graph_free(&g);
}

/* ---- the encoder refuses what the format cannot say ---- */

VV_TEST(encoder_rejects_bad_input) {
  vv_node_in nd[3];
  static const uint32_t big[] = {VV_INDEX3_MAX_SLOT + 1};
  static const uint32_t *bigp[] = {big};
  static const uint32_t one[] = {1}, many[] = {VV_CODEC_MAX_LINKS + 1};
  static const uint8_t c2[2] = {0, 1};
  vv_buf b = {0};
  VV_REQUIRE(vv_buf_append(&b, "xyz", 3) == VV_OK);
#define REJECT(stmt, n)                                      \
  do {                                                       \
    golden_nodes(nd);                                        \
    stmt;                                                    \
    VV_NOTE("%s", #stmt);                                    \
    VV_CHECK(vv_index3_encode_block(nd, n, &b) == VV_E_INVALID); \
    VV_CHECK(b.len == 3 && memcmp(b.data, "xyz", 3) == 0);   \
  } while (0)
  REJECT((void)0, 0);
  REJECT(nd[0].slot = VV_INDEX3_MAX_SLOT + 1, 3);
  REJECT(nd[0].nlevels = VV_CODEC_MAX_LEVELS + 1, 3);
  REJECT((nd[0].links = bigp, nd[0].counts = one), 3);
  REJECT(nd[0].counts = many, 3);
  REJECT(nd[0].links = NULL, 3);
  REJECT((nd[0].id = "", nd[0].id_len = 0), 3);
  REJECT((nd[0].id = "\xc3(", nd[0].id_len = 2), 3);
  REJECT((nd[0].id = "\x80", nd[0].id_len = 1), 3);
  REJECT(nd[0].id_len = VV_MAX_ID_BYTES + 1, 3);
  REJECT((nd[1].code = c2, nd[1].code_len = 2), 3); /* codes of two lengths */
  REJECT((nd[0].code_len = 0), 3);
  REJECT((nd[0].code_len = VV_CODEC_MAX_CODE + 1, nd[1].code = NULL), 3);
#undef REJECT
  golden_nodes(nd);
  VV_CHECK(vv_index3_encode_begin(&b, 1, 1, 3, 0, NULL, NULL) == VV_E_INVALID);
  VV_CHECK(vv_index3_encode_begin(&b, 1, 1, 3, 4, NULL, NULL) == VV_E_INVALID);
  VV_CHECK(vv_index3_encode_begin(&b, 1, 1, VV_CODEC_MAX_COUNT + 1, 1, NULL, NULL) == VV_E_INVALID);
  vv_codebook_in cb = {1, 257, 2, 4, k_cents};
  VV_CHECK(vv_index3_encode_begin(&b, 1, 1, 3, 1, &cb, NULL) == VV_E_INVALID);
  VV_CHECK(b.len == 3);
  vv_buf_free(&b);
}

/* Attribute columns are all or nothing within a block. */
VV_TEST(encoder_rejects_mixed_attrs) {
  vv_node_in nd[3];
  vv_buf b = {0};
  for (int i = 0; i < 3; i++) {
    golden_nodes4(nd);
    nd[i].attrs = NULL;
    VV_NOTE("node %d without", i);
    VV_CHECK(vv_index3_encode_block(nd, 3, &b) == VV_E_INVALID && b.len == 0);
    golden_nodes(nd);
    nd[i].attrs = k_rec2;
    nd[i].attrs_len = 0;
    VV_NOTE("node %d with", i);
    VV_CHECK(vv_index3_encode_block(nd, 3, &b) == VV_E_INVALID && b.len == 0);
  }
  vv_buf_free(&b);
}

VV_TEST(encoder_rejects_bad_fields) {
  static char many[VV_INDEX3_MAX_FIELDS + 1][8];
  const char *mp[VV_INDEX3_MAX_FIELDS + 1];
  uint32_t ml[VV_INDEX3_MAX_FIELDS + 1];
  for (uint32_t i = 0; i <= VV_INDEX3_MAX_FIELDS; i++) {
    ml[i] = (uint32_t)snprintf(many[i], sizeof many[i], "f%u", i);
    mp[i] = many[i];
  }
  static char longp[VV_INDEX3_MAX_PATH + 1];
  memset(longp, 'x', sizeof longp);
  static const struct {
    const char *why, *a, *b;
    uint32_t alen, blen;
  } bad[] = {
      {"an empty path", "", "b", 0, 1},
      {"a duplicate", "lang", "lang", 4, 4},
      {"not UTF-8", "la\xffg", "b", 4, 1},
      {"a lone continuation byte", "\x80", "b", 1, 1},
      {"a surrogate", "\xed\xa0\x80", "b", 3, 1},
      {"a NUL", "a\0b", "b", 3, 1},
  };
  vv_buf b = {0};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *p[2] = {bad[i].a, bad[i].b};
    uint32_t l[2] = {bad[i].alen, bad[i].blen};
    vv_fields_in f = {2, p, l};
    VV_NOTE("%s", bad[i].why);
    VV_CHECK(vv_index3_encode_begin(&b, 1, 1, 0, 0, NULL, &f) == VV_E_INVALID);
  }
  vv_fields_in f65 = {VV_INDEX3_MAX_FIELDS + 1, mp, ml};
  VV_CHECK(vv_index3_encode_begin(&b, 1, 1, 0, 0, NULL, &f65) == VV_E_INVALID);
  vv_fields_in f0 = {0, mp, ml};
  VV_CHECK(vv_index3_encode_begin(&b, 1, 1, 0, 0, NULL, &f0) == VV_E_INVALID);
  const char *lp[1] = {longp};
  uint32_t ll[1] = {VV_INDEX3_MAX_PATH + 1};
  vv_fields_in flong = {1, lp, ll};
  VV_CHECK(vv_index3_encode_begin(&b, 1, 1, 0, 0, NULL, &flong) == VV_E_INVALID);
  VV_CHECK(b.len == 0);
  f65.n = VV_INDEX3_MAX_FIELDS; /* the same list one shorter is fine */
  VV_CHECK(vv_index3_encode_begin(&b, 1, 1, 0, 0, NULL, &f65) == VV_OK);
  vv_buf_free(&b);
}

/* ---- hand-built blocks: one test per decoding rule ---- */

typedef struct raw {
  const char *count, *slots, *flags, *idlens, *ids, *locs, *links, *m, *codes; /* hex */
} raw;

/* A valid raw block: the golden one. */
static raw golden_raw(void) {
  return (raw){"03", "000a04", "818200", "010000", "61", "010001010000", "0105010000", "01", "0100"};
}

static void put_hex_bytes(vv_buf *b, const char *hex) {
  unsigned char tmp[600];
  size_t n = unhex(hex, tmp, sizeof tmp);
  unsigned char h[3] = {0x59, (unsigned char)(n >> 8), (unsigned char)n}; /* bytes, 2-byte length */
  if (n < 24) {
    h[0] = (unsigned char)(0x40 | n);
    if (vv_buf_append(b, h, 1)) abort();
  } else if (n < 256) {
    h[0] = 0x58;
    h[1] = (unsigned char)n;
    if (vv_buf_append(b, h, 2)) abort();
  } else if (vv_buf_append(b, h, 3)) {
    abort();
  }
  if (vv_buf_append(b, tmp, n)) abort();
}

static void put_raw_hex(vv_buf *b, const char *hex) {
  unsigned char tmp[64];
  size_t n = unhex(hex, tmp, sizeof tmp);
  if (vv_buf_append(b, tmp, n)) abort();
}

static void put_key(vv_buf *b, const char *key) {
  unsigned char h = (unsigned char)(0x60 | strlen(key));
  if (vv_buf_append(b, &h, 1) || vv_buf_append(b, key, strlen(key))) abort();
}

/* The nine keys in order; "count" and "m" are raw CBOR uints, the rest
 * byte strings. With `attrlens` (hex), the eleven keys of version 4. */
static void build_block_attrs(vv_buf *b, const raw *r, const char *attrlens, const char *attrs) {
  static const char *keys[] = {"count", "slots", "flags", "idlens", "ids", "locs", "links", "m", "codes"};
  const char *const *f = (const char *const *)r;
  put_raw_hex(b, attrlens ? "ab" : "a9");
  for (int i = 0; i < 9; i++) {
    put_key(b, keys[i]);
    if (i == 0 || i == 7) put_raw_hex(b, f[i]);
    else put_hex_bytes(b, f[i]);
  }
  if (!attrlens) return;
  put_key(b, "attrlens");
  put_hex_bytes(b, attrlens);
  put_key(b, "attrs");
  put_hex_bytes(b, attrs);
}

static void build_block(vv_buf *b, const raw *r) { build_block_attrs(b, r, NULL, NULL); }

/* Decodes one block wholly from an exact-size copy: VV_OK or VV_E_CORRUPT
 * (VV_E_INTERNAL if a node it yields points outside the input). */
static int block_decode_all(const unsigned char *p, size_t n) {
  unsigned char *q = dup_exact(p, n);
  vv_index3_block *blk = malloc(sizeof *blk);
  if (!blk) abort();
  uint32_t count;
  vv_node_view v;
  int rc = vv_index3_block_begin(blk, q, n, &count);
  while (!rc && (rc = vv_index3_block_next(blk, &v, NULL)) == VV_OK)
    if (v.attrs && (v.attrs < q || v.attrs_len > (size_t)(q + n - v.attrs))) rc = VV_E_INTERNAL;
  free(blk);
  free(q);
  return rc == VV_END ? VV_OK : rc;
}

static int raw_decode(const raw *r) {
  vv_buf b = {0};
  build_block(&b, r);
  int rc = block_decode_all(b.data, b.len);
  vv_buf_free(&b);
  return rc;
}

VV_TEST(raw_golden_block_decodes) {
  raw r = golden_raw();
  VV_CHECK(raw_decode(&r) == VV_OK);
}

VV_TEST(block_rules) {
  static const struct {
    const char *why;
    int field; /* index into raw as an array of strings */
    const char *hex;
  } bad[] = {
      {"count 0", 0, "00"},
      {"count above the flags", 0, "04"},
      {"count in a non-shortest head", 0, "1803"},
      {"count past the cap", 0, "1a00989681"},
      {"slots: an overlong varint", 1, "00 8a00 04"},
      {"slots: a varint cut short", 1, "00 0a 84"},
      {"slots: one value missing", 1, "000a"},
      {"slots: a byte left over", 1, "000a0400"},
      {"slots: below zero", 1, "01 0a 04"},
      {"slots: past 2^31", 1, "feffffff0f 0a 04"},
      {"slots: past 2^32", 1, "00 0a 8080808010"},
      {"flags: 18 levels", 2, "928200"},
      {"flags: a reserved bit", 2, "81a200"},
      {"flags: one code too many", 2, "818280"},
      {"flags: too few", 2, "8182"},
      {"idlens: longer than the ids", 3, "020000"},
      {"idlens: 4097", 3, "8120 0000"},
      {"idlens: overlong zero", 3, "01 8000 00"},
      {"idlens: one byte left over", 3, "01000000"},
      {"ids: a byte left over", 4, "6162"},
      {"ids: starts inside a sequence", 4, "80"},
      {"ids: not UTF-8", 4, "ff"},
      {"locs: a row past 2^32", 5, "01 8080808010 0101 0000"},
      {"locs: a chunk past 2^64", 5, "ffffffffffffffffff02 00 0101 0000"},
      {"locs: one value missing", 5, "0100010100"},
      {"locs: a byte left over", 5, "01000101000000"},
      {"links: 257 in a list", 6, "8102 05 010000"},
      {"links: a list cut short", 6, "01 05 01 00 01"},
      {"links: a sum past 2^31", 6, "02 feffffff07 02 02 01 00 00"},
      {"links: a list missing", 6, "01050100"},
      {"links: a byte left over", 6, "010501000000"},
      /* with eight bytes or more left in the column (read a word at a time) */
      {"links: an overlong varint", 6, "05 8500 01 01 03 00 02 06 00"},
      {"links: a first link of 2^32", 6, "05 8080808010 01 01 03 00 02 06 00"},
      {"links: a six-byte varint", 6, "05 808080808001 01 01 03 00 02 06 00"},
      {"links: a first link past 2^31", 6, "05 ffffffff0f 01 01 03 00 02 06 00"},
      /* the packed gaps */
      {"links: a width of 32", 6, "02 05 20 01000000 01 00 00"},
      {"links: a width of 64", 6, "02 05 40 0100000000000000 01 00 00"},
      {"links: a width wider than the largest gap", 6, "02 05 02 01 01 00 00"},
      {"links: padding bits set", 6, "02 05 01 03 01 00 00"},
      {"links: packed bytes missing", 6, "03 05 08 01"},
      {"m: codes without a length", 7, "00"},
      {"m: past the cap", 7, "1a00010001"},
      {"codes: missing", 8, ""},
      {"codes: one byte short", 8, "01"},
      {"codes: one byte over", 8, "010000"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    raw r = golden_raw();
    ((const char **)&r)[bad[i].field] = bad[i].hex;
    VV_NOTE("%s", bad[i].why);
    VV_CHECK(raw_decode(&r) == VV_E_CORRUPT);
  }
  /* The block with no codes at all, and a zero-length id column, is fine. */
  raw ok = {"02", "0002", "0000", "0000", "", "00000000", "", "00", ""};
  VV_CHECK(raw_decode(&ok) == VV_OK);
  raw words = golden_raw(); /* the long-column cases above, made valid */
  words.links = "05 8501 01 01 03 00 02 06 00"; /* 133 134 134 134 134; 0 2 3 */
  VV_CHECK(raw_decode(&words) == VV_OK);
}

static int raw_decode_attrs(const char *attrlens, const char *attrs) {
  raw r = golden_raw();
  vv_buf b = {0};
  build_block_attrs(&b, &r, attrlens, attrs);
  int rc = block_decode_all(b.data, b.len);
  vv_buf_free(&b);
  return rc;
}

/* The attribute columns: lengths as shortest-form varints up to 16 MiB,
 * one per node, and the records ending exactly with the last node. */
VV_TEST(block_rules_attrs) {
  static const char ok_lens[] = "0c0002", ok_attrs[] = "020402656e0304016104016200 01";
  VV_CHECK(raw_decode_attrs(ok_lens, ok_attrs) == VV_OK);
  VV_CHECK(raw_decode_attrs("000000", "") == VV_OK);
  VV_CHECK(raw_decode_attrs("010101", "aabbcc") == VV_OK);
  static const struct {
    const char *why, *lens, *attrs;
  } bad[] = {
      {"a length overrunning the records", "0c0003", ok_attrs},
      {"the last length overrunning", "000001", ""},
      {"a length missing", "0c00", ok_attrs},
      {"no lengths", "", ""},
      {"a length left over", "0c000200", ok_attrs},
      {"a record byte left over", ok_lens, "020402656e030401610401620001 ff"},
      {"records one byte short", ok_lens, "020402656e0304016104016200"},
      {"a non-shortest length", "8c00 00 02", ok_attrs},
      {"a non-shortest zero", "0c 8000 02", ok_attrs},
      {"a length past 16 MiB", "0c 8180808001 02", ok_attrs},
      {"a length of 16 MiB + 1", "0c 81808008 02", ok_attrs},
      {"a length past 2^32", "0c 8080808010 02", ok_attrs},
      {"a varint cut short", "0c 00 82", ok_attrs},
      /* with eight bytes or more left in the column (read a word at a time) */
      {"a non-shortest length, word-wise", "8c80808000 8000 02", ok_attrs},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    VV_NOTE("%s", bad[i].why);
    VV_CHECK(raw_decode_attrs(bad[i].lens, bad[i].attrs) == VV_E_CORRUPT);
  }
}

/* The frame of a version-4 block: exactly these keys, in this order. */
VV_TEST(block_frame_attrs) {
  raw r = golden_raw();
  static const char *heads[] = {"aa", "ac", "a9"};
  for (int h = 0; h < 3; h++) { /* 10 or 12 entries, or 9 with the two more after them */
    vv_buf b = {0};
    build_block_attrs(&b, &r, "0c0002", "020402656e030401610401620001");
    b.data[0] = (unsigned char)strtoul(heads[h], NULL, 16);
    VV_NOTE("head %s", heads[h]);
    VV_CHECK(block_decode_all(b.data, b.len) == VV_E_CORRUPT);
    vv_buf_free(&b);
  }
  /* The keys swapped, misspelt, or one missing. */
  static const char *const swaps[][2] = {{"attrlens", "attrlenz"}, {"attrs", "attrz"}};
  for (int k = 0; k < 2; k++) {
    vv_buf b = {0};
    build_block_attrs(&b, &r, "0c0002", "020402656e030401610401620001");
    unsigned char *at = memmem(b.data, b.len, swaps[k][0], strlen(swaps[k][0]));
    VV_REQUIRE(at != NULL);
    memcpy(at, swaps[k][1], strlen(swaps[k][1]));
    VV_CHECK(block_decode_all(b.data, b.len) == VV_E_CORRUPT);
    vv_buf_free(&b);
  }
  vv_buf b = {0};
  build_block(&b, &r);
  b.data[0] = 0xab; /* says 11, holds 9 */
  VV_CHECK(block_decode_all(b.data, b.len) == VV_E_CORRUPT);
  put_key(&b, "attrs");
  put_hex_bytes(&b, "");
  put_key(&b, "attrlens");
  put_hex_bytes(&b, "000000");
  VV_CHECK(block_decode_all(b.data, b.len) == VV_E_CORRUPT);
  /* A length column as a text string. */
  vv_buf t = {0};
  build_block_attrs(&t, &r, "000000", "");
  unsigned char *lens = memmem(t.data, t.len, "attrlens\x43", 9);
  VV_REQUIRE(lens != NULL);
  lens[8] = 0x63;
  VV_CHECK(block_decode_all(t.data, t.len) == VV_E_CORRUPT);
  vv_buf_free(&t);
  vv_buf_free(&b);
}

/* Each id is valid UTF-8 on its own, even when the blob as a whole is. */
VV_TEST(ids_split_inside_a_sequence) {
  raw r = golden_raw();
  r.idlens = "010100";
  r.ids = "c3a9";
  VV_CHECK(raw_decode(&r) == VV_E_CORRUPT);
  r.idlens = "020000";
  VV_CHECK(raw_decode(&r) == VV_OK);
}

/* Column sizes are settled before any node is yielded: a code pointer
 * handed out must lie inside the input. */
VV_TEST(begin_rejects_short_columns) {
  static const struct {
    int field;
    const char *hex;
  } bad[] = {{8, "01"}, {8, "010000"}, {1, "000a"}, {3, "0100"}, {5, "0100010100"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    raw r = golden_raw();
    ((const char **)&r)[bad[i].field] = bad[i].hex;
    vv_buf b = {0};
    build_block(&b, &r);
    vv_index3_block *x = malloc(sizeof *x);
    VV_REQUIRE(x != NULL);
    uint32_t count;
    VV_NOTE("field %d = %s", bad[i].field, bad[i].hex);
    VV_CHECK(vv_index3_block_begin(x, b.data, b.len, &count) == VV_E_CORRUPT);
    free(x);
    vv_buf_free(&b);
  }
}

/* A flag saying "no levels" while the links column still holds a list. */
VV_TEST(links_left_over_when_levels_say_less) {
  raw r = golden_raw();
  r.flags = "818100";
  VV_CHECK(raw_decode(&r) == VV_E_CORRUPT);
}

static void golden_segment(vv_buf *b) {
  vv_node_in nd[3];
  golden_nodes(nd);
  vv_codebook_in cb = {1, 2, 2, 4, k_cents};
  if (vv_index3_encode_begin(b, 3, 1, 3, 1, &cb, NULL) || vv_index3_encode_block(nd, 3, b)) abort();
}

VV_TEST(segment_rules) {
  vv_buf b = {0};
  golden_segment(&b);
  VV_CHECK(decode_all(b.data, b.len, NULL) == VV_OK);
  /* Trailing bytes after the last block. */
  VV_REQUIRE(vv_buf_append(&b, "\x00", 1) == VV_OK);
  VV_CHECK(decode_all(b.data, b.len, NULL) == VV_E_CORRUPT);
  vv_buf_free(&b);

  /* A header counting other than its blocks hold, or more blocks than nodes. */
  vv_node_in nd[3];
  golden_nodes(nd);
  vv_index3_reader r;
  uint64_t seq;
  int base;
  uint32_t count, nblocks, bn;
  const unsigned char *bp;
  size_t blen;
  for (uint32_t declared = 2; declared <= 4; declared += 2) {
    vv_buf s = {0};
    VV_REQUIRE(vv_index3_encode_begin(&s, 3, 1, declared, 1, NULL, NULL) == VV_OK);
    VV_REQUIRE(vv_index3_encode_block(nd, 3, &s) == VV_OK);
    VV_NOTE("declared %u", declared);
    VV_CHECK(decode_all(s.data, s.len, NULL) == VV_E_CORRUPT);
    /* More nodes than declared: refused before the block is handed out. */
    VV_REQUIRE(vv_index3_decode_begin(&r, s.data, s.len, &seq, &base, &count, &nblocks) == VV_OK);
    VV_CHECK(vv_index3_next_block(&r, &bp, &blen, &bn) == (declared < 3 ? VV_E_CORRUPT : VV_OK));
    vv_buf_free(&s);
  }
  unsigned char hand[128];
  /* nodes 1, blocks 2: the header alone is refused */
  size_t n = unhex("a6 64 6b696e64 65 696e646578 63 736571 03 64 62617365 f5 65 636f756e74 01 62 7071 f6"
                   " 66 626c6f636b73 82", hand, sizeof hand);
  VV_CHECK(vv_index3_decode_begin(&r, hand, n, &seq, &base, &count, &nblocks) == VV_E_CORRUPT);
  /* nodes 1, blocks 0 */
  hand[n - 1] = 0x80;
  VV_CHECK(vv_index3_decode_begin(&r, hand, n, &seq, &base, &count, &nblocks) == VV_E_CORRUPT);
  /* A codebook with ksub 257, and one with the wrong centroid size. */
  vv_buf c = {0};
  golden_segment(&c);
  unsigned char *ks = memmem(c.data, c.len, "\x64ksub\x02", 6);
  VV_REQUIRE(ks != NULL);
  ks[5] = 0x03; /* ksub 3: 16 bytes of centroids are then too few */
  VV_CHECK(decode_all(c.data, c.len, NULL) == VV_E_CORRUPT);
  vv_buf_free(&c);
}

/* An empty segment's header whose "fields" value is `fields_hex` (raw
 * CBOR), decoded as a segment and as a header alone; both must agree. */
static int fields_header_decode(const char *fields_hex, uint32_t *nfields) {
  vv_buf b = {0};
  put_raw_hex(&b, "a7 64 6b696e64 65 696e646578 63 736571 03 64 62617365 f5 65 636f756e74 00 62 7071 f6"
                  " 66 6669656c6473");
  unsigned char tmp[2048];
  size_t n = unhex(fields_hex, tmp, sizeof tmp);
  if (vv_buf_append(&b, tmp, n)) abort();
  put_raw_hex(&b, "66 626c6f636b73 80");
  unsigned char *q = dup_exact(b.data, b.len);
  vv_index3_reader *r = malloc(sizeof *r);
  if (!r) abort();
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  int rc = vv_index3_decode_begin(r, q, b.len, &seq, &base, &count, &nblocks);
  if (nfields) *nfields = rc ? 0 : r->nfields;
  int rc2 = vv_index3_decode_header(r, q, b.len, &seq, &base, &count, &nblocks);
  free(r);
  free(q);
  vv_buf_free(&b);
  return rc == rc2 ? rc : VV_E_INTERNAL;
}

VV_TEST(header_fields_rules) {
  uint32_t nf = 0;
  VV_CHECK(fields_header_decode("82 64 6c616e67 64 74616773", &nf) == VV_OK && nf == 2);
  VV_CHECK(fields_header_decode("81 61 61", &nf) == VV_OK && nf == 1);
  static const struct {
    const char *why, *hex;
  } bad[] = {
      {"an empty array", "80"},
      {"null", "f6"},
      {"a text string, not an array", "64 6c616e67"},
      {"an empty path", "82 60 61 61"},
      {"a duplicate", "82 64 6c616e67 64 6c616e67"},
      {"not UTF-8", "81 62 61ff"},
      {"an overlong encoding", "81 62 c0af"},
      {"a surrogate", "81 63 eda080"},
      {"a NUL", "81 63 610062"},
      {"a byte string", "81 44 6c616e67"},
      {"a number", "81 01"},
      {"an indefinite array", "9f 61 61 ff"},
      {"a non-shortest array head", "98 01 61 61"},
      {"a path cut short", "81 64 6c61"},
      {"one path fewer than the array says", "82 61 61"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    VV_NOTE("%s", bad[i].why);
    VV_CHECK(fields_header_decode(bad[i].hex, NULL) == VV_E_CORRUPT);
  }
  /* 64 paths pass, 65 do not; 256 bytes pass, 257 do not. */
  char hex[2048];
  size_t at = 0;
  at += (size_t)snprintf(hex + at, sizeof hex - at, "98 40");
  for (int i = 0; i < 64; i++) at += (size_t)snprintf(hex + at, sizeof hex - at, " 62 66%02x", 0x30 + i);
  VV_CHECK(fields_header_decode(hex, &nf) == VV_OK && nf == 64);
  hex[4] = '1'; /* 98 41 */
  at += (size_t)snprintf(hex + at, sizeof hex - at, " 62 6621");
  VV_CHECK(fields_header_decode(hex, NULL) == VV_E_CORRUPT);
  at = (size_t)snprintf(hex, sizeof hex, "81 79 0100");
  for (int i = 0; i < 256; i++) at += (size_t)snprintf(hex + at, sizeof hex - at, "61");
  VV_CHECK(fields_header_decode(hex, &nf) == VV_OK && nf == 1);
  at = (size_t)snprintf(hex, sizeof hex, "81 79 0101");
  for (int i = 0; i < 257; i++) at += (size_t)snprintf(hex + at, sizeof hex - at, "61");
  VV_CHECK(fields_header_decode(hex, NULL) == VV_E_CORRUPT);
  /* "fields" misspelt, or seven entries without it. */
  vv_buf b = {0};
  put_raw_hex(&b, "a7 64 6b696e64 65 696e646578 63 736571 03 64 62617365 f5 65 636f756e74 00 62 7071 f6"
                  " 66 6669656c6474 81 61 61 66 626c6f636b73 80");
  VV_CHECK(decode_all(b.data, b.len, NULL) == VV_E_CORRUPT);
  b.len = 0;
  put_raw_hex(&b, "a7 64 6b696e64 65 696e646578 63 736571 03 64 62617365 f5 65 636f756e74 00 62 7071 f6"
                  " 66 626c6f636b73 80");
  VV_CHECK(decode_all(b.data, b.len, NULL) == VV_E_CORRUPT);
  b.data[0] = 0xa6;
  VV_CHECK(decode_all(b.data, b.len, NULL) == VV_OK);
  vv_buf_free(&b);
}

/* A header sealed on its own (paged objects): exactly the header, which
 * says how many blocks and nodes to expect; the blocks decode separately. */
VV_TEST(header_alone) {
  vv_buf h = {0}, blk = {0};
  vv_node_in nd[3];
  golden_nodes(nd);
  vv_codebook_in cb = {1, 2, 2, 4, k_cents};
  VV_REQUIRE(vv_index3_encode_begin(&h, 3, 1, 3, 1, &cb, NULL) == VV_OK);
  VV_REQUIRE(vv_index3_encode_block(nd, 3, &blk) == VV_OK);
  vv_index3_reader r;
  uint64_t seq;
  int base;
  uint32_t count, nblocks, bn;
  unsigned char *q = dup_exact(h.data, h.len);
  VV_CHECK(vv_index3_decode_header(&r, q, h.len, &seq, &base, &count, &nblocks) == VV_OK);
  VV_CHECK(seq == 3 && base == 1 && count == 3 && nblocks == 1 && r.has_codebook && r.cb.ksub == 2);
  const unsigned char *bp;
  size_t blen;
  VV_CHECK(vv_index3_next_block(&r, &bp, &blen, &bn) == VV_E_CORRUPT);
  /* With the block after it, or cut short, it is not a header alone. */
  VV_REQUIRE(vv_buf_append(&h, blk.data, blk.len) == VV_OK);
  VV_CHECK(vv_index3_decode_header(&r, h.data, h.len, &seq, &base, &count, &nblocks) == VV_E_CORRUPT);
  VV_CHECK(vv_index3_decode_header(&r, q, h.len - blk.len - 1, &seq, &base, &count, &nblocks) == VV_E_CORRUPT);
  VV_CHECK(block_decode_all(blk.data, blk.len) == VV_OK);
  free(q);
  vv_buf_free(&h);
  vv_buf_free(&blk);
}

/* Every strict prefix of a valid segment fails, and so does every block
 * prefix on its own. */
static void truncated_at_every_byte_with(int attrs) {
  graph g;
  vv_buf b = {0};
  random_segment_with(&g, 7, 40, 4, attrs, &b);
  uint32_t accepted = 0;
  for (size_t n = 0; n < b.len; n++) accepted += decode_all(b.data, n, NULL) != VV_E_CORRUPT;
  VV_CHECK(accepted == 0);
  VV_CHECK(decode_all(b.data, b.len, NULL) == VV_OK);
  vv_buf blk = {0};
  VV_REQUIRE(vv_index3_encode_block(g.in, g.n, &blk) == VV_OK);
  for (size_t n = 0; n < blk.len; n++) accepted += block_decode_all(blk.data, n) != VV_E_CORRUPT;
  VV_NOTE("attrs %d", attrs);
  VV_CHECK(accepted == 0 && block_decode_all(blk.data, blk.len) == VV_OK);
  vv_buf_free(&blk);
  vv_buf_free(&b);
  graph_free(&g);
}

VV_TEST(truncated_at_every_byte) {
  truncated_at_every_byte_with(0);
  truncated_at_every_byte_with(1);
}

/* A failed block stays failed. */
VV_TEST(failure_is_sticky) {
  raw r = golden_raw();
  r.links = "01 05 01 00 ff"; /* fails on the second node */
  vv_buf b = {0};
  build_block(&b, &r);
  vv_index3_block *x = malloc(sizeof *x);
  VV_REQUIRE(x != NULL);
  uint32_t count;
  vv_node_view v;
  VV_REQUIRE(vv_index3_block_begin(x, b.data, b.len, &count) == VV_OK);
  VV_CHECK(vv_index3_block_next(x, &v, NULL) == VV_OK);
  VV_CHECK(vv_index3_block_next(x, &v, NULL) == VV_E_CORRUPT);
  VV_CHECK(vv_index3_block_next(x, &v, NULL) == VV_E_CORRUPT);
  VV_CHECK(v.nlevels == 0 && v.id == NULL);
  free(x);
  vv_buf_free(&b);
}

/* Random byte flips, overwrites and cuts: never a crash or an over-read
 * (the fuzz target goes further: what is accepted re-encodes exactly). */
static void mutation_smoke_with(int attrs) {
  graph g;
  vv_buf b = {0};
  random_segment_with(&g, 99, 30, 3, attrs, &b);
  uint32_t odd = 0;
  for (int iter = 0; iter < 3000; iter++) {
    vv_buf m = {0};
    VV_REQUIRE(vv_buf_append(&m, b.data, b.len) == VV_OK);
    for (uint32_t k = 1 + rndn(3); k; k--) {
      size_t at = rndn((uint32_t)m.len);
      switch (rndn(3)) {
      case 0: m.data[at] ^= (unsigned char)(1u << rndn(8)); break;
      case 1: m.data[at] = (unsigned char)rnd(); break;
      default: m.len = at + 1; break;
      }
    }
    int rc = decode_all(m.data, m.len, NULL);
    odd += rc != VV_OK && rc != VV_E_CORRUPT;
    vv_buf_free(&m);
  }
  VV_NOTE("attrs %d", attrs);
  VV_CHECK(odd == 0);
  vv_buf_free(&b);
  graph_free(&g);
}

VV_TEST(mutation_smoke) {
  mutation_smoke_with(0);
  mutation_smoke_with(1);
}

VV_TEST_MAIN()
