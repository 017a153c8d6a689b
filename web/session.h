/* Web UI sessions (web/session.c): the cookie a login sets and the CSRF token derived from it. */
#ifndef SLUICE_WEB_SESSION_H
#define SLUICE_WEB_SESSION_H

#include "web/auth.h"

#define SESSION_COOKIE "sluice_session"
#define SESSION_CSRF_LEN 32

/* The role of the session whose cookie value is token (ROLE_NONE when it is not a good
 * session), with its user (malloc'd, NULL on ROLE_NONE) and expiry. */
enum role session_check(struct store *st, const char *token, char **user, usec_t *expires);
/* The CSRF token of the session token: what X-CSRF-Token must hold. */
void session_csrf(const char *token, char out[SESSION_CSRF_LEN + 1]);

#endif
