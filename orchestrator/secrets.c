#include "orchestrator/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/util.h"

#define PREFIX "sealed:v1:"
#define KEY_HEX (2 * crypto_secretbox_KEYBYTES)

bool secrets_name_is_sensitive(const char *name)
{
	/* Airflow's DEFAULT_SENSITIVE_FIELDS. */
	static const char *const words[] = {"access_token", "api_key", "apikey", "authorization", "passphrase",
					    "passwd", "password", "private_key", "secret", "token", "keyfile_dict",
					    "service_account", NULL};
	for (size_t i = 0; name && words[i]; i++)
		if (contains_nocase(name, words[i]))
			return true;
	return false;
}

static bool init_sodium(char **err)
{
	if (sodium_init() < 0) {
		*err = xstrdup("libsodium cannot be initialised");
		return false;
	}
	return true;
}

static bool parse_hex_key(const char *hex, unsigned char key[crypto_secretbox_KEYBYTES])
{
	size_t n = 0;
	return strlen(hex) == KEY_HEX &&
	       sodium_hex2bin(key, crypto_secretbox_KEYBYTES, hex, KEY_HEX, NULL, &n, NULL) == 0 &&
	       n == crypto_secretbox_KEYBYTES;
}

#define MAX_KEYS 4

struct keys {
	unsigned char k[MAX_KEYS][crypto_secretbox_KEYBYTES];
	int n;                     /* k[0] seals; every key opens */
};

static char *key_path(const char *home)
{
	return xasprintf("%s/secret.key", home);
}

/* Reads the key file: one key per line (64 hex digits), the first the current one and the
 * others kept while a rotation is under way. 1 when read, 0 when there is none, -1 on a bad file. */
static int read_keys(const char *path, struct keys *ks, char **err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = read_file(path, 4096, &text, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		*err = xasprintf("cannot read the key file %s: %s", path, strerror(-rc));
		return -1;
	}
	ks->n = 0;
	char *save = NULL;
	bool ok = true;
	for (char *line = strtok_r(text, "\r\n", &save); line && ok; line = strtok_r(NULL, "\r\n", &save))
		if (ks->n < MAX_KEYS)
			ok = parse_hex_key(line, ks->k[ks->n++]);
	sodium_memzero(text, len);
	free(text);
	if (!ok || ks->n == 0) {
		*err = xasprintf("the key file %s does not hold keys of 64 hex digits, one per line", path);
		return -1;
	}
	return 1;
}

static int write_keys(const char *path, const struct keys *ks, char **err)
{
	char text[MAX_KEYS * (KEY_HEX + 1) + 1] = "";
	for (int i = 0; i < ks->n; i++) {
		char hex[KEY_HEX + 1];
		sodium_bin2hex(hex, sizeof(hex), ks->k[i], crypto_secretbox_KEYBYTES);
		strcat(text, hex);
		strcat(text, "\n");
		sodium_memzero(hex, sizeof(hex));
	}
	mode_t old = umask(077);
	int rc = write_file_atomic(path, text, strlen(text), true);
	umask(old);
	sodium_memzero(text, sizeof(text));
	if (rc < 0)
		*err = xasprintf("cannot write the key file %s: %s", path, strerror(-rc));
	return rc;
}

/* The keys: $SLUICE_SECRET_KEY, else the key file (made with a random key when create). */
static int load_keys(const char *home, bool create, struct keys *ks, char **err)
{
	if (!init_sodium(err))
		return -EIO;
	const char *env = getenv("SLUICE_SECRET_KEY");
	if (env && *env) {
		ks->n = 1;
		if (!parse_hex_key(env, ks->k[0])) {
			*err = xstrdup("SLUICE_SECRET_KEY must be 64 hex digits (32 bytes)");
			return -EINVAL;
		}
		return 0;
	}
	char *path = key_path(home);
	int rc = read_keys(path, ks, err);
	if (rc == 0 && create) {
		ks->n = 1;
		randombytes_buf(ks->k[0], crypto_secretbox_KEYBYTES);
		rc = write_keys(path, ks, err) < 0 ? -1 : 1;
	} else if (rc == 0) {
		*err = xasprintf("there is no key to open secrets (%s is missing)", path);
		rc = -1;
	}
	free(path);
	return rc < 0 ? -ENOKEY : 0;
}

static char *seal_with(const unsigned char *key, const char *plain)
{
	size_t n = strlen(plain), blen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
	unsigned char *buf = xmalloc(blen);
	randombytes_buf(buf, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(buf + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain, n, buf, key);
	size_t b64 = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_ORIGINAL);
	char *out = xmalloc(strlen(PREFIX) + b64);
	strcpy(out, PREFIX);
	sodium_bin2base64(out + strlen(PREFIX), b64, buf, blen, sodium_base64_VARIANT_ORIGINAL);
	free(buf);
	return out;
}

