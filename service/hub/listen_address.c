#include "listen_address.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

int listen_address_resolve(const char *listen, const char *setting, struct sockaddr_storage *address,
                           struct error *err)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon[1] == '\0') {
        error_set(err, "invalid setting %s \"%s\": expected HOST:PORT, for example "
                  "127.0.0.1:8080 or [::1]:8080", setting, listen);
        return -1;
    }
    char host[256];
    const char *start = listen, *end = colon;
    if (*start == '[' && end > start && end[-1] == ']') {
        start++;
        end--;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(end - start), start);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host[0] != '\0' ? host : NULL, colon + 1, &hints, &found);
    if (rc != 0) {
        error_set(err, "invalid setting %s \"%s\": %s", setting, listen, gai_strerror(rc));
        return -1;
    }
    memset(address, 0, sizeof(*address));
    memcpy(address, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    return 0;
}
