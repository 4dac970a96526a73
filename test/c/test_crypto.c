/*
 * test/c/test_crypto.c: the libsodium wrappers in crypto/crypto.h.
 *
 * Golden values were computed independently of libsodium, in Python:
 * hashlib.blake2b for BLAKE2b-256, keyed BLAKE2b and crypto_kdf (which is
 * BLAKE2b-256 keyed with the master key over the empty message, salt = id as
 * 8 bytes little-endian + 8 zero bytes, person = context + 8 zero bytes);
 * the `cryptography` package's Argon2id (lanes 1, memory_cost = memlimit /
 * 1024 KiB) and ChaCha20Poly1305 with an HChaCha20 subkey for
 * XChaCha20-Poly1305 (that construction itself checked against the test
 * vector of draft-irtf-cfrg-xchacha). The script is at the end of this file.
 * So a test that passes here pins both our encodings (AD, key-check message,
 * subkey ids, context) and libsodium's primitives.
 */
#include "vvtest.h"

#include "crypto/crypto.h"

#include <sodium.h>

#include <stdint.h>
#include <string.h>

#if defined(__linux__)
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* Fixed inputs shared with the Python script. */
static const char kSubkeyHex[4][65] = {
  "d459b0056509079f27cfaf4ebba32620e9edeb7bb3f625cb99224cc740dc428c", /* VV_KEY_CHUNKS */
  "f12dbb387d859c172f2d044c04ac9784c2e5483786ff854cc8c32d82a6480740", /* VV_KEY_INDEX */
  "f8ffc34fc4e22e8f8ada8aed4d896f1c5a88c9eee4df9eb46d4189a01eb2111a", /* VV_KEY_MANIFEST */
  "74f29bcfbfe01f039a3b18897a0cce025c087f0a26f974732ca6d2eb7ad47551", /* VV_KEY_CHECK */
};
/* key check of master 00..1f for session id a0..af */
#define KEYCHECK_M_HEX "93f545c735d54b8d0c9d4b8cd1c8dba271e9949a756b42b1a94b555ee3ce37c9"
static const char kManifestBody[] = "{\"format\":\"vecvault\",\"version\":1}";
#define MAC_M_HEX "f9be2f3ae64d4d2e57e4d2813d52c55716d0f5a4448e7733ac9b944ea64dd3a6"
/* nonce 40..57; chunks: "hello, vecvault" with ad "vv-ad"; index: empty/empty */
#define AEAD_CHUNKS_HEX "1cc488b36ae61c3c70ce4b2efbf1ab5d139b9d8052fd45c959d8c76899d772"
#define AEAD_INDEX_EMPTY_HEX "9e80906dfb4a4a3196ab87939916d9db"
/* master 00..1f wrapped by KEK 20..3f, nonce 40..57, session id a0..af */
#define WRAPPED_M_HEX                                                                   \
  "404142434445464748494a4b4c4d4e4f5051525354555657"                                    \
  "3a206faa2263fbd87f77e533e86eec2ae944d5f0c20214542c98db349222d70d24f25c7c6878c26edb" \
  "85483e338f507b"
static const char kPass[] = "correct horse battery staple"; /* salt 60..6f */
#define PW_MIN_KEYCHECK_HEX "1098ee5ee4626d2811b89615b176cb747028fdfa7c98cc514a50996e90ab397e"
#define PW_INTERACTIVE_KEYCHECK_HEX "a3a66176f9333a4abad30f9042c5dd3ebd18ea3776af6669816e5862e2f86b59"

static void seq(unsigned char *out, size_t n, unsigned start) {
  for (size_t i = 0; i < n; i++)
    out[i] = (unsigned char)(start + i);
}

/* Test-local parser, so golden values do not depend on vv_hex_decode. */
static size_t unhex(const char *hex, unsigned char *out, size_t cap) {
  size_t n = strlen(hex) / 2;
  if (n > cap)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned v = 0;
    for (int j = 0; j < 2; j++) {
      char c = hex[2 * i + (size_t)j];
      v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    out[i] = (unsigned char)v;
  }
  return n;
}

static int eq_hex(const unsigned char *got, size_t n, const char *hex) {
  unsigned char want[256];
  return strlen(hex) == 2 * n && unhex(hex, want, sizeof want) == n && memcmp(got, want, n) == 0;
}

static vv_keyring *ring_seq(unsigned start) {
  unsigned char k[VV_KEY_BYTES];
  seq(k, sizeof k, start);
  vv_keyring *kr = NULL;
  if (vv_keyring_create(k, &kr) != VV_OK)
    return NULL;
  return kr;
}

static void session_id(unsigned char sid[VV_SESSION_ID_BYTES]) { seq(sid, VV_SESSION_ID_BYTES, 0xa0); }

/* --- init, hashes ------------------------------------------------------ */

