/* Callbacks: one worker thread takes callbacks from a bounded FIFO and runs each one's command
 * (posix_spawn of /bin/sh in its own process group, waited for by pid, killed by group on timeout)
 * and then its webhook (libcurl easy interface, retried on transport errors, 5xx and 429).
 *
 * Locking: `lock` guards the queue, `busy`, `stopping`, `exited` and `lim`. `aborting` is atomic
 * because the command wait loop and libcurl's progress callback read it without the lock. The
 * worker signals `idle` whenever it finishes a callback and when it exits; `wake` tells it that
 * there is work, that it should stop, or that it should abort.
 */
#include "orchestrator/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/log.h"

extern char **environ;

#define DEFAULT_CMD_TIMEOUT (60 * USEC_PER_SEC)
#define DEFAULT_KILL_GRACE (5 * USEC_PER_SEC)
#define DEFAULT_RETRY_PAUSE (1 * USEC_PER_SEC)
#define DEFAULT_DRAIN (18 * USEC_PER_SEC)
#define DEFAULT_QUEUE_MAX 1024
#define WAIT_SLICE (100 * 1000)  /* usec: longest sleep between checks of a running command */
#define LOG_MSG_MAX 1000         /* bytes of one outcome message in a log line */
#define REPLY_SNIPPET 160        /* bytes of a failed webhook's response body that are logged */

struct job {
	struct job *next;
	char *event, *cmd, *webhook, *body, *log_path;
};

struct notify {
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	struct job *head, *tail;
	size_t queued;
	unsigned long dropped;
	bool busy, stopping, exited;
	atomic_bool aborting;
	struct notify_limits lim;
	char *default_log;
	char **env;             /* the daemon's environment, captured by notify_new() */
	size_t n_env;
	pthread_t thread;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct timespec mono_deadline(usec_t d)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (d < 0)
		d = 0;
	ts.tv_sec += (time_t)(d / USEC_PER_SEC);
	ts.tv_nsec += (long)(d % USEC_PER_SEC) * 1000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static bool aborting(struct notify *n)
{
	return atomic_load(&n->aborting);
}

/* ---- jobs and their log ---- */

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->event);
	free(j->cmd);
	free(j->webhook);
	free(j->body);
	free(j->log_path);
	free(j);
}

