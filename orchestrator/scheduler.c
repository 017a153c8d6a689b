#include "orchestrator/scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orchestrator/backfill.h"
#include "orchestrator/control.h"
#include "orchestrator/cron.h"
#include "orchestrator/dagbag.h"
#include "orchestrator/engine.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/sdnotify.h"
#include "base/strindex.h"
#include "orchestrator/notify.h"
#include "orchestrator/ops.h"
#include "orchestrator/runner.h"
#include "orchestrator/runs.h"
#include "orchestrator/schedule.h"
#include "orchestrator/store.h"
#include "orchestrator/tz.h"

#define TICK (500 * 1000)             /* poll the folder and the database twice a second */
#define RESCAN_EVERY (1 * USEC_PER_SEC) /* the DAG folder: changes show within ~1 s */

/* What the daemon knows about one DAG id. */
struct dag_state {
	char *dag_id;
	struct dag *dag;          /* latest good version (reference) */
	bool paused;
	bool seen;                /* bookkeeping of a refresh */
	struct cron *cron;        /* parsed schedule; NULL when manual-only */
	const struct tz *zone;
	bool have_marker;
	usec_t marker;            /* start of the next interval to create */
	char *marker_schedule;    /* the schedule the marker was computed for */
	bool next_written;        /* the store's next_dagrun is next_start, next_end */
	usec_t next_start, next_end;
};

/* A parsed older version of a DAG that a run still uses. */
struct version_entry {
	char *dag_id, *version;
	struct dag *dag;
};

/* The daemon's progress through one backfill's dates. */
struct bf_state {
	int64_t id;
	usec_t *dates;
	size_t ndates, cursor;
	bool seen;
};

struct sched {
	const struct sched_opts *o;
	struct runner run;        /* the writer (run.st), the loop, the engine, the callback worker */
	struct control *control;  /* the CLI's way in (control.c); NULL when it could not listen */
	struct dagbag bag;
	struct dag_state *dags;
	size_t ndags;
	struct strindex dag_ix; /* dag_id -> index in dags (find_state): every tick looks up each DAG */
	struct run_row *pending;  /* queued runs waiting to start, by id */
	size_t npending;
	struct version_entry *versions;
	size_t nversions;
	struct bf_state *bfs;
	size_t nbfs;
	struct ev_timer *tick;
	usec_t last_rescan;
	usec_t watchdog, last_watchdog; /* half of systemd's WatchdogSec, and the last WATCHDOG=1 */
	bool stopping;
	usec_t stop_deadline;
	int lockfd;
};

static void arm_tick(struct sched *s, usec_t delay);

static _Atomic usec_t heartbeat = USEC_NONE;

usec_t sched_heartbeat(void) { return heartbeat; }

static _Atomic usec_t stat_loop, stat_commit, stat_commit_failing = USEC_NONE;
static _Atomic int stat_slots, stat_dag_files;
static _Atomic usec_t stat_scan;
static _Atomic long long stat_scans, stat_scan_usec; /* rescans, and their summed duration */

void sched_get_stats(struct sched_stats *out)
{
	out->loop = stat_loop;
	out->commit = stat_commit;
	out->slots_in_use = stat_slots;
	out->commit_failing_since = stat_commit_failing;
	out->scan = stat_scan;
	out->scans = stat_scans;
	out->scan_total = (double)stat_scan_usec / 1e6;
	out->dag_files = stat_dag_files;
}

/* Writes from other threads: a queue drained on the loop thread. `current` is the running
 * daemon (one per process); all of this is guarded by wq_lock. */
struct write_call {
	int (*fn)(struct store *st, void *ctx);
	void *ctx;
	int rc;
	bool started, done;
	struct write_call *next;
};
static _Atomic usec_t write_wait = 30 * USEC_PER_SEC;

void sched_set_write_wait(usec_t wait) { write_wait = wait > 0 ? wait : 30 * USEC_PER_SEC; }
static pthread_mutex_t wq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wq_done = PTHREAD_COND_INITIALIZER;
static struct write_call *wq_head;
static struct sched *current;

