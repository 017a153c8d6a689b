/* Unit tests for callbacks: commands with their environment, log and process group; the command
 * timeout that kills the whole group; webhooks against a small HTTP server on 127.0.0.1 that this
 * file runs in a thread (headers and body, retries on 5xx/429, no retry on 4xx or redirects, only
 * http(s) URLs, an unreachable port); queue overflow; and a bounded notify_free(). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "orchestrator/notify.h"
#include "base/util.h"

#define MS (1000LL)
#define JSON "{\"dag_id\":\"d1\",\"run_id\":\"r1\",\"state\":\"failed\"}"

struct fx {
	char dir[64];
	char log[160];
	struct notify *n;
};

/* ---- helpers ---- */

static char *slurp(const char *path)
{
	char *s = NULL;
	size_t len;

	if (read_file(path, 1 << 20, &s, &len) < 0)
		return xstrdup("");
	return s;
}

/* True when text has a line that is exactly `line`. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static int count_of(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The callback line that contains `needle`, checked for the "[<UTC time>] sluice: callback "
 * prefix. Fails the test when there is none. */
static void assert_cb_line(const char *text, const char *event, const char *needle)
{
	char prefix[64];
	const char *p = strstr(text, needle), *bol, *close;

	if (!p)
		fail_msg("no log line with \"%s\" in:\n%s", needle, text);
	for (bol = p; bol > text && bol[-1] != '\n'; bol--)
		;
	snprintf(prefix, sizeof(prefix), "] sluice: callback %s: ", event);
	close = strchr(bol, ']');
	assert_true(bol[0] == '[' && !strncmp(bol + 1, "20", 2));
	assert_non_null(close);
	assert_true(close[-1] == 'Z');
	assert_true(!strncmp(close, prefix, strlen(prefix)));
	assert_true(close < p);
}

/* Sends everything written to stderr to a file until capture_end() returns it. */
struct capture {
	int saved;
	char path[192];
};

static void capture_begin(struct capture *c, struct fx *f)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/stderr.txt", f->dir);
	fflush(stderr);
	c->saved = dup(2);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0 && c->saved >= 0);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(struct capture *c)
{
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	return slurp(c->path);
}

/* True when pid is gone or a zombie (killed, waiting for its new parent to reap it). */
static bool proc_gone(pid_t pid)
{
	char path[64], *stat = NULL, *rp;
	size_t len;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, 4096, &stat, &len) == 0) {
		rp = strrchr(stat, ')');
		gone = rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
	}
	free(stat);
	return gone;
}

static bool wait_gone(pid_t pid, usec_t timeout)
{
	usec_t end = mono_usec() + timeout;

	while (!proc_gone(pid) && mono_usec() < end)
		usleep(10 * 1000);
	return proc_gone(pid);
}

/* Reads a pid a command wrote into path, waiting for the file up to 5 s. */
static pid_t wait_pid_file(const char *path)
{
	usec_t end = mono_usec() + 5 * USEC_PER_SEC;
	char *s;
	pid_t pid = 0;

	while (!pid && mono_usec() < end) {
		s = slurp(path);
		pid = (pid_t)atoi(s);
		free(s);
		if (!pid)
			usleep(10 * 1000);
	}
	assert_true(pid > 0);
	return pid;
}

static void set_limits(struct fx *f, usec_t cmd_timeout, usec_t grace, usec_t pause, usec_t drain,
		       size_t queue_max)
{
	struct notify_limits lim = {cmd_timeout, grace, pause, drain, queue_max};

	notify_set_limits(f->n, &lim);
}

/* ---- a tiny HTTP server on 127.0.0.1 ---- */

#define MAXREQ 8
#define HANG 0 /* script entry: read the request, answer nothing until stopped */

struct req {
	char method[16], target[256], ctype[128], agent[128], expect[64];
	char body[2048];
	size_t clen;
};

struct srv {
	int fd, port;
	const int *script;   /* status codes, one per request; 200 after the end */
	int nscript;
	pthread_t th;
	atomic_bool stop;
	atomic_int count;    /* requests received */
	struct req reqs[MAXREQ];
};

