/* Listen addresses of the HTTP listeners: "HOST:PORT" or "[IPV6]:PORT". */
#ifndef KCHUB_LISTEN_ADDRESS_H
#define KCHUB_LISTEN_ADDRESS_H

#include "error.h"

#include <sys/socket.h>

/* Resolves listen into a socket address. setting names it in errors ("listen"). Returns 0, or -1
 * with err saying what is wrong with the value. */
int listen_address_resolve(const char *listen, const char *setting, struct sockaddr_storage *address,
                           struct error *err);

#endif
