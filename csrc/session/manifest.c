/*
 * session/manifest.c: writing, checking and parsing manifest.json (see
 * manifest.h and docs/FORMAT.md).
 */
#include "manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static const char *kMetricNames[] = {"cosine", "l2", "dot"};
static const char *kIndexNames[] = {"hnsw", "flat"};
#define PREFIX_SUM "{\"sum\":\""
#define PREFIX_MAC "\",\"mac\":\""
#define PREFIX_BODY "\",\"body\":"
#define SUFFIX "}\n"

void vv_manifest_free(vv_manifest *m) {
  if (!m) return;
  free(m->chunks);
  free(m->base);
  free(m->deltas);
  m->chunks = NULL;
  m->base = m->deltas = NULL;
  m->nchunks = m->nbase = m->ndeltas = 0;
}

static void jw_hex(vv_jw *w, const unsigned char *bytes, size_t n) {
  char hex[2 * 128 + 1];
  vv_hex_encode(bytes, n, hex);
  vv_jw_string(w, hex, 2 * n);
}

static void jw_segs(vv_jw *w, const vv_mseg *s, size_t n) {
  vv_jw_array_begin(w);
  for (size_t i = 0; i < n; i++) {
    vv_jw_object_begin(w);
    vv_jw_key(w, "name");
    vv_jw_string(w, s[i].ref.name, 2 * VV_HASH_BYTES);
    vv_jw_key(w, "seq");
    vv_jw_int(w, (int64_t)s[i].seq);
    vv_jw_key(w, "count");
    vv_jw_int(w, s[i].count);
    vv_jw_key(w, "bytes");
    vv_jw_int(w, (int64_t)s[i].ref.bytes);
    vv_jw_object_end(w);
  }
  vv_jw_array_end(w);
}

