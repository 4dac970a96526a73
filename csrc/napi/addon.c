/*
 * napi/addon.c: module initialisation: per-environment state and exports.
 */
#include <stdlib.h>

#include "../vecvault.h"
#include "napi_util.h"
#include "session.h"

napi_value vvn_define_vectordb(napi_env env);

static void state_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  vvn_state *st = (vvn_state *)data;
  if (st->error_class) napi_delete_reference(env, st->error_class);
  free(st);
}

/* setErrorClass(VecvaultError): errors are built as new VecvaultError(message, code). */
static napi_value set_error_class(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value cls;
  vvn_state *st = NULL;
  VVN_CALL(env, napi_get_cb_info(env, info, &argc, &cls, NULL, NULL));
  VVN_CALL(env, napi_get_instance_data(env, (void **)&st));
  if (st->error_class) napi_delete_reference(env, st->error_class);
  st->error_class = NULL;
  VVN_CALL(env, napi_create_reference(env, cls, 1, &st->error_class));
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  vvn_state *st = (vvn_state *)calloc(1, sizeof *st);
  if (!st || napi_set_instance_data(env, st, state_finalize, NULL) != napi_ok) {
    free(st);
    napi_throw_error(env, "ERR_NO_MEMORY", "vecvault: could not initialise");
    return NULL;
  }
  napi_value cls = vvn_define_vectordb(env), fn, simd;
  if (!cls) return NULL;
  VVN_CALL(env, napi_create_function(env, "setErrorClass", NAPI_AUTO_LENGTH, set_error_class, NULL, &fn));
  VVN_CALL(env, napi_create_string_utf8(env, vv_simd_name(), NAPI_AUTO_LENGTH, &simd));
  VVN_CALL(env, napi_set_named_property(env, exports, "NativeDB", cls));
  VVN_CALL(env, napi_set_named_property(env, exports, "setErrorClass", fn));
  VVN_CALL(env, napi_set_named_property(env, exports, "simd", simd));
  VVN_CALL(env, napi_create_function(env, "loadAsync", NAPI_AUTO_LENGTH, vvn_load_async, NULL, &fn));
  VVN_CALL(env, napi_set_named_property(env, exports, "loadAsync", fn));
  VVN_CALL(env, napi_create_function(env, "inspectAsync", NAPI_AUTO_LENGTH, vvn_inspect_async, NULL, &fn));
  VVN_CALL(env, napi_set_named_property(env, exports, "inspectAsync", fn));
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
