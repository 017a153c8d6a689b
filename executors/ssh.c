/* The `ssh` backend: tries run on other machines through the OpenSSH client, so that agents,
 * known_hosts and ssh_config work as the user has them.
 *
 * Per host the daemon keeps one ControlMaster connection (ssh -M -f -N, socket under the
 * backend's state folder, ControlPersist so that a restarted daemon finds it again) and, over
 * it, one long-lived session running the agent (SSH_AGENT in ssh_scripts.h, a POSIX sh
 * program). The daemon writes requests to the agent's stdin, one line each (start, watch,
 * cancel, poll, clean up), and reads its answers, framed and tagged with the try's key: log
 * chunks, the $SLUICE_OUTPUT file, the status. The agent starts each try's supervisor (a fork of
 * itself, detached: the try survives the connection, the agent and the daemon), which runs the
 * command with setsid and writes the try's status file atomically in the try's remote folder,
 * then tells the agent, which reports the end at once. Every POLL_EVERY the daemon asks the agent
 * for the new part of running tries' logs (and its answer shows that the connection lives).
 *
 * When the agent's session ends (a lost connection, the master killed, a daemon restart), a new
 * agent re-attaches every try that may have started ("W KEY OFFSET", from the log offset the
 * daemon has, kept in the try's local pid file). When the host cannot be reached again within
 * connect_timeout, its tries fail as lost (retryable) with the reason; other hosts go on.
 *
 * Invariants:
 *  - Every ssh process is a child of the daemon watched through a pidfd; the short ones have a
 *    deadline after which they are SIGKILLed, the agent an answer deadline (ACK_LIMIT beyond
 *    connect_timeout) after which it and its master are ended: nothing can hang the loop or a host.
 *  - A try is in ss->tries from start()/reattach() until just before on_end, and counts
 *    towards its host's `running` for that whole time.
 *  - The local status file is written before on_end and before the remote folder is removed:
 *    once it exists it is the result (reattach() reads it first).
 *  - The remote folder is claimed by exactly one of: the supervisor, a re-attach that found the
 *    try never started, a cancel that came first. So a try runs at most once.
 *  - A try whose start request may have reached the agent (t->job is NULL from then on) is only
 *    ever watched again, never started again.
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
#include "base/trylog.h"
#include "executors/ssh_scripts.h"

extern char **environ;

#define CALL_LIMIT (30 * USEC_PER_SEC)     /* a short call (the master's check) beyond connecting */
#define ACK_LIMIT (2 * USEC_PER_SEC)       /* an agent's answer may take this beyond connect_timeout */
#define AGENT_BRIEF (2 * USEC_PER_SEC)    /* an agent that ended sooner after its start is restarted later */
#define BACKOFF_MIN (1 * USEC_PER_SEC)
#define BACKOFF_MAX (30 * USEC_PER_SEC)
#define POLL_EVERY (500 * 1000LL)   /* logs of running tries streamed this often */
#define CLEAN_DELAY (1 * USEC_PER_SEC) /* finished tries' folders are removed in batches */
#define CLEAN_BATCH 2000                  /* bytes of keys that make a batch at once */
#define ERR_KEEP 4096                      /* bytes of a call's stderr kept for messages */
#define FRAME_HEAD_MAX 160

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
	bool keep_in;               /* stdin stays open when all is written (the agent) */
	struct strbuf err;          /* its stderr, the first ERR_KEEP bytes */
	struct ev_timer *deadline;
	proc_out_cb on_out;
	proc_exit_cb on_exit;
	void *arg;
};

enum master_state { M_DOWN, M_CHECKING, M_CONNECTING, M_UP };
enum agent_state { A_DOWN, A_STARTING, A_UP };

