/* The web server of `sluice serve`: libmicrohttpd with its own polling thread and a pool of
 * worker threads. It turns HTTP into calls on the orchestrator and back into JSON; it owns no
 * state. Reads use a read-only database connection per worker thread.
 *
 * Every /api/v1 route needs a user or a token (HTTP Basic or Bearer) unless auth is off;
 * `/api/v1/health` and `/api/v1/version` are public, as in Airflow. Viewers may only read.
 * Request bodies are capped (413 beyond). Errors are RFC 7807 problem documents. */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <stdbool.h>

#include "base/util.h"

struct web;

struct web_opts {
	const char *bind;          /* IPv4 address to listen on */
	int port;                  /* 0 = any free port */
	const char *db_path;       /* the database, opened read-only per thread */
	const char *lib_dir;       /* <dags>/lib, for DAG versions that `require` modules */
	const char *home;          /* $SLUICE_HOME, where the logs are */
	bool no_auth;              /* only allowed on a loopback address */
	bool metrics_public;       /* /metrics without credentials (metrics.public) */
	const char *allowed_hosts; /* names a browser may reach it by besides IPs and localhost
	                              (comma-separated; webserver.allowed_hosts) */
	size_t max_body;           /* bytes; 0 = 1 MiB */
	int max_connections;       /* 0 = 2000 */
	int max_connections_per_address; /* 0 = 64; 127.0.0.1 and ::1 have no limit */
	usec_t idle_timeout;       /* 0 = 30 s */
	int max_event_streams;     /* 0 = 512 */
	const struct config *config; /* for GET /config when webserver.expose_config (may be NULL) */
	/* The scheduler's latest heartbeat (wall clock), for /health; called from worker threads. */
	usec_t (*heartbeat)(void *arg);
	void *heartbeat_arg;
};

/* Starts listening. Returns 0 with *out set, or -errno with *err (malloc'd). */
int web_start(const struct web_opts *o, struct web **out, char **err);
/* The port actually bound. */
int web_port(const struct web *w);
/* Stops accepting, finishes requests in flight, and frees. NULL is fine. */
void web_stop(struct web *w);

/* The route tables dispatch() searches: those under /api/v1, or (root) those from the server's
 * root; NULL-terminated lists for router_find(). */
struct route;
const struct route *const *server_route_tables(bool root);

#endif
