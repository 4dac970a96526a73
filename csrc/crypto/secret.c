/*
 * crypto/secret.c: guarded memory for passphrase copies (see secret.h).
 */
#include "secret.h"

#include <sodium.h>
#include <string.h>

char *vv_secret_dup(const char *src, size_t n) {
  if (sodium_init() < 0) return NULL;
  char *p = (char *)sodium_malloc(n ? n : 1);
  if (p && n) memcpy(p, src, n);
  return p;
}

void vv_secret_free(char *p) {
  if (p) sodium_free(p);
}
