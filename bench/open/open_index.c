/*
 * bench/open/open_index.c: where the time to open a session's index goes,
 * and what the columnar format-3 segment (csrc/codec/index3.c) changes.
 *
 *   open_index session <dir> [key-hex]   a real session (default key: the
 *                                        bench key, sha256("vecvault-bench
 *                                        session key v1"))
 *   open_index load <dir> [threads]      one lazy vv_db_load, for a profiler
 *   open_index convert <src> <dst> [per] a copy of a session (bench key) whose
 *                                        index objects are format 3, in blocks
 *                                        of `per` nodes (256)
 *   open_index synth [nodes]             a synthetic HNSW graph (default 1M)
 *
 * Single-threaded throughout, so the figures add up. For a session, per
 * index object: reading the file (page cache warm after the first pass),
 * the BLAKE2b-256 naming hash, the XChaCha20-Poly1305 open, the format-2
 * decode alone and with the link conversion the loader does; then the same
 * nodes re-encoded as format 3 (blocks of BLOCK nodes) and decoded. Then a
 * whole lazy vv_db_load (1 and 2 threads) for the total. The synthetic
 * graph (m = 16: up to 32 links on level 0 and 16 above, levels drawn as
 * HNSW draws them, 12-byte ids, 48-byte codes) is encoded both ways, and
 * BLAKE2b and the AEAD are timed over the format-2 bytes.
 *
 * Prints one JSON object. Build: make -C bench/open (links csrc/ like the
 * C tests).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/index3.h"
#include "common/status.h"
#include "crypto/crypto.h"
#include "session/io.h"
#include "session/manifest.h"
#include "session/object.h"
#include "session/secrets.h"
#include "vecvault.h"

#define BLOCK 4096u
/* sha256("vecvault-bench session key v1"): the bench sessions' public key */
#define BENCH_KEY_HEX "fddc16968f6fd1779ef8ed0245dd2cecd452e0ad4ec4f786e9923e65df435594"

/* CPU time of this thread: the machine is shared, and waiting for a core
 * is not decoding. Loads (several threads) are timed on the wall clock. */
static double clock_of(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double now(void) { return clock_of(CLOCK_THREAD_CPUTIME_ID); }

static void die(const char *what, int rc) {
  fprintf(stderr, "open_index: %s failed (%d)\n", what, rc);
  exit(1);
}

/* A whole file through the engine's own reader (as a load reads objects);
 * the caller frees the buffer. */
static unsigned char *slurp(const char *path, size_t *len) {
  vv_buf b = {0};
  int rc = vv_io_read_file_buf(vv_io_posix(), path, SIZE_MAX - 1, &b);
  if (rc) die(path, rc);
  *len = b.len;
  return b.data;
}

/* ---- nodes kept from a format-2 decode, to re-encode ---- */

typedef struct nodes {
  size_t n, cap;
  vv_node_in *in;
  uint32_t *links; /* every list, back to back */
  size_t nlinks, links_cap;
  size_t *link_at; /* per node: its first link */
  uint32_t (*counts)[VV_CODEC_MAX_LEVELS];
  unsigned char *bytes; /* ids and codes */
  size_t nbytes, bytes_cap;
  size_t *id_at, *code_at;
} nodes;

static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap : 1024;
  while (c < need) c *= 2;
  p = realloc(p, c * size);
  if (!p) die("realloc", VV_E_NOMEM);
  *cap = c;
  return p;
}

