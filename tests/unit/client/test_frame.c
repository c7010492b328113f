/* Unit tests for client/frame.c: event framing and reassembly. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/frame.h"
#include "strata/codec.h"
#include "common/alloc.h"
#include "strata/error.h"
#include "strata/v1/segmentstore.pb-c.h"

/* Build three framed events "a", "" and "hello" at base 100. */
static size_t build(uint8_t *out)
{
	const char *ev[3] = {"a", "", "hello"};
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(ev[i]);
		frame_header(out + off, (uint32_t)l);
		memcpy(out + off + 4, ev[i], l);
		off += 4 + l;
	}
	return off;
}

/* Events split across every possible pair of chunks come out whole, with
 * their segment offsets. */
static void test_frame_asm_next_across_chunks(void **state)
{
	(void)state;
	uint8_t data[64];
	size_t n = build(data);
	for (size_t cut = 0; cut <= n; cut++) {
		struct frame_asm fa;
		const uint8_t *p;
		size_t len;
		uint64_t off;
		int got = 0;
		frame_asm_init(&fa, 100, 1024);
		assert_int_equal(frame_asm_feed(&fa, data, cut), 0);
		while (frame_asm_next(&fa, &p, &len, &off) == 0) {
			got++;
		}
		assert_int_equal(frame_asm_feed(&fa, data + cut, n - cut), 0);
		while (frame_asm_next(&fa, &p, &len, &off) == 0) {
			got++;
			if (got == 3) {
				assert_int_equal(len, 5);
				assert_memory_equal(p, "hello", 5);
				assert_int_equal(off, 100 + 5 + 4);
			}
		}
		assert_int_equal(got, 3);
		assert_int_equal(frame_asm_position(&fa), 100 + n);
		assert_int_equal(frame_asm_end(&fa), 100 + n);
		assert_int_equal(frame_asm_pending(&fa), 0);
		frame_asm_close(&fa);
	}
}

/* A frame longer than the limit is corruption; a partial one waits. */
static void test_frame_asm_next_corrupt_and_partial(void **state)
{
	(void)state;
	struct frame_asm fa;
	uint8_t hdr[4];
	const uint8_t *p;
	size_t len;
	uint64_t off;
	frame_asm_init(&fa, 0, 16);
	frame_header(hdr, 10);
	assert_int_equal(frame_asm_feed(&fa, hdr, 4), 0);
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), STRATA_EAGAIN);
	assert_int_equal(frame_asm_pending(&fa), 4);
	frame_asm_reset(&fa, 50);
	frame_header(hdr, 17);
	assert_int_equal(frame_asm_feed(&fa, hdr, 4), 0);
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), STRATA_ECORRUPT);
	assert_int_equal(frame_asm_position(&fa), 50);
	frame_asm_close(&fa);
}

/* The length word's high bit marks an encoded event: the length is read
 * without it (and checked against the limit without it), the flag is
 * reported, from a whole chunk and across chunks (carry). */
static void test_frame_asm_encoded_flag(void **state)
{
	(void)state;
	struct frame_asm fa;
	uint8_t buf[64];
	const uint8_t *p;
	size_t len;
	uint64_t off;
	frame_asm_init(&fa, 0, 16);
	frame_header(buf, 3);
	memcpy(buf + 4, "abc", 3);
	frame_header(buf + 7, 12 | STRATA_FRAME_ENCODED);
	memset(buf + 11, 'z', 12);
	assert_int_equal(frame_asm_feed(&fa, buf, 9), 0); /* cut in a header */
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), 0);
	assert_int_equal(len, 3);
	assert_false(fa.last_encoded);
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), STRATA_EAGAIN);
	assert_int_equal(frame_asm_feed(&fa, buf + 9, 14), 0);
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), 0);
	assert_int_equal(len, 12);
	assert_int_equal(off, 7);
	assert_true(fa.last_encoded);
	assert_int_equal(frame_asm_position(&fa), 23);
	/* The same frame inside one chunk. */
	frame_asm_reset(&fa, 7);
	assert_int_equal(frame_asm_feed(&fa, buf + 7, 16), 0);
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), 0);
	assert_int_equal(len, 12);
	assert_true(fa.last_encoded);
	/* Over the limit with the flag set is still corruption. */
	frame_asm_reset(&fa, 0);
	frame_header(buf, 17 | STRATA_FRAME_ENCODED);
	assert_int_equal(frame_asm_feed(&fa, buf, 4), 0);
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), STRATA_ECORRUPT);
	frame_asm_close(&fa);
}

/* Owned chunks fed without draining: leftovers of several events move to
 * carry and still come out in order, at the right offsets. */
