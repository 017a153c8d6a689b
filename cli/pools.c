/* sluice pools list | set | delete */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "orchestrator/store.h"

/* pools -------------------------------------------------------------------------------------- */

static int pools_list(struct cli_ctx *cli, bool json)
{
	struct store *st = NULL;
	struct pool_row *pools = NULL;
	int n = 0;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	n = store_pool_list(st, &pools);
	if (n < 0)
		n = 0;
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(o, "pools");
		for (int i = 0; i < n; i++) {
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "name", pools[i].name);
			cJSON_AddNumberToObject(p, "slots", pools[i].slots);
			if (pools[i].description)
				cJSON_AddStringToObject(p, "description", pools[i].description);
			else
				cJSON_AddNullToObject(p, "description");
			cJSON_AddItemToArray(arr, p);
		}
		cJSON_AddNumberToObject(o, "total_entries", n);
		cli_print_json(o);
	} else {
		printf("%-32s %8s  %s\n", "POOL", "SLOTS", "DESCRIPTION");
		for (int i = 0; i < n; i++)
			printf("%-32s %8d  %s\n", pools[i].name, pools[i].slots,
			       pools[i].description ? pools[i].description : "");
	}
	for (int i = 0; i < n; i++)
		pool_row_free(&pools[i]);
	free(pools);
	store_close(st);
	return 0;
}

static int list(struct cli_ctx *cli, const struct cmd_args *a) { return pools_list(cli, a->set['j']); }

static int set(struct cli_ctx *cli, const struct cmd_args *a)
{
	char *end;
	long slots = strtol(a->argv[1], &end, 10);
	if (!valid_id(a->argv[0]) || !*a->argv[1] || *end || slots < -1 || slots > 1000000)
		return cmd_usage_error(&cmd_pools_set, "NAME is [A-Za-z0-9_.-]+, SLOTS an integer from -1 to 1000000");
	struct store *st = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int rc = store_pool_set(st, a->argv[0], (int)slots, a->val['d']);
	if (rc == 0)
		printf("pool %s: %ld slots\n", a->argv[0], slots);
	else
		fprintf(stderr, "sluice: cannot set the pool: %s\n", strerror(-rc));
	store_close(st);
	return rc == 0 ? 0 : 1;
}

static int delete(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int d = store_pool_delete(st, a->argv[0]);
	if (d == 0)
		printf("pool %s deleted\n", a->argv[0]);
	else
		fprintf(stderr, "sluice: %s\n", d == -EPERM ? "default_pool cannot be deleted"
						   : d == -ENOENT ? "no such pool" : "cannot delete the pool");
	store_close(st);
	return d == 0 ? 0 : 1;
}

static const struct cmd_opt list_opts[] = {
	{"json", 'j', NULL, false, false, "print JSON"},
	{NULL, 0, NULL, false, false, NULL},
};
static const struct cmd_opt set_opts[] = {
	{"description", 'd', "TEXT", false, false, "what the pool is for"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_pools_list = {"pools", "list", NULL, 0, 0, list_opts, "pools and their slots", NULL, list};
const struct cmd_entry cmd_pools_set = {
	"pools", "set", "NAME SLOTS", 2, 2, set_opts, "create or resize a pool (-1 = unlimited)",
	"Creates or resizes a pool; SLOTS -1 means unlimited. A running daemon picks it up within a second.",
	set,
};
const struct cmd_entry cmd_pools_delete = {
	"pools", "delete", "NAME", 1, 1, NULL, "remove a pool (not default_pool)", NULL, delete,
};
