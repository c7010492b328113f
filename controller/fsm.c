/* Controller FSM: lifecycle, command dispatch, snapshot/restore, actions. */
#include "controller/fsm_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/log.h"

/* ------------------------------------------------------ protobuf trees -- */

static void *pb_alloc(void *data, size_t size)
{
	(void)data;
	return strata_malloc(size);
}

static void pb_dealloc(void *data, void *p)
{
	(void)data;
	strata_free(p);
}

ProtobufCAllocator fsm_pb_allocator = {
        .alloc = pb_alloc,
        .free = pb_dealloc,
        .allocator_data = NULL,
};

void pb_free(void *msg)
{
	if (msg != NULL) {
		protobuf_c_message_free_unpacked(msg, &fsm_pb_allocator);
	}
}

void *pb_clone(const void *msg)
{
	const ProtobufCMessage *m = msg;
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = strata_malloc(len > 0 ? len : 1);
	if (buf == NULL) {
		return NULL;
	}
	protobuf_c_message_pack(m, buf);
	void *copy = protobuf_c_message_unpack(m->descriptor, &fsm_pb_allocator,
	                                       len, buf);
	strata_free(buf);
	return copy;
}

int pb_reserve(void *arr, size_t n, size_t extra, size_t elem_size)
{
	void **p = arr;
	if (extra == 0) {
		return 0;
	}
	if (n + extra > SIZE_MAX / elem_size) {
		return STRATA_ENOMEM;
	}
	void *grown = strata_realloc(*p, (n + extra) * elem_size);
	if (grown == NULL) {
		return STRATA_ENOMEM;
	}
	*p = grown;
	return 0;
}

int pb_strdup(char **dst, const char *s)
{
	char *copy = strata_strdup(s);
	if (copy == NULL) {
		return STRATA_ENOMEM;
	}
	*dst = copy;
	return 0;
}

void *pb_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = strata_malloc(d->sizeof_message);
	if (m != NULL) {
		protobuf_c_message_init(d, m);
	}
	return m;
}

void pb_remove_at(void **arr, size_t *n, size_t i)
{
	memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof(*arr));
	(*n)--;
}

void cfsm_msg_free(void *msg)
{
	pb_free(msg);
}

/* ------------------------------------------------------------- results -- */

int fsm_fail(struct cfsm_result *res, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	res->code = code;
	return code;
}

static void result_reset(struct cfsm_result *res)
{
	res->code = 0;
	res->message[0] = '\0';
	res->workflow_id = 0;
	res->txn_id = 0;
	res->n_segment_ids = 0;
}

/* ----------------------------------------------------------- lifecycle -- */

/* A fresh state for container_count containers; NULL on OOM. */
static Strata__V1__ControllerState *state_new(uint32_t container_count)
{
	Strata__V1__ControllerState *st =
	        pb_new(&strata__v1__controller_state__descriptor);
	if (st == NULL) {
		return NULL;
	}
	st->version = 1;
	st->container_count = container_count;
	st->next_workflow_id = 1;
	st->next_txn_id = 1;
	st->containers =
	        strata_calloc(container_count, sizeof(*st->containers));
	if (st->containers == NULL) {
		goto err_free;
	}
	for (uint32_t i = 0; i < container_count; i++) {
		Strata__V1__ContainerAssignment *c =
		        pb_new(&strata__v1__container_assignment__descriptor);
		if (c == NULL) {
			goto err_free;
		}
		c->container = i;
		st->containers[i] = c;
		st->n_containers = i + 1;
	}
	return st;

err_free:
	pb_free(st);
	return NULL;
}

int cfsm_init(struct cfsm *fsm, uint32_t container_count, char *errmsg)
{
	fsm->st = NULL;
	fsm->count_conflict = 0;
	if (container_count == 0 || container_count > CFSM_MAX_CONTAINERS) {
		errmsg_set(errmsg,
		           "controller: container count %u is out of range; "
		           "configure 1..%u containers",
		           container_count, CFSM_MAX_CONTAINERS);
		return STRATA_EINVAL;
	}
	fsm->st = state_new(container_count);
	if (fsm->st == NULL) {
		errmsg_set(
		        errmsg,
		        "controller: out of memory creating the state for %u "
		        "containers",
		        container_count);
		return STRATA_ENOMEM;
	}
	return 0;
}

