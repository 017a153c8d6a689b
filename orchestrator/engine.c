#include "orchestrator/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "orchestrator/cron.h"
#include "base/events.h"
#include "executors/executor.h"
#include "base/log.h"
#include "orchestrator/notify.h"
#include "orchestrator/runs.h"
#include "orchestrator/states.h"
#include "orchestrator/template.h"
#include "orchestrator/tz.h"

#define OUTPUT_FILE_MAX (1u << 20)

/* One task instance of a run. Owned by its run; `row` mirrors the database row. */
struct eti {
	struct erun *run;
	int task;                  /* index into run->dag->tasks */
	struct ti_row row;         /* the database row; row.state is NULL in memory and is written
	                              from `state` at each commit (sync_row): the state is held once */
	enum ti_state state;       /* changed only by set_state(), which checks the state table */
	bool needs_insert;         /* created in memory (map expansion), no row yet */
	bool dirty;                /* row must be written at the next commit */
	bool outputs_dirty;
	bool cancel_requested;
	bool spawned;              /* an executor holds this try */
	struct ev_timer *timer;    /* retry or next poke */
	char *item;                /* mapped item */
	struct kv *outputs;
	size_t noutputs;
	struct executor *ex;
	int heap_idx;              /* position in the ready heap, -1 when not in it */
	uint64_t seq;              /* FIFO order among equal priorities */
	char *message;             /* why the current try ended, for the try history */
};

struct etask {
	struct eti **inst;
	size_t ninst;
	bool expanded;             /* a mapped task's instances exist */
	bool decided;              /* the trigger rule has produced its decision */
	struct up_counts up;
};

struct erun {
	struct engine *e;
	struct dag *dag;
	struct run_row row;        /* row.state is the name of `state`, written by set_run_state() only */
	enum run_state state;
	cJSON *conf;
	struct etask *tasks;
	size_t unfinished;         /* instances not in a finished state */
	bool dirty, finished, cancelled, notify;
	struct ev_timer *timeout;
	struct erun *next;
};

struct exec_entry {
	char *name;
	struct executor *ex;
	int pending;               /* queued, not yet started */
};

struct pool_entry {
	char *name;
	int slots;                 /* -1 = unlimited */
	int used;
};

struct dag_entry {
	char *dag_id;
	int active;                /* queued + running instances */
};

/* A growable array of pointers. */
struct ptrvec {
	void **v;
	size_t n, cap;
};

static void pv_push(struct ptrvec *p, void *x)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 32;
		p->v = xrealloc(p->v, p->cap * sizeof(void *));
	}
	p->v[p->n++] = x;
}

struct eval_item {
	struct erun *run;
	int task;
};

struct engine {
	struct store *st;
	struct evloop *loop;
	char *home, *shim_path;
	int parallelism;
	usec_t kill_grace;
	bool ignore_unknown_pools;
	struct notify *notify;
	char hostname[256];
	char **base_env;           /* the daemon's environment minus SLUICE_* */
	size_t n_base_env;

	struct erun *runs;
	struct ptrvec heap;        /* ready instances: max-heap by priority, then seq */
	struct ptrvec dirty;       /* struct eti * with dirty set */
	struct ptrvec dirty_runs;  /* struct erun * with dirty set */
	struct ptrvec to_spawn;    /* struct eti * queued in this iteration */
	struct ptrvec tries;       /* struct try_row * to write at the next commit (owned) */
	struct eval_item *evalq;   /* tasks whose trigger rule must be evaluated */
	size_t nevalq, capevalq;
	struct exec_entry execs[8];
	size_t nexecs;
	struct pool_entry *pools;
	size_t npools;
	struct dag_entry *dags;
	size_t ndags;
	uint64_t seq;
	engine_run_done_cb done_cb;
	void *done_arg;
};

static void commit_dirty(struct engine *e);
static void finish_ti(struct eti *ti, enum ti_state st);
static void finish_run(struct erun *r);
static void process_evals(struct engine *e);
static void fail_try(struct eti *ti, bool retryable);
static void take_slots(struct engine *e, struct eti *ti, int sign);
static void release_slots(struct engine *e, struct eti *ti);
static int ti_lookup(void *ctx, const char *name, struct strbuf *out, char **err);
static char **split_items(const char *s, size_t *n);

/* Small helpers ------------------------------------------------------------------------------ */

static struct task *ti_task(const struct eti *ti) { return &ti->run->dag->tasks[ti->task]; }

static void mark_dirty(struct eti *ti)
{
	if (!ti->dirty) {
		ti->dirty = true;
		pv_push(&ti->run->e->dirty, ti);
	}
}

static void mark_run_dirty(struct erun *r)
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
static void set_state(struct eti *ti, enum ti_state st)
{
	ti_transition(&ti->row, ti->state, st);
	ti->state = st;
	mark_dirty(ti);
	publish_ti(ti);
}

/* The one place a run's state changes. */
static void set_run_state(struct erun *r, enum run_state st)
{
	run_transition(&r->row, r->state, st);
	r->state = st;
	free(r->row.state);
	r->row.state = xstrdup(run_state_name(st));
	mark_run_dirty(r);
	publish_run(r);
}

/* Writes the in-memory state into the row just before it goes to the database. */
static struct ti_row *sync_row(struct eti *ti)
{
	free(ti->row.state);
	ti->row.state = xstrdup(ti_state_name(ti->state));
	return &ti->row;
}

/* Path of a try's file: its log ("log"), status, pid or output file. Ids were checked when the
 * run was queued; a row that holds others anyway gets a path no file can be made at (NUL-free,
 * under no folder), so its try fails instead of writing outside the home. */
static char *try_file(const struct eti *ti, const char *ext)
{
	char *p = runs_log_path(ti->run->e->home, ti->row.dag_id, ti->row.run_id, ti->row.task_id,
				ti->row.map_index, ti->row.try_number, ext);
	return p ? p : xstrdup("/nonexistent/sluice: an id of this task instance is not a valid name");
}

