/*
 * crypto/crypto.c: the libsodium wrappers declared in crypto.h.
 *
 * Owns: the key ring layout (master key plus per-purpose subkeys in one
 * sodium_malloc'd, read-only block), the key-wrap and key-check encodings,
 * and the only calls into libsodium in the engine.
 *
 * Key bytes are only ever written straight into a key ring (random, Argon2id
 * output, or the unwrapped plaintext all land in kr->master), so there is no
 * stack copy of a key to wipe. Nothing here formats or logs key material.
 */
#include "crypto.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

#define VV_KDF_CONTEXT "vvsessn1"
#define VV_WRAP_AD_PREFIX "vecvault-key-wrap"
#define VV_CHECK_PREFIX "vecvault key check v1"
#define VV_NPURPOSES 4u

_Static_assert(sizeof VV_KDF_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "kdf context must be 8 bytes");
_Static_assert(sizeof VV_WRAP_AD_PREFIX - 1 == 17, "key-wrap AD prefix is 17 bytes");
_Static_assert(sizeof VV_CHECK_PREFIX - 1 == 21, "key-check prefix is 21 bytes");
_Static_assert(crypto_kdf_KEYBYTES == VV_KEY_BYTES, "kdf master key size");
_Static_assert(crypto_kdf_BYTES_MIN <= VV_KEY_BYTES && VV_KEY_BYTES <= crypto_kdf_BYTES_MAX, "kdf subkey size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == VV_KEY_BYTES, "aead key size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == VV_NONCE_BYTES, "aead nonce size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == VV_TAG_BYTES, "aead tag size");
_Static_assert(crypto_generichash_KEYBYTES_MIN <= VV_KEY_BYTES && VV_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
               "generichash key size");
_Static_assert(crypto_generichash_BYTES_MIN <= VV_HASH_BYTES && VV_HASH_BYTES <= crypto_generichash_BYTES_MAX,
               "generichash output size");
_Static_assert(crypto_pwhash_argon2id_SALTBYTES == VV_SALT_BYTES, "pwhash salt size");
_Static_assert(crypto_pwhash_argon2id_BYTES_MIN <= VV_KEY_BYTES, "pwhash output size");
_Static_assert(VV_PWHASH_MAX_MEMLIMIT <= crypto_pwhash_argon2id_MEMLIMIT_MAX, "memlimit cap within libsodium's range");
_Static_assert(VV_PWHASH_MAX_OPSLIMIT <= crypto_pwhash_argon2id_OPSLIMIT_MAX, "opslimit cap within libsodium's range");
_Static_assert(VV_PWHASH_MAX_MEMLIMIT <= SIZE_MAX, "memlimit cap fits size_t");
_Static_assert(sizeof(crypto_generichash_state) <= sizeof(((vv_hash_state *)0)->opaque),
               "vv_hash_state too small for crypto_generichash_state");
_Static_assert(_Alignof(crypto_generichash_state) <= _Alignof(vv_hash_state),
               "vv_hash_state under-aligned for crypto_generichash_state");

/* Only unsigned char arrays, so sodium_malloc's unaligned-to-the-page-end
 * placement is fine for it. */
struct vv_keyring {
  unsigned char master[VV_KEY_BYTES];
  unsigned char sub[VV_NPURPOSES][VV_KEY_BYTES]; /* sub[purpose - 1] */
};

/* libsodium declares some pointer parameters nonnull even for zero lengths. */
static const unsigned char kEmpty[1];
static const unsigned char *nonnull_bytes(const unsigned char *p) { return p ? p : kEmpty; }

/* NULL is acceptable only for an empty buffer. */
static int bad_buf(const void *p, size_t len) { return p == NULL && len > 0; }

/* uintptr_t compares avoid relational comparison of unrelated pointers. */
static int overlaps(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen) {
  if (alen == 0 || blen == 0)
    return 0;
  uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
  return a0 < b0 + blen && b0 < a0 + alen;
}

int vv_crypto_init(void) {
  /* 0 = initialised now, 1 = already; sodium_init takes its own lock. */
  return sodium_init() < 0 ? VV_E_INTERNAL : VV_OK;
}

/* --- key ring ---------------------------------------------------------- */

/* sodium_malloc needs sodium_init's page-size setup, so make sure of it here
 * rather than trusting every caller to have called vv_crypto_init. */
static int keyring_alloc(vv_keyring **out) {
  *out = NULL;
  if (vv_crypto_init() != VV_OK)
    return VV_E_INTERNAL;
  vv_keyring *kr = sodium_malloc(sizeof *kr);
  if (kr == NULL)
    return VV_E_NOMEM;
  *out = kr;
  return VV_OK;
}

/* Derives the subkeys from kr->master and makes the ring read-only. Frees
 * the ring on failure. */
static int keyring_finish(vv_keyring *kr, vv_keyring **out) {
  for (unsigned i = 0; i < VV_NPURPOSES; i++) {
    if (crypto_kdf_derive_from_key(kr->sub[i], VV_KEY_BYTES, (uint64_t)i + 1, VV_KDF_CONTEXT, kr->master) != 0) {
      sodium_free(kr);
      return VV_E_INTERNAL;
    }
  }
  /* Hardening only: without mprotect support the ring stays writable. */
  (void)sodium_mprotect_readonly(kr);
  *out = kr;
  return VV_OK;
}

int vv_keyring_create(const unsigned char key[VV_KEY_BYTES], vv_keyring **out) {
  if (out == NULL)
    return VV_E_INVALID;
  *out = NULL;
  if (key == NULL)
    return VV_E_INVALID;
  vv_keyring *kr;
  int rc = keyring_alloc(&kr);
  if (rc != VV_OK)
    return rc;
  memcpy(kr->master, key, VV_KEY_BYTES);
  return keyring_finish(kr, out);
}

int vv_keyring_clone(const vv_keyring *src, vv_keyring **out) {
  if (out == NULL)
    return VV_E_INVALID;
  *out = NULL;
  if (src == NULL)
    return VV_E_INVALID;
  return vv_keyring_create(src->master, out);
}

int vv_keyring_random(vv_keyring **out) {
  if (out == NULL)
    return VV_E_INVALID;
  vv_keyring *kr;
  int rc = keyring_alloc(&kr);
  if (rc != VV_OK)
    return rc;
  randombytes_buf(kr->master, VV_KEY_BYTES);
  return keyring_finish(kr, out);
}

void vv_keyring_free(vv_keyring *kr) {
  if (kr != NULL)
    sodium_free(kr); /* makes it writable, wipes, unmaps */
}

static const unsigned char *subkey(const vv_keyring *kr, vv_key_purpose purpose) {
  return kr->sub[(unsigned)purpose - 1];
}

/* --- passphrase KEK ---------------------------------------------------- */

uint64_t vv_pwhash_default_opslimit(void) { return crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE; }
uint64_t vv_pwhash_default_memlimit(void) { return crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE; }

int vv_kek_from_passphrase(const char *pass, size_t pass_len, const unsigned char salt[VV_SALT_BYTES],
                           uint64_t opslimit, uint64_t memlimit, vv_keyring **kek_out) {
  if (kek_out == NULL)
    return VV_E_INVALID;
  *kek_out = NULL;
  if (pass == NULL || pass_len == 0 || (uint64_t)pass_len > crypto_pwhash_argon2id_PASSWD_MAX || salt == NULL)
    return VV_E_INVALID;
  if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN || opslimit > VV_PWHASH_MAX_OPSLIMIT ||
      memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN || memlimit > VV_PWHASH_MAX_MEMLIMIT)
    return VV_E_INVALID;
  vv_keyring *kr;
  int rc = keyring_alloc(&kr);
  if (rc != VV_OK)
    return rc;
  /* The arguments are validated, so failure here means Argon2 could not
   * allocate its memory. */
  if (crypto_pwhash(kr->master, VV_KEY_BYTES, pass, pass_len, salt, opslimit, (size_t)memlimit,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    sodium_free(kr);
    return VV_E_NOMEM;
  }
  return keyring_finish(kr, kek_out);
}

/* --- key wrapping ------------------------------------------------------ */

#define VV_WRAP_AD_BYTES (sizeof VV_WRAP_AD_PREFIX - 1 + VV_SESSION_ID_BYTES)

static void wrap_ad(const unsigned char session_id[VV_SESSION_ID_BYTES], unsigned char ad[VV_WRAP_AD_BYTES]) {
  memcpy(ad, VV_WRAP_AD_PREFIX, sizeof VV_WRAP_AD_PREFIX - 1);
  memcpy(ad + sizeof VV_WRAP_AD_PREFIX - 1, session_id, VV_SESSION_ID_BYTES);
}

int vv_key_wrap(const vv_keyring *kek, const vv_keyring *data, const unsigned char session_id[VV_SESSION_ID_BYTES],
                unsigned char out[VV_WRAPPED_KEY_BYTES]) {
  if (kek == NULL || data == NULL || session_id == NULL || out == NULL)
    return VV_E_INVALID;
  unsigned char ad[VV_WRAP_AD_BYTES];
  wrap_ad(session_id, ad);
  randombytes_buf(out, VV_NONCE_BYTES);
  unsigned long long clen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + VV_NONCE_BYTES, &clen, data->master, VV_KEY_BYTES, ad,
                                                 sizeof ad, NULL, out, kek->master) != 0 ||
      clen != VV_KEY_BYTES + VV_TAG_BYTES) {
    sodium_memzero(out, VV_WRAPPED_KEY_BYTES);
    return VV_E_INTERNAL;
  }
  return VV_OK;
}

