/* GET /pools, GET /pools/{pool_name} (writes come with the daemon's write path) */
#include <stdlib.h>
#include <string.h>

#include "api.h"

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

const struct route api_pool_routes[] = {
	{"GET", "/pools", ROLE_VIEWER, list},
	{"GET", "/pools/{pool_name}", ROLE_VIEWER, get},
	{NULL, NULL, ROLE_NONE, NULL},
};