static void nodes_add(nodes *s, const vv_node_view *v) {
  size_t cap = s->cap;
  s->in = grow(s->in, &cap, s->n + 1, sizeof *s->in);
  cap = s->cap;
  s->link_at = grow(s->link_at, &cap, s->n + 1, sizeof *s->link_at);
  cap = s->cap;
  s->counts = grow(s->counts, &cap, s->n + 1, sizeof *s->counts);
  cap = s->cap;
  s->id_at = grow(s->id_at, &cap, s->n + 1, sizeof *s->id_at);
  s->code_at = grow(s->code_at, &s->cap, s->n + 1, sizeof *s->code_at);
  vv_node_in *nd = &s->in[s->n];
  memset(nd, 0, sizeof *nd);
  *nd = (vv_node_in){.slot = v->slot, .id_len = v->id_len, .chunk = v->chunk, .row = v->row, .nlevels = v->nlevels,
                     .code_len = v->code_len, .v2 = 1};
  s->link_at[s->n] = s->nlinks;
  for (uint32_t l = 0; l < v->nlevels; l++) {
    s->links = grow(s->links, &s->links_cap, s->nlinks + v->counts[l], sizeof *s->links);
    for (uint32_t j = 0; j < v->counts[l]; j++) s->links[s->nlinks++] = vv_le32(v->links[l] + 4 * j);
    s->counts[s->n][l] = v->counts[l];
  }
  s->bytes = grow(s->bytes, &s->bytes_cap, s->nbytes + v->id_len + v->code_len, 1);
  s->id_at[s->n] = v->id ? s->nbytes : SIZE_MAX;
  if (v->id) memcpy(s->bytes + s->nbytes, v->id, v->id_len);
  s->nbytes += v->id_len;
  s->code_at[s->n] = v->code ? s->nbytes : SIZE_MAX;
  if (v->code) memcpy(s->bytes + s->nbytes, v->code, v->code_len);
  s->nbytes += v->code_len;
  s->n++;
}

/* Pointers are fixed once every node is in (the arrays no longer move). */
static void nodes_finish(nodes *s, const uint32_t *(*lp)[VV_CODEC_MAX_LEVELS]) {
  for (size_t i = 0; i < s->n; i++) {
    vv_node_in *nd = &s->in[i];
    size_t at = s->link_at[i];
    for (uint32_t l = 0; l < nd->nlevels; l++) {
      lp[i][l] = s->links + at;
      at += s->counts[i][l];
    }
    nd->links = lp[i];
    nd->counts = s->counts[i];
    nd->id = s->id_at[i] == SIZE_MAX ? NULL : (const char *)s->bytes + s->id_at[i];
    nd->code = s->code_at[i] == SIZE_MAX ? NULL : s->bytes + s->code_at[i];
  }
}

static void nodes_free(nodes *s) {
  free(s->in);
  free(s->links);
  free(s->link_at);
  free(s->counts);
  free(s->bytes);
  free(s->id_at);
  free(s->code_at);
  memset(s, 0, sizeof *s);
}

/* ---- decoders, timed by the caller ---- */

static volatile uint64_t g_sink;

/* Format 2: every node, and (convert) its links to u32 as load.c does. */
static uint64_t walk_v2(const unsigned char *p, size_t len, int convert, nodes *keep) {
  vv_index_reader r;
  uint64_t seq, sum = 0;
  int base;
  uint32_t count, buf[VV_INDEX3_MAX_NODE_LINKS];
  int rc = vv_index_decode_begin(&r, p, len, &seq, &base, &count);
  if (rc) die("v2 header", rc);
  vv_node_view v;
  while ((rc = vv_index_decode_next(&r, &v)) == VV_OK) {
    sum += v.slot + v.nlevels;
    if (convert)
      for (uint32_t l = 0, k = 0; l < v.nlevels; l++)
        for (uint32_t j = 0; j < v.counts[l]; j++) sum += buf[k++] = vv_le32(v.links[l] + 4 * j);
    if (keep) nodes_add(keep, &v);
  }
  if (rc != VV_END) die("v2 decode", rc);
  return sum;
}

static uint64_t walk_v3(const unsigned char *p, size_t len, vv_index3_reader *r) {
  uint64_t seq, sum = 0;
  int base;
  uint32_t count, nb;
  int rc = vv_index3_decode_begin(r, p, len, &seq, &base, &count, &nb);
  if (rc) die("v3 header", rc);
  vv_node_view v;
  const uint32_t *l32[VV_CODEC_MAX_LEVELS];
  while ((rc = vv_index3_decode_next(r, &v, l32)) == VV_OK) {
    sum += v.slot + v.nlevels;
    for (uint32_t l = 0; l < v.nlevels; l++)
      for (uint32_t j = 0; j < v.counts[l]; j++) sum += l32[l][j];
  }
  if (rc != VV_END) die("v3 decode", rc);
  return sum;
}

