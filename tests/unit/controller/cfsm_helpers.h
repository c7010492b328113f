/* Test helpers for the controller FSM: build, pack and apply commands. */
#ifndef TESTS_UNIT_CONTROLLER_CFSM_HELPERS_H
#define TESTS_UNIT_CONTROLLER_CFSM_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "controller/fsm.h"

/* Result of the last h_* command (shared, overwritten by each call). */
extern struct cfsm_result h_res;

/* Pack cmd (borrowed), apply it with cfsm_apply; returns the code. */
int h_apply(struct cfsm *f, const Strata__V1__ControllerCommand *cmd);

int h_create_scope(struct cfsm *f, const char *scope);
int h_delete_scope(struct cfsm *f, const char *scope);
/* Create a stream with fixed(n) and the given tags (NULL-terminated, may be
 * NULL); starts the CREATE workflow only. */
int h_create_stream_only(struct cfsm *f, const char *scope, const char *stream,
                         uint32_t n, const char **tags);
/* Create and complete the create workflow (stream ACTIVE). */
int h_create_stream(struct cfsm *f, const char *scope, const char *stream,
                    uint32_t n);
/* Start a scale: seal ids[0..n_ids), new ranges lows/highs[0..n_r). */
int h_scale_only(struct cfsm *f, const char *scope, const char *stream,
                 const uint64_t *ids, size_t n_ids, const double *lows,
                 const double *highs, size_t n_r);
/* Start and finish a scale. */
int h_scale(struct cfsm *f, const char *scope, const char *stream,
            const uint64_t *ids, size_t n_ids, const double *lows,
            const double *highs, size_t n_r);
int h_seal_only(struct cfsm *f, const char *scope, const char *stream);
int h_seal(struct cfsm *f, const char *scope, const char *stream);
int h_delete_only(struct cfsm *f, const char *scope, const char *stream);
int h_delete(struct cfsm *f, const char *scope, const char *stream);
/* Start truncation at the cut ids/offsets[0..n). */
int h_truncate_only(struct cfsm *f, const char *scope, const char *stream,
                    const uint64_t *ids, const int64_t *offsets, size_t n);

/* Report the current step of workflow id done, with sizes = 1000 + segment
 * number for sealed segments (and a roll's sealed copies). */
int h_step(struct cfsm *f, uint64_t id);
/* Report steps until workflow id is finished. */
int h_finish(struct cfsm *f, uint64_t id);

int h_register(struct cfsm *f, const char *node, uint64_t now_ms,
               uint64_t lease_ms);
int h_heartbeat(struct cfsm *f, const char *node, uint64_t now_ms,
                uint64_t lease_ms);
int h_tick(struct cfsm *f, uint64_t now_ms);

/* cmocka group setup/teardown: *state = a 4-container FSM (static: one
 * test at a time) with scope "sc" and stream "sc/s" of 2 segments, ACTIVE;
 * non-zero when that fails. */
int h_setup_sc_s(void **state);
int h_teardown(void **state);

/* Snapshot bytes (strata_free them). */
uint8_t *h_snap(const struct cfsm *f, size_t *len);
/* True when the FSM's snapshot equals buf/len. */
int h_same(const struct cfsm *f, const uint8_t *buf, size_t len);

#endif /* TESTS_UNIT_CONTROLLER_CFSM_HELPERS_H */
