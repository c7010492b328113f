/* Test node for Raft integration tests and the Raft bench: one process
 * hosting N groups on one Raft port, each with a checksumming FSM and a
 * load generator, driven by stdin commands and reporting on stdout.
 *
 * usage: raft_node --id N --listen IP:PORT --peers 1=IP:P,2=IP:P,...
 *                  --dir DIR [--groups G] [--entry-bytes B]
 *                  [--snapshot-mb M] [--trailing-mb M] [--retain-mb M]
 *                  [--segment-mb M]
 *                  [--inflight-kb K] [--election-ms T] [--heartbeat-ms T]
 *                  [--status-ms T] [--nodelay-off]
 * stdin:  "load on" | "load off" | "dump" | "quit" | "bench reset" |
 *         "bench report"
 * stdout (one line each, space-separated key=value after the tag):
 *   READY node=N port=P
 *   STATUS node group role ready term leader commit applied count bytes
 *          hash gaps installed snaps retained lat_p50_us lat_p99_us
 * acked_entries acked_bytes ms ACK node group session seq        (highest acked
 * seq of a session) FIRST_COMMIT node group term wall_ms (first ack as leader
 * of a term) SESSIONS node group list=S:N,...  (on "dump") BENCH node group
 * entries bytes us hist=B:N,...  (on "bench report": acks since "bench reset",
 * their bytes, microseconds elapsed, and the non-empty buckets of the latency
 * histogram, see lat_bucket; the driver merges them across groups) Entries
 * carry (session = leader term, seq from 1) so the FSM can check that every
 * session's entries commit in order without gaps, and the driver can check that
 * every acked seq is in every FSM.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include "raft/group.h"
#include "strata/error.h"

#define MAX_GROUPS 64
#define MAX_PEERS 9
#define MAX_SESSIONS 256
#define LAT_MAX 65536
#define ENTRY_MAGIC 0x5452454eu /* "NERT" */
#define HDR 24                  /* magic u32, node u32, session, seq */
#define LAT_BUCKETS 1024        /* log-linear latency buckets (lat_bucket) */

/* A group's replicated state. */
struct fsm_state {
	uint64_t count;                 /* entries applied */
	uint64_t bytes;                 /* their bytes */
	uint64_t hash;                  /* chained hash over every entry */
	uint64_t session;               /* session of the last entry */
	uint64_t seq;                   /* its seq */
	uint64_t gaps;                  /* order violations seen */
	uint32_t n_sessions;            /* finished sessions in the table */
	uint64_t sess[MAX_SESSIONS][2]; /* session, last seq */
};

struct node_group {
	int idx;              /* 0.. */
	uint64_t gid;         /* group id */
	struct raft_group *g; /* the group */
	pthread_mutex_t lock; /* guards st and the fields below */
	struct fsm_state st;  /* FSM */
	/* Writer side (leader only). */
	uint64_t w_session;     /* term we write in, 0 if none */
	uint64_t w_next;        /* next seq to send */
	uint64_t w_acked;       /* highest acked seq of w_session */
	uint64_t acked_entries; /* acks in total */
	uint64_t acked_bytes;   /* their bytes */
	bool first_commit_done; /* FIRST_COMMIT printed for w_session */
	uint64_t lat[LAT_MAX];  /* latencies (us) since last status */
	uint64_t bench_hist[LAT_BUCKETS]; /* latencies since bench reset */
	uint64_t bench_entries;           /* acks since bench reset */
	uint64_t bench_bytes;             /* their bytes */
	unsigned n_lat;                   /* entries in lat */
	_Atomic int inflight;             /* applies outstanding */
	_Atomic uint64_t term;            /* from role_changed */
	_Atomic int ready;                /* from role_changed */
};

/* One apply in flight. */
struct pending {
	struct node_group *ng; /* group */
	uint64_t session;      /* its session */
	uint64_t seq;          /* its seq */
	uint64_t t0_ns;        /* submit time */
	size_t len;            /* bytes */
};

