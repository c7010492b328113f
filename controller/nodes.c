/* Controller membership: segment stores with leases, and the container ->
 * replica-set assignment with a deterministic, minimal-move rebalance.
 *
 * Rule (docs/controller.md): R = min(3, live stores). Replicas on stores
 * that are not live are dropped; sets larger than R lose their member with
 * the highest load; sets smaller than R gain the live store with the lowest
 * load; then, while the busiest store holds 2+ more replicas than the
 * idlest, one replica moves from the busiest to the idlest (lowest
 * container first). Ties go to the smallest store id. Only these moves
 * happen, so a join or a death moves about as few replicas as balance
 * allows.
 */
#include "controller/fsm_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#define NODE_ID_MAX 255

static int check_id(const char *id, const char *what, struct cfsm_result *res)
{
	size_t len = strlen(id);
	if (len == 0 || len > NODE_ID_MAX) {
		return fsm_fail(res, STRATA_EINVAL,
		                "segment store %s of %zu bytes is invalid; use "
		                "1..%d printable characters",
		                what, len, NODE_ID_MAX);
	}
	for (size_t i = 0; i < len; i++) {
		if (id[i] <= ' ' || id[i] > '~') {
			return fsm_fail(
			        res, STRATA_EINVAL,
			        "segment store %s \"%.64s\" has a space "
			        "or control character at %zu; use "
			        "printable characters",
			        what, id, i);
		}
	}
	return 0;
}

static size_t node_index(const Strata__V1__ControllerState *st, const char *id,
                         bool *found)
{
	size_t lo = 0, hi = st->n_nodes;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(st->nodes[mid]->id, id) < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = lo < st->n_nodes && strcmp(st->nodes[lo]->id, id) == 0;
	return lo;
}

/* ----------------------------------------------------------- rebalance -- */

/* Index of id in the sorted live list, or -1. */
static int live_index(char *const *live, size_t n, const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(live[mid], id);
		if (c == 0) {
			return (int)mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return -1;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static bool set_has(const int *set, size_t n, int x)
{
	for (size_t i = 0; i < n; i++) {
		if (set[i] == x) {
			return true;
		}
	}
	return false;
}

/* Compute the sets; sets is C rows of CFSM_REPLICAS node indexes. */
static void assign(const Strata__V1__ControllerState *st, char *const *live,
                   int n_live, int *sets, size_t *sizes, int *load)
{
	size_t C = st->n_containers;
	int R = n_live < CFSM_REPLICAS ? n_live : CFSM_REPLICAS;
	for (size_t c = 0; c < C; c++) {
		const Strata__V1__ContainerAssignment *a = st->containers[c];
		int *set = &sets[c * CFSM_REPLICAS];
		sizes[c] = 0;
		for (size_t i = 0; i < a->n_replicas; i++) {
			int x = live_index(live, (size_t)n_live,
			                   a->replicas[i]);
			if (x >= 0 && sizes[c] < CFSM_REPLICAS &&
			    !set_has(set, sizes[c], x)) {
				set[sizes[c]++] = x;
				load[x]++;
			}
		}
	}
	for (size_t c = 0; c < C; c++) { /* trim */
		int *set = &sets[c * CFSM_REPLICAS];
		while ((int)sizes[c] > R) {
			size_t worst = 0;
			for (size_t i = 1; i < sizes[c]; i++) {
				int x = set[i], w = set[worst];
				if (load[x] > load[w] ||
				    (load[x] == load[w] && x > w)) {
					worst = i;
				}
			}
			load[set[worst]]--;
			set[worst] = set[--sizes[c]];
		}
	}
	for (size_t c = 0; c < C; c++) { /* fill */
		int *set = &sets[c * CFSM_REPLICAS];
		while ((int)sizes[c] < R) {
			int best = -1;
			for (int x = 0; x < n_live; x++) {
				if (!set_has(set, sizes[c], x) &&
				    (best < 0 || load[x] < load[best])) {
					best = x;
				}
			}
			set[sizes[c]++] = best;
			load[best]++;
		}
	}
	for (;;) { /* balance: each move lowers the sum of squared loads */
		int hi = 0, lo = 0;
		for (int x = 1; x < n_live; x++) {
			hi = load[x] > load[hi] ? x : hi;
			lo = load[x] < load[lo] ? x : lo;
		}
		if (n_live == 0 || load[hi] - load[lo] <= 1) {
			break;
		}
		for (size_t c = 0; c < C; c++) {
			int *set = &sets[c * CFSM_REPLICAS];
			if (!set_has(set, sizes[c], hi) ||
			    set_has(set, sizes[c], lo)) {
				continue;
			}
			for (size_t i = 0; i < sizes[c]; i++) {
				if (set[i] == hi) {
					set[i] = lo;
				}
			}
			load[hi]--;
			load[lo]++;
			break;
		}
	}
	for (size_t c = 0; c < C; c++) {
		qsort(&sets[c * CFSM_REPLICAS], sizes[c], sizeof(int), cmp_int);
	}
}

/* Does container a already hold exactly these replicas? */
static bool same_set(const Strata__V1__ContainerAssignment *a,
                     char *const *live, const int *set, size_t n)
{
	if (a->n_replicas != n) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(a->replicas[i], live[set[i]]) != 0) {
			return false;
		}
	}
	return true;
}