static char *xstrdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Makes one line of a message: control characters become spaces, long text is cut. */
static void one_line(char *s)
{
	size_t len = strlen(s);

	if (len > LOG_MSG_MAX)
		strcpy(s + LOG_MSG_MAX - 3, "...");
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* Appends one outcome line to the callback's log; with warn, also to the daemon's log. */
static void job_log(const struct job *j, bool warn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void job_log(const struct job *j, bool warn, const char *fmt, ...)
{
	struct strbuf sb = {0};
	char when[ISO_BUFSZ], *msg, *line;
	va_list ap;
	int fd;

	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	msg = sb_steal(&sb);
	one_line(msg);
	if (warn)
		log_warnx("callback %s: %s", j->event, msg);
	else
		log_debug("callback %s: %s", j->event, msg);
	if (!j->log_path)
		goto out;
	format_iso8601_z(now_usec(), when, sizeof(when));
	line = xasprintf("[%s] sluice: callback %s: %s\n", when, j->event, msg);
	fd = open(j->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warn("callback %s: cannot open %s", j->event, j->log_path);
	} else {
		if (write(fd, line, strlen(line)) < 0)
			log_warn("callback %s: cannot write %s", j->event, j->log_path);
		close(fd);
	}
	free(line);
out:
	free(msg);
}

/* Creates the directory that holds the job's log. */
static void job_prepare(const struct job *j)
{
	char *dir, *slash;
	int rc;

	if (!j->log_path || !(slash = strrchr(j->log_path, '/')) || slash == j->log_path)
		return;
	dir = xstrndup(j->log_path, (size_t)(slash - j->log_path));
	if ((rc = mkdir_p(dir, 0700)) < 0)
		log_warnx("callback %s: cannot create %s: %s", j->event, dir, strerror(-rc));
	free(dir);
}

/* ---- commands ---- */

static bool env_is_ours(const char *kv)
{
	return !strncmp(kv, "SLUICE_EVENT=", 13) || !strncmp(kv, "SLUICE_CALLBACK_JSON=", 21);
}

/* Copies environ without the variables a callback sets itself. */
static char **env_snapshot(size_t *count)
{
	size_t total = 0, k = 0;
	char **env;

	while (environ && environ[total])
		total++;
	env = xcalloc(total + 1, sizeof(*env));
	for (size_t i = 0; i < total; i++)
		if (!env_is_ours(environ[i]))
			env[k++] = xstrdup(environ[i]);
	*count = k;
	return env;
}

/* The command's environment: the daemon's plus SLUICE_EVENT and SLUICE_CALLBACK_JSON. The array
 * borrows the daemon's strings; the caller frees the array and the two strings at [n_env..]. */
static char **cmd_env(const struct notify *n, const struct job *j)
{
	char **envp = xcalloc(n->n_env + 3, sizeof(*envp));

	memcpy(envp, n->env, n->n_env * sizeof(*envp));
	envp[n->n_env] = xasprintf("SLUICE_EVENT=%s", j->event);
	envp[n->n_env + 1] = xasprintf("SLUICE_CALLBACK_JSON=%s", j->body);
	return envp;
}

/* Spawn attributes: a process group of its own, no blocked signals, every handler at its default,
 * stdin from /dev/null, stdout and stderr appended to the log, no other descriptor inherited. */
static int spawn_setup(posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa, const char *log)
{
	sigset_t none, defaults;
	int rc;

	sigemptyset(&none);
	sigfillset(&defaults);
	sigdelset(&defaults, SIGKILL);
	sigdelset(&defaults, SIGSTOP);
	if ((rc = posix_spawnattr_init(attr)) != 0)
		return -rc;
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(attr, 0);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &defaults);
	if ((rc = posix_spawn_file_actions_init(fa)) != 0) {
		posix_spawnattr_destroy(attr);
		return -rc;
	}
	posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(fa, 1, log ? log : "/dev/null",
					 O_WRONLY | O_APPEND | O_CREAT, 0600);
	posix_spawn_file_actions_adddup2(fa, 1, 2);
	posix_spawn_file_actions_addclosefrom_np(fa, 3);
	return 0;
}

static int cmd_spawn(struct notify *n, const struct job *j, pid_t *pid)
{
	char *argv[] = {"sh", "-c", j->cmd, NULL};
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	char **envp;
	int rc;

	if ((rc = spawn_setup(&attr, &fa, j->log_path)) < 0)
		return rc;
	envp = cmd_env(n, j);
	rc = -posix_spawn(pid, "/bin/sh", &fa, &attr, argv, envp);
	free(envp[n->n_env]);
	free(envp[n->n_env + 1]);
	free(envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

/* A running command. Its leader is reaped by pid only. Once the group was signalled the command
 * is over when the whole group is gone (or SIGKILL was sent and the leader reaped). */
struct proc {
	pid_t pid;
	int pidfd;          /* -1 when the kernel has no pidfd_open: then we poll */
	bool reaped;
	int wstatus;        /* -1 when the status was lost */
	int sent;           /* last signal sent to the group: 0, SIGTERM or SIGKILL */
	bool timed_out, aborted;
	usec_t term_at, kill_at; /* monotonic */
};

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	return -1;
#endif
}

static bool proc_reap(struct proc *p)
{
	int st;
	pid_t r;

	if (p->reaped)
		return true;
	r = waitpid(p->pid, &st, WNOHANG);
	if (r == p->pid || (r < 0 && errno != EINTR)) {
		p->reaped = true;
		p->wstatus = r == p->pid ? st : -1;
	}
	return p->reaped;
}

static bool proc_done(struct proc *p)
{
	if (!proc_reap(p))
		return false;
	return p->sent != SIGTERM || (kill(-p->pid, 0) < 0 && errno == ESRCH);
}

static void proc_signal(struct proc *p, int sig, usec_t grace)
{
	kill(-p->pid, sig);
	p->sent = sig;
	p->kill_at = mono_usec() + grace;
}

/* Sleeps until the leader may have exited, or at most until the next deadline. */
static void proc_sleep(struct proc *p, usec_t until)
{
	usec_t d = until - mono_usec();
	struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};

	if (d > WAIT_SLICE)
		d = WAIT_SLICE;
	if (d < 1000)
		d = 1000;
	if (p->reaped || p->pidfd < 0) {
		if (d > 10000)
			d = 10000;
		usleep((useconds_t)d);
		return;
	}
	poll(&pfd, 1, (int)(d / 1000));
}

static void proc_wait(struct notify *n, struct proc *p, const struct notify_limits *lim)
{
	while (!proc_done(p)) {
		usec_t now = mono_usec();

		if (aborting(n) && p->sent != SIGKILL) {
			p->aborted = true;
			proc_signal(p, SIGKILL, 0);
		} else if (p->sent == 0 && now >= p->term_at) {
			p->timed_out = true;
			proc_signal(p, SIGTERM, lim->kill_grace);
		} else if (p->sent == SIGTERM && now >= p->kill_at) {
			proc_signal(p, SIGKILL, 0);
		}
		if (p->sent == SIGTERM)
			proc_sleep(p, p->kill_at);
		else
			proc_sleep(p, p->sent ? now + WAIT_SLICE : p->term_at);
	}
}

/* sigabbrev_np() rather than strsignal(), which is not thread-safe. */
static const char *sig_name(int sig)
{
	const char *name = sigabbrev_np(sig);

	return name ? name : "?";
}

static void cmd_report(const struct job *j, const struct proc *p, const struct notify_limits *lim)
{
	int pid = (int)p->pid;
	char dur[32];

	format_duration(lim->cmd_timeout, dur, sizeof(dur));
	if (p->aborted)
		job_log(j, true, "command (pid %d) killed: the daemon is shutting down", pid);
	else if (p->timed_out)
		job_log(j, true, "command (pid %d) timed out after %s; its process group was killed "
			"with %s", pid, dur, p->sent == SIGKILL ? "SIGKILL" : "SIGTERM");
	else if (p->wstatus < 0)
		job_log(j, true, "command (pid %d) ended with an unknown status", pid);
	else if (WIFEXITED(p->wstatus))
		job_log(j, WEXITSTATUS(p->wstatus) != 0, "command (pid %d) exited with status %d",
			pid, WEXITSTATUS(p->wstatus));
	else
		job_log(j, true, "command (pid %d) killed by signal %d (SIG%s)", pid,
			WTERMSIG(p->wstatus), sig_name(WTERMSIG(p->wstatus)));
}

static void cmd_run(struct notify *n, const struct job *j, const struct notify_limits *lim)
{
	struct proc p = {.pidfd = -1};
	int rc;

	/* Logged before the spawn so that it precedes the command's own output. */
	job_log(j, false, "running command: %.200s", j->cmd);
	if ((rc = cmd_spawn(n, j, &p.pid)) < 0) {
		job_log(j, true, "cannot start command: %s", strerror(-rc));
		return;
	}
	p.pidfd = pidfd_open_compat(p.pid);
	p.term_at = mono_usec() + lim->cmd_timeout;
	proc_wait(n, &p, lim);
	if (p.pidfd >= 0)
		close(p.pidfd);
	cmd_report(j, &p, lim);
}

/* ---- webhooks ---- */

enum hook_result { HOOK_OK, HOOK_RETRY, HOOK_FAIL };

struct hook_reply {
	char text[REPLY_SNIPPET + 1];
	size_t len;
};

static bool hook_scheme_ok(const char *url)
{
	return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

/* The URL as logged: scheme, host and port only, since the path often holds a token. */
static void hook_where(const char *url, char *buf, size_t len)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;

	snprintf(buf, len, "(invalid URL)");
	if (!u || curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		goto out;
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	snprintf(buf, len, "%s://%s%s%s%s", scheme, host ? host : "", port ? ":" : "",
		 port ? port : "", (path && strcmp(path, "/")) || query ? "/..." : "/");
out:
	curl_free(query);
	curl_free(path);
	curl_free(port);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
}

static size_t hook_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct hook_reply *r = arg;
	size_t n = size * nmemb, room = REPLY_SNIPPET - r->len;

	memcpy(r->text + r->len, data, n < room ? n : room);
	r->len += n < room ? n : room;
	r->text[r->len] = '\0';
	return n;
}

static int hook_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			 curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return aborting(arg) ? 1 : 0;
}

