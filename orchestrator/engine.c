/* The run engine: its objects, the ready heap, limits and the public API (engine.h). The other
 * parts are engine_recover.c, engine_ready.c, engine_start.c, engine_end.c, engine_context.c
 * and engine_commit.c; engine_int.h holds what they share. */
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

/* Small helpers ------------------------------------------------------------------------------ */

void eng_mark_dirty(struct eti *ti)
{
	if (!ti->dirty) {
		ti->dirty = true;
		pv_push(&ti->run->e->dirty, ti);
	}
}

void eng_mark_run_dirty(struct erun *r)
{
	if (!r->dirty) {
		r->dirty = true;
		pv_push(&r->e->dirty_runs, r);
	}
}

/* Stamps an event with the time and publishes it for live views; takes o. */
static void publish(const char *type, const char *dag_id, cJSON *o)
{
	char ts[ISO_BUFSZ], buf[1024];
	format_iso8601(now_usec(), ts, sizeof(ts));
	cJSON_AddStringToObject(o, "timestamp", ts);
	if (cJSON_PrintPreallocated(o, buf, sizeof(buf), false))
		events_publish(type, dag_id, buf);
	cJSON_Delete(o);
}

static void publish_ti(const struct eti *ti)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "dag_id", ti->row.dag_id);
	cJSON_AddStringToObject(o, "dag_run_id", ti->row.run_id);
	cJSON_AddStringToObject(o, "task_id", ti->row.task_id);
	cJSON_AddNumberToObject(o, "map_index", ti->row.map_index);
	cJSON_AddStringToObject(o, "state", ti_state_name(ti->state));
	cJSON_AddNumberToObject(o, "try_number", ti->row.try_number);
	publish("task_instance", ti->row.dag_id, o);
}

static void publish_run(const struct erun *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "dag_id", r->row.dag_id);
	cJSON_AddStringToObject(o, "dag_run_id", r->row.run_id);
	cJSON_AddStringToObject(o, "state", r->row.state);
	publish("dag_run", r->row.dag_id, o);
}

/* The one place a task instance's state changes (states.c checks the transition). */
void eng_set_state(struct eti *ti, enum ti_state st)
{
	if (ti->marking)
		ti_mark_transition(&ti->row, ti->state, st);
	else
		ti_transition(&ti->row, ti->state, st);
	ti->marking = false;
	ti->state = st;
	eng_mark_dirty(ti);
	publish_ti(ti);
}

/* The one place a run's state changes. */
void eng_set_run_state(struct erun *r, enum run_state st)
{
	run_transition(&r->row, r->state, st);
	r->state = st;
	free(r->row.state);
	r->row.state = xstrdup(run_state_name(st));
	eng_mark_run_dirty(r);
	publish_run(r);
}

/* Writes the in-memory state into the row just before it goes to the database. */
struct ti_row *eng_sync_row(struct eti *ti)
{
	free(ti->row.state);
	ti->row.state = xstrdup(ti_state_name(ti->state));
	return &ti->row;
}

/* Path of a try's file: its log ("log"), status, pid or output file. Ids were checked when the
 * run was queued; a row that holds others anyway gets a path no file can be made at (NUL-free,
 * under no folder), so its try fails instead of writing outside the home. */
char *eng_try_file(const struct eti *ti, const char *ext)
{
	char *p = runs_log_path(ti->run->e->home, ti->row.dag_id, ti->row.run_id, ti->row.task_id,
				ti->row.map_index, ti->row.try_number, ext);
	return p ? p : xstrdup("/nonexistent/sluice: an id of this task instance is not a valid name");
}


/* Appends a line from sluice itself to the current try's log (creating it). */
void eng_append_log(const struct eti *ti, const char *fmt, ...)
{
	if (ti->run->deleted)
		return; /* its log folder is gone with it */
	char *path = eng_try_file(ti, "log");
	char *dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	mkdir_p(dir, 0700);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		struct strbuf sb = {0};
		char ts[ISO_BUFSZ];
		va_list ap;
		format_iso8601_z(now_usec(), ts, sizeof(ts));
		sb_printf(&sb, "[%s] sluice: ", ts);
		va_start(ap, fmt);
		sb_vprintf(&sb, fmt, ap);
		va_end(ap);
		sb_putc(&sb, '\n');
		if (write(fd, sb.buf, sb.len) < 0)
			log_warn("cannot write %s", path);
		sb_free(&sb);
		close(fd);
	}
	free(dir);
	free(path);
}

