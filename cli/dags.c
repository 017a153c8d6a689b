/* sluice dags list | show | check | test | pause | unpause */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "cli/cli.h"
#include "orchestrator/config.h"
#include "orchestrator/control.h"
#include "orchestrator/dagbag.h"
#include "orchestrator/engine.h"
#include "orchestrator/ops.h"
#include "orchestrator/runner.h"
#include "orchestrator/runs.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/store.h"
#include "web/apijson.h"

/* Shared CLI helpers ------------------------------------------------------------------------- */

void cli_bag_init(struct cli_ctx *cli, struct dagbag *bag)
{
	struct dag_lua_limits lim = {
		.memory = cli->cfg->dag_memory_limit,
		.instructions = cli->cfg->dag_instruction_limit,
		.wall = cli->cfg->dag_time_limit,
	};
	dagbag_init(bag, cli->dags, &lim);
	/* As in the daemon: a file stuck inside one C call is stopped in the probe, not here. */
	char *self = xasprintf("%s/sluice", cli->exe_dir);
	dagbag_use_probe(bag, self);
	free(self);
}

int cli_load_bag(struct cli_ctx *cli, struct dagbag *bag)
{
	char *err = NULL;
	cli_bag_init(cli, bag);
	if (dagbag_refresh(bag, &err) < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		free(err);
		dagbag_free(bag);
		return -1;
	}
	return 0;
}

char *cli_db_path(struct cli_ctx *cli)
{
	return xasprintf("%s/sluice.db", cli->home);
}

int cli_open_store(struct cli_ctx *cli, int flags, struct store **st)
{
	char *path = cli_db_path(cli), *err = NULL;
	int rc;
	*st = NULL;
	if (flags & STORE_READONLY) {
		struct stat sb;
		if (stat(path, &sb) < 0) {
			free(path);
			return -ENOENT; /* no database yet: callers treat it as empty */
		}
	} else if ((rc = mkdir_p(cli->home, 0700)) < 0) {
		fprintf(stderr, "sluice: cannot create %s: %s\n", cli->home, strerror(-rc));
		free(path);
		return rc;
	}
	if (cli->cfg && cli->cfg->db_synchronous && !strcmp(cli->cfg->db_synchronous, "full"))
		flags |= STORE_SYNC_FULL;
	rc = store_open(path, flags, st, &err);
	if (rc < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		free(err);
	}
	free(path);
	return rc;
}

static void print_import_errors(const struct dagbag *bag, FILE *f)
{
	for (size_t i = 0; i < bag->nfiles; i++)
		if (bag->files[i].error)
			fprintf(f, "%s\n", bag->files[i].error);
}

/* dags list ----------------------------------------------------------------------------------------- */

static bool paused_in(struct store *st, const char *dag_id)
{
	bool p = false;
	if (st)
		store_dag_paused(st, dag_id, &p);
	return p;
}

static int dags_list(struct cli_ctx *cli, const struct cmd_args *a)
{
	bool json = a->set['j'];
	struct dagbag bag;
	struct store *st = NULL;
	if (cli_load_bag(cli, &bag) < 0)
		return 1;
	cli_open_store(cli, STORE_READONLY, &st);
	cJSON *arr = cJSON_CreateArray();
	size_t n = 0;
	if (!json)
		printf("%-32s %-24s %-10s %-8s %s\n", "DAG_ID", "SCHEDULE", "OWNER", "PAUSED", "FILE");
	for (size_t i = 0; i < bag.nfiles; i++) {
		struct dagbag_file *f = &bag.files[i];
		for (size_t k = 0; k < f->ndags; k++) {
			struct dag *d = f->dags[k];
			struct dag_status s = {paused_in(st, d->dag_id), true, f->error != NULL, now_usec(), USEC_NONE, USEC_NONE};
			n++;
			if (json)
				cJSON_AddItemToArray(arr, api_dag(d, &s));
			else
				printf("%-32s %-24s %-10s %-8s %s\n", d->dag_id, d->schedule ? d->schedule : "None",
				       d->owner ? d->owner : "airflow", s.is_paused ? "True" : "False", f->display);
		}
	}
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "dags", arr);
		cJSON_AddNumberToObject(o, "total_entries", (double)n);
		cli_print_json(o);
	} else {
		cJSON_Delete(arr);
	}
	size_t nerr = dagbag_error_count(&bag);
	if (nerr)
		fprintf(stderr, "%zu file%s failed to import; see `sluice dags check`\n", nerr, nerr == 1 ? "" : "s");
	store_close(st);
	dagbag_free(&bag);
	return 0;
}

