/* kc-cluster-hub: serves one merged JWKS per namespace, folded from the namespace's Redis key
 * stream. main wires the modules together: configuration, the stream thread, the HTTP listener,
 * and the signals that stop them. */
#include "config.h"
#include "error.h"
#include "admin_server.h"
#include "http_metrics.h"
#include "http_server.h"
#include "logout_fanout.h"
#include "logout_receiver.h"
#include "log.h"
#include "namespace.h"
#include "redis_check.h"
#include "stream_sync.h"

#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_CONFIG 2
#define EXIT_REDIS  3 /* Redis rejected the credentials, certificates or ACL */
#define MODULE      "main"

static const char usage_text[] =
    "Usage: kc-cluster-hub [--config FILE] [--check-config]\n"
    "       kc-cluster-hub --help | --version\n"
    "\n"
    "Serves GET /<namespace>/jwks: the public keys that the instances of each namespace publish\n"
    "to the Redis stream <namespace>:jwks, merged into one JWKS for Keycloak.\n"
    "\n"
    "  --config FILE    read settings from a JSON file; environment variables override it\n"
    "  --check-config   validate the settings, print a summary and exit\n"
    "  --help           print this text\n"
    "  --version        print the version\n"
    "\n"
    "Environment (the single-namespace setup needs no file):\n"
    "  KCHUB_NAMESPACE              namespace, or several separated by commas (required)\n"
    "  KCHUB_LISTEN                 HOST:PORT to listen on (default 127.0.0.1:8080)\n"
    "  KCHUB_REDIS_URL              redis://[user[:password]@]host[:port][/db], rediss:// for\n"
    "                               TLS (default redis://127.0.0.1:6379)\n"
    "  KCHUB_REDIS_PASSWORD         Redis password, overriding the URL's\n"
    "  KCHUB_REDIS_PASSWORD_FILE    file holding the Redis password (wins over the others)\n"
    "  KCHUB_REDIS_CLIENT_NAME      CLIENT SETNAME value; empty sends none (default kc-cluster-hub)\n"
    "  KCHUB_REDIS_CONNECT_TIMEOUT_MS, KCHUB_REDIS_COMMAND_TIMEOUT_MS  (default 2000 each)\n"
    "  KCHUB_REDIS_TLS_CA_FILE      PEM CA certificates that verify Redis (default: system store)\n"
    "  KCHUB_REDIS_TLS_SERVER_NAME  name Redis's certificate must carry, sent as SNI\n"
    "                               (default: the URL's host)\n"
    "  KCHUB_REDIS_TLS_CERT_FILE, KCHUB_REDIS_TLS_KEY_FILE  PEM client certificate and key\n"
    "  KCHUB_REDIS_TLS_VERIFY       true or false: verify the certificate (default true)\n"
    "  KCHUB_REDIS_CHECK_ACCESS     true or false: check the ACL at start (default true)\n"
    "  KCHUB_LEASE_MAX_MS           longest key lease accepted, ms (default 3600000)\n"
    "  KCHUB_RETIRE_GRACE_MS        how long a retired key stays served, ms (default 120000)\n"
    "  KCHUB_CLOCK_AHEAD_MAX_MS     how far an entry ID may lie ahead of Redis's clock, ms\n"
    "                               (default 5000)\n"
    "  KCHUB_KEYS_MAX               live keys per namespace at most (default 100000)\n"
    "  KCHUB_JWKS_CACHE_CONTROL     Cache-Control of JWKS responses (default no-cache)\n"
    "  KCHUB_HTTP_THREADS           HTTP worker threads (default: one per CPU)\n"
    "  KCHUB_HTTP_CONNECTION_LIMIT, KCHUB_HTTP_CONNECTION_TIMEOUT_S  (default 10000, 30)\n"
    "  KCHUB_HTTP_BODY_MAX_BYTES    request bodies larger than this get 413 (default 65536)\n"
    "  KCHUB_ADMIN_LISTEN           HOST:PORT of /healthz, /readyz, /metrics and\n"
    "                               /<namespace>/keys (default 127.0.0.1:8081)\n"
    "  KCHUB_SHUTDOWN_DRAIN_MS      how long SIGTERM waits for open connections (default 5000)\n"
    "  KCHUB_DEGRADED_NOT_READY_AFTER_MS\n"
    "                               report not ready once Redis is lost this long; 0 keeps a\n"
    "                               degraded hub ready (default 0)\n"
    "  KCHUB_LOGOUT_ISSUER, KCHUB_LOGOUT_CLIENT_ID\n"
    "                               accept back-channel logouts of this client of this issuer\n"
    "                               (one namespace only; the config file sets them per namespace)\n"
    "  KCHUB_LOGOUT_JWKS_URL        realm keys URL (default: discovery from the issuer)\n"
    "  KCHUB_LOGOUT_ALGS            accepted token algorithms, comma-separated (default RS256)\n"
    "  KCHUB_LOGOUT_CLOCK_SKEW_MS, KCHUB_LOGOUT_MAX_AGE_MS  (default 15000, 120000)\n"
    "  KCHUB_LOGOUT_REQUIRE_EXP     true to reject tokens without exp (default false)\n"
    "  KCHUB_LOGOUT_CA_FILE, KCHUB_LOGOUT_REFRESH_INTERVAL_MS, KCHUB_LOGOUT_FETCH_TIMEOUT_MS,\n"
    "  KCHUB_LOGOUT_STREAM_MAX_LEN  (default system CAs, 10000, 3000, 10000)\n"
    "  KCHUB_LOG_LEVEL              debug, info, warn or error (default info)\n"
    "  KCHUB_LOG_FORMAT             text or json (default text)\n"
    "\n"
    "Exit status: 0 after SIGTERM or SIGINT, 1 when it cannot start, 2 for invalid settings,\n"
    "3 when Redis rejects the configured credentials, certificates or ACL.\n";

