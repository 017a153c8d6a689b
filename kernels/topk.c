/* sluice-kernel topk: the K lines with the largest (or smallest) key, best first.
 * A bounded heap of K copied lines: memory is K lines whatever the input size. Ties keep input
 * order (an earlier line beats a later one with an equal key), so topk over the parts of earlier
 * topk tasks (listed in order) gives the same answer as one topk over all the input. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/kernel.h"

static const char topk_usage[] =
	"usage: sluice-kernel topk -o OUT_DIR -n K [-k COL] [-t SEP] [--string] [--smallest] [--split I/N]\n"
	"                          INPUT...\n"
	"Write the K lines of split I of N of the inputs with the largest numeric field COL to\n"
	"OUT_DIR/part-TTTTT.tsv, best first; ties keep input order. Run it again over the parts of several\n"
	"topk tasks (a directory) for the global top K.\n\n"
	"  -n, --count K         how many lines (default 10)\n"
	"  -k, --key COL         key field, 1-based (default 1)\n"
	"  -t, --delimiter SEP   field separator, one byte (default TAB)\n"
	"  --string              compare keys as byte strings instead of numbers\n"
	"  --smallest            the K smallest keys instead\n"
	"  --name FILE           output file name (default part-TTTTT.tsv)\n"
	"  --header              the first line of every input file is a header: not a row; the first\n"
	"                        file's header heads the output\n"
	"A key that is not a number (without --string) or a line with fewer than COL fields is a bad row\n"
	"(--bad-rows).\n";

struct trow {
	double num;
	char *line;          /* malloc'ed copy */
	size_t len, klen, koff;
	uint64_t seq;        /* input position */
};

struct topk {
	struct kcommon c;
	int col;
	char delim;
	bool string, smallest, header;
	char *head;          /* the header line, once seen (malloc'ed) */
	size_t headlen;
	const char *name;
	uint64_t k;
	struct trow *heap;   /* the worst kept row at the root */
	size_t n, cap;
	uint64_t seq;
	struct kbad bad;
	struct kstats st;
	char *err;
};

/* > 0 if a is better than b (it ranks earlier in the output). */
static int better(const struct topk *t, const struct trow *a, const struct trow *b)
{
	int c;
	if (t->string) {
		size_t n = a->klen < b->klen ? a->klen : b->klen;
		c = memcmp(a->line + a->koff, b->line + b->koff, n);
		if (!c)
			c = (a->klen > b->klen) - (a->klen < b->klen);
	} else {
		c = (a->num > b->num) - (a->num < b->num);
	}
	if (t->smallest)
		c = -c;
	if (c)
		return c;
	return a->seq < b->seq ? 1 : -1;
}

static void sift_down(struct topk *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < t->n && better(t, &t->heap[m], &t->heap[l]) > 0)
			m = l;
		if (l + 1 < t->n && better(t, &t->heap[m], &t->heap[l + 1]) > 0)
			m = l + 1;
		if (m == i)
			return;
		struct trow x = t->heap[i];
		t->heap[i] = t->heap[m];
		t->heap[m] = x;
		i = m;
	}
}

static void sift_up(struct topk *t, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (better(t, &t->heap[p], &t->heap[i]) <= 0)
			return;
		struct trow x = t->heap[i];
		t->heap[i] = t->heap[p];
		t->heap[p] = x;
		i = p;
	}
}

static char *xmemdup(const char *p, size_t n)
{
	char *q = xmalloc(n + 1);
	memcpy(q, p, n);
	q[n] = 0;
	return q;
}

static bool parse_num(const char *k, size_t kn, double *out)
{
	char buf[64];
	while (kn && (*k == ' ' || *k == '\t'))
		k++, kn--;
	while (kn && (k[kn - 1] == ' ' || k[kn - 1] == '\r'))
		kn--;
	if (kn == 0 || kn >= sizeof buf)
		return false;
	memcpy(buf, k, kn);
	buf[kn] = 0;
	char *end;
	*out = strtod(buf, &end);
	return !*end && *out == *out;
}

