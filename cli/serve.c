/* sluice serve | dags trigger | pools */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "web/apijson.h"
#include "web/auth.h"
#include "cli/cli.h"
#include "orchestrator/config.h"
#include "orchestrator/dagbag.h"
#include "orchestrator/engine.h"
#include "orchestrator/runs.h"
#include "base/events.h"
#include "orchestrator/scheduler.h"
#include "web/server.h"
#include "orchestrator/store.h"

/* serve ---------------------------------------------------------------------------------------- */

static usec_t heartbeat_cb(void *arg)
{
	(void)arg;
	return sched_heartbeat();
}

/* Migrates the database and, on the first start, creates the admin user and shows its password
 * once (also kept, readable by the owner only, in $SLUICE_HOME/admin_password.txt until admin
 * first logs in). */
static int prepare_auth(struct cli_ctx *cli, bool no_auth)
{
	struct store *st = NULL;
	char *pw = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return -1;
	int rc = auth_ensure_admin(st, &pw);
	store_close(st);
	if (rc < 0) {
		fprintf(stderr, "sluice serve: cannot create the admin user\n");
		return -1;
	}
	char *path = xasprintf("%s/admin_password.txt", cli->home);
	if (rc == 1) {
		char *line = xasprintf("%s\n", pw);
		mode_t old = umask(077);
		if (write_file_atomic(path, line, strlen(line), true) < 0)
			fprintf(stderr, "sluice serve: cannot write %s\n", path);
		umask(old);
		printf("Created user admin with password %s (also in %s)\n", pw, path);
		free(line);
	} else if (!no_auth) {
		printf("Log in as admin with the password shown at the first start (kept in %s until admin "
		       "first logs in)\n", path);
	}
	free(path);
	free(pw);
	return 0;
}

/* Enough file descriptors for webserver.max_connections and the daemon's own (the soft limit is
 * often 1024: a thousand idle connections would then take the API down). */
static void raise_nofile(int connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)connections + 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		fprintf(stderr, "sluice serve: warning: only %llu file descriptors (webserver.max_connections = %d "
			"wants %llu; raise the hard limit, LimitNOFILE= under systemd)\n", (unsigned long long)rl.rlim_cur,
			connections, (unsigned long long)want);
}

static int serve(struct cli_ctx *cli, const struct cmd_args *a)
{
	bool kill_on_exit = a->set['k'], no_auth = a->set['a'];
	char *err = NULL;
	if ((a->set['b'] && config_set(cli->cfg, "webserver.bind", a->val['b'], &err) < 0) ||
	    (a->set['p'] && config_set(cli->cfg, "webserver.port", a->val['p'], &err) < 0)) {
		fprintf(stderr, "sluice serve: %s\n", err);
		free(err);
		return 2;
	}
	int pid = 0;
	if (sched_daemon_running(cli->home, &pid)) {
		fprintf(stderr, "sluice serve: another sluice serve (pid %d) is running on %s\n", pid, cli->home);
		return 1;
	}
	if (prepare_auth(cli, no_auth) < 0)
		return 1;
	raise_nofile(cli->cfg->max_connections);
	sched_set_write_wait(cli->cfg->write_timeout);
	/* SIGTERM and SIGINT are read by the scheduler through a signalfd: block them before any
	 * thread (the web server's) starts, so that no thread inherits them unblocked and dies of
	 * them by default. */
	block_stop_signals();
	char *db = cli_db_path(cli), *lib = xasprintf("%s/lib", cli->dags);
	struct web *web = NULL;
	struct web_opts wo = {
		.bind = cli->cfg->bind,
		.port = cli->cfg->port,
		.db_path = db,
		.lib_dir = lib,
		.home = cli->home,
		.no_auth = no_auth,
		.allowed_hosts = cli->cfg->allowed_hosts,
		.metrics_public = cli->cfg->metrics_public,
		.config = cli->cfg,
		.max_connections = cli->cfg->max_connections,
		.max_connections_per_address = cli->cfg->max_connections_per_address,
		.idle_timeout = cli->cfg->idle_timeout,
		.max_event_streams = cli->cfg->max_event_streams,
		.heartbeat = heartbeat_cb,
	};
	if (web_start(&wo, &web, &err) < 0) {
		fprintf(stderr, "sluice serve: %s\n", err);
		free(err);
		free(db);
		free(lib);
		return 1;
	}
	printf("Web UI at http://%s:%d/ (%s)\n", cli->cfg->bind, web_port(web),
	       no_auth ? "authentication off" : "log in as admin or another user of `sluice users`");
	printf("REST API at http://%s:%d/api/v1 (%s)\n", cli->cfg->bind, web_port(web),
	       no_auth ? "authentication off" : "HTTP Basic or Bearer token");
	fflush(stdout);
	char *shim = xasprintf("%s/sluice-shim", cli->exe_dir), *self = xasprintf("%s/sluice", cli->exe_dir);
	struct sched_opts o = {
		.cfg = cli->cfg,
		.home = cli->home,
		.shim_path = shim,
		.probe_exe = self,
		.kill_tasks_on_exit = kill_on_exit,
	};
	int rc = sched_serve(&o);
	events_close(); /* ends open event streams so the web server can stop */
	web_stop(web);
	free(shim);
	free(self);
	free(db);
	free(lib);
	return rc;
}

static const struct cmd_opt serve_opts[] = {
	{"bind", 'b', "ADDR", false, false, "address of the REST API (config webserver.bind, default 127.0.0.1)"},
	{"port", 'p', "N", false, false, "its port (webserver.port, default 8080; 0 picks a free one)"},
	{"no-auth", 'a', NULL, false, false, "turn authentication off (refused unless the address is loopback)"},
	{"kill-tasks-on-exit", 'k', NULL, false, false, "stop the running tries when the daemon stops"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_serve = {
	"serve", NULL, NULL, 0, 0, serve_opts, "run the scheduler daemon, the web UI and the REST API",
	"Runs the scheduler daemon in the foreground: watches the DAG folder (changes are picked up\n"
	"within about a second), creates runs from schedules, starts runs queued with `sluice dags\n"
	"trigger`, and resumes the runs it owned when it last stopped, re-attaching to tries that kept\n"
	"running. SIGTERM or SIGINT stop it; running tries keep running under their supervisors unless\n"
	"--kill-tasks-on-exit is given. One daemon per SLUICE_HOME.\n\n"
	"It also serves the web UI (at /) and the REST API (at /api/v1) on --bind:--port. On the first\n"
	"start it creates the user admin with a random password, prints it and keeps it in\n"
	"$SLUICE_HOME/admin_password.txt (mode 0600) until admin first logs in; then the file goes (the\n"
	"password stays valid; `sluice users create admin --role admin --password-stdin` sets a new\n"
	"one). CLI commands reach it through $SLUICE_HOME/control.sock.",
	serve,
};
