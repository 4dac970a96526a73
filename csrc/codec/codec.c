/*
 * codec/codec.c: CBOR encoding and strict decoding of chunk and index
 * segment plaintext (the contract is codec.h; the schemas docs/FORMAT.md).
 *
 * Encoding writes item headers with libcbor's low-level encoders straight
 * into the caller's vv_buf and copies payloads once: the exact size is
 * computed first, so the buffer grows at most once per call. A failed
 * encode leaves `out` as it was.
 *
 * Decoding is a pull tokenizer over cbor_stream_decode, which reads one item
 * header per call and never allocates, driven by the schema: each step
 * demands one token of one type, so nesting depth, key order, duplicate and
 * unknown keys are all settled by the schema itself. libcbor 0.8 is not
 * trusted either: string lengths and pointers it reports are re-derived from
 * the header bytes and checked against the bytes that remain.
 */
#include "codec.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"

#include <cbor/callbacks.h>
#include <cbor/encoding.h>
#include <cbor/streaming.h>

#define NODE_MAX_SLOT 0x7fffffffu

/* ---- byte order ---- */

static int host_is_le(void) {
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
  return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
#else
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
#endif
}

uint32_t vv_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

void vv_read_f32le(const unsigned char *p, size_t n, float *out) {
  if (host_is_le()) {
    if (n) memcpy(out, p, n * 4);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t u = vv_le32(p + 4 * i);
    memcpy(&out[i], &u, 4);
  }
}

/* n u32 values to LE bytes (memcpy: the source may be any uint32_t array). */
static void write_u32s_le(unsigned char *dst, const uint32_t *src, size_t n) {
  if (host_is_le()) {
    if (n) memcpy(dst, src, n * 4);
    return;
  }
  for (size_t i = 0; i < n; i++) put_le32(dst + 4 * i, src[i]);
}

static void write_f32s_le(unsigned char *dst, const float *src, size_t n) {
  if (host_is_le()) {
    if (n) memcpy(dst, src, n * 4);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &src[i], 4);
    put_le32(dst + 4 * i, u);
  }
}

/* ---- encoding ---- */

/* Bytes of a CBOR head whose argument is v (shortest form). */
static size_t head_len(uint64_t v) {
  return v < 24 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffffu ? 5 : 9;
}

/* Checked size arithmetic; false on overflow. */
static bool sz_add(size_t *total, size_t x) {
  if (x > SIZE_MAX - *total) return false;
  *total += x;
  return true;
}

static bool sz_mul(size_t a, size_t b, size_t *out) {
  if (a && b > SIZE_MAX / a) return false;
  *out = a * b;
  return true;
}

/* A cursor into space already reserved. Any short write sets `bad`. */
typedef struct writer {
  unsigned char *p;
  size_t cap;
  size_t n;
  bool bad;
} writer;

static void w_step(writer *w, size_t k) {
  if (k == 0) w->bad = true;
  w->n += k;
}

static unsigned char *w_at(writer *w) { return w->p + w->n; }
static size_t w_left(const writer *w) { return w->cap - w->n; }

static void w_uint(writer *w, uint64_t v) { if (!w->bad) w_step(w, cbor_encode_uint(v, w_at(w), w_left(w))); }
static void w_map(writer *w, size_t n) { if (!w->bad) w_step(w, cbor_encode_map_start(n, w_at(w), w_left(w))); }
static void w_array(writer *w, size_t n) { if (!w->bad) w_step(w, cbor_encode_array_start(n, w_at(w), w_left(w))); }
static void w_bool(writer *w, bool b) { if (!w->bad) w_step(w, cbor_encode_bool(b, w_at(w), w_left(w))); }
static void w_null(writer *w) { if (!w->bad) w_step(w, cbor_encode_null(w_at(w), w_left(w))); }

/* Byte string head; returns where its n payload bytes go (NULL on failure). */
static unsigned char *w_bytes(writer *w, size_t n) {
  if (w->bad) return NULL;
  w_step(w, cbor_encode_bytestring_start(n, w_at(w), w_left(w)));
  if (w->bad || n > w_left(w)) {
    w->bad = true;
    return NULL;
  }
  unsigned char *dst = w_at(w);
  w->n += n;
  return dst;
}

