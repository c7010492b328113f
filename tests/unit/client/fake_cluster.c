/* Test helper: the fake controller + segment store (see fake_cluster.h). */
#include "fake_cluster.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "common/alloc.h"
#include "common/segname.h"
#include "strata/error.h"
#include "strata/v1/controller.pb-c.h"
#include "strata/v1/segmentstore.pb-c.h"

#define FAKE_MAX_SEGS 64
#define FAKE_MAX_WRITERS 16

struct fake_seg {
	uint64_t id;
	double low;
	double high;
	char name[128];
	bool sealed;
	bool current;
	uint64_t start;
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t n_writers;
	uint8_t wid[FAKE_MAX_WRITERS][16];
	int64_t last[FAKE_MAX_WRITERS];
	uint64_t preds[2];
	size_t n_preds;
	bool internal; /* a reader group's state segment (not in sc/st) */
	bool gone;     /* deleted (truncation): stores answer ENOENT */
};

#define FAKE_MAX_TXNS 16

/* A transaction (controller side) whose shadows are fake segments. */
struct fake_txn {
	uint64_t id;
	uint32_t epoch;
	int state; /* Strata__V1__TxnState */
};

struct fake_call {
	struct fake_call *next;
	bool to_store;
	uint32_t method;
	uint8_t *req;
	size_t len;
	rpc_done_fn cb;
	void *arg;
};

struct fake_cluster {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t worker;
	bool closed;
	bool stop;
	struct fake_call *head;
	struct fake_call *tail;
	unsigned busy; /* calls being served */
	size_t n;
	struct fake_seg segs[FAKE_MAX_SEGS];
	uint32_t epoch;
	uint32_t next_number;
	unsigned fail_n;
	int fail_code;
	int refuse_code; /* fake_refuse_in_order */
	unsigned lose_n;
	uint64_t read_clip;  /* reads end at multiples of it; 0 = none */
	unsigned beyond;     /* reads past a segment's length (ERANGE) */
	unsigned stale_succ; /* successor queries still to answer "open" */
	unsigned stale_cur;  /* current-segment queries still to answer
	                        from before the last scale */
	unsigned list_calls; /* CTL_LIST_STREAMS served */
	unsigned appends;
	unsigned dups;
	struct fake_txn txns[FAKE_MAX_TXNS];
	size_t n_txns;
	unsigned txn_pings;
	unsigned busy_creates; /* CTL_CREATE_TXN calls to refuse (EBUSY) */
};

static struct fake_seg *seg_by_name(struct fake_cluster *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++) {
		if (!f->segs[i].gone && strcmp(f->segs[i].name, name) == 0) {
			return &f->segs[i];
		}
	}
	return NULL;
}

static struct fake_seg *seg_by_id(struct fake_cluster *f, uint64_t id)
{
	for (size_t i = 0; i < f->n; i++) {
		if (f->segs[i].id == id && !f->segs[i].internal) {
			return &f->segs[i];
		}
	}
	return NULL;
}

static struct fake_seg *add_seg(struct fake_cluster *f, uint32_t epoch,
                                double low, double high)
{
	struct fake_seg *s = &f->segs[f->n++];
	memset(s, 0, sizeof(*s));
	s->id = SEGNAME_ID(epoch, f->next_number++);
	s->low = low;
	s->high = high;
	s->current = true;
	segname_format(s->name, sizeof(s->name), "sc", "st", s->id);
	return s;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *b = strata_malloc(*len > 0 ? *len : 1);
	protobuf_c_message_pack(m, b);
	return b;
}

static int cmp_low(const void *a, const void *b)
{
	const struct fake_seg *x = *(struct fake_seg *const *)a;
	const struct fake_seg *y = *(struct fake_seg *const *)b;
	return x->low < y->low ? -1 : x->low > y->low ? 1 : 0;
}

/* Reader groups: create/get/delete; a group is its state segment
 * sc/_RG<name>/0.#epoch.0 (id 0, internal), created at once. */
