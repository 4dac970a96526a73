/*
 * test/c/test_cache.c: the byte-bounded cache: LRU order, the byte bound,
 * pins, bypass, single-flight loads and errors, under threads; and the
 * cache shared by clients: keys per client, per-client caps, the shared
 * bound under concurrent clients, eviction across clients, client free
 * while others work, reference-counted lifetime, stats.
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
  atomic_int freed;         /* set once its client is freed: a drop after that is a bug */
  atomic_int late_drops;
  int sleep_us;
  int drop_sleep_us;
  uint64_t id;              /* stamped into values, so clients' values are told apart */
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
  v[0] = key; /* the value names its key and loader, so a mix-up is visible */
  if (n >= 2 * sizeof *v) v[1] = l->id;
  atomic_fetch_add(&l->live_values, 1);
  *value = v;
  *bytes = n;
  return VV_OK;
}

static void drop_fn(void *ctx, void *value) {
  loader *l = ctx;
  if (l->drop_sleep_us) {
    struct timespec ts = {0, l->drop_sleep_us * 1000L};
    nanosleep(&ts, NULL);
  }
  if (atomic_load(&l->freed)) atomic_fetch_add(&l->late_drops, 1);
  atomic_fetch_sub(&l->live_values, 1);
  free(value);
}

static void init_loader(loader *l) {
  memset(l, 0, sizeof *l);
  atomic_init(&l->fail_key, -1);
  l->size_of = size_by_key;
}

/* A cache of its own with one uncapped client, as one lazy session has. */
static vv_cache_client *private_cache(size_t capacity, loader *l) {
  vv_cache *c;
  vv_cache_client *cl = NULL;
  if (vv_cache_create(capacity, &c) != VV_OK) return NULL;
  if (vv_cache_client_create(c, 0, load_fn, drop_fn, l, &cl) != VV_OK) cl = NULL;
  vv_cache_release(c); /* the client holds it */
  return cl;
}

static uint64_t bytes_now(vv_cache_client *cl) {
  vv_cache_stats st;
  vv_cache_client_stats(cl, &st);
  return st.bytes;
}

static uint64_t shared_bytes(vv_cache *c) {
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  return st.bytes;
}

VV_TEST(hits_misses_and_lru_order) {
  loader l;
  init_loader(&l);
  vv_cache_client *c = private_cache(1000, &l);
  VV_REQUIRE(c);
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
  vv_cache_client_stats(c, &st);
  VV_CHECK(st.bytes <= 1000);
  VV_CHECK(st.hits == 1 && st.misses == 5 && st.evictions >= 1);
  int calls = atomic_load(&l.calls);
  VV_REQUIRE(vv_cache_get(c, 0, &v, &r) == VV_OK); /* still cached */
  vv_cache_unpin(c, r);
  VV_CHECK(atomic_load(&l.calls) == calls);
  VV_REQUIRE(vv_cache_get(c, 1, &v, &r) == VV_OK); /* was evicted: loads again */
  vv_cache_unpin(c, r);
  VV_CHECK(atomic_load(&l.calls) == calls + 1);
  vv_cache_client_free(c);
  VV_CHECK(atomic_load(&l.live_values) == 0);
}