int sched_write(int (*fn)(struct store *writer, void *ctx), void *ctx)
{
	struct write_call c = {.fn = fn, .ctx = ctx};
	pthread_mutex_lock(&wq_lock);
	if (!current) {
		pthread_mutex_unlock(&wq_lock);
		return -ESRCH;
	}
	struct write_call **tail = &wq_head;
	while (*tail)
		tail = &(*tail)->next;
	*tail = &c;
	evloop_wake(current->run.loop);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	usec_t wait = write_wait;
	until.tv_sec += (time_t)(wait / USEC_PER_SEC);
	until.tv_nsec += (long)(wait % USEC_PER_SEC) * 1000;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!c.done) {
		if (pthread_cond_timedwait(&wq_done, &wq_lock, &until) == ETIMEDOUT && !c.started) {
			/* The loop has not come to it (a stuck scheduler): it is taken back, never run. */
			for (struct write_call **p = &wq_head; *p; p = &(*p)->next) {
				if (*p == &c) {
					*p = c.next;
					break;
				}
			}
			pthread_mutex_unlock(&wq_lock);
			return -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&wq_lock);
	return c.rc;
}

/* On the loop thread: runs every queued write, then schedules at once. */
static void drain_writes(struct evloop *loop, void *arg)
{
	struct sched *s = arg;
	bool any = false;
	pthread_mutex_lock(&wq_lock);
	while (wq_head) {
		struct write_call *c = wq_head;
		wq_head = c->next;
		c->started = true; /* from here on its caller waits for it, however long */
		pthread_mutex_unlock(&wq_lock);
		/* A change waits for the database's lock no longer than its caller waits for the
		 * loop: then it fails (-EBUSY, a 503) instead of holding the caller for a minute. */
		store_set_busy_limit(s->run.st, write_wait);
		int rc = c->fn(s->run.st, c->ctx);
		store_set_busy_limit(s->run.st, 0);
		pthread_mutex_lock(&wq_lock);
		c->rc = rc;
		c->done = true;
		any = true;
	}
	pthread_cond_broadcast(&wq_done);
	pthread_mutex_unlock(&wq_lock);
	if (any && !s->stopping)
		arm_tick(s, 0);
	(void)loop;
}

struct engine *sched_engine(void)
{
	return current ? current->run.eng : NULL;
}

/* At shutdown: no more writes; waiting callers get -ESHUTDOWN. */
static void close_writes(void)
{
	pthread_mutex_lock(&wq_lock);
	current = NULL;
	for (struct write_call *c = wq_head; c; c = c->next) {
		c->rc = -ESHUTDOWN;
		c->done = true;
	}
	wq_head = NULL;
	pthread_cond_broadcast(&wq_done);
	pthread_mutex_unlock(&wq_lock);
}

/* The lock ------------------------------------------------------------------------------------- */

static char *lock_path(const char *home) { return xasprintf("%s/serve.lock", home); }

bool sched_daemon_running(const char *home, int *pid)
{
	char *path = lock_path(home);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool running = false;
	free(path);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		running = true;
		if (pid) {
			char buf[32] = {0};
			if (pread(fd, buf, sizeof(buf) - 1, 0) > 0)
				*pid = atoi(buf);
		}
	}
	close(fd);
	return running;
}

static int take_lock(struct sched *s)
{
	char *path = lock_path(s->o->home);
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0) {
		log_warn("cannot open %s", path);
		free(path);
		return -1;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		char buf[32] = {0};
		if (pread(s->lockfd, buf, sizeof(buf) - 1, 0) < 0)
			buf[0] = '\0';
		log_warnx("another sluice serve (pid %d) is running on %s", atoi(buf), s->o->home);
		free(path);
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(s->lockfd, 0) < 0 || pwrite(s->lockfd, buf, (size_t)n, 0) < 0)
		log_warn("cannot write %s", path);
	free(path);
	return 0;
}

/* DAG versions ------------------------------------------------------------------------------- */

/* The DAG a run uses: its own version, else the current one. Borrowed reference. */
static struct dag *dag_for_run(struct sched *s, const struct run_row *r)
{
	struct dag *cur = dagbag_find(&s->bag, r->dag_id);
	if (!r->dag_version || (cur && !strcmp(cur->version, r->dag_version)))
		return cur;
	for (size_t i = 0; i < s->nversions; i++)
		if (!strcmp(s->versions[i].dag_id, r->dag_id) && !strcmp(s->versions[i].version, r->dag_version))
			return s->versions[i].dag;
	char *lib = xasprintf("%s/lib", s->bag.dir);
	struct dag *found = dagbag_load_stored(s->run.st, r->dag_id, r->dag_version, lib, &s->bag.limits);
	free(lib);
	if (!found)
		return cur; /* version unknown: the current one is the best we have */
	s->versions = xrealloc(s->versions, (s->nversions + 1) * sizeof(*s->versions));
	s->versions[s->nversions++] = (struct version_entry){xstrdup(r->dag_id), xstrdup(r->dag_version), found};
	return found;
}

