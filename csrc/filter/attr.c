/*
 * filter/attr.c: the attribute store (attr.h): per field a dictionary of
 * values (an open-addressing hash over dense codes, strings in slabs), a
 * column of one word per slot (attr_impl.h), exact counts and posting
 * lists per code, and the sorted snapshots range clauses read.
 *
 * Postings are append-only with lazy deletion: a slot that loses a code
 * leaves a stale entry behind. Once a list holds more stale entries than
 * live ones (plus a little slack), it is rebuilt from the slots that still
 * hold the code, so under any churn a list stays within about twice its
 * live length and the cleaning costs amortized O(log n) per change.
 *
 * Memory per field: 4 bytes of column per slot and 4 per posting entry
 * (blocks grow by doubling); per distinct value a 16-byte entry, a 4-byte
 * count, a 16-byte posting list that holds up to two slots in itself, 8 to
 * 16 bytes of hash (at most half full), and a string's bytes in 64 KiB
 * slabs. Measured: a field of 1M distinct 10-byte strings, about 60 bytes
 * per vector; a scalar field of few values, about 9.
 */
#include "attr_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#define SLAB_BYTES (64u << 10)
#define POSTING_SLACK 16u

/* A posting list: up to POSTING_INLINE entries in the struct itself (a
 * value few slots hold, as most of a high-cardinality field's are), else
 * on the heap. */
#define POSTING_INLINE 2u
typedef struct posting {
  union {
    uint32_t *heap;
    uint32_t inl[POSTING_INLINE];
  } u;
  uint32_t n, cap;
} posting;

static inline uint32_t *posting_v(posting *p) { return p->cap > POSTING_INLINE ? p->u.heap : p->u.inl; }


typedef struct snap {
  vv_attr_sorted pub; /* first: a vv_attr_sorted * is a snap * */
  uint32_t refs;      /* the store's (while current) and the readers' */
  uint64_t changes;   /* the field's change counter when built */
  size_t bytes;
} snap;

typedef struct field {
  char *path;
  uint32_t plen;
  /* dictionary */
  vv_dent *dict;
  uint32_t *count; /* live slots per code */
  posting *post;
  uint32_t ncodes, dcap;
  uint32_t *hash; /* codes, UINT32_MAX empty; hcap a power of two */
  uint32_t hcap;
  /* column */
  uint32_t *col;
  uint32_t ncol;
  uint32_t **lists;
  uint32_t nlists, lcap;
  uint32_t *free_lists; /* indexes of unused lists[] entries */
  uint32_t nfree;
  uint64_t npresent;
  uint64_t changes; /* slot value changes, for snapshot staleness */
  size_t post_bytes, list_bytes;
  snap *sorted; /* current snapshot or NULL, under the store's mutex */
} field;

struct vv_attrs {
  field *fields;
  uint32_t nfields;
  char **slabs;
  uint32_t nslabs, scap;
  size_t slab_used, slab_bytes; /* in the last slab; all slabs */
  pthread_mutex_t mu;
};

/* ---- values ---- */

