/*
 * test/c/test_filter.c: tests for csrc/filter (the attribute store and
 * filter programs).
 *
 * Owns: a reference written naively and apart from the engine (its own
 * record decoder into value arrays, a recursive evaluator of program bytes,
 * a recursive path-cost model), checked against vv_filter_match,
 * vv_filter_estimate and vv_filter_candidates on random records and random
 * programs, through churn; exact counts; posting lists that stay bounded
 * under repeated set and clear; the record round trip; hostile records and
 * programs (each byte truncated, deep nesting, limits, bad numbers, bad
 * UTF-8, long varints); and readers racing to rebuild a stale snapshot
 * (built under ThreadSanitizer too).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter/attr.h"
#include "filter/filter.h"
#include "vvtest.h"

/* ---- bytes ---- */

typedef struct bb {
  unsigned char *p;
  size_t n, cap;
} bb;

static void bb_put(bb *b, const void *src, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) abort();
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, src, n);
  b->n += n;
}

static void bb_byte(bb *b, unsigned v) {
  unsigned char c = (unsigned char)v;
  bb_put(b, &c, 1);
}

static void bb_varint(bb *b, uint64_t v) {
  do {
    unsigned c = v & 0x7f;
    v >>= 7;
    bb_byte(b, c | (v ? 0x80 : 0));
  } while (v);
}

static void bb_num(bb *b, double d) {
  uint64_t bits;
  memcpy(&bits, &d, 8);
  bb_byte(b, VV_VAL_NUMBER);
  for (int i = 0; i < 8; i++) bb_byte(b, (unsigned)(bits >> (8 * i)) & 0xff);
}

static void bb_str(bb *b, const char *s, size_t n) {
  bb_byte(b, VV_VAL_STRING);
  bb_varint(b, n);
  bb_put(b, s, n);
}

/* ---- random values ---- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng % n);
}

static const char *const kStrs[] = {"", "a", "b", "ab", "1", "10", "2.5", "\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC",
                                    "\xF0\x9F\x98\x80", "z\xC3\xA9", "\xEF\xBF\xBD", "B"};
#define NSTRS (sizeof kStrs / sizeof *kStrs)
static const double kNums[] = {0.0, -0.0, 1, 2.5, -3, 10, 1e300, -1e-300, 7};
#define NNUMS (sizeof kNums / sizeof *kNums)

/* One random value; `wide` also draws values no record holds. Records
 * now and then hold a value never seen before, so ranges also meet codes
 * newer than their snapshot. */
static uint32_t g_fresh;
static void put_value(bb *b, int wide) {
  uint32_t r = rnd(10);
  if (!wide && rnd(40) == 0) {
    char s[16];
    int n = snprintf(s, sizeof s, "f%u", g_fresh++);
    if (rnd(2)) bb_str(b, s, (size_t)n);
    else bb_num(b, 1000.5 + g_fresh);
  } else if (r == 0) {
    bb_byte(b, VV_VAL_NULL);
  } else if (r == 1) {
    bb_byte(b, VV_VAL_FALSE + rnd(2));
  } else if (r < 6) {
    bb_num(b, wide && rnd(6) == 0 ? 77.5 : kNums[rnd(NNUMS)]);
  } else if (wide && rnd(6) == 0) {
    bb_str(b, "zzz", 3);
  } else {
    const char *s = kStrs[rnd(NSTRS)];
    bb_str(b, s, strlen(s));
  }
}

static void put_cmp_operand(bb *b) {
  if (rnd(2)) bb_num(b, rnd(5) == 0 ? 77.5 : kNums[rnd(NNUMS)]);
  else {
    const char *s = rnd(6) == 0 ? "zzz" : kStrs[rnd(NSTRS)];
    bb_str(b, s, strlen(s));
  }
}

/* A record for nf fields: missing, empty, or 1..5 values with repeats. */
static void random_record(bb *b, uint32_t nf) {
  b->n = 0;
  for (uint32_t f = 0; f < nf; f++) {
    uint32_t r = rnd(10);
    if (r == 0) {
      bb_varint(b, 0);
    } else if (r == 1) {
      bb_varint(b, 1);
    } else {
      uint32_t n = r < 6 ? 1 : 1 + rnd(5);
      bb_varint(b, n + 1);
      size_t first = b->n;
      for (uint32_t i = 0; i < n; i++) {
        if (i && rnd(4) == 0) { /* repeat the first value */
          size_t len = b->n - first;
          unsigned char tmp[64];
          if (len <= sizeof tmp && i == 1) {
            memcpy(tmp, b->p + first, len);
            bb_put(b, tmp, len);
            continue;
          }
        }
        put_value(b, 0);
      }
    }
  }
}

/* ---- the reference: its own decoder and evaluator ---- */

typedef struct rval {
  int type;
  double num;
  const unsigned char *s;
  size_t len;
} rval;

static uint64_t ref_varint(const unsigned char **p) {
  uint64_t v = 0;
  int shift = 0;
  for (;;) {
    unsigned c = *(*p)++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
    shift += 7;
  }
}

static rval ref_value(const unsigned char **p) {
  rval v = {0};
  v.type = *(*p)++;
  if (v.type == VV_VAL_NUMBER) {
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits |= (uint64_t)(*p)[i] << (8 * i);
    memcpy(&v.num, &bits, 8);
    *p += 8;
  } else if (v.type == VV_VAL_STRING) {
    v.len = (size_t)ref_varint(p);
    v.s = *p;
    *p += v.len;
  }
  return v;
}

#define REF_MAXV 64
/* Field f of a record (NULL: never set or deleted): present, values. */
static int ref_field(const bb *rec, uint32_t f, rval *vals, int *n) {
  *n = 0;
  if (!rec || rec->n == 0) return 0;
  const unsigned char *p = rec->p;
  for (uint32_t i = 0;; i++) {
    uint64_t k = ref_varint(&p);
    for (uint64_t j = 1; j < k; j++) {
      rval v = ref_value(&p);
      if (i == f) vals[(*n)++] = v;
    }
    if (i == f) return k != 0;
  }
}

static int ref_eq(const rval *a, const rval *b) {
  if (a->type != b->type) return 0;
  if (a->type == VV_VAL_NUMBER) return a->num == b->num;
  if (a->type == VV_VAL_STRING) return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
  return 1;
}

/* Strings by bytes, unsigned. */
static int ref_order(const rval *a, const rval *b) {
  if (a->type == VV_VAL_NUMBER) return (a->num > b->num) - (a->num < b->num);
  for (size_t i = 0; i < a->len && i < b->len; i++)
    if (a->s[i] != b->s[i]) return a->s[i] < b->s[i] ? -1 : 1;
  return (a->len > b->len) - (a->len < b->len);
}

