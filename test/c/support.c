/*
 * test/c/support.c: fixtures shared by the C tests; see support.h for what
 * each does. Compiled once per variant (plain, asan, tsan) and linked into
 * every test binary.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/index3.h"
#include "common/util.h"
#include "crypto/crypto.h"
#include "session/io.h"
#include "session/manifest.h"
#include "session/object.h"
#include "session/paged.h"
#include "vecvault.h"

#define VT_SESSION_MODEL
#include "support.h"

#ifdef VVT_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---- paths and temporary directories ------------------------------------ */

int strf(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  return r;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* The running isolated test's root: made and removed by the parent around
 * each isolated run (so a crashed child leaves nothing behind). */
static char g_test_root[64];

/* Roots made outside isolated runs, removed at exit, so a test that stops
 * at a failed VV_REQUIRE leaves nothing behind. A forked child ends with
 * _exit and so never removes its parent's roots. */
static char g_roots[64][64];
static int g_nroots;

static void remove_roots(void) {
  for (int i = 0; i < g_nroots; i++) rm_rf(g_roots[i]);
}

static const char *tmp_base(void) {
  const char *base = getenv("VV_TEST_TMPDIR");
  return base && *base && strlen(base) <= 32 ? base : "/tmp";
}

int make_root(char out[64]) {
  if (g_test_root[0]) {
    strf(out, 64, "%s/r-XXXXXX", g_test_root);
    return mkdtemp(out) ? 0 : -1;
  }
  strf(out, 64, "%s/vvtest-XXXXXX", tmp_base());
  if (!mkdtemp(out)) return -1;
  if (g_nroots == 0) atexit(remove_roots);
  if (g_nroots < 64) memcpy(g_roots[g_nroots++], out, 64);
  return 0;
}

/* ---- isolation ------------------------------------------------------------ */

int vt_isolated(void (*fn)(void *), void *arg, const int *failures, const char *test_name) {
  fflush(stdout);
  fflush(stderr);
  strf(g_test_root, sizeof g_test_root, "%s/vvsess-XXXXXX", tmp_base());
  if (!mkdtemp(g_test_root)) g_test_root[0] = '\0';
  pid_t pid = fork();
  if (pid < 0) {
    fn(arg);
    if (g_test_root[0]) rm_rf(g_test_root);
    g_test_root[0] = '\0';
    return 0;
  }
  if (pid == 0) {
    int before = *failures;
    fn(arg);
#ifdef VVT_ASAN
    __lsan_do_leak_check(); /* exits non-zero on a leak */
#endif
    fflush(stdout);
    fflush(stderr);
    _exit(*failures > before ? 1 : 0);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (g_test_root[0]) rm_rf(g_test_root);
  g_test_root[0] = '\0';
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFSIGNALED(st))
    fprintf(stderr, "  [%s] the isolated run died of signal %d\n", test_name, WTERMSIG(st));
  else if (WIFEXITED(st) && WEXITSTATUS(st) != 1)
    fprintf(stderr, "  [%s] the isolated run exited with %d (a sanitizer report?)\n", test_name, WEXITSTATUS(st));
  return -1;
}

/* ---- files and session directories ---------------------------------------- */


unsigned char *read_all(const char *path, size_t *len) {
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
  if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) *len = (size_t)n;
  return b;
}

int write_all(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT, 0600);
  if (fd < 0) return -1;
  const unsigned char *p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w <= 0) break;
    p += w;
    left -= (size_t)w;
  }
  int rc = left == 0 && ftruncate(fd, (off_t)len) == 0 ? 0 : -1;
  return close(fd) == 0 ? rc : -1;
}

int path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int count_tmp(const char *dir) {
  static const char *const subs[] = {"", "/objects", "/manifests"};
  int n = 0;
  for (int i = 0; i < 3; i++) {
    char p[256];
    strf(p, sizeof p, "%s%s", dir, subs[i]);
    DIR *d = opendir(p);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += starts_with(e->d_name, "tmp-");
    closedir(d);
  }
  return n;
}

void clear_dir(const char *dir, int remove_dirs) {
  if (remove_dirs) {
    rm_rf(dir);
    return;
  }
  static const char *const subs[] = {"/objects", "/manifests", ""};
  for (int i = 0; i < 3; i++) {
    char p[256];
    strf(p, sizeof p, "%s%s", dir, subs[i]);
    DIR *d = opendir(p);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char fp[600];
      strf(fp, sizeof fp, "%s/%s", p, e->d_name);
      struct stat st;
      if (e->d_name[0] != '.' && lstat(fp, &st) == 0 && !S_ISDIR(st.st_mode)) unlink(fp);
    }
    closedir(d);
  }
}