/* Transport errors worth another attempt: not the ones a retry cannot change. */
static bool hook_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_OUT_OF_MEMORY:
		return false;
	default:
		return true;
	}
}

/* Only http and https, also for redirects (which are not followed anyway). */
static CURLcode hook_protocols(CURL *c)
{
#if LIBCURL_VERSION_NUM >= 0x075500
	CURLcode rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	return rc;
#else
	long protos = CURLPROTO_HTTP | CURLPROTO_HTTPS;
	CURLcode rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS, protos);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, protos);
	return rc;
#endif
}

static CURLcode hook_setup(CURL *c, struct notify *n, const struct job *j,
			   struct curl_slist *headers, struct hook_reply *reply, char *errbuf)
{
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_URL, j->webhook);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(j->body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice/" SLUICE_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(NOTIFY_CONNECT_TIMEOUT / 1000));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(NOTIFY_HTTP_TIMEOUT / 1000));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hook_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, hook_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, n);
	return hook_protocols(c);
}

/* One POST. msg gets the outcome ("HTTP 200", or the transport error). */
static enum hook_result hook_attempt(struct notify *n, const struct job *j, char *msg, size_t len)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct hook_reply reply = {.len = 0};
	struct curl_slist *headers = NULL;
	enum hook_result res = HOOK_FAIL;
	CURL *c = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	long status = 0;

	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Expect:");
	if (c && headers)
		rc = hook_setup(c, n, j, headers, &reply, errbuf);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(c);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(msg, len, "aborted: the daemon is shutting down");
		goto out;
	}
	if (rc != CURLE_OK) {
		snprintf(msg, len, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
		res = hook_retryable(rc) ? HOOK_RETRY : HOOK_FAIL;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		res = HOOK_OK;
	else if (status >= 500 || status == 429)
		res = HOOK_RETRY;
	snprintf(msg, len, "HTTP %ld%s%s", status, res == HOOK_OK || !reply.len ? "" : ": ",
		 res == HOOK_OK ? "" : reply.text);
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return res;
}

/* Sleeps for d, or less when notify_free() gives up waiting. */
static void worker_pause(struct notify *n, usec_t d)
{
	struct timespec ts = mono_deadline(d);

	pthread_mutex_lock(&n->lock);
	while (!aborting(n) && pthread_cond_timedwait(&n->wake, &n->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&n->lock);
}

static void hook_run(struct notify *n, const struct job *j, const struct notify_limits *lim)
{
	char where[256], msg[512], dur[32];
	usec_t pause = lim->retry_pause;
	enum hook_result res;

	hook_where(j->webhook, where, sizeof(where));
	if (!hook_scheme_ok(j->webhook)) {
		job_log(j, true, "webhook %s refused: only http:// and https:// URLs are allowed",
			where);
		return;
	}
	for (int attempt = 1;; attempt++) {
		res = hook_attempt(n, j, msg, sizeof(msg));
		if (res == HOOK_OK) {
			job_log(j, false, "webhook POST %s: %s", where, msg);
			return;
		}
		if (res == HOOK_FAIL || attempt == NOTIFY_WEBHOOK_ATTEMPTS || aborting(n)) {
			job_log(j, true, "webhook POST %s failed after %d attempt%s: %s", where,
				attempt, attempt == 1 ? "" : "s", msg);
			return;
		}
		format_duration(pause, dur, sizeof(dur));
		job_log(j, false, "webhook POST %s: %s; retrying in %s (attempt %d of %d)", where,
			msg, dur, attempt, NOTIFY_WEBHOOK_ATTEMPTS);
		worker_pause(n, pause);
		pause *= 2;
	}
}

/* ---- the worker ---- */

static void job_run(struct notify *n, const struct job *j, const struct notify_limits *lim)
{
	job_prepare(j);
	if (aborting(n)) {
		job_log(j, true, "dropped: the daemon is shutting down");
		return;
	}
	if (j->cmd)
		cmd_run(n, j, lim);
	if (j->webhook)
		hook_run(n, j, lim);
}

static struct job *queue_pop(struct notify *n)
{
	struct job *j = n->head;

	if (j) {
		n->head = j->next;
		if (!n->head)
			n->tail = NULL;
		n->queued--;
	}
	return j;
}

static void *worker_main(void *arg)
{
	struct notify *n = arg;
	struct notify_limits lim;
	struct job *j;

	pthread_mutex_lock(&n->lock);
	for (;;) {
		while (!n->head && !n->stopping)
			pthread_cond_wait(&n->wake, &n->lock);
		if (!(j = queue_pop(n)))
			break;
		lim = n->lim;
		n->busy = true;
		pthread_mutex_unlock(&n->lock);
		job_run(n, j, &lim);
		job_free(j);
		pthread_mutex_lock(&n->lock);
		n->busy = false;
		pthread_cond_broadcast(&n->idle);
	}
	n->exited = true;
	pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* ---- public API ---- */

static void notify_destroy(struct notify *n)
{
	struct job *j;

	while ((j = queue_pop(n)))
		job_free(j);
	for (size_t i = 0; i < n->n_env; i++)
		free(n->env[i]);
	free(n->env);
	free(n->default_log);
	pthread_cond_destroy(&n->idle);
	pthread_cond_destroy(&n->wake);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

static void notify_init_sync(struct notify *n)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->wake, &ca);
	pthread_cond_init(&n->idle, &ca);
	pthread_condattr_destroy(&ca);
}

struct notify *notify_new(const char *home, char **err)
{
	struct notify *n;
	sigset_t all, old;
	int rc;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		*err = xasprintf("cannot initialise libcurl: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	n = xcalloc(1, sizeof(*n));
	notify_init_sync(n);
	atomic_init(&n->aborting, false);
	n->lim = (struct notify_limits){
		.cmd_timeout = DEFAULT_CMD_TIMEOUT,
		.kill_grace = DEFAULT_KILL_GRACE,
		.retry_pause = DEFAULT_RETRY_PAUSE,
		.drain = DEFAULT_DRAIN,
		.queue_max = DEFAULT_QUEUE_MAX,
	};
	n->env = env_snapshot(&n->n_env);
	if (home)
		n->default_log = xasprintf("%s/logs/callbacks.log", home);
	/* The worker blocks every signal: they belong to the daemon's main loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&n->thread, NULL, worker_main, n);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		*err = xasprintf("cannot start the callback thread: %s", strerror(rc));
		notify_destroy(n);
		return NULL;
	}
	return n;
}

void notify_set_limits(struct notify *n, const struct notify_limits *lim)
{
	pthread_mutex_lock(&n->lock);
	if (lim->cmd_timeout > 0)
		n->lim.cmd_timeout = lim->cmd_timeout;
	if (lim->kill_grace > 0)
		n->lim.kill_grace = lim->kill_grace;
	if (lim->retry_pause > 0)
		n->lim.retry_pause = lim->retry_pause;
	if (lim->drain > 0)
		n->lim.drain = lim->drain;
	if (lim->queue_max > 0)
		n->lim.queue_max = lim->queue_max;
	pthread_mutex_unlock(&n->lock);
}

int notify_fire(struct notify *n, const char *event, const char *cmd, const char *webhook,
		const char *json_body, const char *log_path)
{
	struct job *j;
	size_t max = 0;
	unsigned long dropped = 0;
	bool stopping = false;

	if (!event)
		return -EINVAL;
	if (!cmd && !webhook)
		return 0;
	j = xcalloc(1, sizeof(*j));
	j->event = xstrdup(event);
	j->cmd = xstrdup_or_null(cmd);
	j->webhook = xstrdup_or_null(webhook);
	j->body = xstrdup(json_body ? json_body : "{}");
	j->log_path = xstrdup_or_null(log_path ? log_path : n->default_log);
	pthread_mutex_lock(&n->lock);
	if (n->queued >= n->lim.queue_max || n->stopping) {
		max = n->lim.queue_max;
		dropped = ++n->dropped;
		stopping = n->stopping;
	} else {
		if (n->tail)
			n->tail->next = j;
		else
			n->head = j;
		n->tail = j;
		n->queued++;
		pthread_cond_signal(&n->wake);
		j = NULL;
	}
	pthread_mutex_unlock(&n->lock);
	if (!j)
		return 0;
	if (stopping)
		log_warnx("callback %s dropped: callbacks are shutting down", event);
	else
		log_warnx("callback %s dropped: %zu callbacks are already waiting (%lu dropped so "
			  "far)", event, max, dropped);
	job_free(j);
	return -ENOBUFS;
}

int notify_flush(struct notify *n, usec_t timeout)
{
	struct timespec ts = mono_deadline(timeout);
	int rc = 0;

	pthread_mutex_lock(&n->lock);
	while ((n->head || n->busy) && !n->exited) {
		if (pthread_cond_timedwait(&n->idle, &n->lock, &ts) == ETIMEDOUT) {
			if ((n->head || n->busy) && !n->exited)
				rc = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
	return rc;
}

/* With n->lock held: waits up to d for the worker to exit. */
static bool wait_exited(struct notify *n, usec_t d)
{
	struct timespec ts = mono_deadline(d);

	while (!n->exited)
		if (pthread_cond_timedwait(&n->idle, &n->lock, &ts) == ETIMEDOUT)
			break;
	return n->exited;
}

void notify_free(struct notify *n)
{
	char dur[32];
	bool exited;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stopping = true;
	pthread_cond_broadcast(&n->wake);
	exited = wait_exited(n, n->lim.drain);
	if (!exited) {
		format_duration(n->lim.drain, dur, sizeof(dur));
		log_warnx("callbacks still busy after %s: stopping the running one and dropping "
			  "%zu queued", dur, n->queued);
		atomic_store(&n->aborting, true);
		pthread_cond_broadcast(&n->wake);
		exited = wait_exited(n, NOTIFY_ABORT_WAIT);
	}
	pthread_mutex_unlock(&n->lock);
	if (!exited) {
		/* Freeing n under a running worker would be worse than leaking it at shutdown. */
		log_warnx("the callback worker did not stop; leaving it behind");
		pthread_detach(n->thread);
		return;
	}
	pthread_join(n->thread, NULL);
	notify_destroy(n);
}
