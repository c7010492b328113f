/* HTTP server for metrics, health and REST on NNG's HTTP server (see
 * http.h).
 *
 * happy path: http_server_start parses the URL, holds an NNG server,
 * registers the built-in handlers, starts listening and records the bound
 * port; requests run handler_cb on NNG worker threads; http_server_stop
 * stops the NNG server (waiting for running handlers), releases it and
 * frees ours.
 * failure modes: a bad URL or taken port fails start with a message naming
 * the address and the config key; a handler error or an unbuildable
 * response answers 500; NNG itself answers 404/405/400.
 *
 * NNG shares one server object per host:port inside a process
 * (nng_http_server_hold), so starts are serialised and a list of our live
 * servers turns a second start on the same address into a clear error
 * instead of a silent share.
 */
#include "common/http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/metrics.h"
#include "strata/error.h"

#define DEFAULT_CONTENT_TYPE "text/plain; charset=utf-8"
#define JSON_CONTENT_TYPE "application/json"

struct http_server {
	struct http_server *next;         /* in live_servers */
	nng_http_server *nng;             /* held NNG server */
	char *host;                       /* host part of the URL */
	int port;                         /* bound port */
	struct metrics_registry *metrics; /* borrowed; NULL = no /metrics */
	http_ready_fn ready;              /* NULL = always ready */
	void *ready_arg;                  /* borrowed, passed to ready */
	pthread_mutex_t lock;             /* guards handlers */
	struct handler_ctx *handlers;     /* ours to free at stop */
};

/*
 * A handler's data in NNG. We free it in http_server_stop, after NNG has
 * stopped calling handlers: NNG finalises handlers later on its reaper
 * thread, so it gets no destructor.
 */
struct handler_ctx {
	struct handler_ctx *next; /* in http_server.handlers */
	http_handler_fn fn;       /* the user's handler */
	void *arg;                /* borrowed, passed to fn */
};

/* Serialises start/stop and guards live_servers. */
static pthread_mutex_t servers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_server *live_servers;

static int map_nng(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return STRATA_ENOMEM;
	case NNG_EADDRINUSE:
		return STRATA_EBUSY;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return STRATA_ECONFIG;
	case NNG_EPERM:
		return STRATA_EPERM;
	default:
		return STRATA_EIO;
	}
}

const char *http_request_header(const struct http_request *req,
                                const char *name)
{
	return nng_http_req_get_header(req->impl, name);
}

/* Turn a filled http_response into an NNG reply and complete the aio.
 * Nothing may touch the handler's data after nng_aio_finish. */
static void reply(nng_aio *aio, struct http_response *res)
{
	nng_http_res *nres = NULL;
	int rv = nng_http_res_alloc(&nres);
	if (rv == 0) {
		rv = nng_http_res_set_status(nres, (uint16_t)res->status);
	}
	if (rv == 0) {
		rv = nng_http_res_set_header(nres, "Content-Type",
		                             res->content_type);
	}
	if (rv == 0 && res->body.len > 0) {
		rv = nng_http_res_copy_data(nres, res->body.data,
		                            res->body.len);
	}
	buf_close(&res->body);
	if (rv != 0) {
		if (nres != NULL) {
			nng_http_res_free(nres);
		}
		nng_aio_finish(aio, rv); /* NNG closes the connection */
		return;
	}
	nng_aio_set_output(aio, 0, nres);
	nng_aio_finish(aio, 0);
}

/* NNG's entry point for every request we serve. */
static void handler_cb(nng_aio *aio)
{
	nng_http_req *nreq = nng_aio_get_input(aio, 0);
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	struct handler_ctx *ctx = nng_http_handler_get_data(h);

	void *body = NULL;
	size_t body_len = 0;
	nng_http_req_get_data(nreq, &body, &body_len);
	struct http_request req = {
	        .method = nng_http_req_get_method(nreq),
	        .uri = nng_http_req_get_uri(nreq),
	        .body = body_len > 0 ? body : NULL,
	        .body_len = body_len,
	        .impl = nreq,
	};
	struct http_response res = {.status = 200};
	snprintf(res.content_type, sizeof(res.content_type), "%s",
	         DEFAULT_CONTENT_TYPE);
	buf_init(&res.body, HTTP_RESPONSE_BODY_MAX);

	int rv = ctx->fn(ctx->arg, &req, &res);
	if (rv == 0 && (res.status < 100 || res.status > 599)) {
		LOG_WARN("http", "%s %s: handler set invalid status %d",
		         req.method, req.uri, res.status);
		rv = STRATA_EINTERNAL;
	}
	if (rv != 0) {
		buf_reset(&res.body);
		res.status = 500;
		snprintf(res.content_type, sizeof(res.content_type), "%s",
		         DEFAULT_CONTENT_TYPE);
		/* Best effort: an empty 500 is still an answer. */
		(void)buf_printf(&res.body, "%s %s failed: %s\n", req.method,
		                 req.uri, strata_strerror(rv));
	}
	reply(aio, &res);
}

