/*
 * session/object.c: writing and verifying session objects (see object.h).
 */
#include "object.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#include "../common/buf.h"
#include "../vecvault.h"

static void make_header(unsigned char h[VV_OBJ_HEADER_BYTES], int kind, int encrypted, uint64_t seq, uint64_t len) {
  memcpy(h, VV_OBJ_MAGIC, 4);
  h[4] = VV_OBJ_VERSION;
  h[5] = (unsigned char)kind;
  h[6] = encrypted ? VV_OBJ_FLAG_ENCRYPTED : 0;
  h[7] = 0;
  vv_put_le64(h + 8, seq);
  vv_put_le64(h + 16, len);
}

/* AD = header || session id. */
static void make_ad(unsigned char ad[VV_OBJ_HEADER_BYTES + VV_SESSION_ID_BYTES], const unsigned char *header,
                    const unsigned char *session_id) {
  memcpy(ad, header, VV_OBJ_HEADER_BYTES);
  memcpy(ad + VV_OBJ_HEADER_BYTES, session_id, VV_SESSION_ID_BYTES);
}

int vv_sctx_init(vv_sctx *sc, const vv_io *io, const char *dir) {
  memset(sc, 0, sizeof *sc);
  sc->io = io ? io : vv_io_posix();
  sc->dir = dir;
  size_t n = strlen(dir) + sizeof "/objects";
  sc->objdir = (char *)malloc(n);
  if (!sc->objdir) return VV_E_NOMEM;
  snprintf(sc->objdir, n, "%s/objects", dir);
  return VV_OK;
}

void vv_sctx_destroy(vv_sctx *sc) {
  free(sc->objdir);
  sc->objdir = NULL;
}

char *vv_object_path(const vv_sctx *sc, const char *name) {
  size_t n = strlen(sc->objdir) + strlen(name) + 2;
  char *p = (char *)malloc(n);
  if (p) snprintf(p, n, "%s/%s", sc->objdir, name);
  return p;
}

static const char *kind_name(int kind) { return kind == VV_OBJ_KIND_CHUNK ? "chunk" : "index"; }

int vv_object_write(const vv_sctx *sc, int kind, uint64_t seq, const unsigned char *plain, size_t len,
                    vv_buf *buf, vv_objref *out, vv_error *err) {
  int enc = sc->kr != NULL;
  size_t total = VV_OBJ_HEADER_BYTES + (enc ? VV_NONCE_BYTES + VV_TAG_BYTES : 0) + len;
  buf->len = 0;
  int rc = vv_buf_reserve(buf, total);
  if (rc) return rc;
  unsigned char *h = buf->data;
  make_header(h, kind, enc, seq, len);
  if (enc) {
    unsigned char ad[VV_OBJ_HEADER_BYTES + VV_SESSION_ID_BYTES];
    make_ad(ad, h, sc->session_id);
    vv_key_purpose purpose = kind == VV_OBJ_KIND_CHUNK ? VV_KEY_CHUNKS : VV_KEY_INDEX;
    rc = vv_aead_seal(sc->kr, purpose, ad, sizeof ad, plain, len, h + VV_OBJ_HEADER_BYTES,
                      h + VV_OBJ_HEADER_BYTES + VV_NONCE_BYTES);
    if (rc) return rc;
  } else if (len) {
    memcpy(h + VV_OBJ_HEADER_BYTES, plain, len);
  }
  buf->len = total;
  unsigned char digest[VV_HASH_BYTES];
  vv_hash(buf->data, total, digest);
  vv_hex_encode(digest, VV_HASH_BYTES, out->name);
  out->bytes = total;
  char *path = vv_object_path(sc, out->name);
  if (!path) return VV_E_NOMEM;
  rc = vv_io_write_durable(sc->io, sc->objdir, path, buf->data, total);
  free(path);
  if (rc && err)
    snprintf(err->message, sizeof err->message, "writing %s object %.16s… failed: %s", kind_name(kind), out->name,
             *vv_io_last_error() ? vv_io_last_error() : vv_strerror(rc));
  return rc;
}

