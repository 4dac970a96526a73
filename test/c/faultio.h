/*
 * test/c/faultio.h: a fault-injecting vv_io for the session tests,
 * header-only (every function is static: the Makefile links only csrc/ into
 * test binaries, not helper .c files next to the tests).
 *
 * Owns: a vv_io table that forwards to another one (normally vv_io_posix())
 * and counts every operation, and can
 *   - fail operation N with a chosen errno and let later ones succeed
 *     (fio.fail_at = N, fio.err = ENOSPC / EIO);
 *   - "crash" at operation N: N and every later operation of any kind fail
 *     with EIO, so nothing after N reaches the disk (fio.crash = 1);
 *   - count and fail only some kinds of operation (fio.kinds, FIO_BIT(...)),
 *     or only operations on some paths (fio.suffix, e.g. "/manifest.json");
 *   - write or read at most k bytes per call (fio.short_write / short_read).
 * It also keeps a trace (kind, path, result) of every operation, notes
 * whether the commit point (a successful rename onto .../manifest.json)
 * was passed before the injected failure, and by default skips the real
 * fsync (fio.real_fsync = 0): these tests simulate crashes logically, and
 * thousands of real fsyncs would dominate the run time.
 *
 * Failing operations have no effect, except close, which always releases
 * the descriptor (as close(2) does even when it reports an error); an
 * injected failure of list does not call the callback.
 *
 * Usage:
 *   fio f; fio_init(&f, NULL);           // wraps vv_io_posix()
 *   f.fail_at = 7; f.err = ENOSPC;
 *   vv_db_save(db, dir, fio_io(&f), ...);
 *   ... f.injected, f.failed_kind, f.failed_path, f.after_commit ...
 *   fio_reset(&f);                       // counters and trace, keeps settings
 *   fio_destroy(&f);
 * Thread-safe (one mutex), so parallel loads may go through it.
 */
#ifndef VV_TEST_FAULTIO_H
#define VV_TEST_FAULTIO_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/io.h"

enum {
  FIO_OPEN = 0,
  FIO_READ,
  FIO_WRITE,
  FIO_FSYNC,
  FIO_CLOSE,
  FIO_FSIZE,
  FIO_RENAME,
  FIO_UNLINK,
  FIO_MKDIR,
  FIO_LOCK,
  FIO_LIST,
  FIO_NKINDS
};
#define FIO_BIT(k) (1u << (k))
#define FIO_MAX_FD 4096
#define FIO_PATH 160

static inline const char *fio_kind_name(int kind) {
  static const char *const names[FIO_NKINDS] = {"open",   "read",   "write", "fsync", "close", "fsize",
                                                "rename", "unlink", "mkdir", "lock",  "list"};
  return kind >= 0 && kind < FIO_NKINDS ? names[kind] : "none";
}

typedef struct fio_op {
  int kind;
  int rc;               /* what the caller saw: >= 0 or -errno */
  int injected;
  char path[FIO_PATH];  /* the path, or the path the fd was opened with; "to" for rename */
} fio_op;

typedef struct fio {
  vv_io io; /* hand &f->io (fio_io) to the engine; io.ctx points back here */
  const vv_io *real;
  /* settings */
  unsigned kinds;     /* kinds that are counted and may fail; 0 = all */
  const char *suffix; /* only operations on paths ending so are counted; NULL = all */
  long fail_at;       /* 1-based counted operation to fail; 0 = none */
  int err;            /* positive errno for injected failures */
  int crash;          /* fail_at and everything after it fails (any kind), with EIO */
  size_t short_write; /* > 0: write at most this many bytes per call */
  size_t short_read;  /* > 0: read at most this many bytes per call */
  int real_fsync;     /* call the real fsync */
  /* results */
  long ops;           /* counted operations */
  long all_ops;       /* every operation */
  long injected;      /* failures injected */
  int crashed;
  int committed;      /* a rename onto .../manifest.json succeeded */
  int after_commit;   /* the first injected failure came after that */
  int failed_kind;    /* kind and path of the first injected failure */
  int failed_flags;   /* open flags of the first injected failure (of its fd for close) */
  char failed_path[FIO_PATH];
  fio_op *trace;
  size_t ntrace, trace_cap;
  char *fd_path[FIO_MAX_FD];
  int fd_flags[FIO_MAX_FD];
  pthread_mutex_t mu;
} fio;

static inline const vv_io *fio_io(fio *f) { return &f->io; }