int http_server_add_handler(struct http_server *srv, const char *method,
                            const char *path, http_handler_fn fn, void *arg)
{
	if (path == NULL || path[0] != '/' || fn == NULL) {
		return STRATA_EINVAL;
	}
	size_t plen = strlen(path);
	bool tree = plen >= 2 && strcmp(path + plen - 2, "/*") == 0;
	char *p = strata_strndup(path, tree ? plen - 2 : plen);
	struct handler_ctx *ctx = strata_malloc(sizeof(*ctx));
	if (p == NULL || ctx == NULL) {
		strata_free(p);
		strata_free(ctx);
		return STRATA_ENOMEM;
	}
	ctx->fn = fn;
	ctx->arg = arg;
	nng_http_handler *h;
	/* NNG copies the path; a tree at the root is "/". */
	int rv = nng_http_handler_alloc(&h, p[0] != '\0' ? p : "/", handler_cb);
	strata_free(p);
	if (rv != 0) {
		strata_free(ctx);
		return map_nng(rv);
	}
	rv = nng_http_handler_set_data(h, ctx, NULL);
	if (rv == 0) {
		rv = nng_http_handler_set_method(h, method);
	}
	if (rv == 0) {
		rv = nng_http_handler_collect_body(h, true,
		                                   HTTP_REQUEST_BODY_MAX);
	}
	if (rv == 0 && tree) {
		rv = nng_http_handler_set_tree(h);
	}
	if (rv == 0) {
		/* Remembered so that http_server_stop frees it. */
		pthread_mutex_lock(&srv->lock);
		ctx->next = srv->handlers;
		srv->handlers = ctx;
		rv = nng_http_server_add_handler(srv->nng, h);
		if (rv != 0) {
			srv->handlers = ctx->next;
		}
		pthread_mutex_unlock(&srv->lock);
	}
	if (rv == 0) {
		return 0;
	}
	nng_http_handler_free(h);
	strata_free(ctx);
	return rv == NNG_EADDRINUSE ? STRATA_EEXIST : map_nng(rv);
}

static int metrics_handler(void *arg, const struct http_request *req,
                           struct http_response *res)
{
	(void)req;
	struct http_server *srv = arg;
	snprintf(res->content_type, sizeof(res->content_type), "%s",
	         METRICS_CONTENT_TYPE);
	return metrics_render(srv->metrics, &res->body);
}

static int live_handler(void *arg, const struct http_request *req,
                        struct http_response *res)
{
	(void)arg;
	(void)req;
	snprintf(res->content_type, sizeof(res->content_type), "%s",
	         JSON_CONTENT_TYPE);
	return buf_printf(&res->body, "{\"status\":\"live\"}\n");
}

static int ready_handler(void *arg, const struct http_request *req,
                         struct http_response *res)
{
	(void)req;
	struct http_server *srv = arg;
	static const char *const names[] = {"ready", "degraded", "not_ready"};
	enum http_readiness state = HTTP_READY;
	struct buf detail;
	buf_init(&detail, 4096);
	if (srv->ready != NULL) {
		state = srv->ready(srv->ready_arg, &detail);
	}
	if (state != HTTP_READY && state != HTTP_DEGRADED) {
		state = HTTP_NOT_READY;
	}
	res->status = state == HTTP_NOT_READY ? 503 : 200;
	snprintf(res->content_type, sizeof(res->content_type), "%s",
	         JSON_CONTENT_TYPE);
	int rv = buf_printf(
	        &res->body, "{\"status\":\"%s\",\"detail\":%s}\n", names[state],
	        detail.len > 0 ? (const char *)detail.data : "null");
	buf_close(&detail);
	return rv;
}

static void server_free(struct http_server *srv)
{
	struct handler_ctx *ctx = srv->handlers;
	while (ctx != NULL) {
		struct handler_ctx *next = ctx->next;
		strata_free(ctx);
		ctx = next;
	}
	pthread_mutex_destroy(&srv->lock);
	strata_free(srv->host);
	strata_free(srv);
}

/* Find our live server on host:port; caller holds servers_lock. */
static bool address_in_use(const char *host, int port)
{
	for (struct http_server *s = live_servers; s != NULL; s = s->next) {
		if (s->port == port && strcmp(s->host, host) == 0) {
			return true;
		}
	}
	return false;
}

