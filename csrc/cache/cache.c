/*
 * cache/cache.c: byte-bounded LRU cache with single-flight loads and pins
 * (see cache.h).
 *
 * An entry is in the hash map from the moment its load starts (so others
 * wait for it instead of loading again) until it is evicted, fails, or is
 * handed out uncached. Only cached, loaded entries are on the LRU list, and
 * only unpinned ones are evicted. Values are dropped outside the lock.
 */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>

#include "../common/util.h"

enum { LOADING, READY, FAILED };

struct vv_cache_ref {
  uint64_t key;
  void *value;
  size_t bytes;
  int pins;
  int state;
  int status;
  int in_map;   /* reachable by key */
  int cached;   /* counted in the cache's bytes and on the LRU list */
  struct vv_cache_ref *prev, *next; /* LRU: head = most recent */
  struct vv_cache_ref *chain;       /* hash bucket */
};

typedef struct vv_cache_ref entry;

struct vv_cache {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t capacity;
  vv_cache_load_fn load;
  vv_cache_drop_fn drop;
  void *ctx;
  entry **buckets;
  size_t nbuckets, count;
  entry *head, *tail;
  vv_cache_stats st;
};

static size_t bucket_of(const vv_cache *c, uint64_t key) {
  uint64_t h = key * 0x9e3779b97f4a7c15ull;
  return (size_t)(h >> 32) & (c->nbuckets - 1);
}

static entry *find(const vv_cache *c, uint64_t key) {
  for (entry *e = c->buckets[bucket_of(c, key)]; e; e = e->chain)
    if (e->key == key) return e;
  return NULL;
}

static void map_remove(vv_cache *c, entry *e) {
  entry **p = &c->buckets[bucket_of(c, e->key)];
  while (*p != e) p = &(*p)->chain;
  *p = e->chain;
  e->chain = NULL;
  e->in_map = 0;
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
        size_t b = bucket_of(c, x->key);
        x->chain = nb[b];
        nb[b] = x;
      }
    }
    free(old);
  }
  size_t b = bucket_of(c, e->key);
  e->chain = c->buckets[b];
  c->buckets[b] = e;
  e->in_map = 1;
  c->count++;
  return VV_OK;
}

static void lru_unlink(vv_cache *c, entry *e) {
  if (e->prev) e->prev->next = e->next;
  else c->head = e->next;
  if (e->next) e->next->prev = e->prev;
  else c->tail = e->prev;
  e->prev = e->next = NULL;
}

static void lru_push_front(vv_cache *c, entry *e) {
  e->prev = NULL;
  e->next = c->head;
  if (c->head) c->head->prev = e;
  c->head = e;
  if (!c->tail) c->tail = e;
}

/* Removes unpinned entries from the cold end until `need` more bytes fit,
 * chaining them on *dropped for the caller to drop after unlocking. */
static void make_room(vv_cache *c, size_t need, entry **dropped) {
  entry *e = c->tail;
  while (e && c->st.bytes + need > c->capacity) {
    entry *prev = e->prev;
    if (e->pins == 0) {
      lru_unlink(c, e);
      map_remove(c, e);
      e->cached = 0;
      c->st.bytes -= e->bytes;
      c->st.entries--;
      c->st.evictions++;
      e->chain = *dropped;
      *dropped = e;
    }
    e = prev;
  }
}

static void drop_all(vv_cache *c, entry *list) {
  while (list) {
    entry *next = list->chain;
    if (list->value) c->drop(c->ctx, list->value);
    free(list);
    list = next;
  }
}

int vv_cache_create(size_t capacity, vv_cache_load_fn load, vv_cache_drop_fn drop, void *ctx, vv_cache **out) {
  *out = NULL;
  if (!load || !drop) return VV_E_INVALID;
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
  c->load = load;
  c->drop = drop;
  c->ctx = ctx;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  *out = c;
  return VV_OK;
}

