/* Templating: names, literals, unknown names as errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orchestrator/template.h"

static int lookup(void *ctx, const char *name, struct strbuf *out, char **err)
{
	(void)ctx;
	if (!strcmp(name, "ds")) {
		sb_puts(out, "2026-11-01");
		return 0;
	}
	if (!strcmp(name, "params.region")) {
		sb_puts(out, "eu");
		return 0;
	}
	if (!strcmp(name, "outputs.x.y")) {
		*err = xstrdup("task 'x' has no output 'y'");
		return -ENOENT;
	}
	return -ENOENT;
}

static char *render_ok(const char *s)
{
	char *out = NULL, *err = NULL;
	assert_int_equal(tmpl_render(s, lookup, NULL, &out, &err), 0);
	assert_null(err);
	return out;
}

static char *render_err(const char *s)
{
	char *out = NULL, *err = NULL;
	assert_int_equal(tmpl_render(s, lookup, NULL, &out, &err), -EINVAL);
	assert_null(out);
	assert_non_null(err);
	return err;
}

static void test_render(void **state)
{
	char *s = render_ok("fetch --day {{ ds }} --region {{params.region}} {{  ds  }}");
	assert_string_equal(s, "fetch --day 2026-11-01 --region eu 2026-11-01");
	free(s);
	s = render_ok("no templates here { } }}");
	assert_string_equal(s, "no templates here { } }}");
	free(s);
	s = render_ok("literal {{ '{{' }} and {{ \"}}\" }}");
	assert_string_equal(s, "literal {{ and }}");
	free(s);
	s = render_ok("");
	assert_string_equal(s, "");
	free(s);
	(void)state;
}

static void test_errors(void **state)
{
	char *e = render_err("echo {{ nope }}");
	assert_non_null(strstr(e, "unknown template name 'nope'"));
	assert_non_null(strstr(e, "echo {{ nope }}"));
	free(e);
	e = render_err("echo {{ outputs.x.y }}");
	assert_non_null(strstr(e, "task 'x' has no output 'y'"));
	free(e);
	e = render_err("echo {{ ds");
	assert_non_null(strstr(e, "missing '}}'"));
	free(e);
	e = render_err("echo {{ ds | upper }}");
	assert_non_null(strstr(e, "expected '}}'"));
	free(e);
	e = render_err("echo {{ }}");
	assert_non_null(strstr(e, "empty"));
	free(e);
	(void)state;
}

static int count_name(void *arg, const char *name)
{
	(*(int *)arg)++;
	return strcmp(name, "stop") == 0 ? 7 : 0;
}

static void test_names(void **state)
{
	int n = 0;
	assert_int_equal(tmpl_names("{{ a }} {{ 'lit' }} {{ b.c }}", count_name, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(tmpl_names("{{ stop }} {{ x }}", count_name, &n), 7);
	assert_int_equal(n, 1);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