static int serve_rg(struct fake_cluster *f, struct fake_call *c, uint8_t **out,
                    size_t *out_len, char *msg)
{
	char name[96] = "";
	char stream[100];
	if (c->method ==
	    STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_READER_GROUP) {
		Strata__V1__CreateReaderGroupRequest *q =
		        strata__v1__create_reader_group_request__unpack(
		                NULL, c->len, c->req);
		if (q != NULL && q->config != NULL) {
			snprintf(name, sizeof(name), "%s", q->config->name);
		}
		strata__v1__create_reader_group_request__free_unpacked(q, NULL);
	} else {
		/* Get and Delete requests share the layout (scope, name). */
		Strata__V1__GetReaderGroupRequest *q =
		        strata__v1__get_reader_group_request__unpack(
		                NULL, c->len, c->req);
		if (q != NULL) {
			snprintf(name, sizeof(name), "%s", q->name);
		}
		strata__v1__get_reader_group_request__free_unpacked(q, NULL);
	}
	snprintf(stream, sizeof(stream), "_RG%s", name);
	char seg[sizeof(((struct fake_seg *)0)->name)];
	segname_format(seg, sizeof(seg), "sc", stream, 0);
	struct fake_seg *s = seg_by_name(f, seg);
	switch (c->method) {
	case STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_READER_GROUP: {
		if (s != NULL) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "group exists");
			return STRATA_EEXIST;
		}
		if (f->n == FAKE_MAX_SEGS) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: full");
			return STRATA_ENOSPC;
		}
		s = &f->segs[f->n++];
		memset(s, 0, sizeof(*s));
		s->internal = true;
		memcpy(s->name, seg, sizeof(s->name));
		Strata__V1__ControllerReply rep =
		        STRATA__V1__CONTROLLER_REPLY__INIT;
		rep.done = true;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_READER_GROUP: {
		if (s == NULL) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "no such group");
			return STRATA_ENOENT;
		}
		Strata__V1__ReaderGroupConfig rep =
		        STRATA__V1__READER_GROUP_CONFIG__INIT;
		rep.name = name;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	default: {
		if (s == NULL) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "no such group");
			return STRATA_ENOENT;
		}
		s->name[0] = '\0'; /* gone: never matches a name again */
		Strata__V1__ControllerReply rep =
		        STRATA__V1__CONTROLLER_REPLY__INIT;
		rep.done = true;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	}
}

static struct fake_txn *txn_find(struct fake_cluster *f, uint64_t id)
{
	for (size_t i = 0; i < f->n_txns; i++) {
		if (f->txns[i].id == id) {
			return &f->txns[i];
		}
	}
	return NULL;
}

/* End t's shadows: merged into their parents (commit) or dropped. */
static void txn_finish(struct fake_cluster *f, struct fake_txn *t, bool commit)
{
	size_t n = f->n;
	for (size_t i = 0; i < n; i++) {
		struct fake_seg *shadow = &f->segs[i];
		struct segname_parts parts;
		if (shadow->name[0] == '\0' ||
		    segname_parse(shadow->name, &parts, NULL) != 0 ||
		    !parts.is_txn || parts.txn_id != t->id) {
			continue;
		}
		struct fake_seg *parent = seg_by_id(f, parts.segment_id);
		if (commit && parent != NULL && shadow->len > 0) {
			if (parent->len + shadow->len > parent->cap) {
				parent->cap = (parent->len + shadow->len) * 2;
				parent->data =
				        realloc(parent->data, parent->cap);
			}
			memcpy(parent->data + parent->len, shadow->data,
			       shadow->len);
			parent->len += shadow->len;
		}
		shadow->name[0] = '\0'; /* gone */
	}
	t->state = commit ? STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED
	                  : STRATA__V1__TXN_STATE__TXN_STATE_ABORTED;
}

/* Transactions: create (shadows of the current segments, at once), get,
 * ping, commit (merge), abort (drop). */
