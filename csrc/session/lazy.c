/*
 * session/lazy.c: on-demand page reads for lazily loaded sessions (see
 * lazy.h).
 */
#include "lazy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/codec.h"
#include "../common/pool.h"
#include "object.h"
#include "paged.h"

/* Cache keys: (chunk seq << 32) | page, and this page number for a chunk's table. */
#define TABLE_PAGE UINT32_MAX
#define KEY(seq, page) ((uint64_t)(seq) << 32 | (page))

/* Where one generation's chunks live. Reference-counted: a load in flight
 * keeps its source alive across a rebind. */
typedef struct csrc {
  int refs;
  int paged; /* format 3: chunks are paged objects */
  vv_io io;  /* a copy: the caller's table is only borrowed for its call */
  vv_sctx sc;
  char *dir;
  vv_keyring *kr;
  vv_mchunk *chunks; /* in manifest order */
  vv_chunk_index idx;
  size_t n;
} csrc;

/* Why a read failed, kept for the callers that share the load (the cache
 * hands waiters only the status) and for the next ones. */
#define FAIL_NOTES 8

typedef struct fail_note {
  int used;
  uint64_t key;
  char message[sizeof ((vv_error *)0)->message];
} fail_note;

struct vv_lazy {
  uint32_t dim;
  vv_lazy_check_fn check;
  void *check_ctx;
  pthread_mutex_t mu; /* guards cur, prev and the notes */
  csrc *cur, *prev;
  vv_cache_client *cache;
  int private_cache; /* the cache is this reader's own: its bound is the cache's */
  _Atomic uint64_t bytes_read;
  fail_note notes[FAIL_NOTES]; /* a ring, newest at next - 1 */
  unsigned next;
};

static void csrc_unref(csrc *s) {
  if (!s || --s->refs > 0) return;
  vv_sctx_destroy(&s->sc);
  vv_keyring_free(s->kr);
  free(s->dir);
  free(s->chunks);
  vv_chunk_index_free(&s->idx);
  free(s);
}

static int csrc_create(const vv_io *io, const char *dir, const vv_manifest *m, const vv_keyring *kr, csrc **out) {
  *out = NULL;
  csrc *s = calloc(1, sizeof *s);
  if (!s) return VV_E_NOMEM;
  s->refs = 1;
  s->paged = m->version >= 3;
  s->n = m->nchunks;
  s->dir = strdup(dir);
  s->chunks = malloc((s->n ? s->n : 1) * sizeof *s->chunks);
  int rc = s->dir && s->chunks ? VV_OK : VV_E_NOMEM;
  if (!rc) {
    memcpy(s->chunks, m->chunks, s->n * sizeof *s->chunks);
    rc = vv_chunk_index_build(&s->idx, s->chunks, s->n);
  }
  if (!rc && kr) rc = vv_keyring_clone(kr, &s->kr);
  if (!rc) {
    s->io = *(io ? io : vv_io_posix());
    rc = vv_sctx_init(&s->sc, &s->io, s->dir);
  }
  if (rc) {
    csrc_unref(s);
    return rc;
  }
  s->sc.kr = s->kr;
  memcpy(s->sc.session_id, m->session_id, VV_SESSION_ID_BYTES);
  *out = s;
  return VV_OK;
}

static const vv_mchunk *csrc_find(const csrc *s, uint64_t seq) {
  long i = s ? vv_chunk_index_find(&s->idx, seq) : -1;
  return i < 0 ? NULL : &s->chunks[i];
}

/* The source that lists chunk `seq` (current first), referenced; NULL if none. */
static csrc *source_of(vv_lazy *lz, uint64_t seq, vv_mchunk *mc) {
  pthread_mutex_lock(&lz->mu);
  csrc *src = lz->cur;
  const vv_mchunk *c = csrc_find(src, seq);
  if (!c) {
    src = lz->prev;
    c = csrc_find(src, seq);
  }
  if (c) {
    src->refs++;
    *mc = *c;
  }
  pthread_mutex_unlock(&lz->mu);
  return c ? src : NULL;
}

static void source_done(vv_lazy *lz, csrc *src) {
  pthread_mutex_lock(&lz->mu);
  csrc_unref(src);
  pthread_mutex_unlock(&lz->mu);
}

