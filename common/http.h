/* Small HTTP/1.1 server (on NNG's HTTP server) for /metrics, health
 * probes and REST handlers; NNG types stay inside http.c. */
#ifndef COMMON_HTTP_H
#define COMMON_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct metrics_registry;

/* Largest request body accepted (larger: 400) and response body built. */
#define HTTP_REQUEST_BODY_MAX (1024 * 1024)
#define HTTP_RESPONSE_BODY_MAX (64 * 1024 * 1024)

/* A request as a handler sees it; everything is borrowed for the call. */
struct http_request {
	const char *method;  /* "GET", "POST", ... */
	const char *uri;     /* path and query as sent: "/v1/scopes?x=1" */
	const uint8_t *body; /* request body; NULL when empty */
	size_t body_len;     /* bytes in body */
	void *impl;          /* private to http.c */
};

/* The response a handler fills in. */
struct http_response {
	int status;            /* HTTP status; preset to 200 */
	char content_type[96]; /* preset to "text/plain; charset=utf-8" */
	struct buf body;       /* empty, limited to HTTP_RESPONSE_BODY_MAX */
};

/*
 * Handle one request: fill res and return 0. A non-zero STRATA_E* return
 * discards res and answers 500 with the error's description. Runs on an
 * NNG worker thread, possibly several at once: must be thread-safe and
 * should not block for long.
 */
typedef int (*http_handler_fn)(void *arg, const struct http_request *req,
                               struct http_response *res);

/* What GET /health/ready reports. */
enum http_readiness {
	HTTP_READY = 0,     /* 200, "ready" */
	HTTP_DEGRADED = 1,  /* 200, "degraded": serving, something is off */
	HTTP_NOT_READY = 2, /* 503, "not_ready": do not send traffic */
};

/*
 * Readiness probe: return the state and optionally append a short JSON
 * value (e.g. {"raft":"follower"}) to detail. Same threading rules as
 * http_handler_fn.
 */
typedef enum http_readiness (*http_ready_fn)(void *arg, struct buf *detail);

/* How to start a server; every pointer is borrowed until http_server_stop
 * (url and config_key only for the call). */
struct http_server_config {
	const char *url;        /* "http://127.0.0.1:9091"; port 0 = any */
	const char *config_key; /* key that set url, named in errors */
	struct metrics_registry *metrics; /* GET /metrics; NULL = none */
	http_ready_fn ready;              /* GET /health/ready; NULL = ready */
	void *ready_arg;                  /* passed to ready */
};

struct http_server;

/*
 * Start listening on cfg->url with the built-in handlers: GET /metrics
 * (when cfg->metrics is set), GET /health/live (always 200) and GET
 * /health/ready (200 for ready/degraded, 503 for not ready; JSON body
 * {"status":"...","detail":...}). Unknown paths get 404 and a wrong method
 * 405. *out is owned by the caller until http_server_stop.
 * Errors (errmsg names the address and, for config problems,
 * cfg->config_key): STRATA_ECONFIG (bad URL or address), STRATA_EBUSY (the
 * port is taken, by another process or another server in this process),
 * STRATA_EPERM (privileged port), STRATA_ENOMEM, STRATA_EIO.
 */
int http_server_start(const struct http_server_config *cfg,
                      struct http_server **out, char *errmsg);

/* The TCP port the server listens on (the chosen one when cfg->url asked
 * for port 0). */
int http_server_port(const struct http_server *srv);

/*
 * Serve method (NULL = any method) on path with fn(arg, ...); arg is
 * borrowed until http_server_stop. A path ending in a slash and an
 * asterisk ('/' '*') serves the whole subtree below it (req->uri tells
 * which). Thread-safe; may be called while serving. Errors: STRATA_EINVAL
 * (path not starting with '/', or fn NULL), STRATA_EEXIST (the method and
 * path are already served), STRATA_ENOMEM.
 */
int http_server_add_handler(struct http_server *srv, const char *method,
                            const char *path, http_handler_fn fn, void *arg);

/* Value of a request header (case-insensitive name), or NULL. Borrowed
 * for the handler call. */
const char *http_request_header(const struct http_request *req,
                                const char *name);

/* Stop accepting, close every connection (waiting for running handlers)
 * and free srv. NULL is a no-op. */
void http_server_stop(struct http_server *srv);

#endif /* COMMON_HTTP_H */
