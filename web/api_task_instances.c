/* Per task instance: logs (with a continuation token for tailing), tries, xcomEntries (outputs). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web/api.h"
#include "web/apijson.h"
#include "orchestrator/engine.h"
#include "orchestrator/ops.h"
#include "orchestrator/runs.h"
#include "orchestrator/scheduler.h"

#define LOG_CHUNK (1u << 20)

/* A map index as written in a path or query: an integer >= -1. */
static bool parse_map_index(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < -1 || v > 1000000000)
		return false;
	*out = (int)v;
	return true;
}

/* The task instance named by the path ({map_index} or ?map_index=, default -1); replies 400 for
 * a map index that is not a number and 404 when the instance is missing. */
static bool find_ti(struct req *r, struct run_row *run, struct ti_row *ti)
{
	const char *mi = api_param(r, "map_index");
	int map_index = -1;
	if (!mi)
		mi = api_query(r, "map_index");
	if (mi && !parse_map_index(mi, &map_index)) {
		api_problem(r, 400, "Bad Request", "map_index must be an integer, not '%s'", mi);
		return false;
	}
	if (!api_find_run(r, run))
		return false;
	if (store_ti_get(api_store(r), run->pk, api_param(r, "task_id"), map_index, ti) == 0)
		return true;
	api_problem(r, 404, "Task instance not found", "Task instance %s (map index %d) of run %s not found",
		    api_param(r, "task_id"), map_index, run->run_id);
	run_row_free(run);
	return false;
}

/* A whole log streamed from its file, in bounded memory whatever its size: as JSON
 * {"continuation_token", "content"} (escaped on the fly) or as plain text. It ends at the size
 * the file had when the request came, which is the continuation token. */
struct log_stream {
	int fd;
	long long left;            /* bytes of the file still to send */
	bool json;
	int phase;                 /* 0: the JSON prefix, 1: the content, 2: the suffix, 3: done */
	char prefix[96];
};

static size_t json_escape_into(const char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)sprintf(out + o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

static long log_stream_read(void *ctx, char *buf, size_t max)
{
	struct log_stream *ls = ctx;
	if (ls->phase == 0) {
		ls->phase = 1;
		if (ls->json) {
			size_t n = strlen(ls->prefix);
			memcpy(buf, ls->prefix, n < max ? n : max);
			return (long)(n < max ? n : max);
		}
	}
	if (ls->phase == 1) {
		char raw[4096];
		size_t want = ls->json ? (max / 6 < sizeof(raw) ? max / 6 : sizeof(raw)) : (max < sizeof(raw) ? max : sizeof(raw));
		if ((long long)want > ls->left)
			want = (size_t)ls->left;
		ssize_t n = want ? read(ls->fd, ls->json ? raw : buf, want) : 0;
		if (n > 0) {
			ls->left -= n;
			return ls->json ? (long)json_escape_into(raw, (size_t)n, buf) : (long)n;
		}
		ls->phase = 2; /* the end of the file, or as much as there was */
	}
	if (ls->phase == 2 && ls->json) {
		ls->phase = 3;
		memcpy(buf, "\"}", 2);
		return 2;
	}
	return -1;
}

static void log_stream_done(void *ctx)
{
	struct log_stream *ls = ctx;
	close(ls->fd);
	free(ls);
}

/* full_content=true: streams the log from offset (replies and returns true), or returns false
 * when the file cannot be opened. */
static bool stream_log(struct req *r, const char *path, long long offset, bool text)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &sb) < 0 || offset < 0 || offset > sb.st_size || lseek(fd, offset, SEEK_SET) != offset) {
		close(fd);
		return false;
	}
	struct log_stream *ls = xcalloc(1, sizeof(*ls));
	ls->fd = fd;
	ls->left = (long long)sb.st_size - offset;
	ls->json = !text;
	snprintf(ls->prefix, sizeof(ls->prefix), "{\"continuation_token\": \"%lld\", \"content\": \"",
		 (long long)sb.st_size);
	api_reply_stream(r, text ? "text/plain; charset=utf-8" : "application/json", log_stream_read,
			 log_stream_done, ls);
	return true;
}

/* sluice's own ways to read a window of a log, for the web UI's log view: ?tail_bytes=N (the
 * last N bytes, from the start of a line) and ?max_bytes=N (at most N bytes from the token). */
struct log_window {
	long long tail, max; /* -1: not asked for */
};

