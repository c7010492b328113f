/* TEST-ONLY fake segment stores: see fake_store.h. */
#include "tests/unit/controller/fake_store.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/rpc.h"
#include "strata/v1/cluster.pb-c.h"
#include "strata/v1/segmentstore.pb-c.h"

#define SSM(x) STRATA__V1__SEGMENT_STORE_METHOD__SS_##x

static int find(struct fake *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->segs[i].name, name) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static void info(struct rpc_call *call, struct fake *f, int i)
{
	Strata__V1__SegmentInfoReply r = STRATA__V1__SEGMENT_INFO_REPLY__INIT;
	r.segment = f->segs[i].name;
	r.length = f->segs[i].length;
	r.sealed = f->segs[i].sealed;
	r.start_offset = f->segs[i].start;
	rpc_reply_pb(call, 0, NULL, &r.base);
}

static void fake_handler(void *arg, struct rpc_call *call, uint32_t method,
                         const uint8_t *body, size_t len)
{
	struct fake *f = arg;
	pthread_mutex_lock(&f->lock);
	f->calls++;
	if (f->redirect != NULL) {
		f->redirects++;
		rpc_reply_redirect(call, STRATA_EWRONGHOST, "not mine",
		                   f->redirect);
		goto out;
	}
	if (f->fail_next > 0) {
		f->fail_next--;
		f->failures++;
		rpc_reply(call, STRATA_EIO, "injected failure", NULL, 0);
		goto out;
	}
	switch (method) {
	case SSM(CREATE_SEGMENT): {
		Strata__V1__CreateSegmentRequest *q = (void *)rpc_pb_unpack(
		        &strata__v1__create_segment_request__descriptor, body,
		        len);
		assert_non_null(q);
		assert_true(q->idempotent);
		int i = find(f, q->segment);
		if (i < 0) {
			i = (int)f->n++;
			snprintf(f->segs[i].name, sizeof(f->segs[i].name), "%s",
			         q->segment);
			f->segs[i].length = 100 + strlen(q->segment);
			f->segs[i].sealed = false;
			f->segs[i].start = 0;
		}
		info(call, f, i);
		rpc_pb_free(&q->base);
		break;
	}
	case SSM(SEAL):
	case SSM(GET_INFO):
	case SSM(DELETE): {
		Strata__V1__SegmentRequest *q = (void *)rpc_pb_unpack(
		        &strata__v1__segment_request__descriptor, body, len);
		assert_non_null(q);
		int i = find(f, q->segment);
		if (i < 0) {
			rpc_reply(call, STRATA_ENOENT, "no such segment", NULL,
			          0);
		} else if (method == SSM(DELETE)) {
			f->deletes++;
			f->segs[i] = f->segs[--f->n];
			rpc_reply(call, 0, NULL, NULL, 0);
		} else {
			if (method == SSM(SEAL)) {
				f->segs[i].sealed = true;
			}
			info(call, f, i);
		}
		rpc_pb_free(&q->base);
		break;
	}
	case SSM(TRUNCATE): {
		Strata__V1__TruncateRequest *q = (void *)rpc_pb_unpack(
		        &strata__v1__truncate_request__descriptor, body, len);
		int i = find(f, q->segment);
		f->truncates++;
		if (i < 0) {
			rpc_reply(call, STRATA_ENOENT, "no such segment", NULL,
			          0);
		} else {
			f->segs[i].start = q->offset;
			info(call, f, i);
		}
		rpc_pb_free(&q->base);
		break;
	}
	case SSM(MERGE): {
		Strata__V1__MergeRequest *q = (void *)rpc_pb_unpack(
		        &strata__v1__merge_request__descriptor, body, len);
		int t = find(f, q->target), s = find(f, q->source);
		if (t < 0 || s < 0) {
			rpc_reply(call, STRATA_ENOENT, "missing", NULL, 0);
		} else {
			assert_true(f->segs[s].sealed);
			f->merges++;
			f->segs[t].length += f->segs[s].length;
			f->segs[s] = f->segs[--f->n];
			info(call, f, find(f, q->target));
		}
		rpc_pb_free(&q->base);
		break;
	}
	default:
		rpc_reply_unknown_method(call, method);
		break;
	}
out:
	pthread_mutex_unlock(&f->lock);
}

void fake_start(struct fake *f, int n)
{
	char err[STRATA_ERRMSG_SIZE];
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	snprintf(f->url, sizeof(f->url), "inproc://ctl-driver-%d-%d",
	         (int)getpid(), n);
	assert_int_equal(
	        rpc_server_start(&f->srv, f->url, NULL, fake_handler, f, err),
	        0);
}

void fake_stop(struct fake *f)
{
	rpc_server_stop(f->srv);
	pthread_mutex_destroy(&f->lock);
}

bool fake_has(struct fake *f, const char *name)
{
	pthread_mutex_lock(&f->lock);
	bool has = find(f, name) >= 0;
	pthread_mutex_unlock(&f->lock);
	return has;
}

void register_store(struct ctl_api *api, uint64_t id, const char *url)
{
	Strata__V1__StoreEndpoint ep = STRATA__V1__STORE_ENDPOINT__INIT;
	Strata__V1__RegisterStoreRequest q =
	        STRATA__V1__REGISTER_STORE_REQUEST__INIT;
	struct fx_reply r;
	ep.node_id = id;
	ep.client_url = (char *)url;
	ep.raft_address = "127.0.0.1:1";
	q.store = &ep;
	q.container_count = 4;
	fx_call(api, STRATA__V1__CLUSTER_METHOD__CLUSTER_REGISTER_STORE,
	        &q.base, &r);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
}

void env_start(struct env *e, int stores)
{
	char err[STRATA_ERRMSG_SIZE];
	fx_init(&e->f, 1);
	e->f.wait_ms = 3000;
	fx_start(&e->f, 0);
	fx_wait_leader(&e->f, 5000);
	for (int i = 0; i < stores; i++) {
		fake_start(&e->s[i], i);
		register_store(e->f.api[0], (uint64_t)i + 1, e->s[i].url);
	}
	struct driver_config dc = {.svc = e->f.svc[0],
	                           .rpc_timeout_ms = 2000,
	                           .backoff_min_ms = 20,
	                           .backoff_max_ms = 100};
	assert_int_equal(driver_start(&dc, &e->d, err), 0);
}

void env_stop(struct env *e, int stores)
{
	driver_stop(e->d);
	fx_close(&e->f);
	for (int i = 0; i < stores; i++) {
		fake_stop(&e->s[i]);
	}
}
