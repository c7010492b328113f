/* Raft transport over libuv TCP with one listening port per process (see
 * transport.h for the wire format).
 *
 * Outgoing connection, happy path: (optional backoff delay) -> TCP connect
 * -> TCP_NODELAY -> write handshake -> read the 8-byte reply -> hand the
 * stream to libraft through the connect callback.
 * Incoming connection, happy path: accept -> TCP_NODELAY -> read the fixed
 * handshake, then the address (reads are sized exactly, so no Raft byte is
 * ever consumed here) -> look the group up -> write reply OK -> hand the
 * stream to the group's libraft accept callback.
 *
 * Failure modes: TCP errors, a reply other than OK, or a handshake deadline
 * close the socket; the connect callback then fires with RAFT_NOCONNECTION
 * and the next attempt to that peer waits an exponential backoff. A
 * refused incoming handshake is answered with its status, logged (rate
 * limited) with the peer's address and what to check, and closed. Closing
 * a transport cancels its connects (callback with RAFT_CANCELED); closing
 * the mux drops handshakes in progress. Every handle is closed before its
 * memory is freed; sockets given to libraft are raft_malloc'ed because
 * libraft frees them with raft_free.
 */
#include "raft/transport.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/le.h"
#include "common/log.h"
#include "strata/error.h"

#define COMP "raft.transport"

#define HS_MAGIC 0x48525453u    /* "STRH" little-endian */
#define REPLY_MAGIC 0x41525453u /* "STRA" little-endian */
#define LOG_WINDOW_MS 10000     /* reject-log rate-limit window */
#define LOG_PER_WINDOW 20       /* reject lines per window */

struct mtransport;

/* An outgoing connection attempt (one libraft connect request). */
struct outgoing {
	struct mtransport *mt;       /* owning transport */
	struct raft_uv_connect *req; /* libraft's request, borrowed */
	raft_id peer;                /* node we connect to */
	char peer_addr[RAFT_TRANSPORT_ADDR_MAX + 1]; /* its address */
	struct sockaddr_in addr;                     /* resolved peer_addr */
	bool resolved;        /* addr holds the peer's IPv4 address */
	bool resolving;       /* gai is in flight */
	uv_getaddrinfo_t gai; /* DNS lookup of a host name */
	char host[RAFT_TRANSPORT_ADDR_MAX + 1]; /* peer_addr's host part */
	char port[12];                          /* peer_addr's port part */
	uv_tcp_t *tcp;     /* raft_malloc'ed socket, or NULL */
	uv_timer_t timer;  /* backoff delay, then deadline */
	uv_connect_t conn; /* TCP connect request */
	uv_write_t write;  /* handshake write */
	unsigned char hs[RAFT_TRANSPORT_HS_FIXED + RAFT_TRANSPORT_ADDR_MAX];
	size_t hs_len;                                  /* bytes used in hs */
	unsigned char reply[RAFT_TRANSPORT_REPLY_SIZE]; /* reply so far */
	size_t reply_got;             /* bytes of reply received */
	bool delaying;                /* timer is the backoff delay */
	bool aborting;                /* failing; ignore late callbacks */
	int status;                   /* result for req->cb */
	unsigned handles;             /* handles not yet closed */
	struct outgoing *prev, *next; /* mt->connects */
};

/* Reconnect state of one peer of a transport. */
struct peer_state {
	raft_id id;        /* peer node id */
	unsigned failures; /* consecutive failed attempts */
	int last_logged;   /* status last logged (-1 none, -2 tcp) */
};

/* One group's transport (the impl of a raft_uv_transport). */
struct mtransport {
	struct raft_mux *mux;        /* borrowed */
	struct raft_uv_transport *t; /* back pointer */
	uint64_t group;              /* group id */
	raft_id id;                  /* this node's id, from init */
	char address[RAFT_TRANSPORT_ADDR_MAX + 1]; /* this node's address */
	raft_uv_accept_cb accept_cb;               /* set by listen */
	bool registered;                           /* in mux->groups */
	bool closing;                              /* close() was called */
	struct mtransport *prev, *next;            /* mux->groups */
	struct outgoing *connects;                 /* attempts in progress */
	struct peer_state *peers;                  /* reconnect state */
	unsigned n_peers;                          /* entries in peers */
	unsigned pending;                          /* objects still closing */
	raft_uv_transport_close_cb close_cb;       /* pending close */
};

/* An incoming connection still in its handshake. */
struct incoming {
	struct raft_mux *mux; /* owner */
	uv_tcp_t *tcp;        /* raft_malloc'ed socket, or NULL */
	uv_timer_t timer;     /* handshake deadline */
	uv_write_t write;     /* reply write */
	unsigned char hs[RAFT_TRANSPORT_HS_FIXED + RAFT_TRANSPORT_ADDR_MAX];
	size_t want; /* bytes expected so far */
	size_t got;  /* bytes received */
	unsigned char reply[RAFT_TRANSPORT_REPLY_SIZE]; /* reply */
	int status;                                     /* reply status */
	uint64_t group;                                 /* decoded group id */
	raft_id from;                           /* decoded sender node */
	raft_id to;                             /* decoded receiver node */
	char addr[RAFT_TRANSPORT_ADDR_MAX + 1]; /* decoded sender address */
	char peer[64];                          /* remote ip:port, for logs */
	bool replying;                          /* reply write in flight */
	bool aborting;                          /* closing */
	unsigned handles;                       /* handles not yet closed */
	struct incoming *prev, *next;           /* mux->incoming */
};

