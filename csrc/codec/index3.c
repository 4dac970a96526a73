/*
 * codec/index3.c: encoding and strict decoding of format-3 index segments
 * (the contract is index3.h).
 *
 * The structure is a handful of CBOR heads around long byte strings, so it
 * is read with a small definite-head parser of its own (shortest form
 * required, as the writer produces) rather than a token per field: the
 * per-node work is a few varints and fixed-width link gaps from flat
 * columns, no allocation, no per-node CBOR. Link gaps are bit-packed rather
 * than varints because a run of varints decodes serially (each one's start
 * depends on the last one's length), about 4 ns each, while packed gaps are
 * independent loads. The encoder builds each column in a temporary buffer
 * and then writes the map around them.
 */
#include "index3.h"

#include "../common/utf8.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NFIELDS_BLOCK 9u
#define NFIELDS_BLOCK_ATTRS 11u /* with "attrlens" and "attrs" */
#define FLAG_LEVELS 0x1fu
#define FLAG_CODE 0x80u
#define FLAG_RESERVED 0x60u

enum { MAJ_UINT = 0, MAJ_BYTES = 2, MAJ_TEXT = 3, MAJ_ARRAY = 4, MAJ_MAP = 5 };
#define CBOR_FALSE 0xf4u
#define CBOR_TRUE 0xf5u
#define CBOR_NULL 0xf6u

/* ---- varints (unsigned LEB128) ---- */

static size_t varint_put(unsigned char *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

static uint32_t zigzag32(int64_t d) { return (uint32_t)(d < 0 ? ((uint64_t)(-d) << 1) - 1 : (uint64_t)d << 1); }

/* Reads one shortest-form varint of at most `max` from [*pp, end). The
 * one-byte case is inline; the rest is out of line. */
static bool varint_slow(const unsigned char **pp, const unsigned char *end, uint64_t max, uint64_t *out) {
  const unsigned char *p = *pp;
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (p == end) return false;
    unsigned b = *p++;
    if (shift == 63 && b > 1) return false; /* past 2^64 */
    v |= (uint64_t)(b & 0x7f) << shift;
    if (b < 0x80) {
      if (b == 0 && shift) return false; /* not the shortest form */
      if (v > max) return false;
      *pp = p;
      *out = v;
      return true;
    }
  }
  return false;
}

static inline bool varint_get(const unsigned char **pp, const unsigned char *end, uint64_t max, uint64_t *out) {
  if (*pp < end && **pp < 0x80) {
    if (**pp > max) return false;
    *out = *(*pp)++;
    return true;
  }
  return varint_slow(pp, end, max, out);
}

/* The common u32 case reads eight bytes at once when they are there, with
 * no branch on the varint's length (which the data makes unpredictable):
 * it ends at the first byte without its high bit, and its value is the low
 * seven bits of each byte up to there. */
static inline bool varint_get32(const unsigned char **pp, const unsigned char *end, uint32_t max, uint32_t *out) {
  const unsigned char *p = *pp;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (end - p >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t stop = ~w & 0x8080808080808080ull;
    unsigned len = stop ? ((unsigned)__builtin_ctzll(stop) >> 3) + 1 : 9;
    uint64_t v = (w & 0x7f) | (w >> 1 & 0x3f80) | (w >> 2 & 0x1fc000) | (w >> 3 & 0xfe00000) | (w >> 4 & 0x7f0000000ull);
    v &= (1ull << (7 * len)) - 1; /* len <= 9: the shift stays below 64 */
    /* too long, not the shortest form (a final zero byte), or too large */
    if (len > 5 || (len > 1 && p[len - 1] == 0) || v > max) return false;
    *out = (uint32_t)v;
    *pp = p + len;
    return true;
  }
#endif
  uint64_t v;
  if (!varint_get(pp, end, max, &v)) return false;
  *out = (uint32_t)v;
  return true;
}

/* ---- UTF-8 ---- */

/* The whole id blob is validated once (vv_utf8_valid); an id is then
 * valid on its own iff it does not start with a continuation byte, since
 * the blob's boundaries between ids then fall between sequences. */
static bool is_continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

/* ---- field paths (the header's "fields") ---- */

/* 1..VV_INDEX3_MAX_FIELDS paths of 1..VV_INDEX3_MAX_PATH bytes of UTF-8
 * without NUL, all different (a quadratic check: there are at most 64). */
static bool fields_valid(const char *const *paths, const uint32_t *lens, uint32_t n) {
  if (n == 0 || n > VV_INDEX3_MAX_FIELDS || !paths || !lens) return false;
  return vv_names_valid(paths, lens, n, VV_INDEX3_MAX_PATH);
}