void vv_cache_free(vv_cache *c) {
  if (!c) return;
  entry *list = NULL;
  for (entry *e = c->head, *next; e; e = next) {
    next = e->next;
    e->chain = list;
    list = e;
  }
  drop_all(c, list);
  free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}

/* Called with the lock held by a thread that pinned `e` while it loaded. */
static int finish_wait(vv_cache *c, entry *e, void **value, vv_cache_ref **ref, entry **dropped) {
  if (e->state == READY) {
    c->st.hits++;
    if (e->cached) {
      lru_unlink(c, e);
      lru_push_front(c, e);
    }
    *value = e->value;
    *ref = e;
    return VV_OK;
  }
  int rc = e->status;
  if (--e->pins == 0) {
    e->chain = *dropped; /* failed: no value, just the struct */
    *dropped = e;
  }
  return rc;
}

int vv_cache_peek(vv_cache *c, uint64_t key, void **value, vv_cache_ref **ref) {
  *value = NULL;
  *ref = NULL;
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, key);
  int rc = VV_MISS;
  if (e && e->state == READY) {
    e->pins++;
    rc = finish_wait(c, e, value, ref, &dropped);
  }
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
  return rc;
}

int vv_cache_get(vv_cache *c, uint64_t key, void **value, vv_cache_ref **ref) {
  *value = NULL;
  *ref = NULL;
  entry *dropped = NULL;
  int rc;
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, key);
  if (e) {
    e->pins++;
    while (e->state == LOADING) pthread_cond_wait(&c->cv, &c->mu);
    rc = finish_wait(c, e, value, ref, &dropped);
    pthread_mutex_unlock(&c->mu);
    drop_all(c, dropped);
    return rc;
  }
  e = calloc(1, sizeof *e);
  if (e) e->key = key;
  if (!e || map_insert(c, e) != VV_OK) {
    pthread_mutex_unlock(&c->mu);
    free(e);
    return VV_E_NOMEM;
  }
  e->state = LOADING;
  e->pins = 1;
  c->st.misses++;
  pthread_mutex_unlock(&c->mu);

  void *v = NULL;
  size_t bytes = 0;
  rc = c->load(c->ctx, key, &v, &bytes);

  pthread_mutex_lock(&c->mu);
  if (rc) {
    e->state = FAILED;
    e->status = rc;
    map_remove(c, e);
    if (--e->pins == 0) {
      e->chain = dropped;
      dropped = e;
    }
  } else {
    e->value = v;
    e->bytes = bytes;
    c->st.bytes_loaded += bytes;
    make_room(c, bytes, &dropped);
    if (c->st.bytes + bytes <= c->capacity) {
      e->cached = 1;
      c->st.bytes += bytes;
      c->st.entries++;
      lru_push_front(c, e);
    } else {
      /* No unpinned room: serve it privately, dropped on its last unpin. */
      map_remove(c, e);
      c->st.bypasses++;
    }
    e->state = READY;
    *value = v;
    *ref = e;
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
  return rc;
}

void vv_cache_unpin(vv_cache *c, vv_cache_ref *e) {
  if (!e) return;
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  if (--e->pins == 0) {
    if (!e->cached) {
      e->chain = NULL;
      dropped = e;
    } else if (c->st.bytes > c->capacity) {
      make_room(c, 0, &dropped); /* a lowered capacity catches up */
    }
  }
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
}

void vv_cache_set_capacity(vv_cache *c, size_t capacity) {
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  c->capacity = capacity;
  c->st.capacity = capacity;
  make_room(c, 0, &dropped);
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
}

void vv_cache_clear(vv_cache *c) {
  entry *dropped = NULL;
  pthread_mutex_lock(&c->mu);
  size_t keep = c->capacity;
  c->capacity = 0;
  make_room(c, 0, &dropped);
  c->capacity = keep;
  pthread_mutex_unlock(&c->mu);
  drop_all(c, dropped);
}

void vv_cache_get_stats(vv_cache *c, vv_cache_stats *out) {
  pthread_mutex_lock(&c->mu);
  *out = c->st;
  pthread_mutex_unlock(&c->mu);
}