static int write_body(const vv_manifest *m, vv_buf *out) {
  vv_jw w;
  vv_jw_init(&w, out);
  vv_jw_object_begin(&w);
  vv_jw_key(&w, "format");
  vv_jw_string(&w, VV_FORMAT_NAME, strlen(VV_FORMAT_NAME));
  vv_jw_key(&w, "version");
  vv_jw_int(&w, m->version);
  vv_jw_key(&w, "sessionId");
  jw_hex(&w, m->session_id, VV_SESSION_ID_BYTES);
  vv_jw_key(&w, "generation");
  vv_jw_int(&w, (int64_t)m->generation);
  vv_jw_key(&w, "parent");
  if (m->has_parent)
    jw_hex(&w, m->parent, VV_HASH_BYTES);
  else
    vv_jw_null(&w);
  vv_jw_key(&w, "createdAt");
  vv_jw_string(&w, m->created_at, strlen(m->created_at));
  vv_jw_key(&w, "dimension");
  vv_jw_int(&w, m->dimension);
  vv_jw_key(&w, "metric");
  vv_jw_string(&w, kMetricNames[m->metric], strlen(kMetricNames[m->metric]));
  vv_jw_key(&w, "indexKind");
  vv_jw_string(&w, kIndexNames[m->index], strlen(kIndexNames[m->index]));
  vv_jw_key(&w, "hnsw");
  vv_jw_object_begin(&w);
  vv_jw_key(&w, "m");
  vv_jw_int(&w, m->m);
  vv_jw_key(&w, "efConstruction");
  vv_jw_int(&w, m->ef_construction);
  vv_jw_key(&w, "efSearch");
  vv_jw_int(&w, m->ef_search);
  vv_jw_object_end(&w);
  vv_jw_key(&w, "chunkSize");
  vv_jw_int(&w, m->chunk_size);
  vv_jw_key(&w, "totalVectors");
  vv_jw_int(&w, (int64_t)m->total_vectors);
  vv_jw_key(&w, "slotCount");
  vv_jw_int(&w, (int64_t)m->slot_count);
  vv_jw_key(&w, "graph");
  vv_jw_object_begin(&w);
  vv_jw_key(&w, "entry");
  if (m->max_level < 0)
    vv_jw_null(&w);
  else
    vv_jw_int(&w, m->entry);
  vv_jw_key(&w, "maxLevel");
  vv_jw_int(&w, m->max_level);
  vv_jw_object_end(&w);
  vv_jw_key(&w, "nextChunkSeq");
  vv_jw_int(&w, (int64_t)m->next_chunk_seq);
  vv_jw_key(&w, "nextIndexSeq");
  vv_jw_int(&w, (int64_t)m->next_index_seq);
  vv_jw_key(&w, "encryption");
  if (m->kdf == VV_KDF_NONE) {
    vv_jw_null(&w);
  } else {
    vv_jw_object_begin(&w);
    vv_jw_key(&w, "algorithm");
    vv_jw_string(&w, "xchacha20poly1305-ietf", 22);
    vv_jw_key(&w, "kdf");
    if (m->kdf == VV_KDF_RAW) {
      vv_jw_string(&w, "raw", 3);
    } else {
      vv_jw_string(&w, "argon2id13", 10);
      vv_jw_key(&w, "salt");
      jw_hex(&w, m->salt, VV_SALT_BYTES);
      vv_jw_key(&w, "opslimit");
      vv_jw_int(&w, (int64_t)m->opslimit);
      vv_jw_key(&w, "memlimit");
      vv_jw_int(&w, (int64_t)m->memlimit);
      vv_jw_key(&w, "wrappedKey");
      jw_hex(&w, m->wrapped_key, VV_WRAPPED_KEY_BYTES);
    }
    vv_jw_key(&w, "keyCheck");
    jw_hex(&w, m->key_check, VV_HASH_BYTES);
    vv_jw_object_end(&w);
  }
  vv_jw_key(&w, "chunks");
  vv_jw_array_begin(&w);
  for (size_t i = 0; i < m->nchunks; i++) {
    const vv_mchunk *c = &m->chunks[i];
    vv_jw_object_begin(&w);
    vv_jw_key(&w, "name");
    vv_jw_string(&w, c->ref.name, 2 * VV_HASH_BYTES);
    vv_jw_key(&w, "seq");
    vv_jw_int(&w, (int64_t)c->seq);
    vv_jw_key(&w, "count");
    vv_jw_int(&w, c->count);
    vv_jw_key(&w, "bytes");
    vv_jw_int(&w, (int64_t)c->ref.bytes);
    vv_jw_key(&w, "slotMin");
    vv_jw_int(&w, c->slot_min);
    vv_jw_key(&w, "slotMax");
    vv_jw_int(&w, c->slot_max);
    vv_jw_object_end(&w);
  }
  vv_jw_array_end(&w);
  vv_jw_key(&w, "index");
  vv_jw_object_begin(&w);
  vv_jw_key(&w, "base");
  jw_segs(&w, m->base, m->nbase);
  vv_jw_key(&w, "deltas");
  jw_segs(&w, m->deltas, m->ndeltas);
  vv_jw_object_end(&w);
  vv_jw_object_end(&w);
  if (w.rc == VV_OK && w.depth != 0) return VV_E_INTERNAL; /* a container left open: a bug here */
  return w.rc;
}

int vv_manifest_write(const vv_manifest *m, const vv_keyring *kr, vv_buf *out) {
  if (m->kdf != VV_KDF_NONE && !kr) return VV_E_INVALID;
  vv_buf body = {0};
  int rc = write_body(m, &body);
  unsigned char sum[VV_HASH_BYTES], mac[VV_HASH_BYTES];
  char sum_hex[2 * VV_HASH_BYTES + 1], mac_hex[2 * VV_HASH_BYTES + 1];
  if (!rc) {
    vv_hash(body.data, body.len, sum);
    if (m->kdf != VV_KDF_NONE)
      rc = vv_manifest_mac(kr, body.data, body.len, mac);
    else
      memset(mac, 0, sizeof mac);
  }
  if (!rc) {
    vv_hex_encode(sum, VV_HASH_BYTES, sum_hex);
    vv_hex_encode(mac, VV_HASH_BYTES, mac_hex);
    out->len = 0;
    rc = vv_buf_append(out, PREFIX_SUM, strlen(PREFIX_SUM));
    if (!rc) rc = vv_buf_append(out, sum_hex, 2 * VV_HASH_BYTES);
    if (!rc) rc = vv_buf_append(out, PREFIX_MAC, strlen(PREFIX_MAC));
    if (!rc) rc = vv_buf_append(out, mac_hex, 2 * VV_HASH_BYTES);
    if (!rc) rc = vv_buf_append(out, PREFIX_BODY, strlen(PREFIX_BODY));
    if (!rc) rc = vv_buf_append(out, body.data, body.len);
    if (!rc) rc = vv_buf_append(out, SUFFIX, strlen(SUFFIX));
  }
  vv_buf_free(&body);
  return rc;
}

