/* libstrata's segment-store connections: SP req0 over TCP on the client's
 * I/O thread (see wire.h).
 *
 * Why not an NNG req0 socket: with NNG every call crossed threads four
 * times in the client (send completion and reply on NNG's task threads,
 * the reaper for the closed context, then the I/O thread) and allocated
 * two aios and a context. Here the I/O thread writes the request itself
 * and reads replies in its own epoll wait: a reply costs one wake-up.
 *
 * Per connection (one per store URL):
 * IDLE -> [RESOLVING (a host name: getaddrinfo on a thread of its own,
 * at every connect, so a store that moved is found)] -> CONNECTING
 * (non-blocking connect, each address in turn) -> HELLO (SP headers
 * exchanged; the peer must be rep0) -> UP. Calls queue on it in order;
 * ops[head .. unsent) are written and wait for their reply, matched by
 * request id; [unsent ..) wait to be written. A lost connection ends
 * every call on it (STRATA_EUNAVAIL: the caller decides; libstrata's
 * segment operations resync and retry); the next call reconnects.
 */
#include "client/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <nng/nng.h>

#include "common/alloc.h"
#include "common/sp.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "strata/error.h"

#define SP_HDR 12u               /* frame length (8) + request id (4) */
#define WIRE_STAGE (64u * 1024)  /* socket reads of small frames */
#define WIRE_DIRECT (16u * 1024) /* read straight into envelopes this big */
#define WIRE_IOV 64
#define WIRE_ADDRS 4 /* addresses of a host name, tried in order */

/* ---------------------------------------------------------- connections */

enum conn_state { WC_IDLE, WC_RESOLVING, WC_CONNECTING, WC_HELLO, WC_UP };

/*
 * A host name lookup, on a thread of its own (getaddrinfo blocks, and the
 * I/O thread serves every other connection meanwhile). It may outlive the
 * connection that started it (a deadline, the client closing): refs count
 * the thread, the connection and a posted result task, under mu, and the
 * thread posts only while the connection still waits (!cancelled).
 */
struct wres {
	pthread_mutex_t mu;
	int refs;
	bool cancelled; /* the connection let go (loop thread) */
	struct loop *loop;
	struct wconn *c; /* valid while !cancelled */
	struct loop_task task;
	wire_resolve_fn resolve;
	char host[RPC_MAX_URL_LEN + 1];
	unsigned port;
	/* Written by the thread before it posts the task: */
	size_t n; /* addresses found; 0: errmsg says why */
	struct sockaddr_storage addrs[WIRE_ADDRS];
	socklen_t lens[WIRE_ADDRS];
	char errmsg[STRATA_ERRMSG_SIZE];
};

struct wop {
	struct wop *prev, *next; /* conn->head list, in send order */
	struct wire *w;
	struct wconn *conn;
	struct loop_task start;
	char url[RPC_MAX_URL_LEN + 1];
	uint32_t id;
	uint32_t method;
	int redirects;
	uint64_t deadline_ms;
	rpc_done_fn cb; /* NULL once finished (kept until fully written) */
	void *arg;
	size_t frame_len;
	uint8_t frame[]; /* length (8), id (4), envelope */
};

struct wconn {
	struct wconn *next; /* w->conns */
	struct wire *w;
	char url[RPC_MAX_URL_LEN + 1];
	enum conn_state state;
	int fd;
	struct loop_io io;
	uint32_t io_events;
	struct loop_timer timer; /* connect deadline and call deadlines */
	uint64_t connect_deadline_ms;
	struct wres *res;                          /* RESOLVING: the lookup */
	struct sockaddr_storage addrs[WIRE_ADDRS]; /* to connect to */
	socklen_t lens[WIRE_ADDRS];
	size_t n_addrs, next_addr; /* next_addr: the next one to try */
	struct wop *head, *tail;
	struct wop *unsent; /* first op not fully written */
	size_t unsent_off;  /* bytes of it written */
	size_t hello_sent;
	struct sp_rx rx;
};

