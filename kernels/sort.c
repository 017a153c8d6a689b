/* sluice-kernel sort and merge: an external merge sort of lines by a key, and the k-way merge of
 * sorted files that it (and d:sort's final step) uses.
 *
 * sort reads its split of the input through the mapping, collects one 32-byte item per line
 * (an order-preserving 64-bit key prefix, the line, its key), and when the lines and items of the
 * current run would exceed --memory it sorts the run (LSD radix sort on the prefix, then a
 * comparison sort of equal-prefix groups; optionally on two threads and merged), writes it to a
 * spill file and drops the input pages it came from. The runs are then k-way merged into the part.
 * Order: by key (bytes in memcmp order, or the numeric value with --numeric), then by input
 * position (stable); --reverse reverses the key order and stays stable. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "kernels/kernel.h"
#include "kernels/radix.h"

static const char sort_usage[] =
	"usage: sluice-kernel sort -o OUT_DIR [-k COL] [-t SEP] [-n] [-r] [--memory SIZE] [--threads N]\n"
	"                          [--split I/N] INPUT...\n"
	"Sort the lines of split I of N of the inputs into OUT_DIR/part-TTTTT.tsv (T = --task, default I),\n"
	"stably, in bounded memory (sorted runs spill to disk and are merged).\n\n"
	"  -k, --key COL         sort by field COL (1-based) of SEP-separated lines (default: whole line)\n"
	"  -t, --delimiter SEP   field separator, one byte (default TAB)\n"
	"  -n, --numeric         compare keys as numbers (decimal, with sign, fraction, exponent); a key\n"
	"                        that is not a number is a bad row (--bad-rows)\n"
	"  -r, --reverse         descending order (equal keys keep their input order)\n"
	"  --memory SIZE         memory bound for lines being sorted and their index (default 1G)\n"
	"  --threads N           sort runs on N threads (1 or 2; default 1)\n"
	"  --name FILE           output file name (default part-TTTTT.tsv)\n"
	"  --header              the first line of every input file is a header: not sorted; the first\n"
	"                        file's header heads the output\n"
	"Lines are byte strings (C locale); a last line without a newline gets one.\n";

static const char merge_usage[] =
	"usage: sluice-kernel merge -o OUT_DIR [-k COL] [-t SEP] [-n] [-r] [--name FILE] INPUT...\n"
	"Merge files (or directories of parts) that are each sorted by the same key into one sorted file,\n"
	"OUT_DIR/part-00000.tsv (or --name). Lines with equal keys come in input order (files in the order\n"
	"given, directories sorted by name), so merging the parts of a stable sort stays stable.\n\n"
	"  -k, --key COL, -t, --delimiter SEP, -n, --numeric, -r, --reverse   as for sort\n"
	"  --name FILE           output file name (default part-00000.tsv)\n"
	"  --header              every input starts with a header line: the first one heads the output\n"
	"  --memory SIZE         bounds the read buffers (default 1G)\n";

struct keyspec {
	int col;             /* 0 = whole line */
	char delim;
	bool numeric, reverse;
};

/* The key field of a line: [*k, *k + *kn). Returns false if the line has fewer fields. */
static inline bool key_of(const struct keyspec *ks, const char *line, size_t n, const char **k, size_t *kn)
{
	if (ks->col == 0) {
		*k = line;
		*kn = n;
		return true;
	}
	const char *p = line, *end = line + n;
	for (int c = 1; c < ks->col; c++) {
		const char *d = memchr(p, ks->delim, (size_t)(end - p));
		if (!d)
			return false;
		p = d + 1;
	}
	const char *d = memchr(p, ks->delim, (size_t)(end - p));
	*k = p;
	*kn = (size_t)((d ? d : end) - p);
	return true;
}