VV_TEST(init_is_idempotent) {
  VV_CHECK(vv_crypto_init() == VV_OK);
  VV_CHECK(vv_crypto_init() == VV_OK);
}

VV_TEST(blake2b_256_golden) {
  unsigned char h[VV_HASH_BYTES];
  vv_hash((const unsigned char *)"", 0, h);
  VV_CHECK(eq_hex(h, sizeof h, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"));
  vv_hash(NULL, 0, h);
  VV_CHECK(eq_hex(h, sizeof h, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"));
  vv_hash((const unsigned char *)"abc", 3, h);
  VV_CHECK(eq_hex(h, sizeof h, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"));
}

VV_TEST(blake2b_256_incremental_matches_one_shot) {
  unsigned char msg[300], want[VV_HASH_BYTES], got[VV_HASH_BYTES];
  seq(msg, sizeof msg, 7);
  vv_hash(msg, sizeof msg, want);
  /* Every split point, including across the 128-byte block boundaries. */
  for (size_t cut = 0; cut <= sizeof msg; cut++) {
    vv_hash_state st;
    vv_hash_init(&st);
    vv_hash_update(&st, msg, cut);
    vv_hash_update(&st, NULL, 0);
    vv_hash_update(&st, msg + cut, sizeof msg - cut);
    vv_hash_final(&st, got);
    VV_NOTE("cut=%zu", cut);
    VV_CHECK(memcmp(got, want, sizeof want) == 0);
  }
  vv_hash_state st;
  vv_hash_init(&st);
  vv_hash_update(&st, (const unsigned char *)"a", 1);
  vv_hash_update(&st, (const unsigned char *)"bc", 2);
  vv_hash_final(&st, got);
  VV_CHECK(eq_hex(got, sizeof got, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"));
}

VV_TEST(hash_state_fits_libsodium_state) {
  VV_CHECK(crypto_generichash_statebytes() <= sizeof(((vv_hash_state *)0)->opaque));
  VV_CHECK(_Alignof(vv_hash_state) >= 64);
}

VV_TEST(keyed_blake2b_256_golden) {
  unsigned char key[32], h[32];
  seq(key, sizeof key, 0);
  static const char msg[] = "The quick brown fox jumps over the lazy dog";
  VV_REQUIRE(crypto_generichash(h, sizeof h, (const unsigned char *)msg, sizeof msg - 1, key, sizeof key) == 0);
  VV_CHECK(eq_hex(h, sizeof h, "5d9461aff732d77d0cc98725ea29298c914fd5193b4c08ec9e3ad6b28c3e2faf"));
}

/* crypto_kdf_derive_from_key == BLAKE2b-256(key, "", salt=id LE, person=ctx). */
VV_TEST(kdf_subkeys_golden) {
  unsigned char master[32], sub[32];
  seq(master, sizeof master, 0);
  for (uint64_t id = 1; id <= 4; id++) {
    VV_REQUIRE(crypto_kdf_derive_from_key(sub, sizeof sub, id, "vvsessn1", master) == 0);
    VV_NOTE("id=%u", (unsigned)id);
    VV_CHECK(eq_hex(sub, sizeof sub, kSubkeyHex[id - 1]));
  }
}

/* --- key ring, key check, manifest MAC -------------------------------- */

VV_TEST(key_check_golden) {
  unsigned char key[VV_KEY_BYTES], sid[VV_SESSION_ID_BYTES], kc[VV_HASH_BYTES], kc2[VV_HASH_BYTES];
  seq(key, sizeof key, 0);
  session_id(sid);
  vv_keyring *kr = NULL;
  VV_REQUIRE(vv_keyring_create(key, &kr) == VV_OK && kr != NULL);
  memset(key, 0x55, sizeof key); /* the ring holds its own copy */
  VV_CHECK(vv_key_check(kr, sid, kc) == VV_OK);
  VV_CHECK(eq_hex(kc, sizeof kc, KEYCHECK_M_HEX));
  sid[15] ^= 1;
  VV_CHECK(vv_key_check(kr, sid, kc2) == VV_OK);
  VV_CHECK(vv_ct_compare(kc, kc2, sizeof kc) != 0);
  VV_CHECK(vv_key_check(NULL, sid, kc) == VV_E_INVALID);
  VV_CHECK(vv_key_check(kr, NULL, kc) == VV_E_INVALID);
  VV_CHECK(vv_key_check(kr, sid, NULL) == VV_E_INVALID);
  vv_keyring_free(kr);
}

VV_TEST(manifest_mac_golden) {
  vv_keyring *kr = ring_seq(0);
  VV_REQUIRE(kr != NULL);
  unsigned char body[sizeof kManifestBody - 1], mac[VV_HASH_BYTES], mac2[VV_HASH_BYTES];
  memcpy(body, kManifestBody, sizeof body);
  VV_CHECK(vv_manifest_mac(kr, body, sizeof body, mac) == VV_OK);
  VV_CHECK(eq_hex(mac, sizeof mac, MAC_M_HEX));
  for (size_t i = 0; i < sizeof body; i++) {
    body[i] ^= 0x20;
    VV_NOTE("flipped byte %zu", i);
    VV_CHECK(vv_manifest_mac(kr, body, sizeof body, mac2) == VV_OK);
    VV_CHECK(vv_ct_compare(mac, mac2, sizeof mac) != 0);
    body[i] ^= 0x20;
  }
  VV_NOTE("%s", "");
  VV_CHECK(vv_manifest_mac(kr, NULL, 0, mac2) == VV_OK);
  VV_CHECK(vv_manifest_mac(kr, NULL, 1, mac2) == VV_E_INVALID);
  VV_CHECK(vv_manifest_mac(NULL, body, sizeof body, mac2) == VV_E_INVALID);
  VV_CHECK(vv_manifest_mac(kr, body, sizeof body, NULL) == VV_E_INVALID);
  vv_keyring_free(kr);
}

VV_TEST(keyring_arguments) {
  vv_keyring *kr = (vv_keyring *)&kr; /* must be reset to NULL on failure */
  VV_CHECK(vv_keyring_create(NULL, &kr) == VV_E_INVALID);
  VV_CHECK(kr == NULL);
  unsigned char key[VV_KEY_BYTES] = {0};
  VV_CHECK(vv_keyring_create(key, NULL) == VV_E_INVALID);
  VV_CHECK(vv_keyring_random(NULL) == VV_E_INVALID);
  vv_keyring_free(NULL);
}

VV_TEST(random_keyrings_differ) {
  unsigned char sid[VV_SESSION_ID_BYTES], a[VV_HASH_BYTES], b[VV_HASH_BYTES];
  session_id(sid);
  vv_keyring *k1 = NULL, *k2 = NULL;
  VV_REQUIRE(vv_keyring_random(&k1) == VV_OK);
  VV_REQUIRE(vv_keyring_random(&k2) == VV_OK);
  VV_CHECK(vv_key_check(k1, sid, a) == VV_OK);
  VV_CHECK(vv_key_check(k2, sid, b) == VV_OK);
  VV_CHECK(vv_ct_compare(a, b, sizeof a) != 0);
  vv_keyring_free(k1);
  vv_keyring_free(k2);

  unsigned char r1[32], r2[32];
  vv_random_bytes(r1, sizeof r1);
  vv_random_bytes(r2, sizeof r2);
  VV_CHECK(memcmp(r1, r2, sizeof r1) != 0);
  vv_random_bytes(NULL, 0);
}

#if defined(__linux__)
/* The ring is sodium_mprotect_readonly: a stray write must fault. */
VV_TEST(keyring_is_read_only) {
  vv_keyring *kr = ring_seq(0);
  VV_REQUIRE(kr != NULL);
  fflush(NULL);
  pid_t pid = fork();
  VV_REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0)
      dup2(fd, 2); /* ASan's SEGV report is expected noise */
    volatile unsigned char *p = (volatile unsigned char *)(void *)kr;
    p[0] = (unsigned char)(p[0] ^ 1);
    _exit(0);
  }
  int status = 0;
  VV_REQUIRE(waitpid(pid, &status, 0) == pid);
  VV_CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  vv_keyring_free(kr);
}
#endif

/* --- AEAD -------------------------------------------------------------- */

VV_TEST(aead_open_golden) {
  vv_keyring *kr = ring_seq(0);
  VV_REQUIRE(kr != NULL);
  unsigned char nonce[VV_NONCE_BYTES], ct[64], pt[64];
  seq(nonce, sizeof nonce, 0x40);
  size_t n = unhex(AEAD_CHUNKS_HEX, ct, sizeof ct);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, (const unsigned char *)"vv-ad", 5, nonce, ct, n, pt) == VV_OK);
  VV_CHECK(n == 15 + VV_TAG_BYTES && memcmp(pt, "hello, vecvault", 15) == 0);
  VV_CHECK(vv_aead_open(kr, VV_KEY_INDEX, (const unsigned char *)"vv-ad", 5, nonce, ct, n, pt) == VV_E_CORRUPT);

  n = unhex(AEAD_INDEX_EMPTY_HEX, ct, sizeof ct);
  VV_CHECK(vv_aead_open(kr, VV_KEY_INDEX, NULL, 0, nonce, ct, n, NULL) == VV_OK);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, NULL, 0, nonce, ct, n, NULL) == VV_E_CORRUPT);
  vv_keyring_free(kr);
}

/* The seal side uses the pinned subkey and the combined ct || tag layout. */
VV_TEST(aead_seal_uses_purpose_subkey) {
  vv_keyring *kr = ring_seq(0);
  VV_REQUIRE(kr != NULL);
  static const vv_key_purpose purposes[] = {VV_KEY_CHUNKS, VV_KEY_INDEX};
  for (size_t p = 0; p < 2; p++) {
    unsigned char sub[32], nonce[VV_NONCE_BYTES], ct[40 + VV_TAG_BYTES], pt[40];
    unhex(kSubkeyHex[purposes[p] - 1], sub, sizeof sub);
    seq(pt, sizeof pt, 3);
    VV_NOTE("purpose=%d", (int)purposes[p]);
    VV_REQUIRE(vv_aead_seal(kr, purposes[p], (const unsigned char *)"ad", 2, pt, sizeof pt, nonce, ct) == VV_OK);
    unsigned char back[40];
    unsigned long long blen = 0;
    VV_CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(back, &blen, NULL, ct, sizeof ct, (const unsigned char *)"ad",
                                                        2, nonce, sub) == 0);
    VV_CHECK(blen == sizeof pt && memcmp(back, pt, sizeof pt) == 0);
  }
  vv_keyring_free(kr);
}

VV_TEST(aead_round_trip) {
  vv_keyring *kr = NULL;
  VV_REQUIRE(vv_keyring_random(&kr) == VV_OK);
  static const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 1000, 65536};
  unsigned char ad[7] = {1, 2, 3, 4, 5, 6, 7};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    size_t n = lens[i];
    VV_NOTE("len=%zu", n);
    /* Exact-size heap buffers so ASan sees any overrun. */
    unsigned char *pt = malloc(n ? n : 1), *ct = malloc(n + VV_TAG_BYTES), *back = malloc(n ? n : 1);
    VV_REQUIRE(pt && ct && back);
    vv_random_bytes(pt, n);
    unsigned char nonce[VV_NONCE_BYTES];
    VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, ad, sizeof ad, pt, n, nonce, ct) == VV_OK);
    VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, n + VV_TAG_BYTES, back) == VV_OK);
    VV_CHECK(n == 0 || memcmp(pt, back, n) == 0);
    free(pt);
    free(ct);
    free(back);
  }
  /* Zero-length plaintext with NULL buffers. */
  unsigned char nonce[VV_NONCE_BYTES], tag[VV_TAG_BYTES];
  VV_CHECK(vv_aead_seal(kr, VV_KEY_INDEX, NULL, 0, NULL, 0, nonce, tag) == VV_OK);
  VV_CHECK(vv_aead_open(kr, VV_KEY_INDEX, NULL, 0, nonce, tag, sizeof tag, NULL) == VV_OK);
  /* Fresh nonces: the same plaintext seals differently. */
  unsigned char n1[VV_NONCE_BYTES], n2[VV_NONCE_BYTES], c1[4 + VV_TAG_BYTES], c2[4 + VV_TAG_BYTES];
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 0, (const unsigned char *)"same", 4, n1, c1) == VV_OK);
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 0, (const unsigned char *)"same", 4, n2, c2) == VV_OK);
  VV_CHECK(memcmp(n1, n2, sizeof n1) != 0 && memcmp(c1, c2, sizeof c1) != 0);
  vv_keyring_free(kr);
}