static int ref_eval(const unsigned char **p, const bb *rec) {
  unsigned kind = *(*p)++;
  rval vals[REF_MAXV];
  int n, present;
  switch (kind) {
  case 0:
    return 1;
  case 1:
  case 2: {
    uint64_t k = ref_varint(p);
    int r = kind == 1;
    for (uint64_t i = 0; i < k; i++) {
      int c = ref_eval(p, rec);
      r = kind == 1 ? r && c : r || c;
    }
    return r;
  }
  case 3:
    return !ref_eval(p, rec);
  case 4:
  case 5: {
    uint32_t f = (uint32_t)ref_varint(p);
    uint64_t k = kind == 4 ? 1 : ref_varint(p);
    present = ref_field(rec, f, vals, &n);
    int r = 0;
    for (uint64_t i = 0; i < k; i++) {
      rval x = ref_value(p);
      if (x.type == VV_VAL_NULL && !present) r = 1;
      for (int j = 0; j < n; j++)
        if (ref_eq(&vals[j], &x)) r = 1;
    }
    return r;
  }
  case 6: {
    uint32_t f = (uint32_t)ref_varint(p);
    unsigned op = *(*p)++;
    rval x = ref_value(p);
    present = ref_field(rec, f, vals, &n);
    for (int j = 0; j < n; j++) {
      if (vals[j].type != x.type) continue;
      int c = ref_order(&vals[j], &x);
      if ((op == 0 && c > 0) || (op == 1 && c >= 0) || (op == 2 && c < 0) || (op == 3 && c <= 0)) return 1;
    }
    return 0;
  }
  default: {
    uint32_t f = (uint32_t)ref_varint(p);
    return ref_field(rec, f, vals, &n);
  }
  }
}

static int ref_match(const bb *prog, const bb *rec) {
  const unsigned char *p = prog->p + 3;
  return ref_eval(&p, rec);
}

/* ---- random programs ---- */

static void gen_node(bb *b, uint32_t nf, int depth) {
  uint32_t r = rnd(depth >= 4 ? 5 : 10);
  if (r < 5) { /* a leaf */
    uint32_t f = rnd(nf), k = rnd(10);
    if (k < 3) {
      bb_byte(b, 4);
      bb_varint(b, f);
      put_value(b, 1);
    } else if (k < 5) {
      bb_byte(b, 5);
      bb_varint(b, f);
      uint32_t n = 1 + rnd(rnd(4) == 0 ? 12 : 4);
      bb_varint(b, n);
      for (uint32_t i = 0; i < n; i++) put_value(b, 1);
    } else if (k < 8) {
      bb_byte(b, 6);
      bb_varint(b, f);
      bb_byte(b, rnd(4));
      put_cmp_operand(b);
    } else if (k < 9) {
      bb_byte(b, 7);
      bb_varint(b, f);
    } else {
      bb_byte(b, 0);
    }
  } else if (r < 7) {
    bb_byte(b, 3);
    gen_node(b, nf, depth + 1);
  } else {
    bb_byte(b, r < 9 ? 1 : 2);
    uint32_t n = 1 + rnd(3);
    bb_varint(b, n);
    for (uint32_t i = 0; i < n; i++) gen_node(b, nf, depth + 1);
  }
}

static void random_program(bb *b, uint32_t nf) {
  b->n = 0;
  bb_put(b, "VF\x01", 3);
  gen_node(b, nf, 0);
}

/* ---- a store with its model ---- */

#define NF 4
#define NSLOTS 300

typedef struct world {
  vv_attrs *a;
  bb rec[NSLOTS]; /* n == 0: every field missing */
  int live[NSLOTS];
} world;

static vv_attrs *make_store(uint32_t nf) {
  static const char *paths[] = {"lang", "year", "tags", "author.name", "e", "f"};
  uint32_t lens[6];
  for (int i = 0; i < 6; i++) lens[i] = (uint32_t)strlen(paths[i]);
  vv_attrs *a = NULL;
  if (vv_attrs_create(paths, lens, nf, &a) != VV_OK) return NULL;
  return a;
}

static int world_set(world *w, uint32_t s) {
  random_record(&w->rec[s], NF);
  w->live[s] = 1;
  return vv_attrs_set(w->a, s, w->rec[s].p, w->rec[s].n);
}

static void world_clear(world *w, uint32_t s) {
  w->rec[s].n = 0;
  w->live[s] = 0;
  vv_attrs_clear(w->a, s);
}

static void world_init(world *w) {
  memset(w, 0, sizeof *w);
  w->a = make_store(NF);
  for (uint32_t s = 0; s < NSLOTS; s++)
    if (rnd(8) && world_set(w, s) != VV_OK) vvt_fail(__FILE__, __LINE__, "set %u failed", s);
}

static void world_churn(world *w, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    uint32_t s = rnd(NSLOTS);
    if (rnd(3) == 0) world_clear(w, s);
    else if (world_set(w, s) != VV_OK) vvt_fail(__FILE__, __LINE__, "set %u failed", s);
  }
}

static void world_free(world *w) {
  vv_attrs_free(w->a);
  for (uint32_t s = 0; s < NSLOTS; s++) free(w->rec[s].p);
}

static uint64_t world_nlive(const world *w) {
  uint64_t n = 0;
  for (uint32_t s = 0; s < NSLOTS; s++) n += (uint64_t)w->live[s];
  return n;
}

/* ---- the reference planner: which posting entries a path reads ---- */

static uint64_t postings_of(vv_attrs *a, uint32_t f, uint32_t code) {
  const uint32_t *slots;
  size_t n;
  vv_attrs_postings(a, f, code, &slots, &n);
  return n;
}