static void append_log(const struct eti *ti, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a line from sluice itself to the current try's log (creating it). */
static void append_log(const struct eti *ti, const char *fmt, ...)
{
	char *path = try_file(ti, "log");
	char *dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	mkdir_p(dir, 0755);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
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

static void heap_push(struct engine *e, struct eti *ti)
{
	pv_push(&e->heap, ti);
	ti->heap_idx = (int)e->heap.n - 1;
	heap_up(&e->heap, e->heap.n - 1);
}

static void heap_remove(struct engine *e, struct eti *ti)
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

static struct eti *heap_pop(struct engine *e)
{
	struct eti *top = e->heap.v[0];
	heap_remove(e, top);
	return top;
}

/* Limits: executors, pools, DAG max_active_tasks -------------------------------------------- */

static void on_try_end(void *arg, uint64_t token, const struct exec_result *res);

static struct exec_entry *get_executor(struct engine *e, const char *name, char **err)
{
	for (size_t i = 0; i < e->nexecs; i++)
		if (!strcmp(e->execs[i].name, name))
			return &e->execs[i];
	if (e->nexecs == sizeof(e->execs) / sizeof(e->execs[0])) {
		*err = xstrdup("too many executors");
		return NULL;
	}
	struct executor *ex = executor_open(name, e->loop, on_try_end, e, e->parallelism, e->shim_path, err);
	if (!ex)
		return NULL;
	struct exec_entry *x = &e->execs[e->nexecs++];
	x->name = xstrdup(name);
	x->ex = ex;
	x->pending = 0;
	return x;
}

static struct pool_entry *get_pool(struct engine *e, const char *name)
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

static struct dag_entry *get_dag_entry(struct engine *e, const char *dag_id)
{
	for (size_t i = 0; i < e->ndags; i++)
		if (!strcmp(e->dags[i].dag_id, dag_id))
			return &e->dags[i];
	e->dags = xrealloc(e->dags, (e->ndags + 1) * sizeof(*e->dags));
	e->dags[e->ndags] = (struct dag_entry){xstrdup(dag_id), 0};
	return &e->dags[e->ndags++];
}

/* Run creation -------------------------------------------------------------------------------- */

static struct eti *new_eti(struct erun *r, int task, int map_index)
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

static void free_eti(struct eti *ti)
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
	free(ti);
}

static void free_run(struct erun *r)
{
	for (size_t i = 0; r->tasks && i < r->dag->ntasks; i++) {
		for (size_t k = 0; k < r->tasks[i].ninst; k++)
			free_eti(r->tasks[i].inst[k]);
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

static void on_run_timeout(struct evloop *loop, void *arg)
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

static void schedule_ti(struct eti *ti);
static void retry_timer(struct evloop *loop, void *arg);
static void enqueue_eval(struct engine *e, struct erun *r, int task);

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

/* Recovery helpers ------------------------------------------------------------------------- */

static void add_instance(struct etask *et, struct eti *ti)
{
	et->inst = xrealloc(et->inst, (et->ninst + 1) * sizeof(struct eti *));
	et->inst[et->ninst++] = ti;
}

static int cmp_map_index(const void *a, const void *b)
{
	const struct eti *x = *(struct eti *const *)a, *y = *(struct eti *const *)b;
	return (x->row.map_index > y->row.map_index) - (x->row.map_index < y->row.map_index);
}

static int load_output(void *arg, const char *key, const char *value)
{
	struct eti *ti = arg;
	ti->outputs = xrealloc(ti->outputs, (ti->noutputs + 1) * sizeof(struct kv));
	ti->outputs[ti->noutputs].key = xstrdup(key);
	ti->outputs[ti->noutputs].value = xstrdup(value);
	ti->noutputs++;
	return 0;
}

/* Builds the instances of r from its stored rows (inserting rows for tasks that have none).
 * Returns 0 or a negative error; runs inside a transaction. */
static int load_instances(struct engine *e, struct erun *r)
{
	struct dag *d = r->dag;
	struct ti_row *rows = NULL;
	int n = store_ti_list(e->st, r->row.pk, &rows);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		int idx = dag_task_index(d, rows[i].task_id);
		if (idx < 0) {
			ti_row_free(&rows[i]);
			continue; /* a task of another version; cannot happen for a run's own version */
		}
		struct eti *ti = xcalloc(1, sizeof(*ti));
		ti->run = r;
		ti->task = idx;
		ti->heap_idx = -1;
		ti->row = rows[i];
		int stt = ti_state_parse(ti->row.state);
		ti->state = stt < 0 ? TI_NONE : (enum ti_state)stt;
		free(ti->row.state);
		ti->row.state = NULL;
		add_instance(&r->tasks[idx], ti);
	}
	free(rows);
	for (size_t i = 0; i < d->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		if (et->ninst == 0) {
			struct eti *ti = new_eti(r, (int)i, -1);
			int rc = store_ti_insert(e->st, sync_row(ti));
			if (rc < 0) {
				free_eti(ti);
				return rc;
			}
			add_instance(et, ti);
		}
		qsort(et->inst, et->ninst, sizeof(struct eti *), cmp_map_index);
		et->expanded = !d->tasks[i].mapped || et->inst[0]->row.map_index >= 0 ||
			       ti_state_finished(et->inst[0]->state);
		for (size_t k = 0; k < et->ninst; k++)
			if (et->inst[k]->state == TI_SUCCESS)
				store_output_each(e->st, et->inst[k]->row.pk, load_output, et->inst[k]);
	}
	return 0;
}

/* Mapped items are not stored: re-render them for instances that still have to run. */
static void restore_items(struct erun *r, int task)
{
	struct task *t = &r->dag->tasks[task];
	struct etask *et = &r->tasks[task];
	char **items = t->over_items, **owned = NULL;
	size_t n = t->n_over;
	/* Nothing to do for unmapped tasks, maps not expanded yet, or maps that ended unexpanded. */
	if (!t->mapped || !et->expanded || et->inst[0]->row.map_index < 0)
		return;
	if (t->over_template) {
		char *s = NULL, *err = NULL;
		if (tmpl_render(t->over_template, ti_lookup, et->inst[0], &s, &err) < 0) {
			free(err);
			return;
		}
		owned = items = split_items(s, &n);
		free(s);
	}
	for (size_t k = 0; k < et->ninst; k++) {
		int mi = et->inst[k]->row.map_index;
		if (mi >= 0 && (size_t)mi < n && !et->inst[k]->item)
			et->inst[k]->item = xstrdup(items[mi]);
	}
	if (owned) {
		for (size_t i = 0; i < n; i++)
			free(owned[i]);
		free(owned);
	}
}

static void count_upstream(struct erun *r)
{
	struct dag *d = r->dag;
	r->unfinished = 0;
	for (size_t i = 0; i < d->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		memset(&et->up, 0, sizeof(et->up));
		for (size_t j = 0; j < d->tasks[i].n_up; j++)
			et->up.total += (int)r->tasks[d->tasks[i].upstream[j]].ninst;
	}
	for (size_t i = 0; i < d->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		for (size_t k = 0; k < et->ninst; k++) {
			enum ti_state st = et->inst[k]->state;
			if (!ti_state_finished(st))
				r->unfinished++;
			for (size_t j = 0; j < d->tasks[i].n_down && ti_state_finished(st); j++) {
				struct up_counts *c = &r->tasks[d->tasks[i].downstream[j]].up;
				switch (st) {
				case TI_SUCCESS: c->success++; break;
				case TI_FAILED: c->failed++; break;
				case TI_SKIPPED: c->skipped++; break;
				case TI_UPSTREAM_FAILED: c->upstream_failed++; break;
				default: c->removed++; break;
				}
			}
		}
		/* A task is decided once every instance of it has left none (a cleared task has not). */
		et->decided = et->ninst > 0;
		for (size_t k = 0; k < et->ninst; k++)
			if (et->inst[k]->state == TI_NONE)
				et->decided = false;
	}
}

static void reattach_ti(struct engine *e, struct eti *ti)
{
	struct task *t = ti_task(ti);
	char *err = NULL;
	struct exec_entry *x = get_executor(e, t->executor, &err);
	char *log = try_file(ti, "log"), *status = try_file(ti, "status"), *pidf = try_file(ti, "pid");
	struct stat sb;
	bool started = ti->state == TI_RUNNING || stat(status, &sb) == 0 || stat(pidf, &sb) == 0;

	take_slots(e, ti, +1);
	if (!x) {
		append_log(ti, "cannot re-attach: %s", err);
		free(err);
		release_slots(e, ti);
		fail_try(ti, true);
		goto out;
	}
	if (!started) {
		/* queued, and its supervisor never got going: start it now (same try). */
		pv_push(&e->to_spawn, ti);
		goto out;
	}
	x->pending--;
	struct exec_spec spec = {
		.log_path = log, .status_path = status, .pid_path = pidf,
		.dag_id = ti->row.dag_id, .run_id = ti->row.run_id, .task_id = ti->row.task_id,
		.map_index = ti->row.map_index, .try_number = ti->row.try_number,
	};
	if (x->ex->ops->reattach(x->ex, (uint64_t)(uintptr_t)ti, &spec, ti->row.external_id) < 0) {
		append_log(ti, "cannot re-attach to the running try; counting it as lost");
		release_slots(e, ti);
		fail_try(ti, true);
		goto out;
	}
	ti->ex = x->ex;
	ti->spawned = true;
	if (ti->state != TI_RUNNING)
		set_state(ti, TI_RUNNING);
out:
	free(log);
	free(status);
	free(pidf);
}

/* Puts every instance back where its stored state says it is. */
static void resume_instances(struct engine *e, struct erun *r)
{
	usec_t now = now_usec();
	for (size_t i = 0; i < r->dag->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		restore_items(r, (int)i);
		for (size_t k = 0; k < et->ninst; k++) {
			struct eti *ti = et->inst[k];
			usec_t delay;
			switch (ti->state) {
			case TI_SCHEDULED:
				ti->seq = ++e->seq;
				heap_push(e, ti);
				break;
			case TI_QUEUED:
			case TI_RUNNING:
				reattach_ti(e, ti);
				break;
			case TI_UP_FOR_RETRY:
			case TI_UP_FOR_RESCHEDULE:
				delay = ti->row.next_retry_at == USEC_NONE ? 0 : ti->row.next_retry_at - now;
				ti->timer = evloop_timer_in(e->loop, delay > 0 ? delay : 0, retry_timer, ti);
				break;
			default:
				break;
			}
		}
		if (!et->decided)
			enqueue_eval(e, r, (int)i);
	}
}

int engine_start_run(struct engine *e, struct dag *d, const struct run_row *row,
		     struct erun **out, char **err)
{
	/* A row written around runs_queue() (by hand, say) must not name files outside the home. */
	if (!valid_id(row->dag_id) || !valid_run_id(row->run_id)) {
		*err = xasprintf("its DAG id or run id is not a valid name; the run is left alone");
		return -EINVAL;
	}
	struct erun *r = xcalloc(1, sizeof(*r));
	int rc;

	r->e = e;
	r->dag = dag_ref(d);
	run_row_copy(&r->row, row);
	r->conf = cJSON_Parse(r->row.conf ? r->row.conf : "{}");
	if (!cJSON_IsObject(r->conf)) {
		cJSON_Delete(r->conf);
		r->conf = cJSON_CreateObject();
	}
	r->tasks = xcalloc(d->ntasks ? d->ntasks : 1, sizeof(struct etask));
	if ((rc = store_begin(e->st)) < 0) {
		*err = xstrdup("cannot start a database transaction");
		goto fail;
	}
	if ((rc = load_instances(e, r)) < 0) {
		store_rollback(e->st);
		*err = xstrdup("cannot load or create the task instances");
		goto fail;
	}
	int rs = run_state_parse(r->row.state);
	r->state = rs < 0 ? RUN_QUEUED : (enum run_state)rs;
	if (r->state != RUN_RUNNING) {
		set_run_state(r, RUN_RUNNING);
		r->row.start_date = now_usec();
		store_run_update(e->st, &r->row);
	}
	if ((rc = store_commit(e->st)) < 0) {
		*err = xstrdup("cannot commit the run's task instances");
		goto fail;
	}
	r->next = e->runs;
	e->runs = r;
	if (d->dagrun_timeout > 0) {
		usec_t left = r->row.start_date + d->dagrun_timeout - now_usec();
		r->timeout = evloop_timer_in(e->loop, left > 0 ? left : 0, on_run_timeout, r);
	}
	count_upstream(r);
	resume_instances(e, r);
	if (r->unfinished == 0 && !r->finished)
		finish_run(r);
	process_evals(e);
	evloop_wake(e->loop);
	if (out)
		*out = r;
	return 0;
fail:
	free_run(r);
	return rc;
}

/* Trigger rules and state propagation --------------------------------------------------------- */

static void enqueue_eval(struct engine *e, struct erun *r, int task)
{
	if (e->nevalq == e->capevalq) {
		e->capevalq = e->capevalq ? e->capevalq * 2 : 64;
		e->evalq = xrealloc(e->evalq, e->capevalq * sizeof(*e->evalq));
	}
	e->evalq[e->nevalq++] = (struct eval_item){r, task};
}

static void expand_mapped(struct erun *r, int task);

static void evaluate(struct erun *r, int task)
{
	struct etask *et = &r->tasks[task];
	if (et->decided || r->cancelled)
		return;
	enum tr_decision dec = trigger_rule_eval(r->dag->tasks[task].trigger_rule, &et->up);
	switch (dec) {
	case TR_WAIT:
		return;
	case TR_RUN:
		et->decided = true;
		if (!et->expanded) {
			expand_mapped(r, task);
			return;
		}
		/* Every instance that has not run (all of them after a clear of a mapped task). */
		for (size_t k = 0; k < et->ninst; k++)
			if (et->inst[k]->state == TI_NONE)
				schedule_ti(et->inst[k]);
		return;
	case TR_SKIP:
	case TR_UPSTREAM_FAILED:
		et->decided = true;
		for (size_t k = 0; k < et->ninst; k++)
			if (et->inst[k]->state == TI_NONE)
				finish_ti(et->inst[k], dec == TR_SKIP ? TI_SKIPPED : TI_UPSTREAM_FAILED);
		return;
	}
}

/* Work queue instead of recursion, so a long chain of skips cannot overflow the stack. */
static void process_evals(struct engine *e)
{
	size_t i = 0;
	while (i < e->nevalq) {
		struct eval_item it = e->evalq[i++];
		evaluate(it.run, it.task);
	}
	e->nevalq = 0;
}

/* Moves ti to a finished state and tells its downstream tasks. */
static void finish_ti(struct eti *ti, enum ti_state st)
{
	struct erun *r = ti->run;
	struct task *t = ti_task(ti);
	if (ti->timer) {
		evloop_timer_cancel(r->e->loop, ti->timer);
		ti->timer = NULL;
	}
	if (ti->heap_idx >= 0)
		heap_remove(r->e, ti);
	set_state(ti, st);
	if (ti->row.end_date == USEC_NONE)
		ti->row.end_date = now_usec();
	r->unfinished--;
	for (size_t j = 0; j < t->n_down; j++) {
		struct etask *dt = &r->tasks[t->downstream[j]];
		switch (st) {
		case TI_SUCCESS: dt->up.success++; break;
		case TI_FAILED: dt->up.failed++; break;
		case TI_SKIPPED: dt->up.skipped++; break;
		case TI_UPSTREAM_FAILED: dt->up.upstream_failed++; break;
		default: dt->up.removed++; break;
		}
		enqueue_eval(r->e, r, t->downstream[j]);
	}
	if (r->unfinished == 0)
		finish_run(r);
}

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
	return ti_lookup(c->ti, name, out, err);
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
	if (!e->notify || (!cb->cmd && !cb->webhook))
		return;
	char *dir = runs_log_dir(e->home, r->row.dag_id, r->row.run_id);
	char *log = dir ? xasprintf("%s/callbacks.log", dir) : NULL;
	free(dir);
	char *cmd = NULL, *err = NULL;
	struct eti stand_in = {.run = r, .heap_idx = -1};
	struct cb_ctx ctx = {ti ? ti : &stand_in, ti != NULL};
	if (!ti)
		ti_row_init(&stand_in.row);
	if (cb->cmd && tmpl_render(cb->cmd, cb_lookup, &ctx, &cmd, &err) < 0) {
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

static void finish_run(struct erun *r)
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
	set_run_state(r, failed ? RUN_FAILED : RUN_SUCCESS);
	if (failed)
		fire_callback(r, NULL, "on_failure", &r->dag->on_failure, r->cancelled ? r->row.note : NULL);
	else
		fire_callback(r, NULL, "on_success", &r->dag->on_success, NULL);
	if (r->timeout) {
		evloop_timer_cancel(r->e->loop, r->timeout);
		r->timeout = NULL;
	}
	mark_run_dirty(r);
}

static void schedule_ti(struct eti *ti)
{
	set_state(ti, TI_SCHEDULED);
	ti->seq = ++ti->run->e->seq;
	heap_push(ti->run->e, ti);
}

/* Templating context --------------------------------------------------------------------------- */

static void json_scalar(const cJSON *v, struct strbuf *out)
{
	if (cJSON_IsString(v)) {
		sb_puts(out, v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == (double)(long long)d && d > -1e15 && d < 1e15)
			sb_printf(out, "%lld", (long long)d);
		else
			sb_printf(out, "%.17g", d);
	} else if (cJSON_IsBool(v)) {
		sb_puts(out, cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsNull(v)) {
		sb_puts(out, "");
	} else {
		char *s = cJSON_PrintUnformatted(v);
		sb_puts(out, s);
		free(s);
	}
}

/* Follows a dotted path ("a.b.c") into a JSON object; NULL when absent. */
static const cJSON *json_path(const cJSON *root, const char *path)
{
	char *copy = xstrdup(path), *save = NULL;
	const cJSON *cur = root;
	for (char *tok = strtok_r(copy, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
		if (cJSON_IsArray(cur)) {
			char *end;
			long idx = strtol(tok, &end, 10);
			cur = *end ? NULL : cJSON_GetArrayItem(cur, (int)idx);
		} else {
			cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
		}
	}
	free(copy);
	return cur;
}

static const char *ti_output(const struct eti *ti, const char *key)
{
	for (size_t i = 0; i < ti->noutputs; i++)
		if (!strcmp(ti->outputs[i].key, key))
			return ti->outputs[i].value;
	return NULL;
}

/* outputs.TASK.KEY: the value TASK wrote; for a mapped TASK, the values of all its instances
 * in map_index order joined by commas. */
static int lookup_output(const struct eti *ti, const char *rest, struct strbuf *out, char **err)
{
	const struct erun *r = ti->run;
	const char *dot = strrchr(rest, '.');
	if (!dot || dot == rest || !dot[1]) {
		*err = xasprintf("'outputs.%s' must be written outputs.TASK.KEY", rest);
		return -ENOENT;
	}
	char *task = xstrndup(rest, (size_t)(dot - rest));
	const char *key = dot + 1;
	int idx = dag_task_index(r->dag, task);
	int rc = 0;
	if (idx < 0) {
		*err = xasprintf("unknown task '%s' in 'outputs.%s'", task, rest);
		rc = -ENOENT;
		goto out;
	}
	const struct etask *et = &r->tasks[idx];
	for (size_t k = 0; k < et->ninst; k++) {
		const char *v = ti_output(et->inst[k], key);
		if (!v) {
			*err = xasprintf("task '%s' has no output '%s' (it is %s; outputs are the key=value "
					 "lines a successful task writes to $SLUICE_OUTPUT)",
					 task, key, ti_state_name(et->inst[k]->state));
			rc = -ENOENT;
			goto out;
		}
		if (k)
			sb_putc(out, ',');
		sb_puts(out, v);
	}
out:
	free(task);
	return rc;
}

static void put_date(struct strbuf *out, usec_t t, bool nodash)
{
	char iso[ISO_BUFSZ];
	format_iso8601(t, iso, sizeof(iso));
	if (nodash)
		sb_printf(out, "%.4s%.2s%.2s", iso, iso + 5, iso + 8);
	else
		sb_add(out, iso, 10);
}

static int ti_lookup(void *ctx, const char *name, struct strbuf *out, char **err)
{
	const struct eti *ti = ctx;
	const struct erun *r = ti->run;
	char iso[ISO_BUFSZ];

	if (!strcmp(name, "ds")) {
		put_date(out, r->row.logical_date, false);
	} else if (!strcmp(name, "ds_nodash")) {
		put_date(out, r->row.logical_date, true);
	} else if (!strcmp(name, "ts") || !strcmp(name, "logical_date")) {
		format_iso8601(r->row.logical_date, iso, sizeof(iso));
		sb_puts(out, iso);
	} else if (!strcmp(name, "ts_nodash")) {
		format_iso8601_z(r->row.logical_date, iso, sizeof(iso));
		for (const char *p = iso; *p && *p != 'Z'; p++)
			if (*p != '-' && *p != ':')
				sb_putc(out, *p);
	} else if (!strcmp(name, "data_interval_start")) {
		format_iso8601(r->row.data_interval_start, iso, sizeof(iso));
		sb_puts(out, iso);
	} else if (!strcmp(name, "data_interval_end")) {
		format_iso8601(r->row.data_interval_end, iso, sizeof(iso));
		sb_puts(out, iso);
	} else if (!strcmp(name, "run_id")) {
		sb_puts(out, r->row.run_id);
	} else if (!strcmp(name, "dag_id")) {
		sb_puts(out, r->row.dag_id);
	} else if (!strcmp(name, "task_id")) {
		sb_puts(out, ti->row.task_id);
	} else if (!strcmp(name, "try_number")) {
		sb_printf(out, "%d", ti->row.try_number);
	} else if (!strcmp(name, "map_index")) {
		sb_printf(out, "%d", ti->row.map_index);
	} else if (!strcmp(name, "item")) {
		if (!ti->item) {
			*err = xstrdup("'item' is only defined in mapped tasks (d:map)");
			return -ENOENT;
		}
		sb_puts(out, ti->item);
	} else if (!strncmp(name, "params.", 7)) {
		/* A trigger's conf overrides the DAG's params of the same name. */
		const cJSON *v = json_path(r->conf, name + 7);
		if (!v)
			v = json_path(r->dag->params, name + 7);
		if (!v) {
			*err = xasprintf("unknown param '%s' (not in the DAG's params nor in the run's conf)", name + 7);
			return -ENOENT;
		}
		json_scalar(v, out);
	} else if (!strncmp(name, "conf.", 5)) {
		const cJSON *v = json_path(r->conf, name + 5);
		if (!v) {
			*err = xasprintf("the run's conf has no '%s'", name + 5);
			return -ENOENT;
		}
		json_scalar(v, out);
	} else if (!strncmp(name, "outputs.", 8)) {
		return lookup_output(ti, name + 8, out, err);
	} else {
		return -ENOENT;
	}
	return 0;
}

/* Map expansion -------------------------------------------------------------------------------- */

/* Splits a rendered `over` value: a JSON array, else one item per line, else comma-separated. */
static char **split_items(const char *s, size_t *n)
{
	char **items = NULL;
	*n = 0;
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (*s == '[') {
		cJSON *a = cJSON_Parse(s);
		if (cJSON_IsArray(a)) {
			int len = cJSON_GetArraySize(a);
			items = xcalloc((size_t)len + 1, sizeof(char *));
			for (int i = 0; i < len; i++) {
				struct strbuf sb = {0};
				json_scalar(cJSON_GetArrayItem(a, i), &sb);
				items[(*n)++] = sb_steal(&sb);
			}
			cJSON_Delete(a);
			return items;
		}
		cJSON_Delete(a);
	}
	char sep = strchr(s, '\n') ? '\n' : ',';
	const char *p = s;
	while (*p) {
		const char *end = strchr(p, sep);
		if (!end)
			end = p + strlen(p);
		const char *a = p, *b = end;
		while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		if (b > a) {
			items = xrealloc(items, (*n + 2) * sizeof(char *));
			items[(*n)++] = xstrndup(a, (size_t)(b - a));
		}
		p = *end ? end + 1 : end;
	}
	return items;
}

static void expand_mapped(struct erun *r, int task)
{
	struct etask *et = &r->tasks[task];
	struct task *t = &r->dag->tasks[task];
	struct eti *first = et->inst[0];
	char **items = t->over_items;
	size_t n = t->n_over;
	char **rendered_items = NULL;

	et->expanded = true;
	if (t->over_template) {
		char *s = NULL, *err = NULL;
		if (tmpl_render(t->over_template, ti_lookup, first, &s, &err) < 0) {
			first->row.try_number = 1;
			append_log(first, "cannot expand mapped task: %s", err);
			free(first->message);
			first->message = err;
			finish_ti(first, TI_FAILED);
			return;
		}
		rendered_items = items = split_items(s, &n);
		free(s);
	}
	if (n == 0) {
		finish_ti(first, TI_SKIPPED);
		goto out;
	}
	et->inst = xrealloc(et->inst, n * sizeof(struct eti *));
	et->ninst = n;
	first->row.map_index = 0;
	first->item = xstrdup(items[0]);
	for (size_t i = 1; i < n; i++) {
		struct eti *ti = new_eti(r, task, (int)i);
		ti->item = xstrdup(items[i]);
		ti->needs_insert = true;
		et->inst[i] = ti;
		r->unfinished++;
	}
	for (size_t j = 0; j < t->n_down; j++)
		r->tasks[t->downstream[j]].up.total += (int)n - 1;
	for (size_t i = 0; i < n; i++)
		schedule_ti(et->inst[i]);
out:
	if (rendered_items) {
		for (size_t i = 0; i < n; i++)
			free(rendered_items[i]);
		free(rendered_items);
	}
}

/* Dispatch: scheduled -> queued ----------------------------------------------------------------- */

enum start_check {
	START_OK,
	START_EXECUTOR_FULL,  /* the executor has no free slot: nothing else of it can start either */
	START_HELD,           /* a pool or the DAG's max_active_tasks holds this one back */
	START_FATAL,          /* the task can never start (*fatal_msg says why) */
};

/* Whether ti may take its slots now. A task whose pool or executor does not exist can never
 * start (START_FATAL with *fatal_msg set). */
static enum start_check can_start(struct engine *e, struct eti *ti, char **fatal_msg)
{
	struct task *t = ti_task(ti);
	char *err = NULL;
	struct exec_entry *x = get_executor(e, t->executor, &err);
	if (!x) {
		*fatal_msg = xasprintf("executor '%s' is not available: %s", t->executor, err);
		free(err);
		return START_FATAL;
	}
	if (x->ex->ops->free_slots(x->ex) - x->pending <= 0)
		return START_EXECUTOR_FULL;
	struct pool_entry *p = get_pool(e, t->pool);
	if (!p) {
		*fatal_msg = xasprintf("pool '%s' does not exist (create it with `sluice pools set %s SLOTS`)",
				       t->pool, t->pool);
		return START_FATAL;
	}
	if (p->slots >= 0 && p->used + t->pool_slots > p->slots)
		return START_HELD;
	struct dag_entry *de = get_dag_entry(e, ti->row.dag_id);
	if (de->active >= ti->run->dag->max_active_tasks)
		return START_HELD;
	return START_OK;
}

static void take_slots(struct engine *e, struct eti *ti, int sign)
{
	struct task *t = ti_task(ti);
	char *err = NULL;
	struct exec_entry *x = get_executor(e, t->executor, &err);
	free(err);
	struct pool_entry *p = get_pool(e, t->pool);
	if (p)
		p->used += sign * t->pool_slots;
	get_dag_entry(e, ti->row.dag_id)->active += sign;
	if (x && sign > 0)
		x->pending++;
}

static void dispatch(struct engine *e)
{
	struct ptrvec held = {0};
	usec_t now = now_usec();
	while (e->heap.n > 0) {
		struct eti *ti = heap_pop(e);
		char *fatal_msg = NULL;
		enum start_check chk = can_start(e, ti, &fatal_msg);
		if (chk == START_FATAL) {
			ti->row.try_number++;
			append_log(ti, "%s", fatal_msg);
			free(ti->message);
			ti->message = fatal_msg;
			finish_ti(ti, TI_FAILED);
			continue;
		}
		if (chk != START_OK) {
			pv_push(&held, ti);
			/* With a single executor and no slot left, nothing further can start: stop here
			 * instead of popping every ready instance on every loop iteration. */
			if (chk == START_EXECUTOR_FULL && e->nexecs == 1)
				break;
			continue;
		}
		take_slots(e, ti, +1);
		bool repoke = ti_task(ti)->kind == TASK_SENSOR && ti->row.first_poke_at != USEC_NONE;
		if (!repoke) {
			ti->row.try_number++;
			ti->row.start_date = USEC_NONE;
			ti->row.end_date = USEC_NONE;
			ti->row.duration = -1;
			ti->row.exit_code = TI_NO_EXIT;
		}
		ti->row.queued_when = now;
		ti->row.next_retry_at = USEC_NONE;
		set_state(ti, TI_QUEUED);
		pv_push(&e->to_spawn, ti);
	}
	for (size_t i = 0; i < held.n; i++)
		heap_push(e, held.v[i]);
	free(held.v);
	process_evals(e);
}

/* Starting tries -------------------------------------------------------------------------------- */

static void release_slots(struct engine *e, struct eti *ti)
{
	struct task *t = ti_task(ti);
	struct pool_entry *p = get_pool(e, t->pool);
	if (p)
		p->used -= t->pool_slots;
	get_dag_entry(e, ti->row.dag_id)->active--;
}

static char *dup_opt(const char *s) { return s ? xstrdup(s) : NULL; }

/* Queues the history row of ti's current try; written with the next commit. */
static void record_try(struct engine *e, struct eti *ti, const char *state)
{
	if (!ti->row.pk)
		return;
	struct try_row *tr = xcalloc(1, sizeof(*tr));
	*tr = (struct try_row){
		.ti_pk = ti->row.pk,
		.try_number = ti->row.try_number,
		.state = xstrdup(state),
		.executor = dup_opt(ti->row.executor),
		.hostname = dup_opt(ti->row.hostname),
		.external_id = dup_opt(ti->row.external_id),
		.log_path = try_file(ti, "log"),
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
static void fail_try(struct eti *ti, bool retryable)
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
		finish_ti(ti, TI_FAILED);
		return;
	}
	usec_t delay = task_retry_delay(t, ti->row.try_number, (double)(random() % 1000) / 1000.0);
	ti->row.next_retry_at = now_usec() + delay;
	char d[32];
	format_duration(delay, d, sizeof(d));
	append_log(ti, "try %d failed; retrying in %s (try %d of %d)", ti->row.try_number, d,
		   ti->row.try_number + 1, ti->row.max_tries + 1);
	set_state(ti, TI_UP_FOR_RETRY);
	ti->timer = evloop_timer_in(e->loop, delay, retry_timer, ti);
	fire_callback(ti->run, ti, "on_retry", &ti->run->dag->on_retry, ti->message);
}

/* A retry delay or a sensor's poke interval has passed: the instance is ready again. */
static void retry_timer(struct evloop *loop, void *arg)
{
	struct eti *ti = arg;
	ti->timer = NULL;
	if (ti->state == TI_UP_FOR_RETRY || ti->state == TI_UP_FOR_RESCHEDULE)
		schedule_ti(ti);
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
	char *path = try_file(ti, "out");
	char *data = NULL;
	size_t len;
	int rc = read_file(path, OUTPUT_FILE_MAX, &data, &len);
	if (rc == -EFBIG)
		append_log(ti, "$SLUICE_OUTPUT is larger than 1 MiB; outputs ignored");
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
			append_log(ti, "ignoring malformed output line (expected key=value): %s", line);
			continue;
		}
		add_output(ti, line, eq + 1);
	}
	ti->outputs_dirty = true;
	mark_dirty(ti);
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
		append_log(ti, "sensor timed out after %s", d);
		free(ti->message);
		ti->message = xasprintf("sensor timeout of %s exceeded", d);
		ti->row.end_date = now;
		record_try(e, ti, "failed");
		finish_ti(ti, TI_FAILED); /* a sensor timeout is not retried */
		return;
	}
	ti->row.next_retry_at = now + t->poke_interval;
	set_state(ti, TI_UP_FOR_RESCHEDULE);
	ti->timer = evloop_timer_in(e->loop, t->poke_interval, retry_timer, ti);
}

/* A path sensor pokes in the daemon itself: no process, no slot held between pokes. */
static void poke_path(struct eti *ti)
{
	struct engine *e = ti->run->e;
	char *path = NULL, *err = NULL;
	release_slots(e, ti);
	if (tmpl_render(ti_task(ti)->sensor_path, ti_lookup, ti, &path, &err) < 0) {
		append_log(ti, "%s", err);
		free(ti->message);
		ti->message = err;
		record_try(e, ti, "failed");
		finish_ti(ti, TI_FAILED);
		return;
	}
	struct stat st;
	bool exists = stat(path, &st) == 0;
	append_log(ti, "poking for %s: %s", path, exists ? "found" : "not there yet");
	free(path);
	if (exists) {
		ti->row.end_date = now_usec();
		ti->row.duration = (double)(ti->row.end_date - ti->row.start_date) / 1e6;
		record_try(e, ti, "success");
		finish_ti(ti, TI_SUCCESS);
	} else {
		sensor_not_yet(ti);
	}
}

/* Builds the environment of a try: the daemon's, then SLUICE_*, then the task's env. */
static char **build_env(struct engine *e, struct eti *ti, const char *out_path)
{
	struct task *t = ti_task(ti);
	struct erun *r = ti->run;
	size_t cap = e->n_base_env + t->n_env + 16, n = 0;
	char **env = xcalloc(cap, sizeof(char *));
	char iso[ISO_BUFSZ];
	for (size_t i = 0; i < e->n_base_env; i++)
		env[n++] = xstrdup(e->base_env[i]);
	format_iso8601(r->row.logical_date, iso, sizeof(iso));
	env[n++] = xasprintf("SLUICE_DAG_ID=%s", r->row.dag_id);
	env[n++] = xasprintf("SLUICE_RUN_ID=%s", r->row.run_id);
	env[n++] = xasprintf("SLUICE_TASK_ID=%s", ti->row.task_id);
	env[n++] = xasprintf("SLUICE_TRY_NUMBER=%d", ti->row.try_number);
	env[n++] = xasprintf("SLUICE_MAP_INDEX=%d", ti->row.map_index);
	env[n++] = xasprintf("SLUICE_LOGICAL_DATE=%s", iso);
	env[n++] = xasprintf("SLUICE_DS=%.10s", iso);
	env[n++] = xasprintf("SLUICE_OUTPUT=%s", out_path);
	if (ti->item)
		env[n++] = xasprintf("SLUICE_ITEM=%s", ti->item);
	for (size_t i = 0; i < t->n_env; i++) {
		/* A task's env overrides the inherited variable of the same name. */
		size_t kl = strlen(t->env[i].key);
		for (size_t j = 0; j < n; j++) {
			if (!strncmp(env[j], t->env[i].key, kl) && env[j][kl] == '=') {
				free(env[j]);
				env[j] = env[--n];
				break;
			}
		}
		env[n++] = xasprintf("%s=%s", t->env[i].key, t->env[i].value);
	}
	env[n] = NULL;
	return env;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Renders the command of ti; returns a NULL-terminated argv or NULL with *err set. */
static char **render_argv(struct eti *ti, char **err)
{
	struct task *t = ti_task(ti);
	if (t->cmd_shell) {
		char *cmd = NULL;
		if (tmpl_render(t->cmd_shell, ti_lookup, ti, &cmd, err) < 0)
			return NULL;
		char **argv = xcalloc(4, sizeof(char *));
		argv[0] = xstrdup("/bin/sh");
		argv[1] = xstrdup("-c");
		argv[2] = cmd;
		return argv;
	}
	size_t n = 0;
	while (t->cmd_argv[n])
		n++;
	char **argv = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		if (tmpl_render(t->cmd_argv[i], ti_lookup, ti, &argv[i], err) < 0) {
			free_strv(argv);
			return NULL;
		}
	}
	return argv;
}

static void start_try(struct engine *e, struct eti *ti)
{
	struct task *t = ti_task(ti);
	char *err = NULL, *cwd = NULL;
	char **argv = NULL, **env = NULL;
	char *log = try_file(ti, "log"), *status = try_file(ti, "status");
	char *pidf = try_file(ti, "pid"), *outp = try_file(ti, "out");
	struct exec_entry *x = get_executor(e, t->executor, &err);

	if (x)
		x->pending--;
	if (ti->row.start_date == USEC_NONE)
		ti->row.start_date = now_usec();
	if (t->kind == TASK_SENSOR && ti->row.first_poke_at == USEC_NONE)
		ti->row.first_poke_at = ti->row.start_date;
	free(ti->row.hostname);
	ti->row.hostname = xstrdup(e->hostname);
	if (t->kind == TASK_SENSOR && !t->cmd_shell && !t->cmd_argv) {
		poke_path(ti);
		goto out;
	}
	char *dir = xstrdup(log);
	*strrchr(dir, '/') = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		mkdir_p(dir, 0755);
	free(dir);
	if (!x)
		goto fail_setup;
	if (!(argv = render_argv(ti, &err)))
		goto fail_render;
	if (t->cwd && tmpl_render(t->cwd, ti_lookup, ti, &cwd, &err) < 0)
		goto fail_render;
	unlink(status); /* a cleared task may run the same try number again */
	unlink(pidf);
	unlink(outp);
	env = build_env(e, ti, outp);
	struct exec_spec spec = {
		.argv = (const char *const *)argv,
		.envp = (const char *const *)env,
		.cwd = cwd,
		.log_path = log,
		.status_path = status,
		.pid_path = pidf,
		.timeout = t->execution_timeout,
		.kill_grace = e->kill_grace,
		.dag_id = ti->row.dag_id,
		.run_id = ti->row.run_id,
		.task_id = ti->row.task_id,
		.map_index = ti->row.map_index,
		.try_number = ti->row.try_number,
	};
	char *ext = NULL;
	int pid = 0;
	if (x->ex->ops->start(x->ex, (uint64_t)(uintptr_t)ti, &spec, &ext, &pid, &err) < 0)
		goto fail_setup;
	ti->ex = x->ex;
	ti->spawned = true;
	ti->row.pid = pid;
	free(ti->row.external_id);
	ti->row.external_id = ext;
	set_state(ti, TI_RUNNING);
	goto out;

fail_render:
	/* A template error is deterministic: retrying cannot fix it, so the task fails now. */
	append_log(ti, "%s", err);
	release_slots(e, ti);
	free(ti->message);
	ti->message = err;
	err = NULL;
	fail_try(ti, false);
	goto out;
fail_setup:
	append_log(ti, "cannot start the try: %s", err ? err : "unknown error");
	release_slots(e, ti);
	free(ti->message);
	ti->message = err;
	err = NULL;
	fail_try(ti, true);
out:
	free_strv(argv);
	free_strv(env);
	free(cwd);
	free(err);
	free(log);
	free(status);
	free(pidf);
	free(outp);
}

static void on_try_end(void *arg, uint64_t token, const struct exec_result *res)
{
	struct engine *e = arg;
	struct eti *ti = (struct eti *)(uintptr_t)token;
	struct task *t = ti_task(ti);
	char d[32];

	ti->spawned = false;
	ti->ex = NULL;
	release_slots(e, ti);
	ti->row.end_date = res->end != USEC_NONE ? res->end : now_usec();
	if (res->start != USEC_NONE)
		ti->row.start_date = ti->row.start_date == USEC_NONE ? res->start : ti->row.start_date;
	if (ti->row.start_date != USEC_NONE)
		ti->row.duration = (double)(ti->row.end_date - ti->row.start_date) / 1e6;
	free(ti->message);
	ti->message = NULL;
	switch (res->kind) {
	case EXEC_END_EXITED:
		ti->row.exit_code = res->code;
		if (res->code == 0) {
			if (t->kind == TASK_SENSOR && ti->row.first_poke_at != USEC_NONE)
				append_log(ti, "sensor condition met");
			read_outputs(ti);
			record_try(e, ti, "success");
			finish_ti(ti, TI_SUCCESS);
		} else if (res->code == TASK_EXIT_SKIP) {
			record_try(e, ti, "skipped");
			finish_ti(ti, TI_SKIPPED);
		} else if (t->kind == TASK_SENSOR && !ti->cancel_requested) {
			sensor_not_yet(ti);
		} else {
			ti->message = xasprintf("exited with code %d", res->code);
			bool retryable = task_retryable_exit(t, res->code);
			if (!retryable)
				append_log(ti, "exit code %d is in no_retry_exit_codes: not retrying", res->code);
			fail_try(ti, retryable);
		}
		break;
	case EXEC_END_SIGNALED:
		ti->message = xasprintf("killed by signal %d", res->code);
		fail_try(ti, true);
		break;
	case EXEC_END_TIMEOUT:
		format_duration(t->execution_timeout, d, sizeof(d));
		ti->message = xasprintf("execution_timeout of %s exceeded", d);
		fail_try(ti, true);
		break;
	case EXEC_END_LOST:
		ti->message = xasprintf("lost: %s", res->message ? res->message : "the executor lost the try");
		append_log(ti, "%s", ti->message);
		fail_try(ti, true);
		break;
	}
	process_evals(e);
}

/* Committing and the loop's idle hook ------------------------------------------------------------- */

static void write_outputs(struct engine *e, struct eti *ti)
{
	store_output_clear(e->st, ti->row.pk);
	usec_t now = now_usec();
	for (size_t i = 0; i < ti->noutputs; i++)
		store_output_put(e->st, ti->row.pk, ti->outputs[i].key, ti->outputs[i].value, now);
	ti->outputs_dirty = false;
}

/* Writes every dirty row in one transaction. */
static void commit_dirty(struct engine *e)
{
	if (e->dirty.n == 0 && e->dirty_runs.n == 0 && e->tries.n == 0)
		return;
	if (store_begin(e->st) < 0) {
		log_warnx("cannot begin a transaction; state changes stay pending");
		return;
	}
	for (size_t i = 0; i < e->dirty.n; i++) {
		struct eti *ti = e->dirty.v[i];
		ti->dirty = false;
		if (ti->needs_insert) {
			if (store_ti_insert(e->st, sync_row(ti)) == 0)
				ti->needs_insert = false;
		} else {
			store_ti_update(e->st, sync_row(ti));
		}
		if (ti->outputs_dirty)
			write_outputs(e, ti);
	}
	e->dirty.n = 0;
	for (size_t i = 0; i < e->dirty_runs.n; i++) {
		struct erun *r = e->dirty_runs.v[i];
		r->dirty = false;
		store_run_update(e->st, &r->row);
	}
	e->dirty_runs.n = 0;
	for (size_t i = 0; i < e->tries.n; i++) {
		struct try_row *tr = e->tries.v[i];
		if (store_try_put(e->st, tr) < 0)
			log_warnx("cannot record try %d of task instance %lld", tr->try_number, (long long)tr->ti_pk);
		try_row_free(tr);
		free(tr);
	}
	e->tries.n = 0;
	if (store_commit(e->st) < 0)
		log_warnx("commit failed; state changes were lost from the database");
}

/* Unlinks and frees finished runs after their final state is committed. */
static void reap_runs(struct engine *e)
{
	struct erun **pp = &e->runs;
	while (*pp) {
		struct erun *r = *pp;
		if (!r->finished || r->dirty) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (e->done_cb)
			e->done_cb(e->done_arg, r);
		free_run(r);
	}
}

static void on_idle(struct evloop *loop, void *arg)
{
	struct engine *e = arg;
	dispatch(e);
	commit_dirty(e); /* queued is durable before anything starts */
	for (size_t i = 0; i < e->to_spawn.n; i++)
		start_try(e, e->to_spawn.v[i]);
	e->to_spawn.n = 0;
	process_evals(e);
	commit_dirty(e); /* running + pids (and instant results such as path pokes) */
	reap_runs(e);
	(void)loop;
}

/* Public API ------------------------------------------------------------------------------------ */

struct engine *engine_new(struct store *st, struct evloop *loop, const struct engine_opts *o, char **err)
{
	extern char **environ;
	struct engine *e = xcalloc(1, sizeof(*e));
	e->st = st;
	e->loop = loop;
	e->home = xstrdup(o->home);
	e->shim_path = xstrdup(o->shim_path);
	e->parallelism = o->parallelism > 0 ? o->parallelism : 32;
	e->kill_grace = o->kill_grace > 0 ? o->kill_grace : 5 * USEC_PER_SEC;
	e->ignore_unknown_pools = o->ignore_unknown_pools;
	e->notify = o->notify;
	if (gethostname(e->hostname, sizeof(e->hostname) - 1) < 0)
		snprintf(e->hostname, sizeof(e->hostname), "localhost");
	size_t n = 0;
	while (environ[n])
		n++;
	e->base_env = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "SLUICE_", 7))
			e->base_env[e->n_base_env++] = xstrdup(environ[i]);
	srandom((unsigned)(now_usec() ^ getpid()));
	evloop_set_idle(loop, on_idle, e);
	(void)err;
	return e;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	while (e->runs) {
		struct erun *r = e->runs;
		e->runs = r->next;
		free_run(r);
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
	free(e->home);
	free(e->shim_path);
	free(e);
}

