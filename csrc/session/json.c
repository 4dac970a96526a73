/*
 * session/json.c: the strict JSON reader and compact writer behind
 * session/json.h, for the session manifest.
 *
 * The reader is recursive descent over a hostile file. Recursion is bounded
 * by max_depth (itself capped at VV_JSON_MAX_DEPTH), every allocation is
 * checked and a failure frees the partial tree, arrays grow geometrically,
 * and duplicate keys are found by sorting, so no input is quadratic.
 */
#include "json.h"

#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 (shared by reader and writer) ---- */

/* Length of the well-formed UTF-8 sequence at p (Unicode Table 3-7: no
 * overlongs, no surrogates, nothing above U+10FFFF), or 0 if there is none
 * within `avail` bytes. */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;      /* overlong */
    else if (c == 0xED) hi = 0x9F; /* U+D800..U+DFFF */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;      /* overlong */
    else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0; /* continuation byte, C0/C1 (overlong), F5..FF */
  }
  if (avail < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return n;
}

static int utf8_valid(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t k = utf8_seq(p + i, n - i);
    if (!k) return 0;
    i += k;
  }
  return 1;
}

/* ---- reader ---- */

typedef struct reader {
  const unsigned char *s;
  size_t n;
  size_t pos;
  unsigned max_depth;
} reader;

static int parse_value(reader *r, unsigned depth, vv_json **out);

static void skip_ws(reader *r) {
  while (r->pos < r->n) {
    unsigned char c = r->s[r->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    r->pos++;
  }
}

/* The next byte, or -1 at the end. */
static int peek(const reader *r) {
  return r->pos < r->n ? r->s[r->pos] : -1;
}

static int hex4(const unsigned char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return 0;
    v = v << 4 | d;
  }
  *out = v;
  return 1;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | cp >> 6);
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | cp >> 12);
    o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | cp >> 18);
  o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* At an opening quote: decode the string into a malloc'd NUL-terminated
 * buffer (caller frees). Decoding never grows the text (an escape of 2, 6 or
 * 12 bytes yields at most 1, 3 or 4), so one allocation of the raw length
 * suffices. */
static int parse_string(reader *r, char **out, size_t *out_len) {
  const unsigned char *s = r->s;
  size_t start = r->pos + 1, end = start;
  while (end < r->n && s[end] != '"') end += s[end] == '\\' ? 2 : 1;
  if (end >= r->n) return VV_E_CORRUPT; /* unterminated */

  unsigned char *buf = (unsigned char *)malloc(end - start + 1);
  if (!buf) return VV_E_NOMEM;
  size_t o = 0, i = start;
  while (i < end) {
    unsigned char c = s[i];
    if (c < 0x20) goto corrupt;
    if (c >= 0x80) {
      size_t k = utf8_seq(s + i, end - i);
      if (!k) goto corrupt;
      memcpy(buf + o, s + i, k);
      o += k;
      i += k;
      continue;
    }
    if (c != '\\') {
      buf[o++] = c;
      i++;
      continue;
    }
    /* The scan above guarantees a byte after every backslash before end. */
    unsigned char e = s[i + 1];
    i += 2;
    switch (e) {
      case '"': buf[o++] = '"'; break;
      case '\\': buf[o++] = '\\'; break;
      case '/': buf[o++] = '/'; break;
      case 'b': buf[o++] = '\b'; break;
      case 'f': buf[o++] = '\f'; break;
      case 'n': buf[o++] = '\n'; break;
      case 'r': buf[o++] = '\r'; break;
      case 't': buf[o++] = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (end - i < 4 || !hex4(s + i, &cp)) goto corrupt;
        i += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) goto corrupt; /* lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end - i < 6 || s[i] != '\\' || s[i + 1] != 'u' || !hex4(s + i + 2, &lo) ||
              lo < 0xDC00 || lo > 0xDFFF)
            goto corrupt; /* high surrogate not followed by a low one */
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        o += put_utf8(buf + o, cp);
        break;
      }
      default:
        goto corrupt;
    }
  }
  buf[o] = '\0';
  r->pos = end + 1;
  *out = (char *)buf;
  *out_len = o;
  return VV_OK;