static void w_text(writer *w, const char *s, size_t n) {
  if (w->bad) return;
  w_step(w, cbor_encode_string_start(n, w_at(w), w_left(w)));
  if (w->bad || n > w_left(w)) {
    w->bad = true;
    return;
  }
  if (n) memcpy(w_at(w), s, n);
  w->n += n;
}

static void w_cstr(writer *w, const char *s) { w_text(w, s, strlen(s)); }

static size_t text_size(size_t n) { return head_len(n) + n; }
static size_t key_size(const char *k) { return text_size(strlen(k)); }

/* Reserve `size` bytes at the end of `out` and point a writer at them. */
static int writer_open(writer *w, vv_buf *out, size_t size) {
  int rc = vv_buf_reserve(out, size);
  if (rc) return rc;
  w->p = out->data + out->len;
  w->cap = size;
  w->n = 0;
  w->bad = false;
  return VV_OK;
}

/* The precomputed size must have been exact; anything else is a bug here. */
static int writer_close(writer *w, vv_buf *out) {
  if (w->bad || w->n != w->cap) return VV_E_INTERNAL;
  out->len += w->n;
  return VV_OK;
}

static int check_opt_text(const char *s, uint32_t n, uint32_t min, uint32_t max) {
  if (!s) return VV_OK;
  if (n < min || n > max) return VV_E_INVALID;
  return vv_utf8_valid((const unsigned char *)s, n) ? VV_OK : VV_E_INVALID;
}

static size_t opt_text_size(const char *s, uint32_t n) { return s ? text_size(n) : 1; }

static void w_opt_text(writer *w, const char *s, uint32_t n) {
  if (s) w_text(w, s, n);
  else w_null(w);
}

/* Validates the whole input and computes the exact encoded size. */
static int chunk_size(const vv_chunk_in *in, size_t *out) {
  if (in->dim < 1 || in->dim > VV_MAX_DIMENSION || in->count > VV_CODEC_MAX_COUNT) return VV_E_INVALID;
  size_t n = in->count;
  if (n && (!in->slots || !in->vectors)) return VV_E_INVALID;
  if (n && in->ids && !in->id_lens) return VV_E_INVALID;
  if (n && in->metas && !in->meta_lens) return VV_E_INVALID;
  size_t slot_bytes, vec_bytes, total = 0;
  if (!sz_mul(n, 4, &slot_bytes) || !sz_mul(n, (size_t)in->dim * 4, &vec_bytes)) return VV_E_NOMEM;
  total = head_len(8) + key_size("kind") + key_size("chunk") + key_size("seq") + head_len(in->seq) +
          key_size("dim") + head_len(in->dim) + key_size("count") + head_len(n) + key_size("slots") +
          key_size("ids") + head_len(n) + key_size("vectors") + key_size("meta") + head_len(n);
  if (!sz_add(&total, head_len(slot_bytes)) || !sz_add(&total, slot_bytes) ||
      !sz_add(&total, head_len(vec_bytes)) || !sz_add(&total, vec_bytes))
    return VV_E_NOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *id = in->ids ? in->ids[i] : NULL;
    const char *meta = in->metas ? in->metas[i] : NULL;
    uint32_t id_len = id ? in->id_lens[i] : 0, meta_len = meta ? in->meta_lens[i] : 0;
    if (!in->vectors[i]) return VV_E_INVALID;
    int rc = check_opt_text(id, id_len, 1, VV_MAX_ID_BYTES);
    if (!rc) rc = check_opt_text(meta, meta_len, 1, VV_MAX_METADATA_BYTES);
    if (rc) return rc;
    if (!sz_add(&total, opt_text_size(id, id_len)) || !sz_add(&total, opt_text_size(meta, meta_len)))
      return VV_E_NOMEM;
  }
  *out = total;
  return VV_OK;
}

