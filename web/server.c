#include "web/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "web/api.h"
#include "web/apijson.h"
#include "web/auth.h"
#include "web/connlimit.h"
#include "web/dagcache.h"
#include "web/embedded.h"
#include "web/origin.h"
#include "web/router.h"
#include "web/session.h"
#include "web/ui_files.h"
#include "base/log.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/store.h"

#define DEFAULT_MAX_BODY (1u << 20)
/* Worker threads, each serving many connections (epoll). An idle event stream is suspended and
 * holds none (api_events.c). */
#define WORKERS 16

/* Stands in for a %00 or a malformed %-escape: no id may hold it, and dispatch() refuses a path
 * with it, instead of the NUL cutting "/dags/hello%00junk" down to "/dags/hello". */
#define BAD_ESCAPE '\x7f'

struct web {
	struct web_opts o;
	char *db_path, *bind, *lib_dir, *home, *allowed_hosts;
	struct connlimit *limits;
	atomic_bool admin_file_checked; /* the first admin login removed admin_password.txt */
	struct MHD_Daemon *mhd;
	int port;
	pthread_key_t store_key;
};

/* One request as the handlers see it. */
struct req {
	struct web *w;
	struct MHD_Connection *conn;
	const char *method, *url;
	struct strbuf body;
	bool too_large;
	enum role role;
	struct store *st;          /* this worker thread's read-only connection */
	struct route_params params;
	int retry_after;           /* seconds, for a 429's Retry-After; 0 = none */
	bool close;                /* answer with Connection: close (over a connection limit) */
	/* The response. */
	unsigned status;
	char *payload;
	const char *content_type;
	long (*stream_read)(void *ctx, char *buf, size_t max);
	void (*stream_done)(void *ctx);
	void *stream_ctx;
	char *set_cookie;          /* a Set-Cookie header to send */
	/* A session cookie's caller. */
	char *user, *session;
	usec_t session_expires;
	/* A file of the UI bundle (ui_files.h) instead of a payload. */
	const struct ui_file *ui;
	bool ui_gz;
};

/* Responses and accessors ------------------------------------------------------------------------ */

void api_reply(struct req *r, unsigned status, cJSON *j)
{
	free(r->payload);
	r->status = status;
	r->payload = cJSON_PrintUnformatted(j);
	r->content_type = "application/json";
	cJSON_Delete(j);
}

void api_reply_json(struct req *r, unsigned status, char *json)
{
	free(r->payload);
	r->status = status;
	r->payload = json;
	r->content_type = "application/json";
}

void api_reply_text(struct req *r, unsigned status, char *text)
{
	free(r->payload);
	r->status = status;
	r->payload = text;
	r->content_type = "text/plain; charset=utf-8";
}

void api_set_content_type(struct req *r, const char *type) { r->content_type = type; }

void api_reply_stream(struct req *r, const char *content_type, long (*read)(void *ctx, char *buf, size_t max),
		      void (*done)(void *ctx), void *ctx)
{
	free(r->payload);
	r->payload = NULL;
	r->status = 200;
	r->content_type = content_type;
	r->stream_read = read;
	r->stream_done = done;
	r->stream_ctx = ctx;
}

/* A stream's callbacks live in their own allocation: MHD may release the response after the
 * request (struct req) is gone. */
struct stream_wrap {
	long (*read)(void *ctx, char *buf, size_t max);
	void (*done)(void *ctx);
	void *ctx;
};

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_wrap *w = cls;
	long n = w->read(w->ctx, buf, max);
	(void)pos;
	return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream_wrap *w = cls;
	if (w->done)
		w->done(w->ctx);
	free(w);
}

void api_reply_empty(struct req *r)
{
	free(r->payload);
	r->status = 204;
	r->payload = NULL;
	r->content_type = "application/json";
}

const char *api_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *problem_type(unsigned status)
{
	switch (status) {
	case 400: return "BadRequest";
	case 401: return "Unauthenticated";
	case 403: return "PermissionDenied";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 409: return "AlreadyExists";
	case 413: return "RequestTooLarge";
	case 429: return "TooManyRequests";
	default: return "Unknown";
	}
}

