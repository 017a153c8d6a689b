/* The DAG model: what a DAG file declares, after the Lua DSL ran and validation passed.
 *
 * Invariants of a struct dag returned by dag_finish():
 *  - tasks[] is in declaration order; every task's upstream/downstream arrays hold indices into
 *    tasks[], without duplicates, and the graph has no cycle;
 *  - `topo` lists every task index in a topological order (upstream first);
 *  - every duration is resolved to microseconds and every task field has its default applied
 *    (task field > default_args > built-in default);
 *  - the struct is immutable and shared by reference count: a running run keeps the version it
 *    started with (dag_ref/dag_unref).
 */
#ifndef SLUICE_DAG_H
#define SLUICE_DAG_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/strindex.h"
#include "base/util.h"

enum trigger_rule {
	TR_ALL_SUCCESS,
	TR_ALL_FAILED,
	TR_ALL_DONE,
	TR_ALL_SKIPPED,
	TR_ONE_SUCCESS,
	TR_ONE_FAILED,
	TR_ONE_DONE,
	TR_NONE_FAILED,
	TR_NONE_FAILED_MIN_ONE_SUCCESS,
	TR_NONE_SKIPPED,
	TR_ALWAYS,
	TR__COUNT
};

enum task_kind {
	TASK_CMD,    /* runs cmd */
	TASK_SENSOR, /* pokes: a path to exist, or a cmd to exit 0 */
};

/* Task instance states (Airflow's names; TI_NONE is Airflow's null). */
enum ti_state {
	TI_NONE,
	TI_SCHEDULED,
	TI_QUEUED,
	TI_RUNNING,
	TI_SUCCESS,
	TI_FAILED,
	TI_UP_FOR_RETRY,
	TI_UP_FOR_RESCHEDULE,
	TI_UPSTREAM_FAILED,
	TI_SKIPPED,
	TI_REMOVED,
	TI__COUNT
};

const char *ti_state_name(enum ti_state s);
/* Returns the state called name ("none" or "null" for TI_NONE), or -1. */
int ti_state_parse(const char *name);
/* success, failed, skipped, upstream_failed, removed: nothing more will happen to it. */
bool ti_state_finished(enum ti_state s);

/* Counts of the upstream task instances of one task, by state. */
struct up_counts {
	int total;           /* upstream instances (mapped upstreams count each instance) */
	int success, failed, skipped, upstream_failed, removed;
};

enum tr_decision {
	TR_WAIT,             /* not decidable yet */
	TR_RUN,
	TR_SKIP,             /* the task becomes skipped */
	TR_UPSTREAM_FAILED,  /* the task becomes upstream_failed */
};

/* Airflow's trigger-rule semantics, decided as early as the counts allow. A task without
 * upstream tasks (total == 0) always runs. */
enum tr_decision trigger_rule_eval(enum trigger_rule tr, const struct up_counts *c);

struct kv {
	char *key, *value;
};

/* A callback (on_failure, on_success, on_retry): a command, or a webhook URL, or neither. */
struct callback {
	char *cmd;
	char *webhook;
};

struct task {
	char *id;
	int line;               /* line of the declaration in the DAG file */
	enum task_kind kind;
	char *operator_name;    /* "ShellTask", "MappedTask", "Sensor": shown like Airflow's operator */

	/* What to run: exactly one of cmd_shell / cmd_argv for TASK_CMD; sensors may have neither. */
	char *cmd_shell;        /* templated, run by /bin/sh -c */
	char **cmd_argv;        /* NULL-terminated; every element templated; no shell */

	int retries;
	usec_t retry_delay;
	bool retry_exponential_backoff;
	usec_t max_retry_delay; /* 0 = no cap beyond the built-in 24h */
	usec_t execution_timeout; /* 0 = none */
	char *pool;
	int pool_slots;
	char *executor;
	cJSON *exec_options;    /* the task's options for its executor (ssh {"hosts": [...]}); NULL = none; owned */
	struct kv *env;
	size_t n_env;
	enum trigger_rule trigger_rule;
	int *no_retry_exit_codes;
	size_t n_no_retry;
	char *cwd;              /* working directory (templated), NULL = the daemon's */
	int priority_weight;    /* own weight; the effective weight adds downstream weights */
	int effective_weight;   /* priority_weight + sum of all downstream tasks' weights */
	char *description;
	char *doc_md;           /* Markdown documentation, shown in the UI */
	char *run_as;           /* the user the try runs as (a daemon running as root); NULL = the daemon's */
	struct task_limits {    /* rlimits of the try's process; 0 = the daemon's */
		long long memory, cpu_seconds, open_files, processes, file_size;
	} limits;