static int topk_chunk(struct kchunk *ch, void *ctx)
{
	struct topk *t = ctx;
	const char *p = ch->data + ch->begin, *end = ch->data + ch->end, *release = p + (16 << 20);
	t->st.bytes_in += ch->end - ch->begin;
	if (t->header) {
		const char *h;
		size_t hn;
		if (!t->head && kchunk_header(ch, &h, &hn)) {
			t->head = xmemdup(h, hn);
			t->headlen = hn;
		}
		if (ch->begin == 0) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
		}
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *k = p;
		int c = 1;
		t->st.rows_in++;
		for (; c < t->col; c++) {
			const char *d = memchr(k, t->delim, (size_t)(le - k));
			if (!d)
				break;
			k = d + 1;
		}
		const char *d = c == t->col ? memchr(k, t->delim, (size_t)(le - k)) : NULL;
		struct trow row = {.seq = t->seq++, .len = (size_t)(le - p), .koff = (size_t)(k - p)};
		row.klen = (size_t)((d ? d : le) - k);
		if (c < t->col) {
			if (kbad_row(&t->bad, ch->file->path, kchunk_line(ch, p), "fewer than %d fields", t->col))
				return -2;
			goto next;
		}
		if (!t->string && !parse_num(k, row.klen, &row.num)) {
			if (kbad_row(&t->bad, ch->file->path, kchunk_line(ch, p), "key '%.*s' is not a number",
				     (int)(row.klen > 40 ? 40 : row.klen), k))
				return -2;
			goto next;
		}
		if (t->n < t->k) {
			if (t->n == t->cap) {
				t->cap = t->cap ? t->cap * 2 : 64;
				t->heap = xrealloc(t->heap, t->cap * sizeof *t->heap);
			}
			row.line = xmemdup(p, row.len);
			t->heap[t->n++] = row;
			sift_up(t, t->n - 1);
		} else {
			row.line = (char *)p; /* compare in place; copy only if kept */
			if (better(t, &row, &t->heap[0]) > 0) {
				free(t->heap[0].line);
				row.line = xmemdup(p, row.len);
				t->heap[0] = row;
				sift_down(t, 0);
			}
		}
next:
		p = nl ? nl + 1 : end;
		if (p >= release) {
			kchunk_release(ch, p);
			release = p + (16 << 20);
		}
	}
	return 0;
}

static struct topk *sort_ctx;

static int cmp_rows(const void *a, const void *b)
{
	return -better(sort_ctx, a, b);
}

enum { T_COUNT = 1, T_KEY, T_DELIM, T_STRING, T_SMALLEST, T_NAME, T_HEADER };
static const struct kopt topk_opts[] = {
	{"count", 'n', 1, T_COUNT},
	{"key", 'k', 1, T_KEY},
	{"delimiter", 't', 1, T_DELIM},
	{"string", 0, 0, T_STRING},
	{"smallest", 0, 0, T_SMALLEST},
	{"name", 0, 1, T_NAME},
	{"header", 0, 0, T_HEADER},
	{NULL, 0, 0, 0},
};

static int topk_opt(void *ctx, int id, const char *arg, char **err)
{
	struct topk *t = ctx;
	uint64_t v;
	switch (id) {
	case T_COUNT:
	case T_KEY:
		if (kparse_u64(arg, &v) || v < 1 || v > (id == T_KEY ? 100000 : 100000000)) {
			*err = kerrf("--%s '%s': expected a positive number", id == T_KEY ? "key" : "count", arg);
			return -1;
		}
		if (id == T_KEY)
			t->col = (int)v;
		else
			t->k = v;
		return 0;
	case T_DELIM:
		if (!strcmp(arg, "\\t"))
			arg = "\t";
		if (strlen(arg) != 1 || *arg == '\n') {
			*err = kerrf("--delimiter '%s': expected one byte", arg);
			return -1;
		}
		t->delim = *arg;
		return 0;
	case T_STRING: t->string = true; return 0;
	case T_SMALLEST: t->smallest = true; return 0;
	case T_NAME: t->name = arg; return 0;
	case T_HEADER: t->header = true; return 0;
	default: return 0;
	}
}

int kmain_topk(int argc, char **argv)
{
	struct topk t = {.col = 1, .delim = '\t', .k = 10};
	struct kout *out = NULL;
	struct kinput in = {0};
	struct kwriter *w;
	char name[64];
	int r = kopt_parse(argc, argv, topk_opts, topk_opt, &t, &t.c, topk_usage);
	if (r)
		return r == 1 ? 0 : r;
	if (t.c.ninputs == 0) {
		fprintf(stderr, "sluice-kernel topk: no input (try --help)\n");
		free(t.c.inputs);
		return 2;
	}
	kbad_init(&t.bad, &t.c, "topk");
	if (!t.name) {
		snprintf(name, sizeof name, "part-%05d.tsv", t.c.task);
		t.name = name;
	}
	r = kout_open(&out, &t.c, "topk", &t.err);
	if (r)
		goto done;
	if (!(w = kout_file(out, t.name, &t.err)) || kin_list(&in, t.c.inputs, t.c.ninputs, &t.err) ||
	    kin_split(&in, t.c.split_i, t.c.split_n, NULL, NULL, topk_chunk, &t, &t.err)) {
		kout_abort(out);
		r = -1;
		goto done;
	}
	sort_ctx = &t;
	qsort(t.heap, t.n, sizeof *t.heap, cmp_rows);
	if (t.head) {
		kw_write(w, t.head, t.headlen);
		kw_putc(w, '\n');
	}
	for (size_t i = 0; i < t.n; i++) {
		kw_write(w, t.heap[i].line, t.heap[i].len);
		kw_putc(w, '\n');
		w->rows++;
	}
	t.st.bad_rows = t.bad.count;
	r = kout_commit(out, &t.st, &t.err);
done:
	for (size_t i = 0; i < t.n; i++)
		free(t.heap[i].line);
	free(t.heap);
	free(t.head);
	kin_free(&in);
	free(t.c.inputs);
	if (r < 0) {
		if (t.err)
			fprintf(stderr, "sluice-kernel topk: %s\n", t.err);
		free(t.err);
		return 1;
	}
	free(t.err);
	return 0;
}