/* Recompute replica sets for the live ids (sorted, borrowed); commits all
 * or nothing. */
static int rebalance_live(Strata__V1__ControllerState *st, char *const *live,
                          int n_live)
{
	size_t C = st->n_containers;
	int *sets = strata_calloc(C * CFSM_REPLICAS + 1, sizeof(int));
	size_t *sizes = strata_calloc(C + 1, sizeof(size_t));
	int *load = strata_calloc((size_t)n_live + 1, sizeof(int));
	char ***fresh = strata_calloc(C + 1, sizeof(char **));
	int rc = STRATA_ENOMEM;
	if (sets == NULL || sizes == NULL || load == NULL || fresh == NULL) {
		goto out;
	}
	assign(st, live, n_live, sets, sizes, load);
	bool changed = false;
	for (size_t c = 0; c < C; c++) {
		const int *set = &sets[c * CFSM_REPLICAS];
		if (same_set(st->containers[c], live, set, sizes[c])) {
			continue;
		}
		changed = true;
		fresh[c] = strata_calloc(CFSM_REPLICAS + 1, sizeof(char *));
		if (fresh[c] == NULL) {
			goto out;
		}
		for (size_t i = 0; i < sizes[c]; i++) {
			if ((fresh[c][i] = strata_strdup(live[set[i]])) ==
			    NULL) {
				goto out;
			}
		}
	}
	for (size_t c = 0; c < C; c++) { /* commit: cannot fail */
		Strata__V1__ContainerAssignment *a = st->containers[c];
		if (fresh[c] == NULL) {
			continue;
		}
		for (size_t i = 0; i < a->n_replicas; i++) {
			strata_free(a->replicas[i]);
		}
		strata_free(a->replicas);
		a->replicas = fresh[c];
		a->n_replicas = sizes[c];
		fresh[c] = NULL;
		bool leader_kept = false;
		for (size_t i = 0; i < a->n_replicas; i++) {
			leader_kept |= strcmp(a->replicas[i], a->leader) == 0;
		}
		if (!leader_kept && a->leader != protobuf_c_empty_string) {
			strata_free(a->leader);
			a->leader = (char *)protobuf_c_empty_string;
		}
	}
	if (changed) {
		st->assignment_version++;
	}
	rc = 0;
out:
	for (size_t c = 0; fresh != NULL && c < C; c++) {
		for (size_t i = 0; fresh[c] != NULL && i < CFSM_REPLICAS; i++) {
			strata_free(fresh[c][i]);
		}
		strata_free(fresh[c]);
	}
	strata_free(fresh);
	strata_free(load);
	strata_free(sizes);
	strata_free(sets);
	return rc;
}

/* Rebalance for the nodes marked alive, treating extra (may be NULL) as
 * alive, skip (may be NULL) as dead, and, when now is not NULL, nodes whose
 * lease ends at or before *now as dead. */
