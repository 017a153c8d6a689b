/* The use cases behind Airflow's admin resources: the secrets store (seal, open, a wrong key,
 * rotation and a rotation cut short), variables (sealed by key, the environment first),
 * connection URIs, and params with JSON schemas. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "orchestrator/connections.h"
#include "orchestrator/params.h"
#include "orchestrator/secrets.h"
#include "orchestrator/variables.h"

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	return read_file(path, 1 << 20, &text, &len) == 0 ? text : NULL;
}

static void test_sensitive_names(void **state)
{
	(void)state;
	const char *yes[] = {"password", "DB_PASSWORD", "api_key", "x-apikey", "github_token", "Secret",
			     "private_key_file", "passphrase", "Authorization", NULL};
	const char *no[] = {"region", "host", "user", "pass", "keyring", "", NULL};
	for (size_t i = 0; yes[i]; i++)
		assert_true(secrets_name_is_sensitive(yes[i]));
	for (size_t i = 0; no[i]; i++)
		assert_false(secrets_name_is_sensitive(no[i]));
}

static void test_seal_open_and_the_key_file(void **state)
{
	struct fixture *f = *state;
	char *err = NULL, path[160];
	unsetenv("SLUICE_SECRET_KEY");
	char *sealed = secrets_seal(f->home, "s3cr3t value", &err);
	assert_non_null(sealed);
	assert_null(strstr(sealed, "s3cr3t"));
	assert_int_equal(strncmp(sealed, "sealed:v1:", 10), 0);
	snprintf(path, sizeof(path), "%s/secret.key", f->home);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	char *again = secrets_seal(f->home, "s3cr3t value", &err);
	assert_string_not_equal(again, sealed); /* a fresh nonce each time */
	char *plain = secrets_unseal(f->home, sealed, &err);
	assert_string_equal(plain, "s3cr3t value");
	free(plain);
	/* Another key opens nothing, and says so. */
	setenv("SLUICE_SECRET_KEY", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 1);
	assert_null(secrets_unseal(f->home, sealed, &err));
	assert_non_null(strstr(err, "does not open"));
	free(err);
	err = NULL;
	setenv("SLUICE_SECRET_KEY", "too short", 1);
	assert_null(secrets_seal(f->home, "x", &err));
	assert_non_null(strstr(err, "64 hex digits"));
	free(err);
	err = NULL;
	unsetenv("SLUICE_SECRET_KEY");
	/* A tampered value does not open. */
	sealed[strlen(sealed) - 3] = sealed[strlen(sealed) - 3] == 'A' ? 'B' : 'A';
	assert_null(secrets_unseal(f->home, sealed, &err));
	free(err);
	free(sealed);
	free(again);
}

static void test_variables_sealed_by_key_and_env_first(void **state)
{
	struct fixture *f = *state;
	char *err = NULL, *v = NULL;
	struct var_row row;
	unsetenv("SLUICE_SECRET_KEY");
	assert_int_equal(vars_set(f->w, f->home, "region", "eu", "where", true, &err), 0);
	assert_int_equal(vars_set(f->w, f->home, "region", "us", NULL, true, &err), -EEXIST);
	free(err);
	err = NULL;
	assert_int_equal(vars_set(f->w, f->home, "api_token", "tok-abcdef", NULL, true, &err), 0);
	assert_int_equal(store_var_get(f->w, "api_token", &row), 0);
	assert_true(row.is_encrypted);
	assert_null(strstr(row.val, "tok-abcdef"));
	var_row_free(&row);
	assert_int_equal(store_var_get(f->w, "region", &row), 0);
	assert_false(row.is_encrypted);
	assert_string_equal(row.description, "where");
	var_row_free(&row);
	assert_int_equal(vars_value(f->w, f->home, "api_token", &v, &err), 0);
	assert_string_equal(v, "tok-abcdef");
	free(v);
	setenv("SLUICE_VAR_REGION", "from-env", 1);
	assert_int_equal(vars_value(f->w, f->home, "region", &v, &err), 0);
	assert_string_equal(v, "from-env");
	free(v);
	unsetenv("SLUICE_VAR_REGION");
	/* A description kept, then cleared. */
	assert_int_equal(vars_set(f->w, f->home, "region", "us", NULL, false, &err), 0);
	assert_int_equal(store_var_get(f->w, "region", &row), 0);
	assert_string_equal(row.description, "where");
	var_row_free(&row);
	assert_int_equal(vars_set(f->w, f->home, "region", "us", "", false, &err), 0);
	assert_int_equal(store_var_get(f->w, "region", &row), 0);
	assert_null(row.description);
	var_row_free(&row);
	assert_int_equal(vars_set(f->w, f->home, "../x", "v", NULL, false, &err), -EINVAL);
	free(err);
	err = NULL;
	assert_int_equal(vars_value(f->w, f->home, "nope", &v, &err), -ENOENT);
	free(err);
	err = NULL;
	assert_int_equal(vars_delete(f->w, "region", &err), 0);
	assert_int_equal(vars_delete(f->w, "region", &err), -ENOENT);
	free(err);
}