int vv_key_unwrap(const vv_keyring *kek, const unsigned char session_id[VV_SESSION_ID_BYTES],
                  const unsigned char in[VV_WRAPPED_KEY_BYTES], vv_keyring **data_out) {
  if (data_out == NULL)
    return VV_E_INVALID;
  *data_out = NULL;
  if (kek == NULL || session_id == NULL || in == NULL)
    return VV_E_INVALID;
  unsigned char ad[VV_WRAP_AD_BYTES];
  wrap_ad(session_id, ad);
  vv_keyring *kr;
  int rc = keyring_alloc(&kr);
  if (rc != VV_OK)
    return rc;
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(kr->master, &mlen, NULL, in + VV_NONCE_BYTES,
                                                 VV_KEY_BYTES + VV_TAG_BYTES, ad, sizeof ad, in,
                                                 kek->master) != 0) {
    sodium_free(kr);
    return VV_E_WRONG_KEY;
  }
  if (mlen != VV_KEY_BYTES) {
    sodium_free(kr);
    return VV_E_INTERNAL;
  }
  return keyring_finish(kr, data_out);
}

/* --- MACs and hashes --------------------------------------------------- */

int vv_key_check(const vv_keyring *kr, const unsigned char session_id[VV_SESSION_ID_BYTES],
                 unsigned char out[VV_HASH_BYTES]) {
  if (kr == NULL || session_id == NULL || out == NULL)
    return VV_E_INVALID;
  unsigned char msg[sizeof VV_CHECK_PREFIX - 1 + VV_SESSION_ID_BYTES];
  memcpy(msg, VV_CHECK_PREFIX, sizeof VV_CHECK_PREFIX - 1);
  memcpy(msg + sizeof VV_CHECK_PREFIX - 1, session_id, VV_SESSION_ID_BYTES);
  if (crypto_generichash(out, VV_HASH_BYTES, msg, sizeof msg, subkey(kr, VV_KEY_CHECK), VV_KEY_BYTES) != 0)
    return VV_E_INTERNAL;
  return VV_OK;
}

