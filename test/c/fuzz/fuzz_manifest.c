/*
 * test/c/fuzz/fuzz_manifest.c: libFuzzer target for the manifest reader
 * and writer (session/manifest.c): frame, checksum, schema and validation.
 *
 * The input is a manifest body. The target frames it as manifest.json with
 * the right checksum and a zero MAC, so mutations reach the schema checks
 * instead of stopping at the sum (an unencrypted session's manifest is only
 * checksummed: anyone who can write the directory can do the same). Then:
 *   - parsing returns VV_OK, VV_E_MANIFEST_CORRUPT or VV_E_UNSUPPORTED_VERSION;
 *   - the MAC check of a parsed file returns VV_OK or VV_E_MANIFEST_AUTH;
 *   - an accepted manifest writes back (with a fixed key ring when it is
 *     encrypted), the copy parses to an equal manifest (in the current
 *     version: a version-1 manifest is upgraded), and writing that again
 *     gives the same bytes;
 *   - the input as a whole file (unframed) parses without crashing.
 * Any broken property aborts, so the fuzzer reports it as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "crypto/crypto.h"
#include "session/manifest.h"
#include "vecvault.h"

static void check(int ok) {
  if (!ok) abort();
}

static int refs_equal(const vv_objref *a, const vv_objref *b) {
  return strcmp(a->name, b->name) == 0 && a->bytes == b->bytes;
}

static int segs_equal(const vv_mseg *a, const vv_mseg *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!refs_equal(&a[i].ref, &b[i].ref) || a[i].seq != b[i].seq || a[i].count != b[i].count) return 0;
  return 1;
}

/* Equal but for the version: the writer always writes the current one. */
static int manifests_equal(const vv_manifest *a, const vv_manifest *b) {
  if (memcmp(a->session_id, b->session_id, sizeof a->session_id) ||
      a->generation != b->generation || a->has_parent != b->has_parent ||
      (a->has_parent && memcmp(a->parent, b->parent, sizeof a->parent)) || strcmp(a->created_at, b->created_at) ||
      a->dimension != b->dimension || a->metric != b->metric || a->index != b->index || a->m != b->m ||
      a->ef_construction != b->ef_construction || a->ef_search != b->ef_search || a->chunk_size != b->chunk_size ||
      a->total_vectors != b->total_vectors || a->slot_count != b->slot_count || a->entry != b->entry ||
      a->max_level != b->max_level || a->next_chunk_seq != b->next_chunk_seq ||
      a->next_index_seq != b->next_index_seq || a->kdf != b->kdf)
    return 0;
  if (a->kdf != VV_KDF_NONE && memcmp(a->key_check, b->key_check, sizeof a->key_check)) return 0;
  if (a->kdf == VV_KDF_ARGON2ID &&
      (memcmp(a->salt, b->salt, sizeof a->salt) || a->opslimit != b->opslimit || a->memlimit != b->memlimit ||
       memcmp(a->wrapped_key, b->wrapped_key, sizeof a->wrapped_key)))
    return 0;
  if (a->nchunks != b->nchunks || a->nbase != b->nbase || a->ndeltas != b->ndeltas) return 0;
  for (size_t i = 0; i < a->nchunks; i++) {
    const vv_mchunk *x = &a->chunks[i], *y = &b->chunks[i];
    if (!refs_equal(&x->ref, &y->ref) || x->seq != y->seq || x->count != y->count || x->slot_min != y->slot_min ||
        x->slot_max != y->slot_max)
      return 0;
  }
  return segs_equal(a->base, b->base, a->nbase) && segs_equal(a->deltas, b->deltas, a->ndeltas);
}

/* manifest.json around `body`: the right sum, a zero MAC. */
static void frame(const uint8_t *body, size_t n, vv_buf *out) {
  unsigned char sum[VV_HASH_BYTES];
  char hex[2 * VV_HASH_BYTES + 1];
  vv_hash(body, n, sum);
  vv_hex_encode(sum, VV_HASH_BYTES, hex);
  static const char zeros[2 * VV_HASH_BYTES + 1] =
      "0000000000000000000000000000000000000000000000000000000000000000";
  check(vv_buf_append(out, "{\"sum\":\"", 8) == VV_OK && vv_buf_append(out, hex, 64) == VV_OK &&
        vv_buf_append(out, "\",\"mac\":\"", 9) == VV_OK && vv_buf_append(out, zeros, 64) == VV_OK &&
        vv_buf_append(out, "\",\"body\":", 9) == VV_OK && vv_buf_append(out, body, n) == VV_OK &&
        vv_buf_append(out, "}\n", 2) == VV_OK);
}

static vv_keyring *g_kr;

static int parse_rc_ok(int rc) {
  return rc == VV_OK || rc == VV_E_MANIFEST_CORRUPT || rc == VV_E_UNSUPPORTED_VERSION;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_kr) {
    static const unsigned char key[VV_KEY_BYTES] = {7};
    check(vv_keyring_create(key, &g_kr) == VV_OK);
  }
  vv_manifest m, m2;
  const unsigned char *body;
  size_t blen;

  /* Unframed: whatever the file holds. */
  int rc = vv_manifest_parse(data, size, &m, &body, &blen, NULL);
  check(parse_rc_ok(rc));
  if (rc == VV_OK) vv_manifest_free(&m);

  vv_buf file = {0}, out = {0}, out2 = {0};
  frame(data, size, &file);
  vv_error err = {{0}};
  rc = vv_manifest_parse(file.data, file.len, &m, &body, &blen, &err);
  check(parse_rc_ok(rc));
  check(rc == VV_OK || err.message[0] != '\0'); /* every refusal says why */
  if (rc == VV_OK) {
    check(blen == size && body == file.data + VV_MANIFEST_PREFIX_BYTES && memcmp(body, data, size) == 0);
    int mac = vv_manifest_check_mac(file.data, file.len, g_kr);
    check(mac == VV_OK || mac == VV_E_MANIFEST_AUTH);
    check(vv_manifest_write(&m, g_kr, &out) == VV_OK);
    check(vv_manifest_parse(out.data, out.len, &m2, &body, &blen, NULL) == VV_OK);
    check(m2.version == VV_FORMAT_VERSION && manifests_equal(&m, &m2));
    /* What vecvault writes authenticates under the ring it was written with. */
    check(m.kdf == VV_KDF_NONE || vv_manifest_check_mac(out.data, out.len, g_kr) == VV_OK);
    check(vv_manifest_write(&m2, g_kr, &out2) == VV_OK);
    check(out2.len == out.len && memcmp(out2.data, out.data, out.len) == 0);
    vv_manifest_free(&m2);
    vv_manifest_free(&m);
  }
  vv_buf_free(&file);
  vv_buf_free(&out);
  vv_buf_free(&out2);
  return 0;
}
