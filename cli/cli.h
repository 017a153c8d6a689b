/* The CLI's command table entries. Each command gets the global context and its own argv
 * (argv[0] is the command word, e.g. "dags") and returns the process exit status. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdbool.h>

struct config;

struct cli_ctx {
	const char *home;      /* $SLUICE_HOME (already resolved, absolute) */
	const char *dags;      /* DAG folder (absolute) */
	const char *exe_dir;   /* directory of the sluice binary (to find sluice-shim) */
	struct config *cfg;    /* effective configuration */
};

/* Prints a JSON tree (pretty) to stdout and frees it. */
struct cJSON;
void cli_print_json(struct cJSON *j);

struct dagbag;
struct store;

/* Initialises / loads the DAG bag of the configured folder with the configured limits.
 * cli_load_bag prints the error, frees the bag and returns -1 when the folder cannot be read. */
void cli_bag_init(struct cli_ctx *cli, struct dagbag *bag);
int cli_load_bag(struct cli_ctx *cli, struct dagbag *bag);
/* $SLUICE_HOME/sluice.db (malloc'd). */
char *cli_db_path(struct cli_ctx *cli);
/* Opens the database (creating $SLUICE_HOME unless read-only). Prints errors. With
 * STORE_READONLY and no database yet, returns -ENOENT silently with *st = NULL. */
int cli_open_store(struct cli_ctx *cli, int flags, struct store **st);

int cli_dags(struct cli_ctx *cli, int argc, char **argv);
int cli_db(struct cli_ctx *cli, int argc, char **argv);
int cli_tasks(struct cli_ctx *cli, int argc, char **argv);
int cli_cron(struct cli_ctx *cli, int argc, char **argv);
int cli_runs(struct cli_ctx *cli, int argc, char **argv);
int cli_serve(struct cli_ctx *cli, int argc, char **argv);
int cli_pools(struct cli_ctx *cli, int argc, char **argv);
int cli_backfill(struct cli_ctx *cli, int argc, char **argv);
int cli_users(struct cli_ctx *cli, int argc, char **argv);
int cli_tokens(struct cli_ctx *cli, int argc, char **argv);
/* sluice dags trigger (argv[0] == "trigger"). */
int cli_dags_trigger(struct cli_ctx *cli, int argc, char **argv);

#endif
