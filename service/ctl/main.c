/* kc-cluster-ctl: publishes an application instance's public keys to kc-cluster-hub through the
 * Redis stream <namespace>:jwks, and retires them. */
#include "key_source.h"
#include "listen.h"
#include "log.h"
#include "protocol.h"
#include "publish.h"
#include "redis_tls.h"
#include "redis_url.h"
#include "tls_options.h"
#include "usage.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE           2
#define CTL_JWKS_URLS_MAX    16
#define CTL_LEASE_DEFAULT_MS 60000
#define CTL_LEASE_MAX_MS     86400000
/* The hub's default keys.lease_max_ms; a longer lease is rejected unless the hub allows it. */
#define CTL_HUB_LEASE_MAX_DEFAULT_MS 3600000
#define CTL_SAFE_WINDOW_DEFAULT_MS   11000
#define CTL_SAFE_WINDOW_MAX_MS       3600000
/* Keycloak refetches a client's JWKS at most once per this many ms per node (its
 * minTimeBetweenRequests, 10 s by default). */
#define CTL_KEYCLOAK_REFETCH_MS 10000
#define CTL_REDIS_TIMEOUT_MS    2000
#define CTL_PASSWORD_MAX_BYTES  1024

enum subcommand { CMD_PUBLISH, CMD_RETIRE, CMD_LISTEN };

enum option_id {
    OPT_NAMESPACE = 256,
    OPT_KEY,
    OPT_REDIS_URL,
    OPT_REDIS_TLS_CA_FILE,
    OPT_REDIS_TLS_SERVER_NAME,
    OPT_REDIS_TLS_CERT_FILE,
    OPT_REDIS_TLS_KEY_FILE,
    OPT_REDIS_TLS_VERIFY,
    OPT_INSTANCE,
    OPT_KID,
    OPT_ALG,
    OPT_LEASE_MS,
    OPT_JWKS_URL,
    OPT_SAFE_WINDOW_MS,
    OPT_READY_FILE,
    OPT_ONCE,
    OPT_FROM,
    OPT_HELP,
    OPT_VERSION,
};

/* The command line after parsing; strings point into argv or the environment. */
struct ctl_options {
    enum subcommand command;
    const char *namespace_name;
    const char *key_paths[PUBLISH_KEYS_MAX];
    size_t key_count;
    const char *redis_url;
    struct tls_options tls;
    const char *instance;
    const char *kid;
    const char *alg;
    int64_t lease_ms;
    const char *jwks_urls[CTL_JWKS_URLS_MAX];
    size_t url_count;
    int64_t safe_window_ms;
    const char *ready_file;
    bool once;
    const char *from_id; /* listen: where to start reading */
    char default_instance[PROTOCOL_INSTANCE_MAX_BYTES * 2]; /* HOSTNAME-PID when not given */
    bool seen[OPT_VERSION + 1]; /* options given, to reject repeats and misplaced ones */
};

static const struct option long_options[] = {
    {"namespace", required_argument, NULL, OPT_NAMESPACE},
    {"key", required_argument, NULL, OPT_KEY},
    {"redis-url", required_argument, NULL, OPT_REDIS_URL},
    {"redis-tls-ca-file", required_argument, NULL, OPT_REDIS_TLS_CA_FILE},
    {"redis-tls-server-name", required_argument, NULL, OPT_REDIS_TLS_SERVER_NAME},
    {"redis-tls-cert-file", required_argument, NULL, OPT_REDIS_TLS_CERT_FILE},
    {"redis-tls-key-file", required_argument, NULL, OPT_REDIS_TLS_KEY_FILE},
    {"redis-tls-verify", required_argument, NULL, OPT_REDIS_TLS_VERIFY},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"kid", required_argument, NULL, OPT_KID},
    {"alg", required_argument, NULL, OPT_ALG},
    {"lease-ms", required_argument, NULL, OPT_LEASE_MS},
    {"jwks-url", required_argument, NULL, OPT_JWKS_URL},
    {"safe-window-ms", required_argument, NULL, OPT_SAFE_WINDOW_MS},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"once", no_argument, NULL, OPT_ONCE},
    {"from", required_argument, NULL, OPT_FROM},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static const char *subcommand_name(enum subcommand command)
{
    static const char *const names[] = {"publish", "retire", "listen"};
    return names[command];
}

