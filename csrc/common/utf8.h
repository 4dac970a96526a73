/*
 * common/utf8.h: the one UTF-8 validity check for untrusted bytes
 * (RFC 3629 / Unicode Table 3-7: no overlongs, no surrogates, nothing
 * above U+10FFFF), ASCII eight bytes at a time, and the check of a list of
 * names (field paths) built on it.
 */
#ifndef VV_UTF8_H
#define VV_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool vv_utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (n - i >= 8) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (!(w & 0x8080808080808080ull)) {
        i += 8;
        continue;
      }
    }
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c == 0xe0) lo = 0xa0;      /* overlong */
      else if (c == 0xed) hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c == 0xf0) lo = 0x90;      /* overlong */
      else if (c == 0xf4) hi = 0x8f; /* above U+10FFFF */
    } else {
      return false; /* a continuation byte, C0/C1, F5..FF */
    }
    if (need > n - i - 1 || s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k <= need; k++)
      if ((s[i + k] & 0xc0) != 0x80) return false;
    i += need + 1;
  }
  return true;
}

/* n names (field paths), each 1..max bytes of UTF-8 without NUL, all
 * different: a quadratic check, for the few dozen a caller may hold. */
static inline bool vv_names_valid(const char *const *names, const uint32_t *lens, uint32_t n, uint32_t max) {
  for (uint32_t i = 0; i < n; i++) {
    if (!names[i] || lens[i] == 0 || lens[i] > max || memchr(names[i], 0, lens[i]) ||
        !vv_utf8_valid((const unsigned char *)names[i], lens[i]))
      return false;
    for (uint32_t j = 0; j < i; j++)
      if (lens[j] == lens[i] && !memcmp(names[j], names[i], lens[i])) return false;
  }
  return true;
}

#endif
