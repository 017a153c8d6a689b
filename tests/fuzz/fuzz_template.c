/* The template renderer (orchestrator/template.h). Input: a template, then after a NUL byte the
 * value every name has ("no..." names are unknown). Besides crashes it checks the promise of
 * tmpl_render_shell(): the shell reads a value as data, whatever it holds. The command is
 * rendered twice, with the value and with a plain placeholder, and both are split into words as
 * /bin/sh would; the words must be the same once the placeholder is replaced by the value. */
#include "tests/fuzz/fuzz.h"

#include <errno.h>

#include "orchestrator/template.h"

#define PLACEHOLDER "Pq7Zx"

static int lookups;

static int lookup(void *ctx, const char *name, struct strbuf *out, char **err)
{
	if (!strncmp(name, "no", 2))
		return -ENOENT;
	lookups++;
	sb_puts(out, ctx);
	(void)err;
	return 0;
}

static int count_name(void *arg, const char *name)
{
	FUZZ_CHECK(*name, "an empty name");
	++*(int *)arg;
	return 0;
}

/* Appends one character as a word's data; quoted or not, \x01 marks what the shell would expand
 * or treat as syntax, \x02 ends a word. */
static void lex_special(struct strbuf *w, char c)
{
	sb_putc(w, '\x01');
	sb_putc(w, c);
}

/* Splits s into words the way sh's lexer does for quotes, backslashes, blanks, operators and
 * expansions ($ and `, which it marks rather than expands). */
static void sh_words(const char *s, struct strbuf *w)
{
	enum { BARE, SQ, DQ } q = BARE;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (q == SQ) {
			if (c == '\'')
				q = BARE;
			else
				sb_putc(w, c);
		} else if (q == DQ) {
			if (c == '"')
				q = BARE;
			else if (c == '\\' && p[1] && strchr("$`\"\\\n", p[1]))
				sb_putc(w, *++p);
			else if (c == '$' || c == '`')
				lex_special(w, c);
			else
				sb_putc(w, c);
		} else if (c == '\'') {
			q = SQ;
		} else if (c == '"') {
			q = DQ;
		} else if (c == '\\') {
			if (p[1])
				sb_putc(w, *++p);
		} else if (strchr(" \t\n", c)) {
			sb_putc(w, '\x02');
		} else if (strchr("|&;<>()$`*?[~#", c)) {
			lex_special(w, c);
		} else {
			sb_putc(w, c);
		}
	}
}

static int occurrences(const char *s)
{
	int n = 0;
	while ((s = strstr(s, PLACEHOLDER)))
		n++, s += strlen(PLACEHOLDER);
	return n;
}

/* Replaces every PLACEHOLDER in s by v. */
static char *replace(const char *s, const char *v)
{
	struct strbuf sb = {0};
	const char *p;
	while ((p = strstr(s, PLACEHOLDER))) {
		sb_add(&sb, s, (size_t)(p - s));
		sb_puts(&sb, v);
		s = p + strlen(PLACEHOLDER);
	}
	sb_puts(&sb, s);
	return sb_steal(&sb);
}

/* The shell reads the value as data: same words as with the placeholder. */
static void check_shell(const char *tmpl, const char *value, const char *with_value)
{
	char *with_ph = NULL, *err = NULL;
	if (strstr(tmpl, "raw") || strstr(tmpl, PLACEHOLDER) || strstr(value, PLACEHOLDER))
		return;
	lookups = 0;
	FUZZ_CHECK(tmpl_render_shell(tmpl, lookup, PLACEHOLDER, &with_ph, &err) == 0,
		   "renders with one value, not another: %s", err);
	struct strbuf a = {0}, b = {0};
	sh_words(with_value, &a);
	sh_words(with_ph, &b);
	/* The command's own text may spell the placeholder across quotes ("Pq'7Zx"). */
	if (occurrences(sb_str(&b)) != lookups)
		goto out;
	char *want = replace(sb_str(&b), value);
	FUZZ_CHECK(!strcmp(sb_str(&a), want), "template %s with value %s renders %s: the shell reads it otherwise",
		   tmpl, value, with_value);
	free(want);
out:
	sb_free(&a);
	sb_free(&b);
	free(with_ph);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tmpl = fuzz_str(data, size);
	size_t tl = strlen(tmpl);
	const char *value = tl < size ? tmpl + tl + 1 : "v";
	char *out = NULL, *err = NULL;
	int names = 0;
	int rn = tmpl_names(tmpl, count_name, &names);
	int rc = tmpl_render(tmpl, lookup, (void *)value, &out, &err);
	FUZZ_CHECK(rc == 0 ? out && !err : !out && err, "render returned %d with out %s err %s", rc, out ? "set" : "NULL", err ? "set" : "NULL");
	FUZZ_CHECK(rn == 0 || rc != 0, "tmpl_names refused what tmpl_render took");
	free(out);
	free(err);
	out = err = NULL;
	rc = tmpl_render_shell(tmpl, lookup, (void *)value, &out, &err);
	FUZZ_CHECK(rc == 0 ? out && !err : !out && err, "render_shell returned %d", rc);
	if (rc == 0)
		check_shell(tmpl, value, out);
	free(out);
	free(err);
	free(tmpl);
	return 0;
}
