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

/* OPT_FILE: a file that must be readable, or empty; OPT_DIR: a folder (created by its user), or empty;
 * OPT_TEXT: a string that may be empty (OPT_STRING may not). */
enum opt_type { OPT_STRING, OPT_PATH, OPT_INT, OPT_DURATION, OPT_BYTES, OPT_LIST, OPT_BOOL, OPT_FILE, OPT_DIR,
		OPT_TEXT };

/* One row per option (as Redis's static_configs[]): its type, default, bounds and help. Every
 * source (default, file, environment, flag) goes through apply(), which checks the bounds, so a
 * value out of range is refused at start with where it came from and why. */
struct option_def {
	const char *name;        /* section.key */
	enum opt_type type;
	const char *def;
	size_t offset;
	long long min, max;      /* OPT_INT: the value; OPT_DURATION: microseconds; OPT_BYTES: bytes */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

#define SEC USEC_PER_SEC
#define MIB (1LL << 20)

static const struct option_def options[] = {
	{"core.dags_folder", OPT_PATH, "dags", OFF(dags_folder), 0, 0, "folder of DAG files (--dags, SLUICE_DAGS)"},
	{"core.parallelism", OPT_INT, "32", OFF(parallelism), 1, 4096,
	 "tries each executor runs at once (local: on this machine; ssh: on all its hosts together)"},
	{"core.kill_grace", OPT_DURATION, "5s", OFF(kill_grace), SEC / 10, 3600 * SEC, "time between SIGTERM and SIGKILL"},
	{"core.dag_file_memory_limit", OPT_BYTES, "64MiB", OFF(dag_memory_limit), 1 * MIB, 16384 * MIB,
	 "memory a DAG file may use"},
	{"core.dag_file_instruction_limit", OPT_INT, "200000000", OFF(dag_instruction_limit), 100000,
	 1000000000000LL, "Lua instructions a DAG file may run"},
	{"core.dag_file_time_limit", OPT_DURATION, "5s", OFF(dag_time_limit), SEC / 10, 600 * SEC,
	 "time a DAG file may take to load"},
	{"core.max_log_size", OPT_BYTES, "1GiB", OFF(max_log_size), 0, 1024 * 1024 * MIB,
	 "what a try may write to its log (0: no cap); the rest is dropped with a note"},
	{"core.db_synchronous", OPT_STRING, "normal", OFF(db_synchronous), 0, 0,
	 "normal: a commit survives any crash of sluice, a power cut may undo the last ones; full: it survives "
	 "a power cut too, at an fsync per commit"},
	{"core.task_env_passthrough", OPT_LIST, "", OFF(task_env_passthrough), 0, 0,
	 "variables of the daemon's environment tasks also get (comma-separated; beyond PATH, HOME, LANG, ...)"},
	{"webserver.bind", OPT_STRING, "127.0.0.1", OFF(bind), 0, 0, "address the web server listens on"},
	{"webserver.port", OPT_INT, "8080", OFF(port), 0, 65535, "port of the web server (0: any free port)"},
	{"webserver.allowed_hosts", OPT_LIST, "", OFF(allowed_hosts), 0, 0,
	 "host names (comma-separated) browsers may reach the API by, besides IP addresses and localhost"},
	{"metrics.public", OPT_BOOL, "false", OFF(metrics_public), 0, 1,
	 "serve /metrics without credentials (else a viewer's, e.g. a Bearer token for the scraper)"},
	{"webserver.max_connections", OPT_INT, "2000", OFF(max_connections), 16, 100000,
	 "connections the web server keeps open at once; a request beyond gets 503"},
	{"webserver.max_connections_per_address", OPT_INT, "64", OFF(max_connections_per_address), 1, 100000,
	 "connections one client address may keep open (not 127.0.0.1 or ::1); a request beyond gets 503"},
	{"webserver.idle_timeout", OPT_DURATION, "30s", OFF(idle_timeout), SEC, 3600 * SEC,
	 "a connection that sends nothing for this long is closed"},
	{"webserver.max_event_streams", OPT_INT, "512", OFF(max_event_streams), 1, 65536,
	 "Server-Sent Event streams open at once (an idle one holds no thread, only its connection)"},
	{"webserver.write_timeout", OPT_DURATION, "30s", OFF(write_timeout), SEC / 10, 3600 * SEC,
	 "how long a change through the API waits for a busy scheduler before a 503 (nothing is changed then)"},
	{"webserver.session_lifetime", OPT_DURATION, "12h", OFF(session_lifetime), 60 * SEC, 30 * 86400 * SEC,
	 "how long a login to the web UI lasts (its cookie expires then)"},
	{"webserver.expose_config", OPT_BOOL, "false", OFF(expose_config), 0, 1,
	 "let admins read this configuration through GET /api/v1/config (else 403, as Airflow)"},
	{"ssh.config_file", OPT_FILE, "", OFF(ssh_config_file), 0, 0,
	 "ssh_config file for the ssh executor (ssh -F: host aliases, ports, users, keys, ProxyJump); "
	 "empty: the daemon user's ~/.ssh/config"},
	{"ssh.slots", OPT_INT, "8", OFF(ssh_slots), 1, 4096,
	 "tries one SSH host runs at once, unless its [ssh.host.NAME] section sets slots"},
	{"ssh.remote_dir", OPT_STRING, ".sluice/tries", OFF(ssh_remote_dir), 0, 0,
	 "folder of the tries' files on the SSH hosts (relative: to the remote user's home)"},
	{"ssh.connect_timeout", OPT_DURATION, "10s", OFF(ssh_connect_timeout), SEC, 300 * SEC,
	 "how long ssh may take to connect to a host before its tries fail"},
	{"k8s.kubeconfig", OPT_FILE, "", OFF(k8s_kubeconfig), 0, 0,
	 "kubeconfig file of the k8s executor (YAML or JSON); empty: $KUBECONFIG, ~/.kube/config, or the "
	 "in-cluster service account when the daemon runs in a pod"},
	{"k8s.context", OPT_TEXT, "", OFF(k8s_context), 0, 0, "kubeconfig context to use (empty: its current-context)"},
	{"k8s.namespace", OPT_TEXT, "", OFF(k8s_namespace), 0, 0,
	 "namespace of the tries' Jobs unless a task sets k8s.namespace (empty: the context's, else \"default\")"},
	{"k8s.api_server", OPT_TEXT, "", OFF(k8s_api_server), 0, 0,
	 "API server URL (https://host:port) used instead of a kubeconfig, with token_file and ca_file"},
	{"k8s.token_file", OPT_FILE, "", OFF(k8s_token_file), 0, 0,
	 "bearer token file for api_server (re-read each minute; empty: the in-cluster service account's)"},
	{"k8s.ca_file", OPT_FILE, "", OFF(k8s_ca_file), 0, 0, "CA bundle (PEM) that signed api_server's certificate"},
	{"k8s.qps", OPT_INT, "20", OFF(k8s_qps), 1, 10000, "requests per second the k8s executor sends the API server"},
	{"k8s.burst", OPT_INT, "30", OFF(k8s_burst), 1, 10000, "requests it may send at once above qps"},
	{"k8s.pending_timeout", OPT_DURATION, "2m", OFF(k8s_pending_timeout), SEC, 86400 * SEC,
	 "how long a try's pod may stay Pending (ImagePullBackOff, ErrImagePull, unschedulable, ...) before the try fails"},
	{"k8s.ttl_after_finished", OPT_DURATION, "1h", OFF(k8s_ttl_after_finished), 10 * SEC, 30 * 86400 * SEC,
	 "ttlSecondsAfterFinished of the Jobs: how long the cluster keeps a finished Job and its pod"},
	{"slurm.poll_interval", OPT_DURATION, "2s", OFF(slurm_poll_interval), SEC / 10, 600 * SEC,
	 "how often the slurm executor polls its jobs (one squeue for all of them, plus one sacct or scontrol "
	 "for those that left the queue)"},
	{"slurm.max_submit_per_second", OPT_INT, "5", OFF(slurm_max_submit), 1, 1000,
	 "sbatch calls the slurm executor makes per second at most"},
	{"slurm.work_dir", OPT_DIR, "", OFF(slurm_work_dir), 0, 0,
	 "folder of the Slurm tries' scripts, output and exit status, on storage the compute nodes share at the "
	 "same path; empty: $SLUICE_HOME/executors/slurm/work (fine on a single node only)"},
	{"slurm.bin_dir", OPT_DIR, "", OFF(slurm_bin_dir), 0, 0,
	 "folder of sbatch, squeue, sacct, scontrol and scancel; empty: found in PATH"},
	{"slurm.accounting", OPT_STRING, "auto", OFF(slurm_accounting), 0, 0,
	 "auto: jobs that left squeue are looked up with sacct, or with scontrol when accounting is off; "
	 "no: scontrol only"},
	{"slurm.command_timeout", OPT_DURATION, "60s", OFF(slurm_command_timeout), SEC, 3600 * SEC,
	 "how long one sbatch, squeue, sacct, scontrol or scancel call may take before it is killed (the try "
	 "then waits)"},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* String options that take one of a few words. */
static const struct {
	const char *name, *words;
} choices[] = {
	{"core.db_synchronous", " normal full "},
	{"slurm.accounting", " auto no "},
};

/* [ssh.host.NAME] slots = N: one setting per host, kept in cfg->ssh_hosts. */
#define HOST_PREFIX "ssh.host."
#define HOST_SLOTS_MAX 4096

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

/* Parses value as o's type into *n (strings are not numbers: *n is left alone). */
static int parse_value(const struct option_def *o, const char *value, long long *n, char **err)
{
	char *end;
	usec_t d;
	size_t b;
	switch (o->type) {
	case OPT_LIST:
	case OPT_TEXT:
		return 0;
	case OPT_BOOL:
		if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcasecmp(value, "on") || !strcmp(value, "1"))
			*n = 1;
		else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcasecmp(value, "off") ||
			 !strcmp(value, "0"))
			*n = 0;
		else {
			*err = xasprintf("%s = %s: not true or false", o->name, value);
			return -EINVAL;
		}
		return 0;
	case OPT_FILE:
		if (*value && access(value, R_OK) < 0) {
			*err = xasprintf("%s = %s: cannot read it: %s", o->name, value, strerror(errno));
			return -EINVAL;
		}
		return 0;
	case OPT_DIR:
		return 0;
	case OPT_STRING:
	case OPT_PATH:
		if (!*value) {
			*err = xasprintf("%s: must not be empty", o->name);
			return -EINVAL;
		}
		for (size_t i = 0; i < sizeof(choices) / sizeof(*choices); i++) {
			if (strcmp(choices[i].name, o->name))
				continue;
			char word[64];
			snprintf(word, sizeof(word), " %s ", value);
			if (strlen(value) > 60 || !strstr(choices[i].words, word)) {
				*err = xasprintf("%s = %s: must be one of%s", o->name, value, choices[i].words);
				return -EINVAL;
			}
		}
		return 0;
	case OPT_INT:
		errno = 0;
		*n = strtoll(value, &end, 10);
		if (errno || end == value || *end) {
			*err = xasprintf("%s = %s: not an integer", o->name, value);
			return -EINVAL;
		}
		return 0;
	case OPT_DURATION:
		if (parse_duration(value, &d) < 0) {
			*err = xasprintf("%s = %s: not a duration (e.g. 5s, 10m)", o->name, value);
			return -EINVAL;
		}
		*n = d;
		return 0;
	case OPT_BYTES:
		if (parse_bytes(value, &b) < 0 || b > (size_t)LLONG_MAX) {
			*err = xasprintf("%s = %s: not a size (e.g. 64MiB)", o->name, value);
			return -EINVAL;
		}
		*n = (long long)b;
		return 0;
	}
	return -EINVAL;
}

