/* Controller service: hosts the controller FSM in a Raft group (see
 * service.h).
 *
 * Happy path: ctl_service_start initialises the FSM, starts a raft host
 * (the Raft port and its loop thread) and the group; committed entries are
 * applied by hook_apply under the FSM lock; proposals pack a command and
 * hand it to raft_group_apply, whose callback receives the FSM's answer;
 * waiters are checked after every apply and expired by a timer thread.
 *
 * Results: the apply hook leaves its cfsm_result in s->res and passes a
 * pointer to it as the entry's result. libraft calls the proposer's
 * callback synchronously right after applying the entry on the same loop
 * thread, so the callback reads exactly that entry's result; nothing is
 * allocated per entry, so followers (which drop results) leak nothing.
 *
 * Failure modes: an FSM out of memory stalls the group (the entry is
 * retried) instead of diverging from the other replicas; a snapshot that
 * does not restore fails the install; stop fails pending proposals with
 * STRATA_ESHUTDOWN and tells every waiter "not satisfied".
 *
 * Recovery: a replica whose Raft log write failed leaves the group
 * (raft/group.c, libraft patches 12 and 17). The timer thread restarts it
 * recover_ms later, then at doubling intervals up to HEAL_MAX_MS while it
 * keeps failing (heal): the old group is stopped, the FSM emptied and a
 * new group started on the same Raft port, which reloads the snapshot and
 * the log up to its last good write, as a process restart would. While
 * that happens s->group is NULL (group_lock): calls answer "unavailable".
 */
#include "controller/service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "raft/group.h"

#define COMP "controller"
#define TIMER_MS 100         /* waiter expiry period */
#define HEAL_MS 30000        /* default first restart of a failed replica */
#define HEAL_MAX_MS 600000   /* longest wait between restarts */
#define HEAL_RESET_MS 600000 /* up this long: next wait is the first */

/*
 * Entry framing: [u32 LE command length][u32 0][packed ControllerCommand]
 * [zero padding to a multiple of 8 bytes]. libraft 0.15 sends entries
 * unpadded over the network but its receiver decodes a batch as if every
 * entry were padded to 8 bytes, so a batch holding an entry of another
 * size is misread (ASan: heap-buffer-overflow in the follower). Every
 * entry is therefore a multiple of 8 bytes.
 */
#define ENTRY_HEADER 8

struct waiter {
	ctl_wait_pred pred;   /* condition */
	ctl_wait_done done;   /* outcome */
	void *arg;            /* for both */
	uint64_t deadline_ms; /* monotonic */
	struct waiter *next;  /* list link */
};

struct ctl_service {
	struct ctl_member members[CTL_MAX_MEMBERS]; /* configured replicas */
	unsigned n_members;                         /* entries in members */
	uint64_t node_id;                           /* this replica */
	unsigned wait_ms;                           /* waiter bound */
	struct raft_host *host;                     /* Raft port + loop */
	pthread_rwlock_t group_lock; /* guards the group pointer (heal) */
	struct raft_group *group;    /* the replica, NULL while restarting */
	/* What heal() starts the group again with (pointers into these). */
	struct raft_group_config gcfg;                    /* as at start */
	struct raft_group_peer peers[CTL_MAX_MEMBERS];    /* gcfg.peers */
	char dir[4096];                                   /* gcfg.data_dir */
	uint32_t container_count;                         /* for a fresh FSM */
	void (*on_fatal)(void *arg, const char *message); /* or NULL */
	void *fatal_arg;
	atomic_bool fatal; /* on_fatal was called: serve nothing */
	/* Timer thread only: the restart of a failed replica. */
	unsigned recover_ms;         /* first wait */
	uint64_t heal_wait_ms;       /* current wait, 0 = none yet */
	uint64_t heal_at_ms;         /* planned restart, 0 = none planned */
	uint64_t healed_ms;          /* last restart */
	uint64_t heal_restarts;      /* restarts so far (metric) */
	pthread_mutex_t lock;        /* guards everything below */
	pthread_cond_t changed;      /* signalled on change_seq++ */
	struct cfsm fsm;             /* the state machine */
	uint64_t applied_index;      /* last applied entry */
	uint64_t change_seq;         /* applies + restores + role changes */
	struct raft_group_status st; /* last role report */
	uint64_t restart_at_ms;      /* planned restart, 0 = none (status) */
	struct waiter *waiters;      /* pending waiters */
	bool stopping;               /* no new waiters; timer exits */
	pthread_cond_t timer_cond;   /* wakes the timer early at stop */
	pthread_t timer;             /* waiter expiry thread */
	bool timer_started;          /* timer must be joined */
	struct cfsm_result *res;     /* loop thread: last apply's answer */
};

