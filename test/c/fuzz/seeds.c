/*
 * test/c/fuzz/seeds.c: writes valid inputs as a starting corpus.
 *
 *   seeds <target> <dir>    e.g. seeds fuzz_chunk build/fuzz/corpus/fuzz_chunk
 *
 * Two sources. Hand-built encodings cover the codec's corners (every
 * format, null ids and metadata, empty segments). Real sessions, made by
 * running the engine in a temporary directory, give every target what
 * vecvault actually writes: sessions of several shapes (plaintext, a raw
 * key, a passphrase; HNSW and flat; every metric; empty; with index deltas
 * and a changed chunk after a second save), whose manifest files (current
 * and manifests/ copies) feed fuzz_json and fuzz_manifest, and whose
 * chunk and index objects, opened with the session's key, feed fuzz_chunk
 * and fuzz_index as plaintext.
 *
 * Unknown targets get no seeds (exit 0), so new fuzz_*.c files need no
 * change here to run. Seeds are named seed-N and overwritten on each run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/index3.h"
#include "session/manifest.h"
#include "session/object.h"
#include "session/paged.h"
#include "session/secrets.h"
#include "vecvault.h"

static const char *g_dir;
static int g_n;
static int g_index3; /* index objects are written as format 3 (fuzz_index3) */
/* The raw key of the sealed sessions below (fuzz_pages.c opens their pages with it). */
static const unsigned char kSeedKey[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                           17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void put(vv_buf *b) {
  char path[4096];
  snprintf(path, sizeof path, "%s/seed-%d", g_dir, g_n++);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f)) {
    perror(path);
    exit(1);
  }
  vv_buf_free(b);
}

static void must(int rc) {
  if (rc) {
    fprintf(stderr, "seeds: encode failed (%d)\n", rc);
    exit(1);
  }
}

static void chunk_seeds(void) {
  static const char *ids[] = {"a", NULL, "caf\xc3\xa9", "\xf0\x9f\x98\x80", "x"};
  static const char *metas[] = {"{}", NULL, "{\"k\":[1,2]}", NULL, ""};
  static const uint32_t dims[] = {1, 2, 3, 8};
  for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
    for (uint32_t count = 0; count <= 5; count += 1 + (count > 1)) {
      uint32_t slots[5], id_lens[5], meta_lens[5];
      float flat[5 * 8];
      const float *rows[5];
      for (uint32_t i = 0; i < count; i++) {
        slots[i] = i * 1000u;
        id_lens[i] = ids[i] ? (uint32_t)strlen(ids[i]) : 0;
        meta_lens[i] = metas[i] ? (uint32_t)strlen(metas[i]) : 0;
        rows[i] = flat + i * dims[d];
        for (uint32_t k = 0; k < dims[d]; k++) flat[i * dims[d] + k] = (float)i - 0.5f * (float)k;
      }
      vv_chunk_in in = {d * 300u, dims[d], count, slots, rows, ids, id_lens, metas, meta_lens};
      vv_buf b = {0};
      must(vv_chunk_encode(&in, &b));
      put(&b);
    }
  }
}

/* Format 1 (5-key header, 5-element nodes) and format 2 (a "pq" codebook
 * or null, a code or null per node). */
