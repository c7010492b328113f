/* libFuzzer harness: container log entry decoder + FSM apply + snapshot
 * round trip. Input byte 0 picks the mode: odd = the rest is a raw entry;
 * even = bytes 1..4 are an op count and the rest an op body, wrapped in a
 * valid header and CRC so the fuzzer reaches the op decoder and apply. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "segmentstore/container_fsm.h"
#include "common/crc32c.h"
#include "segmentstore/entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

/* A container with two segments, some data, a chunk and an attribute. */
static void populate(struct container_fsm *f)
{
	static const uint8_t w[ENTRY_UUID_SIZE] = {1};
	struct entry_builder b;
	const uint8_t *e;
	size_t len;
	entry_builder_init(&b, 0);
	if (entry_builder_add_create(&b, "a") != 0 ||
	    entry_builder_add_create(&b, "b") != 0 ||
	    entry_builder_add_append(&b, 1, w, 0, 2, "abcdef", 6) != 0 ||
	    entry_builder_add_append(&b, 2, w, 5, 1, "xyz", 3) != 0 ||
	    entry_builder_add_flush(&b, 1, 0, 2, "a.c0", 0) != 0 ||
	    entry_builder_add_attr_update(&b, 2, w, false, 0, 9) != 0 ||
	    entry_builder_add_seal(&b, 2) != 0 ||
	    entry_builder_finish(&b, &e, &len) != 0 ||
	    container_fsm_apply(f, e, len, NULL, 0) != 0) {
		abort();
	}
	entry_builder_close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1) {
		return 0;
	}
	uint8_t *entry;
	size_t len;
	if (data[0] & 1) {
		len = size - 1;
		entry = malloc(len == 0 ? 1 : len);
		memcpy(entry, data + 1, len);
	} else {
		if (size < 5) {
			return 0;
		}
		size_t body = size - 5;
		len = ENTRY_HEADER_SIZE + body;
		entry = calloc(1, len);
		put_u32(entry, ENTRY_MAGIC);
		entry[4] = ENTRY_VERSION;
		memcpy(entry + 8, data + 1, 4);
		put_u32(entry + 12, (uint32_t)body);
		memcpy(entry + ENTRY_HEADER_SIZE, data + 5, body);
		uint32_t crc = crc32c_extend(0, entry, 16);
		crc = crc32c_extend(crc, entry + ENTRY_HEADER_SIZE, body);
		put_u32(entry + 16, crc);
	}
	struct container_fsm f;
	if (container_fsm_init(&f, NULL) != 0) {
		abort();
	}
	populate(&f);
	uint8_t *before;
	size_t before_len;
	if (container_fsm_snapshot(&f, &before, &before_len) != 0) {
		abort();
	}
	struct container_result res[64];
	int rc = container_fsm_apply(&f, entry, len, res, 64);
	uint8_t *after;
	size_t after_len;
	if (container_fsm_snapshot(&f, &after, &after_len) != 0) {
		abort();
	}
	if (rc != 0 && (after_len != before_len ||
	                memcmp(before, after, before_len) != 0)) {
		abort(); /* a rejected entry changed the state */
	}
	/* Snapshot -> restore -> snapshot gives the same bytes. */
	struct container_fsm g;
	uint8_t *again;
	size_t again_len;
	if (container_fsm_init(&g, NULL) != 0 ||
	    container_fsm_restore(&g, after, after_len) != 0 ||
	    container_fsm_snapshot(&g, &again, &again_len) != 0 ||
	    again_len != after_len || memcmp(again, after, after_len) != 0) {
		abort();
	}
	strata_free(again);
	container_fsm_close(&g);
	strata_free(after);
	strata_free(before);
	container_fsm_close(&f);
	free(entry);
	return 0;
}
