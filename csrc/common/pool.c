/*
 * common/pool.c: size-class free lists over slabs the engine maps (see
 * pool.h).
 */
#include "pool.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "bigmem.h"

#define CLASS_BYTES ((size_t)4 << 10)
#define NCLASSES (VV_POOL_MAX / CLASS_BYTES)
#define SLAB_BYTES ((size_t)1 << 20)

typedef struct free_block {
  struct free_block *next;
} free_block;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static free_block *free_lists[NCLASSES];
/* The slab blocks are being carved from: [carve, carve_end). Every class
 * carves from the same slab; a slab's tail too small for a block is left. */
static unsigned char *carve, *carve_end;

void *vv_pool_alloc(size_t n, size_t *size) {
  if (n == 0) return NULL;
  if (n > VV_POOL_MAX) {
    *size = n;
    return vv_big_alloc(n);
  }
  size_t cls = (n + CLASS_BYTES - 1) / CLASS_BYTES - 1, bytes = (cls + 1) * CLASS_BYTES;
  void *p = NULL;
  pthread_mutex_lock(&pool_mu);
  if (free_lists[cls]) {
    p = free_lists[cls];
    free_lists[cls] = free_lists[cls]->next;
  } else {
    if (!carve || (size_t)(carve_end - carve) < bytes) {
      void *slab = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (slab != MAP_FAILED) {
        carve = slab;
        carve_end = carve + SLAB_BYTES;
      }
    }
    if (carve && (size_t)(carve_end - carve) >= bytes) {
      p = carve;
      carve += bytes;
    }
  }
  pthread_mutex_unlock(&pool_mu);
  *size = bytes;
  return p;
}

void vv_pool_free(void *p, size_t size) {
  if (!p) return;
  if (size > VV_POOL_MAX) {
    vv_big_free(p, size);
    return;
  }
  size_t cls = size / CLASS_BYTES - 1;
  pthread_mutex_lock(&pool_mu);
  free_block *b = p;
  b->next = free_lists[cls];
  free_lists[cls] = b;
  pthread_mutex_unlock(&pool_mu);
}
