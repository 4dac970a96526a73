/*
 * common/buf.h: a growable byte buffer, used by encoders and I/O.
 */
#ifndef VV_BUF_H
#define VV_BUF_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../vecvault.h"
#include "bigmem.h"

typedef struct vv_buf {
  unsigned char *data;
  size_t len;
  size_t cap;
  int big; /* set before first use: blocks come from vv_big_alloc (bigmem.h), for
              buffers of megabytes that come and go */
} vv_buf;

/* Ensure room for `extra` more bytes. VV_OK or VV_E_NOMEM. */
VV_NODISCARD static inline int vv_buf_reserve(vv_buf *b, size_t extra) {
  if (extra > SIZE_MAX - b->len) return VV_E_NOMEM;
  size_t need = b->len + extra;
  if (need <= b->cap) return VV_OK;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  unsigned char *p;
  if (b->big) {
    p = (unsigned char *)vv_big_alloc(cap);
    if (!p) return VV_E_NOMEM;
    if (b->len) memcpy(p, b->data, b->len);
    vv_big_free(b->data, b->cap);
  } else {
    p = (unsigned char *)realloc(b->data, cap);
    if (!p) return VV_E_NOMEM;
  }
  b->data = p;
  b->cap = cap;
  return VV_OK;
}

VV_NODISCARD static inline int vv_buf_append(vv_buf *b, const void *p, size_t n) {
  int rc = vv_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return VV_OK;
}

static inline void vv_buf_free(vv_buf *b) {
  if (b->big) vv_big_free(b->data, b->cap);
  else free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

#endif
