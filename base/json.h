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

/* A JSON object written straight into a strbuf, for replies too large to build as a cJSON tree
 * first. The text is byte for byte what cJSON_PrintUnformatted() prints for the same object (same
 * string escapes, same number forms), so a list written this way reads like one printed by cJSON.
 * Keys are written in call order; a NULL string is written as null. */
struct json_obj {
	struct strbuf *sb;
	int n; /* members written so far */
};
void json_obj_begin(struct json_obj *o, struct strbuf *sb);
void json_obj_end(struct json_obj *o);
void json_obj_str(struct json_obj *o, const char *key, const char *v);
void json_obj_num(struct json_obj *o, const char *key, double v);
void json_obj_bool(struct json_obj *o, const char *key, bool v);
void json_obj_null(struct json_obj *o, const char *key);
/* An ISO-8601 string as json_add_time() adds it, or null for USEC_NONE. */
void json_obj_time(struct json_obj *o, const char *key, usec_t t);
/* Writes the key and leaves the value (JSON text) to the caller, e.g. a nested object. */
void json_obj_key(struct json_obj *o, const char *key);
/* s as a JSON string, as cJSON escapes it. */
void json_put_string(struct strbuf *sb, const char *s);
/* v as cJSON prints a number. */
void json_put_number(struct strbuf *sb, double v);

#endif