struct raft_mux {
	uv_loop_t *loop;             /* borrowed */
	uv_tcp_t listener;           /* listening socket */
	bool nodelay;                /* set TCP_NODELAY */
	unsigned handshake_ms;       /* handshake deadline */
	unsigned max_handshakes;     /* concurrent incoming cap */
	unsigned backoff_min_ms;     /* reconnect backoff floor */
	unsigned backoff_max_ms;     /* reconnect backoff cap */
	uint16_t port;               /* bound port */
	struct mtransport *groups;   /* registered transports */
	struct incoming *incoming;   /* handshakes in progress */
	unsigned n_incoming;         /* entries in incoming */
	bool closing;                /* raft_mux_close was called */
	unsigned pending;            /* handles/objects still closing */
	raft_mux_close_cb close_cb;  /* pending close */
	void *close_arg;             /* its argument */
	struct raft_mux_stats stats; /* counters */
	uint64_t log_window_start;   /* rate limit: window start (ms) */
	unsigned log_lines;          /* lines logged in the window */
	unsigned log_suppressed;     /* lines dropped in the window */
};

/* ---- helpers ---------------------------------------------------------- */

/* snprintf into a message buffer; truncation is acceptable. */
static void msgf(char *buf, size_t n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void msgf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

const char *raft_transport_status_str(int status)
{
	switch (status) {
	case RAFT_TRANSPORT_OK:
		return "ok";
	case RAFT_TRANSPORT_BAD_MAGIC:
		return "not a Strata Raft handshake";
	case RAFT_TRANSPORT_BAD_VERSION:
		return "unsupported protocol version";
	case RAFT_TRANSPORT_UNKNOWN_GROUP:
		return "unknown group";
	case RAFT_TRANSPORT_WRONG_NODE:
		return "wrong node id for the group";
	case RAFT_TRANSPORT_NOT_READY:
		return "group not ready (starting or closing)";
	case RAFT_TRANSPORT_BAD_ADDRESS:
		return "bad sender address length";
	case RAFT_TRANSPORT_BUSY:
		return "too many handshakes in progress";
	default:
		return "unknown status";
	}
}

/* Split "host:port" into host and port (0..65535). STRATA_EINVAL when
 * malformed. */
static int split_address(const char *address, char *host, size_t host_size,
                         unsigned long *port)
{
	const char *colon = strrchr(address, ':');
	if (colon == NULL || colon == address ||
	    (size_t)(colon - address) >= host_size) {
		return STRATA_EINVAL;
	}
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	char *end = NULL;
	errno = 0;
	*port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || *port > 65535) {
		return STRATA_EINVAL;
	}
	return 0;
}

/* True for a DNS host name: labels of [A-Za-z0-9-] joined by dots. */
static bool host_name_ok(const char *host)
{
	size_t len = strlen(host);
	if (len == 0 || len > 253 || host[0] == '.' || host[0] == '-') {
		return false;
	}
	for (const char *c = host; *c != '\0'; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') ||
		          (*c >= 'A' && *c <= 'Z') ||
		          (*c >= '0' && *c <= '9') || *c == '-' || *c == '.';
		if (!ok || (*c == '.' && c[1] == '.')) {
			return false;
		}
	}
	return true;
}

/* Parse "a.b.c.d:port" into *sa (IPv4 literals only: bind addresses). */
static int parse_address(const char *address, struct sockaddr_in *sa)
{
	char host[64];
	unsigned long port;
	if (split_address(address, host, sizeof(host), &port) != 0 ||
	    uv_ip4_addr(host, (int)port, sa) != 0) {
		return STRATA_EINVAL;
	}
	return 0;
}

/* True when a reject line may be logged now (at most LOG_PER_WINDOW per
 * LOG_WINDOW_MS; the suppressed count is reported with the next line). */
static bool log_allowed(struct raft_mux *m)
{
	uint64_t now = uv_now(m->loop);
	if (now - m->log_window_start >= LOG_WINDOW_MS) {
		if (m->log_suppressed > 0) {
			LOG_WARN(COMP,
			         "%u more refused handshakes were not logged "
			         "in the last %u s",
			         m->log_suppressed, LOG_WINDOW_MS / 1000);
		}
		m->log_window_start = now;
		m->log_lines = 0;
		m->log_suppressed = 0;
	}
	if (m->log_lines >= LOG_PER_WINDOW) {
		m->log_suppressed++;
		return false;
	}
	m->log_lines++;
	return true;
}

static void set_nodelay(struct raft_mux *m, uv_tcp_t *tcp)
{
	if (!m->nodelay) {
		return;
	}
	if (uv_tcp_nodelay(tcp, 1) == 0) {
		m->stats.nodelay_set++;
	}
}

static struct mtransport *find_group(struct raft_mux *m, uint64_t group)
{
	for (struct mtransport *mt = m->groups; mt != NULL; mt = mt->next) {
		if (mt->group == group) {
			return mt;
		}
	}
	return NULL;
}

