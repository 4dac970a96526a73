/*
 * common/parallel.h: run a loop body over [0, n) on up to `threads` threads.
 *
 * The calling thread is one of the workers and the only one that calls
 * `progress`, so progress callbacks never run concurrently. Work is handed
 * out in small blocks from an atomic counter, so uneven items balance out.
 */
#ifndef VV_PARALLEL_H
#define VV_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include "../vecvault.h"

/* Body for item i, run by worker `worker` (0..threads-1). A non-zero return
 * stops the loop; the first such status is returned by vv_parallel_for. */
typedef int (*vv_body_fn)(void *ctx, size_t i, unsigned worker);

/* Returns VV_OK, the first failing body's status, or VV_E_ABORTED when
 * `progress` returned non-zero (progress may be NULL). `done_base` is added
 * to the done count given to progress, `total` is passed through. */
VV_NODISCARD int vv_parallel_for(size_t n, unsigned threads, vv_body_fn body, void *ctx,
                                 int (*progress)(void *, uint64_t, uint64_t), void *progress_ctx,
                                 uint64_t done_base, uint64_t total);

/* For short, latency-bound loops (a search's page reads): like
 * vv_parallel_for without progress, but helper threads are detached and
 * the caller never waits for one to start: it claims items itself, and
 * once every item is claimed it waits only for those a helper is running.
 * On a loaded machine a helper the scheduler has not run yet costs
 * nothing; it finds the range exhausted when it runs. Returns the first
 * failing body's status (later items are then skipped). */
VV_NODISCARD int vv_parallel_eager(size_t n, unsigned threads, vv_body_fn body, void *ctx);

#endif