static void test_rotation(void **state)
{
	struct fixture *f = *state;
	char *err = NULL, path[160], *v = NULL;
	unsetenv("SLUICE_SECRET_KEY");
	assert_int_equal(vars_set(f->w, f->home, "db_password", "pw-one-two", NULL, true, &err), 0);
	struct conn_row c = {.conn_id = "db", .conn_type = "postgres", .host = "h", .password = "conn-pw-9",
			     .extra = "{\"api_key\": \"k-123456\", \"region\": \"eu\"}"};
	assert_int_equal(conns_put(f->w, f->home, &c, true, &err), 0);
	snprintf(path, sizeof(path), "%s/secret.key", f->home);
	char *before = slurp(path);
	assert_int_equal(secrets_rotate(f->w, f->home, &err), 3); /* the variable, the password, the extra */
	char *after = slurp(path);
	assert_string_not_equal(before, after);
	assert_int_equal(strlen(after), 65); /* one key left */
	assert_int_equal(vars_value(f->w, f->home, "db_password", &v, &err), 0);
	assert_string_equal(v, "pw-one-two");
	free(v);
	struct conn_row got;
	assert_int_equal(conns_get(f->w, f->home, "db", &got, &err), 0);
	assert_string_equal(got.password, "conn-pw-9");
	assert_non_null(strstr(got.extra, "k-123456"));
	conn_row_free(&got);
	/* A rotation cut short after its commit leaves two keys in the file: both open. */
	char two[200];
	snprintf(two, sizeof(two), "%.64s\n%s", "aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00", after);
	assert_int_equal(write_file_atomic(path, two, strlen(two), false), 0);
	assert_int_equal(vars_value(f->w, f->home, "db_password", &v, &err), 0);
	assert_string_equal(v, "pw-one-two");
	free(v);
	/* With the key from the environment there is no file to rotate. */
	setenv("SLUICE_SECRET_KEY", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 1);
	assert_int_equal(secrets_rotate(f->w, f->home, &err), -EPERM);
	free(err);
	unsetenv("SLUICE_SECRET_KEY");
	free(before);
	free(after);
}

static void test_connection_uris(void **state)
{
	(void)state;
	struct conn_row c;
	char *err = NULL;
	assert_int_equal(conn_from_uri("db", "postgres://us%40r:p%3Aw%2Fd@db.example:6543/sales?sslmode=require&x=1", &c,
				       &err), 0);
	assert_string_equal(c.conn_type, "postgres");
	assert_string_equal(c.login, "us@r");
	assert_string_equal(c.password, "p:w/d");
	assert_string_equal(c.host, "db.example");
	assert_int_equal(c.port, 6543);
	assert_string_equal(c.schema, "sales");
	assert_string_equal(c.extra, "{\"sslmode\":\"require\",\"x\":\"1\"}");
	char *uri = conn_to_uri(&c);
	struct conn_row back;
	assert_int_equal(conn_from_uri("db", uri, &back, &err), 0);
	assert_string_equal(back.password, "p:w/d");
	assert_string_equal(back.extra, c.extra);
	conn_row_free(&back);
	conn_row_free(&c);
	free(uri);
	assert_int_equal(conn_from_uri("g", "google-cloud-platform://?__extra__=%7B%22project%22%3A%22p1%22%7D", &c, &err),
			 0);
	assert_string_equal(c.conn_type, "google_cloud_platform");
	assert_null(c.host);
	assert_string_equal(c.extra, "{\"project\":\"p1\"}");
	conn_row_free(&c);
	const char *bad[] = {"no-scheme", "://x", "http://h:0", "http://h:99999", "http://h:x",
			     "http://h?__extra__=%5B1%5D", NULL};
	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(conn_from_uri("x", bad[i], &c, &err), -EINVAL);
		free(err);
		err = NULL;
	}
	setenv("SLUICE_CONN_FROM_ENV", "ssh://deploy@10.0.0.5:2222", 1);
	assert_int_equal(conns_get(NULL, "/nonexistent", "from_env", &c, &err), 0);
	assert_string_equal(c.login, "deploy");
	assert_int_equal(c.port, 2222);
	char *field = NULL;
	assert_int_equal(conn_field(&c, "port", &field, &err), 0);
	assert_string_equal(field, "2222");
	free(field);
	assert_int_equal(conn_field(&c, "nonsense", &field, &err), -ENOENT);
	free(err);
	conn_row_free(&c);
	unsetenv("SLUICE_CONN_FROM_ENV");
}

