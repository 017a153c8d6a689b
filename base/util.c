#include "base/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		fatal("malloc(%zu)", n);
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		fatal("calloc(%zu, %zu)", n, m);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		fatal("realloc(%zu)", n);
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	struct strbuf sb = {0};
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	return sb_steal(&sb);
}

static void sb_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	sb->buf = xrealloc(sb->buf, cap);
	sb->cap = cap;
}

void sb_reserve(struct strbuf *sb, size_t extra) { sb_grow(sb, extra); }

void sb_add(struct strbuf *sb, const char *s, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_puts(struct strbuf *sb, const char *s) { sb_add(sb, s, strlen(s)); }
void sb_putc(struct strbuf *sb, char c) { sb_add(sb, &c, 1); }

void sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	sb_grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(sb, fmt, ap);
	va_end(ap);
}

const char *sb_str(struct strbuf *sb) { return sb->buf ? sb->buf : ""; }

char *sb_steal(struct strbuf *sb)
{
	char *s = sb->buf ? sb->buf : xstrdup("");
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return s;
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

void sb_free(struct strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

usec_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

usec_t mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* Unit table for durations; longest suffixes first so "ms" wins over "m". */
static const struct {
	const char *suffix;
	double usec;
} duration_units[] = {
	{"ms", 1e3}, {"us", 1.0}, {"s", 1e6}, {"m", 60e6}, {"h", 3600e6}, {"d", 86400e6}, {"w", 604800e6},
};

int parse_duration(const char *s, usec_t *out)
{
	double total = 0;
	const char *p = s;
	bool any = false;

	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*p))
		p++;
	while (*p) {
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || v < 0 || v != v)
			return -EINVAL;
		p = end;
		size_t i, n = sizeof(duration_units) / sizeof(duration_units[0]);
		for (i = 0; i < n; i++) {
			size_t l = strlen(duration_units[i].suffix);
			if (strncmp(p, duration_units[i].suffix, l) == 0 && !isalpha((unsigned char)p[l]))
				break;
		}
		if (i == n) {
			/* A bare number is seconds, but only as the whole string. */
			while (isspace((unsigned char)*p))
				p++;
			if (*p || any)
				return -EINVAL;
			total += v * 1e6;
			any = true;
			break;
		}
		total += v * duration_units[i].usec;
		p += strlen(duration_units[i].suffix);
		any = true;
		while (isspace((unsigned char)*p))
			p++;
	}
	if (!any || total > 1e17)
		return -EINVAL;
	*out = (usec_t)(total + 0.5);
	return 0;
}

void format_duration(usec_t d, char *buf, size_t n)
{
	struct strbuf sb = {0};
	if (d < USEC_PER_SEC && d % 1000 == 0) {
		snprintf(buf, n, "%lldms", (long long)(d / 1000));
		return;
	}
	if (d % USEC_PER_SEC) {
		snprintf(buf, n, "%.3gs", (double)d / 1e6);
		return;
	}
	long long s = d / USEC_PER_SEC;
	if (s == 0)
		sb_puts(&sb, "0s");
	if (s >= 86400) {
		sb_printf(&sb, "%lldd", s / 86400);
		s %= 86400;
	}
	if (s >= 3600) {
		sb_printf(&sb, "%lldh", s / 3600);
		s %= 3600;
	}
	if (s >= 60) {
		sb_printf(&sb, "%lldm", s / 60);
		s %= 60;
	}
	if (s)
		sb_printf(&sb, "%llds", s);
	snprintf(buf, n, "%s", sb_str(&sb));
	sb_free(&sb);
}

/* Howard Hinnant's civil-date algorithms (public domain description, re-derived here). */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

static int scan_digits(const char **p, int ndigits, int *out)
{
	int v = 0;
	for (int i = 0; i < ndigits; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += ndigits;
	*out = v;
	return 0;
}

static bool days_ok(int y, int m, int d)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m < 1 || m > 12 || d < 1)
		return false;
	int lim = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		lim = 29;
	return d <= lim;
}

int parse_iso8601(const char *s, usec_t *out)
{
	int Y, M, D, h = 0, mi = 0, sec = 0, off = 0;
	long frac = 0;
	const char *p = s;

	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*p))
		p++;
	if (scan_digits(&p, 4, &Y) || *p++ != '-' || scan_digits(&p, 2, &M) || *p++ != '-' ||
	    scan_digits(&p, 2, &D))
		return -EINVAL;
	if (!days_ok(Y, M, D))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || (*p == ' ' && isdigit((unsigned char)p[1]))) {
		p++;
		if (scan_digits(&p, 2, &h) || *p++ != ':' || scan_digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (scan_digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				p++;
				int nd = 0;
				while (isdigit((unsigned char)*p)) {
					if (nd < 6) {
						frac = frac * 10 + (*p - '0');
						nd++;
					}
					p++;
				}
				if (nd == 0)
					return -EINVAL;
				while (nd++ < 6)
					frac *= 10;
			}
		}
		if (h > 23 || mi > 59 || sec > 60)
			return -EINVAL;
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p == '-' ? -1 : 1, oh, om = 0;
			p++;
			if (scan_digits(&p, 2, &oh))
				return -EINVAL;
			if (*p == ':')
				p++;
			if (isdigit((unsigned char)*p) && scan_digits(&p, 2, &om))
				return -EINVAL;
			if (oh > 23 || om > 59)
				return -EINVAL;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p)
		return -EINVAL;
	int64_t secs = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 + sec - off;
	*out = secs * USEC_PER_SEC + frac;
	return 0;
}

