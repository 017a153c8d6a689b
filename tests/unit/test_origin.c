/* Host and Origin checks (web/origin.c) against DNS rebinding and cross-site requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "web/origin.h"

static bool ok(const char *host, const char *origin, const char *allowed)
{
	const char *why = NULL;
	bool r = origin_allowed(host, origin, 8080, allowed, &why);
	assert_true(r || why);
	return r;
}

static void test_hosts(void **state)
{
	assert_true(ok("127.0.0.1:8080", NULL, NULL));
	assert_true(ok("localhost:8080", NULL, NULL));
	assert_true(ok("LOCALHOST:8080", NULL, NULL));
	assert_true(ok("[::1]:8080", NULL, NULL));
	assert_true(ok("10.1.2.3:8080", NULL, NULL));
	assert_true(ok("sluice.internal:8080", NULL, "a.example, sluice.internal"));
	assert_false(ok("sluice.internal:8080", NULL, "sluice.internal.evil"));
	assert_false(ok("evil.example:8080", NULL, NULL));     /* a rebound name */
	assert_false(ok("127.0.0.1:8081", NULL, NULL));        /* another port */
	assert_false(ok("127.0.0.1", NULL, NULL));             /* port 80 is not ours */
	assert_false(ok(NULL, NULL, NULL));
	assert_false(ok("", NULL, NULL));
	assert_false(ok("127.0.0.1:x", NULL, NULL));
	assert_false(ok("[::1", NULL, NULL));
	(void)state;
}

static void test_origins(void **state)
{
	assert_true(ok("127.0.0.1:8080", "http://127.0.0.1:8080", NULL));
	assert_true(ok("localhost:8080", "http://localhost:8080", NULL));
	assert_false(ok("127.0.0.1:8080", "http://evil.example", NULL));
	assert_false(ok("127.0.0.1:8080", "http://127.0.0.1:9999", NULL));
	assert_false(ok("127.0.0.1:8080", "http://localhost:8080", NULL));
	assert_false(ok("127.0.0.1:8080", "null", NULL));
	assert_false(ok("127.0.0.1:8080", "file://", NULL));
	assert_false(ok("127.0.0.1:8080", "http://127.0.0.1", NULL));
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hosts),
		cmocka_unit_test(test_origins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
