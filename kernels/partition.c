/* sluice-kernel partition: hash-partition lines by a key column into N shuffle files.
 * Line L goes to partition kpartition_of(khash64(key), N), the same function every kernel uses, so
 * a key's rows from every map task meet in one partition. Lines keep their input order within a
 * file. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/kernel.h"

static const char partition_usage[] =
	"usage: sluice-kernel partition -o SHUFFLE_DIR --partitions N [-k COL] [-t SEP] [--split I/N]\n"
	"                               INPUT...\n"
	"Hash-partition the lines of split I of N of the inputs by field COL (1-based; default the whole\n"
	"line) into SHUFFLE_DIR/m-TTTTT.p-PPPPP.tsv, P = 0..N-1 (T = --task, default I). Lines keep their\n"
	"order. A line with fewer than COL fields is a bad row (--bad-rows). A last line without a newline\n"
	"gets one.\n\n"
	"  -o, --output DIR      shuffle directory (created)\n"
	"  --partitions N        number of partitions\n"
	"  -k, --key COL         key field (default: whole line)\n"
	"  -t, --delimiter SEP   field separator, one byte (default TAB)\n"
	"  --header              the first line of every input file is a header: not a row; it heads\n"
	"                        every partition file\n";

struct part {
	struct kcommon c;
	int col;
	char delim;
	bool header, head_done;
	struct kwriter **w;
	struct kbad bad;
	struct kstats st;
	char *err;
};

enum { P_KEY = 1, P_DELIM, P_HEADER };
static const struct kopt part_opts[] = {
	{"key", 'k', 1, P_KEY},
	{"delimiter", 't', 1, P_DELIM},
	{"header", 0, 0, P_HEADER},
	{NULL, 0, 0, 0},
};

static int part_opt(void *ctx, int id, const char *arg, char **err)
{
	struct part *p = ctx;
	uint64_t v;
	if (id == P_HEADER) {
		p->header = true;
		return 0;
	}
	if (id == P_KEY) {
		if (kparse_u64(arg, &v) || v < 1 || v > 100000) {
			*err = kerrf("--key '%s': expected a column number from 1", arg);
			return -1;
		}
		p->col = (int)v;
		return 0;
	}
	if (!strcmp(arg, "\\t"))
		arg = "\t";
	if (strlen(arg) != 1 || *arg == '\n') {
		*err = kerrf("--delimiter '%s': expected one byte", arg);
		return -1;
	}
	p->delim = *arg;
	return 0;
}

static int part_chunk(struct kchunk *ch, void *ctx)
{
	struct part *pt = ctx;
	const char *p = ch->data + ch->begin, *end = ch->data + ch->end, *release = p + (16 << 20);
	uint32_t n = pt->c.partitions;
	pt->st.bytes_in += ch->end - ch->begin;
	if (pt->header) {
		const char *h;
		size_t hn;
		if (!pt->head_done && kchunk_header(ch, &h, &hn)) {
			for (uint32_t i = 0; i < n; i++) {
				kw_write(pt->w[i], h, hn);
				kw_putc(pt->w[i], '\n');
			}
			pt->head_done = true;
		}
		if (ch->begin == 0) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
		}
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *k = p, *ke = le;
		pt->st.rows_in++;
		if (pt->col > 0) {
			int c = 1;
			for (; c < pt->col; c++) {
				const char *d = memchr(k, pt->delim, (size_t)(le - k));
				if (!d)
					break;
				k = d + 1;
			}
			if (c < pt->col) {
				if (kbad_row(&pt->bad, ch->file->path, kchunk_line(ch, p), "fewer than %d fields", pt->col))
					return -2;
				p = nl ? nl + 1 : end;
				continue;
			}
			const char *d = memchr(k, pt->delim, (size_t)(le - k));
			ke = d ? d : le;
		}
		struct kwriter *w = pt->w[kpartition_of(khash64(k, (size_t)(ke - k)), n)];
		kw_write(w, p, (size_t)(le - p));
		kw_putc(w, '\n');
		w->rows++;
		p = nl ? nl + 1 : end;
		if (p >= release) {
			kchunk_release(ch, p);
			release = p + (16 << 20);
		}
	}
	return 0;
}

int kmain_partition(int argc, char **argv)
{
	struct part pt = {.delim = '\t'};
	struct kout *out = NULL;
	struct kinput in = {0};
	int r = kopt_parse(argc, argv, part_opts, part_opt, &pt, &pt.c, partition_usage);
	if (r)
		return r == 1 ? 0 : r;
	if (pt.c.ninputs == 0) {
		fprintf(stderr, "sluice-kernel partition: no input (try --help)\n");
		free(pt.c.inputs);
		return 2;
	}
	kbad_init(&pt.bad, &pt.c, "partition");
	r = kout_open(&out, &pt.c, "partition", &pt.err);
	if (r)
		goto done;
	pt.w = xcalloc(pt.c.partitions, sizeof *pt.w);
	for (uint32_t p = 0; p < pt.c.partitions && !r; p++) {
		char name[32];
		kshuffle_name(name, sizeof name, pt.c.task, p);
		if (!(pt.w[p] = kout_file(out, name, &pt.err)))
			r = -1;
	}
	if (!r && (kin_list(&in, pt.c.inputs, pt.c.ninputs, &pt.err) ||
		   kin_split(&in, pt.c.split_i, pt.c.split_n, NULL, NULL, part_chunk, &pt, &pt.err)))
		r = -1;
	if (r) {
		kout_abort(out);
	} else {
		pt.st.bad_rows = pt.bad.count;
		r = kout_commit(out, &pt.st, &pt.err);
	}
done:
	free(pt.w);
	kin_free(&in);
	free(pt.c.inputs);
	if (r < 0) {
		if (pt.err)
			fprintf(stderr, "sluice-kernel partition: %s\n", pt.err);
		free(pt.err);
		return 1;
	}
	free(pt.err);
	return 0;
}
