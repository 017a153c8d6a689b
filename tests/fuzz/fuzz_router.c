/* The router (web/router.h) over the server's real route tables, on "METHOD /path?query" as a
 * request line names them; query values go through the parsers handlers apply to them (ISO 8601
 * times, UTF-8). Checks that a match is the method asked for and that its parameters, put back
 * into its pattern, give the path. */
#include "tests/fuzz/fuzz.h"

#include "web/router.h"
#include "web/server.h"

/* The path the pattern names with p's values. */
static char *expand(const char *pattern, const struct route_params *p)
{
	struct strbuf sb = {0};
	int k = 0;
	for (const char *s = pattern; *s; s++) {
		if (*s != '{') {
			sb_putc(&sb, *s);
			continue;
		}
		FUZZ_CHECK(k < p->n, "%s: fewer parameters than in the pattern", pattern);
		const char *end = strchr(s, '}');
		FUZZ_CHECK(end && (size_t)(end - s - 1) == strlen(p->name[k]) && !strncmp(s + 1, p->name[k], strlen(p->name[k])),
			   "%s: parameter %d is %s", pattern, k, p->name[k]);
		FUZZ_CHECK(*p->value[k] && !strchr(p->value[k], '/'), "parameter %s = '%s'", p->name[k], p->value[k]);
		sb_puts(&sb, p->value[k++]);
		s = end;
	}
	FUZZ_CHECK(k == p->n, "%s: more parameters than in the pattern", pattern);
	return sb_steal(&sb);
}

static void route(const char *method, const char *url)
{
	const char *prefix = "/api/v1";
	bool root = strncmp(url, prefix, 7) || (url[7] && url[7] != '/');
	const char *path = root ? url : url + 7;
	struct route_params p = {0};
	bool known = true;
	const struct route *r = router_find(server_route_tables(root), method, path, &p, &known);
	if (r) {
		FUZZ_CHECK(known && !strcmp(r->method, method), "%s %s matched %s %s", method, path, r->method, r->path);
		char *back = expand(r->path, &p);
		FUZZ_CHECK(!strcmp(back, path), "%s matched %s, which gives %s", path, r->path, back);
		free(back);
		for (int i = 0; i < p.n; i++)
			FUZZ_CHECK(router_param(&p, p.name[i]), "parameter %s not found", p.name[i]);
	}
	router_params_free(&p);
}

/* Each value of the query through what handlers do with one. */
static void query(char *q)
{
	char *save = NULL;
	for (char *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '=');
		usec_t t;
		if (!v)
			continue;
		*v++ = '\0';
		if (!utf8_valid(v, strlen(v)))
			continue;
		if (parse_iso8601(v, &t) == 0)
			FUZZ_CHECK(t != USEC_NONE, "parse_iso8601('%s') gave USEC_NONE", v);
		usec_t d;
		(void)parse_duration(v, &d);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	char *sp = strchr(s, ' ');
	const char *method = "GET";
	char *url = s;
	if (sp) {
		*sp = '\0';
		method = s;
		url = sp + 1;
	}
	char *q = strchr(url, '?');
	if (q)
		*q++ = '\0';
	route(method, url);
	if (q)
		query(q);
	free(s);
	return 0;
}
