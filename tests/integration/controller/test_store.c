/* TEST-ONLY stand-in for strata-segmentstore in the controller integration
 * tests: registers and heartbeats with the controllers like a real store
 * and answers the SS_* calls of the workflow driver from an in-memory
 * table, recording every call so the test can check what it was asked.
 * It stores no data and must be replaced by the real store in tests that
 * need one (see docs/controller.md, "Testing").
 *
 * usage: ctl_test_store --id N --controllers URL[,URL...] --record FILE
 *                       [--containers C] [--delay-file PATH]
 *
 * - Listens on tcp://127.0.0.1:0 and prints "READY <url>" on stdout.
 * - Leads container c when it is replicas[c % n] of the latest assignment
 *   (heartbeats say so); for any other container it answers
 *   STRATA_EWRONGHOST with a redirect to the leading replica.
 * - While PATH exists, SS_SEAL first writes "SEAL_BEGIN <name>" to the
 *   record and sleeps for the number of milliseconds in the file.
 * - Record lines: "CREATE <name> new|replay", "SEAL <name> <length>",
 *   "TRUNCATE <name> <offset>", "DELETE <name> ok|missing",
 *   "MERGE <target> <source> ok|missing", "WRONGHOST <name>".
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/process.h"
#include "common/rpc.h"
#include "common/segname.h"
#include "strata/error.h"
#include "strata/v1/cluster.pb-c.h"
#include "strata/v1/segmentstore.pb-c.h"

#define MAX_SEGS 4096
#define MAX_CONTAINERS 256

struct seg {
	char name[512];
	bool sealed;
	uint64_t length;
	uint64_t start;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct seg segs[MAX_SEGS];
static size_t n_segs;
static FILE *rec;
static const char *delay_file;
static uint64_t node_id;
static uint32_t containers = 4;
static char my_url[256];
/* Latest assignment: leader URL per container ("" = me or unknown). */
static char leader_url[MAX_CONTAINERS][256];
static bool leading[MAX_CONTAINERS];

