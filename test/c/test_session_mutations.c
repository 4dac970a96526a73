/*
 * test/c/test_session_mutations.c: hostile input: sessions edited on disk
 * (session/manifest.c, load.c, the codec behind them).
 *
 * Owns: the manifest parser under 20,000 mutations; loads of sessions whose
 * manifest or objects were edited with names, sizes and checksums fixed up
 * (so the schema and the decoders are reached, not just the hashes): each
 * fails cleanly with a typed status or loads data that is consistent; and
 * non-finite vectors refused at load.
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

/* ---- the manifest parser under mutation ---------------------------------- */

static size_t rnd(uint64_t *st, size_t n) { return n ? (size_t)(vv_splitmix64(st) % n) : 0; }

static const char *const kTokens[] = {
    "{", "}", "[", "]", ",", ":", "\"", "null", "true", "false", "-", "0", "1", "-0", "01", "1.5", "1e3",
    "\\u0000", "\\ud800", "\\u00e9", "\\\"", "\xff", "\xc0\x80", "\xed\xa0\x80", " ", "\t\n",
    "99999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "4294967296", "2147483648", "\"version\":2,", "\"version\":1,",
    "\"format\":\"vecvault-session\",", "\"chunks\":[],", "\"extra\":0,", "\"generation\":1,",
    "{\"a\":{\"b\":[1,{\"c\":null}]}}", "[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]", "\"\"", "\"x\"", "{}", "[]"};

/* One random edit of a JSON text. */
static void mutate_json(uint64_t *st, text *t) {
  size_t at = rnd(st, t->n + 1);
  switch (rnd(st, 10)) {
    case 0: /* bit flips */
      for (size_t k = 1 + rnd(st, 3); k-- && t->n;) t->p[rnd(st, t->n)] ^= (char)(1u << rnd(st, 8));
      break;
    case 1: /* truncation */
      t->n = at;
      break;
    case 2: { /* a token */
      const char *tok = kTokens[rnd(st, sizeof kTokens / sizeof kTokens[0])];
      text_splice(t, at, 0, tok, strlen(tok));
      break;
    }
    case 3: /* a deletion */
      text_splice(t, at, 1 + rnd(st, 24), "", 0);
      break;
    case 4: { /* a span copied elsewhere: duplicate keys, repeated entries */
      size_t from = rnd(st, t->n + 1), len = 1 + rnd(st, 80);
      if (len > t->n - from) len = t->n - from;
      char *copy = malloc(len + 1);
      memcpy(copy, t->p + from, len);
      text_splice(t, at, 0, copy, len);
      free(copy);
      break;
    }
    case 5: { /* a member duplicated right after its own object's brace */
      long colon = text_find(t, "\":", at);
      if (colon < 0) break;
      long q = colon - 1;
      while (q > 0 && t->p[q] != '"') q--;
      size_t e = (size_t)colon + 2;
      while (e < t->n && t->p[e] != ',' && t->p[e] != '}') e++;
      long brace = q;
      while (brace > 0 && t->p[brace] != '{') brace--;
      size_t len = e - (size_t)q;
      char *m = malloc(len + 2);
      memcpy(m, t->p + q, len);
      m[len] = ',';
      text_splice(t, (size_t)brace + 1, 0, m, len + 1);
      free(m);
      break;
    }
    case 6: { /* a number replaced by an edge value */
      static const char *const nums[] = {"0", "-1", "1", "2", "65536", "65537", "4294967295", "4294967296",
                                         "2147483647", "2147483648", "9223372036854775807", "99999999999999999999",
                                         "-9223372036854775808", "1099511627776", "1099511627777", "16", "17"};
      size_t i = at;
      while (i < t->n && !(t->p[i] >= '0' && t->p[i] <= '9')) i++;
      size_t e = i;
      while (e < t->n && t->p[e] >= '0' && t->p[e] <= '9') e++;
      const char *v = nums[rnd(st, sizeof nums / sizeof nums[0])];
      text_splice(t, i, e - i, v, strlen(v));
      break;
    }
    case 7: { /* deep nesting */
      size_t depth = 1 + rnd(st, 300);
      char *m = malloc(depth * 5 + 1);
      size_t n = 0;
      for (size_t i = 0; i < depth; i++) {
        if (rnd(st, 2)) m[n++] = '[';
        else {
          memcpy(m + n, "{\"a\":", 5);
          n += 5;
        }
      }
      text_splice(t, at, 0, m, n);
      free(m);
      break;
    }
    case 8: /* a random byte */
      if (t->n) t->p[rnd(st, t->n)] = (char)rnd(st, 256);
      break;
    default: { /* a string value replaced */
      long q = text_find(t, ":\"", at);
      if (q < 0) break;
      size_t s0 = (size_t)q + 2, e = s0;
      while (e < t->n && t->p[e] != '"') e++;
      static const char *const strs[] = {"", "x", "cosine", "flat", "hnsw", "raw", "argon2id13",
                                         "0000000000000000000000000000000G",
                                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                         "../../../../etc/passwd", "\\u0000", "2024-01-01T00:00:00Z"};
      const char *v = strs[rnd(st, sizeof strs / sizeof strs[0])];
      text_splice(t, s0, e - s0, v, strlen(v));
      break;
    }
  }
}

