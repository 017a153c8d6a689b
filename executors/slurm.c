/* The `slurm` backend: each try is one Slurm batch job, submitted with `sbatch --parsable` and
 * watched by polling, as Nextflow's and Snakemake's Slurm executors do.
 *
 * A try has a folder of its own under [slurm] work_dir (storage the daemon's machine and the
 * compute nodes share, at the same path): the generated batch script, the job's output file
 * (stdout and stderr, --output), $SLUICE_OUTPUT, and `.exitcode`, which the script's EXIT trap
 * writes to a temporary file and renames, so it is either absent or whole. The job name carries
 * the try (sluice.DAG.RUN.TASK.MAP.TRY.KEY; KEY is random, so names are unique).
 *
 * One poll per [slurm] poll_interval, whatever the number of live jobs: one `squeue` for all of
 * them (by job name, so a job whose sbatch answer was lost is found too); for the jobs squeue
 * no longer lists (they left after MinJobAge) one `sacct` when accounting is on, or one
 * `scontrol show job` when it is off. A job is declared lost only when neither lists it and it
 * wrote no exit status, three polls in a row. Every command is a child of the daemon watched
 * through a pidfd with a deadline ([slurm] command_timeout): a slow or dead controller never
 * blocks the loop; it makes tries wait, with a note in their logs, until execution_timeout.
 *
 * Invariants:
 *  - A try is in ss->tries from start()/reattach() until just before on_end.
 *  - The try's pid file ("slurm KEY NAME JOBID OFFSET STARTED DEADLINE") is written before
 *    sbatch runs and again when the job id or the log offset changes: a restarted daemon
 *    re-attaches from it (a job id of "-" is looked up by its unique name).
 *  - The local status file is written before on_end and before the try's folder is removed.
 *  - A try is submitted at most once: a submission whose outcome is unknown (sbatch killed by
 *    its deadline) is resolved by name through squeue before any new sbatch.
 */
#include "executors/executor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/trylog.h"

extern char **environ;

#define OUT_KEEP (64 << 20)    /* bytes of a command's stdout kept (beyond: truncated, no verdicts) */
#define NAMES_MAX (64 << 10)   /* a longer --name list: squeue --me instead (one argument < 128 KiB) */
#define ERR_KEEP 4096          /* bytes of its stderr kept (for messages) */
#define SUBMIT_INFLIGHT 4      /* sbatch calls at once */
#define LOST_AFTER 3           /* polls neither squeue nor sacct/scontrol list a job */
#define TAIL_CHUNK (1 << 20)   /* bytes of a job's output copied per poll */
#define CANCEL_WAIT (60 * USEC_PER_SEC) /* after scancel, how long the job may take to end */

struct sl_state;
struct sl_proc;
typedef void (*proc_exit_cb)(struct sl_proc *p, int wstatus);

/* One child (sbatch, squeue, ...): its output, a pidfd and a deadline. */
struct sl_proc {
	struct sl_state *ss;
	pid_t pid;
	int pidfd, out_fd, err_fd;
	struct strbuf out, err;
	struct ev_timer *deadline;
	bool killed;                /* by the deadline */
	bool truncated;             /* stdout beyond OUT_KEEP was dropped */
	proc_exit_cb on_exit;
	void *arg;
	uint64_t token;             /* sbatch: the try's token */
};

enum phase {
	P_WAIT,       /* to submit (rate limit, or the controller did not answer) */
	P_SUBMITTING, /* sbatch under way */
	P_UNSURE,     /* submitted or not: resolved by name at the next poll */
	P_JOB,        /* a job (its id may still be unknown after a re-attach) */
};

struct sl_try {
	struct sl_state *ss;
	uint64_t token;
	char key[17];
	char *name, *dir, *jobid;   /* jobid NULL: unknown */
	char *status_path, *pid_path, *log_path, *out_path, *mask_path;
	char **submit_argv;         /* sbatch's argv (NULL after a re-attach: it cannot submit) */
	enum phase phase;
	usec_t started, deadline;   /* wall clock; deadline 0 = none */
	usec_t timeout;             /* execution_timeout (0: none) */
	usec_t cancel_at;           /* mono: when scancel was sent (0: not sent) */
	bool cancelled, timed_out, noted_down, noted_run, term_seen;
	bool asked;                 /* squeue did not list it: the aux call is asked */
	char state[24];             /* the last Slurm state seen */
	int misses;                 /* polls in a row no source listed the job */
	usec_t first_miss;          /* mono */
	/* the log */
	int log_fd;
	long long offset;           /* bytes of the job's output copied */
	long long written, max_log;
	bool capped;
	struct masker mask;          /* the try's secrets, written as *** in its log */
	struct sl_try *prev, *next;
};

struct sl_state {
	struct executor *ex;
	char *work_dir, *bin_dir;
	usec_t poll_interval, command_timeout;
	int max_submit;
	int accounting;             /* -1 auto, 0 off, 1 on */
	struct sl_try *tries, *tail;
	int running;
	struct ev_timer *poll_timer, *submit_timer, *defer_timer;
	struct sl_proc *squeue, *aux, *scancel;
	struct sl_proc *sbatch[SUBMIT_INFLIGHT];
	int submitting;
	double tokens;
	usec_t refilled;            /* mono */
	usec_t submit_not_before;   /* mono: after a controller failure */
	bool down;                  /* the last squeue could not reach the controller */
	char down_why[256];
	struct strbuf orphans;      /* job ids to scancel once the controller answers (space-separated) */
};

static void poll_arm(struct sl_state *ss);
static void submit_kick(struct sl_state *ss);

/* ---- helpers ---- */

static int sys_pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void sh_quote(struct strbuf *sb, const char *s)
{
	sb_putc(sb, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sb_puts(sb, "'\\''");
		else
			sb_putc(sb, *s);
	}
	sb_putc(sb, '\'');
}

static void last_line(const char *text, char *buf, size_t n)
{
	const char *end = text + strlen(text), *start;

	while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	start = end;
	while (start > text && start[-1] != '\n')
		start--;
	snprintf(buf, n, "%.*s", (int)(end - start), start);
}

static char *cmd_path(const struct sl_state *ss, const char *name)
{
	return ss->bin_dir ? xasprintf("%s/%s", ss->bin_dir, name) : xstrdup(name);
}

static void free_argv(char **av)
{
	for (size_t i = 0; av && av[i]; i++)
		free(av[i]);
	free(av);
}

/* Whether a Slurm client's error says the controller could not be reached (or was too slow):
 * then nothing is wrong with the job, and the try waits. */
static bool controller_trouble(const char *err)
{
	static const char *const marks[] = {
		"Unable to contact slurm controller", "Socket timed out", "Zero Bytes were transmitted",
		"Connection refused", "Communication connection failure", "Transport endpoint",
		"Resource temporarily unavailable", "Unable to establish", "timed out", "Slurm backup controller",
		"Connection timed out", "took too long",
	};
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(err, marks[i]))
			return true;
	return false;
}

/* ---- children ---- */

static void proc_free(struct sl_proc *p)
{
	struct evloop *loop = p->ss->ex->loop;
	int *fds[] = {&p->pidfd, &p->out_fd, &p->err_fd};

	if (p->deadline)
		evloop_timer_cancel(loop, p->deadline);
	for (size_t i = 0; i < 3; i++) {
		if (*fds[i] < 0)
			continue;
		evloop_del_fd(loop, *fds[i]);
		close(*fds[i]);
	}
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	sb_free(&p->out);
	sb_free(&p->err);
	free(p);
}

static bool proc_drain(struct sl_proc *p, int fd)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		if (n == 0)
			return false;
		struct strbuf *sb = fd == p->out_fd ? &p->out : &p->err;
		size_t cap = fd == p->out_fd ? OUT_KEEP : ERR_KEEP;
		if (sb->len < cap)
			sb_add(sb, buf, (size_t)n);
		else if (fd == p->out_fd)
			p->truncated = true;
	}
}