static void record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void record(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(rec, fmt, ap);
	va_end(ap);
	fputc('\n', rec);
	fflush(rec);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* Container of a name: the hash the controller and stores share. */
static uint32_t container_of(const char *name)
{
	return segname_container(name, containers);
}

static struct seg *find(const char *name)
{
	for (size_t i = 0; i < n_segs; i++) {
		if (strcmp(segs[i].name, name) == 0) {
			return &segs[i];
		}
	}
	return NULL;
}

static void reply_info(struct rpc_call *call, const struct seg *s)
{
	Strata__V1__SegmentInfoReply r = STRATA__V1__SEGMENT_INFO_REPLY__INIT;
	r.segment = (char *)s->name;
	r.length = s->length;
	r.start_offset = s->start;
	r.sealed = s->sealed;
	rpc_reply_pb(call, 0, NULL, &r.base);
}

/* Under lock: true when this store leads name's container, else answers
 * EWRONGHOST. */
static bool check_host(struct rpc_call *call, const char *name)
{
	uint32_t c = container_of(name);
	if (c < MAX_CONTAINERS && leading[c]) {
		return true;
	}
	record("WRONGHOST %s", name);
	const char *to = c < MAX_CONTAINERS ? leader_url[c] : "";
	if (to[0] != '\0') {
		rpc_reply_redirect(call, STRATA_EWRONGHOST,
		                   "test store: not the container leader", to);
	} else {
		rpc_reply(call, STRATA_EWRONGHOST,
		          "test store: container leader unknown", NULL, 0);
	}
	return false;
}

static void handler(void *arg, struct rpc_call *call, uint32_t method,
                    const uint8_t *body, size_t len)
{
	(void)arg;
	char msg[256];
	switch (method) {
	case STRATA__V1__SEGMENT_STORE_METHOD__SS_CREATE_SEGMENT: {
		Strata__V1__CreateSegmentRequest *q = (void *)rpc_pb_unpack(
		        &strata__v1__create_segment_request__descriptor, body,
		        len);
		if (q == NULL) {
			rpc_reply(call, STRATA_EPROTO, "bad body", NULL, 0);
			return;
		}
		pthread_mutex_lock(&lock);
		if (check_host(call, q->segment)) {
			struct seg *s = find(q->segment);
			if (s != NULL && !q->idempotent) {
				rpc_reply(call, STRATA_EEXIST, "exists", NULL,
				          0);
			} else if (s != NULL) {
				record("CREATE %s replay", q->segment);
				reply_info(call, s);
			} else if (n_segs == MAX_SEGS) {
				rpc_reply(call, STRATA_ENOSPC, "full", NULL, 0);
			} else {
				s = &segs[n_segs++];
				memset(s, 0, sizeof(*s));
				snprintf(s->name, sizeof(s->name), "%s",
				         q->segment);
				s->length = strlen(q->segment); /* fake size */
				record("CREATE %s new", q->segment);
				reply_info(call, s);
			}
		}
		pthread_mutex_unlock(&lock);
		rpc_pb_free(&q->base);
		return;
	}
	case STRATA__V1__SEGMENT_STORE_METHOD__SS_SEAL:
	case STRATA__V1__SEGMENT_STORE_METHOD__SS_GET_INFO:
	case STRATA__V1__SEGMENT_STORE_METHOD__SS_DELETE: {
		Strata__V1__SegmentRequest *q = (void *)rpc_pb_unpack(
		        &strata__v1__segment_request__descriptor, body, len);
		if (q == NULL) {
			rpc_reply(call, STRATA_EPROTO, "bad body", NULL, 0);
			return;
		}
		if (method == STRATA__V1__SEGMENT_STORE_METHOD__SS_SEAL &&
		    delay_file != NULL) {
			FILE *f = fopen(delay_file, "r");
			unsigned ms = 0;
			if (f != NULL) {
				if (fscanf(f, "%u", &ms) != 1) {
					ms = 0;
				}
				fclose(f);
				pthread_mutex_lock(&lock);
				record("SEAL_BEGIN %s", q->segment);
				pthread_mutex_unlock(&lock);
				sleep_ms(ms);
			}
		}
		pthread_mutex_lock(&lock);
		if (check_host(call, q->segment)) {
			struct seg *s = find(q->segment);
			if (method ==
			    STRATA__V1__SEGMENT_STORE_METHOD__SS_DELETE) {
				record("DELETE %s %s", q->segment,
				       s != NULL ? "ok" : "missing");
				if (s != NULL) {
					*s = segs[--n_segs];
					rpc_reply(call, 0, NULL, NULL, 0);
				} else {
					rpc_reply(call, STRATA_ENOENT,
					          "no such "
					          "segment",
					          NULL, 0);
				}
			} else if (s == NULL) {
				snprintf(msg, sizeof(msg), "no segment %s",
				         q->segment);
				rpc_reply(call, STRATA_ENOENT, msg, NULL, 0);
			} else {
				if (method ==
				    STRATA__V1__SEGMENT_STORE_METHOD__SS_SEAL) {
					s->sealed = true;
					record("SEAL %s %" PRIu64, s->name,
					       s->length);
				}
				reply_info(call, s);
			}
		}
		pthread_mutex_unlock(&lock);
		rpc_pb_free(&q->base);
		return;
	}
	case STRATA__V1__SEGMENT_STORE_METHOD__SS_TRUNCATE: {
		Strata__V1__TruncateRequest *q = (void *)rpc_pb_unpack(
		        &strata__v1__truncate_request__descriptor, body, len);
		if (q == NULL) {
			rpc_reply(call, STRATA_EPROTO, "bad body", NULL, 0);
			return;
		}
		pthread_mutex_lock(&lock);
		if (check_host(call, q->segment)) {
			struct seg *s = find(q->segment);
			record("TRUNCATE %s %" PRIu64, q->segment, q->offset);
			if (s == NULL) {
				rpc_reply(call, STRATA_ENOENT, "no segment",
				          NULL, 0);
			} else {
				if (q->offset > s->start) {
					s->start = q->offset;
				}
				if (s->start > s->length) {
					s->length = s->start;
				}
				reply_info(call, s);
			}
		}
		pthread_mutex_unlock(&lock);
		rpc_pb_free(&q->base);
		return;
	}
	case STRATA__V1__SEGMENT_STORE_METHOD__SS_MERGE: {
		Strata__V1__MergeRequest *q = (void *)rpc_pb_unpack(
		        &strata__v1__merge_request__descriptor, body, len);
		if (q == NULL) {
			rpc_reply(call, STRATA_EPROTO, "bad body", NULL, 0);
			return;
		}
		pthread_mutex_lock(&lock);
		if (check_host(call, q->target)) {
			struct seg *t = find(q->target), *s = find(q->source);
			record("MERGE %s %s %s", q->target, q->source,
			       t != NULL && s != NULL ? "ok" : "missing");
			if (t == NULL || s == NULL) {
				rpc_reply(call, STRATA_ENOENT, "missing", NULL,
				          0);
			} else if (!s->sealed) {
				rpc_reply(call, STRATA_ENOTSEALED,
				          "source not sealed", NULL, 0);
			} else {
				t->length += s->length;
				*s = segs[--n_segs];
				t = find(q->target);
				reply_info(call, t);
			}
		}
		pthread_mutex_unlock(&lock);
		rpc_pb_free(&q->base);
		return;
	}
	default:
		rpc_reply_unknown_method(call, method);
		return;
	}
}

/* Record which containers we lead from an assignment reply. */
static void take_assignment(const Strata__V1__AssignmentReply *a)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < a->n_containers && i < MAX_CONTAINERS; i++) {
		const Strata__V1__ContainerReplicas *c = a->containers[i];
		uint32_t id = c->container;
		if (id >= MAX_CONTAINERS) {
			continue;
		}
		leading[id] = false;
		leader_url[id][0] = '\0';
		if (c->n_replicas == 0) {
			continue;
		}
		const Strata__V1__StoreEndpoint *l =
		        c->replicas[id % c->n_replicas];
		leading[id] = l->node_id == node_id;
		snprintf(leader_url[id], sizeof(leader_url[id]), "%s",
		         l->client_url);
	}
	pthread_mutex_unlock(&lock);
}

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE];
	const char *controllers = NULL, *record_path = NULL;
	strata_process_init(err);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--id") == 0) {
			node_id = strtoull(argv[i + 1], NULL, 10);
		} else if (strcmp(argv[i], "--controllers") == 0) {
			controllers = argv[i + 1];
		} else if (strcmp(argv[i], "--record") == 0) {
			record_path = argv[i + 1];
		} else if (strcmp(argv[i], "--containers") == 0) {
			containers = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		} else if (strcmp(argv[i], "--delay-file") == 0) {
			delay_file = argv[i + 1];
		}
	}
	if (node_id == 0 || controllers == NULL || record_path == NULL ||
	    containers == 0 || containers > MAX_CONTAINERS) {
		fprintf(stderr, "usage: ctl_test_store --id N --controllers "
		                "URL[,URL] --record FILE [--containers C] "
		                "[--delay-file PATH]\n");
		return 2;
	}
	rec = fopen(record_path, "a");
	if (rec == NULL) {
		perror(record_path);
		return 1;
	}
	struct rpc_server *srv;
	if (rpc_server_start(&srv, "tcp://127.0.0.1:0", NULL, handler, NULL,
	                     err) != 0) {
		fprintf(stderr, "test store: %s\n", err);
		return 1;
	}
	snprintf(my_url, sizeof(my_url), "%s", rpc_server_url(srv));
	const char *urls[8];
	size_t n = 0;
	char *list = strata_strdup(controllers);
	for (char *tok = strtok(list, ","); tok != NULL && n < 8;
	     tok = strtok(NULL, ",")) {
		urls[n++] = tok;
	}
	struct rpc_client *cli;
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = 2000;
	if (rpc_client_open(&cli, urls, n, &o, err) != 0) {
		fprintf(stderr, "test store: %s\n", err);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("READY %s\n", my_url);
	fflush(stdout);
	bool registered = false;
	uint64_t lease = 3000;
	while (!quit) {
		ProtobufCMessage *rep = NULL;
		int rc;
		if (!registered) {
			Strata__V1__StoreEndpoint ep =
			        STRATA__V1__STORE_ENDPOINT__INIT;
			Strata__V1__RegisterStoreRequest q =
			        STRATA__V1__REGISTER_STORE_REQUEST__INIT;
			char raft[32];
			snprintf(raft, sizeof(raft), "127.0.0.1:%u",
			         (unsigned)(20000 + node_id));
			ep.node_id = node_id;
			ep.client_url = my_url;
			ep.raft_address = raft;
			ep.http_url = "";
			q.store = &ep;
			q.container_count = containers;
			rc = rpc_call_pb(
			        cli,
			        STRATA__V1__CLUSTER_METHOD__CLUSTER_REGISTER_STORE,
			        RPC_IDEMPOTENT, &q.base,
			        &strata__v1__assignment_reply__descriptor, &rep,
			        err);
		} else {
			Strata__V1__StoreHeartbeatRequest q =
			        STRATA__V1__STORE_HEARTBEAT_REQUEST__INIT;
			Strata__V1__ContainerReport rs[MAX_CONTAINERS];
			Strata__V1__ContainerReport *rp[MAX_CONTAINERS];
			pthread_mutex_lock(&lock);
			for (uint32_t c = 0; c < containers; c++) {
				Strata__V1__ContainerReport init =
				        STRATA__V1__CONTAINER_REPORT__INIT;
				rs[c] = init;
				rs[c].container = c;
				rs[c].role = leading[c] ? 3 : 1;
				rs[c].term = 1;
				rp[c] = &rs[c];
			}
			pthread_mutex_unlock(&lock);
			q.node_id = node_id;
			q.containers = rp;
			q.n_containers = containers;
			rc = rpc_call_pb(
			        cli,
			        STRATA__V1__CLUSTER_METHOD__CLUSTER_HEARTBEAT,
			        RPC_IDEMPOTENT, &q.base,
			        &strata__v1__assignment_reply__descriptor, &rep,
			        err);
			if (rc == STRATA_ENOENT) {
				registered = false;
			}
		}
		if (rc == 0) {
			const Strata__V1__AssignmentReply *a = (void *)rep;
			registered = true;
			lease = a->lease_ms ? a->lease_ms : lease;
			take_assignment(a);
		} else {
			LOG_WARN("teststore", "store %" PRIu64 ": %s: %s",
			         node_id, registered ? "heartbeat" : "register",
			         err);
		}
		rpc_pb_free(rep);
		/* Heartbeat every lease/3; retry quickly while unregistered. */
		unsigned wait = registered ? (unsigned)(lease / 3) : 200;
		for (unsigned t = 0; t < wait && !quit; t += 50) {
			sleep_ms(50);
		}
	}
	rpc_client_close(cli);
	rpc_server_stop(srv);
	strata_free(list);
	fclose(rec);
	return 0;
}
