#include "orchestrator/runs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "orchestrator/cron.h"
#include "orchestrator/params.h"
#include "orchestrator/tz.h"

void runs_infer_interval(const struct dag *d, usec_t t, usec_t *start, usec_t *end)
{
	*start = *end = t;
	if (!d->schedule)
		return;
	char err[256];
	struct cron *c = cron_parse(d->schedule, err, sizeof(err));
	char *terr = NULL;
	const struct tz *zone = tz_get(d->timezone, &terr);
	free(terr);
	if (!c || !zone) {
		cron_free(c);
		return;
	}
	int64_t secs = t / USEC_PER_SEC, e1, s1;
	/* The interval that ends at the latest fire time <= t. */
	if (cron_prev(c, zone, secs, &e1) == 0 && cron_prev(c, zone, e1 - 1, &s1) == 0) {
		*start = s1 * USEC_PER_SEC;
		*end = e1 * USEC_PER_SEC;
	}
	cron_free(c);
}

char *runs_default_id(const char *run_type, usec_t logical_date)
{
	char iso[ISO_BUFSZ];
	format_iso8601(logical_date, iso, sizeof(iso));
	return xasprintf("%s__%s", run_type, iso);
}

int runs_check(const struct run_request *req, char **err)
{
	if (req->run_id && !valid_run_id(req->run_id)) {
		*err = strlen(req->run_id) > ID_MAX
			       ? xasprintf("run_id is %zu bytes long; at most %d are allowed", strlen(req->run_id), ID_MAX)
			       : xstrdup("run_id may only hold letters, digits and _ . ~ : + - (and is not . or ..)");
		return -EINVAL;
	}
	if (req->run_type && strcmp(req->run_type, "manual") && strcmp(req->run_type, "scheduled") &&
	    strcmp(req->run_type, "backfill")) {
		*err = xasprintf("run_type '%s' is not manual, scheduled or backfill", req->run_type);
		return -EINVAL;
	}
	if ((req->conf && !utf8_valid(req->conf, strlen(req->conf))) ||
	    (req->note && !utf8_valid(req->note, strlen(req->note)))) {
		*err = xstrdup("conf and note must be valid UTF-8");
		return -EINVAL;
	}
	cJSON *conf = req->conf ? cJSON_Parse(req->conf) : NULL;
	bool ok = !req->conf || cJSON_IsObject(conf);
	cJSON_Delete(conf);
	if (!ok) {
		*err = xstrdup("conf must be a JSON object");
		return -EINVAL;
	}
	return 0;
}

/* Fills a queued run row of d from req (already checked). */
static void build_row(const struct dag *d, const struct run_request *req, usec_t now, struct run_row *r)
{
	memset(r, 0, sizeof(*r));
	r->dag_id = xstrdup(d->dag_id);
	r->run_type = xstrdup(req->run_type ? req->run_type : "manual");
	r->logical_date = req->logical_date != USEC_NONE ? req->logical_date : now;
	r->run_id = req->run_id ? xstrdup(req->run_id) : runs_default_id(r->run_type, r->logical_date);
	r->state = xstrdup("queued");
	if (req->data_interval_start != USEC_NONE && req->data_interval_end != USEC_NONE) {
		r->data_interval_start = req->data_interval_start;
		r->data_interval_end = req->data_interval_end;
	} else {
		runs_infer_interval(d, r->logical_date, &r->data_interval_start, &r->data_interval_end);
	}
	cJSON *conf = cJSON_Parse(req->conf ? req->conf : "{}");
	r->conf = cJSON_PrintUnformatted(conf);
	cJSON_Delete(conf);
	r->queued_at = now;
	r->start_date = r->end_date = USEC_NONE;
	r->note = req->note ? xstrdup(req->note) : NULL;
	r->dag_version = req->dag_version ? xstrdup(req->dag_version) : NULL;
	r->external_trigger = strcmp(r->run_type, "scheduled") != 0;
	r->owner = req->owner ? xstrdup(req->owner) : NULL;
	r->backfill_id = req->backfill_id;
}

int runs_insert(struct store *w, const struct dag *d, const struct run_request *req,
		struct run_row *out, char **err)
{
	usec_t now = now_usec();
	int rc = runs_check(req, err);
	if (rc < 0)
		return rc;
	/* A conf that breaks a param's schema is refused here, not in a task later. */
	cJSON *conf = req->conf ? cJSON_Parse(req->conf) : NULL;
	rc = params_validate(d, conf, err);
	cJSON_Delete(conf);
	if (rc < 0)
		return rc;
	if (req->dag_source && (rc = store_dag_sync(w, d, req->dag_source, now)) < 0) {
		*err = xasprintf("cannot record DAG '%s'", d->dag_id);
		return rc;
	}
	build_row(d, req, now, out);
	rc = store_run_insert(w, out);
	/* Concurrent triggers that leave the date to "now" may land in the same microsecond, and
	 * (dag_id, logical_date) is unique as in Airflow: a defaulted date steps by 1 us. */
	for (int i = 0; rc == -EEXIST && req->logical_date == USEC_NONE && i < 1000; i++) {
		out->logical_date++;
		if (!req->run_id) {
			free(out->run_id);
			out->run_id = runs_default_id(out->run_type, out->logical_date);
		}
		rc = store_run_insert(w, out);
	}
	if (rc == -EEXIST)
		*err = xasprintf("a run of '%s' with run_id '%s' or the same logical date already exists",
				 d->dag_id, out->run_id);
	else if (rc < 0)
		*err = xasprintf("cannot insert the run: %s", strerror(-rc));
	if (rc < 0)
		run_row_free(out);
	return rc;
}

int runs_queue(struct store *w, const struct dag *d, const struct run_request *req,
	       struct run_row *out, char **err)
{
	int rc;
	/* runs_insert checks req; a refused one only costs an empty transaction. */
	if ((rc = store_begin(w)) < 0) {
		*err = xasprintf("cannot start a database transaction: %s", strerror(-rc));
		return rc;
	}
	if ((rc = runs_insert(w, d, req, out, err)) < 0) {
		store_rollback(w);
		return rc;
	}
	if ((rc = store_commit(w)) < 0) {
		run_row_free(out);
		*err = xasprintf("cannot commit the run: %s", strerror(-rc));
	}
	return rc;
}

char *runs_log_dir(const char *home, const char *dag_id, const char *run_id)
{
	return path_under(home, "logs", dag_id, run_id, NULL);
}

char *runs_log_path(const char *home, const char *dag_id, const char *run_id, const char *task_id, int map_index,
		    int try_number, const char *ext)
{
	char mi[16], file[48];
	snprintf(mi, sizeof(mi), "%d", map_index);
	snprintf(file, sizeof(file), "%d.%s", try_number, ext);
	return path_under(home, "logs", dag_id, run_id, task_id, mi, file, NULL);
}

int runs_remove_logs(const char *home, const char *dag_id, const char *run_id)
{
	char *dir = runs_log_dir(home, dag_id, run_id), *logs = path_under(home, "logs", NULL);
	int rc = dir ? remove_tree(logs, dir) : -EPERM;
	free(dir);
	free(logs);
	return rc;
}
