/* sluice runs list | tasks list | tasks logs */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "web/apijson.h"
#include "cli/cli.h"
#include "orchestrator/dagbag.h"
#include "orchestrator/control.h"
#include "orchestrator/engine.h"
#include "orchestrator/ops.h"
#include "orchestrator/runs.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/store.h"

/* Finds a run by run_id, or by logical date when the argument parses as one. */
static int find_run(struct store *st, const char *dag_id, const char *arg, struct run_row *out)
{
	if (store_run_get(st, dag_id, arg, 0, out) == 0)
		return 0;
	usec_t t;
	if (parse_iso8601(arg, &t) == 0 && store_run_get(st, dag_id, NULL, t, out) == 0)
		return 0;
	fprintf(stderr, "sluice: DAG '%s' has no run '%s' (see `sluice runs list %s`)\n", dag_id, arg, dag_id);
	return -ENOENT;
}

/* runs list -------------------------------------------------------------------------------------- */

static int runs_list(struct cli_ctx *cli, const struct cmd_args *a)
{
	bool json = a->set['j'];
	const char *dag_id = a->argv[0];
	struct store *st = NULL;
	struct run_row *runs = NULL;
	int n = 0;
	if (cli_open_store(cli, STORE_READONLY, &st) == 0)
		n = store_run_list(st, dag_id, &runs);
	if (n < 0)
		n = 0;
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(o, "dag_runs");
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, api_dag_run(&runs[i]));
		cJSON_AddNumberToObject(o, "total_entries", n);
		cli_print_json(o);
	} else {
		printf("%-48s %-10s %-9s %-26s %s\n", "RUN_ID", "TYPE", "STATE", "LOGICAL_DATE", "END_DATE");
		for (int i = 0; i < n; i++) {
			char ld[ISO_BUFSZ], ed[ISO_BUFSZ] = "-";
			format_iso8601(runs[i].logical_date, ld, sizeof(ld));
			if (runs[i].end_date != USEC_NONE)
				format_iso8601(runs[i].end_date, ed, sizeof(ed));
			printf("%-48s %-10s %-9s %-26s %s\n", runs[i].run_id, runs[i].run_type, runs[i].state, ld, ed);
		}
	}
	for (int i = 0; i < n; i++)
		run_row_free(&runs[i]);
	free(runs);
	store_close(st);
	return 0;
}

/* tasks list ------------------------------------------------------------------------------------- */

static int tasks_list(struct cli_ctx *cli, const struct cmd_args *a)
{
	bool json = a->set['j'];
	const char *const *pos = (const char *const *)a->argv;
	struct store *st = NULL;
	struct run_row run = {0};
	struct ti_row *tis = NULL;
	if (cli_open_store(cli, STORE_READONLY, &st) < 0) {
		fprintf(stderr, "sluice: no database at %s yet\n", cli->home);
		return 1;
	}
	if (find_run(st, pos[0], pos[1], &run) < 0) {
		store_close(st);
		return 1;
	}
	int n = store_ti_list(st, run.pk, &tis);
	if (n < 0)
		n = 0;
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(o, "task_instances");
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, api_task_instance(&tis[i], &run));
		cJSON_AddNumberToObject(o, "total_entries", n);
		cli_print_json(o);
	} else {
		printf("%-28s %5s  %-16s %3s %9s\n", "TASK", "MAP", "STATE", "TRY", "DURATION");
		for (int i = 0; i < n; i++) {
			char dur[32] = "-";
			if (tis[i].duration >= 0)
				snprintf(dur, sizeof(dur), "%.2fs", tis[i].duration);
			printf("%-28s %5d  %-16s %3d %9s\n", tis[i].task_id, tis[i].map_index, tis[i].state,
			       tis[i].try_number, dur);
		}
	}
	for (int i = 0; i < n; i++)
		ti_row_free(&tis[i]);
	free(tis);
	run_row_free(&run);
	store_close(st);
	return 0;
}

/* tasks logs ------------------------------------------------------------------------------------- */