VV_TEST(aead_tamper_is_corrupt) {
  vv_keyring *kr = NULL, *other = NULL;
  VV_REQUIRE(vv_keyring_random(&kr) == VV_OK);
  VV_REQUIRE(vv_keyring_random(&other) == VV_OK);
  unsigned char ad[12], pt[33], nonce[VV_NONCE_BYTES], ct[sizeof pt + VV_TAG_BYTES], out[sizeof pt];
  seq(ad, sizeof ad, 0x11);
  seq(pt, sizeof pt, 0x22);
  VV_REQUIRE(vv_aead_seal(kr, VV_KEY_CHUNKS, ad, sizeof ad, pt, sizeof pt, nonce, ct) == VV_OK);
  VV_REQUIRE(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, sizeof ct, out) == VV_OK);

  for (size_t i = 0; i < sizeof nonce; i++) {
    VV_NOTE("nonce byte %zu", i);
    nonce[i] ^= 0x01;
    VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, sizeof ct, out) == VV_E_CORRUPT);
    nonce[i] ^= 0x01;
  }
  for (size_t i = 0; i < sizeof ct; i++) { /* ciphertext bytes, then the tag */
    VV_NOTE("%s byte %zu", i < sizeof pt ? "ciphertext" : "tag", i);
    ct[i] ^= 0x80;
    VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, sizeof ct, out) == VV_E_CORRUPT);
    ct[i] ^= 0x80;
  }
  for (size_t i = 0; i < sizeof ad; i++) {
    VV_NOTE("ad byte %zu", i);
    ad[i] ^= 0x04;
    VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, sizeof ct, out) == VV_E_CORRUPT);
    ad[i] ^= 0x04;
  }
  VV_NOTE("%s", "truncation, key, purpose");
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad - 1, nonce, ct, sizeof ct, out) == VV_E_CORRUPT);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, sizeof ct - 1, out) == VV_E_CORRUPT);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, VV_TAG_BYTES - 1, out) == VV_E_CORRUPT);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, 0, out) == VV_E_CORRUPT);
  VV_CHECK(vv_aead_open(other, VV_KEY_CHUNKS, ad, sizeof ad, nonce, ct, sizeof ct, out) == VV_E_CORRUPT);
  VV_CHECK(vv_aead_open(kr, VV_KEY_INDEX, ad, sizeof ad, nonce, ct, sizeof ct, out) == VV_E_CORRUPT);
  /* A failed open leaves no plaintext behind. */
  unsigned char zero[sizeof pt] = {0};
  VV_CHECK(memcmp(out, zero, sizeof out) == 0);
  vv_keyring_free(kr);
  vv_keyring_free(other);
}