struct options {
    const char *config_path;
    int check_only;
};

static const char *lookup_environment(const char *name)
{
    return getenv(name);
}

/* Returns -1 to continue, or the exit status to end with. */
static int parse_options(int argc, char **argv, struct options *out)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    memset(out, 0, sizeof(*out));
    int option;
    while ((option = getopt_long(argc, argv, "c:hv", long_options, NULL)) != -1) {
        switch (option) {
        case 'c':
            out->config_path = optarg;
            break;
        case 'k':
            out->check_only = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_SUCCESS;
        case 'v':
            printf("kc-cluster-hub %s\n", KCHUB_VERSION);
            return EXIT_SUCCESS;
        default:
            fputs("Run kc-cluster-hub --help for the options.\n", stderr);
            return EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kc-cluster-hub: unexpected argument \"%s\"; run kc-cluster-hub --help\n",
                argv[optind]);
        return EXIT_CONFIG;
    }
    return -1;
}

static struct hub_namespace **create_namespaces(const struct hub_config *config)
{
    struct hub_namespace **list = calloc(config->namespace_count, sizeof(*list));
    for (size_t i = 0; list != NULL && i < config->namespace_count; i++) {
        list[i] = hub_namespace_create(config->namespaces[i].name, config->retire_grace_ms,
                                       (size_t)config->keys_max);
        if (list[i] == NULL)
            return NULL; /* Out of memory at start: the process exits. */
    }
    return list;
}

/* Logout jobs per HTTP thread: each job thread holds one Redis connection while it waits. */
#define LOGOUT_WORKERS_PER_HTTP_THREAD 2

/* Creates the Redis pool and a receiver for each namespace with logout settings, and fetches the
 * realms' keys once. Sets *fanout to NULL when no namespace has logout settings. */
static int start_logout(const struct hub_config *config, struct hub_namespace **list,
                        size_t workers, struct logout_fanout **fanout, struct error *err)
{
    *fanout = NULL;
    bool wanted = false;
    for (size_t i = 0; i < config->namespace_count; i++)
        wanted = wanted || config->namespaces[i].logout != NULL;
    if (!wanted)
        return 0;
    *fanout = logout_fanout_create(&config->redis, workers, err);
    if (*fanout == NULL)
        return -1;
    for (size_t i = 0; i < config->namespace_count; i++) {
        const struct logout_config *settings = config->namespaces[i].logout;
        if (settings == NULL)
            continue;
        list[i]->logout = logout_receiver_create(list[i]->name, settings, *fanout, err);
        if (list[i]->logout == NULL)
            return -1;
        logout_receiver_prefetch(list[i]->logout);
    }
    return 0;
}