/* Copies the file from *offset to stdout; returns bytes copied or -1 when it cannot be opened. */
static long long copy_from(const char *path, long long *offset)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[65536];
	long long total = 0;
	ssize_t n;
	if (lseek(fd, *offset, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		fwrite(buf, 1, (size_t)n, stdout);
		total += n;
	}
	fflush(stdout);
	close(fd);
	*offset += total;
	return total;
}

static bool ti_finished(struct store *st, int64_t run_pk, const char *task, int map_index, int try_number)
{
	struct ti_row t;
	if (store_ti_get(st, run_pk, task, map_index, &t) < 0)
		return true;
	int s = ti_state_parse(t.state);
	bool done = t.try_number != try_number || ti_state_finished((enum ti_state)s) ||
		    s == TI_UP_FOR_RETRY || s == TI_UP_FOR_RESCHEDULE;
	ti_row_free(&t);
	return done;
}

static int tasks_logs(struct cli_ctx *cli, const struct cmd_args *a)
{
	int try_number = 0, map_index = -1;
	bool follow = a->set['f'];
	int bad = cmd_int_opt(&cmd_tasks_logs, a, 't', 1, 1000000, &try_number);
	if (bad || (bad = cmd_int_opt(&cmd_tasks_logs, a, 'm', -1, 100000000, &map_index)))
		return bad;
	const char *dag_id = a->argv[0], *task = a->argv[2];
	struct store *st = NULL;
	struct run_row run = {0};
	struct ti_row ti;
	int rc = 1;
	if (cli_open_store(cli, STORE_READONLY, &st) < 0) {
		fprintf(stderr, "sluice: no database at %s yet\n", cli->home);
		return 1;
	}
	if (find_run(st, dag_id, a->argv[1], &run) < 0)
		goto out;
	if (store_ti_get(st, run.pk, task, map_index, &ti) < 0) {
		fprintf(stderr, "sluice: run %s of %s has no task instance %s (map index %d)\n", run.run_id,
			dag_id, task, map_index);
		goto out;
	}
	if (try_number <= 0)
		try_number = ti.try_number;
	ti_row_free(&ti);
	if (try_number <= 0) {
		fprintf(stderr, "sluice: %s has not run yet\n", task);
		goto out;
	}
	char *path = runs_log_path(cli->home, dag_id, run.run_id, task, map_index, try_number, "log");
	if (!path) {
		fprintf(stderr, "sluice: the ids of this task instance do not name a log\n");
		goto out;
	}
	long long off = 0;
	if (copy_from(path, &off) < 0 && !follow) {
		fprintf(stderr, "sluice: no log at %s\n", path);
		free(path);
		goto out;
	}
	/* Bounded by the try: stop once it has ended and the last bytes were printed. */
	while (follow && !ti_finished(st, run.pk, task, map_index, try_number)) {
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
		copy_from(path, &off);
	}
	if (follow)
		copy_from(path, &off);
	free(path);
	rc = 0;
out:
	run_row_free(&run);
	store_close(st);
	return rc;
}

/* tasks clear / tasks mark --------------------------------------------------------------------- */

static void print_changed(const char *dag_id, const struct run_row *run, struct ti_row *rows, int n,
			  bool mark, bool dry, bool json)
{
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(o, "task_instances");
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, api_task_instance(&rows[i], run));
		cJSON_AddNumberToObject(o, "total_entries", n);
		cli_print_json(o);
		return;
	}
	for (int i = 0; i < n; i++)
		printf("%s%s %s.%s[%d] (was %s)\n", dry ? "would " : "", mark ? "mark" : "clear", dag_id,
		       rows[i].task_id, rows[i].map_index, rows[i].state);
	printf("%d task instance%s %s%s\n", n, n == 1 ? "" : "s", dry ? "would be " : "", mark ? "marked" : "cleared");
}

/* A control request about run: {"op", "dag_id", "run_id"} (control.h has the protocol). */
static cJSON *run_request(const char *op, const struct run_row *run)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", op);
	cJSON_AddStringToObject(req, "dag_id", run->dag_id);
	cJSON_AddStringToObject(req, "run_id", run->run_id);
	return req;
}

