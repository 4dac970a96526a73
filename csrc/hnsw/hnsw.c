/*
 * hnsw/hnsw.c: HNSW graph construction and search (see hnsw.h).
 *
 * Layout: level-0 links of every slot sit in one arena record
 *   uint32 hdr = count | (level + 1) << 16, then 2*m slot numbers;
 * upper levels of a node live in one malloc'd block of level * (1 + m)
 * uint32 (count, then m links, per level), found through a per-slot pointer.
 * hdr == 0 means the slot has never been linked.
 *
 * Code mode (vv_hnsw_use_provider, for lazily loaded sessions): distances
 * come from a provider instead of the store's vectors. A query's distance
 * to a node is the provider's (db/ looks up PQ codes in an ADC table); a
 * node's distance to another (link selection) uses both nodes' vectors as
 * the provider reconstructs them. Queries themselves (a search's, or a new
 * vector's on insert) are exact.
 */
#include "hnsw.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parallel.h"
#include "../common/util.h"
#include "../distance/distance.h"

#define LOCK_STRIPES 4096u
#define MAX_LEVEL 16
#define COUNT_MASK 0xffffu
#define NO_NODE UINT32_MAX

/* Per-search working memory, pooled so searches do not allocate. */
typedef struct scratch {
  uint16_t *tags;      /* visited marks, one per slot; reset by bumping `cur` */
  size_t tag_cap;
  uint16_t cur;
  vv_cand *cand;       /* min-heap of frontier nodes */
  size_t cand_cap;
  vv_cand *top;        /* max-heap of the best `ef` found */
  size_t top_cap;
  vv_cand *work;       /* selection and re-linking buffers */
  size_t work_cap;
  vv_cand *picked;
  uint32_t *nbuf;      /* copy of a link list read under its lock */
  void *qstate;        /* code mode: the provider's prepared query (query_bytes) */
  float *dbuf[2];      /* code mode: reconstructed node vectors */
  struct scratch *next;
} scratch;

struct vv_hnsw {
  const vv_store *store;
  uint32_t dim, m, m0, efc;
  float sign;          /* internal distance = sign * kern(a, b) */
  vv_dist_fn kern;
  int coded;              /* code mode: measure through `prov` */
  vv_hnsw_provider prov;
  double level_mult;
  uint64_t seed;
  atomic_uint_fast64_t level_counter;
  vv_arena l0;         /* uint32[1 + m0] per slot */
  vv_arena upper;      /* uint32_t * per slot */
  uint64_t cap;
  pthread_mutex_t global; /* guards ep and max_level during inserts */
  uint32_t ep;
  int max_level;
  pthread_mutex_t pool_mu;
  scratch *pool;
  pthread_mutex_t locks[LOCK_STRIPES];
};

/* ---- small helpers ---------------------------------------------------- */

/* The distance from the current query (which the provider prepared in
 * sc->qstate in code mode) to node s. */
static inline float dist_q(const vv_hnsw *h, const scratch *sc, const float *q, uint32_t s) {
  if (h->coded) return h->prov.distance(h->prov.ctx, sc->qstate, s);
  return h->sign * h->kern(q, vv_store_vec(h->store, s), h->dim);
}

/* A node's vector as the graph sees it: stored, or reconstructed into buf. */
static inline const float *node_vec(const vv_hnsw *h, uint32_t s, float *buf) {
  if (!h->coded) return vv_store_vec(h->store, s);
  h->prov.vector(h->prov.ctx, s, buf);
  return buf;
}

/* The distance from a full vector `a` (not the current query) to node s. */
static inline float dist_v(const vv_hnsw *h, scratch *sc, const float *a, uint32_t s) {
  return h->sign * h->kern(a, node_vec(h, s, sc->dbuf[1]), h->dim);
}

static inline void prefetch_node(const vv_hnsw *h, uint32_t s) {
  if (!h->coded) VV_PREFETCH(vv_store_vec(h->store, s));
  else if (h->prov.prefetch) h->prov.prefetch(h->prov.ctx, s);
}

/* Makes `q` the current query: in code mode, the provider prepares it. */
static inline void set_query(const vv_hnsw *h, scratch *sc, const float *q) {
  if (h->coded) h->prov.set_query(h->prov.ctx, q, sc->qstate);
}

static inline uint32_t *links_at(const vv_hnsw *h, uint32_t slot, int level) {
  if (level == 0) return (uint32_t *)vv_arena_at(&h->l0, slot);
  uint32_t *up = *(uint32_t **)vv_arena_at(&h->upper, slot);
  return up + (size_t)(level - 1) * (1 + h->m);
}

static inline int node_level(const vv_hnsw *h, uint32_t slot) {
  uint32_t hdr = *(const uint32_t *)vv_arena_at(&h->l0, slot);
  return (int)(hdr >> 16) - 1;
}

static inline pthread_mutex_t *lock_of(vv_hnsw *h, uint32_t slot) {
  return &h->locks[slot & (LOCK_STRIPES - 1)];
}

static int grow_cands(vv_cand **buf, size_t *cap, size_t need) {
  if (need <= *cap) return VV_OK;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  vv_cand *p = (vv_cand *)realloc(*buf, c * sizeof *p);
  if (!p) return VV_E_NOMEM;
  *buf = p;
  *cap = c;
  return VV_OK;
}

/* ---- scratch pool ----------------------------------------------------- */

