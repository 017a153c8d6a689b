/* Administration, as Airflow: PATCH /dags (pause or unpause many), DELETE /dags/{dag_id},
 * GET /config (behind webserver.expose_config), and read-only /users and /roles for admins. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "web/apijson.h"
#include "base/json.h"
#include "orchestrator/config.h"
#include "orchestrator/ops.h"
#include "orchestrator/scheduler.h"

#define MAX_TAGS 32

/* PATCH /dags?dag_id_pattern=&tags=&only_active=&update_mask=is_paused {"is_paused": bool} */
struct bulk_call {
	const char **ids;
	size_t n;
	bool paused;
};

static int bulk_fn(struct store *w, void *arg)
{
	struct bulk_call *c = arg;
	int rc = store_begin(w);
	for (size_t i = 0; i < c->n && rc == 0; i++)
		rc = store_dag_set_paused(w, c->ids[i], c->paused);
	if (rc == 0)
		return store_commit(w);
	store_rollback(w);
	return rc;
}

static bool tagged(const struct dag_row *d, const char **tags, int ntags)
{
	cJSON *arr = ntags && d->tags ? cJSON_Parse(d->tags) : NULL;
	bool hit = ntags == 0;
	for (int i = 0; i < cJSON_GetArraySize(arr) && !hit; i++)
		for (int k = 0; k < ntags && !hit; k++)
			hit = !strcmp(cJSON_GetArrayItem(arr, i)->valuestring, tags[k]);
	cJSON_Delete(arr);
	return hit;
}

static void patch_dags(struct req *r)
{
	int limit, offset;
	bool only_active;
	const char *tags[MAX_TAGS], *pattern = api_query(r, "dag_id_pattern");
	char *mask = api_query_list(r, "update_mask");
	if (!api_page(r, &limit, &offset) || !api_query_bool(r, "only_active", true, &only_active)) {
		free(mask);
		return;
	}
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "is_paused");
	if (mask && strcmp(mask, "is_paused")) {
		api_problem(r, 400, "Bad Request", "only is_paused can be updated, not '%s'", mask);
	} else if (!pattern) {
		api_problem(r, 400, "Bad Request", "dag_id_pattern is required (~ for every DAG)");
	} else if (!cJSON_IsBool(p)) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object with a boolean is_paused");
	} else {
		int ntags = api_query_values(r, "tags", tags, MAX_TAGS);
		struct dag_row *rows = NULL;
		int n = store_dag_rows(api_store(r), !only_active, &rows), k = 0;
		struct bulk_call c = {xcalloc(n > 0 ? (size_t)n : 1, sizeof(char *)), 0, cJSON_IsTrue(p)};
		for (int i = 0; i < n; i++) {
			/* "~" is every DAG; a pattern is Airflow's ILIKE '%pattern%'. */
			bool hit = (!strcmp(pattern, "~") || contains_nocase(rows[i].dag_id, pattern)) && tagged(&rows[i], tags, ntags);
			if (hit && k++ >= offset && (int)c.n < limit)
				c.ids[c.n++] = rows[i].dag_id;
		}
		int rc = sched_write(bulk_fn, &c);
		if (rc < 0) {
			api_write_failed(r, rc);
		} else {
			cJSON *all = cJSON_CreateArray();
			for (int i = 0; i < n; i++)
				for (size_t j = 0; j < c.n; j++)
					if (c.ids[j] == rows[i].dag_id) {
						rows[i].is_paused = c.paused;
						cJSON_AddItemToArray(all, api_dag_from_row(&rows[i]));
					}
			api_reply_page_by(r, "dags", all, 1 << 30, 0, NULL);
		}
		free(c.ids);
		for (int i = 0; i < n; i++)
			dag_row_free(&rows[i]);
		free(rows);
	}
	free(mask);
	cJSON_Delete(body);
}

struct delete_call {
	const char *home, *dag_id;
	char *err;
};

static int delete_fn(struct store *w, void *arg)
{
	struct delete_call *c = arg;
	int rc = ops_delete_dag(w, c->home, c->dag_id, &c->err);
	if (rc == 0)
		sched_dag_deleted(c->dag_id);
	return rc;
}

