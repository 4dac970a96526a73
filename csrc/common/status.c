/*
 * common/status.c: the one table of status codes, messages and stable code strings.
 */
#include "../vecvault.h"

typedef struct status_entry {
  int status;
  const char *code;
  const char *message;
} status_entry;

static const status_entry kStatus[] = {
  {VV_OK, "OK", "success"},
  {VV_E_NOMEM, "ERR_NO_MEMORY", "out of memory"},
  {VV_E_INVALID, "ERR_INVALID_ARGUMENT", "invalid argument"},
  {VV_E_DIMENSION, "ERR_DIMENSION_MISMATCH", "vector length does not match the database dimension"},
  {VV_E_BAD_VECTOR, "ERR_INVALID_VECTOR", "vector has a NaN or infinite component, or zero length under cosine"},
  {VV_E_BAD_ID, "ERR_INVALID_ID", "id must be a non-empty string of at most 4096 bytes"},
  {VV_E_BAD_METADATA, "ERR_INVALID_METADATA", "metadata is too large"},
  {VV_E_ABORTED, "ERR_ABORTED", "the operation was aborted"},
  {VV_E_FULL, "ERR_CAPACITY", "the database cannot hold more vectors"},
  {VV_E_INTERNAL, "ERR_INTERNAL", "internal error (a bug in vecvault)"},
  {VV_E_CORRUPT, "ERR_CORRUPT", "malformed data"},
  {VV_E_KEY_REQUIRED, "ERR_KEY_REQUIRED", "an encryption key or passphrase is required"},
  {VV_E_WRONG_KEY, "ERR_WRONG_KEY", "the key or passphrase does not open this session"},
  {VV_E_MANIFEST_CORRUPT, "ERR_MANIFEST_CORRUPT", "the session manifest is damaged or malformed"},
  {VV_E_MANIFEST_AUTH, "ERR_MANIFEST_AUTH", "the session manifest failed authentication (tampered, or another key)"},
  {VV_E_CHUNK_MISSING, "ERR_CHUNK_MISSING", "a session object is missing"},
  {VV_E_CHUNK_CORRUPT, "ERR_CHUNK_CORRUPT", "a session object is damaged or does not belong here"},
  {VV_E_UNSUPPORTED_VERSION, "ERR_UNSUPPORTED_VERSION", "the session format version is not supported"},
  {VV_E_LOCKED, "ERR_LOCKED", "another writer holds the session lock"},
  {VV_E_IO, "ERR_IO", "input/output error"},
  {VV_E_NOSPC, "ERR_NOSPC", "no space left on the device"},
  {VV_E_NOT_FOUND, "ERR_NOT_FOUND", "no session found at that path"},
  {VV_E_NOT_A_SESSION, "ERR_NOT_A_SESSION", "the directory is not empty and holds no vecvault session"},
  {VV_E_ROLLBACK, "ERR_ROLLBACK", "the session is an older generation than required (rolled back?)"},
  {VV_E_CONFLICT, "ERR_CONFLICT", "another writer committed a newer generation first"},
  {VV_E_ACCESS, "ERR_ACCESS", "the storage refused access"},
  {VV_E_ASYNC_REQUIRED, "ERR_ASYNC_REQUIRED", "this session's storage is implemented in JavaScript: use the async variant"},
  {VV_E_BAD_FILTER, "ERR_INVALID_FILTER", "invalid filter"},
};

static const status_entry *find(int status) {
  for (size_t i = 0; i < sizeof kStatus / sizeof kStatus[0]; i++)
    if (kStatus[i].status == status) return &kStatus[i];
  return NULL;
}

const char *vv_strerror(int status) {
  const status_entry *e = find(status);
  return e ? e->message : "unknown error";
}

const char *vv_status_code(int status) {
  const status_entry *e = find(status);
  return e ? e->code : "ERR_INTERNAL";
}