void api_problem(struct req *r, unsigned status, const char *title, const char *fmt, ...)
{
	cJSON *j = cJSON_CreateObject();
	char type[160];
	struct strbuf detail = {0};
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&detail, fmt, ap);
	va_end(ap);
	snprintf(type, sizeof(type), "https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html#section/Errors/%s",
		 problem_type(status));
	/* The detail and the path may echo what the client sent: never other than UTF-8. */
	char *clean_detail = utf8_sanitize(sb_str(&detail)), *clean_url = utf8_sanitize(r->url ? r->url : "");
	cJSON_AddStringToObject(j, "type", type);
	cJSON_AddStringToObject(j, "title", title);
	cJSON_AddNumberToObject(j, "status", status);
	cJSON_AddStringToObject(j, "detail", clean_detail);
	cJSON_AddStringToObject(j, "instance", clean_url);
	free(clean_detail);
	free(clean_url);
	sb_free(&detail);
	api_reply(r, status, j);
	r->content_type = "application/problem+json";
}

const char *api_param(struct req *r, const char *name)
{
	return router_param(&r->params, name);
}

const char *api_query(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_body(struct req *r, size_t *len)
{
	if (len)
		*len = r->body.len;
	return sb_str(&r->body);
}

struct store *api_store(struct req *r) { return r->st; }

const char *api_lib_dir(struct req *r) { return r->w->lib_dir; }

const char *api_home(struct req *r) { return r->w->home; }

enum role api_role(struct req *r) { return r->role; }

struct values_ctx {
	const char *name;
	const char **out;
	int max, n;
};

static enum MHD_Result collect_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct values_ctx *c = cls;
	(void)kind;
	if (value && !strcmp(key, c->name) && c->n < c->max)
		c->out[c->n++] = value;
	return MHD_YES;
}

int api_query_values(struct req *r, const char *name, const char **out, int max)
{
	struct values_ctx c = {name, out, max, 0};
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_value, &c);
	return c.n;
}

char *api_query_list(struct req *r, const char *name)
{
	const char *v[32];
	int n = api_query_values(r, name, v, 32);
	if (n == 0)
		return NULL;
	struct strbuf sb = {0};
	for (int i = 0; i < n; i++) {
		if (i)
			sb_putc(&sb, ',');
		sb_puts(&sb, v[i]);
	}
	return sb_steal(&sb);
}

void api_write_failed(struct req *r, int rc)
{
	r->retry_after = 5;
	if (rc == -ETIMEDOUT)
		api_problem(r, 503, "Service Unavailable",
			    "the scheduler is busy and did not take the change in time: nothing was changed, try again");
	else if (rc == -EBUSY)
		api_problem(r, 503, "Service Unavailable",
			    "another process holds the database's lock: nothing was changed, try again");
	else
		api_problem(r, 503, "Service Unavailable", "the scheduler did not take the change (%s)", strerror(-rc));
}

static bool nonneg_int(const char *s, int *out)
{
	char *end;
	long v;
	if (!s)
		return true;
	v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > 1000000000)
		return false;
	*out = (int)v;
	return true;
}

bool api_page(struct req *r, int *limit, int *offset)
{
	*limit = 100;
	*offset = 0;
	if (!nonneg_int(api_query(r, "limit"), limit) || !nonneg_int(api_query(r, "offset"), offset)) {
		api_problem(r, 400, "Bad Request", "limit and offset must be non-negative integers");
		return false;
	}
	return true;
}

bool api_query_bool(struct req *r, const char *name, bool def, bool *out)
{
	const char *v = api_query(r, name);
	*out = def;
	if (!v || parse_bool(v, out))
		return true;
	api_problem(r, 400, "Bad Request", "%s must be true or false (any case), 1 or 0, not '%s'", name, v);
	return false;
}

/* The fields a collection may be ordered by: those of its item in Airflow's schemas (Airflow
 * answers 400 for any other, even when the collection is empty). */
