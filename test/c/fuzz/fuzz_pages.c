/*
 * test/c/fuzz/fuzz_pages.c: libFuzzer target for paged objects, the
 * format-3 envelope (csrc/session/paged.h): the header and page-table
 * checks, the table's decoder (vv_ptable_decode), and the page opener.
 *
 * Input: one mode byte (bit 0: sealed, with the fixed seed key below and
 * the session id that follows; bit 1: an index segment, else a chunk),
 * 16 bytes of session id, then the object file. The object is served from
 * memory through a vv_io table and named as a reader names it (BLAKE2b-256
 * of its header and table unit, so inputs get past the name check); the
 * manifest's fields (seq, rows, dimension) are taken from its header.
 *
 * Every input must end in VV_OK or VV_E_CHUNK_CORRUPT (never another
 * status, an out-of-bounds read or undefined behaviour). When the table
 * opens, each page is read twice, by a positioned read of its unit
 * (vv_paged_read_page, the lazy reader's way) and from the whole file
 * (vv_paged_read_file + vv_paged_open_page, the eager load's way): both
 * must agree on the status and the plaintext. Opened pages are decoded as
 * what they hold (a chunk map, or a columnar index segment), which must
 * also fail cleanly. Seeds (fuzz/seeds.c) are real sessions' objects.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/index3.h"
#include "common/util.h"
#include "crypto/crypto.h"
#include "session/io.h"
#include "session/paged.h"

/* The raw key fuzz/seeds.c seals its sessions with. */
static const unsigned char kSeedKey[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                           17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void check(int ok) {
  if (!ok) abort();
}

/* ---- the object, served from memory ---- */

typedef struct memfile {
  const unsigned char *p;
  size_t len, at; /* `at`: the sequential read position */
} memfile;

static int m_open(void *ctx, const char *path, int flags, int mode) {
  (void)path;
  (void)flags;
  (void)mode;
  ((memfile *)ctx)->at = 0;
  return 3;
}

static ssize_t m_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off) {
  memfile *f = ctx;
  (void)fd;
  if (off >= f->len) return 0;
  if (n > f->len - off) n = f->len - (size_t)off;
  memcpy(buf, f->p + off, n);
  return (ssize_t)n;
}

static ssize_t m_read(void *ctx, int fd, void *buf, size_t n) {
  memfile *f = ctx;
  ssize_t r = m_pread(ctx, fd, buf, n, f->at);
  if (r > 0) f->at += (size_t)r;
  return r;
}

static int m_fsize(void *ctx, int fd, uint64_t *size) {
  (void)fd;
  *size = ((memfile *)ctx)->len;
  return 0;
}

static int m_close(void *ctx, int fd) {
  (void)ctx;
  (void)fd;
  return 0;
}

static ssize_t m_write(void *ctx, int fd, const void *buf, size_t n) {
  (void)ctx;
  (void)fd;
  (void)buf;
  (void)n;
  return -EROFS;
}

static int m_fsync(void *ctx, int fd) {
  (void)ctx;
  (void)fd;
  return -EROFS;
}

static int m_path(void *ctx, const char *a) {
  (void)ctx;
  (void)a;
  return -EROFS;
}

static int m_rename(void *ctx, const char *a, const char *b) {
  (void)b;
  return m_path(ctx, a);
}

static int m_mkdir(void *ctx, const char *a, int mode) {
  (void)mode;
  return m_path(ctx, a);
}

static int m_lock(void *ctx, int fd) { return m_fsync(ctx, fd); }

static int m_list(void *ctx, const char *dir, int (*fn)(void *, const char *), void *arg) {
  (void)fn;
  (void)arg;
  return m_path(ctx, dir);
}

