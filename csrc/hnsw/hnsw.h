/*
 * hnsw/hnsw.h: a Hierarchical Navigable Small World graph over the slots of
 * a vv_store (Malkov & Yashunin, 2016).
 *
 * The graph owns only links and levels; vectors and liveness are read from
 * the store. Deleted slots stay in the graph as waypoints (never returned)
 * until vv_hnsw_consolidate re-links their neighbours around them and
 * unlinks them; only then may the store hand their slots out again, so a
 * reused slot never inherits edges meant for its old vector.
 *
 * Concurrency: any number of vv_hnsw_insert calls may run at once (per-node
 * striped locks plus one lock for the entry point), and any number of
 * vv_hnsw_search calls may run at once, but the two must not overlap:
 * the database holds its lock exclusively around inserts. vv_hnsw_reserve
 * needs exclusive access.
 */
#ifndef VV_HNSW_H
#define VV_HNSW_H

#include <stdint.h>

#include "../common/heap.h"
#include "../store/store.h"
#include "../vecvault.h"

typedef struct vv_hnsw vv_hnsw;

typedef struct vv_hnsw_params {
  uint32_t m;               /* links per node on upper levels; 2*m on level 0 */
  uint32_t ef_construction;
  uint64_t seed;
  vv_metric metric;         /* cosine expects unit vectors in the store */
} vv_hnsw_params;

/* Candidates carry the internal distance: l2 -> squared L2; cosine and
 * dot -> -dot (cosine vectors are unit length). Smaller is nearer. */

VV_NODISCARD int vv_hnsw_create(const vv_hnsw_params *p, const vv_store *store, vv_hnsw **out);
void vv_hnsw_free(vv_hnsw *h);

/* Make node storage for slots [0, nslots) exist. Exclusive access. */
VV_NODISCARD int vv_hnsw_reserve(vv_hnsw *h, uint64_t nslots);

/* Link `slot` (whose vector is already in the store) into the graph. The
 * slot must not be linked already (VV_E_INTERNAL). */
VV_NODISCARD int vv_hnsw_insert(vv_hnsw *h, uint32_t slot);

/* Up to `k` nearest live slots, nearest first, using a beam of max(ef, k). */
VV_NODISCARD int vv_hnsw_search(vv_hnsw *h, const float *query, uint32_t k, uint32_t ef, vv_cand *out,
                                uint32_t *nout);

/* A predicate a search keeps its results to (db/ runs a filter program
 * through it; this folder knows nothing of filters). `pass` is called for
 * live slots only, from any number of threads at once.
 *
 * Two ways to walk (Patel et al., "ACORN: Performant and Predicate-Agnostic
 * Search Over Vector Embeddings and Structured Data", SIGMOD 2024):
 *   - expand = 0: every node is walked, measured and queued as usual; only
 *     passing ones enter the beam (the predicate checked inside the loop).
 *     For broad predicates, where most neighbours pass anyway.
 *   - expand = 1 (ACORN-1's neighbour expansion on an ordinary HNSW graph):
 *     a neighbour that fails is neither measured nor queued; its own
 *     neighbours are looked at in its place, so the walk stays connected
 *     through the passing subgraph when most nodes fail. At most 2 x m0
 *     passing nodes are taken per expanded node. */
typedef struct vv_hnsw_filter {
  int (*pass)(const void *ctx, uint32_t slot);
  const void *ctx;
  int expand;
} vv_hnsw_filter;

/* vv_hnsw_search keeping only live slots that pass `f` (NULL: all). Fewer
 * than k when the walk finds fewer: the caller decides what then. */
VV_NODISCARD int vv_hnsw_search_filtered(vv_hnsw *h, const float *query, uint32_t k, uint32_t ef,
                                         const vv_hnsw_filter *f, vv_cand *out, uint32_t *nout);

/* Route every live node around the dead ones, then unlink the dead, pick
 * a live entry point, and give every live node that is no longer reachable
 * from it on level 0 an in-edge from its nearest reachable node (see
 * vv_hnsw_check_reachable). Exclusive access; uses up to `threads` threads. */
VV_NODISCARD int vv_hnsw_consolidate(vv_hnsw *h, unsigned threads);

/* Gives every live node that is not reachable from the entry point on
 * level 0 an in-edge from its nearest reachable node, so that a beam as wide
 * as the graph finds every live node. Inserts can leave such orphans (the
 * link heuristic may prune a node out of every list that named it, most
 * often under the inner-product metric); a save repairs them before it
 * writes the graph. Exclusive access. */
VV_NODISCARD int vv_hnsw_repair(vv_hnsw *h);

/* Internal distance between a query and a slot's stored vector. */
float vv_hnsw_distance(const vv_hnsw *h, const float *query, uint32_t slot);

