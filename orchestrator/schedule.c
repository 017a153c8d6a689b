#include "orchestrator/schedule.h"

usec_t schedule_first_marker(const struct cron *c, const struct tz *z, const struct dag *d, usec_t last_end,
			     usec_t now)
{
	int64_t t, e1, s1;
	if (last_end != USEC_NONE)
		return last_end;
	if (d->start_date != USEC_NONE && cron_next(c, z, d->start_date / USEC_PER_SEC - 1, &t) == 0)
		return t * USEC_PER_SEC;
	if (cron_prev(c, z, now / USEC_PER_SEC, &e1) == 0 && cron_prev(c, z, e1 - 1, &s1) == 0)
		return s1 * USEC_PER_SEC;
	return now;
}

/* catchup = false: the latest complete interval (that starts by end_date) instead of an older
 * one. Returns false when end_date leaves none. */
static bool latest_interval(const struct cron *c, const struct tz *z, const struct dag *d, usec_t now,
			    usec_t *start, usec_t *end)
{
	int64_t e1, s1;
	if (cron_prev(c, z, now / USEC_PER_SEC, &e1) < 0 || cron_prev(c, z, e1 - 1, &s1) < 0)
		return true;
	if (d->end_date != USEC_NONE && s1 * USEC_PER_SEC > d->end_date &&
	    (cron_prev(c, z, d->end_date / USEC_PER_SEC, &s1) < 0 || cron_next(c, z, s1, &e1) < 0))
		return false;
	if (s1 * USEC_PER_SEC > *start) {
		*start = s1 * USEC_PER_SEC;
		*end = e1 * USEC_PER_SEC;
	}
	return true;
}

enum sched_next schedule_next(const struct cron *c, const struct tz *z, const struct dag *d, usec_t marker,
			      usec_t now, usec_t *start, usec_t *end)
{
	int64_t t;
	/* The interval [start, end) that starts at the first fire time >= marker. */
	if (cron_next(c, z, marker / USEC_PER_SEC - 1, &t) < 0)
		return SCHED_NEVER;
	*start = t * USEC_PER_SEC;
	if (cron_next(c, z, t, &t) < 0)
		return SCHED_NEVER;
	*end = t * USEC_PER_SEC;
	if (d->end_date != USEC_NONE && *start > d->end_date)
		return SCHED_NEVER;
	if (*end > now)
		return SCHED_WAIT;
	if (!d->catchup && !latest_interval(c, z, d, now, start, end))
		return SCHED_NEVER;
	return SCHED_DUE;
}