void make_dirs(const char *dir) {
  char p[256];
  mkdir(dir, 0700);
  strf(p, sizeof p, "%s/objects", dir);
  mkdir(p, 0700);
  strf(p, sizeof p, "%s/manifests", dir);
  mkdir(p, 0700);
}

int link_dir(const char *from, const char *to) {
  static const char *const subs[] = {"", "/objects", "/manifests"};
  make_dirs(to);
  for (int i = 0; i < 3; i++) {
    char p[256];
    strf(p, sizeof p, "%s%s", from, subs[i]);
    DIR *d = opendir(p);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char src[600], dst[600];
      strf(src, sizeof src, "%s/%s", p, e->d_name);
      strf(dst, sizeof dst, "%s%s/%s", to, subs[i], e->d_name);
      struct stat st;
      if (e->d_name[0] == '.' || lstat(src, &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (link(src, dst) != 0) {
        closedir(d);
        return -1;
      }
    }
    closedir(d);
  }
  return 0;
}

int missing_objects(const char *dir) {
  int missing = 0;
  char mdir[256];
  strf(mdir, sizeof mdir, "%s/manifests", dir);
  DIR *d = opendir(mdir);
  char *names[64];
  int nn = 0;
  names[nn++] = strdup("manifest.json");
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL && nn < 64) {
    if (strlen(e->d_name) != 25 || strcmp(e->d_name + 20, ".json")) continue;
    char rel[64];
    strf(rel, sizeof rel, "manifests/%s", e->d_name);
    names[nn++] = strdup(rel);
  }
  if (d) closedir(d);
  for (int i = 0; i < nn; i++) {
    char p[512];
    strf(p, sizeof p, "%s/%s", dir, names[i]);
    size_t len;
    unsigned char *file = read_all(p, &len);
    vv_manifest m;
    const unsigned char *body;
    size_t blen;
    if (file && vv_manifest_parse(file, len, &m, &body, &blen, NULL) == VV_OK) {
      for (size_t k = 0; k < m.nchunks + m.nbase + m.ndeltas; k++) {
        const vv_objref *r = k < m.nchunks ? &m.chunks[k].ref
                             : k < m.nchunks + m.nbase ? &m.base[k - m.nchunks].ref
                                                       : &m.deltas[k - m.nchunks - m.nbase].ref;
        char op[512];
        strf(op, sizeof op, "%s/objects/%s", dir, r->name);
        struct stat st;
        if (stat(op, &st) != 0 || (uint64_t)st.st_size != r->bytes) missing++;
      }
      vv_manifest_free(&m);
    }
    free(file);
    free(names[i]);
  }
  return missing;
}

/* ---- session snapshots: name and hash of every file but tmp-files ------- */

static void snap_add_dir(snap *s, const char *dir, const char *sub) {
  char p[256];
  strf(p, sizeof p, "%s%s%s", dir, *sub ? "/" : "", sub);
  DIR *d = opendir(p);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || starts_with(e->d_name, "tmp-")) continue;
    char fp[600];
    strf(fp, sizeof fp, "%s/%s", p, e->d_name);
    struct stat st;
    if (stat(fp, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (s->n == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 64;
      s->e = realloc(s->e, s->cap * sizeof *s->e);
    }
    snap_ent *x = &s->e[s->n++];
    strf(x->rel, sizeof x->rel, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
    unsigned char *b = read_all(fp, &x->len);
    vv_hash(b, x->len, x->h);
    free(b);
  }
  closedir(d);
}

void snap_take(snap *s, const char *dir) {
  s->n = 0;
  snap_add_dir(s, dir, "");
  snap_add_dir(s, dir, "objects");
  snap_add_dir(s, dir, "manifests");
}

void snap_free(snap *s) {
  free(s->e);
  memset(s, 0, sizeof *s);
}

static const snap_ent *snap_find(const snap *s, const char *rel) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->e[i].rel, rel)) return &s->e[i];
  return NULL;
}

