/* sluice connections add | get | list | delete | test */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "base/util.h"
#include "orchestrator/connections.h"
#include "orchestrator/store.h"

static char *dup_opt(const char *s) { return s ? xstrdup(s) : NULL; }

/* The connection an add or test command line describes: --uri, or --conn-type and the fields. */
static int from_args(const struct cmd_entry *e, const struct cmd_args *a, struct conn_row *c)
{
	char *err = NULL;
	if (a->val['u']) {
		if (a->val['t'] || a->val['H'] || a->val['l'] || a->val['p'] || a->val['P'] || a->val['s'])
			return cmd_usage_error(e, "give either --uri or the fields (--conn-type, --host, ...), not both");
		if (conn_from_uri(a->argv[0], a->val['u'], c, &err) < 0) {
			int rc = cmd_usage_error(e, "%s", err);
			free(err);
			return rc;
		}
	} else {
		if (!a->val['t'])
			return cmd_usage_error(e, "give --uri or --conn-type");
		*c = (struct conn_row){
			.conn_id = xstrdup(a->argv[0]), .conn_type = xstrdup(a->val['t']), .host = dup_opt(a->val['H']),
			.login = dup_opt(a->val['l']), .password = dup_opt(a->val['P']), .schema = dup_opt(a->val['s']),
		};
		if (a->val['p']) {
			char *end;
			long port = strtol(a->val['p'], &end, 10);
			if (!*a->val['p'] || *end || port < 1 || port > 65535) {
				conn_row_free(c);
				return cmd_usage_error(e, "--port is a number from 1 to 65535");
			}
			c->port = (int)port;
		}
	}
	if (a->val['x']) {
		free(c->extra);
		c->extra = xstrdup(a->val['x']);
	}
	if (a->val['d'])
		c->description = xstrdup(a->val['d']);
	return 0;
}