/* has a path? and its cost; advances *p past the node. */
static int ref_path(vv_attrs *a, const unsigned char **p, uint64_t *cost) {
  unsigned kind = *(*p)++;
  *cost = 0;
  switch (kind) {
  case 0:
    return 0;
  case 1:
  case 2: {
    uint64_t k = ref_varint(p), best = UINT64_MAX;
    int any = 0, all = 1;
    for (uint64_t i = 0; i < k; i++) {
      uint64_t c;
      int h = ref_path(a, p, &c);
      if (h) any = 1, best = c < best ? c : best;
      else all = 0;
      *cost += c;
    }
    if (kind == 1) {
      *cost = any ? best : 0;
      return any;
    }
    if (!all) *cost = 0;
    return all;
  }
  case 3: {
    uint64_t c;
    ref_path(a, p, &c);
    return 0;
  }
  case 4:
  case 5: {
    uint32_t f = (uint32_t)ref_varint(p);
    uint64_t k = kind == 4 ? 1 : ref_varint(p);
    int has_null = 0;
    uint32_t seen[64];
    int nseen = 0;
    for (uint64_t i = 0; i < k; i++) {
      rval x = ref_value(p);
      if (x.type == VV_VAL_NULL) has_null = 1;
      vv_value v = {x.type, x.num, (const char *)x.s, (uint32_t)x.len};
      uint32_t c = vv_attrs_lookup(a, f, &v), dup = 0;
      for (int j = 0; j < nseen; j++) dup |= seen[j] == c;
      if (c == VV_CODE_NONE || dup) continue;
      seen[nseen++] = c;
      *cost += postings_of(a, f, c);
    }
    if (has_null) *cost = 0;
    return !has_null;
  }
  case 6: {
    uint32_t f = (uint32_t)ref_varint(p);
    unsigned op = *(*p)++;
    rval x = ref_value(p);
    for (uint32_t c = 0; c < vv_attrs_ncodes(a, f); c++) {
      vv_value v;
      vv_attrs_value(a, f, c, &v);
      rval r = {v.type, v.num, (const unsigned char *)v.str, v.len};
      if (r.type != x.type) continue;
      int o = ref_order(&r, &x);
      if ((op == 0 && o > 0) || (op == 1 && o >= 0) || (op == 2 && o < 0) || (op == 3 && o <= 0))
        *cost += postings_of(a, f, c);
    }
    return 1;
  }
  default:
    ref_varint(p);
    return 0;
  }
}

/* Every check of one program against the world. */
static void check_program(world *w, const bb *prog) {
  vv_filter *f = NULL;
  VV_CHECK(vv_filter_compile(w->a, prog->p, prog->n, &f) == VV_OK);
  if (!f) return;
  int all = 1;
  uint32_t nmatch = 0;
  for (uint32_t s = 0; s < NSLOTS + 5; s++) {
    int want = ref_match(prog, s < NSLOTS ? &w->rec[s] : NULL);
    int got = vv_filter_match(f, s);
    if (got != want) {
      vvt_fail(__FILE__, __LINE__, "slot %u: match %d, reference %d", s, got, want);
      break;
    }
    if (s < NSLOTS && w->live[s]) {
      all &= want;
      nmatch += (uint32_t)want;
    }
  }
  if (vv_filter_is_true(f)) VV_CHECK(all);
  vv_filter_plan plan;
  uint64_t nlive = world_nlive(w);
  VV_CHECK(vv_filter_estimate(f, nlive, &plan) == VV_OK);
  VV_CHECK(plan.selectivity >= 0 && plan.selectivity <= 1);
  uint64_t want_cost;
  const unsigned char *p = prog->p + 3;
  int want_path = ref_path(w->a, &p, &want_cost);
  VV_CHECK(plan.has_path == want_path);
  if (plan.has_path) {
    VV_CHECK(plan.path_cost == want_cost);
    uint32_t *cand = NULL;
    size_t n = 99;
    VV_CHECK(vv_filter_candidates(f, NSLOTS, &cand, &n) == VV_OK);
    VV_CHECK(n <= plan.path_cost);
    for (size_t i = 0; i < n; i++) {
      VV_CHECK(cand[i] < NSLOTS);
      if (i) VV_CHECK(cand[i - 1] < cand[i]);
    }
    size_t j = 0, covered = 0;
    for (uint32_t s = 0; s < NSLOTS; s++) {
      if (!w->live[s] || !vv_filter_match(f, s)) continue;
      while (j < n && cand[j] < s) j++;
      covered += j < n && cand[j] == s;
    }
    VV_CHECK(covered == nmatch);
    free(cand);
  } else {
    uint32_t *cand = NULL;
    size_t n = 0;
    VV_CHECK(vv_filter_candidates(f, NSLOTS, &cand, &n) == VV_E_INVALID);
  }
  vv_filter_free(f);
}

VV_TEST(match_estimate_and_candidates_agree_with_the_reference_through_churn) {
  world w;
  world_init(&w);
  VV_REQUIRE(w.a);
  bb prog = {0};
  for (int round = 0; round < 6; round++) {
    VV_NOTE("round %d", round);
    for (int i = 0; i < 400; i++) {
      random_program(&prog, NF);
      check_program(&w, &prog);
      if (i % 40 == 39) world_churn(&w, 3); /* too few to make snapshots stale */
    }
    world_churn(&w, 150);
  }
  free(prog.p);
  world_free(&w);
}

VV_TEST(counts_and_presence_are_exact_after_churn) {
  world w;
  world_init(&w);
  VV_REQUIRE(w.a);
  world_churn(&w, 2000);
  for (uint32_t f = 0; f < NF; f++) {
    uint64_t present = 0;
    for (uint32_t s = 0; s < NSLOTS; s++) {
      rval vals[REF_MAXV];
      int n;
      present += (uint64_t)ref_field(w.live[s] ? &w.rec[s] : NULL, f, vals, &n);
    }
    VV_CHECK(vv_attrs_present(w.a, f) == present);
    for (uint32_t c = 0; c < vv_attrs_ncodes(w.a, f); c++) {
      vv_value v;
      vv_attrs_value(w.a, f, c, &v);
      rval x = {v.type, v.num, (const unsigned char *)v.str, v.len};
      uint64_t count = 0;
      for (uint32_t s = 0; s < NSLOTS; s++) {
        rval vals[REF_MAXV];
        int n, hit = 0;
        ref_field(w.live[s] ? &w.rec[s] : NULL, f, vals, &n);
        for (int i = 0; i < n; i++) hit |= ref_eq(&vals[i], &x);
        count += (uint64_t)hit;
      }
      VV_CHECK(vv_attrs_count(w.a, f, c) == count);
      VV_CHECK(vv_attrs_lookup(w.a, f, &v) == c);
      /* postings: a superset of the holders, and never far beyond them */
      const uint32_t *slots;
      size_t n;
      vv_attrs_postings(w.a, f, c, &slots, &n);
      VV_CHECK(n <= 2 * count + 17);
      uint64_t held = 0;
      for (uint32_t s = 0; s < NSLOTS; s++) {
        int present2, in = 0;
        const uint32_t *codes;
        uint32_t k;
        vv_attrs_get(w.a, f, s, &present2, &codes, &k);
        for (uint32_t i = 0; i < k; i++) in |= codes[i] == c;
        if (!in) continue;
        held++;
        int listed = 0;
        for (size_t i = 0; i < n; i++) listed |= slots[i] == s;
        VV_CHECK(listed);
      }
      VV_CHECK(held == count);
    }
  }
  world_free(&w);
}

