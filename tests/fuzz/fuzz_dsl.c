/* The Lua DSL loader (orchestrator/dag_lua.h) on DAG file text, with the daemon's default limits:
 * a file either yields DAGs and no error, or one error and no DAG; nothing else may happen. */
#include "tests/fuzz/fuzz.h"

#include "orchestrator/dag_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dag_load ld = {0};
	int rc = dag_lua_load("/dags/fuzz.lua", "fuzz.lua", (const char *)data, size, NULL, NULL, &ld);
	if (rc == 0) {
		FUZZ_CHECK(!ld.error && ld.ndags > 0, "success with error %s and %zu DAGs", ld.error, ld.ndags);
		for (size_t i = 0; i < ld.ndags; i++)
			FUZZ_CHECK(ld.dags[i]->dag_id && ld.dags[i]->ntasks > 0, "a DAG without id or tasks");
	} else {
		FUZZ_CHECK(ld.error && ld.ndags == 0, "failure %d without an error or with DAGs", rc);
		FUZZ_CHECK(!strncmp(ld.error, "fuzz.lua", 8), "error does not name the file: %s", ld.error);
	}
	dag_load_clear(&ld);
	return 0;
}
