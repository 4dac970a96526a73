/*
 * session/objio.c: file operations over an object store (see objio.h).
 */
#include "objio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FD_BASE 3 /* descriptors look like real ones: never 0..2 */

enum { H_READ = 1, H_WRITE, H_DIR, H_LOCK };

typedef struct handle {
  int kind;
  char *key;
  unsigned char *data; /* H_READ: the whole object once fetched; H_WRITE: what was written */
  size_t len, cap, pos;
  int fetched;
} handle;

/* A closed temporary file, waiting for its rename. */
typedef struct staged {
  char *key;
  unsigned char *data;
  size_t len;
  struct staged *next;
} staged;

enum { MAN_UNKNOWN = 0, MAN_ABSENT, MAN_KNOWN };

struct vv_objio {
  vv_io io;
  const vv_store_ops *ops;
  char *root;
  size_t root_len;
  unsigned inflight;
  int64_t grace_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;  /* broadcast on every completion */
  handle **fds;
  size_t nfds;
  staged *staged;
  unsigned outstanding; /* uploads submitted and not completed */
  int upload_rc;        /* the first failed upload's status (sticky) */
  char upload_msg[512];
  int man_state;
  char man_version[VV_SOP_VERSION_MAX];
  vv_objio_stats stats;
};

/* ---- requests -------------------------------------------------------------- */

typedef struct waiter {
  vv_objio *o;
  int done;
} waiter;

static void complete_sync(vv_store_req *r) {
  waiter *w = (waiter *)r->owner;
  pthread_mutex_lock(&w->o->mu);
  w->done = 1;
  pthread_cond_broadcast(&w->o->cv);
  pthread_mutex_unlock(&w->o->mu);
}

/* Submits `r` and waits for it; returns r->rc, with the store's words set
 * as the detail of the error (io.h) when it failed. */
static int run(vv_objio *o, vv_store_req *r) {
  waiter w = {o, 0};
  r->rc = -EIO;
  r->out = NULL;
  r->out_len = 0;
  r->version[0] = 0;
  r->msg[0] = 0;
  r->complete = complete_sync;
  r->owner = &w;
  o->ops->submit(o->ops->ctx, r);
  pthread_mutex_lock(&o->mu);
  while (!w.done) pthread_cond_wait(&o->cv, &o->mu);
  pthread_mutex_unlock(&o->mu);
  if (r->rc > 0) r->rc = -EIO; /* a store that broke the contract */
  if (r->rc < 0 && r->msg[0]) {
    char words[512];
    snprintf(words, sizeof words, "%.120s%s%.90s: %.250s", o->root, r->key && r->key[0] ? "/" : "", r->key ? r->key : "",
             r->msg);
    vv_io_set_detail(words);
  }
  return r->rc;
}

typedef struct upload {
  vv_store_req r;
  vv_objio *o;
  char *key;
  unsigned char *data;
} upload;

static void complete_upload(vv_store_req *r) {
  upload *u = (upload *)r->owner;
  vv_objio *o = u->o;
  pthread_mutex_lock(&o->mu);
  if (r->rc != 0 && o->upload_rc == 0) {
    o->upload_rc = r->rc < 0 ? r->rc : -EIO;
    snprintf(o->upload_msg, sizeof o->upload_msg, "%.120s/%.90s: %.200s", o->root, u->key,
             r->msg[0] ? r->msg : "upload failed");
  }
  o->outstanding--;
  pthread_cond_broadcast(&o->cv);
  pthread_mutex_unlock(&o->mu);
  free(r->out);
  free(u->key);
  free(u->data);
  free(u);
}

/* Queues the upload of `data` (taken over) as `key`, waiting while
 * `inflight` uploads are running. */
static int upload_async(vv_objio *o, const char *key, unsigned char *data, size_t len) {
  upload *u = (upload *)calloc(1, sizeof *u);
  char *k = strdup(key);
  if (!u || !k) {
    free(u);
    free(k);
    free(data);
    return -ENOMEM;
  }
  u->o = o;
  u->key = k;
  u->data = data;
  u->r.op = VV_SOP_PUT;
  u->r.key = k;
  u->r.data = data;
  u->r.n = len;
  u->r.rc = -EIO;
  u->r.complete = complete_upload;
  u->r.owner = u;
  pthread_mutex_lock(&o->mu);
  while (o->outstanding >= o->inflight) pthread_cond_wait(&o->cv, &o->mu);
  o->outstanding++;
  o->stats.puts++;
  o->stats.put_bytes += len;
  pthread_mutex_unlock(&o->mu);
  o->ops->submit(o->ops->ctx, &u->r);
  return 0;
}

