#include "orchestrator/states.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

static const char *const run_names[RUN__COUNT] = {"queued", "running", "success", "failed"};

const char *run_state_name(enum run_state s) { return s < RUN__COUNT ? run_names[s] : "queued"; }

int run_state_parse(const char *name)
{
	for (int i = 0; name && i < RUN__COUNT; i++)
		if (!strcmp(run_names[i], name))
			return i;
	return -1;
}

#define N TI_NONE
#define S TI_SCHEDULED
#define Q TI_QUEUED
#define R TI_RUNNING
#define OK TI_SUCCESS
#define F TI_FAILED
#define UR TI_UP_FOR_RETRY
#define RS TI_UP_FOR_RESCHEDULE
#define UF TI_UPSTREAM_FAILED
#define SK TI_SKIPPED
#define RM TI_REMOVED

/* From each state, where a task instance may go. Why:
 *   none        -> scheduled (its trigger rule says run), skipped / upstream_failed (says not),
 *                  failed (a mapped task whose items cannot be read), removed (its task is gone)
 *   scheduled   -> queued (dispatched), failed (it can never start, e.g. an unknown pool),
 *                  skipped (the run is cancelled), none (cleared)
 *   queued      -> running (spawned), failed / up_for_retry (the spawn failed), skipped
 *                  (cancelled before it started), success / up_for_reschedule / failed (a path
 *                  sensor is poked by the engine itself once dispatched, with no process)
 *   running     -> success, failed, skipped (exit 99), up_for_retry, up_for_reschedule (a
 *                  sensor's poke said not yet)
 *   up_for_retry, up_for_reschedule -> scheduled (the timer fired), failed (a sensor timed out),
 *                  skipped (cancelled), none (cleared), success (a path sensor found its path)
 *   finished    -> none (cleared); removed -> none (its task is back)
 *   any state   -> removed: its task is not in the DAG the run resumes with (Airflow's rule) */
static const enum ti_state ti_next[TI__COUNT][8] = {
	[TI_NONE] = {S, SK, UF, F, RM, N, N, N},
	[TI_SCHEDULED] = {Q, F, SK, N, RM, S, S, S},
	[TI_QUEUED] = {R, F, UR, SK, OK, RS, RM, Q},
	[TI_RUNNING] = {OK, F, SK, UR, RS, RM, R, R},
	[TI_UP_FOR_RETRY] = {S, F, SK, N, RM, UR, UR, UR},
	[TI_UP_FOR_RESCHEDULE] = {S, F, SK, N, OK, RM, RS, RS},
	[TI_SUCCESS] = {N, RM, OK, OK, OK, OK, OK, OK},
	[TI_FAILED] = {N, RM, F, F, F, F, F, F},
	[TI_UPSTREAM_FAILED] = {N, RM, UF, UF, UF, UF, UF, UF},
	[TI_SKIPPED] = {N, RM, SK, SK, SK, SK, SK, SK},
	[TI_REMOVED] = {N, RM, RM, RM, RM, RM, RM, RM},
};

bool ti_transition_allowed(enum ti_state from, enum ti_state to)
{
	if ((unsigned)from >= TI__COUNT || (unsigned)to >= TI__COUNT)
		return false;
	if (from == to)
		return true;
	for (size_t i = 0; i < sizeof(ti_next[0]) / sizeof(ti_next[0][0]); i++)
		if (ti_next[from][i] == to)
			return true;
	return false;
}

/* Runs: queued -> running (started) or failed (cancelled before it started); running ->
 * success / failed (its leaves decided, a timeout, a cancel); a finished run -> queued or
 * running again when it is cleared. */
static const bool run_next[RUN__COUNT][RUN__COUNT] = {
	[RUN_QUEUED] = {[RUN_RUNNING] = true, [RUN_FAILED] = true},
	[RUN_RUNNING] = {[RUN_SUCCESS] = true, [RUN_FAILED] = true, [RUN_QUEUED] = true},
	[RUN_SUCCESS] = {[RUN_QUEUED] = true, [RUN_RUNNING] = true},
	[RUN_FAILED] = {[RUN_QUEUED] = true, [RUN_RUNNING] = true},
};

bool run_transition_allowed(enum run_state from, enum run_state to)
{
	if ((unsigned)from >= RUN__COUNT || (unsigned)to >= RUN__COUNT)
		return false;
	return from == to || run_next[from][to];
}

bool ti_mark_allowed(enum ti_state from, enum ti_state to)
{
	if ((unsigned)from >= TI__COUNT || from == TI_REMOVED)
		return false;
	return to == TI_SUCCESS || to == TI_FAILED || to == TI_SKIPPED;
}

static void bug(void)
{
	if (getenv("SLUICE_STRICT_STATES"))
		abort();
}

bool ti_transition(const struct ti_row *t, enum ti_state from, enum ti_state to)
{
	if (ti_transition_allowed(from, to))
		return true;
	log_warnx("bug: task instance %s.%s[%d] of run %s went from %s to %s, which the state table does not allow",
		  t->dag_id, t->task_id, t->map_index, t->run_id, ti_state_name(from), ti_state_name(to));
	bug();
	return false;
}

bool ti_mark_transition(const struct ti_row *t, enum ti_state from, enum ti_state to)
{
	if (ti_mark_allowed(from, to))
		return true;
	log_warnx("bug: task instance %s.%s[%d] of run %s cannot be marked %s from %s", t->dag_id, t->task_id,
		  t->map_index, t->run_id, ti_state_name(to), ti_state_name(from));
	bug();
	return false;
}

bool run_transition(const struct run_row *r, enum run_state from, enum run_state to)
{
	if (run_transition_allowed(from, to))
		return true;
	log_warnx("bug: run %s of %s went from %s to %s, which the state table does not allow", r->run_id,
		  r->dag_id, run_state_name(from), run_state_name(to));
	bug();
	return false;
}

enum run_state run_outcome(const enum ti_state *leaves, size_t n, bool cancelled)
{
	for (size_t i = 0; i < n && !cancelled; i++)
		if (leaves[i] == TI_FAILED || leaves[i] == TI_UPSTREAM_FAILED)
			return RUN_FAILED;
	return cancelled ? RUN_FAILED : RUN_SUCCESS;
}

void ti_clear_row(struct ti_row *t, int retries)
{
	free(t->state);
	t->state = xstrdup("none");
	t->max_tries = t->try_number + retries;
	free(t->hostname);
	free(t->external_id);
	t->hostname = t->external_id = NULL;
	t->pid = 0;
	t->queued_when = t->start_date = t->end_date = USEC_NONE;
	t->next_retry_at = t->first_poke_at = USEC_NONE;
	t->duration = -1;
	t->exit_code = TI_NO_EXIT;
}
