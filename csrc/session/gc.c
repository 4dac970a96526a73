/*
 * session/gc.c: the directory check before a save, and the garbage
 * collection after its commit (see gc.h).
 *
 * Both work only through the vv_io table, so fault injection reaches them,
 * and both go by the format's exact name patterns: a file vecvault did not
 * name is never a reason to accept a directory's contents as ours, and
 * never deleted.
 */
#include "gc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_HEAD "{\"sum\":\"" /* how every manifest file begins */

/* ---- name patterns --------------------------------------------------------- */

static int lower_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

int vv_is_object_name(const char *name) {
  return strlen(name) == 2 * VV_HASH_BYTES && lower_hex(name, 2 * VV_HASH_BYTES);
}

int vv_is_manifest_name(const char *name) {
  if (strlen(name) != 25 || strcmp(name + 20, ".json") != 0) return 0;
  for (int i = 0; i < 20; i++)
    if (name[i] < '0' || name[i] > '9') return 0;
  return 1;
}

int vv_is_temp_name(const char *name) {
  return strlen(name) == 4 + VV_IO_TEMP_HEX && !strncmp(name, "tmp-", 4) && lower_hex(name + 4, VV_IO_TEMP_HEX);
}

/* ---- name lists ------------------------------------------------------------ */

typedef struct name_list {
  char **names;
  size_t n, cap;
} name_list;

static int collect_name(void *arg, const char *name) {
  name_list *l = arg;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **p = realloc(l->names, cap * sizeof *p);
    if (!p) return -ENOMEM;
    l->names = p;
    l->cap = cap;
  }
  l->names[l->n] = strdup(name);
  if (!l->names[l->n]) return -ENOMEM;
  l->n++;
  return 0;
}

static void names_free(name_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->names[i]);
  free(l->names);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void sort_names(name_list *l) {
  if (l->n) qsort(l->names, l->n, sizeof *l->names, cmp_str);
}

uint64_t vv_session_newest_history(const vv_io *io, const char *mandir) {
  name_list mans = {0};
  uint64_t gen = 0;
  if (io->list(io->ctx, mandir, collect_name, &mans) == 0)
    for (size_t i = 0; i < mans.n; i++)
      if (vv_is_manifest_name(mans.names[i])) {
        uint64_t g = strtoull(mans.names[i], NULL, 10);
        if (g > gen) gen = g;
      }
  names_free(&mans);
  return gen;
}

/* ---- the directory check ------------------------------------------------- */

enum { PROBE_OTHER = 0, PROBE_REGULAR = 1 };

/* Is `path` a regular file (not a symlink)? Opens without blocking, so a
 * FIFO costs nothing. Reads up to `n` bytes of it into head (*got). Returns
 * PROBE_REGULAR, PROBE_OTHER, or a negative status when it cannot tell. */
static int probe_file(const vv_io *io, const char *path, char *head, size_t n, size_t *got) {
  *got = 0;
  int fd = io->open(io->ctx, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW, 0);
  if (fd < 0) return vv_io_not_regular(fd) ? PROBE_OTHER : vv_io_status(fd);
  uint64_t size = 0;
  int rc = io->fsize(io->ctx, fd, &size);
  if (rc < 0) rc = vv_io_not_regular(rc) ? PROBE_OTHER : vv_io_status(rc);
  else rc = PROBE_REGULAR;
  while (rc == PROBE_REGULAR && *got < n) {
    ssize_t r = io->read(io->ctx, fd, head + *got, n - *got);
    if (r < 0) rc = vv_io_status((int)r);
    else if (r == 0) break;
    else *got += (size_t)r;
  }
  io->close(io->ctx, fd); /* read-only: nothing to lose */
  return rc;
}

