/*
 * test/c/test_session_formats.c: the rules of each session format
 * version at load (session/load.c, codec/codec.c).
 *
 * Owns: the format-2 codebook and code rules, checked on index segments
 * re-encoded with one rule broken at a time (codebook missing, NaN, wrong
 * sizes; codes too long, too big, missing; a free slot with a code), and
 * version-1 sessions, which load eagerly and are upgraded by their first
 * save.
 *
 * Each test runs in a forked child (VV_ISOLATED, support.h), so an engine
 * crash or a sanitizer abort fails that test and the others still run.
 * Sessions live under temporary directories ($VV_TEST_TMPDIR, default /tmp)
 * removed at the end; the database model, the session editing helpers and
 * the snapshots are in support.c, the fault-injecting I/O table in faultio.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/index3.h"
#include "common/util.h"
#include "crypto/crypto.h"
#include "session/io.h"
#include "session/manifest.h"
#include "session/gc.h"
#include "session/object.h"
#include "session/paged.h"
#include "vecvault.h"
#include "vvtest.h"

#include "faultio.h"
#define VT_SESSION_MODEL
#include "support.h"

VT_MANY_DATABASES()

/* ---- format 2: codebook and codes; format 1 still read -------------------- */

/* How rewrite_segment changes an index segment of an unencrypted session. */
enum { CB_KEEP, CB_NONE, CB_SET, CB_NAN, CB_DSUB, CB_KSUB1 };
enum { N_KEEP, N_CODE_LONG, N_CODE_BIG, N_CODE_NULL, N_FREE_WITH_CODE };

typedef struct seg_edit {
  int v2;                   /* the format written (1 or 2) */
  int cb;                   /* CB_*: the codebook written */
  const vv_codebook_in *set; /* for CB_SET */
  int node;                 /* N_*: applied to the first node it fits */
  int applied;              /* out: the node edit found a node */
} seg_edit;

/* The codebook of a segment object, as floats (cents: caller frees). */
static int read_codebook(const char *dir, const vv_objref *ref, vv_codebook_in *cb, float **cents) {
  size_t len;
  unsigned char *f = read_object(dir, ref->name, &len);
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  int rc = f && len >= VV_OBJ_HEADER_BYTES
               ? vv_index_decode_begin(&r, f + VV_OBJ_HEADER_BYTES, len - VV_OBJ_HEADER_BYTES, &seq, &base, &count)
               : VV_E_IO;
  if (!rc && !r.has_codebook) rc = VV_E_NOT_FOUND;
  if (!rc) {
    size_t nf = (size_t)r.cb.m * r.cb.ksub * r.cb.dsub;
    *cents = malloc(nf * sizeof **cents);
    vv_read_f32le(r.cb.centroids, nf, *cents);
    *cb = (vv_codebook_in){r.cb.m, r.cb.ksub, r.cb.dsub, r.cb.trained, *cents};
  }
  free(f);
  return rc;
}

/* The codebook of a format-3 base segment: in its first page only. */
static int read_codebook3(const char *dir, const vv_mseg *g, vv_codebook_in *cb, float **cents) {
  session_ctx c;
  int rc = session_ctx_open(&c, dir, NULL);
  if (rc) return rc;
  vv_buf file = {0};
  vv_ptable t;
  vv_error err = {{0}};
  rc = vv_paged_read_file(&c.sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq, g->count, 0, &file, &t, &err);
  for (uint32_t pg = 0; !rc && pg < t.npages; pg++) {
    const unsigned char *plain;
    size_t plen;
    vv_index3_reader r;
    uint64_t seq;
    int base;
    uint32_t count, nblocks;
    rc = vv_paged_open_page(&c.sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq, &t, pg, file.data, &plain, &plen, &err);
    if (!rc) rc = vv_index3_decode_begin(&r, plain, plen, &seq, &base, &count, &nblocks);
    if (!rc && r.has_codebook != (pg == 0)) rc = VV_E_CORRUPT; /* page 0 has it, no other page */
    if (!rc && pg == 0) {
      size_t nf = (size_t)r.cb.m * r.cb.ksub * r.cb.dsub;
      *cents = malloc(nf * sizeof **cents);
      vv_read_f32le(r.cb.centroids, nf, *cents);
      *cb = (vv_codebook_in){r.cb.m, r.cb.ksub, r.cb.dsub, r.cb.trained, *cents};
    }
  }
  if (!rc) vv_ptable_free(&t);
  vv_buf_free(&file);
  session_ctx_close(&c);
  return rc;
}

