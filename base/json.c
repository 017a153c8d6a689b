#include "base/json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
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

void json_put_string(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;
	sb_putc(sb, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 32 && c != '"' && c != '\\')
			continue;
		char esc[6];
		size_t n = 2;
		sb_add(sb, run, (size_t)(s - run));
		run = s + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		sb_add(sb, esc, n);
	}
	sb_add(sb, run, (size_t)(s - run));
	sb_putc(sb, '"');
}

/* cJSON's print_number(): 15 significant digits unless they do not read back, then 17; NaN and
 * infinities as null. (cJSON after 1.7.15 prints integral values with %d: the same text, but for
 * -0, which it prints as 0.) */
void json_put_number(struct strbuf *sb, double v)
{
	char buf[32];
	if (isnan(v) || isinf(v)) {
		sb_puts(sb, "null");
		return;
	}
	snprintf(buf, sizeof(buf), "%1.15g", v);
	double back = strtod(buf, NULL);
	double scale = fabs(back) > fabs(v) ? fabs(back) : fabs(v);
	if (fabs(back - v) > scale * DBL_EPSILON)
		snprintf(buf, sizeof(buf), "%1.17g", v);
	sb_puts(sb, buf);
}

void json_obj_begin(struct json_obj *o, struct strbuf *sb)
{
	o->sb = sb;
	o->n = 0;
	sb_putc(sb, '{');
}

void json_obj_end(struct json_obj *o) { sb_putc(o->sb, '}'); }

void json_obj_key(struct json_obj *o, const char *key)
{
	/* Keys are the callers' literals, which need no escapes. */
	if (o->n++)
		sb_add(o->sb, ",\"", 2);
	else
		sb_putc(o->sb, '"');
	sb_puts(o->sb, key);
	sb_add(o->sb, "\":", 2);
}

void json_obj_str(struct json_obj *o, const char *key, const char *v)
{
	json_obj_key(o, key);
	if (v)
		json_put_string(o->sb, v);
	else
		sb_puts(o->sb, "null");
}

void json_obj_num(struct json_obj *o, const char *key, double v)
{
	json_obj_key(o, key);
	json_put_number(o->sb, v);
}

void json_obj_bool(struct json_obj *o, const char *key, bool v)
{
	json_obj_key(o, key);
	sb_puts(o->sb, v ? "true" : "false");
}

void json_obj_null(struct json_obj *o, const char *key)
{
	json_obj_key(o, key);
	sb_puts(o->sb, "null");
}

void json_obj_time(struct json_obj *o, const char *key, usec_t t)
{
	char iso[ISO_BUFSZ];
	if (t == USEC_NONE) {
		json_obj_null(o, key);
		return;
	}
	format_iso8601(t, iso, sizeof(iso));
	json_obj_str(o, key, iso);
}
