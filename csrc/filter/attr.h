/*
 * filter/attr.h: the filterable fields of a database, kept in memory,
 * columnar and dictionary-encoded, so a filter is evaluated without reading
 * any metadata (which, in a lazily loaded session, stays in its chunk).
 *
 * A database declares up to VV_ATTR_MAX_FIELDS field paths when it is
 * created ("lang", "author.name"). The JS layer resolves each path in a
 * record's metadata and hands the engine the values it found as one
 * *attribute record* (below); the engine never parses metadata JSON.
 *
 * Per field the store keeps:
 *   - a dictionary: each distinct value (null, false, true, a number, a
 *     string) gets a dense code; numbers and strings are different values
 *     (1 is not "1"); -0 is stored as 0;
 *   - a column: per slot, its value code, or a short list of codes for a
 *     slot with several values (an array), or "missing" / "present with no
 *     scalar value" (an empty array, an object);
 *   - per code: the number of slots holding it (exact), and a posting list
 *     of those slots, which may also hold stale entries (slots that since
 *     changed value: cleaned when they outnumber the live ones), so a
 *     reader of a posting list re-checks each slot.
 * Codes are never reused while the store lives; a value no slot holds any
 * more keeps its code with a count of 0.
 *
 * Attribute record (the JS encoder in lib/filter.js, the engine, and the
 * index segments of a session all use this byte layout; docs/FORMAT.md):
 *
 *   record := field * nfields            (in the declared order)
 *   field  := varint n                   0: the path is missing;
 *                                        1: present, no scalar value
 *                                           (an empty array, an object);
 *                                        n >= 2: n - 1 values follow
 *             value * (n - 1)
 *   value  := 0x00                       null
 *           | 0x01 | 0x02                false | true
 *           | 0x03 f64                   a finite number, IEEE 754 LE
 *           | 0x04 varint len, bytes     a string: len bytes of UTF-8
 *
 * varints are unsigned LEB128 in their shortest form. The values of one
 * field may come in any order and may repeat (a repeat is ignored). An array
 * field's values are its scalar elements. Limits: VV_ATTR_MAX_VALUES values
 * per field, VV_ATTR_MAX_STRING bytes per string.
 *
 * Threading: mutations (set, clear, reserve) need exclusive access (the
 * database's write lock); any number of readers may run at once under its
 * read lock. The numeric statistics a reader builds on demand are guarded
 * by the store's own mutex.
 */
#ifndef VV_ATTR_H
#define VV_ATTR_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../vecvault.h"

#define VV_ATTR_MAX_FIELDS 64u
#define VV_ATTR_MAX_PATH 256u    /* bytes of one field path */
#define VV_ATTR_MAX_VALUES 4096u /* values of one field in one record */
#define VV_ATTR_MAX_STRING 65535u /* bytes of one string value */

enum { VV_VAL_NULL = 0, VV_VAL_FALSE = 1, VV_VAL_TRUE = 2, VV_VAL_NUMBER = 3, VV_VAL_STRING = 4 };

/* One value, as decoded from a record or a filter program (strings borrow
 * the input). */
typedef struct vv_value {
  int type;          /* VV_VAL_* */
  double num;        /* VV_VAL_NUMBER */
  const char *str;   /* VV_VAL_STRING: not NUL-terminated */
  uint32_t len;
} vv_value;

/* Orders two values of the same type: numbers numerically, strings by
 * their UTF-8 bytes (that is, by Unicode code point). <0, 0, >0. */
int vv_value_cmp(const vv_value *a, const vv_value *b);

typedef struct vv_attrs vv_attrs;

/* A store for `n` (0..VV_ATTR_MAX_FIELDS) field paths, each 1..VV_ATTR_MAX_PATH
 * bytes of UTF-8 without NUL, all different (VV_E_INVALID otherwise). */
VV_NODISCARD int vv_attrs_create(const char *const *paths, const uint32_t *lens, uint32_t n, vv_attrs **out);
void vv_attrs_free(vv_attrs *a); /* NULL is a no-op */

uint32_t vv_attrs_nfields(const vv_attrs *a);
/* Field f's path (borrowed, not NUL-terminated). */
const char *vv_attrs_path(const vv_attrs *a, uint32_t f, uint32_t *len);

