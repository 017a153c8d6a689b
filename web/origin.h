/* Who may send a request that changes something: a check of the Host and Origin headers against
 * DNS rebinding and cross-site requests (CSRF). A browser tricked by another site sends that
 * site's Origin, and a rebinding attack reaches the daemon under the attacker's host name; both
 * are refused whatever the credentials, since a browser replays cached Basic credentials. */
#ifndef SLUICE_WEB_ORIGIN_H
#define SLUICE_WEB_ORIGIN_H

#include <stdbool.h>

/* Whether a request with these headers may go on. host: the Host header (NULL: none, refused);
 * origin: the Origin header (NULL: not a browser's cross-origin request). The Host's name must
 * be an IP address, "localhost" or one of allowed (a comma-separated list of names, may be NULL
 * or empty), and its port, when given, this server's port (80 when none is given). An Origin
 * must name the same host and port as the Host ("null" and other schemes are foreign). On false,
 * *why says why (static text). */
bool origin_allowed(const char *host, const char *origin, int port, const char *allowed, const char **why);

#endif