/* Hands req to the daemon's control socket (takes req). Returns the daemon's rc, with its reply
 * in *reply when that is not NULL (the caller's) and its error in *err; or -ESRCH when no daemon
 * listens, and then the caller acts on the database itself. */
static int daemon_op(struct cli_ctx *cli, cJSON *req, cJSON **reply, char **err)
{
	cJSON *rep = NULL;
	int n = control_call(cli->home, req, &rep, 60 * USEC_PER_SEC, err);
	cJSON_Delete(req);
	if (n == -ECONNREFUSED || n == -ENOENT) {
		free(*err);
		*err = NULL;
		return -ESRCH;
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rep, "rc"), *e = cJSON_GetObjectItemCaseSensitive(rep, "error");
	if (n == 0)
		n = cJSON_IsNumber(v) ? (int)v->valuedouble : -EPROTO;
	if (n < 0 && !*err)
		*err = xstrdup(cJSON_IsString(e) ? e->valuestring : "the daemon refused the change");
	if (reply && n >= 0)
		*reply = rep;
	else
		cJSON_Delete(rep);
	return n;
}

/* With a daemon up, the change is its to make (control.c): it holds the writer and, for a run it
 * is driving, the engine. Returns the count with the instances in *out (as they were), -ESRCH
 * when the daemon cannot be reached (then the change is made here), or -errno with *err. */
static int change_in_daemon(struct cli_ctx *cli, struct store *st, const struct run_row *run,
			    const struct ops_selection *sel, const char *mark_state, bool dry, struct ti_row **out,
			    char **err)
{
	cJSON *req = run_request(mark_state ? "mark" : "clear", run), *reply = NULL, *it;
	cJSON *ids = cJSON_AddArrayToObject(req, "task_ids");
	for (size_t i = 0; i < sel->ntasks; i++)
		cJSON_AddItemToArray(ids, cJSON_CreateString(sel->task_ids[i]));
	cJSON_AddNumberToObject(req, "map_index", sel->map_index);
	cJSON_AddBoolToObject(req, "upstream", sel->upstream);
	cJSON_AddBoolToObject(req, "downstream", sel->downstream);
	cJSON_AddBoolToObject(req, "only_failed", sel->only_failed);
	cJSON_AddBoolToObject(req, "dry_run", dry);
	if (mark_state)
		cJSON_AddStringToObject(req, "state", mark_state);
	int rc = daemon_op(cli, req, &reply, err);
	if (rc < 0)
		return rc;
	int k = 0;
	*out = xcalloc((size_t)rc + 1, sizeof(**out));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(reply, "task_instances")) {
		const cJSON *task = cJSON_GetObjectItemCaseSensitive(it, "task_id");
		const cJSON *mi = cJSON_GetObjectItemCaseSensitive(it, "map_index");
		const cJSON *was = cJSON_GetObjectItemCaseSensitive(it, "state");
		if (k >= rc || !cJSON_IsString(task) || !cJSON_IsNumber(mi) ||
		    store_ti_get(st, run->pk, task->valuestring, (int)mi->valuedouble, &(*out)[k]) < 0)
			continue;
		free((*out)[k].state);
		(*out)[k].state = xstrdup(cJSON_IsString(was) ? was->valuestring : "none");
		k++;
	}
	cJSON_Delete(reply);
	return k;
}

