/* The dispatcher of the command table: words to entry, the command line to struct cmd_args,
 * usage and help printed the same way for every command. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static bool is_help(const char *s) { return !strcmp(s, "--help") || !strcmp(s, "-h") || !strcmp(s, "help"); }

void cmd_usage(FILE *f, const struct cmd_entry *e)
{
	fprintf(f, "usage: sluice %s%s%s%s%s", e->group, e->name ? " " : "", e->name ? e->name : "",
		e->args ? " " : "", e->args ? e->args : "");
	for (const struct cmd_opt *o = e->opts; o && o->name; o++)
		fprintf(f, " %s--%s%s%s%s", o->required ? "" : "[", o->name, o->arg ? " " : "", o->arg ? o->arg : "",
			o->required ? "" : "]");
	fputc('\n', f);
}

int cmd_usage_error(const struct cmd_entry *e, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "sluice %s%s%s: ", e->group, e->name ? " " : "", e->name ? e->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cmd_usage(stderr, e);
	fprintf(stderr, "Run `sluice help %s%s%s` for more.\n", e->group, e->name ? " " : "", e->name ? e->name : "");
	return 2;
}

int cmd_int_opt(const struct cmd_entry *e, const struct cmd_args *a, char key, long min, long max, int *out)
{
	if (!a->set[(int)key])
		return 0;
	char *end;
	long v = strtol(a->val[(int)key], &end, 10);
	const char *name = "?";
	for (const struct cmd_opt *o = e->opts; o && o->name; o++)
		if (o->key == key)
			name = o->name;
	if (!*a->val[(int)key] || *end || v < min || v > max)
		return cmd_usage_error(e, "--%s: \"%s\" is not an integer from %ld to %ld", name, a->val[(int)key], min,
				       max);
	*out = (int)v;
	return 0;
}

static void print_help(const struct cmd_entry *e)
{
	cmd_usage(stdout, e);
	printf("\n%s\n", e->help ? e->help : e->summary);
	if (!e->opts || !e->opts->name)
		return;
	printf("\nOptions:\n");
	for (const struct cmd_opt *o = e->opts; o->name; o++) {
		char left[80], shortf[8] = "    ";
		if (o->short_too)
			snprintf(shortf, sizeof(shortf), "-%c, ", o->key);
		snprintf(left, sizeof(left), "%s--%s%s%s", shortf, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		printf("  %-30s %s\n", left, o->help);
	}
}

/* The commands of group, as a list (for `sluice GROUP` and `sluice help GROUP`). */
static void print_group(FILE *f, const char *group)
{
	fprintf(f, "usage: sluice %s COMMAND ...\n\n", group);
	for (size_t i = 0; cmd_table[i]; i++) {
		const struct cmd_entry *e = cmd_table[i];
		if (!strcmp(e->group, group) && e->name)
			fprintf(f, "  %-10s %s\n", e->name, e->summary);
	}
	fprintf(f, "\nRun `sluice help %s COMMAND` for the arguments and options of one.\n", group);
}

static bool group_exists(const char *group)
{
	for (size_t i = 0; cmd_table[i]; i++)
		if (!strcmp(cmd_table[i]->group, group))
			return true;
	return false;
}

/* The entry named by words[0] (and words[1] for a group); *used says how many words it took. */
static const struct cmd_entry *find_entry(int n, char **words, int *used)
{
	for (size_t i = 0; n > 0 && cmd_table[i]; i++) {
		const struct cmd_entry *e = cmd_table[i];
		if (strcmp(e->group, words[0]))
			continue;
		if (!e->name) {
			*used = 1;
			return e;
		}
		if (n > 1 && !strcmp(e->name, words[1])) {
			*used = 2;
			return e;
		}
	}
	return NULL;
}

/* The option of e that word names ("--conf", "--conf=x" or "-n"), or NULL. */
static const struct cmd_opt *find_opt(const struct cmd_entry *e, const char *word, const char **inline_val)
{
	*inline_val = NULL;
	for (const struct cmd_opt *o = e->opts; o && o->name; o++) {
		size_t n = strlen(o->name);
		if (word[1] == '-' && !strncmp(word + 2, o->name, n) && (!word[2 + n] || word[2 + n] == '=')) {
			if (word[2 + n] == '=')
				*inline_val = word + 3 + n;
			return o;
		}
		if (word[1] == o->key && o->short_too && word[1] != '-') {
			if (word[2]) /* -n5: the value attached */
				*inline_val = word + 2;
			return o;
		}
	}
	return NULL;
}

