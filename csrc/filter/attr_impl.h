/*
 * filter/attr_impl.h: private to filter/ (attr.c and filter.c). The wire
 * readers both decoders share (shortest-form varints, one value), and the
 * column and dictionary layout, so that vv_filter_match reads a slot's
 * code inline instead of calling into attr.c per candidate.
 *
 * A column word per slot: below COL_MARK it is the slot's only code;
 * COL_MISSING: the path is missing (also every slot past the column);
 * COL_EMPTY: present without a scalar value; else COL_MARK | i, with
 * lists[i] = [n, code_1 < ... < code_n] (n >= 2).
 */
#ifndef VV_ATTR_IMPL_H
#define VV_ATTR_IMPL_H

#include <stdint.h>
#include <string.h>

#include "../common/utf8.h"
#include "attr.h"

#define COL_MARK 0x80000000u
#define COL_MISSING 0xffffffffu
#define COL_EMPTY 0xfffffffeu
#define CODE_LIMIT 0x40000000u /* codes and list indexes stay below (the hash doubles past 2^31) */

/* One dictionary entry: the value of a code (strings live in the slabs). */
typedef struct vv_dent {
  union {
    double num;      /* VV_VAL_NUMBER */
    const char *str; /* VV_VAL_STRING */
  } u;
  uint32_t len;
  uint32_t type;
} vv_dent;

static inline void vv_dent_value(const vv_dent *e, vv_value *out) {
  out->type = (int)e->type;
  out->num = e->type == VV_VAL_NUMBER ? e->u.num : 0;
  out->str = e->type == VV_VAL_STRING ? e->u.str : NULL;
  out->len = e->len;
}

/* What a reader needs of one field, stable under the read lock. */
typedef struct vv_attr_col {
  const uint32_t *col;    /* ncol words */
  uint32_t ncol;
  uint32_t *const *lists; /* multi-valued slots */
  const vv_dent *dict;    /* ncodes entries */
} vv_attr_col;

/* Field f's column view (attr.c). */
void vv_attrs_col(const vv_attrs *a, uint32_t f, vv_attr_col *out);

static inline uint32_t vv_col_word(const vv_attr_col *c, uint32_t slot) {
  return slot < c->ncol ? c->col[slot] : COL_MISSING;
}

/* ---- wire readers: 0 on success, -1 on malformed input ---- */

/* An unsigned LEB128 varint in its shortest form, at most `max`. */
static inline int vv_wire_varint(const unsigned char **pp, const unsigned char *end, uint64_t max, uint64_t *out) {
  const unsigned char *p = *pp;
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (p == end) return -1;
    unsigned char b = *p++;
    if (shift == 63 && b > 1) return -1;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (b == 0 && shift) return -1; /* not the shortest form */
      if (v > max) return -1;
      *out = v;
      *pp = p;
      return 0;
    }
  }
  return -1;
}

/* One value (attr.h): a finite number, a string of valid UTF-8 of at most
 * VV_ATTR_MAX_STRING bytes (borrowing the input), null or a boolean. */
static inline int vv_wire_value(const unsigned char **pp, const unsigned char *end, vv_value *v) {
  const unsigned char *p = *pp;
  if (p == end) return -1;
  unsigned t = *p++;
  v->num = 0;
  v->str = NULL;
  v->len = 0;
  v->type = (int)t;
  if (t == VV_VAL_NUMBER) {
    if (end - p < 8) return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits |= (uint64_t)p[i] << (8 * i);
    double d;
    memcpy(&d, &bits, sizeof d);
    if (d - d != 0) return -1; /* NaN or infinite */
    v->num = d == 0 ? 0.0 : d; /* -0 is 0 */
    p += 8;
  } else if (t == VV_VAL_STRING) {
    uint64_t len;
    if (vv_wire_varint(&p, end, VV_ATTR_MAX_STRING, &len) || (uint64_t)(end - p) < len) return -1;
    if (!vv_utf8_valid(p, (size_t)len)) return -1;
    v->str = (const char *)p;
    v->len = (uint32_t)len;
    p += len;
  } else if (t > VV_VAL_TRUE) {
    return -1;
  }
  *pp = p;
  return 0;
}

#endif