static void split_usec(usec_t t, int64_t *secs, long *us)
{
	*secs = t / USEC_PER_SEC;
	*us = (long)(t % USEC_PER_SEC);
	if (*us < 0) {
		*us += USEC_PER_SEC;
		(*secs)--;
	}
}

static void civil_hms(int64_t secs, int64_t *y, unsigned *mo, unsigned *d, int *h, int *mi, int *s)
{
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;
	civil_from_days(days, y, mo, d);
	*h = (int)(rem / 3600);
	*mi = (int)(rem % 3600 / 60);
	*s = (int)(rem % 60);
}

/* Writes v as exactly `width` decimal digits (v < 10^width); returns the end. */
static char *put_digits(char *p, unsigned long v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + width;
}

void format_iso8601(usec_t t, char *buf, size_t n)
{
	int64_t secs, y;
	long us;
	unsigned mo, d;
	int h, mi, s;
	split_usec(t, &secs, &us);
	civil_hms(secs, &y, &mo, &d, &h, &mi, &s);
	if (y >= 0 && y <= 9999 && n >= ISO_BUFSZ) {
		/* The same text as the snprintf below, written digit by digit: API lists format
		 * thousands of these per request. */
		char *p = buf;
		p = put_digits(p, (unsigned long)y, 4), *p++ = '-';
		p = put_digits(p, mo, 2), *p++ = '-';
		p = put_digits(p, d, 2), *p++ = 'T';
		p = put_digits(p, (unsigned long)h, 2), *p++ = ':';
		p = put_digits(p, (unsigned long)mi, 2), *p++ = ':';
		p = put_digits(p, (unsigned long)s, 2);
		if (us)
			*p++ = '.', p = put_digits(p, (unsigned long)us, 6);
		memcpy(p, "+00:00", 7);
	} else if (us)
		snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02d.%06ld+00:00", (long long)y, mo, d, h,
			 mi, s, us);
	else
		snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02d+00:00", (long long)y, mo, d, h, mi, s);
}

void format_iso8601_z(usec_t t, char *buf, size_t n)
{
	int64_t secs, y;
	long us;
	unsigned mo, d;
	int h, mi, s;
	split_usec(t, &secs, &us);
	civil_hms(secs, &y, &mo, &d, &h, &mi, &s);
	snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, mo, d, h, mi, s);
}

int read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;
	struct strbuf sb = {0};
	char chunk[65536];

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		if (sb.len + (size_t)n > max) {
			rc = -EFBIG;
			goto out;
		}
		sb_add(&sb, chunk, (size_t)n);
	}
	if (len)
		*len = sb.len;
	*out = sb_steal(&sb);
out:
	sb_free(&sb);
	close(fd);
	return rc;
}

int write_file_atomic(const char *path, const void *data, size_t len, bool sync)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (!rc && sync && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
out:
	free(tmp);
	return rc;
}

/* Walks up from the leaf: a try's folder usually lacks one or two levels, not all of them. */
int mkdir_p(const char *path, unsigned mode)
{
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	char *p = xstrdup(path);
	char *slash = strrchr(p, '/');
	while (slash && slash > p && slash[1] == '\0') { /* trailing slashes */
		*slash = '\0';
		slash = strrchr(p, '/');
	}
	int rc = -ENOENT;
	if (slash && slash > p) {
		*slash = '\0';
		rc = mkdir_p(p, mode);
		if (rc == 0)
			rc = mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -errno;
	}
	free(p);
	return rc;
}

static int remove_below(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *child = xasprintf("%s/%s", path, e->d_name);
		int r = remove_below(child);
		if (r && !rc)
			rc = r;
		free(child);
	}
	closedir(d);
	if (rmdir(path) < 0 && !rc)
		rc = -errno;
	return rc;
}

bool path_is_under(const char *root, const char *path)
{
	char *r = realpath(root, NULL), *p = realpath(path, NULL);
	size_t n = r ? strlen(r) : 0;
	bool under = r && p && strncmp(r, p, n) == 0 && (p[n] == '/' || (n == 1 && p[1]));
	free(r);
	free(p);
	return under;
}

int remove_tree(const char *root, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Resolved, so that neither "..", a symlinked component nor the root itself gets through;
	 * below the top, symlinks are removed, never followed (lstat). */
	if (!path_is_under(root, path))
		return -EPERM;
	return remove_below(path);
}

