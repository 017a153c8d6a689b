#include "web/origin.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Splits "name:port", "[v6]:port" or "name" into name (lower case, brackets dropped) and port
 * (-1 when absent). False when it does not parse. */
static bool split_host(const char *s, char *name, size_t n, int *port)
{
	const char *colon, *end;
	*port = -1;
	if (*s == '[') {
		end = strchr(s, ']');
		if (!end)
			return false;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			return false;
		s++;
	} else {
		colon = strrchr(s, ':');
		end = colon ? colon : s + strlen(s);
	}
	size_t len = (size_t)(end - s);
	if (len == 0 || len >= n)
		return false;
	for (size_t i = 0; i < len; i++)
		name[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
	name[len] = '\0';
	if (colon) {
		char *e;
		long p = strtol(colon + 1, &e, 10);
		if (*e || !colon[1] || p < 1 || p > 65535)
			return false;
		*port = (int)p;
	}
	return true;
}

static bool is_ip(const char *name)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static bool in_list(const char *name, const char *list)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',' && *e != ' ')
			e++;
		if ((size_t)(e - p) == n && !strncasecmp(p, name, n))
			return true;
		p = e;
	}
	return false;
}

bool origin_allowed(const char *host, const char *origin, int port, const char *allowed, const char **why)
{
	char name[256];
	int hport;
	if (!host || !split_host(host, name, sizeof(name), &hport)) {
		*why = "the request has no valid Host header";
		return false;
	}
	if (!is_ip(name) && strcmp(name, "localhost") && !in_list(name, allowed)) {
		*why = "the Host is not this server's address (set webserver.allowed_hosts for its names)";
		return false;
	}
	if ((hport < 0 ? 80 : hport) != port) {
		*why = "the Host names another port";
		return false;
	}
	if (!origin)
		return true;
	const char *rest = !strncmp(origin, "http://", 7) ? origin + 7 : !strncmp(origin, "https://", 8) ? origin + 8 : NULL;
	char oname[256];
	int oport;
	if (!rest || !split_host(rest, oname, sizeof(oname), &oport) || strcmp(oname, name) ||
	    (oport < 0 ? (rest == origin + 8 ? 443 : 80) : oport) != (hport < 0 ? 80 : hport)) {
		*why = "the request comes from another site (its Origin is not this server)";
		return false;
	}
	return true;
}