static void scratch_free(scratch *s) {
  if (!s) return;
  free(s->tags);
  free(s->cand);
  free(s->top);
  free(s->work);
  free(s->picked);
  free(s->nbuf);
  free(s->qstate);
  free(s->dbuf[0]);
  free(s->dbuf[1]);
  free(s);
}

static int scratch_get(vv_hnsw *h, scratch **out) {
  pthread_mutex_lock(&h->pool_mu);
  scratch *s = h->pool;
  if (s) h->pool = s->next;
  pthread_mutex_unlock(&h->pool_mu);
  if (!s) {
    s = (scratch *)calloc(1, sizeof *s);
    if (!s) return VV_E_NOMEM;
    s->nbuf = (uint32_t *)malloc((h->m0 + 1) * sizeof(uint32_t));
    s->picked = (vv_cand *)malloc((h->m0 + 1) * sizeof(vv_cand));
    if (!s->nbuf || !s->picked) {
      scratch_free(s);
      return VV_E_NOMEM;
    }
  }
  if (h->coded && !s->qstate) {
    s->qstate = malloc(h->prov.query_bytes ? h->prov.query_bytes : 1);
    s->dbuf[0] = (float *)malloc((size_t)h->dim * sizeof(float));
    s->dbuf[1] = (float *)malloc((size_t)h->dim * sizeof(float));
    if (!s->qstate || !s->dbuf[0] || !s->dbuf[1]) {
      scratch_free(s);
      return VV_E_NOMEM;
    }
  }
  if (s->tag_cap < h->cap) {
    uint16_t *t = (uint16_t *)calloc(h->cap, sizeof *t);
    if (!t) {
      scratch_free(s);
      return VV_E_NOMEM;
    }
    free(s->tags);
    s->tags = t;
    s->tag_cap = h->cap;
    s->cur = 0;
  }
  *out = s;
  return VV_OK;
}

static void scratch_put(vv_hnsw *h, scratch *s) {
  pthread_mutex_lock(&h->pool_mu);
  s->next = h->pool;
  h->pool = s;
  pthread_mutex_unlock(&h->pool_mu);
}

static inline void next_tag(scratch *s) {
  if (++s->cur == 0) {
    memset(s->tags, 0, s->tag_cap * sizeof *s->tags);
    s->cur = 1;
  }
}

/* ---- lifecycle -------------------------------------------------------- */

int vv_hnsw_create(const vv_hnsw_params *p, const vv_store *store, vv_hnsw **out) {
  *out = NULL;
  if (p->m < 2 || p->m > VV_HNSW_MAX_M || p->ef_construction < 1) return VV_E_INVALID;
  vv_hnsw *h = (vv_hnsw *)calloc(1, sizeof *h);
  if (!h) return VV_E_NOMEM;
  const vv_kernels *k = vv_kernels_best();
  h->store = store;
  h->dim = store->dim;
  h->m = p->m;
  h->m0 = 2 * p->m;
  h->efc = p->ef_construction;
  h->kern = p->metric == VV_METRIC_L2 ? k->l2sq : k->dot;
  h->sign = p->metric == VV_METRIC_L2 ? 1.0f : -1.0f;
  h->level_mult = 1.0 / log((double)p->m);
  h->seed = p->seed ? p->seed : 0x5eed5eedull;
  atomic_init(&h->level_counter, 0);
  vv_arena_init(&h->l0, (1 + (size_t)h->m0) * sizeof(uint32_t), 1u << 20);
  vv_arena_init(&h->upper, sizeof(uint32_t *), 256u << 10);
  h->ep = NO_NODE;
  h->max_level = -1;
  pthread_mutex_init(&h->global, NULL);
  pthread_mutex_init(&h->pool_mu, NULL);
  for (unsigned i = 0; i < LOCK_STRIPES; i++) pthread_mutex_init(&h->locks[i], NULL);
  *out = h;
  return VV_OK;
}

void vv_hnsw_free(vv_hnsw *h) {
  if (!h) return;
  /* Only slots the store ever handed out can have upper levels. */
  uint64_t n = h->store->nslots < h->cap ? h->store->nslots : h->cap;
  for (uint64_t i = 0; i < n; i++) free(*(uint32_t **)vv_arena_at(&h->upper, i));
  vv_arena_destroy(&h->l0);
  vv_arena_destroy(&h->upper);
  while (h->pool) {
    scratch *s = h->pool;
    h->pool = s->next;
    scratch_free(s);
  }
  pthread_mutex_destroy(&h->global);
  pthread_mutex_destroy(&h->pool_mu);
  for (unsigned i = 0; i < LOCK_STRIPES; i++) pthread_mutex_destroy(&h->locks[i]);
  free(h);
}

int vv_hnsw_reserve(vv_hnsw *h, uint64_t nslots) {
  int rc = vv_arena_reserve(&h->l0, nslots);
  if (!rc) rc = vv_arena_reserve(&h->upper, nslots);
  if (rc) return rc;
  uint64_t c0 = vv_arena_capacity(&h->l0), c1 = vv_arena_capacity(&h->upper);
  h->cap = c0 < c1 ? c0 : c1;
  return VV_OK;
}

/* ---- search ----------------------------------------------------------- */

/* Reads a link list into the scratch buffer; under the node's lock when
 * inserts may be running. Returns the count. */
static inline uint32_t read_links(vv_hnsw *h, scratch *sc, uint32_t slot, int level, int locked,
                                  const uint32_t **links) {
  uint32_t *p = links_at(h, slot, level);
  if (!locked) {
    *links = p + 1;
    return p[0] & COUNT_MASK;
  }
  pthread_mutex_lock(lock_of(h, slot));
  uint32_t n = p[0] & COUNT_MASK;
  memcpy(sc->nbuf, p + 1, n * sizeof(uint32_t));
  pthread_mutex_unlock(lock_of(h, slot));
  *links = sc->nbuf;
  return n;
}

