/* Use cases on Connections (Airflow's): how tasks reach other systems. The CLI, the REST API
 * and templates ({{ conn.ID.host }}, .port, .login, .password, .schema, .extra_dejson.KEY) share
 * them. The password is sealed at rest (secrets.h), and so is extra when one of its keys looks
 * secret. The environment overrides the store: SLUICE_CONN_<ID> holds a connection URI, as
 * Airflow's AIRFLOW_CONN_<ID>.
 *
 * URI form, as Airflow's: type://login:password@host:port/schema?key=value&... with each part
 * percent-encoded; the query becomes extra (a JSON object), or "__extra__=<JSON>" gives extra
 * whole. A '_' in type is written '-' in the scheme (google_cloud_platform -> google-cloud-platform). */
#ifndef SLUICE_CONNECTIONS_H
#define SLUICE_CONNECTIONS_H

#include <stdbool.h>

#include "orchestrator/store.h"

/* Parses uri into c (conn_id set from id; conn_row_free it). -EINVAL with *err. */
int conn_from_uri(const char *id, const char *uri, struct conn_row *c, char **err);
/* The URI of c (a new string). */
char *conn_to_uri(const struct conn_row *c);

/* The connection templates see: $SLUICE_CONN_<ID> when set, else the stored one with its
 * password and extra opened. -ENOENT when missing. */
int conns_get(struct store *st, const char *home, const char *id, struct conn_row *out, char **err);

/* Creates (create: -EEXIST when the id is taken) or replaces c (plain values: sealed here). */
int conns_put(struct store *w, const char *home, const struct conn_row *c, bool create, char **err);

int conns_delete(struct store *w, const char *id, char **err);

/* Tests c where sluice can: ssh (reads the server's SSH banner), http/https, postgres, mysql,
 * redis and other TCP services (a TCP connect to host:port within timeout_ms). Returns 0 with
 * *msg saying what answered, or a negative error with *msg saying why. */
int conns_test(const struct conn_row *c, int timeout_ms, char **msg);

/* The value of {{ conn.ID.<field> }}: host, port, login, password, schema, conn_type,
 * description, extra, extra_dejson.KEY (a new string in *out). -ENOENT with *err. */
int conn_field(const struct conn_row *c, const char *field, char **out, char **err);

#endif