VV_TEST(pinned_values_survive_and_bypass_keeps_the_bound) {
  loader l;
  init_loader(&l);
  vv_cache_client *c = private_cache(300, &l);
  VV_REQUIRE(c);
  void *a, *b;
  vv_cache_ref *ra, *rb;
  VV_REQUIRE(vv_cache_get(c, 3, &a, &ra) == VV_OK); /* 250 bytes, pinned */
  VV_REQUIRE(vv_cache_get(c, 4, &b, &rb) == VV_OK); /* 300: no unpinned room -> bypass */
  VV_CHECK(((uint64_t *)a)[0] == 3 && ((uint64_t *)b)[0] == 4);
  vv_cache_stats st;
  vv_cache_client_stats(c, &st);
  VV_CHECK(st.bytes == 250 && st.bypasses == 1 && st.entries == 1);
  vv_cache_unpin(c, rb); /* the bypassed value is dropped now */
  VV_CHECK(atomic_load(&l.live_values) == 1);
  /* Lowering the capacity cannot free a pinned value... */
  vv_cache_set_capacity(vv_cache_client_cache(c), 100);
  VV_CHECK(((uint64_t *)a)[0] == 3);
  VV_CHECK(bytes_now(c) == 250);
  /* ...but its unpin does. */
  vv_cache_unpin(c, ra);
  VV_CHECK(bytes_now(c) == 0 && atomic_load(&l.live_values) == 0);
  vv_cache_client_free(c);
}

VV_TEST(load_errors_reach_every_waiter_and_nothing_is_cached) {
  loader l;
  init_loader(&l);
  atomic_store(&l.fail_key, 9);
  vv_cache_client *c = private_cache(10000, &l);
  VV_REQUIRE(c);
  void *v;
  vv_cache_ref *r;
  VV_CHECK(vv_cache_get(c, 9, &v, &r) == VV_E_CHUNK_CORRUPT && v == NULL && r == NULL);
  VV_CHECK(vv_cache_get(c, 9, &v, &r) == VV_E_CHUNK_CORRUPT);
  VV_CHECK(atomic_load(&l.calls) == 2); /* failures are not cached */
  atomic_store(&l.fail_key, -1);
  VV_CHECK(vv_cache_get(c, 9, &v, &r) == VV_OK); /* and a later load can succeed */
  vv_cache_unpin(c, r);
  vv_cache_client_clear(c);
  VV_CHECK(bytes_now(c) == 0 && atomic_load(&l.live_values) == 0);
  vv_cache_client_free(c);
}

typedef struct worker {
  vv_cache_client *c;
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
  const size_t cap = 1500;
  vv_cache_client *c = private_cache(cap, &l);
  VV_REQUIRE(c);
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
  vv_cache_client_stats(c, &st);
  VV_NOTE("hits %llu misses %llu evictions %llu bypasses %llu", (unsigned long long)st.hits,
          (unsigned long long)st.misses, (unsigned long long)st.evictions, (unsigned long long)st.bypasses);
  VV_CHECK(st.bytes <= cap && st.hits > 0 && st.evictions > 0);
  vv_cache_client_free(c);
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
  vv_cache_client *c = private_cache(100000, &l);
  VV_REQUIRE(c);
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
  vv_cache_client_free(c);
  VV_CHECK(atomic_load(&l.live_values) == 0);
}

/* ---- one cache shared by several clients -------------------------------- */

static size_t size_100(uint64_t key) {
  (void)key;
  return 100;
}

static void init_fixed(loader *l, uint64_t id) {
  init_loader(l);
  l->size_of = size_100;
  l->id = id;
}

/* Gets and unpins `key`; 1 if the value is the right one of the right loader. */
static int touch(vv_cache_client *cl, uint64_t key, uint64_t id) {
  void *v;
  vv_cache_ref *r;
  if (vv_cache_get(cl, key, &v, &r) != VV_OK) return 0;
  int ok = ((uint64_t *)v)[0] == key && ((uint64_t *)v)[1] == id;
  vv_cache_unpin(cl, r);
  return ok;
}

static vv_cache_stats client_stats(vv_cache_client *cl) {
  vv_cache_stats st;
  vv_cache_client_stats(cl, &st);
  return st;
}

/* Two clients A (loader id 1, cap cap_a) and B (id 2, no cap) of one cache
 * of 1000 bytes; values are 100 bytes each. */
typedef struct duo {
  loader la, lb;
  vv_cache *c;
  vv_cache_client *a, *b;
} duo;

