/*
 * session/gc.h: what a save may touch in a directory, and what it may
 * delete afterwards.
 *
 * Owns the format's file-name patterns (docs/FORMAT.md section 1): object
 * names (64 lowercase hex), history manifests (20 decimal digits + ".json")
 * and temporary files (exactly "tmp-" + 16 lowercase hex, as
 * vv_io_write_durable names them). Nothing else in a session directory is
 * ever created, and so nothing else is ever deleted.
 */
#ifndef VV_GC_H
#define VV_GC_H

#include <stdint.h>

#include "../vecvault.h"
#include "io.h"
#include "manifest.h"

#define VV_KEEP_MANIFESTS 3 /* history manifests a save keeps */

/* Name patterns; each takes a bare file name, not a path. */
int vv_is_object_name(const char *name);
int vv_is_manifest_name(const char *name);
int vv_is_temp_name(const char *name);

/* May a save write into `dir`? VV_OK when it does not exist, is empty, or
 * holds a vecvault session (the rule is docs/FORMAT.md section 1, "Where a
 * save may write"); VV_E_NOT_A_SESSION otherwise, with `err` naming the
 * entry that decided it; VV_E_IO when `dir` is not a directory; an I/O
 * status when it cannot be read. Creates, changes and deletes nothing, and
 * opens nothing in a way that can block (a FIFO is just a foreign entry). */
VV_NODISCARD int vv_session_check_dir(const vv_io *io, const char *dir, vv_error *err);

/* The highest generation named in `mandir` (history manifests), 0 if none
 * or if it cannot be listed. */
uint64_t vv_session_newest_history(const vv_io *io, const char *mandir);

/* After a commit of `current` into `dir`: keeps the newest
 * VV_KEEP_MANIFESTS history manifests, deletes older ones, every object
 * none of the kept ones (nor `current`) references, and temporary files;
 * only names of the format's own patterns. Best effort and conservative:
 * if any kept manifest cannot be read or parsed, nothing is deleted. */
void vv_session_gc(const vv_io *io, const char *dir, const char *objdir, const char *mandir,
                   const vv_manifest *current);

#endif