const char *snap_untouched(const snap *before, const snap *after) {
  static char why[256];
  for (size_t i = 0; i < before->n; i++) {
    const snap_ent *a = snap_find(after, before->e[i].rel);
    if (!a) {
      strf(why, sizeof why, "%s was removed", before->e[i].rel);
      return why;
    }
    if (a->len != before->e[i].len || memcmp(a->h, before->e[i].h, VV_HASH_BYTES)) {
      strf(why, sizeof why, "%s changed", before->e[i].rel);
      return why;
    }
  }
  for (size_t i = 0; i < after->n; i++) {
    if (snap_find(before, after->e[i].rel) || starts_with(after->e[i].rel, "objects/")) continue;
    if (!strcmp(after->e[i].rel, "lock")) continue; /* created by the first save's open */
    strf(why, sizeof why, "%s appeared", after->e[i].rel);
    return why;
  }
  return NULL;
}

int snap_equal(const snap *a, const snap *b) {
  if (a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++) {
    const snap_ent *x = snap_find(b, a->e[i].rel);
    if (!x || x->len != a->e[i].len || memcmp(x->h, a->e[i].h, VV_HASH_BYTES)) return 0;
  }
  return 1;
}

/* ---- editing sessions: objects, manifests ---------------------------------- */

void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

size_t object_named_bytes(const unsigned char *data, size_t len) {
  if (len < VV_PAGED_HEADER_BYTES || memcmp(data, VV_OBJ_MAGIC, 4) != 0 || data[4] != VV_PAGED_VERSION) return len;
  size_t unit = vv_get_le32(data + 28) + ((data[6] & VV_OBJ_FLAG_ENCRYPTED) ? VV_NONCE_BYTES + VV_TAG_BYTES : 0);
  size_t named = VV_PAGED_HEADER_BYTES + unit;
  return named < len ? named : len;
}

int write_object(const char *dir, const unsigned char *data, size_t len, char name[65]) {
  unsigned char h[VV_HASH_BYTES];
  vv_hash(data, object_named_bytes(data, len), h);
  vv_hex_encode(h, VV_HASH_BYTES, name);
  char p[512];
  strf(p, sizeof p, "%s/objects/%s", dir, name);
  return write_all(p, data, len);
}

unsigned char *read_object(const char *dir, const char *name, size_t *len) {
  char p[512];
  if (strf(p, sizeof p, "%s/objects/%s", dir, name) >= (int)sizeof p) return NULL;
  return read_all(p, len);
}

void text_set(text *t, const void *p, size_t n) {
  free(t->p);
  t->p = malloc(n + 1);
  memcpy(t->p, p, n);
  t->p[n] = '\0';
  t->n = n;
}

void text_splice(text *t, size_t at, size_t len, const char *with, size_t wlen) {
  if (at > t->n) at = t->n;
  if (len > t->n - at) len = t->n - at;
  char *q = malloc(t->n - len + wlen + 1);
  memcpy(q, t->p, at);
  memcpy(q + at, with, wlen);
  memcpy(q + at + wlen, t->p + at + len, t->n - at - len);
  t->n = t->n - len + wlen;
  q[t->n] = '\0';
  free(t->p);
  t->p = q;
}

long text_find(const text *t, const char *needle, size_t from) {
  size_t nl = strlen(needle);
  for (size_t i = from; i + nl <= t->n; i++)
    if (memcmp(t->p + i, needle, nl) == 0) return (long)i;
  return -1;
}

int manifest_read(const char *dir, text *body, char mac[65]) {
  char p[256];
  strf(p, sizeof p, "%s/manifest.json", dir);
  size_t len;
  unsigned char *f = read_all(p, &len);
  if (!f || len < VV_MANIFEST_PREFIX_BYTES + 2) {
    free(f);
    return -1;
  }
  memcpy(mac, f + 81, 64);
  mac[64] = '\0';
  text_set(body, f + VV_MANIFEST_PREFIX_BYTES, len - VV_MANIFEST_PREFIX_BYTES - 2);
  free(f);
  return 0;
}

void manifest_compose(const text *body, const char *mac, text *out) {
  unsigned char h[VV_HASH_BYTES];
  char sum[65];
  vv_hash((const unsigned char *)body->p, body->n, h);
  vv_hex_encode(h, VV_HASH_BYTES, sum);
  size_t n = VV_MANIFEST_PREFIX_BYTES + body->n + 2;
  char *f = malloc(n + 1);
  strf(f, n + 1, "{\"sum\":\"%s\",\"mac\":\"%s\",\"body\":", sum, mac);
  memcpy(f + VV_MANIFEST_PREFIX_BYTES, body->p, body->n);
  memcpy(f + n - 2, "}\n", 2);
  free(out->p);
  out->p = f;
  out->n = n;
}

