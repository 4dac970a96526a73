/*
 * test/c/test_codec.c: tests for csrc/codec (CBOR chunk and index segment
 * encoding, strict decoding).
 *
 * Owns: round trips, golden bytes that pin the format (index segments in
 * both versions: format 1 must still decode), one rejection test per schema
 * rule, and a seeded mutation smoke test (run it under the ASan build:
 * inputs are copied into exact-size heap blocks so any over-read trips the
 * sanitizer). Rules that need the session (a code's length against the
 * codebook's m, bytes below ksub, where a codebook may appear, m * dsub
 * against the dimension) are the loader's, tested in
 * test_session_formats.c.
 *
 * Golden examples (also for docs/FORMAT.md):
 *
 * Chunk: seq 1, dim 2, rows
 *   slot 0, id "a", vector [1.0, -2.0], meta "{}"
 *   slot 5, id null (deleted waypoint), vector [0.5, 0.0], meta null
 *
 *   a8                                      map(8)
 *     64 6b696e64  65 6368756e6b            "kind": "chunk"
 *     63 736571    01                       "seq": 1
 *     63 64696d    02                       "dim": 2
 *     65 636f756e74  02                     "count": 2
 *     65 736c6f7473  48 00000000 05000000   "slots": bytes(8) u32 LE 0, 5
 *     63 696473    82 61 61 f6              "ids": ["a", null]
 *     67 766563746f7273                     "vectors":
 *        50 0000803f 000000c0 0000003f 00000000   bytes(16) f32 LE 1, -2, 0.5, 0
 *     64 6d657461  82 62 7b7d f6            "meta": ["{}", null]
 *
 * Index segment: seq 3, base true, nodes
 *   slot 0, id "a", chunk 1, row 0, links [[5]]           (one level)
 *   slot 5, id null, chunk 1, row 1, links [[0], []]      (two levels)
 *
 *   a5                                      map(5)
 *     64 6b696e64  65 696e646578            "kind": "index"
 *     63 736571    03                       "seq": 3
 *     64 62617365  f5                       "base": true
 *     65 636f756e74  02                     "count": 2
 *     65 6e6f646573  82                     "nodes": array(2)
 *       85 00 61 61 01 00 81 44 05000000            [0, "a", 1, 0, [h'05000000']]
 *       85 05 f6 01 01 82 44 00000000 40            [5, null, 1, 1, [h'00000000', h'']]
 *
 * Index segment, format 2: the same two nodes with codes, a free slot 7,
 * and a codebook m 1, ksub 2, dsub 2, trained 4, centroids [1, 0], [-1, 0.5]
 *
 *   a6                                      map(6)
 *     64 6b696e64  65 696e646578            "kind": "index"
 *     63 736571    03                       "seq": 3
 *     64 62617365  f5                       "base": true
 *     65 636f756e74  03                     "count": 3
 *     62 7071  a5                           "pq": map(5)
 *       61 6d  01                             "m": 1
 *       64 6b737562  02                       "ksub": 2
 *       64 64737562  02                       "dsub": 2
 *       67 747261696e6564  04                 "trained": 4
 *       69 63656e74726f696473                 "centroids":
 *          50 0000803f 00000000 000080bf 0000003f   bytes(16) f32 LE 1, 0, -1, 0.5
 *     65 6e6f646573  83                     "nodes": array(3)
 *       86 00 61 61 01 00 81 44 05000000 41 01      [0, "a", 1, 0, [h'05000000'], h'01']
 *       86 05 f6 01 01 82 44 00000000 40 41 00      [5, null, 1, 1, [h'00000000', h''], h'00']
 *       86 07 f6 00 00 80 f6                        [7, null, 0, 0, [], null]   (a free slot)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"
#include "vvtest.h"

#define GOLDEN_CHUNK_HEX                                                              \
  "a8 646b696e64 656368756e6b 63736571 01 6364696d 02 65636f756e74 02"                \
  " 65736c6f7473 48 00000000 05000000 63696473 82 6161 f6"                            \
  " 67766563746f7273 50 0000803f 000000c0 0000003f 00000000 646d657461 82 627b7d f6"

#define GOLDEN_INDEX_HEX                                                              \
  "a5 646b696e64 65696e646578 63736571 03 6462617365 f5 65636f756e74 02"              \
  " 656e6f646573 82 85 00 6161 01 00 81 44 05000000 85 05 f6 01 01 82 44 00000000 40"

#define GOLDEN_PQ_HEX                                                                 \
  "a5 616d 01 646b737562 02 6464737562 02 67747261696e6564 04"                        \
  " 6963656e74726f696473 50 0000803f 00000000 000080bf 0000003f"

#define GOLDEN_NODES_V2_HEX                                                           \
  "86 00 6161 01 00 81 44 05000000 41 01 86 05 f6 01 01 82 44 00000000 40 41 00"      \
  " 86 07 f6 00 00 80 f6"

#define GOLDEN_INDEX_V2_HEX                                                           \
  "a6 646b696e64 65696e646578 63736571 03 6462617365 f5 65636f756e74 03"              \
  " 627071 " GOLDEN_PQ_HEX " 656e6f646573 83 " GOLDEN_NODES_V2_HEX

/* ---- helpers ---- */

/* Hex with spaces; "*N:HH" repeats byte HH N times. Returns the length. */
static size_t unhex(const char *s, unsigned char *out, size_t cap) {
  size_t n = 0;
  while (*s) {
    if (*s == ' ') {
      s++;
    } else if (*s == '*') {
      char *end;
      unsigned long rep = strtoul(s + 1, &end, 10);
      unsigned long byte = strtoul(end + 1, &end, 16);
      for (unsigned long i = 0; i < rep && n < cap; i++) out[n++] = (unsigned char)byte;
      s = end;
    } else {
      unsigned v;
      if (sscanf(s, "%2x", &v) != 1) abort();
      if (n < cap) out[n++] = (unsigned char)v;
      s += 2;
    }
  }
  return n;
}

/* An exact-size heap copy, so ASan sees any read past the end. */
static unsigned char *dup_exact(const unsigned char *p, size_t n) {
  unsigned char *q = (unsigned char *)malloc(n ? n : 1);
  if (!q) abort();
  if (n) memcpy(q, p, n);
  return q;
}

static int decode_chunk_copy(const unsigned char *p, size_t n, uint32_t dim) {
  unsigned char *q = dup_exact(p, n);
  vv_chunk_view v;
  int rc = vv_chunk_decode(q, n, dim, &v);
  vv_chunk_view_free(&v);
  free(q);
  return rc;
}

/* Whole segment: VV_OK only if every node decodes and the end is clean. */
static int decode_index_all(const unsigned char *p, size_t n) {
  unsigned char *q = dup_exact(p, n);
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count, seen = 0;
  int rc = vv_index_decode_begin(&r, q, n, &seq, &base, &count);
  vv_node_view nd;
  while (!rc && (rc = vv_index_decode_next(&r, &nd)) == VV_OK) seen++;
  if (rc == VV_END) rc = seen == count ? VV_OK : VV_E_INTERNAL;
  free(q);
  return rc;
}

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* ---- chunk comparison ---- */

typedef struct chunk_data { /* owns what a vv_chunk_in points at */
  vv_chunk_in in;
  uint32_t *slots;
  float *flat;
  const float **rows;
  const char **ids;
  uint32_t *id_lens;
  const char **metas;
  uint32_t *meta_lens;
} chunk_data;

static void chunk_data_init(chunk_data *c, uint64_t seq, uint32_t dim, uint32_t count) {
  memset(c, 0, sizeof *c);
  size_t n = count ? count : 1;
  c->slots = (uint32_t *)calloc(n, 4);
  c->flat = (float *)calloc(n * dim, sizeof(float));
  c->rows = (const float **)calloc(n, sizeof *c->rows);
  c->ids = (const char **)calloc(n, sizeof *c->ids);
  c->id_lens = (uint32_t *)calloc(n, 4);
  c->metas = (const char **)calloc(n, sizeof *c->metas);
  c->meta_lens = (uint32_t *)calloc(n, 4);
  if (!c->slots || !c->flat || !c->rows || !c->ids || !c->id_lens || !c->metas || !c->meta_lens) abort();
  for (uint32_t i = 0; i < count; i++) c->rows[i] = c->flat + (size_t)i * dim;
  c->in = (vv_chunk_in){seq, dim, count, c->slots, c->rows, c->ids, c->id_lens, c->metas, c->meta_lens};
}

static void chunk_data_free(chunk_data *c) {
  free(c->slots);
  free(c->flat);
  free((void *)c->rows);
  free((void *)c->ids);
  free(c->id_lens);
  free((void *)c->metas);
  free(c->meta_lens);
}

/* The rows of a view as a vv_chunk_in (strings still point into the view). */
static void chunk_from_view(chunk_data *c, const vv_chunk_view *v) {
  chunk_data_init(c, v->seq, v->dim, v->count);
  for (uint32_t i = 0; i < v->count; i++) c->slots[i] = vv_le32(v->slots + 4 * (size_t)i);
  vv_read_f32le(v->vectors, (size_t)v->count * v->dim, c->flat);
  memcpy((void *)c->ids, (const void *)v->ids, v->count * sizeof *c->ids);
  memcpy(c->id_lens, v->id_lens, v->count * 4u);
  memcpy((void *)c->metas, (const void *)v->metas, v->count * sizeof *c->metas);
  memcpy(c->meta_lens, v->meta_lens, v->count * 4u);
}

