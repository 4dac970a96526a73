/*
 * session/manifest.h: the session manifest (manifest.json): what it holds,
 * how it is written, and how a file is checked and parsed.
 *
 * File = {"sum":"<64 hex>","mac":"<64 hex>","body":<body JSON>}\n
 * sum = BLAKE2b-256(body bytes); mac = keyed BLAKE2b-256(manifest subkey,
 * body bytes) when encrypted, 64 zeros otherwise. Both cover the exact body
 * bytes, found at fixed offsets, so they are checked before any parsing.
 */
#ifndef VV_MANIFEST_H
#define VV_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../crypto/crypto.h"
#include "../vecvault.h"
#include "object.h"

#define VV_FORMAT_NAME "vecvault-session"
/* The newest version read and written: 4 is written for a database with
 * filterable fields (their values in the index segments), 3 otherwise, so
 * sessions without them stay readable by older vecvault; 1 to 3 are still
 * read (1 eagerly: it has no codes). */
#define VV_FORMAT_VERSION 4
#define VV_FORMAT_VERSION_PLAIN 3
#define VV_MANIFEST_MAX_BYTES (64u << 20)
#define VV_MANIFEST_PREFIX_BYTES 154u /* {"sum":"…","mac":"…","body": */

typedef enum vv_kdf { VV_KDF_NONE = 0, VV_KDF_RAW = 1, VV_KDF_ARGON2ID = 2 } vv_kdf;

typedef struct vv_mchunk {
  vv_objref ref;
  uint64_t seq;
  uint32_t count;
  uint32_t slot_min, slot_max;
} vv_mchunk;

typedef struct vv_mseg {
  vv_objref ref;
  uint64_t seq;
  uint32_t count;
} vv_mseg;

typedef struct vv_manifest {
  int version;
  unsigned char session_id[VV_SESSION_ID_BYTES];
  uint64_t generation;
  int has_parent;
  unsigned char parent[VV_HASH_BYTES];
  char created_at[32];
  uint32_t dimension;
  vv_metric metric;
  vv_index_kind index;
  uint32_t m, ef_construction, ef_search;
  uint32_t chunk_size;
  uint64_t total_vectors;
  uint64_t slot_count;
  uint32_t entry;   /* UINT32_MAX when the graph is empty */
  int max_level;    /* -1 when the graph is empty */
  uint64_t next_chunk_seq, next_index_seq;
  vv_kdf kdf;       /* VV_KDF_NONE: not encrypted */
  unsigned char salt[VV_SALT_BYTES];
  uint64_t opslimit, memlimit;
  unsigned char wrapped_key[VV_WRAPPED_KEY_BYTES];
  unsigned char key_check[VV_HASH_BYTES];
  vv_mchunk *chunks;
  size_t nchunks;
  vv_mseg *base;
  size_t nbase;
  vv_mseg *deltas;
  size_t ndeltas;
} vv_manifest;

void vv_manifest_free(vv_manifest *m); /* frees the arrays, not m */

/* Finds a chunk of a manifest's list by its seq: the list's positions
 * sorted by seq. The one lookup the save, the load and the lazy reader
 * share. */
typedef struct vv_chunk_index {
  uint64_t *keys; /* (seq << 32) | position, sorted; seqs and positions fit in 32 bits */
  size_t n;
} vv_chunk_index;

/* Indexes chunks[0..n). VV_E_NOMEM, or VV_E_MANIFEST_CORRUPT if a seq does not fit 32 bits. */
VV_NODISCARD int vv_chunk_index_build(vv_chunk_index *x, const vv_mchunk *chunks, size_t n);
/* The position of chunk `seq` in the indexed list, or -1. */
long vv_chunk_index_find(const vv_chunk_index *x, uint64_t seq);
void vv_chunk_index_free(vv_chunk_index *x);

/* The whole file for `m` into `out` (cleared first). `kr` is required when
 * m->kdf != VV_KDF_NONE. */
VV_NODISCARD int vv_manifest_write(const vv_manifest *m, const vv_keyring *kr, vv_buf *out);

/* Checks the frame and the checksum, then parses and validates the body.
 * On success *body / *body_len point into `file`. Errors:
 * VV_E_MANIFEST_CORRUPT, VV_E_UNSUPPORTED_VERSION, VV_E_NOMEM. */
VV_NODISCARD int vv_manifest_parse(const unsigned char *file, size_t len, vv_manifest *out, const unsigned char **body,
                      size_t *body_len, vv_error *err);

/* Checks the mac field against `kr`: VV_OK or VV_E_MANIFEST_AUTH. */
VV_NODISCARD int vv_manifest_check_mac(const unsigned char *file, size_t len, const vv_keyring *kr);

/* BLAKE2b-256 of the whole file (a generation's identity; the next
 * generation's parent). */
void vv_manifest_file_hash(const unsigned char *file, size_t len, unsigned char out[VV_HASH_BYTES]);

#endif
