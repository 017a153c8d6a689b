/* sluice backfill create | list | pause | resume | cancel */
#include <errno.h>
#include <getopt.h>
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

static void backfill_usage(FILE *f)
{
	fprintf(f, "usage: sluice backfill COMMAND\n\n"
		   "  create DAG_ID --from DATE --to DATE [--reprocess none|failed|completed]\n"
		   "         [--max-active-runs N] [--run-backwards] [--conf JSON] [--dry-run] [--json]\n"
		   "      one run per logical date of the DAG's schedule in [--from, --to] (inclusive;\n"
		   "      dates without an offset are read in the DAG's time zone). none (default): only\n"
		   "      dates with no run; failed: also re-run failed runs; completed: re-run all.\n"
		   "      --dry-run prints what would happen. The daemon (sluice serve) runs it, at most\n"
		   "      --max-active-runs (default 10) runs at a time, after scheduled runs.\n"
		   "  list [DAG_ID] [--json]\n"
		   "  pause ID | resume ID        stop / resume creating runs (running ones go on)\n"
		   "  cancel ID                   stop for good; its runs that have not started fail\n");
}

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

static int cmd_backfill_create(struct cli_ctx *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{"reprocess", required_argument, NULL, 'r'},
		{"max-active-runs", required_argument, NULL, 'm'},
		{"run-backwards", no_argument, NULL, 'b'},
		{"conf", required_argument, NULL, 'c'},
		{"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct backfill_request req = {.max_active_runs = 10, .reprocess = "none", .conf = "{}"};
	bool dry = false, json = false;
	int opt, rc = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': req.from = optarg; break;
		case 't': req.to = optarg; break;
		case 'r': req.reprocess = optarg; break;
		case 'm': req.max_active_runs = atoi(optarg); break;
		case 'b': req.run_backwards = true; break;
		case 'c': req.conf = optarg; break;
		case 'n': dry = true; break;
		case 'j': json = true; break;
		case 'h': backfill_usage(stdout); return 0;
		default: return 2;
		}
	}
	if (optind != argc - 1 || !req.from || !req.to) {
		fprintf(stderr, "usage: sluice backfill create DAG_ID --from DATE --to DATE [...] (see --help)\n");
		return 2;
	}
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
	struct dag *d = dagbag_find(&bag, argv[optind]);
	if (!d) {
		fprintf(stderr, "sluice: DAG '%s' not found in %s\n", argv[optind], cli->dags);
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

static int backfill_list(struct cli_ctx *cli, int argc, char **argv)
{
	const char *dag_id = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] != '-' && !dag_id)
			dag_id = argv[i];
		else {
			fprintf(stderr, "sluice backfill list: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
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

static int cmd_backfill_change(struct cli_ctx *cli, int argc, char **argv, const char *what)
{
	if (argc != 2) {
		fprintf(stderr, "usage: sluice backfill %s ID\n", what);
		return 2;
	}
	struct store *st = NULL;
	struct backfill_row b = {0};
	int rc = 1;
	char *end;
	long long id = strtoll(argv[1], &end, 10);
	if (*end || id <= 0) {
		fprintf(stderr, "sluice: backfill ids are numbers (see `sluice backfill list`)\n");
		return 2;
	}
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	enum bf_change ch = !strcmp(what, "cancel") ? BF_CANCEL : !strcmp(what, "pause") ? BF_PAUSE : BF_RESUME;
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

int cli_backfill(struct cli_ctx *cli, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		backfill_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "create"))
		return cmd_backfill_create(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "list"))
		return backfill_list(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "pause") || !strcmp(sub, "resume") || !strcmp(sub, "cancel"))
		return cmd_backfill_change(cli, argc - 1, argv + 1, sub);
	fprintf(stderr, "sluice backfill: unknown command '%s'\n", sub);
	backfill_usage(stderr);
	return 2;
}
