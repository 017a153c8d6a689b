/* Callbacks (on_failure, on_success, on_retry): a shell command and/or a webhook POST, run by one
 * worker thread so that the run engine never waits for them.
 *
 * Ownership and invariants:
 *  - notify_fire() copies everything it is given; the caller keeps its strings.
 *  - The queue is bounded (limits.queue_max); a callback that does not fit is dropped with a
 *    warning, so notify_fire() never blocks on the worker.
 *  - Callbacks run one at a time, in the order they were fired: a command first, then the
 *    webhook of the same callback.
 *  - A command runs as `/bin/sh -c CMD` in its own process group. The worker waits for that pid
 *    only (never waitpid(-1): the local executor owns the daemon's other children).
 *  - Every outcome is appended as one line "[<UTC time>] sluice: callback <event>: ..." to the
 *    callback's log file; failures are also logged with log_warnx(). Webhook URLs are logged
 *    without their path and query, which often carry a secret token.
 *  - The worker thread runs with every signal blocked, so process-directed signals reach the
 *    daemon's own handlers and a SIGPIPE from a socket write is never delivered.
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

#include <stddef.h>

#include "base/util.h"

/* Limits of a notifier. notify_set_limits() ignores fields that are 0, so a caller changes only
 * the ones it names. */
struct notify_limits {
	usec_t cmd_timeout;   /* longer-running commands get SIGTERM to the group (default 60 s) */
	usec_t kill_grace;    /* then SIGKILL to the group after this long (default 5 s) */
	usec_t retry_pause;   /* pause before the second webhook attempt; doubles (default 1 s) */
	usec_t drain;         /* notify_free() waits this long for queued work (default 18 s) */
	size_t queue_max;     /* callbacks waiting at most (default 1024) */
};

#define NOTIFY_WEBHOOK_ATTEMPTS 3
#define NOTIFY_CONNECT_TIMEOUT (5 * USEC_PER_SEC)
#define NOTIFY_HTTP_TIMEOUT (15 * USEC_PER_SEC)
/* After the drain time, notify_free() aborts the running callback and waits this long more. */
#define NOTIFY_ABORT_WAIT (2 * USEC_PER_SEC)

struct notify;

/* Starts the worker thread (and initialises libcurl once per process). The daemon's environment
 * is captured now for the commands. Callbacks fired without a log path log to
 * <home>/logs/callbacks.log (home may be NULL: then to the daemon's log only). Returns NULL with
 * *err set (the caller frees it). */
struct notify *notify_new(const char *home, char **err);
/* Changes the limits (non-zero fields only); applies to callbacks that start afterwards. */
void notify_set_limits(struct notify *n, const struct notify_limits *lim);
/* Queues a callback and returns at once. event names it ("on_failure"); cmd (already templated)
 * and webhook may each be NULL; json_body (NULL means "{}") is POSTed to the webhook and given to
 * the command as $SLUICE_CALLBACK_JSON, with $SLUICE_EVENT; the command's output and every
 * outcome go to log_path (parent directories are created; NULL means the default log).
 * Returns 0, -EINVAL when event is NULL, or -ENOBUFS when the queue is full (the callback is
 * dropped and a warning logged) or the notifier is shutting down. */
int notify_fire(struct notify *n, const char *event, const char *cmd, const char *webhook,
		const char *json_body, const char *log_path);
/* Waits until every queued callback has finished. Returns 0, or -ETIMEDOUT after timeout. */
int notify_flush(struct notify *n, usec_t timeout);
/* Finishes the queued callbacks, waiting at most limits.drain + NOTIFY_ABORT_WAIT (20 s by
 * default): after the drain time the running callback is killed or aborted and the rest are
 * dropped, each with a line in its log. Then stops the worker and frees n (NULL is fine). */
void notify_free(struct notify *n);

#endif