static void index_seeds(void) {
  static const uint32_t links[4][6] = {{1, 2, 3, 4, 5, 6}, {7, 8}, {9}, {0}};
  const uint32_t *lp[4] = {links[0], links[1], links[2], links[3]};
  static const uint32_t counts[4] = {6, 2, 1, 0};
  static const float cents[2 * 4 * 2] = {1, 0, -1, 0.5f, 2, 2, 0, -3, 0.25f, 4, -2, 1, 3, -1, 0, 8};
  static const uint8_t codes[4][2] = {{0, 1}, {3, 2}, {1, 1}, {2, 0}};
  const vv_codebook_in cb = {2, 4, 2, 16, cents};
  for (int fmt = 0; fmt < 3; fmt++) { /* 1; 2 with a codebook; 2 without */
    for (uint32_t count = 0; count <= 4; count++) {
      vv_buf b = {0};
      if (fmt == 0) must(vv_index_encode_begin(&b, count * 70000ull, (int)(count & 1), count));
      else must(vv_index_encode_begin_v2(&b, count * 70000ull, fmt == 1, count, fmt == 1 ? &cb : NULL));
      for (uint32_t i = 0; i < count; i++) {
        vv_node_in n = {.slot = i * 5u,
                        .id = i == 1 ? NULL : "n\xc3\xa9",
                        .id_len = i == 1 ? 0 : 3,
                        .chunk = i,
                        .row = i * 2u,
                        .nlevels = i,
                        .links = lp,
                        .counts = counts,
                        .v2 = fmt > 0,
                        .code = fmt > 0 && i != 2 ? codes[i] : NULL,
                        .code_len = fmt > 0 && i != 2 ? 2 : 0};
        must(vv_index_encode_node(&b, &n));
      }
      put(&b);
    }
  }
}

/* ---- real sessions -------------------------------------------------------- */

typedef enum { FOR_JSON, FOR_MANIFEST, FOR_CHUNK, FOR_INDEX, FOR_INDEX3, FOR_PAGES } seed_kind;

static void put_bytes(const void *p, size_t n, int mode_byte) {
  vv_buf b = {0};
  unsigned char mode = (unsigned char)mode_byte;
  if ((mode_byte >= 0 && vv_buf_append(&b, &mode, 1)) || vv_buf_append(&b, p, n)) must(VV_E_NOMEM);
  put(&b);
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *b = NULL;
  long n = -1;
  if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  if (f) fclose(f);
  if (!b) {
    perror(path);
    exit(1);
  }
  *len = (size_t)n;
  return b;
}

/* Format 3 (columnar): the nodes a format-2 segment holds, re-encoded in
 * blocks of at most `per` (>= 1) nodes, written as one seed. */
static void index3_from_v2(const unsigned char *plain, size_t len, uint32_t per) {
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  must(vv_index_decode_begin(&r, plain, len, &seq, &base, &count) == VV_OK ? VV_OK : VV_E_CORRUPT);
  vv_node_in *in = calloc(count ? count : 1, sizeof *in);
  uint32_t(*links)[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS] = calloc(count ? count : 1, sizeof *links);
  const uint32_t *(*lp)[VV_CODEC_MAX_LEVELS] = calloc(count ? count : 1, sizeof *lp);
  uint32_t(*counts)[VV_CODEC_MAX_LEVELS] = calloc(count ? count : 1, sizeof *counts);
  if (!in || !links || !lp || !counts) must(VV_E_NOMEM);
  vv_node_view v;
  for (uint32_t i = 0; vv_index_decode_next(&r, &v) == VV_OK; i++) {
    in[i] = (vv_node_in){.slot = v.slot, .id = v.id, .id_len = v.id_len, .chunk = v.chunk, .row = v.row,
                         .nlevels = v.nlevels, .links = lp[i], .counts = counts[i], .code = v.code,
                         .code_len = v.code_len};
    for (uint32_t l = 0; l < v.nlevels; l++) {
      for (uint32_t j = 0; j < v.counts[l]; j++) links[i][l][j] = vv_le32(v.links[l] + 4 * j);
      lp[i][l] = links[i][l];
      counts[i][l] = v.counts[l];
    }
  }
  float *cents = NULL;
  vv_codebook_in cb = {0};
  if (r.has_codebook) {
    size_t nf = (size_t)r.cb.m * r.cb.ksub * r.cb.dsub;
    if (!(cents = malloc(nf * sizeof *cents))) must(VV_E_NOMEM);
    vv_read_f32le(r.cb.centroids, nf, cents);
    cb = (vv_codebook_in){r.cb.m, r.cb.ksub, r.cb.dsub, r.cb.trained, cents};
  }
  /* As format 3 wrote it, then as format 4: every node with an attribute
   * record (a value, or empty) and the header listing the field. */
  static const char *const paths[] = {"lang"};
  static const uint32_t plens[] = {4};
  static const unsigned char rec[] = {0x02, 0x04, 0x02, 'e', 'n'};
  const vv_fields_in fields = {1, paths, plens};
  for (int v4 = 0; v4 < 2; v4++) {
    for (uint32_t i = 0; i < count; i++) {
      in[i].attrs = v4 ? rec : NULL;
      in[i].attrs_len = v4 && i % 2 == 0 ? sizeof rec : 0;
    }
    vv_buf b = {0};
    must(vv_index3_encode_begin(&b, seq, base, count, (count + per - 1) / per, r.has_codebook ? &cb : NULL,
                                v4 ? &fields : NULL));
    for (uint32_t at = 0; at < count; at += per)
      must(vv_index3_encode_block(in + at, count - at < per ? count - at : per, &b));
    put(&b);
  }
  free(cents);
  free(in);
  free(links);
  free(lp);
  free(counts);
}

