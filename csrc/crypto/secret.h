/*
 * crypto/secret.h: guarded memory for secrets other than keys (passphrase
 * copies): sodium_malloc'd, guard-paged, wiped on free.
 */
#ifndef VV_SECRET_H
#define VV_SECRET_H

#include <stddef.h>

/* A guarded copy of n bytes (n may be 0), or NULL on failure. */
char *vv_secret_dup(const char *src, size_t n);
/* Wipes and frees; NULL is a no-op. */
void vv_secret_free(char *p);

#endif
