/*
 * session/writer.c: writing one generation of a session directory (see writer.h).
 */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../codec/index3.h"
#include "gc.h"

static int fail(vv_swriter *w, int rc, const char *what) { return vv_error_note(w->err, rc, what); }

static int ensure_dir(const vv_io *io, const char *path) {
  int rc = io->mkdir(io->ctx, path, 0700);
  if (rc < 0 && rc != -EEXIST) return vv_io_status(rc);
  return VV_OK;
}

static int take_lock(vv_swriter *w, const char *dir) {
  const vv_io *io = w->sc.io;
  char *lock_path = vv_path_join(dir, "lock");
  if (!lock_path) return VV_E_NOMEM;
  w->lock_fd = io->open(io->ctx, lock_path, O_RDWR | O_CREAT, 0600);
  free(lock_path);
  if (w->lock_fd < 0) {
    int rc = fail(w, vv_io_status(w->lock_fd), "opening the session lock");
    w->lock_fd = -1;
    return rc;
  }
  int lr = io->lock(io->ctx, w->lock_fd);
  if (lr >= 0) return VV_OK;
  int rc = lr == -EWOULDBLOCK ? VV_E_LOCKED : vv_io_status(lr);
  if (rc == VV_E_LOCKED && w->err)
    snprintf(w->err->message, sizeof w->err->message, "another writer is saving into %s right now", dir);
  return rc;
}

int vv_swriter_open(vv_swriter *w, const vv_io *io, const char *dir, vv_error *err) {
  memset(w, 0, sizeof *w);
  w->lock_fd = -1;
  w->err = err;
  int rc = vv_sctx_init(&w->sc, io, dir);
  if (rc) return rc;
  const vv_io *fio = w->sc.io;
  w->mandir = vv_path_join(dir, "manifests");
  if (!w->mandir) return VV_E_NOMEM;
  /* Only into nothing, an empty directory or a session: never a stranger's
   * directory, whose files the garbage collection could take for ours. */
  rc = vv_session_check_dir(fio, dir, err);
  if (rc) return rc;
  rc = ensure_dir(fio, dir);
  if (!rc) rc = ensure_dir(fio, w->sc.objdir);
  if (!rc) rc = ensure_dir(fio, w->mandir);
  if (rc) {
    /* ENOENT here means a missing parent directory: an I/O error, not "no session". */
    return fail(w, rc == VV_E_NOT_FOUND ? VV_E_IO : rc, "creating the session directory");
  }
  return take_lock(w, dir);
}

int vv_swriter_read_current(vv_swriter *w, uint64_t *next_chunk, uint64_t *next_index) {
  char *path = vv_path_join(w->sc.dir, "manifest.json");
  unsigned char *file = NULL;
  size_t len = 0;
  w->exists = 0;
  w->cur_generation = 0;
  if (!path) return VV_E_NOMEM;
  int rc = vv_io_read_file(w->sc.io, path, VV_MANIFEST_MAX_BYTES, &file, &len);
  free(path);
  if (rc == VV_E_NOT_FOUND) return VV_OK;
  if (rc && rc != VV_E_CORRUPT) return fail(w, rc, "reading the current manifest");
  w->exists = 1;
  if (!rc) vv_manifest_file_hash(file, len, w->cur_hash);
  else memset(w->cur_hash, 0, VV_HASH_BYTES);
  vv_manifest cur;
  const unsigned char *body;
  size_t blen;
  if (!rc && vv_manifest_parse(file, len, &cur, &body, &blen, NULL) == VV_OK) {
    w->cur_generation = cur.generation;
    if (cur.next_chunk_seq > *next_chunk) *next_chunk = cur.next_chunk_seq;
    if (cur.next_index_seq > *next_index) *next_index = cur.next_index_seq;
    vv_manifest_free(&cur);
  } else {
    w->cur_generation = vv_session_newest_history(w->sc.io, w->mandir);
  }
  /* On an object store the history copy is written after the commit, so a
   * writer that died in between left the current generation without one;
   * garbage collection keeps generations by their copies. Restore it (the
   * bytes are the committed manifest's: identical whoever writes them). */
  if (!rc && w->cur_generation && (w->sc.io->flags & VV_IO_OBJECT_STORE) &&
      vv_session_newest_history(w->sc.io, w->mandir) < w->cur_generation) {
    char name[32];
    snprintf(name, sizeof name, "%020llu.json", (unsigned long long)w->cur_generation);
    char *hist = vv_path_join(w->mandir, name);
    int hr = hist ? vv_io_write_durable(w->sc.io, w->mandir, hist, file, len) : VV_E_NOMEM;
    free(hist);
    if (hr) {
      free(file);
      return fail(w, hr, "restoring the current generation's history copy");
    }
  }
  free(file);
  return VV_OK;
}