static void manifest_parser_survives_mutations_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  text seeds[2] = {{0}, {0}};
  char macs[2][65];
  for (int enc = 0; enc < 2; enc++) {
    model content;
    VV_REQUIRE(small_session(dir, &content, enc ? kKey : NULL) == 0);
    VV_REQUIRE(manifest_read(dir, &seeds[enc], macs[enc]) == 0);
    rm_rf(dir);
  }
  uint64_t st = 0x5eed;
  long ok = 0, json = 0, schema = 0, version = 0, frame = 0, other = 0;
  text body = {0}, file = {0};
  for (int it = 0; it < 20000; it++) {
    int enc = it & 1;
    text_set(&body, seeds[enc].p, seeds[enc].n);
    for (size_t k = 1 + rnd(&st, 3); k--;) mutate_json(&st, &body);
    manifest_compose(&body, macs[enc], &file);
    int raw = rnd(&st, 20) == 0; /* sometimes the frame itself, sum left stale */
    if (raw) {
      text_set(&body, file.p, file.n);
      mutate_json(&st, &body);
      text_set(&file, body.p, body.n);
    }
    VV_NOTE("iteration %d", it);
    vv_manifest m;
    const unsigned char *b;
    size_t blen;
    vv_error err = {{0}};
    int rc = vv_manifest_parse((const unsigned char *)file.p, file.n, &m, &b, &blen, &err);
    VV_CHECK(rc == VV_OK || rc == VV_E_MANIFEST_CORRUPT || rc == VV_E_UNSUPPORTED_VERSION);
    if (rc == VV_OK) {
      ok++;
      VV_CHECK(m.version >= 1 && m.version <= VV_FORMAT_VERSION && m.dimension >= 1 && m.dimension <= VV_MAX_DIMENSION);
      VV_CHECK(m.total_vectors <= m.slot_count);
      VV_CHECK(b == (const unsigned char *)file.p + VV_MANIFEST_PREFIX_BYTES && blen == file.n - 156);
      vv_manifest_free(&m);
    } else if (rc == VV_E_UNSUPPORTED_VERSION) {
      version++;
    } else if (strstr(err.message, "invalid JSON")) {
      json++;
    } else if (strstr(err.message, "frame") || strstr(err.message, "checksum")) {
      frame++;
    } else if (strstr(err.message, "malformed")) {
      schema++;
    } else {
      other++;
    }
  }
  printf("  manifest mutations: %ld parse, %ld bad JSON, %ld rejected by the schema, %ld newer version, %ld bad "
         "frame or sum, %ld other\n",
         ok, json, schema, version, frame, other);
  /* The mutations must reach every layer, not just the checksum. */
  VV_CHECK(json > 2000 && schema > 2000 && ok > 200 && version > 4);
  VV_CHECK(other == 0);
  free(body.p);
  free(file.p);
  free(seeds[0].p);
  free(seeds[1].p);
  rm_rf(root);
}