/* A NULL `ids` or `metas` array means every entry is NULL. */
int vv_chunk_encode(const vv_chunk_in *in, vv_buf *out) {
  size_t size;
  int rc = chunk_size(in, &size);
  if (rc) return rc;
  writer w;
  if ((rc = writer_open(&w, out, size))) return rc;
  size_t n = in->count, dim = in->dim;

  w_map(&w, 8);
  w_cstr(&w, "kind");
  w_cstr(&w, "chunk");
  w_cstr(&w, "seq");
  w_uint(&w, in->seq);
  w_cstr(&w, "dim");
  w_uint(&w, in->dim);
  w_cstr(&w, "count");
  w_uint(&w, n);
  w_cstr(&w, "slots");
  unsigned char *dst = w_bytes(&w, n * 4);
  if (dst) write_u32s_le(dst, in->slots, n);
  w_cstr(&w, "ids");
  w_array(&w, n);
  for (size_t i = 0; i < n; i++) {
    const char *id = in->ids ? in->ids[i] : NULL;
    w_opt_text(&w, id, id ? in->id_lens[i] : 0);
  }
  w_cstr(&w, "vectors");
  dst = w_bytes(&w, n * dim * 4);
  if (dst)
    for (size_t i = 0; i < n; i++) write_f32s_le(dst + i * dim * 4, in->vectors[i], dim);
  w_cstr(&w, "meta");
  w_array(&w, n);
  for (size_t i = 0; i < n; i++) {
    const char *meta = in->metas ? in->metas[i] : NULL;
    w_opt_text(&w, meta, meta ? in->meta_lens[i] : 0);
  }
  return writer_close(&w, out);
}

int vv_ptable_encode(uint32_t npages, const uint32_t *rows, const uint32_t *bytes, const unsigned char *checks,
                     vv_buf *out) {
  if (npages > VV_CODEC_MAX_PAGES || (npages && (!rows || !bytes || !checks))) return VV_E_INVALID;
  size_t n = npages;
  size_t size = head_len(3) + key_size("rows") + head_len(n * 4) + n * 4 + key_size("bytes") + head_len(n * 4) +
                n * 4 + key_size("checks") + head_len(n * VV_PAGE_CHECK_BYTES) + n * VV_PAGE_CHECK_BYTES;
  writer w;
  int rc = writer_open(&w, out, size);
  if (rc) return rc;
  w_map(&w, 3);
  w_cstr(&w, "rows");
  unsigned char *dst = w_bytes(&w, n * 4);
  if (dst) write_u32s_le(dst, rows, n);
  w_cstr(&w, "bytes");
  dst = w_bytes(&w, n * 4);
  if (dst) write_u32s_le(dst, bytes, n);
  w_cstr(&w, "checks");
  dst = w_bytes(&w, n * VV_PAGE_CHECK_BYTES);
  if (dst && n) memcpy(dst, checks, n * VV_PAGE_CHECK_BYTES);
  return writer_close(&w, out);
}

static int codebook_bytes(const vv_codebook_in *cb, size_t *n) {
  if (!cb->m || !cb->ksub || cb->ksub > 256 || !cb->dsub || !cb->centroids) return VV_E_INVALID;
  if ((uint64_t)cb->m * cb->dsub > VV_MAX_DIMENSION) return VV_E_INVALID;
  *n = (size_t)cb->m * cb->ksub * cb->dsub * 4;
  return VV_OK;
}

/* The header of either format: format 2 (v2) adds "pq" (cb or null). */
static int encode_header(vv_buf *out, uint64_t seq, int base, uint32_t count, int v2, const vv_codebook_in *cb) {
  if (count > VV_CODEC_MAX_COUNT) return VV_E_INVALID;
  size_t cbytes = 0;
  int rc = cb ? codebook_bytes(cb, &cbytes) : VV_OK;
  if (rc) return rc;
  size_t size = head_len(6) + key_size("kind") + key_size("index") + key_size("seq") + head_len(seq) +
                key_size("base") + 1 + key_size("count") + head_len(count) + key_size("nodes") + head_len(count);
  if (v2) size += key_size("pq") + (cb ? 0 : 1); /* a null, or the map below */
  if (cb)
    size += head_len(5) + key_size("m") + head_len(cb->m) + key_size("ksub") + head_len(cb->ksub) +
            key_size("dsub") + head_len(cb->dsub) + key_size("trained") + head_len(cb->trained) +
            key_size("centroids") + head_len(cbytes) + cbytes;
  writer w;
  if ((rc = writer_open(&w, out, size))) return rc;
  w_map(&w, v2 ? 6 : 5);
  w_cstr(&w, "kind");
  w_cstr(&w, "index");
  w_cstr(&w, "seq");
  w_uint(&w, seq);
  w_cstr(&w, "base");
  w_bool(&w, base != 0);
  w_cstr(&w, "count");
  w_uint(&w, count);
  if (v2) w_cstr(&w, "pq");
  if (cb) {
    w_map(&w, 5);
    w_cstr(&w, "m");
    w_uint(&w, cb->m);
    w_cstr(&w, "ksub");
    w_uint(&w, cb->ksub);
    w_cstr(&w, "dsub");
    w_uint(&w, cb->dsub);
    w_cstr(&w, "trained");
    w_uint(&w, cb->trained);
    w_cstr(&w, "centroids");
    unsigned char *dst = w_bytes(&w, cbytes);
    if (dst) write_f32s_le(dst, cb->centroids, cbytes / 4);
  } else if (v2) {
    w_null(&w);
  }
  w_cstr(&w, "nodes");
  w_array(&w, count);
  return writer_close(&w, out);
}