static void test_frame_asm_feed_owned_without_draining(void **state)
{
	(void)state;
	uint8_t data[64];
	size_t n = build(data);
	for (size_t cut = 0; cut <= n; cut++) {
		struct frame_asm fa;
		const uint8_t *p;
		size_t len;
		uint64_t off;
		frame_asm_init(&fa, 7, 1024);
		uint8_t *a = strata_malloc(cut > 0 ? cut : 1);
		uint8_t *b = strata_malloc(n - cut > 0 ? n - cut : 1);
		assert_non_null(a);
		assert_non_null(b);
		memcpy(a, data, cut);
		memcpy(b, data + cut, n - cut);
		assert_int_equal(frame_asm_feed_owned(&fa, a, cut), 0);
		assert_int_equal(frame_asm_feed_owned(&fa, b, n - cut), 0);
		assert_int_equal(frame_asm_pending(&fa), n);
		assert_int_equal(frame_asm_end(&fa), 7 + n);
		size_t want[3] = {1, 0, 5};
		uint64_t at[3] = {7, 7 + 5, 7 + 9};
		for (int i = 0; i < 3; i++) {
			assert_int_equal(frame_asm_next(&fa, &p, &len, &off),
			                 0);
			assert_int_equal(len, want[i]);
			assert_int_equal(off, at[i]);
		}
		assert_memory_equal(p, "hello", 5);
		assert_int_equal(frame_asm_next(&fa, &p, &len, &off),
		                 STRATA_EAGAIN);
		assert_int_equal(frame_asm_position(&fa), 7 + n);
		frame_asm_close(&fa);
	}
}

/* unget gives the last event back, whether it came from the chunk or was
 * assembled across chunks; it is returned again, equal. */
static void test_frame_asm_unget(void **state)
{
	(void)state;
	uint8_t data[64];
	size_t n = build(data);
	for (size_t cut = 0; cut <= n; cut++) {
		struct frame_asm fa;
		const uint8_t *p;
		size_t len;
		uint64_t off;
		int got = 0;
		frame_asm_init(&fa, 0, 1024);
		assert_int_equal(frame_asm_feed(&fa, data, cut), 0);
		for (int pass = 0; pass < 2; pass++) {
			while (frame_asm_next(&fa, &p, &len, &off) == 0) {
				uint64_t before = off;
				size_t l = len;
				frame_asm_unget(&fa);
				assert_int_equal(frame_asm_position(&fa),
				                 before);
				frame_asm_unget(&fa); /* a second is a no-op */
				assert_int_equal(
				        frame_asm_next(&fa, &p, &len, &off), 0);
				assert_int_equal(off, before);
				assert_int_equal(len, l);
				if (++got ==
				    3) { /* valid until the next call */
					assert_memory_equal(p, "hello", 5);
				}
			}
			if (pass == 0) {
				assert_int_equal(frame_asm_feed(&fa, data + cut,
				                                n - cut),
				                 0);
			}
		}
		assert_int_equal(got, 3);
		frame_asm_close(&fa);
	}
}

static uint8_t big[70000];

/* One AppendRequest both ways: protobuf-c's pack and the in-place one. */
static void check_append_request(const char *segment, size_t id_len,
                                 int64_t first, uint32_t count, size_t len,
                                 int64_t expected)
{
	uint8_t id[16];
	memset(id, 0xab, sizeof(id));
	Strata__V1__AppendRequest q = STRATA__V1__APPEND_REQUEST__INIT;
	q.segment = (char *)(segment != NULL ? segment : "");
	q.writer_id.data = id;
	q.writer_id.len = id_len;
	q.first_event_number = first;
	q.event_count = count;
	q.data.data = big;
	q.data.len = len;
	q.expected_offset = expected;
	size_t want = protobuf_c_message_get_packed_size(&q.base);
	uint8_t *pb = strata_malloc(want);
	uint8_t *mine = strata_malloc(want);
	assert_non_null(pb);
	assert_non_null(mine);
	protobuf_c_message_pack(&q.base, pb);
	size_t h = append_request_head(NULL, segment, id, id_len, first, count,
	                               len);
	size_t t = append_request_tail(NULL, expected);
	assert_int_equal(h + len + t, want);
	assert_int_equal(append_request_head(mine, segment, id, id_len, first,
	                                     count, len),
	                 h);
	memcpy(mine + h, big, len);
	assert_int_equal(append_request_tail(mine + h + len, expected), t);
	assert_memory_equal(mine, pb, want);
	strata_free(mine);
	strata_free(pb);
}

/* The in-place AppendRequest is protobuf-c's encoding byte for byte, for
 * zero and non-zero, small and large, negative and empty fields. */
static void test_append_request_matches_protobuf_c(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(big); i++) {
		big[i] = (uint8_t)(i * 31 + 7);
	}
	const char *segs[] = {"sc/st/0.#epoch.0", "", NULL};
	const int64_t firsts[] = {0, 1, 127, 128, 1ll << 40, -1};
	const uint32_t counts[] = {0, 1, 300, UINT32_MAX};
	const size_t lens[] = {0, 1, 127, 128, 16384, sizeof(big)};
	const int64_t exps[] = {-1, 0, 5, 1ll << 50};
	for (size_t a = 0; a < 3; a++) {
		for (size_t b = 0; b < 6; b++) {
			for (size_t c = 0; c < 4; c++) {
				for (size_t d = 0; d < 6; d++) {
					for (size_t e = 0; e < 4; e++) {
						check_append_request(
						        segs[a], b % 2 ? 16 : 0,
						        firsts[b], counts[c],
						        lens[d], exps[e]);
					}
				}
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_append_request_matches_protobuf_c),
	        cmocka_unit_test(test_frame_asm_next_across_chunks),
	        cmocka_unit_test(test_frame_asm_next_corrupt_and_partial),
	        cmocka_unit_test(test_frame_asm_encoded_flag),
	        cmocka_unit_test(test_frame_asm_feed_owned_without_draining),
	        cmocka_unit_test(test_frame_asm_unget),
	};
	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