/* Objects in dir/objects of envelope version `v` (byte 4 of the header). */
static int objects_of_version(const char *dir, int v) {
  char od[256];
  strf(od, sizeof od, "%s/objects", dir);
  DIR *d = opendir(od);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    if (strlen(e->d_name) != 64) continue;
    size_t len;
    unsigned char *f = read_object(dir, e->d_name, &len);
    n += f && len > 5 && f[4] == v;
    free(f);
  }
  if (d) closedir(d);
  return n;
}

/* In the manifest body, the entry naming `old` now names `neu` with
 * `bytes`, and its count grows by `more`. */
static int manifest_reentry(text *body, const char *old, const char *neu, uint64_t bytes, int more) {
  if (manifest_retarget(body, old, neu, bytes, -1, -1)) return -1;
  if (!more) return 0;
  char pat[100];
  strf(pat, sizeof pat, "\"name\":\"%s\"", neu);
  long at = text_find(body, pat, 0);
  long c = at < 0 ? -1 : text_find(body, "\"count\":", (size_t)at);
  if (c < 0) return -1;
  size_t e = (size_t)c + 8;
  unsigned long long n = strtoull(body->p + e, NULL, 10);
  while (e < body->n && body->p[e] >= '0' && body->p[e] <= '9') e++;
  char num[32];
  int nl = strf(num, sizeof num, "%llu", n + (unsigned long long)more);
  text_splice(body, (size_t)c + 8, e - ((size_t)c + 8), num, (size_t)nl);
  return 0;
}

/* Decodes index segment `g` of the unencrypted session in `dir`, encodes
 * it again as `ed` says, writes it as a new object and points the
 * manifest body's entry at it. With nothing to change the bytes come out
 * the same (the control case). */
static int rewrite_segment(const char *dir, text *body, const vv_mseg *g, seg_edit *ed) {
  static uint32_t store[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS];
  size_t len;
  unsigned char *f = read_object(dir, g->ref.name, &len);
  if (!f || len < VV_OBJ_HEADER_BYTES || f[6] != 0) { /* flag bit 0: encrypted */
    free(f);
    return -1;
  }
  vv_index_reader r;
  uint64_t seq;
  int base;
  uint32_t count;
  int rc = vv_index_decode_begin(&r, f + VV_OBJ_HEADER_BYTES, len - VV_OBJ_HEADER_BYTES, &seq, &base, &count);
  float *cents = NULL;
  vv_codebook_in cb = {0};
  const vv_codebook_in *use = NULL;
  if (!rc && r.has_codebook && ed->cb != CB_NONE && ed->cb != CB_SET) {
    size_t nf = (size_t)r.cb.m * r.cb.ksub * r.cb.dsub;
    cents = malloc(2 * nf * sizeof *cents);
    vv_read_f32le(r.cb.centroids, nf, cents);
    memcpy(cents + nf, cents, nf * sizeof *cents);
    cb = (vv_codebook_in){r.cb.m, r.cb.ksub, r.cb.dsub, r.cb.trained, cents};
    if (ed->cb == CB_NAN) cents[nf / 2] = NAN;
    if (ed->cb == CB_DSUB) cb.dsub *= 2; /* m * dsub is no longer the dimension */
    if (ed->cb == CB_KSUB1) cb.ksub = 1; /* codes name centroids it lacks */
    use = &cb;
  }
  if (ed->cb == CB_SET) use = ed->set;
  int more = ed->node == N_FREE_WITH_CODE ? 1 : 0;
  vv_buf out = {0};
  if (!rc) rc = ed->v2 == 2 ? vv_index_encode_begin_v2(&out, seq, base, count + (uint32_t)more, use)
                            : vv_index_encode_begin(&out, seq, base, count + (uint32_t)more);
  vv_node_view nd;
  uint8_t code[VV_CODEC_MAX_CODE + 1];
  while (!rc && (rc = vv_index_decode_next(&r, &nd)) == VV_OK) {
    const uint32_t *links[VV_CODEC_MAX_LEVELS];
    for (uint32_t l = 0; l < nd.nlevels; l++) {
      for (uint32_t k = 0; k < nd.counts[l]; k++) store[l][k] = vv_le32(nd.links[l] + 4 * (size_t)k);
      links[l] = store[l];
    }
    vv_node_in n = {.slot = nd.slot, .id = nd.id, .id_len = nd.id_len, .chunk = nd.chunk, .row = nd.row,
                    .nlevels = nd.nlevels, .links = links, .counts = nd.counts, .v2 = ed->v2 == 2,
                    .code = ed->v2 == 2 ? nd.code : NULL, .code_len = ed->v2 == 2 ? nd.code_len : 0};
    if (!ed->applied && n.code && (ed->node != N_CODE_NULL || n.id)) {
      memcpy(code, n.code, n.code_len);
      switch (ed->node) {
        case N_CODE_LONG: /* m + 1 bytes */
          code[n.code_len] = 0;
          n.code = code;
          n.code_len++;
          ed->applied = 1;
          break;
        case N_CODE_BIG: /* a byte >= ksub (255: these codebooks have ksub < 256) */
          code[0] = 255;
          n.code = code;
          ed->applied = 1;
          break;
        case N_CODE_NULL: /* a live node without its code */
          n.code = NULL;
          n.code_len = 0;
          ed->applied = 1;
          break;
        case N_FREE_WITH_CODE: { /* first a free record for this slot, with a code; then the real one */
          vv_node_in fr = {.slot = n.slot, .v2 = 1, .code = code, .code_len = n.code_len};
          rc = vv_index_encode_node(&out, &fr);
          ed->applied = 1;
          break;
        }
        default:
          break;
      }
    }
    if (!rc) rc = vv_index_encode_node(&out, &n);
  }
  if (rc == VV_END) rc = VV_OK;
  free(cents);
  free(f);
  if (ed->node != N_KEEP && !ed->applied) rc = VV_E_NOT_FOUND;
  vv_objref ref;
  if (!rc) {
    fio q;
    fio_init(&q, NULL); /* no real fsync */
    vv_sctx sc;
    vv_buf scratch = {0};
    vv_error err;
    rc = vv_sctx_init(&sc, fio_io(&q), dir);
    if (!rc) rc = vv_object_write(&sc, VV_OBJ_KIND_INDEX, g->seq, out.data, out.len, &scratch, &ref, &err);
    vv_sctx_destroy(&sc);
    vv_buf_free(&scratch);
    fio_destroy(&q);
  }
  vv_buf_free(&out);
  if (!rc) rc = manifest_reentry(body, g->ref.name, ref.name, ref.bytes, more);
  return rc ? -1 : 0;
}

