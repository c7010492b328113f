/* stratactl management commands: scope, stream and cluster status. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cut.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/rpc.h"
#include "strata/v1/cluster.pb-c.h"

#define CLUSTER_STATUS_METHOD 304u /* cluster.proto CLUSTER_STATUS */

/* Print the names of a list, as lines or a JSON array. */
static void print_names(const struct cli *c, const struct strata_names *n)
{
	if (c->json) {
		fputc('[', stdout);
		for (size_t i = 0; i < n->n; i++) {
			if (i > 0) {
				fputc(',', stdout);
			}
			cli_json_string(stdout, n->names[i],
			                strlen(n->names[i]));
		}
		fputs("]\n", stdout);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		printf("%s\n", n->names[i]);
	}
}

/* "ok" answer of a change: JSON object or a line on stdout. */
static void print_done(const struct cli *c, const char *verb, const char *what,
                       const char *name, bool existed)
{
	if (c->json) {
		printf("{\"%s\":", what);
		cli_json_string(stdout, name, strlen(name));
		printf(",\"%s\":%s}\n", verb, existed ? "false" : "true");
	} else if (existed) {
		printf("%s %s already exists\n", what, name);
	} else {
		printf("%s %s %s\n", verb, what, name);
	}
}

/* --------------------------------------------------------------- scope */

static const struct cli_opt scope_create_opts[] = {
        {"if-not-exists", false, NULL,
         "succeed (exit 0) when the scope already exists"},
};

static int scope_create(struct cli *c, const struct cli_args *a)
{
	struct strata_client *cl;
	int ex = cli_client(c, &cl);
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	const char *scope = a->pos[0];
	int rc = strata_scope_create(cl, scope, err);
	if (rc == STRATA_EEXIST && cli_args_has(a, "if-not-exists")) {
		print_done(c, "created", "scope", scope, true);
		return 0;
	}
	if (rc != 0) {
		return cli_fail_op(c, rc, scope, err);
	}
	print_done(c, "created", "scope", scope, false);
	return 0;
}

static int scope_list(struct cli *c, const struct cli_args *a)
{
	(void)a;
	struct strata_client *cl;
	int ex = cli_client(c, &cl);
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	struct strata_names *n = NULL;
	int rc = strata_scope_list(cl, &n, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, "listing scopes", err);
	}
	print_names(c, n);
	strata_names_free(n);
	return 0;
}

static int scope_delete(struct cli *c, const struct cli_args *a)
{
	struct strata_client *cl;
	int ex = cli_client(c, &cl);
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	const char *scope = a->pos[0];
	int rc = strata_scope_delete(cl, scope, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, scope, err);
	}
	print_done(c, "deleted", "scope", scope, false);
	return 0;
}

/* -------------------------------------------------------------- stream */

/* Split the SCOPE/STREAM positional; 0 or the exit code. */
static int stream_arg(struct cli *c, const char *text, char *scope,
                      char *stream)
{
	char err[STRATA_ERRMSG_SIZE];
	if (cli_split_stream(text, scope, stream, err) != 0) {
		return cli_fail(c, STRATA_EINVAL, "%s", err);
	}
	return 0;
}

static const struct cli_opt stream_create_opts[] = {
        {"segments", true, "N",
         "segments (fixed scaling) or the minimum (rate scaling); 1"},
        {"scaling", true, "POLICY", "fixed (default), event-rate or data-rate"},
        {"target-rate", true, "N",
         "rate scaling: events/s or KiB/s per segment"},
        {"scale-factor", true, "N",
         "rate scaling: most segments one split makes (2)"},
        {"retention-time", true, "DURATION",
         "keep at least this long (e.g. 7d); older data may go"},
        {"retention-size", true, "SIZE",
         "keep at least this much (e.g. 10GiB); older data may go"},
        {"retention-max", true, "VALUE",
         "retention: keep at most this (duration or size)"},
        {"tag", true, "TAG", "tag the stream (repeatable)"},
        {"if-not-exists", false, NULL,
         "succeed (exit 0) when the stream already exists"},
};

/* Parse an unsigned option into *out (>= min); 0 or the exit code. */
static int uint_opt(struct cli *c, const struct cli_args *a, const char *name,
                    uint64_t min, uint64_t max, uint32_t *out)
{
	const char *v = cli_args_get(a, name);
	if (v == NULL) {
		return 0;
	}
	uint64_t x;
	if (config_parse_uint(v, &x) != 0 || x < min || x > max) {
		return cli_fail(c, STRATA_EINVAL,
		                "--%s '%s' is not a whole number in "
		                "%" PRIu64 "..%" PRIu64,
		                name, v, min, max);
	}
	*out = (uint32_t)x;
	return 0;
}