static void on_proc_fd(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct sl_proc *p = arg;

	if (!proc_drain(p, fd)) {
		evloop_del_fd(loop, fd);
		close(fd);
		if (fd == p->out_fd)
			p->out_fd = -1;
		else
			p->err_fd = -1;
	}
}

static void on_proc_exit(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct sl_proc *p = arg;
	int ws = 0;

	if (waitpid(p->pid, &ws, WNOHANG) == 0)
		return;
	p->pid = 0;
	if (p->out_fd >= 0)
		proc_drain(p, p->out_fd);
	if (p->err_fd >= 0)
		proc_drain(p, p->err_fd);
	if (p->killed)
		sb_puts(&p->err, "\nthe command took too long (slurm.command_timeout) and was killed\n");
	p->on_exit(p, ws);
	proc_free(p);
}

static void on_proc_deadline(struct evloop *loop, void *arg)
{
	struct sl_proc *p = arg;

	p->deadline = NULL;
	p->killed = true;
	kill(p->pid, SIGKILL);
}

static int proc_pipe(posix_spawn_file_actions_t *fa, int child_fd, int *ours, int *theirs)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	*ours = p[0];
	*theirs = p[1];
	fcntl(*ours, F_SETFL, O_NONBLOCK);
	posix_spawn_file_actions_adddup2(fa, *theirs, child_fd);
	return 0;
}

/* Runs argv (its environment: the daemon's, so SLURM_CONF and the like reach the Slurm
 * clients); stdout and stderr are collected. Returns the child or NULL with *err set. */
static struct sl_proc *proc_spawn(struct sl_state *ss, char *const *argv, proc_exit_cb on_exit, void *arg,
				  char **err)
{
	struct sl_proc *p = xcalloc(1, sizeof(*p));
	struct evloop *loop = ss->ex->loop;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int theirs[2] = {-1, -1}, rc;

	*p = (struct sl_proc){.ss = ss, .pidfd = -1, .out_fd = -1, .err_fd = -1, .on_exit = on_exit, .arg = arg};
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = proc_pipe(&fa, 1, &p->out_fd, &theirs[0]);
	if (rc == 0)
		rc = proc_pipe(&fa, 2, &p->err_fd, &theirs[1]);
	if (rc == 0 && (rc = posix_spawnp(&p->pid, argv[0], &fa, &attr, argv, environ)) != 0)
		rc = -rc;
	for (int i = 0; i < 2; i++)
		if (theirs[i] >= 0)
			close(theirs[i]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc == 0) {
		p->pidfd = sys_pidfd_open(p->pid);
		if (p->pidfd < 0)
			rc = -errno;
	}
	if (rc == 0 && (evloop_add_fd(loop, p->pidfd, EPOLLIN, on_proc_exit, p) < 0 ||
			evloop_add_fd(loop, p->out_fd, EPOLLIN, on_proc_fd, p) < 0 ||
			evloop_add_fd(loop, p->err_fd, EPOLLIN, on_proc_fd, p) < 0))
		rc = -EIO;
	if (rc == 0) {
		p->deadline = evloop_timer_in(loop, ss->command_timeout, on_proc_deadline, p);
		return p;
	}
	*err = xasprintf("cannot run %s: %s", argv[0], strerror(-rc));
	if (p->pid <= 0)
		p->pid = 0;
	proc_free(p);
	return NULL;
}

static bool proc_ok(const struct sl_proc *p, int ws)
{
	return !p->killed && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
}

