/* Templating of task fields: "{{ name }}" is replaced by the value of name; "{{ 'text' }}" by the
 * literal text (the way to write a literal "{{"). Names are [A-Za-z0-9_.-]+ (e.g. ds,
 * params.region, outputs.extract.rows). An unknown name is an error, never an empty string.
 *
 * In a shell command (tmpl_render_shell) every value is quoted for where it stands, so that the
 * shell reads it as data whatever it holds: bare, it is single-quoted (unless it is made only of
 * [A-Za-z0-9_@%+=:,./-]); inside '...' its quotes are escaped; inside "..." its $ ` " and \ are.
 * "{{ name | raw }}" inserts a value unquoted, for the rare template that means to write shell
 * syntax (and so trusts whoever sets that value). */
#ifndef SLUICE_TEMPLATE_H
#define SLUICE_TEMPLATE_H

#include "base/util.h"

/* Appends the value of name to out and returns 0, or returns -ENOENT for an unknown name (then
 * *err may be set to a specific message, malloc'd). */
typedef int (*tmpl_lookup_fn)(void *ctx, const char *name, struct strbuf *out, char **err);

/* Renders s into a new string (*out, caller frees). Returns 0, or -EINVAL with *err set
 * (malloc'd), e.g. "unknown template name 'foo' in \"echo {{ foo }}\"". */
int tmpl_render(const char *s, tmpl_lookup_fn lookup, void *ctx, char **out, char **err);

/* The same for a command that /bin/sh -c runs: values are quoted (see the top of this file). */
int tmpl_render_shell(const char *s, tmpl_lookup_fn lookup, void *ctx, char **out, char **err);

/* Calls fn for every name used in s (not literals); stops at the first non-zero return and
 * returns it. Returns -EINVAL for a malformed template. */
int tmpl_names(const char *s, int (*fn)(void *arg, const char *name), void *arg);

#endif
