/* /variables: list, get, create, PATCH (with update_mask), DELETE, as Airflow. The value of a
 * variable whose key looks secret is never sent back: "***", as Airflow masks it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/secrets.h"
#include "orchestrator/variables.h"

static cJSON *variable_json(const struct var_row *v, bool with_value)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "key", v->key);
	if (with_value)
		cJSON_AddStringToObject(o, "value", secrets_name_is_sensitive(v->key) ? "***" : v->val);
	if (v->description)
		cJSON_AddStringToObject(o, "description", v->description);
	else
		cJSON_AddNullToObject(o, "description");
	return o;
}

static void list(struct req *r)
{
	int limit, offset;
	struct var_row *rows = NULL;
	if (!api_page(r, &limit, &offset))
		return;
	int n = store_var_list(api_store(r), &rows);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		/* Listed without values, as Airflow's VariableCollectionItem. */
		cJSON_AddItemToArray(all, variable_json(&rows[i], false));
		var_row_free(&rows[i]);
	}
	free(rows);
	api_reply_page(r, "variables", all, limit, offset);
}

static void reply_variable(struct req *r, const char *key)
{
	struct var_row v;
	char *err = NULL;
	int rc = vars_get(api_store(r), api_home(r), key, &v, &err);
	if (rc == -ENOENT)
		api_problem(r, 404, "Variable not found", "%s", err);
	else if (rc < 0)
		api_problem(r, 500, "Internal Server Error", "%s", err);
	else
		api_reply(r, 200, variable_json(&v, true));
	if (rc == 0)
		var_row_free(&v);
	free(err);
}

static void get(struct req *r)
{
	reply_variable(r, api_param(r, "variable_key"));
}

struct set_call {
	const char *home, *key, *value, *description;
	bool create;
	char *err;
};

static int set_fn(struct store *w, void *arg)
{
	struct set_call *c = arg;
	return vars_set(w, c->home, c->key, c->value, c->description, c->create, &c->err);
}

static void reply_set_error(struct req *r, int rc, const char *err)
{
	if (rc == -EEXIST)
		api_problem(r, 409, "Conflict", "%s", err);
	else if (rc == -EINVAL)
		api_problem(r, 400, "Bad Request", "%s", err);
	else if (rc == -ENOKEY)
		api_problem(r, 500, "Internal Server Error", "%s", err);
	else
		api_write_failed(r, rc);
}

/* The body's string field, or NULL; *bad when it is there but not a string. */
static const char *str_field(const cJSON *body, const char *key, bool *bad)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
	if (v && !cJSON_IsString(v) && !cJSON_IsNull(v))
		*bad = true;
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void create(struct req *r)
{
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	bool bad = !cJSON_IsObject(body);
	const char *key = str_field(body, "key", &bad), *value = str_field(body, "value", &bad);
	const char *desc = str_field(body, "description", &bad);
	if (bad || !key || !value) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object with string key and value");
	} else {
		struct set_call c = {api_home(r), key, value, desc, true, NULL};
		int rc = sched_write(set_fn, &c);
		if (rc < 0)
			reply_set_error(r, rc, c.err);
		else
			reply_variable(r, key);
		free(c.err);
	}
	cJSON_Delete(body);
}

/* PATCH /variables/{key}?update_mask=value,description */
static void patch(struct req *r)
{
	const char *key = api_param(r, "variable_key");
	char *mask = api_query_list(r, "update_mask");
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	bool bad = !cJSON_IsObject(body);
	const char *bkey = str_field(body, "key", &bad), *value = str_field(body, "value", &bad);
	const char *desc = str_field(body, "description", &bad);
	struct var_row old;
	char *err = NULL;
	bool want_value = !mask || strstr(mask, "value"), want_desc = !mask || strstr(mask, "description");
	if (bad || (bkey && strcmp(bkey, key))) {
		api_problem(r, 400, "Bad Request", bad ? "the body must be a JSON object with string fields"
						      : "the key in the body must be the key in the path");
	} else if (mask && strspn(mask, "abcdefghijklmnopqrstuvwxyz_, ") != strlen(mask)) {
		api_problem(r, 400, "Bad Request", "update_mask names value and/or description");
	} else if (vars_get(api_store(r), api_home(r), key, &old, &err) < 0) {
		api_problem(r, 404, "Variable not found", "%s", err);
	} else {
		if (want_value && !value) {
			api_problem(r, 400, "Bad Request", "value is required (or leave it out of update_mask)");
		} else {
			struct set_call c = {api_home(r), key, want_value ? value : old.val,
					     want_desc ? (desc ? desc : "") : old.description, false, NULL};
			int rc = sched_write(set_fn, &c);
			if (rc < 0)
				reply_set_error(r, rc, c.err);
			else
				reply_variable(r, key);
			free(c.err);
		}
		var_row_free(&old);
	}
	free(err);
	free(mask);
	cJSON_Delete(body);
}

struct delete_call {
	const char *key;
	char *err;
};

static int delete_fn(struct store *w, void *arg)
{
	struct delete_call *c = arg;
	return vars_delete(w, c->key, &c->err);
}

static void del(struct req *r)
{
	struct delete_call c = {api_param(r, "variable_key"), NULL};
	int rc = sched_write(delete_fn, &c);
	if (rc == -ENOENT)
		api_problem(r, 404, "Variable not found", "%s", c.err);
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		api_reply_empty(r);
	free(c.err);
}

const struct route api_variable_routes[] = {
	{"GET", "/variables", ROLE_OP, list, NULL},
	{"POST", "/variables", ROLE_OP, create, "variable.create"},
	{"GET", "/variables/{variable_key}", ROLE_OP, get, NULL},
	{"PATCH", "/variables/{variable_key}", ROLE_OP, patch, "variable.edit"},
	{"DELETE", "/variables/{variable_key}", ROLE_OP, del, "variable.delete"},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
