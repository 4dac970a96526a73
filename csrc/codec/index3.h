/*
 * codec/index3.h: the format-3 index segment, columnar. The byte-level
 * schema is in docs/FORMAT.md (section 5.2, version 3).
 *
 * A segment is a header (kind, seq, base, count, the "pq" codebook or
 * null) and an array of blocks. A block is one self-contained CBOR map of
 * a few byte strings holding a run of nodes column by column: slots as
 * zigzag deltas, one flags byte per node (its level count and whether it
 * has a PQ code), id lengths and one blob of id bytes, chunk locations,
 * link lists sorted with their gaps bit-packed at the width of the largest,
 * and the codes as one blob; a block of a database with filterable fields
 * (version 4) adds each node's attribute record (filter/attr.h) as lengths
 * and one blob, and the first base segment's header lists the field paths.
 * Other integers inside the byte strings are
 * unsigned LEB128 varints in their shortest form. A block is encoded and
 * decoded on its own, so a writer may seal blocks separately and a reader
 * may decode them in parallel.
 *
 * Link lists come back sorted ascending by slot, whatever order they were
 * encoded in: HNSW never depends on the order of a node's links.
 *
 * Decoders run on authenticated bytes and trust nothing, like codec.h:
 * every length is checked against what remains, every count is capped
 * (the VV_CODEC_* limits), varints must be shortest-form and fit their
 * field, and anything malformed (trailing bytes included) is VV_E_CORRUPT.
 * They never allocate. Views borrow the input buffer, except a node's
 * links, which point into the reader's own scratch and are valid until the
 * next call on that reader.
 */
#ifndef VV_INDEX3_H
#define VV_INDEX3_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Link values and slots are below 2^31 (as in every format). */
#define VV_INDEX3_MAX_SLOT 0x7fffffffu
/* The most links one node can carry: every level full. */
#define VV_INDEX3_MAX_NODE_LINKS (VV_CODEC_MAX_LEVELS * VV_CODEC_MAX_LINKS)
/* Declared filterable fields in a header, and bytes of one path (as
 * filter/attr.h's VV_ATTR_MAX_FIELDS and VV_ATTR_MAX_PATH). */
#define VV_INDEX3_MAX_FIELDS 64u
#define VV_INDEX3_MAX_PATH 256u
/* Bytes of one node's attribute record. */
#define VV_INDEX3_MAX_ATTRS (16u << 20)

/* The field paths a header lists: n (1..VV_INDEX3_MAX_FIELDS) paths of
 * 1..VV_INDEX3_MAX_PATH bytes of UTF-8 without NUL, all different. */
typedef struct vv_fields_in {
  uint32_t n;
  const char *const *paths; /* not NUL-terminated */
  const uint32_t *lens;
} vv_fields_in;

/* ---- encoding ---- */

/* Appends one block holding nodes[0..n-1], 1 <= n <= VV_CODEC_MAX_COUNT,
 * in that order. A node has a code iff `code` is non-NULL (vv_node_in.v2 is
 * ignored); every code of a block has the same length. Link lists may be in
 * any order (they are sorted on the way). VV_E_INVALID on bad input (a slot
 * or link >= 2^31, too many levels or links, an id that is not 1..4096 bytes
 * of UTF-8, codes of different lengths, some nodes with `attrs` and some
 * without, a record over VV_INDEX3_MAX_ATTRS), VV_E_NOMEM; on failure `out`
 * is left as it was. Attribute records are copied as they are (their
 * layout is filter/attr.c's to check). */
VV_NODISCARD int vv_index3_encode_block(const vv_node_in *nodes, uint32_t n, vv_buf *out);

/* Appends a segment header for `count` nodes in `nblocks` blocks (cb: the
 * codebook, or NULL for "pq": null; fields: the declared filterable fields,
 * or NULL for none, the version-3 header). Then append exactly `nblocks`
 * blocks whose counts add up to `count`. nblocks is 0 iff count is 0.
 * VV_E_INVALID on bad fields (see vv_fields_in). */
VV_NODISCARD int vv_index3_encode_begin(vv_buf *out, uint64_t seq, int base, uint32_t count, uint32_t nblocks,
                                        const vv_codebook_in *cb, const vv_fields_in *fields);

/* ---- decoding one block ---- */

