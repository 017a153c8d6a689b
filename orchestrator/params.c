#include "orchestrator/params.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static const char *const json_types[] = {"string", "integer", "number", "boolean", "object", "array", "null", NULL};

static bool known_type(const char *t)
{
	for (size_t i = 0; json_types[i]; i++)
		if (!strcmp(json_types[i], t))
			return true;
	return false;
}

static int bad(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(char **err, const char *fmt, ...)
{
	struct strbuf sb = {0};
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	*err = sb_steal(&sb);
	return -EINVAL;
}

/* Characters, not bytes, as JSON Schema counts a string's length. */
static size_t utf8_length(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* glibc's regcomp copies the expression a repetition applies to ("x+" is "xx*", "x{3}" three
 * x), so stacked or nested repetitions ("a+++...", "((a{9}){9}){9}") take exponential time and
 * memory before it returns, empty paths make its closure computation quadratic, and
 * back-references make regexec exponential. Estimates the size regcomp builds (an atom 1, a
 * group the sum of its parts plus its two bracket nodes, "+" twice what it follows, "*" and "?"
 * three times, "{m,n}" n + 1 times (n + 2 when m is 0), an alternative "|" four) and refuses
 * patterns over a bound (2000: "[a-z0-9.-]{1,253}" costs 254), empty groups and alternatives,
 * stacked repetitions ("a*+") and groups nested deeper than 60. */
#define PATTERN_MAX_COST 2000.0

static double pattern_cost(const char *p)
{
	const char *start = p;
	double sum[64] = {0}, last[64] = {0};
	int depth = 0;
	bool after_rep = false; /* the previous token was a repetition */
	for (; *p; p++) {
		double factor = *p == '+' ? 2 : 3; /* "*" and "?" also add an empty path, which glibc's
		                                      * closures pay for */
		bool rep = *p == '*' || *p == '?' || *p == '+' || *p == '{';
		/* "a*+", "a+{3}": undefined in POSIX EREs, and glibc builds and runs them in time
		 * exponential in the stack; no pattern needs them. */
		if (rep && after_rep)
			return INFINITY;
		after_rep = rep;
		if (*p == '|') {
			/* An empty alternative ("a||b", "(|a)", "(a|)"): undefined in POSIX EREs, and a web
			 * of empty transitions whose closures glibc computes in quadratic time. */
			if (p[1] == '|' || p[1] == ')' || p[1] == 0 || p == start || p[-1] == '(')
				return INFINITY;
			/* An alternative: its branch and join nodes, closures glibc computes for each. */
			sum[depth] += 4;
			last[depth] = 0;
			continue;
		}
		if (*p == '(') {
			if (depth >= 60)
				return INFINITY;
			sum[++depth] = 0;
			last[depth] = 0;
			continue;
		} else if (*p == ')' && depth > 0) {
			if (sum[depth] == 0)
				return INFINITY; /* "()": an empty loop when repeated, quadratic in glibc */
			double g = sum[depth--] + 2;
			sum[depth] += g;
			last[depth] = g;
			continue;
		} else if (*p == '{') {
			char *end;
			double m = strtod(p + 1, &end), n = m;
			if (*end == ',')
				n = end[1] == '}' ? m + 1 : strtod(end + 1, &end);
			factor = (n > m ? n : m) + 1 + (m == 0); /* "{0,n}" may be empty */
			const char *close = strchr(p, '}');
			if (!close)
				break;
			p = close;
		} else if (*p != '*' && *p != '?') {
			if (*p == '[')
				p += strcspn(p + 1, "]") + (p[1] == ']' ? 1 : 0);
			else if (*p == '\\' && p[1] >= '1' && p[1] <= '9')
				return INFINITY; /* a back-reference: regexec may take exponential time */
			else if (*p == '\\' && p[1])
				p++;
			last[depth] = 1;
			sum[depth] += 1;
			if (!*p)
				break;
			continue;
		}
		/* A repetition multiplies what it follows. */
		sum[depth] += last[depth] * (factor - 1);
		last[depth] *= factor;
		if (sum[depth] > PATTERN_MAX_COST)
			return sum[depth];
	}
	return sum[0] + (depth ? sum[depth] : 0);
}

/* regcomp() for a schema's pattern, refusing what would take it too long. */
static int pattern_compile(regex_t *re, const char *pattern)
{
	if (strlen(pattern) > 4096 || pattern_cost(pattern) > PATTERN_MAX_COST)
		return REG_ESIZE;
	return regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
}

int params_check_schema(const cJSON *schema, char **err)
{
	static const char *const numbers[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
					      "multipleOf", "minLength", "maxLength", "minItems", "maxItems", NULL};
	if (!cJSON_IsObject(schema))
		return bad(err, "a schema must be a table of JSON Schema keywords");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type"), *it;
	if (cJSON_IsString(type) && !known_type(type->valuestring))
		return bad(err, "unknown type '%s' (use string, integer, number, boolean, object, array or null)",
			   type->valuestring);
	if (cJSON_IsArray(type)) {
		cJSON_ArrayForEach(it, type)
			if (!cJSON_IsString(it) || !known_type(it->valuestring))
				return bad(err, "type must name JSON types");
	} else if (type && !cJSON_IsString(type)) {
		return bad(err, "type must be a string or a list of strings");
	}
	for (size_t i = 0; numbers[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(schema, numbers[i]);
		if (v && !cJSON_IsNumber(v))
			return bad(err, "%s must be a number", numbers[i]);
	}
	const cJSON *enm = cJSON_GetObjectItemCaseSensitive(schema, "enum");
	if (enm && (!cJSON_IsArray(enm) || cJSON_GetArraySize(enm) == 0))
		return bad(err, "enum must be a non-empty list");
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(schema, "pattern");
	if (pat) {
		regex_t re;
		int rc = cJSON_IsString(pat) ? pattern_compile(&re, pat->valuestring) : REG_BADPAT;
		if (rc == REG_ESIZE)
			return bad(err, "pattern '%s' is too complex to check in bounded time (stacked repetitions such "
				   "as \"a*+\", back-references, or repetitions that multiply past %d states)",
				   pat->valuestring, (int)PATTERN_MAX_COST);
		if (rc != 0)
			return bad(err, "pattern '%s' is not a valid regular expression",
				   cJSON_IsString(pat) ? pat->valuestring : "?");
		regfree(&re);
	}
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
	if (items && params_check_schema(items, err) < 0)
		return -EINVAL;
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
	const cJSON *list1 = cJSON_IsObject(props) ? props : NULL;
	cJSON_ArrayForEach(it, list1)
		if (params_check_schema(it, err) < 0)
			return -EINVAL;
	return 0;
}

static bool is_type(const cJSON *v, const char *t)
{
	if (!strcmp(t, "string"))
		return cJSON_IsString(v);
	if (!strcmp(t, "integer"))
		return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && isfinite(v->valuedouble);
	if (!strcmp(t, "number"))
		return cJSON_IsNumber(v);
	if (!strcmp(t, "boolean"))
		return cJSON_IsBool(v);
	if (!strcmp(t, "object"))
		return cJSON_IsObject(v);
	if (!strcmp(t, "array"))
		return cJSON_IsArray(v);
	return cJSON_IsNull(v);
}

static bool type_ok(const cJSON *schema, const cJSON *v)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type"), *it;
	if (cJSON_IsString(type))
		return is_type(v, type->valuestring);
	if (!cJSON_IsArray(type))
		return true;
	cJSON_ArrayForEach(it, type)
		if (cJSON_IsString(it) && is_type(v, it->valuestring))
			return true;
	return false;
}

/* The value as the message shows it (short). */
static char *shown(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	if (s && strlen(s) > 60)
		strcpy(s + 57, "...");
	return s ? s : xstrdup("?");
}

static double num(const cJSON *schema, const char *key, bool *has)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(schema, key);
	*has = cJSON_IsNumber(v);
	return *has ? v->valuedouble : 0;
}