static void hdr_value(const char *line, const char *name, char *out, size_t n)
{
	size_t len = strlen(name);

	if (strncasecmp(line, name, len) || line[len] != ':')
		return;
	line += len + 1;
	while (*line == ' ')
		line++;
	snprintf(out, n, "%.*s", (int)strcspn(line, "\r\n"), line);
}

/* Reads one request: the head, then Content-Length bytes of body. */
static void srv_read(int c, struct req *r)
{
	char buf[8192], *end = NULL, *line, num[32] = "";
	size_t len = 0, want;
	ssize_t got;

	while (!end && len < sizeof(buf) - 1 &&
	       (got = read(c, buf + len, sizeof(buf) - 1 - len)) > 0) {
		len += (size_t)got;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		return;
	sscanf(buf, "%15s %255s", r->method, r->target);
	for (line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
		hdr_value(line, "Content-Type", r->ctype, sizeof(r->ctype));
		hdr_value(line, "User-Agent", r->agent, sizeof(r->agent));
		hdr_value(line, "Expect", r->expect, sizeof(r->expect));
		hdr_value(line, "Content-Length", num, sizeof(num));
	}
	r->clen = (size_t)atol(num);
	want = (size_t)(end + 4 - buf) + r->clen;
	while (len < want && len < sizeof(buf) - 1 &&
	       (got = read(c, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)got;
	buf[len] = '\0';
	snprintf(r->body, sizeof(r->body), "%s", end + 4);
}

static void srv_reply(int c, int code)
{
	const char *body = code == 404 ? "not here" : code >= 500 ? "try later" : "ok";
	const char *extra = code == 302 ? "Location: file:///etc/passwd\r\n" : "";
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n%s\r\n%s", code, strlen(body), extra, body);

	if (write(c, buf, (size_t)n) < 0)
		return;
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	struct timeval tv = {.tv_sec = 5};

	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		int i, c, code;

		if (poll(&p, 1, 20) <= 0 || (c = accept(s->fd, NULL, NULL)) < 0)
			continue;
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		i = atomic_load(&s->count);
		srv_read(c, &s->reqs[i < MAXREQ ? i : MAXREQ - 1]);
		code = i < s->nscript ? s->script[i] : 200;
		atomic_store(&s->count, i + 1);
		while (code == HANG && !atomic_load(&s->stop))
			usleep(10 * 1000);
		if (code != HANG)
			srv_reply(c, code);
		close(c);
	}
	return NULL;
}

/* Binds 127.0.0.1 on an ephemeral port; returns the socket and stores the port. */
static int bind_loopback(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void srv_start(struct srv *s, const int *script, int nscript)
{
	memset(s, 0, sizeof(*s));
	s->script = script;
	s->nscript = nscript;
	s->fd = bind_loopback(&s->port);
	assert_int_equal(listen(s->fd, 16), 0);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	close(s->fd);
}

static void srv_url(const struct srv *s, const char *path, char *buf, size_t n)
{
	snprintf(buf, n, "http://127.0.0.1:%d%s", s->port, path);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
	static const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
					"all_proxy", "ALL_PROXY", NULL};

	(void)state;
	/* Webhooks here go to 127.0.0.1 only, never through a proxy from the environment. */
	for (int i = 0; proxies[i]; i++)
		unsetenv(proxies[i]);
	setenv("NOTIFY_TEST_MARK", "mark-42", 1);
	setenv("SLUICE_EVENT", "stale", 1); /* the callback's own value must replace it */
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *err = NULL;

	strcpy(f->dir, "/tmp/sluice-test-notify-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->log, sizeof(f->log), "%s/logs/d1/r1/on_failure.log", f->dir);
	f->n = notify_new(f->dir, &err);
	if (!f->n) {
		fprintf(stderr, "notify_new: %s\n", err);
		free(err);
		free(f);
		return -1;
	}
	set_limits(f, 0, 0, 50 * MS, 5 * USEC_PER_SEC, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	notify_free(f->n);
	remove_tree("/", f->dir);
	free(f);
	return 0;
}

/* ---- commands ---- */

static void test_command_env_and_log(void **state)
{
	struct fx *f = *state;
	char cmd[640], *log;
	int leak = open("/dev/null", O_RDONLY); /* not close-on-exec: must not reach the command */

	assert_true(leak > 2);
	snprintf(cmd, sizeof(cmd),
		 "echo \"event=$SLUICE_EVENT json=$SLUICE_CALLBACK_JSON mark=$NOTIFY_TEST_MARK\"; "
		 "if read x; then echo stdin-data; else echo stdin-eof; fi; "
		 "set -- $(cat /proc/$$/stat); [ \"$5\" = \"$$\" ] && echo own-group; "
		 "[ -e /proc/$$/fd/%d ] && echo fd-leaked; "
		 "echo \"events=$(tr '\\0' '\\n' < /proc/$$/environ | grep -c ^SLUICE_EVENT=)\"; "
		 "echo to-stderr >&2; exit 3", leak);
	assert_int_equal(notify_fire(f->n, "on_failure", cmd, NULL, JSON, f->log), 0);
	assert_int_equal(notify_fire(f->n, "on_success", "echo fine", NULL, NULL, f->log), 0);
	assert_int_equal(notify_fire(f->n, "on_retry", "echo default-log", NULL, NULL, NULL), 0);
	assert_int_equal(notify_fire(f->n, NULL, "true", NULL, NULL, f->log), -EINVAL);
	assert_int_equal(notify_fire(f->n, "on_retry", NULL, NULL, NULL, f->log), 0);
	assert_int_equal(notify_flush(f->n, 5 * USEC_PER_SEC), 0);
	close(leak);

	log = slurp(f->log);
	assert_true(has_line(log, "event=on_failure json=" JSON " mark=mark-42"));
	assert_true(has_line(log, "stdin-eof"));
	assert_true(has_line(log, "events=1")); /* replaced, not added next to the stale one */
	assert_true(has_line(log, "own-group"));
	assert_true(has_line(log, "to-stderr"));
	assert_false(has_line(log, "fd-leaked"));
	assert_null(strstr(log, "stale"));
	assert_cb_line(log, "on_failure", "running command: echo \"event=");
	assert_cb_line(log, "on_failure", "exited with status 3");
	assert_true(has_line(log, "fine"));
	assert_cb_line(log, "on_success", "exited with status 0");
	/* The command's output comes between its start and end lines. */
	assert_true(strstr(log, "running command") < strstr(log, "stdin-eof"));
	assert_true(strstr(log, "running command: echo fine") < strstr(log, "\nfine\n"));
	assert_true(strstr(log, "stdin-eof") < strstr(log, "status 3"));
	free(log);

	log = xasprintf("%s/logs/callbacks.log", f->dir);
	{
		char *deflog = slurp(log);
		assert_true(has_line(deflog, "default-log"));
		assert_cb_line(deflog, "on_retry", "exited with status 0");
		free(deflog);
	}
	free(log);
}

static void test_command_timeout_kills_group(void **state)
{
	struct fx *f = *state;
	char cmd_a[256], cmd_b[256], pa[192], pb[192], *log;
	usec_t t0;

	set_limits(f, 300 * MS, 300 * MS, 0, 0, 0);
	snprintf(pa, sizeof(pa), "%s/a.pid", f->dir);
	snprintf(pb, sizeof(pb), "%s/b.pid", f->dir);
	/* a ends on SIGTERM; b and its background child ignore SIGTERM and need SIGKILL. */
	snprintf(cmd_a, sizeof(cmd_a), "echo $$ > %s; exec sleep 30", pa);
	snprintf(cmd_b, sizeof(cmd_b),
		 "trap '' TERM; sleep 30 & echo $! > %s; wait; wait; echo survived", pb);
	t0 = mono_usec();
	assert_int_equal(notify_fire(f->n, "on_failure", cmd_a, NULL, NULL, f->log), 0);
	assert_int_equal(notify_fire(f->n, "on_retry", cmd_b, NULL, NULL, f->log), 0);
	assert_int_equal(notify_flush(f->n, 10 * USEC_PER_SEC), 0);
	assert_true(mono_usec() - t0 < 5 * USEC_PER_SEC);
	assert_true(mono_usec() - t0 >= 900 * MS); /* 300 ms, then 300 + 300 ms */

	log = slurp(f->log);
	assert_cb_line(log, "on_failure",
		       "timed out after 300ms; its process group was killed with SIGTERM");
	assert_cb_line(log, "on_retry",
		       "timed out after 300ms; its process group was killed with SIGKILL");
	assert_false(has_line(log, "survived"));
	free(log);
	assert_true(wait_gone(wait_pid_file(pa), 2 * USEC_PER_SEC));
	assert_true(wait_gone(wait_pid_file(pb), 2 * USEC_PER_SEC));
}

/* ---- webhooks ---- */

static void test_webhook_post(void **state)
{
	struct fx *f = *state;
	static const int script[] = {200, 201};
	struct srv s;
	char url[128], *log;

	srv_start(&s, script, 2);
	srv_url(&s, "/hooks/abc?token=s3cret", url, sizeof(url));
	assert_int_equal(notify_fire(f->n, "on_success", NULL, url, JSON, f->log), 0);
	assert_int_equal(notify_fire(f->n, "on_failure", "echo from-cmd", url, NULL, f->log), 0);
	assert_int_equal(notify_flush(f->n, 10 * USEC_PER_SEC), 0);
	srv_stop(&s);

	assert_int_equal(atomic_load(&s.count), 2);
	assert_string_equal(s.reqs[0].method, "POST");
	assert_string_equal(s.reqs[0].target, "/hooks/abc?token=s3cret");
	assert_string_equal(s.reqs[0].ctype, "application/json");
	assert_string_equal(s.reqs[0].agent, "sluice/" SLUICE_VERSION);
	assert_string_equal(s.reqs[0].expect, "");
	assert_int_equal(s.reqs[0].clen, strlen(JSON));
	assert_string_equal(s.reqs[0].body, JSON);
	assert_string_equal(s.reqs[1].body, "{}");

	log = slurp(f->log);
	snprintf(url, sizeof(url), "webhook POST http://127.0.0.1:%d/...: HTTP 200", s.port);
	assert_cb_line(log, "on_success", url);
	assert_cb_line(log, "on_failure", "HTTP 201");
	assert_null(strstr(log, "s3cret")); /* the path may hold a token: never logged */
	/* A callback's command runs before its webhook. */
	assert_true(strstr(log, "from-cmd") < strstr(log, "HTTP 201"));
	free(log);
}

static void test_webhook_retries(void **state)
{
	struct fx *f = *state;
	static const int script[] = {500, 429, 200, 503, 503, 503};
	struct capture cap;
	struct srv s;
	char url[128], *log, *err;
	usec_t t0;

	set_limits(f, 0, 0, 100 * MS, 0, 0);
	srv_start(&s, script, 6);
	srv_url(&s, "/retry", url, sizeof(url));
	t0 = mono_usec();
	assert_int_equal(notify_fire(f->n, "on_failure", NULL, url, JSON, f->log), 0);
	assert_int_equal(notify_flush(f->n, 10 * USEC_PER_SEC), 0);
	assert_true(mono_usec() - t0 >= 300 * MS); /* pauses of 100 ms, then 200 ms */
	assert_int_equal(atomic_load(&s.count), 3);

	capture_begin(&cap, f);
	assert_int_equal(notify_fire(f->n, "on_retry", NULL, url, JSON, f->log), 0);
	assert_int_equal(notify_flush(f->n, 10 * USEC_PER_SEC), 0);
	err = capture_end(&cap);
	srv_stop(&s);
	assert_int_equal(atomic_load(&s.count), 6);
	for (int i = 0; i < 6; i++)
		assert_string_equal(s.reqs[i].body, JSON);

	log = slurp(f->log);
	assert_cb_line(log, "on_failure",
		       "HTTP 500: try later; retrying in 100ms (attempt 1 of 3)");
	assert_cb_line(log, "on_failure", "HTTP 429: ok; retrying in 200ms (attempt 2 of 3)");
	assert_cb_line(log, "on_failure", "HTTP 200");
	assert_cb_line(log, "on_retry", "failed after 3 attempts: HTTP 503: try later");
	assert_non_null(strstr(err, "warning: callback on_retry: webhook POST"));
	assert_null(strstr(err, "on_failure")); /* a success after retries is not a warning */
	free(err);
	free(log);
}

static void test_webhook_no_retry(void **state)
{
	struct fx *f = *state;
	static const int script[] = {404, 302};
	struct capture cap;
	struct srv s;
	char url[128], *log, *err;

	srv_start(&s, script, 2);
	srv_url(&s, "/gone", url, sizeof(url));
	capture_begin(&cap, f);
	assert_int_equal(notify_fire(f->n, "on_failure", NULL, url, JSON, f->log), 0);
	assert_int_equal(notify_fire(f->n, "on_success", NULL, url, JSON, f->log), 0);
	snprintf(url, sizeof(url), "ftp://127.0.0.1:%d/x", s.port);
	assert_int_equal(notify_fire(f->n, "on_retry", NULL, url, JSON, f->log), 0);
	assert_int_equal(notify_fire(f->n, "on_retry", NULL, "file:///etc/passwd", JSON, f->log),
			 0);
	assert_int_equal(notify_flush(f->n, 10 * USEC_PER_SEC), 0);
	err = capture_end(&cap);
	usleep(100 * 1000); /* a retry would arrive now */
	srv_stop(&s);

	assert_int_equal(atomic_load(&s.count), 2);
	log = slurp(f->log);
	assert_cb_line(log, "on_failure", "failed after 1 attempt: HTTP 404: not here");
	assert_cb_line(log, "on_success", "failed after 1 attempt: HTTP 302");
	snprintf(url, sizeof(url), "webhook ftp://127.0.0.1:%d/... refused", s.port);
	assert_cb_line(log, "on_retry", url);
	assert_cb_line(log, "on_retry", "webhook file:///... refused");
	assert_int_equal(count_of(err, "warning: callback "), 4);
	free(err);
	free(log);
}

static void test_webhook_unreachable(void **state)
{
	struct fx *f = *state;
	struct capture cap;
	char url[128], *log, *err;
	int port, fd = bind_loopback(&port);

	close(fd); /* nothing listens on the port now */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
	capture_begin(&cap, f);
	assert_int_equal(notify_fire(f->n, "on_failure", NULL, url, JSON, f->log), 0);
	assert_int_equal(notify_flush(f->n, 10 * USEC_PER_SEC), 0);
	err = capture_end(&cap);

	log = slurp(f->log);
	assert_int_equal(count_of(log, "retrying in"), 2);
	assert_cb_line(log, "on_failure", "failed after 3 attempts: ");
	assert_non_null(strstr(log, "onnect")); /* "Failed to connect ...: Connection refused" */
	assert_non_null(strstr(err, "warning: callback on_failure: webhook POST"));
	assert_non_null(strstr(err, "failed after 3 attempts"));
	free(err);
	free(log);
}

/* ---- queue and shutdown ---- */

static void test_queue_overflow(void **state)
{
	struct fx *f = *state;
	struct capture cap;
	char cmd[256], started[192], *log, *err;
	usec_t t0;

	set_limits(f, 0, 0, 0, 0, 4);
	snprintf(started, sizeof(started), "%s/started", f->dir);
	snprintf(cmd, sizeof(cmd), "echo $$ > %s; sleep 0.5", started);
	assert_int_equal(notify_fire(f->n, "on_failure", cmd, NULL, NULL, f->log), 0);
	wait_pid_file(started); /* the worker is busy with it: the queue is empty */

	capture_begin(&cap, f);
	t0 = mono_usec();
	for (int i = 1; i <= 7; i++) {
		snprintf(cmd, sizeof(cmd), "echo queued-%d", i);
		assert_int_equal(notify_fire(f->n, "on_failure", cmd, NULL, NULL, f->log),
				 i <= 4 ? 0 : -ENOBUFS);
	}
	assert_true(mono_usec() - t0 < 100 * MS); /* never waits for the worker */
	err = capture_end(&cap);
	assert_int_equal(count_of(err, "warning: callback on_failure dropped"), 3);
	assert_non_null(strstr(err, "(3 dropped so far)"));

	assert_int_equal(notify_flush(f->n, 10 * USEC_PER_SEC), 0);
	log = slurp(f->log);
	for (int i = 1; i <= 7; i++) {
		snprintf(cmd, sizeof(cmd), "queued-%d", i);
		assert_true(has_line(log, cmd) == (i <= 4));
	}
	assert_int_equal(count_of(log, "exited with status 0"), 5);
	free(err);
	free(log);
}

static void test_free_drains_queue(void **state)
{
	struct fx *f = *state;
	char cmd[64], *log;

	for (int i = 1; i <= 3; i++) {
		snprintf(cmd, sizeof(cmd), "sleep 0.05; echo drained-%d", i);
		assert_int_equal(notify_fire(f->n, "on_success", cmd, NULL, NULL, f->log), 0);
	}
	notify_free(f->n);
	f->n = NULL;
	log = slurp(f->log);
	for (int i = 1; i <= 3; i++) {
		snprintf(cmd, sizeof(cmd), "drained-%d", i);
		assert_true(has_line(log, cmd));
	}
	assert_int_equal(count_of(log, "exited with status 0"), 3);
	free(log);
}

static void test_free_is_bounded(void **state)
{
	struct fx *f = *state;
	struct capture cap;
	char cmd[256], pidf[192], *log, *err;
	pid_t pid;
	usec_t t0, took;

	set_limits(f, 0, 0, 0, 500 * MS, 0);
	snprintf(pidf, sizeof(pidf), "%s/long.pid", f->dir);
	snprintf(cmd, sizeof(cmd), "echo $$ > %s; exec sleep 30", pidf);
	assert_int_equal(notify_fire(f->n, "on_failure", cmd, NULL, NULL, f->log), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(notify_fire(f->n, "on_failure", "echo never", NULL, NULL, f->log),
				 0);
	pid = wait_pid_file(pidf);
	assert_int_equal(notify_flush(f->n, 100 * MS), -ETIMEDOUT);

	capture_begin(&cap, f);
	t0 = mono_usec();
	notify_free(f->n);
	took = mono_usec() - t0;
	f->n = NULL;
	err = capture_end(&cap);
	assert_true(took >= 400 * MS);
	assert_true(took < 500 * MS + NOTIFY_ABORT_WAIT);
	assert_non_null(strstr(err, "callbacks still busy after 500ms"));
	assert_true(wait_gone(pid, 2 * USEC_PER_SEC));

	log = slurp(f->log);
	assert_cb_line(log, "on_failure", "killed: the daemon is shutting down");
	assert_int_equal(count_of(log, "dropped: the daemon is shutting down"), 3);
	assert_false(has_line(log, "never"));
	free(err);
	free(log);
}

static void test_free_aborts_webhook(void **state)
{
	struct fx *f = *state;
	static const int script[] = {HANG};
	struct capture cap;
	struct srv s;
	char url[128], *log, *err;
	usec_t t0, took, end;

	set_limits(f, 0, 0, 0, 300 * MS, 0);
	srv_start(&s, script, 1);
	srv_url(&s, "/slow", url, sizeof(url));
	assert_int_equal(notify_fire(f->n, "on_failure", NULL, url, JSON, f->log), 0);
	end = mono_usec() + 5 * USEC_PER_SEC;
	while (atomic_load(&s.count) < 1 && mono_usec() < end)
		usleep(10 * 1000);
	assert_int_equal(atomic_load(&s.count), 1);

	capture_begin(&cap, f);
	t0 = mono_usec();
	notify_free(f->n);
	took = mono_usec() - t0;
	f->n = NULL;
	err = capture_end(&cap);
	srv_stop(&s);
	assert_true(took < 300 * MS + NOTIFY_ABORT_WAIT);
	assert_int_equal(atomic_load(&s.count), 1); /* an abort is not retried */
	log = slurp(f->log);
	assert_cb_line(log, "on_failure",
		       "failed after 1 attempt: aborted: the daemon is shutting down");
	free(err);
	free(log);
}

static void test_free_null_and_idle(void **state)
{
	struct fx *f = *state;
	usec_t t0 = mono_usec();

	notify_free(NULL);
	assert_int_equal(notify_flush(f->n, 0), 0);
	notify_free(f->n);
	f->n = NULL;
	assert_true(mono_usec() - t0 < 200 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_command_env_and_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_timeout_kills_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_post, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_no_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_drains_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_aborts_webhook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_null_and_idle, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