static void mux_maybe_closed(struct raft_mux *m)
{
	if (!m->closing || m->pending > 0) {
		return;
	}
	raft_mux_close_cb cb = m->close_cb;
	void *arg = m->close_arg;
	strata_free(m);
	if (cb != NULL) {
		cb(arg);
	}
}

static void transport_maybe_closed(struct mtransport *mt)
{
	if (!mt->closing || mt->pending > 0 || mt->close_cb == NULL) {
		return;
	}
	raft_uv_transport_close_cb cb = mt->close_cb;
	mt->close_cb = NULL;
	cb(mt->t);
}

/* ---- reconnect backoff -------------------------------------------------- */

static struct peer_state *peer_get(struct mtransport *mt, raft_id id)
{
	for (unsigned i = 0; i < mt->n_peers; i++) {
		if (mt->peers[i].id == id) {
			return &mt->peers[i];
		}
	}
	struct peer_state *p =
	        strata_realloc(mt->peers, (mt->n_peers + 1) * sizeof(*p));
	if (p == NULL) {
		return NULL;
	}
	mt->peers = p;
	p = &mt->peers[mt->n_peers++];
	p->id = id;
	p->failures = 0;
	p->last_logged = -1;
	return p;
}

static unsigned backoff_ms(struct mtransport *mt, raft_id id)
{
	struct peer_state *p = peer_get(mt, id);
	if (p == NULL || p->failures == 0) {
		return 0;
	}
	uint64_t d = mt->mux->backoff_min_ms;
	for (unsigned i = 1; i < p->failures && d < mt->mux->backoff_max_ms;
	     i++) {
		d *= 2;
	}
	if (d > mt->mux->backoff_max_ms) {
		d = mt->mux->backoff_max_ms;
	}
	return (unsigned)d;
}

/* Record the outcome of an attempt; log the first failure of a kind and
 * the recovery. reject is a reply status, or -2 for a TCP-level error. */
static void peer_outcome(struct outgoing *o, bool ok, int reject,
                         const char *why)
{
	struct mtransport *mt = o->mt;
	struct peer_state *p = peer_get(mt, o->peer);
	if (p == NULL) {
		return;
	}
	if (ok) {
		if (p->failures > 0 && p->last_logged != -1) {
			LOG_INFO(COMP,
			         "group %" PRIu64 ": connected to node %" PRIu64
			         " at %s after %u failed attempts",
			         mt->group, (uint64_t)o->peer, o->peer_addr,
			         p->failures);
		}
		p->failures = 0;
		p->last_logged = -1;
		return;
	}
	p->failures++;
	if (p->last_logged == reject) {
		return;
	}
	p->last_logged = reject;
	if (reject >= 0) {
		LOG_WARN(COMP,
		         "group %" PRIu64 ": node %" PRIu64
		         " at %s refused our handshake: %s; check that the "
		         "group's replica list names the same node ids and "
		         "addresses on every replica (retrying with backoff)",
		         mt->group, (uint64_t)o->peer, o->peer_addr,
		         raft_transport_status_str(reject));
	} else {
		LOG_WARN(COMP,
		         "group %" PRIu64 ": cannot connect to node %" PRIu64
		         " at %s: %s; retrying with backoff up to %u ms",
		         mt->group, (uint64_t)o->peer, o->peer_addr, why,
		         mt->mux->backoff_max_ms);
	}
}

/* ---- outgoing ----------------------------------------------------------- */

static void out_unlink(struct outgoing *o)
{
	struct mtransport *mt = o->mt;
	if (o->prev != NULL) {
		o->prev->next = o->next;
	} else if (mt->connects == o) {
		mt->connects = o->next;
	}
	if (o->next != NULL) {
		o->next->prev = o->prev;
	}
	o->prev = o->next = NULL;
}

/* One of o's handles (or its DNS lookup) is done; free o after the last. */
static void out_release(struct outgoing *o)
{
	if (--o->handles > 0) {
		return;
	}
	struct mtransport *mt = o->mt;
	if (o->status != 0) {
		struct raft_uv_connect *req = o->req;
		int status = o->status;
		strata_free(o);
		req->cb(req, NULL, status);
	} else {
		strata_free(o);
	}
	mt->pending--;
	transport_maybe_closed(mt);
}

static void out_handle_closed(uv_handle_t *h)
{
	struct outgoing *o = h->data;
	if ((uv_handle_t *)o->tcp == h) {
		raft_free(o->tcp);
		o->tcp = NULL;
	}
	out_release(o);
}

/* Fail o with status (RAFT_NOCONNECTION or RAFT_CANCELED): close its
 * handles, then fire the connect callback. */
static void out_fail(struct outgoing *o, int status, int reject,
                     const char *why)
{
	if (o->aborting) {
		return;
	}
	o->aborting = true;
	o->status = status;
	out_unlink(o);
	if (status != RAFT_CANCELED) {
		o->mt->mux->stats.connect_failed++;
		peer_outcome(o, false, reject, why);
		msgf(o->mt->t->errmsg, sizeof(o->mt->t->errmsg),
		     "connect to node %" PRIu64 " at %s: %s", (uint64_t)o->peer,
		     o->peer_addr, why);
	}
	o->handles = 1;
	uv_close((uv_handle_t *)&o->timer, out_handle_closed);
	if (o->tcp != NULL) {
		o->handles++;
		uv_close((uv_handle_t *)o->tcp, out_handle_closed);
	}
	if (o->resolving) {
		/* out_resolved still runs (cancelled or not) and releases o. */
		o->handles++;
		uv_cancel((uv_req_t *)&o->gai);
	}
}