static void encode_v3(const nodes *s, uint64_t seq, int base, const vv_codebook_in *cb, uint32_t block, vv_buf *out) {
  uint32_t n = (uint32_t)s->n, nb = (n + block - 1) / block;
  int rc = vv_index3_encode_begin(out, seq, base, n, nb, cb, NULL);
  for (uint32_t at = 0; !rc && at < n; at += block) rc = vv_index3_encode_block(s->in + at, n - at < block ? n - at : block, out);
  if (rc) die("v3 encode", rc);
}

/* ---- a real session ---- */

typedef struct totals {
  double read, hash, aead, v2, v2conv, v3;
  uint64_t file_bytes, v2_bytes, v3_bytes, nodes;
  uint64_t col[7]; /* format-3 bytes per column: slots flags idlens ids locs links codes */
} totals;

/* Adds each column's bytes over the blocks of a format-3 segment. */
static void column_sizes(const unsigned char *p, size_t len, vv_index3_reader *r, uint64_t col[7]) {
  uint64_t seq;
  int base;
  uint32_t count, nb, bn;
  const unsigned char *bp;
  size_t blen;
  if (vv_index3_decode_begin(r, p, len, &seq, &base, &count, &nb)) die("v3 header", VV_E_CORRUPT);
  while (vv_index3_next_block(r, &bp, &blen, &bn) == VV_OK) {
    vv_index3_block *b = &r->blk;
    if (vv_index3_block_begin(b, bp, blen, &bn)) die("v3 block", VV_E_CORRUPT);
    col[0] += (uint64_t)(b->slots_end - b->slots);
    col[1] += b->count;
    col[2] += (uint64_t)(b->idlens_end - b->idlens);
    col[3] += (uint64_t)(b->ids_end - b->ids);
    col[4] += (uint64_t)(b->locs_end - b->locs);
    col[5] += (uint64_t)(b->links_end - b->links);
    col[6] += (uint64_t)(b->codes_end - b->codes);
  }
}

static vv_codebook_in codebook_of(const vv_index_reader *r, float **cents) {
  vv_codebook_in cb = {0};
  if (!r->has_codebook) return cb;
  size_t nf = (size_t)r->cb.m * r->cb.ksub * r->cb.dsub;
  *cents = malloc(nf * sizeof **cents);
  if (!*cents) die("malloc", VV_E_NOMEM);
  vv_read_f32le(r->cb.centroids, nf, *cents);
  return (vv_codebook_in){r->cb.m, r->cb.ksub, r->cb.dsub, r->cb.trained, *cents};
}

/* A format-2 segment's nodes (and codebook) as format 3, in blocks of `per`;
 * returns the node count. */
static size_t reencode_v3(const unsigned char *plain, size_t plen, uint32_t per, vv_buf *out) {
  nodes keep = {0};
  g_sink += walk_v2(plain, plen, 0, &keep);
  const uint32_t *(*lp)[VV_CODEC_MAX_LEVELS] = calloc(keep.n ? keep.n : 1, sizeof *lp);
  if (!lp) die("calloc", VV_E_NOMEM);
  nodes_finish(&keep, lp);
  vv_index_reader r2;
  uint64_t seq;
  int base;
  uint32_t count;
  if (vv_index_decode_begin(&r2, plain, plen, &seq, &base, &count)) die("v2 header", VV_E_CORRUPT);
  float *cents = NULL;
  vv_codebook_in cb = codebook_of(&r2, &cents);
  encode_v3(&keep, seq, base, r2.has_codebook ? &cb : NULL, per, out);
  size_t n = keep.n;
  free(cents);
  free(lp);
  nodes_free(&keep);
  return n;
}

