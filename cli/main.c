/* sluice: the command-line entry point. Global options are taken from anywhere on the command
 * line; the first remaining word picks a command from cmd_table. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "orchestrator/config.h"
#include "orchestrator/dag_probe.h"
#include "base/log.h"
#include "base/util.h"

static int config_show(struct cli_ctx *cli, const struct cmd_args *a)
{
	config_print(cli->cfg, a->set['j']);
	return 0;
}

static const struct cmd_opt config_opts[] = {
	{"json", 'j', NULL, false, false, "print JSON"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_config_show = {
	"config", "show", NULL, 0, 0, config_opts, "the effective configuration",
	"Prints every option with its value, bounds and where the value came from (default,\n"
	"$SLUICE_HOME/sluice.cfg, SLUICE__SECTION__KEY environment, flag).",
	config_show,
};

const struct cmd_entry *const cmd_table[] = {
	&cmd_serve,
	&cmd_dags_list, &cmd_dags_show, &cmd_dags_check, &cmd_dags_test, &cmd_dags_trigger, &cmd_dags_pause,
	&cmd_dags_unpause,
	&cmd_backfill_create, &cmd_backfill_list, &cmd_backfill_pause, &cmd_backfill_resume, &cmd_backfill_cancel,
	&cmd_runs_list, &cmd_runs_cancel,
	&cmd_tasks_list, &cmd_tasks_logs, &cmd_tasks_clear, &cmd_tasks_mark, &cmd_tasks_kill,
	&cmd_cron_next,
	&cmd_pools_list, &cmd_pools_set, &cmd_pools_delete,
	&cmd_users_create, &cmd_users_set_role, &cmd_users_passwd, &cmd_users_delete, &cmd_tokens_create, &cmd_tokens_list, &cmd_tokens_revoke,
	&cmd_variables_set, &cmd_variables_get, &cmd_variables_list, &cmd_variables_delete, &cmd_variables_import,
	&cmd_variables_export,
	&cmd_connections_add, &cmd_connections_get, &cmd_connections_list, &cmd_connections_delete, &cmd_connections_test,
	&cmd_db_migrate, &cmd_db_check, &cmd_db_prune, &cmd_db_backup, &cmd_db_rotate_key,
	&cmd_config_show,
	NULL,
};

/* The groups, in order, for `sluice help`. */
static const struct {
	const char *group, *summary;
} groups[] = {
	{"serve", "run the scheduler daemon, the web UI and the REST API"},
	{"dags", "list, show, check, test, trigger, pause and unpause DAGs"},
	{"backfill", "create, list, pause, resume and cancel backfills"},
	{"runs", "list and cancel the runs of a DAG"},
	{"tasks", "list, clear, mark and kill task instances; show their logs"},
	{"cron", "print the next fire times of a cron expression"},
	{"pools", "list, create, resize and delete pools"},
	{"users", "create and delete users of the REST API"},
	{"tokens", "create, list and revoke API tokens"},
	{"variables", "set, get, list, delete, import and export variables"},
	{"connections", "add, get, list, delete and test connections"},
	{"db", "migrate, check, prune and back up the database; rotate the secret key"},
	{"config", "show the effective configuration"},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice [--home DIR] [--dags DIR] COMMAND [ARGS...]\n"
		"\n"
		"sluice is a workflow orchestrator: DAGs written in Lua, run with retries, timeouts\n"
		"and every state change kept in SQLite.\n"
		"\n"
		"Global options (also accepted after the command):\n"
		"  --home DIR   state directory: database, logs, sluice.cfg (env SLUICE_HOME,\n"
		"               default ./.sluice)\n"
		"  --dags DIR   folder of DAG files (env SLUICE_DAGS, config core.dags_folder,\n"
		"               default ./dags)\n"
		"  -v, --verbose  print debug messages\n"
		"  -h, --help   show this help;  --version  print the version\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		fprintf(f, "  %-8s %s\n", groups[i].group, groups[i].summary);
	fprintf(f, "\nRun `sluice help COMMAND` (or `sluice COMMAND --help`) for its commands and options.\n");
}

void cli_print_json(cJSON *j)
{
	char *s = cJSON_Print(j);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
	}
	free(s);
	cJSON_Delete(j);
}

static char *absolute(const char *p)
{
	char cwd[PATH_MAX];
	if (p[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return xstrdup(p);
	return xasprintf("%s/%s", cwd, p);
}

/* Removes argv[i] (and n-1 following words) from the vector. */
static void drop_args(int *argc, char **argv, int i, int n)
{
	memmove(argv + i, argv + i + n, (size_t)(*argc - i - n + 1) * sizeof(char *));
	*argc -= n;
}

int main(int argc, char **argv)
{
	const char *home_arg = getenv("SLUICE_HOME"), *dags_arg = getenv("SLUICE_DAGS");
	struct config cfg;
	char *err = NULL;
	int rc;

	for (int i = 1; i < argc;) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			break;
		} else if ((!strcmp(a, "--home") || !strcmp(a, "--dags")) && i + 1 < argc) {
			if (a[2] == 'h')
				home_arg = argv[i + 1];
			else
				dags_arg = argv[i + 1];
			drop_args(&argc, argv, i, 2);
		} else if (!strncmp(a, "--home=", 7)) {
			home_arg = a + 7;
			drop_args(&argc, argv, i, 1);
		} else if (!strncmp(a, "--dags=", 7)) {
			dags_arg = a + 7;
			drop_args(&argc, argv, i, 1);
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			log_set_level(LOG_LVL_DEBUG);
			drop_args(&argc, argv, i, 1);
		} else if (!strcmp(a, "--home") || !strcmp(a, "--dags")) {
			fprintf(stderr, "sluice: %s needs a directory\n", a);
			return 2;
		} else {
			i++;
		}
	}
	/* The daemon's parse probe (orchestrator/dag_probe.h): not a command for people. */
	if (argc == 3 && !strcmp(argv[1], "__dag-probe"))
		return dag_probe_serve(atoi(argv[2]));
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || (!strcmp(argv[1], "help") && argc == 2)) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("sluice %s\n", SLUICE_VERSION);
		return 0;
	}
	bool known = !strcmp(argv[1], "help");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		known |= !strcmp(groups[i].group, argv[1]);
	if (!known) {
		fprintf(stderr, "sluice: unknown command '%s'\n\n", argv[1]);
		usage(stderr);
		return 2;
	}

	char *home = absolute(home_arg && *home_arg ? home_arg : ".sluice");
	if (config_load(&cfg, home, &err) < 0) {
		fprintf(stderr, "sluice: configuration error: %s\n", err);
		free(err);
		free(home);
		return 1;
	}
	if (dags_arg && *dags_arg && config_set(&cfg, "core.dags_folder", dags_arg, &err) < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		free(err);
		return 1;
	}
	char *exe = exe_dir();
	struct cli_ctx cli = {.home = home, .dags = cfg.dags_folder, .exe_dir = exe, .cfg = &cfg};
	rc = cmd_dispatch(&cli, argc - 1, argv + 1);
	config_free(&cfg);
	free(exe);
	free(home);
	return rc;
}
