#include "orchestrator/connections.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/json.h"
#include "base/util.h"
#include "orchestrator/secrets.h"

/* URIs --------------------------------------------------------------------------------------- */

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+n) ('+' stays '+', as in Airflow's unquote). NULL for an empty part. */
static char *decode(const char *s, size_t n)
{
	if (n == 0)
		return NULL;
	char *out = xmalloc(n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
		    hexval((unsigned char)s[i + 2]) >= 0) {
			*o++ = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static void encode(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c))
			sb_putc(sb, (char)c);
		else
			sb_printf(sb, "%%%02X", c);
	}
}

/* The query string as extra: "__extra__" is the JSON object itself, other keys its fields. */
static int parse_query(const char *q, char **extra, char **err)
{
	cJSON *o = cJSON_CreateObject();
	int rc = 0;
	while (*q && rc == 0) {
		size_t n = strcspn(q, "&"), k = strcspn(q, "=");
		if (k > n)
			k = n;
		char *key = decode(q, k), *val = k < n ? decode(q + k + 1, n - k - 1) : NULL;
		if (key && !strcmp(key, "__extra__")) {
			cJSON *whole = val ? cJSON_Parse(val) : NULL;
			if (!cJSON_IsObject(whole)) {
				*err = xstrdup("__extra__ must be a JSON object");
				rc = -EINVAL;
			}
			cJSON_Delete(o);
			o = whole ? whole : cJSON_CreateObject();
		} else if (key) {
			cJSON_AddStringToObject(o, key, val ? val : "");
		}
		free(key);
		free(val);
		q += n;
		if (*q == '&')
			q++;
	}
	*extra = rc == 0 && cJSON_GetArraySize(o) > 0 ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return rc;
}

/* The authority "login:password@host:port". */
static int parse_authority(const char *a, size_t n, struct conn_row *c, char **err)
{
	const char *at = memrchr(a, '@', n), *host = a;
	if (at) {
		const char *colon = memchr(a, ':', (size_t)(at - a));
		c->login = decode(a, (size_t)((colon ? colon : at) - a));
		if (colon)
			c->password = decode(colon + 1, (size_t)(at - colon - 1));
		host = at + 1;
	}
	size_t hn = n - (size_t)(host - a);
	const char *colon = hn && host[0] == '[' ? memchr(host, ']', hn) : host;
	colon = colon ? memchr(colon, ':', hn - (size_t)(colon - host)) : NULL;
	c->host = decode(host, (size_t)((colon ? colon : host + hn) - host));
	if (colon) {
		char *end;
		char *port = xstrndup(colon + 1, hn - (size_t)(colon + 1 - host));
		long p = strtol(port, &end, 10);
		bool ok = *port && !*end && p > 0 && p < 65536;
		free(port);
		if (!ok) {
			*err = xstrdup("the port of a connection URI must be a number from 1 to 65535");
			return -EINVAL;
		}
		c->port = (int)p;
	}
	return 0;
}

int conn_from_uri(const char *id, const char *uri, struct conn_row *c, char **err)
{
	memset(c, 0, sizeof(*c));
	const char *sep = strstr(uri, "://");
	if (!sep || sep == uri) {
		*err = xstrdup("a connection URI reads type://login:password@host:port/schema?extra");
		return -EINVAL;
	}
	c->conn_id = xstrdup(id);
	c->conn_type = xstrndup(uri, (size_t)(sep - uri));
	for (char *p = c->conn_type; *p; p++)
		if (*p == '-')
			*p = '_';
	const char *a = sep + 3;
	size_t an = strcspn(a, "/?");
	int rc = parse_authority(a, an, c, err);
	const char *rest = a + an;
	if (rc == 0 && *rest == '/') {
		size_t sn = strcspn(rest + 1, "?");
		c->schema = decode(rest + 1, sn);
		rest += 1 + sn;
	}
	if (rc == 0 && *rest == '?')
		rc = parse_query(rest + 1, &c->extra, err);
	if (rc < 0)
		conn_row_free(c);
	return rc;
}

char *conn_to_uri(const struct conn_row *c)
{
	struct strbuf sb = {0};
	for (const char *p = c->conn_type; p && *p; p++)
		sb_putc(&sb, *p == '_' ? '-' : *p);
	sb_puts(&sb, "://");
	if (c->login || c->password) {
		encode(&sb, c->login);
		if (c->password) {
			sb_putc(&sb, ':');
			encode(&sb, c->password);
		}
		sb_putc(&sb, '@');
	}
	encode(&sb, c->host);
	if (c->port > 0)
		sb_printf(&sb, ":%d", c->port);
	if (c->schema) {
		sb_putc(&sb, '/');
		encode(&sb, c->schema);
	}
	if (c->extra) {
		sb_puts(&sb, "?__extra__=");
		encode(&sb, c->extra);
	}
	return sb_steal(&sb);
}

