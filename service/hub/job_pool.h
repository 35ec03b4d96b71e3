/* A fixed set of worker threads that run queued jobs in order. HTTP threads hand slow work (a
 * logout's Redis round trip) to it, so they never block on Redis while other requests wait. */
#ifndef KCHUB_JOB_POOL_H
#define KCHUB_JOB_POOL_H

#include "error.h"

#include <stddef.h>

struct job_pool;

/* Starts threads workers with room for queue_capacity waiting jobs. Returns NULL with err set
 * when a thread cannot start or memory runs out. */
struct job_pool *job_pool_start(size_t threads, size_t queue_capacity, struct error *err);

/* Queues run(argument). Returns 0, or -1 when the queue is full or the pool is stopping, in
 * which case run is not called and the caller answers the request itself. */
int job_pool_submit(struct job_pool *pool, void (*run)(void *argument), void *argument);

/* Runs every job already queued, then joins the threads and frees the pool. Safe on NULL. */
void job_pool_stop(struct job_pool *pool);

#endif