uint64_t ctl_now_ms(void)
{
	return clock_wall_ms();
}

/* ------------------------------------------------------------ members -- */

/* Copy [b, e) trimmed of spaces into dst (size n); false if too long or
 * empty. */
static bool copy_field(char *dst, size_t n, const char *b, const char *e)
{
	while (b < e && (*b == ' ' || *b == '\t')) {
		b++;
	}
	while (e > b && (e[-1] == ' ' || e[-1] == '\t')) {
		e--;
	}
	size_t len = (size_t)(e - b);
	if (len == 0 || len >= n) {
		return false;
	}
	memcpy(dst, b, len);
	dst[len] = '\0';
	return true;
}

bool ctl_raft_address_ok(const char *s)
{
	/* host:port, host an IPv4 literal or a DNS name (the Raft transport
	 * resolves names at every connect, e.g. Kubernetes pod names). */
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || colon - s > 253) {
		return false;
	}
	for (const char *c = s; c < colon; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') ||
		          (*c >= 'A' && *c <= 'Z') ||
		          (*c >= '0' && *c <= '9') || *c == '-' || *c == '.';
		if (!ok || (*c == '.' && c[1] == '.')) {
			return false;
		}
	}
	if (s[0] == '.' || s[0] == '-') {
		return false;
	}
	char *end = NULL;
	unsigned long port = strtoul(colon + 1, &end, 10);
	return end != colon + 1 && *end == '\0' && port > 0 && port < 65536;
}

#define MEMBERS_SYNTAX                                                   \
	"write members as ID=RAFT_ADDR,CLIENT_URL[,HTTP_URL] separated " \
	"by ';', e.g. "                                                  \
	"\"1=10.0.0.1:9190,tcp://10.0.0.1:9090,http://10.0.0.1:9091\""

/* Parse one "ID=RAFT,CLIENT[,HTTP]" item [b, e) into m. */
static int member_parse(const char *b, const char *e, struct ctl_member *m,
                        char *errmsg)
{
	char item[4 * CTL_URL_MAX];
	size_t len = (size_t)(e - b);
	memset(m, 0, sizeof(*m));
	if (len >= sizeof(item)) {
		errmsg_set(errmsg,
		           "raft.members: an item of %zu bytes is too "
		           "long; " MEMBERS_SYNTAX,
		           len);
		return STRATA_ECONFIG;
	}
	memcpy(item, b, len);
	item[len] = '\0';
	char *eq = strchr(item, '=');
	char *end = NULL;
	errno = 0;
	unsigned long long id = eq != NULL ? strtoull(item, &end, 10) : 0;
	if (eq == NULL || id == 0 || errno != 0 || end == item ||
	    strspn(end, " \t") != (size_t)(eq - end)) {
		errmsg_set(errmsg,
		           "raft.members: item \"%.40s\" needs a node id > 0 "
		           "before '='; " MEMBERS_SYNTAX,
		           item);
		return STRATA_ECONFIG;
	}
	m->id = id;
	size_t commas = 0;
	for (const char *c = eq; *c != '\0'; c++) {
		commas += *c == ',';
	}
	char *f[3] = {NULL, NULL, NULL};
	char *p = eq + 1;
	int nf = 0;
	while (nf < 3) {
		f[nf++] = p;
		char *comma = strchr(p, ',');
		if (comma == NULL) {
			break;
		}
		*comma = '\0';
		p = comma + 1;
	}
	if (nf < 2 || commas > 2 ||
	    !copy_field(m->raft_address, sizeof(m->raft_address), f[0],
	                f[0] + strlen(f[0])) ||
	    !copy_field(m->client_url, sizeof(m->client_url), f[1],
	                f[1] + strlen(f[1])) ||
	    (nf == 3 && !copy_field(m->http_url, sizeof(m->http_url), f[2],
	                            f[2] + strlen(f[2])))) {
		errmsg_set(
		        errmsg,
		        "raft.members: member %llu needs a Raft address and a "
		        "client URL (and optionally an HTTP "
		        "URL); " MEMBERS_SYNTAX,
		        id);
		return STRATA_ECONFIG;
	}
	if (!ctl_raft_address_ok(m->raft_address)) {
		snprintf(
		        errmsg, STRATA_ERRMSG_SIZE,
		        "raft.members: member %llu has Raft address \"%.60s\"; "
		        "use host:port such as 10.0.0.1:9190 or ctl-0.ctl:9190",
		        id, m->raft_address);
		return STRATA_ECONFIG;
	}
	if (strstr(m->client_url, "://") == NULL) {
		errmsg_set(
		        errmsg,
		        "raft.members: member %llu has client URL \"%.60s\"; "
		        "use an NNG URL such as tcp://10.0.0.1:9090",
		        id, m->client_url);
		return STRATA_ECONFIG;
	}
	return 0;
}