static int tasks_change(struct cli_ctx *cli, const struct cmd_args *a, bool mark)
{
	struct ops_selection sel = {
		.map_index = -2,
		.downstream = a->set['d'],
		.upstream = a->set['u'],
		.only_failed = a->set['f'],
		.task_ids = (const char *const *)a->argv + 2,
		.ntasks = (size_t)(a->argc - 2),
	};
	const char *state = a->val['s'], *dag_id = a->argv[0];
	bool dry = a->set['n'], json = a->set['j'];
	int rc = cmd_int_opt(mark ? &cmd_tasks_mark : &cmd_tasks_clear, a, 'm', -1, 100000000, &sel.map_index);
	if (rc)
		return rc;
	rc = 1;
	struct dagbag bag;
	struct store *st = NULL;
	struct run_row run = {0};
	struct ti_row *rows = NULL;
	char *err = NULL;
	int n = 0;
	if (cli_load_bag(cli, &bag) < 0)
		return 1;
	struct dag *d = dagbag_find(&bag, dag_id);
	if (!d) {
		fprintf(stderr, "sluice: DAG '%s' not found in %s\n", dag_id, cli->dags);
		goto out;
	}
	if (cli_open_store(cli, 0, &st) < 0 || find_run(st, dag_id, a->argv[1], &run) < 0)
		goto out;
	bool daemon = sched_daemon_running(cli->home, NULL);
	n = daemon ? change_in_daemon(cli, st, &run, &sel, mark ? state : NULL, dry, &rows, &err) : -ESRCH;
	if (n == -ESRCH)
		n = mark ? ops_mark(st, NULL, d, &run, &sel, state, dry, &rows, &err)
			 : ops_clear(st, NULL, d, &run, &sel, dry, &rows, &err);
	if (n < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		n = 0;
		goto out;
	}
	print_changed(dag_id, &run, rows, n, mark, dry, json);
	if (!dry && n && !json && !daemon)
		fprintf(stderr, "no `sluice serve` is running: the run continues when it starts\n");
	rc = 0;
out:
	for (int i = 0; i < n; i++)
		ti_row_free(&rows[i]);
	free(rows);
	free(err);
	run_row_free(&run);
	store_close(st);
	dagbag_free(&bag);
	return rc;
}

/* runs cancel: through the daemon when it is up (it drives the run), else on the database. */
static int runs_cancel(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	struct run_row run = {0};
	char *err = NULL;
	int rc = 1;
	if (cli_open_store(cli, 0, &st) < 0 || find_run(st, a->argv[0], a->argv[1], &run) < 0)
		goto out;
	int n = daemon_op(cli, run_request("cancel", &run), NULL, &err);
	if (n == -ESRCH)
		n = ops_cancel_run(st, NULL, &run, "cancelled by `sluice runs cancel`", &err);
	if (n < 0) {
		fprintf(stderr, "sluice: %s\n", err ? err : "cannot cancel the run");
		goto out;
	}
	printf("run %s of %s: cancelled; its tries are being stopped\n", run.run_id, run.dag_id);
	rc = 0;
out:
	free(err);
	run_row_free(&run);
	store_close(st);
	return rc;
}

/* tasks kill: only the daemon holds the tries. */
static int tasks_kill(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	struct run_row run = {0};
	char *err = NULL;
	int rc = 1, map_index = -1, bad = cmd_int_opt(&cmd_tasks_kill, a, 'm', -1, 100000000, &map_index);
	if (bad)
		return bad;
	if (cli_open_store(cli, 0, &st) < 0 || find_run(st, a->argv[0], a->argv[1], &run) < 0)
		goto out;
	cJSON *req = run_request("kill", &run);
	cJSON_AddStringToObject(req, "task_id", a->argv[2]);
	cJSON_AddNumberToObject(req, "map_index", map_index);
	int n = daemon_op(cli, req, NULL, &err);
	if (n == -ESRCH)
		n = ops_kill_try(st, NULL, &run, a->argv[2], map_index, "", &err);
	if (n < 0) {
		fprintf(stderr, "sluice: %s\n", err ? err : "cannot kill the task");
		goto out;
	}
	printf("%d tr%s of %s in run %s: being stopped\n", n, n == 1 ? "y" : "ies", a->argv[2], run.run_id);
	rc = 0;
out:
	free(err);
	run_row_free(&run);
	store_close(st);
	return rc;
}

static int tasks_clear(struct cli_ctx *cli, const struct cmd_args *a) { return tasks_change(cli, a, false); }
static int tasks_mark(struct cli_ctx *cli, const struct cmd_args *a) { return tasks_change(cli, a, true); }

