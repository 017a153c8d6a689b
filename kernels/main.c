/* sluice-kernel: the native data kernels that DAG tasks run (docs/kernels.md).
 * A subcommand table in the manner of tmux's cmd_table: argv[1] names the entry. */
#include <stdio.h>
#include <string.h>

#include "kernels/kernel.h"

struct kcmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct kcmd kcmds[] = {
	{"wordcount", kmain_wordcount, "count words (map | reduce), TSV word<TAB>count"},
	{"partition", kmain_partition, "hash-partition rows by a key column into N files"},
	{"merge", kmain_merge, "k-way merge of sorted files"},
	{"sort", kmain_sort, "external merge sort of lines by a key column, bounded memory"},
	{"topk", kmain_topk, "the K largest (or smallest) rows by a numeric column"},
	/* K2: groupby and join entries go here (keep this marker). */
	/* @@K2-TABLE@@ */
	{"groupby", kmain_groupby, "group CSV/TSV rows by key: sum count min max mean first last (run | map | reduce)"},
	{"join", kmain_join, "hash join of two CSV/TSV inputs on a key: inner, left, full (broadcast or partitioned)"},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sluice-kernel SUBCOMMAND [OPTIONS] [INPUT...]\n"
		   "       sluice-kernel SUBCOMMAND --help\n\nsubcommands:\n");
	for (const struct kcmd *c = kcmds; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nSee docs/kernels.md. Version " SLUICE_VERSION ".\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("sluice-kernel " SLUICE_VERSION "\n");
		return 0;
	}
	for (const struct kcmd *c = kcmds; c->name; c++)
		if (!strcmp(c->name, argv[1]))
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "sluice-kernel: unknown subcommand '%s' (try sluice-kernel --help)\n", argv[1]);
	return 2;
}
