/* sluice-shim: the supervisor of one local task try.
 *
 * It claims the try through an exclusive pid file, leaves the daemon's session, runs the command
 * in its own process group with output appended to the try's log, enforces the timeout, forwards
 * SIGTERM/SIGINT (cancel) to the group and to every process below it (it is their subreaper, so a
 * daemonised grandchild in a session of its own stays below it), kills leftovers when the command
 * ends and finally writes
 * the status file atomically. The daemon may die at any point: the try goes on and its result
 * stays on disk.
 *
 * Deliberately libc-only and small so that exec'ing it costs little. All signals it cares about
 * stay blocked and are taken synchronously with sigtimedwait(), so there are no handlers and no
 * races between a signal and the state it changes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* close_range(2) through syscall(): musl, which the shim is built against where musl-gcc is
 * installed (its exec costs less), has no wrapper for it. */
static void close_from(unsigned int lo)
{
	syscall(SYS_close_range, lo, ~0U, 0);
}

/* Keep in sync with executor.h (this program includes nothing of sluice on purpose). */
#define SHIM_EXIT_DUPLICATE 252
#define SHIM_EXIT_SETUP_FAILED 253
#define SHIM_EXEC_FAILED 127

#define DEFAULT_GRACE_US (10 * 1000000LL)
/* How long to wait for SIGKILLed leftovers of the group to disappear before giving up. */
#define DRAIN_LIMIT_US (5 * 1000000LL)
/* How long the status file waits for disk space. */
#define STATUS_WAIT_S 3600

struct shim_opts {
	const char *log, *status, *pid_file, *cwd, *mask_file, *user, *output_file;
	long long timeout, grace; /* microseconds; timeout 0 = none */
	long long max_log;        /* bytes of the command's output the log takes; 0 = no cap */
	struct { int resource; long long value; } rlimits[5]; /* --rlimit NAME=N */
	int nrlimits;
	char **argv;
};

/* --sync: the status file is fsynced before the rename. Without it the rename still makes it
 * appear whole to readers; only a power cut can lose it, as it can the database's last commits
 * with synchronous=NORMAL (then the try is re-attached as lost, retried if tries remain). */
static bool sync_status;

#define TRIM_EVERY_US (200 * 1000) /* how often the log is cut back to its cap (no copier) */
#define MASK_MAX 64          /* secrets masked per try */
#define MASK_MIN_LEN 5       /* shorter values are not masked (as Airflow's min_length_masked_secret) */

struct shim_run {
	pid_t child;          /* also the process group id of the command */
	int log_fd;
	int out_fd;           /* where the command writes: the log, or the masking pipe */
	pid_t copier;         /* copies the pipe into the log, secrets masked, up to the cap; 0 = none */
	long long max_log;
	/* The cap without secrets to mask: the command writes straight into the log (no copier
	 * process to fork) and the log is cut back to log_base + max_log every TRIM_EVERY_US and when
	 * the command's group is gone. */
	bool trim, trimmed;
	long long log_base, next_trim; /* the log's size before the command; monotonic */
	char *masks[MASK_MAX];
	size_t nmasks;
	long long start_us, end_us; /* wall clock */
	long long deadline;   /* monotonic; 0 = none */
	long long kill_at;    /* monotonic; 0 = none */
	bool timed_out, terminating;
	int wstatus;
};

