/* Backfills: which logical dates a backfill covers and what it does with each, and the use cases
 * create / plan (dry run) / pause / resume / cancel that the CLI (on its own connection) and the
 * REST API (inside sched_write()) share. The daemon drives them (scheduler.c). */
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

/* A backfill asked for. Dates without an offset are read in the DAG's time zone. */
struct backfill_request {
	const char *from, *to;     /* required */
	const char *reprocess;     /* "none" (default), "failed", "completed" */
	int max_active_runs;       /* 0 = the default, 10; else at least 1 */
	bool run_backwards;
	const char *conf;          /* JSON object text for its runs; NULL = "{}" */
	const char *dag_source;    /* when set, the DAG's row is written in the create's transaction */
};

/* One date of a plan: what the backfill does there. */
struct backfill_step {
	usec_t logical_date;
	enum bf_action action;
	char *existing_state;      /* state of the run already at that date, or NULL */
};
void backfill_steps_free(struct backfill_step *steps, size_t n);

/* Use case "plan" (a dry run): checks req against d, fills *b (not stored; free with
 * backfill_row_free) and, when steps is not NULL, what would happen at each date, reading the
 * existing runs from st (NULL: as if there were none). Returns 0 or -EINVAL with *err. */
int backfill_plan(struct store *st, const struct dag *d, const struct backfill_request *req,
		  struct backfill_row *b, struct backfill_step **steps, size_t *n, char **err);

/* Use case "create": plans, then in one BEGIN IMMEDIATE transaction on the writer w checks that
 * d has no backfill in progress and inserts it (so two creates cannot both pass the check).
 * Returns 0 with *out filled (caller frees), -EINVAL, -EEXIST (one in progress) or the store's
 * error, each with *err (caller frees). */
int backfill_create(struct store *w, const struct dag *d, const struct backfill_request *req,
		    struct backfill_row *out, char **err);

enum bf_change { BF_PAUSE, BF_RESUME, BF_CANCEL };
/* Use case "pause / resume / cancel" of backfill id, in one transaction: a cancel also fails its
 * runs that have not started. Returns 0 with the updated row in *out (caller frees), -ENOENT,
 * -EALREADY (it has completed) or the store's error, each with *err. */
int backfill_change(struct store *w, int64_t id, enum bf_change what, struct backfill_row *out, char **err);

#endif