void vv_manifest_file_hash(const unsigned char *file, size_t len, unsigned char out[VV_HASH_BYTES]) {
  vv_hash(file, len, out);
}

static int lower_hex(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
  return 1;
}

/* Splits the frame; body excludes the closing brace and newline. Sum and
 * MAC must be exactly 64 lower-case hex digits: one spelling per value. */
static int frame(const unsigned char *f, size_t len, const unsigned char **sum_hex, const unsigned char **mac_hex,
                 const unsigned char **body, size_t *body_len) {
  size_t suffix = strlen(SUFFIX);
  if (len < VV_MANIFEST_PREFIX_BYTES + suffix + 2) return VV_E_MANIFEST_CORRUPT;
  const unsigned char *p = f;
  if (memcmp(p, PREFIX_SUM, 8) != 0) return VV_E_MANIFEST_CORRUPT;
  *sum_hex = p + 8;
  if (memcmp(p + 72, PREFIX_MAC, 9) != 0) return VV_E_MANIFEST_CORRUPT;
  *mac_hex = p + 81;
  if (memcmp(p + 145, PREFIX_BODY, 9) != 0) return VV_E_MANIFEST_CORRUPT;
  if (memcmp(f + len - suffix, SUFFIX, suffix) != 0) return VV_E_MANIFEST_CORRUPT;
  if (!lower_hex(*sum_hex, 2 * VV_HASH_BYTES) || !lower_hex(*mac_hex, 2 * VV_HASH_BYTES)) return VV_E_MANIFEST_CORRUPT;
  *body = f + VV_MANIFEST_PREFIX_BYTES;
  *body_len = len - VV_MANIFEST_PREFIX_BYTES - suffix;
  return VV_OK;
}

int vv_manifest_check_mac(const unsigned char *file, size_t len, const vv_keyring *kr) {
  const unsigned char *sum_hex, *mac_hex, *body;
  size_t body_len;
  if (frame(file, len, &sum_hex, &mac_hex, &body, &body_len)) return VV_E_MANIFEST_AUTH;
  unsigned char want[VV_HASH_BYTES], got[VV_HASH_BYTES];
  if (vv_hex_decode((const char *)mac_hex, 2 * VV_HASH_BYTES, got, VV_HASH_BYTES)) return VV_E_MANIFEST_AUTH;
  if (vv_manifest_mac(kr, body, body_len, want)) return VV_E_MANIFEST_AUTH;
  return vv_ct_compare(want, got, VV_HASH_BYTES) == 0 ? VV_OK : VV_E_MANIFEST_AUTH;
}

/* ---- parsing ----------------------------------------------------------- */

typedef struct pctx {
  vv_error *err;
} pctx;

static int bad(pctx *p, const char *what) {
  if (p->err) snprintf(p->err->message, sizeof p->err->message, "manifest.json is malformed: %s", what);
  return VV_E_MANIFEST_CORRUPT;
}

static int only_keys(const vv_json *obj, const char *const *keys, size_t n) {
  for (size_t i = 0; i < obj->len; i++) {
    size_t k = 0;
    while (k < n && strcmp(obj->keys[i], keys[k]) != 0) k++;
    if (k == n || strlen(obj->keys[i]) != obj->key_lens[i]) return -1;
  }
  return 0;
}

