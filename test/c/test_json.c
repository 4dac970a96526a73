/*
 * test/c/test_json.c: the strict manifest JSON reader and writer
 * (session/json.c): valid documents, every rejection, depth and size limits,
 * writer output and misuse, round trips, allocation failure at every
 * allocation, and a seeded mutation smoke test.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/util.h"
#include "session/json.h"
#include "vecvault.h"
#include "vvtest.h"

/* ---- helpers ---- */

/* Parses a private copy of exactly n bytes, so ASan sees any read past the
 * end (the reader must never rely on a terminator). */
static int parse_n(const char *s, size_t n, unsigned max_depth, vv_json **out) {
  char *copy = (char *)malloc(n ? n : 1);
  if (!copy) return VV_E_NOMEM;
  if (n) memcpy(copy, s, n);
  int rc = vv_json_parse(copy, n, max_depth, out);
  free(copy);
  return rc;
}

static int parse_str(const char *s, unsigned max_depth, vv_json **out) {
  return parse_n(s, strlen(s), max_depth, out);
}

static int tree_equal(const vv_json *a, const vv_json *b) {
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
        if (!tree_equal(a->items[i], b->items[i])) return 0;
      }
      return 1;
  }
  return 0;
}

/* Writes a parsed tree back. Keys holding NUL cannot be written (vv_jw_key
 * takes a C string): returns 0 for those. */
static int write_tree(vv_jw *w, const vv_json *v) {
  switch (v->type) {
    case VV_JSON_NULL: vv_jw_null(w); break;
    case VV_JSON_BOOL: vv_jw_bool(w, v->boolean); break;
    case VV_JSON_INT: vv_jw_int(w, v->integer); break;
    case VV_JSON_STRING: vv_jw_string(w, v->str, v->len); break;
    case VV_JSON_ARRAY:
      vv_jw_array_begin(w);
      for (size_t i = 0; i < v->len; i++)
        if (!write_tree(w, v->items[i])) return 0;
      vv_jw_array_end(w);
      break;
    case VV_JSON_OBJECT:
      vv_jw_object_begin(w);
      for (size_t i = 0; i < v->len; i++) {
        if (strlen(v->keys[i]) != v->key_lens[i]) return 0;
        vv_jw_key(w, v->keys[i]);
        if (!write_tree(w, v->items[i])) return 0;
      }
      vv_jw_object_end(w);
      break;
  }
  return 1;
}

/* A string with quotes, backslashes, every kind of control character, DEL,
 * and 2-, 3- and 4-byte UTF-8 up to U+10FFFF. */
static const char kTricky[] = "q\"b\\s/ n\n r\r t\t b\b f\f \x01\x1f\x7f "
                              "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";

/* A manifest-like document, written with the writer. */
static int write_manifest(vv_buf *b) {
  vv_jw w;
  vv_jw_init(&w, b);
  vv_jw_object_begin(&w);
  vv_jw_key(&w, "format");
  vv_jw_string(&w, "vecvault-session", 16);
  vv_jw_key(&w, "version");
  vv_jw_int(&w, 1);
  vv_jw_key(&w, "generation");
  vv_jw_int(&w, INT64_MAX);
  vv_jw_key(&w, "floor");
  vv_jw_int(&w, INT64_MIN);
  vv_jw_key(&w, "config");
  vv_jw_object_begin(&w);
  vv_jw_key(&w, "dimension");
  vv_jw_int(&w, 384);
  vv_jw_key(&w, "metric");
  vv_jw_string(&w, "cosine", 6);
  vv_jw_key(&w, "index");
  vv_jw_string(&w, "hnsw", 4);
  vv_jw_key(&w, "m");
  vv_jw_int(&w, 16);
  vv_jw_object_end(&w);
  vv_jw_key(&w, "encrypted");
  vv_jw_bool(&w, 1);
  vv_jw_key(&w, "compact");
  vv_jw_bool(&w, 0);
  vv_jw_key(&w, "kdf");
  vv_jw_null(&w);
  vv_jw_key(&w, "chunks");
  vv_jw_array_begin(&w);
  for (int i = 0; i < 3; i++) {
    vv_jw_object_begin(&w);
    vv_jw_key(&w, "seq");
    vv_jw_int(&w, i);
    vv_jw_key(&w, "hash");
    vv_jw_string(&w, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 64);
    vv_jw_key(&w, "rows");
    vv_jw_int(&w, -1000 * i);
    vv_jw_key(&w, "tags");
    vv_jw_array_begin(&w);
    vv_jw_array_end(&w);
    vv_jw_object_end(&w);
  }
  vv_jw_array_end(&w);
  vv_jw_key(&w, "note \"\\\xc3\xa9");
  vv_jw_string(&w, kTricky, sizeof kTricky - 1);
  vv_jw_key(&w, "nul");
  vv_jw_string(&w, "a\0b", 3);
  vv_jw_key(&w, "empty");
  vv_jw_string(&w, "", 0);
  vv_jw_key(&w, "nest");
  vv_jw_array_begin(&w);
  vv_jw_array_begin(&w);
  vv_jw_object_begin(&w);
  vv_jw_object_end(&w);
  vv_jw_array_end(&w);
  vv_jw_array_end(&w);
  vv_jw_object_end(&w);
  return w.rc == VV_OK && w.depth == 0 ? VV_OK : (w.rc ? w.rc : VV_E_INTERNAL);
}

/* ---- valid documents ---- */