/* Build the stream config from the options; tags point into a. */
static int stream_config(struct cli *c, const struct cli_args *a,
                         struct strata_stream_config *cfg, const char **tags,
                         size_t max_tags)
{
	strata_stream_config_default(cfg);
	int ex = uint_opt(c, a, "segments", 1, 4096, &cfg->min_segments);
	if (ex == 0) {
		ex = uint_opt(c, a, "target-rate", 1, UINT32_MAX,
		              &cfg->target_rate);
	}
	if (ex == 0) {
		cfg->scale_factor = 2;
		ex = uint_opt(c, a, "scale-factor", 1, 1024,
		              &cfg->scale_factor);
	}
	if (ex != 0) {
		return ex;
	}
	const char *s = cli_args_get(a, "scaling");
	if (s == NULL || strcmp(s, "fixed") == 0) {
		cfg->scaling = STRATA_SCALING_FIXED;
	} else if (strcmp(s, "event-rate") == 0) {
		cfg->scaling = STRATA_SCALING_BY_EVENT_RATE;
	} else if (strcmp(s, "data-rate") == 0) {
		cfg->scaling = STRATA_SCALING_BY_DATA_RATE;
	} else {
		return cli_fail(c, STRATA_EINVAL,
		                "--scaling '%s': use fixed, event-rate or "
		                "data-rate",
		                s);
	}
	if (cfg->scaling != STRATA_SCALING_FIXED &&
	    !cli_args_has(a, "target-rate")) {
		return cli_fail(c, STRATA_EINVAL,
		                "--scaling %s needs --target-rate N (per "
		                "segment)",
		                s);
	}
	const char *rt = cli_args_get(a, "retention-time");
	const char *rs = cli_args_get(a, "retention-size");
	const char *rm = cli_args_get(a, "retention-max");
	if (rt != NULL && rs != NULL) {
		return cli_fail(c, STRATA_EINVAL,
		                "give --retention-time or --retention-size, "
		                "not both");
	}
	if (rt != NULL || rs != NULL) {
		bool time = rt != NULL;
		int (*parse)(const char *, uint64_t *) =
		        time ? config_parse_duration_ms : config_parse_size;
		const char *kind =
		        time ? "duration (e.g. 7d)" : "size (e.g. 10GiB)";
		cfg->retention = time ? STRATA_RETENTION_BY_TIME
		                      : STRATA_RETENTION_BY_SIZE;
		if (parse(time ? rt : rs, &cfg->retention_min) != 0) {
			return cli_fail(c, STRATA_EINVAL,
			                "--retention-%s '%s' is not a %s",
			                time ? "time" : "size", time ? rt : rs,
			                kind);
		}
		if (rm != NULL && parse(rm, &cfg->retention_max) != 0) {
			return cli_fail(c, STRATA_EINVAL,
			                "--retention-max '%s' is not a %s", rm,
			                kind);
		}
	} else if (rm != NULL) {
		return cli_fail(c, STRATA_EINVAL,
		                "--retention-max needs --retention-time or "
		                "--retention-size");
	}
	size_t nt = cli_args_all(a, "tag", tags, max_tags);
	if (nt > max_tags) {
		return cli_fail(c, STRATA_EINVAL, "more than %zu --tag",
		                max_tags);
	}
	cfg->tags = tags;
	cfg->n_tags = nt;
	return 0;
}

static int stream_create(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	struct strata_stream_config cfg;
	const char *tags[32];
	int ex = stream_arg(c, a->pos[0], scope, stream);
	if (ex == 0) {
		ex = stream_config(c, a, &cfg, tags, 32);
	}
	struct strata_client *cl;
	if (ex == 0) {
		ex = cli_client(c, &cl);
	}
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	cli_progress_begin(c, "creating the stream");
	int rc = strata_stream_create(cl, scope, stream, &cfg, err);
	cli_progress_end(c);
	if (rc == STRATA_EEXIST && cli_args_has(a, "if-not-exists")) {
		print_done(c, "created", "stream", a->pos[0], true);
		return 0;
	}
	if (rc == STRATA_ENOENT) {
		return cli_fail(c, rc, "%s ('stratactl scope create %s')", err,
		                scope);
	}
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	print_done(c, "created", "stream", a->pos[0], false);
	return 0;
}

static const struct cli_opt stream_list_opts[] = {
        {"tag", true, "TAG", "only streams with this tag"},
        {"all", false, NULL,
         "also the internal streams ('_' names: reader-group state)"},
};

static int stream_list(struct cli *c, const struct cli_args *a)
{
	struct strata_client *cl;
	int ex = cli_client(c, &cl);
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	struct strata_names *n = NULL;
	int rc = strata_stream_list(cl, a->pos[0], cli_args_get(a, "tag"), &n,
	                            err);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	if (!cli_args_has(a, "all")) {
		size_t k = 0;
		for (size_t i = 0; i < n->n; i++) {
			if (n->names[i][0] == '_') {
				strata_free(n->names[i]);
			} else {
				n->names[k++] = n->names[i];
			}
		}
		n->n = k;
	}
	print_names(c, n);
	strata_names_free(n);
	return 0;
}

/* Offset of segment id in cut, or -1. */
static int64_t cut_offset(const struct strata_stream_cut *cut, uint64_t id)
{
	for (size_t i = 0; i < cut->n; i++) {
		if (cut->positions[i].segment_id == id) {
			return cut->positions[i].offset;
		}
	}
	return -1;
}

static const char *scaling_name(enum strata_scaling_type t)
{
	switch (t) {
	case STRATA_SCALING_BY_EVENT_RATE:
		return "event-rate";
	case STRATA_SCALING_BY_DATA_RATE:
		return "data-rate";
	default:
		return "fixed";
	}
}