/* Is `path` a real directory (not a symlink to one)? */
static int probe_dir(const vv_io *io, const char *path) {
  int fd = io->open(io->ctx, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
  if (fd < 0) return fd == -ENOTDIR || fd == -ELOOP ? PROBE_OTHER : vv_io_status(fd);
  io->close(io->ctx, fd);
  return PROBE_REGULAR;
}

/* What a listing of a directory found: the first name not of the format. */
typedef struct scan {
  int (*allowed)(const char *name);
  int has_manifest, has_lock, has_objects, has_manifests;
  char foreign[256];
} scan;

static int scan_name(void *arg, const char *name) {
  scan *sc = arg;
  if (sc->allowed(name)) {
    sc->has_manifest |= !strcmp(name, "manifest.json");
    sc->has_lock |= !strcmp(name, "lock");
    sc->has_objects |= !strcmp(name, "objects");
    sc->has_manifests |= !strcmp(name, "manifests");
    return 0;
  }
  if (!sc->foreign[0]) snprintf(sc->foreign, sizeof sc->foreign, "%s", name);
  return 0;
}

static int root_name(const char *n) {
  /* "lease": a writer's lease on an object store without conditional writes. */
  return !strcmp(n, "manifest.json") || !strcmp(n, "lock") || !strcmp(n, "lease") || !strcmp(n, "objects") || !strcmp(n, "manifests") ||
         vv_is_temp_name(n);
}

static int objects_name(const char *n) { return vv_is_object_name(n) || vv_is_temp_name(n); }

static int manifests_name(const char *n) { return vv_is_manifest_name(n) || vv_is_temp_name(n); }

/* "<dir> is not empty ... (<what>"<name>"<tail>)". */
static int refuse(vv_error *err, const char *dir, const char *what, const char *name, const char *tail) {
  if (err)
    snprintf(err->message, sizeof err->message,
             "%.120s is not empty and holds no vecvault session (%s\"%.80s\"%s); refusing to save into it", dir, what,
             name, tail);
  return VV_E_NOT_A_SESSION;
}

static int list_failed(const vv_io *io, vv_error *err, const char *dir, int rc) {
  int st = vv_io_status(rc);
  if (err)
    snprintf(err->message, sizeof err->message, "%s %.200s: %s",
             io->flags & VV_IO_OBJECT_STORE ? "listing" : "reading the directory", dir, vv_io_last_error());
  return st;
}

/* A subdirectory that must be a real directory holding only format names. */
static int check_subdir(const vv_io *io, const char *dir, const char *sub, int (*allowed)(const char *),
                        vv_error *err) {
  char *path = vv_path_join(dir, sub);
  if (!path) return VV_E_NOMEM;
  int rc = probe_dir(io, path);
  if (rc == PROBE_OTHER) {
    rc = refuse(err, dir, "", sub, " is not a directory");
  } else if (rc == PROBE_REGULAR) {
    scan sc = {allowed, 0, 0, 0, 0, {0}};
    int lr = io->list(io->ctx, path, scan_name, &sc);
    if (lr < 0) {
      rc = list_failed(io, err, path, lr);
    } else if (sc.foreign[0]) {
      rc = refuse(err, dir, strcmp(sub, "objects") ? "found manifests/" : "found objects/", sc.foreign, "");
    } else {
      rc = VV_OK;
    }
  }
  free(path);
  return rc;
}

/* manifest.json, lock: must be regular files; manifest.json is ours when
 * it begins as every manifest does (*ours). */
static int check_file(const vv_io *io, const char *dir, const char *name, int *ours, vv_error *err) {
  char *path = vv_path_join(dir, name);
  if (!path) return VV_E_NOMEM;
  char head[sizeof MANIFEST_HEAD - 1];
  size_t got = 0;
  int rc = probe_file(io, path, head, ours ? sizeof head : 0, &got);
  free(path);
  if (rc == PROBE_OTHER) return refuse(err, dir, "", name, " is not a regular file");
  if (rc < 0) {
    if (err) snprintf(err->message, sizeof err->message, "reading %.200s/%s: %s", dir, name, vv_io_last_error());
    return rc;
  }
  if (ours) *ours = got == sizeof head && !memcmp(head, MANIFEST_HEAD, sizeof head);
  return VV_OK;
}

int vv_session_check_dir(const vv_io *io, const char *dir, vv_error *err) {
  scan sc = {root_name, 0, 0, 0, 0, {0}};
  int lr = io->list(io->ctx, dir, scan_name, &sc);
  if (lr == -ENOENT) return VV_OK; /* a new session; a missing parent fails later, as ERR_IO */
  if (lr == -ENOTDIR) {
    if (err) snprintf(err->message, sizeof err->message, "%.200s is not a directory", dir);
    return VV_E_IO;
  }
  if (lr < 0) return list_failed(io, err, dir, lr);
  int rc = VV_OK;
  if (sc.has_lock) rc = check_file(io, dir, "lock", NULL, err);
  /* (a) A manifest of the format: a session, whatever else lies beside it. */
  int ours = 0;
  if (!rc && sc.has_manifest) rc = check_file(io, dir, "manifest.json", &ours, err);
  if (rc || ours) return rc;
  /* (b) Empty, or only what a save writes before its first commit (it may
   * have been interrupted anywhere); a manifest.json that does not look
   * like one counts only next to the rest of a session. */
  if (sc.foreign[0]) return refuse(err, dir, "found ", sc.foreign, "");
  if (sc.has_manifest && !sc.has_lock && !sc.has_objects && !sc.has_manifests)
    return refuse(err, dir, "", "manifest.json", " is not a vecvault manifest");
  if (sc.has_objects) rc = check_subdir(io, dir, "objects", objects_name, err);
  if (!rc && sc.has_manifests) rc = check_subdir(io, dir, "manifests", manifests_name, err);
  return rc;
}

/* ---- garbage collection ---------------------------------------------------- */

static int add_refs(name_list *keep, const vv_manifest *m) {
  int rc = 0;
  for (size_t i = 0; i < m->nchunks && !rc; i++) rc = collect_name(keep, m->chunks[i].ref.name);
  for (size_t i = 0; i < m->nbase && !rc; i++) rc = collect_name(keep, m->base[i].ref.name);
  for (size_t i = 0; i < m->ndeltas && !rc; i++) rc = collect_name(keep, m->deltas[i].ref.name);
  return rc;
}

static void unlink_in(const vv_io *io, const char *dir, const char *name) {
  char *path = vv_path_join(dir, name);
  if (path) io->unlink(io->ctx, path);
  free(path);
}

/* Reads the history manifest `name` and adds what it references. */
static int keep_history(const vv_io *io, const char *mandir, const char *name, name_list *keep) {
  char *path = vv_path_join(mandir, name);
  unsigned char *file = NULL;
  size_t len = 0;
  vv_manifest old;
  const unsigned char *body;
  size_t blen;
  int ok = path && vv_io_read_file(io, path, VV_MANIFEST_MAX_BYTES, &file, &len) == VV_OK &&
           vv_manifest_parse(file, len, &old, &body, &blen, NULL) == VV_OK;
  if (ok) {
    ok = add_refs(keep, &old) == 0;
    vv_manifest_free(&old);
  }
  free(file);
  free(path);
  return ok;
}

void vv_session_gc(const vv_io *io, const char *dir, const char *objdir, const char *mandir,
                   const vv_manifest *current) {
  name_list mans = {0}, keep = {0}, objs = {0}, root = {0};
  int ok = io->list(io->ctx, mandir, collect_name, &mans) == 0 && add_refs(&keep, current) == 0;
  sort_names(&mans);
  size_t kept = 0;
  char **stale = NULL;
  size_t nstale = 0;
  if (ok) stale = calloc(mans.n ? mans.n : 1, sizeof *stale);
  ok = ok && stale;
  for (size_t i = mans.n; ok && i-- > 0;) {
    const char *name = mans.names[i];
    if (vv_is_temp_name(name) || (vv_is_manifest_name(name) && kept >= VV_KEEP_MANIFESTS)) {
      stale[nstale++] = mans.names[i];
    } else if (vv_is_manifest_name(name)) {
      ok = keep_history(io, mandir, name, &keep);
      kept++;
    }
  }
  ok = ok && io->list(io->ctx, objdir, collect_name, &objs) == 0;
  if (ok) {
    for (size_t i = 0; i < nstale; i++) unlink_in(io, mandir, stale[i]);
    sort_names(&keep);
    for (size_t i = 0; i < objs.n; i++) {
      const char *name = objs.names[i];
      if (vv_is_temp_name(name) ||
          (vv_is_object_name(name) && !(keep.n && bsearch(&objs.names[i], keep.names, keep.n, sizeof *keep.names, cmp_str))))
        unlink_in(io, objdir, name);
    }
    /* Temporary files of an interrupted manifest write, in the session root. */
    if (io->list(io->ctx, dir, collect_name, &root) == 0)
      for (size_t i = 0; i < root.n; i++)
        if (vv_is_temp_name(root.names[i])) unlink_in(io, dir, root.names[i]);
  }
  free(stale);
  names_free(&mans);
  names_free(&keep);
  names_free(&objs);
  names_free(&root);
}