struct ssh_try;

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
	struct strbuf cleanup;      /* finished tries' keys whose remote folders are to go */
	/* The agent. */
	enum agent_state astate;
	struct ssh_proc *agent;
	char *agent_error;          /* an "E" line of the agent */
	usec_t agent_retry_at, agent_backoff, agent_up_at; /* monotonic */
	struct ev_timer *kick_timer;  /* a new agent is due */
	struct ev_timer *clean_timer; /* the next batch of folders to remove */
	struct ev_timer *poll_timer;  /* the next poll */
	struct ev_timer *ack_timer;   /* the agent's answer deadline */
	bool poll_out;              /* a P was sent, its A not yet read */
	/* The answer parser. */
	char head[FRAME_HEAD_MAX];
	size_t head_len;
	char frame;                 /* 'L', 'O' in a payload, 'S' in a status's lines, else 0 */
	long long left;             /* payload bytes still to come */
	struct ssh_try *ft;         /* the frame's try (NULL: not ours any more, skipped) */
	struct ssh_host *next;
};

enum try_phase { T_WAIT, T_SENT };

struct ssh_try {
	struct ssh_state *ss;
	struct ssh_host *host;
	uint64_t token;
	char key[33];               /* the remote folder's name */
	char *status_path, *pid_path, *log_path, *out_path, *mask_path;
	char *job;                  /* the start request (NULL: re-attach only) */
	usec_t timeout, grace;
	usec_t started;             /* wall clock */
	enum try_phase phase;
	struct ev_timer *timer;     /* a zero-delay re-attach */
	bool cancelled, kill_sent, reported_loss;
	struct strbuf status;
	int log_fd, out_fd;
	long long offset;           /* bytes of the remote log the local log has */
	long long written, max_log; /* bytes written to the local log; its cap (0 = none) */
	bool capped;
	struct masker mask;          /* the try's secrets, written as *** in its log */
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

static void host_kick(struct ssh_host *h);
static void host_clean(struct ssh_host *h);
static void agent_send(struct ssh_host *h, const char *text);

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
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			if (n <= 0)
				break;
			p->in_off += (size_t)n;
		}
		if (p->keep_in && p->in_off == p->in.len && !(events & (EPOLLERR | EPOLLHUP))) {
			sb_reset(&p->in);
			p->in_off = 0;
			evloop_mod_fd(p->ss->ex->loop, fd, 0); /* until there is more to send */
			return;
		}
		proc_close_fd(p, &p->in_fd); /* all sent (or the reader is gone): EOF */
		return;
	}
	if (!proc_drain(p, fd))
		proc_close_fd(p, fd == p->out_fd ? &p->out_fd : &p->err_fd);
}