VV_TEST(manifest_parser_survives_mutations) { VV_ISOLATED(manifest_parser_survives_mutations_body, NULL); }

/* ---- loads of edited unencrypted sessions --------------------------------- */

/* Scalar values of a JSON text: [start, end) of each, after a ':' or in an
 * array, strings included. */
static size_t scalar_spans(const text *t, size_t (*spans)[2], size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < t->n && n < cap; i++) {
    char c = t->p[i];
    if (c == '"') { /* a string: kept when it is a value, not a key */
      size_t e = i + 1;
      while (e < t->n && t->p[e] != '"') e += t->p[e] == '\\' ? 2 : 1;
      if (e >= t->n) break; /* unterminated: no more values */
      if (i > 0 && (t->p[i - 1] == ':' || t->p[i - 1] == '[' || t->p[i - 1] == ',') &&
          !(e + 1 < t->n && t->p[e + 1] == ':')) {
        spans[n][0] = i;
        spans[n][1] = e + 1;
        n++;
      }
      i = e;
      continue;
    }
    if (i > 0 && t->p[i - 1] == ':' && (c == '-' || (c >= '0' && c <= '9') || c == 'n' || c == 't' || c == 'f')) {
      size_t e = i;
      while (e < t->n && t->p[e] != ',' && t->p[e] != '}' && t->p[e] != ']') e++;
      spans[n][0] = i;
      spans[n][1] = e;
      n++;
      i = e - 1;
    }
  }
  return n;
}

/* One edit of a manifest value: a field set to a plausible wrong value,
 * another field's value, or an entry dropped or repeated. */
static void mutate_fields(uint64_t *st, text *t) {
  static size_t spans[4096][2];
  size_t n = scalar_spans(t, spans, 4096);
  if (!n) return;
  size_t pick = rnd(st, n);
  size_t s0 = spans[pick][0], e0 = spans[pick][1];
  static const char *const vals[] = {
      "0", "1", "2", "3", "-1", "5", "7", "8", "16", "17", "19", "20", "21", "59", "60", "61", "64", "65", "69", "70",
      "100", "1000", "65536", "4294967295", "4294967296", "2147483647", "null", "true", "\"\"", "\"x\"",
      "\"cosine\"", "\"l2\"", "\"dot\"", "\"flat\"", "\"hnsw\"", "{}", "[]",
      ("{\"algorithm\":\"xchacha20poly1305-ietf\",\"kdf\":\"raw\",\"keyCheck\":"
       "\"0000000000000000000000000000000000000000000000000000000000000000\"}")};
  char buf[64];
  const char *v;
  switch (rnd(st, 4)) {
    case 0:
      v = vals[rnd(st, sizeof vals / sizeof vals[0])];
      text_splice(t, s0, e0 - s0, v, strlen(v));
      break;
    case 1: { /* another field's value */
      size_t o = rnd(st, n);
      size_t len = spans[o][1] - spans[o][0];
      char *copy = malloc(len + 1);
      memcpy(copy, t->p + spans[o][0], len);
      text_splice(t, s0, e0 - s0, copy, len);
      free(copy);
      break;
    }
    case 2: { /* off by one */
      if (t->p[s0] < '0' || t->p[s0] > '9') break;
      long long x = strtoll(t->p + s0, NULL, 10) + (rnd(st, 2) ? 1 : -1);
      int l = strf(buf, sizeof buf, "%lld", x);
      text_splice(t, s0, e0 - s0, buf, (size_t)l);
      break;
    }
    default: { /* an entry of chunks / base / deltas dropped or repeated */
      long a = text_find(t, "{\"name\":", rnd(st, t->n));
      if (a < 0) a = text_find(t, "{\"name\":", 0);
      if (a < 0) break;
      long e = text_find(t, "}", (size_t)a);
      size_t len = (size_t)(e - a + 1);
      if (rnd(st, 2)) {
        size_t cut = len;
        if ((size_t)e + 1 < t->n && t->p[e + 1] == ',') cut++;
        else if (a > 0 && t->p[a - 1] == ',') {
          a--;
          cut++;
        }
        text_splice(t, (size_t)a, cut, "", 0);
      } else {
        char *copy = malloc(len + 2);
        memcpy(copy, t->p + a, len);
        copy[len] = ',';
        text_splice(t, (size_t)a, 0, copy, len + 1);
        free(copy);
      }
      break;
    }
  }
}

