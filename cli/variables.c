/* sluice variables set | get | list | delete | import | export */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "base/util.h"
#include "orchestrator/secrets.h"
#include "orchestrator/store.h"
#include "orchestrator/variables.h"

static int set(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	char *err = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int rc = vars_set(st, cli->home, a->argv[0], a->argv[1], a->val['d'], false, &err);
	if (rc == 0)
		printf("variable %s set%s\n", a->argv[0], secrets_name_is_sensitive(a->argv[0]) ? " (sealed: its key looks secret)" : "");
	else
		fprintf(stderr, "sluice variables set: %s\n", err);
	free(err);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

static int get(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	char *err = NULL, *value = NULL;
	if (cli_open_store(cli, STORE_READONLY, &st) < 0)
		return 1;
	/* What a template would see: the environment first. */
	int rc = vars_value(st, cli->home, a->argv[0], &value, &err);
	if (rc == 0 && a->set['j']) {
		cJSON *doc = cJSON_Parse(value);
		if (!doc) {
			fprintf(stderr, "sluice variables get: %s is not JSON\n", a->argv[0]);
			rc = -EINVAL;
		} else {
			cli_print_json(doc);
		}
	} else if (rc == 0) {
		printf("%s\n", value);
	} else {
		fprintf(stderr, "sluice variables get: %s\n", err);
	}
	free(value);
	free(err);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

static int list(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	struct var_row *rows = NULL;
	if (cli_open_store(cli, STORE_READONLY, &st) < 0)
		return 1;
	int n = store_var_list(st, &rows);
	if (a->set['j']) {
		cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "variables");
		for (int i = 0; i < n; i++) {
			cJSON *v = cJSON_CreateObject();
			cJSON_AddStringToObject(v, "key", rows[i].key);
			if (rows[i].description)
				cJSON_AddStringToObject(v, "description", rows[i].description);
			else
				cJSON_AddNullToObject(v, "description");
			cJSON_AddBoolToObject(v, "is_encrypted", rows[i].is_encrypted);
			cJSON_AddItemToArray(arr, v);
		}
		cJSON_AddNumberToObject(o, "total_entries", n < 0 ? 0 : n);
		cli_print_json(o);
	} else {
		printf("%-40s %-9s %s\n", "KEY", "SEALED", "DESCRIPTION");
		for (int i = 0; i < n; i++)
			printf("%-40s %-9s %s\n", rows[i].key, rows[i].is_encrypted ? "yes" : "no",
			       rows[i].description ? rows[i].description : "");
	}
	for (int i = 0; i < n; i++)
		var_row_free(&rows[i]);
	free(rows);
	store_close(st);
	return n < 0 ? 1 : 0;
}

static int delete(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	char *err = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int rc = vars_delete(st, a->argv[0], &err);
	if (rc == 0)
		printf("variable %s deleted\n", a->argv[0]);
	else
		fprintf(stderr, "sluice variables delete: %s\n", err);
	free(err);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

/* import FILE: a JSON object {"key": value, ...} as Airflow's `variables export` writes it; a
 * value that is not a string is stored as its JSON text. All or nothing. */
static int import(struct cli_ctx *cli, const struct cmd_args *a)
{
	char *text = NULL, *err = NULL;
	size_t len = 0;
	int rc = read_file(a->argv[0], 64u << 20, &text, &len);
	if (rc < 0) {
		fprintf(stderr, "sluice variables import: cannot read %s: %s\n", a->argv[0], strerror(-rc));
		return 1;
	}
	cJSON *doc = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(doc)) {
		fprintf(stderr, "sluice variables import: %s is not a JSON object of key: value\n", a->argv[0]);
		cJSON_Delete(doc);
		return 1;
	}
	struct store *st = NULL;
	if (cli_open_store(cli, 0, &st) < 0 || store_begin(st) < 0) {
		cJSON_Delete(doc);
		store_close(st);
		return 1;
	}
	int n = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, doc) {
		char *v = cJSON_IsString(it) ? xstrdup(it->valuestring) : cJSON_PrintUnformatted(it);
		rc = vars_set(st, cli->home, it->string, v, NULL, false, &err);
		free(v);
		if (rc < 0) {
			fprintf(stderr, "sluice variables import: %s: %s (nothing was imported)\n", it->string, err);
			break;
		}
		n++;
	}
	if (rc == 0 && store_commit(st) == 0)
		printf("%d variables imported from %s\n", n, a->argv[0]);
	else
		store_rollback(st);
	free(err);
	cJSON_Delete(doc);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

/* export FILE ("-" = stdout): the same JSON object, values opened. */
static int export(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	struct var_row *rows = NULL;
	if (cli_open_store(cli, STORE_READONLY, &st) < 0)
		return 1;
	int n = store_var_list(st, &rows), rc = n < 0 ? 1 : 0;
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < n && rc == 0; i++) {
		struct var_row v;
		char *err = NULL;
		if (vars_get(st, cli->home, rows[i].key, &v, &err) < 0) {
			fprintf(stderr, "sluice variables export: %s: %s\n", rows[i].key, err);
			rc = 1;
		} else {
			cJSON_AddStringToObject(o, v.key, v.val);
			var_row_free(&v);
		}
		free(err);
	}
	char *text = cJSON_Print(o);
	if (rc == 0 && !strcmp(a->argv[0], "-")) {
		printf("%s\n", text);
	} else if (rc == 0) {
		mode_t old = umask(077); /* it may hold opened secrets */
		int w = write_file_atomic(a->argv[0], text, strlen(text), true);
		umask(old);
		if (w < 0) {
			fprintf(stderr, "sluice variables export: cannot write %s: %s\n", a->argv[0], strerror(-w));
			rc = 1;
		} else {
			fprintf(stderr, "%d variables exported to %s\n", n, a->argv[0]);
		}
	}
	free(text);
	cJSON_Delete(o);
	for (int i = 0; i < n; i++)
		var_row_free(&rows[i]);
	free(rows);
	store_close(st);
	return rc;
}

