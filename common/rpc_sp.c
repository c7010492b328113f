/* The RPC server's own transport for numeric tcp:// URLs: NNG's SP rep0
 * wire format (common/sp.h) on a listener served by one I/O thread, so
 * NNG req0 clients and libstrata's client/wire both talk to it.
 *
 * Why not NNG's rep0 socket: per request it took a poller wake-up and
 * about three and a half task-thread switches (receive, protocol, context
 * completion, then the send completion that re-arms the context) before
 * and after the handler. Here the I/O thread reads the request and calls
 * the handler; the reply is written by whichever thread answers (for the
 * segment store, the container's loop), straight into the socket when
 * nothing is queued before it. Per request: one wake-up of the I/O thread.
 *
 * Threads and locks. The I/O thread alone reads sockets, parses and
 * accepts (sp_conn's rx, buf, pending). The connection lists and the free
 * call slots are under srv->mtx; a connection's socket for writing, its
 * out queue and its reference count under its own wmu (lock order:
 * srv->mtx, then wmu), so a reply is written without the server's lock,
 * which the I/O thread takes for every request. The handler runs with no
 * lock. A request needs a free call slot (n_contexts of them); when none
 * is free the connection stops being read (its complete request kept
 * aside) until a reply frees one, which wakes the I/O thread through an
 * eventfd. Likewise while more than max_queued_bytes of the connection's
 * replies wait to be written (a client that sends but does not read):
 * the flush that brings them down to half wakes the I/O thread. A connection
 * that fails is closed by the I/O thread at once but freed only when nothing
 * refers to it, at the end of an epoll batch (the batch may still name it).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <nng/nng.h>

#include "common/clock.h"
#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/refbuf.h"
#include "common/rpc_int.h"
#include "common/sp.h"
#include "strata/error.h"

#define SP_BUF (16u * 1024)    /* per-connection read buffer */
#define SP_DIRECT (16u * 1024) /* read straight into envelopes this big */
#define SP_EVENTS 64
#define SP_IOV 64              /* iovecs per sendmsg (up to three per reply) */
#define SP_ACCEPT_PAUSE_MS 100 /* listener off after accept ran out */

/* A reply not yet fully written: SP header, message, then the tail's
 * bytes (a read's data, written from where it lies). */
struct sp_out {
	struct sp_out *next;
	nng_msg *msg;
	struct sp_tail tail;
	uint8_t hdr[SP_HDR];
	size_t off; /* bytes of hdr + body + tail written */
};

struct sp_conn {
	struct sp_conn *next; /* sp->conns or sp->dead (srv->mtx) */
	/* wmu guards the socket for writing and closing, the references,
	 * the out queue, paused and the epoll registration. */
	pthread_mutex_t wmu;
	unsigned refs;    /* calls and writes holding it */
	int fd;           /* -1 once closed: freed (I/O thread) at 0 refs */
	bool paused;      /* not read: waiting for a free call slot, or full */
	bool full;        /* paused because out_bytes > max_queued_bytes */
	size_t out_bytes; /* bytes of the out queue not yet written */
	uint32_t events;  /* what epoll watches */
	struct sp_out *out, *out_tail;
	/* I/O thread only: */
	struct sp_rx rx;
	nng_msg *pending; /* a whole request waiting for a slot */
	uint32_t pending_id;
	size_t off, len; /* unparsed bytes: buf[off..len) */
	uint8_t buf[SP_BUF];
};

struct sp_server {
	int lfd;
	int epfd;
	int evfd; /* wakes the I/O thread: a slot freed, or quit */
	pthread_t thread;
	bool started;
	bool quit;
	bool starved;          /* a connection waits for a free slot */
	struct sp_conn *conns; /* open */
	struct sp_conn *dead;  /* closed, freed when refs == 0 */
	struct rpc_call *free_calls;
	atomic_uint sending; /* rpc_sp_send calls between hold and queued */
	size_t max_queued;   /* rpc_server_opts.max_queued_bytes */
	/* Accepting (I/O thread; n_conns changes under srv->mtx). The
	 * listener is not watched while n_conns is at max_conns (until a
	 * connection closes) or after accept ran out of descriptors or
	 * memory (until resume_ms). */
	unsigned n_conns;   /* open connections */
	unsigned max_conns; /* rpc_server_opts.max_connections */
	bool listen_off;    /* the listener is not watched */
	uint64_t resume_ms; /* listen_off: watch again then; 0 = at a close */
	uint64_t warned_ms[2]; /* last warning: at the limit, accept failing */
};

