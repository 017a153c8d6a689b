/* /eventLogs: the audit log, as Airflow's (list with its filters, get). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "base/json.h"

static cJSON *event_json(const struct log_row *l)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "event_log_id", (double)l->id);
	json_add_time(o, "when", l->dttm);
	const char *texts[] = {"dag_id", l->dag_id, "task_id", l->task_id, "run_id", l->run_id, "event", l->event,
			       "owner", l->owner, "extra", l->extra};
	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i += 2) {
		if (texts[i + 1])
			cJSON_AddStringToObject(o, texts[i], texts[i + 1]);
		else
			cJSON_AddNullToObject(o, texts[i]);
	}
	if (l->map_index >= 0)
		cJSON_AddNumberToObject(o, "map_index", l->map_index);
	else
		cJSON_AddNullToObject(o, "map_index");
	if (l->try_number > 0)
		cJSON_AddNumberToObject(o, "try_number", l->try_number);
	else
		cJSON_AddNullToObject(o, "try_number");
	json_add_time(o, "execution_date", l->execution_date);
	return o;
}

/* Whether s is one of the comma-separated names in list (NULL list: any). */
static bool in_csv(const char *list, const char *s)
{
	if (!list)
		return true;
	size_t n = s ? strlen(s) : 0;
	for (const char *p = list; s && *p;) {
		size_t k = strcspn(p, ",");
		if (k == n && !strncmp(p, s, n))
			return true;
		p += k + (p[k] == ',');
	}
	return false;
}

static bool eq_or_unset(const char *want, const char *have)
{
	return !want || (have && !strcmp(want, have));
}

static void list(struct req *r)
{
	int limit, offset;
	usec_t before = USEC_NONE, after = USEC_NONE;
	const char *b = api_query(r, "before"), *a = api_query(r, "after");
	if (!api_page(r, &limit, &offset))
		return;
	if ((b && parse_iso8601(b, &before) < 0) || (a && parse_iso8601(a, &after) < 0)) {
		api_problem(r, 400, "Bad Request", "before and after must be ISO 8601 date-times");
		return;
	}
	const char *mi = api_query(r, "map_index"), *tn = api_query(r, "try_number");
	const char *excluded = api_query(r, "excluded_events");
	struct log_row *rows = NULL;
	int n = store_log_list(api_store(r), &rows);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		struct log_row *l = &rows[i];
		bool keep = eq_or_unset(api_query(r, "dag_id"), l->dag_id) && eq_or_unset(api_query(r, "task_id"), l->task_id) &&
			    eq_or_unset(api_query(r, "run_id"), l->run_id) && eq_or_unset(api_query(r, "event"), l->event) &&
			    eq_or_unset(api_query(r, "owner"), l->owner) && (!mi || atoi(mi) == l->map_index) &&
			    (!tn || atoi(tn) == l->try_number) && (before == USEC_NONE || l->dttm < before) &&
			    (after == USEC_NONE || l->dttm > after) && in_csv(api_query(r, "included_events"), l->event) &&
			    (!excluded || !in_csv(excluded, l->event));
		if (keep)
			cJSON_AddItemToArray(all, event_json(l));
		log_row_free(l);
	}
	free(rows);
	api_reply_page(r, "event_logs", all, limit, offset);
}

static void get(struct req *r)
{
	char *end;
	const char *id = api_param(r, "event_log_id");
	long long v = strtoll(id, &end, 10);
	struct log_row l;
	if (!*id || *end || v < 1)
		api_problem(r, 400, "Bad Request", "event_log_id must be a positive integer");
	else if (store_log_get(api_store(r), v, &l) < 0)
		api_problem(r, 404, "Event Log not found", "Event Log with id: '%lld' not found", v);
	else {
		api_reply(r, 200, event_json(&l));
		log_row_free(&l);
	}
}

const struct route api_event_log_routes[] = {
	{"GET", "/eventLogs", ROLE_VIEWER, list, NULL},
	{"GET", "/eventLogs/{event_log_id}", ROLE_VIEWER, get, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
