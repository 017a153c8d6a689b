/* /pools: list, get, create, update, delete (writes go through the scheduler) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "orchestrator/scheduler.h"

static cJSON *pool_json(struct store *st, const struct pool_row *p)
{
	int running = 0, queued = 0, scheduled = 0;
	store_pool_usage(st, p->name, &running, &queued, &scheduled);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", p->name);
	cJSON_AddNumberToObject(o, "slots", p->slots);
	cJSON_AddNumberToObject(o, "occupied_slots", running + queued);
	cJSON_AddNumberToObject(o, "running_slots", running);
	cJSON_AddNumberToObject(o, "queued_slots", queued);
	cJSON_AddNumberToObject(o, "scheduled_slots", scheduled);
	cJSON_AddNumberToObject(o, "deferred_slots", 0);
	cJSON_AddNumberToObject(o, "open_slots", p->slots < 0 ? -1 : p->slots - running - queued);
	if (p->description)
		cJSON_AddStringToObject(o, "description", p->description);
	else
		cJSON_AddNullToObject(o, "description");
	cJSON_AddBoolToObject(o, "include_deferred", false);
	return o;
}

static void list(struct req *r)
{
	int limit, offset;
	struct pool_row *pools = NULL;
	if (!api_page(r, &limit, &offset))
		return;
	int n = store_pool_list(api_store(r), &pools);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		cJSON_AddItemToArray(all, pool_json(api_store(r), &pools[i]));
		pool_row_free(&pools[i]);
	}
	free(pools);
	api_reply_page(r, "pools", all, limit, offset);
}

static void get(struct req *r)
{
	struct pool_row *pools = NULL;
	const char *name = api_param(r, "pool_name");
	int n = store_pool_list(api_store(r), &pools);
	bool found = false;
	for (int i = 0; i < n; i++) {
		if (!found && !strcmp(pools[i].name, name)) {
			api_reply(r, 200, pool_json(api_store(r), &pools[i]));
			found = true;
		}
		pool_row_free(&pools[i]);
	}
	free(pools);
	if (!found)
		api_problem(r, 404, "Pool not found", "Pool with name: '%s' not found", name);
}

struct pool_write {
	const char *name, *description;
	int slots;
	bool create, del, set_slots, set_description;
};

/* On the scheduler's thread: checks existence and applies the change in one go. */
static int write_pool(struct store *st, void *arg)
{
	struct pool_write *w = arg;
	int slots;
	bool exists = store_pool_slots(st, w->name, &slots) == 0;
	if (w->create && exists)
		return -EEXIST;
	if (!w->create && !exists)
		return -ENOENT;
	if (w->del)
		return store_pool_delete(st, w->name);
	if (!w->set_slots)
		w->slots = slots;
	return store_pool_set(st, w->name, w->slots, w->set_description ? w->description : NULL);
}

static void reply_pool(struct req *r, const char *name)
{
	struct pool_row *pools = NULL;
	int n = store_pool_list(api_store(r), &pools);
	for (int i = 0; i < n; i++) {
		if (!strcmp(pools[i].name, name))
			api_reply(r, 200, pool_json(api_store(r), &pools[i]));
		pool_row_free(&pools[i]);
	}
	free(pools);
}

/* Reads name/slots/description from the body; mask limits what an update may change. */
static bool read_pool_body(struct req *r, struct pool_write *w, cJSON **body, const char *mask)
{
	*body = cJSON_Parse(api_body(r, NULL));
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(*body, "name");
	const cJSON *slots = cJSON_GetObjectItemCaseSensitive(*body, "slots");
	const cJSON *desc = cJSON_GetObjectItemCaseSensitive(*body, "description");
	bool want_slots = !mask || strstr(mask, "slots"), want_desc = !mask || strstr(mask, "description");
	if (!cJSON_IsObject(*body) || (slots && !cJSON_IsNumber(slots)) || (desc && !cJSON_IsString(desc) && !cJSON_IsNull(desc)) ||
	    (name && !cJSON_IsString(name))) {
		api_problem(r, 400, "Bad Request", "expected {\"name\": string, \"slots\": integer, \"description\": string}");
		return false;
	}
	if (cJSON_IsNumber(slots) && want_slots) {
		if (slots->valuedouble < -1 || slots->valuedouble > 1e6 || slots->valuedouble != (int)slots->valuedouble) {
			api_problem(r, 400, "Bad Request", "slots must be an integer >= -1");
			return false;
		}
		w->slots = (int)slots->valuedouble;
		w->set_slots = true;
	}
	if (cJSON_IsString(desc) && want_desc) {
		w->description = desc->valuestring;
		w->set_description = true;
	}
	if (cJSON_IsString(name) && !w->name)
		w->name = name->valuestring;
	return true;
}

static void create(struct req *r)
{
	struct pool_write w = {.create = true};
	cJSON *body = NULL;
	if (read_pool_body(r, &w, &body, NULL)) {
		if (!w.name || !valid_id(w.name) || !w.set_slots) {
			api_problem(r, 400, "Bad Request", "a pool needs a name ([A-Za-z0-9_.-]+) and slots");
		} else {
			int rc = sched_write(write_pool, &w);
			if (rc == -EEXIST)
				api_problem(r, 409, "Conflict", "Pool: %s already exists", w.name);
			else if (rc < 0)
				api_write_failed(r, rc);
			else
				reply_pool(r, w.name);
		}
	}
	cJSON_Delete(body);
}

static void update(struct req *r)
{
	struct pool_write w = {.name = api_param(r, "pool_name")};
	char *mask = api_query_list(r, "update_mask");
	cJSON *body = NULL;
	if (mask && strstr(mask, "name")) {
		api_problem(r, 400, "Bad Request", "pools cannot be renamed");
	} else if (read_pool_body(r, &w, &body, mask)) {
		int rc = sched_write(write_pool, &w);
		if (rc == -ENOENT)
			api_problem(r, 404, "Pool not found", "Pool with name: '%s' not found", w.name);
		else if (rc < 0)
			api_write_failed(r, rc);
		else
			reply_pool(r, w.name);
	}
	free(mask);
	cJSON_Delete(body);
}

static void del(struct req *r)
{
	struct pool_write w = {.name = api_param(r, "pool_name"), .del = true};
	if (!strcmp(w.name, "default_pool")) {
		api_problem(r, 400, "Bad Request", "Default Pool can't be deleted");
		return;
	}
	int rc = sched_write(write_pool, &w);
	if (rc == -ENOENT)
		api_problem(r, 404, "Pool not found", "Pool with name: '%s' not found", w.name);
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		api_reply_empty(r);
}

const struct route api_pool_routes[] = {
	{"GET", "/pools", ROLE_VIEWER, list, NULL},
	{"POST", "/pools", ROLE_OP, create, "pool.create"},
	{"GET", "/pools/{pool_name}", ROLE_VIEWER, get, NULL},
	{"PATCH", "/pools/{pool_name}", ROLE_OP, update, "pool.edit"},
	{"DELETE", "/pools/{pool_name}", ROLE_OP, del, "pool.delete"},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