int vv_ct_compare(const unsigned char *a, const unsigned char *b, size_t n) {
  if (n == 0)
    return 0;
  if (a == NULL || b == NULL)
    return -1;
  return sodium_memcmp(a, b, n);
}

int vv_manifest_mac(const vv_keyring *kr, const unsigned char *body, size_t len, unsigned char out[VV_HASH_BYTES]) {
  if (kr == NULL || bad_buf(body, len) || out == NULL)
    return VV_E_INVALID;
  if (crypto_generichash(out, VV_HASH_BYTES, nonnull_bytes(body), len, subkey(kr, VV_KEY_MANIFEST), VV_KEY_BYTES) != 0)
    return VV_E_INTERNAL;
  return VV_OK;
}

/* Unkeyed BLAKE2b of n bytes cannot fail; a NULL buffer with a length is a
 * caller bug, answered with zeros rather than a crash or stale bytes. */
static void hash_n(const unsigned char *data, size_t len, unsigned char *out, size_t n) {
  if (out == NULL)
    return;
  if (bad_buf(data, len) || crypto_generichash(out, n, nonnull_bytes(data), len, NULL, 0) != 0)
    memset(out, 0, n);
}

void vv_hash(const unsigned char *data, size_t len, unsigned char out[VV_HASH_BYTES]) {
  hash_n(data, len, out, VV_HASH_BYTES);
}

void vv_hash16(const unsigned char *data, size_t len, unsigned char out[VV_HASH16_BYTES]) {
  hash_n(data, len, out, VV_HASH16_BYTES);
}

static crypto_generichash_state *hash_state(vv_hash_state *st) { return (crypto_generichash_state *)(void *)st->opaque; }

void vv_hash_init(vv_hash_state *st) {
  if (st != NULL)
    (void)crypto_generichash_init(hash_state(st), NULL, 0, VV_HASH_BYTES);
}

void vv_hash_update(vv_hash_state *st, const unsigned char *data, size_t len) {
  if (st != NULL && !bad_buf(data, len))
    (void)crypto_generichash_update(hash_state(st), nonnull_bytes(data), len);
}