/* Greedy descent from `cur` through levels top..stop+1 (beam width 1). */
static vv_cand greedy(vv_hnsw *h, scratch *sc, const float *q, vv_cand cur, int top, int stop, int locked) {
  for (int lc = top; lc > stop; lc--) {
    int changed = 1;
    while (changed) {
      changed = 0;
      const uint32_t *links;
      uint32_t n = read_links(h, sc, cur.slot, lc, locked, &links);
      for (uint32_t j = 0; j < n; j++) {
        float d = dist_q(h, sc, q, links[j]);
        if (d < cur.dist) {
          cur.dist = d;
          cur.slot = links[j];
          changed = 1;
        }
      }
    }
  }
  return cur;
}

/* Whether a beam keeps node s: not `exclude`, live when filter_live, and
 * passing f (NULL: no predicate; f implies filter_live). */
static inline int eligible(const vv_store *st, uint32_t s, int filter_live, uint32_t exclude,
                           const vv_hnsw_filter *f) {
  if (s == exclude || (filter_live && !vv_store_is_live(st, s))) return 0;
  return !f || f->pass(f->ctx, s);
}

/* Starts a beam: every start node joins the frontier (sc->cand), the
 * eligible ones the results (sc->top). Returns the results' bound. */
static float seed_beam(scratch *sc, const vv_store *st, const vv_cand *entry, int nentry, uint32_t ef,
                       int filter_live, uint32_t exclude, const vv_hnsw_filter *f, size_t *ncand, size_t *ntop) {
  float bound = INFINITY;
  for (int e = 0; e < nentry; e++) {
    sc->tags[entry[e].slot] = sc->cur;
    if (eligible(st, entry[e].slot, filter_live, exclude, f)) {
      vv_heap_push_max(sc->top, ntop, entry[e]);
      if (*ntop > ef) vv_heap_pop_max(sc->top, ntop);
      bound = sc->top[0].dist;
    }
    vv_heap_push_min(sc->cand, ncand, entry[e]);
  }
  return bound;
}

/* Beam search on one level from `nentry` (1 or 2) distinct start nodes.
 * Leaves the best `ef` eligible nodes in sc->top (a max-heap of *ntop
 * entries). Ineligible nodes (dead when filter_live, or `exclude`) are
 * walked through but never kept. */
static int search_layer(vv_hnsw *h, scratch *sc, const float *q, const vv_cand *entry, int nentry, uint32_t ef,
                        int level, int locked, int filter_live, uint32_t exclude, size_t *ntop_out) {
  const vv_store *st = h->store;
  int rc = grow_cands(&sc->top, &sc->top_cap, (size_t)ef + 2);
  if (!rc) rc = grow_cands(&sc->cand, &sc->cand_cap, 256);
  if (rc) return rc;
  next_tag(sc);
  uint16_t *tags = sc->tags;
  uint16_t tag = sc->cur;
  size_t ncand = 0, ntop = 0;
  float bound = seed_beam(sc, st, entry, nentry, ef, filter_live, exclude, NULL, &ncand, &ntop);
  while (ncand) {
    vv_cand c = vv_heap_pop_min(sc->cand, &ncand);
    if (c.dist > bound && ntop >= ef) break;
    const uint32_t *links;
    uint32_t n = read_links(h, sc, c.slot, level, locked, &links);
    if (n) {
      VV_PREFETCH(&tags[links[0]]);
      prefetch_node(h, links[0]);
    }
    for (uint32_t j = 0; j < n; j++) {
      uint32_t nb = links[j];
      if (j + 1 < n) {
        VV_PREFETCH(&tags[links[j + 1]]);
        prefetch_node(h, links[j + 1]);
      }
      if (tags[nb] == tag) continue;
      tags[nb] = tag;
      float d = dist_q(h, sc, q, nb);
      if (ntop < ef || d < bound) {
        if (ncand + 1 > sc->cand_cap && grow_cands(&sc->cand, &sc->cand_cap, ncand + 1)) return VV_E_NOMEM;
        vv_heap_push_min(sc->cand, &ncand, (vv_cand){d, nb});
        if (nb != exclude && (!filter_live || vv_store_is_live(st, nb))) {
          vv_heap_push_max(sc->top, &ntop, (vv_cand){d, nb});
          if (ntop > ef) vv_heap_pop_max(sc->top, &ntop);
          bound = sc->top[0].dist;
        }
      }
    }
  }
  *ntop_out = ntop;
  return VV_OK;
}

/* Level-0 beam search that keeps only live nodes passing f (see
 * vv_hnsw_filter). With f->expand, failing neighbours are stepped over:
 * only passing nodes are measured and queued, and the start nodes, which
 * may fail, only seed the frontier. */
