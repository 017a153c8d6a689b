#include "base/json.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void json_add_time(cJSON *o, const char *key, usec_t t)
{
	if (t == USEC_NONE) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	char iso[ISO_BUFSZ];
	format_iso8601(t, iso, sizeof(iso));
	cJSON_AddStringToObject(o, key, iso);
}

cJSON *json_timedelta(usec_t d)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "__type", "TimeDelta");
	cJSON_AddNumberToObject(o, "days", (double)(d / (86400 * USEC_PER_SEC)));
	cJSON_AddNumberToObject(o, "seconds", (double)(d / USEC_PER_SEC % 86400));
	cJSON_AddNumberToObject(o, "microseconds", (double)(d % USEC_PER_SEC));
	return o;
}

/* Follows a dotted path ("a.b.c") into a JSON object; NULL when absent. */
const cJSON *json_path(const cJSON *root, const char *path)
{
	char *copy = xstrdup(path), *save = NULL;
	const cJSON *cur = root;
	for (char *tok = strtok_r(copy, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
		if (cJSON_IsArray(cur)) {
			char *end;
			long idx = strtol(tok, &end, 10);
			cur = *end ? NULL : cJSON_GetArrayItem(cur, (int)idx);
		} else {
			cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
		}
	}
	free(copy);
	return cur;
}