/* ---- CBOR heads: writing ---- */

static size_t head_size(uint64_t v) { return v < 24 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffffu ? 5 : 9; }

static size_t head_put(unsigned char *p, unsigned major, uint64_t v) {
  size_t n = head_size(v);
  unsigned m = major << 5;
  if (n == 1) {
    p[0] = (unsigned char)(m | v);
    return 1;
  }
  p[0] = (unsigned char)(m | (n == 2 ? 24 : n == 3 ? 25 : n == 5 ? 26 : 27));
  for (size_t i = 1; i < n; i++) p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
  return n;
}

static int put_head(vv_buf *b, unsigned major, uint64_t v) {
  int rc = vv_buf_reserve(b, 9);
  if (!rc) b->len += head_put(b->data + b->len, major, v);
  return rc;
}

static int put_text(vv_buf *b, const char *s) {
  size_t n = strlen(s);
  int rc = put_head(b, MAJ_TEXT, n);
  return rc ? rc : vv_buf_append(b, s, n);
}

static int put_bytes(vv_buf *b, const void *p, size_t n) {
  int rc = put_head(b, MAJ_BYTES, n);
  return rc ? rc : vv_buf_append(b, p, n);
}

static int put_simple(vv_buf *b, unsigned char v) { return vv_buf_append(b, &v, 1); }

static int put_varint(vv_buf *b, uint64_t v) {
  int rc = vv_buf_reserve(b, 10);
  if (!rc) b->len += varint_put(b->data + b->len, v);
  return rc;
}

/* ---- CBOR heads: reading (definite, shortest form) ---- */

typedef struct cur {
  const unsigned char *p;
  size_t len, pos;
} cur;

static bool get_head(cur *c, unsigned major, uint64_t *arg) {
  if (c->pos >= c->len || (unsigned)(c->p[c->pos] >> 5) != major) return false;
  unsigned ai = c->p[c->pos] & 0x1f;
  size_t rem = c->len - c->pos - 1;
  if (ai < 24) {
    *arg = ai;
    c->pos++;
    return true;
  }
  if (ai > 27) return false;
  size_t k = (size_t)1 << (ai - 24);
  if (k > rem) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < k; i++) v = v << 8 | c->p[c->pos + 1 + i];
  if (head_size(v) != 1 + k) return false;
  *arg = v;
  c->pos += 1 + k;
  return true;
}

static bool get_uint(cur *c, uint64_t max, uint64_t *v) { return get_head(c, MAJ_UINT, v) && *v <= max; }

static bool get_key(cur *c, const char *key) {
  uint64_t n;
  size_t k = strlen(key);
  if (!get_head(c, MAJ_TEXT, &n) || n != k || k > c->len - c->pos) return false;
  if (memcmp(c->p + c->pos, key, k)) return false;
  c->pos += k;
  return true;
}

/* A byte string: its payload [*s, *e). */
static bool get_bytes(cur *c, const unsigned char **s, const unsigned char **e) {
  uint64_t n;
  if (!get_head(c, MAJ_BYTES, &n) || n > c->len - c->pos) return false;
  *s = c->p + c->pos;
  *e = *s + n;
  c->pos += (size_t)n;
  return true;
}

static bool get_simple(cur *c, unsigned char v) {
  if (c->pos >= c->len || c->p[c->pos] != v) return false;
  c->pos++;
  return true;
}

/* ---- block encoding ---- */

typedef struct cols {
  vv_buf slots, flags, idlens, ids, locs, links, codes, attrlens, attrs;
} cols;

static void cols_free(cols *c) {
  vv_buf_free(&c->slots);
  vv_buf_free(&c->flags);
  vv_buf_free(&c->idlens);
  vv_buf_free(&c->ids);
  vv_buf_free(&c->locs);
  vv_buf_free(&c->links);
  vv_buf_free(&c->codes);
  vv_buf_free(&c->attrlens);
  vv_buf_free(&c->attrs);
}

/* Lists are short (2m at most on level 0): insertion sort beats qsort. */
static void sort_u32(uint32_t *v, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    uint32_t x = v[i], j = i;
    for (; j && v[j - 1] > x; j--) v[j] = v[j - 1];
    v[j] = x;
  }
}