static int get_uint(const vv_json *o, const char *key, uint64_t max, uint64_t *out) {
  const vv_json *v = vv_json_get_type(o, key, VV_JSON_INT);
  if (!v || v->integer < 0 || (uint64_t)v->integer > max) return -1;
  *out = (uint64_t)v->integer;
  return 0;
}

static int get_u32(const vv_json *o, const char *key, uint64_t max, uint32_t *out) {
  uint64_t v;
  if (get_uint(o, key, max, &v)) return -1;
  *out = (uint32_t)v;
  return 0;
}

static int get_hex(const vv_json *o, const char *key, unsigned char *out, size_t n) {
  const vv_json *v = vv_json_get_type(o, key, VV_JSON_STRING);
  if (!v || v->len != 2 * n) return -1;
  return vv_hex_decode(v->str, v->len, out, n) ? -1 : 0;
}

static int get_enum(const vv_json *o, const char *key, const char *const *names, int n, int *out) {
  const vv_json *v = vv_json_get_type(o, key, VV_JSON_STRING);
  if (!v) return -1;
  for (int i = 0; i < n; i++) {
    if (strlen(names[i]) == v->len && memcmp(names[i], v->str, v->len) == 0) {
      *out = i;
      return 0;
    }
  }
  return -1;
}

static int get_name(const vv_json *o, vv_objref *ref) {
  const vv_json *v = vv_json_get_type(o, "name", VV_JSON_STRING);
  unsigned char tmp[VV_HASH_BYTES];
  if (!v || v->len != 2 * VV_HASH_BYTES || vv_hex_decode(v->str, v->len, tmp, VV_HASH_BYTES)) return -1;
  /* Names are always lower-case hex: anything else could alias a path. */
  for (size_t i = 0; i < v->len; i++)
    if (v->str[i] >= 'A' && v->str[i] <= 'F') return -1;
  memcpy(ref->name, v->str, v->len);
  ref->name[v->len] = '\0';
  return 0;
}

#define MAX_OBJECTS 1000000u
#define MAX_OBJECT_BYTES (1ull << 40)

static int parse_segs(pctx *p, const vv_json *arr, vv_mseg **out, size_t *n) {
  static const char *const keys[] = {"name", "seq", "count", "bytes"};
  if (!arr || arr->type != VV_JSON_ARRAY || arr->len > MAX_OBJECTS) return bad(p, "index segment list");
  *out = (vv_mseg *)calloc(arr->len ? arr->len : 1, sizeof **out);
  if (!*out) return VV_E_NOMEM;
  *n = arr->len;
  for (size_t i = 0; i < arr->len; i++) {
    const vv_json *e = arr->items[i];
    vv_mseg *s = &(*out)[i];
    if (e->type != VV_JSON_OBJECT || only_keys(e, keys, 4) || e->len != 4 || get_name(e, &s->ref) ||
        get_uint(e, "seq", UINT32_MAX, &s->seq) || get_u32(e, "count", VV_MAX_SLOTS, &s->count) ||
        get_uint(e, "bytes", MAX_OBJECT_BYTES, &s->ref.bytes))
      return bad(p, "index segment entry");
  }
  return VV_OK;
}

