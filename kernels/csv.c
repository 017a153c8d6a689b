/* The CSV/TSV reader of sluice-kernel (kernels/csv.h states the format and the split rule).
 *
 * The hot path is the unquoted record: a 16-byte SSE2 compare gives a bit mask of the separator,
 * LF and '"' bytes of the window, and the loop walks the set bits, so a record costs a few vector
 * compares and one branch per field, never a function call per byte. A quoted field is scanned with
 * memchr for its closing quote. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/util.h"
#include "kernels/csv.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void kcsv_rec_init(struct kcsv_rec *r)
{
	memset(r, 0, sizeof *r);
	r->cap = 16;
	r->f = xmalloc(r->cap * sizeof *r->f);
}

void kcsv_rec_free(struct kcsv_rec *r)
{
	free(r->f);
	free(r->scratch);
	memset(r, 0, sizeof *r);
}

static inline void push_field(struct kcsv_rec *r, const char *p, size_t len, uint32_t flags)
{
	if (r->n == r->cap) {
		r->cap *= 2;
		r->f = xrealloc(r->f, r->cap * sizeof *r->f);
	}
	r->f[r->n++] = (struct kcsv_field){p, (uint32_t)len, flags};
}

/* Bit mask of the bytes of p[0..16) equal to a, b or c. */
static inline uint32_t mask16(const char *p, char a, char b, char c)
{
#if defined(__SSE2__)
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(a)), _mm_cmpeq_epi8(v, _mm_set1_epi8(b))),
				 _mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
	return (uint32_t)_mm_movemask_epi8(m);
#else
	uint32_t m = 0;
	for (int k = 0; k < 16; k++)
		m |= (uint32_t)(p[k] == a || p[k] == b || p[k] == c) << k;
	return m;
#endif
}

/* The same for the n < 16 bytes left at the end of the buffer (no read past it). */
static inline uint32_t mask_tail(const char *p, size_t n, char a, char b, char c)
{
	uint32_t m = 0;
	for (size_t k = 0; k < n; k++)
		m |= (uint32_t)(p[k] == a || p[k] == b || p[k] == c) << k;
	return m;
}

static size_t count_lf(const char *p, const char *e)
{
	size_t n = 0;
	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* Skip to just past the next LF outside quotes (after a malformed record). */
static const char *skip_bad(const struct kcsv_fmt *f, const char *p, const char *end, struct kcsv_rec *r,
			    bool inq)
{
	for (; p < end; p++) {
		if (*p == '"' && f->quoting)
			inq = !inq;
		else if (*p == '\n') {
			r->lines++;
			if (!inq)
				return p + 1;
		}
	}
	return end;
}

/* Copy the fields that held "" into scratch, unescaped, and point them there. */
static void unescape_fields(struct kcsv_rec *r)
{
	size_t need = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->f[i].flags & KCSV_ESC)
			need += r->f[i].len;
	if (need > r->scap) {
		r->scap = need * 2;
		free(r->scratch);
		r->scratch = xmalloc(r->scap);
	}
	char *o = r->scratch;
	for (size_t i = 0; i < r->n; i++) {
		struct kcsv_field *fl = &r->f[i];
		if (!(fl->flags & KCSV_ESC))
			continue;
		char *start = o;
		for (uint32_t k = 0; k < fl->len; k++) {
			*o++ = fl->p[k];
			if (fl->p[k] == '"')
				k++; /* "" -> " */
		}
		fl->p = start;
		fl->len = (uint32_t)(o - start);
		fl->flags &= ~KCSV_ESC;
	}
}

/* A quoted field opening at q (*q == '"'). On success returns the byte after the closing quote and
 * pushes the field; NULL when the quote is never closed. */
static const char *quoted_field(struct kcsv_rec *r, const char *q, const char *end)
{
	const char *s = q + 1;
	uint32_t flags = KCSV_QUOTED;
	for (;;) {
		const char *e = memchr(s, '"', (size_t)(end - s));
		if (!e) {
			r->lines += count_lf(q + 1, end);
			return NULL;
		}
		if (e + 1 < end && e[1] == '"') {
			flags |= KCSV_ESC;
			s = e + 2;
			continue;
		}
		r->lines += count_lf(q + 1, e);
		push_field(r, q + 1, (size_t)(e - q - 1), flags);
		return e + 1;
	}
}

