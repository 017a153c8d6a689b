/* The states of task instances and runs, and the transitions between them, as tables.
 *
 * Every state change of a task instance or a run in the engine goes through ti_transition() or
 * run_transition(): a transition the table does not allow is a bug in sluice, logged with the
 * instance it happened to (and, with SLUICE_STRICT_STATES set in the environment, as the test
 * suite does, an abort so that no test can pass over it). The change is made all the same: a
 * run must never wedge on a bookkeeping mistake.
 *
 * Also here: the rules that more than one place used to compute on its own, a run's outcome
 * from its leaves and the reset of a cleared task instance. */
#ifndef SLUICE_STATES_H
#define SLUICE_STATES_H

#include <stdbool.h>
#include <stddef.h>

#include "orchestrator/dag.h"
#include "orchestrator/store.h"

enum run_state { RUN_QUEUED, RUN_RUNNING, RUN_SUCCESS, RUN_FAILED, RUN__COUNT };

const char *run_state_name(enum run_state s);
/* The state called name, or -1. */
int run_state_parse(const char *name);

/* Whether the tables allow from -> to (a state to itself always is). */
bool ti_transition_allowed(enum ti_state from, enum ti_state to);
bool run_transition_allowed(enum run_state from, enum run_state to);
/* A user's mark (Airflow's "mark success/failed/skipped"), outside the tables: any state but
 * removed may be marked success, failed or skipped, finished or not. */
bool ti_mark_allowed(enum ti_state from, enum ti_state to);

/* Checks from -> to for the instance named by t (its ids are used in the message). Returns
 * whether it is allowed; see the top of this file for what happens when it is not. */
bool ti_transition(const struct ti_row *t, enum ti_state from, enum ti_state to);
/* The same for a user's mark (ti_mark_allowed). */
bool ti_mark_transition(const struct ti_row *t, enum ti_state from, enum ti_state to);
bool run_transition(const struct run_row *r, enum run_state from, enum run_state to);

/* A run whose instances have all finished: failed when a leaf (a task without downstream
 * tasks) failed or is upstream_failed, or when the run was cancelled; success otherwise.
 * leaves[i] is the state of one instance of a leaf task. */
enum run_state run_outcome(const enum ti_state *leaves, size_t n, bool cancelled);

/* Clears t as Airflow's clear does, for the engine and for stored runs alike: the state goes
 * back to none; the next try gets `retries` more tries (max_tries = try_number + retries); the
 * fields of the current try (hostname, pid, external id, queued/start/end dates, duration, exit
 * code, retry and poke times) are emptied: the try history keeps them. The caller also clears
 * the instance's outputs. */
void ti_clear_row(struct ti_row *t, int retries);

#endif