/* SHA-256 as specified in FIPS 180-4. */
static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *b)
{
	uint32_t w[64], v[8];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
		       (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, h, sizeof(v));
	for (int i = 0; i < 64; i++) {
		uint32_t S1 = ROR(v[4], 6) ^ ROR(v[4], 11) ^ ROR(v[4], 25);
		uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
		uint32_t t1 = v[7] + S1 + ch + sha_k[i] + w[i];
		uint32_t S0 = ROR(v[0], 2) ^ ROR(v[0], 13) ^ ROR(v[0], 22);
		uint32_t mj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
		uint32_t t2 = S0 + mj;
		memmove(v + 1, v, 7 * sizeof(uint32_t));
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		h[i] += v[i];
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
			 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	const unsigned char *p = data;
	unsigned char tail[128] = {0};
	size_t full = len / 64 * 64, rest = len - full;

	for (size_t off = 0; off < full; off += 64)
		sha256_block(h, p + off);
	memcpy(tail, p + full, rest);
	tail[rest] = 0x80;
	size_t tl = rest + 1 + 8 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
	sha256_block(h, tail);
	if (tl == 128)
		sha256_block(h, tail + 64);
	for (int i = 0; i < 8; i++)
		snprintf(out + 8 * i, 9, "%08x", h[i]);
}

/* An id is never "." or "..": it names a folder under $SLUICE_HOME/logs. */
static bool valid_chars(const char *s, const char *extra)
{
	size_t n = 0;
	if (!s || !*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (!isalnum(c) && !strchr(extra, c))
			return false;
		if (n >= ID_MAX)
			return false;
	}
	return true;
}

bool valid_id(const char *s) { return valid_chars(s, "_.-"); }

bool parse_bool(const char *s, bool *out)
{
	if (!s)
		return false;
	if (!strcasecmp(s, "true") || !strcmp(s, "1")) {
		*out = true;
		return true;
	}
	if (!strcasecmp(s, "false") || !strcmp(s, "0")) {
		*out = false;
		return true;
	}
	return false;
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p++;
		int more;
		unsigned cp, min;
		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07, min = 0x10000;
		else
			return false;
		if (end - p < more)
			return false;
		for (int i = 0; i < more; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		p += more;
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

char *str_mask(const char *s, char *const *secrets, size_t n)
{
	struct strbuf sb = {0};
	for (const char *p = s; *p;) {
		size_t best = 0;
		for (size_t i = 0; i < n; i++) {
			size_t l = strlen(secrets[i]);
			if (l > best && !strncmp(p, secrets[i], l))
				best = l;
		}
		if (best) {
			sb_puts(&sb, "***");
			p += best;
		} else {
			sb_putc(&sb, *p++);
		}
	}
	return sb_steal(&sb);
}

char *shell_join(const char *const *argv)
{
	struct strbuf sb = {0};
	for (size_t i = 0; argv[i]; i++) {
		const char *a = argv[i];
		if (i)
			sb_putc(&sb, ' ');
		bool plain = *a != '\0';
		for (const char *c = a; *c && plain; c++)
			plain = isalnum((unsigned char)*c) || strchr("-_./=:,+@%", *c);
		if (plain) {
			sb_puts(&sb, a);
			continue;
		}
		sb_putc(&sb, '\'');
		for (const char *c = a; *c; c++) {
			if (*c == '\'')
				sb_puts(&sb, "'\\''");
			else
				sb_putc(&sb, *c);
		}
		sb_putc(&sb, '\'');
	}
	return sb_steal(&sb);
}

char *utf8_sanitize(const char *s)
{
	struct strbuf sb = {0};
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t len = 1;
		unsigned char c = (unsigned char)s[i];
		if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		if ((c < 0x80) || (i + len <= n && len > 1 && utf8_valid(s + i, len))) {
			sb_add(&sb, s + i, len);
			i += len;
		} else {
			sb_puts(&sb, "\xef\xbf\xbd");
			i++;
		}
	}
	if (!sb.buf)
		sb_puts(&sb, "");
	return sb_steal(&sb);
}

bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	if (n == 0)
		return true;
	for (const char *p = hay; *p; p++)
		if (!strncasecmp(p, needle, n))
			return true;
	return false;
}

bool valid_run_id(const char *s) { return valid_chars(s, "_.~:+-"); }

bool path_component_ok(const char *s)
{
	return s && *s && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/');
}

char *path_under(const char *root, ...)
{
	struct strbuf sb = {0};
	va_list ap;
	sb_puts(&sb, root);
	va_start(ap, root);
	for (const char *c; (c = va_arg(ap, const char *));) {
		if (!path_component_ok(c)) {
			va_end(ap);
			sb_free(&sb);
			return NULL;
		}
		sb_putc(&sb, '/');
		sb_puts(&sb, c);
	}
	va_end(ap);
	return sb_steal(&sb);
}

char *exe_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return xstrdup(".");
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	return xstrdup(buf);
}

static void stop_set(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGTERM);
}

void block_stop_signals(void)
{
	sigset_t mask;
	stop_set(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
}

int stop_signals_fd(void)
{
	sigset_t mask;
	stop_set(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}
