#include "clock.h"

#include <errno.h>
#include <time.h>

static int64_t clock_read_ms(clockid_t id)
{
    struct timespec now;
    clock_gettime(id, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t clock_monotonic_ms(void)
{
    return clock_read_ms(CLOCK_MONOTONIC);
}

int64_t clock_realtime_ms(void)
{
    return clock_read_ms(CLOCK_REALTIME);
}

void clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec left = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
}

void remote_clock_sample(struct remote_clock *clock, int64_t remote_ms, int64_t monotonic_ms)
{
    clock->remote_ms_at_sample = remote_ms;
    clock->monotonic_ms_at_sample = monotonic_ms;
    clock->valid = 1;
}

int64_t remote_clock_now_ms(const struct remote_clock *clock)
{
    if (!clock->valid)
        return clock_realtime_ms();
    return clock->remote_ms_at_sample + (clock_monotonic_ms() - clock->monotonic_ms_at_sample);
}
