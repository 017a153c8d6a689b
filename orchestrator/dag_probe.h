/* The parse probe: DAG files are tried in a separate process before the daemon loads them.
 *
 * The loader's caps (dag_lua.h) are enforced by a Lua hook, which cannot fire while one C
 * function runs: string.find with a pattern that backtracks exponentially would hold the
 * scheduler for hours. So the daemon first hands each changed file to a long-lived child process
 * (its own executable run as `EXE __dag-probe FD`), which loads it with the same limits and answers
 * ok or the import error. A child that does not answer within the wall-clock cap (plus a margin)
 * is killed and the file gets an import error; the next file gets a new child. Only files the
 * child loaded are then loaded in the daemon (a DAG file is deterministic: the DSL gives it no
 * clock, and math.random starts from a fixed seed).
 */
#ifndef SLUICE_DAG_PROBE_H
#define SLUICE_DAG_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "orchestrator/dag_lua.h"

struct dag_probe;

/* A probe that runs `exe __dag-probe FD` when first needed (exe: an absolute path). */
struct dag_probe *dag_probe_new(const char *exe);
/* Kills the child (if any); the next request starts a new one. */
void dag_probe_stop(struct dag_probe *p);
/* Stops the child (if any) and frees p (NULL is fine). */
void dag_probe_free(struct dag_probe *p);

/* Files go to the child in order, several at once (it loads them one after the other).
 * dag_probe_send() hands one over: 0, -ENOSYS (no child could be started: load it in-process)
 * or another negative error (the child is busy or gone: take its answers first). busy_since is
 * when the child began on the oldest file it has: it must answer for that one by then plus the
 * wall-clock cap plus a margin.
 * dag_probe_recv() takes the answer for the oldest file sent: 0 when it loaded (the caller then
 * loads it itself); -EINVAL with *err ("file:line: message", malloc'd) and *line for an import
 * error, including a file that ran past its time in one C call or during which the child died;
 * -ENOSYS when no child runs (load it in-process). *lost_rest tells that the child was stopped or
 * lost meanwhile, so the files sent after this one must be sent again. */
int dag_probe_send(struct dag_probe *p, const char *path, const char *display, const char *content, size_t len,
		   const char *lib_dir, const struct dag_lua_limits *lim, usec_t busy_since, char **err);
int dag_probe_recv(struct dag_probe *p, const char *display, const struct dag_lua_limits *lim, usec_t busy_since,
		   char **err, int *line, bool *lost_rest);

/* The child's side: answers requests on fd until it is closed. Returns the process exit code. */
int dag_probe_serve(int fd);

#endif