struct wire {
	struct loop *loop;
	struct wire_opts opts;
	atomic_bool closed; /* wire_close called */
	bool closing;       /* loop thread: closing or closed */
	uint32_t next_id;
	struct wconn *conns;
	uint8_t *stage; /* WIRE_STAGE bytes */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool close_done;
	struct loop_task close_task;
};

static const uint8_t hello_req0[8] = {0, 'S', 'P', 0, 0, SP_PROTO_REQ0, 0, 0};

int wire_new(struct loop *l, const struct wire_opts *o, struct wire **out)
{
	struct wire *w = strata_calloc(1, sizeof(*w));
	if (w == NULL) {
		return STRATA_ENOMEM;
	}
	w->stage = strata_malloc(WIRE_STAGE);
	if (w->stage == NULL) {
		strata_free(w);
		return STRATA_ENOMEM;
	}
	w->loop = l;
	w->opts = *o;
	atomic_init(&w->closed, false);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	*out = w;
	return 0;
}

bool wire_url_ok(const char *url)
{
	struct sockaddr_storage sa;
	socklen_t len;
	char host[RPC_MAX_URL_LEN + 1];
	unsigned port;
	return sp_url_parse(url, false, host, sizeof(host), &port, &sa, &len) !=
	       SP_URL_BAD;
}

/* ------------------------------------------------------- name lookups */

static void wres_free(struct wres *r)
{
	pthread_mutex_destroy(&r->mu);
	strata_free(r);
}

/* The default wire_resolve_fn: getaddrinfo, IPv4 and IPv6 in its order. */
static size_t resolve_getaddrinfo(const char *host, unsigned port,
                                  struct sockaddr_storage *addrs,
                                  socklen_t *lens, size_t n, char *errmsg)
{
	char serv[8];
	snprintf(serv, sizeof(serv), "%u", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(host, serv, &hints, &ai);
	if (rc != 0) {
		errmsg_set(errmsg, "host name %s does not resolve: %s", host,
		           rc == EAI_SYSTEM ? strerror(errno)
		                            : gai_strerror(rc));
		return 0;
	}
	size_t k = 0;
	for (struct addrinfo *a = ai; a != NULL && k < n; a = a->ai_next) {
		if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
		    a->ai_addrlen <= sizeof(addrs[k])) {
			memcpy(&addrs[k], a->ai_addr, a->ai_addrlen);
			lens[k] = (socklen_t)a->ai_addrlen;
			k++;
		}
	}
	freeaddrinfo(ai);
	if (k == 0) {
		errmsg_set(errmsg, "host name %s has no IPv4 or IPv6 address",
		           host);
	}
	return k;
}

static void *resolve_main(void *arg)
{
	struct wres *r = arg;
	pthread_setname_np(pthread_self(), "strata-resolve");
	r->n = r->resolve(r->host, r->port, r->addrs, r->lens, WIRE_ADDRS,
	                  r->errmsg);
	pthread_mutex_lock(&r->mu);
	if (!r->cancelled) {
		r->refs++; /* the task's */
		loop_post(r->loop, &r->task);
	}
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&r->mu);
	if (last) {
		wres_free(r);
	}
	return NULL;
}

/* The connection gives up its lookup, if any (loop thread). */
static void conn_drop_lookup(struct wconn *c)
{
	struct wres *r = c->res;
	if (r == NULL) {
		return;
	}
	c->res = NULL;
	pthread_mutex_lock(&r->mu);
	r->cancelled = true;
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&r->mu);
	if (last) {
		wres_free(r);
	}
}

/* End op's call (once): cb with code, errmsg and body (NULL: none). */
static void op_done(struct wop *op, int code, const char *errmsg,
                    struct rpc_body *body)
{
	struct rpc_body none = {0};
	rpc_done_fn cb = op->cb;
	op->cb = NULL;
	cb(op->arg, code, code != 0 ? errmsg : "", body != NULL ? body : &none);
}

