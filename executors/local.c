/* The `local` backend: every try runs under its own sluice-shim supervisor, started with
 * posix_spawn in a new session. The daemon only watches the supervisor (through a pidfd, or by
 * polling where pidfds are unavailable) and, when it is gone, reads the status file it left.
 * Tries therefore survive the daemon, and a restarted daemon re-attaches through the
 * external id ("<pid>:<starttime>") or the pid file.
 *
 * Invariants:
 *  - A try is in ls->tries from start()/reattach() until just before on_end is called, and counts
 *    towards `running` for exactly that time.
 *  - A try waits in exactly one way: on a pidfd (pidfd >= 0) or on a timer (polling a supervisor
 *    without a pidfd, or a zero-delay timer that resolves the try from the loop).
 *  - `is_child` is true only for the supervisor this daemon spawned; only it is reaped here.
 *    Nothing else in the daemon may call waitpid(-1) or ignore SIGCHLD.
 */
#include "executors/executor.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"

extern char **environ;

#define POLL_INTERVAL (20 * 1000)   /* usec, when no pidfd can be had */
#define MAX_HOPS 16                 /* re-attachments through pid files before giving up */
#define PID_WAITS 50                /* looks again at a pid file still being written, every */
#define PID_WAIT_US (20 * 1000)     /* 20 ms: a supervisor killed between its create and its
                                     * write leaves it empty; after 1 s the try is lost */

struct local_try {
	struct local_state *ls;
	uint64_t token;
	int pid;                        /* supervisor being watched; 0 when none */
	unsigned long long starttime;   /* of pid, to tell a reused pid apart */
	int pidfd;
	bool is_child;
	int wstatus;                    /* of our child supervisor once reaped; -1 unknown */
	struct ev_timer *timer;
	char *status_path, *pid_path;
	usec_t started;                 /* wall clock when start() was called; USEC_NONE after reattach */
	int hops;
	int pid_waits;                  /* times the pid file was found half written */
	bool watched;                   /* pid was seen running at some point */
	struct local_try *prev, *next;
};

struct local_state {
	struct executor *ex;
	char *shim;                     /* resolved supervisor path */
	struct local_try *tries;
	int running;
	bool sigdef_ready;              /* sigdef: the daemon's changed signals, from the first spawn */
	sigset_t sigdef;
};

static void try_resolve(struct local_try *t);
static void try_watch(struct local_try *t);

static int sys_pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_send_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* True when pid is a live (not zombie) process started at `starttime`. */
static bool proc_alive(int pid, unsigned long long starttime)
{
	unsigned long long st;
	char state;

	if (pid <= 0 || exec_proc_starttime(pid, &st, &state) < 0)
		return false;
	return st == starttime && state != 'Z' && state != 'X';
}

/* ---- the list of tries ---- */

static struct local_try *try_new(struct local_state *ls, uint64_t token,
				 const struct exec_spec *spec)
{
	struct local_try *t = xcalloc(1, sizeof(*t));

	t->ls = ls;
	t->token = token;
	t->pidfd = -1;
	t->wstatus = -1;
	t->started = USEC_NONE;
	t->status_path = xstrdup(spec->status_path);
	t->pid_path = xstrdup(spec->pid_path);
	t->next = ls->tries;
	if (ls->tries)
		ls->tries->prev = t;
	ls->tries = t;
	ls->running++;
	return t;
}

static void try_unwatch(struct local_try *t)
{
	struct evloop *loop = t->ls->ex->loop;

	if (t->timer) {
		evloop_timer_cancel(loop, t->timer);
		t->timer = NULL;
	}
	if (t->pidfd >= 0) {
		evloop_del_fd(loop, t->pidfd);
		close(t->pidfd);
		t->pidfd = -1;
	}
}

static void try_free(struct local_try *t)
{
	struct local_state *ls = t->ls;

	try_unwatch(t);
	if (t->prev)
		t->prev->next = t->next;
	else
		ls->tries = t->next;
	if (t->next)
		t->next->prev = t->prev;
	ls->running--;
	free(t->status_path);
	free(t->pid_path);
	free(t);
}

static struct local_try *try_find(struct local_state *ls, uint64_t token)
{
	for (struct local_try *t = ls->tries; t; t = t->next)
		if (t->token == token)
			return t;
	return NULL;
}