/* What loading a session of this manifest would reserve up front, roughly:
 * edits that only make the loader allocate gigabytes are tried once, in
 * their own test, not thousands of times here. */
static int too_big_to_try(const text *file) {
  vv_manifest m;
  const unsigned char *b;
  size_t blen;
  if (vv_manifest_parse((const unsigned char *)file->p, file->n, &m, &b, &blen, NULL) != VV_OK) return 0;
  uint64_t per_slot = (uint64_t)m.dimension * 4 + (uint64_t)(2 * m.m + 1) * 4 + 64;
  int big = m.slot_count * per_slot > (64u << 20);
  vv_manifest_free(&m);
  return big;
}


static void load_of_edited_manifest_fails_cleanly_or_loads_the_same_data_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(small_session(dir, &content, NULL) == 0);
  text pristine = {0}, body = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &pristine, mac) == 0);
  uint64_t st = 0xfeed;
  long ok = 0, skipped = 0, counts[32] = {0};
  for (int it = 0; it < 1500 / SANITIZER_SLOWDOWN; it++) {
    text_set(&body, pristine.p, pristine.n);
    for (size_t k = 1 + rnd(&st, 2); k--;) mutate_fields(&st, &body);
    text file = {0};
    manifest_compose(&body, mac, &file);
    int big = too_big_to_try(&file);
    free(file.p);
    if (big) {
      skipped++;
      continue;
    }
    VV_REQUIRE(manifest_write(dir, &body, mac) == 0);
    VV_NOTE("iteration %d: %.*s", it, (int)(body.n < 200 ? body.n : 200), body.p);
    vv_db *db = NULL;
    vv_error err = {{0}};
    int rc = load_dir(dir, NULL, NULL, &db, &err);
    if (rc <= 0 && rc > -32) counts[-rc]++;
    VV_CHECK(rc == VV_OK || rc == VV_E_MANIFEST_CORRUPT || rc == VV_E_UNSUPPORTED_VERSION ||
             rc == VV_E_CHUNK_CORRUPT || rc == VV_E_CHUNK_MISSING || rc == VV_E_KEY_REQUIRED);
    if (rc != VV_OK) VV_CHECK(db == NULL);
    if (rc == VV_OK) {
      ok++;
      const char *d = db_differs(db, &content);
      VV_CHECK(d == NULL);
      if (d) fprintf(stderr, "  loaded different data: %s\n", d);
      VV_CHECK(search_works(db));
    } else if (rc != VV_E_MANIFEST_CORRUPT && rc != VV_E_UNSUPPORTED_VERSION && rc != VV_E_CHUNK_CORRUPT &&
               rc != VV_E_CHUNK_MISSING && rc != VV_E_KEY_REQUIRED) {
      fprintf(stderr, "  load returned %s: %s\n", vv_status_code(rc), err.message);
    }
    vv_db_free(db);
  }
  printf("  edited manifests: %ld loaded the same data, %ld manifest corrupt, %ld chunk corrupt, %ld chunk missing, "
         "%ld key required, %ld version, %ld skipped as huge\n",
         ok, counts[-VV_E_MANIFEST_CORRUPT], counts[-VV_E_CHUNK_CORRUPT], counts[-VV_E_CHUNK_MISSING],
         counts[-VV_E_KEY_REQUIRED], counts[-VV_E_UNSUPPORTED_VERSION], skipped);
  VV_CHECK(ok > 50 / SANITIZER_SLOWDOWN && counts[-VV_E_CHUNK_CORRUPT] > 50 / SANITIZER_SLOWDOWN &&
           counts[-VV_E_MANIFEST_CORRUPT] > 50 / SANITIZER_SLOWDOWN);
  free(body.p);
  free(pristine.p);
  rm_rf(root);
}

