/* sluice backfill create | list | pause | resume | cancel */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "web/apijson.h"
#include "orchestrator/backfill.h"
#include "cli/cli.h"
#include "orchestrator/dagbag.h"
#include "orchestrator/dag_lua.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/store.h"

static void print_backfill(const struct backfill_row *b)
{
	char f[ISO_BUFSZ], t[ISO_BUFSZ];
	format_iso8601(b->from_date, f, sizeof(f));
	format_iso8601(b->to_date, t, sizeof(t));
	printf("backfill %lld of %s: %s .. %s, reprocess %s, max %d active runs%s, %s\n", (long long)b->id,
	       b->dag_id, f, t, b->reprocess_behavior, b->max_active_runs, b->run_backwards ? ", backwards" : "",
	       b->completed_at != USEC_NONE ? "completed" : b->is_paused ? "paused" : "running");
}

/* --dry-run: what the backfill would do at each date. */
static void print_plan(const struct backfill_step *steps, size_t n, bool json)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		const char *action = backfill_action_name(steps[i].action);
		char iso[ISO_BUFSZ];
		format_iso8601(steps[i].logical_date, iso, sizeof(iso));
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "logical_date", iso);
			cJSON_AddStringToObject(o, "action", action);
			if (steps[i].existing_state)
				cJSON_AddStringToObject(o, "existing_state", steps[i].existing_state);
			cJSON_AddItemToArray(arr, o);
		} else if (steps[i].existing_state) {
			printf("%-10s %s  (existing run: %s)\n", action, iso, steps[i].existing_state);
		} else {
			printf("%-10s %s\n", action, iso);
		}
	}
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "backfills", arr);
		cJSON_AddNumberToObject(o, "total_entries", (double)n);
		cli_print_json(o);
	} else {
		cJSON_Delete(arr);
		printf("%zu logical date%s (dry run: nothing was created)\n", n, n == 1 ? "" : "s");
	}
}

static int create(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct backfill_request req = {
		.from = a->val['f'],
		.to = a->val['t'],
		.reprocess = a->set['r'] ? a->val['r'] : "none",
		.max_active_runs = 10,
		.run_backwards = a->set['b'],
		.conf = a->set['c'] ? a->val['c'] : "{}",
	};
	bool dry = a->set['n'], json = a->set['j'];
	int rc = cmd_int_opt(&cmd_backfill_create, a, 'm', 1, 1000000, &req.max_active_runs);
	if (rc)
		return rc;
	rc = 1;
	if (!backfill_reprocess_valid(req.reprocess) || req.max_active_runs < 1) {
		fprintf(stderr, "sluice: --reprocess is none, failed or completed; --max-active-runs at least 1\n");
		return 2;
	}
	cJSON *c = cJSON_Parse(req.conf);
	bool conf_ok = cJSON_IsObject(c);
	cJSON_Delete(c);
	if (!conf_ok) {
		fprintf(stderr, "sluice: --conf must be a JSON object\n");
		return 2;
	}
	struct dagbag bag;
	struct store *st = NULL;
	struct backfill_row b = {0};
	struct backfill_step *steps = NULL;
	size_t n = 0;
	char *err = NULL;
	if (cli_load_bag(cli, &bag) < 0)
		return 1;
	struct dag *d = dagbag_find(&bag, a->argv[0]);
	if (!d) {
		fprintf(stderr, "sluice: DAG '%s' not found in %s\n", a->argv[0], cli->dags);
		goto out;
	}
	if (dry) {
		cli_open_store(cli, STORE_READONLY, &st);
		if (backfill_plan(st, d, &req, &b, &steps, &n, &err) < 0) {
			fprintf(stderr, "sluice: %s\n", err);
			goto out;
		}
		print_plan(steps, n, json);
		rc = 0;
		goto out;
	}
	if (cli_open_store(cli, 0, &st) < 0)
		goto out;
	req.dag_source = dagbag_source_of(&bag, d);
	int crc = backfill_create(st, d, &req, &b, &err);
	if (crc < 0) {
		fprintf(stderr, "sluice: %s%s\n", err,
			crc == -EEXIST ? " (see `sluice backfill list`)" : "");
		goto out;
	}
	if (json)
		cli_print_json(api_backfill(&b));
	else
		print_backfill(&b);
	if (!sched_daemon_running(cli->home, NULL))
		fprintf(stderr, "no `sluice serve` is running: the backfill starts when it runs\n");
	rc = 0;
out:
	free(err);
	backfill_steps_free(steps, n);
	backfill_row_free(&b);
	store_close(st);
	dagbag_free(&bag);
	return rc;
}