static int rebalance_with(Strata__V1__ControllerState *st, const char *extra,
                          const char *skip, const uint64_t *now)
{
	char **live = strata_calloc(st->n_nodes + 2, sizeof(char *));
	if (live == NULL) {
		return STRATA_ENOMEM;
	}
	int n = 0;
	bool extra_done = extra == NULL;
	for (size_t i = 0; i < st->n_nodes; i++) {
		const Strata__V1__StoreNode *nd = st->nodes[i];
		if (!extra_done && strcmp(extra, nd->id) <= 0) {
			live[n++] = (char *)extra;
			extra_done = true;
			if (strcmp(extra, nd->id) == 0) {
				continue;
			}
		}
		bool expired = now != NULL && nd->lease_expiry_ms <= *now;
		if (nd->alive && !expired &&
		    (skip == NULL || strcmp(skip, nd->id) != 0)) {
			live[n++] = nd->id;
		}
	}
	if (!extra_done) {
		live[n++] = (char *)extra;
	}
	int rc = rebalance_live(st, live, n);
	strata_free(live);
	return rc;
}

int nodes_rebalance(Strata__V1__ControllerState *st)
{
	return rebalance_with(st, NULL, NULL, NULL);
}

/* ---------------------------------------------------------- membership -- */

#define ROLE_LEADER 3 /* ContainerRole.role of a leader */

static void free_strs(char **strs, size_t n)
{
	for (size_t i = 0; strs != NULL && i < n; i++) {
		strata_free(strs[i]);
	}
	strata_free(strs);
}

/* Does role report r of node id make id the container's recorded leader
 * (a leader report, id a replica, term not older, not already so)? */
static bool role_sets_leader(const Strata__V1__ControllerState *st,
                             const char *id, const Strata__V1__ContainerRole *r)
{
	if (r == NULL || r->role != ROLE_LEADER ||
	    r->container >= st->n_containers) {
		return false;
	}
	const Strata__V1__ContainerAssignment *a = st->containers[r->container];
	bool replica = false;
	for (size_t i = 0; i < a->n_replicas; i++) {
		replica |= strcmp(a->replicas[i], id) == 0;
	}
	if (!replica || r->term < a->leader_term) {
		return false;
	}
	return strcmp(a->leader, id) != 0 || r->term != a->leader_term;
}

/* Free *dst unless it is the shared empty string, then store s (owned). */
static void replace_str(char **dst, char *s)
{
	if (*dst != NULL && *dst != protobuf_c_empty_string) {
		strata_free(*dst);
	}
	*dst = s;
}

/* Copies of the endpoint strings of a registration into ep[3]. */
static int endpoint_dup(const Strata__V1__RegisterStoreCmd *c, char *ep[3])
{
	const char *src[3] = {c->client_url, c->raft_address, c->http_url};
	for (int i = 0; i < 3; i++) {
		ep[i] = strata_strdup(src[i] != NULL ? src[i] : "");
		if (ep[i] == NULL) {
			for (int j = 0; j < i; j++) {
				strata_free(ep[j]);
				ep[j] = NULL;
			}
			return STRATA_ENOMEM;
		}
	}
	return 0;
}

static int node_oom(struct cfsm_result *res, const char *id)
{
	return fsm_fail(res, STRATA_ENOMEM,
	                "out of memory updating segment store \"%.64s\"", id);
}

