#include "web/auth.h"

#include <crypt.h>
#include <stdio.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base/log.h"

#define CACHE_SLOTS 64
#define CACHE_TTL (60 * USEC_PER_SEC)

static const char *const role_names[] = {"none", "viewer", "op", "admin"};

int auth_role_parse(const char *s)
{
	for (int i = ROLE_VIEWER; i <= ROLE_ADMIN; i++)
		if (s && !strcmp(s, role_names[i]))
			return i;
	return -1;
}

const char *auth_role_name(enum role r) { return role_names[r <= ROLE_ADMIN ? r : ROLE_NONE]; }

static void random_bytes(void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			fatal("getrandom");
		}
		p += got;
		n -= (size_t)got;
	}
}

char *auth_hash_password(const char *password, char **err)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	char *out = NULL;
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt))) {
		*err = xasprintf("cannot make a salt: %s", strerror(errno));
		goto done;
	}
	const char *h = crypt_rn(password, salt, cd, sizeof(*cd));
	if (!h || h[0] == '*') {
		*err = xstrdup("cannot hash the password (yescrypt unavailable?)");
		goto done;
	}
	out = xstrdup(h);
done:
	free(cd);
	return out;
}

bool auth_check_password(const char *password, const char *hash)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *h = crypt_rn(password, hash, cd, sizeof(*cd));
	bool ok = false;
	if (h && h[0] != '*' && strlen(h) == strlen(hash)) {
		unsigned char diff = 0;
		for (size_t i = 0; hash[i]; i++)
			diff |= (unsigned char)(h[i] ^ hash[i]);
		ok = diff == 0;
	}
	free(cd);
	return ok;
}

char *auth_new_password(size_t n)
{
	static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	char *p = xmalloc(n + 1);
	unsigned char r;
	for (size_t i = 0; i < n;) {
		random_bytes(&r, 1);
		if (r < 256 - 256 % (sizeof(alphabet) - 1)) /* no modulo bias */
			p[i++] = alphabet[r % (sizeof(alphabet) - 1)];
	}
	p[n] = '\0';
	return p;
}

char *auth_new_token(void)
{
	unsigned char raw[20];
	char *t = xmalloc(4 + 40 + 1);
	random_bytes(raw, sizeof(raw));
	memcpy(t, "slc_", 4);
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(t + 4 + 2 * i, 3, "%02x", raw[i]);
	return t;
}

void auth_token_hash(const char *token, char out[65])
{
	sha256_hex(token, strlen(token), out);
}

/* A cache of password checks that passed, so that a client sending Basic credentials with every
 * request pays for yescrypt once: SHA-256 of the header -> SHA-256 of the password hash it was
 * verified against. The user's row is still read on every request, and the cached check only
 * counts while that row holds the same hash: a deleted user, a new password or a new role are
 * in effect for the very next request. Tokens are not cached (their lookup is one indexed read). */
