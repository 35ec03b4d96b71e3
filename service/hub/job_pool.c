#include "job_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct job {
    void (*run)(void *argument);
    void *argument;
};

struct job_pool {
    pthread_mutex_t lock;
    pthread_cond_t queued;
    struct job *queue; /* ring buffer */
    size_t capacity;
    size_t head;
    size_t count;
    bool stopping;
    pthread_t *threads;
    size_t thread_count;
};

static void *work(void *context)
{
    struct job_pool *pool = context;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->count == 0 && !pool->stopping)
            pthread_cond_wait(&pool->queued, &pool->lock);
        if (pool->count == 0)
            break; /* stopping, and the queue is drained */
        struct job job = pool->queue[pool->head];
        pool->head = (pool->head + 1) % pool->capacity;
        pool->count--;
        pthread_mutex_unlock(&pool->lock);
        job.run(job.argument);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

struct job_pool *job_pool_start(size_t threads, size_t queue_capacity, struct error *err)
{
    struct job_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL || (pool->queue = calloc(queue_capacity, sizeof(*pool->queue))) == NULL ||
        (pool->threads = calloc(threads, sizeof(*pool->threads))) == NULL) {
        if (pool != NULL)
            free(pool->queue);
        free(pool);
        error_set(err, "out of memory starting the job pool");
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->queued, NULL);
    pool->capacity = queue_capacity;
    for (; pool->thread_count < threads; pool->thread_count++) {
        int rc = pthread_create(&pool->threads[pool->thread_count], NULL, work, pool);
        if (rc != 0) {
            error_set(err, "cannot start a job thread: %s", strerror(rc));
            job_pool_stop(pool);
            return NULL;
        }
    }
    return pool;
}

int job_pool_submit(struct job_pool *pool, void (*run)(void *argument), void *argument)
{
    pthread_mutex_lock(&pool->lock);
    int rc = -1;
    if (!pool->stopping && pool->count < pool->capacity) {
        pool->queue[(pool->head + pool->count) % pool->capacity] = (struct job){run, argument};
        pool->count++;
        pthread_cond_signal(&pool->queued);
        rc = 0;
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

void job_pool_stop(struct job_pool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->queued);
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < pool->thread_count; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->queued);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool->queue);
    free(pool);
}