int nodes_register(struct cfsm *f, const Strata__V1__RegisterStoreCmd *c,
                   struct cfsm_result *res)
{
	Strata__V1__ControllerState *st = f->st;
	int rc = check_id(c->node_id, "id", res);
	if (rc == 0) {
		rc = check_id(c->address, "address", res);
	}
	if (rc != 0) {
		return rc;
	}
	if (c->lease_ms == 0) {
		return fsm_fail(res, STRATA_EINVAL,
		                "segment store \"%s\" registers with a 0 ms "
		                "lease; give a lease > 0",
		                c->node_id);
	}
	bool found;
	size_t at = node_index(st, c->node_id, &found);
	const Strata__V1__StoreNode *held = found ? st->nodes[at] : NULL;
	if (held != NULL && held->alive && c->now_ms < held->lease_expiry_ms &&
	    strcmp(held->address, c->address) != 0) {
		/* Two stores under one id would share its replicas' Raft
		 * identity; one that moved waits for its old lease. */
		return fsm_fail(
		        res, STRATA_EEXIST,
		        "segment store id %.20s is held by a live store "
		        "at %.80s, and a store at %.80s registers it: "
		        "give every store its own node.id (a store that "
		        "moved is let in once the old lease ends, in "
		        "%" PRIu64 " ms)",
		        c->node_id, held->address, c->address,
		        held->lease_expiry_ms - c->now_ms);
	}
	char *addr = strata_strdup(c->address);
	char *ep[3] = {NULL, NULL, NULL}; /* client_url, raft, http */
	Strata__V1__StoreNode *nd = NULL;
	if (addr == NULL || endpoint_dup(c, ep) != 0) {
		strata_free(addr);
		return node_oom(res, c->node_id);
	}
	if (!found) {
		nd = pb_new(&strata__v1__store_node__descriptor);
		if (nd == NULL || pb_strdup(&nd->id, c->node_id) != 0 ||
		    pb_reserve(&st->nodes, st->n_nodes, 1,
		               sizeof(*st->nodes)) != 0) {
			goto err_oom;
		}
	}
	bool was_alive = found && st->nodes[at]->alive;
	if (!was_alive && rebalance_with(st, c->node_id, NULL, NULL) != 0) {
		goto err_oom;
	}
	if (!found) {
		memmove(&st->nodes[at + 1], &st->nodes[at],
		        (st->n_nodes - at) * sizeof(*st->nodes));
		st->nodes[at] = nd;
		st->n_nodes++;
	}
	nd = st->nodes[at];
	if (nd->address != protobuf_c_empty_string) {
		strata_free(nd->address);
	}
	nd->address = addr;
	replace_str(&nd->client_url, ep[0]);
	replace_str(&nd->raft_address, ep[1]);
	replace_str(&nd->http_url, ep[2]);
	nd->alive = true;
	nd->lease_expiry_ms = c->now_ms + c->lease_ms;
	return 0;

err_oom:
	strata_free(addr);
	for (int i = 0; i < 3; i++) {
		strata_free(ep[i]);
	}
	pb_free(nd);
	return node_oom(res, c->node_id);
}

int nodes_heartbeat(struct cfsm *f, const Strata__V1__HeartbeatCmd *c,
                    struct cfsm_result *res)
{
	Strata__V1__ControllerState *st = f->st;
	bool found;
	size_t at = node_index(st, c->node_id, &found);
	if (!found) {
		return fsm_fail(res, STRATA_ENOENT,
		                "segment store \"%.64s\" is not registered; "
		                "register it before sending heartbeats",
		                c->node_id);
	}
	if (c->lease_ms == 0) {
		return fsm_fail(res, STRATA_EINVAL,
		                "heartbeat of segment store \"%s\" has a 0 ms "
		                "lease; give a lease > 0",
		                c->node_id);
	}
	Strata__V1__StoreNode *nd = st->nodes[at];
	/* Leader changes need one copy of the id each: made up front so
	 * that nothing changes when memory runs out. */
	size_t n_set = 0;
	char **ids = NULL; /* ids[i]: copy for report i, NULL = no change */
	for (size_t i = 0; i < c->n_containers; i++) {
		n_set += role_sets_leader(st, nd->id, c->containers[i]);
	}
	if (n_set > 0) {
		ids = strata_calloc(c->n_containers, sizeof(*ids));
		for (size_t i = 0; ids != NULL && i < c->n_containers; i++) {
			if (!role_sets_leader(st, nd->id, c->containers[i])) {
				continue;
			}
			if ((ids[i] = strata_strdup(nd->id)) == NULL) {
				free_strs(ids, i);
				ids = NULL;
			}
		}
		if (ids == NULL) {
			return node_oom(res, c->node_id);
		}
	}
	if (!nd->alive && rebalance_with(st, nd->id, NULL, NULL) != 0) {
		free_strs(ids, ids != NULL ? c->n_containers : 0);
		return node_oom(res, c->node_id);
	}
	nd->alive = true;
	nd->lease_expiry_ms = c->now_ms + c->lease_ms;
	for (size_t i = 0; i < c->n_containers; i++) {
		const Strata__V1__ContainerRole *r = c->containers[i];
		if (ids != NULL && ids[i] != NULL) {
			Strata__V1__ContainerAssignment *a =
			        st->containers[r->container];
			replace_str(&a->leader, ids[i]);
			a->leader_term = r->term;
		} else if (r == NULL) {
			continue;
		} else if (r->container < st->n_containers &&
		           r->role != ROLE_LEADER &&
		           strcmp(st->containers[r->container]->leader,
		                  nd->id) == 0) {
			Strata__V1__ContainerAssignment *a =
			        st->containers[r->container];
			replace_str(&a->leader,
			            (char *)protobuf_c_empty_string);
		}
	}
	strata_free(ids);
	return 0;
}

