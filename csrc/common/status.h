/*
 * common/status.h: internal outcomes that are not errors.
 *
 * Public status codes (vecvault.h) are VV_OK or negative VV_E_* values, and
 * each means one thing to a caller. An iterator reaching its end or a cache
 * not holding a key is neither success with a result nor a failure: these
 * get positive values of their own, so `if (rc)` still branches on them,
 * and they never leave the engine (the functions returning them are
 * internal, and their callers turn them into VV_OK or a VV_E_* value).
 */
#ifndef VV_COMMON_STATUS_H
#define VV_COMMON_STATUS_H

enum {
  VV_END = 1,  /* an iterator has nothing more to yield (vv_index_decode_next) */
  VV_MISS = 2  /* not in the cache, and not loaded either (vv_cache_peek, vv_lazy_peek) */
};

#endif
