/* The `k8s` backend: one batch/v1 Job per try, through the Kubernetes REST API (libcurl, see
 * k8s_api.c), never kubectl.
 *
 * A try's Job has a deterministic name (dag, run, task, map index, try and this daemon's
 * instance hashed in), so a restarted daemon, or a retried POST, can never create a second Job
 * for it: a 409 AlreadyExists means "it is there", and the try is adopted. Per namespace the
 * backend lists then watches the Jobs and Pods carrying its instance label (resourceVersion,
 * bookmarks; a 410 Gone or a dropped stream leads to a re-list). A pod's log is followed into
 * the try's log while it runs; when the container has terminated, the rest is fetched (skipping
 * the bytes the log already has) before the try ends. The outputs come back as the container's
 * termination message: $SLUICE_OUTPUT is /sluice/output on an emptyDir, which is the
 * container's terminationMessagePath.
 *
 * Invariants:
 *  - A try is in ks->tries from start()/reattach() until just before on_end.
 *  - The status file is written before on_end: once it exists it is the result, and reattach()
 *    reads it first.
 *  - The pid file holds "k8s NAMESPACE NAME STATE OFFSET" and then the Job's body: STATE is
 *    "submitting" until the API has confirmed the Job, "created" after. A re-attached try whose
 *    Job is missing is submitted again only while "submitting" (the same name: 409 if it was
 *    there after all); a "created" one whose Job is gone is lost, never run twice.
 */
#include "executors/executor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/trylog.h"
#include "executors/k8s.h"

#define LABEL_MANAGED "app.kubernetes.io/managed-by"
#define LABEL_INSTANCE "sluice.dev/instance"
#define LABEL_JOB "sluice.dev/job"
#define OUTPUT_DIR "/sluice"
#define OUTPUT_FILE OUTPUT_DIR "/output"
#define WATCH_SECONDS 240
#define TICK (500 * 1000LL)

struct k8s_state;

/* One namespace's two watches. */
struct k8s_watch {
	struct k8s_ns *ns;
	const char *kind;          /* "jobs" or "pods" */
	const char *api;           /* "/apis/batch/v1" or "/api/v1" */
	struct k8s_req *req;
	char *rv;                  /* resourceVersion to watch from; NULL = list first */
	struct strbuf line;        /* a watch event not yet complete */
	bool listing, synced, restart, relist;
	struct ev_timer *timer;
	int fails;
	unsigned lists;
};

struct k8s_ns {
	struct k8s_state *ks;
	char *name;
	struct k8s_watch jobs, pods;
	struct k8s_ns *next;
};

enum try_phase { P_SUBMIT, P_ACTIVE, P_ENDING };

struct k8s_try {
	struct k8s_state *ks;
	struct k8s_ns *ns;
	uint64_t token;
	char *name, *pod;
	char *status_path, *pid_path, *log_path, *out_path, *mask_path;
	char *body;                /* the Job, for a (re-)submission */
	enum try_phase phase;
	bool created, seen_job, reattached;
	struct k8s_req *create_req, *log_req, *del_req;
	int log_fd;
	long long offset;          /* bytes of the pod's log the local log has */
	long long saved_offset;
	long long recv;            /* bytes of the current log stream */
	long long written, max_log;
	bool capped, log_final, log_done, log_fetching;
	int log_fails;             /* failed fetches of the rest, once the end is known */
	unsigned seen_gen;
	int job_done;              /* the Job's condition: 1 Complete, 2 Failed */
	usec_t job_done_at;        /* monotonic: when that was seen */         /* the Jobs list that last showed this try's Job */
	usec_t created_at;         /* monotonic: when the API confirmed the Job */
	usec_t saved_at;           /* monotonic: the last try_save() */
	struct masker mask;          /* the try's secrets, written as *** in its log */
	usec_t started, timeout, pending_since, log_retry_at;
	char *pending_reason;
	/* The end, once known. */
	bool have_end, deadline, cancelled, timed_out;
	struct exec_result res;
	char *end_msg;             /* res.message */
	char *term_msg;            /* the termination message: the outputs */
	struct ev_timer *defer;
	struct k8s_try *prev, *next;
};

struct k8s_state {
	struct executor *ex;
	struct k8s_auth auth;
	struct k8s_client *http;
	char *instance;            /* label value: this daemon's Jobs */
	char *namespace;           /* default namespace */
	usec_t pending_timeout;
	long long ttl;             /* ttlSecondsAfterFinished */
	struct k8s_ns *nss;
	struct k8s_try *tries;
	int running;
	struct ev_timer *tick;
	bool auth_warned;
	char *auth_error;          /* the last refusal, for the tries it fails */
};

static void try_check_end(struct k8s_try *t);
static void watch_start(struct k8s_watch *w);
static void try_submit(struct k8s_try *t);
static void tick_arm(struct k8s_state *ks);

/* ---- names and labels ---- */

/* Appends s lower-cased with runs of other characters as one '-' (DNS-1123). */
static void dns_part(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			sb_putc(sb, c);
		else if (sb->len && sb->buf[sb->len - 1] != '-')
			sb_putc(sb, '-');
	}
}

/* "dag-task[-map]-try-HASH" in at most 63 characters: the hash covers the whole identity and
 * the instance, the rest is for people. */
static char *job_name(const struct k8s_state *ks, const struct exec_spec *spec)
{
	char *id = xasprintf("%s\n%s\n%s\n%d\n%d\n%s", spec->dag_id ? spec->dag_id : "", spec->run_id ? spec->run_id : "",
			     spec->task_id ? spec->task_id : "", spec->map_index, spec->try_number, ks->instance);
	char hash[65];
	sha256_hex(id, strlen(id), hash);
	free(id);
	struct strbuf sb = {0};
	dns_part(&sb, spec->dag_id ? spec->dag_id : "");
	sb_putc(&sb, '-');
	dns_part(&sb, spec->task_id ? spec->task_id : "");
	if (spec->map_index >= 0)
		sb_printf(&sb, "-%d", spec->map_index);
	sb_printf(&sb, "-%d", spec->try_number);
	char *s = sb_steal(&sb);
	size_t n = strlen(s);
	if (n > 52)
		n = 52;
	while (n && s[n - 1] == '-')
		n--;
	size_t lead = strspn(s, "-");
	char *name = n > lead ? xasprintf("%.*s-%.10s", (int)(n - lead), s + lead, hash) : xasprintf("sluice-%.10s", hash);
	free(s);
	return name;
}

/* A label value: [A-Za-z0-9._-], at most 63, alphanumeric at both ends ("" when nothing is left). */
static char *label_value(const char *s)
{
	struct strbuf sb = {0};
	for (; *s && sb.len < 63; s++) {
		char c = *s;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
			  c == '_' || c == '-';
		sb_putc(&sb, ok ? c : '_');
	}
	char *v = sb_steal(&sb);
	size_t n = strlen(v), a = 0;
	while (a < n && !((v[a] >= 'a' && v[a] <= 'z') || (v[a] >= 'A' && v[a] <= 'Z') || (v[a] >= '0' && v[a] <= '9')))
		a++;
	while (n > a && !((v[n - 1] >= 'a' && v[n - 1] <= 'z') || (v[n - 1] >= 'A' && v[n - 1] <= 'Z') ||
			  (v[n - 1] >= '0' && v[n - 1] <= '9')))
		n--;
	char *out = xstrndup(v + a, n - a);
	free(v);
	return out;
}

static void add_label(cJSON *o, const char *key, const char *value)
{
	char *v = label_value(value);
	cJSON_AddStringToObject(o, key, v);
	free(v);
}

/* ---- the Job ---- */

static cJSON *obj_get(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsObject(v)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, key);
		v = cJSON_AddObjectToObject(o, key);
	}
	return v;
}

static void obj_set(cJSON *o, const char *key, cJSON *v)
{
	if (cJSON_GetObjectItemCaseSensitive(o, key))
		cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
	else
		cJSON_AddItemToObject(o, key, v);
}