int ctl_members_parse(const char *spec, struct ctl_member *out, unsigned *n,
                      char *errmsg)
{
	*n = 0;
	const char *p = spec != NULL ? spec : "";
	while (*p != '\0') {
		const char *e = strchr(p, ';');
		if (e == NULL) {
			e = p + strlen(p);
		}
		const char *b = p;
		while (b < e && (*b == ' ' || *b == '\t')) {
			b++;
		}
		if (b < e) {
			if (*n == CTL_MAX_MEMBERS) {
				errmsg_set(errmsg,
				           "raft.members lists more than %d "
				           "members; use 1, 3 or 5",
				           CTL_MAX_MEMBERS);
				return STRATA_ECONFIG;
			}
			int rc = member_parse(b, e, &out[*n], errmsg);
			if (rc != 0) {
				return rc;
			}
			for (unsigned i = 0; i < *n; i++) {
				if (out[i].id == out[*n].id) {
					errmsg_set(errmsg,
					           "raft.members lists node id "
					           "%" PRIu64
					           " twice; give every "
					           "member its own id",
					           out[i].id);
					return STRATA_ECONFIG;
				}
			}
			(*n)++;
		}
		p = *e == ';' ? e + 1 : e;
	}
	if (*n == 0) {
		errmsg_set(errmsg, "raft.members is empty; " MEMBERS_SYNTAX);
		return STRATA_ECONFIG;
	}
	return 0;
}

/* ------------------------------------------------------------ waiters -- */

/* Under s->lock: move satisfied waiters (or all, when all) to *out. */
static void waiters_collect(struct ctl_service *s, bool all, uint64_t now,
                            struct waiter **sat, struct waiter **unsat)
{
	struct waiter **pp = &s->waiters;
	while (*pp != NULL) {
		struct waiter *w = *pp;
		bool ok = !all && w->pred(&s->fsm, w->arg);
		bool expired =
		        all || (!ok && now != 0 && now >= w->deadline_ms);
		if (!ok && !expired) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (ok) {
			w->next = *sat;
			*sat = w;
		} else {
			w->next = *unsat;
			*unsat = w;
		}
	}
}

/* Without the lock: run and free the collected waiters. */
static void waiters_finish(struct waiter *sat, struct waiter *unsat)
{
	while (sat != NULL) {
		struct waiter *next = sat->next;
		sat->done(sat->arg, true);
		strata_free(sat);
		sat = next;
	}
	while (unsat != NULL) {
		struct waiter *next = unsat->next;
		unsat->done(unsat->arg, false);
		strata_free(unsat);
		unsat = next;
	}
}

int ctl_service_wait(struct ctl_service *s, ctl_wait_pred pred,
                     ctl_wait_done done, void *arg)
{
	struct waiter *w = strata_calloc(1, sizeof(*w));
	if (w == NULL) {
		return STRATA_ENOMEM;
	}
	w->pred = pred;
	w->done = done;
	w->arg = arg;
	w->deadline_ms = clock_mono_ms() + s->wait_ms;
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		strata_free(w);
		return STRATA_ESHUTDOWN;
	}
	if (pred(&s->fsm, arg)) {
		pthread_mutex_unlock(&s->lock);
		strata_free(w);
		done(arg, true);
		return 0;
	}
	w->next = s->waiters;
	s->waiters = w;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void heal(struct ctl_service *s);