VV_TEST(load_of_edited_manifest_fails_cleanly_or_loads_the_same_data) {
  VV_ISOLATED(load_of_edited_manifest_fails_cleanly_or_loads_the_same_data_body, NULL);
}

/* ---- loads of sessions with edited objects -------------------------------- */

typedef struct obj_pick {
  char name[65];
  uint64_t bytes;
} obj_pick;

static size_t list_objects(const char *dir, obj_pick *out, size_t cap) {
  vv_manifest m;
  if (read_manifest(dir, &m) != VV_OK) return 0;
  size_t n = 0;
  for (size_t k = 0; k < m.nchunks + m.nbase + m.ndeltas && n < cap; k++) {
    const vv_objref *r = k < m.nchunks ? &m.chunks[k].ref
                         : k < m.nchunks + m.nbase ? &m.base[k - m.nchunks].ref
                                                   : &m.deltas[k - m.nchunks - m.nbase].ref;
    memcpy(out[n].name, r->name, 65);
    out[n].bytes = r->bytes;
    n++;
  }
  vv_manifest_free(&m);
  return n;
}

/* Same ids as `m` and every vector finite: what an edit of an unencrypted
 * object's payload (vector values, metadata text, links) may still leave. */
static const char *db_shape_differs(vv_db *db, const model *m) {
  if (vv_db_size(db) != (uint64_t)model_count(m)) return "size differs";
  for (int i = 0; i < MAXV; i++) {
    char id[16];
    int len = id_of(i, id);
    vv_record *r = NULL;
    if (vv_db_get(db, id, (size_t)len, &r) != VV_OK) return "get failed";
    const char *bad = NULL;
    if (!!r != !!m->present[i]) bad = "the set of ids differs";
    for (int d = 0; r && !bad && d < DIM; d++)
      if (!isfinite(r->vector[d])) bad = "a vector is not finite";
    vv_record_free(r);
    if (bad) return bad;
  }
  return NULL;
}

/* Replaces object `o` of `dir` by `data` in the manifest: the bytes go to
 * <dir>/scratch, which is renamed to objects/<hash> (creating files is slow
 * on some disks; renames are not); put_back_object renames it back. */
static int install_object(const char *dir, const text *pristine, const char *mac, const obj_pick *o,
                          const unsigned char *data, size_t len, char newname[65], int *moved) {
  unsigned char h[VV_HASH_BYTES];
  vv_hash(data, len, h);
  vv_hex_encode(h, VV_HASH_BYTES, newname);
  *moved = strcmp(newname, o->name) != 0;
  char scratch[256], dst[512];
  strf(scratch, sizeof scratch, "%s/scratch", dir);
  strf(dst, sizeof dst, "%s/objects/%s", dir, newname);
  if (*moved && (write_all(scratch, data, len) || rename(scratch, dst))) return -1;
  text body = {0};
  text_set(&body, pristine->p, pristine->n);
  int rc = manifest_retarget(&body, o->name, newname, len, -1, -1);
  if (!rc) rc = manifest_write(dir, &body, mac);
  free(body.p);
  return rc;
}

static void put_back_object(const char *dir, const char *name) {
  char scratch[256], src[512];
  strf(scratch, sizeof scratch, "%s/scratch", dir);
  strf(src, sizeof src, "%s/objects/%s", dir, name);
  rename(src, scratch);
}

/* One random edit of an object's bytes, keeping the header's length field
 * in step so the decoder, not the header check, sees the result. */
