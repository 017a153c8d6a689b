/* Authentication for the web server and the CLI: yescrypt password hashes (libcrypt), random API
 * tokens stored as SHA-256 hashes, and roles. admin > op > viewer: viewers read, ops also change
 * runs, DAGs and pools, admins also manage users. */
#ifndef SLUICE_AUTH_H
#define SLUICE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "orchestrator/store.h"

enum role { ROLE_NONE, ROLE_VIEWER, ROLE_OP, ROLE_ADMIN };

/* "admin" / "op" / "viewer" -> role, or -1. */
int auth_role_parse(const char *s);
const char *auth_role_name(enum role r);

/* yescrypt hash of password (malloc'd), or NULL with *err set. */
char *auth_hash_password(const char *password, char **err);
/* Whether password matches hash (constant-time compare of the recomputed hash). */
bool auth_check_password(const char *password, const char *hash);
/* A new random password of n letters and digits (malloc'd). */
char *auth_new_password(size_t n);
/* A new random API token "slc_" + 40 hex digits (malloc'd) and its storage hash. */
char *auth_new_token(void);
void auth_token_hash(const char *token, char out[65]);

/* Checks an Authorization header ("Basic ...", "Bearer ...") against the store; returns the
 * caller's role or ROLE_NONE. Successful checks are cached for a minute (yescrypt is slow on
 * purpose); thread-safe. */
enum role auth_check_header(struct store *st, const char *authorization);

/* auth_check_header() with a back-off after failed logins, per user name and per client address
 * (client: its IP address as text; loopback clients are not throttled by address). When the
 * user or the address is in its back-off, returns ROLE_NONE at once with *retry_after > 0 (for
 * a 429 and its Retry-After); else *retry_after = 0. Thread-safe. */
enum role auth_check(struct store *st, const char *authorization, const char *client, usec_t *retry_after);

/* auth_check() of a user name and password given as such (the web UI's login form). */
enum role auth_login(struct store *st, const char *user, const char *password, const char *client, usec_t *retry_after);

/* Who an Authorization header names, for the audit log: the user of Basic credentials, or
 * "token:NAME" for an API token (malloc'd; "anonymous" when there is none). Does not check
 * the credentials: call it once auth_check() has. */
char *auth_caller(struct store *st, const char *authorization);

/* Creates the "admin" user with a random password when there are no users yet. Returns 1 and
 * the password (malloc'd) in *password when it did, 0 when users exist, negative on error. */
int auth_ensure_admin(struct store *st, char **password);

#endif
