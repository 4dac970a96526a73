/*
 * db/db_internal.h: the inside of vv_db, shared by db/ and session/ only.
 * Everything else sees the opaque handle in vecvault.h.
 */
#ifndef VV_DB_INTERNAL_H
#define VV_DB_INTERNAL_H

#include <pthread.h>

#include "../crypto/crypto.h"
#include "../distance/distance.h"
#include "../hnsw/hnsw.h"
#include "../session/manifest.h"
#include "../store/store.h"
#include "../vecvault.h"

/* What the database remembers of the session it was last saved to or
 * loaded from, so the next save there can be incremental. */
typedef struct vv_bound {
  int bound;
  char *dir;                                  /* as the caller spelled it */
  unsigned char manifest_hash[VV_HASH_BYTES]; /* of the manifest.json we wrote or read */
  vv_manifest m;                              /* that manifest */
} vv_bound;

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

struct vv_db {
  vv_config cfg;
  pthread_rwlock_t lock;
  vv_store store;
  vv_hnsw *hnsw; /* NULL for the flat index */
  vv_dist_fn kern;
  float sign;
  pthread_mutex_t save_mu; /* one save at a time */
  _Atomic uint64_t mem_estimate; /* bytes, refreshed whenever storage grows */
  vv_secrets secrets;
  vv_bound session;
  int has_session_id;
  unsigned char session_id[VV_SESSION_ID_BYTES];
};

/* Recomputes mem_estimate from the arenas' capacity. */
void vv_db_refresh_memory(vv_db *db);

#endif
