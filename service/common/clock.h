/* Time sources. All values are milliseconds. */
#ifndef KCHUB_CLOCK_H
#define KCHUB_CLOCK_H

#include <stdint.h>

/* Milliseconds since an arbitrary start, never going back (CLOCK_MONOTONIC). */
int64_t clock_monotonic_ms(void);

/* Milliseconds since the Unix epoch from this host's clock (CLOCK_REALTIME). */
int64_t clock_realtime_ms(void);

/* Sleeps for ms milliseconds, resuming after signals. */
void clock_sleep_ms(int64_t ms);

/* The Redis server's clock as seen from this host: one TIME sample taken at a known monotonic
 * instant, so later readings follow the monotonic clock and ignore jumps of this host's clock. */
struct remote_clock {
    int64_t remote_ms_at_sample;
    int64_t monotonic_ms_at_sample;
    int valid;
};

/* Records a sample: remote_ms was read at local monotonic time monotonic_ms (the midpoint of the
 * round trip, so half the round trip is the worst error). */
void remote_clock_sample(struct remote_clock *clock, int64_t remote_ms, int64_t monotonic_ms);

/* Returns the remote clock's current time in ms. Before any sample, returns this host's realtime. */
int64_t remote_clock_now_ms(const struct remote_clock *clock);

#endif
