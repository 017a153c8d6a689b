#include "web/router.h"

#include <stdlib.h>
#include <string.h>

void router_params_free(struct route_params *p)
{
	for (int i = 0; i < p->n; i++) {
		free(p->name[i]);
		free(p->value[i]);
	}
	p->n = 0;
}

const char *router_param(const struct route_params *p, const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->name[i], name))
			return p->value[i];
	return NULL;
}

/* Matches path against a pattern segment by segment, filling p's parameters. */
static bool match_path(const char *pattern, const char *path, struct route_params *p)
{
	router_params_free(p);
	while (*pattern && *path) {
		if (*pattern != '/' || *path != '/')
			return false;
		pattern++;
		path++;
		const char *pe = strchr(pattern, '/'), *se = strchr(path, '/');
		size_t pl = pe ? (size_t)(pe - pattern) : strlen(pattern);
		size_t sl = se ? (size_t)(se - path) : strlen(path);
		if (pattern[0] == '{') {
			if (sl == 0 || p->n == API_MAX_PARAMS)
				return false;
			p->name[p->n] = xstrndup(pattern + 1, pl - 2);
			p->value[p->n] = xstrndup(path, sl);
			p->n++;
		} else if (pl != sl || strncmp(pattern, path, pl)) {
			return false;
		}
		pattern += pl;
		path += sl;
	}
	return !*pattern && !*path;
}

/* Whether pattern a is more specific than b: at the first segment where one has a literal and
 * the other a {parameter}, a has the literal (".../logs/{n}" beats ".../{map_index}/tries"). */
static bool more_specific(const char *a, const char *b)
{
	while (*a && *b) {
		bool pa = a[1] == '{', pb = b[1] == '{';
		if (pa != pb)
			return !pa;
		const char *ae = strchr(a + 1, '/'), *be = strchr(b + 1, '/');
		a = ae ? ae : a + strlen(a);
		b = be ? be : b + strlen(b);
	}
	return false;
}

const struct route *router_find(const struct route *const *tables, const char *method, const char *path,
				struct route_params *p, bool *path_known)
{
	const struct route *match = NULL;
	*path_known = false;
	for (size_t t = 0; tables[t]; t++) {
		for (const struct route *rt = tables[t]; rt->method; rt++) {
			if (!match_path(rt->path, path, p))
				continue;
			*path_known = true;
			if (!strcmp(rt->method, method) && (!match || more_specific(rt->path, match->path)))
				match = rt;
		}
	}
	router_params_free(p);
	if (match)
		match_path(match->path, path, p);
	return match;
}