static const struct {
	const char *key, *fields;
} order_fields[] = {
	{"dags", " dag_display_name dag_id default_view description file_token fileloc has_import_errors "
		 "has_task_concurrency_limits is_active is_paused is_subdag last_expired last_parsed_time "
		 "last_pickled max_active_runs max_active_tasks max_consecutive_failed_dag_runs next_dagrun "
		 "next_dagrun_create_after next_dagrun_data_interval_end next_dagrun_data_interval_start owners "
		 "pickle_id root_dag_id schedule_interval scheduler_lock tags timetable_description "},
	{"dag_runs", " conf dag_id dag_run_id data_interval_end data_interval_start end_date execution_date "
		     "external_trigger last_scheduling_decision logical_date note run_type start_date state "},
	{"task_instances", " dag_id dag_run_id duration end_date execution_date executor executor_config hostname "
			   "map_index max_tries note operator pid pool pool_slots priority_weight queue queued_when "
			   "rendered_fields rendered_map_index sla_miss start_date state task_display_name task_id "
			   "trigger triggerer_job try_number unixname "},
	{"tasks", " class_ref depends_on_past doc_md downstream_task_ids end_date execution_timeout executor "
		  "extra_links is_mapped owner pool pool_slots priority_weight queue retries retry_delay "
		  "retry_exponential_backoff start_date sub_dag task_display_name task_id template_fields "
		  "trigger_rule ui_color ui_fgcolor wait_for_downstream weight_rule "},
	{"pools", " deferred_slots description include_deferred name occupied_slots open_slots queued_slots "
		  "running_slots scheduled_slots slots "},
	{"variables", " description key value "},
	{"connections", " conn_type connection_id description host login port schema "},
	{"import_errors", " filename import_error_id stack_trace timestamp "},
	{"event_logs", " dag_id event event_log_id execution_date extra map_index owner run_id task_id try_number when "},
	{"users", " active changed_on created_on email failed_login_count first_name last_login last_name "
		  "login_count roles username "},
	{"roles", " actions name "},
	{"xcom_entries", " dag_id execution_date key map_index task_id timestamp "},
	{"dag_warnings", " dag_id message timestamp warning_type "},
};

static bool order_field_known(const char *key, const char *field, const cJSON *all)
{
	char word[128];
	if (strlen(field) + 3 > sizeof(word) || strchr(field, ' '))
		return false;
	snprintf(word, sizeof(word), " %s ", field);
	for (size_t i = 0; i < sizeof(order_fields) / sizeof(*order_fields); i++)
		if (!strcmp(order_fields[i].key, key))
			return strstr(order_fields[i].fields, word) != NULL;
	/* A collection of sluice's own: the fields its items have. */
	return cJSON_GetArraySize(all) == 0 || cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(all, 0), field);
}

struct order_item {
	cJSON *item;
	size_t index;
};

struct order_by {
	const char *field;
	bool desc;
};

/* Strings compare as text, numbers as numbers, null and missing first; ties keep their order. */
static int cmp_items(const void *a, const void *b, void *arg)
{
	const struct order_item *p = a, *q = b;
	const struct order_by *o = arg;
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(p->item, o->field);
	const cJSON *y = cJSON_GetObjectItemCaseSensitive(q->item, o->field);
	int c;
	if (cJSON_IsNumber(x) && cJSON_IsNumber(y))
		c = (x->valuedouble > y->valuedouble) - (x->valuedouble < y->valuedouble);
	else if (cJSON_IsString(x) && cJSON_IsString(y))
		c = strcmp(x->valuestring, y->valuestring);
	else if (cJSON_IsBool(x) && cJSON_IsBool(y))
		c = cJSON_IsTrue(x) - cJSON_IsTrue(y);
	else
		c = (x && !cJSON_IsNull(x)) - (y && !cJSON_IsNull(y));
	if (o->desc)
		c = -c;
	return c ? c : (p->index > q->index) - (p->index < q->index);
}