VV_TEST(minus_zero_is_zero_and_types_stay_apart) {
  vv_attrs *a = make_store(1);
  VV_REQUIRE(a);
  bb r = {0}, p = {0};
  bb_varint(&r, 2);
  bb_num(&r, -0.0);
  VV_CHECK(vv_attrs_set(a, 0, r.p, r.n) == VV_OK);
  r.n = 0;
  bb_varint(&r, 2);
  bb_str(&r, "1", 1);
  VV_CHECK(vv_attrs_set(a, 1, r.p, r.n) == VV_OK);
  vv_value zero = {VV_VAL_NUMBER, 0.0, NULL, 0}, one = {VV_VAL_NUMBER, 1.0, NULL, 0};
  VV_CHECK(vv_attrs_lookup(a, 0, &zero) == 0);
  VV_CHECK(vv_attrs_lookup(a, 0, &one) == VV_CODE_NONE);
  vv_buf out = {0};
  VV_CHECK(vv_attrs_encode(a, 0, &out) == VV_OK);
  VV_CHECK(out.len == 10 && out.data[9] == 0); /* stored as +0 */
  vv_buf_free(&out);
  /* EQ 0 matches slot 0; EQ 1 (a number) does not match "1" */
  bb_put(&p, "VF\x01\x04\x00", 5);
  bb_num(&p, 0.0);
  vv_filter *f = NULL;
  VV_REQUIRE(vv_filter_compile(a, p.p, p.n, &f) == VV_OK);
  VV_CHECK(vv_filter_match(f, 0) && !vv_filter_match(f, 1));
  vv_filter_free(f);
  p.n = 0;
  bb_put(&p, "VF\x01\x04\x00", 5);
  bb_num(&p, 1.0);
  VV_REQUIRE(vv_filter_compile(a, p.p, p.n, &f) == VV_OK);
  VV_CHECK(!vv_filter_match(f, 0) && !vv_filter_match(f, 1));
  vv_filter_free(f);
  free(r.p);
  free(p.p);
  vv_attrs_free(a);
}

VV_TEST(strings_order_by_bytes_not_utf16) {
  /* U+FF61 sorts before U+1F600 by code point, after it in UTF-16 */
  vv_value a = {VV_VAL_STRING, 0, "\xEF\xBD\xA1", 3}, b = {VV_VAL_STRING, 0, "\xF0\x9F\x98\x80", 4};
  VV_CHECK(vv_value_cmp(&a, &b) < 0 && vv_value_cmp(&b, &a) > 0 && vv_value_cmp(&a, &a) == 0);
  vv_value p = {VV_VAL_STRING, 0, "ab", 2}, q = {VV_VAL_STRING, 0, "abc", 3};
  VV_CHECK(vv_value_cmp(&p, &q) < 0);
}

VV_TEST(records_round_trip_as_value_sets) {
  world w;
  world_init(&w);
  VV_REQUIRE(w.a);
  world_churn(&w, 300);
  vv_attrs *b = make_store(NF);
  VV_REQUIRE(b);
  for (uint32_t s = 0; s < NSLOTS + 3; s++) {
    vv_buf out = {0};
    VV_CHECK(vv_attrs_encode(w.a, s, &out) == VV_OK);
    VV_CHECK(vv_attrs_check(w.a, out.data, out.len) == VV_OK);
    bb enc = {out.data, out.len, out.cap};
    const bb *model = s < NSLOTS ? &w.rec[s] : NULL;
    for (uint32_t f = 0; f < NF; f++) {
      rval x[REF_MAXV], y[REF_MAXV];
      int nx, ny;
      int px = ref_field(&enc, f, x, &nx), py = ref_field(model, f, y, &ny);
      VV_CHECK(px == py);
      for (int i = 0; i < nx; i++) /* no repeats, each in the model */
        for (int j = 0; j < nx; j++) VV_CHECK(i == j || !ref_eq(&x[i], &x[j]));
      for (int i = 0; i < nx; i++) {
        int in = 0;
        for (int j = 0; j < ny; j++) in |= ref_eq(&x[i], &y[j]);
        VV_CHECK(in);
      }
      for (int j = 0; j < ny; j++) {
        int in = 0;
        for (int i = 0; i < nx; i++) in |= ref_eq(&x[i], &y[j]);
        VV_CHECK(in);
      }
    }
    /* the encoding sets an equal slot elsewhere, which encodes the same */
    VV_CHECK(vv_attrs_set(b, s, out.data, out.len) == VV_OK);
    vv_buf again = {0};
    VV_CHECK(vv_attrs_encode(b, s, &again) == VV_OK);
    VV_CHECK(again.len == out.len && (!out.len || memcmp(again.data, out.data, out.len) == 0));
    vv_buf_free(&again);
    vv_buf_free(&out);
  }
  vv_attrs_free(b);
  world_free(&w);
}

VV_TEST(postings_and_memory_stay_bounded_under_churn_of_the_same_slots) {
  vv_attrs *a = make_store(2);
  VV_REQUIRE(a);
  bb r = {0};
  size_t after_warmup = 0;
  for (int round = 0; round < 4000; round++) {
    for (uint32_t s = 0; s < 50; s++) {
      r.n = 0;
      bb_varint(&r, 2);
      bb_num(&r, (double)((s + (uint32_t)round) % 3));
      bb_varint(&r, 3);
      bb_str(&r, "x", 1);
      bb_str(&r, round % 2 ? "y" : "z", 1);
      VV_CHECK(vv_attrs_set(a, s, r.p, r.n) == VV_OK);
      if ((s + (uint32_t)round) % 7 == 0) vv_attrs_clear(a, s);
    }
    if (round == 20) after_warmup = vv_attrs_memory(a);
  }
  size_t end = vv_attrs_memory(a);
  VV_CHECK(after_warmup > 0 && end <= after_warmup + after_warmup / 2);
  /* one slot losing and regaining a value many others hold: its repeats
   * in that value's list are dropped too */
  for (int round = 0; round < 2000; round++) {
    r.n = 0;
    bb_varint(&r, round % 2 ? 0 : 2);
    if (round % 2 == 0) bb_num(&r, 1);
    bb_varint(&r, 0);
    VV_CHECK(vv_attrs_set(a, 60, r.p, r.n) == VV_OK);
  }
  for (uint32_t f = 0; f < 2; f++)
    for (uint32_t c = 0; c < vv_attrs_ncodes(a, f); c++) {
      const uint32_t *slots;
      size_t n;
      vv_attrs_postings(a, f, c, &slots, &n);
      VV_CHECK(n <= 2 * vv_attrs_count(a, f, c) + 17);
    }
  free(r.p);
  vv_attrs_free(a);
}

