#include "orchestrator/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "orchestrator/dagbag.h"
#include "orchestrator/ops.h"
#include "orchestrator/scheduler.h"

#define CONTROL_MAX_REQUEST (1u << 20)
#define CONTROL_IO_TIMEOUT_S 10
#define CONTROL_MAX_TASKS 256

struct control {
	struct control_opts o;
	char *home, *lib_dir;
	struct store *ro;         /* the control thread's own read-only connection (lazily opened) */
	int fd;                   /* listening socket */
	int stop[2];              /* a byte on stop[1] ends the thread */
	pthread_t thread;
};

/* A sockaddr for <dir>/control.sock. A path too long for sun_path goes through the open
 * directory (/proc/self/fd/N/...); *dirfd is then that descriptor, for the caller to close. */
static void socket_addr(const char *dir, struct sockaddr_un *sa, int *dirfd)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	*dirfd = -1;
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/control.sock", dir) < sizeof(sa->sun_path))
		return;
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/control.sock", *dirfd);
}

/* Request handling (on the daemon's loop thread, through sched_write) ----------------------- */

struct op_call {
	const struct control *c;
	const cJSON *req;
	struct dag *d;            /* clear/mark: the DAG, loaded on the control thread beforehand */
	cJSON *reply;
};

static bool flag(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The DAG of its current stored version, as the REST API loads it. On the control thread, with
 * its own read-only connection: parsing a DAG file is no work for the scheduler's thread. */
static struct dag *current_dag(struct control *c, const char *dag_id)
{
	char *version = NULL, *err = NULL, *db = NULL;
	struct dag *d = NULL;
	if (!c->ro) {
		db = xasprintf("%s/sluice.db", c->home);
		if (store_open(db, STORE_READONLY, &c->ro, &err) < 0)
			log_warnx("control socket: %s", err);
		free(err);
		free(db);
	}
	if (c->ro && dag_id && store_dag_version_current(c->ro, dag_id, &version) == 0)
		d = dagbag_load_stored(c->ro, dag_id, version, c->lib_dir, c->o.limits);
	free(version);
	return d;
}

/* Runs a clear or mark; returns the count or -errno with *err. */
static int run_change(struct store *w, const struct op_call *call, bool mark, struct ti_row **rows, char **err)
{
	const cJSON *req = call->req, *ids = cJSON_GetObjectItemCaseSensitive(req, "task_ids"), *it;
	const cJSON *mi = cJSON_GetObjectItemCaseSensitive(req, "map_index");
	const char *dag_id = str(req, "dag_id"), *run_id = str(req, "run_id"), *task_ids[CONTROL_MAX_TASKS];
	size_t n = 0;
	cJSON_ArrayForEach(it, ids)
		if (cJSON_IsString(it) && n < CONTROL_MAX_TASKS)
			task_ids[n++] = it->valuestring;
	if (!dag_id || !run_id || !n || (mark && !str(req, "state"))) {
		*err = xstrdup("dag_id, run_id, task_ids (and state for mark) are required");
		return -EINVAL;
	}
	struct run_row run = {0};
	if (store_run_get(w, dag_id, run_id, 0, &run) < 0) {
		*err = xasprintf("no run %s of DAG %s", run_id, dag_id);
		return -ENOENT;
	}
	struct dag *d = call->d;
	int rc;
	struct ops_selection sel = {
		.task_ids = task_ids, .ntasks = n, .map_index = cJSON_IsNumber(mi) ? (int)mi->valuedouble : -2,
		.upstream = flag(req, "upstream"), .downstream = flag(req, "downstream"),
		.only_failed = flag(req, "only_failed"),
	};
	if (!d) {
		*err = xasprintf("the daemon has no loadable version of DAG %s", dag_id);
		rc = -ENOENT;
	} else if (mark) {
		rc = ops_mark(w, sched_engine(), d, &run, &sel, str(req, "state"), flag(req, "dry_run"), rows, err);
	} else {
		rc = ops_clear(w, sched_engine(), d, &run, &sel, flag(req, "dry_run"), rows, err);
	}
	run_row_free(&run);
	return rc;
}

/* {"op": "cancel", "dag_id", "run_id"}: the run's tries are stopped and it fails. */
static int run_cancel(struct store *w, const struct op_call *call, char **err)
{
	struct run_row run = {0};
	const char *dag_id = str(call->req, "dag_id"), *run_id = str(call->req, "run_id");
	if (!dag_id || !run_id || store_run_get(w, dag_id, run_id, 0, &run) < 0) {
		*err = xasprintf("no run %s of DAG %s", run_id ? run_id : "?", dag_id ? dag_id : "?");
		return -ENOENT;
	}
	int rc = ops_cancel_run(w, sched_engine(), &run, "cancelled by `sluice runs cancel`", err);
	run_row_free(&run);
	return rc;
}

/* {"op": "kill", "dag_id", "run_id", "task_id", "map_index"}: the try is stopped and fails. */
static int run_kill(struct store *w, const struct op_call *call, char **err)
{
	struct run_row run = {0};
	const char *dag_id = str(call->req, "dag_id"), *run_id = str(call->req, "run_id"), *task = str(call->req, "task_id");
	const cJSON *mi = cJSON_GetObjectItemCaseSensitive(call->req, "map_index");
	if (!dag_id || !run_id || !task || store_run_get(w, dag_id, run_id, 0, &run) < 0) {
		*err = xasprintf("no run %s of DAG %s", run_id ? run_id : "?", dag_id ? dag_id : "?");
		return -ENOENT;
	}
	int rc = ops_kill_try(w, sched_engine(), &run, task, cJSON_IsNumber(mi) ? (int)mi->valuedouble : -1,
			      "killed by `sluice tasks kill`", err);
	run_row_free(&run);
	return rc;
}

static int handle(struct store *w, void *arg)
{
	struct op_call *call = arg;
	const char *op = str(call->req, "op");
	struct ti_row *rows = NULL;
	char *err = NULL;
	int n;
	if (op && (!strcmp(op, "clear") || !strcmp(op, "mark"))) {
		n = run_change(w, call, !strcmp(op, "mark"), &rows, &err);
	} else if (op && !strcmp(op, "cancel")) {
		n = run_cancel(w, call, &err);
	} else if (op && !strcmp(op, "kill")) {
		n = run_kill(w, call, &err);
	} else if (op && !strcmp(op, "wake")) {
		n = 0; /* a write like any other: the scheduler looks at the database at once */
	} else {
		err = xasprintf("unknown op '%s'", op ? op : "");
		n = -EINVAL;
	}
	cJSON_AddNumberToObject(call->reply, "rc", n);
	if (n < 0)
		cJSON_AddStringToObject(call->reply, "error", err ? err : strerror(-n));
	cJSON *arr = cJSON_AddArrayToObject(call->reply, "task_instances");
	for (int i = 0; rows && i < n; i++) {
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "task_id", rows[i].task_id);
		cJSON_AddNumberToObject(t, "map_index", rows[i].map_index);
		cJSON_AddStringToObject(t, "state", rows[i].state);
		cJSON_AddItemToArray(arr, t);
		ti_row_free(&rows[i]);
	}
	free(rows);
	free(err);
	return 0;
}

