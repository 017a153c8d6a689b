/* The DAG bag: every DAG file of a folder, loaded through the Lua DSL.
 *
 * dagbag_refresh() rescans the folder: a file is re-read only when its size or mtime changed,
 * and re-parsed only when its content hash changed. A file whose new content fails to import
 * keeps the DAGs of its last good content (and carries the import error), so a typo never takes
 * a working DAG away. DAG ids are unique across files: the second file (in path order) that
 * defines an id gets an import error for the whole file. The folder's lib/ subfolder holds
 * shared Lua modules for `require` and is not scanned for DAGs. */
#ifndef SLUICE_DAGBAG_H
#define SLUICE_DAGBAG_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/strindex.h"
#include "orchestrator/dag_lua.h"

struct dagbag_file {
	char *path;           /* absolute */
	char *display;        /* path relative to the folder (used in messages) */
	char hash[65];        /* content hash of the last read content */
	off_t size;
	long long mtime_ns;
	char *source;         /* last read content */
	size_t source_len;
	struct dag **dags;    /* last good DAGs (may be from an older content) */
	size_t ndags;
	char *error;          /* import error of the current content, or NULL */
	int error_line;
	struct dag **shadowed; /* the DAGs of a file whose DAG id an earlier file defines: kept, not
	                          served, until that conflict goes (no re-parse in the meantime) */
	size_t nshadowed;
	bool changed;         /* set by refresh when dags or error changed; cleared by the caller */
	bool seen;            /* refresh bookkeeping */
};

struct dagbag {
	char *dir;            /* absolute folder, or NULL for an explicit file list */
	struct dag_lua_limits limits;
	struct dagbag_file *files;
	size_t nfiles;
	struct strindex path_ix; /* path -> index in files: a rescan finds each file in O(1) */
	size_t *order;           /* indexes of files in path order (strcmp), for the duplicate-id
	                            check; rebuilt when files come or go (order_stale) */
	bool order_stale;
	bool any_removed;     /* set by refresh when files disappeared; cleared by the caller */
	struct dag_probe *probe; /* tries each changed file in a child process first (dag_probe.h);
	                            NULL = load in-process only */
	size_t *pending, npending, cap_pending; /* indexes of files read, to load (with a probe) */
};

/* Initialises a bag over dir (made absolute). limits may be NULL for the defaults. */
void dagbag_init(struct dagbag *bag, const char *dir, const struct dag_lua_limits *limits);
/* From now on, changed files are first loaded by `exe __dag-probe` (dag_probe.h), so that a file
 * stuck inside one C call is stopped there instead of holding the caller. */
void dagbag_use_probe(struct dagbag *bag, const char *exe);
/* Rescans the folder. Returns 0, or -errno when the folder cannot be read (then *err is set;
 * the bag keeps what it had). */
int dagbag_refresh(struct dagbag *bag, char **err);
/* Loads one explicit file into the bag (for `dags check FILE`). Returns 0 or -errno with *err. */
int dagbag_add_file(struct dagbag *bag, const char *path, char **err);
void dagbag_free(struct dagbag *bag);

/* Finds a DAG by id among the files' last good DAGs; NULL when absent. Borrowed reference. */
struct dag *dagbag_find(const struct dagbag *bag, const char *dag_id);
struct store;
/* Parses the stored source of a DAG version (the dag_version table) and returns that DAG as a
 * new reference, or NULL when the version is unknown or no longer loads. lib_dir and limits may
 * be NULL. Runs use it to keep the version they started with; the CLI and API to load a DAG
 * whose file is broken now. */
struct dag *dagbag_load_stored(struct store *st, const char *dag_id, const char *version,
			       const char *lib_dir, const struct dag_lua_limits *limits);

/* The content of the file that defines d (borrowed from the bag), or NULL when d is not one of
 * the bag's DAGs. */
const char *dagbag_source_of(const struct dagbag *bag, const struct dag *d);
/* Use case "sync one DAG's row": writes d's row and its version (with the source of its file) to
 * the writer w, so that the daemon, the API and the CLI know it. Returns 0, -ENOENT when d is
 * not one of the bag's DAGs, or the store's error. */
int dagbag_sync_dag(struct store *w, const struct dagbag *bag, const struct dag *d);

/* Number of files with an import error. */
size_t dagbag_error_count(const struct dagbag *bag);

#endif