static int serve_txn(struct fake_cluster *f, struct fake_call *c, uint8_t **out,
                     size_t *out_len, char *msg)
{
	Strata__V1__ControllerReply rep = STRATA__V1__CONTROLLER_REPLY__INIT;
	rep.done = true;
	if (c->method == STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_TXN) {
		Strata__V1__CreateTxnRequest *q =
		        strata__v1__create_txn_request__unpack(NULL, c->len,
		                                               c->req);
		bool ok = q != NULL && strcmp(q->stream, "st") == 0;
		strata__v1__create_txn_request__free_unpacked(q, NULL);
		if (!ok) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "no such stream");
			return STRATA_ENOENT;
		}
		if (f->busy_creates > 0) {
			f->busy_creates--;
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: scaling");
			return STRATA_EBUSY;
		}
		struct fake_txn *t = &f->txns[f->n_txns++];
		t->id = f->n_txns;
		t->epoch = f->epoch;
		t->state = STRATA__V1__TXN_STATE__TXN_STATE_OPEN;
		size_t n = f->n;
		for (size_t i = 0; i < n; i++) {
			if (!f->segs[i].current || f->segs[i].internal) {
				continue;
			}
			struct fake_seg *sh = &f->segs[f->n++];
			memset(sh, 0, sizeof(*sh));
			sh->internal = true;
			segname_format_txn(sh->name, sizeof(sh->name),
			                   f->segs[i].name, t->id);
		}
		rep.txn_id = t->id;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	uint64_t id = 0;
	if (c->method == STRATA__V1__CONTROLLER_METHOD__CTL_PING_TXN) {
		Strata__V1__PingTxnRequest *q =
		        strata__v1__ping_txn_request__unpack(NULL, c->len,
		                                             c->req);
		id = q != NULL ? q->txn_id : 0;
		strata__v1__ping_txn_request__free_unpacked(q, NULL);
	} else if (c->method == STRATA__V1__CONTROLLER_METHOD__CTL_GET_TXN) {
		Strata__V1__GetTxnRequest *q =
		        strata__v1__get_txn_request__unpack(NULL, c->len,
		                                            c->req);
		id = q != NULL ? q->txn_id : 0;
		strata__v1__get_txn_request__free_unpacked(q, NULL);
	} else {
		Strata__V1__EndTxnRequest *q =
		        strata__v1__end_txn_request__unpack(NULL, c->len,
		                                            c->req);
		id = q != NULL ? q->txn_id : 0;
		strata__v1__end_txn_request__free_unpacked(q, NULL);
	}
	struct fake_txn *t = txn_find(f, id);
	if (t == NULL) {
		snprintf(msg, STRATA_ERRMSG_SIZE, "no such transaction");
		return STRATA_ENOENT;
	}
	bool open = t->state == STRATA__V1__TXN_STATE__TXN_STATE_OPEN;
	switch (c->method) {
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_TXN: {
		Strata__V1__Txn r = STRATA__V1__TXN__INIT;
		r.id = t->id;
		r.state = t->state;
		r.epoch = t->epoch;
		r.segments_created = true;
		*out = pack(&r.base, out_len);
		return 0;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_PING_TXN:
		f->txn_pings++;
		if (!open) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "not open");
			return STRATA_ECONFLICT;
		}
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_COMMIT_TXN:
		if (t->state == STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED) {
			break;
		}
		if (!open) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: aborted");
			return STRATA_ECONFLICT;
		}
		if (t->epoch != f->epoch) {
			/* As a controller that cannot roll it (no segment
			 * number left): refused for good. */
			snprintf(msg, STRATA_ERRMSG_SIZE,
			         "fake: scaled, cannot roll");
			return STRATA_ENOSPC;
		}
		txn_finish(f, t, true);
		break;
	default: /* abort */
		if (t->state == STRATA__V1__TXN_STATE__TXN_STATE_ABORTED) {
			break;
		}
		if (!open) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: committed");
			return STRATA_ECONFLICT;
		}
		txn_finish(f, t, false);
		break;
	}
	rep.txn_id = t->id;
	*out = pack(&rep.base, out_len);
	return 0;
}