static int backfill_list(struct cli_ctx *cli, const struct cmd_args *a)
{
	const char *dag_id = a->argc ? a->argv[0] : NULL;
	bool json = a->set['j'];
	struct store *st = NULL;
	struct backfill_row *bfs = NULL;
	int n = 0;
	if (cli_open_store(cli, STORE_READONLY, &st) == 0)
		n = store_backfill_list(st, dag_id, false, &bfs);
	if (n < 0)
		n = 0;
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(o, "backfills");
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, api_backfill(&bfs[i]));
		cJSON_AddNumberToObject(o, "total_entries", n);
		cli_print_json(o);
	}
	for (int i = 0; i < n; i++) {
		if (!json)
			print_backfill(&bfs[i]);
		backfill_row_free(&bfs[i]);
	}
	free(bfs);
	store_close(st);
	return 0;
}

static int change(struct cli_ctx *cli, const struct cmd_args *a, enum bf_change ch)
{
	struct store *st = NULL;
	struct backfill_row b = {0};
	int rc = 1;
	char *end;
	long long id = strtoll(a->argv[0], &end, 10);
	if (*end || id <= 0) {
		fprintf(stderr, "sluice: backfill ids are numbers (see `sluice backfill list`)\n");
		return 2;
	}
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	char *err = NULL;
	if (backfill_change(st, id, ch, &b, &err) == 0) {
		print_backfill(&b);
		rc = 0;
	} else {
		fprintf(stderr, "sluice: %s\n", err);
	}
	free(err);
	backfill_row_free(&b);
	store_close(st);
	return rc;
}

static int backfill_pause(struct cli_ctx *cli, const struct cmd_args *a) { return change(cli, a, BF_PAUSE); }
static int backfill_resume(struct cli_ctx *cli, const struct cmd_args *a) { return change(cli, a, BF_RESUME); }
static int backfill_cancel(struct cli_ctx *cli, const struct cmd_args *a) { return change(cli, a, BF_CANCEL); }

static const struct cmd_opt create_opts[] = {
	{"from", 'f', "DATE", true, false, "the first logical date (inclusive; without an offset, in the DAG's zone)"},
	{"to", 't', "DATE", true, false, "the last logical date (inclusive)"},
	{"reprocess", 'r', "none|failed|completed", false, false,
	 "none (default): only dates with no run; failed: also re-run failed runs; completed: all"},
	{"max-active-runs", 'm', "N", false, false, "runs of the backfill at a time (default 10)"},
	{"run-backwards", 'b', NULL, false, false, "newest date first"},
	{"conf", 'c', "JSON", false, false, "the runs' conf"},
	{"dry-run", 'n', NULL, false, false, "print what would happen at each date; create nothing"},
	{"json", 'j', NULL, false, false, "print JSON (Airflow 3's Backfill)"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_backfill_create = {
	"backfill", "create", "DAG_ID", 1, 1, create_opts, "one run per logical date in a range",
	"Records a backfill: one run per logical date of the DAG's schedule in [--from, --to]. The\n"
	"daemon (sluice serve) runs it, at most --max-active-runs runs at a time, after scheduled runs.\n"
	"A DAG has at most one backfill in progress.",
	create,
};

static const struct cmd_opt list_opts[] = {
	{"json", 'j', NULL, false, false, "print JSON (Airflow 3's Backfill)"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_backfill_list = {
	"backfill", "list", "[DAG_ID]", 0, 1, list_opts, "backfills, of one DAG or all", NULL, backfill_list,
};
const struct cmd_entry cmd_backfill_pause = {
	"backfill", "pause", "ID", 1, 1, NULL, "stop creating runs (running ones go on)", NULL, backfill_pause,
};
const struct cmd_entry cmd_backfill_resume = {
	"backfill", "resume", "ID", 1, 1, NULL, "resume creating runs", NULL, backfill_resume,
};
const struct cmd_entry cmd_backfill_cancel = {
	"backfill", "cancel", "ID", 1, 1, NULL, "stop for good; its runs that have not started fail", NULL,
	backfill_cancel,
};