static void conn_unlink(struct wconn *c, struct wop *op)
{
	if (c->unsent == op) {
		c->unsent = op->next;
		c->unsent_off = 0;
	}
	if (op->prev != NULL) {
		op->prev->next = op->next;
	} else {
		c->head = op->next;
	}
	if (op->next != NULL) {
		op->next->prev = op->prev;
	} else {
		c->tail = op->prev;
	}
	op->prev = op->next = NULL;
	op->conn = NULL;
}

static void conn_watch(struct wconn *c, uint32_t events)
{
	if (c->io_events != events && c->fd >= 0) {
		loop_io_mod(c->w->loop, &c->io, events);
		c->io_events = events;
	}
}

/* Close c's socket, if any, and stop watching it. */
static void conn_close_socket(struct wconn *c)
{
	if (c->fd >= 0) {
		loop_io_del(c->w->loop, &c->io);
		close(c->fd);
		c->fd = -1;
	}
	c->io_events = 0;
}

/* Drop the connection; every op on it ends with code (why: errmsg
 * naming the URL). sent_why is used for ops already written. */
static void conn_fail(struct wconn *c, int code, const char *why,
                      const char *sent_why)
{
	conn_drop_lookup(c);
	conn_close_socket(c);
	loop_timer_cancel(c->w->loop, &c->timer);
	sp_rx_reset(&c->rx);
	c->state = WC_IDLE;
	c->hello_sent = 0;
	bool sent = true;
	while (c->head != NULL) {
		struct wop *op = c->head;
		if (op == c->unsent) {
			sent = false;
		}
		conn_unlink(c, op);
		if (op->cb != NULL) {
			op_done(op, code, sent ? sent_why : why, NULL);
		}
		strata_free(op);
	}
}

static void conn_fail_errno(struct wconn *c, const char *what, int err)
{
	char why[STRATA_ERRMSG_SIZE], sent_why[STRATA_ERRMSG_SIZE];
	errmsg_set(why, "segment store %s: %s: %s; request not sent", c->url,
	           what, strerror(err));
	errmsg_set(sent_why,
	           "segment store %s: %s: %s; the request may have been "
	           "executed",
	           c->url, what, strerror(err));
	conn_fail(c, STRATA_EUNAVAIL, why, sent_why);
}

/* Arm the timer for the earliest deadline on c (none: disarmed). */
static void conn_arm(struct wconn *c)
{
	uint64_t due = UINT64_MAX;
	if (c->state == WC_RESOLVING || c->state == WC_CONNECTING ||
	    c->state == WC_HELLO) {
		due = c->connect_deadline_ms;
	}
	for (struct wop *op = c->head; op != NULL; op = op->next) {
		if (op->cb != NULL && op->deadline_ms < due) {
			due = op->deadline_ms;
		}
	}
	if (due == UINT64_MAX) {
		loop_timer_cancel(c->w->loop, &c->timer);
		return;
	}
	uint64_t now = loop_now_ms();
	loop_timer_arm(c->w->loop, &c->timer, due > now ? due - now : 0);
}

/* Write what is queued; false when the connection failed meanwhile. */
static bool conn_flush(struct wconn *c)
{
	while (c->unsent != NULL) {
		struct iovec iov[WIRE_IOV];
		int n = 0;
		size_t off = c->unsent_off;
		for (struct wop *op = c->unsent; op != NULL && n < WIRE_IOV;
		     op = op->next) {
			iov[n].iov_base = op->frame + off;
			iov[n].iov_len = op->frame_len - off;
			off = 0;
			n++;
		}
		ssize_t wr = sp_sendv(c->fd, iov, n);
		if (wr == 0) {
			conn_watch(c, EPOLLIN | EPOLLOUT);
			return true;
		}
		if (wr < 0) {
			conn_fail_errno(c, "send", errno);
			return false;
		}
		size_t left = (size_t)wr;
		while (left > 0) {
			struct wop *op = c->unsent;
			size_t rest = op->frame_len - c->unsent_off;
			if (left < rest) {
				c->unsent_off += left;
				break;
			}
			left -= rest;
			c->unsent = op->next;
			c->unsent_off = 0;
			if (op->cb ==
			    NULL) { /* timed out while being written */
				conn_unlink(c, op);
				strata_free(op);
			}
		}
	}
	conn_watch(c, EPOLLIN);
	return true;
}