VV_TEST(scalars) {
  vv_json *v = NULL;
  VV_REQUIRE(parse_str("null", 0, &v) == VV_OK && v);
  VV_CHECK(v->type == VV_JSON_NULL);
  vv_json_free(v);
  VV_REQUIRE(parse_str(" \t\r\ntrue\n ", 0, &v) == VV_OK && v);
  VV_CHECK(v->type == VV_JSON_BOOL && v->boolean == 1);
  vv_json_free(v);
  VV_REQUIRE(parse_str("false", 0, &v) == VV_OK && v);
  VV_CHECK(v->type == VV_JSON_BOOL && v->boolean == 0);
  vv_json_free(v);
  VV_REQUIRE(parse_str("0", 0, &v) == VV_OK && v);
  VV_CHECK(v->type == VV_JSON_INT && v->integer == 0);
  vv_json_free(v);
  VV_REQUIRE(parse_str("-42", 0, &v) == VV_OK && v);
  VV_CHECK(v->type == VV_JSON_INT && v->integer == -42);
  vv_json_free(v);
  VV_REQUIRE(parse_str("1234567890", 0, &v) == VV_OK && v);
  VV_CHECK(v->integer == 1234567890);
  vv_json_free(v);
  VV_REQUIRE(parse_str("\"\"", 0, &v) == VV_OK && v);
  VV_CHECK(v->type == VV_JSON_STRING && v->len == 0 && v->str && v->str[0] == '\0');
  vv_json_free(v);
  VV_REQUIRE(parse_str("\"abc\"", 0, &v) == VV_OK && v);
  VV_CHECK(v->len == 3 && strcmp(v->str, "abc") == 0);
  vv_json_free(v);
  vv_json_free(NULL);
}

VV_TEST(containers_and_lookup) {
  vv_json *v = NULL;
  VV_REQUIRE(parse_str("[]", 1, &v) == VV_OK && v);
  VV_CHECK(v->type == VV_JSON_ARRAY && v->len == 0);
  vv_json_free(v);
  VV_REQUIRE(parse_str("{ }", 1, &v) == VV_OK && v);
  VV_CHECK(v->type == VV_JSON_OBJECT && v->len == 0);
  VV_CHECK(vv_json_get(v, "a") == NULL);
  vv_json_free(v);

  const char *doc = " { \"b\" : [ 1 , \"x\" , true , null , [ ] , { } ] ,\n"
                    "\"a\":{\"k\":-7},\"ab\":\"s\",\"z\\u0000\":1, \"\":2 } ";
  VV_REQUIRE(parse_str(doc, 3, &v) == VV_OK && v);
  VV_REQUIRE(v->type == VV_JSON_OBJECT && v->len == 5);
  /* Insertion order is kept. */
  VV_CHECK(strcmp(v->keys[0], "b") == 0 && strcmp(v->keys[1], "a") == 0 && strcmp(v->keys[2], "ab") == 0);
  VV_CHECK(v->key_lens[3] == 2 && memcmp(v->keys[3], "z\0", 3) == 0);
  VV_CHECK(v->key_lens[4] == 0);
  const vv_json *b = vv_json_get_type(v, "b", VV_JSON_ARRAY);
  VV_REQUIRE(b && b->len == 6);
  VV_CHECK(b->items[0]->type == VV_JSON_INT && b->items[0]->integer == 1);
  VV_CHECK(b->items[1]->type == VV_JSON_STRING && strcmp(b->items[1]->str, "x") == 0);
  VV_CHECK(b->items[2]->type == VV_JSON_BOOL && b->items[2]->boolean);
  VV_CHECK(b->items[3]->type == VV_JSON_NULL);
  VV_CHECK(b->items[4]->type == VV_JSON_ARRAY && b->items[4]->len == 0);
  VV_CHECK(b->items[5]->type == VV_JSON_OBJECT && b->items[5]->len == 0);
  const vv_json *a = vv_json_get_type(v, "a", VV_JSON_OBJECT);
  VV_REQUIRE(a);
  const vv_json *k = vv_json_get_type(a, "k", VV_JSON_INT);
  VV_CHECK(k && k->integer == -7);
  /* Exact keys only: no prefix match, no match through an embedded NUL. */
  VV_CHECK(vv_json_get_type(v, "ab", VV_JSON_STRING) != NULL);
  VV_CHECK(vv_json_get(v, "abc") == NULL);
  VV_CHECK(vv_json_get(v, "z") == NULL);
  VV_CHECK(vv_json_get_type(v, "", VV_JSON_INT) != NULL);
  VV_CHECK(vv_json_get_type(v, "a", VV_JSON_ARRAY) == NULL);
  VV_CHECK(vv_json_get(b, "b") == NULL); /* not an object */
  VV_CHECK(vv_json_get(NULL, "b") == NULL);
  VV_CHECK(vv_json_get(v, NULL) == NULL);
  vv_json_free(v);
}