/* Serve one controller call; returns the code, fills *out. */
static int serve_ctl(struct fake_cluster *f, struct fake_call *c, uint8_t **out,
                     size_t *out_len, char *msg)
{
	switch (c->method) {
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS: {
		Strata__V1__GetSegmentsRequest *q =
		        strata__v1__get_segments_request__unpack(NULL, c->len,
		                                                 c->req);
		bool ok = q != NULL && strcmp(q->scope, "sc") == 0 &&
		          strcmp(q->stream, "st") == 0;
		strata__v1__get_segments_request__free_unpacked(q, NULL);
		if (!ok) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "no such stream");
			return STRATA_ENOENT;
		}
		struct fake_seg *cur[FAKE_MAX_SEGS];
		size_t n = 0;
		bool all_sealed = true;
		for (size_t i = 0; i < f->n; i++) {
			struct fake_seg *g = &f->segs[i];
			if (!g->current || g->internal) {
				continue;
			}
			all_sealed = all_sealed && g->sealed;
			if (f->stale_cur == 0 || g->n_preds == 0 ||
			    (g->id >> 32) != f->epoch) {
				cur[n++] = g;
				continue;
			}
			/* A replica that has not applied the scale: the
			 * predecessors are still current (once each). */
			for (size_t k = 0; k < g->n_preds; k++) {
				struct fake_seg *p = seg_by_id(f, g->preds[k]);
				bool have = false;
				for (size_t j = 0; j < n; j++) {
					have = have || cur[j] == p;
				}
				if (!have) {
					cur[n++] = p;
				}
			}
		}
		if (f->stale_cur > 0) {
			f->stale_cur--;
		}
		qsort(cur, n, sizeof(*cur), cmp_low);
		Strata__V1__SegmentsReply rep =
		        STRATA__V1__SEGMENTS_REPLY__INIT;
		Strata__V1__SegmentInfo infos[FAKE_MAX_SEGS];
		Strata__V1__SegmentInfo *ip[FAKE_MAX_SEGS];
		Strata__V1__Segment segs[FAKE_MAX_SEGS];
		for (size_t i = 0; i < n; i++) {
			strata__v1__segment_info__init(&infos[i]);
			strata__v1__segment__init(&segs[i]);
			segs[i].id = cur[i]->id;
			segs[i].low = cur[i]->low;
			segs[i].high = cur[i]->high;
			infos[i].segment = &segs[i];
			infos[i].qualified_name = cur[i]->name;
			ip[i] = &infos[i];
		}
		rep.n_segments = n;
		rep.segments = ip;
		rep.stream_sealed = n > 0 && all_sealed;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENTS_AT_CUT: {
		Strata__V1__GetSegmentsRequest *q =
		        strata__v1__get_segments_request__unpack(NULL, c->len,
		                                                 c->req);
		struct fake_seg *sel[FAKE_MAX_SEGS];
		int64_t offs[FAKE_MAX_SEGS];
		size_t n = 0;
		int rc = 0;
		if (q->cut == NULL || q->cut->n_positions == 0) {
			for (size_t i = 0; i < f->n; i++) {
				if ((f->segs[i].id >> 32) == 0 &&
				    !f->segs[i].internal) {
					offs[n] = 0;
					sel[n++] = &f->segs[i];
				}
			}
		} else {
			for (size_t i = 0; i < q->cut->n_positions; i++) {
				struct fake_seg *g = seg_by_id(
				        f, q->cut->positions[i]->segment_id);
				if (g == NULL) {
					rc = STRATA_EINVAL;
					snprintf(
					        msg, STRATA_ERRMSG_SIZE,
					        "cut names an unknown segment");
					break;
				}
				offs[n] = q->cut->positions[i]->offset;
				sel[n++] = g;
			}
		}
		strata__v1__get_segments_request__free_unpacked(q, NULL);
		if (rc != 0) {
			return rc;
		}
		Strata__V1__SegmentsReply rep =
		        STRATA__V1__SEGMENTS_REPLY__INIT;
		Strata__V1__SegmentInfo infos[FAKE_MAX_SEGS];
		Strata__V1__SegmentInfo *ip[FAKE_MAX_SEGS];
		Strata__V1__Segment segs[FAKE_MAX_SEGS];
		for (size_t i = 0; i < n; i++) {
			strata__v1__segment_info__init(&infos[i]);
			strata__v1__segment__init(&segs[i]);
			segs[i].id = sel[i]->id;
			segs[i].low = sel[i]->low;
			segs[i].high = sel[i]->high;
			infos[i].segment = &segs[i];
			infos[i].offset = offs[i];
			infos[i].qualified_name = sel[i]->name;
			ip[i] = &infos[i];
		}
		rep.n_segments = n;
		rep.segments = ip;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SUCCESSORS: {
		Strata__V1__GetSuccessorsRequest *q =
		        strata__v1__get_successors_request__unpack(NULL, c->len,
		                                                   c->req);
		uint64_t id = q->segment_id;
		strata__v1__get_successors_request__free_unpacked(q, NULL);
		Strata__V1__SuccessorsReply rep =
		        STRATA__V1__SUCCESSORS_REPLY__INIT;
		const struct fake_seg *of = seg_by_id(f, id);
		rep.open = of != NULL && of->current && !of->sealed;
		if (f->stale_succ > 0) {
			/* A replica that has not applied the scale. */
			f->stale_succ--;
			rep.open = true;
			*out = pack(&rep.base, out_len);
			return 0;
		}
		Strata__V1__Successor succ[FAKE_MAX_SEGS];
		Strata__V1__Successor *sp[FAKE_MAX_SEGS];
		Strata__V1__Segment segs[FAKE_MAX_SEGS];
		size_t n = 0;
		for (size_t i = 0; i < f->n; i++) {
			struct fake_seg *g = &f->segs[i];
			for (size_t j = 0; j < g->n_preds; j++) {
				if (g->preds[j] != id) {
					continue;
				}
				strata__v1__successor__init(&succ[n]);
				strata__v1__segment__init(&segs[n]);
				segs[n].id = g->id;
				segs[n].low = g->low;
				segs[n].high = g->high;
				succ[n].segment = &segs[n];
				succ[n].n_predecessors = g->n_preds;
				succ[n].predecessors = g->preds;
				sp[n] = &succ[n];
				n++;
			}
		}
		rep.n_successors = n;
		rep.successors = sp;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENT_ENDPOINT: {
		Strata__V1__SegmentEndpointReply rep =
		        STRATA__V1__SEGMENT_ENDPOINT_REPLY__INIT;
		char *urls[1] = {(char *)"tcp://fake:1"};
		rep.client_url = urls[0];
		rep.leader_known = true;
		rep.n_replica_urls = 1;
		rep.replica_urls = urls;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_READER_GROUP:
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_READER_GROUP:
	case STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_READER_GROUP:
		return serve_rg(f, c, out, out_len, msg);
	case STRATA__V1__CONTROLLER_METHOD__CTL_LIST_STREAMS: {
		/* Ten streams s00..s09, three a page to a paging client (as
		 * a controller whose names fill page_bytes), else all. */
		Strata__V1__ListStreamsRequest *q =
		        strata__v1__list_streams_request__unpack(NULL, c->len,
		                                                 c->req);
		if (q == NULL) {
			return STRATA_EPROTO;
		}
		char names[10][4];
		char *np[10];
		Strata__V1__ListStreamsReply rep =
		        STRATA__V1__LIST_STREAMS_REPLY__INIT;
		rep.streams = np;
		for (int i = 0; i < 10; i++) {
			snprintf(names[i], sizeof(names[i]), "s%02d", i);
			if (strcmp(names[i], q->start_after) <= 0) {
				continue;
			}
			if (q->page_bytes > 0 && rep.n_streams == 3) {
				rep.more = true;
				break;
			}
			np[rep.n_streams++] = names[i];
		}
		f->list_calls++;
		strata__v1__list_streams_request__free_unpacked(q, NULL);
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_STREAM: {
		Strata__V1__StreamInfo rep = STRATA__V1__STREAM_INFO__INIT;
		rep.scope = (char *)"sc";
		rep.stream = (char *)"st";
		rep.current_epoch = f->epoch;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_TXN:
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_TXN:
	case STRATA__V1__CONTROLLER_METHOD__CTL_PING_TXN:
	case STRATA__V1__CONTROLLER_METHOD__CTL_COMMIT_TXN:
	case STRATA__V1__CONTROLLER_METHOD__CTL_ABORT_TXN:
		return serve_txn(f, c, out, out_len, msg);
	default:
		snprintf(msg, STRATA_ERRMSG_SIZE, "fake: method %u unknown",
		         c->method);
		return STRATA_ENOTSUP;
	}
}

static int writer_slot(struct fake_seg *s, const uint8_t *wid)
{
	for (size_t i = 0; i < s->n_writers; i++) {
		if (memcmp(s->wid[i], wid, 16) == 0) {
			return (int)i;
		}
	}
	if (s->n_writers == FAKE_MAX_WRITERS) {
		return -1;
	}
	memcpy(s->wid[s->n_writers], wid, 16);
	s->last[s->n_writers] = -1;
	return (int)s->n_writers++;
}

static int serve_store(struct fake_cluster *f, struct fake_call *c,
                       uint8_t **out, size_t *out_len, char *msg)
{
	switch (c->method) {
	case CT_SS_SETUP_APPEND: {
		Strata__V1__SetupAppendRequest *q =
		        strata__v1__setup_append_request__unpack(NULL, c->len,
		                                                 c->req);
		struct fake_seg *s =
		        q != NULL ? seg_by_name(f, q->segment) : NULL;
		if (s == NULL || q->writer_id.len != 16) {
			strata__v1__setup_append_request__free_unpacked(q,
			                                                NULL);
			snprintf(msg, STRATA_ERRMSG_SIZE, "no such segment");
			return STRATA_ENOENT;
		}
		int w = writer_slot(s, q->writer_id.data);
		strata__v1__setup_append_request__free_unpacked(q, NULL);
		Strata__V1__SetupAppendReply rep =
		        STRATA__V1__SETUP_APPEND_REPLY__INIT;
		rep.last_event_number = w >= 0 ? s->last[w] : -1;
		rep.length = s->len;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case CT_SS_APPEND: {
		Strata__V1__AppendRequest *q =
		        strata__v1__append_request__unpack(NULL, c->len,
		                                           c->req);
		struct fake_seg *s =
		        q != NULL ? seg_by_name(f, q->segment) : NULL;
		int rc = 0;
		Strata__V1__AppendReply rep = STRATA__V1__APPEND_REPLY__INIT;
		f->appends++;
		if (s == NULL) {
			rc = STRATA_ENOENT;
			goto done;
		}
		if (f->fail_n > 0) {
			f->fail_n--;
			rc = f->fail_code;
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: injected %s",
			         strata_error_name(rc));
			goto done;
		}
		int w = writer_slot(s, q->writer_id.data);
		int64_t last = s->last[w];
		int64_t end =
		        q->first_event_number + (int64_t)q->event_count - 1;
		if (end <= last) {
			f->dups++;
			rep.duplicate = true;
			rep.last_event_number = last;
			rep.offset = s->len;
			rep.length = s->len;
		} else if (q->first_event_number == last + 1 &&
		           f->refuse_code != 0) {
			rc = f->refuse_code;
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: refused %s",
			         strata_error_name(rc));
		} else if (q->first_event_number != last + 1) {
			rc = STRATA_EBADEVENTNUM;
			snprintf(msg, STRATA_ERRMSG_SIZE,
			         "fake: event %lld after %lld",
			         (long long)q->first_event_number,
			         (long long)last);
		} else if (s->sealed) {
			rc = STRATA_ESEALED;
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: sealed");
		} else if (q->expected_offset >= 0 &&
		           (uint64_t)q->expected_offset != s->len) {
			rc = STRATA_EBADOFFSET;
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: length %zu",
			         s->len);
			rep.offset = s->len;
			rep.length = s->len;
			rep.last_event_number = last;
			*out = pack(&rep.base, out_len);
		} else {
			if (s->len + q->data.len > s->cap) {
				s->cap = (s->len + q->data.len) * 2;
				s->data = realloc(s->data, s->cap);
			}
			memcpy(s->data + s->len, q->data.data, q->data.len);
			rep.offset = s->len;
			s->len += q->data.len;
			s->last[w] = end;
			rep.last_event_number = end;
			rep.length = s->len;
			if (f->lose_n > 0) {
				f->lose_n--;
				rc = STRATA_ETIMEDOUT;
				snprintf(msg, STRATA_ERRMSG_SIZE,
				         "fake: ack lost");
				goto done;
			}
		}
	done:
		strata__v1__append_request__free_unpacked(q, NULL);
		if (rc == 0) {
			*out = pack(&rep.base, out_len);
		}
		return rc;
	}
	case CT_SS_READ: {
		Strata__V1__ReadRequest *q =
		        strata__v1__read_request__unpack(NULL, c->len, c->req);
		struct fake_seg *s = seg_by_name(f, q->segment);
		Strata__V1__ReadReply rep = STRATA__V1__READ_REPLY__INIT;
		int rc = 0;
		if (s == NULL) {
			rc = STRATA_ENOENT;
		} else if (q->offset < s->start) {
			rc = STRATA_ETRUNCATED;
			rep.start_offset = s->start;
			*out = pack(&rep.base, out_len);
		} else if (q->offset > s->len) {
			rc = STRATA_ERANGE;
			f->beyond++;
		} else {
			size_t n = s->len - q->offset;
			if (n > q->max_bytes) {
				n = q->max_bytes;
			}
			uint64_t clip = f->read_clip;
			if (clip != 0 && n > clip - q->offset % clip) {
				n = clip - q->offset % clip;
			}
			rep.offset = q->offset;
			rep.data.data = s->data + q->offset;
			rep.data.len = n;
			rep.at_tail = q->offset + n == s->len;
			rep.end_of_segment = rep.at_tail && s->sealed;
			rep.start_offset = s->start;
			rep.length = s->len;
			*out = pack(&rep.base, out_len);
		}
		if (rc != 0 && rc != STRATA_ETRUNCATED) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "fake: read %s",
			         strata_error_name(rc));
		}
		strata__v1__read_request__free_unpacked(q, NULL);
		return rc;
	}
	case CT_SS_GET_INFO:
	case CT_SS_SEAL: {
		Strata__V1__SegmentRequest *q =
		        strata__v1__segment_request__unpack(NULL, c->len,
		                                            c->req);
		struct fake_seg *s = seg_by_name(f, q->segment);
		strata__v1__segment_request__free_unpacked(q, NULL);
		if (s == NULL) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "no such segment");
			return STRATA_ENOENT;
		}
		if (c->method == CT_SS_SEAL) {
			s->sealed = true;
		}
		Strata__V1__SegmentInfoReply rep =
		        STRATA__V1__SEGMENT_INFO_REPLY__INIT;
		rep.start_offset = s->start;
		rep.length = s->len;
		rep.sealed = s->sealed;
		*out = pack(&rep.base, out_len);
		return 0;
	}
	case CT_SS_TRUNCATE: {
		Strata__V1__TruncateRequest *q =
		        strata__v1__truncate_request__unpack(NULL, c->len,
		                                             c->req);
		struct fake_seg *s = seg_by_name(f, q->segment);
		int rc = 0;
		if (s == NULL) {
			rc = STRATA_ENOENT;
		} else if (q->offset > s->len) {
			rc = STRATA_ERANGE;
		} else if (q->offset > s->start) {
			s->start = q->offset;
		}
		strata__v1__truncate_request__free_unpacked(q, NULL);
		return rc;
	}
	default:
		snprintf(msg, STRATA_ERRMSG_SIZE, "fake: method %u unknown",
		         c->method);
		return STRATA_ENOTSUP;
	}
}