static bool numeric_type(enum opt_type t)
{
	return t == OPT_INT || t == OPT_DURATION || t == OPT_BYTES;
}

static bool text_type(enum opt_type t)
{
	return t == OPT_STRING || t == OPT_PATH || t == OPT_LIST || t == OPT_FILE || t == OPT_DIR || t == OPT_TEXT;
}

/* "between 1 and 65535", in the option's own units. */
static char *bounds_text(const struct option_def *o)
{
	char lo[32], hi[32];
	if (o->type == OPT_DURATION) {
		format_duration(o->min, lo, sizeof(lo));
		format_duration(o->max, hi, sizeof(hi));
	} else if (o->type == OPT_BYTES) {
		snprintf(lo, sizeof(lo), "%lldMiB", o->min / MIB);
		snprintf(hi, sizeof(hi), "%lldMiB", o->max / MIB);
	} else {
		snprintf(lo, sizeof(lo), "%lld", o->min);
		snprintf(hi, sizeof(hi), "%lld", o->max);
	}
	return xasprintf("between %s and %s", lo, hi);
}

static int apply(struct config *cfg, const struct option_def *o, const char *value, char **err)
{
	void *field = (char *)cfg + o->offset;
	long long n = 0;
	int rc = parse_value(o, value, &n, err);
	if (rc < 0)
		return rc;
	if (numeric_type(o->type) && (n < o->min || n > o->max)) {
		char *b = bounds_text(o);
		*err = xasprintf("%s = %s: must be %s", o->name, value, b);
		free(b);
		return -ERANGE;
	}
	switch (o->type) {
	case OPT_STRING:
	case OPT_LIST:
	case OPT_TEXT:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		break;
	case OPT_FILE:
	case OPT_DIR:
		free(*(char **)field);
		*(char **)field = *value ? abs_path(cfg->home, value) : xstrdup("");
		break;
	case OPT_PATH:
		free(*(char **)field);
		*(char **)field = abs_path(cfg->home, value);
		break;
	case OPT_INT:
		if (o->offset == OFF(dag_instruction_limit))
			cfg->dag_instruction_limit = (unsigned long long)n;
		else
			*(int *)field = (int)n;
		break;
	case OPT_DURATION:
		*(usec_t *)field = n;
		break;
	case OPT_BYTES:
		*(size_t *)field = (size_t)n;
		break;
	case OPT_BOOL:
		*(bool *)field = n != 0;
		break;
	}
	return 0;
}