/* The store ------------------------------------------------------------------------------------ */

/* Whether a JSON extra holds a key that looks secret. */
static bool extra_is_sensitive(const char *extra)
{
	cJSON *o = extra ? cJSON_Parse(extra) : NULL;
	const cJSON *it;
	bool hit = false;
	cJSON_ArrayForEach(it, o)
		hit = hit || secrets_name_is_sensitive(it->string);
	cJSON_Delete(o);
	return hit;
}

static bool from_env(const char *id, struct conn_row *out)
{
	char name[ID_MAX + 16];
	size_t n = strlen(id);
	if (n > ID_MAX)
		return false;
	memcpy(name, "SLUICE_CONN_", 12);
	for (size_t i = 0; i <= n; i++)
		name[12 + i] = (char)toupper((unsigned char)id[i]);
	const char *uri = getenv(name);
	char *err = NULL;
	bool ok = uri && conn_from_uri(id, uri, out, &err) == 0;
	free(err);
	return ok;
}

static int open_field(const char *home, char **value, char **err)
{
	if (!*value)
		return 0;
	char *plain = secrets_unseal(home, *value, err);
	if (!plain)
		return -EBADMSG;
	free(*value);
	*value = plain;
	return 0;
}

int conns_get(struct store *st, const char *home, const char *id, struct conn_row *out, char **err)
{
	if (from_env(id, out))
		return 0;
	int rc = store_conn_get(st, id, out);
	if (rc == -ENOENT)
		*err = xasprintf("The Connection with connection_id: `%s` was not found", id);
	else if (rc < 0)
		*err = xstrdup("cannot read the connection");
	if (rc < 0)
		return rc;
	if ((out->is_encrypted && open_field(home, &out->password, err) < 0) ||
	    (out->is_extra_encrypted && open_field(home, &out->extra, err) < 0)) {
		conn_row_free(out);
		return -EBADMSG;
	}
	out->is_encrypted = out->is_extra_encrypted = false;
	return 0;
}

int conns_put(struct store *w, const char *home, const struct conn_row *c, bool create, char **err)
{
	if (!valid_id(c->conn_id)) {
		*err = xasprintf("a connection id is 1 to %d characters of letters, digits, '_', '.' and '-'", ID_MAX);
		return -EINVAL;
	}
	if (!c->conn_type || !*c->conn_type) {
		*err = xstrdup("a connection needs a conn_type");
		return -EINVAL;
	}
	cJSON *ex = c->extra && *c->extra ? cJSON_Parse(c->extra) : NULL;
	if (c->extra && *c->extra && !cJSON_IsObject(ex)) {
		cJSON_Delete(ex);
		*err = xstrdup("extra must be a JSON object");
		return -EINVAL;
	}
	/* Stored in one spelling, so that a URI reads back the same. */
	char *plain_extra = ex ? cJSON_PrintUnformatted(ex) : NULL;
	cJSON_Delete(ex);
	struct conn_row row = *c;
	char *pw = NULL, *extra = NULL;
	if (c->password && !(pw = secrets_seal(home, c->password, err))) {
		free(plain_extra);
		return -ENOKEY;
	}
	if (extra_is_sensitive(plain_extra) && !(extra = secrets_seal(home, plain_extra, err))) {
		free(pw);
		free(plain_extra);
		return -ENOKEY;
	}
	row.password = pw;
	row.is_encrypted = pw != NULL;
	row.extra = extra ? extra : plain_extra;
	row.is_extra_encrypted = extra != NULL;
	int rc = store_conn_put(w, &row, create);
	if (rc == -EEXIST)
		*err = xasprintf("Connection already exist. ID: %s", c->conn_id);
	else if (rc < 0)
		*err = xstrdup("cannot write the connection");
	free(pw);
	free(extra);
	free(plain_extra);
	return rc;
}

int conns_delete(struct store *w, const char *id, char **err)
{
	int rc = store_conn_delete(w, id);
	if (rc == -ENOENT)
		*err = xasprintf("The Connection with connection_id: `%s` was not found", id);
	else if (rc < 0)
		*err = xstrdup("cannot delete the connection");
	return rc;
}