/* Parse a whole key as a number (surrounding blanks allowed). */
static bool num_of(const char *k, size_t kn, double *out)
{
	char buf[64];
	while (kn && (*k == ' ' || *k == '\t'))
		k++, kn--;
	while (kn && (k[kn - 1] == ' ' || k[kn - 1] == '\t' || k[kn - 1] == '\r'))
		kn--;
	if (kn == 0 || kn >= sizeof buf)
		return false;
	/* fast path: an integer of up to 18 digits */
	size_t i = 0;
	bool neg = false;
	if (k[0] == '-' || k[0] == '+') {
		neg = k[0] == '-';
		i = 1;
	}
	if (i < kn && kn - i <= 18) {
		int64_t v = 0;
		size_t j = i;
		while (j < kn && k[j] >= '0' && k[j] <= '9')
			v = v * 10 + (k[j++] - '0');
		if (j == kn && j > i) {
			*out = neg ? -(double)v : (double)v;
			return true;
		}
	}
	memcpy(buf, k, kn);
	buf[kn] = 0;
	char *end;
	double d = strtod(buf, &end);
	if (*end || end == buf || isnan(d))
		return false;
	*out = d;
	return true;
}

/* ---- items and the in-memory sort ---- */

struct sitem {
	uint64_t prefix;
	const char *line;
	uint32_t len, koff, klen, idx;
};

static bool sitem_strkeys; /* ties compare key bytes (string keys) */

static inline int sitem_cmp(const struct sitem *a, const struct sitem *b)
{
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	if (sitem_strkeys) {
		size_t n = a->klen < b->klen ? a->klen : b->klen;
		int c = memcmp(a->line + a->koff, b->line + b->koff, n);
		if (c)
			return c;
		if (a->klen != b->klen)
			return a->klen < b->klen ? -1 : 1;
	}
	return (a->idx > b->idx) - (a->idx < b->idx);
}

static int sitem_qcmp(const void *a, const void *b)
{
	return sitem_cmp(a, b);
}

/* Numeric keys: the prefix is the whole key and the radix passes keep input order, so a run of
 * equal prefixes needs sorting only when its idx order is broken; string keys tie on their bytes. */
#define SITEM_RUN_UNSORTED(first, last) (sitem_strkeys || (first)->idx > (last)->idx)
KRADIX_DEFINE(sitem_sort, struct sitem, sitem_qcmp, SITEM_RUN_UNSORTED)

struct sort_job {
	struct sitem *v, *tmp;
	size_t n;
};

static void *sort_thread(void *arg)
{
	struct sort_job *j = arg;
	sitem_sort(j->v, j->n, j->tmp);
	return NULL;
}

/* Sort v[0..n) (tmp: n items of scratch), on two threads when asked and worth it. */
static void sort_items(struct sitem *v, size_t n, struct sitem *tmp, int threads)
{
	if (threads < 2 || n < 100000) {
		sitem_sort(v, n, tmp);
		return;
	}
	size_t h = n / 2;
	struct sort_job j = {v + h, tmp + h, n - h};
	pthread_t t;
	bool threaded = pthread_create(&t, NULL, sort_thread, &j) == 0;
	sitem_sort(v, h, tmp);
	if (threaded)
		pthread_join(t, NULL);
	else
		sort_thread(&j);
	/* merge the halves into tmp, then back */
	size_t a = 0, b = h, k = 0;
	while (a < h && b < n)
		tmp[k++] = sitem_cmp(&v[b], &v[a]) < 0 ? v[b++] : v[a++];
	while (a < h)
		tmp[k++] = v[a++];
	while (b < n)
		tmp[k++] = v[b++];
	memcpy(v, tmp, n * sizeof *v);
}

/* ---- merging sorted runs (spills or files) ---- */

struct mrun {
	struct kreader r;
	const char *line;
	size_t len;
	uint64_t prefix;     /* of the current line's key */
	double num;
	const char *key;
	size_t klen;
	size_t order;        /* run index: ties go to the earlier run */
};

struct merger {
	const struct keyspec *ks;
	struct kbad *bad;
};

static int mrun_next(struct merger *mg, struct mrun *m, char **err)
{
	for (;;) {
		int r = kr_line(&m->r, &m->line, &m->len, err);
		if (r <= 0)
			return r;
		if (!key_of(mg->ks, m->line, m->len, &m->key, &m->klen)) {
			if (kbad_row(mg->bad, m->r.name, m->r.line, "fewer than %d fields", mg->ks->col))
				return -2;
			continue;
		}
		if (mg->ks->numeric && !num_of(m->key, m->klen, &m->num)) {
			if (kbad_row(mg->bad, m->r.name, m->r.line, "key '%.*s' is not a number", (int)(m->klen > 40 ? 40 : m->klen),
				     m->key))
				return -2;
			continue;
		}
		return 1;
	}
}