/* Waits for every queued upload: 0, or the first failure's status. */
static int barrier(vv_objio *o) {
  pthread_mutex_lock(&o->mu);
  while (o->outstanding) pthread_cond_wait(&o->cv, &o->mu);
  int rc = o->upload_rc;
  if (rc) vv_io_set_detail(o->upload_msg);
  pthread_mutex_unlock(&o->mu);
  return rc;
}

/* ---- paths and handles ----------------------------------------------------- */

/* The key of `path` under the root ("" for the root itself), or NULL. */
static const char *key_of(vv_objio *o, const char *path) {
  if (strncmp(path, o->root, o->root_len) != 0) return NULL;
  if (path[o->root_len] == 0) return "";
  if (path[o->root_len] != '/') return NULL;
  return path + o->root_len + 1;
}

static int is_manifest(const char *key) { return !strcmp(key, "manifest.json"); }

static int add_handle(vv_objio *o, int kind, const char *key) {
  handle *h = (handle *)calloc(1, sizeof *h);
  char *k = strdup(key);
  if (!h || !k) {
    free(h);
    free(k);
    return -ENOMEM;
  }
  h->kind = kind;
  h->key = k;
  pthread_mutex_lock(&o->mu);
  size_t i = 0;
  while (i < o->nfds && o->fds[i]) i++;
  if (i == o->nfds) {
    size_t n = o->nfds ? o->nfds * 2 : 16;
    handle **p = (handle **)realloc(o->fds, n * sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&o->mu);
      free(k);
      free(h);
      return -ENOMEM;
    }
    memset(p + o->nfds, 0, (n - o->nfds) * sizeof *p);
    o->fds = p;
    o->nfds = n;
  }
  o->fds[i] = h;
  pthread_mutex_unlock(&o->mu);
  return (int)i + FD_BASE;
}

/* The handle of `fd` (used by one thread at a time, as a descriptor is). */
static handle *get_handle(vv_objio *o, int fd) {
  pthread_mutex_lock(&o->mu);
  size_t i = (size_t)(fd - FD_BASE);
  handle *h = fd >= FD_BASE && i < o->nfds ? o->fds[i] : NULL;
  pthread_mutex_unlock(&o->mu);
  return h;
}

static handle *take_handle(vv_objio *o, int fd) {
  pthread_mutex_lock(&o->mu);
  size_t i = (size_t)(fd - FD_BASE);
  handle *h = fd >= FD_BASE && i < o->nfds ? o->fds[i] : NULL;
  if (h) o->fds[i] = NULL;
  pthread_mutex_unlock(&o->mu);
  return h;
}

static void handle_free(handle *h) {
  if (!h) return;
  free(h->key);
  free(h->data);
  free(h);
}

/* Fetches the whole object behind a read handle, once. */
static int fetch(vv_objio *o, handle *h) {
  if (h->fetched) return 0;
  vv_store_req r = {0};
  r.key = h->key;
  r.off = 0;
  r.len = VV_SOP_WHOLE;
  r.op = is_manifest(h->key) ? VV_SOP_GET_MANIFEST : VV_SOP_GET;
  int rc = run(o, &r);
  pthread_mutex_lock(&o->mu);
  o->stats.gets++;
  o->stats.get_bytes += rc == 0 ? r.out_len : 0;
  if (r.op == VV_SOP_GET_MANIFEST && (rc == 0 || rc == -ENOENT)) {
    /* What the next commit must find still there. */
    o->man_state = rc == 0 ? MAN_KNOWN : MAN_ABSENT;
    snprintf(o->man_version, sizeof o->man_version, "%s", rc == 0 ? r.version : "");
  }
  pthread_mutex_unlock(&o->mu);
  if (rc) {
    free(r.out);
    return rc;
  }
  h->data = r.out;
  h->len = r.out_len;
  h->fetched = 1;
  return 0;
}

