/* Secrets at rest: connection passwords, and variables and connection extras whose names look
 * secret, are sealed in SQLite with libsodium's secretbox (XSalsa20-Poly1305) under a key kept
 * outside the database: $SLUICE_SECRET_KEY (64 hex digits) when set, else $SLUICE_HOME/secret.key
 * (0600, made with a random key on first use). `sluice db rotate-key` re-seals everything under
 * a new key file. A sealed value reads "sealed:v1:" followed by base64 of nonce and box. */
#ifndef SLUICE_SECRETS_H
#define SLUICE_SECRETS_H

#include <stdbool.h>

#include "orchestrator/store.h"

/* Whether a variable key or extra field names a secret, as Airflow decides (it contains
 * password, secret, token, api_key, private_key, passphrase, authorization, ... in any case). */
bool secrets_name_is_sensitive(const char *name);

/* Seals plain with the key of home. Returns a new string, or NULL with *err (no key, a bad
 * $SLUICE_SECRET_KEY, a key file that cannot be written). */
char *secrets_seal(const char *home, const char *plain, char **err);
/* Opens a sealed value: a new string, or NULL with *err (the key does not open it). While a
 * rotation is half done, the new key is tried too. */
char *secrets_unseal(const char *home, const char *sealed, char **err);

/* `sluice db rotate-key`: a new random key; every sealed value is re-sealed under it in one
 * transaction of w; then the key file is replaced. Refused (-EPERM) when the key comes from
 * $SLUICE_SECRET_KEY. Returns how many values were re-sealed, or a negative error with *err. */
int secrets_rotate(struct store *w, const char *home, char **err);

#endif