static int fail_value(char **err, const char *name, const cJSON *v, const char *why, double bound)
{
	char *s = shown(v);
	if (isnan(bound))
		*err = xasprintf("param '%s': %s %s", name, s, why);
	else
		*err = xasprintf("param '%s': %s %s %g", name, s, why, bound);
	free(s);
	return -EINVAL;
}

static int check_number(const cJSON *schema, const cJSON *v, const char *name, char **err)
{
	bool has;
	double x = v->valuedouble, b;
	if ((b = num(schema, "minimum", &has), has) && x < b)
		return fail_value(err, name, v, "is less than the minimum", b);
	if ((b = num(schema, "maximum", &has), has) && x > b)
		return fail_value(err, name, v, "is more than the maximum", b);
	if ((b = num(schema, "exclusiveMinimum", &has), has) && x <= b)
		return fail_value(err, name, v, "must be more than", b);
	if ((b = num(schema, "exclusiveMaximum", &has), has) && x >= b)
		return fail_value(err, name, v, "must be less than", b);
	if ((b = num(schema, "multipleOf", &has), has) && b > 0 && fabs(remainder(x, b)) > 1e-9 * fabs(b))
		return fail_value(err, name, v, "is not a multiple of", b);
	return 0;
}

static int check_string(const cJSON *schema, const cJSON *v, const char *name, char **err)
{
	bool has;
	double len = (double)utf8_length(v->valuestring), b;
	if ((b = num(schema, "minLength", &has), has) && len < b)
		return fail_value(err, name, v, "is shorter than the minLength", b);
	if ((b = num(schema, "maxLength", &has), has) && len > b)
		return fail_value(err, name, v, "is longer than the maxLength", b);
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(schema, "pattern");
	regex_t re;
	if (cJSON_IsString(pat) && pattern_compile(&re, pat->valuestring) == 0) {
		bool match = regexec(&re, v->valuestring, 0, NULL, 0) == 0;
		regfree(&re);
		if (!match) {
			char *why = xasprintf("does not match the pattern %s", pat->valuestring);
			int rc = fail_value(err, name, v, why, NAN);
			free(why);
			return rc;
		}
	}
	return 0;
}