void engine_on_run_done(struct engine *e, engine_run_done_cb cb, void *arg)
{
	e->done_cb = cb;
	e->done_arg = arg;
}

void engine_cancel_run(struct engine *e, struct erun *r, const char *why)
{
	if (r->finished || r->cancelled)
		return;
	r->cancelled = true;
	free(r->row.note);
	r->row.note = xstrdup(why);
	mark_run_dirty(r);
	for (size_t i = 0; i < r->dag->ntasks; i++) {
		struct etask *et = &r->tasks[i];
		et->decided = true;
		for (size_t k = 0; k < et->ninst; k++) {
			struct eti *ti = et->inst[k];
			if (ti_state_finished(ti->state))
				continue;
			if (ti->spawned) {
				ti->cancel_requested = true;
				append_log(ti, "cancelling: %s", why);
				ti->ex->ops->cancel(ti->ex, (uint64_t)(uintptr_t)ti);
			} else if (ti->state == TI_QUEUED) {
				continue; /* in to_spawn: dropped below */
			} else {
				finish_ti(ti, TI_SKIPPED);
			}
		}
	}
	/* Queued tries of this run that were about to start are dropped here. */
	for (size_t i = 0; i < e->to_spawn.n; i++) {
		struct eti *ti = e->to_spawn.v[i];
		if (ti->run != r)
			continue;
		struct task *t = ti_task(ti);
		char *err = NULL;
		struct exec_entry *x = get_executor(e, t->executor, &err);
		free(err);
		if (x)
			x->pending--;
		release_slots(e, ti);
		e->to_spawn.v[i--] = e->to_spawn.v[--e->to_spawn.n];
		finish_ti(ti, TI_SKIPPED);
	}
	log_info("run %s of %s cancelled: %s", r->row.run_id, r->row.dag_id, why);
	process_evals(e);
}

const struct run_row *erun_row(const struct erun *r) { return &r->row; }
const struct dag *erun_dag(const struct erun *r) { return r->dag; }

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
				append_log(ti, "the daemon is stopping with --kill-tasks-on-exit: stopping this try");
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
		heap_remove(ti->run->e, ti);
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
	set_state(ti, TI_NONE);
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
		set_run_state(r, RUN_RUNNING);
	}
	count_upstream(r);
	for (size_t i = 0; i < r->dag->ntasks; i++)
		if (!r->tasks[i].decided)
			enqueue_eval(e, r, (int)i);
	process_evals(e);
	evloop_wake(e->loop);
	return count;
}
