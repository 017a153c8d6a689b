/* The store's internals for its other parts (store_admin.c); nothing outside orchestrator/store*.c
 * includes this. The public interface is store.h. */
#ifndef SLUICE_STORE_INT_H
#define SLUICE_STORE_INT_H

#include <sqlite3.h>

#include "base/util.h"
#include "orchestrator/store.h"

/* A cached prepared statement for a static SQL string, reset and unbound. */
sqlite3_stmt *store_int_prep(struct store *st, const char *sql);
/* Steps a statement that returns no rows: 0 or a negative errno (-EEXIST for a constraint). */
int store_int_run(struct store *st, sqlite3_stmt *s);
/* Steps s to its end, reading each row with rd into a malloc'd array of size-byte elements. */
int store_int_collect(struct store *st, sqlite3_stmt *s, size_t size, void (*rd)(sqlite3_stmt *, void *),
		      void **out, const char *what);
/* The number of rows the last statement changed. */
int store_int_changes(struct store *st);
/* The connection itself. */
sqlite3 *store_int_db(struct store *st);
/* The rowid of the last insert. */
int64_t store_int_last_id(struct store *st);

static inline void st_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static inline void st_bind_time(sqlite3_stmt *s, int i, usec_t v)
{
	if (v == USEC_NONE)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_int64(s, i, v);
}

static inline char *st_col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? xstrdup((const char *)t) : NULL;
}

static inline usec_t st_col_time(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? USEC_NONE : sqlite3_column_int64(s, i);
}

#endif
