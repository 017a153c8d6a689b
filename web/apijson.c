#include "web/apijson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/cron.h"

static void add_str_or_null(cJSON *o, const char *key, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

void api_file_token(const char *fileloc, char out[33])
{
	char h[65];
	sha256_hex(fileloc, strlen(fileloc), h);
	memcpy(out, h, 32);
	out[32] = '\0';
}

static cJSON *schedule_interval(const char *schedule)
{
	if (!schedule)
		return cJSON_CreateNull();
	char err[128];
	struct cron *c = cron_parse(schedule, err, sizeof(err));
	cJSON *o;
	if (c && cron_kind(c) == CRON_EVERY) {
		o = json_timedelta(cron_every_period(c) * USEC_PER_SEC);
	} else {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "__type", "CronExpression");
		cJSON_AddStringToObject(o, "value", schedule);
	}
	cron_free(c);
	return o;
}

/* The fields of Airflow's DAG schema, from whichever source describes the DAG. */
struct dag_fields {
	const char *dag_id, *fileloc, *owner, *description, *schedule;
	const char *const *tags;
	size_t ntags;
	int max_active_tasks, max_active_runs;
};

static void add_dag_common(cJSON *o, const struct dag_fields *f, const struct dag_status *s)
{
	char token[33];
	api_file_token(f->fileloc, token);
	cJSON_AddStringToObject(o, "dag_id", f->dag_id);
	cJSON_AddStringToObject(o, "dag_display_name", f->dag_id);
	cJSON_AddNullToObject(o, "root_dag_id");
	cJSON_AddBoolToObject(o, "is_paused", s->is_paused);
	cJSON_AddBoolToObject(o, "is_active", s->is_active);
	cJSON_AddBoolToObject(o, "is_subdag", false);
	json_add_time(o, "last_parsed_time", s->last_parsed_time);
	cJSON_AddNullToObject(o, "last_pickled");
	cJSON_AddNullToObject(o, "last_expired");
	cJSON_AddNullToObject(o, "scheduler_lock");
	cJSON_AddNullToObject(o, "pickle_id");
	cJSON_AddStringToObject(o, "default_view", "grid");
	cJSON_AddStringToObject(o, "fileloc", f->fileloc);
	cJSON_AddStringToObject(o, "file_token", token);
	cJSON *owners = cJSON_AddArrayToObject(o, "owners");
	cJSON_AddItemToArray(owners, cJSON_CreateString(f->owner ? f->owner : "airflow"));
	add_str_or_null(o, "description", f->description);
	cJSON_AddItemToObject(o, "schedule_interval", schedule_interval(f->schedule));
	char *words = cron_describe(f->schedule);
	cJSON_AddStringToObject(o, "timetable_description", words);
	free(words);
	cJSON *tags = cJSON_AddArrayToObject(o, "tags");
	for (size_t i = 0; i < f->ntags; i++) {
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "name", f->tags[i]);
		cJSON_AddItemToArray(tags, t);
	}
	cJSON_AddNumberToObject(o, "max_active_tasks", f->max_active_tasks);
	cJSON_AddNumberToObject(o, "max_active_runs", f->max_active_runs);
	cJSON_AddNullToObject(o, "max_consecutive_failed_dag_runs");
	cJSON_AddBoolToObject(o, "has_task_concurrency_limits", false);
	cJSON_AddBoolToObject(o, "has_import_errors", s->has_import_errors);
	json_add_time(o, "next_dagrun", s->next_start);
	json_add_time(o, "next_dagrun_data_interval_start", s->next_start);
	json_add_time(o, "next_dagrun_data_interval_end", s->next_end);
	json_add_time(o, "next_dagrun_create_after", s->next_end);
}

static void add_dag_fields(cJSON *o, const struct dag *d, const struct dag_status *s)
{
	struct dag_fields f = {
		.dag_id = d->dag_id, .fileloc = d->fileloc, .owner = d->owner, .description = d->description,
		.schedule = d->schedule, .tags = (const char *const *)d->tags, .ntags = d->n_tags,
		.max_active_tasks = d->max_active_tasks, .max_active_runs = d->max_active_runs,
	};
	add_dag_common(o, &f, s);
}