static void out_succeed(struct outgoing *o)
{
	struct mtransport *mt = o->mt;
	uv_stream_t *stream = (uv_stream_t *)o->tcp;
	struct raft_uv_connect *req = o->req;
	o->tcp = NULL;
	o->aborting = true; /* only the timer remains */
	o->status = 0;
	out_unlink(o);
	mt->mux->stats.connected++;
	peer_outcome(o, true, 0, NULL);
	o->handles = 1;
	uv_close((uv_handle_t *)&o->timer, out_handle_closed);
	stream->data = NULL;
	req->cb(req, stream, 0);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct outgoing *o = h->data;
	(void)suggested;
	buf->base = (char *)o->reply + o->reply_got;
	buf->len = sizeof(o->reply) - o->reply_got;
}

static void out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct outgoing *o = s->data;
	char why[128];
	(void)buf;
	if (o->aborting || nread == 0) {
		return;
	}
	if (nread < 0) {
		snprintf(why, sizeof(why), "peer closed during handshake: %s",
		         uv_strerror((int)nread));
		out_fail(o, RAFT_NOCONNECTION, -2, why);
		return;
	}
	o->reply_got += (size_t)nread;
	if (o->reply_got < sizeof(o->reply)) {
		return;
	}
	uv_read_stop(s);
	if (le32_get(o->reply) != REPLY_MAGIC) {
		out_fail(o, RAFT_NOCONNECTION, RAFT_TRANSPORT_BAD_MAGIC,
		         "reply is not a Strata Raft handshake reply");
		return;
	}
	int status = get16(o->reply + 4);
	if (status != RAFT_TRANSPORT_OK) {
		snprintf(why, sizeof(why), "handshake refused: %s",
		         raft_transport_status_str(status));
		out_fail(o, RAFT_NOCONNECTION, status, why);
		return;
	}
	uv_timer_stop(&o->timer);
	out_succeed(o);
}

static void out_written(uv_write_t *w, int status)
{
	struct outgoing *o = w->data;
	char why[128];
	if (o->aborting) {
		return;
	}
	if (status != 0) {
		snprintf(why, sizeof(why), "send handshake: %s",
		         uv_strerror(status));
		out_fail(o, RAFT_NOCONNECTION, -2, why);
		return;
	}
	int rv = uv_read_start((uv_stream_t *)o->tcp, out_alloc, out_read);
	if (rv != 0) {
		snprintf(why, sizeof(why), "read reply: %s", uv_strerror(rv));
		out_fail(o, RAFT_NOCONNECTION, -2, why);
	}
}

static void out_connected(uv_connect_t *c, int status)
{
	struct outgoing *o = c->data;
	char why[128];
	if (o->aborting) {
		return;
	}
	if (status != 0) {
		snprintf(why, sizeof(why), "%s", uv_strerror(status));
		out_fail(o, RAFT_NOCONNECTION, -2, why);
		return;
	}
	set_nodelay(o->mt->mux, o->tcp);
	uv_buf_t b = uv_buf_init((char *)o->hs, (unsigned)o->hs_len);
	o->write.data = o;
	int rv = uv_write(&o->write, (uv_stream_t *)o->tcp, &b, 1, out_written);
	if (rv != 0) {
		snprintf(why, sizeof(why), "send handshake: %s",
		         uv_strerror(rv));
		out_fail(o, RAFT_NOCONNECTION, -2, why);
	}
}

static void out_timer(uv_timer_t *timer);

/* Connect to the resolved o->addr (the handshake deadline is armed). */
static void out_connect(struct outgoing *o)
{
	struct raft_mux *m = o->mt->mux;
	char why[128];
	o->tcp = raft_malloc(sizeof(*o->tcp));
	if (o->tcp == NULL) {
		out_fail(o, RAFT_NOCONNECTION, -2, "out of memory");
		return;
	}
	uv_tcp_init(m->loop, o->tcp);
	o->tcp->data = o;
	o->conn.data = o;
	int rv = uv_tcp_connect(&o->conn, o->tcp,
	                        (const struct sockaddr *)&o->addr,
	                        out_connected);
	if (rv != 0) {
		snprintf(why, sizeof(why), "%s", uv_strerror(rv));
		out_fail(o, RAFT_NOCONNECTION, -2, why);
	}
}

/* The DNS lookup of o->host finished (or was cancelled by out_fail). */
static void out_resolved(uv_getaddrinfo_t *req, int status,
                         struct addrinfo *res)
{
	struct outgoing *o = req->data;
	char why[128];
	o->resolving = false;
	if (o->aborting) {
		uv_freeaddrinfo(res);
		out_release(o);
		return;
	}
	if (status != 0 || res == NULL ||
	    res->ai_addrlen < sizeof(struct sockaddr_in)) {
		snprintf(why, sizeof(why), "resolve host %.60s: %s", o->host,
		         status != 0 ? uv_strerror(status) : "no IPv4 address");
		uv_freeaddrinfo(res);
		out_fail(o, RAFT_NOCONNECTION, -2, why);
		return;
	}
	memcpy(&o->addr, res->ai_addr, sizeof(o->addr));
	uv_freeaddrinfo(res);
	out_connect(o);
}

