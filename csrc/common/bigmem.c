/*
 * common/bigmem.c: large blocks mapped and unmapped by the engine (see bigmem.h).
 */
#include "bigmem.h"

#include <stdlib.h>
#include <sys/mman.h>

void *vv_big_alloc(size_t n) {
  if (n == 0) return NULL;
  if (n < VV_BIG_MIN) {
    void *p = NULL;
    return posix_memalign(&p, 64, n) ? NULL : p;
  }
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void vv_big_free(void *p, size_t n) {
  if (!p) return;
  if (n < VV_BIG_MIN) free(p);
  else munmap(p, n);
}
