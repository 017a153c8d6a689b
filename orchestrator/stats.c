#include "orchestrator/stats.h"

#include <pthread.h>
#include <string.h>

const double stats_bucket_bounds[STATS_BUCKETS] = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};

static struct try_stats totals;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void stats_try_ended(const char *state, double duration)
{
	pthread_mutex_lock(&lock);
	long long *n = !strcmp(state, "success")        ? &totals.success
		       : !strcmp(state, "failed")       ? &totals.failed
		       : !strcmp(state, "up_for_retry") ? &totals.up_for_retry
		       : !strcmp(state, "skipped")      ? &totals.skipped
							: &totals.other;
	(*n)++;
	if (duration >= 0) {
		for (size_t i = 0; i < STATS_BUCKETS; i++)
			if (duration <= stats_bucket_bounds[i])
				totals.buckets[i]++;
		totals.count++;
		totals.sum += duration;
	}
	pthread_mutex_unlock(&lock);
}

void stats_get(struct try_stats *out)
{
	pthread_mutex_lock(&lock);
	*out = totals;
	pthread_mutex_unlock(&lock);
}