/* Prints a usage error naming the subcommand's help and returns EXIT_USAGE. */
static int usage_error(const char *subcommand, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *subcommand, const char *format, ...)
{
    va_list args;
    fputs("kc-cluster-ctl: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    if (subcommand != NULL)
        fprintf(stderr, "\nRun 'kc-cluster-ctl %s --help' for usage.\n", subcommand);
    else
        fputs("\nRun 'kc-cluster-ctl --help' for usage.\n", stderr);
    return EXIT_USAGE;
}

static const char *option_name(int id)
{
    for (const struct option *o = long_options; o->name != NULL; o++) {
        if (o->val == id)
            return o->name;
    }
    return "?";
}

/* Parses a decimal integer in [min, max]. Returns 0, or -1 for anything else. */
static int parse_ms(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return -1;
    *out = (int64_t)value;
    return 0;
}

static int parse_ms_option(int id, const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (parse_ms(text, min, max, out) == 0)
        return 0;
    return usage_error("publish",
                       "--%s: invalid value \"%s\"; expected an integer number of "
                       "milliseconds from %lld to %lld",
                       option_name(id), text, (long long)min, (long long)max);
}

/* Stores one option's value. Returns 0, or EXIT_USAGE after printing the error. */
static int store_option(struct ctl_options *o, int id, const char *value)
{
    const char *cmd = subcommand_name(o->command);
    bool repeatable = id == OPT_KEY || id == OPT_JWKS_URL;
    if (o->seen[id] && !repeatable)
        return usage_error(cmd, "--%s is given twice; give it once", option_name(id));
    o->seen[id] = true;
    switch (id) {
    case OPT_NAMESPACE:
        o->namespace_name = value;
        return 0;
    case OPT_KEY:
        if (o->key_count == PUBLISH_KEYS_MAX)
            return usage_error(cmd, "--key is given more than %d times", PUBLISH_KEYS_MAX);
        o->key_paths[o->key_count++] = value;
        return 0;
    case OPT_REDIS_URL:
        o->redis_url = value;
        return 0;
    case OPT_REDIS_TLS_CA_FILE:
        o->tls.ca_file = value;
        return 0;
    case OPT_REDIS_TLS_SERVER_NAME:
        o->tls.server_name = value;
        return 0;
    case OPT_REDIS_TLS_CERT_FILE:
        o->tls.cert_file = value;
        return 0;
    case OPT_REDIS_TLS_KEY_FILE:
        o->tls.key_file = value;
        return 0;
    case OPT_REDIS_TLS_VERIFY:
        o->tls.verify = value;
        return 0;
    case OPT_INSTANCE:
        o->instance = value;
        return 0;
    case OPT_KID:
        o->kid = value;
        return 0;
    case OPT_ALG:
        o->alg = value;
        return 0;
    case OPT_LEASE_MS:
        return parse_ms_option(id, value, PROTOCOL_LEASE_MIN_MS, CTL_LEASE_MAX_MS, &o->lease_ms);
    case OPT_JWKS_URL:
        if (o->url_count == CTL_JWKS_URLS_MAX)
            return usage_error(cmd, "--jwks-url is given more than %d times", CTL_JWKS_URLS_MAX);
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
            return usage_error(cmd,
                               "--jwks-url: invalid URL \"%s\"; expected http://HOST[:PORT]"
                               "/NAMESPACE/jwks or https://...",
                               value);
        o->jwks_urls[o->url_count++] = value;
        return 0;
    case OPT_SAFE_WINDOW_MS:
        return parse_ms_option(id, value, 0, CTL_SAFE_WINDOW_MAX_MS, &o->safe_window_ms);
    case OPT_READY_FILE:
        if (value[0] == '\0')
            return usage_error(cmd, "--ready-file: the path is empty; give a file path");
        o->ready_file = value;
        return 0;
    case OPT_ONCE:
        o->once = true;
        return 0;
    case OPT_FROM:
        o->from_id = value;
        return 0;
    default:
        return usage_error(cmd, "internal error: unhandled option %d", id);
    }
}

/* Rejects options that belong to another subcommand. */
static int check_option_scope(const struct ctl_options *o)
{
    static const int publish_only[] = {
        OPT_KEY, OPT_ALG, OPT_LEASE_MS, OPT_JWKS_URL, OPT_SAFE_WINDOW_MS, OPT_READY_FILE, OPT_ONCE};
    static const int key_options[] = {OPT_INSTANCE, OPT_KID};
    const char *cmd = subcommand_name(o->command);
    if (o->command != CMD_LISTEN && o->seen[OPT_FROM])
        return usage_error(cmd, "--from is an option of listen, not of %s", cmd);
    if (o->command == CMD_PUBLISH)
        return 0;
    for (size_t i = 0; i < sizeof(publish_only) / sizeof(publish_only[0]); i++) {
        if (o->seen[publish_only[i]])
            return usage_error(cmd, "--%s is an option of publish, not of %s",
                               option_name(publish_only[i]), cmd);
    }
    for (size_t i = 0; o->command == CMD_LISTEN && i < 2; i++) {
        if (o->seen[key_options[i]])
            return usage_error(cmd, "--%s is not an option of listen", option_name(key_options[i]));
    }
    return 0;
}

/* Parses the options after the subcommand. Returns -1 to go on, or an exit status. */
static int parse_options(int argc, char **argv, struct ctl_options *o)
{
    const char *cmd = subcommand_name(o->command);
    opterr = 0;
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        if (id == 'h' || id == OPT_HELP) {
            const char *const texts[] = {ctl_usage_publish, ctl_usage_retire, ctl_usage_listen};
            fputs(texts[o->command], stdout);
            return 0;
        }
        if (id == OPT_VERSION) {
            printf("kc-cluster-ctl %s\n", KCHUB_VERSION);
            return 0;
        }
        if (id == ':')
            return usage_error(cmd, "%s needs a value", argv[optind - 1]);
        if (id == '?')
            return usage_error(cmd, "unknown option %s", argv[optind - 1]);
        int rc = store_option(o, id, optarg);
        if (rc != 0)
            return rc;
    }
    if (optind < argc)
        return usage_error(cmd, "unexpected argument \"%s\"; every value follows an option",
                           argv[optind]);
    int rc = check_option_scope(o);
    return rc != 0 ? rc : -1;
}