static void set_identity(cJSON *meta, const struct k8s_state *ks, const struct exec_spec *spec, const char *name)
{
	cJSON *l = obj_get(meta, "labels"), *a = obj_get(meta, "annotations");
	char num[24];
	obj_set(l, LABEL_MANAGED, cJSON_CreateString("sluice"));
	obj_set(l, LABEL_INSTANCE, cJSON_CreateString(ks->instance));
	obj_set(l, LABEL_JOB, cJSON_CreateString(name));
	cJSON_DeleteItemFromObjectCaseSensitive(l, "sluice.dev/dag");
	cJSON_DeleteItemFromObjectCaseSensitive(l, "sluice.dev/task");
	add_label(l, "sluice.dev/dag", spec->dag_id ? spec->dag_id : "");
	add_label(l, "sluice.dev/task", spec->task_id ? spec->task_id : "");
	snprintf(num, sizeof(num), "%d", spec->try_number);
	obj_set(l, "sluice.dev/try", cJSON_CreateString(num));
	obj_set(a, "sluice.dev/dag-id", cJSON_CreateString(spec->dag_id ? spec->dag_id : ""));
	obj_set(a, "sluice.dev/run-id", cJSON_CreateString(spec->run_id ? spec->run_id : ""));
	obj_set(a, "sluice.dev/task-id", cJSON_CreateString(spec->task_id ? spec->task_id : ""));
	snprintf(num, sizeof(num), "%d", spec->map_index);
	obj_set(a, "sluice.dev/map-index", cJSON_CreateString(num));
	snprintf(num, sizeof(num), "%d", spec->try_number);
	obj_set(a, "sluice.dev/try-number", cJSON_CreateString(num));
}

/* The environment: the try's own variables (SLUICE_OUTPUT pointing into the pod), then k8s.env. */
static cJSON *pod_env(const struct exec_spec *spec, const cJSON *extra)
{
	cJSON *env = cJSON_CreateArray(), *e;
	for (size_t i = 0; spec->task_envp && spec->task_envp[i]; i++) {
		const char *v = spec->task_envp[i], *eq = strchr(v, '=');
		if (!eq || eq == v)
			continue;
		char *name = xstrndup(v, (size_t)(eq - v));
		if (cJSON_GetObjectItemCaseSensitive(extra, name)) {
			free(name);
			continue;
		}
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "name", name);
		cJSON_AddStringToObject(x, "value", !strcmp(name, "SLUICE_OUTPUT") ? OUTPUT_FILE : eq + 1);
		cJSON_AddItemToArray(env, x);
		free(name);
	}
	cJSON_ArrayForEach(e, extra) {
		if (!cJSON_IsString(e))
			continue;
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "name", e->string);
		cJSON_AddStringToObject(x, "value", e->valuestring);
		cJSON_AddItemToArray(env, x);
	}
	return env;
}

static cJSON *quantity(const cJSON *v)
{
	if (cJSON_IsString(v))
		return cJSON_CreateString(v->valuestring);
	char buf[32];
	snprintf(buf, sizeof(buf), "%.15g", v->valuedouble);
	return cJSON_CreateString(buf);
}

static void set_resources(cJSON *c, const cJSON *o)
{
	const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(o, "cpu"), *mem = cJSON_GetObjectItemCaseSensitive(o, "memory"),
		    *gpu = cJSON_GetObjectItemCaseSensitive(o, "gpu");
	if (!cpu && !mem && !gpu)
		return;
	cJSON *res = obj_get(c, "resources"), *req = obj_get(res, "requests"), *lim = obj_get(res, "limits");
	if (cpu)
		obj_set(req, "cpu", quantity(cpu));
	if (mem) {
		obj_set(req, "memory", quantity(mem));
		obj_set(lim, "memory", quantity(mem));
	}
	if (gpu)
		obj_set(lim, "nvidia.com/gpu", quantity(gpu));
	if (!cJSON_GetArraySize(req))
		cJSON_DeleteItemFromObjectCaseSensitive(res, "requests");
}

/* A Lua table becomes JSON without knowing whether {} is a list or an object: an empty list
 * under a key whose value is an object in the pod schema becomes {} (emptyDir = {}), and one
 * elsewhere is dropped (an empty list means the same as none). */
static void fix_empty(cJSON *o)
{
	static const char *const objects[] = {"emptyDir", "securityContext", "resources", "limits", "requests",
					      "labels", "annotations", "nodeSelector", "metadata", "spec", "affinity",
					      "capabilities", "seLinuxOptions", "dnsConfig", "sizeLimit", NULL};
	cJSON *c = o ? o->child : NULL;
	while (c) {
		cJSON *next = c->next;
		if (cJSON_IsArray(c) && !c->child && c->string && cJSON_IsObject(o)) {
			bool obj = false;
			for (size_t i = 0; objects[i]; i++)
				obj |= !strcmp(c->string, objects[i]);
			if (obj)
				cJSON_ReplaceItemInObjectCaseSensitive(o, c->string, cJSON_CreateObject());
			else
				cJSON_DeleteItemFromObjectCaseSensitive(o, c->string);
		} else if (cJSON_IsArray(c) || cJSON_IsObject(c)) {
			fix_empty(c);
		}
		c = next;
	}
}

/* The pod template the task gave (a table, or a JSON/YAML file), or an empty one. */
static cJSON *base_template(const cJSON *o, char **err)
{
	const cJSON *pt = cJSON_GetObjectItemCaseSensitive(o, "pod_template");
	if (cJSON_IsObject(pt)) {
		cJSON *j = cJSON_Duplicate(pt, true);
		fix_empty(j);
		return j;
	}
	if (!cJSON_IsString(pt))
		return cJSON_CreateObject();
	char *text = NULL, *why = NULL;
	int rc = read_file(pt->valuestring, 4 << 20, &text, NULL);
	if (rc < 0) {
		*err = xasprintf("k8s: pod_template %s: %s", pt->valuestring, strerror(-rc));
		return NULL;
	}
	cJSON *j = k8s_yaml_parse(text, &why);
	free(text);
	if (!j || !cJSON_IsObject(j)) {
		*err = xasprintf("k8s: pod_template %s: %s", pt->valuestring, why ? why : "not a mapping");
		free(why);
		cJSON_Delete(j);
		return NULL;
	}
	/* A whole Pod or PodTemplate document: take what a Job's template holds. */
	cJSON *inner = cJSON_DetachItemFromObjectCaseSensitive(j, "template");
	if (cJSON_IsObject(inner)) {
		cJSON_Delete(j);
		j = inner;
	} else {
		cJSON_Delete(inner);
		cJSON_DeleteItemFromObjectCaseSensitive(j, "apiVersion");
		cJSON_DeleteItemFromObjectCaseSensitive(j, "kind");
		cJSON_DeleteItemFromObjectCaseSensitive(j, "status");
	}
	return j;
}

/* The container named "task" of the template (created first in the list when missing). */
static cJSON *task_container(cJSON *podspec)
{
	cJSON *cs = cJSON_GetObjectItemCaseSensitive(podspec, "containers"), *c;
	if (!cJSON_IsArray(cs)) {
		cJSON_DeleteItemFromObjectCaseSensitive(podspec, "containers");
		cs = cJSON_AddArrayToObject(podspec, "containers");
	}
	cJSON_ArrayForEach(c, cs) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
		if (cJSON_IsString(n) && !strcmp(n->valuestring, "task"))
			return c;
	}
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "name", "task");
	cJSON_InsertItemInArray(cs, 0, c);
	return c;
}

static void append_named(cJSON *o, const char *key, cJSON *item)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsArray(arr)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, key);
		arr = cJSON_AddArrayToObject(o, key);
	}
	cJSON_AddItemToArray(arr, item);
}