/* The format-2 hand-built segments (index_seeds, written to a scratch
 * directory first) in blocks of one node and of all. */
static void index3_seeds(void) {
  const char *dir = g_dir;
  int first = g_n;
  char tmp[] = "/tmp/vv-seeds3-XXXXXX";
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    exit(1);
  }
  g_dir = tmp;
  index_seeds();
  int last = g_n;
  g_dir = dir;
  for (int i = first; i < last; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%d", tmp, i);
    size_t len;
    unsigned char *p = slurp(path, &len);
    index3_from_v2(p, len, 1);
    index3_from_v2(p, len, 1000);
    free(p);
    remove(path);
  }
  rmdir(tmp);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* One object's plaintext, opened as a load would. */
static void object_seed(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq) {
  unsigned char *plain = NULL;
  size_t len = 0;
  vv_error err = {{0}};
  if (vv_object_read(sc, ref, kind, seq, &plain, &len, &err)) {
    fprintf(stderr, "seeds: %s\n", err.message);
    exit(1);
  }
  if (kind == VV_OBJ_KIND_INDEX && g_index3) index3_from_v2(plain, len, 7);
  else put_bytes(plain, len, -1);
  free(plain);
}

/* A format-3 (paged) object: for fuzz_pages the object file itself, behind
 * the mode byte and session id fuzz_pages.c reads (only sessions sealed with
 * kSeedKey, or none, open there); otherwise each page's plaintext: a chunk
 * map, or a columnar index segment (fuzz_index3). */
static void paged_seed(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, uint32_t count, uint32_t dim,
                       seed_kind sk, int seed_key) {
  if (sk == FOR_PAGES) {
    if (sc->kr && !seed_key) return;
    char *path = vv_object_path(sc, ref->name);
    size_t len;
    unsigned char *f = path ? slurp(path, &len) : NULL;
    unsigned char mode = (unsigned char)((sc->kr ? 1 : 0) | (kind == VV_OBJ_KIND_INDEX ? 2 : 0));
    vv_buf b = {0};
    if (!f || vv_buf_append(&b, &mode, 1) || vv_buf_append(&b, sc->session_id, VV_SESSION_ID_BYTES) ||
        vv_buf_append(&b, f, len))
      must(VV_E_NOMEM);
    put(&b);
    free(f);
    free(path);
    return;
  }
  if (sk == FOR_INDEX) return; /* fuzz_index reads formats 1 and 2 only */
  vv_buf file = {0};
  vv_ptable t;
  vv_error err = {{0}};
  if (vv_paged_read_file(sc, ref, kind, seq, count, dim, &file, &t, &err)) {
    fprintf(stderr, "seeds: %s\n", err.message);
    exit(1);
  }
  for (uint32_t p = 0; p < t.npages; p++) {
    const unsigned char *plain;
    size_t len;
    must(vv_paged_open_page(sc, ref, kind, seq, &t, p, file.data, &plain, &len, &err));
    put_bytes(plain, len, -1);
  }
  vv_ptable_free(&t);
  vv_buf_free(&file);
}

