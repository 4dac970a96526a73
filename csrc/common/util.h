/*
 * common/util.h: small inline helpers shared by every engine module:
 * checked allocation sizes, hashing and a seedable random generator.
 */
#ifndef VV_UTIL_H
#define VV_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VV_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__) || defined(__clang__)
#define VV_LIKELY(x) __builtin_expect(!!(x), 1)
#define VV_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VV_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define VV_LIKELY(x) (x)
#define VV_UNLIKELY(x) (x)
#define VV_PREFETCH(p) ((void)(p))
#endif

/* a * b, or 0 with *overflow set if it does not fit in size_t. */
static inline size_t vv_mul_size(size_t a, size_t b, int *overflow) {
  if (a != 0 && b > SIZE_MAX / a) {
    *overflow = 1;
    return 0;
  }
  return a * b;
}

/* Little-endian integers in byte buffers (file formats), on any host. */
static inline void vv_put_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void vv_put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t vv_get_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t vv_get_le64(const unsigned char *p) {
  return (uint64_t)vv_get_le32(p) | (uint64_t)vv_get_le32(p + 4) << 32;
}

static inline uint64_t vv_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform double in (0, 1]. */
static inline double vv_unit_double(uint64_t r) {
  return ((double)(r >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

/* 64-bit FNV-1a, finished with a mixer so the low bits are usable for tables. */
static inline uint64_t vv_hash_bytes(const void *data, size_t len) {
  const unsigned char *p = (const unsigned char *)data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

#endif