bool api_order(struct req *r, const char *key, cJSON *all, const char *order_by)
{
	if (!order_by || !*order_by)
		return true;
	struct order_by o = {order_by[0] == '-' ? order_by + 1 : order_by, order_by[0] == '-'};
	if (!order_field_known(key, o.field, all)) {
		api_problem(r, 400, "Bad Request",
			    "Ordering with '%s' is disallowed or the attribute does not exist on the model", o.field);
		return false;
	}
	size_t n = (size_t)cJSON_GetArraySize(all);
	struct order_item *items = xcalloc(n ? n : 1, sizeof(*items));
	for (size_t i = 0; i < n; i++)
		items[i] = (struct order_item){cJSON_DetachItemFromArray(all, 0), i};
	qsort_r(items, n, sizeof(*items), cmp_items, &o);
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(all, items[i].item);
	free(items);
	return true;
}

void api_reply_page_by(struct req *r, const char *key, cJSON *all, int limit, int offset, const char *order_by)
{
	if (!api_order(r, key, all, order_by)) {
		cJSON_Delete(all);
		return;
	}
	int total = cJSON_GetArraySize(all);
	cJSON *page = cJSON_CreateArray();
	for (int i = offset; i < total && i < offset + limit; i++)
		cJSON_AddItemToArray(page, cJSON_Duplicate(cJSON_GetArrayItem(all, i), true));
	cJSON_Delete(all);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, key, page);
	cJSON_AddNumberToObject(o, "total_entries", total);
	api_reply(r, 200, o);
}

void api_reply_page(struct req *r, const char *key, cJSON *all, int limit, int offset)
{
	api_reply_page_by(r, key, all, limit, offset, api_query(r, "order_by"));
}

static void reply_problem(struct req *r, unsigned status, const char *title, const char *detail)
{
	api_problem(r, status, title, "%s", detail);
}

/* Handlers --------------------------------------------------------------------------------------- */

static void h_health(struct req *r)
{
	cJSON *j = cJSON_CreateObject();
	cJSON *db = cJSON_AddObjectToObject(j, "metadatabase");
	struct sched_stats ss;
	sched_get_stats(&ss);
	/* Unhealthy too while the scheduler's changes cannot be written (a full disk): they wait. */
	/* And while another process has held the database's lock for more than 2 s. */
	usec_t locked = store_lock_wait_since();
	bool db_ok = r->st && store_schema_level(r->st) == store_schema_target() && ss.commit_failing_since == USEC_NONE &&
		     (!locked || now_usec() - locked < 2 * USEC_PER_SEC);
	cJSON_AddStringToObject(db, "status", db_ok ? "healthy" : "unhealthy");
	cJSON *sc = cJSON_AddObjectToObject(j, "scheduler");
	usec_t hb = r->w->o.heartbeat ? r->w->o.heartbeat(r->w->o.heartbeat_arg) : USEC_NONE;
	bool sc_ok = hb != USEC_NONE && now_usec() - hb < 30 * USEC_PER_SEC;
	cJSON_AddStringToObject(sc, "status", sc_ok ? "healthy" : "unhealthy");
	json_add_time(sc, "latest_scheduler_heartbeat", hb);
	api_reply(r, 200, j);
}

static void h_version(struct req *r)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "version", SLUICE_VERSION);
	cJSON_AddNullToObject(j, "git_version");
	api_reply(r, 200, j);
}

/* sluice's own OpenAPI description, compiled in from web/openapi.yaml. */
static void h_openapi(struct req *r)
{
	const struct embedded_file *f = embedded_find(web_files, "openapi.yaml");
	if (!f) {
		api_problem(r, 404, "Not Found", "no OpenAPI document in this build");
		return;
	}
	api_reply_text(r, 200, xstrndup(f->data, f->len));
	api_set_content_type(r, "application/yaml");
}

