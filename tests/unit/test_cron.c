/* Unit tests for orchestrator/cron.c: syntax, errors, day matching, calendars, DST, @every,
 * @once and the agreement of cron_next() with cron_prev(). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orchestrator/cron.h"
#include "orchestrator/tz.h"
#include "base/util.h"

static int64_t T(const char *iso)
{
	usec_t u;
	if (parse_iso8601(iso, &u) != 0)
		fail_msg("bad ISO time in test: %s", iso);
	return u / USEC_PER_SEC;
}

static const struct tz *zone(const char *name)
{
	char *err = NULL;
	const struct tz *z = tz_get(name, &err);
	if (!z)
		fail_msg("tz_get(%s): %s", name, err);
	return z;
}

static struct cron *parse_ok(const char *expr)
{
	char err[256];
	struct cron *c = cron_parse(expr, err, sizeof(err));
	if (!c)
		fail_msg("cron_parse(%s): %s", expr, err);
	return c;
}

/* Checks the next fire times of expr in zone after from: want is a space-separated list of
 * UTC ISO times; fewer times than listed means the schedule must end (-ENOENT) there. */
static void expect_next_n(const char *expr, const char *zname, const char *from, int n,
			  const char *want)
{
	struct cron *c = parse_ok(expr);
	const struct tz *z = zname ? zone(zname) : NULL;
	char got[4096] = "", buf[ISO_BUFSZ];
	int64_t t = T(from);
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		int rc = cron_next(c, z, t, &t);
		if (rc == -ENOENT)
			break;
		assert_int_equal(rc, 0);
		format_iso8601_z(t * USEC_PER_SEC, buf, sizeof(buf));
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "", buf);
	}
	if (strcmp(got, want) != 0)
		fail_msg("\"%s\" in %s after %s:\n  got  %s\n  want %s", expr, zname ? zname : "UTC",
			 from, got, want);
	cron_free(c);
}

static int count_words(const char *s)
{
	int n = 0;
	for (const char *p = s; *p; p++)
		if (*p != ' ' && (p == s || p[-1] == ' '))
			n++;
	return n;
}

#define expect_next(expr, zn, from, want) expect_next_n(expr, zn, from, count_words(want), want)

static void expect_error(const char *expr, const char *msg)
{
	char err[256];
	struct cron *c = cron_parse(expr, err, sizeof(err));
	if (c)
		fail_msg("cron_parse(\"%s\") should fail with: %s", expr, msg);
	if (strcmp(err, msg) != 0)
		fail_msg("cron_parse(\"%s\"):\n  got  %s\n  want %s", expr, err, msg);
}

/* ---- syntax ---- */

