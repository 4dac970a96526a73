/*
 * session/io.h: the file operations a session uses, as a table of function
 * pointers, so tests can inject ENOSPC, EIO, short writes or a "crash"
 * at any operation without touching the real file system code paths.
 *
 * Every function returns >= 0 on success and -errno on failure. Paths are
 * NUL-terminated. vv_io_posix() is the real implementation.
 *
 * Reading never blocks on what is not a regular file: the helpers below
 * open with O_NONBLOCK | O_NOFOLLOW, and fsize fails with -ENODEV on
 * anything but a regular file (a FIFO, socket, device or directory), so a
 * FIFO named like a session file is an error, not a hang; a symbolic link
 * in place of a session file fails the open with -ELOOP.
 */
#ifndef VV_IO_H
#define VV_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/buf.h"

typedef struct vv_io {
  void *ctx;
  int (*open)(void *ctx, const char *path, int flags, int mode); /* returns an fd */
  ssize_t (*read)(void *ctx, int fd, void *buf, size_t n);
  ssize_t (*write)(void *ctx, int fd, const void *buf, size_t n);  /* may write fewer bytes */
  int (*fsync)(void *ctx, int fd);
  int (*close)(void *ctx, int fd);
  int (*fsize)(void *ctx, int fd, uint64_t *size); /* -ENODEV unless a regular file */
  int (*rename)(void *ctx, const char *from, const char *to);
  int (*unlink)(void *ctx, const char *path);
  int (*mkdir)(void *ctx, const char *path, int mode);
  int (*lock)(void *ctx, int fd);  /* exclusive, non-blocking; -EWOULDBLOCK if held */
  /* Calls fn(arg, name) for each entry of a directory except . and .. */
  int (*list)(void *ctx, const char *dir, int (*fn)(void *arg, const char *name), void *arg);
  /* Reads up to n bytes at offset `off` (fewer at the end of the file). */
  ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, uint64_t off);
  int flags; /* VV_IO_OBJECT_STORE, or 0 */
} vv_io;

/* The table is an object store seen as files (objio.h): nothing is durable
 * before the objects directory's fsync, the manifest's rename is a
 * compare-and-swap, there is no lock file, and an object's size is learnt
 * from reading it (vv_io_open_sized checks nothing; reads that end early
 * still fail). */
#define VV_IO_OBJECT_STORE 1

/* Error numbers an object store reports beyond errno's (as -n, like
 * errno's), and what vv_io_status maps them to. ECANCELED maps to
 * VV_E_ABORTED. */
#define VV_EIO_CONFLICT 4097 /* the manifest changed since it was read: VV_E_CONFLICT */
#define VV_EIO_ACCESS 4098   /* the store refused the credentials: VV_E_ACCESS */
#define VV_EIO_ASYNC 4099    /* the store runs on the thread that is waiting: VV_E_ASYNC_REQUIRED */

const vv_io *vv_io_posix(void);

/* Helpers on top of a table. All return VV_OK or a VV_E_* status mapped
 * from errno (ENOSPC and EDQUOT -> VV_E_NOSPC, ENOENT -> VV_E_NOT_FOUND,
 * else VV_E_IO). */
int vv_io_status(int neg_errno);
/* Did an open or fsize fail because the path is not a regular file (a
 * FIFO, socket, device, directory, or a symbolic link refused by
 * O_NOFOLLOW)? vv_io_status() maps these to VV_E_IO, and
 * vv_io_last_error() then says "not a regular file". */
int vv_io_not_regular(int neg_errno);
/* strerror() of the errno the calling thread last mapped with
 * vv_io_status, for error messages ("" if none), or the store's own words
 * when vv_io_set_detail gave them. */
const char *vv_io_last_error(void);
/* The words (copied, truncated) for the next error this thread maps with
 * vv_io_status, in place of strerror(): a store's "s3://b/p/objects/..: 503
 * SlowDown". NULL clears them. */
void vv_io_set_detail(const char *msg);
/* Writes all of buf, looping on short writes. */
/* Notes "<what>: <why>" in `err` (NULL: nowhere) unless it already holds a
 * message, the why being the system's words for an I/O failure; returns rc. */
int vv_error_note(vv_error *err, int rc, const char *what);

VV_NODISCARD int vv_io_write_all(const vv_io *io, int fd, const void *buf, size_t n);
/* Reads a whole regular file of at most `max` bytes into a malloc'd
 * buffer, never blocking and never following a final symbolic link.
 * VV_E_CORRUPT if it is larger than max; VV_E_IO if it is not a regular
 * file (vv_io_not_regular). */
VV_NODISCARD int vv_io_read_file(const vv_io *io, const char *path, size_t max, unsigned char **out, size_t *len);
/* The same into a reusable buffer (buf->len = bytes read). */
VV_NODISCARD int vv_io_read_file_buf(const vv_io *io, const char *path, size_t max, vv_buf *buf);
/* Reads exactly n bytes at `off` of `fd`, looping on short reads;
 * VV_E_CORRUPT if the file ends first. */
VV_NODISCARD int vv_io_pread_all(const vv_io *io, int fd, void *buf, size_t n, uint64_t off);
/* Opens a regular file for reading without blocking or following a final
 * symbolic link, and checks its size is exactly `size`: the fd (>= 0), or
 * a negative VV_E_* status (VV_E_NOT_FOUND, VV_E_IO, VV_E_CORRUPT for
 * another size). */
int vv_io_open_sized(const vv_io *io, const char *path, uint64_t size);
/* Temporary files are named "tmp-" + this many lowercase hex digits
 * (session/gc.c deletes exactly those). */
#define VV_IO_TEMP_HEX 16
/* Durably creates `path` with `data`: writes a temporary file in `dir`
 * (mode 0600, O_EXCL), fsyncs it, renames it over `path`. The directory
 * itself is not fsynced (callers batch that). On failure the temporary
 * file is removed and `path` is untouched. */
VV_NODISCARD int vv_io_write_durable(const vv_io *io, const char *dir, const char *path, const void *data, size_t n);
VV_NODISCARD int vv_io_fsync_dir(const vv_io *io, const char *dir);
/* "<a>/<b>" in a malloc'd string, or NULL. */
char *vv_path_join(const char *a, const char *b);

#endif
