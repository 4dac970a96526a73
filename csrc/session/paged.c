/*
 * session/paged.c: paged objects (see paged.h; layout in docs/FORMAT.md
 * section 4.2).
 */
#include "paged.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#define AD_HEAD_BYTES (VV_PAGED_HEADER_BYTES + VV_SESSION_ID_BYTES)
#define AD_PAGE_BYTES (AD_HEAD_BYTES + 12u)

static const char *kind_name(int kind) { return kind == VV_OBJ_KIND_CHUNK ? "chunk" : "index"; }

static vv_key_purpose purpose_of(int kind) { return kind == VV_OBJ_KIND_CHUNK ? VV_KEY_CHUNKS : VV_KEY_INDEX; }

static void make_header(unsigned char h[VV_PAGED_HEADER_BYTES], int kind, int encrypted, uint64_t seq,
                        uint32_t count, uint32_t dim, uint32_t npages, uint32_t table_len) {
  memcpy(h, VV_OBJ_MAGIC, 4);
  h[4] = VV_PAGED_VERSION;
  h[5] = (unsigned char)kind;
  h[6] = encrypted ? VV_OBJ_FLAG_ENCRYPTED : 0;
  h[7] = 0;
  vv_put_le64(h + 8, seq);
  vv_put_le32(h + 16, count);
  vv_put_le32(h + 20, dim);
  vv_put_le32(h + 24, npages);
  vv_put_le32(h + 28, table_len);
}

/* The table's associated data: header || session id. A page's: the same,
 * then its number, first row and rows (u32 LE each). */
static void make_ad(unsigned char *ad, const unsigned char *header, const unsigned char *session_id) {
  memcpy(ad, header, VV_PAGED_HEADER_BYTES);
  memcpy(ad + VV_PAGED_HEADER_BYTES, session_id, VV_SESSION_ID_BYTES);
}

static void make_page_ad(unsigned char ad[AD_PAGE_BYTES], const vv_sctx *sc, int kind, uint64_t seq,
                         const vv_ptable *t, uint32_t page) {
  unsigned char h[VV_PAGED_HEADER_BYTES];
  make_header(h, kind, sc->kr != NULL, seq, t->count, t->dim, t->npages, t->table_len);
  make_ad(ad, h, sc->session_id);
  vv_put_le32(ad + AD_HEAD_BYTES, page);
  vv_put_le32(ad + AD_HEAD_BYTES + 4, t->first[page]);
  vv_put_le32(ad + AD_HEAD_BYTES + 8, t->first[page + 1] - t->first[page]);
}

static size_t seal_overhead(const vv_sctx *sc) { return sc->kr ? VV_NONCE_BYTES + VV_TAG_BYTES : 0; }

/* ---- the table ---------------------------------------------------------- */

void vv_ptable_free(vv_ptable *t) {
  if (!t) return;
  free(t->first);
  free(t->off);
  free(t->checks);
  memset(t, 0, sizeof *t);
}

size_t vv_ptable_bytes(const vv_ptable *t) {
  return sizeof *t + ((size_t)t->npages + 1) * (4 + 8) + (size_t)t->npages * VV_PAGE_CHECK_BYTES;
}

