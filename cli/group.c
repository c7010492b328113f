/* stratactl reader-group commands (create, describe, checkpoint, delete)
 * and `read --group`. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cut.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/rpc.h"
#include "strata/readergroup.h"
#include "strata/v1/controller.pb-c.h"

#define GET_READER_GROUP_METHOD 131u /* CTL_GET_READER_GROUP */
#define MAX_GROUP_STREAMS 64

/* Split SCOPE/GROUP; 0 or the exit code. */
static int group_arg(struct cli *c, const char *text, char *scope, char *group)
{
	char err[STRATA_ERRMSG_SIZE];
	if (cli_split_stream(text, scope, group, err) != 0) {
		return cli_fail(c, STRATA_EINVAL,
		                "'%s' is not SCOPE/GROUP; e.g. demo/readers",
		                text);
	}
	return 0;
}

/* The group named by the first argument and a client: 0 or the exit
 * code. */
static int group_target(struct cli *c, const struct cli_args *a, char *scope,
                        char *group, struct strata_client **cl)
{
	int ex = group_arg(c, a->pos[0], scope, group);
	return ex != 0 ? ex : cli_client(c, cl);
}

/* Print one checkpoint as text or JSON. */
static void print_checkpoint(const struct cli *c, const char *group,
                             const struct strata_checkpoint *cp)
{
	if (c->json) {
		printf("{\"group\":");
		cli_json_string(stdout, group, strlen(group));
		printf(",\"checkpoint\":");
		cli_json_string(stdout, cp->name, strlen(cp->name));
		printf(",\"cuts\":[");
	} else {
		printf("checkpoint %s of %s:\n", cp->name, group);
	}
	for (size_t i = 0; i < cp->n; i++) {
		char *t = cli_cut_text(&cp->cuts[i]);
		if (c->json) {
			if (i > 0) {
				fputc(',', stdout);
			}
			cli_json_string(stdout, t != NULL ? t : "",
			                t != NULL ? strlen(t) : 0);
		} else {
			printf("  %s\n", t != NULL ? t : "?");
		}
		strata_free(t);
	}
	if (c->json) {
		printf("]}\n");
	}
}

/* ---------------------------------------------------------- create */

static const struct cli_opt group_create_opts[] = {
        {"stream", true, "SCOPE/STREAM",
         "a stream the group reads (repeatable, at least one)"},
        {"from", true, "head|tail|CUT",
         "where reading starts: all streams, or one cut per stream"},
        {"to", true, "tail|CUT",
         "where reading ends (default: no end); tail or cuts"},
        {"retention", true, "none|manual|auto-checkpoint",
         "hold back the streams' retention until the group released "
         "them: at each completed checkpoint (auto-checkpoint) or by "
         "'group release' (manual); default none"},
        {"checkpoint-interval", true, "DURATION",
         "readers take an automatic checkpoint this often (e.g. 30s; "
         "at least 100ms; default off); with --retention "
         "auto-checkpoint each one releases what was read"},
        {"if-not-exists", false, NULL,
         "succeed (exit 0) when the group already exists"},
};

/* --retention's value; 0 or the exit code. */
static int retention_arg(struct cli *c, const char *v,
                         enum strata_rg_retention *out)
{
	if (v == NULL || strcmp(v, "none") == 0) {
		*out = STRATA_RG_RETENTION_NONE;
	} else if (strcmp(v, "manual") == 0) {
		*out = STRATA_RG_RETENTION_MANUAL;
	} else if (strcmp(v, "auto-checkpoint") == 0) {
		*out = STRATA_RG_RETENTION_AUTO_CHECKPOINT;
	} else {
		return cli_fail(c, STRATA_EINVAL,
		                "--retention '%s': use none, manual or "
		                "auto-checkpoint",
		                v);
	}
	return 0;
}

static const char *retention_name(int r)
{
	switch (r) {
	case STRATA_RG_RETENTION_NONE:
		return "none";
	case STRATA_RG_RETENTION_MANUAL:
		return "manual";
	case STRATA_RG_RETENTION_AUTO_CHECKPOINT:
		return "auto-checkpoint";
	default:
		return "unknown";
	}
}

/* Apply --from or --to (values[0..n)) to the cuts of the group's
 * streams: "head" (from only), "tail", or cuts naming their stream (the
 * prefix may be left out with one stream). 0 or the exit code. */