static int search_layer_filtered(vv_hnsw *h, scratch *sc, const float *q, const vv_cand *entry, int nentry,
                                 uint32_t ef, const vv_hnsw_filter *f, size_t *ntop_out) {
  const vv_store *st = h->store;
  int rc = grow_cands(&sc->top, &sc->top_cap, (size_t)ef + 2);
  if (!rc) rc = grow_cands(&sc->cand, &sc->cand_cap, 256);
  if (!rc) rc = grow_cands(&sc->work, &sc->work_cap, 2 * (size_t)h->m0 + 1);
  if (rc) return rc;
  next_tag(sc);
  uint16_t *tags = sc->tags;
  uint16_t tag = sc->cur;
  size_t ncand = 0, ntop = 0;
  float bound = seed_beam(sc, st, entry, nentry, ef, 1, NO_NODE, f, &ncand, &ntop);
  uint32_t limit = 2 * h->m0;
  uint32_t *pick = (uint32_t *)sc->work; /* passing nodes to measure, at most `limit` (vv_cand is wider) */
  while (ncand) {
    vv_cand c = vv_heap_pop_min(sc->cand, &ncand);
    if (c.dist > bound && ntop >= ef) break;
    const uint32_t *links;
    uint32_t n = read_links(h, sc, c.slot, 0, 0, &links);
    uint32_t np = 0;
    for (uint32_t j = 0; j < n && np < limit; j++) {
      uint32_t nb = links[j];
      if (tags[nb] == tag) continue;
      tags[nb] = tag;
      if (!f->expand || eligible(st, nb, 1, NO_NODE, f)) {
        pick[np++] = nb;
        continue;
      }
      /* Expansion: nb fails; its passing neighbours stand in for it. */
      const uint32_t *l2;
      uint32_t n2 = read_links(h, sc, nb, 0, 0, &l2);
      for (uint32_t i = 0; i < n2 && np < limit; i++) {
        uint32_t x = l2[i];
        if (tags[x] == tag) continue;
        if (!eligible(st, x, 1, NO_NODE, f)) continue; /* may still be expanded via another */
        tags[x] = tag;
        pick[np++] = x;
      }
    }
    for (uint32_t j = 0; j < np; j++) {
      uint32_t nb = pick[j];
      if (j + 1 < np) prefetch_node(h, pick[j + 1]);
      float d = dist_q(h, sc, q, nb);
      if (ntop < ef || d < bound) {
        if (ncand + 1 > sc->cand_cap && grow_cands(&sc->cand, &sc->cand_cap, ncand + 1)) return VV_E_NOMEM;
        vv_heap_push_min(sc->cand, &ncand, (vv_cand){d, nb});
        /* In-loop mode queues failing nodes too (as waypoints), never keeps them. */
        if (f->expand || eligible(st, nb, 1, NO_NODE, f)) {
          vv_heap_push_max(sc->top, &ntop, (vv_cand){d, nb});
          if (ntop > ef) vv_heap_pop_max(sc->top, &ntop);
          bound = sc->top[0].dist;
        }
      }
    }
  }
  *ntop_out = ntop;
  return VV_OK;
}

int vv_hnsw_search(vv_hnsw *h, const float *q, uint32_t k, uint32_t ef, vv_cand *out, uint32_t *nout) {
  return vv_hnsw_search_filtered(h, q, k, ef, NULL, out, nout);
}

int vv_hnsw_search_filtered(vv_hnsw *h, const float *q, uint32_t k, uint32_t ef, const vv_hnsw_filter *f,
                            vv_cand *out, uint32_t *nout) {
  *nout = 0;
  if (h->ep == NO_NODE || k == 0) return VV_OK;
  scratch *sc;
  int rc = scratch_get(h, &sc);
  if (rc) return rc;
  if (ef < k) ef = k;
  set_query(h, sc, q);
  /* The level-0 beam starts at the end of the greedy descent and also at
   * the entry point itself. The second start costs one distance and is
   * expanded only while the beam has room, but it ties exhaustive search to
   * the graph's invariant: every live node is reachable on level 0 from the
   * entry point (vv_hnsw_check_reachable), not necessarily from wherever
   * the descent ends, so a beam as wide as the database finds them all. */
  vv_cand start[2];
  start[1] = (vv_cand){dist_q(h, sc, q, h->ep), h->ep};
  start[0] = greedy(h, sc, q, start[1], h->max_level, 0, 0);
  size_t ntop = 0;
  int nstart = start[0].slot == h->ep ? 1 : 2;
  if (f) rc = search_layer_filtered(h, sc, q, start, nstart, ef, f, &ntop);
  else rc = search_layer(h, sc, q, start, nstart, ef, 0, 0, 1, NO_NODE, &ntop);
  if (!rc) {
    rc = grow_cands(&sc->work, &sc->work_cap, ntop);
    if (!rc) {
      vv_heap_drain_sorted(sc->top, ntop, sc->work);
      uint32_t n = ntop < k ? (uint32_t)ntop : k;
      memcpy(out, sc->work, n * sizeof *out);
      *nout = n;
    }
  }
  scratch_put(h, sc);
  return rc;
}

float vv_hnsw_distance(const vv_hnsw *h, const float *q, uint32_t slot) {
  return h->sign * h->kern(q, vv_store_vec(h->store, slot), h->dim);
}

void vv_hnsw_use_provider(vv_hnsw *h, const vv_hnsw_provider *p) {
  h->coded = p != NULL;
  if (p) h->prov = *p;
  else memset(&h->prov, 0, sizeof h->prov);
  /* Pooled scratch was sized for the other mode. */
  while (h->pool) {
    scratch *s = h->pool;
    h->pool = s->next;
    scratch_free(s);
  }
}

/* ---- construction ----------------------------------------------------- */

/* Malkov's heuristic: walk candidates nearest first and keep one only if it
 * is nearer to the base than to every node already kept, which spreads
 * links across directions instead of clustering them. `c` is sorted. */
