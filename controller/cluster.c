/* Segment-store membership: the store-facing RPC methods 301-304 and the
 * leader's TickCmd ticker (see cluster.h).
 *
 * Happy path: a store calls CLUSTER_REGISTER_STORE once (any replica; a
 * follower redirects it to the leader), which applies RegisterStoreCmd
 * with the leader's clock and the configured lease, and answers the full
 * container assignment; then CLUSTER_HEARTBEAT every lease/3 (HeartbeatCmd
 * with its container roles, same answer). The ticker applies TickCmd once
 * a second on the leader, so a store whose lease ended is marked dead and
 * its containers move (R = min(3, live stores)).
 *
 * Failure modes: container count mismatch -> STRATA_ECONFIG (the store
 * must not start); heartbeat of an unknown store -> STRATA_ENOENT (the
 * store registers again, e.g. after the controller state was rebuilt);
 * not leader -> redirect.
 */
#include "controller/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "common/alloc.h"
#include "common/log.h"
#include "controller/api.h"

#define COMP "controller.cluster"

/* ------------------------------------------------------- assignments -- */

static uint64_t id_num(const char *id)
{
	return strtoull(id, NULL, 10);
}

static void endpoint_fill(const struct cfsm *f, const char *id,
                          Strata__V1__StoreEndpoint *ep)
{
	Strata__V1__StoreEndpoint init = STRATA__V1__STORE_ENDPOINT__INIT;
	*ep = init;
	ep->node_id = id_num(id);
	const Strata__V1__StoreNode *nd = cfsm_find_node(f, id);
	if (nd != NULL) {
		ep->client_url = nd->client_url[0] != '\0' ? nd->client_url
		                                           : nd->address;
		ep->raft_address = nd->raft_address;
		ep->http_url = nd->http_url;
	}
}