static const char usage_text[] =
	"usage: sluice-shim --log PATH --status PATH --pid-file PATH [--timeout USEC]\n"
	"                   [--grace USEC] [--cwd DIR] -- CMD [ARGS...]\n"
	"\n"
	"Supervises one task try of the sluice workflow orchestrator.\n"
	"\n"
	"  --log PATH       append the command's stdout and stderr to PATH (created 0600: only the owner reads logs)\n"
	"  --status PATH    write the end status here atomically when the command ends:\n"
	"                   lines kind=exited|signaled|timeout, code=N, start_us=, end_us=\n"
	"                   (wall clock microseconds) and optionally message=TEXT\n"
	"  --pid-file PATH  created exclusively with \"<pid> <starttime>\\n\"; when it already\n"
	"                   exists another supervisor owns the try and sluice-shim exits 252\n"
	"                   without running anything\n"
	"  --timeout USEC   after USEC microseconds send SIGTERM to the command's process group\n"
	"  --grace USEC     SIGKILL the group USEC after SIGTERM (default 10 s)\n"
	"  --cwd DIR        run the command in DIR\n"
	"  --sync           fsync the status file before renaming it into place (the daemon passes\n"
	"                   it with core.db_synchronous = full: the result then survives a power cut)\n"
	"  --max-log-size N the log takes the first N bytes of the command's output; the rest is\n"
	"                   dropped, with a note\n"
	"  --rlimit NAME=N  a resource limit of the command: as (address space, bytes), cpu (seconds;\n"
	"                   SIGKILL 5 s after SIGXCPU), nofile, nproc, fsize (bytes); repeatable\n"
	"  --user U:G:GS    run the command as uid U, gid G and groups GS (comma-separated; the\n"
	"                   supervisor runs as root)\n"
	"  --output-file P  with --user: open P for the command on fd 3, owned by that user\n"
	"  --mask-file PATH read secrets (NUL-separated) from PATH, remove it, and write each one\n"
	"                   of 5 or more bytes the command prints as *** in the log\n"
	"\n"
	"The command runs in its own process group with stdin from /dev/null; CMD is searched in\n"
	"PATH. SIGTERM or SIGINT sent to sluice-shim is forwarded to the group the same way as a\n"
	"timeout, and so are the processes the command started in sessions of their own (they stay\n"
	"below sluice-shim, a subreaper). When the command ends, its leftovers are killed. If the\n"
	"command cannot be started, the log says why and the status records exit code 127.\n"
	"\n"
	"Exit status: 0 when the status file was written, 252 for a duplicate supervisor, 253 when\n"
	"the supervisor itself could not be set up (a status with code 127 is still attempted).\n";

static long long clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long wall_us(void) { return clock_us(CLOCK_REALTIME); }
static long long mono_us(void) { return clock_us(CLOCK_MONOTONIC); }

/* Formats a duration the way users write it: "2s", "300ms", "1.5s". */
static void fmt_duration(long long us, char *buf, size_t n)
{
	if (us % 1000000 == 0)
		snprintf(buf, n, "%llds", us / 1000000);
	else if (us % 1000 == 0 && us < 1000000)
		snprintf(buf, n, "%lldms", us / 1000);
	else
		snprintf(buf, n, "%.3gs", (double)us / 1e6);
}

static void log_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(fd, buf, (size_t)n) < 0) {
		/* Nothing sensible left to report to. */
	}
}

static int parse_usec(const char *s, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Returns 0 on success, 1 when --help was asked for, -1 on a usage error (already reported). */
/* "as=1073741824" and the like. */
static int parse_rlimit(const char *s, struct shim_opts *o)
{
	static const struct { const char *name; int resource; } names[] = {
		{ "as", RLIMIT_AS }, { "cpu", RLIMIT_CPU }, { "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC },
		{ "fsize", RLIMIT_FSIZE },
	};
	const char *eq = strchr(s, '=');
	long long v;
	if (!eq || o->nrlimits == 5 || parse_usec(eq + 1, &v) < 0 || v <= 0)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) == (size_t)(eq - s) && !strncmp(names[i].name, s, (size_t)(eq - s))) {
			o->rlimits[o->nrlimits].resource = names[i].resource;
			o->rlimits[o->nrlimits++].value = v;
			return 0;
		}
	}
	return -1;
}

