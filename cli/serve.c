/* sluice serve | dags trigger | pools */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * once (also kept, readable by the owner only, in $SLUICE_HOME/admin_password.txt). */
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
		printf("Log in as admin with the password in %s (if it is still there)\n", path);
	}
	free(path);
	free(pw);
	return 0;
}

int cli_serve(struct cli_ctx *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"kill-tasks-on-exit", no_argument, NULL, 'k'},
		{"bind", required_argument, NULL, 'b'},
		{"port", required_argument, NULL, 'p'},
		{"no-auth", no_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool kill_on_exit = false, no_auth = false;
	int opt;
	char *err = NULL;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k': kill_on_exit = true; break;
		case 'a': no_auth = true; break;
		case 'b':
		case 'p':
			if (config_set(cli->cfg, opt == 'b' ? "webserver.bind" : "webserver.port", optarg, &err) < 0) {
				fprintf(stderr, "sluice serve: %s\n", err);
				free(err);
				return 2;
			}
			break;
		case 'h':
			printf("usage: sluice serve [--dags DIR] [--home DIR] [--bind ADDR] [--port N] [--no-auth]\n"
			       "                    [--kill-tasks-on-exit]\n\n"
			       "Runs the scheduler daemon in the foreground: watches the DAG folder (changes are\n"
			       "picked up within about a second), creates runs from schedules, starts runs queued\n"
			       "with `sluice dags trigger`, and resumes the runs it owned when it last stopped,\n"
			       "re-attaching to tries that kept running. SIGTERM or SIGINT stop it; running tries\n"
			       "keep running under their supervisors unless --kill-tasks-on-exit is given.\n"
			       "One daemon per SLUICE_HOME.\n\n"
			       "It also serves the REST API on --bind:--port (config webserver.bind and\n"
			       "webserver.port, default 127.0.0.1:8080; port 0 picks a free one). On the first\n"
			       "start it creates the user admin with a random password, prints it and keeps it in\n"
			       "$SLUICE_HOME/admin_password.txt. --no-auth turns authentication off; it is refused\n"
			       "unless the address is a loopback one.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sluice serve: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	int pid = 0;
	if (sched_daemon_running(cli->home, &pid)) {
		fprintf(stderr, "sluice serve: another sluice serve (pid %d) is running on %s\n", pid, cli->home);
		return 1;
	}
	if (prepare_auth(cli, no_auth) < 0)
		return 1;
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
		.heartbeat = heartbeat_cb,
	};
	if (web_start(&wo, &web, &err) < 0) {
		fprintf(stderr, "sluice serve: %s\n", err);
		free(err);
		free(db);
		free(lib);
		return 1;
	}
	printf("REST API at http://%s:%d/api/v1 (%s)\n", cli->cfg->bind, web_port(web),
	       no_auth ? "authentication off" : "HTTP Basic or Bearer token");
	fflush(stdout);
	char *shim = xasprintf("%s/sluice-shim", cli->exe_dir);
	struct sched_opts o = {
		.cfg = cli->cfg,
		.home = cli->home,
		.shim_path = shim,
		.kill_tasks_on_exit = kill_on_exit,
	};
	int rc = sched_serve(&o);
	events_close(); /* ends open event streams so the web server can stop */
	web_stop(web);
	free(shim);
	free(db);
	free(lib);
	return rc;
}

/* dags trigger ----------------------------------------------------------------------------------- */

static void print_run(const struct run_row *r, bool json)
{
	if (json) {
		cli_print_json(api_dag_run(r));
		return;
	}
	char ld[ISO_BUFSZ];
	format_iso8601(r->logical_date, ld, sizeof(ld));
	printf("run %s of %s (logical date %s): %s\n", r->run_id, r->dag_id, ld, r->state);
}

