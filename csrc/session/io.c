/*
 * session/io.c: POSIX file operations and the helpers built on them.
 */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../crypto/crypto.h"
#include "../vecvault.h"

static int px_open(void *ctx, const char *path, int flags, int mode) {
  (void)ctx;
  int fd;
  do fd = open(path, flags | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

static ssize_t px_read(void *ctx, int fd, void *buf, size_t n) {
  (void)ctx;
  ssize_t r;
  do r = read(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

static ssize_t px_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off) {
  (void)ctx;
  ssize_t r;
  do r = pread(fd, buf, n, (off_t)off);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

static ssize_t px_write(void *ctx, int fd, const void *buf, size_t n) {
  (void)ctx;
  ssize_t r;
  do r = write(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

static int px_fsync(void *ctx, int fd) {
  (void)ctx;
  /* Never retried on failure: after a failed fsync Linux may have dropped
   * the dirty pages, so a second success would be a lie. */
#if defined(F_FULLFSYNC)
  /* macOS: fsync() hands the data to the drive without flushing the
   * drive's cache; F_FULLFSYNC does. File systems that refuse it (some
   * network ones) get the plain fsync. */
  if (fcntl(fd, F_FULLFSYNC) == 0) return 0;
  if (errno != ENOTSUP && errno != ENOTTY && errno != EINVAL) return -errno;
#endif
  return fsync(fd) < 0 ? -errno : 0;
}

static int px_close(void *ctx, int fd) {
  (void)ctx;
  return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static int px_fsize(void *ctx, int fd, uint64_t *size) {
  (void)ctx;
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  if (!S_ISREG(st.st_mode)) return -ENODEV;
  *size = (uint64_t)st.st_size;
  return 0;
}

static int px_rename(void *ctx, const char *from, const char *to) {
  (void)ctx;
  return rename(from, to) < 0 ? -errno : 0;
}

static int px_unlink(void *ctx, const char *path) {
  (void)ctx;
  return unlink(path) < 0 ? -errno : 0;
}

static int px_mkdir(void *ctx, const char *path, int mode) {
  (void)ctx;
  return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int px_lock(void *ctx, int fd) {
  (void)ctx;
  return flock(fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
}

static int px_list(void *ctx, const char *dir, int (*fn)(void *, const char *), void *arg) {
  (void)ctx;
  DIR *d = opendir(dir);
  if (!d) return -errno;
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    rc = fn(arg, e->d_name);
  }
  closedir(d);
  return rc;
}

static const vv_io kPosix = {NULL,     px_open,   px_read,   px_write, px_fsync, px_close,
                             px_fsize, px_rename, px_unlink, px_mkdir, px_lock,  px_list,
                             px_pread, 0};

const vv_io *vv_io_posix(void) { return &kPosix; }

static _Thread_local int last_errno;
/* The store's words: `pending` for the next mapping, `detail` for the last. */
static _Thread_local char pending[256], detail[256];

void vv_io_set_detail(const char *msg) { snprintf(pending, sizeof pending, "%s", msg ? msg : ""); }

const char *vv_io_last_error(void) {
  if (detail[0]) return detail;
  if (vv_io_not_regular(-last_errno)) return "not a regular file (a FIFO, device, socket, directory or symbolic link)";
  switch (last_errno) {
    case VV_EIO_CONFLICT: return "the manifest was replaced by another writer";
    case VV_EIO_ACCESS: return "access denied by the storage";
    case VV_EIO_ASYNC: return "the storage is implemented in JavaScript and needs the thread that is waiting";
    default: return last_errno ? strerror(last_errno) : "";
  }
}

int vv_io_not_regular(int neg_errno) {
  int e = -neg_errno;
  return e == ENODEV || e == ELOOP || e == ENXIO || e == EISDIR;
}

int vv_io_status(int neg_errno) {
  int e = -neg_errno;
  last_errno = e;
  memcpy(detail, pending, sizeof detail);
  pending[0] = 0;
  if (e == ENOSPC || e == EDQUOT) return VV_E_NOSPC;
  if (e == ENOENT) return VV_E_NOT_FOUND;
  if (e == ENOMEM) return VV_E_NOMEM;
  if (e == ECANCELED) return VV_E_ABORTED;
  if (e == VV_EIO_CONFLICT) return VV_E_CONFLICT;
  if (e == VV_EIO_ACCESS) return VV_E_ACCESS;
  if (e == VV_EIO_ASYNC) return VV_E_ASYNC_REQUIRED;
  return VV_E_IO;
}

int vv_io_write_all(const vv_io *io, int fd, const void *buf, size_t n) {
  const unsigned char *p = (const unsigned char *)buf;
  while (n) {
    ssize_t w = io->write(io->ctx, fd, p, n);
    if (w < 0) return vv_io_status((int)w);
    if (w == 0) return VV_E_IO; /* no progress: treat like an error, never spin */
    p += w;
    n -= (size_t)w;
  }
  return VV_OK;
}

int vv_io_read_file_buf(const vv_io *io, const char *path, size_t max, vv_buf *buf) {
  buf->len = 0;
  /* Never blocks (a FIFO opens at once, then fails fsize) and never
   * follows a symbolic link in place of a session file. O_NONBLOCK
   * changes nothing for a regular file. */
  int fd = io->open(io->ctx, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW, 0);
  if (fd < 0) return vv_io_status(fd);
  uint64_t size = 0;
  int rc = io->fsize(io->ctx, fd, &size);
  if (rc < 0) rc = vv_io_status(rc);
  else if (size > max) rc = VV_E_CORRUPT;
  else rc = vv_buf_reserve(buf, size ? (size_t)size : 1);
  size_t got = 0;
  while (!rc && got < size) {
    ssize_t r = io->read(io->ctx, fd, buf->data + got, (size_t)size - got);
    if (r < 0) rc = vv_io_status((int)r);
    else if (r == 0) break; /* shrank under us: the caller's size checks catch it */
    else got += (size_t)r;
  }
  io->close(io->ctx, fd);
  buf->len = rc ? 0 : got;
  return rc;
}

int vv_io_pread_all(const vv_io *io, int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = io->pread(io->ctx, fd, (unsigned char *)buf + got, n - got, off + got);
    if (r < 0) return vv_io_status((int)r);
    if (r == 0) return VV_E_CORRUPT; /* the file ended early */
    got += (size_t)r;
  }
  return VV_OK;
}

int vv_io_open_sized(const vv_io *io, const char *path, uint64_t size) {
  int fd = io->open(io->ctx, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW, 0);
  if (fd < 0) return vv_io_status(fd);
  if (io->flags & VV_IO_OBJECT_STORE) return fd; /* a ranged read learns the size; see io.h */
  uint64_t have = 0;
  int rc = io->fsize(io->ctx, fd, &have);
  rc = rc < 0 ? vv_io_status(rc) : have != size ? VV_E_CORRUPT : VV_OK;
  if (rc) {
    io->close(io->ctx, fd);
    return rc;
  }
  return fd;
}

int vv_io_read_file(const vv_io *io, const char *path, size_t max, unsigned char **out, size_t *len) {
  vv_buf b = {0};
  int rc = vv_io_read_file_buf(io, path, max, &b);
  if (rc) {
    vv_buf_free(&b);
    *out = NULL;
    *len = 0;
    return rc;
  }
  *out = b.data;
  *len = b.len;
  return VV_OK;
}

int vv_io_fsync_dir(const vv_io *io, const char *dir) {
  int fd = io->open(io->ctx, dir, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return vv_io_status(fd);
  int rc = io->fsync(io->ctx, fd);
  io->close(io->ctx, fd);
  return rc < 0 ? vv_io_status(rc) : VV_OK;
}

int vv_io_write_durable(const vv_io *io, const char *dir, const char *path, const void *data, size_t n) {
  unsigned char rnd[VV_IO_TEMP_HEX / 2];
  char hex[VV_IO_TEMP_HEX + 1];
  vv_random_bytes(rnd, sizeof rnd);
  vv_hex_encode(rnd, sizeof rnd, hex);
  size_t tlen = strlen(dir) + 32;
  char *tmp = (char *)malloc(tlen);
  if (!tmp) return VV_E_NOMEM;
  snprintf(tmp, tlen, "%s/tmp-%s", dir, hex);
  int fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    free(tmp);
    return vv_io_status(fd);
  }
  int rc = vv_io_write_all(io, fd, data, n);
  if (!rc) {
    int s = io->fsync(io->ctx, fd);
    if (s < 0) rc = vv_io_status(s);
  }
  int c = io->close(io->ctx, fd);
  if (!rc && c < 0) rc = vv_io_status(c);
  if (!rc) {
    int s = io->rename(io->ctx, tmp, path);
    if (s < 0) rc = vv_io_status(s);
  }
  if (rc) io->unlink(io->ctx, tmp);
  free(tmp);
  return rc;
}

char *vv_path_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = (char *)malloc(n);
  if (p) snprintf(p, n, "%s/%s", a, b);
  return p;
}

int vv_error_note(vv_error *err, int rc, const char *what) {
  if (err && !err->message[0]) {
    int sys = rc == VV_E_IO || rc == VV_E_NOSPC || rc == VV_E_CONFLICT || rc == VV_E_ACCESS || rc == VV_E_ASYNC_REQUIRED;
    snprintf(err->message, sizeof err->message, "%s: %s", what,
             sys && *vv_io_last_error() ? vv_io_last_error() : vv_strerror(rc));
  }
  return rc;
}