/* ---- the file table -------------------------------------------------------- */

static int ob_open(void *ctx, const char *path, int flags, int mode) {
  (void)mode;
  vv_objio *o = (vv_objio *)ctx;
  const char *key = key_of(o, path);
  if (!key) return -EINVAL;
  if (flags & O_DIRECTORY) return add_handle(o, H_DIR, key);
  if (!strcmp(key, "lock")) return add_handle(o, H_LOCK, key);
  if (flags & O_CREAT) return add_handle(o, H_WRITE, key);
  if (!key[0]) return -EISDIR;
  return add_handle(o, H_READ, key);
}

static ssize_t ob_read(void *ctx, int fd, void *buf, size_t n) {
  vv_objio *o = (vv_objio *)ctx;
  handle *h = get_handle(o, fd);
  if (!h || h->kind != H_READ) return -EBADF;
  int rc = fetch(o, h);
  if (rc) return rc;
  size_t left = h->len - h->pos, k = n < left ? n : left;
  if (k) memcpy(buf, h->data + h->pos, k);
  h->pos += k;
  return (ssize_t)k;
}

static ssize_t ob_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off) {
  vv_objio *o = (vv_objio *)ctx;
  handle *h = get_handle(o, fd);
  if (!h || h->kind != H_READ) return -EBADF;
  if (h->fetched) {
    if (off >= h->len) return 0;
    size_t left = h->len - (size_t)off, k = n < left ? n : left;
    memcpy(buf, h->data + off, k);
    return (ssize_t)k;
  }
  if (n == 0) return 0;
  vv_store_req r = {0};
  r.op = VV_SOP_GET;
  r.key = h->key;
  r.off = off;
  r.len = n;
  int rc = run(o, &r);
  if (rc == 0 && r.out_len > n) rc = -EIO; /* more than was asked: a broken store */
  pthread_mutex_lock(&o->mu);
  o->stats.gets++;
  o->stats.get_bytes += rc == 0 ? r.out_len : 0;
  pthread_mutex_unlock(&o->mu);
  if (rc == 0 && r.out_len) memcpy(buf, r.out, r.out_len);
  free(r.out);
  return rc ? rc : (ssize_t)r.out_len;
}

static ssize_t ob_write(void *ctx, int fd, const void *buf, size_t n) {
  vv_objio *o = (vv_objio *)ctx;
  handle *h = get_handle(o, fd);
  if (!h || h->kind != H_WRITE) return -EBADF;
  if (h->len + n > h->cap) {
    size_t cap = h->cap ? h->cap : 4096;
    while (cap < h->len + n) cap *= 2;
    unsigned char *p = (unsigned char *)realloc(h->data, cap);
    if (!p) return -ENOMEM;
    h->data = p;
    h->cap = cap;
  }
  memcpy(h->data + h->len, buf, n);
  h->len += n;
  return (ssize_t)n;
}

static int ob_fsync(void *ctx, int fd) {
  vv_objio *o = (vv_objio *)ctx;
  handle *h = get_handle(o, fd);
  if (!h) return -EBADF;
  return h->kind == H_DIR ? barrier(o) : 0;
}

static int ob_close(void *ctx, int fd) {
  vv_objio *o = (vv_objio *)ctx;
  handle *h = take_handle(o, fd);
  if (!h) return -EBADF;
  if (h->kind != H_WRITE) {
    handle_free(h);
    return 0;
  }
  /* A written temporary file waits for its rename. */
  staged *s = (staged *)malloc(sizeof *s);
  if (!s) {
    handle_free(h);
    return -ENOMEM;
  }
  s->key = h->key;
  s->data = h->data;
  s->len = h->len;
  free(h);
  pthread_mutex_lock(&o->mu);
  s->next = o->staged;
  o->staged = s;
  pthread_mutex_unlock(&o->mu);
  return 0;
}

static int ob_fsize(void *ctx, int fd, uint64_t *size) {
  vv_objio *o = (vv_objio *)ctx;
  handle *h = get_handle(o, fd);
  if (!h) return -EBADF;
  if (h->kind != H_READ) return -ENODEV;
  int rc = fetch(o, h);
  if (rc) return rc;
  *size = h->len;
  return 0;
}