static uint32_t select_neighbors(const vv_hnsw *h, scratch *sc, const vv_cand *c, size_t n, uint32_t max,
                                 vv_cand *picked) {
  uint32_t np = 0;
  for (size_t i = 0; i < n && np < max; i++) {
    const float *cv = node_vec(h, c[i].slot, sc->dbuf[0]);
    int keep = 1;
    for (uint32_t r = 0; r < np; r++) {
      if (dist_v(h, sc, cv, picked[r].slot) < c[i].dist) {
        keep = 0;
        break;
      }
    }
    if (keep) picked[np++] = c[i];
  }
  return np;
}

static int cmp_cand(const void *a, const void *b) {
  float x = ((const vv_cand *)a)->dist, y = ((const vv_cand *)b)->dist;
  return (x > y) - (x < y);
}

/* Adds a back-link nb -> s at `level`, pruning nb's list if it is full. */
static int link_back(vv_hnsw *h, scratch *sc, uint32_t nb, uint32_t s, int level) {
  uint32_t max = level == 0 ? h->m0 : h->m;
  pthread_mutex_lock(lock_of(h, nb));
  uint32_t *p = links_at(h, nb, level);
  uint32_t cnt = p[0] & COUNT_MASK;
  for (uint32_t j = 0; j < cnt; j++) {
    if (p[1 + j] == s) {
      pthread_mutex_unlock(lock_of(h, nb));
      return VV_OK;
    }
  }
  vv_store_mark(h->store, nb, VV_SLOT_REC_DIRTY);
  if (cnt < max) {
    p[1 + cnt] = s;
    p[0] = (p[0] & ~COUNT_MASK) | (cnt + 1);
    pthread_mutex_unlock(lock_of(h, nb));
    return VV_OK;
  }
  if (grow_cands(&sc->work, &sc->work_cap, (size_t)cnt + 1)) {
    pthread_mutex_unlock(lock_of(h, nb));
    return VV_E_NOMEM;
  }
  const float *bv = node_vec(h, nb, sc->dbuf[0]);
  for (uint32_t j = 0; j < cnt; j++) sc->work[j] = (vv_cand){dist_v(h, sc, bv, p[1 + j]), p[1 + j]};
  sc->work[cnt] = (vv_cand){dist_v(h, sc, bv, s), s};
  qsort(sc->work, (size_t)cnt + 1, sizeof(vv_cand), cmp_cand);
  uint32_t np = select_neighbors(h, sc, sc->work, (size_t)cnt + 1, max, sc->picked);
  for (uint32_t j = 0; j < np; j++) p[1 + j] = sc->picked[j].slot;
  p[0] = (p[0] & ~COUNT_MASK) | np;
  pthread_mutex_unlock(lock_of(h, nb));
  return VV_OK;
}

static int random_level(vv_hnsw *h) {
  uint64_t st = h->seed + atomic_fetch_add(&h->level_counter, 1) * 0x9e3779b97f4a7c15ull;
  double u = vv_unit_double(vv_splitmix64(&st));
  int lvl = (int)(-log(u) * h->level_mult);
  return lvl < MAX_LEVEL ? lvl : MAX_LEVEL;
}

/* Gives a never-linked slot its level and (empty) link storage. */
static int prepare_node(vv_hnsw *h, uint32_t s, int *level) {
  uint32_t *p = links_at(h, s, 0);
  pthread_mutex_lock(lock_of(h, s));
  int linked = p[0] != 0;
  pthread_mutex_unlock(lock_of(h, s));
  if (linked) return VV_E_INTERNAL;
  int lvl = random_level(h);
  uint32_t *up = NULL;
  if (lvl > 0) {
    up = (uint32_t *)calloc((size_t)lvl * (1 + h->m), sizeof(uint32_t));
    if (!up) return VV_E_NOMEM;
  }
  pthread_mutex_lock(lock_of(h, s));
  *(uint32_t **)vv_arena_at(&h->upper, s) = up;
  p[0] = (uint32_t)(lvl + 1) << 16;
  pthread_mutex_unlock(lock_of(h, s));
  vv_store_mark(h->store, s, VV_SLOT_REC_DIRTY);
  *level = lvl;
  return VV_OK;
}

