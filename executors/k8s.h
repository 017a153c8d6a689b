/* What the `k8s` backend's two files share (internal to executors/): the credentials of a
 * cluster (kubeconfig or in-cluster), a YAML subset reader for kubeconfig files and pod
 * templates, and a rate-limited HTTP client on libcurl's multi interface driven by the daemon's
 * event loop.
 *
 * Invariants of the client:
 *  - Every request waits for a token of the bucket (qps, burst) before it is sent, retries of
 *    429/5xx included; nothing it does blocks the loop.
 *  - A request's done callback is called exactly once, unless the request is cancelled first
 *    (k8s_req_cancel), and the request is freed right after it returns.
 */
#ifndef SLUICE_EXECUTORS_K8S_H
#define SLUICE_EXECUTORS_K8S_H

#include <stdbool.h>
#include <stddef.h>

#include "base/evloop.h"
#include "base/json.h"
#include "base/util.h"

/* How to reach one API server. Strings are owned; *_data are PEM bytes (decoded). */
struct k8s_auth {
	char *server;          /* "https://host:port" (no trailing slash) */
	char *token;           /* bearer token, or NULL */
	char *token_file;      /* re-read every minute when set (service-account tokens rotate) */
	usec_t token_read;     /* monotonic time of the last read */
	char *ca_file;
	char *ca_data;
	size_t ca_len;
	char *cert_file, *key_file;
	char *cert_data, *key_data;
	size_t cert_len, key_len;
	bool insecure;         /* insecure-skip-tls-verify: only when the kubeconfig says so */
	char *namespace;       /* the context's (or the service account's) namespace, or NULL */
	char *source;          /* where it came from, for messages */
};

/* Parses the YAML subset kubeconfig files and pod templates use (block mappings and lists,
 * plain/quoted scalars, comments, flow [] {} and JSON documents) into cJSON. Returns NULL
 * with *err ("line N: why") on anything else. */
cJSON *k8s_yaml_parse(const char *text, char **err);
/* Reads a kubeconfig file (YAML or JSON) and fills *a for context (NULL/"" = current-context).
 * Returns 0 or -errno with *err. */
int k8s_auth_kubeconfig(struct k8s_auth *a, const char *path, const char *context, char **err);
/* The in-cluster service account (KUBERNETES_SERVICE_HOST/PORT, token, CA, namespace under
 * dir, normally /var/run/secrets/kubernetes.io/serviceaccount). 0 or -errno with *err. */
int k8s_auth_incluster(struct k8s_auth *a, const char *dir, char **err);
void k8s_auth_free(struct k8s_auth *a);

struct k8s_client;
struct k8s_req;

/* status is the HTTP status (0 on a transport error, with curl_err set); body is the whole
 * response for a plain request, or what a stream sent before it failed (2xx streams: ""). */
typedef void (*k8s_done_cb)(void *arg, struct k8s_req *r, long status, const char *body, size_t len,
			    const char *curl_err);
/* A 2xx stream's bytes as they come. Must not cancel requests (it runs inside libcurl). */
typedef void (*k8s_data_cb)(void *arg, const char *data, size_t n);

enum {
	K8S_STREAM = 1, /* watch or log follow: no overall time limit, never retried */
	K8S_URGENT = 2, /* goes before queued requests (deletes, lists, watches: must not wait) */
	K8S_EARLY = 4,  /* after urgent ones, before the rest (creates: the cluster starts work
	                 * sooner; logs can wait) */
};

struct k8s_client *k8s_client_new(struct evloop *loop, struct k8s_auth *auth, double qps, int burst,
				  char **err);
/* Cancels every request without calling back, frees the client (NULL is fine). */
void k8s_client_free(struct k8s_client *c);
/* Queues a request for path (under the server, e.g. "/api/v1/..."); body NULL = none. Never
 * fails: errors come through done. */
struct k8s_req *k8s_request(struct k8s_client *c, const char *method, const char *path, const char *body,
			    unsigned flags, k8s_done_cb done, k8s_data_cb data, void *arg);
/* Drops a request: its callbacks are not called any more. */
void k8s_req_cancel(struct k8s_req *r);

/* Appends s to sb percent-encoded for a query value. */
void k8s_url_escape(struct strbuf *sb, const char *s);

#endif
