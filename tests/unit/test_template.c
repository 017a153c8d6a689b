/* Templating: names, literals, unknown names as errors, and values a shell reads as data. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	if (!strcmp(name, "conf.evil")) {
		sb_puts(out, "$(touch /tmp/pwned) `id` \"q\" 'x' \\ ; rm -rf ~");
		return 0;
	}
	if (!strcmp(name, "conf.spaced")) {
		sb_puts(out, "a b");
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
	assert_non_null(strstr(e, "unknown filter"));
	free(e);
	e = render_err("echo {{ ds | raw x }}");
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

static char *render_sh(const char *s)
{
	char *out = NULL, *err = NULL;
	assert_int_equal(tmpl_render_shell(s, lookup, NULL, &out, &err), 0);
	return out;
}

/* What /bin/sh makes of cmd: its output (at most 4 KiB). */
static char *sh_output(const char *cmd)
{
	char *full = xasprintf("cd /tmp && %s", cmd), buf[4096];
	FILE *p = popen(full, "r");
	size_t n = p ? fread(buf, 1, sizeof(buf) - 1, p) : 0;
	if (p)
		pclose(p);
	buf[n] = '\0';
	free(full);
	return xstrdup(buf);
}

static void test_shell_quoting(void **state)
{
	static const char evil[] = "$(touch /tmp/pwned) `id` \"q\" 'x' \\ ; rm -rf ~";
	/* Plain values stay as they are, so ordinary commands read the same. */
	char *o = render_sh("fetch --day {{ ds }} --region {{ params.region }}");
	assert_string_equal(o, "fetch --day 2026-11-01 --region eu");
	free(o);
	/* Bare, in '...' and in "...": the shell prints the value back, byte for byte, and runs none of it. */
	static const char *const cmds[] = {
		"printf '%s' {{ conf.evil }}",
		"printf '%s' '{{ conf.evil }}'",
		"printf '%s' \"{{ conf.evil }}\"",
		"printf '%s' \"pre {{ conf.evil }} post\" | sed 's/^pre //; s/ post$//'",
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		o = render_sh(cmds[i]);
		char *got = sh_output(o);
		if (strcmp(got, evil))
			fail_msg("%s rendered as %s printed %s", cmds[i], o, got);
		free(got);
		free(o);
	}
	assert_int_not_equal(access("/tmp/pwned", F_OK), 0);
	/* A value with a space stays one word. */
	o = render_sh("printf '<%s>' {{ conf.spaced }}");
	char *got = sh_output(o);
	assert_string_equal(got, "<a b>");
	free(got);
	free(o);
	/* A backslash right before a value would escape its quoting: refused, never rendered
	 * (found by tests/fuzz/fuzz_template.c). */
	static const char *const escaped[] = {"printf '%s' \\{{ conf.evil }}", "printf '%s' \"\\{{ conf.evil }}\"",
					      "echo \\{{ '' }}{{ conf.spaced }}"};
	for (size_t i = 0; i < sizeof(escaped) / sizeof(escaped[0]); i++) {
		char *err = NULL;
		o = NULL;
		assert_int_equal(tmpl_render_shell(escaped[i], lookup, NULL, &o, &err), -EINVAL);
		assert_null(o);
		assert_non_null(strstr(err, "backslash"));
		free(err);
	}
	o = render_sh("printf '%s' \\\\{{ ds }} '\\{{ ds }}'");
	assert_string_equal(o, "printf '%s' \\\\2026-11-01 '\\2026-11-01'");
	free(o);
	/* | raw is the way to write shell syntax through a value, on purpose. */
	o = render_sh("echo {{ conf.spaced | raw }}");
	assert_string_equal(o, "echo a b");
	free(o);
	/* tmpl_render (argv elements, paths) never quotes. */
	o = render_ok("{{ conf.spaced }}");
	assert_string_equal(o, "a b");
	free(o);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_shell_quoting),
	};
	return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