int vv_index_encode_begin(vv_buf *out, uint64_t seq, int base, uint32_t count) {
  return encode_header(out, seq, base, count, 0, NULL);
}

int vv_index_encode_begin_v2(vv_buf *out, uint64_t seq, int base, uint32_t count, const vv_codebook_in *cb) {
  return encode_header(out, seq, base, count, 1, cb);
}

int vv_index_encode_node(vv_buf *out, const vv_node_in *node) {
  if (node->slot > NODE_MAX_SLOT || node->nlevels > VV_CODEC_MAX_LEVELS) return VV_E_INVALID;
  if (node->nlevels && (!node->links || !node->counts)) return VV_E_INVALID;
  if (node->code && (!node->v2 || node->code_len == 0 || node->code_len > VV_CODEC_MAX_CODE)) return VV_E_INVALID;
  int rc = check_opt_text(node->id, node->id_len, 1, VV_MAX_ID_BYTES);
  if (rc) return rc;
  size_t fields = node->v2 ? 6 : 5;
  size_t size = head_len(fields) + head_len(node->slot) + opt_text_size(node->id, node->id_len) +
                head_len(node->chunk) + head_len(node->row) + head_len(node->nlevels);
  if (node->v2) size += node->code ? head_len(node->code_len) + node->code_len : 1;
  for (uint32_t l = 0; l < node->nlevels; l++) {
    uint32_t c = node->counts[l];
    if (c > VV_CODEC_MAX_LINKS || (c && !node->links[l])) return VV_E_INVALID;
    size += head_len((size_t)c * 4) + (size_t)c * 4; /* <= 17 * 1027: no overflow */
  }
  writer w;
  if ((rc = writer_open(&w, out, size))) return rc;
  w_array(&w, fields);
  w_uint(&w, node->slot);
  w_opt_text(&w, node->id, node->id_len);
  w_uint(&w, node->chunk);
  w_uint(&w, node->row);
  w_array(&w, node->nlevels);
  for (uint32_t l = 0; l < node->nlevels; l++) {
    unsigned char *dst = w_bytes(&w, (size_t)node->counts[l] * 4);
    if (dst) write_u32s_le(dst, node->links[l], node->counts[l]);
  }
  if (node->v2 && node->code) {
    unsigned char *dst = w_bytes(&w, node->code_len);
    if (dst) memcpy(dst, node->code, node->code_len);
  } else if (node->v2) {
    w_null(&w);
  }
  return writer_close(&w, out);
}

/* ---- decoding: one token per cbor_stream_decode call ---- */

enum tok_type { TK_NONE, TK_BAD, TK_UINT, TK_BYTES, TK_TEXT, TK_ARRAY, TK_MAP, TK_BOOL, TK_NULL };

typedef struct tok {
  enum tok_type type;
  uint64_t u;                 /* uint value, array/map count, bool */
  const unsigned char *s;     /* string payload (as libcbor reports it) */
  size_t n;                   /* string length (as libcbor reports it) */
} tok;

/* A second callback for one header would be a libcbor bug; refuse it too. */
static void tk_set(void *ctx, enum tok_type type, uint64_t u) {
  tok *t = (tok *)ctx;
  t->type = t->type == TK_NONE ? type : TK_BAD;
  t->u = u;
}

