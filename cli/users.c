/* sluice users create | tokens create */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/auth.h"
#include "cli/cli.h"
#include "orchestrator/store.h"

/* A password from standard input (at least 8 characters), or a new random one; NULL after
 * saying why. */
static char *read_password(bool from_stdin)
{
	char buf[1024];
	if (!from_stdin)
		return auth_new_password(16);
	if (!fgets(buf, sizeof(buf), stdin) || !*buf) {
		fprintf(stderr, "sluice: no password on standard input\n");
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 8) {
		fprintf(stderr, "sluice: the password must have at least 8 characters\n");
		return NULL;
	}
	return xstrdup(buf);
}

static int users_create(struct cli_ctx *cli, const struct cmd_args *a)
{
	const char *name = a->argv[0], *role = a->val['r'];
	bool from_stdin = a->set['p'];
	if (auth_role_parse(role) < 0)
		return cmd_usage_error(&cmd_users_create, "the role is admin, op or viewer");
	if (!valid_id(name))
		return cmd_usage_error(&cmd_users_create, "NAME is [A-Za-z0-9_.-]+");
	char *pw = read_password(from_stdin), *hash = NULL, *err = NULL;
	if (!pw)
		return 1;
	struct store *st = NULL;
	int rc = 1;
	if (!(hash = auth_hash_password(pw, &err))) {
		fprintf(stderr, "sluice: %s\n", err);
		goto out;
	}
	if (cli_open_store(cli, 0, &st) < 0)
		goto out;
	if (store_user_put(st, name, role, hash) < 0) {
		fprintf(stderr, "sluice: cannot store the user\n");
		goto out;
	}
	if (from_stdin)
		printf("user %s (%s) saved\n", name, role);
	else
		printf("user %s (%s) saved with password %s\n", name, role, pw);
	rc = 0;
out:
	store_close(st);
	free(err);
	free(hash);
	free(pw);
	return rc;
}

static int tokens_create(struct cli_ctx *cli, const struct cmd_args *a)
{
	const char *name = a->argv[0], *role = a->set['r'] ? a->val['r'] : "op";
	if (auth_role_parse(role) < 0 || !valid_id(name))
		return cmd_usage_error(&cmd_tokens_create, "NAME is [A-Za-z0-9_.-]+ and the role admin, op or viewer");
	struct store *st = NULL;
	char hash[65], *token = auth_new_token();
	int rc = 1;
	auth_token_hash(token, hash);
	if (cli_open_store(cli, 0, &st) < 0)
		goto out;
	int r = store_token_add(st, name, hash, role);
	if (r < 0) {
		fprintf(stderr, "sluice: %s\n", r == -EEXIST ? "a token with that name exists" : "cannot store the token");
		goto out;
	}
	/* The token itself is not stored: this is the only time it is shown. */
	printf("%s\n", token);
	rc = 0;
out:
	store_close(st);
	free(token);
	return rc;
}

