/* Shared services of sluice-kernel: messages, sizes, the common option parser, bad-row accounting,
 * spill files and memory figures. See kernels/kernel.h for the contracts. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/util.h"
#include "kernels/kernel.h"

void kwarn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sluice-kernel: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

char *kerrf(const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = {0};
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	return sb_steal(&sb);
}

int kparse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int ksize_parse(const char *s, size_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v > 0))
		return -1;
	double mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1024.0; end++; break;
	case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if (mul > 1 && *end == 'i')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -1;
	v *= mul;
	if (v < 1 || v > (double)SIZE_MAX / 2)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* ---- option parser ---- */

enum {
	O_OUTPUT = -100, O_SPLIT, O_TASK, O_TASKS, O_PARTS, O_MEMORY, O_TMPDIR, O_BAD, O_HELP, O_VERBOSE,
};

static const struct kopt common_opts[] = {
	{"output", 'o', 1, O_OUTPUT},
	{"split", 0, 1, O_SPLIT},
	{"task", 0, 1, O_TASK},
	{"tasks", 0, 1, O_TASKS},
	{"partitions", 0, 1, O_PARTS},
	{"memory", 0, 1, O_MEMORY},
	{"tmpdir", 0, 1, O_TMPDIR},
	{"bad-rows", 0, 1, O_BAD},
	{"help", 'h', 0, O_HELP},
	{"verbose", 'v', 0, O_VERBOSE},
	{NULL, 0, 0, 0},
};

static int parse_split(const char *v, struct kcommon *c, char **err)
{
	uint64_t i, n;
	const char *slash = strchr(v, '/');
	char *a = slash ? xstrndup(v, (size_t)(slash - v)) : NULL;
	int bad = !slash || kparse_u64(a, &i) || kparse_u64(slash + 1, &n) || n == 0 || n > 1000000 || i >= n;
	free(a);
	if (bad) {
		*err = kerrf("--split '%s': expected I/N with 0 <= I < N (e.g. 3/8)", v);
		return -1;
	}
	c->split_i = (uint32_t)i;
	c->split_n = (uint32_t)n;
	return 0;
}

static int parse_bad(const char *v, struct kcommon *c, char **err)
{
	if (!strcmp(v, "fail")) {
		c->bad_mode = KBAD_FAIL;
		c->bad_limit = 0;
		return 0;
	}
	if (!strcmp(v, "skip")) {
		c->bad_mode = KBAD_SKIP;
		c->bad_limit = UINT64_MAX;
		return 0;
	}
	if (!strncmp(v, "skip:", 5) && !kparse_u64(v + 5, &c->bad_limit)) {
		c->bad_mode = KBAD_SKIP;
		return 0;
	}
	*err = kerrf("--bad-rows '%s': expected skip, skip:LIMIT or fail", v);
	return -1;
}

static int common_opt(struct kcommon *c, int id, const char *v, int *task_set, int *tasks_set, char **err)
{
	uint64_t n;
	switch (id) {
	case O_OUTPUT: c->output = v; return 0;
	case O_TMPDIR: c->tmpdir = v; return 0;
	case O_SPLIT: return parse_split(v, c, err);
	case O_TASK:
	case O_TASKS:
	case O_PARTS:
		if (kparse_u64(v, &n) || n > 1000000 || (id != O_TASK && n == 0)) {
			*err = kerrf("--%s '%s': expected a number%s", id == O_TASK ? "task" : id == O_TASKS ? "tasks" : "partitions",
				     v, id == O_TASK ? "" : " from 1 to 1000000");
			return -1;
		}
		if (id == O_TASK) {
			c->task = (int)n;
			*task_set = 1;
		} else if (id == O_TASKS) {
			c->tasks = (int)n;
			*tasks_set = 1;
		} else {
			c->partitions = (uint32_t)n;
		}
		return 0;
	case O_MEMORY:
		if (ksize_parse(v, &c->memory)) {
			*err = kerrf("--memory '%s': expected a size such as 512M or 2G", v);
			return -1;
		}
		return 0;
	case O_BAD: return parse_bad(v, c, err);
	case O_VERBOSE: c->verbose = true; return 0;
	default: return 0;
	}
}

static const struct kopt *find_opt(const struct kopt *t, const char *name, size_t len, char sname)
{
	for (; t && t->name; t++) {
		if (sname ? t->short_name == sname : (strlen(t->name) == len && !strncmp(t->name, name, len)))
			return t;
	}
	return NULL;
}

