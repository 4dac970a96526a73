/*
 * test/c/fuzz/seeds.c: writes valid encodings as a starting corpus.
 *
 *   seeds <target> <dir>    e.g. seeds fuzz_chunk build/fuzz/corpus/fuzz_chunk
 *
 * Unknown targets get no seeds (exit 0), so new fuzz_*.c files need no
 * change here to run. Seeds are named seed-N and overwritten on each run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

static const char *g_dir;
static int g_n;

static void put(vv_buf *b) {
  char path[4096];
  snprintf(path, sizeof path, "%s/seed-%d", g_dir, g_n++);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f)) {
    perror(path);
    exit(1);
  }
  vv_buf_free(b);
}

static void must(int rc) {
  if (rc) {
    fprintf(stderr, "seeds: encode failed (%d)\n", rc);
    exit(1);
  }
}

static void chunk_seeds(void) {
  static const char *ids[] = {"a", NULL, "caf\xc3\xa9", "\xf0\x9f\x98\x80", "x"};
  static const char *metas[] = {"{}", NULL, "{\"k\":[1,2]}", NULL, ""};
  static const uint32_t dims[] = {1, 2, 3, 8};
  for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
    for (uint32_t count = 0; count <= 5; count += 1 + (count > 1)) {
      uint32_t slots[5], id_lens[5], meta_lens[5];
      float flat[5 * 8];
      const float *rows[5];
      for (uint32_t i = 0; i < count; i++) {
        slots[i] = i * 1000u;
        id_lens[i] = ids[i] ? (uint32_t)strlen(ids[i]) : 0;
        meta_lens[i] = metas[i] ? (uint32_t)strlen(metas[i]) : 0;
        rows[i] = flat + i * dims[d];
        for (uint32_t k = 0; k < dims[d]; k++) flat[i * dims[d] + k] = (float)i - 0.5f * (float)k;
      }
      vv_chunk_in in = {d * 300u, dims[d], count, slots, rows, ids, id_lens, metas, meta_lens};
      vv_buf b = {0};
      must(vv_chunk_encode(&in, &b));
      put(&b);
    }
  }
}

/* Format 1 (5-key header, 5-element nodes) and format 2 (a "pq" codebook
 * or null, a code or null per node). */
static void index_seeds(void) {
  static const uint32_t links[4][6] = {{1, 2, 3, 4, 5, 6}, {7, 8}, {9}, {0}};
  const uint32_t *lp[4] = {links[0], links[1], links[2], links[3]};
  static const uint32_t counts[4] = {6, 2, 1, 0};
  static const float cents[2 * 4 * 2] = {1, 0, -1, 0.5f, 2, 2, 0, -3, 0.25f, 4, -2, 1, 3, -1, 0, 8};
  static const uint8_t codes[4][2] = {{0, 1}, {3, 2}, {1, 1}, {2, 0}};
  const vv_codebook_in cb = {2, 4, 2, 16, cents};
  for (int fmt = 0; fmt < 3; fmt++) { /* 1; 2 with a codebook; 2 without */
    for (uint32_t count = 0; count <= 4; count++) {
      vv_buf b = {0};
      if (fmt == 0) must(vv_index_encode_begin(&b, count * 70000ull, (int)(count & 1), count));
      else must(vv_index_encode_begin_v2(&b, count * 70000ull, fmt == 1, count, fmt == 1 ? &cb : NULL));
      for (uint32_t i = 0; i < count; i++) {
        vv_node_in n = {.slot = i * 5u,
                        .id = i == 1 ? NULL : "n\xc3\xa9",
                        .id_len = i == 1 ? 0 : 3,
                        .chunk = i,
                        .row = i * 2u,
                        .nlevels = i,
                        .links = lp,
                        .counts = counts,
                        .v2 = fmt > 0,
                        .code = fmt > 0 && i != 2 ? codes[i] : NULL,
                        .code_len = fmt > 0 && i != 2 ? 2 : 0};
        must(vv_index_encode_node(&b, &n));
      }
      put(&b);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: seeds <target> <dir>\n");
    return 2;
  }
  g_dir = argv[2];
  if (strcmp(argv[1], "fuzz_chunk") == 0) chunk_seeds();
  else if (strcmp(argv[1], "fuzz_index") == 0) index_seeds();
  return 0;
}
