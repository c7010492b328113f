/* The real libstrata transport: a common/rpc client for the controller
 * replicas; short segment-store calls (appends among them) through
 * client/wire on the I/O thread; reads, and every call when the store URL
 * is not a numeric tcp:// one or LIBSTRATA_NNG=1 is in the
 * environment, through one common/rpc pair (short calls, long polls) per
 * store URL. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "client/wire.h"
#include "common/alloc.h"
#include "strata/error.h"

/* Most store URLs remembered (stores of a cluster; redirects included). */
#define TR_MAX_STORES 256

struct tr_store {
	char *url;
	struct rpc_client *rpc;  /* short calls */
	struct rpc_client *poll; /* long-polling reads; NULL until used */
};

struct transport {
	pthread_rwlock_t lock; /* write: close; read: calls */
	pthread_mutex_t mu;    /* guards stores */
	bool closed;
	struct rpc_client_opts opts;      /* short calls */
	struct rpc_client_opts poll_opts; /* long polls */
	struct rpc_client *ctl;
	struct wire *wire; /* NULL: stores through common/rpc only */
	size_t n_stores;
	struct tr_store stores[TR_MAX_STORES];
};

int transport_new(const struct strata_client_config *cfg, void **out,
                  char *errmsg)
{
	struct transport *t = strata_calloc(1, sizeof(*t));
	if (t == NULL) {
		client_err(errmsg, "out of memory creating the client");
		return STRATA_ENOMEM;
	}
	rpc_client_opts_default(&t->opts);
	t->opts.timeout_ms = cfg->request_timeout_ms;
	t->opts.connect_timeout_ms = cfg->connect_timeout_ms;
	t->opts.retries = cfg->retries;
	int rc = rpc_client_open(&t->ctl, cfg->controller_urls,
	                         cfg->n_controller_urls, &t->opts, errmsg);
	if (rc != 0) {
		strata_free(t);
		return rc;
	}
	/* Stores: one URL per rpc client, so no retry there; seg_op fails
	 * over to the other replicas (and the writer resyncs) at once. */
	t->opts.retries = 0;
	t->poll_opts = t->opts;
	t->poll_opts.timeout_ms =
	        cfg->request_timeout_ms + cfg->max_read_wait_ms;
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->mu, NULL);
	*out = t;
	return 0;
}

/* The rpc client for url (created on first use); NULL with an error. */
static struct rpc_client *store_client(struct transport *t, const char *url,
                                       bool poll, int *rc, char *errmsg)
{
	struct rpc_client *cli = NULL;
	pthread_mutex_lock(&t->mu);
	struct tr_store *s = NULL;
	for (size_t i = 0; i < t->n_stores; i++) {
		if (strcmp(t->stores[i].url, url) == 0) {
			s = &t->stores[i];
			break;
		}
	}
	if (s == NULL) {
		if (t->n_stores == TR_MAX_STORES) {
			*rc = STRATA_ENOMEM;
			client_err(errmsg,
			           "more than %d segment store URLs in use; "
			           "recreate the client",
			           TR_MAX_STORES);
			goto out;
		}
		char *u = strata_strdup(url);
		if (u == NULL) {
			*rc = STRATA_ENOMEM;
			client_err(errmsg, "out of memory");
			goto out;
		}
		s = &t->stores[t->n_stores];
		s->url = u;
		s->rpc = NULL;
		s->poll = NULL;
		t->n_stores++;
	}
	struct rpc_client **slot = poll ? &s->poll : &s->rpc;
	if (*slot == NULL) {
		const char *urls[1] = {url};
		*rc = rpc_client_open(slot, urls, 1,
		                      poll ? &t->poll_opts : &t->opts, errmsg);
		if (*rc != 0) {
			*slot = NULL;
			goto out;
		}
	}
	cli = *slot;
out:
	pthread_mutex_unlock(&t->mu);
	return cli;
}

static int tr_attach(void *tr, struct loop *l, char *errmsg)
{
	struct transport *t = tr;
	const char *nng = getenv("LIBSTRATA_NNG");
	if (nng != NULL && strcmp(nng, "1") == 0) {
		return 0;
	}
	struct wire_opts o = {
	        .timeout_ms = t->opts.timeout_ms,
	        .connect_timeout_ms = t->opts.connect_timeout_ms,
	        .max_redirects = t->opts.max_redirects,
	        .max_msg_bytes = t->opts.max_msg_bytes,
	};
	int rc = wire_new(l, &o, &t->wire);
	if (rc != 0) {
		client_err(errmsg, "out of memory creating the client");
	}
	return rc;
}

static int tr_call(void *tr, const char *url, uint32_t method, unsigned flags,
                   const uint8_t *req, size_t len, rpc_done_fn cb, void *arg,
                   char *errmsg)
{
	struct transport *t = tr;
	int rc = 0;
	pthread_rwlock_rdlock(&t->lock);
	if (t->closed) {
		rc = STRATA_ECLOSED;
		client_err(errmsg, "the client is closing");
		goto out;
	}
	/* Reads stay with common/rpc: NNG's threads receive a read's
	 * megabytes while the I/O thread hands on the previous one (on the
	 * I/O thread the catch-up read measured 867 instead of 1013 MB/s). */
	if (url != NULL && t->wire != NULL && (flags & CT_LONGPOLL) == 0 &&
	    wire_url_ok(url)) {
		rc = wire_call(t->wire, url, method, req, len, cb, arg, errmsg);
		goto out;
	}
	struct rpc_client *cli = t->ctl;
	if (url != NULL) {
		cli = store_client(t, url, (flags & CT_LONGPOLL) != 0, &rc,
		                   errmsg);
		if (cli == NULL) {
			goto out;
		}
	}
	rc = rpc_call_async(cli, method, flags & RPC_IDEMPOTENT, req, len, cb,
	                    arg, errmsg);
out:
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

static void tr_close(void *tr)
{
	struct transport *t = tr;
	pthread_rwlock_wrlock(&t->lock);
	bool was = t->closed;
	t->closed = true;
	pthread_rwlock_unlock(&t->lock);
	if (was) {
		return;
	}
	/* No new call can start: close outside the lock (callbacks run). */
	wire_close(t->wire);
	rpc_client_close(t->ctl);
	for (size_t i = 0; i < t->n_stores; i++) {
		if (t->stores[i].rpc != NULL) {
			rpc_client_close(t->stores[i].rpc);
		}
		if (t->stores[i].poll != NULL) {
			rpc_client_close(t->stores[i].poll);
		}
		strata_free(t->stores[i].url);
	}
	t->n_stores = 0;
}

static void tr_free(void *tr)
{
	struct transport *t = tr;
	if (t == NULL) {
		return;
	}
	tr_close(t);
	wire_free(t->wire);
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->mu);
	strata_free(t);
}

const struct ct_ops transport_rpc_ops = {
        .attach = tr_attach,
        .call = tr_call,
        .close = tr_close,
        .free = tr_free,
};
