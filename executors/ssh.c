/* The `ssh` backend: tries run on other machines through the OpenSSH client, so that agents,
 * known_hosts and ssh_config work as the user has them.
 *
 * Per host the daemon keeps one ControlMaster connection (ssh -M -f -N, socket under the
 * backend's state folder, ControlPersist so that a restarted daemon finds it again); every
 * other ssh call is a multiplexed session over it. A try is one session that sends a POSIX sh
 * program (ssh_scripts.h): it claims the try's remote folder with mkdir, starts the supervisor
 * detached with setsid (the try survives the connection and the daemon), then stays as the
 * watcher that streams the log in frames and ends with the status. When that session ends
 * without the status (a lost connection, a daemon restart), a new watcher re-attaches from the
 * log offset the daemon has, which it keeps in the try's local pid file.
 *
 * Invariants:
 *  - Every ssh process is a child of the daemon watched through a pidfd, and every one has a
 *    deadline after which it is SIGKILLed: no call can hang the loop or a host.
 *  - A try is in ss->tries from start()/reattach() until just before on_end, and counts
 *    towards its host's `running` for that whole time.
 *  - The local status file is written before on_end and before the remote folder is removed:
 *    once it exists it is the result (reattach() reads it first).
 *  - The remote folder is claimed by exactly one of: the supervisor, a re-attach that found the
 *    try never started, a cancel that came first. So a try runs at most once.
 */
#include "executors/executor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "executors/ssh_scripts.h"

extern char **environ;

#define CALL_LIMIT (30 * USEC_PER_SEC)     /* a short call (check, kill, clean-up) beyond connecting */
#define BACKOFF_MIN (1 * USEC_PER_SEC)
#define BACKOFF_MAX (30 * USEC_PER_SEC)
#define ERR_KEEP 4096                      /* bytes of a call's stderr kept for messages */
#define FRAME_HEAD_MAX 64

struct ssh_state;
struct ssh_proc;
typedef void (*proc_out_cb)(struct ssh_proc *p, const char *data, size_t n);
typedef void (*proc_exit_cb)(struct ssh_proc *p, int wstatus);

/* One ssh child: its pipes, a pidfd and a deadline. Freed by proc_free() only. */
struct ssh_proc {
	struct ssh_state *ss;
	pid_t pid;
	int pidfd, in_fd, out_fd, err_fd;
	struct strbuf in;           /* still to write to its stdin */
	size_t in_off;
	struct strbuf err;          /* its stderr, the first ERR_KEEP bytes */
	struct ev_timer *deadline;
	proc_out_cb on_out;
	proc_exit_cb on_exit;
	void *arg;
};

enum master_state { M_DOWN, M_CHECKING, M_CONNECTING, M_UP };

struct ssh_host {
	struct ssh_state *ss;
	char *name;
	char *ctl;                  /* ControlPath */
	char *mlog;                 /* the master's -E log */
	int slots, running;
	enum master_state mstate;
	struct ssh_proc *mproc;     /* the check or the connecting master */
	usec_t retry_at;            /* M_DOWN after a failure: no new attempt before (monotonic) */
	usec_t backoff;
	char *error;                /* why the last connection failed; NULL when it did not */
	struct strbuf cleanup;      /* remote folders to remove, shell-quoted, space-separated */
	struct ssh_proc *cproc;     /* the clean-up call under way */
	struct ssh_host *next;
};

enum try_phase { T_WAIT_MASTER, T_SESSION, T_BACKOFF };

struct ssh_try {
	struct ssh_state *ss;
	struct ssh_host *host;
	uint64_t token;
	char key[33];               /* the remote folder's name */
	char *status_path, *pid_path, *log_path, *out_path, *mask_path;
	char *job;                  /* the launch's job file (NULL: re-attach) */
	usec_t timeout, grace;
	usec_t started, give_up_at; /* wall clock; give_up_at 0 = never */
	enum try_phase phase;
	struct ssh_proc *proc;      /* the session (launch + watcher, or watcher) */
	struct ssh_proc *kproc;     /* a cancel under way */
	struct ev_timer *timer;     /* T_BACKOFF, or a zero-delay end */
	bool cancelled, hello, gone, reported_loss;
	usec_t backoff;
	/* The frame parser. */
	char head[FRAME_HEAD_MAX];
	size_t head_len;
	char frame;                 /* 'L', 'O', 'S' while in a frame's payload, else 0 */
	long long left;             /* payload bytes still to come */
	struct strbuf status;
	int log_fd, out_fd;
	long long offset;           /* bytes of the remote log the local log has */
	long long written, max_log; /* bytes written to the local log; its cap (0 = none) */
	bool capped;
	char **masks;
	size_t nmasks, keep;
	struct strbuf carry;        /* received, not yet written: may start a secret */
	struct ssh_try *prev, *next;
};

struct ssh_state {
	struct executor *ex;
	char *config_file;          /* ssh -F; NULL = the user's */
	char *remote_dir;
	int default_slots;
	usec_t connect_timeout;
	struct ssh_host *hosts;
	struct ssh_try *tries;
	int running;
	unsigned rr;
};

static void try_begin_session(struct ssh_try *t);
static void host_kick(struct ssh_host *h);
static void host_clean(struct ssh_host *h);

/* ---- small helpers ---- */

static int sys_pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Appends s to sb as one shell word in single quotes. */
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

/* The remote folder as a shell word: "~/x" becomes "$HOME"/'x', the rest is quoted. */
static void sh_remote_dir(struct strbuf *sb, const char *dir)
{
	if (!strncmp(dir, "~/", 2)) {
		sb_puts(sb, "\"$HOME\"/");
		sh_quote(sb, dir + 2);
	} else {
		sh_quote(sb, dir);
	}
}

/* Seconds with a fraction, as sleep takes them: "1.5", "30". */
static void fmt_seconds(usec_t us, char *buf, size_t n)
{
	if (us % USEC_PER_SEC == 0)
		snprintf(buf, n, "%lld", (long long)(us / USEC_PER_SEC));
	else
		snprintf(buf, n, "%.6f", (double)us / 1e6);
}

/* The last non-empty line of text (for messages), copied into buf. */
static void last_line(const char *text, char *buf, size_t n)
{
	const char *end = text + strlen(text), *start;

	while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	start = end;
	while (start > text && start[-1] != '\n')
		start--;
	snprintf(buf, n, "%.*s", (int)(end - start), start);
}

/* ---- ssh children ---- */