static cJSON *job_body(const struct k8s_state *ks, const struct exec_spec *spec, const char *ns, const char *name,
		       char **err)
{
	const cJSON *o = spec->options;
	cJSON *tmpl = base_template(o, err);
	if (!tmpl)
		return NULL;
	cJSON *job = cJSON_CreateObject();
	cJSON_AddStringToObject(job, "apiVersion", "batch/v1");
	cJSON_AddStringToObject(job, "kind", "Job");
	cJSON *meta = cJSON_AddObjectToObject(job, "metadata");
	cJSON_AddStringToObject(meta, "name", name);
	cJSON_AddStringToObject(meta, "namespace", ns);
	set_identity(meta, ks, spec, name);
	cJSON *js = cJSON_AddObjectToObject(job, "spec");
	cJSON_AddNumberToObject(js, "backoffLimit", 0);
	if (spec->timeout > 0)
		cJSON_AddNumberToObject(js, "activeDeadlineSeconds",
					(double)((spec->timeout + USEC_PER_SEC - 1) / USEC_PER_SEC));
	if (ks->ttl >= 0)
		cJSON_AddNumberToObject(js, "ttlSecondsAfterFinished", (double)ks->ttl);
	cJSON_AddItemToObject(js, "template", tmpl);
	set_identity(obj_get(tmpl, "metadata"), ks, spec, name);
	cJSON *ps = obj_get(tmpl, "spec");
	obj_set(ps, "restartPolicy", cJSON_CreateString("Never"));
	const char *sa = NULL, *pull = NULL;
	const cJSON *v;
	if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(o, "service_account")))
		sa = v->valuestring;
	if (sa)
		obj_set(ps, "serviceAccountName", cJSON_CreateString(sa));
	if (cJSON_IsObject(v = cJSON_GetObjectItemCaseSensitive(o, "node_selector")))
		obj_set(ps, "nodeSelector", cJSON_Duplicate(v, true));
	if (cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(o, "tolerations")))
		obj_set(ps, "tolerations", cJSON_Duplicate(v, true));
	cJSON *vol = cJSON_CreateObject();
	cJSON_AddStringToObject(vol, "name", "sluice-output");
	cJSON_AddObjectToObject(vol, "emptyDir");
	append_named(ps, "volumes", vol);
	cJSON *c = task_container(ps);
	if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(o, "image")))
		obj_set(c, "image", cJSON_CreateString(v->valuestring));
	if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(o, "image_pull_policy")))
		pull = v->valuestring;
	if (pull)
		obj_set(c, "imagePullPolicy", cJSON_CreateString(pull));
	cJSON *argv = cJSON_CreateArray();
	for (size_t i = 0; spec->argv[i]; i++)
		cJSON_AddItemToArray(argv, cJSON_CreateString(spec->argv[i]));
	obj_set(c, "command", argv);
	cJSON_DeleteItemFromObjectCaseSensitive(c, "args");
	if (spec->cwd)
		obj_set(c, "workingDir", cJSON_CreateString(spec->cwd));
	cJSON *env = pod_env(spec, cJSON_GetObjectItemCaseSensitive(o, "env"));
	cJSON *old = cJSON_GetObjectItemCaseSensitive(c, "env"), *e;
	if (cJSON_IsArray(old)) { /* the template's own variables stay unless sluice sets them */
		cJSON_ArrayForEach(e, old) {
			const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
			bool dup = false;
			const cJSON *x;
			cJSON_ArrayForEach(x, env) {
				const cJSON *xn = cJSON_GetObjectItemCaseSensitive(x, "name");
				dup |= cJSON_IsString(n) && !strcmp(xn->valuestring, n->valuestring);
			}
			if (!dup)
				cJSON_AddItemToArray(env, cJSON_Duplicate(e, true));
		}
	}
	obj_set(c, "env", env);
	set_resources(c, o);
	cJSON *vm = cJSON_CreateObject();
	cJSON_AddStringToObject(vm, "name", "sluice-output");
	cJSON_AddStringToObject(vm, "mountPath", OUTPUT_DIR);
	append_named(c, "volumeMounts", vm);
	obj_set(c, "terminationMessagePath", cJSON_CreateString(OUTPUT_FILE));
	obj_set(c, "terminationMessagePolicy", cJSON_CreateString("File"));
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "image"))) {
		*err = xstrdup("k8s: the task names no image (k8s = { image = \"...\" })");
		cJSON_Delete(job);
		return NULL;
	}
	return job;
}

/* ---- tries ---- */

static struct k8s_try *try_by_token(struct k8s_state *ks, uint64_t token)
{
	for (struct k8s_try *t = ks->tries; t; t = t->next)
		if (t->token == token)
			return t;
	return NULL;
}

static struct k8s_try *try_by_name(struct k8s_ns *ns, const char *name)
{
	for (struct k8s_try *t = ns->ks->tries; name && t; t = t->next)
		if (t->ns == ns && !strcmp(t->name, name))
			return t;
	return NULL;
}

static void try_free(struct k8s_try *t)
{
	struct k8s_state *ks = t->ks;
	struct k8s_req *reqs[] = {t->create_req, t->log_req, t->del_req};
	for (size_t i = 0; i < 3; i++)
		if (reqs[i])
			k8s_req_cancel(reqs[i]);
	if (t->defer)
		evloop_timer_cancel(ks->ex->loop, t->defer);
	if (t->prev)
		t->prev->next = t->next;
	else
		ks->tries = t->next;
	if (t->next)
		t->next->prev = t->prev;
	ks->running--;
	if (t->log_fd >= 0)
		close(t->log_fd);
	masker_free(&t->mask);
	free(t->name);
	free(t->pod);
	free(t->status_path);
	free(t->pid_path);
	free(t->log_path);
	free(t->out_path);
	free(t->mask_path);
	free(t->body);
	free(t->pending_reason);
	free(t->end_msg);
	free(t->term_msg);
	free(t);
}

static struct k8s_ns *ns_get(struct k8s_state *ks, const char *name);

