/* The run engine's internals, shared by its parts (engine*.c); nothing outside the engine
 * includes this. The public interface is engine.h.
 *
 * Invariants: everything here is touched on the event loop's thread only. A task instance's
 * state lives in eti.state and changes only through eng_set_state(), a run's through
 * eng_set_run_state() (both check the tables of states.c). Rows marked dirty are written in
 * one transaction per loop iteration (engine_commit.c), before the tries queued in that
 * iteration are spawned. */
#ifndef SLUICE_ENGINE_INT_H
#define SLUICE_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "executors/executor.h"
#include "orchestrator/engine.h"
#include "orchestrator/notify.h"
#include "orchestrator/states.h"

#define OUTPUT_FILE_MAX (1u << 20)

/* One task instance of a run. Owned by its run; `row` mirrors the database row. */
struct eti {
	struct erun *run;
	int task;                  /* index into run->dag->tasks */
	struct ti_row row;         /* the database row; row.state is NULL in memory and is written
	                              from `state` at each commit (eng_sync_row): the state is held once */
	enum ti_state state;       /* changed only by eng_set_state(), which checks the state table */
	bool needs_insert;         /* created in memory (map expansion), no row yet */
	bool dirty;                /* row must be written at the next commit */
	bool outputs_dirty;
	bool cancel_requested;     /* stopped by a user: the try ends as cancel_as, never retried */
	enum ti_state cancel_as;   /* TI_FAILED (kill, cancel) or the state a user marked it */
	bool marking;              /* the next state change is a user's mark (ti_mark_allowed) */
	bool spawned;              /* an executor holds this try */
	struct ev_timer *timer;    /* retry or next poke */
	char *item;                /* mapped item */
	struct kv *outputs;
	size_t noutputs;
	struct executor *ex;
	int heap_idx;              /* position in the ready heap, -1 when not in it */
	uint64_t seq;              /* FIFO order among equal priorities */
	char *message;             /* why the current try ended, for the try history */
	char **secrets;            /* secret values the try's templates rendered, masked in its log */
	size_t nsecrets;
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
	struct run_row row;        /* row.state is the name of `state`, written by eng_set_run_state() only */
	enum run_state state;
	cJSON *conf;
	struct etask *tasks;
	size_t unfinished;         /* instances not in a finished state */
	bool dirty, finished, cancelled, notify;
	bool deleted;              /* its rows are gone (deleted by a user): nothing is written any more */
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

static inline void pv_push(struct ptrvec *p, void *x)
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
	char *kernel_path;         /* sluice-kernel: {{ kernel }} and $SLUICE_KERNEL of every try */
	int parallelism;
	usec_t kill_grace;
	long long max_log_size;
	bool sync_status;
	bool ignore_unknown_pools;
	struct notify *notify;
	char hostname[256];
	char **base_env;           /* the daemon's environment minus SLUICE_* */
	size_t n_base_env;
	char **settings;           /* "section.key=value" of the configuration, for the executors */
	size_t nsettings;

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
	usec_t commit_failing_since; /* USEC_NONE while commits go through */
	struct ev_timer *commit_timer; /* retries a failed commit */
	struct ev_timer *lazy_timer;   /* commits what the spawns changed (running, pids) soon */
	engine_run_done_cb done_cb;
	void *done_arg;
};

static inline struct task *ti_task(const struct eti *ti) { return &ti->run->dag->tasks[ti->task]; }

/* engine.c: small helpers, the ready heap, limits (executors, pools, DAGs), run objects, the public API */
void eng_mark_dirty(struct eti *ti);
void eng_mark_run_dirty(struct erun *r);
void eng_set_state(struct eti *ti, enum ti_state st);
void eng_set_run_state(struct erun *r, enum run_state st);
struct ti_row *eng_sync_row(struct eti *ti);
char *eng_try_file(const struct eti *ti, const char *ext);
void eng_append_log(const struct eti *ti, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void eng_heap_push(struct engine *e, struct eti *ti);
void eng_heap_remove(struct engine *e, struct eti *ti);
struct eti *eng_heap_pop(struct engine *e);
struct exec_entry *eng_get_executor(struct engine *e, const char *name, char **err);
struct pool_entry *eng_get_pool(struct engine *e, const char *name);
struct dag_entry *eng_get_dag_entry(struct engine *e, const char *dag_id);
struct eti *eng_new_eti(struct erun *r, int task, int map_index);
void eng_free_eti(struct eti *ti);
void eng_free_run(struct erun *r);
void eng_on_run_timeout(struct evloop *loop, void *arg);
/* engine_recover.c: loading a run's instances and re-attaching to its tries (recovery) */
void eng_count_upstream(struct erun *r);
/* engine_ready.c: readiness: trigger rules, map expansion, dispatch (scheduled -> queued) */
void eng_enqueue_eval(struct engine *e, struct erun *r, int task);
void eng_process_evals(struct engine *e);
void eng_finish_ti(struct eti *ti, enum ti_state st);
void eng_schedule_ti(struct eti *ti);
char **eng_split_items(const char *s, size_t *n);
void eng_take_slots(struct engine *e, struct eti *ti, int sign);
void eng_dispatch(struct engine *e);
/* engine_end.c: the end of a try: outputs, retries and backoff, sensors, callbacks, a run's end */
void eng_finish_run(struct erun *r);
void eng_release_slots(struct engine *e, struct eti *ti);
void eng_fail_try(struct eti *ti, bool retryable);
void eng_retry_timer(struct evloop *loop, void *arg);
void eng_poke_path(struct eti *ti);
void eng_on_try_end(void *arg, uint64_t token, const struct exec_result *res);
/* engine_context.c: the template context of a try ({{ ds }}, outputs.X.Y, params, conf) */
void eng_json_scalar(const cJSON *v, struct strbuf *out);
void eng_note_secret(struct eti *ti, const char *value);
void eng_forget_secrets(struct eti *ti);
int eng_ti_lookup(void *ctx, const char *name, struct strbuf *out, char **err);
/* engine_start.c: starting a try: environment, argv, the executor */
void eng_start_try(struct engine *e, struct eti *ti);
/* engine_commit.c: commit batching: one transaction per loop iteration, then spawns */
void eng_on_idle(struct evloop *loop, void *arg);

#endif
