/* What the admin listener reports about the namespaces: readiness with the reason for each
 * namespace's state, and the operator view of a namespace's keys. */
#ifndef KCHUB_READINESS_H
#define KCHUB_READINESS_H

#include "namespace.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Builds the /readyz body and sets *ready. Not ready until every namespace's initial stream
 * replay is done. A hub that lost Redis afterwards reports "degraded" but stays ready, because
 * it still serves its last key sets, unless degraded_not_ready_after_ms is positive and the loss
 * is older than that. Returns a new JSON object (NULL when out of memory). */
json_t *readiness_report(struct hub_namespace *const *list, size_t count,
                         int64_t degraded_not_ready_after_ms, bool *ready);

/* Builds the /<namespace>/keys body: every live and retiring key with its instance, kid, alg,
 * publication time, last renewal, lease end, retire time and state. Takes the namespace's store
 * lock while reading. Returns a new JSON object (NULL when out of memory). */
json_t *readiness_keys_report(struct hub_namespace *ns);

#endif
