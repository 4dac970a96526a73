/*
 * napi/napi_util.c: argument readers and VecvaultError construction.
 */
#include "napi_util.h"

#include <stdlib.h>

#include "../vecvault.h"

napi_value vvn_error(napi_env env, const char *code, const char *message) {
  vvn_state *st = NULL;
  napi_value cls = NULL, args[2], err = NULL;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &args[0]);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &args[1]);
  if (napi_get_instance_data(env, (void **)&st) == napi_ok && st && st->error_class &&
      napi_get_reference_value(env, st->error_class, &cls) == napi_ok && cls &&
      napi_new_instance(env, cls, 2, args, &err) == napi_ok)
    return err;
  /* Before lib/ registered its class: a plain Error that still has .code. */
  napi_create_error(env, args[1], args[0], &err);
  return err;
}

void vvn_throw(napi_env env, const char *code, const char *message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  napi_throw(env, vvn_error(env, code, message));
}

void vvn_throw_status(napi_env env, int status, const char *message) {
  vvn_throw(env, vv_status_code(status), message ? message : vv_strerror(status));
}

char *vvn_utf8(napi_env env, napi_value v, size_t *len) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "expected a string");
    return NULL;
  }
  char *buf = (char *)malloc(n + 1);
  if (!buf) {
    vvn_throw_status(env, VV_E_NOMEM, NULL);
    return NULL;
  }
  napi_get_value_string_utf8(env, v, buf, n + 1, &n);
  *len = n;
  return buf;
}

char *vvn_utf8_or_null(napi_env env, napi_value v, size_t *len, int *present) {
  napi_valuetype t;
  *len = 0;
  *present = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t == napi_null || t == napi_undefined) return NULL;
  *present = 1;
  return vvn_utf8(env, v, len);
}

int vvn_f32(napi_env env, napi_value v, float **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_float32_array) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "expected a Float32Array");
    return -1;
  }
  *data = (float *)p;
  return 0;
}

int vvn_u32(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    vvn_throw(env, "ERR_INVALID_ARGUMENT", "expected an unsigned integer");
    return -1;
  }
  return 0;
}
