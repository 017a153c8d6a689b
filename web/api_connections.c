/* /connections: list, get, create, PATCH (update_mask), DELETE, test, as Airflow. A password is
 * never sent back (it is write-only in Airflow's schema), and the fields of extra whose names
 * look secret read "***". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "orchestrator/connections.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/secrets.h"

static void add_opt(cJSON *o, const char *key, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

/* extra with its secret-looking fields masked (a new string, or NULL). */
static char *masked_extra(const char *extra)
{
	cJSON *o = extra ? cJSON_Parse(extra) : NULL;
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return extra ? xstrdup(extra) : NULL;
	}
	cJSON *out = cJSON_CreateObject();
	for (const cJSON *it = o->child; it; it = it->next)
		cJSON_AddItemToObject(out, it->string, secrets_name_is_sensitive(it->string) ? cJSON_CreateString("***")
											   : cJSON_Duplicate(it, true));
	cJSON_Delete(o);
	o = out;
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static cJSON *connection_json(const struct conn_row *c, bool full)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "connection_id", c->conn_id);
	cJSON_AddStringToObject(o, "conn_type", c->conn_type);
	add_opt(o, "description", c->description);
	add_opt(o, "host", c->host);
	add_opt(o, "login", c->login);
	add_opt(o, "schema", c->schema);
	if (c->port > 0)
		cJSON_AddNumberToObject(o, "port", c->port);
	else
		cJSON_AddNullToObject(o, "port");
	if (full) {
		char *extra = masked_extra(c->extra);
		add_opt(o, "extra", extra);
		free(extra);
	}
	return o;
}

static void list(struct req *r)
{
	int limit, offset;
	struct conn_row *rows = NULL;
	if (!api_page(r, &limit, &offset))
		return;
	int n = store_conn_list(api_store(r), &rows);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		cJSON_AddItemToArray(all, connection_json(&rows[i], false));
		conn_row_free(&rows[i]);
	}
	free(rows);
	api_reply_page(r, "connections", all, limit, offset);
}

static void reply_connection(struct req *r, const char *id)
{
	struct conn_row c;
	int rc = store_conn_get(api_store(r), id, &c);
	if (rc == -ENOENT) {
		api_problem(r, 404, "Connection not found", "The Connection with connection_id: `%s` was not found", id);
		return;
	}
	if (rc < 0) {
		api_problem(r, 500, "Internal Server Error", "cannot read the connection");
		return;
	}
	/* The stored extra may be sealed: it is shown opened, then masked. */
	char *err = NULL;
	if (c.is_extra_encrypted && c.extra) {
		char *plain = secrets_unseal(api_home(r), c.extra, &err);
		free(c.extra);
		c.extra = plain;
	}
	api_reply(r, 200, connection_json(&c, true));
	free(err);
	conn_row_free(&c);
}

static void get(struct req *r)
{
	reply_connection(r, api_param(r, "connection_id"));
}

/* Fills c from a Connection body: a field named in mask (or any field without a mask) replaces
 * the one c has. Returns false after replying 400. */
static bool from_body(struct req *r, const cJSON *body, const char *mask, struct conn_row *c)
{
	static const char *const texts[] = {"connection_id", "conn_type", "description", "host", "login", "schema",
					    "password", "extra", NULL};
	char **dst[] = {&c->conn_id, &c->conn_type, &c->description, &c->host, &c->login, &c->schema,
			&c->password, &c->extra};
	if (!cJSON_IsObject(body)) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object (Airflow's Connection)");
		return false;
	}
	for (size_t i = 0; texts[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, texts[i]);
		if (!v || (mask && !strstr(mask, texts[i]) && i > 0))
			continue;
		if (!cJSON_IsString(v) && !cJSON_IsNull(v)) {
			api_problem(r, 400, "Bad Request", "%s must be a string", texts[i]);
			return false;
		}
		free(*dst[i]);
		*dst[i] = cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
	}
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(body, "port");
	if (port && (!mask || strstr(mask, "port"))) {
		if (!cJSON_IsNull(port) && (!cJSON_IsNumber(port) || port->valuedouble < 1 || port->valuedouble > 65535)) {
			api_problem(r, 400, "Bad Request", "port must be a number from 1 to 65535");
			return false;
		}
		c->port = cJSON_IsNumber(port) ? (int)port->valuedouble : 0;
	}
	return true;
}

