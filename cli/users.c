/* sluice users create | tokens create */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/auth.h"
#include "cli/cli.h"
#include "orchestrator/store.h"

static int users_create(struct cli_ctx *cli, int argc, char **argv)
{
	const char *name = NULL, *role = NULL;
	bool from_stdin = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--role") && i + 1 < argc)
			role = argv[++i];
		else if (!strcmp(argv[i], "--password-stdin"))
			from_stdin = true;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			fprintf(stderr, "sluice users create: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!name || !role || auth_role_parse(role) < 0 || !valid_id(name)) {
		fprintf(stderr, "usage: sluice users create NAME --role admin|op|viewer [--password-stdin]\n");
		return 2;
	}
	char *pw = NULL, *hash = NULL, *err = NULL;
	if (from_stdin) {
		char buf[1024];
		if (!fgets(buf, sizeof(buf), stdin) || !*buf) {
			fprintf(stderr, "sluice: no password on standard input\n");
			return 1;
		}
		buf[strcspn(buf, "\r\n")] = '\0';
		if (strlen(buf) < 8) {
			fprintf(stderr, "sluice: the password must have at least 8 characters\n");
			return 1;
		}
		pw = xstrdup(buf);
	} else {
		pw = auth_new_password(16);
	}
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

static int tokens_create(struct cli_ctx *cli, int argc, char **argv)
{
	const char *name = NULL, *role = "op";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--role") && i + 1 < argc)
			role = argv[++i];
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			fprintf(stderr, "sluice tokens create: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!name || auth_role_parse(role) < 0 || !valid_id(name)) {
		fprintf(stderr, "usage: sluice tokens create NAME [--role admin|op|viewer]\n");
		return 2;
	}
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

int cli_users(struct cli_ctx *cli, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "create"))
		return users_create(cli, argc - 1, argv + 1);
	bool help = argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
	fprintf(help ? stdout : stderr,
		"usage: sluice users create NAME --role admin|op|viewer [--password-stdin]\n\n"
		"Creates a user of the REST API (or changes its role and password). Without\n"
		"--password-stdin a random password is made and printed. Passwords are stored as\n"
		"yescrypt hashes. Viewers can read; ops can also trigger, clear, pause and change pools;\n"
		"admins can do everything.\n");
	return help ? 0 : 2;
}

int cli_tokens(struct cli_ctx *cli, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "create"))
		return tokens_create(cli, argc - 1, argv + 1);
	bool help = argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
	fprintf(help ? stdout : stderr,
		"usage: sluice tokens create NAME [--role admin|op|viewer]\n\n"
		"Creates an API token (default role op) and prints it once; use it as\n"
		"`Authorization: Bearer <token>`. Only its SHA-256 hash is stored.\n");
	return help ? 0 : 2;
}