/* The server thread ---------------------------------------------------------------------------- */

/* Reads one line (the request) into out; false on timeout, EOF first or a request too large. */
static bool read_line(int fd, struct strbuf *out)
{
	char buf[4096];
	ssize_t n;
	while (out->len < CONTROL_MAX_REQUEST && (n = read(fd, buf, sizeof(buf))) > 0) {
		sb_add(out, buf, (size_t)n);
		if (memchr(buf, '\n', (size_t)n))
			return true;
	}
	return false;
}

static void write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

static void serve_one(struct control *c, int fd)
{
	struct timeval tv = {CONTROL_IO_TIMEOUT_S, 0};
	struct strbuf in = {0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cJSON *req = read_line(fd, &in) ? cJSON_Parse(sb_str(&in)) : NULL;
	struct op_call call = {c, req, NULL, cJSON_CreateObject()};
	const char *op = str(req, "op");
	if (op && (!strcmp(op, "clear") || !strcmp(op, "mark")))
		call.d = current_dag(c, str(req, "dag_id"));
	int rc = cJSON_IsObject(req) ? sched_write(handle, &call) : -EINVAL;
	dag_unref(call.d);
	if (rc < 0) {
		cJSON_AddNumberToObject(call.reply, "rc", rc);
		cJSON_AddStringToObject(call.reply, "error", rc == -EINVAL ? "the request is not one JSON object line"
								      : "the daemon is stopping");
	}
	char *text = cJSON_PrintUnformatted(call.reply);
	write_all(fd, text, strlen(text));
	write_all(fd, "\n", 1);
	free(text);
	cJSON_Delete(call.reply);
	cJSON_Delete(req);
	sb_free(&in);
}

static void *accept_loop(void *arg)
{
	struct control *c = arg;
	struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->stop[0], .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(c, fd);
		close(fd);
	}
	return NULL;
}