static int str_eq(const char *a, uint32_t an, const char *b, uint32_t bn) {
  if (!a || !b) return !a && !b;
  return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Bitwise equality of a view and the input that produced it. */
static int view_matches(const vv_chunk_view *v, const vv_chunk_in *in) {
  if (v->seq != in->seq || v->dim != in->dim || v->count != in->count) return 0;
  for (uint32_t i = 0; i < in->count; i++) {
    if (vv_le32(v->slots + 4 * (size_t)i) != in->slots[i]) return 0;
    const unsigned char *row = v->vectors + (size_t)i * in->dim * 4;
    for (uint32_t d = 0; d < in->dim; d++) {
      uint32_t want;
      memcpy(&want, &in->vectors[i][d], 4);
      if (vv_le32(row + 4 * (size_t)d) != want) return 0;
    }
    const char *id = in->ids ? in->ids[i] : NULL, *meta = in->metas ? in->metas[i] : NULL;
    if (!str_eq(v->ids[i], v->id_lens[i], id, id ? in->id_lens[i] : 0)) return 0;
    if (!str_eq(v->metas[i], v->meta_lens[i], meta, meta ? in->meta_lens[i] : 0)) return 0;
  }
  return 1;
}

/* encode -> decode -> compare -> re-encode from the view -> same bytes. */
static int chunk_roundtrip(const vv_chunk_in *in) {
  vv_buf a = {0}, b = {0};
  vv_chunk_view v;
  int ok = vv_chunk_encode(in, &a) == VV_OK;
  ok = ok && vv_chunk_decode(a.data, a.len, in->dim, &v) == VV_OK;
  if (!ok) {
    vv_buf_free(&a);
    return 0;
  }
  ok = view_matches(&v, in);
  chunk_data c;
  chunk_from_view(&c, &v);
  ok = ok && vv_chunk_encode(&c.in, &b) == VV_OK && b.len == a.len && memcmp(a.data, b.data, a.len) == 0;
  chunk_data_free(&c);
  vv_chunk_view_free(&v);
  vv_buf_free(&a);
  vv_buf_free(&b);
  return ok;
}

/* ---- chunk round trips ---- */

VV_TEST(chunk_empty_roundtrip) {
  vv_chunk_in in = {7, 3, 0, NULL, NULL, NULL, NULL, NULL, NULL};
  VV_CHECK(chunk_roundtrip(&in));
  vv_buf b = {0};
  VV_REQUIRE(vv_chunk_encode(&in, &b) == VV_OK);
  vv_chunk_view v;
  VV_REQUIRE(vv_chunk_decode(b.data, b.len, 3, &v) == VV_OK);
  VV_CHECK(v.count == 0 && v.seq == 7 && v.dim == 3);
  vv_chunk_view_free(&v);
  VV_CHECK(v.ids == NULL && v.count == 0);
  vv_chunk_view_free(&v); /* twice is harmless */
  vv_chunk_view_free(NULL);
  vv_buf_free(&b);
}

VV_TEST(chunk_dead_rows_and_missing_meta) {
  chunk_data c;
  chunk_data_init(&c, 42, 3, 6);
  static const char *ids[] = {"alpha", NULL, "gamma", NULL, "e", "zeta"};
  static const char *metas[] = {"{\"a\":1}", NULL, NULL, "{}", "0", NULL};
  for (uint32_t i = 0; i < 6; i++) {
    c.slots[i] = i * 1000u + 7u;
    c.ids[i] = ids[i];
    c.id_lens[i] = ids[i] ? (uint32_t)strlen(ids[i]) : 0;
    c.metas[i] = metas[i];
    c.meta_lens[i] = metas[i] ? (uint32_t)strlen(metas[i]) : 0;
    for (uint32_t d = 0; d < 3; d++) c.flat[i * 3 + d] = (float)i - 0.25f * (float)d;
  }
  VV_CHECK(chunk_roundtrip(&c.in));
  /* NULL id and meta arrays mean "all null". */
  c.in.ids = NULL;
  c.in.id_lens = NULL;
  c.in.metas = NULL;
  c.in.meta_lens = NULL;
  VV_CHECK(chunk_roundtrip(&c.in));
  chunk_data_free(&c);
}

/* Metadata is JSON text or null: an empty text is refused when writing and
 * is damage when reading, never "no metadata". */
VV_TEST(chunk_empty_meta_text) {
  chunk_data c;
  chunk_data_init(&c, 3, 2, 2);
  static const char *metas[] = {"{}", ""};
  for (uint32_t i = 0; i < 2; i++) {
    c.slots[i] = i;
    c.metas[i] = metas[i];
    c.meta_lens[i] = 0;
  }
  c.meta_lens[0] = 2;
  vv_buf b = {0};
  VV_CHECK(vv_chunk_encode(&c.in, &b) == VV_E_INVALID);
  /* The same chunk with "0" as the last meta ends in 61 30; as 60 it is
   * well-formed CBOR with an empty text. */
  c.metas[1] = "0";
  c.meta_lens[1] = 1;
  VV_REQUIRE(vv_chunk_encode(&c.in, &b) == VV_OK);
  VV_REQUIRE(b.len > 2 && b.data[b.len - 2] == 0x61 && b.data[b.len - 1] == 0x30);
  vv_chunk_view v;
  VV_CHECK(vv_chunk_decode(b.data, b.len, 2, &v) == VV_OK);
  vv_chunk_view_free(&v);
  b.data[b.len - 2] = 0x60;
  VV_CHECK(vv_chunk_decode(b.data, b.len - 1, 2, &v) == VV_E_CORRUPT);
  vv_buf_free(&b);
  chunk_data_free(&c);
}

static void fill_rows(chunk_data *c, uint32_t salt) {
  for (size_t i = 0; i < (size_t)c->in.count * c->in.dim; i++)
    c->flat[i] = (float)((i * 2654435761u + salt) % 100003) / 1000.0f - 50.0f;
}

VV_TEST(chunk_dim1_and_dim784) {
  static const uint32_t dims[] = {1, 784};
  for (int k = 0; k < 2; k++) {
    VV_NOTE("dim=%u", dims[k]);
    chunk_data c;
    chunk_data_init(&c, 1, dims[k], 37);
    fill_rows(&c, dims[k]);
    char idbuf[37][16];
    for (uint32_t i = 0; i < 37; i++) {
      c.slots[i] = 0x7fffffffu - i;
      snprintf(idbuf[i], sizeof idbuf[i], "id-%u", i);
      c.ids[i] = idbuf[i];
      c.id_lens[i] = (uint32_t)strlen(idbuf[i]);
    }
    VV_CHECK(chunk_roundtrip(&c.in));
    chunk_data_free(&c);
  }
}

VV_TEST(chunk_special_floats_are_bit_exact) {
  chunk_data c;
  chunk_data_init(&c, 0, 6, 1);
  static const uint32_t bits[6] = {0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00001u, 0x00000001u, 0x7f7fffffu};
  memcpy(c.flat, bits, sizeof bits);
  VV_CHECK(chunk_roundtrip(&c.in));
  chunk_data_free(&c);
}

VV_TEST(chunk_multibyte_utf8) {
  chunk_data c;
  chunk_data_init(&c, 9, 2, 5);
  /* 2-, 3- and 4-byte sequences, the highest code point, and exactly 4096 bytes. */
  static char big[4096];
  for (size_t i = 0; i < sizeof big; i += 4) memcpy(big + i, "\xf0\x9f\x98\x80", 4);
  const char *ids[] = {"caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80!", "\xf4\x8f\xbf\xbf", big};
  uint32_t lens[] = {5, 6, 5, 4, 4096};
  for (uint32_t i = 0; i < 5; i++) {
    c.ids[i] = ids[i];
    c.id_lens[i] = lens[i];
    c.metas[i] = "{\"k\":\"\xc3\xbc\"}";
    c.meta_lens[i] = (uint32_t)strlen(c.metas[i]);
  }
  VV_CHECK(chunk_roundtrip(&c.in));
  chunk_data_free(&c);
}

VV_TEST(chunk_large_heads) {
  /* count >= 65536 and byte strings >= 2^16 exercise 5-byte heads; a seq
   * >= 2^32 a 9-byte one. */
  chunk_data c;
  chunk_data_init(&c, 1ull << 40, 1, 70000);
  for (uint32_t i = 0; i < 70000; i++) {
    c.slots[i] = i;
    c.flat[i] = (float)i;
  }
  VV_CHECK(chunk_roundtrip(&c.in));
  chunk_data_free(&c);
  chunk_data_init(&c, 5, 384, 300);
  fill_rows(&c, 3);
  VV_CHECK(chunk_roundtrip(&c.in));
  chunk_data_free(&c);
}

VV_TEST(chunk_shortest_integers) {
  static const uint64_t seqs[] = {0, 23, 24, 255, 256, 65535, 65536, 0xffffffffull, 0x100000000ull, UINT64_MAX};
  static const size_t heads[] = {1, 1, 2, 2, 3, 3, 5, 5, 9, 9};
  vv_chunk_in in = {0, 1, 0, NULL, NULL, NULL, NULL, NULL, NULL};
  vv_buf ref = {0};
  VV_REQUIRE(vv_chunk_encode(&in, &ref) == VV_OK);
  for (int i = 0; i < 10; i++) {
    VV_NOTE("seq=%llu", (unsigned long long)seqs[i]);
    in.seq = seqs[i];
    vv_buf b = {0};
    VV_REQUIRE(vv_chunk_encode(&in, &b) == VV_OK);
    VV_CHECK(b.len == ref.len - 1 + heads[i]);
    vv_chunk_view v;
    VV_CHECK(vv_chunk_decode(b.data, b.len, 1, &v) == VV_OK && v.seq == seqs[i]);
    vv_chunk_view_free(&v);
    vv_buf_free(&b);
  }
  vv_buf_free(&ref);
}

VV_TEST(chunk_encode_appends_and_fails_cleanly) {
  vv_buf b = {0};
  VV_REQUIRE(vv_buf_append(&b, "PFX", 3) == VV_OK);
  float row[2] = {1.0f, -2.0f};
  const float *rows[1] = {row};
  uint32_t slot = 0, bad_len = 0;
  const char *id = "a";
  vv_chunk_in in = {1, 2, 1, &slot, rows, &id, &bad_len, NULL, NULL};
  VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID); /* 0-byte id */
  VV_CHECK(b.len == 3);
  uint32_t one = 1;
  in.id_lens = &one;
  VV_REQUIRE(vv_chunk_encode(&in, &b) == VV_OK);
  VV_CHECK(memcmp(b.data, "PFX", 3) == 0);
  vv_chunk_view v;
  VV_CHECK(vv_chunk_decode(b.data + 3, b.len - 3, 2, &v) == VV_OK && view_matches(&v, &in));
  vv_chunk_view_free(&v);
  vv_buf_free(&b);
}

VV_TEST(chunk_encode_rejects_bad_input) {
  float row[2] = {0};
  const float *rows[1] = {row};
  const float *no_rows[1] = {NULL};
  uint32_t slot = 0;
  const char *id = "a", *bad = "\xc0\x80", *surrogate = "\xed\xa0\x80";
  uint32_t one = 1, two = 2, three = 3, big = 4097;
  vv_buf b = {0};
  vv_chunk_in ok = {1, 2, 1, &slot, rows, &id, &one, NULL, NULL}, in;
  VV_CHECK(vv_chunk_encode(&ok, &b) == VV_OK);
  in = ok; in.dim = 0;                         VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  in = ok; in.dim = 65537;                     VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  in = ok; in.count = VV_CODEC_MAX_COUNT + 1;  VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  in = ok; in.vectors = no_rows;               VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  in = ok; in.ids = &bad; in.id_lens = &two;   VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  in = ok; in.ids = &surrogate; in.id_lens = &three; VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  in = ok; in.metas = &bad; in.meta_lens = &two;     VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  char *long_id = (char *)malloc(4097);
  VV_REQUIRE(long_id);
  memset(long_id, 'x', 4097);
  in = ok; in.ids = (const char **)&long_id; in.id_lens = &big; VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  free(long_id);
  uint32_t meta_len = VV_MAX_METADATA_BYTES + 1;
  char *meta = (char *)malloc(meta_len);
  VV_REQUIRE(meta);
  memset(meta, ' ', meta_len);
  in = ok; in.metas = (const char **)&meta; in.meta_lens = &meta_len;
  VV_CHECK(vv_chunk_encode(&in, &b) == VV_E_INVALID);
  meta_len--; /* exactly the limit is fine */
  VV_CHECK(chunk_roundtrip(&in));
  free(meta);
  vv_buf_free(&b);
}

/* ---- golden bytes ---- */

VV_TEST(chunk_golden_bytes) {
  unsigned char want[256];
  size_t wn = unhex(GOLDEN_CHUNK_HEX, want, sizeof want);
  VV_CHECK(wn == 87);
  uint32_t slots[2] = {0, 5};
  float r0[2] = {1.0f, -2.0f}, r1[2] = {0.5f, 0.0f};
  const float *rows[2] = {r0, r1};
  const char *ids[2] = {"a", NULL}, *metas[2] = {"{}", NULL};
  uint32_t id_lens[2] = {1, 0}, meta_lens[2] = {2, 0};
  vv_chunk_in in = {1, 2, 2, slots, rows, ids, id_lens, metas, meta_lens};
  vv_buf b = {0};
  VV_REQUIRE(vv_chunk_encode(&in, &b) == VV_OK);
  VV_CHECK(b.len == wn && memcmp(b.data, want, wn) == 0);
  vv_chunk_view v;
  VV_REQUIRE(vv_chunk_decode(want, wn, 2, &v) == VV_OK);
  VV_CHECK(view_matches(&v, &in));
  float f[4];
  vv_read_f32le(v.vectors, 4, f);
  VV_CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == 0.5f && f[3] == 0.0f);
  VV_CHECK(v.ids[1] == NULL && v.metas[1] == NULL && v.id_lens[0] == 1 && v.ids[0][0] == 'a');
  vv_chunk_view_free(&v);
  vv_buf_free(&b);
}

static void encode_golden_index(vv_buf *b, int base) {
  uint32_t l0[1] = {5}, l1a[1] = {0};
  const uint32_t *links0[1] = {l0}, *links1[2] = {l1a, NULL};
  uint32_t c0[1] = {1}, c1[2] = {1, 0};
  vv_node_in n0 = {.slot = 0, .id = "a", .id_len = 1, .chunk = 1, .row = 0, .nlevels = 1, .links = links0,
                   .counts = c0};
  vv_node_in n1 = {.slot = 5, .id = NULL, .id_len = 0, .chunk = 1, .row = 1, .nlevels = 2, .links = links1,
                   .counts = c1};
  if (vv_index_encode_begin(b, 3, base, 2) || vv_index_encode_node(b, &n0) || vv_index_encode_node(b, &n1)) abort();
}