/* DAG folder -> database and dag states ------------------------------------------------------- */

static struct dag_state *find_state(struct sched *s, const char *dag_id)
{
	size_t i;
	return strindex_get(&s->dag_ix, dag_id, &i) ? &s->dags[i] : NULL;
}

/* After states were removed (their ids freed) or moved. */
static void reindex_states(struct sched *s)
{
	strindex_clear(&s->dag_ix);
	for (size_t i = 0; i < s->ndags; i++)
		strindex_put(&s->dag_ix, s->dags[i].dag_id, i);
}

static void state_free(struct dag_state *ds)
{
	dag_unref(ds->dag);
	cron_free(ds->cron);
	free(ds->dag_id);
	free(ds->marker_schedule);
}

static void set_state_dag(struct dag_state *ds, struct dag *d)
{
	if (ds->dag == d)
		return;
	dag_unref(ds->dag);
	ds->dag = dag_ref(d);
	cron_free(ds->cron);
	ds->cron = NULL;
	ds->zone = NULL;
	if (d->schedule) {
		char err[256], *terr = NULL;
		ds->cron = cron_parse(d->schedule, err, sizeof(err));
		ds->zone = tz_get(d->timezone, &terr);
		free(terr);
		if (ds->cron && d->start_date != USEC_NONE)
			cron_set_start(ds->cron, d->start_date / USEC_PER_SEC);
	}
	/* A changed schedule or start date recomputes where scheduling continues. */
	if (!ds->marker_schedule || !d->schedule || strcmp(ds->marker_schedule, d->schedule))
		ds->have_marker = false;
}

static void paused_cb(void *arg, const char *dag_id, bool paused, bool active)
{
	struct dag_state *ds = find_state(arg, dag_id);
	if (ds)
		ds->paused = paused;
	(void)active;
}

/* Writes what changed in the folder to the database and rebuilds the dag states. */
static void sync_dags(struct sched *s)
{
	usec_t now = now_usec();
	bool changed = s->bag.any_removed;
	for (size_t i = 0; i < s->bag.nfiles; i++)
		changed |= s->bag.files[i].changed;
	if (!changed && s->ndags)
		return;
	if (store_begin(s->run.st) < 0) {
		/* Nothing is marked as synced: the next rescan tries again. */
		log_warnx("cannot record the DAG folder's changes now; trying again at the next rescan");
		return;
	}
	const char **ids = NULL;
	size_t nids = 0;
	for (size_t i = 0; i < s->ndags; i++)
		s->dags[i].seen = false;
	for (size_t i = 0; i < s->bag.nfiles; i++) {
		struct dagbag_file *f = &s->bag.files[i];
		if (f->changed) {
			if (f->error) {
				store_import_error_set(s->run.st, f->path, f->error_line, f->error, now);
				log_warnx("import error: %s", f->error);
			} else {
				store_import_error_clear(s->run.st, f->path);
			}
		}
		for (size_t k = 0; k < f->ndags; k++) {
			struct dag *d = f->dags[k];
			if (f->changed)
				store_dag_sync(s->run.st, d, f->source, now);
			ids = xrealloc(ids, (nids + 1) * sizeof(char *));
			ids[nids++] = d->dag_id;
			struct dag_state *ds = find_state(s, d->dag_id);
			if (!ds) {
				s->dags = xrealloc(s->dags, (s->ndags + 1) * sizeof(*s->dags));
				ds = &s->dags[s->ndags++];
				memset(ds, 0, sizeof(*ds));
				ds->dag_id = xstrdup(d->dag_id);
				strindex_put(&s->dag_ix, ds->dag_id, s->ndags - 1);
				log_info("DAG %s loaded from %s", d->dag_id, f->display);
			}
			set_state_dag(ds, d);
			ds->seen = true;
		}
		f->changed = false;
	}
	/* Import errors of files that are gone (or fixed) go too. */
	const char **paths = xcalloc(s->bag.nfiles + 1, sizeof(char *));
	for (size_t i = 0; i < s->bag.nfiles; i++)
		paths[i] = s->bag.files[i].path;
	store_import_error_retain(s->run.st, paths, s->bag.nfiles);
	free(paths);
	store_dags_set_active(s->run.st, ids, nids);
	if (store_commit(s->run.st) < 0)
		log_warnx("the DAG folder's changes were not recorded; they are recorded with the next change");
	free(ids);
	s->bag.any_removed = false;
	size_t out = 0;
	for (size_t i = 0; i < s->ndags; i++) {
		if (s->dags[i].seen) {
			s->dags[out++] = s->dags[i];
		} else {
			log_info("DAG %s is gone from the folder", s->dags[i].dag_id);
			state_free(&s->dags[i]);
		}
	}
	s->ndags = out;
	reindex_states(s);
	store_dag_each(s->run.st, paused_cb, s);
}

