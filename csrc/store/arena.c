/*
 * store/arena.c: segmented record arena (see arena.h).
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "../vecvault.h"

/* Blocks of 2 MiB and more come straight from mmap: the kernel hands them
 * out zeroed and lazily (a small database touches only what it uses, where
 * a heap calloc would zero the whole block) and takes them back at once on
 * free (no heap fragmentation when many databases come and go). In large
 * arenas, blocks after the first are also 2 MiB aligned and advised for
 * transparent huge pages: a million-vector arena then costs a few hundred
 * page faults instead of hundreds of thousands, which was most of the
 * kernel time of loading a session. The first block is not, so a small
 * database keeps a small footprint (a huge page is 2 MiB resident at first
 * touch). */
#define HUGE_BYTES ((size_t)2 << 20)
#define HUGE_MAX_BLOCK ((size_t)64 << 20)

static size_t block_bytes(const vv_arena *a) { return a->rec_size << a->shift; }
static size_t huge_span(size_t bytes) { return (bytes + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1); }

static int use_mmap(const vv_arena *a) {
#if defined(MAP_ANONYMOUS)
  return block_bytes(a) >= HUGE_BYTES;
#else
  (void)a;
  return 0;
#endif
}

static int use_huge(const vv_arena *a, size_t index) {
#if defined(MAP_ANONYMOUS) && defined(MADV_HUGEPAGE)
  return a->huge && index > 0;
#else
  (void)a;
  (void)index;
  return 0;
#endif
}

static unsigned char *block_alloc(const vv_arena *a, size_t index) {
  size_t bytes = block_bytes(a);
#if defined(MAP_ANONYMOUS) && defined(MADV_HUGEPAGE)
  if (use_huge(a, index)) {
    size_t len = huge_span(bytes), span = len + HUGE_BYTES;
    unsigned char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t start = ((uintptr_t)p + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
    size_t head = start - (uintptr_t)p, tail = span - head - len;
    if (head) munmap(p, head);
    if (tail) munmap((unsigned char *)start + len, tail);
    madvise((void *)start, len, MADV_HUGEPAGE); /* advice only: fine if refused */
    return (unsigned char *)start;
  }
#endif
#if defined(MAP_ANONYMOUS)
  if (use_mmap(a)) {
    unsigned char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
  }
#endif
  return (unsigned char *)calloc(1, bytes);
}

static void block_free(const vv_arena *a, size_t index, unsigned char *b) {
  if (!b) return;
#if defined(MAP_ANONYMOUS) && defined(MADV_HUGEPAGE)
  if (use_huge(a, index)) {
    munmap(b, huge_span(block_bytes(a)));
    return;
  }
#endif
#if defined(MAP_ANONYMOUS)
  if (use_mmap(a)) {
    munmap(b, block_bytes(a));
    return;
  }
#endif
  free(b);
}

void vv_arena_init(vv_arena *a, size_t rec_size, size_t block_bytes) {
  a->rec_size = rec_size ? rec_size : 1;
  size_t per = block_bytes / a->rec_size;
  unsigned shift = 0;
  while (((size_t)2 << shift) <= per && shift < 20) shift++;
  /* Blocks of 2 MiB and more grow (up to 64 MiB) until huge pages cover
   * them with at most 1/16 left over, else they stay on the heap. */
  a->huge = 0;
  if ((a->rec_size << shift) >= HUGE_BYTES) {
    for (unsigned s2 = shift; s2 <= 20 && (a->rec_size << s2) <= HUGE_MAX_BLOCK; s2++) {
      size_t bytes = a->rec_size << s2;
      if ((huge_span(bytes) - bytes) * 16 <= bytes) {
        shift = s2;
        a->huge = 1;
        break;
      }
    }
  }
  a->shift = shift;
  a->mask = ((size_t)1 << shift) - 1;
  a->blocks = NULL;
  a->nblocks = 0;
  a->table_cap = 0;
}

void vv_arena_destroy(vv_arena *a) {
  if (!a) return;
  for (size_t b = 0; b < a->nblocks; b++) block_free(a, b, a->blocks[b]);
  free(a->blocks);
  a->blocks = NULL;
  a->nblocks = 0;
  a->table_cap = 0;
}

int vv_arena_reserve(vv_arena *a, uint64_t n) {
  size_t per = (size_t)1 << a->shift;
  uint64_t want64 = (n + per - 1) >> a->shift;
  if (want64 > SIZE_MAX / sizeof(unsigned char *)) return VV_E_NOMEM;
  size_t want = (size_t)want64;
  if (want <= a->nblocks) return VV_OK;
  if (want > a->table_cap) {
    size_t cap = a->table_cap ? a->table_cap : 16;
    while (cap < want) cap *= 2;
    unsigned char **t = (unsigned char **)realloc(a->blocks, cap * sizeof *t);
    if (!t) return VV_E_NOMEM;
    a->blocks = t;
    a->table_cap = cap;
  }
  size_t first_new = a->nblocks;
  for (size_t b = first_new; b < want; b++) {
    unsigned char *blk = block_alloc(a, b);
    if (!blk) {
      for (size_t u = first_new; u < b; u++) block_free(a, u, a->blocks[u]);
      a->nblocks = first_new;
      return VV_E_NOMEM;
    }
    a->blocks[b] = blk;
  }
  a->nblocks = want;
  return VV_OK;
}