VV_TEST(index_golden_bytes) {
  unsigned char want[256];
  size_t wn = unhex(GOLDEN_INDEX_HEX, want, sizeof want);
  VV_CHECK(wn == 61);
  vv_buf b = {0};
  encode_golden_index(&b, 1);
  VV_CHECK(b.len == wn && memcmp(b.data, want, wn) == 0);
  vv_buf_free(&b);

  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  vv_node_view nd;
  VV_REQUIRE(vv_index_decode_begin(&r, want, wn, &seq, &base, &count) == VV_OK);
  VV_CHECK(seq == 3 && base == 1 && count == 2);
  VV_REQUIRE(vv_index_decode_next(&r, &nd) == VV_OK);
  VV_CHECK(nd.slot == 0 && nd.id_len == 1 && nd.id[0] == 'a' && nd.chunk == 1 && nd.row == 0);
  VV_CHECK(nd.nlevels == 1 && nd.counts[0] == 1 && vv_le32(nd.links[0]) == 5);
  VV_REQUIRE(vv_index_decode_next(&r, &nd) == VV_OK);
  VV_CHECK(nd.slot == 5 && nd.id == NULL && nd.chunk == 1 && nd.row == 1);
  VV_CHECK(nd.nlevels == 2 && nd.counts[0] == 1 && vv_le32(nd.links[0]) == 0 && nd.counts[1] == 0);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_END);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_END);
}

/* ---- index round trips ---- */

typedef struct node_data {
  vv_node_in in;
  uint32_t store[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS];
  const uint32_t *links[VV_CODEC_MAX_LEVELS];
  uint32_t counts[VV_CODEC_MAX_LEVELS];
  char id[32];
  uint8_t code[64];
} node_data;

static void make_node(node_data *n, uint32_t i, uint32_t nlevels) {
  memset(n, 0, sizeof *n);
  snprintf(n->id, sizeof n->id, "n\xc3\xa9-%u", i);
  for (uint32_t l = 0; l < nlevels; l++) {
    n->counts[l] = (i * 7 + l * 13) % (VV_CODEC_MAX_LINKS + 1);
    if (l == 0 && i % 3 == 0) n->counts[l] = VV_CODEC_MAX_LINKS;
    for (uint32_t k = 0; k < n->counts[l]; k++) n->store[l][k] = (i * 31 + k * 17 + l) % 0x7fffffffu;
    n->links[l] = n->store[l];
  }
  int dead = i % 5 == 4;
  n->in = (vv_node_in){.slot = i * 3 + (i == 1 ? 0x7fffffffu - 3 : 0),
                       .id = dead ? NULL : n->id,
                       .id_len = dead ? 0 : (uint32_t)strlen(n->id),
                       .chunk = (uint64_t)i << (i % 40),
                       .row = UINT32_MAX - i,
                       .nlevels = nlevels,
                       .links = n->links,
                       .counts = n->counts};
}

static int node_matches(const vv_node_view *v, const vv_node_in *in) {
  if (v->slot != in->slot || v->chunk != in->chunk || v->row != in->row || v->nlevels != in->nlevels) return 0;
  if (!str_eq(v->id, v->id_len, in->id, in->id_len)) return 0;
  for (uint32_t l = 0; l < in->nlevels; l++) {
    if (v->counts[l] != in->counts[l]) return 0;
    for (uint32_t k = 0; k < in->counts[l]; k++)
      if (vv_le32(v->links[l] + 4 * (size_t)k) != in->links[l][k]) return 0;
  }
  for (uint32_t l = in->nlevels; l < VV_CODEC_MAX_LEVELS; l++)
    if (v->counts[l] || v->links[l]) return 0;
  if (!v->code != !in->code) return 0;
  if (in->code && (v->code_len != in->code_len || memcmp(v->code, in->code, in->code_len))) return 0;
  return 1;
}

static void index_roundtrip(uint32_t count, uint32_t (*levels)(uint32_t), int base, uint64_t seq) {
  node_data *nodes = (node_data *)calloc(count ? count : 1, sizeof *nodes);
  VV_REQUIRE(nodes);
  vv_buf b = {0};
  VV_REQUIRE(vv_index_encode_begin(&b, seq, base, count) == VV_OK);
  for (uint32_t i = 0; i < count; i++) {
    make_node(&nodes[i], i, levels(i));
    VV_REQUIRE(vv_index_encode_node(&b, &nodes[i].in) == VV_OK);
  }
  vv_index_reader r;
  uint64_t s;
  int bs;
  uint32_t n;
  VV_REQUIRE(vv_index_decode_begin(&r, b.data, b.len, &s, &bs, &n) == VV_OK);
  VV_CHECK(s == seq && bs == (base != 0) && n == count);
  vv_node_view nd;
  for (uint32_t i = 0; i < count; i++) {
    VV_NOTE("node %u", i);
    VV_REQUIRE(vv_index_decode_next(&r, &nd) == VV_OK);
    VV_CHECK(node_matches(&nd, &nodes[i].in));
  }
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_END);
  vv_buf_free(&b);
  free(nodes);
}

static uint32_t flat_levels(uint32_t i) { (void)i; return 0; }
static uint32_t multi_levels(uint32_t i) { return i == 2 ? VV_CODEC_MAX_LEVELS : 1 + i % 4; }

VV_TEST(index_roundtrips) {
  index_roundtrip(0, flat_levels, 1, 0);
  index_roundtrip(30, flat_levels, 0, 77);
  index_roundtrip(30, multi_levels, 1, UINT64_MAX);
  index_roundtrip(30, multi_levels, 0, 1ull << 33);
}

VV_TEST(index_base_flag) {
  for (int base = 0; base <= 2; base++) {
    vv_buf b = {0};
    encode_golden_index(&b, base);
    vv_index_reader r;
    uint64_t s;
    int bs = -1;
    uint32_t n;
    VV_CHECK(vv_index_decode_begin(&r, b.data, b.len, &s, &bs, &n) == VV_OK && bs == (base != 0));
    VV_CHECK(b.data[22] == (base ? 0xf5 : 0xf4));
    vv_buf_free(&b);
  }
}

VV_TEST(index_encode_rejects_bad_input) {
  vv_buf b = {0};
  uint32_t l[VV_CODEC_MAX_LINKS + 1] = {0};
  const uint32_t *links[VV_CODEC_MAX_LEVELS + 1];
  uint32_t counts[VV_CODEC_MAX_LEVELS + 1] = {0};
  for (int i = 0; i <= (int)VV_CODEC_MAX_LEVELS; i++) links[i] = l;
  vv_node_in ok = {.slot = 0x7fffffffu, .id = "a", .id_len = 1, .nlevels = VV_CODEC_MAX_LEVELS, .links = links,
                   .counts = counts},
             in;
  VV_CHECK(vv_index_encode_begin(&b, 0, 0, VV_CODEC_MAX_COUNT + 1) == VV_E_INVALID);
  VV_CHECK(vv_index_encode_node(&b, &ok) == VV_OK);
  size_t len = b.len;
  in = ok; in.slot = 0x80000000u;                 VV_CHECK(vv_index_encode_node(&b, &in) == VV_E_INVALID);
  in = ok; in.nlevels = VV_CODEC_MAX_LEVELS + 1;   VV_CHECK(vv_index_encode_node(&b, &in) == VV_E_INVALID);
  in = ok; in.id_len = 0;                          VV_CHECK(vv_index_encode_node(&b, &in) == VV_E_INVALID);
  in = ok; in.id = "\xff"; in.id_len = 1;          VV_CHECK(vv_index_encode_node(&b, &in) == VV_E_INVALID);
  counts[3] = VV_CODEC_MAX_LINKS + 1;              VV_CHECK(vv_index_encode_node(&b, &ok) == VV_E_INVALID);
  counts[3] = VV_CODEC_MAX_LINKS;                  VV_CHECK(vv_index_encode_node(&b, &ok) == VV_OK);
  VV_CHECK(b.len > len);
  vv_buf_free(&b);
}

/* ---- index segments, format 2: codebook and codes ---- */

/* A format-2 node: make_node's, plus an m-byte code (none for every
 * fourth node: null codes are valid in the codec). */
static void make_node_v2(node_data *n, uint32_t i, uint32_t nlevels, uint32_t m, uint32_t ksub) {
  make_node(n, i, nlevels);
  n->in.v2 = 1;
  if (i % 4 == 3) return;
  for (uint32_t j = 0; j < m; j++) n->code[j] = (uint8_t)((i * 13 + j * 7) % ksub);
  n->in.code = n->code;
  n->in.code_len = m;
}

/* Decodes a whole segment (either format) and encodes it again into
 * `out`: header, codebook and nodes as decoded. */
static int index_reencode(const unsigned char *p, size_t n, vv_buf *out) {
  static uint32_t store[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS];
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  int rc = vv_index_decode_begin(&r, p, n, &seq, &base, &count);
  if (rc) return rc;
  float *cents = NULL;
  vv_codebook_in cb = {0};
  if (r.has_codebook) {
    size_t nf = (size_t)r.cb.m * r.cb.ksub * r.cb.dsub;
    cents = (float *)malloc(nf * sizeof *cents);
    if (!cents) return VV_E_NOMEM;
    vv_read_f32le(r.cb.centroids, nf, cents);
    cb = (vv_codebook_in){r.cb.m, r.cb.ksub, r.cb.dsub, r.cb.trained, cents};
  }
  rc = r.v2 ? vv_index_encode_begin_v2(out, seq, base, count, r.has_codebook ? &cb : NULL)
            : vv_index_encode_begin(out, seq, base, count);
  vv_node_view nd;
  while (!rc && (rc = vv_index_decode_next(&r, &nd)) == VV_OK) {
    const uint32_t *links[VV_CODEC_MAX_LEVELS];
    for (uint32_t l = 0; l < nd.nlevels; l++) {
      for (uint32_t k = 0; k < nd.counts[l]; k++) store[l][k] = vv_le32(nd.links[l] + 4 * (size_t)k);
      links[l] = store[l];
    }
    vv_node_in in = {.slot = nd.slot, .id = nd.id, .id_len = nd.id_len, .chunk = nd.chunk, .row = nd.row,
                     .nlevels = nd.nlevels, .links = links, .counts = nd.counts, .v2 = r.v2, .code = nd.code,
                     .code_len = nd.code_len};
    rc = vv_index_encode_node(out, &in);
  }
  free(cents);
  return rc == VV_END ? VV_OK : rc;
}

/* Two segments decode to the same header, codebook and nodes. */
static int index_same(const unsigned char *a, size_t an, const unsigned char *b, size_t bn) {
  vv_index_reader ra, rb;
  uint64_t sa, sb;
  int ba, bb;
  uint32_t ca, cb;
  if (vv_index_decode_begin(&ra, a, an, &sa, &ba, &ca) || vv_index_decode_begin(&rb, b, bn, &sb, &bb, &cb)) return 0;
  if (sa != sb || ba != bb || ca != cb || ra.v2 != rb.v2 || ra.has_codebook != rb.has_codebook) return 0;
  if (ra.has_codebook) {
    const vv_codebook_view *x = &ra.cb, *y = &rb.cb;
    if (x->m != y->m || x->ksub != y->ksub || x->dsub != y->dsub || x->trained != y->trained) return 0;
    if (memcmp(x->centroids, y->centroids, (size_t)x->m * x->ksub * x->dsub * 4)) return 0;
  }
  vv_node_view x, y;
  for (;;) {
    int rx = vv_index_decode_next(&ra, &x), ry = vv_index_decode_next(&rb, &y);
    if (rx != ry) return 0;
    if (rx == VV_END) return 1;
    if (rx) return 0;
    if (x.slot != y.slot || x.chunk != y.chunk || x.row != y.row || x.nlevels != y.nlevels) return 0;
    if (!str_eq(x.id, x.id_len, y.id, y.id_len)) return 0;
    for (uint32_t l = 0; l < x.nlevels; l++)
      if (x.counts[l] != y.counts[l] || (x.counts[l] && memcmp(x.links[l], y.links[l], x.counts[l] * 4u))) return 0;
    if (!x.code != !y.code || x.code_len != y.code_len || (x.code && memcmp(x.code, y.code, x.code_len))) return 0;
  }
}

static const float k_golden_cents[4] = {1.0f, 0.0f, -1.0f, 0.5f};