/* Queues text for the child's stdin (kept open: keep_in) and writes what it can now. */
static void proc_send(struct ssh_proc *p, const char *text)
{
	if (p->in_fd < 0)
		return; /* the child is going; its end is on its way through the pidfd */
	if (p->in_off == p->in.len) {
		sb_reset(&p->in);
		p->in_off = 0;
	}
	bool idle = p->in.len == 0;
	sb_puts(&p->in, text);
	if (idle)
		evloop_mod_fd(p->ss->ex->loop, p->in_fd, EPOLLOUT);
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

/* The master may have died since: a socket that vanished means a new connection. */
static void host_check_socket(struct ssh_host *h)
{
	if (h->mstate == M_UP && access(h->ctl, F_OK) != 0)
		h->mstate = M_DOWN;
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

/* ---- the try list ---- */

static struct ssh_try *try_find(struct ssh_state *ss, uint64_t token)
{
	for (struct ssh_try *t = ss->tries; t; t = t->next)
		if (t->token == token)
			return t;
	return NULL;
}

static void try_free(struct ssh_try *t)
{
	struct ssh_state *ss = t->ss;

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
	masker_free(&t->mask);
	sb_free(&t->status);
	free(t->status_path);
	free(t->pid_path);
	free(t->log_path);
	free(t->out_path);
	free(t->mask_path);
	free(t->job);
	free(t);
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
	masker_load(&t->mask, t->mask_path);
	t->next = ss->tries;
	if (ss->tries)
		ss->tries->prev = t;
	ss->tries = t;
	ss->running++;
	h->running++;
	return t;
}

/* "ssh HOST KEY OFFSET 0": what a restarted daemon needs to re-attach. */
static int try_save(struct ssh_try *t)
{
	char *text = xasprintf("ssh %s %s %lld 0\n", t->host->name, t->key,
			       t->offset - (long long)masker_pending(&t->mask));
	int rc = write_file_atomic(t->pid_path, text, strlen(text), false);

	free(text);
	return rc;
}

/* ---- the log: masked, capped, appended ---- */

static void log_write(struct ssh_try *t, const char *p, size_t n)
{
	trylog_append(t->log_fd, t->log_path, "ssh", p, n, t->max_log, &t->written, &t->capped);
}

/* Log bytes from the remote side: every secret written as ***; the last (longest secret - 1)
 * bytes wait for more (a secret may be split across frames) unless this is the end. */
static void log_feed(struct ssh_try *t, const char *p, size_t n, bool final)
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

/* ---- the job sent to the remote side ---- */

/* Appends s as one shell word on one line: newlines become "$_sluice_nl" (which the job defines). */
static void sh_quote_line(struct strbuf *sb, const char *s, bool *nl)
{
	sb_putc(sb, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sb_puts(sb, "'\\''");
		else if (*s == '\n') {
			sb_puts(sb, "'\"$_sluice_nl\"'");
			*nl = true;
		} else
			sb_putc(sb, *s);
	}
	sb_putc(sb, '\'');
}

/* The job: the try's variables, limits, folder and command, as one line of sh (the agent gets
 * it in its start request and writes it to the try's job file). */
static char *job_text(const struct exec_spec *spec)
{
	struct strbuf sb = {0};
	static const char *const lim[] = {"-v", "-t", "-n"};
	long long v[] = {spec->rlimit_as / 1024, spec->rlimit_cpu, spec->rlimit_nofile};
	bool nl = false;

	for (size_t i = 0; spec->task_envp && spec->task_envp[i]; i++) {
		const char *kv = spec->task_envp[i], *eq = strchr(kv, '=');
		size_t k = eq ? (size_t)(eq - kv) : 0;
		if (!k || strspn(kv, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != k ||
		    !strncmp(kv, "SLUICE_OUTPUT=", 14))
			continue;
		sb_printf(&sb, "export %.*s=", (int)k, kv);
		sh_quote_line(&sb, eq + 1, &nl);
		sb_puts(&sb, "; ");
	}
	sb_puts(&sb, "SLUICE_OUTPUT=\"$PWD/out\"; export SLUICE_OUTPUT; ");
	for (size_t i = 0; i < 3; i++)
		if (v[i] > 0)
			sb_printf(&sb, "ulimit %s %lld || { echo 'sluice: cannot set a resource limit'; exit 127; }; ",
				  lim[i], v[i]);
	if (spec->cwd) {
		sb_puts(&sb, "cd ");
		sh_quote_line(&sb, spec->cwd, &nl);
		sb_puts(&sb, " || exit 127; ");
	}
	sb_puts(&sb, "exec");
	for (size_t i = 0; spec->argv[i]; i++) {
		sb_putc(&sb, ' ');
		sh_quote_line(&sb, spec->argv[i], &nl);
	}
	struct strbuf out = {0};
	if (nl)
		sb_puts(&out, "_sluice_nl=$(printf '\\nx'); _sluice_nl=${_sluice_nl%x}; ");
	sb_puts(&out, sb_str(&sb));
	sb_free(&sb);
	return sb_steal(&out);
}

/* ---- the agent: one session per host, requests in, framed answers out ---- */

static bool host_has_tries(const struct ssh_host *h, enum try_phase phase)
{
	for (const struct ssh_try *t = h->ss->tries; t; t = t->next)
		if (t->host == h && t->phase == phase)
			return true;
	return false;
}

static void host_cancel_timer(struct ssh_host *h, struct ev_timer **tm)
{
	if (*tm)
		evloop_timer_cancel(h->ss->ex->loop, *tm);
	*tm = NULL;
}

static void on_kick_timer(struct evloop *loop, void *arg)
{
	struct ssh_host *h = arg;

	h->kick_timer = NULL;
	host_kick(h);
}

static void host_kick_at(struct ssh_host *h, usec_t when)
{
	if (!h->kick_timer)
		h->kick_timer = evloop_timer_in(h->ss->ex->loop, when > mono_usec() ? when - mono_usec() : 0,
						on_kick_timer, h);
}

/* Every try of h that waits for the host ends as lost: the host cannot be reached. A try that
 * surely never started says so; one that may run there says that too (its retry may run while
 * it still does, on a host the daemon cannot see). */
static void host_fail_waiting(struct ssh_host *h)
{
	const char *why = h->error ? h->error : "ssh: the host cannot be reached";

	for (;;) {
		struct ssh_try *t = h->ss->tries;
		while (t && (t->host != h || t->phase != T_WAIT || t->timer))
			t = t->next; /* (a try with a timer reads its local status first: on_deferred) */
		if (!t)
			break;
		char *msg = t->job ? xstrdup(why)
				   : xasprintf("%s (the try had started there; it is given up, and may still be "
					       "running if the host is only cut off)", why);
		try_lost(t, msg);
		free(msg);
	}
}

/* The request that (re-)attaches t, then its cancel when one is due. */
static void try_send(struct ssh_try *t)
{
	struct ssh_host *h = t->host;
	struct strbuf sb = {0};

	if (t->job) {
		char tmo[32], grace[32], human[32], ts[ISO_BUFSZ];
		fmt_seconds(t->timeout, tmo, sizeof(tmo));
		fmt_seconds(t->grace, grace, sizeof(grace));
		format_duration(t->timeout, human, sizeof(human));
		for (char *c = human; *c; c++)
			if (*c == ' ' || *c == '\t')
				*c = '_';
		format_iso8601_z(now_usec(), ts, sizeof(ts));
		char *note = xasprintf("[%s] sluice: ssh: running on host %s (remote folder %s/%s)\n", ts, h->name,
				       t->ss->remote_dir, t->key);
		log_write(t, note, strlen(note));
		free(note);
		sb_printf(&sb, "S %s %s %s %s %s\n", t->key, tmo, grace, *human ? human : "-", t->job);
		free(t->job); /* from now on only re-attach: the start may have happened */
		t->job = NULL;
	} else {
		sb_printf(&sb, "W %s %lld\n", t->key, t->offset - (long long)masker_pending(&t->mask));
	}
	if (t->cancelled) {
		sb_printf(&sb, "K %s\n", t->key);
		t->kill_sent = true;
	}
	t->phase = T_SENT;
	agent_send(h, sb_str(&sb));
	sb_free(&sb);
}

static void on_poll_timer(struct evloop *loop, void *arg);

/* The next poll (POLL_EVERY from now), when the agent watches tries. Ended tries need none:
 * their supervisors tell the agent, which reports them at once. */
static void poll_soon(struct ssh_host *h)
{
	if (h->astate != A_UP || h->poll_out || h->poll_timer || !host_has_tries(h, T_SENT))
		return;
	h->poll_timer = evloop_timer_in(h->ss->ex->loop, POLL_EVERY, on_poll_timer, h);
}

static void agent_down(struct ssh_host *h, const char *why, bool end_master);

static void on_ack_timer(struct evloop *loop, void *arg)
{
	struct ssh_host *h = arg;
	char why[160];

	h->ack_timer = NULL;
	snprintf(why, sizeof(why), "no answer over the connection for %lld s",
		 (long long)((h->ss->connect_timeout + ACK_LIMIT) / USEC_PER_SEC));
	agent_down(h, why, true);
}

static void ack_deadline(struct ssh_host *h)
{
	host_cancel_timer(h, &h->ack_timer);
	h->ack_timer = evloop_timer_in(h->ss->ex->loop, h->ss->connect_timeout + ACK_LIMIT, on_ack_timer, h);
}

static void on_poll_timer(struct evloop *loop, void *arg)
{
	struct ssh_host *h = arg;

	h->poll_timer = NULL;
	if (h->astate != A_UP || h->poll_out)
		return;
	h->poll_out = true;
	agent_send(h, "P\n");
	ack_deadline(h);
}

static void agent_send(struct ssh_host *h, const char *text)
{
	if (h->agent)
		proc_send(h->agent, text);
}

static struct ssh_try *host_try(struct ssh_host *h, const char *key)
{
	for (struct ssh_try *t = h->ss->tries; t; t = t->next)
		if (t->host == h && t->phase == T_SENT && !strcmp(t->key, key))
			return t;
	return NULL;
}

/* One answer line of the agent. */
static void agent_line(struct ssh_host *h, char *line)
{
	char op = line[0], key[40] = "";
	long long n = -1;

	if (h->frame == 'S') {
		struct ssh_try *t = h->ft;
		if (strcmp(line, ".") != 0) {
			if (t && t->status.len < 65536)
				sb_printf(&t->status, "%s\n", line);
			return;
		}
		h->frame = 0;
		h->ft = NULL;
		if (t)
			try_collect(t);
		return;
	}
	if (!strcmp(line, "H")) {
		h->astate = A_UP;
		h->agent_up_at = mono_usec();
		host_cancel_timer(h, &h->ack_timer);
		host_kick(h);
		return;
	}
	if (!strcmp(line, "A")) {
		h->poll_out = false;
		host_cancel_timer(h, &h->ack_timer);
		poll_soon(h);
		return;
	}
	if (op == 'E' && line[1] == ' ') {
		free(h->agent_error);
		h->agent_error = xstrdup(line + 2);
		log_warnx("ssh: host %s: %s", h->name, line + 2);
		return;
	}
	if (op && line[1] == ' ' && strchr("GLOS", op) && sscanf(line + 2, "%39s %lld", key, &n) >= 1) {
		struct ssh_try *t = host_try(h, key);
		if (op == 'G') {
			if (t)
				try_lost(t, "ssh: the remote try was given up before it started");
			return;
		}
		if (op == 'S') {
			h->frame = 'S';
			h->ft = t;
			if (t)
				sb_reset(&t->status);
			return;
		}
		if (n < 0)
			goto bad;
		h->frame = op;
		h->left = n;
		h->ft = t;
		if (op == 'O' && t && t->out_path) {
			if (t->out_fd >= 0)
				close(t->out_fd);
			t->out_fd = open(t->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		}
		if (n == 0)
			h->frame = 0;
		return;
	}
bad:
	log_warnx("ssh: host %s: unknown answer from the agent: %.80s", h->name, line);
}

static void on_agent_out(struct ssh_proc *p, const char *data, size_t n)
{
	struct ssh_host *h = p->arg;

	while (n > 0) {
		if (h->frame == 'L' || h->frame == 'O') {
			size_t k = (size_t)h->left < n ? (size_t)h->left : n;
			struct ssh_try *t = h->ft;
			if (t && h->frame == 'L')
				log_feed(t, data, k, false);
			else if (t && t->out_fd >= 0 && write(t->out_fd, data, k) < 0)
				log_warn("ssh: cannot write %s", t->out_path);
			data += k;
			n -= k;
			h->left -= (long long)k;
			if (h->left == 0) {
				if (t && h->frame == 'L')
					try_save(t);
				h->frame = 0;
				h->ft = NULL;
			}
			continue;
		}
		const char *nl = memchr(data, '\n', n);
		size_t k = nl ? (size_t)(nl - data) : n;
		size_t room = FRAME_HEAD_MAX - 1 - h->head_len;
		memcpy(h->head + h->head_len, data, k < room ? k : room);
		h->head_len += k < room ? k : room;
		data += k;
		n -= k;
		if (!nl)
			break;
		data++;
		n--;
		h->head[h->head_len] = '\0';
		h->head_len = 0;
		agent_line(h, h->head);
		if (h->agent != p)
			return; /* the agent was ended meanwhile */
	}
}

/* Ends h's master (ssh -O exit over its socket, which answers even when the link is dead): a
 * master whose link is dead still answers -O check, so the next one must connect anew (and fails
 * within connect_timeout when the host stays unreachable). */
static void master_end(struct ssh_host *h)
{
	const char *ex[] = {"-O", "exit", NULL};
	char topt[48];
	char **av = ssh_argv(h, ex, NULL, topt);
	posix_spawn_file_actions_t fa;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "ssh", &fa, NULL, av, environ) == 0)
		wait_bounded(pid, mono_usec() + 2 * USEC_PER_SEC);
	posix_spawn_file_actions_destroy(&fa);
	free(av);
	unlink(h->ctl);
	h->mstate = M_DOWN;
	h->retry_at = 0;
}

/* The agent's session is over (or is ended here): tries it watched are re-attached by the next
 * agent; a host that cannot be reached fails them (host_kick). */
static void agent_down(struct ssh_host *h, const char *why, bool end_master)
{
	bool before = h->astate != A_UP;
	char *reason = xstrdup(why);

	if (h->agent) {
		h->agent->on_exit = NULL; /* no second report from its pidfd */
		proc_free(h->agent);
		h->agent = NULL;
	}
	h->astate = A_DOWN;
	h->poll_out = false;
	h->frame = 0;
	h->ft = NULL;
	h->head_len = 0;
	host_cancel_timer(h, &h->poll_timer);
	host_cancel_timer(h, &h->ack_timer);
	for (struct ssh_try *t = h->ss->tries; t; t = t->next) {
		if (t->host != h || t->phase != T_SENT)
			continue;
		t->phase = T_WAIT;
		t->kill_sent = false;
		sb_reset(&t->status);
		if (!t->reported_loss) {
			char *note = xasprintf("\nsluice: ssh: host %s: %s; re-attaching\n", h->name, reason);
			log_write(t, note, strlen(note));
			free(note);
			t->reported_loss = true;
		}
	}
	if (end_master)
		master_end(h);
	bool brief = !before && mono_usec() - h->agent_up_at < AGENT_BRIEF;
	if (before || brief) {
		/* It never became ready: the host is broken for us (a remote folder it cannot make,
		 * no sh), or the connection went while it started. One that ends right after it
		 * started is not restarted at once either (no busy loop of agents). */
		h->agent_backoff = h->agent_backoff ? h->agent_backoff * 2 : BACKOFF_MIN;
		if (h->agent_backoff > BACKOFF_MAX)
			h->agent_backoff = BACKOFF_MAX;
		h->agent_retry_at = mono_usec() + h->agent_backoff;
		if (before && !end_master && h->mstate == M_UP) {
			host_check_socket(h);
			if (h->mstate == M_UP) {
				free(h->error);
				h->error = xasprintf("ssh: host %s: %s", h->name, reason);
				log_warnx("%s", h->error);
				host_fail_waiting(h);
				free(h->error);
				h->error = NULL;
			}
		}
	} else {
		h->agent_retry_at = 0;
		h->agent_backoff = 0;
	}
	free(reason);
	host_check_socket(h);
	host_kick_at(h, h->agent_retry_at);
}

static void on_agent_exit(struct ssh_proc *p, int ws)
{
	struct ssh_host *h = p->arg;
	char line[512];

	if (h->agent_error)
		snprintf(line, sizeof(line), "%s", h->agent_error);
	else
		last_line(p->err.len ? p->err.buf : "", line, sizeof(line));
	if (!*line)
		snprintf(line, sizeof(line), "the connection ended (ssh exited with %d)",
			 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	free(h->agent_error);
	h->agent_error = NULL;
	p->on_exit = NULL;
	h->agent = NULL; /* proc_free() follows in on_proc_exit */
	agent_down(h, line, false);
}

static void agent_start(struct ssh_host *h)
{
	static const char *const extra[] = {"-o", "ControlMaster=no", "-T", NULL};
	struct strbuf cmd = {0};
	char topt[48], *err = NULL;

	sb_puts(&cmd, "exec sh -c ");
	struct strbuf script = {0};
	sb_puts(&script, SSH_FUNCTIONS);
	sb_puts(&script, SSH_SUPERVISOR);
	sb_puts(&script, SSH_AGENT);
	sb_puts(&script, SSH_AGENT_READER);
	sb_puts(&script, SSH_AGENT_LOOP);
	sh_quote(&cmd, sb_str(&script));
	sb_free(&script);
	sb_puts(&cmd, " sluice-agent ");
	sh_remote_dir(&cmd, h->ss->remote_dir);
	const char *remote[] = {cmd.buf, NULL};
	char **av = ssh_argv(h, extra, remote, topt);
	free(h->agent_error);
	h->agent_error = NULL;
	h->astate = A_STARTING;
	h->agent = proc_spawn(h->ss, av, "", on_agent_out, on_agent_exit, h, 0, &err);
	free(av);
	sb_free(&cmd);
	if (!h->agent) {
		h->astate = A_DOWN;
		free(h->error);
		h->error = xasprintf("ssh: host %s: %s", h->name, err);
		host_fail_waiting(h);
		free(h->error);
		h->error = NULL;
		free(err);
		return;
	}
	h->agent->keep_in = true;
	ack_deadline(h); /* the "H" */
}

/* The host's state changed: its master connects, its agent starts, waiting tries are sent to
 * it, or they fail with the host's error. */
static void host_kick(struct ssh_host *h)
{
	bool waiting = host_has_tries(h, T_WAIT);

	if (h->mstate == M_UP)
		host_check_socket(h);
	if (h->mstate == M_DOWN && (waiting || h->cleanup.len)) {
		if (h->error && mono_usec() < h->retry_at) {
			host_fail_waiting(h);
			return;
		}
		if (waiting)
			master_start(h);
	}
	if (h->mstate != M_UP) {
		if (h->mstate == M_DOWN && h->error)
			host_fail_waiting(h); /* the attempt just failed */
		return;
	}
	if (h->astate == A_DOWN) {
		if (!waiting)
			return;
		if (mono_usec() < h->agent_retry_at) {
			host_kick_at(h, h->agent_retry_at);
			return;
		}
		agent_start(h);
		return;
	}
	if (h->astate != A_UP)
		return;
	for (struct ssh_try *t = h->ss->tries; t; t = t->next)
		if (t->host == h && t->phase == T_WAIT && !t->timer)
			try_send(t);
	host_clean(h);
	poll_soon(h);
}

/* ---- removing finished tries' remote folders, batched per host ---- */

static void on_clean_timer(struct evloop *loop, void *arg)
{
	struct ssh_host *h = arg;

	h->clean_timer = NULL;
	if (!h->cleanup.len || h->astate != A_UP)
		return;
	char *line = xasprintf("C %s\n", sb_str(&h->cleanup));
	agent_send(h, line);
	free(line);
	sb_reset(&h->cleanup);
}

/* The folders go in batches (one rm for many tries): CLEAN_DELAY after the first, or at once
 * when many wait. */
static void host_clean(struct ssh_host *h)
{
	if (!h->cleanup.len || h->astate != A_UP)
		return;
	if (h->cleanup.len > CLEAN_BATCH) {
		host_cancel_timer(h, &h->clean_timer);
		on_clean_timer(h->ss->ex->loop, h);
	} else if (!h->clean_timer) {
		h->clean_timer = evloop_timer_in(h->ss->ex->loop, CLEAN_DELAY, on_clean_timer, h);
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
	int rc = try_save(t);
	if (rc < 0) {
		*err = xasprintf("ssh: cannot write %s: %s", t->pid_path, strerror(-rc));
		try_free(t);
		return rc;
	}
	*external_id = xasprintf("%s:%s", t->host->name, t->key);
	*pid = 0;
	t->phase = T_WAIT;
	host_kick(t->host); /* may end t at once (a host that is down): t is not used after this */
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
	host_kick(t->host);
}

static int ssh_reattach(struct executor *ex, uint64_t token, const struct exec_spec *spec,
			const char *external_id)
{
	struct ssh_state *ss = ex->state;
	char *text = NULL, host[256], key[64];
	long long off = 0, unused = 0;

	if (!spec->status_path || !spec->pid_path || !spec->log_path)
		return -EINVAL;
	if (try_find(ss, token))
		return -EEXIST;
	/* The pid file has it all; the external id ("HOST:KEY") names the try without the offset. */
	if (read_file(spec->pid_path, 4096, &text, NULL) < 0 ||
	    sscanf(text, "ssh %255s %63s %lld %lld", host, key, &off, &unused) < 3) {
		const char *colon = external_id ? strrchr(external_id, ':') : NULL;
		off = 0;
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
	t->phase = T_WAIT;
	t->timer = evloop_timer_in(ex->loop, 0, on_deferred, t); /* on_end never from here */
	return 0;
}

static int ssh_cancel(struct executor *ex, uint64_t token)
{
	struct ssh_try *t = try_find(ex->state, token);

	if (!t)
		return -ENOENT;
	t->cancelled = true;
	if (t->phase == T_WAIT && t->job) {
		/* Nothing was sent yet: it ends here, as a cancelled local try would. */
		struct exec_result res = {.kind = EXEC_END_SIGNALED, .code = SIGTERM, .start = USEC_NONE,
					  .end = now_usec(), .message = "cancelled before it started"};
		try_finish(t, &res);
		return 0;
	}
	if (t->phase == T_SENT && !t->kill_sent) {
		char line[48];
		snprintf(line, sizeof(line), "K %s\n", t->key);
		t->kill_sent = true;
		agent_send(t->host, line);
		poll_soon(t->host);
	}
	return 0; /* a try waiting to be re-attached gets its K with the W */
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

/* Removes the folders still to remove before the daemon goes (`dags test` ends right after its
 * run) and ends the agent, CLEAN_WAIT at most. The tries still running go on remotely. */
#define CLEAN_WAIT (5 * USEC_PER_SEC)
static void host_close(struct ssh_host *h)
{
	struct ssh_proc *p = h->agent;

	if (!p)
		return;
	if (p->in_fd >= 0 && h->astate == A_UP) {
		struct strbuf sb = {0};
		usec_t until = mono_usec() + CLEAN_WAIT;
		sb_add(&sb, p->in.buf ? p->in.buf + p->in_off : "", p->in.len - p->in_off);
		if (h->cleanup.len)
			sb_printf(&sb, "C %s\n", sb_str(&h->cleanup));
		sb_puts(&sb, "Q\n");
		for (size_t off = 0; off < sb.len && mono_usec() < until;) {
			ssize_t n = write(p->in_fd, sb.buf + off, sb.len - off);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				usleep(1000);
				continue;
			}
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		sb_free(&sb);
		evloop_del_fd(h->ss->ex->loop, p->in_fd);
		close(p->in_fd);
		p->in_fd = -1;
		wait_bounded(p->pid, until);
		p->pid = 0;
	}
	p->on_exit = NULL;
	proc_free(p);
	h->agent = NULL;
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
		host_close(h);
		if (h->mproc)
			proc_free(h->mproc);
		host_cancel_timer(h, &h->kick_timer);
		host_cancel_timer(h, &h->clean_timer);
		host_cancel_timer(h, &h->poll_timer);
		host_cancel_timer(h, &h->ack_timer);
		sb_free(&h->cleanup);
		free(h->name);
		free(h->ctl);
		free(h->mlog);
		free(h->error);
		free(h->agent_error);
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
