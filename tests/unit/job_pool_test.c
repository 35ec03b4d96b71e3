/* Unit tests of the job pool: every queued job runs, and stop drains the queue. */
#include "job_pool.h"
#include "unit.h"

#include <stdatomic.h>
#include <unistd.h>

static atomic_int runs;

static void count_run(void *argument)
{
    (void)argument;
    usleep(100);
    atomic_fetch_add(&runs, 1);
}

static void test_runs_every_job(void)
{
    UNIT_CASE("runs every job");
    struct error err = {""};
    struct job_pool *pool = job_pool_start(3, 1000, &err);
    CHECK(pool != NULL);
    int accepted = 0;
    for (int i = 0; i < 500; i++)
        accepted += job_pool_submit(pool, count_run, NULL) == 0;
    job_pool_stop(pool);
    CHECK_INT(accepted, 500);
    CHECK_INT(atomic_load(&runs), 500);
}

static void test_full_queue_rejects(void)
{
    UNIT_CASE("full queue rejects");
    struct error err = {""};
    atomic_store(&runs, 0);
    struct job_pool *pool = job_pool_start(1, 2, &err);
    int rejected = 0;
    for (int i = 0; i < 50; i++)
        rejected += job_pool_submit(pool, count_run, NULL) != 0;
    job_pool_stop(pool);
    CHECK(rejected > 0);
    CHECK_INT(atomic_load(&runs), 50 - rejected);
}

int main(void)
{
    test_runs_every_job();
    test_full_queue_rejects();
    return unit_finish("job_pool");
}