corrupt:
  free(buf);
  return VV_E_CORRUPT;
}

/* -?(0|[1-9][0-9]*) within int64; "-0" is refused so that every integer
 * has exactly one spelling. A '.', 'e' or 'E' after the digits is caught by
 * the caller as an unexpected byte. */
static int parse_int(reader *r, int64_t *out) {
  int neg = 0;
  if (peek(r) == '-') {
    neg = 1;
    r->pos++;
  }
  int c = peek(r);
  if (c < '0' || c > '9') return VV_E_CORRUPT;
  /* Accumulate the magnitude unsigned: |INT64_MIN| = INT64_MAX + 1. */
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  uint64_t mag = 0;
  if (c == '0') {
    r->pos++;
    c = peek(r);
    if (c >= '0' && c <= '9') return VV_E_CORRUPT; /* leading zero */
    if (neg) return VV_E_CORRUPT;                  /* -0 */
    *out = 0;
    return VV_OK;
  }
  while (c >= '0' && c <= '9') {
    uint64_t d = (uint64_t)(c - '0');
    if (mag > (limit - d) / 10) return VV_E_CORRUPT; /* mag * 10 + d > limit */
    mag = mag * 10 + d;
    r->pos++;
    c = peek(r);
  }
  /* Negating in unsigned arithmetic and converting back is well defined for
   * INT64_MIN too: the bit pattern is exact in two's complement. */
  if (neg) *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
  else *out = (int64_t)mag;
  return VV_OK;
}

static int parse_literal(reader *r, const char *word, size_t n) {
  if (r->n - r->pos < n || memcmp(r->s + r->pos, word, n) != 0) return VV_E_CORRUPT;
  r->pos += n;
  return VV_OK;
}

/* Grows a node's item arrays (and, for objects, its key arrays) to hold
 * at least one more entry: doubling keeps total work linear. */
static int grow(vv_json *v, size_t *cap) {
  if (v->len < *cap) return VV_OK;
  size_t ncap = *cap ? *cap * 2 : 4;
  if (ncap > SIZE_MAX / sizeof(void *) || ncap > SIZE_MAX / sizeof(size_t)) return VV_E_NOMEM;
  vv_json **items = (vv_json **)realloc(v->items, ncap * sizeof *items);
  if (!items) return VV_E_NOMEM;
  v->items = items;
  if (v->type == VV_JSON_OBJECT) {
    char **keys = (char **)realloc(v->keys, ncap * sizeof *keys);
    if (!keys) return VV_E_NOMEM;
    v->keys = keys;
    size_t *lens = (size_t *)realloc(v->key_lens, ncap * sizeof *lens);
    if (!lens) return VV_E_NOMEM;
    v->key_lens = lens;
  }
  *cap = ncap;
  return VV_OK;
}

typedef struct key_ref {
  const char *k;
  size_t len;
} key_ref;

