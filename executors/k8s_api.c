/* The `k8s` backend's plumbing: a YAML subset reader, cluster credentials (kubeconfig and
 * in-cluster), and a rate-limited HTTP client on libcurl's multi interface, driven by the
 * daemon's event loop (curl's sockets are loop fds, its timeout one loop timer). See k8s.h. */
#include "executors/k8s.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/log.h"

/* ---- a YAML subset ---- */

struct yline {
	int indent, no;
	char *text; /* without indentation and comment, trailing blanks cut */
};

struct yparser {
	struct yline *v;
	size_t n, i;
	char *err;
};

static void yfail(struct yparser *p, int no, const char *why)
{
	if (!p->err)
		p->err = xasprintf("line %d: %s", no, why);
}

/* Cuts a comment (" #" or a leading "#" outside quotes) and trailing blanks, in place. */
static void cut_comment(char *s)
{
	char q = 0;
	for (char *c = s; *c; c++) {
		if (q) {
			if (*c == q)
				q = 0;
			continue;
		}
		if ((*c == '"' || *c == '\'') && (c == s || c[-1] == ' ' || c[-1] == ':' || c[-1] == '-' ||
						  c[-1] == '[' || c[-1] == '{' || c[-1] == ','))
			q = *c;
		else if (*c == '#' && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			break;
		}
	}
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static char *yquoted(struct yparser *p, int no, const char *s, const char **end)
{
	struct strbuf sb = {0};
	char q = *s++;
	for (; *s; s++) {
		if (*s == q) {
			if (q == '\'' && s[1] == '\'') {
				sb_putc(&sb, '\'');
				s++;
				continue;
			}
			*end = s + 1;
			return sb_steal(&sb);
		}
		if (q == '"' && *s == '\\' && s[1]) {
			s++;
			switch (*s) {
			case 'n': sb_putc(&sb, '\n'); break;
			case 't': sb_putc(&sb, '\t'); break;
			case 'r': sb_putc(&sb, '\r'); break;
			case '0': sb_putc(&sb, '\0'); break;
			default: sb_putc(&sb, *s); break;
			}
			continue;
		}
		sb_putc(&sb, *s);
	}
	sb_free(&sb);
	yfail(p, no, "unterminated quoted string");
	return NULL;
}

static bool plain_number(const char *s, double *out)
{
	char *end;
	if (!*s || !(isdigit((unsigned char)*s) || ((*s == '-' || *s == '+') && isdigit((unsigned char)s[1]))))
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return !*end && !errno;
}

static cJSON *yscalar(struct yparser *p, int no, const char *s)
{
	double d;
	if (*s == '"' || *s == '\'') {
		const char *end = NULL;
		char *v = yquoted(p, no, s, &end);
		if (!v)
			return NULL;
		if (*end) {
			free(v);
			yfail(p, no, "text after a quoted string");
			return NULL;
		}
		cJSON *j = cJSON_CreateString(v);
		free(v);
		return j;
	}
	if (*s == '[' || *s == '{') {
		cJSON *j = cJSON_Parse(s);
		if (!j)
			yfail(p, no, "a flow collection sluice reads only in JSON form ([\"a\", \"b\"], {\"k\": \"v\"})");
		return j;
	}
	if (*s == '|' || *s == '>' || *s == '&' || *s == '*' || *s == '!') {
		yfail(p, no, "anchors, tags and this kind of block scalar are not supported");
		return NULL;
	}
	if (!strcmp(s, "null") || !strcmp(s, "~") || !*s)
		return cJSON_CreateNull();
	if (!strcmp(s, "true") || !strcmp(s, "false"))
		return cJSON_CreateBool(s[0] == 't');
	if (plain_number(s, &d))
		return cJSON_CreateNumber(d);
	return cJSON_CreateString(s);
}

/* The block scalar ("|", "|-", ">") whose lines follow line i, deeper than indent. */
static cJSON *yblock(struct yparser *p, const char *head, int indent)
{
	struct strbuf sb = {0};
	bool fold = head[0] == '>', strip = head[1] == '-';
	int base = -1;
	while (p->i < p->n && p->v[p->i].indent > indent) {
		struct yline *l = &p->v[p->i++];
		if (base < 0)
			base = l->indent;
		if (sb.len)
			sb_putc(&sb, fold ? ' ' : '\n');
		for (int k = base; k < l->indent; k++)
			sb_putc(&sb, ' ');
		sb_puts(&sb, l->text);
	}
	if (!strip && sb.len)
		sb_putc(&sb, '\n');
	cJSON *j = cJSON_CreateString(sb_str(&sb));
	sb_free(&sb);
	return j;
}

static cJSON *ynode(struct yparser *p, int indent, int depth);

/* Where the ':' of "key: value" / "key:" is, or NULL when the text is no mapping entry. */
static char *key_colon(char *s)
{
	char q = 0;
	if (*s == '"' || *s == '\'') {
		q = *s;
		char *c = strchr(s + 1, q);
		if (!c)
			return NULL;
		return c[1] == ':' && (c[2] == ' ' || !c[2]) ? c + 1 : NULL;
	}
	for (char *c = s; *c; c++)
		if (*c == ':' && (c[1] == ' ' || !c[1]))
			return c;
	return NULL;
}

static bool is_item(const char *t)
{
	return t[0] == '-' && (t[1] == ' ' || !t[1]);
}

/* The value after "key:" or "-": inline text, or the lines below. */
static cJSON *yvalue(struct yparser *p, const char *text, int no, int indent, int depth, bool in_map)
{
	if (*text == '|' || *text == '>') {
		if (!strcmp(text, "|") || !strcmp(text, "|-") || !strcmp(text, ">") || !strcmp(text, ">-"))
			return yblock(p, text, indent);
	}
	if (*text)
		return yscalar(p, no, text);
	if (p->i < p->n && p->v[p->i].indent > indent)
		return ynode(p, p->v[p->i].indent, depth + 1);
	if (in_map && p->i < p->n && p->v[p->i].indent == indent && is_item(p->v[p->i].text))
		return ynode(p, indent, depth + 1); /* "key:\n- a\n- b" */
	return cJSON_CreateNull();
}

static cJSON *yseq(struct yparser *p, int indent, int depth)
{
	cJSON *arr = cJSON_CreateArray();
	while (!p->err && p->i < p->n && p->v[p->i].indent == indent && is_item(p->v[p->i].text)) {
		struct yline *l = &p->v[p->i];
		char *rest = l->text + 1;
		int off = 1;
		while (*rest == ' ') {
			rest++;
			off++;
		}
		cJSON *item;
		if (*rest && (key_colon(rest) || is_item(rest))) {
			/* "- key: v" starts a mapping (or list) whose other lines align with key. */
			l->text = rest;
			l->indent += off;
			item = ynode(p, l->indent, depth + 1);
		} else {
			p->i++;
			item = yvalue(p, rest, l->no, indent, depth, false);
		}
		if (!item)
			break;
		cJSON_AddItemToArray(arr, item);
	}
	return arr;
}

static cJSON *ymap(struct yparser *p, int indent, int depth)
{
	cJSON *obj = cJSON_CreateObject();
	while (!p->err && p->i < p->n && p->v[p->i].indent == indent) {
		struct yline *l = &p->v[p->i];
		char *colon = key_colon(l->text);
		if (!colon || is_item(l->text)) {
			yfail(p, l->no, "expected \"key: value\" at this indentation");
			break;
		}
		char *key;
		if (l->text[0] == '"' || l->text[0] == '\'') {
			const char *end;
			key = yquoted(p, l->no, l->text, &end);
			if (!key)
				break;
		} else {
			key = xstrndup(l->text, (size_t)(colon - l->text));
		}
		char *v = colon + 1;
		while (*v == ' ')
			v++;
		p->i++;
		cJSON *val = yvalue(p, v, l->no, indent, depth, true);
		if (!val) {
			free(key);
			break;
		}
		if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
			yfail(p, l->no, "a key given twice");
			cJSON_Delete(val);
			free(key);
			break;
		}
		cJSON_AddItemToObject(obj, key, val);
		free(key);
	}
	return obj;
}