static int duo_open(duo *d, size_t cap_a) {
  init_fixed(&d->la, 1);
  init_fixed(&d->lb, 2);
  d->a = d->b = NULL;
  if (vv_cache_create(1000, &d->c) != VV_OK) return 0;
  return vv_cache_client_create(d->c, cap_a, load_fn, drop_fn, &d->la, &d->a) == VV_OK &&
         vv_cache_client_create(d->c, 0, load_fn, drop_fn, &d->lb, &d->b) == VV_OK;
}

VV_TEST(clients_keep_their_own_keys_and_share_one_bound) {
  duo d;
  VV_REQUIRE(duo_open(&d, 0));
  vv_cache *c = d.c;
  vv_cache_client *a = d.a, *b = d.b;
  /* The same key in two clients is two values, each from its own loader. */
  for (uint64_t k = 0; k < 5; k++) VV_CHECK(touch(a, k, 1) && touch(b, k, 2));
  VV_CHECK(atomic_load(&d.la.calls) == 5 && atomic_load(&d.lb.calls) == 5);
  for (uint64_t k = 0; k < 5; k++) VV_CHECK(touch(a, k, 1) && touch(b, k, 2)); /* all hits */
  VV_CHECK(atomic_load(&d.la.calls) == 5 && atomic_load(&d.lb.calls) == 5);
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  VV_CHECK(st.bytes == 1000 && st.entries == 10 && st.clients == 2);
  VV_CHECK(st.hits == 10 && st.misses == 10 && st.evictions == 0);
  /* The whole cache is the sum of its clients. */
  vv_cache_stats sa = client_stats(a), sb = client_stats(b);
  VV_CHECK(sa.bytes == 500 && sb.bytes == 500 && sa.hits == 5 && sb.misses == 5);
  VV_CHECK(sa.capacity == 1000 && sa.clients == 0);
  /* A's new key evicts the globally least recently used entry: B's key 0
   * was touched after A's key 0, so A's key 0 goes. */
  VV_CHECK(touch(a, 10, 1));
  sa = client_stats(a);
  sb = client_stats(b);
  VV_CHECK(sa.evictions == 1 && sb.evictions == 0 && sa.entries == 5 && sb.entries == 5);
  /* The cold end alternates B0, A1, B1, A2...: A's next three loads evict
   * B's keys 0 and 1 and A's own key 1, whatever client the value is of. */
  VV_CHECK(touch(a, 11, 1) && touch(a, 12, 1) && touch(a, 13, 1));
  sb = client_stats(b);
  VV_CHECK(sb.evictions == 2 && sb.entries == 3 && sb.bytes == 300);
  VV_CHECK(shared_bytes(c) == 1000);
  int calls = atomic_load(&d.lb.calls);
  VV_CHECK(touch(b, 2, 2) && atomic_load(&d.lb.calls) == calls);     /* still cached */
  VV_CHECK(touch(b, 0, 2) && atomic_load(&d.lb.calls) == calls + 1); /* was evicted */
  vv_cache_client_free(a);
  vv_cache_get_stats(c, &st);
  VV_CHECK(st.clients == 1 && st.bytes == client_stats(b).bytes);
  VV_CHECK(atomic_load(&d.la.live_values) == 0);
  vv_cache_client_free(b);
  VV_CHECK(atomic_load(&d.lb.live_values) == 0);
  vv_cache_get_stats(c, &st);
  VV_CHECK(st.clients == 0 && st.bytes == 0 && st.entries == 0);
  vv_cache_release(c);
}

VV_TEST(a_busy_client_uses_the_whole_budget_while_others_idle) {
  duo d;
  VV_REQUIRE(duo_open(&d, 0));
  vv_cache *c = d.c;
  vv_cache_client *a = d.a, *b = d.b;
  VV_CHECK(touch(b, 0, 2));
  for (uint64_t k = 0; k < 30; k++) VV_CHECK(touch(a, k, 1));
  vv_cache_stats sa = client_stats(a), sb = client_stats(b);
  VV_CHECK(sa.bytes == 1000 && sa.entries == 10 && sb.entries == 0 && sb.evictions == 1);
  vv_cache_client_free(a);
  vv_cache_client_free(b);
  vv_cache_release(c);
}