static int parse_encryption(pctx *p, const vv_json *e, vv_manifest *m) {
  if (!e) return bad(p, "missing encryption");
  if (e->type == VV_JSON_NULL) {
    m->kdf = VV_KDF_NONE;
    return VV_OK;
  }
  static const char *const raw_keys[] = {"algorithm", "kdf", "keyCheck"};
  static const char *const pw_keys[] = {"algorithm", "kdf", "salt", "opslimit", "memlimit", "wrappedKey", "keyCheck"};
  static const char *const algs[] = {"xchacha20poly1305-ietf"};
  static const char *const kdfs[] = {"raw", "argon2id13"};
  int alg, kdf;
  if (e->type != VV_JSON_OBJECT || get_enum(e, "algorithm", algs, 1, &alg) || get_enum(e, "kdf", kdfs, 2, &kdf) ||
      get_hex(e, "keyCheck", m->key_check, VV_HASH_BYTES))
    return bad(p, "encryption parameters");
  if (kdf == 0) {
    if (only_keys(e, raw_keys, 3) || e->len != 3) return bad(p, "encryption parameters");
    m->kdf = VV_KDF_RAW;
    return VV_OK;
  }
  if (only_keys(e, pw_keys, 7) || e->len != 7 || get_hex(e, "salt", m->salt, VV_SALT_BYTES) ||
      get_uint(e, "opslimit", VV_PWHASH_MAX_OPSLIMIT, &m->opslimit) ||
      get_uint(e, "memlimit", VV_PWHASH_MAX_MEMLIMIT, &m->memlimit) ||
      get_hex(e, "wrappedKey", m->wrapped_key, VV_WRAPPED_KEY_BYTES))
    return bad(p, "passphrase parameters");
  m->kdf = VV_KDF_ARGON2ID;
  return VV_OK;
}

static int parse_chunks(pctx *p, const vv_json *arr, vv_manifest *m) {
  static const char *const keys[] = {"name", "seq", "count", "bytes", "slotMin", "slotMax"};
  if (!arr || arr->type != VV_JSON_ARRAY || arr->len > MAX_OBJECTS) return bad(p, "chunk list");
  m->chunks = (vv_mchunk *)calloc(arr->len ? arr->len : 1, sizeof *m->chunks);
  if (!m->chunks) return VV_E_NOMEM;
  m->nchunks = arr->len;
  for (size_t i = 0; i < arr->len; i++) {
    const vv_json *e = arr->items[i];
    vv_mchunk *c = &m->chunks[i];
    if (e->type != VV_JSON_OBJECT || only_keys(e, keys, 6) || e->len != 6 || get_name(e, &c->ref) ||
        get_uint(e, "seq", UINT32_MAX, &c->seq) || get_u32(e, "count", VV_MAX_SLOTS, &c->count) ||
        get_uint(e, "bytes", MAX_OBJECT_BYTES, &c->ref.bytes) || get_u32(e, "slotMin", VV_MAX_SLOTS, &c->slot_min) ||
        get_u32(e, "slotMax", VV_MAX_SLOTS, &c->slot_max))
      return bad(p, "chunk entry");
  }
  return VV_OK;
}

