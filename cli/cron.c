/* sluice cron next: prints the next fire times of a cron expression, in UTC. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "orchestrator/cron.h"
#include "orchestrator/tz.h"
#include "base/util.h"

#define CRON_MAX_COUNT 10000

/* The result of one "cron next" question, printed by the caller. */
struct next_req {
	const char *expr, *zone;
	int64_t after;
	int count;
};

static int64_t floor_div_sec(usec_t t)
{
	return t / USEC_PER_SEC - (t % USEC_PER_SEC < 0);
}

/* Computes up to req->count fire times into out; returns how many, or -1 with a message. */
static int next_times(const struct next_req *req, int64_t *out, char *err, size_t errlen)
{
	const struct tz *zone;
	struct cron *c;
	char *zerr = NULL;
	int64_t t = req->after;
	int n = 0;

	if (!(c = cron_parse(req->expr, err, errlen)))
		return -1;
	if (!(zone = tz_get(req->zone, &zerr))) {
		snprintf(err, errlen, "%s", zerr);
		free(zerr);
		cron_free(c);
		return -1;
	}
	cron_set_start(c, req->after + 1);
	while (n < req->count && cron_next(c, zone, t, &t) == 0)
		out[n++] = t;
	cron_free(c);
	return n;
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_times(const struct next_req *req, const int64_t *times, int n, bool json)
{
	char buf[ISO_BUFSZ];

	if (json) {
		fputs("{\"expression\": ", stdout);
		print_json_string(req->expr);
		fputs(", \"timezone\": ", stdout);
		print_json_string(req->zone);
		fputs(", \"fire_times\": [", stdout);
	}
	for (int i = 0; i < n; i++) {
		format_iso8601_z(times[i] * USEC_PER_SEC, buf, sizeof(buf));
		if (json)
			printf("%s\"%s\"", i ? ", " : "", buf);
		else
			printf("%s\n", buf);
	}
	if (json)
		puts("]}");
}

static int parse_count(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > CRON_MAX_COUNT)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Answers one batch line "EXPR\tZONE\tFROM\tN" on one output line. */
static void batch_line(char *line, int64_t *times)
{
	char *f[4] = { line, NULL, NULL, NULL }, err[512];
	struct next_req req;
	usec_t from;
	int n;

	for (int i = 1; i < 4; i++) {
		char *tab = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
		if (tab) {
			*tab = '\0';
			f[i] = tab + 1;
		}
	}
	if (!f[3] || parse_iso8601(f[2], &from) < 0 || parse_count(f[3], &n) < 0) {
		printf("error: expected EXPR<TAB>ZONE<TAB>FROM<TAB>N with an ISO-8601 FROM and N in 1-%d\n",
		       CRON_MAX_COUNT);
		return;
	}
	req = (struct next_req){ f[0], *f[1] ? f[1] : "UTC", floor_div_sec(from), n };
	if ((n = next_times(&req, times, err, sizeof(err))) < 0) {
		printf("error: %s\n", err);
		return;
	}
	for (int i = 0; i < n; i++) {
		char buf[ISO_BUFSZ];
		format_iso8601_z(times[i] * USEC_PER_SEC, buf, sizeof(buf));
		printf("%s%s", i ? " " : "", buf);
	}
	putchar('\n');
}

static int run_batch(void)
{
	int64_t *times = xmalloc(CRON_MAX_COUNT * sizeof(*times));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, stdin)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		batch_line(line, times);
	}
	free(line);
	free(times);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sluice cron next: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nRun 'sluice cron next --help' for usage.\n", stderr);
	return 2;
}

static int cmd_next(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct next_req req = { NULL, a->set['z'] ? a->val['z'] : "UTC", floor_div_sec(now_usec()), 1 };
	bool json = a->set['j'];
	char err[512];
	int64_t *times;
	usec_t from;
	int n;

	(void)cli;
	if (a->set['f']) {
		if (parse_iso8601(a->val['f'], &from) < 0)
			return usage_error("bad --from \"%s\" (use e.g. 2026-11-20T17:00:00Z)", a->val['f']);
		req.after = floor_div_sec(from);
	}
	if (a->set['n'] && parse_count(a->val['n'], &req.count) < 0)
		return usage_error("bad -n \"%s\" (a number from 1 to 10000)", a->val['n']);
	if (a->set['b'])
		return a->argc == 0 ? run_batch() : usage_error("--batch reads stdin, not EXPR");
	if (a->argc == 0)
		return usage_error("missing EXPR (quote it: sluice cron next \"0 3 * * *\")");
	if (a->argc > 1)
		return usage_error("unexpected argument \"%s\" (quote the expression)", a->argv[1]);
	req.expr = a->argv[0];
	times = xmalloc((size_t)req.count * sizeof(*times));
	if ((n = next_times(&req, times, err, sizeof(err))) < 0) {
		fprintf(stderr, "sluice cron next: %s\n", err);
		free(times);
		return 1;
	}
	print_times(&req, times, n, json);
	if (n == 0)
		fprintf(stderr, "sluice cron next: \"%s\" never fires after that time\n", req.expr);
	else if (n < req.count)
		fprintf(stderr, "sluice cron next: no more fire times after the %d shown\n", n);
	free(times);
	return 0;
}

static const struct cmd_opt next_opts[] = {
	{"tz", 'z', "ZONE", false, true, "IANA time zone the fields are read in (default UTC; see docs/cron.md)"},
	{"from", 'f', "TIME", false, true, "start after this instant (default now); ISO-8601, UTC unless offset"},
	{"count", 'n', "N", false, true, "how many fire times to print (default 1, at most 10000)"},
	{"json", 'j', NULL, false, false, "print {\"expression\", \"timezone\", \"fire_times\": [...]}"},
	{"batch", 'b', NULL, false, false, "for tests: answer lines EXPR<TAB>ZONE<TAB>FROM<TAB>N from stdin"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_cron_next = {
	"cron", "next", "\"EXPR\"", 0, -1, next_opts, "the next fire times of a schedule",
	"Prints the first N fire times of EXPR strictly after --from, one per line, in UTC\n"
	"(2026-11-20T17:00:00Z). EXPR is a 5-field cron \"minute hour day-of-month month day-of-week\"\n"
	"(lists, ranges, */step, N/step, JAN-DEC, SUN-SAT, 0-7 with 7 = Sunday), @hourly, @daily,\n"
	"@midnight, @weekly, @monthly, @yearly, @annually, @once, or \"@every DURATION\" (e.g. @every\n"
	"15m: multiples of the duration since 1970-01-01T00:00:00Z). --batch prints one line per input:\n"
	"the N fire times separated by spaces (fewer when the schedule ends) or \"error: MESSAGE\".\n\n"
	"@once fires a single time, at the DAG's start; here that is the first second after --from.\n"
	"Exit status: 0 on success, 1 for a bad expression or zone, 2 for bad usage.",
	cmd_next,
};