/* ---- cached values ---------------------------------------------------------- */

typedef struct lpage_mem {
  int is_table;
  vv_lpage p;
  vv_ptable t;       /* a table entry */
  void *block;       /* vecs (64-byte aligned), then slots, offsets, metadata; from common/pool.h */
  size_t block_bytes; /* as the pool reported it */
} lpage_mem;

static void drop_value(void *ctx, void *value) {
  (void)ctx;
  lpage_mem *m = value;
  if (!m) return;
  vv_ptable_free(&m->t);
  vv_pool_free(m->block, m->block_bytes);
  free(m);
}

/* Records why the read of `key` failed (message already formatted). */
static void note_failure(vv_lazy *lz, uint64_t key, const char *message) {
  pthread_mutex_lock(&lz->mu);
  fail_note *n = &lz->notes[lz->next++ % FAIL_NOTES];
  n->used = 1;
  n->key = key;
  snprintf(n->message, sizeof n->message, "%s", message);
  pthread_mutex_unlock(&lz->mu);
}

static int build_page(uint32_t dim, const vv_chunk_view *v, uint32_t page, uint32_t first, lpage_mem **out,
                      size_t *bytes) {
  uint32_t n = v->count;
  size_t vbytes = (size_t)n * dim * sizeof(float);
  size_t metas = 0;
  for (uint32_t i = 0; i < n; i++) metas += v->metas[i] ? v->meta_lens[i] : 0;
  if (metas > UINT32_MAX) return VV_E_CHUNK_CORRUPT;
  lpage_mem *m = calloc(1, sizeof *m);
  if (!m) return VV_E_NOMEM;
  size_t head = (vbytes + 63) & ~(size_t)63;
  size_t rest = (size_t)n * 4 + ((size_t)n + 1) * 4 + metas;
  m->block = vv_pool_alloc(head + rest, &m->block_bytes);
  if (!m->block) {
    drop_value(NULL, m);
    return VV_E_NOMEM;
  }
  uint32_t *slots = (uint32_t *)((char *)m->block + head);
  uint32_t *off = slots + n;
  char *mp = (char *)(off + n + 1);
  vv_read_f32le(v->vectors, (size_t)n * dim, m->block);
  uint32_t at = 0;
  for (uint32_t i = 0; i < n; i++) {
    slots[i] = vv_le32(v->slots + 4 * (size_t)i);
    off[i] = at;
    if (v->metas[i]) {
      memcpy(mp + at, v->metas[i], v->meta_lens[i]);
      at += v->meta_lens[i];
    }
  }
  off[n] = at;
  m->p = (vv_lpage){v->seq, page, first, n, dim, slots, m->block, off, mp};
  *out = m;
  /* What the allocations cost: the pool's block, and the struct with malloc's header. */
  *bytes = sizeof *m + 16 + m->block_bytes;
  return VV_OK;
}

/* Decodes and validates one page's plaintext; on failure *why says how it
 * failed (with *row set when one row is to blame). */
static int open_page(vv_lazy *lz, uint64_t seq, uint32_t page, uint32_t first, uint32_t want_count,
                     const unsigned char *plain, size_t len, lpage_mem **out, size_t *bytes, const char **why,
                     uint32_t *row) {
  vv_chunk_view v;
  memset(&v, 0, sizeof v);
  lpage_mem *m = NULL;
  int rc = vv_chunk_decode(plain, len, lz->dim, &v);
  if (rc == VV_E_CORRUPT || (!rc && (v.seq != seq || v.count != want_count))) {
    rc = VV_E_CHUNK_CORRUPT;
    *why = "does not decode (or is another chunk's)";
  }
  if (!rc) rc = build_page(lz->dim, &v, page, first, &m, bytes);
  if (!rc && lz->check && (*why = lz->check(lz->check_ctx, &m->p, v.ids, v.id_lens, row))) rc = VV_E_CHUNK_CORRUPT;
  vv_chunk_view_free(&v);
  if (rc) drop_value(NULL, m);
  else *out = m;
  return rc;
}