VV_TEST(a_cap_stops_one_clients_scan_from_flushing_the_others) {
  duo d;
  VV_REQUIRE(duo_open(&d, 300));
  vv_cache *c = d.c;
  vv_cache_client *a = d.a, *b = d.b;
  for (uint64_t k = 0; k < 7; k++) VV_CHECK(touch(b, k, 2));
  /* A scans 50 keys; it recycles its own 300 bytes and never touches B's. */
  for (uint64_t k = 0; k < 50; k++) {
    VV_CHECK(touch(a, k, 1));
    if (bytes_now(a) > 300) VV_CHECK(!"client over its cap");
  }
  vv_cache_stats sa = client_stats(a), sb = client_stats(b);
  VV_CHECK(sa.bytes == 300 && sa.entries == 3 && sa.evictions == 47 && sa.capacity == 300);
  VV_CHECK(sb.bytes == 700 && sb.evictions == 0);
  int calls = atomic_load(&d.lb.calls);
  for (uint64_t k = 0; k < 7; k++) VV_CHECK(touch(b, k, 2));
  VV_CHECK(atomic_load(&d.lb.calls) == calls); /* B's values all survived the scan */
  /* But A still gets room from the shared bound when B grows into it:
   * B's next loads evict whatever is globally coldest, A's included. */
  for (uint64_t k = 100; k < 103; k++) VV_CHECK(touch(b, k, 2));
  VV_CHECK(shared_bytes(c) == 1000 && client_stats(a).entries == 0);
  /* A cap larger than the shared capacity is bounded by it. */
  vv_cache_client_set_cap(a, 5000);
  VV_CHECK(client_stats(a).capacity == 1000);
  /* Lowering a cap evicts the client's own values only. */
  vv_cache_client_set_cap(b, 500);
  sb = client_stats(b);
  VV_CHECK(sb.bytes == 500 && sb.capacity == 500);
  vv_cache_client_free(a);
  vv_cache_client_free(b);
  VV_CHECK(atomic_load(&d.la.live_values) == 0 && atomic_load(&d.lb.live_values) == 0);
  vv_cache_release(c);
}

/* A client at its cap with every value pinned (a search holding its pages)
 * gets the next value uncached, and takes nothing from the others for it,
 * even when the shared cache is full. */
VV_TEST(a_client_pinned_at_its_cap_takes_nothing_from_the_others) {
  duo d;
  VV_REQUIRE(duo_open(&d, 200));
  vv_cache *c = d.c;
  vv_cache_client *a = d.a, *b = d.b;
  for (uint64_t k = 0; k < 8; k++) VV_CHECK(touch(b, k, 2));
  void *v;
  vv_cache_ref *r0, *r1, *r2;
  VV_REQUIRE(vv_cache_get(a, 0, &v, &r0) == VV_OK && vv_cache_get(a, 1, &v, &r1) == VV_OK);
  VV_CHECK(shared_bytes(c) == 1000 && bytes_now(a) == 200);
  VV_REQUIRE(vv_cache_get(a, 2, &v, &r2) == VV_OK); /* over A's cap, A's own values pinned */
  vv_cache_stats sa = client_stats(a), sb = client_stats(b);
  VV_CHECK(sa.bypasses == 1 && sa.bytes == 200);
  VV_CHECK(sb.evictions == 0 && sb.bytes == 800);
  vv_cache_unpin(a, r2);
  vv_cache_unpin(a, r1);
  vv_cache_unpin(a, r0);
  vv_cache_client_free(a);
  vv_cache_client_free(b);
  VV_CHECK(atomic_load(&d.la.live_values) == 0 && atomic_load(&d.lb.live_values) == 0);
  vv_cache_release(c);
}

