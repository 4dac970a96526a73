/*
 * session/lazy.h: vectors of a lazily loaded session, read on demand.
 *
 * A database opened lazily keeps its graph, ids and PQ codes in memory and
 * leaves each slot's vector and metadata in the chunk object its `loc`
 * names. Chunks are read, authenticated, decoded and validated when a
 * search, get or save first needs them, and kept in a byte-bounded LRU
 * cache (cache/cache.h) shared by all readers.
 *
 * Chunk sources: the chunks of the generation the database is bound to
 * (directory, key ring, chunk list). A save replaces the current source and
 * keeps the one before it, because a reader may still hold a location from
 * before the save's bookkeeping moved it (the old files stay: garbage
 * collection keeps the previous generations' objects).
 *
 * This module knows nothing of the database: what a decoded chunk must
 * agree with (the ids and locations the owner holds) is the owner's check
 * callback, run on each chunk as it is loaded, on the loading thread. The
 * owner decides what that callback may read and holds whatever lock that
 * needs around every call here (db/ holds its database lock).
 *
 * Decoded chunks live in blocks this module maps itself (common/bigmem.h),
 * so their coming and going leaves the host's malloc alone.
 */
#ifndef VV_LAZY_H
#define VV_LAZY_H

#include <stddef.h>
#include <stdint.h>

#include "../cache/cache.h"
#include "io.h"
#include "manifest.h"


/* A decoded chunk as the cache holds it. */
typedef struct vv_lchunk {
  uint64_t seq;
  uint32_t count, dim;
  const uint32_t *slots; /* count */
  const float *vecs;     /* count * dim, 64-byte aligned */
  const uint32_t *meta_off; /* count + 1 offsets into metas (equal: no metadata) */
  const char *metas;
} vv_lchunk;

typedef struct vv_lazy vv_lazy;

/* Checks a freshly decoded chunk against the owner's state: `ids` and
 * `id_lens` are the chunk's ids by row (NULL id: a waypoint). Returns NULL
 * when the chunk is acceptable, else what is wrong (a static string) with
 * *bad_row set to the row to blame (or left at UINT32_MAX). */
typedef const char *(*vv_lazy_check_fn)(void *ctx, const vv_lchunk *c, const char *const *ids,
                                         const uint32_t *id_lens, uint32_t *bad_row);


/* Creates the reader for the chunks (of `dim` floats a row) of manifest `m`
 * in `dir`, read with a clone of `kr` (NULL: unencrypted), caching at most
 * `capacity` bytes; `check` (or NULL) vets each chunk as it is loaded. */
VV_NODISCARD int vv_lazy_create(uint32_t dim, vv_lazy_check_fn check, void *check_ctx, const vv_io *io,
                                const char *dir, const vv_manifest *m, const vv_keyring *kr, size_t capacity,
                                vv_lazy **out);
void vv_lazy_free(vv_lazy *lz);

/* After a save committed manifest `m` in `dir`: its chunks become current. */
VV_NODISCARD int vv_lazy_rebind(vv_lazy *lz, const vv_io *io, const char *dir, const vv_manifest *m,
                                const vv_keyring *kr);

/* Pins chunk `seq` (loading it if needed). VV_E_CHUNK_MISSING,
 * VV_E_CHUNK_CORRUPT, VV_E_NOMEM, VV_E_IO. */
VV_NODISCARD int vv_lazy_chunk(vv_lazy *lz, uint64_t seq, const vv_lchunk **out, vv_cache_ref **ref);
void vv_lazy_unpin(vv_lazy *lz, vv_cache_ref *ref);
/* After vv_lazy_chunk(lz, seq) failed with `status`: fills `err` (unless
 * NULL or already filled, so the first of several failures wins) with
 * which object failed and why: the chunk object's name, its seq and the
 * check that failed, as recorded when it was read. Thread-safe. */
void vv_lazy_explain(vv_lazy *lz, uint64_t seq, int status, vv_error *err);
/* Pins chunk `seq` only if it is cached: VV_MISS (common/status.h) otherwise. */
VV_NODISCARD int vv_lazy_peek(vv_lazy *lz, uint64_t seq, const vv_lchunk **out, vv_cache_ref **ref);

/* A malloc'd copy of the current source's chunk seqs, in manifest order. */
VV_NODISCARD int vv_lazy_chunk_list(vv_lazy *lz, uint64_t **seqs, size_t *n);

void vv_lazy_set_capacity(vv_lazy *lz, size_t capacity);
/* The public view (vecvault.h), lazy = 1. */
void vv_lazy_get_stats(vv_lazy *lz, vv_cache_info *out);

/* One row of a pinned chunk. */
static inline const float *vv_lchunk_vec(const vv_lchunk *c, uint32_t row) {
  return c->vecs + (size_t)row * c->dim;
}
static inline const char *vv_lchunk_meta(const vv_lchunk *c, uint32_t row, uint32_t *len) {
  *len = c->meta_off[row + 1] - c->meta_off[row];
  return *len ? c->metas + c->meta_off[row] : NULL;
}

#endif