static void proc_free(struct ssh_proc *p)
{
	struct evloop *loop = p->ss->ex->loop;
	int *fds[] = {&p->pidfd, &p->in_fd, &p->out_fd, &p->err_fd};

	if (p->deadline)
		evloop_timer_cancel(loop, p->deadline);
	for (size_t i = 0; i < 4; i++) {
		if (*fds[i] < 0)
			continue;
		evloop_del_fd(loop, *fds[i]);
		close(*fds[i]);
	}
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	sb_free(&p->in);
	sb_free(&p->err);
	free(p);
}

static void proc_close_fd(struct ssh_proc *p, int *fd)
{
	evloop_del_fd(p->ss->ex->loop, *fd);
	close(*fd);
	*fd = -1;
}

/* Reads what fd has; returns false at its end. */
static bool proc_drain(struct ssh_proc *p, int fd)
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
		if (fd == p->out_fd && p->on_out)
			p->on_out(p, buf, (size_t)n);
		else if (fd == p->err_fd && p->err.len < ERR_KEEP)
			sb_add(&p->err, buf, (size_t)n);
	}
}

static void on_proc_fd(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct ssh_proc *p = arg;

	if (fd == p->in_fd) {
		while (p->in_off < p->in.len) {
			ssize_t n = write(fd, p->in.buf + p->in_off, p->in.len - p->in_off);
			if (n < 0 && errno == EAGAIN)
				return;
			if (n <= 0)
				break;
			p->in_off += (size_t)n;
		}
		proc_close_fd(p, &p->in_fd); /* all sent (or the reader is gone): EOF for sh -s */
		return;
	}
	if (!proc_drain(p, fd))
		proc_close_fd(p, fd == p->out_fd ? &p->out_fd : &p->err_fd);
}

/* The child ended: what its pipes still hold is read first, then on_exit, then it is freed. */
static void on_proc_exit(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct ssh_proc *p = arg;
	int ws = 0;

	if (waitpid(p->pid, &ws, WNOHANG) == 0)
		return;
	p->pid = 0;
	if (p->out_fd >= 0)
		proc_drain(p, p->out_fd);
	if (p->err_fd >= 0)
		proc_drain(p, p->err_fd);
	p->on_exit(p, ws);
	proc_free(p);
}

static void on_proc_deadline(struct evloop *loop, void *arg)
{
	struct ssh_proc *p = arg;

	p->deadline = NULL;
	sb_puts(&p->err, "\nsluice: the ssh call took too long and was killed\n");
	kill(p->pid, SIGKILL); /* on_proc_exit follows through the pidfd */
}

/* A pipe for the child's fd `child_fd`; our end non-blocking and close-on-exec. */
static int proc_pipe(posix_spawn_file_actions_t *fa, int child_fd, int *ours, int *theirs)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	*ours = child_fd == 0 ? p[1] : p[0];
	*theirs = child_fd == 0 ? p[0] : p[1];
	fcntl(*ours, F_SETFL, O_NONBLOCK);
	posix_spawn_file_actions_adddup2(fa, *theirs, child_fd);
	return 0;
}

static int proc_watch(struct ssh_proc *p, usec_t limit)
{
	struct evloop *loop = p->ss->ex->loop;
	int rc = 0;

	p->pidfd = sys_pidfd_open(p->pid);
	if (p->pidfd < 0)
		return -errno;
	rc |= evloop_add_fd(loop, p->pidfd, EPOLLIN, on_proc_exit, p);
	if (p->in_fd >= 0)
		rc |= evloop_add_fd(loop, p->in_fd, EPOLLOUT, on_proc_fd, p);
	if (p->out_fd >= 0)
		rc |= evloop_add_fd(loop, p->out_fd, EPOLLIN, on_proc_fd, p);
	rc |= evloop_add_fd(loop, p->err_fd, EPOLLIN, on_proc_fd, p);
	if (limit > 0)
		p->deadline = evloop_timer_in(loop, limit, on_proc_deadline, p);
	return rc ? -EIO : 0;
}

/* Starts ssh with argv; stdin gets `input` (NULL: /dev/null), stdout goes to on_out (NULL:
 * /dev/null). Returns the child, or NULL with *err set. */
static struct ssh_proc *proc_spawn(struct ssh_state *ss, char **argv, const char *input,
				   proc_out_cb on_out, proc_exit_cb on_exit, void *arg, usec_t limit,
				   char **err)
{
	struct ssh_proc *p = xcalloc(1, sizeof(*p));
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int theirs[3] = {-1, -1, -1}, rc = 0;

	*p = (struct ssh_proc){.ss = ss, .pidfd = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1,
			       .on_out = on_out, .on_exit = on_exit, .arg = arg};
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* A process group of its own: a Ctrl-C meant for the daemon does not cut its sessions. */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	if (input) {
		rc = proc_pipe(&fa, 0, &p->in_fd, &theirs[0]);
		sb_puts(&p->in, input);
	} else {
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	}
	if (rc == 0 && on_out)
		rc = proc_pipe(&fa, 1, &p->out_fd, &theirs[1]);
	else if (rc == 0)
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (rc == 0)
		rc = proc_pipe(&fa, 2, &p->err_fd, &theirs[2]);
	if (rc == 0 && (rc = posix_spawnp(&p->pid, argv[0], &fa, &attr, argv, environ)) != 0)
		rc = -rc;
	for (int i = 0; i < 3; i++)
		if (theirs[i] >= 0)
			close(theirs[i]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc == 0 && (rc = proc_watch(p, limit)) == 0)
		return p;
	*err = xasprintf("cannot run %s: %s", argv[0], strerror(-rc));
	if (p->pid <= 0)
		p->pid = 0;
	proc_free(p);
	return NULL;
}

/* ---- the ssh command line ---- */

/* argv of `ssh [common options] EXTRA... -- HOST REMOTE...` (caller frees the array only). */
static char **ssh_argv(struct ssh_host *h, const char *const *extra, const char *const *remote,
		       char timeout_opt[48])
{
	struct ssh_state *ss = h->ss;
	size_t n = 0, ne = 0, nr = 0;

	while (extra && extra[ne])
		ne++;
	while (remote && remote[nr])
		nr++;
	char **av = xcalloc(20 + ne + nr, sizeof(char *));
	snprintf(timeout_opt, 48, "ConnectTimeout=%lld",
		 (long long)((ss->connect_timeout + USEC_PER_SEC - 1) / USEC_PER_SEC));
	av[n++] = "ssh";
	if (ss->config_file) {
		av[n++] = "-F";
		av[n++] = ss->config_file;
	}
	av[n++] = "-o";
	av[n++] = "BatchMode=yes";
	av[n++] = "-o";
	av[n++] = timeout_opt;
	av[n++] = "-o";
	av[n++] = "ServerAliveInterval=5";
	av[n++] = "-o";
	av[n++] = "ServerAliveCountMax=3";
	av[n++] = "-S";
	av[n++] = h->ctl;
	for (size_t i = 0; i < ne; i++)
		av[n++] = (char *)extra[i];
	av[n++] = "--";
	av[n++] = h->name;
	for (size_t i = 0; i < nr; i++)
		av[n++] = (char *)remote[i];
	return av;
}

