/*
 * cache/cache.h: a byte-bounded LRU cache of decoded chunks, for sessions
 * loaded lazily. Thread-safe.
 *
 * - Bounded in bytes, not entries: the bytes of cached values never exceed
 *   the capacity. When pinned values leave no room for a new one, the new
 *   value is handed to its caller uncached (and dropped on unpin), so the
 *   bound holds and nobody waits on somebody else's pin.
 * - Single flight: concurrent gets of a missing key load it once; the
 *   others wait for that load and share its result (or its error).
 * - Pinning: a value returned by vv_cache_get is not freed until the caller
 *   calls vv_cache_unpin, even if it is evicted meanwhile.
 *
 * The loader and dropper run without the cache lock held.
 */
#ifndef VV_CACHE_H
#define VV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../vecvault.h"

typedef struct vv_cache vv_cache;
typedef struct vv_cache_ref vv_cache_ref; /* one pin */

/* Produces the value for `key` and its size in bytes; returns a status. */
typedef int (*vv_cache_load_fn)(void *ctx, uint64_t key, void **value, size_t *bytes);
/* Frees a value the loader produced. */
typedef void (*vv_cache_drop_fn)(void *ctx, void *value);

typedef struct vv_cache_stats {
  uint64_t hits;         /* gets served from memory (including shared loads) */
  uint64_t misses;       /* loads performed */
  uint64_t evictions;    /* values removed to make room or by a smaller capacity */
  uint64_t bypasses;     /* values handed out uncached for lack of unpinned room */
  uint64_t bytes;        /* bytes of values cached now */
  uint64_t capacity;     /* the bound */
  uint64_t entries;      /* values cached now */
  uint64_t bytes_loaded; /* total bytes produced by the loader */
} vv_cache_stats;

VV_NODISCARD int vv_cache_create(size_t capacity, vv_cache_load_fn load, vv_cache_drop_fn drop, void *ctx,
                                 vv_cache **out);
/* Frees every cached value. No pins may be outstanding. NULL is a no-op. */
void vv_cache_free(vv_cache *c);

/* Pins the value for `key`, loading it if needed. On VV_OK, *value stays
 * valid until vv_cache_unpin(c, *ref). A load error is returned to every
 * caller waiting on that load, and nothing is cached. */
VV_NODISCARD int vv_cache_get(vv_cache *c, uint64_t key, void **value, vv_cache_ref **ref);
void vv_cache_unpin(vv_cache *c, vv_cache_ref *ref);
/* Like vv_cache_get, but only if the value is in memory and ready:
 * VV_MISS (common/status.h; nothing counted) otherwise. Never loads or waits. */
VV_NODISCARD int vv_cache_peek(vv_cache *c, uint64_t key, void **value, vv_cache_ref **ref);

/* Changes the bound, evicting unpinned values as needed (pinned ones go
 * when unpinned). */
void vv_cache_set_capacity(vv_cache *c, size_t capacity);
/* Evicts every unpinned value. */
void vv_cache_clear(vv_cache *c);
void vv_cache_get_stats(vv_cache *c, vv_cache_stats *out);

#endif
