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

/* Reads a create / dry-run body into req (strings borrowed from body, conf printed into *conf)
 * and loads the DAG. Replies and returns NULL on error. */
static struct dag *read_request(struct req *r, cJSON **body, struct backfill_request *req, char **conf)
{
	*body = cJSON_Parse(api_body(r, NULL));
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(*body, "dag_id");
	const cJSON *from = cJSON_GetObjectItemCaseSensitive(*body, "from_date");
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(*body, "to_date");
	const cJSON *rep = cJSON_GetObjectItemCaseSensitive(*body, "reprocess_behavior");
	const cJSON *mar = cJSON_GetObjectItemCaseSensitive(*body, "max_active_runs");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(*body, "dag_run_conf");
	if (!cJSON_IsObject(*body)) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object");
		return NULL;
	}
	if (!cJSON_IsString(id) || !cJSON_IsString(from) || !cJSON_IsString(to) || (rep && !cJSON_IsString(rep)) ||
	    (mar && (!cJSON_IsNumber(mar) || mar->valuedouble < 1 || mar->valuedouble > 1e6)) ||
	    (c && !cJSON_IsObject(c))) {
		api_problem(r, 400, "Bad Request", "dag_id, from_date and to_date are required; reprocess_behavior is "
			    "none, failed or completed; max_active_runs at least 1; dag_run_conf an object");
		return NULL;
	}
	*conf = c ? cJSON_PrintUnformatted(c) : NULL;
	*req = (struct backfill_request){
		.from = from->valuestring,
		.to = to->valuestring,
		.reprocess = rep ? rep->valuestring : NULL,
		.max_active_runs = mar ? (int)mar->valuedouble : 0,
		.run_backwards = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(*body, "run_backwards")),
		.conf = *conf,
	};
	return api_dag_by_id(r, id->valuestring);
}

/* Replies with the problem for a backfill use case's error. */
static void reply_error(struct req *r, int rc, const char *err)
{
	if (rc == -EINVAL)
		api_problem(r, 400, "Bad Request", "%s", err);
	else if (rc == -EEXIST || rc == -EALREADY)
		api_problem(r, 409, "Conflict", "%s", err);
	else if (rc == -ENOENT)
		api_problem(r, 404, "Backfill not found", "%s", err);
	else
		api_write_failed(r, rc);
}

struct create_call {
	const struct dag *d;
	const struct backfill_request *req;
	struct backfill_row out;
	char *err;
};

static int create_fn(struct store *st, void *arg)
{
	struct create_call *c = arg;
	return backfill_create(st, c->d, c->req, &c->out, &c->err);
}

static void create(struct req *r)
{
	cJSON *body = NULL;
	char *conf = NULL;
	struct backfill_request req;
	struct dag *d = read_request(r, &body, &req, &conf);
	if (d) {
		struct create_call c = {.d = d, .req = &req};
		int rc = sched_write(create_fn, &c);
		if (rc < 0)
			reply_error(r, rc, c.err);
		else
			api_reply(r, 200, api_backfill(&c.out));
		backfill_row_free(&c.out);
		free(c.err);
	}
	free(conf);
	dag_unref(d);
	cJSON_Delete(body);
}

/* POST /backfills/dry_run: the logical dates and what would happen at each. */
static void dry_run(struct req *r)
{
	cJSON *body = NULL;
	char *conf = NULL, *err = NULL;
	struct backfill_request req;
	struct backfill_row b;
	struct backfill_step *steps = NULL;
	size_t n = 0;
	struct dag *d = read_request(r, &body, &req, &conf);
	int rc = d ? backfill_plan(api_store(r), d, &req, &b, &steps, &n, &err) : 0;
	if (d && rc < 0) {
		reply_error(r, rc, err);
	} else if (d) {
		cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "backfills");
		for (size_t i = 0; i < n; i++) {
			cJSON *e = cJSON_CreateObject();
			json_add_time(e, "logical_date", steps[i].logical_date);
			cJSON_AddStringToObject(e, "action", backfill_action_name(steps[i].action));
			cJSON_AddItemToArray(arr, e);
		}
		cJSON_AddNumberToObject(o, "total_entries", (double)n);
		api_reply(r, 200, o);
		backfill_steps_free(steps, n);
		backfill_row_free(&b);
	}
	free(err);
	free(conf);
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
	enum bf_change what;
	struct backfill_row out;
	char *err;
};

static int change_fn(struct store *st, void *arg)
{
	struct change *c = arg;
	return backfill_change(st, c->id, c->what, &c->out, &c->err);
}

static void change(struct req *r, enum bf_change what)
{
	struct backfill_row b = {0};
	if (!find(r, &b))
		return;
	struct change c = {.id = b.id, .what = what};
	int rc = sched_write(change_fn, &c);
	if (rc < 0)
		reply_error(r, rc, c.err);
	else
		api_reply(r, 200, api_backfill(&c.out));
	backfill_row_free(&b);
	backfill_row_free(&c.out);
	free(c.err);
}

static void pause_bf(struct req *r) { change(r, BF_PAUSE); }
static void unpause_bf(struct req *r) { change(r, BF_RESUME); }
static void cancel_bf(struct req *r) { change(r, BF_CANCEL); }

const struct route api_backfill_routes[] = {
	{"GET", "/backfills", ROLE_VIEWER, list, NULL},
	{"POST", "/backfills", ROLE_OP, create, "backfill.create"},
	{"POST", "/backfills/dry_run", ROLE_VIEWER, dry_run, NULL},
	{"GET", "/backfills/{backfill_id}", ROLE_VIEWER, get, NULL},
	{"PUT", "/backfills/{backfill_id}/pause", ROLE_OP, pause_bf, "backfill.edit"},
	{"PUT", "/backfills/{backfill_id}/unpause", ROLE_OP, unpause_bf, "backfill.edit"},
	{"PUT", "/backfills/{backfill_id}/cancel", ROLE_OP, cancel_bf, "backfill.edit"},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