static int load_table(vv_lazy *lz, csrc *src, const vv_mchunk *mc, lpage_mem **out, size_t *bytes, vv_error *err) {
  lpage_mem *m = calloc(1, sizeof *m);
  if (!m) return VV_E_NOMEM;
  m->is_table = 1;
  int rc = vv_paged_read_table(&src->sc, &mc->ref, VV_OBJ_KIND_CHUNK, mc->seq, mc->count, lz->dim, &m->t, err);
  if (rc) {
    free(m);
    return rc;
  }
  lz->bytes_read += m->t.off[0];
  *out = m;
  *bytes = sizeof *m + vv_ptable_bytes(&m->t);
  return VV_OK;
}

static int get_table(vv_lazy *lz, uint64_t seq, const vv_ptable **t, vv_cache_ref **ref) {
  void *v;
  int rc = vv_cache_get(lz->cache, KEY(seq, TABLE_PAGE), &v, ref);
  *t = rc ? NULL : &((lpage_mem *)v)->t;
  return rc;
}

/* Reads page `page` of chunk mc from src: one positioned read (format 3),
 * or the whole object (formats 1 and 2, page 0). */
static int read_page(vv_lazy *lz, csrc *src, const vv_mchunk *mc, uint32_t page, vv_buf *buf,
                     const unsigned char **plain, size_t *len, uint32_t *first, uint32_t *count, vv_error *err) {
  if (!src->paged) {
    if (page != 0) return VV_E_INVALID;
    *first = 0;
    *count = mc->count;
    int rc = vv_object_read_into(&src->sc, &mc->ref, VV_OBJ_KIND_CHUNK, mc->seq, buf, plain, len, err);
    if (!rc) lz->bytes_read += mc->ref.bytes;
    return rc;
  }
  const vv_ptable *t;
  vv_cache_ref *tref;
  int rc = get_table(lz, mc->seq, &t, &tref);
  if (rc) {
    vv_lazy_explain(lz, mc->seq, TABLE_PAGE, rc, err);
    return rc;
  }
  if (page >= t->npages) {
    rc = VV_E_INVALID;
  } else {
    *first = t->first[page];
    *count = t->first[page + 1] - t->first[page];
    rc = vv_paged_read_page(&src->sc, &mc->ref, VV_OBJ_KIND_CHUNK, mc->seq, t, page, buf, plain, len, err);
    if (!rc) lz->bytes_read += buf->len;
  }
  vv_cache_unpin(lz->cache, tref);
  return rc;
}

/* The cache's loader: a table or a page. */
static int load_value(void *ctx, uint64_t key, void **value, size_t *bytes) {
  vv_lazy *lz = ctx;
  uint64_t seq = key >> 32;
  uint32_t page = (uint32_t)key;
  vv_error err = {{0}};
  vv_mchunk mc;
  csrc *src = source_of(lz, seq, &mc);
  if (!src) {
    snprintf(err.message, sizeof err.message, "chunk %llu is in no chunk list of this session",
             (unsigned long long)seq);
    note_failure(lz, key, err.message);
    return VV_E_CHUNK_MISSING;
  }
  lpage_mem *m = NULL;
  int rc;
  const char *why = NULL;
  uint32_t row = UINT32_MAX;
  if (page == TABLE_PAGE) {
    rc = src->paged ? load_table(lz, src, &mc, &m, bytes, &err) : VV_E_INVALID;
  } else {
    vv_buf file = {.big = 1};
    const unsigned char *plain = NULL;
    size_t len = 0;
    uint32_t first = 0, count = 0;
    rc = read_page(lz, src, &mc, page, &file, &plain, &len, &first, &count, &err);
    if (!rc) rc = open_page(lz, seq, page, first, count, plain, len, &m, bytes, &why, &row);
    vv_buf_free(&file);
  }
  source_done(lz, src);
  if (rc) {
    char where[48] = "";
    if (page != TABLE_PAGE && src->paged) snprintf(where, sizeof where, " page %u", page);
    if (why && row != UINT32_MAX)
      snprintf(err.message, sizeof err.message, "chunk object %s (seq %llu)%s is corrupt: row %u %s", mc.ref.name,
               (unsigned long long)seq, where, row, why);
    else if (why)
      snprintf(err.message, sizeof err.message, "chunk object %s (seq %llu)%s is corrupt: it %s", mc.ref.name,
               (unsigned long long)seq, where, why);
    else if (!err.message[0])
      snprintf(err.message, sizeof err.message, "chunk object %s (seq %llu)%s could not be read: %s", mc.ref.name,
               (unsigned long long)seq, where,
               rc != VV_E_NOMEM && *vv_io_last_error() ? vv_io_last_error() : vv_strerror(rc));
    note_failure(lz, key, err.message);
    return rc;
  }
  *value = m;
  return VV_OK;
}

