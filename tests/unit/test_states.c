/* The state tables (orchestrator/states.c): allowed and refused transitions, a run's outcome
 * from its leaves, and the reset of a cleared task instance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orchestrator/states.h"

static void test_task_instance_transitions(void **state)
{
	static const enum ti_state allowed[][2] = {
		{TI_NONE, TI_SCHEDULED}, {TI_NONE, TI_SKIPPED}, {TI_NONE, TI_UPSTREAM_FAILED},
		{TI_SCHEDULED, TI_QUEUED}, {TI_QUEUED, TI_RUNNING}, {TI_RUNNING, TI_SUCCESS},
		{TI_RUNNING, TI_FAILED}, {TI_RUNNING, TI_UP_FOR_RETRY}, {TI_RUNNING, TI_UP_FOR_RESCHEDULE},
		{TI_RUNNING, TI_SKIPPED}, {TI_UP_FOR_RETRY, TI_SCHEDULED}, {TI_UP_FOR_RESCHEDULE, TI_SCHEDULED},
		{TI_UP_FOR_RESCHEDULE, TI_FAILED}, {TI_SUCCESS, TI_NONE}, {TI_FAILED, TI_NONE},
		{TI_UPSTREAM_FAILED, TI_NONE}, {TI_SKIPPED, TI_NONE}, {TI_RUNNING, TI_RUNNING},
	};
	static const enum ti_state refused[][2] = {
		{TI_SUCCESS, TI_RUNNING}, {TI_SUCCESS, TI_FAILED}, {TI_FAILED, TI_SUCCESS},
		{TI_NONE, TI_RUNNING}, {TI_NONE, TI_SUCCESS}, {TI_SCHEDULED, TI_RUNNING},
		{TI_RUNNING, TI_QUEUED}, {TI_RUNNING, TI_NONE}, {TI_QUEUED, TI_NONE},
		{TI_SKIPPED, TI_SCHEDULED}, {TI_UPSTREAM_FAILED, TI_QUEUED},
	};
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (!ti_transition_allowed(allowed[i][0], allowed[i][1]))
			fail_msg("%s -> %s should be allowed", ti_state_name(allowed[i][0]), ti_state_name(allowed[i][1]));
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (ti_transition_allowed(refused[i][0], refused[i][1]))
			fail_msg("%s -> %s should be refused", ti_state_name(refused[i][0]), ti_state_name(refused[i][1]));
	assert_false(ti_transition_allowed(TI__COUNT, TI_NONE));
	/* A finished state can only be cleared, or removed with its task. */
	for (int f = 0; f < TI__COUNT; f++)
		for (int t = 0; t < TI__COUNT; t++)
			if (ti_state_finished((enum ti_state)f) && f != t && ti_transition_allowed((enum ti_state)f, (enum ti_state)t))
				assert_true(t == TI_NONE || t == TI_REMOVED);
	/* Any state may become removed (its task left the DAG). */
	for (int f = 0; f < TI__COUNT; f++)
		assert_true(ti_transition_allowed((enum ti_state)f, TI_REMOVED));
	(void)state;
}

static void test_a_refused_transition_is_reported(void **state)
{
	struct ti_row t;
	ti_row_init(&t);
	t.dag_id = "d";
	t.run_id = "r";
	t.task_id = "a";
	unsetenv("SLUICE_STRICT_STATES");
	assert_false(ti_transition(&t, TI_SUCCESS, TI_RUNNING));
	assert_true(ti_transition(&t, TI_QUEUED, TI_RUNNING));
	(void)state;
}

static void test_run_transitions(void **state)
{
	assert_true(run_transition_allowed(RUN_QUEUED, RUN_RUNNING));
	assert_true(run_transition_allowed(RUN_RUNNING, RUN_SUCCESS));
	assert_true(run_transition_allowed(RUN_RUNNING, RUN_FAILED));
	assert_true(run_transition_allowed(RUN_FAILED, RUN_QUEUED));
	assert_false(run_transition_allowed(RUN_SUCCESS, RUN_FAILED));
	assert_false(run_transition_allowed(RUN_QUEUED, RUN_SUCCESS));
	for (int s = 0; s < RUN__COUNT; s++)
		assert_int_equal(run_state_parse(run_state_name((enum run_state)s)), s);
	assert_int_equal(run_state_parse("bogus"), -1);
	(void)state;
}

static void test_run_outcome(void **state)
{
	enum ti_state ok[] = {TI_SUCCESS, TI_SKIPPED, TI_SUCCESS};
	enum ti_state bad[] = {TI_SUCCESS, TI_UPSTREAM_FAILED};
	enum ti_state worse[] = {TI_FAILED};
	assert_int_equal(run_outcome(ok, 3, false), RUN_SUCCESS);
	assert_int_equal(run_outcome(ok, 3, true), RUN_FAILED);
	assert_int_equal(run_outcome(bad, 2, false), RUN_FAILED);
	assert_int_equal(run_outcome(worse, 1, false), RUN_FAILED);
	assert_int_equal(run_outcome(NULL, 0, false), RUN_SUCCESS);
	(void)state;
}

static void test_clear_row(void **state)
{
	struct ti_row t;
	ti_row_init(&t);
	t.state = strdup("failed");
	t.hostname = strdup("worker-1");
	t.external_id = strdup("job-7");
	t.try_number = 3;
	t.max_tries = 3;
	t.pid = 42;
	t.start_date = t.end_date = t.queued_when = t.next_retry_at = 1000;
	t.duration = 1.5;
	t.exit_code = 1;
	ti_clear_row(&t, 2);
	assert_string_equal(t.state, "none");
	assert_int_equal(t.max_tries, 5);
	assert_int_equal(t.try_number, 3); /* the tries so far are kept */
	assert_null(t.hostname);
	assert_null(t.external_id);
	assert_int_equal(t.pid, 0);
	assert_true(t.start_date == USEC_NONE && t.end_date == USEC_NONE && t.queued_when == USEC_NONE);
	assert_true(t.next_retry_at == USEC_NONE && t.first_poke_at == USEC_NONE);
	assert_true(t.duration < 0);
	assert_int_equal(t.exit_code, TI_NO_EXIT);
	free(t.state);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_instance_transitions),
		cmocka_unit_test(test_a_refused_transition_is_reported),
		cmocka_unit_test(test_run_transitions),
		cmocka_unit_test(test_run_outcome),
		cmocka_unit_test(test_clear_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
