/* sluice's addition in Airflow 3's shape: /backfills (list, create, dry_run, get, pause,
 * unpause, cancel). The scheduler runs them (see scheduler.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "web/apijson.h"
#include "orchestrator/backfill.h"
#include "orchestrator/dag_lua.h"
#include "orchestrator/scheduler.h"

static void list(struct req *r)
{
	int limit, offset;
	struct backfill_row *bfs = NULL;
	if (!api_page(r, &limit, &offset))
		return;
	int n = store_backfill_list(api_store(r), api_query(r, "dag_id"), false, &bfs);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		cJSON_AddItemToArray(all, api_backfill(&bfs[i]));
		backfill_row_free(&bfs[i]);
	}
	free(bfs);
	api_reply_page(r, "backfills", all, limit, offset);
}

/* Reads and checks a create body into b (strings borrowed from body); loads the DAG. Replies
 * and returns NULL on error. */
static struct dag *read_create(struct req *r, cJSON *body, struct backfill_row *b, usec_t **dates, size_t *n)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "dag_id");
	const cJSON *from = cJSON_GetObjectItemCaseSensitive(body, "from_date");
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(body, "to_date");
	const cJSON *rep = cJSON_GetObjectItemCaseSensitive(body, "reprocess_behavior");
	const cJSON *mar = cJSON_GetObjectItemCaseSensitive(body, "max_active_runs");
	const cJSON *conf = cJSON_GetObjectItemCaseSensitive(body, "dag_run_conf");
	char *err = NULL;
	if (!cJSON_IsString(id) || !cJSON_IsString(from) || !cJSON_IsString(to) ||
	    (rep && (!cJSON_IsString(rep) || !backfill_reprocess_valid(rep->valuestring))) ||
	    (mar && (!cJSON_IsNumber(mar) || mar->valuedouble < 1)) || (conf && !cJSON_IsObject(conf))) {
		api_problem(r, 400, "Bad Request", "dag_id, from_date and to_date are required; reprocess_behavior is "
			    "none, failed or completed; max_active_runs at least 1; dag_run_conf an object");
		return NULL;
	}
	struct dag *d = api_dag_by_id(r, id->valuestring);
	if (!d)
		return NULL;
	b->dag_id = d->dag_id;
	b->reprocess_behavior = rep ? rep->valuestring : "none";
	b->max_active_runs = mar ? (int)mar->valuedouble : 10;
	const cJSON *back = cJSON_GetObjectItemCaseSensitive(body, "run_backwards");
	b->run_backwards = cJSON_IsTrue(back);
	if (dag_parse_date(from->valuestring, d->timezone, &b->from_date, &err) < 0 ||
	    dag_parse_date(to->valuestring, d->timezone, &b->to_date, &err) < 0 ||
	    backfill_dates(d, b->from_date, b->to_date, b->run_backwards, dates, n, &err) < 0) {
		api_problem(r, 400, "Bad Request", "%s", err);
		free(err);
		dag_unref(d);
		return NULL;
	}
	return d;
}

static int insert_fn(struct store *st, void *arg)
{
	struct backfill_row *b = arg;
	struct backfill_row *active = NULL;
	int na = store_backfill_list(st, b->dag_id, true, &active), rc;
	for (int i = 0; i < na; i++)
		backfill_row_free(&active[i]);
	free(active);
	if (na > 0)
		return -EEXIST;
	if ((rc = store_begin(st)) < 0)
		return rc;
	if ((rc = store_backfill_insert(st, b)) < 0) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st);
}

/* Parses the body of a create or dry run; NULL after replying 400/404. */
static struct dag *parse_create(struct req *r, cJSON **body, struct backfill_row *b, usec_t **dates, size_t *n)
{
	*body = cJSON_Parse(api_body(r, NULL));
	if (!cJSON_IsObject(*body)) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object");
		return NULL;
	}
	return read_create(r, *body, b, dates, n);
}

static void create(struct req *r)
{
	cJSON *body = NULL;
	struct backfill_row b = {0};
	usec_t *dates = NULL;
	size_t n = 0;
	struct dag *d = parse_create(r, &body, &b, &dates, &n);
	if (!d)
		goto out;
	const cJSON *conf = cJSON_GetObjectItemCaseSensitive(body, "dag_run_conf");
	char *conf_text = conf ? cJSON_PrintUnformatted(conf) : xstrdup("{}");
	b.dag_run_conf = conf_text;
	b.created_at = b.updated_at = now_usec();
	b.completed_at = USEC_NONE;
	int rc = sched_write(insert_fn, &b);
	if (rc == -EEXIST)
		api_problem(r, 409, "Conflict", "DAG '%s' already has a backfill in progress", b.dag_id);
	else if (rc < 0)
		api_write_failed(r, rc);
	else
		api_reply(r, 200, api_backfill(&b));
	free(conf_text);
out:
	free(dates);
	dag_unref(d);
	cJSON_Delete(body);
}

