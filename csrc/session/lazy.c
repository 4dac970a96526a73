/*
 * session/lazy.c: on-demand chunk reads for lazily loaded sessions (see
 * lazy.h).
 */
#include "lazy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/codec.h"
#include "../common/bigmem.h"
#include "object.h"

/* Where one generation's chunks live. Reference-counted: a load in flight
 * keeps its source alive across a rebind. */
typedef struct csrc {
  int refs;
  vv_io io; /* a copy: the caller's table is only borrowed for its call */
  vv_sctx sc;
  char *dir;
  vv_keyring *kr;
  vv_mchunk *chunks; /* in manifest order */
  vv_chunk_index idx;
  size_t n;
} csrc;

/* Why a chunk failed to load, kept for the callers that share the load
 * (the cache hands waiters only the status) and for the next ones. */
#define FAIL_NOTES 8

typedef struct fail_note {
  int used;
  uint64_t seq;
  char message[sizeof ((vv_error *)0)->message];
} fail_note;

struct vv_lazy {
  uint32_t dim;
  vv_lazy_check_fn check;
  void *check_ctx;
  pthread_mutex_t mu; /* guards cur, prev and the notes */
  csrc *cur, *prev;
  vv_cache_client *cache; /* of a private vv_cache */
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

/* ---- the cache's loader ------------------------------------------------- */

typedef struct lchunk_mem {
  vv_lchunk c;
  void *block; /* vecs (aligned) */
  void *rest;  /* slots, offsets, metadata */
  size_t block_bytes, rest_bytes;
} lchunk_mem;

static void drop_chunk(void *ctx, void *value) {
  (void)ctx;
  lchunk_mem *m = value;
  if (!m) return;
  vv_big_free(m->block, m->block_bytes);
  vv_big_free(m->rest, m->rest_bytes);
  free(m);
}

/* Records why chunk `seq` failed (message already formatted). */
static void note_failure(vv_lazy *lz, uint64_t seq, const char *message) {
  pthread_mutex_lock(&lz->mu);
  fail_note *n = &lz->notes[lz->next++ % FAIL_NOTES];
  n->used = 1;
  n->seq = seq;
  snprintf(n->message, sizeof n->message, "%s", message);
  pthread_mutex_unlock(&lz->mu);
}

static int build_chunk(uint32_t dim, const vv_chunk_view *v, lchunk_mem **out, size_t *bytes) {
  uint32_t n = v->count;
  size_t vbytes = (size_t)n * dim * sizeof(float);
  size_t metas = 0;
  for (uint32_t i = 0; i < n; i++) metas += v->metas[i] ? v->meta_lens[i] : 0;
  if (metas > UINT32_MAX) return VV_E_CHUNK_CORRUPT;
  lchunk_mem *m = calloc(1, sizeof *m);
  if (!m) return VV_E_NOMEM;
  size_t rest = (size_t)n * 4 + ((size_t)n + 1) * 4 + metas;
  m->block_bytes = vbytes ? vbytes : 64;
  m->rest_bytes = rest;
  m->block = vv_big_alloc(m->block_bytes);
  m->rest = vv_big_alloc(m->rest_bytes);
  if (!m->block || !m->rest) {
    drop_chunk(NULL, m);
    return VV_E_NOMEM;
  }
  uint32_t *slots = m->rest;
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
  m->c = (vv_lchunk){v->seq, n, dim, slots, m->block, off, mp};
  *out = m;
  *bytes = sizeof *m + vbytes + rest;
  return VV_OK;
}

/* Decodes and validates one chunk's plaintext; on failure *why says how it
 * failed (with *row set when one row is to blame). */
static int open_chunk(vv_lazy *lz, uint64_t seq, uint32_t want_count, const unsigned char *plain, size_t len,
                      lchunk_mem **out, size_t *bytes, const char **why, uint32_t *row) {
  vv_chunk_view v;
  memset(&v, 0, sizeof v);
  lchunk_mem *m = NULL;
  int rc = vv_chunk_decode(plain, len, lz->dim, &v);
  if (rc == VV_E_CORRUPT || (!rc && (v.seq != seq || v.count != want_count))) {
    rc = VV_E_CHUNK_CORRUPT;
    *why = "does not decode (or is another chunk)";
  }
  if (!rc) rc = build_chunk(lz->dim, &v, &m, bytes);
  if (!rc && lz->check && (*why = lz->check(lz->check_ctx, &m->c, v.ids, v.id_lens, row)))
    rc = VV_E_CHUNK_CORRUPT;
  vv_chunk_view_free(&v);
  if (rc) drop_chunk(NULL, m);
  else *out = m;
  return rc;
}

static int load_chunk(void *ctx, uint64_t seq, void **value, size_t *bytes) {
  vv_lazy *lz = ctx;
  pthread_mutex_lock(&lz->mu);
  csrc *src = lz->cur;
  const vv_mchunk *mc = csrc_find(src, seq);
  if (!mc) {
    src = lz->prev;
    mc = csrc_find(src, seq);
  }
  if (src) src->refs++;
  pthread_mutex_unlock(&lz->mu);
  vv_error err = {{0}};
  if (!mc) {
    pthread_mutex_lock(&lz->mu);
    csrc_unref(src);
    pthread_mutex_unlock(&lz->mu);
    snprintf(err.message, sizeof err.message, "chunk %llu is in no chunk list of this session",
             (unsigned long long)seq);
    note_failure(lz, seq, err.message);
    return VV_E_CHUNK_MISSING;
  }
  vv_buf file = {.big = 1};
  const unsigned char *plain = NULL;
  size_t len = 0;
  vv_objref ref = mc->ref; /* the source may go once unreferenced */
  uint32_t want_count = mc->count;
  int rc = vv_object_read_into(&src->sc, &ref, VV_OBJ_KIND_CHUNK, seq, &file, &plain, &len, &err);
  if (!rc) lz->bytes_read += ref.bytes;
  pthread_mutex_lock(&lz->mu);
  csrc_unref(src);
  pthread_mutex_unlock(&lz->mu);
  const char *why = NULL;
  uint32_t row = UINT32_MAX;
  lchunk_mem *m = NULL;
  if (!rc) rc = open_chunk(lz, seq, want_count, plain, len, &m, bytes, &why, &row);
  vv_buf_free(&file);
  if (rc) {
    if (why && row != UINT32_MAX)
      snprintf(err.message, sizeof err.message, "chunk object %s (seq %llu) is corrupt: row %u %s", ref.name,
               (unsigned long long)seq, row, why);
    else if (why)
      snprintf(err.message, sizeof err.message, "chunk object %s (seq %llu) is corrupt: it %s", ref.name,
               (unsigned long long)seq, why);
    else if (rc != VV_E_CHUNK_MISSING && rc != VV_E_CHUNK_CORRUPT) /* the reader's own message lacks the seq */
      snprintf(err.message, sizeof err.message, "chunk object %s (seq %llu) could not be read: %s", ref.name,
               (unsigned long long)seq,
               rc == VV_E_IO && *vv_io_last_error() ? vv_io_last_error() : vv_strerror(rc));
    note_failure(lz, seq, err.message);
    return rc;
  }
  *value = m;
  return VV_OK;
}

/* ---- API ---------------------------------------------------------------- */

int vv_lazy_create(uint32_t dim, vv_lazy_check_fn check, void *check_ctx, const vv_io *io, const char *dir,
                   const vv_manifest *m, const vv_keyring *kr, size_t capacity, vv_lazy **out) {
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
  if (!rc) rc = vv_cache_create(capacity, &own);
  if (!rc) rc = vv_cache_client_create(own, 0, load_chunk, drop_chunk, lz, &lz->cache);
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

int vv_lazy_chunk(vv_lazy *lz, uint64_t seq, const vv_lchunk **out, vv_cache_ref **ref) {
  void *v;
  int rc = vv_cache_get(lz->cache, seq, &v, ref);
  if (rc) {
    *out = NULL;
    return rc;
  }
  *out = &((lchunk_mem *)v)->c;
  return VV_OK;
}

int vv_lazy_peek(vv_lazy *lz, uint64_t seq, const vv_lchunk **out, vv_cache_ref **ref) {
  void *v;
  int rc = vv_cache_peek(lz->cache, seq, &v, ref);
  *out = rc ? NULL : &((lchunk_mem *)v)->c;
  return rc;
}

void vv_lazy_unpin(vv_lazy *lz, vv_cache_ref *ref) {
  if (ref) vv_cache_unpin(lz->cache, ref);
}

void vv_lazy_explain(vv_lazy *lz, uint64_t seq, int status, vv_error *err) {
  if (!err) return;
  pthread_mutex_lock(&lz->mu);
  if (!err->message[0]) {
    const fail_note *found = NULL;
    for (unsigned i = 1; i <= FAIL_NOTES && !found; i++) {
      const fail_note *n = &lz->notes[(lz->next - i) % FAIL_NOTES];
      if (n->used && n->seq == seq) found = n;
    }
    const vv_mchunk *mc = csrc_find(lz->cur, seq);
    if (!mc) mc = csrc_find(lz->prev, seq);
    if (found && (status == VV_E_CHUNK_MISSING || status == VV_E_CHUNK_CORRUPT || status == VV_E_IO))
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
  vv_cache_set_capacity(vv_cache_client_cache(lz->cache), capacity);
}

void vv_lazy_get_stats(vv_lazy *lz, vv_cache_info *out) {
  vv_cache_stats cs;
  vv_cache_client_stats(lz->cache, &cs);
  *out = (vv_cache_info){1, cs.hits, cs.misses, cs.evictions, cs.bytes, cs.capacity, cs.entries, lz->bytes_read};
}