static struct node_group groups[MAX_GROUPS];
static int n_groups = 1;
static uint64_t node_id;
static size_t entry_bytes = 65536;
static _Atomic int load_on;
static _Atomic int quitting;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static unsigned status_ms = 200;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void out(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8); /* host order: entries never leave this machine */
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Chained hash, 8 bytes at a time. */
static uint64_t hash_buf(uint64_t h, const unsigned char *p, size_t len)
{
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		h = (h ^ get64(p + i)) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++) {
		h = (h ^ p[i]) * 0x100000001b3ull;
	}
	return h;
}

/* ---- FSM hooks (loop thread) ------------------------------------------- */

static int fsm_apply(void *data, uint64_t index, const void *buf, size_t len,
                     void **result)
{
	struct node_group *ng = data;
	const unsigned char *p = buf;
	(void)index;
	*result = NULL;
	pthread_mutex_lock(&ng->lock);
	struct fsm_state *s = &ng->st;
	s->count++;
	s->bytes += len;
	s->hash = hash_buf(s->hash ^ len, p, len);
	if (len >= HDR && get64(p) % (1ull << 32) == ENTRY_MAGIC) {
		uint64_t session = get64(p + 8);
		uint64_t seq = get64(p + 16);
		if (session == s->session) {
			if (seq != s->seq + 1) {
				s->gaps++;
			}
		} else {
			if (session < s->session || seq != 1) {
				s->gaps++;
			}
			if (s->session != 0 && s->n_sessions < MAX_SESSIONS) {
				s->sess[s->n_sessions][0] = s->session;
				s->sess[s->n_sessions][1] = s->seq;
				s->n_sessions++;
			}
			s->session = session;
		}
		s->seq = seq;
	}
	pthread_mutex_unlock(&ng->lock);
	return 0;
}

static int fsm_snapshot(void *data, void **buf, size_t *len)
{
	struct node_group *ng = data;
	struct fsm_state *copy = strata_malloc(sizeof(*copy));
	if (copy == NULL) {
		return STRATA_ENOMEM;
	}
	pthread_mutex_lock(&ng->lock);
	*copy = ng->st;
	pthread_mutex_unlock(&ng->lock);
	*buf = copy;
	*len = sizeof(*copy);
	return 0;
}

static int fsm_restore(void *data, const void *buf, size_t len)
{
	struct node_group *ng = data;
	if (len != sizeof(struct fsm_state)) {
		return STRATA_ECORRUPT;
	}
	pthread_mutex_lock(&ng->lock);
	memcpy(&ng->st, buf, len);
	pthread_mutex_unlock(&ng->lock);
	return 0;
}

static void on_role(void *data, const struct raft_group_status *st)
{
	struct node_group *ng = data;
	atomic_store(&ng->term, st->term);
	atomic_store(&ng->ready, st->ready && st->role == RAFT_GROUP_LEADER);
	if (st->role == RAFT_GROUP_LEADER && st->ready) {
		out("LEADER node=%" PRIu64 " group=%" PRIu64 " term=%" PRIu64
		    " wall_ms=%" PRIu64 "\n",
		    node_id, ng->gid, st->term, wall_ms());
	}
	pthread_mutex_lock(&wake_lock);
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&wake_lock);
}

/* ---- load generator --------------------------------------------------------
 */

/* Latency bucket of us microseconds: exact below 64, then 32 buckets per
 * power of two (at most 3 % wide). Lower bound of bucket b: below 64, b;
 * else (32 + (b - 64) % 32) << ((b - 64) / 32 + 1). */
