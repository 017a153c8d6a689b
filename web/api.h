/* What REST handlers see: the request, its path parameters and query, the caller's role, a
 * read-only database connection, and the reply helpers. One file per resource registers its
 * routes in its own table (api_*_routes); server.c picks the most specific match. */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "web/auth.h"
#include "orchestrator/store.h"

#define API_MAX_PARAMS 6

struct req;

typedef void (*api_handler)(struct req *r);

struct route {
	const char *method;
	const char *path;          /* under /api/v1 (root tables: from /); "{name}" matches a segment */
	enum role min_role;        /* ROLE_NONE = public */
	api_handler fn;
	const char *event;         /* the audit log's event for a change ("dag_run.create"); NULL for reads */
};

/* The value of path parameter `name` (URL-decoded), or NULL. */
const char *api_param(struct req *r, const char *name);
/* A query-string value, or NULL. */
const char *api_query(struct req *r, const char *name);
/* Up to max values of a repeated query parameter (?tags=a&tags=b); returns how many. */
int api_query_values(struct req *r, const char *name, const char **out, int max);
/* Every value of a query parameter joined by commas (?update_mask=a&update_mask=b or
 * ?update_mask=a,b both give "a,b"), malloc'd; NULL when absent. */
char *api_query_list(struct req *r, const char *name);
/* $SLUICE_HOME (logs live under it). */
const char *api_home(struct req *r);
/* The DAG folder's lib/ (for loading stored DAG versions that `require` modules). */
const char *api_lib_dir(struct req *r);
/* The caller's role. */
enum role api_role(struct req *r);
/* The request body (NUL-terminated, maybe empty). */
const char *api_body(struct req *r, size_t *len);
/* This worker thread's read-only connection (NULL when the database cannot be opened). */
struct store *api_store(struct req *r);

/* Replies with a JSON document (takes ownership of j). */
void api_reply(struct req *r, unsigned status, cJSON *j);
/* Replies with plain text (takes ownership of text). */
/* Replies with JSON text already written (malloc'd; the reply owns it). */
void api_reply_json(struct req *r, unsigned status, char *json);
void api_reply_text(struct req *r, unsigned status, char *text);
/* Replies 200 with a body produced by read(ctx, buf, max) until it returns < 0 (the end);
 * done(ctx) runs when the connection ends. Used for Server-Sent Events. */
void api_reply_stream(struct req *r, const char *content_type, long (*read)(void *ctx, char *buf, size_t max),
		      void (*done)(void *ctx), void *ctx);
/* GET /events (web/api_events.c), and its waker thread, started and stopped with the server. */
void api_events(struct req *r);
void api_events_start(void);
void api_events_stop(void);
/* The request's libmicrohttpd connection (for suspending an idle event stream). */
struct MHD_Connection;
struct MHD_Connection *api_mhd_connection(struct req *r);
/* Overrides the content type of the reply already set. */
void api_set_content_type(struct req *r, const char *type);
/* Replies 204 No Content. */
void api_reply_empty(struct req *r);
/* A request header, or NULL. */
const char *api_header(struct req *r, const char *name);

/* The request's method and path (as sent, without the query). */
const char *api_method(struct req *r);
const char *api_path(struct req *r);
/* The status of the reply set so far, and its body (NULL when streamed or not set). */
unsigned api_status(struct req *r);
const char *api_reply_body(struct req *r);
/* The daemon's configuration (NULL when the server was started without one). */
struct config;
const struct config *api_config(struct req *r);
/* The socket of the request's connection (-1 when unknown). */
int api_connection_fd(struct req *r);
/* How many event streams may be open at once (webserver.max_event_streams). */
int api_max_event_streams(struct req *r);
/* Whether the server runs without authentication (--no-auth). */
bool api_no_auth(struct req *r);
/* The client's IP address as text ("" when unknown). */
void api_client_address(struct req *r, char *out, size_t n);

/* Web UI sessions (web/session.c). A Set-Cookie header for the reply (takes ownership). */
void api_set_cookie(struct req *r, char *cookie);
/* The user the caller is known as, for the audit log: set by a session cookie or a login (the
 * copy is the request's); NULL when the caller came with Basic or bearer credentials. */