/* Runs `sh -s` on h's master with script on stdin. */
static struct ssh_proc *ssh_script(struct ssh_host *h, const char *script, proc_out_cb on_out,
				   proc_exit_cb on_exit, void *arg, usec_t limit, char **err)
{
	static const char *const extra[] = {"-o", "ControlMaster=no", "-T", NULL};
	static const char *const remote[] = {"sh", "-s", NULL};
	char topt[48];
	char **av = ssh_argv(h, extra, remote, topt);
	struct ssh_proc *p = proc_spawn(h->ss, av, script, on_out, on_exit, arg, limit, err);

	free(av);
	return p;
}

/* Whether an ssh failure happened before a session opened (so nothing ran remotely). */
static bool before_session(const char *err)
{
	static const char *const marks[] = {
		"ssh: connect to host", "Could not resolve hostname", "Connection refused",
		"Permission denied", "Host key verification failed", "No route to host",
		"banner exchange", "kex_exchange_identification", "Connection timed out",
		"Bad owner or permissions", "Can't open user config file", "Bad configuration option",
		"session request failed", "Too many authentication failures", "Network is unreachable",
	};
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(err, marks[i]))
			return true;
	return false;
}

/* ---- hosts and their master connections ---- */

static struct ssh_host *host_get(struct ssh_state *ss, const char *name)
{
	struct ssh_host *h;
	char hash[65], key[300];

	for (h = ss->hosts; h; h = h->next)
		if (!strcmp(h->name, name))
			return h;
	h = xcalloc(1, sizeof(*h));
	h->ss = ss;
	h->name = xstrdup(name);
	sha256_hex(name, strlen(name), hash);
	h->ctl = xasprintf("%s/%.16s.sock", ss->ex->state_dir, hash);
	h->mlog = xasprintf("%s/%.16s.log", ss->ex->state_dir, hash);
	snprintf(key, sizeof(key), "host.%s.slots", name);
	h->slots = atoi(executor_setting(ss->ex, key, "0"));
	if (h->slots <= 0)
		h->slots = ss->default_slots;
	h->next = ss->hosts;
	ss->hosts = h;
	return h;
}

static void host_set_error(struct ssh_host *h, const char *why)
{
	free(h->error);
	h->error = xasprintf("ssh: host %s: %s", h->name, why);
	h->mstate = M_DOWN;
	h->backoff = h->backoff ? h->backoff * 2 : BACKOFF_MIN;
	if (h->backoff > BACKOFF_MAX)
		h->backoff = BACKOFF_MAX;
	h->retry_at = mono_usec() + h->backoff;
	log_warnx("%s", h->error);
}