int manifest_write(const char *dir, const text *body, const char *mac) {
  text f = {0};
  manifest_compose(body, mac, &f);
  char p[256];
  strf(p, sizeof p, "%s/manifest.json", dir);
  int rc = write_all(p, f.p, f.n);
  free(f.p);
  return rc;
}

int manifest_retarget(text *body, const char *old, const char *neu, uint64_t bytes, long long seq_from,
                      long long seq_to) {
  char pat[100];
  strf(pat, sizeof pat, "\"name\":\"%s\"", old);
  long at = text_find(body, pat, 0);
  if (at < 0) return -1;
  text_splice(body, (size_t)at + 8, 64, neu, 64);
  if (seq_from >= 0) {
    char from[48], to[48];
    strf(from, sizeof from, ",\"seq\":%lld,", seq_from);
    strf(to, sizeof to, ",\"seq\":%lld,", seq_to);
    if (text_find(body, from, (size_t)at) != at + 73) return -1;
    text_splice(body, (size_t)at + 73, strlen(from), to, strlen(to));
  }
  long b = text_find(body, "\"bytes\":", (size_t)at);
  if (b < 0) return -1;
  size_t e = (size_t)b + 8;
  while (e < body->n && body->p[e] >= '0' && body->p[e] <= '9') e++;
  char num[32];
  int nl = strf(num, sizeof num, "%llu", (unsigned long long)bytes);
  text_splice(body, (size_t)b + 8, e - ((size_t)b + 8), num, (size_t)nl);
  return 0;
}

int read_manifest(const char *dir, vv_manifest *m) {
  char p[256];
  strf(p, sizeof p, "%s/manifest.json", dir);
  size_t len;
  unsigned char *f = read_all(p, &len);
  const unsigned char *body;
  size_t blen;
  int rc = f ? vv_manifest_parse(f, len, m, &body, &blen, NULL) : VV_E_IO;
  free(f);
  return rc;
}

/* ---- the cache bound, sampled ---------------------------------------------------- */

void *cache_watch_thread(void *arg) {
  cache_watch *w = arg;
  while (!atomic_load(&w->stop)) {
    vv_cache_info ci;
    vv_db_cache_info(w->db, &ci);
    w->samples++;
    w->over += ci.bytes > ci.capacity;
    usleep(100);
  }
  return NULL;
}

/* ---- paged objects (format 3) and older formats ----------------------------- */

uint32_t object_npages(const char *dir, const char *name) {
  size_t len;
  unsigned char *f = read_object(dir, name, &len);
  uint32_t n = 0;
  if (f && len >= VV_PAGED_HEADER_BYTES && memcmp(f, VV_OBJ_MAGIC, 4) == 0 && f[4] == VV_PAGED_VERSION)
    n = vv_get_le32(f + 24);
  free(f);
  return n;
}

int session_ctx_open(session_ctx *c, const char *dir, const unsigned char *key) {
  memset(c, 0, sizeof *c);
  int rc = vv_crypto_init();
  if (!rc) rc = read_manifest(dir, &c->m);
  if (rc) return rc;
  c->have_m = 1;
  if (key) rc = vv_keyring_create(key, &c->kr);
  if (!rc) rc = vv_sctx_init(&c->sc, vv_io_posix(), dir);
  if (!rc) {
    c->have_sc = 1;
    c->sc.kr = c->kr;
    memcpy(c->sc.session_id, c->m.session_id, VV_SESSION_ID_BYTES);
  }
  if (rc) session_ctx_close(c);
  return rc;
}

void session_ctx_close(session_ctx *c) {
  if (c->have_sc) vv_sctx_destroy(&c->sc);
  vv_keyring_free(c->kr);
  if (c->have_m) vv_manifest_free(&c->m);
  memset(c, 0, sizeof *c);
}

int chunk_table(const session_ctx *c, const vv_mchunk *mc, vv_ptable *t) {
  vv_error err = {{0}};
  return vv_paged_read_table(&c->sc, &mc->ref, VV_OBJ_KIND_CHUNK, mc->seq, mc->count, c->m.dimension, t, &err);
}

