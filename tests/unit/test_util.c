/* Durations, ISO-8601 dates, SHA-256, ids. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/strindex.h"
#include "base/trylog.h"
#include "base/util.h"

static void test_durations(void **state)
{
	usec_t d;
	assert_int_equal(parse_duration("30s", &d), 0);
	assert_int_equal(d, 30 * USEC_PER_SEC);
	assert_int_equal(parse_duration("1h30m", &d), 0);
	assert_int_equal(d, 5400 * USEC_PER_SEC);
	assert_int_equal(parse_duration("2d", &d), 0);
	assert_int_equal(d, 172800 * USEC_PER_SEC);
	assert_int_equal(parse_duration("500ms", &d), 0);
	assert_int_equal(d, 500000);
	assert_int_equal(parse_duration("1.5", &d), 0);
	assert_int_equal(d, 1500000);
	assert_int_equal(parse_duration("10m 5s", &d), 0);
	assert_int_equal(d, 605 * USEC_PER_SEC);
	assert_int_equal(parse_duration("", &d), -EINVAL);
	assert_int_equal(parse_duration("abc", &d), -EINVAL);
	assert_int_equal(parse_duration("5 parsecs", &d), -EINVAL);
	assert_int_equal(parse_duration("-5s", &d), -EINVAL);
	assert_int_equal(parse_duration("5s10", &d), -EINVAL);
	char buf[32];
	format_duration(5400 * USEC_PER_SEC, buf, sizeof(buf));
	assert_string_equal(buf, "1h30m");
	format_duration(250000, buf, sizeof(buf));
	assert_string_equal(buf, "250ms");
	(void)state;
}

static void test_iso8601(void **state)
{
	usec_t t;
	char buf[ISO_BUFSZ];
	assert_int_equal(parse_iso8601("2026-11-01", &t), 0);
	format_iso8601(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-01T00:00:00+00:00");
	assert_int_equal(parse_iso8601("2026-11-20T17:00:00.25+01:00", &t), 0);
	format_iso8601(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-20T16:00:00.250000+00:00");
	format_iso8601_z(t, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-20T16:00:00Z");
	assert_int_equal(parse_iso8601("2024-02-29 23:59:59Z", &t), 0);
	assert_int_equal(parse_iso8601("2025-02-29", &t), -EINVAL);
	assert_int_equal(parse_iso8601("2026-13-01", &t), -EINVAL);
	assert_int_equal(parse_iso8601("2026-11-01T25:00", &t), -EINVAL);
	assert_int_equal(parse_iso8601("yesterday", &t), -EINVAL);
	assert_int_equal(parse_iso8601("1969-12-31T23:59:59Z", &t), 0);
	assert_int_equal(t, -USEC_PER_SEC);
	format_iso8601(t, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59+00:00");
	(void)state;
}

static void test_sha256(void **state)
{
	char h[65];
	sha256_hex("abc", 3, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* 56 bytes: the padding spills into a second block */
	sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	(void)state;
}

static void test_ids_and_strbuf(void **state)
{
	assert_true(valid_id("sales_daily.v2-x"));
	assert_false(valid_id("a b"));
	assert_false(valid_id(""));
	assert_false(valid_id("a/b"));
	struct strbuf sb = {0};
	for (int i = 0; i < 1000; i++)
		sb_printf(&sb, "%d,", i);
	assert_int_equal(strlen(sb_str(&sb)), sb.len);
	assert_memory_equal(sb.buf, "0,1,2,", 6);
	sb_free(&sb);
	(void)state;
}

/* Query-string booleans as Airflow reads them: any case of true/false, and 1/0. */
static void test_parse_bool(void **state)
{
	(void)state;
	bool b = false;
	const char *yes[] = {"true", "True", "TRUE", "tRuE", "1"}, *no[] = {"false", "False", "FALSE", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		b = false;
		assert_true(parse_bool(yes[i], &b));
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++) {
		b = true;
		assert_true(parse_bool(no[i], &b));
		assert_false(b);
	}
	const char *bad[] = {"", "yes", "2", "truee", " true", "t", NULL};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		b = true;
		assert_false(parse_bool(bad[i], &b));
		assert_true(b); /* untouched */
	}
	assert_true(contains_nocase("ETL_Upper", "etl"));
	assert_true(contains_nocase("etl", ""));
	assert_true(contains_nocase("sales_ETL", "Etl"));
	assert_false(contains_nocase("et", "etl"));
	assert_false(contains_nocase("", "x"));
	/* UTF-8: well-formed text passes; stray, overlong, surrogate and out-of-range bytes do not. */
	const char *good[] = {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", NULL};
	const char *bad_utf8[] = {"\xff", "\xc3", "\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
				  "\xf4\x90\x80\x80", "ok\xe2\x82", NULL};
	for (size_t i = 0; good[i]; i++)
		assert_true(utf8_valid(good[i], strlen(good[i])));
	for (size_t i = 0; bad_utf8[i]; i++)
		assert_false(utf8_valid(bad_utf8[i], strlen(bad_utf8[i])));
	char *clean = utf8_sanitize("caf\xe9 \xe2\x82\xac ok\xc3");
	assert_string_equal(clean, "caf\xef\xbf\xbd \xe2\x82\xac ok\xef\xbf\xbd");
	free(clean);
}