static void one_segment(const vv_sctx *sc, const vv_mseg *g, vv_index3_reader *r3, totals *t) {
  char *path = vv_object_path(sc, g->ref.name);
  double t0 = now();
  size_t flen;
  unsigned char *file = slurp(path, &flen);
  double t1 = now();
  unsigned char digest[VV_HASH_BYTES];
  vv_hash(file, flen, digest);
  double t2 = now();
  unsigned char ad[VV_OBJ_HEADER_BYTES + VV_SESSION_ID_BYTES];
  memcpy(ad, file, VV_OBJ_HEADER_BYTES);
  memcpy(ad + VV_OBJ_HEADER_BYTES, sc->session_id, VV_SESSION_ID_BYTES);
  unsigned char *body = file + VV_OBJ_HEADER_BYTES + (sc->kr ? VV_NONCE_BYTES : 0);
  size_t plen = flen - (size_t)(body - file) - (sc->kr ? VV_TAG_BYTES : 0);
  int rc = sc->kr ? vv_aead_open(sc->kr, VV_KEY_INDEX, ad, sizeof ad, file + VV_OBJ_HEADER_BYTES, body,
                                 plen + VV_TAG_BYTES, body)
                  : VV_OK;
  if (rc) die("aead open", rc);
  double t3 = now();
  g_sink += walk_v2(body, plen, 0, NULL);
  double t4 = now();
  g_sink += walk_v2(body, plen, 1, NULL);
  double t5 = now();
  vv_buf v3 = {0};
  size_t n = reencode_v3(body, plen, BLOCK, &v3);
  double t6 = now();
  g_sink += walk_v3(v3.data, v3.len, r3);
  double t7 = now();
  column_sizes(v3.data, v3.len, r3, t->col);
  t->read += t1 - t0;
  t->hash += t2 - t1;
  t->aead += t3 - t2;
  t->v2 += t4 - t3;
  t->v2conv += t5 - t4;
  t->v3 += t7 - t6;
  t->file_bytes += flen;
  t->v2_bytes += plen;
  t->v3_bytes += v3.len;
  t->nodes += n;
  vv_buf_free(&v3);
  free(file);
  free(path);
}