static cJSON *j(const char *s) { return cJSON_Parse(s); }

static void check_value(const char *schema, const char *value, bool ok, const char *msg_part)
{
	cJSON *sc = j(schema), *v = j(value);
	char *err = NULL;
	int rc = params_check_value(sc, v, "p", &err);
	if (ok && rc != 0)
		fail_msg("%s against %s: %s", value, schema, err);
	if (!ok && rc == 0)
		fail_msg("%s against %s was accepted", value, schema);
	if (!ok && msg_part && !strstr(err, msg_part))
		fail_msg("%s against %s: '%s' lacks '%s'", value, schema, err, msg_part);
	free(err);
	cJSON_Delete(sc);
	cJSON_Delete(v);
}

static void test_param_schemas(void **state)
{
	(void)state;
	check_value("{\"type\": \"integer\", \"minimum\": 1}", "3", true, NULL);
	check_value("{\"type\": \"integer\", \"minimum\": 1}", "0", false, "less than the minimum 1");
	check_value("{\"type\": \"integer\"}", "2.5", false, "not of type");
	check_value("{\"type\": \"integer\"}", "\"3\"", false, "not of type");
	check_value("{\"type\": [\"string\", \"null\"]}", "null", true, NULL);
	check_value("{\"type\": \"number\", \"exclusiveMaximum\": 10}", "10", false, "must be less than");
	check_value("{\"multipleOf\": 0.5}", "2.5", true, NULL);
	check_value("{\"multipleOf\": 0.5}", "2.3", false, "multiple");
	check_value("{\"enum\": [\"full\", \"delta\"]}", "\"delta\"", true, NULL);
	check_value("{\"enum\": [\"full\", \"delta\"]}", "\"half\"", false, "not one of");
	check_value("{\"type\": \"string\", \"pattern\": \"^[a-z]+@[a-z]+$\"}", "\"a@b\"", true, NULL);
	check_value("{\"type\": \"string\", \"pattern\": \"^[a-z]+@[a-z]+$\"}", "\"a-b\"", false, "pattern");
	check_value("{\"minLength\": 2, \"maxLength\": 3}", "\"\u00e9\u00e9\"", true, NULL); /* characters */
	check_value("{\"maxLength\": 3}", "\"abcd\"", false, "maxLength");
	check_value("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"maxItems\": 3}", "[1, 2]", true, NULL);
	check_value("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}}", "[1, \"x\"]", false, "p[1]");
	check_value("{\"uniqueItems\": true}", "[1, 1]", false, "repeated");
	check_value("{\"uniqueItems\": true}", "[1, 2, \"1\", [1], {\"a\": 1}]", true, NULL);
	check_value("{\"uniqueItems\": true}", "[{\"a\": 1, \"b\": [2]}, 3, {\"b\": [2], \"a\": 1}]", false, "repeated");
	check_value("{\"uniqueItems\": true}", "[1.0, 1]", false, "repeated");
	{ /* 200,000 distinct items: sorted, not compared pairwise */
		struct strbuf big = {0};
		sb_puts(&big, "[");
		for (int i = 0; i < 200000; i++)
			sb_printf(&big, "%s%d", i ? "," : "", i);
		sb_puts(&big, "]");
		check_value("{\"uniqueItems\": true}", sb_str(&big), true, NULL);
		sb_free(&big);
	}
	check_value("{\"type\": \"object\", \"required\": [\"a\"], \"properties\": {\"a\": {\"type\": \"boolean\"}}}",
		     "{\"a\": true}", true, NULL);
	check_value("{\"type\": \"object\", \"required\": [\"a\"]}", "{}", false, "required key 'a'");
	check_value("{\"properties\": {\"a\": {\"type\": \"boolean\"}}}", "{\"a\": 1}", false, "p.a");
	check_value("{}", "{\"anything\": [1]}", true, NULL);
	/* Malformed schemas. */
	const char *bad[] = {"{\"type\": \"int\"}", "{\"minimum\": \"1\"}", "{\"pattern\": \"([\"}", "{\"enum\": []}",
			     "{\"items\": {\"type\": \"nope\"}}",
			     /* What glibc's regcomp would spend gigabytes on: nested repetitions, also of
			      * empty groups, and groups nested past the bound. */
			     "{\"pattern\": \"((((((a{9}){9}){9}){9}){9}){9})\"}",
			     "{\"pattern\": \"^[a-z]x*++++++++++++$\"}",
			     "{\"pattern\": \"((<||||||||){91,})\"}",
			     "{\"pattern\": \"((((((((((){9}){9}){9}){9}){9}){9}){9}){9}){9}){9})\"}",
			     "{\"pattern\": \"(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))\"}",
			     NULL};
	for (size_t i = 0; bad[i]; i++) {
		cJSON *sc = j(bad[i]);
		char *err = NULL;
		if (params_check_schema(sc, &err) == 0)
			fail_msg("schema %s was accepted", bad[i]);
		free(err);
		cJSON_Delete(sc);
	}
}

