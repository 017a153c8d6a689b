/* The JSON text writer (base/json.c) against cJSON_PrintUnformatted, and format_iso8601's
 * digit-by-digit path against the snprintf form it replaces. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/json.h"
#include "base/util.h"

static void expect_as_cjson(cJSON *tree, struct strbuf *written)
{
	char *want = cJSON_PrintUnformatted(tree);
	assert_string_equal(sb_str(written), want);
	free(want);
	cJSON_Delete(tree);
	sb_free(written);
}

static void test_strings(void **state)
{
	static const char *const cases[] = {"", "plain", "quote\" back\\slash", "\b\f\n\r\t", "\x01\x1f\x7f",
					    "caf\xc3\xa9 \xe2\x82\xac", "</script>", "a/b", NULL};
	(void)state;
	for (int i = 0; cases[i]; i++) {
		struct strbuf sb = {0};
		json_put_string(&sb, cases[i]);
		expect_as_cjson(cJSON_CreateString(cases[i]), &sb);
	}
}

static void test_numbers(void **state)
{
	/* not -0: cJSON prints it as -0 up to 1.7.15 and as 0 after */
	static const double cases[] = {0, 1, -1, 42, 0.1, 0.00416, 1.0 / 3, 123456.789, 1e-7, 1e300, -2.5e-300,
				       2147483647.0, 2147483648.0, -2147483648.0, -2147483649.0, 9007199254740993.0,
				       4.35, 0.30000000000000004};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf sb = {0};
		json_put_number(&sb, cases[i]);
		expect_as_cjson(cJSON_CreateNumber(cases[i]), &sb);
	}
	struct strbuf sb = {0};
	json_put_number(&sb, NAN);
	expect_as_cjson(cJSON_CreateNumber(NAN), &sb);
}

/* The writer's exact shortcuts (integers, microsecond decimals) against the printf form they
 * replace, over values around each of their edges and a pseudo-random sweep. */
static void reference_number(char *buf, size_t n, double v)
{
	snprintf(buf, n, "%1.15g", v);
	double back = strtod(buf, NULL);
	double scale = fabs(back) > fabs(v) ? fabs(back) : fabs(v);
	if (fabs(back - v) > scale * 2.220446049250313e-16)
		snprintf(buf, n, "%1.17g", v);
}

static void expect_reference(double v)
{
	char want[64];
	struct strbuf sb = {0};
	reference_number(want, sizeof(want), v);
	json_put_number(&sb, v);
	if (strcmp(sb_str(&sb), want))
		fail_msg("%.17g: wrote %s, want %s", v, sb_str(&sb), want);
	sb_free(&sb);
}

static void test_numbers_fast_paths(void **state)
{
	static const double edges[] = {-0.0, 1e-4, 9.99e-5, 0.0001234, 1e15, 1e15 - 1, -1e15 + 1, 999999999.999999,
				       1e9, 1e9 + 0.5, 123456789.123456, 0.000001, 0.0000015, 5e-7, 0.1 + 0.2,
				       4503599627370497.0, 1.5, -1.5, 2.675, 1234.5678, 86400.000001, 0.999999,
				       0.9999995, 1e-4 + 1e-6};
	(void)state;
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		expect_reference(edges[i]);
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double us = (double)(x % 100000000000ull); /* microseconds up to ~1.2 days */
		expect_reference(us / 1e6);
		expect_reference(-us / 1e6);
		expect_reference((double)(int64_t)(x >> 12) * (i & 1 ? 1 : -1)); /* integers of every size */
		expect_reference((double)(x % 1000000000ull) / 1000.0);          /* millisecond decimals */
		double r;
		memcpy(&r, &x, sizeof(r));
		if (!isnan(r) && !isinf(r))
			expect_reference(r); /* any double */
	}
}

static void test_object(void **state)
{
	struct strbuf sb = {0};
	struct json_obj o;
	(void)state;
	json_obj_begin(&o, &sb);
	json_obj_str(&o, "s", "x\"y");
	json_obj_str(&o, "nil", NULL);
	json_obj_num(&o, "n", 12.5);
	json_obj_bool(&o, "t", true);
	json_obj_null(&o, "z");
	json_obj_time(&o, "when", 1700000000123456);
	json_obj_time(&o, "never", USEC_NONE);
	json_obj_key(&o, "nested");
	sb_puts(&sb, "{}");
	json_obj_end(&o);
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "s", "x\"y");
	cJSON_AddNullToObject(t, "nil");
	cJSON_AddNumberToObject(t, "n", 12.5);
	cJSON_AddBoolToObject(t, "t", true);
	cJSON_AddNullToObject(t, "z");
	json_add_time(t, "when", 1700000000123456);
	json_add_time(t, "never", USEC_NONE);
	cJSON_AddObjectToObject(t, "nested");
	expect_as_cjson(t, &sb);
	struct strbuf empty = {0};
	json_obj_begin(&o, &empty);
	json_obj_end(&o);
	expect_as_cjson(cJSON_CreateObject(), &empty);
}

/* The fast path must print what the snprintf form printed, microseconds or not. */
static void test_iso8601(void **state)
{
	static const int64_t secs[] = {0, 1, 59, 86399, 86400, 951782400 /* 2000-02-29 */, 1700000000, 4102444800,
				       253402300799 /* 9999-12-31T23:59:59 */, -1, -86401};
	static const long us[] = {0, 1, 999999, 500000};
	(void)state;
	for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		for (size_t k = 0; k < sizeof(us) / sizeof(us[0]); k++) {
			usec_t t = secs[i] * USEC_PER_SEC + us[k];
			char got[ISO_BUFSZ], z[ISO_BUFSZ], want[ISO_BUFSZ + 16];
			format_iso8601(t, got, sizeof(got));
			format_iso8601_z(t, z, sizeof(z)); /* the seconds part, by the unchanged path */
			z[strlen(z) - 1] = '\0';
			if (us[k])
				snprintf(want, sizeof(want), "%s.%06ld+00:00", z, us[k]);
			else
				snprintf(want, sizeof(want), "%s+00:00", z);
			assert_string_equal(got, want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_numbers_fast_paths),
		cmocka_unit_test(test_object),
		cmocka_unit_test(test_iso8601),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