static void rescan(struct sched *s)
{
	char *err = NULL;
	usec_t t0 = mono_usec();
	if (dagbag_refresh(&s->bag, &err) < 0) {
		log_warnx("%s", err);
		free(err);
		return;
	}
	sync_dags(s);
	/* What a rescan costs is on /metrics (sluice_dag_folder_scan_seconds): it runs every second
	 * on the loop thread, so it must stay small when nothing changed. */
	usec_t took = mono_usec() - t0;
	stat_scan = took;
	stat_scans++;
	stat_scan_usec += (long long)took;
	stat_dag_files = (int)s->bag.nfiles;
}

void sched_dag_deleted(const char *dag_id)
{
	struct sched *s = current;
	if (!s)
		return;
	for (size_t i = 0; i < s->bag.nfiles; i++)
		for (size_t k = 0; k < s->bag.files[i].ndags; k++)
			if (!strcmp(s->bag.files[i].dags[k]->dag_id, dag_id))
				s->bag.files[i].changed = true;
	struct dag_state *ds = find_state(s, dag_id);
	if (ds) {
		state_free(ds);
		*ds = s->dags[--s->ndags];
		reindex_states(s);
	}
	sync_dags(s);
}

int sched_reparse(const char *path)
{
	struct sched *s = current;
	if (!s)
		return -ESRCH;
	for (size_t i = 0; i < s->bag.nfiles; i++) {
		if (!strcmp(s->bag.files[i].path, path)) {
			s->bag.files[i].mtime_ns = -1; /* looks changed: the next refresh reads it */
			rescan(s);
			return 0;
		}
	}
	return -ENOENT;
}

/* Runs queued from the CLI ----------------------------------------------------------------------- */

static bool is_pending(const struct sched *s, int64_t pk)
{
	for (size_t i = 0; i < s->npending; i++)
		if (s->pending[i].pk == pk)
			return true;
	return false;
}

/* Picks up runs queued behind the daemon's back: triggered from the CLI, or cleared (an old run
 * requeued, hence no id filter: the queued set is small and indexed). */
static void poll_queued(struct sched *s)
{
	struct run_row *rows = NULL;
	int n = store_run_list_owned(s->run.st, "queued", 0, &rows);
	for (int i = 0; i < n; i++) {
		if (engine_has_run(s->run.eng, rows[i].pk) || is_pending(s, rows[i].pk)) {
			run_row_free(&rows[i]);
			continue;
		}
		s->pending = xrealloc(s->pending, (s->npending + 1) * sizeof(*s->pending));
		s->pending[s->npending++] = rows[i];
	}
	free(rows);
}

static int pending_of(const struct sched *s, const char *dag_id)
{
	int n = 0;
	for (size_t i = 0; i < s->npending; i++)
		n += !strcmp(s->pending[i].dag_id, dag_id);
	return n;
}

/* Starts queued runs while their DAG is unpaused and below max_active_runs. Backfill runs go
 * last: they yield slots to scheduled and triggered runs. */
static void admit_pass(struct sched *s, bool backfills)
{
	size_t out = 0;
	for (size_t i = 0; i < s->npending; i++) {
		struct run_row *r = &s->pending[i];
		if ((r->backfill_id > 0) != backfills) {
			s->pending[out++] = *r;
			continue;
		}
		struct dag_state *ds = find_state(s, r->dag_id);
		struct dag *d = ds ? dag_for_run(s, r) : NULL;
		bool start = d && !ds->paused && engine_active_runs(s->run.eng, r->dag_id) < d->max_active_runs;
		if (start) {
			char *err = NULL;
			if (!r->dag_version)
				r->dag_version = xstrdup(d->version);
			if (engine_start_run(s->run.eng, d, r, NULL, &err) < 0) {
				log_warnx("cannot start run %s of %s: %s", r->run_id, r->dag_id, err);
				free(err);
			} else {
				log_info("run %s of %s started", r->run_id, r->dag_id);
			}
			run_row_free(r);
			continue;
		}
		s->pending[out++] = *r;
	}
	s->npending = out;
}

