/*
 * test/c/fuzz/fuzz_json.c: libFuzzer target for the manifest JSON reader
 * and writer (session/json.c).
 *
 * The first byte picks a mode, the rest is the input:
 *   even: parse as a document. The result must be VV_OK or VV_E_CORRUPT;
 *         an accepted tree must write back and re-read to an equal tree.
 *   odd:  write the bytes as a string value. The writer must refuse exactly
 *         the invalid UTF-8, and what it writes must read back byte-equal.
 * Any broken property aborts, so the fuzzer reports it as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "session/json.h"
#include "vecvault.h"

static int equal(const vv_json *a, const vv_json *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
    case VV_JSON_NULL: return 1;
    case VV_JSON_BOOL: return a->boolean == b->boolean;
    case VV_JSON_INT: return a->integer == b->integer;
    case VV_JSON_STRING: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case VV_JSON_ARRAY:
    case VV_JSON_OBJECT:
      if (a->len != b->len) return 0;
      for (size_t i = 0; i < a->len; i++) {
        if (a->type == VV_JSON_OBJECT &&
            (a->key_lens[i] != b->key_lens[i] || memcmp(a->keys[i], b->keys[i], a->key_lens[i]) != 0))
          return 0;
        if (!equal(a->items[i], b->items[i])) return 0;
      }
      return 1;
  }
  return 0;
}

/* 0 if the tree has a key holding NUL, which vv_jw_key (a C string) cannot take. */
static int write_tree(vv_jw *w, const vv_json *v) {
  switch (v->type) {
    case VV_JSON_NULL: vv_jw_null(w); return 1;
    case VV_JSON_BOOL: vv_jw_bool(w, v->boolean); return 1;
    case VV_JSON_INT: vv_jw_int(w, v->integer); return 1;
    case VV_JSON_STRING: vv_jw_string(w, v->str, v->len); return 1;
    case VV_JSON_ARRAY:
      vv_jw_array_begin(w);
      for (size_t i = 0; i < v->len; i++)
        if (!write_tree(w, v->items[i])) return 0;
      vv_jw_array_end(w);
      return 1;
    case VV_JSON_OBJECT:
      vv_jw_object_begin(w);
      for (size_t i = 0; i < v->len; i++) {
        if (strlen(v->keys[i]) != v->key_lens[i]) return 0;
        vv_jw_key(w, v->keys[i]);
        if (!write_tree(w, v->items[i])) return 0;
      }
      vv_jw_object_end(w);
      return 1;
  }
  return 0;
}

/* Depth 16 stays under the writer's 31 levels, so every accepted tree can
 * be written back. */
#define FUZZ_DEPTH 16

static void fuzz_parse(const char *s, size_t n) {
  vv_json *v = NULL;
  int rc = vv_json_parse(s, n, FUZZ_DEPTH, &v);
  if (rc == VV_E_CORRUPT && v == NULL) return;
  if (rc != VV_OK || v == NULL) abort();

  vv_buf b = {0};
  vv_jw w;
  vv_jw_init(&w, &b);
  if (write_tree(&w, v)) {
    if (w.rc != VV_OK || w.depth != 0) abort();
    vv_json *v2 = NULL;
    if (vv_json_parse((const char *)b.data, b.len, FUZZ_DEPTH, &v2) != VV_OK || !equal(v, v2)) abort();
    /* The writer's output is canonical: a second write is identical. */
    vv_buf b2 = {0};
    vv_jw w2;
    vv_jw_init(&w2, &b2);
    if (!write_tree(&w2, v2) || w2.rc != VV_OK || b2.len != b.len || memcmp(b2.data, b.data, b.len) != 0)
      abort();
    vv_buf_free(&b2);
    vv_json_free(v2);
  }
  vv_buf_free(&b);
  vv_json_free(v);
}

static void fuzz_write_string(const char *s, size_t n) {
  vv_buf b = {0};
  vv_jw w;
  vv_jw_init(&w, &b);
  vv_jw_string(&w, s, n);
  /* Valid UTF-8 iff the reader accepts the same bytes inside a string. */
  vv_buf q = {0};
  if (vv_buf_append(&q, "\"", 1) || vv_buf_append(&q, s, n) || vv_buf_append(&q, "\"", 1)) abort();
  int has_special = 0;
  for (size_t i = 0; i < n; i++) has_special |= (unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == '\\';
  if (!has_special) {
    vv_json *raw = NULL;
    int raw_rc = vv_json_parse((const char *)q.data, q.len, 0, &raw);
    if ((raw_rc == VV_OK) != (w.rc == VV_OK)) abort();
    vv_json_free(raw);
  }
  vv_buf_free(&q);

  if (w.rc == VV_OK) {
    vv_json *v = NULL;
    if (vv_json_parse((const char *)b.data, b.len, 0, &v) != VV_OK || v->type != VV_JSON_STRING ||
        v->len != n || (n && memcmp(v->str, s, n) != 0))
      abort();
    vv_json_free(v);
  } else if (w.rc != VV_E_INVALID || b.len != 0) {
    abort();
  }
  vv_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const char *s = (const char *)data + 1;
  size_t n = size - 1;
  if (data[0] & 1) fuzz_write_string(s, n);
  else fuzz_parse(s, n);
  return 0;
}