void vv_swriter_seal_with(vv_swriter *w, const vv_keyring *kr, const unsigned char session_id[VV_SESSION_ID_BYTES]) {
  w->sc.kr = kr;
  memcpy(w->sc.session_id, session_id, VV_SESSION_ID_BYTES);
}

/* Appends to a growable manifest array. */
static int push(void **arr, size_t *n, size_t *cap, size_t size, const void *item) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * size);
    if (!p) return VV_E_NOMEM;
    *arr = p;
    *cap = c;
  }
  memcpy((char *)*arr + *n * size, item, size);
  (*n)++;
  return VV_OK;
}

int vv_swriter_keep_chunk(vv_swriter *w, const vv_mchunk *c) {
  return push((void **)&w->m.chunks, &w->m.nchunks, &w->chunk_cap, sizeof *c, c);
}

int vv_swriter_keep_segment(vv_swriter *w, int base, const vv_mseg *g) {
  if (base) return push((void **)&w->m.base, &w->m.nbase, &w->base_cap, sizeof *g, g);
  return push((void **)&w->m.deltas, &w->m.ndeltas, &w->delta_cap, sizeof *g, g);
}

/* One chunk page: rows [from, to) of `rows`, encoded as a chunk map of
 * its own (docs/FORMAT.md section 5.1) and sealed. */
static int chunk_page(vv_swriter *w, const vv_chunk_in *rows, uint32_t from, uint32_t to) {
  vv_chunk_in part = *rows;
  part.count = to - from;
  part.slots = rows->slots + from;
  part.vectors = rows->vectors + from;
  part.ids = rows->ids ? rows->ids + from : NULL;
  part.id_lens = rows->id_lens ? rows->id_lens + from : NULL;
  part.metas = rows->metas ? rows->metas + from : NULL;
  part.meta_lens = rows->meta_lens ? rows->meta_lens + from : NULL;
  w->plain.len = 0;
  int rc = vv_chunk_encode(&part, &w->plain);
  if (!rc) rc = vv_pbuild_page(&w->pb, w->plain.data, w->plain.len, part.count);
  return rc;
}

int vv_swriter_chunk_begin(vv_swriter *w, const vv_chunk_in *rows) {
  vv_pbuild_free(&w->pb);
  vv_pbuild_begin(&w->pb, &w->sc, VV_OBJ_KIND_CHUNK, rows->seq, rows->dim);
  /* Rows go into a page until the next one would take it past the target;
   * a page holds at least one row. */
  size_t target = w->page_bytes ? w->page_bytes : VV_PAGE_DEFAULT_BYTES, used = 0;
  uint32_t from = 0;
  int rc = rows->count ? VV_OK : VV_E_INVALID;
  for (uint32_t i = 0; !rc && i < rows->count; i++) {
    size_t row = (size_t)rows->dim * 4 + 12;
    if (rows->ids && rows->ids[i]) row += rows->id_lens[i];
    if (rows->metas && rows->metas[i]) row += rows->meta_lens[i];
    if (i > from && used + row > target) {
      rc = chunk_page(w, rows, from, i);
      from = i;
      used = 0;
    }
    used += row;
  }
  if (!rc) rc = chunk_page(w, rows, from, rows->count);
  return rc;
}

int vv_swriter_chunk_end(vv_swriter *w, vv_mchunk *c) {
  int rc = vv_pbuild_write(&w->pb, &w->sealed, &c->ref, w->err);
  vv_pbuild_free(&w->pb);
  if (!rc) rc = vv_swriter_keep_chunk(w, c);
  if (!rc) w->bytes += c->ref.bytes;
  return rc;
}

