/*
 * session/object.h: immutable, content-addressed session objects.
 *
 * An object file is a 24-byte header, then either the plaintext or (when
 * encrypted) a 24-byte nonce and the XChaCha20-Poly1305 ciphertext+tag.
 * Its name is the hex BLAKE2b-256 of the whole file. The AEAD associated
 * data is the header plus the session id, binding each ciphertext to the
 * format version, its kind, its sequence number, its length and its
 * session. Layout in docs/FORMAT.md.
 *
 * Reading verifies, in order and before any decoding: the size the
 * manifest recorded, the hash (= the name), the header fields, the tag.
 */
#ifndef VV_OBJECT_H
#define VV_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#include "../crypto/crypto.h"
#include "../common/buf.h"
#include "io.h"

#define VV_OBJ_MAGIC "VVOB"
#define VV_OBJ_VERSION 1
#define VV_OBJ_HEADER_BYTES 24u
#define VV_OBJ_KIND_CHUNK 1
#define VV_OBJ_KIND_INDEX 2
#define VV_OBJ_FLAG_ENCRYPTED 1

/* What a session operation needs to read or write objects. */
typedef struct vv_sctx {
  const vv_io *io;
  const char *dir;      /* session directory */
  char *objdir;         /* <dir>/objects (owned) */
  const vv_keyring *kr; /* NULL: not encrypted */
  unsigned char session_id[VV_SESSION_ID_BYTES];
} vv_sctx;

typedef struct vv_objref {
  char name[2 * VV_HASH_BYTES + 1];
  uint64_t bytes;
} vv_objref;

VV_NODISCARD int vv_sctx_init(vv_sctx *sc, const vv_io *io, const char *dir);
void vv_sctx_destroy(vv_sctx *sc);
/* <objdir>/<name> into a malloc'd string, or NULL. */
char *vv_object_path(const vv_sctx *sc, const char *name);

/* Seals and durably writes one object (the objects directory is fsynced
 * separately). `scratch` is reused between calls to avoid reallocation. */
VV_NODISCARD int vv_object_write(const vv_sctx *sc, int kind, uint64_t seq, const unsigned char *plain, size_t len,
                    vv_buf *scratch, vv_objref *out, vv_error *err);

/* Reads, verifies and opens one object inside `file` (a reusable buffer;
 * decryption happens in place): *plain points into it. VV_E_CHUNK_MISSING
 * or VV_E_CHUNK_CORRUPT (err names the object). */
VV_NODISCARD int vv_object_read_into(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, vv_buf *file,
                        const unsigned char **plain, size_t *len, vv_error *err);

/* The same into a malloc'd plaintext buffer the caller frees. */
VV_NODISCARD int vv_object_read(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, unsigned char **plain,
                   size_t *len, vv_error *err);

#endif
