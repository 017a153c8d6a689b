/* The daemon-side log of a try that runs elsewhere (ssh, slurm, k8s): the bytes arrive in pieces.
 *  - A streaming secret masker: every secret comes out as ***, and the last (longest secret - 1)
 *    bytes wait for the next piece, since a secret may be split across two. (The local supervisor
 *    has its own, libc-only copy in executors/shim.c; str_mask() in util.h masks one string.)
 *  - trylog_append(): appends to the log file under core.max_log_size. */
#ifndef SLUICE_TRYLOG_H
#define SLUICE_TRYLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "base/util.h"

/* Values shorter than this are not masked (as the local supervisor). */
#define MASK_MIN_LEN 5

struct masker {
	char **secrets;
	size_t n;
	size_t keep;         /* longest secret - 1: what waits for the next piece */
	struct strbuf carry; /* received, not yet written: may start a secret */
};

/* Reads the secrets of path (NUL-separated, as the engine writes a try's mask file); a missing
 * or unreadable file, or NULL, leaves m without secrets. The file is not removed. */
void masker_load(struct masker *m, const char *path);
/* Appends to out what of the bytes fed so far can be written now, masked; with final, all of it. */
void masker_feed(struct masker *m, const char *p, size_t n, bool final, struct strbuf *out);
/* Bytes fed but not given out yet. */
static inline size_t masker_pending(const struct masker *m) { return m->carry.len; }
/* Wipes and frees the secrets and the pending bytes. */
void masker_free(struct masker *m);

/* Appends n bytes to the log open on fd (at path, for messages; who: the backend's name) unless it
 * is *capped; with max > 0 the log takes max bytes in all (*written so far), then a note saying the
 * rest is dropped, and *capped is set. */
void trylog_append(int fd, const char *path, const char *who, const char *p, size_t n, long long max,
		   long long *written, bool *capped);

#endif