/* A chunk of format 3 as one format-1/2 chunk map: every page's rows in order. */
static int downgrade_chunk(const session_ctx *c, const vv_mchunk *mc, vv_buf *out) {
  vv_buf file = {0};
  vv_ptable t;
  vv_error err = {{0}};
  uint32_t dim = c->m.dimension, n = mc->count;
  int rc = vv_paged_read_file(&c->sc, &mc->ref, VV_OBJ_KIND_CHUNK, mc->seq, n, dim, &file, &t, &err);
  if (rc) {
    vv_buf_free(&file);
    return rc;
  }
  vv_chunk_view *views = calloc(t.npages, sizeof *views);
  uint32_t *slots = malloc((n + 1) * sizeof *slots), *id_lens = malloc((n + 1) * 4), *meta_lens = malloc((n + 1) * 4);
  float *vecs = malloc(((size_t)n * dim + 1) * sizeof *vecs);
  const float **vp = malloc((n + 1) * sizeof *vp);
  const char **ids = malloc((n + 1) * sizeof *ids), **metas = malloc((n + 1) * sizeof *metas);
  if (!views || !slots || !id_lens || !meta_lens || !vecs || !vp || !ids || !metas) rc = VV_E_NOMEM;
  for (uint32_t pg = 0; pg < t.npages && !rc; pg++) {
    const unsigned char *plain;
    size_t plen;
    rc = vv_paged_open_page(&c->sc, &mc->ref, VV_OBJ_KIND_CHUNK, mc->seq, &t, pg, file.data, &plain, &plen, &err);
    if (!rc) rc = vv_chunk_decode(plain, plen, dim, &views[pg]);
    for (uint32_t i = 0; !rc && i < views[pg].count; i++) {
      uint32_t r = t.first[pg] + i;
      slots[r] = vv_get_le32(views[pg].slots + 4 * (size_t)i);
      vv_read_f32le(views[pg].vectors + (size_t)i * dim * 4, dim, vecs + (size_t)r * dim);
      vp[r] = vecs + (size_t)r * dim;
      ids[r] = views[pg].ids[i];
      id_lens[r] = views[pg].id_lens[i];
      metas[r] = views[pg].metas[i];
      meta_lens[r] = views[pg].meta_lens[i];
    }
  }
  if (!rc) {
    vv_chunk_in in = {mc->seq, dim, n, slots, (const float *const *)vp, ids, id_lens, metas, meta_lens};
    rc = vv_chunk_encode(&in, out);
  }
  for (uint32_t pg = 0; views && pg < t.npages; pg++) vv_chunk_view_free(&views[pg]);
  free(views);
  free(slots);
  free(id_lens);
  free(meta_lens);
  free(vecs);
  free(vp);
  free(ids);
  free(metas);
  vv_ptable_free(&t);
  vv_buf_free(&file);
  return rc;
}

/* An index segment of format 3 (pages of columnar segments, codec/index3.h)
 * as one segment map of format `version` (1: no codebook, no codes). */
