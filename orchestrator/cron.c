/* Cron expressions: parsing into bit sets, and searching fire times zone- and DST-aware.
 *
 * The search works in "wall seconds" (a zone's local clock written as if it were UTC, see
 * tz.h). A zone's history is a sequence of spans of constant offset; inside one span wall time
 * and UTC differ by a constant, so the first matching wall time in the span's wall range gives
 * the first fire time in the span. Walking spans in order therefore yields fire times in UTC
 * order, with overlaps and gaps handled at the span boundaries. Inside a span, wall_next() and
 * wall_prev() jump over whole months, days and hours that cannot match. */
#include "orchestrator/cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

/* 400 Gregorian years repeat exactly, so an expression that can match at all (see never_fires)
 * matches within this horizon. */
#define CRON_HORIZON (INT64_C(146097) * 86400)
/* Arguments beyond about +-34,000 years are refused rather than risking overflow. */
#define CRON_TIME_LIMIT (INT64_C(1) << 40)
#define ONCE_UNSET INT64_MIN

struct cron {
	enum cron_kind kind;
	uint64_t minutes;	/* bit i: minute i */
	uint32_t hours;		/* bit i: hour i */
	uint32_t doms;		/* bits 1-31 */
	uint16_t months;	/* bits 1-12 */
	uint8_t dows;		/* bits 0-6, 0 = Sunday (7 is folded into 0) */
	bool dom_star, dow_star;	/* the field is exactly '*' (croniter's rule: '*\/2' restricts) */
	bool fixed_time;	/* see cron.h: single minute and hour without '*' or '/' */
	bool never;		/* no calendar day can ever match */
	int64_t every;		/* CRON_EVERY: period in seconds */
	int64_t once_at;	/* CRON_ONCE: the fire time, or ONCE_UNSET */
	char *expr;
};

/* ---- parsing ---- */