static void admit(struct sched *s)
{
	admit_pass(s, false);
	admit_pass(s, true);
}

/* Schedules ----------------------------------------------------------------------------------------- */

/* The first interval start to consider for a DAG that has no marker yet. */
static void init_marker(struct sched *s, struct dag_state *ds)
{
	usec_t last_end = USEC_NONE;
	bool any;
	ds->have_marker = true;
	free(ds->marker_schedule);
	ds->marker_schedule = xstrdup(ds->dag->schedule);
	if (store_run_last_scheduled(s->run.st, ds->dag_id, &last_end, &any) < 0 || !any)
		last_end = USEC_NONE;
	ds->marker = schedule_first_marker(ds->cron, ds->zone, ds->dag, last_end, now_usec());
}

static int create_scheduled(struct sched *s, struct dag_state *ds, usec_t start, usec_t end)
{
	char iso[ISO_BUFSZ], *err = NULL;
	format_iso8601(start, iso, sizeof(iso));
	char *run_id = runs_default_id("scheduled", start);
	struct run_request req = {
		.run_type = "scheduled",
		.run_id = run_id,
		.logical_date = start,
		.data_interval_start = start,
		.data_interval_end = end,
	};
	int rc = engine_create_run(s->run.eng, ds->dag, &req, NULL, &err);
	if (rc == -EEXIST)
		log_warnx("DAG %s: a run at %s already exists; not scheduling another", ds->dag_id, iso);
	else if (rc < 0)
		log_warnx("DAG %s: cannot create the run for %s: %s", ds->dag_id, iso, err);
	else
		log_info("run %s of %s created", run_id, ds->dag_id);
	free(err);
	free(run_id);
	return rc;
}

/* @once: one run, at start_date (or when first seen). */
static void schedule_once(struct sched *s, struct dag_state *ds)
{
	usec_t last_end;
	bool any;
	if (store_run_last_scheduled(s->run.st, ds->dag_id, &last_end, &any) < 0 || any)
		return;
	usec_t at = ds->dag->start_date != USEC_NONE ? ds->dag->start_date : now_usec() / USEC_PER_SEC * USEC_PER_SEC;
	if (at <= now_usec())
		create_scheduled(s, ds, at, at);
}

/* Keeps the DAG's next scheduled interval in the store for the API (Airflow's next_dagrun). */
static void note_next(struct sched *s, struct dag_state *ds, usec_t start, usec_t end)
{
	if (ds->next_written && ds->next_start == start && ds->next_end == end)
		return;
	if (store_dag_set_next(s->run.st, ds->dag_id, start, end) == 0) {
		ds->next_written = true;
		ds->next_start = start;
		ds->next_end = end;
	}
}

/* Creates the runs that are due for one DAG; returns when the next one is due (USEC_NONE: never). */
static usec_t schedule_dag(struct sched *s, struct dag_state *ds)
{
	struct dag *d = ds->dag;
	usec_t now = now_usec();

	if (!ds->cron || !ds->zone || cron_kind(ds->cron) == CRON_ONCE)
		note_next(s, ds, USEC_NONE, USEC_NONE);
	if (!ds->cron || !ds->zone || ds->paused)
		return USEC_NONE;
	if (cron_kind(ds->cron) == CRON_ONCE) {
		schedule_once(s, ds);
		return USEC_NONE;
	}
	if (!ds->have_marker)
		init_marker(s, ds);
	for (int guard = 0; guard < 1000; guard++) {
		usec_t start, end;
		enum sched_next next = schedule_next(ds->cron, ds->zone, d, ds->marker, now, &start, &end);
		if (next == SCHED_NEVER) {
			note_next(s, ds, USEC_NONE, USEC_NONE);
			return USEC_NONE;
		}
		if (next == SCHED_WAIT) {
			note_next(s, ds, start, end);
			return end;
		}
		if (engine_active_runs(s->run.eng, d->dag_id) + pending_of(s, d->dag_id) >= d->max_active_runs)
			return now + TICK; /* a slot frees when a run ends */
		create_scheduled(s, ds, start, end);
		ds->marker = end;
	}
	return now;
}

/* Backfills ------------------------------------------------------------------------------------- */