VV_TEST(a_value_over_the_cap_is_served_without_evicting_anything) {
  loader la;
  init_loader(&la); /* keys 0..6 -> 100..400 bytes */
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(1000, &c) == VV_OK);
  vv_cache_client *a;
  VV_REQUIRE(vv_cache_client_create(c, 250, load_fn, drop_fn, &la, &a) == VV_OK);
  void *v;
  vv_cache_ref *r;
  VV_REQUIRE(vv_cache_get(a, 0, &v, &r) == VV_OK); /* 100 bytes, cached */
  vv_cache_unpin(a, r);
  VV_REQUIRE(vv_cache_get(a, 6, &v, &r) == VV_OK); /* 400 > cap: bypass */
  VV_CHECK(((uint64_t *)v)[0] == 6);
  vv_cache_stats sa = client_stats(a);
  VV_CHECK(sa.bypasses == 1 && sa.evictions == 0 && sa.bytes == 100);
  vv_cache_unpin(a, r);
  VV_CHECK(atomic_load(&la.live_values) == 1);
  vv_cache_client_clear(a);
  VV_CHECK(bytes_now(a) == 0 && atomic_load(&la.live_values) == 0);
  vv_cache_client_free(a);
  vv_cache_release(c);
}

VV_TEST(the_cache_lives_while_a_client_holds_it) {
  loader la;
  init_fixed(&la, 1);
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(1000, &c) == VV_OK);
  vv_cache_retain(c);
  vv_cache_release(c); /* back to one: the creator's */
  vv_cache_client *a;
  VV_REQUIRE(vv_cache_client_create(c, 0, load_fn, drop_fn, &la, &a) == VV_OK);
  VV_CHECK(vv_cache_client_cache(a) == c);
  vv_cache_release(c); /* the creator lets go; the client keeps it alive */
  for (uint64_t k = 0; k < 20; k++) VV_CHECK(touch(a, k, 1));
  vv_cache_set_capacity(vv_cache_client_cache(a), 300);
  VV_CHECK(bytes_now(a) == 300 && client_stats(a).capacity == 300);
  vv_cache_client_free(a); /* frees the cache too; ASan's leak check sees it */
  VV_CHECK(atomic_load(&la.live_values) == 0);
  vv_cache_release(NULL);
  vv_cache_client_free(NULL);
}

typedef struct tenant {
  vv_cache *c;
  vv_cache_client *cl;
  loader *l;
  size_t cap, shared_cap;
  uint64_t seed;
  int iters, keys;
  atomic_int *stop; /* NULL: run iters; else run until set */
  int errors, over_cap, over_shared, done;
} tenant;

static void *tenant_run(void *p) {
  tenant *t = p;
  uint64_t st = t->seed;
  for (int i = 0; t->stop ? !atomic_load(t->stop) : i < t->iters; i++) {
    uint64_t key = vv_splitmix64(&st) % (uint64_t)t->keys;
    void *v;
    vv_cache_ref *r;
    if (vv_cache_get(t->cl, key, &v, &r) != VV_OK || ((uint64_t *)v)[0] != key ||
        ((uint64_t *)v)[1] != t->l->id) {
      t->errors++;
      continue;
    }
    if (t->cap && bytes_now(t->cl) > t->cap) t->over_cap++;
    if (shared_bytes(t->c) > t->shared_cap) t->over_shared++;
    vv_cache_unpin(t->cl, r);
    t->done++;
  }
  return NULL;
}