/* Polls the run until it ends; returns its final row in *out. Bounded by the run itself. */
static int wait_run(struct store *st, const char *dag_id, const char *run_id, struct run_row *out)
{
	for (;;) {
		struct run_row r = {0};
		int rc = store_run_get(st, dag_id, run_id, 0, &r);
		if (rc < 0)
			return rc;
		if (!strcmp(r.state, "success") || !strcmp(r.state, "failed")) {
			*out = r;
			return 0;
		}
		run_row_free(&r);
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* A DAG whose file no longer imports still runs in its last good version (the one the daemon
 * recorded). Returns a new reference in *owned, or NULL. */
static struct dag *last_good_version(struct store *st, struct dagbag *bag, const char *id, struct dag **owned)
{
	char *version = NULL, *lib = xasprintf("%s/lib", bag->dir);
	*owned = NULL;
	if (store_dag_version_current(st, id, &version) == 0)
		*owned = dagbag_load_stored(st, id, version, lib, &bag->limits);
	if (*owned)
		fprintf(stderr, "note: %s does not import now; queuing a run of its last good version\n",
			(*owned)->fileloc);
	free(version);
	free(lib);
	return *owned;
}

int cli_dags_trigger(struct cli_ctx *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"conf", required_argument, NULL, 'c'},
		{"logical-date", required_argument, NULL, 'd'},
		{"run-id", required_argument, NULL, 'r'},
		{"wait", no_argument, NULL, 'w'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *conf = "{}", *ld = NULL, *run_id = NULL;
	bool wait = false, json = false;
	int opt, rc = 1;
	char *err = NULL;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf = optarg; break;
		case 'd': ld = optarg; break;
		case 'r': run_id = optarg; break;
		case 'w': wait = true; break;
		case 'j': json = true; break;
		case 'h':
			printf("usage: sluice dags trigger DAG_ID [--conf JSON] [--logical-date T] [--run-id ID] [--wait] [--json]\n\n"
			       "Queues a manual run. A running `sluice serve` starts it within a second; without\n"
			       "a daemon the run stays queued until one starts. --wait (needs the daemon) waits\n"
			       "for the run to end and exits 0 iff it succeeded.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: sluice dags trigger DAG_ID [--conf JSON] [--logical-date T] [--run-id ID] [--wait] [--json]\n");
		return 2;
	}
	usec_t logical = now_usec();
	if (ld && parse_iso8601(ld, &logical) < 0) {
		fprintf(stderr, "sluice: --logical-date: \"%s\" is not a date\n", ld);
		return 2;
	}
	cJSON *c = cJSON_Parse(conf);
	if (!cJSON_IsObject(c)) {
		cJSON_Delete(c);
		fprintf(stderr, "sluice: --conf must be a JSON object\n");
		return 2;
	}
	struct run_request req = {
		.run_type = "manual",
		.run_id = run_id,
		.logical_date = ld ? logical : USEC_NONE,
		.data_interval_start = USEC_NONE,
		.data_interval_end = USEC_NONE,
		.conf = conf,
	};
	if (runs_check(&req, &err) < 0) {
		cJSON_Delete(c);
		fprintf(stderr, "sluice: --run-id: %s\n", err);
		free(err);
		return 2;
	}
	int daemon_pid = 0;
	bool daemon = sched_daemon_running(cli->home, &daemon_pid);
	if (wait && !daemon) {
		cJSON_Delete(c);
		fprintf(stderr, "sluice: --wait needs a running `sluice serve` for %s\n", cli->home);
		return 1;
	}

	struct dagbag bag;
	struct store *st = NULL;
	struct run_row r = {0}, done = {0};
	struct dag *fallback = NULL;
	if (cli_load_bag(cli, &bag) < 0) {
		cJSON_Delete(c);
		return 1;
	}
	const char *id = argv[optind];
	if (cli_open_store(cli, 0, &st) < 0)
		goto out;
	struct dag *d = dagbag_find(&bag, id);
	if (!d)
		d = last_good_version(st, &bag, id, &fallback);
	if (!d) {
		fprintf(stderr, "sluice: DAG '%s' not found in %s\n", id, cli->dags);
		goto out;
	}
	req.dag_source = dagbag_source_of(&bag, d);
	if (fallback)
		req.dag_version = fallback->version;
	if (runs_queue(st, d, &req, &r, &err) < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		goto out;
	}
	if (!daemon && !json)
		fprintf(stderr, "no `sluice serve` is running for %s: the run is queued and starts when it runs\n",
			cli->home);
	if (!wait) {
		print_run(&r, json);
		rc = 0;
		goto out;
	}
	if (!json)
		fprintf(stderr, "queued %s; waiting for it to end\n", r.run_id);
	if (wait_run(st, r.dag_id, r.run_id, &done) < 0) {
		fprintf(stderr, "sluice: the run disappeared while waiting\n");
		goto out;
	}
	print_run(&done, json);
	rc = strcmp(done.state, "success") ? 1 : 0;
out:
	free(err);
	dag_unref(fallback);
	cJSON_Delete(c);
	run_row_free(&r);
	run_row_free(&done);
	store_close(st);
	dagbag_free(&bag);
	return rc;
}

/* pools -------------------------------------------------------------------------------------- */

static void pools_usage(FILE *f)
{
	fprintf(f, "usage: sluice pools COMMAND\n\n"
		   "  list [--json]                            pools and their slots\n"
		   "  set NAME SLOTS [--description TEXT]      create or resize a pool (-1 = unlimited)\n"
		   "  delete NAME                              remove a pool (not default_pool)\n"
		   "\nA running daemon picks up changes within a second.\n");
}

static int pools_list(struct cli_ctx *cli, bool json)
{
	struct store *st = NULL;
	struct pool_row *pools = NULL;
	int n = 0;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	n = store_pool_list(st, &pools);
	if (n < 0)
		n = 0;
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(o, "pools");
		for (int i = 0; i < n; i++) {
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "name", pools[i].name);
			cJSON_AddNumberToObject(p, "slots", pools[i].slots);
			if (pools[i].description)
				cJSON_AddStringToObject(p, "description", pools[i].description);
			else
				cJSON_AddNullToObject(p, "description");
			cJSON_AddItemToArray(arr, p);
		}
		cJSON_AddNumberToObject(o, "total_entries", n);
		cli_print_json(o);
	} else {
		printf("%-32s %8s  %s\n", "POOL", "SLOTS", "DESCRIPTION");
		for (int i = 0; i < n; i++)
			printf("%-32s %8d  %s\n", pools[i].name, pools[i].slots,
			       pools[i].description ? pools[i].description : "");
	}
	for (int i = 0; i < n; i++)
		pool_row_free(&pools[i]);
	free(pools);
	store_close(st);
	return 0;
}