typedef struct vv_index3_block {
  /* column cursors: [at, end) of each byte string */
  const unsigned char *slots, *slots_end;
  const unsigned char *flags;
  const unsigned char *idlens, *idlens_end;
  const unsigned char *ids, *ids_end;
  const unsigned char *locs, *locs_end;
  const unsigned char *links, *links_end;
  const unsigned char *codes, *codes_end;
  const unsigned char *attrlens, *attrlens_end; /* has_attrs only */
  const unsigned char *attrs, *attrs_end;
  int has_attrs;       /* the block carries the attribute columns */
  uint32_t m;          /* code length (0: no codes in this block) */
  uint32_t count;      /* nodes in the block */
  uint32_t done;       /* nodes yielded so far */
  uint32_t prev_slot;
  int failed;
  uint32_t scratch[VV_INDEX3_MAX_NODE_LINKS]; /* the current node's links, native u32 */
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
  unsigned char scratch_le[VV_INDEX3_MAX_NODE_LINKS * 4]; /* the same, LE, for vv_node_view */
#endif
} vv_index3_block;

/* Reads a block's frame from exactly p[0..len) (a block followed by anything
 * is VV_E_CORRUPT), checks its columns' sizes and the flags, and sets
 * *count. Nothing is allocated; b borrows p. */
VV_NODISCARD int vv_index3_block_begin(vv_index3_block *b, const unsigned char *p, size_t len, uint32_t *count);

/* Yields the next node (VV_OK), then VV_END once all `count` nodes were
 * read and every column ended exactly there; VV_E_CORRUPT otherwise, after
 * which the block stays failed. node->links[l] point at LE u32 (as from
 * vv_index_decode_next); `links32`, if not NULL, receives the same lists as
 * native uint32_t arrays. Both point into b->scratch: valid until the next
 * call on b. Ids, codes and attribute records point into the input. */
VV_NODISCARD int vv_index3_block_next(vv_index3_block *b, vv_node_view *node,
                                      const uint32_t *links32[VV_CODEC_MAX_LEVELS]);

/* The byte length of the block that starts at p (its frame only, nothing
 * decoded), so a reader can hand blocks to workers. VV_E_CORRUPT if no
 * well-formed block frame starts there. */
VV_NODISCARD int vv_index3_block_span(const unsigned char *p, size_t len, size_t *span, uint32_t *count);

/* ---- decoding a segment ---- */

typedef struct vv_index3_reader {
  const unsigned char *p;
  size_t len;
  size_t pos;            /* the next block */
  uint32_t count;        /* nodes the header declares */
  uint32_t nblocks;      /* blocks the header declares */
  uint32_t blocks_seen;
  uint64_t nodes_seen;   /* nodes in the blocks seen so far */
  int has_codebook;
  vv_codebook_view cb;
  /* The header's "fields" (0 when it has none): views into the input. */
  uint32_t nfields;
  const char *field_ptr[VV_INDEX3_MAX_FIELDS];
  uint32_t field_len[VV_INDEX3_MAX_FIELDS];
  int in_block;          /* vv_index3_decode_next: blk is current */
  vv_index3_block blk;
} vv_index3_reader;

/* Reads the header. The codebook (if any) is r->cb and the field paths (if
 * any) r->field_ptr[0..r->nfields), both borrowed from p. More than
 * VV_INDEX3_MAX_FIELDS paths, or one that is empty, too long, not UTF-8,
 * holds a NUL or repeats another, is VV_E_CORRUPT. */
VV_NODISCARD int vv_index3_decode_begin(vv_index3_reader *r, const unsigned char *p, size_t len, uint64_t *seq,
                                        int *base, uint32_t *count, uint32_t *nblocks);

/* The header as an input of its own (a page holding only the header: the
 * input must end right after the blocks array head). r->has_codebook,
 * r->cb and the fields as above; the blocks then arrive as separate inputs for
 * vv_index3_block_begin, and the caller checks there are *nblocks of them
 * and that their counts add up to *count. Not for vv_index3_next_block or
 * vv_index3_decode_next (they fail: there are no blocks in this input). */
VV_NODISCARD int vv_index3_decode_header(vv_index3_reader *r, const unsigned char *p, size_t len, uint64_t *seq,
                                         int *base, uint32_t *count, uint32_t *nblocks);

/* The next block's bytes (VV_OK), for vv_index3_block_begin on any thread;
 * VV_END after the last one if the blocks' counts add up to the header's
 * count and the input ends exactly there; VV_E_CORRUPT otherwise. Do not
 * mix with vv_index3_decode_next on the same reader. */
VV_NODISCARD int vv_index3_next_block(vv_index3_reader *r, const unsigned char **block, size_t *len,
                                      uint32_t *count);

/* Node by node across blocks, single-threaded: the drop-in for
 * vv_index_decode_next (same VV_OK / VV_END / VV_E_CORRUPT contract;
 * links32 as in vv_index3_block_next, valid until the next call). */
VV_NODISCARD int vv_index3_decode_next(vv_index3_reader *r, vv_node_view *node,
                                       const uint32_t *links32[VV_CODEC_MAX_LEVELS]);

#endif