static const uint8_t hello_rep0[8] = {0, 'S', 'P', 0, 0, SP_PROTO_REP0, 0, 0};

/* The evfd's and the listener's epoll tags (connections use their own). */
static char tag_ev, tag_listen;

static void wake(struct sp_server *sp)
{
	uint64_t one = 1;
	ssize_t n = write(sp->evfd, &one, sizeof(one));
	(void)n; /* EAGAIN: already non-zero */
}

/* I/O thread: stop watching the listener until resume_ms (0: until a
 * connection closes), or watch it again. */
static void listen_set(struct sp_server *sp, bool off, uint64_t resume_ms)
{
	sp->resume_ms = resume_ms;
	if (off == sp->listen_off) {
		return;
	}
	struct epoll_event e = {.events = off ? 0 : EPOLLIN,
	                        .data.ptr = &tag_listen};
	epoll_ctl(sp->epfd, EPOLL_CTL_MOD, sp->lfd, &e);
	sp->listen_off = off;
}

/* Whether a warning of kind k is due (at most one a minute). */
static bool warn_due(struct sp_server *sp, int k)
{
	return clock_due(&sp->warned_ms[k], clock_mono_ms(),
	                 CLOCK_WARN_EVERY_MS);
}

/* c->wmu held: watch c for what it waits for. */
static void conn_watch_wlocked(struct sp_server *sp, struct sp_conn *c)
{
	if (c->fd < 0) {
		return;
	}
	uint32_t ev =
	        (c->paused ? 0 : EPOLLIN) | (c->out != NULL ? EPOLLOUT : 0);
	if (ev != c->events) {
		struct epoll_event e = {.events = ev, .data.ptr = c};
		epoll_ctl(sp->epfd, EPOLL_CTL_MOD, c->fd, &e);
		c->events = ev;
	}
}

static void out_free(struct sp_out *o)
{
	nng_msg_free(o->msg);
	refbuf_release(o->tail.ref);
	strata_free(o);
}

/* o's bytes on the wire. */
static size_t out_len(const struct sp_out *o)
{
	return SP_HDR + nng_msg_len(o->msg) + o->tail.len;
}

/* The parts of o not yet written, as up to three iovecs at iov; their
 * count. */
static int out_iov(const struct sp_out *o, struct iovec *iov)
{
	uint8_t *base[3] = {(uint8_t *)o->hdr, nng_msg_body(o->msg),
	                    (uint8_t *)o->tail.data};
	size_t len[3] = {SP_HDR, nng_msg_len(o->msg), o->tail.len};
	size_t skip = o->off;
	int n = 0;
	for (int i = 0; i < 3; i++) {
		if (skip >= len[i]) {
			skip -= len[i];
			continue;
		}
		iov[n].iov_base = base[i] + skip;
		iov[n].iov_len = len[i] - skip;
		n++;
		skip = 0;
	}
	return n;
}