int kcsv_next(const struct kcsv_fmt *f, const char **pp, const char *end, struct kcsv_rec *r, const char **why)
{
	const char *p = *pp;
	const char d = f->delim, qc = f->quoting ? '"' : '\n';
	r->lines = 0;
	/* blank lines are no records */
	for (;;) {
		if (p >= end) {
			*pp = end;
			return 0;
		}
		if (*p == '\n') {
			r->lines++;
			p++;
		} else if (*p == '\r' && p + 1 < end && p[1] == '\n') {
			r->lines++;
			p += 2;
		} else {
			break;
		}
	}
	r->n = 0;
	bool esc = false;
	const char *fs = p; /* start of the current field */
	for (;;) {
		uint32_t m;
		size_t avail = (size_t)(end - p);
		if (avail >= 16)
			m = mask16(p, d, '\n', qc);
		else if (avail > 0)
			m = mask_tail(p, avail, d, '\n', qc);
		else {
			/* the last record has no line end */
			size_t len = (size_t)(end - fs);
			if (len && fs[len - 1] == '\r')
				len--;
			push_field(r, fs, len, 0);
			*pp = end;
			goto done;
		}
		const char *next = p + (avail < 16 ? avail : 16);
		while (m) {
			const char *q = p + __builtin_ctz(m);
			m &= m - 1;
			char c = *q;
			if (c == d) {
				push_field(r, fs, (size_t)(q - fs), 0);
				fs = q + 1;
			} else if (c == '\n') {
				size_t len = (size_t)(q - fs);
				if (len && fs[len - 1] == '\r')
					len--;
				push_field(r, fs, len, 0);
				r->lines++;
				*pp = q + 1;
				goto done;
			} else if (q == fs) {
				/* a quoted field */
				const char *a = quoted_field(r, q, end);
				if (!a) {
					*why = "a quoted field is not closed before the end of the input";
					*pp = end;
					return -1;
				}
				if (r->f[r->n - 1].flags & KCSV_ESC)
					esc = true;
				if (a == end || (*a == '\r' && a + 1 == end)) {
					*pp = end;
					goto done;
				}
				if (*a == d) {
					fs = next = a + 1;
				} else if (*a == '\n' || (*a == '\r' && a + 1 < end && a[1] == '\n')) {
					r->lines++;
					*pp = a + (*a == '\r' ? 2 : 1);
					goto done;
				} else {
					*why = "text after the closing quote of a quoted field";
					*pp = skip_bad(f, a, end, r, false);
					return -1;
				}
				break; /* rescan from next */
			} else {
				/* A quote inside an unquoted field. Taking it as a byte would make this
				 * parser disagree with the split rule (every quote toggles); so it is a
				 * malformed row, skipped as if the quote opened a quoted field. */
				*why = "a '\"' inside an unquoted field (quote the whole field and double its quotes, "
				       "or read the file as TSV)";
				*pp = skip_bad(f, q + 1, end, r, true);
				return -1;
			}
		}
		p = next;
	}
done:
	if (esc)
		unescape_fields(r);
	return 1;
}

/* Number of '"' bytes in p[0..n). */
static uint64_t count_quotes(const char *p, uint64_t n)
{
	uint64_t c = 0, i = 0;
#if defined(__SSE2__)
	const __m128i qv = _mm_set1_epi8('"');
	while (i + 64 <= n) {
		uint64_t m = 0;
		for (int k = 0; k < 4; k++) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16 * k));
			m |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, qv)) << (16 * k);
		}
		c += (uint64_t)__builtin_popcountll(m);
		i += 64;
	}
#endif
	for (; i < n; i++)
		c += p[i] == '"';
	return c;
}

uint64_t kcsv_resync(const char *data, uint64_t len, uint64_t pos, void *ctx)
{
	const struct kcsv_fmt *f = ctx;
	if (pos == 0 || pos >= len)
		return pos >= len ? len : 0;
	if (!f || !f->quoting)
		return kresync_line(data, len, pos, NULL);
	uint64_t s = pos - 1, q = 0;
	/* Count in 8 MiB blocks and drop each block's pages from the resident set once counted: a split
	 * deep in a big file must not hold everything before it in memory (the pages stay in the page
	 * cache; the mapping is read-only and starts page-aligned). */
	const uint64_t blk = (uint64_t)8 << 20;
	for (uint64_t b = 0; b < s; b += blk) {
		uint64_t n = s - b < blk ? s - b : blk;
		q += count_quotes(data + b, n);
		if (n == blk)
			madvise((void *)(uintptr_t)(data + b), blk, MADV_DONTNEED);
	}
	bool inq = q & 1;
	for (; s < len; s++) {
		char c = data[s];
		if (c == '"')
			inq = !inq;
		else if (c == '\n' && !inq)
			return s + 1;
	}
	return len;
}