static unsigned lat_bucket(uint64_t us)
{
	if (us < 64) {
		return (unsigned)us;
	}
	unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 6 */
	unsigned b = 64 + (e - 6) * 32 + (unsigned)((us >> (e - 5)) & 31);
	return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

static uint64_t bench_t0_ns; /* set by "bench reset" */

static void apply_cb(void *arg, int status, void *result)
{
	struct pending *p = arg;
	struct node_group *ng = p->ng;
	(void)result;
	uint64_t us = (mono_ns() - p->t0_ns) / 1000;
	bool first = false;
	pthread_mutex_lock(&ng->lock);
	if (status == 0 && p->session == ng->w_session) {
		if (p->seq > ng->w_acked) {
			ng->w_acked = p->seq;
		}
		ng->acked_entries++;
		ng->acked_bytes += p->len;
		if (ng->n_lat < LAT_MAX) {
			ng->lat[ng->n_lat++] = us;
		}
		ng->bench_hist[lat_bucket(us)]++;
		ng->bench_entries++;
		ng->bench_bytes += p->len;
		if (!ng->first_commit_done) {
			ng->first_commit_done = true;
			first = true;
		}
	} else if (status != 0 && p->session == ng->w_session) {
		ng->w_session = 0; /* stop writing in this term */
	}
	pthread_mutex_unlock(&ng->lock);
	if (first) {
		out("FIRST_COMMIT node=%" PRIu64 " group=%" PRIu64
		    " term=%" PRIu64 " wall_ms=%" PRIu64 "\n",
		    node_id, ng->gid, p->session, wall_ms());
	}
	atomic_fetch_sub(&ng->inflight, 1);
	free(p);
	pthread_mutex_lock(&wake_lock);
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&wake_lock);
}

/* Submit entries to ng until back-pressure; returns entries submitted. */
static int feed(struct node_group *ng, unsigned char *buf)
{
	int n = 0;
	uint64_t term = atomic_load(&ng->term);
	if (!atomic_load(&ng->ready)) {
		return 0;
	}
	pthread_mutex_lock(&ng->lock);
	if (ng->w_session != term) {
		if (atomic_load(&ng->inflight) > 0) {
			/* Let the old term's applies settle first. */
			pthread_mutex_unlock(&ng->lock);
			return 0;
		}
		ng->w_session = term;
		ng->w_next = 1;
		ng->w_acked = 0;
		ng->first_commit_done = false;
	}
	pthread_mutex_unlock(&ng->lock);
	for (;;) {
		struct pending *p = malloc(sizeof(*p));
		if (p == NULL) {
			break;
		}
		pthread_mutex_lock(&ng->lock);
		uint64_t session = ng->w_session;
		uint64_t seq = ng->w_next;
		pthread_mutex_unlock(&ng->lock);
		if (session != term) {
			free(p);
			break;
		}
		uint32_t magic[2] = {ENTRY_MAGIC, (uint32_t)node_id};
		memcpy(buf, magic, 8);
		put64(buf + 8, session);
		put64(buf + 16, seq);
		/* Cheap varying filler so the hash covers real content. */
		put64(buf + HDR, seq * 0x9e3779b97f4a7c15ull);
		p->ng = ng;
		p->session = session;
		p->seq = seq;
		p->len = entry_bytes;
		p->t0_ns = mono_ns();
		atomic_fetch_add(&ng->inflight, 1);
		int rv = raft_group_apply(ng->g, buf, entry_bytes, apply_cb, p);
		if (rv != 0) {
			atomic_fetch_sub(&ng->inflight, 1);
			free(p);
			break;
		}
		pthread_mutex_lock(&ng->lock);
		ng->w_next = seq + 1;
		pthread_mutex_unlock(&ng->lock);
		n++;
	}
	return n;
}

static void *loader_main(void *arg)
{
	(void)arg;
	unsigned char *buf = calloc(1, entry_bytes < 64 ? 64 : entry_bytes);
	if (buf == NULL) {
		return NULL;
	}
	for (size_t i = HDR + 8; i < entry_bytes; i++) {
		buf[i] = (unsigned char)(i * 31);
	}
	while (!atomic_load(&quitting)) {
		int n = 0;
		if (atomic_load(&load_on)) {
			for (int i = 0; i < n_groups; i++) {
				n += feed(&groups[i], buf);
			}
		}
		if (n == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 2000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_mutex_lock(&wake_lock);
			pthread_cond_timedwait(&wake, &wake_lock, &ts);
			pthread_mutex_unlock(&wake_lock);
		}
	}
	free(buf);
	return NULL;
}