VV_TEST(a_posting_list_shrinks_when_its_holders_leave) {
  vv_attrs *a = make_store(1);
  VV_REQUIRE(a);
  VV_REQUIRE(vv_attrs_reserve(a, 400) == VV_OK);
  bb r = {0};
  bb_varint(&r, 2);
  bb_str(&r, "v", 1);
  const uint32_t *slots;
  size_t n;
  /* two holders fit in the list's struct; 21 need a block, which goes
   * again once 19 of them leave */
  for (uint32_t s = 0; s < 2; s++) VV_CHECK(vv_attrs_set(a, s, r.p, r.n) == VV_OK);
  size_t two = vv_attrs_memory(a);
  for (uint32_t s = 2; s < 21; s++) VV_CHECK(vv_attrs_set(a, s, r.p, r.n) == VV_OK);
  VV_CHECK(vv_attrs_memory(a) > two);
  for (uint32_t s = 2; s < 21; s++) vv_attrs_clear(a, s);
  VV_CHECK(vv_attrs_memory(a) == two);
  vv_attrs_postings(a, 0, 0, &slots, &n);
  VV_CHECK(n == 2 && slots[0] + slots[1] == 1);
  /* 400 holders, then one: the list shrinks to a few entries */
  for (uint32_t s = 0; s < 400; s++) VV_CHECK(vv_attrs_set(a, s, r.p, r.n) == VV_OK);
  size_t full = vv_attrs_memory(a);
  for (uint32_t s = 1; s < 400; s++) vv_attrs_clear(a, s);
  vv_attrs_postings(a, 0, 0, &slots, &n);
  VV_CHECK(vv_attrs_count(a, 0, 0) == 1 && n >= 1 && n <= 2 + 17);
  VV_CHECK(vv_attrs_memory(a) + 300 * sizeof(uint32_t) < full);
  free(r.p);
  vv_attrs_free(a);
}

/* A store whose field 0 holds one number per slot (slot % 10) and field 1
 * one string ("s" + slot % 7), for exact estimates. */
static vv_attrs *single_valued(uint32_t n) {
  vv_attrs *a = make_store(2);
  if (!a) return NULL;
  bb r = {0};
  for (uint32_t s = 0; s < n; s++) {
    char str[2] = {(char)('a' + s % 7), 0};
    r.n = 0;
    bb_varint(&r, 2);
    bb_num(&r, (double)(s % 10));
    bb_varint(&r, 2);
    bb_str(&r, str, 1);
    if (vv_attrs_set(a, s, r.p, r.n) != VV_OK) abort();
  }
  free(r.p);
  return a;
}

static double estimate_of(vv_attrs *a, const bb *p, uint64_t nlive) {
  vv_filter *f = NULL;
  vv_filter_plan plan = {0};
  if (vv_filter_compile(a, p->p, p->n, &f) != VV_OK || vv_filter_estimate(f, nlive, &plan) != VV_OK) plan.selectivity = -1;
  vv_filter_free(f);
  return plan.selectivity;
}

VV_TEST(estimates_are_exact_for_eq_in_and_a_fresh_snapshot) {
  vv_attrs *a = single_valued(1000);
  VV_REQUIRE(a);
  bb p = {0};
  bb_put(&p, "VF\x01\x04\x00", 5);
  bb_num(&p, 3);
  VV_CHECK(estimate_of(a, &p, 1000) == 100.0 / 1000);
  p.n = 0;
  bb_put(&p, "VF\x01\x05\x01\x03", 6);
  bb_str(&p, "a", 1);
  bb_str(&p, "b", 1);
  bb_str(&p, "nope", 4);
  VV_CHECK(estimate_of(a, &p, 1000) == (143.0 + 143.0) / 1000);
  /* a range: exact right after its snapshot is (re)built */
  p.n = 0;
  bb_put(&p, "VF\x01\x06\x00\x01", 6); /* year >= 7 */
  bb_num(&p, 7);
  VV_CHECK(estimate_of(a, &p, 1000) == 300.0 / 1000);
  /* move every slot to 9: stale by far, so the next reader rebuilds */
  bb r = {0};
  for (uint32_t s = 0; s < 1000; s++) {
    r.n = 0;
    bb_varint(&r, 2);
    bb_num(&r, s < 500 ? 9 : 2);
    bb_varint(&r, 0);
    VV_CHECK(vv_attrs_set(a, s, r.p, r.n) == VV_OK);
  }
  VV_CHECK(estimate_of(a, &p, 1000) == 500.0 / 1000);
  /* a value newer than the snapshot counts exactly too */
  r.n = 0;
  bb_varint(&r, 2);
  bb_num(&r, 100);
  bb_varint(&r, 0);
  VV_CHECK(vv_attrs_set(a, 0, r.p, r.n) == VV_OK);
  /* (the snapshot, not stale after one change, still counts slot 0 under 9) */
  VV_CHECK(estimate_of(a, &p, 1000) == 501.0 / 1000);
  p.n = 0;
  bb_put(&p, "VF\x01\x06\x00\x00", 6); /* year > 50 */
  bb_num(&p, 50);
  VV_CHECK(estimate_of(a, &p, 1000) == 1.0 / 1000);
  {
    vv_filter *f = NULL;
    vv_filter_plan plan;
    uint32_t *cand = NULL;
    size_t n = 0;
    VV_REQUIRE(vv_filter_compile(a, p.p, p.n, &f) == VV_OK);
    VV_CHECK(vv_filter_match(f, 0) && !vv_filter_match(f, 1));
    VV_CHECK(vv_filter_estimate(f, 1000, &plan) == VV_OK && plan.has_path && plan.path_cost == 1);
    VV_CHECK(vv_filter_candidates(f, 1000, &cand, &n) == VV_OK && n == 1 && cand[0] == 0);
    free(cand);
    vv_filter_free(f);
  }
  p.n = 0;
  bb_put(&p, "VF\x01\x07\x01", 5); /* exists, author missing everywhere now */
  VV_CHECK(estimate_of(a, &p, 1000) == 0);
  VV_CHECK(estimate_of(a, &p, 0) == 0);
  free(r.p);
  free(p.p);
  vv_attrs_free(a);
}

/* AND of a lower and an upper bound on one field: the interval's count,
 * not the product of two broad shares, and (single-valued field) the
 * interval's postings as the path; with an array value in the field the
 * path falls back to one bound, still a superset. */
