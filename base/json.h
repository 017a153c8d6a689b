/* JSON helpers over cJSON shared by every layer. Ownership follows cJSON: items added to a
 * container belong to it; returned trees belong to the caller. */
#ifndef SLUICE_BASE_JSON_H
#define SLUICE_BASE_JSON_H

#include <stdbool.h>
#include <string.h>

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
/* Each member call takes the key's length from the macro (strlen of a literal costs nothing at
 * run time: a list of 100 task instances writes 3,000 keys). */
void json_obj_str_n(struct json_obj *o, const char *key, size_t klen, const char *v);
void json_obj_num_n(struct json_obj *o, const char *key, size_t klen, double v);
void json_obj_bool_n(struct json_obj *o, const char *key, size_t klen, bool v);
void json_obj_null_n(struct json_obj *o, const char *key, size_t klen);
void json_obj_time_n(struct json_obj *o, const char *key, size_t klen, usec_t t);
void json_obj_key_n(struct json_obj *o, const char *key, size_t klen);
#define json_obj_str(o, key, v) json_obj_str_n((o), (key), strlen(key), (v))
#define json_obj_num(o, key, v) json_obj_num_n((o), (key), strlen(key), (v))
#define json_obj_bool(o, key, v) json_obj_bool_n((o), (key), strlen(key), (v))
#define json_obj_null(o, key) json_obj_null_n((o), (key), strlen(key))
/* An ISO-8601 string as json_add_time() adds it, or null for USEC_NONE. */
#define json_obj_time(o, key, t) json_obj_time_n((o), (key), strlen(key), (t))
/* Writes the key and leaves the value (JSON text) to the caller, e.g. a nested object. */
#define json_obj_key(o, key) json_obj_key_n((o), (key), strlen(key))
/* s as a JSON string, as cJSON escapes it. */
void json_put_string(struct strbuf *sb, const char *s);
/* v as cJSON prints a number. */
void json_put_number(struct strbuf *sb, double v);

#endif