int vv_swriter_segment_begin(vv_swriter *w, const vv_mseg *g, int base, const vv_codebook_in *cb,
                             const vv_fields_in *fields) {
  vv_pbuild_free(&w->pb);
  vv_pbuild_begin(&w->pb, &w->sc, VV_OBJ_KIND_INDEX, g->seq, 0);
  w->seg_seq = g->seq;
  w->seg_base = base;
  w->seg_cb = cb;
  w->seg_fields = fields;
  w->npend = 0;
  w->pend_bytes = 0;
  return VV_OK;
}

/* Seals the pending nodes as one page: a segment map of its own, the first
 * page carrying the codebook and the field paths. */
static int segment_page(vv_swriter *w) {
  for (uint32_t i = 0; i < w->npend; i++) {
    w->pend[i].links = w->pend_links + (size_t)i * VV_CODEC_MAX_LEVELS;
    w->pend[i].counts = w->pend_counts + (size_t)i * VV_CODEC_MAX_LEVELS;
  }
  w->plain.len = 0;
  int rc = vv_index3_encode_begin(&w->plain, w->seg_seq, w->seg_base, w->npend, w->npend ? 1 : 0,
                                  w->pb.n ? NULL : w->seg_cb, w->pb.n ? NULL : w->seg_fields);
  if (!rc && w->npend) rc = vv_index3_encode_block(w->pend, w->npend, &w->plain);
  if (!rc) rc = vv_pbuild_page(&w->pb, w->plain.data, w->plain.len, w->npend);
  w->npend = 0;
  w->pend_bytes = 0;
  return rc;
}

static int pend_grow(vv_swriter *w) {
  uint32_t cap = w->pend_cap ? w->pend_cap * 2 : 256;
  vv_node_in *p = realloc(w->pend, cap * sizeof *p);
  if (p) w->pend = p;
  const uint32_t **l = realloc(w->pend_links, (size_t)cap * VV_CODEC_MAX_LEVELS * sizeof *l);
  if (l) w->pend_links = l;
  uint32_t *c = realloc(w->pend_counts, (size_t)cap * VV_CODEC_MAX_LEVELS * sizeof *c);
  if (c) w->pend_counts = c;
  if (!p || !l || !c) return VV_E_NOMEM;
  w->pend_cap = cap;
  return VV_OK;
}

int vv_swriter_segment_node(vv_swriter *w, const vv_node_in *n) {
  if (n->nlevels > VV_CODEC_MAX_LEVELS) return VV_E_INVALID;
  if (w->npend == w->pend_cap && pend_grow(w)) return VV_E_NOMEM;
  size_t at = (size_t)w->npend * VV_CODEC_MAX_LEVELS;
  w->pend[w->npend] = *n;
  size_t bytes = 16 + n->id_len + n->code_len + (n->attrs ? (size_t)n->attrs_len + 1 : 0);
  for (uint32_t l = 0; l < n->nlevels; l++) {
    w->pend_links[at + l] = n->links[l];
    w->pend_counts[at + l] = n->counts[l];
    bytes += 2 * (size_t)n->counts[l]; /* packed gaps: about two bytes a link */
  }
  w->npend++;
  w->pend_bytes += bytes;
  return w->pend_bytes >= VV_INDEX_PAGE_BYTES ? segment_page(w) : VV_OK;
}

int vv_swriter_segment_end(vv_swriter *w, int base, vv_mseg *g) {
  int rc = w->npend || w->pb.n == 0 ? segment_page(w) : VV_OK;
  if (!rc) rc = vv_pbuild_write(&w->pb, &w->sealed, &g->ref, w->err);
  vv_pbuild_free(&w->pb);
  if (!rc) rc = vv_swriter_keep_segment(w, base, g);
  if (!rc) w->bytes += g->ref.bytes;
  return rc;
}