/* Seeds from one manifest file of `dir` (and, for objects, the objects it lists). */
static void manifest_seeds(const char *dir, const char *file, const vv_load_opts *lo, seed_kind kind) {
  size_t len;
  unsigned char *f = slurp(file, &len);
  vv_manifest m;
  const unsigned char *body;
  size_t blen;
  vv_error err = {{0}};
  must(vv_manifest_parse(f, len, &m, &body, &blen, &err));
  if (kind == FOR_JSON) {
    put_bytes(f, len, 0);       /* even first byte: parse the whole file as a document */
    put_bytes(body, blen, 0);   /* and the body alone */
    put_bytes(m.created_at, strlen(m.created_at), 1); /* odd: write a string */
  } else if (kind == FOR_MANIFEST) {
    put_bytes(body, blen, -1);
  } else {
    vv_keyring *kr = NULL;
    vv_sctx sc;
    must(vv_secrets_for_load(&m, lo, &kr, &err));
    must(vv_sctx_init(&sc, NULL, dir));
    sc.kr = kr;
    memcpy(sc.session_id, m.session_id, VV_SESSION_ID_BYTES);
    int paged = m.version >= 3, seed_key = lo->key && !memcmp(lo->key, kSeedKey, sizeof kSeedKey);
    for (size_t i = 0; (kind == FOR_CHUNK || kind == FOR_PAGES) && i < m.nchunks; i++) {
      const vv_mchunk *c = &m.chunks[i];
      if (paged) paged_seed(&sc, &c->ref, VV_OBJ_KIND_CHUNK, c->seq, c->count, m.dimension, kind, seed_key);
      else object_seed(&sc, &c->ref, VV_OBJ_KIND_CHUNK, c->seq);
    }
    for (size_t i = 0; (kind == FOR_INDEX || kind == FOR_INDEX3 || kind == FOR_PAGES) && i < m.nbase + m.ndeltas; i++) {
      const vv_mseg *g = i < m.nbase ? &m.base[i] : &m.deltas[i - m.nbase];
      if (paged) paged_seed(&sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq, g->count, 0, kind, seed_key);
      else object_seed(&sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq);
    }
    vv_sctx_destroy(&sc);
    vv_keyring_free(kr);
  }
  vv_manifest_free(&m);
  free(f);
}

/* manifest.json for everything; the manifests/ copies only for the manifest
 * targets (their objects may be collected already). */
static void dir_seeds(const char *dir, const vv_load_opts *lo, seed_kind kind) {
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  manifest_seeds(dir, path, lo, kind);
  if (kind != FOR_JSON && kind != FOR_MANIFEST) return;
  snprintf(path, sizeof path, "%s/manifests", dir);
  DIR *d = opendir(path);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (!strstr(e->d_name, ".json")) continue;
    char copy[4096 + 300];
    snprintf(copy, sizeof copy, "%s/%s", path, e->d_name);
    manifest_seeds(dir, copy, lo, kind);
  }
  if (d) closedir(d);
}

typedef struct shape {
  const char *name;
  vv_metric metric;
  vv_index_kind index;
  uint32_t dim, n, chunk;
  int seal; /* 0 plaintext, 1 raw key, 2 passphrase */
  int second_save; /* deletes, upserts and adds, then a second (incremental) save */
} shape;

static const char kSeedPass[] = "seed passphrase";

static void add_items(vv_db *db, const shape *s, uint32_t from, uint32_t to, float shift) {
  static const char *metas[] = {NULL, "{\"k\":[1,2,{\"x\":null}]}", "\"caf\xc3\xa9\"", "\"\"", "3.5"};
  for (uint32_t i = from; i < to; i++) {
    char id[32];
    float v[16];
    int len = snprintf(id, sizeof id, i % 7 == 3 ? "\xf0\x9f\x98\x80-%u" : "id-%u", i);
    for (uint32_t d = 0; d < s->dim; d++) v[d] = (float)((i * 31 + d * 17) % 23) / 7.0f - 1.5f + shift;
    const char *meta = metas[i % 5];
    vv_item it = {id, (size_t)len, v, meta, meta ? strlen(meta) : 0};
    must(vv_db_add(db, &it));
  }
}