/* ---- API ---------------------------------------------------------------- */

int vv_lazy_create(uint32_t dim, vv_lazy_check_fn check, void *check_ctx, const vv_io *io, const char *dir,
                   const vv_manifest *m, const vv_keyring *kr, vv_cache *shared, size_t capacity, int capped,
                   vv_lazy **out) {
  *out = NULL;
  vv_lazy *lz = calloc(1, sizeof *lz);
  if (!lz) return VV_E_NOMEM;
  lz->dim = dim;
  lz->check = check;
  lz->check_ctx = check_ctx;
  atomic_init(&lz->bytes_read, 0);
  pthread_mutex_init(&lz->mu, NULL);
  int rc = csrc_create(io, dir, m, kr, &lz->cur);
  vv_cache *own = NULL;
  if (!rc && !shared) {
    rc = vv_cache_create(capacity, &own);
    lz->private_cache = 1;
  }
  if (!rc)
    rc = vv_cache_client_create(shared ? shared : own, shared && capped ? capacity : 0, load_value, drop_value, lz,
                                &lz->cache);
  vv_cache_release(own); /* the client holds it */
  if (rc) {
    vv_lazy_free(lz);
    return rc;
  }
  *out = lz;
  return VV_OK;
}

void vv_lazy_free(vv_lazy *lz) {
  if (!lz) return;
  vv_cache_client_free(lz->cache);
  csrc_unref(lz->cur);
  csrc_unref(lz->prev);
  pthread_mutex_destroy(&lz->mu);
  free(lz);
}

int vv_lazy_rebind(vv_lazy *lz, const vv_io *io, const char *dir, const vv_manifest *m, const vv_keyring *kr) {
  csrc *s;
  int rc = csrc_create(io, dir, m, kr, &s);
  if (rc) return rc;
  pthread_mutex_lock(&lz->mu);
  csrc_unref(lz->prev);
  lz->prev = lz->cur;
  lz->cur = s;
  pthread_mutex_unlock(&lz->mu);
  return VV_OK;
}

int vv_lazy_remote(vv_lazy *lz) {
  pthread_mutex_lock(&lz->mu);
  int remote = (lz->cur->io.flags & VV_IO_OBJECT_STORE) != 0;
  pthread_mutex_unlock(&lz->mu);
  return remote;
}

void vv_lazy_adopt(vv_lazy *to, vv_lazy *from) {
  int clash = 0;
  for (size_t i = 0; i < to->cur->n && !clash; i++) {
    const vv_mchunk *a = &to->cur->chunks[i];
    for (csrc *s = from->cur; s && !clash; s = s == from->cur ? from->prev : NULL) {
      const vv_mchunk *b = csrc_find(s, a->seq);
      clash = b && strcmp(a->ref.name, b->ref.name) != 0;
    }
  }
  vv_cache_client *c = to->cache;
  int priv = to->private_cache;
  to->cache = from->cache;
  to->private_cache = from->private_cache;
  from->cache = c;
  from->private_cache = priv;
  vv_cache_client_set_ctx(to->cache, to);
  vv_cache_client_set_ctx(from->cache, from);
  if (clash) vv_cache_client_clear(to->cache);
}