static staged *unstage(vv_objio *o, const char *key) {
  pthread_mutex_lock(&o->mu);
  staged **pp = &o->staged;
  while (*pp && strcmp((*pp)->key, key)) pp = &(*pp)->next;
  staged *s = *pp;
  if (s) *pp = s->next;
  pthread_mutex_unlock(&o->mu);
  return s;
}

static int put_manifest(vv_objio *o, const unsigned char *data, size_t len) {
  pthread_mutex_lock(&o->mu);
  int state = o->man_state;
  char expected[VV_SOP_VERSION_MAX];
  snprintf(expected, sizeof expected, "%s", o->man_version);
  pthread_mutex_unlock(&o->mu);
  if (state == MAN_UNKNOWN) return -EINVAL; /* a commit must follow a read of the manifest */
  vv_store_req r = {0};
  r.op = VV_SOP_PUT_MANIFEST;
  r.key = "manifest.json";
  r.data = data;
  r.n = len;
  r.expected = state == MAN_KNOWN ? expected : "";
  int rc = run(o, &r);
  free(r.out);
  pthread_mutex_lock(&o->mu);
  o->stats.puts++;
  o->stats.put_bytes += len;
  if (rc == 0) {
    o->man_state = MAN_KNOWN;
    snprintf(o->man_version, sizeof o->man_version, "%s", r.version);
  }
  pthread_mutex_unlock(&o->mu);
  return rc;
}

static int ob_rename(void *ctx, const char *from, const char *to) {
  vv_objio *o = (vv_objio *)ctx;
  const char *fk = key_of(o, from), *tk = key_of(o, to);
  if (!fk || !tk || !tk[0]) return -EINVAL;
  staged *s = unstage(o, fk);
  if (!s) return -ENOENT;
  int rc;
  if (is_manifest(tk)) {
    rc = put_manifest(o, s->data, s->len);
    free(s->data);
  } else if (!strncmp(tk, "objects/", 8)) {
    rc = upload_async(o, tk, s->data, s->len); /* takes the data */
  } else {
    vv_store_req r = {0};
    r.op = VV_SOP_PUT;
    r.key = tk;
    r.data = s->data;
    r.n = s->len;
    rc = run(o, &r);
    free(r.out);
    pthread_mutex_lock(&o->mu);
    o->stats.puts++;
    o->stats.put_bytes += s->len;
    pthread_mutex_unlock(&o->mu);
    free(s->data);
  }
  free(s->key);
  free(s);
  return rc;
}

static int ob_unlink(void *ctx, const char *path) {
  vv_objio *o = (vv_objio *)ctx;
  const char *key = key_of(o, path);
  if (!key || !key[0] || is_manifest(key)) return -EINVAL;
  staged *s = unstage(o, key);
  if (s) {
    free(s->data);
    free(s->key);
    free(s);
    return 0;
  }
  vv_store_req r = {0};
  r.op = VV_SOP_DELETE;
  r.key = key;
  int rc = run(o, &r);
  free(r.out);
  pthread_mutex_lock(&o->mu);
  o->stats.deletes++;
  pthread_mutex_unlock(&o->mu);
  return rc;
}

static int ob_mkdir(void *ctx, const char *path, int mode) {
  (void)mode;
  return key_of((vv_objio *)ctx, path) ? 0 : -EINVAL;
}