/* Arm the handshake deadline, then resolve the host name if the address
 * has one (every attempt resolves again: a peer's IP may change, as a
 * Kubernetes pod's does) and connect. */
static void out_start(struct outgoing *o)
{
	struct raft_mux *m = o->mt->mux;
	char why[128];
	o->delaying = false;
	uv_timer_start(&o->timer, out_timer, m->handshake_ms, 0);
	if (o->resolved) {
		out_connect(o);
		return;
	}
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	o->gai.data = o;
	int rv = uv_getaddrinfo(m->loop, &o->gai, out_resolved, o->host,
	                        o->port, &hints);
	if (rv != 0) {
		snprintf(why, sizeof(why), "resolve host %.60s: %s", o->host,
		         uv_strerror(rv));
		out_fail(o, RAFT_NOCONNECTION, -2, why);
		return;
	}
	o->resolving = true;
}

static void out_timer(uv_timer_t *timer)
{
	struct outgoing *o = timer->data;
	if (o->aborting) {
		return;
	}
	if (o->delaying) {
		out_start(o);
		return;
	}
	o->mt->mux->stats.handshake_timeouts++;
	out_fail(o, RAFT_NOCONNECTION, -2, "handshake timed out");
}

/* ---- raft_uv_transport methods ----------------------------------------- */

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct mtransport *mt = t->impl;
	size_t len = strlen(address);
	if (len == 0 || len > RAFT_TRANSPORT_ADDR_MAX) {
		snprintf(t->errmsg, sizeof(t->errmsg),
		         "address \"%s\" must be 1..%d bytes", address,
		         RAFT_TRANSPORT_ADDR_MAX);
		return RAFT_INVALID;
	}
	mt->id = id;
	memcpy(mt->address, address, len + 1);
	return 0;
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct mtransport *mt = t->impl;
	struct raft_mux *m = mt->mux;
	if (m->closing) {
		snprintf(t->errmsg, sizeof(t->errmsg), "raft port is closing");
		return RAFT_CANCELED;
	}
	if (find_group(m, mt->group) != NULL) {
		snprintf(t->errmsg, sizeof(t->errmsg),
		         "group %" PRIu64 " is already served on port %u",
		         mt->group, m->port);
		return RAFT_INVALID;
	}
	mt->accept_cb = cb;
	mt->registered = true;
	mt->prev = NULL;
	mt->next = m->groups;
	if (m->groups != NULL) {
		m->groups->prev = mt;
	}
	m->groups = mt;
	return 0;
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct mtransport *mt = t->impl;
	struct raft_mux *m = mt->mux;
	size_t alen = strlen(mt->address);
	if (mt->closing) {
		return RAFT_CANCELED;
	}
	struct outgoing *o = strata_calloc(1, sizeof(*o));
	if (o == NULL) {
		snprintf(t->errmsg, sizeof(t->errmsg), "out of memory");
		return RAFT_NOMEM;
	}
	unsigned long port = 0;
	if (strlen(address) > RAFT_TRANSPORT_ADDR_MAX ||
	    split_address(address, o->host, sizeof(o->host), &port) != 0 ||
	    port == 0 ||
	    (uv_ip4_addr(o->host, (int)port, &o->addr) != 0 &&
	     !host_name_ok(o->host))) {
		snprintf(t->errmsg, sizeof(t->errmsg),
		         "node %" PRIu64 " has a malformed address \"%s\" "
		         "(want IPv4:port or hostname:port)",
		         (uint64_t)id, address);
		strata_free(o);
		return RAFT_NOCONNECTION;
	}
	o->resolved = uv_ip4_addr(o->host, (int)port, &o->addr) == 0;
	snprintf(o->port, sizeof(o->port), "%u", (unsigned)port);
	o->mt = mt;
	o->req = req;
	o->peer = id;
	snprintf(o->peer_addr, sizeof(o->peer_addr), "%s", address);
	req->cb = cb;

	le32_put(o->hs, HS_MAGIC);
	put16(o->hs + 4, RAFT_TRANSPORT_VERSION);
	put16(o->hs + 6, (uint16_t)alen);
	le64_put(o->hs + 8, mt->group);
	le64_put(o->hs + 16, mt->id);
	le64_put(o->hs + 24, id);
	le64_put(o->hs + 32, 0);
	memcpy(o->hs + RAFT_TRANSPORT_HS_FIXED, mt->address, alen);
	o->hs_len = RAFT_TRANSPORT_HS_FIXED + alen;

	uv_timer_init(m->loop, &o->timer);
	o->timer.data = o;
	o->next = mt->connects;
	if (mt->connects != NULL) {
		mt->connects->prev = o;
	}
	mt->connects = o;
	mt->pending++;

	unsigned delay = backoff_ms(mt, id);
	if (delay > 0) {
		o->delaying = true;
		uv_timer_start(&o->timer, out_timer, delay, 0);
	} else {
		out_start(o);
	}
	return 0;
}