static cJSON *ynode(struct yparser *p, int indent, int depth)
{
	if (depth > 64) {
		yfail(p, p->i < p->n ? p->v[p->i].no : 0, "nested more than 64 levels deep");
		return NULL;
	}
	struct yline *l = &p->v[p->i];
	if (is_item(l->text))
		return yseq(p, indent, depth);
	if (key_colon(l->text))
		return ymap(p, indent, depth);
	p->i++;
	return yscalar(p, l->no, l->text);
}

cJSON *k8s_yaml_parse(const char *text, char **err)
{
	const char *s = text;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '{' || *s == '[') {
		cJSON *j = cJSON_Parse(s);
		if (!j)
			*err = xstrdup("not valid JSON");
		return j;
	}
	char *copy = xstrdup(text);
	struct yparser p = {0};
	int no = 0;
	for (char *line = copy, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		no++;
		int ind = 0;
		while (line[ind] == ' ')
			ind++;
		if (line[ind] == '\t') {
			yfail(&p, no, "a tab in the indentation");
			break;
		}
		cut_comment(line + ind);
		if (!line[ind] || !strcmp(line + ind, "---") || !strcmp(line + ind, "..."))
			continue;
		p.v = xrealloc(p.v, (p.n + 1) * sizeof(*p.v));
		p.v[p.n++] = (struct yline){.indent = ind, .no = no, .text = line + ind};
	}
	cJSON *root = NULL;
	if (!p.err && p.n) {
		root = ynode(&p, p.v[0].indent, 0);
		if (!p.err && p.i < p.n)
			yfail(&p, p.v[p.i].no, "unexpected indentation");
	} else if (!p.err) {
		root = cJSON_CreateObject();
	}
	if (p.err) {
		cJSON_Delete(root);
		root = NULL;
		*err = p.err;
	}
	free(p.v);
	free(copy);
	return root;
}