static char *unseal_with(const unsigned char *key, const char *sealed)
{
	if (strncmp(sealed, PREFIX, strlen(PREFIX)))
		return NULL;
	const char *b64 = sealed + strlen(PREFIX);
	size_t cap = strlen(b64), blen = 0;
	unsigned char *buf = xmalloc(cap + 1);
	char *out = NULL;
	if (sodium_base642bin(buf, cap, b64, strlen(b64), NULL, &blen, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    blen >= crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
		size_t n = blen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
		out = xmalloc(n + 1);
		if (crypto_secretbox_open_easy((unsigned char *)out, buf + crypto_secretbox_NONCEBYTES,
					       blen - crypto_secretbox_NONCEBYTES, buf, key) == 0) {
			out[n] = '\0';
		} else {
			free(out);
			out = NULL;
		}
	}
	free(buf);
	return out;
}

char *secrets_seal(const char *home, const char *plain, char **err)
{
	struct keys ks;
	if (load_keys(home, true, &ks, err) < 0)
		return NULL;
	char *out = seal_with(ks.k[0], plain);
	sodium_memzero(&ks, sizeof(ks));
	return out;
}

static char *unseal_any(const struct keys *ks, const char *sealed)
{
	char *out = NULL;
	for (int i = 0; i < ks->n && !out; i++)
		out = unseal_with(ks->k[i], sealed);
	return out;
}

char *secrets_unseal(const char *home, const char *sealed, char **err)
{
	struct keys ks;
	if (load_keys(home, false, &ks, err) < 0)
		return NULL;
	char *out = unseal_any(&ks, sealed);
	sodium_memzero(&ks, sizeof(ks));
	if (!out)
		*err = xstrdup("the secret key does not open this value (was the key file replaced?)");
	return out;
}

/* Re-seals *value under the first key of ks; false when no key opens it. */
static bool reseal(char **value, const struct keys *ks)
{
	char *plain = unseal_any(ks, *value);
	if (!plain)
		return false;
	free(*value);
	*value = seal_with(ks->k[0], plain);
	sodium_memzero(plain, strlen(plain));
	free(plain);
	return true;
}

static int reseal_all(struct store *w, const struct keys *ks, char **err)
{
	struct var_row *vars = NULL;
	struct conn_row *conns = NULL;
	int nv = store_var_list(w, &vars), nc = store_conn_list(w, &conns), count = 0, rc = 0;
	for (int i = 0; i < nv && rc == 0; i++) {
		if (!vars[i].is_encrypted)
			continue;
		if (!reseal(&vars[i].val, ks) && (rc = -EBADMSG))
			*err = xasprintf("variable '%s' does not open with the current key", vars[i].key);
		else if ((rc = store_var_put(w, &vars[i], false)) == 0)
			count++;
	}
	for (int i = 0; i < nc && rc == 0; i++) {
		bool ok = (!conns[i].is_encrypted || !conns[i].password || reseal(&conns[i].password, ks)) &&
			  (!conns[i].is_extra_encrypted || !conns[i].extra || reseal(&conns[i].extra, ks));
		if (!ok && (rc = -EBADMSG))
			*err = xasprintf("connection '%s' does not open with the current key", conns[i].conn_id);
		else if ((conns[i].is_encrypted || conns[i].is_extra_encrypted) &&
			 (rc = store_conn_put(w, &conns[i], false)) == 0)
			count += (conns[i].is_encrypted && conns[i].password) + (conns[i].is_extra_encrypted && conns[i].extra);
	}
	for (int i = 0; i < nv; i++)
		var_row_free(&vars[i]);
	for (int i = 0; i < nc; i++)
		conn_row_free(&conns[i]);
	free(vars);
	free(conns);
	if (rc < 0 && !*err)
		*err = xstrdup("cannot write the re-sealed values");
	return rc < 0 ? rc : count;
}

int secrets_rotate(struct store *w, const char *home, char **err)
{
	struct keys ks, now;
	if (getenv("SLUICE_SECRET_KEY")) {
		*err = xstrdup("the key comes from SLUICE_SECRET_KEY: rotate it where that variable is set");
		return -EPERM;
	}
	int rc = load_keys(home, true, &ks, err);
	if (rc < 0)
		return rc;
	/* The new key goes first in the file, the old ones stay after it, before anything is sealed
	 * with it: a crash at any point leaves a file whose keys open every value. */
	memmove(ks.k[1], ks.k[0], (size_t)(ks.n < MAX_KEYS ? ks.n : MAX_KEYS - 1) * crypto_secretbox_KEYBYTES);
	ks.n = ks.n < MAX_KEYS ? ks.n + 1 : MAX_KEYS;
	randombytes_buf(ks.k[0], crypto_secretbox_KEYBYTES);
	char *path = key_path(home);
	if ((rc = write_keys(path, &ks, err)) < 0)
		goto out;
	if ((rc = store_begin(w)) < 0) {
		*err = xstrdup("cannot start a transaction");
		goto out;
	}
	int count = reseal_all(w, &ks, err);
	if (count < 0 || (rc = store_commit(w)) < 0) {
		store_rollback(w);
		rc = count < 0 ? count : rc;
		if (!*err)
			*err = xstrdup("cannot commit the re-sealed values");
		goto out;
	}
	/* Everything is under the new key: the old ones go. */
	now = ks;
	now.n = 1;
	rc = write_keys(path, &now, err) < 0 ? -EIO : count;
	sodium_memzero(&now, sizeof(now));
out:
	sodium_memzero(&ks, sizeof(ks));
	free(path);
	return rc;
}
