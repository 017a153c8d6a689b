/* Connection limits of the web server: how many connections are open in all and per client
 * address. libmicrohttpd tells about each connection opening and closing; a request that arrives
 * while its connection is over a limit gets a 503 with Retry-After instead of being served, and
 * the server's own hard limit (a margin above) keeps file descriptors for those answers. 127.0.0.1
 * and ::1, where local tools and the UI's own requests come from, have no per-address limit.
 * Thread-safe. */
#ifndef SLUICE_WEB_CONNLIMIT_H
#define SLUICE_WEB_CONNLIMIT_H

#include <stdbool.h>

struct connlimit;

struct connlimit *connlimit_new(int max_total, int max_per_address);
void connlimit_free(struct connlimit *c);
/* A connection from addr (text) opened / closed. */
void connlimit_open(struct connlimit *c, const char *addr);
void connlimit_close(struct connlimit *c, const char *addr);
/* Whether a request on a connection from addr is over a limit now; *why says which. */
bool connlimit_over(struct connlimit *c, const char *addr, const char **why);

#endif
