/* The end of a try: outputs, retries and backoff, sensors, callbacks, a run's end. */
#include "orchestrator/engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/events.h"
#include "base/json.h"
#include "base/log.h"
#include "orchestrator/cron.h"
#include "orchestrator/runs.h"
#include "orchestrator/template.h"
#include "orchestrator/tz.h"
#include "orchestrator/stats.h"

/* Callbacks --------------------------------------------------------------------------------------- */

struct cb_ctx {
	struct eti *ti;          /* the task for on_retry; a stand-in for run-level events */
	bool task_level;
};

/* Task-level names only exist in task-level callbacks. */
static int cb_lookup(void *arg, const char *name, struct strbuf *out, char **err)
{
	struct cb_ctx *c = arg;
	if (!c->task_level && (!strcmp(name, "task_id") || !strcmp(name, "try_number") ||
			       !strcmp(name, "map_index") || !strcmp(name, "item"))) {
		*err = xasprintf("'%s' is not defined in a run's callback", name);
		return -ENOENT;
	}
	return eng_ti_lookup(c->ti, name, out, err);
}

static cJSON *cb_body(const char *event, const struct erun *r, const struct eti *ti, const char *reason)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", event);
	cJSON_AddStringToObject(o, "dag_id", r->row.dag_id);
	cJSON_AddStringToObject(o, "run_id", r->row.run_id);
	cJSON_AddStringToObject(o, "run_type", r->row.run_type);
	cJSON_AddStringToObject(o, "state", ti ? ti_state_name(ti->state) : run_state_name(r->state));
	json_add_time(o, "logical_date", r->row.logical_date);
	json_add_time(o, "data_interval_start", r->row.data_interval_start);
	json_add_time(o, "data_interval_end", r->row.data_interval_end);
	if (ti) {
		cJSON_AddStringToObject(o, "task_id", ti->row.task_id);
		cJSON_AddNumberToObject(o, "map_index", ti->row.map_index);
		cJSON_AddNumberToObject(o, "try_number", ti->row.try_number);
	}
	if (reason)
		cJSON_AddStringToObject(o, "reason", reason);
	return o;
}

/* Queues a DAG callback (command and/or webhook) with the notifier; never blocks. */
static void fire_callback(struct erun *r, struct eti *ti, const char *event, const struct callback *cb,
			  const char *reason)
{
	struct engine *e = r->e;
	if (!e->notify || (!cb->cmd && !cb->webhook) || r->deleted)
		return;
	char *dir = runs_log_dir(e->home, r->row.dag_id, r->row.run_id);
	char *log = dir ? xasprintf("%s/callbacks.log", dir) : NULL;
	free(dir);
	char *cmd = NULL, *err = NULL;
	struct eti stand_in = {.run = r, .heap_idx = -1};
	struct cb_ctx ctx = {ti ? ti : &stand_in, ti != NULL};
	if (!ti)
		ti_row_init(&stand_in.row);
	if (cb->cmd && tmpl_render_shell(cb->cmd, cb_lookup, &ctx, &cmd, &err) < 0) {
		log_warnx("%s callback of %s: %s", event, r->row.dag_id, err);
		notify_fire(e->notify, event, NULL, NULL, NULL, log); /* nothing to run */
		free(err);
		free(log);
		return;
	}
	cJSON *body = cb_body(event, r, ti, reason);
	char *json = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (notify_fire(e->notify, event, cmd, cb->webhook, json, log) < 0)
		log_warnx("%s callback of %s run %s dropped", event, r->row.dag_id, r->row.run_id);
	free(json);
	free(cmd);
	free(log);
}

void eng_finish_run(struct erun *r)
{
	size_t n = 0, cap = 0;
	enum ti_state *leaves = NULL;
	for (size_t i = 0; i < r->dag->ntasks; i++) {
		if (r->dag->tasks[i].n_down)
			continue;
		for (size_t k = 0; k < r->tasks[i].ninst; k++) {
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				leaves = xrealloc(leaves, cap * sizeof(*leaves));
			}
			leaves[n++] = r->tasks[i].inst[k]->state;
		}
	}
	bool failed = run_outcome(leaves, n, r->cancelled) == RUN_FAILED;
	free(leaves);
	r->row.end_date = now_usec();
	r->finished = true;
	r->notify = true;
	eng_set_run_state(r, failed ? RUN_FAILED : RUN_SUCCESS);
	if (failed)
		fire_callback(r, NULL, "on_failure", &r->dag->on_failure, r->cancelled ? r->row.note : NULL);
	else
		fire_callback(r, NULL, "on_success", &r->dag->on_success, NULL);
	if (r->timeout) {
		evloop_timer_cancel(r->e->loop, r->timeout);
		r->timeout = NULL;
	}
	eng_mark_run_dirty(r);
}

/* Starting tries -------------------------------------------------------------------------------- */