static struct bf_state *bf_state_for(struct sched *s, const struct backfill_row *b, const struct dag *d)
{
	for (size_t i = 0; i < s->nbfs; i++)
		if (s->bfs[i].id == b->id)
			return &s->bfs[i];
	char *err = NULL;
	usec_t *dates = NULL;
	size_t n = 0;
	if (backfill_dates(d, b->from_date, b->to_date, b->run_backwards, &dates, &n, &err) < 0) {
		log_warnx("backfill %lld of %s: %s", (long long)b->id, b->dag_id, err);
		free(err);
	}
	s->bfs = xrealloc(s->bfs, (s->nbfs + 1) * sizeof(*s->bfs));
	s->bfs[s->nbfs] = (struct bf_state){b->id, dates, n, 0, false};
	return &s->bfs[s->nbfs++];
}

/* Clears every task instance of an existing run and hands it to the backfill. */
static int bf_reprocess(struct sched *s, const struct dag *d, const struct run_row *r, int64_t bf_id)
{
	const char **ids = xcalloc(d->ntasks, sizeof(char *));
	for (size_t i = 0; i < d->ntasks; i++)
		ids[i] = d->tasks[i].id;
	struct ops_selection sel = {.task_ids = ids, .ntasks = d->ntasks, .map_index = -2};
	struct ti_row *rows = NULL;
	char *err = NULL;
	int n = ops_clear(s->run.st, s->run.eng, d, r, &sel, false, &rows, &err);
	for (int i = 0; i < n; i++)
		ti_row_free(&rows[i]);
	free(rows);
	free(ids);
	if (n < 0) {
		log_warnx("backfill %lld: cannot reprocess run %s: %s", (long long)bf_id, r->run_id, err);
		free(err);
		return n;
	}
	return store_run_set_backfill(s->run.st, r->pk, bf_id);
}

static void bf_create(struct sched *s, const struct dag *d, const struct backfill_row *b, usec_t date)
{
	struct run_row r = {0};
	char *err = NULL;
	int64_t t;
	struct dag_state *ds = find_state(s, d->dag_id);
	struct run_request req = {
		.run_type = "backfill",
		.logical_date = date,
		.data_interval_start = date,
		.data_interval_end = ds && ds->cron && cron_next(ds->cron, ds->zone, date / USEC_PER_SEC, &t) == 0
					     ? t * USEC_PER_SEC : date,
		.conf = b->dag_run_conf,
		.backfill_id = b->id,
	};
	if (runs_queue(s->run.st, d, &req, &r, &err) == 0) {
		s->pending = xrealloc(s->pending, (s->npending + 1) * sizeof(*s->pending));
		s->pending[s->npending++] = r;
		return;
	}
	char iso[ISO_BUFSZ];
	format_iso8601(date, iso, sizeof(iso));
	log_warnx("backfill %lld: cannot create the run for %s: %s", (long long)b->id, iso, err);
	free(err);
}

/* Advances one backfill as far as its and its DAG's free run slots allow. */
static void drive_backfill(struct sched *s, const struct backfill_row *b)
{
	struct dag_state *ds = find_state(s, b->dag_id);
	if (!ds || ds->paused)
		return;
	struct bf_state *bs = bf_state_for(s, b, ds->dag);
	bs->seen = true;
	if (b->is_paused)
		return;
	int active = store_backfill_runs(s->run.st, b->id, "queued") + store_backfill_runs(s->run.st, b->id, "running");
	int room = b->max_active_runs - active;
	int dag_room = ds->dag->max_active_runs - engine_active_runs(s->run.eng, b->dag_id) - pending_of(s, b->dag_id);
	if (dag_room < room)
		room = dag_room;
	while (room > 0 && bs->cursor < bs->ndates) {
		usec_t date = bs->dates[bs->cursor];
		struct run_row existing = {0};
		bool have = store_run_get(s->run.st, b->dag_id, NULL, date, &existing) == 0;
		enum bf_action a = backfill_action(b->reprocess_behavior, b->id, have ? &existing : NULL);
		if (a == BF_REPROCESS && !strcmp(existing.state, "running"))
			a = BF_SKIP;
		if (a == BF_CREATE) {
			bf_create(s, ds->dag, b, date);
			room--;
		} else if (a == BF_REPROCESS && bf_reprocess(s, ds->dag, &existing, b->id) == 0) {
			room--;
		}
		run_row_free(&existing);
		bs->cursor++;
	}
	if (bs->cursor >= bs->ndates &&
	    store_backfill_runs(s->run.st, b->id, "queued") + store_backfill_runs(s->run.st, b->id, "running") == 0) {
		store_backfill_update(s->run.st, b->id, b->is_paused, now_usec());
		log_info("backfill %lld of %s completed", (long long)b->id, b->dag_id);
	}
}

