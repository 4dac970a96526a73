/*
 * cache/cache.c: a byte-bounded LRU cache shared by clients, with
 * single-flight loads and pins (see cache.h for the eviction policy).
 *
 * An entry is in the hash map, under (client, key), from the moment its
 * load starts (so others wait for it instead of loading again) until it is
 * evicted, fails, or is handed out uncached. Only cached, loaded entries
 * are on the LRU lists (the global one and their client's), and only
 * unpinned ones are evicted. Values are dropped outside the lock; a client
 * counts its values on their way to a dropper (`dropping`) so that freeing
 * it waits until no other thread still calls its dropper with its context.
 */
#include "cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "../common/util.h"

enum { LOADING, READY, FAILED };

struct vv_cache_ref {
  vv_cache_client *cl;
  uint64_t key;
  void *value;
  size_t bytes;
  int pins;
  int state;
  int status;
  int cached;                         /* counted in the bytes and on the LRU lists */
  struct vv_cache_ref *prev, *next;   /* global LRU: head = most recent */
  struct vv_cache_ref *cprev, *cnext; /* the client's LRU */
  struct vv_cache_ref *chain;         /* hash bucket, then the drop list */
};

typedef struct vv_cache_ref entry;

struct vv_cache {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a load finished, or a client's drops did */
  atomic_int refs;
  size_t capacity;
  entry **buckets;
  size_t nbuckets, count;
  entry *head, *tail;
  vv_cache_stats st;
};

struct vv_cache_client {
  vv_cache *c;
  size_t cap; /* 0 = none */
  vv_cache_load_fn load;
  vv_cache_drop_fn drop;
  void *ctx;
  entry *head, *tail;
  size_t dropping; /* its entries taken off the lists and not yet dropped */
  vv_cache_stats st;
};

/* Counts on both the client and the whole cache. */
#define BUMP(cl, field, n)          \
  do {                              \
    (cl)->st.field += (n);          \
    (cl)->c->st.field += (n);       \
  } while (0)

/* ---- map and lists ------------------------------------------------------ */

static size_t bucket_of(const vv_cache *c, const vv_cache_client *cl, uint64_t key) {
  uint64_t h = (key ^ ((uint64_t)(uintptr_t)cl * 0xff51afd7ed558ccdull)) * 0x9e3779b97f4a7c15ull;
  return (size_t)(h >> 32) & (c->nbuckets - 1);
}

static entry *find(const vv_cache *c, const vv_cache_client *cl, uint64_t key) {
  for (entry *e = c->buckets[bucket_of(c, cl, key)]; e; e = e->chain)
    if (e->key == key && e->cl == cl) return e;
  return NULL;
}

static void map_remove(vv_cache *c, entry *e) {
  entry **p = &c->buckets[bucket_of(c, e->cl, e->key)];
  while (*p != e) p = &(*p)->chain;
  *p = e->chain;
  e->chain = NULL;
  c->count--;
}

static int map_insert(vv_cache *c, entry *e) {
  if (c->count + 1 > c->nbuckets) {
    size_t n = c->nbuckets * 2;
    entry **nb = calloc(n, sizeof *nb);
    if (!nb) return VV_E_NOMEM;
    entry **old = c->buckets;
    size_t oldn = c->nbuckets;
    c->buckets = nb;
    c->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
      for (entry *x = old[i], *next; x; x = next) {
        next = x->chain;
        size_t b = bucket_of(c, x->cl, x->key);
        x->chain = nb[b];
        nb[b] = x;
      }
    }
    free(old);
  }
  size_t b = bucket_of(c, e->cl, e->key);
  e->chain = c->buckets[b];
  c->buckets[b] = e;
  c->count++;
  return VV_OK;
}

static void lru_unlink(vv_cache *c, entry *e) {
  vv_cache_client *cl = e->cl;
  if (e->prev) e->prev->next = e->next;
  else c->head = e->next;
  if (e->next) e->next->prev = e->prev;
  else c->tail = e->prev;
  if (e->cprev) e->cprev->cnext = e->cnext;
  else cl->head = e->cnext;
  if (e->cnext) e->cnext->cprev = e->cprev;
  else cl->tail = e->cprev;
  e->prev = e->next = e->cprev = e->cnext = NULL;
}