static int downgrade_segment(const session_ctx *c, const vv_mseg *g, int base, int version, vv_buf *out) {
  static uint32_t store[VV_CODEC_MAX_LEVELS][VV_CODEC_MAX_LINKS];
  vv_buf file = {0};
  vv_ptable t;
  vv_error err = {{0}};
  int rc = vv_paged_read_file(&c->sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq, g->count, 0, &file, &t, &err);
  float *cents = NULL;
  for (uint32_t pg = 0; pg < t.npages && !rc; pg++) {
    const unsigned char *plain;
    size_t plen;
    rc = vv_paged_open_page(&c->sc, &g->ref, VV_OBJ_KIND_INDEX, g->seq, &t, pg, file.data, &plain, &plen, &err);
    vv_index3_reader r;
    uint64_t seq;
    int b;
    uint32_t count, nblocks;
    if (!rc) rc = vv_index3_decode_begin(&r, plain, plen, &seq, &b, &count, &nblocks);
    if (!rc && pg == 0) {
      vv_codebook_in cb = {0};
      if (r.has_codebook && version == 2) {
        size_t nf = (size_t)r.cb.m * r.cb.ksub * r.cb.dsub;
        cents = malloc(nf * sizeof *cents);
        vv_read_f32le(r.cb.centroids, nf, cents);
        cb = (vv_codebook_in){r.cb.m, r.cb.ksub, r.cb.dsub, r.cb.trained, cents};
      }
      rc = version == 2 ? vv_index_encode_begin_v2(out, g->seq, base, g->count, cents ? &cb : NULL)
                        : vv_index_encode_begin(out, g->seq, base, g->count);
    }
    vv_node_view nd;
    const uint32_t *links32[VV_CODEC_MAX_LEVELS];
    while (!rc && (rc = vv_index3_decode_next(&r, &nd, links32)) == VV_OK) {
      const uint32_t *links[VV_CODEC_MAX_LEVELS];
      for (uint32_t l = 0; l < nd.nlevels; l++) {
        for (uint32_t k = 0; k < nd.counts[l]; k++) store[l][k] = vv_get_le32(nd.links[l] + 4 * (size_t)k);
        links[l] = store[l];
      }
      vv_node_in n = {.slot = nd.slot, .id = nd.id, .id_len = nd.id_len, .chunk = nd.chunk, .row = nd.row,
                      .nlevels = nd.nlevels, .links = links, .counts = nd.counts, .v2 = version == 2,
                      .code = version == 2 ? nd.code : NULL, .code_len = version == 2 ? nd.code_len : 0};
      rc = vv_index_encode_node(out, &n);
    }
    if (rc == VV_END) rc = VV_OK;
  }
  free(cents);
  vv_ptable_free(&t);
  vv_buf_free(&file);
  return rc;
}

int downgrade_session(const char *dir, int version) {
  session_ctx c;
  int rc = session_ctx_open(&c, dir, NULL);
  if (rc) return rc;
  text body = {0};
  char mac[65];
  if (c.m.version != VV_FORMAT_VERSION_PLAIN || c.m.kdf != VV_KDF_NONE || manifest_read(dir, &body, mac)) rc = VV_E_INVALID;
  vv_buf plain = {0}, scratch = {0};
  vv_error err = {{0}};
  size_t nseg = c.m.nbase + c.m.ndeltas;
  for (size_t i = 0; i < c.m.nchunks + nseg && !rc; i++) {
    vv_objref ref, *old;
    plain.len = 0;
    if (i < c.m.nchunks) {
      old = &c.m.chunks[i].ref;
      rc = downgrade_chunk(&c, &c.m.chunks[i], &plain);
      if (!rc) rc = vv_object_write(&c.sc, VV_OBJ_KIND_CHUNK, c.m.chunks[i].seq, plain.data, plain.len, &scratch, &ref, &err);
    } else {
      size_t j = i - c.m.nchunks;
      int base = j < c.m.nbase;
      const vv_mseg *g = base ? &c.m.base[j] : &c.m.deltas[j - c.m.nbase];
      old = (vv_objref *)&g->ref;
      rc = downgrade_segment(&c, g, base, version, &plain);
      if (!rc) rc = vv_object_write(&c.sc, VV_OBJ_KIND_INDEX, g->seq, plain.data, plain.len, &scratch, &ref, &err);
    }
    if (!rc && manifest_retarget(&body, old->name, ref.name, ref.bytes, -1, -1)) rc = VV_E_INTERNAL;
    /* The format-3 object goes: the session holds only objects of its format. */
    if (!rc) {
      char p[512];
      strf(p, sizeof p, "%s/objects/%s", dir, old->name);
      unlink(p);
    }
  }
  char from[24], to[24];
  strf(from, sizeof from, "\"version\":%d,", VV_FORMAT_VERSION_PLAIN);
  long at = rc ? -1 : text_find(&body, from, 0);
  if (!rc && at < 0) rc = VV_E_INTERNAL;
  if (!rc) {
    int tl = strf(to, sizeof to, "\"version\":%d,", version);
    text_splice(&body, (size_t)at, strlen(from), to, (size_t)tl);
    rc = manifest_write(dir, &body, mac) ? VV_E_IO : VV_OK;
  }
  /* Older generations' manifests name objects just removed: only this
   * generation's history copy stays, rewritten like manifest.json. */
  char mdir[256], mine[32];
  strf(mdir, sizeof mdir, "%s/manifests", dir);
  strf(mine, sizeof mine, "%020llu.json", (unsigned long long)c.m.generation);
  DIR *d = rc ? NULL : opendir(mdir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.' || !strcmp(e->d_name, mine)) continue;
    char p[512];
    strf(p, sizeof p, "%s/%s", mdir, e->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  if (!rc) {
    text f = {0};
    manifest_compose(&body, mac, &f);
    char p[512];
    strf(p, sizeof p, "%s/%s", mdir, mine);
    rc = write_all(p, f.p, f.n) ? VV_E_IO : VV_OK;
    free(f.p);
  }
  vv_buf_free(&plain);
  vv_buf_free(&scratch);
  free(body.p);
  session_ctx_close(&c);
  return rc;
}

/* ---- database contents: a model of what a database must hold ------------ */

int id_of(int i, char *buf) { return strf(buf, 16, "v%03d", i); }

static float gen_val(uint64_t version, int i, int d) {
  uint64_t st = version * 1000003u + (uint64_t)i * 131u + (uint64_t)d;
  return (float)(vv_unit_double(vv_splitmix64(&st)) * 2 - 1);
}

void model_set(model *m, int i, uint64_t version, const char *meta) {
  m->present[i] = 1;
  for (int d = 0; d < DIM; d++) m->vec[i][d] = gen_val(version, i, d);
  m->meta_len[i] = meta ? strf(m->meta[i], sizeof m->meta[i], "%s", meta) : 0;
}

void model_a(model *m, int n) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < n; i++) {
    char meta[40];
    strf(meta, sizeof meta, "{\"i\":%d}", i);
    model_set(m, i, 1, i % 3 ? meta : NULL);
  }
}