static void mutate_object(uint64_t *st, text *t) {
  size_t hdr = VV_OBJ_HEADER_BYTES;
  if (t->n <= hdr) return;
  size_t span = t->n - hdr;
  size_t at = hdr + rnd(st, span);
  static const unsigned char special[] = {0xff, 0x9f, 0xbf, 0x7f, 0x5f, 0xc0, 0xd8, 0xf9, 0xfa, 0xfb,
                                          0x1b, 0x1a, 0x19, 0x18, 0x5b, 0x7b, 0x9b, 0xbb, 0x00, 0x20,
                                          0xf6, 0xf5, 0xf4, 0x80, 0xa0, 0x40, 0x60, 0x17, 0x38, 0x3b};
  switch (rnd(st, 8)) {
    case 0:
    case 1:
      for (size_t k = 1 + rnd(st, 3); k--;) t->p[hdr + rnd(st, span)] ^= (char)(1u << rnd(st, 8));
      break;
    case 2:
      t->p[at] = (char)special[rnd(st, sizeof special)];
      break;
    case 3:
      t->p[at] = (char)rnd(st, 256);
      break;
    case 4:
      t->n = at;
      break;
    case 5: {
      char b[8];
      size_t n = 1 + rnd(st, 8);
      for (size_t i = 0; i < n; i++) b[i] = (char)(rnd(st, 2) ? special[rnd(st, sizeof special)] : rnd(st, 256));
      text_splice(t, at, 0, b, n);
      break;
    }
    case 6:
      text_splice(t, at, 1 + rnd(st, 16), "", 0);
      break;
    default: { /* a CBOR length or count bumped by one: the bytes after a major-type byte */
      unsigned char c = (unsigned char)t->p[at];
      if ((c & 0x1f) < 24) t->p[at] = (char)((c & 0xe0) | (((c & 0x1f) + (rnd(st, 2) ? 1 : 23)) & 0x1f));
      else t->p[at] = (char)(c + 1);
      break;
    }
  }
  put_le64((unsigned char *)t->p + 16, t->n - hdr);
}

static void load_of_edited_objects_fails_cleanly_or_loads_consistent_data_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model content;
  VV_REQUIRE(small_session(dir, &content, NULL) == 0);
  text pristine = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &pristine, mac) == 0);
  obj_pick objs[64];
  size_t nobj = list_objects(dir, objs, 64);
  VV_REQUIRE(nobj >= 4);
  text obj[64];
  for (size_t i = 0; i < nobj; i++) {
    size_t len;
    unsigned char *b = read_object(dir, objs[i].name, &len);
    VV_REQUIRE(b != NULL);
    obj[i].p = NULL;
    text_set(&obj[i], b, len);
    free(b);
  }
  uint64_t st = 0xdec0de;
  long same = 0, payload = 0, corrupt = 0;
  text t = {0};
  for (int it = 0; it < 2000 / SANITIZER_SLOWDOWN; it++) {
    size_t k = rnd(&st, nobj);
    text_set(&t, obj[k].p, obj[k].n);
    for (size_t m = 1 + rnd(&st, 2); m--;) mutate_object(&st, &t);
    char name[65];
    int created;
    VV_REQUIRE(install_object(dir, &pristine, mac, &objs[k], (const unsigned char *)t.p, t.n, name, &created) == 0);
    VV_NOTE("iteration %d, object %zu", it, k);
    vv_db *db = NULL;
    vv_error err = {{0}};
    int rc = load_dir(dir, NULL, NULL, &db, &err);
    VV_CHECK(rc == VV_OK || rc == VV_E_CHUNK_CORRUPT);
    if (rc != VV_OK && rc != VV_E_CHUNK_CORRUPT)
      fprintf(stderr, "  load returned %s: %s\n", vv_status_code(rc), err.message);
    if (rc == VV_OK) {
      const char *d = db_differs(db, &content);
      if (!d) {
        same++;
      } else {
        payload++;
        const char *s = db_shape_differs(db, &content);
        VV_CHECK(s == NULL);
        if (s) fprintf(stderr, "  loaded an edited object: %s\n", s);
      }
      VV_CHECK(search_works(db));
    } else {
      corrupt += rc == VV_E_CHUNK_CORRUPT;
    }
    vv_db_free(db);
    if (created) put_back_object(dir, name);
  }
  VV_REQUIRE(manifest_write(dir, &pristine, mac) == 0);
  VV_CHECK(dir_differs(dir, NULL, &content) == NULL);
  printf("  edited objects: %ld corrupt, %ld loaded the same data, %ld loaded edited vectors/metadata/links\n",
         corrupt, same, payload);
  VV_CHECK(corrupt > 1000 / SANITIZER_SLOWDOWN);
  for (size_t i = 0; i < nobj; i++) free(obj[i].p);
  free(t.p);
  free(pristine.p);
  rm_rf(root);
}

