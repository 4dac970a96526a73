/*
 * crypto/crypto.h: the libsodium wrappers a session needs: the key ring
 * (master key and per-purpose subkeys in guarded memory), the AEAD envelope
 * for objects, the manifest MAC, key checking, BLAKE2b object names, and
 * passphrase-based key wrapping (Argon2id).
 *
 * Keys never leave sodium_malloc'd memory except as inputs to libsodium;
 * vv_keyring_free wipes them. Nothing here logs or formats key material.
 * All functions return VV_OK or a negative VV_E_* status.
 */
#ifndef VV_CRYPTO_H
#define VV_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"

#define VV_KEY_BYTES 32u
#define VV_HASH_BYTES 32u        /* BLAKE2b-256 */
#define VV_NONCE_BYTES 24u       /* XChaCha20-Poly1305-IETF */
#define VV_TAG_BYTES 16u
#define VV_SALT_BYTES 16u        /* crypto_pwhash_SALTBYTES */
#define VV_SESSION_ID_BYTES 16u
/* A wrapped data key: nonce || ciphertext(32) || tag */
#define VV_WRAPPED_KEY_BYTES (VV_NONCE_BYTES + VV_KEY_BYTES + VV_TAG_BYTES)

/* Subkey purposes (crypto_kdf ids; context "vvsessn1"). */
typedef enum vv_key_purpose {
  VV_KEY_CHUNKS = 1,
  VV_KEY_INDEX = 2,
  VV_KEY_MANIFEST = 3,
  VV_KEY_CHECK = 4
} vv_key_purpose;

/* Upper bounds accepted for Argon2id limits read from a file, so a hostile
 * manifest cannot make a load take unbounded time or memory. */
#define VV_PWHASH_MAX_OPSLIMIT 16ull
#define VV_PWHASH_MAX_MEMLIMIT (1024ull * 1024 * 1024)

typedef struct vv_keyring vv_keyring; /* opaque; lives in guarded memory */

/* Must be called once before anything else here (idempotent, thread-safe).
 * The key ring constructors also call it, since sodium_malloc needs it. */
VV_NODISCARD int vv_crypto_init(void);

/* A key ring for the 32-byte master key `key` (copied). */
VV_NODISCARD int vv_keyring_create(const unsigned char key[VV_KEY_BYTES], vv_keyring **out);
/* A key ring with a fresh random master key. */
VV_NODISCARD int vv_keyring_random(vv_keyring **out);
/* An independent copy (its own guarded memory) of a key ring. */
VV_NODISCARD int vv_keyring_clone(const vv_keyring *src, vv_keyring **out);
/* Wipes and frees; NULL is a no-op. */
void vv_keyring_free(vv_keyring *kr);

/* Argon2id13 (crypto_pwhash_ALG_ARGON2ID13) key-encryption key from a
 * passphrase; the limits are checked against the caps above (VV_E_INVALID). */
VV_NODISCARD int vv_kek_from_passphrase(const char *pass, size_t pass_len, const unsigned char salt[VV_SALT_BYTES],
                                        uint64_t opslimit, uint64_t memlimit, vv_keyring **kek_out);
/* Default Argon2id limits for new sessions (libsodium's INTERACTIVE ones). */
uint64_t vv_pwhash_default_opslimit(void);
uint64_t vv_pwhash_default_memlimit(void);

/* Wrap the master key of `data` with the master key of `kek`:
 * out = nonce || AEAD(kek, data key, ad = "vecvault-key-wrap" || session_id). */
VV_NODISCARD int vv_key_wrap(const vv_keyring *kek, const vv_keyring *data,
                             const unsigned char session_id[VV_SESSION_ID_BYTES],
                             unsigned char out[VV_WRAPPED_KEY_BYTES]);
/* Inverse of vv_key_wrap; VV_E_WRONG_KEY if authentication fails. */
VV_NODISCARD int vv_key_unwrap(const vv_keyring *kek, const unsigned char session_id[VV_SESSION_ID_BYTES],
                               const unsigned char in[VV_WRAPPED_KEY_BYTES], vv_keyring **data_out);

