/*
 * db/db_internal.h: the inside of vv_db, shared by db/ and session/ only.
 * Everything else sees the opaque handle in vecvault.h.
 */
#ifndef VV_DB_INTERNAL_H
#define VV_DB_INTERNAL_H

#include <pthread.h>

#include "../crypto/crypto.h"
#include "../distance/distance.h"
#include "../filter/attr.h"
#include "../hnsw/hnsw.h"
#include "../quant/codes_kern.h"
#include "../quant/pq.h"
#include "../session/manifest.h"
#include "../session/lazy.h"
#include "../session/secrets.h"
#include "../store/store.h"
#include "../vecvault.h"

/* What the database remembers of the session it was last saved to or
 * loaded from, so the next save there can be incremental. */
typedef struct vv_bound {
  int bound;
  char *dir;                                  /* as the caller spelled it */
  unsigned char manifest_hash[VV_HASH_BYTES]; /* of the manifest.json we wrote or read */
  vv_manifest m;                              /* that manifest */
} vv_bound;


struct vv_db {
  vv_config cfg;
  pthread_rwlock_t lock;
  vv_store store;
  vv_hnsw *hnsw; /* NULL for the flat index */
  vv_dist_fn kern;
  float sign;
  pthread_mutex_t save_mu; /* one save at a time */
  _Atomic uint64_t mem_estimate; /* bytes, refreshed whenever storage grows */
  vv_secrets secrets;
  vv_bound session;
  int has_session_id;
  unsigned char session_id[VV_SESSION_ID_BYTES];
  /* PQ codes: trained at the first save of an HNSW database (or loaded),
   * written into sessions so they can be opened lazily. */
  vv_pq *pq;
  uint64_t pq_trained_on; /* sample size the codebook was learnt from */
  int has_codes;          /* `codes` is initialised (pq->m bytes per slot) */
  vv_adc_fn adc;          /* code mode: the ADC kernel (set by vv_db_use_codes) */
  vv_arena codes;
  /* Lazily loaded: vectors of non-resident slots are read from chunks
   * through this (session/lazy.h), and the graph runs in code mode. */
  struct vv_lazy *lazy;
  _Atomic size_t cache_bytes; /* the cache bound (kept for eager databases too); set under no lock */
  /* A refresh in place failed after it had begun to change the database:
   * its state is neither generation, so every later call fails with this
   * status instead of answering from it. Set and read under the lock. */
  int broken;
  /* The filterable fields' values, columnar (filter/attr.h), or NULL when
   * the database declared none. Changed under the exclusive lock. */
  vv_attrs *attrs;
};

/* Retires a slot like a delete: the store forgets it, and its filterable
 * values are dropped. Exclusive lock held. */
void vv_db_retire(vv_db *db, uint32_t slot);

/* Recomputes mem_estimate from the arenas' capacity. */
void vv_db_refresh_memory(vv_db *db);

/* Makes the codes arena exist for pq->m bytes per slot, with room for every
 * slot the store can address. */
VV_NODISCARD int vv_db_codes_init(vv_db *db);

/* Puts the graph in code mode: it measures on the PQ codes (ADC), through
 * a provider over db->pq and db->codes, which must stay in place from now
 * on. Needs db->hnsw, db->pq and the codes arena. Exclusive access. */
void vv_db_use_codes(vv_db *db);

/* ---- rows that may live in chunks (db/access.c) ----
 * A slot's vector and metadata are in memory (VV_SLOT_RESIDENT) or, in a
 * lazily loaded database, only in the chunk its loc names. Readers resolve
 * rows through a pin set, which keeps each page it touched pinned (loaded
 * once) until released. Callers hold the database lock. */
/* What one call lends the chunk reads it causes (all borrowed, may be NULL):
 * where to say which chunk object a failed read was, and a hook polled
 * before each chunk is pinned, whose non-zero return stops the call with
 * VV_E_ABORTED. */
typedef struct vv_reads {
  vv_error *err;
  int (*cancel)(void *ctx);
  void *cancel_ctx;
} vv_reads;

