/* The scheduler's interval decisions (orchestrator/schedule.c): catchup on and off, start and
 * end dates, where a restarted daemon carries on, and intervals across a DST change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orchestrator/dag_lua.h"
#include "orchestrator/schedule.h"
#include "orchestrator/tz.h"

struct fx {
	struct dag_load ld;
	struct cron *cron;
	const struct tz *zone;
};

static struct fx *load(const char *fields)
{
	struct fx *f = calloc(1, sizeof(*f));
	char src[512], err[256], *terr = NULL;
	snprintf(src, sizeof(src), "local d = dag { id = 's', %s }\nd:task 'a' { cmd = 'true' }\nreturn d\n", fields);
	if (dag_lua_load("/dags/s.lua", "s.lua", src, strlen(src), NULL, NULL, &f->ld) < 0)
		fail_msg("%s", f->ld.error);
	f->cron = cron_parse(f->ld.dags[0]->schedule, err, sizeof(err));
	f->zone = tz_get(f->ld.dags[0]->timezone, &terr);
	assert_non_null(f->cron);
	assert_non_null(f->zone);
	return f;
}

static void unload(struct fx *f)
{
	cron_free(f->cron);
	dag_load_clear(&f->ld);
	free(f);
}

static usec_t at(const char *iso)
{
	usec_t t;
	assert_int_equal(parse_iso8601(iso, &t), 0);
	return t;
}

static void expect_interval(enum sched_next got, usec_t start, usec_t end, enum sched_next want, const char *ws,
			    const char *we)
{
	char s[ISO_BUFSZ], e[ISO_BUFSZ];
	format_iso8601(start, s, sizeof(s));
	format_iso8601(end, e, sizeof(e));
	if (got != want || (ws && strcmp(s, ws)) || strcmp(e, we))
		fail_msg("got %d [%s, %s), wanted %d [%s, %s)", got, s, e, want, ws ? ws : "-", we);
}

static void test_catchup_creates_every_missed_interval(void **state)
{
	struct fx *f = load("schedule = '0 3 * * *', start_date = '2026-11-01', catchup = true");
	struct dag *d = f->ld.dags[0];
	usec_t now = at("2026-11-03T12:00:00Z"), s, e;
	enum sched_next next;
	usec_t m = schedule_first_marker(f->cron, f->zone, d, USEC_NONE, now);
	next = schedule_next(f->cron, f->zone, d, m, now, &s, &e);
	expect_interval(next, s, e, SCHED_DUE,
			"2026-11-01T03:00:00+00:00", "2026-11-02T03:00:00+00:00");
	next = schedule_next(f->cron, f->zone, d, e, now, &s, &e);
	expect_interval(next, s, e, SCHED_DUE,
			"2026-11-02T03:00:00+00:00", "2026-11-03T03:00:00+00:00");
	/* The next interval has not ended: wait until it has. */
	next = schedule_next(f->cron, f->zone, d, e, now, &s, &e);
	expect_interval(next, s, e, SCHED_WAIT, NULL,
			"2026-11-04T03:00:00+00:00");
	unload(f);
	(void)state;
}

static void test_without_catchup_only_the_latest(void **state)
{
	struct fx *f = load("schedule = '0 3 * * *', start_date = '2026-11-01', catchup = false");
	struct dag *d = f->ld.dags[0];
	usec_t now = at("2026-11-05T12:00:00Z"), s, e;
	enum sched_next next;
	usec_t m = schedule_first_marker(f->cron, f->zone, d, USEC_NONE, now);
	next = schedule_next(f->cron, f->zone, d, m, now, &s, &e);
	expect_interval(next, s, e, SCHED_DUE,
			"2026-11-04T03:00:00+00:00", "2026-11-05T03:00:00+00:00");
	next = schedule_next(f->cron, f->zone, d, e, now, &s, &e);
	expect_interval(next, s, e, SCHED_WAIT, NULL,
			"2026-11-06T03:00:00+00:00");
	unload(f);
	(void)state;
}

static void test_end_date_and_restart(void **state)
{
	struct fx *f = load("schedule = '@daily', start_date = '2026-11-01', end_date = '2026-11-02T12:00:00Z'");
	struct dag *d = f->ld.dags[0];
	usec_t now = at("2026-11-10T00:00:00Z"), s, e;
	enum sched_next next;
	/* A daemon that last scheduled the run ending 11-02 carries on from there. */
	usec_t m = schedule_first_marker(f->cron, f->zone, d, at("2026-11-02T00:00:00Z"), now);
	next = schedule_next(f->cron, f->zone, d, m, now, &s, &e);
	expect_interval(next, s, e, SCHED_DUE,
			"2026-11-02T00:00:00+00:00", "2026-11-03T00:00:00+00:00");
	/* The next interval starts after end_date: nothing more, ever. */
	assert_int_equal(schedule_next(f->cron, f->zone, d, e, now, &s, &e), SCHED_NEVER);
	unload(f);
	(void)state;
}

static void test_no_start_date_begins_with_the_latest_complete_interval(void **state)
{
	struct fx *f = load("schedule = '0 * * * *'");
	usec_t now = at("2026-11-05T10:30:00Z");
	char iso[ISO_BUFSZ];
	format_iso8601(schedule_first_marker(f->cron, f->zone, f->ld.dags[0], USEC_NONE, now), iso, sizeof(iso));
	assert_string_equal(iso, "2026-11-05T09:00:00+00:00");
	unload(f);
	(void)state;
}

static void test_intervals_across_the_end_of_summer_time(void **state)
{
	struct fx *f = load("schedule = '0 3 * * *', timezone = 'Europe/Berlin', start_date = '2026-10-24', catchup = true");
	struct dag *d = f->ld.dags[0];
	usec_t now = at("2026-10-27T00:00:00Z"), s, e;
	enum sched_next next;
	usec_t m = schedule_first_marker(f->cron, f->zone, d, USEC_NONE, now);
	/* 03:00 CEST (+02) on the 24th to 03:00 CET (+01) on the 25th: 25 hours. */
	next = schedule_next(f->cron, f->zone, d, m, now, &s, &e);
	expect_interval(next, s, e, SCHED_DUE,
			"2026-10-24T01:00:00+00:00", "2026-10-25T02:00:00+00:00");
	assert_int_equal(e - s, 25 * 3600 * USEC_PER_SEC);
	unload(f);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catchup_creates_every_missed_interval),
		cmocka_unit_test(test_without_catchup_only_the_latest),
		cmocka_unit_test(test_end_date_and_restart),
		cmocka_unit_test(test_no_start_date_begins_with_the_latest_complete_interval),
		cmocka_unit_test(test_intervals_across_the_end_of_summer_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
