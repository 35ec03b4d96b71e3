/* kc-cluster-ctl listen: follows the logout notices of a namespace, from the capped stream
 * <namespace>:logout:events, and prints one JSON line per notice, so a shell script, a sidecar
 * or a test can act on it. */
#ifndef KCHUB_LISTEN_H
#define KCHUB_LISTEN_H

#include "error.h"
#include "redis_conn.h"

struct listen_settings {
    const struct redis_settings *redis;
    const char *namespace_name;
    const char *from_id; /* "$": notices added from now on; "0": all; else after this entry ID */
};

/* Reads the notices after from_id, then follows new ones with XREAD BLOCK until SIGTERM or
 * SIGINT. Each notice goes to stdout as one line: its members with "id" (the stream entry ID)
 * first. Reconnects with capped backoff after a lost connection and resumes after the last ID it
 * printed, so none is missed or printed twice. An entry that is not a valid notice is logged and
 * skipped. Returns 0 after a stop signal, or -1 with err set when it cannot start. */
int listen_run(const struct listen_settings *settings, struct error *err);

#endif