static inline int mrun_cmp(const struct merger *mg, const struct mrun *a, const struct mrun *b)
{
	int c;
	if (mg->ks->numeric) {
		c = (a->num > b->num) - (a->num < b->num);
	} else {
		size_t n = a->klen < b->klen ? a->klen : b->klen;
		c = memcmp(a->key, b->key, n);
		if (!c)
			c = (a->klen > b->klen) - (a->klen < b->klen);
	}
	if (mg->ks->reverse)
		c = -c;
	if (c)
		return c;
	return (a->order > b->order) - (a->order < b->order);
}

static void mheap_down(const struct merger *mg, struct mrun **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && mrun_cmp(mg, h[l], h[m]) < 0)
			m = l;
		if (l + 1 < n && mrun_cmp(mg, h[l + 1], h[m]) < 0)
			m = l + 1;
		if (m == i)
			return;
		struct mrun *t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* Merge runs into w. Returns 0, -1 (*err) or -2 (bad rows over the limit). */
static int merge_all(struct merger *mg, struct mrun *runs, size_t k, struct kwriter *w, uint64_t *rows_in,
		     char **err)
{
	struct mrun **h = xmalloc((k + 1) * sizeof *h);
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; i < k; i++) {
		runs[i].order = i;
		int r = mrun_next(mg, &runs[i], err);
		if (r < 0) {
			rc = r;
			goto out;
		}
		if (r)
			h[n++] = &runs[i];
	}
	for (size_t i = n; i-- > 0;)
		mheap_down(mg, h, n, i);
	while (n > 0) {
		struct mrun *m = h[0];
		kw_write(w, m->line, m->len);
		kw_putc(w, '\n');
		w->rows++;
		(*rows_in)++;
		int r = mrun_next(mg, m, err);
		if (r < 0) {
			rc = r;
			goto out;
		}
		if (!r)
			h[0] = h[--n];
		mheap_down(mg, h, n, 0);
	}
out:
	free(h);
	return rc;
}

/* ---- sort ---- */

struct sorter {
	struct kcommon c;
	struct keyspec ks;
	int threads;
	bool header, head_done;
	const char *name;
	struct kout *out;
	struct kbad bad;
	struct kstats st;
	struct sitem *items, *tmp;
	size_t n, cap, run_bytes;
	uint32_t next_idx;
	int *spill_fd;
	uint64_t *spill_len;
	size_t nspill;
	struct kwriter *final;
	const struct kfile *last_file;
	bool direct;         /* the output was written straight from memory (no merge) */
	char **hold;         /* copies of run lines from files already unmapped */
	size_t nhold;
	char *err;
};

enum { S_KEY = 1, S_DELIM, S_NUMERIC, S_REVERSE, S_THREADS, S_NAME, S_HEADER };
static const struct kopt sort_opts[] = {
	{"key", 'k', 1, S_KEY},
	{"delimiter", 't', 1, S_DELIM},
	{"numeric", 'n', 0, S_NUMERIC},
	{"reverse", 'r', 0, S_REVERSE},
	{"threads", 0, 1, S_THREADS},
	{"name", 0, 1, S_NAME},
	{"header", 0, 0, S_HEADER},
	{NULL, 0, 0, 0},
};