static const char *env_or_null(const char *name)
{
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

/* Fills unset options from the environment and defaults, and checks the combinations. Returns
 * -1 to go on, or EXIT_USAGE. */
static int apply_defaults(struct ctl_options *o)
{
    const char *cmd = subcommand_name(o->command);
    if (o->namespace_name == NULL)
        o->namespace_name = env_or_null("KCHUB_NAMESPACE");
    if (o->namespace_name == NULL)
        return usage_error(cmd, "--namespace is missing; give --namespace NS or set "
                                "KCHUB_NAMESPACE");
    if (!protocol_namespace_is_valid(o->namespace_name))
        return usage_error(cmd,
                           "invalid namespace \"%s\"; expected 1 to %d of A-Z a-z 0-9 . _ -"
                           ", starting with a letter or digit",
                           o->namespace_name, PROTOCOL_NAMESPACE_MAX_BYTES);
    if (o->redis_url == NULL)
        o->redis_url = env_or_null("KCHUB_REDIS_URL");
    if (o->redis_url == NULL)
        o->redis_url = CTL_DEFAULT_REDIS_URL;
    if (o->command == CMD_LISTEN) {
        if (o->from_id == NULL)
            o->from_id = "$";
        return -1;
    }
    if (o->instance == NULL)
        o->instance = env_or_null("KCHUB_INSTANCE");
    if (o->instance == NULL && o->command == CMD_RETIRE)
        return usage_error(cmd, "--instance is missing; give the id of the instance whose keys "
                                "to retire, or set KCHUB_INSTANCE");
    if (o->instance == NULL) {
        char host[HOST_NAME_MAX + 1] = "localhost";
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        /* At most 100 + 1 + 11 bytes, within PROTOCOL_INSTANCE_MAX_BYTES. */
        snprintf(o->default_instance, sizeof(o->default_instance), "%.100s-%ld", host,
                 (long)getpid());
        o->instance = o->default_instance;
    }
    if (!protocol_instance_is_valid(o->instance, strlen(o->instance)))
        return usage_error(cmd,
                           "invalid instance id \"%s\"; expected 1 to %d visible ASCII "
                           "characters other than '\"' and '\\'; set --instance",
                           o->instance, PROTOCOL_INSTANCE_MAX_BYTES);
    if (o->command == CMD_PUBLISH && o->key_count == 0)
        return usage_error(cmd, "--key is missing; give at least one --key FILE");
    if (o->kid != NULL && o->key_count > 1)
        return usage_error(cmd,
                           "--kid applies to one key, but --key is given %zu times; give "
                           "each key its kid in a JWK file, or drop --kid to use "
                           "thumbprints",
                           o->key_count);
    return -1;
}

/* Logs warnings for settings that work but defeat the purpose. */
static void warn_about_settings(const struct ctl_options *o)
{
    if (o->command != CMD_PUBLISH)
        return;
    if (o->lease_ms > CTL_HUB_LEASE_MAX_DEFAULT_MS)
        log_warn("ctl",
                 "--lease-ms %lld is over the hub's default keys.lease_max_ms of %d; the "
                 "hub rejects the entries unless its limit was raised",
                 (long long)o->lease_ms, CTL_HUB_LEASE_MAX_DEFAULT_MS);
    if (o->safe_window_ms <= CTL_KEYCLOAK_REFETCH_MS)
        log_warn("ctl",
                 "--safe-window-ms %lld is not longer than Keycloak's %d ms refetch "
                 "window; a Keycloak node may still reject tokens signed with the new key",
                 (long long)o->safe_window_ms, CTL_KEYCLOAK_REFETCH_MS);
    if (o->once && (o->url_count > 0 || o->ready_file != NULL) && o->lease_ms <= o->safe_window_ms)
        log_warn("ctl",
                 "with --once the lease of %lld ms ends before the safe window of %lld ms; "
                 "the keys stay served that long only if something else renews them",
                 (long long)o->lease_ms, (long long)o->safe_window_ms);
}

/* Reads a password file, dropping trailing newlines. Returns a new string, or NULL with a
 * message printed. */
static char *read_password_file(const char *path)
{
    char buf[CTL_PASSWORD_MAX_BYTES + 2];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("ctl", "KCHUB_REDIS_PASSWORD_FILE %s: cannot open the file: %s", path,
                  strerror(errno));
        return NULL;
    }
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 &&
           ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
        len += n > 0 ? (size_t)n : 0;
    close(fd);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    char *password = NULL;
    if (len > CTL_PASSWORD_MAX_BYTES)
        log_error("ctl", "KCHUB_REDIS_PASSWORD_FILE %s: longer than %d bytes", path,
                  CTL_PASSWORD_MAX_BYTES);
    else if (len == 0)
        log_error("ctl", "KCHUB_REDIS_PASSWORD_FILE %s: the file is empty", path);
    else if ((password = strdup(buf)) == NULL)
        log_error("ctl", "out of memory reading the Redis password");
    explicit_bzero(buf, sizeof(buf));
    return password;
}