static int parse_args(int argc, char **argv, struct shim_opts *o)
{
	static const struct option longopts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "status", required_argument, NULL, 's' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "grace", required_argument, NULL, 'g' },
		{ "cwd", required_argument, NULL, 'c' },
		{ "mask-file", required_argument, NULL, 'm' },
		{ "max-log-size", required_argument, NULL, 'L' },
		{ "rlimit", required_argument, NULL, 'r' },
		{ "sync", no_argument, NULL, 'S' },
		{ "user", required_argument, NULL, 'u' },
		{ "output-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->grace = DEFAULT_GRACE_US;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o->log = optarg; break;
		case 's': o->status = optarg; break;
		case 'p': o->pid_file = optarg; break;
		case 'c': o->cwd = optarg; break;
		case 'm': o->mask_file = optarg; break;
		case 'u': o->user = optarg; break;
		case 'o': o->output_file = optarg; break;
		case 'S': sync_status = true; break;
		case 'r':
			if (parse_rlimit(optarg, o) < 0) {
				fprintf(stderr, "sluice-shim: bad --rlimit '%s' (as|cpu|nofile|nproc|fsize=N)\n", optarg);
				return -1;
			}
			break;
		case 't':
		case 'g':
		case 'L':
			if (parse_usec(optarg, c == 't' ? &o->timeout : c == 'g' ? &o->grace : &o->max_log) < 0) {
				fprintf(stderr, "sluice-shim: bad microseconds value '%s'\n", optarg);
				return -1;
			}
			break;
		case 'h': return 1;
		default: return -1;
		}
	}
	if (!o->log || !o->status || !o->pid_file || optind >= argc) {
		fprintf(stderr, "sluice-shim: --log, --status, --pid-file and a command are required\n");
		return -1;
	}
	o->argv = argv + optind;
	return 0;
}

/* Field 22 of /proc/self/stat: start time in clock ticks since boot. Together with the pid it
 * names a process uniquely even after the pid is reused. */
static int read_starttime(unsigned long long *out)
{
	char buf[1024], *p;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may contain spaces and parentheses */
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field <= 22; field++) {
		char *end;
		while (*p == ' ')
			p++;
		if (field == 22) {
			*out = strtoull(p, &end, 10);
			return end == p ? -EIO : 0;
		}
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
	}
	return -EIO;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Creates path with content exclusively (O_EXCL), then writes the line in one write(): a reader
 * that finds it without its final newline knows it is still being written (the daemon looks
 * again). One inode per try, where a temp file hard-linked into place took two and three more
 * calls. Returns 0, 1 when path already exists, or -errno. */
static int create_exclusive(const char *path, const char *content)
{
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 1 : -errno;
	rc = write_all(fd, content, strlen(content));
	close(fd);
	return rc;
}

/* Returns 0, 1 for a duplicate supervisor, or -errno. */
static int claim_pid_file(const char *path)
{
	unsigned long long start = 0;
	char content[64];
	int rc = read_starttime(&start);

	if (rc < 0)
		return rc;
	snprintf(content, sizeof(content), "%d %llu\n", (int)getpid(), start);
	return create_exclusive(path, content);
}