static void op_start(struct wop *op);
static bool conn_dial(struct wconn *c);

/* A reply for op (unlinked; msg transferred). */
static void op_reply(struct wop *op, void *msg)
{
	struct wire *w = op->w;
	struct rpc_result res;
	rpc_reply_take(msg, op->method, op->url, &res);
	if (res.redirect[0] != '\0' && op->redirects < w->opts.max_redirects &&
	    strcmp(res.redirect, op->url) != 0 && wire_url_ok(res.redirect)) {
		LOG_DEBUG("client.wire", "method %u: %s redirects to %s",
		          op->method, op->url, res.redirect);
		rpc_body_free(&res.body);
		op->redirects++;
		snprintf(op->url, sizeof(op->url), "%s", res.redirect);
		op_start(op);
		return;
	}
	op_done(op, res.code, res.errmsg, &res.body);
	strata_free(op);
}

static void conn_frame(struct wconn *c, uint32_t id, void *msg)
{
	for (struct wop *op = c->head; op != NULL && op != c->unsent;
	     op = op->next) {
		if (op->id == id) {
			conn_unlink(c, op);
			if (op->cb == NULL) { /* timed out: too late */
				nng_msg_free(msg);
				strata_free(op);
				return;
			}
			op_reply(op, msg);
			return;
		}
	}
	nng_msg_free(msg); /* a call that timed out (as NNG drops it) */
}

static void conn_protocol_error(struct wconn *c, const char *what)
{
	char why[STRATA_ERRMSG_SIZE];
	errmsg_set(why, "segment store %s: %s", c->url, what);
	LOG_WARN("client.wire", "%s; closing the connection", why);
	conn_fail(c, STRATA_EUNAVAIL, why, why);
}

/* The peer's SP header arrived: the connection is up. */
static void conn_up(struct wconn *c)
{
	c->state = WC_UP;
	conn_arm(c);
	conn_flush(c);
}

/* Feed p[0..n) to the parser; false when the connection failed. */
static bool conn_feed(struct wconn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		bool ready = sp_rx_ready(&c->rx);
		uint32_t id;
		void *msg;
		char why[STRATA_ERRMSG_SIZE];
		ssize_t k = sp_rx_feed(&c->rx, p, n, &id, &msg, why);
		if (k < 0) {
			conn_protocol_error(c, why);
			return false;
		}
		p += k;
		n -= (size_t)k;
		if (!ready && sp_rx_ready(&c->rx)) {
			conn_up(c);
			if (c->fd < 0) {
				return false;
			}
		}
		if (msg != NULL) {
			conn_frame(c, id, msg);
		}
	}
	return true;
}

static void conn_read(struct wconn *c)
{
	for (int i = 0; i < 64; i++) {
		uint8_t *dst;
		size_t room = sp_rx_room(&c->rx, &dst);
		bool direct = room >= WIRE_DIRECT;
		if (!direct) {
			dst = c->w->stage;
			room = WIRE_STAGE;
		}
		ssize_t n = recv(c->fd, dst, room, 0);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				conn_fail_errno(c, "receive", errno);
			}
			return;
		}
		if (n == 0) {
			conn_fail_errno(c, "connection closed by the store",
			                ECONNRESET);
			return;
		}
		if (direct) {
			uint32_t id;
			void *msg;
			if (sp_rx_filled(&c->rx, (size_t)n, &id, &msg)) {
				conn_frame(c, id, msg);
			}
		} else if (!conn_feed(c, dst, (size_t)n)) {
			return;
		}
		if ((size_t)n < room) {
			return; /* drained */
		}
	}
}