static void on_u8(void *c, uint8_t v) { tk_set(c, TK_UINT, v); }
static void on_u16(void *c, uint16_t v) { tk_set(c, TK_UINT, v); }
static void on_u32(void *c, uint32_t v) { tk_set(c, TK_UINT, v); }
static void on_u64(void *c, uint64_t v) { tk_set(c, TK_UINT, v); }
static void on_array(void *c, size_t n) { tk_set(c, TK_ARRAY, n); }
static void on_map(void *c, size_t n) { tk_set(c, TK_MAP, n); }
static void on_bool(void *c, bool b) { tk_set(c, TK_BOOL, b); }
static void on_null(void *c) { tk_set(c, TK_NULL, 0); }

static void on_string(void *c, cbor_data p, size_t n, enum tok_type type) {
  tk_set(c, type, 0);
  ((tok *)c)->s = p;
  ((tok *)c)->n = n;
}
static void on_bytes(void *c, cbor_data p, size_t n) { on_string(c, p, n, TK_BYTES); }
static void on_text(void *c, cbor_data p, size_t n) { on_string(c, p, n, TK_TEXT); }

static void bad_i8(void *c, uint8_t v) { (void)v; tk_set(c, TK_BAD, 0); }
static void bad_i16(void *c, uint16_t v) { (void)v; tk_set(c, TK_BAD, 0); }
static void bad_i32(void *c, uint32_t v) { (void)v; tk_set(c, TK_BAD, 0); }
static void bad_i64(void *c, uint64_t v) { (void)v; tk_set(c, TK_BAD, 0); }
static void bad_simple(void *c) { tk_set(c, TK_BAD, 0); }
static void bad_float(void *c, float v) { (void)v; tk_set(c, TK_BAD, 0); }
static void bad_double(void *c, double v) { (void)v; tk_set(c, TK_BAD, 0); }

/* Every member set explicitly: nothing falls through to a no-op callback,
 * which would leave the token TK_NONE (also rejected, but say it here). */
static const struct cbor_callbacks k_callbacks = {
    .uint8 = on_u8,
    .uint16 = on_u16,
    .uint32 = on_u32,
    .uint64 = on_u64,
    .negint64 = bad_i64,
    .negint32 = bad_i32,
    .negint16 = bad_i16,
    .negint8 = bad_i8,
    .byte_string_start = bad_simple, /* indefinite */
    .byte_string = on_bytes,
    .string = on_text,
    .string_start = bad_simple, /* indefinite */
    .indef_array_start = bad_simple,
    .array_start = on_array,
    .indef_map_start = bad_simple,
    .map_start = on_map,
    .tag = bad_i64,
    .float2 = bad_float,
    .float4 = bad_float,
    .float8 = bad_double,
    .undefined = bad_simple,
    .null = on_null,
    .boolean = on_bool,
    .indef_break = bad_simple,
};

typedef struct reader {
  const unsigned char *p;
  size_t len;
  size_t pos;
} reader;

/* Our own reading of a definite head: its length and argument. */
static bool head_parse(const unsigned char *at, size_t rem, size_t *hlen, uint64_t *arg) {
  unsigned ai = at[0] & 0x1f;
  if (ai < 24) {
    *hlen = 1;
    *arg = ai;
    return true;
  }
  if (ai > 27) return false;
  size_t k = (size_t)1 << (ai - 24);
  if (k > rem - 1) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < k; i++) v = v << 8 | at[1 + i];
  *hlen = 1 + k;
  *arg = v;
  return true;
}

static const unsigned char k_major[] = {
    [TK_UINT] = 0, [TK_BYTES] = 2, [TK_TEXT] = 3, [TK_ARRAY] = 4, [TK_MAP] = 5, [TK_BOOL] = 7, [TK_NULL] = 7,
};

/* Decodes one head with libcbor, then re-derives its major type, argument
 * and size from the bytes: a token is used only if both readings agree and
 * it fits in what remains. */
