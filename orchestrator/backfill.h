/* Backfills: which logical dates a backfill covers and what it does with each. The daemon drives
 * them (scheduler.c); the CLI uses the same functions for --dry-run. */
#ifndef SLUICE_BACKFILL_H
#define SLUICE_BACKFILL_H

#include <stdbool.h>

#include "orchestrator/dag.h"
#include "orchestrator/store.h"

#define BACKFILL_MAX_DATES 100000

/* The fire times of d's schedule in [from, to] (both inclusive), oldest first or, with
 * backwards, newest first. Returns 0 with a malloc'd array, or -EINVAL with *err (no periodic
 * schedule, from after to, too many dates). */
int backfill_dates(const struct dag *d, usec_t from, usec_t to, bool backwards, usec_t **out, size_t *n,
		   char **err);

enum bf_action {
	BF_CREATE,     /* no run at that date: create one */
	BF_REPROCESS,  /* a finished run the reprocess behaviour covers: clear it and run it again */
	BF_SKIP,       /* a run that stays as it is (or that this backfill already handled) */
};

/* What backfill backfill_id (reprocess "none" | "failed" | "completed") does at a date where
 * existing is the run already there (NULL when none). */
enum bf_action backfill_action(const char *reprocess, int64_t backfill_id, const struct run_row *existing);
const char *backfill_action_name(enum bf_action a);

/* True for "none", "failed", "completed". */
bool backfill_reprocess_valid(const char *s);

#endif