static void *timer_main(void *arg)
{
	struct ctl_service *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TIMER_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->timer_cond, &s->lock, &ts);
		struct waiter *sat = NULL, *unsat = NULL;
		waiters_collect(s, s->stopping, clock_mono_ms(), &sat, &unsat);
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		waiters_finish(sat, unsat);
		if (!stopping) {
			heal(s);
		}
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void ctl_service_wait_change(struct ctl_service *s, uint64_t *seen,
                             unsigned timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->lock);
	while (s->change_seq == *seen && !s->stopping) {
		if (pthread_cond_timedwait(&s->changed, &s->lock, &ts) ==
		    ETIMEDOUT) {
			break;
		}
	}
	*seen = s->change_seq;
	pthread_mutex_unlock(&s->lock);
}

/* Under s->lock. */
static void changed_locked(struct ctl_service *s)
{
	s->change_seq++;
	pthread_cond_broadcast(&s->changed);
}

/* -------------------------------------------------------------- hooks -- */

static int hook_apply(void *data, uint64_t index, const void *buf, size_t len,
                      void **result)
{
	struct ctl_service *s = data;
	struct waiter *sat = NULL, *unsat = NULL;
	const uint8_t *b = buf;
	size_t cmd_len = 0;
	for (int i = 3; len >= ENTRY_HEADER && i >= 0; i--) {
		cmd_len = (cmd_len << 8) | b[i];
	}
	const uint8_t *cmd = b + ENTRY_HEADER;
	if (len < ENTRY_HEADER || len % 8 != 0 ||
	    cmd_len > len - ENTRY_HEADER) {
		cmd = b; /* not framed: the FSM rejects it (EPROTO) */
		cmd_len = len;
	}
	pthread_mutex_lock(&s->lock);
	cfsm_apply(&s->fsm, cmd, cmd_len, s->res);
	if (s->res->code == STRATA_ENOMEM) {
		pthread_mutex_unlock(&s->lock);
		return STRATA_ENOMEM; /* never diverge: stall and retry */
	}
	uint32_t conflict = cfsm_count_conflict(&s->fsm);
	s->applied_index = index;
	changed_locked(s);
	if (s->waiters != NULL) {
		waiters_collect(s, false, 0, &sat, &unsat);
	}
	pthread_mutex_unlock(&s->lock);
	waiters_finish(sat, unsat);
	*result = s->res;
	if (conflict != 0 && !atomic_exchange(&s->fatal, true)) {
		char msg[STRATA_ERRMSG_SIZE];
		snprintf(msg, sizeof(msg),
		         "containers.count is %" PRIu32 " but this cluster was "
		         "created with %" PRIu32 " containers (its Raft log "
		         "says so): set containers.count to %" PRIu32
		         "; the count is fixed for the life of a cluster, and "
		         "with another one segments are looked for in the "
		         "wrong containers",
		         s->container_count, conflict, conflict);
		LOG_ERROR(COMP, "node %" PRIu64 " stops serving: %s",
		          s->node_id, msg);
		if (s->on_fatal != NULL) {
			s->on_fatal(s->fatal_arg, msg);
		}
	}
	return 0;
}

static int hook_snapshot(void *data, void **buf, size_t *len)
{
	struct ctl_service *s = data;
	uint8_t *b = NULL;
	pthread_mutex_lock(&s->lock);
	int rc = cfsm_snapshot(&s->fsm, &b, len);
	pthread_mutex_unlock(&s->lock);
	*buf = b;
	return rc;
}

static int hook_restore(void *data, const void *buf, size_t len)
{
	struct ctl_service *s = data;
	char errmsg[STRATA_ERRMSG_SIZE];
	struct waiter *sat = NULL, *unsat = NULL;
	pthread_mutex_lock(&s->lock);
	int rc = cfsm_restore(&s->fsm, buf, len, errmsg);
	if (rc == 0) {
		changed_locked(s);
		waiters_collect(s, false, 0, &sat, &unsat);
	}
	pthread_mutex_unlock(&s->lock);
	waiters_finish(sat, unsat);
	if (rc != 0) {
		LOG_ERROR(COMP, "restore controller snapshot of %zu bytes: %s",
		          len, errmsg);
	}
	return rc;
}