uint32_t vv_ptable_page_of(const vv_ptable *t, uint32_t row) {
  uint32_t lo = 0, hi = t->npages; /* first[lo] <= row < first[hi] */
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (t->first[mid] <= row) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* ---- errors ------------------------------------------------------------- */

static int corrupt(vv_error *err, int kind, uint64_t seq, const vv_objref *ref, long page, const char *why) {
  if (err && page >= 0)
    snprintf(err->message, sizeof err->message, "%s object %s (seq %llu) page %ld is corrupt: %s", kind_name(kind),
             ref->name, (unsigned long long)seq, page, why);
  else if (err)
    snprintf(err->message, sizeof err->message, "%s object %s (seq %llu) is corrupt: %s", kind_name(kind), ref->name,
             (unsigned long long)seq, why);
  return VV_E_CHUNK_CORRUPT;
}

static int io_failed(vv_error *err, int rc, int kind, uint64_t seq, const vv_objref *ref, long page) {
  char where[32] = "";
  if (page >= 0) snprintf(where, sizeof where, " page %ld", page);
  if (rc == VV_E_NOT_FOUND) {
    if (err)
      snprintf(err->message, sizeof err->message, "%s object %s (seq %llu) is missing", kind_name(kind), ref->name,
               (unsigned long long)seq);
    return VV_E_CHUNK_MISSING;
  }
  if (rc == VV_E_CORRUPT)
    return corrupt(err, kind, seq, ref, -1, "size differs from the manifest (truncated or extended)");
  if (err && rc != VV_E_NOMEM)
    snprintf(err->message, sizeof err->message, "reading %s object %s (seq %llu)%s failed: %s", kind_name(kind),
             ref->name, (unsigned long long)seq, where, *vv_io_last_error() ? vv_io_last_error() : vv_strerror(rc));
  return rc;
}

/* ---- writing ------------------------------------------------------------ */

void vv_pbuild_begin(vv_pbuild *b, const vv_sctx *sc, int kind, uint64_t seq, uint32_t dim) {
  memset(b, 0, sizeof *b);
  b->sc = sc;
  b->kind = kind;
  b->seq = seq;
  b->dim = dim;
  b->units.big = 1;
}

void vv_pbuild_free(vv_pbuild *b) {
  vv_buf_free(&b->units);
  free(b->rows);
  free(b->bytes);
  free(b->checks);
  memset(b, 0, sizeof *b);
}

static int pbuild_grow(vv_pbuild *b) {
  uint32_t cap = b->cap ? b->cap * 2 : 64;
  uint32_t *rows = realloc(b->rows, cap * sizeof *rows);
  if (rows) b->rows = rows;
  uint32_t *bytes = realloc(b->bytes, cap * sizeof *bytes);
  if (bytes) b->bytes = bytes;
  unsigned char *checks = realloc(b->checks, (size_t)cap * VV_PAGE_CHECK_BYTES);
  if (checks) b->checks = checks;
  if (!rows || !bytes || !checks) return VV_E_NOMEM;
  b->cap = cap;
  return VV_OK;
}

/* Pages are sealed before the header exists (the header counts them), so a
 * page's associated data is completed in vv_pbuild_write: here the page is
 * only framed; sealing happens there, page by page. */
int vv_pbuild_page(vv_pbuild *b, const unsigned char *plain, size_t len, uint32_t rows) {
  if (b->n == VV_CODEC_MAX_PAGES || (uint64_t)b->count + rows > VV_CODEC_MAX_COUNT) return VV_E_INVALID;
  size_t unit = len + seal_overhead(b->sc);
  if (unit > VV_PAGE_UNIT_MAX || len == 0) return VV_E_INVALID;
  if (b->n == b->cap && pbuild_grow(b)) return VV_E_NOMEM;
  int rc = vv_buf_reserve(&b->units, unit);
  if (rc) return rc;
  /* Plaintext for now, at the unit's place (after room for the nonce). */
  unsigned char *at = b->units.data + b->units.len;
  memcpy(at + (b->sc->kr ? VV_NONCE_BYTES : 0), plain, len);
  b->units.len += unit;
  b->rows[b->n] = rows;
  b->bytes[b->n] = (uint32_t)unit;
  b->n++;
  b->count += rows;
  return VV_OK;
}

int vv_pbuild_write(vv_pbuild *b, vv_buf *file, vv_objref *out, vv_error *err) {
  const vv_sctx *sc = b->sc;
  if (b->n == 0) return VV_E_INVALID;
  /* The table describes the pages; every page's AD includes the header,
   * which includes the table's length: encode the table (checks zeroed,
   * same length), make the header, seal the pages, then the real table. */
  vv_ptable t = {.npages = b->n, .count = b->count, .dim = b->dim};
  vv_buf plain_table = {0};
  memset(b->checks, 0, (size_t)b->n * VV_PAGE_CHECK_BYTES);
  int rc = vv_ptable_encode(b->n, b->rows, b->bytes, b->checks, &plain_table);
  if (!rc && plain_table.len > UINT32_MAX) rc = VV_E_INVALID;
  t.table_len = (uint32_t)plain_table.len;
  t.first = malloc(((size_t)b->n + 1) * sizeof *t.first);
  if (!rc && !t.first) rc = VV_E_NOMEM;
  for (uint32_t i = 0; !rc && i <= b->n; i++) t.first[i] = i ? t.first[i - 1] + b->rows[i - 1] : 0;
  /* Seal (or check) each page in place. */
  size_t at = 0;
  for (uint32_t i = 0; !rc && i < b->n; i++) {
    unsigned char *unit = b->units.data + at;
    size_t ulen = b->bytes[i];
    if (sc->kr) {
      unsigned char ad[AD_PAGE_BYTES];
      make_page_ad(ad, sc, b->kind, b->seq, &t, i);
      size_t plen = ulen - VV_NONCE_BYTES - VV_TAG_BYTES;
      /* vv_aead_seal may not work in place: seal from a copy. */
      unsigned char *tmp = malloc(plen);
      if (!tmp) {
        rc = VV_E_NOMEM;
        break;
      }
      memcpy(tmp, unit + VV_NONCE_BYTES, plen);
      rc = vv_aead_seal(sc->kr, purpose_of(b->kind), ad, sizeof ad, tmp, plen, unit, unit + VV_NONCE_BYTES);
      free(tmp);
      memcpy(b->checks + (size_t)i * VV_PAGE_CHECK_BYTES, unit + ulen - VV_TAG_BYTES, VV_TAG_BYTES);
    } else {
      vv_hash16(unit, ulen, b->checks + (size_t)i * VV_PAGE_CHECK_BYTES);
    }
    at += ulen;
  }
  free(t.first);
  if (!rc) {
    plain_table.len = 0;
    rc = vv_ptable_encode(b->n, b->rows, b->bytes, b->checks, &plain_table);
  }
  size_t unit_len = plain_table.len + seal_overhead(sc);
  size_t head = VV_PAGED_HEADER_BYTES + unit_len;
  file->len = 0;
  if (!rc && plain_table.len != t.table_len) rc = VV_E_INTERNAL;
  if (!rc) rc = vv_buf_reserve(file, head + b->units.len);
  if (!rc) {
    unsigned char *h = file->data;
    make_header(h, b->kind, sc->kr != NULL, b->seq, b->count, b->dim, b->n, t.table_len);
    if (sc->kr) {
      unsigned char ad[AD_HEAD_BYTES];
      make_ad(ad, h, sc->session_id);
      rc = vv_aead_seal(sc->kr, purpose_of(b->kind), ad, sizeof ad, plain_table.data, plain_table.len,
                        h + VV_PAGED_HEADER_BYTES, h + VV_PAGED_HEADER_BYTES + VV_NONCE_BYTES);
    } else {
      memcpy(h + VV_PAGED_HEADER_BYTES, plain_table.data, plain_table.len);
    }
  }
  vv_buf_free(&plain_table);
  if (rc) return rc;
  memcpy(file->data + head, b->units.data, b->units.len);
  file->len = head + b->units.len;
  unsigned char digest[VV_HASH_BYTES];
  vv_hash(file->data, head, digest);
  vv_hex_encode(digest, VV_HASH_BYTES, out->name);
  out->bytes = file->len;
  char *path = vv_object_path(sc, out->name);
  if (!path) return VV_E_NOMEM;
  rc = vv_io_write_durable(sc->io, sc->objdir, path, file->data, file->len);
  free(path);
  if (rc && err)
    snprintf(err->message, sizeof err->message, "writing %s object %.16s… failed: %s", kind_name(b->kind),
             out->name, *vv_io_last_error() ? vv_io_last_error() : vv_strerror(rc));
  return rc;
}

/* ---- reading ------------------------------------------------------------ */

/* The table unit's length from a header that passed check_header. */
static size_t table_unit_len(const vv_sctx *sc, const unsigned char *h) { return vv_get_le32(h + 28) + seal_overhead(sc); }

static int check_header(const vv_sctx *sc, const vv_objref *ref, const unsigned char *h, int kind, uint64_t seq,
                        uint32_t count, uint32_t dim, vv_error *err) {
  uint32_t npages = vv_get_le32(h + 24), tlen = vv_get_le32(h + 28);
  /* A table is about 24 bytes a page, plus its keys. */
  uint64_t max_table = (uint64_t)npages * (8 + VV_PAGE_CHECK_BYTES) + 64;
  if (memcmp(h, VV_OBJ_MAGIC, 4) != 0 || h[4] != VV_PAGED_VERSION || h[5] != kind ||
      h[6] != (sc->kr ? VV_OBJ_FLAG_ENCRYPTED : 0) || h[7] != 0 || vv_get_le64(h + 8) != seq ||
      vv_get_le32(h + 16) != count || vv_get_le32(h + 20) != dim || npages == 0 ||
      npages > (count ? count : 1) || tlen > max_table ||
      VV_PAGED_HEADER_BYTES + table_unit_len(sc, h) > ref->bytes)
    return corrupt(err, kind, seq, ref, -1, "header does not match (kind, sequence, rows, dimension or encryption)");
  return VV_OK;
}

/* Verifies the name over header || unit, opens and decodes the table. */
static int open_table(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, const unsigned char *h,
                      unsigned char *unit, vv_ptable *t, vv_error *err) {
  memset(t, 0, sizeof *t);
  size_t ulen = table_unit_len(sc, h);
  vv_hash_state st;
  unsigned char digest[VV_HASH_BYTES];
  char hex[2 * VV_HASH_BYTES + 1];
  vv_hash_init(&st);
  vv_hash_update(&st, h, VV_PAGED_HEADER_BYTES);
  vv_hash_update(&st, unit, ulen);
  vv_hash_final(&st, digest);
  vv_hex_encode(digest, VV_HASH_BYTES, hex);
  if (vv_ct_compare((const unsigned char *)hex, (const unsigned char *)ref->name, 2 * VV_HASH_BYTES) != 0)
    return corrupt(err, kind, seq, ref, -1, "content hash of its header and page table does not match its name");
  const unsigned char *plain = unit;
  size_t plen = ulen;
  if (sc->kr) {
    unsigned char ad[AD_HEAD_BYTES];
    make_ad(ad, h, sc->session_id);
    plen = ulen - VV_NONCE_BYTES - VV_TAG_BYTES;
    if (vv_aead_open(sc->kr, purpose_of(kind), ad, sizeof ad, unit, unit + VV_NONCE_BYTES, plen + VV_TAG_BYTES,
                     unit + VV_NONCE_BYTES))
      return corrupt(err, kind, seq, ref, -1, "page table authentication failed (tampered, or from another session)");
    plain = unit + VV_NONCE_BYTES;
  }
  t->npages = vv_get_le32(h + 24);
  t->count = vv_get_le32(h + 16);
  t->dim = vv_get_le32(h + 20);
  t->table_len = vv_get_le32(h + 28);
  vv_ptable_view v;
  if (vv_ptable_decode(plain, plen, t->npages, &v))
    return corrupt(err, kind, seq, ref, -1, "page table does not decode");
  size_t n = t->npages;
  t->first = malloc((n + 1) * sizeof *t->first);
  t->off = malloc((n + 1) * sizeof *t->off);
  t->checks = malloc(n * VV_PAGE_CHECK_BYTES);
  if (!t->first || !t->off || !t->checks) {
    vv_ptable_free(t);
    return VV_E_NOMEM;
  }
  memcpy(t->checks, v.checks, n * VV_PAGE_CHECK_BYTES);
  uint64_t rows = 0, off = VV_PAGED_HEADER_BYTES + ulen;
  const char *why = NULL;
  for (size_t i = 0; i < n && !why; i++) {
    uint32_t r = vv_get_le32(v.rows + 4 * i), b = vv_get_le32(v.bytes + 4 * i);
    t->first[i] = (uint32_t)rows;
    t->off[i] = off;
    if (r == 0 && !(n == 1 && t->count == 0)) why = "has an empty page";
    else if (b <= seal_overhead(sc) || b > VV_PAGE_UNIT_MAX) why = "has a page of impossible length";
    rows += r;
    off += b;
  }
  if (!why && rows != t->count) why = "page table rows do not add up to the object's";
  if (!why && off != ref->bytes) why = "page table lengths do not add up to the file size";
  if (why) {
    vv_ptable_free(t);
    return corrupt(err, kind, seq, ref, -1, why);
  }
  t->first[n] = (uint32_t)rows;
  t->off[n] = off;
  return VV_OK;
}

int vv_paged_read_table(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, uint32_t count, uint32_t dim,
                        vv_ptable *out, vv_error *err) {
  memset(out, 0, sizeof *out);
  char *path = vv_object_path(sc, ref->name);
  if (!path) return VV_E_NOMEM;
  int fd = vv_io_open_sized(sc->io, path, ref->bytes);
  free(path);
  if (fd < 0) return io_failed(err, fd, kind, seq, ref, -1);
  unsigned char h[VV_PAGED_HEADER_BYTES];
  unsigned char *unit = NULL;
  int rc = ref->bytes < sizeof h ? VV_E_CORRUPT : vv_io_pread_all(sc->io, fd, h, sizeof h, 0);
  if (rc) rc = io_failed(err, rc, kind, seq, ref, -1);
  if (!rc) rc = check_header(sc, ref, h, kind, seq, count, dim, err);
  if (!rc) {
    unit = malloc(table_unit_len(sc, h));
    rc = unit ? vv_io_pread_all(sc->io, fd, unit, table_unit_len(sc, h), sizeof h) : VV_E_NOMEM;
    if (rc) rc = io_failed(err, rc, kind, seq, ref, -1);
  }
  sc->io->close(sc->io->ctx, fd);
  if (!rc) rc = open_table(sc, ref, kind, seq, h, unit, out, err);
  free(unit);
  return rc;
}

/* Opens page unit `unit` (its bytes, in place). */
static int open_unit(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, const vv_ptable *t,
                     uint32_t page, unsigned char *unit, const unsigned char **plain, size_t *len, vv_error *err) {
  size_t ulen = (size_t)(t->off[page + 1] - t->off[page]);
  const unsigned char *check = t->checks + (size_t)page * VV_PAGE_CHECK_BYTES;
  if (!sc->kr) {
    unsigned char h[VV_HASH16_BYTES];
    vv_hash16(unit, ulen, h);
    if (vv_ct_compare(h, check, VV_HASH16_BYTES) != 0)
      return corrupt(err, kind, seq, ref, page, "checksum does not match the page table");
    *plain = unit;
    *len = ulen;
    return VV_OK;
  }
  if (vv_ct_compare(unit + ulen - VV_TAG_BYTES, check, VV_TAG_BYTES) != 0)
    return corrupt(err, kind, seq, ref, page, "tag does not match the page table (a page from elsewhere)");
  unsigned char ad[AD_PAGE_BYTES];
  make_page_ad(ad, sc, kind, seq, t, page);
  size_t plen = ulen - VV_NONCE_BYTES - VV_TAG_BYTES;
  if (vv_aead_open(sc->kr, purpose_of(kind), ad, sizeof ad, unit, unit + VV_NONCE_BYTES, plen + VV_TAG_BYTES,
                   unit + VV_NONCE_BYTES))
    return corrupt(err, kind, seq, ref, page, "authentication failed (tampered, or moved from another page)");
  *plain = unit + VV_NONCE_BYTES;
  *len = plen;
  return VV_OK;
}

int vv_paged_read_page(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, const vv_ptable *t,
                       uint32_t page, vv_buf *buf, const unsigned char **plain, size_t *len, vv_error *err) {
  *plain = NULL;
  *len = 0;
  if (page >= t->npages) return VV_E_INVALID;
  size_t ulen = (size_t)(t->off[page + 1] - t->off[page]);
  buf->len = 0;
  int rc = vv_buf_reserve(buf, ulen);
  if (rc) return rc;
  char *path = vv_object_path(sc, ref->name);
  if (!path) return VV_E_NOMEM;
  int fd = vv_io_open_sized(sc->io, path, ref->bytes);
  free(path);
  if (fd < 0) return io_failed(err, fd, kind, seq, ref, page);
  rc = vv_io_pread_all(sc->io, fd, buf->data, ulen, t->off[page]);
  sc->io->close(sc->io->ctx, fd);
  if (rc) return io_failed(err, rc, kind, seq, ref, page);
  buf->len = ulen;
  return open_unit(sc, ref, kind, seq, t, page, buf->data, plain, len, err);
}

int vv_paged_read_file(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, uint32_t count, uint32_t dim,
                       vv_buf *file, vv_ptable *out, vv_error *err) {
  memset(out, 0, sizeof *out);
  char *path = vv_object_path(sc, ref->name);
  if (!path) return VV_E_NOMEM;
  /* At most the recorded size plus one byte, so a grown file is seen. */
  int rc = vv_io_read_file_buf(sc->io, path, (size_t)ref->bytes + 1, file);
  free(path);
  if (!rc && file->len != ref->bytes) rc = VV_E_CORRUPT;
  if (rc) return io_failed(err, rc, kind, seq, ref, -1);
  if (file->len < VV_PAGED_HEADER_BYTES)
    return corrupt(err, kind, seq, ref, -1, "shorter than its header");
  rc = check_header(sc, ref, file->data, kind, seq, count, dim, err);
  if (!rc) rc = open_table(sc, ref, kind, seq, file->data, file->data + VV_PAGED_HEADER_BYTES, out, err);
  return rc;
}

int vv_paged_open_page(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, const vv_ptable *t,
                       uint32_t page, unsigned char *file, const unsigned char **plain, size_t *len, vv_error *err) {
  if (page >= t->npages) return VV_E_INVALID;
  return open_unit(sc, ref, kind, seq, t, page, file + t->off[page], plain, len, err);
}