static void test_lists_ranges_steps(void **state)
{
	(void)state;
	expect_next("*/15 * * * *", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-01T00:15:00Z 2026-01-01T00:30:00Z 2026-01-01T00:45:00Z "
		    "2026-01-01T01:00:00Z");
	expect_next("5/20 * * * *", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-01T00:05:00Z 2026-01-01T00:25:00Z 2026-01-01T00:45:00Z "
		    "2026-01-01T01:05:00Z");
	expect_next("0 1-10/4 * * *", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-01T01:00:00Z 2026-01-01T05:00:00Z 2026-01-01T09:00:00Z "
		    "2026-01-02T01:00:00Z");
	expect_next("1,2,58-59 23 * * *", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-01T23:01:00Z 2026-01-01T23:02:00Z 2026-01-01T23:58:00Z "
		    "2026-01-01T23:59:00Z 2026-01-02T23:01:00Z");
	expect_next("*/60 * * * *", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-01T01:00:00Z 2026-01-01T02:00:00Z");
	expect_next("0 0 * */5 *", NULL, "2026-05-31T00:00:00Z",
		    "2026-06-01T00:00:00Z 2026-06-02T00:00:00Z");
	/* Strictly after: a fire time equal to "after" is not returned. */
	expect_next("0 * * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
	expect_next("0 * * * *", NULL, "2026-01-01T00:59:59Z", "2026-01-01T01:00:00Z");
	/* Whitespace: tabs and extra spaces separate fields. */
	expect_next("  0\t12  * * *  ", NULL, "2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z");
}

static void test_names(void **state)
{
	(void)state;
	expect_next("0 0 1 jan,Jul *", NULL, "2026-01-01T00:00:00Z",
		    "2026-07-01T00:00:00Z 2027-01-01T00:00:00Z");
	expect_next("0 0 1 MAR-may *", NULL, "2026-01-01T00:00:00Z",
		    "2026-03-01T00:00:00Z 2026-04-01T00:00:00Z 2026-05-01T00:00:00Z "
		    "2027-03-01T00:00:00Z");
	/* 2026-01-01 is a Thursday. */
	expect_next("0 0 * * mon,FRI", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-02T00:00:00Z 2026-01-05T00:00:00Z 2026-01-09T00:00:00Z");
	expect_next("0 0 * * FRI-SUN", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-02T00:00:00Z 2026-01-03T00:00:00Z 2026-01-04T00:00:00Z "
		    "2026-01-09T00:00:00Z");
	/* 7 is Sunday too. */
	expect_next("0 0 * * 7", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-04T00:00:00Z 2026-01-11T00:00:00Z");
	expect_next("0 0 * * 5-7", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-02T00:00:00Z 2026-01-03T00:00:00Z 2026-01-04T00:00:00Z "
		    "2026-01-09T00:00:00Z");
	expect_next("0 0 * * */3", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-03T00:00:00Z 2026-01-04T00:00:00Z 2026-01-07T00:00:00Z");
}

static void test_presets(void **state)
{
	(void)state;
	expect_next("@hourly", NULL, "2026-01-01T00:30:00Z",
		    "2026-01-01T01:00:00Z 2026-01-01T02:00:00Z");
	expect_next("@daily", NULL, "2026-01-01T00:30:00Z",
		    "2026-01-02T00:00:00Z 2026-01-03T00:00:00Z");
	expect_next("@midnight", NULL, "2026-01-01T00:30:00Z", "2026-01-02T00:00:00Z");
	expect_next("@weekly", NULL, "2026-01-01T00:30:00Z",
		    "2026-01-04T00:00:00Z 2026-01-11T00:00:00Z");
	expect_next("@monthly", NULL, "2026-01-01T00:30:00Z",
		    "2026-02-01T00:00:00Z 2026-03-01T00:00:00Z");
	expect_next("@yearly", NULL, "2026-01-01T00:30:00Z",
		    "2027-01-01T00:00:00Z 2028-01-01T00:00:00Z");
	expect_next("@ANNUALLY", NULL, "2026-01-01T00:30:00Z", "2027-01-01T00:00:00Z");
	expect_next("@daily", "Europe/Berlin", "2026-01-01T00:30:00Z",
		    "2026-01-01T23:00:00Z 2026-01-02T23:00:00Z");
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("61 * * * *",
		     "bad cron expression \"61 * * * *\": minute 61 out of range 0-59");
	expect_error("* 24 * * *", "bad cron expression \"* 24 * * *\": hour 24 out of range 0-23");
	expect_error("* * 0 * *",
		     "bad cron expression \"* * 0 * *\": day-of-month 0 out of range 1-31");
	expect_error("* * 32 * *",
		     "bad cron expression \"* * 32 * *\": day-of-month 32 out of range 1-31");
	expect_error("* * * 13 *", "bad cron expression \"* * * 13 *\": month 13 out of range 1-12");
	expect_error("* * * * 8",
		     "bad cron expression \"* * * * 8\": day-of-week 8 out of range 0-7");
	expect_error("99999999999 * * * *", "bad cron expression \"99999999999 * * * *\": "
					    "minute 99999999999 out of range 0-59");
	expect_error("* * * *", "bad cron expression \"* * * *\": expected 5 fields (minute hour "
				"day-of-month month day-of-week), got 4");
	expect_error("* * * * * *", "bad cron expression \"* * * * * *\": expected 5 fields "
				    "(minute hour day-of-month month day-of-week), got more");
	expect_error("", "bad cron expression \"\": empty expression");
	expect_error("   ", "bad cron expression \"   \": empty expression");
	expect_error("30-10 * * * *",
		     "bad cron expression \"30-10 * * * *\": minute range 30-10 runs backwards");
	expect_error("*/0 * * * *",
		     "bad cron expression \"*/0 * * * *\": minute step 0 out of range 1-60");
	expect_error("*/61 * * * *",
		     "bad cron expression \"*/61 * * * *\": minute step 61 out of range 1-60");
	expect_error("* * */32 * *", "bad cron expression \"* * */32 * *\": day-of-month step 32 "
				     "out of range 1-31");
	expect_error("*/x * * * *", "bad cron expression \"*/x * * * *\": minute: bad step \"x\"");
	expect_error("1,,2 * * * *",
		     "bad cron expression \"1,,2 * * * *\": minute: empty item in list");
	expect_error("1, * * * *", "bad cron expression \"1, * * * *\": minute: empty item in list");
	expect_error("* * * FOO *",
		     "bad cron expression \"* * * FOO *\": month: unknown name \"FOO\"");
	expect_error("* * * JANUARY *",
		     "bad cron expression \"* * * JANUARY *\": month: unknown name \"JANUARY\"");
	expect_error("MON * * * *", "bad cron expression \"MON * * * *\": minute: unknown word "
				    "\"MON\"");
	expect_error("? * * * *",
		     "bad cron expression \"? * * * *\": minute: expected a number in \"?\"");
	expect_error("5x * * * *", "bad cron expression \"5x * * * *\": minute: unexpected \"x\"");
	expect_error("* * L * *",
		     "bad cron expression \"* * L * *\": day-of-month: unknown word \"L\"");
	expect_error("@fortnightly", "bad cron expression \"@fortnightly\": unknown preset "
				     "\"@fortnightly\" (use @hourly, @daily, @midnight, @weekly, "
				     "@monthly, @yearly, @annually, @once or @every D)");
	expect_error("@daily 5", "bad cron expression \"@daily 5\": @daily takes no argument");
	expect_error("@every", "bad cron expression \"@every\": @every needs a duration, e.g. "
			       "\"@every 15m\"");
	expect_error("@every soon", "bad cron expression \"@every soon\": bad duration \"soon\" "
				    "(use e.g. 90s, 15m, 1h30m, 2d)");
	expect_error("@every 0s", "bad cron expression \"@every 0s\": @every needs a whole number "
				  "of seconds, at least 1s");
	expect_error("@every 1500ms", "bad cron expression \"@every 1500ms\": @every needs a whole "
				      "number of seconds, at least 1s");
	assert_null(cron_parse(NULL, NULL, 0));
	/* A small buffer truncates the message but still terminates it. */
	char small[16];
	assert_null(cron_parse("61 * * * *", small, sizeof(small)));
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_accessors(void **state)
{
	(void)state;
	struct cron *c = parse_ok("@every 1h30m");
	assert_int_equal(cron_kind(c), CRON_EVERY);
	assert_int_equal(cron_every_period(c), 5400);
	assert_string_equal(cron_expr(c), "@every 1h30m");
	cron_free(c);
	c = parse_ok("0 3 * * *");
	assert_int_equal(cron_kind(c), CRON_FIELDS);
	assert_int_equal(cron_every_period(c), 0);
	cron_free(c);
	c = parse_ok("@once");
	assert_int_equal(cron_kind(c), CRON_ONCE);
	cron_free(c);
	cron_free(NULL);
}

/* ---- calendar ---- */

static void test_dom_or_dow(void **state)
{
	(void)state;
	/* Both restricted: the 1st OR a Monday. */
	expect_next("0 0 1 * MON", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-05T00:00:00Z 2026-01-12T00:00:00Z 2026-01-19T00:00:00Z "
		    "2026-01-26T00:00:00Z 2026-02-01T00:00:00Z 2026-02-02T00:00:00Z");
	expect_next("0 0 1-31/2 * 1", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-03T00:00:00Z 2026-01-05T00:00:00Z 2026-01-07T00:00:00Z "
		    "2026-01-09T00:00:00Z 2026-01-11T00:00:00Z 2026-01-12T00:00:00Z");
	/* croniter (Airflow): only a field that is exactly '*' leaves the other alone; a step from
	 * '*' restricts. Odd days OR Mondays: */
	expect_next("0 0 */2 * 1", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-03T00:00:00Z 2026-01-05T00:00:00Z 2026-01-07T00:00:00Z "
		    "2026-01-09T00:00:00Z 2026-01-11T00:00:00Z 2026-01-12T00:00:00Z");
	/* The 13th OR Sundays (*\/7 of day-of-week is 0). */
	expect_next("0 0 13 * */7", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-04T00:00:00Z 2026-01-11T00:00:00Z 2026-01-13T00:00:00Z 2026-01-18T00:00:00Z");
	/* The cases, as Airflow fires them: days 21-23 OR Sun/Tue/Thu/Sat (Jan 1 2026 is a
	 * Thursday, the 2nd a Friday); days 1, 6, 11, ... OR Monday to Wednesday. */
	expect_next("* 6 21-23 * */2", NULL, "2026-01-01T06:58:00Z",
		    "2026-01-01T06:59:00Z 2026-01-03T06:00:00Z");
	expect_next("0 0 */5 * 1-3", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-05T00:00:00Z 2026-01-06T00:00:00Z 2026-01-07T00:00:00Z "
		    "2026-01-11T00:00:00Z 2026-01-12T00:00:00Z");
	/* A field covering every day counts as '*' when the other holds a '*' (croniter): Sundays,
	 * Tuesdays, Thursdays, Saturdays only; without a '*' on the other side it ORs: every day. */
	expect_next("0 0 1-31 * */2", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-03T00:00:00Z 2026-01-04T00:00:00Z 2026-01-06T00:00:00Z");
	expect_next("0 0 */2 * 0-6", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-03T00:00:00Z 2026-01-05T00:00:00Z 2026-01-07T00:00:00Z");
	expect_next("0 0 1-31 * 1", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-02T00:00:00Z 2026-01-03T00:00:00Z 2026-01-04T00:00:00Z");
	/* One side exactly '*': the other decides alone. */
	expect_next("0 0 13 * *", NULL, "2026-01-01T00:00:00Z", "2026-01-13T00:00:00Z 2026-02-13T00:00:00Z");
	/* Friday the 13th needs '*' on one side to AND; "13 * 5" is the 13th OR Fridays. */
	expect_next("0 0 13 * 5", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-02T00:00:00Z 2026-01-09T00:00:00Z 2026-01-13T00:00:00Z");
}

static void test_month_ends_and_leap_years(void **state)
{
	(void)state;
	expect_next("0 0 31 * *", NULL, "2026-01-31T00:00:00Z",
		    "2026-03-31T00:00:00Z 2026-05-31T00:00:00Z 2026-07-31T00:00:00Z "
		    "2026-08-31T00:00:00Z 2026-10-31T00:00:00Z");
	expect_next("0 0 30 * *", NULL, "2026-01-30T00:00:00Z",
		    "2026-03-30T00:00:00Z 2026-04-30T00:00:00Z");
	expect_next("0 0 29 2 *", NULL, "2026-01-01T00:00:00Z",
		    "2028-02-29T00:00:00Z 2032-02-29T00:00:00Z");
	/* 2100 is not a leap year: eight years to wait. */
	expect_next("0 0 29 2 *", NULL, "2096-03-01T00:00:00Z",
		    "2104-02-29T00:00:00Z 2108-02-29T00:00:00Z");
	expect_next("59 23 28-31 2 *", NULL, "2100-02-27T00:00:00Z",
		    "2100-02-28T23:59:00Z 2101-02-28T23:59:00Z");
	expect_next("0 12 * * *", NULL, "2026-12-31T12:00:00Z",
		    "2027-01-01T12:00:00Z");
	/* Feb 29 OR a Sunday in February (croniter ORs: neither field is exactly '*'). */
	expect_next("0 0 29 2 */7", NULL, "2027-02-20T00:00:00Z",
		    "2027-02-21T00:00:00Z 2027-02-28T00:00:00Z 2028-02-06T00:00:00Z "
		    "2028-02-13T00:00:00Z 2028-02-20T00:00:00Z 2028-02-27T00:00:00Z 2028-02-29T00:00:00Z");
	/* Never: February 30th, April 31st. */
	expect_next("0 0 30 2 *", NULL, "2026-01-01T00:00:00Z", "");
	expect_next("0 0 31 4,6,9,11 *", "Europe/Berlin", "2026-01-01T00:00:00Z", "");
	expect_next("0 0 */30 2 *", NULL, "2026-01-01T00:00:00Z",
		    "2026-02-01T00:00:00Z 2027-02-01T00:00:00Z");
	/* Before 1970. */
	expect_next("30 6 * * *", NULL, "1969-12-31T07:00:00Z", "1970-01-01T06:30:00Z");
}

/* ---- time zones and DST ---- */

static void test_zone_offsets(void **state)
{
	(void)state;
	expect_next("0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z",
		    "2026-01-01T03:30:00Z 2026-01-02T03:30:00Z");
	expect_next("0 9 * * *", "America/New_York", "2026-03-06T00:00:00Z",
		    "2026-03-06T14:00:00Z 2026-03-07T14:00:00Z 2026-03-08T13:00:00Z");
	/* Day fields are matched in local time: Monday in Tokyo starts on Sunday in UTC. */
	expect_next("0 1 * * MON", "Asia/Tokyo", "2026-01-01T00:00:00Z", "2026-01-04T16:00:00Z");
}

static void test_dst_berlin(void **state)
{
	(void)state;
	const char *z = "Europe/Berlin";
	/* Spring forward 2026-03-29 02:00 -> 03:00 (01:00Z). */
	expect_next("30 2 * * *", z, "2026-03-28T12:00:00Z",
		    "2026-03-29T01:00:00Z 2026-03-30T00:30:00Z");
	expect_next("0 2 * * *", z, "2026-03-28T12:00:00Z",
		    "2026-03-29T01:00:00Z 2026-03-30T00:00:00Z");
	expect_next("0 3 * * *", z, "2026-03-28T12:00:00Z",
		    "2026-03-29T01:00:00Z 2026-03-30T01:00:00Z");
	expect_next("30 2 * * *", z, "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z");
	/* Interval jobs skip the wall times that do not exist. */
	expect_next("30 * * * *", z, "2026-03-28T23:00:00Z",
		    "2026-03-28T23:30:00Z 2026-03-29T00:30:00Z 2026-03-29T01:30:00Z");
	expect_next("*/20 * * * *", z, "2026-03-29T00:30:00Z",
		    "2026-03-29T00:40:00Z 2026-03-29T01:00:00Z 2026-03-29T01:20:00Z");
	expect_next("30 2,14 * * *", z, "2026-03-28T12:00:00Z",
		    "2026-03-28T13:30:00Z 2026-03-29T12:30:00Z 2026-03-30T00:30:00Z");
	/* Fall back 2026-10-25 03:00 -> 02:00 (01:00Z): fixed-time jobs once, at the first. */
	expect_next("30 2 * * *", z, "2026-10-24T12:00:00Z",
		    "2026-10-25T00:30:00Z 2026-10-26T01:30:00Z");
	expect_next("30 2 * * *", z, "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
	expect_next("30 2 * * *", z, "2026-10-25T00:45:00Z", "2026-10-26T01:30:00Z");
	/* Interval jobs fire at both occurrences. */
	expect_next("30 * * * *", z, "2026-10-24T23:00:00Z",
		    "2026-10-24T23:30:00Z 2026-10-25T00:30:00Z 2026-10-25T01:30:00Z "
		    "2026-10-25T02:30:00Z");
	expect_next("*/20 * * * *", z, "2026-10-25T00:10:00Z",
		    "2026-10-25T00:20:00Z 2026-10-25T00:40:00Z 2026-10-25T01:00:00Z "
		    "2026-10-25T01:20:00Z 2026-10-25T01:40:00Z 2026-10-25T02:00:00Z");
	expect_next("30 2,14 * * *", z, "2026-10-24T12:00:00Z",
		    "2026-10-24T12:30:00Z 2026-10-25T00:30:00Z 2026-10-25T01:30:00Z "
		    "2026-10-25T13:30:00Z");
	/* Midnight is untouched. */
	expect_next("0 0 * * *", z, "2026-03-28T12:00:00Z",
		    "2026-03-28T23:00:00Z 2026-03-29T22:00:00Z");
	/* Far future, from the zone's rule. */
	expect_next("30 2 * * *", z, "2150-03-28T12:00:00Z",
		    "2150-03-29T01:00:00Z 2150-03-30T00:30:00Z");
}

static void test_dst_new_york(void **state)
{
	(void)state;
	const char *z = "America/New_York";
	expect_next("30 2 * * *", z, "2026-03-07T12:00:00Z",
		    "2026-03-08T07:00:00Z 2026-03-09T06:30:00Z");
	expect_next("30 1 * * *", z, "2026-10-31T12:00:00Z",
		    "2026-11-01T05:30:00Z 2026-11-02T06:30:00Z");
	expect_next("0,30 1 * * *", z, "2026-11-01T05:00:00Z",
		    "2026-11-01T05:30:00Z 2026-11-01T06:00:00Z 2026-11-01T06:30:00Z "
		    "2026-11-02T06:00:00Z");
	expect_next("*/30 2 * * *", z, "2026-03-08T00:00:00Z",
		    "2026-03-09T06:00:00Z 2026-03-09T06:30:00Z");
}

static void test_dst_lord_howe(void **state)
{
	(void)state;
	const char *z = "Australia/Lord_Howe";
	/* 2026-10-04 02:00 +10:30 -> 02:30 +11 (15:30Z on the 3rd). */
	expect_next("15 2 * * *", z, "2026-10-03T00:00:00Z",
		    "2026-10-03T15:30:00Z 2026-10-04T15:15:00Z");
	expect_next("*/10 * * * *", z, "2026-10-03T15:20:00Z",
		    "2026-10-03T15:30:00Z 2026-10-03T15:40:00Z");
	/* 2026-04-05 02:00 +11 -> 01:30 +10:30 (15:00Z on the 4th). */
	expect_next("45 1 * * *", z, "2026-04-04T00:00:00Z",
		    "2026-04-04T14:45:00Z 2026-04-05T15:15:00Z");
	expect_next("*/10 1 * * *", z, "2026-04-04T14:20:00Z",
		    "2026-04-04T14:30:00Z 2026-04-04T14:40:00Z 2026-04-04T14:50:00Z "
		    "2026-04-04T15:00:00Z 2026-04-04T15:10:00Z 2026-04-04T15:20:00Z "
		    "2026-04-05T14:30:00Z");
}

static void test_dst_gap_past_midnight(void **state)
{
	(void)state;
	/* Asia/Dhaka skipped 2009-06-19 23:00 -> 2009-06-20 00:00: a fixed-time job at 23:20
	 * would land on the next day, so that day has no run (as in croner). */
	expect_next("20 23 * * *", "Asia/Dhaka", "2009-06-18T18:00:00Z",
		    "2009-06-20T16:20:00Z 2009-06-21T16:20:00Z");
	expect_next("30 0 * * *", "Asia/Dhaka", "2009-06-19T12:00:00Z", "2009-06-19T17:30:00Z");
	/* America/Santiago springs forward at 24:00: 00:30 fires at 01:00. */
	expect_next("30 0 * * *", "America/Santiago", "2026-09-05T12:00:00Z",
		    "2026-09-06T04:00:00Z 2026-09-07T03:30:00Z");
}

/* ---- @every and @once ---- */

static void test_every(void **state)
{
	(void)state;
	expect_next("@every 15m", NULL, "2026-01-01T00:07:00Z",
		    "2026-01-01T00:15:00Z 2026-01-01T00:30:00Z");
	expect_next("@every 2s", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-01T00:00:02Z 2026-01-01T00:00:04Z");
	expect_next("@every 1h30m", "Europe/Berlin", "2026-01-01T00:00:00Z",
		    "2026-01-01T01:30:00Z 2026-01-01T03:00:00Z");
	/* 7 minutes since the epoch: 2026-01-01T00:00Z happens to be a multiple, the hour after
	 * is not. */
	expect_next("@every 7m", NULL, "2026-01-01T00:00:00Z",
		    "2026-01-01T00:07:00Z 2026-01-01T00:14:00Z");
	expect_next("@every 7m", NULL, "2026-01-01T01:00:00Z",
		    "2026-01-01T01:03:00Z 2026-01-01T01:10:00Z");
	expect_next("@every 45", NULL, "1969-12-31T23:59:00Z",
		    "1969-12-31T23:59:15Z 1970-01-01T00:00:00Z");
	/* The zone does not matter, even through DST changes. */
	expect_next("@every 1h", "Europe/Berlin", "2026-10-25T00:30:00Z",
		    "2026-10-25T01:00:00Z 2026-10-25T02:00:00Z");

	struct cron *c = parse_ok("@every 15m");
	int64_t t;
	assert_int_equal(cron_prev(c, NULL, T("2026-01-01T00:15:00Z"), &t), 0);
	assert_int_equal(t, T("2026-01-01T00:15:00Z"));
	assert_int_equal(cron_prev(c, NULL, T("2026-01-01T00:14:59Z"), &t), 0);
	assert_int_equal(t, T("2026-01-01T00:00:00Z"));
	cron_free(c);
}

static void test_once(void **state)
{
	(void)state;
	struct cron *c = parse_ok("@once");
	int64_t t, start = T("2026-11-01T00:00:00Z");

	assert_int_equal(cron_next(c, NULL, 0, &t), -ENOENT);
	cron_set_start(c, start);
	assert_int_equal(cron_next(c, NULL, start - 1, &t), 0);
	assert_int_equal(t, start);
	assert_int_equal(cron_next(c, NULL, start, &t), -ENOENT);
	assert_int_equal(cron_prev(c, NULL, start - 1, &t), -ENOENT);
	assert_int_equal(cron_prev(c, NULL, start + 86400, &t), 0);
	assert_int_equal(t, start);
	cron_free(c);

	/* cron_set_start() leaves other kinds alone. */
	c = parse_ok("0 0 * * *");
	cron_set_start(c, start);
	assert_int_equal(cron_next(c, NULL, start, &t), 0);
	assert_int_equal(t, start + 86400);
	cron_free(c);
}

/* ---- cron_prev ---- */

static void expect_prev(const char *expr, const char *zn, const char *at, const char *want)
{
	struct cron *c = parse_ok(expr);
	int64_t t;
	assert_int_equal(cron_prev(c, zn ? zone(zn) : NULL, T(at), &t), 0);
	assert_int_equal(t, T(want));
	cron_free(c);
}

static void test_prev(void **state)
{
	(void)state;
	expect_prev("0 3 * * *", NULL, "2026-01-02T03:00:00Z", "2026-01-02T03:00:00Z");
	expect_prev("0 3 * * *", NULL, "2026-01-02T02:59:59Z", "2026-01-01T03:00:00Z");
	expect_prev("0 0 29 2 *", NULL, "2104-01-01T00:00:00Z", "2096-02-29T00:00:00Z");
	expect_prev("*/15 * * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
	expect_prev("0 0 1 * MON", NULL, "2026-02-01T12:00:00Z", "2026-02-01T00:00:00Z");
	expect_prev("30 2 * * *", "Europe/Berlin", "2026-03-29T12:00:00Z", "2026-03-29T01:00:00Z");
	expect_prev("30 2 * * *", "Europe/Berlin", "2026-10-25T12:00:00Z", "2026-10-25T00:30:00Z");
	expect_prev("30 * * * *", "Europe/Berlin", "2026-10-25T01:45:00Z", "2026-10-25T01:30:00Z");
	expect_prev("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T23:00:00Z",
		    "2026-10-03T15:30:00Z");

	struct cron *c = parse_ok("0 0 30 2 *");
	int64_t t;
	assert_int_equal(cron_prev(c, NULL, T("2026-01-01T00:00:00Z"), &t), -ENOENT);
	assert_int_equal(cron_next(c, NULL, INT64_MAX, &t), -ERANGE);
	assert_int_equal(cron_prev(c, NULL, INT64_MIN, &t), -ERANGE);
	cron_free(c);
}

/* A data interval is [prev fire, this fire): for every t, the fire times around t found by
 * cron_next() and cron_prev() must agree with each other, through DST changes too. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static unsigned rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng_state >> 33) % n;
}

static void check_agreement(const struct cron *c, const char *expr, const struct tz *z, int64_t t)
{
	int64_t n, p, x;

	if (cron_next(c, z, t, &n) != 0)
		fail_msg("%s: no next after %lld", expr, (long long)t);
	assert_true(n > t);
	/* n is a fire time, and nothing fires in (t, n). */
	assert_int_equal(cron_prev(c, z, n, &x), 0);
	assert_int_equal(x, n);
	assert_int_equal(cron_prev(c, z, n - 1, &p), 0);
	if (p > t)
		fail_msg("%s in %s: next(%lld) = %lld but prev(%lld) = %lld", expr, tz_name(z),
			 (long long)t, (long long)n, (long long)(n - 1), (long long)p);
	/* p = prev(t) is a fire time at or before t, and the next one after it is beyond t. */
	assert_int_equal(cron_prev(c, z, t, &p), 0);
	assert_true(p <= t);
	assert_int_equal(cron_next(c, z, p - 1, &x), 0);
	assert_int_equal(x, p);
	assert_int_equal(cron_next(c, z, p, &x), 0);
	assert_true(x > t);
}

static void test_next_prev_agree(void **state)
{
	(void)state;
	static const char *const exprs[] = {
		"30 2 * * *", "0 * * * *", "*/7 * * * *", "15 1-3 * * *", "0 2,14 * * 1-5",
		"45 1 * * *", "0 0 1 * MON", "10 */5 */3 * *", "0 3 29 2 *", "@daily", "@weekly",
		"@every 1h30m", "0,30 0-3 * 3,4,10,11 0", "59 23 31 * *", "0 2 * * 0",
	};
	static const char *const zones[] = { "UTC", "Europe/Berlin", "America/New_York",
					     "Australia/Lord_Howe", "Pacific/Chatham",
					     "America/Santiago" };

	for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
		struct cron *c = parse_ok(exprs[i]);
		for (size_t k = 0; k < sizeof(zones) / sizeof(zones[0]); k++) {
			const struct tz *z = zone(zones[k]);
			for (int j = 0; j < 300; j++) {
				/* Around the DST seasons of 2020-2035, to the second. */
				int64_t t = T("2020-01-01T00:00:00Z") +
					    (int64_t)rnd(16 * 365) * 86400 + rnd(86400);
				check_agreement(c, exprs[i], z, t);
			}
			/* Exactly at and around each change of offset in 2026. */
			struct tz_span s;
			int64_t u = T("2026-01-01T00:00:00Z");
			while (tz_span_at(z, u, &s), s.end < T("2027-01-01T00:00:00Z")) {
				for (int d = -7200; d <= 7200; d += 300)
					check_agreement(c, exprs[i], z, s.end + d);
				u = s.end;
			}
		}
		cron_free(c);
	}
}

/* Skipping whole months and days keeps sparse schedules cheap: walking a year of a schedule
 * that fires once a year must not cost a minute-by-minute scan. */
static void test_sparse_is_fast(void **state)
{
	(void)state;
	struct cron *c = parse_ok("0 0 29 2 *");
	const struct tz *z = zone("Europe/Berlin");
	int64_t t = T("2000-01-01T00:00:00Z");
	usec_t start = mono_usec();

	for (int i = 0; i < 2000; i++)
		assert_int_equal(cron_next(c, z, t, &t), 0);
	/* 2000 leap days span 8000 years; well under a second even unoptimised with sanitizers. */
	assert_true(mono_usec() - start < 5 * USEC_PER_SEC);
	cron_free(c);
}

static int teardown(void **state)
{
	(void)state;
	tz_cache_free();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists_ranges_steps),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_dom_or_dow),
		cmocka_unit_test(test_month_ends_and_leap_years),
		cmocka_unit_test(test_zone_offsets),
		cmocka_unit_test(test_dst_berlin),
		cmocka_unit_test(test_dst_new_york),
		cmocka_unit_test(test_dst_lord_howe),
		cmocka_unit_test(test_dst_gap_past_midnight),
		cmocka_unit_test(test_every),
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_prev),
		cmocka_unit_test(test_next_prev_agree),
		cmocka_unit_test(test_sparse_is_fast),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
