/* A process that drives runs: the writer connection to $SLUICE_HOME/sluice.db, an event loop,
 * the callback worker, the run engine and SIGINT/SIGTERM read through a signalfd. `sluice serve`
 * (scheduler.c) and `sluice dags test` are both built on it, so they wire the engine the same way.
 *
 * Threading: everything but the callback worker runs on the calling thread's event loop. */
#ifndef SLUICE_RUNNER_H
#define SLUICE_RUNNER_H

#include <stdbool.h>

#include "base/evloop.h"
#include "orchestrator/config.h"
#include "orchestrator/engine.h"
#include "orchestrator/notify.h"
#include "orchestrator/runs.h"
#include "orchestrator/store.h"

struct runner;
/* Called on the loop thread for each SIGINT or SIGTERM (count: 1 for the first, then 2, ...). */
typedef void (*runner_stop_cb)(void *arg, struct runner *r, int count);

struct runner_opts {
	const char *home;          /* state directory: sluice.db, logs/ */
	const char *shim_path;     /* the sluice-shim binary */
	int parallelism;
	usec_t kill_grace;
	bool ignore_unknown_pools; /* `dags test`: a missing pool does not hold a task back */
	const char *env_passthrough; /* core.task_env_passthrough */
	long long max_log_size;    /* core.max_log_size; 0 = no cap */
	bool sync_full;            /* core.db_synchronous = full */
	const struct config *cfg;  /* the executors' settings ([ssh] ...); NULL: read from home's
	                            * sluice.cfg and the environment */
	runner_stop_cb on_stop;    /* NULL: the first signal stops the loop */
	void *arg;
};

struct runner {
	struct store *st;          /* the writer connection (owned) */
	struct evloop *loop;       /* owned */
	struct notify *notify;     /* the callback worker (owned) */
	struct engine *eng;        /* owned */
	int sigfd;                 /* SIGINT/SIGTERM, -1 when none */
	int signals;               /* how many arrived */
	runner_stop_cb on_stop;
	void *arg;
};

/* Opens everything (creating home and migrating the database). Returns 0, or -errno with *err
 * (caller frees) and *r closed. */
int runner_open(struct runner *r, const struct runner_opts *o, char **err);
/* Frees what runner_open made; waits a bounded time for queued callbacks. Running tries are
 * left to their supervisors. Safe on a runner that failed to open. */
void runner_close(struct runner *r);

/* Use case of `dags test`: queues a run of d owned by this process (req->owner is set to
 * "test:<pid>") and drives it in the foreground until it ends. A first stop signal cancels the
 * run (its tries are stopped and it fails), a second quits at once. Returns 0 with the ended run
 * in *out (caller frees), -EINTR when the user quit before it ended, or -errno with *err. */
int runner_run_one(struct runner *r, struct dag *d, const struct run_request *req, struct run_row *out,
		   char **err);

#endif