enum { F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

struct field_def {
	const char *name;
	int lo, hi;		/* accepted values */
	int open_hi;		/* the end of "*" and "N/S" */
	int size;		/* the largest step */
	const char *const *names;	/* 3-letter names for lo, lo + 1, ... or NULL */
};

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const struct field_def field_defs[F_COUNT] = {
	[F_MIN] = { "minute", 0, 59, 59, 60, NULL },
	[F_HOUR] = { "hour", 0, 23, 23, 24, NULL },
	[F_DOM] = { "day-of-month", 1, 31, 31, 31, NULL },
	[F_MON] = { "month", 1, 12, 12, 12, month_names },
	[F_DOW] = { "day-of-week", 0, 7, 6, 7, dow_names },
};

static const struct {
	const char *name, *fields;
} presets[] = {
	{ "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" },  { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

/* Where parse errors go: every message starts with the whole expression. */
struct perr {
	const char *expr;
	char *buf;
	size_t len;
};

static int perr_set(struct perr *pe, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr_set(struct perr *pe, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!pe->buf || pe->len == 0)
		return -EINVAL;
	n = snprintf(pe->buf, pe->len, "bad cron expression \"%s\": ", pe->expr);
	if (n >= 0 && (size_t)n < pe->len) {
		va_start(ap, fmt);
		vsnprintf(pe->buf + n, pe->len - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Reads a number or a name at *p (not past end). Names are case-insensitive 3-letter words;
 * "SUN" closing a day-of-week range counts as 7. */
static int parse_value(const struct field_def *f, const char **p, const char *end, bool range_end,
		       int *out, struct perr *pe)
{
	const char *s = *p;
	long v = 0;

	if (s < end && isdigit((unsigned char)*s)) {
		for (; s < end && isdigit((unsigned char)*s); s++)
			v = v < 100000 ? v * 10 + (*s - '0') : v;	/* saturates: out of range */
		if (v < f->lo || v > f->hi)
			return perr_set(pe, "%s %.*s out of range %d-%d", f->name, (int)(s - *p), *p,
					f->lo, f->hi);
	} else {
		while (s < end && isalpha((unsigned char)*s))
			s++;
		v = -1;
		for (int i = 0; f->names && f->names[i]; i++)
			if (s - *p == 3 && strncasecmp(*p, f->names[i], 3) == 0)
				v = f->lo + i;
		if (v < 0 && s == *p)
			return perr_set(pe, "%s: expected a number in \"%.*s\"", f->name,
					(int)(end - *p), *p);
		if (v < 0)
			return perr_set(pe, "%s: unknown %s \"%.*s\"", f->name,
					f->names ? "name" : "word", (int)(s - *p), *p);
		if (range_end && f->names == dow_names && v == 0)
			v = 7;
	}
	*p = s;
	*out = (int)v;
	return 0;
}

static int parse_step(const struct field_def *f, const char **p, const char *end, int *step,
		      struct perr *pe)
{
	const char *s = *p;
	long v = 0;

	while (s < end && isdigit((unsigned char)*s) && v < 100000)
		v = v * 10 + (*s++ - '0');
	if (s == *p || s != end)
		return perr_set(pe, "%s: bad step \"%.*s\"", f->name, (int)(end - *p), *p);
	if (v < 1 || v > f->size)
		return perr_set(pe, "%s step %ld out of range 1-%d", f->name, v, f->size);
	*p = s;
	*step = (int)v;
	return 0;
}

/* One list item: "*", "N", "N-M", "*\/S", "N-M/S" or "N/S". */
static int parse_item(const struct field_def *f, const char *s, const char *end, uint64_t *bits,
		      struct perr *pe)
{
	const char *p = s;
	int a, b, step = 1, rc;
	bool single = false;

	if (p == end)
		return perr_set(pe, "%s: empty item in list", f->name);
	if (*p == '*') {
		p++;
		a = f->lo;
		b = f->open_hi;
	} else {
		if ((rc = parse_value(f, &p, end, false, &a, pe)))
			return rc;
		b = a;
		single = true;
		if (p < end && *p == '-') {
			p++;
			single = false;
			if ((rc = parse_value(f, &p, end, true, &b, pe)))
				return rc;
			if (b < a)
				return perr_set(pe, "%s range %.*s runs backwards", f->name,
						(int)(end - s), s);
		}
	}
	if (p < end && *p == '/') {
		p++;
		if ((rc = parse_step(f, &p, end, &step, pe)))
			return rc;
		if (single && a < f->open_hi)
			b = f->open_hi;	/* "N/S": from N to the field's end */
	}
	if (p != end)
		return perr_set(pe, "%s: unexpected \"%.*s\"", f->name, (int)(end - p), p);
	for (int v = a; v <= b; v += step)
		*bits |= UINT64_C(1) << v;
	return 0;
}

static int parse_field(const struct field_def *f, const char *s, const char *end, uint64_t *bits,
		       struct perr *pe)
{
	*bits = 0;
	for (;;) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *item_end = comma ? comma : end;
		int rc = parse_item(f, s, item_end, bits, pe);
		if (rc)
			return rc;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

static bool field_is_single(const char *s, const char *end, uint64_t bits)
{
	for (const char *p = s; p < end; p++)
		if (*p == '*' || *p == '/')
			return false;
	return __builtin_popcountll(bits) == 1;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* True when no calendar day can ever match. Over the 400-year cycle every existing date falls
 * on every weekday, so only day-of-month/month combinations that never exist (30 February,
 * 31 April) can make a schedule empty, and only when the days are ANDed. */
static bool never_fires(const struct cron *c)
{
	static const int max_days[13] = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (!c->dom_star && !c->dow_star)
		return false;
	for (int m = 1; m <= 12; m++)
		if ((c->months >> m & 1) && (c->doms & ((UINT64_C(2) << max_days[m]) - 2)))
			return false;
	return true;
}

static int parse_fields(struct cron *c, const char *text, struct perr *pe)
{
	const char *start[F_COUNT], *end[F_COUNT], *p = text;
	uint64_t bits[F_COUNT];
	int n = 0, rc;

	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (n == F_COUNT)
			return perr_set(pe, "expected 5 fields (minute hour day-of-month month "
					    "day-of-week), got more");
		start[n] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		end[n++] = p;
	}
	if (n != F_COUNT)
		return perr_set(pe, "expected 5 fields (minute hour day-of-month month "
				    "day-of-week), got %d", n);
	for (int i = 0; i < F_COUNT; i++)
		if ((rc = parse_field(&field_defs[i], start[i], end[i], &bits[i], pe)))
			return rc;
	c->minutes = bits[F_MIN];
	c->hours = (uint32_t)bits[F_HOUR];
	c->doms = (uint32_t)bits[F_DOM];
	c->months = (uint16_t)bits[F_MON];
	c->dows = (uint8_t)((bits[F_DOW] | bits[F_DOW] >> 7) & 0x7f);
	/* croniter (Airflow) ORs the day fields unless one of them counts as "*": written "*", or
	 * covering every day ("1-31", "*\/1", "0-6") while the other field holds a '*' somewhere
	 * (its rule against over-optimising). */
	bool dom_all = c->doms == 0xfffffffeu, dow_all = c->dows == 0x7f;
	bool dom_has_star = memchr(start[F_DOM], '*', (size_t)(end[F_DOM] - start[F_DOM])) != NULL;
	bool dow_has_star = memchr(start[F_DOW], '*', (size_t)(end[F_DOW] - start[F_DOW])) != NULL;
	c->dom_star = (end[F_DOM] - start[F_DOM] == 1 && *start[F_DOM] == '*') || (dom_all && dow_has_star);
	c->dow_star = (end[F_DOW] - start[F_DOW] == 1 && *start[F_DOW] == '*') || (dow_all && dom_has_star);
	c->fixed_time = field_is_single(start[F_MIN], end[F_MIN], bits[F_MIN]) &&
			field_is_single(start[F_HOUR], end[F_HOUR], bits[F_HOUR]);
	c->never = never_fires(c);
	return 0;
}

static int parse_every(struct cron *c, const char *arg, struct perr *pe)
{
	usec_t d;

	while (isspace((unsigned char)*arg))
		arg++;
	if (!*arg)
		return perr_set(pe, "@every needs a duration, e.g. \"@every 15m\"");
	if (parse_duration(arg, &d) < 0)
		return perr_set(pe, "bad duration \"%s\" (use e.g. 90s, 15m, 1h30m, 2d)", arg);
	if (d < USEC_PER_SEC || d % USEC_PER_SEC != 0)
		return perr_set(pe, "@every needs a whole number of seconds, at least 1s");
	c->kind = CRON_EVERY;
	c->every = d / USEC_PER_SEC;
	return 0;
}

static int parse_preset(struct cron *c, const char *text, struct perr *pe)
{
	size_t n = 0;

	while (text[n] && !isspace((unsigned char)text[n]))
		n++;
	if (n == 6 && strncasecmp(text, "@every", 6) == 0)
		return parse_every(c, text + 6, pe);
	for (const char *p = text + n; *p; p++)
		if (!isspace((unsigned char)*p))
			return perr_set(pe, "%.*s takes no argument", (int)n, text);
	if (n == 5 && strncasecmp(text, "@once", 5) == 0) {
		c->kind = CRON_ONCE;
		return 0;
	}
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (strlen(presets[i].name) == n && strncasecmp(text, presets[i].name, n) == 0)
			return parse_fields(c, presets[i].fields, pe);
	return perr_set(pe, "unknown preset \"%.*s\" (use @hourly, @daily, @midnight, @weekly, "
			    "@monthly, @yearly, @annually, @once or @every D)", (int)n, text);
}

struct cron *cron_parse(const char *expr, char *err, size_t errlen)
{
	struct perr pe = { expr ? expr : "", err, errlen };
	struct cron *c;
	const char *p = expr;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!expr) {
		perr_set(&pe, "missing expression");
		return NULL;
	}
	while (isspace((unsigned char)*p))
		p++;
	c = xcalloc(1, sizeof(*c));
	c->once_at = ONCE_UNSET;
	c->expr = xstrdup(expr);
	if (*p == '@')
		rc = parse_preset(c, p, &pe);
	else if (*p == '\0')
		rc = perr_set(&pe, "empty expression");
	else
		rc = parse_fields(c, p, &pe);
	if (rc) {
		cron_free(c);
		return NULL;
	}
	return c;
}

void cron_free(struct cron *c)
{
	if (!c)
		return;
	free(c->expr);
	free(c);
}

void cron_set_start(struct cron *c, int64_t start_utc_sec)
{
	if (c->kind == CRON_ONCE)
		c->once_at = start_utc_sec;
}

enum cron_kind cron_kind(const struct cron *c)
{
	return c->kind;
}

int64_t cron_every_period(const struct cron *c)
{
	return c->kind == CRON_EVERY ? c->every : 0;
}

const char *cron_expr(const struct cron *c)
{
	return c->expr;
}

/* ---- matching wall-clock times ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* The lowest set bit at or above i (i <= 63), or -1. */
static int bit_next(uint64_t bits, int i)
{
	bits >>= i;
	return bits ? i + __builtin_ctzll(bits) : -1;
}

/* The highest set bit at or below i (0 <= i <= 63), or -1. */
static int bit_prev(uint64_t bits, int i)
{
	bits &= i >= 63 ? ~UINT64_C(0) : (UINT64_C(2) << i) - 1;
	return bits ? 63 - __builtin_clzll(bits) : -1;
}

/* A wall-clock minute being searched; day is always valid for (y, mon). */
struct civ {
	int64_t y;
	int mon, day, hour, min;
};

static void civ_from_wall(int64_t w, struct civ *t)
{
	struct tz_tm tm;
	tz_split(w, &tm);
	*t = (struct civ){ tm.year, tm.mon, tm.mday, tm.hour, tm.min };
}

static int64_t civ_day_wall(const struct civ *t)
{
	return tz_join(t->y, t->mon, t->day, 0, 0, 0);
}

static bool day_matches(const struct cron *c, const struct civ *t)
{
	int64_t days = floor_div(civ_day_wall(t), 86400);
	int wday = (int)(days - floor_div(days + 4, 7) * 7 + 4);
	bool dom = c->doms >> t->day & 1, dow = c->dows >> wday & 1;

	return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/* Moves to 00:00 of the first day of the next month whose bit is set. */
static void month_forward(const struct cron *c, struct civ *t)
{
	int m = t->mon < 12 ? bit_next(c->months, t->mon + 1) : -1;
	if (m < 0) {
		t->y++;
		m = bit_next(c->months, 1);
	}
	*t = (struct civ){ t->y, m, 1, 0, 0 };
}

static void day_forward(struct civ *t)
{
	if (++t->day > month_days(t->y, t->mon)) {
		t->day = 1;
		if (++t->mon > 12) {
			t->mon = 1;
			t->y++;
		}
	}
	t->hour = t->min = 0;
}

/* Stores the first matching wall minute >= w and < limit; false when there is none. */
static bool wall_next(const struct cron *c, int64_t w, int64_t limit, int64_t *out)
{
	struct civ t;
	int h, m;

	civ_from_wall(floor_div(w, 60) * 60 + (w % 60 != 0 ? 60 : 0), &t);
	for (;;) {
		if (civ_day_wall(&t) >= limit)
			return false;
		if (!(c->months >> t.mon & 1)) {
			month_forward(c, &t);
			continue;
		}
		if (!day_matches(c, &t) || (h = bit_next(c->hours, t.hour)) < 0) {
			day_forward(&t);
			continue;
		}
		if (h != t.hour) {
			t.hour = h;
			t.min = 0;
		}
		if ((m = bit_next(c->minutes, t.min)) < 0) {
			if (++t.hour > 23)
				day_forward(&t);
			else
				t.min = 0;
			continue;
		}
		t.min = m;
		*out = civ_day_wall(&t) + t.hour * 3600 + t.min * 60;
		return *out < limit;
	}
}

/* Moves to 23:59 of the last day of the previous month whose bit is set. */
static void month_back(const struct cron *c, struct civ *t)
{
	int m = t->mon > 1 ? bit_prev(c->months, t->mon - 1) : -1;
	if (m < 1) {
		t->y--;
		m = bit_prev(c->months, 12);
	}
	*t = (struct civ){ t->y, m, month_days(t->y, m), 23, 59 };
}

static void day_back(struct civ *t)
{
	if (--t->day < 1) {
		if (--t->mon < 1) {
			t->mon = 12;
			t->y--;
		}
		t->day = month_days(t->y, t->mon);
	}
	t->hour = 23;
	t->min = 59;
}

/* Stores the last matching wall minute <= w and >= floor; false when there is none. */
static bool wall_prev(const struct cron *c, int64_t w, int64_t floor, int64_t *out)
{
	struct civ t;
	int h, m;

	civ_from_wall(floor_div(w, 60) * 60, &t);
	for (;;) {
		if (civ_day_wall(&t) + 86400 <= floor)
			return false;
		if (!(c->months >> t.mon & 1)) {
			month_back(c, &t);
			continue;
		}
		if (!day_matches(c, &t) || (h = bit_prev(c->hours, t.hour)) < 0) {
			day_back(&t);
			continue;
		}
		if (h != t.hour) {
			t.hour = h;
			t.min = 59;
		}
		if ((m = bit_prev(c->minutes, t.min)) < 0) {
			if (t.hour-- == 0)
				day_back(&t);
			else
				t.min = 59;
			continue;
		}
		t.min = m;
		*out = civ_day_wall(&t) + t.hour * 3600 + t.min * 60;
		return *out >= floor;
	}
}

/* ---- fire times in a zone ---- */

/* The offset in effect just before span s began (its own offset if it has no start). */
static int32_t offset_before(const struct tz *zone, const struct tz_span *s)
{
	return s->start == INT64_MIN ? s->utcoff : tz_offset_at_utc(zone, s->start - 1);
}

/* A fixed-time job whose wall time falls in the gap before span s fires when s begins, if that
 * is still the same calendar day (a gap that runs past midnight loses the time, as in croner). */
static bool gap_fires(const struct cron *c, const struct tz_span *s, int32_t before)
{
	int64_t w, after_gap = s->start + s->utcoff;

	return c->fixed_time && before < s->utcoff &&
	       wall_next(c, s->start + before, after_gap, &w) &&
	       floor_div(w, 86400) == floor_div(after_gap, 86400);
}

static int fields_next(const struct cron *c, const struct tz *zone, int64_t after, int64_t *next)
{
	int64_t u = after + 1, horizon = after + CRON_HORIZON, w;
	struct tz_span s;

	tz_span_at(zone, u, &s);
	for (;;) {
		int32_t before = offset_before(zone, &s);
		/* Wall times [s.start + off, s.start + before) repeat ones of the previous span. */
		int64_t repeat_end = before > s.utcoff ? s.start + before : INT64_MIN;
		int64_t from = max64(u, s.start) + s.utcoff;
		int64_t limit = sat_add(min64(s.end, horizon), s.utcoff);

		if (s.start > after && gap_fires(c, &s, before)) {
			*next = s.start;
			return 0;
		}
		if (c->fixed_time && from < repeat_end)
			from = repeat_end;
		if (wall_next(c, from, limit, &w)) {
			*next = w - s.utcoff;
			return 0;
		}
		if (s.end >= horizon)
			return -ENOENT;
		u = s.end;
		tz_span_at(zone, u, &s);
	}
}

static int fields_prev(const struct cron *c, const struct tz *zone, int64_t at, int64_t *prev)
{
	int64_t u = at, floor = at - CRON_HORIZON, w;
	struct tz_span s;

	tz_span_at(zone, u, &s);
	for (;;) {
		int32_t before = offset_before(zone, &s);
		int64_t repeat_end = before > s.utcoff ? s.start + before : INT64_MIN;
		int64_t to = min64(u, s.end - 1) + s.utcoff;
		int64_t lowest = max64(s.start, floor) + s.utcoff;

		if (c->fixed_time)
			lowest = max64(lowest, repeat_end);
		if (wall_prev(c, to, lowest, &w)) {
			*prev = w - s.utcoff;
			return 0;
		}
		if (s.start > floor && gap_fires(c, &s, before)) {
			*prev = s.start;
			return 0;
		}
		if (s.start <= floor)
			return -ENOENT;
		u = s.start - 1;
		tz_span_at(zone, u, &s);
	}
}

int cron_next(const struct cron *c, const struct tz *zone, int64_t after_utc_sec,
	      int64_t *next_utc_sec)
{
	if (after_utc_sec < -CRON_TIME_LIMIT || after_utc_sec > CRON_TIME_LIMIT)
		return -ERANGE;
	switch (c->kind) {
	case CRON_EVERY:
		*next_utc_sec = (floor_div(after_utc_sec, c->every) + 1) * c->every;
		return 0;
	case CRON_ONCE:
		if (c->once_at == ONCE_UNSET || c->once_at <= after_utc_sec)
			return -ENOENT;
		*next_utc_sec = c->once_at;
		return 0;
	default:
		if (c->never)
			return -ENOENT;
		return fields_next(c, zone, after_utc_sec, next_utc_sec);
	}
}

int cron_prev(const struct cron *c, const struct tz *zone, int64_t at_utc_sec,
	      int64_t *prev_utc_sec)
{
	if (at_utc_sec < -CRON_TIME_LIMIT || at_utc_sec > CRON_TIME_LIMIT)
		return -ERANGE;
	switch (c->kind) {
	case CRON_EVERY:
		*prev_utc_sec = floor_div(at_utc_sec, c->every) * c->every;
		return 0;
	case CRON_ONCE:
		if (c->once_at == ONCE_UNSET || c->once_at > at_utc_sec)
			return -ENOENT;
		*prev_utc_sec = c->once_at;
		return 0;
	default:
		if (c->never)
			return -ENOENT;
		return fields_prev(c, zone, at_utc_sec, prev_utc_sec);
	}
}