static void conn_io(void *arg, uint32_t events)
{
	struct wconn *c = arg;
	if (c->state == WC_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
			err = errno;
		}
		if (err != 0 && c->next_addr < c->n_addrs) {
			/* The name's next address. */
			conn_close_socket(c);
			conn_dial(c);
			return;
		}
		if (err != 0) {
			conn_fail_errno(c, "connect", err);
			return;
		}
		c->state = WC_HELLO;
		ssize_t n = send(c->fd, hello_req0, sizeof(hello_req0),
		                 MSG_NOSIGNAL);
		if (n != (ssize_t)sizeof(hello_req0)) { /* empty new socket */
			conn_fail_errno(c, "send", n < 0 ? errno : EIO);
			return;
		}
		conn_watch(c, EPOLLIN);
		return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
		conn_read(c);
		if (c->fd < 0) {
			return;
		}
	}
	if ((events & EPOLLOUT) != 0 && c->state == WC_UP) {
		conn_flush(c);
	}
}

static void conn_timer(void *arg)
{
	struct wconn *c = arg;
	struct wire *w = c->w;
	uint64_t now = loop_now_ms();
	if (w->closing) {
		return;
	}
	if ((c->state == WC_RESOLVING || c->state == WC_CONNECTING ||
	     c->state == WC_HELLO) &&
	    now >= c->connect_deadline_ms) {
		char why[STRATA_ERRMSG_SIZE];
		errmsg_set(
		        why,
		        c->state == WC_RESOLVING
		                ? "the host name of segment store %s did "
		                  "not resolve within %d ms: check its DNS "
		                  "name and the resolver (/etc/resolv.conf)"
		                : "no connection to segment store %s within "
		                  "%d ms: is it running and reachable there?",
		        c->url, w->opts.connect_timeout_ms);
		conn_fail(c, STRATA_EUNAVAIL, why, why);
		return;
	}
	struct wop *next;
	bool sent = true;
	for (struct wop *op = c->head; op != NULL; op = next) {
		next = op->next;
		if (op == c->unsent) {
			sent = false;
		}
		if (op->cb == NULL || op->deadline_ms > now) {
			continue;
		}
		char why[STRATA_ERRMSG_SIZE];
		int tmo = w->opts.timeout_ms;
		if (sent) {
			errmsg_set(
			        why,
			        "RPC method %u to %s: no reply within %d ms "
			        "(the request may have been executed; raise "
			        "the rpc timeout if the server is just slow)",
			        op->method, c->url, tmo);
		} else {
			errmsg_set(why,
			           "RPC method %u to %s: not sent within %d ms "
			           "(the connection is congested or stalled)",
			           op->method, c->url, tmo);
		}
		/* A partly written frame stays until written (the stream
		 * must stay whole); any other goes now. */
		bool partial = op == c->unsent && c->unsent_off > 0;
		op_done(op, STRATA_ETIMEDOUT, why, NULL);
		if (!partial) {
			conn_unlink(c, op);
			strata_free(op);
		}
	}
	conn_arm(c);
}

/* Connect to c's next address, and the ones after it while they fail at
 * once; false when none is left (ops ended). */
static bool conn_dial(struct wconn *c)
{
	int err = EINVAL;
	const char *what = "connect";
	while (c->next_addr < c->n_addrs) {
		const struct sockaddr_storage *sa = &c->addrs[c->next_addr];
		socklen_t salen = c->lens[c->next_addr];
		c->next_addr++;
		c->fd = socket(sa->ss_family,
		               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			err = errno;
			what = "socket";
			continue;
		}
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, (const struct sockaddr *)sa, salen) != 0 &&
		    errno != EINPROGRESS) {
			err = errno;
			what = "connect";
			close(c->fd);
			c->fd = -1;
			continue;
		}
		sp_rx_init(&c->rx, c->w->opts.max_msg_bytes, SP_PROTO_REP0);
		c->state = WC_CONNECTING;
		c->io_events = EPOLLOUT;
		if (loop_io_add(c->w->loop, &c->io, c->fd, EPOLLOUT, conn_io,
		                c) != 0) {
			close(c->fd);
			c->fd = -1;
			conn_fail_errno(c, "watch", ENOMEM);
			return false;
		}
		conn_arm(c);
		return true;
	}
	conn_fail_errno(c, what, err);
	return false;
}