static void delete_dag(struct req *r)
{
	struct delete_call c = {api_home(r), api_param(r, "dag_id"), NULL};
	int rc = sched_write(delete_fn, &c);
	if (rc == -ENOENT)
		api_problem(r, 404, "DAG not found", "%s", c.err);
	else if (rc == -EBUSY)
		api_problem(r, 409, "Conflict", "%s", c.err);
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		api_reply_empty(r);
	free(c.err);
}

/* GET /config[?section=] and /config/section/{section}/option/{option} */
struct config_ctx {
	cJSON *sections;
	const char *section, *option;
	int found;
};

static void add_option(void *arg, const char *name, const char *value, const char *source)
{
	struct config_ctx *c = arg;
	const char *dot = strchr(name, '.');
	size_t sl = (size_t)(dot - name);
	if ((c->section && (strlen(c->section) != sl || strncmp(c->section, name, sl))) ||
	    (c->option && strcmp(c->option, dot + 1)))
		return;
	cJSON *sec = NULL, *it;
	cJSON_ArrayForEach(it, c->sections) {
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
		if (strlen(nm->valuestring) == sl && !strncmp(nm->valuestring, name, sl))
			sec = it;
	}
	if (!sec) {
		sec = cJSON_CreateObject();
		char *sname = xstrndup(name, sl);
		cJSON_AddStringToObject(sec, "name", sname);
		free(sname);
		cJSON_AddArrayToObject(sec, "options");
		cJSON_AddItemToArray(c->sections, sec);
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "key", dot + 1);
	cJSON_AddStringToObject(o, "value", value);
	(void)source;
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(sec, "options"), o);
	c->found++;
}

static void config(struct req *r)
{
	const struct config *cfg = api_config(r);
	if (!cfg || !cfg->expose_config) {
		api_problem(r, 403, "Forbidden", "Your Airflow administrator chose not to expose the configuration, most "
			    "likely for security reasons (set webserver.expose_config = true to allow it)");
		return;
	}
	struct config_ctx c = {cJSON_CreateArray(), api_param(r, "section") ? api_param(r, "section")
									    : api_query(r, "section"),
			       api_param(r, "option"), 0};
	config_each(cfg, add_option, &c);
	if (c.found == 0 && (c.section || c.option)) {
		cJSON_Delete(c.sections);
		api_problem(r, 404, "Config not found", "the configuration has no %s%s%s", c.section ? c.section : "",
			    c.option ? "." : "", c.option ? c.option : "");
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "sections", c.sections);
	api_reply(r, 200, o);
}

/* Users and roles: sluice's three roles, in Airflow's shapes. */
static cJSON *user_json(const struct user_row *u)
{
	cJSON *o = cJSON_CreateObject();
	/* sluice keeps no names or e-mail addresses of its users: those fields are left out. */
	cJSON_AddStringToObject(o, "username", u->username);
	cJSON_AddBoolToObject(o, "active", true);
	cJSON_AddNullToObject(o, "last_login");
	cJSON_AddNullToObject(o, "login_count");
	cJSON_AddNullToObject(o, "failed_login_count");
	cJSON *roles = cJSON_AddArrayToObject(o, "roles");
	cJSON *role = cJSON_CreateObject();
	cJSON_AddStringToObject(role, "name", u->role);
	cJSON_AddItemToArray(roles, role);
	json_add_time(o, "created_on", u->created_at);
	json_add_time(o, "changed_on", u->updated_at);
	return o;
}

static void users(struct req *r)
{
	int limit, offset;
	struct user_row *rows = NULL;
	const char *one = api_param(r, "username");
	if (!api_page(r, &limit, &offset))
		return;
	int n = store_user_list(api_store(r), &rows);
	cJSON *all = cJSON_CreateArray(), *found = NULL;
	for (int i = 0; i < n; i++) {
		if (!one)
			cJSON_AddItemToArray(all, user_json(&rows[i]));
		else if (!strcmp(one, rows[i].username))
			found = user_json(&rows[i]);
		user_row_free(&rows[i]);
	}
	free(rows);
	if (!one) {
		api_reply_page(r, "users", all, limit, offset);
		return;
	}
	cJSON_Delete(all);
	if (found)
		api_reply(r, 200, found);
	else
		api_problem(r, 404, "User not found", "The User with username `%s` was not found", one);
}

