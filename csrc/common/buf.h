/*
 * common/buf.h: a growable byte buffer, used by encoders and I/O.
 */
#ifndef VV_BUF_H
#define VV_BUF_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../vecvault.h"

typedef struct vv_buf {
  unsigned char *data;
  size_t len;
  size_t cap;
} vv_buf;

/* Ensure room for `extra` more bytes. VV_OK or VV_E_NOMEM. */
static inline int vv_buf_reserve(vv_buf *b, size_t extra) {
  if (extra > SIZE_MAX - b->len) return VV_E_NOMEM;
  size_t need = b->len + extra;
  if (need <= b->cap) return VV_OK;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  unsigned char *p = (unsigned char *)realloc(b->data, cap);
  if (!p) return VV_E_NOMEM;
  b->data = p;
  b->cap = cap;
  return VV_OK;
}

static inline int vv_buf_append(vv_buf *b, const void *p, size_t n) {
  int rc = vv_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return VV_OK;
}

static inline void vv_buf_free(vv_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

#endif
