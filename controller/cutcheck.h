/* A truncation's cut checked against the segment stores before the
 * controller proposes it (controller/cutcheck.c). */
#ifndef CONTROLLER_CUTCHECK_H
#define CONTROLLER_CUTCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "controller/service.h"
#include "strata/v1/controller.pb-c.h"

/* Outcome of a check: code 0 (every offset within its segment, or left
 * to the FSM to judge) or a STRATA_E* code with a message for people. */
typedef void (*cutcheck_done_fn)(void *arg, int code, const char *msg);

struct cutcheck;

/* The checks of one API: *out is freed with cutcheck_free. Returns 0 or
 * STRATA_ENOMEM. */
int cutcheck_new(struct cutcheck **out);

/*
 * Check that no offset of cut (of scope/stream, borrowed until done runs)
 * is past the end of its segment, asking the store that leads each
 * segment whose size the FSM does not know (an open segment). done runs
 * exactly once: at once (nothing to ask, or no thread could be started)
 * or on a thread of its own once every store answered. Codes: STRATA_EINVAL
 * (an offset past its segment's end, named), STRATA_EUNAVAIL (a store did
 * not answer, or none leads the container), STRATA_ESHUTDOWN (stopping).
 */
void cutcheck_run(struct cutcheck *cc, struct ctl_service *svc,
                  const char *what, const char *scope, const char *stream,
                  const Strata__V1__StreamCut *cut, cutcheck_done_fn done,
                  void *arg);

/* Refuse further checks and wait until the running ones called done
 * (bounded by the store calls' timeouts). Call before the service stops. */
void cutcheck_drain(struct cutcheck *cc);

/* Drain, then free cc (NULL: nothing). */
void cutcheck_free(struct cutcheck *cc);

#endif
