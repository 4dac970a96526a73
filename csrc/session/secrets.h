/*
 * session/secrets.h: turning a database's key or passphrase into the key
 * ring a session is sealed with, and opening a session's key ring at load.
 */
#ifndef VV_SECRETS_H
#define VV_SECRETS_H

#include "../db/db_internal.h"

/* Makes db->secrets.kr ready for sealing objects of `session_id` and fills
 * the manifest's encryption fields (kdf, salt, limits, wrapped key, key
 * check). VV_E_KEY_REQUIRED when encryption is on and no secret was given.
 * A passphrase is stretched (Argon2id) only when no wrapped key for this
 * session exists yet. Leaves m->kdf = VV_KDF_NONE when not encrypting. */
int vv_secrets_for_save(vv_db *db, const unsigned char session_id[VV_SESSION_ID_BYTES], vv_manifest *m,
                        vv_error *err);

/* For a parsed manifest: derives or unwraps the data key ring from the
 * caller's key or passphrase and checks it against keyCheck. Errors:
 * VV_E_KEY_REQUIRED, VV_E_WRONG_KEY, VV_E_MANIFEST_AUTH (a key was given
 * for an unencrypted session: refused as a possible downgrade). */
int vv_secrets_for_load(const vv_manifest *m, const vv_load_opts *o, vv_keyring **kr_out, vv_error *err);

#endif