static void close_marker_closed(uv_handle_t *h)
{
	struct mtransport *mt = h->data;
	strata_free(h);
	mt->pending--;
	transport_maybe_closed(mt);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct mtransport *mt = t->impl;
	struct raft_mux *m = mt->mux;
	mt->closing = true;
	mt->close_cb = cb;
	if (mt->registered) {
		if (mt->prev != NULL) {
			mt->prev->next = mt->next;
		} else {
			m->groups = mt->next;
		}
		if (mt->next != NULL) {
			mt->next->prev = mt->prev;
		}
		mt->registered = false;
		mt->accept_cb = NULL;
	}
	while (mt->connects != NULL) {
		out_fail(mt->connects, RAFT_CANCELED, -1, "transport closed");
	}
	/* A handle closed now makes the callback fire on a later loop turn
	 * even when nothing else is pending. */
	uv_timer_t *marker = strata_malloc(sizeof(*marker));
	if (marker == NULL) {
		/* Without memory, fall back to the pending handles (if
		 * any) or fire now. */
		transport_maybe_closed(mt);
		return;
	}
	uv_timer_init(m->loop, marker);
	marker->data = mt;
	mt->pending++;
	uv_close((uv_handle_t *)marker, close_marker_closed);
}

int raft_transport_init(struct raft_uv_transport *t, struct raft_mux *m,
                        uint64_t group_id)
{
	struct mtransport *mt = strata_calloc(1, sizeof(*mt));
	if (mt == NULL) {
		return STRATA_ENOMEM;
	}
	mt->mux = m;
	mt->t = t;
	mt->group = group_id;
	memset(t, 0, sizeof(*t));
	t->impl = mt;
	t->init = tr_init;
	t->listen = tr_listen;
	t->connect = tr_connect;
	t->close = tr_close;
	return 0;
}

void raft_transport_close(struct raft_uv_transport *t)
{
	struct mtransport *mt = t->impl;
	if (mt == NULL) {
		return;
	}
	if (mt->registered) {
		/* libraft never closed us (start failed): unregister. */
		struct raft_mux *m = mt->mux;
		if (mt->prev != NULL) {
			mt->prev->next = mt->next;
		} else {
			m->groups = mt->next;
		}
		if (mt->next != NULL) {
			mt->next->prev = mt->prev;
		}
	}
	strata_free(mt->peers);
	strata_free(mt);
	t->impl = NULL;
}

/* ---- incoming ----------------------------------------------------------- */

static void in_handle_closed(uv_handle_t *h)
{
	struct incoming *in = h->data;
	if ((uv_handle_t *)in->tcp == h) {
		raft_free(in->tcp);
		in->tcp = NULL;
	}
	if (--in->handles > 0) {
		return;
	}
	struct raft_mux *m = in->mux;
	strata_free(in);
	m->pending--;
	mux_maybe_closed(m);
}

static void in_unlink(struct incoming *in)
{
	struct raft_mux *m = in->mux;
	if (in->prev != NULL) {
		in->prev->next = in->next;
	} else if (m->incoming == in) {
		m->incoming = in->next;
	}
	if (in->next != NULL) {
		in->next->prev = in->prev;
	}
	in->prev = in->next = NULL;
	m->n_incoming--;
}

static void in_abort(struct incoming *in)
{
	if (in->aborting) {
		return;
	}
	in->aborting = true;
	in_unlink(in);
	in->handles = 1;
	uv_close((uv_handle_t *)&in->timer, in_handle_closed);
	if (in->tcp != NULL) {
		in->handles++;
		uv_close((uv_handle_t *)in->tcp, in_handle_closed);
	}
}

static void in_log_reject(struct incoming *in, struct mtransport *mt)
{
	struct raft_mux *m = in->mux;
	m->stats.rejected++;
	bool expected = in->status == RAFT_TRANSPORT_NOT_READY ||
	                in->status == RAFT_TRANSPORT_UNKNOWN_GROUP;
	if (!log_allowed(m)) {
		return;
	}
	const char *hint = "";
	char buf[160];
	switch (in->status) {
	case RAFT_TRANSPORT_BAD_MAGIC:
		hint = "the peer is not a Strata Raft node; check what "
		       "connects to this port";
		break;
	case RAFT_TRANSPORT_BAD_VERSION:
		snprintf(buf, sizeof(buf),
		         "the peer speaks protocol %u, this node %u; run the "
		         "same Strata version on every replica",
		         get16(in->hs + 4), RAFT_TRANSPORT_VERSION);
		hint = buf;
		break;
	case RAFT_TRANSPORT_UNKNOWN_GROUP:
		hint = "this process hosts no such group (yet); check the "
		       "group's replica list if this persists";
		break;
	case RAFT_TRANSPORT_WRONG_NODE:
		snprintf(buf, sizeof(buf),
		         "this process is node %" PRIu64
		         " in that group; check the peer's replica list",
		         mt != NULL ? (uint64_t)mt->id : 0);
		hint = buf;
		break;
	case RAFT_TRANSPORT_NOT_READY:
		hint = "the group is starting or closing here; the peer "
		       "retries";
		break;
	case RAFT_TRANSPORT_BAD_ADDRESS:
		snprintf(buf, sizeof(buf), "address length %u is outside 1..%d",
		         get16(in->hs + 6), RAFT_TRANSPORT_ADDR_MAX);
		hint = buf;
		break;
	default:
		break;
	}
	log_write(expected ? STRATA_LOG_INFO : STRATA_LOG_WARN, COMP,
	          "refused Raft connection from %s (group %" PRIu64
	          ", node %" PRIu64 " -> %" PRIu64 ") on port %u: %s; %s",
	          in->peer, in->group, (uint64_t)in->from, (uint64_t)in->to,
	          m->port, raft_transport_status_str(in->status), hint);
}

