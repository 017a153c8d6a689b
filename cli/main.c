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
#include "base/log.h"
#include "base/util.h"

static int cli_config(struct cli_ctx *cli, int argc, char **argv);

static const struct cmd_entry {
	const char *name;
	int (*fn)(struct cli_ctx *cli, int argc, char **argv);
	const char *summary;
} cmd_table[] = {
	{"serve", cli_serve, "run the scheduler daemon"},
	{"dags", cli_dags, "list, show, check, test, trigger, pause and unpause DAGs"},
	{"backfill", cli_backfill, "create, list, pause, resume and cancel backfills"},
	{"runs", cli_runs, "list the runs of a DAG"},
	{"tasks", cli_tasks, "list, clear and mark task instances; show their logs"},
	{"cron", cli_cron, "print the next fire times of a cron expression"},
	{"pools", cli_pools, "list, create, resize and delete pools"},
	{"users", cli_users, "create users of the REST API"},
	{"tokens", cli_tokens, "create API tokens"},
	{"db", cli_db, "migrate and check the database"},
	{"config", cli_config, "show the effective configuration"},
	{NULL, NULL, NULL},
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
	for (const struct cmd_entry *c = cmd_table; c->name; c++)
		fprintf(f, "  %-8s %s\n", c->name, c->summary);
	fprintf(f, "\nRun `sluice COMMAND --help` for the options of a command.\n");
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

static int cli_config(struct cli_ctx *cli, int argc, char **argv)
{
	bool json = false;
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		printf("usage: sluice config show [--json]\n\n"
		       "Prints every option with its value and where the value came from\n"
		       "(default, $SLUICE_HOME/sluice.cfg, SLUICE__SECTION__KEY environment, flag).\n");
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "show")) {
		fprintf(stderr, "sluice config: unknown subcommand '%s'\n", argv[1]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else {
			fprintf(stderr, "sluice config show: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	config_print(cli->cfg, json);
	return 0;
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
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("sluice %s\n", SLUICE_VERSION);
		return 0;
	}
	const struct cmd_entry *cmd = cmd_table;
	while (cmd->name && strcmp(cmd->name, argv[1]))
		cmd++;
	if (!cmd->name) {
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
	rc = cmd->fn(&cli, argc - 1, argv + 1);
	config_free(&cfg);
	free(exe);
	free(home);
	return rc;
}
