/* Safe identifiers and the paths built from them: valid_id, valid_run_id, path_under and a
 * remove_tree that never leaves its root. */
#include <errno.h>
#include <limits.h>
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

#include "base/util.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/sluice-paths-XXXXXX");
	assert_non_null(mkdtemp(dir));
	(void)state;
	return 0;
}

static int teardown(void **state)
{
	remove_tree("/tmp", dir);
	(void)state;
	return 0;
}

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void test_ids(void **state)
{
	assert_true(valid_id("etl_chain.v2-x"));
	assert_false(valid_id(""));
	assert_false(valid_id(NULL));
	assert_false(valid_id("."));
	assert_false(valid_id(".."));
	assert_true(valid_id("..."));
	assert_false(valid_id("a/b"));
	assert_false(valid_id("a b"));
	assert_false(valid_id("a:b"));
	char long_id[ID_MAX + 2];
	memset(long_id, 'a', sizeof(long_id));
	long_id[ID_MAX] = '\0';
	assert_true(valid_id(long_id));
	long_id[ID_MAX] = 'a';
	long_id[ID_MAX + 1] = '\0';
	assert_false(valid_id(long_id));
	(void)state;
}

static void test_run_ids(void **state)
{
	assert_true(valid_run_id("manual__2026-11-05T03:00:00.123456+00:00"));
	assert_true(valid_run_id("scheduled__2026-11-05T03:00:00+00:00"));
	assert_true(valid_run_id("my~run_1.2-3"));
	assert_false(valid_run_id("../../../x"));
	assert_false(valid_run_id(".."));
	assert_false(valid_run_id("."));
	assert_false(valid_run_id("a/b"));
	assert_false(valid_run_id("a\\b"));
	assert_false(valid_run_id("a b"));
	assert_false(valid_run_id("a%2Fb"));
	assert_false(valid_run_id(""));
	char *big = xmalloc(100001);
	memset(big, 'r', 100000);
	big[100000] = '\0';
	assert_false(valid_run_id(big));
	big[ID_MAX] = '\0';
	assert_true(valid_run_id(big));
	free(big);
	(void)state;
}

static void test_path_under(void **state)
{
	char *p = path_under("/home/s", "logs", "dag", "run", NULL);
	assert_string_equal(p, "/home/s/logs/dag/run");
	free(p);
	assert_null(path_under("/home/s", "logs", "..", "run", NULL));
	assert_null(path_under("/home/s", "logs", "dag", "../../x", NULL));
	assert_null(path_under("/home/s", "logs", ".", NULL));
	assert_null(path_under("/home/s", "logs", "", NULL));
	assert_null(path_under("/home/s", "logs", "a/b", NULL));
	assert_true(path_component_ok("..."));
	(void)state;
}

static void test_remove_tree_stays_under_root(void **state)
{
	char root[128], inside[160], outside[128], victim[160], link[192], file[200];
	snprintf(root, sizeof(root), "%s/home", dir);
	snprintf(inside, sizeof(inside), "%s/logs/d/r", root);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	snprintf(victim, sizeof(victim), "%s/keep.txt", outside);
	assert_int_equal(mkdir_p(inside, 0755), 0);
	assert_int_equal(mkdir_p(outside, 0755), 0);
	touch(victim);
	snprintf(file, sizeof(file), "%s/1.log", inside);
	touch(file);

	/* ".." that leaves the root, the root itself and a symlink out of it are all refused. */
	char escape[256];
	snprintf(escape, sizeof(escape), "%s/logs/../../outside", root);
	assert_int_equal(remove_tree(root, escape), -EPERM);
	assert_int_equal(remove_tree(root, root), -EPERM);
	snprintf(link, sizeof(link), "%s/logs/evil", root);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(remove_tree(root, link), -EPERM);
	assert_true(exists(victim));

	/* A symlink below the removed folder is unlinked, not followed. */
	char inner_link[256];
	snprintf(inner_link, sizeof(inner_link), "%s/out", inside);
	assert_int_equal(symlink(outside, inner_link), 0);
	assert_int_equal(remove_tree(root, inside), 0);
	assert_false(exists(inside));
	assert_true(exists(victim));
	assert_int_equal(remove_tree(root, inside), 0); /* missing is not an error */
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_run_ids),
		cmocka_unit_test(test_path_under),
		cmocka_unit_test_setup_teardown(test_remove_tree_stays_under_root, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
