/* Web UI sessions: POST /auth/login trades a user name and password for a random token in a
 * cookie (HttpOnly, SameSite=Strict, Path=/, Max-Age = webserver.session_lifetime), GET
 * /auth/session says who is logged in, POST /auth/logout ends it. Only the token's SHA-256 is
 * stored. Every change a request makes on the strength of the cookie must also carry the
 * session's CSRF token in X-CSRF-Token: a value derived from the cookie, which a page of another
 * site can neither read nor guess (and SameSite=Strict already keeps the cookie from its requests).
 * Basic and bearer credentials work as before and need no CSRF token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "web/api.h"
#include "web/auth.h"
#include "web/session.h"
#include "orchestrator/config.h"
#include "orchestrator/scheduler.h"

#define DEFAULT_LIFETIME (12 * 3600 * USEC_PER_SEC)

void session_csrf(const char *token, char out[SESSION_CSRF_LEN + 1])
{
	char *k = xasprintf("sluice-csrf\n%s", token), h[65];
	sha256_hex(k, strlen(k), h);
	free(k);
	memcpy(out, h, SESSION_CSRF_LEN);
	out[SESSION_CSRF_LEN] = '\0';
}

enum role session_check(struct store *st, const char *token, char **user, usec_t *expires)
{
	char h[65], *role = NULL;
	*user = NULL;
	if (!token || strncmp(token, "sls_", 4) || strlen(token) > 100)
		return ROLE_NONE;
	auth_token_hash(token, h);
	if (store_session_get(st, h, now_usec(), user, &role, expires) < 0)
		return ROLE_NONE;
	int r = auth_role_parse(role);
	free(role);
	if (r < 0) {
		free(*user);
		*user = NULL;
		return ROLE_NONE;
	}
	return (enum role)r;
}

static cJSON *session_json(const char *user, enum role role, const char *token, usec_t expires)
{
	cJSON *o = cJSON_CreateObject();
	char csrf[SESSION_CSRF_LEN + 1] = "", ts[ISO_BUFSZ];
	if (token)
		session_csrf(token, csrf);
	cJSON_AddStringToObject(o, "username", user);
	cJSON_AddStringToObject(o, "role", auth_role_name(role));
	cJSON_AddStringToObject(o, "csrf_token", csrf);
	if (expires && expires != USEC_NONE) {
		format_iso8601(expires, ts, sizeof(ts));
		cJSON_AddStringToObject(o, "expires", ts);
	} else {
		cJSON_AddNullToObject(o, "expires");
	}
	return o;
}

struct put_call {
	const char *hash, *user;
	usec_t now, expires;
};

static int put_fn(struct store *w, void *arg)
{
	struct put_call *c = arg;
	return store_session_put(w, c->hash, c->user, c->now, c->expires);
}

static int delete_fn(struct store *w, void *arg)
{
	return store_session_delete(w, arg);
}

static usec_t lifetime(struct req *r)
{
	const struct config *cfg = api_config(r);
	return cfg && cfg->session_lifetime > 0 ? cfg->session_lifetime : DEFAULT_LIFETIME;
}

/* Checks the user name and password as a Basic login would (same cost for an unknown user, the
 * same back-off after failures); returns the role or ROLE_NONE, with *retry_after set when the
 * user or the address is in its back-off. */
static enum role check_login(struct req *r, const char *user, const char *password, usec_t *retry_after)
{
	char client[INET6_ADDRSTRLEN] = "";
	api_client_address(r, client, sizeof(client));
	return api_store(r) ? auth_login(api_store(r), user, password, client, retry_after) : ROLE_NONE;
}

static void start_session(struct req *r, const char *user, enum role role)
{
	char *token = auth_new_token(), h[65];
	memcpy(token, "sls_", 4); /* a session, not an API token */
	auth_token_hash(token, h);
	usec_t now = now_usec(), life = lifetime(r);
	struct put_call c = {h, user, now, now + life};
	int rc = sched_write(put_fn, &c);
	if (rc < 0) {
		api_write_failed(r, rc);
	} else {
		char *cookie = xasprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld", SESSION_COOKIE, token,
					 (long long)(life / USEC_PER_SEC));
		api_set_cookie(r, cookie);
		api_set_user(r, user);
		api_reply(r, 200, session_json(user, role, token, now + life));
	}
	free(token);
}

/* POST /auth/login {"username", "password"} */
static void login(struct req *r)
{
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "username");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "password");
	if (!cJSON_IsString(u) || !cJSON_IsString(p) || !*u->valuestring || strchr(u->valuestring, ':')) {
		api_problem(r, 400, "Bad Request", "the body must be a JSON object with string username and password");
		cJSON_Delete(body);
		return;
	}
	usec_t wait = 0;
	enum role role = check_login(r, u->valuestring, p->valuestring, &wait);
	if (wait > 0) {
		api_retry_after(r, (int)((wait + USEC_PER_SEC - 1) / USEC_PER_SEC));
		api_problem(r, 429, "Too Many Requests", "Too many failed logins; try again in %lld s.",
			    (long long)((wait + USEC_PER_SEC - 1) / USEC_PER_SEC));
	} else if (role == ROLE_NONE) {
		api_problem(r, 401, "Unauthorized", "Wrong user name or password.");
	} else {
		start_session(r, u->valuestring, role);
	}
	cJSON_Delete(body);
}

/* GET /auth/session: who the caller is, and the CSRF token of a cookie session. */
static void get_session(struct req *r)
{
	const char *token = api_session_token(r);
	const char *user = api_user(r);
	char *who = NULL;
	if (!user)
		user = who = api_no_auth(r) ? xstrdup("anonymous") : auth_caller(api_store(r), api_header(r, "Authorization"));
	api_reply(r, 200, session_json(user, api_role(r), token, token ? api_session_expires(r) : 0));
	free(who);
}

/* POST /auth/logout: ends the cookie's session (if any) and clears the cookie. */
static void logout(struct req *r)
{
	const char *token = api_session_token(r);
	if (token) {
		char h[65];
		auth_token_hash(token, h);
		int rc = sched_write(delete_fn, h);
		if (rc < 0) {
			api_write_failed(r, rc);
			return;
		}
	}
	api_set_cookie(r, xasprintf("%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", SESSION_COOKIE));
	api_reply_empty(r);
}

const struct route api_session_routes[] = {
	{"POST", "/auth/login", ROLE_NONE, login, "login"},
	{"GET", "/auth/session", ROLE_VIEWER, get_session, NULL},
	{"POST", "/auth/logout", ROLE_VIEWER, logout, "logout"},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