static const struct cmd_opt json_opts[] = {
	{"json", 'j', NULL, false, false, "print JSON"},
	{NULL, 0, NULL, false, false, NULL},
};
static const struct cmd_opt set_opts[] = {
	{"description", 'd', "TEXT", false, false, "what the variable is for"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_variables_set = {
	"variables", "set", "KEY VALUE", 2, 2, set_opts, "create or change a variable",
	"Sets a variable that templates read as {{ var.value.KEY }} (or {{ var.json.KEY.path }} for JSON). "
	"A key that looks secret (password, token, secret, api_key, ...) is sealed in the database with "
	"the key of secret.key. SLUICE_VAR_<KEY> in the daemon's environment overrides the stored value.",
	set,
};
const struct cmd_entry cmd_variables_get = {
	"variables", "get", "KEY", 1, 1, json_opts, "print a variable's value",
	"Prints the value templates see: SLUICE_VAR_<KEY> when set, else the stored one (opened when sealed). "
	"--json parses it and prints it as JSON.",
	get,
};
const struct cmd_entry cmd_variables_list = {
	"variables", "list", NULL, 0, 0, json_opts, "list variables (keys, not values)", NULL, list,
};
const struct cmd_entry cmd_variables_delete = {
	"variables", "delete", "KEY", 1, 1, NULL, "delete a variable", NULL, delete,
};
const struct cmd_entry cmd_variables_import = {
	"variables", "import", "FILE", 1, 1, NULL, "set variables from a JSON file",
	"Sets every variable of FILE, a JSON object {\"key\": value, ...} (the format of `variables export` and "
	"of Airflow's). A value that is not a string is stored as JSON text. All or nothing.",
	import,
};
const struct cmd_entry cmd_variables_export = {
	"variables", "export", "FILE", 1, 1, NULL, "write every variable to a JSON file (- for stdout)",
	"Writes every variable, values opened, to FILE (mode 0600) as a JSON object that `variables import` "
	"reads back; - prints it.",
	export,
};