/* A small unencrypted HNSW session with two base segments (the first
 * carries the codebook) and a delta: 60 vectors, chunks of 20, and one
 * upsert saved after the first save; stored as format 2 stored it
 * (downgrade_session, support.h). */
static int coded_session(const char *dir, model *content, vv_index_kind kind) {
  model_a(content, SMALL_N);
  vv_db *db = make_db(SMALL_CHUNK, kind);
  model empty;
  memset(&empty, 0, sizeof empty);
  int rc = db ? apply_model(db, &empty, content) : VV_E_NOMEM;
  if (!rc) rc = save_clean(db, dir);
  model next = *content;
  model_set(&next, 7, 9, "{\"moved\":1}");
  if (!rc) rc = apply_model(db, content, &next);
  if (!rc) rc = save_clean(db, dir);
  *content = next;
  vv_db_free(db);
  /* Saves write format 3; these rules are format 2's. */
  if (!rc) rc = downgrade_session(dir, 2);
  return rc;
}

/* Eager and lazy loads of `dir` both fail with `want`. */
static void expect_load_fails(const char *dir, int want, const char *what) {
  for (int lazy = 0; lazy < 2; lazy++) {
    vv_db *db = NULL;
    vv_error err = {{0}};
    int rc = load_dir_opts(dir, NULL, NULL, lazy, &db, NULL, &err);
    VV_CHECK(rc == want);
    if (rc != want)
      fprintf(stderr, "  %s, %s load: %s (%s)\n", what, lazy ? "lazy" : "eager", vv_status_code(rc), err.message);
    VV_CHECK(db == NULL);
    vv_db_free(db);
  }
}

typedef struct code_case {
  const char *what;
  int seg;       /* 0 = base[0], 1 = base[1], 2 = the first delta */
  seg_edit ed;
  int v1_manifest; /* also edit the manifest's version to 1 */
  int flat;      /* in a flat session */
} code_case;