VV_TEST(two_bounds_on_one_field_estimate_and_enumerate_their_interval) {
  vv_attrs *a = single_valued(1000); /* field 0: s % 10 */
  VV_REQUIRE(a);
  bb p = {0};
  bb_put(&p, "VF\x01\x01\x02\x06\x00\x01", 8); /* AND(f0 >= 4, f0 < 5) */
  bb_num(&p, 4);
  bb_put(&p, "\x06\x00\x02", 3);
  bb_num(&p, 5);
  VV_CHECK(estimate_of(a, &p, 1000) == 100.0 / 1000); /* not 0.6 x 0.5 */
  vv_filter *f = NULL;
  vv_filter_plan plan;
  uint32_t *cand = NULL;
  size_t n = 0;
  VV_REQUIRE(vv_filter_compile(a, p.p, p.n, &f) == VV_OK);
  VV_CHECK(vv_filter_estimate(f, 1000, &plan) == VV_OK && plan.has_path && plan.path_cost == 100);
  VV_CHECK(vv_filter_candidates(f, 1000, &cand, &n) == VV_OK && n == 100);
  for (size_t i = 0; i < n; i++) VV_CHECK(cand[i] % 10 == 4 && vv_filter_match(f, cand[i]));
  free(cand);
  vv_filter_free(f);
  /* An array value in the field: two elements may meet one bound each, so the
   * interval's postings are not a superset; the path is one bound's. */
  bb r = {0};
  bb_varint(&r, 3);
  bb_num(&r, 0);
  bb_num(&r, 9);
  bb_varint(&r, 0);
  VV_REQUIRE(vv_attrs_set(a, 7, r.p, r.n) == VV_OK); /* [0, 9]: >= 4 by 9, < 5 by 0 */
  VV_REQUIRE(vv_filter_compile(a, p.p, p.n, &f) == VV_OK);
  VV_CHECK(vv_filter_match(f, 7));
  VV_CHECK(vv_filter_estimate(f, 1000, &plan) == VV_OK && plan.has_path && plan.path_cost > 100);
  VV_CHECK(vv_filter_candidates(f, 1000, &cand, &n) == VV_OK);
  int has7 = 0;
  for (size_t i = 0; i < n; i++) has7 |= cand[i] == 7;
  VV_CHECK(has7);
  free(cand);
  vv_filter_free(f);
  free(r.p);
  free(p.p);
  vv_attrs_free(a);
}

/* ---- hostile input ---- */

static int compile_status(vv_attrs *a, const unsigned char *p, size_t n) {
  unsigned char *copy = malloc(n ? n : 1); /* exact size: over-reads trip ASan */
  if (!copy) abort();
  memcpy(copy, p, n);
  vv_filter *f = NULL;
  int rc = vv_filter_compile(a, copy, n, &f);
  if (rc == VV_OK) {
    for (uint32_t s = 0; s < 4; s++) (void)vv_filter_match(f, s);
    vv_filter_free(f);
  } else if (f) {
    rc = 1000;
  }
  free(copy);
  return rc;
}

static int check_status(vv_attrs *a, const unsigned char *p, size_t n) {
  unsigned char *copy = malloc(n ? n : 1);
  if (!copy) abort();
  memcpy(copy, p, n);
  int rc = vv_attrs_check(a, copy, n);
  free(copy);
  return rc;
}

VV_TEST(truncated_programs_and_records_are_refused_at_every_byte) {
  world w;
  world_init(&w);
  VV_REQUIRE(w.a);
  bb prog = {0};
  for (int i = 0; i < 60; i++) {
    random_program(&prog, NF);
    VV_CHECK(compile_status(w.a, prog.p, prog.n) == VV_OK);
    for (size_t k = 0; k < prog.n; k++) VV_CHECK(compile_status(w.a, prog.p, k) == VV_E_BAD_FILTER);
    bb_byte(&prog, 0);
    VV_CHECK(compile_status(w.a, prog.p, prog.n) == VV_E_BAD_FILTER); /* trailing */
  }
  for (uint32_t s = 0; s < 40; s++) {
    if (!w.live[s] || w.rec[s].n == 0) continue;
    bb *r = &w.rec[s];
    vv_buf before = {0};
    VV_CHECK(vv_attrs_encode(w.a, s, &before) == VV_OK);
    for (size_t k = 0; k < r->n; k++) {
      VV_CHECK(check_status(w.a, r->p, k) == VV_E_BAD_METADATA);
      if (k) VV_CHECK(vv_attrs_set(w.a, s, r->p, k) == VV_E_BAD_METADATA);
    }
    bb_byte(r, 0);
    VV_CHECK(check_status(w.a, r->p, r->n) == VV_E_BAD_METADATA);
    VV_CHECK(vv_attrs_set(w.a, s, r->p, r->n) == VV_E_BAD_METADATA);
    r->n--;
    vv_buf after = {0};
    VV_CHECK(vv_attrs_encode(w.a, s, &after) == VV_OK);
    VV_CHECK(after.len == before.len && memcmp(after.data, before.data, before.len) == 0);
    vv_buf_free(&before);
    vv_buf_free(&after);
  }
  free(prog.p);
  world_free(&w);
}

VV_TEST(deep_and_huge_programs_hit_their_limits) {
  vv_attrs *a = make_store(2);
  VV_REQUIRE(a);
  bb p = {0};
  /* 100000 NOTs around TRUE */
  bb_put(&p, "VF\x01", 3);
  for (int i = 0; i < 100000; i++) bb_byte(&p, 3);
  bb_byte(&p, 0);
  VV_CHECK(compile_status(a, p.p, p.n) == VV_E_BAD_FILTER);
  /* 31 NOTs + a leaf is 32 deep: fine; 32 NOTs is one too many */
  for (int depth = 31; depth <= 32; depth++) {
    p.n = 0;
    bb_put(&p, "VF\x01", 3);
    for (int i = 0; i < depth; i++) bb_byte(&p, 3);
    bb_byte(&p, 7);
    bb_byte(&p, 0);
    VV_CHECK(compile_status(a, p.p, p.n) == (depth == 31 ? VV_OK : VV_E_BAD_FILTER));
  }
  /* an AND claiming more children than a program may hold */
  p.n = 0;
  bb_put(&p, "VF\x01\x01", 4);
  bb_varint(&p, 1u << 30);
  bb_byte(&p, 0);
  VV_CHECK(compile_status(a, p.p, p.n) == VV_E_BAD_FILTER);
  /* a flat OR of 20000 nodes is too many with its own node; 19999 children fit */
  for (uint32_t n = 19999; n <= 20000; n++) {
    p.n = 0;
    bb_put(&p, "VF\x01\x02", 4);
    bb_varint(&p, n);
    for (uint32_t i = 0; i < n; i++) bb_byte(&p, 0);
    VV_CHECK(compile_status(a, p.p, p.n) == (n == 19999 ? VV_OK : VV_E_BAD_FILTER));
  }
  /* IN: 65536 values fine, 65537 refused, 0 refused */
  for (uint32_t n = 65536; n <= 65537; n++) {
    p.n = 0;
    bb_put(&p, "VF\x01\x05\x00", 5);
    bb_varint(&p, n);
    for (uint32_t i = 0; i < n; i++) bb_num(&p, i);
    VV_CHECK(compile_status(a, p.p, p.n) == (n == 65536 ? VV_OK : VV_E_BAD_FILTER));
  }
  p.n = 0;
  bb_put(&p, "VF\x01\x05\x00\x00", 6);
  VV_CHECK(compile_status(a, p.p, p.n) == VV_E_BAD_FILTER);
  free(p.p);
  vv_attrs_free(a);
}