void eng_release_slots(struct engine *e, struct eti *ti)
{
	struct task *t = ti_task(ti);
	struct pool_entry *p = eng_get_pool(e, t->pool);
	if (p)
		p->used -= t->pool_slots;
	eng_get_dag_entry(e, ti->row.dag_id)->active--;
}

static char *dup_opt(const char *s) { return s ? xstrdup(s) : NULL; }

/* Queues the history row of ti's current try; written with the next commit. */
static void record_try(struct engine *e, struct eti *ti, const char *state)
{
	if (!ti->row.pk || ti->run->deleted)
		return;
	stats_try_ended(state, ti->row.duration);
	struct try_row *tr = xcalloc(1, sizeof(*tr));
	*tr = (struct try_row){
		.ti_pk = ti->row.pk,
		.try_number = ti->row.try_number,
		.state = xstrdup(state),
		.executor = dup_opt(ti->row.executor),
		.hostname = dup_opt(ti->row.hostname),
		.external_id = dup_opt(ti->row.external_id),
		.log_path = eng_try_file(ti, "log"),
		.message = dup_opt(ti->message),
		.pid = ti->row.pid,
		.exit_code = ti->row.exit_code,
		.queued_when = ti->row.queued_when,
		.start_date = ti->row.start_date,
		.end_date = ti->row.end_date,
		.duration = ti->row.duration,
	};
	pv_push(&e->tries, tr);
}

/* Ends the current try as failed: retried when allowed, failed otherwise. */
void eng_fail_try(struct eti *ti, bool retryable)
{
	struct engine *e = ti->run->e;
	struct task *t = ti_task(ti);
	if (ti->row.end_date == USEC_NONE)
		ti->row.end_date = now_usec();
	if (ti->row.start_date != USEC_NONE)
		ti->row.duration = (double)(ti->row.end_date - ti->row.start_date) / 1e6;
	bool retry = retryable && !ti->cancel_requested && !ti->run->cancelled &&
		     ti->row.try_number <= ti->row.max_tries;
	record_try(e, ti, retry ? "up_for_retry" : "failed");
	if (!retry) {
		eng_finish_ti(ti, TI_FAILED);
		return;
	}
	usec_t delay = task_retry_delay(t, ti->row.try_number, (double)(random() % 1000) / 1000.0);
	ti->row.next_retry_at = now_usec() + delay;
	char d[32];
	format_duration(delay, d, sizeof(d));
	eng_append_log(ti, "try %d failed; retrying in %s (try %d of %d)", ti->row.try_number, d,
		   ti->row.try_number + 1, ti->row.max_tries + 1);
	eng_set_state(ti, TI_UP_FOR_RETRY);
	ti->timer = evloop_timer_in(e->loop, delay, eng_retry_timer, ti);
	fire_callback(ti->run, ti, "on_retry", &ti->run->dag->on_retry, ti->message);
}

/* A retry delay or a sensor's poke interval has passed: the instance is ready again. */
void eng_retry_timer(struct evloop *loop, void *arg)
{
	struct eti *ti = arg;
	ti->timer = NULL;
	if (ti->state == TI_UP_FOR_RETRY || ti->state == TI_UP_FOR_RESCHEDULE)
		eng_schedule_ti(ti);
	(void)loop;
}

static int add_output(struct eti *ti, const char *key, const char *value)
{
	for (size_t i = 0; i < ti->noutputs; i++) {
		if (!strcmp(ti->outputs[i].key, key)) {
			free(ti->outputs[i].value);
			ti->outputs[i].value = xstrdup(value);
			return 0;
		}
	}
	ti->outputs = xrealloc(ti->outputs, (ti->noutputs + 1) * sizeof(struct kv));
	ti->outputs[ti->noutputs].key = xstrdup(key);
	ti->outputs[ti->noutputs].value = xstrdup(value);
	ti->noutputs++;
	return 0;
}

/* Reads the key=value lines of the try's $SLUICE_OUTPUT file into ti->outputs. */
static void read_outputs(struct eti *ti)
{
	char *path = eng_try_file(ti, "out");
	char *data = NULL;
	size_t len;
	int rc = read_file(path, OUTPUT_FILE_MAX, &data, &len);
	if (rc == -EFBIG)
		eng_append_log(ti, "$SLUICE_OUTPUT is larger than 1 MiB; outputs ignored");
	if (rc < 0)
		goto out;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t l = strlen(line);
		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		if (!l || line[0] == '#')
			continue;
		char *eq = strchr(line, '=');
		if (eq)
			*eq = '\0';
		if (!eq || !valid_id(line)) {
			eng_append_log(ti, "ignoring malformed output line (expected key=value): %s", line);
			continue;
		}
		add_output(ti, line, eq + 1);
	}
	ti->outputs_dirty = true;
	eng_mark_dirty(ti);
out:
	free(data);
	free(path);
}

