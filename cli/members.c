/* stratactl cluster controllers, add-controller and remove-controller:
 * the controller replicas' own Raft group (docs/operations.md, "Adding or
 * removing a controller"). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/rpc.h"
#include "common/sp.h"
#include "strata/v1/controller.pb-c.h"

#define ADD_METHOD STRATA__V1__CONTROLLER_METHOD__CTL_ADD_CONTROLLER
#define REMOVE_METHOD STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_CONTROLLER
#define LIST_METHOD STRATA__V1__CONTROLLER_METHOD__CTL_LIST_CONTROLLERS

/* ControllerInfo.role: 0 standby, 1 voter, 2 spare. */
static const char *member_role(int32_t role)
{
	switch (role) {
	case 1:
		return "voter";
	case 2:
		return "spare";
	default:
		return "standby";
	}
}

/* ,"name":"value" of a JSON object. */
static void json_field(const char *name, const char *value)
{
	printf(",\"%s\":", name);
	cli_json_string(stdout, value, strlen(value));
}

/* "-" for a field the replica has not recorded. */
static const char *or_dash(const char *s)
{
	return s[0] != '\0' ? s : "-";
}

/* ---------------------------------------------------------- controllers */

static void controllers_json(const Strata__V1__ListControllersReply *r)
{
	printf("{\"leader_id\":%" PRIu64 ",\"committed\":%s,"
	       "\"controllers\":[",
	       r->leader_id, r->committed ? "true" : "false");
	for (size_t i = 0; i < r->n_controllers; i++) {
		const Strata__V1__ControllerInfo *m = r->controllers[i];
		const Strata__V1__ControllerEndpoint *e = m->endpoint;
		printf("%s{\"id\":%" PRIu64 ",\"role\":\"%s\",\"leader\":%s",
		       i > 0 ? "," : "", e != NULL ? e->id : 0,
		       member_role(m->role), m->leader ? "true" : "false");
		json_field("raft", e != NULL ? e->raft_address : "");
		json_field("client_url", e != NULL ? e->client_url : "");
		json_field("http_url", e != NULL ? e->http_url : "");
		printf("}");
	}
	printf("]}\n");
}

static void controllers_text(const Strata__V1__ListControllersReply *r)
{
	printf("%-4s %-8s %-6s %-22s %-28s %s\n", "ID", "ROLE", "LEADER",
	       "RAFT ADDRESS", "CLIENT URL", "HTTP URL");
	for (size_t i = 0; i < r->n_controllers; i++) {
		const Strata__V1__ControllerInfo *m = r->controllers[i];
		const Strata__V1__ControllerEndpoint *e = m->endpoint;
		if (e == NULL) {
			continue;
		}
		printf("%-4" PRIu64 " %-8s %-6s %-22s %-28s %s\n", e->id,
		       member_role(m->role), m->leader ? "*" : "",
		       or_dash(e->raft_address), or_dash(e->client_url),
		       or_dash(e->http_url));
	}
	if (r->committed) {
		printf("Configuration: committed\n");
	} else {
		printf("Configuration: NOT committed (a change is in "
		       "progress, or this replica lags: ask again)\n");
	}
}

static int cluster_controllers(struct cli *c, const struct cli_args *a)
{
	(void)a;
	Strata__V1__ListControllersRequest req =
	        STRATA__V1__LIST_CONTROLLERS_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	int ex = cli_rpc(c, LIST_METHOD, RPC_IDEMPOTENT, &req.base,
	                 &strata__v1__list_controllers_reply__descriptor, &m,
	                 "listing the controllers");
	if (ex != 0) {
		return ex;
	}
	const Strata__V1__ListControllersReply *r = (const void *)m;
	if (c->json) {
		controllers_json(r);
	} else {
		controllers_text(r);
	}
	rpc_pb_free(m);
	return CLI_EXIT_OK;
}

/* ------------------------------------------------------- add and remove */

/* The controller ID positional (> 0) into *id; 0 or the exit code. */
static int controller_id(struct cli *c, const char *text, uint64_t *id)
{
	if (config_parse_uint(text, id) != 0 || *id == 0) {
		return cli_fail(c, STRATA_EINVAL,
		                "controller ID '%s' is not a whole number > 0; "
		                "give the replica's node.id",
		                text);
	}
	return 0;
}

/* True if s is HOST:PORT as the Raft transport takes it: an IPv4
 * address or a DNS name, and a port > 0. */
static bool raft_address_ok(const char *s)
{
	char url[RPC_MAX_URL_LEN + 1], host[256];
	unsigned port;
	struct sockaddr_storage sa;
	socklen_t len;
	int n = snprintf(url, sizeof(url), "tcp://%s", s);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		return false;
	}
	enum sp_url_kind k =
	        sp_url_parse(url, false, host, sizeof(host), &port, &sa, &len);
	return k == SP_URL_NAME ||
	       (k == SP_URL_ADDR && sa.ss_family == AF_INET);
}

/* "--NAME is missing" or "--NAME 'VALUE' is not WANT", and an example;
 * returns the exit code. */
static int bad_opt(struct cli *c, const char *name, const char *value,
                   const char *want, const char *example)
{
	if (value == NULL) {
		return cli_fail(c, STRATA_EINVAL,
		                "--%s is missing: give %s, e.g. --%s %s", name,
		                want, name, example);
	}
	return cli_fail(c, STRATA_EINVAL, "--%s '%s' is not %s; e.g. --%s %s",
	                name, value, want, name, example);
}

/* The endpoint of add-controller from its arguments (strings point into
 * a); 0 or the exit code. */