/* ---- status
 * ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_status(struct node_group *ng)
{
	struct raft_group_metrics m;
	raft_group_metrics(ng->g, &m);
	static uint64_t lat[LAT_MAX];
	pthread_mutex_lock(&ng->lock);
	struct fsm_state s = ng->st;
	unsigned n = ng->n_lat;
	memcpy(lat, ng->lat, n * sizeof(lat[0]));
	ng->n_lat = 0;
	uint64_t session = ng->w_session, acked = ng->w_acked;
	uint64_t ae = ng->acked_entries, ab = ng->acked_bytes;
	pthread_mutex_unlock(&ng->lock);
	uint64_t p50 = 0, p99 = 0;
	if (n > 0) {
		qsort(lat, n, sizeof(lat[0]), cmp_u64);
		p50 = lat[n / 2];
		p99 = lat[(n * 99) / 100];
	}
	out("STATUS node=%" PRIu64 " group=%" PRIu64 " role=%d ready=%d "
	    "term=%" PRIu64 " leader=%" PRIu64 " commit=%" PRIu64
	    " applied=%" PRIu64 " count=%" PRIu64 " bytes=%" PRIu64
	    " hash=%016" PRIx64 " gaps=%" PRIu64 " installed=%" PRIu64
	    " snaps=%" PRIu64 " retained=%" PRIu64
	    " lat_n=%u lat_p50_us=%" PRIu64 " lat_p99_us=%" PRIu64
	    " acked_entries=%" PRIu64 " acked_bytes=%" PRIu64
	    " contact_ms=%" PRIu64 " leader_changes=%" PRIu64
	    " wall_ms=%" PRIu64 "\n",
	    node_id, ng->gid, m.role, m.ready, m.term, m.leader_id,
	    m.commit_index, m.applied_index, s.count, s.bytes, s.hash, s.gaps,
	    m.snapshots_installed, m.snapshots_taken, m.snapshots_retained, n,
	    p50, p99, ae, ab, m.last_contact_ms, m.leader_changes, wall_ms());
	if (session != 0 && acked > 0) {
		out("ACK node=%" PRIu64 " group=%" PRIu64 " session=%" PRIu64
		    " seq=%" PRIu64 "\n",
		    node_id, ng->gid, session, acked);
	}
}

static void print_sessions(struct node_group *ng)
{
	char line[MAX_SESSIONS * 44 + 128];
	size_t off = 0;
	pthread_mutex_lock(&ng->lock);
	struct fsm_state s = ng->st;
	pthread_mutex_unlock(&ng->lock);
	line[0] = '\0';
	for (uint32_t i = 0; i <= s.n_sessions && i < MAX_SESSIONS + 1; i++) {
		uint64_t sid = i < s.n_sessions ? s.sess[i][0] : s.session;
		uint64_t seq = i < s.n_sessions ? s.sess[i][1] : s.seq;
		if (sid == 0) {
			continue;
		}
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		                        "%s%" PRIu64 ":%" PRIu64,
		                        off ? "," : "", sid, seq);
	}
	out("SESSIONS node=%" PRIu64 " group=%" PRIu64 " list=%s\n", node_id,
	    ng->gid, line);
}

static void bench_reset(void)
{
	for (int i = 0; i < n_groups; i++) {
		struct node_group *ng = &groups[i];
		pthread_mutex_lock(&ng->lock);
		memset(ng->bench_hist, 0, sizeof(ng->bench_hist));
		ng->bench_entries = 0;
		ng->bench_bytes = 0;
		pthread_mutex_unlock(&ng->lock);
	}
	bench_t0_ns = mono_ns();
}

static void bench_report(void)
{
	static uint64_t hist[LAT_BUCKETS];
	static char line[LAT_BUCKETS * 24 + 256];
	uint64_t us = (mono_ns() - bench_t0_ns) / 1000;
	for (int i = 0; i < n_groups; i++) {
		struct node_group *ng = &groups[i];
		pthread_mutex_lock(&ng->lock);
		memcpy(hist, ng->bench_hist, sizeof(hist));
		uint64_t e = ng->bench_entries, b = ng->bench_bytes;
		pthread_mutex_unlock(&ng->lock);
		size_t off = 0;
		line[0] = '\0';
		for (unsigned k = 0; k < LAT_BUCKETS; k++) {
			if (hist[k] != 0) {
				off += (size_t)snprintf(
				        line + off, sizeof(line) - off,
				        "%s%u:%" PRIu64, off ? "," : "", k,
				        hist[k]);
			}
		}
		out("BENCH node=%" PRIu64 " group=%" PRIu64 " entries=%" PRIu64
		    " bytes=%" PRIu64 " us=%" PRIu64 " hist=%s\n",
		    node_id, ng->gid, e, b, us, off ? line : "-");
	}
}

static void *status_main(void *arg)
{
	struct raft_host *h = arg;
	while (!atomic_load(&quitting)) {
		usleep(status_ms * 1000);
		for (int i = 0; i < n_groups; i++) {
			print_status(&groups[i]);
		}
		struct raft_stall_hist sh;
		raft_host_stalls(h, &sh);
		char b[256];
		size_t off = 0;
		for (int i = 0; i < RAFT_STALL_BUCKETS; i++) {
			off += (size_t)snprintf(b + off, sizeof(b) - off,
			                        "%s%" PRIu64, i ? "," : "",
			                        sh.count[i]);
		}
		out("STALLS node=%" PRIu64 " max_us=%" PRIu64 " buckets=%s\n",
		    node_id, sh.max_us, b);
	}
	return NULL;
}

/* ---- main
 * -------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: raft_node --id N --listen IP:PORT --peers "
	        "1=IP:P,2=IP:P,... --dir DIR [--groups G] [--entry-bytes B] "
	        "[--snapshot-mb M] [--trailing-mb M] [--retain-mb M] "
	        "[--segment-mb M] "
	        "[--inflight-kb K] [--election-ms T] [--heartbeat-ms T] "
	        "[--status-ms T] [--nodelay-off]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	const char *listen = NULL, *peers_arg = NULL, *dir = NULL;
	struct raft_group_config base = {0};
	bool nodelay_off = false;
	if (strata_process_init(errmsg) != 0) {
		fprintf(stderr, "raft_node: %s\n", errmsg);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--nodelay-off") == 0) {
			nodelay_off = true;
			continue;
		}
		if (v == NULL) {
			usage();
		}
		i++;
		if (strcmp(a, "--id") == 0) {
			node_id = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--listen") == 0) {
			listen = v;
		} else if (strcmp(a, "--peers") == 0) {
			peers_arg = v;
		} else if (strcmp(a, "--dir") == 0) {
			dir = v;
		} else if (strcmp(a, "--groups") == 0) {
			n_groups = atoi(v);
		} else if (strcmp(a, "--entry-bytes") == 0) {
			entry_bytes = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--snapshot-mb") == 0) {
			base.snapshot_bytes = strtoull(v, NULL, 10) << 20;
		} else if (strcmp(a, "--trailing-mb") == 0) {
			base.trailing_bytes = strtoull(v, NULL, 10) << 20;
		} else if (strcmp(a, "--retain-mb") == 0) {
			base.retain_bytes = strtoull(v, NULL, 10) << 20;
		} else if (strcmp(a, "--segment-mb") == 0) {
			base.segment_bytes = strtoull(v, NULL, 10) << 20;
		} else if (strcmp(a, "--inflight-kb") == 0) {
			base.inflight_bytes = strtoull(v, NULL, 10) << 10;
		} else if (strcmp(a, "--election-ms") == 0) {
			base.election_ms = (unsigned)atoi(v);
		} else if (strcmp(a, "--heartbeat-ms") == 0) {
			base.heartbeat_ms = (unsigned)atoi(v);
		} else if (strcmp(a, "--status-ms") == 0) {
			status_ms = (unsigned)atoi(v);
		} else {
			usage();
		}
	}
	if (node_id == 0 || listen == NULL || peers_arg == NULL ||
	    dir == NULL || n_groups < 1 || n_groups > MAX_GROUPS ||
	    entry_bytes < 64) {
		usage();
	}
	struct raft_group_peer peers[MAX_PEERS];
	char peer_buf[1024];
	unsigned n_peers = 0;
	snprintf(peer_buf, sizeof(peer_buf), "%s", peers_arg);
	for (char *save = NULL, *tok = strtok_r(peer_buf, ",", &save);
	     tok != NULL && n_peers < MAX_PEERS;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL) {
			usage();
		}
		*eq = '\0';
		peers[n_peers].id = strtoull(tok, NULL, 10);
		peers[n_peers].address = eq + 1;
		n_peers++;
	}

	struct raft_host *h = NULL;
	struct raft_host_config hc = {.bind_address = listen,
	                              .tcp_nodelay_off = nodelay_off};
	if (raft_host_new(&hc, &h, errmsg) != 0) {
		fprintf(stderr, "raft_node: %s\n", errmsg);
		return 1;
	}
	for (int i = 0; i < n_groups; i++) {
		struct node_group *ng = &groups[i];
		char gdir[512];
		ng->idx = i;
		ng->gid = (uint64_t)(i + 1);
		pthread_mutex_init(&ng->lock, NULL);
		snprintf(gdir, sizeof(gdir), "%s/group-%d", dir, i + 1);
		struct raft_group_config c = base;
		c.group_id = ng->gid;
		c.node_id = node_id;
		c.data_dir = gdir;
		c.peers = peers;
		c.n_peers = n_peers;
		struct raft_group_fsm f = {.data = ng,
		                           .apply = fsm_apply,
		                           .snapshot = fsm_snapshot,
		                           .restore = fsm_restore,
		                           .role_changed = on_role};
		uint64_t t0 = mono_ns();
		if (raft_group_start(h, &c, &f, &ng->g, errmsg) != 0) {
			fprintf(stderr, "raft_node: %s\n", errmsg);
			return 1;
		}
		out("STARTED node=%" PRIu64 " group=%" PRIu64
		    " start_ms=%" PRIu64 "\n",
		    node_id, ng->gid, (mono_ns() - t0) / 1000000u);
	}
	out("READY node=%" PRIu64 " port=%u\n", node_id, raft_host_port(h));

	pthread_t loader, status;
	pthread_create(&loader, NULL, loader_main, NULL);
	pthread_create(&status, NULL, status_main, h);
	char line[256];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (strncmp(line, "load on", 7) == 0) {
			atomic_store(&load_on, 1);
		} else if (strncmp(line, "load off", 8) == 0) {
			atomic_store(&load_on, 0);
		} else if (strncmp(line, "dump", 4) == 0) {
			for (int i = 0; i < n_groups; i++) {
				print_status(&groups[i]);
				print_sessions(&groups[i]);
			}
			out("DUMPED node=%" PRIu64 "\n", node_id);
		} else if (strncmp(line, "bench reset", 11) == 0) {
			bench_reset();
		} else if (strncmp(line, "bench report", 12) == 0) {
			bench_report();
		} else if (strncmp(line, "quit", 4) == 0) {
			break;
		}
	}
	atomic_store(&load_on, 0);
	/* Let in-flight applies finish before closing the groups. */
	for (int t = 0; t < 500; t++) {
		int busy = 0;
		for (int i = 0; i < n_groups; i++) {
			busy += atomic_load(&groups[i].inflight);
		}
		if (busy == 0) {
			break;
		}
		usleep(10000);
	}
	atomic_store(&quitting, 1);
	pthread_mutex_lock(&wake_lock);
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&wake_lock);
	pthread_join(loader, NULL);
	pthread_join(status, NULL);
	for (int i = 0; i < n_groups; i++) {
		raft_group_stop(groups[i].g);
	}
	raft_host_free(h);
	out("BYE node=%" PRIu64 "\n", node_id);
	return 0;
}
