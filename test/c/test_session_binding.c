/*
 * test/c/test_session_binding.c: what binds a session's files to it
 * (session/object.c, manifest.c, save.c).
 *
 * Owns: a save that cannot read the current manifest.json fails instead of
 * starting over at generation 1; the AEAD associated data binds each object
 * to its sequence number, kind and session; without encryption, a chunk
 * moved to another sequence number is caught by the decoder; an encrypted
 * session rewritten as a plain one is refused.
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
#include "common/util.h"
#include "crypto/crypto.h"
#include "session/io.h"
#include "session/manifest.h"
#include "session/object.h"
#include "vecvault.h"
#include "vvtest.h"

#include "faultio.h"
#define VT_SESSION_MODEL
#include "support.h"

VT_MANY_DATABASES()

/* A save that cannot read the current manifest.json (EIO on its open,
 * fsize or read) must fail: it cannot know the generation it builds on.
 * Taking the directory for empty would commit "generation 1" over
 * generation 4, and its garbage collection then works from the wrong
 * history. */
static void unreadable_current_manifest_fails_the_save_body(void *arg) {
  (void)arg;
  char root[64], base[128], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(base, sizeof base, "%s/base", root);
  strf(dir, sizeof dir, "%s/s", root);
  model gens[5];
  model_a(&gens[0], 40);
  vv_db *db = build_db(&gens[0], 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save_clean(db, base) == VV_OK);
  for (int g = 1; g < 5; g++) {
    gens[g] = gens[g - 1];
    for (int i = g * 5; i < g * 5 + 5; i++) model_set(&gens[g], i, 10 + (uint64_t)g, NULL);
    VV_REQUIRE(apply_model(db, &gens[g - 1], &gens[g]) == VV_OK);
    if (g < 4) VV_REQUIRE(save_clean(db, base) == VV_OK);
  }
  vv_db_free(db);
  VV_REQUIRE(dir_differs(base, NULL, &gens[3]) == NULL);
  static const int kinds[] = {FIO_OPEN, FIO_FSIZE, FIO_READ};
  snap before = {0}, after = {0};
  for (int k = 0; k < 3; k++) {
    VV_NOTE("EIO on the %s of manifest.json", fio_kind_name(kinds[k]));
    clear_dir(dir, 0);
    VV_REQUIRE(link_dir(base, dir) == 0);
    vv_error err = {{0}};
    VV_REQUIRE(load_dir(dir, NULL, NULL, &db, &err) == VV_OK);
    VV_REQUIRE(apply_model(db, &gens[3], &gens[4]) == VV_OK);
    snap_take(&before, dir);
    fio f;
    fio_init(&f, NULL);
    f.kinds = FIO_BIT(kinds[k]);
    f.suffix = "/manifest.json";
    f.fail_at = 1;
    f.err = EIO;
    int rc = save_to(db, dir, &f, &err);
    VV_CHECK(f.injected == 1);
    fio_destroy(&f);
    VV_CHECK(rc == VV_E_IO);
    snap_take(&after, dir);
    const char *why = snap_untouched(&before, &after);
    VV_CHECK(why == NULL);
    if (why) fprintf(stderr, "  generation 4 touched: %s\n", why);
    const char *d = dir_differs(dir, NULL, &gens[3]);
    if (rc == VV_OK && d) {
      const char *d5 = dir_differs(dir, NULL, &gens[4]);
      fprintf(stderr, "  the save returned OK; the session now: %s\n", d5 ? d5 : "loads the new content");
      vv_manifest m;
      if (read_manifest(dir, &m) == VV_OK) {
        fprintf(stderr, "  manifest.json now says generation %llu, parent %s\n", (unsigned long long)m.generation,
                m.has_parent ? "set" : "null");
        VV_CHECK(m.generation == 5);
        vv_manifest_free(&m);
      }
    } else {
      VV_CHECK(d == NULL);
    }
    VV_CHECK(missing_objects(dir) == 0);
    vv_db_free(db);
  }
  snap_free(&before);
  snap_free(&after);
  rm_rf(root);
}

VV_TEST(unreadable_current_manifest_fails_the_save) {
  VV_ISOLATED(unreadable_current_manifest_fails_the_save_body, NULL);
}

/* ---- object binding: the AEAD associated data ----------------------------- */