/*
 * A distance provider: how the graph measures when the store does not hold
 * every vector (a lazily loaded session, whose vectors stay in chunks). The
 * graph then reads from the store only the vector of a node it is
 * inserting (new vectors are in memory) and asks the provider for every
 * other distance; db/ implements it over compact PQ codes, so this folder
 * knows nothing of quantisation or sessions.
 *
 * Distances are on the graph's internal scale (see above: squared L2 for
 * l2, negated inner product for dot and cosine; smaller is nearer). Any
 * number of threads call the functions at once (every search and insert
 * has its own `state`), so they must only read `ctx`. Every linked slot,
 * and every slot a link names, must be measurable before it is reached.
 */
typedef struct vv_hnsw_provider {
  void *ctx;          /* borrowed: passed back to every call; outlives the graph's code mode */
  size_t query_bytes; /* scratch one prepared query needs; the graph allocates it (malloc alignment) */
  /* Prepares `state` (query_bytes) for distances from q[dim], a full
   * vector: a search's query, or the vector of a node being linked. */
  void (*set_query)(void *ctx, const float *q, void *state);
  /* The distance from the query prepared in `state` to `slot`. */
  float (*distance)(void *ctx, const void *state, uint32_t slot);
  /* `slot`'s vector as the provider knows it (a reconstruction), into
   * out[dim]; the graph measures node-to-node distances on it with the
   * metric's kernel when it selects links. */
  void (*vector)(void *ctx, uint32_t slot, float *out);
  /* Optional (NULL): distance(slot) follows soon; bring its bytes closer. */
  void (*prefetch)(void *ctx, uint32_t slot);
} vv_hnsw_provider;

/* Code mode: from now on the graph measures through `p` (copied; p->ctx is
 * borrowed) instead of the store's vectors, and searches return the
 * provider's distances for the caller to re-rank. NULL turns it off.
 * Exclusive access. */
void vv_hnsw_use_provider(vv_hnsw *h, const vv_hnsw_provider *p);

/*
 * Reading the graph: production API, not test diagnostics. A save
 * captures the graph through these, a load checks the graph it applied
 * with them, and the C tests walk it.
 *
 * vv_hnsw_level: the top level of `slot`'s node, or -1 if it is not linked
 * (never linked, unlinked by consolidation, or beyond the reserved
 * capacity).
 * vv_hnsw_links: the number of links of `slot` at `level` (0..its level),
 * and in *links a pointer to them, borrowed from the graph: valid, and
 * unchanging, only while no insert, consolidation or set_node runs. 0 and
 * NULL for a level the node does not have.
 * vv_hnsw_entry: the entry point (UINT32_MAX when the graph is empty) and
 * in *max_level its level (-1 when empty).
 *
 * Locking: these take no lock. Call them with inserts and consolidation
 * excluded: the database's lock held (shared is enough, since writers
 * hold it exclusively), or exclusive access as while loading. A link list
 * read under the shared lock stays valid until the lock is released.
 */
int vv_hnsw_level(const vv_hnsw *h, uint32_t slot);
uint32_t vv_hnsw_links(const vv_hnsw *h, uint32_t slot, int level, const uint32_t **links);
uint32_t vv_hnsw_entry(const vv_hnsw *h, int *max_level);

/* Diagnostic: counts in *unreachable the live slots that a breadth-first
 * walk over level-0 links from the entry point does not reach. Upper levels
 * only shortcut to nodes that are on level 0 too, and a search's beam starts
 * on level 0 at the entry point as well as where its descent ends, so a
 * count of 0 means a beam as wide as the database finds every live vector.
 * Dead waypoints are walked through but not counted; an empty graph with
 * live slots counts them all. The graph keeps this at 0 after builds and
 * consolidation. Exclusive access; VV_OK or VV_E_NOMEM. */
VV_NODISCARD int vv_hnsw_check_reachable(const vv_hnsw *h, uint64_t *unreachable);

/* Loading: replace a slot's node with the given levels and links (nlevels
 * 0 unlinks it). Counts over the level's capacity are VV_E_CORRUPT; link
 * targets are checked by the caller. Exclusive access. */
/* Would vv_hnsw_set_node take a node of these levels and link counts? */
int vv_hnsw_fits(const vv_hnsw *h, uint32_t nlevels, const uint32_t *counts);
VV_NODISCARD int vv_hnsw_set_node(vv_hnsw *h, uint32_t slot, uint32_t nlevels, const uint32_t *const *links,
                                  const uint32_t *counts);
/* Loading: the entry point (UINT32_MAX with -1 for an empty graph). */
VV_NODISCARD int vv_hnsw_set_entry(vv_hnsw *h, uint32_t entry, int max_level);

#endif