/* The option called name, or NULL. */
static const struct option_def *find_option(const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (!strcmp(options[i].name, name))
			return &options[i];
	return NULL;
}

/* Levenshtein distance, capped: for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[128];
	if (la >= 127 || lb >= 127)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j], cost = a[i - 1] != b[j - 1];
			size_t best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

/* "unknown option 'x'" with the nearest known one when it is close. */
static char *unknown_option(const char *name)
{
	const char *best = NULL;
	size_t bd = 4;
	for (size_t i = 0; i < NOPTIONS; i++) {
		size_t d = edit_distance(name, options[i].name);
		if (d < bd) {
			bd = d;
			best = options[i].name;
		}
	}
	return best ? xasprintf("unknown option '%s' (did you mean '%s'?)", name, best)
		    : xasprintf("unknown option '%s'", name);
}

/* Whether name is "ssh.host.NAME.KEY". */
static bool host_option(const char *name)
{
	return !strncmp(name, HOST_PREFIX, strlen(HOST_PREFIX));
}

/* Sets "ssh.host.NAME.slots" (the only per-host key). Returns 0 or -EINVAL with *err. */
static int set_host_option(struct config *cfg, const char *name, const char *value, int line, char **err)
{
	const char *host = name + strlen(HOST_PREFIX), *dot = strrchr(host, '.');
	char *end;
	if (!dot || dot == host || strcmp(dot, ".slots")) {
		*err = xasprintf("unknown option '%s' (a [ssh.host.NAME] section takes slots = N)", name);
		return -EINVAL;
	}
	size_t hl = (size_t)(dot - host);
	if (host[0] == '-' || strcspn(host, " \t'\"") < hl) {
		*err = xasprintf("%s: '%.*s' is not a host alias", name, (int)hl, host);
		return -EINVAL;
	}
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < 1 || v > HOST_SLOTS_MAX) {
		*err = xasprintf("%s = %s: must be an integer between 1 and %d", name, value, HOST_SLOTS_MAX);
		return -EINVAL;
	}
	size_t i = 0;
	while (i < cfg->n_ssh_hosts && (strlen(cfg->ssh_hosts[i].name) != hl || strncmp(cfg->ssh_hosts[i].name, host, hl)))
		i++;
	if (i == cfg->n_ssh_hosts) {
		cfg->ssh_hosts = xrealloc(cfg->ssh_hosts, (i + 1) * sizeof(*cfg->ssh_hosts));
		cfg->ssh_hosts[i].name = xstrndup(host, hl);
		cfg->n_ssh_hosts++;
	}
	cfg->ssh_hosts[i].slots = (int)v;
	cfg->ssh_hosts[i].line = line;
	return 0;
}