static int next_tok(reader *r, tok *t) {
  if (r->pos >= r->len) return VV_E_CORRUPT;
  const unsigned char *at = r->p + r->pos;
  size_t rem = r->len - r->pos;
  memset(t, 0, sizeof *t);
  t->type = TK_NONE;
  struct cbor_decoder_result res = cbor_stream_decode(at, rem, &k_callbacks, t);
  if (res.status != CBOR_DECODER_FINISHED || t->type == TK_NONE || t->type == TK_BAD) return VV_E_CORRUPT;
  size_t hlen;
  uint64_t arg;
  if ((unsigned)(at[0] >> 5) != k_major[t->type] || !head_parse(at, rem, &hlen, &arg)) return VV_E_CORRUPT;
  size_t used = hlen;
  switch (t->type) {
  case TK_UINT:
  case TK_ARRAY:
  case TK_MAP:
    if (arg != t->u) return VV_E_CORRUPT;
    break;
  case TK_BYTES:
  case TK_TEXT:
    if (arg > rem - hlen || (uint64_t)t->n != arg || t->s != at + hlen) return VV_E_CORRUPT;
    used += (size_t)arg;
    break;
  default: /* bool, null: one byte */
    if (hlen != 1) return VV_E_CORRUPT;
    break;
  }
  if (res.read != used) return VV_E_CORRUPT;
  r->pos += used;
  return VV_OK;
}

static int want(reader *r, tok *t, enum tok_type type) {
  int rc = next_tok(r, t);
  if (rc) return rc;
  return t->type == type ? VV_OK : VV_E_CORRUPT;
}

static int want_uint(reader *r, uint64_t max, uint64_t *v) {
  tok t;
  int rc = want(r, &t, TK_UINT);
  if (rc) return rc;
  if (t.u > max) return VV_E_CORRUPT;
  *v = t.u;
  return VV_OK;
}

static int want_text_eq(reader *r, const char *s) {
  tok t;
  int rc = want(r, &t, TK_TEXT);
  if (rc) return rc;
  size_t n = strlen(s);
  return t.n == n && memcmp(t.s, s, n) == 0 ? VV_OK : VV_E_CORRUPT;
}

static int want_head(reader *r, enum tok_type type, uint64_t n) {
  tok t;
  int rc = want(r, &t, type);
  if (rc) return rc;
  return t.u == n ? VV_OK : VV_E_CORRUPT;
}

/* A text string of min..max valid UTF-8 bytes, or null (*s = NULL). */
static int want_opt_text(reader *r, uint32_t min, uint32_t max, const char **s, uint32_t *n) {
  tok t;
  int rc = next_tok(r, &t);
  if (rc) return rc;
  if (t.type == TK_NULL) {
    *s = NULL;
    *n = 0;
    return VV_OK;
  }
  if (t.type != TK_TEXT || t.n < min || t.n > max || !vv_utf8_valid(t.s, t.n)) return VV_E_CORRUPT;
  *s = (const char *)t.s;
  *n = (uint32_t)t.n;
  return VV_OK;
}

static int want_bytes(reader *r, uint64_t n, const unsigned char **s) {
  tok t;
  int rc = want(r, &t, TK_BYTES);
  if (rc) return rc;
  if ((uint64_t)t.n != n) return VV_E_CORRUPT;
  *s = t.s;
  return VV_OK;
}

/* ---- chunk decode ---- */

void vv_chunk_view_free(vv_chunk_view *v) {
  if (!v) return;
  free((void *)v->ids);
  free(v->id_lens);
  free((void *)v->metas);
  free(v->meta_lens);
  memset(v, 0, sizeof *v);
}

/* Reads array(count) of (text | null) into s[] / n[]. */
static int read_text_array(reader *r, uint32_t count, uint32_t min, uint32_t max, const char **s, uint32_t *n) {
  int rc = want_head(r, TK_ARRAY, count);
  for (uint32_t i = 0; !rc && i < count; i++) rc = want_opt_text(r, min, max, &s[i], &n[i]);
  return rc;
}

