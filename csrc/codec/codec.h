/*
 * codec/codec.h: CBOR encoding and strict decoding of session objects'
 * plaintext (libcbor). The byte-level schemas are in docs/FORMAT.md.
 *
 * Decoders run only on bytes that already passed the object's hash and AEAD
 * checks, and still trust nothing: every declared length is checked against
 * the bytes that remain, indefinite-length items, tags, floats, unknown or
 * out-of-order keys, duplicate keys and trailing bytes are rejected with
 * VV_E_CORRUPT, and every count is capped. Views point into the input
 * buffer (borrowed; valid while it is).
 *
 * Numbers inside byte strings are little-endian on every host.
 */
#ifndef VV_CODEC_H
#define VV_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/status.h"
#include "../vecvault.h"

#define VV_CODEC_MAX_COUNT 10000000u /* rows per chunk, nodes per index segment */
#define VV_CODEC_MAX_LEVELS 17u       /* HNSW levels 0..16 */
#define VV_CODEC_MAX_LINKS 256u       /* links per level (2 * max m) */

/* ---- chunk: rows of (slot, id, vector, metadata) ---- */

typedef struct vv_chunk_in {
  uint64_t seq;
  uint32_t dim;
  uint32_t count;
  const uint32_t *slots;            /* count */
  const float *const *vectors;      /* count pointers to dim floats */
  const char *const *ids;           /* count; NULL = a deleted slot kept as a graph waypoint */
  const uint32_t *id_lens;
  const char *const *metas;         /* count; NULL = none (JSON text otherwise) */
  const uint32_t *meta_lens;
} vv_chunk_in;

/* Appends the CBOR encoding to `out`. */
VV_NODISCARD int vv_chunk_encode(const vv_chunk_in *in, vv_buf *out);

typedef struct vv_chunk_view {
  uint64_t seq;
  uint32_t dim;
  uint32_t count;
  const unsigned char *slots;   /* count * 4 bytes, u32 LE */
  const unsigned char *vectors; /* count * dim * 4 bytes, f32 LE; may be unaligned */
  const char **ids;             /* count entries (NULL = none); allocated */
  uint32_t *id_lens;
  const char **metas;           /* count entries (NULL = none); allocated */
  uint32_t *meta_lens;
} vv_chunk_view;

/* Strict decode. `expect_dim` must match the encoded dim (VV_E_CORRUPT). */
VV_NODISCARD int vv_chunk_decode(const unsigned char *p, size_t len, uint32_t expect_dim, vv_chunk_view *out);
void vv_chunk_view_free(vv_chunk_view *v);

/* Helpers for the LE arrays inside views. */
uint32_t vv_le32(const unsigned char *p);
void vv_read_f32le(const unsigned char *p, size_t n, float *out);

/* ---- page table of a paged object (format 3; docs/FORMAT.md section 4.2) ----
 * map(3) { "rows": bytes(P * 4), "bytes": bytes(P * 4), "checks": bytes(P * 16) }:
 * per page, the rows (or nodes) it holds, its sealed length, and its check
 * (the Poly1305 tag of an encrypted page, BLAKE2b-128 of a plain one). */
#define VV_PAGE_CHECK_BYTES 16u
#define VV_CODEC_MAX_PAGES 10000000u

VV_NODISCARD int vv_ptable_encode(uint32_t npages, const uint32_t *rows, const uint32_t *bytes,
                                  const unsigned char *checks, vv_buf *out);

typedef struct vv_ptable_view {
  const unsigned char *rows;   /* npages u32 LE */
  const unsigned char *bytes;  /* npages u32 LE */
  const unsigned char *checks; /* npages * VV_PAGE_CHECK_BYTES */
} vv_ptable_view;

/* Strict decode of a table that must have exactly `npages` pages. */
VV_NODISCARD int vv_ptable_decode(const unsigned char *p, size_t len, uint32_t npages, vv_ptable_view *out);