static int group_cuts(struct cli *c, struct strata_client *cl, const char *opt,
                      const char *const *values, size_t n,
                      char (*scopes)[STRATA_NAME_MAX + 1],
                      char (*streams)[STRATA_NAME_MAX + 1], size_t ns,
                      struct strata_stream_cut *cuts, bool *set)
{
	bool from = strcmp(opt, "from") == 0;
	for (size_t v = 0; v < n; v++) {
		const char *t = values[v];
		if (strcmp(t, "head") == 0 || strcmp(t, "tail") == 0) {
			if (n > 1) {
				return cli_fail(
				        c, STRATA_EINVAL,
				        "--%s %s applies to every stream; "
				        "do not mix it with other --%s",
				        opt, t, opt);
			}
			for (size_t i = 0; i < ns; i++) {
				int ex = cli_cut_resolve(c, cl, scopes[i],
				                         streams[i], opt, t,
				                         from, &cuts[i]);
				if (ex != 0) {
					return ex;
				}
				set[i] = true;
			}
			return 0;
		}
		/* A cut names its stream; find it among the group's. */
		size_t i = 0;
		if (strchr(t, ':') == NULL) {
			if (ns != 1) {
				return cli_fail(
				        c, STRATA_EINVAL,
				        "--%s '%s': with several streams "
				        "write SCOPE/STREAM:... so the cut "
				        "names its stream",
				        opt, t);
			}
		} else {
			size_t pl = (size_t)(strchr(t, ':') - t);
			for (i = 0; i < ns; i++) {
				char name[2 * STRATA_NAME_MAX + 2];
				snprintf(name, sizeof(name), "%s/%s", scopes[i],
				         streams[i]);
				if (strlen(name) == pl &&
				    strncmp(name, t, pl) == 0) {
					break;
				}
			}
			if (i == ns) {
				return cli_fail(
				        c, STRATA_EINVAL,
				        "--%s '%.80s' names a stream the "
				        "group does not read (add it with "
				        "--stream)",
				        opt, t);
			}
		}
		if (set[i]) {
			return cli_fail(c, STRATA_EINVAL,
			                "--%s names %s/%s twice; give one cut "
			                "per stream",
			                opt, scopes[i], streams[i]);
		}
		strata_stream_cut_clear(&cuts[i]);
		int ex = cli_cut_resolve(c, cl, scopes[i], streams[i], opt, t,
		                         from, &cuts[i]);
		if (ex != 0) {
			return ex;
		}
		set[i] = true;
	}
	return 0;
}

/* group update: replace the configuration of scope/group by cfg. */
static int put_update(struct cli *c, struct strata_client *cl, const char *what,
                      const char *scope, const char *group,
                      const struct strata_reader_group_config *cfg, size_t ns)
{
	char err[STRATA_ERRMSG_SIZE];
	struct strata_reader_group *rg = NULL;
	cli_progress_begin(c, "updating the reader group");
	int rc = strata_reader_group_open(cl, scope, group, &rg, err);
	if (rc == 0) {
		rc = strata_reader_group_update(rg, cfg, err);
		strata_reader_group_close(rg);
	}
	cli_progress_end(c);
	if (rc != 0) {
		return cli_fail_op(c, rc, what, err);
	}
	if (c->json) {
		printf("{\"group\":");
		cli_json_string(stdout, what, strlen(what));
		printf(",\"updated\":true}\n");
	} else {
		printf("updated reader group %s: reads %zu stream%s from the "
		       "start again\n",
		       what, ns, ns == 1 ? "" : "s");
	}
	return 0;
}

