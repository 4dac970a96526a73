/*
 * session/writer.h: writing one generation of a session directory, the
 * storage-format half of a save (the database's half, what to write, is
 * db/save.c).
 *
 * The commit protocol (docs/FORMAT.md, "Commit"): vv_swriter_open checks
 * that the directory may be written (gc.h), creates it and takes its writer
 * lock; every object goes to a temporary file, is fsynced and renamed to
 * its content hash (object.h); vv_swriter_commit fsyncs the objects
 * directory and writes the manifest to manifests/<generation>.json and then
 * over manifest.json, each by temp + fsync + rename + directory fsync. The
 * rename of manifest.json is the commit point; only then does garbage
 * collection delete what no kept generation references. A writer closed
 * before its commit leaves the previous generation untouched.
 *
 * The writer knows nothing of the database: it is fed chunk rows
 * (vv_chunk_in), index nodes (vv_node_in) and the manifest fields, and
 * appends each written object to the manifest it is building (`m`).
 */
#ifndef VV_SESSION_WRITER_H
#define VV_SESSION_WRITER_H

#include <stdint.h>

#include "../codec/codec.h"
#include "../codec/index3.h"
#include "../common/buf.h"
#include "../vecvault.h"
#include "io.h"
#include "manifest.h"
#include "object.h"
#include "paged.h"

/* Format 3 writes objects in pages (paged.h): a chunk page is cut after
 * about this many plaintext bytes (rows are never split), an index page
 * after about VV_INDEX_PAGE_BYTES. */
#define VV_PAGE_DEFAULT_BYTES 4096u
#define VV_INDEX_PAGE_BYTES (256u << 10)

/* An index page's plaintext is a format-3 segment map (codec/index3.h) of
 * one block holding the page's nodes. */

typedef struct vv_swriter {
  vv_sctx sc;         /* I/O table, paths, key ring and session id for sealing */
  char *mandir;
  int lock_fd;
  vv_error *err;      /* borrowed, may be NULL: the first failure's detail */
  vv_buf plain, sealed; /* reused between objects */
  uint32_t page_bytes;  /* target plaintext bytes of a chunk page (VV_PAGE_DEFAULT_BYTES) */
  vv_pbuild pb;         /* the paged object being built */
  /* The index segment being built: its header, and its nodes since the
   * last page (copies of the records; what they point at is the caller's,
   * borrowed until segment_end). */
  uint64_t seg_seq;
  int seg_base;
  const vv_codebook_in *seg_cb;
  const vv_fields_in *seg_fields;
  vv_node_in *pend;
  const uint32_t **pend_links; /* VV_CODEC_MAX_LEVELS per pending node */
  uint32_t *pend_counts;
  uint32_t npend, pend_cap;
  size_t pend_bytes;           /* about what the pending nodes encode to */
  vv_manifest m;      /* the generation being written: objects are appended here */
  size_t chunk_cap, base_cap, delta_cap;
  uint64_t bytes;     /* object and manifest bytes written */
  /* The directory's current manifest (vv_swriter_read_current). */
  int exists;         /* manifest.json exists (it may not parse) */
  unsigned char cur_hash[VV_HASH_BYTES];
  uint64_t cur_generation;
} vv_swriter;

/* Prepares `w` for `dir`: refuses a directory that is not nothing, empty
 * or a session (VV_E_NOT_A_SESSION, nothing touched), creates the
 * directory and its subdirectories, and takes the writer lock
 * (VV_E_LOCKED if another writer holds it). `io` NULL = POSIX; `err` is
 * kept for later calls. Close `w` whatever this returns. */
VV_NODISCARD int vv_swriter_open(vv_swriter *w, const vv_io *io, const char *dir, vv_error *err);

/* Reads the directory's current manifest into exists / cur_hash /
 * cur_generation, and raises *next_chunk and *next_index to its counters.
 * A manifest that exists but cannot be read fails (it must not be taken
 * for "no session"); one that reads but does not parse is replaced,
 * numbered after the newest generation in manifests/. */
VV_NODISCARD int vv_swriter_read_current(vv_swriter *w, uint64_t *next_chunk, uint64_t *next_index);

/* Seals objects with `kr` (NULL: plaintext, checksummed) for `session_id`. */
void vv_swriter_seal_with(vv_swriter *w, const vv_keyring *kr, const unsigned char session_id[VV_SESSION_ID_BYTES]);

/* Appends an object of the previous generation that stays, as is. */
VV_NODISCARD int vv_swriter_keep_chunk(vv_swriter *w, const vv_mchunk *c);
VV_NODISCARD int vv_swriter_keep_segment(vv_swriter *w, int base, const vv_mseg *g);

/* A chunk: begin encodes `rows` (which may then be released), end writes
 * them as object c->seq and appends it (c's seq, count and slot range come
 * from the caller; its ref is filled in). */
VV_NODISCARD int vv_swriter_chunk_begin(vv_swriter *w, const vv_chunk_in *rows);
VV_NODISCARD int vv_swriter_chunk_end(vv_swriter *w, vv_mchunk *c);

/* An index segment: begin, one call per node, end (which writes it as
 * object g->seq and appends it to the base or the deltas). `cb` is the
 * codebook and `fields` the filterable field paths carried by the first
 * base segment, or NULL (both borrowed until segment_end). Nodes carry
 * their attribute records iff the database has filterable fields. */
VV_NODISCARD int vv_swriter_segment_begin(vv_swriter *w, const vv_mseg *g, int base, const vv_codebook_in *cb,
                                          const vv_fields_in *fields);
VV_NODISCARD int vv_swriter_segment_node(vv_swriter *w, const vv_node_in *n);
VV_NODISCARD int vv_swriter_segment_end(vv_swriter *w, int base, vv_mseg *g);

/* Commits `w->m` (its content fields filled in by the caller; generation,
 * parent and time are set here), authenticated with `kr` (NULL: plaintext),
 * then collects garbage. *new_hash receives the hash of the manifest file. */
VV_NODISCARD int vv_swriter_commit(vv_swriter *w, const vv_keyring *kr, uint64_t generation,
                                   unsigned char new_hash[VV_HASH_BYTES]);

/* Releases the lock and frees everything; safe on a writer that failed to open. */
void vv_swriter_close(vv_swriter *w);

#endif
