/* The POST /<namespace>/backchannel-logout route inside libmicrohttpd: collect the body within a
 * size limit, then suspend the connection and let a job thread run the logout (which waits on
 * Redis), so the HTTP thread goes on serving other requests, and respond once it resumes. */
#ifndef KCHUB_HTTP_LOGOUT_H
#define KCHUB_HTTP_LOGOUT_H

#include "job_pool.h"
#include "logout_receiver.h"

#include <microhttpd.h>
#include <stddef.h>

struct http_logout_request;

/* Creates the state of one logout request, or NULL when out of memory. */
struct http_logout_request *http_logout_create(struct logout_receiver *receiver, size_t body_max);

/* Appends a chunk of the body; past body_max the rest is dropped and the response will be 413. */
void http_logout_append(struct http_logout_request *request, const char *data, size_t len);

/* Called on every call of the access handler after the body is complete: the first hands the
 * logout to jobs and suspends the connection, the one after the resume queues the response. */
enum MHD_Result http_logout_step(struct http_logout_request *request,
                                 struct MHD_Connection *connection, struct job_pool *jobs);

void http_logout_destroy(struct http_logout_request *request);

#endif
