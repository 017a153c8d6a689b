/* Trigger rules, retry arithmetic and states. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "orchestrator/dag.h"

/* counts: total, success, failed, skipped, upstream_failed */
static enum tr_decision ev(enum trigger_rule tr, int total, int s, int f, int k, int uf)
{
	struct up_counts c = {total, s, f, k, uf, 0};
	return trigger_rule_eval(tr, &c);
}

static void test_all_success(void **state)
{
	assert_int_equal(ev(TR_ALL_SUCCESS, 0, 0, 0, 0, 0), TR_RUN);
	assert_int_equal(ev(TR_ALL_SUCCESS, 2, 1, 0, 0, 0), TR_WAIT);
	assert_int_equal(ev(TR_ALL_SUCCESS, 2, 2, 0, 0, 0), TR_RUN);
	assert_int_equal(ev(TR_ALL_SUCCESS, 3, 1, 1, 0, 0), TR_UPSTREAM_FAILED); /* decided early */
	assert_int_equal(ev(TR_ALL_SUCCESS, 2, 0, 0, 0, 1), TR_UPSTREAM_FAILED);
	assert_int_equal(ev(TR_ALL_SUCCESS, 2, 1, 0, 1, 0), TR_SKIP);
	assert_int_equal(ev(TR_ALL_SUCCESS, 3, 0, 1, 1, 0), TR_UPSTREAM_FAILED); /* failure wins */
	(void)state;
}

static void test_other_rules(void **state)
{
	assert_int_equal(ev(TR_ALL_FAILED, 2, 0, 1, 0, 0), TR_WAIT);
	assert_int_equal(ev(TR_ALL_FAILED, 2, 0, 1, 0, 1), TR_RUN);
	assert_int_equal(ev(TR_ALL_FAILED, 2, 1, 0, 0, 0), TR_SKIP);
	assert_int_equal(ev(TR_ALL_DONE, 3, 1, 1, 0, 0), TR_WAIT);
	assert_int_equal(ev(TR_ALL_DONE, 3, 1, 1, 1, 0), TR_RUN);
	assert_int_equal(ev(TR_ALL_SKIPPED, 2, 0, 0, 2, 0), TR_RUN);
	assert_int_equal(ev(TR_ALL_SKIPPED, 2, 1, 0, 0, 0), TR_SKIP);
	assert_int_equal(ev(TR_ONE_SUCCESS, 3, 1, 0, 0, 0), TR_RUN);
	assert_int_equal(ev(TR_ONE_SUCCESS, 3, 0, 1, 0, 0), TR_WAIT);
	assert_int_equal(ev(TR_ONE_SUCCESS, 2, 0, 1, 1, 0), TR_UPSTREAM_FAILED);
	assert_int_equal(ev(TR_ONE_SUCCESS, 2, 0, 0, 2, 0), TR_SKIP);
	assert_int_equal(ev(TR_ONE_FAILED, 3, 0, 1, 0, 0), TR_RUN);
	assert_int_equal(ev(TR_ONE_FAILED, 2, 1, 0, 0, 0), TR_WAIT);
	assert_int_equal(ev(TR_ONE_FAILED, 2, 2, 0, 0, 0), TR_SKIP);
	assert_int_equal(ev(TR_ONE_DONE, 3, 0, 1, 0, 0), TR_RUN);
	assert_int_equal(ev(TR_ONE_DONE, 2, 0, 0, 2, 0), TR_SKIP);
	assert_int_equal(ev(TR_NONE_FAILED, 2, 1, 0, 1, 0), TR_RUN);
	assert_int_equal(ev(TR_NONE_FAILED, 2, 1, 0, 0, 0), TR_WAIT);
	assert_int_equal(ev(TR_NONE_FAILED, 3, 1, 1, 0, 0), TR_UPSTREAM_FAILED);
	assert_int_equal(ev(TR_NONE_FAILED_MIN_ONE_SUCCESS, 2, 1, 0, 1, 0), TR_RUN);
	assert_int_equal(ev(TR_NONE_FAILED_MIN_ONE_SUCCESS, 2, 0, 0, 2, 0), TR_SKIP);
	assert_int_equal(ev(TR_NONE_FAILED_MIN_ONE_SUCCESS, 2, 0, 0, 0, 1), TR_UPSTREAM_FAILED);
	assert_int_equal(ev(TR_NONE_SKIPPED, 2, 1, 1, 0, 0), TR_RUN);
	assert_int_equal(ev(TR_NONE_SKIPPED, 3, 1, 0, 1, 0), TR_SKIP);
	assert_int_equal(ev(TR_ALWAYS, 3, 0, 0, 0, 0), TR_RUN);
	(void)state;
}

static void test_rule_names(void **state)
{
	for (int i = 0; i < TR__COUNT; i++)
		assert_int_equal(trigger_rule_parse(trigger_rule_name((enum trigger_rule)i)), i);
	assert_int_equal(trigger_rule_parse("most_success"), -1);
	for (int i = 0; i < TI__COUNT; i++)
		assert_int_equal(ti_state_parse(ti_state_name((enum ti_state)i)), i);
	assert_int_equal(ti_state_parse("null"), TI_NONE);
	assert_true(ti_state_finished(TI_UPSTREAM_FAILED));
	assert_false(ti_state_finished(TI_UP_FOR_RETRY));
	(void)state;
}

static void test_retry_delay(void **state)
{
	struct task t = {0};
	t.retry_delay = 30 * USEC_PER_SEC;
	assert_int_equal(task_retry_delay(&t, 1, 0.5), 30 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 4, 0.5), 30 * USEC_PER_SEC);
	t.retry_exponential_backoff = true;
	assert_int_equal(task_retry_delay(&t, 1, 0.0), 30 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 2, 0.0), 60 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 3, 0.0), 120 * USEC_PER_SEC);
	/* jitter adds up to 10% */
	usec_t j = task_retry_delay(&t, 3, 0.999);
	assert_true(j > 120 * USEC_PER_SEC && j < 132 * USEC_PER_SEC);
	/* capped by max_retry_delay */
	t.max_retry_delay = 100 * USEC_PER_SEC;
	assert_int_equal(task_retry_delay(&t, 3, 0.5), 100 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 60, 0.5), 100 * USEC_PER_SEC);
	/* without a cap the built-in 24h applies, and huge tries do not overflow */
	t.max_retry_delay = 0;
	assert_int_equal(task_retry_delay(&t, 200, 0.5), DAG_DEFAULT_MAX_RETRY_DELAY);
	(void)state;
}

static void test_no_retry_codes(void **state)
{
	int codes[] = {2, 5};
	struct task t = {.no_retry_exit_codes = codes, .n_no_retry = 2};
	assert_false(task_retryable_exit(&t, 2));
	assert_false(task_retryable_exit(&t, 5));
	assert_true(task_retryable_exit(&t, 1));
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_success),
		cmocka_unit_test(test_other_rules),
		cmocka_unit_test(test_rule_names),
		cmocka_unit_test(test_retry_delay),
		cmocka_unit_test(test_no_retry_codes),
	};
	return cmocka_run_group_tests_name("dag", tests, NULL, NULL);
}
