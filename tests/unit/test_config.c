/* Configuration rows with bounds (orchestrator/config.c): types, ranges, sources in order
 * (default < sluice.cfg < SLUICE__SECTION__KEY < flag), and errors that name the file, the line
 * and the reason. */
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

#include "orchestrator/config.h"

static char home[64];

static int setup(void **state)
{
	snprintf(home, sizeof(home), "/tmp/sluice-config-XXXXXX");
	assert_non_null(mkdtemp(home));
	unsetenv("SLUICE__CORE__PARALLELISM");
	unsetenv("SLUICE__WEBSERVER__PORT");
	(void)state;
	return 0;
}

static int teardown(void **state)
{
	remove_tree("/tmp", home);
	(void)state;
	return 0;
}

static void write_cfg(const char *text)
{
	char *p = xasprintf("%s/sluice.cfg", home);
	assert_int_equal(write_file_atomic(p, text, strlen(text), false), 0);
	free(p);
}

/* Loads and expects failure with a message containing want. */
static void load_fails(const char *want)
{
	struct config cfg;
	char *err = NULL;
	assert_true(config_load(&cfg, home, &err) < 0);
	if (!strstr(err, want))
		fail_msg("wanted '%s' in '%s'", want, err);
	free(err);
	config_free(&cfg);
}

static void test_defaults(void **state)
{
	struct config cfg;
	char *err = NULL;
	assert_int_equal(config_load(&cfg, home, &err), 0);
	assert_int_equal(cfg.parallelism, 32);
	assert_int_equal(cfg.port, 8080);
	assert_string_equal(cfg.bind, "127.0.0.1");
	assert_int_equal(cfg.kill_grace, 5 * USEC_PER_SEC);
	assert_int_equal(cfg.dag_memory_limit, 64u << 20);
	assert_string_equal(cfg.db_synchronous, "normal");
	assert_int_equal(cfg.max_log_size, (size_t)1 << 30);
	assert_int_equal(cfg.max_connections, 2000);
	assert_int_equal(cfg.max_connections_per_address, 64);
	assert_false(cfg.expose_config);
	config_free(&cfg);
	(void)state;
}

static void test_out_of_range_values_name_file_line_and_reason(void **state)
{
	char *path = xasprintf("%s/sluice.cfg:6: webserver.port = 70000: must be between 0 and 65535", home);
	write_cfg("# comment\n[core]\n\nparallelism = 4\n[webserver]\nport = 70000\n");
	load_fails(path);
	free(path);
	write_cfg("[core]\nparallelism = 0\n");
	load_fails("sluice.cfg:2: core.parallelism = 0: must be between 1 and 4096");
	write_cfg("[core]\nparallelism = -3\n");
	load_fails("must be between 1 and 4096");
	write_cfg("[core]\nparallelism = lots\n");
	load_fails("core.parallelism = lots: not an integer");
	write_cfg("[core]\nkill_grace = 2h\n");
	load_fails("must be between 100ms and 1h");
	write_cfg("[core]\ndag_file_memory_limit = ten GiB\n");
	load_fails("not a size");
	write_cfg("[core]\ndag_file_memory_limit = 100k\n");
	load_fails("must be between 1MiB and 16384MiB");
	write_cfg("[webserver]\nbind =\n");
	load_fails("webserver.bind: must not be empty");
	write_cfg("[core]\ndb_synchronous = off\n");
	load_fails("core.db_synchronous = off: must be one of normal full");
	write_cfg("[webserver]\nmax_connections = 5\n");
	load_fails("must be between 16 and 100000");
	write_cfg("[webserver]\nmax_event_streams = 0\n");
	load_fails("must be between 1 and 65536");
	(void)state;
}

static void test_unknown_keys_and_syntax(void **state)
{
	write_cfg("[core]\nparalelism = 4\n");
	load_fails("sluice.cfg:2: unknown option 'core.paralelism' (did you mean 'core.parallelism'?)");
	write_cfg("[nowhere]\nthing = 1\n");
	load_fails("unknown option 'nowhere.thing'");
	write_cfg("[core\n");
	load_fails("sluice.cfg:1: missing ']'");
	write_cfg("[core]\n\n\njust words\n");
	load_fails("sluice.cfg:4: expected key = value");
	(void)state;
}

static void test_comments_after_values(void **state)
{
	struct config cfg;
	char *err = NULL;
	write_cfg("[core]\nparallelism = 8   # per host\n[webserver]\nbind = 127.0.0.1 ; loopback only\n");
	assert_int_equal(config_load(&cfg, home, &err), 0);
	assert_int_equal(cfg.parallelism, 8);
	assert_string_equal(cfg.bind, "127.0.0.1");
	config_free(&cfg);
	(void)state;
}

static void test_sources_in_order(void **state)
{
	struct config cfg;
	char *err = NULL;
	write_cfg("[core]\nparallelism = 4\n[webserver]\nport = 9000\n");
	setenv("SLUICE__CORE__PARALLELISM", "6", 1);
	assert_int_equal(config_load(&cfg, home, &err), 0);
	assert_int_equal(cfg.parallelism, 6);
	assert_int_equal(cfg.port, 9000);
	assert_int_equal(config_set(&cfg, "webserver.port", "0", &err), 0);
	assert_int_equal(cfg.port, 0);
	assert_int_equal(config_set(&cfg, "webserver.port", "65536", &err), -ERANGE);
	assert_non_null(strstr(err, "must be between 0 and 65535"));
	free(err);
	err = NULL;
	assert_int_equal(cfg.port, 0); /* a refused value changes nothing */
	assert_int_equal(config_set(&cfg, "webserver.prot", "1", &err), -ENOENT);
	assert_non_null(strstr(err, "did you mean 'webserver.port'"));
	free(err);
	err = NULL;
	config_free(&cfg);
	setenv("SLUICE__CORE__PARALLELISM", "0", 1);
	load_fails("environment SLUICE__CORE__PARALLELISM: core.parallelism = 0: must be between 1 and 4096");
	unsetenv("SLUICE__CORE__PARALLELISM");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range_values_name_file_line_and_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keys_and_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sources_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_comments_after_values, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