void api_set_user(struct req *r, const char *user);
const char *api_user(struct req *r);
/* The session token of the cookie that authenticated the request (NULL: none), and its expiry. */
const char *api_session_token(struct req *r);
usec_t api_session_expires(struct req *r);
/* Sends Retry-After: seconds with the reply. */
void api_retry_after(struct req *r, int seconds);

/* Records a change in the audit log (web/audit.c): event (the route's), who (the caller's user
 * or token), what (the ids in the path, the request body with secrets masked, the status) and
 * from where (the client's address). Written through the scheduler like every change. */
void api_audit(struct req *r, const char *event);

/* Replies with an RFC 7807 problem in Airflow's shape. */
void api_problem(struct req *r, unsigned status, const char *title, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Replies 503 for a write the scheduler did not take (rc: negative errno from sched_write). */
void api_write_failed(struct req *r, int rc);

/* Airflow's pagination: ?limit= (default 100) and ?offset= (default 0). Returns false after
 * replying 400 when they are not non-negative integers. */
bool api_page(struct req *r, int *limit, int *offset);
/* Wraps items [offset, offset+limit) of a JSON array, ordered by ?order_by=, into {key: [...],
 * "total_entries": n} and replies 200. Takes ownership of all. */
void api_reply_page(struct req *r, const char *key, cJSON *all, int limit, int offset);
/* The same, ordered by order_by (from a request body) instead of the query. */
void api_reply_page_by(struct req *r, const char *key, cJSON *all, int limit, int offset, const char *order_by);
/* Orders the items of the collection key (its name in the reply: "dags", "task_instances", ...)
 * by order_by ("field", or "-field" for descending; stable). Returns false after replying 400
 * when the field is not one of the collection's item. */
bool api_order(struct req *r, const char *key, cJSON *all, const char *order_by);
/* ?name= as a boolean: true/false in any case, 1 or 0; def when absent. Returns false after
 * replying 400 for anything else. */
bool api_query_bool(struct req *r, const char *name, bool def, bool *out);

struct ti_row;
/* Fills the task instance o's rendered_fields with the command try try_number ran ({"cmd":
 * ...}, its secrets written as ***), when the engine kept it. */
void api_add_rendered(struct req *r, cJSON *o, const struct ti_row *ti, int try_number);

struct dag_row;
struct dag;
/* The daemon's record of a DAG (caller frees with dag_row_free); replies 404 and returns false
 * when there is none. */
bool api_dag_row(struct req *r, const char *dag_id, struct dag_row *out);
/* The DAG of its current stored version (a new reference; dag_unref it), or NULL after replying. */
struct dag *api_load_dag(struct req *r, const struct dag_row *row);
/* The DAG dag_id as of a stored version (a new reference), parsed once and shared; NULL when it
 * cannot be loaded. */
struct dag *api_dag_version(struct req *r, const char *dag_id, const char *version);
/* api_dag_row and api_load_dag in one, for handlers that need only the DAG. */
struct dag *api_dag_by_id(struct req *r, const char *dag_id);

extern const struct route api_import_error_routes[];
extern const struct route api_pool_routes[];
extern const struct route api_dag_run_routes[];
extern const struct route api_dag_routes[];
extern const struct route api_ti_routes[];
extern const struct route api_ti_list_routes[];
extern const struct route api_variable_routes[];
extern const struct route api_connection_routes[];
extern const struct route api_event_log_routes[];
extern const struct route api_admin_routes[];
extern const struct route api_extra_routes[];
extern const struct route api_run_op_routes[];
extern const struct route api_backfill_routes[];
extern const struct route api_session_routes[];
extern const struct route api_grid_routes[];
/* Served from the root rather than under /api/v1: GET /metrics. */
extern const struct route api_metrics_routes[];

/* The note of a PATCH .../setNote body (borrowed from body); NULL after replying 400. */
const char *api_note_body(struct req *r, cJSON *body);

/* Looks up the run named by the {dag_id}/{dag_run_id} path parameters; replies 404 when missing. */
bool api_find_run(struct req *r, struct run_row *run);

#endif