static void sensor_not_yet(struct eti *ti)
{
	struct task *t = ti_task(ti);
	struct engine *e = ti->run->e;
	usec_t now = now_usec();
	if (now - ti->row.first_poke_at >= t->sensor_timeout) {
		char d[32];
		format_duration(t->sensor_timeout, d, sizeof(d));
		eng_append_log(ti, "sensor timed out after %s", d);
		free(ti->message);
		ti->message = xasprintf("sensor timeout of %s exceeded", d);
		ti->row.end_date = now;
		record_try(e, ti, "failed");
		eng_finish_ti(ti, TI_FAILED); /* a sensor timeout is not retried */
		return;
	}
	ti->row.next_retry_at = now + t->poke_interval;
	eng_set_state(ti, TI_UP_FOR_RESCHEDULE);
	ti->timer = evloop_timer_in(e->loop, t->poke_interval, eng_retry_timer, ti);
}

/* A path sensor pokes in the daemon itself: no process, no slot held between pokes. */
void eng_poke_path(struct eti *ti)
{
	struct engine *e = ti->run->e;
	char *path = NULL, *err = NULL;
	eng_release_slots(e, ti);
	if (tmpl_render(ti_task(ti)->sensor_path, eng_ti_lookup, ti, &path, &err) < 0) {
		eng_append_log(ti, "%s", err);
		free(ti->message);
		ti->message = err;
		record_try(e, ti, "failed");
		eng_finish_ti(ti, TI_FAILED);
		return;
	}
	struct stat st;
	bool exists = stat(path, &st) == 0;
	eng_append_log(ti, "poking for %s: %s", path, exists ? "found" : "not there yet");
	free(path);
	if (exists) {
		ti->row.end_date = now_usec();
		ti->row.duration = (double)(ti->row.end_date - ti->row.start_date) / 1e6;
		record_try(e, ti, "success");
		eng_finish_ti(ti, TI_SUCCESS);
	} else {
		sensor_not_yet(ti);
	}
}

void eng_on_try_end(void *arg, uint64_t token, const struct exec_result *res)
{
	struct engine *e = arg;
	struct eti *ti = (struct eti *)(uintptr_t)token;
	struct task *t = ti_task(ti);
	char d[32];

	ti->spawned = false;
	ti->ex = NULL;
	eng_release_slots(e, ti);
	ti->row.end_date = res->end != USEC_NONE ? res->end : now_usec();
	if (res->start != USEC_NONE)
		ti->row.start_date = ti->row.start_date == USEC_NONE ? res->start : ti->row.start_date;
	if (ti->row.start_date != USEC_NONE)
		ti->row.duration = (double)(ti->row.end_date - ti->row.start_date) / 1e6;
	free(ti->message);
	ti->message = NULL;
	if (ti->cancel_requested && ti->cancel_as != TI_FAILED) {
		/* Marked success or skipped by a user while it ran: that is how it ends. */
		ti->cancel_requested = false;
		ti->message = xasprintf("stopped and marked %s", ti_state_name(ti->cancel_as));
		if (res->kind == EXEC_END_EXITED)
			ti->row.exit_code = res->code;
		record_try(e, ti, ti_state_name(ti->cancel_as));
		ti->marking = true;
		eng_finish_ti(ti, ti->cancel_as);
		eng_process_evals(e);
		return;
	}
	switch (res->kind) {
	case EXEC_END_EXITED:
		ti->row.exit_code = res->code;
		if (res->code == 0) {
			if (t->kind == TASK_SENSOR && ti->row.first_poke_at != USEC_NONE)
				eng_append_log(ti, "sensor condition met");
			read_outputs(ti);
			record_try(e, ti, "success");
			eng_finish_ti(ti, TI_SUCCESS);
		} else if (res->code == TASK_EXIT_SKIP) {
			record_try(e, ti, "skipped");
			eng_finish_ti(ti, TI_SKIPPED);
		} else if (t->kind == TASK_SENSOR && !ti->cancel_requested) {
			sensor_not_yet(ti);
		} else {
			ti->message = xasprintf("exited with code %d", res->code);
			bool retryable = task_retryable_exit(t, res->code);
			if (!retryable)
				eng_append_log(ti, "exit code %d is in no_retry_exit_codes: not retrying", res->code);
			eng_fail_try(ti, retryable);
		}
		break;
	case EXEC_END_SIGNALED:
		ti->message = xasprintf("killed by signal %d", res->code);
		eng_fail_try(ti, true);
		break;
	case EXEC_END_TIMEOUT:
		format_duration(t->execution_timeout, d, sizeof(d));
		ti->message = xasprintf("execution_timeout of %s exceeded", d);
		eng_fail_try(ti, true);
		break;
	case EXEC_END_LOST:
		ti->message = xasprintf("lost: %s", res->message ? res->message : "the executor lost the try");
		eng_append_log(ti, "%s", ti->message);
		eng_fail_try(ti, true);
		break;
	}
	eng_process_evals(e);
}
