/* The audit log of the CLI: each command that changes something is recorded after it ran, with
 * who (the OS user), what (the command line, secrets masked, and its exit status) and where (the
 * host), as Airflow's CLI records cli_* events. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "base/util.h"
#include "orchestrator/secrets.h"
#include "orchestrator/store.h"

/* The commands that change something ("group name"). */
static const char *const audited[] = {
	"dags trigger", "dags pause", "dags unpause", "backfill create", "backfill pause", "backfill resume",
	"backfill cancel", "runs cancel", "tasks clear", "tasks mark", "tasks kill", "pools set", "pools delete",
	"users create", "users set-role", "users passwd", "users delete", "tokens create", "tokens revoke", "variables set", "variables delete",
	"variables import", "connections add", "connections delete", "db prune", "db rotate-key", NULL,
};

bool cli_audited(const struct cmd_entry *e)
{
	char name[64];
	snprintf(name, sizeof(name), "%s %s", e->group, e->name ? e->name : "");
	for (size_t i = 0; audited[i]; i++)
		if (!strcmp(audited[i], name))
			return true;
	return false;
}

/* argv with the secrets a command line may hold replaced by "***": the value of a variable
 * whose key looks secret, --password, and a --uri (which may hold one). */
static cJSON *masked_argv(const struct cmd_entry *e, int argc, char **argv, const struct cmd_args *a)
{
	cJSON *arr = cJSON_CreateArray();
	bool var_set = !strcmp(e->group, "variables") && e->name && !strcmp(e->name, "set") && a->argc == 2 &&
		       secrets_name_is_sensitive(a->argv[0]);
	for (int i = 0; i < argc; i++) {
		bool secret = (i > 0 && (!strcmp(argv[i - 1], "--password") || !strcmp(argv[i - 1], "--uri"))) ||
			      !strncmp(argv[i], "--password=", 11) || !strncmp(argv[i], "--uri=", 6) ||
			      (var_set && argv[i] == a->argv[1]);
		cJSON_AddItemToArray(arr, cJSON_CreateString(secret ? "***" : argv[i]));
	}
	return arr;
}

void cli_audit(struct cli_ctx *cli, const struct cmd_entry *e, int argc, char **argv, const struct cmd_args *a,
	       int status)
{
	struct store *st = NULL;
	struct passwd *pw = getpwuid(getuid());
	char host[256] = "", event[96];
	gethostname(host, sizeof(host) - 1);
	snprintf(event, sizeof(event), "cli_%s%s%s", e->group, e->name ? "_" : "", e->name ? e->name : "");
	for (char *p = event; *p; p++)
		if (*p == '-')
			*p = '_';
	cJSON *extra = cJSON_CreateObject();
	cJSON_AddStringToObject(extra, "host_name", host);
	cJSON_AddItemToObject(extra, "full_command", masked_argv(e, argc, argv, a));
	cJSON_AddNumberToObject(extra, "exit_status", status);
	struct log_row l = {
		.event = event,
		.owner = pw ? pw->pw_name : "unknown",
		.extra = cJSON_PrintUnformatted(extra),
		.map_index = -1,
	};
	/* The ids the command names, for the eventLogs filters. */
	bool runs = !strcmp(e->group, "runs") || !strcmp(e->group, "tasks");
	if (a->argc > 0 && (runs || !strcmp(e->group, "dags") || !strcmp(e->group, "backfill")))
		l.dag_id = a->argv[0];
	if (a->argc > 1 && runs)
		l.run_id = a->argv[1];
	if (cli_open_store(cli, 0, &st) == 0 && store_log_add(st, &l) < 0)
		fprintf(stderr, "sluice: warning: the audit log did not take this command\n");
	store_close(st);
	free(l.extra);
	cJSON_Delete(extra);
}