VV_TEST(concurrent_clients_never_exceed_the_shared_bound_or_their_caps) {
  enum { N = 4 };
  const size_t shared = 1500;
  const size_t caps[N] = {0, 400, 0, 700};
  loader l[N];
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(shared, &c) == VV_OK);
  tenant t[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    init_fixed(&l[i], (uint64_t)i + 1);
    l[i].sleep_us = 100;
    t[i] = (tenant){.c = c, .l = &l[i], .cap = caps[i], .shared_cap = shared, .seed = 77 + (uint64_t)i,
                    .iters = 2000, .keys = 20};
    VV_REQUIRE(vv_cache_client_create(c, caps[i], load_fn, drop_fn, &l[i], &t[i].cl) == VV_OK);
  }
  for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, tenant_run, &t[i]);
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  vv_cache_stats sum = {0}, st;
  for (int i = 0; i < N; i++) {
    VV_NOTE("client %d", i);
    VV_CHECK(t[i].errors == 0 && t[i].over_cap == 0 && t[i].over_shared == 0);
    st = client_stats(t[i].cl);
    sum.hits += st.hits;
    sum.misses += st.misses;
    sum.evictions += st.evictions;
    sum.bytes += st.bytes;
    sum.entries += st.entries;
  }
  vv_cache_get_stats(c, &st);
  VV_NOTE("hits %llu misses %llu evictions %llu", (unsigned long long)st.hits, (unsigned long long)st.misses,
          (unsigned long long)st.evictions);
  VV_CHECK(st.hits == sum.hits && st.misses == sum.misses && st.evictions == sum.evictions);
  VV_CHECK(st.bytes == sum.bytes && st.entries == sum.entries && st.bytes <= shared);
  VV_CHECK(st.hits + st.misses == (uint64_t)N * 2000 && st.evictions > 0);
  for (int i = 0; i < N; i++) {
    vv_cache_client_free(t[i].cl);
    VV_CHECK(atomic_load(&l[i].live_values) == 0);
  }
  vv_cache_release(c);
}

/* Clients come and go while two others keep loading and evicting their
 * values: a client's values evicted by another thread are dropped before
 * its free returns, never after. */
VV_TEST(a_client_freed_while_others_work) {
  const size_t shared = 800;
  loader lw[2];
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(shared, &c) == VV_OK);
  atomic_int stop;
  atomic_init(&stop, 0);
  tenant t[2];
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    init_fixed(&lw[i], (uint64_t)i + 1);
    t[i] = (tenant){.c = c, .l = &lw[i], .shared_cap = shared, .seed = 5 + (uint64_t)i, .keys = 30,
                    .stop = &stop};
    VV_REQUIRE(vv_cache_client_create(c, 0, load_fn, drop_fn, &lw[i], &t[i].cl) == VV_OK);
    pthread_create(&th[i], NULL, tenant_run, &t[i]);
  }
  int late = 0, live = 0, wrong = 0;
  for (int round = 0; round < 40; round++) {
    loader lc;
    init_fixed(&lc, 9);
    lc.drop_sleep_us = 50; /* slow drops widen the window a free must wait out */
    vv_cache_client *cl;
    VV_REQUIRE(vv_cache_client_create(c, 0, load_fn, drop_fn, &lc, &cl) == VV_OK);
    for (uint64_t k = 0; k < 6; k++) wrong += !touch(cl, k, 9);
    vv_cache_client_free(cl);
    atomic_store(&lc.freed, 1);
    live += atomic_load(&lc.live_values);
    late += atomic_load(&lc.late_drops);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  VV_CHECK(late == 0 && live == 0 && wrong == 0);
  for (int i = 0; i < 2; i++) {
    VV_CHECK(t[i].errors == 0 && t[i].over_shared == 0 && t[i].done > 0);
    vv_cache_client_free(t[i].cl);
    VV_CHECK(atomic_load(&lw[i].live_values) == 0);
  }
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  VV_CHECK(st.clients == 0 && st.bytes == 0);
  vv_cache_release(c);
}

/* A dropper that signals it started and then waits for a gate. */
typedef struct gated {
  loader l;
  atomic_int in_drop, open;
} gated;

static void gated_drop(void *ctx, void *value) {
  gated *g = ctx;
  atomic_store(&g->in_drop, 1);
  struct timespec ts = {0, 100000};
  while (!atomic_load(&g->open)) nanosleep(&ts, NULL);
  drop_fn(&g->l, value);
}