static int check_node(const vv_node_in *nd, uint32_t m) {
  if (nd->slot > VV_INDEX3_MAX_SLOT || nd->nlevels > VV_CODEC_MAX_LEVELS) return VV_E_INVALID;
  if (nd->nlevels && (!nd->links || !nd->counts)) return VV_E_INVALID;
  if (nd->code && nd->code_len != m) return VV_E_INVALID;
  if (nd->attrs && nd->attrs_len > VV_INDEX3_MAX_ATTRS) return VV_E_INVALID;
  if (nd->id && (nd->id_len < 1 || nd->id_len > VV_MAX_ID_BYTES ||
                 !vv_utf8_valid((const unsigned char *)nd->id, nd->id_len)))
    return VV_E_INVALID;
  for (uint32_t l = 0; l < nd->nlevels; l++) {
    if (nd->counts[l] > VV_CODEC_MAX_LINKS || (nd->counts[l] && !nd->links[l])) return VV_E_INVALID;
    for (uint32_t j = 0; j < nd->counts[l]; j++)
      if (nd->links[l][j] > VV_INDEX3_MAX_SLOT) return VV_E_INVALID;
  }
  return VV_OK;
}

/* Bits needed for v (0 for 0). */
static unsigned bit_width(uint32_t v) { return v ? 32u - (unsigned)__builtin_clz(v) : 0u; }

/* One level's list, sorted: its count, the smallest link, then the n - 1
 * gaps bit-packed at the width of the largest (LSB first). Fixed-width
 * gaps decode without the serial length dependency varints have. */
static int put_links(vv_buf *b, const uint32_t *links, uint32_t n) {
  uint32_t sorted[VV_CODEC_MAX_LINKS], or_all = 0;
  if (n) memcpy(sorted, links, (size_t)n * sizeof *links);
  sort_u32(sorted, n);
  for (uint32_t j = 1; j < n; j++) or_all |= sorted[j] - sorted[j - 1];
  unsigned w = bit_width(or_all);
  size_t packed = n > 1 ? ((size_t)(n - 1) * w + 7) / 8 : 0;
  int rc = vv_buf_reserve(b, 5 + 5 + 1 + packed);
  if (rc) return rc;
  unsigned char *p = b->data + b->len;
  p += varint_put(p, n);
  if (n) p += varint_put(p, sorted[0]);
  if (n > 1) {
    *p++ = (unsigned char)w;
    uint64_t acc = 0; /* bits not yet written: fewer than 8 + 31 */
    unsigned nacc = 0;
    for (uint32_t j = 1; j < n; j++) {
      acc |= (uint64_t)(sorted[j] - sorted[j - 1]) << nacc;
      for (nacc += w; nacc >= 8; nacc -= 8, acc >>= 8) *p++ = (unsigned char)acc;
    }
    if (nacc) *p++ = (unsigned char)acc;
  }
  b->len = (size_t)(p - b->data);
  return VV_OK;
}

static int encode_node_cols(cols *c, const vv_node_in *nd, uint32_t prev_slot) {
  unsigned char flag = (unsigned char)(nd->nlevels | (nd->code ? FLAG_CODE : 0));
  int rc = put_varint(&c->slots, zigzag32((int64_t)nd->slot - prev_slot));
  if (!rc) rc = vv_buf_append(&c->flags, &flag, 1);
  if (!rc) rc = put_varint(&c->idlens, nd->id ? nd->id_len : 0);
  if (!rc && nd->id) rc = vv_buf_append(&c->ids, nd->id, nd->id_len);
  if (!rc) rc = put_varint(&c->locs, nd->chunk);
  if (!rc) rc = put_varint(&c->locs, nd->row);
  for (uint32_t l = 0; !rc && l < nd->nlevels; l++) rc = put_links(&c->links, nd->links[l], nd->counts[l]);
  if (!rc && nd->code) rc = vv_buf_append(&c->codes, nd->code, nd->code_len);
  if (!rc && nd->attrs) rc = put_varint(&c->attrlens, nd->attrs_len);
  if (!rc && nd->attrs && nd->attrs_len) rc = vv_buf_append(&c->attrs, nd->attrs, nd->attrs_len);
  return rc;
}

