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