int vv_value_cmp(const vv_value *a, const vv_value *b) {
  if (a->type == VV_VAL_NUMBER) return a->num < b->num ? -1 : a->num > b->num;
  if (a->type == VV_VAL_STRING) {
    uint32_t n = VV_MIN(a->len, b->len);
    int c = n ? memcmp(a->str, b->str, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return a->len < b->len ? -1 : a->len > b->len;
  }
  return 0;
}

static uint64_t value_hash(const vv_value *v) {
  if (v->type == VV_VAL_STRING) return vv_hash_bytes(v->str, v->len) ^ 0x5bd1e995u;
  if (v->type == VV_VAL_NUMBER) {
    double d = v->num == 0 ? 0.0 : v->num;
    unsigned char b[8];
    memcpy(b, &d, 8);
    return vv_hash_bytes(b, 8);
  }
  return vv_hash_bytes(&v->type, sizeof v->type) + 1;
}

static int dent_equal(const vv_dent *e, const vv_value *v) {
  if ((int)e->type != v->type) return 0;
  if (v->type == VV_VAL_NUMBER) return e->u.num == v->num;
  if (v->type == VV_VAL_STRING) return e->len == v->len && (!v->len || !memcmp(e->u.str, v->str, v->len));
  return 1;
}

static void dent_value(const vv_dent *e, vv_value *out) { vv_dent_value(e, out); }

/* ---- store ---- */

int vv_attrs_create(const char *const *paths, const uint32_t *lens, uint32_t n, vv_attrs **out) {
  *out = NULL;
  if (n > VV_ATTR_MAX_FIELDS || (n && (!paths || !lens || !vv_names_valid(paths, lens, n, VV_ATTR_MAX_PATH))))
    return VV_E_INVALID;
  vv_attrs *a = calloc(1, sizeof *a);
  if (!a) return VV_E_NOMEM;
  if (pthread_mutex_init(&a->mu, NULL)) {
    free(a);
    return VV_E_NOMEM;
  }
  a->fields = n ? calloc(n, sizeof *a->fields) : NULL;
  if (n && !a->fields) goto fail;
  a->nfields = n;
  for (uint32_t i = 0; i < n; i++) {
    field *fd = &a->fields[i];
    fd->path = malloc(lens[i]);
    if (!fd->path) goto fail;
    memcpy(fd->path, paths[i], lens[i]);
    fd->plen = lens[i];
  }
  *out = a;
  return VV_OK;
fail:
  vv_attrs_free(a);
  return VV_E_NOMEM;
}

static void snap_unref(snap *s) {
  if (s && --s->refs == 0) {
    free((void *)s->pub.codes);
    free((void *)s->pub.prefix);
    free(s);
  }
}

void vv_attrs_free(vv_attrs *a) {
  if (!a) return;
  for (uint32_t i = 0; i < a->nfields; i++) {
    field *fd = &a->fields[i];
    free(fd->path);
    for (uint32_t c = 0; c < fd->ncodes; c++)
      if (fd->post[c].cap > POSTING_INLINE) free(fd->post[c].u.heap);
    free(fd->dict);
    free(fd->count);
    free(fd->post);
    free(fd->hash);
    free(fd->col);
    for (uint32_t l = 0; l < fd->nlists; l++) free(fd->lists[l]);
    free(fd->lists);
    free(fd->free_lists);
    if (fd->sorted) { /* readers released theirs before the store goes */
      fd->sorted->refs = 1;
      snap_unref(fd->sorted);
    }
  }
  for (uint32_t s = 0; s < a->nslabs; s++) free(a->slabs[s]);
  free(a->slabs);
  free(a->fields);
  pthread_mutex_destroy(&a->mu);
  free(a);
}

uint32_t vv_attrs_nfields(const vv_attrs *a) { return a->nfields; }

const char *vv_attrs_path(const vv_attrs *a, uint32_t f, uint32_t *len) {
  *len = a->fields[f].plen;
  return a->fields[f].path;
}

void vv_attrs_col(const vv_attrs *a, uint32_t f, vv_attr_col *out) {
  const field *fd = &a->fields[f];
  out->col = fd->col;
  out->ncol = fd->ncol;
  out->lists = fd->lists;
  out->dict = fd->dict;
}

/* ---- records ---- */

/* Walks one record: for each field, its n (0 missing, 1 empty, else the
 * number of values + 1) and, through `each`, its values. */
typedef int (*value_fn)(void *ctx, uint32_t f, const vv_value *v);

static int walk_record(const vv_attrs *a, const unsigned char *rec, size_t len, uint64_t *ns, value_fn each,
                       void *ctx) {
  const unsigned char *p = rec, *end = rec + len;
  for (uint32_t f = 0; f < a->nfields; f++) {
    uint64_t n;
    if (vv_wire_varint(&p, end, (uint64_t)VV_ATTR_MAX_VALUES + 1, &n)) return VV_E_BAD_METADATA;
    if (ns) ns[f] = n;
    for (uint64_t i = 1; i < n; i++) {
      vv_value v;
      if (vv_wire_value(&p, end, &v)) return VV_E_BAD_METADATA;
      if (each) {
        int rc = each(ctx, f, &v);
        if (rc) return rc;
      }
    }
  }
  return p == end ? VV_OK : VV_E_BAD_METADATA;
}

int vv_attrs_check(const vv_attrs *a, const unsigned char *rec, size_t len) {
  if (len && !rec) return VV_E_BAD_METADATA;
  return walk_record(a, rec, len, NULL, NULL, NULL);
}

/* ---- dictionary ---- */

static uint32_t lookup(const field *fd, const vv_value *v, uint64_t h) {
  if (!fd->hcap) return VV_CODE_NONE;
  for (uint32_t i = (uint32_t)h & (fd->hcap - 1);; i = (i + 1) & (fd->hcap - 1)) {
    uint32_t c = fd->hash[i];
    if (c == UINT32_MAX) return VV_CODE_NONE;
    if (dent_equal(&fd->dict[c], v)) return c;
  }
}

uint32_t vv_attrs_lookup(const vv_attrs *a, uint32_t f, const vv_value *v) {
  return lookup(&a->fields[f], v, value_hash(v));
}

static int rehash(field *fd, uint32_t hcap) {
  uint32_t *h = malloc((size_t)hcap * sizeof *h);
  if (!h) return VV_E_NOMEM;
  memset(h, 0xff, (size_t)hcap * sizeof *h);
  for (uint32_t c = 0; c < fd->ncodes; c++) {
    vv_value v;
    dent_value(&fd->dict[c], &v);
    uint32_t i = (uint32_t)value_hash(&v) & (hcap - 1);
    while (h[i] != UINT32_MAX) i = (i + 1) & (hcap - 1);
    h[i] = c;
  }
  free(fd->hash);
  fd->hash = h;
  fd->hcap = hcap;
  return VV_OK;
}

/* Strings (at most VV_ATTR_MAX_STRING bytes, below a slab) are copied into
 * the last slab, or a new one when they do not fit in what is left. */
_Static_assert(VV_ATTR_MAX_STRING <= SLAB_BYTES, "a string fits in a slab");
static const char *slab_copy(vv_attrs *a, const char *s, uint32_t len) {
  if (!len) return "";
  if (a->nslabs == 0 || SLAB_BYTES - a->slab_used < len) {
    if (a->nslabs == a->scap) {
      uint32_t cap = a->scap ? a->scap * 2 : 8;
      char **p = realloc(a->slabs, (size_t)cap * sizeof *p);
      if (!p) return NULL;
      a->slabs = p;
      a->scap = cap;
    }
    char *slab = malloc(SLAB_BYTES);
    if (!slab) return NULL;
    a->slabs[a->nslabs++] = slab;
    a->slab_bytes += SLAB_BYTES;
    a->slab_used = 0;
  }
  char *d = a->slabs[a->nslabs - 1] + a->slab_used;
  memcpy(d, s, len);
  a->slab_used += len;
  return d;
}

/* The code of v, added to the dictionary if new. */
static int intern(vv_attrs *a, field *fd, const vv_value *v, uint32_t *code) {
  uint64_t h = value_hash(v);
  uint32_t c = lookup(fd, v, h);
  if (c != VV_CODE_NONE) {
    *code = c;
    return VV_OK;
  }
  if (fd->ncodes >= CODE_LIMIT) return VV_E_FULL;
  if ((uint64_t)(fd->ncodes + 1) * 2 > fd->hcap) {
    int rc = rehash(fd, fd->hcap ? fd->hcap * 2 : 16);
    if (rc) return rc;
  }
  if (fd->ncodes == fd->dcap) {
    uint32_t cap = fd->dcap ? fd->dcap * 2 : 8;
    vv_dent *d = realloc(fd->dict, (size_t)cap * sizeof *d);
    if (!d) return VV_E_NOMEM;
    fd->dict = d;
    uint32_t *cnt = realloc(fd->count, (size_t)cap * sizeof *cnt);
    if (!cnt) return VV_E_NOMEM;
    fd->count = cnt;
    posting *p = realloc(fd->post, (size_t)cap * sizeof *p);
    if (!p) return VV_E_NOMEM;
    fd->post = p;
    fd->dcap = cap;
  }
  vv_dent *e = &fd->dict[fd->ncodes];
  e->type = (uint32_t)v->type;
  e->len = v->len;
  e->u.num = 0;
  if (v->type == VV_VAL_NUMBER) e->u.num = v->num == 0 ? 0.0 : v->num;
  if (v->type == VV_VAL_STRING && !(e->u.str = slab_copy(a, v->str, v->len))) return VV_E_NOMEM;
  c = fd->ncodes++;
  fd->count[c] = 0;
  fd->post[c] = (posting){.cap = POSTING_INLINE};
  uint32_t i = (uint32_t)h & (fd->hcap - 1);
  while (fd->hash[i] != UINT32_MAX) i = (i + 1) & (fd->hcap - 1);
  fd->hash[i] = c;
  *code = c;
  return VV_OK;
}

uint32_t vv_attrs_ncodes(const vv_attrs *a, uint32_t f) { return a->fields[f].ncodes; }

void vv_attrs_value(const vv_attrs *a, uint32_t f, uint32_t code, vv_value *out) {
  dent_value(&a->fields[f].dict[code], out);
}

uint64_t vv_attrs_count(const vv_attrs *a, uint32_t f, uint32_t code) {
  const field *fd = &a->fields[f];
  return code < fd->ncodes ? fd->count[code] : 0;
}

uint64_t vv_attrs_present(const vv_attrs *a, uint32_t f) { return a->fields[f].npresent; }

uint64_t vv_attrs_multi(const vv_attrs *a, uint32_t f) { return a->fields[f].nlists - a->fields[f].nfree; }

/* ---- columns ---- */

static void word_codes(const field *fd, const uint32_t *w, const uint32_t **codes, uint32_t *n) {
  if (*w < COL_MARK) {
    *codes = w;
    *n = 1;
  } else if (*w >= COL_EMPTY) {
    *codes = NULL;
    *n = 0;
  } else {
    const uint32_t *l = fd->lists[*w & ~COL_MARK];
    *codes = l + 1;
    *n = l[0];
  }
}

void vv_attrs_get(const vv_attrs *a, uint32_t f, uint32_t slot, int *present, const uint32_t **codes, uint32_t *n) {
  const field *fd = &a->fields[f];
  static const uint32_t missing = COL_MISSING;
  const uint32_t *w = slot < fd->ncol ? &fd->col[slot] : &missing;
  *present = *w != COL_MISSING;
  word_codes(fd, w, codes, n);
}

void vv_attrs_postings(const vv_attrs *a, uint32_t f, uint32_t code, const uint32_t **slots, size_t *n) {
  const field *fd = &a->fields[f];
  if (code >= fd->ncodes) {
    *slots = NULL;
    *n = 0;
    return;
  }
  *slots = posting_v(&fd->post[code]);
  *n = fd->post[code].n;
}

static int grow_cols(vv_attrs *a, uint64_t nslots) {
  if (nslots > UINT32_MAX) return VV_E_FULL;
  for (uint32_t f = 0; f < a->nfields; f++) {
    field *fd = &a->fields[f];
    if (fd->ncol >= nslots) continue;
    uint32_t *c = realloc(fd->col, (size_t)nslots * sizeof *c);
    if (!c) return VV_E_NOMEM;
    memset(c + fd->ncol, 0xff, (size_t)(nslots - fd->ncol) * sizeof *c);
    fd->col = c;
    fd->ncol = (uint32_t)nslots;
  }
  return VV_OK;
}

int vv_attrs_reserve(vv_attrs *a, uint64_t nslots) { return grow_cols(a, nslots); }

static int slot_holds(const field *fd, uint32_t slot, uint32_t code) {
  const uint32_t *codes;
  uint32_t n;
  word_codes(fd, &fd->col[slot], &codes, &n);
  for (uint32_t i = 0; i < n; i++)
    if (codes[i] == code) return 1;
  return 0;
}

static int cmp_u32(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return a < b ? -1 : a > b;
}

/* Drops stale entries and repeats once they outnumber the live ones. */
static void posting_maybe_clean(field *fd, uint32_t code) {
  posting *p = &fd->post[code];
  uint32_t live = fd->count[code];
  if (p->n - live <= live + POSTING_SLACK) return;
  uint32_t *v = posting_v(p), k = 0;
  for (uint32_t i = 0; i < p->n; i++)
    if (v[i] < fd->ncol && slot_holds(fd, v[i], code)) v[k++] = v[i];
  if (k > live) { /* repeats: a slot that lost and regained the code */
    qsort(v, k, sizeof *v, cmp_u32);
    uint32_t u = 0;
    for (uint32_t i = 0; i < k; i++)
      if (!u || v[u - 1] != v[i]) v[u++] = v[i];
    k = u;
  }
  p->n = k;
  if (p->cap <= 2 * k + POSTING_SLACK) return;
  /* shrink, back into the struct when it fits (else keep the larger block) */
  if (k <= POSTING_INLINE) {
    uint32_t *heap = p->u.heap;
    memcpy(p->u.inl, heap, (size_t)k * sizeof *heap);
    free(heap);
    fd->post_bytes -= (size_t)p->cap * sizeof *heap;
    p->cap = POSTING_INLINE;
  } else {
    uint32_t cap = k + POSTING_SLACK;
    uint32_t *heap = realloc(p->u.heap, (size_t)cap * sizeof *heap);
    if (heap) {
      fd->post_bytes -= (size_t)(p->cap - cap) * sizeof *heap;
      p->u.heap = heap;
      p->cap = cap;
    }
  }
}

static int posting_reserve(field *fd, uint32_t code) {
  posting *p = &fd->post[code];
  if (p->n < p->cap) return VV_OK;
  if (p->cap == UINT32_MAX) return VV_E_FULL;
  uint32_t cap = p->cap > UINT32_MAX / 2 ? UINT32_MAX : p->cap * 2;
  uint32_t *heap;
  if (p->cap > POSTING_INLINE) {
    heap = realloc(p->u.heap, (size_t)cap * sizeof *heap);
    if (!heap) return VV_E_NOMEM;
    fd->post_bytes += (size_t)(cap - p->cap) * sizeof *heap;
  } else {
    heap = malloc((size_t)cap * sizeof *heap);
    if (!heap) return VV_E_NOMEM;
    memcpy(heap, p->u.inl, (size_t)p->n * sizeof *heap);
    fd->post_bytes += (size_t)cap * sizeof *heap;
  }
  p->u.heap = heap;
  p->cap = cap;
  return VV_OK;
}

/* One field's new values while a record is being set. */
typedef struct pending {
  uint32_t *codes; /* sorted, distinct */
  uint32_t n;
  uint64_t tag; /* n from the record */
  uint32_t *list; /* preallocated for n >= 2 */
} pending;

typedef struct set_ctx {
  vv_attrs *a;
  pending *pend;
  uint32_t *buf; /* all fields' codes, back to back */
  size_t used;
} set_ctx;

static int collect_code(void *ctx, uint32_t f, const vv_value *v) {
  set_ctx *s = ctx;
  uint32_t code;
  int rc = intern(s->a, &s->a->fields[f], v, &code);
  if (rc) return rc;
  pending *p = &s->pend[f];
  if (!p->codes) p->codes = s->buf + s->used;
  p->codes[p->n++] = code;
  s->used++;
  return VV_OK;
}

static int reserve_list_id(field *fd) {
  if (fd->nfree) return VV_OK;
  if (fd->nlists == fd->lcap) {
    if (fd->lcap >= CODE_LIMIT) return VV_E_FULL;
    uint32_t cap = fd->lcap ? fd->lcap * 2 : 8;
    uint32_t **l = realloc(fd->lists, (size_t)cap * sizeof *l);
    if (!l) return VV_E_NOMEM;
    fd->lists = l;
    uint32_t *fr = realloc(fd->free_lists, (size_t)cap * sizeof *fr);
    if (!fr) return VV_E_NOMEM;
    fd->free_lists = fr;
    fd->lcap = cap;
  }
  fd->lists[fd->nlists] = NULL;
  fd->free_lists[fd->nfree++] = fd->nlists++;
  return VV_OK;
}

/* Everything that can fail, before the slot changes: codes, the new list,
 * room in the posting lists of codes the slot gains. */
static int prepare_field(field *fd, uint32_t slot, pending *p) {
  if (p->n > 1) {
    qsort(p->codes, p->n, sizeof *p->codes, cmp_u32);
    uint32_t u = 0;
    for (uint32_t i = 0; i < p->n; i++)
      if (!u || p->codes[u - 1] != p->codes[i]) p->codes[u++] = p->codes[i];
    p->n = u;
  }
  if (p->n >= 2) {
    int rc = reserve_list_id(fd);
    if (rc) return rc;
    p->list = malloc(((size_t)p->n + 1) * sizeof *p->list);
    if (!p->list) return VV_E_NOMEM;
    p->list[0] = p->n;
    memcpy(p->list + 1, p->codes, (size_t)p->n * sizeof *p->codes);
  }
  for (uint32_t i = 0; i < p->n; i++) {
    if (slot_holds(fd, slot, p->codes[i])) continue;
    int rc = posting_reserve(fd, p->codes[i]);
    if (rc) return rc;
  }
  return VV_OK;
}

/* Makes slot's word `w` (its list, if any, already in place), updating
 * counts, postings and the present count. Cannot fail. */
static void commit_word(field *fd, uint32_t slot, uint32_t w) {
  uint32_t old = fd->col[slot];
  uint32_t oldbuf = old;
  const uint32_t *oc, *nc;
  uint32_t on, nn;
  word_codes(fd, &oldbuf, &oc, &on);
  fd->col[slot] = w;
  word_codes(fd, &fd->col[slot], &nc, &nn);
  if (old == w) return;
  fd->changes++;
  fd->npresent += (uint64_t)(w != COL_MISSING) - (uint64_t)(old != COL_MISSING);
  /* Both sorted: a merge finds the codes lost and gained. */
  uint32_t i = 0, j = 0;
  while (i < on || j < nn) {
    if (j == nn || (i < on && oc[i] < nc[j])) {
      fd->count[oc[i]]--;
      posting_maybe_clean(fd, oc[i]);
      i++;
    } else if (i == on || nc[j] < oc[i]) {
      posting *p = &fd->post[nc[j]];
      posting_v(p)[p->n++] = slot; /* room reserved by prepare_field */
      fd->count[nc[j]]++;
      posting_maybe_clean(fd, nc[j]);
      j++;
    } else {
      i++, j++;
    }
  }
  if (old >= COL_MARK && old < COL_EMPTY) {
    uint32_t id = old & ~COL_MARK;
    fd->list_bytes -= ((size_t)fd->lists[id][0] + 1) * sizeof(uint32_t);
    free(fd->lists[id]);
    fd->lists[id] = NULL;
    fd->free_lists[fd->nfree++] = id;
  }
}

int vv_attrs_set(vv_attrs *a, uint32_t slot, const unsigned char *rec, size_t len) {
  if (len && !rec) return VV_E_BAD_METADATA;
  uint64_t ns[VV_ATTR_MAX_FIELDS];
  if (len) {
    int rc = walk_record(a, rec, len, ns, NULL, NULL);
    if (rc) return rc;
  } else {
    memset(ns, 0, sizeof ns);
  }
  if (slot == UINT32_MAX) return VV_E_FULL;
  if (a->nfields == 0) return VV_OK;
  int rc = VV_OK;
  if (slot >= a->fields[0].ncol) /* every column has the same length; doubling keeps appends linear */
    rc = grow_cols(a, VV_MAX((uint64_t)slot + 1, VV_MIN((uint64_t)a->fields[0].ncol * 2, UINT32_MAX)));
  if (rc) return rc;
  pending pend[VV_ATTR_MAX_FIELDS];
  memset(pend, 0, sizeof pend);
  size_t total = 0;
  for (uint32_t f = 0; f < a->nfields; f++) {
    pend[f].tag = ns[f];
    total += ns[f] > 1 ? ns[f] - 1 : 0;
  }
  set_ctx s = {a, pend, NULL, 0};
  if (total && !(s.buf = malloc(total * sizeof *s.buf))) return VV_E_NOMEM;
  if (total) rc = walk_record(a, rec, len, NULL, collect_code, &s);
  for (uint32_t f = 0; !rc && f < a->nfields; f++) rc = prepare_field(&a->fields[f], slot, &pend[f]);
  if (rc) {
    for (uint32_t f = 0; f < a->nfields; f++) free(pend[f].list);
    free(s.buf);
    return rc;
  }
  for (uint32_t f = 0; f < a->nfields; f++) {
    field *fd = &a->fields[f];
    pending *p = &pend[f];
    uint32_t w;
    if (p->tag == 0) {
      w = COL_MISSING;
    } else if (p->n == 0) {
      w = COL_EMPTY;
    } else if (p->n == 1) {
      w = p->codes[0];
    } else {
      uint32_t id = fd->free_lists[--fd->nfree];
      fd->lists[id] = p->list;
      fd->list_bytes += ((size_t)p->n + 1) * sizeof(uint32_t);
      w = COL_MARK | id;
    }
    commit_word(fd, slot, w);
  }
  free(s.buf);
  return VV_OK;
}

void vv_attrs_clear(vv_attrs *a, uint32_t slot) {
  for (uint32_t f = 0; f < a->nfields; f++) {
    field *fd = &a->fields[f];
    if (slot < fd->ncol) commit_word(fd, slot, COL_MISSING);
  }
}

/* ---- encoding ---- */

/* qsort has no context argument: the values travel with their codes. */
typedef struct keyed {
  vv_dent e;
  uint32_t code;
} keyed;

static int cmp_keyed(const void *x, const void *y) {
  const vv_dent *a = &((const keyed *)x)->e, *b = &((const keyed *)y)->e;
  if (a->type != b->type) return a->type < b->type ? -1 : 1; /* numbers (3) before strings (4) */
  vv_value va, vb;
  dent_value(a, &va);
  dent_value(b, &vb);
  return vv_value_cmp(&va, &vb);
}


static size_t varint_put(unsigned char *p, uint64_t v) {
  size_t n = 0;
  do {
    unsigned char b = v & 0x7f;
    v >>= 7;
    p[n++] = (unsigned char)(b | (v ? 0x80 : 0));
  } while (v);
  return n;
}

/* Values in value order (null, false, true, numbers, strings), so that
 * equal records encode to equal bytes in any store. */
int vv_attrs_encode(const vv_attrs *a, uint32_t slot, vv_buf *out) {
  for (uint32_t f = 0; f < a->nfields; f++) {
    const field *fd = &a->fields[f];
    int present;
    const uint32_t *codes;
    uint32_t n;
    vv_attrs_get(a, f, slot, &present, &codes, &n);
    keyed one, *k = &one;
    if (n > 1 && !(k = malloc((size_t)n * sizeof *k))) return VV_E_NOMEM;
    for (uint32_t i = 0; i < n; i++) k[i] = (keyed){fd->dict[codes[i]], codes[i]};
    if (n > 1) qsort(k, n, sizeof *k, cmp_keyed);
    unsigned char head[10];
    int rc = vv_buf_append(out, head, varint_put(head, present ? (uint64_t)n + 1 : 0));
    for (uint32_t i = 0; !rc && i < n; i++) {
      const vv_dent *e = &k[i].e;
      unsigned char b[16];
      size_t len = 0;
      b[len++] = (unsigned char)e->type;
      if (e->type == VV_VAL_NUMBER) {
        uint64_t bits;
        memcpy(&bits, &e->u.num, 8);
        vv_put_le64(b + len, bits);
        len += 8;
      } else if (e->type == VV_VAL_STRING) {
        len += varint_put(b + len, e->len);
      }
      rc = vv_buf_append(out, b, len);
      if (!rc && e->type == VV_VAL_STRING) rc = vv_buf_append(out, e->u.str, e->len);
    }
    if (k != &one) free(k);
    if (rc) return rc;
  }
  return VV_OK;
}

static size_t snap_bytes_locked(const vv_attrs *a) {
  size_t b = 0;
  for (uint32_t f = 0; f < a->nfields; f++)
    if (a->fields[f].sorted) b += a->fields[f].sorted->bytes;
  return b;
}

size_t vv_attrs_memory(const vv_attrs *a) {
  size_t b = sizeof *a + (size_t)a->scap * sizeof(char *) + a->slab_bytes;
  for (uint32_t f = 0; f < a->nfields; f++) {
    const field *fd = &a->fields[f];
    b += sizeof *fd + fd->plen;
    b += (size_t)fd->dcap * (sizeof(vv_dent) + sizeof(uint32_t) + sizeof(posting));
    b += (size_t)fd->hcap * sizeof(uint32_t) + (size_t)fd->ncol * sizeof(uint32_t);
    b += (size_t)fd->lcap * (sizeof(uint32_t *) + sizeof(uint32_t));
    b += fd->post_bytes + fd->list_bytes;
  }
  pthread_mutex_lock((pthread_mutex_t *)&a->mu);
  b += snap_bytes_locked(a);
  pthread_mutex_unlock((pthread_mutex_t *)&a->mu);
  return b;
}

/* ---- sorted snapshots ---- */

static int snap_stale(const field *fd, const snap *s) {
  uint64_t newer = fd->ncodes - s->pub.ncodes;
  uint64_t changed = fd->changes - s->changes;
  return newer * 8 > fd->ncodes || changed * 8 > s->pub.prefix[s->pub.n];
}

static int snap_build(const field *fd, snap **out) {
  snap *s = calloc(1, sizeof *s);
  if (!s) return VV_E_NOMEM;
  uint32_t n = 0;
  uint32_t *codes = malloc(((size_t)fd->ncodes + 1) * sizeof *codes);
  keyed *k = malloc(((size_t)fd->ncodes + 1) * sizeof *k);
  uint64_t *prefix = NULL;
  if (!codes || !k) goto fail;
  for (uint32_t c = 0; c < fd->ncodes; c++)
    if (fd->dict[c].type == VV_VAL_NUMBER || fd->dict[c].type == VV_VAL_STRING) k[n++] = (keyed){fd->dict[c], c};
  qsort(k, n, sizeof *k, cmp_keyed);
  for (uint32_t i = 0; i < n; i++) codes[i] = k[i].code;
  free(k);
  k = NULL;
  prefix = malloc(((size_t)n + 1) * sizeof *prefix);
  if (!prefix) goto fail;
  prefix[0] = 0;
  uint32_t nnum = 0;
  for (uint32_t i = 0; i < n; i++) {
    prefix[i + 1] = prefix[i] + fd->count[codes[i]];
    if (fd->dict[codes[i]].type == VV_VAL_NUMBER) nnum++;
  }
  s->pub = (vv_attr_sorted){fd->ncodes, n, nnum, codes, prefix};
  s->refs = 1;
  s->changes = fd->changes;
  s->bytes = sizeof *s + ((size_t)fd->ncodes + 1) * sizeof *codes + ((size_t)n + 1) * sizeof *prefix;
  *out = s;
  return VV_OK;
fail:
  free(k);
  free(codes);
  free(prefix);
  free(s);
  return VV_E_NOMEM;
}

int vv_attrs_sorted(vv_attrs *a, uint32_t f, const vv_attr_sorted **out) {
  field *fd = &a->fields[f];
  int rc = VV_OK;
  pthread_mutex_lock(&a->mu);
  if (!fd->sorted || snap_stale(fd, fd->sorted)) {
    snap *s;
    rc = snap_build(fd, &s);
    if (!rc) {
      snap_unref(fd->sorted);
      fd->sorted = s;
    }
  }
  if (!rc) {
    fd->sorted->refs++;
    *out = &fd->sorted->pub;
  }
  pthread_mutex_unlock(&a->mu);
  return rc;
}

void vv_attrs_sorted_release(vv_attrs *a, const vv_attr_sorted *s) {
  if (!s) return;
  pthread_mutex_lock(&a->mu);
  snap_unref((snap *)(uintptr_t)s);
  pthread_mutex_unlock(&a->mu);
}