int nodes_unregister(struct cfsm *f, const Strata__V1__UnregisterStoreCmd *c,
                     struct cfsm_result *res)
{
	Strata__V1__ControllerState *st = f->st;
	bool found;
	size_t at = node_index(st, c->node_id, &found);
	if (!found) {
		return fsm_fail(res, STRATA_ENOENT,
		                "segment store \"%.64s\" is not registered; "
		                "check the id",
		                c->node_id);
	}
	Strata__V1__StoreNode *nd = st->nodes[at];
	if (rebalance_with(st, NULL, nd->id, NULL) != 0) {
		return node_oom(res, c->node_id);
	}
	pb_remove_at((void **)st->nodes, &st->n_nodes, at);
	pb_free(nd);
	return 0;
}

int nodes_tick(struct cfsm *f, uint64_t now_ms, struct cfsm_result *res)
{
	Strata__V1__ControllerState *st = f->st;
	size_t expired = 0;
	for (size_t i = 0; i < st->n_nodes; i++) {
		const Strata__V1__StoreNode *nd = st->nodes[i];
		expired += nd->alive && nd->lease_expiry_ms <= now_ms;
	}
	if (expired == 0) {
		return 0;
	}
	/* Rebalance as if they were dead (all or nothing), then mark. */
	if (rebalance_with(st, NULL, NULL, &now_ms) != 0) {
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory expiring %zu segment stores",
		                expired);
	}
	for (size_t i = 0; i < st->n_nodes; i++) {
		Strata__V1__StoreNode *nd = st->nodes[i];
		if (nd->alive && nd->lease_expiry_ms <= now_ms) {
			nd->alive = false;
		}
	}
	return 0;
}

/* ---------------------------------------------------------- controllers -- */

int nodes_set_controller(struct cfsm *f,
                         const Strata__V1__SetControllerEndpointCmd *c,
                         struct cfsm_result *res)
{
	Strata__V1__ControllerState *st = f->st;
	const Strata__V1__ControllerEndpoint *ep = c->endpoint;
	if (ep == NULL || ep->id == 0) {
		return fsm_fail(res, STRATA_EINVAL,
		                "controller endpoint needs an id > 0");
	}
	size_t at = 0;
	while (at < st->n_controllers && st->controllers[at]->id < ep->id) {
		at++;
	}
	bool found =
	        at < st->n_controllers && st->controllers[at]->id == ep->id;
	if (c->remove) {
		if (found) {
			Strata__V1__ControllerEndpoint *old =
			        st->controllers[at];
			pb_remove_at((void **)st->controllers,
			             &st->n_controllers, at);
			pb_free(old);
		}
		return 0;
	}
	if (ep->raft_address[0] == '\0' || ep->client_url[0] == '\0') {
		return fsm_fail(res, STRATA_EINVAL,
		                "controller %llu needs a Raft address and a "
		                "client URL",
		                (unsigned long long)ep->id);
	}
	Strata__V1__ControllerEndpoint *copy = pb_clone(ep);
	if (copy == NULL ||
	    (!found && pb_reserve(&st->controllers, st->n_controllers, 1,
	                          sizeof(*st->controllers)) != 0)) {
		pb_free(copy);
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory recording controller %llu",
		                (unsigned long long)ep->id);
	}
	if (found) {
		pb_free(st->controllers[at]);
		st->controllers[at] = copy;
		return 0;
	}
	memmove(&st->controllers[at + 1], &st->controllers[at],
	        (st->n_controllers - at) * sizeof(*st->controllers));
	st->controllers[at] = copy;
	st->n_controllers++;
	return 0;
}