static inline void fio_copy_path(char *dst, const char *src) {
  size_t n = src ? strlen(src) : 0;
  /* Keep the tail: the interesting part of a long temp path. */
  if (n >= FIO_PATH) src += n - (FIO_PATH - 1);
  snprintf(dst, FIO_PATH, "%s", src ? src : "");
}

static inline int fio_ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Decides the fate of one operation; returns 0 to go ahead or -errno. */
static inline int fio_gate(fio *f, int kind, const char *path, int open_flags) {
  f->all_ops++;
  int inject = 0;
  if (f->crashed) {
    inject = 1;
  } else if ((!f->kinds || (f->kinds & FIO_BIT(kind))) && (!f->suffix || fio_ends_with(path, f->suffix))) {
    long n = ++f->ops;
    if (f->fail_at && n == f->fail_at) {
      inject = 1;
      if (f->crash) f->crashed = 1;
    }
  }
  if (!inject) return 0;
  if (f->injected++ == 0) {
    f->after_commit = f->committed;
    f->failed_kind = kind;
    f->failed_flags = open_flags;
    fio_copy_path(f->failed_path, path);
  }
  return -(f->crash ? EIO : f->err);
}

static inline void fio_log(fio *f, int kind, const char *path, long rc, int injected) {
  if (f->ntrace == f->trace_cap) {
    size_t cap = f->trace_cap ? f->trace_cap * 2 : 256;
    fio_op *p = (fio_op *)realloc(f->trace, cap * sizeof *p);
    if (!p) return; /* the trace is diagnostics only */
    f->trace = p;
    f->trace_cap = cap;
  }
  fio_op *o = &f->trace[f->ntrace++];
  o->kind = kind;
  o->rc = (int)(rc < 0 ? rc : 0);
  o->injected = injected;
  fio_copy_path(o->path, path);
}

static inline const char *fio_fdpath(fio *f, int fd) {
  return fd >= 0 && fd < FIO_MAX_FD && f->fd_path[fd] ? f->fd_path[fd] : "?";
}

static inline int fio_fdflags(fio *f, int fd) { return fd >= 0 && fd < FIO_MAX_FD ? f->fd_flags[fd] : 0; }