static void in_written(uv_write_t *w, int status)
{
	struct incoming *in = w->data;
	struct raft_mux *m = in->mux;
	in->replying = false;
	if (in->aborting) {
		return;
	}
	if (status != 0 || in->status != RAFT_TRANSPORT_OK) {
		in_abort(in);
		return;
	}
	struct mtransport *mt = find_group(m, in->group);
	if (mt == NULL || mt->accept_cb == NULL || mt->closing) {
		/* The group went away while we replied. */
		in_abort(in);
		return;
	}
	uv_stream_t *stream = (uv_stream_t *)in->tcp;
	in->tcp = NULL;
	uv_timer_stop(&in->timer);
	in_unlink(in);
	in->aborting = true;
	in->handles = 1;
	uv_close((uv_handle_t *)&in->timer, in_handle_closed);
	m->stats.accepted++;
	stream->data = NULL;
	mt->accept_cb(mt->t, in->from, in->addr, stream);
}

static void in_reply(struct incoming *in, int status)
{
	struct mtransport *mt = NULL;
	in->status = status;
	if (status != RAFT_TRANSPORT_OK) {
		mt = find_group(in->mux, in->group);
		in_log_reject(in, mt);
	}
	uv_read_stop((uv_stream_t *)in->tcp);
	le32_put(in->reply, REPLY_MAGIC);
	put16(in->reply + 4, (uint16_t)status);
	put16(in->reply + 6, 0);
	uv_buf_t b = uv_buf_init((char *)in->reply, sizeof(in->reply));
	in->write.data = in;
	in->replying = true;
	if (uv_write(&in->write, (uv_stream_t *)in->tcp, &b, 1, in_written) !=
	    0) {
		in->replying = false;
		in_abort(in);
	}
}

static void in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct incoming *in = h->data;
	(void)suggested;
	buf->base = (char *)in->hs + in->got;
	buf->len = in->want - in->got;
}

static void in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct incoming *in = s->data;
	(void)buf;
	if (in->aborting || nread == 0) {
		return;
	}
	if (nread < 0) {
		LOG_DEBUG(COMP,
		          "connection from %s closed during handshake: %s",
		          in->peer, uv_strerror((int)nread));
		in_abort(in);
		return;
	}
	in->got += (size_t)nread;
	if (in->got < in->want) {
		return;
	}
	if (in->want == RAFT_TRANSPORT_HS_FIXED) {
		in->group = le64_get(in->hs + 8);
		in->from = le64_get(in->hs + 16);
		in->to = le64_get(in->hs + 24);
		if (le32_get(in->hs) != HS_MAGIC) {
			in->group = 0;
			in->from = in->to = 0;
			in_reply(in, RAFT_TRANSPORT_BAD_MAGIC);
			return;
		}
		if (get16(in->hs + 4) != RAFT_TRANSPORT_VERSION) {
			in_reply(in, RAFT_TRANSPORT_BAD_VERSION);
			return;
		}
		uint16_t alen = get16(in->hs + 6);
		if (alen == 0 || alen > RAFT_TRANSPORT_ADDR_MAX) {
			in_reply(in, RAFT_TRANSPORT_BAD_ADDRESS);
			return;
		}
		in->want += alen;
		return;
	}
	size_t alen = in->want - RAFT_TRANSPORT_HS_FIXED;
	memcpy(in->addr, in->hs + RAFT_TRANSPORT_HS_FIXED, alen);
	in->addr[alen] = '\0';
	if (memchr(in->addr, '\0', alen) != NULL) {
		in_reply(in, RAFT_TRANSPORT_BAD_ADDRESS);
		return;
	}
	struct mtransport *mt = find_group(in->mux, in->group);
	if (mt == NULL) {
		in_reply(in, RAFT_TRANSPORT_UNKNOWN_GROUP);
	} else if (mt->accept_cb == NULL || mt->closing) {
		in_reply(in, RAFT_TRANSPORT_NOT_READY);
	} else if (mt->id != in->to) {
		in_reply(in, RAFT_TRANSPORT_WRONG_NODE);
	} else {
		in_reply(in, RAFT_TRANSPORT_OK);
	}
}