/* A reply body as the RPC layer hands it on: inside the received
 * message, after the envelope's first bytes (out is taken). */
static struct rpc_body as_received(uint8_t *out, size_t len)
{
	struct rpc_body b = {0};
	if (len == 0) {
		strata_free(out);
		return b;
	}
	nng_msg *m;
	static const uint8_t head[] = {0x0a, 0x00, 0x12};
	if (nng_msg_alloc(&m, 0) != 0 ||
	    nng_msg_append(m, head, sizeof(head)) != 0 ||
	    nng_msg_append(m, out, len) != 0) {
		abort();
	}
	strata_free(out);
	b.data = (uint8_t *)nng_msg_body(m) + sizeof(head);
	b.len = len;
	b.msg = m;
	return b;
}

static void *worker_main(void *arg)
{
	struct fake_cluster *f = arg;
	pthread_mutex_lock(&f->mu);
	for (;;) {
		struct fake_call *c = f->head;
		if (c == NULL) {
			if (f->stop) {
				break;
			}
			pthread_cond_wait(&f->cv, &f->mu);
			continue;
		}
		f->head = c->next;
		if (f->head == NULL) {
			f->tail = NULL;
		}
		char msg[STRATA_ERRMSG_SIZE] = "";
		uint8_t *out = NULL;
		size_t out_len = 0;
		int rc;
		if (f->closed) {
			rc = STRATA_ECLOSED;
			snprintf(msg, sizeof(msg), "closed");
		} else if (c->to_store) {
			rc = serve_store(f, c, &out, &out_len, msg);
		} else {
			rc = serve_ctl(f, c, &out, &out_len, msg);
		}
		f->busy++;
		pthread_mutex_unlock(&f->mu);
		struct rpc_body body = as_received(out, out_len);
		c->cb(c->arg, rc, msg, &body);
		strata_free(c->req);
		free(c);
		pthread_mutex_lock(&f->mu);
		f->busy--;
		pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

struct fake_cluster *fake_new(unsigned n_segments)
{
	struct fake_cluster *f = calloc(1, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	for (unsigned i = 0; i < n_segments; i++) {
		add_seg(f, 0, (double)i / n_segments,
		        (double)(i + 1) / n_segments);
	}
	f->segs[f->n - 1].high = 1.0;
	pthread_create(&f->worker, NULL, worker_main, f);
	return f;
}

static int fake_call(void *tr, const char *url, uint32_t method, unsigned flags,
                     const uint8_t *req, size_t len, rpc_done_fn cb, void *arg,
                     char *errmsg)
{
	(void)flags;
	struct fake_cluster *f = tr;
	struct fake_call *c = calloc(1, sizeof(*c));
	c->to_store = url != NULL;
	c->method = method;
	c->req = strata_malloc(len > 0 ? len : 1);
	memcpy(c->req, req, len);
	c->len = len;
	c->cb = cb;
	c->arg = arg;
	pthread_mutex_lock(&f->mu);
	if (f->closed) {
		pthread_mutex_unlock(&f->mu);
		strata_free(c->req);
		free(c);
		if (errmsg != NULL) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE, "closed");
		}
		return STRATA_ECLOSED;
	}
	if (f->tail != NULL) {
		f->tail->next = c;
	} else {
		f->head = c;
	}
	f->tail = c;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static void fake_close(void *tr)
{
	struct fake_cluster *f = tr;
	pthread_mutex_lock(&f->mu);
	f->closed = true;
	while (f->head != NULL || f->busy > 0) {
		pthread_cond_broadcast(&f->cv);
		pthread_cond_wait(&f->cv, &f->mu);
	}
	pthread_mutex_unlock(&f->mu);
}

static void fake_tr_free(void *tr)
{
	(void)tr; /* the test frees the fake */
}

const struct ct_ops fake_ops = {
        .call = fake_call,
        .close = fake_close,
        .free = fake_tr_free,
};

void fake_free(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	f->closed = true;
	f->stop = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->worker, NULL);
	for (size_t i = 0; i < f->n; i++) {
		free(f->segs[i].data);
	}
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void fake_fail_appends(struct fake_cluster *f, unsigned n, int code)
{
	pthread_mutex_lock(&f->mu);
	f->fail_n = n;
	f->fail_code = code;
	pthread_mutex_unlock(&f->mu);
}

void fake_refuse_in_order(struct fake_cluster *f, int code)
{
	pthread_mutex_lock(&f->mu);
	f->refuse_code = code;
	pthread_mutex_unlock(&f->mu);
}

void fake_lose_acks(struct fake_cluster *f, unsigned n)
{
	pthread_mutex_lock(&f->mu);
	f->lose_n = n;
	pthread_mutex_unlock(&f->mu);
}

void fake_stale_successors(struct fake_cluster *f, unsigned n)
{
	pthread_mutex_lock(&f->mu);
	f->stale_succ = n;
	pthread_mutex_unlock(&f->mu);
}

unsigned fake_list_calls(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->list_calls;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fake_stale_current(struct fake_cluster *f, unsigned n)
{
	pthread_mutex_lock(&f->mu);
	f->stale_cur = n;
	pthread_mutex_unlock(&f->mu);
}

unsigned fake_stale_current_left(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->stale_cur;
	pthread_mutex_unlock(&f->mu);
	return n;
}

unsigned fake_stale_successors_left(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->stale_succ;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fake_clip_reads(struct fake_cluster *f, uint64_t every)
{
	pthread_mutex_lock(&f->mu);
	f->read_clip = every;
	pthread_mutex_unlock(&f->mu);
}

void fake_split(struct fake_cluster *f, uint64_t id)
{
	pthread_mutex_lock(&f->mu);
	struct fake_seg *s = seg_by_id(f, id);
	if (s != NULL && s->current) {
		f->epoch++;
		double mid = (s->low + s->high) / 2;
		double low = s->low;
		double high = s->high;
		/* Publish the successors first, then seal (as the
		 * controller's scale workflow does). */
		s->current = false;
		struct fake_seg *a = add_seg(f, f->epoch, low, mid);
		struct fake_seg *b = add_seg(f, f->epoch, mid, high);
		a->preds[a->n_preds++] = id;
		b->preds[b->n_preds++] = id;
		seg_by_id(f, id)->sealed = true;
	}
	pthread_mutex_unlock(&f->mu);
}

void fake_merge(struct fake_cluster *f, uint64_t a, uint64_t b)
{
	pthread_mutex_lock(&f->mu);
	struct fake_seg *x = seg_by_id(f, a);
	struct fake_seg *y = seg_by_id(f, b);
	if (x != NULL && y != NULL && x->current && y->current &&
	    (x->high == y->low || y->high == x->low)) {
		f->epoch++;
		double low = x->low < y->low ? x->low : y->low;
		double high = x->high > y->high ? x->high : y->high;
		x->current = false;
		y->current = false;
		struct fake_seg *m = add_seg(f, f->epoch, low, high);
		m->preds[m->n_preds++] = a;
		m->preds[m->n_preds++] = b;
		seg_by_id(f, a)->sealed = true;
		seg_by_id(f, b)->sealed = true;
	}
	pthread_mutex_unlock(&f->mu);
}

void fake_delete_segment(struct fake_cluster *f, uint64_t id)
{
	pthread_mutex_lock(&f->mu);
	struct fake_seg *s = seg_by_id(f, id);
	if (s != NULL && s->sealed && !s->current) {
		s->gone = true;
	}
	pthread_mutex_unlock(&f->mu);
}

void fake_seal_stream(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->n; i++) {
		if (f->segs[i].current) {
			f->segs[i].sealed = true;
		}
	}
	pthread_mutex_unlock(&f->mu);
}

size_t fake_n_segments(struct fake_cluster *f)
{
	return f->n;
}

uint64_t fake_segment_id(struct fake_cluster *f, size_t i)
{
	return f->segs[i].id;
}

const uint8_t *fake_segment_data(struct fake_cluster *f, size_t i, size_t *len)
{
	*len = f->segs[i].len;
	return f->segs[i].data;
}

unsigned fake_reads_beyond(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->beyond;
	pthread_mutex_unlock(&f->mu);
	return n;
}

unsigned fake_appends(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->appends;
	pthread_mutex_unlock(&f->mu);
	return n;
}

unsigned fake_duplicates(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->dups;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fake_busy_creates(struct fake_cluster *f, unsigned n)
{
	pthread_mutex_lock(&f->mu);
	f->busy_creates = n;
	pthread_mutex_unlock(&f->mu);
}

void fake_expire_txn(struct fake_cluster *f, uint64_t id)
{
	pthread_mutex_lock(&f->mu);
	struct fake_txn *t = txn_find(f, id);
	if (t != NULL && t->state == STRATA__V1__TXN_STATE__TXN_STATE_OPEN) {
		txn_finish(f, t, false);
	}
	pthread_mutex_unlock(&f->mu);
}

size_t fake_live_segments(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	size_t n = 0;
	for (size_t i = 0; i < f->n; i++) {
		n += f->segs[i].name[0] != '\0';
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

bool fake_segment_internal(struct fake_cluster *f, size_t i)
{
	return f->segs[i].internal;
}

struct strata_client *fake_client(struct fake_cluster *f,
                                  int operation_timeout_ms)
{
	struct strata_client_config cfg;
	const char *urls[1] = {"tcp://127.0.0.1:1"};
	strata_client_config_default(&cfg);
	cfg.controller_urls = urls;
	cfg.n_controller_urls = 1;
	cfg.operation_timeout_ms = operation_timeout_ms;
	struct strata_client *c = NULL;
	char err[STRATA_ERRMSG_SIZE];
	if (client_new_with_transport(&cfg, &fake_ops, f, &c, err) != 0) {
		fprintf(stderr, "fake_client: %s\n", err);
		return NULL;
	}
	return c;
}

struct drain {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void drain_fn(void *arg)
{
	struct drain *d = arg;
	pthread_mutex_lock(&d->mu);
	d->done = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void fake_loop_drain(struct strata_client *c)
{
	struct drain d = {.done = false};
	pthread_mutex_init(&d.mu, NULL);
	pthread_cond_init(&d.cv, NULL);
	struct loop_task t;
	loop_task_init(&t, drain_fn, &d);
	loop_post(c->loop, &t);
	pthread_mutex_lock(&d.mu);
	while (!d.done) {
		pthread_cond_wait(&d.cv, &d.mu);
	}
	pthread_mutex_unlock(&d.mu);
	pthread_cond_destroy(&d.cv);
	pthread_mutex_destroy(&d.mu);
}

struct fake_fixture *fake_fixture_new(unsigned n_segments)
{
	struct fake_fixture *fx = calloc(1, sizeof(*fx));
	if (fx == NULL || (fx->f = fake_new(n_segments)) == NULL ||
	    (fx->c = fake_client(fx->f, 3000)) == NULL) {
		fake_fixture_free(fx);
		return NULL;
	}
	return fx;
}

void fake_fixture_free(struct fake_fixture *fx)
{
	if (fx == NULL) {
		return;
	}
	strata_client_free(fx->c);
	if (fx->f != NULL) {
		fake_free(fx->f);
	}
	free(fx);
}

unsigned fake_txn_pings(struct fake_cluster *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->txn_pings;
	pthread_mutex_unlock(&f->mu);
	return n;
}