static int ob_lock(void *ctx, int fd) {
  handle *h = get_handle((vv_objio *)ctx, fd);
  return h && h->kind == H_LOCK ? 0 : -EBADF;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Calls fn for each direct child of `key` (a directory) in the listing. */
static int ob_list(void *ctx, const char *path, int (*fn)(void *, const char *), void *arg) {
  vv_objio *o = (vv_objio *)ctx;
  const char *key = key_of(o, path);
  if (!key) return -EINVAL;
  size_t klen = strlen(key);
  char *prefix = (char *)malloc(klen + 2);
  if (!prefix) return -ENOMEM;
  snprintf(prefix, klen + 2, "%s%s", key, klen ? "/" : "");
  size_t plen = strlen(prefix);
  vv_store_req r = {0};
  r.op = VV_SOP_LIST;
  r.key = prefix;
  int rc = run(o, &r);
  pthread_mutex_lock(&o->mu);
  o->stats.lists++;
  pthread_mutex_unlock(&o->mu);
  int objects = !strcmp(prefix, "objects/");
  int64_t now = now_ms();
  /* Subdirectories show once each, as a directory listing would. */
  char **dirs = NULL;
  size_t ndirs = 0;
  const unsigned char *p = r.out, *end = r.out ? r.out + r.out_len : NULL;
  while (rc == 0 && p && p < end) {
    const char *name = (const char *)p;
    const unsigned char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) break;
    const char *mt = (const char *)z + 1;
    const unsigned char *z2 = (const unsigned char *)mt < end ? memchr(mt, 0, (size_t)(end - (const unsigned char *)mt)) : NULL;
    if (!z2) break;
    p = z2 + 1;
    if (strncmp(name, prefix, plen) != 0 || !name[plen]) continue;
    const char *rel = name + plen;
    const char *slash = strchr(rel, '/');
    if (slash) {
      size_t dl = (size_t)(slash - rel);
      int seen = 0;
      for (size_t i = 0; i < ndirs && !seen; i++) seen = strlen(dirs[i]) == dl && !strncmp(dirs[i], rel, dl);
      if (seen) continue;
      char **nd = (char **)realloc(dirs, (ndirs + 1) * sizeof *nd);
      char *d = strndup(rel, dl);
      if (!nd || !d) {
        if (nd) dirs = nd;
        free(d);
        rc = -ENOMEM;
        break;
      }
      dirs = nd;
      dirs[ndirs++] = d;
      rc = fn(arg, d);
      continue;
    }
    /* An unreferenced object this young may be a concurrent writer's. */
    if (objects && o->grace_ms > 0 && mt[0] != '-' && now - strtoll(mt, NULL, 10) < o->grace_ms) continue;
    rc = fn(arg, rel);
  }
  for (size_t i = 0; i < ndirs; i++) free(dirs[i]);
  free(dirs);
  free(r.out);
  free(prefix);
  return rc;
}

/* ---- life cycle ------------------------------------------------------------ */

int vv_objio_create(const vv_store_ops *ops, const char *root, unsigned inflight, int64_t gc_grace_ms,
                    vv_objio **out) {
  *out = NULL;
  if (!ops || !ops->submit || !root) return VV_E_INVALID;
  vv_objio *o = (vv_objio *)calloc(1, sizeof *o);
  if (!o) return VV_E_NOMEM;
  o->root = strdup(root);
  if (!o->root) {
    free(o);
    return VV_E_NOMEM;
  }
  o->root_len = strlen(root);
  while (o->root_len > 1 && o->root[o->root_len - 1] == '/') o->root[--o->root_len] = 0;
  o->ops = ops;
  o->inflight = inflight ? inflight : 8;
  o->grace_ms = gc_grace_ms;
  pthread_mutex_init(&o->mu, NULL);
  pthread_cond_init(&o->cv, NULL);
  o->io = (vv_io){o,        ob_open,   ob_read,   ob_write, ob_fsync, ob_close,
                  ob_fsize, ob_rename, ob_unlink, ob_mkdir, ob_lock,  ob_list,
                  ob_pread, VV_IO_OBJECT_STORE};
  *out = o;
  return VV_OK;
}

const vv_io *vv_objio_io(vv_objio *o) { return &o->io; }

const char *vv_objio_root(const vv_objio *o) { return o->root; }

void vv_objio_get_stats(vv_objio *o, vv_objio_stats *out) {
  pthread_mutex_lock(&o->mu);
  *out = o->stats;
  pthread_mutex_unlock(&o->mu);
}

void vv_objio_free(vv_objio *o) {
  if (!o) return;
  pthread_mutex_lock(&o->mu);
  while (o->outstanding) pthread_cond_wait(&o->cv, &o->mu);
  pthread_mutex_unlock(&o->mu);
  for (size_t i = 0; i < o->nfds; i++) handle_free(o->fds[i]);
  free(o->fds);
  while (o->staged) {
    staged *s = o->staged;
    o->staged = s->next;
    free(s->key);
    free(s->data);
    free(s);
  }
  pthread_cond_destroy(&o->cv);
  pthread_mutex_destroy(&o->mu);
  free(o->root);
  free(o);
}
