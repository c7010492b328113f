/* libFuzzer harness: strata-connect's checkpoint file parser
 * (connect_state_parse; the file is on disk and may be damaged or
 * edited). It must accept only what format writes (a parsed state must
 * survive format -> parse unchanged) and reject the rest with
 * STRATA_ECORRUPT and a bounded message, never reading past the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "connect/state.h"
#include "strata/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so a read past the end trips ASan. */
	char *text = strata_malloc(size == 0 ? 1 : size);
	if (text == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	struct connect_state st;
	char err[STRATA_ERRMSG_SIZE];
	memset(err, 'x', sizeof(err));
	int rc = connect_state_parse("fuzz.ckpt", text, size, &st, err);
	strata_free(text);
	if (rc != 0) {
		if ((rc != STRATA_ECORRUPT && rc != STRATA_ENOMEM) ||
		    st.n_cuts != 0 || memchr(err, '\0', sizeof(err)) == NULL) {
			abort();
		}
		return 0;
	}
	char *again = connect_state_format(&st);
	if (again == NULL) {
		connect_state_clear(&st);
		return 0;
	}
	struct connect_state st2;
	if (connect_state_parse("again", again, strlen(again), &st2, err) !=
	            0 ||
	    st2.mode != st.mode || strcmp(st2.stream, st.stream) != 0 ||
	    st2.seq != st.seq || st2.txn != st.txn ||
	    strcmp(st2.committed, st.committed) != 0 ||
	    strcmp(st2.sink, st.sink) != 0 || st2.n_cuts != st.n_cuts) {
		abort();
	}
	for (size_t i = 0; i < st.n_cuts; i++) {
		if (strcmp(st.cuts[i], st2.cuts[i]) != 0) {
			abort();
		}
	}
	connect_state_clear(&st2);
	connect_state_clear(&st);
	strata_free(again);
	return 0;
}