static int sort_opt(void *ctx, int id, const char *arg, char **err)
{
	struct sorter *s = ctx;
	uint64_t v;
	switch (id) {
	case S_KEY:
		if (kparse_u64(arg, &v) || v < 1 || v > 100000) {
			*err = kerrf("--key '%s': expected a column number from 1", arg);
			return -1;
		}
		s->ks.col = (int)v;
		return 0;
	case S_DELIM:
		if (!strcmp(arg, "\\t"))
			arg = "\t";
		if (strlen(arg) != 1 || *arg == '\n') {
			*err = kerrf("--delimiter '%s': expected one byte", arg);
			return -1;
		}
		s->ks.delim = *arg;
		return 0;
	case S_NUMERIC: s->ks.numeric = true; return 0;
	case S_REVERSE: s->ks.reverse = true; return 0;
	case S_THREADS:
		if (kparse_u64(arg, &v) || v < 1 || v > 64) {
			*err = kerrf("--threads '%s': expected 1 to 64", arg);
			return -1;
		}
		s->threads = (int)v;
		return 0;
	case S_NAME: s->name = arg; return 0;
	case S_HEADER: s->header = true; return 0;
	default: return 0;
	}
}

/* At most this many spill runs are open: then they are merged into one (a merge tree). */
#define MAX_RUNS 64

static int merge_all(struct merger *mg, struct mrun *runs, size_t k, struct kwriter *w, uint64_t *rows_in,
		     char **err);

/* Merge every spill run into one new spill run (runs are consecutive input, so order holds). */
static int collapse_runs(struct sorter *s)
{
	struct merger mg = {.ks = &s->ks, .bad = &s->bad};
	struct mrun *runs = xcalloc(s->nspill, sizeof *runs);
	struct kwriter w;
	uint64_t dummy = 0;
	int fd = kspill_open(kout_tmpdir(s->out), &s->err), rc = -1;
	if (fd < 0)
		goto out;
	size_t cap = s->c.memory / 4 / s->nspill;
	cap = cap < 4096 ? 4096 : cap > 262144 ? 262144 : cap;
	for (size_t i = 0; i < s->nspill; i++)
		kr_init(&runs[i].r, s->spill_fd[i], 0, s->spill_len[i], cap, "spill file");
	kw_init(&w, fd, kbuf_size(s->c.memory));
	rc = merge_all(&mg, runs, s->nspill, &w, &dummy, &s->err);
	uint64_t len = w.bytes + w.len;
	int wr = kw_finish(&w);
	for (size_t i = 0; i < s->nspill; i++) {
		kr_free(&runs[i].r);
		close(s->spill_fd[i]);
	}
	s->spill_fd[0] = fd;
	s->spill_len[0] = len;
	s->nspill = 1;
	if (!rc && wr) {
		s->err = kerrf("writing a spill file: %s", strerror(-wr));
		rc = -1;
	}
out:
	free(runs);
	return rc;
}

/* Sort the current run and write it to w (the output, or a new spill file). */
static int flush_run(struct sorter *s, bool to_output)
{
	struct kwriter sw, *w = &sw;
	int fd = -1;
	if (s->n == 0)
		return 0;
	sitem_strkeys = !s->ks.numeric;
	sort_items(s->items, s->n, s->tmp, s->threads);
	if (to_output) {
		w = s->final;
	} else {
		fd = kspill_open(kout_tmpdir(s->out), &s->err);
		if (fd < 0)
			return -1;
		kw_init(&sw, fd, kbuf_size(s->c.memory));
	}
	if (s->ks.reverse) {
		for (size_t i = s->n; i-- > 0;) {
			kw_write(w, s->items[i].line, s->items[i].len);
			kw_putc(w, '\n');
		}
	} else {
		for (size_t i = 0; i < s->n; i++) {
			kw_write(w, s->items[i].line, s->items[i].len);
			kw_putc(w, '\n');
		}
	}
	if (to_output) {
		w->rows += s->n;
	} else {
		uint64_t len = sw.bytes + sw.len;
		int rc = kw_finish(&sw);
		s->spill_fd = xrealloc(s->spill_fd, (s->nspill + 1) * sizeof *s->spill_fd);
		s->spill_len = xrealloc(s->spill_len, (s->nspill + 1) * sizeof *s->spill_len);
		s->spill_fd[s->nspill] = fd;
		s->spill_len[s->nspill++] = len;
		if (rc) {
			s->err = kerrf("writing a spill file: %s", strerror(-rc));
			return -1;
		}
		if (s->c.verbose)
			kwarn("sort: spilled a run of %zu lines (%zu runs, peak RSS %llu MB)", s->n, s->nspill,
			      (unsigned long long)(kpeak_rss() >> 20));
		if (s->nspill >= MAX_RUNS && collapse_runs(s))
			return -1;
	}
	s->n = 0;
	s->run_bytes = 0;
	return 0;
}

