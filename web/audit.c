/* The audit log of the REST API: every request to a route that changes something (a route with
 * an event) is recorded once its handler has replied, whatever the outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "web/api.h"
#include "web/auth.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/secrets.h"

/* A copy of the request body with what looks secret replaced by "***": fields whose names look
 * secret, the value of a variable whose key does, and a connection's extra when it holds one. */
static cJSON *masked_body(struct req *r, const char *event)
{
	cJSON *body = cJSON_Parse(api_body(r, NULL));
	if (!cJSON_IsObject(body)) {
		cJSON_Delete(body);
		return NULL;
	}
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(body, "key");
	const char *var = api_param(r, "variable_key") ? api_param(r, "variable_key")
			  : cJSON_IsString(key) ? key->valuestring : NULL;
	cJSON *out = cJSON_CreateObject();
	for (const cJSON *it = body->child; it; it = it->next) {
		bool secret = secrets_name_is_sensitive(it->string) ||
			      (!strncmp(event, "variable.", 9) && !strcmp(it->string, "value") &&
			       secrets_name_is_sensitive(var)) ||
			      (!strncmp(event, "connection.", 11) && !strcmp(it->string, "extra") && cJSON_IsString(it) &&
			       secrets_name_is_sensitive(it->valuestring));
		cJSON_AddItemToObject(out, it->string, secret && !cJSON_IsNull(it) ? cJSON_CreateString("***")
										: cJSON_Duplicate(it, true));
	}
	cJSON_Delete(body);
	return out;
}

static int write_entry(struct store *w, void *arg)
{
	return store_log_add(w, arg);
}

void api_audit(struct req *r, const char *event)
{
	char client[INET6_ADDRSTRLEN] = "";
	api_client_address(r, client, sizeof(client));
	const char *mi = api_param(r, "map_index");
	struct log_row l = {
		.event = (char *)event,
		.owner = api_user(r) ? xstrdup(api_user(r)) : api_no_auth(r) ? xstrdup("anonymous") : auth_caller(api_store(r), api_header(r, "Authorization")),
		.dag_id = (char *)api_param(r, "dag_id"),
		.run_id = (char *)api_param(r, "dag_run_id"),
		.task_id = (char *)api_param(r, "task_id"),
		.map_index = mi ? atoi(mi) : -1,
	};
	/* A trigger names its run in the reply. */
	cJSON *reply = !l.run_id && api_reply_body(r) ? cJSON_Parse(api_reply_body(r)) : NULL;
	const cJSON *rid = cJSON_GetObjectItemCaseSensitive(reply, "dag_run_id");
	if (cJSON_IsString(rid) && api_status(r) < 300)
		l.run_id = rid->valuestring;
	cJSON *extra = cJSON_CreateObject();
	cJSON_AddStringToObject(extra, "method", api_method(r));
	cJSON_AddStringToObject(extra, "path", api_path(r));
	cJSON_AddNumberToObject(extra, "status", api_status(r));
	cJSON_AddStringToObject(extra, "client", client);
	cJSON *body = masked_body(r, event);
	if (body)
		cJSON_AddItemToObject(extra, "body", body);
	l.extra = cJSON_PrintUnformatted(extra);
	sched_write(write_entry, &l);
	free(l.extra);
	free(l.owner);
	cJSON_Delete(extra);
	cJSON_Delete(reply);
}
