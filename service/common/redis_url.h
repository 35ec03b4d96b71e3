/* Parsing redis:// and rediss:// URLs into connection settings. */
#ifndef KCHUB_REDIS_URL_H
#define KCHUB_REDIS_URL_H

#include "error.h"
#include "redis_conn.h"

/* Parses "redis[s]://[[user][:password]@]host[:port][/database]". The host may be a bracketed
 * IPv6 address; user and password are percent-decoded; the port defaults to 6379. Fills host,
 * port, username, password, database and tls in *out with new strings (release them with
 * redis_settings_dispose) and leaves the other fields alone. Returns 0, or -1 with err saying
 * which part is invalid; err never contains the password. */
int redis_url_parse(const char *url, struct redis_settings *out, struct error *err);

/* Frees the strings of s and sets them to NULL. */
void redis_settings_dispose(struct redis_settings *s);

#endif