static int key_cmp(const void *a, const void *b) {
  const key_ref *x = (const key_ref *)a, *y = (const key_ref *)b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(x->k, y->k, n) : 0;
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* VV_E_CORRUPT if two keys of the object have the same bytes. Small objects
 * (the manifest's) compare pairwise; larger ones sort copies of the key
 * references, so a hostile object of a million keys costs n log n. */
static int check_duplicates(const vv_json *v) {
  size_t n = v->len;
  if (n <= 16) {
    for (size_t i = 0; i < n; i++)
      for (size_t j = i + 1; j < n; j++)
        if (v->key_lens[i] == v->key_lens[j] && memcmp(v->keys[i], v->keys[j], v->key_lens[i]) == 0)
          return VV_E_CORRUPT;
    return VV_OK;
  }
  if (n > SIZE_MAX / sizeof(key_ref)) return VV_E_NOMEM;
  key_ref *refs = (key_ref *)malloc(n * sizeof *refs);
  if (!refs) return VV_E_NOMEM;
  for (size_t i = 0; i < n; i++) {
    refs[i].k = v->keys[i];
    refs[i].len = v->key_lens[i];
  }
  qsort(refs, n, sizeof *refs, key_cmp);
  int rc = VV_OK;
  for (size_t i = 1; i < n && rc == VV_OK; i++)
    if (key_cmp(&refs[i - 1], &refs[i]) == 0) rc = VV_E_CORRUPT;
  free(refs);
  return rc;
}

/* At '{'; `v` is an empty OBJECT node at `depth`, freed by the caller on
 * failure (its len always counts only complete entries). */
static int parse_object(reader *r, unsigned depth, vv_json *v) {
  size_t cap = 0;
  r->pos++;
  skip_ws(r);
  if (peek(r) == '}') {
    r->pos++;
    return VV_OK;
  }
  for (;;) {
    skip_ws(r);
    if (peek(r) != '"') return VV_E_CORRUPT;
    char *key;
    size_t klen;
    int rc = parse_string(r, &key, &klen);
    if (rc) return rc;
    skip_ws(r);
    if (peek(r) != ':') {
      free(key);
      return VV_E_CORRUPT;
    }
    r->pos++;
    vv_json *item;
    rc = parse_value(r, depth, &item);
    if (rc) {
      free(key);
      return rc;
    }
    rc = grow(v, &cap);
    if (rc) {
      free(key);
      vv_json_free(item);
      return rc;
    }
    v->keys[v->len] = key;
    v->key_lens[v->len] = klen;
    v->items[v->len] = item;
    v->len++;
    skip_ws(r);
    int c = peek(r);
    r->pos++;
    if (c == '}') break;
    if (c != ',') return VV_E_CORRUPT;
  }
  return check_duplicates(v);
}

/* At '['; as parse_object. */
static int parse_array(reader *r, unsigned depth, vv_json *v) {
  size_t cap = 0;
  r->pos++;
  skip_ws(r);
  if (peek(r) == ']') {
    r->pos++;
    return VV_OK;
  }
  for (;;) {
    vv_json *item;
    int rc = parse_value(r, depth, &item);
    if (rc) return rc;
    rc = grow(v, &cap);
    if (rc) {
      vv_json_free(item);
      return rc;
    }
    v->items[v->len++] = item;
    skip_ws(r);
    int c = peek(r);
    r->pos++;
    if (c == ']') return VV_OK;
    if (c != ',') return VV_E_CORRUPT;
  }
}

/* One value (after optional whitespace) inside `depth` open containers. */
static int parse_value(reader *r, unsigned depth, vv_json **out) {
  *out = NULL;
  skip_ws(r);
  int c = peek(r);
  if (c < 0) return VV_E_CORRUPT;
  if ((c == '{' || c == '[') && depth >= r->max_depth) return VV_E_CORRUPT;

  vv_json *v = (vv_json *)calloc(1, sizeof *v);
  if (!v) return VV_E_NOMEM;
  int rc;
  switch (c) {
    case '{':
      v->type = VV_JSON_OBJECT;
      rc = parse_object(r, depth + 1, v);
      break;
    case '[':
      v->type = VV_JSON_ARRAY;
      rc = parse_array(r, depth + 1, v);
      break;
    case '"':
      v->type = VV_JSON_STRING;
      rc = parse_string(r, &v->str, &v->len);
      break;
    case 't':
      v->type = VV_JSON_BOOL;
      v->boolean = 1;
      rc = parse_literal(r, "true", 4);
      break;
    case 'f':
      v->type = VV_JSON_BOOL;
      rc = parse_literal(r, "false", 5);
      break;
    case 'n':
      v->type = VV_JSON_NULL;
      rc = parse_literal(r, "null", 4);
      break;
    default:
      v->type = VV_JSON_INT;
      rc = (c == '-' || (c >= '0' && c <= '9')) ? parse_int(r, &v->integer) : VV_E_CORRUPT;
      break;
  }
  if (rc) {
    vv_json_free(v);
    return rc;
  }
  *out = v;
  return VV_OK;
}

int vv_json_parse(const char *text, size_t len, unsigned max_depth, vv_json **out) {
  if (!out) return VV_E_INVALID;
  *out = NULL;
  if (!text && len) return VV_E_INVALID;
  if (len == 0 || len > VV_JSON_MAX_INPUT) return VV_E_CORRUPT;
  const unsigned char *s = (const unsigned char *)text;
  /* A BOM would be refused as an unexpected byte anyway; say so explicitly. */
  if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) return VV_E_CORRUPT;

  reader r = {s, len, 0, max_depth < VV_JSON_MAX_DEPTH ? max_depth : VV_JSON_MAX_DEPTH};
  vv_json *v;
  int rc = parse_value(&r, 0, &v);
  if (rc) return rc;
  skip_ws(&r);
  if (r.pos != r.n) {
    vv_json_free(v);
    return VV_E_CORRUPT;
  }
  *out = v;
  return VV_OK;
}

/* Recursion depth is that of the tree, which the parser bounded. */
void vv_json_free(vv_json *v) {
  if (!v) return;
  for (size_t i = 0; v->items && i < v->len; i++) vv_json_free(v->items[i]);
  for (size_t i = 0; v->keys && i < v->len; i++) free(v->keys[i]);
  free(v->items);
  free(v->keys);
  free(v->key_lens);
  free(v->str);
  free(v);
}

const vv_json *vv_json_get(const vv_json *obj, const char *key) {
  if (!obj || !key || obj->type != VV_JSON_OBJECT) return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; i < obj->len; i++)
    if (obj->key_lens[i] == n && memcmp(obj->keys[i], key, n) == 0) return obj->items[i];
  return NULL;
}

