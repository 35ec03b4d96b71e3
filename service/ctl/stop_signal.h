/* SIGTERM and SIGINT as a descriptor: the handler writes to a self-pipe that nothing reads, so
 * once a stop is requested its read end stays readable and every later poll on it returns at
 * once. The ctl's waits (Redis, HTTP, timers) all poll it. */
#ifndef KCHUB_STOP_SIGNAL_H
#define KCHUB_STOP_SIGNAL_H

#include "error.h"

/* Installs the handlers for SIGTERM and SIGINT and ignores SIGPIPE. Returns 0, or -1 with err. */
int stop_signal_install(struct error *err);

/* The descriptor that becomes readable on a stop request; -1 before stop_signal_install. */
int stop_signal_fd(void);

/* The signal that requested the stop, or 0 while none has. */
int stop_signal_received(void);

#endif