/* ---- credentials ---- */

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decodes base64 (whitespace skipped); NULL when it is not base64. */
static char *b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *out = xmalloc(n * 3 / 4 + 4);
	unsigned acc = 0;
	int bits = 0;
	size_t k = 0;
	for (; *s; s++) {
		if (isspace((unsigned char)*s))
			continue;
		if (*s == '=')
			break;
		int v = b64_value((unsigned char)*s);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[k] = '\0';
	*len = k;
	return out;
}

void k8s_auth_free(struct k8s_auth *a)
{
	if (a->token)
		explicit_bzero(a->token, strlen(a->token));
	if (a->key_data)
		explicit_bzero(a->key_data, a->key_len);
	free(a->server);
	free(a->token);
	free(a->token_file);
	free(a->ca_file);
	free(a->ca_data);
	free(a->cert_file);
	free(a->key_file);
	free(a->cert_data);
	free(a->key_data);
	free(a->namespace);
	free(a->source);
	memset(a, 0, sizeof(*a));
}

/* The entry of list (clusters, users, contexts) named name: its inner object (key). */
static const cJSON *named(const cJSON *root, const char *list, const char *name, const char *key)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, list), *e;
	cJSON_ArrayForEach(e, l) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
		if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
			return cJSON_GetObjectItemCaseSensitive(e, key);
	}
	return NULL;
}

static const char *str_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

/* A file named in a kubeconfig: relative to the kubeconfig's folder. */
static char *kc_path(const char *kubeconfig, const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	const char *slash = strrchr(kubeconfig, '/');
	if (!slash)
		return xstrdup(p);
	return xasprintf("%.*s/%s", (int)(slash - kubeconfig), kubeconfig, p);
}