/* A with: ids 0 .. 3/4 of a chunk changed, a few deletions, a few
 * additions and one metadata-only change. Format-2 chunks hold graph
 * neighbourhoods, not slot ranges, so which chunks fall under half current
 * depends on the layout; with the loops' sessions (40 vectors, chunks of
 * 20, m 32) one of the two is rewritten and the other kept. */
void model_b(const model *a, model *b, int n, int chunk) {
  *b = *a;
  for (int i = 0; i < chunk * 3 / 4 && i < n; i++) model_set(b, i, 2, a->meta_len[i] ? a->meta[i] : NULL);
  for (int i = n - 10; i < n - 5; i++) b->present[i] = 0;
  for (int i = n; i < n + 10 && i < MAXV; i++) model_set(b, i, 1, "{\"new\":true}");
  int j = n / 2 + 1; /* a row not otherwise changed */
  b->meta_len[j] = strf(b->meta[j], sizeof b->meta[j], "{\"i\":%d,\"x\":1}", j);
}

int model_count(const model *m) {
  int c = 0;
  for (int i = 0; i < MAXV; i++) c += m->present[i];
  return c;
}

static int add_one(vv_db *db, const model *m, int i) {
  char id[16];
  int len = id_of(i, id);
  vv_item it = {id, (size_t)len, m->vec[i], m->meta_len[i] ? m->meta[i] : NULL, (size_t)m->meta_len[i], NULL, 0};
  return vv_db_add(db, &it);
}

int apply_model(vv_db *db, const model *from, const model *to) {
  for (int i = 0; i < MAXV; i++) {
    int rc = VV_OK;
    if (to->present[i] &&
        (!from->present[i] || memcmp(from->vec[i], to->vec[i], sizeof to->vec[i]) ||
         from->meta_len[i] != to->meta_len[i] || memcmp(from->meta[i], to->meta[i], (size_t)to->meta_len[i]))) {
      rc = add_one(db, to, i);
    } else if (from->present[i] && !to->present[i]) {
      char id[16];
      int removed, len = id_of(i, id);
      rc = vv_db_delete(db, id, (size_t)len, &removed);
    }
    if (rc) return rc;
  }
  return VV_OK;
}


uint32_t g_m = FUZZ_M; /* m of the databases build_db makes */

vv_db *make_db(uint32_t chunk, vv_index_kind kind) {
  vv_config c = {0};
  c.dimension = DIM;
  c.metric = VV_METRIC_L2;
  c.index = kind;
  c.hnsw_m = g_m;
  c.ef_construction = 24;
  c.threads = 1;
  c.seed = 7;
  c.chunk_size = chunk;
  vv_db *db = NULL;
  return vv_db_create(&c, &db) == VV_OK ? db : NULL;
}

vv_db *build_db(const model *m, uint32_t chunk) {
  model empty;
  memset(&empty, 0, sizeof empty);
  vv_db *db = make_db(chunk, VV_INDEX_HNSW);
  if (db && apply_model(db, &empty, m) != VV_OK) {
    vv_db_free(db);
    db = NULL;
  }
  return db;
}

