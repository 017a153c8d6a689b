/* The supervisor's status file (executors/executor.h exec_parse_status(), what
 * exec_read_status() applies to the file sluice-shim writes): any text either parses into an end
 * kind or is refused, and the message it keeps is the one out->message points to. */
#include "tests/fuzz/fuzz.h"

#include <errno.h>

#include "executors/executor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_str(data, size);
	struct exec_result res;
	char *msg = (char *)"unset";
	int rc = exec_parse_status(text, &res, &msg);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "returned %d", rc);
	FUZZ_CHECK(res.message == msg, "out->message is not *message");
	if (rc == 0) {
		FUZZ_CHECK(res.kind >= EXEC_END_EXITED && res.kind <= EXEC_END_LOST, "kind %d", (int)res.kind);
		FUZZ_CHECK(!msg || !strchr(msg, '\n'), "a message across lines");
	} else {
		FUZZ_CHECK(!msg, "a refused file left a message");
	}
	free(msg);
	free(text);
	return 0;
}