static struct k8s_try *try_new(struct k8s_state *ks, uint64_t token, const struct exec_spec *spec, const char *ns,
			       const char *name)
{
	struct k8s_try *t = xcalloc(1, sizeof(*t));
	t->ks = ks;
	t->token = token;
	t->name = xstrdup(name);
	t->status_path = xstrdup(spec->status_path);
	t->pid_path = xstrdup(spec->pid_path);
	t->log_path = xstrdup(spec->log_path);
	t->out_path = spec->output_path ? xstrdup(spec->output_path) : NULL;
	t->mask_path = spec->mask_path ? xstrdup(spec->mask_path) : NULL;
	t->max_log = spec->max_log_size;
	t->timeout = spec->timeout;
	t->started = now_usec();
	t->pending_since = mono_usec();
	t->log_fd = open(t->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (t->log_fd >= 0) {
		struct stat sb;
		if (fstat(t->log_fd, &sb) == 0)
			t->written = sb.st_size;
	}
	masker_load(&t->mask, t->mask_path);
	t->next = ks->tries;
	if (ks->tries)
		ks->tries->prev = t;
	ks->tries = t;
	ks->running++;
	t->ns = ns_get(ks, ns);
	return t;
}

static int try_save(struct k8s_try *t)
{
	struct stat sb;
	long long size = t->log_fd >= 0 && fstat(t->log_fd, &sb) == 0 ? (long long)sb.st_size : -1;
	char *text = xasprintf("k8s %s %s %s %lld %lld %lld\n%s\n", t->ns->name, t->name,
			       t->created ? "created" : "submitting", t->offset - (long long)masker_pending(&t->mask),
			       (long long)t->started, size, t->body ? t->body : "{}");
	int rc = write_file_atomic(t->pid_path, text, strlen(text), false);
	free(text);
	t->saved_offset = t->offset;
	t->saved_at = mono_usec();
	return rc;
}

/* ---- the log ---- */

static void log_write(struct k8s_try *t, const char *p, size_t n)
{
	trylog_append(t->log_fd, t->log_path, "k8s", p, n, t->max_log, &t->written, &t->capped);
}

/* A line of sluice's own in the try's log. */
static void log_note(struct k8s_try *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_note(struct k8s_try *t, const char *fmt, ...)
{
	struct strbuf sb = {0};
	va_list ap;
	sb_puts(&sb, "sluice: k8s: ");
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	sb_putc(&sb, '\n');
	if (t->log_fd >= 0 && write(t->log_fd, sb.buf, sb.len) < 0)
		log_warn("k8s: cannot write %s", t->log_path);
	t->written += (long long)sb.len;
	sb_free(&sb);
	if (t->body)
		try_save(t); /* the log's size in the pid file includes this line (see k8s_reattach) */
}

/* Pod log bytes: secrets written as ***, the tail that may start a secret kept for later. */
static void log_feed(struct k8s_try *t, const char *p, size_t n, bool final)
{
	t->offset += (long long)n;
	if (!t->mask.n) {
		log_write(t, p, n);
		return;
	}
	struct strbuf out = {0};
	masker_feed(&t->mask, p, n, final, &out);
	log_write(t, out.buf, out.len);
	sb_free(&out);
}

/* Log stream bytes: the ones the local log already has (a re-opened stream starts at 0) are skipped. */
static void on_log_data(void *arg, const char *data, size_t n)
{
	struct k8s_try *t = arg;
	long long start = t->recv;
	t->recv += (long long)n;
	if (t->recv <= t->offset)
		return;
	size_t skip = start < t->offset ? (size_t)(t->offset - start) : 0;
	log_feed(t, data + skip, n - skip, false);
	/* What a restarted daemon skips: kept at most 100 ms behind (a line may repeat, none is lost). */
	if (t->created && mono_usec() - t->saved_at >= 100 * 1000)
		try_save(t);
}

static void log_open(struct k8s_try *t, bool follow);

static void on_log_done(void *arg, struct k8s_req *r, long status, const char *body, size_t len, const char *cerr)
{
	struct k8s_try *t = arg;
	(void)r;
	(void)len;
	t->log_req = NULL;
	t->log_fetching = false;
	if (status >= 200 && status < 300) {
		if (t->log_final) {
			t->log_done = true;
			try_check_end(t);
			return;
		}
	} else if (status == 404 && t->log_final) {
		log_note(t, "the pod is gone: its log could not be fetched");
		t->log_done = true;
		try_check_end(t);
		return;
	} else if (status) {
		log_debug("k8s: log of %s: HTTP %ld: %.200s", t->name, status, body);
	} else {
		log_debug("k8s: log of %s: %s", t->name, cerr ? cerr : "?");
	}
	/* Dropped, or not readable yet: the tick opens it again (the rest: 10 times at most). */
	if (t->log_final && ++t->log_fails >= 10) {
		log_note(t, "the rest of the pod's log could not be fetched (HTTP %ld)", status);
		t->log_done = true;
		try_check_end(t);
		return;
	}
	t->log_retry_at = mono_usec() + (t->log_final ? 500 * 1000LL : USEC_PER_SEC);
}

static void log_open(struct k8s_try *t, bool follow)
{
	if (t->log_req || !t->pod)
		return;
	struct strbuf p = {0};
	sb_printf(&p, "/api/v1/namespaces/%s/pods/%s/log?container=task%s", t->ns->name, t->pod,
		  follow ? "&follow=true" : "");
	t->recv = 0;
	t->log_fetching = true;
	t->log_req = k8s_request(t->ks->http, "GET", sb_str(&p), NULL, follow ? K8S_STREAM : 0, on_log_done,
				 on_log_data, t);
	sb_free(&p);
}

/* ---- the end of a try ---- */

static void write_status(struct k8s_try *t)
{
	static const char *const kinds[] = {"exited", "signaled", "timeout", "lost"};
	struct strbuf sb = {0};
	sb_printf(&sb, "kind=%s\ncode=%d\nstart_us=%lld\nend_us=%lld\n", kinds[t->res.kind], t->res.code,
		  (long long)t->res.start, (long long)t->res.end);
	if (t->end_msg) {
		sb_puts(&sb, "message=");
		for (const char *c = t->end_msg; *c; c++)
			sb_putc(&sb, *c == '\n' ? ' ' : *c);
		sb_putc(&sb, '\n');
	}
	int rc = write_file_atomic(t->status_path, sb.buf, sb.len, true);
	if (rc < 0)
		log_warnx("k8s: cannot write %s: %s", t->status_path, strerror(-rc));
	sb_free(&sb);
}

static void try_finish(struct k8s_try *t)
{
	struct k8s_state *ks = t->ks;
	uint64_t token = t->token;
	struct exec_result res = t->res;
	log_feed(t, "", 0, true);
	if (t->term_msg && *t->term_msg && t->out_path && res.kind == EXEC_END_EXITED) {
		int rc = write_file_atomic(t->out_path, t->term_msg, strlen(t->term_msg), false);
		if (rc < 0)
			log_warnx("k8s: cannot write %s: %s", t->out_path, strerror(-rc));
	}
	if (res.start == USEC_NONE || res.start <= 0)
		res.start = t->res.start = t->started;
	if (res.end == USEC_NONE || res.end <= 0)
		res.end = t->res.end = now_usec();
	write_status(t);
	if (t->mask_path)
		unlink(t->mask_path);
	char *msg = t->end_msg ? xstrdup(t->end_msg) : NULL;
	res.message = msg;
	try_free(t);
	ks->ex->on_end(ks->ex->cb_arg, token, &res);
	free(msg);
}

static void set_end(struct k8s_try *t, enum exec_end_kind kind, int code, const char *msg)
{
	if (t->have_end)
		return;
	t->have_end = true;
	t->res = (struct exec_result){.kind = kind, .code = code, .start = USEC_NONE, .end = now_usec()};
	free(t->end_msg);
	t->end_msg = msg ? xstrdup(msg) : NULL;
}

/* Ends the try once its end is known and its log is complete (or cannot be had). */
static void try_check_end(struct k8s_try *t)
{
	if (!t->have_end)
		return;
	if (t->pod && !t->log_done && !t->del_req && t->res.kind != EXEC_END_LOST) {
		t->log_final = true;
		if (!t->log_req)
			log_open(t, false);
		return;
	}
	if (t->del_req)
		return;
	try_finish(t);
}

static void on_deleted(void *arg, struct k8s_req *r, long status, const char *body, size_t len, const char *cerr)
{
	struct k8s_try *t = arg;
	(void)r;
	(void)len;
	t->del_req = NULL;
	if (!(status >= 200 && status < 300) && status != 404)
		log_note(t, "could not delete Job %s/%s: %s %.300s", t->ns->name, t->name,
			 status ? "HTTP error" : (cerr ? cerr : "?"), body);
	else
		log_note(t, "deleted Job %s/%s (propagationPolicy Foreground)", t->ns->name, t->name);
	t->log_done = true; /* what the log had is kept; the pod goes with the Job */
	try_check_end(t);
}

/* Deletes the Job (its pods with it) and ends the try as set_end() says. */
static void try_delete(struct k8s_try *t)
{
	if (t->del_req)
		return;
	if (t->create_req) { /* not sent yet, or under way: the Job may appear; delete all the same */
		k8s_req_cancel(t->create_req);
		t->create_req = NULL;
	}
	if (t->log_req) {
		k8s_req_cancel(t->log_req);
		t->log_req = NULL;
	}
	char *path = xasprintf("/apis/batch/v1/namespaces/%s/jobs/%s", t->ns->name, t->name);
	t->del_req = k8s_request(t->ks->http, "DELETE", path,
				 "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"propagationPolicy\":\"Foreground\"}",
				 K8S_URGENT, on_deleted, NULL, t);
	free(path);
}

/* ---- what the watches say ---- */

static const cJSON *jget(const cJSON *o, const char *path)
{
	return json_path(o, path);
}

static const char *jstr(const cJSON *o, const char *path)
{
	const cJSON *v = jget(o, path);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The status of container "task" in a pod, or NULL. */
static const cJSON *task_status(const cJSON *pod)
{
	const cJSON *cs = jget(pod, "status.containerStatuses"), *c;
	cJSON_ArrayForEach(c, cs) {
		const char *n = jstr(c, "name");
		if (n && !strcmp(n, "task"))
			return c;
	}
	return NULL;
}

static bool pending_reason_fatal(const char *r)
{
	static const char *const bad[] = {"ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "InvalidImageName",
					  "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull", NULL};
	for (size_t i = 0; r && bad[i]; i++)
		if (!strcmp(r, bad[i]))
			return true;
	return false;
}

static void pod_event(struct k8s_ns *ns, const char *type, const cJSON *pod)
{
	const cJSON *labels = jget(pod, "metadata.labels"), *jl = cJSON_GetObjectItemCaseSensitive(labels, LABEL_JOB);
	struct k8s_try *t = try_by_name(ns, cJSON_IsString(jl) ? jl->valuestring : NULL);
	const char *name = jstr(pod, "metadata.name"), *phase = jstr(pod, "status.phase");
	if (!t || !name || t->have_end)
		return;
	if (t->pod && strcmp(t->pod, name))
		return; /* backoffLimit 0: one pod per Job; a stranger is ignored */
	if (!t->pod)
		t->pod = xstrdup(name);
	if (!strcmp(type, "DELETED"))
		return; /* the Job's event decides */
	const cJSON *cs = task_status(pod);
	const cJSON *term = jget(cs, "state.terminated"), *wait = jget(cs, "state.waiting");
	if (cJSON_IsObject(term)) {
		const cJSON *code = jget(term, "exitCode");
		const char *reason = jstr(term, "reason"), *msg = jstr(term, "message");
		int rc = cJSON_IsNumber(code) ? code->valueint : -1;
		free(t->term_msg);
		t->term_msg = msg ? xstrdup(msg) : NULL;
		const char *preason = jstr(pod, "status.reason"), *pmsg = jstr(pod, "status.message");
		if (reason && strcmp(reason, "Completed") && strcmp(reason, "Error"))
			log_note(t, "container ended: %s (exit code %d)", reason, rc);
		if (preason)
			log_note(t, "pod %s: %s%s%s", name, preason, pmsg ? ": " : "", pmsg ? pmsg : "");
		if ((reason && !strcmp(reason, "DeadlineExceeded")) || (preason && !strcmp(preason, "DeadlineExceeded"))) {
			set_end(t, EXEC_END_TIMEOUT, SIGKILL, NULL);
		} else if (preason && !strcmp(preason, "Evicted") && rc != 0) {
			char *why = xasprintf("pod %s was evicted: %s", name, pmsg ? pmsg : "no message");
			set_end(t, EXEC_END_LOST, -1, why);
			free(why);
		} else {
			set_end(t, EXEC_END_EXITED, rc, reason);
		}
		try_check_end(t);
		return;
	}
	if (phase && !strcmp(phase, "Failed")) {
		const char *reason = jstr(pod, "status.reason"), *msg = jstr(pod, "status.message");
		char *why = xasprintf("pod %s failed: %s%s%s", name, reason ? reason : "Failed", msg ? ": " : "",
				      msg ? msg : "");
		log_note(t, "%s", why);
		set_end(t, reason && !strcmp(reason, "DeadlineExceeded") ? EXEC_END_TIMEOUT : EXEC_END_LOST,
			reason && !strcmp(reason, "DeadlineExceeded") ? SIGKILL : -1, why);
		free(why);
		try_check_end(t);
		return;
	}
	if (phase && !strcmp(phase, "Running")) {
		t->pending_since = 0;
		free(t->pending_reason);
		t->pending_reason = NULL;
		log_open(t, true);
		return;
	}
	/* Pending: why, for the pending_timeout. */
	const char *reason = cJSON_IsObject(wait) ? jstr(wait, "reason") : NULL;
	const char *msg = cJSON_IsObject(wait) ? jstr(wait, "message") : NULL;
	const cJSON *cond, *conds = jget(pod, "status.conditions");
	cJSON_ArrayForEach(cond, conds) {
		const char *ct = jstr(cond, "type"), *st = jstr(cond, "status");
		if (!reason && ct && !strcmp(ct, "PodScheduled") && st && !strcmp(st, "False")) {
			reason = jstr(cond, "reason");
			msg = jstr(cond, "message");
		}
	}
	char *now = reason ? xasprintf("%s%s%s", reason, msg ? ": " : "", msg ? msg : "") : xstrdup("Pending");
	if (!t->pending_reason || strcmp(t->pending_reason, now)) {
		if (reason && strcmp(reason, "ContainerCreating"))
			log_note(t, "pod %s is Pending: %s", name, now);
		free(t->pending_reason);
		t->pending_reason = now;
	} else {
		free(now);
	}
	if (!t->pending_since)
		t->pending_since = mono_usec();
	if (pending_reason_fatal(reason))
		tick_arm(t->ks);
}

static void job_event(struct k8s_ns *ns, const char *type, const cJSON *job)
{
	struct k8s_try *t = try_by_name(ns, jstr(job, "metadata.name"));
	if (!t)
		return;
	t->seen_job = true;
	t->seen_gen = ns->jobs.lists;
	if (t->phase == P_SUBMIT && t->create_req == NULL) {
		t->phase = P_ACTIVE; /* adopted: the Job was there */
		t->created = true;
		try_save(t);
	}
	if (t->have_end && !strcmp(type, "DELETED") && !t->del_req) {
		t->log_done = true;
		try_check_end(t);
		return;
	}
	if (t->have_end)
		return;
	const cJSON *cond, *conds = jget(job, "status.conditions");
	cJSON_ArrayForEach(cond, conds) {
		const char *ct = jstr(cond, "type"), *st = jstr(cond, "status"), *reason = jstr(cond, "reason");
		if (ct && st && !strcmp(st, "True") && (!strcmp(ct, "Complete") || !strcmp(ct, "Failed")) &&
		    !t->job_done) {
			t->job_done = ct[0] == 'C' ? 1 : 2;
			t->job_done_at = mono_usec();
		}
		if (ct && !strcmp(ct, "Failed") && st && !strcmp(st, "True") && reason &&
		    !strcmp(reason, "DeadlineExceeded")) {
			t->deadline = true;
			log_note(t, "Job %s: DeadlineExceeded (activeDeadlineSeconds from execution_timeout)", t->name);
			set_end(t, EXEC_END_TIMEOUT, SIGKILL, "DeadlineExceeded");
			try_check_end(t);
			return;
		}
	}
	if (!strcmp(type, "DELETED")) {
		log_note(t, "Job %s/%s was deleted before its pod ended", ns->name, t->name);
		set_end(t, EXEC_END_LOST, -1, "the Job was deleted from the cluster");
		t->log_done = true;
		try_check_end(t);
	}
}

/* ---- watches ---- */

static void watch_later(struct k8s_watch *w, usec_t delay);

static void on_watch_timer(struct evloop *loop, void *arg)
{
	struct k8s_watch *w = arg;
	w->timer = NULL;
	watch_start(w);
	(void)loop;
}

static void watch_later(struct k8s_watch *w, usec_t delay)
{
	if (!w->timer)
		w->timer = evloop_timer_in(w->ns->ks->ex->loop, delay, on_watch_timer, w);
}

/* After a namespace's Jobs were listed: re-attached tries whose Job is missing. */
static void ns_synced(struct k8s_ns *ns)
{
	usec_t now = mono_usec();
	for (struct k8s_try *t = ns->ks->tries, *next; t; t = next) {
		next = t->next;
		if (t->ns == ns && !t->have_end && t->job_done && !t->pod) {
			/* The Job ended while nobody watched, and its pod is gone (ttl): no log, no outputs. */
			log_note(t, "Job %s/%s %s while sluice was away; its pod is gone with its log", ns->name, t->name,
				 t->job_done == 1 ? "completed" : "failed");
			if (t->job_done == 1)
				set_end(t, EXEC_END_EXITED, 0, NULL);
			else
				set_end(t, EXEC_END_LOST, -1, "the Job failed and its pod is gone");
			try_finish(t);
			continue;
		}
		if (t->ns != ns || t->have_end || t->phase != P_ACTIVE || t->create_req || t->seen_gen == ns->jobs.lists)
			continue;
		/* Not in the latest list: a Job confirmed a while ago is gone (one confirmed just now
		 * may have been created after the list was served). */
		if (!t->reattached && (!t->created || now - t->created_at < 5 * USEC_PER_SEC))
			continue;
		t->reattached = false;
		if (!t->created && t->body) {
			t->phase = P_SUBMIT;
			try_submit(t);
		} else {
			log_note(t, "Job %s/%s no longer exists (deleted while sluice was down?)", ns->name, t->name);
			set_end(t, EXEC_END_LOST, -1, "its Job no longer exists");
			try_finish(t);
		}
	}
}

static void watch_item(struct k8s_watch *w, const char *type, const cJSON *obj)
{
	if (w == &w->ns->jobs)
		job_event(w->ns, type, obj);
	else
		pod_event(w->ns, type, obj);
}

static void auth_refused(struct k8s_state *ks, long status, const char *body)
{
	cJSON *j = cJSON_Parse(body);
	const char *m = jstr(j, "message");
	free(ks->auth_error);
	ks->auth_error = xasprintf("the API server %s refused the credentials from %s (HTTP %ld%s%s)", ks->auth.server,
				   ks->auth.source, status, m ? ": " : "", m ? m : "");
	if (!ks->auth_warned)
		log_warnx("k8s: %s", ks->auth_error);
	ks->auth_warned = true;
	cJSON_Delete(j);
}

static void on_list_done(void *arg, struct k8s_req *r, long status, const char *body, size_t len, const char *cerr)
{
	struct k8s_watch *w = arg;
	(void)r;
	(void)len;
	w->req = NULL;
	w->listing = false;
	if (status != 200) {
		if (status == 401 || status == 403)
			auth_refused(w->ns->ks, status, body);
		else
			log_debug("k8s: list %s in %s: %s", w->kind, w->ns->name, status ? "HTTP error" : cerr);
		w->fails++;
		watch_later(w, (usec_t)(w->fails < 6 ? 250000LL << w->fails : 30 * USEC_PER_SEC));
		return;
	}
	cJSON *j = cJSON_Parse(body);
	const char *rv = jstr(j, "metadata.resourceVersion");
	const cJSON *item;
	if (!rv || !cJSON_IsArray(jget(j, "items"))) {
		log_warnx("k8s: the list of %s in %s is not a %s list (%zu bytes): listing again", w->kind, w->ns->name,
			  w->kind, len);
		cJSON_Delete(j);
		w->fails++;
		watch_later(w, (usec_t)(w->fails < 6 ? 250000LL << w->fails : 30 * USEC_PER_SEC));
		return;
	}
	w->fails = 0;
	w->lists++;
	free(w->rv);
	w->rv = xstrdup(rv);
	if (w->ns->ks->auth_warned) {
		log_info("k8s: the API server accepts the credentials again");
		w->ns->ks->auth_warned = false;
	}
	cJSON_ArrayForEach(item, jget(j, "items"))
		watch_item(w, "ADDED", item);
	cJSON_Delete(j);
	w->synced = true;
	if (w->ns->jobs.synced && w->ns->pods.synced)
		ns_synced(w->ns);
	watch_start(w);
}

/* One event line of a watch. */
static void watch_line(struct k8s_watch *w, const char *line)
{
	cJSON *ev = cJSON_Parse(line);
	const char *type = jstr(ev, "type");
	const cJSON *obj = jget(ev, "object");
	if (!type || !cJSON_IsObject(obj)) {
		cJSON_Delete(ev);
		return;
	}
	if (!strcmp(type, "ERROR")) {
		const cJSON *code = jget(obj, "code");
		if (cJSON_IsNumber(code) && code->valueint == 410) {
			free(w->rv); /* too old: list again, now */
			w->rv = NULL;
			w->relist = true;
		}
		w->restart = true;
		cJSON_Delete(ev);
		return;
	}
	const char *rv = jstr(obj, "metadata.resourceVersion");
	if (rv) {
		free(w->rv);
		w->rv = xstrdup(rv);
	}
	if (strcmp(type, "BOOKMARK"))
		watch_item(w, type, obj);
	cJSON_Delete(ev);
}

static void on_watch_data(void *arg, const char *data, size_t n)
{
	struct k8s_watch *w = arg;
	for (size_t i = 0; i < n; i++) {
		if (data[i] != '\n') {
			if (w->line.len < (64u << 20))
				sb_putc(&w->line, data[i]);
			else /* an event this big is not one: skip the rest of the stream, list again after */
				w->restart = w->relist = true;
			continue;
		}
		if (w->line.len && !w->restart)
			watch_line(w, w->line.buf);
		sb_reset(&w->line);
	}
}

static void on_watch_done(void *arg, struct k8s_req *r, long status, const char *body, size_t len, const char *cerr)
{
	struct k8s_watch *w = arg;
	(void)r;
	(void)len;
	w->req = NULL;
	sb_reset(&w->line);
	w->restart = false;
	if (status == 401 || status == 403) {
		auth_refused(w->ns->ks, status, body);
		w->fails++;
		watch_later(w, (usec_t)(w->fails < 6 ? 250000LL << w->fails : 30 * USEC_PER_SEC));
		return;
	}
	if (status == 200 || status == 410 || w->relist) {
		/* The server's timeout, an ERROR event, or 410 Gone (then rv is NULL: a re-list) */
		if (status == 410 || w->relist) {
			free(w->rv);
			w->rv = NULL;
		}
		w->relist = false;
		w->fails = 0;
		watch_start(w);
		return;
	}
	/* A dropped stream or a refused watch: list again (events may have been missed), at once the
	 * first time, then backing off. */
	log_debug("k8s: watch %s in %s ended: %s", w->kind, w->ns->name, status ? "HTTP error" : cerr);
	free(w->rv);
	w->rv = NULL;
	if (w->fails++ == 0)
		watch_start(w);
	else /* at most 8 s: against a server that cannot watch, the lists keep the tries going */
		watch_later(w, (usec_t)(w->fails < 5 ? 250000LL << w->fails : 8 * USEC_PER_SEC));
}

static void watch_start(struct k8s_watch *w)
{
	struct k8s_ns *ns = w->ns;
	struct strbuf p = {0};
	if (w->req || w->timer)
		return;
	sb_printf(&p, "%s/namespaces/%s/%s?labelSelector=", w->api, ns->name, w->kind);
	char *sel = xasprintf(LABEL_INSTANCE "=%s", ns->ks->instance);
	k8s_url_escape(&p, sel);
	free(sel);
	if (!w->rv) {
		w->listing = true;
		w->req = k8s_request(ns->ks->http, "GET", sb_str(&p), NULL, K8S_URGENT, on_list_done, NULL, w);
	} else {
		sb_printf(&p, "&watch=true&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=", WATCH_SECONDS);
		k8s_url_escape(&p, w->rv);
		w->req = k8s_request(ns->ks->http, "GET", sb_str(&p), NULL, K8S_STREAM | K8S_URGENT, on_watch_done,
				     on_watch_data, w);
	}
	sb_free(&p);
}

static struct k8s_ns *ns_get(struct k8s_state *ks, const char *name)
{
	for (struct k8s_ns *ns = ks->nss; ns; ns = ns->next)
		if (!strcmp(ns->name, name))
			return ns;
	struct k8s_ns *ns = xcalloc(1, sizeof(*ns));
	ns->ks = ks;
	ns->name = xstrdup(name);
	ns->jobs = (struct k8s_watch){.ns = ns, .kind = "jobs", .api = "/apis/batch/v1"};
	ns->pods = (struct k8s_watch){.ns = ns, .kind = "pods", .api = "/api/v1"};
	ns->next = ks->nss;
	ks->nss = ns;
	watch_start(&ns->jobs);
	watch_start(&ns->pods);
	return ns;
}

static void watch_stop(struct k8s_state *ks, struct k8s_watch *w)
{
	if (w->req)
		k8s_req_cancel(w->req);
	if (w->timer)
		evloop_timer_cancel(ks->ex->loop, w->timer);
	sb_free(&w->line);
	free(w->rv);
}

/* ---- submission ---- */

static void on_created(void *arg, struct k8s_req *r, long status, const char *body, size_t len, const char *cerr)
{
	struct k8s_try *t = arg;
	struct k8s_state *ks = t->ks;
	(void)r;
	(void)len;
	t->create_req = NULL;
	if (status == 201 || status == 200 || status == 202 || status == 409) {
		if (status == 409)
			log_note(t, "Job %s/%s already exists (this try was submitted before): adopted", t->ns->name,
				 t->name);
		else
			log_note(t, "created Job %s/%s", t->ns->name, t->name);
		if (ks->auth_warned && status != 409) {
			log_info("k8s: the API server accepts the credentials again");
			ks->auth_warned = false;
		}
		t->phase = P_ACTIVE;
		t->created = true;
		t->created_at = mono_usec();
		if (!t->pod) /* Pending counts from the Job's creation, not from the wait for a token */
			t->pending_since = mono_usec();
		try_save(t);
		return;
	}
	char *why;
	if (status == 401 || status == 403) {
		auth_refused(ks, status, body);
		why = xstrdup(ks->auth_error);
	} else {
		cJSON *j = cJSON_Parse(body);
		const char *m = jstr(j, "message");
		why = status ? xasprintf("the API server refused Job %s (HTTP %ld): %s", t->name, status,
					 m ? m : "(no message)")
			     : xasprintf("cannot reach the API server %s: %s", ks->auth.server, cerr ? cerr : "?");
		cJSON_Delete(j);
	}
	log_note(t, "%s", why);
	set_end(t, EXEC_END_LOST, -1, why);
	free(why);
	try_finish(t);
}

static void try_submit(struct k8s_try *t)
{
	char *path = xasprintf("/apis/batch/v1/namespaces/%s/jobs", t->ns->name);
	t->create_req = k8s_request(t->ks->http, "POST", path, t->body, K8S_EARLY, on_created, NULL, t);
	free(path);
}

/* ---- the tick: timeouts, pending_timeout, log re-opening, offsets ---- */

static void on_tick(struct evloop *loop, void *arg)
{
	struct k8s_state *ks = arg;
	usec_t now = mono_usec();
	ks->tick = NULL;
	for (struct k8s_try *t = ks->tries, *next; t; t = next) {
		next = t->next;
		if (t->have_end) {
			if (t->log_final && !t->log_req && !t->del_req && t->log_retry_at && now >= t->log_retry_at) {
				t->log_retry_at = 0;
				log_open(t, false);
			}
			continue;
		}
		if (t->timeout > 0 && now_usec() - t->started > t->timeout && !t->del_req) {
			char d[32];
			format_duration(t->timeout, d, sizeof(d));
			log_note(t, "execution_timeout of %s exceeded: deleting Job %s", d, t->name);
			t->timed_out = true;
			set_end(t, EXEC_END_TIMEOUT, SIGTERM, NULL);
			try_delete(t);
			continue;
		}
		if (t->phase == P_ACTIVE && t->pending_since && now - t->pending_since > ks->pending_timeout) {
			char d[32];
			format_duration(ks->pending_timeout, d, sizeof(d));
			char *why = t->pod ? xasprintf("the pod stayed Pending for more than k8s.pending_timeout (%s): %s", d,
						       t->pending_reason ? t->pending_reason : "Pending")
					   : xasprintf("no pod ran for Job %s within k8s.pending_timeout (%s)", t->name, d);
			log_note(t, "%s; deleting Job %s", why, t->name);
			set_end(t, EXEC_END_LOST, -1, why);
			free(why);
			try_delete(t);
			continue;
		}
		if (t->job_done && !t->pod && now - t->job_done_at > 3 * USEC_PER_SEC) {
			/* The Job ended and no pod of it was ever seen (gone already): its condition decides. */
			log_note(t, "Job %s %s, but no pod of it could be seen: no log, no outputs", t->name,
				 t->job_done == 1 ? "completed" : "failed");
			set_end(t, t->job_done == 1 ? EXEC_END_EXITED : EXEC_END_LOST, t->job_done == 1 ? 0 : -1,
				t->job_done == 1 ? NULL : "the Job failed and none of its pods could be seen");
			try_finish(t);
			continue;
		}
		if (t->pod && !t->log_req && t->log_retry_at && now >= t->log_retry_at) {
			t->log_retry_at = 0;
			log_open(t, true);
		}
		if (t->created && t->offset != t->saved_offset)
			try_save(t);
	}
	tick_arm(ks);
	(void)loop;
}

static void tick_arm(struct k8s_state *ks)
{
	if (!ks->tick && ks->tries)
		ks->tick = evloop_timer_in(ks->ex->loop, TICK, on_tick, ks);
}

/* ---- the operations ---- */

static const char *try_namespace(const struct k8s_state *ks, const cJSON *o)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "namespace");
	return cJSON_IsString(v) && *v->valuestring ? v->valuestring : ks->namespace;
}

static int k8s_start(struct executor *ex, uint64_t token, const struct exec_spec *spec, char **external_id, int *pid,
		     char **err)
{
	struct k8s_state *ks = ex->state;
	if (!spec->argv || !spec->argv[0] || !spec->log_path || !spec->status_path || !spec->pid_path) {
		*err = xstrdup("k8s: a command, a log, a status and a pid file path are required");
		return -EINVAL;
	}
	if (spec->run_as) {
		*err = xstrdup("k8s: run_as is not supported (the pod's user comes from its securityContext)");
		return -EINVAL;
	}
	if (try_by_token(ks, token)) {
		*err = xasprintf("k8s: try %llu is already running", (unsigned long long)token);
		return -EEXIST;
	}
	const char *ns = try_namespace(ks, spec->options);
	char *name = job_name(ks, spec);
	cJSON *job = job_body(ks, spec, ns, name, err);
	if (!job) {
		free(name);
		return -EINVAL;
	}
	struct k8s_try *t = try_new(ks, token, spec, ns, name);
	t->body = cJSON_PrintUnformatted(job);
	cJSON_Delete(job);
	int rc = try_save(t);
	if (rc < 0) {
		*err = xasprintf("k8s: cannot write %s: %s", t->pid_path, strerror(-rc));
		free(name);
		try_free(t);
		return rc;
	}
	log_note(t, "submitting Job %s/%s to %s", ns, name, ks->auth.server); /* saves again */
	t->phase = P_SUBMIT;
	try_submit(t);
	tick_arm(ks);
	*external_id = xasprintf("%s/%s", ns, name);
	*pid = 0;
	free(name);
	return 0;
}

static void on_deferred(struct evloop *loop, void *arg)
{
	struct k8s_try *t = arg;
	struct exec_result res;
	char *msg = NULL;
	(void)loop;
	t->defer = NULL;
	if (exec_read_status(t->status_path, &res, &msg) == 0) {
		struct k8s_state *ks = t->ks;
		uint64_t token = t->token;
		res.message = msg;
		try_free(t);
		ks->ex->on_end(ks->ex->cb_arg, token, &res);
		free(msg);
		return;
	}
	free(msg);
	set_end(t, EXEC_END_LOST, -1, "no status and no Job name to re-attach to");
	try_finish(t);
}

static int k8s_reattach(struct executor *ex, uint64_t token, const struct exec_spec *spec, const char *external_id)
{
	struct k8s_state *ks = ex->state;
	char *text = NULL, ns[256] = "", name[256] = "", state[32] = "";
	long long off = 0, started = 0, size = -1;
	if (!spec->status_path || !spec->pid_path || !spec->log_path)
		return -EINVAL;
	if (try_by_token(ks, token))
		return -EEXIST;
	struct stat sb;
	bool done = stat(spec->status_path, &sb) == 0;
	if (read_file(spec->pid_path, 8 << 20, &text, NULL) == 0)
		sscanf(text, "k8s %255s %255s %31s %lld %lld %lld", ns, name, state, &off, &started, &size);
	if (!name[0] && external_id) {
		const char *slash = strchr(external_id, '/');
		if (slash && (size_t)(slash - external_id) < sizeof(ns) && strlen(slash + 1) < sizeof(name)) {
			snprintf(ns, sizeof(ns), "%.*s", (int)(slash - external_id), external_id);
			snprintf(name, sizeof(name), "%s", slash + 1);
			snprintf(state, sizeof(state), "created");
		}
	}
	static const char dns[] = "abcdefghijklmnopqrstuvwxyz0123456789-.";
	if (name[0] && (strspn(name, dns) != strlen(name) || strspn(ns, dns) != strlen(ns) || !ns[0]))
		name[0] = '\0'; /* not a name sluice gave: never put into a URL */
	if (!name[0] && !done) {
		free(text);
		return -ENOENT;
	}
	struct k8s_try *t = try_new(ks, token, spec, name[0] ? ns : ks->namespace, name[0] ? name : "-");
	/* The pod's bytes the log got after the last save (a kill between the write and the save):
	 * counted too, so that none is written twice. Not with masks (*** changes the length). */
	if (size >= 0 && !t->mask.n && t->written > size && t->written - size < (1 << 20))
		off += t->written - size;
	t->offset = t->saved_offset = off;
	t->created = !strcmp(state, "created");
	if (started > 0)
		t->started = started;
	char *nl = text ? strchr(text, '\n') : NULL;
	if (nl && nl[1] == '{') {
		t->body = xstrdup(nl + 1);
		t->body[strcspn(t->body, "\n")] = '\0';
	}
	free(text);
	if (done || !name[0]) {
		t->defer = evloop_timer_in(ex->loop, 0, on_deferred, t); /* on_end never from here */
		return 0;
	}
	t->reattached = true;
	t->phase = P_ACTIVE;
	t->pending_since = mono_usec();
	log_note(t, "re-attached to Job %s/%s after a restart", ns, name);
	if (t->ns->jobs.synced && t->ns->pods.synced) {
		/* The namespace was listed before this try came: list again so that it is seen. */
		struct k8s_watch *ws[] = {&t->ns->jobs, &t->ns->pods};
		for (size_t i = 0; i < 2; i++) {
			ws[i]->synced = false;
			if (ws[i]->req)
				k8s_req_cancel(ws[i]->req);
			ws[i]->req = NULL;
			free(ws[i]->rv);
			ws[i]->rv = NULL;
			watch_start(ws[i]);
		}
	}
	tick_arm(ks);
	return 0;
}

static int k8s_cancel(struct executor *ex, uint64_t token)
{
	struct k8s_try *t = try_by_token(ex->state, token);
	if (!t)
		return -ENOENT;
	if (t->have_end)
		return 0;
	t->cancelled = true;
	log_note(t, "cancelled: deleting Job %s/%s", t->ns->name, t->name);
	set_end(t, EXEC_END_SIGNALED, SIGTERM, "cancelled");
	try_delete(t);
	return 0;
}

static int k8s_free_slots(struct executor *ex)
{
	struct k8s_state *ks = ex->state;
	int n = ex->parallelism - ks->running;
	return n > 0 ? n : 0;
}

/* This daemon's label value: its host and state folder, hashed. */
static char *instance_id(const struct executor *ex)
{
	char host[256] = "", hash[65];
	gethostname(host, sizeof(host) - 1);
	char *id = xasprintf("%s\n%s", host, ex->state_dir ? ex->state_dir : "");
	sha256_hex(id, strlen(id), hash);
	free(id);
	return xasprintf("%.16s", hash);
}

static int load_auth(struct executor *ex, struct k8s_auth *a, char **err)
{
	const char *server = executor_setting(ex, "api_server", "");
	const char *kc = executor_setting(ex, "kubeconfig", "");
	const char *ctx = executor_setting(ex, "context", "");
	const char *sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
	if (*server) {
		memset(a, 0, sizeof(*a));
		a->server = xstrdup(server);
		size_t n = strlen(a->server);
		while (n > 8 && a->server[n - 1] == '/')
			a->server[--n] = '\0';
		const char *tf = executor_setting(ex, "token_file", ""), *ca = executor_setting(ex, "ca_file", "");
		if (*tf)
			a->token_file = xstrdup(tf);
		else if (access("/var/run/secrets/kubernetes.io/serviceaccount/token", R_OK) == 0)
			a->token_file = xasprintf("%s/token", sa_dir);
		if (*ca)
			a->ca_file = xstrdup(ca);
		a->source = xasprintf("[k8s] api_server %s", server);
		return 0;
	}
	if (!*kc) {
		const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
		static char buf[4096];
		if (env && *env) {
			snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(env, ":"), env);
			kc = buf;
		} else if (!getenv("KUBERNETES_SERVICE_HOST") && home) {
			snprintf(buf, sizeof(buf), "%s/.kube/config", home);
			if (access(buf, R_OK) == 0)
				kc = buf;
		}
	}
	if (*kc)
		return k8s_auth_kubeconfig(a, kc, ctx, err);
	if (getenv("KUBERNETES_SERVICE_HOST"))
		return k8s_auth_incluster(a, sa_dir, err);
	*err = xstrdup("no cluster configured: set [k8s] kubeconfig (or $KUBECONFIG, ~/.kube/config), [k8s] api_server, "
		       "or run the daemon in a pod (in-cluster service account)");
	return -ENOENT;
}