static int parse_body(pctx *p, const vv_json *b, vv_manifest *m) {
  if (b->type != VV_JSON_OBJECT) return bad(p, "body is not an object");
  const vv_json *fmt = vv_json_get_type(b, "format", VV_JSON_STRING);
  if (!fmt || fmt->len != strlen(VV_FORMAT_NAME) || memcmp(fmt->str, VV_FORMAT_NAME, fmt->len) != 0)
    return bad(p, "not a vecvault session");
  uint64_t version;
  if (get_uint(b, "version", INT32_MAX, &version) || version < 1) return bad(p, "version");
  m->version = (int)version;
  if (version > VV_FORMAT_VERSION) {
    if (p->err)
      snprintf(p->err->message, sizeof p->err->message,
               "session format version %llu is newer than this vecvault supports (%d); upgrade vecvault",
               (unsigned long long)version, VV_FORMAT_VERSION);
    return VV_E_UNSUPPORTED_VERSION;
  }
  static const char *const top[] = {"format",    "version",   "sessionId",    "generation",   "parent",
                                    "createdAt", "dimension", "metric",       "indexKind",    "hnsw",
                                    "chunkSize", "totalVectors", "slotCount", "graph",        "nextChunkSeq",
                                    "nextIndexSeq", "encryption", "chunks",    "index"};
  if (only_keys(b, top, sizeof top / sizeof top[0]) || b->len != sizeof top / sizeof top[0])
    return bad(p, "unexpected or missing fields");
  if (get_hex(b, "sessionId", m->session_id, VV_SESSION_ID_BYTES)) return bad(p, "sessionId");
  if (get_uint(b, "generation", INT64_MAX, &m->generation)) return bad(p, "generation");
  const vv_json *parent = vv_json_get(b, "parent");
  if (!parent) return bad(p, "parent");
  m->has_parent = parent->type != VV_JSON_NULL;
  if (m->has_parent && get_hex(b, "parent", m->parent, VV_HASH_BYTES)) return bad(p, "parent");
  const vv_json *created = vv_json_get_type(b, "createdAt", VV_JSON_STRING);
  if (!created || created->len >= sizeof m->created_at) return bad(p, "createdAt");
  memcpy(m->created_at, created->str, created->len + 1);
  int metric, index;
  if (get_u32(b, "dimension", VV_MAX_DIMENSION, &m->dimension) || m->dimension < 1) return bad(p, "dimension");
  if (get_enum(b, "metric", kMetricNames, 3, &metric)) return bad(p, "metric");
  if (get_enum(b, "indexKind", kIndexNames, 2, &index)) return bad(p, "indexKind");
  m->metric = (vv_metric)metric;
  m->index = (vv_index_kind)index;
  const vv_json *h = vv_json_get_type(b, "hnsw", VV_JSON_OBJECT);
  static const char *const hkeys[] = {"m", "efConstruction", "efSearch"};
  if (!h || only_keys(h, hkeys, 3) || h->len != 3 || get_u32(h, "m", VV_HNSW_MAX_M, &m->m) || m->m < 2 ||
      get_u32(h, "efConstruction", VV_HNSW_MAX_EF, &m->ef_construction) || m->ef_construction < 1 ||
      get_u32(h, "efSearch", VV_HNSW_MAX_EF, &m->ef_search) || m->ef_search < 1)
    return bad(p, "hnsw parameters");
  if (get_u32(b, "chunkSize", 10000000, &m->chunk_size) || m->chunk_size < 1) return bad(p, "chunkSize");
  if (get_uint(b, "slotCount", VV_MAX_SLOTS, &m->slot_count)) return bad(p, "slotCount");
  if (get_uint(b, "totalVectors", m->slot_count, &m->total_vectors)) return bad(p, "totalVectors");
  const vv_json *g = vv_json_get_type(b, "graph", VV_JSON_OBJECT);
  static const char *const gkeys[] = {"entry", "maxLevel"};
  const vv_json *ml = g ? vv_json_get_type(g, "maxLevel", VV_JSON_INT) : NULL;
  const vv_json *en = g ? vv_json_get(g, "entry") : NULL;
  if (!g || only_keys(g, gkeys, 2) || g->len != 2 || !ml || !en || ml->integer < -1 || ml->integer > 16)
    return bad(p, "graph");
  m->max_level = (int)ml->integer;
  if (m->max_level < 0) {
    if (en->type != VV_JSON_NULL) return bad(p, "graph entry");
    m->entry = UINT32_MAX;
  } else {
    if (en->type != VV_JSON_INT || en->integer < 0 || (uint64_t)en->integer >= m->slot_count)
      return bad(p, "graph entry");
    m->entry = (uint32_t)en->integer;
  }
  if (get_uint(b, "nextChunkSeq", UINT32_MAX, &m->next_chunk_seq) ||
      get_uint(b, "nextIndexSeq", UINT32_MAX, &m->next_index_seq))
    return bad(p, "sequence counters");
  int rc = parse_encryption(p, vv_json_get(b, "encryption"), m);
  if (!rc) rc = parse_chunks(p, vv_json_get(b, "chunks"), m);
  if (rc) return rc;
  const vv_json *ix = vv_json_get_type(b, "index", VV_JSON_OBJECT);
  static const char *const ikeys[] = {"base", "deltas"};
  if (!ix || only_keys(ix, ikeys, 2) || ix->len != 2) return bad(p, "index");
  rc = parse_segs(p, vv_json_get(ix, "base"), &m->base, &m->nbase);
  if (!rc) rc = parse_segs(p, vv_json_get(ix, "deltas"), &m->deltas, &m->ndeltas);
  if (rc) return rc;
  /* Sequence numbers are unique per kind and below the next counter: a
   * duplicated entry would let one object stand in for another. */
  for (size_t i = 0; i < m->nchunks; i++) {
    if (m->chunks[i].seq >= m->next_chunk_seq) return bad(p, "chunk seq beyond nextChunkSeq");
    for (size_t j = 0; j < i; j++)
      if (m->chunks[j].seq == m->chunks[i].seq) return bad(p, "duplicate chunk seq");
  }
  size_t nseg = m->nbase + m->ndeltas;
  for (size_t i = 0; i < nseg; i++) {
    const vv_mseg *a = i < m->nbase ? &m->base[i] : &m->deltas[i - m->nbase];
    if (a->seq >= m->next_index_seq) return bad(p, "index seq beyond nextIndexSeq");
    for (size_t j = 0; j < i; j++) {
      const vv_mseg *c = j < m->nbase ? &m->base[j] : &m->deltas[j - m->nbase];
      if (c->seq == a->seq) return bad(p, "duplicate index seq");
    }
  }
  return VV_OK;
}