/* c->wmu held: drop what is queued (the connection is gone). */
static void out_drop_wlocked(struct sp_conn *c)
{
	while (c->out != NULL) {
		struct sp_out *o = c->out;
		c->out = o->next;
		out_free(o);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
}

/* Close c (I/O thread, or stop after it): replies to its calls are
 * dropped from now on; memory is freed once no call refers to it. */
static void conn_close(struct rpc_server *srv, struct sp_conn *c)
{
	struct sp_server *sp = srv->sp;
	pthread_mutex_lock(&c->wmu);
	if (c->fd < 0) {
		pthread_mutex_unlock(&c->wmu);
		return;
	}
	epoll_ctl(sp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	out_drop_wlocked(c);
	pthread_mutex_unlock(&c->wmu);
	pthread_mutex_lock(&srv->mtx);
	for (struct sp_conn **pp = &sp->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->next = sp->dead;
	sp->dead = c;
	sp->n_conns--;
	pthread_mutex_unlock(&srv->mtx);
	if (sp->listen_off && sp->resume_ms == 0) {
		listen_set(sp, false, 0); /* below the limit again */
	}
}

static void conn_free(struct sp_conn *c)
{
	if (c->pending != NULL) {
		nng_msg_free(c->pending);
	}
	sp_rx_reset(&c->rx);
	pthread_mutex_destroy(&c->wmu);
	strata_free(c);
}

/* srv->mtx held: free the closed connections nothing refers to. */
static void reap_locked(struct sp_server *sp)
{
	for (struct sp_conn **pp = &sp->dead; *pp != NULL;) {
		struct sp_conn *c = *pp;
		pthread_mutex_lock(&c->wmu);
		unsigned refs = c->refs;
		pthread_mutex_unlock(&c->wmu);
		if (refs == 0) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void conn_ref(struct sp_conn *c)
{
	pthread_mutex_lock(&c->wmu);
	c->refs++;
	pthread_mutex_unlock(&c->wmu);
}

/* Under wmu, so that once the stop has seen no reference left no thread
 * touches the server any more. */
static void conn_unref(struct sp_server *sp, struct sp_conn *c)
{
	pthread_mutex_lock(&c->wmu);
	if (--c->refs == 0 && c->fd < 0) {
		wake(sp); /* the I/O thread reaps it */
	}
	pthread_mutex_unlock(&c->wmu);
}

/* c->wmu held: write c's queued replies (many in one sendmsg); false on
 * a broken socket. */
static bool flush_wlocked(struct sp_server *sp, struct sp_conn *c)
{
	while (c->out != NULL) {
		struct iovec iov[SP_IOV];
		int n = 0;
		for (struct sp_out *o = c->out; o != NULL && n + 3 <= SP_IOV;
		     o = o->next) {
			n += out_iov(o, iov + n);
		}
		ssize_t w = sp_sendv(c->fd, iov, n);
		if (w == 0) {
			break;
		}
		if (w < 0) {
			return false;
		}
		c->out_bytes -= (size_t)w;
		size_t left = (size_t)w;
		while (c->out != NULL) {
			struct sp_out *o = c->out;
			size_t rest = out_len(o) - o->off;
			if (left < rest) {
				o->off += left;
				break;
			}
			left -= rest;
			c->out = o->next;
			out_free(o);
		}
		if (c->out == NULL) {
			c->out_tail = NULL;
		} else if ((size_t)w == 0 || c->out->off > 0) {
			break; /* the socket took only part: wait for EPOLLOUT
			        */
		}
	}
	if (c->full && c->out_bytes <= sp->max_queued / 2) {
		c->full = false; /* the I/O thread reads it again */
		wake(sp);
	}
	conn_watch_wlocked(sp, c);
	return true;
}

/* Write c's queue and drop the reference the queued write held. */
static void flush_and_unref(struct sp_server *sp, struct sp_conn *c)
{
	pthread_mutex_lock(&c->wmu);
	if (c->fd >= 0 && !flush_wlocked(sp, c)) {
		/* The I/O thread closes it (it may be reading it now). */
		out_drop_wlocked(c);
	}
	pthread_mutex_unlock(&c->wmu);
	conn_unref(sp, c);
}

struct sp_conn *rpc_sp_hold_locked(struct rpc_call *call)
{
	struct sp_conn *c = call->conn;
	if (c != NULL) {
		conn_ref(c);
		atomic_fetch_add(&call->srv->sp->sending, 1);
	}
	return c;
}

void rpc_sp_send(struct rpc_server *srv, struct sp_conn *c, uint32_t id,
                 void *msg, const struct sp_tail *tail)
{
	struct sp_server *sp = srv->sp;
	struct sp_tail t = tail != NULL ? *tail : (struct sp_tail){0};
	if (c == NULL) {
		nng_msg_free(msg);
		refbuf_release(t.ref);
		return;
	}
	struct sp_out *o = strata_malloc(sizeof(*o));
	if (o == NULL) {
		nng_msg_free(msg);
		refbuf_release(t.ref);
		conn_unref(sp, c);
		atomic_fetch_sub(&sp->sending, 1);
		LOG_ERROR("rpc", "%s: reply dropped: out of memory", srv->url);
		return;
	}
	o->next = NULL;
	o->msg = msg;
	o->tail = t;
	o->off = 0;
	sp_put_be64(o->hdr, SP_HDR - 8 + (uint64_t)nng_msg_len(msg) + t.len);
	sp_put_be32(o->hdr + 8, id | 0x80000000u);
	pthread_mutex_lock(&c->wmu);
	if (c->fd < 0) { /* its client is gone */
		pthread_mutex_unlock(&c->wmu);
		out_free(o);
		conn_unref(sp, c);
		atomic_fetch_sub(&sp->sending, 1);
		return;
	}
	bool first = c->out == NULL;
	if (c->out_tail != NULL) {
		c->out_tail->next = o;
	} else {
		c->out = o;
	}
	c->out_tail = o;
	c->out_bytes += out_len(o);
	pthread_mutex_unlock(&c->wmu);
	/* Behind others, the I/O thread writes it when the socket drains. */
	if (first) {
		flush_and_unref(sp, c);
	} else {
		conn_unref(sp, c);
	}
	atomic_fetch_sub(&sp->sending, 1);
}

void rpc_sp_recycle_locked(struct rpc_call *call)
{
	struct sp_server *sp = call->srv->sp;
	struct sp_conn *c = call->conn;
	call->conn = NULL;
	call->next_free = sp->free_calls;
	sp->free_calls = call;
	if (c != NULL) {
		conn_unref(sp, c);
	}
	if (sp->starved) {
		wake(sp);
	}
}

/* I/O thread: c waits for a free call slot, or no longer does. */
static void conn_pause(struct sp_server *sp, struct sp_conn *c, bool paused)
{
	pthread_mutex_lock(&c->wmu);
	c->paused = paused;
	conn_watch_wlocked(sp, c);
	pthread_mutex_unlock(&c->wmu);
}

/* I/O thread: whether c has more replies waiting to be written than the
 * server allows; then c is paused until a flush brings them down to half
 * (which wakes the I/O thread: resume_paused). */
static bool conn_full(struct sp_server *sp, struct sp_conn *c)
{
	pthread_mutex_lock(&c->wmu);
	bool full = c->out_bytes > sp->max_queued;
	if (full) {
		c->full = true;
		c->paused = true;
		conn_watch_wlocked(sp, c);
	}
	pthread_mutex_unlock(&c->wmu);
	return full;
}

/* I/O thread: hand c's pending request to a free slot; false when none is
 * free or c's replies wait to be written (c paused, resumed when one is
 * free or they are written). */
static bool dispatch_pending(struct rpc_server *srv, struct sp_conn *c)
{
	struct sp_server *sp = srv->sp;
	if (conn_full(sp, c)) {
		return false;
	}
	pthread_mutex_lock(&srv->mtx);
	struct rpc_call *call = sp->free_calls;
	if (call == NULL) {
		sp->starved = true;
		pthread_mutex_unlock(&srv->mtx);
		conn_pause(sp, c, true);
		return false;
	}
	sp->free_calls = call->next_free;
	call->next_free = NULL;
	call->conn = c;
	call->id = c->pending_id;
	conn_ref(c);
	pthread_mutex_unlock(&srv->mtx);
	if (c->paused) {
		conn_pause(sp, c, false);
	}
	nng_msg *m = c->pending;
	c->pending = NULL;
	rpc_server_dispatch(call, m); /* takes m */
	return true;
}

static void conn_fail(struct rpc_server *srv, struct sp_conn *c,
                      const char *why)
{
	LOG_DEBUG("rpc", "%s: closing a client connection: %s", srv->url, why);
	conn_close(srv, c);
}

/* I/O thread: parse and dispatch what c has buffered, then read more,
 * until the socket is drained, c is paused, or c failed. */
static void conn_serve(struct rpc_server *srv, struct sp_conn *c)
{
	for (;;) {
		if (c->pending != NULL && !dispatch_pending(srv, c)) {
			return;
		}
		while (c->off < c->len) {
			char why[STRATA_ERRMSG_SIZE];
			uint32_t id;
			void *msg;
			ssize_t k = sp_rx_feed(&c->rx, c->buf + c->off,
			                       c->len - c->off, &id, &msg, why);
			if (k < 0) {
				conn_fail(srv, c, why);
				return;
			}
			c->off += (size_t)k;
			if (msg != NULL) {
				c->pending = msg;
				c->pending_id = id;
				if (!dispatch_pending(srv, c)) {
					return;
				}
			}
		}
		uint8_t *dst;
		size_t room = sp_rx_room(&c->rx, &dst);
		bool direct = room >= SP_DIRECT;
		if (!direct) {
			dst = c->buf;
			room = SP_BUF;
			c->off = c->len = 0;
		}
		ssize_t n = recv(c->fd, dst, room, 0);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		}
		if (n <= 0) {
			conn_fail(srv, c,
			          n == 0 ? "closed by the client"
			                 : strerror(errno));
			return;
		}
		if (direct) {
			uint32_t id;
			void *msg;
			if (sp_rx_filled(&c->rx, (size_t)n, &id, &msg)) {
				c->pending = msg;
				c->pending_id = id;
			}
		} else {
			c->len = (size_t)n;
		}
	}
}

static void accept_all(struct rpc_server *srv)
{
	struct sp_server *sp = srv->sp;
	for (;;) {
		if (sp->n_conns >= sp->max_conns) {
			/* The backlog holds the next ones until a close. */
			listen_set(sp, true, 0);
			if (warn_due(sp, 0)) {
				LOG_WARN(
				        "rpc",
				        "%s: %u connections open, the most "
				        "this server accepts (%s); new clients "
				        "wait until one closes. Raise the "
				        "limit "
				        "if that many clients are expected",
				        srv->url, sp->n_conns, srv->limit_key);
			}
			return;
		}
		int fd = accept4(sp->lfd, NULL, NULL,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno;
			if (err == EINTR || err == ECONNABORTED) {
				continue;
			}
			if (err == EAGAIN || err == EWOULDBLOCK) {
				return;
			}
			/* Out of descriptors or memory (or anything else):
			 * the listener stays readable, so stop watching it
			 * for a while rather than spin on it. */
			listen_set(sp, true,
			           clock_mono_ms() + SP_ACCEPT_PAUSE_MS);
			if (warn_due(sp, 1)) {
				struct rlimit rl = {0};
				getrlimit(RLIMIT_NOFILE, &rl);
				LOG_WARN(
				        "rpc",
				        "%s: accept: %s (%u connections open, "
				        "open-file limit %llu); retrying every "
				        "%d ms. Raise the process's open-file "
				        "limit (ulimit -n, systemd "
				        "LimitNOFILE=) "
				        "or lower %s",
				        srv->url, strerror(err), sp->n_conns,
				        (unsigned long long)rl.rlim_cur,
				        SP_ACCEPT_PAUSE_MS, srv->limit_key);
			}
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct sp_conn *c = strata_malloc(sizeof(*c));
		/* An empty socket takes 8 bytes at once. */
		if (c == NULL || send(fd, hello_rep0, sizeof(hello_rep0),
		                      MSG_NOSIGNAL) != sizeof(hello_rep0)) {
			strata_free(c);
			close(fd);
			continue;
		}
		memset(c, 0, offsetof(struct sp_conn, buf));
		pthread_mutex_init(&c->wmu, NULL);
		c->fd = fd;
		c->events = EPOLLIN;
		sp_rx_init(&c->rx, srv->opts.max_msg_bytes, SP_PROTO_REQ0);
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
		pthread_mutex_lock(&srv->mtx);
		if (epoll_ctl(sp->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
			pthread_mutex_unlock(&srv->mtx);
			close(fd);
			pthread_mutex_destroy(&c->wmu);
			strata_free(c);
			continue;
		}
		c->next = sp->conns;
		sp->conns = c;
		sp->n_conns++;
		pthread_mutex_unlock(&srv->mtx);
	}
}

/* I/O thread: a slot was freed; serve the connections waiting for one
 * until none waits or the slots run out again (which pauses the one being
 * served and sets starved again). The connection list changes only on
 * this thread. */
static void resume_paused(struct rpc_server *srv)
{
	struct sp_server *sp = srv->sp;
	pthread_mutex_lock(&srv->mtx);
	sp->starved = false;
	pthread_mutex_unlock(&srv->mtx);
	struct sp_conn *next;
	for (struct sp_conn *c = sp->conns; c != NULL; c = next) {
		next = c->next; /* c may be closed (moved to the dead list) */
		if (!c->paused) {
			continue;
		}
		conn_serve(srv, c);
		pthread_mutex_lock(&c->wmu);
		bool starved = c->fd >= 0 && c->paused && !c->full;
		pthread_mutex_unlock(&c->wmu);
		if (starved) {
			return; /* no slot left */
		}
	}
}

static void *io_main(void *arg)
{
	struct rpc_server *srv = arg;
	struct sp_server *sp = srv->sp;
	struct epoll_event evs[SP_EVENTS];
	for (;;) {
		int timeout = -1;
		if (sp->listen_off && sp->resume_ms != 0) {
			uint64_t now = clock_mono_ms();
			timeout = now >= sp->resume_ms
			                  ? 0
			                  : (int)(sp->resume_ms - now);
		}
		int n = epoll_wait(sp->epfd, evs, SP_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			LOG_ERROR("rpc", "%s: epoll_wait: %s", srv->url,
			          strerror(errno));
			break;
		}
		bool woken = false;
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			if (tag == &tag_ev) {
				uint64_t v;
				ssize_t r = read(sp->evfd, &v, sizeof(v));
				(void)r;
				woken = true;
			} else if (tag == &tag_listen) {
				accept_all(srv);
			} else {
				struct sp_conn *c = tag;
				if (c->fd < 0) {
					continue; /* closed in this batch */
				}
				if ((evs[i].events & EPOLLOUT) != 0) {
					pthread_mutex_lock(&c->wmu);
					bool ok = flush_wlocked(sp, c);
					pthread_mutex_unlock(&c->wmu);
					if (!ok) {
						conn_fail(srv, c,
						          "send failed");
					}
				}
				uint32_t in =
				        evs[i].events & ~(uint32_t)EPOLLOUT;
				if (c->fd >= 0 && c->paused && in != 0) {
					/* Hung up while waiting for a slot
					 * (HUP cannot be unwatched). */
					conn_fail(srv, c, "hung up");
				} else if (c->fd >= 0 && in != 0) {
					conn_serve(srv, c);
				}
			}
		}
		pthread_mutex_lock(&srv->mtx);
		bool quit = sp->quit;
		reap_locked(sp);
		pthread_mutex_unlock(&srv->mtx);
		if (quit) {
			break;
		}
		if (woken) {
			resume_paused(srv);
		}
		if (sp->listen_off && sp->resume_ms != 0 &&
		    clock_mono_ms() >= sp->resume_ms) {
			listen_set(sp, false, 0);
			accept_all(srv);
		}
	}
	return NULL;
}

int rpc_sp_start(struct rpc_server *srv, const char *url, const char *key,
                 char *errmsg)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	if (!sp_url_addr(url, true, &sa, &salen)) {
		rpc_listen_errmsg(errmsg, url, key, STRATA_EINVAL,
		                  "not tcp://IP:PORT");
		return STRATA_EINVAL;
	}
	struct sp_server *sp = strata_calloc(1, sizeof(*sp));
	if (sp == NULL) {
		errmsg_set(errmsg, "rpc server %s: out of memory", url);
		return STRATA_ENOMEM;
	}
	sp->lfd = sp->epfd = sp->evfd = -1;
	sp->max_queued = srv->opts.max_queued_bytes;
	sp->max_conns = srv->opts.max_connections;
	srv->sp = sp;
	for (unsigned i = srv->n_calls; i-- > 0;) {
		srv->calls[i].next_free = sp->free_calls;
		sp->free_calls = &srv->calls[i];
	}
	sp->lfd = socket(sa.ss_family,
	                 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (sp->lfd < 0 ||
	    setsockopt(sp->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) !=
	            0 ||
	    bind(sp->lfd, (struct sockaddr *)&sa, salen) != 0 ||
	    listen(sp->lfd, 128) != 0) {
		int err = errno;
		int rc = err == EADDRINUSE      ? STRATA_EBUSY
		         : err == EADDRNOTAVAIL ? STRATA_EINVAL
		                                : STRATA_EIO;
		rpc_listen_errmsg(errmsg, url, key, rc, strerror(err));
		return rc;
	}
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int port = 0;
	if (getsockname(sp->lfd, (struct sockaddr *)&bound, &blen) == 0) {
		port = ntohs(
		        bound.ss_family == AF_INET6
		                ? ((struct sockaddr_in6 *)&bound)->sin6_port
		                : ((struct sockaddr_in *)&bound)->sin_port);
	}
	const char *colon = strrchr(url, ':');
	snprintf(srv->url, sizeof(srv->url), "%.*s:%d", (int)(colon - url), url,
	         port);
	sp->epfd = epoll_create1(EPOLL_CLOEXEC);
	sp->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = &tag_listen};
	struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = &tag_ev};
	if (sp->epfd < 0 || sp->evfd < 0 ||
	    epoll_ctl(sp->epfd, EPOLL_CTL_ADD, sp->lfd, &e1) != 0 ||
	    epoll_ctl(sp->epfd, EPOLL_CTL_ADD, sp->evfd, &e2) != 0 ||
	    pthread_create(&sp->thread, NULL, io_main, srv) != 0) {
		errmsg_set(errmsg, "rpc server %s: cannot start its I/O thread",
		           url);
		return STRATA_EIO;
	}
	sp->started = true;
	pthread_setname_np(sp->thread, "strata-rpc");
	return 0;
}

void rpc_sp_close(struct rpc_server *srv)
{
	struct sp_server *sp = srv->sp;
	pthread_mutex_lock(&srv->mtx);
	sp->quit = true;
	pthread_mutex_unlock(&srv->mtx);
	if (sp->started) {
		wake(sp);
		pthread_join(sp->thread, NULL);
		sp->started = false;
	}
	/* A reply counted as sent (so rpc_server_stop saw no busy call) may
	 * still be on its way into its connection's queue: let it arrive
	 * before the connections close. No new one starts (closed is set). */
	for (int waited = 0; atomic_load(&sp->sending) > 0 && waited < 5000;
	     waited++) {
		usleep(1000);
	}
	for (;;) {
		pthread_mutex_lock(&srv->mtx);
		struct sp_conn *c = sp->conns;
		pthread_mutex_unlock(&srv->mtx);
		if (c == NULL) {
			break;
		}
		pthread_mutex_lock(&c->wmu);
		flush_wlocked(sp, c); /* what fits now; the rest is dropped */
		pthread_mutex_unlock(&c->wmu);
		conn_close(srv, c);
	}
	/* Unanswered calls (late) never send: drop their references. Then
	 * wait for replies being written right now (closed is set, so no
	 * new one starts). */
	pthread_mutex_lock(&srv->mtx);
	for (unsigned i = 0; i < srv->n_calls; i++) {
		struct sp_conn *c = srv->calls[i].conn;
		srv->calls[i].conn = NULL;
		if (c != NULL) {
			pthread_mutex_lock(&c->wmu);
			c->refs--;
			pthread_mutex_unlock(&c->wmu);
		}
	}
	for (int waited = 0; sp->dead != NULL && waited < 5000; waited++) {
		reap_locked(sp);
		if (sp->dead != NULL) {
			pthread_mutex_unlock(&srv->mtx);
			usleep(1000);
			pthread_mutex_lock(&srv->mtx);
		}
	}
	if (sp->dead != NULL) {
		LOG_ERROR("rpc",
		          "%s: a reply write did not finish in 5 s; "
		          "leaving its connection allocated",
		          srv->url);
		sp->dead = NULL; /* leaked rather than freed under a writer */
	}
	pthread_mutex_unlock(&srv->mtx);
}

void rpc_sp_free(struct rpc_server *srv)
{
	struct sp_server *sp = srv->sp;
	if (sp == NULL) {
		return;
	}
	if (sp->started) { /* stop was not called: not reached */
		rpc_sp_close(srv);
	}
	while (sp->dead != NULL) { /* none after rpc_sp_close */
		struct sp_conn *c = sp->dead;
		sp->dead = c->next;
		conn_free(c);
	}
	if (sp->lfd >= 0) {
		close(sp->lfd);
	}
	if (sp->epfd >= 0) {
		close(sp->epfd);
	}
	if (sp->evfd >= 0) {
		close(sp->evfd);
	}
	strata_free(sp);
	srv->sp = NULL;
}
