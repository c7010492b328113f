/* libFuzzer harness: controller FSM commands from untrusted bytes. The
 * input is applied as one ControllerCommand to a fresh FSM, then split into
 * length-prefixed commands (1-byte length, then that many bytes) applied
 * in order to a second FSM. Every rejected command must leave the snapshot
 * byte-identical, and every state must survive snapshot -> restore ->
 * snapshot unchanged, answer its queries and list its pending actions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "controller/fsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cfsm_result res;

static uint8_t *snap(const struct cfsm *f, size_t *len)
{
	uint8_t *buf;
	if (cfsm_snapshot(f, &buf, len) != 0) {
		abort();
	}
	return buf;
}

/* Apply one command; a rejection must change nothing. */
static void apply(struct cfsm *f, const uint8_t *cmd, size_t len)
{
	size_t n0, n1;
	uint8_t *before = snap(f, &n0);
	int rc = cfsm_apply(f, cmd, len, &res);
	if (rc != res.code || (rc != 0 && res.message[0] == '\0')) {
		abort();
	}
	uint8_t *after = snap(f, &n1);
	if (rc != 0 && (n0 != n1 || memcmp(before, after, n0) != 0)) {
		abort();
	}
	strata_free(before);
	strata_free(after);
}

/* Round trip, queries and actions on whatever state we reached. */
static void check_state(struct cfsm *f)
{
	char err[STRATA_ERRMSG_SIZE];
	struct cfsm g;
	size_t n0, n1;
	uint8_t *a = snap(f, &n0);
	if (cfsm_init(&g, cfsm_container_count(f), err) != 0 ||
	    cfsm_restore(&g, a, n0, err) != 0) {
		abort();
	}
	uint8_t *b = snap(&g, &n1);
	if (n0 != n1 || memcmp(a, b, n0) != 0) {
		abort();
	}
	strata_free(a);
	strata_free(b);
	cfsm_close(&g);

	struct cfsm_action *acts;
	size_t n;
	if (cfsm_pending_actions(f, &acts, &n) != 0) {
		abort();
	}
	strata_free(acts);
	Strata__V1__ListScopesReply *ls;
	if (cfsm_list_scopes(f, &ls, err) != 0) {
		abort();
	}
	for (size_t i = 0; i < ls->n_scopes; i++) {
		Strata__V1__ListStreamsReply *st;
		if (cfsm_list_streams(f, ls->scopes[i], NULL, &st, err) != 0) {
			abort();
		}
		for (size_t j = 0; j < st->n_streams; j++) {
			Strata__V1__SegmentsReply *sr;
			if (cfsm_current_segments(f, ls->scopes[i],
			                          st->streams[j], &sr,
			                          err) != 0) {
				abort();
			}
			cfsm_msg_free(sr);
		}
		cfsm_msg_free(st);
	}
	cfsm_msg_free(ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	if (cfsm_init(&f, 8, err) != 0) {
		abort();
	}
	apply(&f, data, size);
	check_state(&f);
	cfsm_close(&f);

	if (cfsm_init(&f, 8, err) != 0) {
		abort();
	}
	size_t at = 0;
	while (at < size) {
		size_t len = data[at++];
		if (len > size - at) {
			len = size - at;
		}
		apply(&f, data + at, len);
		at += len;
	}
	check_state(&f);
	cfsm_close(&f);
	return 0;
}