/* dags show ----------------------------------------------------------------------------------------- */

static void print_dot(const struct dag *d)
{
	printf("digraph \"%s\" {\n\trankdir=LR;\n\tnode [shape=box, style=rounded];\n", d->dag_id);
	for (size_t i = 0; i < d->ntasks; i++)
		printf("\t\"%s\"%s;\n", d->tasks[i].id, d->tasks[i].mapped ? " [peripheries=2]" : "");
	for (size_t i = 0; i < d->ntasks; i++)
		for (size_t j = 0; j < d->tasks[i].n_down; j++)
			printf("\t\"%s\" -> \"%s\";\n", d->tasks[i].id, d->tasks[d->tasks[i].downstream[j]].id);
	printf("}\n");
}

static void print_dag_text(const struct dag *d)
{
	char buf[32];
	printf("dag_id:       %s\n", d->dag_id);
	printf("file:         %s:%d\n", d->fileloc, d->line);
	if (d->description)
		printf("description:  %s\n", d->description);
	printf("schedule:     %s (%s)\n", d->schedule ? d->schedule : "None", d->timezone);
	printf("version:      %.12s\n", d->version);
	printf("tasks:        %zu\n\n", d->ntasks);
	for (size_t k = 0; k < d->ntasks; k++) {
		const struct task *t = &d->tasks[d->topo[k]];
		printf("%s [%s, %s", t->id, t->operator_name, trigger_rule_name(t->trigger_rule));
		if (t->retries) {
			format_duration(t->retry_delay, buf, sizeof(buf));
			printf(", retries %d every %s%s", t->retries, buf, t->retry_exponential_backoff ? " (exponential)" : "");
		}
		if (t->execution_timeout) {
			format_duration(t->execution_timeout, buf, sizeof(buf));
			printf(", timeout %s", buf);
		}
		printf(", weight %d]\n", t->effective_weight);
		if (t->n_up) {
			printf("    after:");
			for (size_t j = 0; j < t->n_up; j++)
				printf(" %s", d->tasks[t->upstream[j]].id);
			printf("\n");
		}
	}
}

static int dags_show(struct cli_ctx *cli, const struct cmd_args *a)
{
	bool json = a->set['j'], dot = a->set['d'];
	const char *id = a->argv[0];
	struct dagbag bag;
	if (cli_load_bag(cli, &bag) < 0)
		return 1;
	struct dag *d = dagbag_find(&bag, id);
	int rc = 0;
	if (!d) {
		fprintf(stderr, "sluice: DAG '%s' not found in %s\n", id, cli->dags);
		print_import_errors(&bag, stderr);
		rc = 1;
	} else if (json) {
		struct store *st = NULL;
		cli_open_store(cli, STORE_READONLY, &st);
		struct dag_status s = {paused_in(st, d->dag_id), true, false, now_usec(), USEC_NONE, USEC_NONE};
		cJSON *o = api_dag_detail(d, &s);
		cJSON *tasks = cJSON_AddArrayToObject(o, "tasks");
		for (size_t i = 0; i < d->ntasks; i++)
			cJSON_AddItemToArray(tasks, api_task(d, &d->tasks[i]));
		cli_print_json(o);
		store_close(st);
	} else if (dot) {
		print_dot(d);
	} else {
		print_dag_text(d);
	}
	dagbag_free(&bag);
	return rc;
}

/* dags check ---------------------------------------------------------------------------------------- */

