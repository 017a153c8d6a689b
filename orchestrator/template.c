#include "orchestrator/template.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* One "{{ ... }}" expression: either a name or a quoted literal. */
struct expr {
	const char *start, *end; /* of the name or literal body */
	bool literal;
	const char *next;        /* first character after "}}" */
};

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
	} else {
		e->start = p;
		while (name_char(*p))
			p++;
		e->end = p;
		e->literal = false;
		if (e->start == e->end) {
			*why = "empty or invalid expression";
			return -EINVAL;
		}
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (p[0] != '}' || p[1] != '}') {
		*why = *p ? "expected '}}' (only plain names and quoted strings are supported)"
			  : "missing '}}'";
		return -EINVAL;
	}
	e->next = p + 2;
	return 0;
}

int tmpl_render(const char *s, tmpl_lookup_fn lookup, void *ctx, char **out, char **err)
{
	struct strbuf sb = {0};
	const char *p = s;

	*out = NULL;
	while (*p) {
		const char *open = strstr(p, "{{");
		if (!open) {
			sb_puts(&sb, p);
			break;
		}
		sb_add(&sb, p, (size_t)(open - p));
		struct expr e;
		const char *why;
		if (parse_expr(open + 2, &e, &why) < 0) {
			*err = xasprintf("template error in \"%s\": %s", s, why);
			goto fail;
		}
		if (e.literal) {
			sb_add(&sb, e.start, (size_t)(e.end - e.start));
		} else {
			char *name = xstrndup(e.start, (size_t)(e.end - e.start));
			char *lerr = NULL;
			int rc = lookup(ctx, name, &sb, &lerr);
			if (rc < 0) {
				if (lerr)
					*err = xasprintf("template error in \"%s\": %s", s, lerr);
				else
					*err = xasprintf("template error in \"%s\": unknown template name '%s'", s, name);
				free(lerr);
				free(name);
				goto fail;
			}
			free(name);
		}
		p = e.next;
	}
	*out = sb_steal(&sb);
	return 0;
fail:
	sb_free(&sb);
	return -EINVAL;
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