VV_TEST(string_escapes) {
  static const struct {
    const char *json, *bytes;
    size_t len;
  } cases[] = {
    {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
    {"\"\\u0041\\u00e9\\u00E9\"", "A\xc3\xa9\xc3\xa9", 5},
    {"\"\\u07ff\\u0800\\u20ac\\uffff\"", "\xdf\xbf\xe0\xa0\x80\xe2\x82\xac\xef\xbf\xbf", 11},
    {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},
    {"\"\\uD834\\uDD1E\"", "\xf0\x9d\x84\x9e", 4},
    {"\"\\ud800\\udc00\\udbff\\udfff\"", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8},
    {"\"a\\u0000b\\u0000\"", "a\0b\0", 4},
    {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\x7f\"", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\x7f", 14},
    {"\"\xef\xbb\xbf\"", "\xef\xbb\xbf", 3}, /* U+FEFF inside a string is fine */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    VV_NOTE("case %zu: %s", i, cases[i].json);
    vv_json *v = NULL;
    int rc = parse_str(cases[i].json, 0, &v);
    VV_CHECK(rc == VV_OK);
    if (rc != VV_OK) continue;
    VV_CHECK(v->type == VV_JSON_STRING && v->len == cases[i].len);
    VV_CHECK(memcmp(v->str, cases[i].bytes, cases[i].len) == 0 && v->str[v->len] == '\0');
    vv_json_free(v);
  }
}

VV_TEST(int64_boundaries) {
  static const struct {
    const char *text;
    int64_t value;
  } ok[] = {
    {"9223372036854775807", INT64_MAX},
    {"-9223372036854775808", INT64_MIN},
    {"9223372036854775806", INT64_MAX - 1},
    {"-9223372036854775807", INT64_MIN + 1},
    {"922337203685477580", INT64_MAX / 10},
    {"-1", -1},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    VV_NOTE("%s", ok[i].text);
    vv_json *v = NULL;
    VV_CHECK(parse_str(ok[i].text, 0, &v) == VV_OK && v && v->integer == ok[i].value);
    vv_json_free(v);
  }
  static const char *bad[] = {
    "9223372036854775808", "-9223372036854775809", "9223372036854775810",
    "92233720368547758070", "18446744073709551615", "18446744073709551616",
    "-18446744073709551616", "99999999999999999999999999999",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    VV_NOTE("%s", bad[i]);
    vv_json *v = (vv_json *)1;
    VV_CHECK(parse_str(bad[i], 0, &v) == VV_E_CORRUPT && v == NULL);
  }
}

/* ---- rejections ---- */

VV_TEST(rejects_each_bad_input) {
#define BAD(name, lit) {name, lit, sizeof(lit) - 1}
  static const struct {
    const char *name, *text;
    size_t len;
  } bad[] = {
    BAD("empty", ""),
    BAD("whitespace only", " \n\t\r"),
    BAD("bom then object", "\xef\xbb\xbf{}"),
    BAD("bom only", "\xef\xbb\xbf"),
    BAD("trailing value", "1 2"),
    BAD("trailing garbage", "{} x"),
    BAD("trailing bracket", "[]]"),
    BAD("trailing nul", "{}\0"),
    BAD("leading nul", "\0{}"),
    BAD("minus zero", "-0"),
    BAD("minus zero in array", "[-0]"),
    BAD("lone minus", "-"),
    BAD("minus space", "- 1"),
    BAD("leading zero", "01"),
    BAD("leading zeros", "00"),
    BAD("negative leading zero", "-01"),
    BAD("fraction", "1.0"),
    BAD("fraction zero", "0.5"),
    BAD("exponent", "1e5"),
    BAD("exponent upper", "1E5"),
    BAD("exponent signed", "1e-5"),
    BAD("plus sign", "+1"),
    BAD("bare fraction", ".5"),
    BAD("hex", "0x10"),
    BAD("nan", "NaN"),
    BAD("infinity", "Infinity"),
    BAD("short true", "tru"),
    BAD("short null", "nul"),
    BAD("capital true", "True"),
    BAD("long literal", "nulll"),
    BAD("single quotes", "'a'"),
    BAD("unterminated string", "\"abc"),
    BAD("unterminated escape", "\"abc\\"),
    BAD("escaped closing quote", "\"abc\\\""),
    BAD("raw control", "\"a\x01\""),
    BAD("raw tab", "\"a\tb\""),
    BAD("raw newline", "\"a\nb\""),
    BAD("raw nul", "\"a\0b\""),
    BAD("raw 0x1f", "\"\x1f\""),
    BAD("bad escape", "\"\\x\""),
    BAD("capital U escape", "\"\\U0041\""),
    BAD("escaped apostrophe", "\"\\'\""),
    BAD("short u escape", "\"\\u12\""),
    BAD("short u escape at end", "\"\\u"),
    BAD("non-hex u escape", "\"\\u12G4\""),
    BAD("lone high surrogate", "\"\\ud800\""),
    BAD("lone high then text", "\"\\ud800abcdef\""),
    BAD("high then bmp escape", "\"\\ud800\\u0041\""),
    BAD("high then high", "\"\\ud800\\ud800\""),
    BAD("high then short escape", "\"\\ud800\\udc0\""),
    BAD("lone low surrogate", "\"\\udc00\""),
    BAD("low then high", "\"\\udc00\\ud800\""),
    BAD("overlong nul", "\"\xc0\x80\""),
    BAD("overlong 2-byte", "\"\xc1\xbf\""),
    BAD("overlong 3-byte", "\"\xe0\x80\x80\""),
    BAD("overlong 3-byte max", "\"\xe0\x9f\xbf\""),
    BAD("overlong 4-byte", "\"\xf0\x80\x80\x80\""),
    BAD("overlong 4-byte max", "\"\xf0\x8f\xbf\xbf\""),
    BAD("utf8 surrogate low end", "\"\xed\xa0\x80\""),
    BAD("utf8 surrogate high end", "\"\xed\xbf\xbf\""),
    BAD("above U+10FFFF", "\"\xf4\x90\x80\x80\""),
    BAD("f5 lead", "\"\xf5\x80\x80\x80\""),
    BAD("ff byte", "\"\xff\""),
    BAD("lone continuation", "\"\x80\""),
    BAD("truncated 3-byte", "\"\xe2\x82\""),
    BAD("truncated 4-byte", "\"\xf0\x9f\x98\""),
    BAD("bad continuation", "\"\xc3\x28\""),
    BAD("utf8 outside string", "\xc3\xa9"),
    BAD("duplicate key", "{\"a\":1,\"a\":2}"),
    BAD("duplicate key via escape", "{\"a\":1,\"\\u0061\":2}"),
    BAD("duplicate key with nul", "{\"a\\u0000\":1,\"a\\u0000\":2}"),
    BAD("duplicate empty key", "{\"\":1,\"\":2}"),
    BAD("duplicate key nested", "[{\"x\":{\"k\":1,\"j\":2,\"k\":3}}]"),
    BAD("trailing comma array", "[1,]"),
    BAD("trailing comma object", "{\"a\":1,}"),
    BAD("leading comma", "[,1]"),
    BAD("double comma", "[1,,2]"),
    BAD("missing comma", "[1 2]"),
    BAD("missing colon", "{\"a\" 1}"),
    BAD("missing value", "{\"a\":}"),
    BAD("key only", "{\"a\"}"),
    BAD("non-string key", "{1:2}"),
    BAD("bare key", "{a:1}"),
    BAD("unclosed array", "[1"),
    BAD("unclosed object", "{\"a\":1"),
    BAD("open brace", "{"),
    BAD("mismatched close", "[1}"),
    BAD("lone close", "]"),
    BAD("comment", "/*x*/1"),
    BAD("line comment", "1 // x"),
    BAD("form feed whitespace", "\f1"),
    BAD("vertical tab whitespace", "\v1"),
    BAD("nbsp whitespace", "\xc2\xa0" "1"),
  };
#undef BAD
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    VV_NOTE("%s", bad[i].name);
    vv_json *v = (vv_json *)1;
    int rc = parse_n(bad[i].text, bad[i].len, 8, &v);
    VV_CHECK(rc == VV_E_CORRUPT);
    VV_CHECK(v == NULL);
    if (rc == VV_OK) vv_json_free(v);
  }
  /* The same shapes, made valid, pass: the rejections are specific. */
  static const char *good[] = {"{\"a\":1,\"b\":2}", "{\"a\":1,\"A\":2,\"a \":3,\"\\u0061\\u0000\":4}",
                               "0", "[0,-1]", "\"\\ud800\\udc00\"", "\"\\u0000\""};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    VV_NOTE("good: %s", good[i]);
    vv_json *v = NULL;
    VV_CHECK(parse_str(good[i], 8, &v) == VV_OK && v);
    vv_json_free(v);
  }
}

