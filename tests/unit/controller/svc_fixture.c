/* Test fixture for the controller service (see svc_fixture.h). */
#include "tests/unit/controller/svc_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/rpc.h"
#include "raft/group.h"

void fx_sleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int fx_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

void fx_init(struct fx *f, unsigned n)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/strata-ctl-ut-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->n = n;
	f->containers = 4;
	f->wait_ms = 300;
	f->lease_ms = 10000;
	f->join_from = n;
	for (unsigned i = 0; i < n; i++) {
		struct ctl_member *m = &f->members[i];
		m->id = i + 1;
		snprintf(m->raft_address, sizeof(m->raft_address),
		         "127.0.0.1:%d", fx_free_port());
		snprintf(m->client_url, sizeof(m->client_url),
		         "inproc://ctl-ut-%d-%u", (int)getpid(), i + 1);
	}
}

void fx_start(struct fx *f, unsigned i)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/n%u", f->dir, i + 1);
	struct ctl_service_config c = {
	        .node_id = f->members[i].id,
	        .data_dir = dir,
	        .raft_listen = f->members[i].raft_address,
	        .members = f->members,
	        .n_members = i >= f->join_from ? f->n : f->join_from,
	        .join = i >= f->join_from,
	        .container_count = f->containers,
	        .election_ms = 300,
	        .heartbeat_ms = 50,
	        .snapshot_bytes = f->snapshot_bytes,
	        .wait_ms = f->wait_ms,
	        .recover_ms = f->recover_ms,
	};
	int rc = ctl_service_start(&c, &f->svc[i], err);
	if (rc != 0) {
		fail_msg("start replica %u: %s", i + 1, err);
	}
	struct ctl_api_config ac = {.svc = f->svc[i],
	                            .store_lease_ms = f->lease_ms,
	                            .read_staleness_ms = f->read_staleness_ms};
	assert_int_equal(ctl_api_new(&ac, &f->api[i], err), 0);
	if (!f->no_ticker) {
		assert_int_equal(
		        cluster_ticker_start(f->svc[i], 100, &f->ticker[i]), 0);
	}
}

void fx_stop(struct fx *f, unsigned i)
{
	cluster_ticker_stop(f->ticker[i]);
	ctl_service_stop(f->svc[i]);
	cluster_ticker_free(f->ticker[i]);
	f->ticker[i] = NULL;
	ctl_api_free(f->api[i]);
	f->svc[i] = NULL;
	f->api[i] = NULL;
}

void fx_close(struct fx *f)
{
	for (unsigned i = 0; i < f->n; i++) {
		if (f->svc[i] != NULL) {
			fx_stop(f, i);
		}
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

unsigned fx_wait_leader(struct fx *f, unsigned ms)
{
	/* A loaded machine (fsync stalls) can delay even a one-node
	 * election by seconds: never wait less than 30 s before failing. */
	ms = ms < 30000 ? 30000 : ms;
	for (unsigned t = 0; t < ms; t += 20) {
		for (unsigned i = 0; i < f->n; i++) {
			if (f->svc[i] != NULL &&
			    ctl_service_is_ready(f->svc[i])) {
				return i;
			}
		}
		fx_sleep(20);
	}
	fail_msg("no leader within %u ms", ms);
	return 0;
}

struct sync_call {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct fx_reply *out;
};

static void sync_done(void *arg, int code, const char *msg,
                      const char *redirect, const uint8_t *body, size_t len)
{
	struct sync_call *s = arg;
	pthread_mutex_lock(&s->lock);
	s->out->code = code;
	snprintf(s->out->msg, sizeof(s->out->msg), "%s", msg);
	snprintf(s->out->redirect, sizeof(s->out->redirect), "%s", redirect);
	s->out->body = NULL;
	s->out->len = len;
	if (len > 0) {
		s->out->body = strata_malloc(len);
		memcpy(s->out->body, body, len);
	}
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void fx_call(struct ctl_api *api, uint32_t method, const ProtobufCMessage *req,
             struct fx_reply *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	if (req != NULL) {
		len = protobuf_c_message_get_packed_size(req);
		buf = strata_malloc(len + 1);
		protobuf_c_message_pack(req, buf);
	}
	struct sync_call s = {.done = false, .out = out};
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	ctl_api_dispatch(api, method, buf, len, sync_done, &s);
	pthread_mutex_lock(&s.lock);
	while (!s.done) {
		pthread_cond_wait(&s.cond, &s.lock);
	}
	pthread_mutex_unlock(&s.lock);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
	strata_free(buf);
}

void *fx_unpack(const struct fx_reply *out,
                const ProtobufCMessageDescriptor *desc)
{
	void *m = rpc_pb_unpack(desc, out->body, out->len);
	assert_non_null(m);
	return m;
}

void fx_reply_free(struct fx_reply *out)
{
	strata_free(out->body);
	out->body = NULL;
	out->len = 0;
}

bool fx_eventually(bool (*pred)(void *arg), void *arg, unsigned ms)
{
	ms = ms < 20000 ? 20000 : ms; /* generous under load; cheap when ok */
	for (unsigned t = 0; t <= ms; t += 20) {
		if (pred(arg)) {
			return true;
		}
		fx_sleep(20);
	}
	return false;
}

int fx_create_scope(struct ctl_api *api, const char *scope)
{
	Strata__V1__CreateScopeRequest q =
	        STRATA__V1__CREATE_SCOPE_REQUEST__INIT;
	struct fx_reply r;
	q.scope = (char *)scope;
	fx_call(api, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_SCOPE, &q.base,
	        &r);
	fx_reply_free(&r);
	return r.code;
}

int fx_create_stream(struct ctl_api *api, const char *scope, const char *stream,
                     uint32_t n)
{
	Strata__V1__CreateStreamRequest q =
	        STRATA__V1__CREATE_STREAM_REQUEST__INIT;
	Strata__V1__StreamConfig c = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__ScalingPolicy p = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__FixedScaling fx = STRATA__V1__FIXED_SCALING__INIT;
	struct fx_reply r;
	fx.min_segments = n;
	p.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	p.fixed = &fx;
	c.scaling = &p;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.config = &c;
	fx_call(api, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_STREAM, &q.base,
	        &r);
	fx_reply_free(&r);
	return r.code;
}
