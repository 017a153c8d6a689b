/* Cron expressions (orchestrator/cron.h): cron_parse(), then cron_next() and cron_prev() in UTC
 * and in a zone with daylight saving, and cron_describe(). Checks what the header promises: a
 * parsed schedule keeps its text, next is after its argument, prev is at or before it, and both
 * walk one set of fire times (prev(next(t)) == next(t)). */
#include "tests/fuzz/fuzz.h"

#include <errno.h>

#include "orchestrator/cron.h"

static const struct tz *zones[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *err = NULL;
	zones[0] = tz_utc();
	zones[1] = tz_get("Europe/Berlin", &err);
	if (!zones[1]) {
		fprintf(stderr, "fuzz_cron: %s\n", err ? err : "no Europe/Berlin");
		abort();
	}
	(void)argc;
	(void)argv;
	return 0;
}

/* next, prev and their agreement at one instant. */
static void walk(const struct cron *c, const struct tz *z, int64_t t)
{
	int64_t next, prev, back;
	int rn = cron_next(c, z, t, &next), rp = cron_prev(c, z, t, &prev);
	FUZZ_CHECK(rn == 0 || rn == -ENOENT || rn == -ERANGE, "cron_next returned %d", rn);
	FUZZ_CHECK(rp == 0 || rp == -ENOENT || rp == -ERANGE, "cron_prev returned %d", rp);
	if (rn == 0) {
		FUZZ_CHECK(next > t, "%s: next %lld not after %lld", cron_expr(c), (long long)next, (long long)t);
		FUZZ_CHECK(cron_prev(c, z, next, &back) == 0 && back == next, "%s in %s: prev(next(%lld) = %lld) = %lld",
			   cron_expr(c), tz_name(z), (long long)t, (long long)next, (long long)back);
	}
	if (rp == 0)
		FUZZ_CHECK(prev <= t, "%s: prev %lld after %lld", cron_expr(c), (long long)prev, (long long)t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t instants[] = {0, 1772323200 /* 2026-03-01 */, 1774745400 /* DST change */,
					   4102444800 /* 2100 */, -86400};
	char err[256];
	char *expr = fuzz_str(data, size);
	struct cron *c = cron_parse(expr, err, sizeof(err));
	if (c) {
		FUZZ_CHECK(!strcmp(cron_expr(c), expr), "cron_expr changed the text");
		cron_set_start(c, 1772323200);
		for (size_t z = 0; z < 2; z++)
			for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++)
				walk(c, zones[z], instants[i]);
		cron_free(c);
	} else {
		FUZZ_CHECK(err[0], "cron_parse failed without a message");
	}
	free(cron_describe(expr));
	free(expr);
	return 0;
}
