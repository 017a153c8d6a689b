/* The daemon's control socket, $SLUICE_HOME/control.sock (a Unix stream socket, mode 0600: who may
 * write the database may use it). It lets a CLI process hand a use case to the running daemon,
 * which runs it on its single writer connection with its engine, exactly as the REST API does:
 * so `sluice tasks clear` inside a running run behaves as clearTaskInstances does.
 *
 * Protocol: the client sends one JSON object and a newline; the daemon answers one JSON object
 * and a newline, then closes. Requests:
 *   {"op": "clear" | "mark", "dag_id", "run_id", "task_ids": [...], "map_index": -2 (every
 *    instance) | N, "upstream", "downstream", "only_failed", "dry_run": bool, "state" (mark)}
 *   {"op": "cancel", "dag_id", "run_id"}: stop the run's tries; the run fails
 *   {"op": "kill", "dag_id", "run_id", "task_id", "map_index"}: stop a task's try; it fails
 *   {"op": "wake"}: nothing, but the scheduler then looks for queued runs at once (`dags trigger`)
 * Replies: {"rc": count >= 0 or -errno, "error": text (when rc < 0),
 *           "task_instances": [{"task_id", "map_index", "state" (before the change)}]}
 *
 * Threading: the server accepts on its own thread and hands each request to sched_write(). */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <cjson/cJSON.h>

#include "orchestrator/dag_lua.h"

struct control;

struct control_opts {
	const char *home;                     /* the socket is <home>/control.sock */
	const char *lib_dir;                  /* the DAG folder's lib/, for loading stored versions */
	const struct dag_lua_limits *limits;
};

/* Listens on the socket (replacing a stale one: the caller holds the daemon's lock) and starts
 * the accepting thread. Returns 0 or -errno with *err (caller frees). */
int control_start(const struct control_opts *o, struct control **out, char **err);
/* Stops the thread and removes the socket. NULL is a no-op. */
void control_stop(struct control *c);

/* Client: sends req to the daemon of home and waits at most timeout for the reply (*reply is
 * the caller's). Returns 0, -ECONNREFUSED / -ENOENT when no daemon listens, -ETIMEDOUT, or
 * another -errno, with *err (caller frees). */
int control_call(const char *home, const cJSON *req, cJSON **reply, usec_t timeout, char **err);

#endif
