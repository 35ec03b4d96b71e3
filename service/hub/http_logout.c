#include "http_logout.h"

#include "http_response.h"
#include "log.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CONTENT_TYPE_MAX_BYTES 256

enum logout_stage { STAGE_READING, STAGE_RUNNING, STAGE_ANSWERED };

struct http_logout_request {
    struct logout_receiver *receiver;
    struct MHD_Connection *connection;
    size_t body_max;
    char *body;
    size_t body_len;
    bool too_large;
    char content_type[CONTENT_TYPE_MAX_BYTES];
    bool has_content_type;
    _Atomic int stage;
    struct logout_answer answer;
};

struct http_logout_request *http_logout_create(struct logout_receiver *receiver, size_t body_max)
{
    struct http_logout_request *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->receiver = receiver;
    r->body_max = body_max;
    atomic_init(&r->stage, STAGE_READING);
    return r;
}

void http_logout_append(struct http_logout_request *r, const char *data, size_t len)
{
    if (r->too_large || r->body_len + len > r->body_max) {
        r->too_large = true;
        return;
    }
    char *grown = realloc(r->body, r->body_len + len + 1);
    if (grown == NULL) {
        r->too_large = true; /* Out of memory: rejected like an oversized body. */
        return;
    }
    memcpy(grown + r->body_len, data, len);
    r->body = grown;
    r->body_len += len;
    r->body[r->body_len] = '\0';
}

static void run_logout(void *argument)
{
    struct http_logout_request *r = argument;
    logout_receiver_handle(r->receiver, r->has_content_type ? r->content_type : NULL,
                           r->body != NULL ? r->body : "", r->body_len, &r->answer);
    atomic_store(&r->stage, STAGE_ANSWERED);
    MHD_resume_connection(r->connection);
}

static enum MHD_Result queue_answer(struct MHD_Connection *connection,
                                    const struct logout_answer *answer)
{
    if (answer->status != 200)
        return http_queue_json_error(connection, answer->status, answer->error, "%s",
                                     answer->description);
    struct MHD_Response *response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return rc;
}

enum MHD_Result http_logout_step(struct http_logout_request *r, struct MHD_Connection *connection,
                                 struct job_pool *jobs)
{
    int stage = atomic_load(&r->stage);
    if (stage == STAGE_ANSWERED)
        return queue_answer(connection, &r->answer);
    if (stage == STAGE_RUNNING)
        return MHD_YES; /* A spurious call while the job runs. */
    if (r->too_large) {
        logout_receiver_note_oversized(r->receiver, r->body_max);
        return http_queue_json_error(connection, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request",
                                     "body_too_large: the body is over %zu bytes", r->body_max);
    }

    const char *content_type =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    r->has_content_type = content_type != NULL;
    if (content_type != NULL)
        snprintf(r->content_type, sizeof(r->content_type), "%s", content_type);
    r->connection = connection;
    atomic_store(&r->stage, STAGE_RUNNING);
    MHD_suspend_connection(connection);
    if (job_pool_submit(jobs, run_logout, r) != 0) {
        log_error("http", "the logout queue is full or the hub is stopping; responding 503");
        r->answer.status = MHD_HTTP_SERVICE_UNAVAILABLE;
        r->answer.error = "temporarily_unavailable";
        snprintf(r->answer.description, sizeof(r->answer.description),
                 "the hub is overloaded or stopping; retry later");
        atomic_store(&r->stage, STAGE_ANSWERED);
        MHD_resume_connection(connection);
    }
    return MHD_YES;
}

void http_logout_destroy(struct http_logout_request *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r);
}