VV_TEST(minus_zero_is_refused) {
  /* Decision: "-0" is valid RFC 8259 but the writer never emits it; refusing
   * it gives every integer exactly one spelling. */
  vv_json *v = (vv_json *)1;
  VV_CHECK(parse_str("-0", 0, &v) == VV_E_CORRUPT && v == NULL);
  VV_CHECK(parse_str("{\"a\":-0}", 1, &v) == VV_E_CORRUPT && v == NULL);
  VV_CHECK(parse_str("0", 0, &v) == VV_OK && v && v->integer == 0);
  vv_json_free(v);
}

VV_TEST(bad_arguments) {
  vv_json *v = (vv_json *)1;
  VV_CHECK(vv_json_parse("1", 1, 0, NULL) == VV_E_INVALID);
  VV_CHECK(vv_json_parse(NULL, 1, 0, &v) == VV_E_INVALID && v == NULL);
  v = (vv_json *)1;
  VV_CHECK(vv_json_parse(NULL, 0, 0, &v) == VV_E_CORRUPT && v == NULL);
}

/* ---- depth and size limits ---- */

static char *nested(size_t levels, int object, size_t *len) {
  /* [[[...1...]]] or {"k":{"k":...1...}} */
  size_t open = object ? 5 : 1;
  char *s = (char *)malloc(levels * (open + 1) + 2);
  if (!s) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < levels; i++) {
    memcpy(s + n, object ? "{\"k\":" : "[", open);
    n += open;
  }
  s[n++] = '1';
  for (size_t i = 0; i < levels; i++) s[n++] = object ? '}' : ']';
  s[n] = '\0';
  *len = n;
  return s;
}

VV_TEST(depth_limit) {
  vv_json *v = NULL;
  VV_CHECK(parse_str("7", 0, &v) == VV_OK);
  vv_json_free(v);
  VV_CHECK(parse_str("[]", 0, &v) == VV_E_CORRUPT && v == NULL);
  VV_CHECK(parse_str("{}", 0, &v) == VV_E_CORRUPT && v == NULL);
  for (int object = 0; object <= 1; object++) {
    for (unsigned max = 1; max <= 12; max++) {
      VV_NOTE("object=%d max_depth=%u", object, max);
      size_t n;
      char *at = nested(max, object, &n);
      VV_REQUIRE(at);
      VV_CHECK(parse_n(at, n, max, &v) == VV_OK);
      /* The innermost value is a scalar: it does not count as a level. */
      const vv_json *p = v;
      unsigned levels = 0;
      while (p && p->type != VV_JSON_INT) {
        p = p->len == 1 ? p->items[0] : NULL;
        levels++;
      }
      VV_CHECK(levels == max && p && p->integer == 1);
      vv_json_free(v);
      free(at);
      char *past = nested(max + 1, object, &n);
      VV_REQUIRE(past);
      v = (vv_json *)1;
      VV_CHECK(parse_n(past, n, max, &v) == VV_E_CORRUPT && v == NULL);
      free(past);
    }
  }
  /* Empty containers count too. */
  VV_CHECK(parse_str("[[[]]]", 3, &v) == VV_OK);
  vv_json_free(v);
  VV_CHECK(parse_str("[[[[]]]]", 3, &v) == VV_E_CORRUPT);
  VV_CHECK(parse_str("{\"a\":[{}]}", 3, &v) == VV_OK);
  vv_json_free(v);
  VV_CHECK(parse_str("{\"a\":[{\"b\":[]}]}", 3, &v) == VV_E_CORRUPT);
}

VV_TEST(deep_nesting_against_small_limit) {
  size_t n;
  vv_json *v = (vv_json *)1;
  char *s = nested(64, 0, &n);
  VV_REQUIRE(s);
  VV_CHECK(parse_n(s, n, 8, &v) == VV_E_CORRUPT && v == NULL);
  VV_CHECK(parse_n(s, n, 64, &v) == VV_OK && v);
  vv_json_free(v);
  VV_CHECK(parse_n(s, n, 63, &v) == VV_E_CORRUPT && v == NULL);
  free(s);
  s = nested(64, 1, &n);
  VV_REQUIRE(s);
  VV_CHECK(parse_n(s, n, 8, &v) == VV_E_CORRUPT && v == NULL);
  free(s);
}

VV_TEST(depth_is_capped_whatever_the_caller_asks) {
  /* A million '[' must not recurse a million deep even with max_depth
   * UINT_MAX: the reader caps it at VV_JSON_MAX_DEPTH. */
  size_t n = 1000000;
  char *s = (char *)malloc(n);
  VV_REQUIRE(s);
  memset(s, '[', n);
  vv_json *v = (vv_json *)1;
  VV_CHECK(vv_json_parse(s, n, UINT_MAX, &v) == VV_E_CORRUPT && v == NULL);
  free(s);
  s = nested(VV_JSON_MAX_DEPTH, 0, &n);
  VV_REQUIRE(s);
  VV_CHECK(parse_n(s, n, UINT_MAX, &v) == VV_OK && v);
  vv_json_free(v);
  free(s);
  s = nested(VV_JSON_MAX_DEPTH + 1, 0, &n);
  VV_REQUIRE(s);
  VV_CHECK(parse_n(s, n, UINT_MAX, &v) == VV_E_CORRUPT && v == NULL);
  free(s);
}