static void lru_push_front(vv_cache *c, entry *e) {
  vv_cache_client *cl = e->cl;
  e->prev = NULL;
  e->next = c->head;
  if (c->head) c->head->prev = e;
  c->head = e;
  if (!c->tail) c->tail = e;
  e->cprev = NULL;
  e->cnext = cl->head;
  if (cl->head) cl->head->cprev = e;
  cl->head = e;
  if (!cl->tail) cl->tail = e;
}

static void lru_touch(vv_cache *c, entry *e) {
  if (!e->cached) return;
  lru_unlink(c, e);
  lru_push_front(c, e);
}

/* ---- eviction ------------------------------------------------------------ */

/* Hands `e` to the caller's drop list (dropped after unlocking). */
static void to_drop(entry *e, entry **dropped) {
  e->cl->dropping++;
  e->chain = *dropped;
  *dropped = e;
}

/* Takes a cached, unpinned entry out of the map and lists. */
static void evict(vv_cache *c, entry *e, entry **dropped, int counted) {
  vv_cache_client *cl = e->cl;
  lru_unlink(c, e);
  map_remove(c, e);
  e->cached = 0;
  BUMP(cl, bytes, -(uint64_t)e->bytes);
  BUMP(cl, entries, -(uint64_t)1);
  if (counted) BUMP(cl, evictions, 1);
  to_drop(e, dropped);
}

static size_t bound_of(const vv_cache_client *cl) {
  size_t cap = cl->c->capacity;
  return cl->cap && cl->cap < cap ? cl->cap : cap;
}

/* Evicts the client's own cold unpinned entries until `need` more bytes fit
 * under its cap, then, if they do, anyone's until they fit under the shared
 * bound. */
static void make_room(vv_cache_client *cl, size_t need, entry **dropped) {
  vv_cache *c = cl->c;
  if (cl->cap) {
    for (entry *e = cl->tail, *prev; e && cl->st.bytes + need > cl->cap; e = prev) {
      prev = e->cprev;
      if (e->pins == 0) evict(c, e, dropped, 1);
    }
    /* Still over its cap (its own values are pinned): the value will be
     * handed out uncached, so nobody else's may go to make room for it. */
    if (need && cl->st.bytes + need > cl->cap) return;
  }
  for (entry *e = c->tail, *prev; e && c->st.bytes + need > c->capacity; e = prev) {
    prev = e->prev;
    if (e->pins == 0) evict(c, e, dropped, 1);
  }
}

/* Brings every client back under its bound after the shared one shrank or
 * pins went away: the shared bound first (global LRU order), then caps. */
static void settle(vv_cache_client *cl, entry **dropped) {
  if (cl->st.bytes > bound_of(cl) || cl->c->st.bytes > cl->c->capacity) make_room(cl, 0, dropped);
}

/* Drops values and frees entries, then tells their clients. */
static void drop_all(vv_cache *c, entry *list) {
  if (!list) return;
  for (entry *e = list; e; e = e->chain)
    if (e->value) e->cl->drop(e->cl->ctx, e->value);
  pthread_mutex_lock(&c->mu);
  for (entry *e = list; e; e = e->chain) e->cl->dropping--;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  while (list) {
    entry *next = list->chain;
    free(list);
    list = next;
  }
}

/* ---- the shared budget --------------------------------------------------- */

int vv_cache_create(size_t capacity, vv_cache **out) {
  *out = NULL;
  vv_cache *c = calloc(1, sizeof *c);
  if (!c) return VV_E_NOMEM;
  c->nbuckets = 64;
  c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
  if (!c->buckets) {
    free(c);
    return VV_E_NOMEM;
  }
  c->capacity = capacity;
  c->st.capacity = capacity;
  atomic_init(&c->refs, 1);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  *out = c;
  return VV_OK;
}