static void object_ad_binds_sequence_kind_and_session_body(void *arg) {
  (void)arg;
  char root[64];
  VV_REQUIRE(make_root(root) == 0);
  char objdir[128];
  strf(objdir, sizeof objdir, "%s/objects", root);
  VV_REQUIRE(mkdir(objdir, 0700) == 0);
  VV_REQUIRE(vv_crypto_init() == VV_OK);
  vv_keyring *kr = NULL, *other = NULL;
  unsigned char k2[32];
  memset(k2, 0x42, sizeof k2);
  VV_REQUIRE(vv_keyring_create(kKey, &kr) == VV_OK);
  VV_REQUIRE(vv_keyring_create(k2, &other) == VV_OK);
  vv_sctx sc;
  VV_REQUIRE(vv_sctx_init(&sc, NULL, root) == VV_OK);
  sc.kr = kr;
  memset(sc.session_id, 0xa5, sizeof sc.session_id);
  unsigned char plain[300];
  for (size_t i = 0; i < sizeof plain; i++) plain[i] = (unsigned char)(i * 7 + 1);
  vv_buf scratch = {0};
  vv_objref ref;
  vv_error err = {{0}};
  VV_REQUIRE(vv_object_write(&sc, VV_OBJ_KIND_CHUNK, 3, plain, sizeof plain, &scratch, &ref, &err) == VV_OK);

  unsigned char *out = NULL;
  size_t olen = 0;
  /* Control: it opens as written. */
  VV_CHECK(vv_object_read(&sc, &ref, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err) == VV_OK);
  VV_CHECK(out && olen == sizeof plain && !memcmp(out, plain, olen));
  free(out);

  /* (a) expected as seq 4: the header says 3. */
  err.message[0] = '\0';
  VV_CHECK(vv_object_read(&sc, &ref, VV_OBJ_KIND_CHUNK, 4, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(out == NULL);
  VV_CHECK(strstr(err.message, "header") != NULL);

  /* (b) the header patched to seq 4 and renamed to its new hash: size, hash
   * and header pass, and only the tag can notice. */
  size_t flen;
  unsigned char *file = read_object(root, ref.name, &flen);
  VV_REQUIRE(file != NULL && flen == ref.bytes);
  put_le64(file + 8, 4);
  vv_objref moved;
  VV_REQUIRE(write_object(root, file, flen, moved.name) == 0);
  moved.bytes = flen;
  err.message[0] = '\0';
  VV_CHECK(vv_object_read(&sc, &moved, VV_OBJ_KIND_CHUNK, 4, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(out == NULL);
  VV_CHECK(strstr(err.message, "authentication") != NULL);

  /* Control: sealed as seq 4 in the first place, the same bytes open, so
   * the only thing wrong above is the associated data. */
  vv_objref as4;
  VV_CHECK(vv_object_write(&sc, VV_OBJ_KIND_CHUNK, 4, plain, sizeof plain, &scratch, &as4, &err) == VV_OK);
  VV_CHECK(vv_object_read(&sc, &as4, VV_OBJ_KIND_CHUNK, 4, &out, &olen, &err) == VV_OK);
  VV_CHECK(out && olen == sizeof plain && !memcmp(out, plain, olen));
  free(out);
  out = NULL;

  /* The kind is bound too: a chunk relabelled as an index segment. */
  put_le64(file + 8, 3);
  file[5] = VV_OBJ_KIND_INDEX;
  vv_objref rekind;
  VV_REQUIRE(write_object(root, file, flen, rekind.name) == 0);
  rekind.bytes = flen;
  err.message[0] = '\0';
  VV_CHECK(vv_object_read(&sc, &rekind, VV_OBJ_KIND_INDEX, 3, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "authentication") != NULL);
  free(file);

  /* (c) the same object read for another session, or with another key. */
  vv_sctx sc2 = sc;
  sc2.session_id[0] ^= 1;
  err.message[0] = '\0';
  VV_CHECK(vv_object_read(&sc2, &ref, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "authentication") != NULL);
  sc2 = sc;
  sc2.kr = other;
  VV_CHECK(vv_object_read(&sc2, &ref, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  /* An encrypted object where the manifest says unencrypted. */
  sc2.kr = NULL;
  VV_CHECK(vv_object_read(&sc2, &ref, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err) == VV_E_CHUNK_CORRUPT);
  /* Every single-bit flip of the ciphertext or nonce, renamed to its hash. */
  file = read_object(root, ref.name, &flen);
  VV_REQUIRE(file != NULL);
  int opened = 0;
  for (size_t bit = VV_OBJ_HEADER_BYTES * 8; bit < flen * 8; bit += 13) {
    file[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    vv_objref r;
    VV_REQUIRE(write_object(root, file, flen, r.name) == 0);
    r.bytes = flen;
    int rc = vv_object_read(&sc, &r, VV_OBJ_KIND_CHUNK, 3, &out, &olen, &err);
    opened += rc == VV_OK;
    free(out);
    out = NULL;
    file[bit / 8] ^= (unsigned char)(1u << (bit % 8));
  }
  VV_CHECK(opened == 0);
  free(file);

  vv_buf_free(&scratch);
  vv_sctx_destroy(&sc);
  vv_keyring_free(kr);
  vv_keyring_free(other);
  rm_rf(root);
}

VV_TEST(object_ad_binds_sequence_kind_and_session) {
  VV_ISOLATED(object_ad_binds_sequence_kind_and_session_body, NULL);
}

static void unencrypted_chunk_moved_to_another_seq_is_caught_by_the_decoder_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model a;
  model_a(&a, 80);
  vv_db *db = build_db(&a, 20);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save_clean(db, dir) == VV_OK);
  vv_db_free(db);
  VV_REQUIRE(dir_differs(dir, NULL, &a) == NULL);

  vv_manifest m;
  VV_REQUIRE(read_manifest(dir, &m) == VV_OK);
  VV_REQUIRE(m.nchunks == 4 && m.chunks[0].count == m.chunks[1].count);
  const vv_mchunk c0 = m.chunks[0], c1 = m.chunks[1];
  vv_manifest_free(&m);
  text body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &body, mac) == 0);
  text pristine = {0};
  text_set(&pristine, body.p, body.n);

  /* Swap the two chunks' sequence numbers, in their headers and their
   * manifest entries, with names, sizes and the sum all made consistent. */
  const vv_mchunk *cs[2] = {&c0, &c1};
  for (int i = 0; i < 2; i++) {
    size_t len;
    unsigned char *f = read_object(dir, cs[i]->ref.name, &len);
    VV_REQUIRE(f != NULL);
    put_le64(f + 8, cs[1 - i]->seq);
    char name[65];
    VV_REQUIRE(write_object(dir, f, len, name) == 0);
    free(f);
    VV_REQUIRE(manifest_retarget(&body, cs[i]->ref.name, name, len, (long long)cs[i]->seq,
                                 (long long)cs[1 - i]->seq) == 0);
  }
  VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
  vv_db *out = NULL;
  vv_error err = {{0}};
  int rc = load_dir(dir, NULL, NULL, &out, &err);
  VV_CHECK(rc == VV_E_CHUNK_CORRUPT);
  VV_CHECK(strstr(err.message, "does not decode") != NULL); /* the CBOR seq, not the header */
  if (!strstr(err.message, "does not decode")) fprintf(stderr, "  message: %s\n", err.message);
  vv_db_free(out);

  /* One chunk only, moved to a seq no other entry uses: the index still
   * points at the old seq, and the loader notices that instead. */
  text_set(&body, pristine.p, pristine.n);
  {
    size_t len;
    unsigned char *f = read_object(dir, c0.ref.name, &len);
    VV_REQUIRE(f != NULL);
    put_le64(f + 8, c0.seq + 100);
    char name[65];
    VV_REQUIRE(write_object(dir, f, len, name) == 0);
    free(f);
    VV_REQUIRE(manifest_retarget(&body, c0.ref.name, name, len, (long long)c0.seq, (long long)c0.seq + 100) == 0);
    char from[64], to[64];
    strf(from, sizeof from, "\"nextChunkSeq\":");
    long at = text_find(&body, from, 0);
    VV_REQUIRE(at >= 0);
    size_t e = (size_t)at + strlen(from);
    while (body.p[e] >= '0' && body.p[e] <= '9') e++;
    int tl = strf(to, sizeof to, "\"nextChunkSeq\":%llu", (unsigned long long)c0.seq + 101);
    text_splice(&body, (size_t)at, e - (size_t)at, to, (size_t)tl);
    VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
    rc = load_dir(dir, NULL, NULL, &out, &err);
    VV_CHECK(rc == VV_E_CHUNK_CORRUPT);
    vv_db_free(out);
    out = NULL;
  }
  free(body.p);
  free(pristine.p);
  rm_rf(root);
}

VV_TEST(unencrypted_chunk_moved_to_another_seq_is_caught_by_the_decoder) {
  VV_ISOLATED(unencrypted_chunk_moved_to_another_seq_is_caught_by_the_decoder_body, NULL);
}

/* An encrypted session's manifest rewritten as unencrypted (a downgrade). */
static void encrypted_session_downgraded_to_plain_is_refused_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(small_session(dir, &content, kKey) == 0);
  VV_REQUIRE(dir_differs(dir, kKey, &content) == NULL);
  text body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &body, mac) == 0);
  long at = text_find(&body, "\"encryption\":{", 0);
  VV_REQUIRE(at >= 0);
  long end = text_find(&body, "}", (size_t)at);
  VV_REQUIRE(end > at);
  text_splice(&body, (size_t)at, (size_t)(end - at + 1), "\"encryption\":null", 17);
  char zeros[65];
  memset(zeros, '0', 64);
  zeros[64] = '\0';
  VV_REQUIRE(manifest_write(dir, &body, zeros) == 0);
  vv_db *out = NULL;
  vv_error err;
  VV_CHECK(load_dir(dir, kKey, NULL, &out, &err) == VV_E_MANIFEST_AUTH);
  vv_db_free(out);
  out = NULL;
  VV_CHECK(load_dir(dir, NULL, NULL, &out, &err) == VV_E_CHUNK_CORRUPT);
  vv_db_free(out);
  free(body.p);
  rm_rf(root);
}

VV_TEST(encrypted_session_downgraded_to_plain_is_refused) {
  VV_ISOLATED(encrypted_session_downgraded_to_plain_is_refused_body, NULL);
}

VV_TEST_MAIN()
