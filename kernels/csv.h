/* The CSV/TSV reader of sluice-kernel (kernels/csv.c): records parsed straight out of a mapped
 * buffer, typed cells, split boundaries that respect quoted newlines.
 *
 * Format (docs/kernels.md, "CSV and TSV input"):
 *   - CSV is RFC 4180: fields separated by ','; a field that starts with '"' is quoted and runs to
 *     the next lone '"' (a doubled "" inside stands for one '"'), and may hold commas, CR and LF.
 *     A record ends at LF or CRLF outside quotes; the last record may lack its line end. Malformed
 *     rows: a '"' in the middle of an unquoted field, a quoted field followed by anything other
 *     than a separator or a line end, a quote left open at the end of the input. A malformed row is
 *     skipped to the next LF outside quotes with every quote in it toggling, so the parser always
 *     agrees with the split rule.
 *   - TSV: fields separated by '\t', no quoting (a '"' is an ordinary byte), records end at LF or
 *     CRLF.
 *   - A line with no bytes (or only "\r") is skipped: it is no record.
 *   - Bytes are bytes: UTF-8 and NUL pass through untouched; keys compare by their bytes.
 *
 * Split rule (kcsv_resync): a split of a CSV file owns the records whose first byte lies in its
 * byte range. The boundary at nominal position pos is found exactly, never guessed: the reader counts
 * the '"' bytes of data[0, pos-1) (SSE2, at memory speed; a quote byte toggles "inside a quoted
 * field" in RFC 4180 data, doubled quotes toggle twice), then scans forward from pos-1 to the first
 * LF outside quotes; the boundary is just past it. Both neighbours compute the same boundary, so
 * splits 1..N read every record exactly once, malformed rows included.
 *
 * Ownership: a kcsv_rec owns its field array and scratch buffer (kcsv_rec_free); its fields point
 * into the input buffer or into the scratch buffer and stay valid until the next kcsv_next call.
 */
#ifndef KERNELS_CSV_H
#define KERNELS_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"

struct kcsv_fmt {
	char delim;          /* ',' (CSV) or '\t' (TSV) */
	bool quoting;        /* RFC 4180 quotes (CSV) */
	bool header;         /* the first record of every file names the columns */
};

/* One cell: bytes [p, p+len), quotes removed and "" unescaped. */
struct kcsv_field {
	const char *p;
	uint32_t len;
	uint32_t flags;      /* KCSV_QUOTED: the cell was quoted; internal: KCSV_ESC */
};
#define KCSV_QUOTED 1u
#define KCSV_ESC 2u

struct kcsv_rec {
	struct kcsv_field *f;
	size_t n, cap;       /* n fields in f */
	char *scratch;       /* unescaped copies of fields that held "" */
	size_t scap;
	uint64_t lines;      /* LF bytes the last kcsv_next consumed (records + embedded + skipped) */
};

void kcsv_rec_init(struct kcsv_rec *r);
void kcsv_rec_free(struct kcsv_rec *r);

/* Parse the record at *pp (< end). Returns 1 with the record in r and *pp past its line end; 0 when
 * only blank lines were left (then *pp == end); -1 on a malformed record: *why says what (a static
 * string), *pp is past the bad record (the next LF outside quotes, or end), r->lines counts it. */
int kcsv_next(const struct kcsv_fmt *f, const char **pp, const char *end, struct kcsv_rec *r,
	      const char **why);

/* kresync_fn for CSV (ctx: the struct kcsv_fmt): the split rule above. For TSV it is the line rule. */
uint64_t kcsv_resync(const char *data, uint64_t len, uint64_t pos, void *ctx);

/* Typed cells. Integers: optional sign and decimal digits, within int64. Floats: what strtod takes
 * in the C locale (decimal, exponent, inf, nan), the whole cell, no spaces; the common short
 * decimals are converted exactly without strtod. Return 0, or -1 when the cell is not of the type. */
int kcsv_int(const char *p, size_t len, int64_t *out);
int kcsv_float(const char *p, size_t len, double *out);
/* A number either way: *isf says which (an integer cell that overflows int64 becomes a float). */
int kcsv_number(const char *p, size_t len, int64_t *i, double *d, bool *isf);

/* Format a double so that it reads back to the same value, as short as "%.15g" allows, else
 * "%.17g" (buf >= 32 bytes). Returns the length. */
int kcsv_fmt_double(char *buf, double d);

/* Write one output cell. delim '\t': TSV, where '\\', TAB, LF and CR are written as the escapes
 * \\ \t \n \r (PostgreSQL's text format); delim ',': CSV, quoted (RFC 4180) when the cell holds
 * ',', '"', CR or LF. */
void kcsv_put(struct kwriter *w, const char *p, size_t len, char delim);
/* Undo kcsv_put's TSV escapes in place; returns the new length. */
size_t kcsv_tsv_unescape(char *p, size_t len);

/* Column lookup: a 1-based column number ("3") or, with names (a header record), a column name.
 * Returns the 0-based index or -1. */
long kcsv_column(const char *spec, const struct kcsv_rec *names);

#endif