static void drive_backfills(struct sched *s)
{
	struct backfill_row *bfs = NULL;
	int n = store_backfill_list(s->run.st, NULL, true, &bfs);
	for (size_t i = 0; i < s->nbfs; i++)
		s->bfs[i].seen = false;
	for (int i = 0; i < n; i++) {
		drive_backfill(s, &bfs[i]);
		backfill_row_free(&bfs[i]);
	}
	free(bfs);
	/* Forget backfills that completed or were cancelled. */
	size_t out = 0;
	for (size_t i = 0; i < s->nbfs; i++) {
		if (s->bfs[i].seen)
			s->bfs[out++] = s->bfs[i];
		else
			free(s->bfs[i].dates);
	}
	s->nbfs = out;
}

/* The tick ------------------------------------------------------------------------------------------ */

static void on_tick(struct evloop *loop, void *arg)
{
	struct sched *s = arg;
	usec_t now = now_usec(), next = now + TICK;
	s->tick = NULL;
	if (s->stopping) {
		if (engine_running_tries(s->run.eng) == 0 || now >= s->stop_deadline) {
			evloop_stop(loop);
			return;
		}
		arm_tick(s, 100 * 1000);
		return;
	}
	heartbeat = now;
	/* systemd's watchdog (WatchdogSec=): the loop is turning. */
	if (s->watchdog && now - s->last_watchdog >= s->watchdog) {
		s->last_watchdog = now;
		sd_notify_send("WATCHDOG=1");
	}
	if (now - s->last_rescan >= RESCAN_EVERY) {
		s->last_rescan = now;
		rescan(s);
	}
	store_dag_each(s->run.st, paused_cb, s);
	engine_reload_pools(s->run.eng);
	poll_queued(s);
	for (size_t i = 0; i < s->ndags; i++) {
		usec_t due = schedule_dag(s, &s->dags[i]);
		if (due != USEC_NONE && due < next)
			next = due;
	}
	drive_backfills(s);
	admit(s);
	stat_loop = now_usec() - now;
	stat_commit = store_last_commit_usec(s->run.st);
	stat_commit_failing = engine_commit_failing(s->run.eng);
	stat_slots = engine_slots_in_use(s->run.eng);
	usec_t delay = next - now_usec();
	arm_tick(s, delay > 0 ? delay : 0);
}

static void arm_tick(struct sched *s, usec_t delay)
{
	if (s->tick)
		evloop_timer_cancel(s->run.loop, s->tick);
	s->tick = evloop_timer_in(s->run.loop, delay, on_tick, s);
}

/* A run ended: a slot may be free for a queued or scheduled run. */
static void on_run_done(void *arg, struct erun *r)
{
	struct sched *s = arg;
	log_info("run %s of %s: %s", erun_row(r)->run_id, erun_row(r)->dag_id, erun_row(r)->state);
	if (!s->stopping)
		arm_tick(s, 0);
}

/* SIGTERM or SIGINT: stop (after the running tries with --kill-tasks-on-exit); a second one
 * stops at once. */
static void on_stop(void *arg, struct runner *r, int count)
{
	struct sched *s = arg;
	if (s->stopping) {
		evloop_stop(r->loop);
		return;
	}
	s->stopping = true;
	if (s->o->kill_tasks_on_exit) {
		log_info("stopping: stopping the running tries first (--kill-tasks-on-exit)");
		engine_kill_all(s->run.eng);
		s->stop_deadline = now_usec() + s->o->cfg->kill_grace + 3 * USEC_PER_SEC;
		arm_tick(s, 0);
	} else {
		log_info("stopping; running tries keep running under their supervisors");
		evloop_stop(r->loop);
	}
	(void)count;
}

/* Start-up ------------------------------------------------------------------------------------------ */