static int k8s_init(struct executor *ex, char **err)
{
	struct k8s_state *ks = xcalloc(1, sizeof(*ks));
	char *why = NULL;
	ks->ex = ex;
	int rc = load_auth(ex, &ks->auth, &why);
	if (rc < 0) {
		*err = xasprintf("k8s executor: %s", why);
		free(why);
		free(ks);
		return rc;
	}
	usec_t pt = 0, ttl = 0;
	if (parse_duration(executor_setting(ex, "pending_timeout", "2m"), &pt) < 0 || pt <= 0)
		pt = 120 * USEC_PER_SEC;
	ks->pending_timeout = pt;
	const char *ttls = executor_setting(ex, "ttl_after_finished", "1h");
	ks->ttl = (*ttls && parse_duration(ttls, &ttl) == 0) ? ttl / USEC_PER_SEC : 3600;
	double qps = atof(executor_setting(ex, "qps", "20"));
	int burst = atoi(executor_setting(ex, "burst", "30"));
	const char *ns = executor_setting(ex, "namespace", "");
	ks->namespace = xstrdup(*ns ? ns : ks->auth.namespace ? ks->auth.namespace : "default");
	ks->instance = instance_id(ex);
	if (!(ks->http = k8s_client_new(ex->loop, &ks->auth, qps, burst, &why))) {
		*err = xasprintf("k8s executor: %s", why);
		free(why);
		k8s_auth_free(&ks->auth);
		free(ks->namespace);
		free(ks->instance);
		free(ks);
		return -ENOMEM;
	}
	ex->state = ks;
	log_info("k8s: API server %s (%s), namespace %s, qps %g, burst %d", ks->auth.server, ks->auth.source,
		 ks->namespace, qps, burst);
	return 0;
}

/* Forgets every try without touching its Job: a later daemon re-attaches. */
static void k8s_shutdown(struct executor *ex)
{
	struct k8s_state *ks = ex->state;
	if (!ks)
		return;
	while (ks->tries) {
		if (ks->tries->created || ks->tries->offset != ks->tries->saved_offset)
			try_save(ks->tries);
		try_free(ks->tries);
	}
	while (ks->nss) {
		struct k8s_ns *ns = ks->nss;
		ks->nss = ns->next;
		watch_stop(ks, &ns->jobs);
		watch_stop(ks, &ns->pods);
		free(ns->name);
		free(ns);
	}
	if (ks->tick)
		evloop_timer_cancel(ex->loop, ks->tick);
	k8s_client_free(ks->http);
	k8s_auth_free(&ks->auth);
	free(ks->namespace);
	free(ks->instance);
	free(ks->auth_error);
	free(ks);
	ex->state = NULL;
}

const struct executor_ops exec_k8s_ops = {
	.name = "k8s",
	.init = k8s_init,
	.shutdown = k8s_shutdown,
	.start = k8s_start,
	.cancel = k8s_cancel,
	.reattach = k8s_reattach,
	.free_slots = k8s_free_slots,
};
