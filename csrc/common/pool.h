/*
 * common/pool.h: small blocks the engine recycles itself.
 *
 * Decoded pages of lazily loaded sessions are a few KiB each and come and
 * go all the time, loaded by whichever thread needed them and freed by
 * whichever evicted them. Through malloc they spread over the allocator's
 * per-thread arenas and fragment them: measured at 100K x 384 with a
 * 30 MB cache, 40 MB more resident memory than the cache holds after 300
 * queries. Blocks here come from 1 MiB slabs the engine maps itself and go
 * back to a free list of their size class, so the memory pages pass
 * through is bounded by the most ever in use at once (the caches' bounds
 * plus what searches pin), whichever threads allocate and free.
 *
 * Size classes are multiples of 4 KiB up to VV_POOL_MAX; larger requests
 * go to common/bigmem.h. Blocks are 64-byte aligned. Thread-safe.
 */
#ifndef VV_POOL_H
#define VV_POOL_H

#include <stddef.h>

#define VV_POOL_MAX ((size_t)64 << 10)

/* A block of at least n bytes (n > 0); *size receives its real size, which
 * the caller passes back to vv_pool_free and may count as its cost. NULL
 * when out of memory. */
void *vv_pool_alloc(size_t n, size_t *size);
/* Returns a block of vv_pool_alloc (with the size it reported); NULL is a no-op. */
void vv_pool_free(void *p, size_t size);

#endif
