/* ss_tool: drives strata-segmentstore in integration tests over common/rpc:
 * create/seal/info, pipelined appends with writer ids and event numbers
 * (retrying through failovers, deduplicated by the store), read-back
 * verification (every acknowledged event exactly once, in order), and a
 * bad-input battery. One result line per outcome on stdout. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/process.h"
#include "common/rpc.h"
#include "segmentstore/server.h"
#include "strata/error.h"
#include "strata/v1/segmentstore.pb-c.h"

/*
 * Event payload (size >= 24): writer id (16) | event number (8, LE) |
 * filler, byte i = (event number + i) & 0xff. Framed on the wire as a
 * 4-byte LE length then the payload.
 */
#define HDR 24
#define MAX_WRITERS 64
#define MAX_WINDOW 64

struct opts {
	const char *urls[RPC_MAX_ENDPOINTS];
	size_t n_urls;
	const char *segments[MAX_WRITERS];
	size_t n_segments;
	unsigned writers;    /* append: writer threads */
	uint64_t writer0;    /* first writer number */
	int64_t events;      /* append: events per writer */
	unsigned event_size; /* payload bytes */
	unsigned batch;      /* events per append block */
	unsigned window;     /* blocks in flight per writer */
	unsigned deadline_s; /* give up after this long */
	bool create;         /* create the segments first */
	const char *expect;  /* verify: "w:last,w:last" */
	unsigned rate;       /* append: blocks/s per writer, 0 = unlimited */
};

