/* stratactl stream cut arguments: "head", "tail" or cut text. */
#include <stdio.h>
#include <string.h>

#include "cli/cut.h"
#include "common/alloc.h"

char *cli_cut_text(const struct strata_stream_cut *cut)
{
	size_t n = strata_stream_cut_format(cut, NULL, 0);
	char *s = strata_malloc(n + 1);
	if (s != NULL) {
		strata_stream_cut_format(cut, s, n + 1);
	}
	return s;
}

int cli_cut_resolve(struct cli *c, struct strata_client *cl, const char *scope,
                    const char *stream, const char *opt, const char *text,
                    bool allow_head, struct strata_stream_cut *out)
{
	char err[STRATA_ERRMSG_SIZE];
	if (strcmp(text, "head") == 0 && allow_head) {
		snprintf(out->scope, sizeof(out->scope), "%s", scope);
		snprintf(out->stream, sizeof(out->stream), "%s", stream);
		return 0;
	}
	if (strcmp(text, "tail") == 0) {
		struct strata_stream_info *in = NULL;
		int rc = strata_stream_get_info(cl, scope, stream, &in, err);
		if (rc != 0) {
			return cli_fail_op(c, rc, "finding the tail", err);
		}
		rc = strata_stream_cut_copy(out, &in->tail);
		strata_stream_info_free(in);
		if (rc != 0) {
			return cli_fail(c, rc, "out of memory");
		}
		return 0;
	}
	if (strcmp(text, "head") == 0) {
		return cli_fail(
		        c, STRATA_EINVAL,
		        "--%s head: the head is where the stream "
		        "starts, so this would do nothing; give tail or "
		        "a stream cut",
		        opt);
	}
	size_t tl = strlen(text);
	size_t pl = strlen(scope) + strlen(stream) + 2;
	char *full = strata_malloc(tl + pl + 1);
	if (full == NULL) {
		return cli_fail(c, STRATA_ENOMEM, "out of memory");
	}
	if (strchr(text, ':') == NULL) {
		snprintf(full, tl + pl + 1, "%s/%s:%s", scope, stream, text);
	} else {
		memcpy(full, text, tl + 1);
	}
	int rc = strata_stream_cut_parse(full, out, err);
	strata_free(full);
	if (rc != 0) {
		return cli_fail(
		        c, STRATA_EINVAL,
		        "--%s '%.80s' is not a stream cut: %s; write "
		        "%stail or SCOPE/STREAM:NUMBER.EPOCH=OFFSET,... "
		        "as 'stratactl stream describe' prints it",
		        opt, text, err, allow_head ? "head, " : "");
	}
	if (strcmp(out->scope, scope) != 0 ||
	    strcmp(out->stream, stream) != 0) {
		int ex = cli_fail(c, STRATA_EINVAL,
		                  "--%s names stream %s/%s, not %s/%s", opt,
		                  out->scope, out->stream, scope, stream);
		strata_stream_cut_clear(out);
		return ex;
	}
	return 0;
}