VV_TEST(aead_arguments) {
  vv_keyring *kr = ring_seq(0);
  VV_REQUIRE(kr != NULL);
  unsigned char nonce[VV_NONCE_BYTES], buf[64], out[64];
  memset(buf, 1, sizeof buf);
  /* Only the encryption purposes are cipher keys. */
  static const int bad_purposes[] = {0, VV_KEY_MANIFEST, VV_KEY_CHECK, 5, -1};
  for (size_t i = 0; i < sizeof bad_purposes / sizeof bad_purposes[0]; i++) {
    VV_NOTE("purpose=%d", bad_purposes[i]);
    VV_CHECK(vv_aead_seal(kr, (vv_key_purpose)bad_purposes[i], NULL, 0, buf, 8, nonce, out) == VV_E_INVALID);
    VV_CHECK(vv_aead_open(kr, (vv_key_purpose)bad_purposes[i], NULL, 0, nonce, buf, 24, out) == VV_E_INVALID);
  }
  VV_NOTE("%s", "pointers");
  VV_CHECK(vv_aead_seal(NULL, VV_KEY_CHUNKS, NULL, 0, buf, 8, nonce, out) == VV_E_INVALID);
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 1, buf, 8, nonce, out) == VV_E_INVALID);
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 0, NULL, 8, nonce, out) == VV_E_INVALID);
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 0, buf, 8, NULL, out) == VV_E_INVALID);
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 0, buf, 8, nonce, NULL) == VV_E_INVALID);
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 0, buf, 8, nonce, buf + 4) == VV_E_INVALID); /* overlap */
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 0, buf + 30, 8, buf, buf + 30) == VV_E_INVALID);
  VV_CHECK(vv_aead_seal(kr, VV_KEY_CHUNKS, NULL, 0, buf + 40, 8, buf + 8, buf + 16) == VV_E_INVALID); /* nonce */
  VV_CHECK(vv_aead_open(NULL, VV_KEY_CHUNKS, NULL, 0, nonce, buf, 24, out) == VV_E_INVALID);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, NULL, 1, nonce, buf, 24, out) == VV_E_INVALID);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, NULL, 0, NULL, buf, 24, out) == VV_E_INVALID);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, NULL, 0, nonce, NULL, 24, out) == VV_E_INVALID);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, NULL, 0, nonce, buf, 24, NULL) == VV_E_INVALID);
  VV_CHECK(vv_aead_open(kr, VV_KEY_CHUNKS, NULL, 0, nonce, buf, 24, buf + 4) == VV_E_INVALID);
  vv_keyring_free(kr);
}