static int write_block(vv_buf *out, uint32_t n, const cols *c, uint32_t m, bool attrs) {
  int rc = put_head(out, MAJ_MAP, attrs ? NFIELDS_BLOCK_ATTRS : NFIELDS_BLOCK);
  if (!rc) rc = put_text(out, "count");
  if (!rc) rc = put_head(out, MAJ_UINT, n);
  if (!rc) rc = put_text(out, "slots");
  if (!rc) rc = put_bytes(out, c->slots.data, c->slots.len);
  if (!rc) rc = put_text(out, "flags");
  if (!rc) rc = put_bytes(out, c->flags.data, c->flags.len);
  if (!rc) rc = put_text(out, "idlens");
  if (!rc) rc = put_bytes(out, c->idlens.data, c->idlens.len);
  if (!rc) rc = put_text(out, "ids");
  if (!rc) rc = put_bytes(out, c->ids.data, c->ids.len);
  if (!rc) rc = put_text(out, "locs");
  if (!rc) rc = put_bytes(out, c->locs.data, c->locs.len);
  if (!rc) rc = put_text(out, "links");
  if (!rc) rc = put_bytes(out, c->links.data, c->links.len);
  if (!rc) rc = put_text(out, "m");
  if (!rc) rc = put_head(out, MAJ_UINT, m);
  if (!rc) rc = put_text(out, "codes");
  if (!rc) rc = put_bytes(out, c->codes.data, c->codes.len);
  if (!rc && attrs) rc = put_text(out, "attrlens");
  if (!rc && attrs) rc = put_bytes(out, c->attrlens.data, c->attrlens.len);
  if (!rc && attrs) rc = put_text(out, "attrs");
  if (!rc && attrs) rc = put_bytes(out, c->attrs.data, c->attrs.len);
  return rc;
}

int vv_index3_encode_block(const vv_node_in *nodes, uint32_t n, vv_buf *out) {
  if (n == 0 || n > VV_CODEC_MAX_COUNT || !nodes) return VV_E_INVALID;
  uint32_t m = 0;
  for (uint32_t i = 0; i < n && !m; i++)
    if (nodes[i].code) m = nodes[i].code_len;
  if (m > VV_CODEC_MAX_CODE || (m == 0 && nodes[0].code)) return VV_E_INVALID;
  bool attrs = nodes[0].attrs != NULL;
  for (uint32_t i = 0; i < n; i++) {
    int rc = (nodes[i].attrs != NULL) == attrs ? check_node(&nodes[i], m) : VV_E_INVALID;
    if (rc) return rc;
  }
  cols c;
  memset(&c, 0, sizeof c);
  int rc = VV_OK;
  for (uint32_t i = 0; i < n && !rc; i++) rc = encode_node_cols(&c, &nodes[i], i ? nodes[i - 1].slot : 0);
  size_t len0 = out->len;
  if (!rc) rc = write_block(out, n, &c, m, attrs);
  if (rc) out->len = len0;
  cols_free(&c);
  return rc;
}

static int codebook_size(const vv_codebook_in *cb, size_t *bytes) {
  if (!cb->m || !cb->ksub || cb->ksub > 256 || !cb->dsub || !cb->centroids) return VV_E_INVALID;
  if ((uint64_t)cb->m * cb->dsub > VV_MAX_DIMENSION) return VV_E_INVALID;
  *bytes = (size_t)cb->m * cb->ksub * cb->dsub * 4;
  return VV_OK;
}