/* A word that is an argument although it starts with '-': "-" and negative numbers ("-1"). */
static bool is_positional(const char *w)
{
	return w[0] != '-' || !w[1] || (w[1] >= '0' && w[1] <= '9');
}

/* Parses argv (argv[0] is the command's last word; options may come anywhere, "--" ends them)
 * into *a, whose argv it allocates. Returns 0, 1 for --help, or 2 after a usage error. */
static int parse(const struct cmd_entry *e, int argc, char **argv, struct cmd_args *a)
{
	memset(a, 0, sizeof(*a));
	a->argv = calloc((size_t)argc + 1, sizeof(char *));
	bool options = true;
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i], *v;
		if (!options || is_positional(w)) {
			a->argv[a->argc++] = argv[i];
			continue;
		}
		if (!strcmp(w, "--")) {
			options = false;
			continue;
		}
		if (!strcmp(w, "--help") || !strcmp(w, "-h"))
			return 1;
		const struct cmd_opt *o = find_opt(e, w, &v);
		if (!o)
			return cmd_usage_error(e, "unknown option %s", w);
		if (o->arg && !v && i + 1 >= argc)
			return cmd_usage_error(e, "option %s needs a value (%s)", w, o->arg);
		if (!o->arg && v)
			return cmd_usage_error(e, "option --%s takes no value", o->name);
		a->set[(int)o->key] = true;
		a->val[(int)o->key] = o->arg ? (v ? v : argv[++i]) : NULL;
	}
	if (a->argc < e->min_args)
		return cmd_usage_error(e, "missing %s", e->args ? e->args : "arguments");
	if (e->max_args >= 0 && a->argc > e->max_args)
		return cmd_usage_error(e, "unexpected argument '%s'", a->argv[e->max_args]);
	for (const struct cmd_opt *o = e->opts; o && o->name; o++)
		if (o->required && !a->set[(int)o->key])
			return cmd_usage_error(e, "--%s is required", o->name);
	return 0;
}

/* `sluice help [GROUP [NAME]]` */
static int help(int argc, char **argv)
{
	int used = 0;
	const struct cmd_entry *e = find_entry(argc, argv, &used);
	if (e && (!e->name || used == 2)) {
		print_help(e);
		return 0;
	}
	if (argc >= 1 && group_exists(argv[0])) {
		print_group(stdout, argv[0]);
		return argc == 1 ? 0 : 2;
	}
	fprintf(stderr, "sluice help: no command '%s'\n", argc ? argv[0] : "");
	return 2;
}

int cmd_dispatch(struct cli_ctx *cli, int argc, char **argv)
{
	int used = 0;
	if (argc >= 1 && !strcmp(argv[0], "help"))
		return help(argc - 1, argv + 1);
	const struct cmd_entry *e = find_entry(argc, argv, &used);
	if (!e) {
		if (argc >= 1 && group_exists(argv[0])) {
			bool asked = argc >= 2 && is_help(argv[1]);
			if (argc >= 2 && !asked)
				fprintf(stderr, "sluice %s: unknown command '%s'\n\n", argv[0], argv[1]);
			print_group(asked ? stdout : stderr, argv[0]);
			return asked ? 0 : 2;
		}
		fprintf(stderr, "sluice: unknown command '%s' (see `sluice help`)\n", argc ? argv[0] : "");
		return 2;
	}
	if (!e->name && argc >= 2 && !strcmp(argv[1], "help")) {
		print_help(e);
		return 0;
	}
	struct cmd_args a;
	int rc = parse(e, argc - used + 1, argv + used - 1, &a);
	if (rc == 1) {
		print_help(e);
		rc = 0;
	} else if (rc == 0) {
		rc = e->fn(cli, &a);
		if (cli_audited(e))
			cli_audit(cli, e, argc, argv, &a, rc);
	}
	free(a.argv);
	return rc;
}
