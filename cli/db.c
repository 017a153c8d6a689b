/* sluice db migrate | check */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "orchestrator/ops.h"
#include "orchestrator/secrets.h"
#include "orchestrator/store.h"

static int db_migrate(struct cli_ctx *cli, const struct cmd_args *a)
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

static int db_check(struct cli_ctx *cli, const struct cmd_args *a)
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
static int db_prune(struct cli_ctx *cli, const struct cmd_args *a)
{
	usec_t age = 0;
	bool dry = a->set['n'];
	if (parse_duration(a->val['o'], &age) < 0 || age <= 0)
		return cmd_usage_error(&cmd_db_prune, "--older-than takes a duration such as 90d");
	struct store *st;
	struct run_row *runs = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int n = store_run_list_ended_before(st, now_usec() - age, &runs), done = 0;
	for (int i = 0; i < n; i++) {
		struct run_row *r = &runs[i];
		if (!dry) {
			char *err = NULL;
			if (ops_delete_run(st, NULL, cli->home, r->dag_id, r->run_id, false, &err) == 0)
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

/* db backup FILE: a consistent copy of the database while the daemon runs. */
static int db_backup(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st;
	char *err = NULL;
	if (cli_open_store(cli, STORE_READONLY, &st) < 0)
		return 1;
	usec_t t0 = mono_usec();
	int rc = store_backup(st, a->argv[0], &err);
	if (rc == 0)
		printf("backed up %s/sluice.db to %s in %.1f s (schema level %d)\n", cli->home, a->argv[0],
		       (double)(mono_usec() - t0) / 1e6, store_schema_level(st));
	else
		fprintf(stderr, "sluice db backup: %s\n", err);
	free(err);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

const struct cmd_entry cmd_db_backup = {
	"db", "backup", "FILE", 1, 1, NULL, "a consistent copy of the database, while the daemon runs",
	"Copies $SLUICE_HOME/sluice.db to FILE with SQLite's online backup API: the daemon and other\n"
	"commands go on writing meanwhile, and the copy is one consistent state. It is checked with\n"
	"integrity_check and put in place (mode 0600) only when whole. Restore: stop the daemon, copy FILE\n"
	"to sluice.db (remove sluice.db-wal and -shm), start it. Secrets stay sealed: keep secret.key apart.",
	db_backup,
};

/* db rotate-key: a new secret key; every sealed value is re-sealed under it. */
static int db_rotate_key(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st;
	char *err = NULL;
	(void)a;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int n = secrets_rotate(st, cli->home, &err);
	if (n >= 0)
		printf("new key in %s/secret.key; %d sealed value%s re-sealed\n", cli->home, n, n == 1 ? "" : "s");
	else
		fprintf(stderr, "sluice db rotate-key: %s\n", err);
	free(err);
	store_close(st);
	return n >= 0 ? 0 : 1;
}

const struct cmd_entry cmd_db_rotate_key = {
	"db", "rotate-key", NULL, 0, 0, NULL, "replace the key that seals secrets",
	"Makes a new random key in $SLUICE_HOME/secret.key and re-seals every sealed value (connection\n"
	"passwords, secret-looking variables and extras) under it, in one transaction. Until the new key is\n"
	"in place the old one stays in the file, so a crash loses nothing. Refused when the key comes from\n"
	"SLUICE_SECRET_KEY.",
	db_rotate_key,
};

const struct cmd_entry cmd_db_migrate = {
	"db", "migrate", NULL, 0, 0, NULL, "apply pending schema migrations",
	"Applies pending schema migrations to $SLUICE_HOME/sluice.db (every command does so too).", db_migrate,
};

const struct cmd_entry cmd_db_check = {
	"db", "check", NULL, 0, 0, NULL, "schema level, integrity and foreign-key checks",
	"Reports the schema level and runs SQLite's integrity and foreign-key checks; exits 1 on any\n"
	"problem.",
	db_check,
};

static const struct cmd_opt prune_opts[] = {
	{"older-than", 'o', "DURATION", true, false, "runs that ended longer ago than this (e.g. 90d)"},
	{"dry-run", 'n', NULL, false, false, "list what would go; remove nothing"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_db_prune = {
	"db", "prune", NULL, 0, 0, prune_opts, "remove old finished runs and their logs",
	"Removes finished runs that ended longer ago, with their task instances, tries, outputs and\n"
	"logs. Running and queued runs are never touched; logs are only removed inside\n"
	"$SLUICE_HOME/logs.",
	db_prune,
};