const vv_json *vv_json_get_type(const vv_json *obj, const char *key, vv_json_type type) {
  const vv_json *v = vv_json_get(obj, key);
  return v && v->type == type ? v : NULL;
}

/* ---- writer ---- */

/* vv_jw.first[] flags, per level; level 0 is the top level. */
enum {
  JW_EMPTY = 1,  /* nothing written yet at this level */
  JW_OBJECT = 2, /* the level is an object (else an array, or the top) */
  JW_KEYED = 4   /* object: a key was written, its value is due */
};

#define JW_MAX_DEPTH (sizeof(((vv_jw *)0)->first) - 1)

static void jw_fail(vv_jw *w, int rc) {
  if (w->rc == VV_OK) w->rc = rc;
}

static void jw_put(vv_jw *w, const void *p, size_t n) {
  if (w->rc) return;
  int rc = vv_buf_append(w->out, p, n);
  if (rc) jw_fail(w, rc);
}

/* Checks a value may come here, and writes the comma it needs. 0 if not. */
static int jw_value(vv_jw *w) {
  if (!w || w->rc) return 0;
  unsigned char *f = &w->first[w->depth];
  if (w->depth == 0) {
    if (!(*f & JW_EMPTY)) { /* a second top-level value */
      jw_fail(w, VV_E_INVALID);
      return 0;
    }
  } else if (*f & JW_OBJECT) {
    if (!(*f & JW_KEYED)) { /* a value in an object without a key */
      jw_fail(w, VV_E_INVALID);
      return 0;
    }
    *f = (unsigned char)(*f & ~JW_KEYED); /* vv_jw_key wrote the comma */
  } else if (!(*f & JW_EMPTY)) {
    jw_put(w, ",", 1);
  }
  *f = (unsigned char)(*f & ~JW_EMPTY);
  return w->rc == VV_OK;
}