static bool log_window(struct req *r, struct log_window *w)
{
	const char *names[2] = {"tail_bytes", "max_bytes"};
	long long *out[2] = {&w->tail, &w->max};
	for (int i = 0; i < 2; i++) {
		const char *v = api_query(r, names[i]);
		char *end;
		*out[i] = -1;
		if (!v)
			continue;
		long long n = strtoll(v, &end, 10);
		if (!*v || *end || n < 1 || n > LOG_CHUNK) {
			api_problem(r, 400, "Bad Request", "%s must be an integer from 1 to %d", names[i], (int)LOG_CHUNK);
			return false;
		}
		*out[i] = n;
	}
	return true;
}

/* Reads the part of the log at path that the request asks for into content, from *offset (moved
 * for a tail); returns the file's size (0 when it cannot be read). */
static long long read_log_window(const char *path, long long *offset, bool all, const struct log_window *w,
				 struct strbuf *content)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	long long size = (long long)sb.st_size, cap = all ? -1 : w->max >= 0 ? w->max : (long long)LOG_CHUNK;
	bool align = false;
	if (w->tail >= 0 && size > w->tail) {
		*offset = size - w->tail;
		align = true;
	} else if (w->tail >= 0) {
		*offset = 0;
	}
	if (*offset >= 0 && *offset <= size && lseek(fd, *offset, SEEK_SET) == *offset) {
		char buf[65536];
		ssize_t n;
		while ((cap < 0 || (long long)content->len < cap) && (n = read(fd, buf, sizeof(buf))) > 0)
			sb_add(content, buf, (size_t)n);
		if (cap >= 0 && (long long)content->len > cap) {
			content->len = (size_t)cap;
			content->buf[cap] = '\0';
		}
	}
	close(fd);
	if (align && content->len) { /* start at the first whole line of the tail */
		char *nl = memchr(content->buf, '\n', content->len);
		size_t skip = nl ? (size_t)(nl - content->buf) + 1 : 0;
		memmove(content->buf, content->buf + skip, content->len - skip + 1);
		content->len -= skip;
		*offset += (long long)skip;
	}
	return size;
}

/* The log of one try. The continuation token is the byte offset already read (opaque to
 * clients); without full_content, a reply carries at most 1 MiB from there. */
static void logs(struct req *r)
{
	struct run_row run = {0};
	struct ti_row ti;
	char *end;
	long try_number = strtol(api_param(r, "task_try_number"), &end, 10);
	if (*end || try_number < 1) {
		api_problem(r, 400, "Bad Request", "task_try_number must be a positive integer");
		return;
	}
	if (!find_ti(r, &run, &ti))
		return;
	if (try_number > ti.try_number) {
		api_problem(r, 404, "Try not found", "task %s has no try %ld yet", ti.task_id, try_number);
		goto out;
	}
	const char *token = api_query(r, "token");
	bool all;
	if (!api_query_bool(r, "full_content", false, &all))
		goto out;
	long long offset = token && !all ? strtoll(token, NULL, 10) : 0;
	char *path = runs_log_path(api_home(r), ti.dag_id, ti.run_id, ti.task_id, ti.map_index, (int)try_number, "log");
	if (!path) {
		api_problem(r, 404, "Log not found", "the ids of this task instance do not name a log");
		goto out;
	}
	const char *accept = api_header(r, "Accept");
	bool text = accept && strstr(accept, "text/plain") && !strstr(accept, "application/json");
	if (all && stream_log(r, path, 0, text)) {
		free(path);
		goto out;
	}
	struct log_window win;
	if (!log_window(r, &win)) {
		free(path);
		goto out;
	}
	struct strbuf content = {0};
	long long size = read_log_window(path, &offset, all, &win, &content);
	free(path);
	if (text) {
		api_reply_text(r, 200, sb_steal(&content));
	} else {
		cJSON *o = cJSON_CreateObject();
		char next[32];
		snprintf(next, sizeof(next), "%lld", (long long)(offset + (long long)content.len));
		cJSON_AddStringToObject(o, "continuation_token", next);
		cJSON_AddStringToObject(o, "content", sb_str(&content));
		if (win.tail >= 0 || win.max >= 0) { /* sluice's own fields, only when asked for its own way */
			cJSON_AddNumberToObject(o, "start", (double)offset);
			cJSON_AddNumberToObject(o, "size", (double)size);
		}
		api_reply(r, 200, o);
	}
	sb_free(&content);
out:
	ti_row_free(&ti);
	run_row_free(&run);
}

void api_add_rendered(struct req *r, cJSON *o, const struct ti_row *ti, int try_number)
{
	if (try_number < 1)
		return;
	char *path = runs_log_path(api_home(r), ti->dag_id, ti->run_id, ti->task_id, ti->map_index, try_number, "cmd");
	char *text = NULL;
	size_t len = 0;
	if (path && read_file(path, 256 * 1024, &text, &len) == 0) {
		char *clean = utf8_sanitize(text);
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "cmd", clean);
		cJSON_ReplaceItemInObject(o, "rendered_fields", f);
		free(clean);
	}
	free(text);
	free(path);
}

