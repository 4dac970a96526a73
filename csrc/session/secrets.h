/*
 * session/secrets.h: turning a key or passphrase into the key ring a
 * session is sealed with, and opening a session's key ring at load. The
 * owner (db/) serialises access to a vv_secrets.
 */
#ifndef VV_SECRETS_H
#define VV_SECRETS_H

#include "../crypto/crypto.h"
#include "../vecvault.h"
#include "manifest.h"

/* Encryption settings for saves. */
typedef struct vv_secrets {
  int encrypt;      /* encryptAtRest */
  vv_kdf kdf;       /* VV_KDF_RAW (key) or VV_KDF_ARGON2ID (passphrase); NONE = no secret given */
  vv_keyring *kr;   /* data key ring: from the key, or unwrapped/created for a passphrase */
  char *pass;       /* sodium_malloc'd passphrase copy (argon2id only) */
  size_t pass_len;
  /* For a passphrase: the parameters kr was wrapped with, valid when has_wrap. */
  int has_wrap;
  unsigned char wrap_session[VV_SESSION_ID_BYTES];
  unsigned char salt[VV_SALT_BYTES];
  uint64_t opslimit, memlimit;
  unsigned char wrapped_key[VV_WRAPPED_KEY_BYTES];
} vv_secrets;

/* Replaces `s` with the given secret (copied; wiped by vv_secrets_clear).
 * VV_E_INVALID for both a key and a passphrase. */
VV_NODISCARD int vv_secrets_set(vv_secrets *s, int encrypt, const unsigned char *key, const char *pass,
                                size_t pass_len);
/* Wipes and frees what `s` holds. */
void vv_secrets_clear(vv_secrets *s);

/* Makes s->kr ready for sealing objects of `session_id` and fills
 * the manifest's encryption fields (kdf, salt, limits, wrapped key, key
 * check). VV_E_KEY_REQUIRED when encryption is on and no secret was given.
 * A passphrase is stretched (Argon2id) only when no wrapped key for this
 * session exists yet. Leaves m->kdf = VV_KDF_NONE when not encrypting. */
VV_NODISCARD int vv_secrets_for_save(vv_secrets *s, const unsigned char session_id[VV_SESSION_ID_BYTES],
                                     vv_manifest *m, vv_error *err);

/* For a parsed manifest: derives or unwraps the data key ring from the
 * caller's key or passphrase and checks it against keyCheck. Errors:
 * VV_E_KEY_REQUIRED, VV_E_WRONG_KEY, VV_E_MANIFEST_AUTH (a key was given
 * for an unencrypted session: refused as a possible downgrade). */
VV_NODISCARD int vv_secrets_for_load(const vv_manifest *m, const vv_load_opts *o, vv_keyring **kr_out,
                                     vv_error *err);
/* The same with a data key ring already known (a refresh), cloned and
 * checked against keyCheck; `known` NULL = a plaintext session expected. */
VV_NODISCARD int vv_secrets_for_load_known(const vv_manifest *m, const vv_keyring *known, vv_keyring **kr_out,
                                           vv_error *err);

#endif
