/*
 * filter/filter.h: filter programs, compiled against a database's
 * attribute store (attr.h) and run by the engine per candidate.
 *
 * The JS layer validates a MongoDB-style filter and compiles it into a
 * *program* (lib/filter.js); the engine decodes the program, trusting
 * nothing, binds its values to the store's dictionary codes once per call,
 * and then answers "does this slot match?" without touching metadata.
 *
 *   program := 'V' 'F' 0x01 node              (nothing after it)
 *   node := 0x00                              TRUE (an empty filter)
 *         | 0x01 varint n, node * n           AND, n >= 1
 *         | 0x02 varint n, node * n           OR,  n >= 1
 *         | 0x03 node                         NOT
 *         | 0x04 varint field, value          EQ: some value of the field equals
 *                                             value (same type); value null also
 *                                             matches a missing path
 *         | 0x05 varint field, varint n, value * n
 *                                             IN: EQ of any of them, 1 <= n <= VV_FILTER_MAX_IN
 *         | 0x06 varint field, op, value      CMP: some value of the field, of the
 *                                             operand's type, compares so; op 0 >,
 *                                             1 >=, 2 <, 3 <=; the operand is a
 *                                             number or a string (attr.h, vv_value_cmp)
 *         | 0x07 varint field                 EXISTS: the path is present (whatever
 *                                             it holds, null and [] included)
 *   value := as in an attribute record (attr.h)
 *
 * field indexes the database's declared paths. $ne, $nin and
 * $exists: false are NOT of EQ, IN and EXISTS, so, as in MongoDB, they also
 * match a record whose path is missing. Limits (VV_E_BAD_FILTER beyond
 * them): VV_FILTER_MAX_DEPTH nested nodes, VV_FILTER_MAX_NODES nodes,
 * VV_FILTER_MAX_BYTES bytes.
 *
 * A compiled filter borrows the store: use it under the same hold of the
 * database's read lock it was compiled under (a write could add values it
 * does not know). vv_filter_match may be called from many threads at once.
 */
#ifndef VV_FILTER_H
#define VV_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "attr.h"

#define VV_FILTER_MAX_DEPTH 32u
#define VV_FILTER_MAX_NODES 20000u
#define VV_FILTER_MAX_IN 65536u
#define VV_FILTER_MAX_BYTES (16u << 20)

typedef struct vv_filter vv_filter;

/* Decodes prog[0..len) and binds it to `a`. VV_E_BAD_FILTER for anything
 * malformed (bad header, unknown node, a field out of range, a CMP operand
 * that is not a number or string, a NaN or infinite number, invalid UTF-8,
 * trailing bytes, a limit passed), VV_E_NOMEM. */
VV_NODISCARD int vv_filter_compile(vv_attrs *a, const unsigned char *prog, size_t len, vv_filter **out);
void vv_filter_free(vv_filter *f); /* NULL is a no-op */

/* 1 when the program is TRUE (or folds to it): every slot matches. */
int vv_filter_is_true(const vv_filter *f);

/* 1 if slot's attribute values match. Meaningful for live slots. */
int vv_filter_match(const vv_filter *f, uint32_t slot);

/* What the planner needs (db/): an estimate of the fraction of live slots
 * that match, from the per-value counts and the sorted snapshots (AND
 * multiplies its children's fractions, OR adds them up to 1, NOT takes
 * 1 - x), and, when posting lists can enumerate a superset of the matching
 * slots (EQ, IN and CMP leaves; AND through its cheapest child; OR when
 * every child can), how many posting entries that reads. */
typedef struct vv_filter_plan {
  double selectivity;  /* 0..1 */
  int has_path;
  uint64_t path_cost;  /* posting entries the enumeration would read */
} vv_filter_plan;
VV_NODISCARD int vv_filter_estimate(vv_filter *f, uint64_t nlive, vv_filter_plan *out);

/* The enumeration (only when plan.has_path): slots that may match,
 * ascending, each once, all below nslots (the store's high-water mark),
 * in a malloc'd array (NULL when *n is 0). A superset: the caller checks
 * liveness and vv_filter_match. VV_E_INVALID without a path, VV_E_NOMEM. */
VV_NODISCARD int vv_filter_candidates(vv_filter *f, uint64_t nslots, uint32_t **slots, size_t *n);

#endif