static const struct cmd_opt json_opt[] = {
	{"json", 'j', NULL, false, false, "print JSON in Airflow's field names"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_runs_list = {
	"runs", "list", "DAG_ID", 1, 1, json_opt, "the runs of a DAG, newest first", NULL, runs_list,
};

const struct cmd_entry cmd_runs_cancel = {
	"runs", "cancel", "DAG_ID RUN_ID", 2, 2, NULL, "stop a run: its tries are killed and it fails",
	"Cancels a run, as Airflow's \"mark failed\" on a running run does: the daemon stops its tries (their\n"
	"whole process groups, SIGTERM then SIGKILL after core.kill_grace), tasks that did not start are\n"
	"skipped, and the run fails. A queued run fails without starting. RUN_ID may also be its\n"
	"logical date.",
	runs_cancel,
};

static const struct cmd_opt kill_opts[] = {
	{"map-index", 'm', "N", false, false, "only this instance of a mapped task (default: all running)"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_tasks_kill = {
	"tasks", "kill", "DAG_ID RUN_ID TASK_ID", 3, 3, kill_opts, "stop a running try; it fails without a retry",
	"Stops the running try of a task (every running instance of a mapped task, unless --map-index):\n"
	"the daemon sends SIGTERM to its process group, SIGKILL after core.kill_grace. The try fails\n"
	"without using its retries and the run goes on from there, as its trigger rules say.",
	tasks_kill,
};

const struct cmd_entry cmd_tasks_list = {
	"tasks", "list", "DAG_ID RUN_ID", 2, 2, json_opt, "the task instances of a run",
	"Lists the task instances of a run (RUN_ID may also be its logical date).", tasks_list,
};

static const struct cmd_opt logs_opts[] = {
	{"try", 't', "N", false, false, "the try (default: the latest)"},
	{"map-index", 'm', "N", false, false, "the instance of a mapped task"},
	{"follow", 'f', NULL, false, true, "keep printing what the try writes until it ends"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_tasks_logs = {
	"tasks", "logs", "DAG_ID RUN_ID TASK_ID", 3, 3, logs_opts, "the log of a try",
	"Prints the log of a try (default: the latest). With --follow, keeps printing what the try\n"
	"writes until it ends.",
	tasks_logs,
};

static const struct cmd_opt clear_opts[] = {
	{"downstream", 'd', NULL, false, false, "also the tasks downstream of them"},
	{"upstream", 'u', NULL, false, false, "also the tasks upstream of them"},
	{"only-failed", 'f', NULL, false, false, "only failed and upstream_failed instances"},
	{"map-index", 'm', "N", false, false, "only this instance of a mapped task"},
	{"dry-run", 'n', NULL, false, false, "list what would be cleared; change nothing"},
	{"json", 'j', NULL, false, false, "print the task instances as JSON"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_tasks_clear = {
	"tasks", "clear", "DAG_ID RUN_ID TASK_ID...", 3, -1, clear_opts, "run task instances again",
	"Clears task instances so that they run again: their state goes back to none (their tries and\n"
	"logs are kept; retries are available again) and `sluice serve` runs what was cleared. With\n"
	"the daemon up, it makes the change, also inside a run it is driving (a try under way finishes\n"
	"first); without it, the run must not be running and is queued for the daemon's next start.",
	tasks_clear,
};

static const struct cmd_opt mark_opts[] = {
	{"state", 's', "success|failed|skipped", true, false, "the state to set"},
	{"downstream", 'd', NULL, false, false, "also the tasks downstream of them"},
	{"upstream", 'u', NULL, false, false, "also the tasks upstream of them"},
	{"map-index", 'm', "N", false, false, "only this instance of a mapped task"},
	{"dry-run", 'n', NULL, false, false, "list what would be marked; change nothing"},
	{"json", 'j', NULL, false, false, "print the task instances as JSON"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_tasks_mark = {
	"tasks", "mark", "DAG_ID RUN_ID TASK_ID...", 3, -1, mark_opts, "set task instances' state",
	"Sets task instances of a run that is not running. When every instance is then finished, the\n"
	"run's state follows from its leaves; otherwise the run is queued again so that the rest runs.\n"
	"With `sluice serve` up, the daemon makes the change.",
	tasks_mark,
};
