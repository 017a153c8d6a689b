#include "orchestrator/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

enum opt_type { OPT_STRING, OPT_PATH, OPT_INT, OPT_DURATION, OPT_BYTES };

struct option_def {
	const char *name;        /* section.key */
	enum opt_type type;
	const char *def;
	size_t offset;
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct option_def options[] = {
	{"core.dags_folder", OPT_PATH, "dags", OFF(dags_folder), "folder of DAG files (--dags, SLUICE_DAGS)"},
	{"core.parallelism", OPT_INT, "32", OFF(parallelism), "tries the local executor runs at once"},
	{"core.kill_grace", OPT_DURATION, "5s", OFF(kill_grace), "time between SIGTERM and SIGKILL"},
	{"core.dag_file_memory_limit", OPT_BYTES, "64MiB", OFF(dag_memory_limit), "memory a DAG file may use"},
	{"core.dag_file_instruction_limit", OPT_INT, "200000000", OFF(dag_instruction_limit), "Lua instructions a DAG file may run"},
	{"core.dag_file_time_limit", OPT_DURATION, "5s", OFF(dag_time_limit), "time a DAG file may take to load"},
	{"webserver.bind", OPT_STRING, "127.0.0.1", OFF(bind), "address the web server listens on"},
	{"webserver.port", OPT_INT, "8080", OFF(port), "port of the web server"},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const char *sources[NOPTIONS];

static int parse_bytes(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	double mul = 1;
	if (!strcasecmp(end, "k") || !strcasecmp(end, "kib") || !strcasecmp(end, "kb"))
		mul = 1024;
	else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib") || !strcasecmp(end, "mb"))
		mul = 1024.0 * 1024;
	else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib") || !strcasecmp(end, "gb"))
		mul = 1024.0 * 1024 * 1024;
	else if (*end)
		return -EINVAL;
	*out = (size_t)(v * mul);
	return 0;
}

static char *abs_path(const char *home, const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(p);
	(void)home;
	return xasprintf("%s/%s", cwd, p);
}

static int apply(struct config *cfg, const struct option_def *o, const char *value, char **err)
{
	void *field = (char *)cfg + o->offset;
	long long n;
	char *end;
	switch (o->type) {
	case OPT_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case OPT_PATH:
		free(*(char **)field);
		*(char **)field = abs_path(cfg->home, value);
		return 0;
	case OPT_INT:
		errno = 0;
		n = strtoll(value, &end, 10);
		if (errno || end == value || *end || n < 0) {
			*err = xasprintf("%s: \"%s\" is not a non-negative integer", o->name, value);
			return -EINVAL;
		}
		if (o->offset == OFF(dag_instruction_limit))
			cfg->dag_instruction_limit = (unsigned long long)n;
		else
			*(int *)field = n > INT_MAX ? INT_MAX : (int)n;
		return 0;
	case OPT_DURATION:
		if (parse_duration(value, (usec_t *)field) < 0) {
			*err = xasprintf("%s: \"%s\" is not a duration (e.g. 5s, 10m)", o->name, value);
			return -EINVAL;
		}
		return 0;
	case OPT_BYTES:
		if (parse_bytes(value, (size_t *)field) < 0) {
			*err = xasprintf("%s: \"%s\" is not a size (e.g. 64MiB)", o->name, value);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

int config_set(struct config *cfg, const char *name, const char *value, char **err)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		if (!strcmp(options[i].name, name)) {
			sources[i] = "flag";
			return apply(cfg, &options[i], value, err);
		}
	}
	*err = xasprintf("unknown option '%s'", name);
	return -ENOENT;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int read_ini(struct config *cfg, const char *path, char **err)
{
	char *data = NULL;
	int rc = read_file(path, 1 << 20, &data, NULL);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		*err = xasprintf("cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	char section[64] = "core", *save = NULL;
	int lineno = 0;
	rc = 0;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *l = trim(line);
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *close = strchr(l, ']');
			if (!close) {
				*err = xasprintf("%s:%d: missing ']'", path, lineno);
				rc = -EINVAL;
				break;
			}
			*close = '\0';
			snprintf(section, sizeof(section), "%s", trim(l + 1));
			continue;
		}
		char *eq = strchr(l, '=');
		if (!eq) {
			*err = xasprintf("%s:%d: expected key = value", path, lineno);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		char *name = xasprintf("%s.%s", section, trim(l));
		char *e2 = NULL;
		size_t i;
		for (i = 0; i < NOPTIONS && strcmp(options[i].name, name); i++)
			;
		if (i == NOPTIONS) {
			*err = xasprintf("%s:%d: unknown option '%s'", path, lineno, name);
			rc = -EINVAL;
		} else if ((rc = apply(cfg, &options[i], trim(eq + 1), &e2)) < 0) {
			*err = xasprintf("%s:%d: %s", path, lineno, e2);
			free(e2);
		} else {
			sources[i] = "sluice.cfg";
		}
		free(name);
		if (rc < 0)
			break;
	}
	free(data);
	return rc;
}

int config_load(struct config *cfg, const char *home, char **err)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->home = xstrdup(home);
	for (size_t i = 0; i < NOPTIONS; i++) {
		sources[i] = "default";
		if (apply(cfg, &options[i], options[i].def, err) < 0)
			return -EINVAL;
	}
	char *ini = xasprintf("%s/sluice.cfg", home);
	int rc = read_ini(cfg, ini, err);
	free(ini);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < NOPTIONS; i++) {
		/* SLUICE__CORE__PARALLELISM for core.parallelism */
		struct strbuf env = {0};
		sb_puts(&env, "SLUICE__");
		for (const char *p = options[i].name; *p; p++)
			if (*p == '.')
				sb_puts(&env, "__");
			else
				sb_putc(&env, (char)toupper((unsigned char)*p));
		const char *v = getenv(sb_str(&env));
		if (v) {
			char *e2 = NULL;
			if (apply(cfg, &options[i], v, &e2) < 0) {
				*err = xasprintf("%s: %s", sb_str(&env), e2);
				free(e2);
				sb_free(&env);
				return -EINVAL;
			}
			sources[i] = "environment";
		}
		sb_free(&env);
	}
	return 0;
}

void config_free(struct config *cfg)
{
	free(cfg->home);
	free(cfg->dags_folder);
	free(cfg->bind);
	memset(cfg, 0, sizeof(*cfg));
}

static char *value_string(const struct config *cfg, const struct option_def *o)
{
	const void *field = (const char *)cfg + o->offset;
	char buf[64];
	switch (o->type) {
	case OPT_STRING:
	case OPT_PATH:
		return xstrdup(*(char *const *)field ? *(char *const *)field : "");
	case OPT_INT:
		if (o->offset == OFF(dag_instruction_limit))
			return xasprintf("%llu", cfg->dag_instruction_limit);
		return xasprintf("%d", *(const int *)field);
	case OPT_DURATION:
		format_duration(*(const usec_t *)field, buf, sizeof(buf));
		return xstrdup(buf);
	case OPT_BYTES:
		return xasprintf("%zuMiB", *(const size_t *)field >> 20);
	}
	return xstrdup("");
}

void config_print(const struct config *cfg, bool json)
{
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "home", cfg->home);
		for (size_t i = 0; i < NOPTIONS; i++) {
			char *v = value_string(cfg, &options[i]);
			cJSON_AddStringToObject(o, options[i].name, v);
			free(v);
		}
		char *s = cJSON_Print(o);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(o);
		return;
	}
	printf("# SLUICE_HOME = %s\n", cfg->home);
	const char *cur = "";
	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *dot = strchr(options[i].name, '.');
		if (strncmp(cur, options[i].name, (size_t)(dot - options[i].name)) || !*cur) {
			printf("\n[%.*s]\n", (int)(dot - options[i].name), options[i].name);
			cur = options[i].name;
		}
		char *v = value_string(cfg, &options[i]);
		printf("# %s (from %s)\n%s = %s\n", options[i].help, sources[i], dot + 1, v);
		free(v);
	}
}
