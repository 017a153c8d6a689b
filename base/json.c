#include "base/json.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
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

/* Room for n more bytes at the end of sb (the buffer keeps its NUL after them). */
static inline char *room(struct strbuf *sb, size_t n)
{
	if (sb->len + n + 1 > sb->cap)
		sb_reserve(sb, n);
	return sb->buf + sb->len;
}

static inline void added(struct strbuf *sb, size_t n)
{
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void json_put_string(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;
	/* Most strings need no escape: one copy with the quotes. */
	while ((unsigned char)*s >= 32 && *s != '"' && *s != '\\')
		s++;
	if (!*s) {
		size_t n = (size_t)(s - run);
		char *p = room(sb, n + 2);
		p[0] = '"';
		memcpy(p + 1, run, n);
		p[n + 1] = '"';
		added(sb, n + 2);
		return;
	}
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

/* Decimal digits of x, backwards from end; returns where they start. */
static char *digits_back(char *end, uint64_t x)
{
	do {
		*--end = (char)('0' + x % 10);
		x /= 10;
	} while (x);
	return end;
}

/* cJSON's print_number(): 15 significant digits unless they do not read back, then 17; NaN and
 * infinities as null. (cJSON after 1.7.15 prints integral values with %d: the same text, but for
 * -0, which it prints as 0.) Two exact shortcuts give the same text without printf and strtod,
 * which were a quarter of the daemon's CPU in a task-instance list:
 *  - an integer below 1e15 in magnitude: %1.15g prints its digits;
 *  - v == m / 1e6 for an integer m < 1e15 (durations and other microsecond values), |v| >= 1e-4:
 *    IEEE division rounds correctly, so v is the double nearest to the decimal m * 10^-6, which
 *    has at most 15 significant digits; %1.15g prints exactly those digits (v is within half an
 *    ulp of them, far inside the 15-digit rounding interval), trailing zeros dropped, and they
 *    read back as v. */
void json_put_number(struct strbuf *sb, double v)
{
	char buf[40];
	if (isnan(v) || isinf(v)) {
		sb_puts(sb, "null");
		return;
	}
	double a = fabs(v);
	if (a < 1e15) {
		char *end = buf + sizeof(buf), *p = NULL;
		if (v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
			p = digits_back(end, (uint64_t)a);
		} else if (a >= 1e-4) {
			double m = nearbyint(a * 1e6);
			if (m < 1e15 && m / 1e6 == a) { /* m: at most 15 digits, exact in a double */
				uint64_t u = (uint64_t)m;
				unsigned frac = (unsigned)(u % 1000000);
				int places = 6;
				while (frac % 10 == 0) { /* frac != 0: a is no integer */
					frac /= 10;
					places--;
				}
				p = end;
				for (int i = 0; i < places; i++) {
					*--p = (char)('0' + frac % 10);
					frac /= 10;
				}
				*--p = '.';
				p = digits_back(p, u / 1000000);
			}
		}
		if (p) {
			if (v < 0)
				*--p = '-';
			sb_add(sb, p, (size_t)(end - p));
			return;
		}
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

void json_obj_key_n(struct json_obj *o, const char *key, size_t n)
{
	/* Keys are the callers' literals, which need no escapes: one copy of ,"key": */
	char *p = room(o->sb, n + 4), *q = p;
	if (o->n++)
		*q++ = ',';
	*q++ = '"';
	memcpy(q, key, n);
	q += n;
	*q++ = '"';
	*q++ = ':';
	added(o->sb, (size_t)(q - p));
}

void json_obj_str_n(struct json_obj *o, const char *key, size_t klen, const char *v)
{
	json_obj_key_n(o, key, klen);
	if (v)
		json_put_string(o->sb, v);
	else
		sb_puts(o->sb, "null");
}

void json_obj_num_n(struct json_obj *o, const char *key, size_t klen, double v)
{
	json_obj_key_n(o, key, klen);
	json_put_number(o->sb, v);
}

void json_obj_bool_n(struct json_obj *o, const char *key, size_t klen, bool v)
{
	json_obj_key_n(o, key, klen);
	sb_puts(o->sb, v ? "true" : "false");
}

void json_obj_null_n(struct json_obj *o, const char *key, size_t klen)
{
	json_obj_key_n(o, key, klen);
	sb_puts(o->sb, "null");
}

void json_obj_time_n(struct json_obj *o, const char *key, size_t klen, usec_t t)
{
	char iso[ISO_BUFSZ];
	if (t == USEC_NONE) {
		json_obj_null_n(o, key, klen);
		return;
	}
	format_iso8601(t, iso, sizeof(iso));
	json_obj_str_n(o, key, klen, iso);
}
