/*
 * session/secrets.c: key handling for saves and loads (see secrets.h).
 */
#include "secrets.h"

#include <stdio.h>
#include <string.h>

#include "../crypto/secret.h"

static int say(vv_error *err, int rc, const char *msg) {
  if (err) snprintf(err->message, sizeof err->message, "%s", msg);
  return rc;
}

int vv_secrets_set(vv_secrets *s, int encrypt, const unsigned char *key, const char *pass, size_t pass_len) {
  if (key && pass) return VV_E_INVALID;
  int rc = vv_crypto_init();
  if (rc) return rc;
  vv_keyring *kr = NULL;
  char *copy = NULL;
  if (key && (rc = vv_keyring_create(key, &kr)) != VV_OK) return rc;
  if (pass && !(copy = vv_secret_dup(pass, pass_len))) {
    vv_keyring_free(kr);
    return VV_E_NOMEM;
  }
  vv_secrets_clear(s);
  s->encrypt = encrypt != 0;
  s->kr = kr;
  s->pass = copy;
  s->pass_len = copy ? pass_len : 0;
  s->kdf = key ? VV_KDF_RAW : pass ? VV_KDF_ARGON2ID : VV_KDF_NONE;
  return VV_OK;
}

void vv_secrets_clear(vv_secrets *s) {
  vv_keyring_free(s->kr);
  vv_secret_free(s->pass);
  memset(s, 0, sizeof *s);
}

int vv_secrets_for_save(vv_secrets *s, const unsigned char session_id[VV_SESSION_ID_BYTES], vv_manifest *m,
                        vv_error *err) {
  m->kdf = VV_KDF_NONE;
  if (!s->encrypt) return VV_OK;
  if (s->kdf == VV_KDF_NONE)
    return say(err, VV_E_KEY_REQUIRED,
               "encryptAtRest is on but no key was given: pass `key` (a 32-byte Uint8Array) or `passphrase` to "
               "new VectorDB(...) / VectorDB.load(...), or set encryptAtRest: false to save unencrypted");
  int rc;
  if (s->kdf == VV_KDF_ARGON2ID && !(s->has_wrap && !memcmp(s->wrap_session, session_id, VV_SESSION_ID_BYTES))) {
    /* First save of this session with a passphrase: a random data key,
     * wrapped by a key stretched from the passphrase, so the passphrase can
     * later change without re-encrypting any object. */
    vv_keyring *data = s->kr, *kek = NULL;
    if (!data && (rc = vv_keyring_random(&data)) != VV_OK) return rc;
    unsigned char salt[VV_SALT_BYTES];
    vv_random_bytes(salt, sizeof salt);
    uint64_t ops = vv_pwhash_default_opslimit(), mem = vv_pwhash_default_memlimit();
    rc = vv_kek_from_passphrase(s->pass, s->pass_len, salt, ops, mem, &kek);
    if (!rc) rc = vv_key_wrap(kek, data, session_id, s->wrapped_key);
    vv_keyring_free(kek);
    if (rc) {
      if (data != s->kr) vv_keyring_free(data);
      return rc;
    }
    s->kr = data;
    memcpy(s->salt, salt, sizeof salt);
    s->opslimit = ops;
    s->memlimit = mem;
    memcpy(s->wrap_session, session_id, VV_SESSION_ID_BYTES);
    s->has_wrap = 1;
  }
  m->kdf = s->kdf;
  if (s->kdf == VV_KDF_ARGON2ID) {
    memcpy(m->salt, s->salt, VV_SALT_BYTES);
    m->opslimit = s->opslimit;
    m->memlimit = s->memlimit;
    memcpy(m->wrapped_key, s->wrapped_key, VV_WRAPPED_KEY_BYTES);
  }
  return vv_key_check(s->kr, session_id, m->key_check);
}

static int check_ring(const vv_manifest *m, vv_keyring *kr, vv_keyring **kr_out, vv_error *err);

int vv_secrets_for_load(const vv_manifest *m, const vv_load_opts *o, vv_keyring **kr_out, vv_error *err) {
  *kr_out = NULL;
  int have = (o->key != NULL) || (o->pass != NULL);
  if (m->kdf == VV_KDF_NONE) {
    if (have)
      return say(err, VV_E_MANIFEST_AUTH,
                 "a key was given but this session is not encrypted: refusing it as a possible downgrade "
                 "(load it without a key if it was saved with encryptAtRest: false)");
    return VV_OK;
  }
  if (!have)
    return say(err, VV_E_KEY_REQUIRED, "this session is encrypted: pass `key` or `passphrase` to VectorDB.load");
  int rc = vv_crypto_init();
  if (rc) return rc;
  vv_keyring *kr = NULL;
  if (m->kdf == VV_KDF_RAW) {
    if (!o->key) return say(err, VV_E_WRONG_KEY, "this session was saved with a raw key, not a passphrase");
    rc = vv_keyring_create(o->key, &kr);
  } else {
    if (!o->pass) return say(err, VV_E_WRONG_KEY, "this session was saved with a passphrase, not a raw key");
    vv_keyring *kek = NULL;
    rc = vv_kek_from_passphrase(o->pass, o->pass_len, m->salt, m->opslimit, m->memlimit, &kek);
    if (rc == VV_E_INVALID) return say(err, VV_E_MANIFEST_CORRUPT, "manifest passphrase parameters are out of range");
    if (!rc) {
      rc = vv_key_unwrap(kek, m->session_id, m->wrapped_key, &kr);
      vv_keyring_free(kek);
      if (rc == VV_E_WRONG_KEY) return say(err, rc, "wrong passphrase for this session");
    }
  }
  if (rc) return rc;
  return check_ring(m, kr, kr_out, err);
}

int vv_secrets_for_load_known(const vv_manifest *m, const vv_keyring *known, vv_keyring **kr_out, vv_error *err) {
  *kr_out = NULL;
  if ((m->kdf == VV_KDF_NONE) != (known == NULL))
    return say(err, VV_E_WRONG_KEY, known ? "the session is no longer encrypted: refusing it as a possible downgrade"
                                          : "the session is now encrypted");
  if (!known) return VV_OK;
  vv_keyring *kr = NULL;
  int rc = vv_keyring_clone(known, &kr);
  if (rc) return rc;
  return check_ring(m, kr, kr_out, err);
}

/* Checks `kr` (taken over) against the manifest's keyCheck. */
static int check_ring(const vv_manifest *m, vv_keyring *kr, vv_keyring **kr_out, vv_error *err) {
  unsigned char check[VV_HASH_BYTES];
  int rc = vv_key_check(kr, m->session_id, check);
  if (!rc && vv_ct_compare(check, m->key_check, VV_HASH_BYTES) != 0)
    rc = say(err, VV_E_WRONG_KEY, "wrong key for this session (the key check does not match)");
  if (rc) {
    vv_keyring_free(kr);
    return rc;
  }
  *kr_out = kr;
  return VV_OK;
}