static void run_code_case(const code_case *c, const char *root) {
  char dir[128];
  strf(dir, sizeof dir, "%s/%s", root, c->flat ? "flat" : "hnsw");
  VV_NOTE("%s", c->what);
  vv_manifest m;
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  text pristine = {0}, body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &pristine, mac) == 0);
  text_set(&body, pristine.p, pristine.n);
  const vv_mseg *g = c->seg == 0 ? &m.base[0] : c->seg == 1 ? &m.base[1] : &m.deltas[0];
  seg_edit ed = c->ed;
  vv_codebook_in cb;
  float *cents = NULL;
  if (ed.cb == CB_SET) {
    /* The HNSW session's codebook, its m * dsub matching both sessions' dimension. */
    char hdir[128];
    strf(hdir, sizeof hdir, "%s/hnsw", root);
    vv_manifest hm;
    VV_REQUIRE(read_manifest(hdir, &hm) == VV_OK);
    int rc = read_codebook(hdir, &hm.base[0].ref, &cb, &cents);
    vv_manifest_free(&hm);
    VV_REQUIRE(rc == VV_OK);
    ed.set = &cb;
  }
  VV_REQUIRE(rewrite_segment(dir, &body, g, &ed) == 0);
  if (c->v1_manifest) {
    long at = text_find(&body, "\"version\":2,", 0);
    VV_REQUIRE(at >= 0);
    text_splice(&body, (size_t)at + 10, 1, "1", 1);
  }
  VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
  expect_load_fails(dir, VV_E_CHUNK_CORRUPT, c->what);
  VV_REQUIRE(manifest_write(dir, &pristine, mac) == 0);
  free(cents);
  free(body.p);
  free(pristine.p);
  vv_manifest_free(&m);
}

/* docs/FORMAT.md 5.2: the codebook and code rules, each broken alone in a
 * segment re-encoded with everything else intact (names, sizes, counts and
 * the sum fixed up), and refused by eager and lazy loads alike. First the
 * control: the same rewrite changing nothing loads the same data. */
static void format2_code_rules_are_enforced_at_load_body(void *arg) {
  (void)arg;
  char root[64], hdir[128], fdir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(hdir, sizeof hdir, "%s/hnsw", root);
  strf(fdir, sizeof fdir, "%s/flat", root);
  model content, flat_content;
  VV_REQUIRE(coded_session(hdir, &content, VV_INDEX_HNSW) == 0);
  VV_REQUIRE(coded_session(fdir, &flat_content, VV_INDEX_FLAT) == 0);
  vv_manifest m;
  VV_REQUIRE(read_manifest(hdir, &m) == VV_OK);
  VV_REQUIRE(m.version == 2 && m.nbase >= 2 && m.ndeltas >= 1);
  vv_manifest_free(&m);

  /* Controls: rewriting changes nothing that matters. */
  for (int seg = 0; seg < 3; seg++) {
    VV_NOTE("control, segment %d", seg);
    text body = {0};
    char mac[65];
    VV_REQUIRE(manifest_read(hdir, &body, mac) == 0);
    VV_REQUIRE(read_manifest(hdir, &m) == VV_OK);
    seg_edit ed = {.v2 = 2, .cb = CB_KEEP};
    const vv_mseg *g = seg == 0 ? &m.base[0] : seg == 1 ? &m.base[1] : &m.deltas[0];
    VV_REQUIRE(rewrite_segment(hdir, &body, g, &ed) == 0);
    VV_REQUIRE(manifest_write(hdir, &body, mac) == 0);
    const char *d = dir_differs_as(hdir, NULL, 0, &content);
    VV_CHECK(d == NULL);
    d = dir_differs_as(hdir, NULL, 1, &content);
    VV_CHECK(d == NULL);
    if (d) fprintf(stderr, "  control: %s\n", d);
    vv_manifest_free(&m);
    free(body.p);
  }
  VV_CHECK(dir_differs_as(fdir, NULL, 1, &flat_content) == NULL);

  static const code_case cases[] = {
      {"a format-1 segment in a format-2 session", 1, {.v2 = 1, .cb = CB_NONE}, 0, 0},
      {"a format-2 session relabelled format 1", 2, {.v2 = 2, .cb = CB_KEEP}, 1, 0},
      {"a codebook in the second base segment", 1, {.v2 = 2, .cb = CB_SET}, 0, 0},
      {"a codebook in a delta", 2, {.v2 = 2, .cb = CB_SET}, 0, 0},
      {"a codebook in a flat session", 0, {.v2 = 2, .cb = CB_SET}, 0, 1},
      {"a codebook whose m * dsub is not the dimension", 0, {.v2 = 2, .cb = CB_DSUB}, 0, 0},
      {"a codebook with a NaN centroid", 0, {.v2 = 2, .cb = CB_NAN}, 0, 0},
      {"codes naming centroids the codebook lacks", 0, {.v2 = 2, .cb = CB_KSUB1}, 0, 0},
      {"no codebook, but codes", 0, {.v2 = 2, .cb = CB_NONE}, 0, 0},
      {"a code of m + 1 bytes", 1, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_LONG}, 0, 0},
      {"a code of m + 1 bytes in a delta", 2, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_LONG}, 0, 0},
      {"a code byte >= ksub", 0, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_BIG}, 0, 0},
      {"a code byte >= ksub in a delta", 2, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_BIG}, 0, 0},
      {"a live node without a code", 1, {.v2 = 2, .cb = CB_KEEP, .node = N_CODE_NULL}, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_code_case(&cases[i], root);
  rm_rf(root);
}