static inline vv_error *vv_reads_err(const vv_reads *rd) { return rd ? rd->err : NULL; }
static inline int vv_reads_cancelled(const vv_reads *rd) { return rd && rd->cancel && rd->cancel(rd->cancel_ctx); }

typedef struct vv_pins {
  struct vv_pin *p;
  size_t n, cap;
  const vv_reads *rd;
} vv_pins;

/* The vector and metadata of a live or waypoint slot. */
VV_NODISCARD int vv_db_row(vv_db *db, uint32_t slot, vv_pins *pins, const float **vec, const char **meta,
                           uint32_t *meta_len);
void vv_pins_release(vv_db *db, vv_pins *pins);

/* The one check of a chunk row against the index, eager or lazy: the row
 * of live `slot` carries its id, and its vector is finite. NULL when the
 * row is sound, else what is wrong. */
const char *vv_db_check_row(const vv_db *db, uint32_t slot, const char *id, uint32_t id_len, const float *vec);

/* vv_lazy_check_fn for a database's lazy reader (ctx: the vv_db), checking
 * the rows the store says live in the page with vv_db_check_row. */
const char *vv_db_check_chunk(void *ctx, const vv_lpage *p, const char *const *ids, const uint32_t *id_lens,
                              uint32_t *bad_row);

/* Pins, in `pins`, every page that holds one of the n slots' rows (none
 * for rows in memory): the cached ones at once, the others read in
 * parallel by up to VV_READ_THREADS threads, each with one positioned read.
 * Every read error reaches the caller (the first one's detail in pins->rd);
 * nothing is retried. Then vv_db_row finds each row pinned; `pin_of` (n
 * entries, or NULL) receives the index in pins->p of each slot's page, or
 * UINT32_MAX for a row in memory. */
#define VV_READ_THREADS 4u
/* ... and from an object store, where each read mostly waits on the network
 * (the JavaScript bridge runs at most 16 requests of a session at once). */
#define VV_READ_THREADS_REMOTE 16u
VV_NODISCARD int vv_db_pin_rows(vv_db *db, const uint32_t *slots, size_t n, vv_pins *pins, uint32_t *pin_of);
/* The vector of slots[i] after vv_db_pin_rows: `pin` is its pin_of[i]
 * (UINT32_MAX: in memory). VV_E_CHUNK_CORRUPT if the page does not hold it. */
VV_NODISCARD int vv_db_pinned_row(vv_db *db, const vv_pins *pins, uint32_t slot, uint32_t pin, const float **vec);

/* ---- search (db/db.c, db/query.c) ---- */

/* Lazy search, second step: re-ranks c[0..n) by full vectors (pinned in
 * `pins`, read as needed) and keeps the best k, nearest first. */
VV_NODISCARD int vv_db_rerank(vv_db *db, const float *q, vv_cand *c, uint32_t n, uint32_t k, uint32_t *nout,
                              vv_pins *pins);
/* The public results of c[0..n) (internal distances), rows read through pins. */
VV_NODISCARD int vv_db_build_results(vv_db *db, const vv_cand *c, uint32_t n, int include_vector, vv_pins *pins,
                                     vv_results **out);
/* A filtered query under the read lock (db/query.c): compiles o->filter,
 * plans, and leaves the best candidates, nearest first, in *cands (room for
 * `pool` + 1; it may be reallocated) and their number in *n, re-ranked when
 * lazy. *plan is the plan used, or VV_PLAN_NONE when the filter matches
 * everything: the caller then searches as if there were none. */
VV_NODISCARD int vv_db_search_filtered(vv_db *db, const float *q, uint32_t want, uint32_t ef, uint32_t pool,
                                       const vv_search_opts *o, vv_cand **cands, uint32_t *n, vv_pins *pins,
                                       int *plan);

/* Exact search over every live vector, chunk by chunk when lazy. */
VV_NODISCARD int vv_db_exact_search(vv_db *db, const float *q, uint32_t k, vv_cand *out, uint32_t *nout,
                                    const vv_reads *rd);

#endif
