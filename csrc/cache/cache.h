/*
 * cache/cache.h: a byte-bounded LRU cache of decoded values (chunks or
 * pages) that several lazily loaded sessions can share. Thread-safe.
 *
 * A vv_cache is the budget: one byte bound over every value it holds. Each
 * user of it (one lazy session) is a vv_cache_client with its own loader,
 * dropper and context, and optionally its own cap. Keys are the client's:
 * an entry is named by (client, key), so two clients never see each
 * other's values.
 *
 * - Bounded in bytes, not entries: the bytes of cached values never exceed
 *   the shared capacity, and a client's never exceed its cap. When pinned
 *   values leave no room for a new one, the new value is handed to its
 *   caller uncached (a bypass, dropped on unpin), so the bounds hold and
 *   nobody waits on somebody else's pin.
 * - Single flight: concurrent gets of a missing (client, key) load it
 *   once; the others wait for that load and share its result (or error).
 * - Pinning: a value returned by vv_cache_get is not freed until the caller
 *   calls vv_cache_unpin, even if it is evicted meanwhile.
 *
 * Eviction and fairness. There is one LRU list across every client, and
 * one per client. When a client's load completes:
 *   1. if the client would exceed its own cap, its own least recently used
 *      unpinned entries are evicted until the value fits under the cap;
 *   2. then, if the shared bound would be exceeded, the globally least
 *      recently used unpinned entries are evicted, whichever client's.
 * So a busy client may use the whole budget while the others are idle; a
 * cap stops one client's scan from flushing everyone else (it recycles its
 * own entries first and never holds more than the cap); and no client is
 * starved of progress, since a value that finds no room is still served
 * (bypass). Evicting a client's own entries costs O(its entries), never a
 * walk over the others'.
 *
 * One mutex guards the shared map and lists. A lookup holds it for a hash
 * probe and two list moves; the loader and dropper run without it. With
 * many threads hitting one cache this lock is the contention point; a
 * sharded map would trade the single global LRU order for less of it.
 *
 * Lifetime: the cache is reference-counted. vv_cache_create returns one
 * reference; each client holds another until vv_cache_client_free, so a
 * cache released by its creator lives on while any client uses it.
 */
#ifndef VV_CACHE_H
#define VV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../vecvault.h"

typedef struct vv_cache vv_cache;               /* the shared budget; refcounted */
typedef struct vv_cache_client vv_cache_client; /* one user of it (one lazy session) */
typedef struct vv_cache_ref vv_cache_ref;       /* one pin */

/* Produces the value for `key` and its size in bytes; returns a status. */
typedef int (*vv_cache_load_fn)(void *ctx, uint64_t key, void **value, size_t *bytes);
/* Frees a value the loader produced. */
typedef void (*vv_cache_drop_fn)(void *ctx, void *value);

typedef struct vv_cache_stats {
  uint64_t hits;         /* gets served from memory (including shared loads) */
  uint64_t misses;       /* loads performed */
  uint64_t evictions;    /* values removed to make room or by a smaller bound (not by client_free) */
  uint64_t bypasses;     /* values handed out uncached for lack of unpinned room */
  uint64_t bytes;        /* bytes of values cached now */
  uint64_t capacity;     /* the bound (for a client: min(its cap, the shared capacity)) */
  uint64_t entries;      /* values cached now */
  uint64_t bytes_loaded; /* total bytes produced by the loader */
  uint64_t clients;      /* clients of the cache now (0 in a client's stats) */
} vv_cache_stats;

/* ---- the shared budget --------------------------------------------------- */

/* A cache of `capacity` bytes with one reference, held by the caller. */
VV_NODISCARD int vv_cache_create(size_t capacity, vv_cache **out);
void vv_cache_retain(vv_cache *c);
/* Drops a reference; the last one frees the cache. Clients hold one each,
 * so it is freed only when the last client is gone too. NULL is a no-op. */
void vv_cache_release(vv_cache *c);
/* Changes the shared bound, evicting unpinned values in LRU order as needed
 * (pinned ones go when unpinned). */
void vv_cache_set_capacity(vv_cache *c, size_t capacity);
/* The whole cache: every client's counters summed, plus `clients`. */
void vv_cache_get_stats(vv_cache *c, vv_cache_stats *out);

/* ---- one user of it -------------------------------------------------------- */

/* A client of `c` that loads with load(ctx, key) and frees with drop(ctx,
 * value); it takes a reference to `c`. cap: the most bytes this client may
 * hold in the cache (0 = no own cap: only the shared bound). */
VV_NODISCARD int vv_cache_client_create(vv_cache *c, size_t cap, vv_cache_load_fn load, vv_cache_drop_fn drop,
                                        void *ctx, vv_cache_client **out);
/* Evicts and drops every entry of the client (no pins of it may be
 * outstanding), waits for drops of its values that other threads evicted
 * and are still running, and releases its reference. NULL is a no-op. */
void vv_cache_client_free(vv_cache_client *cl);
/* The context its loader and dropper get from now on (the caller makes
 * sure no load of the client runs meanwhile). */
void vv_cache_client_set_ctx(vv_cache_client *cl, void *ctx);
/* The cache a client belongs to (borrowed: valid while the client lives). */
vv_cache *vv_cache_client_cache(vv_cache_client *cl);
/* Changes the client's cap (0 = none), evicting its own unpinned values. */
void vv_cache_client_set_cap(vv_cache_client *cl, size_t cap);
/* Evicts the client's unpinned values. */
void vv_cache_client_clear(vv_cache_client *cl);
/* This client's hits, misses, evictions (of its entries, by anyone),
 * bypasses, bytes, entries and bytes_loaded; capacity is its effective
 * bound, min(cap, shared capacity). */
void vv_cache_client_stats(vv_cache_client *cl, vv_cache_stats *out);

/* Pins the value for `key`, loading it if needed. On VV_OK, *value stays
 * valid until vv_cache_unpin(cl, *ref). A load error is returned to every
 * caller waiting on that load, and nothing is cached. */
VV_NODISCARD int vv_cache_get(vv_cache_client *cl, uint64_t key, void **value, vv_cache_ref **ref);
/* Like vv_cache_get, but only if the value is in memory and ready:
 * VV_MISS (common/status.h; nothing counted) otherwise. Never loads or waits. */
VV_NODISCARD int vv_cache_peek(vv_cache_client *cl, uint64_t key, void **value, vv_cache_ref **ref);
void vv_cache_unpin(vv_cache_client *cl, vv_cache_ref *ref);

#endif
