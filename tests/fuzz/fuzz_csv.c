/* The kernels' CSV/TSV reader (kernels/csv.h) on arbitrary bytes. The first byte picks the
 * format (bit 0: TSV instead of CSV) and how many splits to cut (bits 1-2: 1 to 4); the rest is
 * the file. Checked, besides no crash and no read outside the buffer:
 *   - the split rule: the records of splits 1..N, each parsed from its resynced start to the next
 *     split's, are the whole file's records, in order, malformed ones included (splits never
 *     read a record twice or lose one);
 *   - kcsv_next always moves forward and stops at the end;
 *   - a cell read as a float prints (kcsv_fmt_double) to text that reads back to the same value. */
#include "tests/fuzz/fuzz.h"

#include <math.h>

#include "kernels/csv.h"

/* FNV-1a over the records of [p, end), fields and lengths included; counts records and bad ones. */
struct digest {
	uint64_t h;
	size_t recs, bad;
};

static void mix(struct digest *d, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		d->h = (d->h ^ b[i]) * 1099511628211ULL;
}

static void parse_range(const struct kcsv_fmt *f, const char *p, const char *end, struct digest *d)
{
	struct kcsv_rec r;
	kcsv_rec_init(&r);
	for (;;) {
		const char *before = p, *why = NULL;
		int rc = kcsv_next(f, &p, end, &r, &why);
		FUZZ_CHECK(p >= before && p <= end, "kcsv_next moved to %td of %td", p - before, end - before);
		if (rc == 0) {
			FUZZ_CHECK(p == end, "end of records before the end of the range");
			break;
		}
		FUZZ_CHECK(p > before, "kcsv_next returned %d without moving", rc);
		if (rc < 0) {
			FUZZ_CHECK(why != NULL, "a malformed record without a reason");
			d->bad++;
			mix(d, "!", 1);
			continue;
		}
		d->recs++;
		mix(d, &r.n, sizeof(r.n));
		for (size_t i = 0; i < r.n; i++) {
			uint32_t len = r.f[i].len;
			mix(d, &len, sizeof(len));
			mix(d, r.f[i].p, len);
			double v;
			if (len < 64 && kcsv_float(r.f[i].p, len, &v) == 0 && !isnan(v)) {
				char buf[64];
				double back;
				int n = kcsv_fmt_double(buf, v);
				FUZZ_CHECK(n > 0 && n < 40 && kcsv_float(buf, (size_t)n, &back) == 0 && back == v,
					   "%.17g printed as %.*s does not read back", v, n, buf);
			}
		}
	}
	kcsv_rec_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct kcsv_fmt f = {.delim = (data[0] & 1) ? '\t' : ',', .quoting = !(data[0] & 1), .header = false};
	unsigned splits = 1 + ((data[0] >> 1) & 3);
	char *text = fuzz_str(data + 1, size - 1);
	uint64_t len = size - 1;

	struct digest whole = {14695981039346656037ULL, 0, 0};
	parse_range(&f, text, text + len, &whole);

	struct digest parts = {14695981039346656037ULL, 0, 0};
	uint64_t start = 0;
	for (unsigned i = 0; i < splits; i++) {
		uint64_t pos = len * (i + 1) / splits;
		uint64_t stop = i + 1 == splits ? len : kcsv_resync(text, len, pos, &f);
		FUZZ_CHECK(stop >= start && stop <= len, "split %u of %u ends at %llu (starts at %llu)", i, splits,
			   (unsigned long long)stop, (unsigned long long)start);
		parse_range(&f, text + start, text + stop, &parts);
		start = stop;
	}
	FUZZ_CHECK(parts.recs == whole.recs && parts.bad == whole.bad && parts.h == whole.h,
		   "%u splits read %zu records (%zu bad), the whole file %zu (%zu bad)", splits, parts.recs, parts.bad,
		   whole.recs, whole.bad);
	free(text);
	return 0;
}