static int encode_golden_index_v2(vv_buf *b) {
  uint32_t l0[1] = {5}, l1a[1] = {0};
  const uint32_t *links0[1] = {l0}, *links1[2] = {l1a, NULL};
  uint32_t c0[1] = {1}, c1[2] = {1, 0};
  static const uint8_t code0[1] = {1}, code1[1] = {0};
  vv_codebook_in cb = {.m = 1, .ksub = 2, .dsub = 2, .trained = 4, .centroids = k_golden_cents};
  vv_node_in n0 = {.slot = 0, .id = "a", .id_len = 1, .chunk = 1, .row = 0, .nlevels = 1, .links = links0,
                   .counts = c0, .v2 = 1, .code = code0, .code_len = 1};
  vv_node_in n1 = {.slot = 5, .chunk = 1, .row = 1, .nlevels = 2, .links = links1, .counts = c1, .v2 = 1,
                   .code = code1, .code_len = 1};
  vv_node_in n2 = {.slot = 7, .v2 = 1}; /* a free slot: no id, no links, no code */
  int rc = vv_index_encode_begin_v2(b, 3, 1, 3, &cb);
  if (!rc) rc = vv_index_encode_node(b, &n0);
  if (!rc) rc = vv_index_encode_node(b, &n1);
  if (!rc) rc = vv_index_encode_node(b, &n2);
  return rc;
}

VV_TEST(index_v2_golden_bytes) {
  unsigned char want[256];
  size_t wn = unhex(GOLDEN_INDEX_V2_HEX, want, sizeof want);
  VV_CHECK(wn == 127);
  vv_buf b = {0};
  VV_CHECK(encode_golden_index_v2(&b) == VV_OK);
  VV_CHECK(b.len == wn && memcmp(b.data, want, wn) == 0);
  vv_buf_free(&b);

  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  vv_node_view nd;
  VV_REQUIRE(vv_index_decode_begin(&r, want, wn, &seq, &base, &count) == VV_OK);
  VV_CHECK(seq == 3 && base == 1 && count == 3);
  VV_CHECK(r.v2 == 1 && r.has_codebook == 1);
  VV_CHECK(r.cb.m == 1 && r.cb.ksub == 2 && r.cb.dsub == 2 && r.cb.trained == 4);
  float cents[4];
  vv_read_f32le(r.cb.centroids, 4, cents);
  VV_CHECK(memcmp(cents, k_golden_cents, sizeof cents) == 0);
  VV_REQUIRE(vv_index_decode_next(&r, &nd) == VV_OK);
  VV_CHECK(nd.slot == 0 && nd.id_len == 1 && nd.id[0] == 'a' && nd.chunk == 1 && nd.row == 0);
  VV_CHECK(nd.nlevels == 1 && nd.counts[0] == 1 && vv_le32(nd.links[0]) == 5);
  VV_CHECK(nd.code_len == 1 && nd.code && nd.code[0] == 1);
  VV_REQUIRE(vv_index_decode_next(&r, &nd) == VV_OK);
  VV_CHECK(nd.slot == 5 && nd.id == NULL && nd.nlevels == 2 && nd.code_len == 1 && nd.code && nd.code[0] == 0);
  VV_REQUIRE(vv_index_decode_next(&r, &nd) == VV_OK);
  VV_CHECK(nd.slot == 7 && nd.id == NULL && nd.nlevels == 0 && nd.code == NULL && nd.code_len == 0);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_END);

  /* Format 1 still decodes, and says so. */
  wn = unhex(GOLDEN_INDEX_HEX, want, sizeof want);
  VV_REQUIRE(vv_index_decode_begin(&r, want, wn, &seq, &base, &count) == VV_OK);
  VV_CHECK(r.v2 == 0 && r.has_codebook == 0);
  while (vv_index_decode_next(&r, &nd) == VV_OK) VV_CHECK(nd.code == NULL && nd.code_len == 0);
}

static void index_roundtrip_v2(uint32_t count, uint32_t (*levels)(uint32_t), int base, uint64_t seq,
                               const vv_codebook_in *cb, uint32_t m) {
  node_data *nodes = (node_data *)calloc(count ? count : 1, sizeof *nodes);
  VV_REQUIRE(nodes);
  vv_buf b = {0}, again = {0};
  VV_REQUIRE(vv_index_encode_begin_v2(&b, seq, base, count, cb) == VV_OK);
  for (uint32_t i = 0; i < count; i++) {
    make_node_v2(&nodes[i], i, levels(i), m, cb ? cb->ksub : 256);
    VV_REQUIRE(vv_index_encode_node(&b, &nodes[i].in) == VV_OK);
  }
  unsigned char *q = dup_exact(b.data, b.len);
  vv_index_reader r;
  uint64_t s;
  int bs;
  uint32_t n;
  VV_REQUIRE(vv_index_decode_begin(&r, q, b.len, &s, &bs, &n) == VV_OK);
  VV_CHECK(s == seq && bs == (base != 0) && n == count);
  VV_CHECK(r.v2 == 1 && r.has_codebook == (cb != NULL));
  if (cb && r.has_codebook) {
    VV_CHECK(r.cb.m == cb->m && r.cb.ksub == cb->ksub && r.cb.dsub == cb->dsub && r.cb.trained == cb->trained);
    size_t nf = (size_t)cb->m * cb->ksub * cb->dsub;
    float *back = (float *)malloc(nf * sizeof *back);
    VV_REQUIRE(back);
    vv_read_f32le(r.cb.centroids, nf, back);
    VV_CHECK(memcmp(back, cb->centroids, nf * sizeof *back) == 0); /* bit for bit, NaN payloads too */
    free(back);
  }
  vv_node_view nd;
  for (uint32_t i = 0; i < count; i++) {
    VV_NOTE("node %u", i);
    VV_REQUIRE(vv_index_decode_next(&r, &nd) == VV_OK);
    VV_CHECK(node_matches(&nd, &nodes[i].in));
  }
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_END);
  /* Decoded and encoded again: the same bytes. */
  VV_CHECK(index_reencode(q, b.len, &again) == VV_OK);
  VV_CHECK(again.len == b.len && memcmp(again.data, b.data, b.len) == 0);
  free(q);
  vv_buf_free(&b);
  vv_buf_free(&again);
  free(nodes);
}

VV_TEST(index_v2_roundtrips) {
  float cents[8 * 256 * 2];
  for (size_t i = 0; i < sizeof cents / sizeof *cents; i++) cents[i] = (float)i * 0.25f - 100.0f;
  static const uint32_t nan_bits = 0x7fc00123u;
  memcpy(&cents[5], &nan_bits, 4); /* the codec carries bits; finiteness is the loader's check */
  vv_codebook_in cb8 = {.m = 8, .ksub = 256, .dsub = 2, .trained = 1ull << 40, .centroids = cents};
  vv_codebook_in cb1 = {.m = 1, .ksub = 1, .dsub = 1, .trained = 0, .centroids = cents};
  index_roundtrip_v2(0, flat_levels, 1, 0, NULL, 8);           /* an empty base, no codebook */
  index_roundtrip_v2(0, flat_levels, 1, 0, &cb8, 8);           /* an empty base with one */
  index_roundtrip_v2(30, flat_levels, 0, 77, NULL, 8);         /* flat: codes without a codebook in this segment */
  index_roundtrip_v2(30, multi_levels, 1, UINT64_MAX, &cb8, 8);
  index_roundtrip_v2(30, multi_levels, 0, 1ull << 33, NULL, 3);
  index_roundtrip_v2(9, multi_levels, 1, 5, &cb1, 1);
  /* The largest code and the largest codebook the format allows. */
  uint8_t *big = (uint8_t *)malloc(VV_CODEC_MAX_CODE);
  float *cents_max = (float *)calloc(65536, sizeof *cents_max);
  VV_REQUIRE(big && cents_max);
  memset(big, 0xab, VV_CODEC_MAX_CODE);
  vv_codebook_in cbmax = {.m = 256, .ksub = 1, .dsub = 256, .trained = 7, .centroids = cents_max};
  vv_buf b = {0};
  vv_node_in n = {.slot = 1, .v2 = 1, .code = big, .code_len = VV_CODEC_MAX_CODE};
  VV_CHECK(vv_index_encode_begin_v2(&b, 1, 1, 1, &cbmax) == VV_OK && vv_index_encode_node(&b, &n) == VV_OK);
  VV_CHECK(decode_index_all(b.data, b.len) == VV_OK);
  vv_buf_free(&b);
  free(big);
  free(cents_max);
}

VV_TEST(index_v2_encode_rejects_bad_input) {
  vv_buf b = {0};
  float cents[16] = {0};
  const uint8_t code[2] = {1, 2};
  vv_codebook_in ok = {.m = 2, .ksub = 2, .dsub = 2, .trained = 4, .centroids = cents}, cb;
  VV_REQUIRE(vv_index_encode_begin_v2(&b, 0, 1, 0, &ok) == VV_OK);
  size_t len = b.len;
  VV_CHECK(vv_index_encode_begin_v2(&b, 0, 0, VV_CODEC_MAX_COUNT + 1, NULL) == VV_E_INVALID);
  cb = ok; cb.m = 0;                              VV_CHECK(vv_index_encode_begin_v2(&b, 0, 1, 0, &cb) == VV_E_INVALID);
  cb = ok; cb.ksub = 0;                           VV_CHECK(vv_index_encode_begin_v2(&b, 0, 1, 0, &cb) == VV_E_INVALID);
  cb = ok; cb.ksub = 257;                         VV_CHECK(vv_index_encode_begin_v2(&b, 0, 1, 0, &cb) == VV_E_INVALID);
  cb = ok; cb.dsub = 0;                           VV_CHECK(vv_index_encode_begin_v2(&b, 0, 1, 0, &cb) == VV_E_INVALID);
  cb = ok; cb.centroids = NULL;                   VV_CHECK(vv_index_encode_begin_v2(&b, 0, 1, 0, &cb) == VV_E_INVALID);
  cb = ok; cb.m = 65537; cb.dsub = 1;             VV_CHECK(vv_index_encode_begin_v2(&b, 0, 1, 0, &cb) == VV_E_INVALID);
  cb = ok; cb.m = 257; cb.dsub = 256;             VV_CHECK(vv_index_encode_begin_v2(&b, 0, 1, 0, &cb) == VV_E_INVALID);
  cb = ok; cb.m = UINT32_MAX; cb.dsub = UINT32_MAX; VV_CHECK(vv_index_encode_begin_v2(&b, 0, 1, 0, &cb) == VV_E_INVALID);
  VV_CHECK(b.len == len);

  vv_node_in node = {.slot = 3, .v2 = 1, .code = code, .code_len = 2}, in;
  VV_CHECK(vv_index_encode_node(&b, &node) == VV_OK);
  len = b.len;
  in = node; in.v2 = 0;                            VV_CHECK(vv_index_encode_node(&b, &in) == VV_E_INVALID);
  in = node; in.code_len = 0;                      VV_CHECK(vv_index_encode_node(&b, &in) == VV_E_INVALID);
  in = node; in.code_len = VV_CODEC_MAX_CODE + 1;  VV_CHECK(vv_index_encode_node(&b, &in) == VV_E_INVALID);
  VV_CHECK(b.len == len);
  /* Format 2 without a code writes null; format 1 has no sixth field. */
  in = node; in.code = NULL; in.code_len = 0;
  VV_CHECK(vv_index_encode_node(&b, &in) == VV_OK && b.len == len + 7 && b.data[len] == 0x86 && b.data[len + 6] == 0xf6);
  len = b.len;
  in.v2 = 0;
  VV_CHECK(vv_index_encode_node(&b, &in) == VV_OK && b.len == len + 6 && b.data[len] == 0x85);
  vv_buf_free(&b);
}

/* ---- rejection: chunks built field by field, one rule broken at a time ---- */

/* The default spec builds GOLDEN_CHUNK_HEX; each test changes one thing. */
typedef struct cspec {
  const char *head;   /* map head hex; NULL = map(number of keys in order) */
  const char *order;  /* keys in order; "extra" adds "extra": 0 */
  const char *kind;
  uint64_t seq, dim, count, ids_n, meta_n;
  size_t slots_len, vec_len;
  const char *id0, *meta0;  /* hex of the first id / meta item */
  const char *key, *value;  /* replace this key's value with this hex */
  const char *trailer;      /* hex appended */
  size_t cut;               /* drop this many bytes from the end */
} cspec;