/* ---- index segment: graph nodes with ids and chunk locations ---- */

typedef struct vv_node_in {
  uint32_t slot;
  const char *id;          /* NULL = deleted slot kept as a graph waypoint */
  uint32_t id_len;
  uint64_t chunk;          /* seq of the chunk holding its vector */
  uint32_t row;            /* row inside that chunk */
  uint32_t nlevels;        /* 0 for the flat index, else level + 1 */
  const uint32_t *const *links; /* nlevels arrays */
  const uint32_t *counts;       /* nlevels counts */
  int v2;                  /* format 2: a sixth field, the node's PQ code */
  const uint8_t *code;     /* v2: code_len bytes, or NULL (written as null) */
  uint32_t code_len;
  /* Format 3 (version 4): the node's attribute record (filter/attr.h), or
   * NULL for a block without the attribute columns; in one block every
   * node has one or none does. attrs_len may be 0 (every field missing). */
  const unsigned char *attrs;
  uint32_t attrs_len;
} vv_node_in;

/* A product-quantiser codebook carried by format-2 base segment 0. */
typedef struct vv_codebook_in {
  uint32_t m, ksub, dsub;
  uint64_t trained;       /* vectors it was learnt from */
  const float *centroids; /* m * ksub * dsub */
} vv_codebook_in;

typedef struct vv_codebook_view {
  uint32_t m, ksub, dsub;
  uint64_t trained;
  const unsigned char *centroids; /* m * ksub * dsub f32 LE; may be unaligned */
} vv_codebook_view;

#define VV_CODEC_MAX_CODE 65536u /* bytes per PQ code (m <= dimension) */

/* Streaming encoder: begin writes the header for `count` nodes, then call
 * node exactly `count` times. */
VV_NODISCARD int vv_index_encode_begin(vv_buf *out, uint64_t seq, int base, uint32_t count);
/* The format-2 header: the same plus "pq", a codebook (cb) or null. Its
 * nodes must be encoded with v2 set. */
VV_NODISCARD int vv_index_encode_begin_v2(vv_buf *out, uint64_t seq, int base, uint32_t count,
                                          const vv_codebook_in *cb);
VV_NODISCARD int vv_index_encode_node(vv_buf *out, const vv_node_in *node);

typedef struct vv_node_view {
  uint32_t slot;
  const char *id; /* NULL = none */
  uint32_t id_len;
  uint64_t chunk;
  uint32_t row;
  uint32_t nlevels;
  const unsigned char *links[VV_CODEC_MAX_LEVELS]; /* counts[l] * 4 bytes, u32 LE */
  uint32_t counts[VV_CODEC_MAX_LEVELS];
  const unsigned char *code; /* v2: the PQ code, or NULL */
  uint32_t code_len;
  /* Format 3: the attribute record (into the input, not validated: see
   * filter/attr.h), or NULL when the block has no attribute columns (and
   * always from the format-1/2 decoders). */
  const unsigned char *attrs;
  uint32_t attrs_len;
} vv_node_view;

typedef struct vv_index_reader {
  const unsigned char *p;
  size_t len;
  size_t pos;
  uint32_t remaining;
  int v2;              /* the segment is format 2 (a 6-key header) */
  int has_codebook;    /* v2 and "pq" was not null */
  vv_codebook_view cb;
} vv_index_reader;

/* Streaming decoder (either format; r->v2 says which): begin reads the header; next yields nodes (VV_OK) and
 * the end check runs after the last one: next returns VV_END (common/status.h) once
 * all `count` nodes were read and the buffer ended exactly there. */
VV_NODISCARD int vv_index_decode_begin(vv_index_reader *r, const unsigned char *p, size_t len, uint64_t *seq,
                                       int *base, uint32_t *count);
VV_NODISCARD int vv_index_decode_next(vv_index_reader *r, vv_node_view *node);

#endif