static int dags_check(struct cli_ctx *cli, const struct cmd_args *a)
{
	bool json = a->set['j'];
	struct dagbag bag;
	char *err = NULL;

	cli_bag_init(cli, &bag);
	for (int i = 0; i < a->argc; i++) {
		if (dagbag_add_file(&bag, a->argv[i], &err) < 0) {
			fprintf(stderr, "sluice: cannot read %s\n", err);
			free(err);
			dagbag_free(&bag);
			return 1;
		}
	}
	if (a->argc == 0 && dagbag_refresh(&bag, &err) < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		free(err);
		dagbag_free(&bag);
		return 1;
	}
	size_t ndags = 0, nerr = dagbag_error_count(&bag);
	for (size_t i = 0; i < bag.nfiles; i++)
		ndags += bag.files[i].ndags;
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *errs = cJSON_AddArrayToObject(o, "import_errors");
		cJSON *dags = cJSON_AddArrayToObject(o, "dags");
		for (size_t i = 0; i < bag.nfiles; i++) {
			struct dagbag_file *f = &bag.files[i];
			if (f->error) {
				cJSON *e = cJSON_CreateObject();
				cJSON_AddStringToObject(e, "filename", f->path);
				cJSON_AddNumberToObject(e, "line", f->error_line);
				cJSON_AddStringToObject(e, "stack_trace", f->error);
				cJSON_AddItemToArray(errs, e);
			}
			for (size_t k = 0; k < f->ndags; k++) {
				cJSON *d = cJSON_CreateObject();
				cJSON_AddStringToObject(d, "dag_id", f->dags[k]->dag_id);
				cJSON_AddStringToObject(d, "fileloc", f->path);
				cJSON_AddNumberToObject(d, "tasks", (double)f->dags[k]->ntasks);
				cJSON_AddItemToArray(dags, d);
			}
		}
		cli_print_json(o);
	} else {
		print_import_errors(&bag, stdout);
		printf("%zu file%s, %zu DAG%s, %zu import error%s\n", bag.nfiles, bag.nfiles == 1 ? "" : "s",
		       ndags, ndags == 1 ? "" : "s", nerr, nerr == 1 ? "" : "s");
	}
	dagbag_free(&bag);
	return nerr ? 1 : 0;
}

/* dags pause / unpause ------------------------------------------------------------------------------ */

static int set_paused(struct cli_ctx *cli, const char *id, bool pause)
{
	struct dagbag bag;
	struct store *st;
	if (cli_load_bag(cli, &bag) < 0)
		return 1;
	struct dag *d = dagbag_find(&bag, id);
	int rc = 1;
	if (!d) {
		fprintf(stderr, "sluice: DAG '%s' not found in %s\n", id, cli->dags);
		goto out;
	}
	if (cli_open_store(cli, 0, &st) < 0)
		goto out;
	dagbag_sync_dag(st, &bag, d);
	if (store_dag_set_paused(st, d->dag_id, pause) == 0) {
		printf("Dag: %s, paused: %s\n", d->dag_id, pause ? "True" : "False");
		rc = 0;
	}
	store_close(st);
out:
	dagbag_free(&bag);
	return rc;
}

static int dags_pause(struct cli_ctx *cli, const struct cmd_args *a) { return set_paused(cli, a->argv[0], true); }
static int dags_unpause(struct cli_ctx *cli, const struct cmd_args *a) { return set_paused(cli, a->argv[0], false); }

/* dags test ------------------------------------------------------------------------------------------ */

/* Task instances in the DAG's topological order, then by map index. Each row's position is
 * looked up once (bsearch over the task ids), so the sort is O(n log n). */
struct id_pos {
	const char *id;
	int pos;
};

static int cmp_id_pos(const void *a, const void *b)
{
	return strcmp(((const struct id_pos *)a)->id, ((const struct id_pos *)b)->id);
}

struct keyed_ti {
	int pos;
	struct ti_row row;
};

static int cmp_keyed_ti(const void *a, const void *b)
{
	const struct keyed_ti *x = a, *y = b;
	if (x->pos != y->pos)
		return x->pos - y->pos;
	return x->row.map_index - y->row.map_index;
}

static void sort_tis(const struct dag *d, struct ti_row *tis, int n)
{
	struct id_pos *ix = xcalloc(d->ntasks ? d->ntasks : 1, sizeof(*ix));
	struct keyed_ti *k = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*k));
	for (size_t i = 0; i < d->ntasks; i++)
		ix[i] = (struct id_pos){d->tasks[d->topo[i]].id, (int)i};
	qsort(ix, d->ntasks, sizeof(*ix), cmp_id_pos);
	for (int i = 0; i < n; i++) {
		struct id_pos key = {tis[i].task_id, 0};
		struct id_pos *hit = bsearch(&key, ix, d->ntasks, sizeof(*ix), cmp_id_pos);
		k[i] = (struct keyed_ti){hit ? hit->pos : INT32_MAX, tis[i]};
	}
	qsort(k, (size_t)n, sizeof(*k), cmp_keyed_ti);
	for (int i = 0; i < n; i++)
		tis[i] = k[i].row;
	free(k);
	free(ix);
}