/* Testing -------------------------------------------------------------------------------------- */

static int default_port(const char *type)
{
	static const struct {
		const char *type;
		int port;
	} ports[] = {{"ssh", 22}, {"sftp", 22}, {"http", 80}, {"https", 443}, {"postgres", 5432},
		     {"postgresql", 5432}, {"mysql", 3306}, {"mariadb", 3306}, {"redis", 6379}, {"ftp", 21},
		     {"smtp", 25}, {"mongo", 27017}, {"mssql", 1433}, {"oracle", 1521}, {"kafka", 9092}};
	for (size_t i = 0; i < sizeof(ports) / sizeof(*ports); i++)
		if (!strcmp(ports[i].type, type))
			return ports[i].port;
	return 0;
}

/* A TCP connection to host:port within timeout_ms; the fd or a negative error. */
static int tcp_connect(const char *host, int port, int timeout_ms, char **msg)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	int g = getaddrinfo(host, ps, &hints, &res);
	if (g != 0) {
		*msg = xasprintf("cannot resolve %s: %s", host, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	int fd = -1, rc = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			rc = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd p = {fd, POLLOUT, 0};
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		int pr = poll(&p, 1, timeout_ms);
		if (pr <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			rc = pr == 0 ? -ETIMEDOUT : -(soerr ? soerr : errno);
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		*msg = xasprintf("cannot connect to %s:%d: %s", host, port, strerror(-rc));
	return fd < 0 ? rc : fd;
}

int conns_test(const struct conn_row *c, int timeout_ms, char **msg)
{
	int port = c->port > 0 ? c->port : default_port(c->conn_type);
	if (!c->host || !*c->host || port <= 0) {
		*msg = xasprintf("connections of type %s cannot be tested without a host and port", c->conn_type);
		return -EINVAL;
	}
	int fd = tcp_connect(c->host, port, timeout_ms, msg);
	if (fd < 0)
		return fd;
	int rc = 0;
	if (!strcmp(c->conn_type, "ssh") || !strcmp(c->conn_type, "sftp")) {
		/* An SSH server speaks first: "SSH-2.0-...". */
		char banner[256] = "";
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n = poll(&p, 1, timeout_ms) > 0 ? read(fd, banner, sizeof(banner) - 1) : -1;
		if (n > 4 && !strncmp(banner, "SSH-", 4)) {
			banner[strcspn(banner, "\r\n")] = '\0';
			*msg = xasprintf("Connection successfully tested: %s", banner);
		} else {
			*msg = xasprintf("%s:%d answered, but not as an SSH server", c->host, port);
			rc = -EPROTO;
		}
	} else {
		*msg = xasprintf("Connection successfully tested: %s:%d accepts connections", c->host, port);
	}
	close(fd);
	return rc;
}

int conn_field(const struct conn_row *c, const char *field, char **out, char **err)
{
	const char *v = NULL;
	if (!strcmp(field, "host"))
		v = c->host;
	else if (!strcmp(field, "login"))
		v = c->login;
	else if (!strcmp(field, "password"))
		v = c->password;
	else if (!strcmp(field, "schema"))
		v = c->schema;
	else if (!strcmp(field, "conn_type"))
		v = c->conn_type;
	else if (!strcmp(field, "description"))
		v = c->description;
	else if (!strcmp(field, "extra"))
		v = c->extra;
	if (!strcmp(field, "port")) {
		*out = c->port > 0 ? xasprintf("%d", c->port) : xstrdup("");
		return 0;
	}
	if (!strncmp(field, "extra_dejson.", 13)) {
		cJSON *o = c->extra ? cJSON_Parse(c->extra) : NULL;
		const cJSON *x = json_path(o, field + 13);
		int rc = 0;
		if (!x) {
			*err = xasprintf("connection %s has no extra '%s'", c->conn_id, field + 13);
			rc = -ENOENT;
		} else {
			*out = cJSON_IsString(x) ? xstrdup(x->valuestring) : cJSON_PrintUnformatted(x);
		}
		cJSON_Delete(o);
		return rc;
	}
	if (!v && strcmp(field, "host") && strcmp(field, "login") && strcmp(field, "password") &&
	    strcmp(field, "schema") && strcmp(field, "conn_type") && strcmp(field, "description") &&
	    strcmp(field, "extra")) {
		*err = xasprintf("a connection has no field '%s' (host, port, login, password, schema, extra_dejson.KEY)",
				 field);
		return -ENOENT;
	}
	*out = xstrdup(v ? v : "");
	return 0;
}