/* group create, or group update (update: replace the configuration). */
static int group_put(struct cli *c, const struct cli_args *a, bool update)
{
	char scope[STRATA_NAME_MAX + 1], group[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	enum strata_rg_retention retention = STRATA_RG_RETENTION_NONE;
	int ex = group_arg(c, a->pos[0], scope, group);
	if (ex == 0) {
		ex = retention_arg(c, cli_args_get(a, "retention"), &retention);
	}
	uint64_t interval = 0;
	const char *iv = cli_args_get(a, "checkpoint-interval");
	if (ex == 0 && iv != NULL &&
	    (config_parse_duration_ms(iv, &interval) != 0 || interval < 100 ||
	     interval > UINT32_MAX)) {
		ex = cli_fail(c, STRATA_EINVAL,
		              "--checkpoint-interval '%s': give a duration "
		              "of at least 100ms, e.g. 30s",
		              iv);
	}
	if (ex != 0) {
		return ex;
	}
	static char scopes[MAX_GROUP_STREAMS][STRATA_NAME_MAX + 1];
	static char streams[MAX_GROUP_STREAMS][STRATA_NAME_MAX + 1];
	const char *names[MAX_GROUP_STREAMS];
	size_t ns = cli_args_all(a, "stream", names, MAX_GROUP_STREAMS);
	if (ns == 0 || ns > MAX_GROUP_STREAMS) {
		return cli_fail(c, STRATA_EINVAL,
		                "give 1..%d --stream SCOPE/STREAM", 64);
	}
	for (size_t i = 0; i < ns; i++) {
		if (cli_split_stream(names[i], scopes[i], streams[i], err) !=
		    0) {
			return cli_fail(c, STRATA_EINVAL, "--stream: %s", err);
		}
	}
	struct strata_client *cl;
	ex = cli_client(c, &cl);
	if (ex != 0) {
		return ex;
	}
	struct strata_stream_cut start[MAX_GROUP_STREAMS];
	struct strata_stream_cut end[MAX_GROUP_STREAMS];
	bool start_set[MAX_GROUP_STREAMS] = {false};
	bool end_set[MAX_GROUP_STREAMS] = {false};
	struct strata_reader_group_stream gs[MAX_GROUP_STREAMS];
	memset(start, 0, sizeof(start));
	memset(end, 0, sizeof(end));
	for (size_t i = 0; i < ns; i++) {
		/* Both fit: cli_split_stream bounds them. */
		size_t sl = strnlen(scopes[i], STRATA_NAME_MAX);
		size_t tl = strnlen(streams[i], STRATA_NAME_MAX);
		memcpy(start[i].scope, scopes[i], sl);
		start[i].scope[sl] = '\0';
		memcpy(start[i].stream, streams[i], tl);
		start[i].stream[tl] = '\0';
		end[i] = start[i];
	}
	const char *vals[MAX_GROUP_STREAMS];
	size_t nv = cli_args_all(a, "from", vals, MAX_GROUP_STREAMS);
	ex = group_cuts(c, cl, "from", vals,
	                nv < MAX_GROUP_STREAMS ? nv : MAX_GROUP_STREAMS, scopes,
	                streams, ns, start, start_set);
	if (ex == 0) {
		nv = cli_args_all(a, "to", vals, MAX_GROUP_STREAMS);
		ex = group_cuts(c, cl, "to", vals,
		                nv < MAX_GROUP_STREAMS ? nv : MAX_GROUP_STREAMS,
		                scopes, streams, ns, end, end_set);
	}
	if (ex == 0) {
		struct strata_reader_group_config cfg;
		strata_reader_group_config_default(&cfg);
		for (size_t i = 0; i < ns; i++) {
			gs[i].start = &start[i];
			gs[i].end = end_set[i] ? &end[i] : NULL;
		}
		cfg.streams = gs;
		cfg.n_streams = ns;
		cfg.retention = retention;
		cfg.checkpoint_interval_ms = (uint32_t)interval;
		if (update) {
			ex = put_update(c, cl, a->pos[0], scope, group, &cfg,
			                ns);
			goto done;
		}
		cli_progress_begin(c, "creating the reader group");
		int rc =
		        strata_reader_group_create(cl, scope, group, &cfg, err);
		cli_progress_end(c);
		bool existed =
		        rc == STRATA_EEXIST && cli_args_has(a, "if-not-exists");
		if (rc != 0 && !existed) {
			ex = cli_fail_op(c, rc, a->pos[0], err);
		} else if (c->json) {
			printf("{\"group\":");
			cli_json_string(stdout, a->pos[0], strlen(a->pos[0]));
			printf(",\"created\":%s}\n",
			       existed ? "false" : "true");
		} else if (existed) {
			printf("reader group %s already exists\n", a->pos[0]);
		} else {
			printf("created reader group %s reading %zu stream%s\n",
			       a->pos[0], ns, ns == 1 ? "" : "s");
		}
	}
done:
	for (size_t i = 0; i < ns; i++) {
		strata_stream_cut_clear(&start[i]);
		strata_stream_cut_clear(&end[i]);
	}
	return ex;
}

static int group_create(struct cli *c, const struct cli_args *a)
{
	return group_put(c, a, false);
}

static int group_update(struct cli *c, const struct cli_args *a)
{
	return group_put(c, a, true);
}

/* -------------------------------------------------------- describe */

/* Text of a proto StreamCut of scope/stream ("" = unbounded), malloc'd. */
static char *pb_cut_text(const char *scope, const char *stream,
                         const Strata__V1__StreamCut *pc)
{
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	snprintf(cut.scope, sizeof(cut.scope), "%s", scope);
	snprintf(cut.stream, sizeof(cut.stream), "%s", stream);
	size_t n = pc != NULL ? pc->n_positions : 0;
	struct strata_segment_position *pos = NULL;
	if (n > 0) {
		pos = strata_calloc(n, sizeof(*pos));
		if (pos == NULL) {
			return NULL;
		}
		for (size_t i = 0; i < n; i++) {
			pos[i].segment_id = pc->positions[i]->segment_id;
			pos[i].offset = pc->positions[i]->offset;
		}
	}
	cut.n = n;
	cut.positions = pos;
	char *t = cli_cut_text(&cut);
	strata_free(pos);
	return t;
}

/* The group's configuration, as the controller keeps it (*out: free with
 * rpc_pb_free); 0 or the exit code. what names the group in errors. */
static int group_config(struct cli *c, const char *scope, const char *group,
                        const char *what, Strata__V1__ReaderGroupConfig **out)
{
	Strata__V1__GetReaderGroupRequest req =
	        STRATA__V1__GET_READER_GROUP_REQUEST__INIT;
	req.scope = (char *)scope;
	req.name = (char *)group;
	ProtobufCMessage *m = NULL;
	int ex =
	        cli_rpc(c, GET_READER_GROUP_METHOD, RPC_IDEMPOTENT, &req.base,
	                &strata__v1__reader_group_config__descriptor, &m, what);
	*out = (Strata__V1__ReaderGroupConfig *)m;
	return ex;
}

static int group_describe(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], group[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	struct strata_client *cl;
	int ex = group_target(c, a, scope, group, &cl);
	if (ex != 0) {
		return ex;
	}
	Strata__V1__ReaderGroupConfig *g = NULL;
	ex = group_config(c, scope, group, a->pos[0], &g);
	if (ex != 0) {
		return ex;
	}
	ProtobufCMessage *m = &g->base;
	int code;

	/* Its online readers, from the group's state. */
	struct strata_reader_group *rg = NULL;
	struct strata_names *readers = NULL;
	code = strata_reader_group_open(cl, scope, group, &rg, err);
	if (code == 0) {
		code = strata_reader_group_online_readers(rg, &readers, err);
		strata_reader_group_close(rg);
	}
	if (code != 0) {
		rpc_pb_free(m);
		return cli_fail_op(c, code, a->pos[0], err);
	}
	if (c->json) {
		printf("{\"group\":");
		cli_json_string(stdout, a->pos[0], strlen(a->pos[0]));
		printf(",\"generation\":%" PRIu64
		       ",\"retention\":\"%s\",\"checkpoint_interval_ms\":"
		       "%" PRIu64 ",\"streams\":[",
		       g->generation, retention_name((int)g->retention),
		       g->checkpoint_interval_ms);
	} else {
		printf("Reader group: %s\nGeneration:   %" PRIu64
		       "\nRetention:    %s\n",
		       a->pos[0], g->generation,
		       retention_name((int)g->retention));
		if (g->checkpoint_interval_ms > 0) {
			printf("Checkpoints:  automatic, every %" PRIu64
			       " ms\n",
			       g->checkpoint_interval_ms);
		} else {
			printf("Checkpoints:  on request\n");
		}
		printf("Streams:\n");
	}
	for (size_t i = 0; i < g->n_streams; i++) {
		const Strata__V1__ReaderGroupStream *s = g->streams[i];
		char *from = pb_cut_text(s->scope, s->stream, s->start);
		char *to = pb_cut_text(s->scope, s->stream, s->end);
		bool from_head = s->start == NULL || s->start->n_positions == 0;
		bool no_end = s->end == NULL || s->end->n_positions == 0;
		const Strata__V1__StreamCut *rel = NULL;
		bool holds = false;
		for (size_t k = 0; k < g->n_released; k++) {
			if (strcmp(g->released[k]->scope, s->scope) == 0 &&
			    strcmp(g->released[k]->stream, s->stream) == 0) {
				rel = g->released[k]->cut;
				holds = true;
			}
		}
		bool subscribed =
		        g->retention !=
		        STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_NONE;
		bool rel_head = rel == NULL || rel->n_positions == 0;
		char *released = pb_cut_text(s->scope, s->stream, rel);
		if (c->json) {
			char name[2 * STRATA_NAME_MAX + 2];
			snprintf(name, sizeof(name), "%s/%s", s->scope,
			         s->stream);
			printf("%s{\"stream\":", i > 0 ? "," : "");
			cli_json_string(stdout, name, strlen(name));
			printf(",\"from\":");
			cli_json_string(stdout, from_head ? "head" : from,
			                strlen(from_head ? "head" : from));
			printf(",\"to\":");
			if (no_end) {
				printf("null");
			} else {
				cli_json_string(stdout, to, strlen(to));
			}
			if (holds || subscribed) {
				const char *t = !holds ? "deleted"
				                : rel_head || released == NULL
				                        ? "head"
				                        : released;
				printf(",\"released\":");
				cli_json_string(stdout, t, strlen(t));
			}
			printf("}");
		} else {
			printf("  %s/%s\n    from: %s\n    to:   %s\n",
			       s->scope, s->stream, from_head ? "head" : from,
			       no_end ? "(no end)" : to);
			if (holds) {
				printf("    released: %s\n",
				       rel_head || released == NULL
				               ? "nothing (holds from the head)"
				               : released);
			} else if (subscribed) {
				printf("    released: none held (the stream "
				       "was deleted since; update the group "
				       "to hold it again)\n");
			}
		}
		strata_free(from);
		strata_free(to);
		strata_free(released);
	}
	if (c->json) {
		printf("],\"readers\":[");
	} else {
		printf("Online readers:%s\n", readers->n == 0 ? " none" : "");
	}
	for (size_t i = 0; i < readers->n; i++) {
		if (c->json) {
			if (i > 0) {
				fputc(',', stdout);
			}
			cli_json_string(stdout, readers->names[i],
			                strlen(readers->names[i]));
		} else {
			printf("  %s\n", readers->names[i]);
		}
	}
	if (c->json) {
		printf("]}\n");
	}
	strata_names_free(readers);
	rpc_pb_free(m);
	return 0;
}

/* ------------------------------------------------------ checkpoint */

static const struct cli_opt group_checkpoint_opts[] = {
        {"name", true, "NAME",
         "checkpoint name, unique in the group (default cp-<time>)"},
};

static int group_checkpoint(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], group[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	struct strata_client *cl;
	int ex = group_target(c, a, scope, group, &cl);
	if (ex != 0) {
		return ex;
	}
	char name[64];
	const char *n = cli_args_get(a, "name");
	if (n == NULL) {
		snprintf(name, sizeof(name), "cp-%" PRIu64, clock_wall_ms());
		n = name;
	}
	struct strata_reader_group *rg = NULL;
	int rc = strata_reader_group_open(cl, scope, group, &rg, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	struct strata_checkpoint *cp = NULL;
	cli_progress_begin(c, "waiting for the readers to pass the "
	                      "checkpoint");
	rc = strata_reader_group_initiate_checkpoint(rg, n, (int)c->timeout_ms,
	                                             &cp, err);
	cli_progress_end(c);
	strata_reader_group_close(rg);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	print_checkpoint(c, a->pos[0], cp);
	strata_checkpoint_free(cp);
	return 0;
}

/* --------------------------------------------------------- release */

static const struct cli_opt group_release_opts[] = {
        {"at", true, "tail|CUT",
         "where to release: tail for every stream, or one cut per "
         "stream (repeatable)"},
};

static int group_release(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], group[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	const char *vals[MAX_GROUP_STREAMS];
	size_t nv = cli_args_all(a, "at", vals, MAX_GROUP_STREAMS);
	if (nv == 0 || nv > MAX_GROUP_STREAMS) {
		return cli_fail(c, STRATA_EINVAL,
		                "give --at tail or 1..%d --at CUT",
		                MAX_GROUP_STREAMS);
	}
	struct strata_client *cl;
	int ex = group_target(c, a, scope, group, &cl);
	if (ex != 0) {
		return ex;
	}
	Strata__V1__ReaderGroupConfig *g = NULL;
	ex = group_config(c, scope, group, a->pos[0], &g);
	if (ex != 0) {
		return ex;
	}
	static char scopes[MAX_GROUP_STREAMS][STRATA_NAME_MAX + 1];
	static char streams[MAX_GROUP_STREAMS][STRATA_NAME_MAX + 1];
	struct strata_stream_cut cuts[MAX_GROUP_STREAMS];
	bool set[MAX_GROUP_STREAMS] = {false};
	size_t ns = g->n_streams < MAX_GROUP_STREAMS ? g->n_streams
	                                             : MAX_GROUP_STREAMS;
	memset(cuts, 0, sizeof(cuts));
	for (size_t i = 0; i < ns; i++) {
		snprintf(scopes[i], sizeof(scopes[i]), "%s",
		         g->streams[i]->scope);
		snprintf(streams[i], sizeof(streams[i]), "%s",
		         g->streams[i]->stream);
		snprintf(cuts[i].scope, sizeof(cuts[i].scope), "%s", scopes[i]);
		snprintf(cuts[i].stream, sizeof(cuts[i].stream), "%s",
		         streams[i]);
	}
	rpc_pb_free(&g->base);
	ex = group_cuts(c, cl, "at", vals, nv, scopes, streams, ns, cuts, set);
	struct strata_stream_cut chosen[MAX_GROUP_STREAMS];
	size_t n = 0;
	for (size_t i = 0; ex == 0 && i < ns; i++) {
		if (set[i]) {
			chosen[n++] = cuts[i];
		}
	}
	if (ex == 0) {
		struct strata_reader_group *rg = NULL;
		int rc = strata_reader_group_open(cl, scope, group, &rg, err);
		if (rc == 0) {
			rc = strata_reader_group_update_retention_cut(
			        rg, chosen, n, err);
			strata_reader_group_close(rg);
		}
		if (rc != 0) {
			ex = cli_fail_op(c, rc, a->pos[0], err);
		} else if (c->json) {
			printf("{\"group\":");
			cli_json_string(stdout, a->pos[0], strlen(a->pos[0]));
			printf(",\"released\":%zu}\n", n);
		} else {
			printf("reader group %s released %zu stream%s\n",
			       a->pos[0], n, n == 1 ? "" : "s");
		}
	}
	for (size_t i = 0; i < ns; i++) {
		strata_stream_cut_clear(&cuts[i]);
	}
	return ex;
}

static int group_delete(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], group[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	struct strata_client *cl;
	int ex = group_target(c, a, scope, group, &cl);
	if (ex != 0) {
		return ex;
	}
	int rc = strata_reader_group_delete(cl, scope, group, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	if (c->json) {
		printf("{\"group\":");
		cli_json_string(stdout, a->pos[0], strlen(a->pos[0]));
		printf(",\"deleted\":true}\n");
	} else {
		printf("deleted reader group %s\n", a->pos[0]);
	}
	return 0;
}

/* Declare readers offline: their segments go back to the group at
 * their last recorded positions. Only online readers may be named (a
 * typo must not pass silently). */
static int group_offline(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], group[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	struct strata_client *cl;
	int ex = group_target(c, a, scope, group, &cl);
	if (ex != 0) {
		return ex;
	}
	struct strata_reader_group *rg = NULL;
	struct strata_names *online = NULL;
	int rc = strata_reader_group_open(cl, scope, group, &rg, err);
	if (rc == 0) {
		rc = strata_reader_group_online_readers(rg, &online, err);
	}
	for (size_t i = 1; rc == 0 && i < a->n_pos; i++) {
		bool found = false;
		for (size_t k = 0; k < online->n && !found; k++) {
			found = strcmp(online->names[k], a->pos[i]) == 0;
		}
		if (!found) {
			ex = cli_fail(c, STRATA_ENOENT,
			              "reader '%s' is not online in group %s "
			              "(online: %zu reader%s; see 'group "
			              "describe')",
			              a->pos[i], a->pos[0], online->n,
			              online->n == 1 ? "" : "s");
			break;
		}
	}
	size_t done = 0;
	for (size_t i = 1; rc == 0 && ex == 0 && i < a->n_pos; i++) {
		rc = strata_reader_group_reader_offline(rg, a->pos[i], err);
		done += rc == 0;
	}
	strata_names_free(online);
	strata_reader_group_close(rg);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	if (ex != 0) {
		return ex;
	}
	if (c->json) {
		printf("{\"group\":");
		cli_json_string(stdout, a->pos[0], strlen(a->pos[0]));
		printf(",\"offline\":%zu}\n", done);
	} else {
		printf("reader group %s: %zu reader%s declared offline; "
		       "their segments are free again\n",
		       a->pos[0], done, done == 1 ? "" : "s");
	}
	return 0;
}

/* ---------------------------------------------------- read --group */

/* SIGINT/SIGTERM while reading in a group: leave the group cleanly. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

int cli_read_group(struct cli *c, const struct cli_args *a,
                   const char *default_scope, bool follow, bool prefixed,
                   uint64_t max)
{
	char err[STRATA_ERRMSG_SIZE];
	char scope[STRATA_NAME_MAX + 1], group[STRATA_NAME_MAX + 1];
	const char *g = cli_args_get(a, "group");
	if (strchr(g, '/') != NULL) {
		int ex = group_arg(c, g, scope, group);
		if (ex != 0) {
			return ex;
		}
	} else if (default_scope != NULL && g[0] != '\0' &&
	           strlen(g) <= STRATA_NAME_MAX) {
		snprintf(scope, sizeof(scope), "%s", default_scope);
		snprintf(group, sizeof(group), "%s", g);
	} else {
		return cli_fail(c, STRATA_EINVAL,
		                "--group '%s': write SCOPE/GROUP (or GROUP "
		                "after SCOPE/STREAM)",
		                g);
	}
	char reader[STRATA_NAME_MAX + 1];
	const char *rn = cli_args_get(a, "reader");
	if (rn != NULL && strlen(rn) > STRATA_NAME_MAX) {
		return cli_fail(c, STRATA_EINVAL,
		                "--reader: the name is %zu bytes; give 1..%d",
		                strlen(rn), STRATA_NAME_MAX);
	}
	if (default_scope != NULL && a->n_pos > 0) {
		/* SCOPE/STREAM given too: it must be one the group reads. */
		const char *slash = strchr(a->pos[0], '/');
		const char *sname = slash != NULL ? slash + 1 : a->pos[0];
		Strata__V1__ReaderGroupConfig *gc = NULL;
		int ex = group_config(c, scope, group, g, &gc);
		if (ex != 0) {
			return ex;
		}
		bool reads = false;
		for (size_t i = 0; i < gc->n_streams && !reads; i++) {
			reads = strcmp(gc->streams[i]->scope, default_scope) ==
			                0 &&
			        strcmp(gc->streams[i]->stream, sname) == 0;
		}
		rpc_pb_free(&gc->base);
		if (!reads) {
			return cli_fail(
			        c, STRATA_EINVAL,
			        "reader group %s/%s does not read %s; "
			        "leave the stream out or name one it reads "
			        "('group describe')",
			        scope, group, a->pos[0]);
		}
	}
	if (rn != NULL) {
		snprintf(reader, sizeof(reader), "%s", rn);
	} else {
		char host[64] = "host";
		gethostname(host, sizeof(host));
		host[sizeof(host) - 1] = '\0';
		snprintf(reader, sizeof(reader), "stratactl-%s-%ld", host,
		         (long)getpid());
	}
	struct strata_client *cl;
	int ex = cli_client(c, &cl);
	if (ex != 0) {
		return ex;
	}
	struct strata_reader *r = NULL;
	int rc = strata_reader_new(cl, scope, group, reader, &r, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, g, err);
	}
	/* Ctrl-C ends the read; the reader then leaves the group and hands
	 * its segments back instead of staying online until declared
	 * offline. */
	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (old_int.sa_handler == SIG_IGN) {
		sigaction(SIGINT, &old_int, NULL); /* e.g. started with & */
	}
	uint64_t events = 0, bytes = 0, t0 = cli_now_ms();
	unsigned idle = 0;
	bool out_failed = false;
	int out_errno = 0;
	bool unflushed = false;
	for (;;) {
		struct strata_read rd;
		if (interrupted) {
			break; /* before next: a returned event is printed */
		}
		/* Any call of next may record the group's position after the
		 * events returned so far (progress, checkpoints): they must be
		 * on stdout by then, or a kill -9 loses them (the reader
		 * declared offline, another goes on after them). */
		if (unflushed) {
			fflush(stdout);
			unflushed = false;
		}
		rc = strata_reader_next(r, 1000, &rd, err);
		if (rc == STRATA_ETRUNCATED) {
			/* Retention went past us; the reader goes on. */
			fflush(stdout);
			fprintf(stderr, "stratactl read: %s\n", err);
			rc = 0;
			continue;
		}
		if (rc != 0 || rd.kind == STRATA_READ_END) {
			break;
		}
		if (rd.kind == STRATA_READ_NONE) {
			if (!follow && ++idle >= 2) {
				break;
			}
			fflush(stdout);
			continue;
		}
		idle = 0;
		if (rd.kind == STRATA_READ_CHECKPOINT) {
			if (!c->quiet && !c->json) {
				fprintf(stderr, "passed checkpoint %s\n",
				        rd.checkpoint);
			}
			continue;
		}
		if (!cli_print_event(c, prefixed, rd.scope, rd.stream,
		                     rd.segment_id, rd.offset, rd.data,
		                     rd.len)) {
			out_failed = true;
			out_errno = errno != 0 ? errno : EIO;
			break;
		}
		events++;
		bytes += rd.len;
		unflushed = true;
		if (max != 0 && events >= max) {
			break;
		}
	}
	char cerr[STRATA_ERRMSG_SIZE];
	fflush(stdout);
	int crc = strata_reader_close(r, cerr);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (out_failed) {
		if (out_errno == EPIPE) {
			return 0;
		}
		return cli_fail(c, STRATA_EIO, "writing to stdout: %s",
		                strerror(out_errno));
	}
	if (rc != 0) {
		return cli_fail_op(c, rc, g, err);
	}
	if (crc != 0) {
		return cli_fail_op(c, crc, g, cerr);
	}
	if (!c->quiet && !c->json) {
		fprintf(stderr,
		        "read %" PRIu64 " event%s (%" PRIu64 " bytes) as "
		        "reader %s of %s/%s in %.2f s\n",
		        events, events == 1 ? "" : "s", bytes, reader, scope,
		        group, (double)(cli_now_ms() - t0) / 1000.0);
	}
	return 0;
}