int vv_lazy_locate(vv_lazy *lz, uint64_t seq, uint32_t row, uint32_t *page, uint32_t *npages) {
  vv_mchunk mc;
  csrc *src = source_of(lz, seq, &mc);
  if (!src) return VV_E_CHUNK_MISSING;
  int paged = src->paged;
  source_done(lz, src);
  if (!paged) {
    *page = 0;
    *npages = 1;
    return row < mc.count ? VV_OK : VV_E_CHUNK_CORRUPT;
  }
  const vv_ptable *t;
  vv_cache_ref *ref;
  int rc = get_table(lz, seq, &t, &ref);
  if (rc) return rc;
  if (row < t->count) {
    *page = vv_ptable_page_of(t, row);
    *npages = t->npages;
  } else {
    rc = VV_E_CHUNK_CORRUPT;
  }
  vv_cache_unpin(lz->cache, ref);
  return rc;
}

int vv_lazy_page(vv_lazy *lz, uint64_t seq, uint32_t page, const vv_lpage **out, vv_cache_ref **ref) {
  void *v;
  *out = NULL;
  if (page == TABLE_PAGE) return VV_E_INVALID;
  int rc = vv_cache_get(lz->cache, KEY(seq, page), &v, ref);
  if (!rc) *out = &((lpage_mem *)v)->p;
  return rc;
}

int vv_lazy_peek(vv_lazy *lz, uint64_t seq, uint32_t page, const vv_lpage **out, vv_cache_ref **ref) {
  void *v;
  *out = NULL;
  if (page == TABLE_PAGE) return VV_E_INVALID;
  int rc = vv_cache_peek(lz->cache, KEY(seq, page), &v, ref);
  if (!rc) *out = &((lpage_mem *)v)->p;
  return rc;
}

void vv_lazy_unpin(vv_lazy *lz, vv_cache_ref *ref) {
  if (ref) vv_cache_unpin(lz->cache, ref);
}

void vv_lazy_explain(vv_lazy *lz, uint64_t seq, uint32_t page, int status, vv_error *err) {
  if (!err) return;
  pthread_mutex_lock(&lz->mu);
  if (!err->message[0]) {
    const fail_note *found = NULL;
    for (unsigned i = 1; i <= FAIL_NOTES && !found; i++) {
      const fail_note *n = &lz->notes[(lz->next - i) % FAIL_NOTES];
      /* A page's failure may be its table's. */
      if (n->used && (n->key == KEY(seq, page) || n->key == KEY(seq, TABLE_PAGE))) found = n;
    }
    const vv_mchunk *mc = csrc_find(lz->cur, seq);
    if (!mc) mc = csrc_find(lz->prev, seq);
    if (found && (status == VV_E_CHUNK_MISSING || status == VV_E_CHUNK_CORRUPT || status == VV_E_IO ||
                  status == VV_E_ACCESS || status == VV_E_ABORTED || status == VV_E_ASYNC_REQUIRED))
      snprintf(err->message, sizeof err->message, "%s", found->message);
    else if (mc)
      snprintf(err->message, sizeof err->message, "chunk object %s (seq %llu): %s", mc->ref.name,
               (unsigned long long)seq, vv_strerror(status));
    else
      snprintf(err->message, sizeof err->message, "chunk %llu: %s", (unsigned long long)seq, vv_strerror(status));
  }
  pthread_mutex_unlock(&lz->mu);
}

int vv_lazy_chunk_list(vv_lazy *lz, uint64_t **seqs, size_t *n) {
  pthread_mutex_lock(&lz->mu);
  size_t cnt = lz->cur->n;
  uint64_t *copy = malloc((cnt ? cnt : 1) * sizeof *copy);
  for (size_t i = 0; copy && i < cnt; i++) copy[i] = lz->cur->chunks[i].seq;
  pthread_mutex_unlock(&lz->mu);
  if (!copy) return VV_E_NOMEM;
  *seqs = copy;
  *n = cnt;
  return VV_OK;
}

void vv_lazy_set_capacity(vv_lazy *lz, size_t capacity) {
  if (lz->private_cache) vv_cache_set_capacity(vv_cache_client_cache(lz->cache), capacity);
  else vv_cache_client_set_cap(lz->cache, capacity);
}

void vv_lazy_get_stats(vv_lazy *lz, vv_cache_info *out) {
  vv_cache_stats cs;
  vv_cache_client_stats(lz->cache, &cs);
  *out = (vv_cache_info){1, cs.hits, cs.misses, cs.evictions, cs.bytes, cs.capacity, cs.entries, lz->bytes_read};
}