static void print_test_result(struct store *st, const struct dag *d, int64_t run_pk, bool json)
{
	struct run_row r = {0};
	struct ti_row *tis = NULL;
	struct run_row *runs = NULL;
	int n = store_run_list(st, d->dag_id, &runs);
	for (int i = 0; i < n; i++) {
		if (runs[i].pk == run_pk) {
			r = runs[i];
			memset(&runs[i], 0, sizeof(runs[i]));
		}
		run_row_free(&runs[i]);
	}
	free(runs);
	int nti = store_ti_list(st, run_pk, &tis);
	if (nti < 0)
		nti = 0;
	sort_tis(d, tis, nti);
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "dag_id", r.dag_id);
		cJSON_AddStringToObject(o, "run_id", r.run_id);
		cJSON_AddStringToObject(o, "state", r.state);
		json_add_time(o, "logical_date", r.logical_date);
		json_add_time(o, "data_interval_start", r.data_interval_start);
		json_add_time(o, "data_interval_end", r.data_interval_end);
		json_add_time(o, "start_date", r.start_date);
		json_add_time(o, "end_date", r.end_date);
		cJSON *arr = cJSON_AddArrayToObject(o, "task_instances");
		for (int i = 0; i < nti; i++) {
			struct ti_row *t = &tis[i];
			cJSON *j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "task_id", t->task_id);
			cJSON_AddNumberToObject(j, "map_index", t->map_index);
			if (!strcmp(t->state, "none"))
				cJSON_AddNullToObject(j, "state");
			else
				cJSON_AddStringToObject(j, "state", t->state);
			cJSON_AddNumberToObject(j, "try_number", t->try_number);
			cJSON_AddNumberToObject(j, "max_tries", t->max_tries);
			json_add_time(j, "start_date", t->start_date);
			json_add_time(j, "end_date", t->end_date);
			if (t->duration >= 0)
				cJSON_AddNumberToObject(j, "duration", t->duration);
			else
				cJSON_AddNullToObject(j, "duration");
			if (t->exit_code != TI_NO_EXIT)
				cJSON_AddNumberToObject(j, "exit_code", t->exit_code);
			else
				cJSON_AddNullToObject(j, "exit_code");
			cJSON_AddItemToArray(arr, j);
		}
		cli_print_json(o);
	} else {
		printf("%-28s %5s  %-16s %3s %9s %5s\n", "TASK", "MAP", "STATE", "TRY", "DURATION", "EXIT");
		for (int i = 0; i < nti; i++) {
			struct ti_row *t = &tis[i];
			char dur[32] = "-", ex[16] = "-";
			if (t->duration >= 0)
				snprintf(dur, sizeof(dur), "%.2fs", t->duration);
			if (t->exit_code != TI_NO_EXIT)
				snprintf(ex, sizeof(ex), "%d", t->exit_code);
			printf("%-28s %5d  %-16s %3d %9s %5s\n", t->task_id, t->map_index, t->state, t->try_number, dur, ex);
		}
		printf("\nrun %s of DAG %s: %s\n", r.run_id, r.dag_id, r.state);
	}
	for (int i = 0; i < nti; i++)
		ti_row_free(&tis[i]);
	free(tis);
	run_row_free(&r);
}

/* Removes an earlier run of the same DAG at the same logical date, with its logs, the way
 * `airflow dags test` replaces a colliding run. */
static void replace_old_run(struct cli_ctx *cli, struct store *st, const char *dag_id,
			    const char *run_id, usec_t logical_date)
{
	struct run_row old = {0};
	int rc = store_run_get(st, dag_id, run_id, 0, &old);
	if (rc == -ENOENT)
		rc = store_run_get(st, dag_id, NULL, logical_date, &old);
	if (rc < 0)
		return;
	char *err = NULL;
	if (ops_delete_run(st, NULL, cli->home, dag_id, old.run_id, true, &err) < 0)
		fprintf(stderr, "sluice: cannot replace the earlier run %s: %s\n", old.run_id, err);
	free(err);
	run_row_free(&old);
}