cJSON *api_dag_from_row(const struct dag_row *r)
{
	cJSON *tags = r->tags ? cJSON_Parse(r->tags) : NULL;
	int n = cJSON_IsArray(tags) ? cJSON_GetArraySize(tags) : 0;
	const char **names = xcalloc((size_t)n + 1, sizeof(char *));
	for (int i = 0; i < n; i++) {
		const cJSON *t = cJSON_GetArrayItem(tags, i);
		names[i] = cJSON_IsString(t) ? t->valuestring : "";
	}
	struct dag_fields f = {
		.dag_id = r->dag_id, .fileloc = r->fileloc, .owner = r->owners, .description = r->description,
		.schedule = r->schedule, .tags = names, .ntags = (size_t)n,
		.max_active_tasks = r->max_active_tasks, .max_active_runs = r->max_active_runs,
	};
	struct dag_status st = {r->is_paused, r->is_active, r->has_import_errors, r->last_parsed_time,
				r->next_interval_start, r->next_interval_end};
	cJSON *o = cJSON_CreateObject();
	add_dag_common(o, &f, &st);
	free(names);
	cJSON_Delete(tags);
	return o;
}

cJSON *api_dag(const struct dag *d, const struct dag_status *s)
{
	cJSON *o = cJSON_CreateObject();
	add_dag_fields(o, d, s);
	return o;
}

/* The official Python client 2.10 reads DAGDetail as a composition whose second half types
 * timetable_description loosely, and there dateutil takes Airflow's own "At 03:00" (or "At 09:00
 * and 17:00") for a time, so that the client refuses the reply. A description that is only times
 * gets cron-descriptor's verbose ending ", every day", which it cannot take for one. */
static void detail_safe_description(cJSON *o)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "timetable_description");
	if (!cJSON_IsString(d) || strncmp(d->valuestring, "At ", 3) || strspn(d->valuestring + 3, "0123456789: and") !=
										 strlen(d->valuestring + 3))
		return;
	char *v = xasprintf("%s, every day", d->valuestring);
	cJSON_ReplaceItemInObjectCaseSensitive(o, "timetable_description", cJSON_CreateString(v));
	free(v);
}

/* Params as Airflow 2.10 serializes them in DAGDetail: name -> {"__class", "value",
 * "description", "schema"}. */