static char g_root[] = "/tmp/vv-seeds-XXXXXX";

static void remove_root(void) { nftw(g_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void session_seeds(seed_kind kind) {
  static const shape shapes[] = {
      {"plain-hnsw-deltas", VV_METRIC_COSINE, VV_INDEX_HNSW, 8, 60, 16, 0, 1},
      {"key-hnsw-deltas", VV_METRIC_L2, VV_INDEX_HNSW, 16, 40, 8, 1, 1},
      {"pass-flat", VV_METRIC_DOT, VV_INDEX_FLAT, 8, 30, 10, 2, 0},
      {"plain-flat-deltas", VV_METRIC_L2, VV_INDEX_FLAT, 8, 25, 8, 0, 1},
      {"plain-empty-hnsw", VV_METRIC_COSINE, VV_INDEX_HNSW, 8, 0, 8, 0, 0},
      {"key-empty-flat", VV_METRIC_L2, VV_INDEX_FLAT, 16, 0, 8, 1, 0},
  };
  if (!mkdtemp(g_root)) {
    perror("mkdtemp");
    exit(1);
  }
  atexit(remove_root); /* also after a failure */
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    const shape *s = &shapes[i];
    char dir[64];
    snprintf(dir, sizeof dir, "%s/%s", g_root, s->name);
    vv_config c = {.dimension = s->dim, .metric = s->metric, .index = s->index, .hnsw_m = 4,
                   .ef_construction = 20, .chunk_size = s->chunk, .threads = 1, .seed = 5};
    vv_db *db = NULL;
    must(vv_db_create(&c, &db));
    must(vv_db_set_secret(db, s->seal != 0, s->seal == 1 ? kSeedKey : NULL, s->seal == 2 ? kSeedPass : NULL,
                          s->seal == 2 ? strlen(kSeedPass) : 0));
    add_items(db, s, 0, s->n, 0.0f);
    vv_error err = {{0}};
    int rc = vv_db_save(db, dir, NULL, NULL, NULL, NULL, &err);
    if (!rc && s->second_save) {
      int removed;
      for (uint32_t k = 0; k < s->n && !rc; k += 5) {
        char id[32];
        int len = snprintf(id, sizeof id, k % 7 == 3 ? "\xf0\x9f\x98\x80-%u" : "id-%u", k);
        rc = vv_db_delete(db, id, (size_t)len, &removed);
      }
      add_items(db, s, 1, s->n / 3, 0.25f);     /* upserts */
      add_items(db, s, s->n, s->n + 9, 0.5f);   /* new rows */
      if (!rc) rc = vv_db_save(db, dir, NULL, NULL, NULL, NULL, &err);
    }
    vv_db_free(db);
    if (rc) {
      fprintf(stderr, "seeds: saving %s: %s (%s)\n", s->name, vv_status_code(rc), err.message);
      exit(1);
    }
    vv_load_opts lo = {.key = s->seal == 1 ? kSeedKey : NULL, .pass = s->seal == 2 ? kSeedPass : NULL,
                       .pass_len = s->seal == 2 ? strlen(kSeedPass) : 0};
    dir_seeds(dir, &lo, kind);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: seeds <target> <dir>\n");
    return 2;
  }
  g_dir = argv[2];
  if (strcmp(argv[1], "fuzz_chunk") == 0) {
    chunk_seeds();
    session_seeds(FOR_CHUNK);
  } else if (strcmp(argv[1], "fuzz_index") == 0) {
    index_seeds();
    session_seeds(FOR_INDEX);
  } else if (strcmp(argv[1], "fuzz_index3") == 0) {
    index3_seeds();
    g_index3 = 1;
    session_seeds(FOR_INDEX3);
  } else if (strcmp(argv[1], "fuzz_pages") == 0) {
    session_seeds(FOR_PAGES);
  } else if (strcmp(argv[1], "fuzz_json") == 0) {
    session_seeds(FOR_JSON);
  } else if (strcmp(argv[1], "fuzz_manifest") == 0) {
    session_seeds(FOR_MANIFEST);
  }
  return 0;
}