/* Writes the manifest file under manifests/ and then over manifest.json. */
static int write_manifest(vv_swriter *w, const vv_buf *file, int *collect) {
  const vv_io *io = w->sc.io;
  char name[32];
  snprintf(name, sizeof name, "%020llu.json", (unsigned long long)w->m.generation);
  char *hist = vv_path_join(w->mandir, name);
  char *main_path = vv_path_join(w->sc.dir, "manifest.json");
  int rc = hist && main_path ? VV_OK : VV_E_NOMEM;
  *collect = 1;
  if (!rc && (io->flags & VV_IO_OBJECT_STORE)) {
    /* On an object store the compare-and-swap on manifest.json comes
     * first: until it wins, this writer may not own the generation's
     * number, and a loser must not overwrite the winner's history copy. */
    rc = vv_io_write_durable(io, w->sc.dir, main_path, file->data, file->len);
    if (rc) {
      fail(w, rc, rc == VV_E_CONFLICT ? "committing the manifest" : "writing the manifest");
    } else if (vv_io_write_durable(io, w->mandir, hist, file->data, file->len) != VV_OK) {
      /* Committed all the same. Without its history copy this generation
       * is kept only while it is the newest, so collect nothing now. */
      *collect = 0;
    }
    free(hist);
    free(main_path);
    return rc;
  }
  if (!rc) rc = vv_io_write_durable(io, w->mandir, hist, file->data, file->len);
  if (!rc) rc = vv_io_fsync_dir(io, w->mandir);
  if (!rc) rc = vv_io_write_durable(io, w->sc.dir, main_path, file->data, file->len);
  if (rc) {
    /* Not committed: drop the history copy so it cannot be mistaken for a
     * generation that exists. */
    if (hist) io->unlink(io->ctx, hist);
    fail(w, rc, "writing the manifest");
  } else {
    /* The rename is visible; make it durable before reporting success. */
    rc = vv_io_fsync_dir(io, w->sc.dir);
    if (rc) fail(w, rc, "syncing the session directory");
  }
  free(hist);
  free(main_path);
  return rc;
}

int vv_swriter_commit(vv_swriter *w, const vv_keyring *kr, uint64_t generation, unsigned char new_hash[VV_HASH_BYTES]) {
  int rc = vv_io_fsync_dir(w->sc.io, w->sc.objdir);
  if (rc) return fail(w, rc, w->sc.io->flags & VV_IO_OBJECT_STORE ? "uploading objects" : "syncing the objects directory");
  w->m.generation = generation;
  w->m.has_parent = w->exists;
  if (w->exists) memcpy(w->m.parent, w->cur_hash, VV_HASH_BYTES);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(w->m.created_at, sizeof w->m.created_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
  vv_buf file = {0};
  rc = vv_manifest_write(&w->m, kr, &file);
  int collect = 0;
  if (!rc) rc = write_manifest(w, &file, &collect);
  if (!rc) {
    vv_manifest_file_hash(file.data, file.len, new_hash);
    w->bytes += file.len;
    if (collect) vv_session_gc(w->sc.io, w->sc.dir, w->sc.objdir, w->mandir, &w->m);
  }
  vv_buf_free(&file);
  return rc;
}

void vv_swriter_close(vv_swriter *w) {
  /* On an object store, uploads a failed save queued must not outlive it. */
  if (w->sc.io && (w->sc.io->flags & VV_IO_OBJECT_STORE) && w->sc.objdir &&
      vv_io_fsync_dir(w->sc.io, w->sc.objdir) != VV_OK) {
    /* (Their failure is the save's, already reported, or moot after a commit.) */
  }
  /* (A zeroed writer, never opened, has no I/O table and no lock.) */
  if (w->sc.io && w->lock_fd >= 0) w->sc.io->close(w->sc.io->ctx, w->lock_fd); /* releases the lock */
  w->lock_fd = -1;
  free(w->mandir);
  w->mandir = NULL;
  vv_manifest_free(&w->m);
  vv_buf_free(&w->plain);
  vv_buf_free(&w->sealed);
  vv_pbuild_free(&w->pb);
  free(w->pend);
  free(w->pend_links);
  free(w->pend_counts);
  vv_sctx_destroy(&w->sc);
}