int cli_pools(struct cli_ctx *cli, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		pools_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "list"))
		return pools_list(cli, argc > 2 && !strcmp(argv[2], "--json"));
	struct store *st = NULL;
	int rc = 1;
	if (!strcmp(argv[1], "set") && (argc == 4 || (argc == 6 && !strcmp(argv[4], "--description")))) {
		char *end;
		long slots = strtol(argv[3], &end, 10);
		if (!valid_id(argv[2]) || *end || slots < -1 || slots > 1000000) {
			fprintf(stderr, "sluice: pools set NAME SLOTS: NAME is [A-Za-z0-9_.-]+, SLOTS an integer >= -1\n");
			return 2;
		}
		if (cli_open_store(cli, 0, &st) < 0)
			return 1;
		if (store_pool_set(st, argv[2], (int)slots, argc == 6 ? argv[5] : NULL) == 0) {
			printf("pool %s: %ld slots\n", argv[2], slots);
			rc = 0;
		}
	} else if (!strcmp(argv[1], "delete") && argc == 3) {
		if (cli_open_store(cli, 0, &st) < 0)
			return 1;
		int d = store_pool_delete(st, argv[2]);
		if (d == 0) {
			printf("pool %s deleted\n", argv[2]);
			rc = 0;
		} else {
			fprintf(stderr, "sluice: %s\n", d == -EPERM ? "default_pool cannot be deleted"
							   : d == -ENOENT ? "no such pool" : "cannot delete the pool");
		}
	} else {
		pools_usage(stderr);
		return 2;
	}
	store_close(st);
	return rc;
}