static int add_endpoint(struct cli *c, const struct cli_args *a,
                        Strata__V1__ControllerEndpoint *ep)
{
	int ex = controller_id(c, a->pos[0], &ep->id);
	if (ex != 0) {
		return ex;
	}
	const char *raft = cli_args_get(a, "raft-address");
	const char *client = cli_args_get(a, "client-url");
	const char *http = cli_args_get(a, "http-url");
	if (raft == NULL || !raft_address_ok(raft)) {
		return bad_opt(c, "raft-address", raft,
		               "HOST:PORT (an IPv4 address or a host name: the "
		               "new replica's raft.listen)",
		               "10.0.0.4:9190");
	}
	if (client == NULL || strstr(client, "://") == NULL) {
		return bad_opt(c, "client-url", client,
		               "a URL (the new replica's listen)",
		               "tcp://10.0.0.4:9090");
	}
	if (http != NULL && strstr(http, "://") == NULL) {
		return bad_opt(c, "http-url", http,
		               "a URL (the new replica's http.listen)",
		               "http://10.0.0.4:9091");
	}
	ep->raft_address = (char *)raft;
	ep->client_url = (char *)client;
	ep->http_url = (char *)(http != NULL ? http : "");
	return 0;
}

/* One membership change (a ControllerReply) for controller id, then
 * {"controller":ID,"<verb>":true} or the text line; the exit code. */
static int change(struct cli *c, uint32_t method, const ProtobufCMessage *req,
                  const char *what, uint64_t id, const char *verb,
                  const char *text)
{
	ProtobufCMessage *m = NULL;
	cli_progress_begin(c, what);
	int ex = cli_rpc(c, method, 0, req,
	                 &strata__v1__controller_reply__descriptor, &m, what);
	cli_progress_end(c);
	rpc_pb_free(m);
	if (ex != 0) {
		return ex;
	}
	if (c->json) {
		printf("{\"controller\":%" PRIu64 ",\"%s\":true}\n", id, verb);
	} else {
		printf("%s\n", text);
	}
	return CLI_EXIT_OK;
}

static const struct cli_opt add_opts[] = {
        {"raft-address", true, "HOST:PORT",
         "its raft.listen, as the others reach it (required)"},
        {"client-url", true, "URL",
         "its client API URL: its listen (required)"},
        {"http-url", true, "URL", "its REST and metrics URL: its http.listen"},
};

static int cluster_add_controller(struct cli *c, const struct cli_args *a)
{
	Strata__V1__ControllerEndpoint ep =
	        STRATA__V1__CONTROLLER_ENDPOINT__INIT;
	Strata__V1__AddControllerRequest req =
	        STRATA__V1__ADD_CONTROLLER_REQUEST__INIT;
	int ex = add_endpoint(c, a, &ep);
	if (ex != 0) {
		return ex;
	}
	req.endpoint = &ep;
	char text[STRATA_ERRMSG_SIZE];
	snprintf(text, sizeof(text),
	         "added controller %" PRIu64 " (%s); update raft.members in "
	         "every replica's configuration",
	         ep.id, ep.client_url);
	return change(c, ADD_METHOD, &req.base, "adding the controller", ep.id,
	              "added", text);
}

static int cluster_remove_controller(struct cli *c, const struct cli_args *a)
{
	Strata__V1__RemoveControllerRequest req =
	        STRATA__V1__REMOVE_CONTROLLER_REQUEST__INIT;
	int ex = controller_id(c, a->pos[0], &req.id);
	if (ex != 0) {
		return ex;
	}
	char text[STRATA_ERRMSG_SIZE];
	snprintf(text, sizeof(text),
	         "removed controller %" PRIu64 "; stop it and delete its "
	         "data_dir, and update raft.members",
	         req.id);
	return change(c, REMOVE_METHOD, &req.base, "removing the controller",
	              req.id, "removed", text);
}

/* ---------------------------------------------------------------- table */

#define OPTS(x) x, sizeof(x) / sizeof(*(x))

const struct cli_cmd cli_members_cmds[] = {
        {"cluster", "controllers", "",
         "Show the controller replicas' Raft configuration",
         "As the replica that answers sees it (the first --controller URL "
         "that does):\neach replica's id, role (voter; spare: being added; "
         "standby), the leader\n(*), its Raft address, client and HTTP "
         "URLs, and whether that configuration\nis committed "
         "(CTL_LIST_CONTROLLERS).\n",
         NULL, 0, 0, 0, cluster_controllers},
        {"cluster", "add-controller", "ID",
         "Add a controller replica to the cluster",
         "First start the new replica with raft.join=true, node.id=ID and "
         "a raft.members\nlisting the running replicas and itself. The "
         "leader records its endpoint,\nadds it as a spare and makes it a "
         "voter once it caught up\n(CTL_ADD_CONTROLLER); this returns when "
         "that configuration committed, within\n--timeout. A failed call "
         "can be repeated. Then update raft.members in every\nreplica's "
         "configuration.\n"
         "\nExample:\n"
         "  stratactl cluster add-controller 4 --raft-address "
         "10.0.0.4:9190 \\\n"
         "      --client-url tcp://10.0.0.4:9090 --http-url "
         "http://10.0.0.4:9091\n",
         OPTS(add_opts), 1, 1, cluster_add_controller},
        {"cluster", "remove-controller", "ID",
         "Remove a controller replica from the cluster",
         "The leader drops it from the voters (CTL_REMOVE_CONTROLLER); "
         "removing the\nleader itself works too: it steps down once the "
         "change committed. The last\nvoter cannot be removed. Then stop "
         "the replica, delete its data_dir and update\nraft.members in "
         "every replica's configuration.\n",
         NULL, 0, 1, 1, cluster_remove_controller},
        {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