int config_set(struct config *cfg, const char *name, const char *value, char **err)
{
	if (host_option(name))
		return set_host_option(cfg, name, value, 0, err);
	const struct option_def *o = find_option(name);
	if (!o) {
		*err = unknown_option(name);
		return -ENOENT;
	}
	int rc = apply(cfg, o, value, err);
	if (rc == 0)
		cfg->sources[o - options] = "flag";
	return rc;
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
	char section[64] = "core", *next = data;
	int lineno = 0;
	rc = 0;
	/* Line by line, blank ones included, so that messages name the right line. */
	for (char *line = data; next; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
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
		/* A comment may follow a value after whitespace: "parallelism = 8   # per host". */
		for (char *c = eq + 1; *c; c++)
			if ((*c == '#' || *c == ';') && c > eq + 1 && isspace((unsigned char)c[-1])) {
				*c = '\0';
				break;
			}
		char *name = xasprintf("%s.%s", section, trim(l));
		char *e2 = NULL;
		const struct option_def *o = find_option(name);
		if (!o && host_option(name)) {
			if ((rc = set_host_option(cfg, name, trim(eq + 1), lineno, &e2)) < 0) {
				*err = xasprintf("%s:%d: %s", path, lineno, e2);
				free(e2);
			}
		} else if (!o) {
			e2 = unknown_option(name);
			*err = xasprintf("%s:%d: %s", path, lineno, e2);
			free(e2);
			rc = -EINVAL;
		} else if ((rc = apply(cfg, o, trim(eq + 1), &e2)) < 0) {
			*err = xasprintf("%s:%d: %s", path, lineno, e2);
			free(e2);
			rc = -EINVAL;
		} else {
			cfg->sources[o - options] = "sluice.cfg";
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
	cfg->sources = xcalloc(NOPTIONS, sizeof(char *));
	for (size_t i = 0; i < NOPTIONS; i++) {
		cfg->sources[i] = "default";
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
				*err = xasprintf("environment %s: %s", sb_str(&env), e2);
				free(e2);
				sb_free(&env);
				return -EINVAL;
			}
			cfg->sources[i] = "environment";
		}
		sb_free(&env);
	}
	return 0;
}