VV_TEST(format2_code_rules_are_enforced_at_load) {
  VV_ISOLATED(format2_code_rules_are_enforced_at_load_body, NULL);
}

/* FORMAT.md 5.2: "A free slot's record (id null, L = 0) has code null",
 * checked per segment. Here a delta gains a free record with a valid code
 * for a slot that a later record in the same delta then describes in full,
 * so only that rule is broken. (Fails while session/load.c's apply_node
 * accepts a code on any record.) */
static void format2_free_slot_with_code_is_refused_body(void *arg) {
  (void)arg;
  char root[64], hdir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(hdir, sizeof hdir, "%s/hnsw", root);
  model content;
  VV_REQUIRE(coded_session(hdir, &content, VV_INDEX_HNSW) == 0);
  code_case c = {"a free slot's record with a code", 2, {.v2 = 2, .cb = CB_KEEP, .node = N_FREE_WITH_CODE}, 0, 0};
  run_code_case(&c, root);
  rm_rf(root);
}

VV_TEST(format2_free_slot_with_code_is_refused) {
  VV_ISOLATED(format2_free_slot_with_code_is_refused_body, NULL);
}

/* The first save into `dir` of `db`, loaded from a session of format 1 or
 * 2 there holding `content` in `nchunks` chunks: it rewrites everything as
 * format 3 (a codebook in the first page of the first base segment), which
 * then loads lazily with the same data; the older objects stay while a kept
 * generation names them and are collected after VV_KEEP_MANIFESTS newer
 * ones. Frees db. */
static void upgrade_by_saving(vv_db *db, const char *dir, model *content, size_t nchunks) {
  vv_manifest m;
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  int old = (int)(m.nchunks + m.nbase + m.ndeltas); /* what the old generation names */
  vv_manifest_free(&m);
  VV_CHECK(objects_of_version(dir, VV_OBJ_VERSION) >= old && objects_of_version(dir, VV_PAGED_VERSION) == 0);
  fio f;
  fio_init(&f, NULL);
  vv_save_stats ss;
  vv_error err = {{0}};
  VV_REQUIRE(vv_db_save(db, dir, fio_io(&f), NULL, NULL, &ss, &err) == VV_OK);
  /* Format 3 keeps no whole-object chunk: every chunk is rewritten paged. */
  VV_CHECK(ss.chunks_reused == 0 && ss.chunks_written >= nchunks && ss.index_written >= 1);
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  VV_CHECK(m.version == VV_FORMAT_VERSION_PLAIN && m.ndeltas == 0 && m.nbase >= 1);
  for (size_t i = 0; i < m.nchunks; i++) VV_CHECK(object_npages(dir, m.chunks[i].ref.name) >= 1);
  vv_codebook_in cb = {0};
  float *cents = NULL;
  VV_CHECK(m.nbase && read_codebook3(dir, &m.base[0], &cb, &cents) == VV_OK);
  VV_CHECK(cb.m * cb.dsub == DIM);
  free(cents);
  vv_manifest_free(&m);
  VV_CHECK(objects_of_version(dir, VV_OBJ_VERSION) == old); /* the previous generation stays whole */
  VV_CHECK(dir_differs_as(dir, NULL, 0, content) == NULL);
  vv_load_stats st;
  vv_db *lz = NULL;
  VV_REQUIRE(load_dir_opts(dir, NULL, NULL, 1, &lz, &st, &err) == VV_OK);
  VV_CHECK(st.lazy == 1 && st.chunks_loaded == 0);
  VV_CHECK(db_differs(lz, content) == NULL);
  VV_CHECK(search_works(lz));
  vv_db_free(lz);

  /* Newer generations push the old one out of the kept history. */
  for (int g = 0; g < VV_KEEP_MANIFESTS + 1; g++) {
    model next = *content;
    model_set(&next, g, 20 + (uint64_t)g, NULL);
    VV_REQUIRE(apply_model(db, content, &next) == VV_OK);
    *content = next;
    VV_REQUIRE(vv_db_save(db, dir, fio_io(&f), NULL, NULL, &ss, &err) == VV_OK);
  }
  vv_db_free(db);
  fio_destroy(&f);
  VV_CHECK(objects_of_version(dir, VV_OBJ_VERSION) == 0);
  VV_CHECK(missing_objects(dir) == 0);
  VV_CHECK(dir_differs_as(dir, NULL, 0, content) == NULL);
  VV_CHECK(dir_differs_as(dir, NULL, 1, content) == NULL);
}