static void in_timer(uv_timer_t *timer)
{
	struct incoming *in = timer->data;
	if (in->aborting) {
		return;
	}
	in->mux->stats.handshake_timeouts++;
	if (log_allowed(in->mux)) {
		LOG_WARN(COMP,
		         "Raft connection from %s sent no complete handshake "
		         "within %u ms (%zu of %zu bytes); closed it",
		         in->peer, in->mux->handshake_ms, in->got, in->want);
	}
	in_abort(in);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct raft_mux *m = server->data;
	if (status != 0) {
		LOG_WARN(COMP, "accept on Raft port %u: %s", m->port,
		         uv_strerror(status));
		return;
	}
	uv_tcp_t *tcp = raft_malloc(sizeof(*tcp));
	if (tcp == NULL) {
		LOG_ERROR(COMP, "accept on Raft port %u: out of memory",
		          m->port);
		return;
	}
	uv_tcp_init(m->loop, tcp);
	if (uv_accept(server, (uv_stream_t *)tcp) != 0) {
		uv_close((uv_handle_t *)tcp, (uv_close_cb)raft_free);
		return;
	}
	struct incoming *in = NULL;
	if (m->n_incoming < m->max_handshakes) {
		in = strata_calloc(1, sizeof(*in));
	}
	if (in == NULL) {
		m->stats.rejected++;
		if (log_allowed(m)) {
			LOG_WARN(COMP,
			         "Raft port %u: %u handshakes already in "
			         "progress (or out of memory); closed a new "
			         "connection",
			         m->port, m->n_incoming);
		}
		uv_close((uv_handle_t *)tcp, (uv_close_cb)raft_free);
		return;
	}
	in->mux = m;
	in->tcp = tcp;
	in->want = RAFT_TRANSPORT_HS_FIXED;
	tcp->data = in;
	snprintf(in->peer, sizeof(in->peer), "?");
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0 &&
	    ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		char ip[32];
		uv_ip4_name(sin, ip, sizeof(ip));
		snprintf(in->peer, sizeof(in->peer), "%s:%u", ip,
		         ntohs(sin->sin_port));
	}
	set_nodelay(m, tcp);
	uv_timer_init(m->loop, &in->timer);
	in->timer.data = in;
	in->next = m->incoming;
	if (m->incoming != NULL) {
		m->incoming->prev = in;
	}
	m->incoming = in;
	m->n_incoming++;
	m->pending++;
	uv_timer_start(&in->timer, in_timer, m->handshake_ms, 0);
	if (uv_read_start((uv_stream_t *)tcp, in_alloc, in_read) != 0) {
		in_abort(in);
	}
}

/* ---- mux ---------------------------------------------------------------- */

static void listener_closed(uv_handle_t *h);

int raft_mux_new(uv_loop_t *loop, const struct raft_mux_config *cfg,
                 struct raft_mux **out, char *errmsg)
{
	struct sockaddr_in sa;
	int rv;
	if (cfg == NULL || cfg->bind_address == NULL ||
	    parse_address(cfg->bind_address, &sa) != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "raft bind address \"%s\" is malformed: want "
		         "IPv4:port, e.g. 0.0.0.0:12445",
		         cfg != NULL && cfg->bind_address != NULL
		                 ? cfg->bind_address
		                 : "(null)");
		return STRATA_EINVAL;
	}
	struct raft_mux *m = strata_calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	m->loop = loop;
	m->nodelay = !cfg->tcp_nodelay_off;
	m->handshake_ms = cfg->handshake_ms ? cfg->handshake_ms : 5000;
	m->max_handshakes = cfg->max_handshakes ? cfg->max_handshakes : 1024;
	m->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 25;
	m->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 1000;
	if (m->backoff_max_ms < m->backoff_min_ms) {
		m->backoff_max_ms = m->backoff_min_ms;
	}
	/* Bind with plain calls so that a busy port fails synchronously
	 * without a handle to close. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	rv = fd < 0 ? -errno : 0;
	if (rv == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
		rv = -errno;
	}
	if (rv == 0 &&
	    bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rv = -errno;
	}
	if (rv == 0 && listen(fd, 128) != 0) {
		rv = -errno;
	}
	if (rv != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "listen for Raft on %s: %s; pick a free port or stop "
		         "the process using it",
		         cfg->bind_address, strerror(-rv));
		if (fd >= 0) {
			close(fd);
		}
		strata_free(m);
		return STRATA_EIO;
	}
	uv_tcp_init(loop, &m->listener);
	m->listener.data = m;
	rv = uv_tcp_open(&m->listener, fd);
	if (rv == 0) {
		rv = uv_listen((uv_stream_t *)&m->listener, 128, on_connection);
	}
	if (rv != 0) {
		/* Not seen in practice; the handle must close on the loop. */
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "listen for Raft on %s: %s", cfg->bind_address,
		         uv_strerror(rv));
		m->closing = true;
		m->pending = 1;
		uv_close((uv_handle_t *)&m->listener, listener_closed);
		return STRATA_EIO;
	}
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	uv_tcp_getsockname(&m->listener, (struct sockaddr *)&ss, &len);
	m->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	m->log_window_start = uv_now(loop);
	*out = m;
	return 0;
}

uint16_t raft_mux_port(const struct raft_mux *m)
{
	return m->port;
}

void raft_mux_stats(const struct raft_mux *m, struct raft_mux_stats *out)
{
	*out = m->stats;
}

static void listener_closed(uv_handle_t *h)
{
	struct raft_mux *m = h->data;
	m->pending--;
	mux_maybe_closed(m);
}

void raft_mux_close(struct raft_mux *m, raft_mux_close_cb cb, void *arg)
{
	if (m->groups != NULL) {
		LOG_ERROR(COMP,
		          "closing Raft port %u while group %" PRIu64
		          " is still open: close every group first",
		          m->port, m->groups->group);
	}
	m->closing = true;
	m->close_cb = cb;
	m->close_arg = arg;
	m->pending++;
	uv_close((uv_handle_t *)&m->listener, listener_closed);
	while (m->incoming != NULL) {
		in_abort(m->incoming);
	}
}
