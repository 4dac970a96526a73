/*
 * test/c/test_cache.c: the byte-bounded chunk cache: LRU order, the byte
 * bound, pins, bypass, single-flight loads and errors, under threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "common/util.h"
#include "vvtest.h"

typedef struct loader {
  atomic_int calls;
  atomic_int live_values;   /* produced and not yet dropped */
  atomic_int fail_key;      /* key that fails to load, or -1 */
  int sleep_us;
  size_t (*size_of)(uint64_t key);
} loader;

static size_t size_by_key(uint64_t key) { return 100 + (size_t)(key % 7) * 50; }

static int load_fn(void *ctx, uint64_t key, void **value, size_t *bytes) {
  loader *l = ctx;
  atomic_fetch_add(&l->calls, 1);
  if (l->sleep_us) {
    struct timespec ts = {0, l->sleep_us * 1000L};
    nanosleep(&ts, NULL);
  }
  if ((int)key == atomic_load(&l->fail_key)) return VV_E_CHUNK_CORRUPT;
  size_t n = l->size_of(key);
  uint64_t *v = malloc(n);
  if (!v) return VV_E_NOMEM;
  v[0] = key; /* the value names its key, so a mix-up is visible */
  atomic_fetch_add(&l->live_values, 1);
  *value = v;
  *bytes = n;
  return VV_OK;
}

static void drop_fn(void *ctx, void *value) {
  loader *l = ctx;
  atomic_fetch_sub(&l->live_values, 1);
  free(value);
}

static void init_loader(loader *l) {
  memset(l, 0, sizeof *l);
  atomic_init(&l->fail_key, -1);
  l->size_of = size_by_key;
}

static uint64_t bytes_now(vv_cache *c) {
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  return st.bytes;
}

VV_TEST(hits_misses_and_lru_order) {
  loader l;
  init_loader(&l);
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(1000, load_fn, drop_fn, &l, &c) == VV_OK);
  void *v;
  vv_cache_ref *r;
  /* keys 0,1,2 -> 100,150,200 bytes */
  for (uint64_t k = 0; k < 3; k++) {
    VV_REQUIRE(vv_cache_get(c, k, &v, &r) == VV_OK);
    VV_CHECK(((uint64_t *)v)[0] == k);
    vv_cache_unpin(c, r);
  }
  VV_REQUIRE(vv_cache_get(c, 0, &v, &r) == VV_OK); /* hit; 0 becomes most recent */
  vv_cache_unpin(c, r);
  VV_CHECK(atomic_load(&l.calls) == 3);
  /* key 6 = 400 bytes, key 5 = 350: 450 + 400 + 350 > 1000 forces evicting
   * the least recently used (1, then 2), never 0. */
  VV_REQUIRE(vv_cache_get(c, 6, &v, &r) == VV_OK);
  vv_cache_unpin(c, r);
  VV_REQUIRE(vv_cache_get(c, 5, &v, &r) == VV_OK);
  vv_cache_unpin(c, r);
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  VV_CHECK(st.bytes <= 1000);
  VV_CHECK(st.hits == 1 && st.misses == 5 && st.evictions >= 1);
  int calls = atomic_load(&l.calls);
  VV_REQUIRE(vv_cache_get(c, 0, &v, &r) == VV_OK); /* still cached */
  vv_cache_unpin(c, r);
  VV_CHECK(atomic_load(&l.calls) == calls);
  VV_REQUIRE(vv_cache_get(c, 1, &v, &r) == VV_OK); /* was evicted: loads again */
  vv_cache_unpin(c, r);
  VV_CHECK(atomic_load(&l.calls) == calls + 1);
  vv_cache_free(c);
  VV_CHECK(atomic_load(&l.live_values) == 0);
}

VV_TEST(pinned_values_survive_and_bypass_keeps_the_bound) {
  loader l;
  init_loader(&l);
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(300, load_fn, drop_fn, &l, &c) == VV_OK);
  void *a, *b;
  vv_cache_ref *ra, *rb;
  VV_REQUIRE(vv_cache_get(c, 3, &a, &ra) == VV_OK); /* 250 bytes, pinned */
  VV_REQUIRE(vv_cache_get(c, 4, &b, &rb) == VV_OK); /* 300: no unpinned room -> bypass */
  VV_CHECK(((uint64_t *)a)[0] == 3 && ((uint64_t *)b)[0] == 4);
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  VV_CHECK(st.bytes == 250 && st.bypasses == 1 && st.entries == 1);
  vv_cache_unpin(c, rb); /* the bypassed value is dropped now */
  VV_CHECK(atomic_load(&l.live_values) == 1);
  /* Lowering the capacity cannot free a pinned value... */
  vv_cache_set_capacity(c, 100);
  VV_CHECK(((uint64_t *)a)[0] == 3);
  VV_CHECK(bytes_now(c) == 250);
  /* ...but its unpin does. */
  vv_cache_unpin(c, ra);
  VV_CHECK(bytes_now(c) == 0 && atomic_load(&l.live_values) == 0);
  vv_cache_free(c);
}