/* Removes the try and reports its end; the try must not be used afterwards. */
static void try_finish(struct local_try *t, struct exec_result *res)
{
	struct executor *ex = t->ls->ex;
	uint64_t token = t->token;

	if (res->start == USEC_NONE)
		res->start = t->started;
	try_free(t);
	ex->on_end(ex->cb_arg, token, res);
}

/* ---- watching a supervisor ---- */

/* Describes how our child supervisor ended, for a "lost" message. */
static void describe_wstatus(int ws, char *buf, size_t n)
{
	if (ws < 0)
		snprintf(buf, n, "ended");
	else if (WIFEXITED(ws))
		snprintf(buf, n, "exited with code %d", WEXITSTATUS(ws));
	else if (WIFSIGNALED(ws))
		snprintf(buf, n, "was killed by signal %d", WTERMSIG(ws));
	else
		snprintf(buf, n, "ended (wait status %d)", ws);
}

/* Called once the watched supervisor may be gone. Returns false when it is in fact still running
 * (a spurious wake-up or a poll tick). */
static bool supervisor_gone(struct local_try *t)
{
	if (t->is_child) {
		int ws, r = waitpid(t->pid, &ws, WNOHANG);
		if (r == 0)
			return false;
		/* ECHILD: reaped elsewhere; the status file still tells the truth. */
		t->wstatus = r > 0 ? ws : -1;
		t->is_child = false;
		return true;
	}
	return !proc_alive(t->pid, t->starttime);
}

static void on_pidfd(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct local_try *t = arg;

	if (!supervisor_gone(t))
		return;
	try_unwatch(t);
	try_resolve(t);
}

static void on_poll(struct evloop *loop, void *arg)
{
	struct local_try *t = arg;

	t->timer = NULL;
	if (!supervisor_gone(t)) {
		t->timer = evloop_timer_in(loop, POLL_INTERVAL, on_poll, t);
		return;
	}
	try_resolve(t);
}

static void on_deferred(struct evloop *loop, void *arg)
{
	struct local_try *t = arg;

	t->timer = NULL;
	try_resolve(t);
}

/* Resolves the try from the loop, never from inside the caller (start/reattach contracts). */
static void try_defer(struct local_try *t)
{
	t->timer = evloop_timer_in(t->ls->ex->loop, 0, on_deferred, t);
}

/* Starts watching t->pid: a pidfd in the loop, or polling when no pidfd can be had. */
static void try_watch(struct local_try *t)
{
	struct evloop *loop = t->ls->ex->loop;
	int fd = sys_pidfd_open(t->pid);

	if (fd < 0 && errno == ESRCH) {
		try_defer(t);
		return;
	}
	/* The pidfd pins the process: re-checking the start time now rules out a reused pid. */
	if (!t->is_child && !proc_alive(t->pid, t->starttime)) {
		if (fd >= 0)
			close(fd);
		try_defer(t);
		return;
	}
	t->watched = true;
	if (fd >= 0 && evloop_add_fd(loop, fd, EPOLLIN, on_pidfd, t) == 0) {
		t->pidfd = fd;
		return;
	}
	if (fd >= 0)
		close(fd);
	t->timer = evloop_timer_in(loop, POLL_INTERVAL, on_poll, t);
}

/* Reads "<pid> <starttime>\n" from a pid file: -EAGAIN while it is still being written (the
 * supervisor creates it with O_EXCL, then writes the line). */
static int read_pid_file(const char *path, int *pid, unsigned long long *starttime)
{
	char *text = NULL;
	size_t len = 0;
	int rc = read_file(path, 256, &text, &len);

	if (rc < 0)
		return rc;
	if (len == 0 || text[len - 1] != '\n')
		rc = -EAGAIN;
	else if (sscanf(text, "%d %llu", pid, starttime) != 2 || *pid <= 0)
		rc = -EINVAL;
	free(text);
	return rc;
}

/* Follows the pid file to the supervisor that owns the try, when that is a live process other
 * than the one just watched (the case of a duplicate supervisor). Returns true when watching. */