/* Airflow 2.10 lists tries in the TaskInstance shape. */
static cJSON *try_json(const struct ti_row *ti, const struct try_row *t, const struct run_row *run)
{
	struct ti_row view = *ti;
	view.try_number = t->try_number;
	view.state = t->state;
	view.start_date = t->start_date;
	view.end_date = t->end_date;
	view.duration = t->duration;
	view.hostname = t->hostname;
	view.pid = t->pid;
	view.queued_when = t->queued_when;
	view.executor = t->executor;
	view.exit_code = t->exit_code;
	return api_task_instance(&view, run);
}

static cJSON *try_json_rendered(struct req *r, const struct ti_row *ti, const struct try_row *t, const struct run_row *run)
{
	cJSON *o = try_json(ti, t, run);
	api_add_rendered(r, o, ti, t->try_number);
	return o;
}

/* .../tries, and .../tries/{task_try_number} for one of them. */
static void tries(struct req *r)
{
	struct run_row run = {0};
	struct ti_row ti;
	struct try_row *rows = NULL;
	int limit, offset;
	const char *one = api_param(r, "task_try_number");
	char *end = NULL;
	long want = one ? strtol(one, &end, 10) : 0;
	if (one && (*end || !*one || want < 1)) {
		api_problem(r, 400, "Bad Request", "task_try_number must be a positive integer");
		return;
	}
	if (!api_page(r, &limit, &offset) || !find_ti(r, &run, &ti))
		return;
	int n = store_try_list(api_store(r), ti.pk, &rows);
	cJSON *all = cJSON_CreateArray(), *found = NULL;
	for (int i = 0; i < n; i++) {
		if (!one)
			cJSON_AddItemToArray(all, try_json_rendered(r, &ti, &rows[i], &run));
		else if (rows[i].try_number == want && !found)
			found = try_json_rendered(r, &ti, &rows[i], &run);
		try_row_free(&rows[i]);
	}
	free(rows);
	if (!one) {
		api_reply_page(r, "task_instances", all, limit, offset);
	} else {
		cJSON_Delete(all);
		if (!found && want == ti.try_number && ti.try_number > 0) {
			found = api_task_instance(&ti, &run); /* the try under way has no history row yet */
			api_add_rendered(r, found, &ti, ti.try_number);
		}
		if (found)
			api_reply(r, 200, found);
		else
			api_problem(r, 404, "Try not found", "task %s has no try %ld", ti.task_id, want);
	}
	ti_row_free(&ti);
	run_row_free(&run);
}

struct note_call {
	const struct run_row *run;
	const char *task_id;
	int map_index;
	const char *note;
	char *err;
};

static int note_fn(struct store *st, void *arg)
{
	struct note_call *c = arg;
	return ops_set_note(st, sched_engine(), c->run, c->task_id, c->map_index, c->note, &c->err);
}

/* The note of a PATCH .../setNote body; NULL after replying 400. */
const char *api_note_body(struct req *r, cJSON *body)
{
	const cJSON *note = cJSON_GetObjectItemCaseSensitive(body, "note");
	if (!cJSON_IsString(note)) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object with a string note");
		return NULL;
	}
	if (strlen(note->valuestring) > 1000) {
		api_problem(r, 400, "Bad Request", "a note is at most 1000 characters");
		return NULL;
	}
	return note->valuestring;
}

/* PATCH .../taskInstances/{task_id}[/{map_index}]/setNote: returns the task instance. */
static void set_note(struct req *r)
{
	struct run_row run = {0};
	struct ti_row ti;
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	const char *note = api_note_body(r, body);
	if (note && find_ti(r, &run, &ti)) {
		struct note_call c = {&run, ti.task_id, ti.map_index, note, NULL};
		int rc = sched_write(note_fn, &c);
		struct ti_row now;
		if (rc < 0)
			api_write_failed(r, rc);
		else if (store_ti_get(api_store(r), run.pk, ti.task_id, ti.map_index, &now) == 0) {
			api_reply(r, 200, api_task_instance(&now, &run));
			ti_row_free(&now);
		}
		free(c.err);
		ti_row_free(&ti);
		run_row_free(&run);
	}
	cJSON_Delete(body);
}

struct xcom_ctx {
	cJSON *arr;
	const struct ti_row *ti;
	const struct run_row *run;
	const char *only_key;
	bool with_value;
};

