/*
 * napi/session.h: session entry points defined in session.c.
 */
#ifndef VVN_SESSION_H
#define VVN_SESSION_H

#include <node_api.h>

#include "../vecvault.h"

napi_value vvn_set_secret(napi_env env, napi_callback_info info);
napi_value vvn_save_async(napi_env env, napi_callback_info info);
napi_value vvn_load_async(napi_env env, napi_callback_info info);
napi_value vvn_inspect_async(napi_env env, napi_callback_info info);
napi_value vvn_cache_stats(napi_env env, napi_callback_info info);
napi_value vvn_set_cache_size(napi_env env, napi_callback_info info);
napi_value vvn_preload_async(napi_env env, napi_callback_info info);
/* Takes the engine out of a loadAsync result (once); NULL if not one. */
vv_db *vvn_adopt(napi_env env, napi_value external);

#endif