/* What a page's plaintext holds must decode or fail cleanly. */
static void decode_page(int kind, uint32_t dim, const unsigned char *plain, size_t len) {
  if (kind == VV_OBJ_KIND_CHUNK) {
    vv_chunk_view v;
    if (vv_chunk_decode(plain, len, dim, &v) == VV_OK) vv_chunk_view_free(&v);
    return;
  }
  vv_index3_reader *r = malloc(sizeof *r);
  check(r != NULL);
  uint64_t seq;
  int base;
  uint32_t count, nblocks;
  if (vv_index3_decode_begin(r, plain, len, &seq, &base, &count, &nblocks) == VV_OK) {
    vv_node_view n;
    const uint32_t *l32[VV_CODEC_MAX_LEVELS];
    int rc;
    while ((rc = vv_index3_decode_next(r, &n, l32)) == VV_OK) {
    }
    check(rc == VV_END || rc == VV_E_CORRUPT);
  }
  free(r);
}

static vv_keyring *g_kr;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 + VV_SESSION_ID_BYTES + VV_PAGED_HEADER_BYTES) return 0;
  if (!g_kr) check(vv_crypto_init() == VV_OK && vv_keyring_create(kSeedKey, &g_kr) == VV_OK);
  int sealed = data[0] & 1, kind = data[0] & 2 ? VV_OBJ_KIND_INDEX : VV_OBJ_KIND_CHUNK;
  const unsigned char *file = data + 1 + VV_SESSION_ID_BYTES;
  size_t len = size - 1 - VV_SESSION_ID_BYTES;

  memfile mf = {file, len, 0};
  vv_io io = {&mf,    m_open,   m_read,  m_write, m_fsync, m_close, m_fsize,
              m_rename, m_path, m_mkdir, m_lock,  m_list,  m_pread, 0};
  vv_sctx sc;
  check(vv_sctx_init(&sc, &io, "/fuzz") == VV_OK);
  sc.kr = sealed ? g_kr : NULL;
  memcpy(sc.session_id, data + 1, VV_SESSION_ID_BYTES);

  /* The manifest's view of the object, from its own header. */
  uint64_t seq = vv_get_le64(file + 8);
  uint32_t count = vv_get_le32(file + 16), dim = vv_get_le32(file + 20);
  if (kind == VV_OBJ_KIND_CHUNK && (dim == 0 || dim > VV_MAX_DIMENSION)) dim = 1;
  if (kind == VV_OBJ_KIND_INDEX) dim = 0;
  size_t named = VV_PAGED_HEADER_BYTES + (size_t)vv_get_le32(file + 28) + (sealed ? VV_NONCE_BYTES + VV_TAG_BYTES : 0);
  if (named > len) named = len;
  vv_objref ref;
  unsigned char h[VV_HASH_BYTES];
  vv_hash(file, named, h);
  vv_hex_encode(h, VV_HASH_BYTES, ref.name);
  ref.bytes = len;

  vv_error err;
  vv_ptable t;
  int rc = vv_paged_read_table(&sc, &ref, kind, seq, count, dim, &t, &err);
  check(rc == VV_OK || rc == VV_E_CHUNK_CORRUPT);
  vv_buf whole = {0};
  vv_ptable t2;
  int rc2 = vv_paged_read_file(&sc, &ref, kind, seq, count, dim, &whole, &t2, &err);
  check(rc2 == rc);
  if (!rc) {
    check(t.npages == t2.npages && !memcmp(t.first, t2.first, ((size_t)t.npages + 1) * sizeof *t.first) &&
          !memcmp(t.off, t2.off, ((size_t)t.npages + 1) * sizeof *t.off));
    vv_buf buf = {0};
    uint32_t pages = t.npages < 64 ? t.npages : 64;
    for (uint32_t p = 0; p < pages; p++) {
      const unsigned char *a = NULL, *b = NULL;
      size_t alen = 0, blen = 0;
      int ra = vv_paged_read_page(&sc, &ref, kind, seq, &t, p, &buf, &a, &alen, &err);
      int rb = vv_paged_open_page(&sc, &ref, kind, seq, &t2, p, whole.data, &b, &blen, &err);
      check(ra == rb && (ra == VV_OK || ra == VV_E_CHUNK_CORRUPT));
      if (ra) continue;
      check(alen == blen && !memcmp(a, b, alen));
      decode_page(kind, dim, a, alen);
    }
    vv_buf_free(&buf);
    vv_ptable_free(&t);
    vv_ptable_free(&t2);
  }
  vv_buf_free(&whole);
  vv_sctx_destroy(&sc);
  return 0;
}
