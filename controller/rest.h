/* Controller REST API, health probes and Prometheus metrics on the
 * controller's HTTP port (common/http). */
#ifndef CONTROLLER_REST_H
#define CONTROLLER_REST_H

#include <stddef.h>
#include <stdint.h>

#include "controller/api.h"
#include "controller/service.h"

struct metrics_registry;

struct rest_config {
	const char *url;                  /* "http://0.0.0.0:9091"; copied */
	const char *config_key;           /* named in errors ("http.listen") */
	struct ctl_service *svc;          /* borrowed until rest_stop */
	struct ctl_api *api;              /* borrowed until rest_stop */
	struct metrics_registry *metrics; /* served on /metrics; borrowed */
	unsigned forward_timeout_ms;      /* writes forwarded to the leader */
};

struct rest;

/*
 * Register the controller gauges (Raft term, commit/applied index, leader,
 * running workflows by kind, stores alive) in cfg->metrics and start
 * serving:
 *   GET    /v1/scopes                          list scopes
 *   POST   /v1/scopes                          {"scope":"s"}
 *   GET    /v1/scopes/{s}                      the scope and its streams
 *   DELETE /v1/scopes/{s}                      delete an empty scope
 *   GET    /v1/scopes/{s}/streams[?tag=t]      list streams
 *   POST   /v1/scopes/{s}/streams              {"stream":"t", ...}
 *   GET    /v1/scopes/{s}/streams/{t}          describe (config, segments)
 *   PUT    /v1/scopes/{s}/streams/{t}          update the configuration
 *   PUT    /v1/scopes/{s}/streams/{t}/state    {"state":"SEALED"}
 *   DELETE /v1/scopes/{s}/streams/{t}          delete a sealed stream
 *   GET    /health/live, /health/ready, /metrics
 * Bodies are JSON; errors answer {"error":NAME,"code":N,"message":...}
 * with a matching HTTP status. A follower forwards writes to the leader.
 * Errors: those of http_server_start (errmsg), STRATA_ENOMEM.
 */
int rest_start(const struct rest_config *cfg, struct rest **out, char *errmsg);

/* The port listened on (the chosen one for port 0). */
int rest_port(const struct rest *r);

/* Stop serving and free r (waits for running handlers). NULL ok. */
void rest_stop(struct rest *r);

/* --- JSON helpers, exposed for the unit test --- */

/* Find top-level key in the JSON object body[0..len) and copy its string
 * value into out (size bytes). 0, STRATA_ENOENT (absent), STRATA_EPROTO
 * (not an object / not a string / malformed / too long). */
int rest_json_string(const char *body, size_t len, const char *key, char *out,
                     size_t size);

/* Same for a non-negative integer value. */
int rest_json_uint(const char *body, size_t len, const char *key,
                   uint64_t *out);

/* Same for an array of strings: calls fn(arg, s) for each element (s is
 * NUL-terminated, borrowed for the call; at most 256 bytes). */
int rest_json_strings(const char *body, size_t len, const char *key,
                      void (*fn)(void *arg, const char *s), void *arg);

/* Check that the JSON object body[0..len) names only keys of known[0..n),
 * each at most once: 0; STRATA_EINVAL with msg (STRATA_ERRMSG_SIZE)
 * naming the unknown or repeated key and the known ones (a typo must not
 * leave a setting at its default); STRATA_EPROTO when it is not an
 * object. */
int rest_json_keys(const char *body, size_t len, const char *const *known,
                   size_t n, char *msg);

#endif /* CONTROLLER_REST_H */