static int add_xcom(void *arg, const char *key, const char *value)
{
	struct xcom_ctx *c = arg;
	if (c->only_key && strcmp(key, c->only_key))
		return 0;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "key", key);
	json_add_time(o, "timestamp", c->ti->end_date != USEC_NONE ? c->ti->end_date : c->run->logical_date);
	json_add_time(o, "execution_date", c->run->logical_date);
	cJSON_AddStringToObject(o, "task_id", c->ti->task_id);
	cJSON_AddStringToObject(o, "dag_id", c->ti->dag_id);
	cJSON_AddNumberToObject(o, "map_index", c->ti->map_index);
	if (c->with_value)
		cJSON_AddStringToObject(o, "value", value);
	cJSON_AddItemToArray(c->arr, o);
	return 0;
}

/* The xcomEntries of every instance that dag_id, dag_run_id and task_id name, "~" for any
 * (and ?map_index= when given), as Airflow lists them. */
static void xcoms_across(struct req *r, int limit, int offset)
{
	const char *dag = api_param(r, "dag_id"), *rid = api_param(r, "dag_run_id"), *task = api_param(r, "task_id");
	const char *mi = api_query(r, "map_index");
	int map_index = -2;
	if (mi && !parse_map_index(mi, &map_index)) {
		api_problem(r, 400, "Bad Request", "map_index must be an integer, not '%s'", mi);
		return;
	}
	struct run_row *runs = NULL;
	int n = store_run_list(api_store(r), strcmp(dag, "~") ? dag : NULL, &runs);
	cJSON *all = cJSON_CreateArray();
	for (int i = n - 1; i >= 0; i--) {
		struct ti_row *tis = NULL;
		int m = strcmp(rid, "~") && strcmp(rid, runs[i].run_id) ? 0 : store_ti_list(api_store(r), runs[i].pk, &tis);
		for (int k = 0; k < m; k++) {
			if ((!strcmp(task, "~") || !strcmp(task, tis[k].task_id)) && (map_index == -2 || map_index == tis[k].map_index)) {
				struct xcom_ctx c = {all, &tis[k], &runs[i], api_query(r, "xcom_key"), false};
				store_output_each(api_store(r), tis[k].pk, add_xcom, &c);
			}
			ti_row_free(&tis[k]);
		}
		free(tis);
	}
	for (int i = 0; i < n; i++)
		run_row_free(&runs[i]);
	free(runs);
	api_reply_page(r, "xcom_entries", all, limit, offset);
}

static void xcoms(struct req *r)
{
	struct run_row run = {0};
	struct ti_row ti;
	int limit, offset;
	const char *key = api_param(r, "xcom_key");
	if (!api_page(r, &limit, &offset))
		return;
	if (!strcmp(api_param(r, "dag_id"), "~") || !strcmp(api_param(r, "dag_run_id"), "~") ||
	    !strcmp(api_param(r, "task_id"), "~")) {
		if (key)
			api_problem(r, 400, "Bad Request", "~ names any DAG, run or task in a list only, not for one entry");
		else
			xcoms_across(r, limit, offset);
		return;
	}
	if (!find_ti(r, &run, &ti))
		return;
	struct xcom_ctx c = {cJSON_CreateArray(), &ti, &run, key ? key : api_query(r, "xcom_key"), key != NULL};
	store_output_each(api_store(r), ti.pk, add_xcom, &c);
	if (!key) {
		api_reply_page(r, "xcom_entries", c.arr, limit, offset);
	} else if (cJSON_GetArraySize(c.arr) == 1) {
		api_reply(r, 200, cJSON_DetachItemFromArray(c.arr, 0));
		cJSON_Delete(c.arr);
	} else {
		cJSON_Delete(c.arr);
		api_problem(r, 404, "XCom entry not found", "task %s has no output '%s'", ti.task_id, key);
	}
	ti_row_free(&ti);
	run_row_free(&run);
}

#define TI "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}"

const struct route api_ti_routes[] = {
	{"GET", TI "/logs/{task_try_number}", ROLE_VIEWER, logs, NULL},
	{"GET", TI "/tries", ROLE_VIEWER, tries, NULL},
	{"GET", TI "/tries/{task_try_number}", ROLE_VIEWER, tries, NULL},
	{"GET", TI "/{map_index}/tries", ROLE_VIEWER, tries, NULL},
	{"GET", TI "/{map_index}/tries/{task_try_number}", ROLE_VIEWER, tries, NULL},
	{"PATCH", TI "/setNote", ROLE_OP, set_note, "task_instance.edit"},
	{"PATCH", TI "/{map_index}/setNote", ROLE_OP, set_note, "task_instance.edit"},
	{"GET", TI "/xcomEntries", ROLE_VIEWER, xcoms, NULL},
	{"GET", TI "/xcomEntries/{xcom_key}", ROLE_VIEWER, xcoms, NULL},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