int http_server_start(const struct http_server_config *cfg,
                      struct http_server **out, char *errmsg)
{
	const char *key = cfg->config_key != NULL ? cfg->config_key
	                                          : "the listen address";
	const char *url_s = cfg->url != NULL ? cfg->url : "";
	nng_url *url;
	int rv = nng_url_parse(&url, url_s);
	if (rv == NNG_ENOMEM) {
		errmsg_set(errmsg, "parse listen URL %s: out of memory", url_s);
		return STRATA_ENOMEM;
	}
	if (rv != 0 || strcmp(url->u_scheme, "http") != 0 ||
	    url->u_hostname[0] == '\0' ||
	    (url->u_path[0] != '\0' && strcmp(url->u_path, "/") != 0)) {
		errmsg_set(
		        errmsg,
		        "invalid listen URL \"%s\": expected "
		        "http://HOST:PORT, e.g. http://127.0.0.1:9091; fix %s",
		        url_s, key);
		if (rv == 0) {
			nng_url_free(url);
		}
		return STRATA_ECONFIG;
	}
	char *end;
	long port = strtol(url->u_port, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535) {
		errmsg_set(errmsg, "invalid port in listen URL \"%s\"; fix %s",
		           url_s, key);
		nng_url_free(url);
		return STRATA_ECONFIG;
	}

	struct http_server *srv = strata_calloc(1, sizeof(*srv));
	if (srv == NULL ||
	    (srv->host = strata_strdup(url->u_hostname)) == NULL) {
		errmsg_set(errmsg, "start HTTP server on %s: out of memory",
		           url_s);
		strata_free(srv);
		nng_url_free(url);
		return STRATA_ENOMEM;
	}
	pthread_mutex_init(&srv->lock, NULL);
	srv->port = (int)port;
	srv->metrics = cfg->metrics;
	srv->ready = cfg->ready;
	srv->ready_arg = cfg->ready_arg;

	pthread_mutex_lock(&servers_lock);
	if (port != 0 && address_in_use(srv->host, (int)port)) {
		errmsg_set(errmsg,
		           "listen on %s: this process already serves HTTP on "
		           "that address; give %s another port",
		           url_s, key);
		rv = STRATA_EBUSY;
		goto err_unlock;
	}
	rv = nng_http_server_hold(&srv->nng, url);
	if (rv != 0) {
		errmsg_set(errmsg, "listen on %s: %s; check %s", url_s,
		           nng_strerror(rv), key);
		rv = map_nng(rv);
		goto err_unlock;
	}
	rv = 0;
	if (cfg->metrics != NULL) {
		rv = http_server_add_handler(srv, "GET", "/metrics",
		                             metrics_handler, srv);
	}
	if (rv == 0) {
		rv = http_server_add_handler(srv, "GET", "/health/live",
		                             live_handler, srv);
	}
	if (rv == 0) {
		rv = http_server_add_handler(srv, "GET", "/health/ready",
		                             ready_handler, srv);
	}
	if (rv != 0) {
		errmsg_set(errmsg, "listen on %s: register handlers: %s", url_s,
		           strata_strerror(rv));
		goto err_release;
	}
	rv = nng_http_server_start(srv->nng);
	if (rv == NNG_EADDRINUSE) {
		errmsg_set(errmsg,
		           "listen on %s: address already in use (something "
		           "else listens on port %ld); stop it or change %s",
		           url_s, port, key);
		rv = STRATA_EBUSY;
		goto err_release;
	}
	if (rv == NNG_EADDRINVAL) {
		errmsg_set(errmsg,
		           "listen on %s: %s does not resolve to an address of "
		           "this machine; fix %s",
		           url_s, srv->host, key);
		rv = STRATA_ECONFIG;
		goto err_release;
	}
	if (rv != 0) {
		errmsg_set(errmsg, "listen on %s: %s; check %s", url_s,
		           nng_strerror(rv), key);
		rv = map_nng(rv);
		goto err_release;
	}
	/* The bound port, which differs from the URL's when that was 0. */
	nng_sockaddr sa;
	if (nng_http_server_get_addr(srv->nng, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET) {
			srv->port = ntohs(sa.s_in.sa_port);
		} else if (sa.s_family == NNG_AF_INET6) {
			srv->port = ntohs(sa.s_in6.sa_port);
		}
	}
	srv->next = live_servers;
	live_servers = srv;
	pthread_mutex_unlock(&servers_lock);
	nng_url_free(url);
	LOG_INFO("http", "serving HTTP on %s (port %d)", url_s, srv->port);
	*out = srv;
	return 0;

err_release:
	nng_http_server_release(srv->nng);
err_unlock:
	pthread_mutex_unlock(&servers_lock);
	server_free(srv);
	nng_url_free(url);
	return rv;
}

int http_server_port(const struct http_server *srv)
{
	return srv->port;
}

void http_server_stop(struct http_server *srv)
{
	if (srv == NULL) {
		return;
	}
	pthread_mutex_lock(&servers_lock);
	for (struct http_server **pp = &live_servers; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == srv) {
			*pp = srv->next;
			break;
		}
	}
	/* Waits for open connections, hence running handlers, to finish. */
	nng_http_server_stop(srv->nng);
	nng_http_server_release(srv->nng);
	pthread_mutex_unlock(&servers_lock);
	server_free(srv);
}