/* --- key wrapping ------------------------------------------------------ */

VV_TEST(key_unwrap_golden) {
  vv_keyring *kek = ring_seq(0x20), *data = NULL;
  VV_REQUIRE(kek != NULL);
  unsigned char sid[VV_SESSION_ID_BYTES], wrapped[VV_WRAPPED_KEY_BYTES + 1], kc[VV_HASH_BYTES];
  session_id(sid);
  VV_REQUIRE(unhex(WRAPPED_M_HEX, wrapped, sizeof wrapped) == VV_WRAPPED_KEY_BYTES);
  VV_REQUIRE(vv_key_unwrap(kek, sid, wrapped, &data) == VV_OK && data != NULL);
  VV_CHECK(vv_key_check(data, sid, kc) == VV_OK);
  VV_CHECK(eq_hex(kc, sizeof kc, KEYCHECK_M_HEX));
  vv_keyring_free(data);
  vv_keyring_free(kek);
}

/* The wrap side: nonce || ct || tag under the KEK master itself, with
 * AD "vecvault-key-wrap" || session id. */
VV_TEST(key_wrap_layout) {
  vv_keyring *kek = ring_seq(0x20), *data = ring_seq(0);
  VV_REQUIRE(kek != NULL && data != NULL);
  unsigned char sid[VV_SESSION_ID_BYTES], w[VV_WRAPPED_KEY_BYTES], kekbytes[32], ad[33], m[32], want[32];
  session_id(sid);
  seq(kekbytes, sizeof kekbytes, 0x20);
  memcpy(ad, "vecvault-key-wrap", 17);
  memcpy(ad + 17, sid, 16);
  seq(want, sizeof want, 0);
  VV_REQUIRE(vv_key_wrap(kek, data, sid, w) == VV_OK);
  unsigned long long mlen = 0;
  VV_CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen, NULL, w + VV_NONCE_BYTES,
                                                      VV_WRAPPED_KEY_BYTES - VV_NONCE_BYTES, ad, sizeof ad, w,
                                                      kekbytes) == 0);
  VV_CHECK(mlen == 32 && memcmp(m, want, 32) == 0);
  sodium_memzero(m, sizeof m);
  vv_keyring_free(kek);
  vv_keyring_free(data);
}

