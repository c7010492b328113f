/* libFuzzer harness: the client's stream-cut text parser
 * (strata_stream_cut_parse; cuts come from users, files and the wire).
 * A parsed cut must be sorted, unique, in range, and survive format ->
 * parse unchanged; a rejected one must leave the cut empty with a
 * bounded message. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "strata/client.h"
#include "strata/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct strata_stream_cut *a,
                 const struct strata_stream_cut *b)
{
	return strcmp(a->scope, b->scope) == 0 &&
	       strcmp(a->stream, b->stream) == 0 && a->n == b->n &&
	       (a->n == 0 || memcmp(a->positions, b->positions,
	                            a->n * sizeof(*a->positions)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = strata_malloc(size + 1);
	if (text == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	char err[STRATA_ERRMSG_SIZE];
	memset(err, 'x', sizeof(err));
	int rc = strata_stream_cut_parse(text, &cut, err);
	if (rc != 0) {
		if ((rc != STRATA_EINVAL && rc != STRATA_ENOMEM) ||
		    cut.n != 0 || cut.positions != NULL ||
		    cut.scope[0] != '\0' || cut.stream[0] != '\0' ||
		    memchr(err, '\0', sizeof(err)) == NULL) {
			abort();
		}
		strata_free(text);
		return 0;
	}
	if (cut.scope[0] == '\0' || cut.stream[0] == '\0' ||
	    cut.n > STRATA_CUT_MAX_POSITIONS ||
	    (cut.n > 0) != (cut.positions != NULL)) {
		abort();
	}
	for (size_t i = 0; i < cut.n; i++) {
		if (cut.positions[i].offset < 0 ||
		    (i > 0 && cut.positions[i - 1].segment_id >=
		                      cut.positions[i].segment_id)) {
			abort();
		}
	}
	/* format -> parse round trip, and snprintf-like truncation. */
	size_t need = strata_stream_cut_format(&cut, NULL, 0);
	char *again = strata_malloc(need + 1);
	if (again != NULL) {
		if (strata_stream_cut_format(&cut, again, need + 1) != need ||
		    strlen(again) != need) {
			abort();
		}
		char small[7];
		if (strata_stream_cut_format(&cut, small, sizeof(small)) !=
		            need ||
		    strlen(small) !=
		            (need < sizeof(small) ? need : sizeof(small) - 1) ||
		    memcmp(small, again, strlen(small)) != 0) {
			abort();
		}
		struct strata_stream_cut back = STRATA_STREAM_CUT_INIT;
		rc = strata_stream_cut_parse(again, &back, err);
		if (rc == 0 && !same(&cut, &back)) {
			abort();
		}
		if (rc != 0 && rc != STRATA_ENOMEM) {
			abort(); /* the parser rejects its own format */
		}
		strata_stream_cut_clear(&back);
		strata_free(again);
	}
	struct strata_stream_cut copy = STRATA_STREAM_CUT_INIT;
	if (strata_stream_cut_copy(&copy, &cut) == 0 && !same(&copy, &cut)) {
		abort();
	}
	strata_stream_cut_clear(&copy);
	strata_stream_cut_clear(&cut);
	strata_free(text);
	return 0;
}
