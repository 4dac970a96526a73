/*
 * session/objio.h: a session on an object store (S3, a JavaScript Storage,
 * memory), seen by the rest of session/ as the file table of io.h.
 *
 * A session directory and a session on an object store have the same
 * layout (docs/FORMAT.md section 1): keys "manifest.json", "objects/<hex>",
 * "manifests/<generation>.json". The writer, reader, lazy reader and
 * garbage collection keep working on paths under a root; vv_objio turns
 * their file operations into object requests:
 *
 *   open for reading        nothing yet; the first read fetches
 *   read / fsize            the whole object, once (manifest.json: with its version)
 *   pread                   a ranged read ("bytes=off-(off+n-1)")
 *   open tmp, write, close  a buffer in memory
 *   rename tmp -> objects/  an upload, queued: at most `inflight` run at once
 *   fsync of a directory    waits for every queued upload; the first failure
 *   rename -> manifest.json a compare-and-swap on the version last read
 *                           (none read: "only if there is none")
 *   rename -> manifests/    an upload, waited for
 *   unlink, list            delete, list (objects younger than the grace
 *                           period are left out of listings of objects/, so
 *                           garbage collection never takes a concurrent
 *                           writer's uploads before it commits)
 *   mkdir, lock             nothing: commits are excluded by the compare-and-swap
 *
 * The store is a table with one entry point, submit(): it takes a request
 * and completes it once, from any thread, at once or later. Several
 * threads submit at the same time.
 */
#ifndef VV_OBJIO_H
#define VV_OBJIO_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"
#include "io.h"

enum {
  VV_SOP_GET = 1,          /* key, off, len (VV_SOP_WHOLE: all) -> out */
  VV_SOP_PUT = 2,          /* key, data, n */
  VV_SOP_DELETE = 3,       /* key; a missing object is not an error */
  VV_SOP_LIST = 4,         /* key = prefix -> out: records "<name>\0<mtime ms or ->\0" */
  VV_SOP_GET_MANIFEST = 5, /* -> out, version */
  VV_SOP_PUT_MANIFEST = 6, /* data, n, expected ("" = only if there is none) -> version */
};
#define VV_SOP_WHOLE UINT64_MAX
#define VV_SOP_VERSION_MAX 256

typedef struct vv_store_req vv_store_req;
struct vv_store_req {
  /* In: set by objio. */
  int op;
  const char *key;
  uint64_t off, len;
  const unsigned char *data;
  size_t n;
  const char *expected;
  /* Out: set by the store before complete(). rc is 0 or a negative errno
   * (-ENOENT: no such object; -VV_EIO_*, -ECANCELED, -EIO); `out` is
   * malloc'd (objio frees it). */
  int rc;
  unsigned char *out;
  size_t out_len;
  char version[VV_SOP_VERSION_MAX];
  char msg[256]; /* the store's words for a failure */
  /* Objio's. */
  void (*complete)(vv_store_req *r);
  void *owner;
};

typedef struct vv_store_ops {
  void *ctx;
  void (*submit)(void *ctx, vv_store_req *r);
} vv_store_ops;

typedef struct vv_objio vv_objio;

/* An I/O table over `ops` (borrowed; it must outlive the objio) for the
 * paths under `root` (a label such as "s3://bucket/prefix", used in
 * messages; a session's "directory"). At most `inflight` uploads run at
 * once (0: 8). Unreferenced objects younger than `gc_grace_ms` are not
 * listed (0: all are). */
VV_NODISCARD int vv_objio_create(const vv_store_ops *ops, const char *root, unsigned inflight, int64_t gc_grace_ms,
                                 vv_objio **out);
const vv_io *vv_objio_io(vv_objio *o);
/* The root, without trailing slashes: the session's "directory". */
const char *vv_objio_root(const vv_objio *o);
/* Waits for queued uploads, then frees. NULL is a no-op. */
void vv_objio_free(vv_objio *o);

typedef struct vv_objio_stats {
  uint64_t gets, get_bytes, puts, put_bytes, deletes, lists;
} vv_objio_stats;
void vv_objio_get_stats(vv_objio *o, vv_objio_stats *out);

#endif