VV_TEST(key_wrap_round_trip_and_wrong_key) {
  vv_keyring *kek = NULL, *other = NULL, *data = NULL, *back = NULL;
  VV_REQUIRE(vv_keyring_random(&kek) == VV_OK);
  VV_REQUIRE(vv_keyring_random(&other) == VV_OK);
  VV_REQUIRE(vv_keyring_random(&data) == VV_OK);
  unsigned char sid[VV_SESSION_ID_BYTES], w[VV_WRAPPED_KEY_BYTES], w2[VV_WRAPPED_KEY_BYTES];
  unsigned char kc1[VV_HASH_BYTES], kc2[VV_HASH_BYTES];
  vv_random_bytes(sid, sizeof sid);
  VV_REQUIRE(vv_key_wrap(kek, data, sid, w) == VV_OK);
  VV_REQUIRE(vv_key_wrap(kek, data, sid, w2) == VV_OK);
  VV_CHECK(memcmp(w, w2, sizeof w) != 0); /* fresh nonce each time */

  VV_REQUIRE(vv_key_unwrap(kek, sid, w, &back) == VV_OK && back != NULL);
  VV_CHECK(vv_key_check(data, sid, kc1) == VV_OK);
  VV_CHECK(vv_key_check(back, sid, kc2) == VV_OK);
  VV_CHECK(vv_ct_compare(kc1, kc2, sizeof kc1) == 0);
  vv_keyring_free(back);

  back = (vv_keyring *)&back;
  VV_CHECK(vv_key_unwrap(other, sid, w, &back) == VV_E_WRONG_KEY);
  VV_CHECK(back == NULL);
  sid[0] ^= 1;
  VV_CHECK(vv_key_unwrap(kek, sid, w, &back) == VV_E_WRONG_KEY);
  sid[0] ^= 1;
  for (size_t i = 0; i < sizeof w; i++) {
    VV_NOTE("byte %zu", i);
    w[i] ^= 0x10;
    VV_CHECK(vv_key_unwrap(kek, sid, w, &back) == VV_E_WRONG_KEY);
    w[i] ^= 0x10;
  }
  VV_NOTE("%s", "arguments");
  VV_CHECK(vv_key_wrap(NULL, data, sid, w) == VV_E_INVALID);
  VV_CHECK(vv_key_wrap(kek, NULL, sid, w) == VV_E_INVALID);
  VV_CHECK(vv_key_wrap(kek, data, NULL, w) == VV_E_INVALID);
  VV_CHECK(vv_key_wrap(kek, data, sid, NULL) == VV_E_INVALID);
  VV_CHECK(vv_key_unwrap(NULL, sid, w, &back) == VV_E_INVALID);
  VV_CHECK(vv_key_unwrap(kek, NULL, w, &back) == VV_E_INVALID);
  VV_CHECK(vv_key_unwrap(kek, sid, NULL, &back) == VV_E_INVALID);
  VV_CHECK(vv_key_unwrap(kek, sid, w, NULL) == VV_E_INVALID);
  vv_keyring_free(kek);
  vv_keyring_free(other);
  vv_keyring_free(data);
}

/* --- passphrase -------------------------------------------------------- */

static int pass_check(const char *pass, unsigned salt_start, uint64_t ops, uint64_t mem,
                      unsigned char kc[VV_HASH_BYTES]) {
  unsigned char salt[VV_SALT_BYTES], sid[VV_SESSION_ID_BYTES];
  seq(salt, sizeof salt, salt_start);
  session_id(sid);
  vv_keyring *kek = NULL;
  int rc = vv_kek_from_passphrase(pass, strlen(pass), salt, ops, mem, &kek);
  if (rc == VV_OK)
    rc = vv_key_check(kek, sid, kc);
  vv_keyring_free(kek);
  return rc;
}

