/* Unit tests for orchestrator/tz.c: TZif parsing, offsets, gaps and overlaps, the cache. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "orchestrator/tz.h"
#include "base/util.h"

/* UTC seconds of an ISO-8601 string (fails the test on a typo). */
static int64_t T(const char *iso)
{
	usec_t u;
	assert_int_equal(parse_iso8601(iso, &u), 0);
	return u / USEC_PER_SEC;
}

/* Local seconds of "YYYY-MM-DDTHH:MM" (parsed as if UTC, which is what local seconds are). */
static int64_t L(const char *iso)
{
	return T(iso);
}

static struct tz *load_ok(const char *name)
{
	char *err = NULL;
	struct tz *z = tz_load(name, &err);
	if (!z)
		fail_msg("tz_load(%s): %s", name, err);
	assert_null(err);
	return z;
}

static void expect_load_error(const char *name, const char *needle)
{
	char *err = NULL;
	struct tz *z = tz_load(name, &err);
	assert_null(z);
	assert_non_null(err);
	if (!strstr(err, needle))
		fail_msg("tz_load(%s): \"%s\" lacks \"%s\"", name ? name : "NULL", err, needle);
	free(err);
}

static void test_utc_builtin(void **state)
{
	(void)state;
	const char *old = getenv("TZDIR");
	char *saved = old ? strdup(old) : NULL;
	setenv("TZDIR", "/nonexistent-tzdir", 1);
	struct tz *a = load_ok("UTC"), *b = load_ok("Etc/UTC");
	assert_int_equal(tz_offset_at_utc(a, T("2026-07-01T00:00:00Z")), 0);
	assert_int_equal(tz_offset_at_utc(b, INT64_MIN), 0);
	assert_int_equal(tz_offset_at_utc(b, INT64_MAX), 0);
	assert_string_equal(tz_name(b), "Etc/UTC");
	expect_load_error("Europe/Berlin", "unknown time zone");
	tz_free(a);
	tz_free(b);
	if (saved)
		setenv("TZDIR", saved, 1);
	else
		unsetenv("TZDIR");
	free(saved);
	assert_int_equal(tz_offset_at_utc(NULL, 12345), 0);
	assert_int_equal(tz_offset_at_utc(tz_utc(), 12345), 0);
	assert_string_equal(tz_name(NULL), "UTC");
}

static void test_bad_names(void **state)
{
	(void)state;
	expect_load_error(NULL, "invalid time zone name");
	expect_load_error("", "invalid time zone name");
	expect_load_error("/etc/passwd", "invalid time zone name");
	expect_load_error("../../etc/passwd", "invalid time zone name");
	expect_load_error("Europe/../../etc/passwd", "invalid time zone name");
	expect_load_error("Europe//Berlin", "invalid time zone name");
	expect_load_error("Europe/Berlin/", "invalid time zone name");
	expect_load_error("Europe/Ber lin", "invalid time zone name");
	expect_load_error("Mars/Olympus_Mons", "unknown time zone \"Mars/Olympus_Mons\"");
	expect_load_error("Europe", "unknown time zone");
	expect_load_error("zone.tab", "not a TZif file");
}

static void test_tzdata_package(void **state)
{
	(void)state;
	/* The files come from Debian's tzdata package; fail loudly if it is missing. */
	struct stat st;
	assert_int_equal(stat("/usr/share/zoneinfo/Europe/Berlin", &st), 0);
	assert_int_equal(access("/var/lib/dpkg/info/tzdata.list", R_OK), 0);
}