static void drop_hold(struct sorter *s);

/* Appends the line at p (len bytes, key k of kn bytes, num when numeric) to the run, spilling the
 * run first or after when the index or the lines would break --memory (next: where the next line
 * starts). 0 or -1 with s->err. */
static int add_item(struct sorter *s, struct kchunk *ch, const char *p, size_t len, const char *k, size_t kn,
		    double num, const char *next)
{
	size_t budget = s->c.memory;
	if (s->n == s->cap && s->n > 0 && s->run_bytes + 4 * s->cap * sizeof(struct sitem) > budget) {
		/* growing the index would break the bound: sort and spill what is here first */
		if (flush_run(s, false))
			return -1;
		drop_hold(s);
		kchunk_release(ch, p);
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 65536;
		s->items = xrealloc(s->items, s->cap * sizeof *s->items);
		free(s->tmp);
		s->tmp = xmalloc(s->cap * sizeof *s->tmp);
	}
	struct sitem *it = &s->items[s->n++];
	it->line = p;
	it->len = (uint32_t)len;
	it->koff = (uint32_t)(k - p);
	it->klen = (uint32_t)kn;
	it->prefix = s->ks.numeric ? kkey_double(num) : kkey_prefix(k, kn);
	/* reverse: sort ascending with later lines first on ties, then emit backwards */
	it->idx = s->ks.reverse ? UINT32_MAX - s->next_idx : s->next_idx;
	s->next_idx++;
	s->run_bytes += len + 1;
	if (s->run_bytes + 2 * s->n * sizeof(struct sitem) > budget) {
		if (flush_run(s, false))
			return -1;
		drop_hold(s);
		kchunk_release(ch, next);
	}
	return 0;
}

/* The file's mapping goes away after this chunk: the run's lines from it are copied out (they are
 * sorted with the next file's lines). */
static void hold_lines(struct sorter *s, struct kchunk *ch)
{
	/* the first line of this file in the run (earlier files' lines are already copies) */
	const char *first = NULL, *lo = ch->data, *hi = ch->data + ch->size, *end = ch->data + ch->end;
	for (size_t i = 0; i < s->n; i++) {
		const char *l = s->items[i].line;
		if (l >= lo && l < hi && (!first || l < first))
			first = l;
	}
	if (!first)
		return;
	size_t span = (size_t)(end - first);
	char *copy = xmalloc(span ? span : 1);
	memcpy(copy, first, span);
	for (size_t i = 0; i < s->n; i++)
		if (s->items[i].line >= lo && s->items[i].line < hi)
			s->items[i].line = copy + (s->items[i].line - first);
	s->hold = xrealloc(s->hold, (s->nhold + 1) * sizeof *s->hold);
	s->hold[s->nhold++] = copy;
}

static int sort_chunk(struct kchunk *ch, void *ctx)
{
	struct sorter *s = ctx;
	const char *p = ch->data + ch->begin, *end = ch->data + ch->end;
	s->st.bytes_in += ch->end - ch->begin;
	if (s->header) {
		const char *h;
		size_t hn;
		/* the output's first line: nothing has been written to it before the first chunk */
		if (!s->head_done && kchunk_header(ch, &h, &hn)) {
			kw_write(s->final, h, hn);
			kw_putc(s->final, '\n');
			s->head_done = true;
		}
		if (ch->begin == 0) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
		}
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t len = (size_t)(le - p);
		const char *k;
		size_t kn;
		double num = 0;
		s->st.rows_in++;
		if (len > UINT32_MAX) {
			s->err = kerrf("%s:%llu: a line longer than 4 GiB", ch->file->path,
				       (unsigned long long)kchunk_line(ch, p));
			return -1;
		}
		if (!key_of(&s->ks, p, len, &k, &kn)) {
			if (kbad_row(&s->bad, ch->file->path, kchunk_line(ch, p), "fewer than %d fields", s->ks.col))
				return -2;
			goto next;
		}
		if (s->ks.numeric && !num_of(k, kn, &num)) {
			if (kbad_row(&s->bad, ch->file->path, kchunk_line(ch, p), "key '%.*s' is not a number",
				     (int)(kn > 40 ? 40 : kn), k))
				return -2;
			goto next;
		}
		if (add_item(s, ch, p, len, k, kn, num, nl ? nl + 1 : end))
			return -1;
next:
		p = nl ? nl + 1 : end;
	}
	/* The mapping goes away when this returns: unless this is the split's last file, copy the
	 * pending lines of the run out of it (they are sorted with the next file's lines). */
	if (ch->file == s->last_file) {
		/* The last file: sort what is left while it is still mapped, straight into the output when
		 * nothing was spilled. */
		bool direct = s->nspill == 0;
		if (flush_run(s, direct))
			return -1;
		s->direct = direct;
	} else if (s->n) {
		hold_lines(s, ch);
	}
	return 0;
}