static int put_codebook(vv_buf *out, const vv_codebook_in *cb, size_t bytes) {
  int rc = put_head(out, MAJ_MAP, 5);
  if (!rc) rc = put_text(out, "m");
  if (!rc) rc = put_head(out, MAJ_UINT, cb->m);
  if (!rc) rc = put_text(out, "ksub");
  if (!rc) rc = put_head(out, MAJ_UINT, cb->ksub);
  if (!rc) rc = put_text(out, "dsub");
  if (!rc) rc = put_head(out, MAJ_UINT, cb->dsub);
  if (!rc) rc = put_text(out, "trained");
  if (!rc) rc = put_head(out, MAJ_UINT, cb->trained);
  if (!rc) rc = put_text(out, "centroids");
  if (!rc) rc = put_head(out, MAJ_BYTES, bytes);
  if (!rc) rc = vv_buf_reserve(out, bytes);
  if (rc) return rc;
  unsigned char *dst = out->data + out->len;
  for (size_t i = 0; i < bytes / 4; i++) {
    uint32_t u;
    memcpy(&u, &cb->centroids[i], 4);
    for (int k = 0; k < 4; k++) dst[4 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
  }
  out->len += bytes;
  return VV_OK;
}

static int put_fields(vv_buf *out, const vv_fields_in *f) {
  int rc = put_head(out, MAJ_ARRAY, f->n);
  for (uint32_t i = 0; i < f->n && !rc; i++) {
    rc = put_head(out, MAJ_TEXT, f->lens[i]);
    if (!rc) rc = vv_buf_append(out, f->paths[i], f->lens[i]);
  }
  return rc;
}

int vv_index3_encode_begin(vv_buf *out, uint64_t seq, int base, uint32_t count, uint32_t nblocks,
                           const vv_codebook_in *cb, const vv_fields_in *fields) {
  if (count > VV_CODEC_MAX_COUNT || nblocks > count || (count && !nblocks)) return VV_E_INVALID;
  if (fields && !fields_valid(fields->paths, fields->lens, fields->n)) return VV_E_INVALID;
  size_t cbytes = 0;
  int rc = cb ? codebook_size(cb, &cbytes) : VV_OK;
  if (rc) return rc;
  size_t len0 = out->len;
  rc = put_head(out, MAJ_MAP, fields ? 7 : 6);
  if (!rc) rc = put_text(out, "kind");
  if (!rc) rc = put_text(out, "index");
  if (!rc) rc = put_text(out, "seq");
  if (!rc) rc = put_head(out, MAJ_UINT, seq);
  if (!rc) rc = put_text(out, "base");
  if (!rc) rc = put_simple(out, base ? CBOR_TRUE : CBOR_FALSE);
  if (!rc) rc = put_text(out, "count");
  if (!rc) rc = put_head(out, MAJ_UINT, count);
  if (!rc) rc = put_text(out, "pq");
  if (!rc) rc = cb ? put_codebook(out, cb, cbytes) : put_simple(out, CBOR_NULL);
  if (!rc && fields) rc = put_text(out, "fields");
  if (!rc && fields) rc = put_fields(out, fields);
  if (!rc) rc = put_text(out, "blocks");
  if (!rc) rc = put_head(out, MAJ_ARRAY, nblocks);
  if (rc) out->len = len0;
  return rc;
}

/* ---- block decoding ---- */

/* The frame: every key and byte string head, nothing inside the strings. */
static bool read_frame(cur *c, vv_index3_block *b) {
  uint64_t n, m, nf;
  const unsigned char *flags_end;
  if (!get_head(c, MAJ_MAP, &nf) || (nf != NFIELDS_BLOCK && nf != NFIELDS_BLOCK_ATTRS)) return false;
  if (!get_key(c, "count") || !get_uint(c, VV_CODEC_MAX_COUNT, &n) || n == 0) return false;
  if (!get_key(c, "slots") || !get_bytes(c, &b->slots, &b->slots_end)) return false;
  if (!get_key(c, "flags") || !get_bytes(c, &b->flags, &flags_end) || (uint64_t)(flags_end - b->flags) != n)
    return false;
  if (!get_key(c, "idlens") || !get_bytes(c, &b->idlens, &b->idlens_end)) return false;
  if (!get_key(c, "ids") || !get_bytes(c, &b->ids, &b->ids_end)) return false;
  if (!get_key(c, "locs") || !get_bytes(c, &b->locs, &b->locs_end)) return false;
  if (!get_key(c, "links") || !get_bytes(c, &b->links, &b->links_end)) return false;
  if (!get_key(c, "m") || !get_uint(c, VV_CODEC_MAX_CODE, &m)) return false;
  if (!get_key(c, "codes") || !get_bytes(c, &b->codes, &b->codes_end)) return false;
  b->has_attrs = nf == NFIELDS_BLOCK_ATTRS;
  if (b->has_attrs && (!get_key(c, "attrlens") || !get_bytes(c, &b->attrlens, &b->attrlens_end) ||
                       !get_key(c, "attrs") || !get_bytes(c, &b->attrs, &b->attrs_end)))
    return false;
  b->count = (uint32_t)n;
  b->m = (uint32_t)m;
  return true;
}

int vv_index3_block_span(const unsigned char *p, size_t len, size_t *span, uint32_t *count) {
  vv_index3_block b;
  cur c = {p, p ? len : 0, 0};
  if (!read_frame(&c, &b)) return VV_E_CORRUPT;
  *span = c.pos;
  *count = b.count;
  return VV_OK;
}

/* Sizes every column must have, from what the frame and flags say; the
 * exact ends are checked after the last node. */
static bool check_columns(const vv_index3_block *b) {
  uint64_t n = b->count, coded = 0;
  for (uint64_t i = 0; i < n; i++) {
    unsigned f = b->flags[i];
    if ((f & FLAG_RESERVED) || (f & FLAG_LEVELS) > VV_CODEC_MAX_LEVELS) return false;
    coded += f >> 7;
  }
  if ((b->m == 0) != (coded == 0) || (uint64_t)(b->codes_end - b->codes) != coded * b->m) return false;
  /* Every node takes at least one byte of slots, idlens and attrlens, two
   * of locs. */
  if ((uint64_t)(b->slots_end - b->slots) < n || (uint64_t)(b->idlens_end - b->idlens) < n ||
      (uint64_t)(b->locs_end - b->locs) < 2 * n || (b->has_attrs && (uint64_t)(b->attrlens_end - b->attrlens) < n))
    return false;
  size_t nids = (size_t)(b->ids_end - b->ids);
  return vv_utf8_valid(b->ids, nids);
}

static int block_fail(vv_index3_block *b) {
  b->failed = 1;
  return VV_E_CORRUPT;
}

int vv_index3_block_begin(vv_index3_block *b, const unsigned char *p, size_t len, uint32_t *count) {
  memset(b, 0, offsetof(vv_index3_block, scratch));
  cur c = {p, p ? len : 0, 0};
  if (!read_frame(&c, b) || c.pos != len || !check_columns(b)) return block_fail(b);
  *count = b->count;
  return VV_OK;
}

/* Eight bytes from p, zero past end (only the last few gaps of a column
 * take this branch). */
static inline uint64_t load64(const unsigned char *p, const unsigned char *end) {
  uint64_t x = 0;
  memcpy(&x, p, end - p >= 8 ? 8 : (size_t)(end - p));
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
  x = __builtin_bswap64(x);
#endif
  return x;
}

/* One level: count, first, width, packed gaps. The width must be the
 * smallest that holds the largest gap, the padding bits zero, and every
 * value below 2^31 (the sum is checked once: 255 gaps below 2^31 cannot
 * overflow 64 bits). */
static bool read_links(vv_index3_block *b, uint32_t *dst, uint32_t *count) {
  uint32_t n, first;
  if (!varint_get32(&b->links, b->links_end, VV_CODEC_MAX_LINKS, &n)) return false;
  *count = n;
  if (n == 0) return true;
  if (!varint_get32(&b->links, b->links_end, VV_INDEX3_MAX_SLOT, &first)) return false;
  dst[0] = first;
  if (n == 1) return true;
  const unsigned char *p = b->links, *end = b->links_end;
  if (p == end || *p > 31) return false;
  unsigned w = *p++;
  size_t bits = (size_t)(n - 1) * w, packed = (bits + 7) / 8;
  if (packed > (size_t)(end - p)) return false;
  uint64_t mask = (1ull << w) - 1, v = first;
  uint32_t or_all = 0;
  for (uint32_t j = 1; j < n; j++) {
    size_t bit = (size_t)(j - 1) * w;
    uint32_t gap = (uint32_t)(load64(p + (bit >> 3), end) >> (bit & 7) & mask);
    or_all |= gap;
    v += gap;
    dst[j] = (uint32_t)v;
  }
  if (bit_width(or_all) != w || v > VV_INDEX3_MAX_SLOT) return false;
  if ((bits & 7) && (p[packed - 1] >> (bits & 7))) return false;
  b->links = p + packed;
  return true;
}

static bool columns_ended(const vv_index3_block *b) {
  return b->slots == b->slots_end && b->idlens == b->idlens_end && b->ids == b->ids_end && b->locs == b->locs_end &&
         b->links == b->links_end && b->codes == b->codes_end && b->attrlens == b->attrlens_end &&
         b->attrs == b->attrs_end;
}

static void expose_links(vv_index3_block *b, vv_node_view *nd, const uint32_t *links32[VV_CODEC_MAX_LEVELS],
                         uint32_t *const at[VV_CODEC_MAX_LEVELS]) {
  for (uint32_t l = 0; l < nd->nlevels; l++) {
    if (links32) links32[l] = at[l];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    nd->links[l] = (const unsigned char *)at[l];
#else
    unsigned char *le = b->scratch_le + 4 * (size_t)(at[l] - b->scratch);
    for (uint32_t j = 0; j < nd->counts[l]; j++)
      for (int k = 0; k < 4; k++) le[4 * j + (uint32_t)k] = (unsigned char)(at[l][j] >> (8 * k));
    nd->links[l] = le;
#endif
  }
  (void)b;
}

static int node_decode(vv_index3_block *b, vv_node_view *nd, const uint32_t *links32[VV_CODEC_MAX_LEVELS]) {
  uint32_t zz, idlen;
  if (!varint_get32(&b->slots, b->slots_end, UINT32_MAX, &zz)) return VV_E_CORRUPT;
  int64_t slot = (int64_t)b->prev_slot + ((zz & 1) ? -(int64_t)(zz >> 1) - 1 : (int64_t)(zz >> 1));
  if (slot < 0 || slot > VV_INDEX3_MAX_SLOT) return VV_E_CORRUPT;
  nd->slot = b->prev_slot = (uint32_t)slot;
  unsigned f = b->flags[b->done];
  nd->nlevels = f & FLAG_LEVELS;
  if (!varint_get32(&b->idlens, b->idlens_end, VV_MAX_ID_BYTES, &idlen)) return VV_E_CORRUPT;
  if (idlen) {
    if (idlen > (size_t)(b->ids_end - b->ids) || is_continuation(b->ids[0])) return VV_E_CORRUPT;
    nd->id = (const char *)b->ids;
    nd->id_len = idlen;
    b->ids += idlen;
  }
  if (!varint_get(&b->locs, b->locs_end, UINT64_MAX, &nd->chunk) ||
      !varint_get32(&b->locs, b->locs_end, UINT32_MAX, &nd->row))
    return VV_E_CORRUPT;
  uint32_t *at[VV_CODEC_MAX_LEVELS];
  uint32_t *dst = b->scratch;
  for (uint32_t l = 0; l < nd->nlevels; l++) {
    at[l] = dst;
    if (!read_links(b, dst, &nd->counts[l])) return VV_E_CORRUPT;
    dst += nd->counts[l];
  }
  expose_links(b, nd, links32, at);
  if (f & FLAG_CODE) {
    nd->code = b->codes; /* check_columns proved room for every code */
    nd->code_len = b->m;
    b->codes += b->m;
  }
  if (b->has_attrs) {
    uint32_t alen;
    if (!varint_get32(&b->attrlens, b->attrlens_end, VV_INDEX3_MAX_ATTRS, &alen) ||
        alen > (size_t)(b->attrs_end - b->attrs))
      return VV_E_CORRUPT;
    nd->attrs = b->attrs;
    nd->attrs_len = alen;
    b->attrs += alen;
  }
  return VV_OK;
}

/* Only the scalars: links[] and counts[] are defined up to nlevels. */
static void view_clear(vv_node_view *v) {
  v->slot = v->id_len = v->row = v->nlevels = v->code_len = v->attrs_len = 0;
  v->id = NULL;
  v->chunk = 0;
  v->code = NULL;
  v->attrs = NULL;
}

int vv_index3_block_next(vv_index3_block *b, vv_node_view *node, const uint32_t *links32[VV_CODEC_MAX_LEVELS]) {
  view_clear(node);
  if (b->failed) return VV_E_CORRUPT;
  if (b->done == b->count) return columns_ended(b) ? VV_END : block_fail(b);
  int rc = node_decode(b, node, links32);
  if (rc) {
    view_clear(node);
    return block_fail(b);
  }
  b->done++;
  return VV_OK;
}

/* ---- segment decoding ---- */

static bool read_codebook(cur *c, vv_codebook_view *cb) {
  uint64_t m, ksub, dsub, trained;
  const unsigned char *s, *e;
  if (!get_key(c, "m") || !get_uint(c, VV_MAX_DIMENSION, &m) || !get_key(c, "ksub") || !get_uint(c, 256, &ksub) ||
      !get_key(c, "dsub") || !get_uint(c, VV_MAX_DIMENSION, &dsub) || !get_key(c, "trained") ||
      !get_uint(c, UINT64_MAX, &trained))
    return false;
  if (!m || !ksub || !dsub || m * dsub > VV_MAX_DIMENSION) return false;
  if (!get_key(c, "centroids") || !get_bytes(c, &s, &e) || (uint64_t)(e - s) != m * ksub * dsub * 4) return false;
  *cb = (vv_codebook_view){(uint32_t)m, (uint32_t)ksub, (uint32_t)dsub, trained, s};
  return true;
}

/* The header's "fields": an array of distinct text strings. */
static bool read_fields(cur *c, vv_index3_reader *r) {
  uint64_t n, len;
  if (!get_head(c, MAJ_ARRAY, &n) || n == 0 || n > VV_INDEX3_MAX_FIELDS) return false;
  for (uint32_t i = 0; i < n; i++) {
    if (!get_head(c, MAJ_TEXT, &len) || len > VV_INDEX3_MAX_PATH || len > c->len - c->pos) return false;
    r->field_ptr[i] = (const char *)c->p + c->pos;
    r->field_len[i] = (uint32_t)len;
    c->pos += (size_t)len;
  }
  r->nfields = (uint32_t)n;
  return fields_valid(r->field_ptr, r->field_len, r->nfields);
}

static int reader_fail(vv_index3_reader *r) {
  r->pos = SIZE_MAX;
  r->blocks_seen = r->nblocks;
  r->in_block = 0;
  return VV_E_CORRUPT;
}

/* The header up to the blocks array head. `alone`: the input is the header
 * and nothing else (blocks come separately); otherwise the blocks follow
 * and there must be at least a byte for each. */
static int read_header(vv_index3_reader *r, const unsigned char *p, size_t len, int alone, uint64_t *seq,
                       int *base, uint32_t *count, uint32_t *nblocks) {
  memset(r, 0, offsetof(vv_index3_reader, blk));
  cur c = {p, p ? len : 0, 0};
  uint64_t nf, s, n, nb, pqmap;
  int b;
  if (!get_head(&c, MAJ_MAP, &nf) || (nf != 6 && nf != 7) || !get_key(&c, "kind") || !get_key(&c, "index") ||
      !get_key(&c, "seq") || !get_uint(&c, UINT64_MAX, &s) || !get_key(&c, "base"))
    return reader_fail(r);
  if (get_simple(&c, CBOR_TRUE)) b = 1;
  else if (get_simple(&c, CBOR_FALSE)) b = 0;
  else return reader_fail(r);
  if (!get_key(&c, "count") || !get_uint(&c, VV_CODEC_MAX_COUNT, &n) || !get_key(&c, "pq")) return reader_fail(r);
  if (!get_simple(&c, CBOR_NULL)) {
    if (!get_head(&c, MAJ_MAP, &pqmap) || pqmap != 5 || !read_codebook(&c, &r->cb)) return reader_fail(r);
    r->has_codebook = 1;
  }
  if (nf == 7 && (!get_key(&c, "fields") || !read_fields(&c, r))) return reader_fail(r);
  /* Every block holds a node, so there are no more blocks than nodes. */
  if (!get_key(&c, "blocks") || !get_head(&c, MAJ_ARRAY, &nb) || nb > n || (n && !nb)) return reader_fail(r);
  if (alone ? c.pos != len : nb > len - c.pos) return reader_fail(r);
  r->p = p;
  r->len = len;
  r->pos = c.pos;
  r->count = (uint32_t)n;
  r->nblocks = (uint32_t)nb;
  *seq = s;
  *base = b;
  *count = (uint32_t)n;
  *nblocks = (uint32_t)nb;
  return VV_OK;
}

int vv_index3_decode_begin(vv_index3_reader *r, const unsigned char *p, size_t len, uint64_t *seq, int *base,
                           uint32_t *count, uint32_t *nblocks) {
  return read_header(r, p, len, 0, seq, base, count, nblocks);
}

int vv_index3_decode_header(vv_index3_reader *r, const unsigned char *p, size_t len, uint64_t *seq, int *base,
                            uint32_t *count, uint32_t *nblocks) {
  return read_header(r, p, len, 1, seq, base, count, nblocks);
}

int vv_index3_next_block(vv_index3_reader *r, const unsigned char **block, size_t *len, uint32_t *count) {
  *block = NULL;
  *len = 0;
  *count = 0;
  if (r->pos == SIZE_MAX) return VV_E_CORRUPT;
  if (r->blocks_seen == r->nblocks) return r->pos == r->len && r->nodes_seen == r->count ? VV_END : reader_fail(r);
  size_t span;
  uint32_t n;
  if (vv_index3_block_span(r->p + r->pos, r->len - r->pos, &span, &n) || r->nodes_seen + n > r->count)
    return reader_fail(r);
  *block = r->p + r->pos;
  *len = span;
  *count = n;
  r->pos += span;
  r->blocks_seen++;
  r->nodes_seen += n;
  return VV_OK;
}

int vv_index3_decode_next(vv_index3_reader *r, vv_node_view *node, const uint32_t *links32[VV_CODEC_MAX_LEVELS]) {
  for (;;) {
    if (r->in_block) {
      int rc = vv_index3_block_next(&r->blk, node, links32);
      if (rc != VV_END) return rc == VV_OK ? VV_OK : reader_fail(r);
      r->in_block = 0;
    }
    const unsigned char *bp;
    size_t blen;
    uint32_t n;
    int rc = vv_index3_next_block(r, &bp, &blen, &n);
    if (rc) {
      view_clear(node);
      return rc;
    }
    if (vv_index3_block_begin(&r->blk, bp, blen, &n)) {
      view_clear(node);
      return reader_fail(r);
    }
    r->in_block = 1;
  }
}