static void hook_role(void *data, const struct raft_group_status *st)
{
	struct ctl_service *s = data;
	pthread_mutex_lock(&s->lock);
	bool was_ready = s->st.ready;
	s->st = *st;
	changed_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (st->ready && !was_ready) {
		LOG_INFO(COMP,
		         "node %" PRIu64
		         " leads the controller in term %" PRIu64 " and serves",
		         s->node_id, st->term);
	} else if (!st->ready && was_ready) {
		LOG_INFO(COMP,
		         "node %" PRIu64 " stopped leading (term %" PRIu64
		         ", leader %" PRIu64 ")",
		         s->node_id, st->term, st->leader_id);
	}
}

/* ---------------------------------------------------------- lifecycle -- */

/* Start s->group from s->gcfg (the Raft log loads: may take a while). */
static int group_start(struct ctl_service *s, struct raft_group **out,
                       char *errmsg)
{
	struct raft_group_fsm hooks = {.data = s,
	                               .apply = hook_apply,
	                               .snapshot = hook_snapshot,
	                               .restore = hook_restore,
	                               .role_changed = hook_role};
	return raft_group_start(s->host, &s->gcfg, &hooks, out, errmsg);
}

/* The group for one call (read side of group_lock; NULL while heal()
 * restarts it); group_put() after the call. */
static struct raft_group *group_get(struct ctl_service *s)
{
	pthread_rwlock_rdlock(&s->group_lock);
	return s->group;
}

static void group_put(struct ctl_service *s)
{
	pthread_rwlock_unlock(&s->group_lock);
}

/* Stop the failed group, empty the FSM (the new group replays the
 * snapshot and log into it) and start a new group. False if it did not
 * start (heal() tries again later). Timer thread. */
static bool restart_group(struct ctl_service *s)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	struct cfsm fresh;
	if (cfsm_init(&fresh, s->container_count, errmsg) != 0) {
		LOG_ERROR(COMP, "node %" PRIu64 ": restart the replica: %s",
		          s->node_id, errmsg);
		return false;
	}
	pthread_rwlock_wrlock(&s->group_lock);
	struct raft_group *old = s->group;
	s->group = NULL;
	pthread_rwlock_unlock(&s->group_lock);
	if (old != NULL) {
		raft_group_stop(old); /* its proposals fail: ESHUTDOWN */
	}
	struct waiter *sat = NULL, *unsat = NULL;
	pthread_mutex_lock(&s->lock);
	cfsm_close(&s->fsm);
	s->fsm = fresh;
	s->applied_index = 0;
	memset(&s->st, 0, sizeof(s->st)); /* unavailable until it reports */
	changed_locked(s);
	waiters_collect(s, false, 0, &sat, &unsat);
	pthread_mutex_unlock(&s->lock);
	waiters_finish(sat, unsat);
	struct raft_group *g = NULL;
	int rc = group_start(s, &g, errmsg);
	if (rc != 0) {
		LOG_ERROR(COMP,
		          "node %" PRIu64 ": its Raft replica did not start "
		          "again: %s",
		          s->node_id, errmsg);
		return false;
	}
	pthread_rwlock_wrlock(&s->group_lock);
	s->group = g;
	pthread_rwlock_unlock(&s->group_lock);
	return true;
}

/* Restart, after a wait, a replica that left its group because its Raft
 * log failed (or that did not start again): like the segment store's
 * containers (segmentstore/cluster.c, heal), a passing error or a disk
 * that has space again recovers without restarting the process; a replica
 * that keeps failing waits twice as long each time, up to HEAL_MAX_MS.
 * Timer thread. */