static void print_info_json(const struct strata_stream_info *in,
                            const struct strata_segment_list *segs,
                            const char *head, const char *tail)
{
	const struct strata_stream_config *k = &in->config;
	printf("{\"scope\":");
	cli_json_string(stdout, in->scope, strlen(in->scope));
	printf(",\"stream\":");
	cli_json_string(stdout, in->stream, strlen(in->stream));
	printf(",\"state\":\"%s\",\"scaling\":{\"type\":\"%s\","
	       "\"min_segments\":%" PRIu32 ",\"target_rate\":%" PRIu32
	       ",\"scale_factor\":%" PRIu32 "},",
	       cli_stream_state_name((int)in->state), scaling_name(k->scaling),
	       k->min_segments, k->target_rate, k->scale_factor);
	if (k->retention == STRATA_RETENTION_NONE) {
		printf("\"retention\":null,");
	} else {
		printf("\"retention\":{\"type\":\"%s\",\"min\":%" PRIu64
		       ",\"max\":%" PRIu64 "},",
		       k->retention == STRATA_RETENTION_BY_TIME ? "time_ms"
		                                                : "size_bytes",
		       k->retention_min, k->retention_max);
	}
	printf("\"tags\":[");
	for (size_t i = 0; i < k->n_tags; i++) {
		if (i > 0) {
			fputc(',', stdout);
		}
		cli_json_string(stdout, k->tags[i], strlen(k->tags[i]));
	}
	printf("],\"epoch\":%" PRIu32 ",\"segments\":[", in->current_epoch);
	for (size_t i = 0; segs != NULL && i < segs->n; i++) {
		const struct strata_segment_desc *s = &segs->segments[i];
		char id[32];
		cli_format_segment_id(s->id, id, sizeof(id));
		printf("%s{\"id\":\"%s\",\"low\":%.17g,\"high\":%.17g,"
		       "\"container\":%" PRIu32 ",\"length\":%" PRId64 "}",
		       i > 0 ? "," : "", id, s->low, s->high, s->container,
		       cut_offset(&in->tail, s->id));
	}
	printf("],\"head\":");
	cli_json_string(stdout, head, strlen(head));
	printf(",\"tail\":");
	cli_json_string(stdout, tail, strlen(tail));
	printf("}\n");
}

/* "[low, high)" with the fewest digits that give each bound back exactly:
 * after many splits ranges differ only far behind the point, and 6 digits
 * printed distinct ranges as the same "[1, 1)". */
static void format_range(char *buf, size_t size, double low, double high)
{
	char b[2][32];
	double v[2] = {low, high};
	for (int k = 0; k < 2; k++) {
		for (int digits = 6; digits <= 17; digits++) {
			snprintf(b[k], sizeof(b[k]), "%.*g", digits, v[k]);
			if (strtod(b[k], NULL) == v[k]) {
				break;
			}
		}
	}
	snprintf(buf, size, "[%s, %s)", b[0], b[1]);
}

static void print_info_text(const struct strata_stream_info *in,
                            const struct strata_segment_list *segs,
                            const char *head, const char *tail)
{
	const struct strata_stream_config *k = &in->config;
	printf("Stream:     %s/%s\n", in->scope, in->stream);
	printf("State:      %s\n", cli_stream_state_name((int)in->state));
	if (k->scaling == STRATA_SCALING_FIXED) {
		printf("Scaling:    fixed, %" PRIu32 " segment%s\n",
		       k->min_segments, k->min_segments == 1 ? "" : "s");
	} else {
		printf("Scaling:    %s, target %" PRIu32 " %s per segment, "
		       "factor %" PRIu32 ", at least %" PRIu32 " segments\n",
		       scaling_name(k->scaling), k->target_rate,
		       k->scaling == STRATA_SCALING_BY_EVENT_RATE ? "events/s"
		                                                  : "KiB/s",
		       k->scale_factor, k->min_segments);
	}
	if (k->retention == STRATA_RETENTION_NONE) {
		printf("Retention:  none (keep everything)\n");
	} else {
		bool t = k->retention == STRATA_RETENTION_BY_TIME;
		printf("Retention:  by %s, min %" PRIu64 "%s",
		       t ? "time" : "size", k->retention_min,
		       t ? " ms" : " bytes");
		if (k->retention_max != 0) {
			printf(", max %" PRIu64 "%s", k->retention_max,
			       t ? " ms" : " bytes");
		}
		printf("\n");
	}
	printf("Tags:       ");
	for (size_t i = 0; i < k->n_tags; i++) {
		printf("%s%s", i > 0 ? ", " : "", k->tags[i]);
	}
	printf("%s\n", k->n_tags == 0 ? "-" : "");
	printf("Epoch:      %" PRIu32 "\n", in->current_epoch);
	/* The key range column is as wide as its widest range. */
	int width = 24;
	for (size_t i = 0; segs != NULL && i < segs->n; i++) {
		char range[80];
		format_range(range, sizeof(range), segs->segments[i].low,
		             segs->segments[i].high);
		if ((int)strlen(range) > width) {
			width = (int)strlen(range);
		}
	}
	printf("Segments:\n  %-10s %-*s %-10s %s\n", "SEGMENT", width,
	       "KEY RANGE", "CONTAINER", "LENGTH");
	for (size_t i = 0; segs != NULL && i < segs->n; i++) {
		const struct strata_segment_desc *s = &segs->segments[i];
		char id[32], range[80];
		cli_format_segment_id(s->id, id, sizeof(id));
		format_range(range, sizeof(range), s->low, s->high);
		int64_t len = cut_offset(&in->tail, s->id);
		printf("  %-10s %-*s %-10" PRIu32 " ", id, width, range,
		       s->container);
		if (len >= 0) {
			printf("%" PRId64 "\n", len);
		} else {
			printf("-\n");
		}
	}
	printf("Head:       %s\n", head);
	printf("Tail:       %s\n", tail);
}