static int dags_test(struct cli_ctx *cli, const struct cmd_args *a)
{
	const char *conf = a->val['c'], *ld = a->val['d'];
	bool json = a->set['j'];
	int rc = 1;
	const char *id = a->argv[0];
	usec_t logical = (now_usec() / USEC_PER_SEC) * USEC_PER_SEC;
	if (ld && parse_iso8601(ld, &logical) < 0) {
		fprintf(stderr, "sluice: --logical-date: \"%s\" is not a date (use 2026-11-01 or 2026-11-01T03:00:00Z)\n", ld);
		return 2;
	}
	if (conf) {
		cJSON *c = cJSON_Parse(conf);
		bool ok = cJSON_IsObject(c);
		cJSON_Delete(c);
		if (!ok) {
			fprintf(stderr, "sluice: --conf must be a JSON object, e.g. '{\"region\": \"eu\"}'\n");
			return 2;
		}
	}

	struct dagbag bag;
	struct runner run = {.sigfd = -1};
	struct run_row done = {0};
	char *err = NULL, *shim = NULL, *run_id = NULL;
	if (cli_load_bag(cli, &bag) < 0)
		return 1;
	struct dag *d = dagbag_find(&bag, id);
	if (!d) {
		fprintf(stderr, "sluice: DAG '%s' not found in %s\n", id, cli->dags);
		print_import_errors(&bag, stderr);
		goto out;
	}
	shim = xasprintf("%s/sluice-shim", cli->exe_dir);
	struct runner_opts ro = {
		.home = cli->home,
		.shim_path = shim,
		.parallelism = cli->cfg->parallelism,
		.kill_grace = cli->cfg->kill_grace,
		.ignore_unknown_pools = true,
		.env_passthrough = cli->cfg->task_env_passthrough,
		.max_log_size = (long long)cli->cfg->max_log_size,
		.sync_full = !strcmp(cli->cfg->db_synchronous, "full"),
		.cfg = cli->cfg,
	};
	if (runner_open(&run, &ro, &err) < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		goto out;
	}
	dagbag_sync_dag(run.st, &bag, d);
	run_id = runs_default_id("manual", logical);
	replace_old_run(cli, run.st, d->dag_id, run_id, logical);
	struct run_request req = {
		.run_type = "manual",
		.run_id = run_id,
		.logical_date = logical,
		.data_interval_start = USEC_NONE,
		.data_interval_end = USEC_NONE,
		.conf = conf,
	};
	if (!json)
		fprintf(stderr, "running %s of DAG %s (logs in %s/logs/%s)\n", run_id, d->dag_id, cli->home, d->dag_id);
	int orc = runner_run_one(&run, d, &req, &done, &err);
	if (orc == -EINTR) {
		rc = 130;
	} else if (orc < 0) {
		fprintf(stderr, "sluice: cannot create the run: %s\n", err);
	} else {
		print_test_result(run.st, d, done.pk, json);
		rc = strcmp(done.state, "success") ? 1 : 0;
	}
out:
	free(err);
	free(run_id);
	run_row_free(&done);
	runner_close(&run);
	free(shim);
	dagbag_free(&bag);
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

/* Polls the run until it ends; returns its final row in *out. Bounded by the run itself. The
 * interval grows with the time waited, 1 ms at first, at most 20 ms: the exit follows the run's end
 * closely (a short run is not rounded up to a long poll) and a long run costs ~50 reads a second. */
static int wait_run(struct store *st, const char *dag_id, const char *run_id, struct run_row *out)
{
	usec_t t0 = now_usec();
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
		usec_t step = 1000 + (now_usec() - t0) / 100;
		if (step > 20 * 1000)
			step = 20 * 1000;
		struct timespec ts = {0, (long)step * 1000};
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

/* Tells the running daemon to look for queued runs now rather than at its next tick (it would find
 * the run within half a second anyway, so a failure here changes nothing but the wait). */
static void wake_daemon(const char *home)
{
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	char *err = NULL;
	cJSON_AddStringToObject(req, "op", "wake");
	if (control_call(home, req, &reply, 2 * USEC_PER_SEC, &err) < 0)
		log_debug("cannot wake the daemon: %s", err ? err : "?");
	free(err);
	cJSON_Delete(reply);
	cJSON_Delete(req);
}

static int dags_trigger(struct cli_ctx *cli, const struct cmd_args *a)
{
	const char *conf = a->set['c'] ? a->val['c'] : "{}", *ld = a->val['d'], *run_id = a->val['r'];
	bool wait = a->set['w'], json = a->set['j'];
	int rc = 1;
	char *err = NULL;
	usec_t logical = now_usec();
	if (ld && parse_iso8601(ld, &logical) < 0) {
		fprintf(stderr, "sluice: --logical-date: \"%s\" is not a date\n", ld);
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
	/* --run-id and --conf are checked before anything is read or written. */
	if (runs_check(&req, &err) < 0) {
		rc = cmd_usage_error(&cmd_dags_trigger, "%s", err);
		free(err);
		return rc;
	}
	int daemon_pid = 0;
	bool daemon = sched_daemon_running(cli->home, &daemon_pid);
	if (wait && !daemon) {
		fprintf(stderr, "sluice: --wait needs a running `sluice serve` for %s\n", cli->home);
		return 1;
	}

	struct dagbag bag;
	struct store *st = NULL;
	struct run_row r = {0}, done = {0};
	struct dag *fallback = NULL;
	if (cli_load_bag(cli, &bag) < 0)
		return 1;
	const char *id = a->argv[0];
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
	if (daemon)
		wake_daemon(cli->home);
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
	run_row_free(&r);
	run_row_free(&done);
	store_close(st);
	dagbag_free(&bag);
	return rc;
}

static const struct cmd_opt trigger_opts[] = {
	{"conf", 'c', "JSON", false, false, "the run's conf, a JSON object (overrides params)"},
	{"logical-date", 'd', "T", false, false, "its logical date (default: now)"},
	{"run-id", 'r', "ID", false, false, "its run id ([A-Za-z0-9_.~:+-], at most 250 bytes)"},
	{"wait", 'w', NULL, false, false, "wait for the run to end; exit 0 iff it succeeded (needs the daemon)"},
	{"json", 'j', NULL, false, false, "print Airflow's DAGRun"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_dags_trigger = {
	"dags", "trigger", "DAG_ID", 1, 1, trigger_opts, "queue a manual run for the daemon",
	"Queues a manual run. A running `sluice serve` starts it within a second; without a daemon the\n"
	"run stays queued until one starts. A DAG whose file does not import now runs in its last\n"
	"good version.",
	dags_trigger,
};

/* The table ------------------------------------------------------------------------------------ */

static const struct cmd_opt json_opt[] = {
	{"json", 'j', NULL, false, false, "print JSON in Airflow's field names"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_dags_list = {
	"dags", "list", NULL, 0, 0, json_opt, "the DAGs of the DAG folder", NULL, dags_list,
};

static const struct cmd_opt show_opts[] = {
	{"dot", 'd', NULL, false, false, "print the graph in Graphviz's dot language"},
	{"json", 'j', NULL, false, false, "print Airflow's DAGDetail with its tasks"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_dags_show = {
	"dags", "show", "DAG_ID", 1, 1, show_opts, "tasks and dependencies of a DAG", NULL, dags_show,
};

const struct cmd_entry cmd_dags_check = {
	"dags", "check", "[FILE...]", 0, -1, json_opt, "import every DAG file (or the given files)",
	"Imports every DAG file of the folder, or the given files, and prints each import error as\n"
	"file:line: message. Exits 1 if there is any.",
	dags_check,
};

static const struct cmd_opt test_opts[] = {
	{"logical-date", 'd', "DATE", false, false, "e.g. 2026-11-01 or 2026-11-01T03:00:00Z (default: now)"},
	{"conf", 'c', "JSON", false, false, "the run's conf (overrides params of the same name)"},
	{"json", 'j', NULL, false, false, "print the run and its task instances as JSON"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_dags_test = {
	"dags", "test", "DAG_ID", 1, 1, test_opts, "run one DAG run in the foreground",
	"Runs one run of the DAG to completion in the foreground, with every state change recorded\n"
	"in the database and every try logged under $SLUICE_HOME/logs. An earlier run at the same\n"
	"logical date is replaced. Exits 0 iff the run succeeded. A first SIGINT stops the running\n"
	"tasks and fails the run; a second quits at once.",
	dags_test,
};

const struct cmd_entry cmd_dags_pause = {
	"dags", "pause", "DAG_ID", 1, 1, NULL, "stop scheduled runs of a DAG",
	"Pauses the DAG: the daemon creates no scheduled runs for it; triggered runs stay queued.",
	dags_pause,
};

const struct cmd_entry cmd_dags_unpause = {
	"dags", "unpause", "DAG_ID", 1, 1, NULL, "resume scheduled runs of a DAG", NULL, dags_unpause,
};