/* Resumes every run the daemon owned when it stopped; queued ones wait for admission. */
static void recover(struct sched *s)
{
	struct run_row *rows = NULL;
	int n = store_run_list_owned(s->run.st, "running", 0, &rows);
	for (int i = 0; i < n; i++) {
		struct run_row *r = &rows[i];
		struct dag *d = dag_for_run(s, r);
		char *err = NULL;
		if (!d) {
			log_warnx("run %s of %s: its DAG is gone; the run stays as it is", r->run_id, r->dag_id);
		} else if (engine_start_run(s->run.eng, d, r, NULL, &err) < 0) {
			log_warnx("cannot resume run %s of %s: %s", r->run_id, r->dag_id, err);
			free(err);
		} else {
			log_info("resumed run %s of %s", r->run_id, r->dag_id);
		}
		run_row_free(r);
	}
	free(rows);
	poll_queued(s);
}

static void warn_loose_home(const char *home)
{
	struct stat hs;
	if (stat(home, &hs) == 0 && (hs.st_mode & 077))
		log_warnx("%s is open to other users (mode %03o): it holds the database and every task's log; "
			  "`chmod 700 %s`", home, (unsigned)(hs.st_mode & 0777), home);
}

int sched_serve(const struct sched_opts *o)
{
	struct sched s = {.o = o, .lockfd = -1, .run = {.sigfd = -1}};
	char *err = NULL;
	int rc = 1;

	log_set_timestamps(true);
	if (mkdir_p(o->home, 0700) < 0) {
		log_warn("cannot create %s", o->home);
		goto out;
	}
	if (take_lock(&s) < 0)
		goto out;
	warn_loose_home(o->home);
	struct runner_opts ro = {
		.home = o->home,
		.shim_path = o->shim_path,
		.parallelism = o->cfg->parallelism,
		.kill_grace = o->cfg->kill_grace,
		.env_passthrough = o->cfg->task_env_passthrough,
		.max_log_size = (long long)o->cfg->max_log_size,
		.sync_full = !strcmp(o->cfg->db_synchronous, "full"),
		.cfg = o->cfg,
		.on_stop = on_stop,
		.arg = &s,
	};
	if (runner_open(&s.run, &ro, &err) < 0) {
		log_warnx("cannot start: %s", err);
		goto out;
	}
	struct dag_lua_limits lim = {o->cfg->dag_memory_limit, o->cfg->dag_instruction_limit, o->cfg->dag_time_limit};
	dagbag_init(&s.bag, o->cfg->dags_folder, &lim);
	if (o->probe_exe)
		dagbag_use_probe(&s.bag, o->probe_exe);
	engine_on_run_done(s.run.eng, on_run_done, &s);
	s.last_rescan = now_usec();
	s.watchdog = sd_watchdog_interval();
	rescan(&s);
	recover(&s);
	log_info("sluice %s serving DAGs from %s (state in %s, pid %d)", SLUICE_VERSION, s.bag.dir, o->home,
		 (int)getpid());
	arm_tick(&s, 0);
	evloop_set_wake(s.run.loop, drain_writes, &s);
	pthread_mutex_lock(&wq_lock);
	current = &s;
	pthread_mutex_unlock(&wq_lock);
	char *lib = xasprintf("%s/lib", s.bag.dir);
	struct control_opts co = {.home = o->home, .lib_dir = lib, .limits = &lim};
	if (control_start(&co, &s.control, &err) < 0) {
		/* The CLI then cannot reach this daemon; everything else works. */
		log_warnx("%s", err);
		free(err);
		err = NULL;
	}
	free(lib);
	char *ready = xasprintf("READY=1\nSTATUS=serving DAGs from %s\nMAINPID=%d", s.bag.dir, (int)getpid());
	sd_notify_send(ready);
	free(ready);
	rc = evloop_run(s.run.loop) < 0 ? 1 : 0;
	sd_notify_send("STOPPING=1");
	close_writes();
	control_stop(s.control);
	log_info("stopped");
out:
	free(err);
	if (s.tick)
		evloop_timer_cancel(s.run.loop, s.tick);
	runner_close(&s.run);
	for (size_t i = 0; i < s.ndags; i++)
		state_free(&s.dags[i]);
	free(s.dags);
	strindex_free(&s.dag_ix);
	for (size_t i = 0; i < s.npending; i++)
		run_row_free(&s.pending[i]);
	free(s.pending);
	for (size_t i = 0; i < s.nversions; i++) {
		free(s.versions[i].dag_id);
		free(s.versions[i].version);
		dag_unref(s.versions[i].dag);
	}
	free(s.versions);
	for (size_t i = 0; i < s.nbfs; i++)
		free(s.bfs[i].dates);
	free(s.bfs);
	dagbag_free(&s.bag);
	if (s.lockfd >= 0)
		close(s.lockfd);
	return rc;
}
