#include "jwk.h"
#include "realm_fetch.h"
#include "realm_keys.h"
#include "unit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Bounds on waiting for the local HTTP server. */
#define SERVER_START_TIMEOUT_MS 10000
#define SERVER_STOP_TIMEOUT_MS  5000
#define POLL_STEP_MS            50
/* The whole test ends within this many seconds even if something hangs. */
#define TEST_ALARM_S    120
#define REFRESH_THREADS 8

#define CERTS_PATH "/realms/demo/protocol/openid-connect/certs"

static EVP_PKEY *rsa_key;
static EVP_PKEY *ec_key;
static EVP_PKEY *ed_key;

static void sleep_ms(long ms)
{
    struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&delay, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns the public JWK of pkey as a JSON object, with alg and use removed when NULL. */
static json_t *jwk_object(EVP_PKEY *pkey, const char *kid, const char *use, const char *alg)
{
    struct jwk_public jwk;
    char reason[256];
    if (jwk_from_pkey(pkey, kid, alg, &jwk, reason, sizeof(reason)) != JWK_OK) {
        fprintf(stderr, "exporting test key %s failed: %s\n", kid, reason);
        return json_object();
    }
    json_t *object = json_loads(jwk.json, 0, NULL);
    jwk_public_dispose(&jwk);
    if (alg == NULL)
        json_object_del(object, "alg");
    if (use == NULL)
        json_object_del(object, "use");
    else
        json_object_set_new(object, "use", json_string(use));
    return object;
}

/* A realm JWKS with one key of each kind the parser must keep or skip. */
static char *mixed_jwks(void)
{
    json_t *keys = json_array();
    json_array_append_new(keys, jwk_object(rsa_key, "rsa-sig", "sig", "RS256"));
    json_t *enc = jwk_object(rsa_key, "rsa-enc", "enc", NULL);
    json_object_set_new(enc, "alg", json_string("RSA-OAEP"));
    json_array_append_new(keys, enc);
    json_array_append_new(keys, jwk_object(ec_key, "ec-nouse", NULL, NULL));
    json_array_append_new(keys,
                          json_pack("{s:s, s:s, s:s}", "kty", "XYZ", "kid", "odd", "use", "sig"));
    json_t *leaked = jwk_object(rsa_key, "rsa-private", "sig", "RS256");
    json_object_set_new(leaked, "d", json_string("AQAB"));
    json_array_append_new(keys, leaked);
    json_array_append_new(keys, jwk_object(ed_key, "ed-sig", "sig", "EdDSA"));
    json_array_append_new(keys, jwk_object(ec_key, "ec-other-use", "tls", NULL));
    json_t *no_kid = jwk_object(ec_key, "ignored", NULL, NULL);
    json_object_del(no_kid, "kid");
    json_array_append_new(keys, no_kid);
    json_array_append_new(keys, json_integer(5));
    json_t *bad_kid = jwk_object(rsa_key, "ignored", "sig", NULL);
    json_object_set_new(bad_kid, "kid", json_integer(3));
    json_array_append_new(keys, bad_kid);

    json_t *jwks = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(jwks, JSON_COMPACT);
    json_decref(jwks);
    return text;
}

static void test_jws_alg_names(void)
{
    UNIT_CASE("jws alg names");
    for (int alg = 0; alg < JWS_ALG_COUNT; alg++) {
        const char *name = jws_alg_name((enum jws_alg)alg);
        enum jws_alg parsed = JWS_ALG_COUNT;
        CHECK_INT(jws_alg_parse(name, strlen(name), &parsed), 0);
        CHECK_INT(parsed, alg);
    }
    enum jws_alg parsed;
    CHECK_INT(jws_alg_parse("rs256", 5, &parsed), -1);
    CHECK_INT(jws_alg_parse("RS25", 4, &parsed), -1);
    CHECK_INT(jws_alg_parse("HS256", 5, &parsed), -1);
    CHECK_STR(jws_alg_name(JWS_ALG_EDDSA), "EdDSA");
}

static void check_key(const struct realm_key *key, const char *kid, const char *alg,
                      unsigned fitting)
{
    CHECK(key != NULL);
    if (key == NULL)
        return;
    if (kid != NULL)
        CHECK_STR(key->kid, kid);
    else
        CHECK(key->kid == NULL);
    if (alg != NULL)
        CHECK_STR(key->alg, alg);
    else
        CHECK(key->alg == NULL);
    CHECK_INT(key->fitting_algs, fitting);
    CHECK(key->pkey != NULL);
}

static void test_parse_mixed(void)
{
    UNIT_CASE("parse mixed set");
    const unsigned rsa_algs = JWS_ALG_BIT(JWS_ALG_RS256) | JWS_ALG_BIT(JWS_ALG_RS384) |
                              JWS_ALG_BIT(JWS_ALG_RS512) | JWS_ALG_BIT(JWS_ALG_PS256) |
                              JWS_ALG_BIT(JWS_ALG_PS384) | JWS_ALG_BIT(JWS_ALG_PS512);
    char *text = mixed_jwks();
    struct error err = {{0}};
    struct realm_key_set *set = realm_key_set_parse(text, strlen(text), &err);
    free(text);
    CHECK(set != NULL);
    if (set == NULL) {
        fprintf(stderr, "parse failed: %s\n", err.message);
        return;
    }
    CHECK_INT(realm_key_set_count(set), 4);
    check_key(realm_key_set_at(set, 0), "rsa-sig", "RS256", rsa_algs);
    check_key(realm_key_set_at(set, 1), "ec-nouse", NULL, JWS_ALG_BIT(JWS_ALG_ES256));
    check_key(realm_key_set_at(set, 2), "ed-sig", "EdDSA", JWS_ALG_BIT(JWS_ALG_EDDSA));
    check_key(realm_key_set_at(set, 3), NULL, NULL, JWS_ALG_BIT(JWS_ALG_ES256));

    UNIT_CASE("lookup by kid");
    CHECK(realm_key_set_find(set, "rsa-sig", 7, "RS256") == realm_key_set_at(set, 0));
    CHECK(realm_key_set_find(set, "ed-sig", 6, NULL) == realm_key_set_at(set, 2));
    CHECK(realm_key_set_find(set, "rsa-sig", 7, "PS256") == realm_key_set_at(set, 0));
    CHECK(realm_key_set_find(set, "rsa-enc", 7, NULL) == NULL);
    CHECK(realm_key_set_find(set, "rsa-private", 11, NULL) == NULL);
    CHECK(realm_key_set_find(set, "odd", 3, NULL) == NULL);
    CHECK(realm_key_set_find(set, "rsa-si", 6, NULL) == NULL);
    CHECK(realm_key_set_find(NULL, "rsa-sig", 7, NULL) == NULL);

    UNIT_CASE("usable keys per alg");
    const struct realm_key *first = NULL;
    CHECK_INT(realm_key_set_count_usable(set, JWS_ALG_ES256, &first), 2);
    CHECK(first == realm_key_set_at(set, 1));
    CHECK_INT(realm_key_set_count_usable(set, JWS_ALG_RS256, &first), 1);
    CHECK(first == realm_key_set_at(set, 0));
    CHECK_INT(realm_key_set_count_usable(set, JWS_ALG_PS256, &first), 0); /* rsa-sig is RS256 */
    CHECK(first == NULL);
    CHECK_INT(realm_key_set_count_usable(set, JWS_ALG_EDDSA, &first), 1);
    CHECK_INT(realm_key_set_count_usable(set, JWS_ALG_ES384, &first), 0);
    CHECK_INT(realm_key_set_count_usable(NULL, JWS_ALG_RS256, &first), 0);

    UNIT_CASE("set reference count");
    CHECK(realm_key_set_retain(set) == set);
    realm_key_set_release(set);
    CHECK_INT(realm_key_set_count(set), 4); /* one reference is still held */
    realm_key_set_release(set);
}

static void test_duplicate_kid(void)
{
    UNIT_CASE("duplicate kid prefers alg");
    json_t *keys = json_array();
    json_array_append_new(keys, jwk_object(rsa_key, "dup", "sig", "RS256"));
    json_array_append_new(keys, jwk_object(rsa_key, "dup", "sig", "PS256"));
    json_t *jwks = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(jwks, JSON_COMPACT);
    json_decref(jwks);
    struct realm_key_set *set = realm_key_set_parse(text, strlen(text), NULL);
    free(text);
    CHECK(set != NULL);
    if (set == NULL)
        return;
    CHECK(realm_key_set_find(set, "dup", 3, "PS256") == realm_key_set_at(set, 1));
    CHECK(realm_key_set_find(set, "dup", 3, "RS256") == realm_key_set_at(set, 0));
    CHECK(realm_key_set_find(set, "dup", 3, "ES256") == realm_key_set_at(set, 0));
    realm_key_set_release(set);
}

/* Parses body (len bytes, or up to its terminator when len is 0) and expects an error. */
static void expect_parse_error(const char *name, const char *body, size_t len,
                               const char *message_part)
{
    UNIT_CASE(name);
    struct error err = {{0}};
    struct realm_key_set *set = realm_key_set_parse(body, len != 0 ? len : strlen(body), &err);
    CHECK(set == NULL);
    CHECK(strstr(err.message, message_part) != NULL);
    if (strstr(err.message, message_part) == NULL)
        fprintf(stderr, "  message: %s\n", err.message);
    realm_key_set_release(set);
}

static void test_parse_errors(void)
{
    expect_parse_error("body not JSON", "<html>", 0, "not valid JSON");
    expect_parse_error("keys missing", "{\"jwks\":[]}", 0, "no \"keys\" array");
    expect_parse_error("keys not array", "{\"keys\":{}}", 0, "no \"keys\" array");
    expect_parse_error("no usable key", "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", 0,
                       "no usable signing key");
    expect_parse_error("keys empty", "{\"keys\":[]}", 0, "no usable signing key");
    expect_parse_error("duplicate member", "{\"keys\":[],\"keys\":[]}", 0, "not valid JSON");

    size_t big_len = REALM_KEYS_BODY_MAX_BYTES + 1;
    char *big = malloc(big_len);
    memset(big, ' ', big_len);
    expect_parse_error("body over 1 MiB", big, big_len, "over the limit");
    free(big);
}

/* A python3 http.server on 127.0.0.1 serving files from a temporary folder. */
/* With tls, it serves https with a self-signed certificate for IP 127.0.0.1 made by the openssl
 * command. */
struct test_server {
    bool tls;
    char root[64];
    char log_path[96];
    char cert_path[96];
    char key_path[96];
    int port;
    pid_t pid;
};

/* http.server over TLS. Arguments: folder, port, certificate file, key file. */
static const char https_server_script[] =
    "import functools, http.server, ssl, sys\n"
    "root, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]\n"
    "handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)\n"
    "httpd = http.server.HTTPServer(('127.0.0.1', port), handler)\n"
    "context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "context.load_cert_chain(cert, key)\n"
    "httpd.socket = context.wrap_socket(httpd.socket, server_side=True)\n"
    "httpd.serve_forever()\n";

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void write_file(const struct test_server *server, const char *path, const char *text,
                       size_t len)
{
    char full[512];
    snprintf(full, sizeof(full), "%s%s", server->root, path);
    /* Creates the parent folders of path, one at a time. */
    for (char *slash = strchr(full + strlen(server->root) + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(full, 0700);
        *slash = '/';
    }
    FILE *file = fopen(full, "wb");
    if (file == NULL || fwrite(text, 1, len, file) != len)
        fprintf(stderr, "writing %s failed: %s\n", full, strerror(errno));
    if (file != NULL)
        fclose(file);
}

static void write_text(const struct test_server *server, const char *path, const char *text)
{
    write_file(server, path, text, strlen(text));
}

static void exec_server(const struct test_server *server)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", server->port);
    int log_fd = open(server->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null_fd = open("/dev/null", O_WRONLY);
    if (log_fd < 0 || null_fd < 0)
        _exit(126);
    dup2(null_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    if (server->tls)
        execlp("python3", "python3", "-u", "-c", https_server_script, server->root, port,
               server->cert_path, server->key_path, (char *)NULL);
    else
        execlp("python3", "python3", "-u", "-m", "http.server", "--bind", "127.0.0.1",
               "--directory", server->root, port, (char *)NULL);
    _exit(127);
}

/* Writes a self-signed P-256 certificate for IP 127.0.0.1 and its key, valid for one day. */
static bool make_certificate(const struct test_server *server)
{
    char command[512];
    snprintf(command, sizeof(command),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
             ">/dev/null 2>&1",
             server->key_path, server->cert_path);
    if (system(command) == 0)
        return true;
    fprintf(stderr, "creating a test certificate with the openssl command failed\n");
    return false;
}

static bool server_start(struct test_server *server)
{
    snprintf(server->root, sizeof(server->root), "/tmp/realm_keys_test.XXXXXX");
    if (mkdtemp(server->root) == NULL)
        return false;
    snprintf(server->log_path, sizeof(server->log_path), "%s.log", server->root);
    snprintf(server->cert_path, sizeof(server->cert_path), "%s.crt", server->root);
    snprintf(server->key_path, sizeof(server->key_path), "%s.key", server->root);
    if (server->tls && !make_certificate(server))
        return false;
    server->port = free_port();
    if (server->port < 0)
        return false;
    server->pid = fork();
    if (server->pid == 0)
        exec_server(server);
    if (server->pid < 0)
        return false;
    for (int64_t start = now_ms(); now_ms() - start < SERVER_START_TIMEOUT_MS;) {
        if (port_accepts(server->port))
            return true;
        if (waitpid(server->pid, NULL, WNOHANG) == server->pid) {
            server->pid = -1;
            return false;
        }
        sleep_ms(POLL_STEP_MS);
    }
    return false;
}

static void server_stop(struct test_server *server)
{
    if (server->pid > 0) {
        kill(server->pid, SIGTERM);
        int64_t start = now_ms();
        while (waitpid(server->pid, NULL, WNOHANG) == 0) {
            if (now_ms() - start > SERVER_STOP_TIMEOUT_MS) {
                kill(server->pid, SIGKILL);
                waitpid(server->pid, NULL, 0);
                break;
            }
            sleep_ms(POLL_STEP_MS);
        }
    }
    char command[512];
    snprintf(command, sizeof(command), "rm -rf '%s' '%s' '%s' '%s'", server->root, server->log_path,
             server->cert_path, server->key_path);
    if (system(command) != 0)
        fprintf(stderr, "removing %s failed\n", server->root);
}

/* Counts the GET requests for path in the server's request log. */
static int requests_for(const struct test_server *server, const char *path)
{
    char needle[256];
    snprintf(needle, sizeof(needle), "\"GET %s HTTP", path);
    FILE *file = fopen(server->log_path, "r");
    int count = 0;
    char line[1024];
    while (file != NULL && fgets(line, sizeof(line), file) != NULL)
        count += strstr(line, needle) != NULL;
    if (file != NULL)
        fclose(file);
    return count;
}

static void url_of(const struct test_server *server, const char *path, char *out, size_t len)
{
    snprintf(out, len, "%s://127.0.0.1:%d%s", server->tls ? "https" : "http", server->port, path);
}

static void write_discovery(const struct test_server *server, const char *realm,
                            const char *claimed_issuer)
{
    char path[128], doc[512], certs[256];
    snprintf(path, sizeof(path), "/realms/%s/.well-known/openid-configuration", realm);
    url_of(server, CERTS_PATH, certs, sizeof(certs));
    snprintf(doc, sizeof(doc), "{\"issuer\":\"%s\",\"jwks_uri\":\"%s\"}", claimed_issuer, certs);
    write_text(server, path, doc);
}

static void fetch_settings(const struct test_server *server, const char *realm,
                           const char *jwks_path, char *issuer, char *jwks_url,
                           struct realm_fetch_settings *settings)
{
    char path[128];
    snprintf(path, sizeof(path), "/realms/%s", realm);
    url_of(server, path, issuer, 256);
    jwks_url[0] = '\0';
    if (jwks_path != NULL)
        url_of(server, jwks_path, jwks_url, 256);
    *settings = (struct realm_fetch_settings){
        .issuer = issuer,
        .jwks_url = jwks_url,
        .ca_file = NULL,
        .connect_timeout_ms = 2000,
        .total_timeout_ms = 5000,
    };
}

static void expect_fetch_error(const struct test_server *server, const char *name,
                               const char *realm, const char *jwks_path, const char *message_part)
{
    UNIT_CASE(name);
    char issuer[256], jwks_url[256];
    struct realm_fetch_settings settings;
    fetch_settings(server, realm, jwks_path, issuer, jwks_url, &settings);
    struct error err = {{0}};
    struct realm_key_set *set = realm_fetch_key_set(&settings, &err);
    CHECK(set == NULL);
    CHECK(strstr(err.message, message_part) != NULL);
    CHECK(strstr(err.message, jwks_path != NULL ? jwks_url : issuer) != NULL);
    if (strstr(err.message, message_part) == NULL)
        fprintf(stderr, "  message: %s\n", err.message);
    realm_key_set_release(set);
}

static void test_fetch(const struct test_server *server)
{
    UNIT_CASE("fetch by discovery");
    char issuer[256], jwks_url[256];
    struct realm_fetch_settings settings;
    fetch_settings(server, "demo", NULL, issuer, jwks_url, &settings);
    struct error err = {{0}};
    struct realm_key_set *set = realm_fetch_key_set(&settings, &err);
    CHECK(set != NULL);
    CHECK_INT(realm_key_set_count(set), 4);
    CHECK_INT(requests_for(server, "/realms/demo/.well-known/openid-configuration"), 1);
    CHECK_INT(requests_for(server, CERTS_PATH), 1);
    if (set == NULL)
        fprintf(stderr, "  message: %s\n", err.message);
    realm_key_set_release(set);

    UNIT_CASE("fetch configured url");
    fetch_settings(server, "demo", CERTS_PATH, issuer, jwks_url, &settings);
    set = realm_fetch_key_set(&settings, &err);
    CHECK(set != NULL);
    CHECK_INT(requests_for(server, CERTS_PATH), 2);
    realm_key_set_release(set);

    UNIT_CASE("discovery url");
    char *url = realm_fetch_discovery_url("https://sso.example.test/realms/demo/");
    CHECK_STR(url, "https://sso.example.test/realms/demo/.well-known/openid-configuration");
    free(url);

    expect_fetch_error(server, "issuer mismatch", "mismatch", NULL, "names issuer");
    expect_fetch_error(server, "discovery 404", "absent", NULL, "HTTP status 404");
    expect_fetch_error(server, "jwks 404", "demo", "/missing.json", "HTTP status 404");
    expect_fetch_error(server, "body too large", "demo", "/big.json", "larger than");
    expect_fetch_error(server, "body not JSON", "demo", "/not-json.json", "not valid JSON");
    expect_fetch_error(server, "no usable key", "demo", "/enc-only.json", "no usable signing key");
    expect_fetch_error(server, "redirect not followed", "demo", "/realms", "HTTP status 301");
}

static void test_fetch_refused(void)
{
    UNIT_CASE("connection refused");
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/certs", free_port());
    struct realm_fetch_settings settings = {"http://127.0.0.1/realms/x", url, NULL, 1000, 2000};
    struct error err = {{0}};
    CHECK(realm_fetch_key_set(&settings, &err) == NULL);
    CHECK(strstr(err.message, url) != NULL);

    UNIT_CASE("scheme not allowed");
    settings.jwks_url = "file:///etc/passwd";
    CHECK(realm_fetch_key_set(&settings, &err) == NULL);
    CHECK(strstr(err.message, "scheme is not allowed") != NULL);
}

static void test_refresh_rate_limit(const struct test_server *server)
{
    UNIT_CASE("refresh rate limit");
    char issuer[256], jwks_url[256];
    struct realm_fetch_settings settings;
    fetch_settings(server, "demo", NULL, issuer, jwks_url, &settings);
    struct error err = {{0}};
    struct realm_keys *keys = realm_keys_create(&settings, 60000, &err);
    CHECK(keys != NULL);
    if (keys == NULL)
        return;
    int before = requests_for(server, CERTS_PATH);
    CHECK(realm_keys_acquire(keys) == NULL);
    CHECK_INT(realm_keys_refresh_if_allowed(keys, 1000), REALM_KEYS_REFRESHED);
    CHECK_INT(requests_for(server, CERTS_PATH), before + 1);
    struct realm_key_set *first = realm_keys_acquire(keys);
    CHECK(first != NULL);

    CHECK_INT(realm_keys_refresh_if_allowed(keys, 1000 + 59999), REALM_KEYS_RATE_LIMITED);
    CHECK_INT(requests_for(server, CERTS_PATH), before + 1);

    UNIT_CASE("failed refresh keeps old set");
    write_text(server, CERTS_PATH, "{\"keys\": not json");
    CHECK_INT(realm_keys_refresh_if_allowed(keys, 1000 + 60000), REALM_KEYS_FAILED);
    CHECK_INT(requests_for(server, CERTS_PATH), before + 2);
    struct realm_key_set *kept = realm_keys_acquire(keys);
    CHECK(kept == first);
    realm_key_set_release(kept);
    CHECK_INT(realm_keys_refresh_if_allowed(keys, 1000 + 60001), REALM_KEYS_RATE_LIMITED);

    UNIT_CASE("refresh after interval");
    char *text = mixed_jwks();
    write_text(server, CERTS_PATH, text);
    free(text);
    CHECK_INT(realm_keys_refresh_if_allowed(keys, 1000 + 120000), REALM_KEYS_REFRESHED);
    struct realm_key_set *second = realm_keys_acquire(keys);
    CHECK(second != NULL);
    CHECK(second != first);
    CHECK_INT(realm_key_set_count(first), 4); /* still valid while referenced */
    realm_key_set_release(second);
    realm_key_set_release(first);
    realm_keys_destroy(keys);
}

struct refresh_thread {
    struct realm_keys *keys;
    pthread_barrier_t *start;
    enum realm_keys_refresh result;
};

static void *run_refresh(void *arg)
{
    struct refresh_thread *thread = arg;
    pthread_barrier_wait(thread->start);
    thread->result = realm_keys_refresh_if_allowed(thread->keys, 5000);
    return NULL;
}

static void test_refresh_concurrent(const struct test_server *server)
{
    UNIT_CASE("concurrent refresh fetches once");
    char issuer[256], jwks_url[256];
    struct realm_fetch_settings settings;
    fetch_settings(server, "demo", CERTS_PATH, issuer, jwks_url, &settings);
    struct realm_keys *keys = realm_keys_create(&settings, 10000, NULL);
    CHECK(keys != NULL);
    if (keys == NULL)
        return;
    int before = requests_for(server, CERTS_PATH);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, REFRESH_THREADS);
    struct refresh_thread threads[REFRESH_THREADS];
    pthread_t ids[REFRESH_THREADS];
    for (int i = 0; i < REFRESH_THREADS; i++) {
        threads[i] = (struct refresh_thread){keys, &start, REALM_KEYS_FAILED};
        pthread_create(&ids[i], NULL, run_refresh, &threads[i]);
    }
    int refreshed = 0, limited = 0;
    for (int i = 0; i < REFRESH_THREADS; i++) {
        pthread_join(ids[i], NULL);
        refreshed += threads[i].result == REALM_KEYS_REFRESHED;
        limited += threads[i].result == REALM_KEYS_RATE_LIMITED;
    }
    pthread_barrier_destroy(&start);
    CHECK(refreshed >= 1);
    CHECK_INT(refreshed + limited, REFRESH_THREADS);
    CHECK_INT(requests_for(server, CERTS_PATH), before + 1);
    struct realm_key_set *set = realm_keys_acquire(keys);
    CHECK_INT(realm_key_set_count(set), 4);
    realm_key_set_release(set);
    realm_keys_destroy(keys);
}

static void test_holder_settings(void)
{
    UNIT_CASE("holder rejects bad settings");
    struct realm_fetch_settings settings = {"ftp://sso/realms/x", NULL, NULL, 1000, 3000};
    struct error err = {{0}};
    CHECK(realm_keys_create(&settings, 10000, &err) == NULL);
    CHECK(strstr(err.message, "not an http or https URL") != NULL);
    settings.issuer = "https://sso/realms/x";
    settings.total_timeout_ms = 0;
    CHECK(realm_keys_create(&settings, 10000, &err) == NULL);
    CHECK(strstr(err.message, "at least 1 ms") != NULL);
    settings.total_timeout_ms = 3000;
    CHECK(realm_keys_create(&settings, -1, &err) == NULL);
    CHECK(strstr(err.message, "refresh interval") != NULL);
}

static void write_server_files(const struct test_server *server)
{
    char *text = mixed_jwks();
    write_text(server, CERTS_PATH, text);
    free(text);
    char issuer[256];
    url_of(server, "/realms/demo", issuer, sizeof(issuer));
    write_discovery(server, "demo", issuer);
    url_of(server, "/realms/other", issuer, sizeof(issuer));
    write_discovery(server, "mismatch", issuer);
    write_text(server, "/not-json.json", "<html>keys</html>");
    write_text(server, "/enc-only.json", "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}");

    size_t big_len = REALM_KEYS_BODY_MAX_BYTES + 1;
    char *big = malloc(big_len);
    memset(big, ' ', big_len);
    write_file(server, "/big.json", big, big_len);
    free(big);
}

static void test_fetch_tls(const struct test_server *server)
{
    UNIT_CASE("tls self-signed rejected");
    char issuer[256], jwks_url[256];
    struct realm_fetch_settings settings;
    fetch_settings(server, "demo", CERTS_PATH, issuer, jwks_url, &settings);
    struct error err = {{0}};
    CHECK(realm_fetch_key_set(&settings, &err) == NULL);
    CHECK(strstr(err.message, "TLS failed") != NULL);
    CHECK_INT(requests_for(server, CERTS_PATH), 0);

    UNIT_CASE("tls with ca file");
    settings.ca_file = server->cert_path;
    struct realm_key_set *set = realm_fetch_key_set(&settings, &err);
    CHECK(set != NULL);
    CHECK_INT(realm_key_set_count(set), 4);
    realm_key_set_release(set);

    UNIT_CASE("tls host name checked");
    char wrong_host[256];
    snprintf(wrong_host, sizeof(wrong_host), "https://localhost:%d%s", server->port, CERTS_PATH);
    settings.jwks_url = wrong_host;
    CHECK(realm_fetch_key_set(&settings, &err) == NULL);
    CHECK(strstr(err.message, "TLS failed") != NULL);

    UNIT_CASE("tls discovery jwks_uri http");
    settings.jwks_url = NULL;
    CHECK(realm_fetch_key_set(&settings, &err) == NULL);
    CHECK(strstr(err.message, "not https") != NULL);
}

static void test_with_tls_server(void)
{
    struct test_server server = {.tls = true, .pid = -1};
    UNIT_CASE("local https server");
    bool started = server_start(&server);
    CHECK(started);
    if (started) {
        write_server_files(&server);
        /* A discovery document that downgrades to http. */
        char issuer[256], doc[512];
        url_of(&server, "/realms/demo", issuer, sizeof(issuer));
        snprintf(doc, sizeof(doc), "{\"issuer\":\"%s\",\"jwks_uri\":\"http://127.0.0.1:%d%s\"}",
                 issuer, server.port, CERTS_PATH);
        write_text(&server, "/realms/demo/.well-known/openid-configuration", doc);
        test_fetch_tls(&server);
    }
    server_stop(&server);
}

static void test_with_server(void)
{
    struct test_server server = {.pid = -1};
    UNIT_CASE("local http server");
    bool started = server_start(&server);
    CHECK(started);
    if (started) {
        write_server_files(&server);
        test_fetch(&server);
        test_refresh_rate_limit(&server);
        test_refresh_concurrent(&server);
    }
    server_stop(&server);
}

int main(void)
{
    alarm(TEST_ALARM_S);
    setenv("no_proxy", "127.0.0.1", 1);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (rsa_key == NULL || ec_key == NULL || ed_key == NULL) {
        fprintf(stderr, "generating the test keys failed\n");
        return 1;
    }

    test_jws_alg_names();
    test_parse_mixed();
    test_duplicate_kid();
    test_parse_errors();
    test_holder_settings();
    test_fetch_refused();
    test_with_server();
    test_with_tls_server();

    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ed_key);
    curl_global_cleanup();
    return unit_finish("realm_keys");
}
