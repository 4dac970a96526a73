/*
 * test/c/test_index3_writer.c: the index segment writer
 * (session/writer.c) as it carries version 4's additions into pages.
 *
 * Owns: a segment written through vv_swriter_segment_begin/node/end with
 * field paths and attribute records large enough to fill several pages,
 * read back page by page (session/paged.c, codec/index3.c): only page 0
 * lists the paths, every node's record arrives intact in node order, and a
 * segment begun without paths carries none (the later base segments and
 * the deltas). Codec-level rules are test_index3.c's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/index3.h"
#include "common/status.h"
#include "session/paged.h"
#include "session/writer.h"
#include "support.h"
#include "vvtest.h"

#define NODES 300u
#define REC_BYTES 2000u /* about 128 nodes a page (VV_INDEX_PAGE_BYTES) */

static const char *const k_paths[] = {"lang", "tags"};
static const uint32_t k_lens[] = {4, 4};

/* Node i's record: its length and bytes depend on i (0 for every 50th). */
static uint32_t rec_len(uint32_t i) { return i % 50 == 0 ? 0 : REC_BYTES - i % 7; }
static void rec_fill(uint32_t i, unsigned char *out) {
  for (uint32_t j = 0; j < rec_len(i); j++) out[j] = (unsigned char)(i * 31 + j);
}

/* Writes one segment of NODES free slots, each with its record, and reads
 * it back: *pages, the fields page 0 lists, and whether every node came
 * back with its record in order. */
static void write_and_read(const char *dir, const vv_fields_in *fields, uint32_t *pages, uint32_t *nfields_page0,
                           uint32_t *nfields_later, uint32_t *bad) {
  vv_swriter w;
  vv_error err = {{0}};
  VV_REQUIRE(vv_swriter_open(&w, NULL, dir, &err) == VV_OK);
  static const unsigned char sid[VV_SESSION_ID_BYTES] = {1, 2, 3};
  vv_swriter_seal_with(&w, NULL, sid);
  static unsigned char recs[NODES][REC_BYTES];
  vv_mseg g = {0};
  g.seq = 5;
  g.count = NODES;
  VV_REQUIRE(vv_swriter_segment_begin(&w, &g, 1, NULL, fields) == VV_OK);
  for (uint32_t i = 0; i < NODES; i++) {
    rec_fill(i, recs[i]);
    vv_node_in n = {.slot = i, .attrs = recs[i], .attrs_len = rec_len(i)};
    VV_REQUIRE(vv_swriter_segment_node(&w, &n) == VV_OK);
  }
  VV_REQUIRE(vv_swriter_segment_end(&w, 1, &g) == VV_OK);

  vv_buf file = {0};
  vv_ptable t;
  VV_REQUIRE(vv_paged_read_file(&w.sc, &g.ref, VV_OBJ_KIND_INDEX, g.seq, g.count, 0, &file, &t, &err) == VV_OK);
  *pages = t.npages;
  *nfields_page0 = *nfields_later = 0;
  *bad = 0;
  uint32_t at = 0;
  vv_index3_reader *r = malloc(sizeof *r);
  VV_REQUIRE(r != NULL);
  for (uint32_t pg = 0; pg < t.npages; pg++) {
    const unsigned char *plain;
    size_t plen;
    uint64_t seq;
    int base;
    uint32_t count, nblocks;
    VV_REQUIRE(vv_paged_open_page(&w.sc, &g.ref, VV_OBJ_KIND_INDEX, g.seq, &t, pg, file.data, &plain, &plen, &err) ==
               VV_OK);
    VV_REQUIRE(vv_index3_decode_begin(r, plain, plen, &seq, &base, &count, &nblocks) == VV_OK);
    if (pg == 0) *nfields_page0 = r->nfields;
    else *nfields_later += r->nfields;
    if (pg == 0 && r->nfields)
      for (uint32_t f = 0; f < r->nfields; f++)
        *bad += r->field_len[f] != k_lens[f] || memcmp(r->field_ptr[f], k_paths[f], k_lens[f]);
    vv_node_view v;
    const uint32_t *l32[VV_CODEC_MAX_LEVELS];
    int rc;
    while ((rc = vv_index3_decode_next(r, &v, l32)) == VV_OK) {
      unsigned char want[REC_BYTES];
      rec_fill(at, want);
      *bad += v.slot != at || !v.attrs || v.attrs_len != rec_len(at) || memcmp(v.attrs, want, v.attrs_len);
      at++;
    }
    VV_CHECK(rc == VV_END);
  }
  VV_CHECK(at == NODES);
  free(r);
  vv_ptable_free(&t);
  vv_buf_free(&file);
  vv_swriter_close(&w);
}

VV_TEST(fields_on_page_zero_only_records_on_every_page) {
  char dir[64];
  VV_REQUIRE(make_root(dir) == 0);
  vv_fields_in f = {2, k_paths, k_lens};
  uint32_t pages, nf0, nf_later, bad;
  write_and_read(dir, &f, &pages, &nf0, &nf_later, &bad);
  VV_CHECK(pages >= 2); /* the records fill several pages */
  VV_CHECK(nf0 == 2 && nf_later == 0 && bad == 0);
}

VV_TEST(no_fields_when_begun_without) {
  char dir[64];
  VV_REQUIRE(make_root(dir) == 0);
  uint32_t pages, nf0, nf_later, bad;
  write_and_read(dir, NULL, &pages, &nf0, &nf_later, &bad);
  VV_CHECK(pages >= 2 && nf0 == 0 && nf_later == 0 && bad == 0);
}

VV_TEST_MAIN()