void vv_cache_retain(vv_cache *c) { atomic_fetch_add(&c->refs, 1); }

void vv_cache_release(vv_cache *c) {
  if (!c || atomic_fetch_sub(&c->refs, 1) != 1) return;
  /* Every client held a reference, so none is left, nor any entry. */
  free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}

void vv_cache_set_capacity(vv_cache *c, size_t capacity) {
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  c->capacity = capacity;
  c->st.capacity = capacity;
  for (entry *e = c->tail, *prev; e && c->st.bytes > c->capacity; e = prev) {
    prev = e->prev;
    if (e->pins == 0) evict(c, e, &dropped, 1);
  }
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
}

void vv_cache_get_stats(vv_cache *c, vv_cache_stats *out) {
  pthread_mutex_lock(&c->mu);
  *out = c->st;
  pthread_mutex_unlock(&c->mu);
}

/* ---- clients ------------------------------------------------------------- */

int vv_cache_client_create(vv_cache *c, size_t cap, vv_cache_load_fn load, vv_cache_drop_fn drop, void *ctx,
                           vv_cache_client **out) {
  *out = NULL;
  if (!c || !load || !drop) return VV_E_INVALID;
  vv_cache_client *cl = calloc(1, sizeof *cl);
  if (!cl) return VV_E_NOMEM;
  cl->c = c;
  cl->cap = cap;
  cl->load = load;
  cl->drop = drop;
  cl->ctx = ctx;
  vv_cache_retain(c);
  pthread_mutex_lock(&c->mu);
  c->st.clients++;
  pthread_mutex_unlock(&c->mu);
  *out = cl;
  return VV_OK;
}

void vv_cache_client_free(vv_cache_client *cl) {
  if (!cl) return;
  vv_cache *c = cl->c;
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  while (cl->head) evict(c, cl->head, &dropped, 0);
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
  pthread_mutex_lock(&c->mu);
  while (cl->dropping) pthread_cond_wait(&c->cv, &c->mu);
  c->st.clients--;
  pthread_mutex_unlock(&c->mu);
  free(cl);
  vv_cache_release(c);
}

void vv_cache_client_set_ctx(vv_cache_client *cl, void *ctx) {
  pthread_mutex_lock(&cl->c->mu);
  cl->ctx = ctx;
  pthread_mutex_unlock(&cl->c->mu);
}

vv_cache *vv_cache_client_cache(vv_cache_client *cl) { return cl->c; }

void vv_cache_client_set_cap(vv_cache_client *cl, size_t cap) {
  entry *dropped = NULL;
  pthread_mutex_lock(&cl->c->mu);
  cl->cap = cap;
  settle(cl, &dropped);
  pthread_mutex_unlock(&cl->c->mu);
  drop_all(cl->c, dropped);
}

void vv_cache_client_clear(vv_cache_client *cl) {
  vv_cache *c = cl->c;
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  for (entry *e = cl->tail, *prev; e; e = prev) {
    prev = e->cprev;
    if (e->pins == 0) evict(c, e, &dropped, 1);
  }
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
}

void vv_cache_client_stats(vv_cache_client *cl, vv_cache_stats *out) {
  pthread_mutex_lock(&cl->c->mu);
  *out = cl->st;
  out->capacity = bound_of(cl);
  out->clients = 0;
  pthread_mutex_unlock(&cl->c->mu);
}

/* ---- get, peek, unpin ---------------------------------------------------- */

/* Called with the lock held by a thread that pinned `e` while it loaded. */
static int finish_wait(vv_cache_client *cl, entry *e, void **value, vv_cache_ref **ref, entry **dropped) {
  if (e->state == READY) {
    BUMP(cl, hits, 1);
    lru_touch(cl->c, e);
    *value = e->value;
    *ref = e;
    return VV_OK;
  }
  int rc = e->status;
  if (--e->pins == 0) to_drop(e, dropped); /* failed: no value, just the struct */
  return rc;
}