static cspec cdef(void) {
  return (cspec){NULL, "kind seq dim count slots ids vectors meta", "chunk", 1, 2, 2, 2, 2, 8, 16,
                 "6161", "627b7d", NULL, NULL, NULL, 0};
}

typedef struct tb {
  unsigned char *b;
  size_t n, cap;
} tb;

static void tb_byte(tb *t, unsigned char c) {
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 256;
    t->b = (unsigned char *)realloc(t->b, t->cap);
    if (!t->b) abort();
  }
  t->b[t->n++] = c;
}

static void tb_head(tb *t, int major, uint64_t v) {
  int m = major << 5;
  if (v < 24) {
    tb_byte(t, (unsigned char)(m | (int)v));
    return;
  }
  int k = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
  tb_byte(t, (unsigned char)(m | (k == 1 ? 24 : k == 2 ? 25 : k == 4 ? 26 : 27)));
  for (int i = k - 1; i >= 0; i--) tb_byte(t, (unsigned char)(v >> (8 * i)));
}

static void tb_hex(tb *t, const char *hex) {
  size_t cap = strlen(hex) + 1;
  for (const char *s = hex; (s = strchr(s, '*')) != NULL; s++) cap += strtoul(s + 1, NULL, 10);
  unsigned char *tmp = (unsigned char *)malloc(cap);
  if (!tmp) abort();
  size_t n = unhex(hex, tmp, cap);
  for (size_t i = 0; i < n; i++) tb_byte(t, tmp[i]);
  free(tmp);
}

static void tb_text(tb *t, const char *s) {
  tb_head(t, 3, strlen(s));
  for (; *s; s++) tb_byte(t, (unsigned char)*s);
}

static void tb_zeros(tb *t, int major, size_t n, const unsigned char *pattern, size_t plen) {
  tb_head(t, major, n);
  for (size_t i = 0; i < n; i++) tb_byte(t, plen ? pattern[i % plen] : 0);
}

static const unsigned char k_slot_bytes[8] = {0, 0, 0, 0, 5, 0, 0, 0};
static const unsigned char k_vec_bytes[16] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f, 0, 0, 0, 0};

static void cspec_value(tb *t, const cspec *s, const char *key) {
  if (s->key && strcmp(key, s->key) == 0) {
    tb_hex(t, s->value);
  } else if (!strcmp(key, "kind")) {
    tb_text(t, s->kind);
  } else if (!strcmp(key, "seq")) {
    tb_head(t, 0, s->seq);
  } else if (!strcmp(key, "dim")) {
    tb_head(t, 0, s->dim);
  } else if (!strcmp(key, "count")) {
    tb_head(t, 0, s->count);
  } else if (!strcmp(key, "slots")) {
    tb_zeros(t, 2, s->slots_len, k_slot_bytes, sizeof k_slot_bytes);
  } else if (!strcmp(key, "vectors")) {
    tb_zeros(t, 2, s->vec_len, k_vec_bytes, sizeof k_vec_bytes);
  } else if (!strcmp(key, "ids") || !strcmp(key, "meta")) {
    int ids = !strcmp(key, "ids");
    uint64_t n = ids ? s->ids_n : s->meta_n;
    tb_head(t, 4, n);
    for (uint64_t i = 0; i < n; i++) tb_hex(t, i == 0 ? (ids ? s->id0 : s->meta0) : "f6");
  } else { /* "extra" */
    tb_byte(t, 0);
  }
}

static tb cspec_build(const cspec *s) {
  tb t = {0};
  char order[256];
  snprintf(order, sizeof order, "%s", s->order);
  int nkeys = 0;
  for (char *k = strtok(order, " "); k; k = strtok(NULL, " ")) nkeys++;
  if (s->head) tb_hex(&t, s->head);
  else tb_head(&t, 5, (uint64_t)nkeys);
  snprintf(order, sizeof order, "%s", s->order);
  for (char *k = strtok(order, " "); k; k = strtok(NULL, " ")) {
    tb_text(&t, k);
    cspec_value(&t, s, k);
  }
  if (s->trailer) tb_hex(&t, s->trailer);
  t.n -= s->cut < t.n ? s->cut : t.n;
  return t;
}

static int cspec_decode(const cspec *s) {
  tb t = cspec_build(s);
  int rc = decode_chunk_copy(t.b, t.n, 2);
  free(t.b);
  return rc;
}

VV_TEST(chunk_spec_default_is_golden) {
  cspec s = cdef();
  tb t = cspec_build(&s);
  unsigned char want[256];
  size_t wn = unhex(GOLDEN_CHUNK_HEX, want, sizeof want);
  VV_CHECK(t.n == wn && memcmp(t.b, want, wn) == 0);
  free(t.b);
  VV_CHECK(cspec_decode(&s) == VV_OK);
}

/* Accepted: integers in longer-than-needed encodings, ranges at their edges. */
VV_TEST(chunk_accepts_noncanonical_uints) {
  cspec s;
  s = cdef(); s.key = "seq"; s.value = "1b 0000000000000001";  VV_CHECK(cspec_decode(&s) == VV_OK);
  s = cdef(); s.key = "dim"; s.value = "1a 00000002";          VV_CHECK(cspec_decode(&s) == VV_OK);
  s = cdef(); s.key = "count"; s.value = "18 02";              VV_CHECK(cspec_decode(&s) == VV_OK);
  s = cdef(); s.key = "seq"; s.value = "1b ffffffffffffffff";  VV_CHECK(cspec_decode(&s) == VV_OK);
}

#define REJECT(stmt)                                \
  do {                                              \
    cspec s = cdef();                               \
    stmt;                                           \
    VV_NOTE("%s", #stmt);                           \
    VV_CHECK(cspec_decode(&s) == VV_E_CORRUPT);     \
  } while (0)

VV_TEST(chunk_rejects_key_violations) {
  REJECT(s.order = "kind dim seq count slots ids vectors meta");       /* order */
  REJECT(s.order = "seq kind dim count slots ids vectors meta");
  REJECT(s.order = "kind seq dim count slots ids vectors");            /* missing */
  REJECT(s.order = "kind seq dim count slots ids meta");
  REJECT(s.order = "kind seq dim count slots ids vectors meta extra"); /* extra */
  REJECT(s.order = "kind seq dim extra count slots ids vectors meta");
  REJECT(s.order = "kind seq seq count slots ids vectors meta");       /* duplicate */
  REJECT(s.order = "kind seq seq dim count slots ids vectors meta");
  REJECT(s.order = "kind seq dim count slots ids vectors meta"; s.head = "a9"); /* map count */
  REJECT(s.order = "kind seq dim count slots ids vectors meta"; s.head = "a7");
  REJECT(s.head = "81");                                               /* not a map */
  REJECT(s.kind = "index");                                            /* kind */
  REJECT(s.kind = "Chunk");
  REJECT(s.kind = "chunk ");
  REJECT(s.kind = "");
  REJECT(s.key = "kind"; s.value = "45 6368756e6b");                   /* bytes, not text */
  REJECT(s.order = "kinD seq dim count slots ids vectors meta");
}

VV_TEST(chunk_rejects_forbidden_items) {
  REJECT(s.head = "bf"; s.trailer = "ff");                            /* indefinite map */
  REJECT(s.key = "ids"; s.value = "9f 6161 f6 ff");                    /* indefinite array */
  REJECT(s.key = "meta"; s.value = "9f 627b7d f6 ff");
  REJECT(s.id0 = "7f 6161 ff");                                        /* indefinite text */
  REJECT(s.key = "slots"; s.value = "5f 48 00000000 05000000 ff");     /* indefinite bytes */
  REJECT(s.key = "vectors"; s.value = "5f 48 0000803f 000000c0 48 0000003f 00000000 ff");
  REJECT(s.key = "seq"; s.value = "c0 01");                            /* tags */
  REJECT(s.head = "d9d9f7 a8");
  REJECT(s.id0 = "d820 6161");
  REJECT(s.key = "dim"; s.value = "f9 4000");                          /* floats */
  REJECT(s.key = "dim"; s.value = "fa 40000000");
  REJECT(s.key = "seq"; s.value = "fb 3ff0000000000000");
  REJECT(s.key = "seq"; s.value = "20");                               /* negative int */
  REJECT(s.key = "count"; s.value = "3b 0000000000000001");
  REJECT(s.id0 = "f7");                                                /* undefined */
  REJECT(s.id0 = "f4");                                                /* bool */
  REJECT(s.id0 = "e0");                                                /* simple values */
  REJECT(s.id0 = "f8 20");
  REJECT(s.id0 = "ff");                                                /* stray break */
  REJECT(s.id0 = "1c");                                                /* reserved info */
  REJECT(s.id0 = "01");                                                /* uint as id */
  REJECT(s.id0 = "41 61");                                             /* bytes as id */
  REJECT(s.meta0 = "a0");                                              /* map as meta */
  REJECT(s.meta0 = "60");                                              /* empty meta text: no JSON */
  REJECT(s.key = "seq"; s.value = "f6");                               /* null where required */
  REJECT(s.key = "slots"; s.value = "f6");
}

VV_TEST(chunk_rejects_count_and_length_mismatches) {
  REJECT(s.count = 3);                                      /* header vs arrays */
  REJECT(s.count = 1);
  REJECT(s.ids_n = 1);
  REJECT(s.ids_n = 3);
  REJECT(s.meta_n = 1);
  REJECT(s.meta_n = 3);
  REJECT(s.slots_len = 7);                                  /* bytes != count*4 */
  REJECT(s.slots_len = 12);
  REJECT(s.slots_len = 0);
  REJECT(s.vec_len = 12);                                   /* bytes != count*dim*4 */
  REJECT(s.vec_len = 20);
  REJECT(s.vec_len = 17);
  REJECT(s.dim = 3);                                        /* vs expect_dim 2 */
  REJECT(s.dim = 1; s.vec_len = 8);
  REJECT(s.dim = 0; s.vec_len = 0);                         /* ranges */
  REJECT(s.key = "dim"; s.value = "1a 00010001");           /* 65537 */
  REJECT(s.key = "count"; s.value = "1a 00989681");         /* VV_CODEC_MAX_COUNT + 1 */
  REJECT(s.key = "count"; s.value = "1b 0000000100000002"); /* 2^32 + 2 wraps to 2 in u32 */
  REJECT(s.trailer = "00");                                 /* trailing bytes */
  REJECT(s.trailer = "f6");
  REJECT(s.trailer = "a0");
  REJECT(s.cut = 1);                                        /* truncated */
  /* declared lengths beyond the buffer */
  REJECT(s.key = "meta"; s.value = "82 627b7d 7a ffffffff");
  REJECT(s.key = "meta"; s.value = "82 627b7d 7b ffffffffffffffff");
  REJECT(s.key = "meta"; s.value = "82 627b7d 7b 8000000000000000");
  REJECT(s.key = "meta"; s.value = "82 627b7d 63 6161");
  REJECT(s.key = "vectors"; s.value = "5b ffffffffffffffff");
  REJECT(s.key = "vectors"; s.value = "5b fffffffffffffff0 0000");
  REJECT(s.key = "ids"; s.value = "9b ffffffffffffffff 6161 f6");
  REJECT(s.head = "bb ffffffffffffffff");
  REJECT(s.head = "ba");
  REJECT(s.head = "");
}

VV_TEST(chunk_rejects_bad_text) {
  static const char *bad_utf8[] = {
      "61 80",          /* lone continuation */
      "62 c0 80",       /* overlong NUL */
      "62 c1 bf",       /* overlong */
      "63 e0 80 80",    /* overlong 3-byte */
      "63 ed a0 80",    /* surrogate U+D800 */
      "63 ed bf bf",    /* surrogate U+DFFF */
      "64 f0 80 80 80", /* overlong 4-byte */
      "64 f4 90 80 80", /* > U+10FFFF */
      "64 f5 80 80 80",
      "61 ff", "61 fe",
      "61 c3",          /* truncated sequence */
      "62 e6 97",
      "63 f0 9f 98",
      "62 c3 41",       /* bad continuation */
  };
  for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
    REJECT(s.id0 = bad_utf8[i]);
    REJECT(s.meta0 = bad_utf8[i]);
  }
  REJECT(s.id0 = "60");                        /* empty id */
  REJECT(s.id0 = "79 1001 *4097:78");          /* 4097-byte id */
  cspec s = cdef();
  s.id0 = "79 1000 *4096:78";                  /* 4096 is fine */
  VV_CHECK(cspec_decode(&s) == VV_OK);
  s.id0 = "64 f4 8f bf bf";                    /* U+10FFFF is fine */
  VV_CHECK(cspec_decode(&s) == VV_OK);
}