void vv_hash_final(vv_hash_state *st, unsigned char out[VV_HASH_BYTES]) {
  if (st == NULL || out == NULL)
    return;
  /* libsodium refuses a second final on the same state: zeros, not stale bytes. */
  if (crypto_generichash_final(hash_state(st), out, VV_HASH_BYTES) != 0)
    memset(out, 0, VV_HASH_BYTES);
}

/* --- AEAD -------------------------------------------------------------- */

/* Only the encryption purposes: the MAC and key-check subkeys are BLAKE2b
 * keys and are never used as cipher keys. */
static int aead_purpose_ok(vv_key_purpose purpose) { return purpose == VV_KEY_CHUNKS || purpose == VV_KEY_INDEX; }

int vv_aead_seal(const vv_keyring *kr, vv_key_purpose purpose, const unsigned char *ad, size_t ad_len,
                 const unsigned char *in, size_t len, unsigned char nonce[VV_NONCE_BYTES], unsigned char *out) {
  if (kr == NULL || !aead_purpose_ok(purpose) || bad_buf(ad, ad_len) || bad_buf(in, len) || nonce == NULL ||
      out == NULL)
    return VV_E_INVALID;
  if (len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX || overlaps(in, len, out, len + VV_TAG_BYTES) ||
      overlaps(nonce, VV_NONCE_BYTES, out, len + VV_TAG_BYTES))
    return VV_E_INVALID;
  randombytes_buf(nonce, VV_NONCE_BYTES);
  unsigned long long clen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, nonnull_bytes(in), len, ad, ad_len, NULL, nonce,
                                                 subkey(kr, purpose)) != 0 ||
      clen != (unsigned long long)len + VV_TAG_BYTES)
    return VV_E_INTERNAL;
  return VV_OK;
}

int vv_aead_open(const vv_keyring *kr, vv_key_purpose purpose, const unsigned char *ad, size_t ad_len,
                 const unsigned char nonce[VV_NONCE_BYTES], const unsigned char *in, size_t len, unsigned char *out) {
  if (kr == NULL || !aead_purpose_ok(purpose) || bad_buf(ad, ad_len) || nonce == NULL || in == NULL)
    return VV_E_INVALID;
  if (len < VV_TAG_BYTES)
    return VV_E_CORRUPT;
  size_t mlen = len - VV_TAG_BYTES;
  /* In place (out == in) is allowed: libsodium checks the tag over the
   * ciphertext before it decrypts over it. Partial overlap is not. */
  if (bad_buf(out, mlen) || mlen > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX ||
      (out != in && overlaps(in, len, out, mlen)))
    return VV_E_INVALID;
  /* A zero-length plaintext still needs a non-NULL m for libsodium. */
  unsigned char sink[1];
  unsigned long long got = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(mlen ? out : sink, &got, NULL, in, len, ad, ad_len, nonce,
                                                 subkey(kr, purpose)) != 0) {
    if (mlen)
      sodium_memzero(out, mlen); /* no unauthenticated plaintext, whatever the libsodium version */
    return VV_E_CORRUPT;
  }
  return got == mlen ? VV_OK : VV_E_INTERNAL;
}

/* --- bytes ------------------------------------------------------------- */

void vv_random_bytes(unsigned char *out, size_t n) {
  if (out != NULL && n > 0)
    randombytes_buf(out, n);
}

void vv_hex_encode(const unsigned char *in, size_t n, char *out) {
  if (out == NULL || n > (SIZE_MAX - 1) / 2)
    return;
  if (bad_buf(in, n)) {
    out[0] = '\0';
    return;
  }
  sodium_bin2hex(out, 2 * n + 1, nonnull_bytes(in), n); /* lowercase */
}

int vv_hex_decode(const char *in, size_t in_len, unsigned char *out, size_t n) {
  if (bad_buf(in, in_len) || bad_buf(out, n) || n > SIZE_MAX / 2)
    return VV_E_INVALID;
  if (in_len != 2 * n) {
    if (n)
      memset(out, 0, n);
    return VV_E_CORRUPT;
  }
  if (n == 0)
    return VV_OK;
  /* No ignore set and no hex_end: libsodium then fails unless every one of
   * the in_len characters is a hex digit; bin_len pins the output length. */
  size_t bin_len = 0;
  if (sodium_hex2bin(out, n, in, in_len, NULL, &bin_len, NULL) != 0 || bin_len != n) {
    memset(out, 0, n);
    return VV_E_CORRUPT;
  }
  return VV_OK;
}