static void *touch_b(void *p) {
  (void)touch(p, 0, 2);
  return NULL;
}

static void *free_client(void *p) {
  gated *g = ((void **)p)[1];
  vv_cache_client_free(((void **)p)[0]);
  atomic_store(&g->l.freed, 1);
  return NULL;
}

/* Another client's load evicts A's value and is still dropping it with A's
 * dropper and context when A is freed: the free waits for that drop. (On
 * correct code this passes whatever the timing; the short wait before
 * opening the gate is what gives a free that does not wait the chance to
 * return early and be caught.) */
VV_TEST(client_free_waits_for_its_values_dropped_by_others) {
  gated ga;
  loader lb;
  init_fixed(&ga.l, 1);
  atomic_init(&ga.in_drop, 0);
  atomic_init(&ga.open, 0);
  init_fixed(&lb, 2);
  vv_cache *c;
  VV_REQUIRE(vv_cache_create(100, &c) == VV_OK);
  vv_cache_client *a, *b;
  VV_REQUIRE(vv_cache_client_create(c, 0, load_fn, gated_drop, &ga, &a) == VV_OK);
  VV_REQUIRE(vv_cache_client_create(c, 0, load_fn, drop_fn, &lb, &b) == VV_OK);
  VV_CHECK(touch(a, 0, 1));
  pthread_t tb, tf;
  pthread_create(&tb, NULL, touch_b, b); /* evicts A's key 0, then blocks dropping it */
  struct timespec ts = {0, 100000};
  while (!atomic_load(&ga.in_drop)) nanosleep(&ts, NULL);
  void *args[2] = {a, &ga};
  pthread_create(&tf, NULL, free_client, args);
  for (int i = 0; i < 200 && !atomic_load(&ga.l.freed); i++) nanosleep(&ts, NULL);
  VV_CHECK(!atomic_load(&ga.l.freed)); /* still waiting for the drop */
  atomic_store(&ga.open, 1);
  pthread_join(tf, NULL);
  pthread_join(tb, NULL);
  VV_CHECK(atomic_load(&ga.l.late_drops) == 0 && atomic_load(&ga.l.live_values) == 0);
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  VV_CHECK(st.clients == 1 && st.entries == 1);
  vv_cache_client_free(b);
  vv_cache_release(c);
}

VV_TEST(the_public_handle_opens_resizes_reports_and_closes) {
  vv_cache *c;
  VV_CHECK(vv_cache_open(0, &c) == VV_E_INVALID && c == NULL);
  VV_REQUIRE(vv_cache_open(1000, &c) == VV_OK);
  loader la;
  init_fixed(&la, 1);
  vv_cache_client *a;
  VV_REQUIRE(vv_cache_client_create(c, 0, load_fn, drop_fn, &la, &a) == VV_OK);
  for (uint64_t k = 0; k < 12; k++) VV_CHECK(touch(a, k, 1));
  VV_CHECK(touch(a, 11, 1));
  vv_shared_cache_info info;
  vv_cache_shared_info(c, &info);
  VV_CHECK(info.bytes == 1000 && info.capacity == 1000 && info.entries == 10 && info.sessions == 1);
  VV_CHECK(info.hits == 1 && info.misses == 12 && info.evictions == 2 && info.bypasses == 0);
  VV_CHECK(vv_cache_resize(c, 0) == VV_E_INVALID);
  VV_REQUIRE(vv_cache_resize(c, 250) == VV_OK);
  vv_cache_shared_info(c, &info);
  VV_CHECK(info.bytes == 200 && info.capacity == 250 && info.evictions == 10);
  vv_cache_close(c); /* the client keeps it */
  VV_CHECK(touch(a, 0, 1));
  vv_cache_client_free(a);
  VV_CHECK(atomic_load(&la.live_values) == 0);
  vv_cache_close(NULL);
}

VV_TEST_MAIN()