static cJSON *api_params(const struct dag *d)
{
	cJSON *o = cJSON_CreateObject();
	const cJSON *spec;
	cJSON_ArrayForEach(spec, d->param_specs) {
		cJSON *p = cJSON_AddObjectToObject(o, spec->string);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(d->params, spec->string);
		const cJSON *desc = cJSON_GetObjectItemCaseSensitive(spec, "description");
		const cJSON *schema = cJSON_GetObjectItemCaseSensitive(spec, "schema");
		cJSON_AddStringToObject(p, "__class", "airflow.models.param.Param");
		cJSON_AddItemToObject(p, "value", v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
		add_str_or_null(p, "description", cJSON_IsString(desc) ? desc->valuestring : NULL);
		cJSON_AddItemToObject(p, "schema", cJSON_IsObject(schema) ? cJSON_Duplicate(schema, true) : cJSON_CreateObject());
	}
	return o;
}

cJSON *api_dag_detail(const struct dag *d, const struct dag_status *s)
{
	cJSON *o = cJSON_CreateObject();
	add_dag_fields(o, d, s);
	cJSON_AddBoolToObject(o, "catchup", d->catchup);
	cJSON_AddNumberToObject(o, "concurrency", d->max_active_tasks);
	if (d->dagrun_timeout > 0)
		cJSON_AddItemToObject(o, "dag_run_timeout", json_timedelta(d->dagrun_timeout));
	else
		cJSON_AddNullToObject(o, "dag_run_timeout");
	cJSON_AddNullToObject(o, "dataset_expression");
	add_str_or_null(o, "doc_md", d->doc_md);
	json_add_time(o, "start_date", d->start_date);
	json_add_time(o, "end_date", d->end_date);
	cJSON_AddBoolToObject(o, "is_paused_upon_creation", false);
	json_add_time(o, "last_parsed", s->last_parsed_time);
	cJSON_AddStringToObject(o, "orientation", "LR");
	cJSON_AddItemToObject(o, "params", api_params(d));
	detail_safe_description(o);
	cJSON_AddBoolToObject(o, "render_template_as_native_obj", false);
	cJSON_AddNullToObject(o, "template_search_path");
	cJSON_AddStringToObject(o, "timezone", d->timezone);
	return o;
}

cJSON *api_task(const struct dag *d, const struct task *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *cls = cJSON_AddObjectToObject(o, "class_ref");
	cJSON_AddStringToObject(cls, "class_name", t->operator_name);
	cJSON_AddStringToObject(cls, "module_path", "sluice");
	cJSON_AddStringToObject(o, "task_id", t->id);
	cJSON_AddStringToObject(o, "task_display_name", t->id);
	cJSON_AddStringToObject(o, "owner", d->owner ? d->owner : "airflow");
	json_add_time(o, "start_date", d->start_date);
	json_add_time(o, "end_date", d->end_date);
	cJSON_AddStringToObject(o, "trigger_rule", trigger_rule_name(t->trigger_rule));
	cJSON_AddArrayToObject(o, "extra_links");
	cJSON_AddBoolToObject(o, "depends_on_past", false);
	cJSON_AddBoolToObject(o, "is_mapped", t->mapped);
	cJSON_AddBoolToObject(o, "wait_for_downstream", false);
	cJSON_AddNumberToObject(o, "retries", t->retries);
	cJSON_AddNullToObject(o, "queue");
	cJSON_AddStringToObject(o, "executor", t->executor);
	cJSON_AddStringToObject(o, "pool", t->pool);
	cJSON_AddNumberToObject(o, "pool_slots", t->pool_slots);
	if (t->execution_timeout > 0)
		cJSON_AddItemToObject(o, "execution_timeout", json_timedelta(t->execution_timeout));
	else
		cJSON_AddNullToObject(o, "execution_timeout");
	cJSON_AddItemToObject(o, "retry_delay", json_timedelta(t->retry_delay));
	cJSON_AddBoolToObject(o, "retry_exponential_backoff", t->retry_exponential_backoff);
	cJSON_AddNumberToObject(o, "priority_weight", t->priority_weight);
	cJSON_AddStringToObject(o, "weight_rule", "downstream");
	cJSON_AddStringToObject(o, "ui_color", "#f0ede4");
	cJSON_AddStringToObject(o, "ui_fgcolor", "#000");
	cJSON *tf = cJSON_AddArrayToObject(o, "template_fields");
	cJSON_AddItemToArray(tf, cJSON_CreateString("cmd"));
	cJSON *down = cJSON_AddArrayToObject(o, "downstream_task_ids");
	for (size_t i = 0; i < t->n_down; i++)
		cJSON_AddItemToArray(down, cJSON_CreateString(d->tasks[t->downstream[i]].id));
	add_str_or_null(o, "doc_md", t->doc_md);
	return o;
}

/* The run's conf as stored when it is the usual "{}", else as cJSON reprints it ({} when it does
 * not parse), as the tree-built reply had it. */
static void put_conf(struct strbuf *sb, const char *conf)
{
	if (!conf || !strcmp(conf, "{}")) {
		sb_puts(sb, "{}");
		return;
	}
	cJSON *c = cJSON_Parse(conf);
	char *text = c ? cJSON_PrintUnformatted(c) : NULL;
	sb_puts(sb, text ? text : "{}");
	free(text);
	cJSON_Delete(c);
}

void api_dag_run_write(struct strbuf *sb, const struct run_row *r)
{
	struct json_obj o;
	json_obj_begin(&o, sb);
	json_obj_str(&o, "dag_run_id", r->run_id);
	json_obj_str(&o, "dag_id", r->dag_id);
	json_obj_time(&o, "logical_date", r->logical_date);
	json_obj_time(&o, "execution_date", r->logical_date);
	json_obj_time(&o, "start_date", r->start_date);
	json_obj_time(&o, "end_date", r->end_date);
	json_obj_time(&o, "data_interval_start", r->data_interval_start);
	json_obj_time(&o, "data_interval_end", r->data_interval_end);
	json_obj_null(&o, "last_scheduling_decision");
	json_obj_str(&o, "run_type", r->run_type);
	json_obj_str(&o, "state", r->state);
	json_obj_bool(&o, "external_trigger", r->external_trigger);
	json_obj_key(&o, "conf");
	put_conf(sb, r->conf);
	json_obj_str(&o, "note", r->note);
	json_obj_end(&o);
}

/* The tree form of a written object (one writer, so the two forms cannot drift apart). */
static cJSON *parse_written(struct strbuf *sb)
{
	cJSON *o = cJSON_Parse(sb_str(sb));
	sb_free(sb);
	return o ? o : cJSON_CreateObject();
}

cJSON *api_dag_run(const struct run_row *r)
{
	struct strbuf sb = {0};
	api_dag_run_write(&sb, r);
	return parse_written(&sb);
}

void api_task_instance_write(struct strbuf *sb, const struct ti_row *t, const struct run_row *r)
{
	struct json_obj o;
	json_obj_begin(&o, sb);
	json_obj_str(&o, "task_id", t->task_id);
	json_obj_str(&o, "task_display_name", t->task_id);
	json_obj_str(&o, "dag_id", t->dag_id);
	json_obj_str(&o, "dag_run_id", t->run_id);
	json_obj_time(&o, "execution_date", r ? r->logical_date : USEC_NONE);
	json_obj_time(&o, "start_date", t->start_date);
	json_obj_time(&o, "end_date", t->end_date);
	if (t->duration >= 0)
		json_obj_num(&o, "duration", t->duration);
	else
		json_obj_null(&o, "duration");
	json_obj_str(&o, "state", !t->state || !strcmp(t->state, "none") ? NULL : t->state);
	json_obj_num(&o, "try_number", t->try_number);
	json_obj_num(&o, "map_index", t->map_index);
	json_obj_num(&o, "max_tries", t->max_tries);
	json_obj_str(&o, "hostname", t->hostname ? t->hostname : "");
	json_obj_str(&o, "unixname", "sluice");
	json_obj_str(&o, "pool", t->pool ? t->pool : "default_pool");
	json_obj_num(&o, "pool_slots", t->pool_slots);
	json_obj_str(&o, "queue", "default");
	json_obj_num(&o, "priority_weight", t->priority_weight);
	json_obj_str(&o, "operator", t->operator_name);
	json_obj_time(&o, "queued_when", t->queued_when);
	if (t->pid > 0)
		json_obj_num(&o, "pid", t->pid);
	else
		json_obj_null(&o, "pid");
	json_obj_str(&o, "executor", t->executor);
	json_obj_str(&o, "executor_config", "{}");
	json_obj_null(&o, "sla_miss");
	if (t->map_index >= 0) {
		char idx[16];
		snprintf(idx, sizeof(idx), "%d", t->map_index);
		json_obj_str(&o, "rendered_map_index", idx);
	} else {
		json_obj_null(&o, "rendered_map_index");
	}
	json_obj_key(&o, "rendered_fields");
	sb_puts(sb, "{}");
	json_obj_null(&o, "trigger");
	json_obj_null(&o, "triggerer_job");
	json_obj_str(&o, "note", t->note);
	/* sluice's own: the try's exit status (null while it runs, or when it never ran) */
	if (t->exit_code != TI_NO_EXIT)
		json_obj_num(&o, "exit_code", t->exit_code);
	else
		json_obj_null(&o, "exit_code");
	json_obj_end(&o);
}

cJSON *api_task_instance(const struct ti_row *t, const struct run_row *r)
{
	struct strbuf sb = {0};
	api_task_instance_write(&sb, t, r);
	return parse_written(&sb);
}

/* Airflow 3's Backfill shape. */
cJSON *api_backfill(const struct backfill_row *b)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", (double)b->id);
	cJSON_AddStringToObject(o, "dag_id", b->dag_id);
	json_add_time(o, "from_date", b->from_date);
	json_add_time(o, "to_date", b->to_date);
	cJSON *conf = cJSON_Parse(b->dag_run_conf ? b->dag_run_conf : "{}");
	cJSON_AddItemToObject(o, "dag_run_conf", conf ? conf : cJSON_CreateObject());
	cJSON_AddBoolToObject(o, "is_paused", b->is_paused);
	cJSON_AddStringToObject(o, "reprocess_behavior", b->reprocess_behavior);
	cJSON_AddNumberToObject(o, "max_active_runs", b->max_active_runs);
	cJSON_AddBoolToObject(o, "run_backwards", b->run_backwards);
	json_add_time(o, "created_at", b->created_at);
	json_add_time(o, "completed_at", b->completed_at);
	json_add_time(o, "updated_at", b->updated_at);
	return o;
}


cJSON *api_ti_reference(const char *task_id, const struct run_row *run)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "task_id", task_id);
	cJSON_AddStringToObject(o, "dag_id", run->dag_id);
	cJSON_AddStringToObject(o, "dag_run_id", run->run_id);
	json_add_time(o, "execution_date", run->logical_date);
	return o;
}
