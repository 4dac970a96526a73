/*
 * test/c/fuzz/fuzz_filter.c: libFuzzer target for the attribute store's
 * record decoder and the filter program compiler (csrc/filter).
 *
 * Input: byte 0 picks the number of fields (0..4), byte 1 the number of
 * records (0..15); then each record as one length byte and its bytes; the
 * rest is a program body ('V' 'F' 1 is put in front of it).
 *
 * Every record must be accepted or refused with VV_E_BAD_METADATA, and
 * vv_attrs_set must agree with vv_attrs_check; an accepted record encodes
 * canonically (setting its encoding elsewhere encodes the same bytes).
 * Every program must compile or be refused with VV_E_BAD_FILTER; a compiled
 * one matches every slot without fault, estimates a selectivity in [0, 1],
 * and, when it has a path, enumerates sorted distinct candidates below the
 * high-water mark that include every matching slot.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter/attr.h"
#include "filter/filter.h"

#define MAX_RECORDS 16u

static void check(int ok) {
  if (!ok) abort();
}

static int encode_equal(vv_attrs *a, uint32_t x, uint32_t y) {
  vv_buf ex = {0}, ey = {0};
  check(vv_attrs_encode(a, x, &ex) == VV_OK && vv_attrs_encode(a, y, &ey) == VV_OK);
  int eq = ex.len == ey.len && (!ex.len || memcmp(ex.data, ey.data, ex.len) == 0);
  vv_buf_free(&ex);
  vv_buf_free(&ey);
  return eq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const paths[] = {"a", "b", "c.d", "e"};
  static const uint32_t lens[] = {1, 1, 3, 1};
  if (size < 2) return 0;
  uint32_t nf = data[0] % 5, nrec = data[1] % MAX_RECORDS;
  size_t at = 2;
  vv_attrs *a = NULL;
  check(vv_attrs_create(paths, lens, nf, &a) == VV_OK);
  for (uint32_t r = 0; r < nrec && at < size; r++) {
    size_t len = data[at++];
    if (len > size - at) len = size - at;
    unsigned char *rec = malloc(len ? len : 1); /* exact size: over-reads trip ASan */
    check(rec != NULL);
    if (len) memcpy(rec, data + at, len);
    at += len;
    int ck = vv_attrs_check(a, rec, len);
    int rc = vv_attrs_set(a, r, rec, len);
    check(ck == VV_OK || ck == VV_E_BAD_METADATA);
    check(rc == ck || (len == 0 && rc == VV_OK));
    if (rc == VV_OK) {
      vv_buf enc = {0};
      check(vv_attrs_encode(a, r, &enc) == VV_OK);
      check(vv_attrs_set(a, MAX_RECORDS, enc.data, enc.len) == VV_OK);
      check(encode_equal(a, r, MAX_RECORDS));
      vv_buf_free(&enc);
      vv_attrs_clear(a, MAX_RECORDS);
    }
    free(rec);
  }
  size_t plen = 3 + (size - at);
  unsigned char *prog = malloc(plen);
  check(prog != NULL);
  memcpy(prog, "VF\x01", 3);
  memcpy(prog + 3, data + at, size - at);
  vv_filter *f = NULL;
  int rc = vv_filter_compile(a, prog, plen, &f);
  check(rc == VV_OK || rc == VV_E_BAD_FILTER);
  if (rc == VV_OK) {
    int match[MAX_RECORDS + 1];
    for (uint32_t s = 0; s <= MAX_RECORDS; s++) match[s] = vv_filter_match(f, s);
    vv_filter_plan plan;
    check(vv_filter_estimate(f, nrec, &plan) == VV_OK);
    check(plan.selectivity >= 0 && plan.selectivity <= 1);
    uint32_t *cand = NULL;
    size_t n = 0;
    rc = vv_filter_candidates(f, MAX_RECORDS, &cand, &n);
    check(plan.has_path ? rc == VV_OK : rc == VV_E_INVALID);
    if (plan.has_path) {
      size_t j = 0;
      for (size_t i = 0; i < n; i++) check(cand[i] < MAX_RECORDS && (i == 0 || cand[i - 1] < cand[i]));
      for (uint32_t s = 0; s < MAX_RECORDS; s++) {
        if (!match[s]) continue;
        while (j < n && cand[j] < s) j++;
        check(j < n && cand[j] == s);
      }
    }
    free(cand);
    vv_filter_free(f);
  }
  free(prog);
  vv_attrs_free(a);
  return 0;
}