static void replace_password(struct redis_settings *redis, char *password)
{
    if (redis->password != NULL) {
        explicit_bzero(redis->password, strlen(redis->password));
        free(redis->password);
    }
    redis->password = password;
}

/* Builds the Redis settings from the URL and the password variables. Returns -1 to go on, or
 * an exit status. */
static int build_redis_settings(const struct ctl_options *o, struct redis_settings *redis)
{
    struct error err;
    const char *cmd = subcommand_name(o->command);
    if (redis_url_parse(o->redis_url, redis, &err) != 0)
        return usage_error(cmd, "invalid Redis URL (--redis-url or KCHUB_REDIS_URL): %s",
                           err.message);
    redis->client_name = NULL; /* Some managed Redis services reject CLIENT SETNAME. */
    redis->connect_timeout_ms = CTL_REDIS_TIMEOUT_MS;
    redis->command_timeout_ms = CTL_REDIS_TIMEOUT_MS;
    if (tls_options_apply(&o->tls, redis, &err) != 0)
        return usage_error(cmd, "%s", err.message);
    redis_tls_log_settings(redis, "ctl");

    const char *password = env_or_null("KCHUB_REDIS_PASSWORD");
    const char *password_file = env_or_null("KCHUB_REDIS_PASSWORD_FILE");
    /* As in the hub: the file wins over the variable, which wins over the URL. */
    if (password_file != NULL) {
        char *from_file = read_password_file(password_file);
        if (from_file == NULL)
            return EXIT_FAILURE;
        replace_password(redis, from_file);
    } else if (password != NULL) {
        char *copy = strdup(password);
        if (copy == NULL)
            return EXIT_FAILURE;
        replace_password(redis, copy);
    }
    return -1;
}

static bool kid_is_taken(const struct jwk_public *keys, size_t count, const char *kid)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(keys[i].kid, kid) == 0)
            return true;
    }
    return false;
}

/* Loads every --key. Returns -1 to go on, or an exit status after logging the error. */
static int load_keys(const struct ctl_options *o, struct jwk_public *keys, size_t *count)
{
    for (size_t i = 0; i < o->key_count; i++) {
        struct error err;
        enum key_source_status status =
            key_source_load(o->key_paths[i], o->kid, o->alg, &keys[*count], &err);
        if (status != KEY_SOURCE_OK) {
            log_error("ctl", "%s", err.message);
            return status == KEY_SOURCE_INVALID ? EXIT_USAGE : EXIT_FAILURE;
        }
        (*count)++;
        if (kid_is_taken(keys, *count - 1, keys[*count - 1].kid)) {
            log_error("ctl",
                      "--key %s: kid %s is already used by another --key; give each key a "
                      "distinct kid",
                      o->key_paths[i], keys[*count - 1].kid);
            return EXIT_USAGE;
        }
    }
    return -1;
}