/* A lookup's result, on the loop thread. */
static void resolve_done_task(void *arg)
{
	struct wres *r = arg;
	pthread_mutex_lock(&r->mu);
	bool live = !r->cancelled;
	struct wconn *c = r->c;
	r->refs -= live ? 2 : 1; /* the task's (and the connection's) */
	bool last = r->refs == 0;
	pthread_mutex_unlock(&r->mu);
	if (live) {
		c->res = NULL;
		if (r->n == 0) {
			char why[STRATA_ERRMSG_SIZE];
			errmsg_set(why,
			           "segment store %s: %s; request not sent",
			           c->url, r->errmsg);
			conn_fail(c, STRATA_EUNAVAIL, why, why);
		} else {
			memcpy(c->addrs, r->addrs, r->n * sizeof(r->addrs[0]));
			memcpy(c->lens, r->lens, r->n * sizeof(r->lens[0]));
			c->n_addrs = r->n;
			c->next_addr = 0;
			conn_dial(c);
		}
	}
	if (last) {
		wres_free(r);
	}
}

/* Look host up for c on a thread of its own (RESOLVING). */
static bool conn_resolve(struct wconn *c, const char *host, unsigned port)
{
	struct wres *r = strata_calloc(1, sizeof(*r));
	if (r == NULL) {
		conn_fail_errno(c, "host name lookup", ENOMEM);
		return false;
	}
	pthread_mutex_init(&r->mu, NULL);
	r->refs = 2; /* the thread's and the connection's */
	r->loop = c->w->loop;
	r->c = c;
	r->resolve = c->w->opts.resolve != NULL ? c->w->opts.resolve
	                                        : resolve_getaddrinfo;
	snprintf(r->host, sizeof(r->host), "%s", host);
	r->port = port;
	loop_task_init(&r->task, resolve_done_task, r);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	int err = pthread_create(&th, &attr, resolve_main, r);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		wres_free(r);
		conn_fail_errno(c, "start a host name lookup", err);
		return false;
	}
	c->res = r;
	c->state = WC_RESOLVING;
	conn_arm(c);
	return true;
}

/* Start connecting c (IDLE); false when it failed at once (ops ended). */
static bool conn_connect(struct wconn *c)
{
	c->connect_deadline_ms =
	        loop_now_ms() + (uint64_t)c->w->opts.connect_timeout_ms;
	c->n_addrs = 0;
	c->next_addr = 0;
	char host[RPC_MAX_URL_LEN + 1];
	unsigned port;
	switch (sp_url_parse(c->url, false, host, sizeof(host), &port,
	                     &c->addrs[0], &c->lens[0])) {
	case SP_URL_ADDR:
		c->n_addrs = 1;
		return conn_dial(c);
	case SP_URL_NAME:
		return conn_resolve(c, host, port);
	default: /* wire_url_ok said no: the caller's bug */
		conn_fail_errno(c, "address", EINVAL);
		return false;
	}
}

static struct wconn *conn_get(struct wire *w, const char *url)
{
	for (struct wconn *c = w->conns; c != NULL; c = c->next) {
		if (strcmp(c->url, url) == 0) {
			return c;
		}
	}
	struct wconn *c = strata_calloc(1, sizeof(*c));
	if (c == NULL) {
		return NULL;
	}
	c->w = w;
	snprintf(c->url, sizeof(c->url), "%s", url);
	c->fd = -1;
	c->io.fd = -1;
	loop_timer_init(&c->timer, conn_timer, c);
	sp_rx_init(&c->rx, w->opts.max_msg_bytes, SP_PROTO_REP0);
	c->next = w->conns;
	w->conns = c;
	return c;
}