static void test_params_at_import_and_trigger(void **state)
{
	(void)state;
	static const char ok_src[] =
		"local d = dag { id = 'p', params = { region = 'eu', days = param { default = 3, type = 'integer', minimum = 1 },"
		"  email = param { type = 'string', description = 'who to tell' } } }\n"
		"d:task 'a' { cmd = 'true' }\nreturn d\n";
	struct dag_load ld;
	assert_int_equal(dag_lua_load("/d/p.lua", "p.lua", ok_src, strlen(ok_src), NULL, NULL, &ld), 0);
	struct dag *d = ld.dags[0];
	char *err = NULL;
	cJSON *conf = j("{\"email\": \"a@b\"}");
	assert_int_equal(params_validate(d, conf, &err), 0);
	cJSON_Delete(conf);
	assert_int_equal(params_validate(d, NULL, &err), -EINVAL); /* email has no default */
	assert_non_null(strstr(err, "param 'email' is required"));
	free(err);
	err = NULL;
	conf = j("{\"email\": \"a@b\", \"days\": 0}");
	assert_int_equal(params_validate(d, conf, &err), -EINVAL);
	assert_non_null(strstr(err, "param 'days'"));
	free(err);
	cJSON_Delete(conf);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(d->param_specs, "email"), "description")->valuestring,
			    "who to tell");
	dag_load_clear(&ld);
	/* Import errors: a default that breaks its schema, a bad schema, no default on a schedule. */
	const char *bad[] = {
		"local d = dag { id = 'p', params = { n = param { default = 0, minimum = 1 } } }\nd:task 'a' { cmd = 'true' }\nreturn d\n",
		"local d = dag { id = 'p', params = { n = param { type = 'int' } } }\nd:task 'a' { cmd = 'true' }\nreturn d\n",
		"local d = dag { id = 'p', schedule = '@daily', params = { n = param { type = 'integer' } } }\n"
		"d:task 'a' { cmd = 'true' }\nreturn d\n",
		"local d = dag { id = 'p', params = { n = param { defualt = 1 } } }\nd:task 'a' { cmd = 'true' }\nreturn d\n",
		NULL,
	};
	const char *why[] = {"less than the minimum", "unknown type", "cannot run on a schedule", "did you mean 'default'"};
	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(dag_lua_load("/d/p.lua", "p.lua", bad[i], strlen(bad[i]), NULL, NULL, &ld), -EINVAL);
		if (!strstr(ld.error, why[i]) || strncmp(ld.error, "p.lua:1: ", 9))
			fail_msg("case %zu: %s", i, ld.error);
		dag_load_clear(&ld);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sensitive_names),
		cmocka_unit_test_setup_teardown(test_seal_open_and_the_key_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_variables_sealed_by_key_and_env_first, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_rotation, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_connection_uris),
		cmocka_unit_test(test_param_schemas),
		cmocka_unit_test(test_params_at_import_and_trigger),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