int vv_hnsw_insert(vv_hnsw *h, uint32_t s) {
  if (s >= h->cap) return VV_E_INTERNAL;
  int level;
  int rc = prepare_node(h, s, &level);
  if (rc) return rc;
  const float *q = vv_store_vec(h->store, s);

  pthread_mutex_lock(&h->global);
  uint32_t ep = h->ep;
  int max_level = h->max_level;
  if (ep == NO_NODE) {
    h->ep = s;
    h->max_level = level;
    pthread_mutex_unlock(&h->global);
    return VV_OK;
  }
  /* A node that raises the top level keeps the global lock until it is the
   * new entry point, so no other insert starts from a half-built top. */
  int raises = level > max_level;
  if (!raises) pthread_mutex_unlock(&h->global);

  scratch *sc;
  rc = scratch_get(h, &sc);
  if (rc) goto done;
  set_query(h, sc, q);
  vv_cand cur = {dist_q(h, sc, q, ep), ep};
  cur = greedy(h, sc, q, cur, max_level, level, 1);
  /* Two phases: first write this node's own list on every level, and only
   * then add the back-links that let other inserts reach it. Linking level
   * by level instead publishes the node on level l+1 while its level-l list
   * is still empty; a concurrent insert that descends through it then finds
   * only this node on level l, links to it alone, and adds itself to the
   * empty list, which the writer below overwrites a moment later: the
   * concurrent node loses its only in-edge and no search reaches it again.
   * Until the second phase no other insert can reach this node, so nothing
   * else writes its lists and no edge is lost. */
  int top = VV_MIN(level, max_level);
  uint32_t picked[MAX_LEVEL + 1][VV_HNSW_MAX_M];
  uint32_t npicked[MAX_LEVEL + 1] = {0};
  for (int lc = top; lc >= 0 && !rc; lc--) {
    size_t ntop = 0;
    rc = search_layer(h, sc, q, &cur, 1, h->efc, lc, 1, 0, s, &ntop);
    if (!rc) rc = grow_cands(&sc->work, &sc->work_cap, ntop);
    if (rc) break;
    if (!ntop) continue;
    vv_heap_drain_sorted(sc->top, ntop, sc->work);
    cur = sc->work[0];
    uint32_t np = select_neighbors(h, sc, sc->work, ntop, h->m, sc->picked);
    for (uint32_t j = 0; j < np; j++) picked[lc][j] = sc->picked[j].slot;
    npicked[lc] = np;

    pthread_mutex_lock(lock_of(h, s));
    uint32_t *p = links_at(h, s, lc);
    memcpy(p + 1, picked[lc], np * sizeof(uint32_t));
    p[0] = (p[0] & ~COUNT_MASK) | np;
    pthread_mutex_unlock(lock_of(h, s));
  }
  /* Bottom up, so by the time a search can descend through this node on an
   * upper level it is already reachable on the levels below. */
  for (int lc = 0; lc <= top && !rc; lc++)
    for (uint32_t j = 0; j < npicked[lc] && !rc; j++) rc = link_back(h, sc, picked[lc][j], s, lc);
  scratch_put(h, sc);
done:
  if (raises) {
    if (!rc) {
      h->ep = s;
      h->max_level = level;
    }
    pthread_mutex_unlock(&h->global);
  }
  return rc;
}

/* ---- reachability ----------------------------------------------------- */

/* Slots that can hold a node: those the store handed out and we reserved. */
static inline uint64_t graph_slots(const vv_hnsw *h) {
  return h->store->nslots < h->cap ? h->store->nslots : h->cap;
}

/* Marks in `seen` every node reachable from `from` over level-0 links, not
 * re-entering nodes already marked. `queue` has room for graph_slots().
 * Level 0 alone, because that is where a search's beam runs: upper levels
 * only shortcut to nodes that are also on level 0, so this is stricter than
 * a walk over every level. */
static void reach_from(const vv_hnsw *h, uint8_t *seen, uint32_t *queue, uint32_t from) {
  uint64_t n = graph_slots(h);
  if (from >= n || seen[from] || node_level(h, from) < 0) return;
  size_t head = 0, tail = 0;
  seen[from] = 1;
  queue[tail++] = from;
  while (head < tail) {
    const uint32_t *p = links_at(h, queue[head++], 0);
    uint32_t cnt = p[0] & COUNT_MASK;
    for (uint32_t j = 0; j < cnt; j++) {
      uint32_t t = p[1 + j];
      if (t >= n || seen[t] || node_level(h, t) < 0) continue;
      seen[t] = 1;
      queue[tail++] = t;
    }
  }
}

static int reach_alloc(const vv_hnsw *h, uint8_t **seen, uint32_t **queue) {
  uint64_t n = graph_slots(h);
  *seen = (uint8_t *)malloc(n ? n : 1);
  *queue = (uint32_t *)malloc((n ? n : 1) * sizeof **queue);
  if (*seen && *queue) return VV_OK;
  free(*seen);
  free(*queue);
  return VV_E_NOMEM;
}

int vv_hnsw_check_reachable(const vv_hnsw *h, uint64_t *unreachable) {
  *unreachable = 0;
  uint8_t *seen;
  uint32_t *queue;
  if (reach_alloc(h, &seen, &queue)) return VV_E_NOMEM;
  uint64_t n = graph_slots(h);
  memset(seen, 0, n);
  if (h->ep != NO_NODE) reach_from(h, seen, queue, h->ep);
  for (uint64_t i = 0; i < h->store->nslots; i++)
    if (vv_store_is_live(h->store, (uint32_t)i) && (i >= n || !seen[i])) (*unreachable)++;
  free(seen);
  free(queue);
  return VV_OK;
}

/* Gives the unreachable node u an in-edge on level 0 from the nearest
 * reachable node with room in its list. A level-0 search that starts at the
 * entry point (no descent: the descent may end outside the entry point's
 * level-0 reach) only ever finds reachable nodes, so its results are the
 * candidates. When every
 * candidate's list is full, the nearest one's farthest link makes way and
 * *displaced is set: that node may need the same treatment. */
static int attach(vv_hnsw *h, scratch *sc, uint32_t u, int *displaced) {
  const float *q = node_vec(h, u, sc->dbuf[0]);
  set_query(h, sc, q);
  vv_cand start = {dist_q(h, sc, q, h->ep), h->ep};
  size_t ntop = 0;
  int rc = search_layer(h, sc, q, &start, 1, h->efc, 0, 0, 1, u, &ntop);
  if (!rc) rc = grow_cands(&sc->work, &sc->work_cap, ntop);
  if (rc || !ntop) return rc;
  vv_heap_drain_sorted(sc->top, ntop, sc->work);
  for (size_t i = 0; i < ntop; i++) {
    uint32_t r = sc->work[i].slot;
    uint32_t *p = links_at(h, r, 0);
    uint32_t cnt = p[0] & COUNT_MASK;
    if (cnt < h->m0) {
      p[1 + cnt] = u;
      p[0] = (p[0] & ~COUNT_MASK) | (cnt + 1);
      vv_store_mark(h->store, r, VV_SLOT_REC_DIRTY);
      return VV_OK;
    }
  }
  uint32_t r = sc->work[0].slot;
  uint32_t *p = links_at(h, r, 0);
  const float *rv = node_vec(h, r, sc->dbuf[0]);
  uint32_t far = 0;
  float far_d = -INFINITY;
  for (uint32_t j = 0; j < h->m0; j++) {
    float d = dist_v(h, sc, rv, p[1 + j]);
    if (d > far_d) {
      far_d = d;
      far = j;
    }
  }
  p[1 + far] = u;
  vv_store_mark(h->store, r, VV_SLOT_REC_DIRTY);
  *displaced = 1;
  return VV_OK;
}

