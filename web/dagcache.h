/* Parsed DAG versions for the REST API: a stored version (dag_id, content hash) never changes,
 * so each is parsed once, with the daemon's configured DAG-file limits, and shared by the
 * server's workers (least recently used ones go beyond DAGCACHE_SIZE). Thread-safe. */
#ifndef SLUICE_WEB_DAGCACHE_H
#define SLUICE_WEB_DAGCACHE_H

#include "orchestrator/dag.h"
#include "orchestrator/dag_lua.h"
#include "orchestrator/store.h"

#define DAGCACHE_SIZE 64

/* The DAG dag_id as of version (a new reference: dag_unref it), parsed from the store on the
 * first call with limits (NULL: the defaults); NULL when it cannot be had. */
struct dag *dagcache_get(struct store *st, const char *dag_id, const char *version, const char *lib_dir,
			 const struct dag_lua_limits *limits);
/* Drops every entry (at the server's stop). */
void dagcache_clear(void);

#endif