/* Writes the status file atomically: temp file in the same directory, (fsync,) rename. */
static int write_status(const char *path, const char *kind, int code, long long start_us,
			long long end_us, const char *message)
{
	char tmp[PATH_MAX], text[2048];
	int fd, rc, n;

	n = snprintf(text, sizeof(text), "kind=%s\ncode=%d\nstart_us=%lld\nend_us=%lld\n", kind,
		     code, start_us, end_us);
	if (message && n < (int)sizeof(text)) {
		size_t off = (size_t)n;
		off += (size_t)snprintf(text + off, sizeof(text) - off, "message=");
		for (const char *m = message; *m && off < sizeof(text) - 2; m++)
			text[off++] = (*m == '\n' || *m == '\r') ? ' ' : *m;
		text[off++] = '\n';
		text[off] = '\0';
		n = (int)off;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, text, (size_t)n);
	if (rc == 0 && sync_status && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* The supervisor could not set up: say why on stderr and in a status (code 127), exit 253. */
static void __attribute__((noreturn)) setup_failed(const struct shim_opts *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	long long now = wall_us();

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sluice-shim: %s\n", msg);
	if (o->status) {
		int rc = write_status(o->status, "exited", SHIM_EXEC_FAILED, now, now, msg);
		if (rc < 0)
			fprintf(stderr, "sluice-shim: cannot write status '%s': %s\n", o->status,
				strerror(-rc));
	}
	exit(SHIM_EXIT_SETUP_FAILED);
}

/* "UID:GID:G1,G2,..." (the daemon resolved the name: this program stays free of NSS). */
static int parse_user(const char *s, uid_t *uid, gid_t *gid, gid_t *groups, int *ngroups)
{
	char *end;
	unsigned long u = strtoul(s, &end, 10), g;
	*ngroups = 0;
	if (end == s || *end != ':')
		return -1;
	g = strtoul(end + 1, &end, 10);
	if (*end != ':' && *end)
		return -1;
	while (*end == ':' || *end == ',') {
		end++;
		if (!*end)
			break;
		if (*ngroups == 64)
			return -1;
		groups[(*ngroups)++] = (gid_t)strtoul(end, &end, 10);
	}
	if (*end)
		return -1;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

/* In the forked child, as root: hands the output file over on fd 3, then takes the user's groups,
 * group and user id, for good (the saved ids too). */
static void become_user(const struct shim_opts *o)
{
	uid_t uid;
	gid_t gid, groups[64];
	int ngroups;
	if (parse_user(o->user, &uid, &gid, groups, &ngroups) < 0) {
		log_line(2, "sluice-shim: bad --user '%s' (UID:GID:GROUPS)", o->user);
		_exit(SHIM_EXEC_FAILED);
	}
	if (o->output_file) {
		int fd = open(o->output_file, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd < 0 || fchown(fd, uid, gid) < 0 || (fd != 3 && dup2(fd, 3) < 0)) {
			log_line(2, "sluice-shim: cannot hand over '%s': %s", o->output_file, strerror(errno));
			_exit(SHIM_EXEC_FAILED);
		}
		if (fd != 3)
			close(fd);
	}
	if (setgroups((size_t)ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		log_line(2, "sluice-shim: cannot become uid %u: %s", (unsigned)uid, strerror(errno));
		_exit(SHIM_EXEC_FAILED);
	}
}

/* In the forked child: becomes the command. Never returns. */
static void __attribute__((noreturn)) exec_command(const struct shim_opts *o, int log_fd,
						   int null_fd)
{
	sigset_t none;

	setpgid(0, 0);
	/* Dispositions set to "ignore" survive exec: give the command clean defaults. */
	for (int sig = 1; sig < SIGRTMIN; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
		_exit(SHIM_EXEC_FAILED);
	if (o->user)
		become_user(o);
	for (int i = 0; i < o->nrlimits; i++) {
		/* cpu: SIGXCPU at the limit, SIGKILL 5 s later if the command ignores it. */
		rlim_t v = (rlim_t)o->rlimits[i].value;
		struct rlimit rl = { v, o->rlimits[i].resource == RLIMIT_CPU ? v + 5 : v };
		if (setrlimit(o->rlimits[i].resource, &rl) < 0) {
			log_line(2, "sluice-shim: cannot set a resource limit: %s", strerror(errno));
			_exit(SHIM_EXEC_FAILED);
		}
	}
	close_from(o->user && o->output_file ? 4 : 3);
	if (o->cwd && chdir(o->cwd) < 0) {
		log_line(2, "sluice-shim: cannot change directory to '%s': %s", o->cwd,
			 strerror(errno));
		_exit(SHIM_EXEC_FAILED);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvp(o->argv[0], o->argv);
	log_line(2, "sluice-shim: cannot run '%s': %s", o->argv[0], strerror(errno));
	_exit(SHIM_EXEC_FAILED);
}

/* Reads the secrets of --mask-file (NUL-separated) and removes the file: it holds them in clear. */
static void read_masks(const struct shim_opts *o, struct shim_run *r)
{
	char buf[65536];
	int fd = open(o->mask_file, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	unlink(o->mask_file);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *p = buf; p < buf + n && r->nmasks < MASK_MAX; p += strlen(p) + 1)
		if (strlen(p) >= MASK_MIN_LEN && (r->masks[r->nmasks] = strdup(p)))
			r->nmasks++;
	explicit_bzero(buf, sizeof(buf));
}

/* The longest secret that starts at p (within n bytes), or 0. */
static size_t mask_at(const struct shim_run *r, const char *p, size_t n)
{
	size_t best = 0;
	for (size_t i = 0; i < r->nmasks; i++) {
		size_t l = strlen(r->masks[i]);
		if (l <= n && l > best && !memcmp(p, r->masks[i], l))
			best = l;
	}
	return best;
}

/* Writes n bytes of output to the log, up to the cap; past it, once, a note. */
static void emit(struct shim_run *r, const char *p, size_t n, long long *written)
{
	static bool capped;
	if (capped)
		return;
	if (r->max_log > 0 && *written + (long long)n > r->max_log) {
		write_all(r->log_fd, p, (size_t)(r->max_log - *written));
		log_line(r->log_fd, "\nsluice-shim: the log reached core.max_log_size (%lld bytes): the rest of the "
			 "output is dropped", r->max_log);
		capped = true;
		*written = r->max_log;
		return;
	}
	write_all(r->log_fd, p, n);
	*written += (long long)n;
}

/* The copier: the pipe into the log with every secret written as ***, up to the cap (the rest is
 * read and dropped, so the command never blocks on a full pipe). A secret split across two reads
 * is still found: the last (longest secret - 1) bytes wait for the next read. */
static void __attribute__((noreturn)) copy_masked(struct shim_run *r, int in)
{
	static char buf[131072], out[131072]; /* a secret (5+ bytes) shrinks to 3 */
	size_t have = 0, keep = 0;
	long long written = 0;
	for (size_t i = 0; i < r->nmasks; i++)
		if (strlen(r->masks[i]) > keep)
			keep = strlen(r->masks[i]);
	keep = keep ? keep - 1 : 0;
	for (;;) {
		ssize_t n = read(in, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		bool eof = n <= 0;
		have += eof ? 0 : (size_t)n;
		size_t upto = eof ? have : have > keep ? have - keep : 0, i = 0, o = 0;
		while (i < upto) {
			size_t m = mask_at(r, buf + i, have - i);
			if (m) {
				memcpy(out + o, "***", 3);
				o += 3;
				i += m;
			} else {
				out[o++] = buf[i++];
			}
		}
		emit(r, out, o, &written);
		memmove(buf, buf + i, have - i);
		have -= i;
		if (eof)
			_exit(0);
	}
}

/* With secrets to mask or a cap on the log, the command writes into a pipe that a copier process
 * empties into the log; without, straight into the log. */
static void setup_output(const struct shim_opts *o, struct shim_run *r)
{
	int p[2];
	r->out_fd = r->log_fd;
	r->max_log = o->max_log;
	if (r->nmasks == 0 && r->max_log <= 0)
		return;
	struct stat st;
	if (r->nmasks == 0 && fstat(r->log_fd, &st) == 0 && S_ISREG(st.st_mode)) {
		r->trim = true;
		r->log_base = (long long)st.st_size;
		r->next_trim = mono_us() + TRIM_EVERY_US;
		return;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		setup_failed(o, "cannot create the masking pipe: %s", strerror(errno));
	r->copier = fork();
	if (r->copier < 0)
		setup_failed(o, "cannot fork: %s", strerror(errno));
	if (r->copier == 0) {
		close(p[1]);
		copy_masked(r, p[0]);
	}
	close(p[0]);
	r->out_fd = p[1];
}

/* Cuts the log back to the cap. O_APPEND writes land at the new end, so the log keeps the
 * command's first max_log bytes and grows past them by at most what it writes in TRIM_EVERY_US. */
static void trim_log(struct shim_run *r)
{
	struct stat st;
	long long cap = r->log_base + r->max_log;
	if (fstat(r->log_fd, &st) == 0 && (long long)st.st_size > cap && ftruncate(r->log_fd, (off_t)cap) == 0)
		r->trimmed = true;
	r->next_trim = mono_us() + TRIM_EVERY_US;
}

/* Waits (bounded) for the copier to write what is left in the pipe: it ends at the pipe's end,
 * which its SIGCHLD tells at once. */
static void finish_output(struct shim_run *r, const sigset_t *set)
{
	long long limit = mono_us() + DRAIN_LIMIT_US;
	if (r->trim) {
		trim_log(r);
		if (r->trimmed)
			log_line(r->log_fd, "\nsluice-shim: the log reached core.max_log_size (%lld bytes): the rest of "
				 "the output is dropped", r->max_log);
		return;
	}
	if (!r->copier)
		return;
	for (;;) {
		pid_t w = waitpid(r->copier, NULL, WNOHANG);
		if (w == r->copier || (w < 0 && errno != EINTR))
			return; /* done, or already reaped with the command's orphans */
		long long left = limit - mono_us();
		if (left <= 0) {
			/* Something outside the group still holds the pipe. */
			kill(r->copier, SIGKILL);
			waitpid(r->copier, NULL, 0);
			return;
		}
		struct timespec ts = { left / 1000000, (left % 1000000) * 1000 };
		sigtimedwait(set, NULL, &ts);
	}
}

static void start_command(const struct shim_opts *o, struct shim_run *r)
{
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (null_fd < 0)
		setup_failed(o, "cannot open /dev/null: %s", strerror(errno));
	r->start_us = wall_us();
	r->child = fork();
	if (r->child < 0)
		setup_failed(o, "cannot fork: %s", strerror(errno));
	if (r->child == 0)
		exec_command(o, r->out_fd, null_fd);
	/* Also set from this side so that a signal forwarded right now already finds the group. */
	setpgid(r->child, r->child);
	close(null_fd);
	if (r->out_fd != r->log_fd) {
		/* Only the command holds the pipe now: the copier sees its end when the group is gone. */
		close(r->out_fd);
		r->out_fd = -1;
	}
	if (o->timeout > 0)
		r->deadline = mono_us() + o->timeout;
}

/* The processes below this supervisor other than the log copier: the command, what it started,
 * and what it started in a session of its own (a daemonised grandchild is re-parented to us, the
 * subreaper, when its parent exits, so it stays below us). Read from /proc/PID/task/TID/children;
 * fills pids (at most max) and returns the count, or -1 when /proc cannot tell. */
#define TREE_MAX 4096

static int list_descendants(const struct shim_run *r, pid_t *pids, int max)
{
	int n = 0, done = 0;
	pid_t self = getpid();

	/* Breadth first: pids[done..n) are the ones whose children are still to be read. */
	for (pid_t parent = self;; parent = pids[done++]) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task", (int)parent);
		DIR *d = opendir(path);
		if (!d) {
			if (parent == self)
				return -1;
		} else {
			struct dirent *e;
			while ((e = readdir(d)) && n < max) {
				if (e->d_name[0] == '.')
					continue;
				char cpath[320];
				snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)parent, e->d_name);
				FILE *f = fopen(cpath, "re");
				if (!f)
					continue;
				long v;
				while (n < max && fscanf(f, "%ld", &v) == 1)
					if ((pid_t)v != r->copier && (pid_t)v != self)
						pids[n++] = (pid_t)v;
				fclose(f);
			}
			closedir(d);
		}
		if (done >= n)
			return n;
	}
}

/* Sends sig to the command's group and to every descendant (see list_descendants); with SIGKILL
 * each one is stopped first, so that none can fork a new one between the reading and the kill.
 * Returns how many descendants there were. */
static int signal_tree(const struct shim_run *r, int sig)
{
	static pid_t pids[TREE_MAX];
	int n;

	kill(-r->child, sig);
	n = list_descendants(r, pids, TREE_MAX);
	if (sig == SIGKILL)
		for (int i = 0; i < n; i++)
			kill(pids[i], SIGSTOP);
	for (int i = 0; i < n; i++)
		kill(pids[i], sig);
	return n > 0 ? n : 0;
}

/* Whether something of the try is still alive: its group, or a descendant that is no zombie. */
static bool tree_alive(const struct shim_run *r)
{
	static pid_t pids[TREE_MAX];

	if (kill(-r->child, 0) == 0)
		return true;
	int n = list_descendants(r, pids, TREE_MAX);
	for (int i = 0; i < n; i++) {
		char path[64], st = 0;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pids[i]);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		/* "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'. */
		char buf[512];
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = 0;
		char *close_paren = strrchr(buf, ')');
		if (close_paren && close_paren[1] == ' ')
			st = close_paren[2];
		if (st && st != 'Z' && st != 'X')
			return true;
	}
	return false;
}

/* Sends SIGTERM to the group once and arms the SIGKILL after the grace period. */
static void terminate_group(const struct shim_opts *o, struct shim_run *r)
{
	if (r->terminating)
		return;
	r->terminating = true;
	signal_tree(r, SIGTERM);
	r->kill_at = mono_us() + o->grace;
}

static void on_timeout(const struct shim_opts *o, struct shim_run *r)
{
	char d[32];

	fmt_duration(o->timeout, d, sizeof(d));
	log_line(r->log_fd, "sluice: execution_timeout of %s exceeded; sending SIGTERM to process group",
		 d);
	r->timed_out = true;
	r->deadline = 0;
	terminate_group(o, r);
}

static void on_signal(const struct shim_opts *o, struct shim_run *r, int sig)
{
	if (r->terminating)
		return;
	log_line(r->log_fd, "sluice: supervisor received %s; sending SIGTERM to process group",
		 sig == SIGINT ? "SIGINT" : "SIGTERM");
	terminate_group(o, r);
}

static void on_grace_over(const struct shim_opts *o, struct shim_run *r)
{
	char d[32];

	r->kill_at = 0;
	if (!tree_alive(r))
		return;
	fmt_duration(o->grace, d, sizeof(d));
	log_line(r->log_fd, "sluice: processes of the try still running %s after SIGTERM; sending SIGKILL", d);
	signal_tree(r, SIGKILL);
}

/* Reaps exited children other than the command (orphans handed to us as subreaper). Returns true
 * when the command itself has exited; it is left unreaped so its pid (= the group id) cannot be
 * reused while we still signal the group. */
static bool command_exited(struct shim_run *r)
{
	siginfo_t si;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			return false;
		if (si.si_pid == r->child)
			return true;
		waitpid(si.si_pid, NULL, WNOHANG);
	}
}

static long long next_deadline(const struct shim_run *r)
{
	long long d = r->deadline;

	if (r->kill_at && (!d || r->kill_at < d))
		d = r->kill_at;
	if (r->trim && (!d || r->next_trim < d))
		d = r->next_trim;
	return d;
}

/* Waits for the command to end while handling the timeout, the grace period and forwarded
 * signals. */
static void supervise(const struct shim_opts *o, struct shim_run *r, const sigset_t *set)
{
	while (!command_exited(r)) {
		long long d = next_deadline(r), now;
		struct timespec ts = { 0, 0 };
		int sig;

		if (d) {
			long long left = d - mono_us();
			if (left < 0)
				left = 0;
			ts.tv_sec = left / 1000000;
			ts.tv_nsec = (left % 1000000) * 1000;
		}
		sig = sigtimedwait(set, NULL, d ? &ts : NULL);
		if (sig == SIGTERM || sig == SIGINT)
			on_signal(o, r, sig);
		now = mono_us();
		if (r->deadline && now >= r->deadline)
			on_timeout(o, r);
		if (r->kill_at && now >= r->kill_at)
			on_grace_over(o, r);
		if (r->trim && now >= r->next_trim)
			trim_log(r);
	}
	r->end_us = wall_us();
}

/* Kills whatever the command left, in its group or in a session of its own, and waits (bounded) until the group is empty, so
 * that no leftover keeps writing to the log once the status exists. */
static void drain_group(struct shim_run *r, const sigset_t *set)
{
	long long limit = mono_us() + DRAIN_LIMIT_US;
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	signal_tree(r, SIGKILL);
	while (waitpid(r->child, &r->wstatus, 0) < 0 && errno == EINTR)
		;
	while (tree_alive(r) && mono_us() < limit) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		signal_tree(r, SIGKILL);
		sigtimedwait(set, NULL, &ts);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int record_result(const struct shim_opts *o, const struct shim_run *r)
{
	const char *kind = "exited";
	int code = 0;

	if (WIFEXITED(r->wstatus)) {
		code = WEXITSTATUS(r->wstatus);
	} else if (WIFSIGNALED(r->wstatus)) {
		kind = "signaled";
		code = WTERMSIG(r->wstatus);
	}
	if (r->timed_out)
		kind = "timeout";
	return write_status(o->status, kind, code, r->start_us, r->end_us, NULL);
}

/* Blocks the signals we take with sigtimedwait. SIGCHLD must not be inherited as ignored (the
 * kernel would then reap the command for us); losing our terminal or a log reader must not kill
 * us. */
static void setup_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigprocmask(SIG_BLOCK, set, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
}

/* Makes sure fds 0-2 are open, so that no file we open later lands on them and gets overwritten
 * by the dup2() calls that set up the command's stdio. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int nfd = open("/dev/null", O_RDWR);
		if (nfd >= 0 && nfd != fd) {
			dup2(nfd, fd);
			close(nfd);
		}
	}
}

int main(int argc, char **argv)
{
	struct shim_opts o = { 0 };
	struct shim_run r = { .log_fd = -1 };
	sigset_t set;
	int rc;

	setup_signals(&set);
	/* Nothing the daemon leaked may reach the command. */
	close_from(3);
	ensure_std_fds();
	rc = parse_args(argc, argv, &o);
	if (rc != 0) {
		fputs(usage_text, rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : SHIM_EXIT_SETUP_FAILED;
	}
	/* First of all, so that the secrets never stay on disk, whatever happens next. */
	if (o.mask_file)
		read_masks(&o, &r);
	rc = claim_pid_file(o.pid_file);
	if (rc == 1)
		return SHIM_EXIT_DUPLICATE;
	if (rc < 0)
		setup_failed(&o, "cannot create pid file '%s': %s", o.pid_file, strerror(-rc));
	/* EPERM: spawned as a session leader already (POSIX_SPAWN_SETSID). */
	if (setsid() < 0 && errno != EPERM)
		setup_failed(&o, "setsid: %s", strerror(errno));
	r.log_fd = open(o.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (r.log_fd < 0)
		setup_failed(&o, "cannot open log '%s': %s", o.log, strerror(errno));
	dup2(r.log_fd, 2); /* our own later complaints land in the log too */
	/* Orphans of the command are re-parented to us, so we can reap them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setup_output(&o, &r);
	start_command(&o, &r);
	supervise(&o, &r, &set);
	drain_group(&r, &set);
	finish_output(&r, &set);
	/* A full disk: the status waits for space (the daemon keeps watching this process, so the
	 * try is not taken for lost), for up to STATUS_WAIT_S. */
	for (int waited = 0; (rc = record_result(&o, &r)) == -ENOSPC || rc == -EDQUOT; waited++) {
		if (waited == STATUS_WAIT_S)
			break;
		sleep(1);
	}
	if (rc < 0) {
		log_line(r.log_fd, "sluice-shim: cannot write status '%s': %s", o.status,
			 strerror(-rc));
		return SHIM_EXIT_SETUP_FAILED;
	}
	return 0;
}