/* VV_OK if rec[0..len) is one well-formed record for this store's fields
 * (nothing after it), else VV_E_BAD_METADATA. */
VV_NODISCARD int vv_attrs_check(const vv_attrs *a, const unsigned char *rec, size_t len);

/* Make room so that slots [0, nslots) can be set without growing the
 * columns. VV_OK or VV_E_NOMEM. */
VV_NODISCARD int vv_attrs_reserve(vv_attrs *a, uint64_t nslots);

/* Replaces slot's values with the record's (checked as vv_attrs_check;
 * len 0 = every field missing). On failure the slot keeps its old values.
 * VV_E_BAD_METADATA, VV_E_NOMEM. */
VV_NODISCARD int vv_attrs_set(vv_attrs *a, uint32_t slot, const unsigned char *rec, size_t len);

/* Every field of `slot` becomes missing (a deleted slot). */
void vv_attrs_clear(vv_attrs *a, uint32_t slot);

/* Appends slot's record (the layout above; every field missing for a slot
 * never set). VV_OK or VV_E_NOMEM. */
VV_NODISCARD int vv_attrs_encode(const vv_attrs *a, uint32_t slot, vv_buf *out);

/* Heap bytes held (columns, dictionaries, posting lists). */
size_t vv_attrs_memory(const vv_attrs *a);

/* ---- reading, for filter/filter.c ---- */

#define VV_CODE_NONE UINT32_MAX /* a value not in the dictionary */

/* The code of value v in field f, or VV_CODE_NONE. */
uint32_t vv_attrs_lookup(const vv_attrs *a, uint32_t f, const vv_value *v);
/* Codes of field f so far: every code is below this. */
uint32_t vv_attrs_ncodes(const vv_attrs *a, uint32_t f);
/* The value of a code (borrowed from the dictionary). */
void vv_attrs_value(const vv_attrs *a, uint32_t f, uint32_t code, vv_value *out);
/* Live slots holding code (exact). */
uint64_t vv_attrs_count(const vv_attrs *a, uint32_t f, uint32_t code);
/* Slots whose field f is present / missing (exact). */
uint64_t vv_attrs_present(const vv_attrs *a, uint32_t f);
/* Slots holding two values or more in field f (an array). While there are
 * none, AND of range clauses on f is one interval. */
uint64_t vv_attrs_multi(const vv_attrs *a, uint32_t f);

/* Slot's values of field f: *present is 0 when the path is missing; then
 * *n codes at *codes (borrowed; valid under the read lock). */
void vv_attrs_get(const vv_attrs *a, uint32_t f, uint32_t slot, int *present, const uint32_t **codes, uint32_t *n);

/* Code's posting list: *n slots at *slots (borrowed, under the read lock),
 * a superset of the slots holding it (stale entries and repeats possible). */
void vv_attrs_postings(const vv_attrs *a, uint32_t f, uint32_t code, const uint32_t **slots, size_t *n);

/* A field's values in order (numbers ascending, then strings by bytes),
 * for range clauses: binary search finds a range's codes and, from the
 * prefix sums, about how many slots hold them. Built on demand and shared;
 * a snapshot covers only the codes below `ncodes` (the codes that existed
 * when it was built: a reader checks later codes, at most an eighth as many,
 * one by one), and its counts were exact when it was built. The store
 * rebuilds it once more than an eighth of the field's codes are newer, or
 * its slots changed by more than an eighth. */
typedef struct vv_attr_sorted {
  uint32_t ncodes;          /* codes covered: [0, ncodes) */
  uint32_t n;               /* codes[0..n): every number and string code among them (a code
                               no slot holds too, since it may be held again), in value order */
  uint32_t nnum;            /* codes[0..nnum) are numbers, codes[nnum..n) strings */
  const uint32_t *codes;
  const uint64_t *prefix;   /* n + 1 entries: prefix[i] = slots holding codes[0..i) when built */
} vv_attr_sorted;

/* A counted reference to field f's current snapshot, rebuilt first if it
 * is stale. Call under the read lock; release before the lock is dropped.
 * VV_OK or VV_E_NOMEM. */
VV_NODISCARD int vv_attrs_sorted(vv_attrs *a, uint32_t f, const vv_attr_sorted **out);
void vv_attrs_sorted_release(vv_attrs *a, const vv_attr_sorted *s);

#endif