static int chunk_decode(reader *r, uint32_t expect_dim, vv_chunk_view *v) {
  uint64_t u;
  int rc;
  if ((rc = want_head(r, TK_MAP, 8)) || (rc = want_text_eq(r, "kind")) || (rc = want_text_eq(r, "chunk")))
    return rc;
  if ((rc = want_text_eq(r, "seq")) || (rc = want_uint(r, UINT64_MAX, &v->seq))) return rc;
  if ((rc = want_text_eq(r, "dim")) || (rc = want_uint(r, VV_MAX_DIMENSION, &u))) return rc;
  if (u == 0 || u != expect_dim) return VV_E_CORRUPT;
  v->dim = (uint32_t)u;
  if ((rc = want_text_eq(r, "count")) || (rc = want_uint(r, VV_CODEC_MAX_COUNT, &u))) return rc;
  v->count = (uint32_t)u;
  uint64_t n = v->count;
  if ((rc = want_text_eq(r, "slots")) || (rc = want_bytes(r, n * 4, &v->slots))) return rc;
  /* The slots proved count * 4 bytes exist, so these allocations are
   * bounded by a small multiple of the input size. */
  size_t alloc = n ? (size_t)n : 1;
  v->ids = (const char **)calloc(alloc, sizeof *v->ids);
  v->id_lens = (uint32_t *)calloc(alloc, sizeof *v->id_lens);
  v->metas = (const char **)calloc(alloc, sizeof *v->metas);
  v->meta_lens = (uint32_t *)calloc(alloc, sizeof *v->meta_lens);
  if (!v->ids || !v->id_lens || !v->metas || !v->meta_lens) return VV_E_NOMEM;
  if ((rc = want_text_eq(r, "ids")) ||
      (rc = read_text_array(r, v->count, 1, VV_MAX_ID_BYTES, v->ids, v->id_lens)))
    return rc;
  if ((rc = want_text_eq(r, "vectors")) || (rc = want_bytes(r, n * v->dim * 4, &v->vectors))) return rc;
  if ((rc = want_text_eq(r, "meta")) ||
      (rc = read_text_array(r, v->count, 1, VV_MAX_METADATA_BYTES, v->metas, v->meta_lens)))
    return rc;
  return r->pos == r->len ? VV_OK : VV_E_CORRUPT;
}

int vv_chunk_decode(const unsigned char *p, size_t len, uint32_t expect_dim, vv_chunk_view *out) {
  memset(out, 0, sizeof *out);
  if (!p && len) return VV_E_INVALID;
  reader r = {p, len, 0};
  int rc = chunk_decode(&r, expect_dim, out);
  if (rc) vv_chunk_view_free(out);
  return rc;
}

/* ---- page table decode ---- */

int vv_ptable_decode(const unsigned char *p, size_t len, uint32_t npages, vv_ptable_view *out) {
  memset(out, 0, sizeof *out);
  if (!p && len) return VV_E_INVALID;
  if (npages > VV_CODEC_MAX_PAGES) return VV_E_CORRUPT;
  reader r = {p, len, 0};
  uint64_t n = npages;
  int rc;
  if ((rc = want_head(&r, TK_MAP, 3)) || (rc = want_text_eq(&r, "rows")) || (rc = want_bytes(&r, n * 4, &out->rows)) ||
      (rc = want_text_eq(&r, "bytes")) || (rc = want_bytes(&r, n * 4, &out->bytes)) ||
      (rc = want_text_eq(&r, "checks")) || (rc = want_bytes(&r, n * VV_PAGE_CHECK_BYTES, &out->checks)))
    return rc;
  return r.pos == r.len ? VV_OK : VV_E_CORRUPT;
}

/* ---- index segment decode ---- */

/* Smallest possible node: 85 00 f6 00 00 80. */
#define NODE_MIN_BYTES 6u

/* After an error the reader stays failed: pos != len with nothing left. */
static int reader_fail(vv_index_reader *r, int rc) {
  r->remaining = 0;
  r->pos = SIZE_MAX;
  return rc;
}