static int listen_on(const char *home, char **err)
{
	struct sockaddr_un sa;
	int dirfd, fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;
	socket_addr(home, &sa, &dirfd);
	unlink(sa.sun_path); /* a stale socket of a daemon that died: we hold the lock now */
	mode_t old = umask(077);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		rc = -errno;
	umask(old);
	if (dirfd >= 0)
		close(dirfd);
	if (rc < 0) {
		*err = xasprintf("cannot listen on %s/control.sock: %s", home, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

int control_start(const struct control_opts *o, struct control **out, char **err)
{
	struct control *c = xcalloc(1, sizeof(*c));
	c->o = *o;
	c->home = xstrdup(o->home);
	c->lib_dir = o->lib_dir ? xstrdup(o->lib_dir) : NULL;
	c->stop[0] = c->stop[1] = -1;
	if ((c->fd = listen_on(o->home, err)) < 0 || pipe2(c->stop, O_CLOEXEC) < 0 ||
	    pthread_create(&c->thread, NULL, accept_loop, c) != 0) {
		int rc = c->fd < 0 ? c->fd : -errno;
		if (c->fd >= 0 && !*err)
			*err = xasprintf("cannot start the control thread: %s", strerror(-rc));
		c->thread = 0;
		control_stop(c);
		return rc;
	}
	*out = c;
	return 0;
}

void control_stop(struct control *c)
{
	if (!c)
		return;
	if (c->thread) {
		write_all(c->stop[1], "x", 1);
		pthread_join(c->thread, NULL);
	}
	if (c->fd >= 0) {
		struct sockaddr_un sa;
		int dirfd;
		socket_addr(c->home, &sa, &dirfd);
		unlink(sa.sun_path);
		if (dirfd >= 0)
			close(dirfd);
		close(c->fd);
	}
	for (int i = 0; i < 2; i++)
		if (c->stop[i] >= 0)
			close(c->stop[i]);
	store_close(c->ro);
	free(c->home);
	free(c->lib_dir);
	free(c);
}

/* The client ------------------------------------------------------------------------------------ */

int control_call(const char *home, const cJSON *req, cJSON **reply, usec_t timeout, char **err)
{
	struct sockaddr_un sa;
	struct timeval tv = {(time_t)(timeout / USEC_PER_SEC), (suseconds_t)(timeout % USEC_PER_SEC)};
	struct strbuf in = {0};
	int dirfd, rc = 0, fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*reply = NULL;
	socket_addr(home, &sa, &dirfd);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		*err = xasprintf("cannot reach the daemon at %s/control.sock: %s", home, strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char *text = cJSON_PrintUnformatted(req);
	write_all(fd, text, strlen(text));
	write_all(fd, "\n", 1);
	free(text);
	if (!read_line(fd, &in) || !(*reply = cJSON_Parse(sb_str(&in)))) {
		rc = -ETIMEDOUT;
		*err = xstrdup("the daemon did not answer");
	}
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	sb_free(&in);
	return rc;
}