VV_TEST(load_errors_reach_every_waiter_and_nothing_is_cached) {
  loader l;
  init_loader(&l);
  atomic_store(&l.fail_key, 9);
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(10000, load_fn, drop_fn, &l, &c) == VV_OK);
  void *v;
  vv_cache_ref *r;
  VV_CHECK(vv_cache_get(c, 9, &v, &r) == VV_E_CHUNK_CORRUPT && v == NULL && r == NULL);
  VV_CHECK(vv_cache_get(c, 9, &v, &r) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(atomic_load(&l.calls) == 2); /* failures are not cached */
  atomic_store(&l.fail_key, -1);
  VV_CHECK(vv_cache_get(c, 9, &v, &r) == VV_OK); /* and a later load can succeed */
  vv_cache_unpin(c, r);
  vv_cache_clear(c);
  VV_CHECK(bytes_now(c) == 0 && atomic_load(&l.live_values) == 0);
  vv_cache_free(c);
}

typedef struct worker {
  vv_cache *c;
  loader *l;
  uint64_t seed;
  int iters;
  int keys;
  int errors;
  size_t capacity;
  int over_bound;
} worker;

static void *hammer(void *p) {
  worker *w = p;
  uint64_t st = w->seed;
  for (int i = 0; i < w->iters; i++) {
    uint64_t key = vv_splitmix64(&st) % (uint64_t)w->keys;
    void *v;
    vv_cache_ref *r;
    int rc = vv_cache_get(w->c, key, &v, &r);
    if (rc == VV_E_CHUNK_CORRUPT) continue;
    if (rc != VV_OK || ((uint64_t *)v)[0] != key) {
      w->errors++;
      continue;
    }
    if (bytes_now(w->c) > w->capacity) w->over_bound++;
    if (vv_splitmix64(&st) % 4 == 0) {
      /* hold two pins at once sometimes */
      void *v2;
      vv_cache_ref *r2;
      uint64_t k2 = vv_splitmix64(&st) % (uint64_t)w->keys;
      if (vv_cache_get(w->c, k2, &v2, &r2) == VV_OK) {
        if (((uint64_t *)v2)[0] != k2) w->errors++;
        vv_cache_unpin(w->c, r2);
      }
    }
    vv_cache_unpin(w->c, r);
  }
  return NULL;
}

VV_TEST(threads_share_loads_and_never_exceed_the_bound) {
  loader l;
  init_loader(&l);
  l.sleep_us = 200;
  atomic_store(&l.fail_key, 13);
  vv_cache *c;
  const size_t cap = 1500;
  VV_REQUIRE(vv_cache_create(cap, load_fn, drop_fn, &l, &c) == VV_OK);
  enum { T = 4 };
  pthread_t th[T];
  worker w[T];
  for (int t = 0; t < T; t++) {
    w[t] = (worker){c, &l, 1000 + (uint64_t)t, 3000, 24, 0, cap, 0};
    pthread_create(&th[t], NULL, hammer, &w[t]);
  }
  for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
  int errors = 0, over = 0;
  for (int t = 0; t < T; t++) {
    errors += w[t].errors;
    over += w[t].over_bound;
  }
  VV_CHECK(errors == 0);
  VV_CHECK(over == 0);
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  VV_NOTE("hits %llu misses %llu evictions %llu bypasses %llu", (unsigned long long)st.hits,
          (unsigned long long)st.misses, (unsigned long long)st.evictions, (unsigned long long)st.bypasses);
  VV_CHECK(st.bytes <= cap && st.hits > 0 && st.evictions > 0);
  vv_cache_free(c);
  VV_CHECK(atomic_load(&l.live_values) == 0);
}

static void *get_same(void *p) {
  worker *w = p;
  void *v;
  vv_cache_ref *r;
  if (vv_cache_get(w->c, 42, &v, &r) == VV_OK && ((uint64_t *)v)[0] == 42)
    vv_cache_unpin(w->c, r);
  else
    w->errors++;
  return NULL;
}

VV_TEST(concurrent_gets_of_one_key_load_it_once) {
  loader l;
  init_loader(&l);
  l.sleep_us = 20000; /* a slow load, so the others arrive while it runs */
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(100000, load_fn, drop_fn, &l, &c) == VV_OK);
  enum { T = 8 };
  pthread_t th[T];
  worker w[T];
  for (int t = 0; t < T; t++) {
    w[t] = (worker){c, &l, 0, 0, 0, 0, 0, 0};
    pthread_create(&th[t], NULL, get_same, &w[t]);
  }
  int errors = 0;
  for (int t = 0; t < T; t++) {
    pthread_join(th[t], NULL);
    errors += w[t].errors;
  }
  VV_CHECK(errors == 0);
  VV_CHECK(atomic_load(&l.calls) == 1);
  vv_cache_free(c);
  VV_CHECK(atomic_load(&l.live_values) == 0);
}

VV_TEST_MAIN()