static int add(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct conn_row c = {0};
	struct store *st = NULL;
	char *err = NULL;
	int rc = from_args(&cmd_connections_add, a, &c);
	if (rc)
		return rc;
	if (cli_open_store(cli, 0, &st) < 0) {
		conn_row_free(&c);
		return 1;
	}
	rc = conns_put(st, cli->home, &c, !a->set['r'], &err);
	if (rc == 0)
		printf("connection %s (%s) %s\n", c.conn_id, c.conn_type, a->set['r'] ? "set" : "added");
	else
		fprintf(stderr, "sluice connections add: %s%s\n", err, rc == -EEXIST ? " (--replace to change it)" : "");
	free(err);
	conn_row_free(&c);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

static cJSON *conn_json(const struct conn_row *c, bool secrets)
{
	cJSON *o = cJSON_CreateObject();
	const char *f[] = {"connection_id", c->conn_id, "conn_type", c->conn_type, "description", c->description,
			   "host", c->host, "login", c->login, "schema", c->schema};
	for (size_t i = 0; i < sizeof(f) / sizeof(*f); i += 2) {
		if (f[i + 1])
			cJSON_AddStringToObject(o, f[i], f[i + 1]);
		else
			cJSON_AddNullToObject(o, f[i]);
	}
	if (c->port > 0)
		cJSON_AddNumberToObject(o, "port", c->port);
	else
		cJSON_AddNullToObject(o, "port");
	if (secrets) {
		if (c->password)
			cJSON_AddStringToObject(o, "password", c->password);
		if (c->extra)
			cJSON_AddStringToObject(o, "extra", c->extra);
		char *uri = conn_to_uri(c);
		cJSON_AddStringToObject(o, "uri", uri);
		free(uri);
	}
	return o;
}

/* get ID: the connection as templates see it, password and extra opened (the CLI user can read
 * the key file anyway). */
static int get(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	struct conn_row c = {0};
	char *err = NULL;
	if (cli_open_store(cli, STORE_READONLY, &st) < 0)
		return 1;
	int rc = conns_get(st, cli->home, a->argv[0], &c, &err);
	if (rc == 0 && a->set['j']) {
		cli_print_json(conn_json(&c, true));
	} else if (rc == 0) {
		char *uri = conn_to_uri(&c);
		printf("%s\n", uri);
		free(uri);
	} else {
		fprintf(stderr, "sluice connections get: %s\n", err);
	}
	free(err);
	conn_row_free(&c);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

static int list(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	struct conn_row *rows = NULL;
	if (cli_open_store(cli, STORE_READONLY, &st) < 0)
		return 1;
	int n = store_conn_list(st, &rows);
	if (a->set['j']) {
		cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "connections");
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, conn_json(&rows[i], false));
		cJSON_AddNumberToObject(o, "total_entries", n < 0 ? 0 : n);
		cli_print_json(o);
	} else {
		printf("%-32s %-12s %-30s %s\n", "ID", "TYPE", "HOST", "LOGIN");
		for (int i = 0; i < n; i++)
			printf("%-32s %-12s %-30s %s\n", rows[i].conn_id, rows[i].conn_type, rows[i].host ? rows[i].host : "",
			       rows[i].login ? rows[i].login : "");
	}
	for (int i = 0; i < n; i++)
		conn_row_free(&rows[i]);
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
	int rc = conns_delete(st, a->argv[0], &err);
	if (rc == 0)
		printf("connection %s deleted\n", a->argv[0]);
	else
		fprintf(stderr, "sluice connections delete: %s\n", err);
	free(err);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

/* test ID: the stored connection, or the one the options describe. */
static int test(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct conn_row c = {0};
	char *err = NULL, *msg = NULL;
	int rc;
	if (a->val['u'] || a->val['t']) {
		if ((rc = from_args(&cmd_connections_test, a, &c)))
			return rc;
	} else {
		struct store *st = NULL;
		if (cli_open_store(cli, STORE_READONLY, &st) < 0)
			return 1;
		rc = conns_get(st, cli->home, a->argv[0], &c, &err);
		store_close(st);
		if (rc < 0) {
			fprintf(stderr, "sluice connections test: %s\n", err);
			free(err);
			return 1;
		}
	}
	rc = conns_test(&c, 5000, &msg);
	printf("%s\n", msg);
	free(msg);
	conn_row_free(&c);
	return rc == 0 ? 0 : 1;
}

static const struct cmd_opt json_opts[] = {
	{"json", 'j', NULL, false, false, "print JSON"},
	{NULL, 0, NULL, false, false, NULL},
};
static const struct cmd_opt add_opts[] = {
	{"uri", 'u', "URI", false, false, "the whole connection: type://login:password@host:port/schema?extra"},
	{"conn-type", 't', "TYPE", false, false, "its type (ssh, http, postgres, ...)"},
	{"host", 'H', "HOST", false, false, "host name or address"},
	{"port", 'p', "PORT", false, false, "port"},
	{"login", 'l', "LOGIN", false, false, "user name"},
	{"password", 'P', "PASSWORD", false, false, "password (sealed in the database)"},
	{"schema", 's', "SCHEMA", false, false, "schema or database"},
	{"extra", 'x', "JSON", false, false, "extra fields as a JSON object"},
	{"description", 'd', "TEXT", false, false, "what it is for"},
	{"replace", 'r', NULL, false, false, "replace a connection that exists"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_connections_add = {
	"connections", "add", "ID", 1, 1, add_opts, "add a connection",
	"Adds a connection that tasks reach as {{ conn.ID.host }} (.port, .login, .password, .schema, "
	".extra_dejson.KEY): --uri in Airflow's form, or --conn-type and the fields. The password, and extra "
	"when a key of it looks secret, are sealed in the database. SLUICE_CONN_<ID> (a URI) in the daemon's "
	"environment overrides the stored connection.",
	add,
};
const struct cmd_entry cmd_connections_get = {
	"connections", "get", "ID", 1, 1, json_opts, "print a connection as a URI (or JSON)", NULL, get,
};
const struct cmd_entry cmd_connections_list = {
	"connections", "list", NULL, 0, 0, json_opts, "list connections (no passwords)", NULL, list,
};
const struct cmd_entry cmd_connections_delete = {
	"connections", "delete", "ID", 1, 1, NULL, "delete a connection", NULL, delete,
};
const struct cmd_entry cmd_connections_test = {
	"connections", "test", "ID", 1, 1, add_opts, "test a connection (ssh, http, postgres, ... by TCP)",
	"Tests the stored connection ID, or the one the options describe: an ssh connection must answer with "
	"an SSH banner, other types must accept a TCP connection on their port, within 5 seconds.",
	test,
};
