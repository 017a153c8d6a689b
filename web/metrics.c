/* GET /metrics: Prometheus text exposition format (a viewer's credentials, or public with
 * metrics.public = true). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/stats.h"

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

/* The counts by state come from the database, at most every COUNTS_TTL: a scrape (or a flood of
 * them) costs no table scan of its own; everything else is a counter. */
#define COUNTS_TTL (15 * USEC_PER_SEC)
static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strbuf counts_text;
static usec_t counts_at = USEC_NONE;

static void state_counts(struct store *st, struct strbuf *out)
{
	pthread_mutex_lock(&counts_lock);
	usec_t now = mono_usec();
	if (st && (counts_at == USEC_NONE || now - counts_at >= COUNTS_TTL)) {
		sb_reset(&counts_text);
		header(&counts_text, "sluice_task_instances", "gauge", "Task instances by state (refreshed every 15 s).");
		struct counts_ctx c = {&counts_text, "sluice_task_instances"};
		store_state_counts(st, false, add_count, &c);
		header(&counts_text, "sluice_dag_runs", "gauge", "DAG runs by state (refreshed every 15 s).");
		c.metric = "sluice_dag_runs";
		store_state_counts(st, true, add_count, &c);
		header(&counts_text, "sluice_import_errors", "gauge", "DAG files that fail to import.");
		sb_printf(&counts_text, "sluice_import_errors %d\n", store_import_error_count(st));
		counts_at = now;
	}
	sb_add(out, sb_str(&counts_text), counts_text.len);
	pthread_mutex_unlock(&counts_lock);
}

static void api_metrics(struct req *r)
{
	struct strbuf out = {0};
	struct store *st = api_store(r);
	struct sched_stats ss;
	sched_get_stats(&ss);
	state_counts(st, &out);
	header(&out, "sluice_scheduler_loop_seconds", "gauge", "Duration of the latest scheduling pass.");
	sb_printf(&out, "sluice_scheduler_loop_seconds %.6f\n", (double)ss.loop / 1e6);
	header(&out, "sluice_db_commit_seconds", "gauge", "Duration of the latest database commit.");
	sb_printf(&out, "sluice_db_commit_seconds %.6f\n", (double)ss.commit / 1e6);
	header(&out, "sluice_scheduler_heartbeat_timestamp_seconds", "gauge", "Time of the latest scheduling pass.");
	usec_t hb = sched_heartbeat();
	sb_printf(&out, "sluice_scheduler_heartbeat_timestamp_seconds %.3f\n", hb == USEC_NONE ? 0.0 : (double)hb / 1e6);
	header(&out, "sluice_dag_folder_scan_seconds", "gauge",
	       "Duration of the latest rescan of the DAG folder (every second; changed files re-parsed).");
	sb_printf(&out, "sluice_dag_folder_scan_seconds %.6f\n", (double)ss.scan / 1e6);
	header(&out, "sluice_dag_folder_scans_total", "counter", "Rescans of the DAG folder since the daemon started.");
	sb_printf(&out, "sluice_dag_folder_scans_total %lld\n", ss.scans);
	header(&out, "sluice_dag_folder_scan_seconds_total", "counter", "Summed duration of those rescans.");
	sb_printf(&out, "sluice_dag_folder_scan_seconds_total %.6f\n", ss.scan_total);
	header(&out, "sluice_dag_files", "gauge", "Files in the DAG folder at the latest rescan.");
	sb_printf(&out, "sluice_dag_files %d\n", ss.dag_files);
	header(&out, "sluice_executor_slots_in_use", "gauge", "Tries the executors hold.");
	sb_printf(&out, "sluice_executor_slots_in_use{executor=\"local\"} %d\n", ss.slots_in_use);
	struct try_stats ts;
	stats_get(&ts);
	header(&out, "sluice_tries_total", "counter", "Tries ended since the daemon started, by outcome.");
	const char *names[] = {"success", "failed", "up_for_retry", "skipped", "other"};
	long long vals[] = {ts.success, ts.failed, ts.up_for_retry, ts.skipped, ts.other};
	for (size_t i = 0; i < 5; i++)
		sb_printf(&out, "sluice_tries_total{state=\"%s\"} %lld\n", names[i], vals[i]);
	header(&out, "sluice_task_duration_seconds", "histogram", "Duration of the tries ended since the daemon started.");
	for (size_t i = 0; i < STATS_BUCKETS; i++)
		sb_printf(&out, "sluice_task_duration_seconds_bucket{le=\"%g\"} %lld\n", stats_bucket_bounds[i], ts.buckets[i]);
	sb_printf(&out, "sluice_task_duration_seconds_bucket{le=\"+Inf\"} %lld\n", ts.count);
	sb_printf(&out, "sluice_task_duration_seconds_sum %.6f\nsluice_task_duration_seconds_count %lld\n", ts.sum,
		  ts.count);
	api_reply_text(r, 200, sb_steal(&out));
	api_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
}

const struct route api_metrics_routes[] = {
	{"GET", "/metrics", ROLE_VIEWER, api_metrics, NULL}, /* public with metrics.public = true */
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