/* The ready heap -------------------------------------------------------------------------------- */

static bool heap_before(const struct eti *a, const struct eti *b)
{
	if (a->row.priority_weight != b->row.priority_weight)
		return a->row.priority_weight > b->row.priority_weight;
	return a->seq < b->seq;
}

static void heap_swap(struct ptrvec *h, size_t i, size_t j)
{
	void *t = h->v[i];
	h->v[i] = h->v[j];
	h->v[j] = t;
	((struct eti *)h->v[i])->heap_idx = (int)i;
	((struct eti *)h->v[j])->heap_idx = (int)j;
}

static void heap_up(struct ptrvec *h, size_t i)
{
	while (i > 0 && heap_before(h->v[i], h->v[(i - 1) / 2])) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct ptrvec *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && heap_before(h->v[l], h->v[m]))
			m = l;
		if (r < h->n && heap_before(h->v[r], h->v[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

void eng_heap_push(struct engine *e, struct eti *ti)
{
	pv_push(&e->heap, ti);
	ti->heap_idx = (int)e->heap.n - 1;
	heap_up(&e->heap, e->heap.n - 1);
}

void eng_heap_remove(struct engine *e, struct eti *ti)
{
	size_t i = (size_t)ti->heap_idx;
	ti->heap_idx = -1;
	e->heap.n--;
	if (i == e->heap.n)
		return;
	e->heap.v[i] = e->heap.v[e->heap.n];
	((struct eti *)e->heap.v[i])->heap_idx = (int)i;
	heap_down(&e->heap, i);
	heap_up(&e->heap, i);
}

struct eti *eng_heap_pop(struct engine *e)
{
	struct eti *top = e->heap.v[0];
	eng_heap_remove(e, top);
	return top;
}

/* Limits: executors, pools, DAG max_active_tasks -------------------------------------------- */


struct exec_entry *eng_get_executor(struct engine *e, const char *name, char **err)
{
	for (size_t i = 0; i < e->nexecs; i++)
		if (!strcmp(e->execs[i].name, name))
			return &e->execs[i];
	if (e->nexecs == sizeof(e->execs) / sizeof(e->execs[0])) {
		*err = xstrdup("too many executors");
		return NULL;
	}
	/* The backend's settings: the "NAME.key=value" of the configuration, less the prefix. */
	size_t nl = strlen(name), n = 0;
	const char **settings = xcalloc(e->nsettings + 1, sizeof(char *));
	for (size_t i = 0; i < e->nsettings; i++)
		if (!strncmp(e->settings[i], name, nl) && e->settings[i][nl] == '.')
			settings[n++] = e->settings[i] + nl + 1;
	char *dir = xasprintf("%s/executors/%s", e->home, name);
	struct executor_params p = {.parallelism = e->parallelism, .shim_path = e->shim_path, .state_dir = dir,
				    .settings = settings};
	struct executor *ex = executor_open_with(name, e->loop, eng_on_try_end, e, &p, err);
	free(settings);
	free(dir);
	if (!ex)
		return NULL;
	struct exec_entry *x = &e->execs[e->nexecs++];
	x->name = xstrdup(name);
	x->ex = ex;
	x->pending = 0;
	return x;
}

struct pool_entry *eng_get_pool(struct engine *e, const char *name)
{
	for (size_t i = 0; i < e->npools; i++)
		if (!strcmp(e->pools[i].name, name))
			return &e->pools[i];
	int slots;
	if (store_pool_slots(e->st, name, &slots) < 0) {
		if (!e->ignore_unknown_pools)
			return NULL;
		log_warnx("pool '%s' does not exist; `dags test` runs its tasks without a pool limit", name);
		slots = -1;
	}
	e->pools = xrealloc(e->pools, (e->npools + 1) * sizeof(*e->pools));
	e->pools[e->npools] = (struct pool_entry){xstrdup(name), slots, 0};
	return &e->pools[e->npools++];
}

struct dag_entry *eng_get_dag_entry(struct engine *e, const char *dag_id)
{
	for (size_t i = 0; i < e->ndags; i++)
		if (!strcmp(e->dags[i].dag_id, dag_id))
			return &e->dags[i];
	e->dags = xrealloc(e->dags, (e->ndags + 1) * sizeof(*e->dags));
	e->dags[e->ndags] = (struct dag_entry){xstrdup(dag_id), 0};
	return &e->dags[e->ndags++];
}

/* Run creation -------------------------------------------------------------------------------- */

struct eti *eng_new_eti(struct erun *r, int task, int map_index)
{
	struct task *t = &r->dag->tasks[task];
	struct eti *ti = xcalloc(1, sizeof(*ti));
	ti->run = r;
	ti->task = task;
	ti->heap_idx = -1;
	ti_row_init(&ti->row);
	ti->row.run_pk = r->row.pk;
	ti->row.dag_id = xstrdup(r->row.dag_id);
	ti->row.run_id = xstrdup(r->row.run_id);
	ti->row.task_id = xstrdup(t->id);
	ti->row.map_index = map_index;
	ti->row.max_tries = t->retries;
	ti->row.operator_name = xstrdup(t->operator_name);
	ti->row.executor = xstrdup(t->executor);
	ti->row.pool = xstrdup(t->pool);
	ti->row.pool_slots = t->pool_slots;
	ti->row.priority_weight = t->effective_weight;
	ti->state = TI_NONE;
	return ti;
}

void eng_free_eti(struct eti *ti)
{
	if (ti->timer)
		evloop_timer_cancel(ti->run->e->loop, ti->timer);
	ti_row_free(&ti->row);
	free(ti->item);
	for (size_t i = 0; i < ti->noutputs; i++) {
		free(ti->outputs[i].key);
		free(ti->outputs[i].value);
	}
	free(ti->outputs);
	free(ti->message);
	eng_forget_secrets(ti);
	free(ti);
}

/* Drops from v the items that match (keeping the others' order). */
static void ptrvec_drop(struct ptrvec *v, bool (*match)(void *item, const struct erun *r), const struct erun *r)
{
	size_t k = 0;
	for (size_t i = 0; i < v->n; i++)
		if (!match(v->v[i], r))
			v->v[k++] = v->v[i];
	v->n = k;
}

static bool ti_of(void *item, const struct erun *r) { return ((struct eti *)item)->run == r; }
static bool run_is(void *item, const struct erun *r) { return item == r; }

void eng_free_run(struct erun *r)
{
	/* Nothing of a freed run may wait for the next commit (a run whose start failed at its
	 * commit had its rows queued there: found by the store's fault injection). */
	ptrvec_drop(&r->e->dirty, ti_of, r);
	ptrvec_drop(&r->e->dirty_runs, run_is, r);
	for (size_t i = 0; r->tasks && i < r->dag->ntasks; i++) {
		for (size_t k = 0; k < r->tasks[i].ninst; k++)
			eng_free_eti(r->tasks[i].inst[k]);
		free(r->tasks[i].inst);
	}
	free(r->tasks);
	if (r->timeout)
		evloop_timer_cancel(r->e->loop, r->timeout);
	cJSON_Delete(r->conf);
	run_row_free(&r->row);
	dag_unref(r->dag);
	free(r);
}

void eng_on_run_timeout(struct evloop *loop, void *arg)
{
	struct erun *r = arg;
	char d[32];
	r->timeout = NULL;
	format_duration(r->dag->dagrun_timeout, d, sizeof(d));
	char *why = xasprintf("dagrun_timeout of %s exceeded", d);
	engine_cancel_run(r->e, r, why);
	free(why);
	(void)loop;
}


int engine_create_run(struct engine *e, struct dag *d, const struct run_request *req,
		      struct erun **out, char **err)
{
	struct run_row row = {0};
	struct run_request pinned = *req;
	/* The engine runs the version it was handed, and records it. */
	if (!pinned.dag_version)
		pinned.dag_version = d->version;
	int rc = runs_queue(e->st, d, &pinned, &row, err);
	if (rc == 0)
		rc = engine_start_run(e, d, &row, out, err);
	run_row_free(&row);
	return rc;
}

/* Public API ------------------------------------------------------------------------------------ */

/* Whether the daemon's variable "NAME=value" reaches tasks: only what a process needs to run
 * programs (the list below and LC_*), plus the names of core.task_env_passthrough. The rest of
 * the daemon's environment (credentials, tokens, its own settings) stays out of tasks. */
static bool passed_through(const char *var, const char *extra)
{
	static const char *const always[] = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ",
					     "TMPDIR", "SHELL", "TERM", NULL};
	size_t n = strcspn(var, "=");
	if (!strncmp(var, "SLUICE_", 7))
		return false;
	if (!strncmp(var, "LC_", 3))
		return true;
	for (size_t i = 0; always[i]; i++)
		if (strlen(always[i]) == n && !strncmp(var, always[i], n))
			return true;
	for (const char *p = extra; p && *p;) {
		while (*p == ',' || *p == ' ')
			p++;
		size_t k = strcspn(p, ", ");
		if (k == n && !strncmp(var, p, n))
			return true;
		p += k;
	}
	return false;
}

/* Where tries find sluice-kernel: $SLUICE_KERNEL if set, else beside the shim (installed, the
 * shim sits next to sluice and sluice-kernel), else the build tree's kernels/ folder (the shim is
 * built in cli/), else plain "sluice-kernel" for a PATH lookup. */
static char *kernel_locate(const char *shim)
{
	const char *env = getenv("SLUICE_KERNEL");
	if (env && *env)
		return xstrdup(env);
	if (!shim || !strchr(shim, '/'))
		return xstrdup("sluice-kernel");
	const char *slash = strrchr(shim, '/');
	int dl = (int)(slash - shim);
	char *p = xasprintf("%.*s/sluice-kernel", dl, shim);
	if (access(p, X_OK) == 0)
		return p;
	free(p);
	p = xasprintf("%.*s/../kernels/sluice-kernel", dl, shim);
	if (access(p, X_OK) == 0) {
		char *real = realpath(p, NULL);
		if (real) {
			free(p);
			return real;
		}
		return p;
	}
	free(p);
	return xstrdup("sluice-kernel");
}

struct engine *engine_new(struct store *st, struct evloop *loop, const struct engine_opts *o, char **err)
{
	extern char **environ;
	struct engine *e = xcalloc(1, sizeof(*e));
	e->st = st;
	e->loop = loop;
	e->home = xstrdup(o->home);
	e->shim_path = xstrdup(o->shim_path);
	e->kernel_path = kernel_locate(o->shim_path);
	e->parallelism = o->parallelism > 0 ? o->parallelism : 32;
	e->kill_grace = o->kill_grace > 0 ? o->kill_grace : 5 * USEC_PER_SEC;
	e->max_log_size = o->max_log_size;
	e->sync_status = o->sync_status;
	e->commit_failing_since = USEC_NONE;
	e->ignore_unknown_pools = o->ignore_unknown_pools;
	e->notify = o->notify;
	for (size_t i = 0; o->settings && o->settings[i]; i++) {
		e->settings = xrealloc(e->settings, (e->nsettings + 1) * sizeof(char *));
		e->settings[e->nsettings++] = xstrdup(o->settings[i]);
	}
	if (gethostname(e->hostname, sizeof(e->hostname) - 1) < 0)
		snprintf(e->hostname, sizeof(e->hostname), "localhost");
	size_t n = 0;
	while (environ[n])
		n++;
	e->base_env = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		if (passed_through(environ[i], o->env_passthrough))
			e->base_env[e->n_base_env++] = xstrdup(environ[i]);
	srandom((unsigned)(now_usec() ^ getpid()));
	evloop_set_idle(loop, eng_on_idle, e);
	(void)err;
	return e;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	if (e->commit_timer)
		evloop_timer_cancel(e->loop, e->commit_timer);
	if (e->lazy_timer)
		evloop_timer_cancel(e->loop, e->lazy_timer);
	while (e->runs) {
		struct erun *r = e->runs;
		e->runs = r->next;
		eng_free_run(r);
	}
	for (size_t i = 0; i < e->nexecs; i++) {
		executor_close(e->execs[i].ex);
		free(e->execs[i].name);
	}
	for (size_t i = 0; i < e->npools; i++)
		free(e->pools[i].name);
	free(e->pools);
	for (size_t i = 0; i < e->ndags; i++)
		free(e->dags[i].dag_id);
	free(e->dags);
	for (size_t i = 0; i < e->n_base_env; i++)
		free(e->base_env[i]);
	free(e->base_env);
	free(e->heap.v);
	free(e->dirty.v);
	free(e->dirty_runs.v);
	free(e->to_spawn.v);
	for (size_t i = 0; i < e->tries.n; i++) {
		try_row_free(e->tries.v[i]);
		free(e->tries.v[i]);
	}
	free(e->tries.v);
	free(e->evalq);
	for (size_t i = 0; i < e->nsettings; i++)
		free(e->settings[i]);
	free(e->settings);
	free(e->home);
	free(e->shim_path);
	free(e->kernel_path);
	free(e);
}

void engine_on_run_done(struct engine *e, engine_run_done_cb cb, void *arg)
{
	e->done_cb = cb;
	e->done_arg = arg;
}

int engine_kill_try(struct engine *e, int64_t run_pk, const char *task_id, int map_index, const char *why)
{
	struct erun *r = e->runs;
	while (r && (r->row.pk != run_pk || r->finished))
		r = r->next;
	if (!r)
		return -ENOENT;
	int t = dag_task_index(r->dag, task_id), killed = 0;
	if (t < 0)
		return -EINVAL;
	for (size_t k = 0; k < r->tasks[t].ninst; k++) {
		struct eti *ti = r->tasks[t].inst[k];
		if (!ti->spawned || ti->cancel_requested || (map_index >= 0 && ti->row.map_index != map_index))
			continue;
		ti->cancel_requested = true; /* it ends as failed, without a retry */
		ti->cancel_as = TI_FAILED;
		eng_append_log(ti, "killing: %s", why);
		ti->ex->ops->cancel(ti->ex, (uint64_t)(uintptr_t)ti);
		killed++;
	}
	return killed ? killed : -ESRCH;
}

/* Takes a queued try out of the list about to be spawned, giving back its slots. */
static void unspawn(struct engine *e, struct eti *ti)
{
	for (size_t i = 0; i < e->to_spawn.n; i++) {
		if (e->to_spawn.v[i] != ti)
			continue;
		char *err = NULL;
		struct exec_entry *x = eng_get_executor(e, ti_task(ti)->executor, &err);
		free(err);
		if (x)
			x->pending--;
		eng_release_slots(e, ti);
		e->to_spawn.v[i] = e->to_spawn.v[--e->to_spawn.n];
		return;
	}
}

/* A finished instance marked with another finished state: its downstream tasks count it anew
 * (those already decided stay as they are, as in Airflow). */
static void remark_finished(struct eti *ti, enum ti_state st)
{
	struct erun *r = ti->run;
	struct task *t = ti_task(ti);
	enum ti_state old = ti->state;
	eng_set_state(ti, st);
	for (size_t j = 0; j < t->n_down; j++) {
		struct up_counts *u = &r->tasks[t->downstream[j]].up;
		int *c[2];
		enum ti_state s2[2] = {old, st};
		for (int k = 0; k < 2; k++)
			c[k] = s2[k] == TI_SUCCESS ? &u->success : s2[k] == TI_FAILED ? &u->failed
			       : s2[k] == TI_SKIPPED ? &u->skipped : s2[k] == TI_UPSTREAM_FAILED ? &u->upstream_failed
			       : &u->removed;
		(*c[0])--;
		(*c[1])++;
		eng_enqueue_eval(r->e, r, t->downstream[j]);
	}
}

/* Marks one instance of a running run (see engine_mark). */
static void mark_one(struct engine *e, struct eti *ti, enum ti_state st, const char *why)
{
	struct etask *et = &ti->run->tasks[ti->task];
	if (ti->spawned) {
		if (!ti->cancel_requested) {
			eng_append_log(ti, "stopping: %s", why);
			ti->ex->ops->cancel(ti->ex, (uint64_t)(uintptr_t)ti);
		}
		ti->cancel_requested = true; /* it ends as st once its process is gone */
		ti->cancel_as = st;
		return;
	}
	if (ti_state_finished(ti->state)) {
		if (ti->state != st) {
			ti->marking = true;
			remark_finished(ti, st);
		}
		return;
	}
	if (ti->state == TI_QUEUED)
		unspawn(e, ti);
	if (!ti_task(ti)->mapped || et->expanded) {
		/* Its trigger rule has nothing left to decide for an instance that is marked. */
		bool all = true;
		for (size_t k = 0; k < et->ninst; k++)
			all = all && (et->inst[k] == ti || ti_state_finished(et->inst[k]->state));
		et->decided = et->decided || all;
	} else {
		et->decided = et->expanded = true;
	}
	eng_append_log(ti, "marked %s: %s", ti_state_name(st), why);
	ti->marking = true;
	eng_finish_ti(ti, st);
}

int engine_mark(struct engine *e, int64_t run_pk, const int64_t *ti_pks, size_t n, enum ti_state st,
		const char *why, bool *marked)
{
	struct erun *r = e->runs;
	while (r && (r->row.pk != run_pk || r->finished))
		r = r->next;
	if (!r)
		return -ENOENT;
	if (st != TI_SUCCESS && st != TI_FAILED && st != TI_SKIPPED)
		return -EINVAL;
	int count = 0;
	for (size_t i = 0; i < r->dag->ntasks; i++) {
		for (size_t k = 0; k < r->tasks[i].ninst; k++) {
			struct eti *ti = r->tasks[i].inst[k];
			for (size_t j = 0; j < n; j++) {
				if (ti->row.pk != ti_pks[j] || r->finished)
					continue;
				mark_one(e, ti, st, why);
				if (marked)
					marked[j] = true;
				count++;
			}
		}
	}
	eng_process_evals(e);
	evloop_wake(e->loop);
	return count;
}

void engine_set_run_note(struct engine *e, int64_t run_pk, const char *note)
{
	for (struct erun *r = e->runs; r; r = r->next) {
		if (r->row.pk == run_pk) {
			free(r->row.note);
			r->row.note = note ? xstrdup(note) : NULL;
		}
	}
}

int engine_delete_run(struct engine *e, int64_t run_pk, const char *why)
{
	for (struct erun *r = e->runs; r; r = r->next) {
		if (r->row.pk != run_pk || r->finished)
			continue;
		engine_cancel_run(e, r, why);
		r->deleted = true;
		/* What was queued for the next commit belongs to rows that are about to go. */
		for (size_t i = 0; i < e->tries.n; i++) {
			struct try_row *tr = e->tries.v[i];
			bool mine = false;
			for (size_t t = 0; t < r->dag->ntasks && !mine; t++)
				for (size_t k = 0; k < r->tasks[t].ninst && !mine; k++)
					mine = r->tasks[t].inst[k]->row.pk == tr->ti_pk;
			if (mine) {
				try_row_free(tr);
				free(tr);
				e->tries.v[i--] = e->tries.v[--e->tries.n];
			}
		}
		log_info("run %s of %s deleted: %s", r->row.run_id, r->row.dag_id, why);
		evloop_wake(e->loop);
		return 0;
	}
	return -ENOENT;
}

int engine_cancel_run_pk(struct engine *e, int64_t run_pk, const char *why)
{
	for (struct erun *r = e->runs; r; r = r->next) {
		if (r->row.pk == run_pk && !r->finished) {
			engine_cancel_run(e, r, why);
			evloop_wake(e->loop);
			return 0;
		}
	}
	return -ENOENT;
}

void engine_cancel_run(struct engine *e, struct erun *r, const char *why)
{
	if (r->finished || r->cancelled)
		return;
	r->cancelled = true;
	free(r->row.note);
	r->row.note = xstrdup(why);
	eng_mark_run_dirty(r);
	for (size_t i = 0; i < r->dag->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		et->decided = true;
		for (size_t k = 0; k < et->ninst; k++) {
			struct eti *ti = et->inst[k];
			if (ti_state_finished(ti->state))
				continue;
			if (ti->spawned) {
				ti->cancel_requested = true;
				ti->cancel_as = TI_FAILED;
				eng_append_log(ti, "cancelling: %s", why);
				ti->ex->ops->cancel(ti->ex, (uint64_t)(uintptr_t)ti);
			} else if (ti->state == TI_QUEUED) {
				continue; /* in to_spawn: dropped below */
			} else {
				eng_finish_ti(ti, TI_SKIPPED);
			}
		}
	}
	/* Queued tries of this run that were about to start are dropped here. */
	for (size_t i = 0; i < e->to_spawn.n; i++) {
		struct eti *ti = e->to_spawn.v[i];
		if (ti->run != r)
			continue;
		unspawn(e, ti);
		i--;
		eng_finish_ti(ti, TI_SKIPPED);
	}
	log_info("run %s of %s cancelled: %s", r->row.run_id, r->row.dag_id, why);
	eng_process_evals(e);
}

const struct run_row *erun_row(const struct erun *r) { return &r->row; }
const struct dag *erun_dag(const struct erun *r) { return r->dag; }

usec_t engine_commit_failing(const struct engine *e) { return e->commit_failing_since; }

int engine_active_runs(const struct engine *e, const char *dag_id)
{
	int n = 0;
	for (const struct erun *r = e->runs; r; r = r->next)
		if (!r->finished && !strcmp(r->row.dag_id, dag_id))
			n++;
	return n;
}

bool engine_has_run(const struct engine *e, int64_t run_pk)
{
	for (const struct erun *r = e->runs; r; r = r->next)
		if (r->row.pk == run_pk)
			return true;
	return false;
}

int engine_running_tries(const struct engine *e)
{
	int n = 0;
	for (const struct erun *r = e->runs; r; r = r->next)
		for (size_t i = 0; i < r->dag->ntasks; i++)
			for (size_t k = 0; k < r->tasks[i].ninst; k++)
				n += r->tasks[i].inst[k]->spawned;
	return n;
}

int engine_slots_in_use(const struct engine *e)
{
	int n = 0;
	for (size_t i = 0; i < e->nexecs; i++)
		n += e->execs[i].ex->parallelism - e->execs[i].ex->ops->free_slots(e->execs[i].ex);
	return n;
}

void engine_kill_all(struct engine *e)
{
	for (struct erun *r = e->runs; r; r = r->next) {
		for (size_t i = 0; i < r->dag->ntasks; i++) {
			for (size_t k = 0; k < r->tasks[i].ninst; k++) {
				struct eti *ti = r->tasks[i].inst[k];
				if (!ti->spawned)
					continue;
				eng_append_log(ti, "the daemon is stopping with --kill-tasks-on-exit: stopping this try");
				ti->ex->ops->cancel(ti->ex, (uint64_t)(uintptr_t)ti);
			}
		}
	}
}

void engine_reload_pools(struct engine *e)
{
	for (size_t i = 0; i < e->npools; i++) {
		int slots;
		if (store_pool_slots(e->st, e->pools[i].name, &slots) == 0)
			e->pools[i].slots = slots;
	}
}

/* Puts a finished or waiting instance back to none for another try (Airflow's clear). */
static void reset_ti(struct eti *ti)
{
	struct task *t = ti_task(ti);
	if (ti->heap_idx >= 0)
		eng_heap_remove(ti->run->e, ti);
	if (ti->timer) {
		evloop_timer_cancel(ti->run->e->loop, ti->timer);
		ti->timer = NULL;
	}
	ti_clear_row(&ti->row, t->retries);
	free(ti->row.state); /* held in ti->state, as ever */
	ti->row.state = NULL;
	for (size_t i = 0; i < ti->noutputs; i++) {
		free(ti->outputs[i].key);
		free(ti->outputs[i].value);
	}
	free(ti->outputs);
	ti->outputs = NULL;
	ti->noutputs = 0;
	ti->outputs_dirty = true;
	free(ti->message);
	ti->message = NULL;
	ti->cancel_requested = false;
	eng_set_state(ti, TI_NONE);
}

int engine_clear(struct engine *e, int64_t run_pk, const int64_t *ti_pks, size_t n, bool *cleared)
{
	struct erun *r = e->runs;
	int count = 0;
	while (r && r->row.pk != run_pk)
		r = r->next;
	if (!r)
		return -ENOENT;
	for (size_t i = 0; i < r->dag->ntasks; i++) {
		for (size_t k = 0; k < r->tasks[i].ninst; k++) {
			struct eti *ti = r->tasks[i].inst[k];
			for (size_t j = 0; j < n; j++) {
				if (ti->row.pk != ti_pks[j])
					continue;
				/* A try that is under way finishes first; it is not cleared. */
				if (ti->spawned || ti->state == TI_QUEUED || ti->state == TI_RUNNING)
					break;
				reset_ti(ti);
				if (cleared)
					cleared[j] = true;
				count++;
			}
		}
	}
	if (count == 0)
		return 0;
	if (r->finished) {
		/* Finished in this very iteration and not reaped yet: it runs again. */
		r->finished = r->notify = false;
		r->row.end_date = USEC_NONE;
		eng_set_run_state(r, RUN_RUNNING);
	}
	eng_count_upstream(r);
	for (size_t i = 0; i < r->dag->ntasks; i++)
		if (!r->tasks[i].decided)
			eng_enqueue_eval(e, r, (int)i);
	eng_process_evals(e);
	evloop_wake(e->loop);
	return count;
}