/* A version-1 session (every segment re-encoded as format 1, the manifest
 * says 1): it loads, eagerly even when asked for a lazy load; its first
 * save rewrites it as format 3 (upgrade_by_saving). */
static void version1_session_loads_eagerly_and_upgrades_on_save_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(coded_session(dir, &content, VV_INDEX_HNSW) == 0);
  vv_manifest m;
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  size_t nchunks = m.nchunks;
  text body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &body, mac) == 0);
  for (size_t i = 0; i < m.nbase + m.ndeltas; i++) {
    seg_edit ed = {.v2 = 1, .cb = CB_NONE};
    VV_REQUIRE(rewrite_segment(dir, &body, i < m.nbase ? &m.base[i] : &m.deltas[i - m.nbase], &ed) == 0);
  }
  vv_manifest_free(&m);
  long at = text_find(&body, "\"version\":2,", 0);
  VV_REQUIRE(at >= 0);
  text_splice(&body, (size_t)at + 10, 1, "1", 1);
  VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
  free(body.p);
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  VV_CHECK(m.version == 1);
  vv_manifest_free(&m);

  VV_CHECK(dir_differs_as(dir, NULL, 0, &content) == NULL);
  vv_db *db = NULL;
  vv_load_stats st;
  vv_error err = {{0}};
  VV_REQUIRE(load_dir_opts(dir, NULL, NULL, 1, &db, &st, &err) == VV_OK);
  VV_CHECK(st.lazy == 0 && st.chunks_loaded == nchunks);
  VV_CHECK(db_differs(db, &content) == NULL);
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  VV_CHECK(ci.lazy == 0);
  char *inspect = NULL;
  size_t ilen = 0;
  VV_REQUIRE(vv_session_inspect(dir, NULL, &inspect, &ilen, &err) == VV_OK);
  VV_CHECK(strstr(inspect, "\"version\":1,") != NULL);
  free(inspect);

  upgrade_by_saving(db, dir, &content, nchunks);
  rm_rf(root);
}

VV_TEST(version1_session_loads_eagerly_and_upgrades_on_save) {
  VV_ISOLATED(version1_session_loads_eagerly_and_upgrades_on_save_body, NULL);
}

/* A version-2 session (whole objects: chunks, and segments with codes)
 * loads eagerly and lazily, the lazy reader reading each chunk whole, as
 * its one page; its first save rewrites it as format 3. */
static void version2_session_loads_lazily_and_upgrades_on_save_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(coded_session(dir, &content, VV_INDEX_HNSW) == 0);
  vv_manifest m;
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  VV_CHECK(m.version == 2);
  size_t nchunks = m.nchunks;
  vv_manifest_free(&m);
  VV_CHECK(dir_differs_as(dir, NULL, 0, &content) == NULL);
  vv_db *db = NULL;
  vv_load_stats st;
  vv_error err = {{0}};
  VV_REQUIRE(load_dir_opts(dir, NULL, NULL, 1, &db, &st, &err) == VV_OK);
  VV_CHECK(st.lazy == 1 && st.chunks_loaded == 0);
  VV_CHECK(db_differs(db, &content) == NULL);
  vv_cache_info ci;
  vv_db_cache_info(db, &ci);
  /* One page (the whole chunk) per chunk, no page tables. */
  VV_CHECK(ci.lazy == 1 && ci.misses == nchunks && ci.entries == nchunks);
  VV_CHECK(search_works(db));
  upgrade_by_saving(db, dir, &content, nchunks);
  rm_rf(root);
}

VV_TEST(version2_session_loads_lazily_and_upgrades_on_save) {
  VV_ISOLATED(version2_session_loads_lazily_and_upgrades_on_save_body, NULL);
}

VV_TEST_MAIN()