int vv_cache_peek(vv_cache_client *cl, uint64_t key, void **value, vv_cache_ref **ref) {
  vv_cache *c = cl->c;
  *value = NULL;
  *ref = NULL;
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, cl, key);
  int rc = VV_MISS;
  if (e && e->state == READY) {
    e->pins++;
    rc = finish_wait(cl, e, value, ref, &dropped);
  }
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
  return rc;
}

/* Files a value just loaded for `e`: cached if room can be made under both
 * bounds, else handed out privately (dropped on its last unpin). */
static void admit(vv_cache_client *cl, entry *e, entry **dropped) {
  vv_cache *c = cl->c;
  BUMP(cl, bytes_loaded, e->bytes);
  /* Never evict for a value that could not fit even in an empty cache. */
  if (e->bytes <= bound_of(cl)) make_room(cl, e->bytes, dropped);
  if ((!cl->cap || cl->st.bytes + e->bytes <= cl->cap) && c->st.bytes + e->bytes <= c->capacity) {
    e->cached = 1;
    BUMP(cl, bytes, e->bytes);
    BUMP(cl, entries, 1);
    lru_push_front(c, e);
  } else {
    map_remove(c, e);
    BUMP(cl, bypasses, 1);
  }
}

int vv_cache_get(vv_cache_client *cl, uint64_t key, void **value, vv_cache_ref **ref) {
  vv_cache *c = cl->c;
  *value = NULL;
  *ref = NULL;
  entry *dropped = NULL;
  int rc;
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, cl, key);
  if (e) {
    e->pins++;
    while (e->state == LOADING) pthread_cond_wait(&c->cv, &c->mu);
    rc = finish_wait(cl, e, value, ref, &dropped);
    pthread_mutex_unlock(&c->mu);
    drop_all(c, dropped);
    return rc;
  }
  e = calloc(1, sizeof *e);
  if (e) {
    e->cl = cl;
    e->key = key;
  }
  if (!e || map_insert(c, e) != VV_OK) {
    pthread_mutex_unlock(&c->mu);
    free(e);
    return VV_E_NOMEM;
  }
  e->state = LOADING;
  e->pins = 1;
  BUMP(cl, misses, 1);
  pthread_mutex_unlock(&c->mu);

  void *v = NULL;
  size_t bytes = 0;
  rc = cl->load(cl->ctx, key, &v, &bytes);

  pthread_mutex_lock(&c->mu);
  if (rc) {
    e->state = FAILED;
    e->status = rc;
    map_remove(c, e);
    if (--e->pins == 0) to_drop(e, &dropped);
  } else {
    e->value = v;
    e->bytes = bytes;
    admit(cl, e, &dropped);
    e->state = READY;
    *value = v;
    *ref = e;
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
  return rc;
}

void vv_cache_unpin(vv_cache_client *cl, vv_cache_ref *e) {
  if (!e) return;
  vv_cache *c = cl->c;
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  if (--e->pins == 0) {
    if (!e->cached) to_drop(e, &dropped);
    else settle(cl, &dropped); /* a lowered bound catches up */
  }
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
}

/* ---- the public handle (vecvault.h) -------------------------------------- */

int vv_cache_open(uint64_t bytes, vv_cache **out) {
  *out = NULL;
  if (bytes == 0 || bytes > SIZE_MAX) return VV_E_INVALID;
  return vv_cache_create((size_t)bytes, out);
}

void vv_cache_close(vv_cache *c) { vv_cache_release(c); }

int vv_cache_resize(vv_cache *c, uint64_t bytes) {
  if (bytes == 0 || bytes > SIZE_MAX) return VV_E_INVALID;
  vv_cache_set_capacity(c, (size_t)bytes);
  return VV_OK;
}

void vv_cache_shared_info(vv_cache *c, vv_shared_cache_info *out) {
  vv_cache_stats st;
  vv_cache_get_stats(c, &st);
  *out = (vv_shared_cache_info){st.hits, st.misses, st.evictions, st.bypasses, st.bytes, st.capacity, st.entries,
                                st.clients};
}