VV_TEST(passphrase_kek_golden_min_limits) {
  unsigned char a[VV_HASH_BYTES], b[VV_HASH_BYTES];
  uint64_t ops = crypto_pwhash_OPSLIMIT_MIN, mem = crypto_pwhash_MEMLIMIT_MIN;
  VV_CHECK(ops == 1 && mem == 8192);
  VV_REQUIRE(pass_check(kPass, 0x60, ops, mem, a) == VV_OK);
  VV_CHECK(eq_hex(a, sizeof a, PW_MIN_KEYCHECK_HEX));
  VV_REQUIRE(pass_check(kPass, 0x60, ops, mem, b) == VV_OK);
  VV_CHECK(vv_ct_compare(a, b, sizeof a) == 0);
  VV_REQUIRE(pass_check(kPass, 0x61, ops, mem, b) == VV_OK); /* other salt */
  VV_CHECK(vv_ct_compare(a, b, sizeof a) != 0);
  VV_REQUIRE(pass_check("correct horse battery stapl3", 0x60, ops, mem, b) == VV_OK);
  VV_CHECK(vv_ct_compare(a, b, sizeof a) != 0);
  VV_REQUIRE(pass_check(kPass, 0x60, ops + 1, mem, b) == VV_OK); /* limits matter */
  VV_CHECK(vv_ct_compare(a, b, sizeof a) != 0);
  VV_REQUIRE(pass_check(kPass, 0x60, VV_PWHASH_MAX_OPSLIMIT, mem, b) == VV_OK); /* cap itself accepted */
}

VV_TEST(passphrase_kek_interactive_defaults) {
  VV_CHECK(vv_pwhash_default_opslimit() == crypto_pwhash_OPSLIMIT_INTERACTIVE);
  VV_CHECK(vv_pwhash_default_memlimit() == crypto_pwhash_MEMLIMIT_INTERACTIVE);
  unsigned char kc[VV_HASH_BYTES];
  VV_REQUIRE(pass_check(kPass, 0x60, vv_pwhash_default_opslimit(), vv_pwhash_default_memlimit(), kc) == VV_OK);
  VV_CHECK(eq_hex(kc, sizeof kc, PW_INTERACTIVE_KEYCHECK_HEX));
}

