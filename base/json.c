#include "base/json.h"

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
