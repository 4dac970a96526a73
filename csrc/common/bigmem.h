/*
 * common/bigmem.h: large blocks the engine maps and unmaps itself.
 *
 * Decoded chunks and whole objects are megabytes each and come and go all
 * the time. Through malloc, glibc raises its mmap threshold after the first
 * such block is freed and serves the rest from heaps that fragment and
 * never shrink (measured: 6 GB resident after 1000 queries through a
 * 150 MB cache). Changing malloc's settings would change them for the whole
 * host process, so blocks of VV_BIG_MIN bytes or more are mapped here and
 * returned to the kernel on free; smaller ones use malloc. Blocks are
 * 64-byte aligned. The caller remembers the size for vv_big_free.
 */
#ifndef VV_BIGMEM_H
#define VV_BIGMEM_H

#include <stddef.h>

#define VV_BIG_MIN ((size_t)1 << 20)

/* n bytes (n > 0), or NULL. */
void *vv_big_alloc(size_t n);
/* Frees a block of vv_big_alloc(n); NULL is a no-op. */
void vv_big_free(void *p, size_t n);

#endif