static void test_berlin_offsets(void **state)
{
	(void)state;
	struct tz *z = load_ok("Europe/Berlin");
	struct tz_span s;
	int32_t lo, hi;

	assert_int_equal(tz_offset_at_utc(z, T("2026-01-15T12:00:00Z")), 3600);
	assert_int_equal(tz_offset_at_utc(z, T("2026-07-15T12:00:00Z")), 7200);
	assert_int_equal(tz_offset_at_utc(z, T("2026-03-29T00:59:59Z")), 3600);
	assert_int_equal(tz_offset_at_utc(z, T("2026-03-29T01:00:00Z")), 7200);
	assert_int_equal(tz_offset_at_utc(z, T("2026-10-25T00:59:59Z")), 7200);
	assert_int_equal(tz_offset_at_utc(z, T("2026-10-25T01:00:00Z")), 3600);
	tz_span_at(z, T("2026-06-01T00:00:00Z"), &s);
	assert_int_equal(s.start, T("2026-03-29T01:00:00Z"));
	assert_int_equal(s.end, T("2026-10-25T01:00:00Z"));
	assert_true(s.isdst);
	/* Beyond the last transition in the file the footer rule takes over. */
	assert_int_equal(tz_offset_at_utc(z, T("2100-01-15T00:00:00Z")), 3600);
	assert_int_equal(tz_offset_at_utc(z, T("2100-07-15T00:00:00Z")), 7200);
	tz_span_at(z, T("2200-06-01T00:00:00Z"), &s);
	assert_int_equal(s.start, T("2200-03-30T01:00:00Z"));
	assert_int_equal(s.end, T("2200-10-26T01:00:00Z"));
	/* Before the first transition: local mean time. */
	assert_int_equal(tz_offset_at_utc(z, T("1850-01-01T00:00:00Z")), 53 * 60 + 28);
	tz_offset_range(z, &lo, &hi);
	assert_true(lo <= 3600 && hi >= 7200);
	tz_free(z);
}

static void test_southern_hemisphere(void **state)
{
	(void)state;
	struct tz *z = load_ok("Australia/Sydney");
	assert_int_equal(tz_offset_at_utc(z, T("2026-01-15T00:00:00Z")), 11 * 3600);
	assert_int_equal(tz_offset_at_utc(z, T("2026-07-15T00:00:00Z")), 10 * 3600);
	assert_int_equal(tz_offset_at_utc(z, T("2090-01-15T00:00:00Z")), 11 * 3600);
	assert_int_equal(tz_offset_at_utc(z, T("2090-07-15T00:00:00Z")), 10 * 3600);
	tz_free(z);
}

static void expect_local(const struct tz *z, const char *local, enum tz_local_kind kind,
			 const char *utc0, const char *utc1)
{
	int64_t u[2];
	enum tz_local_kind k = tz_local_to_utc(z, L(local), u);
	char a[ISO_BUFSZ], b[ISO_BUFSZ];

	format_iso8601_z(u[0] * USEC_PER_SEC, a, sizeof(a));
	format_iso8601_z(u[1] * USEC_PER_SEC, b, sizeof(b));
	if (k != kind || strcmp(a, utc0) || strcmp(b, utc1))
		fail_msg("%s %s: got kind %d %s %s, want %d %s %s", tz_name(z), local, k, a, b,
			 kind, utc0, utc1);
}

static void test_local_to_utc_berlin(void **state)
{
	(void)state;
	struct tz *z = load_ok("Europe/Berlin");
	expect_local(z, "2026-06-01T12:00:00", TZ_LOCAL_UNIQUE, "2026-06-01T10:00:00Z",
		     "2026-06-01T10:00:00Z");
	expect_local(z, "2026-03-29T01:59:59", TZ_LOCAL_UNIQUE, "2026-03-29T00:59:59Z",
		     "2026-03-29T00:59:59Z");
	expect_local(z, "2026-03-29T02:00:00", TZ_LOCAL_GAP, "2026-03-29T01:00:00Z",
		     "2026-03-29T01:00:00Z");
	expect_local(z, "2026-03-29T02:30:00", TZ_LOCAL_GAP, "2026-03-29T01:00:00Z",
		     "2026-03-29T01:00:00Z");
	expect_local(z, "2026-03-29T03:00:00", TZ_LOCAL_UNIQUE, "2026-03-29T01:00:00Z",
		     "2026-03-29T01:00:00Z");
	expect_local(z, "2026-10-25T01:59:59", TZ_LOCAL_UNIQUE, "2026-10-24T23:59:59Z",
		     "2026-10-24T23:59:59Z");
	expect_local(z, "2026-10-25T02:00:00", TZ_LOCAL_OVERLAP, "2026-10-25T00:00:00Z",
		     "2026-10-25T01:00:00Z");
	expect_local(z, "2026-10-25T02:30:00", TZ_LOCAL_OVERLAP, "2026-10-25T00:30:00Z",
		     "2026-10-25T01:30:00Z");
	expect_local(z, "2026-10-25T03:00:00", TZ_LOCAL_UNIQUE, "2026-10-25T02:00:00Z",
		     "2026-10-25T02:00:00Z");
	/* Far future, from the footer rule. */
	expect_local(z, "2150-03-29T02:30:00", TZ_LOCAL_GAP, "2150-03-29T01:00:00Z",
		     "2150-03-29T01:00:00Z");
	expect_local(z, "2150-10-25T02:30:00", TZ_LOCAL_OVERLAP, "2150-10-25T00:30:00Z",
		     "2150-10-25T01:30:00Z");
	tz_free(z);
}

