#include "web/bodies.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int fail(char **err, const char *msg)
{
	*err = xstrdup(msg);
	return -EINVAL;
}

static bool flag(const cJSON *body, const char *key, bool def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

/* An optional ISO time field (null = absent). */
static int body_time(const cJSON *body, const char *key, usec_t *out, char **err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || parse_iso8601(v->valuestring, out) < 0) {
		*err = xasprintf("%s must be an ISO 8601 date-time", key);
		return -EINVAL;
	}
	return 0;
}

int body_trigger(const cJSON *body, struct run_request *req, char **conf_text, char **err)
{
	usec_t ld = USEC_NONE, ds = USEC_NONE, de = USEC_NONE;
	*conf_text = NULL;
	if (!cJSON_IsObject(body))
		return fail(err, "the body must be a JSON object");
	const cJSON *conf = cJSON_GetObjectItemCaseSensitive(body, "conf");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "dag_run_id");
	const cJSON *note = cJSON_GetObjectItemCaseSensitive(body, "note");
	if ((conf && !cJSON_IsNull(conf) && !cJSON_IsObject(conf)) || (id && !cJSON_IsNull(id) && !cJSON_IsString(id)))
		return fail(err, "conf must be an object and dag_run_id a string");
	if (body_time(body, "logical_date", &ld, err) < 0 || body_time(body, "execution_date", &ld, err) < 0 ||
	    body_time(body, "data_interval_start", &ds, err) < 0 || body_time(body, "data_interval_end", &de, err) < 0)
		return -EINVAL;
	*conf_text = cJSON_IsObject(conf) ? cJSON_PrintUnformatted(conf) : NULL;
	*req = (struct run_request){
		.run_type = "manual",
		.run_id = cJSON_IsString(id) ? id->valuestring : NULL,
		.logical_date = ld,
		.data_interval_start = ds,
		.data_interval_end = de,
		.conf = *conf_text,
		.note = cJSON_IsString(note) ? note->valuestring : NULL,
	};
	return 0;
}

static int body_values(const cJSON *body, const char *key, struct ti_values *out, char **err)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, key), *it;
	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr))
		goto bad;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it) && !cJSON_IsNull(it))
			goto bad;
		if (out->n < TI_FILTER_VALUES)
			out->v[out->n++] = cJSON_IsString(it) ? it->valuestring : "none";
	}
	return 0;
bad:
	*err = xasprintf("%s must be a list of strings", key);
	return -EINVAL;
}

static int body_range(const cJSON *body, const char *field, struct ti_range *out, char **err)
{
	char key[64];
	snprintf(key, sizeof(key), "%s_gte", field);
	if (body_time(body, key, &out->gte, err) < 0)
		return -EINVAL;
	snprintf(key, sizeof(key), "%s_lte", field);
	return body_time(body, key, &out->lte, err);
}

static int body_number(const cJSON *body, const char *key, double *out, char **err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v)) {
		*err = xasprintf("%s must be a number", key);
		return -EINVAL;
	}
	*out = v->valuedouble;
	return 0;
}

int body_ti_filter(const cJSON *body, struct ti_filter *f, char **err)
{
	ti_filter_init(f);
	if (!cJSON_IsObject(body))
		return fail(err, "the body must be a JSON object");
	if (body_values(body, "dag_ids", &f->dag_ids, err) < 0 || body_values(body, "dag_run_ids", &f->run_ids, err) < 0 ||
	    body_values(body, "task_ids", &f->task_ids, err) < 0 || body_values(body, "state", &f->states, err) < 0 ||
	    body_values(body, "pool", &f->pools, err) < 0 || body_values(body, "queue", &f->queues, err) < 0 ||
	    body_values(body, "executor", &f->executors, err) < 0 ||
	    body_range(body, "execution_date", &f->execution_date, err) < 0 ||
	    body_range(body, "start_date", &f->start_date, err) < 0 ||
	    body_range(body, "end_date", &f->end_date, err) < 0 ||
	    body_range(body, "updated_at", &f->updated_at, err) < 0 ||
	    body_number(body, "duration_gte", &f->duration_gte, err) < 0 ||
	    body_number(body, "duration_lte", &f->duration_lte, err) < 0)
		return -EINVAL;
	return 0;
}

int body_clear_tis(const cJSON *body, struct body_clear *out, char **err)
{
	*out = (struct body_clear){.from = USEC_NONE, .to = USEC_NONE};
	if (!cJSON_IsObject(body))
		return fail(err, "the body must be a JSON object");
	const cJSON *rid = cJSON_GetObjectItemCaseSensitive(body, "dag_run_id");
	const cJSON *sd = cJSON_GetObjectItemCaseSensitive(body, "start_date");
	const cJSON *ed = cJSON_GetObjectItemCaseSensitive(body, "end_date");
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "task_ids");
	if ((cJSON_IsString(sd) && parse_iso8601(sd->valuestring, &out->from) < 0) ||
	    (cJSON_IsString(ed) && parse_iso8601(ed->valuestring, &out->to) < 0))
		return fail(err, "start_date and end_date must be ISO 8601 date-times");
	out->run_id = cJSON_IsString(rid) ? rid->valuestring : NULL;
	out->task_ids = cJSON_IsArray(ids) ? ids : NULL;
	out->dry_run = flag(body, "dry_run", true);
	out->upstream = flag(body, "include_upstream", false);
	out->downstream = flag(body, "include_downstream", false);
	out->only_failed = flag(body, "only_failed", true);
	out->only_running = flag(body, "only_running", false);
	return 0;
}

int body_update_tis(const cJSON *body, struct body_mark *out, char **err)
{
	const cJSON *task = cJSON_GetObjectItemCaseSensitive(body, "task_id");
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(body, "new_state");
	const cJSON *rid = cJSON_GetObjectItemCaseSensitive(body, "dag_run_id");
	const cJSON *ed = cJSON_GetObjectItemCaseSensitive(body, "execution_date");
	*out = (struct body_mark){.when = USEC_NONE};
	if (!cJSON_IsString(task) || !cJSON_IsString(state) || (!cJSON_IsString(rid) && !cJSON_IsString(ed)))
		return fail(err, "task_id, new_state and dag_run_id (or execution_date) are required");
	out->task_id = task->valuestring;
	out->state = state->valuestring;
	out->run_id = cJSON_IsString(rid) ? rid->valuestring : NULL;
	out->has_date = !out->run_id && parse_iso8601(ed->valuestring, &out->when) == 0;
	out->dry_run = flag(body, "dry_run", true);
	out->upstream = flag(body, "include_upstream", false);
	out->downstream = flag(body, "include_downstream", false);
	return 0;
}