static void heal(struct ctl_service *s)
{
	uint64_t now = clock_mono_ms();
	pthread_mutex_lock(&s->lock);
	bool failed = s->st.log_failed;
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_rdlock(&s->group_lock);
	failed = failed || s->group == NULL;
	pthread_rwlock_unlock(&s->group_lock);
	if (!failed) {
		if (s->heal_wait_ms != 0 &&
		    now - s->healed_ms >= HEAL_RESET_MS) {
			s->heal_wait_ms = 0; /* recovered for good */
		}
		return;
	}
	if (s->heal_at_ms == 0) {
		s->heal_wait_ms = s->heal_wait_ms == 0 ? s->recover_ms
		                  : 2 * s->heal_wait_ms > HEAL_MAX_MS
		                          ? HEAL_MAX_MS
		                          : 2 * s->heal_wait_ms;
		s->heal_at_ms = now + s->heal_wait_ms;
		pthread_mutex_lock(&s->lock);
		s->restart_at_ms = s->heal_at_ms;
		changed_locked(s);
		pthread_mutex_unlock(&s->lock);
		LOG_WARN(COMP,
		         "node %" PRIu64 ": its controller replica is out of "
		         "the Raft group (%s); restarting it in %" PRIu64
		         " s (it reloads its log from %s; nothing acknowledged "
		         "is lost)",
		         s->node_id,
		         s->heal_restarts == 0 || s->group != NULL
		                 ? "a write to its Raft log failed"
		                 : "it did not start again",
		         (s->heal_wait_ms + 999) / 1000, s->dir);
		return;
	}
	if (now < s->heal_at_ms) {
		return;
	}
	s->heal_at_ms = 0;
	s->healed_ms = now;
	s->heal_restarts++;
	LOG_INFO(COMP,
	         "node %" PRIu64 ": restarting its controller replica after "
	         "a Raft log failure",
	         s->node_id);
	bool ok = restart_group(s);
	pthread_mutex_lock(&s->lock);
	s->restart_at_ms = 0;
	changed_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (ok) {
		LOG_INFO(COMP,
		         "node %" PRIu64 ": controller replica started again "
		         "(restart %" PRIu64 ")",
		         s->node_id, s->heal_restarts);
	}
}