static void drop_hold(struct sorter *s)
{
	for (size_t i = 0; i < s->nhold; i++)
		free(s->hold[i]);
	free(s->hold);
	s->hold = NULL;
	s->nhold = 0;
}

/* The last input file that split I of N touches (its chunk is the last one kin_split passes on). */
static const struct kfile *last_file_of(const struct kinput *in, uint32_t i, uint32_t n)
{
	uint64_t gs = (uint64_t)(((__uint128_t)in->total * i) / n), ge = (uint64_t)(((__uint128_t)in->total * (i + 1)) / n);
	const struct kfile *last = NULL;
	for (size_t f = 0; f < in->nfiles; f++) {
		const struct kfile *kf = &in->files[f];
		if (kf->size && ge > kf->offset && gs < kf->offset + kf->size)
			last = kf;
	}
	return last;
}

static void spec_defaults(struct keyspec *ks)
{
	ks->col = 0;
	ks->delim = '\t';
}

int kmain_sort(int argc, char **argv)
{
	struct sorter s = {.threads = 1};
	struct kinput in = {0};
	struct mrun *runs = NULL;
	char name[64];
	spec_defaults(&s.ks);
	int r = kopt_parse(argc, argv, sort_opts, sort_opt, &s, &s.c, sort_usage);
	if (r)
		return r == 1 ? 0 : r;
	if (s.c.ninputs == 0) {
		fprintf(stderr, "sluice-kernel sort: no input (try --help)\n");
		free(s.c.inputs);
		return 2;
	}
	kbad_init(&s.bad, &s.c, "sort");
	if (!s.name) {
		snprintf(name, sizeof name, "part-%05d.tsv", s.c.task);
		s.name = name;
	}
	r = kout_open(&s.out, &s.c, "sort", &s.err);
	if (r)
		goto done;
	if (!(s.final = kout_file(s.out, s.name, &s.err)) || kin_list(&in, s.c.inputs, s.c.ninputs, &s.err)) {
		r = -1;
		goto fail;
	}
	s.last_file = last_file_of(&in, s.c.split_i, s.c.split_n);
	r = kin_split(&in, s.c.split_i, s.c.split_n, NULL, NULL, sort_chunk, &s, &s.err);
	if (r)
		goto fail;
	if (s.nspill == 0 || s.direct) {
		if (!s.direct)
			r = flush_run(&s, true); /* lines held from earlier files, or nothing */
	} else {
		struct merger mg = {.ks = &s.ks, .bad = &s.bad};
		uint64_t dummy = 0;
		if (flush_run(&s, false)) {
			r = -1;
			goto fail;
		}
		drop_hold(&s);
		free(s.items);
		free(s.tmp);
		s.items = s.tmp = NULL;
		size_t cap = s.c.memory / 2 / s.nspill;
		cap = cap < 4096 ? 4096 : cap > 262144 ? 262144 : cap;
		runs = xcalloc(s.nspill, sizeof *runs);
		for (size_t i = 0; i < s.nspill; i++)
			kr_init(&runs[i].r, s.spill_fd[i], 0, s.spill_len[i], cap, "spill file");
		r = merge_all(&mg, runs, s.nspill, s.final, &dummy, &s.err);
		for (size_t i = 0; i < s.nspill; i++)
			kr_free(&runs[i].r);
	}
	if (r)
		goto fail;
	s.st.bad_rows = s.bad.count;
	r = kout_commit(s.out, &s.st, &s.err);
	goto done;
fail:
	kout_abort(s.out);
	if (r == 0)
		r = -1;
done:
	for (size_t i = 0; i < s.nspill; i++)
		close(s.spill_fd[i]);
	free(runs);
	free(s.spill_fd);
	free(s.spill_len);
	drop_hold(&s);
	free(s.items);
	free(s.tmp);
	kin_free(&in);
	free(s.c.inputs);
	if (r < 0) {
		if (s.err)
			fprintf(stderr, "sluice-kernel sort: %s\n", s.err);
		free(s.err);
		return 1;
	}
	free(s.err);
	return 0;
}