static void test_local_to_utc_new_york(void **state)
{
	(void)state;
	struct tz *z = load_ok("America/New_York");
	expect_local(z, "2026-03-08T02:30:00", TZ_LOCAL_GAP, "2026-03-08T07:00:00Z",
		     "2026-03-08T07:00:00Z");
	expect_local(z, "2026-11-01T01:30:00", TZ_LOCAL_OVERLAP, "2026-11-01T05:30:00Z",
		     "2026-11-01T06:30:00Z");
	expect_local(z, "2026-11-01T02:30:00", TZ_LOCAL_UNIQUE, "2026-11-01T07:30:00Z",
		     "2026-11-01T07:30:00Z");
	tz_free(z);
}

static void test_local_to_utc_lord_howe(void **state)
{
	(void)state;
	/* +10:30 standard, +11 summer: a 30-minute gap and overlap. */
	struct tz *z = load_ok("Australia/Lord_Howe");
	assert_int_equal(tz_offset_at_utc(z, T("2026-07-01T00:00:00Z")), 10 * 3600 + 1800);
	assert_int_equal(tz_offset_at_utc(z, T("2026-12-01T00:00:00Z")), 11 * 3600);
	expect_local(z, "2026-10-04T02:15:00", TZ_LOCAL_GAP, "2026-10-03T15:30:00Z",
		     "2026-10-03T15:30:00Z");
	expect_local(z, "2026-10-04T02:30:00", TZ_LOCAL_UNIQUE, "2026-10-03T15:30:00Z",
		     "2026-10-03T15:30:00Z");
	expect_local(z, "2026-04-05T01:45:00", TZ_LOCAL_OVERLAP, "2026-04-04T14:45:00Z",
		     "2026-04-04T15:15:00Z");
	expect_local(z, "2026-04-05T02:00:00", TZ_LOCAL_UNIQUE, "2026-04-04T15:30:00Z",
		     "2026-04-04T15:30:00Z");
	tz_free(z);
}

static void test_localtime_fields(void **state)
{
	(void)state;
	struct tz *z = load_ok("Europe/Berlin");
	struct tz_tm tm;

	tz_localtime(z, T("2026-07-01T12:34:56Z"), &tm);
	assert_int_equal(tm.year, 2026);
	assert_int_equal(tm.mon, 7);
	assert_int_equal(tm.mday, 1);
	assert_int_equal(tm.hour, 14);
	assert_int_equal(tm.min, 34);
	assert_int_equal(tm.sec, 56);
	assert_int_equal(tm.wday, 3);
	assert_int_equal(tm.yday, 181);
	assert_int_equal(tm.utcoff, 7200);
	assert_true(tm.isdst);
	assert_string_equal(tm.abbr, "CEST");
	tz_localtime(z, T("2150-01-01T00:00:00Z"), &tm);
	assert_string_equal(tm.abbr, "CET");
	assert_int_equal(tm.hour, 1);
	tz_free(z);

	tz_split(-1, &tm);
	assert_int_equal(tm.year, 1969);
	assert_int_equal(tm.mon, 12);
	assert_int_equal(tm.mday, 31);
	assert_int_equal(tm.hour, 23);
	assert_int_equal(tm.sec, 59);
	assert_int_equal(tm.wday, 3);
	assert_int_equal(tz_join(1969, 12, 31, 23, 59, 59), -1);
	assert_int_equal(tz_join(2000, 2, 29, 0, 0, 0), T("2000-02-29T00:00:00Z"));
}