static const struct route base_routes[] = {
	{"GET", "/openapi.yaml", ROLE_NONE, h_openapi, NULL},
	{"GET", "/health", ROLE_NONE, h_health, NULL},
	{"GET", "/version", ROLE_NONE, h_version, NULL},
	{"GET", "/events", ROLE_VIEWER, api_events, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};

static const struct route *const route_tables[] = {
	base_routes, api_dag_routes, api_dag_run_routes, api_ti_routes, api_ti_list_routes, api_run_op_routes,
	api_pool_routes, api_import_error_routes, api_backfill_routes, api_variable_routes, api_connection_routes,
	api_event_log_routes, api_admin_routes, api_extra_routes, api_session_routes, api_grid_routes, NULL,
};

/* Routes outside /api/v1 (their paths are from the server's root). */
static const struct route *const root_tables[] = {
	api_metrics_routes, NULL,
};

const struct route *const *server_route_tables(bool root)
{
	return root ? root_tables : route_tables;
}

/* Dispatch --------------------------------------------------------------------------------------- */

static struct store *thread_store(struct web *w)
{
	struct store *st = pthread_getspecific(w->store_key);
	char *err = NULL;
	if (!st && store_open(w->db_path, STORE_READONLY, &st, &err) == 0)
		pthread_setspecific(w->store_key, st);
	free(err);
	return st;
}

/* The client's IP address as text ("" when unknown). */
static void client_address(struct MHD_Connection *conn, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* The first password of admin is shown once and kept in admin_password.txt until admin first
 * logs in: then the file goes, so that nothing (a task running as the daemon's user) can read it
 * later. */
static void forget_admin_password(struct req *r, const char *authorization)
{
	char *who = r->user ? xstrdup(r->user) : auth_caller(r->st, authorization);
	if (!strcmp(who, "admin")) {
		char *path = xasprintf("%s/admin_password.txt", r->w->home);
		if (unlink(path) == 0)
			log_info("admin logged in: removed %s (the password stays valid)", path);
		free(path);
	} else {
		atomic_store(&r->w->admin_file_checked, false); /* another admin: wait for admin itself */
	}
	free(who);
}

static enum MHD_Result check_utf8_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	bool *ok = cls;
	(void)kind;
	if (!utf8_valid(key, strlen(key)) || (value && !utf8_valid(value, strlen(value))))
		*ok = false;
	return MHD_YES;
}

static bool consttime_equal(const char *a, const char *b, size_t n)
{
	unsigned char diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* A session cookie's caller (with no Authorization header): its role, and for a change the
 * session's CSRF token in X-CSRF-Token. Returns false after replying 403 for a change without it. */
static bool cookie_session(struct req *r, const char *cookie, bool mutating)
{
	char *user = NULL;
	usec_t expires = 0;
	r->role = r->st ? session_check(r->st, cookie, &user, &expires) : ROLE_NONE;
	if (r->role == ROLE_NONE)
		return true;
	r->user = user;
	r->session = xstrdup(cookie);
	r->session_expires = expires;
	char want[SESSION_CSRF_LEN + 1];
	session_csrf(cookie, want);
	const char *got = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-CSRF-Token");
	if (mutating && (!got || strlen(got) != SESSION_CSRF_LEN || !consttime_equal(got, want, SESSION_CSRF_LEN))) {
		reply_problem(r, 403, "Forbidden",
			      "a change made with the session cookie must send the session's csrf_token (GET "
			      "/api/v1/auth/session) in the X-CSRF-Token header");
		return false;
	}
	return true;
}

/* Who the caller is: Basic or bearer credentials, else a web UI session cookie. Returns false
 * after replying 401, 403 or 429. */
static bool authenticate(struct req *r, enum role need, const char *client, bool mutating)
{
	const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *cookie = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, SESSION_COOKIE);
	usec_t wait = 0;
	if (!auth && cookie) {
		if (!cookie_session(r, cookie, mutating))
			return false;
	} else {
		r->role = r->st ? auth_check(r->st, auth, client, &wait) : ROLE_NONE;
	}
	if (wait > 0) {
		r->retry_after = (int)((wait + USEC_PER_SEC - 1) / USEC_PER_SEC);
		reply_problem(r, 429, "Too Many Requests", "too many failed logins; try again after Retry-After seconds");
		return false;
	}
	if (r->role == ROLE_NONE) {
		reply_problem(r, 401, "Unauthorized",
			      cookie && !auth ? "the session has expired or ended: log in again"
					      : "credentials are missing or invalid (HTTP Basic or Bearer token)");
		return false;
	}
	if (r->role < need) {
		reply_problem(r, 403, "Forbidden", "your role may not do this");
		return false;
	}
	if (r->role == ROLE_ADMIN && !atomic_exchange(&r->w->admin_file_checked, true))
		forget_admin_password(r, auth);
	return true;
}

/* GET or HEAD of a path outside /api/v1 that no route has: a file of the UI bundle, or the app
 * itself for its own routes. Returns false when the bundle has nothing for the path. */
static bool serve_ui(struct req *r)
{
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
		return false;
	const struct ui_file *f = ui_file_for(r->url);
	if (!f)
		return false;
	r->ui = f;
	const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *ae = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	r->status = inm && strstr(inm, f->etag) ? 304 : 200;
	r->ui_gz = f->gz && ae && strstr(ae, "gzip");
	return true;
}

static void dispatch(struct req *r)
{
	const char *prefix = "/api/v1";
	size_t pl = strlen(prefix);
	const struct route *const *tables = route_tables;
	const char *path = r->url + pl;
	if (strncmp(r->url, prefix, pl) || (r->url[pl] && r->url[pl] != '/')) {
		tables = root_tables;
		path = r->url;
	}
	char client[INET6_ADDRSTRLEN] = "";
	const char *over;
	client_address(r->conn, client, sizeof(client));
	if (connlimit_over(r->w->limits, client, &over)) {
		r->retry_after = 5;
		r->close = true;
		reply_problem(r, 503, "Service Unavailable", over);
		return;
	}
	if (strchr(r->url, BAD_ESCAPE)) {
		reply_problem(r, 400, "Bad Request", "the path holds a NUL or a malformed %-escape");
		return;
	}
	/* What is not UTF-8 would come back in replies that clients then cannot decode as JSON. */
	bool query_ok = true;
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_utf8_value, &query_ok);
	if (!utf8_valid(r->url, strlen(r->url)) || !query_ok || !utf8_valid(sb_str(&r->body), r->body.len)) {
		reply_problem(r, 400, "Bad Request", "the path, the query or the body is not valid UTF-8");
		return;
	}
	/* Changes, and everything when auth is off, only from this server's own pages or a
	 * non-browser client: never under a rebound host name or from another site. */
	const char *why;
	bool mutating = strcmp(r->method, "GET") && strcmp(r->method, "HEAD") && strcmp(r->method, "OPTIONS");
	if ((mutating || r->w->o.no_auth) &&
	    !origin_allowed(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
			    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin"), r->w->port,
			    r->w->o.allowed_hosts, &why)) {
		reply_problem(r, 403, "Forbidden", why);
		return;
	}
	bool path_known;
	const struct route *match = router_find(tables, r->method, path, &r->params, &path_known);
	if (!match && tables == root_tables && !path_known && serve_ui(r))
		return;
	if (!match) {
		if (path_known)
			reply_problem(r, 405, "Method Not Allowed", "this resource does not support that method");
		else
			reply_problem(r, 404, "Not Found", "no such resource");
		return;
	}
	r->st = thread_store(r->w);
	/* The root tables hold /metrics only, public when the operator says so. */
	enum role need = tables == root_tables && r->w->o.metrics_public ? ROLE_NONE : match->min_role;
	if (need != ROLE_NONE && !r->w->o.no_auth) {
		if (!authenticate(r, need, client, mutating))
			return;
	} else {
		r->role = ROLE_ADMIN;
	}
	match->fn(r);
	/* A login or a session of admin counts as admin's first login too. */
	if (r->user && r->status < 300 && !atomic_exchange(&r->w->admin_file_checked, true))
		forget_admin_password(r, NULL);
	if (match->event)
		api_audit(r, match->event);
}

unsigned api_status(struct req *r) { return r->status; }
const char *api_method(struct req *r) { return r->method; }
const char *api_path(struct req *r) { return r->url; }
const char *api_reply_body(struct req *r) { return r->stream_read ? NULL : r->payload; }
bool api_no_auth(struct req *r) { return r->w->o.no_auth; }
const struct config *api_config(struct req *r) { return r->w->o.config; }

int api_connection_fd(struct req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

int api_max_event_streams(struct req *r)
{
	return r->w->o.max_event_streams ? r->w->o.max_event_streams : 512;
}

struct MHD_Connection *api_mhd_connection(struct req *r) { return r->conn; }
void api_client_address(struct req *r, char *out, size_t n) { client_address(r->conn, out, n); }

void api_set_cookie(struct req *r, char *cookie)
{
	free(r->set_cookie);
	r->set_cookie = cookie;
}

void api_set_user(struct req *r, const char *user)
{
	free(r->user);
	r->user = user ? xstrdup(user) : NULL;
}

const char *api_user(struct req *r) { return r->user; }
const char *api_session_token(struct req *r) { return r->session; }
usec_t api_session_expires(struct req *r) { return r->session_expires; }
void api_retry_after(struct req *r, int seconds) { r->retry_after = seconds; }

/* The reply of a UI file: long-cached when its name holds its hash, revalidated otherwise. */
static struct MHD_Response *ui_response(struct req *r)
{
	const struct ui_file *f = r->ui;
	struct MHD_Response *resp;
	if (r->status == 304)
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	else if (r->ui_gz)
		resp = MHD_create_response_from_buffer(f->gzlen, (void *)f->gz, MHD_RESPMEM_PERSISTENT);
	else
		resp = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				f->immutable ? "public, max-age=31536000, immutable" : "no-cache");
	if (r->ui_gz && r->status != 304)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	/* The app loads nothing from elsewhere, and no other site may frame it. */
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
				"img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
				"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
	return resp;
}

static enum MHD_Result send_reply(struct req *r)
{
	size_t len = r->payload ? strlen(r->payload) : 0;
	struct MHD_Response *resp;
	if (r->ui) {
		resp = ui_response(r);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
		enum MHD_Result rc = MHD_queue_response(r->conn, r->status, resp);
		MHD_destroy_response(resp);
		return rc;
	}
	if (r->stream_read) {
		struct stream_wrap *sw = xmalloc(sizeof(*sw));
		*sw = (struct stream_wrap){r->stream_read, r->stream_done, r->stream_ctx};
		r->stream_done = NULL;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_cb, sw, stream_free);
		if (!resp)
			stream_free(sw);
	} else
		resp = MHD_create_response_from_buffer(len, r->payload, MHD_RESPMEM_MUST_FREE);
	r->payload = NULL;
	if (!resp)
		return MHD_NO;
	if (r->stream_read)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type ? r->content_type : "application/json");
	if (r->retry_after > 0) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%d", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	/* The web UI says X-Requested-With: a Basic challenge would make the browser pop up its own
	 * password dialog over the app's login page. */
	const char *xrw = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Requested-With");
	if (r->status == 401 && !(xrw && strcasecmp(xrw, "XMLHttpRequest") == 0))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"sluice\"");
	if (r->close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (r->set_cookie)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	enum MHD_Result rc = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	return rc;
}


