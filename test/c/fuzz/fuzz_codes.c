/*
 * test/c/fuzz/fuzz_codes.c: libFuzzer target for vv_codes_load, the
 * decoder of saved code parameters (quant/codes.h).
 *
 * Every input must load to VV_OK or VV_E_CORRUPT without reading outside
 * it (ASan) or undefined behaviour (UBSan). An accepted input must save
 * back to the same bytes (the layout has one encoding per value), and the
 * loaded parameters must encode, decode, and score a vector without fault.
 *
 * Well-formed blobs need an exact length, which random bytes rarely have
 * and no seed corpus provides; so an input starting with '!' is instead a
 * recipe: kind, dim, a and b from its next bytes, the header written
 * around them and the floats cycled from the rest, at the length the
 * header asks for. Then the float values, not the framing, are fuzzed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/codes.h"

static void check(int ok) {
  if (!ok) abort();
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int check_blob(const uint8_t *data, size_t size);

/* The blob a recipe describes, or 0 if it names an impossible shape. */
static int from_recipe(const uint8_t *r, size_t n) {
  if (n < 6) return 0;
  uint8_t kind = 1 + r[1] % 4;
  uint32_t dim = 1 + r[2] % 40, a = 1 + r[3] % 8, b = 1 + r[4] % 16;
  size_t floats;
  if (kind <= 2) {
    while (dim % a) a--;
    floats = (size_t)b * dim + (kind == 2 ? (size_t)dim * dim : 0);
  } else if (kind == 3) {
    a = 1 + a % 4, b = 0;
    floats = dim + (size_t)dim * dim;
  } else {
    a = 4, b = 0;
    floats = 2 * (size_t)dim;
  }
  size_t len = 24 + 4 * floats;
  uint8_t *blob = malloc(len);
  check(blob != NULL);
  memcpy(blob, "VVCQ\x01\x00", 6);
  blob[6] = kind;
  blob[7] = r[5] & 1;
  put32(blob + 8, dim);
  put32(blob + 12, a);
  put32(blob + 16, b);
  put32(blob + 20, 0);
  const uint8_t *src = r + 6;
  size_t ns = n - 6;
  for (size_t i = 0; i < 4 * floats; i++) blob[24 + i] = ns ? src[i % ns] : (uint8_t)i;
  check_blob(blob, len);
  free(blob);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size && data[0] == '!' && from_recipe(data, size)) return 0;
  return check_blob(data, size);
}

static int check_blob(const uint8_t *data, size_t size) {
  vv_codes *c = NULL;
  int rc = vv_codes_load(data, size, &c);
  check(rc == VV_OK || rc == VV_E_CORRUPT || rc == VV_E_NOMEM);
  if (rc != VV_OK) {
    check(c == NULL);
    return 0;
  }
  size_t len = 0;
  check(vv_codes_save(c, NULL, 0, &len) == VV_OK && len == size);
  uint8_t *again = malloc(len);
  check(again && vv_codes_save(c, again, len, &len) == VV_OK && memcmp(again, data, size) == 0);
  free(again);
  uint32_t dim = vv_codes_dim(c);
  float *x = calloc(dim, sizeof(float)), *y = calloc(dim, sizeof(float));
  uint8_t *code = calloc(1, vv_codes_code_bytes(c));
  void *state = malloc(vv_codes_state_bytes(c));
  check(x && y && code && state);
  for (uint32_t d = 0; d < dim; d++) x[d] = (float)(d % 7) - 3.0f;
  check(vv_codes_encode(c, x, code) == VV_OK);
  check(vv_codes_decode(c, code, y) == VV_OK);
  check(vv_codes_query(c, x, state) == VV_OK);
  float err;
  (void)vv_codes_distance(c, state, code);
  (void)vv_codes_distance_bound(c, state, code, &err);
  free(x);
  free(y);
  free(code);
  free(state);
  vv_codes_free(c);
  return 0;
}