VV_TEST(chunk_decode_guards) {
  vv_chunk_view v;
  VV_CHECK(vv_chunk_decode(NULL, 0, 2, &v) == VV_E_CORRUPT);
  VV_CHECK(v.ids == NULL && v.count == 0);
  VV_CHECK(vv_chunk_decode(NULL, 5, 2, &v) == VV_E_INVALID);
  unsigned char want[256];
  size_t wn = unhex(GOLDEN_CHUNK_HEX, want, sizeof want);
  VV_CHECK(vv_chunk_decode(want, wn, 0, &v) == VV_E_CORRUPT);
  for (size_t cut = 0; cut < wn; cut++) {
    VV_NOTE("prefix %zu", cut);
    VV_CHECK(decode_chunk_copy(want, cut, 2) == VV_E_CORRUPT);
  }
}

/* ---- rejection: index segments ---- */

/* Splits a key list at spaces into keys[] (pointing into buf); returns
 * the count. (No strtok: the index builder calls the codebook builder
 * from inside its own loop.) */
static int split_keys(const char *order, char *buf, size_t cap, const char **keys, int max) {
  snprintf(buf, cap, "%s", order);
  int n = 0;
  for (char *p = buf; *p && n < max;) {
    while (*p == ' ') *p++ = '\0';
    if (!*p) break;
    keys[n++] = p;
    while (*p && *p != ' ') p++;
  }
  return n;
}

/* A format-2 codebook ("pq"), built key by key like cspec. */
typedef struct pqspec {
  const char *head;        /* map head hex; NULL = map(number of keys in order) */
  const char *order;       /* keys in order; "extra" adds "extra": 0 */
  uint64_t m, ksub, dsub, trained;
  size_t cbytes;           /* centroid byte string length */
  const char *key, *value; /* replace this key's value with this hex */
} pqspec;

static pqspec pqdef(void) {
  return (pqspec){.order = "m ksub dsub trained centroids", .m = 1, .ksub = 2, .dsub = 2, .trained = 4, .cbytes = 16};
}

static void pq_build(tb *t, const pqspec *q) {
  static const unsigned char cents[16] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0, 0, 0, 0x80, 0xbf, 0, 0, 0, 0x3f};
  char order[128];
  const char *keys[16];
  int n = split_keys(q->order, order, sizeof order, keys, 16);
  if (q->head) tb_hex(t, q->head);
  else tb_head(t, 5, (uint64_t)n);
  for (int i = 0; i < n; i++) {
    const char *k = keys[i];
    tb_text(t, k);
    if (q->key && !strcmp(k, q->key)) tb_hex(t, q->value);
    else if (!strcmp(k, "m")) tb_head(t, 0, q->m);
    else if (!strcmp(k, "ksub")) tb_head(t, 0, q->ksub);
    else if (!strcmp(k, "dsub")) tb_head(t, 0, q->dsub);
    else if (!strcmp(k, "trained")) tb_head(t, 0, q->trained);
    else if (!strcmp(k, "centroids")) tb_zeros(t, 2, q->cbytes, cents, sizeof cents);
    else tb_byte(t, 0);
  }
}

typedef struct ispec {
  const char *head, *order, *kind, *base, *nodes_head, *nodes, *key, *value, *trailer;
  const char *pq;          /* hex of the "pq" value (format 2) ... */
  const pqspec *pqs;       /* ... or built from this */
  uint64_t seq, count;
} ispec;

static ispec idef(void) {
  return (ispec){.order = "kind seq base count nodes",
                 .kind = "index",
                 .base = "f5",
                 .nodes_head = "82",
                 .nodes = "85 00 6161 01 00 81 44 05000000 85 05 f6 01 01 82 44 00000000 40",
                 .pq = "f6",
                 .seq = 3,
                 .count = 2};
}

/* Format 2: GOLDEN_INDEX_V2_HEX. */
static ispec idef2(void) {
  ispec s = idef();
  s.order = "kind seq base count pq nodes";
  s.pq = GOLDEN_PQ_HEX;
  s.nodes_head = "83";
  s.nodes = GOLDEN_NODES_V2_HEX;
  s.count = 3;
  return s;
}

static int ispec_decode(const ispec *s) {
  tb t = {0};
  char order[128];
  const char *keys[16];
  int nkeys = split_keys(s->order, order, sizeof order, keys, 16);
  if (s->head) tb_hex(&t, s->head);
  else tb_head(&t, 5, (uint64_t)nkeys);
  for (int i = 0; i < nkeys; i++) {
    const char *k = keys[i];
    tb_text(&t, k);
    if (s->key && !strcmp(k, s->key)) tb_hex(&t, s->value);
    else if (!strcmp(k, "kind")) tb_text(&t, s->kind);
    else if (!strcmp(k, "seq")) tb_head(&t, 0, s->seq);
    else if (!strcmp(k, "base")) tb_hex(&t, s->base);
    else if (!strcmp(k, "count")) tb_head(&t, 0, s->count);
    else if (!strcmp(k, "pq")) {
      if (s->pqs) pq_build(&t, s->pqs);
      else tb_hex(&t, s->pq);
    } else if (!strcmp(k, "nodes")) {
      tb_hex(&t, s->nodes_head);
      tb_hex(&t, s->nodes);
    } else tb_byte(&t, 0);
  }
  if (s->trailer) tb_hex(&t, s->trailer);
  int rc = decode_index_all(t.b, t.n);
  free(t.b);
  return rc;
}

#define IREJECT(stmt)                               \
  do {                                              \
    ispec s = idef();                               \
    stmt;                                           \
    VV_NOTE("%s", #stmt);                           \
    VV_CHECK(ispec_decode(&s) == VV_E_CORRUPT);     \
  } while (0)

/* One node, given as hex, in an otherwise valid segment. */
#define NODE_REJECT(hex) IREJECT(s.count = 1; s.nodes_head = "81"; s.nodes = hex)
#define NODE_ACCEPT(hex)                                          \
  do {                                                            \
    ispec s = idef();                                             \
    s.count = 1;                                                  \
    s.nodes_head = "81";                                          \
    s.nodes = hex;                                                \
    VV_NOTE("%s", hex);                                           \
    VV_CHECK(ispec_decode(&s) == VV_OK);                          \
  } while (0)

VV_TEST(index_spec_default_is_valid) {
  ispec s = idef();
  VV_CHECK(ispec_decode(&s) == VV_OK);
  s.base = "f4";
  VV_CHECK(ispec_decode(&s) == VV_OK);
  s.count = 0;
  s.nodes_head = "80";
  s.nodes = "";
  VV_CHECK(ispec_decode(&s) == VV_OK);
  NODE_ACCEPT("85 1a 7fffffff f6 1b ffffffffffffffff 1a ffffffff 80");
  NODE_ACCEPT("85 00 79 1000 *4096:61 00 00 80");
  NODE_ACCEPT("85 00 f6 00 00 91 *17:40");                  /* 17 levels */
  NODE_ACCEPT("85 00 f6 00 00 81 59 0400 *1024:00");        /* 256 links */
}

VV_TEST(index_rejects_header_violations) {
  IREJECT(s.order = "kind base seq count nodes");
  IREJECT(s.order = "kind seq base count");
  IREJECT(s.order = "kind seq base count nodes extra");
  IREJECT(s.order = "kind seq seq count nodes");
  IREJECT(s.head = "a6");
  IREJECT(s.head = "bf"; s.trailer = "ff");
  IREJECT(s.kind = "chunk");
  IREJECT(s.base = "01");
  IREJECT(s.base = "f6");
  IREJECT(s.base = "f7");
  IREJECT(s.key = "seq"; s.value = "c1 03");
  IREJECT(s.key = "seq"; s.value = "23");
  IREJECT(s.key = "seq"; s.value = "fa 40400000");
  IREJECT(s.count = 3);
  IREJECT(s.count = 1);
  IREJECT(s.nodes_head = "83");
  IREJECT(s.nodes_head = "9f"; s.trailer = "ff");
  IREJECT(s.key = "count"; s.value = "1a 00989681");
  IREJECT(s.count = 1000; s.nodes_head = "99 03e8");       /* more nodes than bytes */
  IREJECT(s.trailer = "00");
  IREJECT(s.trailer = "85 00 f6 00 00 80");
}

VV_TEST(index_rejects_node_violations) {
  NODE_REJECT("84 00 f6 00 00");                            /* arity */
  NODE_REJECT("86 00 f6 00 00 80 00");
  NODE_REJECT("9f 00 f6 00 00 80 ff");
  NODE_REJECT("a1 00 00");
  NODE_REJECT("85 1a 80000000 f6 00 00 80");                /* slot >= 2^31 */
  NODE_REJECT("85 1b 0000000100000000 f6 00 00 80");
  NODE_REJECT("85 20 f6 00 00 80");
  NODE_REJECT("85 00 f6 00 1b 0000000100000000 80");        /* row >= 2^32 */
  NODE_REJECT("85 00 f6 20 00 80");                         /* negative chunk */
  NODE_REJECT("85 00 60 00 00 80");                         /* empty id */
  NODE_REJECT("85 00 79 1001 *4097:61 00 00 80");           /* 4097-byte id */
  NODE_REJECT("85 00 62 c0 80 00 00 80");                   /* invalid UTF-8 */
  NODE_REJECT("85 00 63 ed a0 80 00 00 80");
  NODE_REJECT("85 00 41 61 00 00 80");                      /* bytes as id */
  NODE_REJECT("85 00 7f 61 61 ff 00 00 80");                /* indefinite id */
  NODE_REJECT("85 00 f6 00 00 92 *18:40");                  /* 18 levels */
  NODE_REJECT("85 00 f6 00 00 98 ff *255:40");
  NODE_REJECT("85 00 f6 00 00 81 43 000000");               /* links not a multiple of 4 */
  NODE_REJECT("85 00 f6 00 00 81 46 000000000000");
  NODE_REJECT("85 00 f6 00 00 81 59 0404 *1028:00");        /* 257 links */
  NODE_REJECT("85 00 f6 00 00 81 5f 44 00000000 ff");       /* indefinite links */
  NODE_REJECT("85 00 f6 00 00 9f 40 ff");
  NODE_REJECT("85 00 f6 00 00 81 80");                      /* array as links */
  NODE_REJECT("85 00 f6 00 00 81 d8 40 44 00000000");       /* tagged links */
  NODE_REJECT("85 00 f6 00 00 81 5a ffffffff");             /* beyond the buffer */
  NODE_REJECT("85 00 f6 00 00 82 44 00000000");             /* fewer levels than declared */
  NODE_REJECT("85 00 f6 00 00");                            /* truncated */
  NODE_REJECT("86 00 f6 00 00 80 f6");                      /* a format-2 node in a format-1 segment */
  NODE_REJECT("86 00 6161 01 00 81 44 05000000 41 01");
}

VV_TEST(index_reader_states) {
  unsigned char want[256];
  size_t wn = unhex(GOLDEN_INDEX_HEX, want, sizeof want);
  for (size_t cut = 0; cut < wn; cut++) {
    VV_NOTE("prefix %zu", cut);
    VV_CHECK(decode_index_all(want, cut) == VV_E_CORRUPT);
  }
  /* After an error the reader stays failed. */
  want[wn - 1] = 0x43; /* second node's second level: bytes(3), past the end */
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  vv_node_view nd;
  VV_REQUIRE(vv_index_decode_begin(&r, want, wn, &seq, &base, &count) == VV_OK);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_OK);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_E_CORRUPT);
  VV_CHECK(nd.nlevels == 0 && nd.id == NULL);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_E_CORRUPT);
  VV_CHECK(vv_index_decode_begin(&r, want, 3, &seq, &base, &count) == VV_E_CORRUPT);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_E_CORRUPT);
}

/* ---- rejection: format-2 segments ---- */