static int stream_describe(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	int ex = stream_arg(c, a->pos[0], scope, stream);
	struct strata_client *cl;
	if (ex == 0) {
		ex = cli_client(c, &cl);
	}
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	struct strata_stream_info *in = NULL;
	int rc = strata_stream_get_info(cl, scope, stream, &in, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	struct strata_segment_list *segs = NULL;
	rc = strata_stream_current_segments(cl, scope, stream, &segs, err);
	if (rc != 0 && in->state != STRATA_STREAM_SEALED) {
		strata_stream_info_free(in);
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	char *head = cli_cut_text(&in->head);
	char *tail = cli_cut_text(&in->tail);
	if (head == NULL || tail == NULL) {
		ex = cli_fail(c, STRATA_ENOMEM, "out of memory");
	} else if (c->json) {
		print_info_json(in, segs, head, tail);
	} else {
		print_info_text(in, segs, head, tail);
	}
	strata_free(head);
	strata_free(tail);
	strata_segment_list_free(segs);
	strata_stream_info_free(in);
	return ex;
}

static const struct cli_opt stream_scale_opts[] = {
        {"split", true, "SEGMENT",
         "split this current segment into --into equal ranges"},
        {"into", true, "N", "with --split: number of new segments (2)"},
        {"merge", true, "SEG,SEG...",
         "merge these adjacent current segments into one"},
        {"seal", true, "SEG,SEG...",
         "explicit form: the adjacent segments to replace..."},
        {"bounds", true, "B0,B1,...",
         "...by the ranges [B0,B1), [B1,B2)... covering their union"},
};

#define MAX_SCALE 64

/* Parse "SEG,SEG,..." into ids; 0 or the exit code. */
static int parse_ids(struct cli *c, const char *opt, const char *text,
                     uint64_t *ids, size_t max, size_t *n)
{
	char buf[1024];
	char err[STRATA_ERRMSG_SIZE];
	snprintf(buf, sizeof(buf), "%s", text);
	*n = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		if (*n == max) {
			return cli_fail(c, STRATA_EINVAL,
			                "--%s: more than %zu segments", opt,
			                max);
		}
		if (cli_parse_segment_id(t, &ids[*n], err) != 0) {
			return cli_fail(c, STRATA_EINVAL, "--%s: %s", opt, err);
		}
		(*n)++;
	}
	if (*n == 0) {
		return cli_fail(c, STRATA_EINVAL, "--%s: no segment given",
		                opt);
	}
	return 0;
}

/* The current segment id in segs, or NULL with a message. */
static const struct strata_segment_desc *
find_current(struct cli *c, const struct strata_segment_list *segs, uint64_t id,
             const char *stream)
{
	for (size_t i = 0; i < segs->n; i++) {
		if (segs->segments[i].id == id) {
			return &segs->segments[i];
		}
	}
	char t[32];
	cli_format_segment_id(id, t, sizeof(t));
	cli_fail(c, STRATA_EINVAL,
	         "segment %s is not a current segment of %s; see "
	         "'stratactl stream describe %s'",
	         t, stream, stream);
	return NULL;
}

/* Work out seal ids and bounds from --split / --merge / --seal+--bounds.
 * 0 or the exit code. */
static int scale_plan(struct cli *c, const struct cli_args *a,
                      const struct strata_segment_list *segs, uint64_t *ids,
                      size_t *n_ids, double *bounds, size_t *n_bounds)
{
	char err[STRATA_ERRMSG_SIZE];
	const char *split = cli_args_get(a, "split");
	const char *merge = cli_args_get(a, "merge");
	const char *seal = cli_args_get(a, "seal");
	int modes = (split != NULL) + (merge != NULL) + (seal != NULL);
	if (modes != 1) {
		return cli_fail(c, STRATA_EINVAL,
		                "give one of --split SEGMENT, --merge "
		                "SEG,SEG... or --seal SEGS --bounds B0,B1,...");
	}
	if (split != NULL) {
		uint32_t into = 2;
		int ex = uint_opt(c, a, "into", 2, MAX_SCALE - 1, &into);
		if (ex != 0) {
			return ex;
		}
		if (cli_parse_segment_id(split, &ids[0], err) != 0) {
			return cli_fail(c, STRATA_EINVAL, "--split: %s", err);
		}
		const struct strata_segment_desc *s =
		        find_current(c, segs, ids[0], a->pos[0]);
		if (s == NULL) {
			return CLI_EXIT_USAGE;
		}
		*n_ids = 1;
		for (uint32_t i = 0; i <= into; i++) {
			bounds[i] = s->low + (s->high - s->low) * i / into;
		}
		bounds[into] = s->high;
		*n_bounds = into + 1;
		return 0;
	}
	if (merge != NULL) {
		int ex = parse_ids(c, "merge", merge, ids, MAX_SCALE, n_ids);
		if (ex != 0) {
			return ex;
		}
		if (*n_ids < 2) {
			return cli_fail(c, STRATA_EINVAL,
			                "--merge needs at least two segments");
		}
		double low = 2, high = -1;
		for (size_t i = 0; i < *n_ids; i++) {
			const struct strata_segment_desc *s =
			        find_current(c, segs, ids[i], a->pos[0]);
			if (s == NULL) {
				return CLI_EXIT_USAGE;
			}
			low = fmin(low, s->low);
			high = fmax(high, s->high);
		}
		bounds[0] = low;
		bounds[1] = high;
		*n_bounds = 2;
		return 0;
	}
	const char *b = cli_args_get(a, "bounds");
	if (b == NULL) {
		return cli_fail(c, STRATA_EINVAL,
		                "--seal needs --bounds B0,B1,... (the new "
		                "ranges)");
	}
	int ex = parse_ids(c, "seal", seal, ids, MAX_SCALE, n_ids);
	if (ex != 0) {
		return ex;
	}
	if (cli_parse_bounds(b, bounds, MAX_SCALE, n_bounds, err) != 0) {
		return cli_fail(c, STRATA_EINVAL, "--bounds: %s", err);
	}
	return 0;
}

static int stream_scale(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	int ex = stream_arg(c, a->pos[0], scope, stream);
	struct strata_client *cl;
	if (ex == 0) {
		ex = cli_client(c, &cl);
	}
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	struct strata_segment_list *segs = NULL;
	int rc = strata_stream_current_segments(cl, scope, stream, &segs, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	uint64_t ids[MAX_SCALE];
	double bounds[MAX_SCALE];
	size_t n_ids = 0, n_bounds = 0;
	ex = scale_plan(c, a, segs, ids, &n_ids, bounds, &n_bounds);
	strata_segment_list_free(segs);
	segs = NULL;
	if (ex != 0) {
		return ex;
	}
	cli_progress_begin(c, "scaling");
	rc = strata_stream_scale(cl, scope, stream, ids, n_ids, bounds,
	                         n_bounds, err);
	cli_progress_end(c);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	rc = strata_stream_current_segments(cl, scope, stream, &segs, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	if (c->json) {
		printf("{\"stream\":");
		cli_json_string(stdout, a->pos[0], strlen(a->pos[0]));
		printf(",\"scaled\":true,\"segments\":[");
	} else {
		printf("scaled stream %s; current segments:\n", a->pos[0]);
	}
	for (size_t i = 0; i < segs->n; i++) {
		const struct strata_segment_desc *s = &segs->segments[i];
		char id[32];
		cli_format_segment_id(s->id, id, sizeof(id));
		if (c->json) {
			printf("%s{\"id\":\"%s\",\"low\":%.17g,\"high\":%.17g}",
			       i > 0 ? "," : "", id, s->low, s->high);
		} else {
			char range[80];
			format_range(range, sizeof(range), s->low, s->high);
			printf("  %-10s %s\n", id, range);
		}
	}
	if (c->json) {
		printf("]}\n");
	}
	strata_segment_list_free(segs);
	return 0;
}

static int stream_seal(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	int ex = stream_arg(c, a->pos[0], scope, stream);
	struct strata_client *cl;
	if (ex == 0) {
		ex = cli_client(c, &cl);
	}
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	cli_progress_begin(c, "sealing");
	int rc = strata_stream_seal(cl, scope, stream, err);
	cli_progress_end(c);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	print_done(c, "sealed", "stream", a->pos[0], false);
	return 0;
}

static const struct cli_opt stream_truncate_opts[] = {
        {"at", true, "CUT|tail",
         "drop everything before this stream cut ('tail': all)"},
};

static int stream_truncate(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	int ex = stream_arg(c, a->pos[0], scope, stream);
	if (ex != 0) {
		return ex;
	}
	const char *at = cli_args_get(a, "at");
	if (at == NULL) {
		return cli_fail(c, STRATA_EINVAL,
		                "--at CUT or --at tail is required; 'stratactl "
		                "stream describe %s' shows the cuts",
		                a->pos[0]);
	}
	struct strata_client *cl;
	ex = cli_client(c, &cl);
	if (ex != 0) {
		return ex;
	}
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	ex = cli_cut_resolve(c, cl, scope, stream, "at", at, false, &cut);
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	cli_progress_begin(c, "truncating");
	int rc = strata_stream_truncate(cl, &cut, err);
	cli_progress_end(c);
	char *text = cli_cut_text(&cut);
	strata_stream_cut_clear(&cut);
	if (rc != 0) {
		strata_free(text);
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	if (c->json) {
		printf("{\"stream\":");
		cli_json_string(stdout, a->pos[0], strlen(a->pos[0]));
		printf(",\"truncated\":true,\"at\":");
		cli_json_string(stdout, text != NULL ? text : "",
		                text != NULL ? strlen(text) : 0);
		printf("}\n");
	} else {
		printf("truncated stream %s at %s\n", a->pos[0],
		       text != NULL ? text : "?");
	}
	strata_free(text);
	return 0;
}

static const struct cli_opt stream_delete_opts[] = {
        {"seal", false, NULL, "seal the stream first if it is not sealed"},
};

static int stream_delete(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	int ex = stream_arg(c, a->pos[0], scope, stream);
	struct strata_client *cl;
	if (ex == 0) {
		ex = cli_client(c, &cl);
	}
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	int rc = 0;
	cli_progress_begin(c, "deleting");
	if (cli_args_has(a, "seal")) {
		rc = strata_stream_seal(cl, scope, stream, err);
	}
	if (rc == 0) {
		rc = strata_stream_delete(cl, scope, stream, err);
	}
	cli_progress_end(c);
	if (rc == STRATA_ENOTSEALED) {
		return cli_fail(c, rc, "%s (or pass --seal)", err);
	}
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	print_done(c, "deleted", "stream", a->pos[0], false);
	return 0;
}

/* ------------------------------------------------------------- cluster */

static const char *role_name(int32_t role)
{
	switch (role) {
	case 1:
		return "follower";
	case 2:
		return "candidate";
	case 3:
		return "leader";
	default:
		return "unavailable";
	}
}

/* One controller asked itself (its client URL, a short timeout). */
struct probe {
	const char *url;
	bool up;
	pthread_t thread;
	bool started;
};

static void *probe_one(void *arg)
{
	struct probe *p = arg;
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.connect_timeout_ms = 1000;
	o.timeout_ms = 2000;
	o.retries = 0;
	struct rpc_client *rc = NULL;
	char err[STRATA_ERRMSG_SIZE];
	Strata__V1__ClusterStatusRequest req =
	        STRATA__V1__CLUSTER_STATUS_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	int code = rpc_client_open(&rc, &p->url, 1, &o, err);
	if (code == 0) {
		code = rpc_call_pb(
		        rc, CLUSTER_STATUS_METHOD, RPC_IDEMPOTENT, &req.base,
		        &strata__v1__cluster_status_reply__descriptor, &m, err);
		rpc_client_close(rc);
	}
	rpc_pb_free(m);
	p->up = code == 0;
	return NULL;
}

/* Each controller asked itself, all at once (a dead one costs its
 * timeouts once, not once per dead one): whether it answered. The
 * replica that answered the status only knows its own role and the
 * leader's, so a dead follower would show as a follower. */
static void probe_controllers(const Strata__V1__ClusterStatusReply *r, bool *up)
{
	struct probe *p = strata_calloc(r->n_controllers + 1, sizeof(*p));
	for (size_t i = 0; i < r->n_controllers; i++) {
		up[i] = true; /* no URL known (or no memory): cannot tell */
		if (p == NULL || r->controllers[i]->client_url[0] == '\0') {
			continue;
		}
		p[i].url = r->controllers[i]->client_url;
		p[i].started = pthread_create(&p[i].thread, NULL, probe_one,
		                              &p[i]) == 0;
		if (!p[i].started) {
			probe_one(&p[i]);
			up[i] = p[i].up;
		}
	}
	for (size_t i = 0; p != NULL && i < r->n_controllers; i++) {
		if (p[i].started) {
			pthread_join(p[i].thread, NULL);
			up[i] = p[i].up;
		}
	}
	strata_free(p);
}

/* Why the cluster is not healthy ("" when it is), into buf. */
static void health(const Strata__V1__ClusterStatusReply *r, char *buf,
                   size_t size)
{
	buf[0] = '\0';
	if (r->leader_id == 0) {
		snprintf(buf, size, "no controller leader");
		return;
	}
	size_t alive = 0;
	for (size_t i = 0; i < r->n_store_alive; i++) {
		alive += r->store_alive[i] ? 1 : 0;
	}
	if (alive == 0) {
		snprintf(buf, size, "no live segment store");
		return;
	}
	const Strata__V1__AssignmentReply *as = r->assignment;
	size_t no_leader = 0, no_replica = 0;
	for (size_t i = 0; as != NULL && i < as->n_containers; i++) {
		no_replica += as->containers[i]->n_replicas == 0;
		no_leader += as->containers[i]->leader_node_id == 0;
	}
	if (no_replica > 0) {
		snprintf(buf, size, "%zu container%s without a replica",
		         no_replica, no_replica == 1 ? "" : "s");
	} else if (no_leader > 0) {
		snprintf(buf, size, "%zu container%s without a known leader",
		         no_leader, no_leader == 1 ? "" : "s");
	}
}

static void status_json(const Strata__V1__ClusterStatusReply *r,
                        const char *why, const bool *up)
{
	printf("{\"healthy\":%s,\"problem\":",
	       why[0] == '\0' ? "true" : "false");
	if (why[0] == '\0') {
		printf("null");
	} else {
		cli_json_string(stdout, why, strlen(why));
	}
	printf(",\"leader_id\":%" PRIu64 ",\"term\":%" PRIu64
	       ",\"commit_index\":%" PRIu64 ",\"controllers\":[",
	       r->leader_id, r->term, r->commit_index);
	for (size_t i = 0; i < r->n_controllers; i++) {
		const Strata__V1__ControllerMember *m = r->controllers[i];
		printf("%s{\"id\":%" PRIu64 ",\"role\":\"%s\","
		       "\"reachable\":%s,\"raft\":",
		       i > 0 ? "," : "", m->id,
		       up[i] ? role_name(m->role) : "unreachable",
		       up[i] ? "true" : "false");
		cli_json_string(stdout, m->raft_address,
		                strlen(m->raft_address));
		printf(",\"client_url\":");
		cli_json_string(stdout, m->client_url, strlen(m->client_url));
		printf("}");
	}
	printf("],\"stores\":[");
	for (size_t i = 0; i < r->n_stores; i++) {
		const Strata__V1__StoreEndpoint *s = r->stores[i];
		bool alive = i < r->n_store_alive && r->store_alive[i];
		printf("%s{\"id\":%" PRIu64 ",\"alive\":%s,\"client_url\":",
		       i > 0 ? "," : "", s->node_id, alive ? "true" : "false");
		cli_json_string(stdout, s->client_url, strlen(s->client_url));
		printf(",\"http_url\":");
		cli_json_string(stdout, s->http_url, strlen(s->http_url));
		printf("}");
	}
	printf("],\"containers\":[");
	const Strata__V1__AssignmentReply *as = r->assignment;
	for (size_t i = 0; as != NULL && i < as->n_containers; i++) {
		const Strata__V1__ContainerReplicas *cr = as->containers[i];
		printf("%s{\"id\":%" PRIu32 ",\"leader\":%" PRIu64
		       ",\"replicas\":[",
		       i > 0 ? "," : "", cr->container, cr->leader_node_id);
		for (size_t j = 0; j < cr->n_replicas; j++) {
			printf("%s%" PRIu64, j > 0 ? "," : "",
			       cr->replicas[j]->node_id);
		}
		printf("]}");
	}
	printf("]}\n");
}

static void status_text(const Strata__V1__ClusterStatusReply *r,
                        const char *why, const bool *up)
{
	printf("Controllers (leader %" PRIu64 ", term %" PRIu64
	       ", commit index %" PRIu64 "):\n",
	       r->leader_id, r->term, r->commit_index);
	printf("  %-4s %-12s %-22s %s\n", "ID", "ROLE", "RAFT", "CLIENT");
	for (size_t i = 0; i < r->n_controllers; i++) {
		const Strata__V1__ControllerMember *m = r->controllers[i];
		printf("  %-4" PRIu64 " %-12s %-22s %s\n", m->id,
		       up[i] ? role_name(m->role) : "UNREACHABLE",
		       m->raft_address, m->client_url);
	}
	printf("Segment stores:\n  %-4s %-6s %-28s %s\n", "ID", "ALIVE",
	       "CLIENT", "HTTP");
	for (size_t i = 0; i < r->n_stores; i++) {
		const Strata__V1__StoreEndpoint *s = r->stores[i];
		bool alive = i < r->n_store_alive && r->store_alive[i];
		printf("  %-4" PRIu64 " %-6s %-28s %s\n", s->node_id,
		       alive ? "yes" : "NO", s->client_url, s->http_url);
	}
	if (r->n_stores == 0) {
		printf("  (none registered)\n");
	}
	const Strata__V1__AssignmentReply *as = r->assignment;
	printf("Containers (%zu):\n  %-4s %-8s %s\n",
	       as != NULL ? as->n_containers : 0, "ID", "LEADER", "REPLICAS");
	for (size_t i = 0; as != NULL && i < as->n_containers; i++) {
		const Strata__V1__ContainerReplicas *cr = as->containers[i];
		char leader[24];
		if (cr->leader_node_id != 0) {
			snprintf(leader, sizeof(leader), "%" PRIu64,
			         cr->leader_node_id);
		} else {
			snprintf(leader, sizeof(leader), "-");
		}
		printf("  %-4" PRIu32 " %-8s ", cr->container, leader);
		for (size_t j = 0; j < cr->n_replicas; j++) {
			printf("%s%" PRIu64, j > 0 ? "," : "",
			       cr->replicas[j]->node_id);
		}
		printf("%s\n", cr->n_replicas == 0 ? "-" : "");
	}
	size_t down = 0;
	for (size_t i = 0; i < r->n_controllers; i++) {
		down += !up[i];
	}
	/* Still serving, with less redundancy: say so beside "healthy". */
	size_t stores_down = 0, fewer = 0, most = 0;
	for (size_t i = 0; i < r->n_stores; i++) {
		stores_down += !(i < r->n_store_alive && r->store_alive[i]);
	}
	for (size_t i = 0; as != NULL && i < as->n_containers; i++) {
		size_t n = as->containers[i]->n_replicas;
		most = n > most ? n : most;
	}
	for (size_t i = 0; as != NULL && i < as->n_containers; i++) {
		fewer += as->containers[i]->n_replicas < most;
	}
	printf("Status: %s%s",
	       why[0] == '\0' ? "healthy" : "NOT HEALTHY: ", why);
	const char *sep = why[0] == '\0' ? ", but " : "; ";
	if (down > 0) {
		printf("%s%zu of %zu controllers unreachable", sep, down,
		       r->n_controllers);
		sep = "; ";
	}
	if (stores_down > 0) {
		printf("%s%zu of %zu segment stores down", sep, stores_down,
		       r->n_stores);
		sep = "; ";
	}
	if (fewer > 0) {
		printf("%s%zu container%s on fewer replicas than the others "
		       "(one more failure may stop them)",
		       sep, fewer, fewer == 1 ? "" : "s");
	}
	printf("\n");
}

static int cluster_status(struct cli *c, const struct cli_args *a)
{
	(void)a;
	Strata__V1__ClusterStatusRequest req =
	        STRATA__V1__CLUSTER_STATUS_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	int ex = cli_rpc(c, CLUSTER_STATUS_METHOD, RPC_IDEMPOTENT, &req.base,
	                 &strata__v1__cluster_status_reply__descriptor, &m,
	                 "cluster status");
	if (ex != 0) {
		return ex;
	}
	const Strata__V1__ClusterStatusReply *r = (const void *)m;
	char why[128];
	health(r, why, sizeof(why));
	bool *up = strata_calloc(r->n_controllers + 1, sizeof(*up));
	if (up == NULL) {
		rpc_pb_free(m);
		return cli_fail(c, STRATA_ENOMEM, "out of memory");
	}
	probe_controllers(r, up);
	if (c->json) {
		status_json(r, why, up);
	} else {
		status_text(r, why, up);
	}
	strata_free(up);
	rpc_pb_free(m);
	return why[0] == '\0' ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

/* ----------------------------------------------------------- watermarks */

static const struct cli_opt stream_watermarks_opts[] = {
        {"last", true, "N", "only the newest N (default: every kept one)"},
};

/* "NUMBER.EPOCH=OFFSET,..." of a watermark (caller frees). */
static char *wm_positions_text(const struct strata_watermark *w)
{
	size_t cap = 48 * w->n_positions + 1;
	char *s = strata_malloc(cap);
	if (s == NULL) {
		return NULL;
	}
	size_t off = 0;
	s[0] = '\0';
	for (size_t i = 0; i < w->n_positions; i++) {
		const struct strata_watermark_position *p = &w->positions[i];
		off += (size_t)snprintf(
		        s + off, cap - off,
		        "%s%" PRIu32 ".%" PRIu32 "=%" PRId64, i > 0 ? "," : "",
		        (uint32_t)(p->segment_id & 0xffffffffu),
		        (uint32_t)(p->segment_id >> 32), p->offset);
	}
	return s;
}

static int stream_watermarks(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	uint32_t last = 0;
	int ex = stream_arg(c, a->pos[0], scope, stream);
	if (ex == 0) {
		ex = uint_opt(c, a, "last", 1, 1u << 20, &last);
	}
	struct strata_client *cl;
	if (ex == 0) {
		ex = cli_client(c, &cl);
	}
	if (ex != 0) {
		return ex;
	}
	char err[STRATA_ERRMSG_SIZE];
	struct strata_watermark *ws = NULL;
	size_t n = 0;
	int rc = strata_stream_watermarks(cl, scope, stream, 0, &ws, &n, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, a->pos[0], err);
	}
	size_t from = last > 0 && n > last ? n - last : 0;
	if (c->json) {
		printf("[");
	} else if (n == 0) {
		cli_note(c,
		         "%s has no watermarks: its writers note no time "
		         "(strata_writer_note_time), or the controller has not "
		         "run its round yet (watermark.interval)",
		         a->pos[0]);
	} else {
		printf("%-8s %-20s %-20s %-24s %s\n", "INDEX", "LOWER", "UPPER",
		       "CREATED", "POSITIONS");
	}
	for (size_t i = from; i < n; i++) {
		const struct strata_watermark *w = &ws[i];
		char *pos = wm_positions_text(w);
		if (pos == NULL) {
			strata_watermarks_free(ws, n);
			return cli_fail(c, STRATA_ENOMEM, "out of memory");
		}
		if (c->json) {
			printf("%s{\"index\":%" PRIu64 ",\"lower\":%" PRId64
			       ",\"upper\":%" PRId64 ",\"created_ms\":%" PRIu64
			       ",\"positions\":",
			       i > from ? "," : "", w->index, w->lower_time,
			       w->upper_time, w->created_ms);
			cli_json_string(stdout, pos, strlen(pos));
			printf("}");
		} else {
			char when[32] = "-";
			time_t t = (time_t)(w->created_ms / 1000);
			struct tm tm;
			if (gmtime_r(&t, &tm) != NULL) {
				strftime(when, sizeof(when),
				         "%Y-%m-%dT%H:%M:%SZ", &tm);
			}
			printf("%-8" PRIu64 " %-20" PRId64 " %-20" PRId64
			       " %-24s %s\n",
			       w->index, w->lower_time, w->upper_time, when,
			       pos);
		}
		strata_free(pos);
	}
	if (c->json) {
		printf("]\n");
	}
	strata_watermarks_free(ws, n);
	return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- table */

#define OPTS(x) x, sizeof(x) / sizeof(*(x))

const struct cli_cmd cli_admin_cmds[] = {
        {"scope", "create", "SCOPE", "Create a scope (a namespace of streams)",
         "Names: letters, digits, '.' and '-', up to 255 bytes.\n",
         OPTS(scope_create_opts), 1, 1, scope_create},
        {"scope", "list", "", "List every scope, sorted", NULL, NULL, 0, 0, 0,
         scope_list},
        {"scope", "delete", "SCOPE", "Delete an empty scope", NULL, NULL, 0, 1,
         1, scope_delete},
        {"stream", "create", "SCOPE/STREAM",
         "Create a stream in an existing scope",
         "Waits until the controller has created its segments.\n",
         OPTS(stream_create_opts), 1, 1, stream_create},
        {"stream", "list", "SCOPE", "List the streams of a scope", NULL,
         OPTS(stream_list_opts), 1, 1, stream_list},
        {"stream", "describe", "SCOPE/STREAM",
         "Show a stream's state, configuration, segments and cuts",
         "Segments are written NUMBER.EPOCH (the form stream cuts and "
         "--split use);\nLENGTH is the segment's length in bytes now. "
         "Head and tail are stream cuts\nto give to 'read --from/--to' "
         "or 'stream truncate --at'.\n",
         NULL, 0, 1, 1, stream_describe},
        {"stream", "scale", "SCOPE/STREAM",
         "Replace current segments by new key ranges (manual scaling)",
         "Examples:\n"
         "  stratactl stream scale demo/first --split 0.0 --into 2\n"
         "  stratactl stream scale demo/first --merge 1.1,2.1\n"
         "  stratactl stream scale demo/first --seal 0.0 --bounds "
         "0,0.3,1\n"
         "Readers finish a sealed segment before its successors, so "
         "per-key order\nsurvives.\n",
         OPTS(stream_scale_opts), 1, 1, stream_scale},
        {"stream", "seal", "SCOPE/STREAM",
         "Seal a stream: no more writes (reads go on)", NULL, NULL, 0, 1, 1,
         stream_seal},
        {"stream", "truncate", "SCOPE/STREAM",
         "Drop the data before a stream cut",
         "CUT is SCOPE/STREAM:NUMBER.EPOCH=OFFSET,... (the prefix may be "
         "left out), as\n'stream describe' prints it.\n",
         OPTS(stream_truncate_opts), 1, 1, stream_truncate},
        {"stream", "delete", "SCOPE/STREAM",
         "Delete a sealed stream and its data", NULL, OPTS(stream_delete_opts),
         1, 1, stream_delete},
        {"stream", "watermarks", "SCOPE/STREAM",
         "List a stream's watermarks (from its writers' noted times)",
         "Each watermark: events after its positions were written after "
         "every counted\nwriter noted a time >= LOWER; those before "
         "them, before notes <= UPPER.\nPOSITIONS are NUMBER.EPOCH=OFFSET "
         "per segment. The controller keeps the\nlast 1,024 per stream "
         "(docs/client.md, \"Watermarks\").\n",
         OPTS(stream_watermarks_opts), 1, 1, stream_watermarks},
        {"cluster", "status", "",
         "Show controllers, segment stores and containers",
         "Exit code 0 when healthy (a controller leader, a live store, "
         "every container\nwith a replica and a leader), 1 when not, 3 "
         "when the controller is\nunreachable.\n",
         NULL, 0, 0, 0, cluster_status},
        {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
