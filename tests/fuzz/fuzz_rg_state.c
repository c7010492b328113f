/* libFuzzer harness: the reader-group state record decoder and fold.
 * Each input is one record applied to a populated state (two streams,
 * segments, readers, a waiting successor, a checkpoint); whatever it
 * does, the state must still encode, decode and re-encode identically. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/rg_state.h"
#include "common/alloc.h"
#include "strata/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Apply a record built into b, or abort: the harness's own setup. */
static void must(struct rg_state *st, struct buf *b)
{
	if (rg_state_apply(st, b->data, b->len, NULL) != 0) {
		abort();
	}
	buf_reset(b);
}

static void populate(struct rg_state *st)
{
	struct buf b;
	uint32_t idx;
	struct rg_pos end = {0, 1, 100, 0.5, 1.0};
	buf_init(&b, 0);
	if (rg_state_add_stream(st, "sc", "a", NULL, 0, &idx) != 0 ||
	    rg_state_add_stream(st, "sc", "b", &end, 1, &idx) != 0) {
		abort();
	}
	for (uint32_t s = 0; s < 2; s++) {
		for (uint64_t i = 0; i < 2; i++) {
			struct rg_pos p = {s, i, 0, i * 0.5, (i + 1) * 0.5};
			if (rg_state_add_segment(st, &p) != 0) {
				abort();
			}
		}
	}
	struct rg_pos two[2] = {{0, 0, 0, 0.0, 0.5}, {0, 1, 0, 0.5, 1.0}};
	uint64_t preds[2] = {0, 1};
	struct rg_successor merged = {(1ull << 32) | 2, 0.0, 1.0, 2, preds};
	struct rg_pos at_end = {0, 0, 10, 0.0, 0.5};
	if (rg_rec_add_reader(&b, "r1") != 0) {
		abort();
	}
	must(st, &b);
	if (rg_rec_add_reader(&b, "r2") != 0) {
		abort();
	}
	must(st, &b);
	if (rg_rec_acquire(&b, "r1", two, 2) != 0) {
		abort();
	}
	must(st, &b);
	if (rg_rec_complete(&b, "r1", &at_end, &merged, 1) != 0) {
		abort();
	}
	must(st, &b);
	if (rg_rec_cp_create(&b, "cp") != 0) {
		abort();
	}
	must(st, &b);
	buf_close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rg_state st, back;
	struct buf e1, e2;
	char err[STRATA_ERRMSG_SIZE];
	rg_state_init(&st);
	rg_state_init(&back);
	populate(&st);
	(void)rg_state_apply(&st, data, size, err);
	buf_init(&e1, 0);
	buf_init(&e2, 0);
	if (rg_state_encode(&st, &e1) != 0 ||
	    rg_state_apply(&back, e1.data, e1.len, err) != 0 ||
	    rg_state_encode(&back, &e2) != 0 || e1.len != e2.len ||
	    memcmp(e1.data, e2.data, e1.len) != 0) {
		abort();
	}
	buf_close(&e1);
	buf_close(&e2);
	rg_state_close(&back);
	rg_state_close(&st);
	return 0;
}