/* ---------------------------------------------------------------- table */

#define OPTS_N(x) (sizeof(x) / sizeof(*(x)))
#define OPTS(x) x, OPTS_N(x)

const struct cli_cmd cli_group_cmds[] = {
        {"group", "create", "SCOPE/GROUP",
         "Create a reader group over one or more streams",
         "Readers of a group ('stratactl read --group', or libstrata "
         "readers) share\nthe segments: every event is read by one "
         "reader, events of one routing key\nin order. --from/--to take "
         "head or tail for every stream, or one cut per\nstream "
         "(SCOPE/STREAM:NUMBER.EPOCH=OFFSET,...).\n",
         OPTS(group_create_opts), 1, 1, group_create},
        {"group", "update", "SCOPE/GROUP",
         "Replace a reader group's configuration and start it over",
         "Takes the same options as 'group create' (except "
         "--if-not-exists) and replaces\nthe group's streams, cuts, "
         "retention and checkpoint interval: its readers\nare removed "
         "(running ones stop with an error and must be started again),\n"
         "its checkpoints dropped, and reading starts over at the new "
         "--from cuts\n(default: each stream's head).\n",
         /* create's options but the last, --if-not-exists */
         group_create_opts, OPTS_N(group_create_opts) - 1, 1, 1, group_update},
        {"group", "describe", "SCOPE/GROUP",
         "Show a reader group's streams and online readers", NULL, NULL, 0, 1,
         1, group_describe},
        {"group", "checkpoint", "SCOPE/GROUP",
         "Start a checkpoint and print its stream cuts once every "
         "reader passed it",
         "Online readers pass the checkpoint as they read on; with "
         "none online it\ncompletes at once. Waits up to --timeout "
         "(exit 3 after it: the checkpoint\nstays pending). The cuts "
         "are where the group's readers were: give them to\n'read "
         "--from' or 'stream truncate --at'.\n",
         OPTS(group_checkpoint_opts), 1, 1, group_checkpoint},
        {"group", "release", "SCOPE/GROUP",
         "Release a group's streams to retention up to a cut",
         "For a group created with --retention manual (or "
         "auto-checkpoint): a stream's\nretention policy truncates it "
         "only up to where every such group released it\n(and keeps at "
         "least the policy's minimum; its maximum still applies).\n--at "
         "tail releases everything written so far; cuts come from "
         "'group\ncheckpoint' or 'stream describe'.\n",
         OPTS(group_release_opts), 1, 1, group_release},
        {"group", "offline", "SCOPE/GROUP READER...",
         "Declare readers whose process died offline",
         "A reader that stops without closing (kill -9, a lost machine) "
         "keeps its\nsegments, and the group's other readers wait for "
         "them. This gives them back\nto the group at the positions the "
         "reader last recorded (its last checkpoint\nor progress "
         "report): another reader goes on from there, so events after\n"
         "them are read again. Name only readers whose process is gone: "
         "one still\nrunning fails at its next call, and what it returned "
         "since its last\nposition is read again by others.\n",
         NULL, 0, 2, CLI_MAX_POS, group_offline},
        {"group", "delete", "SCOPE/GROUP", "Delete a reader group", NULL, NULL,
         0, 1, 1, group_delete},
        {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