/* The streaming masker: a secret split across pieces is still masked, the tail that may start
 * one waits, short values are left alone, and a final piece flushes everything. */
static void test_masker(void **state)
{
	(void)state;
	char path[] = "/tmp/sluice-test-mask-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char secrets[] = "hunter22\0abc\0s3cr3t-token";
	assert_int_equal(write(fd, secrets, sizeof(secrets)), (ssize_t)sizeof(secrets));
	close(fd);
	struct masker m = {0};
	masker_load(&m, path);
	unlink(path);
	assert_int_equal(m.n, 2); /* "abc" is shorter than MASK_MIN_LEN */
	struct strbuf out = {0};
	masker_feed(&m, "pw=hun", 6, false, &out);
	assert_true(masker_pending(&m) > 0);
	masker_feed(&m, "ter22 abc s3cr3t-", 17, false, &out);
	masker_feed(&m, "token end", 9, true, &out);
	assert_string_equal(sb_str(&out), "pw=*** abc *** end");
	assert_int_equal(masker_pending(&m), 0);
	masker_free(&m);
	sb_free(&out);
	struct masker none = {0};
	masker_load(&none, "/nonexistent/mask");
	masker_feed(&none, "as is", 5, false, &out);
	assert_string_equal(sb_str(&out), "as is");
	masker_free(&none);
	sb_free(&out);
}

/* trylog_append: the log takes max bytes in all, then one note, then nothing. */
static void test_trylog_cap(void **state)
{
	(void)state;
	char path[] = "/tmp/sluice-test-trylog-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	long long written = 0;
	bool capped = false;
	trylog_append(fd, path, "test", "abcdef", 6, 10, &written, &capped);
	assert_false(capped);
	trylog_append(fd, path, "test", "ghijkl", 6, 10, &written, &capped);
	assert_true(capped);
	trylog_append(fd, path, "test", "more", 4, 10, &written, &capped);
	close(fd);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(read_file(path, 4096, &text, &len), 0);
	unlink(path);
	static const char want[] = "abcdefghij\nsluice: the log reached core.max_log_size (10 bytes)";
	assert_true(len > sizeof(want) - 1);
	assert_memory_equal(text, want, sizeof(want) - 1);
	assert_null(strstr(text, "more"));
	free(text);
}

/* mkdir_p walks up from the leaf: missing levels are made, existing ones are fine, and a file
 * in the way is an error. */
static void test_mkdir_p(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/sluice-mkdirp.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char *deep = xasprintf("%s/a/b/c/d", tmpl), *file = xasprintf("%s/f", tmpl);
	char *under_file = xasprintf("%s/f/x/y", tmpl), *slash = xasprintf("%s/e/", tmpl);
	struct stat st;
	assert_int_equal(mkdir_p(deep, 0700), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(mkdir_p(deep, 0700), 0); /* there already */
	assert_int_equal(mkdir_p(slash, 0700), 0);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(mkdir_p(under_file, 0700), -ENOTDIR);
	char *cmd = xasprintf("rm -rf '%s'", tmpl);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(deep);
	free(file);
	free(under_file);
	free(slash);
}

/* The id index: every key found after many growths, replaced values, absent keys, clear. */
static void test_strindex(void **state)
{
	(void)state;
	struct strindex ix = {0};
	size_t v = 99;
	assert_false(strindex_get(&ix, "a", &v)); /* empty, never allocated */
	enum { N = 5000 };
	char **keys = xcalloc(N, sizeof(char *));
	for (size_t i = 0; i < N; i++) {
		keys[i] = xasprintf("task_%zu", i);
		strindex_put(&ix, keys[i], i);
	}
	assert_int_equal(ix.count, N);
	for (size_t i = 0; i < N; i++) {
		assert_true(strindex_get(&ix, keys[i], &v));
		assert_int_equal(v, i);
	}
	char probe[32];
	snprintf(probe, sizeof(probe), "task_%d", 17);
	assert_true(strindex_get(&ix, probe, &v)); /* equal content, another pointer */
	assert_int_equal(v, 17);
	assert_false(strindex_get(&ix, "task_", &v));
	assert_false(strindex_get(&ix, "", &v));
	strindex_put(&ix, probe, 4242); /* an equal key replaces the value */
	assert_int_equal(ix.count, N);
	assert_true(strindex_get(&ix, keys[17], &v));
	assert_int_equal(v, 4242);
	strindex_clear(&ix);
	assert_int_equal(ix.count, 0);
	assert_false(strindex_get(&ix, keys[1], &v));
	strindex_put(&ix, keys[1], 1);
	assert_true(strindex_get(&ix, keys[1], &v));
	assert_false(strindex_get(&ix, keys[2], &v));
	strindex_free(&ix);
	for (size_t i = 0; i < N; i++)
		free(keys[i]);
	free(keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_iso8601),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_ids_and_strbuf),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_masker),
		cmocka_unit_test(test_trylog_cap),
		cmocka_unit_test(test_mkdir_p),
		cmocka_unit_test(test_strindex),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
