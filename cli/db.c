/* sluice db migrate | check */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "orchestrator/ops.h"
#include "orchestrator/store.h"

static int db_migrate(struct cli_ctx *cli)
{
	struct store *st;
	char *err = NULL;
	int from, to;
	if (cli_open_store(cli, STORE_NO_MIGRATE, &st) < 0)
		return 1;
	int rc = store_migrate(st, &from, &to, &err);
	if (rc < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		free(err);
		store_close(st);
		return 1;
	}
	if (from == to)
		printf("database %s/sluice.db is up to date (schema level %d)\n", cli->home, to);
	else
		printf("migrated %s/sluice.db from schema level %d to %d\n", cli->home, from, to);
	store_close(st);
	return 0;
}

static int db_check(struct cli_ctx *cli)
{
	struct store *st;
	struct strbuf report = {0};
	char *path = cli_db_path(cli), *err = NULL;
	int rc = store_open(path, STORE_READONLY | STORE_NO_MIGRATE, &st, &err);
	if (rc < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		free(err);
		free(path);
		return 1;
	}
	int level = store_schema_level(st), target = store_schema_target();
	int problems = store_integrity(st, &report);
	printf("database:     %s\n", path);
	printf("schema level: %d (this sluice: %d)%s\n", level, target,
	       level < target ? " -- run `sluice db migrate`" : "");
	printf("integrity:    %s\n", problems == 0 ? "ok" : "PROBLEMS FOUND");
	fputs(sb_str(&report), stdout);
	sb_free(&report);
	store_close(st);
	free(path);
	return problems == 0 && level == target ? 0 : 1;
}

/* db prune --older-than D [--dry-run]: finished runs that ended longer ago go, with their task
 * instances, tries, outputs and logs. Running and queued runs are never touched. */
static int db_prune(struct cli_ctx *cli, int argc, char **argv)
{
	usec_t age = 0;
	bool dry = false;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--older-than") && i + 1 < argc && parse_duration(argv[i + 1], &age) == 0)
			i++;
		else if (!strcmp(argv[i], "--dry-run"))
			dry = true;
		else {
			fprintf(stderr, "usage: sluice db prune --older-than DURATION [--dry-run]   (e.g. 90d)\n");
			return 2;
		}
	}
	if (age <= 0) {
		fprintf(stderr, "usage: sluice db prune --older-than DURATION [--dry-run]   (e.g. 90d)\n");
		return 2;
	}
	struct store *st;
	struct run_row *runs = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int n = store_run_list_ended_before(st, now_usec() - age, &runs), done = 0;
	for (int i = 0; i < n; i++) {
		struct run_row *r = &runs[i];
		if (!dry) {
			char *err = NULL;
			if (ops_delete_run(st, cli->home, r->dag_id, r->run_id, false, &err) == 0)
				done++;
			else
				fprintf(stderr, "sluice: %s %s: %s\n", r->dag_id, r->run_id, err);
			free(err);
		}
		printf("%s %s %s (%s)\n", dry ? "would remove" : "removed", r->dag_id, r->run_id, r->state);
		run_row_free(r);
	}
	free(runs);
	store_close(st);
	printf("%d run%s %s\n", dry ? (n < 0 ? 0 : n) : done, (dry ? n : done) == 1 ? "" : "s",
	       dry ? "would be removed" : "removed");
	return 0;
}

int cli_db(struct cli_ctx *cli, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: sluice db COMMAND\n\n"
			"  migrate   apply pending schema migrations to $SLUICE_HOME/sluice.db\n"
			"  check     report the schema level and run SQLite's integrity and foreign-key\n"
			"            checks; exits 1 on any problem\n"
			"  prune --older-than DURATION [--dry-run]\n"
			"            remove finished runs that ended longer ago (e.g. 90d), with their task\n"
			"            instances, tries, outputs and logs\n");
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "migrate"))
		return db_migrate(cli);
	if (!strcmp(argv[1], "check"))
		return db_check(cli);
	if (!strcmp(argv[1], "prune"))
		return db_prune(cli, argc, argv);
	fprintf(stderr, "sluice db: unknown command '%s'\n", argv[1]);
	return 2;
}