static struct rpc_client *g_cli;
static struct opts g_o;
static char *g_url_list; /* owned copies the options point into */
static char *g_seg_list;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	                      .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void writer_id(uint64_t w, uint8_t out[16])
{
	memcpy(out, "sswriter", 8);
	for (int i = 0; i < 8; i++) {
		out[8 + i] = (uint8_t)(w >> (8 * i));
	}
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

/* Frame events [first, first+n) of writer w into buf; returns bytes. */
static size_t build_block(uint64_t w, int64_t first, unsigned n, unsigned size,
                          uint8_t *buf)
{
	size_t off = 0;
	for (unsigned k = 0; k < n; k++) {
		uint64_t ev = (uint64_t)first + k;
		buf[off++] = (uint8_t)size;
		buf[off++] = (uint8_t)(size >> 8);
		buf[off++] = (uint8_t)(size >> 16);
		buf[off++] = (uint8_t)(size >> 24);
		uint8_t *p = buf + off;
		writer_id(w, p);
		for (int i = 0; i < 8; i++) {
			p[16 + i] = (uint8_t)(ev >> (8 * i));
		}
		for (unsigned i = HDR; i < size; i++) {
			p[i] = (uint8_t)(ev + i);
		}
		off += size;
	}
	return off;
}

/* --------------------------------------------------------- simple calls */

static int call_pb(uint32_t method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *desc,
                   ProtobufCMessage **out, char *err)
{
	return rpc_call_pb(g_cli, method, RPC_IDEMPOTENT, req, desc, out, err);
}

/* Retry a simple call on transient errors until the deadline. */
static int call_retry(uint32_t method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **out, char *err)
{
	uint64_t end = now_ms() + (uint64_t)g_o.deadline_s * 1000u;
	for (;;) {
		int rc = call_pb(method, req, desc, out, err);
		bool transient =
		        rc == STRATA_EAGAIN || rc == STRATA_ENOTLEADER ||
		        rc == STRATA_EWRONGHOST || rc == STRATA_ETIMEDOUT ||
		        rc == STRATA_ECLOSED || rc == STRATA_EUNAVAIL ||
		        rc == STRATA_ESHUTDOWN || rc == STRATA_ELEADERLOST;
		if (!transient || now_ms() >= end) {
			return rc;
		}
		sleep_ms(100);
	}
}

static int cmd_create(void)
{
	for (size_t i = 0; i < g_o.n_segments; i++) {
		Strata__V1__CreateSegmentRequest r =
		        STRATA__V1__CREATE_SEGMENT_REQUEST__INIT;
		r.segment = (char *)g_o.segments[i];
		r.idempotent = true;
		ProtobufCMessage *out = NULL;
		char err[STRATA_ERRMSG_SIZE];
		int rc = call_retry(SS_METHOD_CREATE_SEGMENT, &r.base,
		                    &strata__v1__segment_info_reply__descriptor,
		                    &out, err);
		if (rc != 0) {
			printf("error create segment=%s code=%s msg=%s\n",
			       r.segment, strata_error_name(rc), err);
			return 1;
		}
		rpc_pb_free(out);
		printf("created segment=%s\n", r.segment);
	}
	return 0;
}

static int cmd_info(uint32_t method)
{
	for (size_t i = 0; i < g_o.n_segments; i++) {
		Strata__V1__SegmentRequest r =
		        STRATA__V1__SEGMENT_REQUEST__INIT;
		r.segment = (char *)g_o.segments[i];
		ProtobufCMessage *out = NULL;
		char err[STRATA_ERRMSG_SIZE];
		int rc = call_retry(method, &r.base,
		                    &strata__v1__segment_info_reply__descriptor,
		                    &out, err);
		if (rc != 0) {
			printf("error info segment=%s code=%s msg=%s\n",
			       r.segment, strata_error_name(rc), err);
			return 1;
		}
		Strata__V1__SegmentInfoReply *s = (void *)out;
		printf("info segment=%s length=%" PRIu64 " start=%" PRIu64
		       " sealed=%d flushed=%" PRIu64 "\n",
		       s->segment, s->length, s->start_offset, s->sealed,
		       s->flushed_length);
		rpc_pb_free(out);
	}
	return 0;
}

/* ------------------------------------------------------------- append -- */

/* One writer: pipelined blocks, resync after any failure. */
struct writer {
	uint64_t w;          /* writer number */
	const char *segment; /* where it writes */
	uint8_t id[16];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned inflight; /* blocks sent, not completed */
	int64_t acked;     /* highest event acknowledged (-1 none) */
	bool failed;       /* a block failed since the last resync */
	int last_code;     /* of the last failure */
	char last_err[2 * STRATA_ERRMSG_SIZE];
	uint64_t failures;     /* blocks that failed */
	uint64_t resyncs;      /* SETUP_APPEND rounds after failures */
	uint64_t dups;         /* duplicate acks */
	uint64_t backpressure; /* EAGAIN answers */
	int result;            /* 0 done, 1 gave up */
};

struct block_call {
	struct writer *wr;
	int64_t last; /* last event number of the block */
};

static void block_done(void *arg, int code, const char *errmsg,
                       struct rpc_body *reply)
{
	struct block_call *b = arg;
	struct writer *wr = b->wr;
	Strata__V1__AppendReply *a = NULL;
	if (reply->len > 0) {
		a = (void *)rpc_pb_unpack(&strata__v1__append_reply__descriptor,
		                          reply->data, reply->len);
	}
	pthread_mutex_lock(&wr->mu);
	if (code == 0) {
		if (b->last > wr->acked) {
			wr->acked = b->last;
		}
		if (a != NULL && a->duplicate) {
			wr->dups++;
		}
	} else {
		wr->failed = true;
		wr->failures++;
		wr->last_code = code;
		snprintf(wr->last_err, sizeof(wr->last_err), "%s",
		         errmsg != NULL ? errmsg : "");
		if (code == STRATA_EAGAIN) {
			wr->backpressure++;
		}
	}
	wr->inflight--;
	pthread_cond_broadcast(&wr->cv);
	pthread_mutex_unlock(&wr->mu);
	rpc_pb_free(a ? &a->base : NULL);
	rpc_body_free(reply);
	strata_free(b);
}

/* Ask the store for this writer's last event number; retries. */
static int setup_append(struct writer *wr, int64_t *last, uint64_t end)
{
	Strata__V1__SetupAppendRequest r =
	        STRATA__V1__SETUP_APPEND_REQUEST__INIT;
	r.segment = (char *)wr->segment;
	r.writer_id.data = wr->id;
	r.writer_id.len = 16;
	for (;;) {
		ProtobufCMessage *out = NULL;
		char err[STRATA_ERRMSG_SIZE];
		int rc = call_pb(SS_METHOD_SETUP_APPEND, &r.base,
		                 &strata__v1__setup_append_reply__descriptor,
		                 &out, err);
		if (rc == 0) {
			*last = ((Strata__V1__SetupAppendReply *)out)
			                ->last_event_number;
			rpc_pb_free(out);
			return 0;
		}
		if (now_ms() >= end) {
			snprintf(wr->last_err, sizeof(wr->last_err),
			         "setup append: %s", err);
			wr->last_code = rc;
			return rc;
		}
		sleep_ms(100);
	}
}

static void *writer_main(void *p)
{
	struct writer *wr = p;
	const struct opts *o = &g_o;
	uint64_t end = now_ms() + (uint64_t)o->deadline_s * 1000u;
	int64_t last_event = o->events - 1;
	size_t block_cap = (size_t)o->batch * (o->event_size + 4);
	uint8_t *block = strata_malloc(block_cap);
	uint8_t *packed = strata_malloc(block_cap + 256);
	int64_t last = -1;
	wr->result = 1;
	if (block == NULL || packed == NULL ||
	    setup_append(wr, &last, end) != 0) {
		goto out;
	}
	wr->acked = last;
	int64_t next = last + 1;
	uint64_t started = now_ms();
	uint64_t sent = 0;
	for (;;) {
		pthread_mutex_lock(&wr->mu);
		while (!wr->failed && wr->inflight >= o->window) {
			pthread_cond_wait(&wr->cv, &wr->mu);
		}
		if (wr->failed) {
			/* Drain, then resynchronise from the store. */
			while (wr->inflight > 0) {
				pthread_cond_wait(&wr->cv, &wr->mu);
			}
			int code = wr->last_code;
			wr->failed = false;
			wr->resyncs++;
			pthread_mutex_unlock(&wr->mu);
			if (now_ms() >= end) {
				goto out;
			}
			sleep_ms(code == STRATA_EAGAIN ? 200 : 100);
			if (setup_append(wr, &last, end) != 0) {
				goto out;
			}
			pthread_mutex_lock(&wr->mu);
			if (last > wr->acked) {
				wr->acked = last;
			}
			next = wr->acked + 1;
		}
		bool done = wr->acked >= last_event;
		bool all_sent = next > last_event;
		pthread_mutex_unlock(&wr->mu);
		if (done) {
			wr->result = 0;
			break;
		}
		if (now_ms() >= end) {
			break;
		}
		if (all_sent) {
			pthread_mutex_lock(&wr->mu);
			while (!wr->failed && wr->inflight > 0) {
				pthread_cond_wait(&wr->cv, &wr->mu);
			}
			pthread_mutex_unlock(&wr->mu);
			continue;
		}
		if (o->rate != 0) {
			uint64_t due = started + sent * 1000u / o->rate;
			uint64_t t = now_ms();
			if (due > t) {
				sleep_ms((unsigned)(due - t));
			}
		}
		unsigned n = o->batch;
		if ((int64_t)n > last_event - next + 1) {
			n = (unsigned)(last_event - next + 1);
		}
		size_t len = build_block(wr->w, next, n, o->event_size, block);
		Strata__V1__AppendRequest r = STRATA__V1__APPEND_REQUEST__INIT;
		r.segment = (char *)wr->segment;
		r.writer_id.data = wr->id;
		r.writer_id.len = 16;
		r.first_event_number = next;
		r.event_count = n;
		r.data.data = block;
		r.data.len = len;
		r.expected_offset = -1;
		size_t plen = protobuf_c_message_pack(&r.base, packed);
		struct block_call *b = strata_malloc(sizeof(*b));
		if (b == NULL) {
			goto out;
		}
		b->wr = wr;
		b->last = next + n - 1;
		pthread_mutex_lock(&wr->mu);
		wr->inflight++;
		pthread_mutex_unlock(&wr->mu);
		char err[STRATA_ERRMSG_SIZE];
		int rc = rpc_call_async(g_cli, SS_METHOD_APPEND, RPC_IDEMPOTENT,
		                        packed, plen, block_done, b, err);
		if (rc != 0) {
			strata_free(b);
			pthread_mutex_lock(&wr->mu);
			wr->inflight--;
			wr->failed = true;
			wr->last_code = rc;
			snprintf(wr->last_err, sizeof(wr->last_err), "%s", err);
			pthread_mutex_unlock(&wr->mu);
			continue;
		}
		sent++;
		next += n;
	}
out:
	pthread_mutex_lock(&wr->mu);
	while (wr->inflight > 0) {
		pthread_cond_wait(&wr->cv, &wr->mu);
	}
	pthread_mutex_unlock(&wr->mu);
	strata_free(block);
	strata_free(packed);
	return NULL;
}

static int cmd_append(void)
{
	if (g_o.create && cmd_create() != 0) {
		return 1;
	}
	struct writer *ws = strata_calloc(g_o.writers, sizeof(*ws));
	pthread_t th[MAX_WRITERS];
	if (ws == NULL) {
		return 1;
	}
	uint64_t t0 = now_ms();
	for (unsigned i = 0; i < g_o.writers; i++) {
		struct writer *wr = &ws[i];
		wr->w = g_o.writer0 + i;
		wr->segment = g_o.segments[i % g_o.n_segments];
		writer_id(wr->w, wr->id);
		wr->acked = -1;
		pthread_mutex_init(&wr->mu, NULL);
		pthread_cond_init(&wr->cv, NULL);
		pthread_create(&th[i], NULL, writer_main, wr);
	}
	int status = 0;
	for (unsigned i = 0; i < g_o.writers; i++) {
		pthread_join(th[i], NULL);
		struct writer *wr = &ws[i];
		printf("acked writer=%" PRIu64 " segment=%s last=%" PRId64
		       " failures=%" PRIu64 " resyncs=%" PRIu64 " dups=%" PRIu64
		       " backpressure=%" PRIu64 " done=%d\n",
		       wr->w, wr->segment, wr->acked, wr->failures, wr->resyncs,
		       wr->dups, wr->backpressure, wr->result == 0);
		if (wr->result != 0) {
			printf("error writer=%" PRIu64 " gave up: %s: %s\n",
			       wr->w, strata_error_name(wr->last_code),
			       wr->last_err);
			status = 1;
		}
		pthread_mutex_destroy(&wr->mu);
		pthread_cond_destroy(&wr->cv);
	}
	uint64_t ms = now_ms() - t0;
	printf("append_time_ms=%" PRIu64 "\n", ms);
	strata_free(ws);
	return status;
}

/* ------------------------------------------------------------- verify -- */

struct wstate {
	uint64_t w;
	int64_t next;   /* next expected event number */
	int64_t expect; /* acknowledged last event (-1: none required) */
	bool seen;
};

static int cmd_verify(void)
{
	struct wstate ws[MAX_WRITERS];
	size_t nw = 0;
	if (g_o.expect != NULL) {
		char *list = strata_strdup(g_o.expect);
		for (char *save = NULL, *t = strtok_r(list, ",", &save);
		     t != NULL && nw < MAX_WRITERS;
		     t = strtok_r(NULL, ",", &save)) {
			ws[nw].w = strtoull(t, NULL, 10);
			const char *c = strchr(t, ':');
			ws[nw].expect =
			        c != NULL ? strtoll(c + 1, NULL, 10) : -1;
			ws[nw].next = 0;
			ws[nw].seen = false;
			nw++;
		}
		strata_free(list);
	}
	int status = 0;
	for (size_t si = 0; si < g_o.n_segments; si++) {
		const char *seg = g_o.segments[si];
		for (size_t i = 0; i < nw; i++) {
			ws[i].next = 0;
			ws[i].seen = false;
		}
		uint64_t off = 0;
		uint8_t *pend = NULL; /* partial event carried over */
		size_t plen = 0, pcap = 0;
		uint64_t events = 0;
		bool bad = false;
		for (;;) {
			Strata__V1__ReadRequest r =
			        STRATA__V1__READ_REQUEST__INIT;
			r.segment = (char *)seg;
			r.offset = off;
			r.max_bytes = 1u << 20;
			ProtobufCMessage *out = NULL;
			char err[STRATA_ERRMSG_SIZE];
			int rc = call_retry(SS_METHOD_READ, &r.base,
			                    &strata__v1__read_reply__descriptor,
			                    &out, err);
			if (rc != 0) {
				printf("error read segment=%s offset=%" PRIu64
				       " code=%s msg=%s\n",
				       seg, off, strata_error_name(rc), err);
				status = 1;
				bad = true;
				break;
			}
			Strata__V1__ReadReply *rr = (void *)out;
			size_t n = rr->data.len;
			if (plen + n > pcap) {
				pcap = (plen + n) * 2;
				uint8_t *np = strata_realloc(pend, pcap);
				if (np == NULL) {
					printf("error out of memory\n");
					strata_free(pend);
					return 1;
				}
				pend = np;
			}
			memcpy(pend + plen, rr->data.data, n);
			plen += n;
			off += n;
			bool tail = rr->at_tail || rr->end_of_segment || n == 0;
			rpc_pb_free(out);
			size_t pos = 0;
			while (!bad && plen - pos >= 4) {
				uint32_t l = (uint32_t)pend[pos] |
				             (uint32_t)pend[pos + 1] << 8 |
				             (uint32_t)pend[pos + 2] << 16 |
				             (uint32_t)pend[pos + 3] << 24;
				if (plen - pos - 4 < l) {
					break;
				}
				const uint8_t *p = pend + pos + 4;
				pos += 4 + (size_t)l;
				events++;
				if (l < HDR || memcmp(p, "sswriter", 8) != 0) {
					printf("error segment=%s event %" PRIu64
					       " is not an ss_tool event (%u "
					       "bytes)\n",
					       seg, events, l);
					bad = true;
					break;
				}
				uint64_t w = get_le64(p + 8);
				int64_t ev = (int64_t)get_le64(p + 16);
				for (uint32_t i = HDR; i < l && !bad; i++) {
					if (p[i] !=
					    (uint8_t)((uint64_t)ev + i)) {
						printf("error segment=%s "
						       "writer=%" PRIu64
						       " event=%" PRId64
						       " corrupt at byte %u\n",
						       seg, w, ev, i);
						bad = true;
					}
				}
				size_t k = 0;
				while (k < nw && ws[k].w != w) {
					k++;
				}
				if (k == nw && nw < MAX_WRITERS) {
					ws[nw].w = w;
					ws[nw].expect = -1;
					ws[nw].next = 0;
					nw++;
				}
				if (k < nw) {
					ws[k].seen = true;
					if (ev != ws[k].next) {
						printf("error segment=%s "
						       "writer=%" PRIu64
						       " event=%" PRId64
						       " expected=%" PRId64
						       " (%s)\n",
						       seg, w, ev, ws[k].next,
						       ev < ws[k].next
						               ? "duplicate or "
						                 "reordered"
						               : "gap: events "
						                 "lost");
						bad = true;
					}
					ws[k].next = ev + 1;
				}
			}
			memmove(pend, pend + pos, plen - pos);
			plen -= pos;
			if (bad || tail) {
				break;
			}
		}
		if (!bad && plen != 0) {
			printf("error segment=%s ends inside an event (%zu "
			       "bytes left)\n",
			       seg, plen);
			bad = true;
		}
		strata_free(pend);
		for (size_t i = 0; !bad && i < nw; i++) {
			/* Only writers that wrote here (or were named for a
			 * single segment) must be present. */
			if (!ws[i].seen && g_o.n_segments > 1) {
				continue;
			}
			if (ws[i].next - 1 < ws[i].expect) {
				printf("error segment=%s writer=%" PRIu64
				       " has events up to %" PRId64
				       " but %" PRId64
				       " were acknowledged: LOST\n",
				       seg, ws[i].w, ws[i].next - 1,
				       ws[i].expect);
				bad = true;
			} else {
				printf("writer segment=%s writer=%" PRIu64
				       " events=%" PRId64 " acked=%" PRId64
				       "\n",
				       seg, ws[i].w, ws[i].next, ws[i].expect);
			}
		}
		if (bad) {
			status = 1;
		} else {
			printf("verified segment=%s bytes=%" PRIu64
			       " events=%" PRIu64 "\n",
			       seg, off, events);
		}
	}
	return status;
}

/* ---------------------------------------------------------- bad input -- */

static int n_bad_fail;

/* Check that a call got the wanted code; print one line. */
static void expect_code(const char *what, int rc, int want, const char *err)
{
	bool ok = rc == want;
	printf("%s bad=%s code=%s want=%s msg=%s\n", ok ? "ok" : "FAIL", what,
	       strata_error_name(rc), strata_error_name(want), err);
	if (!ok) {
		n_bad_fail++;
	}
}

static int raw_call(uint32_t method, const uint8_t *body, size_t len, char *err)
{
	uint8_t *rep = NULL;
	size_t rlen = 0;
	int rc = rpc_call(g_cli, method, 0, body, len, &rep, &rlen, err);
	strata_free(rep);
	return rc;
}

static int pack_append(const char *seg, int64_t first, uint32_t count,
                       const uint8_t *data, size_t dlen, uint8_t **out,
                       size_t *olen)
{
	uint8_t id[16];
	writer_id(999, id);
	Strata__V1__AppendRequest r = STRATA__V1__APPEND_REQUEST__INIT;
	r.segment = (char *)seg;
	r.writer_id.data = id;
	r.writer_id.len = 16;
	r.first_event_number = first;
	r.event_count = count;
	r.data.data = (uint8_t *)data;
	r.data.len = dlen;
	r.expected_offset = -1;
	*out = strata_malloc(protobuf_c_message_get_packed_size(&r.base));
	if (*out == NULL) {
		return STRATA_ENOMEM;
	}
	*olen = protobuf_c_message_pack(&r.base, *out);
	return 0;
}

/* Send a garbage envelope over a raw req socket: the server must answer
 * STRATA_EPROTO, not hang up. */
static int raw_garbage(const char *url, char *err)
{
	nng_socket s;
	if (nng_req0_open(&s) != 0) {
		snprintf(err, STRATA_ERRMSG_SIZE, "nng_req0_open failed");
		return STRATA_EIO;
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
	int rc = STRATA_EIO;
	if (nng_dial(s, url, NULL, 0) == 0) {
		uint8_t junk[] = {0xff, 0xfe, 0xfd, 0x01, 0x02, 0x03, 0x99};
		void *rep = NULL;
		size_t rlen = 0;
		if (nng_send(s, junk, sizeof(junk), 0) == 0 &&
		    nng_recv(s, &rep, &rlen, NNG_FLAG_ALLOC) == 0) {
			struct rpc_reply_info ri;
			char why[STRATA_ERRMSG_SIZE];
			if (rpc_reply_decode(rep, rlen, &ri, why) == 0) {
				rc = ri.code;
				snprintf(err, STRATA_ERRMSG_SIZE, "%s",
				         ri.message);
				rpc_reply_release(&ri);
			}
			nng_free(rep, rlen);
		} else {
			snprintf(err, STRATA_ERRMSG_SIZE, "no reply");
		}
	}
	nng_close(s);
	return rc;
}

static int cmd_bad(void)
{
	char err[STRATA_ERRMSG_SIZE];
	const char *seg = g_o.segments[0]; /* an open segment */
	const char *sealed = g_o.n_segments > 1 ? g_o.segments[1] : NULL;
	uint8_t ev[4 + HDR];
	build_block(999, 0, 1, HDR, ev);
	uint8_t *p = NULL;
	size_t plen = 0;

	expect_code("garbage_envelope", raw_garbage(g_o.urls[0], err),
	            STRATA_EPROTO, err);
	uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
	expect_code("garbage_body",
	            raw_call(SS_METHOD_APPEND, junk, sizeof(junk), err),
	            STRATA_EPROTO, err);
	expect_code("unknown_method", raw_call(250, NULL, 0, err),
	            STRATA_ENOTSUP, err);
	pack_append("not a name", 0, 1, ev, sizeof(ev), &p, &plen);
	expect_code("bad_name", raw_call(SS_METHOD_APPEND, p, plen, err),
	            STRATA_EBADNAME, err);
	strata_free(p);
	pack_append("nosuch/stream/0.#epoch.0", 0, 1, ev, sizeof(ev), &p,
	            &plen);
	expect_code("unknown_segment_append",
	            raw_call(SS_METHOD_APPEND, p, plen, err), STRATA_ENOENT,
	            err);
	strata_free(p);
	Strata__V1__SegmentRequest sr = STRATA__V1__SEGMENT_REQUEST__INIT;
	sr.segment = "nosuch/stream/0.#epoch.0";
	uint8_t sbuf[128];
	size_t slen = protobuf_c_message_pack(&sr.base, sbuf);
	expect_code("unknown_segment_info",
	            raw_call(SS_METHOD_GET_INFO, sbuf, slen, err),
	            STRATA_ENOENT, err);
	/* Bad framing: length says 100, 28 bytes follow. */
	uint8_t frame[4 + HDR];
	memcpy(frame, ev, sizeof(frame));
	frame[0] = 100;
	pack_append(seg, 0, 1, frame, sizeof(frame), &p, &plen);
	expect_code("bad_framing", raw_call(SS_METHOD_APPEND, p, plen, err),
	            STRATA_EPROTO, err);
	strata_free(p);
	/* Event count disagreeing with the frames. */
	pack_append(seg, 0, 3, ev, sizeof(ev), &p, &plen);
	expect_code("bad_event_count", raw_call(SS_METHOD_APPEND, p, plen, err),
	            STRATA_EPROTO, err);
	strata_free(p);
	/* A block over limits.max_append (the caller sets it small). */
	size_t big = (size_t)g_o.event_size;
	uint8_t *bigdata = strata_calloc(1, big);
	pack_append(seg, 0, 1, bigdata, big, &p, &plen);
	expect_code("oversize_block", raw_call(SS_METHOD_APPEND, p, plen, err),
	            STRATA_ETOOBIG, err);
	strata_free(p);
	strata_free(bigdata);
	/* A writer new to a segment must start at event 0. */
	pack_append(seg, 5, 1, ev, sizeof(ev), &p, &plen);
	expect_code("new_writer_not_at_zero",
	            raw_call(SS_METHOD_APPEND, p, plen, err),
	            STRATA_EBADEVENTNUM, err);
	strata_free(p);
	/* Out-of-order event numbers: 0 is accepted, 9 is a gap. */
	pack_append(seg, 0, 1, ev, sizeof(ev), &p, &plen);
	int rc = raw_call(SS_METHOD_APPEND, p, plen, err);
	strata_free(p);
	expect_code("first_event_zero", rc, 0, rc == 0 ? "" : err);
	pack_append(seg, 9, 1, ev, sizeof(ev), &p, &plen);
	rc = raw_call(SS_METHOD_APPEND, p, plen, err);
	expect_code("event_number_gap", rc, STRATA_EBADEVENTNUM, err);
	strata_free(p);
	if (sealed != NULL) {
		pack_append(sealed, 0, 1, ev, sizeof(ev), &p, &plen);
		expect_code("append_sealed",
		            raw_call(SS_METHOD_APPEND, p, plen, err),
		            STRATA_ESEALED, err);
		strata_free(p);
	}
	/* After all that the same client still works. */
	Strata__V1__SegmentRequest ok = STRATA__V1__SEGMENT_REQUEST__INIT;
	ok.segment = (char *)seg;
	ProtobufCMessage *out = NULL;
	rc = call_pb(SS_METHOD_GET_INFO, &ok.base,
	             &strata__v1__segment_info_reply__descriptor, &out, err);
	rpc_pb_free(out);
	expect_code("still_serving", rc, 0, rc == 0 ? "" : err);
	printf("bad_input_failures=%d\n", n_bad_fail);
	return n_bad_fail == 0 ? 0 : 1;
}

/* A message larger than limits.max_message: NNG drops that connection;
 * the client reconnects and the store serves it again. */
static int cmd_oversize_message(void)
{
	char err[STRATA_ERRMSG_SIZE];
	size_t big = (size_t)g_o.event_size;
	uint8_t *data = strata_calloc(1, big);
	uint8_t *p = NULL;
	size_t plen = 0;
	pack_append(g_o.segments[0], 0, 1, data, big, &p, &plen);
	strata_free(data);
	int rc = raw_call(SS_METHOD_APPEND, p, plen, err);
	strata_free(p);
	printf("oversize_message code=%s msg=%s\n", strata_error_name(rc), err);
	Strata__V1__SegmentRequest ok = STRATA__V1__SEGMENT_REQUEST__INIT;
	ok.segment = (char *)g_o.segments[0];
	ProtobufCMessage *out = NULL;
	rc = call_retry(SS_METHOD_GET_INFO, &ok.base,
	                &strata__v1__segment_info_reply__descriptor, &out, err);
	rpc_pb_free(out);
	printf("%s bad=after_oversize_message code=%s msg=%s\n",
	       rc == 0 ? "ok" : "FAIL", strata_error_name(rc),
	       rc == 0 ? "" : err);
	return rc == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr,
	        "usage: ss_tool CMD --url URL[,URL...] --segment S[,S...] "
	        "[options]\n"
	        "  CMD: create | info | seal | append | verify | bad | "
	        "oversize\n"
	        "  --writers N --writer0 W --events N --event-size B "
	        "--batch E\n"
	        "  --window W --deadline-s S --create --rate R "
	        "--expect W:LAST,...\n");
}

static void split(char *s, const char **out, size_t *n, size_t max)
{
	for (char *save = NULL, *t = strtok_r(s, ",", &save);
	     t != NULL && *n < max; t = strtok_r(NULL, ",", &save)) {
		out[(*n)++] = t;
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage();
		return 2;
	}
	strata_process_init(NULL);
	log_set_level(STRATA_LOG_WARN);
	const char *cmd = argv[1];
	struct opts *o = &g_o;
	o->writers = 1;
	o->events = 1000;
	o->event_size = 100;
	o->batch = 10;
	o->window = 8;
	o->deadline_s = 60;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "";
		if (strcmp(a, "--create") == 0) {
			o->create = true;
			continue;
		}
		i++;
		if (strcmp(a, "--url") == 0) {
			strata_free(g_url_list);
			o->n_urls = 0;
			g_url_list = strata_strdup(v);
			split(g_url_list, o->urls, &o->n_urls,
			      RPC_MAX_ENDPOINTS);
		} else if (strcmp(a, "--segment") == 0) {
			strata_free(g_seg_list);
			o->n_segments = 0;
			g_seg_list = strata_strdup(v);
			split(g_seg_list, o->segments, &o->n_segments,
			      MAX_WRITERS);
		} else if (strcmp(a, "--writers") == 0) {
			o->writers = (unsigned)atoi(v);
		} else if (strcmp(a, "--writer0") == 0) {
			o->writer0 = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--events") == 0) {
			o->events = strtoll(v, NULL, 10);
		} else if (strcmp(a, "--event-size") == 0) {
			o->event_size = (unsigned)atoi(v);
		} else if (strcmp(a, "--batch") == 0) {
			o->batch = (unsigned)atoi(v);
		} else if (strcmp(a, "--window") == 0) {
			o->window = (unsigned)atoi(v);
		} else if (strcmp(a, "--deadline-s") == 0) {
			o->deadline_s = (unsigned)atoi(v);
		} else if (strcmp(a, "--rate") == 0) {
			o->rate = (unsigned)atoi(v);
		} else if (strcmp(a, "--expect") == 0) {
			o->expect = v;
		} else {
			usage();
			return 2;
		}
	}
	if (o->n_urls == 0 || o->n_segments == 0 || o->writers == 0 ||
	    o->writers > MAX_WRITERS || o->window == 0 ||
	    o->window > MAX_WINDOW || o->batch == 0 ||
	    (o->event_size < HDR && strcmp(cmd, "bad") != 0 &&
	     strcmp(cmd, "oversize") != 0)) {
		usage();
		strata_free(g_url_list);
		strata_free(g_seg_list);
		return 2;
	}
	struct rpc_client_opts co;
	rpc_client_opts_default(&co);
	co.timeout_ms = 5000;
	co.retries = 2;
	co.max_redirects = 4;
	co.max_msg_bytes = 64u * 1024 * 1024;
	char err[STRATA_ERRMSG_SIZE];
	if (rpc_client_open(&g_cli, o->urls, o->n_urls, &co, err) != 0) {
		fprintf(stderr, "ss_tool: %s\n", err);
		return 2;
	}
	int rc;
	if (strcmp(cmd, "create") == 0) {
		rc = cmd_create();
	} else if (strcmp(cmd, "info") == 0) {
		rc = cmd_info(SS_METHOD_GET_INFO);
	} else if (strcmp(cmd, "seal") == 0) {
		rc = cmd_info(SS_METHOD_SEAL);
	} else if (strcmp(cmd, "append") == 0) {
		rc = cmd_append();
	} else if (strcmp(cmd, "verify") == 0) {
		rc = cmd_verify();
	} else if (strcmp(cmd, "bad") == 0) {
		rc = cmd_bad();
	} else if (strcmp(cmd, "oversize") == 0) {
		rc = cmd_oversize_message();
	} else {
		usage();
		rc = 2;
	}
	fflush(stdout);
	rpc_client_close(g_cli);
	strata_free(g_url_list);
	strata_free(g_seg_list);
	return rc;
}