struct put_call {
	const char *home;
	const struct conn_row *c;
	bool create;
	char *err;
};

static int put_fn(struct store *w, void *arg)
{
	struct put_call *p = arg;
	return conns_put(w, p->home, p->c, p->create, &p->err);
}

static void save(struct req *r, const struct conn_row *c, bool create)
{
	struct put_call p = {api_home(r), c, create, NULL};
	int rc = sched_write(put_fn, &p);
	if (rc == -EEXIST)
		api_problem(r, 409, "Conflict", "%s", p.err);
	else if (rc == -EINVAL)
		api_problem(r, 400, "Bad Request", "%s", p.err);
	else if (rc == -ENOKEY)
		api_problem(r, 500, "Internal Server Error", "%s", p.err);
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		reply_connection(r, c->conn_id);
	free(p.err);
}

static void create(struct req *r)
{
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	struct conn_row c = {0};
	if (from_body(r, body, NULL, &c)) {
		if (!c.conn_id || !c.conn_type)
			api_problem(r, 400, "Bad Request", "connection_id and conn_type are required");
		else
			save(r, &c, true);
	}
	conn_row_free(&c);
	cJSON_Delete(body);
}

static void patch(struct req *r)
{
	const char *id = api_param(r, "connection_id");
	char *mask = api_query_list(r, "update_mask");
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	const cJSON *bid = cJSON_GetObjectItemCaseSensitive(body, "connection_id");
	struct conn_row c = {0};
	char *err = NULL;
	if (cJSON_IsString(bid) && strcmp(bid->valuestring, id)) {
		api_problem(r, 400, "Bad Request", "The connection_id cannot be updated.");
	} else if (conns_get(api_store(r), api_home(r), id, &c, &err) < 0) {
		api_problem(r, 404, "Connection not found", "%s", err);
	} else if (from_body(r, body, mask, &c)) {
		free(c.conn_id);
		c.conn_id = xstrdup(id);
		save(r, &c, false);
	}
	free(err);
	conn_row_free(&c);
	free(mask);
	cJSON_Delete(body);
}

struct delete_call {
	const char *id;
	char *err;
};

static int delete_fn(struct store *w, void *arg)
{
	struct delete_call *c = arg;
	return conns_delete(w, c->id, &c->err);
}

static void del(struct req *r)
{
	struct delete_call c = {api_param(r, "connection_id"), NULL};
	int rc = sched_write(delete_fn, &c);
	if (rc == -ENOENT)
		api_problem(r, 404, "Connection not found", "%s", c.err);
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		api_reply_empty(r);
	free(c.err);
}

/* POST /connections/test: a Connection body, tested without storing it. */
static void test(struct req *r)
{
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	struct conn_row c = {0};
	if (from_body(r, body, NULL, &c)) {
		if (!c.conn_type) {
			api_problem(r, 400, "Bad Request", "conn_type is required");
		} else {
			char *msg = NULL;
			int rc = conns_test(&c, 5000, &msg);
			cJSON *o = cJSON_CreateObject();
			cJSON_AddBoolToObject(o, "status", rc == 0);
			cJSON_AddStringToObject(o, "message", msg ? msg : "");
			api_reply(r, 200, o);
			free(msg);
		}
	}
	conn_row_free(&c);
	cJSON_Delete(body);
}

const struct route api_connection_routes[] = {
	{"GET", "/connections", ROLE_OP, list, NULL},
	{"POST", "/connections", ROLE_OP, create, "connection.create"},
	{"POST", "/connections/test", ROLE_OP, test, NULL},
	{"GET", "/connections/{connection_id}", ROLE_OP, get, NULL},
	{"PATCH", "/connections/{connection_id}", ROLE_OP, patch, "connection.edit"},
	{"DELETE", "/connections/{connection_id}", ROLE_OP, del, "connection.delete"},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