/* Consolidation re-picks the lists of every node that lost a neighbour,
 * and a live node whose in-edges all came from the dead, or were re-picked
 * away, would no longer be found by any search. A whole-graph walk finds
 * those and attach() gives each an in-edge; everything reachable from it
 * comes back with it. Exclusive access. */
int vv_hnsw_repair(vv_hnsw *h) {
  if (h->ep == NO_NODE) return VV_OK;
  uint8_t *seen;
  uint32_t *queue;
  if (reach_alloc(h, &seen, &queue)) return VV_E_NOMEM;
  scratch *sc = NULL;
  int rc = VV_OK;
  uint64_t n = graph_slots(h);
  /* A displaced link can orphan another node, which the next round picks
   * up. Lists are rarely full after the heuristic has thinned them, so one
   * round is the rule; the bound only keeps a pathological graph of full
   * lists from trading one orphan for another forever. */
  for (int displaced = 1, round = 0; displaced && !rc && round < 16; round++) {
    displaced = 0;
    memset(seen, 0, n);
    reach_from(h, seen, queue, h->ep);
    for (uint64_t i = 0; i < n && !rc; i++) {
      uint32_t u = (uint32_t)i;
      if (seen[u] || !vv_store_is_live(h->store, u) || node_level(h, u) < 0) continue;
      if (!sc && (rc = scratch_get(h, &sc)) != VV_OK) break;
      rc = attach(h, sc, u, &displaced);
      reach_from(h, seen, queue, u);
    }
  }
  if (sc) scratch_put(h, sc);
  free(seen);
  free(queue);
  return rc;
}

/* ---- consolidation ---------------------------------------------------- */

typedef struct consolidate_ctx {
  vv_hnsw *h;
} consolidate_ctx;

static inline int is_dead_node(const vv_hnsw *h, uint32_t slot) {
  return !vv_store_is_live(h->store, slot) && *(const uint32_t *)vv_arena_at(&h->l0, slot) != 0;
}

static void set_links(vv_hnsw *h, uint32_t n, int level, const vv_cand *picked, uint32_t np) {
  vv_store_mark(h->store, n, VV_SLOT_REC_DIRTY);
  pthread_mutex_lock(lock_of(h, n));
  uint32_t *p = links_at(h, n, level);
  for (uint32_t j = 0; j < np; j++) p[1 + j] = picked[j].slot;
  p[0] = (p[0] & ~COUNT_MASK) | np;
  pthread_mutex_unlock(lock_of(h, n));
}

static int relink_by_search(vv_hnsw *h, scratch *sc, uint32_t n, int level, uint32_t max) {
  const float *bv = node_vec(h, n, sc->dbuf[0]);
  set_query(h, sc, bv);
  size_t ntop = 0;
  vv_cand self = {0.0f, n};
  int rc = search_layer(h, sc, bv, &self, 1, h->efc, level, 1, 1, n, &ntop);
  if (!rc) rc = grow_cands(&sc->work, &sc->work_cap, ntop);
  if (rc || !ntop) return rc;
  vv_heap_drain_sorted(sc->top, ntop, sc->work);
  uint32_t np = select_neighbors(h, sc, sc->work, ntop, max, sc->picked);
  set_links(h, n, level, sc->picked, np);
  return VV_OK;
}

/* Replaces a live node's links to dead nodes by the best of its live links
 * and the dead nodes' live links (one hop), re-picked by the heuristic. Only
 * this node's lists are written; dead nodes' lists are only read. */