VV_TEST(size_cap) {
  size_t cap = VV_JSON_MAX_INPUT;
  VV_CHECK(cap == (size_t)64 * 1024 * 1024);
  char *s = (char *)malloc(cap + 1);
  VV_REQUIRE(s);
  memset(s, ' ', cap + 1);
  s[0] = '0';
  vv_json *v = NULL;
  VV_CHECK(vv_json_parse(s, cap, 0, &v) == VV_OK && v && v->integer == 0);
  vv_json_free(v);
  v = (vv_json *)1;
  VV_CHECK(vv_json_parse(s, cap + 1, 0, &v) == VV_E_CORRUPT && v == NULL);
  free(s);
}

/* ---- big containers: linear growth, duplicate detection by sorting ---- */

VV_TEST(large_array) {
  vv_buf b = {0};
  vv_jw w;
  vv_jw_init(&w, &b);
  vv_jw_array_begin(&w);
  for (int64_t i = 0; i < 200000; i++) vv_jw_int(&w, i * 7 - 3);
  vv_jw_array_end(&w);
  VV_REQUIRE(w.rc == VV_OK && w.depth == 0);
  vv_json *v = NULL;
  VV_REQUIRE(vv_json_parse((const char *)b.data, b.len, 1, &v) == VV_OK && v);
  VV_CHECK(v->len == 200000);
  int ok = 1;
  for (size_t i = 0; i < v->len; i++) ok &= v->items[i]->integer == (int64_t)i * 7 - 3;
  VV_CHECK(ok);
  vv_json_free(v);
  vv_buf_free(&b);
}

static int parse_keys(size_t nkeys, long dup_a, long dup_b) {
  vv_buf b = {0};
  vv_jw w;
  vv_jw_init(&w, &b);
  vv_jw_object_begin(&w);
  char key[32];
  for (size_t i = 0; i < nkeys; i++) {
    long id = (long)i == dup_b ? dup_a : (long)i;
    /* Shared prefixes and lengths that differ, to exercise the ordering. */
    snprintf(key, sizeof key, "key-%ld%s", id, id % 3 ? "" : "x");
    vv_jw_key(&w, key);
    vv_jw_int(&w, (int64_t)i);
  }
  vv_jw_object_end(&w);
  if (w.rc) {
    vv_buf_free(&b);
    return w.rc;
  }
  vv_json *v = NULL;
  int rc = vv_json_parse((const char *)b.data, b.len, 1, &v);
  if (rc == VV_OK && v->len != nkeys) rc = VV_E_INTERNAL;
  vv_json_free(v);
  vv_buf_free(&b);
  return rc;
}

VV_TEST(duplicate_keys_small_and_large_objects) {
  static const size_t sizes[] = {2, 15, 16, 17, 18, 100, 5000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t n = sizes[s];
    VV_NOTE("n=%zu", n);
    VV_CHECK(parse_keys(n, -1, -1) == VV_OK);
    VV_CHECK(parse_keys(n, 0, (long)n - 1) == VV_E_CORRUPT);
    VV_CHECK(parse_keys(n, (long)n / 2 - 1, (long)n / 2) == VV_E_CORRUPT);
    VV_CHECK(parse_keys(n, (long)n - 2, (long)n - 1) == VV_E_CORRUPT);
  }
  /* 100,000 distinct keys: must stay fast (n log n, not n^2). */
  VV_CHECK(parse_keys(100000, -1, -1) == VV_OK);
  VV_CHECK(parse_keys(100000, 123, 99999) == VV_E_CORRUPT);
}

/* ---- writer ---- */