static inline int fio_open(void *ctx, const char *path, int flags, int mode) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_OPEN, path, flags);
  int inj = rc < 0;
  if (!inj) {
    rc = f->real->open(f->real->ctx, path, flags, mode);
    if (rc >= 0 && rc < FIO_MAX_FD) {
      free(f->fd_path[rc]);
      f->fd_path[rc] = strdup(path);
      f->fd_flags[rc] = flags;
    }
  }
  fio_log(f, FIO_OPEN, path, rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

/* A read, positioned (off >= 0) or not: one gate, one log kind. */
static inline ssize_t fio_any_read(void *ctx, int fd, void *buf, size_t n, int64_t off) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  ssize_t rc = fio_gate(f, FIO_READ, fio_fdpath(f, fd), 0);
  int inj = rc < 0;
  if (!inj) {
    if (f->short_read && n > f->short_read) n = f->short_read;
    rc = off < 0 ? f->real->read(f->real->ctx, fd, buf, n) : f->real->pread(f->real->ctx, fd, buf, n, (uint64_t)off);
  }
  fio_log(f, FIO_READ, fio_fdpath(f, fd), (long)rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline ssize_t fio_read(void *ctx, int fd, void *buf, size_t n) { return fio_any_read(ctx, fd, buf, n, -1); }

static inline ssize_t fio_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off) {
  return fio_any_read(ctx, fd, buf, n, (int64_t)off);
}

static inline ssize_t fio_write(void *ctx, int fd, const void *buf, size_t n) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  ssize_t rc = fio_gate(f, FIO_WRITE, fio_fdpath(f, fd), 0);
  int inj = rc < 0;
  if (!inj) {
    if (f->short_write && n > f->short_write) n = f->short_write;
    rc = f->real->write(f->real->ctx, fd, buf, n);
  }
  fio_log(f, FIO_WRITE, fio_fdpath(f, fd), (long)rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline int fio_fsync(void *ctx, int fd) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_FSYNC, fio_fdpath(f, fd), 0);
  int inj = rc < 0;
  if (!inj && f->real_fsync) rc = f->real->fsync(f->real->ctx, fd);
  fio_log(f, FIO_FSYNC, fio_fdpath(f, fd), rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline int fio_close(void *ctx, int fd) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_CLOSE, fio_fdpath(f, fd), fio_fdflags(f, fd));
  int inj = rc < 0;
  int real = f->real->close(f->real->ctx, fd); /* always released, like close(2) */
  if (!inj) rc = real;
  fio_log(f, FIO_CLOSE, fio_fdpath(f, fd), rc, inj);
  if (fd >= 0 && fd < FIO_MAX_FD) {
    free(f->fd_path[fd]);
    f->fd_path[fd] = NULL;
  }
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline int fio_fsize(void *ctx, int fd, uint64_t *size) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_FSIZE, fio_fdpath(f, fd), 0);
  int inj = rc < 0;
  if (!inj) rc = f->real->fsize(f->real->ctx, fd, size);
  fio_log(f, FIO_FSIZE, fio_fdpath(f, fd), rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline int fio_rename(void *ctx, const char *from, const char *to) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_RENAME, to, 0);
  int inj = rc < 0;
  if (!inj) {
    rc = f->real->rename(f->real->ctx, from, to);
    if (rc == 0 && fio_ends_with(to, "/manifest.json")) f->committed = 1;
  }
  fio_log(f, FIO_RENAME, to, rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline int fio_unlink(void *ctx, const char *path) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_UNLINK, path, 0);
  int inj = rc < 0;
  if (!inj) rc = f->real->unlink(f->real->ctx, path);
  fio_log(f, FIO_UNLINK, path, rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline int fio_mkdir(void *ctx, const char *path, int mode) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_MKDIR, path, 0);
  int inj = rc < 0;
  if (!inj) rc = f->real->mkdir(f->real->ctx, path, mode);
  fio_log(f, FIO_MKDIR, path, rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline int fio_lock(void *ctx, int fd) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_LOCK, fio_fdpath(f, fd), 0);
  int inj = rc < 0;
  if (!inj) rc = f->real->lock(f->real->ctx, fd);
  fio_log(f, FIO_LOCK, fio_fdpath(f, fd), rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static inline int fio_list(void *ctx, const char *dir, int (*fn)(void *arg, const char *name), void *arg) {
  fio *f = (fio *)ctx;
  pthread_mutex_lock(&f->mu);
  int rc = fio_gate(f, FIO_LIST, dir, 0);
  int inj = rc < 0;
  pthread_mutex_unlock(&f->mu);
  /* The callback runs unlocked: it never re-enters the table, but keep the
   * mutex out of user code anyway. */
  if (!inj) rc = f->real->list(f->real->ctx, dir, fn, arg);
  pthread_mutex_lock(&f->mu);
  fio_log(f, FIO_LIST, dir, rc, inj);
  pthread_mutex_unlock(&f->mu);
  return rc;
}

/* Clears counters, trace and injection state; keeps the settings. */
/* Under the table's lock: a lazy database may be reading through it on
 * other threads while a test resets it. */
static inline void fio_reset(fio *f) {
  pthread_mutex_lock(&f->mu);
  f->ops = f->all_ops = f->injected = 0;
  f->crashed = f->committed = f->after_commit = 0;
  f->failed_kind = -1;
  f->failed_flags = 0;
  f->failed_path[0] = '\0';
  f->ntrace = 0;
  pthread_mutex_unlock(&f->mu);
}

/* A pass-through table over `real` (NULL = vv_io_posix()): nothing fails. */
static inline void fio_init(fio *f, const vv_io *real) {
  memset(f, 0, sizeof *f);
  f->real = real ? real : vv_io_posix();
  f->io.ctx = f;
  f->io.open = fio_open;
  f->io.read = fio_read;
  f->io.write = fio_write;
  f->io.fsync = fio_fsync;
  f->io.close = fio_close;
  f->io.fsize = fio_fsize;
  f->io.rename = fio_rename;
  f->io.unlink = fio_unlink;
  f->io.mkdir = fio_mkdir;
  f->io.lock = fio_lock;
  f->io.list = fio_list;
  f->io.pread = fio_pread;
  f->err = EIO;
  pthread_mutex_init(&f->mu, NULL);
  fio_reset(f);
}

static inline void fio_destroy(fio *f) {
  free(f->trace);
  f->trace = NULL;
  f->ntrace = f->trace_cap = 0;
  for (int i = 0; i < FIO_MAX_FD; i++) {
    free(f->fd_path[i]);
    f->fd_path[i] = NULL;
  }
  pthread_mutex_destroy(&f->mu);
}

/* The trace as lines "N kind path rc", for failure reports. */
static inline void fio_dump(const fio *f, FILE *out) {
  for (size_t i = 0; i < f->ntrace; i++) {
    const fio_op *o = &f->trace[i];
    fprintf(out, "  %4zu %-6s %s%s%s\n", i + 1, fio_kind_name(o->kind), o->path, o->rc < 0 ? "  -> error" : "",
            o->injected ? " (injected)" : "");
  }
}

#endif
