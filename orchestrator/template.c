#include "orchestrator/template.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* One "{{ ... }}" expression: either a name (with an optional "| raw") or a quoted literal. */
struct expr {
	const char *start, *end; /* of the name or literal body */
	bool literal;
	bool raw;                /* "{{ name | raw }}": inserted into a shell command unquoted */
	const char *next;        /* first character after "}}" */
};

/* Reads an optional "| raw" after a name; false with *why for another filter. */
static bool parse_filter(const char **pp, struct expr *e, const char **why)
{
	const char *p = *pp;
	if (*p != '|')
		return true;
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "raw", 3) || name_char(p[3])) {
		*why = "unknown filter (the only one is '| raw')";
		return false;
	}
	e->raw = true;
	p += 3;
	while (*p == ' ' || *p == '\t')
		p++;
	*pp = p;
	return true;
}

/* Parses the expression that starts right after "{{" at p. Returns 0 or -EINVAL with a message. */
static int parse_expr(const char *p, struct expr *e, const char **why)
{
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\'' || *p == '"') {
		char q = *p++;
		e->start = p;
		while (*p && *p != q)
			p++;
		if (!*p) {
			*why = "unterminated string literal";
			return -EINVAL;
		}
		e->end = p++;
		e->literal = true;
		e->raw = false;
	} else {
		e->start = p;
		while (name_char(*p))
			p++;
		e->end = p;
		e->literal = false;
		e->raw = false;
		if (e->start == e->end) {
			*why = "empty or invalid expression";
			return -EINVAL;
		}
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (!e->literal && !parse_filter(&p, e, why))
		return -EINVAL;
	if (p[0] != '}' || p[1] != '}') {
		*why = *p ? "expected '}}' (only plain names and quoted strings are supported)"
			  : "missing '}}'";
		return -EINVAL;
	}
	e->next = p + 2;
	return 0;
}

/* Where a shell command's text is: what a value inserted there must be quoted for. */
enum sh_ctx { SH_BARE, SH_SINGLE, SH_DOUBLE };

/* Advances the quoting context over literal shell text. *escaped tells whether the text ends
 * with a backslash that escapes what comes next (text that is empty leaves it as it was). */
static enum sh_ctx sh_scan(enum sh_ctx q, const char *p, size_t n, bool *escaped)
{
	if (n)
		*escaped = false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (q == SH_SINGLE) {
			if (c == '\'')
				q = SH_BARE;
		} else if (c == '\\') {
			*escaped = ++i == n; /* the next character is escaped */
		} else if (q == SH_DOUBLE) {
			if (c == '"')
				q = SH_BARE;
		} else if (c == '\'') {
			q = SH_SINGLE;
		} else if (c == '"') {
			q = SH_DOUBLE;
		}
	}
	return q;
}

static bool sh_safe(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr("_@%+=:,./-", v[i]))
			return false;
	return n > 0;
}

/* Appends value v so that the shell reads it as data in context q, whatever it holds. */
static void sh_quote(struct strbuf *out, enum sh_ctx q, const char *v, size_t n)
{
	if (q == SH_BARE && sh_safe(v, n)) {
		sb_add(out, v, n);
		return;
	}
	if (q == SH_BARE)
		sb_putc(out, '\'');
	for (size_t i = 0; i < n; i++) {
		if (q != SH_DOUBLE && v[i] == '\'')
			sb_puts(out, "'\\''"); /* close, an escaped quote, reopen */
		else if (q == SH_DOUBLE && strchr("$`\"\\", v[i]))
			sb_putc(out, '\\'), sb_putc(out, v[i]);
		else
			sb_putc(out, v[i]);
	}
	if (q == SH_BARE)
		sb_putc(out, '\'');
}

/* Renders one name's value into sb (quoted for q when shell is set). */
static int render_name(const char *s, const struct expr *e, tmpl_lookup_fn lookup, void *ctx, bool shell,
		       enum sh_ctx q, struct strbuf *sb, char **err)
{
	char *name = xstrndup(e->start, (size_t)(e->end - e->start)), *lerr = NULL;
	struct strbuf val = {0};
	int rc = lookup(ctx, name, &val, &lerr);
	if (rc < 0) {
		if (lerr)
			*err = xasprintf("template error in \"%s\": %s", s, lerr);
		else
			*err = xasprintf("template error in \"%s\": unknown template name '%s'", s, name);
	} else if (shell && !e->raw) {
		sh_quote(sb, q, sb_str(&val), val.len);
	} else {
		sb_add(sb, sb_str(&val), val.len);
	}
	free(lerr);
	free(name);
	sb_free(&val);
	return rc < 0 ? -EINVAL : 0;
}

static int render(const char *s, tmpl_lookup_fn lookup, void *ctx, bool shell, char **out, char **err)
{
	struct strbuf sb = {0};
	const char *p = s;
	enum sh_ctx q = SH_BARE;
	bool escaped = false;

	*out = NULL;
	while (*p) {
		const char *open = strstr(p, "{{");
		if (!open) {
			sb_puts(&sb, p);
			break;
		}
		sb_add(&sb, p, (size_t)(open - p));
		q = sh_scan(q, p, (size_t)(open - p), &escaped);
		struct expr e;
		const char *why;
		if (parse_expr(open + 2, &e, &why) < 0) {
			*err = xasprintf("template error in \"%s\": %s", s, why);
			goto fail;
		}
		if (e.literal) {
			/* A literal is part of the command's own text. */
			sb_add(&sb, e.start, (size_t)(e.end - e.start));
			q = sh_scan(q, e.start, (size_t)(e.end - e.start), &escaped);
		} else if (shell && !e.raw && escaped) {
			/* "\{{ x }}" would escape the value's opening quote (or, inside "...", the
			 * backslash that quotes its $), and the shell would read the value as code. */
			*err = xasprintf("template error in \"%s\": a backslash right before {{ name }} would escape "
					 "the value's quoting", s);
			goto fail;
		} else if (render_name(s, &e, lookup, ctx, shell, q, &sb, err) < 0) {
			goto fail;
		}
		p = e.next;
	}
	*out = sb_steal(&sb);
	return 0;
fail:
	sb_free(&sb);
	return -EINVAL;
}

int tmpl_render(const char *s, tmpl_lookup_fn lookup, void *ctx, char **out, char **err)
{
	return render(s, lookup, ctx, false, out, err);
}

int tmpl_render_shell(const char *s, tmpl_lookup_fn lookup, void *ctx, char **out, char **err)
{
	return render(s, lookup, ctx, true, out, err);
}

int tmpl_names(const char *s, int (*fn)(void *arg, const char *name), void *arg)
{
	const char *p = s;
	while ((p = strstr(p, "{{"))) {
		struct expr e;
		const char *why;
		if (parse_expr(p + 2, &e, &why) < 0)
			return -EINVAL;
		if (!e.literal) {
			char *name = xstrndup(e.start, (size_t)(e.end - e.start));
			int rc = fn(arg, name);
			free(name);
			if (rc)
				return rc;
		}
		p = e.next;
	}
	return 0;
}