void config_free(struct config *cfg)
{
	free(cfg->home);
	/* Every option held as text, from the table: a new one cannot be forgotten here. */
	for (size_t i = 0; i < NOPTIONS; i++)
		if (text_type(options[i].type))
			free(*(char **)((char *)cfg + options[i].offset));
	for (size_t i = 0; i < cfg->n_ssh_hosts; i++)
		free(cfg->ssh_hosts[i].name);
	free(cfg->ssh_hosts);
	free(cfg->sources);
	memset(cfg, 0, sizeof(*cfg));
}

static char *value_string(const struct config *cfg, const struct option_def *o)
{
	const void *field = (const char *)cfg + o->offset;
	char buf[64];
	switch (o->type) {
	case OPT_STRING:
	case OPT_PATH:
	case OPT_LIST:
	case OPT_FILE:
	case OPT_TEXT:
	case OPT_DIR:
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
	case OPT_BOOL:
		return xstrdup(*(const bool *)field ? "true" : "false");
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
		for (size_t i = 0; i < cfg->n_ssh_hosts; i++) {
			char *k = xasprintf(HOST_PREFIX "%s.slots", cfg->ssh_hosts[i].name);
			cJSON_AddNumberToObject(o, k, cfg->ssh_hosts[i].slots);
			free(k);
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
		bool numeric = numeric_type(options[i].type);
		char *b = numeric ? bounds_text(&options[i]) : xstrdup("");
		printf("# %s%s%s (from %s)\n%s = %s\n", options[i].help, numeric ? "; " : "", b, cfg->sources[i], dot + 1, v);
		free(b);
		free(v);
	}
	for (size_t i = 0; i < cfg->n_ssh_hosts; i++)
		printf("\n[ssh.host.%s]\n# tries this host runs at once (from sluice.cfg)\nslots = %d\n",
		       cfg->ssh_hosts[i].name, cfg->ssh_hosts[i].slots);
}

char **config_settings(const struct config *cfg)
{
	char **v = xcalloc(NOPTIONS + cfg->n_ssh_hosts + 1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < NOPTIONS; i++) {
		char *val = value_string(cfg, &options[i]);
		v[n++] = xasprintf("%s=%s", options[i].name, val);
		free(val);
	}
	for (size_t i = 0; i < cfg->n_ssh_hosts; i++)
		v[n++] = xasprintf(HOST_PREFIX "%s.slots=%d", cfg->ssh_hosts[i].name, cfg->ssh_hosts[i].slots);
	return v;
}

void config_free_settings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int config_each(const struct config *cfg, void (*fn)(void *arg, const char *name, const char *value, const char *source),
		void *arg)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		char *v = value_string(cfg, &options[i]);
		fn(arg, options[i].name, v, cfg->sources[i] ? cfg->sources[i] : "default");
		free(v);
	}
	for (size_t i = 0; i < cfg->n_ssh_hosts; i++) {
		char *k = xasprintf(HOST_PREFIX "%s.slots", cfg->ssh_hosts[i].name), v[16];
		snprintf(v, sizeof(v), "%d", cfg->ssh_hosts[i].slots);
		fn(arg, k, v, cfg->ssh_hosts[i].line ? "sluice.cfg" : "flag");
		free(k);
	}
	return (int)(NOPTIONS + cfg->n_ssh_hosts);
}
