/*
 * napi/napi_util.h: argument readers and error construction for the N-API
 * layer. Only csrc/napi/ includes node_api.h; the engine never does.
 *
 * Errors reach JS as instances of the VecvaultError class that lib/ hands
 * to the addon at load time (setErrorClass), so err.code is set in one
 * place. Every helper that fails has already thrown (or set a pending
 * exception) and returns NULL or a non-zero int.
 */
#ifndef VVN_UTIL_H
#define VVN_UTIL_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* Per-environment state (napi_set_instance_data), never a global. */
typedef struct vvn_state {
  napi_ref error_class; /* VecvaultError, or NULL before setErrorClass */
} vvn_state;

/* Create a VecvaultError(message, code) value. */
napi_value vvn_error(napi_env env, const char *code, const char *message);
/* Throw for an engine status (message from vv_strerror unless given). */
void vvn_throw_status(napi_env env, int status, const char *message);
void vvn_throw(napi_env env, const char *code, const char *message);

/* Reads a JS string into a malloc'd UTF-8 buffer (caller frees). NULL with
 * a thrown ERR_INVALID_ARGUMENT if it is not a string. */
char *vvn_utf8(napi_env env, napi_value v, size_t *len);
/* A JS string, or NULL for null/undefined (with *present = 0). */
char *vvn_utf8_or_null(napi_env env, napi_value v, size_t *len, int *present);
/* Float32Array contents (borrowed; valid while the array is alive). */
int vvn_f32(napi_env env, napi_value v, float **data, size_t *len);
int vvn_u32(napi_env env, napi_value v, uint32_t *out);

#define VVN_CALL(env, call)                                  \
  do {                                                       \
    if ((call) != napi_ok) {                                 \
      vvn_throw((env), "ERR_INTERNAL", "N-API call failed"); \
      return NULL;                                           \
    }                                                        \
  } while (0)

#endif
