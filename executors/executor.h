/* The executor interface: how a task try runs somewhere. The scheduler never knows which backend
 * runs a task; it only sees this file. A backend is one `const struct executor_ops` exported by one
 * file and found by name in the NULL-terminated table executor_backends[] (executor.c).
 *
 * Ownership and invariants:
 *  - The scheduler owns every struct exec_spec and every path in it; a backend copies what it
 *    keeps past start().
 *  - A try is identified by its `token` (chosen by the scheduler, unique among live tries).
 *  - If start() fails, on_end is never called for that token.
 *  - on_end is called exactly once per started (or re-attached) try, on the loop's thread.
 *  - The supervisor of every try writes `status_path` atomically when the command ends, so a
 *    restarted daemon can collect the result of a try that ended while it was down.
 *  - `external_id` identifies the running try to the backend across daemon restarts
 *    ("<pid>:<starttime>" for local, a job id for Slurm, a Job name for Kubernetes).
 */
#ifndef SLUICE_EXECUTOR_H
#define SLUICE_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "base/evloop.h"
#include "base/json.h"
#include "base/util.h"

/* Exit code the supervisor uses when the same try was already started by another supervisor
 * (the pid file already existed): the try must be re-attached, not counted as a result. */
#define EXEC_SHIM_DUPLICATE 252
/* Exit code the supervisor uses when it could not set up or exec the command. */
#define EXEC_SHIM_SETUP_FAILED 253

struct exec_spec {
	const char *const *argv;   /* NULL-terminated command; argv[0] searched in PATH */
	const char *const *envp;   /* complete environment of the command (NULL-terminated) */
	const char *cwd;           /* working directory, or NULL for the daemon's */
	const char *log_path;      /* stdout and stderr are appended here */
	const char *status_path;   /* the supervisor writes the end status here (atomically) */
	const char *pid_path;      /* created exclusively by the supervisor: "<pid> <starttime>\n" */
	long long max_log_size;    /* bytes the command may write to its log, the rest dropped; 0 = no cap */
	bool sync_status;          /* fsync the status file before it is renamed into place: with
	                            * core.db_synchronous = full a result survives a power cut like
	                            * the database's commits; with normal neither is synced */
	const char *run_as;        /* user to run the command as (the supervisor runs as root); NULL = its own */
	const char *output_path;   /* with run_as: the $SLUICE_OUTPUT file, handed to the command open on
	                            * fd 3 (then $SLUICE_OUTPUT is /dev/fd/3) */
	/* Resource limits of the command (setrlimit); 0 = inherited. */
	long long rlimit_as, rlimit_cpu, rlimit_nofile, rlimit_nproc, rlimit_fsize;
	const char *mask_path;     /* secrets the command may print (NUL-separated, 0600): the backend
	                            * writes them as *** in the log and removes the file; NULL = none */
	usec_t timeout;            /* 0 = none; then SIGTERM to the process group */
	usec_t kill_grace;         /* after SIGTERM, SIGKILL when the group is still alive;
	                            * 0 = the supervisor's default (10 s) */
	/* Labels for backends that need them (job names, Kubernetes labels). */
	const char *dag_id, *run_id, *task_id;
	int map_index, try_number;
	/* For backends that run the try on another machine. */
	const char *const *task_envp; /* the try's own variables (SLUICE_* and the task's env, templated),
	                               * without the daemon's environment: what a remote try gets on top
	                               * of its host's login environment (NULL-terminated; NULL = none) */
	const cJSON *options;      /* the task's options for its backend, validated by the DSL: ssh
	                            * {"hosts": ["a", "b"]}, slurm {"partition": ..., "extra": {...}},
	                            * k8s {"image": ..., "namespace": ..., "pod_template": {...}};
	                            * NULL = none. Also given to reattach(). */
};

enum exec_end_kind {
	EXEC_END_EXITED,   /* code = exit status */
	EXEC_END_SIGNALED, /* code = signal number */
	EXEC_END_TIMEOUT,  /* killed by the timeout; code = signal that ended it */
	EXEC_END_LOST,     /* the backend lost track of the try (no status, not running) */
};

struct exec_result {
	enum exec_end_kind kind;
	int code;
	usec_t start, end; /* wall clock; USEC_NONE when unknown */
	const char *message; /* optional human text (e.g. why it was lost); may be NULL */
};

/* Called by a backend when a try ends. */
typedef void (*exec_end_cb)(void *arg, uint64_t token, const struct exec_result *res);

struct executor;