/* Sets *data from field NAME-data (base64) or *file from NAME (a path). */
static int kc_pem(const cJSON *o, const char *name, const char *kubeconfig, char **data, size_t *len, char **file,
		  char **err)
{
	char key[64];
	snprintf(key, sizeof(key), "%s-data", name);
	const char *d = str_field(o, key), *f = str_field(o, name);
	if (d) {
		if (!(*data = b64_decode(d, len))) {
			*err = xasprintf("%s is not base64", key);
			return -EINVAL;
		}
	} else if (f) {
		*file = kc_path(kubeconfig, f);
		if (access(*file, R_OK) < 0) {
			*err = xasprintf("%s %s: %s", name, *file, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int kc_fill(struct k8s_auth *a, const cJSON *root, const char *path, const char *context, char **err)
{
	const char *cur = context && *context ? context : str_field(root, "current-context");
	if (!cur) {
		*err = xstrdup("no context: the file has no current-context (set [k8s] context)");
		return -EINVAL;
	}
	const cJSON *ctx = named(root, "contexts", cur, "context");
	if (!cJSON_IsObject(ctx)) {
		*err = xasprintf("no context named '%s'", cur);
		return -EINVAL;
	}
	const char *cname = str_field(ctx, "cluster"), *uname = str_field(ctx, "user");
	const cJSON *cl = cname ? named(root, "clusters", cname, "cluster") : NULL;
	if (!cJSON_IsObject(cl)) {
		*err = xasprintf("context '%s': no cluster named '%s'", cur, cname ? cname : "(none)");
		return -EINVAL;
	}
	const char *server = str_field(cl, "server");
	if (!server || (strncmp(server, "https://", 8) && strncmp(server, "http://", 7))) {
		*err = xasprintf("cluster '%s': server must be an https:// (or http://) URL", cname);
		return -EINVAL;
	}
	a->server = xstrdup(server);
	size_t n = strlen(a->server);
	while (n > 8 && a->server[n - 1] == '/')
		a->server[--n] = '\0';
	a->insecure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cl, "insecure-skip-tls-verify"));
	int rc = kc_pem(cl, "certificate-authority", path, &a->ca_data, &a->ca_len, &a->ca_file, err);
	if (rc < 0)
		return rc;
	if (str_field(ctx, "namespace"))
		a->namespace = xstrdup(str_field(ctx, "namespace"));
	const cJSON *u = uname ? named(root, "users", uname, "user") : NULL;
	if (uname && !cJSON_IsObject(u)) {
		*err = xasprintf("context '%s': no user named '%s'", cur, uname);
		return -EINVAL;
	}
	if (!u)
		return 0;
	if (str_field(u, "token"))
		a->token = xstrdup(str_field(u, "token"));
	else if (str_field(u, "tokenFile"))
		a->token_file = kc_path(path, str_field(u, "tokenFile"));
	if ((rc = kc_pem(u, "client-certificate", path, &a->cert_data, &a->cert_len, &a->cert_file, err)) < 0 ||
	    (rc = kc_pem(u, "client-key", path, &a->key_data, &a->key_len, &a->key_file, err)) < 0)
		return rc;
	if (!a->token && !a->token_file && !a->cert_data && !a->cert_file) {
		const char *why = cJSON_GetObjectItemCaseSensitive(u, "exec") ? "an exec credential plugin"
				  : cJSON_GetObjectItemCaseSensitive(u, "auth-provider") ? "an auth-provider"
				  : str_field(u, "username") ? "a user name and password"
				  : NULL;
		if (why) {
			*err = xasprintf("user '%s' authenticates with %s, which sluice does not run: give it a token "
					 "(token, tokenFile) or a client certificate", uname, why);
			return -ENOTSUP;
		}
	}
	if ((a->cert_data || a->cert_file) != (a->key_data || a->key_file)) {
		*err = xasprintf("user '%s': a client certificate needs its key (client-key or client-key-data)", uname);
		return -EINVAL;
	}
	return 0;
}

int k8s_auth_kubeconfig(struct k8s_auth *a, const char *path, const char *context, char **err)
{
	char *text = NULL, *why = NULL;
	int rc = read_file(path, 4 << 20, &text, NULL);
	memset(a, 0, sizeof(*a));
	if (rc < 0) {
		*err = xasprintf("kubeconfig %s: %s", path, strerror(-rc));
		return rc;
	}
	cJSON *root = k8s_yaml_parse(text, &why);
	explicit_bzero(text, strlen(text));
	free(text);
	if (!root || !cJSON_IsObject(root)) {
		*err = xasprintf("kubeconfig %s: %s", path, why ? why : "not a mapping");
		free(why);
		cJSON_Delete(root);
		return -EINVAL;
	}
	rc = kc_fill(a, root, path, context, &why);
	cJSON_Delete(root);
	if (rc < 0) {
		*err = xasprintf("kubeconfig %s: %s", path, why);
		free(why);
		k8s_auth_free(a);
		return rc;
	}
	a->source = xasprintf("kubeconfig %s", path);
	return 0;
}

int k8s_auth_incluster(struct k8s_auth *a, const char *dir, char **err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	memset(a, 0, sizeof(*a));
	if (!host || !*host) {
		*err = xstrdup("not in a cluster (KUBERNETES_SERVICE_HOST is not set)");
		return -ENOENT;
	}
	bool v6 = strchr(host, ':') != NULL;
	a->server = xasprintf("https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port && *port ? port : "443");
	a->token_file = xasprintf("%s/token", dir);
	char *ca = xasprintf("%s/ca.crt", dir), *nsf = xasprintf("%s/namespace", dir), *ns = NULL;
	if (access(ca, R_OK) == 0)
		a->ca_file = ca;
	else
		free(ca);
	if (read_file(nsf, 4096, &ns, NULL) == 0) {
		ns[strcspn(ns, " \r\n")] = '\0';
		a->namespace = ns;
	}
	free(nsf);
	if (access(a->token_file, R_OK) < 0) {
		*err = xasprintf("in-cluster: cannot read the service account token %s: %s", a->token_file, strerror(errno));
		k8s_auth_free(a);
		return -EACCES;
	}
	a->source = xasprintf("the in-cluster service account (%s)", dir);
	return 0;
}

/* The bearer token to send now (token files are re-read each minute), or NULL. */
static const char *auth_token(struct k8s_auth *a)
{
	if (a->token_file && (!a->token || mono_usec() - a->token_read > 60 * USEC_PER_SEC)) {
		char *t = NULL;
		if (read_file(a->token_file, 64 * 1024, &t, NULL) == 0) {
			t[strcspn(t, "\r\n")] = '\0';
			if (a->token) {
				explicit_bzero(a->token, strlen(a->token));
				free(a->token);
			}
			a->token = t;
		}
		a->token_read = mono_usec();
	}
	return a->token;
}

/* ---- the HTTP client ---- */

#define MAX_ATTEMPTS 6
#define RETRY_MIN (250 * 1000LL)
#define RETRY_MAX (30 * USEC_PER_SEC)

struct k8s_req {
	struct k8s_client *c;
	CURL *easy;
	struct curl_slist *headers;
	char *method, *url, *body;
	unsigned flags;
	k8s_done_cb done;
	k8s_data_cb data;
	void *arg;
	struct strbuf resp;
	int attempts;
	bool running, dead, reaped;
	usec_t retry_after;       /* from a 429's Retry-After, 0 = none */
	struct ev_timer *timer;   /* waiting to retry */
	struct k8s_req *prev, *next; /* in c->queue (waiting for a token) or c->active */
};

struct k8s_client {
	struct evloop *loop;
	struct k8s_auth *auth;
	CURLM *multi;
	struct ev_timer *curl_timer, *bucket_timer;
	double qps, tokens;
	int burst;
	usec_t refilled;
	struct k8s_req *queue, *queue_tail, *active, *waiting;
	struct k8s_req *reap;     /* cancelled inside a libcurl callback: removed after it returns */
	unsigned long sent;
	int in_curl;
};

static void list_del(struct k8s_req **head, struct k8s_req **tail, struct k8s_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else if (tail)
		*tail = r->prev;
	r->prev = r->next = NULL;
}

static void list_push(struct k8s_req **head, struct k8s_req *r)
{
	r->prev = NULL;
	r->next = *head;
	if (*head)
		(*head)->prev = r;
	*head = r;
}

static void req_free(struct k8s_req *r)
{
	if (r->timer)
		evloop_timer_cancel(r->c->loop, r->timer);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	sb_free(&r->resp);
	free(r->method);
	free(r->url);
	free(r->body);
	free(r);
}

static void bucket_run(struct k8s_client *c);

static void on_bucket(struct evloop *loop, void *arg)
{
	struct k8s_client *c = arg;
	c->bucket_timer = NULL;
	bucket_run(c);
	(void)loop;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct k8s_req *r = arg;
	size_t n = size * nmemb;
	long status = 0;
	if (r->dead)
		return 0; /* aborts the transfer */
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (r->data && status >= 200 && status < 300) {
		r->data(r->arg, ptr, n);
		return r->dead ? 0 : n;
	}
	if (r->resp.len < (64u << 20))
		sb_add(&r->resp, ptr, n);
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct k8s_req *r = arg;
	size_t n = size * nmemb;
	if (n > 12 && !strncasecmp(ptr, "Retry-After:", 12)) {
		long s = strtol(ptr + 12, NULL, 10);
		if (s > 0 && s < 600)
			r->retry_after = s * USEC_PER_SEC;
	}
	return n;
}

static void req_setup(struct k8s_req *r)
{
	struct k8s_client *c = r->c;
	struct k8s_auth *a = c->auth;
	CURL *e = r->easy = curl_easy_init();
	if (!e)
		fatalx("curl_easy_init failed");
	curl_slist_free_all(r->headers);
	r->headers = curl_slist_append(NULL, "Accept: application/json");
	if (r->body)
		r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
	const char *tok = auth_token(a);
	if (tok) {
		char *h = xasprintf("Authorization: Bearer %s", tok);
		r->headers = curl_slist_append(r->headers, h);
		explicit_bzero(h, strlen(h));
		free(h);
	}
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	if (r->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "sluice-k8s/1");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (!(r->flags & K8S_STREAM)) {
		/* A stalled answer fails (and is retried); a long log that keeps coming does not. */
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
	}
	if (a->ca_data) {
		struct curl_blob b = {.data = a->ca_data, .len = a->ca_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	} else if (a->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, a->ca_file);
	}
	if (a->cert_data) {
		struct curl_blob b = {.data = a->cert_data, .len = a->cert_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (a->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, a->cert_file);
	}
	if (a->key_data) {
		struct curl_blob b = {.data = a->key_data, .len = a->key_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (a->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, a->key_file);
	}
	if (a->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

static void req_send(struct k8s_req *r)
{
	struct k8s_client *c = r->c;
	req_setup(r);
	sb_reset(&r->resp);
	r->retry_after = 0;
	r->running = true;
	r->attempts++;
	c->sent++;
	list_push(&c->active, r);
	CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
	if (mc != CURLM_OK)
		log_warnx("k8s: curl_multi_add_handle: %s", curl_multi_strerror(mc));
}

/* Sends what the bucket allows; when it is empty, comes back when the next token is due. */
static void bucket_run(struct k8s_client *c)
{
	usec_t now = mono_usec();
	if (c->in_curl) {
		/* libcurl refuses curl_multi_add_handle from inside its callbacks: send from a timer. */
		if (c->queue && !c->bucket_timer)
			c->bucket_timer = evloop_timer_in(c->loop, 0, on_bucket, c);
		return;
	}
	c->tokens += (double)(now - c->refilled) / 1e6 * c->qps;
	if (c->tokens > c->burst)
		c->tokens = c->burst;
	c->refilled = now;
	while (c->queue && c->tokens >= 1) {
		struct k8s_req *r = c->queue;
		list_del(&c->queue, &c->queue_tail, r);
		c->tokens -= 1;
		req_send(r);
	}
	if (c->queue && !c->bucket_timer) {
		usec_t wait = (usec_t)ceil((1 - c->tokens) / c->qps * 1e6);
		c->bucket_timer = evloop_timer_in(c->loop, wait > 0 ? wait : 1000, on_bucket, c);
	}
}

static int prio(const struct k8s_req *r)
{
	return (r->flags & K8S_URGENT) ? 0 : (r->flags & K8S_EARLY) ? 1 : 2;
}

/* Queues r after every request of its class or a more urgent one (FIFO within a class). */
static void enqueue(struct k8s_req *r)
{
	struct k8s_client *c = r->c;
	struct k8s_req *after = c->queue_tail;
	while (after && prio(after) > prio(r))
		after = after->prev;
	r->prev = after;
	r->next = after ? after->next : c->queue;
	if (r->next)
		r->next->prev = r;
	else
		c->queue_tail = r;
	if (after)
		after->next = r;
	else
		c->queue = r;
	bucket_run(c);
}

static void on_retry(struct evloop *loop, void *arg)
{
	struct k8s_req *r = arg;
	r->timer = NULL;
	list_del(&r->c->waiting, NULL, r);
	enqueue(r);
	(void)loop;
}

/* Whether a finished attempt is tried again (429, 5xx, a transport error) and when. */
static bool should_retry(struct k8s_req *r, long status, CURLcode cc, usec_t *delay)
{
	if (r->flags & K8S_STREAM || r->attempts >= MAX_ATTEMPTS)
		return false;
	if (!(status == 429 || status >= 500 || (cc != CURLE_OK && status == 0)))
		return false;
	/* What trying again cannot change: a certificate refused, a bad URL or credential file. */
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CERTPROBLEM ||
	    cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_SSL_CIPHER ||
	    cc == CURLE_SSL_ENGINE_NOTFOUND || cc == CURLE_SSL_CRL_BADFILE)
		return false;
	usec_t d = RETRY_MIN << (r->attempts - 1);
	if (d > RETRY_MAX)
		d = RETRY_MAX;
	if (r->retry_after > d)
		d = r->retry_after;
	*delay = d;
	return true;
}

static void finish_one(struct k8s_client *c, CURL *easy, CURLcode cc)
{
	struct k8s_req *r = NULL;
	long status = 0;
	usec_t delay;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(c->multi, easy);
	curl_easy_cleanup(easy);
	r->easy = NULL;
	r->running = false;
	list_del(r->reaped ? &c->reap : &c->active, NULL, r);
	if (r->dead) {
		req_free(r);
		return;
	}
	if (should_retry(r, status, cc, &delay)) {
		log_debug("k8s: %s %s: %s; again in %lld ms", r->method, r->url,
			  status ? "HTTP error" : curl_easy_strerror(cc), (long long)(delay / 1000));
		list_push(&c->waiting, r);
		r->timer = evloop_timer_in(c->loop, delay, on_retry, r);
		return;
	}
	const char *cerr = cc == CURLE_OK ? NULL : curl_easy_strerror(cc);
	r->dead = true; /* a cancel from inside done is a no-op */
	r->done(r->arg, r, cc == CURLE_OK ? status : 0, sb_str(&r->resp), r->resp.len, cerr);
	req_free(r);
}

static void check_done(struct k8s_client *c)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			finish_one(c, m->easy_handle, m->data.result);
}

/* Removes the requests cancelled while libcurl was calling back. */
static void reap(struct k8s_client *c)
{
	while (c->reap) {
		struct k8s_req *r = c->reap;
		list_del(&c->reap, NULL, r);
		curl_multi_remove_handle(c->multi, r->easy);
		req_free(r);
	}
}

static void on_curl_fd(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct k8s_client *c = arg;
	int flags = 0, running;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	c->in_curl++;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	c->in_curl--;
	reap(c);
	check_done(c);
	(void)loop;
}

static void on_curl_timer(struct evloop *loop, void *arg)
{
	struct k8s_client *c = arg;
	int running;
	c->curl_timer = NULL;
	c->in_curl++;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	c->in_curl--;
	reap(c);
	check_done(c);
	(void)loop;
}

static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct k8s_client *c = userp;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (socketp)
			evloop_del_fd(c->loop, s);
		return 0;
	}
	uint32_t ev = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= EPOLLOUT;
	if (socketp) {
		evloop_mod_fd(c->loop, s, ev);
	} else {
		int rc = evloop_add_fd(c->loop, s, ev, on_curl_fd, c);
		if (rc == -EEXIST)
			rc = evloop_mod_fd(c->loop, s, ev);
		if (rc < 0)
			log_warnx("k8s: cannot watch a connection: %s", strerror(-rc));
		curl_multi_assign(c->multi, s, c);
	}
	return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct k8s_client *c = userp;
	(void)multi;
	if (c->curl_timer) {
		evloop_timer_cancel(c->loop, c->curl_timer);
		c->curl_timer = NULL;
	}
	if (timeout_ms >= 0)
		c->curl_timer = evloop_timer_in(c->loop, (usec_t)timeout_ms * 1000, on_curl_timer, c);
	return 0;
}

struct k8s_client *k8s_client_new(struct evloop *loop, struct k8s_auth *auth, double qps, int burst, char **err)
{
	static bool global;
	if (!global) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			*err = xstrdup("curl_global_init failed");
			return NULL;
		}
		global = true;
	}
	struct k8s_client *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->auth = auth;
	c->qps = qps > 0 ? qps : 20;
	c->burst = burst > 0 ? burst : 1;
	c->tokens = c->burst;
	c->refilled = mono_usec();
	if (!(c->multi = curl_multi_init())) {
		free(c);
		*err = xstrdup("curl_multi_init failed");
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 64L);
	return c;
}

void k8s_client_free(struct k8s_client *c)
{
	if (!c)
		return;
	struct k8s_req **lists[] = {&c->queue, &c->active, &c->waiting, &c->reap};
	for (size_t i = 0; i < 4; i++) {
		while (*lists[i]) {
			struct k8s_req *r = *lists[i];
			*lists[i] = r->next;
			if (r->easy)
				curl_multi_remove_handle(c->multi, r->easy);
			req_free(r);
		}
	}
	if (c->curl_timer)
		evloop_timer_cancel(c->loop, c->curl_timer);
	if (c->bucket_timer)
		evloop_timer_cancel(c->loop, c->bucket_timer);
	curl_multi_cleanup(c->multi);
	free(c);
}

struct k8s_req *k8s_request(struct k8s_client *c, const char *method, const char *path, const char *body,
			    unsigned flags, k8s_done_cb done, k8s_data_cb data, void *arg)
{
	struct k8s_req *r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->method = xstrdup(method);
	r->url = xasprintf("%s%s", c->auth->server, path);
	r->body = body ? xstrdup(body) : NULL;
	r->flags = flags;
	r->done = done;
	r->data = data;
	r->arg = arg;
	enqueue(r);
	return r;
}

void k8s_req_cancel(struct k8s_req *r)
{
	if (!r || r->dead)
		return;
	struct k8s_client *c = r->c;
	r->dead = true;
	if (r->running) {
		if (c->in_curl) { /* removed by reap() once libcurl has returned */
			list_del(&c->active, NULL, r);
			list_push(&c->reap, r);
			r->reaped = true;
			return;
		}
		curl_multi_remove_handle(c->multi, r->easy);
		list_del(&c->active, NULL, r);
	} else if (r->timer) {
		list_del(&c->waiting, NULL, r);
	} else {
		list_del(&c->queue, &c->queue_tail, r);
	}
	req_free(r);
}

void k8s_url_escape(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
			sb_putc(sb, (char)ch);
		else
			sb_printf(sb, "%%%02X", ch);
	}
}
