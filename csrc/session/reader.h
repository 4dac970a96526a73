/*
 * session/reader.h: opening a session directory for reading, the
 * storage-format half of a load (the database's half, applying what was
 * read, is db/load.c), and reading a manifest without a key.
 *
 * Order of checks, each before anything later may trust the bytes: the
 * manifest's frame and checksum; its schema and version; the key (derived
 * or unwrapped, then compared with keyCheck); the manifest MAC; the
 * generation against the caller's minimum. Objects are then read one by
 * one with vv_object_read_into (object.h), which checks size, hash and tag
 * before anything is decoded.
 */
#ifndef VV_SESSION_READER_H
#define VV_SESSION_READER_H

#include <stddef.h>

#include "../crypto/crypto.h"
#include "../vecvault.h"
#include "io.h"
#include "manifest.h"
#include "object.h"

/* A session opened for reading. */
typedef struct vv_sreader {
  vv_sctx sc;           /* I/O table, paths, key ring and session id for opening objects */
  vv_manifest m;        /* parsed, authenticated */
  vv_keyring *kr;       /* the data key ring (NULL: a plaintext session); owned */
  unsigned char *file;  /* manifest.json as read; owned */
  size_t len;
} vv_sreader;

/* Opens `dir` (io NULL = POSIX) with the key or passphrase of `o`,
 * refusing a generation below o->min_generation (VV_E_ROLLBACK) before any
 * object is read. Errors: VV_E_NOT_FOUND (no manifest.json), the
 * manifest's and the key's errors (secrets.h), VV_E_IO. Close `r`
 * whatever this returns. */
VV_NODISCARD int vv_sreader_open(vv_sreader *r, const vv_io *io, const char *dir, const vv_load_opts *o,
                                 vv_error *err);
/* The same, opened with a data key ring already known (`has_known`; a NULL
 * ring = plaintext) instead of o's key or passphrase. */
VV_NODISCARD int vv_sreader_open_known(vv_sreader *r, const vv_io *io, const char *dir, const vv_load_opts *o,
                                       int has_known, const vv_keyring *known, vv_error *err);

/* Hands the key ring to the caller (r then no longer frees it). */
vv_keyring *vv_sreader_take_keyring(vv_sreader *r);

void vv_sreader_close(vv_sreader *r);

#endif