int kcsv_int(const char *p, size_t len, int64_t *out)
{
	const char *e = p + len;
	bool neg = false;
	if (p < e && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	if (p == e)
		return -1;
	uint64_t v = 0;
	for (; p < e; p++) {
		unsigned dg = (unsigned)(unsigned char)*p - '0';
		if (dg > 9 || v > (UINT64_MAX - dg) / 10)
			return -1;
		v = v * 10 + dg;
	}
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,	 1e6,  1e7,  1e8,  1e9,	 1e10, 1e11,
				      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int float_slow(const char *p, size_t len, double *out)
{
	char buf[128];
	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, p, len);
	buf[len] = 0;
	if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n' || buf[0] == '\r' || buf[0] == '\f' || buf[0] == '\v')
		return -1;
	/* strtod also takes hexadecimal; a data cell "0x1p3" is not a number here */
	for (size_t i = 0; i < len; i++)
		if (buf[i] == 'x' || buf[i] == 'X')
			return -1;
	char *endp;
	errno = 0;
	double d = strtod(buf, &endp);
	if (*endp)
		return -1;
	*out = d;
	return 0;
}

int kcsv_float(const char *p, size_t len, double *out)
{
	/* Fast path: [sign] digits [. digits] [e [sign] digits] with at most 15 significant digits and
	 * a decimal exponent within +-22: mantissa and power of ten are exact doubles, so one multiply or
	 * divide gives the correctly rounded result (the classic Clinger fast path). */
	const char *s = p, *e = p + len;
	bool neg = false;
	if (s < e && (*s == '-' || *s == '+'))
		neg = *s++ == '-';
	uint64_t m = 0;
	int digits = 0, exp10 = 0, nd = 0;
	for (; s < e && (unsigned)(*s - '0') <= 9; s++, nd++) {
		if (m || *s != '0')
			digits++;
		m = m * 10 + (uint64_t)(*s - '0');
		if (digits > 15)
			return float_slow(p, len, out);
	}
	if (s < e && *s == '.') {
		s++;
		for (; s < e && (unsigned)(*s - '0') <= 9; s++, nd++) {
			if (m || *s != '0')
				digits++;
			m = m * 10 + (uint64_t)(*s - '0');
			exp10--;
			if (digits > 15)
				return float_slow(p, len, out);
		}
	}
	if (nd == 0)
		return float_slow(p, len, out); /* inf, nan, ".": let strtod decide */
	if (s < e && (*s == 'e' || *s == 'E')) {
		s++;
		bool eneg = false;
		if (s < e && (*s == '-' || *s == '+'))
			eneg = *s++ == '-';
		if (s == e)
			return -1;
		int x = 0;
		for (; s < e && (unsigned)(*s - '0') <= 9; s++) {
			if (x > 100000)
				return float_slow(p, len, out);
			x = x * 10 + (*s - '0');
		}
		exp10 += eneg ? -x : x;
	}
	if (s != e)
		return -1;
	double d = (double)m;
	if (exp10 < -22 || exp10 > 22)
		return float_slow(p, len, out);
	d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
	*out = neg ? -d : d;
	return 0;
}

int kcsv_number(const char *p, size_t len, int64_t *i, double *d, bool *isf)
{
	if (kcsv_int(p, len, i) == 0) {
		*isf = false;
		return 0;
	}
	*isf = true;
	return kcsv_float(p, len, d);
}

int kcsv_fmt_double(char *buf, double d)
{
	int n = snprintf(buf, 32, "%.15g", d);
	if (strtod(buf, NULL) != d && d == d)
		n = snprintf(buf, 32, "%.17g", d);
	return n;
}

void kcsv_put(struct kwriter *w, const char *p, size_t len, char delim)
{
	if (delim == '\t') {
		const char *s = p, *e = p + len;
		for (const char *q = p; q < e; q++) {
			char c = *q, x;
			switch (c) {
			case '\\': x = '\\'; break;
			case '\t': x = 't'; break;
			case '\n': x = 'n'; break;
			case '\r': x = 'r'; break;
			default: continue;
			}
			kw_write(w, s, (size_t)(q - s));
			kw_putc(w, '\\');
			kw_putc(w, x);
			s = q + 1;
		}
		kw_write(w, s, (size_t)(e - s));
		return;
	}
	bool need = false;
	for (size_t i = 0; i < len && !need; i++)
		need = p[i] == delim || p[i] == '"' || p[i] == '\n' || p[i] == '\r';
	if (!need) {
		kw_write(w, p, len);
		return;
	}
	kw_putc(w, '"');
	const char *s = p;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '"') {
			kw_write(w, s, (size_t)(p + i + 1 - s));
			kw_putc(w, '"');
			s = p + i + 1;
		}
	kw_write(w, s, (size_t)(p + len - s));
	kw_putc(w, '"');
}

size_t kcsv_tsv_unescape(char *p, size_t len)
{
	char *o = p;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\\' && i + 1 < len) {
			char c = p[++i];
			*o++ = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
		} else {
			*o++ = p[i];
		}
	}
	return (size_t)(o - p);
}

long kcsv_column(const char *spec, const struct kcsv_rec *names)
{
	if (names) {
		size_t l = strlen(spec);
		for (size_t i = 0; i < names->n; i++)
			if (names->f[i].len == l && !memcmp(names->f[i].p, spec, l))
				return (long)i;
	}
	char *e;
	errno = 0;
	long v = strtol(spec, &e, 10);
	if (*spec && !*e && !errno && v >= 1 && v <= 1000000)
		return v - 1;
	return -1;
}