/* ---- merge ---- */

int kmain_merge(int argc, char **argv)
{
	struct sorter s = {.threads = 1};
	struct kinput in = {0};
	struct mrun *runs = NULL;
	int *fds = NULL;
	spec_defaults(&s.ks);
	int r = kopt_parse(argc, argv, sort_opts, sort_opt, &s, &s.c, merge_usage);
	if (r)
		return r == 1 ? 0 : r;
	if (s.c.ninputs == 0) {
		fprintf(stderr, "sluice-kernel merge: no input (try --help)\n");
		free(s.c.inputs);
		return 2;
	}
	kbad_init(&s.bad, &s.c, "merge");
	if (!s.name)
		s.name = "part-00000.tsv";
	r = kout_open(&s.out, &s.c, "merge", &s.err);
	if (r)
		goto done;
	if (!(s.final = kout_file(s.out, s.name, &s.err)) || kin_list(&in, s.c.inputs, s.c.ninputs, &s.err)) {
		r = -1;
		goto fail;
	}
	kraise_nofile();
	runs = xcalloc(in.nfiles + 1, sizeof *runs);
	fds = xcalloc(in.nfiles + 1, sizeof *fds);
	size_t cap = in.nfiles ? s.c.memory / 2 / in.nfiles : 65536;
	cap = cap < 4096 ? 4096 : cap > 262144 ? 262144 : cap;
	for (size_t i = 0; i < in.nfiles; i++) {
		fds[i] = open(in.files[i].path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			s.err = kerrf("%s: %s", in.files[i].path, strerror(errno));
			for (size_t j = 0; j < i; j++) {
				kr_free(&runs[j].r);
				close(fds[j]);
			}
			r = -1;
			goto fail;
		}
		kr_init(&runs[i].r, fds[i], 0, in.files[i].size, cap, in.files[i].path);
		s.st.bytes_in += in.files[i].size;
		const char *h;
		size_t hn;
		int hr = s.header ? kr_line(&runs[i].r, &h, &hn, &s.err) : 0;
		if (hr < 0) {
			for (size_t j = 0; j <= i; j++) {
				kr_free(&runs[j].r);
				close(fds[j]);
			}
			r = -1;
			goto fail;
		}
		if (hr > 0 && !s.head_done) {
			kw_write(s.final, h, hn);
			kw_putc(s.final, '\n');
			s.head_done = true;
		}
	}
	struct merger mg = {.ks = &s.ks, .bad = &s.bad};
	r = merge_all(&mg, runs, in.nfiles, s.final, &s.st.rows_in, &s.err);
	for (size_t i = 0; i < in.nfiles; i++) {
		kr_free(&runs[i].r);
		close(fds[i]);
	}
	if (r)
		goto fail;
	s.st.bad_rows = s.bad.count;
	r = kout_commit(s.out, &s.st, &s.err);
	goto done;
fail:
	kout_abort(s.out);
	if (r == 0)
		r = -1;
done:
	free(runs);
	free(fds);
	kin_free(&in);
	free(s.c.inputs);
	if (r < 0) {
		if (s.err)
			fprintf(stderr, "sluice-kernel merge: %s\n", s.err);
		free(s.err);
		return 1;
	}
	free(s.err);
	return 0;
}
