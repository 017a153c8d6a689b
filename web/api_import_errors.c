/* GET /importErrors, GET /importErrors/{import_error_id} */
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "web/apijson.h"

static cJSON *import_error_json(const struct import_error_row *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "import_error_id", (double)e->id);
	json_add_time(o, "timestamp", e->timestamp);
	cJSON_AddStringToObject(o, "filename", e->filename);
	cJSON_AddStringToObject(o, "stack_trace", e->message);
	return o;
}

static void list(struct req *r)
{
	int limit, offset;
	struct import_error_row *rows = NULL;
	if (!api_page(r, &limit, &offset))
		return;
	int n = store_import_error_list(api_store(r), &rows);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		cJSON_AddItemToArray(all, import_error_json(&rows[i]));
		import_error_row_free(&rows[i]);
	}
	free(rows);
	api_reply_page(r, "import_errors", all, limit, offset);
}

static void get(struct req *r)
{
	struct import_error_row *rows = NULL;
	char *end;
	long long id = strtoll(api_param(r, "import_error_id"), &end, 10);
	int n = store_import_error_list(api_store(r), &rows);
	bool found = false;
	for (int i = 0; i < n; i++) {
		if (!*end && rows[i].id == id && !found) {
			api_reply(r, 200, import_error_json(&rows[i]));
			found = true;
		}
		import_error_row_free(&rows[i]);
	}
	free(rows);
	if (!found)
		api_problem(r, 404, "Import error not found", "no import error with id %s", api_param(r, "import_error_id"));
}

const struct route api_import_error_routes[] = {
	{"GET", "/importErrors", ROLE_VIEWER, list, NULL},
	{"GET", "/importErrors/{import_error_id}", ROLE_VIEWER, get, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