/* Escapes ", \ and control characters; passes everything else through. */
static void jw_quoted(vv_jw *w, const unsigned char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  jw_put(w, "\"", 1);
  size_t run = 0; /* start of the pending unescaped bytes */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    jw_put(w, s + run, i - run);
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t elen = 2;
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default:
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        elen = 6;
        break;
    }
    jw_put(w, esc, elen);
    run = i + 1;
  }
  jw_put(w, s + run, n - run);
  jw_put(w, "\"", 1);
}

void vv_jw_init(vv_jw *w, vv_buf *out) {
  if (!w) return;
  memset(w, 0, sizeof *w);
  w->out = out;
  w->first[0] = JW_EMPTY;
  if (!out) w->rc = VV_E_INVALID;
}

static void jw_begin(vv_jw *w, char open, unsigned char kind) {
  if (!jw_value(w)) return;
  if (w->depth >= JW_MAX_DEPTH) {
    jw_fail(w, VV_E_INVALID);
    return;
  }
  jw_put(w, &open, 1);
  if (w->rc) return;
  w->depth++;
  w->first[w->depth] = (unsigned char)(JW_EMPTY | kind);
}

static void jw_end(vv_jw *w, char close, unsigned char kind) {
  if (!w || w->rc) return;
  unsigned char f = w->first[w->depth];
  if (w->depth == 0 || (f & JW_OBJECT) != kind || (f & JW_KEYED)) {
    jw_fail(w, VV_E_INVALID);
    return;
  }
  jw_put(w, &close, 1);
  if (w->rc) return;
  w->depth--;
}

void vv_jw_object_begin(vv_jw *w) { jw_begin(w, '{', JW_OBJECT); }
void vv_jw_object_end(vv_jw *w) { jw_end(w, '}', JW_OBJECT); }
void vv_jw_array_begin(vv_jw *w) { jw_begin(w, '[', 0); }
void vv_jw_array_end(vv_jw *w) { jw_end(w, ']', 0); }

void vv_jw_key(vv_jw *w, const char *key) {
  if (!w || w->rc) return;
  unsigned char *f = &w->first[w->depth];
  size_t n = key ? strlen(key) : 0;
  if (!key || w->depth == 0 || !(*f & JW_OBJECT) || (*f & JW_KEYED) ||
      !utf8_valid((const unsigned char *)key, n)) {
    jw_fail(w, VV_E_INVALID);
    return;
  }
  if (!(*f & JW_EMPTY)) jw_put(w, ",", 1);
  *f = (unsigned char)((*f & ~JW_EMPTY) | JW_KEYED);
  jw_quoted(w, (const unsigned char *)key, n);
  jw_put(w, ":", 1);
}

void vv_jw_string(vv_jw *w, const char *s, size_t len) {
  if (!w || w->rc) return;
  /* Validate before jw_value so a refused string leaves no comma behind. */
  if ((!s && len) || (len && !utf8_valid((const unsigned char *)s, len))) {
    jw_fail(w, VV_E_INVALID);
    return;
  }
  if (!jw_value(w)) return;
  jw_quoted(w, (const unsigned char *)(s ? s : ""), len);
}

void vv_jw_int(vv_jw *w, int64_t v) {
  if (!jw_value(w)) return;
  char tmp[20]; /* 19 digits and a sign */
  size_t i = sizeof tmp;
  uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v; /* exact for INT64_MIN */
  do {
    tmp[--i] = (char)('0' + mag % 10);
    mag /= 10;
  } while (mag);
  if (v < 0) tmp[--i] = '-';
  jw_put(w, tmp + i, sizeof tmp - i);
}

void vv_jw_bool(vv_jw *w, int v) {
  if (!jw_value(w)) return;
  if (v) jw_put(w, "true", 4);
  else jw_put(w, "false", 5);
}

void vv_jw_null(vv_jw *w) {
  if (!jw_value(w)) return;
  jw_put(w, "null", 4);
}