int vv_manifest_parse(const unsigned char *file, size_t len, vv_manifest *out, const unsigned char **body_out,
                      size_t *body_len_out, vv_error *err) {
  pctx p = {err};
  memset(out, 0, sizeof *out);
  const unsigned char *sum_hex, *mac_hex, *body;
  size_t body_len;
  if (len > VV_MANIFEST_MAX_BYTES) return bad(&p, "too large");
  if (frame(file, len, &sum_hex, &mac_hex, &body, &body_len)) return bad(&p, "not a vecvault manifest frame");
  unsigned char want[VV_HASH_BYTES], got[VV_HASH_BYTES];
  vv_hash(body, body_len, want);
  if (vv_hex_decode((const char *)sum_hex, 2 * VV_HASH_BYTES, got, VV_HASH_BYTES) ||
      memcmp(want, got, VV_HASH_BYTES) != 0)
    return bad(&p, "checksum mismatch (damaged or edited)");
  vv_json *doc = NULL;
  int rc = vv_json_parse((const char *)body, body_len, 8, &doc);
  if (rc == VV_E_NOMEM) return rc;
  if (rc) return bad(&p, "invalid JSON");
  rc = parse_body(&p, doc, out);
  vv_json_free(doc);
  if (!rc && out->kdf == VV_KDF_NONE) {
    /* Unencrypted: the mac field is defined as zeros; anything else is damage. */
    for (size_t i = 0; i < 2 * VV_HASH_BYTES && !rc; i++)
      if (mac_hex[i] != '0') rc = bad(&p, "mac of an unencrypted session is not zero");
  }
  if (rc) {
    vv_manifest_free(out);
    return rc;
  }
  *body_out = body;
  *body_len_out = body_len;
  return VV_OK;
}

/* ---- the chunk index ------------------------------------------------------ */

static int cmp_key(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

int vv_chunk_index_build(vv_chunk_index *x, const vv_mchunk *chunks, size_t n) {
  x->n = 0;
  x->keys = malloc((n ? n : 1) * sizeof *x->keys);
  if (!x->keys) return VV_E_NOMEM;
  for (size_t i = 0; i < n; i++) {
    if (chunks[i].seq > UINT32_MAX || i > UINT32_MAX) {
      vv_chunk_index_free(x);
      return VV_E_MANIFEST_CORRUPT;
    }
    x->keys[i] = chunks[i].seq << 32 | (uint64_t)i;
  }
  x->n = n;
  qsort(x->keys, n, sizeof *x->keys, cmp_key);
  return VV_OK;
}

long vv_chunk_index_find(const vv_chunk_index *x, uint64_t seq) {
  size_t lo = 0, hi = x ? x->n : 0;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    uint64_t v = x->keys[mid] >> 32;
    if (v == seq) return (long)(uint32_t)x->keys[mid];
    if (v < seq) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

void vv_chunk_index_free(vv_chunk_index *x) {
  free(x->keys);
  x->keys = NULL;
  x->n = 0;
}
