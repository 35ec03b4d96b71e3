#include "stop_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int signo)
{
    int saved_errno = errno;
    stop_signal = signo;
    ssize_t written = write(stop_pipe[1], "x", 1);
    (void)written; /* A full pipe already wakes the waits. */
    errno = saved_errno;
}

int stop_signal_install(struct error *err)
{
    if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        error_set(err, "creating the signal pipe failed: %s", strerror(errno));
        return -1;
    }
    struct sigaction action = {.sa_handler = on_stop_signal};
    sigemptyset(&action.sa_mask);
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    sigemptyset(&ignore.sa_mask);
    if (sigaction(SIGTERM, &action, NULL) != 0 || sigaction(SIGINT, &action, NULL) != 0 ||
        sigaction(SIGPIPE, &ignore, NULL) != 0) {
        error_set(err, "installing the signal handlers failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int stop_signal_fd(void)
{
    return stop_pipe[0];
}

int stop_signal_received(void)
{
    return stop_signal;
}
