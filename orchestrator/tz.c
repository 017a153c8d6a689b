/* IANA time zones from TZif files (RFC 8536), thread-safe and independent of $TZ.
 *
 * A zone is a sorted array of transition instants, each naming the local time type that starts
 * there, plus an optional POSIX TZ rule (the file's footer) that continues the zone after the
 * last transition. Lookups never allocate, so a loaded zone can be shared freely. */
#include "orchestrator/tz.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_MAX_FILE (1u << 20)
#define TZ_MAX_NAME 255
#define TZ_ABBR_MAX 16
/* RFC 8536 bounds UT offsets to (-25h, 26h); anything outside is a corrupt file. */
#define TZ_OFF_MIN (-89999)
#define TZ_OFF_MAX 93599
/* The POSIX rule is evaluated only within about +-35,000 years of the epoch; beyond that the
 * zone keeps standard time (nothing in sluice looks that far). */
#define TZ_RULE_LIMIT (INT64_C(1) << 40)

/* A local time type: offset, DST flag and abbreviation (index into chars). */
struct tz_type {
	int32_t off;
	bool isdst;
	uint32_t abbr;
};

/* A POSIX TZ rule date: 'J' Julian day 1-365 ignoring Feb 29, 'D' zero-based day 0-365,
 * or 'M' month a, week b (5 = last), weekday c; time is seconds after local midnight. */
struct tz_rdate {
	char kind;
	int a, b, c;
	int32_t time;
};

struct tz_rule {
	int32_t std_off, dst_off;	/* seconds east of UTC */
	bool has_dst;
	struct tz_rdate start, end;
	char std_abbr[TZ_ABBR_MAX], dst_abbr[TZ_ABBR_MAX];
};

/* Immutable after tz_load(). times[i] starts type types[idx[i]]; before times[0] type 0
 * applies; after times[ntimes - 1] the rule applies when has_rule. */
struct tz {
	char *name;
	int64_t *times;
	uint8_t *idx;
	size_t ntimes;
	struct tz_type *types;
	size_t ntypes;
	char *chars;
	size_t nchars;
	bool has_rule;
	struct tz_rule rule;
	int32_t off_lo, off_hi;
};

