/*
 * session/lazy.h: vectors of a lazily loaded session, read on demand, a
 * page at a time.
 *
 * A database opened lazily keeps its graph, ids and compact codes in
 * memory and leaves each slot's vector and metadata in the chunk object
 * its `loc` (chunk seq, row) names. In format 3 a chunk is paged
 * (paged.h): the reader fetches the chunk's page table once, then only the
 * pages that hold the rows asked for, each with one positioned read,
 * verified, decoded and checked on its own. Chunks of formats 1 and 2 are
 * read whole, as one page.
 *
 * Pages and page tables live in a byte-bounded cache (cache/cache.h): a
 * private one, or a client of a cache several sessions share.
 *
 * Chunk sources: the chunks of the generation the database is bound to
 * (directory, key ring, chunk list). A save replaces the current source and
 * keeps the one before it, because a reader may still hold a location from
 * before the save's bookkeeping moved it (the old files stay: garbage
 * collection keeps the previous generations' objects).
 *
 * This module knows nothing of the database: what a decoded page must
 * agree with (the ids and locations the owner holds) is the owner's check
 * callback, run on each page as it is loaded, on the loading thread. The
 * owner decides what that callback may read and holds whatever lock that
 * needs around every call here (db/ holds its database lock).
 */
#ifndef VV_LAZY_H
#define VV_LAZY_H

#include <stddef.h>
#include <stdint.h>

#include "../cache/cache.h"
#include "io.h"
#include "manifest.h"

/* A decoded page as the cache holds it: rows first .. first + count - 1 of
 * chunk `seq`. */
typedef struct vv_lpage {
  uint64_t seq;
  uint32_t page, first, count, dim;
  const uint32_t *slots;    /* count */
  const float *vecs;        /* count * dim, 64-byte aligned */
  const uint32_t *meta_off; /* count + 1 offsets into metas (equal: no metadata) */
  const char *metas;
} vv_lpage;

typedef struct vv_lazy vv_lazy;

/* Checks a freshly decoded page against the owner's state: `ids` and
 * `id_lens` are the page's ids by row in the page (NULL id: a waypoint).
 * Returns NULL when the page is acceptable, else what is wrong (a static
 * string) with *bad_row set to the chunk row to blame (or UINT32_MAX). */
typedef const char *(*vv_lazy_check_fn)(void *ctx, const vv_lpage *p, const char *const *ids,
                                         const uint32_t *id_lens, uint32_t *bad_row);

/* Creates the reader for the chunks (of `dim` floats a row) of manifest `m`
 * in `dir`, read with a clone of `kr` (NULL: unencrypted); `check` (or
 * NULL) vets each page as it is loaded. With `shared` NULL the reader has a
 * private cache of `capacity` bytes; otherwise it is a client of `shared`,
 * holding at most `capacity` bytes of it when `capped`, else no own cap. */
VV_NODISCARD int vv_lazy_create(uint32_t dim, vv_lazy_check_fn check, void *check_ctx, const vv_io *io,
                                const char *dir, const vv_manifest *m, const vv_keyring *kr, vv_cache *shared,
                                size_t capacity, int capped, vv_lazy **out);
void vv_lazy_free(vv_lazy *lz);

/* After a save committed manifest `m` in `dir`: its chunks become current. */
VV_NODISCARD int vv_lazy_rebind(vv_lazy *lz, const vv_io *io, const char *dir, const vv_manifest *m,
                                const vv_keyring *kr);

/* A refresh: `to` (a newer generation of the same session) takes over the
 * cache of `from`, whose cached pages and tables of the chunks both share
 * stay valid (a chunk's seq names one object for the whole history of a
 * session; if two objects ever share a seq, nothing is kept). `from` gets
 * `to`'s empty cache. The owner excludes every other call on both. */
void vv_lazy_adopt(vv_lazy *to, vv_lazy *from);
/* The page of chunk `seq` that holds `row`, and how many pages it has
 * (reads the chunk's page table unless cached). */
VV_NODISCARD int vv_lazy_locate(vv_lazy *lz, uint64_t seq, uint32_t row, uint32_t *page, uint32_t *npages);

/* Pins page `page` of chunk `seq` (loading it if needed).
 * VV_E_CHUNK_MISSING, VV_E_CHUNK_CORRUPT, VV_E_NOMEM, VV_E_IO. */
VV_NODISCARD int vv_lazy_page(vv_lazy *lz, uint64_t seq, uint32_t page, const vv_lpage **out, vv_cache_ref **ref);
/* The same only if it is cached: VV_MISS (common/status.h) otherwise. */
VV_NODISCARD int vv_lazy_peek(vv_lazy *lz, uint64_t seq, uint32_t page, const vv_lpage **out, vv_cache_ref **ref);
void vv_lazy_unpin(vv_lazy *lz, vv_cache_ref *ref);
/* After a read of chunk `seq` (page `page`, or UINT32_MAX for its table)
 * failed with `status`: fills `err` (unless NULL or already filled, so the
 * first of several failures wins) with which object failed and why: the
 * chunk object's name, its seq, the page and the check that failed, as
 * recorded when it was read. Thread-safe. */
void vv_lazy_explain(vv_lazy *lz, uint64_t seq, uint32_t page, int status, vv_error *err);

/* Is the current source an object store (io.h, VV_IO_OBJECT_STORE)? Its
 * reads wait on a network: worth many in flight. */
int vv_lazy_remote(vv_lazy *lz);
/* A malloc'd copy of the current source's chunk seqs, in manifest order. */
VV_NODISCARD int vv_lazy_chunk_list(vv_lazy *lz, uint64_t **seqs, size_t *n);

/* The reader's own bound (its private cache's, or its cap in a shared one). */
void vv_lazy_set_capacity(vv_lazy *lz, size_t capacity);
/* The public view (vecvault.h), lazy = 1: this reader's share. */
void vv_lazy_get_stats(vv_lazy *lz, vv_cache_info *out);

/* Row `row` (of the chunk) of a pinned page that holds it. */
static inline const float *vv_lpage_vec(const vv_lpage *p, uint32_t row) {
  return p->vecs + (size_t)(row - p->first) * p->dim;
}
static inline const char *vv_lpage_meta(const vv_lpage *p, uint32_t row, uint32_t *len) {
  uint32_t i = row - p->first;
  *len = p->meta_off[i + 1] - p->meta_off[i];
  return *len ? p->metas + p->meta_off[i] : NULL;
}

#endif