	/* Mapped task (d:map): one instance per item. */
	bool mapped;
	char **over_items;      /* static list (when over_template is NULL) */
	size_t n_over;
	char *over_template;    /* e.g. "{{ outputs.list.items }}", expanded at run time */

	/* Sensor. */
	char *sensor_path;      /* templated */
	usec_t poke_interval;
	usec_t sensor_timeout;

	int *upstream, *downstream;
	size_t n_up, n_down;
};

struct dag {
	_Atomic int refcount;   /* atomic: the web server's workers share parsed DAGs */
	char *dag_id;
	char *fileloc;          /* absolute path of the DAG file */
	int line;               /* line of the dag{} call */
	char version[65];       /* SHA-256 of the file content */
	char *description;
	char *schedule;         /* NULL = manual only */
	char *timezone;         /* IANA name, default "UTC" */
	usec_t start_date, end_date; /* USEC_NONE when unset */
	bool catchup;
	int max_active_runs, max_active_tasks;
	usec_t dagrun_timeout;  /* 0 = none */
	char **tags;
	size_t n_tags;
	char *owner;
	cJSON *params;          /* object name -> default value (templates read these); owned */
	cJSON *param_specs;     /* object name -> {description, schema, has_default} (params.h); owned */
	char *doc_md;           /* Markdown documentation, shown in the UI */
	struct callback on_failure, on_success, on_retry;

	struct task *tasks;
	size_t ntasks;
	int *topo;              /* topological order of task indices */
	struct strindex task_ix; /* task id -> index, built by dag_finish (dag_task_index) */
};

/* Built-in defaults (Airflow's where it has one). */
#define DAG_DEFAULT_RETRY_DELAY (300 * USEC_PER_SEC)
#define DAG_DEFAULT_MAX_RETRY_DELAY (24 * 3600 * USEC_PER_SEC)
#define DAG_DEFAULT_MAX_ACTIVE_RUNS 16
#define DAG_DEFAULT_MAX_ACTIVE_TASKS 16
#define DAG_DEFAULT_POKE_INTERVAL (60 * USEC_PER_SEC)
#define DAG_DEFAULT_SENSOR_TIMEOUT (7 * 86400 * USEC_PER_SEC)

/* Exit code that marks a try as skipped (Airflow's skip_on_exit_code default). */
#define TASK_EXIT_SKIP 99

/* Trigger rule names <-> enum. Returns -1 for an unknown name. */
int trigger_rule_parse(const char *name);
const char *trigger_rule_name(enum trigger_rule tr);

/* Returns the index of the task called id, or -1. */
int dag_task_index(const struct dag *d, const char *id);
struct dag *dag_ref(struct dag *d);
/* Drops a reference; frees the DAG at zero. NULL is fine. */
void dag_unref(struct dag *d);

/* Validates a DAG assembled by the DSL loader and computes derived fields (edges from the
 * upstream lists, topological order, effective weights). On error returns -EINVAL and
 * writes "line: message" context into err (the caller adds the file name); `*err_line`
 * gets the line the problem is on. */
int dag_finish(struct dag *d, char *err, size_t errlen, int *err_line);

/* Whether a task may be retried after exiting with code (no_retry_exit_codes). */
bool task_retryable_exit(const struct task *t, int code);

/* The delay before the retry that follows the failed try `try_number` (1-based), per DESIGN
 * section 4: retry_delay, or with exponential backoff retry_delay * 2^(try-1) plus up to 10%
 * jitter (jitter01 in [0,1)), capped by max_retry_delay. */
usec_t task_retry_delay(const struct task *t, int try_number, double jitter01);

#endif