static struct {
	char key[65];
	char verified[65];
	usec_t until;
} cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool cache_hit(const char *key, const char *verified)
{
	bool hit = false;
	usec_t now = mono_usec();
	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < CACHE_SLOTS && !hit; i++)
		hit = cache[i].until > now && !strcmp(cache[i].key, key) && !strcmp(cache[i].verified, verified);
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_put(const char *key, const char *verified)
{
	usec_t now = mono_usec();
	int slot = 0;
	pthread_mutex_lock(&cache_lock);
	/* The slot already holding this header, else the oldest: a client that keeps sending the same
	 * credentials must not fill every slot with copies and push other users' checks out. */
	for (int i = 0; i < CACHE_SLOTS; i++) {
		if (!strcmp(cache[i].key, key)) {
			slot = i;
			break;
		}
		if (cache[i].until < cache[slot].until)
			slot = i;
	}
	memcpy(cache[slot].key, key, 65);
	memcpy(cache[slot].verified, verified, 65);
	cache[slot].until = now + CACHE_TTL;
	pthread_mutex_unlock(&cache_lock);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes standard base64 into a NUL-terminated string (malloc'd), or NULL. */
static char *b64decode(const char *in)
{
	size_t n = strlen(in);
	char *out = xmalloc(n / 4 * 3 + 4);
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=')
			break;
		int v = b64val((unsigned char)in[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = ((acc << 6) | (unsigned)v) & 0xffffffu; /* at most 24 bits are pending */
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return out;
}

/* A hash of a random password, made once: an unknown user's password is checked against it, so
 * that a wrong user name costs the same as a wrong password and timing does not tell which. */
static char *dummy_hash;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
	char *err = NULL, *pw = auth_new_password(16);
	dummy_hash = auth_hash_password(pw, &err);
	free(err);
	free(pw);
}

static enum role check_basic(struct store *st, const char *header, const char *b64)
{
	char *pair = b64decode(b64), *hash = NULL, *role = NULL, key[65], verified[65];
	enum role r = ROLE_NONE;
	if (!pair)
		return ROLE_NONE;
	char *colon = strchr(pair, ':');
	if (colon) {
		*colon = '\0';
		if (store_user_get(st, pair, &hash, &role) == 0) {
			sha256_hex(header, strlen(header), key);
			sha256_hex(hash, strlen(hash), verified);
			if (cache_hit(key, verified) || auth_check_password(colon + 1, hash)) {
				r = (enum role)auth_role_parse(role);
				cache_put(key, verified);
			}
		} else {
			pthread_once(&dummy_once, make_dummy);
			if (dummy_hash)
				(void)auth_check_password(colon + 1, dummy_hash);
		}
	}
	free(pair);
	free(hash);
	free(role);
	return r;
}

enum role auth_check_header(struct store *st, const char *authorization)
{
	enum role r = ROLE_NONE;
	if (!authorization)
		return ROLE_NONE;
	if (!strncasecmp(authorization, "Basic ", 6)) {
		r = check_basic(st, authorization, authorization + 6);
	} else if (!strncasecmp(authorization, "Bearer ", 7)) {
		char h[65], *role = NULL;
		auth_token_hash(authorization + 7, h);
		if (store_token_role(st, h, &role) == 0)
			r = (enum role)auth_role_parse(role);
		free(role);
	}
	if ((int)r < 0)
		r = ROLE_NONE;
	return r;
}

char *auth_caller(struct store *st, const char *authorization)
{
	if (authorization && !strncasecmp(authorization, "Basic ", 6)) {
		char *pair = b64decode(authorization + 6);
		if (pair && strchr(pair, ':')) {
			*strchr(pair, ':') = '\0';
			return pair;
		}
		free(pair);
	} else if (authorization && !strncasecmp(authorization, "Bearer ", 7)) {
		char h[65], *name = NULL;
		auth_token_hash(authorization + 7, h);
		if (store_token_name(st, h, &name) == 0) {
			char *who = xasprintf("token:%s", name);
			free(name);
			return who;
		}
	}
	return xstrdup("anonymous");
}

int auth_ensure_admin(struct store *st, char **password)
{
	char *err = NULL;
	*password = NULL;
	int n = store_user_count(st);
	if (n != 0)
		return n < 0 ? -EIO : 0;
	char *pw = auth_new_password(16);
	char *hash = auth_hash_password(pw, &err);
	if (!hash) {
		log_warnx("%s", err);
		free(err);
		free(pw);
		return -EIO;
	}
	int rc = store_user_put(st, "admin", "admin", hash);
	free(hash);
	if (rc < 0) {
		free(pw);
		return rc;
	}
	*password = pw;
	return 1;
}

/* Back-off after failed logins, per user name (Basic) and per client address (other than
 * loopback, whose clients are local tools): the first THROTTLE_FREE failures in a row cost
 * nothing more, then each one blocks that user or address for twice as long as the one before,
 * from 1 s up to THROTTLE_MAX. A success resets it. A blocked attempt is refused before any
 * password work, so guessing runs at a few tries per hour instead of ~60 a second. */
#define THROTTLE_SLOTS 512
#define THROTTLE_FREE 5
#define THROTTLE_MAX (300 * USEC_PER_SEC)

static struct {
	char key[65];
	int failures;
	usec_t until, last;
} throttle[THROTTLE_SLOTS];
static pthread_mutex_t throttle_lock = PTHREAD_MUTEX_INITIALIZER;

/* The slot of key, or a free (the least recently used) one when create; -1 otherwise. */
static int throttle_slot(const char *key, bool create)
{
	int lru = 0;
	for (int i = 0; i < THROTTLE_SLOTS; i++) {
		if (!strcmp(throttle[i].key, key))
			return i;
		if (throttle[i].last < throttle[lru].last)
			lru = i;
	}
	if (!create)
		return -1;
	memset(&throttle[lru], 0, sizeof(throttle[lru]));
	memcpy(throttle[lru].key, key, 65);
	return lru;
}

static void throttle_keys(const char *authorization, const char *client, char keys[2][65], int *n)
{
	*n = 0;
	if (authorization && !strncasecmp(authorization, "Basic ", 6)) {
		char *pair = b64decode(authorization + 6), *colon = pair ? strchr(pair, ':') : NULL;
		if (colon) {
			*colon = '\0';
			char *k = xasprintf("user:%s", pair);
			sha256_hex(k, strlen(k), keys[(*n)++]);
			free(k);
		}
		free(pair);
	}
	if (client && strncmp(client, "127.", 4) && strcmp(client, "::1")) {
		char *k = xasprintf("addr:%s", client);
		sha256_hex(k, strlen(k), keys[(*n)++]);
		free(k);
	}
}

enum role auth_check(struct store *st, const char *authorization, const char *client, usec_t *retry_after)
{
	char keys[2][65];
	int n;
	usec_t now = mono_usec();
	*retry_after = 0;
	throttle_keys(authorization, client, keys, &n);
	pthread_mutex_lock(&throttle_lock);
	for (int i = 0; i < n; i++) {
		int s = throttle_slot(keys[i], false);
		if (s >= 0 && throttle[s].until > now && throttle[s].until - now > *retry_after)
			*retry_after = throttle[s].until - now;
	}
	pthread_mutex_unlock(&throttle_lock);
	if (*retry_after)
		return ROLE_NONE;
	enum role r = auth_check_header(st, authorization);
	if (!authorization)
		return r;
	pthread_mutex_lock(&throttle_lock);
	for (int i = 0; i < n; i++) {
		int s = throttle_slot(keys[i], r == ROLE_NONE);
		if (s < 0)
			continue;
		throttle[s].last = now;
		if (r != ROLE_NONE) {
			throttle[s].failures = 0;
			throttle[s].until = 0;
		} else if (++throttle[s].failures > THROTTLE_FREE) {
			int k = throttle[s].failures - THROTTLE_FREE - 1;
			usec_t d = k >= 9 ? THROTTLE_MAX : USEC_PER_SEC << k;
			throttle[s].until = now + (d < THROTTLE_MAX ? d : THROTTLE_MAX);
		}
	}
	pthread_mutex_unlock(&throttle_lock);
	return r;
}

static void b64encode(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? abc[v & 63] : '=';
	}
	out[o] = '\0';
}

enum role auth_login(struct store *st, const char *user, const char *password, const char *client, usec_t *retry_after)
{
	char *pair = xasprintf("%s:%s", user, password);
	size_t n = strlen(pair);
	char *header = xmalloc(6 + 4 * (n / 3 + 1) + 1);
	memcpy(header, "Basic ", 6);
	b64encode((const unsigned char *)pair, n, header + 6);
	enum role r = auth_check(st, header, client, retry_after);
	explicit_bzero(pair, n);
	explicit_bzero(header, strlen(header));
	free(pair);
	free(header);
	return r;
}