/* Every instant's fields must agree with glibc reading the same files (a test-only use of TZ:
 * this test is single-threaded). */
static void test_matches_glibc(void **state)
{
	(void)state;
	static const char *const zones[] = {
		"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Nuuk",
		"Asia/Kolkata", "Pacific/Chatham", "America/Santiago", "Africa/Casablanca",
		"Europe/Dublin", "Pacific/Apia", "America/St_Johns", "Asia/Gaza",
	};
	uint64_t seed = 42;

	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		struct tz *z = load_ok(zones[i]);
		setenv("TZ", zones[i], 1);
		tzset();
		for (int k = 0; k < 3000; k++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			/* 1900 .. 2100 */
			int64_t t = -2208988800LL + (int64_t)((seed >> 11) % 6311433600ULL);
			time_t tt = (time_t)t;
			struct tm g;
			struct tz_tm m;
			int64_t u[2];
			localtime_r(&tt, &g);
			tz_localtime(z, t, &m);
			if (m.utcoff != g.tm_gmtoff || m.isdst != (g.tm_isdst > 0) ||
			    strcmp(m.abbr, g.tm_zone) || m.hour != g.tm_hour || m.mday != g.tm_mday)
				fail_msg("%s at %lld: %d %s, glibc %ld %s", zones[i], (long long)t,
					 m.utcoff, m.abbr, g.tm_gmtoff, g.tm_zone);
			/* Local -> UTC must find the instant we came from. */
			enum tz_local_kind kind = tz_local_to_utc(z, t + m.utcoff, u);
			assert_int_not_equal(kind, TZ_LOCAL_GAP);
			assert_true(u[0] == t || u[1] == t);
		}
		tz_free(z);
	}
	unsetenv("TZ");
	tzset();
}

/* ---- hand-made TZif files ---- */

struct tzb {
	unsigned char buf[4096];
	size_t len;
};

static void tzb_bytes(struct tzb *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	assert_true(b->len + n <= sizeof(b->buf));
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void tzb_be(struct tzb *b, uint64_t v, int size)
{
	for (int i = size - 1; i >= 0; i--) {
		unsigned char c = (unsigned char)(v >> (i * 8));
		tzb_bytes(b, &c, 1);
	}
}

static void tzb_header(struct tzb *b, char version, uint32_t timecnt, uint32_t typecnt,
		       uint32_t charcnt)
{
	unsigned char zero[15] = { 0 };
	tzb_bytes(b, "TZif", 4);
	tzb_bytes(b, &version, 1);
	tzb_bytes(b, zero, 15);
	tzb_be(b, 0, 4);	/* isutcnt */
	tzb_be(b, 0, 4);	/* isstdcnt */
	tzb_be(b, 0, 4);	/* leapcnt */
	tzb_be(b, timecnt, 4);
	tzb_be(b, typecnt, 4);
	tzb_be(b, charcnt, 4);
}

/* Data block: transitions at times[] to types idx[], types {off, isdst, abbrind}, chars. */
static void tzb_block(struct tzb *b, int tsize, const int64_t *times, const uint8_t *idx,
		      uint32_t n, const int32_t (*types)[3], uint32_t ntypes, const char *chars,
		      uint32_t nchars)
{
	for (uint32_t i = 0; i < n; i++)
		tzb_be(b, (uint64_t)times[i], tsize);
	tzb_bytes(b, idx, n);
	for (uint32_t i = 0; i < ntypes; i++) {
		tzb_be(b, (uint32_t)types[i][0], 4);
		unsigned char f[2] = { (unsigned char)types[i][1], (unsigned char)types[i][2] };
		tzb_bytes(b, f, 2);
	}
	tzb_bytes(b, chars, nchars);
}

static char tmpdir[64];

static int tmpdir_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sluice-test-tz-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	setenv("TZDIR", tmpdir, 1);
	return 0;
}

static int tmpdir_teardown(void **state)
{
	(void)state;
	unsetenv("TZDIR");
	return remove_tree("/", tmpdir);
}

static void tzb_save(const struct tzb *b, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_int_equal(write_file_atomic(path, b->buf, b->len, false), 0);
}

static const int32_t two_types[2][3] = { { -18000, 0, 0 }, { -14400, 1, 4 } };
static const char two_chars[] = "EST\0EDT";