static bool try_follow_pid_file(struct local_try *t)
{
	unsigned long long st;
	int pid;

	if (t->hops >= MAX_HOPS)
		return false;
	int rc = read_pid_file(t->pid_path, &pid, &st);
	if (rc == -EAGAIN && t->pid_waits < PID_WAITS) {
		t->pid_waits++;
		t->timer = evloop_timer_in(t->ls->ex->loop, PID_WAIT_US, on_deferred, t);
		return true;
	}
	if (rc < 0)
		return false;
	if ((pid == t->pid && st == t->starttime) || !proc_alive(pid, st))
		return false;
	t->hops++;
	t->pid = pid;
	t->starttime = st;
	t->is_child = false;
	try_watch(t);
	return true;
}

static void try_lost(struct local_try *t)
{
	struct exec_result res = { .kind = EXEC_END_LOST, .code = -1, .start = USEC_NONE,
				   .end = now_usec() };
	char how[64], *msg;

	/* The supervisor died without a status (kill -9, OOM): its command may still run, re-parented
	 * to init. It is killed before the try is reported, so that a retry never runs beside it. */
	int killed = exec_kill_session(t->pid);
	if (killed > 0)
		log_warnx("local: killed %d process%s of the lost supervisor %d's session", killed,
			  killed == 1 ? "" : "es", t->pid);
	describe_wstatus(t->wstatus, how, sizeof(how));
	if (t->watched)
		msg = xasprintf("the supervisor (pid %d) %s without writing a status file (%s)",
				t->pid, how, t->status_path);
	else
		msg = xasprintf("no status file (%s) and no running supervisor (pid %d, pid file %s)",
				t->status_path, t->pid, t->pid_path);
	res.message = msg;
	try_finish(t, &res);
	free(msg);
}

/* The watched supervisor is gone (or there was none): report the status it left, follow the
 * pid file to the supervisor that really owns the try, or report the try as lost. */
static void try_resolve(struct local_try *t)
{
	struct exec_result res;
	char *msg = NULL;
	int rc = exec_read_status(t->status_path, &res, &msg);

	if (rc == 0) {
		try_finish(t, &res);
		free(msg);
		return;
	}
	if (rc != -ENOENT)
		log_warnx("local: cannot read status file %s: %s", t->status_path, strerror(-rc));
	if (try_follow_pid_file(t))
		return;
	try_lost(t);
}

/* ---- starting ---- */

