/*
 * session/paged.h: paged objects, the envelope of format version 3.
 *
 * A chunk or an index segment is cut into pages of a few rows (nodes),
 * each sealed on its own with XChaCha20-Poly1305 (or, unencrypted,
 * checked by its BLAKE2b-128), so a reader fetches and verifies exactly
 * the page it needs with one positioned read. The object stays immutable
 * and content-addressed:
 *
 *   file  = header (32 bytes) || table unit || page unit 0 || page unit 1 ...
 *   name  = BLAKE2b-256(header || table unit)
 *
 * The table lists every page's rows, sealed length and check (its
 * Poly1305 tag, or its BLAKE2b-128), so the name pins every page without
 * hashing the whole file, and a page's associated data (header, session
 * id, page number, first row, rows) binds it to its place: a page moved
 * within the object, or from another object or session, fails. The byte
 * layout is docs/FORMAT.md section 4.2.
 *
 * Everything here takes the session context (object.h) and knows nothing
 * of what the pages hold.
 */
#ifndef VV_PAGED_H
#define VV_PAGED_H

#include <stddef.h>
#include <stdint.h>

#include "../codec/codec.h"
#include "object.h"

#define VV_PAGED_VERSION 2 /* the envelope version byte of a paged object */
#define VV_PAGED_HEADER_BYTES 32u
#define VV_PAGE_UNIT_MAX (64u << 20) /* a sealed page unit, at most */

/* A verified page table. */
typedef struct vv_ptable {
  uint32_t npages, count, dim;
  uint32_t table_len;    /* the table's plaintext bytes (a header field) */
  uint32_t *first;       /* npages + 1: page i holds rows first[i] .. first[i+1]-1 */
  uint64_t *off;         /* npages + 1: file offset of each page unit; off[npages] = file size */
  unsigned char *checks; /* npages * VV_PAGE_CHECK_BYTES */
} vv_ptable;

void vv_ptable_free(vv_ptable *t);
/* Bytes the table holds in memory (for cache accounting). */
size_t vv_ptable_bytes(const vv_ptable *t);
/* The page holding `row` (< t->count). */
uint32_t vv_ptable_page_of(const vv_ptable *t, uint32_t row);

/* ---- writing: pages are sealed as they come, the object written at the end ---- */

typedef struct vv_pbuild {
  const vv_sctx *sc;
  int kind;
  uint64_t seq;
  uint32_t dim, count;
  vv_buf units; /* the sealed page units, concatenated */
  uint32_t *rows, *bytes;
  unsigned char *checks;
  uint32_t n, cap;
} vv_pbuild;

void vv_pbuild_begin(vv_pbuild *b, const vv_sctx *sc, int kind, uint64_t seq, uint32_t dim);
/* Seals one page of `rows` rows (>= 1, or 0 for the only page of an empty
 * object) whose plaintext is plain[len]. */
VV_NODISCARD int vv_pbuild_page(vv_pbuild *b, const unsigned char *plain, size_t len, uint32_t rows);
/* Writes the object durably (objects directory fsynced separately) and
 * names it in *out. `file` is scratch for the assembled bytes. */
VV_NODISCARD int vv_pbuild_write(vv_pbuild *b, vv_buf *file, vv_objref *out, vv_error *err);
void vv_pbuild_free(vv_pbuild *b);

/* ---- reading ----
 * Every read checks, before it trusts a byte: the file size against the
 * manifest's, the name against the hash of the header and table, the header
 * against what the manifest says (kind, seq, count, dim), the table's tag,
 * and each page's check and tag. Failures: VV_E_CHUNK_MISSING,
 * VV_E_CHUNK_CORRUPT (err names the object, and the page when one page is
 * to blame), VV_E_IO, VV_E_NOMEM. */

/* Reads and verifies only the header and table, with positioned reads. */
VV_NODISCARD int vv_paged_read_table(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, uint32_t count,
                                     uint32_t dim, vv_ptable *out, vv_error *err);
/* Reads and opens one page: *plain (len bytes) points into `buf`. */
VV_NODISCARD int vv_paged_read_page(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq,
                                    const vv_ptable *t, uint32_t page, vv_buf *buf, const unsigned char **plain,
                                    size_t *len, vv_error *err);

/* Reads the whole object into `file` and verifies its header and table;
 * then vv_paged_open_page opens its pages in place, in any order, from any
 * number of threads (one page per call). */
VV_NODISCARD int vv_paged_read_file(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, uint32_t count,
                                    uint32_t dim, vv_buf *file, vv_ptable *out, vv_error *err);
VV_NODISCARD int vv_paged_open_page(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq,
                                    const vv_ptable *t, uint32_t page, unsigned char *file,
                                    const unsigned char **plain, size_t *len, vv_error *err);

#endif
