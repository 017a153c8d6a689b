/* Shared set-up for the use-case tests: a fresh $SLUICE_HOME with a migrated database (the
 * writer connection) and one DAG loaded from Lua, recorded in the database.
 *   etl: @daily from 2026-11-01, tasks a >> b */
#ifndef SLUICE_TEST_FIXTURE_H
#define SLUICE_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/dag_lua.h"
#include "orchestrator/store.h"

static const char fixture_src[] =
	"local d = dag { id = 'etl', schedule = '@daily', start_date = '2026-11-01' }\n"
	"local a = d:task 'a' { cmd = 'true' }\n"
	"local b = d:task 'b' { cmd = 'true' }\n"
	"d:flow(a >> b)\n"
	"return d\n";

struct fixture {
	char home[64];
	char db[128];
	struct store *w;
	struct dag_load ld;
	struct dag *d;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *err = NULL;
	snprintf(f->home, sizeof(f->home), "/tmp/sluice-usecase-XXXXXX");
	if (!mkdtemp(f->home) || (snprintf(f->db, sizeof(f->db), "%s/sluice.db", f->home), 0) ||
	    store_open(f->db, 0, &f->w, &err) < 0 ||
	    dag_lua_load("/dags/etl.lua", "etl.lua", fixture_src, strlen(fixture_src), NULL, NULL, &f->ld) < 0 ||
	    store_dag_sync(f->w, f->ld.dags[0], fixture_src, now_usec()) < 0) {
		fprintf(stderr, "fixture: %s\n", err ? err : f->ld.error ? f->ld.error : "store_dag_sync failed");
		return -1;
	}
	f->d = f->ld.dags[0];
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->w);
	dag_load_clear(&f->ld);
	remove_tree("/tmp", f->home);
	free(f);
	return 0;
}

/* The number of runs of the fixture's DAG in the database. */
__attribute__((unused)) static int fixture_runs(struct fixture *f)
{
	struct run_row *runs = NULL;
	int n = store_run_list(f->w, "etl", &runs);
	for (int i = 0; i < n; i++)
		run_row_free(&runs[i]);
	free(runs);
	return n;
}

#endif
