/* JSON helpers over cJSON shared by every layer. Ownership follows cJSON: items added to a
 * container belong to it; returned trees belong to the caller. */
#ifndef SLUICE_BASE_JSON_H
#define SLUICE_BASE_JSON_H

#include <cjson/cJSON.h>

#include "base/util.h"

/* Adds key: ISO-8601 string (Airflow's form), or null for USEC_NONE. */
void json_add_time(cJSON *o, const char *key, usec_t t);
/* {"__type": "TimeDelta", "days", "seconds", "microseconds"}. */
cJSON *json_timedelta(usec_t d);

/* Follows a dotted path ("a.b.c", numbers index arrays) into a JSON value; NULL when absent. */
const cJSON *json_path(const cJSON *root, const char *path);

#endif