static int mend_node(void *ctx, size_t i, unsigned worker) {
  (void)worker;
  vv_hnsw *h = ((consolidate_ctx *)ctx)->h;
  uint32_t n = (uint32_t)i;
  if (!vv_store_is_live(h->store, n)) return VV_OK;
  int top = node_level(h, n);
  if (top < 0) return VV_OK;
  scratch *sc = NULL;
  int rc = VV_OK;
  for (int lc = 0; lc <= top && !rc; lc++) {
    uint32_t *p = links_at(h, n, lc);
    uint32_t cnt = p[0] & COUNT_MASK;
    int any_dead = 0;
    for (uint32_t j = 0; j < cnt && !any_dead; j++) any_dead = is_dead_node(h, p[1 + j]);
    if (!any_dead) continue;
    if (!sc && (rc = scratch_get(h, &sc)) != VV_OK) return rc;
    uint32_t max = lc == 0 ? h->m0 : h->m;
    size_t room = (size_t)cnt * (1 + max);
    if ((rc = grow_cands(&sc->work, &sc->work_cap, room)) != VV_OK) break;
    next_tag(sc);
    sc->tags[n] = sc->cur;
    const float *bv = node_vec(h, n, sc->dbuf[0]);
    size_t nc = 0;
    for (uint32_t j = 0; j < cnt; j++) {
      uint32_t c = p[1 + j];
      if (!is_dead_node(h, c)) {
        if (sc->tags[c] != sc->cur) {
          sc->tags[c] = sc->cur;
          sc->work[nc++] = (vv_cand){dist_v(h, sc, bv, c), c};
        }
        continue;
      }
      const uint32_t *dl = links_at(h, c, lc);
      uint32_t dc = dl[0] & COUNT_MASK;
      for (uint32_t x = 0; x < dc; x++) {
        uint32_t c2 = dl[1 + x];
        if (sc->tags[c2] == sc->cur || !vv_store_is_live(h->store, c2)) continue;
        sc->tags[c2] = sc->cur;
        sc->work[nc++] = (vv_cand){dist_v(h, sc, bv, c2), c2};
      }
    }
    qsort(sc->work, nc, sizeof(vv_cand), cmp_cand);
    uint32_t np = select_neighbors(h, sc, sc->work, nc, max, sc->picked);
    set_links(h, n, lc, sc->picked, np);
    /* When most of the neighbourhood died the one-hop candidates are too
     * few; search the level from the node itself for a full list. */
    if (np < max / 2) rc = relink_by_search(h, sc, n, lc, max);
  }
  if (sc) scratch_put(h, sc);
  return rc;
}

int vv_hnsw_consolidate(vv_hnsw *h, unsigned threads) {
  uint64_t n = h->store->nslots;
  consolidate_ctx ctx = {h};
  int rc = vv_parallel_for((size_t)n, threads, mend_node, &ctx, NULL, NULL, 0, n);
  if (rc) return rc;
  /* No live node points at a dead one any more: unlink the dead so their
   * slots can be reused as fresh nodes, and find a live entry point. */
  uint32_t best = NO_NODE;
  int best_level = -1;
  for (uint64_t i = 0; i < n; i++) {
    uint32_t s = (uint32_t)i;
    if (is_dead_node(h, s)) {
      uint32_t **up = (uint32_t **)vv_arena_at(&h->upper, s);
      free(*up);
      *up = NULL;
      memset(links_at(h, s, 0), 0, h->l0.rec_size);
      vv_store_mark(h->store, s, VV_SLOT_REC_DIRTY);
    } else if (vv_store_is_live(h->store, s) && node_level(h, s) > best_level) {
      best_level = node_level(h, s);
      best = s;
    }
  }
  if (h->ep == NO_NODE || !vv_store_is_live(h->store, h->ep) || node_level(h, h->ep) < 0) {
    h->ep = best;
    h->max_level = best_level;
  }
  return vv_hnsw_repair(h);
}

/* ---- diagnostics ------------------------------------------------------ */

int vv_hnsw_level(const vv_hnsw *h, uint32_t slot) {
  if (slot >= h->cap) return -1;
  return node_level(h, slot);
}

uint32_t vv_hnsw_links(const vv_hnsw *h, uint32_t slot, int level, const uint32_t **links) {
  *links = NULL;
  if (slot >= h->cap || level < 0 || level > node_level(h, slot)) return 0;
  uint32_t *p = links_at(h, slot, level);
  *links = p + 1;
  return p[0] & COUNT_MASK;
}

uint32_t vv_hnsw_entry(const vv_hnsw *h, int *max_level) {
  *max_level = h->max_level;
  return h->ep;
}

/* ---- import (loading a saved graph) ----------------------------------- */

int vv_hnsw_fits(const vv_hnsw *h, uint32_t nlevels, const uint32_t *counts) {
  if (nlevels > MAX_LEVEL + 1) return 0;
  for (uint32_t l = 0; l < nlevels; l++)
    if (counts[l] > (l == 0 ? h->m0 : h->m)) return 0;
  return 1;
}

int vv_hnsw_set_node(vv_hnsw *h, uint32_t slot, uint32_t nlevels, const uint32_t *const *links,
                     const uint32_t *counts) {
  if (slot >= h->cap || !vv_hnsw_fits(h, nlevels, counts)) return VV_E_CORRUPT;
  uint32_t *up = NULL;
  if (nlevels > 1) {
    up = (uint32_t *)calloc((size_t)(nlevels - 1) * (1 + h->m), sizeof(uint32_t));
    if (!up) return VV_E_NOMEM;
  }
  uint32_t **slot_up = (uint32_t **)vv_arena_at(&h->upper, slot);
  free(*slot_up);
  *slot_up = up;
  uint32_t *p0 = links_at(h, slot, 0);
  memset(p0, 0, h->l0.rec_size);
  if (nlevels == 0) return VV_OK;
  p0[0] = (nlevels << 16) | counts[0];
  memcpy(p0 + 1, links[0], counts[0] * sizeof(uint32_t));
  for (uint32_t l = 1; l < nlevels; l++) {
    uint32_t *p = links_at(h, slot, (int)l);
    p[0] = counts[l];
    memcpy(p + 1, links[l], counts[l] * sizeof(uint32_t));
  }
  return VV_OK;
}

int vv_hnsw_set_entry(vv_hnsw *h, uint32_t entry, int max_level) {
  if (entry == NO_NODE && max_level == -1) {
    h->ep = NO_NODE;
    h->max_level = -1;
    return VV_OK;
  }
  if (entry >= h->cap || node_level(h, entry) != max_level) return VV_E_CORRUPT;
  h->ep = entry;
  h->max_level = max_level;
  return VV_OK;
}