/* Key check value: BLAKE2b-256 keyed with the VV_KEY_CHECK subkey over
 * "vecvault key check v1" || session_id. */
VV_NODISCARD int vv_key_check(const vv_keyring *kr, const unsigned char session_id[VV_SESSION_ID_BYTES],
                              unsigned char out[VV_HASH_BYTES]);
/* Constant-time comparison (sodium_memcmp); 0 if equal, -1 otherwise.
 * n == 0 compares equal; a NULL side with n > 0 compares unequal. */
int vv_ct_compare(const unsigned char *a, const unsigned char *b, size_t n);

/* Manifest MAC: BLAKE2b-256 keyed with the VV_KEY_MANIFEST subkey. */
VV_NODISCARD int vv_manifest_mac(const vv_keyring *kr, const unsigned char *body, size_t len,
                                 unsigned char out[VV_HASH_BYTES]);
/* Unkeyed BLAKE2b-256 (object names, manifest checksum). These cannot fail:
 * a NULL data pointer is allowed with length 0; with a non-zero length it is
 * a caller bug and yields an all-zero digest (vv_hash) or is ignored
 * (vv_hash_update). NULL out or state makes the call a no-op. */
void vv_hash(const unsigned char *data, size_t len, unsigned char out[VV_HASH_BYTES]);
/* Unkeyed BLAKE2b with a 16-byte digest: the check of one page of an
 * unencrypted paged object (the same rules as vv_hash). */
#define VV_HASH16_BYTES 16u
void vv_hash16(const unsigned char *data, size_t len, unsigned char out[VV_HASH16_BYTES]);
/* Incremental unkeyed BLAKE2b-256, for hashing a file while streaming. */
typedef struct vv_hash_state {
  unsigned char opaque[384] __attribute__((aligned(64)));
} vv_hash_state;
void vv_hash_init(vv_hash_state *st);
void vv_hash_update(vv_hash_state *st, const unsigned char *data, size_t len);
void vv_hash_final(vv_hash_state *st, unsigned char out[VV_HASH_BYTES]);

/* AEAD with the subkey for `purpose` (VV_KEY_CHUNKS or VV_KEY_INDEX only: the
 * MAC and key-check subkeys are never cipher keys; others are VV_E_INVALID).
 * seal writes nonce (fresh random) to `nonce` and len + VV_TAG_BYTES bytes
 * (ciphertext || tag) to `out`, which may not overlap `in` or `nonce`.
 * open writes len - VV_TAG_BYTES bytes to `out` (either exactly `in`, for in-place
 * decryption, or not overlapping it);
 * it returns VV_E_CORRUPT if len < VV_TAG_BYTES or the tag does not verify.
 * `ad` and `in`/`out` may be NULL when their length is 0. */
VV_NODISCARD int vv_aead_seal(const vv_keyring *kr, vv_key_purpose purpose, const unsigned char *ad, size_t ad_len,
                              const unsigned char *in, size_t len, unsigned char nonce[VV_NONCE_BYTES],
                              unsigned char *out);
VV_NODISCARD int vv_aead_open(const vv_keyring *kr, vv_key_purpose purpose, const unsigned char *ad, size_t ad_len,
                              const unsigned char nonce[VV_NONCE_BYTES], const unsigned char *in, size_t len,
                              unsigned char *out);

/* Cryptographically random bytes (session ids, salts); NULL out is a no-op. */
void vv_random_bytes(unsigned char *out, size_t n);

/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated); parse
 * exactly 2n hex digits of either case into n bytes (in_len != 2n, or any
 * other character, NUL included, is VV_E_CORRUPT, and out is then zeroed). */
void vv_hex_encode(const unsigned char *in, size_t n, char *out);
VV_NODISCARD int vv_hex_decode(const char *in, size_t in_len, unsigned char *out, size_t n);

#endif