static int cmp_ep(const void *a, const void *b)
{
	const Strata__V1__StoreEndpoint *x =
	        *(Strata__V1__StoreEndpoint *const *)a;
	const Strata__V1__StoreEndpoint *y =
	        *(Strata__V1__StoreEndpoint *const *)b;
	return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

int cluster_assignment_build(const struct cfsm *f, uint64_t lease_ms,
                             struct cluster_assignment *a)
{
	const Strata__V1__ControllerState *st = cfsm_state(f);
	size_t C = st->n_containers;
	memset(a, 0, sizeof(*a));
	Strata__V1__AssignmentReply init = STRATA__V1__ASSIGNMENT_REPLY__INIT;
	a->reply = init;
	a->cr = strata_calloc(C + 1, sizeof(*a->cr));
	a->crp = strata_calloc(C + 1, sizeof(*a->crp));
	a->ep = strata_calloc(C * CFSM_REPLICAS + 1, sizeof(*a->ep));
	a->epp = strata_calloc(C * CFSM_REPLICAS + 1, sizeof(*a->epp));
	if (a->cr == NULL || a->crp == NULL || a->ep == NULL ||
	    a->epp == NULL) {
		cluster_assignment_close(a);
		return STRATA_ENOMEM;
	}
	size_t k = 0;
	for (size_t c = 0; c < C; c++) {
		const Strata__V1__ContainerAssignment *ca = st->containers[c];
		Strata__V1__ContainerReplicas ci =
		        STRATA__V1__CONTAINER_REPLICAS__INIT;
		a->cr[c] = ci;
		a->cr[c].container = (uint32_t)c;
		a->cr[c].replicas = &a->epp[k];
		for (size_t i = 0; i < ca->n_replicas && i < CFSM_REPLICAS;
		     i++) {
			endpoint_fill(f, ca->replicas[i], &a->ep[k]);
			a->epp[k] = &a->ep[k];
			a->cr[c].n_replicas++;
			k++;
		}
		qsort(a->cr[c].replicas, a->cr[c].n_replicas,
		      sizeof(*a->cr[c].replicas), cmp_ep);
		a->cr[c].leader_node_id =
		        ca->leader[0] != '\0' ? id_num(ca->leader) : 0;
		a->crp[c] = &a->cr[c];
	}
	a->reply.lease_ms = lease_ms;
	a->reply.assignment_version = st->assignment_version;
	a->reply.container_count = st->container_count;
	a->reply.cluster_id = (char *)cfsm_cluster_id(f); /* borrowed */
	a->reply.containers = a->crp;
	a->reply.n_containers = C;
	return 0;
}

void cluster_assignment_close(struct cluster_assignment *a)
{
	strata_free(a->cr);
	strata_free(a->crp);
	strata_free(a->ep);
	strata_free(a->epp);
	memset(a, 0, sizeof(*a));
}

/* Answer r with the assignment after its command applied. */
static void reply_assignment(struct ctl_req *r, const struct cfsm_result *res)
{
	(void)res;
	struct cluster_assignment a;
	const struct cfsm *f = ctl_service_lock(r->svc);
	int rc =
	        cluster_assignment_build(f, ctl_api_store_lease_ms(r->api), &a);
	uint8_t *buf = NULL;
	size_t len = 0;
	if (rc == 0) {
		len = protobuf_c_message_get_packed_size(&a.reply.base);
		buf = strata_malloc(len > 0 ? len : 1);
		if (buf != NULL) {
			protobuf_c_message_pack(&a.reply.base, buf);
		}
		cluster_assignment_close(&a);
	}
	ctl_service_unlock(r->svc);
	if (buf == NULL) {
		ctl_req_finish(r, STRATA_ENOMEM,
		               "out of memory building the assignment; retry",
		               NULL);
		return;
	}
	ctl_req_finish_raw(r, 0, NULL, NULL, buf, len);
	strata_free(buf);
}

static void reply_empty(struct ctl_req *r, const struct cfsm_result *res)
{
	(void)res;
	ctl_req_finish_raw(r, 0, NULL, NULL, NULL, 0);
}

/* ------------------------------------------------------------ methods -- */

static void serve_register(struct ctl_req *r)
{
	Strata__V1__RegisterStoreRequest *q = (void *)r->msg;
	char msg[STRATA_ERRMSG_SIZE];
	char id[24];
	if (q->store == NULL || q->store->node_id == 0 ||
	    q->store->client_url[0] == '\0') {
		ctl_req_finish(
		        r, STRATA_EINVAL,
		        "register store: the request needs store.node_id "
		        "> 0 and store.client_url; fix the store's "
		        "node.id and listen settings",
		        NULL);
		return;
	}
	const struct cfsm *f = ctl_service_lock(r->svc);
	uint32_t count = cfsm_container_count(f);
	char cluster[65];
	snprintf(cluster, sizeof(cluster), "%s", cfsm_cluster_id(f));
	ctl_service_unlock(r->svc);
	if (q->cluster_id[0] != '\0' && cluster[0] != '\0' &&
	    strcmp(q->cluster_id, cluster) != 0) {
		snprintf(msg, sizeof(msg),
		         "store %" PRIu64 " holds data of cluster %.32s, this "
		         "controller is %.32s: restore the controller's data "
		         "directory if it was emptied or not mounted, or point "
		         "the store at its cluster",
		         q->store->node_id, q->cluster_id, cluster);
		LOG_ERROR(COMP, "registration refused: %s", msg);
		ctl_req_finish(r, STRATA_ECONFIG, msg, NULL);
		return;
	}
	if (q->container_count != count) {
		snprintf(msg, sizeof(msg),
		         "segment store %" PRIu64 " is configured with %" PRIu32
		         " containers but the cluster has %" PRIu32
		         "; set containers.count to %" PRIu32
		         " on the store (it is fixed for the cluster's life)",
		         q->store->node_id, q->container_count, count, count);
		ctl_req_finish(r, STRATA_ECONFIG, msg, NULL);
		return;
	}
	snprintf(id, sizeof(id), "%" PRIu64, q->store->node_id);
	Strata__V1__RegisterStoreCmd c = STRATA__V1__REGISTER_STORE_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.node_id = id;
	c.address = q->store->client_url;
	c.client_url = q->store->client_url;
	c.raft_address = q->store->raft_address;
	c.http_url = q->store->http_url;
	c.now_ms = ctl_now_ms();
	c.lease_ms = ctl_api_store_lease_ms(r->api);
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_REGISTER_STORE;
	cmd.register_store = &c;
	r->after = reply_assignment;
	ctl_req_propose(r, &cmd);
}

static void serve_heartbeat(struct ctl_req *r)
{
	Strata__V1__StoreHeartbeatRequest *q = (void *)r->msg;
	char id[24];
	snprintf(id, sizeof(id), "%" PRIu64, q->node_id);
	Strata__V1__ContainerRole *roles = NULL;
	Strata__V1__ContainerRole **rp = NULL;
	if (q->n_containers > 0) {
		roles = strata_calloc(q->n_containers, sizeof(*roles));
		rp = strata_calloc(q->n_containers, sizeof(*rp));
		if (roles == NULL || rp == NULL) {
			strata_free(roles);
			strata_free(rp);
			ctl_req_finish(r, STRATA_ENOMEM,
			               "out of memory; heartbeat again", NULL);
			return;
		}
	}
	for (size_t i = 0; i < q->n_containers; i++) {
		Strata__V1__ContainerRole init =
		        STRATA__V1__CONTAINER_ROLE__INIT;
		roles[i] = init;
		roles[i].container = q->containers[i]->container;
		roles[i].role = q->containers[i]->role;
		roles[i].term = q->containers[i]->term;
		rp[i] = &roles[i];
	}
	Strata__V1__HeartbeatCmd c = STRATA__V1__HEARTBEAT_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.node_id = id;
	c.now_ms = ctl_now_ms();
	c.lease_ms = ctl_api_store_lease_ms(r->api);
	c.containers = rp;
	c.n_containers = q->n_containers;
	cmd.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_HEARTBEAT;
	cmd.heartbeat = &c;
	r->after = reply_assignment;
	ctl_req_propose(r, &cmd);
	strata_free(roles);
	strata_free(rp);
}

static void serve_unregister(struct ctl_req *r)
{
	Strata__V1__UnregisterStoreRequest *q = (void *)r->msg;
	char id[24];
	snprintf(id, sizeof(id), "%" PRIu64, q->node_id);
	Strata__V1__UnregisterStoreCmd c =
	        STRATA__V1__UNREGISTER_STORE_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.node_id = id;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_UNREGISTER_STORE;
	cmd.unregister_store = &c;
	r->after = reply_empty;
	ctl_req_propose(r, &cmd);
}

static void serve_status(struct ctl_req *r)
{
	Strata__V1__ClusterStatusReply rep =
	        STRATA__V1__CLUSTER_STATUS_REPLY__INIT;
	Strata__V1__ControllerMember cm[CTL_MAX_MEMBERS + 1];
	Strata__V1__ControllerMember *cmp[CTL_MAX_MEMBERS + 1];
	struct raft_group_member rm[CTL_MAX_MEMBERS + 1];
	char urls[CTL_MAX_MEMBERS + 1][CTL_URL_MAX];
	struct ctl_status st;
	/* The Raft configuration this replica follows, with client URLs from
	 * the recorded endpoints (or raft.members). */
	unsigned n =
	        ctl_service_raft_members(r->svc, rm, CTL_MAX_MEMBERS + 1, NULL);
	if (n > CTL_MAX_MEMBERS + 1) {
		n = CTL_MAX_MEMBERS + 1;
	}
	ctl_service_status(r->svc, &st);
	for (unsigned i = 0; i < n; i++) {
		Strata__V1__ControllerMember init =
		        STRATA__V1__CONTROLLER_MEMBER__INIT;
		cm[i] = init;
		cm[i].id = rm[i].id;
		cm[i].raft_address = rm[i].address;
		if (!ctl_service_member_url(r->svc, rm[i].id, urls[i],
		                            sizeof(urls[i]))) {
			urls[i][0] = '\0';
		}
		cm[i].client_url = urls[i];
		cm[i].role = rm[i].id == st.leader_id ? 3
		             : rm[i].id == st.node_id ? st.role
		                                      : 1;
		cmp[i] = &cm[i];
	}
	rep.controllers = cmp;
	rep.n_controllers = n;
	rep.leader_id = st.leader_id;
	rep.term = st.term;
	rep.commit_index = st.commit_index;

	struct cluster_assignment a;
	const struct cfsm *f = ctl_service_lock(r->svc);
	const Strata__V1__ControllerState *fs = cfsm_state(f);
	size_t nn = fs->n_nodes;
	Strata__V1__StoreEndpoint *eps = strata_calloc(nn + 1, sizeof(*eps));
	Strata__V1__StoreEndpoint **epp = strata_calloc(nn + 1, sizeof(*epp));
	protobuf_c_boolean *alive = strata_calloc(nn + 1, sizeof(*alive));
	int rc =
	        cluster_assignment_build(f, ctl_api_store_lease_ms(r->api), &a);
	uint8_t *buf = NULL;
	size_t len = 0;
	if (rc == 0 && eps != NULL && epp != NULL && alive != NULL) {
		for (size_t i = 0; i < nn; i++) {
			endpoint_fill(f, fs->nodes[i]->id, &eps[i]);
			epp[i] = &eps[i];
			alive[i] = fs->nodes[i]->alive;
		}
		rep.stores = epp;
		rep.n_stores = nn;
		rep.store_alive = alive;
		rep.n_store_alive = nn;
		rep.assignment = &a.reply;
		len = protobuf_c_message_get_packed_size(&rep.base);
		buf = strata_malloc(len > 0 ? len : 1);
		if (buf != NULL) {
			protobuf_c_message_pack(&rep.base, buf);
		}
	}
	if (rc == 0) {
		cluster_assignment_close(&a);
	}
	ctl_service_unlock(r->svc);
	strata_free(eps);
	strata_free(epp);
	strata_free(alive);
	if (buf == NULL) {
		ctl_req_finish(r, STRATA_ENOMEM, "out of memory; retry", NULL);
		return;
	}
	ctl_req_finish_raw(r, 0, NULL, NULL, buf, len);
	strata_free(buf);
}

/* --------------------------------------------------------- controllers -- */

/* Outcome of a membership change: answer r. */
static void change_done(void *arg, int status)
{
	struct ctl_req *r = arg;
	char msg[STRATA_ERRMSG_SIZE];
	if (status == STRATA_ENOTLEADER) {
		ctl_req_not_leader(r);
		return;
	}
	Strata__V1__ControllerReply rep = STRATA__V1__CONTROLLER_REPLY__INIT;
	rep.code = (Strata__V1__ErrorCode)status;
	rep.done = status == 0;
	if (status != 0) {
		snprintf(msg, sizeof(msg), "%s: %s; %s",
		         ctl_api_method_name(r->method),
		         strata_strerror(status),
		         status == STRATA_ETIMEDOUT
		                 ? "the new controller did not catch up: check "
		                   "that it runs with raft.join and that its "
		                   "Raft "
		                   "address is reachable, then retry"
		         : status == STRATA_EBUSY
		                 ? "another membership change is in progress; "
		                   "retry"
		                 : "check the cluster status and retry on the "
		                   "leader");
		rep.message = msg;
	}
	ctl_req_finish(r, status, status != 0 ? msg : NULL, &rep.base);
}

/* Current voters (ids and addresses) into out; returns how many. */
static unsigned current_voters(struct ctl_service *svc,
                               struct raft_group_member *m,
                               struct raft_group_peer *out)
{
	unsigned n =
	        ctl_service_raft_members(svc, m, CTL_MAX_MEMBERS + 1, NULL);
	unsigned k = 0;
	for (unsigned i = 0; i < n && i < CTL_MAX_MEMBERS + 1; i++) {
		if (m[i].role == RAFT_MEMBER_VOTER) {
			out[k].id = m[i].id;
			out[k].address = m[i].address;
			k++;
		}
	}
	return k;
}

/* After the endpoint is recorded: make the new node a voter. */
static void add_after(struct ctl_req *r, const struct cfsm_result *res)
{
	(void)res;
	Strata__V1__AddControllerRequest *q = (void *)r->msg;
	struct raft_group_member m[CTL_MAX_MEMBERS + 1];
	struct raft_group_peer v[CTL_MAX_MEMBERS + 2];
	unsigned n = current_voters(r->svc, m, v);
	bool present = false;
	for (unsigned i = 0; i < n; i++) {
		present |= v[i].id == q->endpoint->id;
	}
	if (!present) {
		if (n >= CTL_MAX_MEMBERS) {
			char msg[STRATA_ERRMSG_SIZE];
			snprintf(msg, sizeof(msg),
			         "add controller: the cluster already has %u "
			         "voters (at most %d)",
			         n, CTL_MAX_MEMBERS);
			ctl_req_finish(r, STRATA_EINVAL, msg, NULL);
			return;
		}
		v[n].id = q->endpoint->id;
		v[n].address = q->endpoint->raft_address;
		n++;
	}
	int rc = ctl_service_set_voters(r->svc, v, n, change_done, r);
	if (rc != 0) {
		change_done(r, rc);
	}
}

static void serve_add_controller(struct ctl_req *r)
{
	Strata__V1__AddControllerRequest *q = (void *)r->msg;
	const Strata__V1__ControllerEndpoint *ep = q->endpoint;
	if (ep == NULL || ep->id == 0 ||
	    !ctl_raft_address_ok(ep->raft_address) ||
	    strstr(ep->client_url, "://") == NULL) {
		ctl_req_finish(r, STRATA_EINVAL,
		               "add controller: give endpoint.id > 0, "
		               "endpoint.raft_address as host:port and "
		               "endpoint.client_url as an NNG URL",
		               NULL);
		return;
	}
	/* A voter already: the same endpoint again is a retry (done);
	 * another one would replace the addresses every replica redirects
	 * to while that replica still listens at its old ones. */
	struct raft_group_member m[CTL_MAX_MEMBERS + 1];
	struct raft_group_peer v[CTL_MAX_MEMBERS + 1];
	unsigned n = current_voters(r->svc, m, v);
	for (unsigned i = 0; i < n; i++) {
		if (v[i].id != ep->id) {
			continue;
		}
		const struct cfsm *f = ctl_service_lock(r->svc);
		const Strata__V1__ControllerEndpoint *rec =
		        cfsm_find_controller(f, ep->id);
		bool same = rec != NULL &&
		            strcmp(v[i].address, ep->raft_address) == 0 &&
		            strcmp(rec->client_url, ep->client_url) == 0 &&
		            (ep->http_url[0] == '\0' ||
		             strcmp(rec->http_url, ep->http_url) == 0);
		char msg[STRATA_ERRMSG_SIZE];
		snprintf(msg, sizeof(msg),
		         "add controller: %" PRIu64 " is already a voter "
		         "(raft %.64s, client %.64s); to change its addresses "
		         "remove it first, then add it again",
		         ep->id, v[i].address,
		         rec != NULL ? rec->client_url : "?");
		ctl_service_unlock(r->svc);
		if (same) {
			change_done(r, 0);
		} else {
			ctl_req_finish(r, STRATA_EEXIST, msg, NULL);
		}
		return;
	}
	Strata__V1__SetControllerEndpointCmd c =
	        STRATA__V1__SET_CONTROLLER_ENDPOINT_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.endpoint = q->endpoint;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_SET_CONTROLLER;
	cmd.set_controller = &c;
	r->after = add_after;
	ctl_req_propose(r, &cmd);
}

static void forget_done(void *arg, int status, const struct cfsm_result *res)
{
	(void)arg;
	(void)res;
	if (status != 0) {
		LOG_INFO(COMP,
		         "removed controller's endpoint record not dropped "
		         "(%s); it is kept but unused",
		         strata_strerror(status));
	}
}

/* After the voter set changed: forget the endpoint, then answer. */
static void remove_done(void *arg, int status)
{
	struct ctl_req *r = arg;
	if (status == 0) {
		Strata__V1__RemoveControllerRequest *q = (void *)r->msg;
		Strata__V1__ControllerEndpoint ep =
		        STRATA__V1__CONTROLLER_ENDPOINT__INIT;
		Strata__V1__SetControllerEndpointCmd c =
		        STRATA__V1__SET_CONTROLLER_ENDPOINT_CMD__INIT;
		Strata__V1__ControllerCommand cmd =
		        STRATA__V1__CONTROLLER_COMMAND__INIT;
		ep.id = q->id;
		c.endpoint = &ep;
		c.remove = true;
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_SET_CONTROLLER;
		cmd.set_controller = &c;
		ctl_service_propose(r->svc, &cmd, forget_done, NULL);
	}
	change_done(r, status);
}

static void serve_remove_controller(struct ctl_req *r)
{
	Strata__V1__RemoveControllerRequest *q = (void *)r->msg;
	struct raft_group_member m[CTL_MAX_MEMBERS + 1];
	struct raft_group_peer v[CTL_MAX_MEMBERS + 1];
	char msg[STRATA_ERRMSG_SIZE];
	unsigned n = current_voters(r->svc, m, v), k = 0;
	bool present = false;
	for (unsigned i = 0; i < n; i++) {
		if (v[i].id == q->id) {
			present = true;
		} else {
			v[k++] = v[i];
		}
	}
	if (!present || k == 0) {
		snprintf(msg, sizeof(msg), "remove controller %" PRIu64 ": %s",
		         q->id,
		         !present ? "not a voter of the controller cluster; "
		                    "list the controllers"
		                  : "it is the last voter and cannot be "
		                    "removed");
		ctl_req_finish(r, !present ? STRATA_ENOENT : STRATA_EINVAL, msg,
		               NULL);
		return;
	}
	int rc = ctl_service_set_voters(r->svc, v, k, remove_done, r);
	if (rc != 0) {
		change_done(r, rc);
	}
}

static void serve_list_controllers(struct ctl_req *r)
{
	struct raft_group_member m[CTL_MAX_MEMBERS + 1];
	Strata__V1__ControllerInfo info[CTL_MAX_MEMBERS + 1];
	Strata__V1__ControllerInfo *ip[CTL_MAX_MEMBERS + 1];
	Strata__V1__ControllerEndpoint ep[CTL_MAX_MEMBERS + 1];
	Strata__V1__ListControllersReply rep =
	        STRATA__V1__LIST_CONTROLLERS_REPLY__INIT;
	struct ctl_status st;
	bool committed = false;
	unsigned n = ctl_service_raft_members(r->svc, m, CTL_MAX_MEMBERS + 1,
	                                      &committed);
	if (n > CTL_MAX_MEMBERS + 1) {
		n = CTL_MAX_MEMBERS + 1;
	}
	ctl_service_status(r->svc, &st);
	const struct cfsm *f = ctl_service_lock(r->svc);
	for (unsigned i = 0; i < n; i++) {
		Strata__V1__ControllerInfo ii =
		        STRATA__V1__CONTROLLER_INFO__INIT;
		Strata__V1__ControllerEndpoint ei =
		        STRATA__V1__CONTROLLER_ENDPOINT__INIT;
		info[i] = ii;
		ep[i] = ei;
		const Strata__V1__ControllerEndpoint *rec =
		        cfsm_find_controller(f, m[i].id);
		const struct ctl_member *cm =
		        ctl_service_member(r->svc, m[i].id);
		ep[i].id = m[i].id;
		ep[i].raft_address = m[i].address;
		if (rec != NULL) {
			ep[i].client_url = rec->client_url;
			ep[i].http_url = rec->http_url;
		} else if (cm != NULL) {
			ep[i].client_url = (char *)cm->client_url;
			ep[i].http_url = (char *)cm->http_url;
		}
		info[i].endpoint = &ep[i];
		info[i].role = m[i].role;
		info[i].leader = m[i].id == st.leader_id;
		ip[i] = &info[i];
	}
	rep.controllers = ip;
	rep.n_controllers = n;
	rep.committed = committed;
	rep.leader_id = st.leader_id;
	size_t len = protobuf_c_message_get_packed_size(&rep.base);
	uint8_t *buf = strata_malloc(len > 0 ? len : 1);
	if (buf != NULL) {
		protobuf_c_message_pack(&rep.base, buf);
	}
	ctl_service_unlock(r->svc);
	if (buf == NULL) {
		ctl_req_finish(r, STRATA_ENOMEM, "out of memory; retry", NULL);
		return;
	}
	ctl_req_finish_raw(r, 0, NULL, NULL, buf, len);
	strata_free(buf);
}

bool cluster_dispatch(struct ctl_req *r, const uint8_t *body, size_t len)
{
	switch (r->method) {
	case STRATA__V1__CONTROLLER_METHOD__CTL_ADD_CONTROLLER:
		if (ctl_req_need_leader(r) &&
		    ctl_req_decode(
		            r, &strata__v1__add_controller_request__descriptor,
		            body, len)) {
			serve_add_controller(r);
		}
		return true;
	case STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_CONTROLLER:
		if (ctl_req_need_leader(r) &&
		    ctl_req_decode(
		            r,
		            &strata__v1__remove_controller_request__descriptor,
		            body, len)) {
			serve_remove_controller(r);
		}
		return true;
	case STRATA__V1__CONTROLLER_METHOD__CTL_LIST_CONTROLLERS:
		/* Per-replica view, served in any role. */
		if (ctl_req_decode(
		            r,
		            &strata__v1__list_controllers_request__descriptor,
		            body, len)) {
			serve_list_controllers(r);
		}
		return true;
	case STRATA__V1__CLUSTER_METHOD__CLUSTER_REGISTER_STORE:
		if (ctl_req_need_leader(r) &&
		    ctl_req_decode(
		            r, &strata__v1__register_store_request__descriptor,
		            body, len)) {
			serve_register(r);
		}
		return true;
	case STRATA__V1__CLUSTER_METHOD__CLUSTER_HEARTBEAT:
		if (ctl_req_need_leader(r) &&
		    ctl_req_decode(
		            r, &strata__v1__store_heartbeat_request__descriptor,
		            body, len)) {
			serve_heartbeat(r);
		}
		return true;
	case STRATA__V1__CLUSTER_METHOD__CLUSTER_UNREGISTER_STORE:
		if (ctl_req_need_leader(r) &&
		    ctl_req_decode(
		            r,
		            &strata__v1__unregister_store_request__descriptor,
		            body, len)) {
			serve_unregister(r);
		}
		return true;
	case STRATA__V1__CLUSTER_METHOD__CLUSTER_STATUS:
		if (ctl_req_need_read(r) &&
		    ctl_req_decode(
		            r, &strata__v1__cluster_status_request__descriptor,
		            body, len)) {
			serve_status(r);
		}
		return true;
	default:
		return false;
	}
}

/* ------------------------------------------------------------- ticker -- */

struct cluster_ticker {
	struct ctl_service *svc; /* borrowed */
	unsigned period_ms;      /* tick period */
	pthread_t thread;        /* the ticker */
	pthread_mutex_t lock;    /* guards stop */
	pthread_cond_t cond;     /* wakes the thread at stop */
	bool stop;               /* exit requested */
	bool joined;             /* the thread was (being) joined */
	atomic_bool inflight;    /* a tick awaits its outcome */
};

static void tick_done(void *arg, int status, const struct cfsm_result *res)
{
	struct cluster_ticker *t = arg;
	if (status != 0 && status != STRATA_ENOTLEADER &&
	    status != STRATA_ESHUTDOWN) {
		LOG_WARN(COMP, "tick not applied: %s", strata_strerror(status));
	} else if (res != NULL && res->code != 0) {
		LOG_WARN(COMP, "tick rejected: %s", res->message);
	}
	atomic_store(&t->inflight, false);
}

/* Name the stores this tick expires (the FSM itself logs nothing: it
 * also runs on followers and on replay). */
static void log_expiring(struct ctl_service *svc, uint64_t now_ms)
{
	const struct cfsm *f = ctl_service_lock(svc);
	const Strata__V1__ControllerState *st = cfsm_state(f);
	for (size_t i = 0; i < st->n_nodes; i++) {
		const Strata__V1__StoreNode *nd = st->nodes[i];
		if (nd->alive && nd->lease_expiry_ms <= now_ms) {
			LOG_WARN(COMP,
			         "segment store %.64s (%.200s) sent no "
			         "heartbeat within its lease: marked down, its "
			         "container replicas move to the live stores",
			         nd->id, nd->client_url);
		}
	}
	ctl_service_unlock(svc);
}

static void *ticker_main(void *arg)
{
	struct cluster_ticker *t = arg;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += t->period_ms / 1000;
		ts.tv_nsec += (long)(t->period_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
		if (t->stop || !ctl_service_is_ready(t->svc) ||
		    atomic_load(&t->inflight)) {
			continue;
		}
		pthread_mutex_unlock(&t->lock);
		Strata__V1__TickCmd c = STRATA__V1__TICK_CMD__INIT;
		Strata__V1__InitClusterCmd ic =
		        STRATA__V1__INIT_CLUSTER_CMD__INIT;
		Strata__V1__ControllerCommand cmd =
		        STRATA__V1__CONTROLLER_COMMAND__INIT;
		char id[33];
		const struct cfsm *f = ctl_service_lock(t->svc);
		bool named = cfsm_cluster_id(f)[0] != '\0';
		uint32_t count = cfsm_container_count(f);
		ctl_service_unlock(t->svc);
		if (!named) {
			/* A new cluster (or one from before cluster ids):
			 * this round names it instead of ticking. */
			snprintf(id, sizeof(id),
			         "%08" PRIx32 "%08" PRIx32 "%08" PRIx32
			         "%08" PRIx32,
			         nng_random(), nng_random(), nng_random(),
			         nng_random());
			ic.cluster_id = id;
			ic.container_count = count;
			cmd.command_case =
			        STRATA__V1__CONTROLLER_COMMAND__COMMAND_INIT_CLUSTER;
			cmd.init_cluster = &ic;
		} else {
			c.now_ms = ctl_now_ms();
			log_expiring(t->svc, c.now_ms);
			cmd.command_case =
			        STRATA__V1__CONTROLLER_COMMAND__COMMAND_TICK;
			cmd.tick = &c;
		}
		atomic_store(&t->inflight, true);
		if (ctl_service_propose(t->svc, &cmd, tick_done, t) != 0) {
			atomic_store(&t->inflight, false);
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int cluster_ticker_start(struct ctl_service *svc, unsigned period_ms,
                         struct cluster_ticker **out)
{
	struct cluster_ticker *t = strata_calloc(1, sizeof(*t));
	if (t == NULL) {
		return STRATA_ENOMEM;
	}
	t->svc = svc;
	t->period_ms = period_ms ? period_ms : 1000;
	atomic_init(&t->inflight, false);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		strata_free(t);
		return STRATA_EIO;
	}
	*out = t;
	return 0;
}

void cluster_ticker_stop(struct cluster_ticker *t)
{
	if (t == NULL) {
		return;
	}
	pthread_mutex_lock(&t->lock);
	bool joined = t->joined;
	t->stop = true;
	t->joined = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (!joined) {
		pthread_join(t->thread, NULL);
	}
}

void cluster_ticker_free(struct cluster_ticker *t)
{
	if (t == NULL) {
		return;
	}
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	strata_free(t);
}
