/* Which interval of a DAG's schedule comes next: the scheduler's decisions as pure functions of
 * the schedule, the DAG's dates and catchup flag, where the last scheduled run ended, and now.
 * Airflow 2's data intervals: a run covers [previous fire, this fire), is due when its interval
 * has ended, and its logical date is the interval's start. */
#ifndef SLUICE_SCHEDULE_H
#define SLUICE_SCHEDULE_H

#include "orchestrator/cron.h"
#include "orchestrator/dag.h"

enum sched_next {
	SCHED_DUE,     /* [*start, *end) has ended: create its run */
	SCHED_WAIT,    /* nothing is due before *end (then call again) */
	SCHED_NEVER,   /* the schedule or the DAG's end_date has no more intervals */
};

/* Where scheduling of d starts: the end of its last scheduled run (last_end, USEC_NONE when
 * there is none: intervals are contiguous), else the first fire time at or after start_date,
 * else the start of the latest complete interval before now. */
usec_t schedule_first_marker(const struct cron *c, const struct tz *z, const struct dag *d, usec_t last_end,
			     usec_t now);

/* The next interval from marker (the end of the previous one). With catchup off, a due interval
 * older than the latest complete one is skipped to that one (within end_date). */
enum sched_next schedule_next(const struct cron *c, const struct tz *z, const struct dag *d, usec_t marker,
			      usec_t now, usec_t *start, usec_t *end);

#endif