/* The supervisor's argv: sluice-shim options, "--", then the command. Caller frees the array. */
/* "UID:GID:G1,G2,..." of user, for the supervisor (which resolves no names itself). */
static int user_ids(const char *user, char *out, size_t n)
{
	struct passwd *pw = getpwnam(user);
	gid_t groups[64];
	int ng = 64;
	if (!pw)
		return -ENOENT;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0)
		ng = 0;
	size_t k = (size_t)snprintf(out, n, "%u:%u:", (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	for (int i = 0; i < ng && k + 16 < n; i++)
		k += (size_t)snprintf(out + k, n - k, "%s%u", i ? "," : "", (unsigned)groups[i]);
	return 0;
}

/* The supervisor's --rlimit NAME=N options for the limits spec sets, into av from n; returns n. */
static size_t rlimit_args(const struct exec_spec *spec, char **av, size_t n, char bufs[5][48])
{
	const struct {
		const char *name;
		long long v;
	} l[5] = {{"as", spec->rlimit_as}, {"cpu", spec->rlimit_cpu}, {"nofile", spec->rlimit_nofile},
		  {"nproc", spec->rlimit_nproc}, {"fsize", spec->rlimit_fsize}};
	for (size_t i = 0; i < 5; i++) {
		if (l[i].v <= 0)
			continue;
		snprintf(bufs[i], 48, "%s=%lld", l[i].name, l[i].v);
		av[n++] = "--rlimit";
		av[n++] = bufs[i];
	}
	return n;
}

static char **shim_argv(const char *shim, const struct exec_spec *spec, char *tbuf, char *gbuf, char *lbuf,
			char rbufs[5][48], const char *ubuf)
{
	size_t n = 0, argc = 0;
	char **av;

	while (spec->argv[argc])
		argc++;
	av = xmalloc((argc + 30) * sizeof(*av));
	av[n++] = (char *)shim;
	av[n++] = "--log";
	av[n++] = (char *)spec->log_path;
	av[n++] = "--status";
	av[n++] = (char *)spec->status_path;
	av[n++] = "--pid-file";
	av[n++] = (char *)spec->pid_path;
	if (spec->timeout > 0) {
		av[n++] = "--timeout";
		av[n++] = tbuf;
	}
	if (spec->kill_grace > 0) {
		av[n++] = "--grace";
		av[n++] = gbuf;
	}
	if (spec->cwd) {
		av[n++] = "--cwd";
		av[n++] = (char *)spec->cwd;
	}
	if (spec->sync_status)
		av[n++] = "--sync";
	if (spec->max_log_size > 0) {
		av[n++] = "--max-log-size";
		av[n++] = lbuf;
	}
	n = rlimit_args(spec, av, n, rbufs);
	if (spec->run_as) {
		av[n++] = "--user";
		av[n++] = (char *)ubuf;
		/* The user cannot reach the daemon's 0700 log folder: $SLUICE_OUTPUT is handed over open. */
		av[n++] = "--output-file";
		av[n++] = (char *)spec->output_path;
	}
	if (spec->mask_path) {
		av[n++] = "--mask-file";
		av[n++] = (char *)spec->mask_path;
	}
	av[n++] = "--";
	for (size_t i = 0; i < argc; i++)
		av[n++] = (char *)spec->argv[i];
	av[n] = NULL;
	return av;
}

/* The signals whose disposition in this process is not the default (ignored or caught), looked up
 * once, at the first spawn (the daemon has set its dispositions by then): resetting only those in
 * the child costs a few rt_sigaction calls where a full set costs ~60 per try. One changed later
 * is still reset for the command: the supervisor resets every signal before it execs it. */
static void changed_signals(sigset_t *set)
{
	sigemptyset(set);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
			continue;
		if (sa.sa_handler != SIG_DFL)
			sigaddset(set, sig);
	}
}

/* Spawn attributes: a new session, signals at their defaults, and SIGTERM/SIGINT/SIGCHLD blocked
 * so that a cancel arriving before the supervisor is ready waits for it instead of killing it. */
static int spawn_setup(struct local_state *ls, posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa)
{
	sigset_t mask;
	int rc;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	if (!ls->sigdef_ready) {
		changed_signals(&ls->sigdef);
		ls->sigdef_ready = true;
	}
	if ((rc = posix_spawnattr_init(attr)) != 0)
		return -rc;
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(attr, &mask);
	posix_spawnattr_setsigdefault(attr, &ls->sigdef);
	if ((rc = posix_spawn_file_actions_init(fa)) != 0) {
		posix_spawnattr_destroy(attr);
		return -rc;
	}
	posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
	return 0;
}