static const struct cmd_opt user_opts[] = {
	{"role", 'r', "admin|op|viewer", true, false, "what the user may do"},
	{"password-stdin", 'p', NULL, false, false, "read the password from standard input (else a random one is printed)"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_users_create = {
	"users", "create", "NAME", 1, 1, user_opts, "create a user of the REST API",
	"Creates a user of the REST API (or changes its role and password). Without --password-stdin a\n"
	"random password is made and printed. Passwords are stored as yescrypt hashes. Viewers can read;\n"
	"ops can also trigger, clear, pause and change pools; admins can do everything.",
	users_create,
};

static const struct cmd_opt token_opts[] = {
	{"role", 'r', "admin|op|viewer", false, false, "what the token may do (default op)"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_tokens_create = {
	"tokens", "create", "NAME", 1, 1, token_opts, "create an API token",
	"Creates an API token (default role op) and prints it once; use it as\n"
	"`Authorization: Bearer <token>`. Only its SHA-256 hash is stored.",
	tokens_create,
};

static int users_delete(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int rc = store_user_delete(st, a->argv[0]);
	if (rc == 0)
		printf("user %s deleted\n", a->argv[0]);
	else
		fprintf(stderr, "sluice: %s\n", rc == -ENOENT ? "no such user" : "cannot delete the user");
	store_close(st);
	return rc == 0 ? 0 : 1;
}

const struct cmd_entry cmd_users_delete = {
	"users", "delete", "NAME", 1, 1, NULL, "delete a user",
	"Deletes a user of the REST API; its credentials stop working with the next request.", users_delete,
};

static void print_token(void *arg, const char *name, const char *role, usec_t created)
{
	char iso[ISO_BUFSZ];
	format_iso8601(created, iso, sizeof(iso));
	printf("%-32s %-8s %s\n", name, role, iso);
	(void)arg;
}

static int tokens_list(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	int rc = cli_open_store(cli, STORE_READONLY, &st);
	if (rc < 0 && rc != -ENOENT)
		return 1;
	printf("%-32s %-8s %s\n", "NAME", "ROLE", "CREATED");
	if (st)
		rc = store_token_each(st, print_token, NULL);
	store_close(st);
	return rc < 0 && rc != -ENOENT ? 1 : 0;
}

const struct cmd_entry cmd_tokens_list = {
	"tokens", "list", NULL, 0, 0, NULL, "the API tokens (names and roles; never the tokens)", NULL, tokens_list,
};

static int tokens_revoke(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	int rc = store_token_delete(st, a->argv[0]);
	if (rc == 0)
		printf("token %s revoked\n", a->argv[0]);
	else
		fprintf(stderr, "sluice: %s\n", rc == -ENOENT ? "no such token" : "cannot revoke the token");
	store_close(st);
	return rc == 0 ? 0 : 1;
}

const struct cmd_entry cmd_tokens_revoke = {
	"tokens", "revoke", "NAME", 1, 1, NULL, "revoke an API token",
	"Revokes an API token; it stops working with the next request.", tokens_revoke,
};

/* users set-role NAME ROLE: the password stays. */
static int users_set_role(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	char *hash = NULL, *role = NULL;
	int rc = 1;
	if (auth_role_parse(a->argv[1]) < 0)
		return cmd_usage_error(&cmd_users_set_role, "the role is admin, op or viewer");
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	if (store_user_get(st, a->argv[0], &hash, &role) < 0)
		fprintf(stderr, "sluice: no user %s\n", a->argv[0]);
	else if (store_user_put(st, a->argv[0], a->argv[1], hash) < 0)
		fprintf(stderr, "sluice: cannot store the user\n");
	else {
		printf("user %s: %s (was %s), in effect for the next request\n", a->argv[0], a->argv[1], role);
		rc = 0;
	}
	free(hash);
	free(role);
	store_close(st);
	return rc;
}

/* users passwd NAME [--password-stdin]: the role stays. */
static int users_passwd(struct cli_ctx *cli, const struct cmd_args *a)
{
	struct store *st = NULL;
	char *old = NULL, *role = NULL, *pw = NULL, *hash = NULL, *err = NULL;
	int rc = 1;
	if (cli_open_store(cli, 0, &st) < 0)
		return 1;
	if (store_user_get(st, a->argv[0], &old, &role) < 0) {
		fprintf(stderr, "sluice: no user %s\n", a->argv[0]);
	} else if ((pw = read_password(a->set['p'])) && !(hash = auth_hash_password(pw, &err))) {
		fprintf(stderr, "sluice: %s\n", err);
	} else if (pw && store_user_put(st, a->argv[0], role, hash) < 0) {
		fprintf(stderr, "sluice: cannot store the user\n");
	} else if (pw) {
		if (a->set['p'])
			printf("user %s: new password, in effect for the next request\n", a->argv[0]);
		else
			printf("user %s: new password %s\n", a->argv[0], pw);
		rc = 0;
	}
	free(old);
	free(role);
	free(pw);
	free(hash);
	free(err);
	store_close(st);
	return rc;
}

static const struct cmd_opt passwd_opts[] = {
	{"password-stdin", 'p', NULL, false, false, "read the password from standard input (else a random one is printed)"},
	{NULL, 0, NULL, false, false, NULL},
};

const struct cmd_entry cmd_users_set_role = {
	"users", "set-role", "NAME ROLE", 2, 2, NULL, "change a user's role (admin, op, viewer)",
	"Changes the role of a user of the REST API; the password stays. In effect for the next request.",
	users_set_role,
};
const struct cmd_entry cmd_users_passwd = {
	"users", "passwd", "NAME", 1, 1, passwd_opts, "give a user a new password",
	"Gives a user a new password (from --password-stdin, or a random one that is printed); the role\n"
	"stays. The old password stops working with the next request.",
	users_passwd,
};