/* POST /backfills/dry_run: the logical dates and what would happen at each. */
static void dry_run(struct req *r)
{
	cJSON *body = NULL;
	struct backfill_row b = {0};
	usec_t *dates = NULL;
	size_t n = 0;
	struct dag *d = parse_create(r, &body, &b, &dates, &n);
	if (d) {
		cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "backfills");
		for (size_t i = 0; i < n; i++) {
			struct run_row existing = {0};
			bool have = store_run_get(api_store(r), d->dag_id, NULL, dates[i], &existing) == 0;
			cJSON *e = cJSON_CreateObject();
			json_add_time(e, "logical_date", dates[i]);
			cJSON_AddStringToObject(e, "action",
						backfill_action_name(backfill_action(b.reprocess_behavior, -1, have ? &existing : NULL)));
			cJSON_AddItemToArray(arr, e);
			run_row_free(&existing);
		}
		cJSON_AddNumberToObject(o, "total_entries", (double)n);
		api_reply(r, 200, o);
	}
	free(dates);
	dag_unref(d);
	cJSON_Delete(body);
}

/* The backfill named by {backfill_id}; replies 404 when missing. */
static bool find(struct req *r, struct backfill_row *b)
{
	char *end;
	long long id = strtoll(api_param(r, "backfill_id"), &end, 10);
	if (!*end && id > 0 && store_backfill_get(api_store(r), id, b) == 0)
		return true;
	api_problem(r, 404, "Backfill not found", "no backfill %s", api_param(r, "backfill_id"));
	return false;
}

static void get(struct req *r)
{
	struct backfill_row b = {0};
	if (!find(r, &b))
		return;
	api_reply(r, 200, api_backfill(&b));
	backfill_row_free(&b);
}

struct change {
	int64_t id;
	const char *what;
};

static int change_fn(struct store *st, void *arg)
{
	struct change *c = arg;
	struct backfill_row b = {0};
	int rc = store_backfill_get(st, c->id, &b);
	if (rc == 0 && b.completed_at != USEC_NONE)
		rc = -EALREADY;
	if (rc == 0 && (rc = store_begin(st)) == 0) {
		if (!strcmp(c->what, "cancel")) {
			rc = store_backfill_update(st, c->id, b.is_paused, now_usec());
			if (rc == 0)
				rc = store_backfill_fail_queued(st, c->id, now_usec());
		} else {
			rc = store_backfill_update(st, c->id, !strcmp(c->what, "pause"), USEC_NONE);
		}
		rc = rc == 0 ? store_commit(st) : (store_rollback(st), rc);
	}
	backfill_row_free(&b);
	return rc;
}

static void change(struct req *r, const char *what)
{
	struct backfill_row b = {0};
	if (!find(r, &b))
		return;
	struct change c = {b.id, what};
	int rc = sched_write(change_fn, &c);
	backfill_row_free(&b);
	if (rc == -EALREADY)
		api_problem(r, 409, "Conflict", "backfill %lld has already completed", (long long)c.id);
	else if (rc < 0)
		api_write_failed(r, rc);
	else if (store_backfill_get(api_store(r), c.id, &b) == 0)
		api_reply(r, 200, api_backfill(&b));
	backfill_row_free(&b);
}

static void pause_bf(struct req *r) { change(r, "pause"); }
static void unpause_bf(struct req *r) { change(r, "unpause"); }
static void cancel_bf(struct req *r) { change(r, "cancel"); }

const struct route api_backfill_routes[] = {
	{"GET", "/backfills", ROLE_VIEWER, list},
	{"POST", "/backfills", ROLE_OP, create},
	{"POST", "/backfills/dry_run", ROLE_VIEWER, dry_run},
	{"GET", "/backfills/{backfill_id}", ROLE_VIEWER, get},
	{"PUT", "/backfills/{backfill_id}/pause", ROLE_OP, pause_bf},
	{"PUT", "/backfills/{backfill_id}/unpause", ROLE_OP, unpause_bf},
	{"PUT", "/backfills/{backfill_id}/cancel", ROLE_OP, cancel_bf},
	{NULL, NULL, ROLE_NONE, NULL},
};