int vv_index_decode_begin(vv_index_reader *r, const unsigned char *p, size_t len, uint64_t *seq, int *base,
                          uint32_t *count) {
  memset(r, 0, sizeof *r);
  if (!p && len) return reader_fail(r, VV_E_INVALID);
  reader rd = {p, len, 0};
  uint64_t s, n;
  tok t, head, b;
  int rc;
  /* The header's size tells the format: 5 keys (1) or 6 with "pq" (2). */
  if ((rc = want(&rd, &head, TK_MAP))) return reader_fail(r, rc);
  if (head.u != 5 && head.u != 6) return reader_fail(r, VV_E_CORRUPT);
  int v2 = head.u == 6;
  if ((rc = want_text_eq(&rd, "kind")) || (rc = want_text_eq(&rd, "index")) ||
      (rc = want_text_eq(&rd, "seq")) || (rc = want_uint(&rd, UINT64_MAX, &s)) ||
      (rc = want_text_eq(&rd, "base")) || (rc = want(&rd, &b, TK_BOOL)) || (rc = want_text_eq(&rd, "count")) ||
      (rc = want_uint(&rd, VV_CODEC_MAX_COUNT, &n)))
    return reader_fail(r, rc);
  if (v2) {
    if ((rc = want_text_eq(&rd, "pq")) || (rc = next_tok(&rd, &t))) return reader_fail(r, rc);
    if (t.type == TK_MAP) {
      uint64_t m, ksub, dsub, trained;
      const unsigned char *cents;
      if (t.u != 5 || (rc = want_text_eq(&rd, "m")) || (rc = want_uint(&rd, VV_MAX_DIMENSION, &m)) ||
          (rc = want_text_eq(&rd, "ksub")) || (rc = want_uint(&rd, 256, &ksub)) ||
          (rc = want_text_eq(&rd, "dsub")) || (rc = want_uint(&rd, VV_MAX_DIMENSION, &dsub)) ||
          (rc = want_text_eq(&rd, "trained")) || (rc = want_uint(&rd, UINT64_MAX, &trained)))
        return reader_fail(r, rc ? rc : VV_E_CORRUPT);
      if (!m || !ksub || !dsub || m * dsub > VV_MAX_DIMENSION) return reader_fail(r, VV_E_CORRUPT);
      if ((rc = want_text_eq(&rd, "centroids")) || (rc = want_bytes(&rd, m * ksub * dsub * 4, &cents)))
        return reader_fail(r, rc);
      r->has_codebook = 1;
      r->cb = (vv_codebook_view){(uint32_t)m, (uint32_t)ksub, (uint32_t)dsub, trained, cents};
    } else if (t.type != TK_NULL) {
      return reader_fail(r, VV_E_CORRUPT);
    }
  }
  if ((rc = want_text_eq(&rd, "nodes")) || (rc = want_head(&rd, TK_ARRAY, n))) return reader_fail(r, rc);
  if (n > (len - rd.pos) / NODE_MIN_BYTES) return reader_fail(r, VV_E_CORRUPT);
  r->v2 = v2;
  r->p = p;
  r->len = len;
  r->pos = rd.pos;
  r->remaining = (uint32_t)n;
  *seq = s;
  *base = b.u != 0;
  *count = (uint32_t)n;
  return VV_OK;
}

static int node_decode(reader *rd, int v2, vv_node_view *nd) {
  uint64_t u;
  int rc;
  if ((rc = want_head(rd, TK_ARRAY, v2 ? 6 : 5)) || (rc = want_uint(rd, NODE_MAX_SLOT, &u))) return rc;
  nd->slot = (uint32_t)u;
  if ((rc = want_opt_text(rd, 1, VV_MAX_ID_BYTES, &nd->id, &nd->id_len)) ||
      (rc = want_uint(rd, UINT64_MAX, &nd->chunk)) || (rc = want_uint(rd, UINT32_MAX, &u)))
    return rc;
  nd->row = (uint32_t)u;
  tok t;
  if ((rc = want(rd, &t, TK_ARRAY))) return rc;
  if (t.u > VV_CODEC_MAX_LEVELS) return VV_E_CORRUPT;
  nd->nlevels = (uint32_t)t.u;
  for (uint32_t l = 0; l < nd->nlevels; l++) {
    if ((rc = want(rd, &t, TK_BYTES))) return rc;
    if (t.n % 4 || t.n / 4 > VV_CODEC_MAX_LINKS) return VV_E_CORRUPT;
    nd->links[l] = t.s;
    nd->counts[l] = (uint32_t)(t.n / 4);
  }
  if (!v2) return VV_OK;
  if ((rc = next_tok(rd, &t))) return rc;
  if (t.type == TK_NULL) return VV_OK;
  if (t.type != TK_BYTES || t.n == 0 || t.n > VV_CODEC_MAX_CODE) return VV_E_CORRUPT;
  nd->code = t.s;
  nd->code_len = (uint32_t)t.n;
  return VV_OK;
}

int vv_index_decode_next(vv_index_reader *r, vv_node_view *node) {
  memset(node, 0, sizeof *node);
  if (r->remaining == 0) return r->pos == r->len ? VV_END : VV_E_CORRUPT;
  reader rd = {r->p, r->len, r->pos};
  int rc = node_decode(&rd, r->v2, node);
  if (rc) {
    memset(node, 0, sizeof *node);
    return reader_fail(r, rc);
  }
  r->pos = rd.pos;
  r->remaining--;
  return VV_OK;
}