int kopt_parse(int argc, char **argv, const struct kopt *own, kopt_fn fn, void *ctx, struct kcommon *c,
	       const char *usage)
{
	int task_set = 0, tasks_set = 0, r = 0;
	char *err = NULL;

	memset(c, 0, sizeof *c);
	c->split_n = 1;
	c->partitions = 1;
	c->memory = (size_t)1 << 30;
	c->bad_mode = KBAD_FAIL;
	c->inputs = xcalloc((size_t)argc + 1, sizeof *c->inputs);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *name;
		size_t nlen;
		char sname = 0;
		const struct kopt *o;
		bool is_own;

		if (!strcmp(a, "--")) {
			while (++i < argc)
				c->inputs[c->ninputs++] = argv[i];
			break;
		}
		if (a[0] != '-' || a[1] == 0) {
			c->inputs[c->ninputs++] = argv[i];
			continue;
		}
		if (a[1] == '-') {
			name = a + 2;
			const char *eq = strchr(name, '=');
			nlen = eq ? (size_t)(eq - name) : strlen(name);
			if (eq)
				val = eq + 1;
		} else {
			name = a + 1;
			nlen = 1;
			sname = a[1];
			if (a[2])
				val = a + 2; /* -k2: an attached value (an error for a flag) */
		}
		o = find_opt(own, name, nlen, sname);
		is_own = o != NULL;
		if (!o)
			o = find_opt(common_opts, name, nlen, sname);
		if (!o) {
			err = kerrf("unknown option '%s'", a);
			goto usage_error;
		}
		if (o->has_arg && !val) {
			if (i + 1 >= argc) {
				err = kerrf("option '%s' needs a value", a);
				goto usage_error;
			}
			val = argv[++i];
		} else if (!o->has_arg && val) {
			err = kerrf("option '--%s' takes no value", o->name);
			goto usage_error;
		}
		if (!is_own && o->id == O_HELP) {
			fputs(usage, stdout);
			free(c->inputs);
			c->inputs = NULL;
			return 1;
		}
		r = is_own ? fn(ctx, o->id, val, &err) : common_opt(c, o->id, val, &task_set, &tasks_set, &err);
		if (r)
			goto usage_error;
	}
	if (!task_set)
		c->task = (int)c->split_i;
	if (!tasks_set)
		c->tasks = (int)c->split_n;
	if (c->task >= c->tasks) {
		err = kerrf("--task %d is not below --tasks %d", c->task, c->tasks);
		goto usage_error;
	}
	return 0;
usage_error:
	fprintf(stderr, "sluice-kernel %s: %s (try sluice-kernel %s --help)\n", argv[0], err ? err : "usage error",
		argv[0]);
	free(err);
	free(c->inputs);
	c->inputs = NULL;
	c->ninputs = 0;
	return 2;
}

/* ---- bad rows ---- */

void kbad_init(struct kbad *b, const struct kcommon *c, const char *cmd)
{
	b->mode = c->bad_mode;
	b->limit = c->bad_mode == KBAD_FAIL ? 0 : c->bad_limit;
	b->count = 0;
	b->cmd = cmd;
}

int kbad_row(struct kbad *b, const char *file, uint64_t line, const char *fmt, ...)
{
	va_list ap;
	b->count++;
	if (b->count <= 20 || b->mode == KBAD_FAIL) {
		fprintf(stderr, "sluice-kernel %s: %s:%llu: ", b->cmd, file, (unsigned long long)line);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputs(b->mode == KBAD_FAIL ? "\n" : " (row skipped)\n", stderr);
	}
	if (b->mode == KBAD_FAIL) {
		fprintf(stderr, "sluice-kernel %s: stopping at the first bad row (--bad-rows fail; use --bad-rows "
				"skip[:LIMIT] to skip them)\n", b->cmd);
		return -1;
	}
	if (b->count > b->limit) {
		fprintf(stderr, "sluice-kernel %s: more than %llu bad rows (--bad-rows skip:%llu); stopping\n", b->cmd,
			(unsigned long long)b->limit, (unsigned long long)b->limit);
		return -1;
	}
	return 0;
}

/* ---- spill files, memory ---- */

int kspill_open(const char *dir, char **err)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	for (int tries = 0; tries < 100; tries++) {
		char *p = xasprintf("%s/spill-%d-%d-%d", dir, (int)getpid(), tries, rand());
		fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(p);
		free(p);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0)
		*err = kerrf("cannot create a spill file in %s: %s", dir, strerror(errno));
	return fd;
}

static const char kspill_empty[8];

const char *kspill_map(int fd, uint64_t len, char **err)
{
	if (len == 0)
		return kspill_empty;
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		*err = kerrf("cannot map a spill file: %s", strerror(errno));
		return NULL;
	}
	madvise(p, len, MADV_SEQUENTIAL);
	return p;
}

uint64_t kpeak_rss(void)
{
	/* VmHWM belongs to this program's address space; getrusage's ru_maxrss would also count the
	 * process before execve (e.g. a big parent's fork). */
	FILE *f = fopen("/proc/self/status", "r");
	if (f) {
		char line[256];
		unsigned long long kb = 0;
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
				break;
		fclose(f);
		if (kb)
			return kb * 1024;
	}
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024;
}

size_t kbuf_size(size_t memory)
{
	size_t b = memory / 16;
	if (b < 65536)
		b = 65536;
	if (b > (size_t)1 << 20)
		b = (size_t)1 << 20;
	return b;
}

void kraise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}