VV_TEST(load_of_edited_objects_fails_cleanly_or_loads_consistent_data) {
  VV_ISOLATED(load_of_edited_objects_fails_cleanly_or_loads_consistent_data_body, NULL);
}

/* Offset of the payload of the "vectors" byte string in a chunk object. */
static long vectors_at(const text *obj, size_t *len) {
  long k = text_find(obj, "gvectors", VV_OBJ_HEADER_BYTES);
  if (k < 0) return -1;
  const unsigned char *p = (const unsigned char *)obj->p + k + 8;
  unsigned char ib = p[0];
  if (ib >= 0x40 && ib < 0x58) {
    *len = ib - 0x40u;
    return k + 9;
  }
  if (ib == 0x58) {
    *len = p[1];
    return k + 10;
  }
  if (ib == 0x59) {
    *len = (size_t)p[1] << 8 | p[2];
    return k + 11;
  }
  if (ib == 0x5a) {
    *len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    return k + 13;
  }
  return -1;
}

/* The API refuses NaN and infinite components (VV_E_BAD_VECTOR); a load
 * must not let them in either, since every distance would then be NaN. */
static void load_refuses_non_finite_vectors_body(void *arg) {
  (void)arg;
  char root[64], dir[128];
  VV_REQUIRE(make_root(root) == 0);
  strf(dir, sizeof dir, "%s/s", root);
  model a;
  model_a(&a, 40);
  vv_db *db = build_db(&a, 40);
  VV_REQUIRE(db != NULL);
  VV_REQUIRE(save_clean(db, dir) == VV_OK);
  vv_db_free(db);
  text pristine = {0};
  char mac[65];
  VV_REQUIRE(manifest_read(dir, &pristine, mac) == 0);
  obj_pick objs[8];
  VV_REQUIRE(list_objects(dir, objs, 8) >= 2);
  size_t len;
  unsigned char *b = read_object(dir, objs[0].name, &len); /* the one chunk comes first */
  VV_REQUIRE(b != NULL);
  text o = {0};
  text_set(&o, b, len);
  free(b);
  size_t vlen = 0;
  long v = vectors_at(&o, &vlen);
  VV_REQUIRE(v > 0 && vlen == 40u * DIM * 4);
  static const uint32_t bad[] = {0x7fc00000u, 0x7f800000u, 0xff800000u};
  for (size_t i = 0; i < 3; i++) {
    text t = {0};
    text_set(&t, o.p, o.n);
    memcpy(t.p + v + 4 * (5 * DIM + 3), &bad[i], 4); /* row 5, component 3 */
    char name[65];
    int created;
    VV_REQUIRE(install_object(dir, &pristine, mac, &objs[0], (const unsigned char *)t.p, t.n, name, &created) == 0);
    VV_NOTE("component 0x%08x", bad[i]);
    vv_db *back = NULL;
    vv_error err;
    int rc = load_dir(dir, NULL, NULL, &back, &err);
    VV_CHECK(rc == VV_E_CHUNK_CORRUPT);
    if (rc == VV_OK) {
      VV_CHECK(db_shape_differs(back, &a) == NULL);
      VV_CHECK(search_works(back));
    }
    vv_db_free(back);
    if (created) put_back_object(dir, name);
    free(t.p);
  }
  free(o.p);
  free(pristine.p);
  rm_rf(root);
}

VV_TEST(load_refuses_non_finite_vectors) { VV_ISOLATED(load_refuses_non_finite_vectors_body, NULL); }

VV_TEST_MAIN()
