#include "orchestrator/runner.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/log.h"

static void on_signal(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct runner *r = arg;
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	r->signals++;
	if (r->on_stop)
		r->on_stop(r->arg, r, r->signals);
	else
		evloop_stop(loop);
	(void)events;
}

/* The configuration as the executors take it: o->cfg's, or the one home's files give. */
static char **executor_settings(const struct runner_opts *o, char **err)
{
	struct config own;
	if (o->cfg)
		return config_settings(o->cfg);
	if (config_load(&own, o->home, err) < 0) {
		config_free(&own);
		return NULL;
	}
	char **v = config_settings(&own);
	config_free(&own);
	return v;
}

int runner_open(struct runner *r, const struct runner_opts *o, char **err)
{
	char *db = xasprintf("%s/sluice.db", o->home);
	char **settings = NULL;
	int rc;
	memset(r, 0, sizeof(*r));
	r->sigfd = -1;
	r->on_stop = o->on_stop;
	r->arg = o->arg;
	if ((rc = mkdir_p(o->home, 0700)) < 0) {
		*err = xasprintf("cannot create %s: %s", o->home, strerror(-rc));
		goto fail;
	}
	if ((rc = store_open(db, o->sync_full ? STORE_SYNC_FULL : 0, &r->st, err)) < 0)
		goto fail;
	rc = -ENOMEM;
	if (!(r->loop = evloop_new())) {
		*err = xstrdup("cannot create the event loop");
		goto fail;
	}
	if (!(r->notify = notify_new(o->home, err))) {
		char *why = *err;
		*err = xasprintf("cannot start the callback worker: %s", why ? why : "?");
		free(why);
		goto fail;
	}
	rc = -EINVAL;
	if (!(settings = executor_settings(o, err)))
		goto fail;
	struct engine_opts eo = {
		.home = o->home,
		.shim_path = o->shim_path,
		.parallelism = o->parallelism,
		.kill_grace = o->kill_grace,
		.ignore_unknown_pools = o->ignore_unknown_pools,
		.env_passthrough = o->env_passthrough,
		.max_log_size = o->max_log_size,
		.sync_status = o->sync_full,
		.notify = r->notify,
		.settings = (const char *const *)settings,
	};
	if (!(r->eng = engine_new(r->st, r->loop, &eo, err)))
		goto fail;
	config_free_settings(settings);
	settings = NULL;
	signal(SIGPIPE, SIG_IGN);
	if ((r->sigfd = stop_signals_fd()) < 0 || (rc = evloop_add_fd(r->loop, r->sigfd, EPOLLIN, on_signal, r)) < 0) {
		rc = r->sigfd < 0 ? r->sigfd : rc;
		*err = xasprintf("cannot watch for SIGINT and SIGTERM: %s", strerror(-rc));
		goto fail;
	}
	free(db);
	return 0;
fail:
	config_free_settings(settings);
	free(db);
	runner_close(r);
	return rc < 0 ? rc : -EINVAL;
}

void runner_close(struct runner *r)
{
	if (r->sigfd >= 0) {
		if (r->loop)
			evloop_del_fd(r->loop, r->sigfd);
		close(r->sigfd);
	}
	engine_free(r->eng);
	notify_free(r->notify); /* waits a bounded time for queued callbacks */
	evloop_free(r->loop);
	store_close(r->st);
	memset(r, 0, sizeof(*r));
	r->sigfd = -1;
}

/* runner_run_one ------------------------------------------------------------------------------ */

struct one {
	struct runner *r;
	struct erun *run;          /* NULL once it ended */
	struct run_row final;
	bool done;
};

static void one_done(void *arg, struct erun *run)
{
	struct one *x = arg;
	run_row_copy(&x->final, erun_row(run));
	x->done = true;
	x->run = NULL;
	evloop_stop(x->r->loop);
}

static void one_stop(void *arg, struct runner *r, int count)
{
	struct one *x = arg;
	if (count == 1 && x->run) {
		log_info("sluice: interrupted; stopping the running tasks (again to quit at once)");
		engine_cancel_run(r->eng, x->run, "interrupted by the user");
	} else {
		log_info("sluice: quitting; running tasks keep running under their supervisors");
		evloop_stop(r->loop);
	}
}

int runner_run_one(struct runner *r, struct dag *d, const struct run_request *req, struct run_row *out,
		   char **err)
{
	struct one x = {.r = r};
	char owner[32];
	snprintf(owner, sizeof(owner), "test:%d", (int)getpid());
	struct run_request mine = *req;
	mine.owner = owner;
	runner_stop_cb saved_stop = r->on_stop;
	void *saved_arg = r->arg;
	engine_on_run_done(r->eng, one_done, &x);
	int rc = engine_create_run(r->eng, d, &mine, &x.run, err);
	if (rc < 0)
		goto out;
	r->on_stop = one_stop;
	r->arg = &x;
	if (!x.done)
		evloop_run(r->loop);
	if (!x.done) {
		rc = -EINTR;
		goto out;
	}
	if (notify_flush(r->notify, 60 * USEC_PER_SEC) < 0)
		log_warnx("callbacks still running after 60 s; giving up on them");
	*out = x.final;
	memset(&x.final, 0, sizeof(x.final));
out:
	run_row_free(&x.final);
	engine_on_run_done(r->eng, NULL, NULL);
	r->on_stop = saved_stop;
	r->arg = saved_arg;
	return rc;
}
