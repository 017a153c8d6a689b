/* The Lua DSL loader: runs one DAG file in a sandbox and turns what it returns into validated
 * struct dag values (dag.h). A file that fails in any way yields one import error
 * "file:line: message" and no DAG; the process is never put at risk: memory, instruction count
 * and wall-clock time are capped and exceeding a cap is an import error. */
#ifndef SLUICE_DAG_LUA_H
#define SLUICE_DAG_LUA_H

#include <stddef.h>
#include <stdint.h>

#include "orchestrator/dag.h"

struct dag_lua_limits {
	size_t memory;          /* bytes the Lua state may allocate */
	uint64_t instructions;  /* VM instructions the file may execute */
	usec_t wall;            /* wall-clock time the file may take */
};

#define DAG_LUA_DEFAULT_MEMORY (64u << 20)
#define DAG_LUA_DEFAULT_INSTRUCTIONS 200000000ULL
#define DAG_LUA_DEFAULT_WALL (5 * USEC_PER_SEC)

struct dag_load {
	struct dag **dags;      /* on success: the DAGs the file returned (caller owns references) */
	size_t ndags;
	char *error;            /* on failure: "file:line: message" (malloc'd) */
	int error_line;         /* line of the error, 0 when unknown */
};

/* Loads one DAG file from memory. `path` is the absolute path stored as fileloc; `display` is
 * the name used in messages (e.g. "etl.lua"); `lib_dir` is the folder `require` may load from
 * (NULL disables require). Returns 0 on success, -EINVAL with out->error set otherwise. */
int dag_lua_load(const char *path, const char *display, const char *content, size_t len,
		 const char *lib_dir, const struct dag_lua_limits *limits, struct dag_load *out);
/* Parses a date as DAG files and the CLI write them: with an offset or "Z" it is absolute;
 * without ("2026-11-01", "2026-11-01T03:00") it is a wall-clock time in zone (a time in a DST gap
 * is the first instant after the gap, one in an overlap the first occurrence). 0 or -EINVAL with
 * *err (malloc'd). */
int dag_parse_date(const char *s, const char *zone, usec_t *out, char **err);
/* Frees what dag_lua_load put in *ld (drops the DAG references). */
void dag_load_clear(struct dag_load *ld);

#endif