/* On the loop thread: queue op on its URL's connection and send. */
static void op_start(struct wop *op)
{
	struct wire *w = op->w;
	if (w->closing) {
		char why[STRATA_ERRMSG_SIZE];
		errmsg_set(why, "RPC method %u: client closed", op->method);
		op_done(op, STRATA_ECLOSED, why, NULL);
		strata_free(op);
		return;
	}
	struct wconn *c = conn_get(w, op->url);
	if (c == NULL) {
		char why[STRATA_ERRMSG_SIZE];
		errmsg_set(why, "RPC method %u to %s: out of memory",
		           op->method, op->url);
		op_done(op, STRATA_ENOMEM, why, NULL);
		strata_free(op);
		return;
	}
	w->next_id = (w->next_id + 1) & 0x7fffffffu;
	op->id = w->next_id;
	sp_put_be32(op->frame + 8, op->id | 0x80000000u);
	op->conn = c;
	op->prev = c->tail;
	op->next = NULL;
	if (c->tail != NULL) {
		c->tail->next = op;
	} else {
		c->head = op;
	}
	c->tail = op;
	if (c->unsent == NULL) {
		c->unsent = op;
		c->unsent_off = 0;
	}
	switch (c->state) {
	case WC_IDLE:
		conn_connect(c);
		return;
	case WC_UP:
		if (!c->timer.armed) {
			conn_arm(c);
		}
		if (c->io_events == EPOLLIN) { /* else: waiting to write */
			conn_flush(c);
		}
		return;
	default:
		return; /* sent once the connection is up */
	}
}

static void op_start_task(void *arg)
{
	op_start(arg);
}

int wire_call(struct wire *w, const char *url, uint32_t method,
              const uint8_t *req, size_t len, rpc_done_fn cb, void *arg,
              char *errmsg)
{
	if (atomic_load(&w->closed)) {
		errmsg_set(errmsg, "RPC method %u: client closed", method);
		return STRATA_ECLOSED;
	}
	size_t env = rpc_request_size(method, len);
	if (env > w->opts.max_msg_bytes) {
		errmsg_set(errmsg,
		           "RPC method %u: request of %zu bytes exceeds the "
		           "limit of %zu bytes (max_msg_bytes): split it",
		           method, env, w->opts.max_msg_bytes);
		return STRATA_ETOOBIG;
	}
	struct wop *op = strata_malloc(sizeof(*op) + SP_HDR + env);
	if (op == NULL) {
		errmsg_set(errmsg, "RPC method %u: out of memory", method);
		return STRATA_ENOMEM;
	}
	memset(op, 0, sizeof(*op));
	op->w = w;
	snprintf(op->url, sizeof(op->url), "%s", url);
	op->method = method;
	op->cb = cb;
	op->arg = arg;
	op->frame_len = SP_HDR + env;
	sp_put_be64(op->frame, (uint64_t)(4 + env));
	rpc_request_pack(method, req, len, op->frame + SP_HDR);
	op->deadline_ms = loop_now_ms() + (uint64_t)w->opts.timeout_ms;
	loop_task_init(&op->start, op_start_task, op);
	loop_post(w->loop, &op->start);
	return 0;
}

static void close_task(void *arg)
{
	struct wire *w = arg;
	w->closing = true;
	while (w->conns != NULL) {
		struct wconn *c = w->conns;
		w->conns = c->next;
		char why[STRATA_ERRMSG_SIZE];
		errmsg_set(why, "segment store %s: client closed", c->url);
		conn_fail(c, STRATA_ECLOSED, why, why);
		strata_free(c);
	}
	pthread_mutex_lock(&w->mu);
	w->close_done = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void wire_close(struct wire *w)
{
	if (w == NULL || atomic_exchange(&w->closed, true)) {
		return;
	}
	loop_task_init(&w->close_task, close_task, w);
	if (loop_on_thread(w->loop)) {
		close_task(w);
		return;
	}
	loop_post(w->loop, &w->close_task);
	pthread_mutex_lock(&w->mu);
	while (!w->close_done) {
		pthread_cond_wait(&w->cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
}

void wire_free(struct wire *w)
{
	if (w == NULL) {
		return;
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	strata_free(w->stage);
	strata_free(w);
}