void cfsm_close(struct cfsm *fsm)
{
	pb_free(fsm->st);
	fsm->st = NULL;
}

uint32_t cfsm_container_count(const struct cfsm *fsm)
{
	return fsm->st->container_count;
}

const char *cfsm_cluster_id(const struct cfsm *fsm)
{
	return fsm->st->cluster_id != NULL ? fsm->st->cluster_id : "";
}

uint32_t cfsm_count_conflict(const struct cfsm *fsm)
{
	return fsm->count_conflict;
}

/* InitClusterCmd: the first one sets the id; see controller.proto. */
static int init_cluster(struct cfsm *fsm, const Strata__V1__InitClusterCmd *c,
                        struct cfsm_result *res)
{
	size_t n = strlen(c->cluster_id);
	if (n == 0 || n > 64 || c->container_count == 0) {
		return fsm_fail(res, STRATA_EINVAL,
		                "init cluster: give a cluster id of 1..64 "
		                "characters and a container count > 0");
	}
	Strata__V1__ControllerState *st = fsm->st;
	if (st->cluster_id != NULL && st->cluster_id[0] != '\0') {
		return 0; /* a later proposal: the first one won */
	}
	char *id = strata_strdup(c->cluster_id);
	if (id == NULL) {
		return fsm_fail(res, STRATA_ENOMEM,
		                "init cluster: out of memory");
	}
	if (st->cluster_id != NULL &&
	    st->cluster_id != protobuf_c_empty_string) {
		strata_free(st->cluster_id);
	}
	st->cluster_id = id;
	if (c->container_count != st->container_count) {
		fsm->count_conflict = c->container_count;
	}
	return 0;
}

const Strata__V1__ContainerAssignment *
cfsm_container_replicas(const struct cfsm *fsm, uint32_t container)
{
	if (container >= fsm->st->n_containers) {
		return NULL;
	}
	return fsm->st->containers[container];
}

const Strata__V1__StoreNode *cfsm_find_node(const struct cfsm *fsm,
                                            const char *id)
{
	for (size_t i = 0; i < fsm->st->n_nodes; i++) {
		if (strcmp(fsm->st->nodes[i]->id, id) == 0) {
			return fsm->st->nodes[i];
		}
	}
	return NULL;
}

const char *cfsm_container_url(const struct cfsm *fsm, uint32_t container)
{
	const Strata__V1__ContainerAssignment *a =
	        cfsm_container_replicas(fsm, container);
	if (a == NULL || a->n_replicas == 0) {
		return NULL;
	}
	const Strata__V1__StoreNode *nd = cfsm_find_node(
	        fsm, a->leader[0] != '\0' ? a->leader : a->replicas[0]);
	if (nd == NULL) {
		return NULL;
	}
	return nd->client_url[0] != '\0' ? nd->client_url : nd->address;
}

const Strata__V1__ControllerEndpoint *
cfsm_find_controller(const struct cfsm *fsm, uint64_t id)
{
	for (size_t i = 0; i < fsm->st->n_controllers; i++) {
		if (fsm->st->controllers[i]->id == id) {
			return fsm->st->controllers[i];
		}
	}
	return NULL;
}

const Strata__V1__ControllerState *cfsm_state(const struct cfsm *fsm)
{
	return fsm->st;
}

int cfsm_segment_name(char *buf, size_t size, const char *scope,
                      const char *stream, uint64_t segment_id)
{
	return names_segment_name(buf, size, scope, stream, segment_id);
}

uint32_t cfsm_segment_container(const struct cfsm *fsm, const char *scope,
                                const char *stream, uint64_t segment_id)
{
	return names_segment_container(fsm->st->container_count, scope, stream,
	                               segment_id);
}

