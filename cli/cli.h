/* The CLI as a command table (as tmux's cmd_table): one struct cmd_entry per command, with its
 * words, positional arguments, options, argument counts, help and function. One dispatcher
 * (cmd.c) parses every command line the same way, checks the counts and the required options,
 * prints usage on a mistake (exit 2) and help for --help, -h and `sluice help COMMAND`; so a
 * command function only reads its parsed arguments, makes one call and prints. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdbool.h>
#include <stdio.h>

struct config;

struct cli_ctx {
	const char *home;      /* $SLUICE_HOME (already resolved, absolute) */
	const char *dags;      /* DAG folder (absolute) */
	const char *exe_dir;   /* directory of the sluice binary (to find sluice-shim) */
	struct config *cfg;    /* effective configuration */
};

/* An option: --name [ARG]; its one-character key is how the command reads it (cmd_args) and,
 * with short set, also its short form (-n 5). */
struct cmd_opt {
	const char *name;
	char key;
	const char *arg;       /* the value's name in usage ("JSON"), NULL for a flag */
	bool required;
	bool short_too;
	const char *help;
};

/* A parsed command line: the positional arguments and the options, by key. */
struct cmd_args {
	int argc;
	char **argv;
	bool set[128];
	const char *val[128];
};

struct cmd_entry {
	const char *group;     /* "dags", or the command itself for one-word commands ("serve") */
	const char *name;      /* "trigger", or NULL for a one-word command */
	const char *args;      /* positional synopsis, e.g. "DAG_ID RUN_ID TASK_ID..." */
	int min_args, max_args; /* positional counts; max -1 = any number */
	const struct cmd_opt *opts; /* ended by a {NULL} row; NULL for none */
	const char *summary;   /* one line, for the group's list */
	const char *help;      /* what it does (for --help), NULL = the summary */
	int (*fn)(struct cli_ctx *cli, const struct cmd_args *a);
};

/* Every command, in the order `sluice help` lists them (main.c). */
extern const struct cmd_entry *const cmd_table[];

/* Dispatches argv (argv[0] is the first word after the global options) through cmd_table.
 * Returns the exit status. */
int cmd_dispatch(struct cli_ctx *cli, int argc, char **argv);
/* Prints "usage: sluice GROUP NAME ARGS [OPTIONS]" for e to f. */
void cmd_usage(FILE *f, const struct cmd_entry *e);
/* The usage of e on stderr plus a reason; returns 2 (a usage error) for the command to return. */
int cmd_usage_error(const struct cmd_entry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The integer value of option key, in [min, max], into *out (left alone when the option is not
 * given). Returns 0, or 2 after printing e's usage: `return` it. */
int cmd_int_opt(const struct cmd_entry *e, const struct cmd_args *a, char key, long min, long max, int *out);

/* Whether e changes something, so that its runs go into the audit log (cli/audit.c). */
bool cli_audited(const struct cmd_entry *e);
/* Records a run of e (argv as typed, from the group word on; a as parsed; status its exit
 * status). */
void cli_audit(struct cli_ctx *cli, const struct cmd_entry *e, int argc, char **argv, const struct cmd_args *a,
	       int status);

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

/* The commands of each file. */
extern const struct cmd_entry cmd_serve, cmd_dags_list, cmd_dags_show, cmd_dags_check, cmd_dags_test,
	cmd_dags_trigger, cmd_dags_pause, cmd_dags_unpause, cmd_backfill_create, cmd_backfill_list,
	cmd_backfill_pause, cmd_backfill_resume, cmd_backfill_cancel, cmd_runs_list, cmd_runs_cancel, cmd_tasks_list,
	cmd_tasks_logs, cmd_tasks_clear, cmd_tasks_mark, cmd_tasks_kill, cmd_cron_next, cmd_pools_list, cmd_pools_set,
	cmd_pools_delete, cmd_users_create, cmd_users_delete, cmd_tokens_create, cmd_tokens_list, cmd_tokens_revoke, cmd_db_migrate, cmd_db_check, cmd_db_prune,
	cmd_config_show, cmd_db_rotate_key, cmd_db_backup, cmd_users_set_role, cmd_users_passwd, cmd_variables_set, cmd_variables_get, cmd_variables_list,
	cmd_variables_delete, cmd_variables_import, cmd_variables_export, cmd_connections_add, cmd_connections_get,
	cmd_connections_list, cmd_connections_delete, cmd_connections_test;

#endif