/* The master's log says why it could not connect. */
static void master_failed(struct ssh_host *h, const struct ssh_proc *p, int ws)
{
	char *text = NULL, line[512];

	if (read_file(h->mlog, 1 << 16, &text, NULL) < 0 || !*text) {
		free(text);
		text = xstrdup(p->err.len ? p->err.buf : "");
	}
	last_line(text, line, sizeof(line));
	if (!*line)
		snprintf(line, sizeof(line), "the connection failed (ssh exited with %d)",
			 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	host_set_error(h, line);
	free(text);
}

static void on_master_exit(struct ssh_proc *p, int ws)
{
	struct ssh_host *h = p->arg;
	bool ok = WIFEXITED(ws) && WEXITSTATUS(ws) == 0;

	h->mproc = NULL;
	if (h->mstate == M_CHECKING && !ok) {
		/* A socket without a live master (the master was killed): start a new one. */
		unlink(h->ctl);
		h->mstate = M_DOWN;
		h->retry_at = 0;
	} else if (ok) {
		h->mstate = M_UP;
		h->backoff = 0;
		free(h->error);
		h->error = NULL;
	} else {
		master_failed(h, p, ws);
	}
	host_kick(h);
}

/* Starts the master (ssh -M -f -N: the foreground ssh exits 0 once it is connected and the
 * socket listens, or non-zero when it cannot connect), or checks one an earlier daemon left. */
static void master_start(struct ssh_host *h)
{
	const char *check[] = {"-O", "check", NULL};
	const char *start[] = {"-M", "-f", "-N", "-n", "-o", "ControlPersist=600", "-E", h->mlog, NULL};
	char topt[48], *err = NULL;
	struct stat sb;
	bool have = lstat(h->ctl, &sb) == 0;
	const char *const *extra = have ? check : start;

	if (!have && truncate(h->mlog, 0) < 0 && errno != ENOENT)
		log_warn("ssh: cannot truncate %s", h->mlog);
	char **av = ssh_argv(h, extra, NULL, topt);
	h->mstate = have ? M_CHECKING : M_CONNECTING;
	h->mproc = proc_spawn(h->ss, av, NULL, NULL, on_master_exit, h,
			      h->ss->connect_timeout + CALL_LIMIT, &err);
	free(av);
	if (!h->mproc) {
		host_set_error(h, err);
		free(err);
	}
}

/* The host's state changed: tries waiting for its master go on, or fail with its error. */
static void host_kick(struct ssh_host *h)
{
	struct ssh_state *ss = h->ss;

	if (h->mstate == M_DOWN && mono_usec() >= h->retry_at) {
		bool waiting = false;
		for (struct ssh_try *t = ss->tries; t && !waiting; t = t->next)
			waiting = t->host == h && t->phase == T_WAIT_MASTER;
		if (waiting)
			master_start(h);
	}
	if (h->mstate == M_CONNECTING || h->mstate == M_CHECKING)
		return;
	/* From the head each time: ending one try reports to the engine, which may end others. Each
	 * round takes one try out of T_WAIT_MASTER (or frees it). */
	for (;;) {
		struct ssh_try *t = ss->tries;
		while (t && (t->host != h || t->phase != T_WAIT_MASTER))
			t = t->next;
		if (!t)
			break;
		try_begin_session(t);
	}
	host_clean(h);
}

/* The master may have died since: a socket that vanished means a new connection. */
static void host_check_socket(struct ssh_host *h)
{
	if (h->mstate == M_UP && access(h->ctl, F_OK) != 0)
		h->mstate = M_DOWN;
}

/* ---- removing finished tries' remote folders, batched per host ---- */

static void on_clean_exit(struct ssh_proc *p, int ws)
{
	struct ssh_host *h = p->arg;

	h->cproc = NULL;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		log_debug("ssh: host %s: could not remove finished tries' folders", h->name);
	host_clean(h);
}

/* argv of the call that removes the folders in h->cleanup (which it empties); *cmd holds the
 * remote command line and must be freed with sb_free(). Caller frees the array. */
static char **clean_argv(struct ssh_host *h, struct strbuf *cmd, char topt[48])
{
	static const char *const extra[] = {"-o", "ControlMaster=no", "-n", NULL};

	sb_puts(cmd, "cd ");
	sh_remote_dir(cmd, h->ss->remote_dir);
	sb_printf(cmd, " && rm -rf -- %s", sb_str(&h->cleanup));
	sb_reset(&h->cleanup);
	const char *remote[] = {cmd->buf, NULL};
	return ssh_argv(h, extra, remote, topt);
}

static void host_clean(struct ssh_host *h)
{
	struct strbuf cmd = {0};
	char topt[48], *err = NULL;

	if (h->cproc || !h->cleanup.len || h->mstate != M_UP)
		return;
	char **av = clean_argv(h, &cmd, topt);
	h->cproc = proc_spawn(h->ss, av, NULL, NULL, on_clean_exit, h, CALL_LIMIT, &err);
	if (!h->cproc) {
		log_debug("ssh: %s", err);
		free(err);
	}
	free(av);
	sb_free(&cmd);
}

/* ---- the try list ---- */

static struct ssh_try *try_find(struct ssh_state *ss, uint64_t token)
{
	for (struct ssh_try *t = ss->tries; t; t = t->next)
		if (t->token == token)
			return t;
	return NULL;
}

static void free_masks(struct ssh_try *t)
{
	for (size_t i = 0; i < t->nmasks; i++) {
		explicit_bzero(t->masks[i], strlen(t->masks[i]));
		free(t->masks[i]);
	}
	free(t->masks);
	t->masks = NULL;
	t->nmasks = 0;
}

static void try_free(struct ssh_try *t)
{
	struct ssh_state *ss = t->ss;

	if (t->proc)
		proc_free(t->proc);
	if (t->kproc)
		proc_free(t->kproc);
	if (t->timer)
		evloop_timer_cancel(ss->ex->loop, t->timer);
	if (t->prev)
		t->prev->next = t->next;
	else
		ss->tries = t->next;
	if (t->next)
		t->next->prev = t->prev;
	ss->running--;
	t->host->running--;
	if (t->log_fd >= 0)
		close(t->log_fd);
	if (t->out_fd >= 0)
		close(t->out_fd);
	free_masks(t);
	sb_free(&t->carry);
	sb_free(&t->status);
	free(t->status_path);
	free(t->pid_path);
	free(t->log_path);
	free(t->out_path);
	free(t->mask_path);
	free(t->job);
	free(t);
}

/* Reads the secrets to mask (NUL-separated, as the local supervisor takes them). The file stays
 * until the try ends, so that a restarted daemon masks the rest of the log too. */
static void read_masks(struct ssh_try *t)
{
	char *text = NULL;
	size_t len = 0;

	if (!t->mask_path || read_file(t->mask_path, 1 << 16, &text, &len) < 0)
		return;
	for (size_t i = 0; i < len; i += strlen(text + i) + 1) {
		size_t l = strlen(text + i);
		if (l < 5) /* shorter values are not masked (as the local supervisor) */
			continue;
		t->masks = xrealloc(t->masks, (t->nmasks + 1) * sizeof(char *));
		t->masks[t->nmasks++] = xstrdup(text + i);
		if (l - 1 > t->keep)
			t->keep = l - 1;
	}
	explicit_bzero(text, len);
	free(text);
}

static struct ssh_try *try_new(struct ssh_state *ss, struct ssh_host *h, uint64_t token,
			       const struct exec_spec *spec)
{
	struct ssh_try *t = xcalloc(1, sizeof(*t));

	t->ss = ss;
	t->host = h;
	t->token = token;
	t->status_path = xstrdup(spec->status_path);
	t->pid_path = xstrdup(spec->pid_path);
	t->log_path = xstrdup(spec->log_path);
	t->out_path = spec->output_path ? xstrdup(spec->output_path) : NULL;
	t->mask_path = spec->mask_path ? xstrdup(spec->mask_path) : NULL;
	t->max_log = spec->max_log_size;
	t->timeout = spec->timeout;
	t->grace = spec->kill_grace > 0 ? spec->kill_grace : 10 * USEC_PER_SEC;
	t->started = USEC_NONE;
	t->out_fd = -1;
	t->log_fd = open(t->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (t->log_fd >= 0) {
		struct stat sb;
		if (fstat(t->log_fd, &sb) == 0)
			t->written = sb.st_size;
	}
	read_masks(t);
	t->next = ss->tries;
	if (ss->tries)
		ss->tries->prev = t;
	ss->tries = t;
	ss->running++;
	h->running++;
	return t;
}

/* "ssh HOST KEY OFFSET GIVE_UP_AT": what a restarted daemon needs to re-attach. */
static int try_save(struct ssh_try *t)
{
	char *text = xasprintf("ssh %s %s %lld %lld\n", t->host->name, t->key,
			       t->offset - (long long)t->carry.len, (long long)t->give_up_at);
	int rc = write_file_atomic(t->pid_path, text, strlen(text), false);

	free(text);
	return rc;
}

/* ---- the log: masked, capped, appended ---- */

static void log_write(struct ssh_try *t, const char *p, size_t n)
{
	if (t->capped || t->log_fd < 0 || n == 0)
		return;
	if (t->max_log > 0 && t->written + (long long)n > t->max_log) {
		char note[160];
		n = t->max_log > t->written ? (size_t)(t->max_log - t->written) : 0;
		int k = snprintf(note, sizeof(note), "\nsluice: the log reached core.max_log_size (%lld "
			 "bytes): the rest of the output is dropped\n", t->max_log);
		if (write(t->log_fd, p, n) < 0 || write(t->log_fd, note, (size_t)k) < 0)
			log_warn("ssh: cannot write %s", t->log_path);
		t->capped = true;
		return;
	}
	if (write(t->log_fd, p, n) < 0)
		log_warn("ssh: cannot write %s", t->log_path);
	t->written += (long long)n;
}

/* The longest secret at p (within n bytes), or 0. */
static size_t mask_at(const struct ssh_try *t, const char *p, size_t n)
{
	size_t best = 0;

	for (size_t i = 0; i < t->nmasks; i++) {
		size_t l = strlen(t->masks[i]);
		if (l <= n && l > best && !memcmp(p, t->masks[i], l))
			best = l;
	}
	return best;
}

/* Log bytes from the remote side: every secret written as ***; the last (longest secret - 1)
 * bytes wait for more (a secret may be split across frames) unless this is the end. */
static void log_feed(struct ssh_try *t, const char *p, size_t n, bool final)
{
	t->offset += (long long)n;
	if (!t->nmasks) {
		log_write(t, p, n);
		return;
	}
	sb_add(&t->carry, p, n);
	size_t have = t->carry.len, upto = final ? have : have > t->keep ? have - t->keep : 0, i = 0;
	struct strbuf out = {0};
	while (i < upto) {
		size_t m = mask_at(t, t->carry.buf + i, have - i);
		if (m) {
			sb_puts(&out, "***");
			i += m;
		} else {
			sb_putc(&out, t->carry.buf[i++]);
		}
	}
	log_write(t, out.buf, out.len);
	sb_free(&out);
	memmove(t->carry.buf, t->carry.buf + i, have - i);
	t->carry.len = have - i;
	t->carry.buf[t->carry.len] = '\0';
}

/* ---- the end of a try ---- */

/* Reports the end (the try is freed first). The local status file is written before, so the
 * result survives a crash between now and the engine's commit. */
static void try_finish(struct ssh_try *t, struct exec_result *res)
{
	struct ssh_state *ss = t->ss;
	struct ssh_host *h = t->host;
	uint64_t token = t->token;

	if (res->start == USEC_NONE || res->start <= 0)
		res->start = t->started;
	if (t->mask_path)
		unlink(t->mask_path);
	if (t->key[0] && res->kind != EXEC_END_LOST) {
		sb_printf(&h->cleanup, "%s%s", h->cleanup.len ? " " : "", t->key);
	}
	try_free(t);
	host_clean(h);
	ss->ex->on_end(ss->ex->cb_arg, token, res);
}

static void try_lost(struct ssh_try *t, const char *why)
{
	struct exec_result res = {.kind = EXEC_END_LOST, .code = -1, .start = USEC_NONE,
				  .end = now_usec(), .message = why};
	try_finish(t, &res);
}

/* The status frame arrived: the log is complete; it becomes the local status file. */
static void try_collect(struct ssh_try *t)
{
	struct exec_result res;
	char *msg = NULL;
	int rc;

	log_feed(t, "", 0, true);
	if (t->out_fd >= 0) {
		close(t->out_fd);
		t->out_fd = -1;
	}
	rc = write_file_atomic(t->status_path, t->status.buf ? t->status.buf : "", t->status.len, true);
	if (rc == 0)
		rc = exec_read_status(t->status_path, &res, &msg);
	if (rc < 0) {
		char *why = xasprintf("host %s: unreadable status of the remote try (%s)", t->host->name,
				      strerror(-rc));
		try_lost(t, why);
		free(why);
		return;
	}
	try_finish(t, &res);
	free(msg);
}

/* ---- the session's frames ---- */

/* A frame header: "L n", "O n", "S n", "G" or "H". Returns false on a protocol error. */
static bool frame_head(struct ssh_try *t, const char *line)
{
	long long n = -1;

	if (!strcmp(line, "H")) {
		t->hello = true;
		return true;
	}
	if (!strcmp(line, "G")) {
		t->gone = true;
		return true;
	}
	if (strlen(line) < 3 || line[1] != ' ' || !strchr("LOS", line[0]) ||
	    sscanf(line + 2, "%lld", &n) != 1 || n < 0)
		return false;
	t->frame = line[0];
	t->left = n;
	if (t->frame == 'O' && t->out_path) {
		if (t->out_fd >= 0)
			close(t->out_fd);
		t->out_fd = open(t->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	}
	if (t->frame == 'S')
		sb_reset(&t->status);
	return true;
}

static void frame_payload(struct ssh_try *t, const char *p, size_t n)
{
	if (t->frame == 'L')
		log_feed(t, p, n, false);
	else if (t->frame == 'O' && t->out_fd >= 0 && write(t->out_fd, p, n) < 0)
		log_warn("ssh: cannot write %s", t->out_path);
	else if (t->frame == 'S' && t->status.len < 65536)
		sb_add(&t->status, p, n);
}

static void on_session_out(struct ssh_proc *p, const char *data, size_t n)
{
	struct ssh_try *t = p->arg;
	bool had_log = false;

	while (n > 0) {
		if (t->frame) {
			size_t k = (size_t)t->left < n ? (size_t)t->left : n;
			frame_payload(t, data, k);
			had_log |= t->frame == 'L';
			data += k;
			n -= k;
			t->left -= (long long)k;
			if (t->left == 0)
				t->frame = t->frame == 'S' ? 's' : 0; /* 's': the status is whole */
			continue;
		}
		if (data[0] == '\n') {
			t->head[t->head_len] = '\0';
			t->head_len = 0;
			if (!frame_head(t, t->head))
				sb_puts(&p->err, "\nsluice: the remote side sent an unknown frame\n");
		} else if (t->head_len < FRAME_HEAD_MAX - 1) {
			t->head[t->head_len++] = data[0];
		}
		data++;
		n--;
	}
	if (had_log)
		try_save(t);
}

static void on_backoff(struct evloop *loop, void *arg)
{
	struct ssh_try *t = arg;

	t->timer = NULL;
	t->phase = T_WAIT_MASTER;
	host_kick(t->host);
}

/* The try may run on its host, which cannot be reached now: a new re-attach after a pause (the
 * first time with a note in its log), or lost once its give-up time has passed. */
static void try_reattach_later(struct ssh_try *t, const char *why)
{
	if (t->give_up_at && now_usec() >= t->give_up_at) {
		char *msg = xasprintf("ssh: host %s: unreachable past the try's timeout: %s", t->host->name, why);
		try_lost(t, msg);
		free(msg);
		return;
	}
	if (!t->reported_loss) {
		char *note = xasprintf("\nsluice: ssh: host %s: %s; re-attaching\n", t->host->name, why);
		log_write(t, note, strlen(note));
		free(note);
		t->reported_loss = true;
	}
	free(t->job); /* from now on only re-attach: the launch may have happened */
	t->job = NULL;
	t->backoff = t->backoff ? t->backoff * 2 : BACKOFF_MIN;
	if (t->backoff > BACKOFF_MAX)
		t->backoff = BACKOFF_MAX;
	t->phase = T_BACKOFF;
	t->timer = evloop_timer_in(t->ss->ex->loop, t->backoff, on_backoff, t);
}

/* The session ended without the status: a connection lost, or a host that cannot be reached.
 * A try that surely never started fails now; one that may run is re-attached after a pause. */
static void session_broken(struct ssh_try *t, const struct ssh_proc *p, int ws)
{
	char line[512];

	last_line(p->err.len ? p->err.buf : "", line, sizeof(line));
	if (!*line)
		snprintf(line, sizeof(line), "the session ended (ssh exited with %d)",
			 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	if (strstr(p->err.buf ? p->err.buf : "", "Control socket") || WEXITSTATUS(ws) == 255)
		host_check_socket(t->host);
	bool never = t->job && !t->hello && before_session(p->err.buf ? p->err.buf : "");
	/* Exit 3: the program itself could not make or enter the try's folder. */
	bool refused = WIFEXITED(ws) && WEXITSTATUS(ws) == 3;
	if (never || refused || t->gone || (t->cancelled && !t->hello)) {
		char *why = t->gone ? xasprintf("host %s: the remote try was given up before it started",
						t->host->name)
				    : xasprintf("ssh: host %s: %s", t->host->name, line);
		try_lost(t, why);
		free(why);
		return;
	}
	try_reattach_later(t, line);
}

static void on_session_exit(struct ssh_proc *p, int ws)
{
	struct ssh_try *t = p->arg;

	t->proc = NULL;
	if (t->frame == 's') {
		try_collect(t);
		return;
	}
	t->frame = 0;
	t->head_len = 0;
	session_broken(t, p, ws);
}

/* ---- the programs sent to the remote side ---- */

/* The job file: the try's variables, limits, folder and command, as sh text. */
static char *job_text(const struct exec_spec *spec)
{
	struct strbuf sb = {0};
	static const char *const lim[] = {"-v", "-t", "-n"};
	long long v[] = {spec->rlimit_as / 1024, spec->rlimit_cpu, spec->rlimit_nofile};

	sb_puts(&sb, "rm -f \"$0\"\n");
	for (size_t i = 0; spec->task_envp && spec->task_envp[i]; i++) {
		const char *kv = spec->task_envp[i], *eq = strchr(kv, '=');
		size_t k = eq ? (size_t)(eq - kv) : 0;
		if (!k || strspn(kv, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != k ||
		    !strncmp(kv, "SLUICE_OUTPUT=", 14))
			continue;
		sb_printf(&sb, "export %.*s=", (int)k, kv);
		sh_quote(&sb, eq + 1);
		sb_putc(&sb, '\n');
	}
	sb_puts(&sb, "SLUICE_OUTPUT=\"$PWD/out\"; export SLUICE_OUTPUT\n");
	for (size_t i = 0; i < 3; i++)
		if (v[i] > 0)
			sb_printf(&sb, "ulimit %s %lld || { echo 'sluice: cannot set a resource limit'; exit 127; }\n",
				  lim[i], v[i]);
	if (spec->cwd) {
		sb_puts(&sb, "cd ");
		sh_quote(&sb, spec->cwd);
		sb_puts(&sb, " || exit 127\n");
	}
	sb_puts(&sb, "exec");
	for (size_t i = 0; spec->argv[i]; i++) {
		sb_putc(&sb, ' ');
		sh_quote(&sb, spec->argv[i]);
	}
	sb_putc(&sb, '\n');
	return sb_steal(&sb);
}

/* A here-document delimiter that does not occur in text. */
static void heredoc_mark(const char *text, char mark[40])
{
	char hash[65];

	sha256_hex(text, strlen(text), hash);
	for (int salt = 0;; salt++) {
		snprintf(mark, 40, "SLUICE_%.16s_%d", hash, salt);
		if (!strstr(text, mark))
			return;
	}
}

static void add_heredoc(struct strbuf *sb, const char *file, const char *text)
{
	char mark[40];

	heredoc_mark(text, mark);
	sb_printf(sb, "cat > \"$D/%s\" <<'%s'\n%s%s\n", file, mark, text, mark);
}

/* The session's program: variables, then the launch (or the re-attach check), then the
 * watcher. */
static char *session_script(const struct ssh_try *t)
{
	struct strbuf sb = {0};
	char tmo[32], grace[32], human[32];

	sb_puts(&sb, "umask 077\nR=");
	sh_remote_dir(&sb, t->ss->remote_dir);
	sb_printf(&sb, "\nD=\"$R\"/%s\nOFF=%lld\necho H\n", t->key, t->offset - (long long)t->carry.len);
	sb_puts(&sb, SSH_FUNCTIONS);
	if (!t->job) {
		sb_puts(&sb, SSH_REATTACH);
	} else {
		fmt_seconds(t->timeout, tmo, sizeof(tmo));
		fmt_seconds(t->grace, grace, sizeof(grace));
		format_duration(t->timeout, human, sizeof(human));
		sb_puts(&sb, "mkdir -p \"$R\" || exit 3\nif mkdir \"$D\" 2>/dev/null; then\n");
		add_heredoc(&sb, "job", t->job);
		add_heredoc(&sb, "sup", SSH_SUPERVISOR);
		sb_puts(&sb, "if command -v setsid >/dev/null 2>&1; then\n");
		sb_printf(&sb, "setsid sh \"$D/sup\" \"$D\" %s %s '%s' </dev/null >/dev/null 2>&1 &\n", tmo,
			  grace, human);
		sb_puts(&sb, "else (cd \"$D\" && mkdir run && status exited 127 'setsid is not installed on this host'); fi\n");
		sb_puts(&sb, "fi\n");
	}
	sb_puts(&sb, SSH_WATCHER);
	return sb_steal(&sb);
}

/* Opens the session of t (the launch, or a re-attach). */
static void try_begin_session(struct ssh_try *t)
{
	struct ssh_host *h = t->host;
	char *err = NULL;

	if (h->mstate == M_DOWN && h->error) {
		if (t->job)
			try_lost(t, h->error); /* nothing was sent: it surely did not start */
		else
			try_reattach_later(t, h->error + strlen("ssh: host ") + strlen(h->name) + 2);
		return;
	}
	if (t->job && !t->hello) {
		char ts[ISO_BUFSZ];
		format_iso8601_z(now_usec(), ts, sizeof(ts));
		char *note = xasprintf("[%s] sluice: ssh: running on host %s (remote folder %s/%s)\n", ts, h->name,
				       t->ss->remote_dir, t->key);
		log_write(t, note, strlen(note));
		free(note);
	}
	char *script = session_script(t);
	t->phase = T_SESSION;
	t->hello = t->gone = false;
	t->proc = ssh_script(h, script, on_session_out, on_session_exit, t, 0, &err);
	free(script);
	if (!t->proc) {
		char *why = xasprintf("ssh: host %s: %s", h->name, err);
		try_lost(t, why);
		free(why);
		free(err);
	}
}

/* ---- choosing a host ---- */

/* The hosts of a task's options (ssh {"hosts": [...]}), or NULL. */
static const cJSON *option_hosts(const cJSON *options)
{
	const cJSON *hosts = options ? cJSON_GetObjectItemCaseSensitive(options, "hosts") : NULL;

	return cJSON_IsArray(hosts) && cJSON_GetArraySize(hosts) > 0 ? hosts : NULL;
}

/* A host is avoided while its last connection failed and no new attempt is due. */
static bool host_down(const struct ssh_host *h)
{
	return h->mstate == M_DOWN && h->error && mono_usec() < h->retry_at;
}

static int host_free(const struct ssh_host *h)
{
	return h->slots > h->running ? h->slots - h->running : 0;
}

/* The host with the most free slots among those that are not down (ties: round-robin); when
 * all are down, the next one round-robin (its try then fails with the host's error). */
static struct ssh_host *pick_host(struct ssh_state *ss, const cJSON *hosts)
{
	int n = cJSON_GetArraySize(hosts), best_free = -1;
	struct ssh_host *best = NULL;
	unsigned start = ss->rr++;

	for (int k = 0; k < n; k++) {
		const cJSON *name = cJSON_GetArrayItem(hosts, (int)((start + (unsigned)k) % (unsigned)n));
		if (!cJSON_IsString(name))
			continue;
		struct ssh_host *h = host_get(ss, name->valuestring);
		int f = host_down(h) ? -1 : host_free(h);
		if (!best || f > best_free) {
			best = h;
			best_free = f;
		}
	}
	return best;
}

/* ---- the operations ---- */

static void try_key(const struct exec_spec *spec, char key[33])
{
	char host[256] = "", hash[65];
	char *id;

	gethostname(host, sizeof(host) - 1);
	id = xasprintf("%s\n%s", host, spec->status_path);
	sha256_hex(id, strlen(id), hash);
	snprintf(key, 33, "%.32s", hash);
	free(id);
}

static int ssh_start(struct executor *ex, uint64_t token, const struct exec_spec *spec,
		     char **external_id, int *pid, char **err)
{
	struct ssh_state *ss = ex->state;
	const cJSON *hosts = option_hosts(spec->options);

	if (!spec->argv || !spec->argv[0] || !spec->log_path || !spec->status_path || !spec->pid_path) {
		*err = xasprintf("ssh: a command, a log, a status and a pid file path are required");
		return -EINVAL;
	}
	if (!hosts) {
		*err = xasprintf("ssh: the task names no host (host = \"alias\" or hosts = {...})");
		return -EINVAL;
	}
	if (spec->run_as) {
		*err = xasprintf("ssh: run_as is not supported (the remote user comes from the ssh configuration)");
		return -EINVAL;
	}
	if (try_find(ss, token)) {
		*err = xasprintf("ssh: try %llu is already running", (unsigned long long)token);
		return -EEXIST;
	}
	struct ssh_try *t = try_new(ss, pick_host(ss, hosts), token, spec);
	try_key(spec, t->key);
	t->job = job_text(spec);
	t->started = now_usec();
	if (t->timeout > 0)
		t->give_up_at = t->started + t->timeout + t->grace + 2 * ss->connect_timeout + 60 * USEC_PER_SEC;
	int rc = try_save(t);
	if (rc < 0) {
		*err = xasprintf("ssh: cannot write %s: %s", t->pid_path, strerror(-rc));
		try_free(t);
		return rc;
	}
	t->phase = T_WAIT_MASTER;
	host_check_socket(t->host);
	host_kick(t->host);
	*external_id = xasprintf("%s:%s", t->host->name, t->key);
	*pid = 0;
	return 0;
}

static void on_deferred(struct evloop *loop, void *arg)
{
	struct ssh_try *t = arg;
	struct exec_result res;
	char *msg = NULL;

	t->timer = NULL;
	if (exec_read_status(t->status_path, &res, &msg) == 0) {
		try_finish(t, &res);
		free(msg);
		return;
	}
	t->phase = T_WAIT_MASTER;
	host_check_socket(t->host);
	host_kick(t->host);
}

static int ssh_reattach(struct executor *ex, uint64_t token, const struct exec_spec *spec,
			const char *external_id)
{
	struct ssh_state *ss = ex->state;
	char *text = NULL, host[256], key[64];
	long long off = 0, give_up = 0;

	if (!spec->status_path || !spec->pid_path || !spec->log_path)
		return -EINVAL;
	if (try_find(ss, token))
		return -EEXIST;
	/* The pid file has it all; the external id ("HOST:KEY") names the try without the offset. */
	if (read_file(spec->pid_path, 4096, &text, NULL) < 0 ||
	    sscanf(text, "ssh %255s %63s %lld %lld", host, key, &off, &give_up) < 3) {
		const char *colon = external_id ? strrchr(external_id, ':') : NULL;
		off = give_up = 0;
		if (!colon || colon == external_id || (size_t)(colon - external_id) >= sizeof(host) ||
		    strlen(colon + 1) >= sizeof(key)) {
			free(text);
			return -ENOENT; /* the try never got as far as start() */
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - external_id), external_id);
		snprintf(key, sizeof(key), "%s", colon + 1);
	}
	free(text);
	if (strlen(key) != 32 || strspn(key, "0123456789abcdef") != 32)
		return -EINVAL;
	struct ssh_try *t = try_new(ss, host_get(ss, host), token, spec);
	memcpy(t->key, key, 33); /* 32 hex digits, checked above */
	t->offset = off;
	t->give_up_at = give_up;
	t->phase = T_BACKOFF;
	t->timer = evloop_timer_in(ex->loop, 0, on_deferred, t); /* on_end never from here */
	return 0;
}

static void on_kill_exit(struct ssh_proc *p, int ws)
{
	struct ssh_try *t = p->arg;

	t->kproc = NULL;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return; /* the watcher brings the end */
	char line[512];
	last_line(p->err.len ? p->err.buf : "", line, sizeof(line));
	char *note = xasprintf("\nsluice: ssh: host %s: cannot stop the remote try: %s\n", t->host->name,
			       *line ? line : "the call failed");
	log_write(t, note, strlen(note));
	free(note);
}

static int ssh_cancel(struct executor *ex, uint64_t token)
{
	struct ssh_try *t = try_find(ex->state, token);
	char *err = NULL;

	if (!t)
		return -ENOENT;
	t->cancelled = true;
	if (!t->proc && t->job) {
		/* Nothing was sent yet: it ends here, as a cancelled local try would. */
		struct exec_result res = {.kind = EXEC_END_SIGNALED, .code = SIGTERM, .start = USEC_NONE,
					  .end = now_usec(), .message = "cancelled before it started"};
		try_finish(t, &res);
		return 0;
	}
	if (t->kproc)
		return 0;
	struct strbuf sb = {0};
	sb_puts(&sb, "R=");
	sh_remote_dir(&sb, t->ss->remote_dir);
	sb_printf(&sb, "\nD=\"$R\"/%s\n%s", t->key, SSH_KILL);
	t->kproc = ssh_script(t->host, sb_str(&sb), NULL, on_kill_exit, t,
			      t->ss->connect_timeout + CALL_LIMIT, &err);
	sb_free(&sb);
	if (!t->kproc) {
		log_warnx("ssh: %s", err);
		free(err);
		return -EIO;
	}
	return 0;
}

static int ssh_free_slots(struct executor *ex)
{
	struct ssh_state *ss = ex->state;
	int n = ex->parallelism - ss->running;

	return n > 0 ? n : 0;
}

/* Free slots of the hosts a task may use; hosts that are down count only when all are. */
static int ssh_free_slots_for(struct executor *ex, const cJSON *options)
{
	struct ssh_state *ss = ex->state;
	const cJSON *hosts = option_hosts(options), *name;
	int up = 0, all = 0;

	if (!hosts)
		return ssh_free_slots(ex);
	cJSON_ArrayForEach(name, hosts) {
		if (!cJSON_IsString(name))
			continue;
		struct ssh_host *h = host_get(ss, name->valuestring);
		all += host_free(h);
		up += host_down(h) ? 0 : host_free(h);
	}
	int n = up > 0 ? up : all, cap = ssh_free_slots(ex);
	return n < cap ? n : cap;
}

static int ssh_init(struct executor *ex, char **err)
{
	struct ssh_state *ss;
	const char *cf = executor_setting(ex, "config_file", "");
	usec_t ct = 0;
	int rc;

	if (!ex->state_dir) {
		*err = xstrdup("ssh executor: no state folder for its control sockets");
		return -EINVAL;
	}
	if ((rc = mkdir_p(ex->state_dir, 0700)) < 0) {
		*err = xasprintf("ssh executor: cannot create %s: %s", ex->state_dir, strerror(-rc));
		return rc;
	}
	if (strlen(ex->state_dir) + 22 > 107) {
		*err = xasprintf("ssh executor: %s is too long a path for ssh's control sockets (at most 85 bytes)",
				 ex->state_dir);
		return -ENAMETOOLONG;
	}
	if (parse_duration(executor_setting(ex, "connect_timeout", "10s"), &ct) < 0 || ct <= 0)
		ct = 10 * USEC_PER_SEC;
	ss = xcalloc(1, sizeof(*ss));
	ss->ex = ex;
	ss->config_file = *cf ? xstrdup(cf) : NULL;
	ss->remote_dir = xstrdup(executor_setting(ex, "remote_dir", ".sluice/tries"));
	ss->default_slots = atoi(executor_setting(ex, "slots", "8"));
	if (ss->default_slots < 1)
		ss->default_slots = 8;
	ss->connect_timeout = ct;
	ex->state = ss;
	return 0;
}

/* Waits for pid at most until `until` (monotonic), then kills it. */
static void wait_bounded(pid_t pid, usec_t until)
{
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (mono_usec() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return;
		}
		usleep(5000);
	}
}

/* Removes the folders still to remove before the daemon goes (`dags test` ends right after its
 * run): the call under way is waited for, then one more for the rest, CLEAN_WAIT in all. */
#define CLEAN_WAIT (5 * USEC_PER_SEC)
static void host_clean_now(struct ssh_host *h)
{
	usec_t until = mono_usec() + CLEAN_WAIT;
	struct strbuf cmd = {0};
	char topt[48];
	pid_t pid;

	if (h->cproc) {
		wait_bounded(h->cproc->pid, until);
		h->cproc->pid = 0;
		proc_free(h->cproc);
		h->cproc = NULL;
	}
	if (!h->cleanup.len || h->mstate != M_UP)
		return;
	char **av = clean_argv(h, &cmd, topt);
	if (posix_spawnp(&pid, "ssh", NULL, NULL, av, environ) == 0)
		wait_bounded(pid, until);
	free(av);
	sb_free(&cmd);
}

/* Forgets every try without touching it: the remote supervisors keep running and a later
 * daemon re-attaches. The master connections stay too (ControlPersist), for that daemon. */
static void ssh_shutdown(struct executor *ex)
{
	struct ssh_state *ss = ex->state;

	if (!ss)
		return;
	while (ss->tries)
		try_free(ss->tries);
	while (ss->hosts) {
		struct ssh_host *h = ss->hosts;
		ss->hosts = h->next;
		host_clean_now(h);
		if (h->mproc)
			proc_free(h->mproc);
		sb_free(&h->cleanup);
		free(h->name);
		free(h->ctl);
		free(h->mlog);
		free(h->error);
		free(h);
	}
	free(ss->config_file);
	free(ss->remote_dir);
	free(ss);
	ex->state = NULL;
}

const struct executor_ops exec_ssh_ops = {
	.name = "ssh",
	.init = ssh_init,
	.shutdown = ssh_shutdown,
	.start = ssh_start,
	.cancel = ssh_cancel,
	.reattach = ssh_reattach,
	.free_slots = ssh_free_slots,
	.free_slots_for = ssh_free_slots_for,
};