const Strata__V1__Workflow *cfsm_find_workflow(const struct cfsm *fsm,
                                               uint64_t id)
{
	for (size_t i = 0; i < fsm->st->n_workflows; i++) {
		if (fsm->st->workflows[i]->id == id) {
			return fsm->st->workflows[i];
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ dispatch -- */

#define NEED(field)                                                           \
	do {                                                                  \
		if ((field) == NULL) {                                        \
			return fsm_fail(res, STRATA_EPROTO,                   \
			                "controller command: %s is missing; " \
			                "send a complete request",            \
			                #field);                              \
		}                                                             \
	} while (0)

int cfsm_apply_command(struct cfsm *fsm,
                       const Strata__V1__ControllerCommand *cmd,
                       struct cfsm_result *res)
{
	result_reset(res);
	switch (cmd->command_case) {
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_SCOPE:
		NEED(cmd->create_scope->request);
		return streams_create_scope(fsm, cmd->create_scope, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_DELETE_SCOPE:
		NEED(cmd->delete_scope->request);
		return streams_delete_scope(fsm, cmd->delete_scope, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_STREAM:
		NEED(cmd->create_stream->request);
		return workflows_create_stream(fsm, cmd->create_stream, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_UPDATE_STREAM:
		NEED(cmd->update_stream->request);
		return streams_update(fsm, cmd->update_stream, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_SCALE_STREAM:
		NEED(cmd->scale_stream->request);
		return workflows_scale(fsm, cmd->scale_stream, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_SEAL_STREAM:
		NEED(cmd->seal_stream->request);
		return workflows_seal(fsm, cmd->seal_stream, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_TRUNCATE_STREAM:
		NEED(cmd->truncate_stream->request);
		return workflows_truncate(fsm, cmd->truncate_stream, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_DELETE_STREAM:
		NEED(cmd->delete_stream->request);
		return workflows_delete(fsm, cmd->delete_stream, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_RECORD_RETENTION_CUT:
		NEED(cmd->record_retention_cut->cut);
		return retention_record(fsm, cmd->record_retention_cut, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_NOTE_TIME:
		NEED(cmd->note_time->request);
		return watermarks_note(fsm, cmd->note_time, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_REMOVE_WRITER:
		NEED(cmd->remove_writer->request);
		return watermarks_remove_writer(fsm, cmd->remove_writer, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_COMPUTE_WATERMARK:
		return watermarks_compute(fsm, cmd->compute_watermark, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_WORKFLOW_STEP_DONE:
		return workflows_step_done(fsm, cmd->workflow_step_done, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_TXN:
		NEED(cmd->create_txn->request);
		return txns_create(fsm, cmd->create_txn, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_PING_TXN:
		NEED(cmd->ping_txn->request);
		return txns_ping(fsm, cmd->ping_txn, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_END_TXN:
		NEED(cmd->end_txn->request);
		return txns_end(fsm, cmd->end_txn, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_TXN_STEP_DONE:
		return txns_step_done(fsm, cmd->txn_step_done, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_READER_GROUP:
		NEED(cmd->create_reader_group->request);
		NEED(cmd->create_reader_group->request->config);
		return rg_create(fsm, cmd->create_reader_group, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_UPDATE_READER_GROUP:
		NEED(cmd->update_reader_group->request);
		NEED(cmd->update_reader_group->request->config);
		return rg_update(fsm, cmd->update_reader_group, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_DELETE_READER_GROUP:
		NEED(cmd->delete_reader_group->request);
		return rg_delete(fsm, cmd->delete_reader_group, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_UPDATE_RETENTION_CUT:
		NEED(cmd->update_retention_cut->request);
		return rg_release(fsm, cmd->update_retention_cut, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_REGISTER_STORE:
		return nodes_register(fsm, cmd->register_store, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_HEARTBEAT:
		return nodes_heartbeat(fsm, cmd->heartbeat, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_UNREGISTER_STORE:
		return nodes_unregister(fsm, cmd->unregister_store, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_TICK: {
		/* Nodes first: both parts only fail on OOM before changing
		 * anything, and the node part is idempotent for a retry. */
		int rc = nodes_tick(fsm, cmd->tick->now_ms, res);
		if (rc == 0) {
			rc = txns_tick(fsm, cmd->tick->now_ms, res);
		}
		if (rc == 0 && cmd->tick->now_ms > fsm->st->last_tick_ms) {
			fsm->st->last_tick_ms = cmd->tick->now_ms;
		}
		return rc;
	}
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_SET_CONTROLLER:
		return nodes_set_controller(fsm, cmd->set_controller, res);
	case STRATA__V1__CONTROLLER_COMMAND__COMMAND_INIT_CLUSTER:
		return init_cluster(fsm, cmd->init_cluster, res);
	default:
		return fsm_fail(res, STRATA_EPROTO,
		                "controller command: unknown command kind %d; "
		                "upgrade this controller or fix the sender",
		                (int)cmd->command_case);
	}
}

/* Allocator for decoding commands that records whether an allocation
 * failed (data = a bool), so OOM is told apart from garbage. */
static void *pb_alloc_noting(void *data, size_t size)
{
	void *p = strata_malloc(size);
	if (p == NULL) {
		*(bool *)data = true;
	}
	return p;
}

int cfsm_apply(struct cfsm *fsm, const uint8_t *cmd, size_t len,
               struct cfsm_result *res)
{
	result_reset(res);
	bool oom = false;
	ProtobufCAllocator noting = {
	        .alloc = pb_alloc_noting,
	        .free = pb_dealloc,
	        .allocator_data = &oom,
	};
	Strata__V1__ControllerCommand *c =
	        strata__v1__controller_command__unpack(&noting, len, cmd);
	if (c == NULL && oom) {
		/* Not a verdict on the bytes: a replica that rejected the
		 * command here while others applied it would diverge. */
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory decoding a controller command "
		                "of %zu bytes; retry",
		                len);
	}
	if (c == NULL) {
		return fsm_fail(
		        res, STRATA_EPROTO,
		        "controller command of %zu bytes does not decode "
		        "as strata.v1.ControllerCommand; fix the sender",
		        len);
	}
	int rc = cfsm_apply_command(fsm, c, res);
	protobuf_c_message_free_unpacked(&c->base, &noting);
	if (rc != 0 && rc != STRATA_EPROTO) {
		LOG_DEBUG("controller", "command rejected: %s", res->message);
	}
	return rc;
}

/* ---------------------------------------------------- snapshot/restore -- */

int cfsm_snapshot(const struct cfsm *fsm, uint8_t **buf, size_t *len)
{
	size_t n = strata__v1__controller_state__get_packed_size(fsm->st);
	uint8_t *b = strata_malloc(n > 0 ? n : 1);
	if (b == NULL) {
		return STRATA_ENOMEM;
	}
	*len = strata__v1__controller_state__pack(fsm->st, b);
	*buf = b;
	return 0;
}

/* Names of an array sorted strictly ascending and valid. */
#define CHECK_SORTED(arr, n, what)                                          \
	for (size_t i_ = 0; i_ < (n); i_++) {                               \
		if (names_check((arr)[i_]->name, what, true, &r) != 0) {    \
			goto bad;                                           \
		}                                                           \
		if (i_ > 0 &&                                               \
		    strcmp((arr)[i_ - 1]->name, (arr)[i_]->name) >= 0) {    \
			snprintf(r.message, sizeof(r.message),              \
			         "%s names are not sorted at \"%s\"", what, \
			         (arr)[i_]->name);                          \
			goto bad;                                           \
		}                                                           \
	}

/* Is a decoded state consistent enough for every function to use? */
static int state_check(const Strata__V1__ControllerState *st, char *errmsg)
{
	struct cfsm_result r = {0};
	if (st->version != 1) {
		snprintf(r.message, sizeof(r.message),
		         "snapshot format version %u is not 1", st->version);
		goto bad;
	}
	if (st->n_containers != st->container_count) {
		snprintf(r.message, sizeof(r.message),
		         "snapshot has %zu container entries for %u containers",
		         st->n_containers, st->container_count);
		goto bad;
	}
	for (size_t i = 0; i < st->n_containers; i++) {
		if (st->containers[i]->container != i) {
			snprintf(r.message, sizeof(r.message),
			         "container entry %zu names container %u", i,
			         st->containers[i]->container);
			goto bad;
		}
	}
	for (size_t i = 0; i < st->n_controllers; i++) {
		if (st->controllers[i]->id == 0 ||
		    (i > 0 &&
		     st->controllers[i - 1]->id >= st->controllers[i]->id)) {
			snprintf(
			        r.message, sizeof(r.message),
			        "controller endpoints are not sorted by id > 0 "
			        "at entry %zu",
			        i);
			goto bad;
		}
	}
	CHECK_SORTED(st->scopes, st->n_scopes, "scope");
	for (size_t i = 0; i < st->n_scopes; i++) {
		const Strata__V1__ScopeRecord *sc = st->scopes[i];
		CHECK_SORTED(sc->streams, sc->n_streams, "stream");
		CHECK_SORTED(sc->reader_groups, sc->n_reader_groups,
		             "reader group");
		for (size_t j = 0; j < sc->n_streams; j++) {
			const Strata__V1__StreamRecord *s = sc->streams[j];
			if (s->config == NULL || s->n_epochs == 0 ||
			    s->epochs[s->n_epochs - 1]->n_segments == 0 ||
			    s->state < SS_CREATING || s->state > SS_DELETING) {
				snprintf(r.message, sizeof(r.message),
				         "stream %s/%s lacks config, epochs or "
				         "a valid state",
				         sc->name, s->name);
				goto bad;
			}
			if (s->workflow_id != 0) {
				bool ok = false;
				for (size_t k = 0; k < st->n_workflows; k++) {
					ok |= st->workflows[k]->id ==
					      s->workflow_id;
				}
				if (!ok) {
					snprintf(r.message, sizeof(r.message),
					         "stream %s/%s names missing "
					         "workflow %llu",
					         sc->name, s->name,
					         (unsigned long long)
					                 s->workflow_id);
					goto bad;
				}
			}
		}
	}
	for (size_t k = 0; k < st->n_workflows; k++) {
		const Strata__V1__Workflow *w = st->workflows[k];
		const Strata__V1__StreamRecord *s =
		        fsm_stream(st, w->scope, w->stream);
		bool params_ok =
		        (w->kind == WK_SCALE) ==
		                (w->params_case ==
		                 STRATA__V1__WORKFLOW__PARAMS_SCALE) &&
		        (w->kind == WK_TRUNCATE) ==
		                (w->params_case ==
		                 STRATA__V1__WORKFLOW__PARAMS_TRUNCATE) &&
		        (w->kind != WK_TRUNCATE || w->truncate->cut != NULL) &&
		        (w->kind == WK_ROLL) ==
		                (w->params_case ==
		                 STRATA__V1__WORKFLOW__PARAMS_ROLL) &&
		        (w->kind != WK_ROLL ||
		         w->roll->n_parents == w->roll->n_txn_copies);
		if (s == NULL || s->workflow_id != w->id || !params_ok ||
		    w->kind < WK_CREATE || w->kind > WK_ROLL ||
		    w->id >= st->next_workflow_id) {
			snprintf(r.message, sizeof(r.message),
			         "workflow %llu is inconsistent with its "
			         "stream %s/%s",
			         (unsigned long long)w->id, w->scope,
			         w->stream);
			goto bad;
		}
	}
	return 0;

bad:
	errmsg_set(
	        errmsg,
	        "controller snapshot is inconsistent: %.180s; restore another "
	        "snapshot",
	        r.message);
	return STRATA_ECORRUPT;
}

int cfsm_restore(struct cfsm *fsm, const uint8_t *buf, size_t len, char *errmsg)
{
	Strata__V1__ControllerState *st = strata__v1__controller_state__unpack(
	        &fsm_pb_allocator, len, buf);
	if (st == NULL) {
		errmsg_set(
		        errmsg,
		        "controller snapshot of %zu bytes does not decode as "
		        "strata.v1.ControllerState; restore another snapshot",
		        len);
		return STRATA_EPROTO;
	}
	if (st->container_count != fsm->st->container_count) {
		errmsg_set(
		        errmsg,
		        "controller snapshot has %u containers but this "
		        "cluster is configured with %u; the container count "
		        "is fixed for a cluster's life, fix the configuration",
		        st->container_count, fsm->st->container_count);
		pb_free(st);
		return STRATA_ECONFIG;
	}
	int rc = state_check(st, errmsg);
	if (rc != 0) {
		pb_free(st);
		return rc;
	}
	pb_free(fsm->st);
	fsm->st = st;
	return 0;
}

/* ------------------------------------------------------------- actions -- */

int fsm_push_action(struct cfsm_action **acts, size_t *n, size_t *cap,
                    const struct cfsm_action *a)
{
	if (*n == *cap) {
		size_t ncap = *cap == 0 ? 16 : *cap * 2;
		struct cfsm_action *grown =
		        strata_realloc(*acts, ncap * sizeof(**acts));
		if (grown == NULL) {
			return STRATA_ENOMEM;
		}
		*acts = grown;
		*cap = ncap;
	}
	(*acts)[(*n)++] = *a;
	return 0;
}

/* Append one workflow action for segment id. */
static int push_wf(const struct cfsm *f, struct cfsm_action **acts, size_t *n,
                   size_t *cap, const Strata__V1__Workflow *w, int kind,
                   uint64_t id, int64_t offset)
{
	struct cfsm_action a = {
	        .kind = kind,
	        .scope = w->scope,
	        .stream = w->stream,
	        .segment_id = id,
	        .container = cfsm_segment_container(f, w->scope, w->stream, id),
	        .offset = offset,
	        .workflow_id = w->id,
	        .step = w->step,
	};
	return fsm_push_action(acts, n, cap, &a);
}

/* Actions of a ROLL workflow's current step. */
static int roll_actions(const struct cfsm *f, struct cfsm_action **acts,
                        size_t *n, size_t *cap, const Strata__V1__Workflow *w)
{
	const Strata__V1__RollParams *p = w->roll;
	int rc = 0;
	if (w->step == WS_CREATE) {
		for (size_t i = 0; i < p->n_txn_copies && rc == 0; i++) {
			rc = push_wf(f, acts, n, cap, w,
			             CFSM_ACTION_CREATE_SEGMENT,
			             p->txn_copies[i]->id, 0);
		}
		for (size_t i = 0; i < p->n_successors && rc == 0; i++) {
			rc = push_wf(f, acts, n, cap, w,
			             CFSM_ACTION_CREATE_SEGMENT,
			             p->successors[i]->id, 0);
		}
	} else if (w->step == WS_MERGE) {
		/* Copy by copy, every rolled txn's shadow, then the seal. */
		for (size_t i = 0; i < p->n_txn_copies && rc == 0; i++) {
			for (size_t k = 0; k <= p->n_joined && rc == 0; k++) {
				rc = push_wf(f, acts, n, cap, w,
				             CFSM_ACTION_ROLL_TXN_SEGMENT,
				             p->txn_copies[i]->id, 0);
				if (rc == 0) {
					struct cfsm_action *a =
					        &(*acts)[*n - 1];
					a->source_id = p->parents[i];
					a->txn_id = k == 0 ? p->txn_id
					                   : p->joined[k - 1];
					a->seal = k == p->n_joined;
				}
			}
		}
	} else {
		for (size_t i = 0; i < p->n_seal && rc == 0; i++) {
			rc = push_wf(f, acts, n, cap, w,
			             CFSM_ACTION_SEAL_SEGMENT, p->seal[i], 0);
		}
	}
	return rc;
}

/* Append the actions of running workflows to *acts (capacity *cap). */
static int workflow_actions(const struct cfsm *f, struct cfsm_action **acts,
                            size_t *n, size_t *cap)
{
	const Strata__V1__ControllerState *st = f->st;
	int rc = 0;
	for (size_t k = 0; k < st->n_workflows && rc == 0; k++) {
		const Strata__V1__Workflow *w = st->workflows[k];
		const Strata__V1__StreamRecord *s =
		        fsm_stream(st, w->scope, w->stream);
		if (s == NULL) {
			continue;
		}
		const Strata__V1__Epoch *cur = fsm_current_epoch(s);
		switch (w->kind * 16 + w->step) {
		case WK_CREATE * 16 + WS_CREATE:
			for (size_t i = 0; i < cur->n_segments && rc == 0;
			     i++) {
				rc = push_wf(f, acts, n, cap, w,
				             CFSM_ACTION_CREATE_SEGMENT,
				             cur->segments[i]->id, 0);
			}
			break;
		case WK_SCALE * 16 + WS_CREATE:
			for (size_t i = 0;
			     i < w->scale->n_successors && rc == 0; i++) {
				rc = push_wf(f, acts, n, cap, w,
				             CFSM_ACTION_CREATE_SEGMENT,
				             w->scale->successors[i]->id, 0);
			}
			break;
		case WK_SCALE * 16 + WS_SEAL:
			for (size_t i = 0; i < w->scale->n_seal && rc == 0;
			     i++) {
				rc = push_wf(f, acts, n, cap, w,
				             CFSM_ACTION_SEAL_SEGMENT,
				             w->scale->seal[i], 0);
			}
			break;
		case WK_ROLL * 16 + WS_CREATE:
		case WK_ROLL * 16 + WS_MERGE:
		case WK_ROLL * 16 + WS_SEAL:
			rc = roll_actions(f, acts, n, cap, w);
			break;
		case WK_SEAL * 16 + WS_SEAL:
		case WK_REMOVE * 16 + WS_SEAL:
			for (size_t i = 0; i < cur->n_segments && rc == 0;
			     i++) {
				rc = push_wf(f, acts, n, cap, w,
				             CFSM_ACTION_SEAL_SEGMENT,
				             cur->segments[i]->id, 0);
			}
			break;
		case WK_TRUNCATE * 16 + WS_TRUNCATE: {
			const Strata__V1__StreamCut *cut = w->truncate->cut;
			for (size_t i = 0; i < cut->n_positions && rc == 0;
			     i++) {
				const Strata__V1__SegmentOffset *p =
				        cut->positions[i];
				if (p->offset > 0) {
					rc = push_wf(
					        f, acts, n, cap, w,
					        CFSM_ACTION_TRUNCATE_SEGMENT,
					        p->segment_id, p->offset);
				}
			}
			const Strata__V1__TruncateParams *tp = w->truncate;
			for (size_t i = 0; i < tp->n_delete_segments && rc == 0;
			     i++) {
				rc = push_wf(f, acts, n, cap, w,
				             CFSM_ACTION_DELETE_SEGMENT,
				             tp->delete_segments[i], 0);
			}
			break;
		}
		case WK_DELETE * 16 + WS_DELETE:
		case WK_REMOVE * 16 + WS_DELETE:
			for (size_t e = 0; e < s->n_epochs && rc == 0; e++) {
				const Strata__V1__Epoch *ep = s->epochs[e];
				for (size_t i = 0;
				     i < ep->n_segments && rc == 0; i++) {
					uint64_t id = ep->segments[i]->id;
					if (SEG_EPOCH(id) != ep->epoch ||
					    fsm_segment_deleted(s, id)) {
						continue;
					}
					rc = push_wf(f, acts, n, cap, w,
					             CFSM_ACTION_DELETE_SEGMENT,
					             id, 0);
				}
			}
			break;
		default:
			break;
		}
	}
	return rc;
}

int cfsm_pending_actions(const struct cfsm *fsm, struct cfsm_action **acts,
                         size_t *n)
{
	size_t cap = 0;
	*acts = NULL;
	*n = 0;
	int rc = workflow_actions(fsm, acts, n, &cap);
	if (rc == 0) {
		rc = txns_actions(fsm, acts, n, &cap);
	}
	if (rc != 0) {
		strata_free(*acts);
		*acts = NULL;
		*n = 0;
	}
	return rc;
}
