/* Counters of the running daemon for /metrics, kept as tries end so that a scrape costs no table
 * scan: tries ended by outcome and a histogram of their durations, since the daemon started (as
 * Prometheus counters are). Thread-safe. */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include <stddef.h>

#define STATS_BUCKETS 10
extern const double stats_bucket_bounds[STATS_BUCKETS]; /* seconds: 0.1 ... 3600 */

struct try_stats {
	long long success, failed, up_for_retry, skipped, other; /* tries ended so */
	long long buckets[STATS_BUCKETS];                          /* cumulative: duration <= bound */
	long long count;
	double sum;                                                /* seconds */
};

/* A try ended in state after duration seconds (< 0: unknown, not in the histogram). */
void stats_try_ended(const char *state, double duration);
void stats_get(struct try_stats *out);

#endif