VV_TEST(malformed_values_fields_and_headers_are_typed_errors) {
  vv_attrs *a = make_store(2);
  VV_REQUIRE(a);
  static const char *const bad_utf8[] = {"\xC0\xAF", "\xED\xA0\x80", "\x80", "\xF4\x90\x80\x80", "\xE2\x82",
                                          "\xFF"};
  bb p = {0}, r = {0};
  const double bad_nums[] = {NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 3; i++) {
    p.n = 0;
    bb_put(&p, "VF\x01\x04\x00", 5);
    bb_num(&p, bad_nums[i]);
    VV_CHECK(compile_status(a, p.p, p.n) == VV_E_BAD_FILTER);
    r.n = 0;
    bb_varint(&r, 2);
    bb_num(&r, bad_nums[i]);
    bb_varint(&r, 0);
    VV_CHECK(check_status(a, r.p, r.n) == VV_E_BAD_METADATA);
  }
  for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
    p.n = 0;
    bb_put(&p, "VF\x01\x06\x01\x00", 6);
    bb_str(&p, bad_utf8[i], strlen(bad_utf8[i]));
    VV_CHECK(compile_status(a, p.p, p.n) == VV_E_BAD_FILTER);
    r.n = 0;
    bb_varint(&r, 0);
    bb_varint(&r, 2);
    bb_str(&r, bad_utf8[i], strlen(bad_utf8[i]));
    VV_CHECK(check_status(a, r.p, r.n) == VV_E_BAD_METADATA);
  }
  /* programs: each on its own line, all refused */
  static const struct {
    const char *b;
    size_t n;
  } progs[] = {
      {"VF\x02\x00", 4},                        /* version */
      {"XF\x01\x00", 4},                        /* magic */
      {"VF\x01", 3},                            /* no node */
      {"VF\x01\x08", 4},                        /* unknown node */
      {"VF\x01\x07\x02", 5},                    /* field out of range */
      {"VF\x01\x07\x80\x00", 6},                /* field as a long varint */
      {"VF\x01\x01\x00", 5},                    /* AND of nothing */
      {"VF\x01\x02\x00", 5},                    /* OR of nothing */
      {"VF\x01\x06\x00\x04\x04\x00", 8},        /* op 4 */
      {"VF\x01\x06\x00\x00\x00", 7},            /* CMP against null */
      {"VF\x01\x06\x00\x00\x02", 7},            /* CMP against true */
      {"VF\x01\x04\x00\x05", 6},                /* unknown value type */
      {"VF\x01\x04\x00\x04\x80\x00", 8},        /* string length as a long varint */
      {"VF\x01\x04\x00\x04\x05" "ab", 9},       /* string past the end */
      {"VF\x01\x05\x00\x80\x00\x00", 8},        /* IN count as a long varint */
      {"VF\x01\x07\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 14}, /* a huge field */
  };
  for (size_t i = 0; i < sizeof progs / sizeof *progs; i++) {
    VV_NOTE("program %zu", i);
    VV_CHECK(compile_status(a, (const unsigned char *)progs[i].b, progs[i].n) == VV_E_BAD_FILTER);
  }
  VV_NOTE("%s", "");
  /* records */
  static const struct {
    const char *b;
    size_t n;
  } recs[] = {
      {"\x80\x00\x00", 3},          /* field count as a long varint */
      {"\x00", 1},                  /* one field of two */
      {"\x00\x00\x00", 3},          /* trailing */
      {"\x02\x05\x00", 3},          /* unknown value type */
      {"\x02\x04\x81\x00" "a\x00", 6}, /* string length as a long varint */
      {"\x00\x02\x04\x03" "ab", 6}, /* string past the end */
  };
  for (size_t i = 0; i < sizeof recs / sizeof *recs; i++) {
    VV_NOTE("record %zu", i);
    VV_CHECK(check_status(a, (const unsigned char *)recs[i].b, recs[i].n) == VV_E_BAD_METADATA);
  }
  VV_NOTE("%s", "");
  /* too many values in one field, and too long a string */
  r.n = 0;
  bb_varint(&r, VV_ATTR_MAX_VALUES + 2);
  for (uint32_t i = 0; i <= VV_ATTR_MAX_VALUES; i++) bb_byte(&r, VV_VAL_NULL);
  bb_varint(&r, 0);
  VV_CHECK(check_status(a, r.p, r.n) == VV_E_BAD_METADATA);
  r.n = 0;
  bb_varint(&r, VV_ATTR_MAX_VALUES + 1);
  for (uint32_t i = 0; i < VV_ATTR_MAX_VALUES; i++) bb_byte(&r, VV_VAL_NULL);
  bb_varint(&r, 0);
  VV_CHECK(check_status(a, r.p, r.n) == VV_OK);
  char *big = malloc(VV_ATTR_MAX_STRING + 1);
  VV_REQUIRE(big);
  memset(big, 'x', VV_ATTR_MAX_STRING + 1);
  for (uint32_t len = VV_ATTR_MAX_STRING; len <= VV_ATTR_MAX_STRING + 1; len++) {
    r.n = 0;
    bb_varint(&r, 2);
    bb_str(&r, big, len);
    bb_varint(&r, 0);
    VV_CHECK(check_status(a, r.p, r.n) == (len == VV_ATTR_MAX_STRING ? VV_OK : VV_E_BAD_METADATA));
  }
  for (uint32_t s = 5; s < 8; s++) { /* the longest strings, each in a slab of its own */
    big[0] = (char)('a' + s);
    r.n = 0;
    bb_varint(&r, 3);
    bb_str(&r, big, VV_ATTR_MAX_STRING);
    bb_str(&r, big, 3);
    bb_varint(&r, 0);
    VV_CHECK(vv_attrs_set(a, s, r.p, r.n) == VV_OK);
    vv_value v = {VV_VAL_STRING, 0, big, VV_ATTR_MAX_STRING};
    VV_CHECK(vv_attrs_count(a, 0, vv_attrs_lookup(a, 0, &v)) == 1);
  }
  VV_CHECK(vv_attrs_memory(a) >= 3u * VV_ATTR_MAX_STRING);
  free(big);
  /* a bad record leaves the slot as it was */
  r.n = 0;
  bb_varint(&r, 2);
  bb_str(&r, "keep", 4);
  bb_varint(&r, 1);
  VV_CHECK(vv_attrs_set(a, 3, r.p, r.n) == VV_OK);
  vv_buf before = {0}, after = {0};
  VV_CHECK(vv_attrs_encode(a, 3, &before) == VV_OK);
  r.n = 0;
  bb_varint(&r, 3);
  bb_str(&r, "new", 3);
  bb_num(&r, NAN);
  bb_varint(&r, 0);
  VV_CHECK(vv_attrs_set(a, 3, r.p, r.n) == VV_E_BAD_METADATA);
  VV_CHECK(vv_attrs_encode(a, 3, &after) == VV_OK);
  VV_CHECK(after.len == before.len && memcmp(after.data, before.data, before.len) == 0);
  vv_value keep = {VV_VAL_STRING, 0, "keep", 4};
  VV_CHECK(vv_attrs_count(a, 0, vv_attrs_lookup(a, 0, &keep)) == 1);
  vv_buf_free(&before);
  vv_buf_free(&after);
  free(p.p);
  free(r.p);
  vv_attrs_free(a);
}