static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* MHD's unescaping of the path and the query, in place; returns the new length. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *out = s;
	for (const char *p = s; *p; p++) {
		if (*p != '%') {
			*out++ = *p;
			continue;
		}
		int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			*out++ = BAD_ESCAPE;
			if (hi >= 0 && lo >= 0)
				p += 2;
			continue;
		}
		*out++ = (char)(hi * 16 + lo);
		p += 2;
	}
	*out = '\0';
	(void)cls;
	(void)conn;
	return (size_t)(out - s);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct web *w = cls;
	struct req *r = *con_cls;
	(void)version;
	if (!r) {
		r = xcalloc(1, sizeof(*r));
		r->w = w;
		r->conn = conn;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->body.len + *upload_size > w->o.max_body)
			r->too_large = true;
		else
			sb_add(&r->body, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	r->method = method;
	r->url = url;
	if (r->too_large)
		reply_problem(r, 413, "Payload Too Large", "the request body is larger than the server accepts");
	else
		dispatch(r);
	return send_reply(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;
	if (!r)
		return;
	sb_free(&r->body);
	free(r->payload);
	free(r->set_cookie);
	free(r->user);
	free(r->session);
	router_params_free(&r->params);
	free(r);
	*con_cls = NULL;
}

static void close_store(void *p) { store_close(p); }

/* Connections opening and closing, for the limits (connlimit.h). The client's address rides in
 * the socket context from the one to the other. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct web *w = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		char addr[INET6_ADDRSTRLEN] = "";
		client_address(conn, addr, sizeof(addr));
		*socket_context = xstrdup(addr);
		connlimit_open(w->limits, addr);
	} else if (*socket_context) {
		connlimit_close(w->limits, *socket_context);
		free(*socket_context);
		*socket_context = NULL;
	}
}

static bool loopback(const char *addr)
{
	struct in_addr a;
	return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int web_start(const struct web_opts *o, struct web **out, char **err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	*out = NULL;
	if (inet_pton(AF_INET, o->bind, &sa.sin_addr) != 1) {
		*err = xasprintf("webserver.bind: '%s' is not an IPv4 address", o->bind);
		return -EINVAL;
	}
	if (o->no_auth && !loopback(o->bind)) {
		*err = xasprintf("--no-auth is only allowed on a loopback address, not %s", o->bind);
		return -EPERM;
	}
	struct web *w = xcalloc(1, sizeof(*w));
	w->o = *o;
	w->db_path = xstrdup(o->db_path);
	w->bind = xstrdup(o->bind);
	w->lib_dir = o->lib_dir ? xstrdup(o->lib_dir) : NULL;
	w->home = xstrdup(o->home ? o->home : ".");
	w->o.lib_dir = w->lib_dir;
	w->o.db_path = w->db_path;
	w->o.bind = w->bind;
	w->allowed_hosts = xstrdup(o->allowed_hosts ? o->allowed_hosts : "");
	w->o.allowed_hosts = w->allowed_hosts;
	if (!w->o.max_body)
		w->o.max_body = DEFAULT_MAX_BODY;
	pthread_key_create(&w->store_key, close_store);
	if (!w->o.max_connections)
		w->o.max_connections = 2000;
	if (!w->o.max_connections_per_address)
		w->o.max_connections_per_address = 64;
	if (!w->o.idle_timeout)
		w->o.idle_timeout = 30 * USEC_PER_SEC;
	w->limits = connlimit_new(w->o.max_connections, w->o.max_connections_per_address);
	/* libmicrohttpd's own limit leaves room above ours, so that a request over it still gets its
	 * 503 instead of a closed socket. */
	w->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME,
				  (uint16_t)o->port, NULL, NULL, on_request, w,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned)WORKERS,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, w,
				  MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((w->o.idle_timeout + USEC_PER_SEC - 1) / USEC_PER_SEC),
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)(w->o.max_connections + w->o.max_connections / 8 + 16),
				  MHD_OPTION_END);
	if (!w->mhd) {
		*err = xasprintf("cannot listen on %s:%d: %s", o->bind, o->port, strerror(errno ? errno : EADDRINUSE));
		pthread_key_delete(w->store_key);
		connlimit_free(w->limits);
		free(w->db_path);
		free(w->bind);
		free(w->lib_dir);
		free(w->home);
		free(w->allowed_hosts);
		free(w);
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_BIND_PORT);
	w->port = info ? info->port : o->port;
	api_events_start();
	*out = w;
	return 0;
}

int web_port(const struct web *w) { return w->port; }

void web_stop(struct web *w)
{
	if (!w)
		return;
	api_events_stop(); /* resumes the idle event streams, which then end */
	MHD_stop_daemon(w->mhd);
	pthread_key_delete(w->store_key);
	connlimit_free(w->limits);
	dagcache_clear();
	free(w->db_path);
	free(w->bind);
	free(w->lib_dir);
	free(w->home);
	free(w->allowed_hosts);
	free(w);
}