static void test_tzif_v1(void **state)
{
	(void)state;
	struct tzb b = { .len = 0 };
	int64_t times[2] = { 1000000, 2000000 };
	uint8_t idx[2] = { 1, 0 };
	struct tz *z;

	tzb_header(&b, 0, 2, 2, 8);
	tzb_block(&b, 4, times, idx, 2, two_types, 2, two_chars, 8);
	tzb_save(&b, "V1");
	z = load_ok("V1");
	assert_int_equal(tz_offset_at_utc(z, 0), -18000);
	assert_int_equal(tz_offset_at_utc(z, 1000000), -14400);
	assert_int_equal(tz_offset_at_utc(z, 1999999), -14400);
	assert_int_equal(tz_offset_at_utc(z, 2000000), -18000);
	assert_int_equal(tz_offset_at_utc(z, INT64_MAX), -18000);
	tz_free(z);
}

/* A v2+ file: a v1 block to skip, a 64-bit block, then the footer. */
static void tzb_v2(struct tzb *b, char version, const int64_t *times, const uint8_t *idx,
		   uint32_t n, const char *footer)
{
	tzb_header(b, version, 0, 1, 4);
	tzb_block(b, 4, NULL, NULL, 0, two_types, 1, "EST", 4);
	tzb_header(b, version, n, 2, 8);
	tzb_block(b, 8, times, idx, n, two_types, 2, two_chars, 8);
	tzb_bytes(b, "\n", 1);
	tzb_bytes(b, footer, strlen(footer));
	tzb_bytes(b, "\n", 1);
}

static void test_tzif_v2_footer_only(void **state)
{
	(void)state;
	struct tzb b = { .len = 0 };
	struct tz *z;

	tzb_v2(&b, '2', NULL, NULL, 0, "EST5EDT,M3.2.0,M11.1.0");
	tzb_save(&b, "V2rule");
	z = load_ok("V2rule");
	assert_int_equal(tz_offset_at_utc(z, T("2026-01-10T00:00:00Z")), -18000);
	assert_int_equal(tz_offset_at_utc(z, T("2026-07-10T00:00:00Z")), -14400);
	assert_int_equal(tz_offset_at_utc(z, T("2026-03-08T06:59:59Z")), -18000);
	assert_int_equal(tz_offset_at_utc(z, T("2026-03-08T07:00:00Z")), -14400);
	assert_int_equal(tz_offset_at_utc(z, T("2026-11-01T05:59:59Z")), -14400);
	assert_int_equal(tz_offset_at_utc(z, T("2026-11-01T06:00:00Z")), -18000);
	assert_int_equal(tz_offset_at_utc(z, T("1950-07-10T00:00:00Z")), -14400);
	tz_free(z);
}

static void test_tzif_v3_rules(void **state)
{
	(void)state;
	struct tzb b = { .len = 0 };
	int64_t times[1] = { 0 };
	uint8_t idx[1] = { 1 };
	struct tz *z;
	struct tz_tm tm;

	/* Permanent DST, written as RFC 8536 says: from Jan 1 00:00 to Dec 31 25:00. */
	tzb_v2(&b, '3', times, idx, 1, "EST5EDT,0/0,J365/25");
	tzb_save(&b, "V3perm");
	z = load_ok("V3perm");
	for (int y = 2000; y < 2040; y++) {
		int64_t t = tz_join(y, 1, 1, 4, 0, 0);
		assert_int_equal(tz_offset_at_utc(z, t), -14400);
		assert_int_equal(tz_offset_at_utc(z, t + 5 * 3600), -14400);
		assert_int_equal(tz_offset_at_utc(z, tz_join(y, 7, 1, 0, 0, 0)), -14400);
	}
	tz_localtime(z, T("2030-06-01T00:00:00Z"), &tm);
	assert_string_equal(tm.abbr, "EDT");
	tz_free(z);

	/* Negative and over-24h rule times (v3), as America/Nuuk once used. */
	b.len = 0;
	tzb_v2(&b, '3', times, idx, 1, "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1");
	tzb_save(&b, "V3neg");
	z = load_ok("V3neg");
	/* Last Sunday of March 2026 is the 29th: -2h local = Sat 28th 22:00 at -03 = 01:00Z. */
	assert_int_equal(tz_offset_at_utc(z, T("2026-03-29T00:59:59Z")), -3 * 3600);
	assert_int_equal(tz_offset_at_utc(z, T("2026-03-29T01:00:00Z")), -2 * 3600);
	tz_localtime(z, T("2026-06-01T00:00:00Z"), &tm);
	assert_string_equal(tm.abbr, "-02");
	tz_free(z);
}

