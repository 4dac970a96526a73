/*
 * session/json.h: a strict, small JSON reader and writer for the session
 * manifest. Not a general JSON library: numbers are integers only (the
 * manifest has no fractions), and the reader refuses anything unusual.
 *
 * The reader rejects: empty input, input over VV_JSON_MAX_INPUT bytes,
 * nesting deeper than `max_depth`, duplicate keys, invalid UTF-8 (overlongs,
 * UTF-8-encoded surrogates, above U+10FFFF), lone surrogate \u escapes,
 * unescaped control characters, fractions/exponents, integers outside int64,
 * leading zeros, "-0" (every integer has one spelling, the writer's), a
 * byte-order mark, and anything but whitespace after the value. Failures are
 * VV_E_CORRUPT (VV_E_NOMEM on allocation failure, VV_E_INVALID for a NULL
 * `out` or a NULL `text` with len > 0); *out is NULL on any failure.
 */
#ifndef VV_JSON_H
#define VV_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../vecvault.h"

#define VV_JSON_MAX_INPUT ((size_t)64 << 20) /* bytes, whatever the caller allows */
#define VV_JSON_MAX_DEPTH 256u                 /* a larger max_depth is treated as this */

typedef enum vv_json_type {
  VV_JSON_NULL,
  VV_JSON_BOOL,
  VV_JSON_INT,
  VV_JSON_STRING,
  VV_JSON_ARRAY,
  VV_JSON_OBJECT
} vv_json_type;

typedef struct vv_json vv_json;
struct vv_json {
  vv_json_type type;
  int boolean;
  int64_t integer;
  char *str;          /* STRING: decoded UTF-8, NUL-terminated (may contain NUL; use len) */
  size_t len;         /* STRING: bytes; ARRAY/OBJECT: number of items */
  vv_json **items;    /* ARRAY/OBJECT values */
  char **keys;        /* OBJECT keys, decoded, NUL-terminated */
  size_t *key_lens;
};

/* Depth 1 means the top-level value is a container; max_depth 0 admits only a
 * scalar. On success *out is a tree the caller frees with vv_json_free. */
VV_NODISCARD int vv_json_parse(const char *text, size_t len, unsigned max_depth, vv_json **out);
void vv_json_free(vv_json *v); /* NULL is a no-op */

/* Lookups on an OBJECT by exact key bytes (a key holding \u0000 never
 * matches); NULL if absent or of another type. Borrowed from `obj`. */
const vv_json *vv_json_get(const vv_json *obj, const char *key);
const vv_json *vv_json_get_type(const vv_json *obj, const char *key, vv_json_type type);

/* Writer: appends compact JSON to a buffer (borrowed; the caller frees it).
 * Commas are inserted automatically. Strings and keys are escaped (", \,
 * control characters) and must be valid UTF-8.
 *
 * Calls return nothing: the first error is kept in w.rc (VV_E_NOMEM from the
 * buffer; VV_E_INVALID for invalid UTF-8 or misuse: a value in an object
 * without a key, a key outside an object or twice in a row, a mismatched or
 * extra end, nesting over 31, a second top-level value) and every later call
 * does nothing. So write the whole document, then check once:
 *
 *   vv_jw w; vv_jw_init(&w, &buf);
 *   ... vv_jw_* calls ...
 *   if (w.rc != VV_OK || w.depth != 0) -> fail (w.rc, or VV_E_INTERNAL if only
 *                                        depth is off: an unclosed container)
 *
 * After an error the buffer holds a partial document: discard it. */
typedef struct vv_jw {
  vv_buf *out;
  int rc;               /* first error; later calls do nothing */
  unsigned depth;       /* open containers, 0..31 */
  unsigned char first[32]; /* per depth, private flags: nothing written yet
                              at this level, level is an object, key pending */
} vv_jw;

void vv_jw_init(vv_jw *w, vv_buf *out);
void vv_jw_object_begin(vv_jw *w);
void vv_jw_object_end(vv_jw *w);
void vv_jw_array_begin(vv_jw *w);
void vv_jw_array_end(vv_jw *w);
void vv_jw_key(vv_jw *w, const char *key); /* inside an object, before each value */
void vv_jw_string(vv_jw *w, const char *s, size_t len);
void vv_jw_int(vv_jw *w, int64_t v);
void vv_jw_bool(vv_jw *w, int v);
void vv_jw_null(vv_jw *w);

#endif