static void stop_logout(struct hub_namespace **list, size_t count, struct logout_fanout *fanout)
{
    for (size_t i = 0; i < count; i++) {
        logout_receiver_destroy(list[i]->logout);
        list[i]->logout = NULL;
    }
    logout_fanout_destroy(fanout);
}

/* Blocks the stop signals in every thread, so that only sigwait in main receives them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int serve(const struct hub_config *config)
{
    sigset_t stop_signals;
    block_signals(&stop_signals);
    struct hub_namespace **list = create_namespaces(config);
    if (list == NULL) {
        log_error(MODULE, "out of memory creating the namespaces");
        return EXIT_FAILURE;
    }
    struct stream_sync_settings sync_settings = {
        .lease_max_ms = config->lease_max_ms,
        .retire_grace_ms = config->retire_grace_ms,
        .clock_ahead_max_ms = config->clock_ahead_max_ms,
        .cache_control = config->cache_control,
    };
    struct http_settings http_settings = {
        .listen = config->listen,
        .threads = (unsigned)config->http_threads,
        .connection_limit = (unsigned)config->http_connection_limit,
        .connection_timeout_s = (unsigned)config->http_connection_timeout_s,
        .body_max_bytes = (size_t)config->http_body_max_bytes,
        .logout_workers = (size_t)config->http_threads * LOGOUT_WORKERS_PER_HTTP_THREAD,
        .metrics = http_metrics_create(),
    };
    struct admin_settings admin_settings = {
        .listen = config->admin_listen,
        .metrics = http_settings.metrics,
        .degraded_not_ready_after_ms = config->degraded_not_ready_after_ms,
    };
    struct error err = {""};
    int status = EXIT_FAILURE;
    struct stream_sync *sync = NULL;
    struct http_server *http = NULL;
    struct logout_fanout *fanout = NULL;
    struct admin_server *admin = NULL;
    if (http_settings.metrics != NULL &&
        start_logout(config, list, http_settings.logout_workers, &fanout, &err) == 0)
        admin = admin_server_start(&admin_settings, list, config->namespace_count, &err);
    if (admin != NULL)
        http = http_server_start(&http_settings, list, config->namespace_count, &err);
    if (http != NULL &&
        redis_check_start(&config->redis, list, config->namespace_count,
                          !config->redis_skip_access_check,
                          &sync_settings.check_access_on_connect) == REDIS_CHECK_REJECTED) {
        status = EXIT_REDIS;
        goto stop;
    }
    if (http != NULL)
        sync = stream_sync_start(&config->redis, list, config->namespace_count, &sync_settings, &err);
    if (http == NULL || sync == NULL) {
        log_error(MODULE, "cannot start: %s", err.message);
        goto stop;
    }
    int received = 0;
    sigwait(&stop_signals, &received);
    log_info(MODULE, "received %s, stopping", received == SIGTERM ? "SIGTERM" : "SIGINT");
    status = EXIT_SUCCESS;

    http_server_drain(http, config->shutdown_drain_ms);

stop:
    http_server_stop(http);
    stream_sync_stop(sync);
    admin_server_stop(admin);
    http_metrics_destroy(http_settings.metrics);
    stop_logout(list, config->namespace_count, fanout);
    for (size_t i = 0; i < config->namespace_count; i++)
        hub_namespace_destroy(list[i]);
    free(list);
    return status;
}

int main(int argc, char **argv)
{
    struct options options;
    int early = parse_options(argc, argv, &options);
    if (early >= 0)
        return early;

    struct hub_config config;
    struct error err = {""};
    if (config_load(&config, options.config_path, lookup_environment, &err) != 0) {
        fprintf(stderr, "kc-cluster-hub: %s\n", err.message);
        return EXIT_CONFIG;
    }
    log_configure(config.log_level, config.log_format);
    log_info(MODULE, "kc-cluster-hub %s starting", KCHUB_VERSION);
    config_log_summary(&config);
    int status = EXIT_SUCCESS;
    if (!options.check_only) {
        curl_global_init(CURL_GLOBAL_DEFAULT); /* Before any thread starts, as libcurl requires. */
        status = serve(&config);
        curl_global_cleanup();
    }
    config_dispose(&config);
    log_info(MODULE, "stopped with exit status %d", status);
    return status;
}