static int spawn_shim(struct local_state *ls, const struct exec_spec *spec, int *pid, char **err)
{
	char tbuf[32], gbuf[32], lbuf[32], rbufs[5][48], ubuf[1024], **av;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	char *const *envp = spec->envp ? (char *const *)spec->envp : environ;
	int rc;

	snprintf(tbuf, sizeof(tbuf), "%lld", (long long)spec->timeout);
	snprintf(gbuf, sizeof(gbuf), "%lld", (long long)spec->kill_grace);
	snprintf(lbuf, sizeof(lbuf), "%lld", spec->max_log_size);
	rc = spawn_setup(ls, &attr, &fa);
	if (rc < 0) {
		*err = xasprintf("cannot set up posix_spawn: %s", strerror(-rc));
		return rc;
	}
	if (spec->run_as && user_ids(spec->run_as, ubuf, sizeof(ubuf)) < 0) {
		*err = xasprintf("run_as: no user '%s' on this host", spec->run_as);
		return -ENOENT;
	}
	av = shim_argv(ls->shim, spec, tbuf, gbuf, lbuf, rbufs, ubuf);
	rc = posix_spawn(pid, ls->shim, &fa, &attr, av, envp);
	if (rc != 0) {
		*err = xasprintf("cannot start %s: %s", ls->shim, strerror(rc));
		rc = -rc;
	}
	free(av);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

static int local_start(struct executor *ex, uint64_t token, const struct exec_spec *spec,
		       char **external_id, int *pid, char **err)
{
	struct local_state *ls = ex->state;
	struct local_try *t;
	unsigned long long st = 0;
	usec_t now = now_usec();
	int rc, child;

	if (!spec->argv || !spec->argv[0] || !spec->log_path || !spec->status_path ||
	    !spec->pid_path) {
		*err = xasprintf("local: a command, a log, a status and a pid file path are required");
		return -EINVAL;
	}
	if (ls->running >= ex->parallelism) {
		*err = xasprintf("local: all %d slots are busy", ex->parallelism);
		return -EAGAIN;
	}
	if (try_find(ls, token)) {
		*err = xasprintf("local: try %llu is already running", (unsigned long long)token);
		return -EEXIST;
	}
	rc = spawn_shim(ls, spec, &child, err);
	if (rc < 0)
		return rc;
	/* Our unreaped child: its /proc entry exists until we wait for it. */
	if (exec_proc_starttime(child, &st, NULL) < 0)
		log_warnx("local: cannot read the start time of supervisor %d", child);
	t = try_new(ls, token, spec);
	t->pid = child;
	t->starttime = st;
	t->is_child = true;
	t->started = now;
	try_watch(t);
	*external_id = xasprintf("%d:%llu", child, st);
	*pid = child;
	return 0;
}

/* ---- the other operations ---- */

static int local_reattach(struct executor *ex, uint64_t token, const struct exec_spec *spec,
			  const char *external_id)
{
	struct local_state *ls = ex->state;
	struct local_try *t;
	unsigned long long st = 0;
	int pid = 0;

	if (!spec->status_path || !spec->pid_path)
		return -EINVAL;
	if (try_find(ls, token))
		return -EEXIST;
	if (external_id && sscanf(external_id, "%d:%llu", &pid, &st) != 2)
		pid = 0;
	t = try_new(ls, token, spec);
	t->pid = pid;
	t->starttime = st;
	if (access(t->status_path, F_OK) != 0 && proc_alive(pid, st))
		try_watch(t);
	else
		try_defer(t); /* finished, owned by whoever the pid file names, or lost */
	return 0;
}

static int local_cancel(struct executor *ex, uint64_t token)
{
	struct local_try *t = try_find(ex->state, token);

	if (!t)
		return -ENOENT;
	if (t->pidfd >= 0)
		return sys_pidfd_send_signal(t->pidfd, SIGTERM) < 0 ? -errno : 0;
	if (t->pid > 0 && (t->is_child || proc_alive(t->pid, t->starttime)))
		return kill(t->pid, SIGTERM) < 0 ? -errno : 0;
	return 0; /* about to be reported anyway */
}

static int local_free_slots(struct executor *ex)
{
	struct local_state *ls = ex->state;
	int n = ex->parallelism - ls->running;

	return n > 0 ? n : 0;
}

static int local_init(struct executor *ex, char **err)
{
	struct local_state *ls;
	char *dir = NULL, *shim;

	if (ex->shim_path) {
		shim = xstrdup(ex->shim_path);
	} else {
		dir = exe_dir();
		shim = xasprintf("%s/sluice-shim", dir ? dir : ".");
		free(dir);
	}
	if (access(shim, X_OK) < 0) {
		int rc = -errno;
		*err = xasprintf("local executor: cannot execute supervisor %s: %s", shim,
				 strerror(errno));
		free(shim);
		return rc;
	}
	ls = xcalloc(1, sizeof(*ls));
	ls->ex = ex;
	ls->shim = shim;
	ex->state = ls;
	return 0;
}

/* Forgets every try without touching it: the supervisors keep running and a later daemon
 * re-attaches to them. */
static void local_shutdown(struct executor *ex)
{
	struct local_state *ls = ex->state;

	if (!ls)
		return;
	while (ls->tries)
		try_free(ls->tries);
	free(ls->shim);
	free(ls);
	ex->state = NULL;
}

const struct executor_ops exec_local_ops = {
	.name = "local",
	.init = local_init,
	.shutdown = local_shutdown,
	.start = local_start,
	.cancel = local_cancel,
	.reattach = local_reattach,
	.free_slots = local_free_slots,
};
