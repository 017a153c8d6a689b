#include "orchestrator/dag_probe.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

extern char **environ;

/* How long past the file's own wall-clock cap the child may take to answer (start-up, GC). */
#define ANSWER_MARGIN (2 * USEC_PER_SEC)

struct dag_probe {
	char *exe;
	pid_t pid;
	int fd;            /* our end of the socket pair; -1 without a child */
	bool warned;       /* "cannot start" said once */
	bool spoiled;      /* a request was cut short: the child is stopped after its next answer */
};

static usec_t wall_of(const struct dag_lua_limits *lim)
{
	return lim && lim->wall ? lim->wall : DAG_LUA_DEFAULT_WALL;
}

struct dag_probe *dag_probe_new(const char *exe)
{
	struct dag_probe *p = xcalloc(1, sizeof(*p));
	p->exe = xstrdup(exe);
	p->fd = -1;
	return p;
}

static void stop_child(struct dag_probe *p, bool kill_it)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (p->pid > 0) {
		if (kill_it)
			kill(p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	p->pid = 0;
	p->spoiled = false;
}

void dag_probe_stop(struct dag_probe *p)
{
	stop_child(p, true);
}

void dag_probe_free(struct dag_probe *p)
{
	if (!p)
		return;
	stop_child(p, false); /* closing its socket ends it */
	free(p->exe);
	free(p);
}

static int start_child(struct dag_probe *p, char **err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		*err = xasprintf("cannot create a socket pair: %s", strerror(errno));
		return -ENOSYS;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	/* The child's end becomes fd 3 (dup2 clears close-on-exec); nothing else is inherited. */
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	char *argv[] = {p->exe, "__dag-probe", "3", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, p->exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		*err = xasprintf("cannot start %s __dag-probe: %s", p->exe, strerror(rc));
		return -ENOSYS;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	p->fd = sv[0];
	p->pid = pid;
	return 0;
}

/* Sends or receives len bytes by the monotonic deadline. Returns 0, -ETIMEDOUT, -EPIPE (the
 * child went away) or -errno. */
static int xfer(int fd, void *buf, size_t len, bool out, usec_t deadline)
{
	char *b = buf;
	while (len) {
		ssize_t n = out ? send(fd, b, len, MSG_NOSIGNAL) : recv(fd, b, len, 0);
		if (n > 0) {
			b += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return errno == ECONNRESET ? -EPIPE : -errno;
		usec_t left = deadline - mono_usec();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pf = {fd, out ? POLLOUT : POLLIN, 0};
		if (poll(&pf, 1, (int)(left / 1000) + 1) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Reads a header line (at most cap - 1 bytes, '\n' excluded) by the deadline. */
static int read_line(int fd, char *buf, size_t cap, usec_t deadline)
{
	size_t n = 0;
	for (;;) {
		char c;
		int rc = xfer(fd, &c, 1, false, deadline);
		if (rc < 0)
			return rc;
		if (c == '\n')
			break;
		if (n + 1 >= cap)
			return -EPROTO;
		buf[n++] = c;
	}
	buf[n] = 0;
	return 0;
}

int dag_probe_send(struct dag_probe *p, const char *path, const char *display, const char *content, size_t len,
		   const char *lib_dir, const struct dag_lua_limits *lim, usec_t busy_since, char **err)
{
	*err = NULL;
	if (p->fd < 0 && start_child(p, err) < 0) {
		if (!p->warned)
			log_warnx("DAG files are loaded without the parse probe: %s", *err);
		p->warned = true;
		return -ENOSYS;
	}
	usec_t deadline = busy_since + wall_of(lim) + ANSWER_MARGIN;
	size_t plen = strlen(path), dlen = strlen(display), llen = lib_dir ? strlen(lib_dir) + 1 : 0;
	char head[256];
	int hl = snprintf(head, sizeof(head), "%zu %zu %zu %zu %zu %llu %llu\n", plen, dlen, llen, len,
			  lim ? lim->memory : 0, lim ? (unsigned long long)lim->instructions : 0ULL,
			  (unsigned long long)wall_of(lim));
	int rc = xfer(p->fd, head, (size_t)hl, true, deadline);
	if (rc == 0)
		rc = xfer(p->fd, (void *)path, plen, true, deadline);
	if (rc == 0)
		rc = xfer(p->fd, (void *)display, dlen, true, deadline);
	if (rc == 0 && llen)
		rc = xfer(p->fd, (void *)lib_dir, llen - 1, true, deadline);
	if (rc == 0)
		rc = xfer(p->fd, (void *)content, len, true, deadline);
	if (rc == 0)
		return 0;
	/* Half a request may be in the socket: this child takes no more. A timeout means it is still
	 * busy with the oldest file it has, whose answer dag_probe_recv() waits for (by the same
	 * deadline); a dead child is found there too. */
	p->spoiled = true;
	*err = xasprintf("cannot hand %s to the parse probe: %s", display, strerror(-rc));
	return rc == -ETIMEDOUT ? -ETIMEDOUT : -EPIPE;
}

int dag_probe_recv(struct dag_probe *p, const char *display, const struct dag_lua_limits *lim, usec_t busy_since,
		   char **err, int *line, bool *lost_rest)
{
	*err = NULL;
	*line = 0;
	*lost_rest = false;
	if (p->fd < 0) {
		*lost_rest = true;
		*err = xasprintf("the parse probe is not running");
		return -ENOSYS;
	}
	usec_t wall = wall_of(lim), deadline = busy_since + wall + ANSWER_MARGIN;
	char ans[64];
	int rc = read_line(p->fd, ans, sizeof(ans), deadline);
	int ok = -1, eline = 0;
	size_t elen = 0;
	char *e = NULL;
	if (rc == 0 && (sscanf(ans, "%d %d %zu", &ok, &eline, &elen) != 3 || elen > (1u << 20)))
		rc = -EPROTO;
	if (rc == 0 && ok != 0) {
		e = xmalloc(elen + 1);
		rc = xfer(p->fd, e, elen, false, deadline);
		e[elen] = 0;
	}
	if (rc == 0) {
		if (p->spoiled) {
			stop_child(p, true);
			*lost_rest = true;
		}
		if (!e)
			return 0;
		*err = e;
		*line = eline;
		return -EINVAL;
	}
	free(e);
	*lost_rest = true;
	if (rc == -ETIMEDOUT) {
		stop_child(p, true);
		char d[32];
		format_duration(wall, d, sizeof(d));
		*err = xasprintf("%s: the file did not finish loading within %s and was stopped (time spent inside "
				 "one library call, such as string.find or string.gsub with a pattern that backtracks, "
				 "cannot be interrupted otherwise)", display, d);
		return -EINVAL;
	}
	/* The child died on this file (a crash or a signal): the file would have taken the
	 * daemon with it. */
	int status = 0;
	pid_t pid = p->pid;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->spoiled = false;
	bool reaped = pid > 0 && waitpid(pid, &status, 0) == pid;
	p->pid = 0;
	/* Whatever went wrong, the file is not loaded in the daemon: it may be what did it. */
	if (rc == -EPIPE && reaped && WIFSIGNALED(status))
		*err = xasprintf("%s: loading the file crashed the parse process (signal %d, %s)", display,
				 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (rc == -EPIPE && reaped && WIFEXITED(status))
		*err = xasprintf("%s: the parse process exited with status %d while loading the file", display,
				 WEXITSTATUS(status));
	else
		*err = xasprintf("%s: the parse process failed while loading the file (%s)", display,
				 rc == -EPROTO ? "a garbled answer" : strerror(-rc));
	return -EINVAL;
}

/* The child --------------------------------------------------------------------------------- */

static char *read_part(int fd, size_t n)
{
	char *b = xmalloc(n + 1);
	if (xfer(fd, b, n, false, mono_usec() + 3600 * USEC_PER_SEC) < 0) {
		free(b);
		return NULL;
	}
	b[n] = 0;
	return b;
}

int dag_probe_serve(int fd)
{
	/* Gone with the daemon, whatever the daemon's end. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 0;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (;;) {
		char head[256];
		/* Idle between requests for as long as the daemon likes. */
		if (read_line(fd, head, sizeof(head), mono_usec() + 365LL * 24 * 3600 * USEC_PER_SEC) < 0)
			return 0;
		size_t plen, dlen, llen, clen, mem;
		unsigned long long instr, wall;
		if (sscanf(head, "%zu %zu %zu %zu %zu %llu %llu", &plen, &dlen, &llen, &clen, &mem, &instr, &wall) != 7 ||
		    plen > 65536 || dlen > 65536 || llen > 65537 || clen > (64u << 20))
			return 1;
		char *path = read_part(fd, plen), *display = read_part(fd, dlen);
		char *lib = llen ? read_part(fd, llen - 1) : NULL, *content = read_part(fd, clen);
		if (!path || !display || (llen && !lib) || !content)
			return 1;
		struct dag_lua_limits lim = {mem, instr, (usec_t)wall};
		struct dag_load ld;
		int rc = dag_lua_load(path, display, content, clen, lib, &lim, &ld);
		const char *e = rc < 0 && ld.error ? ld.error : "";
		char ans[64];
		int al = snprintf(ans, sizeof(ans), "%d %d %zu\n", rc < 0 ? 1 : 0, rc < 0 ? ld.error_line : 0,
				  rc < 0 ? strlen(e) : 0);
		int w = xfer(fd, ans, (size_t)al, true, mono_usec() + 60 * USEC_PER_SEC);
		if (w == 0 && rc < 0)
			w = xfer(fd, (void *)e, strlen(e), true, mono_usec() + 60 * USEC_PER_SEC);
		dag_load_clear(&ld);
		free(path);
		free(display);
		free(lib);
		free(content);
		if (w < 0)
			return 0;
	}
}