static void test_tzif_corrupt(void **state)
{
	(void)state;
	struct tzb b = { .len = 0 };
	int64_t times[2] = { 2000000, 1000000 };	/* not ascending */
	uint8_t idx[2] = { 1, 0 }, bad_idx[1] = { 7 };

	tzb_header(&b, 0, 2, 2, 8);
	tzb_block(&b, 4, times, idx, 2, two_types, 2, two_chars, 8);
	tzb_save(&b, "Unsorted");
	expect_load_error("Unsorted", "corrupt transitions");

	b.len = 0;
	tzb_header(&b, 0, 1, 2, 8);
	tzb_block(&b, 4, times, bad_idx, 1, two_types, 2, two_chars, 8);
	tzb_save(&b, "BadIdx");
	expect_load_error("BadIdx", "corrupt transitions");

	b.len = 0;
	tzb_header(&b, 0, 2, 2, 8);
	tzb_save(&b, "Truncated");
	expect_load_error("Truncated", "truncated");

	b.len = 0;
	tzb_v2(&b, '2', NULL, NULL, 0, "this is not a TZ string");
	tzb_save(&b, "BadFooter");
	expect_load_error("BadFooter", "footer");

	b.len = 0;
	tzb_bytes(&b, "TZif2", 5);
	tzb_save(&b, "Short");
	expect_load_error("Short", "not a TZif file");
}

/* ---- the cache ---- */

static void *cache_worker(void *arg)
{
	static const char *const names[] = { "Europe/Berlin", "America/New_York", "UTC",
					     "Australia/Lord_Howe" };
	const struct tz **seen = arg;
	for (int i = 0; i < 400; i++) {
		const struct tz *z = tz_get(names[i % 4], NULL);
		if (!z)
			return (void *)1;
		seen[i % 4] = z;
		if (tz_offset_at_utc(z, 1782864000) != (i % 4 == 0 ? 7200 : i % 4 == 1 ? -14400
							 : i % 4 == 2 ? 0 : 37800))
			return (void *)1;
	}
	return NULL;
}

static void test_cache_threads(void **state)
{
	(void)state;
	pthread_t th[8];
	const struct tz *seen[8][4];
	char *err = NULL;

	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, cache_worker, seen[i]), 0);
	for (int i = 0; i < 8; i++) {
		void *rv;
		assert_int_equal(pthread_join(th[i], &rv), 0);
		assert_null(rv);
	}
	for (int i = 1; i < 8; i++)
		for (int k = 0; k < 4; k++)
			assert_ptr_equal(seen[i][k], seen[0][k]);
	assert_ptr_equal(tz_get("Europe/Berlin", NULL), seen[0][0]);
	assert_null(tz_get("No/Such_Zone", &err));
	assert_non_null(strstr(err, "unknown time zone"));
	free(err);
	tz_cache_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utc_builtin),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_tzdata_package),
		cmocka_unit_test(test_berlin_offsets),
		cmocka_unit_test(test_southern_hemisphere),
		cmocka_unit_test(test_local_to_utc_berlin),
		cmocka_unit_test(test_local_to_utc_new_york),
		cmocka_unit_test(test_local_to_utc_lord_howe),
		cmocka_unit_test(test_localtime_fields),
		cmocka_unit_test(test_matches_glibc),
		cmocka_unit_test(test_cache_threads),
	};
	const struct CMUnitTest made[] = {
		cmocka_unit_test(test_tzif_v1),
		cmocka_unit_test(test_tzif_v2_footer_only),
		cmocka_unit_test(test_tzif_v3_rules),
		cmocka_unit_test(test_tzif_corrupt),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	return failed + cmocka_run_group_tests(made, tmpdir_setup, tmpdir_teardown);
}