#define I2REJECT(stmt)                              \
  do {                                              \
    ispec s = idef2();                              \
    stmt;                                           \
    VV_NOTE("%s", #stmt);                           \
    VV_CHECK(ispec_decode(&s) == VV_E_CORRUPT);     \
  } while (0)

#define I2ACCEPT(stmt)                              \
  do {                                              \
    ispec s = idef2();                              \
    stmt;                                           \
    VV_NOTE("%s", #stmt);                           \
    VV_CHECK(ispec_decode(&s) == VV_OK);            \
  } while (0)

/* One codebook rule broken, in an otherwise valid format-2 segment. */
#define PQREJECT(stmt)                              \
  do {                                              \
    pqspec q = pqdef();                             \
    ispec s = idef2();                              \
    stmt;                                           \
    s.pqs = &q;                                     \
    VV_NOTE("%s", #stmt);                           \
    VV_CHECK(ispec_decode(&s) == VV_E_CORRUPT);     \
  } while (0)

#define PQACCEPT(stmt)                              \
  do {                                              \
    pqspec q = pqdef();                             \
    ispec s = idef2();                              \
    stmt;                                           \
    s.pqs = &q;                                     \
    VV_NOTE("%s", #stmt);                           \
    VV_CHECK(ispec_decode(&s) == VV_OK);            \
  } while (0)

/* One node, given as hex, in an otherwise valid format-2 segment. */
#define NODE2_REJECT(hex) I2REJECT(s.count = 1; s.nodes_head = "81"; s.nodes = hex)
#define NODE2_ACCEPT(hex) I2ACCEPT(s.count = 1; s.nodes_head = "81"; s.nodes = hex)

VV_TEST(index_v2_spec_default_is_golden) {
  ispec s = idef2();
  pqspec q = pqdef();
  unsigned char want[256];
  size_t wn = unhex(GOLDEN_INDEX_V2_HEX, want, sizeof want);
  tb t = {0};
  pq_build(&t, &q);
  unsigned char pq[64];
  size_t pn = unhex(GOLDEN_PQ_HEX, pq, sizeof pq);
  VV_CHECK(t.n == pn && memcmp(t.b, pq, pn) == 0); /* the builder's default is the golden codebook */
  free(t.b);
  VV_CHECK(ispec_decode(&s) == VV_OK);
  s.pqs = &q;
  VV_CHECK(ispec_decode(&s) == VV_OK);
  VV_CHECK(decode_index_all(want, wn) == VV_OK);
  I2ACCEPT(s.pq = "f6");                                      /* no codebook */
  I2ACCEPT(s.base = "f4");                                    /* (a delta; that one may not carry it is the loader's rule) */
  I2ACCEPT(s.count = 0; s.nodes_head = "80"; s.nodes = "");
  NODE2_ACCEPT("86 00 f6 00 00 80 f6");                       /* null code */
  NODE2_ACCEPT("86 00 f6 00 00 80 41 ff");                    /* (code bytes >= ksub, or a length other than m: the loader's rules) */
  NODE2_ACCEPT("86 1a 7fffffff 6161 1b ffffffffffffffff 1a ffffffff 81 44 00000000 42 0102");
  NODE2_ACCEPT("86 00 f6 00 00 80 5a 00010000 *65536:07");    /* the longest code */
  NODE2_ACCEPT("86 00 f6 00 00 80 59 0001 07");               /* a longer-than-needed length head */
  PQACCEPT(q.key = "trained"; q.value = "1b ffffffffffffffff");
  PQACCEPT(q.key = "m"; q.value = "1a 00000001");
  PQACCEPT(q.head = "b8 05");                                 /* a longer-than-needed map head, as elsewhere */
  PQACCEPT(q.ksub = 256; q.cbytes = 1 * 256 * 2 * 4);
  PQACCEPT(q.ksub = 1; q.cbytes = 8);
  PQACCEPT(q.m = 256; q.dsub = 256; q.ksub = 1; q.cbytes = 256 * 256 * 4); /* m * dsub = 65536: the most */
}

VV_TEST(index_v2_rejects_header_violations) {
  I2REJECT(s.order = "kind seq base pq count nodes");        /* "pq" out of place */
  I2REJECT(s.order = "kind seq base count nodes pq");
  I2REJECT(s.order = "pq kind seq base count nodes");
  I2REJECT(s.order = "kind seq base count extra nodes");     /* six keys, but not "pq" */
  I2REJECT(s.order = "kind seq base count pq pq nodes");     /* seven */
  I2REJECT(s.order = "kind seq base count pq");              /* "nodes" missing */
  I2REJECT(s.order = "kind seq base count pq"; s.head = "a6");
  I2REJECT(s.head = "a5");                                   /* six keys under a map(5) head */
  I2REJECT(s.head = "a7");
  I2REJECT(s.head = "bf"; s.trailer = "ff");
  /* The v1 layout with format-2 nodes, and the v2 layout with format-1 nodes. */
  I2REJECT(s.order = "kind seq base count nodes");
  I2REJECT(s.nodes = "85 00 6161 01 00 81 44 05000000 85 05 f6 01 01 82 44 00000000 40 85 07 f6 00 00 80");
  /* Mixed: one format-2 node, then a format-1 one. */
  I2REJECT(s.count = 2; s.nodes_head = "82"; s.nodes = "86 00 f6 00 00 80 f6 85 05 f6 00 00 80");
  /* "pq" must be a codebook map or null. */
  static const char *const bad_pq[] = {"00", "01", "40", "50 *16:00", "60", "80", "81 f6", "f4", "f5", "f7",
                                       "d8 40 f6", "c0 a0", "a0", "bf ff", "fa 00000000", "20", ""};
  for (size_t i = 0; i < sizeof bad_pq / sizeof *bad_pq; i++) I2REJECT(s.pq = bad_pq[i]);
  I2REJECT(s.trailer = "00");
  I2REJECT(s.count = 4);
  I2REJECT(s.count = 2);
}

VV_TEST(index_v2_rejects_malformed_codebooks) {
  /* Key order, missing, extra and duplicate keys. */
  PQREJECT(q.order = "ksub m dsub trained centroids");
  PQREJECT(q.order = "m dsub ksub trained centroids");
  PQREJECT(q.order = "m ksub trained dsub centroids");
  PQREJECT(q.order = "m ksub dsub centroids trained");
  PQREJECT(q.order = "ksub dsub trained centroids");          /* no m */
  PQREJECT(q.order = "m dsub trained centroids");             /* no ksub */
  PQREJECT(q.order = "m ksub trained centroids");             /* no dsub */
  PQREJECT(q.order = "m ksub dsub centroids");                /* no trained */
  PQREJECT(q.order = "m ksub dsub trained");                  /* no centroids */
  PQREJECT(q.order = "m ksub dsub trained"; q.head = "a5");
  PQREJECT(q.order = "m ksub dsub trained centroids extra");
  PQREJECT(q.order = "m ksub ksub trained centroids");
  PQREJECT(q.order = "M ksub dsub trained centroids");
  PQREJECT(q.head = "a4");
  PQREJECT(q.head = "a6");
  PQREJECT(q.head = "bf");
  /* ranges */
  PQREJECT(q.ksub = 0; q.cbytes = 0);
  PQREJECT(q.ksub = 257; q.cbytes = 1 * 257 * 2 * 4);
  PQREJECT(q.m = 0; q.cbytes = 0);
  PQREJECT(q.dsub = 0; q.cbytes = 0);
  PQREJECT(q.key = "ksub"; q.value = "1b 0000000100000002");  /* 2^32 + 2 would wrap to 2 in u32 */
  PQREJECT(q.key = "m"; q.value = "1b 0000000100000001");
  PQREJECT(q.key = "dsub"; q.value = "1b 0000000100000002");
  /* m * dsub: above the largest dimension, or overflowing 32 bits */
  PQREJECT(q.m = 257; q.dsub = 256; q.ksub = 1; q.cbytes = 257 * 256 * 4);
  PQREJECT(q.m = 65536; q.dsub = 65536; q.ksub = 1; q.cbytes = 16);
  PQREJECT(q.m = 65536; q.dsub = 2; q.ksub = 1; q.cbytes = 65536 * 2 * 4);
  PQREJECT(q.m = 65537; q.dsub = 1; q.ksub = 1; q.cbytes = 65537 * 4);
  PQREJECT(q.m = 1; q.dsub = 65537; q.ksub = 1; q.cbytes = 65537 * 4);
  /* centroid bytes: exactly m * ksub * dsub * 4 */
  PQREJECT(q.cbytes = 0);
  PQREJECT(q.cbytes = 12);
  PQREJECT(q.cbytes = 15);
  PQREJECT(q.cbytes = 17);
  PQREJECT(q.cbytes = 20);
  PQREJECT(q.cbytes = 32);
  PQREJECT(q.key = "centroids"; q.value = "5a ffffffff");      /* beyond the buffer */
  PQREJECT(q.key = "centroids"; q.value = "5f 48 0000803f 00000000 48 000080bf 0000003f ff"); /* indefinite */
  PQREJECT(q.key = "centroids"; q.value = "70 *16:61");         /* text */
  PQREJECT(q.key = "centroids"; q.value = "84 01 02 03 04");    /* array */
  PQREJECT(q.key = "centroids"; q.value = "f6");
  PQREJECT(q.key = "centroids"; q.value = "d8 40 50 *16:00");   /* tagged */
  /* forbidden items where uints belong */
  PQREJECT(q.key = "m"; q.value = "c0 01");
  PQREJECT(q.key = "m"; q.value = "f9 3c00");
  PQREJECT(q.key = "ksub"; q.value = "fa 40000000");
  PQREJECT(q.key = "dsub"; q.value = "21");
  PQREJECT(q.key = "trained"; q.value = "20");
  PQREJECT(q.key = "trained"; q.value = "fb 4010000000000000");
  PQREJECT(q.key = "trained"; q.value = "f6");
  PQREJECT(q.key = "m"; q.value = "41 01");
}

VV_TEST(index_v2_rejects_node_violations) {
  NODE2_REJECT("85 00 f6 00 00 80");                           /* a format-1 node in a format-2 segment */
  NODE2_REJECT("85 00 6161 01 00 81 44 05000000");
  NODE2_REJECT("87 00 f6 00 00 80 f6 f6");                     /* arity */
  NODE2_REJECT("84 00 f6 00 00");
  NODE2_REJECT("86 00 f6 00 00 80");                           /* six declared, five given */
  NODE2_REJECT("9f 00 f6 00 00 80 f6 ff");
  NODE2_REJECT("a1 00 00");
  /* the code: bytes of 1..65536, or null */
  NODE2_REJECT("86 00 f6 00 00 80 40");                        /* empty */
  NODE2_REJECT("86 00 f6 00 00 80 61 61");                     /* text */
  NODE2_REJECT("86 00 f6 00 00 80 60");
  NODE2_REJECT("86 00 f6 00 00 80 01");                        /* uint */
  NODE2_REJECT("86 00 f6 00 00 80 20");                        /* negative */
  NODE2_REJECT("86 00 f6 00 00 80 80");                        /* array */
  NODE2_REJECT("86 00 f6 00 00 80 81 01");
  NODE2_REJECT("86 00 f6 00 00 80 a0");                        /* map */
  NODE2_REJECT("86 00 f6 00 00 80 f4");                        /* bool */
  NODE2_REJECT("86 00 f6 00 00 80 f7");                        /* undefined */
  NODE2_REJECT("86 00 f6 00 00 80 fa 3f800000");               /* float */
  NODE2_REJECT("86 00 f6 00 00 80 d8 40 41 01");               /* tagged */
  NODE2_REJECT("86 00 f6 00 00 80 5f 41 01 ff");               /* indefinite bytes */
  NODE2_REJECT("86 00 f6 00 00 80 5a 00010001 *65537:00");     /* longer than any code */
  NODE2_REJECT("86 00 f6 00 00 80 5a ffffffff");               /* beyond the buffer */
  NODE2_REJECT("86 00 f6 00 00 80 5b ffffffffffffffff");
  NODE2_REJECT("86 00 f6 00 00 80 42 01");                     /* truncated */
  NODE2_REJECT("86 00 f6 00 00 80");
  /* The fields before it keep their rules. */
  NODE2_REJECT("86 1a 80000000 f6 00 00 80 f6");
  NODE2_REJECT("86 00 60 00 00 80 f6");
  NODE2_REJECT("86 00 f6 00 00 81 43 000000 f6");
  NODE2_REJECT("86 00 f6 00 00 92 *18:40 f6");
}

VV_TEST(index_v2_reader_states) {
  unsigned char want[256];
  size_t wn = unhex(GOLDEN_INDEX_V2_HEX, want, sizeof want);
  for (size_t cut = 0; cut < wn; cut++) {
    VV_NOTE("prefix %zu", cut);
    VV_CHECK(decode_index_all(want, cut) == VV_E_CORRUPT);
  }
  /* After an error the reader stays failed. */
  want[wn - 1] = 0x40; /* the free slot's code: empty bytes */
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  vv_node_view nd;
  VV_REQUIRE(vv_index_decode_begin(&r, want, wn, &seq, &base, &count) == VV_OK);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_OK);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_OK);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_E_CORRUPT);
  VV_CHECK(nd.code == NULL && nd.code_len == 0 && nd.id == NULL);
  VV_CHECK(vv_index_decode_next(&r, &nd) == VV_E_CORRUPT);
}

VV_TEST(le_helpers) {
  static const unsigned char b[8] = {0x78, 0x56, 0x34, 0x12, 0, 0, 0xc0, 0x3f};
  VV_CHECK(vv_le32(b) == 0x12345678u);
  float f;
  vv_read_f32le(b + 4, 1, &f);
  VV_CHECK(f == 1.5f);
}

/* ---- mutation smoke test ---- */

typedef struct sample {
  unsigned char *p;
  size_t n;
  int is_index;
  uint32_t dim;
} sample;

/* Offsets of every CBOR head in a valid (definite) encoding. */
static size_t find_heads(const unsigned char *p, size_t n, size_t *out, size_t cap) {
  size_t pos = 0, k = 0;
  while (pos < n && k < cap) {
    unsigned major = p[pos] >> 5, ai = p[pos] & 0x1f;
    size_t hlen = ai >= 24 && ai <= 27 ? 1 + ((size_t)1 << (ai - 24)) : 1;
    if (hlen > n - pos) break;
    uint64_t arg = ai < 24 ? ai : 0;
    for (size_t i = 1; i < hlen; i++) arg = arg << 8 | p[pos + i];
    out[k++] = pos;
    pos += hlen;
    if (major == 2 || major == 3) {
      if (arg > n - pos) break;
      pos += (size_t)arg;
    }
  }
  return k;
}

/* Rewrites the head at `at` with a new argument, in a random width. */
static size_t inflate_head(unsigned char *buf, size_t n, size_t cap, size_t at) {
  unsigned char head = buf[at];
  unsigned ai = head & 0x1f;
  size_t old = ai >= 24 && ai <= 27 ? 1 + ((size_t)1 << (ai - 24)) : 1;
  static const uint64_t big[] = {0xffffffffull, 0x7fffffffull, UINT64_MAX, 1ull << 63, 0x100000000ull, 65536};
  uint64_t v = rnd() % 2 ? (uint64_t)(ai < 24 ? ai : 24) + 1 + rndn(64) : big[rndn(6)];
  unsigned char nh[9];
  size_t nl;
  int w = (int)rndn(4); /* 1, 2, 4 or 8 argument bytes */
  size_t k = (size_t)1 << w;
  if (k < 8 && v >> (8 * k)) k = 8, w = 3;
  nh[0] = (unsigned char)((head & 0xe0) | (24 + w));
  for (size_t i = 0; i < k; i++) nh[1 + i] = (unsigned char)(v >> (8 * (k - 1 - i)));
  nl = 1 + k;
  if (at + old > n || n - old + nl > cap) return n;
  memmove(buf + at + nl, buf + at + old, n - at - old);
  memcpy(buf + at, nh, nl);
  return n - old + nl;
}

static size_t mutate(unsigned char *buf, size_t n, size_t cap) {
  static const unsigned char interesting[] = {0x00, 0x17, 0x18, 0x1b, 0x1f, 0x20, 0x40, 0x5b, 0x5f, 0x60, 0x7b,
                                              0x7f, 0x80, 0x9b, 0x9f, 0xa0, 0xbf, 0xc0, 0xd8, 0xf4, 0xf6, 0xf7,
                                              0xf9, 0xfa, 0xfb, 0xff, 0xc3, 0xed, 0xf0};
  size_t heads[4096];
  int ops = 1 + (int)rndn(3);
  for (int o = 0; o < ops && n; o++) {
    size_t at = rndn(n);
    switch (rndn(7)) {
    case 0: buf[at] ^= (unsigned char)(1u << rndn(8)); break;
    case 1: buf[at] = (unsigned char)rnd(); break;
    case 2: buf[at] = interesting[rndn(sizeof interesting)]; break;
    case 3: n = rndn(n); break; /* truncate */
    case 4: { /* insert 1..8 random bytes */
      size_t k = 1 + rndn(8);
      if (n + k > cap) break;
      memmove(buf + at + k, buf + at, n - at);
      for (size_t i = 0; i < k; i++) buf[at + i] = (unsigned char)rnd();
      n += k;
      break;
    }
    case 5: { /* delete 1..8 bytes */
      size_t k = 1 + rndn(8);
      if (k > n - at) k = n - at;
      memmove(buf + at, buf + at + k, n - at - k);
      n -= k;
      break;
    }
    default: { /* inflate a length or count field */
      size_t nh = find_heads(buf, n, heads, 4096);
      if (nh) n = inflate_head(buf, n, cap, heads[rndn(nh)]);
      break;
    }
    }
  }
  return n;
}

/* Anything the decoder accepts must survive decode -> encode -> decode. */
static int chunk_reencodes(const unsigned char *p, size_t n, uint32_t dim) {
  vv_chunk_view v, w;
  if (vv_chunk_decode(p, n, dim, &v) != VV_OK) return 0;
  chunk_data c;
  chunk_from_view(&c, &v);
  vv_buf b = {0};
  int ok = vv_chunk_encode(&c.in, &b) == VV_OK && vv_chunk_decode(b.data, b.len, dim, &w) == VV_OK;
  if (ok) {
    ok = view_matches(&w, &c.in);
    vv_chunk_view_free(&w);
  }
  vv_buf_free(&b);
  chunk_data_free(&c);
  vv_chunk_view_free(&v);
  return ok;
}

VV_TEST(mutation_smoke) {
  sample s[12];
  int ns = 0;
  unsigned char tmp[256];
  size_t n = unhex(GOLDEN_CHUNK_HEX, tmp, sizeof tmp);
  s[ns++] = (sample){dup_exact(tmp, n), n, 0, 2};
  n = unhex(GOLDEN_INDEX_HEX, tmp, sizeof tmp);
  s[ns++] = (sample){dup_exact(tmp, n), n, 1, 0};
  {
    vv_buf b = {0};
    vv_chunk_in empty = {3, 4, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    VV_REQUIRE(vv_chunk_encode(&empty, &b) == VV_OK);
    s[ns++] = (sample){b.data, b.len, 0, 4};
    b = (vv_buf){0};
    VV_REQUIRE(vv_index_encode_begin(&b, 0, 0, 0) == VV_OK);
    s[ns++] = (sample){b.data, b.len, 1, 0};
  }
  {
    chunk_data c;
    chunk_data_init(&c, 300, 3, 4);
    fill_rows(&c, 1);
    const char *ids[] = {"caf\xc3\xa9", NULL, "\xf0\x9f\x98\x80", "x"}, *metas[] = {"{\"a\":[1,2]}", "{}", NULL, "1"};
    for (int i = 0; i < 4; i++) {
      c.slots[i] = (uint32_t)i * 70000u;
      c.ids[i] = ids[i];
      c.id_lens[i] = ids[i] ? (uint32_t)strlen(ids[i]) : 0;
      c.metas[i] = metas[i];
      c.meta_lens[i] = metas[i] ? (uint32_t)strlen(metas[i]) : 0;
    }
    vv_buf b = {0};
    VV_REQUIRE(vv_chunk_encode(&c.in, &b) == VV_OK);
    s[ns++] = (sample){b.data, b.len, 0, 3};
    chunk_data_free(&c);
  }
  {
    node_data nd[4];
    vv_buf b = {0};
    VV_REQUIRE(vv_index_encode_begin(&b, 1ull << 35, 1, 4) == VV_OK);
    for (uint32_t i = 0; i < 4; i++) {
      make_node(&nd[i], i + 5, i);
      for (uint32_t l = 0; l < i; l++) nd[i].counts[l] = nd[i].counts[l] % 6;
      VV_REQUIRE(vv_index_encode_node(&b, &nd[i].in) == VV_OK);
    }
    s[ns++] = (sample){b.data, b.len, 1, 0};
  }
  n = unhex(GOLDEN_INDEX_V2_HEX, tmp, sizeof tmp);
  s[ns++] = (sample){dup_exact(tmp, n), n, 1, 0};
  {
    /* Format 2: a codebook, multi-level nodes, codes and null codes; and
     * one without a codebook. */
    float cents[3 * 4 * 2];
    for (int i = 0; i < 24; i++) cents[i] = (float)i - 11.5f;
    vv_codebook_in cb = {.m = 3, .ksub = 4, .dsub = 2, .trained = 300, .centroids = cents};
    for (int with_cb = 0; with_cb < 2; with_cb++) {
      node_data nd[4];
      vv_buf b = {0};
      VV_REQUIRE(vv_index_encode_begin_v2(&b, 9, with_cb, 4, with_cb ? &cb : NULL) == VV_OK);
      for (uint32_t i = 0; i < 4; i++) {
        make_node_v2(&nd[i], i + 2, i, 3, 4);
        for (uint32_t l = 0; l < i; l++) nd[i].counts[l] = nd[i].counts[l] % 5;
        VV_REQUIRE(vv_index_encode_node(&b, &nd[i].in) == VV_OK);
      }
      s[ns++] = (sample){b.data, b.len, 1, 0};
    }
  }

  clock_t t0 = clock();
  rng_state = 0x5eed5eedull;
  enum { ITER = 20000, CAP = 4096 };
  int accepted = 0, reencode_fail = 0, bad_rc = 0;
  for (int i = 0; i < ns; i++) /* every valid sample is accepted; every prefix is not */
    for (size_t cut = 0; cut <= s[i].n; cut++) {
      int rc = s[i].is_index ? decode_index_all(s[i].p, cut) : decode_chunk_copy(s[i].p, cut, s[i].dim);
      VV_CHECK(rc == (cut == s[i].n ? VV_OK : VV_E_CORRUPT));
    }
  for (int it = 0; it < ITER; it++) {
    const sample *sm = &s[it % ns];
    unsigned char buf[CAP];
    VV_REQUIRE(sm->n <= CAP);
    memcpy(buf, sm->p, sm->n);
    size_t m = mutate(buf, sm->n, CAP);
    int rc = sm->is_index ? decode_index_all(buf, m) : decode_chunk_copy(buf, m, sm->dim);
    if (rc != VV_OK && rc != VV_E_CORRUPT) bad_rc++;
    if (rc == VV_OK) {
      accepted++;
      unsigned char *q = dup_exact(buf, m);
      if (!sm->is_index) {
        if (!chunk_reencodes(q, m, sm->dim)) reencode_fail++;
      } else {
        /* Re-encoded, it decodes to the same segment, and is canonical:
         * encoding that again changes nothing. */
        vv_buf y = {0}, z = {0};
        if (index_reencode(q, m, &y) != VV_OK || !index_same(q, m, y.data, y.len) ||
            index_reencode(y.data, y.len, &z) != VV_OK || z.len != y.len || memcmp(z.data, y.data, y.len))
          reencode_fail++;
        vv_buf_free(&y);
        vv_buf_free(&z);
      }
      free(q);
    }
  }
  VV_CHECK(bad_rc == 0);
  VV_CHECK(reencode_fail == 0);
  VV_CHECK(accepted < ITER / 2); /* the mutations mostly break things */
  double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
  printf("mutation_smoke: %d mutations, %d still valid, %.2f s\n", ITER, accepted, secs);
  for (int i = 0; i < ns; i++) free(s[i].p);
}

VV_TEST_MAIN()