static cJSON *role_json(const char *name)
{
	/* What each role may do, in Airflow's (action, resource) terms. */
	static const char *const viewer[] = {"can_read", "DAGs", "can_read", "DAG Runs", "can_read", "Task Instances",
					     "can_read", "Task Logs", "can_read", "Pools", "can_read", "Audit Logs", NULL};
	static const char *const op[] = {"can_edit", "DAGs", "can_create", "DAG Runs", "can_edit", "DAG Runs",
					 "can_delete", "DAG Runs", "can_edit", "Task Instances", "can_create", "Pools",
					 "can_edit", "Pools", "can_delete", "Pools", "can_read", "Variables", "can_create", "Variables",
					 "can_edit", "Variables", "can_delete", "Variables", "can_read", "Connections",
					 "can_create", "Connections",
					 "can_edit", "Connections", "can_delete", "Connections", NULL};
	static const char *const admin[] = {"can_delete", "DAGs", "can_read", "Users", "can_read", "Roles",
					    "can_read", "Configurations", NULL};
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	cJSON *actions = cJSON_AddArrayToObject(o, "actions");
	int level = !strcmp(name, "admin") ? 3 : !strcmp(name, "op") ? 2 : 1;
	const char *const *lists[3] = {viewer, op, admin};
	for (int l = 0; l < level; l++) {
		for (const char *const *p = lists[l]; *p; p += 2) {
			cJSON *a = cJSON_CreateObject();
			cJSON_AddItemToObject(a, "action", cJSON_CreateObject());
			cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(a, "action"), "name", p[0]);
			cJSON_AddItemToObject(a, "resource", cJSON_CreateObject());
			cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(a, "resource"), "name", p[1]);
			cJSON_AddItemToArray(actions, a);
		}
	}
	return o;
}

static void roles(struct req *r)
{
	static const char *const names[] = {"admin", "op", "viewer"};
	int limit, offset;
	const char *one = api_param(r, "role_name");
	if (!api_page(r, &limit, &offset))
		return;
	if (one) {
		for (size_t i = 0; i < 3; i++)
			if (!strcmp(one, names[i])) {
				api_reply(r, 200, role_json(one));
				return;
			}
		api_problem(r, 404, "Role not found", "The Role with name `%s` was not found (sluice has admin, op and viewer)",
			    one);
		return;
	}
	cJSON *all = cJSON_CreateArray();
	for (size_t i = 0; i < 3; i++)
		cJSON_AddItemToArray(all, role_json(names[i]));
	api_reply_page(r, "roles", all, limit, offset);
}

/* GET /permissions: the actions sluice's roles are made of. */
static void permissions(struct req *r)
{
	static const char *const names[] = {"can_read", "can_edit", "can_create", "can_delete"};
	int limit, offset;
	if (!api_page(r, &limit, &offset))
		return;
	cJSON *all = cJSON_CreateArray();
	for (size_t i = 0; i < 4; i++) {
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "name", names[i]);
		cJSON_AddItemToArray(all, a);
	}
	api_reply_page(r, "actions", all, limit, offset);
}

const struct route api_admin_routes[] = {
	{"GET", "/permissions", ROLE_ADMIN, permissions, NULL},
	{"PATCH", "/dags", ROLE_OP, patch_dags, "dag.edit"},
	{"DELETE", "/dags/{dag_id}", ROLE_OP, delete_dag, "dag.delete"},
	{"GET", "/config", ROLE_ADMIN, config, NULL},
	{"GET", "/config/section/{section}/option/{option}", ROLE_ADMIN, config, NULL},
	{"GET", "/users", ROLE_ADMIN, users, NULL},
	{"GET", "/users/{username}", ROLE_ADMIN, users, NULL},
	{"GET", "/roles", ROLE_ADMIN, roles, NULL},
	{"GET", "/roles/{role_name}", ROLE_ADMIN, roles, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