/* The canonical text of a JSON value for uniqueItems: as printed, with object keys sorted, so
 * that equal values (in JSON Schema's sense) have equal texts. */
static int cmp_keys(const void *a, const void *b)
{
	return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static void canon(const cJSON *v, struct strbuf *out)
{
	if (cJSON_IsObject(v)) {
		size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
		const cJSON **kids = xcalloc(n + 1, sizeof(*kids)), *it;
		cJSON_ArrayForEach(it, v)
			kids[i++] = it;
		qsort(kids, n, sizeof(*kids), cmp_keys);
		sb_puts(out, "{");
		for (i = 0; i < n; i++) {
			cJSON *key = cJSON_CreateStringReference(kids[i]->string);
			char *k = cJSON_PrintUnformatted(key);
			sb_printf(out, "%s%s:", i ? "," : "", k);
			free(k);
			cJSON_Delete(key);
			canon(kids[i], out);
		}
		sb_puts(out, "}");
		free(kids);
	} else if (cJSON_IsArray(v)) {
		const cJSON *it;
		bool first = true;
		sb_puts(out, "[");
		cJSON_ArrayForEach(it, v) {
			if (!first)
				sb_puts(out, ",");
			first = false;
			canon(it, out);
		}
		sb_puts(out, "]");
	} else {
		char *t = cJSON_PrintUnformatted(v);
		sb_puts(out, t ? t : "null");
		free(t);
	}
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Whether an array holds two equal items: sorted canonical texts, so n log n, not n squared
 * (a trigger's conf may carry a long array). */
static bool has_repeats(const cJSON *arr)
{
	size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
	char **texts = xcalloc(n + 1, sizeof(*texts));
	const cJSON *it;
	cJSON_ArrayForEach(it, arr) {
		struct strbuf sb = {0};
		canon(it, &sb);
		texts[i++] = sb_steal(&sb);
	}
	qsort(texts, n, sizeof(*texts), cmp_str);
	bool rep = false;
	for (i = 1; i < n && !rep; i++)
		rep = !strcmp(texts[i - 1], texts[i]);
	for (i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	return rep;
}

static int check_array(const cJSON *schema, const cJSON *v, const char *name, char **err)
{
	bool has;
	double n = cJSON_GetArraySize(v), b;
	if ((b = num(schema, "minItems", &has), has) && n < b)
		return fail_value(err, name, v, "has fewer items than the minItems", b);
	if ((b = num(schema, "maxItems", &has), has) && n > b)
		return fail_value(err, name, v, "has more items than the maxItems", b);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, "uniqueItems")) && has_repeats(v))
		return fail_value(err, name, v, "has repeated items", NAN);
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items"), *it;
	int i = 0;
	const cJSON *list2 = cJSON_IsObject(items) ? v : NULL;
	cJSON_ArrayForEach(it, list2) {
		char *sub = xasprintf("%s[%d]", name, i++);
		int rc = params_check_value(items, it, sub, err);
		free(sub);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_object(const cJSON *schema, const cJSON *v, const char *name, char **err)
{
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required"), *it;
	const cJSON *list3 = cJSON_IsArray(req) ? req : NULL;
	cJSON_ArrayForEach(it, list3)
		if (cJSON_IsString(it) && !cJSON_GetObjectItemCaseSensitive(v, it->valuestring)) {
			char *why = xasprintf("lacks the required key '%s'", it->valuestring);
			int rc = fail_value(err, name, v, why, NAN);
			free(why);
			return rc;
		}
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
	const cJSON *list4 = cJSON_IsObject(props) ? props : NULL;
	cJSON_ArrayForEach(it, list4) {
		const cJSON *sub = cJSON_GetObjectItemCaseSensitive(v, it->string);
		if (!sub)
			continue;
		char *path = xasprintf("%s.%s", name, it->string);
		int rc = params_check_value(it, sub, path, err);
		free(path);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int params_check_value(const cJSON *schema, const cJSON *value, const char *name, char **err)
{
	if (!cJSON_IsObject(schema))
		return 0;
	if (!type_ok(schema, value)) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");
		char *want = cJSON_PrintUnformatted(type);
		char *why = xasprintf("is not of type %s", want ? want : "?");
		int rc = fail_value(err, name, value, why, NAN);
		free(want);
		free(why);
		return rc;
	}
	const cJSON *enm = cJSON_GetObjectItemCaseSensitive(schema, "enum"), *it;
	if (cJSON_IsArray(enm)) {
		bool found = false;
		cJSON_ArrayForEach(it, enm)
			found = found || cJSON_Compare(it, value, true);
		if (!found) {
			char *list = cJSON_PrintUnformatted(enm);
			char *why = xasprintf("is not one of %s", list ? list : "the enum");
			int rc = fail_value(err, name, value, why, NAN);
			free(list);
			free(why);
			return rc;
		}
	}
	const cJSON *cst = cJSON_GetObjectItemCaseSensitive(schema, "const");
	if (cst && !cJSON_Compare(cst, value, true))
		return fail_value(err, name, value, "is not the constant the schema asks for", NAN);
	if (cJSON_IsNumber(value))
		return check_number(schema, value, name, err);
	if (cJSON_IsString(value))
		return check_string(schema, value, name, err);
	if (cJSON_IsArray(value))
		return check_array(schema, value, name, err);
	if (cJSON_IsObject(value))
		return check_object(schema, value, name, err);
	return 0;
}

int params_validate(const struct dag *d, const cJSON *conf, char **err)
{
	const cJSON *spec;
	cJSON_ArrayForEach(spec, d->param_specs) {
		const char *name = spec->string;
		const cJSON *v = cJSON_IsObject(conf) ? cJSON_GetObjectItemCaseSensitive(conf, name) : NULL;
		if (!v)
			v = cJSON_GetObjectItemCaseSensitive(d->params, name);
		if (!v) {
			*err = xasprintf("param '%s' is required: it has no default, so the run's conf must give it", name);
			return -EINVAL;
		}
		if (params_check_value(cJSON_GetObjectItemCaseSensitive(spec, "schema"), v, name, err) < 0)
			return -EINVAL;
	}
	return 0;
}