struct executor_ops {
	const char *name;
	/* Creates the backend's state; returns 0 or -errno with *err set (caller frees). */
	int (*init)(struct executor *ex, char **err);
	void (*shutdown)(struct executor *ex);
	/* Starts a try. On success fills *external_id (malloc'd, caller frees) and *pid (0 when the
	 * try has no local process). Returns 0 or -errno with *err set. */
	int (*start)(struct executor *ex, uint64_t token, const struct exec_spec *spec,
		     char **external_id, int *pid, char **err);
	/* Asks a running try to stop (SIGTERM to its group, SIGKILL after the grace period). The
	 * try still ends through on_end. Returns 0 or -errno. */
	int (*cancel)(struct executor *ex, uint64_t token);
	/* After a daemon restart: watches a try started by an earlier daemon. If the try already
	 * ended, on_end is called soon (from the loop, not from inside reattach). Returns 0 or
	 * -errno (then the caller treats the try as lost). */
	int (*reattach)(struct executor *ex, uint64_t token, const struct exec_spec *spec,
			const char *external_id);
	/* How many more tries this backend accepts right now. */
	int (*free_slots)(struct executor *ex);
	/* How many more tries with these options (a task's ssh hosts, say) it accepts right now;
	 * NULL when that is free_slots(). */
	int (*free_slots_for)(struct executor *ex, const cJSON *options);
};

/* A backend instance. Fields are set by executor_open() and read-only afterwards, except
 * `state`, which belongs to the backend. */
struct executor {
	const struct executor_ops *ops;
	struct evloop *loop;
	exec_end_cb on_end;
	void *cb_arg;
	int parallelism;     /* at most this many tries at once */
	char *shim_path;     /* path of the sluice-shim supervisor binary */
	char *state_dir;     /* the backend's own folder (0700, created by the backend); NULL = none */
	char **settings;     /* its configuration section as "key=value" (NULL-terminated, never NULL) */
	void *state;         /* backend-private */
};

/* What executor_open_with() is given besides the loop and the callback (all borrowed). */
struct executor_params {
	int parallelism;
	const char *shim_path;          /* NULL: sluice-shim next to the running executable */
	const char *state_dir;          /* e.g. $SLUICE_HOME/executors/ssh; NULL = none */
	const char *const *settings;    /* "key=value" of the backend's config section; NULL = none */
};

extern const struct executor_ops *const executor_backends[];

/* The backends, one file each. */
extern const struct executor_ops exec_local_ops; /* local.c: processes under sluice-shim */
extern const struct executor_ops exec_ssh_ops;   /* ssh.c: OpenSSH hosts, a remote sh supervisor */
extern const struct executor_ops exec_k8s_ops;   /* k8s.c: a batch/v1 Job per try (Kubernetes API, libcurl) */
extern const struct executor_ops exec_slurm_ops; /* slurm.c: Slurm batch jobs (sbatch, one squeue per poll) */

/* Finds a backend by name; NULL when unknown. */
const struct executor_ops *executor_find(const char *name);
/* Creates and initialises an executor of the named backend. Returns NULL with *err set (caller
 * frees). shim_path NULL means "sluice-shim next to the running executable". */
struct executor *executor_open(const char *name, struct evloop *loop, exec_end_cb cb, void *arg,
			       int parallelism, const char *shim_path, char **err);
/* The same with a state folder and configuration settings (see struct executor_params). */
struct executor *executor_open_with(const char *name, struct evloop *loop, exec_end_cb cb, void *arg,
				    const struct executor_params *p, char **err);
/* The value of setting key of ex ("key=value" in ex->settings), or def. */
const char *executor_setting(const struct executor *ex, const char *key, const char *def);
/* Shuts the backend down and frees ex (NULL is fine). Running tries are left running and on_end
 * is not called for them; a later executor can re-attach to them. */
void executor_close(struct executor *ex);

/* Reads a status file written by the supervisor (lines kind=exited|signaled|timeout, code=N,
 * start_us=, end_us=, optional message=). Returns 0, -ENOENT when there is none yet, or -EINVAL
 * when it is malformed. *message gets the malloc'd message (or NULL; the caller frees it) and
 * out->message points to it. */
int exec_read_status(const char *path, struct exec_result *out, char **message);
/* The same on the text of a status file (NUL-terminated, changed in place): 0 or -EINVAL. */
int exec_parse_status(char *text, struct exec_result *out, char **message);
/* Reads field 22 (start time in clock ticks since boot) and the state letter of /proc/<pid>/stat.
 * Returns 0 or -errno (-ESRCH when there is no such process). state may be NULL. */
int exec_proc_starttime(int pid, unsigned long long *starttime, char *state);
/* SIGKILLs every process of session sid whose leader is gone (a supervisor killed with -9 leaves
 * its command running), and waits (1 s at most) until they are. Returns how many it killed, or
 * -EEXIST when a process with pid sid lives (the session is not lost, or the pid was reused). */
int exec_kill_session(int sid);

#endif