static int run_publish(const struct ctl_options *o, const struct redis_settings *redis)
{
    struct jwk_public keys[PUBLISH_KEYS_MAX];
    size_t key_count = 0;
    int rc = load_keys(o, keys, &key_count);
    if (rc < 0) {
        warn_about_settings(o);
        struct publish_settings settings = {
            .redis = redis,
            .namespace_name = o->namespace_name,
            .instance = o->instance,
            .keys = keys,
            .key_count = key_count,
            .lease_ms = o->lease_ms,
            .once = o->once,
            .jwks_urls = o->jwks_urls,
            .url_count = o->url_count,
            .safe_window_ms = o->safe_window_ms,
            .ready_file = o->ready_file,
        };
        struct error err;
        rc = EXIT_SUCCESS;
        if (publish_run(&settings, &err) != 0) {
            log_error("ctl", "%s", err.message);
            rc = EXIT_FAILURE;
        }
    }
    for (size_t i = 0; i < key_count; i++)
        jwk_public_dispose(&keys[i]);
    return rc;
}

static int run_retire(const struct ctl_options *o, const struct redis_settings *redis)
{
    struct error err;
    if (publish_retire(redis, o->namespace_name, o->instance, o->kid, &err) != 0) {
        log_error("ctl", "%s", err.message);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

static int run_listen(const struct ctl_options *o, const struct redis_settings *redis)
{
    struct listen_settings settings = {
        .redis = redis, .namespace_name = o->namespace_name, .from_id = o->from_id};
    struct error err;
    if (listen_run(&settings, &err) != 0) {
        log_error("ctl", "%s", err.message);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

/* Applies KCHUB_LOG_LEVEL and KCHUB_LOG_FORMAT. Returns -1 to go on, or EXIT_USAGE. */
static int configure_logging(void)
{
    enum log_level level = LOG_LEVEL_INFO;
    enum log_format format = LOG_FORMAT_TEXT;
    const char *level_text = env_or_null("KCHUB_LOG_LEVEL");
    const char *format_text = env_or_null("KCHUB_LOG_FORMAT");
    if (level_text != NULL && log_level_parse(level_text, &level) != 0)
        return usage_error(NULL,
                           "invalid KCHUB_LOG_LEVEL \"%s\"; expected debug, info, warn or "
                           "error",
                           level_text);
    if (format_text != NULL && log_format_parse(format_text, &format) != 0)
        return usage_error(NULL, "invalid KCHUB_LOG_FORMAT \"%s\"; expected text or json",
                           format_text);
    log_configure(level, format);
    return -1;
}

/* Picks the subcommand, or handles --help and --version. Returns -1 to go on, or an exit
 * status. */
static int parse_subcommand(int argc, char **argv, struct ctl_options *o)
{
    if (argc < 2)
        return usage_error(NULL, "a subcommand is missing; expected publish, retire or listen");
    const char *word = argv[1];
    if (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0) {
        fputs(ctl_usage_top, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(word, "--version") == 0) {
        printf("kc-cluster-ctl %s\n", KCHUB_VERSION);
        return EXIT_SUCCESS;
    }
    if (strcmp(word, "publish") == 0)
        o->command = CMD_PUBLISH;
    else if (strcmp(word, "retire") == 0)
        o->command = CMD_RETIRE;
    else if (strcmp(word, "listen") == 0)
        o->command = CMD_LISTEN;
    else
        return usage_error(NULL, "unknown subcommand \"%s\"; expected publish, retire or listen",
                           word);
    return -1;
}

int main(int argc, char **argv)
{
    struct ctl_options o = {.lease_ms = CTL_LEASE_DEFAULT_MS,
                            .safe_window_ms = CTL_SAFE_WINDOW_DEFAULT_MS};
    int rc = parse_subcommand(argc, argv, &o);
    if (rc < 0)
        rc = parse_options(argc - 1, argv + 1, &o);
    if (rc < 0)
        rc = configure_logging();
    if (rc < 0)
        rc = apply_defaults(&o);
    if (rc >= 0)
        return rc;

    struct redis_settings redis = {0};
    rc = build_redis_settings(&o, &redis);
    if (rc < 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("ctl", "libcurl could not be initialised");
        rc = EXIT_FAILURE;
    } else if (rc < 0) {
        if (o.command == CMD_PUBLISH)
            rc = run_publish(&o, &redis);
        else if (o.command == CMD_RETIRE)
            rc = run_retire(&o, &redis);
        else
            rc = run_listen(&o, &redis);
        curl_global_cleanup();
    }
    redis_settings_dispose(&redis);
    return rc;
}