static struct tz_type utc_type = { 0, false, 0 };
static char utc_chars[] = "UTC";
static struct tz utc_zone = {
	.name = (char *)"UTC", .types = &utc_type, .ntypes = 1, .chars = utc_chars, .nchars = 4,
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
struct tz_cache_ent {
	struct tz_cache_ent *next;
	struct tz *zone;
};
static struct tz_cache_ent *cache_head;

/* ---- small arithmetic helpers ---- */

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

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

static int weekday_of_days(int64_t days)
{
	return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

static void set_err(char **err, char *msg)
{
	if (err)
		*err = msg;
	else
		free(msg);
}

/* ---- civil fields ---- */

void tz_split(int64_t secs, struct tz_tm *out)
{
	int64_t days = floor_div(secs, 86400), rem = secs % 86400, y;
	unsigned m, d;

	if (rem < 0)
		rem += 86400;
	civil_from_days(days, &y, &m, &d);
	out->year = y;
	out->mon = (int)m;
	out->mday = (int)d;
	out->hour = (int)(rem / 3600);
	out->min = (int)(rem / 60 % 60);
	out->sec = (int)(rem % 60);
	out->wday = weekday_of_days(days);
	out->yday = (int)(days - days_from_civil(y, 1, 1));
	out->utcoff = 0;
	out->isdst = false;
	out->abbr = "UTC";
}

int64_t tz_join(int64_t year, int mon, int mday, int hour, int min, int sec)
{
	return days_from_civil(year, (unsigned)mon, (unsigned)mday) * 86400 + hour * 3600 +
	       min * 60 + sec;
}

/* ---- the POSIX TZ rule (footer) ---- */

/* Days since the epoch of a rule date in year y. */
static int64_t rdate_days(const struct tz_rdate *r, int64_t y)
{
	int64_t jan1 = days_from_civil(y, 1, 1), first, day;

	switch (r->kind) {
	case 'J':
		return jan1 + r->a - 1 + (is_leap(y) && r->a >= 60);
	case 'D':
		return jan1 + r->a;
	default:
		first = days_from_civil(y, (unsigned)r->a, 1);
		day = first + (r->c - weekday_of_days(first) + 7) % 7 + (r->b - 1) * 7;
		while (day >= first + month_days(y, r->a))
			day -= 7;
		return day;
	}
}

/* The instants DST starts and ends in year y. */
static void rule_year(const struct tz_rule *r, int64_t y, int64_t *start, int64_t *end)
{
	*start = rdate_days(&r->start, y) * 86400 + r->start.time - r->std_off;
	*end = rdate_days(&r->end, y) * 86400 + r->end.time - r->dst_off;
}

struct rule_ev {
	int64_t t;
	bool dst;
};

/* The span containing u under the rule, not starting before floor. */
static void rule_span(const struct tz *z, int64_t u, int64_t floor, struct tz_span *s)
{
	const struct tz_rule *r = &z->rule;
	struct rule_ev ev[6];
	int64_t y;
	unsigned m, d;
	int n = 0, k = -1;

	*s = (struct tz_span){ floor, INT64_MAX, r->std_off, false };
	if (!r->has_dst || u >= TZ_RULE_LIMIT) {
		if (r->has_dst && floor < TZ_RULE_LIMIT)
			s->start = TZ_RULE_LIMIT;
		return;
	}
	if (u < -TZ_RULE_LIMIT) {
		s->end = -TZ_RULE_LIMIT;
		return;
	}
	civil_from_days(floor_div(u, 86400), &y, &m, &d);
	for (int64_t yy = y - 1; yy <= y + 1; yy++) {
		int64_t a, b;
		rule_year(r, yy, &a, &b);
		/* Insertion sort keeps generation order for equal instants, so with all-year
		 * DST (end of one year == start of the next) the later event wins. */
		struct rule_ev e[2] = { { a, true }, { b, false } };
		for (int j = 0; j < 2; j++) {
			int i = n++;
			while (i > 0 && ev[i - 1].t > e[j].t) {
				ev[i] = ev[i - 1];
				i--;
			}
			ev[i] = e[j];
		}
	}
	for (int i = 0; i < n && ev[i].t <= u; i++)
		k = i;
	if (k >= 0) {
		s->isdst = ev[k].dst;
		s->utcoff = ev[k].dst ? r->dst_off : r->std_off;
		if (ev[k].t > floor)
			s->start = ev[k].t;
	}
	/* Rule times may reach a week past the year's end; when every event computed lies at or
	 * before u, stop the span early and let the next lookup evaluate later years. */
	s->end = k + 1 < n ? ev[k + 1].t : days_from_civil(y + 1, 12, 1) * 86400;
}

/* ---- span lookup ---- */

static const char *type_abbr(const struct tz *z, size_t type)
{
	return z->chars + z->types[type].abbr;
}

static void span_lookup(const struct tz *z, int64_t u, struct tz_span *s, const char **abbr)
{
	size_t lo = 0, hi = z->ntimes;

	if (z->ntimes == 0 || u < z->times[0]) {
		if (z->ntimes == 0 && z->has_rule)
			goto rule;
		*s = (struct tz_span){ INT64_MIN, z->ntimes ? z->times[0] : INT64_MAX,
				       z->types[0].off, z->types[0].isdst };
		*abbr = type_abbr(z, 0);
		return;
	}
	while (hi - lo > 1) {	/* invariant: times[lo] <= u < times[hi] (hi may be ntimes) */
		size_t mid = lo + (hi - lo) / 2;
		if (z->times[mid] <= u)
			lo = mid;
		else
			hi = mid;
	}
	if (lo == z->ntimes - 1 && z->has_rule)
		goto rule;
	*s = (struct tz_span){ z->times[lo], hi < z->ntimes ? z->times[hi] : INT64_MAX,
			       z->types[z->idx[lo]].off, z->types[z->idx[lo]].isdst };
	*abbr = type_abbr(z, z->idx[lo]);
	return;
rule:
	rule_span(z, u, z->ntimes ? z->times[z->ntimes - 1] : INT64_MIN, s);
	*abbr = s->isdst ? z->rule.dst_abbr : z->rule.std_abbr;
}

void tz_span_at(const struct tz *z, int64_t utc_sec, struct tz_span *out)
{
	const char *abbr;
	span_lookup(z ? z : &utc_zone, utc_sec, out, &abbr);
}

int32_t tz_offset_at_utc(const struct tz *z, int64_t utc_sec)
{
	struct tz_span s;
	tz_span_at(z, utc_sec, &s);
	return s.utcoff;
}

void tz_offset_range(const struct tz *z, int32_t *lo, int32_t *hi)
{
	if (!z)
		z = &utc_zone;
	*lo = z->off_lo;
	*hi = z->off_hi;
}

const char *tz_name(const struct tz *z)
{
	return z ? z->name : utc_zone.name;
}

void tz_localtime(const struct tz *z, int64_t utc_sec, struct tz_tm *out)
{
	struct tz_span s;
	const char *abbr;

	span_lookup(z ? z : &utc_zone, utc_sec, &s, &abbr);
	tz_split(sat_add(utc_sec, s.utcoff), out);
	out->utcoff = s.utcoff;
	out->isdst = s.isdst;
	out->abbr = abbr;
}

/* A local time L maps to u = L - off for every span [start, end) with start <= u < end. Since
 * every offset lies in [off_lo, off_hi], only spans meeting [L - off_hi, L - off_lo] matter. */
enum tz_local_kind tz_local_to_utc(const struct tz *z, int64_t local_sec, int64_t utc[2])
{
	struct tz_span s;
	int64_t first = sat_add(local_sec, -(int64_t)(z ? z : &utc_zone)->off_hi);
	int64_t last = sat_add(local_sec, -(int64_t)(z ? z : &utc_zone)->off_lo);
	int n = 0;
	bool gap = false;

	utc[0] = utc[1] = first;
	tz_span_at(z, first, &s);
	for (;;) {
		int64_t u = sat_add(local_sec, -(int64_t)s.utcoff);
		if (u >= s.start && u < s.end) {
			if (n++ == 0)
				utc[0] = u;
			utc[1] = u;
		} else if (n == 0 && !gap && u < s.start) {
			/* L lies after the previous span's wall range and before this one's. */
			utc[0] = utc[1] = s.start;
			gap = true;
		}
		if (s.end == INT64_MAX || s.end > last)
			break;
		tz_span_at(z, s.end, &s);
	}
	if (n == 0)
		return TZ_LOCAL_GAP;
	return n == 1 ? TZ_LOCAL_UNIQUE : TZ_LOCAL_OVERLAP;
}

/* ---- POSIX TZ string parsing ---- */

struct pstr {
	const char *p;
};

static bool p_num(struct pstr *ps, int max, int *out)
{
	int v = 0, nd = 0;
	while (isdigit((unsigned char)*ps->p) && nd < 4) {
		v = v * 10 + (*ps->p++ - '0');
		nd++;
	}
	if (nd == 0 || v > max)
		return false;
	*out = v;
	return true;
}

/* [+-]h[h[h]][:mm[:ss]] into seconds; max_h bounds the hours (24 for offsets, 167 for times). */
static bool p_hms(struct pstr *ps, int max_h, int32_t *out)
{
	int sign = 1, h, m = 0, s = 0;

	if (*ps->p == '+' || *ps->p == '-')
		sign = *ps->p++ == '-' ? -1 : 1;
	if (!p_num(ps, max_h, &h))
		return false;
	if (*ps->p == ':') {
		ps->p++;
		if (!p_num(ps, 59, &m))
			return false;
		if (*ps->p == ':') {
			ps->p++;
			if (!p_num(ps, 59, &s))
				return false;
		}
	}
	*out = sign * (h * 3600 + m * 60 + s);
	return true;
}

static bool p_abbr(struct pstr *ps, char *out)
{
	size_t n = 0;
	bool quoted = *ps->p == '<';

	if (quoted)
		ps->p++;
	while (quoted ? (isalnum((unsigned char)*ps->p) || *ps->p == '+' || *ps->p == '-')
		      : isalpha((unsigned char)*ps->p)) {
		if (n + 1 >= TZ_ABBR_MAX)
			return false;
		out[n++] = *ps->p++;
	}
	out[n] = '\0';
	if (quoted && *ps->p++ != '>')
		return false;
	return n >= 3;
}

static bool p_rdate(struct pstr *ps, struct tz_rdate *r)
{
	r->time = 7200;
	if (*ps->p == 'J') {
		ps->p++;
		r->kind = 'J';
		if (!p_num(ps, 365, &r->a) || r->a < 1)
			return false;
	} else if (*ps->p == 'M') {
		ps->p++;
		r->kind = 'M';
		if (!p_num(ps, 12, &r->a) || r->a < 1 || *ps->p++ != '.' || !p_num(ps, 5, &r->b) ||
		    r->b < 1 || *ps->p++ != '.' || !p_num(ps, 6, &r->c))
			return false;
	} else {
		r->kind = 'D';
		if (!p_num(ps, 365, &r->a))
			return false;
	}
	if (*ps->p == '/') {
		ps->p++;
		return p_hms(ps, 167, &r->time);
	}
	return true;
}

/* Parses a TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". POSIX offsets count west, so the
 * sign flips. Without rules, a DST zone uses the US rules as glibc does. */
static bool posix_parse(const char *s, struct tz_rule *r)
{
	struct pstr ps = { s };
	int32_t off;

	memset(r, 0, sizeof(*r));
	if (!p_abbr(&ps, r->std_abbr) || !p_hms(&ps, 24, &off))
		return false;
	r->std_off = r->dst_off = -off;
	if (*ps.p == '\0')
		return true;
	if (!p_abbr(&ps, r->dst_abbr))
		return false;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*ps.p != ',' && *ps.p != '\0') {
		if (!p_hms(&ps, 24, &off))
			return false;
		r->dst_off = -off;
	}
	if (*ps.p == '\0') {
		r->start = (struct tz_rdate){ 'M', 3, 2, 0, 7200 };
		r->end = (struct tz_rdate){ 'M', 11, 1, 0, 7200 };
		return true;
	}
	if (*ps.p++ != ',' || !p_rdate(&ps, &r->start) || *ps.p++ != ',' ||
	    !p_rdate(&ps, &r->end))
		return false;
	return *ps.p == '\0';
}

/* ---- TZif parsing ---- */

struct rd {
	const unsigned char *p;
	size_t left;
};

static const unsigned char *rd_take(struct rd *r, size_t n)
{
	const unsigned char *p = r->p;
	if (r->left < n)
		return NULL;
	r->p += n;
	r->left -= n;
	return p;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_time(const unsigned char *p, int size)
{
	if (size == 4)
		return (int32_t)be32(p);
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_hdr {
	char version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static const char *tzif_header(struct rd *r, struct tzif_hdr *h)
{
	const unsigned char *p = rd_take(r, 44);

	if (!p || memcmp(p, "TZif", 4) != 0)
		return "not a TZif file";
	h->version = (char)p[4];
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	if (h->typecnt == 0 || h->typecnt > 256 || h->charcnt == 0 || h->charcnt > 65536 ||
	    h->timecnt > 1000000 || (h->isutcnt && h->isutcnt != h->typecnt) ||
	    (h->isstdcnt && h->isstdcnt != h->typecnt))
		return "corrupt TZif header";
	if (h->leapcnt)
		return "zones with leap seconds (right/...) are not supported";
	return NULL;
}

static size_t tzif_block_size(const struct tzif_hdr *h, int tsize)
{
	return (size_t)h->timecnt * ((size_t)tsize + 1) + (size_t)h->typecnt * 6 + h->charcnt +
	       (size_t)h->leapcnt * ((size_t)tsize + 4) + h->isstdcnt + h->isutcnt;
}

static const char *tzif_times(struct tz *z, struct rd *r, const struct tzif_hdr *h, int tsize)
{
	const unsigned char *tp = rd_take(r, (size_t)h->timecnt * (size_t)tsize);
	const unsigned char *ip = rd_take(r, h->timecnt);

	if (!tp || !ip)
		return "truncated transitions";
	z->ntimes = h->timecnt;
	z->times = xmalloc((h->timecnt ? h->timecnt : 1) * sizeof(*z->times));
	z->idx = xmalloc(h->timecnt ? h->timecnt : 1);
	for (size_t i = 0; i < h->timecnt; i++) {
		z->times[i] = be_time(tp + i * (size_t)tsize, tsize);
		z->idx[i] = ip[i];
		if (ip[i] >= h->typecnt || (i > 0 && z->times[i] <= z->times[i - 1]))
			return "corrupt transitions";
	}
	return NULL;
}

static const char *tzif_types(struct tz *z, struct rd *r, const struct tzif_hdr *h)
{
	const unsigned char *tp = rd_take(r, (size_t)h->typecnt * 6);
	const unsigned char *cp = rd_take(r, h->charcnt);

	if (!tp || !cp)
		return "truncated local time types";
	z->ntypes = h->typecnt;
	z->types = xcalloc(h->typecnt, sizeof(*z->types));
	for (size_t i = 0; i < h->typecnt; i++) {
		const unsigned char *t = tp + i * 6;
		z->types[i].off = (int32_t)be32(t);
		z->types[i].isdst = t[4] != 0;
		z->types[i].abbr = t[5];
		if (z->types[i].off < TZ_OFF_MIN || z->types[i].off > TZ_OFF_MAX || t[4] > 1 ||
		    t[5] >= h->charcnt)
			return "corrupt local time type";
	}
	z->nchars = h->charcnt + 1;
	z->chars = xmalloc(z->nchars);
	memcpy(z->chars, cp, h->charcnt);
	z->chars[h->charcnt] = '\0';
	return NULL;
}

/* The footer "\nTZ-string\n" that follows a version 2+ data block. */
static const char *tzif_footer(struct tz *z, struct rd *r)
{
	const unsigned char *nl;
	char buf[128];
	size_t n;

	if (r->left == 0)
		return NULL;
	if (r->p[0] != '\n' || !(nl = memchr(r->p + 1, '\n', r->left - 1)))
		return "corrupt footer";
	n = (size_t)(nl - (r->p + 1));
	if (n == 0)
		return NULL;
	if (n >= sizeof(buf))
		return "footer TZ string too long";
	memcpy(buf, r->p + 1, n);
	buf[n] = '\0';
	if (!posix_parse(buf, &z->rule) || z->rule.std_off < TZ_OFF_MIN ||
	    z->rule.std_off > TZ_OFF_MAX || z->rule.dst_off < TZ_OFF_MIN ||
	    z->rule.dst_off > TZ_OFF_MAX)
		return "unsupported footer TZ string";
	z->has_rule = true;
	return NULL;
}

static void offset_range_init(struct tz *z)
{
	z->off_lo = z->off_hi = z->types[0].off;
	for (size_t i = 0; i < z->ntypes; i++) {
		if (z->types[i].off < z->off_lo)
			z->off_lo = z->types[i].off;
		if (z->types[i].off > z->off_hi)
			z->off_hi = z->types[i].off;
	}
	if (z->has_rule) {
		int32_t a = z->rule.std_off, b = z->rule.dst_off;
		z->off_lo = a < z->off_lo ? a : z->off_lo;
		z->off_lo = b < z->off_lo ? b : z->off_lo;
		z->off_hi = a > z->off_hi ? a : z->off_hi;
		z->off_hi = b > z->off_hi ? b : z->off_hi;
	}
}

static const char *tzif_parse(struct tz *z, const unsigned char *buf, size_t len)
{
	struct rd r = { buf, len };
	struct tzif_hdr h;
	const char *why;
	int tsize = 4;

	if ((why = tzif_header(&r, &h)))
		return why;
	if (h.version >= '2') {
		if (!rd_take(&r, tzif_block_size(&h, 4)))
			return "truncated version 1 data";
		if ((why = tzif_header(&r, &h)))
			return why;
		tsize = 8;
	}
	if ((why = tzif_times(z, &r, &h, tsize)) || (why = tzif_types(z, &r, &h)))
		return why;
	if (!rd_take(&r, h.isstdcnt + h.isutcnt))
		return "truncated indicators";
	if (tsize == 8 && (why = tzif_footer(z, &r)))
		return why;
	offset_range_init(z);
	return NULL;
}

/* ---- loading ---- */

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > TZ_MAX_NAME || name[0] == '/' || strstr(name, "..") ||
	    strstr(name, "//") || name[n - 1] == '/')
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_-+.", *p))
			return false;
	return true;
}

static struct tz *utc_new(const char *name)
{
	struct tz *z = xcalloc(1, sizeof(*z));

	z->name = xstrdup(name);
	z->types = xcalloc(1, sizeof(*z->types));
	z->ntypes = 1;
	z->chars = xstrdup("UTC");
	z->nchars = 4;
	z->times = xmalloc(sizeof(*z->times));
	z->idx = xmalloc(1);
	return z;
}

struct tz *tz_load(const char *name, char **err)
{
	const char *dir = getenv("TZDIR"), *why;
	char *path = NULL, *buf = NULL;
	size_t len = 0;
	struct tz *z = NULL;
	int rc;

	if (!name || !name_ok(name)) {
		set_err(err, xasprintf("invalid time zone name \"%s\"", name ? name : "(null)"));
		return NULL;
	}
	if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
		return utc_new(name);
	path = xasprintf("%s/%s", dir && *dir ? dir : TZ_DEFAULT_DIR, name);
	rc = read_file(path, TZ_MAX_FILE, &buf, &len);
	if (rc < 0) {
		set_err(err, rc == -ENOENT || rc == -ENOTDIR || rc == -EISDIR
				     ? xasprintf("unknown time zone \"%s\" (no file %s)", name, path)
				     : xasprintf("cannot read time zone \"%s\" from %s: %s", name,
						 path, strerror(-rc)));
		goto out;
	}
	z = xcalloc(1, sizeof(*z));
	z->name = xstrdup(name);
	if ((why = tzif_parse(z, (const unsigned char *)buf, len))) {
		set_err(err, xasprintf("time zone \"%s\" (%s): %s", name, path, why));
		tz_free(z);
		z = NULL;
	}
out:
	free(buf);
	free(path);
	return z;
}

void tz_free(struct tz *z)
{
	if (!z || z == &utc_zone)
		return;
	free(z->name);
	free(z->times);
	free(z->idx);
	free(z->types);
	free(z->chars);
	free(z);
}

const struct tz *tz_utc(void)
{
	return &utc_zone;
}

const struct tz *tz_get(const char *name, char **err)
{
	struct tz_cache_ent *e;
	struct tz *z = NULL;

	pthread_mutex_lock(&cache_lock);
	for (e = cache_head; e; e = e->next)
		if (name && strcmp(e->zone->name, name) == 0) {
			z = e->zone;
			goto out;
		}
	if ((z = tz_load(name, err))) {
		e = xmalloc(sizeof(*e));
		e->zone = z;
		e->next = cache_head;
		cache_head = e;
	}
out:
	pthread_mutex_unlock(&cache_lock);
	return z;
}

void tz_cache_free(void)
{
	pthread_mutex_lock(&cache_lock);
	while (cache_head) {
		struct tz_cache_ent *e = cache_head;
		cache_head = e->next;
		tz_free(e->zone);
		free(e);
	}
	pthread_mutex_unlock(&cache_lock);
}
