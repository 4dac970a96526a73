/*
 * session/reader.c: opening a session directory for reading, and reading
 * a manifest without a key (see reader.h).
 */
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets.h"

/* Reads and parses <dir>/manifest.json. */
static int read_manifest(const vv_io *io, const char *dir, unsigned char **file, size_t *len, vv_manifest *m,
                         const unsigned char **body, size_t *blen, vv_error *err) {
  char *path = vv_path_join(dir, "manifest.json");
  if (!path) return VV_E_NOMEM;
  int rc = vv_io_read_file(io, path, VV_MANIFEST_MAX_BYTES, file, len);
  /* e.g. a FIFO or a symlink there (io.h), or a store's refusal */
  if (rc && rc != VV_E_NOT_FOUND && rc != VV_E_CORRUPT && rc != VV_E_NOMEM && err)
    snprintf(err->message, sizeof err->message, "reading %s failed: %s", path, vv_io_last_error());
  free(path);
  if (rc == VV_E_NOT_FOUND) {
    if (err) snprintf(err->message, sizeof err->message, "no vecvault session at %s (no manifest.json)", dir);
    return VV_E_NOT_FOUND;
  }
  if (rc == VV_E_CORRUPT) {
    if (err) snprintf(err->message, sizeof err->message, "manifest.json is larger than any valid manifest");
    return VV_E_MANIFEST_CORRUPT;
  }
  if (rc) return rc;
  rc = vv_manifest_parse(*file, *len, m, body, blen, err);
  if (rc) {
    free(*file);
    *file = NULL;
  }
  return rc;
}

int vv_session_inspect(const char *dir, const struct vv_io *io, char **body_out, size_t *len_out, vv_error *err) {
  *body_out = NULL;
  if (err) err->message[0] = '\0';
  if (!io) io = vv_io_posix();
  unsigned char *file = NULL;
  size_t len = 0, blen = 0;
  const unsigned char *body;
  vv_manifest m;
  int rc = read_manifest(io, dir, &file, &len, &m, &body, &blen, err);
  if (rc) return rc;
  vv_manifest_free(&m);
  char *copy = malloc(blen + 1);
  if (copy) {
    memcpy(copy, body, blen);
    copy[blen] = '\0';
    *body_out = copy;
    *len_out = blen;
  }
  free(file);
  return copy ? VV_OK : VV_E_NOMEM;
}

int vv_sreader_open(vv_sreader *r, const vv_io *io, const char *dir, const vv_load_opts *o, vv_error *err) {
  return vv_sreader_open_known(r, io, dir, o, 0, NULL, err);
}

int vv_sreader_open_known(vv_sreader *r, const vv_io *io, const char *dir, const vv_load_opts *o, int has_known,
                          const vv_keyring *known, vv_error *err) {
  memset(r, 0, sizeof *r);
  if (!io) io = vv_io_posix();
  const unsigned char *body;
  size_t blen = 0;
  int rc = read_manifest(io, dir, &r->file, &r->len, &r->m, &body, &blen, err);
  if (rc) return rc;
  rc = has_known ? vv_secrets_for_load_known(&r->m, known, &r->kr, err) : vv_secrets_for_load(&r->m, o, &r->kr, err);
  if (!rc && r->kr && vv_manifest_check_mac(r->file, r->len, r->kr) != VV_OK) {
    rc = VV_E_MANIFEST_AUTH;
    if (err) snprintf(err->message, sizeof err->message, "manifest.json failed authentication: it was modified");
  }
  /* Rollback: the generation is trustworthy now (authenticated, or only
   * checksummed when the session is plaintext), and no object was read. */
  if (!rc && r->m.generation < o->min_generation) {
    rc = VV_E_ROLLBACK;
    if (err)
      snprintf(err->message, sizeof err->message,
               "manifest.json is generation %llu, older than the required %llu: the session was rolled back",
               (unsigned long long)r->m.generation, (unsigned long long)o->min_generation);
  }
  if (!rc) rc = vv_sctx_init(&r->sc, io, dir);
  if (!rc) {
    r->sc.kr = r->kr;
    memcpy(r->sc.session_id, r->m.session_id, VV_SESSION_ID_BYTES);
  }
  return rc;
}

vv_keyring *vv_sreader_take_keyring(vv_sreader *r) {
  vv_keyring *kr = r->kr;
  r->kr = NULL; /* r->sc.kr still borrows it while r is open */
  return kr;
}

void vv_sreader_close(vv_sreader *r) {
  vv_keyring_free(r->kr);
  vv_manifest_free(&r->m);
  vv_sctx_destroy(&r->sc);
  free(r->file);
  memset(r, 0, sizeof *r);
}