/* Wall time of a lazy load; *cpu gets the process CPU time it took. */
static double time_load(const char *dir, const unsigned char *key, uint32_t threads, double *cpu) {
  vv_load_opts lo = {.key = key, .threads = threads, .lazy = 1};
  vv_db *db = NULL;
  vv_error err = {{0}};
  double c0 = clock_of(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_of(CLOCK_MONOTONIC);
  int rc = vv_db_load(dir, &lo, NULL, NULL, &db, NULL, &err);
  double t = clock_of(CLOCK_MONOTONIC) - t0;
  *cpu = clock_of(CLOCK_PROCESS_CPUTIME_ID) - c0;
  if (rc) {
    fprintf(stderr, "load: %s\n", err.message);
    exit(1);
  }
  vv_db_free(db);
  return t;
}

/* The manifest of `dir` (its file in *file, to free), the key ring for
 * `key`, and an object context for `dir`. */
static void open_session(const char *dir, const unsigned char key[32], vv_manifest *m, unsigned char **file,
                         vv_keyring **kr, vv_sctx *sc) {
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  size_t len, blen;
  const unsigned char *body;
  vv_error err = {{0}};
  *file = slurp(path, &len);
  if (vv_manifest_parse(*file, len, m, &body, &blen, &err)) die(err.message, -1);
  vv_load_opts lo = {.key = key};
  if (vv_secrets_for_load(m, &lo, kr, &err) || vv_sctx_init(sc, NULL, dir)) die(err.message, -1);
  sc->kr = *kr;
  memcpy(sc->session_id, m->session_id, VV_SESSION_ID_BYTES);
}

static void bench_session(const char *dir, const unsigned char key[32]) {
  vv_manifest m;
  unsigned char *f;
  vv_keyring *kr = NULL;
  vv_sctx sc;
  open_session(dir, key, &m, &f, &kr, &sc);
  vv_index3_reader *r3 = malloc(sizeof *r3);
  if (!r3) die("malloc", VV_E_NOMEM);
  totals t = {0};
  for (size_t i = 0; i < m.nbase + m.ndeltas; i++) one_segment(&sc, i < m.nbase ? &m.base[i] : &m.deltas[i - m.nbase], r3, &t);
  double c1, c2, l1 = time_load(dir, key, 1, &c1), l2 = time_load(dir, key, 2, &c2);
  printf("{\"what\":\"session\",\"segments\":%zu,\"nodes\":%llu,\"fileBytes\":%llu,\"v2PlainBytes\":%llu,"
         "\"v3Bytes\":%llu,\"v3BlockNodes\":%u,\"v3Columns\":{\"slots\":%llu,\"flags\":%llu,\"idlens\":%llu,"
         "\"ids\":%llu,\"locs\":%llu,\"links\":%llu,\"codes\":%llu},\"ms\":{\"read\":%.1f,\"blake2b\":%.1f,\"aeadOpen\":%.1f,"
         "\"v2Decode\":%.1f,\"v2DecodeAndLinks\":%.1f,\"v3DecodeAndLinks\":%.1f,\"lazyLoad1ThreadWall\":%.1f,"
         "\"lazyLoad1ThreadCpu\":%.1f,\"lazyLoad2ThreadsWall\":%.1f,\"lazyLoad2ThreadsCpu\":%.1f}}\n",
         m.nbase + m.ndeltas, (unsigned long long)t.nodes, (unsigned long long)t.file_bytes,
         (unsigned long long)t.v2_bytes, (unsigned long long)t.v3_bytes, BLOCK, (unsigned long long)t.col[0],
         (unsigned long long)t.col[1], (unsigned long long)t.col[2], (unsigned long long)t.col[3],
         (unsigned long long)t.col[4], (unsigned long long)t.col[5], (unsigned long long)t.col[6], t.read * 1e3, t.hash * 1e3,
         t.aead * 1e3, t.v2 * 1e3, t.v2conv * 1e3, t.v3 * 1e3, l1 * 1e3, c1 * 1e3, l2 * 1e3, c2 * 1e3);
  free(r3);
  vv_sctx_destroy(&sc);
  vv_keyring_free(kr);
  vv_manifest_free(&m);
  free(f);
}

/* ---- a format-3 copy of a session ---- */

/* dst becomes src with every index object re-encoded as format 3 (blocks
 * of `per` nodes) and sealed anew, chunk objects hard-linked, the manifest
 * rewritten (same version: until the loader reads format 3 this copy only
 * opens with a loader patched to try it). */
static void convert_session(const char *src, const char *dst, const unsigned char key[32], uint32_t per) {
  char path[4096], to[4096];
  vv_manifest m;
  unsigned char *f;
  vv_keyring *kr = NULL;
  vv_sctx in, out;
  vv_error err = {{0}};
  open_session(src, key, &m, &f, &kr, &in);
  snprintf(to, sizeof to, "%s/objects", dst);
  if (mkdir(dst, 0700) || mkdir(to, 0700)) die(dst, -1);
  snprintf(to, sizeof to, "%s/manifests", dst);
  if (mkdir(to, 0700) || vv_sctx_init(&out, NULL, dst)) die(to, -1);
  out.kr = kr;
  memcpy(out.session_id, m.session_id, VV_SESSION_ID_BYTES);
  for (size_t i = 0; i < m.nchunks; i++) {
    snprintf(path, sizeof path, "%s/objects/%s", src, m.chunks[i].ref.name);
    snprintf(to, sizeof to, "%s/objects/%s", dst, m.chunks[i].ref.name);
    if (link(path, to)) die(to, -1);
  }
  vv_buf scratch = {0};
  for (size_t i = 0; i < m.nbase + m.ndeltas; i++) {
    vv_mseg *g = i < m.nbase ? &m.base[i] : &m.deltas[i - m.nbase];
    unsigned char *plain;
    size_t plen;
    if (vv_object_read(&in, &g->ref, VV_OBJ_KIND_INDEX, g->seq, &plain, &plen, &err)) die(err.message, -1);
    vv_buf v3 = {0};
    reencode_v3(plain, plen, per, &v3);
    if (vv_object_write(&out, VV_OBJ_KIND_INDEX, g->seq, v3.data, v3.len, &scratch, &g->ref, &err)) die("v3 write", -1);
    vv_buf_free(&v3);
    free(plain);
  }
  vv_buf mf = {0};
  snprintf(path, sizeof path, "%s/manifest.json", dst);
  FILE *o = fopen(path, "wb");
  if (vv_manifest_write(&m, kr, &mf) || !o || fwrite(mf.data, 1, mf.len, o) != mf.len || fclose(o)) die(path, -1);
  vv_buf_free(&mf);
  vv_buf_free(&scratch);
  vv_sctx_destroy(&in);
  vv_sctx_destroy(&out);
  vv_keyring_free(kr);
  vv_manifest_free(&m);
  free(f);
}

/* ---- a synthetic graph ---- */

static uint64_t g_rng = 12345;
static uint64_t rnd(void) {
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Levels as HNSW draws them for m = 16 (mL = 1 / ln 16); lists mostly
 * full (the heuristic leaves level 0 at 10..32), neighbours anywhere. */
static void synth_nodes(nodes *s, uint32_t n) {
  const double ml = 1.0 / log(16.0);
  for (uint32_t i = 0; i < n; i++) {
    double u = ((double)(rnd() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    uint32_t level = (uint32_t)(-log(u) * ml);
    if (level >= VV_CODEC_MAX_LEVELS) level = VV_CODEC_MAX_LEVELS - 1;
    unsigned char links[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS * 4];
    char id[16];
    unsigned char code[48];
    snprintf(id, sizeof id, "id-%09u", i % 1000000000u);
    for (int k = 0; k < 48; k++) code[k] = (unsigned char)rnd();
    vv_node_view v = {.slot = i, .id = id, .id_len = 12, .chunk = rnd() % 100, .row = (uint32_t)(rnd() % 10000),
                      .nlevels = level + 1, .code = code, .code_len = 48};
    for (uint32_t l = 0; l <= level; l++) {
      uint32_t max = l ? 16 : 32, c = l ? 1 + (uint32_t)(rnd() % max) : 10 + (uint32_t)(rnd() % (max - 9));
      for (uint32_t j = 0; j < c; j++) {
        uint32_t x = (uint32_t)(rnd() % n);
        for (int k = 0; k < 4; k++) links[l][4 * j + (uint32_t)k] = (unsigned char)(x >> (8 * k));
      }
      v.links[l] = links[l];
      v.counts[l] = c;
    }
    nodes_add(s, &v);
  }
}

static void bench_synth(uint32_t n) {
  nodes s = {0};
  synth_nodes(&s, n);
  const uint32_t *(*lp)[VV_CODEC_MAX_LEVELS] = calloc(n, sizeof *lp);
  if (!lp) die("calloc", VV_E_NOMEM);
  nodes_finish(&s, lp);
  /* Format 2 as the writer cuts it: segments of 10,000 nodes. */
  const uint32_t per = 10000;
  vv_buf *v2 = calloc((n + per - 1) / per, sizeof *v2);
  vv_buf v3 = {0}, v3big = {0};
  uint64_t v2_bytes = 0;
  for (uint32_t at = 0, k = 0; at < n; at += per, k++) {
    uint32_t c = n - at < per ? n - at : per;
    int rc = vv_index_encode_begin_v2(&v2[k], k, 1, c, NULL);
    for (uint32_t i = 0; !rc && i < c; i++) rc = vv_index_encode_node(&v2[k], &s.in[at + i]);
    if (rc) die("v2 encode", rc);
    v2_bytes += v2[k].len;
  }
  double t0 = now();
  encode_v3(&s, 0, 1, NULL, BLOCK, &v3);
  double t1 = now();
  encode_v3(&s, 0, 1, NULL, n, &v3big);
  double d2 = 0, d2c = 0, hash = 0, aead = 0;
  vv_keyring *kr;
  if (vv_keyring_random(&kr)) die("keyring", -1);
  unsigned char ad[40] = {0}, nonce[VV_NONCE_BYTES], digest[VV_HASH_BYTES];
  for (uint32_t k = 0; k < (n + per - 1) / per; k++) {
    double a = now();
    g_sink += walk_v2(v2[k].data, v2[k].len, 0, NULL);
    double b = now();
    g_sink += walk_v2(v2[k].data, v2[k].len, 1, NULL);
    double c = now();
    vv_hash(v2[k].data, v2[k].len, digest);
    double d = now();
    unsigned char *sealed = malloc(v2[k].len + VV_TAG_BYTES);
    if (!sealed || vv_aead_seal(kr, VV_KEY_INDEX, ad, sizeof ad, v2[k].data, v2[k].len, nonce, sealed)) die("seal", -1);
    double e = now();
    if (vv_aead_open(kr, VV_KEY_INDEX, ad, sizeof ad, nonce, sealed, v2[k].len + VV_TAG_BYTES, sealed)) die("open", -1);
    double f = now();
    free(sealed);
    d2 += b - a;
    d2c += c - b;
    hash += d - c;
    aead += f - e;
  }
  vv_index3_reader *r3 = malloc(sizeof *r3);
  if (!r3) die("malloc", VV_E_NOMEM);
  double t2 = now();
  g_sink += walk_v3(v3.data, v3.len, r3);
  double t3 = now();
  g_sink += walk_v3(v3big.data, v3big.len, r3);
  double t4 = now();
  printf("{\"what\":\"synthetic\",\"nodes\":%u,\"v2Bytes\":%llu,\"v3Bytes\":%zu,\"v3BytesOneBlock\":%zu,"
         "\"v3BlockNodes\":%u,\"ms\":{\"v2Decode\":%.1f,\"v2DecodeAndLinks\":%.1f,\"v3DecodeAndLinks\":%.1f,"
         "\"v3DecodeOneBlock\":%.1f,\"v3Encode\":%.1f,\"blake2bOverV2\":%.1f,\"aeadOpenOverV2\":%.1f}}\n",
         n, (unsigned long long)v2_bytes, v3.len, v3big.len, BLOCK, d2 * 1e3, d2c * 1e3, (t3 - t2) * 1e3,
         (t4 - t3) * 1e3, (t1 - t0) * 1e3, hash * 1e3, aead * 1e3);
  for (uint32_t k = 0; k < (n + per - 1) / per; k++) vv_buf_free(&v2[k]);
  free(v2);
  free(r3);
  vv_keyring_free(kr);
  vv_buf_free(&v3);
  vv_buf_free(&v3big);
  free(lp);
  nodes_free(&s);
}

int main(int argc, char **argv) {
  if (vv_crypto_init()) die("crypto init", -1);
  if (argc >= 3 && strcmp(argv[1], "session") == 0) {
    unsigned char key[32];
    if (argc >= 4) {
      if (vv_hex_decode(argv[3], strlen(argv[3]), key, 32)) die("key hex", -1);
    } else if (vv_hex_decode(BENCH_KEY_HEX, 64, key, 32)) {
      die("key", -1);
    }
    bench_session(argv[2], key);
  } else if (argc >= 4 && strcmp(argv[1], "convert") == 0) {
    unsigned char key[32];
    if (vv_hex_decode(BENCH_KEY_HEX, 64, key, 32)) die("key", -1);
    convert_session(argv[2], argv[3], key, argc >= 5 ? (uint32_t)atoi(argv[4]) : 256u);
  } else if (argc >= 3 && strcmp(argv[1], "load") == 0) {
    /* one lazy load (bench key), for a profiler: open_index load <dir> [threads] */
    unsigned char key[32];
    if (vv_hex_decode(BENCH_KEY_HEX, 64, key, 32)) die("key", -1);
    double cpu, wall = time_load(argv[2], key, argc >= 4 ? (uint32_t)atoi(argv[3]) : 1, &cpu);
    printf("{\"what\":\"load\",\"wallMs\":%.1f,\"cpuMs\":%.1f}\n", wall * 1e3, cpu * 1e3);
  } else if (argc >= 2 && strcmp(argv[1], "synth") == 0) {
    bench_synth(argc >= 3 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1000000u);
  } else {
    fprintf(stderr, "usage: open_index session <dir> [key-hex] | load <dir> [threads] | convert <src> <dst> [per] | "
                    "synth [nodes]\n");
    return 2;
  }
  return 0;
}