static int corrupt(vv_error *err, int kind, uint64_t seq, const char *name, const char *why) {
  if (err)
    snprintf(err->message, sizeof err->message, "%s object %s (seq %llu) is corrupt: %s", kind_name(kind), name,
             (unsigned long long)seq, why);
  return VV_E_CHUNK_CORRUPT;
}

int vv_object_read_into(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, vv_buf *buf,
                        const unsigned char **plain, size_t *len, vv_error *err) {
  *plain = NULL;
  *len = 0;
  char *path = vv_object_path(sc, ref->name);
  if (!path) return VV_E_NOMEM;
  /* Read at most the recorded size plus one byte, so a grown file is seen. */
  int rc = vv_io_read_file_buf(sc->io, path, (size_t)ref->bytes + 1, buf);
  free(path);
  if (rc == VV_E_NOT_FOUND) {
    if (err)
      snprintf(err->message, sizeof err->message, "%s object %s (seq %llu) is missing", kind_name(kind), ref->name,
               (unsigned long long)seq);
    return VV_E_CHUNK_MISSING;
  }
  if (rc == VV_E_CORRUPT) return corrupt(err, kind, seq, ref->name, "larger than recorded");
  if (rc) {
    if (err)
      snprintf(err->message, sizeof err->message, "reading %s object %s failed: %s", kind_name(kind), ref->name,
               *vv_io_last_error() ? vv_io_last_error() : vv_strerror(rc));
    return rc;
  }
  unsigned char *file = buf->data;
  size_t flen = buf->len;
  int enc = sc->kr != NULL;
  size_t overhead = VV_OBJ_HEADER_BYTES + (enc ? VV_NONCE_BYTES + VV_TAG_BYTES : 0);
  unsigned char digest[VV_HASH_BYTES];
  char hex[2 * VV_HASH_BYTES + 1];
  if (flen != ref->bytes) return corrupt(err, kind, seq, ref->name, "size differs from the manifest (truncated or extended)");
  vv_hash(file, flen, digest);
  vv_hex_encode(digest, VV_HASH_BYTES, hex);
  if (vv_ct_compare((const unsigned char *)hex, (const unsigned char *)ref->name, 2 * VV_HASH_BYTES) != 0)
    return corrupt(err, kind, seq, ref->name, "content hash does not match its name");
  const unsigned char *h = file;
  if (flen < overhead || memcmp(h, VV_OBJ_MAGIC, 4) != 0 || h[4] != VV_OBJ_VERSION || h[5] != kind ||
      h[6] != (enc ? VV_OBJ_FLAG_ENCRYPTED : 0) || h[7] != 0 || vv_get_le64(h + 8) != seq ||
      vv_get_le64(h + 16) != flen - overhead)
    return corrupt(err, kind, seq, ref->name, "header does not match (kind, sequence, length or encryption)");
  size_t plen = flen - overhead;
  unsigned char *body = file + VV_OBJ_HEADER_BYTES;
  if (enc) {
    unsigned char ad[VV_OBJ_HEADER_BYTES + VV_SESSION_ID_BYTES];
    make_ad(ad, h, sc->session_id);
    vv_key_purpose purpose = kind == VV_OBJ_KIND_CHUNK ? VV_KEY_CHUNKS : VV_KEY_INDEX;
    body += VV_NONCE_BYTES;
    if (vv_aead_open(sc->kr, purpose, ad, sizeof ad, file + VV_OBJ_HEADER_BYTES, body, plen + VV_TAG_BYTES, body))
      return corrupt(err, kind, seq, ref->name, "authentication failed (tampered, or from another session or slot)");
  }
  *plain = body;
  *len = plen;
  return VV_OK;
}

int vv_object_read(const vv_sctx *sc, const vv_objref *ref, int kind, uint64_t seq, unsigned char **plain,
                   size_t *len, vv_error *err) {
  vv_buf buf = {0};
  const unsigned char *p;
  int rc = vv_object_read_into(sc, ref, kind, seq, &buf, &p, len, err);
  if (rc) {
    vv_buf_free(&buf);
    *plain = NULL;
    return rc;
  }
  memmove(buf.data, p, *len);
  *plain = buf.data;
  return VV_OK;
}