VV_TEST(store_paths_are_checked) {
  const char *paths[] = {"a", "a", "b\xC0", ""};
  uint32_t lens[] = {1, 1, 2, 0};
  vv_attrs *a = (vv_attrs *)1;
  VV_CHECK(vv_attrs_create(paths, lens, 2, &a) == VV_E_INVALID && a == NULL);
  VV_CHECK(vv_attrs_create(paths + 2, lens + 2, 1, &a) == VV_E_INVALID);
  VV_CHECK(vv_attrs_create(paths + 3, lens + 3, 1, &a) == VV_E_INVALID);
  VV_CHECK(vv_attrs_create(paths, lens, VV_ATTR_MAX_FIELDS + 1, &a) == VV_E_INVALID);
  VV_CHECK(vv_attrs_create(paths, lens, 1, &a) == VV_OK);
  uint32_t len;
  const char *p = vv_attrs_path(a, 0, &len);
  VV_CHECK(len == 1 && p[0] == 'a' && vv_attrs_nfields(a) == 1);
  vv_attrs_free(a);
  vv_attrs_free(NULL);
  vv_filter_free(NULL);
}

/* ---- readers at once: snapshots rebuilt while others hold theirs ---- */

#define NTHREADS 4

typedef struct reader_arg {
  vv_attrs *a;
  pthread_barrier_t *start;
  const bb *progs;
  int nprogs;
  const uint32_t *want; /* per program: matching slots */
  int ok;
} reader_arg;

static void *reader(void *arg) {
  reader_arg *r = arg;
  r->ok = 1;
  pthread_barrier_wait(r->start);
  for (int rep = 0; rep < 3; rep++)
    for (int i = 0; i < r->nprogs; i++) {
      const vv_attr_sorted *s = NULL;
      if (vv_attrs_sorted(r->a, (uint32_t)i % 2, &s) != VV_OK || s->prefix[0] != 0) r->ok = 0;
      vv_filter *f = NULL;
      vv_filter_plan plan;
      if (vv_filter_compile(r->a, r->progs[i].p, r->progs[i].n, &f) != VV_OK) {
        r->ok = 0;
        vv_attrs_sorted_release(r->a, s);
        continue;
      }
      if (vv_filter_estimate(f, 2000, &plan) != VV_OK || !plan.has_path) r->ok = 0;
      uint32_t n = 0;
      for (uint32_t slot = 0; slot < 2000; slot++) n += (uint32_t)vv_filter_match(f, slot);
      if (n != r->want[i]) r->ok = 0;
      uint32_t *cand = NULL;
      size_t nc = 0;
      if (vv_filter_candidates(f, 2000, &cand, &nc) != VV_OK || nc < n) r->ok = 0;
      free(cand);
      vv_filter_free(f);
      vv_attrs_sorted_release(r->a, s);
    }
  return NULL;
}

VV_TEST(readers_share_and_rebuild_snapshots_at_once) {
  vv_attrs *a = single_valued(2000);
  VV_REQUIRE(a);
  /* snapshots now, then enough writes to make them stale before the
   * readers start; one old snapshot stays held throughout */
  const vv_attr_sorted *held = NULL;
  for (uint32_t f = 0; f < 2; f++) {
    const vv_attr_sorted *s;
    VV_REQUIRE(vv_attrs_sorted(a, f, &s) == VV_OK);
    if (f == 0) held = s;
    else vv_attrs_sorted_release(a, s);
  }
  uint32_t held_n = held->n;
  bb r = {0};
  for (uint32_t s = 0; s < 1000; s++) {
    char str[3] = {'n', (char)('a' + s % 20), 0};
    r.n = 0;
    bb_varint(&r, 2);
    bb_num(&r, 20 + s % 50);
    bb_varint(&r, 2);
    bb_str(&r, str, 2);
    VV_REQUIRE(vv_attrs_set(a, s, r.p, r.n) == VV_OK);
  }
  free(r.p);
  bb progs[8] = {{0}};
  uint32_t want[8];
  for (int i = 0; i < 8; i++) {
    bb_put(&progs[i], "VF\x01\x06", 4);
    bb_varint(&progs[i], (uint32_t)i % 2);
    bb_byte(&progs[i], (unsigned)i % 4);
    if (i % 2 == 0) bb_num(&progs[i], 5 + 7 * i);
    else bb_str(&progs[i], i < 4 ? "c" : "nk", i < 4 ? 1 : 2);
    vv_filter *f = NULL;
    VV_REQUIRE(vv_filter_compile(a, progs[i].p, progs[i].n, &f) == VV_OK);
    want[i] = 0;
    for (uint32_t slot = 0; slot < 2000; slot++) want[i] += (uint32_t)vv_filter_match(f, slot);
    vv_filter_free(f);
  }
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, NTHREADS);
  pthread_t th[NTHREADS];
  reader_arg args[NTHREADS];
  for (int t = 0; t < NTHREADS; t++) {
    args[t] = (reader_arg){a, &start, progs, 8, want, 0};
    VV_REQUIRE(pthread_create(&th[t], NULL, reader, &args[t]) == 0);
  }
  for (int t = 0; t < NTHREADS; t++) {
    pthread_join(th[t], NULL);
    VV_CHECK(args[t].ok);
  }
  pthread_barrier_destroy(&start);
  const vv_attr_sorted *now;
  VV_CHECK(vv_attrs_sorted(a, 0, &now) == VV_OK);
  VV_CHECK(now != held && now->n > held_n); /* rebuilt, and the held one intact */
  VV_CHECK(held->n == held_n && held->prefix[held->n] == 2000);
  vv_attrs_sorted_release(a, now);
  vv_attrs_sorted_release(a, held);
  for (int i = 0; i < 8; i++) free(progs[i].p);
  vv_attrs_free(a);
}

VV_TEST_MAIN()