int ctl_service_start(const struct ctl_service_config *cfg,
                      struct ctl_service **out, char *errmsg)
{
	int rc;
	if (cfg->n_members == 0 || cfg->n_members > CTL_MAX_MEMBERS ||
	    ctl_member_find(cfg->members, cfg->n_members, cfg->node_id) ==
	            NULL) {
		errmsg_set(errmsg,
		           "node.id %" PRIu64 " is not in raft.members (%u "
		           "members); add it or fix node.id",
		           cfg->node_id, cfg->n_members);
		return STRATA_ECONFIG;
	}
	struct ctl_service *s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		errmsg_set(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	s->res = strata_calloc(1, sizeof(*s->res));
	if (s->res == NULL) {
		strata_free(s);
		errmsg_set(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	memcpy(s->members, cfg->members, cfg->n_members * sizeof(*s->members));
	s->n_members = cfg->n_members;
	s->node_id = cfg->node_id;
	s->wait_ms = cfg->wait_ms ? cfg->wait_ms : 3000;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->changed, NULL);
	pthread_cond_init(&s->timer_cond, NULL);
	pthread_rwlock_init(&s->group_lock, NULL);
	s->container_count = cfg->container_count;
	s->on_fatal = cfg->on_fatal;
	s->fatal_arg = cfg->fatal_arg;
	atomic_init(&s->fatal, false);
	s->recover_ms = cfg->recover_ms ? cfg->recover_ms : HEAL_MS;
	rc = cfsm_init(&s->fsm, cfg->container_count, errmsg);
	if (rc != 0) {
		goto err_free;
	}
	struct raft_host_config hc = {.bind_address = cfg->raft_listen};
	char herr[STRATA_ERRMSG_SIZE];
	rc = raft_host_new(&hc, &s->host, herr);
	if (rc != 0) {
		/* Name the key to change (raft.listen in every binary). */
		errmsg_set(errmsg, "raft.listen: %.230s", herr);
		goto err_fsm;
	}
	for (unsigned i = 0; i < s->n_members; i++) {
		s->peers[i].id = s->members[i].id;
		s->peers[i].address = s->members[i].raft_address;
	}
	int dl = snprintf(s->dir, sizeof(s->dir), "%s/raft", cfg->data_dir);
	if (dl < 0 || (size_t)dl >= sizeof(s->dir)) {
		errmsg_set(errmsg, "data_dir \"%.80s...\" is too long",
		           cfg->data_dir);
		rc = STRATA_ECONFIG;
		goto err_host;
	}
	s->gcfg = (struct raft_group_config){
	        .group_id = CTL_RAFT_GROUP_ID,
	        .node_id = cfg->node_id,
	        .data_dir = s->dir,
	        .peers = s->peers,
	        .n_peers = s->n_members,
	        .election_ms = cfg->election_ms,
	        .heartbeat_ms = cfg->heartbeat_ms,
	        .snapshot_bytes = cfg->snapshot_bytes,
	        .join = cfg->join,
	        .self_address =
	                ctl_member_find(s->members, s->n_members, cfg->node_id)
	                        ->raft_address,
	};
	rc = group_start(s, &s->group, errmsg);
	if (rc != 0) {
		goto err_host;
	}
	if (pthread_create(&s->timer, NULL, timer_main, s) != 0) {
		errmsg_set(errmsg, "start the controller timer thread failed");
		rc = STRATA_EIO;
		goto err_group;
	}
	s->timer_started = true;
	LOG_INFO(COMP,
	         "node %" PRIu64 " started: %u members, %u containers, Raft "
	         "port %u, data in %s",
	         s->node_id, s->n_members, cfg->container_count,
	         raft_host_port(s->host), s->dir);
	*out = s;
	return 0;

err_group:
	raft_group_stop(s->group);
err_host:
	raft_host_free(s->host);
err_fsm:
	cfsm_close(&s->fsm);
err_free:
	pthread_rwlock_destroy(&s->group_lock);
	pthread_cond_destroy(&s->timer_cond);
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	strata_free(s->res);
	strata_free(s);
	return rc;
}

void ctl_service_stop(struct ctl_service *s)
{
	if (s == NULL) {
		return;
	}
	/* The timer first: it may be restarting the group (heal). */
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->timer_cond);
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	if (s->timer_started) {
		pthread_join(s->timer, NULL);
	}
	raft_group_stop(s->group);
	raft_host_free(s->host);
	/* The timer failed every waiter on its way out; catch late ones. */
	struct waiter *sat = NULL, *unsat = NULL;
	pthread_mutex_lock(&s->lock);
	waiters_collect(s, true, 0, &sat, &unsat);
	pthread_mutex_unlock(&s->lock);
	waiters_finish(sat, unsat);
	cfsm_close(&s->fsm);
	pthread_rwlock_destroy(&s->group_lock);
	pthread_cond_destroy(&s->timer_cond);
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	strata_free(s->res);
	strata_free(s);
}

/* ------------------------------------------------------------- access -- */

const struct cfsm *ctl_service_lock(struct ctl_service *s)
{
	pthread_mutex_lock(&s->lock);
	return &s->fsm;
}

void ctl_service_unlock(struct ctl_service *s)
{
	pthread_mutex_unlock(&s->lock);
}

uint64_t ctl_service_applied_locked(const struct ctl_service *s)
{
	return s->applied_index;
}

void ctl_service_status(struct ctl_service *s, struct ctl_status *out)
{
	struct raft_group_metrics m;
	memset(&m, 0, sizeof(m));
	struct raft_group *g = group_get(s);
	if (g != NULL) {
		raft_group_metrics(g, &m);
	}
	group_put(s);
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	out->role = s->st.role;
	out->ready = s->st.ready;
	out->term = s->st.term;
	out->leader_id = s->st.leader_id;
	out->applied_index = s->applied_index;
	out->log_failed = s->st.log_failed || g == NULL;
	uint64_t at = s->restart_at_ms;
	pthread_mutex_unlock(&s->lock);
	uint64_t now = clock_mono_ms();
	out->restart_in_ms = at > now ? at - now : 0;
	out->restarting = g == NULL;
	out->data_dir = s->dir;
	out->node_id = s->node_id;
	out->commit_index = m.commit_index;
	out->last_index = m.last_index;
	out->snapshot_index = m.snapshot_index;
	out->applied_entries = m.applied_entries;
}

bool ctl_service_is_ready(struct ctl_service *s)
{
	if (atomic_load(&s->fatal)) {
		return false;
	}
	struct raft_group *g = group_get(s);
	bool ready = g != NULL && raft_group_is_ready(g);
	group_put(s);
	return ready;
}

const struct ctl_member *ctl_member_find(const struct ctl_member *members,
                                         unsigned n, uint64_t id)
{
	for (unsigned i = 0; i < n; i++) {
		if (members[i].id == id) {
			return &members[i];
		}
	}
	return NULL;
}

const struct ctl_member *ctl_service_member(const struct ctl_service *s,
                                            uint64_t id)
{
	return ctl_member_find(s->members, s->n_members, id);
}

bool ctl_service_member_url(struct ctl_service *s, uint64_t id, char *buf,
                            size_t size)
{
	bool found = false;
	pthread_mutex_lock(&s->lock);
	const Strata__V1__ControllerEndpoint *ep =
	        cfsm_find_controller(&s->fsm, id);
	if (ep != NULL && ep->client_url[0] != '\0') {
		snprintf(buf, size, "%s", ep->client_url);
		found = true;
	}
	pthread_mutex_unlock(&s->lock);
	const struct ctl_member *m = ctl_service_member(s, id);
	if (!found && m != NULL) {
		snprintf(buf, size, "%s", m->client_url);
		found = true;
	}
	return found;
}

unsigned ctl_service_raft_members(struct ctl_service *s,
                                  struct raft_group_member *out, unsigned max,
                                  bool *committed)
{
	struct raft_group *g = group_get(s);
	unsigned n = 0;
	if (g != NULL) {
		n = raft_group_members(g, out, max, committed);
	} else if (committed != NULL) {
		*committed = false;
	}
	group_put(s);
	return n;
}

int ctl_service_set_voters(struct ctl_service *s,
                           const struct raft_group_peer *voters, unsigned n,
                           raft_group_change_cb cb, void *arg)
{
	struct raft_group *g = group_get(s);
	int rc = g != NULL ? raft_group_set_members(g, voters, n, cb, arg)
	                   : STRATA_EUNAVAIL;
	group_put(s);
	return rc;
}

const struct ctl_member *ctl_service_members(const struct ctl_service *s,
                                             unsigned *n)
{
	*n = s->n_members;
	return s->members;
}

/* ---------------------------------------------------------- proposals -- */

struct prop {
	ctl_propose_cb cb; /* owner callback */
	void *arg;         /* its argument */
};

static void prop_done(void *arg, int status, void *result)
{
	struct prop *p = arg;
	ctl_propose_cb cb = p->cb;
	void *cb_arg = p->arg;
	strata_free(p);
	cb(cb_arg, status, status == 0 ? result : NULL);
}

int ctl_service_propose(struct ctl_service *s,
                        const Strata__V1__ControllerCommand *cmd,
                        ctl_propose_cb cb, void *arg)
{
	size_t len = protobuf_c_message_get_packed_size(&cmd->base);
	if (len > UINT32_MAX - ENTRY_HEADER - 8) {
		return STRATA_ETOOBIG;
	}
	size_t framed = ENTRY_HEADER + ((len + 7) & ~(size_t)7);
	uint8_t *buf = strata_calloc(1, framed);
	struct prop *p = strata_malloc(sizeof(*p));
	if (buf == NULL || p == NULL) {
		strata_free(buf);
		strata_free(p);
		return STRATA_ENOMEM;
	}
	for (int i = 0; i < 4; i++) {
		buf[i] = (uint8_t)(len >> (8 * i));
	}
	protobuf_c_message_pack(&cmd->base, buf + ENTRY_HEADER);
	p->cb = cb;
	p->arg = arg;
	struct raft_group *g = group_get(s);
	int rc = g != NULL ? raft_group_apply(g, buf, framed, prop_done, p)
	                   : STRATA_EUNAVAIL;
	group_put(s);
	strata_free(buf);
	if (rc != 0) {
		strata_free(p);
	}
	return rc;
}

struct sync_prop {
	pthread_mutex_t lock;    /* guards the fields below */
	pthread_cond_t cond;     /* signalled when done */
	bool done;               /* callback ran */
	int status;              /* its status */
	struct cfsm_result *res; /* copy target, may be NULL */
};

static void sync_done(void *arg, int status, const struct cfsm_result *res)
{
	struct sync_prop *sp = arg;
	pthread_mutex_lock(&sp->lock);
	sp->status = status != 0 ? status : res->code;
	if (sp->res != NULL && res != NULL) {
		memcpy(sp->res, res, sizeof(*res));
	}
	sp->done = true;
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
}

int ctl_service_propose_sync(struct ctl_service *s,
                             const Strata__V1__ControllerCommand *cmd,
                             struct cfsm_result *res)
{
	struct sync_prop sp = {.done = false, .status = 0, .res = res};
	pthread_mutex_init(&sp.lock, NULL);
	pthread_cond_init(&sp.cond, NULL);
	int rc = ctl_service_propose(s, cmd, sync_done, &sp);
	if (rc == 0) {
		pthread_mutex_lock(&sp.lock);
		while (!sp.done) {
			pthread_cond_wait(&sp.cond, &sp.lock);
		}
		pthread_mutex_unlock(&sp.lock);
		rc = sp.status;
	}
	pthread_cond_destroy(&sp.cond);
	pthread_mutex_destroy(&sp.lock);
	return rc;
}