/* Why a call failed, one line. */
static void proc_why(const struct sl_proc *p, int ws, char *buf, size_t n)
{
	last_line(p->err.len ? p->err.buf : "", buf, n);
	if (!*buf)
		snprintf(buf, n, "exited with %d", WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
}

/* ---- the try list ---- */

static struct sl_try *try_find(struct sl_state *ss, uint64_t token)
{
	for (struct sl_try *t = ss->tries; t; t = t->next)
		if (t->token == token)
			return t;
	return NULL;
}

static void try_free(struct sl_try *t)
{
	struct sl_state *ss = t->ss;

	if (t->prev)
		t->prev->next = t->next;
	else
		ss->tries = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		ss->tail = t->prev;
	ss->running--;
	if (t->log_fd >= 0)
		close(t->log_fd);
	masker_free(&t->mask);
	free_argv(t->submit_argv);
	free(t->name);
	free(t->dir);
	free(t->jobid);
	free(t->status_path);
	free(t->pid_path);
	free(t->log_path);
	free(t->out_path);
	free(t->mask_path);
	free(t);
}

static struct sl_try *try_new(struct sl_state *ss, uint64_t token, const struct exec_spec *spec)
{
	struct sl_try *t = xcalloc(1, sizeof(*t));

	t->ss = ss;
	t->token = token;
	t->status_path = xstrdup(spec->status_path);
	t->pid_path = xstrdup(spec->pid_path);
	t->log_path = xstrdup(spec->log_path);
	t->out_path = spec->output_path ? xstrdup(spec->output_path) : NULL;
	t->mask_path = spec->mask_path ? xstrdup(spec->mask_path) : NULL;
	t->max_log = spec->max_log_size;
	t->started = USEC_NONE;
	t->log_fd = open(t->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (t->log_fd >= 0) {
		struct stat sb;
		if (fstat(t->log_fd, &sb) == 0)
			t->written = sb.st_size;
	}
	masker_load(&t->mask, t->mask_path);
	t->prev = ss->tail; /* appended: the oldest is submitted first */
	if (ss->tail)
		ss->tail->next = t;
	else
		ss->tries = t;
	ss->tail = t;
	ss->running++;
	return t;
}

static int try_save(struct sl_try *t)
{
	char *text = xasprintf("slurm %s %s %s %lld %lld %lld\n", t->key, t->name, t->jobid ? t->jobid : "-",
			       t->offset - (long long)masker_pending(&t->mask), (long long)t->started, (long long)t->deadline);
	int rc = write_file_atomic(t->pid_path, text, strlen(text), false);

	free(text);
	return rc;
}

/* ---- the log: the job's output file, masked and capped ---- */

static void log_write(struct sl_try *t, const char *p, size_t n)
{
	trylog_append(t->log_fd, t->log_path, "slurm", p, n, t->max_log, &t->written, &t->capped);
}

/* A line of sluice's own in the try's log. */
static void note(struct sl_try *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct sl_try *t, const char *fmt, ...)
{
	struct strbuf sb = {0};
	char ts[ISO_BUFSZ];
	va_list ap;

	format_iso8601_z(now_usec(), ts, sizeof(ts));
	sb_printf(&sb, "[%s] sluice: slurm: ", ts);
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	sb_putc(&sb, '\n');
	log_write(t, sb.buf, sb.len);
	sb_free(&sb);
}

static void log_feed(struct sl_try *t, const char *p, size_t n, bool final)
{
	t->offset += (long long)n;
	if (!t->mask.n) {
		log_write(t, p, n);
		return;
	}
	struct strbuf out = {0};
	masker_feed(&t->mask, p, n, final, &out);
	log_write(t, out.buf, out.len);
	sb_free(&out);
}

/* Copies what the job's output file gained since the last time (at most TAIL_CHUNK unless final). */
static void try_tail(struct sl_try *t, bool final)
{
	char *path = xasprintf("%s/output", t->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	char buf[65536];
	long long start = t->offset, moved = 0;

	free(path);
	if (fd < 0) {
		if (final)
			log_feed(t, "", 0, true);
		return;
	}
	while (!t->capped) {
		ssize_t n = pread(fd, buf, sizeof(buf), t->offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		log_feed(t, buf, (size_t)n, false);
		moved += n;
		if (!final && moved >= TAIL_CHUNK)
			break;
	}
	close(fd);
	if (final)
		log_feed(t, "", 0, true);
	if (t->offset != start && !final)
		try_save(t);
}

/* ---- the end of a try ---- */

static void remove_dir(struct sl_try *t)
{
	static const char *const files[] = {"job.sh", "output", "out", ".exitcode", ".exitcode.tmp", NULL};

	for (size_t i = 0; files[i]; i++) {
		char *p = xasprintf("%s/%s", t->dir, files[i]);
		unlink(p);
		free(p);
	}
	if (rmdir(t->dir) < 0 && errno != ENOENT)
		log_debug("slurm: cannot remove %s: %s", t->dir, strerror(errno));
}

/* Copies $SLUICE_OUTPUT back as the local supervisor leaves it. */
static void copy_output(struct sl_try *t)
{
	char *path = xasprintf("%s/out", t->dir), *text = NULL;
	size_t len = 0;

	if (t->out_path && read_file(path, 64 << 20, &text, &len) == 0 &&
	    write_file_atomic(t->out_path, text, len, false) < 0)
		log_warn("slurm: cannot write %s", t->out_path);
	free(text);
	free(path);
}

/* Reports the end: log and outputs copied, status file written, folder removed, then on_end. */
static void try_finish(struct sl_try *t, struct exec_result *res)
{
	struct sl_state *ss = t->ss;
	uint64_t token = t->token;
	struct strbuf st = {0};

	if (res->start == USEC_NONE || res->start <= 0)
		res->start = t->started;
	if (res->end == USEC_NONE || res->end <= 0)
		res->end = now_usec();
	if (t->dir) {
		try_tail(t, true);
		copy_output(t);
	}
	static const char *const kinds[] = {"exited", "signaled", "timeout", "lost"};
	sb_printf(&st, "kind=%s\ncode=%d\nstart_us=%lld\nend_us=%lld\n", kinds[res->kind], res->code,
		  (long long)res->start, (long long)res->end);
	if (res->message) {
		sb_puts(&st, "message=");
		for (const char *c = res->message; *c; c++)
			sb_putc(&st, *c == '\n' ? ' ' : *c);
		sb_putc(&st, '\n');
	}
	if (write_file_atomic(t->status_path, st.buf, st.len, true) < 0)
		log_warn("slurm: cannot write %s", t->status_path);
	sb_free(&st);
	if (t->mask_path)
		unlink(t->mask_path);
	if (t->dir)
		remove_dir(t);
	try_free(t);
	ss->ex->on_end(ss->ex->cb_arg, token, res);
}

static void try_end(struct sl_try *t, enum exec_end_kind kind, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void try_end(struct sl_try *t, enum exec_end_kind kind, int code, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = NULL;
		va_end(ap);
	}
	if (msg)
		note(t, "%s", msg);
	struct exec_result res = {.kind = kind, .code = code, .start = USEC_NONE, .end = USEC_NONE, .message = msg};
	try_finish(t, &res);
	free(msg);
}

/* ---- job states ---- */

static bool st_is(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

static const char *const ST_QUEUED[] = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
					"RESV_DEL_HOLD", "SUSPENDED", "RESIZING", "POWER_UP_NODE", NULL};
static const char *const ST_RUNNING[] = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "STOPPED", NULL};
static const char *const ST_LOSS[] = {"NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED", NULL};

/* The exit code the job's script left, or -1. */
static int read_exitcode(const struct sl_try *t)
{
	char *path = xasprintf("%s/.exitcode", t->dir), *text = NULL;
	int code = -1;

	if (read_file(path, 64, &text, NULL) == 0) {
		char *end;
		long v = strtol(text, &end, 10);
		if (end != text && v >= 0 && v <= 255)
			code = (int)v;
	}
	free(text);
	free(path);
	return code;
}

/* One more poll that no source listed t's job: whether it is lost now (LOST_AFTER polls in a
 * row, and at least ten poll intervals: a slow accounting database gets its time). */
static bool try_missed(struct sl_try *t)
{
	usec_t now = mono_usec();

	if (!t->misses++)
		t->first_miss = now;
	return t->misses >= LOST_AFTER && now - t->first_miss >= 10 * t->ss->poll_interval;
}

/* What the poll learnt about t's job: its state (NULL: no source lists it) and, where the
 * source gives it, the exit code ("a:b", NULL when unknown). May end t. */
static void try_update(struct sl_try *t, const char *state, const char *reason, const char *node,
		       const char *exitcode)
{
	int code = read_exitcode(t);

	if (state) {
		t->misses = 0;
		t->first_miss = 0;
		if (strcmp(state, t->state)) {
			snprintf(t->state, sizeof(t->state), "%s", state);
			if (st_is(state, ST_QUEUED))
				note(t, "job %s is %s%s%s%s", t->jobid ? t->jobid : "?", state,
				     reason && *reason && strcmp(reason, "None") ? " (" : "",
				     reason && *reason && strcmp(reason, "None") ? reason : "",
				     reason && *reason && strcmp(reason, "None") ? ")" : "");
			else if (!strcmp(state, "RUNNING") && !t->noted_run) {
				t->noted_run = true;
				note(t, "job %s is RUNNING%s%s", t->jobid ? t->jobid : "?", node && *node ? " on " : "",
				     node && *node ? node : "");
			}
		}
		if (st_is(state, ST_LOSS)) {
			try_end(t, EXEC_END_LOST, -1, "job %s ended %s: the try is lost (retried if the task has retries left)",
				t->jobid ? t->jobid : "?", state);
			return;
		}
	}
	bool terminal = state && !st_is(state, ST_QUEUED) && !st_is(state, ST_RUNNING);
	if (t->timed_out && (terminal || code >= 0 || (t->cancel_at && mono_usec() - t->cancel_at > CANCEL_WAIT))) {
		try_end(t, EXEC_END_TIMEOUT, SIGTERM, NULL);
		return;
	}
	if (t->cancelled && (terminal || code >= 0 || (t->cancel_at && mono_usec() - t->cancel_at > CANCEL_WAIT))) {
		struct exec_result res = {.kind = EXEC_END_SIGNALED, .code = SIGTERM, .start = USEC_NONE,
					  .end = USEC_NONE, .message = "cancelled (scancel)"};
		try_finish(t, &res);
		return;
	}
	if (code >= 0) {
		if (state && !strcmp(state, "OUT_OF_MEMORY"))
			try_end(t, EXEC_END_EXITED, code ? code : 137, "job %s ran out of memory (OUT_OF_MEMORY)",
				t->jobid ? t->jobid : "?");
		else if (state && !strcmp(state, "TIMEOUT"))
			try_end(t, EXEC_END_TIMEOUT, SIGTERM, "job %s reached its Slurm time limit (TIMEOUT)",
				t->jobid ? t->jobid : "?");
		else
			try_end(t, EXEC_END_EXITED, code, NULL);
		return;
	}
	if (!state) {
		if (try_missed(t))
			try_end(t, EXEC_END_LOST, -1, "job %s is known neither to squeue nor to %s and left no exit "
				"status in %s: the try is lost", t->jobid ? t->jobid : "?",
				t->ss->accounting == 1 ? "sacct" : "scontrol", t->dir);
		return;
	}
	if (!terminal)
		return;
	/* Ended without .exitcode: the file may still be on its way (shared storage); one more poll. */
	if (!t->term_seen) {
		t->term_seen = true;
		return;
	}
	const char *id = t->jobid ? t->jobid : "?";
	int ec = -1;
	if (exitcode)
		ec = atoi(exitcode);
	if (!strcmp(state, "TIMEOUT"))
		try_end(t, EXEC_END_TIMEOUT, SIGTERM, "job %s reached its Slurm time limit (TIMEOUT)", id);
	else if (!strcmp(state, "OUT_OF_MEMORY"))
		try_end(t, EXEC_END_EXITED, 137, "job %s ran out of memory (OUT_OF_MEMORY)", id);
	else if (!strcmp(state, "CANCELLED"))
		try_end(t, EXEC_END_SIGNALED, SIGTERM, "job %s was cancelled outside sluice (CANCELLED)", id);
	else if (!strcmp(state, "FAILED") && ec > 0)
		try_end(t, EXEC_END_EXITED, ec, "job %s FAILED with exit code %d before its script could record it", id,
			ec);
	else
		try_end(t, EXEC_END_LOST, -1, "job %s ended %s without writing %s/.exitcode (is work_dir shared with "
			"the compute nodes?)", id, state, t->dir);
}

/* ---- submitting ---- */

static void on_sbatch_exit(struct sl_proc *p, int ws)
{
	struct sl_state *ss = p->ss;
	struct sl_try *t = try_find(ss, p->token);
	char why[512];

	ss->submitting--;
	for (int i = 0; i < SUBMIT_INFLIGHT; i++)
		if (ss->sbatch[i] == p)
			ss->sbatch[i] = NULL;
	if (!t || t->phase != P_SUBMITTING)
		goto out;
	if (proc_ok(p, ws)) {
		char id[64] = "";
		sscanf(p->out.buf ? p->out.buf : "", "%63[0-9_]", id);
		if (*id) {
			t->jobid = xstrdup(id);
			t->phase = P_JOB;
			free_argv(t->submit_argv);
			t->submit_argv = NULL;
			try_save(t);
			note(t, "submitted as job %s (%s)", id, t->name);
			goto out;
		}
	}
	proc_why(p, ws, why, sizeof(why));
	const char *err = p->err.buf ? p->err.buf : "";
	if (controller_trouble(err) && (strstr(err, "connect failure") || strstr(err, "Connection refused"))) {
		/* No connection was made: surely not submitted; again after a pause. */
		t->phase = P_WAIT;
		ss->submit_not_before = mono_usec() + ss->poll_interval;
		if (!t->noted_down) {
			t->noted_down = true;
			note(t, "the controller does not answer (%s); waiting", why);
		}
	} else if (p->killed || proc_ok(p, ws) || controller_trouble(err)) {
		/* It may have reached the controller (a reply lost, a call cut): looked up by name
		 * before any new sbatch, so that it is never submitted twice. */
		t->phase = P_UNSURE;
		note(t, "sbatch did not say whether it submitted the job (%s); looking it up by name", why);
	} else {
		t->phase = P_WAIT; /* refused: nothing was submitted */
		try_end(t, EXEC_END_LOST, -1, "sbatch refused the job: %s", why);
		goto out;
	}
out:
	submit_kick(ss);
	poll_arm(ss);
}

static void on_submit_timer(struct evloop *loop, void *arg)
{
	struct sl_state *ss = arg;

	ss->submit_timer = NULL;
	submit_kick(ss);
}

/* Submits waiting tries, oldest first, at most max_submit_per_second (a token bucket). */
static void submit_kick(struct sl_state *ss)
{
	usec_t now = mono_usec();

	ss->tokens += (double)(now - ss->refilled) / 1e6 * ss->max_submit;
	if (ss->tokens > ss->max_submit)
		ss->tokens = ss->max_submit;
	ss->refilled = now;
	for (;;) {
		struct sl_try *t = ss->tries;
		while (t && t->phase != P_WAIT)
			t = t->next;
		if (!t)
			return;
		if (t->cancelled) {
			struct exec_result res = {.kind = EXEC_END_SIGNALED, .code = SIGTERM, .start = USEC_NONE,
						  .end = USEC_NONE, .message = "cancelled before it was submitted"};
			try_finish(t, &res);
			continue;
		}
		if (ss->submitting >= SUBMIT_INFLIGHT)
			return;
		usec_t wait = 0;
		if (now < ss->submit_not_before)
			wait = ss->submit_not_before - now;
		else if (ss->tokens < 1)
			wait = (usec_t)((1 - ss->tokens) * 1e6 / ss->max_submit) + 1;
		if (wait) {
			if (!ss->submit_timer)
				ss->submit_timer = evloop_timer_in(ss->ex->loop, wait, on_submit_timer, ss);
			return;
		}
		char *err = NULL;
		struct sl_proc *p = proc_spawn(ss, t->submit_argv, on_sbatch_exit, NULL, &err);
		if (!p) {
			try_end(t, EXEC_END_LOST, -1, "%s", err);
			free(err);
			continue;
		}
		p->token = t->token;
		for (int i = 0; i < SUBMIT_INFLIGHT; i++)
			if (!ss->sbatch[i]) {
				ss->sbatch[i] = p;
				break;
			}
		ss->tokens -= 1;
		ss->submitting++;
		t->phase = P_SUBMITTING;
	}
}

/* ---- polling ---- */

/* Tokens of the live tries in a phase (a snapshot: ending one try may end others). */
static uint64_t *snapshot(struct sl_state *ss, size_t *n)
{
	uint64_t *v = xcalloc((size_t)ss->running + 1, sizeof(uint64_t));

	*n = 0;
	for (struct sl_try *t = ss->tries; t; t = t->next)
		if (t->phase == P_JOB || t->phase == P_UNSURE)
			v[(*n)++] = t->token;
	return v;
}

static void mark_down(struct sl_state *ss, const char *why)
{
	snprintf(ss->down_why, sizeof(ss->down_why), "%s", why);
	if (!ss->down)
		log_warnx("slurm: the controller does not answer: %s", why);
	ss->down = true;
	for (struct sl_try *t = ss->tries; t; t = t->next) {
		if (t->noted_down)
			continue;
		t->noted_down = true;
		note(t, "the controller does not answer (%s); the try waits (until its execution_timeout)", why);
	}
}

static void mark_up(struct sl_state *ss)
{
	if (ss->down)
		log_info("slurm: the controller answers again");
	ss->down = false;
	for (struct sl_try *t = ss->tries; t; t = t->next) {
		if (!t->noted_down)
			continue;
		t->noted_down = false;
		note(t, "the controller answers again");
	}
}

/* One job as a poll's command lists it: fields point into the command's output (changed in
 * place). key is the job name (squeue) or the job id (sacct, scontrol). */
struct row {
	const char *key, *id, *state, *reason, *node, *exitcode;
};

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->key, ((const struct row *)b)->key);
}

static const struct row *row_find(const struct row *rows, size_t n, const char *key)
{
	struct row k = {.key = key};

	return n ? bsearch(&k, rows, n, sizeof(*rows), row_cmp) : NULL;
}

/* Splits line at '|' into at most max fields (NUL-terminated in place); returns how many. */
static size_t split_bars(char *line, char **f, size_t max)
{
	size_t n = 0;

	while (n < max) {
		f[n++] = line;
		char *bar = strchr(line, '|');
		if (!bar)
			break;
		*bar = '\0';
		line = bar + 1;
	}
	return n;
}

/* The value of "Key=value" in a `scontrol --oneliner` line (NUL-terminated in a copy), or NULL. */
static const char *field_of(const char *line, const char *key, char *buf, size_t n)
{
	size_t kl = strlen(key);

	for (const char *p = line; (p = strstr(p, key)); p += kl) {
		if (p != line && p[-1] != ' ')
			continue;
		p += kl;
		size_t l = strcspn(p, " \n");
		snprintf(buf, n, "%.*s", (int)l, p);
		return buf;
	}
	return NULL;
}

/* The rows of a command's output, sorted by key: squeue (%i|%j|%T|%r|%N, keyed by name), sacct
 * (JobIDRaw|State|ExitCode) or scontrol --oneliner (keyed by id). *store keeps scontrol's
 * copies; the caller frees it and the array. */
enum src { SRC_SQUEUE, SRC_SACCT, SRC_SCONTROL };
static struct row *parse_rows(char *out, enum src src, size_t *nrows, char ***store, size_t *nstore)
{
	struct row *rows = NULL;
	size_t n = 0, cap = 0;

	*store = NULL;
	*nstore = 0;
	for (char *line = out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		struct row r = {0};
		if (src == SRC_SCONTROL) {
			char id[64], st[64], ec[32];
			if (!field_of(line, "JobId=", id, sizeof(id)) || !field_of(line, "JobState=", st, sizeof(st)))
				continue;
			*store = xrealloc(*store, (*nstore + 3) * sizeof(char *));
			r.key = r.id = (*store)[(*nstore)++] = xstrdup(id);
			r.state = (*store)[(*nstore)++] = xstrdup(st);
			r.exitcode = (*store)[(*nstore)++] = xstrdup(field_of(line, "ExitCode=", ec, sizeof(ec)) ? ec : "");
		} else {
			char *f[5] = {0};
			size_t k = split_bars(line, f, 5);
			if (src == SRC_SQUEUE) {
				if (k < 3)
					continue;
				r = (struct row){.key = f[1], .id = f[0], .state = f[2], .reason = k > 3 ? f[3] : "",
						 .node = k > 4 ? f[4] : ""};
			} else {
				if (k < 2 || strchr(f[0], '.'))
					continue; /* steps (123.batch) are not the job */
				f[1][strcspn(f[1], " ")] = '\0'; /* "CANCELLED by 0" */
				r = (struct row){.key = f[0], .id = f[0], .state = f[1], .exitcode = k > 2 ? f[2] : ""};
			}
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			rows = xrealloc(rows, cap * sizeof(*rows));
		}
		rows[n++] = r;
	}
	if (n)
		qsort(rows, n, sizeof(*rows), row_cmp);
	*nrows = n;
	return rows;
}

static void free_store(char **store, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(store[i]);
	free(store);
}

/* Applies the answer of sacct or `scontrol show job` to the tries squeue did not list. */
static void on_aux_exit(struct sl_proc *p, int ws)
{
	struct sl_state *ss = p->ss;
	bool sacct = p->arg != NULL;
	char why[512];

	ss->aux = NULL;
	if (!proc_ok(p, ws)) {
		proc_why(p, ws, why, sizeof(why));
		if (sacct && strstr(p->err.buf ? p->err.buf : "", "accounting storage is disabled")) {
			log_info("slurm: accounting is off: jobs that left squeue are looked up with scontrol");
			ss->accounting = 0;
		} else if (controller_trouble(why)) {
			mark_down(ss, why);
		} else {
			log_warnx("slurm: %s failed: %s", sacct ? "sacct" : "scontrol", why);
		}
		return; /* no verdict this poll: nobody is declared lost on a failed call */
	}
	size_t n, nrows, nstore;
	char **store;
	struct row *rows = parse_rows(p->out.buf, sacct ? SRC_SACCT : SRC_SCONTROL, &nrows, &store, &nstore);
	uint64_t *tok = snapshot(ss, &n);
	for (size_t i = 0; i < n; i++) {
		struct sl_try *t = try_find(ss, tok[i]);
		if (!t || !t->jobid || !t->asked)
			continue;
		t->asked = false;
		const struct row *r = row_find(rows, nrows, t->jobid);
		if (!r && p->truncated)
			continue; /* the answer was cut: no verdict */
		try_update(t, r ? r->state : NULL, NULL, NULL, r && r->exitcode && *r->exitcode ? r->exitcode : NULL);
	}
	free(tok);
	free(rows);
	free_store(store, nstore);
}

static void run_aux(struct sl_state *ss, struct strbuf *ids)
{
	char *err = NULL, *cmd = cmd_path(ss, ss->accounting ? "sacct" : "scontrol");
	char *jobs = xasprintf("--jobs=%s", sb_str(ids));
	char *sacct[] = {cmd, "--noheader", "--parsable2", "--allocations", jobs,
			 "--format=JobIDRaw,State,ExitCode", NULL};
	char *scontrol[] = {cmd, "--oneliner", "show", "job", NULL};

	ss->aux = proc_spawn(ss, ss->accounting ? sacct : scontrol, on_aux_exit, ss->accounting ? ss : NULL, &err);
	if (!ss->aux) {
		log_warnx("slurm: %s", err);
		free(err);
	}
	free(jobs);
	free(cmd);
}

static void on_squeue_exit(struct sl_proc *p, int ws)
{
	struct sl_state *ss = p->ss;
	char why[512];

	ss->squeue = NULL;
	if (!proc_ok(p, ws)) {
		proc_why(p, ws, why, sizeof(why));
		mark_down(ss, why);
		/* The nodes run on without the controller: a job whose script left its exit status
		 * has ended, whatever the controller would say. */
		size_t n;
		uint64_t *tok = snapshot(ss, &n);
		for (size_t i = 0; i < n; i++) {
			struct sl_try *t = try_find(ss, tok[i]);
			if (t && t->jobid && t->phase == P_JOB && read_exitcode(t) >= 0)
				try_update(t, NULL, NULL, NULL, NULL);
		}
		free(tok);
		poll_arm(ss);
		return;
	}
	mark_up(ss);
	size_t n, nrows, nstore;
	char **store;
	struct row *rows = parse_rows(p->out.buf, SRC_SQUEUE, &nrows, &store, &nstore);
	uint64_t *tok = snapshot(ss, &n);
	struct strbuf missing = {0};
	for (size_t i = 0; i < n; i++) {
		struct sl_try *t = try_find(ss, tok[i]);
		if (!t)
			continue;
		const struct row *r = row_find(rows, nrows, t->name);
		if (r && !t->jobid && strspn(r->id, "0123456789_") == strlen(r->id) && *r->id) {
			t->jobid = xstrdup(r->id);
			if (t->phase == P_UNSURE) {
				t->phase = P_JOB;
				free_argv(t->submit_argv);
				t->submit_argv = NULL;
				note(t, "found job %s (%s)", r->id, t->name);
			}
			try_save(t);
		}
		if (r) {
			try_update(t, r->state, r->reason, r->node, NULL);
			continue;
		}
		if (p->truncated)
			continue; /* the answer was cut: no verdict */
		if (t->phase == P_UNSURE || !t->jobid) {
			if (read_exitcode(t) >= 0 || t->jobid) {
				try_update(t, NULL, NULL, NULL, NULL);
			} else if (t->submit_argv) {
				t->phase = P_WAIT; /* it never reached the controller: submitted now */
			} else if (try_missed(t)) {
				try_end(t, EXEC_END_LOST, -1, "no job named %s is known to Slurm: it was never "
					"submitted", t->name);
			}
			continue;
		}
		/* Left squeue (MinJobAge): the exit status, or sacct / scontrol, decides. */
		if (read_exitcode(t) >= 0) {
			try_update(t, NULL, NULL, NULL, NULL);
			continue;
		}
		t->asked = true;
		sb_printf(&missing, "%s%s", missing.len ? "," : "", t->jobid);
	}
	free(tok);
	free(rows);
	free_store(store, nstore);
	if (missing.len && !ss->aux)
		run_aux(ss, &missing);
	sb_free(&missing);
	submit_kick(ss);
	poll_arm(ss);
}

/* scancel of every job a cancel or a timeout asked to stop, and of the orphans. */
static void on_scancel_exit(struct sl_proc *p, int ws)
{
	struct sl_state *ss = p->ss;
	char why[512];

	ss->scancel = NULL;
	if (proc_ok(p, ws))
		return;
	proc_why(p, ws, why, sizeof(why));
	/* "Invalid job id" for a job that already ended is fine; the rest is retried next poll. */
	if (strstr(why, "Invalid job id") || strstr(why, "already completing or completed"))
		return;
	for (struct sl_try *t = ss->tries; t; t = t->next)
		if (t->cancel_at && (t->cancelled || t->timed_out) && mono_usec() - t->cancel_at < CANCEL_WAIT) {
			t->cancel_at = 0;
			note(t, "scancel failed (%s); trying again", why);
		}
}

/* Tries whose execution_timeout has passed: their jobs are to be cancelled; those without a job
 * (or whose controller does not answer) end now. From the poll only (it may end tries). */
static void check_timeouts(struct sl_state *ss)
{
	usec_t now = now_usec();
	size_t n;

	/* Timeouts: the try's time is up. */
	uint64_t *tok = snapshot(ss, &n);
	for (size_t i = 0; i < n; i++) {
		struct sl_try *t = try_find(ss, tok[i]);
		if (!t || !t->deadline || now < t->deadline || t->timed_out || t->cancelled)
			continue;
		t->timed_out = true;
		char human[32];
		format_duration(t->timeout, human, sizeof(human));
		if (t->jobid && !ss->down) {
			note(t, "execution_timeout of %s exceeded: cancelling job %s", human, t->jobid);
		} else if (t->jobid) {
			sb_printf(&ss->orphans, "%s%s", ss->orphans.len ? " " : "", t->jobid);
			try_end(t, EXEC_END_TIMEOUT, SIGTERM, "execution_timeout of %s exceeded while the controller "
				"does not answer (%s); job %s is cancelled once it does", human, ss->down_why, t->jobid);
		} else {
			try_end(t, EXEC_END_TIMEOUT, SIGTERM, "execution_timeout of %s exceeded before the job was "
				"found in Slurm%s%s", human, ss->down ? ": " : "", ss->down ? ss->down_why : "");
		}
	}
	free(tok);
	/* Tries still waiting to be submitted whose time is up. */
	for (struct sl_try *t = ss->tries, *next; t; t = next) {
		next = t->next;
		if (t->phase == P_WAIT && t->deadline && now >= t->deadline) {
			char human[32];
			format_duration(t->timeout, human, sizeof(human));
			try_end(t, EXEC_END_TIMEOUT, SIGTERM, "execution_timeout of %s exceeded before the job could be "
				"submitted%s%s", human, ss->down ? ": " : "", ss->down ? ss->down_why : "");
			next = ss->tries; /* the list may have changed */
		}
	}
}

/* One scancel for every job a cancel or a timeout asked to stop, and for the orphans. Ends no
 * try (the poll sees the jobs end). */
static void send_cancels(struct sl_state *ss)
{
	struct strbuf ids = {0};

	if (ss->scancel)
		return;
	if (ss->down)
		return;
	for (struct sl_try *t = ss->tries; t; t = t->next)
		if ((t->cancelled || t->timed_out) && t->jobid && !t->cancel_at) {
			sb_printf(&ids, "%s%s", ids.len ? " " : "", t->jobid);
			t->cancel_at = mono_usec();
		}
	if (ss->orphans.len) {
		sb_printf(&ids, "%s%s", ids.len ? " " : "", ss->orphans.buf);
		sb_reset(&ss->orphans);
	}
	if (!ids.len)
		return;
	size_t k = 2;
	char **av = xcalloc(ids.len / 2 + 4, sizeof(char *));
	av[0] = cmd_path(ss, "scancel");
	av[1] = xstrdup("--quiet");
	for (char *save = NULL, *w = strtok_r(ids.buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
		av[k++] = xstrdup(w);
	char *err = NULL;
	ss->scancel = proc_spawn(ss, av, on_scancel_exit, NULL, &err);
	if (!ss->scancel) {
		log_warnx("slurm: %s", err);
		free(err);
	}
	free_argv(av);
	sb_free(&ids);
}

static void on_poll(struct evloop *loop, void *arg)
{
	struct sl_state *ss = arg;
	size_t n;

	ss->poll_timer = NULL;
	uint64_t *tok = snapshot(ss, &n);
	for (size_t i = 0; i < n; i++) {
		struct sl_try *t = try_find(ss, tok[i]);
		if (t && t->phase == P_JOB)
			try_tail(t, false);
	}
	free(tok);
	check_timeouts(ss);
	send_cancels(ss);
	submit_kick(ss);
	bool any = false;
	struct strbuf names = {0};
	for (struct sl_try *t = ss->tries; t; t = t->next)
		if (t->phase == P_JOB || t->phase == P_UNSURE) {
			sb_printf(&names, "%s%s", names.len ? "," : "", t->name);
			any = true;
		}
	if (any && !ss->squeue) {
		/* One squeue for every live job, by their (unique) names. */
		char *cmd = cmd_path(ss, "squeue");
		char *nm = names.len <= NAMES_MAX ? xasprintf("--name=%s", names.buf) : xstrdup("--me");
		char *av[] = {cmd, "--noheader", "--all", "--states=all", nm, "--format=%i|%j|%T|%r|%N", NULL};
		char *err = NULL;
		ss->squeue = proc_spawn(ss, av, on_squeue_exit, NULL, &err);
		if (!ss->squeue) {
			mark_down(ss, err);
			free(err);
		}
		free(nm);
		free(cmd);
	}
	sb_free(&names);
	poll_arm(ss);
}

/* The next poll, while there is something to watch. */
static void poll_arm(struct sl_state *ss)
{
	if (!ss->poll_timer && (ss->tries || ss->orphans.len))
		ss->poll_timer = evloop_timer_in(ss->ex->loop, ss->poll_interval, on_poll, ss);
}

/* ---- the batch script and sbatch's arguments ---- */

static void add_arg(char ***av, size_t *n, char *s)
{
	*av = xrealloc(*av, (*n + 2) * sizeof(char *));
	(*av)[(*n)++] = s;
	(*av)[*n] = NULL;
}

static bool safe_value(const char *s)
{
	return *s && !strpbrk(s, "\n\r");
}

/* A number an option may hold (converted to long long without overflow). */
static bool safe_number(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble > -1e15 && v->valuedouble < 1e15;
}

/* sbatch's arguments from the task's options (validated by the DSL; checked again here). */
static int option_args(const struct exec_spec *spec, char ***av, size_t *n, char **err)
{
	static const char *const plain[] = {"partition", "account", "qos", "gres", NULL};
	const cJSON *o = spec->options, *v;
	long long minutes = 0;

	for (size_t i = 0; o && plain[i]; i++) {
		v = cJSON_GetObjectItemCaseSensitive(o, plain[i]);
		if (cJSON_IsString(v) && safe_value(v->valuestring))
			add_arg(av, n, xasprintf("--%s=%s", plain[i], v->valuestring));
	}
	if (o && safe_number(v = cJSON_GetObjectItemCaseSensitive(o, "cpus")) && v->valuedouble >= 1)
		add_arg(av, n, xasprintf("--cpus-per-task=%lld", (long long)v->valuedouble));
	if (o && (v = cJSON_GetObjectItemCaseSensitive(o, "mem"))) {
		if (safe_number(v) && v->valuedouble >= 1)
			add_arg(av, n, xasprintf("--mem=%lld", (long long)v->valuedouble));
		else if (cJSON_IsString(v) && safe_value(v->valuestring))
			add_arg(av, n, xasprintf("--mem=%s", v->valuestring));
	}
	/* --time: the option (seconds), else execution_timeout; whole minutes, rounded up. */
	if (o && safe_number(v = cJSON_GetObjectItemCaseSensitive(o, "time")) && v->valuedouble > 0)
		minutes = ((long long)v->valuedouble + 59) / 60;
	else if (spec->timeout > 0)
		minutes = (spec->timeout / USEC_PER_SEC + 59) / 60;
	if (minutes > 0)
		add_arg(av, n, xasprintf("--time=%lld", minutes));
	const cJSON *extra = o ? cJSON_GetObjectItemCaseSensitive(o, "extra") : NULL;
	cJSON_ArrayForEach(v, extra) {
		const char *k = v->string;
		if (!k || !*k || strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != strlen(k)) {
			*err = xasprintf("slurm: extra option '%s' is not an sbatch option name", k ? k : "");
			return -EINVAL;
		}
		if (cJSON_IsTrue(v))
			add_arg(av, n, xasprintf("--%s", k));
		else if (cJSON_IsString(v) && safe_value(v->valuestring))
			add_arg(av, n, xasprintf("--%s=%s", k, v->valuestring));
		else if (safe_number(v))
			add_arg(av, n, xasprintf("--%s=%lld", k, (long long)v->valuedouble));
		else if (!cJSON_IsFalse(v)) {
			*err = xasprintf("slurm: extra option '%s' must be a string, a number or true", k);
			return -EINVAL;
		}
	}
	return 0;
}

/* The batch script: the try's environment, limits and folder, then the command; its EXIT trap
 * writes the exit status atomically (temporary file, then rename), as Nextflow's does. */
static char *script_text(const struct exec_spec *spec, const char *dir)
{
	struct strbuf sb = {0};
	static const char *const lim[] = {"-v", "-t", "-n"};
	long long v[] = {spec->rlimit_as / 1024, spec->rlimit_cpu, spec->rlimit_nofile};
	const char *const *env = spec->envp ? spec->envp : spec->task_envp;

	sb_puts(&sb, "#!/bin/sh\n# generated by sluice: one try of a task\nD=");
	sh_quote(&sb, dir);
	sb_puts(&sb, "\nsluice_exit() {\n  rc=$?\n  trap - EXIT\n"
		     "  printf '%s\\n' \"$rc\" > \"$D/.exitcode.tmp\" && mv -f \"$D/.exitcode.tmp\" \"$D/.exitcode\"\n"
		     "  exit \"$rc\"\n}\ntrap sluice_exit EXIT\n"
		     "trap 'trap \"\" TERM INT USR2; [ -n \"$P\" ] && kill -TERM \"$P\" 2>/dev/null; "
		     "[ -n \"$P\" ] && wait \"$P\"; exit 143' TERM INT USR2\n");
	for (size_t i = 0; env && env[i]; i++) {
		const char *kv = env[i], *eq = strchr(kv, '=');
		size_t k = eq ? (size_t)(eq - kv) : 0;
		if (!k || strspn(kv, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != k ||
		    (kv[0] >= '0' && kv[0] <= '9') || !strncmp(kv, "SLUICE_OUTPUT=", 14))
			continue;
		sb_printf(&sb, "%.*s=", (int)k, kv);
		sh_quote(&sb, eq + 1);
		sb_printf(&sb, "; export %.*s\n", (int)k, kv);
	}
	sb_puts(&sb, "PATH=${PATH:-/usr/local/bin:/usr/bin:/bin}; export PATH\n"
		     "SLUICE_OUTPUT=\"$D/out\"; export SLUICE_OUTPUT\n"
		     "SLUICE_SLURM_JOB_ID=$SLURM_JOB_ID; export SLUICE_SLURM_JOB_ID\n");
	for (size_t i = 0; i < 3; i++)
		if (v[i] > 0)
			sb_printf(&sb, "ulimit %s %lld || { echo 'sluice: cannot set a resource limit'; exit 127; }\n",
				  lim[i], v[i]);
	if (spec->cwd) {
		sb_puts(&sb, "cd ");
		sh_quote(&sb, spec->cwd);
		sb_puts(&sb, " || exit 127\n");
	}
	for (size_t i = 0; spec->argv[i]; i++) {
		sh_quote(&sb, spec->argv[i]);
		sb_putc(&sb, ' ');
	}
	sb_puts(&sb, "</dev/null &\nP=$!\nwait \"$P\"\n");
	return sb_steal(&sb);
}

/* A job-name component: [A-Za-z0-9_.+-], at most max bytes. */
static void name_part(struct strbuf *sb, const char *s, size_t max)
{
	for (size_t i = 0; s && s[i] && i < max; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
			  c == '.' || c == '-' || c == '+';
		sb_putc(sb, ok ? c : '_');
	}
}

static void random_key(char key[17])
{
	unsigned char b[8];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		unsigned long long x = (unsigned long long)now_usec() ^ ((unsigned long long)getpid() << 40);
		memcpy(b, &x, sizeof(b));
	}
	for (int i = 0; i < 8; i++)
		snprintf(key + 2 * i, 3, "%02x", b[i]);
}

/* ---- the operations ---- */

static int slurm_start(struct executor *ex, uint64_t token, const struct exec_spec *spec, char **external_id,
		       int *pid, char **err)
{
	struct sl_state *ss = ex->state;
	char **av = NULL, key[17];
	size_t n = 0;
	int rc;

	if (!spec->argv || !spec->argv[0] || !spec->log_path || !spec->status_path || !spec->pid_path) {
		*err = xasprintf("slurm: a command, a log, a status and a pid file path are required");
		return -EINVAL;
	}
	if (spec->run_as) {
		*err = xasprintf("slurm: run_as is not supported (jobs run as the user who submits them)");
		return -EINVAL;
	}
	if (try_find(ss, token)) {
		*err = xasprintf("slurm: try %llu is already running", (unsigned long long)token);
		return -EEXIST;
	}
	random_key(key);
	char *dir = xasprintf("%s/%s", ss->work_dir, key);
	if (mkdir(dir, 0700) < 0) {
		rc = -errno;
		*err = xasprintf("slurm: cannot create %s: %s", dir, strerror(-rc));
		free(dir);
		return rc;
	}
	char *script = script_text(spec, dir), *script_path = xasprintf("%s/job.sh", dir);
	rc = write_file_atomic(script_path, script, strlen(script), false);
	free(script);
	if (rc < 0) {
		*err = xasprintf("slurm: cannot write %s: %s", script_path, strerror(-rc));
		goto fail;
	}
	struct strbuf name = {0};
	sb_puts(&name, "sluice.");
	name_part(&name, spec->dag_id, 40);
	sb_putc(&name, '.');
	name_part(&name, spec->run_id, 40);
	sb_putc(&name, '.');
	name_part(&name, spec->task_id, 40);
	sb_printf(&name, ".%d.%d.%s", spec->map_index, spec->try_number, key);
	add_arg(&av, &n, cmd_path(ss, "sbatch"));
	add_arg(&av, &n, xstrdup("--parsable"));
	add_arg(&av, &n, xasprintf("--job-name=%s", name.buf));
	add_arg(&av, &n, xasprintf("--output=%s/output", dir));
	add_arg(&av, &n, xstrdup("--open-mode=append"));
	add_arg(&av, &n, xstrdup("--export=NONE"));
	add_arg(&av, &n, xstrdup("--no-requeue")); /* a lost job is retried by sluice, never also by Slurm */
	add_arg(&av, &n, xasprintf("--chdir=%s", dir));
	if ((rc = option_args(spec, &av, &n, err)) < 0) {
		sb_free(&name);
		free_argv(av);
		goto fail;
	}
	add_arg(&av, &n, xstrdup(script_path));
	struct sl_try *t = try_new(ss, token, spec);
	memcpy(t->key, key, sizeof(key));
	t->name = sb_steal(&name);
	t->dir = dir;
	t->submit_argv = av;
	t->started = now_usec();
	t->deadline = spec->timeout > 0 ? t->started + spec->timeout : 0;
	t->timeout = spec->timeout;
	t->phase = P_WAIT;
	snprintf(t->state, sizeof(t->state), "-");
	if ((rc = try_save(t)) < 0) {
		*err = xasprintf("slurm: cannot write %s: %s", t->pid_path, strerror(-rc));
		dir = xstrdup(t->dir);
		try_free(t);
		goto fail;
	}
	free(script_path);
	*external_id = xstrdup(t->name);
	*pid = 0;
	/* Submitted from the loop, not from here: start() must not call on_end. */
	if (!ss->submit_timer)
		ss->submit_timer = evloop_timer_in(ex->loop, 0, on_submit_timer, ss);
	poll_arm(ss);
	return 0;
fail:
	unlink(script_path);
	rmdir(dir);
	free(script_path);
	free(dir);
	return rc;
}

static void on_deferred(struct evloop *loop, void *arg)
{
	struct sl_state *ss = arg;
	struct sl_try *t;

	ss->defer_timer = NULL;
	/* Re-attached tries whose status file exists end now (not from inside reattach()). */
	for (t = ss->tries; t; t = t->next) {
		struct exec_result res;
		char *msg = NULL;
		if (t->phase == P_JOB && !strcmp(t->state, "=") && exec_read_status(t->status_path, &res, &msg) == 0) {
			try_finish(t, &res);
			free(msg);
			t = ss->tries;
			if (!t)
				break;
		}
	}
	submit_kick(ss);
}

static int slurm_reattach(struct executor *ex, uint64_t token, const struct exec_spec *spec, const char *external_id)
{
	struct sl_state *ss = ex->state;
	char *text = NULL, key[64], name[600], jobid[64];
	long long off = 0, started = 0, deadline = 0;
	struct stat sb;

	if (!spec->status_path || !spec->pid_path || !spec->log_path)
		return -EINVAL;
	if (try_find(ss, token))
		return -EEXIST;
	if (read_file(spec->pid_path, 4096, &text, NULL) < 0 ||
	    sscanf(text, "slurm %63s %599s %63s %lld %lld %lld", key, name, jobid, &off, &started, &deadline) != 6) {
		free(text);
		return -ENOENT;
	}
	free(text);
	if (strlen(key) != 16 || strspn(key, "0123456789abcdef") != 16 || (strcmp(jobid, "-") &&
	    strspn(jobid, "0123456789_") != strlen(jobid)) || (external_id && strcmp(external_id, name)))
		return -EINVAL;
	struct sl_try *t = try_new(ss, token, spec);
	memcpy(t->key, key, 17);
	t->name = xstrdup(name);
	t->dir = xasprintf("%s/%s", ss->work_dir, key);
	t->jobid = strcmp(jobid, "-") ? xstrdup(jobid) : NULL;
	t->offset = off;
	t->started = started;
	t->deadline = deadline;
	t->timeout = deadline > started ? deadline - started : 0;
	t->phase = t->jobid ? P_JOB : P_UNSURE;
	snprintf(t->state, sizeof(t->state), "-");
	if (stat(t->status_path, &sb) == 0) {
		snprintf(t->state, sizeof(t->state), "=");
		t->phase = P_JOB;
		if (!ss->defer_timer)
			ss->defer_timer = evloop_timer_in(ex->loop, 0, on_deferred, ss);
	} else {
		note(t, "re-attached to %s%s%s", t->jobid ? "job " : "", t->jobid ? t->jobid : "", t->jobid ? "" : t->name);
	}
	poll_arm(ss);
	return 0;
}

static int slurm_cancel(struct executor *ex, uint64_t token)
{
	struct sl_state *ss = ex->state;
	struct sl_try *t = try_find(ss, token);

	if (!t)
		return -ENOENT;
	if (t->cancelled)
		return 0;
	t->cancelled = true;
	if (t->phase == P_WAIT) {
		struct exec_result res = {.kind = EXEC_END_SIGNALED, .code = SIGTERM, .start = USEC_NONE,
					  .end = USEC_NONE, .message = "cancelled before it was submitted"};
		try_finish(t, &res);
		return 0;
	}
	note(t, "cancelling job %s", t->jobid ? t->jobid : t->name);
	send_cancels(ss); /* the job's end comes through the poll */
	return 0;
}

static int slurm_free_slots(struct executor *ex)
{
	struct sl_state *ss = ex->state;
	int n = ex->parallelism - ss->running;

	return n > 0 ? n : 0;
}

static int slurm_init(struct executor *ex, char **err)
{
	struct sl_state *ss;
	const char *wd = executor_setting(ex, "work_dir", ""), *bin = executor_setting(ex, "bin_dir", "");
	const char *acc = executor_setting(ex, "accounting", "auto");
	usec_t pi = 0, ct = 0;
	char *dir;
	int rc;

	if (!*wd && !ex->state_dir) {
		*err = xstrdup("slurm executor: no work_dir");
		return -EINVAL;
	}
	dir = *wd ? xstrdup(wd) : xasprintf("%s/work", ex->state_dir);
	if (dir[0] != '/') {
		*err = xasprintf("slurm executor: work_dir %s must be an absolute path", dir);
		free(dir);
		return -EINVAL;
	}
	if ((rc = mkdir_p(dir, 0700)) < 0) {
		*err = xasprintf("slurm executor: cannot create %s: %s", dir, strerror(-rc));
		free(dir);
		return rc;
	}
	if (parse_duration(executor_setting(ex, "poll_interval", "2s"), &pi) < 0 || pi <= 0)
		pi = 2 * USEC_PER_SEC;
	if (parse_duration(executor_setting(ex, "command_timeout", "60s"), &ct) < 0 || ct <= 0)
		ct = 60 * USEC_PER_SEC;
	ss = xcalloc(1, sizeof(*ss));
	ss->ex = ex;
	ss->work_dir = dir;
	ss->bin_dir = *bin ? xstrdup(bin) : NULL;
	ss->poll_interval = pi;
	ss->command_timeout = ct;
	ss->max_submit = atoi(executor_setting(ex, "max_submit_per_second", "5"));
	if (ss->max_submit < 1)
		ss->max_submit = 5;
	ss->accounting = strcmp(acc, "no") ? 1 : 0; /* auto: sacct until it says accounting is off */
	ss->tokens = ss->max_submit;
	ss->refilled = mono_usec();
	ex->state = ss;
	return 0;
}

/* Forgets every try without touching its job: a later daemon re-attaches. */
static void slurm_shutdown(struct executor *ex)
{
	struct sl_state *ss = ex->state;

	if (!ss)
		return;
	struct sl_proc *procs[] = {ss->squeue, ss->aux, ss->scancel};
	for (size_t i = 0; i < 3; i++)
		if (procs[i])
			proc_free(procs[i]);
	for (int i = 0; i < SUBMIT_INFLIGHT; i++)
		if (ss->sbatch[i])
			proc_free(ss->sbatch[i]); /* the job may be submitted: a later daemon looks it up by name */
	if (ss->defer_timer)
		evloop_timer_cancel(ex->loop, ss->defer_timer);
	if (ss->poll_timer)
		evloop_timer_cancel(ex->loop, ss->poll_timer);
	if (ss->submit_timer)
		evloop_timer_cancel(ex->loop, ss->submit_timer);
	while (ss->tries)
		try_free(ss->tries);
	sb_free(&ss->orphans);
	free(ss->work_dir);
	free(ss->bin_dir);
	free(ss);
	ex->state = NULL;
}

const struct executor_ops exec_slurm_ops = {
	.name = "slurm",
	.init = slurm_init,
	.shutdown = slurm_shutdown,
	.start = slurm_start,
	.cancel = slurm_cancel,
	.reattach = slurm_reattach,
	.free_slots = slurm_free_slots,
};