static int buf_is(const vv_buf *b, const char *s) {
  return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

VV_TEST(writer_output_is_compact_and_escaped) {
  vv_buf b = {0};
  vv_jw w;
  vv_jw_init(&w, &b);
  vv_jw_object_begin(&w);
  vv_jw_key(&w, "a");
  vv_jw_int(&w, 1);
  vv_jw_key(&w, "b");
  vv_jw_array_begin(&w);
  vv_jw_bool(&w, 1);
  vv_jw_bool(&w, 0);
  vv_jw_null(&w);
  vv_jw_string(&w, "x", 1);
  vv_jw_array_begin(&w);
  vv_jw_array_end(&w);
  vv_jw_object_begin(&w);
  vv_jw_object_end(&w);
  vv_jw_array_end(&w);
  vv_jw_key(&w, "c");
  vv_jw_object_begin(&w);
  vv_jw_key(&w, "min");
  vv_jw_int(&w, INT64_MIN);
  vv_jw_key(&w, "max");
  vv_jw_int(&w, INT64_MAX);
  vv_jw_key(&w, "zero");
  vv_jw_int(&w, 0);
  vv_jw_key(&w, "neg");
  vv_jw_int(&w, -10);
  vv_jw_object_end(&w);
  vv_jw_key(&w, "e\"\\");
  vv_jw_string(&w, "\"\\\n\r\t\b\f\x01\x1f\x7f/\xc3\xa9\0", 14);
  vv_jw_object_end(&w);
  VV_CHECK(w.rc == VV_OK && w.depth == 0);
  VV_CHECK(buf_is(&b, "{\"a\":1,\"b\":[true,false,null,\"x\",[],{}],"
                      "\"c\":{\"min\":-9223372036854775808,\"max\":9223372036854775807,\"zero\":0,\"neg\":-10},"
                      "\"e\\\"\\\\\":\"\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/\xc3\xa9\\u0000\"}"));
  vv_buf_free(&b);

  /* Scalars at the top level; a NULL string of length 0 is "". */
  vv_jw_init(&w, &b);
  vv_jw_string(&w, NULL, 0);
  VV_CHECK(w.rc == VV_OK && buf_is(&b, "\"\""));
  vv_buf_free(&b);
}

typedef void (*misuse_fn)(vv_jw *w);
static void mu_value_without_key(vv_jw *w) { vv_jw_object_begin(w); vv_jw_int(w, 1); }
static void mu_string_without_key(vv_jw *w) { vv_jw_object_begin(w); vv_jw_string(w, "a", 1); }
static void mu_container_without_key(vv_jw *w) { vv_jw_object_begin(w); vv_jw_array_begin(w); }
static void mu_key_in_array(vv_jw *w) { vv_jw_array_begin(w); vv_jw_key(w, "a"); }
static void mu_key_at_top(vv_jw *w) { vv_jw_key(w, "a"); }
static void mu_key_twice(vv_jw *w) { vv_jw_object_begin(w); vv_jw_key(w, "a"); vv_jw_key(w, "b"); }
static void mu_end_with_key_pending(vv_jw *w) { vv_jw_object_begin(w); vv_jw_key(w, "a"); vv_jw_object_end(w); }
static void mu_object_end_in_array(vv_jw *w) { vv_jw_array_begin(w); vv_jw_object_end(w); }
static void mu_array_end_in_object(vv_jw *w) { vv_jw_object_begin(w); vv_jw_array_end(w); }
static void mu_end_at_top(vv_jw *w) { vv_jw_array_end(w); }
static void mu_extra_end(vv_jw *w) { vv_jw_array_begin(w); vv_jw_array_end(w); vv_jw_array_end(w); }
static void mu_two_top_values(vv_jw *w) { vv_jw_int(w, 1); vv_jw_int(w, 2); }
static void mu_value_after_top_container(vv_jw *w) { vv_jw_object_begin(w); vv_jw_object_end(w); vv_jw_null(w); }
static void mu_nesting_32(vv_jw *w) { for (int i = 0; i < 32; i++) vv_jw_array_begin(w); }
static void mu_bad_utf8_string(vv_jw *w) { vv_jw_array_begin(w); vv_jw_string(w, "a\xc0\x80", 3); }
static void mu_surrogate_string(vv_jw *w) { vv_jw_string(w, "\xed\xa0\x80", 3); }
static void mu_truncated_string(vv_jw *w) { vv_jw_string(w, "\xe2\x82", 2); }
static void mu_bad_utf8_key(vv_jw *w) { vv_jw_object_begin(w); vv_jw_key(w, "\xff"); }
static void mu_null_key(vv_jw *w) { vv_jw_object_begin(w); vv_jw_key(w, NULL); }
static void mu_null_string(vv_jw *w) { vv_jw_string(w, NULL, 1); }

VV_TEST(writer_misuse_is_invalid_and_sticky) {
  static const struct {
    const char *name;
    misuse_fn fn;
  } cases[] = {
    {"value without key", mu_value_without_key},
    {"string without key", mu_string_without_key},
    {"container without key", mu_container_without_key},
    {"key in array", mu_key_in_array},
    {"key at top", mu_key_at_top},
    {"key twice", mu_key_twice},
    {"end with key pending", mu_end_with_key_pending},
    {"object end in array", mu_object_end_in_array},
    {"array end in object", mu_array_end_in_object},
    {"end at top", mu_end_at_top},
    {"extra end", mu_extra_end},
    {"two top values", mu_two_top_values},
    {"value after top container", mu_value_after_top_container},
    {"nesting 32", mu_nesting_32},
    {"bad utf8 string", mu_bad_utf8_string},
    {"surrogate string", mu_surrogate_string},
    {"truncated string", mu_truncated_string},
    {"bad utf8 key", mu_bad_utf8_key},
    {"null key", mu_null_key},
    {"null string", mu_null_string},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    VV_NOTE("%s", cases[i].name);
    vv_buf b = {0};
    vv_jw w;
    vv_jw_init(&w, &b);
    cases[i].fn(&w);
    VV_CHECK(w.rc == VV_E_INVALID);
    /* Sticky: nothing more is written, the first error stays. */
    size_t len = b.len;
    unsigned depth = w.depth;
    vv_jw_array_begin(&w);
    vv_jw_int(&w, 5);
    vv_jw_string(&w, "x", 1);
    vv_jw_object_begin(&w);
    vv_jw_key(&w, "k");
    vv_jw_null(&w);
    vv_jw_object_end(&w);
    vv_jw_array_end(&w);
    VV_CHECK(w.rc == VV_E_INVALID && b.len == len && w.depth == depth);
    vv_buf_free(&b);
  }

  /* 31 levels are allowed. */
  vv_buf b = {0};
  vv_jw w;
  vv_jw_init(&w, &b);
  for (int i = 0; i < 31; i++) vv_jw_array_begin(&w);
  for (int i = 0; i < 31; i++) vv_jw_array_end(&w);
  VV_CHECK(w.rc == VV_OK && w.depth == 0 && b.len == 62);
  vv_buf_free(&b);

  vv_jw_init(&w, NULL);
  VV_CHECK(w.rc == VV_E_INVALID);
  vv_jw_int(&w, 1); /* does nothing, does not crash */
}

VV_TEST(writer_out_of_memory_is_sticky) {
  /* A buffer that cannot grow: length near SIZE_MAX, no storage. Appending
   * fails inside vv_buf_reserve without touching memory. */
  vv_buf b = {NULL, SIZE_MAX, SIZE_MAX, 0};
  vv_jw w;
  vv_jw_init(&w, &b);
  vv_jw_array_begin(&w);
  VV_CHECK(w.rc == VV_E_NOMEM);
  vv_jw_array_end(&w);
  vv_jw_key(&w, "\xff"); /* would be VV_E_INVALID: the first error stays */
  VV_CHECK(w.rc == VV_E_NOMEM && b.len == SIZE_MAX && w.depth == 0);
}

/* ---- round trips ---- */

VV_TEST(manifest_round_trip) {
  vv_buf b = {0};
  VV_REQUIRE(write_manifest(&b) == VV_OK);
  vv_json *v = NULL;
  VV_REQUIRE(vv_json_parse((const char *)b.data, b.len, 4, &v) == VV_OK && v);

  const vv_json *x = vv_json_get_type(v, "format", VV_JSON_STRING);
  VV_CHECK(x && x->len == 16 && strcmp(x->str, "vecvault-session") == 0);
  x = vv_json_get_type(v, "version", VV_JSON_INT);
  VV_CHECK(x && x->integer == 1);
  x = vv_json_get_type(v, "generation", VV_JSON_INT);
  VV_CHECK(x && x->integer == INT64_MAX);
  x = vv_json_get_type(v, "floor", VV_JSON_INT);
  VV_CHECK(x && x->integer == INT64_MIN);
  const vv_json *cfg = vv_json_get_type(v, "config", VV_JSON_OBJECT);
  VV_REQUIRE(cfg);
  x = vv_json_get_type(cfg, "metric", VV_JSON_STRING);
  VV_CHECK(x && strcmp(x->str, "cosine") == 0);
  x = vv_json_get_type(cfg, "dimension", VV_JSON_INT);
  VV_CHECK(x && x->integer == 384);
  x = vv_json_get_type(v, "encrypted", VV_JSON_BOOL);
  VV_CHECK(x && x->boolean == 1);
  x = vv_json_get_type(v, "compact", VV_JSON_BOOL);
  VV_CHECK(x && x->boolean == 0);
  VV_CHECK(vv_json_get_type(v, "kdf", VV_JSON_NULL) != NULL);
  const vv_json *chunks = vv_json_get_type(v, "chunks", VV_JSON_ARRAY);
  VV_REQUIRE(chunks && chunks->len == 3);
  for (size_t i = 0; i < 3; i++) {
    const vv_json *c = chunks->items[i];
    const vv_json *seq = vv_json_get_type(c, "seq", VV_JSON_INT);
    const vv_json *rows = vv_json_get_type(c, "rows", VV_JSON_INT);
    const vv_json *hash = vv_json_get_type(c, "hash", VV_JSON_STRING);
    VV_CHECK(seq && seq->integer == (int64_t)i);
    VV_CHECK(rows && rows->integer == -1000 * (int64_t)i);
    VV_CHECK(hash && hash->len == 64);
    VV_CHECK(vv_json_get_type(c, "tags", VV_JSON_ARRAY) != NULL);
  }
  x = vv_json_get_type(v, "note \"\\\xc3\xa9", VV_JSON_STRING);
  VV_CHECK(x && x->len == sizeof kTricky - 1 && memcmp(x->str, kTricky, x->len) == 0);
  x = vv_json_get_type(v, "nul", VV_JSON_STRING);
  VV_CHECK(x && x->len == 3 && memcmp(x->str, "a\0b", 4) == 0);
  x = vv_json_get_type(v, "empty", VV_JSON_STRING);
  VV_CHECK(x && x->len == 0);
  VV_CHECK(vv_json_get_type(v, "nest", VV_JSON_ARRAY) != NULL);

  /* The writer's output is canonical: writing the tree reproduces it. */
  vv_buf b2 = {0};
  vv_jw w;
  vv_jw_init(&w, &b2);
  VV_CHECK(write_tree(&w, v));
  VV_CHECK(w.rc == VV_OK && w.depth == 0);
  VV_CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
  vv_buf_free(&b2);

  /* Any spelling the reader accepts writes back to an equal tree. */
  const char *loose = " { \"a\" : \"\\u00e9\\/\\ud83d\\ude00\" , \"b\" : [ -1 , { \"c\" : null } ] } ";
  vv_json *l = NULL, *l2 = NULL;
  VV_REQUIRE(parse_str(loose, 4, &l) == VV_OK);
  vv_jw_init(&w, &b2);
  VV_CHECK(write_tree(&w, l) && w.rc == VV_OK);
  VV_CHECK(buf_is(&b2, "{\"a\":\"\xc3\xa9/\xf0\x9f\x98\x80\",\"b\":[-1,{\"c\":null}]}"));
  VV_CHECK(vv_json_parse((const char *)b2.data, b2.len, 4, &l2) == VV_OK && tree_equal(l, l2));
  vv_json_free(l);
  vv_json_free(l2);
  vv_buf_free(&b2);

  vv_json_free(v);
  vv_buf_free(&b);
}

/* ---- allocation failure at every allocation ----
 * A second copy of the reader, compiled into this file with its allocator
 * redirected (failing the Nth call) and its exported names renamed so it
 * does not clash with the engine's copy. ASan's leak check proves that each
 * failure frees everything. */

static long fi_countdown = -1; /* allocations left before one fails; -1: never */
static long fi_calls;

static int fi_fail(void) {
  fi_calls++;
  if (fi_countdown < 0) return 0;
  return fi_countdown-- == 0;
}
static void *fi_malloc(size_t n) { return fi_fail() ? NULL : malloc(n); }
static void *fi_calloc(size_t n, size_t m) { return fi_fail() ? NULL : calloc(n, m); }
static void *fi_realloc(void *p, size_t n) { return fi_fail() ? NULL : realloc(p, n); }

#define malloc fi_malloc
#define calloc fi_calloc
#define realloc fi_realloc
#define vv_json_parse fi_json_parse
#define vv_json_free fi_json_free
#define vv_json_get fi_json_get
#define vv_json_get_type fi_json_get_type
#define vv_jw_init fi_jw_init
#define vv_jw_object_begin fi_jw_object_begin
#define vv_jw_object_end fi_jw_object_end
#define vv_jw_array_begin fi_jw_array_begin
#define vv_jw_array_end fi_jw_array_end
#define vv_jw_key fi_jw_key
#define vv_jw_string fi_jw_string
#define vv_jw_int fi_jw_int
#define vv_jw_bool fi_jw_bool
#define vv_jw_null fi_jw_null
/* json.h is already included (its guard keeps it out now), so declare the
 * renamed functions the copy calls before defining them. */
int fi_json_parse(const char *text, size_t len, unsigned max_depth, vv_json **out);
void fi_json_free(vv_json *v);
#include "session/json.c"
#undef malloc
#undef calloc
#undef realloc
#undef vv_json_parse
#undef vv_json_free
#undef vv_json_get
#undef vv_json_get_type
#undef vv_jw_init
#undef vv_jw_object_begin
#undef vv_jw_object_end
#undef vv_jw_array_begin
#undef vv_jw_array_end
#undef vv_jw_key
#undef vv_jw_string
#undef vv_jw_int
#undef vv_jw_bool
#undef vv_jw_null

static void check_every_allocation_failure(const char *doc, size_t len, unsigned max_depth) {
  /* Count the allocations of a successful parse, then fail each in turn. */
  vv_json *v = NULL;
  fi_countdown = -1;
  fi_calls = 0;
  if (fi_json_parse(doc, len, max_depth, &v) != VV_OK || !v) {
    VV_CHECK(!"the document parses");
    return;
  }
  vv_json *ref = v;
  long total = fi_calls;
  VV_CHECK(total > 20);
  for (long k = 0; k < total; k++) {
    VV_NOTE("failing allocation %ld of %ld", k + 1, total);
    fi_countdown = k;
    v = (vv_json *)1;
    VV_CHECK(fi_json_parse(doc, len, max_depth, &v) == VV_E_NOMEM);
    VV_CHECK(v == NULL);
    if (v && v != (vv_json *)1) fi_json_free(v);
  }
  fi_countdown = total; /* the first allocation past the last: never reached */
  VV_CHECK(fi_json_parse(doc, len, max_depth, &v) == VV_OK && v && tree_equal(v, ref));
  fi_json_free(v);
  fi_json_free(ref);
  fi_countdown = -1;
}

VV_TEST(allocation_failure_frees_everything) {
  vv_buf b = {0};
  VV_REQUIRE(write_manifest(&b) == VV_OK);
  check_every_allocation_failure((const char *)b.data, b.len, 4);
  vv_buf_free(&b);
  /* An object large enough to take the sorting duplicate check. */
  const char *big = "{\"k00\":[1,2,3,4,5,6,7,8,9],\"k01\":1,\"k02\":1,\"k03\":1,\"k04\":1,\"k05\":1,"
                    "\"k06\":1,\"k07\":1,\"k08\":1,\"k09\":1,\"k10\":1,\"k11\":1,\"k12\":1,"
                    "\"k13\":1,\"k14\":1,\"k15\":1,\"k16\":1,\"k17\":\"s\"}";
  check_every_allocation_failure(big, strlen(big), 2);
}

/* ---- mutation smoke test ---- */

static const unsigned char kInteresting[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '-', '0', '9',
                                              'u', 'e', '.', ' ', 0, 0x1f, 0x7f, 0x80, 0xbf, 0xc0,
                                              0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xff};

static size_t mutate(unsigned char *m, size_t n, size_t cap, uint64_t *st) {
  int rounds = 1 + (int)(vv_splitmix64(st) % 3);
  for (int r = 0; r < rounds; r++) {
    uint64_t x = vv_splitmix64(st);
    size_t at = n ? (size_t)(vv_splitmix64(st) % n) : 0;
    switch (x % 6) {
      case 0: /* bit flip */
        if (n) m[at] ^= (unsigned char)(1u << ((x >> 8) % 8));
        break;
      case 1: /* truncation */
        n = n ? (size_t)(vv_splitmix64(st) % n) : 0;
        break;
      case 2: /* insertion */
        if (n < cap) {
          memmove(m + at + 1, m + at, n - at);
          m[at] = (x >> 8) & 1 ? kInteresting[(x >> 16) % sizeof kInteresting] : (unsigned char)(x >> 16);
          n++;
        }
        break;
      case 3: { /* deletion of 1..8 bytes */
        size_t k = 1 + (size_t)((x >> 8) % 8);
        if (k > n - at) k = n - at;
        memmove(m + at, m + at + k, n - at - k);
        n -= k;
        break;
      }
      case 4: /* replacement with an interesting byte */
        if (n) m[at] = kInteresting[(x >> 8) % sizeof kInteresting];
        break;
      case 5: { /* duplicate a span elsewhere */
        size_t k = 1 + (size_t)((x >> 8) % 16);
        if (k > n - at) k = n - at;
        if (n + k > cap || !n) break;
        size_t to = (size_t)(vv_splitmix64(st) % (n + 1));
        unsigned char tmp[16];
        memcpy(tmp, m + at, k);
        memmove(m + to + k, m + to, n - to);
        memcpy(m + to, tmp, k);
        n += k;
        break;
      }
    }
  }
  return n;
}

VV_TEST(mutation_smoke) {
  vv_buf base = {0};
  VV_REQUIRE(write_manifest(&base) == VV_OK);
  size_t cap = base.len + 64;
  unsigned char *m = (unsigned char *)malloc(cap);
  VV_REQUIRE(m);

  /* Every proper prefix is refused; the whole document is accepted. */
  for (size_t n = 0; n <= base.len; n++) {
    vv_json *v = (vv_json *)1;
    int rc = parse_n((const char *)base.data, n, 8, &v);
    VV_NOTE("prefix %zu of %zu", n, base.len);
    VV_CHECK(n < base.len ? rc == VV_E_CORRUPT && v == NULL : rc == VV_OK);
    if (rc == VV_OK) vv_json_free(v);
  }

  clock_t t0 = clock();
  uint64_t st = 0x5eedf00dULL;
  int accepted = 0, refused = 0;
  for (int iter = 0; iter < 20000; iter++) {
    memcpy(m, base.data, base.len);
    size_t n = mutate(m, base.len, cap, &st);
    VV_NOTE("iteration %d, length %zu", iter, n);
    vv_json *v = (vv_json *)1;
    int rc = parse_n((const char *)m, n, 8, &v);
    VV_CHECK(rc == VV_OK || rc == VV_E_CORRUPT);
    if (rc != VV_OK) {
      VV_CHECK(v == NULL);
      refused++;
      continue;
    }
    accepted++;
    /* Whatever is accepted survives a write and re-read unchanged. */
    vv_buf b = {0};
    vv_jw w;
    vv_jw_init(&w, &b);
    if (write_tree(&w, v)) {
      VV_CHECK(w.rc == VV_OK && w.depth == 0);
      vv_json *v2 = NULL;
      VV_CHECK(vv_json_parse((const char *)b.data, b.len, 8, &v2) == VV_OK && v2 && tree_equal(v, v2));
      vv_json_free(v2);
    }
    vv_buf_free(&b);
    vv_json_free(v);
  }
  VV_NOTE("accepted %d refused %d", accepted, refused);
  printf("mutation_smoke: 20000 mutations, %d still valid, %.2f s\n", accepted,
         (double)(clock() - t0) / CLOCKS_PER_SEC);
  /* Not vacuous: some mutants (e.g. bit flips inside strings) stay valid. */
  VV_CHECK(accepted > 100 && refused > 10000);
  free(m);
  vv_buf_free(&base);
}

VV_TEST_MAIN()
