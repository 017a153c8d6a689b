/* GET /metrics: Prometheus text exposition format (a viewer's credentials, or public with
 * metrics.public = true). */
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "orchestrator/scheduler.h"

static const double buckets[] = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct counts_ctx {
	struct strbuf *out;
	const char *metric;
};

static void add_count(void *arg, const char *state, long count)
{
	struct counts_ctx *c = arg;
	sb_printf(c->out, "%s{state=\"%s\"} %ld\n", c->metric, state, count);
}

static void header(struct strbuf *out, const char *name, const char *type, const char *help)
{
	sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void api_metrics(struct req *r)
{
	struct strbuf out = {0};
	struct store *st = api_store(r);
	struct sched_stats ss;
	sched_get_stats(&ss);
	header(&out, "sluice_task_instances", "gauge", "Task instances by state.");
	struct counts_ctx c = {&out, "sluice_task_instances"};
	if (st)
		store_state_counts(st, false, add_count, &c);
	header(&out, "sluice_dag_runs", "gauge", "DAG runs by state.");
	c.metric = "sluice_dag_runs";
	if (st)
		store_state_counts(st, true, add_count, &c);
	header(&out, "sluice_import_errors", "gauge", "DAG files that fail to import.");
	sb_printf(&out, "sluice_import_errors %d\n", st ? store_import_error_count(st) : 0);
	header(&out, "sluice_scheduler_loop_seconds", "gauge", "Duration of the latest scheduling pass.");
	sb_printf(&out, "sluice_scheduler_loop_seconds %.6f\n", (double)ss.loop / 1e6);
	header(&out, "sluice_db_commit_seconds", "gauge", "Duration of the latest database commit.");
	sb_printf(&out, "sluice_db_commit_seconds %.6f\n", (double)ss.commit / 1e6);
	header(&out, "sluice_scheduler_heartbeat_timestamp_seconds", "gauge", "Time of the latest scheduling pass.");
	usec_t hb = sched_heartbeat();
	sb_printf(&out, "sluice_scheduler_heartbeat_timestamp_seconds %.3f\n", hb == USEC_NONE ? 0.0 : (double)hb / 1e6);
	header(&out, "sluice_executor_slots_in_use", "gauge", "Tries the executors hold.");
	sb_printf(&out, "sluice_executor_slots_in_use{executor=\"local\"} %d\n", ss.slots_in_use);
	header(&out, "sluice_task_duration_seconds", "histogram", "Duration of finished tries.");
	long counts[NBUCKETS], total = 0;
	double sum = 0;
	if (!st || store_duration_histogram(st, buckets, NBUCKETS, counts, &total, &sum) < 0)
		memset(counts, 0, sizeof(counts));
	for (size_t i = 0; i < NBUCKETS; i++)
		sb_printf(&out, "sluice_task_duration_seconds_bucket{le=\"%g\"} %ld\n", buckets[i], counts[i]);
	sb_printf(&out, "sluice_task_duration_seconds_bucket{le=\"+Inf\"} %ld\n", total);
	sb_printf(&out, "sluice_task_duration_seconds_sum %.6f\nsluice_task_duration_seconds_count %ld\n", sum, total);
	api_reply_text(r, 200, sb_steal(&out));
	api_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
}

const struct route api_metrics_routes[] = {
	{"GET", "/metrics", ROLE_VIEWER, api_metrics, NULL}, /* public with metrics.public = true */
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