VV_TEST(passphrase_kek_rejects_bad_arguments) {
  unsigned char salt[VV_SALT_BYTES] = {0};
  const uint64_t ops = crypto_pwhash_OPSLIMIT_MIN, mem = crypto_pwhash_MEMLIMIT_MIN;
  vv_keyring *kek = (vv_keyring *)&kek;
  VV_CHECK(vv_kek_from_passphrase("pw", 2, salt, 0, mem, &kek) == VV_E_INVALID);
  VV_CHECK(kek == NULL);
  VV_CHECK(vv_kek_from_passphrase("pw", 2, salt, VV_PWHASH_MAX_OPSLIMIT + 1, mem, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase("pw", 2, salt, UINT64_MAX, mem, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase("pw", 2, salt, ops, mem - 1, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase("pw", 2, salt, ops, 0, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase("pw", 2, salt, ops, VV_PWHASH_MAX_MEMLIMIT + 1, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase("pw", 2, salt, ops, UINT64_MAX, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase("", 0, salt, ops, mem, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase(NULL, 2, salt, ops, mem, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase("pw", 2, NULL, ops, mem, &kek) == VV_E_INVALID);
  VV_CHECK(vv_kek_from_passphrase("pw", 2, salt, ops, mem, NULL) == VV_E_INVALID);
  VV_CHECK(kek == NULL);
}

/* --- comparison and hex ------------------------------------------------ */

VV_TEST(ct_compare) {
  unsigned char a[40], b[40];
  seq(a, sizeof a, 9);
  memcpy(b, a, sizeof b);
  VV_CHECK(vv_ct_compare(a, b, sizeof a) == 0);
  for (size_t i = 0; i < sizeof a; i++) {
    VV_NOTE("i=%zu", i);
    b[i] ^= 0x40;
    VV_CHECK(vv_ct_compare(a, b, sizeof a) != 0);
    b[i] ^= 0x40;
  }
  VV_CHECK(vv_ct_compare(a, b, 0) == 0);
  VV_CHECK(vv_ct_compare(NULL, NULL, 0) == 0);
  VV_CHECK(vv_ct_compare(a, NULL, 1) != 0);
}

VV_TEST(hex_round_trip) {
  unsigned char all[256], back[256];
  char hex[2 * 256 + 1];
  seq(all, sizeof all, 0);
  vv_hex_encode(all, sizeof all, hex);
  VV_CHECK(strlen(hex) == 512);
  VV_CHECK(memcmp(hex, "000102", 6) == 0 && memcmp(hex + 500, "fafbfcfdfeff", 12) == 0);
  VV_CHECK(vv_hex_decode(hex, 512, back, sizeof back) == VV_OK);
  VV_CHECK(memcmp(all, back, sizeof all) == 0);

  unsigned char four[4];
  VV_CHECK(vv_hex_decode("DEADbeef", 8, four, 4) == VV_OK);
  VV_CHECK(four[0] == 0xde && four[1] == 0xad && four[2] == 0xbe && four[3] == 0xef);
  char small[9];
  vv_hex_encode(four, 4, small);
  VV_CHECK(strcmp(small, "deadbeef") == 0);
  vv_hex_encode(NULL, 0, small);
  VV_CHECK(small[0] == '\0');
  VV_CHECK(vv_hex_decode("", 0, four, 0) == VV_OK);
  VV_CHECK(vv_hex_decode(NULL, 0, NULL, 0) == VV_OK);
}

VV_TEST(hex_decode_rejects) {
  unsigned char out[4];
  VV_CHECK(vv_hex_decode("abcdef0", 7, out, 4) == VV_E_CORRUPT);     /* odd */
  VV_CHECK(vv_hex_decode("abcdef", 6, out, 4) == VV_E_CORRUPT);      /* short */
  VV_CHECK(vv_hex_decode("abcdef0123", 10, out, 4) == VV_E_CORRUPT); /* long */
  VV_CHECK(vv_hex_decode("abcdef01", 8, out, 3) == VV_E_CORRUPT);    /* caller wants fewer */
  VV_CHECK(vv_hex_decode("abcdef01", 7, out, 4) == VV_E_CORRUPT);
  VV_CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0 && out[3] == 0);
  static const char bad[] = {'g', 'G', 'x', ' ', ':', '-', '\0', '\n', '/', '@', '`', '\xff'};
  for (size_t pos = 0; pos < 8; pos++) {
    for (size_t k = 0; k < sizeof bad; k++) {
      char in[8];
      memcpy(in, "0123abCD", 8);
      in[pos] = bad[k];
      memset(out, 0xaa, sizeof out);
      VV_NOTE("pos=%zu char=0x%02x", pos, (unsigned)(unsigned char)bad[k]);
      VV_CHECK(vv_hex_decode(in, 8, out, 4) == VV_E_CORRUPT);
      VV_CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0 && out[3] == 0);
    }
  }
  VV_NOTE("%s", "arguments");
  VV_CHECK(vv_hex_decode(NULL, 8, out, 4) == VV_E_INVALID);
  VV_CHECK(vv_hex_decode("abcdef01", 8, NULL, 4) == VV_E_INVALID);
}

VV_TEST_MAIN()

/*
 * The golden-value script (python3, hashlib and the `cryptography` package):
 *
 * import hashlib, struct
 * from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
 * from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
 * from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
 * def b2(msg, key=b"", salt=b"", person=b""):
 *     return hashlib.blake2b(msg, digest_size=32, key=key, salt=salt, person=person).digest()
 * def kdf(master, i):
 *     return b2(b"", key=master, salt=struct.pack("<Q", i) + bytes(8), person=b"vvsessn1" + bytes(8))
 * def hchacha20(key, n16):  # ChaCha20 block minus the feed-forward, words 0-3 and 12-15
 *     ks = Cipher(algorithms.ChaCha20(key, n16), None).encryptor().update(bytes(64))
 *     st = struct.unpack("<16I", b"expand 32-byte k" + key + n16)
 *     w = struct.unpack("<16I", ks)
 *     return struct.pack("<8I", *[(w[i] - st[i]) & 0xffffffff for i in (0, 1, 2, 3, 12, 13, 14, 15)])
 * def xseal(key, nonce, pt, ad):
 *     return ChaCha20Poly1305(hchacha20(key, nonce[:16])).encrypt(bytes(4) + nonce[16:], pt, ad)
 * M, KEK = bytes(range(32)), bytes(range(0x20, 0x40))
 * S, N, SALT = bytes(range(0xa0, 0xb0)), bytes(range(0x40, 0x58)), bytes(range(0x60, 0x70))
 * keycheck = lambda m: b2(b"vecvault key check v1" + S, key=kdf(m, 4))
 * subkeys: kdf(M, 1..4); KEYCHECK_M: keycheck(M)
 * MAC_M: b2(b'{"format":"vecvault","version":1}', key=kdf(M, 3))
 * AEAD_CHUNKS: xseal(kdf(M, 1), N, b"hello, vecvault", b"vv-ad"); AEAD_INDEX_EMPTY: xseal(kdf(M, 2), N, b"", b"")
 * WRAPPED_M: N + xseal(KEK, N, M, b"vecvault-key-wrap" + S)
 * PW_MIN: keycheck(Argon2id(salt=SALT, length=32, iterations=1, lanes=1, memory_cost=8).derive(P))
 * PW_INTERACTIVE: the same with iterations=2, memory_cost=65536
 *   where P = b"correct horse battery staple"
 */