const char *db_differs(vv_db *db, const model *m) {
  static char why[128];
  if (vv_db_size(db) != (uint64_t)model_count(m)) {
    strf(why, sizeof why, "size %llu, expected %d", (unsigned long long)vv_db_size(db), model_count(m));
    return why;
  }
  for (int i = 0; i < MAXV; i++) {
    char id[16];
    int len = id_of(i, id);
    vv_record *r = NULL;
    if (vv_db_get(db, id, (size_t)len, &r) != VV_OK) return "get failed";
    const char *bad = NULL;
    if (!m->present[i] && r) bad = "an absent id is present";
    else if (m->present[i] && !r) bad = "an id is missing";
    else if (r && memcmp(r->vector, m->vec[i], sizeof m->vec[i])) bad = "a vector differs";
    else if (r && ((size_t)m->meta_len[i] != r->meta_len ||
                   (r->meta_len && memcmp(r->meta, m->meta[i], r->meta_len))))
      bad = "metadata differs";
    vv_record_free(r);
    if (bad) {
      strf(why, sizeof why, "%s (%s)", bad, id);
      return why;
    }
  }
  return NULL;
}

const unsigned char kKey[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

int load_dir_opts(const char *dir, const unsigned char *key, const vv_io *io, int lazy, vv_db **out,
                  vv_load_stats *st, vv_error *err) {
  vv_load_opts o = {0};
  o.key = key;
  o.io = io;
  o.lazy = lazy;
  return vv_db_load(dir, &o, NULL, NULL, out, st, err);
}

int load_dir(const char *dir, const unsigned char *key, const vv_io *io, vv_db **out, vv_error *err) {
  return load_dir_opts(dir, key, io, 0, out, NULL, err);
}

const char *dir_differs_as(const char *dir, const unsigned char *key, int lazy, const model *m) {
  static char why[480];
  vv_db *db = NULL;
  vv_error err = {{0}};
  int rc = load_dir_opts(dir, key, NULL, lazy, &db, NULL, &err);
  if (rc) {
    strf(why, sizeof why, "load failed: %s (%s)", vv_status_code(rc), err.message);
    return why;
  }
  const char *d = db_differs(db, m);
  if (d) strf(why, sizeof why, "%s%s", lazy ? "lazily loaded: " : "", d);
  vv_db_free(db);
  return d ? why : NULL;
}

const char *dir_differs(const char *dir, const unsigned char *key, const model *m) {
  return dir_differs_as(dir, key, 0, m);
}

int save_to(vv_db *db, const char *dir, fio *f, vv_error *err) {
  return vv_db_save(db, dir, (const struct vv_io *)fio_io(f), NULL, NULL, NULL, err);
}

int save_clean(vv_db *db, const char *dir) {
  fio f;
  fio_init(&f, NULL);
  vv_error err;
  int rc = save_to(db, dir, &f, &err);
  fio_destroy(&f);
  return rc;
}

int small_session(const char *dir, model *content, const unsigned char *key) {
  model a;
  model_a(&a, SMALL_N);
  model_b(&a, content, SMALL_N, SMALL_CHUNK);
  vv_db *db = build_db(&a, SMALL_CHUNK);
  if (!db) return -1;
  int rc = key ? vv_db_set_secret(db, 1, key, NULL, 0) : VV_OK;
  if (!rc) rc = save_clean(db, dir);
  if (!rc) rc = apply_model(db, &a, content);
  if (!rc) rc = save_clean(db, dir);
  vv_db_free(db);
  return rc;
}

int search_works(vv_db *db) {
  float q[DIM] = {0.1f, -0.2f, 0.3f, 0.f, 0.5f, -0.5f, 0.25f, 0.f};
  vv_results *res = NULL;
  vv_search_opts so = {0};
  int rc = vv_db_search(db, q, 10, &so, &res);
  uint64_t want = vv_db_size(db) < 10 ? vv_db_size(db) : 10;
  int ok = rc == VV_OK && res && res->count == want;
  for (size_t i = 0; ok && i < res->count; i++) {
    vv_record *r = NULL;
    ok = vv_db_get(db, res->hits[i].id, res->hits[i].id_len, &r) == VV_OK && r != NULL;
    vv_record_free(r);
  }
  vv_results_free(res);
  return ok;
}
